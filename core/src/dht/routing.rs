//! The routing table of BEP 5: k-buckets over the XOR metric that split only where they
//! cover the node's own id.
//!
//! The buckets are implicit. With `depth` splits so far, bucket `i < depth` holds the nodes
//! whose id shares exactly `i` leading bits with ours, and the last bucket, `depth`, holds
//! every node sharing at least `depth` bits: the one that covers our own id and the only one
//! that may split. So the table is one fixed pool of entries and a depth, with no per-bucket
//! storage to size, and `K` can be a run-time setting.
//!
//! Node states are BEP 5's: *good* if it responded within the last 15 minutes (or responded
//! once and sent a query since), *questionable* after 15 minutes of silence, *bad* after
//! `failures_to_bad` failed requests in a row. A newcomer takes a bad node's place; a full
//! bucket's least recently seen questionable node is pinged first and evicted only if the
//! ping fails; newcomers wait in a replacement cache meanwhile.

use super::config::{Config, MAX_BUCKETS, MAX_K};
use crate::{Duration, Id, Instant, PeerAddr, Rng};
use heapless::Vec;

/// A node in the table or its replacement cache.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Node {
    /// Its id.
    pub id: Id,
    /// Where it answers.
    pub addr: PeerAddr,
    /// When it last responded to us (or queried us, once it had responded before).
    pub last_seen: Instant,
    /// Requests in a row it failed to answer.
    pub fails: u8,
    /// Its id matches its IP (BEP 42), or its IP is exempt.
    pub verified: bool,
}

/// A node's state in BEP 5's terms.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NodeState {
    /// Responded recently.
    Good,
    /// Silent for `node_timeout`: ping before relying on it.
    Questionable,
    /// Failed to answer repeatedly: replace it.
    Bad,
}

/// What [`RoutingTable::heard`] did with a node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Heard {
    /// Already in the table: refreshed.
    Refreshed,
    /// Added to the table.
    Added,
    /// Its bucket is full of good nodes: kept in the replacement cache.
    Cached,
    /// Its bucket is full; kept in the replacement cache. Ping this least recently seen
    /// questionable node: if it fails, the newcomer takes its place.
    PingFirst(Node),
    /// Refused: our own id, an id already in use at another address, a second node from
    /// one IP in a bucket, or no room.
    Refused,
}

/// The routing table: `N` entries in all, shared by every bucket (K per bucket), and a
/// replacement cache of 16 shared the same way.
pub struct RoutingTable<const N: usize> {
    own: Id,
    k: usize,
    node_timeout: Duration,
    failures_to_bad: u8,
    restrict_ips: bool,
    prefer_verified: bool,
    depth: u8,
    nodes: Vec<Node, N>,
    cache: Vec<Node, 16>,
    /// When each bucket last had a node added or answering, or was refreshed.
    touched: [Instant; MAX_BUCKETS],
}

impl<const N: usize> RoutingTable<N> {
    /// An empty table for a node with id `own`.
    pub fn new(own: Id, config: &Config, now: Instant) -> Self {
        RoutingTable {
            own,
            k: config.k.clamp(1, MAX_K),
            node_timeout: config.node_timeout,
            failures_to_bad: config.failures_to_bad.max(1),
            restrict_ips: config.restrict_ips,
            prefer_verified: config.prefer_verified,
            depth: 0,
            nodes: Vec::new(),
            cache: Vec::new(),
            touched: [now; MAX_BUCKETS],
        }
    }

    /// Our own id.
    pub fn own(&self) -> Id {
        self.own
    }
    /// K.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Nodes in the table.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Buckets in use (splits so far plus one).
    pub fn buckets(&self) -> usize {
        self.depth as usize + 1
    }
    /// Every node in the table.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }
    /// Nodes in the replacement cache.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The bucket `id` falls in.
    pub fn bucket_of(&self, id: Id) -> usize {
        (self.own.xor(id).leading_zeros() as usize).min(self.depth as usize)
    }

    /// The state of `node` at `now`.
    pub fn state(&self, node: &Node, now: Instant) -> NodeState {
        if node.fails >= self.failures_to_bad {
            NodeState::Bad
        } else if now.saturating_since(node.last_seen) >= self.node_timeout || node.fails > 0 {
            NodeState::Questionable
        } else {
            NodeState::Good
        }
    }

    fn in_bucket(&self, b: usize) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| self.bucket_of(n.id) == b)
    }

    /// Records that `id` at `addr` responded to us (`responded`) or queried us. Only nodes
    /// that have responded enter the table: a query alone proves nothing about reachability,
    /// so the caller pings a querier that [`RoutingTable::would_add`] and calls this again
    /// when it answers.
    pub fn heard(&mut self, now: Instant, id: Id, addr: PeerAddr, verified: bool) -> Heard {
        if id == self.own {
            return Heard::Refused;
        }
        if let Some(n) = self.nodes.iter_mut().find(|n| n.id == id) {
            if n.addr != addr {
                // BEP 5 / libtorrent: the first address wins; a node id seen at a new
                // address may be an impostor.
                return Heard::Refused;
            }
            n.last_seen = now;
            n.fails = 0;
            let b = self.bucket_of(id);
            self.touched[b] = now;
            return Heard::Refreshed;
        }
        let node = Node {
            id,
            addr,
            last_seen: now,
            fails: 0,
            verified,
        };
        loop {
            let b = self.bucket_of(id);
            if self.restrict_ips && self.in_bucket(b).any(|(_, n)| n.addr.ip() == addr.ip()) {
                return Heard::Refused;
            }
            let count = self.in_bucket(b).count();
            if count < self.k {
                return match self.nodes.push(node) {
                    Ok(()) => {
                        self.touched[b] = now;
                        self.uncache(id);
                        Heard::Added
                    }
                    Err(_) => Heard::Refused,
                };
            }
            // Full. A bad node makes room at once.
            if let Some(i) = self.worst_replaceable(b, now, verified) {
                self.nodes[i] = node;
                self.touched[b] = now;
                self.uncache(id);
                return Heard::Added;
            }
            // The bucket covering our own id splits (BEP 5), while buckets remain.
            if b == self.depth as usize && (self.depth as usize) < MAX_BUCKETS - 1 {
                self.depth += 1;
                self.touched[self.depth as usize] = now;
                continue;
            }
            self.cache_node(node);
            let lrs = self
                .in_bucket(b)
                .map(|(_, n)| *n)
                .filter(|n| self.state(n, now) == NodeState::Questionable)
                .min_by_key(|n| n.last_seen);
            return match lrs {
                Some(n) => Heard::PingFirst(n),
                None => Heard::Cached,
            };
        }
    }

    /// The entry a newcomer may replace in full bucket `b`: a bad node, or (BEP 42, when
    /// preferred) an unverified node that is not good, for a verified newcomer.
    fn worst_replaceable(&self, b: usize, now: Instant, verified: bool) -> Option<usize> {
        let mut best: Option<(usize, u8)> = None;
        for (i, n) in self.in_bucket(b) {
            let rank = match self.state(n, now) {
                NodeState::Bad => 2,
                NodeState::Questionable if verified && self.prefer_verified && !n.verified => 1,
                _ => continue,
            };
            if best.is_none_or(|(_, r)| rank > r) {
                best = Some((i, rank));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Whether [`RoutingTable::heard`] would add `id` now (room, a bad node, or a split).
    pub fn would_add(&self, now: Instant, id: Id, addr: PeerAddr) -> bool {
        if id == self.own || self.nodes.iter().any(|n| n.id == id) || self.nodes.is_full() {
            return false;
        }
        let b = self.bucket_of(id);
        if self.restrict_ips && self.in_bucket(b).any(|(_, n)| n.addr.ip() == addr.ip()) {
            return false;
        }
        self.in_bucket(b).count() < self.k
            || self.worst_replaceable(b, now, false).is_some()
            || (b == self.depth as usize && (self.depth as usize) < MAX_BUCKETS - 1)
    }

    /// Whether a node with this id is in the table.
    pub fn contains(&self, id: Id) -> bool {
        self.nodes.iter().any(|n| n.id == id)
    }

    /// A request to `addr` went unanswered. A node that turns bad is replaced by the most
    /// recently seen node of its bucket in the replacement cache, if any.
    pub fn failed(&mut self, now: Instant, addr: PeerAddr) {
        let Some(i) = self.nodes.iter().position(|n| n.addr == addr) else {
            if let Some(j) = self.cache.iter().position(|n| n.addr == addr) {
                self.cache.swap_remove(j);
            }
            return;
        };
        self.nodes[i].fails = self.nodes[i].fails.saturating_add(1);
        if self.state(&self.nodes[i], now) != NodeState::Bad {
            return;
        }
        let b = self.bucket_of(self.nodes[i].id);
        let replacement = self
            .cache
            .iter()
            .enumerate()
            .filter(|(_, c)| self.bucket_of(c.id) == b)
            .filter(|(_, c)| {
                !self.restrict_ips
                    || !self
                        .in_bucket(b)
                        .any(|(j, n)| j != i && n.addr.ip() == c.addr.ip())
            })
            .max_by_key(|(_, c)| (c.verified, c.last_seen))
            .map(|(j, _)| j);
        match replacement {
            Some(j) => {
                self.nodes[i] = self.cache.swap_remove(j);
                self.touched[b] = now;
            }
            // Nothing to replace it with: BEP 5 keeps bad nodes only until a newcomer needs
            // the slot; dropping it now keeps lookups from trying it again.
            None => {
                self.nodes.swap_remove(i);
            }
        }
    }

    fn cache_node(&mut self, node: Node) {
        if let Some(c) = self.cache.iter_mut().find(|c| c.id == node.id) {
            *c = node;
            return;
        }
        if self.cache.is_full() {
            // Oldest out.
            if let Some(j) = (0..self.cache.len()).min_by_key(|&j| self.cache[j].last_seen) {
                self.cache.swap_remove(j);
            }
        }
        let _ = self.cache.push(node);
    }

    fn uncache(&mut self, id: Id) {
        if let Some(j) = self.cache.iter().position(|c| c.id == id) {
            self.cache.swap_remove(j);
        }
    }

    /// The `out.capacity()` (at most) nodes closest to `target` that have not failed their
    /// last request, closest first: BEP 5 answers with "the K closest good nodes", and
    /// libtorrent leaves failed nodes out of answers and lookups alike.
    pub fn closest<const C: usize>(&self, target: Id, out: &mut Vec<(Id, PeerAddr), C>) {
        out.clear();
        for n in &self.nodes {
            if n.fails > 0 {
                continue;
            }
            let d = n.id.xor(target);
            let pos = out.iter().position(|(id, _)| id.xor(target) > d);
            match pos {
                Some(p) => {
                    if out.is_full() {
                        out.pop();
                    }
                    let _ = out.insert(p, (n.id, n.addr));
                }
                None => {
                    let _ = out.push((n.id, n.addr));
                }
            }
        }
    }

    /// The node heard from least recently, if that was at least `min_age` ago: the next
    /// one to ping for liveness.
    pub fn least_recently_seen(&self, now: Instant, min_age: Duration) -> Option<PeerAddr> {
        self.nodes
            .iter()
            .filter(|n| now.saturating_since(n.last_seen) >= min_age)
            .min_by_key(|n| n.last_seen)
            .map(|n| n.addr)
    }

    /// The first bucket untouched for `node_timeout`, to refresh with a lookup of a random
    /// id in it; marks it touched.
    pub fn stale_bucket(&mut self, now: Instant, rng: &mut Rng) -> Option<Id> {
        let b = (0..=self.depth as usize)
            .find(|&b| now.saturating_since(self.touched[b]) >= self.node_timeout)?;
        self.touched[b] = now;
        Some(self.random_id_in(b, rng))
    }

    /// A random id in bucket `b`: our first `b` bits, bit `b` flipped (unless `b` is the
    /// last bucket), the rest random.
    pub fn random_id_in(&self, b: usize, rng: &mut Rng) -> Id {
        let mut id = Id::ZERO;
        rng.fill(&mut id.0);
        for bit in 0..b.min(160) {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            id.0[byte] = (id.0[byte] & !mask) | (self.own.0[byte] & mask);
        }
        if b < self.depth as usize && b < 160 {
            let (byte, mask) = (b / 8, 0x80u8 >> (b % 8));
            id.0[byte] = (id.0[byte] & !mask) | (!self.own.0[byte] & mask);
        }
        id
    }

    /// Empties the table (used when our id changes).
    pub fn clear(&mut self, own: Id, now: Instant) {
        self.own = own;
        self.depth = 0;
        self.nodes.clear();
        self.cache.clear();
        self.touched = [now; MAX_BUCKETS];
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn addr(i: u32) -> PeerAddr {
        let b = i.to_be_bytes();
        PeerAddr::v4([10, b[1], b[2], b[3]], 6881)
    }

    fn id_with_prefix(own: Id, cpl: usize, rng: &mut Rng) -> Id {
        let t: RoutingTable<0> = RoutingTable {
            depth: MAX_BUCKETS as u8 - 1,
            ..RoutingTable::new(own, &Config::default(), Instant::ZERO)
        };
        t.random_id_in(cpl, rng)
    }

    #[test]
    fn bep5_buckets_split_only_where_they_cover_our_id() {
        let mut rng = Rng::new(1);
        let own = Id([0x55; 20]);
        let mut t: RoutingTable<256> = RoutingTable::new(own, &Config::default(), Instant::ZERO);
        // 8 far nodes (cpl 0) fill bucket 0 while it is the only bucket.
        for i in 0..8 {
            let id = id_with_prefix(own, 0, &mut rng);
            assert_eq!(t.heard(Instant::ZERO, id, addr(i), true), Heard::Added);
        }
        // A ninth far node: the only bucket covers our id, so it splits; the far nodes stay
        // in bucket 0, which is full again, and will never split.
        let id = id_with_prefix(own, 0, &mut rng);
        assert_eq!(t.heard(Instant::ZERO, id, addr(8), true), Heard::Cached);
        assert_eq!(t.buckets(), 2);
        // Close nodes still fit: the bucket covering our id has room.
        for i in 0..8 {
            let id = id_with_prefix(own, 5 + i as usize, &mut rng);
            assert_eq!(
                t.heard(Instant::ZERO, id, addr(100 + i), true),
                Heard::Added
            );
        }
        assert_eq!(t.len(), 16);
        for b in 0..t.buckets() {
            assert!(t.in_bucket(b).count() <= 8);
        }
    }

    #[test]
    fn bep5_full_bucket_pings_least_recently_seen_questionable_and_evicts_only_on_failure() {
        let mut rng = Rng::new(2);
        let own = Id([0x55; 20]);
        let config = Config::default();
        let mut t: RoutingTable<64> = RoutingTable::new(own, &config, Instant::ZERO);
        t.depth = MAX_BUCKETS as u8 - 1; // no more splits: bucket 0 behaves as a leaf
        let ids: std::vec::Vec<Id> = (0..8).map(|_| id_with_prefix(own, 0, &mut rng)).collect();
        for (i, id) in ids.iter().enumerate() {
            let at = Instant::from_micros(i as u64);
            t.heard(at, *id, addr(i as u32), true);
        }
        let later = Instant::ZERO + config.node_timeout + Duration::from_secs(1);
        let newcomer = id_with_prefix(own, 0, &mut rng);
        // All questionable: ping the least recently seen (the first), keep the newcomer.
        let Heard::PingFirst(lrs) = t.heard(later, newcomer, addr(50), true) else {
            panic!("expected a ping")
        };
        assert_eq!(lrs.id, ids[0]);
        assert!(!t.contains(newcomer));
        assert_eq!(t.cached(), 1);
        // It answers: it stays, the newcomer waits.
        t.heard(later, ids[0], addr(0), true);
        assert!(t.contains(ids[0]));
        // The next questionable one fails twice (failures_to_bad): the newcomer replaces it.
        t.failed(later, addr(1));
        assert!(t.contains(ids[1]));
        t.failed(later, addr(1));
        assert!(!t.contains(ids[1]));
        assert!(t.contains(newcomer));
        assert_eq!(t.cached(), 0);
    }

    #[test]
    fn one_node_per_ip_in_a_bucket_unless_configured() {
        let mut rng = Rng::new(3);
        let own = Id([0x55; 20]);
        let same_ip = |p| PeerAddr::v4([10, 0, 0, 1], p);
        let mut t: RoutingTable<64> = RoutingTable::new(own, &Config::default(), Instant::ZERO);
        let a = id_with_prefix(own, 0, &mut rng);
        let b = id_with_prefix(own, 0, &mut rng);
        assert_eq!(t.heard(Instant::ZERO, a, same_ip(1), true), Heard::Added);
        assert_eq!(t.heard(Instant::ZERO, b, same_ip(2), true), Heard::Refused);
        let loose = Config {
            restrict_ips: false,
            ..Config::default()
        };
        let mut t: RoutingTable<64> = RoutingTable::new(own, &loose, Instant::ZERO);
        assert_eq!(t.heard(Instant::ZERO, a, same_ip(1), true), Heard::Added);
        assert_eq!(t.heard(Instant::ZERO, b, same_ip(2), true), Heard::Added);
        // A known id at a new address is refused (first address wins).
        assert_eq!(t.heard(Instant::ZERO, a, same_ip(3), true), Heard::Refused);
    }

    #[test]
    fn bep42_verified_newcomer_replaces_unverified_questionable_node() {
        let mut rng = Rng::new(4);
        let own = Id([0x55; 20]);
        let config = Config::default();
        let mut t: RoutingTable<64> = RoutingTable::new(own, &config, Instant::ZERO);
        t.depth = MAX_BUCKETS as u8 - 1;
        for i in 0..8 {
            t.heard(
                Instant::ZERO,
                id_with_prefix(own, 0, &mut rng),
                addr(i),
                i != 3,
            );
        }
        let later = Instant::ZERO + config.node_timeout;
        let v = id_with_prefix(own, 0, &mut rng);
        assert_eq!(t.heard(later, v, addr(60), true), Heard::Added);
        assert!(t.iter().all(|n| n.verified));
    }

    #[test]
    fn closest_is_sorted_by_xor_distance_and_leaves_out_nodes_that_failed() {
        let mut rng = Rng::new(5);
        let own = Id([0x55; 20]);
        let mut t: RoutingTable<256> = RoutingTable::new(own, &Config::default(), Instant::ZERO);
        for i in 0..200 {
            let mut id = Id::ZERO;
            rng.fill(&mut id.0);
            t.heard(Instant::ZERO, id, addr(i), true);
        }
        let target = Id([0x12; 20]);
        let mut out: Vec<(Id, PeerAddr), 8> = Vec::new();
        t.closest(target, &mut out);
        assert_eq!(out.len(), 8);
        let mut all: std::vec::Vec<Id> = t.iter().map(|n| n.id).collect();
        all.sort_by_key(|id| id.xor(target));
        assert_eq!(
            out.iter().map(|(id, _)| *id).collect::<std::vec::Vec<_>>(),
            all[..8]
        );
        let (_, failing) = out[0];
        // One failed request: still in the table (not bad yet), but left out of answers.
        t.failed(Instant::ZERO, failing);
        assert!(t.iter().any(|n| n.addr == failing));
        t.closest(target, &mut out);
        assert_eq!(out.len(), 8);
        assert!(out.iter().all(|(_, a)| *a != failing));
        // A second one makes it bad: gone.
        t.failed(Instant::ZERO, failing);
        assert!(!t.iter().any(|n| n.addr == failing));
    }

    #[test]
    fn stale_buckets_are_refreshed_with_an_id_inside_them() {
        let mut rng = Rng::new(6);
        let own = Id([0x55; 20]);
        let config = Config::default();
        let mut t: RoutingTable<64> = RoutingTable::new(own, &config, Instant::ZERO);
        t.depth = 4;
        assert!(t.stale_bucket(Instant::ZERO, &mut rng).is_none());
        let later = Instant::ZERO + config.node_timeout;
        for b in 0..=4 {
            let id = t.stale_bucket(later, &mut rng).expect("stale");
            assert_eq!(t.bucket_of(id), b);
        }
        assert!(t.stale_bucket(later, &mut rng).is_none());
    }
}
