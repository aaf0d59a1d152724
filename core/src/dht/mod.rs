//! Kademlia as BitTorrent's Mainline DHT: BEP 5 (KRPC, routing table, peers), BEP 42
//! (node ids tied to IPs), BEP 44 (immutable items), plus BEP 32's IPv6 nodes and BEP 43's
//! read-only flag. It speaks KRPC byte for byte, so it joins the DHT of libtorrent and
//! aria2 (see `node/tests/dht_interop.rs`).
//!
//! * The **routing table** ([`routing`]) splits only the bucket that covers our own id; a
//!   full bucket evicts its least recently seen node only after that node fails a ping.
//! * **Lookups** are iterative ([`lookup`]): alpha requests in flight, converging on the K
//!   closest nodes that answer. `get_peers`, `announce_peer`, BEP 44 `get` and `put` are
//!   lookups followed, for writes, by a store to those K nodes with the tokens they gave.
//! * **Serving**: queries are answered from the table and the stores ([`store`]); write
//!   tokens are bound to the requester's IP and its secret rotates every 5 minutes.
//!
//! # Example
//!
//! ```
//! use overlay_core::dht::{Config, Dht, Event};
//! use overlay_core::{Dest, Instant, Machine, Output, PeerAddr};
//!
//! let mut node: Dht = Dht::new(Config::default(), PeerAddr::v4([127, 0, 0, 1], 6881), 7);
//! let now = Instant::ZERO;
//! node.bootstrap(now, &[PeerAddr::v4([127, 0, 0, 1], 6882)]).unwrap();
//! let mut sent = 0;
//! let deadline = loop {
//!     match node.poll_output(now) {
//!         Output::Transmit { to: Dest::Addr(to), payload } => {
//!             assert_eq!(to.port(), 6882); // socket.send_to(payload, to): a find_node
//!             assert!(payload.starts_with(b"d1:ad2:id20:"));
//!             sent += 1;
//!         }
//!         Output::Wait(deadline) => break deadline,
//!         _ => {}
//!     }
//! };
//! assert_eq!(sent, 1);
//! assert!(deadline.is_some()); // the request's timeout
//! ```

pub mod bep42;
pub mod config;
pub mod lookup;
pub mod routing;
pub mod store;
pub mod wire;

pub use config::Config;
pub use lookup::Token;
pub use routing::{Heard, Node, NodeState, RoutingTable};
pub use store::{item_target, string_item};

use crate::bencode;
use crate::machine::{Dest, Input, Machine, Output};
use crate::{Duration, Id, Instant, PeerAddr, QueryId, Rng};
use config::{
    MAX_BOOTSTRAP, MAX_DATAGRAM, MAX_ITEM, MAX_K, MAX_OUTBOX, MAX_PEERS_RESULT, MAX_PENDING,
    MAX_TID,
};
use core::net::IpAddr;
use heapless::{Deque, Vec};
use lookup::{Candidates, State};
use store::{ItemStore, PeerStore, Tokens};
use wire::{Body, OutQuery, OutResponse, Query, Want};

/// Why a command could not be started.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CommandError {
    /// Too many lookups in progress; retry after one completes.
    Busy,
    /// The item is not one bencoded value of at most 1000 bytes (BEP 44).
    BadItem,
    /// No bootstrap address was given.
    NoNodes,
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CommandError::Busy => "too many lookups in progress",
            CommandError::BadItem => "an item must be one bencoded value of at most 1000 bytes",
            CommandError::NoNodes => "no node to bootstrap from",
        })
    }
}

impl core::error::Error for CommandError {}

/// Why a command failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Failure {
    /// The routing table is empty: bootstrap first.
    NoNodes,
    /// No node answered.
    Unreachable,
    /// The item to put was evicted from our own store before it could be sent.
    ItemLost,
}

/// How a lookup went: the figures Kademlia's analysis is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct LookupStats {
    /// The longest chain of referrals followed (1: the nodes the lookup started from
    /// answered).
    pub rounds: u8,
    /// Requests sent in the search (stores excluded).
    pub messages: u16,
    /// Requests that timed out or were answered with an error.
    pub failures: u16,
    /// From the command to its result (the writes of an announce or a put included).
    pub elapsed: Duration,
}

/// What a DHT node reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event<'a> {
    /// The self-lookup after a bootstrap finished; the table holds `nodes` nodes.
    Bootstrapped {
        /// The bootstrap's id.
        query: QueryId,
        /// Nodes in the routing table.
        nodes: usize,
    },
    /// A `find_node` lookup converged: the K closest nodes that answered, closest first.
    Nodes {
        /// The lookup's id.
        query: QueryId,
        /// The target.
        target: Id,
        /// The nodes.
        nodes: &'a [(Id, PeerAddr)],
        /// How it went.
        stats: LookupStats,
    },
    /// A `get_peers` lookup finished.
    Peers {
        /// The lookup's id.
        query: QueryId,
        /// The torrent.
        info_hash: Id,
        /// Peers found (at most [`config::MAX_PEERS_RESULT`]).
        peers: &'a [PeerAddr],
        /// How it went.
        stats: LookupStats,
    },
    /// An announce finished: `stored` of the K closest nodes accepted it.
    Announced {
        /// The announce's id.
        query: QueryId,
        /// The torrent.
        info_hash: Id,
        /// Nodes that acknowledged the `announce_peer`.
        stored: u8,
        /// How the lookup went.
        stats: LookupStats,
    },
    /// A BEP 44 `get` finished.
    Item {
        /// The get's id.
        query: QueryId,
        /// The target (SHA-1 of the bencoded value).
        target: Id,
        /// The bencoded value, verified against the target; `None` if no node had it.
        value: Option<&'a [u8]>,
        /// How it went.
        stats: LookupStats,
    },
    /// A BEP 44 `put` finished: `stored` of the K closest nodes accepted it.
    Stored {
        /// The put's id.
        query: QueryId,
        /// The target.
        target: Id,
        /// Nodes that acknowledged the `put`.
        stored: u8,
        /// How the lookup went.
        stats: LookupStats,
    },
    /// A command failed.
    Failed {
        /// The command's id.
        query: QueryId,
        /// Why.
        reason: Failure,
    },
    /// BEP 42: responders agree on a public address our id did not match, so the node took
    /// this id for it and is bootstrapping again.
    NewId {
        /// The new id.
        id: Id,
        /// The external address it was made for.
        external: IpAddr,
    },
}

/// Counters of what the node received, dropped and served.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that were not valid KRPC.
    pub malformed: u64,
    /// Well-formed input that made no sense now (a response nobody waited for, stream
    /// input, our own id).
    pub unexpected: u64,
    /// Queries answered (errors included).
    pub answered: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Error responses received.
    pub errors: u64,
    /// `announce_peer` or `put` refused for a bad token.
    pub bad_tokens: u64,
    /// Messages or peers dropped because a queue was full.
    pub dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Our own id after a bootstrap: fills the table, reports [`Event::Bootstrapped`].
    Bootstrap,
    /// A stale bucket's refresh: reports nothing.
    Refresh,
    FindNode,
    GetPeers,
    Announce {
        port: u16,
        implied_port: bool,
    },
    Get,
    Put,
}

impl Kind {
    /// Whether the lookup ends by writing to the nodes it found.
    fn is_write(self) -> bool {
        matches!(self, Kind::Announce { .. } | Kind::Put)
    }

    /// The write to send, with a node's token, once the search converged.
    fn store(self, target: Id, token: Token) -> Option<OutQueryKind> {
        match self {
            Kind::Announce { port, implied_port } => Some(OutQueryKind::Announce {
                info_hash: target,
                port,
                implied_port,
                token,
            }),
            Kind::Put => Some(OutQueryKind::Put { target, token }),
            _ => None,
        }
    }

    fn query(self, target: Id) -> OutQueryKind {
        match self {
            Kind::Bootstrap | Kind::Refresh | Kind::FindNode => OutQueryKind::FindNode(target),
            Kind::GetPeers | Kind::Announce { .. } => OutQueryKind::GetPeers(target),
            Kind::Get | Kind::Put => OutQueryKind::Get(target),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Search,
    /// Writing to the closest nodes: `outstanding` requests, `acked` acknowledgements.
    Store {
        outstanding: u8,
        acked: u8,
    },
    Done(Outcome),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Finished; a write was acknowledged by this many nodes.
    Ok(u8),
    /// A `get` found its item.
    Found,
    Failed(Failure),
}

#[derive(Clone, Debug)]
struct Lookup {
    query: QueryId,
    started: Instant,
    kind: Kind,
    cands: Candidates,
    in_flight: u8,
    phase: Phase,
    stats: LookupStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// A liveness check for the routing table.
    Ping,
    /// A `find_node` to a bootstrap address.
    Bootstrap(QueryId),
    Search(QueryId),
    Store(QueryId),
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    tid: u16,
    to: PeerAddr,
    sent: Instant,
    purpose: Purpose,
}

/// A query, as queued: tokens and items are filled in when it is encoded.
#[derive(Clone, Copy, Debug)]
enum OutQueryKind {
    Ping,
    FindNode(Id),
    GetPeers(Id),
    Announce {
        info_hash: Id,
        port: u16,
        implied_port: bool,
        token: Token,
    },
    Get(Id),
    Put {
        target: Id,
        token: Token,
    },
}

/// A response, as queued: its nodes, peers and token come from the node's state when it is
/// encoded.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Pong,
    Nodes { target: Id, want: Want },
    Peers { info_hash: Id, want: Want },
    Item { target: Id, want: Want },
    Error { code: i64, message: &'static str },
}

#[derive(Clone, Copy, Debug)]
struct Tid {
    bytes: [u8; MAX_TID],
    len: u8,
}

#[derive(Clone, Copy, Debug)]
enum Out {
    Query {
        to: PeerAddr,
        tid: u16,
        query: OutQueryKind,
    },
    Reply {
        to: PeerAddr,
        tid: Tid,
        reply: Reply,
    },
}

/// A Mainline DHT node: a [`Machine`] speaking KRPC datagrams.
///
/// `TABLE` is the routing table's capacity in nodes (K per bucket across up to
/// [`config::MAX_BUCKETS`] buckets: 128 holds the table of a node in a network of millions),
/// `LOOKUPS` the lookups in progress at once, `PEERS` the announced peers it stores and
/// `ITEMS` the BEP 44 items (1 KiB each). `core::mem::size_of::<Dht<..>>()` is its RAM;
/// docs/dht.md has the figures.
pub struct Dht<
    const TABLE: usize = 128,
    const LOOKUPS: usize = 8,
    const PEERS: usize = 256,
    const ITEMS: usize = 16,
> {
    config: Config,
    addr: PeerAddr,
    rng: Rng,
    table: RoutingTable<TABLE>,
    lookups: Vec<Lookup, LOOKUPS>,
    pending: Vec<Pending, MAX_PENDING>,
    outbox: Deque<Out, MAX_OUTBOX>,
    tokens: Tokens,
    peers: PeerStore<PEERS>,
    items: ItemStore<ITEMS>,
    /// Peers found by `get_peers` lookups in progress.
    found: Vec<(QueryId, PeerAddr), { 2 * MAX_PEERS_RESULT }>,
    bootstrap: Vec<PeerAddr, MAX_BOOTSTRAP>,
    /// BEP 42: (responder's IP, the IP it saw us at), one vote per responder, newest last.
    votes: Deque<(IpAddr, IpAddr), 8>,
    next_tid: u16,
    next_query: u64,
    next_tick: Instant,
    next_rebootstrap: Instant,
    next_self_refresh: Instant,
    next_liveness: Instant,
    /// A lookup whose event was returned by the last `poll_output`: removed on the next.
    reported: Option<QueryId>,
    /// BEP 42 gave us a new id for this external address: not reported yet.
    new_id_for: Option<IpAddr>,
    stats: Stats,
    event_nodes: Vec<(Id, PeerAddr), MAX_K>,
    event_peers: Vec<PeerAddr, MAX_PEERS_RESULT>,
    tx: [u8; MAX_DATAGRAM],
}

impl<const TABLE: usize, const LOOKUPS: usize, const PEERS: usize, const ITEMS: usize>
    Dht<TABLE, LOOKUPS, PEERS, ITEMS>
{
    /// A node at `addr` with a random id, or with a BEP 42 id when `addr` is a public
    /// address (a node behind NAT should use [`Dht::with_id`] and an id made by
    /// [`bep42::generate`] from its external IP).
    pub fn new(config: Config, addr: PeerAddr, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let id = if bep42::is_local(addr.ip()) || addr.ip().is_unspecified() {
            let mut id = Id::ZERO;
            rng.fill(&mut id.0);
            id
        } else {
            bep42::generate(addr.ip(), &mut rng)
        };
        Self::with_rng(config, id, addr, rng)
    }

    /// A node with a caller-chosen id.
    pub fn with_id(config: Config, id: Id, addr: PeerAddr, seed: u64) -> Self {
        Self::with_rng(config, id, addr, Rng::new(seed))
    }

    // Never inlined, so that the node is built straight into the caller's return slot: a
    // firmware puts it in a static, and an inlined constructor would first build a stack
    // copy of this ~20 KiB struct.
    #[inline(never)]
    fn with_rng(config: Config, id: Id, addr: PeerAddr, mut rng: Rng) -> Self {
        let mut config = config;
        config.k = config.k.clamp(1, MAX_K);
        config.alpha = config.alpha.clamp(1, MAX_PENDING);
        let now = Instant::ZERO;
        Dht {
            table: RoutingTable::new(id, &config, now),
            tokens: Tokens::new(&mut rng, now),
            next_tid: rng.next_u32() as u16,
            config,
            addr,
            rng,
            lookups: Vec::new(),
            pending: Vec::new(),
            outbox: Deque::new(),
            peers: PeerStore::default(),
            items: ItemStore::default(),
            found: Vec::new(),
            bootstrap: Vec::new(),
            votes: Deque::new(),
            next_query: 0,
            next_tick: now,
            next_rebootstrap: now,
            next_self_refresh: now + config.self_refresh,
            next_liveness: now,
            reported: None,
            new_id_for: None,
            stats: Stats::default(),
            event_nodes: Vec::new(),
            event_peers: Vec::new(),
            tx: [0; MAX_DATAGRAM],
        }
    }

    // ----- accessors -----

    /// Our node id.
    pub fn id(&self) -> Id {
        self.table.own()
    }
    /// The address we were created with.
    pub fn addr(&self) -> PeerAddr {
        self.addr
    }
    /// The settings in force (after clamping).
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The routing table.
    pub fn table(&self) -> &RoutingTable<TABLE> {
        &self.table
    }
    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// Announced peers stored for others.
    pub fn stored_peers(&self) -> usize {
        self.peers.len()
    }
    /// BEP 44 items stored.
    pub fn stored_items(&self) -> usize {
        self.items.len()
    }
    /// A stored BEP 44 item.
    pub fn item(&self, target: Id) -> Option<&[u8]> {
        self.items.get(target)
    }
    /// Lookups in progress.
    pub fn lookups(&self) -> usize {
        self.lookups.len()
    }
    /// BEP 42: our external address as responders report it: what a majority of the last
    /// eight responders (at least three) saw.
    pub fn external_ip(&self) -> Option<IpAddr> {
        let count = |ip: &IpAddr| self.votes.iter().filter(|(_, v)| v == ip).count();
        self.votes
            .iter()
            .map(|(_, ip)| *ip)
            .find(|ip| count(ip) >= 3 && count(ip) * 2 > self.votes.len())
    }

    /// Counts a responder's report of our address (BEP 42's `ip`); when responders agree on a public address
    /// our id does not match, takes a BEP 42 id for it and rejoins through the nodes we knew
    /// (libtorrent restarts its DHT node the same way).
    fn vote(&mut self, now: Instant, voter: IpAddr, seen: IpAddr) {
        if let Some(i) = self.votes.iter().position(|(v, _)| *v == voter) {
            // One vote per responder: its newest report replaces its last.
            let mut kept: Deque<(IpAddr, IpAddr), 8> = Deque::new();
            for (j, v) in self.votes.iter().enumerate() {
                if j != i {
                    let _ = kept.push_back(*v);
                }
            }
            self.votes = kept;
        } else if self.votes.is_full() {
            self.votes.pop_front();
        }
        let _ = self.votes.push_back((voter, seen));
        let Some(ip) = self.external_ip() else {
            return;
        };
        if !self.config.bep42_id || bep42::is_local(ip) || bep42::verify(self.id(), ip) {
            return;
        }
        let id = bep42::generate(ip, &mut self.rng);
        for n in self.table.iter() {
            if self.bootstrap.is_full() {
                break;
            }
            if !self.bootstrap.contains(&n.addr) {
                let _ = self.bootstrap.push(n.addr);
            }
        }
        self.table.clear(id, now);
        self.votes.clear();
        self.new_id_for = Some(ip);
        let _ = self.bootstrap(now, &[]);
    }

    // ----- commands -----

    /// Joins the DHT through `nodes` (addresses; their ids are learnt from their answers):
    /// asks each for the nodes closest to our own id, then looks our id up, which fills the
    /// routing table. [`Event::Bootstrapped`] follows. The addresses are kept: when the
    /// table empties, the node bootstraps from them again.
    pub fn bootstrap(&mut self, now: Instant, nodes: &[PeerAddr]) -> Result<QueryId, CommandError> {
        if nodes.is_empty() && self.bootstrap.is_empty() {
            return Err(CommandError::NoNodes);
        }
        for a in nodes {
            if !self.bootstrap.contains(a) && self.bootstrap.push(*a).is_err() {
                break;
            }
        }
        let query = self.start(now, Kind::Bootstrap, self.id())?;
        self.next_self_refresh = now + self.config.self_refresh;
        let targets = self.bootstrap.clone();
        for a in targets {
            // Counted in flight so that the self-lookup waits for the bootstrap answers.
            if self.send_query(
                now,
                a,
                OutQueryKind::FindNode(self.id()),
                Purpose::Bootstrap(query),
            ) && let Some(l) = self.lookup_mut(query)
            {
                l.in_flight += 1;
                l.stats.messages += 1;
            }
        }
        Ok(query)
    }

    /// Looks up the K nodes closest to `target` ([`Event::Nodes`]).
    pub fn find_node(&mut self, now: Instant, target: Id) -> Result<QueryId, CommandError> {
        self.start(now, Kind::FindNode, target)
    }

    /// Looks up peers of a torrent ([`Event::Peers`]).
    pub fn get_peers(&mut self, now: Instant, info_hash: Id) -> Result<QueryId, CommandError> {
        self.start(now, Kind::GetPeers, info_hash)
    }

    /// Announces that we have a torrent, listening on `port` (`None`: the port our DHT
    /// datagrams come from, BEP 5's `implied_port`) to the K closest nodes
    /// ([`Event::Announced`]). Re-announce every 15 minutes or so: nodes forget after 30.
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: Id,
        port: Option<u16>,
    ) -> Result<QueryId, CommandError> {
        let kind = Kind::Announce {
            port: port.unwrap_or(0),
            implied_port: port.is_none(),
        };
        self.start(now, kind, info_hash)
    }

    /// BEP 44 `get` of an immutable item ([`Event::Item`]). A found item is kept in our own
    /// item store, from where the event reads it (so `ITEMS` must be at least 1).
    pub fn get(&mut self, now: Instant, target: Id) -> Result<QueryId, CommandError> {
        self.start(now, Kind::Get, target)
    }

    /// BEP 44 `put` of an immutable item: `value` is one bencoded value (a string is
    /// `<len>:<bytes>`) of at most 1000 bytes, stored under its SHA-1, first in our own
    /// store and then on the K closest nodes ([`Event::Stored`]). Returns the target too.
    pub fn put(&mut self, now: Instant, value: &[u8]) -> Result<(QueryId, Id), CommandError> {
        if value.len() > MAX_ITEM || bencode::decode(value).is_err() {
            return Err(CommandError::BadItem);
        }
        if self.lookups.is_full() {
            return Err(CommandError::Busy);
        }
        let target = self.items.put(now, value).ok_or(CommandError::BadItem)?;
        Ok((self.start(now, Kind::Put, target)?, target))
    }

    fn start(&mut self, now: Instant, kind: Kind, target: Id) -> Result<QueryId, CommandError> {
        if self.lookups.is_full() {
            return Err(CommandError::Busy);
        }
        let query = QueryId(self.next_query);
        self.next_query += 1;
        let mut cands = Candidates::new(target);
        let mut seeds: Vec<(Id, PeerAddr), { 2 * MAX_K }> = Vec::new();
        self.table.closest(target, &mut seeds);
        for (id, addr) in seeds.iter().take(2 * self.config.k) {
            cands.add(*id, *addr, 1);
        }
        let phase = if seeds.is_empty() && kind != Kind::Bootstrap {
            Phase::Done(Outcome::Failed(Failure::NoNodes))
        } else {
            Phase::Search
        };
        let _ = self.lookups.push(Lookup {
            query,
            kind,
            cands,
            in_flight: 0,
            phase,
            stats: LookupStats::default(),
            started: now,
        });
        Ok(query)
    }

    // ----- sending -----

    fn send_query(
        &mut self,
        now: Instant,
        to: PeerAddr,
        query: OutQueryKind,
        purpose: Purpose,
    ) -> bool {
        if self.pending.is_full() || self.outbox.is_full() {
            self.stats.dropped += 1;
            return false;
        }
        self.next_tid = self.next_tid.wrapping_add(1);
        let tid = self.next_tid;
        let _ = self.pending.push(Pending {
            tid,
            to,
            sent: now,
            purpose,
        });
        let _ = self.outbox.push_back(Out::Query { to, tid, query });
        true
    }

    fn reply(&mut self, to: PeerAddr, tid: &[u8], reply: Reply) {
        let mut t = Tid {
            bytes: [0; MAX_TID],
            len: 0,
        };
        let Some(slot) = t.bytes.get_mut(..tid.len()) else {
            self.stats.malformed += 1;
            return;
        };
        slot.copy_from_slice(tid);
        t.len = tid.len() as u8;
        if self
            .outbox
            .push_back(Out::Reply { to, tid: t, reply })
            .is_err()
        {
            self.stats.dropped += 1;
        }
    }

    fn ping_if_absent(&mut self, now: Instant, addr: PeerAddr) {
        if !self.pending.iter().any(|p| p.to == addr) {
            self.send_query(now, addr, OutQueryKind::Ping, Purpose::Ping);
        }
    }

    // ----- receiving -----

    fn on_datagram(&mut self, now: Instant, from: PeerAddr, payload: &[u8]) {
        self.stats.received += 1;
        let msg = match wire::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                if let (Some(tid), false) = (e.query_tid, self.config.read_only) {
                    self.reply(
                        from,
                        tid,
                        Reply::Error {
                            code: wire::code::PROTOCOL,
                            message: "Protocol Error",
                        },
                    );
                }
                return;
            }
        };
        match msg.body {
            Body::Query {
                sender,
                read_only,
                want,
                query,
            } => self.on_query(now, from, msg.tid, sender, read_only, want, query),
            Body::Response(r) => {
                let Some(p) = self.take_pending(msg.tid, from) else {
                    self.stats.unexpected += 1;
                    return;
                };
                if r.id == self.id() {
                    self.stats.unexpected += 1;
                    return;
                }
                let verified = bep42::verify(r.id, from.ip());
                if let Heard::PingFirst(n) = self.table.heard(now, r.id, from, verified) {
                    self.ping_if_absent(now, n.addr);
                }
                if let Some(ip) = msg.ip {
                    self.vote(now, from.ip(), ip.ip());
                }
                self.on_response(now, from, p.purpose, &r);
            }
            Body::Error { .. } => {
                let Some(p) = self.take_pending(msg.tid, from) else {
                    self.stats.unexpected += 1;
                    return;
                };
                self.stats.errors += 1;
                self.on_failure(now, p, false);
            }
        }
    }

    fn take_pending(&mut self, tid: &[u8], from: PeerAddr) -> Option<Pending> {
        let tid: [u8; 2] = tid.try_into().ok()?;
        let tid = u16::from_be_bytes(tid);
        let i = self
            .pending
            .iter()
            .position(|p| p.tid == tid && p.to == from)?;
        Some(self.pending.swap_remove(i))
    }

    #[allow(clippy::too_many_arguments)]
    fn on_query(
        &mut self,
        now: Instant,
        from: PeerAddr,
        tid: &[u8],
        sender: Id,
        read_only: bool,
        want: Want,
        query: Query<'_>,
    ) {
        if self.config.read_only || sender == self.id() || from.port() == 0 {
            self.stats.unexpected += 1;
            return;
        }
        // Tokens are checked against the secrets of `now`, not of the last poll.
        self.tokens
            .rotate(now, self.config.token_rotation, &mut self.rng);
        // BEP 5: a node that queries us is good if it has answered us before; an unknown one
        // is pinged, and enters the table if it answers. BEP 43: read-only nodes never do.
        if !read_only {
            if self.table.contains(sender) {
                self.table
                    .heard(now, sender, from, bep42::verify(sender, from.ip()));
            } else if self.table.would_add(now, sender, from) {
                self.ping_if_absent(now, from);
            }
        }
        let want = if want.v4 || want.v6 {
            want
        } else {
            Want {
                v4: !from.is_v6(),
                v6: from.is_v6(),
            }
        };
        self.stats.answered += 1;
        let reply = match query {
            Query::Ping => Reply::Pong,
            Query::FindNode { target } => Reply::Nodes { target, want },
            Query::GetPeers { info_hash } => Reply::Peers { info_hash, want },
            Query::Get { target } => Reply::Item { target, want },
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.valid(token, from.ip()) {
                    self.stats.bad_tokens += 1;
                    Reply::Error {
                        code: wire::code::PROTOCOL,
                        message: "bad token",
                    }
                } else if !implied_port && port == 0 {
                    Reply::Error {
                        code: wire::code::PROTOCOL,
                        message: "invalid port",
                    }
                } else {
                    let port = if implied_port { from.port() } else { port };
                    let peer = match from.ip() {
                        IpAddr::V4(ip) => PeerAddr::v4(ip.octets(), port),
                        IpAddr::V6(ip) => PeerAddr::v6(ip.octets(), port),
                    };
                    self.peers
                        .announce(now, info_hash, peer, self.config.max_peers_per_torrent);
                    Reply::Pong
                }
            }
            Query::Put {
                token,
                value,
                mutable,
            } => {
                if mutable {
                    Reply::Error {
                        code: wire::code::PROTOCOL,
                        message: "mutable items are not supported",
                    }
                } else if value.len() > MAX_ITEM {
                    Reply::Error {
                        code: wire::code::MESSAGE_TOO_BIG,
                        message: "v too big",
                    }
                } else if !self.tokens.valid(token, from.ip()) {
                    self.stats.bad_tokens += 1;
                    Reply::Error {
                        code: wire::code::PROTOCOL,
                        message: "bad token",
                    }
                } else {
                    let _ = self.items.put(now, value);
                    Reply::Pong
                }
            }
            Query::Unknown { .. } => Reply::Error {
                code: wire::code::METHOD_UNKNOWN,
                message: "Method Unknown",
            },
        };
        self.reply(from, tid, reply);
    }

    fn lookup_mut(&mut self, query: QueryId) -> Option<&mut Lookup> {
        self.lookups.iter_mut().find(|l| l.query == query)
    }

    fn on_response(
        &mut self,
        now: Instant,
        from: PeerAddr,
        purpose: Purpose,
        r: &wire::Response<'_>,
    ) {
        match purpose {
            Purpose::Ping => {}
            Purpose::Bootstrap(query) => {
                // The bootstrap node's id is known now; its nodes seed the self-lookup.
                let own = self.table.own();
                if let Some(l) = self.lookup_mut(query) {
                    l.in_flight = l.in_flight.saturating_sub(1);
                    l.cands.add(r.id, from, 1);
                    if let Some(c) = l.cands.get_mut(from) {
                        c.state = State::Answered;
                    }
                    l.stats.rounds = l.stats.rounds.max(1);
                    for (id, addr) in r.nodes.iter().chain(r.nodes6.iter()) {
                        if id != own && addr.port() != 0 {
                            l.cands.add(id, addr, 2);
                        }
                    }
                }
            }
            Purpose::Search(query) => {
                let own = self.table.own();
                let Some(l) = self.lookups.iter_mut().find(|l| l.query == query) else {
                    return;
                };
                l.in_flight = l.in_flight.saturating_sub(1);
                let Some(c) = l.cands.get_mut(from) else {
                    return;
                };
                c.state = State::Answered;
                c.token = r.token.and_then(Token::new);
                let depth = c.depth;
                l.stats.rounds = l.stats.rounds.max(depth);
                for (id, addr) in r.nodes.iter().chain(r.nodes6.iter()) {
                    if id != own && addr.port() != 0 {
                        l.cands.add(id, addr, depth.saturating_add(1));
                    }
                }
                match l.kind {
                    Kind::GetPeers => {
                        if let Some(values) = &r.values {
                            for peer in wire::peers(values) {
                                let known = self.found.contains(&(query, peer));
                                if !known
                                    && peer.port() != 0
                                    && self.found.push((query, peer)).is_err()
                                {
                                    self.stats.dropped += 1;
                                }
                            }
                        }
                    }
                    Kind::Get => {
                        let target = l.cands.target();
                        if let Some(v) = r.value.filter(|v| item_target(v) == target) {
                            l.phase = Phase::Done(Outcome::Found);
                            let _ = self.items.put(now, v);
                        }
                    }
                    _ => {}
                }
            }
            Purpose::Store(query) => {
                if let Some(l) = self.lookup_mut(query)
                    && let Phase::Store { outstanding, acked } = l.phase
                {
                    l.phase = Phase::Store {
                        outstanding: outstanding.saturating_sub(1),
                        acked: acked.saturating_add(1),
                    };
                }
            }
        }
    }

    /// A request timed out (`timeout`) or was answered with an error.
    fn on_failure(&mut self, now: Instant, p: Pending, timeout: bool) {
        if timeout {
            self.stats.timeouts += 1;
            self.table.failed(now, p.to);
        }
        match p.purpose {
            Purpose::Ping => {}
            Purpose::Bootstrap(query) => {
                if let Some(l) = self.lookup_mut(query) {
                    l.in_flight = l.in_flight.saturating_sub(1);
                    l.stats.failures = l.stats.failures.saturating_add(1);
                }
            }
            Purpose::Search(query) => {
                if let Some(l) = self.lookup_mut(query) {
                    l.in_flight = l.in_flight.saturating_sub(1);
                    l.stats.failures = l.stats.failures.saturating_add(1);
                    if let Some(c) = l.cands.get_mut(p.to) {
                        c.state = State::Failed;
                    }
                }
            }
            Purpose::Store(query) => {
                if let Some(l) = self.lookup_mut(query)
                    && let Phase::Store { outstanding, acked } = l.phase
                {
                    l.phase = Phase::Store {
                        outstanding: outstanding.saturating_sub(1),
                        acked,
                    };
                }
            }
        }
    }

    // ----- time -----

    fn expire_pending(&mut self, now: Instant) {
        let timeout = self.config.request_timeout;
        let mut i = 0;
        while i < self.pending.len() {
            if now.saturating_since(self.pending[i].sent) >= timeout {
                let p = self.pending.swap_remove(i);
                self.on_failure(now, p, true);
            } else {
                i += 1;
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        self.next_tick = now + self.config.tick;
        self.tokens
            .rotate(now, self.config.token_rotation, &mut self.rng);
        self.peers.expire(now, self.config.peer_lifetime);
        self.items.expire(now, self.config.item_lifetime);
        if now >= self.next_liveness {
            self.next_liveness = now + self.config.liveness_interval;
            // Only nodes silent for a minute: the rest proved alive recently enough.
            if let Some(addr) = self.table.least_recently_seen(now, Duration::from_secs(60)) {
                self.ping_if_absent(now, addr);
            }
        }
        if self.table.is_empty() {
            // Re-bootstrap when the table empties (every node we knew failed).
            if !self.bootstrap.is_empty()
                && now >= self.next_rebootstrap
                && !self.lookups.iter().any(|l| l.kind == Kind::Bootstrap)
            {
                self.next_rebootstrap =
                    now + self.config.request_timeout + self.config.request_timeout;
                let _ = self.bootstrap(now, &[]);
            }
        } else if !self.lookups.is_full() {
            if now >= self.next_self_refresh {
                self.next_self_refresh = now + self.config.self_refresh;
                let _ = self.start(now, Kind::Refresh, self.id());
            } else if let Some(target) = self.table.stale_bucket(now, &mut self.rng) {
                let _ = self.start(now, Kind::Refresh, target);
            }
        }
    }

    /// Moves every lookup forward: asks fresh candidates, starts the store phase, finishes.
    fn advance(&mut self, now: Instant) {
        let (k, alpha) = (self.config.k, self.config.alpha);
        for i in 0..self.lookups.len() {
            loop {
                let room = !self.pending.is_full() && !self.outbox.is_full();
                let l = &mut self.lookups[i];
                if l.phase != Phase::Search {
                    break;
                }
                if room
                    && (l.in_flight as usize) < alpha
                    && let Some(c) = l.cands.next_fresh(k)
                {
                    c.state = State::Asked;
                    let addr = c.addr;
                    l.in_flight += 1;
                    l.stats.messages = l.stats.messages.saturating_add(1);
                    let (query, ask) = (l.query, l.kind.query(l.cands.target()));
                    self.send_query(now, addr, ask, Purpose::Search(query));
                    continue;
                }
                if l.in_flight > 0 || !l.cands.converged(k) {
                    break;
                }
                self.converged(now, i);
                break;
            }
            let l = &mut self.lookups[i];
            if let Phase::Store {
                outstanding: 0,
                acked,
            } = l.phase
            {
                l.phase = Phase::Done(if acked > 0 {
                    Outcome::Ok(acked)
                } else {
                    Outcome::Failed(Failure::Unreachable)
                });
            }
        }
        self.lookups
            .retain(|l| !(l.kind == Kind::Refresh && matches!(l.phase, Phase::Done(_))));
    }

    /// A lookup's search converged: report it, or write to the closest nodes.
    fn converged(&mut self, now: Instant, i: usize) {
        let k = self.config.k;
        let l = &self.lookups[i];
        let (query, target, kind) = (l.query, l.cands.target(), l.kind);
        let phase = if l.cands.answered(k).next().is_none() {
            Phase::Done(Outcome::Failed(Failure::Unreachable))
        } else if !kind.is_write() {
            Phase::Done(Outcome::Ok(0))
        } else if kind == Kind::Put && self.items.get(target).is_none() {
            // Our own store evicted it while the lookup ran (more puts than ITEMS).
            Phase::Done(Outcome::Failed(Failure::ItemLost))
        } else {
            let targets: Vec<(PeerAddr, Token), MAX_K> = l
                .cands
                .answered(k)
                .filter_map(|c| Some((c.addr, c.token?)))
                .collect();
            let mut outstanding = 0u8;
            for (addr, token) in targets {
                let Some(store) = kind.store(target, token) else {
                    break;
                };
                if self.send_query(now, addr, store, Purpose::Store(query)) {
                    outstanding += 1;
                }
            }
            Phase::Store {
                outstanding,
                acked: 0,
            }
        };
        self.lookups[i].phase = phase;
    }

    // ----- output -----

    /// Encodes a queued message into the transmit buffer, filling in what comes from the
    /// node's state now (closest nodes, peers, tokens, items). `None`: it could not be
    /// built (an item evicted meanwhile) and is dropped.
    fn encode(&mut self, out: Out) -> Option<(PeerAddr, usize)> {
        // Disjoint borrows: the item store is read while the transmit buffer is written.
        let Dht {
            table,
            tokens,
            peers,
            items,
            rng,
            config,
            tx,
            ..
        } = self;
        let own = table.own();
        match out {
            Out::Query { to, tid, query } => {
                let q = match &query {
                    OutQueryKind::Ping => OutQuery::Ping,
                    OutQueryKind::FindNode(t) => OutQuery::FindNode(*t),
                    OutQueryKind::GetPeers(t) => OutQuery::GetPeers(*t),
                    OutQueryKind::Get(t) => OutQuery::Get(*t),
                    OutQueryKind::Announce {
                        info_hash,
                        port,
                        implied_port,
                        token,
                    } => OutQuery::AnnouncePeer {
                        info_hash: *info_hash,
                        port: *port,
                        implied_port: *implied_port,
                        token: token.as_bytes(),
                    },
                    OutQueryKind::Put { target, token } => OutQuery::Put {
                        token: token.as_bytes(),
                        value: items.get(*target)?,
                    },
                };
                let n = wire::write_query(tx, &tid.to_be_bytes(), own, config.read_only, &q);
                n.ok().map(|n| (to, n))
            }
            Out::Reply { to, tid, reply } => {
                let tid = &tid.bytes[..tid.len as usize];
                let mut nodes: Vec<(Id, PeerAddr), MAX_K> = Vec::new();
                let mut values: Vec<PeerAddr, MAX_PEERS_RESULT> = Vec::new();
                // Only answers that grant writes carry a token (a SHA-1 each).
                let token = match reply {
                    Reply::Peers { .. } | Reply::Item { .. } => tokens.token(to.ip()),
                    _ => [0; store::TOKEN_LEN],
                };
                let mut closest = |target: Id| {
                    table.closest(target, &mut nodes);
                    nodes.truncate(config.k);
                };
                let fields = match reply {
                    Reply::Error { code, message } => {
                        return wire::write_error(tx, tid, code, message)
                            .ok()
                            .map(|n| (to, n));
                    }
                    Reply::Pong => OutResponse::default(),
                    Reply::Nodes { target, want } => {
                        closest(target);
                        OutResponse {
                            want,
                            ..OutResponse::default()
                        }
                    }
                    Reply::Peers { info_hash, want } => {
                        closest(info_hash);
                        peers.peers(info_hash, rng, &mut values);
                        OutResponse {
                            want,
                            token: Some(&token),
                            ..OutResponse::default()
                        }
                    }
                    Reply::Item { target, want } => {
                        closest(target);
                        OutResponse {
                            want,
                            token: Some(&token),
                            value: items.get(target),
                            ..OutResponse::default()
                        }
                    }
                };
                let fields = OutResponse {
                    nodes: &nodes,
                    values: &values,
                    ..fields
                };
                let n = wire::write_response(tx, tid, own, to, &fields);
                n.ok().map(|n| (to, n))
            }
        }
    }

    /// The event of a finished lookup, built in the event buffers.
    fn event_of(&mut self, now: Instant, i: usize) -> Event<'_> {
        let k = self.config.k;
        let l = &mut self.lookups[i];
        l.stats.elapsed = now.saturating_since(l.started);
        let l = &self.lookups[i];
        let outcome = match l.phase {
            Phase::Done(outcome) => outcome,
            _ => Outcome::Failed(Failure::Unreachable),
        };
        let (query, target, stats) = (l.query, l.cands.target(), l.stats);
        let stored = match outcome {
            Outcome::Ok(stored) => stored,
            _ => 0,
        };
        if let Outcome::Failed(reason) = outcome {
            return Event::Failed { query, reason };
        }
        match l.kind {
            Kind::Bootstrap => Event::Bootstrapped {
                query,
                nodes: self.table.len(),
            },
            // Refreshes are removed when they finish, silently (see `advance`).
            Kind::FindNode | Kind::Refresh => {
                self.event_nodes.clear();
                for c in l.cands.answered(k) {
                    let _ = self.event_nodes.push((c.id, c.addr));
                }
                Event::Nodes {
                    query,
                    target,
                    nodes: &self.event_nodes,
                    stats,
                }
            }
            Kind::GetPeers => {
                self.event_peers.clear();
                for (_, p) in self.found.iter().filter(|(q, _)| *q == query) {
                    let _ = self.event_peers.push(*p);
                }
                self.found.retain(|(q, _)| *q != query);
                Event::Peers {
                    query,
                    info_hash: target,
                    peers: &self.event_peers,
                    stats,
                }
            }
            Kind::Get => Event::Item {
                query,
                target,
                value: match outcome {
                    Outcome::Found => self.items.get(target),
                    _ => None,
                },
                stats,
            },
            Kind::Announce { .. } => Event::Announced {
                query,
                info_hash: target,
                stored,
                stats,
            },
            Kind::Put => Event::Stored {
                query,
                target,
                stored,
                stats,
            },
        }
    }
}

impl<const TABLE: usize, const LOOKUPS: usize, const PEERS: usize, const ITEMS: usize> Machine
    for Dht<TABLE, LOOKUPS, PEERS, ITEMS>
{
    type Event<'a> = Event<'a>;

    fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Datagram { from, payload } if payload.len() <= MAX_DATAGRAM => {
                self.on_datagram(now, from, payload)
            }
            Input::Datagram { .. } => {
                self.stats.received += 1;
                self.stats.malformed += 1;
            }
            // KRPC is datagrams only.
            _ => self.stats.unexpected += 1,
        }
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, Event<'_>> {
        if let Some(query) = self.reported.take()
            && let Some(i) = self.lookups.iter().position(|l| l.query == query)
        {
            self.lookups.swap_remove(i);
        }
        self.expire_pending(now);
        if now >= self.next_tick {
            self.tick(now);
        }
        self.advance(now);
        while let Some(out) = self.outbox.pop_front() {
            if let Some((to, n)) = self.encode(out) {
                self.stats.sent += 1;
                return Output::Transmit {
                    to: Dest::Addr(to),
                    payload: &self.tx[..n],
                };
            }
            self.stats.dropped += 1;
        }
        if let Some(external) = self.new_id_for.take() {
            return Output::Event(Event::NewId {
                id: self.id(),
                external,
            });
        }
        if let Some(i) = self
            .lookups
            .iter()
            .position(|l| matches!(l.phase, Phase::Done(_)))
        {
            self.reported = Some(self.lookups[i].query);
            return Output::Event(self.event_of(now, i));
        }
        let deadline = self
            .pending
            .iter()
            .map(|p| p.sent + self.config.request_timeout)
            .fold(self.next_tick, Instant::min);
        Output::Wait(Some(deadline))
    }
}

#[cfg(test)]
mod tests;
