//! `overlay sim chord|dht`: a network of N nodes in the deterministic simulator, M lookups
//! checked against the oracle, the table of what they cost and its distribution.

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
