//! The Mainline DHT for Kotlin and Swift: [`DhtNode`] wraps `overlay_core::dht::Dht`,
//! Kademlia as BitTorrent speaks it (BEP 5, 32, 42, 43, 44; see docs/dht.md). It talks
//! KRPC byte for byte, so an app's node joins a DHT of libtorrent, aria2 or
//! `overlay dht start` nodes.

use crate::common::{
    Driver, NodeInfo, OverlayError, SocketAddress, datagram_output, id, id_bytes as bytes, peer,
};
use overlay_core::dht::{Config, Dht, Event, Failure, LookupStats};
use overlay_core::{Duration, PeerAddr};
use std::sync::Arc;

/// Nodes in the routing table; the host node's figures, as are the three below.
pub const TABLE: usize = 256;
/// Lookups in progress at once.
pub const LOOKUPS: usize = 16;
/// Announced peers stored for others.
pub const PEERS: usize = 4096;
/// BEP 44 items stored (1 KiB each).
pub const ITEMS: usize = 256;

/// The machine a `DhtNode` wraps.
pub type Machine = Dht<TABLE, LOOKUPS, PEERS, ITEMS>;

/// Run-time settings; [`dht_config_default`] gives the defaults (BEP 5's and
/// libtorrent's, see docs/dht.md).
#[derive(Clone, Debug, uniffi::Record)]
pub struct DhtConfig {
    /// K, the bucket size and the closest nodes a lookup converges on (1 to 16).
    pub k: u32,
    /// Alpha, the parallel requests of one lookup.
    pub alpha: u32,
    /// An unanswered request fails after this long.
    pub request_timeout_ms: u64,
    /// A node unheard of this long is questionable; a bucket untouched this long is
    /// refreshed (BEP 5: 15 minutes).
    pub node_timeout_ms: u64,
    /// How often the node looks up its own id again.
    pub self_refresh_ms: u64,
    /// How often the least recently heard table entry is pinged.
    pub liveness_interval_ms: u64,
    /// Failed requests in a row after which a node is bad.
    pub failures_to_bad: u8,
    /// How often token secrets rotate (BEP 5: 5 minutes).
    pub token_rotation_ms: u64,
    /// How long an announced peer is kept.
    pub peer_lifetime_ms: u64,
    /// How long a BEP 44 item is kept.
    pub item_lifetime_ms: u64,
    /// Peers kept for one info hash.
    pub max_peers_per_torrent: u32,
    /// One node per IP address in a bucket; turn off on loopback, where every node is
    /// 127.0.0.1.
    pub restrict_ips: bool,
    /// BEP 42: prefer nodes whose id matches their IP.
    pub prefer_verified: bool,
    /// BEP 42: take an id made for our external address when responders agree on one.
    pub bep42_id: bool,
    /// BEP 43: ask others not to add this node to their tables (short-lived clients).
    pub read_only: bool,
    /// How often timeouts, bucket refreshes and secret rotation are checked.
    pub tick_ms: u64,
}

impl From<Config> for DhtConfig {
    fn from(c: Config) -> Self {
        DhtConfig {
            k: c.k as u32,
            alpha: c.alpha as u32,
            request_timeout_ms: c.request_timeout.as_millis(),
            node_timeout_ms: c.node_timeout.as_millis(),
            self_refresh_ms: c.self_refresh.as_millis(),
            liveness_interval_ms: c.liveness_interval.as_millis(),
            failures_to_bad: c.failures_to_bad,
            token_rotation_ms: c.token_rotation.as_millis(),
            peer_lifetime_ms: c.peer_lifetime.as_millis(),
            item_lifetime_ms: c.item_lifetime.as_millis(),
            max_peers_per_torrent: c.max_peers_per_torrent as u32,
            restrict_ips: c.restrict_ips,
            prefer_verified: c.prefer_verified,
            bep42_id: c.bep42_id,
            read_only: c.read_only,
            tick_ms: c.tick.as_millis(),
        }
    }
}

impl From<DhtConfig> for Config {
    fn from(c: DhtConfig) -> Self {
        Config {
            k: c.k as usize,
            alpha: c.alpha as usize,
            request_timeout: Duration::from_millis(c.request_timeout_ms),
            node_timeout: Duration::from_millis(c.node_timeout_ms),
            self_refresh: Duration::from_millis(c.self_refresh_ms),
            liveness_interval: Duration::from_millis(c.liveness_interval_ms),
            failures_to_bad: c.failures_to_bad,
            token_rotation: Duration::from_millis(c.token_rotation_ms),
            peer_lifetime: Duration::from_millis(c.peer_lifetime_ms),
            item_lifetime: Duration::from_millis(c.item_lifetime_ms),
            max_peers_per_torrent: c.max_peers_per_torrent as usize,
            restrict_ips: c.restrict_ips,
            prefer_verified: c.prefer_verified,
            bep42_id: c.bep42_id,
            read_only: c.read_only,
            tick: Duration::from_millis(c.tick_ms),
        }
    }
}

/// The default settings.
#[uniffi::export]
pub fn dht_config_default() -> DhtConfig {
    Config::default().into()
}

/// How a lookup went.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DhtLookupStats {
    /// The longest chain of referrals followed.
    pub rounds: u8,
    /// Requests sent in the search (stores excluded).
    pub messages: u16,
    /// Requests that timed out or were answered with an error.
    pub failures: u16,
    /// From the command to its result, in microseconds.
    pub elapsed_us: u64,
}

impl From<LookupStats> for DhtLookupStats {
    fn from(s: LookupStats) -> Self {
        DhtLookupStats {
            rounds: s.rounds,
            messages: s.messages,
            failures: s.failures,
            elapsed_us: s.elapsed.as_micros(),
        }
    }
}

/// Why a started command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DhtFailure {
    /// No node to ask: the routing table is empty.
    NoNodes,
    /// No node answered.
    Unreachable,
    /// The item to put was evicted from the node's own store before it was sent.
    ItemLost,
}

impl From<Failure> for DhtFailure {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NoNodes => DhtFailure::NoNodes,
            Failure::Unreachable => DhtFailure::Unreachable,
            Failure::ItemLost => DhtFailure::ItemLost,
        }
    }
}

/// What a DHT node reports; `query` is the id the command returned, ids and info hashes
/// are 20 bytes.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DhtEvent {
    /// The bootstrap finished; `nodes` are in the routing table.
    Bootstrapped { query: u64, nodes: u32 },
    /// A `find_node` converged: the K closest nodes to `target` that answered, closest
    /// first.
    Nodes {
        query: u64,
        target: Vec<u8>,
        nodes: Vec<NodeInfo>,
        stats: DhtLookupStats,
    },
    /// A `get_peers` finished: the peers of the torrent `info_hash`.
    Peers {
        query: u64,
        info_hash: Vec<u8>,
        peers: Vec<SocketAddress>,
        stats: DhtLookupStats,
    },
    /// An announce finished: `stored` nodes stored it.
    Announced {
        query: u64,
        info_hash: Vec<u8>,
        stored: u8,
        stats: DhtLookupStats,
    },
    /// A BEP 44 `get` finished: the bencoded value (checked against `target`), or none.
    Item {
        query: u64,
        target: Vec<u8>,
        value: Option<Vec<u8>>,
        stats: DhtLookupStats,
    },
    /// A BEP 44 `put` finished: `stored` nodes stored it.
    Stored {
        query: u64,
        target: Vec<u8>,
        stored: u8,
        stats: DhtLookupStats,
    },
    /// A command failed.
    Failed { query: u64, reason: DhtFailure },
    /// BEP 42: responders agree on a public address our id did not match, so the node
    /// took the id `id` made for `external` and is bootstrapping again.
    NewId { id: Vec<u8>, external: String },
}

impl From<Event<'_>> for DhtEvent {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Bootstrapped { query, nodes } => DhtEvent::Bootstrapped {
                query: query.0,
                nodes: nodes as u32,
            },
            Event::Nodes {
                query,
                target,
                nodes,
                stats,
            } => DhtEvent::Nodes {
                query: query.0,
                target: bytes(target),
                nodes: nodes.iter().map(|&(id, a)| NodeInfo::new(id, a)).collect(),
                stats: stats.into(),
            },
            Event::Peers {
                query,
                info_hash,
                peers,
                stats,
            } => DhtEvent::Peers {
                query: query.0,
                info_hash: bytes(info_hash),
                peers: peers.iter().map(|&p| p.into()).collect(),
                stats: stats.into(),
            },
            Event::Announced {
                query,
                info_hash,
                stored,
                stats,
            } => DhtEvent::Announced {
                query: query.0,
                info_hash: bytes(info_hash),
                stored,
                stats: stats.into(),
            },
            Event::Item {
                query,
                target,
                value,
                stats,
            } => DhtEvent::Item {
                query: query.0,
                target: bytes(target),
                value: value.map(<[u8]>::to_vec),
                stats: stats.into(),
            },
            Event::Stored {
                query,
                target,
                stored,
                stats,
            } => DhtEvent::Stored {
                query: query.0,
                target: bytes(target),
                stored,
                stats: stats.into(),
            },
            Event::Failed { query, reason } => DhtEvent::Failed {
                query: query.0,
                reason: reason.into(),
            },
            Event::NewId { id, external } => DhtEvent::NewId {
                id: bytes(id),
                external: external.to_string(),
            },
        }
    }
}

datagram_output!(
    /// One output of a DHT node.
    DhtOutput,
    DhtEvent
);

/// A node's state and counters.
#[derive(Clone, Debug, uniffi::Record)]
pub struct DhtStatus {
    /// The node's id and the address it was created with.
    pub node: NodeInfo,
    /// Nodes in the routing table.
    pub table_nodes: u32,
    /// Lookups in progress.
    pub lookups: u32,
    /// Announced peers stored for others.
    pub stored_peers: u32,
    /// BEP 44 items stored.
    pub stored_items: u32,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that were not valid KRPC (dropped).
    pub malformed: u64,
    /// Well-formed input that made no sense now (dropped).
    pub unexpected: u64,
    /// Queries answered.
    pub answered: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Error responses received.
    pub errors: u64,
    /// Writes refused for a bad token.
    pub bad_tokens: u64,
    /// Messages or peers dropped because a queue was full.
    pub dropped: u64,
}

/// A BEP 44 put that started: its id, and the target (SHA-1 of the value) to get it by.
#[derive(Clone, Debug, uniffi::Record)]
pub struct DhtPut {
    /// The command's id.
    pub query: u64,
    /// The item's target.
    pub target: Vec<u8>,
}

/// A Mainline DHT node. Thread-safe; feed it the datagrams its socket receives, send what
/// `poll_output` gives until it says `Wait`.
#[derive(uniffi::Object)]
pub struct DhtNode {
    driver: Driver<Machine>,
}

#[uniffi::export]
impl DhtNode {
    /// A node at `addr` with a random id from `seed` (the same seed and calls give the
    /// same outputs). Call `bootstrap` next.
    #[uniffi::constructor]
    pub fn new(
        config: DhtConfig,
        addr: SocketAddress,
        seed: u64,
    ) -> Result<Arc<Self>, OverlayError> {
        let addr = peer(&addr)?;
        let driver = Driver::build(|| Ok(Machine::new(config.into(), addr, seed)))?;
        Ok(Arc::new(DhtNode { driver }))
    }

    /// Hands it a datagram from `from`. Malformed ones are dropped and counted (`status`).
    pub fn handle_datagram(
        &self,
        now_us: u64,
        from: SocketAddress,
        datagram: Vec<u8>,
    ) -> Result<(), OverlayError> {
        self.driver.datagram(now_us, &from, &datagram)
    }

    /// Its next output; call until `Wait`.
    pub fn poll_output(&self, now_us: u64) -> Result<DhtOutput, OverlayError> {
        self.driver.poll(now_us, |e| e.into())
    }

    /// Joins the DHT through `nodes` (addresses; their ids are learnt from their answers):
    /// `Bootstrapped` or `Failed` follows. The addresses are kept: when the table empties,
    /// the node bootstraps from them again.
    pub fn bootstrap(&self, now_us: u64, nodes: Vec<SocketAddress>) -> Result<u64, OverlayError> {
        let nodes = nodes
            .iter()
            .map(peer)
            .collect::<Result<Vec<PeerAddr>, _>>()?;
        self.driver
            .run(now_us, |m, now| Ok(m.bootstrap(now, &nodes)?.0))
    }

    /// Finds the K nodes closest to `target` (20 bytes): `Nodes` or `Failed` follows.
    pub fn find_node(&self, now_us: u64, target: Vec<u8>) -> Result<u64, OverlayError> {
        let target = id(&target)?;
        self.driver
            .run(now_us, |m, now| Ok(m.find_node(now, target)?.0))
    }

    /// Finds the peers of torrent `info_hash` (20 bytes): `Peers` or `Failed` follows.
    pub fn get_peers(&self, now_us: u64, info_hash: Vec<u8>) -> Result<u64, OverlayError> {
        let info_hash = id(&info_hash)?;
        self.driver
            .run(now_us, |m, now| Ok(m.get_peers(now, info_hash)?.0))
    }

    /// Announces that we are a peer of `info_hash` on TCP `port` (none: the port our
    /// datagrams come from, BEP 5's `implied_port`): `Announced` or `Failed` follows.
    pub fn announce(
        &self,
        now_us: u64,
        info_hash: Vec<u8>,
        port: Option<u16>,
    ) -> Result<u64, OverlayError> {
        let info_hash = id(&info_hash)?;
        self.driver
            .run(now_us, |m, now| Ok(m.announce(now, info_hash, port)?.0))
    }

    /// BEP 44 `get` of the immutable item `target` (20 bytes): `Item` or `Failed` follows.
    pub fn get(&self, now_us: u64, target: Vec<u8>) -> Result<u64, OverlayError> {
        let target = id(&target)?;
        self.driver.run(now_us, |m, now| Ok(m.get(now, target)?.0))
    }

    /// BEP 44 `put` of an immutable item: `value` is one bencoded value (a string is
    /// `<len>:<bytes>`) of at most 1000 bytes, stored under its SHA-1 on the K closest
    /// nodes: `Stored` or `Failed` follows.
    pub fn put(&self, now_us: u64, value: Vec<u8>) -> Result<DhtPut, OverlayError> {
        self.driver.run(now_us, |m, now| {
            let (query, target) = m.put(now, &value)?;
            Ok(DhtPut {
                query: query.0,
                target: bytes(target),
            })
        })
    }

    /// Its state and counters.
    pub fn status(&self) -> Result<DhtStatus, OverlayError> {
        self.driver.read(|m| {
            let s = m.stats();
            DhtStatus {
                node: NodeInfo::new(m.id(), m.addr()),
                table_nodes: m.table().len() as u32,
                lookups: m.lookups() as u32,
                stored_peers: m.stored_peers() as u32,
                stored_items: m.stored_items() as u32,
                received: s.received,
                sent: s.sent,
                malformed: s.malformed,
                unexpected: s.unexpected,
                answered: s.answered,
                timeouts: s.timeouts,
                errors: s.errors,
                bad_tokens: s.bad_tokens,
                dropped: s.dropped,
            }
        })
    }
}
