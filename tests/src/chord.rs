//! Chord on the simulator: building rings, the global oracle, and the measurements that the
//! reproductions (tests and the `chord-paper` binary) are made of.

use crate::net::{NetConfig, Sim, SimError};
use overlay_core::chord::{Chord, Config, Event, Phase, QueryId};
use overlay_core::{Duration, Id, Instant, Rng};
use std::collections::HashMap;

/// A Chord node as simulated here: `S` stored pairs of up to `V`-byte values.
pub type Node<const S: usize, const V: usize> = Chord<S, V>;

/// What the harness remembers of the events nodes reported.
#[derive(Default, Debug)]
pub struct Outcomes {
    /// Finished lookups: (node, query) -> (owner id, hops).
    pub lookups: HashMap<(usize, QueryId), (Id, u8)>,
    /// Finished puts: (node, query) -> stored.
    pub puts: HashMap<(usize, QueryId), bool>,
    /// Finished gets: (node, query) -> value (None: not found or failed).
    pub gets: HashMap<(usize, QueryId), Option<Vec<u8>>>,
    /// Commands that failed: (node, query).
    pub failed: HashMap<(usize, QueryId), overlay_core::chord::Failure>,
    /// Nodes that finished joining.
    pub joined: usize,
}

impl Outcomes {
    fn record(&mut self, i: usize, e: Event<'_>) {
        match e {
            Event::Joined { .. } => self.joined += 1,
            Event::LookupDone {
                query, owner, hops, ..
            } => {
                self.lookups.insert((i, query), (owner.id, hops));
            }
            Event::PutDone { query, .. } => {
                self.puts.insert((i, query), true);
            }
            Event::GetDone { query, value, .. } => {
                self.gets.insert((i, query), value.map(<[u8]>::to_vec));
            }
            Event::Failed { query, reason, .. } => {
                self.failed.insert((i, query), reason);
            }
            Event::Left => {}
        }
    }
}

/// A simulated Chord network with a global oracle.
pub struct ChordNet<const S: usize = 64, const V: usize = 32> {
    /// The network and its nodes.
    pub sim: Sim<Node<S, V>>,
    /// Settings every node gets.
    pub config: Config,
    /// What nodes reported.
    pub outcomes: Outcomes,
    /// Stabilize rounds each wave of [`ChordNet::grow`] took to reach a correct ring.
    pub wave_rounds: Vec<u32>,
    rng: Rng,
}

impl<const S: usize, const V: usize> ChordNet<S, V> {
    /// An empty network.
    pub fn new(net: NetConfig, config: Config) -> Self {
        ChordNet {
            sim: Sim::new(net),
            config,
            outcomes: Outcomes::default(),
            wave_rounds: Vec::new(),
            rng: Rng::new(net.seed ^ 0xc40d),
        }
    }

    /// The harness's own randomness (which nodes, which keys), seeded from the network's.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Adds a node (not yet a member).
    pub fn add(&mut self) -> usize {
        let (config, seed) = (self.config, self.rng.next_u64());
        self.sim.add(|addr| Chord::new(config, addr, seed))
    }

    /// Runs a command on node `i`, recording the events that come out at once.
    pub fn command<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Node<S, V>, Instant) -> R,
    ) -> Option<R> {
        let outcomes = &mut self.outcomes;
        self.sim.command(i, &mut |n, _, e| outcomes.record(n, e), f)
    }

    /// Advances virtual time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        let outcomes = &mut self.outcomes;
        self.sim.run_for(d, &mut |n, _, e| outcomes.record(n, e))
    }

    /// Live members, sorted by id: the oracle's ring.
    pub fn ring(&self) -> Vec<(Id, usize)> {
        let mut ring: Vec<_> = self
            .sim
            .live()
            .filter_map(|i| {
                let n = self.sim.node(i)?;
                (n.phase() == Phase::Member).then(|| (n.node().id, i))
            })
            .collect();
        ring.sort_unstable();
        ring
    }

    /// The oracle: the live member that owns `key` (the first id at or after it).
    pub fn true_successor(ring: &[(Id, usize)], key: Id) -> (Id, usize) {
        let at = ring.partition_point(|(id, _)| *id < key);
        ring[at % ring.len()]
    }

    /// Members whose first successor or predecessor differs from the oracle's, and members
    /// whose successor list is not the next `min(r, N - 1)` members.
    pub fn ring_errors(&self) -> RingErrors {
        let ring = self.ring();
        let n = ring.len();
        let mut errors = RingErrors::default();
        for (k, &(_, i)) in ring.iter().enumerate() {
            let node = self.sim.node(i).expect("live");
            let want_succ = ring[(k + 1) % n].0;
            let want_pred = ring[(k + n - 1) % n].0;
            let succs = node.successors();
            if n > 1 && succs.first().map(|s| s.id) != Some(want_succ) {
                errors.successor += 1;
            }
            if n > 1 && node.predecessor().map(|p| p.id) != Some(want_pred) {
                errors.predecessor += 1;
            }
            let r = node.config().successors.min(n - 1);
            let list_ok =
                succs.len() == r && (0..r).all(|j| succs[j].id == ring[(k + 1 + j) % n].0);
            if !list_ok {
                errors.successor_list += 1;
            }
        }
        errors
    }

    /// Creates a ring and joins `count` more nodes in waves, each through a random member,
    /// waiting for a correct ring after each wave. A wave is at most `batch` nodes and at
    /// most as many as are already members, so the ring doubles at most per wave and each
    /// gap between members receives about one joiner (joiners that land in one gap are
    /// sorted out one per stabilize round). Returns the node indices.
    pub fn grow(&mut self, count: usize, batch: usize) -> Result<Vec<usize>, String> {
        let first = self.add();
        self.command(first, |n, now| n.create(now))
            .expect("live")
            .map_err(|e| e.to_string())?;
        let mut members = vec![first];
        while members.len() < count + 1 {
            let this = batch.min(count + 1 - members.len()).min(members.len());
            let existing = members.len();
            for _ in 0..this {
                let via = members[self.rng.below(existing as u64) as usize];
                let i = self.add();
                let bootstrap = crate::net::addr_of(via);
                self.command(i, |n, now| n.join(now, bootstrap))
                    .expect("live")
                    .map_err(|e| e.to_string())?;
                members.push(i);
            }
            let rounds = self.stabilize_until_correct(Duration::from_secs(600))?;
            self.wave_rounds.push(rounds);
        }
        Ok(members)
    }

    /// Starts a ring at one node and has `count` more join through it all at the same
    /// instant; returns the stabilize rounds until the ring is correct.
    pub fn join_concurrently(&mut self, count: usize, limit: Duration) -> Result<u32, String> {
        let first = self.add();
        self.command(first, |n, now| n.create(now))
            .expect("live")
            .map_err(|e| e.to_string())?;
        let bootstrap = crate::net::addr_of(first);
        for _ in 0..count {
            let i = self.add();
            self.command(i, |n, now| n.join(now, bootstrap))
                .expect("live")
                .map_err(|e| e.to_string())?;
        }
        self.stabilize_until_correct(limit)
    }

    /// Runs in stabilize-interval steps until the ring is correct (every successor list and
    /// predecessor equals the oracle's); returns the number of intervals it took.
    pub fn stabilize_until_correct(&mut self, limit: Duration) -> Result<u32, String> {
        let step = self.config.stabilize_interval;
        let mut rounds = 0;
        loop {
            if self.ring_errors().is_clean() && self.pending_joins() == 0 {
                return Ok(rounds);
            }
            if Duration::from_micros(step.as_micros() * rounds as u64) >= limit {
                return Err(format!(
                    "ring not correct after {rounds} rounds: {:?}",
                    self.ring_errors()
                ));
            }
            self.run_for(step).map_err(|e| e.to_string())?;
            rounds += 1;
        }
    }

    /// Nodes still joining.
    pub fn pending_joins(&self) -> usize {
        self.sim
            .live()
            .filter(|&i| {
                self.sim
                    .node(i)
                    .is_some_and(|n| n.phase() == Phase::Joining)
            })
            .count()
    }

    /// Issues `count` lookups for random keys from random members, at most `per_round`
    /// per node at a time, waits for them and checks each answer against the oracle.
    pub fn measure_lookups(&mut self, count: usize) -> Result<LookupStats, String> {
        let ring = self.ring();
        let mut asked: Vec<(usize, QueryId, Id)> = Vec::with_capacity(count);
        let mut stats = LookupStats::default();
        let mut issued = 0;
        while issued < count {
            // One lookup per member per wave keeps every node within its lookup capacity.
            for &(_, i) in &ring {
                if issued == count {
                    break;
                }
                let mut key = [0u8; 20];
                self.rng.fill(&mut key);
                let key = Id(key);
                match self.command(i, |n, now| n.lookup(now, key)).expect("live") {
                    Ok(q) => {
                        asked.push((i, q, key));
                        issued += 1;
                    }
                    Err(_) => stats.refused += 1,
                }
            }
            self.run_for(Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
        }
        for (i, q, key) in asked {
            let truth = Self::true_successor(&ring, key).0;
            match self.outcomes.lookups.remove(&(i, q)) {
                Some((owner, hops)) => {
                    stats.hops.push(hops);
                    if owner != truth {
                        stats.wrong += 1;
                    }
                }
                None => stats.failed += 1,
            }
        }
        Ok(stats)
    }
}

/// Disagreements with the oracle.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct RingErrors {
    /// Members whose first successor is wrong.
    pub successor: usize,
    /// Members whose predecessor is wrong.
    pub predecessor: usize,
    /// Members whose successor list is not the next r members.
    pub successor_list: usize,
}

impl RingErrors {
    /// No disagreement at all.
    pub fn is_clean(&self) -> bool {
        *self == RingErrors::default()
    }
}

/// Lookup path lengths and correctness.
#[derive(Clone, Default, Debug)]
pub struct LookupStats {
    /// Path length of each successful lookup.
    pub hops: Vec<u8>,
    /// Lookups that returned an owner other than the oracle's.
    pub wrong: usize,
    /// Lookups that failed.
    pub failed: usize,
    /// Lookups a node refused (busy).
    pub refused: usize,
}

impl LookupStats {
    /// Mean path length.
    pub fn mean(&self) -> f64 {
        self.hops.iter().map(|&h| h as f64).sum::<f64>() / self.hops.len().max(1) as f64
    }
    /// The `p`th percentile path length (`p` in 0..=100).
    pub fn percentile(&self, p: f64) -> u8 {
        let mut h = self.hops.clone();
        h.sort_unstable();
        if h.is_empty() {
            return 0;
        }
        h[((p / 100.0) * (h.len() - 1) as f64).round() as usize]
    }
}

/// A key and its value, as the application put them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

impl<const S: usize, const V: usize> ChordNet<S, V> {
    /// Puts `count` keys (`key-<n>` = `value-<n>`) through random members, waits, and
    /// returns those whose put succeeded.
    pub fn put_keys(&mut self, count: usize) -> Result<Vec<KeyValue>, String> {
        let ring = self.ring();
        let mut asked = Vec::new();
        let mut k = 0;
        while k < count {
            for _ in 0..ring.len().min(count - k) {
                let (key, value) = (
                    format!("key-{k}").into_bytes(),
                    format!("value-{k}").into_bytes(),
                );
                // A node refuses when its operation slots are full: try another.
                for _ in 0..16 {
                    let i = ring[self.rng.below(ring.len() as u64) as usize].1;
                    if let Ok(q) = self
                        .command(i, |n, now| n.put(now, &key, &value))
                        .expect("live")
                    {
                        asked.push((i, q, key, value));
                        break;
                    }
                }
                k += 1;
            }
            self.run_for(Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
        }
        Ok(asked
            .into_iter()
            .filter(|(i, q, _, _)| self.outcomes.puts.remove(&(*i, *q)).is_some())
            .map(|(_, _, k, v)| (k, v))
            .collect())
    }

    /// Gets every key through a random live member; returns how many came back with the
    /// right value.
    pub fn get_keys(&mut self, keys: &[KeyValue]) -> Result<usize, String> {
        let ring = self.ring();
        let mut asked = Vec::new();
        for chunk in keys.chunks(ring.len()) {
            for (key, value) in chunk {
                for _ in 0..16 {
                    let i = ring[self.rng.below(ring.len() as u64) as usize].1;
                    if let Ok(q) = self.command(i, |n, now| n.get(now, key)).expect("live") {
                        asked.push((i, q, value));
                        break;
                    }
                }
            }
            self.run_for(Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
        }
        Ok(asked
            .into_iter()
            .filter(|(i, q, value)| {
                self.outcomes.gets.remove(&(*i, *q)).flatten().as_ref() == Some(*value)
            })
            .count())
    }

    /// Crashes each of `nodes` with probability `fraction`, all at this instant; returns
    /// how many crashed.
    pub fn crash_each(&mut self, nodes: &[usize], fraction: f64) -> usize {
        let doomed: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|_| self.rng.chance(fraction))
            .collect();
        for &i in &doomed {
            self.sim.crash(i);
        }
        doomed.len()
    }

    /// The keys that some live node still holds.
    pub fn keys_with_live_copy(&self, keys: &[KeyValue]) -> Vec<KeyValue> {
        keys.iter()
            .filter(|(k, _)| self.holders(k) > 0)
            .cloned()
            .collect()
    }

    /// Live nodes holding `key` (owner or replica).
    pub fn holders(&self, key: &[u8]) -> usize {
        let id = Id::sha256(key);
        self.sim
            .live()
            .filter(|&i| {
                self.sim
                    .node(i)
                    .is_some_and(|n| n.store().get(id).is_some())
            })
            .count()
    }
}
