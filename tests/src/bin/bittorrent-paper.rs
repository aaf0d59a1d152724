//! BitTorrent swarms on links with capacities: how the swarm scales against one server,
//! how rarest first spreads pieces against random picking, what tit-for-tat does to free
//! riders, what the end game wastes, and what a corrupt peer achieves. Prints tables,
//! writes SVG plots.
//!
//! ```text
//! cargo run --release -p overlay-sim --bin bittorrent-paper [-- --size-mib 64] [--swarm 10,25,50,100,150] [--cs 1,5,10,20,40,60] [--leechers 100] [--seed 1] [--out docs/img]
//! cargo run --release -p overlay-sim --bin bittorrent-paper -- --quick     (16 MiB, up to 40 leechers, no plots unless --out)
//! ```
//!
//! Every run is a flash crowd: one seed (1 MB/s up) and N leechers on asymmetric links
//! (2 MB/s down, 256 KB/s up) start together; each leecher dials 10 random members (the
//! seed among them with the same chance). Client-server runs give every leecher the seed
//! alone.

use overlay_core::Duration;
use overlay_sim::bittorrent::{Mode, Sample, SwarmConfig, SwarmResult, run_swarm};
use overlay_sim::opts::{Opts, peak_rss_bytes};
use overlay_sim::plot::{Line, SeriesLabelPosition, lines};
use overlay_sim::util::mean;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant as Wall;

const MIB: u64 = 1024 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&Opts::parse(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bittorrent-paper: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: &Opts) -> Result<(), String> {
    let started = Wall::now();
    let quick = o.flag("quick");
    let size = o.get("size-mib", if quick { 16u64 } else { 64 }) * MIB;
    let (swarm_default, cs_default) = match quick {
        true => ("10,20,40", "1,5,10,20"),
        false => ("10,25,50,100,150", "1,5,10,20,40,60"),
    };
    let swarm_ns: Vec<usize> = o.list("swarm", swarm_default);
    let cs_ns: Vec<usize> = o.list("cs", cs_default);
    let leechers = o.get("leechers", if quick { 40usize } else { 100 });
    let seed = o.get("seed", 1u64);
    let out: Option<PathBuf> = match o.text("out") {
        Some(dir) => Some(dir.into()),
        None if quick => None,
        None => Some("docs/img".into()),
    };
    let base = |n: usize| SwarmConfig {
        seed,
        ..SwarmConfig::new(n, size)
    };
    let b = base(1);
    println!(
        "BitTorrent flash crowds: {} MiB in {} KiB pieces; seed {} KB/s up; leechers {} KB/s down, {} KB/s up; each leecher dials {}; seed {seed}",
        size / MIB,
        b.piece_len / 1024,
        b.seed_link.up / 1000,
        b.leecher_link.down / 1000,
        b.leecher_link.up / 1000,
        b.dial,
    );

    // 1. Scaling: swarm against client-server.
    println!();
    println!("completion time (s) against N: the swarm, and the seed serving every leecher alone");
    println!(
        "{:>14} {:>4} {:>8} {:>8} {:>8} {:>7} {:>10} {:>9} {:>6}",
        "mode", "N", "first", "mean", "last", "bound", "last/T(1)", "wasted %", "wall s"
    );
    let mut swarm_pts = Vec::new();
    let mut cs_pts = Vec::new();
    let mut t1 = None;
    for (mode, ns) in [(Mode::ClientServer, &cs_ns), (Mode::Swarm, &swarm_ns)] {
        for &n in ns {
            let t = Wall::now();
            let r = run_swarm(&SwarmConfig { mode, ..base(n) }).map_err(|e| e.to_string())?;
            let last = r
                .last()
                .ok_or_else(|| format!("{mode:?} N = {n}: {} unfinished", r.unfinished()))?;
            let all = r.times(false);
            let first = all.iter().copied().fold(f64::MAX, f64::min);
            if mode == Mode::ClientServer && n == 1 {
                t1 = Some(last);
            }
            println!(
                "{:>14} {n:>4} {first:>8.0} {:>8.0} {last:>8.0} {:>7.0} {:>10.1} {:>9.2} {:>6.1}",
                format!("{mode:?}"),
                mean(all.iter().copied()),
                bound(&SwarmConfig { mode, ..base(n) }),
                t1.map_or(f64::NAN, |t1| last / t1),
                100.0 * r.total.wasted as f64 / r.total.downloaded.max(1) as f64,
                t.elapsed().as_secs_f64()
            );
            let pts = if mode == Mode::Swarm {
                &mut swarm_pts
            } else {
                &mut cs_pts
            };
            pts.push((n as f64, last));
        }
    }
    if let (Some(&(n0, s0)), Some(&(n1, s1))) = (swarm_pts.first(), swarm_pts.last()) {
        println!(
            "swarm: N grew {:.1}x, the last completion {:.2}x; client-server grows with N (last = N x T(1) = N x {:.0} s)",
            n1 / n0,
            s1 / s0,
            t1.unwrap_or(f64::NAN)
        );
    }

    // 2. Replication: rarest first against random picking; 3. the end game.
    let rarest = run_swarm(&base(leechers)).map_err(|e| e.to_string())?;
    let random = run_swarm(&SwarmConfig {
        random_picker: true,
        ..base(leechers)
    })
    .map_err(|e| e.to_string())?;
    println!();
    println!(
        "piece replication among {leechers} leechers: copies of the least (min) and most (max) replicated piece, and the standard deviation over pieces"
    );
    println!(
        "{:>6} | {:>5} {:>5} {:>6} {:>6} | {:>5} {:>5} {:>6} {:>6}",
        "t (s)", "min", "max", "mean", "std", "min", "max", "mean", "std"
    );
    println!("{:>6} | {:^26} | {:^26}", "", "rarest first", "random");
    let step = (rarest.samples.len() / 12).max(1);
    for k in (0..rarest.samples.len()).step_by(step) {
        let show = |r: Option<&Sample>| {
            r.map_or(format!("{:^26}", "(all done)"), |r| {
                format!("{:>5} {:>5} {:>6.1} {:>6.1}", r.min, r.max, r.mean, r.std)
            })
        };
        println!(
            "{:>6.0} | {} | {}",
            rarest.samples[k].t,
            show(rarest.samples.get(k)),
            show(random.samples.get(k))
        );
    }
    for (name, r) in [("rarest first", &rarest), ("random", &random)] {
        println!(
            "{name}: while pieces spread, the mean std/mean of copies is {:.2} and the least replicated piece has {:.2} of the mean copies; every piece reached a leecher at {}, two at {}; last completion {:.0} s",
            spreading_mean(&r.samples, leechers, |s| s.std / s.mean),
            spreading_mean(&r.samples, leechers, |s| f64::from(s.min) / s.mean),
            first_time(&r.samples, 1),
            first_time(&r.samples, 2),
            r.last().unwrap_or(f64::NAN),
        );
    }
    println!();
    println!(
        "end game ({leechers} leechers, rarest first): {} duplicate block bytes of {} downloaded ({:.3}%), {} leechers unfinished",
        rarest.total.wasted,
        rarest.total.downloaded,
        100.0 * rarest.total.wasted as f64 / rarest.total.downloaded.max(1) as f64,
        rarest.unfinished()
    );

    // 4. Tit-for-tat against free riders: with finished leechers seeding on, and leaving.
    let riders = leechers / 5;
    println!();
    println!(
        "tit-for-tat: {riders} of {leechers} leechers (drawn at random) never upload; download times in s"
    );
    println!(
        "{:>16} | {:>7} {:>7} {:>6} | {:>7} {:>7} {:>6} | {:>20} | {:>18}",
        "finished",
        "contrib",
        "free",
        "ratio",
        "contrib",
        "free",
        "ratio",
        "pieces/s while",
        "unchoked by while"
    );
    println!(
        "{:>16} | {:^22} | {:^22} | {:>20} | {:>18}",
        "leechers", "median time", "mean time", "scarce: contrib/free", "scarce: contrib/free"
    );
    for (label, stay) in [("seed on", None), ("leave at once", Some(Duration::ZERO))] {
        let r = run_swarm(&SwarmConfig {
            free_riders: riders,
            seed_time: stay,
            ..base(leechers)
        })
        .map_err(|e| e.to_string())?;
        let (fair, free) = (r.median(false), r.median(true));
        let (mfair, mfree) = (mean(r.times(false)), mean(r.times(true)));
        let s = scarce(&r.samples, b.piece_len, size);
        println!(
            "{label:>16} | {fair:>7.0} {free:>7.0} {:>6.2} | {mfair:>7.0} {mfree:>7.0} {:>6.2} | {:>5.2} / {:<5.2} = {:>4.2} | {:>4.1} / {:<4.1} = {:>4.2}",
            free / fair,
            mfree / mfair,
            s.rate_fair,
            s.rate_free,
            s.rate_fair / s.rate_free,
            s.unchoked_fair,
            s.unchoked_free,
            s.unchoked_fair / s.unchoked_free,
        );
        if r.unfinished() > 0 {
            return Err(format!(
                "tit-for-tat ({label}): {} unfinished",
                r.unfinished()
            ));
        }
    }
    println!(
        "(while scarce: while the contributors go from 25% to 75% of the file; pieces/s: each group's mean download rate; unchoked by: how many leechers unchoke one of the group, on average)"
    );

    // 5. A corrupt peer.
    let corrupt_n = leechers.min(20);
    let bad = run_swarm(&SwarmConfig {
        corrupt: 2,
        keep_data: true,
        ..SwarmConfig::new(corrupt_n, (size / 4).max(4 * MIB))
    })
    .map_err(|e| e.to_string())?;
    println!();
    println!(
        "corrupt peers: 2 peers claiming every piece upload corrupt blocks to {corrupt_n} leechers: {} hash failures, banned {} times, honest peers banned {} times, every leecher's bytes equal the torrent's: {}, unfinished {}",
        bad.total.hash_failures,
        bad.bans,
        bad.total.banned - bad.bans,
        bad.data_ok,
        bad.unfinished()
    );

    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let t1 = t1.unwrap_or(0.0);
        for p in plots(dir, &swarm_pts, &cs_pts, t1, &rarest, &random)? {
            println!("wrote {}", p.display());
        }
    }
    println!(
        "done in {:.1} s; peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_bytes().map_or(0.0, |b| b as f64 / MIB as f64)
    );
    Ok(())
}

/// The earliest the last leecher can finish, from the capacities alone: every leecher
/// must download the file, the seed must upload it at least once, and all of it must
/// cross the uplinks (the seed's, and the leechers' in a swarm).
fn bound(cfg: &SwarmConfig) -> f64 {
    let (size, n) = (cfg.size as f64, cfg.leechers as f64);
    let (seed_up, up, down) = (
        cfg.seed_link.up as f64,
        cfg.leecher_link.up as f64,
        cfg.leecher_link.down as f64,
    );
    let uplinks = match cfg.mode {
        Mode::Swarm => seed_up + n * up,
        Mode::ClientServer => seed_up,
    };
    (size / down).max(size / seed_up).max(n * size / uplinks)
}

/// The mean of `f` over the samples while pieces were spreading (some copies, not all).
fn spreading_mean(samples: &[Sample], leechers: usize, f: impl Fn(&Sample) -> f64) -> f64 {
    mean(
        samples
            .iter()
            .filter(|s| s.mean > 0.0 && s.mean < leechers as f64)
            .map(f),
    )
}

/// When every piece first had `copies` copies among the leechers.
fn first_time(samples: &[Sample], copies: u32) -> String {
    samples
        .iter()
        .find(|s| s.min >= copies)
        .map_or("never".into(), |s| format!("{:.0} s", s.t))
}

/// The tit-for-tat phase: while the contributors went from a quarter to three quarters
/// of the file, upload capacity (not the pieces' availability at the start, nor the seeds
/// at the end) decides who gets what.
struct Scarce {
    rate_fair: f64,
    rate_free: f64,
    unchoked_fair: f64,
    unchoked_free: f64,
}

fn scarce(samples: &[Sample], piece_len: u32, size: u64) -> Scarce {
    let pieces = size.div_ceil(u64::from(piece_len)) as f64;
    let from = samples.iter().position(|s| s.have_fair >= 0.25 * pieces);
    let to = samples.iter().position(|s| s.have_fair >= 0.75 * pieces);
    let (Some(a), Some(b)) = (from, to) else {
        return Scarce {
            rate_fair: f64::NAN,
            rate_free: f64::NAN,
            unchoked_fair: f64::NAN,
            unchoked_free: f64::NAN,
        };
    };
    let (sa, sb) = (&samples[a], &samples[b]);
    let span = (sb.t - sa.t).max(1e-9);
    let window = &samples[a..=b];
    Scarce {
        rate_fair: (sb.have_fair - sa.have_fair) / span,
        rate_free: (sb.have_free - sa.have_free) / span,
        unchoked_fair: mean(window.iter().map(|s| s.unchoked_fair)),
        unchoked_free: mean(window.iter().map(|s| s.unchoked_free)),
    }
}

fn plots(
    dir: &Path,
    swarm: &[(f64, f64)],
    cs: &[(f64, f64)],
    t1: f64,
    rarest: &SwarmResult,
    random: &SwarmResult,
) -> Result<Vec<PathBuf>, String> {
    let err = |e: Box<dyn std::error::Error>| e.to_string();
    let max_n = swarm.iter().chain(cs).map(|p| p.0).fold(1.0, f64::max);
    let scaling = dir.join("bittorrent-scaling.svg");
    lines(
        &scaling,
        "Time until the last leecher has the file",
        ("leechers N", "seconds"),
        &[
            Line {
                label: "swarm (BitTorrent)",
                points: swarm.to_vec(),
                colour: 0,
                dashed: false,
            },
            Line {
                label: "client-server (the seed alone)",
                points: cs.to_vec(),
                colour: 1,
                dashed: false,
            },
            Line {
                label: "N x T(1)",
                points: vec![(1.0, t1), (max_n, max_n * t1)],
                colour: 1,
                dashed: true,
            },
        ],
        false,
        SeriesLabelPosition::UpperLeft,
    )
    .map_err(err)?;
    let replication = dir.join("bittorrent-replication.svg");
    let series = |r: &SwarmResult, pick: fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        r.samples.iter().map(|s| (s.t, pick(s))).collect()
    };
    lines(
        &replication,
        "Copies of the least replicated piece, and of the average piece",
        ("seconds", "copies among leechers"),
        &[
            Line {
                label: "rarest first: least replicated piece",
                points: series(rarest, |s| f64::from(s.min)),
                colour: 0,
                dashed: false,
            },
            Line {
                label: "rarest first: mean over pieces",
                points: series(rarest, |s| s.mean),
                colour: 0,
                dashed: true,
            },
            Line {
                label: "random: least replicated piece",
                points: series(random, |s| f64::from(s.min)),
                colour: 1,
                dashed: false,
            },
            Line {
                label: "random: mean over pieces",
                points: series(random, |s| s.mean),
                colour: 1,
                dashed: true,
            },
        ],
        false,
        SeriesLabelPosition::UpperLeft,
    )
    .map_err(err)?;
    Ok(vec![scaling, replication])
}
