//! A deterministic discrete-event network that drives any number of [`Machine`]s through
//! the sans-IO contract and nothing else.
//!
//! The clock is virtual and jumps to the next scheduled instant. Latency is seeded per link
//! (a fixed base drawn from `[latency_min, latency_max)` by hashing the pair) plus per-packet
//! jitter, which reorders datagrams that are sent close together. Loss, partitions and
//! churn (add, crash, and whatever graceful leave the protocol offers) are under the
//! caller's control. One seed makes a whole run reproducible.
//!
//! Datagrams and streams are both carried: a stream is a pair of connection ids joined
//! here, delivered in order (each connection's deliveries never overtake each other).
//!
//! Bandwidth is per node, not per pair, because in swarms and overlays the bottleneck is
//! the access link (often asymmetric), not the core. Each node has a [`Link`]: an uplink
//! and a downlink, each a FIFO serializer that is busy until some instant. A payload of
//! `len` bytes sent from `i` to `j` waits for `i`'s uplink and occupies it for
//! `len / up`, then travels the pair's latency and jitter, then waits for `j`'s downlink
//! and occupies it for `len / down`; it is delivered when it leaves the downlink (and, on
//! a stream, not before the stream's previous segment). Datagrams and stream segments
//! share this one path, so they compete for the same capacity. The downlink is reserved
//! at send time, which is an approximation: a segment sent later over a shorter path can
//! queue behind one sent earlier over a longer one. Connection setup and close are not
//! charged, only payload bytes. A rate of 0 is unlimited (no queue at all), which every
//! node starts with, so runs that never set a link keep their exact timings.
//!
//! The loop is bounded: if the clock stops advancing while events keep coming (a machine
//! that asks to be woken "now" forever, or two that ping-pong without delay), the run stops
//! with [`SimError::Livelock`] instead of hanging.

use overlay_core::{ConnId, Dest, Duration, Input, Instant, Machine, Output, PeerAddr, Rng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::util::mix;

/// The port every simulated node listens on.
pub const SIM_PORT: u16 = 7000;

/// Settings of the simulated network.
#[derive(Clone, Copy, Debug)]
pub struct NetConfig {
    /// Seed of the network's randomness (latency, jitter, loss).
    pub seed: u64,
    /// Lower bound of a link's base one-way latency.
    pub latency_min: Duration,
    /// Upper bound (exclusive) of a link's base one-way latency.
    pub latency_max: Duration,
    /// Extra per-packet delay drawn from `[0, jitter)`: reorders close datagrams.
    pub jitter: Duration,
    /// Probability that a datagram is lost (streams are reliable).
    pub loss: f64,
    /// Events at one virtual instant after which the run is declared a livelock.
    pub livelock_events: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            seed: 1,
            latency_min: Duration::from_millis(10),
            latency_max: Duration::from_millis(100),
            jitter: Duration::from_millis(5),
            loss: 0.0,
            livelock_events: 5_000_000,
        }
    }
}

/// A node's access link capacity in bytes per second; 0 means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Uplink: what the node can send per second.
    pub up: u64,
    /// Downlink: what the node can receive per second.
    pub down: u64,
}

impl Link {
    /// No bandwidth limit either way: every node's starting link.
    pub const UNLIMITED: Link = Link::new(0, 0);

    /// A link sending `up` and receiving `down` bytes per second (0 = unlimited).
    pub const fn new(up: u64, down: u64) -> Self {
        Link { up, down }
    }
}

/// A node's side of the network: its link, when each of its serializers is next free, and
/// the payload bytes it has moved.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: Link,
    up_free: Instant,
    down_free: Instant,
    sent_bytes: u64,
    received_bytes: u64,
}

impl Interface {
    const IDLE: Interface = Interface {
        link: Link::UNLIMITED,
        up_free: Instant::ZERO,
        down_free: Instant::ZERO,
        sent_bytes: 0,
        received_bytes: 0,
    };
}

/// Queues `len` bytes on a FIFO serializer of `rate` bytes per second that is busy until
/// `free_at`, the bytes being ready at `ready`; returns when the last byte leaves. A rate of
/// 0 is unlimited: no queue, the bytes leave when ready and the serializer stays untouched,
/// so unlimited links add no delay at all.
fn serialize(free_at: &mut Instant, rate: u64, ready: Instant, len: usize) -> Instant {
    if rate == 0 {
        return ready;
    }
    // Whole microseconds, rounded up; saturates instead of overflowing on absurd inputs.
    let micros = (len as u128 * 1_000_000).div_ceil(rate as u128);
    let busy = Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX));
    let done = ready.max(*free_at) + busy;
    *free_at = done;
    done
}

/// Why a run stopped early.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SimError {
    /// The clock stood still at `at` for more than `livelock_events` events.
    Livelock {
        /// The virtual instant.
        at: Instant,
    },
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Livelock { at } => write!(f, "livelock: the clock stopped at {at}"),
        }
    }
}

impl std::error::Error for SimError {}

/// What the network has done so far.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct NetStats {
    /// Scheduled events processed (deliveries and wake-ups).
    pub events: u64,
    /// Datagrams and stream segments delivered.
    pub delivered: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Datagrams lost to the loss rate.
    pub lost: u64,
    /// Datagrams dropped by a partition.
    pub partitioned: u64,
    /// Datagrams addressed to a crashed or unknown node.
    pub undeliverable: u64,
}

impl NetStats {
    fn count_delivery(&mut self, bytes: &[u8]) {
        self.delivered += 1;
        self.bytes += bytes.len() as u64;
    }
}

#[derive(Debug)]
enum Kind {
    Wake,
    Datagram { from: u32, payload: Box<[u8]> },
    Connected { conn: ConnId },
    Accepted { conn: ConnId, peer: u32 },
    Received { conn: ConnId, bytes: Box<[u8]> },
    Closed { conn: ConnId },
}

struct Scheduled {
    at: Instant,
    seq: u64,
    node: u32,
    kind: Kind,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// One end of a simulated stream: the node and connection id at the other end, and the
/// latest delivery time so far (streams deliver in order).
#[derive(Clone, Copy)]
struct StreamEnd {
    peer: u32,
    peer_conn: ConnId,
    last_delivery: Instant,
}

/// The simulated network and its machines.
pub struct Sim<M: Machine> {
    nodes: Vec<Option<M>>,
    net: Net,
}

/// Everything but the machines, so a machine's borrowed output can be carried out while the
/// machine is still borrowed.
struct Net {
    config: NetConfig,
    clock: Instant,
    live: Vec<bool>,
    wake: Vec<Instant>,
    group: Vec<u8>,
    interfaces: Vec<Interface>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    rng: Rng,
    streams: HashMap<(u32, ConnId), StreamEnd>,
    next_inbound: u64,
    stats: NetStats,
    same_instant: u64,
}

const NO_WAKE: Instant = Instant::from_micros(u64::MAX);

/// The address of simulated node `i`: 10.x.y.z:7000 (up to 2^24 nodes).
pub fn addr_of(i: usize) -> PeerAddr {
    PeerAddr::v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], SIM_PORT)
}

/// The node at a simulated address, if it is one.
pub fn index_of(a: PeerAddr) -> Option<usize> {
    match a.ip() {
        std::net::IpAddr::V4(ip) if a.port() == SIM_PORT && ip.octets()[0] == 10 => {
            let o = ip.octets();
            Some((o[1] as usize) << 16 | (o[2] as usize) << 8 | o[3] as usize)
        }
        _ => None,
    }
}

impl<M: Machine> Sim<M> {
    /// An empty network.
    pub fn new(config: NetConfig) -> Self {
        Sim {
            nodes: Vec::new(),
            net: Net {
                config,
                clock: Instant::ZERO,
                live: Vec::new(),
                wake: Vec::new(),
                group: Vec::new(),
                interfaces: Vec::new(),
                queue: BinaryHeap::new(),
                seq: 0,
                rng: Rng::new(config.seed),
                streams: HashMap::new(),
                next_inbound: 0,
                stats: NetStats::default(),
                same_instant: 0,
            },
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.net.clock
    }
    /// Counters.
    pub fn stats(&self) -> NetStats {
        self.net.stats
    }
    /// Number of node slots (live or crashed).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether no node was ever added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// A live node's machine.
    pub fn node(&self, i: usize) -> Option<&M> {
        self.nodes.get(i)?.as_ref()
    }
    /// Whether node `i` is live.
    pub fn is_live(&self, i: usize) -> bool {
        self.node(i).is_some()
    }
    /// Indices of the live nodes.
    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_some())
    }
    /// Scheduled events waiting in the queue.
    pub fn queued(&self) -> usize {
        self.net.queue.len()
    }
    /// Bytes of memory the simulator holds per node slot, the machine included (machines
    /// allocate nothing), excluding the event queue (see [`Sim::bytes_per_event`]).
    pub fn bytes_per_node() -> usize {
        std::mem::size_of::<Option<M>>()
            + std::mem::size_of::<Instant>()
            + 2
            + std::mem::size_of::<Interface>()
    }
    /// Bytes of one queued event, excluding its payload.
    pub fn bytes_per_event() -> usize {
        std::mem::size_of::<Reverse<Scheduled>>()
    }

    /// Adds a node built by `make` from its address and returns its index. It is polled at
    /// the current instant.
    pub fn add(&mut self, make: impl FnOnce(PeerAddr) -> M) -> usize {
        let i = self.nodes.len();
        self.nodes.push(Some(make(addr_of(i))));
        self.net.live.push(true);
        self.net.wake.push(self.net.clock);
        self.net.group.push(0);
        self.net.interfaces.push(Interface::IDLE);
        self.net.schedule(self.net.clock, i as u32, Kind::Wake);
        i
    }

    /// Crashes node `i`: it vanishes without a word, its streams close at the other ends.
    pub fn crash(&mut self, i: usize) {
        if let Some(slot) = self.nodes.get_mut(i) {
            *slot = None;
            self.net.live[i] = false;
        }
        let net = &mut self.net;
        let ends: Vec<_> = net
            .streams
            .iter()
            .filter(|((n, _), _)| *n as usize == i)
            .map(|(k, e)| (*k, *e))
            .collect();
        for (key, end) in ends {
            net.streams.remove(&key);
            net.streams.remove(&(end.peer, end.peer_conn));
            // After whatever the crashed node had already sent on this stream.
            let at = net.clock.max(end.last_delivery);
            let conn = end.peer_conn;
            net.schedule(at, end.peer, Kind::Closed { conn });
        }
    }

    /// Splits the network: nodes in different groups cannot reach each other. Group 0 is
    /// where every node starts; `heal` puts them all back.
    pub fn set_group(&mut self, i: usize, group: u8) {
        self.net.group[i] = group;
    }
    /// Ends every partition.
    pub fn heal(&mut self) {
        self.net.group.iter_mut().for_each(|g| *g = 0);
    }
    /// Sets node `i`'s link capacity from now on (what is already queued keeps its
    /// timing). Does nothing if there is no node `i`.
    pub fn set_link(&mut self, i: usize, link: Link) {
        if let Some(interface) = self.net.interfaces.get_mut(i) {
            interface.link = link;
        }
    }
    /// Node `i`'s link capacity ([`Link::UNLIMITED`] if there is no node `i`).
    pub fn link(&self, i: usize) -> Link {
        self.net
            .interfaces
            .get(i)
            .map_or(Link::UNLIMITED, |interface| interface.link)
    }
    /// Payload bytes that left node `i`'s uplink, datagrams later lost or dropped included
    /// (the sender paid for them); 0 if there is no node `i`.
    pub fn sent_bytes(&self, i: usize) -> u64 {
        self.net.interfaces.get(i).map_or(0, |n| n.sent_bytes)
    }
    /// Payload bytes delivered to node `i`; 0 if there is no node `i`.
    pub fn received_bytes(&self, i: usize) -> u64 {
        self.net.interfaces.get(i).map_or(0, |n| n.received_bytes)
    }

    /// Changes the datagram loss rate from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.net.config.loss = loss;
    }

    /// Runs a command on node `i` (anything that mutates it) and drains its outputs, as the
    /// contract requires. `None` if the node is not live.
    pub fn command<R>(
        &mut self,
        i: usize,
        on_event: &mut impl FnMut(usize, Instant, M::Event<'_>),
        f: impl FnOnce(&mut M, Instant) -> R,
    ) -> Option<R> {
        let now = self.net.clock;
        let r = f(self.nodes.get_mut(i)?.as_mut()?, now);
        self.drain(i, on_event);
        Some(r)
    }

    /// Delivers raw bytes to node `i` as if `from` had sent them (for malformed-input tests).
    pub fn inject(
        &mut self,
        i: usize,
        from: PeerAddr,
        payload: &[u8],
        on_event: &mut impl FnMut(usize, Instant, M::Event<'_>),
    ) {
        let now = self.net.clock;
        if let Some(Some(m)) = self.nodes.get_mut(i) {
            m.handle_input(now, Input::Datagram { from, payload });
            self.drain(i, on_event);
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(
        &mut self,
        d: Duration,
        on_event: &mut impl FnMut(usize, Instant, M::Event<'_>),
    ) -> Result<(), SimError> {
        self.run_until(self.net.clock + d, on_event)
    }

    /// Processes every event scheduled up to `end`, then sets the clock to `end`.
    pub fn run_until(
        &mut self,
        end: Instant,
        on_event: &mut impl FnMut(usize, Instant, M::Event<'_>),
    ) -> Result<(), SimError> {
        while let Some(Reverse(next)) = self.net.queue.peek() {
            if next.at > end {
                break;
            }
            let Reverse(ev) = self.net.queue.pop().expect("peeked");
            let net = &mut self.net;
            if ev.at == net.clock {
                net.same_instant += 1;
                if net.same_instant > net.config.livelock_events {
                    return Err(SimError::Livelock { at: net.clock });
                }
            } else {
                net.same_instant = 0;
                net.clock = ev.at;
            }
            net.stats.events += 1;
            self.dispatch(ev, on_event);
        }
        if end > self.net.clock {
            self.net.clock = end;
            self.net.same_instant = 0;
        }
        Ok(())
    }

    fn dispatch(&mut self, ev: Scheduled, on_event: &mut impl FnMut(usize, Instant, M::Event<'_>)) {
        let i = ev.node as usize;
        let net = &mut self.net;
        let now = net.clock;
        let Some(Some(m)) = self.nodes.get_mut(i) else {
            if !matches!(ev.kind, Kind::Wake) {
                net.stats.undeliverable += 1;
            }
            return;
        };
        match ev.kind {
            Kind::Wake => {
                if net.wake[i] != ev.at {
                    return; // superseded by an earlier Wait
                }
                net.wake[i] = NO_WAKE;
            }
            Kind::Datagram { from, payload } => {
                net.count_delivery(i, &payload);
                m.handle_input(
                    now,
                    Input::Datagram {
                        from: addr_of(from as usize),
                        payload: &payload,
                    },
                );
            }
            Kind::Connected { conn } => m.handle_input(now, Input::Connected { conn }),
            Kind::Accepted { conn, peer } => m.handle_input(
                now,
                Input::Accepted {
                    conn,
                    peer: addr_of(peer as usize),
                },
            ),
            Kind::Received { conn, bytes } => {
                net.count_delivery(i, &bytes);
                m.handle_input(
                    now,
                    Input::Received {
                        conn,
                        bytes: &bytes,
                    },
                );
            }
            Kind::Closed { conn } => m.handle_input(now, Input::Closed { conn }),
        }
        self.drain(i, on_event);
    }

    /// Polls node `i` until it waits, carrying out what it asks.
    fn drain(&mut self, i: usize, on_event: &mut impl FnMut(usize, Instant, M::Event<'_>)) {
        let net = &mut self.net;
        let now = net.clock;
        let Some(Some(m)) = self.nodes.get_mut(i) else {
            return;
        };
        loop {
            match m.poll_output(now) {
                Output::Transmit {
                    to: Dest::Addr(to),
                    payload,
                } => net.send_datagram(i, to, payload),
                Output::Transmit {
                    to: Dest::Conn(conn),
                    payload,
                } => net.send_stream(i, conn, payload),
                Output::Connect { conn, peer } => net.connect(i, conn, peer),
                Output::Close { conn } => net.close(i, conn),
                Output::Event(e) => on_event(i, now, e),
                Output::Wait(deadline) => {
                    if let Some(t) = deadline {
                        let t = t.max(now);
                        if t < net.wake[i] {
                            net.wake[i] = t;
                            net.schedule(t, i as u32, Kind::Wake);
                        }
                    }
                    return;
                }
            }
        }
    }
}

impl Net {
    fn send_datagram(&mut self, from: usize, to: PeerAddr, payload: &[u8]) {
        // Whatever becomes of it, a datagram leaves the sender and uses its uplink.
        let left = self.depart(from, payload.len());
        let Some(j) = index_of(to).filter(|&j| j < self.live.len()) else {
            self.stats.undeliverable += 1;
            return;
        };
        if self.group[from] != self.group[j] {
            self.stats.partitioned += 1;
            return;
        }
        if self.config.loss > 0.0 && self.rng.chance(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        let at = self.delivery(from, j, left, payload.len());
        self.schedule(
            at,
            j as u32,
            Kind::Datagram {
                from: from as u32,
                payload: payload.into(),
            },
        );
    }

    fn connect(&mut self, i: usize, conn: ConnId, peer: PeerAddr) {
        let target = index_of(peer)
            .filter(|&j| self.live.get(j) == Some(&true) && self.group[j] == self.group[i]);
        let Some(j) = target else {
            // Refused or unreachable: the dialer hears so after a round trip.
            let at = self.clock + self.config.latency_max + self.config.latency_max;
            self.schedule(at, i as u32, Kind::Closed { conn });
            return;
        };
        self.next_inbound += 1;
        let accepted = ConnId::inbound(self.next_inbound);
        let there = self.arrival(i as u32, j as u32);
        let back = there + self.latency(j as u32, i as u32);
        self.streams.insert(
            (i as u32, conn),
            StreamEnd {
                peer: j as u32,
                peer_conn: accepted,
                last_delivery: there,
            },
        );
        self.streams.insert(
            (j as u32, accepted),
            StreamEnd {
                peer: i as u32,
                peer_conn: conn,
                last_delivery: back,
            },
        );
        self.schedule(
            there,
            j as u32,
            Kind::Accepted {
                conn: accepted,
                peer: i as u32,
            },
        );
        self.schedule(back, i as u32, Kind::Connected { conn });
    }

    fn send_stream(&mut self, i: usize, conn: ConnId, bytes: &[u8]) {
        let peer = match self.streams.get(&(i as u32, conn)) {
            Some(end) => end.peer,
            None => {
                self.stats.undeliverable += 1;
                return;
            }
        };
        let left = self.depart(i, bytes.len());
        let at = self.delivery(i, peer as usize, left, bytes.len());
        let end = self
            .streams
            .get_mut(&(i as u32, conn))
            .expect("checked above");
        // In order: never before the stream's previous segment.
        let at = at.max(end.last_delivery);
        end.last_delivery = at;
        let peer_conn = end.peer_conn;
        self.schedule(
            at,
            peer,
            Kind::Received {
                conn: peer_conn,
                bytes: bytes.into(),
            },
        );
    }

    fn close(&mut self, i: usize, conn: ConnId) {
        if let Some(end) = self.streams.remove(&(i as u32, conn)) {
            self.streams.remove(&(end.peer, end.peer_conn));
            let at = self.arrival(i as u32, end.peer).max(end.last_delivery);
            self.schedule(
                at,
                end.peer,
                Kind::Closed {
                    conn: end.peer_conn,
                },
            );
        }
    }

    /// Counts a delivery of `bytes` to node `i`.
    fn count_delivery(&mut self, i: usize, bytes: &[u8]) {
        self.stats.count_delivery(bytes);
        let received = &mut self.interfaces[i].received_bytes;
        *received = received.saturating_add(bytes.len() as u64);
    }

    /// Puts `len` payload bytes sent now on node `i`'s uplink; returns when they have left.
    fn depart(&mut self, i: usize, len: usize) -> Instant {
        let clock = self.clock;
        let node = &mut self.interfaces[i];
        node.sent_bytes = node.sent_bytes.saturating_add(len as u64);
        serialize(&mut node.up_free, node.link.up, clock, len)
    }

    /// When `len` bytes that left `from`'s uplink at `left` are delivered to `to`: after the
    /// pair's latency and jitter, then `to`'s downlink.
    fn delivery(&mut self, from: usize, to: usize, left: Instant, len: usize) -> Instant {
        let arrived = left + self.latency(from as u32, to as u32);
        let node = &mut self.interfaces[to];
        serialize(&mut node.down_free, node.link.down, arrived, len)
    }

    /// When a packet sent now from `a` reaches `b`, bandwidth aside.
    fn arrival(&mut self, a: u32, b: u32) -> Instant {
        self.clock + self.latency(a, b)
    }

    /// The one-way delay of a packet from `a` to `b`: the pair's seeded base latency plus
    /// fresh jitter.
    fn latency(&mut self, a: u32, b: u32) -> Duration {
        let (lo, hi) = (
            self.config.latency_min.as_micros(),
            self.config.latency_max.as_micros(),
        );
        let span = hi.saturating_sub(lo).max(1);
        let link = mix(self.config.seed ^ ((a.min(b) as u64) << 32 | a.max(b) as u64));
        let base = lo + link % span;
        let jitter = self.rng.below(self.config.jitter.as_micros());
        Duration::from_micros(base) + Duration::from_micros(jitter)
    }

    fn schedule(&mut self, at: Instant, node: u32, kind: Kind) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            node,
            kind,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine that echoes every datagram and stream read back to its sender, and on
    /// command dials a peer and sends "hi": enough to exercise every path of the contract.
    #[derive(Default)]
    struct Echo {
        out: std::collections::VecDeque<(Dest, Vec<u8>)>,
        dial: Option<PeerAddr>,
        got: Vec<Vec<u8>>,
        closed: u32,
        buf: Vec<u8>,
        log: Vec<&'static str>,
    }

    impl Machine for Echo {
        type Event<'a> = &'a [u8];
        fn handle_input(&mut self, _now: Instant, input: Input<'_>) {
            match input {
                Input::Datagram { from, payload } => {
                    self.got.push(payload.to_vec());
                    if payload.len() < 4 {
                        let mut p = payload.to_vec();
                        p.push(b'!');
                        self.out.push_back((Dest::Addr(from), p));
                    }
                }
                Input::Connected { conn } => self.out.push_back((Dest::Conn(conn), b"hi".to_vec())),
                Input::Accepted { .. } => self.log.push("accepted"),
                Input::Received { conn, bytes } => {
                    self.got.push(bytes.to_vec());
                    if !conn.is_inbound() {
                        return;
                    }
                    self.out.push_back((Dest::Conn(conn), bytes.to_vec()));
                }
                Input::Closed { .. } => {
                    self.closed += 1;
                    self.log.push("closed");
                }
            }
        }
        fn poll_output(&mut self, _now: Instant) -> Output<'_, &[u8]> {
            scripted_output(&mut self.dial, &mut self.out, &mut self.buf)
        }
    }

    /// The outputs of a test machine told what to do: a dial as connection 1, then what it
    /// was given to send, in order.
    fn scripted_output<'a, E>(
        dial: &mut Option<PeerAddr>,
        out: &mut std::collections::VecDeque<(Dest, Vec<u8>)>,
        buf: &'a mut Vec<u8>,
    ) -> Output<'a, E> {
        if let Some(peer) = dial.take() {
            return Output::Connect {
                conn: ConnId::outbound(1),
                peer,
            };
        }
        match out.pop_front() {
            Some((to, bytes)) => {
                *buf = bytes;
                Output::Transmit { to, payload: buf }
            }
            None => Output::Wait(None),
        }
    }

    fn quiet(_: usize, _: Instant, _: &[u8]) {}

    #[test]
    fn addresses_map_to_indices_and_back() {
        for i in [0, 1, 255, 256, 65_535, 1 << 20] {
            assert_eq!(index_of(addr_of(i)), Some(i));
        }
        assert_eq!(index_of(PeerAddr::v4([127, 0, 0, 1], SIM_PORT)), None);
    }

    #[test]
    fn datagrams_arrive_after_link_latency_and_replies_come_back() {
        let mut sim = Sim::new(NetConfig::default());
        let (a, b) = (sim.add(|_| Echo::default()), sim.add(|_| Echo::default()));
        // Datagrams shorter than 4 bytes are echoed with a '!': x -> x! -> x!! -> x!!! (kept).
        sim.inject(a, addr_of(b), b"x", &mut quiet);
        sim.run_for(Duration::from_secs(1), &mut quiet).unwrap();
        assert_eq!(sim.node(b).unwrap().got, [b"x!".to_vec(), b"x!!!".to_vec()]);
        assert_eq!(sim.node(a).unwrap().got, [b"x".to_vec(), b"x!!".to_vec()]);
        assert_eq!(sim.stats().delivered, 3);
        // Three one-way trips of 10..100 ms (+ jitter) each.
        assert!(sim.now() == Instant::from_micros(1_000_000));
    }

    #[test]
    fn loss_partitions_and_crashes_drop_datagrams_and_are_counted() {
        let mut sim = Sim::new(NetConfig {
            loss: 1.0,
            ..NetConfig::default()
        });
        let (a, b, c) = (
            sim.add(|_| Echo::default()),
            sim.add(|_| Echo::default()),
            sim.add(|_| Echo::default()),
        );
        sim.inject(a, addr_of(b), b"x", &mut quiet);
        sim.set_loss(0.0);
        sim.set_group(c, 1);
        sim.inject(a, addr_of(c), b"y", &mut quiet);
        sim.crash(b);
        sim.inject(a, addr_of(b), b"z", &mut quiet);
        sim.run_for(Duration::from_secs(1), &mut quiet).unwrap();
        let s = sim.stats();
        assert_eq!(
            (s.lost, s.partitioned, s.undeliverable, s.delivered),
            (1, 1, 1, 0)
        );
    }

    #[test]
    fn streams_connect_deliver_in_order_and_close_on_crash() {
        let mut sim = Sim::new(NetConfig {
            jitter: Duration::from_millis(50),
            ..NetConfig::default()
        });
        let (a, b) = (sim.add(|_| Echo::default()), sim.add(|_| Echo::default()));
        sim.command(a, &mut quiet, |m, _| m.dial = Some(addr_of(b)));
        sim.run_for(Duration::from_secs(1), &mut quiet).unwrap();
        assert_eq!(sim.node(b).unwrap().got, [b"hi".to_vec()]);
        assert_eq!(sim.node(a).unwrap().got, [b"hi".to_vec()]);
        // Many segments sent at one instant arrive in order despite jitter.
        sim.command(a, &mut quiet, |m, _| {
            for k in 0..20u8 {
                m.out.push_back((Dest::Conn(ConnId::outbound(1)), vec![k]));
            }
        });
        sim.run_for(Duration::from_secs(1), &mut quiet).unwrap();
        let got: Vec<u8> = sim.node(b).unwrap().got[1..].iter().map(|v| v[0]).collect();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        sim.crash(b);
        sim.run_for(Duration::from_secs(1), &mut quiet).unwrap();
        assert_eq!(sim.node(a).unwrap().closed, 1);
    }

    #[test]
    fn a_crash_closes_a_stream_only_after_what_was_already_sent_on_it() {
        let mut sim = Sim::new(NetConfig::default());
        let (a, b) = (sim.add(|_| Echo::default()), sim.add(|_| Echo::default()));
        sim.command(a, &mut quiet, |m, _| m.dial = Some(addr_of(b)));
        sim.crash(a); // the connection request is already on its way
        sim.run_for(Duration::from_secs(1), &mut quiet).unwrap();
        let b = sim.node(b).unwrap();
        assert_eq!(b.log, ["accepted", "closed"]);
    }

    #[test]
    fn a_machine_that_never_lets_time_advance_is_reported_as_livelock() {
        let mut sim = Sim::new(NetConfig {
            livelock_events: 1000,
            ..NetConfig::default()
        });
        // Always wants to be polled again "now": the drive loop must stop.
        sim.add(|_| Burst { left: u32::MAX });
        let r = sim.run_for(Duration::from_secs(1), &mut |_, _, ()| {});
        assert_eq!(r, Err(SimError::Livelock { at: Instant::ZERO }));
    }

    /// Asks to be polled again at the same instant `left` more times.
    struct Burst {
        left: u32,
    }
    impl Machine for Burst {
        type Event<'a> = ();
        fn handle_input(&mut self, _: Instant, _: Input<'_>) {}
        fn poll_output(&mut self, now: Instant) -> Output<'_, ()> {
            if self.left == 0 {
                return Output::Wait(None);
            }
            self.left -= 1;
            Output::Wait(Some(now))
        }
    }

    #[test]
    fn bursts_at_different_instants_are_not_added_up_as_a_livelock() {
        let mut sim = Sim::new(NetConfig {
            livelock_events: 10,
            ..NetConfig::default()
        });
        let n = sim.add(|_| Burst { left: 6 });
        sim.run_for(Duration::from_millis(500), &mut |_, _, ()| {})
            .unwrap();
        sim.command(n, &mut |_, _, ()| {}, |m, _| m.left = 6);
        let r = sim.run_for(Duration::from_millis(500), &mut |_, _, ()| {});
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn same_seed_same_run() {
        let run = || {
            let mut sim = Sim::new(NetConfig {
                seed: 9,
                loss: 0.3,
                ..NetConfig::default()
            });
            let nodes: Vec<_> = (0..8).map(|_| sim.add(|_| Echo::default())).collect();
            for &n in &nodes {
                sim.inject(n, addr_of((n + 1) % 8), b"a", &mut quiet);
            }
            sim.run_for(Duration::from_secs(1), &mut quiet).unwrap();
            (sim.stats(), sim.now())
        };
        assert_eq!(run(), run());
    }

    /// Dials on command, sends what it is given, and records when each payload arrives.
    #[derive(Default)]
    struct Meter {
        dial: Option<PeerAddr>,
        out: std::collections::VecDeque<(Dest, Vec<u8>)>,
        buf: Vec<u8>,
        arrivals: Vec<(Instant, Vec<u8>)>,
    }

    impl Machine for Meter {
        type Event<'a> = ();
        fn handle_input(&mut self, now: Instant, input: Input<'_>) {
            match input {
                Input::Datagram { payload, .. } => self.arrivals.push((now, payload.to_vec())),
                Input::Received { bytes, .. } => self.arrivals.push((now, bytes.to_vec())),
                _ => {}
            }
        }
        fn poll_output(&mut self, _now: Instant) -> Output<'_, ()> {
            scripted_output(&mut self.dial, &mut self.out, &mut self.buf)
        }
    }

    fn silent(_: usize, _: Instant, (): ()) {}

    /// Opens a stream from `from` to `to` (connection `outbound(1)` at `from`) and lets the
    /// handshake finish.
    fn open_stream(sim: &mut Sim<Meter>, from: usize, to: usize) {
        sim.command(from, &mut silent, |m, _| m.dial = Some(addr_of(to)));
        sim.run_for(Duration::from_secs(1), &mut silent).unwrap();
    }

    /// Queues `count` segments of `len` bytes on `from`'s stream, the first byte of each its
    /// number.
    fn send_segments(sim: &mut Sim<Meter>, from: usize, count: u8, len: usize) {
        sim.command(from, &mut silent, |m, _| {
            for k in 0..count {
                let mut segment = vec![0; len];
                segment[0] = k;
                m.out.push_back((Dest::Conn(ConnId::outbound(1)), segment));
            }
        });
    }

    /// Sends ten 10 kB segments over a stream between nodes with these links; returns when
    /// they were sent and when and in which order they arrived.
    fn paced_stream(sender: Link, receiver: Link) -> (Instant, Vec<Instant>, Vec<u8>) {
        let mut sim = Sim::new(NetConfig::default());
        let (a, b) = (sim.add(|_| Meter::default()), sim.add(|_| Meter::default()));
        sim.set_link(a, sender);
        sim.set_link(b, receiver);
        open_stream(&mut sim, a, b);
        let sent = sim.now();
        send_segments(&mut sim, a, 10, 10_000);
        sim.run_for(Duration::from_secs(5), &mut silent).unwrap();
        let arrivals = &sim.node(b).unwrap().arrivals;
        let times = arrivals.iter().map(|(t, _)| *t).collect();
        let order = arrivals.iter().map(|(_, bytes)| bytes[0]).collect();
        (sent, times, order)
    }

    #[test]
    fn a_limited_uplink_paces_a_stream_and_keeps_it_in_order() {
        let (sent, times, order) = paced_stream(Link::new(100_000, 0), Link::UNLIMITED);
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        // Each segment holds the uplink for 100 ms, so segment k cannot arrive earlier.
        for (k, &t) in times.iter().enumerate() {
            assert!(t - sent >= Duration::from_millis(100 * (k as u64 + 1)));
        }
        assert!(times[9] - sent >= Duration::from_secs(1));
        // And no later than serialization plus one trip.
        assert!(times[9] - sent <= Duration::from_millis(1_000 + 100 + 5));
    }

    #[test]
    fn a_limited_downlink_paces_a_stream_and_keeps_it_in_order() {
        let (sent, times, order) = paced_stream(Link::UNLIMITED, Link::new(0, 100_000));
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        assert!(times[9] - sent >= Duration::from_secs(1));
        assert!(times[9] - sent <= Duration::from_millis(1_000 + 100 + 5));
    }

    #[test]
    fn senders_share_the_receivers_downlink() {
        let mut sim = Sim::new(NetConfig::default());
        let receiver = sim.add(|_| Meter::default());
        sim.set_link(receiver, Link::new(0, 100_000));
        let senders = [sim.add(|_| Meter::default()), sim.add(|_| Meter::default())];
        for s in senders {
            sim.set_link(s, Link::new(100_000, 0));
            open_stream(&mut sim, s, receiver);
        }
        let sent = sim.now();
        for s in senders {
            send_segments(&mut sim, s, 10, 10_000);
        }
        sim.run_for(Duration::from_secs(5), &mut silent).unwrap();
        let arrivals = &sim.node(receiver).unwrap().arrivals;
        assert_eq!(arrivals.len(), 20);
        // Each uplink alone needs 1 s; the shared downlink needs 2 s for both.
        let last = arrivals.iter().map(|(t, _)| *t).max().unwrap();
        assert!(last - sent >= Duration::from_secs(2));
        assert_eq!(sim.received_bytes(receiver), 200_000);
    }

    #[test]
    fn unlimited_links_add_nothing_to_the_latency() {
        // No jitter, so a payload's arrival is exactly the pair's base latency.
        let mut sim = Sim::new(NetConfig {
            jitter: Duration::ZERO,
            ..NetConfig::default()
        });
        let (a, b) = (sim.add(|_| Meter::default()), sim.add(|_| Meter::default()));
        assert_eq!(
            (sim.link(a), sim.link(b)),
            (Link::UNLIMITED, Link::UNLIMITED)
        );
        open_stream(&mut sim, a, b);
        let latency = sim.net.latency(a as u32, b as u32);
        let sent = sim.now();
        sim.command(a, &mut silent, |m, _| {
            m.out.push_back((Dest::Addr(addr_of(b)), vec![1; 1 << 20]));
            m.out
                .push_back((Dest::Conn(ConnId::outbound(1)), vec![2; 1 << 20]));
        });
        sim.run_for(Duration::from_secs(1), &mut silent).unwrap();
        let times: Vec<_> = sim
            .node(b)
            .unwrap()
            .arrivals
            .iter()
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(times, [sent + latency, sent + latency]);
    }

    #[test]
    fn byte_counters_add_up() {
        let mut sim = Sim::new(NetConfig::default());
        let [a, b, c] = [0; 3].map(|_| sim.add(|_| Meter::default()));
        sim.set_link(a, Link::new(1_000, 2_000));
        open_stream(&mut sim, a, c);
        sim.command(a, &mut silent, |m, _| {
            for _ in 0..3 {
                m.out.push_back((Dest::Addr(addr_of(b)), vec![0; 100]));
            }
        });
        send_segments(&mut sim, a, 2, 50);
        // A lost datagram left the sender all the same.
        sim.set_loss(1.0);
        sim.command(a, &mut silent, |m, _| {
            m.out.push_back((Dest::Addr(addr_of(b)), vec![0; 7]))
        });
        sim.run_for(Duration::from_secs(5), &mut silent).unwrap();
        assert_eq!(sim.sent_bytes(a), 407);
        assert_eq!([a, b, c].map(|n| sim.received_bytes(n)), [0, 300, 100]);
        assert_eq!(sim.stats().bytes, 400);
        assert_eq!((sim.sent_bytes(b), sim.sent_bytes(c)), (0, 0));
    }

    #[test]
    fn extreme_rates_and_unknown_nodes_do_not_panic() {
        let mut sim = Sim::new(NetConfig::default());
        let (a, b) = (sim.add(|_| Meter::default()), sim.add(|_| Meter::default()));
        sim.set_link(99, Link::new(1, 1));
        assert_eq!(sim.link(99), Link::UNLIMITED);
        assert_eq!((sim.sent_bytes(99), sim.received_bytes(99)), (0, 0));
        sim.set_link(a, Link::new(u64::MAX, 1));
        sim.set_link(b, Link::new(1, u64::MAX));
        for (from, to) in [(a, b), (b, a)] {
            sim.command(from, &mut silent, |m, _| {
                m.out.push_back((Dest::Addr(addr_of(to)), vec![0; 1 << 20]));
                m.out.push_back((Dest::Addr(addr_of(to)), vec![0; 1 << 20]));
            });
        }
        sim.run_until(Instant::from_micros(u64::MAX), &mut silent)
            .unwrap();
        assert_eq!(sim.stats().delivered, 4);
    }
}
