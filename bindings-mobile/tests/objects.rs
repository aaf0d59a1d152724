//! The uniffi objects from Rust, as Kotlin and Swift call them: datagrams carried in memory
//! between objects, commands and their events, the error mapping, and the two things the
//! binding layer adds to core (machines built off the caller's stack, inbound connection
//! ids). The foreign-language suites (kotlin/, swift/) run the same objects over real
//! sockets against `overlay` processes.

use overlay_mobile::bittorrent::{TorrentConfig, TorrentSession, sha1, torrent_info};
use overlay_mobile::chord::{ChordEvent, ChordNode, ChordOutput, ChordPhase, chord_config_default};
use overlay_mobile::dht::{DhtEvent, DhtNode, DhtOutput, dht_config_default};
use overlay_mobile::gnutella::{
    GnutellaCloseReason, GnutellaEvent, GnutellaFile, GnutellaOutput, GnutellaRole,
    GnutellaServent, gnutella_config_default,
};
use overlay_mobile::{OverlayError, SocketAddress};
use std::collections::VecDeque;
use std::sync::Arc;

fn addr(port: u16) -> SocketAddress {
    SocketAddress {
        ip: "127.0.0.1".into(),
        port,
    }
}

/// Chord nodes exchanging datagrams in memory, with a clock that jumps to each deadline.
struct ChordNet {
    nodes: Vec<(SocketAddress, Arc<ChordNode>)>,
    events: Vec<ChordEvent>,
    now: u64,
}

impl ChordNet {
    /// Delivers every datagram and fires every timer until `until_us`.
    fn run(&mut self, until_us: u64) {
        let mut wire = VecDeque::new();
        while self.now <= until_us {
            let mut next = until_us + 1;
            for (me, node) in &self.nodes {
                loop {
                    match node.poll_output(self.now).unwrap() {
                        ChordOutput::Transmit { to, datagram } => {
                            wire.push_back((me.clone(), to, datagram))
                        }
                        ChordOutput::Event { event } => self.events.push(event),
                        ChordOutput::Wait { until_us } => {
                            next = next.min(until_us.unwrap_or(u64::MAX).max(self.now + 1));
                            break;
                        }
                    }
                }
            }
            if wire.is_empty() {
                self.now = next;
            }
            while let Some((from, to, datagram)) = wire.pop_front() {
                if let Some((_, node)) = self.nodes.iter().find(|(a, _)| *a == to) {
                    node.handle_datagram(self.now, from, datagram).unwrap();
                }
            }
        }
    }
}

#[test]
fn chord_nodes_form_a_ring_and_store_values_through_the_objects() {
    let nodes: Vec<_> = (0..4)
        .map(|i| {
            let a = addr(7000 + i);
            let node = ChordNode::new(chord_config_default(), a.clone(), i.into()).unwrap();
            (a, node)
        })
        .collect();
    nodes[0].1.create(0).unwrap();
    let joins: Vec<u64> = nodes[1..]
        .iter()
        .map(|(_, n)| n.join(0, addr(7000)).unwrap())
        .collect();
    let mut net = ChordNet {
        nodes,
        events: Vec::new(),
        now: 0,
    };
    net.run(20_000_000);
    for q in joins {
        assert!(
            net.events
                .iter()
                .any(|e| matches!(e, ChordEvent::Joined { query, .. } if *query == q))
        );
    }
    let status = net.nodes[2].1.status().unwrap();
    assert_eq!(status.phase, ChordPhase::Member);
    assert!(status.predecessor.is_some() && status.successors.len() == 3);

    let put = net.nodes[1]
        .1
        .put(net.now, b"k".to_vec(), b"v".to_vec())
        .unwrap();
    net.run(net.now + 2_000_000);
    let get = net.nodes[3].1.get(net.now, b"k".to_vec()).unwrap();
    net.run(net.now + 2_000_000);
    assert!(net.events.iter().any(
        |e| matches!(e, ChordEvent::PutDone { query, key, .. } if *query == put && key.len() == 20)
    ));
    assert!(net.events.iter().any(|e| matches!(e,
        ChordEvent::GetDone { query, value: Some(v), .. } if *query == get && v == b"v")));
}

#[test]
fn refused_calls_map_to_typed_errors_and_change_nothing() {
    let node = ChordNode::new(chord_config_default(), addr(1), 1).unwrap();
    assert!(matches!(
        node.lookup(0, b"x".to_vec()),
        Err(OverlayError::NotMember)
    ));
    assert!(matches!(
        node.poll_output(0).unwrap(),
        ChordOutput::Wait { until_us: None }
    ));
    node.create(0).unwrap();
    assert!(matches!(node.create(0), Err(OverlayError::AlreadyMember)));
    assert!(matches!(
        node.put(0, b"k".to_vec(), vec![0; 2000]),
        Err(OverlayError::ValueTooLarge(1024))
    ));
    let before = node.status().unwrap();
    while !matches!(node.poll_output(0).unwrap(), ChordOutput::Wait { .. }) {}
    assert!(matches!(node.create(0), Err(OverlayError::AlreadyMember)));
    let after = node.status().unwrap();
    assert_eq!(
        (after.phase, after.keys, after.sent),
        (before.phase, before.keys, before.sent)
    );
    let bad = SocketAddress {
        ip: "localhost".into(),
        port: 1,
    };
    assert!(matches!(
        node.handle_datagram(0, bad.clone(), vec![1]),
        Err(OverlayError::InvalidArgument(_))
    ));
    assert!(matches!(
        ChordNode::new(chord_config_default(), bad, 1),
        Err(OverlayError::InvalidArgument(_))
    ));
    // A malformed datagram is no error: dropped and counted.
    node.handle_datagram(0, addr(2), vec![1, 2, 3]).unwrap();
    assert_eq!(node.status().unwrap().malformed, 1);

    let dht = DhtNode::new(dht_config_default(), addr(3), 1).unwrap();
    assert!(matches!(
        dht.bootstrap(0, vec![]),
        Err(OverlayError::NoNodes)
    ));
    assert!(matches!(
        dht.get_peers(0, vec![0; 19]),
        Err(OverlayError::InvalidArgument(_))
    ));
    assert!(matches!(
        dht.put(0, b"not bencode".to_vec()),
        Err(OverlayError::BadItem)
    ));
    // The message names the argument.
    let e = dht.find_node(0, vec![0; 3]).unwrap_err();
    assert_eq!(e.to_string(), "invalid argument: an id is 20 bytes, not 3");
}

#[test]
fn dht_nodes_bootstrap_and_announce_through_the_objects() {
    let mut config = dht_config_default();
    config.restrict_ips = false;
    let nodes: Vec<_> = (0..6)
        .map(|i| {
            (
                addr(8000 + i),
                DhtNode::new(config.clone(), addr(8000 + i), i.into()).unwrap(),
            )
        })
        .collect();
    let mut events = Vec::new();
    let mut now = 0;
    let pump = |now: u64, events: &mut Vec<DhtEvent>| {
        for _ in 0..50 {
            let mut wire = Vec::new();
            for (me, n) in &nodes {
                loop {
                    match n.poll_output(now).unwrap() {
                        DhtOutput::Transmit { to, datagram } => {
                            wire.push((me.clone(), to, datagram))
                        }
                        DhtOutput::Event { event } => events.push(event),
                        DhtOutput::Wait { .. } => break,
                    }
                }
            }
            for (from, to, d) in wire {
                if let Some((_, n)) = nodes.iter().find(|(a, _)| *a == to) {
                    n.handle_datagram(now, from, d).unwrap();
                }
            }
        }
    };
    for (_, n) in &nodes[1..] {
        n.bootstrap(now, vec![addr(8000)]).unwrap();
        now += 1000;
        pump(now, &mut events);
    }
    let info_hash = vec![7; 20];
    let announce = nodes[2]
        .1
        .announce(now, info_hash.clone(), Some(6881))
        .unwrap();
    pump(now, &mut events);
    let get = nodes[5].1.get_peers(now, info_hash).unwrap();
    pump(now, &mut events);
    assert!(events.iter().any(
        |e| matches!(e, DhtEvent::Announced { query, stored, .. } if *query == announce && *stored > 0)
    ));
    assert!(events.iter().any(|e| matches!(e,
        DhtEvent::Peers { query, peers, .. } if *query == get && peers.contains(&addr(6881)))));
}

#[test]
fn machines_are_built_and_driven_on_small_foreign_stacks() {
    // JVM and Android threads have 1 MiB stacks or less; a torrent session is 7 MB.
    let thread = std::thread::Builder::new().stack_size(256 << 10);
    let run = thread.spawn(|| {
        let mut torrent =
            b"d4:infod6:lengthi1000e4:name1:x12:piece lengthi16384e6:pieces20:".to_vec();
        torrent.extend_from_slice(&[0; 20]);
        torrent.extend_from_slice(b"ee");
        let info = torrent_info(torrent.clone()).unwrap();
        assert_eq!((info.piece_count, info.total_length), (1, 1000));
        let config = TorrentConfig {
            peer_id: vec![1; 20],
            max_connections: 8,
            serve: true,
        };
        let session = TorrentSession::new(torrent, config, 1).unwrap();
        session.have_piece(1, 0).unwrap();
        assert!(session.status(2).unwrap().complete);
        assert!(matches!(
            session.piece_checked(3, 0, true),
            Err(OverlayError::NotAwaitingCheck)
        ));
    });
    run.unwrap().join().unwrap();
}

#[test]
fn stream_connections_map_both_ways() {
    let config = gnutella_config_default(GnutellaRole::Ultrapeer, addr(6346)).unwrap();
    let servent = GnutellaServent::new(config, 1).unwrap();
    let a = servent.accepted(0, addr(1000)).unwrap();
    let b = servent.accepted(0, addr(1001)).unwrap();
    let dialled = servent.connect(0, addr(1002)).unwrap();
    // Accepted connections get inbound ids, which never meet the servent's own.
    assert!(a >> 63 == 1 && b >> 63 == 1 && a != b);
    assert_eq!(dialled >> 63, 0);
    let mut outputs = Vec::new();
    loop {
        match servent.poll_output(1).unwrap() {
            GnutellaOutput::Wait { .. } => break,
            o => outputs.push(o),
        }
    }
    assert!(outputs.iter().any(
        |o| matches!(o, GnutellaOutput::Connect { conn, to } if *conn == dialled && *to == addr(1002))
    ));
    // A dial that fails is reported closed, and the servent says why.
    servent.closed(2, dialled).unwrap();
    let closed = std::iter::from_fn(|| match servent.poll_output(3).unwrap() {
        GnutellaOutput::Wait { .. } => None,
        o => Some(o),
    })
    .find_map(|o| match o {
        GnutellaOutput::Event {
            event: GnutellaEvent::Closed { conn, reason, .. },
        } if conn == dialled => Some(reason),
        _ => None,
    });
    assert_eq!(closed, Some(GnutellaCloseReason::Unreachable));
    // Closing an accepted connection is a Close output for it.
    servent.disconnect(4, a).unwrap();
    assert!(
        std::iter::from_fn(|| match servent.poll_output(5).unwrap() {
            GnutellaOutput::Wait { .. } => None,
            o => Some(o),
        })
        .any(|o| matches!(o, GnutellaOutput::Close { conn } if conn == a))
    );
    assert!(matches!(
        servent.search(0, "x".into(), Some(vec![0; 3])),
        Err(OverlayError::InvalidArgument(_))
    ));
}

#[test]
fn sha1_is_fips_180s() {
    // FIPS 180-2, appendix A.1.
    let digest: String = sha1(b"abc".to_vec())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

#[test]
fn a_time_past_2_63_is_refused_and_does_not_stop_the_clock() {
    let node = ChordNode::new(chord_config_default(), addr(1), 1).unwrap();
    node.create(1_000).unwrap();
    // A negative Kotlin Long taken as unsigned.
    assert!(matches!(
        node.poll_output(u64::MAX - 5),
        Err(OverlayError::InvalidArgument(_))
    ));
    // Timers still run on the caller's clock: the next one is due within a minute.
    let until = loop {
        if let ChordOutput::Wait { until_us } = node.poll_output(2_000).unwrap() {
            break until_us;
        }
    };
    assert!(until.is_some_and(|t| t < 60_000_000), "{until:?}");
}

#[test]
fn addresses_parse_as_platforms_print_them() {
    let node = DhtNode::new(dht_config_default(), addr(3), 1).unwrap();
    for ip in ["::1", "[::1]", "fe80::1%wlan0", "10.0.0.1"] {
        let from = SocketAddress {
            ip: ip.into(),
            port: 6881,
        };
        node.handle_datagram(0, from, b"junk".to_vec()).unwrap();
    }
    assert_eq!(node.status().unwrap().malformed, 4);
}

#[test]
fn shared_files_gnutella_cannot_describe_are_refused() {
    let config = gnutella_config_default(GnutellaRole::Leaf, addr(6346)).unwrap();
    let servent = GnutellaServent::new(config, 1).unwrap();
    let file = |index, name: &str, size| GnutellaFile {
        index,
        size,
        name: name.into(),
        sha1: None,
    };
    servent.share(0, vec![file(0, "ok.ogg", 10)]).unwrap();
    for bad in [
        vec![file(1, "a/b.ogg", 10)],
        vec![file(1, "nul\0.ogg", 10)],
        vec![file(1, "", 10)],
        vec![file(1, "huge.iso", 5 << 30)],
        vec![file(1, "x", 1), file(1, "y", 1)],
        vec![GnutellaFile {
            sha1: Some(vec![0; 3]),
            ..file(1, "z", 1)
        }],
    ] {
        let e = servent.share(0, bad).unwrap_err();
        assert!(matches!(e, OverlayError::InvalidArgument(_)), "{e}");
    }
    assert_eq!(servent.status().unwrap().shared_files, 1);
}

/// The machine sizes docs/mobile.md quotes:
/// `cargo test -p overlay-mobile --test objects -- --ignored --nocapture machine_sizes`.
#[test]
#[ignore = "prints the machine sizes for the docs"]
fn machine_sizes() {
    use overlay_mobile::{bittorrent, chord, dht, gnutella};
    println!("ChordNode        {:>9} bytes", size_of::<chord::Machine>());
    println!("DhtNode          {:>9} bytes", size_of::<dht::Machine>());
    println!(
        "GnutellaServent  {:>9} bytes",
        size_of::<gnutella::Machine>()
    );
    println!(
        "TorrentSession   {:>9} bytes",
        size_of::<bittorrent::Machine>()
    );
}
