//! The Mainline DHT's timers and capacities.
//!
//! Timers are BEP 5's where it gives them (15 minutes for node freshness and bucket refresh,
//! token secrets rotated every 5 minutes and the previous one still accepted) and
//! libtorrent's (`src/kademlia/`, `settings_pack.cpp`) where it does not: alpha 3, K 8,
//! peers kept 30 minutes, one node per IP in a bucket. Capacities are constants or const
//! generics of [`super::Dht`]: nothing is allocated.

use crate::Duration;

/// The most buckets a routing table splits into. BEP 5 tables split only the bucket that
/// covers the node's own id, so a network of `n` nodes needs about `log2(n / K) + 3`
/// buckets; 32 covers `K * 2^29` nodes. The last bucket simply stops splitting beyond it.
pub const MAX_BUCKETS: usize = 32;
/// The largest `K` (bucket size) [`Config::k`] may ask for.
pub const MAX_K: usize = 16;
/// Candidates one iterative lookup keeps, ordered by XOR distance to its target. When full,
/// a closer newcomer pushes out the farthest; `K` live nodes among `4 K` candidates leave
/// room for a quarter of them to be dead.
pub const LOOKUP_CANDIDATES: usize = 32;
/// Requests awaiting a response at once (lookup steps, stores, pings).
pub const MAX_PENDING: usize = 48;
/// Messages queued for transmission. When full, new ones are dropped and counted, as a full
/// socket buffer drops them; the protocol's timeouts recover.
pub const MAX_OUTBOX: usize = 48;
/// Peers one `get_peers` lookup collects for its result, and the most a node returns in one
/// `values` list (BEP 5 gives no figure; 50 compact IPv4 peers keep a response well under
/// a 1500-byte MTU, as libtorrent's `max_peers_reply` of 100 does with its smaller nodes).
pub const MAX_PEERS_RESULT: usize = 50;
/// Nodes remembered for re-bootstrapping when the routing table empties.
pub const MAX_BOOTSTRAP: usize = 8;
/// The largest token this node keeps for an `announce_peer` or `put` (libtorrent's tokens
/// are 4 bytes, ours 8; BEP 5 leaves the length free).
pub const MAX_TOKEN: usize = 20;
/// BEP 44: "the bencoded form of v must be less than 1000 bytes".
pub const MAX_ITEM: usize = 1000;
/// The largest datagram this node sends or accepts. A BEP 44 item of 1000 bytes plus the
/// response around it must fit.
pub const MAX_DATAGRAM: usize = 1500;
/// Transaction ids of other nodes echoed back (libtorrent and aria2 send 2 bytes; longer ones
/// are answered with an error).
pub const MAX_TID: usize = 16;

/// Run-time settings of a DHT node.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// K, the bucket size and the number of closest nodes a lookup converges on (BEP 5: 8).
    /// Clamped to `1..=MAX_K`.
    pub k: usize,
    /// Alpha, the parallel requests of one lookup (Kademlia paper and libtorrent: 3).
    pub alpha: usize,
    /// A request unanswered for this long failed (libtorrent retires a request after
    /// 15 s but opens a new slot after a short timeout; one timeout keeps this simple).
    pub request_timeout: Duration,
    /// A node unheard of for this long is questionable; a bucket untouched for this long is
    /// refreshed (BEP 5: 15 minutes).
    pub node_timeout: Duration,
    /// How often the node looks up its own id again, meeting the neighbours that joined
    /// since (libtorrent's `node::tick`: every 10 minutes).
    pub self_refresh: Duration,
    /// How often the node pings the table entry it heard from least recently, so that dead
    /// nodes are found before a lookup trips over them (libtorrent's `next_refresh`, one
    /// node per 5-second tick).
    pub liveness_interval: Duration,
    /// Failed requests in a row after which a node is bad (BEP 5: "multiple"; 2).
    pub failures_to_bad: u8,
    /// How often token secrets rotate (BEP 5: every five minutes, the last one accepted).
    pub token_rotation: Duration,
    /// How long an announced peer is kept (libtorrent: 30 minutes, twice the
    /// re-announce interval).
    pub peer_lifetime: Duration,
    /// How long a BEP 44 item is kept (BEP 44: at least 2 hours without a re-put).
    pub item_lifetime: Duration,
    /// Peers kept for one info hash, so that one torrent cannot fill the store.
    pub max_peers_per_torrent: usize,
    /// One node per IP address in a bucket (libtorrent's `dht_restrict_routing_ips`).
    /// Turn off on loopback, where every node is 127.0.0.1.
    pub restrict_ips: bool,
    /// BEP 42: a node whose id matches its IP may replace one whose id does not in a full
    /// bucket (libtorrent's `dht_prefer_verified_node_ids`).
    pub prefer_verified: bool,
    /// BEP 42: when responders agree on a public external address our id does not match,
    /// take an id made for it (and rejoin). Off for a node whose id must stay fixed.
    pub bep42_id: bool,
    /// BEP 43: ask others not to add this node to their tables (for short-lived clients).
    pub read_only: bool,
    /// How often the node checks timeouts, refreshes stale buckets and rotates secrets.
    pub tick: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            k: 8,
            alpha: 3,
            request_timeout: Duration::from_secs(5),
            node_timeout: Duration::from_secs(15 * 60),
            self_refresh: Duration::from_secs(10 * 60),
            liveness_interval: Duration::from_secs(5),
            failures_to_bad: 2,
            token_rotation: Duration::from_secs(5 * 60),
            peer_lifetime: Duration::from_secs(30 * 60),
            item_lifetime: Duration::from_secs(2 * 60 * 60),
            max_peers_per_torrent: 100,
            restrict_ips: true,
            prefer_verified: true,
            bep42_id: true,
            read_only: false,
            tick: Duration::from_secs(1),
        }
    }
}
