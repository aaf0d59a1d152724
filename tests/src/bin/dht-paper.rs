//! The Mainline DHT reproductions at full scale: prints tables, writes SVG plots.
//!
//! ```text
//! cargo run --release -p overlay-sim --bin dht-paper -- scaling [--sizes 1000,2000,...] [--from 10 --to 17] [--lookups 1000] [--crash 0.25] [--seed 11] [--plot FILE.svg]
//! ```
//!
//! `scaling` builds each network as `tests/tests/dht_sim.rs` does (bootstraps 250 at a time
//! 10 s apart, then one 16-minute bucket-refresh period), measures calm lookups against the
//! oracle, then lookups while a fraction of the network crashes as the first wave is issued.
//! Without `--sizes`, `--from a --to b` takes N = 2^a ..= 2^b (`--from 2^10` also reads);
//! without either, N = 1000, 2000, 5000, 10000, 20000, 50000, 100000.

use overlay_core::dht::Config;
use overlay_sim::dht::{DhtNet, SimNode};
use overlay_sim::opts::Opts;
use overlay_sim::plot::{Band, line_chart};
use overlay_sim::{NetConfig, Sim};
use std::process::ExitCode;
use std::time::Instant as Wall;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("usage: dht-paper scaling [options] (see the file's doc)");
        return ExitCode::from(2);
    };
    let opts = Opts::parse(&args[1..]);
    let result = match cmd.as_str() {
        "scaling" => scaling(&opts),
        other => Err(format!("unknown experiment {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dht-paper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The network sizes to run: `--sizes`, else `--from`/`--to` powers of two, else the
/// default decades.
fn sizes(o: &Opts) -> Vec<usize> {
    if let Some(list) = o.text("sizes") {
        return list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
    }
    if o.flag("from") || o.flag("to") {
        let (from, to) = (o.exponent("from", 10), o.exponent("to", 17));
        return (from..=to).map(|k| 1usize << k).collect();
    }
    vec![1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000]
}

/// The `p`-th percentile (nearest rank) of `values`.
fn percentile<T: Copy + Ord + Into<f64>>(values: &[T], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n => v[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1].into(),
    }
}

/// Kademlia's scaling (Maymounkov and Mazières 2002, section 2.3): rounds and messages per
/// lookup against log2 N, in a calm network and while a fraction of it crashes.
fn scaling(o: &Opts) -> Result<(), String> {
    let sizes = sizes(o);
    let (lookups, fraction, seed) = (
        o.get("lookups", 1000usize),
        o.get("crash", 0.25f64),
        o.get("seed", 11u64),
    );
    let config = Config::default();
    println!(
        "Mainline DHT lookups (K = {}, alpha = {}): {lookups} calm lookups, then {lookups} with {:.0}% of the nodes crashing as the first wave is issued; seed {seed}",
        config.k,
        config.alpha,
        fraction * 100.0
    );
    println!(
        "{:>7} {:>6} {:>6} {:>4} {:>4} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>9} {:>8} {:>6} {:>7} {:>7} {:>8}",
        "N",
        "log2N",
        "rounds",
        "p99",
        "max",
        "msgs",
        "rounds",
        "msgs",
        "exact",
        "exact",
        "exact",
        "exact",
        "crashed",
        "failed",
        "B/node",
        "RSS MiB",
        "wall"
    );
    println!(
        "{:>7} {:>6} {:>6} {:>4} {:>4} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>9} {:>8} {:>6} {:>7} {:>7} {:>8}",
        "",
        "",
        "calm",
        "calm",
        "calm",
        "calm",
        "crash",
        "crash",
        "calm",
        "after",
        ">=3 min",
        "in flight",
        "",
        "crash",
        "",
        "",
        ""
    );
    let per_node = Sim::<SimNode>::bytes_per_node();
    let (mut rounds, mut messages) = (Vec::new(), Vec::new());
    for n in sizes {
        let t = Wall::now();
        let net = NetConfig {
            seed,
            ..NetConfig::default()
        };
        let mut net = DhtNet::settled(net, config, n)?;
        let calm = net.measure_calm(lookups)?;
        let (churn, crashed) = net.measure_crash(lookups, fraction)?;
        let rss = rss_bytes().map_or(0.0, |b| b as f64 / (1 << 20) as f64);
        let (wave_exact, wave_issued) = churn.first_wave;
        println!(
            "{:>7} {:>6.2} {:>6.2} {:>4} {:>4} {:>6.1} {:>6.2} {:>6.1} {:>7.4} {:>7.4} {:>7.4} {:>9} {:>8} {:>6} {:>7} {:>7.0} {:>7.1}s",
            n,
            (n as f64).log2(),
            calm.mean_rounds(),
            percentile(&calm.rounds, 99.0),
            percentile(&calm.rounds, 100.0),
            calm.mean_messages(),
            churn.mean_rounds(),
            churn.mean_messages(),
            calm.exact_fraction(),
            churn.exact_after_first_wave(),
            churn.exact_from_minute(3),
            format!("{wave_exact}/{wave_issued}"),
            crashed,
            churn.failed,
            per_node,
            rss,
            t.elapsed().as_secs_f64()
        );
        let x = (n as f64).log2();
        rounds.push(band_point(x, &calm.rounds));
        messages.push(band_point(x, &calm.messages));
    }
    if let Some(path) = o.text("plot") {
        let log2: &dyn Fn(f64) -> f64 = &|x| x;
        line_chart(
            path.as_ref(),
            "Mainline DHT lookups against network size (calm network)",
            "log2 N",
            "per lookup",
            &[
                Band {
                    label: "mean rounds (1st-99th percentile bars)",
                    points: rounds,
                },
                Band {
                    label: "mean messages (1st-99th percentile bars)",
                    points: messages,
                },
            ],
            &[("log2 N", log2)],
        )
        .map_err(|e| e.to_string())?;
        println!("wrote {path}");
    }
    Ok(())
}

/// (x, mean, 1st percentile, 99th percentile) of one figure of a report's lookups.
fn band_point<T: Copy + Ord + Into<f64>>(x: f64, values: &[T]) -> (f64, f64, f64, f64) {
    let mean = values.iter().map(|&v| v.into()).sum::<f64>() / values.len().max(1) as f64;
    (x, mean, percentile(values, 1.0), percentile(values, 99.0))
}

/// The resident set size of this process (Linux), for a measured memory figure.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
