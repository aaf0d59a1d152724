//! The Mainline DHT on the simulator: growing a network through bootstraps, crashing part
//! of it, and checking lookups against the global oracle (the K closest live node ids).

use crate::net::{NetConfig, Sim, SimError};
use crate::util::mean;
use overlay_core::dht::{Config, Dht, Event, Failure, LookupStats};
use overlay_core::{Duration, Id, QueryId, Rng};
use std::collections::HashMap;

/// A DHT node as simulated: a 128-node table, 4 lookups at once, small stores.
pub type SimNode = Dht<128, 4, 16, 2>;

/// What the harness remembers of finished lookups.
#[derive(Default, Debug)]
pub struct Outcomes {
    /// Finished `find_node` lookups: (node, query) -> (nodes found, stats).
    pub found: HashMap<(usize, QueryId), (Vec<Id>, LookupStats)>,
    /// Finished `get_peers`: (node, query) -> peers' ports.
    pub peers: HashMap<(usize, QueryId), Vec<u16>>,
    /// Finished announces and puts: (node, query) -> nodes that stored.
    pub stored: HashMap<(usize, QueryId), u8>,
    /// Finished gets: (node, query) -> value.
    pub items: HashMap<(usize, QueryId), Option<Vec<u8>>>,
    /// Failed commands.
    pub failed: HashMap<(usize, QueryId), Failure>,
    /// Bootstraps that finished.
    pub bootstrapped: usize,
}

impl Outcomes {
    fn record(&mut self, i: usize, e: Event<'_>) {
        match e {
            Event::Bootstrapped { .. } => self.bootstrapped += 1,
            Event::Nodes {
                query,
                nodes,
                stats,
                ..
            } => {
                let ids = nodes.iter().map(|(id, _)| *id).collect();
                self.found.insert((i, query), (ids, stats));
            }
            Event::Peers { query, peers, .. } => {
                let ports = peers.iter().map(|p| p.port()).collect();
                self.peers.insert((i, query), ports);
            }
            Event::Announced { query, stored, .. } | Event::Stored { query, stored, .. } => {
                self.stored.insert((i, query), stored);
            }
            Event::Item { query, value, .. } => {
                self.items.insert((i, query), value.map(<[u8]>::to_vec));
            }
            Event::Failed { query, reason } => {
                self.failed.insert((i, query), reason);
            }
            // Simulated addresses are private: BEP 42 never renames a node here.
            Event::NewId { .. } => {}
        }
    }
}

/// A simulated DHT with a global oracle.
pub struct DhtNet {
    /// The network and its nodes.
    pub sim: Sim<SimNode>,
    /// Settings every node gets.
    pub config: Config,
    /// What nodes reported.
    pub outcomes: Outcomes,
    rng: Rng,
}

/// Lookups measured against the oracle.
#[derive(Clone, Default, Debug)]
pub struct LookupReport {
    /// Lookups issued.
    pub issued: usize,
    /// Lookups whose result was exactly the K closest live nodes.
    pub exact: usize,
    /// Lookups that failed or never finished.
    pub failed: usize,
    /// Rounds (longest referral chain) of each finished lookup.
    pub rounds: Vec<u8>,
    /// The first wave's lookups (in flight when `during` ran): (exact, issued).
    pub first_wave: (usize, usize),
    /// Every wave's (exact, issued), in order; waves are one simulated minute apart.
    pub waves: Vec<(usize, usize)>,
    /// Requests each finished lookup sent.
    pub messages: Vec<u16>,
}

impl LookupReport {
    /// The fraction of issued lookups that returned exactly the K closest live nodes.
    pub fn exact_fraction(&self) -> f64 {
        self.exact as f64 / self.issued.max(1) as f64
    }
    /// The exact fraction of the lookups issued after the first wave (those in flight when
    /// `during` ran are reported apart, in `first_wave`).
    pub fn exact_after_first_wave(&self) -> f64 {
        let (exact, issued) = self.first_wave;
        (self.exact - exact) as f64 / (self.issued - issued).max(1) as f64
    }
    /// The exact fraction of the lookups issued `minutes` or more after the first wave.
    pub fn exact_from_minute(&self, minutes: usize) -> f64 {
        let (exact, issued) = self
            .waves
            .iter()
            .skip(minutes)
            .fold((0, 0), |(e, i), w| (e + w.0, i + w.1));
        exact as f64 / issued.max(1) as f64
    }
    /// Mean rounds.
    pub fn mean_rounds(&self) -> f64 {
        mean(self.rounds.iter().map(|&r| r as f64))
    }
    /// Mean messages.
    pub fn mean_messages(&self) -> f64 {
        mean(self.messages.iter().map(|&m| m as f64))
    }
}

impl DhtNet {
    /// An empty network. Nodes get `config` with one node per IP relaxed only if asked.
    pub fn new(net: NetConfig, config: Config) -> Self {
        DhtNet {
            sim: Sim::new(net),
            config,
            outcomes: Outcomes::default(),
            rng: Rng::new(net.seed ^ 0xd47),
        }
    }

    /// The harness's own randomness.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Runs a command on node `i`, recording events that come out at once.
    pub fn command<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut SimNode, overlay_core::Instant) -> R,
    ) -> Option<R> {
        let outcomes = &mut self.outcomes;
        self.sim.command(i, &mut |n, _, e| outcomes.record(n, e), f)
    }

    /// Advances virtual time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        let outcomes = &mut self.outcomes;
        self.sim.run_for(d, &mut |n, _, e| outcomes.record(n, e))
    }

    /// Grows the network to `count` nodes, `batch` at a time: each newcomer bootstraps from
    /// a random live node, then the network runs `pause` before the next batch.
    pub fn grow(&mut self, count: usize, batch: usize, pause: Duration) -> Result<(), String> {
        while self.sim.len() < count {
            let mut existing: Vec<usize> = self.sim.live().collect();
            for _ in 0..batch.min(count - self.sim.len()) {
                let (config, seed) = (self.config, self.rng.next_u64());
                let mut id = Id::ZERO;
                self.rng.fill(&mut id.0);
                let i = self.sim.add(|addr| Dht::with_id(config, id, addr, seed));
                if existing.is_empty() {
                    // The first node: the others bootstrap from it.
                    existing.push(i);
                    continue;
                }
                let via = existing[self.rng.below(existing.len() as u64) as usize];
                let contact = crate::net::addr_of(via);
                self.command(i, |n, now| n.bootstrap(now, &[contact]))
                    .expect("live")
                    .map_err(|e| e.to_string())?;
            }
            self.run_for(pause).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A network of `n` nodes grown as every DHT experiment here grows it: 250 bootstraps
    /// every 10 simulated seconds, then one bucket-refresh period (BEP 5: 15 minutes), so
    /// every node has refreshed the buckets that saw no traffic, as in a running network.
    pub fn settled(net: NetConfig, config: Config, n: usize) -> Result<DhtNet, String> {
        let mut dht = DhtNet::new(net, config);
        dht.grow(n, 250, Duration::from_secs(10))?;
        dht.run_for(Duration::from_secs(16 * 60))
            .map_err(|e| e.to_string())?;
        Ok(dht)
    }

    /// `count` lookups in a calm network, 250 per simulated minute.
    pub fn measure_calm(&mut self, count: usize) -> Result<LookupReport, String> {
        self.measure(count, 250, |_| {})
    }

    /// `count` lookups, 100 per simulated minute, while a random `fraction` of the nodes
    /// crashes as the first 100 are issued; the report and how many crashed.
    pub fn measure_crash(
        &mut self,
        count: usize,
        fraction: f64,
    ) -> Result<(LookupReport, usize), String> {
        let mut crashed = 0;
        let report = self.measure(count, 100, |net| crashed = net.crash(fraction))?;
        Ok((report, crashed))
    }

    /// Crashes a random `fraction` of the live nodes; returns how many.
    pub fn crash(&mut self, fraction: f64) -> usize {
        let live: Vec<usize> = self.sim.live().collect();
        let mut n = 0;
        for i in live {
            if self.rng.chance(fraction) {
                self.sim.crash(i);
                n += 1;
            }
        }
        n
    }

    /// The K ids closest to `target` among live nodes other than `origin`, closest first.
    pub fn oracle(&self, target: Id, k: usize, origin: usize) -> Vec<Id> {
        let mut ids: Vec<Id> = self
            .sim
            .live()
            .filter(|&i| i != origin)
            .filter_map(|i| self.sim.node(i).map(|n| n.id()))
            .collect();
        ids.sort_by_key(|id| id.xor(target));
        ids.truncate(k);
        ids
    }

    /// Issues `count` `find_node` lookups for random targets from random live nodes, `wave`
    /// at a time, and compares each result with the oracle *at the time it finished*.
    /// `during` runs between the issue and the results of the first wave (to crash nodes
    /// mid-run).
    pub fn measure(
        &mut self,
        count: usize,
        wave: usize,
        mut during: impl FnMut(&mut DhtNet),
    ) -> Result<LookupReport, String> {
        let mut report = LookupReport::default();
        let k = self.config.k;
        let mut first = true;
        while report.issued < count {
            let live: Vec<usize> = self.sim.live().collect();
            let mut asked = Vec::new();
            for _ in 0..wave.min(count - report.issued) {
                let i = live[self.rng.below(live.len() as u64) as usize];
                let mut target = Id::ZERO;
                self.rng.fill(&mut target.0);
                if let Some(Ok(q)) = self.command(i, |n, now| n.find_node(now, target)) {
                    asked.push((i, q, target));
                    report.issued += 1;
                }
            }
            if first {
                during(self);
                first = false;
            }
            self.run_for(Duration::from_secs(60))
                .map_err(|e| e.to_string())?;
            for (i, q, target) in asked {
                if !self.sim.is_live(i) {
                    // Its origin crashed: not a lookup that could finish.
                    report.issued -= 1;
                    continue;
                }
                match self.outcomes.found.remove(&(i, q)) {
                    Some((ids, stats)) => {
                        report.rounds.push(stats.rounds);
                        report.messages.push(stats.messages);
                        let truth = self.oracle(target, k, i);
                        if ids == truth {
                            report.exact += 1;
                        } else if std::env::var_os("DHT_SIM_DEBUG").is_some() {
                            let missed: Vec<Id> =
                                truth.iter().filter(|t| !ids.contains(t)).copied().collect();
                            for m in &missed {
                                let rank = truth.iter().position(|t| t == m).unwrap();
                                let knowers: Vec<Id> = self
                                    .sim
                                    .live()
                                    .filter_map(|j| self.sim.node(j))
                                    .filter(|n| n.table().iter().any(|x| x.id == *m))
                                    .map(|n| n.id())
                                    .collect();
                                let among = knowers.iter().filter(|k| ids.contains(k)).count();
                                eprintln!(
                                    "inexact: missed rank {rank}, known by {} live nodes, {among} of them in the result",
                                    knowers.len()
                                );
                            }
                        }
                    }
                    None => report.failed += 1,
                }
            }
            let (exact, issued) = report
                .waves
                .iter()
                .fold((0, 0), |(e, i), w| (e + w.0, i + w.1));
            report
                .waves
                .push((report.exact - exact, report.issued - issued));
            report.first_wave = report.waves[0];
        }
        Ok(report)
    }
}
