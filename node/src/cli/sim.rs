//! `overlay sim chord|dht|gnutella`: a network of N nodes in the deterministic simulator.
//! Chord and the DHT: M lookups checked against the oracle, the table of what they cost and
//! its distribution. Gnutella: a flat and a two-tier network flooded with queries at every
//! TTL, what a query costs and finds, and the two compared at equal success.

use std::path::PathBuf;
use std::time::Instant as Wall;

use clap::{Args, Subcommand};
use overlay_core::chord::Config;
use overlay_sim::NetConfig;
use overlay_sim::chord::ChordNet;
use serde_json::json;

use super::output::{CliError, Exit, Printer};

#[derive(Subcommand, Debug)]
pub enum SimCmd {
    /// Grow a Chord ring of --nodes in simulated time and measure --lookups lookups
    /// (Stoica et al. 2001, Fig. 10: mean path length about 1/2 log2 N).
    Chord(SimChord),
    /// Grow a Mainline DHT of --nodes, measure --lookups find_node lookups against the
    /// oracle (the K closest live nodes), then again while --crash of the nodes crash.
    Dht(SimDht),
    /// Build a flat Gnutella network of --nodes servents (a random graph of degree
    /// --degree, no leaves: Gnutella 0.4) and a two-tier one (a tenth of them ultrapeers of
    /// degree --up-degree, the others leaves on 3 ultrapeers each, shielded by QRP), send
    /// --queries queries per TTL 1..7 for files held by 1% and by 0.1% of the peers, and
    /// compare the messages per query at equal success.
    Gnutella(SimGnutella),
}

#[derive(Args, Debug)]
pub struct SimGnutella {
    /// Servents in each network (about 64 KiB each).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(20..=50_000))]
    nodes: u64,
    /// Connections of each servent of the flat network.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(2..=8))]
    degree: u8,
    /// Ultrapeer connections of each ultrapeer of the two-tier network.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(2..=16))]
    up_degree: u8,
    /// Queries per file class and TTL (random origins; leaves in the two-tier network).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    queries: u64,
    /// Seed of the simulated network, the servents and the placement of files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write query messages against success (a point per TTL) as an SVG here.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SimDht {
    /// Nodes in the DHT.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    nodes: u64,
    /// Lookups of random ids from random nodes, in each phase.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    lookups: u64,
    /// Fraction of the nodes that crash at once while the second phase's first lookups are
    /// in flight (0: no second phase).
    #[arg(long, default_value_t = 0.25)]
    crash: f64,
    /// Seed of the simulated network and the nodes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the distribution of lookup rounds as an SVG here.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SimChord {
    /// Nodes in the ring.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    nodes: u64,
    /// Lookups of random keys from random nodes.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    lookups: u64,
    /// Seed of the simulated network and the nodes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the path-length distribution as an SVG here.
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(cmd: SimCmd, out: Printer) -> Result<(), CliError> {
    match cmd {
        SimCmd::Chord(args) => chord(args, out),
        SimCmd::Dht(args) => dht(args, out),
        SimCmd::Gnutella(args) => gnutella(args, out),
    }
}

fn sim_error(e: String) -> CliError {
    CliError::new(Exit::Internal, format!("simulation failed: {e}"))
}

fn write_error(path: &std::path::Path, e: impl std::fmt::Display) -> CliError {
    CliError::new(
        Exit::Internal,
        format!("cannot write {}: {e}", path.display()),
    )
}

fn dht(args: SimDht, out: Printer) -> Result<(), CliError> {
    use overlay_sim::dht::DhtNet;
    let started = Wall::now();
    let bar = out.spinner(format!("growing a DHT of {} nodes", args.nodes));
    let net = NetConfig {
        seed: args.seed,
        ..NetConfig::default()
    };
    let mut net = DhtNet::settled(
        net,
        overlay_core::dht::Config::default(),
        args.nodes as usize,
    )
    .map_err(sim_error)?;
    bar.set_message(format!("{} lookups", args.lookups));
    let lookups = args.lookups as usize;
    let calm = net.measure_calm(lookups).map_err(sim_error)?;
    let mut crashed = 0;
    let churn = if args.crash > 0.0 {
        bar.set_message(format!(
            "{} lookups while {:.0} % crash",
            args.lookups,
            args.crash * 100.0
        ));
        let (report, n) = net.measure_crash(lookups, args.crash).map_err(sim_error)?;
        crashed = n;
        Some(report)
    } else {
        None
    };
    bar.finish_and_clear();
    let log2 = (args.nodes as f64).log2();
    let mut human = format!(
        "{:>8} {:>16} {:>8} {:>7} {:>7} {:>9} {:>7}\n",
        "nodes", "phase", "exact", "rounds", "log2 N", "messages", "failed"
    );
    let mut phases = Vec::new();
    let mut row =
        |name: &str, exact: usize, issued: usize, rounds: f64, messages: f64, failed: usize| {
            let fraction = exact as f64 / issued.max(1) as f64;
            // NaN: not measured apart for this row.
            let show = |v: f64, width: usize, prec: usize| {
                if v.is_nan() {
                    format!("{:>width$}", "-")
                } else {
                    format!("{v:>width$.prec$}")
                }
            };
            human += &format!(
                "{:>8} {:>16} {:>8.4} {} {:>7.2} {} {:>7}\n",
                args.nodes,
                name,
                fraction,
                show(rounds, 7, 2),
                log2,
                show(messages, 9, 1),
                failed
            );
            phases.push(
                json!({"phase": name, "issued": issued, "exact": exact, "failed": failed,
            "mean_rounds": rounds, "mean_messages": messages}),
            );
            fraction
        };
    let mut gate = row(
        "calm",
        calm.exact,
        calm.issued,
        calm.mean_rounds(),
        calm.mean_messages(),
        calm.failed,
    );
    if let Some(r) = &churn {
        // The lookups in flight when the nodes crash are reported apart: the nodes near
        // their targets still list the dead ones, so some miss a live node (docs/dht.md).
        let (fw_exact, fw_issued) = r.first_wave;
        row(
            "in flight@crash",
            fw_exact,
            fw_issued,
            f64::NAN,
            f64::NAN,
            0,
        );
        gate = gate.min(row(
            "after crash",
            r.exact - fw_exact,
            r.issued - fw_issued,
            r.mean_rounds(),
            r.mean_messages(),
            r.failed,
        ));
        human += &format!("crashed {crashed} nodes; ");
    }
    human += &format!("{:.1} s", started.elapsed().as_secs_f64());
    out.emit(
        human.trim_end(),
        json!({"event": "sim", "system": "dht", "nodes": args.nodes, "seed": args.seed,
               "log2_n": log2, "crashed": crashed, "phases": phases,
               "wall_s": started.elapsed().as_secs_f64()}),
    );
    if let Some(path) = &args.plot {
        let all: Vec<usize> = calm.rounds.iter().map(|&r| r as usize).collect();
        overlay_sim::plot::histogram(
            path,
            &format!("Mainline DHT lookup rounds, N = {} (simulated)", args.nodes),
            "rounds per lookup",
            &overlay_sim::plot::counts(all),
            // log2 N is far to the right: Kademlia's rounds grow with log2 N / alpha's reach.
            None,
        )
        .map_err(|e| write_error(path, e))?;
    }
    let worst = gate;
    if worst < 0.99 {
        return Err(CliError::new(
            Exit::Internal,
            format!(
                "only {:.2} % of lookups found exactly the K closest live nodes",
                worst * 100.0
            ),
        ));
    }
    Ok(())
}

fn chord(args: SimChord, out: Printer) -> Result<(), CliError> {
    let started = Wall::now();
    let bar = out.spinner(format!("growing a ring of {} nodes", args.nodes));
    let mut net: ChordNet<0, 0> = ChordNet::new(
        NetConfig {
            seed: args.seed,
            ..NetConfig::default()
        },
        Config::default(),
    );
    net.grow(args.nodes as usize - 1, usize::MAX)
        .map_err(sim_error)?;
    let grown = started.elapsed();
    bar.set_message(format!("{} lookups", args.lookups));
    let s = net
        .measure_lookups(args.lookups as usize)
        .map_err(sim_error)?;
    bar.finish_and_clear();
    let half_log = 0.5 * (args.nodes as f64).log2();
    let counts = overlay_sim::plot::counts(s.hops.iter().map(|&h| h as usize));
    let (p1, p50, p99) = (s.percentile(1.0), s.percentile(50.0), s.percentile(99.0));
    let human = format!(
        "{:>8} {:>8} {:>7} {:>9} {:>4} {:>4} {:>4} {:>6} {:>7}\n\
         {:>8} {:>8} {:>7.3} {:>9.2} {:>4} {:>4} {:>4} {:>6} {:>6.1}s\n\
         hop counts: {}",
        "nodes",
        "lookups",
        "mean",
        "½log2 N",
        "p1",
        "p50",
        "p99",
        "wrong",
        "wall",
        args.nodes,
        s.hops.len(),
        s.mean(),
        half_log,
        p1,
        p50,
        p99,
        s.wrong + s.failed,
        started.elapsed().as_secs_f64(),
        counts
            .iter()
            .enumerate()
            .map(|(h, c)| format!("{h}:{c}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    out.emit(
        human,
        json!({
            "event": "sim", "system": "chord", "nodes": args.nodes, "seed": args.seed,
            "lookups": s.hops.len(), "mean_hops": s.mean(), "half_log2_n": half_log,
            "p1": p1, "p50": p50, "p99": p99, "wrong": s.wrong, "failed": s.failed,
            "refused": s.refused, "hop_counts": counts,
            "grow_s": grown.as_secs_f64(), "wall_s": started.elapsed().as_secs_f64(),
        }),
    );
    if let Some(path) = &args.plot {
        overlay_sim::plot::histogram(
            path,
            &format!("Chord lookup path length, N = {} (simulated)", args.nodes),
            "nodes queried per lookup",
            &counts,
            Some(("½ log2 N", half_log)),
        )
        .map_err(|e| write_error(path, e))?;
        if !out.json {
            eprintln!("wrote {}", path.display());
        }
    }
    if s.wrong + s.failed > 0 {
        return Err(CliError::new(
            Exit::Internal,
            format!("{} lookups were wrong and {} failed", s.wrong, s.failed),
        ));
    }
    Ok(())
}

fn gnutella(args: SimGnutella, out: Printer) -> Result<(), CliError> {
    use overlay_sim::gnutella::{
        Content, FileClass, GnutellaNet, TtlPoint, TwoTier, cost_at, reach_bound,
    };
    let started = Wall::now();
    let n = args.nodes as usize;
    let queries = args.queries as usize;
    let net = NetConfig {
        seed: args.seed,
        ..NetConfig::default()
    };
    let content = Content::default();
    let ttls: Vec<u8> = (1..=7).collect();
    let sweep = |g: &mut GnutellaNet, origins: &[usize]| -> Result<_, CliError> {
        let popular = g
            .sweep(FileClass::Popular, &ttls, queries, origins)
            .map_err(sim_error)?;
        let rare = g
            .sweep(FileClass::Rare, &ttls, queries, origins)
            .map_err(sim_error)?;
        Ok((popular, rare))
    };

    let bar = out.spinner(format!(
        "flat network of {n} servents, degree {}",
        args.degree
    ));
    let mut flat_net = GnutellaNet::flat(net, n, args.degree, &content).map_err(sim_error)?;
    flat_net.check_graph().map_err(sim_error)?;
    let all: Vec<usize> = (0..n).collect();
    bar.set_message(format!("flat network: {queries} queries per class and TTL"));
    let flat = sweep(&mut flat_net, &all)?;
    drop(flat_net);
    let shape = TwoTier {
        up_degree: args.up_degree,
        ..TwoTier::scaled(n)
    };
    bar.set_message(format!(
        "two-tier network: {} ultrapeers, {} leaves",
        shape.ultrapeers, shape.leaves
    ));
    let mut two_net = GnutellaNet::two_tier(net, shape, &content).map_err(sim_error)?;
    two_net.check_graph().map_err(sim_error)?;
    let leaves: Vec<usize> = (shape.ultrapeers..n).collect();
    bar.set_message(format!(
        "two-tier network: {queries} queries per class and TTL"
    ));
    let two = sweep(&mut two_net, &leaves)?;
    drop(two_net);
    bar.finish_and_clear();

    let point = |p: &TtlPoint| {
        json!({"ttl": p.ttl, "messages": p.messages, "to_leaves": p.to_leaves,
               "reached": p.reached, "covered": p.covered, "duplicates": p.duplicates,
               "success": p.success, "hits": p.hits})
    };
    // The cost of a flood does not depend on what it looks for: both classes' mean.
    let mean = |a: &TtlPoint, b: &TtlPoint, f: fn(&TtlPoint) -> f64| (f(a) + f(b)) / 2.0;
    let mut human = format!(
        "flat: {n} servents of degree {}; {queries} queries per file class and TTL\n{:>2} {:>9} {:>8} {:>8} {:>9} {:>8} {:>6}\n",
        args.degree, "D", "messages", "reached", "bound", "dups", "popular", "rare"
    );
    for (p, r) in flat.0.iter().zip(&flat.1) {
        human += &format!(
            "{:>2} {:>9.1} {:>8.1} {:>8.0} {:>9.1} {:>8.3} {:>6.3}\n",
            p.ttl,
            mean(p, r, |x| x.messages),
            mean(p, r, |x| x.reached),
            reach_bound(args.degree.into(), p.ttl, n),
            mean(p, r, |x| x.duplicates),
            p.success,
            r.success
        );
    }
    human += &format!(
        "two-tier: {} ultrapeers of degree {}, {} leaves on {} ultrapeers each (at most {} leaves per ultrapeer)\n{:>2} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6}\n",
        shape.ultrapeers,
        shape.up_degree,
        shape.leaves,
        shape.leaf_ups,
        shape.max_leaves,
        "D",
        "messages",
        "to leaves",
        "reached",
        "covered",
        "popular",
        "rare"
    );
    for (p, r) in two.0.iter().zip(&two.1) {
        human += &format!(
            "{:>2} {:>9.1} {:>9.1} {:>8.1} {:>8.1} {:>8.3} {:>6.3}\n",
            p.ttl,
            mean(p, r, |x| x.messages),
            mean(p, r, |x| x.to_leaves),
            mean(p, r, |x| x.reached),
            mean(p, r, |x| x.covered),
            p.success,
            r.success
        );
    }
    human += &format!(
        "equal success (one TTL, or two mixed where one overshoots)\n{:>8} {:>7} {:>6} {:>9} {:>6} {:>9} {:>7}\n",
        "file", "success", "flat D", "messages", "2t D", "messages", "ratio"
    );
    let mut comparison = Vec::new();
    let ttl_pair = |(a, b, _): (u8, u8, f64)| {
        if a == b {
            format!("{a}")
        } else {
            format!("{a}/{b}")
        }
    };
    for (class, f, t) in [
        (FileClass::Popular, &flat.0, &two.0),
        (FileClass::Rare, &flat.1, &two.1),
    ] {
        for s in [0.5, 0.75, 0.9, 0.95, 0.99] {
            let (Some(fc), Some(tc)) = (cost_at(f, s), cost_at(t, s)) else {
                human += &format!(
                    "{:>8} {s:>7.2}   not reached by {}\n",
                    class.name(),
                    if cost_at(f, s).is_none() {
                        "the flat network"
                    } else {
                        "the two-tier network"
                    }
                );
                continue;
            };
            let ratio = fc.2 / tc.2.max(1.0);
            human += &format!(
                "{:>8} {s:>7.2} {:>6} {:>9.1} {:>6} {:>9.1} {:>6.1}x\n",
                class.name(),
                ttl_pair(fc),
                fc.2,
                ttl_pair(tc),
                tc.2,
                ratio
            );
            comparison.push(json!({"file": class.name(), "success": s,
                "flat_messages": fc.2, "two_tier_messages": tc.2, "ratio": ratio}));
        }
    }
    human += &format!("{:.1} s", started.elapsed().as_secs_f64());
    let bad = flat
        .0
        .iter()
        .chain(&flat.1)
        .chain(&two.0)
        .chain(&two.1)
        .filter(|p| p.unbalanced + p.hits_lost > 0)
        .count();
    out.emit(
        human,
        json!({"event": "sim", "system": "gnutella", "nodes": n, "seed": args.seed,
               "queries": queries, "degree": args.degree,
               "ultrapeers": shape.ultrapeers, "up_degree": shape.up_degree,
               "flat": {"popular": flat.0.iter().map(point).collect::<Vec<_>>(),
                        "rare": flat.1.iter().map(point).collect::<Vec<_>>()},
               "two_tier": {"popular": two.0.iter().map(point).collect::<Vec<_>>(),
                            "rare": two.1.iter().map(point).collect::<Vec<_>>()},
               "comparison": comparison,
               "wall_s": started.elapsed().as_secs_f64()}),
    );
    if let Some(path) = &args.plot {
        use overlay_sim::plot::{Line, SeriesLabelPosition, lines};
        let cost = |pts: &[TtlPoint]| -> Vec<(f64, f64)> {
            pts.iter()
                .map(|p| (p.success, p.messages.max(1.0)))
                .collect()
        };
        let series = [
            Line {
                label: "flat: popular (1%)",
                points: cost(&flat.0),
                colour: 0,
                dashed: false,
            },
            Line {
                label: "flat: rare (0.1%)",
                points: cost(&flat.1),
                colour: 0,
                dashed: true,
            },
            Line {
                label: "two-tier: popular (1%)",
                points: cost(&two.0),
                colour: 1,
                dashed: false,
            },
            Line {
                label: "two-tier: rare (0.1%)",
                points: cost(&two.1),
                colour: 1,
                dashed: true,
            },
        ];
        lines(
            path,
            &format!("Gnutella, N = {n}: query messages against success (a point per TTL)"),
            (
                "success (queries with a hit)",
                "query descriptors per query",
            ),
            &series,
            true,
            SeriesLabelPosition::UpperLeft,
        )
        .map_err(|e| write_error(path, e))?;
        if !out.json {
            eprintln!("wrote {}", path.display());
        }
    }
    if bad > 0 {
        return Err(CliError::new(
            Exit::Internal,
            format!("{bad} measurements lost messages or hits (see the tables)"),
        ));
    }
    Ok(())
}
