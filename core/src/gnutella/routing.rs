//! Gnutella's routing tables: where a descriptor came from, by GUID, so that duplicates are
//! dropped and replies travel back along the reverse path (Gnutella 0.6 draft, section 2.2.3:
//! "Pong descriptors may only be sent along the same path that carried the incoming Ping",
//! likewise QueryHits for Queries), and where a servent id was last seen, to route Pushes.
//!
//! Bounded and time-expiring without a clock per entry: two generations of a hash map. New
//! entries go into the current one; when it is full or half a lifetime old it becomes the
//! previous one and the old previous is dropped whole. An entry so lives between half a
//! lifetime and a lifetime, and a lookup costs two hash probes.

pub use super::wire::Guid;
use crate::{ConnId, Duration, Instant};
use heapless::index_map::FnvIndexMap;

/// Where a routed descriptor came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    /// We sent it (our own ping or query): replies are ours.
    Local,
    /// It arrived on this connection.
    Conn(ConnId),
}

/// A bounded, expiring map from 16-byte ids to where they came from. `N` (a power of two)
/// entries per generation.
pub struct RouteTable<const N: usize> {
    current: FnvIndexMap<Guid, Origin, N>,
    previous: FnvIndexMap<Guid, Origin, N>,
    started: Instant,
    lifetime: Duration,
}

impl<const N: usize> RouteTable<N> {
    /// An empty table whose entries live at least `lifetime / 2` and at most `lifetime`.
    pub fn new(lifetime: Duration, now: Instant) -> Self {
        RouteTable {
            current: FnvIndexMap::new(),
            previous: FnvIndexMap::new(),
            started: now,
            lifetime,
        }
    }

    fn age(&mut self, now: Instant) {
        let half = Duration::from_micros(self.lifetime.as_micros() / 2);
        if now.saturating_since(self.started) >= half {
            // Two half-lifetimes without traffic: both generations are stale.
            if now.saturating_since(self.started) >= self.lifetime {
                self.previous.clear();
            } else {
                core::mem::swap(&mut self.previous, &mut self.current);
            }
            self.current.clear();
            self.started = now;
        }
    }

    /// Where `id` came from, if it is still remembered.
    pub fn get(&mut self, now: Instant, id: &Guid) -> Option<Origin> {
        self.age(now);
        self.current
            .get(id)
            .or_else(|| self.previous.get(id))
            .copied()
    }

    /// Records that `id` came from `origin`, unless it is already known: `false` for a
    /// duplicate (which a servent drops), `true` when recorded.
    pub fn insert_new(&mut self, now: Instant, id: Guid, origin: Origin) -> bool {
        if self.get(now, &id).is_some() {
            return false;
        }
        self.set(now, id, origin);
        true
    }

    /// Records (or updates) where `id` was last seen, e.g. a servent id for Push routing.
    pub fn set(&mut self, now: Instant, id: Guid, origin: Origin) {
        self.age(now);
        if self.current.len() == N && !self.current.contains_key(&id) {
            core::mem::swap(&mut self.previous, &mut self.current);
            self.current.clear();
            self.started = now;
        }
        // Cannot fail: there is room or the key is present.
        let _ = self.current.insert(id, origin);
    }

    /// Forgets every route through `conn` (the connection closed).
    pub fn forget_conn(&mut self, conn: ConnId) {
        for map in [&mut self.current, &mut self.previous] {
            map.retain(|_, o| *o != Origin::Conn(conn));
        }
    }

    /// Entries remembered, both generations.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(i: u32) -> Guid {
        let mut id = [0; 16];
        id[..4].copy_from_slice(&i.to_le_bytes());
        id
    }

    const C1: Origin = Origin::Conn(ConnId::inbound(1));
    const C2: Origin = Origin::Conn(ConnId::inbound(2));

    #[test]
    fn duplicates_are_recognised_and_the_first_origin_kept() {
        let now = Instant::ZERO;
        let mut t: RouteTable<16> = RouteTable::new(Duration::from_secs(600), now);
        assert!(t.insert_new(now, g(1), C1));
        assert!(
            !t.insert_new(now, g(1), C2),
            "the same GUID again is a duplicate"
        );
        assert_eq!(
            t.get(now, &g(1)),
            Some(C1),
            "replies go back where it first came from"
        );
        assert_eq!(t.get(now, &g(2)), None);
    }

    #[test]
    fn bounded_entries_survive_one_generation_change() {
        let now = Instant::ZERO;
        let mut t: RouteTable<8> = RouteTable::new(Duration::from_secs(600), now);
        for i in 0..8 {
            assert!(t.insert_new(now, g(i), C1));
        }
        // The ninth starts a new generation; the first eight are still known.
        assert!(t.insert_new(now, g(8), C2));
        assert!((0..9).all(|i| t.get(now, &g(i)).is_some()));
        // Eight more push the oldest generation out.
        for i in 9..17 {
            t.insert_new(now, g(i), C2);
        }
        assert_eq!(t.get(now, &g(0)), None);
        assert!(t.len() <= 16);
    }

    #[test]
    fn entries_expire_between_half_a_lifetime_and_a_lifetime() {
        let life = Duration::from_secs(600);
        let mut t: RouteTable<8> = RouteTable::new(life, Instant::ZERO);
        t.insert_new(Instant::ZERO, g(1), C1);
        let half = Instant::from_micros(300_000_000);
        assert_eq!(
            t.get(half, &g(1)),
            Some(C1),
            "still known after half a lifetime"
        );
        assert_eq!(t.get(Instant::from_micros(600_000_000), &g(1)), None);
        // A quiet table drops everything after a whole lifetime at once.
        t.insert_new(Instant::ZERO, g(2), C1);
        assert_eq!(t.get(Instant::from_micros(2_000_000_000), &g(2)), None);
    }

    #[test]
    fn routes_through_a_closed_connection_are_forgotten() {
        let now = Instant::ZERO;
        let mut t: RouteTable<8> = RouteTable::new(Duration::from_secs(600), now);
        t.insert_new(now, g(1), C1);
        t.insert_new(now, g(2), C2);
        t.set(now, g(3), Origin::Local);
        t.forget_conn(ConnId::inbound(1));
        assert_eq!(t.get(now, &g(1)), None);
        assert_eq!(t.get(now, &g(2)), Some(C2));
        assert_eq!(t.get(now, &g(3)), Some(Origin::Local));
    }
}
