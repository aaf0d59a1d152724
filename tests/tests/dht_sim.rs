//! The Mainline DHT at scale on the simulator (BEP 5; Maymounkov and Mazières 2002,
//! section 2.3): lookups converge on exactly the K closest live nodes, also while a quarter
//! of the network crashes mid-run.

use overlay_core::dht::Config;
use overlay_sim::NetConfig;
use overlay_sim::dht::DhtNet;

#[test]
fn kademlia_lookups_find_exactly_the_k_closest_live_nodes_with_25_percent_crashing_mid_run() {
    let n: usize = std::env::var("DHT_SIM_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let net = NetConfig {
        seed: 11,
        ..NetConfig::default()
    };
    let mut net = DhtNet::settled(net, Config::default(), n).unwrap();
    let calm = net.measure_calm(500).unwrap();
    println!(
        "N={n} calm: exact {:.4} ({} of {}), failed {}, rounds {:.2}, messages {:.1}",
        calm.exact_fraction(),
        calm.exact,
        calm.issued,
        calm.failed,
        calm.mean_rounds(),
        calm.mean_messages()
    );
    assert!(calm.exact_fraction() >= 0.99);
    let (churn, crashed) = net.measure_crash(2000, 0.25).unwrap();
    println!(
        "N={n} crashed {crashed}: exact {:.4} ({} of {}; in flight at the crash {} of {}), failed {}, rounds {:.2}, messages {:.1}",
        churn.exact_fraction(),
        churn.exact,
        churn.issued,
        churn.first_wave.0,
        churn.first_wave.1,
        churn.failed,
        churn.mean_rounds(),
        churn.mean_messages()
    );
    assert!(crashed > n / 5);
    assert!(churn.exact_fraction() >= 0.99);
    // Kademlia's bound: O(log N) rounds.
    assert!(churn.mean_rounds() <= (n as f64).log2());
}
