//! DHT peers of this crate on real sockets, without third parties: BEP 32 (IPv6 nodes in
//! `nodes6`) on ::1.

use std::net::SocketAddr;
use std::time::Duration;

use overlay_core::Id;
use overlay_core::dht::Config;
use overlay_node::dht::DhtPeer;

/// BEP 32: a DHT of IPv6 nodes. Every answer's nodes travel in `nodes6` (the requester is
/// IPv6), so lookups, announces and items work across the IPv6-only network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bep32_an_ipv6_only_dht_on_loopback() {
    let config = Config {
        restrict_ips: false,
        ..Config::default()
    };
    let any: SocketAddr = "[::1]:0".parse().unwrap();
    let mut nodes = Vec::new();
    for seed in 0..8 {
        let node = DhtPeer::bind(any, config, seed).await.unwrap();
        if let Some(first) = nodes.first().map(|n: &DhtPeer| n.addr()) {
            tokio::time::timeout(Duration::from_secs(10), node.bootstrap(&[first]))
                .await
                .unwrap()
                .unwrap();
        }
        nodes.push(node);
    }
    let last = nodes.last().unwrap();
    let (found, _) = last.find_node(nodes[0].id()).await.unwrap();
    assert!(found.iter().all(|(_, a)| a.is_ipv6()));
    assert_eq!(
        found[0].0,
        nodes[0].id(),
        "the target node itself is the closest"
    );
    let ih = Id([0x33; 20]);
    let (stored, _) = nodes[1].announce(ih, Some(6881)).await.unwrap();
    assert!(stored >= 1);
    let (peers, _) = nodes[6].get_peers(ih).await.unwrap();
    assert_eq!(peers, ["[::1]:6881".parse::<SocketAddr>().unwrap()]);
    let (target, _, _) = nodes[2].put(b"4:ipv6").await.unwrap();
    let (value, _) = nodes[5].get(target).await.unwrap();
    assert_eq!(value.as_deref(), Some(&b"4:ipv6"[..]));
}
