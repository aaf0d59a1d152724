//! Chord for Kotlin and Swift: [`ChordNode`] wraps `overlay_core::chord::Chord` (see
//! docs/chord.md).
//!
//! A node is created idle at its own address (its id is SHA-256 of that address), then
//! either starts a ring (`create`), joins one through any member (`join`), or becomes a
//! client that routes through a member without joining (`client`). Keys are byte strings,
//! stored under their SHA-256.

use crate::common::{
    Driver, NodeInfo, OverlayError, SocketAddress, datagram_output, id_bytes as key, peer,
};
use overlay_core::chord::{Chord, Config, Event, Failure, NodeRef, Phase, config};
use overlay_core::{Duration, Id};
use std::sync::Arc;

/// Keys (owned and replicas) one node holds: the host node's figure.
pub const STORE: usize = 256;

/// The machine a `ChordNode` wraps.
pub type Machine = Chord<STORE, { config::MAX_VALUE }>;

/// Run-time settings; [`chord_config_default`] gives the defaults (docs/chord.md says
/// where they come from).
#[derive(Clone, Debug, uniffi::Record)]
pub struct ChordConfig {
    /// `r`, the successor-list length, and the replicas of each key (2 to 16).
    pub successors: u32,
    /// How often `stabilize` runs.
    pub stabilize_interval_ms: u64,
    /// How often one finger is refreshed.
    pub fix_fingers_interval_ms: u64,
    /// How often the predecessor is pinged.
    pub check_predecessor_interval_ms: u64,
    /// How often an owner re-sends its keys to its successors.
    pub replica_refresh_interval_ms: u64,
    /// An unanswered request is sent again after this long.
    pub request_timeout_ms: u64,
    /// Retransmissions before the node asked counts as failed.
    pub request_retries: u8,
    /// Route lookups through the whole successor list as well as the fingers.
    pub route_through_successor_list: bool,
    /// Queries one lookup may send before it gives up.
    pub lookup_query_limit: u8,
}

impl From<Config> for ChordConfig {
    fn from(c: Config) -> Self {
        ChordConfig {
            successors: c.successors as u32,
            stabilize_interval_ms: c.stabilize_interval.as_millis(),
            fix_fingers_interval_ms: c.fix_fingers_interval.as_millis(),
            check_predecessor_interval_ms: c.check_predecessor_interval.as_millis(),
            replica_refresh_interval_ms: c.replica_refresh_interval.as_millis(),
            request_timeout_ms: c.request_timeout.as_millis(),
            request_retries: c.request_retries,
            route_through_successor_list: c.route_through_successor_list,
            lookup_query_limit: c.lookup_query_limit,
        }
    }
}

impl From<ChordConfig> for Config {
    fn from(c: ChordConfig) -> Self {
        Config {
            successors: c.successors as usize,
            stabilize_interval: Duration::from_millis(c.stabilize_interval_ms),
            fix_fingers_interval: Duration::from_millis(c.fix_fingers_interval_ms),
            check_predecessor_interval: Duration::from_millis(c.check_predecessor_interval_ms),
            replica_refresh_interval: Duration::from_millis(c.replica_refresh_interval_ms),
            request_timeout: Duration::from_millis(c.request_timeout_ms),
            request_retries: c.request_retries,
            route_through_successor_list: c.route_through_successor_list,
            lookup_query_limit: c.lookup_query_limit,
        }
    }
}

/// The default settings.
#[uniffi::export]
pub fn chord_config_default() -> ChordConfig {
    Config::default().into()
}

/// Why a started command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChordFailure {
    /// No node answered (every candidate timed out, or the query limit was reached).
    Unreachable,
    /// The node that should store the value has a full store.
    StoreFull,
    /// The node had too many commands in progress.
    Busy,
    /// The node left the ring before the command finished.
    Left,
}

impl From<Failure> for ChordFailure {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unreachable => ChordFailure::Unreachable,
            Failure::StoreFull => ChordFailure::StoreFull,
            Failure::Busy => ChordFailure::Busy,
            Failure::Left => ChordFailure::Left,
        }
    }
}

/// What a Chord node reports. `query` is the id the command returned; `key` is the key's
/// id (SHA-256 of the key, truncated to 160 bits); `hops` the nodes asked on the way
/// (Stoica's path length).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChordEvent {
    /// The join completed; `successor` is the first successor.
    Joined { query: u64, successor: NodeInfo },
    /// A lookup found the owner of `key`.
    LookupDone {
        query: u64,
        key: Vec<u8>,
        owner: NodeInfo,
        hops: u8,
    },
    /// A value is stored under `key` at its owner (which replicates it).
    PutDone {
        query: u64,
        key: Vec<u8>,
        owner: NodeInfo,
        hops: u8,
    },
    /// A get finished: the value, or none if no node has one.
    GetDone {
        query: u64,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        hops: u8,
    },
    /// A command failed.
    Failed {
        query: u64,
        key: Vec<u8>,
        reason: ChordFailure,
    },
    /// A graceful leave finished: keys handed over, neighbours told.
    Left,
}

impl From<NodeRef> for NodeInfo {
    fn from(n: NodeRef) -> Self {
        NodeInfo::new(n.id, n.addr)
    }
}

impl From<Event<'_>> for ChordEvent {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Joined { query, successor } => ChordEvent::Joined {
                query: query.0,
                successor: successor.into(),
            },
            Event::LookupDone {
                query,
                key: k,
                owner,
                hops,
            } => ChordEvent::LookupDone {
                query: query.0,
                key: key(k),
                owner: owner.into(),
                hops,
            },
            Event::PutDone {
                query,
                key: k,
                owner,
                hops,
            } => ChordEvent::PutDone {
                query: query.0,
                key: key(k),
                owner: owner.into(),
                hops,
            },
            Event::GetDone {
                query,
                key: k,
                value,
                hops,
            } => ChordEvent::GetDone {
                query: query.0,
                key: key(k),
                value: value.map(<[u8]>::to_vec),
                hops,
            },
            Event::Failed {
                query,
                key: k,
                reason,
            } => ChordEvent::Failed {
                query: query.0,
                key: key(k),
                reason: reason.into(),
            },
            Event::Left => ChordEvent::Left,
        }
    }
}

datagram_output!(
    /// One output of a Chord node.
    ChordOutput,
    ChordEvent
);

/// Where a node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChordPhase {
    /// Created; neither created a ring nor joined one.
    Idle,
    /// Joining through a bootstrap node.
    Joining,
    /// A member of a ring.
    Member,
    /// Handing over its keys before leaving.
    Leaving,
    /// Gone.
    Left,
    /// A client routing through a contact node.
    Client,
}

/// A node's state and counters.
#[derive(Clone, Debug, uniffi::Record)]
pub struct ChordStatus {
    /// The node itself.
    pub node: NodeInfo,
    /// Its phase.
    pub phase: ChordPhase,
    /// Its predecessor, if known.
    pub predecessor: Option<NodeInfo>,
    /// Its successor list, nearest first.
    pub successors: Vec<NodeInfo>,
    /// Its distinct fingers, by increasing finger index.
    pub fingers: Vec<NodeInfo>,
    /// Keys held (owned and replicas).
    pub keys: u32,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that failed to decode (dropped).
    pub malformed: u64,
    /// Datagrams of another protocol version (dropped).
    pub wrong_version: u64,
    /// Well-formed input that made no sense now (dropped).
    pub unexpected: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Messages or jobs dropped because a queue was full.
    pub dropped: u64,
    /// Values not stored because the store was full.
    pub store_full: u64,
}

/// A Chord node. Thread-safe; feed it the datagrams its socket receives, send what
/// `poll_output` gives until it says `Wait`.
#[derive(uniffi::Object)]
pub struct ChordNode {
    driver: Driver<Machine>,
}

#[uniffi::export]
impl ChordNode {
    /// An idle node at `addr` (the address other nodes reach it at: its id is SHA-256 of
    /// it). `seed` seeds its random generator: the same seed and calls give the same
    /// outputs.
    #[uniffi::constructor]
    pub fn new(
        config: ChordConfig,
        addr: SocketAddress,
        seed: u64,
    ) -> Result<Arc<Self>, OverlayError> {
        let addr = peer(&addr)?;
        let driver = Driver::build(|| Ok(Machine::new(config.into(), addr, seed)))?;
        Ok(Arc::new(ChordNode { driver }))
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
    pub fn poll_output(&self, now_us: u64) -> Result<ChordOutput, OverlayError> {
        self.driver.poll(now_us, |e| e.into())
    }

    /// Starts a new ring of one node (an idle node only).
    pub fn create(&self, now_us: u64) -> Result<(), OverlayError> {
        self.driver.run(now_us, |m, now| Ok(m.create(now)?))
    }

    /// Joins the ring `bootstrap` belongs to; `Joined` or `Failed` with the returned id
    /// follows. After a failure the node is idle and may try again.
    pub fn join(&self, now_us: u64, bootstrap: SocketAddress) -> Result<u64, OverlayError> {
        let bootstrap = peer(&bootstrap)?;
        self.driver
            .run(now_us, |m, now| Ok(m.join(now, bootstrap)?.0))
    }

    /// Makes an idle node a client of the ring `contact` belongs to: lookups, puts and gets
    /// route through it, and the node never joins. A client may call it again to change
    /// its contact.
    pub fn client(&self, contact: SocketAddress) -> Result<(), OverlayError> {
        let contact = peer(&contact)?;
        self.driver.run(0, |m, _| Ok(m.client(contact)?))
    }

    /// Finds the owner of `key` (hashed with SHA-256): `LookupDone` or `Failed` follows.
    pub fn lookup(&self, now_us: u64, key: Vec<u8>) -> Result<u64, OverlayError> {
        self.driver
            .run(now_us, |m, now| Ok(m.lookup(now, Id::sha256(&key))?.0))
    }

    /// Stores `value` under `key` at the key's owner, which replicates it: `PutDone` or
    /// `Failed` follows.
    pub fn put(&self, now_us: u64, key: Vec<u8>, value: Vec<u8>) -> Result<u64, OverlayError> {
        self.driver
            .run(now_us, |m, now| Ok(m.put(now, &key, &value)?.0))
    }

    /// Reads the value under `key` from its owner (or a replica): `GetDone` or `Failed`
    /// follows.
    pub fn get(&self, now_us: u64, key: Vec<u8>) -> Result<u64, OverlayError> {
        self.driver.run(now_us, |m, now| Ok(m.get(now, &key)?.0))
    }

    /// Leaves the ring gracefully: hands every key to the successor, tells both
    /// neighbours, then reports `Left`. Commands in progress fail with `Left`.
    pub fn leave(&self, now_us: u64) -> Result<(), OverlayError> {
        self.driver.run(now_us, |m, now| Ok(m.leave(now)?))
    }

    /// Its state and counters.
    pub fn status(&self) -> Result<ChordStatus, OverlayError> {
        self.driver.read(|m| {
            let s = m.stats();
            ChordStatus {
                node: m.node().into(),
                phase: match m.phase() {
                    Phase::Idle => ChordPhase::Idle,
                    Phase::Joining => ChordPhase::Joining,
                    Phase::Member => ChordPhase::Member,
                    Phase::Leaving => ChordPhase::Leaving,
                    Phase::Left => ChordPhase::Left,
                    Phase::Client => ChordPhase::Client,
                },
                predecessor: m.predecessor().map(Into::into),
                successors: m.successors().iter().map(|&n| n.into()).collect(),
                fingers: m.fingers().iter().map(|f| f.node.into()).collect(),
                keys: m.store().len() as u32,
                received: s.received,
                sent: s.sent,
                malformed: s.malformed,
                wrong_version: s.wrong_version,
                unexpected: s.unexpected,
                timeouts: s.timeouts,
                dropped: s.dropped,
                store_full: s.store_full,
            }
        })
    }
}
