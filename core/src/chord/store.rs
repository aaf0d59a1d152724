//! The key-value store a Chord node keeps: the keys it owns and replicas of its
//! predecessors' keys, sorted by id so a key range (what a join or leave hands over) is a
//! contiguous scan.

use crate::Id;

/// One stored value.
#[derive(Clone, Debug)]
pub struct Entry<const VALUE: usize> {
    /// The key's ring id.
    pub key: Id,
    /// The value.
    pub value: heapless::Vec<u8, VALUE>,
}

/// Why a value was not stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StoreError {
    /// All `STORE` slots are taken.
    Full,
    /// The value is longer than `VALUE` bytes.
    TooLarge,
}

/// A fixed-capacity sorted map from key id to value that keeps the keys nearest its node
/// when full. RAM: `STORE * (VALUE + 28)` bytes.
#[derive(Clone, Debug, Default)]
pub struct Store<const STORE: usize, const VALUE: usize> {
    entries: heapless::Vec<Entry<VALUE>, STORE>,
}

impl<const STORE: usize, const VALUE: usize> Store<STORE, VALUE> {
    /// Inserts or replaces. When the store is full it keeps the keys nearest to this node
    /// (id `me`): a key's replica set is its owner and the owner's successors, so the
    /// further a key lies counter-clockwise from `me`, the less this node is needed to hold
    /// it. The farthest key is evicted for a nearer one; a key this node owns is therefore
    /// only refused when every slot holds a key it owns or nearer.
    pub fn put(&mut self, key: Id, value: &[u8], me: Id) -> Result<(), StoreError> {
        let value = heapless::Vec::from_slice(value).map_err(|_| StoreError::TooLarge)?;
        let at = match self.entries.binary_search_by(|e| e.key.cmp(&key)) {
            Ok(i) => {
                self.entries[i].value = value;
                return Ok(());
            }
            Err(i) => i,
        };
        if !self.entries.is_full() {
            let _ = self.entries.insert(at, Entry { key, value });
            return Ok(());
        }
        // The farthest key counter-clockwise is the first one clockwise after `me`.
        let far = self.entries.partition_point(|e| e.key <= me) % self.entries.len().max(1);
        let nearer = |k: Id| k.ring_distance(me);
        match self.entries.get(far) {
            Some(f) if nearer(key) < nearer(f.key) => {
                self.entries.remove(far);
                let at = self.entries.partition_point(|e| e.key < key);
                let _ = self.entries.insert(at, Entry { key, value });
                Ok(())
            }
            _ => Err(StoreError::Full),
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: Id) -> Option<&[u8]> {
        let i = self.entries.binary_search_by(|e| e.key.cmp(&key)).ok()?;
        Some(&self.entries[i].value)
    }
    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// All entries, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<VALUE>> {
        self.entries.iter()
    }
    /// The first key after `after` (from the start when `None`), in id order, that lies in
    /// the ring interval `(lo, hi]`: how a hand-off walks a range one key per call.
    pub fn next_in_range(&self, after: Option<Id>, lo: Id, hi: Id) -> Option<&Entry<VALUE>> {
        let start = match after {
            Some(a) => self.entries.partition_point(|e| e.key <= a),
            None => 0,
        };
        self.entries[start..]
            .iter()
            .find(|e| e.key.in_half_open(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Id = Id::from_u64(100);

    #[test]
    fn put_replaces_get_finds_full_and_oversize_are_errors() {
        let mut s = Store::<2, 4>::default();
        s.put(Id::from_u64(2), b"b", ME).unwrap();
        s.put(Id::from_u64(1), b"a", ME).unwrap();
        s.put(Id::from_u64(2), b"bb", ME).unwrap();
        assert_eq!(s.get(Id::from_u64(2)), Some(&b"bb"[..]));
        // 150 lies just after `me`: the farthest of all keys counter-clockwise.
        assert_eq!(s.put(Id::from_u64(150), b"c", ME), Err(StoreError::Full));
        assert_eq!(
            s.put(Id::from_u64(1), b"toolong", ME),
            Err(StoreError::TooLarge)
        );
        assert_eq!(s.get(Id::from_u64(1)), Some(&b"a"[..]));
    }

    #[test]
    fn a_full_store_evicts_the_farthest_replica_for_a_nearer_key() {
        let mut s = Store::<3, 1>::default();
        for k in [50, 90, 200] {
            s.put(Id::from_u64(k), b"x", ME).unwrap();
        }
        // Counter-clockwise from 100: 90 (10 away), 50 (50 away), 200 (2^160 - 100 away).
        s.put(Id::from_u64(95), b"y", ME).unwrap();
        assert!(s.get(Id::from_u64(200)).is_none());
        s.put(Id::from_u64(60), b"y", ME).unwrap();
        assert!(s.get(Id::from_u64(50)).is_none());
        assert_eq!(s.put(Id::from_u64(10), b"z", ME), Err(StoreError::Full));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn range_walk_wraps_around_the_ring() {
        let mut s = Store::<8, 1>::default();
        for k in [1u64, 5, 9, 200] {
            s.put(Id::from_u64(k), b"x", ME).unwrap();
        }
        let walk = |lo, hi| {
            let mut keys = heapless::Vec::<u64, 8>::new();
            let mut after = None;
            while let Some(e) = s.next_in_range(after, Id::from_u64(lo), Id::from_u64(hi)) {
                keys.push(e.key.0[19] as u64).unwrap();
                after = Some(e.key);
            }
            keys
        };
        assert_eq!(walk(1, 9), [5, 9]);
        assert_eq!(walk(100, 5), [1, 5, 200]); // wraps: (100, 2^160) and [0, 5]
        assert_eq!(walk(7, 7), [1, 5, 9, 200]); // (x, x] is the whole ring
    }
}
