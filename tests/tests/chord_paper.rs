//! Reproductions of published Chord results on the simulator, at test scale. The
//! `chord-paper` binary runs the same experiments at full scale (see docs/chord.md).

use overlay_core::Duration;
use overlay_core::chord::Config;
use overlay_sim::NetConfig;
use overlay_sim::chord::ChordNet;

/// Stoica et al., SIGCOMM 2001, Sec. 6.3 and Fig. 10: in a stable N-node ring with
/// accurate fingers, the mean lookup path length is about 0.5 * log2(N). Routing uses the
/// fingers only, as the paper's `closest_preceding_node` does.
fn stoica_fig10_path_length(k: u32) {
    let config = Config {
        route_through_successor_list: false,
        ..Config::default()
    };
    let mut net: ChordNet = ChordNet::new(
        NetConfig {
            seed: k as u64,
            ..NetConfig::default()
        },
        config,
    );
    net.grow((1 << k) - 1, 1 << (k - 3)).unwrap();
    // fix_fingers refreshes one distinct finger (about log2 N of them) per second.
    net.run_for(Duration::from_secs(2 * k as u64 + 20)).unwrap();
    let stats = net.measure_lookups(8 << k).unwrap();
    let expect = 0.5 * k as f64;
    let mean = stats.mean();
    println!(
        "N=2^{k}: mean {mean:.3} (expect {expect}), p1 {} p99 {}",
        stats.percentile(1.0),
        stats.percentile(99.0)
    );
    assert_eq!(
        (stats.wrong, stats.failed),
        (0, 0),
        "every lookup must find the oracle's successor"
    );
    assert!(
        (mean - expect).abs() <= 0.1 * expect,
        "mean path {mean:.3} not within 10% of {expect}"
    );
}

#[test]
fn stoica_fig10_path_length_n_2_6() {
    stoica_fig10_path_length(6);
}
#[test]
fn stoica_fig10_path_length_n_2_7() {
    stoica_fig10_path_length(7);
}
#[test]
fn stoica_fig10_path_length_n_2_8() {
    stoica_fig10_path_length(8);
}
#[test]
fn stoica_fig10_path_length_n_2_9() {
    stoica_fig10_path_length(9);
}
#[test]
fn stoica_fig10_path_length_n_2_10() {
    stoica_fig10_path_length(10);
}
#[test]
fn stoica_fig10_path_length_n_2_11() {
    stoica_fig10_path_length(11);
}
#[test]
fn stoica_fig10_path_length_n_2_12() {
    stoica_fig10_path_length(12);
}

/// Zave 2017, Sec. 4: from any state satisfying the invariant, stabilization alone makes
/// the ring correct. N nodes joining through one bootstrap node at the same instant all
/// start with the bootstrap as successor; each stabilize round can only move a successor
/// pointer to its successor's predecessor, so the ring is correct after about N rounds.
#[test]
fn zave_concurrent_joins_through_one_bootstrap_converge_in_bounded_rounds() {
    for n in [16usize, 64, 128] {
        let mut net: ChordNet = ChordNet::new(NetConfig::default(), Config::default());
        let rounds = net
            .join_concurrently(n, Duration::from_secs(10 * n as u64))
            .unwrap();
        println!("{n} concurrent joins: correct after {rounds} stabilize rounds");
        assert!(rounds as usize <= n + 16, "{rounds} rounds for {n} joins");
        assert_eq!(net.ring().len(), n + 1);
    }
}

/// Stoica et al. Sec. 6.4 (simultaneous node failures), with Zave's successor lists: crash
/// 20% of a stable 1024-node ring at once; after stabilization, lookups for stored keys
/// still succeed, and no key that kept a replica on a live node is lost.
#[test]
fn crash_20_percent_of_1024_nodes_lookups_succeed_and_no_replicated_key_is_lost() {
    let mut net: ChordNet<256, 16> = ChordNet::new(
        NetConfig {
            seed: 20,
            ..NetConfig::default()
        },
        Config::default(),
    );
    let members = net.grow(1023, 128).unwrap();
    net.run_for(Duration::from_secs(30)).unwrap();
    let keys = net.put_keys(2000).unwrap();
    assert_eq!(keys.len(), 2000, "every put succeeds on a stable ring");
    net.run_for(Duration::from_secs(10)).unwrap();

    let crashed = net.crash_each(&members, 0.2);
    let surviving = net.keys_with_live_copy(&keys);
    net.stabilize_until_correct(Duration::from_secs(120))
        .unwrap();
    net.run_for(Duration::from_secs(30)).unwrap();

    let lookups = net.measure_lookups(4000).unwrap();
    let ok = net.get_keys(&keys).unwrap();
    let ok_surviving = net.get_keys(&surviving).unwrap();
    println!(
        "crashed {crashed}/1024; lookups: {} ok, {} wrong, {} failed; gets: {ok}/{} keys, {ok_surviving}/{} of those with a live replica",
        lookups.hops.len(),
        lookups.wrong,
        lookups.failed,
        keys.len(),
        surviving.len()
    );
    assert!((180..=230).contains(&crashed));
    assert_eq!(lookups.wrong, 0);
    assert!(lookups.hops.len() as f64 >= 0.99 * 4000.0);
    assert!(ok as f64 >= 0.99 * keys.len() as f64);
    assert_eq!(
        ok_surviving,
        surviving.len(),
        "a key with a live replica was lost"
    );
}
