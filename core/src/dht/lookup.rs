//! The candidate list of an iterative Kademlia lookup (Maymounkov and Mazières 2002,
//! section 2.3; BEP 5 "Routing Table"): nodes ordered by XOR distance to the target, each
//! fresh, asked, answered or failed. The lookup asks the closest fresh candidates, at most
//! alpha at a time, and ends when the K closest candidates that have not failed have all
//! answered: those K are the result.

use super::config::{LOOKUP_CANDIDATES, MAX_TOKEN};
use crate::{Id, PeerAddr};
use heapless::Vec;

/// Where a candidate is in the lookup.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    /// Not asked yet.
    Fresh,
    /// Asked, no answer yet.
    Asked,
    /// Answered.
    Answered,
    /// Timed out or answered with an error.
    Failed,
}

/// A write token a node handed us, kept to announce or put to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Token {
    bytes: [u8; MAX_TOKEN],
    len: u8,
}

impl Token {
    /// `None` if longer than [`MAX_TOKEN`] (such a node cannot be written to).
    pub fn new(b: &[u8]) -> Option<Token> {
        let mut t = Token::default();
        t.bytes.get_mut(..b.len())?.copy_from_slice(b);
        t.len = b.len() as u8;
        Some(t)
    }
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// One node a lookup knows of.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// Its id.
    pub id: Id,
    /// Its address.
    pub addr: PeerAddr,
    /// Where it is in the lookup.
    pub state: State,
    /// The hop at which it was learnt: 1 for the nodes the lookup started from.
    pub depth: u8,
    /// Its write token, once it answered with one.
    pub token: Option<Token>,
}

/// The candidates of one lookup.
#[derive(Clone, Debug)]
pub struct Candidates {
    target: Id,
    list: Vec<Candidate, LOOKUP_CANDIDATES>,
}

impl Candidates {
    /// An empty list for `target`.
    pub fn new(target: Id) -> Self {
        Candidates {
            target,
            list: Vec::new(),
        }
    }

    /// The target.
    pub fn target(&self) -> Id {
        self.target
    }

    /// Adds a node learnt at hop `depth`, in distance order. Ignored if known (by id or
    /// address), or if the list is full and it is farther than every candidate.
    pub fn add(&mut self, id: Id, addr: PeerAddr, depth: u8) {
        if self.list.iter().any(|c| c.id == id || c.addr == addr) {
            return;
        }
        let d = id.xor(self.target);
        let pos = self
            .list
            .iter()
            .position(|c| c.id.xor(self.target) > d)
            .unwrap_or(self.list.len());
        if self.list.is_full() {
            if pos == self.list.len() {
                return;
            }
            self.list.pop();
        }
        let _ = self.list.insert(
            pos,
            Candidate {
                id,
                addr,
                state: State::Fresh,
                depth,
                token: None,
            },
        );
    }

    /// The candidate at `addr`.
    pub fn get_mut(&mut self, addr: PeerAddr) -> Option<&mut Candidate> {
        self.list.iter_mut().find(|c| c.addr == addr)
    }

    /// The `k` closest candidates that have not failed.
    fn head(&self, k: usize) -> impl Iterator<Item = &Candidate> {
        self.list
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(k)
    }

    /// The next candidate to ask: the closest fresh one among the `k` closest live ones.
    pub fn next_fresh(&mut self, k: usize) -> Option<&mut Candidate> {
        self.list
            .iter_mut()
            .filter(|c| c.state != State::Failed)
            .take(k)
            .find(|c| c.state == State::Fresh)
    }

    /// Whether the `k` closest candidates that have not failed have all answered.
    pub fn converged(&self, k: usize) -> bool {
        self.head(k).all(|c| c.state == State::Answered)
    }

    /// The `k` closest candidates that answered (the lookup's result once converged).
    pub fn answered(&self, k: usize) -> impl Iterator<Item = &Candidate> {
        self.list
            .iter()
            .filter(|c| c.state == State::Answered)
            .take(k)
    }

    /// Every candidate, closest first.
    pub fn iter(&self) -> impl Iterator<Item = &Candidate> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(i: u8) -> PeerAddr {
        PeerAddr::v4([10, 0, 0, i], 1)
    }

    #[test]
    fn candidates_stay_sorted_by_xor_distance_and_bounded() {
        let mut c = Candidates::new(Id::ZERO);
        for i in (1..=40u64).rev() {
            c.add(Id::from_u64(i), a(i as u8), 1);
        }
        let ids: heapless::Vec<u64, 64> = c.iter().map(|c| c.id.0[19] as u64).collect();
        assert_eq!(ids.len(), LOOKUP_CANDIDATES);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids[0], 1, "the farthest were pushed out");
        // Known ids and addresses are ignored.
        c.add(Id::from_u64(1), a(99), 2);
        c.add(Id::from_u64(0), a(1), 2);
        assert_eq!(c.iter().filter(|c| c.depth == 2).count(), 0);
    }

    #[test]
    fn convergence_needs_the_k_closest_live_candidates_to_answer() {
        let mut c = Candidates::new(Id::ZERO);
        for i in 1..=5u64 {
            c.add(Id::from_u64(i), a(i as u8), 1);
        }
        let k = 3;
        assert!(!c.converged(k));
        let first = c.next_fresh(k).unwrap();
        assert_eq!(first.id, Id::from_u64(1));
        first.state = State::Answered;
        c.get_mut(a(2)).unwrap().state = State::Failed;
        c.get_mut(a(3)).unwrap().state = State::Answered;
        assert!(
            !c.converged(k),
            "node 4 is now among the 3 closest live ones"
        );
        assert_eq!(c.next_fresh(k).unwrap().id, Id::from_u64(4));
        c.get_mut(a(4)).unwrap().state = State::Answered;
        assert!(c.converged(k));
        let ids: heapless::Vec<Id, 8> = c.answered(k).map(|c| c.id).collect();
        assert_eq!(
            &ids[..],
            &[Id::from_u64(1), Id::from_u64(3), Id::from_u64(4)]
        );
    }

    #[test]
    fn tokens_longer_than_the_limit_are_refused() {
        assert_eq!(Token::new(b"abcd").unwrap().as_bytes(), b"abcd");
        assert!(Token::new(&[0; MAX_TOKEN + 1]).is_none());
    }
}
