//! BitTorrent swarms on the simulator: session machines trading torrents over links with
//! upload and download capacities (BEP 3's swarm), checked end to end. The numbers at full
//! size come from the `bittorrent-paper` binary; these runs are small enough for a test.

use overlay_sim::bittorrent::{Mode, Sample, SwarmConfig, SwarmResult, run_swarm};

const MIB: u64 = 1024 * 1024;

fn run(cfg: SwarmConfig) -> SwarmResult {
    let r = run_swarm(&cfg).expect("the simulation runs");
    assert_eq!(r.unfinished(), 0, "every leecher finishes: {cfg:?}");
    assert_eq!(r.total.violations, 0, "honest peers break no rule");
    r
}

fn last(r: &SwarmResult) -> f64 {
    r.last().expect("all finished")
}

/// BEP 3's premise: uploaders that are also downloaders add capacity, so the time until
/// everyone has the file grows far slower than N, while one server's grows with N.
#[test]
fn bep3_swarm_completion_grows_far_slower_than_client_server() {
    let cfg = |n, mode| SwarmConfig {
        mode,
        ..SwarmConfig::new(n, 8 * MIB)
    };
    let (cs8, cs32) = (
        last(&run(cfg(8, Mode::ClientServer))),
        last(&run(cfg(32, Mode::ClientServer))),
    );
    let (sw8, sw32) = (
        last(&run(cfg(8, Mode::Swarm))),
        last(&run(cfg(32, Mode::Swarm))),
    );
    // The server's uplink is the bottleneck: 4x the leechers, about 4x the time.
    assert!((3.6..4.4).contains(&(cs32 / cs8)), "{cs8} -> {cs32}");
    // The swarm: 4x the leechers, well under 2x the time, and far below the server.
    assert!(sw32 / sw8 < 1.6, "{sw8} -> {sw32}");
    assert!(sw32 * 4.0 < cs32, "swarm {sw32} s, client-server {cs32} s");
}

fn first_time(samples: &[Sample], copies: u32) -> f64 {
    samples
        .iter()
        .find(|s| s.min >= copies)
        .map_or(f64::INFINITY, |s| s.t)
}

/// BEP 3 "rarest first": pieces spread evenly, so every piece is in the swarm and
/// replicated sooner, and the rarest piece is less rare, than with random picking.
#[test]
fn bep3_rarest_first_replicates_the_rarest_piece_sooner_than_random_picking() {
    let cfg = |random_picker| SwarmConfig {
        random_picker,
        ..SwarmConfig::new(40, 16 * MIB)
    };
    let (rarest, random) = (run(cfg(false)), run(cfg(true)));
    for copies in [1, 2] {
        let (a, b) = (
            first_time(&rarest.samples, copies),
            first_time(&random.samples, copies),
        );
        assert!(
            a < b,
            "{copies} copies of every piece: rarest {a} s, random {b} s"
        );
    }
    // Over the time pieces spread, the least replicated piece keeps more copies.
    let min_share = |r: &SwarmResult| {
        let v: Vec<f64> = r
            .samples
            .iter()
            .filter(|s| s.mean > 0.0 && s.mean < 40.0)
            .map(|s| f64::from(s.min) / s.mean)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(min_share(&rarest) > min_share(&random));
}

/// BEP 3 "tit-for-tat": while upload capacity is scarce, a peer that never uploads gets
/// fewer unchokes (it has no rate to rank by: only the optimistic slot, and regular slots
/// no uploader wants) and downloads slower.
#[test]
fn bep3_tit_for_tat_unchokes_free_riders_less_while_capacity_is_scarce() {
    let r = run(SwarmConfig {
        free_riders: 10,
        ..SwarmConfig::new(50, 32 * MIB)
    });
    let pieces = 128.0;
    let from = r.samples.iter().position(|s| s.have_fair >= 0.25 * pieces);
    let to = r.samples.iter().position(|s| s.have_fair >= 0.75 * pieces);
    let window = &r.samples[from.unwrap()..=to.unwrap()];
    let (a, b) = (window[0], window[window.len() - 1]);
    let fair = (b.have_fair - a.have_fair) / (b.t - a.t);
    let free = (b.have_free - a.have_free) / (b.t - a.t);
    assert!(
        fair > 1.05 * free,
        "contributors {fair} pieces/s, free riders {free}"
    );
    let mean = |f: fn(&Sample) -> f64| window.iter().map(f).sum::<f64>() / window.len() as f64;
    let (by_fair, by_free) = (mean(|s| s.unchoked_fair), mean(|s| s.unchoked_free));
    assert!(
        by_fair > 1.25 * by_free,
        "unchoked by {by_fair} against {by_free}"
    );
    assert!(r.median(true) > r.median(false));
}

/// libtorrent's strict end game: duplicate requests only once no block is free, cancelled
/// on arrival; the duplicates stay a sliver of the bytes and nobody is left at 99%.
#[test]
fn end_game_duplicates_stay_small_and_no_leecher_is_stuck() {
    let r = run(SwarmConfig::new(20, 8 * MIB));
    let share = r.total.wasted as f64 / r.total.downloaded as f64;
    assert!(
        share < 0.03,
        "{} of {} bytes twice",
        r.total.wasted,
        r.total.downloaded
    );
    assert_eq!(r.total.downloaded, 20 * 8 * MIB);
}

/// A peer whose blocks fail the SHA-1 check of their piece is banned (libtorrent's
/// `piece_failed`: the only contributor at once, others after repeated failures), and
/// every leecher still ends with exactly the torrent's bytes.
#[test]
fn corrupt_peers_are_banned_and_every_byte_is_still_right() {
    let r = run(SwarmConfig {
        corrupt: 2,
        keep_data: true,
        ..SwarmConfig::new(10, 4 * MIB)
    });
    assert!(r.data_ok);
    assert!(r.total.hash_failures > 0);
    assert!(
        r.bans >= 2,
        "both corrupt peers banned somewhere: {}",
        r.bans
    );
    assert_eq!(r.total.banned, r.bans, "no honest peer is banned");
}
