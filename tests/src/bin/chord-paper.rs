//! The Chord reproductions at full scale: prints tables, writes SVG plots.
//!
//! ```text
//! cargo run --release -p overlay-sim --bin chord-paper -- stoica [--from 6] [--to 16] [--lookups-per-node 4] [--successor-routing] [--plot FILE.svg]
//! cargo run --release -p overlay-sim --bin chord-paper -- convergence [--sizes 16,64,256,1024]
//! cargo run --release -p overlay-sim --bin chord-paper -- failures [--nodes 1024] [--fractions 0.1,0.2,...] [--keys 2000]
//! cargo run --release -p overlay-sim --bin chord-paper -- bench [--nodes 100000] [--seconds 10]
//! cargo run --release -p overlay-sim --bin chord-paper -- sizes
//! ```

use overlay_core::Duration;
use overlay_core::chord::Config;
use overlay_sim::chord::ChordNet;
use overlay_sim::opts::Opts;
use overlay_sim::plot::{Band, line_chart};
use overlay_sim::{NetConfig, Sim};
use std::process::ExitCode;
use std::time::Instant as Wall;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!(
            "usage: chord-paper stoica|convergence|failures|bench|sizes [options] (see the file's doc)"
        );
        return ExitCode::from(2);
    };
    let opts = Opts::parse(&args[1..]);
    let result = match cmd.as_str() {
        "stoica" => stoica(&opts),
        "convergence" => convergence(&opts),
        "failures" => failures(&opts),
        "bench" => bench(&opts),
        "sizes" => {
            sizes();
            Ok(())
        }
        other => Err(format!("unknown experiment {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chord-paper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Stoica et al. 2001, Fig. 10(a): path length against N = 2^k.
fn stoica(o: &Opts) -> Result<(), String> {
    let (from, to) = (o.get("from", 6u32), o.get("to", 16u32));
    let per_node = o.get("lookups-per-node", 4usize);
    let successor_routing = o.flag("successor-routing");
    let config = Config {
        route_through_successor_list: successor_routing,
        ..Config::default()
    };
    println!(
        "Stoica et al. 2001 Fig. 10: lookup path length, routing through {}",
        if successor_routing {
            "fingers + successor list"
        } else {
            "fingers (paper setup)"
        }
    );
    println!(
        "{:>8} {:>8} {:>9} {:>7} {:>5} {:>5} {:>8} {:>11} {:>10}",
        "N", "lookups", "mean", "0.5log2N", "p1", "p99", "wrong", "join rounds", "wall"
    );
    let mut points = Vec::new();
    for k in from..=to {
        let t = Wall::now();
        let mut net: ChordNet<0, 0> = ChordNet::new(
            NetConfig {
                seed: k as u64,
                ..NetConfig::default()
            },
            config,
        );
        net.grow((1 << k) - 1, usize::MAX)?;
        net.run_for(Duration::from_secs(2 * k as u64 + 20))
            .map_err(|e| e.to_string())?;
        let s = net.measure_lookups(per_node << k)?;
        let (p1, p99) = (s.percentile(1.0), s.percentile(99.0));
        // Stabilize rounds of the largest wave of joins (the ring doubled in it).
        let join_rounds = net.wave_rounds.iter().max().copied().unwrap_or(0);
        println!(
            "{:>8} {:>8} {:>9.3} {:>7.1} {:>5} {:>5} {:>8} {:>11} {:>9.1}s",
            1u64 << k,
            s.hops.len(),
            s.mean(),
            0.5 * k as f64,
            p1,
            p99,
            s.wrong + s.failed,
            join_rounds,
            t.elapsed().as_secs_f64()
        );
        points.push((k as f64, s.mean(), p1 as f64, p99 as f64));
    }
    if let Some(path) = o.text("plot") {
        let band = Band {
            label: "mean path length (1st-99th percentile bars)",
            points,
        };
        let half_log: &dyn Fn(f64) -> f64 = &|k| 0.5 * k;
        line_chart(
            path.as_ref(),
            "Chord lookup path length (Stoica et al. 2001, Fig. 10a)",
            "log2 N",
            "hops",
            &[band],
            &[("0.5 log2 N", half_log)],
        )
        .map_err(|e| e.to_string())?;
        println!("wrote {path}");
    }
    Ok(())
}

/// N nodes join through one bootstrap at the same instant (Zave's convergence).
fn convergence(o: &Opts) -> Result<(), String> {
    let sizes: Vec<usize> = o
        .get("sizes", "16,64,256,1024".to_string())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    println!(
        "Concurrent joins through one bootstrap: stabilize rounds until every successor list and predecessor is correct"
    );
    println!("{:>8} {:>8} {:>10}", "N", "rounds", "wall");
    for n in sizes {
        let t = Wall::now();
        let mut net: ChordNet<0, 0> = ChordNet::new(NetConfig::default(), Config::default());
        let rounds = net.join_concurrently(n, Duration::from_secs(20 * n as u64))?;
        println!("{:>8} {:>8} {:>9.1}s", n, rounds, t.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Crash a fraction of a stable ring at once (Stoica Sec. 6.4, with successor lists), for
/// each fraction given.
fn failures(o: &Opts) -> Result<(), String> {
    let (n, keys) = (o.get("nodes", 1024usize), o.get("keys", 2000usize));
    let fractions: Vec<f64> = o
        .get("fractions", "0.1,0.2,0.3,0.4,0.5".to_string())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    println!(
        "Simultaneous failures in a stable {n}-node ring, r = 8 successors, {keys} keys (each on its owner + 8 replicas)"
    );
    println!(
        "{:>9} {:>8} {:>7} {:>9} {:>8} {:>8} {:>10} {:>10} {:>10}",
        "fraction",
        "crashed",
        "rounds",
        "lookups",
        "wrong",
        "failed",
        "mean hops",
        "live copy",
        "retrieved"
    );
    for fraction in fractions {
        let mut net: ChordNet<512, 16> = ChordNet::new(
            NetConfig {
                seed: 20,
                ..NetConfig::default()
            },
            Config::default(),
        );
        let members = net.grow(n - 1, usize::MAX)?;
        net.run_for(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        let stored = net.put_keys(keys)?;
        net.run_for(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let crashed = net.crash_each(&members, fraction);
        let surviving = net.keys_with_live_copy(&stored);
        let rounds = net.stabilize_until_correct(Duration::from_secs(600))?;
        net.run_for(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        let lookups = net.measure_lookups(4 * n)?;
        let got = net.get_keys(&stored)?;
        println!(
            "{:>9.2} {:>8} {:>7} {:>9} {:>8} {:>8} {:>10.3} {:>10} {:>10}",
            fraction,
            crashed,
            rounds,
            4 * n,
            lookups.wrong,
            lookups.failed,
            lookups.mean(),
            format!("{}/{}", surviving.len(), stored.len()),
            format!("{}/{}", got, stored.len())
        );
    }
    Ok(())
}

/// Simulator cost: events per second and bytes per node at a large N.
fn bench(o: &Opts) -> Result<(), String> {
    let (n, seconds) = (o.get("nodes", 100_000usize), o.get("seconds", 10u64));
    let t = Wall::now();
    let mut net: ChordNet<0, 0> = ChordNet::new(NetConfig::default(), Config::default());
    net.grow(n - 1, usize::MAX)?;
    let build = t.elapsed();
    let before = net.sim.stats().events;
    let t = Wall::now();
    net.run_for(Duration::from_secs(seconds))
        .map_err(|e| e.to_string())?;
    let wall = t.elapsed().as_secs_f64();
    let events = net.sim.stats().events - before;
    let per_node = Sim::<overlay_core::chord::Chord<0, 0>>::bytes_per_node();
    let queue = net.sim.queued() * Sim::<overlay_core::chord::Chord<0, 0>>::bytes_per_event();
    println!(
        "Simulator cost at N = {n} Chord nodes (steady-state maintenance, {seconds} s of virtual time)"
    );
    println!(
        "  ring built (joins + stabilization) in {:.1} s wall, {} virtual",
        build.as_secs_f64(),
        net.sim.now()
    );
    println!(
        "  events: {events} in {wall:.2} s = {:.0} events/s",
        events as f64 / wall
    );
    println!(
        "  memory: {per_node} bytes per node slot (machine {} + simulator), event queue {} bytes/node",
        std::mem::size_of::<overlay_core::chord::Chord<0, 0>>(),
        queue / n
    );
    if let Some(rss) = rss_bytes() {
        println!(
            "  process RSS: {:.0} MiB = {} bytes per node",
            rss as f64 / (1 << 20) as f64,
            rss / n as u64
        );
    }
    Ok(())
}

/// The RAM of a Chord node for the store shapes the docs quote (`size_of`, this target).
fn sizes() {
    use overlay_core::chord::{Chord, NodeRef};
    use std::mem::size_of;
    println!("| type | bytes |\n|---|---|");
    println!(
        "| `Chord<0, 0>` (routing only) | {} |",
        size_of::<Chord<0, 0>>()
    );
    println!("| `Chord<64, 32>` | {} |", size_of::<Chord<64, 32>>());
    println!("| `Chord<256, 64>` | {} |", size_of::<Chord<256, 64>>());
    println!(
        "| `Chord<256, 1024>` (the `overlay` command's peers) | {} |",
        size_of::<Chord<256, 1024>>()
    );
    println!(
        "| `NodeRef` (id + compact address) | {} |",
        size_of::<NodeRef>()
    );
}

/// The resident set size of this process (Linux), for a measured memory figure.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
