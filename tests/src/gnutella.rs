//! Gnutella on the simulator: flat networks (every servent an ultrapeer without leaves, a
//! random graph of degree C: the Gnutella 0.4 flood) and two-tier networks (ultrapeers in a
//! random graph, each leaf attached to a few of them and shielded by its QRP table: the 0.6
//! network of gtk-gnutella's `doc/gnutella/ultra-peers`), files placed at random, queries
//! flooded one at a time and measured by summing the servents' own counters.
//!
//! What one query costs and reaches follows from the RFC-Gnutella 0.6 draft, section 2.2.3:
//! a servent forwards a query's first copy (by GUID) to every other connection with one TTL
//! less and drops later copies; a query sent with TTL D so reaches at most
//! `sum_{h=1..D} C (C-1)^(h-1)` other servents in a graph of degree C (C new ones at the
//! first hop, C-1 per servent at every later one), and every copy beyond the first a servent
//! receives is a duplicate, which only a cycle in the graph can produce. [`flood_on_graph`]
//! computes the flood exactly on the simulated graph for a flood whose first copies travel
//! shortest paths; the simulated one can fall short of it where a copy that took more hops
//! arrives first (links have different latencies) and so carries less TTL on.

use crate::net::{NetConfig, Sim, SimError, index_of};
use crate::util::shuffle;
use overlay_core::gnutella::{Config, Event, Library, Role, Servent, SharedFile, Stats};
use overlay_core::{ConnId, Duration, Input, Instant, Machine, Output, QueryId, Rng};
use std::collections::{HashMap, HashSet, VecDeque};

/// Connections of a flat peer or a leaf: its degree (at most 8; a leaf has 3) and room
/// for handshakes under way.
pub const PEER_LINKS: usize = 10;
/// Connections of an ultrapeer: its ultrapeer peers, up to 30 leaves (LimeWire's number),
/// and handshakes under way.
pub const ULTRAPEER_LINKS: usize = 48;
/// Receive buffer per connection. The largest message in these networks is a leaf's QRP
/// PATCH (1,024 bytes of 4-bit entries + 5 + the 23-byte header); queries and hits are a
/// few dozen bytes.
pub const RX: usize = 1280;
/// GUIDs per route-table generation: queries run one at a time, so this only has to hold
/// the queries and hits of the last few.
pub const ROUTES: usize = 128;
/// Outbox per input: the largest burst is a leaf's QRP table (a RESET and 4 PATCHes, 5.3
/// KB) right after its handshake.
pub const OUT: usize = 8192;

/// A flat peer or a leaf.
pub type PeerServent = Servent<SimLibrary, PEER_LINKS, RX, ROUTES, OUT>;
/// An ultrapeer with leaves.
pub type UltrapeerServent = Servent<SimLibrary, ULTRAPEER_LINKS, RX, ROUTES, OUT>;

/// A simulated servent: boxed, and as large as its tier needs (a leaf holds 10 connections,
/// an ultrapeer 48), so that 10^4 of them fit in memory as they would on real hosts.
pub enum SimNode {
    /// A flat peer or a leaf.
    Peer(Box<PeerServent>),
    /// An ultrapeer with leaves.
    Ultrapeer(Box<UltrapeerServent>),
}

macro_rules! servent {
    ($node:expr, $s:ident => $e:expr) => {
        match $node {
            SimNode::Peer($s) => $e,
            SimNode::Ultrapeer($s) => $e,
        }
    };
}

impl SimNode {
    /// The servent's counters.
    pub fn stats(&self) -> Stats {
        servent!(self, s => s.stats())
    }

    /// Its role.
    pub fn role(&self) -> Role {
        servent!(self, s => s.config().role)
    }

    /// Connections up.
    pub fn degree(&self) -> usize {
        servent!(self, s => s.peers().count())
    }

    /// Heap and struct bytes of this servent (the library's file names included).
    pub fn bytes(&self) -> usize {
        let lib = servent!(self, s => s.library().heap_bytes());
        lib + match self {
            SimNode::Peer(_) => std::mem::size_of::<PeerServent>(),
            SimNode::Ultrapeer(_) => std::mem::size_of::<UltrapeerServent>(),
        }
    }

    /// Dials `peer`.
    pub fn connect(
        &mut self,
        now: Instant,
        peer: overlay_core::PeerAddr,
    ) -> Result<ConnId, String> {
        servent!(self, s => s.connect(now, peer).map_err(|e| e.to_string()))
    }

    /// Searches with TTL `ttl` for `criteria`.
    pub fn search(&mut self, now: Instant, ttl: u8, criteria: &[u8]) -> Result<QueryId, String> {
        servent!(self, s => {
            s.set_query_ttl(ttl);
            s.search(now, criteria, None).map_err(|e| e.to_string())
        })
    }
}

impl Machine for SimNode {
    type Event<'a> = Event<'a>;

    fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        servent!(self, s => s.handle_input(now, input))
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, Event<'_>> {
        servent!(self, s => s.poll_output(now))
    }
}

/// The files one simulated servent shares: names only (every file is 4 MiB, no hashes), so
/// queries match by keyword.
#[derive(Clone, Default, Debug)]
pub struct SimLibrary {
    names: Vec<Box<[u8]>>,
}

impl SimLibrary {
    /// Shares a file called `name`.
    pub fn share(&mut self, name: &str) {
        self.names.push(name.as_bytes().into());
    }

    /// Bytes on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.names.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.names.iter().map(|n| n.len()).sum::<usize>()
    }
}

impl Library for SimLibrary {
    fn files(&self) -> impl Iterator<Item = SharedFile<'_>> {
        self.names.iter().enumerate().map(|(i, name)| SharedFile {
            index: i as u32,
            size: 4 << 20,
            name,
            sha1: None,
        })
    }
}

/// Which files a query looks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileClass {
    /// Files held by [`Content::popular`] of the peers.
    Popular,
    /// Files held by [`Content::rare`] of the peers.
    Rare,
}

impl FileClass {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            FileClass::Popular => "popular",
            FileClass::Rare => "rare",
        }
    }
}

/// What the peers share.
#[derive(Clone, Copy, Debug)]
pub struct Content {
    /// Fraction of the peers that hold each popular title.
    pub popular: f64,
    /// Fraction of the peers that hold each rare title.
    pub rare: f64,
    /// Titles of each class; queries take turns among them, each placed independently, so a
    /// measurement does not hang on one placement.
    pub titles: usize,
    /// Other files every peer shares (unique names): they fill the leaves' QRP tables as
    /// real libraries do, so an ultrapeer meets the false positives of QRP's hashing.
    pub filler: usize,
}

impl Default for Content {
    fn default() -> Self {
        Content {
            popular: 0.01,
            rare: 0.001,
            titles: 8,
            filler: 5,
        }
    }
}

impl Content {
    /// Holders of one title of `class` among `n` peers (at least one).
    pub fn holders(&self, class: FileClass, n: usize) -> usize {
        let f = match class {
            FileClass::Popular => self.popular,
            FileClass::Rare => self.rare,
        };
        ((f * n as f64).round() as usize).max(1)
    }
}

/// The search text of title `t` of `class`: one keyword, found in no other file's name.
pub fn keyword(class: FileClass, t: usize) -> String {
    format!("{}{t}", class.name())
}

/// The shape of a two-tier network.
#[derive(Clone, Copy, Debug)]
pub struct TwoTier {
    /// Ultrapeers.
    pub ultrapeers: usize,
    /// Ultrapeer connections each ultrapeer keeps (its degree in the ultrapeer graph).
    pub up_degree: u8,
    /// Leaves.
    pub leaves: usize,
    /// Ultrapeers each leaf attaches to (LimeWire's leaves kept 3).
    pub leaf_ups: u8,
    /// Leaves an ultrapeer accepts (LimeWire's 30).
    pub max_leaves: u8,
}

impl TwoTier {
    /// The scaled-down LimeWire shape for `n` peers: a tenth of them ultrapeers of degree 6,
    /// each leaf on 3 ultrapeers, at most 30 leaves each (27 on average). LimeWire kept 32
    /// ultrapeer connections and reached about 32^3 ultrapeers with TTL 3; a graph of N/10
    /// ultrapeers needs a degree near the flat network's to keep TTLs comparable.
    pub fn scaled(n: usize) -> TwoTier {
        let ultrapeers = (n / 10).max(4);
        TwoTier {
            ultrapeers,
            up_degree: 6,
            leaves: n - ultrapeers,
            leaf_ups: 3,
            max_leaves: 30,
        }
    }
}

/// What one query cost and found, from the counters of every servent.
#[derive(Clone, Copy, Default, Debug)]
pub struct QueryCost {
    /// Query descriptors sent on connections (to leaves included): the origin's and every
    /// forwarded copy.
    pub messages: u64,
    /// Query descriptors received (equal to `messages`: streams lose nothing).
    pub received: u64,
    /// Of `messages`, those sent to leaves.
    pub to_leaves: u64,
    /// Leaves not sent the query because their QRP table rules it out.
    pub filtered: u64,
    /// Servents that processed the query: received minus duplicates, plus the origin.
    pub reached: u64,
    /// Servents whose files were searched: those reached, and the leaves of the ultrapeers
    /// reached (QRP searched their tables).
    pub covered: u64,
    /// Copies dropped as duplicates.
    pub duplicates: u64,
    /// Query hits that came back to the origin.
    pub hits: u64,
    /// Servents holding the file that the query reached.
    pub holders_reached: u64,
    /// Messages servents dropped because their outbox was full or they were too long for a
    /// receive buffer (must be 0).
    pub dropped: u64,
}

/// The mean costs of queries sent with one TTL.
#[derive(Clone, Copy, Default, Debug)]
pub struct TtlPoint {
    /// The TTL.
    pub ttl: u8,
    /// Queries measured.
    pub queries: usize,
    /// Mean query descriptors sent per query.
    pub messages: f64,
    /// Mean of those sent to leaves.
    pub to_leaves: f64,
    /// Mean leaves filtered out by QRP.
    pub filtered: f64,
    /// Mean servents that processed the query (origin included).
    pub reached: f64,
    /// Mean servents whose files were searched.
    pub covered: f64,
    /// Mean duplicate receptions.
    pub duplicates: f64,
    /// Fraction of queries with at least one hit at the origin.
    pub success: f64,
    /// Mean hits per query.
    pub hits: f64,
    /// Queries whose receptions did not add up to what was sent, or that lost messages to
    /// a full outbox or a short receive buffer (must be 0).
    pub unbalanced: usize,
    /// Queries that got fewer hits than they reached holders (every holder answers once
    /// and its hit walks back the query's path: must be 0).
    pub hits_lost: usize,
    /// The flood computed on the graph (flat networks): mean messages.
    pub graph_messages: f64,
    /// The flood computed on the graph: mean servents reached (origin included).
    pub graph_reached: f64,
}

/// A simulated Gnutella network and what the harness knows about it.
pub struct GnutellaNet {
    /// The network and its servents.
    pub sim: Sim<SimNode>,
    seen: Seen,
    rng: Rng,
    /// Who holds each title: `holders[class][t]`.
    holders: [Vec<Vec<u32>>; 2],
    /// The last counters of every servent, for per-query deltas.
    last: Vec<Stats>,
}

/// What the servents reported.
#[derive(Default)]
struct Seen {
    /// Connections up, per servent: (peer, connection).
    adj: Vec<Vec<(u32, ConnId)>>,
    /// Hits per (origin, search).
    hits: HashMap<(u32, QueryId), u64>,
}

impl Seen {
    fn adjacent(&self, i: usize, j: usize) -> bool {
        self.adj[i].iter().any(|&(p, _)| p as usize == j)
    }

    fn record(&mut self, i: usize, e: Event<'_>) {
        match e {
            Event::Connected { conn, peer, .. } => {
                if let Some(j) = index_of(peer) {
                    self.adj[i].push((j as u32, conn));
                }
            }
            Event::Closed { conn, .. } => self.adj[i].retain(|&(_, c)| c != conn),
            Event::Hits { query, .. } => *self.hits.entry((i as u32, query)).or_default() += 1,
            Event::Upload { .. } | Event::Push { .. } => {}
        }
    }
}

/// Virtual time the network may take to fall quiet after one command.
const QUIET_LIMIT: Duration = Duration::from_secs(600);

impl GnutellaNet {
    fn new(net: NetConfig) -> Self {
        GnutellaNet {
            sim: Sim::new(net),
            seen: Seen::default(),
            rng: Rng::new(net.seed ^ 0x6e75),
            holders: [Vec::new(), Vec::new()],
            last: Vec::new(),
        }
    }

    /// A flat network of `n` servents of degree `degree` (see [`GnutellaNet::wire`]).
    pub fn flat(net: NetConfig, n: usize, degree: u8, content: &Content) -> Result<Self, String> {
        let mut g = GnutellaNet::new(net);
        let libraries = g.place(n, content);
        for lib in libraries {
            g.add(Role::Ultrapeer, degree, 0, lib);
        }
        let all: Vec<usize> = (0..n).collect();
        g.wire(&all, degree)?;
        g.last = g.counters();
        Ok(g)
    }

    /// A two-tier network: the ultrapeers (the first `shape.ultrapeers` servents) wired
    /// into a random graph, then every leaf attached to `shape.leaf_ups` of them.
    pub fn two_tier(net: NetConfig, shape: TwoTier, content: &Content) -> Result<Self, String> {
        let mut g = GnutellaNet::new(net);
        let n = shape.ultrapeers + shape.leaves;
        let libraries = g.place(n, content);
        for (i, lib) in libraries.into_iter().enumerate() {
            if i < shape.ultrapeers {
                g.add(Role::Ultrapeer, shape.up_degree, shape.max_leaves, lib);
            } else {
                g.add(Role::Leaf, shape.leaf_ups, 0, lib);
            }
        }
        let ups: Vec<usize> = (0..shape.ultrapeers).collect();
        g.wire(&ups, shape.up_degree)?;
        g.attach(shape)?;
        g.last = g.counters();
        Ok(g)
    }

    fn add(&mut self, role: Role, max_peers: u8, max_leaves: u8, lib: SimLibrary) {
        let seed = self.rng.next_u64();
        self.sim.add(|addr| {
            let mut config = Config::new(role, addr);
            config.max_peers = max_peers;
            config.max_leaves = max_leaves;
            match (role, max_leaves) {
                (Role::Ultrapeer, 1..) => {
                    SimNode::Ultrapeer(Box::new(UltrapeerServent::new(config, lib, seed)))
                }
                _ => SimNode::Peer(Box::new(PeerServent::new(config, lib, seed))),
            }
        });
        self.seen.adj.push(Vec::new());
    }

    /// Libraries for `n` servents: filler for each, and each title of each class at its
    /// fraction of them, chosen at random.
    fn place(&mut self, n: usize, content: &Content) -> Vec<SimLibrary> {
        let mut libs: Vec<SimLibrary> = (0..n)
            .map(|i| {
                let mut lib = SimLibrary::default();
                for f in 0..content.filler {
                    lib.share(&format!("song{i}x{f}.ogg"));
                }
                lib
            })
            .collect();
        for (c, class) in [FileClass::Popular, FileClass::Rare]
            .into_iter()
            .enumerate()
        {
            self.holders[c] = (0..content.titles)
                .map(|t| {
                    let holders = self.sample(n, content.holders(class, n));
                    for &h in &holders {
                        libs[h as usize].share(&format!("{}.mp3", keyword(class, t)));
                    }
                    holders
                })
                .collect();
        }
        libs
    }

    /// `k` distinct indices below `n`, at random.
    fn sample(&mut self, n: usize, k: usize) -> Vec<u32> {
        let mut chosen = HashSet::new();
        while chosen.len() < k.min(n) {
            chosen.insert(self.rng.below(n as u64) as u32);
        }
        let mut v: Vec<u32> = chosen.into_iter().collect();
        v.sort_unstable();
        v
    }

    /// The harness's randomness.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Runs until no event is left (no query, hit or handshake under way).
    pub fn settle(&mut self) -> Result<(), String> {
        let start = self.sim.now();
        let seen = &mut self.seen;
        loop {
            self.sim
                .run_for(Duration::from_millis(250), &mut |i, _, e| seen.record(i, e))
                .map_err(|e: SimError| e.to_string())?;
            if self.sim.queued() == 0 {
                return Ok(());
            }
            if self.sim.now().saturating_since(start) > QUIET_LIMIT {
                return Err("the network never fell quiet".into());
            }
        }
    }

    fn command<R>(&mut self, i: usize, f: impl FnOnce(&mut SimNode, Instant) -> R) -> Option<R> {
        let seen = &mut self.seen;
        self.sim.command(i, &mut |n, _, e| seen.record(n, e), f)
    }

    /// Connects `members` into a random graph of degree `degree`, as servents filling their
    /// connection slots do: in rounds, every member with free slots dials random members
    /// that also have some (a dial to a full servent would be refused with 503, and the
    /// servent's own `max_peers` still enforces the cap), until every member is full or the
    /// only members with free slots are already its neighbours. Same seed, same graph.
    pub fn wire(&mut self, members: &[usize], degree: u8) -> Result<(), String> {
        for _round in 0..64 {
            let mut free: HashMap<usize, usize> = members
                .iter()
                .map(|&i| (i, (degree as usize).saturating_sub(self.ups_of(i))))
                .filter(|&(_, f)| f > 0)
                .collect();
            let mut open: Vec<usize> = free.keys().copied().collect();
            open.sort_unstable();
            shuffle(&mut open, &mut self.rng);
            let mut dialled: HashSet<(usize, usize)> = HashSet::new();
            let mut dials = 0;
            for &i in &open {
                while free[&i] > 0 {
                    let pick = (0..32).find_map(|_| {
                        let j = open[self.rng.below(open.len() as u64) as usize];
                        let ok = j != i
                            && free[&j] > 0
                            && !self.seen.adjacent(i, j)
                            && !dialled.contains(&(i.min(j), i.max(j)));
                        ok.then_some(j)
                    });
                    let Some(j) = pick else { break };
                    *free.get_mut(&i).expect("open") -= 1;
                    *free.get_mut(&j).expect("open") -= 1;
                    dialled.insert((i.min(j), i.max(j)));
                    let to = crate::net::addr_of(j);
                    self.command(i, |n, now| n.connect(now, to))
                        .ok_or("a dialler is not live")??;
                    dials += 1;
                }
            }
            if dials == 0 {
                return Ok(());
            }
            self.settle()?;
        }
        Ok(())
    }

    /// Attaches every leaf to `shape.leaf_ups` ultrapeers with free leaf slots, in rounds.
    fn attach(&mut self, shape: TwoTier) -> Result<(), String> {
        let ups = shape.ultrapeers;
        let n = ups + shape.leaves;
        for _round in 0..64 {
            let mut slots: Vec<usize> = (0..ups)
                .map(|u| (shape.max_leaves as usize).saturating_sub(self.leaves_of(u)))
                .collect();
            let mut open: Vec<usize> = (0..ups).filter(|&u| slots[u] > 0).collect();
            let mut dials = 0;
            for leaf in ups..n {
                let mut want = (shape.leaf_ups as usize).saturating_sub(self.ups_of(leaf));
                let mut chosen = Vec::new();
                while want > 0 && !open.is_empty() {
                    let pick = (0..32).find_map(|_| {
                        let k = self.rng.below(open.len() as u64) as usize;
                        let u = open[k];
                        let ok = !self.seen.adjacent(leaf, u) && !chosen.contains(&u);
                        ok.then_some((k, u))
                    });
                    let Some((k, u)) = pick else { break };
                    chosen.push(u);
                    slots[u] -= 1;
                    if slots[u] == 0 {
                        open.swap_remove(k);
                    }
                    let to = crate::net::addr_of(u);
                    self.command(leaf, |l, now| l.connect(now, to))
                        .ok_or("a leaf is not live")??;
                    want -= 1;
                    dials += 1;
                }
            }
            if dials == 0 {
                return Ok(());
            }
            self.settle()?;
        }
        Ok(())
    }

    fn adjacent(&self, i: usize, j: usize) -> bool {
        self.seen.adjacent(i, j)
    }

    /// Servents of each role.
    fn role(&self, i: usize) -> Role {
        self.sim.node(i).map_or(Role::Leaf, SimNode::role)
    }

    /// Connections of `i` to ultrapeers (for a flat servent: its degree).
    pub fn ups_of(&self, i: usize) -> usize {
        self.seen.adj[i]
            .iter()
            .filter(|&&(p, _)| self.role(p as usize) == Role::Ultrapeer)
            .count()
    }

    /// Leaves attached to `i`.
    pub fn leaves_of(&self, i: usize) -> usize {
        self.seen.adj[i].len() - self.ups_of(i)
    }

    /// The neighbours of `i`, as the harness saw the connections come up.
    pub fn neighbours(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.seen.adj[i].iter().map(|&(p, _)| p as usize)
    }

    /// How many of `members` have each number of ultrapeer connections: `counts[d]`.
    pub fn degree_counts(&self, members: impl IntoIterator<Item = usize>) -> Vec<u64> {
        let mut counts = Vec::new();
        for i in members {
            let d = self.ups_of(i);
            if counts.len() <= d {
                counts.resize(d + 1, 0);
            }
            counts[d] += 1;
        }
        counts
    }

    /// Checks the harness's view against the servents' own: every connection is up at both
    /// ends, none twice.
    pub fn check_graph(&self) -> Result<(), String> {
        for i in self.sim.live() {
            let mine: HashSet<usize> = self.neighbours(i).collect();
            if mine.len() != self.seen.adj[i].len() {
                return Err(format!("servent {i} is connected twice to one peer"));
            }
            let up = self.sim.node(i).map_or(0, SimNode::degree);
            if up != mine.len() {
                return Err(format!(
                    "servent {i} has {up} connections up, the harness saw {}",
                    mine.len()
                ));
            }
            if let Some(j) = mine.iter().find(|&&j| !self.adjacent(j, i)) {
                return Err(format!("{i} - {j} is up at one end only"));
            }
        }
        Ok(())
    }

    /// Mean bytes per servent: the structs (boxed, by tier), their libraries, the
    /// simulator's slot.
    pub fn bytes_per_node(&self) -> f64 {
        let n = self.sim.len().max(1);
        let servents: usize = self
            .sim
            .live()
            .filter_map(|i| self.sim.node(i))
            .map(SimNode::bytes)
            .sum();
        servents as f64 / n as f64 + Sim::<SimNode>::bytes_per_node() as f64
    }

    /// The holders of title `t` of `class`.
    pub fn holders(&self, class: FileClass, t: usize) -> &[u32] {
        &self.holders[class as usize][t]
    }

    /// Titles of each class.
    pub fn titles(&self) -> usize {
        self.holders[0].len()
    }

    fn counters(&self) -> Vec<Stats> {
        (0..self.sim.len())
            .map(|i| self.sim.node(i).map(SimNode::stats).unwrap_or_default())
            .collect()
    }

    /// Sends one query for title `t` of `class` from `origin` with TTL `ttl`, runs the
    /// network until it is quiet, and measures it from every servent's counters.
    pub fn query(
        &mut self,
        origin: usize,
        class: FileClass,
        t: usize,
        ttl: u8,
    ) -> Result<QueryCost, String> {
        let criteria = keyword(class, t);
        let q = self
            .command(origin, |n, now| n.search(now, ttl, criteria.as_bytes()))
            .ok_or("the origin is not live")??;
        self.settle()?;
        let mut cost = QueryCost {
            hits: self.seen.hits.remove(&(origin as u32, q)).unwrap_or(0),
            ..QueryCost::default()
        };
        let mut processed = vec![false; self.sim.len()];
        processed[origin] = true;
        for (i, p) in processed.iter_mut().enumerate() {
            let Some(now) = self.sim.node(i).map(SimNode::stats) else {
                continue;
            };
            let was = std::mem::replace(&mut self.last[i], now);
            let received = now.queries_received - was.queries_received;
            let duplicates = now.duplicates - was.duplicates;
            cost.messages += now.queries_sent - was.queries_sent;
            cost.to_leaves += now.queries_to_leaves - was.queries_to_leaves;
            cost.filtered += now.queries_filtered - was.queries_filtered;
            cost.received += received;
            cost.duplicates += duplicates;
            cost.dropped += now.outbox_full - was.outbox_full + now.oversized - was.oversized;
            *p |= received > duplicates;
        }
        let mut covered = processed.clone();
        for (i, &p) in processed.iter().enumerate() {
            if p && self.role(i) == Role::Ultrapeer {
                for &(j, _) in &self.seen.adj[i] {
                    covered[j as usize] = true;
                }
            }
        }
        cost.reached = processed.iter().filter(|&&p| p).count() as u64;
        cost.covered = covered.iter().filter(|&&c| c).count() as u64;
        cost.holders_reached = self
            .holders(class, t)
            .iter()
            .filter(|&&h| processed[h as usize])
            .count() as u64;
        Ok(cost)
    }

    /// `queries` queries for titles of `class`, each with every TTL in `ttls`: the same
    /// origins (random non-holders among `origins`) and titles for every TTL, so the TTLs
    /// differ only in TTL. Flat networks also get the flood computed on the graph.
    pub fn sweep(
        &mut self,
        class: FileClass,
        ttls: &[u8],
        queries: usize,
        origins: &[usize],
    ) -> Result<Vec<TtlPoint>, String> {
        let titles = self.titles();
        let mut plan = Vec::with_capacity(queries);
        for q in 0..queries {
            let t = q % titles;
            let origin = loop {
                let o = origins[self.rng.below(origins.len() as u64) as usize];
                if !self.holders(class, t).contains(&(o as u32)) {
                    break o;
                }
            };
            plan.push((origin, t));
        }
        let flat = self.role(origins[0]) == Role::Ultrapeer
            && (0..self.sim.len()).all(|i| self.leaves_of(i) == 0);
        let mut points = Vec::new();
        for &ttl in ttls {
            let mut p = TtlPoint {
                ttl,
                queries,
                ..TtlPoint::default()
            };
            for &(origin, t) in &plan {
                let c = self.query(origin, class, t, ttl)?;
                p.messages += c.messages as f64;
                p.to_leaves += c.to_leaves as f64;
                p.filtered += c.filtered as f64;
                p.reached += c.reached as f64;
                p.covered += c.covered as f64;
                p.duplicates += c.duplicates as f64;
                p.hits += c.hits as f64;
                p.success += f64::from(u8::from(c.hits > 0));
                if c.received != c.messages
                    || c.received - c.duplicates + 1 != c.reached
                    || c.dropped > 0
                {
                    p.unbalanced += 1;
                }
                if c.hits < c.holders_reached {
                    p.hits_lost += 1;
                }
                if flat {
                    let (m, r) = flood_on_graph(
                        |i| self.seen.adj[i].len(),
                        |i| self.neighbours(i),
                        origin,
                        ttl,
                    );
                    p.graph_messages += m as f64;
                    p.graph_reached += r as f64;
                }
            }
            let q = queries.max(1) as f64;
            for v in [
                &mut p.messages,
                &mut p.to_leaves,
                &mut p.filtered,
                &mut p.reached,
                &mut p.covered,
                &mut p.duplicates,
                &mut p.hits,
                &mut p.success,
                &mut p.graph_messages,
                &mut p.graph_reached,
            ] {
                *v /= q;
            }
            points.push(p);
        }
        Ok(points)
    }
}

/// A flood from `origin` with TTL `ttl` whose first copies travel shortest paths (breadth
/// first): the servents at distance `d < ttl` forward to every neighbour but the one it came
/// from (the origin to all), those at distance `ttl` receive it and stop. Returns (messages,
/// servents reached, origin included).
pub fn flood_on_graph<I: Iterator<Item = usize>>(
    degree: impl Fn(usize) -> usize,
    neighbours: impl Fn(usize) -> I,
    origin: usize,
    ttl: u8,
) -> (u64, u64) {
    let mut dist: HashMap<usize, u8> = HashMap::from([(origin, 0)]);
    let mut queue = VecDeque::from([origin]);
    let mut messages = 0u64;
    while let Some(v) = queue.pop_front() {
        let d = dist[&v];
        if d >= ttl {
            continue;
        }
        messages += (degree(v) - usize::from(v != origin)) as u64;
        for w in neighbours(v) {
            dist.entry(w).or_insert_with(|| {
                queue.push_back(w);
                d + 1
            });
        }
    }
    (messages, dist.len() as u64)
}

/// The most servents a flood with TTL `ttl` reaches in a graph of degree `c`, the origin
/// included: `1 + sum_{h=1..ttl} c (c-1)^(h-1)` (every servent reached at hop h passes the
/// query to its c-1 other neighbours, all new in a tree), capped at `n`.
pub fn reach_bound(c: u32, ttl: u8, n: usize) -> f64 {
    let c = f64::from(c);
    let new: f64 = (1..=i32::from(ttl))
        .map(|h| c * (c - 1.0).powi(h - 1))
        .sum();
    (1.0 + new).min(n as f64)
}

/// Messages of a flood with TTL `ttl` in a tree of degree `c`: one per servent reached,
/// `sum_{h=1..ttl} c (c-1)^(h-1)` (in a graph with cycles, every duplicate adds one).
pub fn tree_messages(c: u32, ttl: u8) -> f64 {
    reach_bound(c, ttl, usize::MAX) - 1.0
}

/// A flat point and what the two-tier network pays for the same success.
#[derive(Clone, Copy, Debug)]
pub struct Comparison<'a> {
    /// The flat network at one TTL.
    pub flat: &'a TtlPoint,
    /// The cheapest two-tier TTL whose success is at least the flat one's.
    pub single: Option<&'a TtlPoint>,
    /// Exactly the flat success from the two-tier network by sending each query with one of
    /// two TTLs at random (the cheapest such pair): (lower TTL, higher TTL, mean messages).
    /// TTLs are whole numbers, so a single TTL often overshoots the success compared with.
    pub mixed: Option<(u8, u8, f64)>,
}

impl Comparison<'_> {
    /// Flat messages over the single TTL's.
    pub fn ratio(&self) -> Option<f64> {
        self.single
            .map(|t| self.flat.messages / t.messages.max(1.0))
    }

    /// Flat messages over the TTL mixture's.
    pub fn mixed_ratio(&self) -> Option<f64> {
        self.mixed.map(|(_, _, m)| self.flat.messages / m.max(1.0))
    }
}

/// For each TTL of `flat` with success at least `min_success`, what the two-tier network
/// `two` pays for that success.
pub fn equal_success<'a>(
    flat: &'a [TtlPoint],
    two: &'a [TtlPoint],
    min_success: f64,
) -> Vec<Comparison<'a>> {
    flat.iter()
        .filter(|f| f.success >= min_success)
        .map(|f| {
            let s = f.success;
            let single = two
                .iter()
                .filter(|t| t.success >= s)
                .min_by(|a, b| a.messages.total_cmp(&b.messages));
            let mixed = cost_at(two, s);
            Comparison {
                flat: f,
                single,
                mixed,
            }
        })
        .collect()
}

/// The fewest mean messages per query for success `s` from `points` (one network's TTLs):
/// one TTL whose success is at least `s`, or two TTLs mixed at random in the proportion
/// that gives exactly `s`. Returns (lower TTL, higher TTL, messages); `None` if no TTL
/// reaches `s`.
pub fn cost_at(points: &[TtlPoint], s: f64) -> Option<(u8, u8, f64)> {
    let mut best: Option<(u8, u8, f64)> = None;
    let mut offer = |c: (u8, u8, f64)| {
        if best.is_none_or(|b| c.2 < b.2) {
            best = Some(c);
        }
    };
    for b in points.iter().filter(|b| b.success >= s) {
        offer((b.ttl, b.ttl, b.messages));
        for a in points.iter().filter(|a| a.success < s) {
            let w = (s - a.success) / (b.success - a.success);
            offer((a.ttl, b.ttl, a.messages + w * (b.messages - a.messages)));
        }
    }
    best
}

/// One network's measurements: its degree (of the flat graph, or of the ultrapeer graph),
/// then per TTL for the popular and the rare class.
pub struct Sweep {
    /// The degree.
    pub c: u8,
    /// The popular file's points, by TTL.
    pub popular: Vec<TtlPoint>,
    /// The rare file's points, by TTL.
    pub rare: Vec<TtlPoint>,
}

impl Sweep {
    /// The points of `class`.
    pub fn class(&self, class: FileClass) -> &[TtlPoint] {
        match class {
            FileClass::Popular => &self.popular,
            FileClass::Rare => &self.rare,
        }
    }
}

/// The cheapest of several networks' [`cost_at`] for success `s`: (the network's tag, its
/// cost). `networks` pairs a tag (its degree, say) with its points.
pub fn cheapest<'a>(
    networks: impl IntoIterator<Item = (u8, &'a [TtlPoint])>,
    s: f64,
) -> Option<(u8, (u8, u8, f64))> {
    networks
        .into_iter()
        .filter_map(|(tag, pts)| cost_at(pts, s).map(|c| (tag, c)))
        .min_by(|a, b| a.1.2.total_cmp(&b.1.2))
}
