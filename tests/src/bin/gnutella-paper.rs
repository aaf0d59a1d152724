//! Gnutella flooding at full scale: what a query costs and finds in flat networks of
//! degree C against the flooding theory, and how the ultrapeer tier cuts that cost. Prints
//! tables, writes SVG plots.
//!
//! ```text
//! cargo run --release -p overlay-sim --bin gnutella-paper [-- --nodes 10000] [--degrees 3,4,6] [--max-ttl 7] [--queries 100] [--seed 1] [--out docs/img]
//!     [--ultrapeers N/10] [--up-degree 6] [--leaf-ups 3] [--max-leaves 30] [--popular 0.01] [--rare 0.001]
//! cargo run --release -p overlay-sim --bin gnutella-paper -- --quick     (N = 2000, 40 queries, no plots unless --out)
//! ```
//!
//! For each degree C, a flat network (every servent an ultrapeer without leaves, as in
//! Gnutella 0.4) of N servents; then a two-tier network of the same N (N/10 ultrapeers of
//! degree 6, the others leaves on 3 ultrapeers each, at most 30 leaves per ultrapeer: the
//! LimeWire shape, scaled down). Each title of the popular class is held by 1% of the peers,
//! each rare one by 0.1%, placed at random. For each TTL D the same queries (random
//! non-holders; leaves in the two-tier network) are sent one at a time and measured by
//! summing every servent's counters.

use overlay_sim::NetConfig;
use overlay_sim::gnutella::{
    Content, FileClass, GnutellaNet, OUT, PEER_LINKS, PeerServent, ROUTES, RX, Sweep, TtlPoint,
    TwoTier, ULTRAPEER_LINKS, UltrapeerServent, cheapest, equal_success, reach_bound,
    tree_messages,
};
use overlay_sim::opts::{Opts, peak_rss_bytes};
use overlay_sim::plot::{Line, SeriesLabelPosition, lines};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant as Wall;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = Opts::parse(&args);
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gnutella-paper: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: &Opts) -> Result<(), String> {
    let started = Wall::now();
    let quick = o.flag("quick");
    let n = o.get("nodes", if quick { 2000usize } else { 10_000 });
    let queries = o.get("queries", if quick { 40usize } else { 200 });
    let max_ttl = o.get("max-ttl", 7u8).clamp(1, 7);
    let seed = o.get("seed", 1u64);
    let flat_degrees = o.list::<u8>("degrees", "3,4,6");
    let up_degrees = o.list::<u8>("up-degrees", "3,4,6");
    let out: Option<PathBuf> = match o.text("out") {
        Some(dir) => Some(dir.into()),
        None if quick => None,
        None => Some("docs/img".into()),
    };
    let content = Content {
        popular: o.get("popular", 0.01),
        rare: o.get("rare", 0.001),
        ..Content::default()
    };
    let mut shape = TwoTier::scaled(n);
    shape.ultrapeers = o.get("ultrapeers", shape.ultrapeers).clamp(2, n - 1);
    shape.leaves = n - shape.ultrapeers;
    shape.leaf_ups = o.get("leaf-ups", shape.leaf_ups);
    shape.max_leaves = o.get("max-leaves", shape.max_leaves);
    let net = NetConfig {
        seed,
        ..NetConfig::default()
    };
    let ttls: Vec<u8> = (1..=max_ttl).collect();
    println!(
        "servents: a flat peer or a leaf {} bytes ({PEER_LINKS} connections of {RX} bytes), an ultrapeer {} bytes ({ULTRAPEER_LINKS} connections, a 1 KiB QRP table each); GUID tables {ROUTES} x 2 generations; outbox {OUT} bytes",
        size_of::<PeerServent>(),
        size_of::<UltrapeerServent>(),
    );
    println!(
        "Gnutella flooding: N = {n}, {queries} queries per class and TTL (the same origins and titles at every TTL), {} titles per class: popular held by {} peers each ({:.1}%), rare by {} ({:.2}%); seed {seed}",
        content.titles,
        content.holders(FileClass::Popular, n),
        content.popular * 100.0,
        content.holders(FileClass::Rare, n),
        content.rare * 100.0,
    );

    let mut flats = Vec::new();
    for &c in &flat_degrees {
        let t = Wall::now();
        let mut g = GnutellaNet::flat(net, n, c, &content)?;
        g.check_graph()?;
        let built = t.elapsed().as_secs_f64();
        let all: Vec<usize> = (0..n).collect();
        let dist = g.degree_counts(all.iter().copied());
        let mean_deg = dist
            .iter()
            .enumerate()
            .map(|(d, &k)| d as f64 * k as f64)
            .sum::<f64>()
            / n as f64;
        let popular = g.sweep(FileClass::Popular, &ttls, queries, &all)?;
        let rare = g.sweep(FileClass::Rare, &ttls, queries, &all)?;
        println!();
        println!(
            "flat, C = {c}: degree distribution {} (mean {mean_deg:.3}); {:.0} bytes per servent; built in {built:.1} s, measured in {:.1} s",
            show_counts(&dist),
            g.bytes_per_node(),
            t.elapsed().as_secs_f64() - built
        );
        flat_table(c, n, &popular, &rare);
        flats.push(Sweep { c, popular, rare });
    }

    let mut tiers = Vec::new();
    for &c in &up_degrees {
        shape.up_degree = c;
        let t = Wall::now();
        let mut g = GnutellaNet::two_tier(net, shape, &content)?;
        g.check_graph()?;
        let built = t.elapsed().as_secs_f64();
        let ups: Vec<usize> = (0..shape.ultrapeers).collect();
        let leaves: Vec<usize> = (shape.ultrapeers..n).collect();
        let up_dist = g.degree_counts(ups.iter().copied());
        let leaf_dist = g.degree_counts(leaves.iter().copied());
        let mut per_up = vec![0u64; shape.max_leaves as usize + 1];
        for &u in &ups {
            per_up[g.leaves_of(u).min(shape.max_leaves as usize)] += 1;
        }
        let popular = g.sweep(FileClass::Popular, &ttls, queries, &leaves)?;
        let rare = g.sweep(FileClass::Rare, &ttls, queries, &leaves)?;
        println!();
        println!(
            "two-tier, C_u = {c}: {} ultrapeers (degree distribution {}), {} leaves on {} ultrapeers each (distribution {}), leaves per ultrapeer {} (max {}); {:.0} bytes per servent; built in {built:.1} s, measured in {:.1} s",
            shape.ultrapeers,
            show_counts(&up_dist),
            shape.leaves,
            shape.leaf_ups,
            show_counts(&leaf_dist),
            show_counts(&per_up),
            shape.max_leaves,
            g.bytes_per_node(),
            t.elapsed().as_secs_f64() - built
        );
        two_tier_table(&popular, &rare);
        tiers.push(Sweep { c, popular, rare });
    }

    if !tiers.is_empty() {
        compare(&flats, &tiers);
    }
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for p in plots(dir, n, &flats, &tiers)? {
            println!("wrote {}", p.display());
        }
    }
    println!(
        "done in {:.1} s; peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_bytes().map_or(0.0, |b| b as f64 / (1 << 20) as f64)
    );
    Ok(())
}

/// The equal-success tables: each flat TTL against the two-tier network of the same degree
/// (or the first), then the cheapest of all flat networks against the cheapest two-tier one
/// at fixed success levels.
fn compare(flats: &[Sweep], tiers: &[Sweep]) {
    println!();
    println!(
        "equal success: each flat TTL with success >= 0.5 against the two-tier network with C_u = C: its cheapest TTL with success at least as high, and two TTLs mixed for exactly that success"
    );
    println!(
        "{:>8} {:>2} {:>2} {:>8} {:>9} | {:>4} {:>8} {:>9} {:>7} | {:>5} {:>9} {:>7}",
        "class",
        "C",
        "D",
        "success",
        "messages",
        "2t D",
        "success",
        "messages",
        "ratio",
        "mix D",
        "messages",
        "ratio"
    );
    let (mut ratios, mut mixed) = (Vec::new(), Vec::new());
    for f in flats {
        let two = tiers.iter().find(|t| t.c == f.c).unwrap_or(&tiers[0]);
        for class in [FileClass::Popular, FileClass::Rare] {
            for cmp in equal_success(f.class(class), two.class(class), 0.5) {
                let fp = cmp.flat;
                let single = match (cmp.single, cmp.ratio()) {
                    (Some(t), Some(r)) => {
                        ratios.push(r);
                        format!(
                            "{:>4} {:>8.3} {:>9.1} {:>6.1}x",
                            t.ttl, t.success, t.messages, r
                        )
                    }
                    _ => format!("{:>4} {:>8} {:>9} {:>7}", "-", "none", "", ""),
                };
                let mix = match (cmp.mixed, cmp.mixed_ratio()) {
                    (Some((a, b, m)), Some(r)) => {
                        mixed.push(r);
                        format!("{:>5} {m:>9.1} {r:>6.1}x", ttl_pair(a, b))
                    }
                    _ => String::new(),
                };
                println!(
                    "{:>8} {:>2} {:>2} {:>8.3} {:>9.1} | {single} | {mix}",
                    class.name(),
                    f.c,
                    fp.ttl,
                    fp.success,
                    fp.messages,
                );
            }
        }
    }
    for (what, mut r) in [
        ("one TTL, success at least as high", ratios),
        ("two TTLs mixed, equal success", mixed),
    ] {
        if r.is_empty() {
            continue;
        }
        r.sort_by(f64::total_cmp);
        println!(
            "flat / two-tier messages ({what}): min {:.1}x, median {:.1}x, max {:.1}x over {} comparisons",
            r[0],
            r[r.len() / 2],
            r[r.len() - 1],
            r.len()
        );
    }

    println!();
    println!(
        "equal success, both at their best: the cheapest flat network (any C, one TTL or two mixed) against the cheapest two-tier one (any C_u)"
    );
    println!(
        "{:>8} {:>7} | {:>2} {:>5} {:>9} | {:>3} {:>5} {:>9} | {:>7}",
        "class", "success", "C", "D", "messages", "C_u", "D", "messages", "ratio"
    );
    let best = |sweeps: &[Sweep], class: FileClass, s: f64| {
        cheapest(sweeps.iter().map(|w| (w.c, w.class(class))), s)
    };
    let mut worst = f64::INFINITY;
    for class in [FileClass::Popular, FileClass::Rare] {
        for s in [0.5, 0.75, 0.9, 0.95, 0.99] {
            match (best(flats, class, s), best(tiers, class, s)) {
                (Some((c, f)), Some((cu, t))) => {
                    let ratio = f.2 / t.2.max(1.0);
                    worst = worst.min(ratio);
                    println!(
                        "{:>8} {:>7.2} | {:>2} {:>5} {:>9.1} | {:>3} {:>5} {:>9.1} | {:>6.1}x",
                        class.name(),
                        s,
                        c,
                        ttl_pair(f.0, f.1),
                        f.2,
                        cu,
                        ttl_pair(t.0, t.1),
                        t.2,
                        ratio
                    );
                }
                (f, t) => println!(
                    "{:>8} {:>7.2} | {} | {}",
                    class.name(),
                    s,
                    f.map_or("no flat network reaches it".into(), |(c, f)| format!(
                        "C = {c}: {:.1} messages",
                        f.2
                    )),
                    t.map_or("no two-tier network reaches it".into(), |(c, t)| format!(
                        "C_u = {c}: {:.1} messages",
                        t.2
                    )),
                ),
            }
        }
    }
    if worst.is_finite() {
        println!("smallest ratio at equal success, both at their best: {worst:.1}x");
    }
}

/// "D" for one TTL, "D1/D2" for two mixed.
fn ttl_pair(a: u8, b: u8) -> String {
    if a == b {
        format!("{a}")
    } else {
        format!("{a}/{b}")
    }
}

/// A note on a table row whose counters do not add up.
fn warnings(p: &TtlPoint, r: &TtlPoint) -> &'static str {
    match (p.unbalanced + r.unbalanced, p.hits_lost + r.hits_lost) {
        (0, 0) => "",
        (0, _) => "  (hits lost on the way back!)",
        _ => "  (messages sent and received differ!)",
    }
}

/// `d:count` pairs of a distribution, zeros left out.
fn show_counts(counts: &[u64]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(d, c)| format!("{d}:{c}"))
        .collect();
    parts.join(" ")
}

/// The flat network's table: measured against the theory, for both classes together
/// (the cost of a flood does not depend on what it looks for), success per class.
fn flat_table(c: u8, n: usize, popular: &[TtlPoint], rare: &[TtlPoint]) {
    println!(
        "{:>2} {:>9} {:>9} {:>9} {:>5} {:>8} {:>8} {:>8} {:>9} {:>6} {:>7} {:>7}",
        "D",
        "messages",
        "on graph",
        "tree",
        "C*D",
        "reached",
        "on graph",
        "bound",
        "dups",
        "dup %",
        "popular",
        "rare"
    );
    for (p, r) in popular.iter().zip(rare) {
        let avg = |f: fn(&TtlPoint) -> f64| (f(p) + f(r)) / 2.0;
        let messages = avg(|x| x.messages);
        let dups = avg(|x| x.duplicates);
        println!(
            "{:>2} {:>9.1} {:>9.1} {:>9.0} {:>5} {:>8.1} {:>8.1} {:>8.0} {:>9.1} {:>5.1}% {:>7.3} {:>7.3}{}",
            p.ttl,
            messages,
            avg(|x| x.graph_messages),
            tree_messages(c.into(), p.ttl),
            u32::from(c) * u32::from(p.ttl),
            avg(|x| x.reached),
            avg(|x| x.graph_reached),
            reach_bound(c.into(), p.ttl, n),
            dups,
            100.0 * dups / messages.max(1.0),
            p.success,
            r.success,
            warnings(p, r)
        );
    }
}

fn two_tier_table(popular: &[TtlPoint], rare: &[TtlPoint]) {
    println!(
        "{:>2} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7}",
        "D",
        "messages",
        "to leaves",
        "filtered",
        "reached",
        "covered",
        "dups",
        "popular",
        "rare",
        "hits p",
        "hits r"
    );
    for (p, r) in popular.iter().zip(rare) {
        let avg = |f: fn(&TtlPoint) -> f64| (f(p) + f(r)) / 2.0;
        println!(
            "{:>2} {:>9.1} {:>9.1} {:>9.1} {:>8.1} {:>8.1} {:>9.1} {:>7.3} {:>7.3} {:>7.1} {:>7.1}{}",
            p.ttl,
            avg(|x| x.messages),
            avg(|x| x.to_leaves),
            avg(|x| x.filtered),
            avg(|x| x.reached),
            avg(|x| x.covered),
            avg(|x| x.duplicates),
            p.success,
            r.success,
            p.hits,
            r.hits,
            warnings(p, r)
        );
    }
}

/// The SVGs: reach and messages against the theory, success against TTL (flat, two-tier),
/// messages against success.
fn plots(dir: &Path, n: usize, flats: &[Sweep], tiers: &[Sweep]) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let mut draw = |name: &str, title: String, axes: (&str, &str), series: &[Line<'_>], log_y| {
        let path = dir.join(name);
        let at = if log_y {
            SeriesLabelPosition::UpperLeft
        } else {
            SeriesLabelPosition::LowerRight
        };
        lines(&path, &title, axes, series, log_y, at)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
        Ok::<(), String>(())
    };
    // Both classes' queries cost the same: their mean.
    let both = |f: &Sweep, v: fn(&TtlPoint) -> f64| -> Vec<(f64, f64)> {
        f.popular
            .iter()
            .zip(&f.rare)
            .map(|(p, r)| (f64::from(p.ttl), (v(p) + v(r)) / 2.0))
            .collect()
    };
    let theory = |f: &Sweep, v: &dyn Fn(u8) -> f64| -> Vec<(f64, f64)> {
        f.popular
            .iter()
            .map(|p| (f64::from(p.ttl), v(p.ttl)))
            .collect()
    };
    let success = |pts: &[TtlPoint]| -> Vec<(f64, f64)> {
        pts.iter().map(|p| (f64::from(p.ttl), p.success)).collect()
    };
    let cost = |pts: &[TtlPoint]| -> Vec<(f64, f64)> {
        pts.iter()
            .map(|p| (p.success, p.messages.max(1.0)))
            .collect()
    };
    let label = |what: &str, c: u8, rest: &str| format!("{what}{c}: {rest}");
    let flat_labels: Vec<[String; 7]> = flats
        .iter()
        .map(|f| {
            [
                label("C = ", f.c, "measured"),
                label("C = ", f.c, "bound min(N, 1 + sum C(C-1)^(h-1))"),
                label("C = ", f.c, "flood on the graph (shortest paths)"),
                label("C = ", f.c, "C x D"),
                label("C = ", f.c, "popular (1%)"),
                label("C = ", f.c, "rare (0.1%)"),
                label("flat C = ", f.c, "popular / rare (dashed)"),
            ]
        })
        .collect();
    let tier_labels: Vec<[String; 3]> = tiers
        .iter()
        .map(|t| {
            [
                label("C_u = ", t.c, "popular (1%)"),
                label("C_u = ", t.c, "rare (0.1%)"),
                label("two-tier C_u = ", t.c, "popular / rare (dashed)"),
            ]
        })
        .collect();

    let mut series = Vec::new();
    for (k, f) in flats.iter().enumerate() {
        series.extend(solid_dashed(
            [&flat_labels[k][0], &flat_labels[k][1]],
            [
                both(f, |p| p.reached),
                theory(f, &|d| reach_bound(f.c.into(), d, n)),
            ],
            k,
        ));
    }
    draw(
        "gnutella-flat-reach.svg",
        format!("Flat Gnutella, N = {n}: servents reached per query"),
        ("TTL D", "servents reached (origin included)"),
        &series,
        true,
    )?;

    let mut series = Vec::new();
    for (k, f) in flats.iter().enumerate() {
        series.extend(solid_dashed(
            [&flat_labels[k][0], &flat_labels[k][2]],
            [both(f, |p| p.messages), both(f, |p| p.graph_messages)],
            k,
        ));
        series.push(Line {
            label: &flat_labels[k][3],
            points: theory(f, &|d| f64::from(f.c) * f64::from(d)),
            colour: 5,
            dashed: true,
        });
    }
    draw(
        "gnutella-flat-messages.svg",
        format!("Flat Gnutella, N = {n}: query messages per query"),
        ("TTL D", "query descriptors sent"),
        &series,
        true,
    )?;

    let mut series = Vec::new();
    for (k, f) in flats.iter().enumerate() {
        series.extend(solid_dashed(
            [&flat_labels[k][4], &flat_labels[k][5]],
            [success(&f.popular), success(&f.rare)],
            k,
        ));
    }
    draw(
        "gnutella-success-flat.svg",
        format!("Flat Gnutella, N = {n}: queries with at least one hit"),
        ("TTL D", "success"),
        &series,
        false,
    )?;

    let mut series = Vec::new();
    for (k, t) in tiers.iter().enumerate() {
        series.extend(solid_dashed(
            [&tier_labels[k][0], &tier_labels[k][1]],
            [success(&t.popular), success(&t.rare)],
            3 + k,
        ));
    }
    draw(
        "gnutella-success-two-tier.svg",
        format!("Two-tier Gnutella (ultrapeers and QRP), N = {n}: queries with at least one hit"),
        ("TTL D of a leaf's query", "success"),
        &series,
        false,
    )?;

    let mut series = Vec::new();
    for (k, f) in flats.iter().enumerate() {
        series.extend(solid_dashed(
            [&flat_labels[k][6], ""],
            [cost(&f.popular), cost(&f.rare)],
            k,
        ));
    }
    for (k, t) in tiers.iter().enumerate() {
        series.extend(solid_dashed(
            [&tier_labels[k][2], ""],
            [cost(&t.popular), cost(&t.rare)],
            3 + k,
        ));
    }
    draw(
        "gnutella-messages-vs-success.svg",
        format!("Gnutella, N = {n}: query messages against success (a point per TTL)"),
        (
            "success (queries with a hit)",
            "query descriptors per query",
        ),
        &series,
        true,
    )?;
    Ok(written)
}

/// Two curves of one colour: the first solid, the second dashed (the popular and the rare
/// class, or a measurement and its theory).
fn solid_dashed<'a>(
    labels: [&'a str; 2],
    points: [Vec<(f64, f64)>; 2],
    colour: usize,
) -> [Line<'a>; 2] {
    let [a, b] = points;
    [
        Line {
            label: labels[0],
            points: a,
            colour,
            dashed: false,
        },
        Line {
            label: labels[1],
            points: b,
            colour,
            dashed: true,
        },
    ]
}
