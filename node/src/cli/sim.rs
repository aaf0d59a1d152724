//! `overlay sim chord`: a ring of N nodes in the deterministic simulator, M lookups checked
//! against the oracle, the path-length table and its distribution.

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
    let SimCmd::Chord(args) = cmd;
    let sim_error = |e: String| CliError::new(Exit::Internal, format!("simulation failed: {e}"));
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
        .map_err(|e| {
            CliError::new(
                Exit::Internal,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
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
