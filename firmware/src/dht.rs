//! The Mainline DHT node (BEP 5, with BEP 44 storage): bootstraps through the configured
//! nodes, answers queries, stores what others announce and put, and saves its id and the
//! nodes it knows so that a restart rejoins as the same node.

use crate::log;
use crate::peer::{self, App, LinkStats};
use crate::settings;
use crate::storage::{Record, Storage};
use embassy_net::Stack;
use heapless::Vec;
use overlay_core::dht::config::MAX_BOOTSTRAP;
use overlay_core::dht::{Config, Dht, Event};
use overlay_core::{Id, Instant, PeerAddr};
use serde::{Deserialize, Serialize};

/// The node: 32 table entries (four full buckets: a network of hundreds; the public DHT
/// wants 128, 5 KiB more), one lookup of its own at a time (bootstrap and refreshes: it
/// answers other nodes' lookups without one), 16 announced peers and 2 BEP 44 items.
pub type Node = Dht<32, 1, 16, 2>;

/// Nodes saved for the next bootstrap: as many as a bootstrap takes.
const SAVED_NODES: usize = MAX_BOOTSTRAP;

/// What a restart needs to rejoin as the same node.
#[derive(Serialize, Deserialize, PartialEq)]
struct Saved {
    id: Id,
    nodes: Vec<PeerAddr, SAVED_NODES>,
}

struct DhtApp {
    record: Record<Saved>,
    bootstrap: Vec<PeerAddr, MAX_BOOTSTRAP>,
    bootstrapped: bool,
}

/// Runs the DHT node on its port until the device stops.
#[embassy_executor::task]
pub async fn task(stack: Stack<'static>, seed: u64, storage: &'static mut dyn Storage) -> ! {
    let port = settings::port("OVERLAY_DHT_PORT", settings::DHT_PORT);
    let addr = settings::own_addr(port);
    let config = Config::default();
    let record = Record::<Saved>::open(storage);
    // The configured nodes, then as many saved ones as a bootstrap takes.
    let mut bootstrap: Vec<PeerAddr, MAX_BOOTSTRAP> =
        settings::addrs("OVERLAY_DHT_BOOTSTRAP", settings::DHT_BOOTSTRAP);
    let mut node = match record.saved() {
        Some(s) => {
            log!("dht: restored id={:x} nodes={}", s.id, s.nodes.len());
            for a in &s.nodes {
                if !bootstrap.contains(a) && bootstrap.push(*a).is_err() {
                    break;
                }
            }
            Node::with_id(config, s.id, addr, seed)
        }
        None => Node::new(config, addr, seed),
    };
    log!(
        "dht: node id={:x} addr={} ram={}",
        node.id(),
        addr,
        core::mem::size_of::<Node>()
    );

    // Room for a few answers at once (a BEP 44 item is up to 1 KiB).
    let mut socket = crate::udp_socket!(stack, port, rx: 2048, tx: 1536);
    let mut app = DhtApp {
        record,
        bootstrap,
        bootstrapped: false,
    };
    peer::run(&mut socket, &mut node, &mut app).await
}

impl App for DhtApp {
    type Machine = Node;

    fn event(&mut self, _now: Instant, event: Event<'_>) {
        match event {
            Event::Bootstrapped { nodes, .. } => log!("dht: bootstrapped nodes={nodes}"),
            Event::NewId { id, external } => log!("dht: new id={id:x} for {external}"),
            Event::Failed { reason, .. } => log!("dht: command failed: {reason:?}"),
            other => log!("dht: {other:?}"),
        }
    }

    fn tick(&mut self, now: Instant, node: &mut Node, link: &LinkStats) {
        if !self.bootstrapped {
            // The node itself bootstraps again while its table is empty.
            match node.bootstrap(now, &self.bootstrap) {
                Ok(_) => self.bootstrapped = true,
                Err(e) => log!("dht: bootstrap refused: {e:?}"),
            }
        }
        let s = node.stats();
        log!(
            "status dht id={:x} nodes={} peers={} items={} received={} answered={} malformed={} unexpected={} dropped={} unsent={}",
            node.id(),
            node.table().len(),
            node.stored_peers(),
            node.stored_items(),
            s.received,
            s.answered,
            s.malformed,
            s.unexpected,
            s.dropped,
            link.unsent,
        );
        self.save(node);
    }
}

impl DhtApp {
    /// Saves the id and the table's first nodes when they changed.
    fn save(&mut self, node: &Node) {
        let now = Saved {
            id: node.id(),
            nodes: node
                .table()
                .iter()
                .map(|n| n.addr)
                .take(SAVED_NODES)
                .collect(),
        };
        let nodes = now.nodes.len();
        if nodes == 0 {
            return;
        }
        match self.record.update(now) {
            Ok(true) => log!("dht: saved id={:x} nodes={nodes}", node.id()),
            Ok(false) => {}
            Err(e) => log!("dht: save failed: {e:?}"),
        }
    }
}
