//! The Chord node (Stoica et al. 2001): joins the ring through the configured members,
//! stabilizes, answers lookups, stores the keys it owns and replicas of its
//! predecessors' keys, and saves its neighbours so that a restart rejoins through them.

use crate::log;
use crate::peer::{self, App, LinkStats};
use crate::settings;
use crate::storage::{Record, Storage};
use embassy_net::Stack;
use heapless::Vec;
use overlay_core::chord::{Chord, Config, Event, Phase};
use overlay_core::{Duration, Instant, PeerAddr};
use serde::{Deserialize, Serialize};

/// The node: 8 keys of up to 128 bytes (its own and replicas of its predecessors'), and 2
/// lookups and 2 puts or gets of its own at once: it serves other peers' lookups, which
/// take none of these.
pub type Node = Chord<8, 128, 2, 2>;

/// Neighbours saved for the next join.
const SAVED_CONTACTS: usize = 8;

/// A join that found no member is tried again (through the next contact) this much later.
const JOIN_RETRY: Duration = Duration::from_secs(3);

/// What a restart needs to rejoin: members it knew, nearest first.
#[derive(Serialize, Deserialize, PartialEq)]
struct Saved {
    contacts: Vec<PeerAddr, SAVED_CONTACTS>,
}

struct ChordApp {
    record: Record<Saved>,
    contacts: Vec<PeerAddr, { SAVED_CONTACTS + 8 }>,
    attempts: usize,
    next_join: Instant,
}

/// Runs the Chord node on its port until the device stops.
#[embassy_executor::task]
pub async fn task(stack: Stack<'static>, seed: u64, storage: &'static mut dyn Storage) -> ! {
    let port = settings::port("OVERLAY_CHORD_PORT", settings::CHORD_PORT);
    let addr = settings::own_addr(port);
    let mut node = Node::new(Config::default(), addr, seed);
    let record = Record::<Saved>::open(storage);
    let mut contacts = Vec::new();
    if let Some(s) = record.saved() {
        log!("chord: restored contacts={}", s.contacts.len());
        contacts.extend(s.contacts.iter().copied());
    }
    for a in settings::addrs::<8>("OVERLAY_CHORD_BOOTSTRAP", settings::CHORD_BOOTSTRAP) {
        if !contacts.contains(&a) {
            let _ = contacts.push(a);
        }
    }
    log!(
        "chord: node id={:x} addr={} ram={}",
        node.node().id,
        addr,
        core::mem::size_of::<Node>()
    );

    // Room for one message of the largest kind (1,400 bytes) besides a few small ones.
    let mut socket = crate::udp_socket!(stack, port, rx: 2048, tx: 1536);
    let mut app = ChordApp {
        record,
        contacts,
        attempts: 0,
        next_join: Instant::ZERO,
    };
    peer::run(&mut socket, &mut node, &mut app).await
}

impl App for ChordApp {
    type Machine = Node;

    fn event(&mut self, now: Instant, event: Event<'_>) {
        match event {
            Event::Joined { successor, .. } => {
                log!("chord: joined successor={}", successor.addr)
            }
            Event::Failed { reason, .. } => {
                log!("chord: command failed: {reason:?}");
                self.next_join = now + JOIN_RETRY;
            }
            other => log!("chord: {other:?}"),
        }
    }

    fn tick(&mut self, now: Instant, node: &mut Node, link: &LinkStats) {
        if node.phase() == Phase::Idle && now >= self.next_join && !self.contacts.is_empty() {
            let contact = self.contacts[self.attempts % self.contacts.len()];
            self.attempts += 1;
            self.next_join = now + JOIN_RETRY;
            match node.join(now, contact) {
                Ok(_) => log!("chord: joining through {contact}"),
                Err(e) => log!("chord: join refused: {e:?}"),
            }
        }
        let s = node.stats();
        let pred = node.predecessor().map(|p| p.addr);
        log!(
            "status chord id={:x} phase={:?} successor={} predecessor={} keys={} received={} malformed={} wrong_version={} unexpected={} dropped={} unsent={}",
            node.node().id,
            node.phase(),
            Shown(node.successors().first().map(|n| n.addr)),
            Shown(pred),
            node.store().len(),
            s.received,
            s.malformed,
            s.wrong_version,
            s.unexpected,
            s.dropped,
            link.unsent,
        );
        self.save(node);
    }
}

impl ChordApp {
    /// Saves the successors and the predecessor when they changed.
    fn save(&mut self, node: &Node) {
        if node.phase() != Phase::Member {
            return;
        }
        let me = node.node().addr;
        let mut now = Saved {
            contacts: Vec::new(),
        };
        let successors = node.successors().iter().map(|n| n.addr);
        for a in successors.chain(node.predecessor().map(|p| p.addr)) {
            if a != me && !now.contacts.contains(&a) && now.contacts.push(a).is_err() {
                break;
            }
        }
        let contacts = now.contacts.len();
        if contacts == 0 {
            return;
        }
        match self.record.update(now) {
            Ok(true) => log!("chord: saved contacts={contacts}"),
            Ok(false) => {}
            Err(e) => log!("chord: save failed: {e:?}"),
        }
    }
}

/// An optional address as the status line shows it: `-` when absent.
struct Shown(Option<PeerAddr>);

impl core::fmt::Display for Shown {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => f.write_str("-"),
        }
    }
}
