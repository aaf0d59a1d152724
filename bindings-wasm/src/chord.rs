//! Chord for JavaScript: [`ChordNode`] wraps `overlay_core::chord::Chord` (see
//! docs/chord.md). A node is created idle at its own address (its id is SHA-256 of that
//! address), then starts a ring (`create`), joins one through any member (`join`), or
//! routes through a member without joining (`client`). Keys are bytes, stored under their
//! SHA-256.

use crate::common::{
    Driver, NodeInfo, OverlayError, datagram_output, hex, interval, js, peer, query_js, rng_seed,
    rust,
};
use overlay_core::Id;
use overlay_core::chord::wire::{self, Body};
use overlay_core::chord::{Chord, Config, Event, Failure, NodeRef, Phase, config};
use serde::{Deserialize, Serialize};
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;

/// Keys (owned and replicas) one node holds: the host node's figure.
pub const STORE: usize = 256;

/// The machine a `ChordNode` wraps.
pub type Machine = Chord<STORE, { config::MAX_VALUE }>;

/// Settings; every field is optional and defaults to core's (docs/chord.md).
#[derive(Clone, Debug, Deserialize, Tsify)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ChordConfig {
    /// `r`, the successor-list length, and the replicas of each key (2 to 16).
    pub successors: usize,
    /// Milliseconds between stabilize rounds.
    pub stabilize_interval_ms: u64,
    /// Milliseconds between two finger refreshes.
    pub fix_fingers_interval_ms: u64,
    /// Milliseconds between two pings of the predecessor.
    pub check_predecessor_interval_ms: u64,
    /// Milliseconds between an owner's re-sends of its keys to its successors.
    pub replica_refresh_interval_ms: u64,
    /// An unanswered request is sent again after this many milliseconds.
    pub request_timeout_ms: u64,
    /// Retransmissions before the node asked counts as failed.
    pub request_retries: u8,
    /// Route lookups through the whole successor list as well as the fingers.
    pub route_through_successor_list: bool,
    /// Queries one lookup may send before it gives up.
    pub lookup_query_limit: u8,
}

impl Default for ChordConfig {
    fn default() -> Self {
        let c = Config::default();
        ChordConfig {
            successors: c.successors,
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

impl TryFrom<ChordConfig> for Config {
    type Error = OverlayError;

    fn try_from(c: ChordConfig) -> Result<Self, OverlayError> {
        Ok(Config {
            successors: c.successors,
            stabilize_interval: interval(c.stabilize_interval_ms, "stabilizeIntervalMs")?,
            fix_fingers_interval: interval(c.fix_fingers_interval_ms, "fixFingersIntervalMs")?,
            check_predecessor_interval: interval(
                c.check_predecessor_interval_ms,
                "checkPredecessorIntervalMs",
            )?,
            replica_refresh_interval: interval(
                c.replica_refresh_interval_ms,
                "replicaRefreshIntervalMs",
            )?,
            request_timeout: interval(c.request_timeout_ms, "requestTimeoutMs")?,
            request_retries: c.request_retries,
            route_through_successor_list: c.route_through_successor_list,
            lookup_query_limit: c.lookup_query_limit,
        })
    }
}

/// Why a started command failed.
#[derive(Clone, Copy, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
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

/// What a Chord node reports. `query` is the id the command returned; `key` is the key's
/// id in hex (SHA-256 of the key, truncated to 160 bits); `hops` the nodes asked on the
/// way (Stoica's path length).
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(tag = "type", rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub enum ChordEvent {
    /// The join completed; `successor` is the first successor.
    Joined { query: f64, successor: NodeInfo },
    /// A lookup found the owner of `key`.
    LookupDone {
        query: f64,
        key: String,
        owner: NodeInfo,
        hops: u8,
    },
    /// A value is stored under `key` at its owner (which replicates it).
    PutDone {
        query: f64,
        key: String,
        owner: NodeInfo,
        hops: u8,
    },
    /// A get finished: the value, or `null` if no node has one.
    GetDone {
        query: f64,
        key: String,
        #[serde(with = "serde_bytes")]
        #[tsify(type = "Uint8Array | null")]
        value: Option<Vec<u8>>,
        hops: u8,
    },
    /// A command failed.
    Failed {
        query: f64,
        key: String,
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
                query: query_js(query),
                successor: successor.into(),
            },
            Event::LookupDone {
                query,
                key,
                owner,
                hops,
            } => ChordEvent::LookupDone {
                query: query_js(query),
                key: hex(key),
                owner: owner.into(),
                hops,
            },
            Event::PutDone {
                query,
                key,
                owner,
                hops,
            } => ChordEvent::PutDone {
                query: query_js(query),
                key: hex(key),
                owner: owner.into(),
                hops,
            },
            Event::GetDone {
                query,
                key,
                value,
                hops,
            } => ChordEvent::GetDone {
                query: query_js(query),
                key: hex(key),
                value: value.map(<[u8]>::to_vec),
                hops,
            },
            Event::Failed { query, key, reason } => ChordEvent::Failed {
                query: query_js(query),
                key: hex(key),
                reason: match reason {
                    Failure::Unreachable => ChordFailure::Unreachable,
                    Failure::StoreFull => ChordFailure::StoreFull,
                    Failure::Busy => ChordFailure::Busy,
                    Failure::Left => ChordFailure::Left,
                },
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
#[derive(Clone, Copy, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
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
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
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
    pub keys: usize,
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

/// What a Chord datagram is, for drawing and logs (`ChordNode.describe`).
#[derive(Clone, Debug, Serialize, Tsify)]
#[tsify(missing_as_null)]
pub struct ChordMessage {
    /// Its kind in snake case: `find_successor`, `successors`, `closer`, `get_state`,
    /// `state`, `notify`, `ping`, `pong`, `store`, `stored`, `fetch`, `fetched`, `leave`.
    pub message: String,
    /// The key id it is about, in hex (`find_successor`, `store`, `fetch`).
    pub key: Option<String>,
    /// The sender's ring id in hex.
    pub sender: String,
}

/// A Chord node. Feed it the datagrams addressed to it, send what `pollOutput` gives until
/// it says `wait`.
#[wasm_bindgen]
pub struct ChordNode {
    driver: Driver<Machine>,
}

#[wasm_bindgen]
impl ChordNode {
    /// An idle node at `addr` (the address other nodes reach it at, `"127.0.0.1:7000"`:
    /// its id is SHA-256 of it). `seed` seeds its random generator: the same seed and calls
    /// give the same outputs.
    #[wasm_bindgen(constructor)]
    pub fn new(
        addr: &str,
        seed: f64,
        config: Option<Ts<ChordConfig>>,
    ) -> Result<ChordNode, OverlayError> {
        let addr = peer(addr)?;
        let config = config
            .map(rust)
            .transpose()?
            .unwrap_or_default()
            .try_into()?;
        Ok(ChordNode {
            driver: Driver::new(Machine::new(config, addr, rng_seed(seed)?)),
        })
    }

    /// Hands it a datagram from `from`. Malformed ones are dropped and counted (`status`).
    #[wasm_bindgen(js_name = handleDatagram)]
    pub fn handle_datagram(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        from: &str,
        datagram: &[u8],
    ) -> Result<(), OverlayError> {
        self.driver.datagram(now_us, from, datagram)
    }

    /// Its next output; call until `wait`.
    #[wasm_bindgen(js_name = pollOutput)]
    pub fn poll_output(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
    ) -> Result<Ts<ChordOutput>, OverlayError> {
        js(&self.driver.poll::<_, ChordOutput>(now_us, |e| e.into())?)
    }

    /// Starts a new ring of one node (an idle node only).
    pub fn create(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
    ) -> Result<(), OverlayError> {
        self.driver.run(now_us, |m, now| Ok(m.create(now)?))
    }

    /// Joins the ring `bootstrap` belongs to; `joined` or `failed` with the returned id
    /// follows. After a failure the node is idle and may try again.
    pub fn join(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        bootstrap: &str,
    ) -> Result<f64, OverlayError> {
        let bootstrap = peer(bootstrap)?;
        self.driver
            .run(now_us, |m, now| Ok(query_js(m.join(now, bootstrap)?)))
    }

    /// Makes an idle node a client of the ring `contact` belongs to: lookups, puts and gets
    /// route through it, and the node never joins.
    pub fn client(&mut self, contact: &str) -> Result<(), OverlayError> {
        let contact = peer(contact)?;
        Ok(self.driver.machine_mut().client(contact)?)
    }

    /// Finds the owner of `key` (hashed with SHA-256): `lookupDone` or `failed` follows.
    pub fn lookup(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        key: &[u8],
    ) -> Result<f64, OverlayError> {
        self.driver.run(now_us, |m, now| {
            Ok(query_js(m.lookup(now, Id::sha256(key))?))
        })
    }

    /// Stores `value` under `key` at the key's owner, which replicates it: `putDone` or
    /// `failed` follows.
    pub fn put(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        key: &[u8],
        value: &[u8],
    ) -> Result<f64, OverlayError> {
        self.driver
            .run(now_us, |m, now| Ok(query_js(m.put(now, key, value)?)))
    }

    /// Reads the value under `key` from its owner (or a replica): `getDone` or `failed`
    /// follows.
    pub fn get(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        key: &[u8],
    ) -> Result<f64, OverlayError> {
        self.driver
            .run(now_us, |m, now| Ok(query_js(m.get(now, key)?)))
    }

    /// Leaves the ring gracefully: hands every key to the successor, tells both
    /// neighbours, then reports `left`. Commands in progress fail with `left`.
    pub fn leave(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
    ) -> Result<(), OverlayError> {
        self.driver.run(now_us, |m, now| Ok(m.leave(now)?))
    }

    /// Its state and counters.
    pub fn status(&self) -> Result<Ts<ChordStatus>, OverlayError> {
        let m = self.driver.machine();
        let s = m.stats();
        js(&ChordStatus {
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
            keys: m.store().len(),
            received: s.received,
            sent: s.sent,
            malformed: s.malformed,
            wrong_version: s.wrong_version,
            unexpected: s.unexpected,
            timeouts: s.timeouts,
            dropped: s.dropped,
            store_full: s.store_full,
        })
    }

    /// The id a key is stored under, in hex: SHA-256 of `key`, truncated to 160 bits.
    #[wasm_bindgen(js_name = keyId)]
    pub fn key_id(key: &[u8]) -> String {
        hex(Id::sha256(key))
    }

    /// The id of the node at `addr` (`"127.0.0.1:7000"`), in hex: SHA-256 of the address's
    /// canonical bytes, truncated, as every node derives it.
    #[wasm_bindgen(js_name = nodeId)]
    pub fn node_id(addr: &str) -> Result<String, OverlayError> {
        Ok(hex(overlay_core::chord::node_id(peer(addr)?)))
    }

    /// What a Chord datagram is (its kind, the key it is about, its sender), decoded with
    /// the node's own decoder; `undefined` if it is not a Chord datagram.
    pub fn describe(datagram: &[u8]) -> Result<Option<Ts<ChordMessage>>, OverlayError> {
        let Ok(env) = wire::decode(datagram) else {
            return Ok(None);
        };
        let (message, key) = match env.body {
            Body::FindSuccessor { key, .. } => ("find_successor", Some(key)),
            Body::Successors { .. } => ("successors", None),
            Body::Closer { .. } => ("closer", None),
            Body::GetState { .. } => ("get_state", None),
            Body::State { .. } => ("state", None),
            Body::Notify => ("notify", None),
            Body::Ping { .. } => ("ping", None),
            Body::Pong { .. } => ("pong", None),
            Body::Store { key, .. } => ("store", Some(key)),
            Body::Stored { .. } => ("stored", None),
            Body::Fetch { key, .. } => ("fetch", Some(key)),
            Body::Fetched { .. } => ("fetched", None),
            Body::Leave { .. } => ("leave", None),
        };
        js(&ChordMessage {
            message: message.into(),
            key: key.map(hex),
            sender: hex(env.sender),
        })
        .map(Some)
    }
}
