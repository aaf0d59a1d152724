//! `overlay demo`: a network of real peers on loopback, in this process (each its own
//! socket and task): Chord peers join, store and find keys, a few crash, one leaves
//! gracefully; Mainline DHT nodes look up, announce and store items; Gnutella servents
//! search and download files. Every step is checked against an oracle (the sorted ids of
//! the live peers, the K closest ids, the files that match).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant as Wall};

use clap::Args;
use indicatif::ProgressBar;
use overlay_core::gnutella::library::matches;
use overlay_core::gnutella::{Config as GnutellaConfig, Role, SharedFile};
use overlay_core::{Id, Rng};
use overlay_node::chord::ChordPeer;
use overlay_node::dht::DhtPeer;
use overlay_node::gnutella::{FetchTarget, GnutellaPeer, SharedFolder, fetch};
use overlay_sim::plot::{self, RingNode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::chord::{Maintenance, internal, random_seed};
use super::output::{CliError, Exit, Printer, bind_error};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Peers to start on 127.0.0.1.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(4..=512))]
    peers: u64,
    /// Keys to store.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    keys: u64,
    /// Peers to crash (fewer than --successors, so every key keeps a live replica).
    #[arg(long, default_value_t = 4)]
    kill: u64,
    /// Lookups of random ids per peer.
    #[arg(long, default_value_t = 8)]
    lookups_per_peer: u64,
    /// Milliseconds between stabilize rounds (faster than a deployment's 1000: loopback
    /// answers in microseconds).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..))]
    stabilize_ms: u64,
    /// Successor-list length r.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(2..=16))]
    successors: u8,
    /// Mainline DHT nodes started for the demo's DHT part.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(2..=512))]
    dht_peers: u64,
    /// Gnutella ultrapeers started for the demo's Gnutella part, connected in a ring (at
    /// most 8: a leaf's query, TTL 4, reaches ultrapeers three links away).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=8))]
    gnutella_ultrapeers: u64,
    /// Gnutella leaves, each sharing a few generated files and attached to two ultrapeers.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=64))]
    gnutella_leaves: u64,
    /// Folder for the pictures (hop-count distribution, ring and fingers).
    #[arg(long, default_value = "overlay-demo")]
    out: PathBuf,
    /// Seed of the demo's choices (default: random).
    #[arg(long)]
    seed: Option<u64>,
}

/// The demo's keys and values, shared with the tasks that put and get them.
type Keys = Arc<Vec<(String, String)>>;

/// One phase of the demo: a check (`ok` of `of` right; it passes at `need`) or an action
/// (`ok` things done).
struct Step {
    name: &'static str,
    check: bool,
    ok: usize,
    of: usize,
    need: usize,
    took: Duration,
    note: String,
}

struct Demo {
    peers: Vec<Arc<ChordPeer>>,
    ids: Vec<Id>,
    alive: Vec<bool>,
    rng: Rng,
    out: Printer,
    bar: ProgressBar,
    every: Duration,
}

pub async fn run(args: DemoArgs, out: Printer) -> Result<(), CliError> {
    if args.kill >= args.successors as u64 || args.kill + 2 > args.peers {
        return Err(CliError::new(
            Exit::Usage,
            format!(
                "--kill {} with {} peers and --successors {}",
                args.kill, args.peers, args.successors
            ),
        )
        .hint("kill fewer peers than the successor-list length, and leave at least two alive"));
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    let config = Maintenance {
        stabilize_ms: args.stabilize_ms,
        successors: args.successors,
    }
    .config();
    let started = Wall::now();
    let bar = out.progress(args.peers, "starting peers");
    let mut peers = Vec::new();
    let mut rng = Rng::new(seed);
    for _ in 0..args.peers {
        let bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let peer = ChordPeer::bind(bind, config, rng.next_u64())
            .await
            .map_err(|e| bind_error(bind, e))?;
        peers.push(Arc::new(peer));
        bar.inc(1);
    }
    let ids = peers.iter().map(|p| p.id()).collect();
    let alive = vec![true; peers.len()];
    let every = Duration::from_millis(args.stabilize_ms);
    let mut demo = Demo {
        peers,
        ids,
        alive,
        rng,
        out,
        bar,
        every,
    };
    out.emit(
        format!(
            "overlay demo: {} Chord peers on 127.0.0.1 (real UDP sockets), stabilize every {} ms, r = {}, seed {seed}",
            args.peers, args.stabilize_ms, args.successors
        ),
        json!({"event": "demo", "peers": args.peers, "seed": seed, "stabilize_ms": args.stabilize_ms}),
    );
    let mut steps = vec![demo.join_all().await?];
    // Let finger fixing finish a full pass before measuring path lengths.
    tokio::time::sleep(demo.every * 20).await;
    let keys: Keys = Arc::new(
        (0..args.keys)
            .map(|k| (format!("key-{k}"), format!("value-{k}")))
            .collect(),
    );
    steps.push(demo.put_all(&keys).await?);
    let (lookups, hops) = demo.lookups(args.lookups_per_peer).await?;
    steps.push(lookups);
    steps.push(demo.get_all("get every key", &keys).await?);
    demo.draw_hops(&args.out, &hops)?;
    steps.push(demo.kill(args.kill as usize, &keys).await?);
    steps.push(demo.get_all("get every key right after it", &keys).await?);
    steps.push(demo.await_ring("ring repaired").await?);
    demo.draw_ring(&args.out).await?;
    steps.push(demo.leave_one().await?);
    steps.push(demo.get_all("get every key after the leave", &keys).await?);
    for p in &demo.peers {
        p.kill();
    }
    steps.extend(dht_part(args.dht_peers as usize, &mut demo).await?);
    let sizes = (
        args.gnutella_ultrapeers as usize,
        args.gnutella_leaves as usize,
    );
    steps.extend(gnutella_part(sizes, &mut demo).await?);
    demo.bar.finish_and_clear();
    let passed = steps.iter().all(|s| !s.check || s.ok >= s.need);
    summary(
        out,
        &steps,
        &hops,
        demo.peers.len(),
        started.elapsed(),
        &args.out,
    );
    if !passed {
        return Err(CliError::new(
            Exit::Internal,
            "some demo checks failed (see the summary)",
        ));
    }
    Ok(())
}

impl Demo {
    fn live(&self) -> Vec<usize> {
        (0..self.peers.len()).filter(|&i| self.alive[i]).collect()
    }

    /// Live peers sorted by id: the oracle's ring.
    fn ring(&self, members: &[usize]) -> Vec<(Id, usize)> {
        let mut ring: Vec<_> = members.iter().map(|&i| (self.ids[i], i)).collect();
        ring.sort_unstable();
        ring
    }

    fn owner(&self, key: Id) -> usize {
        let ring = self.ring(&self.live());
        let at = ring.partition_point(|(id, _)| *id < key);
        ring[at % ring.len()].1
    }

    fn report(&self, step: &Step) {
        self.bar.suspend(|| {
            self.out.emit(
                format!(
                    "  {:<34} {:>5}/{:<5} {:>6.2} s  {}",
                    step.name,
                    step.ok,
                    step.of,
                    step.took.as_secs_f64(),
                    step.note
                )
                .trim_end(),
                json!({"event": "step", "step": step.name, "ok": step.ok, "of": step.of,
                       "seconds": step.took.as_secs_f64(), "note": step.note}),
            )
        });
    }

    /// The first peer starts the ring; the rest join in waves that at most double it,
    /// each through a random member, each wave waiting for a correct ring.
    async fn join_all(&mut self) -> Result<Step, CliError> {
        let t = Wall::now();
        self.peers[0].create().await.map_err(internal)?;
        let mut members = vec![0];
        reset(&self.bar, self.peers.len() as u64, "joining");
        self.bar.inc(1);
        let mut joined = 1;
        while members.len() < self.peers.len() {
            let wave: Vec<usize> =
                (members.len()..self.peers.len().min(2 * members.len())).collect();
            let mut tasks = JoinSet::new();
            for &i in &wave {
                let via = self.peers[members[self.rng.below(members.len() as u64) as usize]].addr();
                let peer = self.peers[i].clone();
                tasks.spawn(async move { (i, peer.join(via).await) });
            }
            while let Some(r) = tasks.join_next().await {
                let (i, result) = r.expect("a join task panicked");
                if let Err(e) = result {
                    let addr = self.peers[i].addr();
                    return Err(CliError::new(
                        Exit::Internal,
                        format!("peer {addr} could not join: {e}"),
                    ));
                }
                joined += 1;
                self.bar.inc(1);
            }
            members.extend(wave);
            self.wait_for_ring(&members, Duration::from_secs(20))
                .await?;
        }
        let step = Step {
            name: "join",
            check: true,
            ok: joined,
            of: self.peers.len(),
            need: self.peers.len(),
            took: t.elapsed(),
            note: "successors and predecessors all correct".into(),
        };
        self.report(&step);
        Ok(step)
    }

    /// Polls the peers until every successor and predecessor agrees with the oracle;
    /// how many polls (one per stabilize interval) that took.
    async fn wait_for_ring(&self, members: &[usize], limit: Duration) -> Result<u32, CliError> {
        let ring = self.ring(members);
        let t = Wall::now();
        let mut rounds = 0;
        loop {
            let mut wrong = 0;
            for (k, &(_, i)) in ring.iter().enumerate() {
                let s = self.peers[i].snapshot().await.map_err(internal)?;
                let next = ring[(k + 1) % ring.len()].0;
                let prev = ring[(k + ring.len() - 1) % ring.len()].0;
                if s.successors.first().map(|n| n.id) != Some(next)
                    || s.predecessor.map(|n| n.id) != Some(prev)
                {
                    wrong += 1;
                }
            }
            if wrong == 0 {
                return Ok(rounds);
            }
            if t.elapsed() > limit {
                return Err(CliError::new(
                    Exit::Internal,
                    format!("the ring was still wrong at {wrong} peers after {limit:?}"),
                ));
            }
            tokio::time::sleep(self.every).await;
            rounds += 1;
        }
    }

    async fn await_ring(&mut self, name: &'static str) -> Result<Step, CliError> {
        let t = Wall::now();
        let live = self.live();
        let rounds = self.wait_for_ring(&live, Duration::from_secs(30)).await?;
        let step = Step {
            name,
            check: true,
            ok: live.len(),
            of: live.len(),
            need: live.len(),
            took: t.elapsed(),
            note: format!(
                "successors and predecessors correct again ({rounds} more poll{})",
                if rounds == 1 { "" } else { "s" }
            ),
        };
        self.report(&step);
        Ok(step)
    }

    /// Runs one operation per live peer at a time (a peer runs a few at once at most);
    /// results in order.
    async fn spread<T, F, Fut>(&mut self, count: usize, what: &str, op: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(Arc<ChordPeer>, usize) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let live = self.live();
        let offset = self.rng.below(live.len() as u64) as usize;
        reset(&self.bar, count as u64, what);
        let mut results = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(live.len()) {
            let mut tasks = JoinSet::new();
            for &k in chunk {
                let peer = self.peers[live[(k + offset) % live.len()]].clone();
                let fut = op(peer, k);
                tasks.spawn(async move { (k, fut.await) });
            }
            let mut done: Vec<(usize, T)> = Vec::new();
            while let Some(r) = tasks.join_next().await {
                done.push(r.expect("a demo task panicked"));
                self.bar.inc(1);
            }
            done.sort_by_key(|(k, _)| *k);
            results.extend(done.into_iter().map(|(_, r)| r));
        }
        results
    }

    async fn put_all(&mut self, keys: &Keys) -> Result<Step, CliError> {
        let t = Wall::now();
        let shared = Arc::clone(keys);
        let results = self
            .spread(keys.len(), "put", move |peer, k| {
                let keys = Arc::clone(&shared);
                async move {
                    let (key, value) = &keys[k];
                    peer.put(key.as_bytes(), value.as_bytes())
                        .await
                        .map(|(owner, _)| owner.id)
                }
            })
            .await;
        // Right owner: the oracle's successor of the key.
        let ok = keys
            .iter()
            .zip(&results)
            .filter(|((key, _), r)| {
                r.as_ref().ok() == Some(&self.ids[self.owner(Id::sha256(key.as_bytes()))])
            })
            .count();
        let step = Step {
            name: "put (stored at the right owner)",
            check: true,
            ok,
            of: keys.len(),
            need: keys.len(),
            took: t.elapsed(),
            note: String::new(),
        };
        self.report(&step);
        Ok(step)
    }

    async fn lookups(&mut self, per_peer: u64) -> Result<(Step, Vec<u8>), CliError> {
        let t = Wall::now();
        let count = self.live().len() * per_peer as usize;
        let keys: Arc<Vec<Id>> = Arc::new((0..count).map(|_| random_id(&mut self.rng)).collect());
        let asked = keys.clone();
        let results = self
            .spread(count, "lookup", move |peer, k| {
                let key = asked[k];
                async move { peer.lookup(key).await }
            })
            .await;
        let mut hops = Vec::new();
        let mut ok = 0;
        for (key, r) in keys.iter().zip(results) {
            if let Ok((owner, h)) = r {
                hops.push(h);
                if owner.id == self.ids[self.owner(*key)] {
                    ok += 1;
                }
            }
        }
        let mean = hops.iter().map(|&h| h as f64).sum::<f64>() / hops.len().max(1) as f64;
        let step = Step {
            name: "lookup (owner matches the oracle)",
            check: true,
            ok,
            of: count,
            need: count,
            took: t.elapsed(),
            note: format!(
                "mean path {mean:.2} nodes; ½ log2 N = {:.2}",
                0.5 * (self.live().len() as f64).log2()
            ),
        };
        self.report(&step);
        Ok((step, hops))
    }

    async fn get_all(&mut self, name: &'static str, keys: &Keys) -> Result<Step, CliError> {
        let t = Wall::now();
        let shared = Arc::clone(keys);
        let results = self
            .spread(keys.len(), "get", move |peer, k| {
                let keys = Arc::clone(&shared);
                async move {
                    let (key, value) = &keys[k];
                    match peer.get(key.as_bytes()).await {
                        Ok((Some(v), _)) if v == value.as_bytes() => Ok(()),
                        Ok((Some(_), _)) => Err("a wrong value".to_string()),
                        Ok((None, _)) => Err("not found".to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
            })
            .await;
        let mut failures: Vec<String> = results.iter().filter_map(|r| r.clone().err()).collect();
        failures.sort();
        failures.dedup();
        let step = Step {
            name,
            check: true,
            ok: results.iter().filter(|r| r.is_ok()).count(),
            of: keys.len(),
            need: keys.len(),
            took: t.elapsed(),
            note: failures.join("; "),
        };
        self.report(&step);
        Ok(step)
    }

    /// Crashes `count` peers at once, the owner of the first key among them.
    async fn kill(&mut self, count: usize, keys: &[(String, String)]) -> Result<Step, CliError> {
        let t = Wall::now();
        let mut doomed = Vec::new();
        if count > 0 {
            doomed.push(self.owner(Id::sha256(keys[0].0.as_bytes())));
        }
        while doomed.len() < count {
            let live = self.live();
            let i = live[self.rng.below(live.len() as u64) as usize];
            if !doomed.contains(&i) {
                doomed.push(i);
            }
        }
        for &i in &doomed {
            self.peers[i].kill();
            self.alive[i] = false;
        }
        let names: Vec<String> = doomed
            .iter()
            .map(|&i| self.peers[i].addr().to_string())
            .collect();
        let step = Step {
            name: "crash (no goodbye)",
            check: false,
            ok: count,
            of: count,
            need: count,
            took: t.elapsed(),
            note: match names.is_empty() {
                true => "none (--kill 0)".to_string(),
                false => format!("killed {} (the owner of key-0 first)", names.join(", ")),
            },
        };
        self.report(&step);
        Ok(step)
    }

    /// One peer leaves as `overlay chord join` does on Ctrl-C: its keys go to its successor.
    async fn leave_one(&mut self) -> Result<Step, CliError> {
        let t = Wall::now();
        let live = self.live();
        let i = live[self.rng.below(live.len() as u64) as usize];
        self.alive[i] = false;
        let handed = self.peers[i].leave().await.map_err(internal)?;
        let step = Step {
            name: "graceful leave",
            check: false,
            ok: 1,
            of: 1,
            need: 1,
            took: t.elapsed(),
            note: format!(
                "{} handed {handed} keys to its successor",
                self.peers[i].addr()
            ),
        };
        self.report(&step);
        Ok(step)
    }

    fn draw_hops(&self, dir: &std::path::Path, hops: &[u8]) -> Result<(), CliError> {
        let fail = |e: Box<dyn std::error::Error>| {
            CliError::new(
                Exit::Internal,
                format!("cannot write pictures into {}: {e}", dir.display()),
            )
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.into()))?;
        let counts = plot::counts(hops.iter().map(|&h| h as usize));
        let n = self.live().len();
        plot::histogram(
            &dir.join("hops.svg"),
            &format!("Chord lookup path length, {n} real peers on loopback"),
            "nodes queried per lookup",
            &counts,
            Some(("½ log2 N", 0.5 * (n as f64).log2())),
        )
        .map_err(fail)?;
        Ok(())
    }

    async fn draw_ring(&self, dir: &std::path::Path) -> Result<(), CliError> {
        let nodes: Vec<RingNode> = self
            .ids
            .iter()
            .zip(&self.alive)
            .map(|(id, &alive)| RingNode {
                at: id.as_fraction(),
                alive,
            })
            .collect();
        let focus = self.live()[0];
        let s = self.peers[focus].snapshot().await.map_err(internal)?;
        let fingers: Vec<f64> = s.fingers.iter().map(|n| n.id.as_fraction()).collect();
        plot::ring(
            &dir.join("ring.svg"),
            "Chord ring on loopback: peers, one peer's fingers, crashed peers hollow",
            &nodes,
            (s.node.id.as_fraction(), &fingers),
        )
        .map_err(|e| {
            CliError::new(
                Exit::Internal,
                format!("cannot write {}: {e}", dir.display()),
            )
        })
    }
}

/// The DHT part: `count` Mainline DHT nodes bootstrap through the first; lookups are
/// checked against the oracle (the K closest ids among the other nodes), and announces and
/// BEP 44 items put at one node are read at another.
async fn dht_part(count: usize, demo: &mut Demo) -> Result<Vec<Step>, CliError> {
    let config = super::dht::config_for(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let k = config.k;
    let mut nodes = Vec::new();
    let started = Wall::now();
    reset(&demo.bar, count as u64, "starting DHT nodes");
    for _ in 0..count {
        let bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let node = DhtPeer::bind(bind, config, demo.rng.next_u64())
            .await
            .map_err(|e| bind_error(bind, e))?;
        if let Some(first) = nodes.first().map(|n: &DhtPeer| n.addr()) {
            node.bootstrap(&[first]).await.map_err(internal)?;
        }
        nodes.push(node);
        demo.bar.inc(1);
    }
    // A second self-lookup each, as a node's periodic refresh would do: the nodes that
    // joined early meet the ones that joined after them.
    for node in &nodes {
        node.find_node(node.id()).await.map_err(internal)?;
    }
    let mut steps = vec![Step {
        name: "DHT nodes bootstrapped",
        check: false,
        ok: count,
        of: count,
        need: count,
        took: started.elapsed(),
        note: String::new(),
    }];
    demo.report(&steps[0]);

    let started = Wall::now();
    let (mut exact, mut rounds) = (0, Vec::new());
    for node in nodes.iter().cycle().take(4 * count) {
        let target = random_id(&mut demo.rng);
        let (found, stats) = node.find_node(target).await.map_err(internal)?;
        let mut truth: Vec<Id> = nodes
            .iter()
            .filter(|n| n.id() != node.id())
            .map(|n| n.id())
            .collect();
        truth.sort_by_key(|id| id.xor(target));
        truth.truncate(k);
        let got: Vec<Id> = found.iter().map(|(id, _)| *id).collect();
        exact += usize::from(got == truth);
        rounds.push(stats.rounds);
    }
    let mean = rounds.iter().map(|&r| r as f64).sum::<f64>() / rounds.len().max(1) as f64;
    steps.push(Step {
        name: "DHT lookup (K closest = oracle)",
        check: true,
        ok: exact,
        of: rounds.len(),
        // Kademlia's answer is exact only with high probability: in a network this small a
        // full far bucket can hide a node from every answer (2 lookups in about 1 400 in our
        // runs of this demo).
        need: rounds.len() * 95 / 100,
        took: started.elapsed(),
        note: format!("mean {mean:.1} rounds"),
    });
    demo.report(steps.last().unwrap());

    let started = Wall::now();
    let mut found = 0;
    let tries = 8.min(count);
    for t in 0..tries {
        let info_hash = random_id(&mut demo.rng);
        let port = 6000 + t as u16;
        nodes[t]
            .announce(info_hash, Some(port))
            .await
            .map_err(internal)?;
        let asker = &nodes[(t + count / 2) % count];
        let (peers, _) = asker.get_peers(info_hash).await.map_err(internal)?;
        found += usize::from(peers.iter().any(|p| p.port() == port));
    }
    steps.push(Step {
        name: "DHT announce, get_peers elsewhere",
        check: true,
        ok: found,
        of: tries,
        need: tries,
        took: started.elapsed(),
        note: String::new(),
    });
    demo.report(steps.last().unwrap());

    let started = Wall::now();
    let mut read = 0;
    for t in 0..tries {
        let mut buf = [0; overlay_core::dht::config::MAX_ITEM];
        let item = overlay_core::dht::string_item(format!("item-{t}").as_bytes(), &mut buf)
            .map_err(internal)?;
        let (target, _, _) = nodes[t].put(item).await.map_err(internal)?;
        let (value, _) = nodes[(t + count / 2) % count]
            .get(target)
            .await
            .map_err(internal)?;
        read += usize::from(value.as_deref() == Some(item));
    }
    steps.push(Step {
        name: "BEP 44 put, get elsewhere",
        check: true,
        ok: read,
        of: tries,
        need: tries,
        took: started.elapsed(),
        note: String::new(),
    });
    demo.report(steps.last().unwrap());
    for node in &nodes {
        node.kill();
    }
    Ok(steps)
}

/// Words of the generated file names: few enough that queries match several files, many
/// enough that QRP keeps most leaves out of each query.
const WORDS: [&str; 16] = [
    "free", "software", "song", "gnutella", "manual", "jazz", "live", "remix", "lecture",
    "podcast", "sunrise", "ocean", "piano", "guitar", "drums", "demo",
];
/// Files shared by each leaf.
const FILES_PER_LEAF: usize = 3;
/// Searches made, from leaves in turn.
const SEARCHES: usize = 8;
/// Downloads made from the hits.
const FETCHES: usize = 4;

/// A folder removed when dropped, error or not.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One generated shared file: where it is shared from, its index there, its bytes.
struct Shared {
    node: usize,
    index: u32,
    name: String,
    bytes: Vec<u8>,
}

/// The Gnutella part: `ups` ultrapeers in a ring, `leaves` leaves (each sharing a few small
/// generated files, attached to two ultrapeers). Searches from leaves are checked against
/// the oracle (every file elsewhere whose name has all the keywords): the ultrapeers flood
/// them among themselves and pass them only to the leaves whose QRP tables may match. Some
/// hits are downloaded by SHA-1 and compared with the files.
async fn gnutella_part(
    (ups, leaves): (usize, usize),
    demo: &mut Demo,
) -> Result<Vec<Step>, CliError> {
    let started = Wall::now();
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "overlay-demo-gnutella-{}-{}",
        std::process::id(),
        demo.rng.next_u64()
    )));
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        CliError::new(Exit::Internal, format!("gnutella demo: {what}: {e}"))
    };
    // The leaves' files, written to a folder each, then scanned as `--share` would.
    let mut shared: Vec<Shared> = Vec::new();
    let mut folders = Vec::new();
    for leaf in 0..leaves {
        let dir = scratch.0.join(format!("leaf-{leaf}"));
        std::fs::create_dir_all(&dir).map_err(|e| fail("cannot create a folder", &e))?;
        for _ in 0..FILES_PER_LEAF {
            let mut words: Vec<&str> = Vec::new();
            while words.len() < 3 {
                let w = WORDS[demo.rng.below(WORDS.len() as u64) as usize];
                if !words.contains(&w) {
                    words.push(w);
                }
            }
            let name = format!("{}.ogg", words.join(" "));
            let mut bytes = vec![0u8; 4096 + demo.rng.below(60 * 1024) as usize];
            demo.rng.fill(&mut bytes);
            std::fs::write(dir.join(&name), &bytes).map_err(|e| fail("cannot write a file", &e))?;
        }
        let scan = dir.clone();
        let folder = tokio::task::spawn_blocking(move || SharedFolder::scan(&scan, false))
            .await
            .map_err(internal)?
            .map_err(|e| fail("cannot scan a folder", &e))?;
        for f in folder.entries() {
            let bytes = std::fs::read(&f.path).map_err(|e| fail("cannot read a file", &e))?;
            shared.push(Shared {
                node: ups + leaf,
                index: f.index,
                name: f.name.clone(),
                bytes,
            });
        }
        folders.push(folder);
    }
    reset(&demo.bar, (ups + leaves) as u64, "starting servents");
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut nodes: Vec<GnutellaPeer> = Vec::new();
    for _ in 0..ups {
        let mut config = GnutellaConfig::new(Role::Ultrapeer, local.into());
        // Room for every leaf, whatever --gnutella-leaves says.
        config.max_leaves = 64;
        let peer = GnutellaPeer::spawn(config, SharedFolder::new(), demo.rng.next_u64(), local)
            .await
            .map_err(|e| bind_error(local, e))?;
        nodes.push(peer);
        demo.bar.inc(1);
    }
    for folder in folders {
        let config = GnutellaConfig::new(Role::Leaf, local.into());
        let peer = GnutellaPeer::spawn(config, folder, demo.rng.next_u64(), local)
            .await
            .map_err(|e| bind_error(local, e))?;
        nodes.push(peer);
        demo.bar.inc(1);
    }
    // The ultrapeers' ring (one link if there are two), then each leaf to two of them.
    let mut links: Vec<(usize, usize)> = match ups {
        1 => vec![],
        2 => vec![(0, 1)],
        n => (0..n).map(|i| (i, (i + 1) % n)).collect(),
    };
    for leaf in 0..leaves {
        links.push((ups + leaf, leaf % ups));
        if ups > 1 {
            links.push((ups + leaf, (leaf + 1) % ups));
        }
    }
    let mut up = 0;
    for &(from, to) in &links {
        up += usize::from(nodes[from].connect(nodes[to].addr()).await.is_ok());
    }
    let mut steps = vec![Step {
        name: "Gnutella servents connected",
        check: true,
        ok: up,
        of: links.len(),
        need: links.len(),
        took: started.elapsed(),
        note: format!(
            "{}, {leaves} leaves on {}, {} files shared",
            match ups {
                1 => "1 ultrapeer".to_string(),
                2 => "2 ultrapeers linked".to_string(),
                n => format!("{n} ultrapeers in a ring"),
            },
            if ups == 1 { "it" } else { "two each" },
            shared.len()
        ),
    }];
    demo.report(&steps[0]);

    // Searches from leaves in turn, for words of a file elsewhere.
    let started = Wall::now();
    reset(&demo.bar, SEARCHES as u64, "searching");
    let (mut exact, mut found, mut hops) = (0, Vec::new(), Vec::new());
    for s in 0..SEARCHES {
        let asker = ups + s % leaves;
        let others: Vec<&Shared> = shared.iter().filter(|f| f.node != asker).collect();
        let pick = others[demo.rng.below(others.len() as u64) as usize];
        let words: Vec<&str> = pick.name.trim_end_matches(".ogg").split(' ').collect();
        let take = 1 + demo.rng.below(2) as usize;
        let criteria = words[..take].join(" ");
        let mut truth: Vec<(SocketAddr, u32)> = shared
            .iter()
            .filter(|f| f.node != asker)
            .filter(|f| {
                let file = SharedFile {
                    index: f.index,
                    size: f.bytes.len() as u64,
                    name: f.name.as_bytes(),
                    sha1: None,
                };
                matches(criteria.as_bytes(), &[], &file)
            })
            .map(|f| (nodes[f.node].addr(), f.index))
            .collect();
        truth.sort_unstable();
        let mut search = nodes[asker]
            .start_search(&criteria, None)
            .await
            .map_err(internal)?;
        // Until the hits are the oracle's, or 2 s pass.
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut got: Vec<(SocketAddr, u32)> = Vec::new();
        while got != truth {
            let Some(hit) = search.next_before(until).await else {
                break;
            };
            hops.push(hit.hops);
            got.push((hit.addr, hit.index));
            got.sort_unstable();
            found.push(hit);
        }
        exact += usize::from(got == truth);
        demo.bar.inc(1);
    }
    let mut stats = Vec::new();
    for n in &nodes {
        stats.push(n.stats().await.map_err(internal)?);
    }
    let to_leaves: u64 = stats[..ups].iter().map(|s| s.queries_to_leaves).sum();
    let filtered: u64 = stats[..ups].iter().map(|s| s.queries_filtered).sum();
    let sent: u64 = stats.iter().map(|s| s.queries_sent).sum();
    let (lo, hi) = (hops.iter().min().copied(), hops.iter().max().copied());
    steps.push(Step {
        name: "Gnutella search (hits = oracle)",
        check: true,
        ok: exact,
        of: SEARCHES,
        need: SEARCHES,
        took: started.elapsed(),
        note: format!(
            "{} hits, hops {}-{}",
            found.len(),
            lo.unwrap_or(0),
            hi.unwrap_or(0)
        ),
    });
    demo.report(steps.last().unwrap());
    steps.push(Step {
        name: "Gnutella leaf copies QRP withheld",
        check: false,
        ok: filtered as usize,
        of: (to_leaves + filtered) as usize,
        need: 0,
        took: Duration::ZERO,
        note: format!(
            "leaf deliveries withheld by QRP tables; {to_leaves} passed on, {sent} query messages sent in all"
        ),
    });
    demo.report(steps.last().unwrap());

    // Downloads by SHA-1 from the hits, checked byte for byte.
    let started = Wall::now();
    let mut same = 0;
    let tries = FETCHES.min(found.len());
    for (t, hit) in found.iter().take(tries).enumerate() {
        let (Some(sha1), Some(file)) = (
            hit.sha1,
            shared
                .iter()
                .find(|f| nodes[f.node].addr() == hit.addr && f.index == hit.index),
        ) else {
            continue;
        };
        let path = scratch.0.join(format!("download-{t}"));
        let done = fetch(
            hit.addr,
            &FetchTarget::Sha1(sha1),
            &path,
            Duration::from_secs(5),
        )
        .await;
        if done.is_ok_and(|d| d.verified) && std::fs::read(&path).ok().as_ref() == Some(&file.bytes)
        {
            same += 1;
        }
    }
    steps.push(Step {
        name: "Gnutella fetch (SHA-1 verified)",
        check: true,
        ok: same,
        of: tries,
        need: tries,
        took: started.elapsed(),
        note: String::new(),
    });
    demo.report(steps.last().unwrap());
    for n in &nodes {
        n.kill();
    }
    Ok(steps)
}

fn summary(
    out: Printer,
    steps: &[Step],
    hops: &[u8],
    peers: usize,
    took: Duration,
    dir: &std::path::Path,
) {
    let checks: Vec<&Step> = steps.iter().filter(|s| s.check).collect();
    let passed = checks.iter().filter(|s| s.ok >= s.need).count();
    let human = format!(
        "{} in {:.1} s: {passed}/{} checks passed. Pictures: {}/hops.svg, {}/ring.svg",
        if passed == checks.len() {
            "done"
        } else {
            "FAILED"
        },
        took.as_secs_f64(),
        checks.len(),
        dir.display(),
        dir.display(),
    );
    let steps_json: Vec<Value> = steps
        .iter()
        .map(|s| json!({"step": s.name, "check": s.check, "ok": s.ok, "of": s.of, "seconds": s.took.as_secs_f64()}))
        .collect();
    out.emit(
        human,
        json!({"event": "summary", "passed": passed == checks.len(), "peers": peers,
               "seconds": took.as_secs_f64(), "steps": steps_json, "hops": hops.len()}),
    );
}

fn reset(bar: &ProgressBar, len: u64, what: &str) {
    bar.set_length(len);
    bar.set_position(0);
    bar.set_message(what.to_string());
}

fn random_id(rng: &mut Rng) -> Id {
    let mut id = [0u8; 20];
    rng.fill(&mut id);
    Id(id)
}
