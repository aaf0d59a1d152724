//! The Mainline DHT for JavaScript: [`DhtNode`] wraps `overlay_core::dht::Dht`, Kademlia as
//! BitTorrent speaks it (BEP 5, 32, 42, 43, 44; see docs/dht.md). It talks KRPC byte for
//! byte, so a tab's node joins a DHT of libtorrent, aria2 or `overlay dht start` nodes.

use crate::common::{
    Driver, NodeInfo, OverlayError, datagram_output, hex, hex_id, interval, js, peer, query_js,
    rng_seed, rust, strings, whole,
};
use overlay_core::PeerAddr;
use overlay_core::dht::{Config, Dht, Event, Failure, LookupStats};
use serde::{Deserialize, Serialize};
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;

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

/// Settings; every field is optional and defaults to core's (BEP 5's and libtorrent's, see
/// docs/dht.md).
#[derive(Clone, Debug, Default, Deserialize, Tsify)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DhtConfig {
    /// K, the bucket size and the closest nodes a lookup converges on (1 to 16).
    pub k: Option<usize>,
    /// Alpha, the parallel requests of one lookup.
    pub alpha: Option<usize>,
    /// An unanswered request fails after this many milliseconds.
    pub request_timeout_ms: Option<u64>,
    /// How often, in milliseconds, the node looks up its own id again.
    pub self_refresh_ms: Option<u64>,
    /// One node per IP address in a bucket (BEP 5). Default: on, but off when the node's
    /// address is loopback, where every node is 127.0.0.1.
    pub restrict_ips: Option<bool>,
    /// BEP 42: take an id made for our external address when responders agree on one.
    pub bep42_id: Option<bool>,
    /// BEP 43: ask others not to add this node to their tables (short-lived clients).
    pub read_only: Option<bool>,
}

impl DhtConfig {
    /// Core's settings for a node at `addr`, with what the caller set.
    fn for_addr(self, addr: PeerAddr) -> Result<Config, OverlayError> {
        let c = Config::default();
        let ms = |v: Option<u64>, default: overlay_core::Duration, what| {
            v.map_or(Ok(default), |v| interval(v, what))
        };
        Ok(Config {
            k: self.k.unwrap_or(c.k),
            alpha: self.alpha.unwrap_or(c.alpha),
            request_timeout: ms(
                self.request_timeout_ms,
                c.request_timeout,
                "requestTimeoutMs",
            )?,
            self_refresh: ms(self.self_refresh_ms, c.self_refresh, "selfRefreshMs")?,
            restrict_ips: self.restrict_ips.unwrap_or(!addr.ip().is_loopback()),
            bep42_id: self.bep42_id.unwrap_or(c.bep42_id),
            read_only: self.read_only.unwrap_or(c.read_only),
            ..c
        })
    }
}

/// What one lookup cost.
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct DhtLookupStats {
    /// Rounds of requests.
    pub rounds: u8,
    /// Requests sent.
    pub messages: u16,
    /// Requests that failed.
    pub failures: u16,
    /// Microseconds from start to end.
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
#[derive(Clone, Copy, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub enum DhtFailure {
    /// No node to ask: the routing table is empty.
    NoNodes,
    /// No node answered.
    Unreachable,
    /// The item to put was evicted from the node's own store before it was sent.
    ItemLost,
}

/// What a DHT node reports; `query` is the id the command returned; ids, targets and info
/// hashes are hex.
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[tsify(missing_as_null)]
pub enum DhtEvent {
    /// The bootstrap finished; `nodes` are in the routing table.
    Bootstrapped { query: f64, nodes: usize },
    /// A `findNode` converged: the K closest nodes to `target` that answered, closest
    /// first.
    Nodes {
        query: f64,
        target: String,
        nodes: Vec<NodeInfo>,
        stats: DhtLookupStats,
    },
    /// A `getPeers` finished: the peers of the torrent `infoHash`.
    Peers {
        query: f64,
        info_hash: String,
        peers: Vec<String>,
        stats: DhtLookupStats,
    },
    /// An announce finished: `stored` nodes stored it.
    Announced {
        query: f64,
        info_hash: String,
        stored: u8,
        stats: DhtLookupStats,
    },
    /// A BEP 44 `get` finished: the bencoded value (checked against `target`), or `null`.
    Item {
        query: f64,
        target: String,
        #[serde(with = "serde_bytes")]
        #[tsify(type = "Uint8Array | null")]
        value: Option<Vec<u8>>,
        stats: DhtLookupStats,
    },
    /// A BEP 44 `put` finished: `stored` nodes stored it.
    Stored {
        query: f64,
        target: String,
        stored: u8,
        stats: DhtLookupStats,
    },
    /// A command failed.
    Failed { query: f64, reason: DhtFailure },
    /// BEP 42: responders agree on a public address our id did not match, so the node took
    /// the id `id` made for `external` and is bootstrapping again.
    NewId { id: String, external: String },
}

impl From<Event<'_>> for DhtEvent {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Bootstrapped { query, nodes } => DhtEvent::Bootstrapped {
                query: query_js(query),
                nodes,
            },
            Event::Nodes {
                query,
                target,
                nodes,
                stats,
            } => DhtEvent::Nodes {
                query: query_js(query),
                target: hex(target),
                nodes: nodes.iter().map(|&(id, a)| NodeInfo::new(id, a)).collect(),
                stats: stats.into(),
            },
            Event::Peers {
                query,
                info_hash,
                peers,
                stats,
            } => DhtEvent::Peers {
                query: query_js(query),
                info_hash: hex(info_hash),
                peers: peers.iter().map(|p| p.to_string()).collect(),
                stats: stats.into(),
            },
            Event::Announced {
                query,
                info_hash,
                stored,
                stats,
            } => DhtEvent::Announced {
                query: query_js(query),
                info_hash: hex(info_hash),
                stored,
                stats: stats.into(),
            },
            Event::Item {
                query,
                target,
                value,
                stats,
            } => DhtEvent::Item {
                query: query_js(query),
                target: hex(target),
                value: value.map(<[u8]>::to_vec),
                stats: stats.into(),
            },
            Event::Stored {
                query,
                target,
                stored,
                stats,
            } => DhtEvent::Stored {
                query: query_js(query),
                target: hex(target),
                stored,
                stats: stats.into(),
            },
            Event::Failed { query, reason } => DhtEvent::Failed {
                query: query_js(query),
                reason: match reason {
                    Failure::NoNodes => DhtFailure::NoNodes,
                    Failure::Unreachable => DhtFailure::Unreachable,
                    Failure::ItemLost => DhtFailure::ItemLost,
                },
            },
            Event::NewId { id, external } => DhtEvent::NewId {
                id: hex(id),
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
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct DhtStatus {
    /// The node's id and the address it was created with.
    pub node: NodeInfo,
    /// Nodes in the routing table.
    pub table_nodes: usize,
    /// Lookups in progress.
    pub lookups: usize,
    /// Announced peers stored for others.
    pub stored_peers: usize,
    /// BEP 44 items stored.
    pub stored_items: usize,
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

/// One bucket of the routing table: the nodes whose ids share `index` leading bits with
/// ours (the last bucket also holds those that share more).
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct DhtBucket {
    /// Shared prefix length with our id.
    pub index: usize,
    /// Its nodes.
    pub nodes: Vec<NodeInfo>,
}

/// A BEP 44 put in progress: the query and the target the value is stored under.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct DhtPut {
    /// The command's id.
    pub query: f64,
    /// SHA-1 of the bencoded value, in hex.
    pub target: String,
}

/// What a KRPC datagram is, for drawing and logs (`DhtNode.describe`).
#[derive(Clone, Debug, Serialize, Tsify)]
#[tsify(missing_as_null)]
pub struct DhtMessage {
    /// A query's method (`ping`, `find_node`, `get_peers`, `announce_peer`, `get`, `put`,
    /// or `unknown`), or `response`, or `error`.
    pub message: String,
    /// The id a query is about, in hex (`find_node` and `get` targets, info hashes).
    pub key: Option<String>,
    /// The sender's id in hex (queries and responses).
    pub sender: Option<String>,
    /// The nodes a response carries (`nodes` and `nodes6`).
    pub nodes: Vec<NodeInfo>,
}

/// A Mainline DHT node. Feed it the datagrams addressed to it, send what `pollOutput`
/// gives until it says `wait`.
#[wasm_bindgen]
pub struct DhtNode {
    driver: Driver<Machine>,
}

#[wasm_bindgen]
impl DhtNode {
    /// A node at `addr` (`"127.0.0.1:6881"`) with a random id from `seed`, knowing no
    /// other node yet: `bootstrap` next.
    #[wasm_bindgen(constructor)]
    pub fn new(
        addr: &str,
        seed: f64,
        config: Option<Ts<DhtConfig>>,
    ) -> Result<DhtNode, OverlayError> {
        let addr = peer(addr)?;
        let config = config.map(rust).transpose()?.unwrap_or_default();
        Ok(DhtNode {
            driver: Driver::new(Machine::new(config.for_addr(addr)?, addr, rng_seed(seed)?)),
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
    ) -> Result<Ts<DhtOutput>, OverlayError> {
        js(&self.driver.poll::<_, DhtOutput>(now_us, |e| e.into())?)
    }

    /// Fills the routing table from `nodes` (addresses) with a lookup of our own id:
    /// `bootstrapped` follows.
    pub fn bootstrap(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        nodes: Vec<JsValue>,
    ) -> Result<f64, OverlayError> {
        let nodes = strings(nodes, "bootstrap nodes")?
            .iter()
            .map(|n| peer(n))
            .collect::<Result<Vec<PeerAddr>, _>>()?;
        self.driver
            .run(now_us, |m, now| Ok(query_js(m.bootstrap(now, &nodes)?)))
    }

    /// Finds the K nodes closest to `target` (40 hex digits): `nodes` follows.
    #[wasm_bindgen(js_name = findNode)]
    pub fn find_node(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        target: &str,
    ) -> Result<f64, OverlayError> {
        let target = hex_id(target, "a target")?;
        self.driver
            .run(now_us, |m, now| Ok(query_js(m.find_node(now, target)?)))
    }

    /// Finds peers of the torrent `infoHash` (hex): `peers` follows.
    #[wasm_bindgen(js_name = getPeers)]
    pub fn get_peers(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        #[wasm_bindgen(js_name = infoHash)] info_hash: &str,
    ) -> Result<f64, OverlayError> {
        let info_hash = hex_id(info_hash, "an info hash")?;
        self.driver
            .run(now_us, |m, now| Ok(query_js(m.get_peers(now, info_hash)?)))
    }

    /// Announces that we have the torrent `infoHash` on TCP `port` (`null`: the port
    /// datagrams come from, BEP 5's `implied_port`): `announced` follows.
    pub fn announce(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        #[wasm_bindgen(js_name = infoHash)] info_hash: &str,
        port: Option<f64>,
    ) -> Result<f64, OverlayError> {
        let info_hash = hex_id(info_hash, "an info hash")?;
        let port = port
            .map(|p| whole(p, f64::from(u16::MAX), "port"))
            .transpose()?
            .map(|p| p as u16);
        self.driver.run(now_us, |m, now| {
            Ok(query_js(m.announce(now, info_hash, port)?))
        })
    }

    /// Reads the BEP 44 immutable item stored under `target` (hex): `item` follows.
    pub fn get(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        target: &str,
    ) -> Result<f64, OverlayError> {
        let target = hex_id(target, "a target")?;
        self.driver
            .run(now_us, |m, now| Ok(query_js(m.get(now, target)?)))
    }

    /// Stores `value` (one bencoded value of at most 1000 bytes) as a BEP 44 immutable
    /// item under its SHA-1: `stored` follows.
    pub fn put(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        value: &[u8],
    ) -> Result<Ts<DhtPut>, OverlayError> {
        let (query, target) = self.driver.run(now_us, |m, now| Ok(m.put(now, value)?))?;
        js(&DhtPut {
            query: query_js(query),
            target: hex(target),
        })
    }

    /// Its state and counters.
    pub fn status(&self) -> Result<Ts<DhtStatus>, OverlayError> {
        let m = self.driver.machine();
        let s = m.stats();
        js(&DhtStatus {
            node: NodeInfo::new(m.id(), m.addr()),
            table_nodes: m.table().len(),
            lookups: m.lookups(),
            stored_peers: m.stored_peers(),
            stored_items: m.stored_items(),
            received: s.received,
            sent: s.sent,
            malformed: s.malformed,
            unexpected: s.unexpected,
            answered: s.answered,
            timeouts: s.timeouts,
            errors: s.errors,
            bad_tokens: s.bad_tokens,
            dropped: s.dropped,
        })
    }

    /// What a KRPC datagram is (a query's method and the id it is about, a response's
    /// sender and nodes), decoded with the node's own decoder; `undefined` if it is not
    /// KRPC.
    pub fn describe(datagram: &[u8]) -> Result<Option<Ts<DhtMessage>>, OverlayError> {
        use overlay_core::dht::wire::{self, Body, Query};
        let Ok(msg) = wire::decode(datagram) else {
            return Ok(None);
        };
        let described = match msg.body {
            Body::Query { sender, query, .. } => {
                let (message, key) = match query {
                    Query::Ping => ("ping", None),
                    Query::FindNode { target } => ("find_node", Some(target)),
                    Query::GetPeers { info_hash } => ("get_peers", Some(info_hash)),
                    Query::AnnouncePeer { info_hash, .. } => ("announce_peer", Some(info_hash)),
                    Query::Get { target } => ("get", Some(target)),
                    Query::Put { .. } => ("put", None),
                    Query::Unknown { .. } => ("unknown", None),
                };
                DhtMessage {
                    message: message.into(),
                    key: key.map(hex),
                    sender: Some(hex(sender)),
                    nodes: Vec::new(),
                }
            }
            Body::Response(r) => DhtMessage {
                message: "response".into(),
                key: None,
                sender: Some(hex(r.id)),
                nodes: r
                    .nodes
                    .iter()
                    .chain(r.nodes6.iter())
                    .map(|(id, addr)| NodeInfo::new(id, addr))
                    .collect(),
            },
            Body::Error { .. } => DhtMessage {
                message: "error".into(),
                key: None,
                sender: None,
                nodes: Vec::new(),
            },
        };
        js(&described).map(Some)
    }

    /// The routing table by bucket, nearest-prefix buckets last; empty buckets left out.
    pub fn buckets(&self) -> Result<Vec<Ts<DhtBucket>>, OverlayError> {
        let table = self.driver.machine().table();
        let mut buckets: Vec<DhtBucket> = Vec::new();
        for node in table.iter() {
            let index = table.bucket_of(node.id);
            let info = NodeInfo::new(node.id, node.addr);
            match buckets.iter_mut().find(|b| b.index == index) {
                Some(b) => b.nodes.push(info),
                None => buckets.push(DhtBucket {
                    index,
                    nodes: vec![info],
                }),
            }
        }
        buckets.sort_by_key(|b| b.index);
        buckets.iter().map(js).collect()
    }
}
