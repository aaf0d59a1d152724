//! A Chord node's view of the ring: the successor list and the finger table.
//!
//! Follows Zave, "Reasoning about identifier spaces: how to make Chord correct" (IEEE TSE
//! 2017): the successor list is the backbone that correctness rests on (it must skip no
//! live member, and survives `r - 1` consecutive failures); fingers only make lookups fast,
//! so a stale finger can cost hops but never a wrong answer.

use super::config::{LOOKUP_CANDIDATES, MAX_FINGERS, MAX_SUCCESSORS};
use super::wire::{Candidates, NodeList, NodeRef};
use crate::{Id, PeerAddr};

/// The first `r` live successors, nearest first. Empty means the node believes it is alone.
#[derive(Clone, Debug, Default)]
pub struct SuccessorList {
    nodes: NodeList,
}

impl SuccessorList {
    /// The nearest successor.
    pub fn first(&self) -> Option<&NodeRef> {
        self.nodes.first()
    }
    /// All of them, nearest first.
    pub fn as_slice(&self) -> &[NodeRef] {
        &self.nodes
    }
    /// A copy for the wire.
    pub fn to_list(&self) -> NodeList {
        self.nodes.clone()
    }
    /// Zave's reconcile: the list becomes `head` followed by `rest` (a successor's own
    /// list), cut at the node itself (the ring has wrapped around) and at `r` entries, with
    /// duplicates dropped. Nodes that were not in the list before are added to `fresh`.
    pub fn reconcile(
        &mut self,
        me: Id,
        r: usize,
        head: NodeRef,
        rest: &[NodeRef],
        fresh: &mut NodeList,
    ) {
        let mut next = NodeList::new();
        for n in core::iter::once(&head).chain(rest) {
            if n.id == me || next.len() >= r.min(MAX_SUCCESSORS) {
                break;
            }
            if !next.iter().any(|m| m.addr == n.addr) {
                // Cannot fail: the length was checked above.
                let _ = next.push(*n);
                if !self.nodes.contains(n) {
                    let _ = fresh.push(*n);
                }
            }
        }
        self.nodes = next;
    }
    /// Forgets a node (it failed or left). Returns whether it was in the list.
    pub fn remove(&mut self, addr: PeerAddr) -> bool {
        let before = self.nodes.len();
        self.nodes.retain(|n| n.addr != addr);
        self.nodes.len() != before
    }
    /// Whether the list holds `addr`.
    pub fn contains(&self, addr: PeerAddr) -> bool {
        self.nodes.iter().any(|n| n.addr == addr)
    }
}

/// One finger: `node` is the successor of `me + 2^bit` (and of every later finger start up
/// to the node itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finger {
    /// The lowest finger index this node is known to serve.
    pub bit: u8,
    /// The node.
    pub node: NodeRef,
}

/// The finger table, stored by distinct node: `m = 160` logical entries collapse to about
/// log2(N) distinct ones, which is all a node needs to keep.
#[derive(Clone, Debug, Default)]
pub struct FingerTable {
    fingers: heapless::Vec<Finger, MAX_FINGERS>,
}

impl FingerTable {
    /// The distinct fingers, by increasing `bit`.
    pub fn iter(&self) -> impl Iterator<Item = &Finger> {
        self.fingers.iter()
    }
    /// How many distinct fingers are known.
    pub fn len(&self) -> usize {
        self.fingers.len()
    }
    /// Whether no finger is known.
    pub fn is_empty(&self) -> bool {
        self.fingers.is_empty()
    }
    /// Records that `node` succeeds `me + 2^bit`. Entries it supersedes (the same node, or
    /// fingers whose start it now covers) are dropped.
    pub fn set(&mut self, me: Id, bit: u8, node: NodeRef) {
        let end = cover_end(me, node.id);
        self.fingers
            .retain(|f| f.node.addr != node.addr && !(bit..end).contains(&f.bit));
        if self.fingers.is_full() {
            // Closest fingers go first: the successor list covers that part of the ring.
            self.fingers.remove(0);
        }
        let at = self.fingers.partition_point(|f| f.bit < bit);
        // Cannot fail: room was made above.
        let _ = self.fingers.insert(at, Finger { bit, node });
    }
    /// Forgets a node (it failed or left).
    pub fn remove(&mut self, addr: PeerAddr) {
        self.fingers.retain(|f| f.node.addr != addr);
    }
}

/// The first finger index after those that `node` serves for a node at `me`: the index of
/// the first finger start beyond `node`, i.e. `bit_len(node - me)`. 160 means "wrap".
pub fn cover_end(me: Id, node: Id) -> u8 {
    me.ring_distance(node).bit_len() as u8
}

/// The nodes among `known` that most closely precede `key` (ids in the open interval
/// `(me, key)`), closest first, at most [`LOOKUP_CANDIDATES`]: the paper's
/// `closest_preceding_node`, widened to a short list so a lookup can route around a dead hop.
pub fn closest_preceding<'a>(
    me: Id,
    key: Id,
    known: impl IntoIterator<Item = &'a NodeRef>,
) -> Candidates {
    let mut out = Candidates::new();
    for n in known {
        if !n.id.in_open(me, key) || out.iter().any(|m| m.addr == n.addr) {
            continue;
        }
        let d = n.id.ring_distance(key);
        let at = out.partition_point(|m| m.id.ring_distance(key) < d);
        if at < LOOKUP_CANDIDATES {
            if out.is_full() {
                out.pop();
            }
            let _ = out.insert(at, *n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u64) -> NodeRef {
        NodeRef {
            id: Id::from_u64(n),
            addr: PeerAddr::v4([10, 0, (n >> 8) as u8, n as u8], 1),
        }
    }

    #[test]
    fn reconcile_cuts_at_self_dedups_caps_at_r_and_reports_fresh_nodes() {
        let mut l = SuccessorList::default();
        let rest = [node(30), node(30), node(40), node(5), node(50)];
        let mut fresh = NodeList::new();
        l.reconcile(Id::from_u64(5), 8, node(20), &rest, &mut fresh);
        assert_eq!(l.as_slice(), &[node(20), node(30), node(40)]);
        assert_eq!(fresh, l.to_list());
        fresh.clear();
        l.reconcile(Id::from_u64(5), 8, node(20), &rest, &mut fresh);
        assert!(fresh.is_empty());
        l.reconcile(Id::from_u64(5), 2, node(10), &rest, &mut fresh);
        assert_eq!(l.as_slice(), &[node(10), node(30)]);
        assert_eq!(fresh.as_slice(), &[node(10)]);
        assert!(l.remove(node(10).addr));
        assert_eq!(l.first(), Some(&node(30)));
    }

    #[test]
    fn fingers_keep_one_entry_per_node_ordered_by_bit() {
        let me = Id::from_u64(0);
        let mut t = FingerTable::default();
        t.set(me, 0, node(3)); // serves bits 0..2
        t.set(me, 2, node(9)); // serves bits 2..4
        t.set(me, 4, node(100));
        assert_eq!(
            t.iter().map(|f| f.bit).collect::<heapless::Vec<_, 4>>(),
            [0, 2, 4]
        );
        // node 9 replaced by node 5 (serves bit 2 only): the node 9 entry goes.
        t.set(me, 2, node(5));
        assert_eq!(t.len(), 3);
        assert!(t.iter().all(|f| f.node != node(9)));
        t.remove(node(3).addr);
        assert_eq!(t.iter().next().unwrap().node, node(5));
        assert_eq!(cover_end(me, Id::from_u64(9)), 4);
    }

    #[test]
    fn closest_preceding_orders_by_distance_to_key_and_excludes_outside_interval() {
        let me = Id::from_u64(10);
        let known = [node(20), node(60), node(45), node(5), node(90), node(50)];
        let c = closest_preceding(me, Id::from_u64(55), &known);
        // 90 and 5 are not in (10, 55); 50 is closest, then 45, 20.
        assert_eq!(c.as_slice(), &[node(50), node(45), node(20)]);
        assert!(closest_preceding(me, Id::from_u64(11), &known).is_empty());
    }
}
