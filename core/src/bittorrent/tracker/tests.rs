//! The tracker protocols against their specs (BEP 3, 7, 15, 23, 48), and the announcer and
//! the tracker against each other over in-memory links.

extern crate std;
use std::vec::Vec;

use super::http::{self, Reply, Request as HttpRequest};
use super::udp::{self, Request as UdpRequest, Response as UdpResponse};
use super::*;
use crate::machine::{ConnId, Dest, Input, Machine, Output};
use crate::{Duration, Instant};

const HASH: [u8; 20] =
    *b"\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34\x56\x78\x9a";
const TRACKER: PeerAddr = PeerAddr::v4([127, 0, 0, 1], 6969);

fn announce(peer: u8, event: AnnounceEvent) -> Announce {
    Announce {
        info_hash: HASH,
        peer_id: [peer; 20],
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event,
        numwant: Some(50),
        key: 0xdead_beef,
    }
}

#[test]
fn bep15_announce_request_layout() {
    let a = announce(7, AnnounceEvent::Started);
    let mut buf = [0u8; 128];
    let bytes = UdpRequest::Announce {
        conn_id: 0x0102_0304_0506_0708,
        tid: 0xaabb_ccdd,
        announce: a,
    }
    .encode(&mut buf)
    .unwrap()
    .to_vec();
    // BEP 15's table: offsets 0, 8, 12, 16, 36, 56, 64, 72, 80, 84, 88, 92, 96; 98 bytes.
    assert_eq!(bytes.len(), udp::ANNOUNCE_LEN);
    assert_eq!(bytes[0..8], 0x0102_0304_0506_0708u64.to_be_bytes());
    assert_eq!(bytes[8..12], 1u32.to_be_bytes());
    assert_eq!(bytes[12..16], 0xaabb_ccddu32.to_be_bytes());
    assert_eq!(bytes[16..36], HASH);
    assert_eq!(bytes[36..56], [7; 20]);
    assert_eq!(bytes[56..64], 2u64.to_be_bytes(), "downloaded");
    assert_eq!(bytes[64..72], 3u64.to_be_bytes(), "left");
    assert_eq!(bytes[72..80], 1u64.to_be_bytes(), "uploaded");
    assert_eq!(bytes[80..84], 2u32.to_be_bytes(), "event: started");
    assert_eq!(bytes[84..88], [0; 4], "ip: default");
    assert_eq!(bytes[88..92], 0xdead_beefu32.to_be_bytes());
    assert_eq!(bytes[92..96], 50u32.to_be_bytes());
    assert_eq!(bytes[96..98], 6881u16.to_be_bytes());
    match UdpRequest::decode(&bytes).unwrap() {
        UdpRequest::Announce { announce, tid, .. } => {
            assert_eq!((announce, tid), (a, 0xaabb_ccdd));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bep15_connect_needs_the_magic_and_bad_packets_are_refused() {
    let mut buf = [0u8; 16];
    let bytes = UdpRequest::Connect { tid: 9 }
        .encode(&mut buf)
        .unwrap()
        .to_vec();
    assert_eq!(bytes[..8], 0x41727101980u64.to_be_bytes());
    assert_eq!(
        UdpRequest::decode(&bytes),
        Ok(UdpRequest::Connect { tid: 9 })
    );
    let mut wrong = bytes.clone();
    wrong[7] ^= 1;
    assert_eq!(UdpRequest::decode(&wrong), Err(TrackerError::BadPacket));
    // Truncated announce, scrape of 19 bytes, unknown action.
    let mut b = [0u8; 128];
    let full = UdpRequest::Announce {
        conn_id: 1,
        tid: 1,
        announce: announce(1, AnnounceEvent::Empty),
    }
    .encode(&mut b)
    .unwrap()
    .to_vec();
    for cut in 0..full.len() {
        assert!(UdpRequest::decode(&full[..cut]).is_err(), "cut at {cut}");
    }
    let mut scrape = [0u8; 16 + 19];
    scrape[11] = 2;
    assert!(UdpRequest::decode(&scrape).is_err());
    let mut unknown = [0u8; 16];
    unknown[11] = 9;
    assert!(UdpRequest::decode(&unknown).is_err());
    assert!(UdpResponse::decode(&[0, 0, 0, 2, 0, 0, 0, 1, 0], false).is_err());
}

#[test]
fn bep15_announce_answer_peers_are_6_bytes_over_ipv4_and_18_over_ipv6() {
    let mut buf = [0u8; 64];
    let mut n = udp::write_announce_head(&mut buf, 5, 1800, 2, 1).unwrap();
    buf[n..n + 6].copy_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1]);
    n += 6;
    match UdpResponse::decode(&buf[..n], false).unwrap() {
        UdpResponse::Announce {
            tid,
            interval,
            leechers,
            seeders,
            peers,
        } => {
            assert_eq!((tid, interval, leechers, seeders), (5, 1800, 2, 1));
            assert_eq!(
                peers.collect::<Vec<_>>(),
                [PeerAddr::v4([10, 0, 0, 1], 6881)]
            );
        }
        other => panic!("{other:?}"),
    }
    let mut v6 = [0u8; 20 + 18];
    udp::write_announce_head(&mut v6, 5, 1800, 0, 1).unwrap();
    v6[20 + 15] = 1;
    v6[20 + 17] = 80;
    let UdpResponse::Announce { peers, .. } = UdpResponse::decode(&v6, true).unwrap() else {
        panic!()
    };
    let mut ip = [0u8; 16];
    ip[15] = 1;
    assert_eq!(peers.collect::<Vec<_>>(), [PeerAddr::v6(ip, 80)]);
}

#[test]
fn bep3_announce_url_escapes_the_binary_parameters() {
    let url = TrackerUrl::parse("http://tracker.example:8080/announce?passkey=abc").unwrap();
    let mut a = announce(b'A', AnnounceEvent::Started);
    a.info_hash[0] = b' ';
    let mut buf = [0u8; 1024];
    let n = http::write_announce(&mut buf, &url, &a, Some(b"t 1")).unwrap();
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    let line = text.lines().next().unwrap();
    assert!(
        line.starts_with(
            "GET /announce?passkey=abc&info_hash=%204Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&peer_id=AAAAAAAAAAAAAAAAAAAA&port=6881&uploaded=1&downloaded=2&left=3&"
        ),
        "{line}"
    );
    for part in [
        "&event=started",
        "&numwant=50",
        "&compact=1",
        "&key=DEADBEEF",
        "&trackerid=t%201",
        " HTTP/1.0",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(text.contains("\r\nHost: tracker.example:8080\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
    // The server side reads back what the client wrote.
    let Some((HttpRequest::Announce(q), used)) = http::read_request(&buf[..n]).unwrap() else {
        panic!()
    };
    assert_eq!(
        (q.announce, q.dict_peers, q.no_peer_id, used),
        (a, false, true, n)
    );
}

#[test]
fn tracker_urls() {
    let u = TrackerUrl::parse("udp://[::1]:6969/announce").unwrap();
    assert_eq!((u.scheme, u.host, u.port), (Scheme::Udp, "::1", 6969));
    let u = TrackerUrl::parse("HTTP://t.example/ann").unwrap();
    assert_eq!(
        (u.scheme, u.host, u.port, u.path),
        (Scheme::Http, "t.example", 80, "/ann")
    );
    assert_eq!(
        TrackerUrl::parse("https://t/announce"),
        Err(TrackerError::UnsupportedScheme)
    );
    for bad in [
        "udp://t",
        "http://:80/",
        "http://u@t/",
        "http://t:0/",
        "http://t:99999/",
        "http://t/a b",
    ] {
        assert!(TrackerUrl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn bep48_scrape_path_replaces_the_last_announce() {
    assert_eq!(http::scrape_path("/announce"), Some(("/", "")));
    assert_eq!(
        http::scrape_path("/x/announce.php?k=1"),
        Some(("/x/", ".php?k=1"))
    );
    assert_eq!(http::scrape_path("/a/announce/b"), None);
    let url = TrackerUrl::parse("http://t:1/x/announce.php").unwrap();
    let mut buf = [0u8; 512];
    let n = http::write_scrape(&mut buf, &url, &[HASH, [0; 20]]).unwrap();
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(
        text.starts_with("GET /x/scrape.php?info_hash=%124Vx"),
        "{text}"
    );
    assert!(text.contains("&info_hash=%00%00"), "{text}");
}

#[test]
fn bep23_compact_bep7_peers6_and_bep3_dictionaries() {
    let compact = b"d8:completei1e10:incompletei2e8:intervali900e12:min intervali60e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x506:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x15e";
    let Reply::Announce(r) = http::parse_reply(compact).unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.interval, r.min_interval, r.complete, r.incomplete),
        (Some(900), Some(60), Some(1), Some(2))
    );
    let mut ip6 = [0u8; 16];
    ip6[15] = 1;
    assert_eq!(
        r.peers.collect::<Vec<_>>(),
        [
            PeerAddr::v4([127, 0, 0, 1], 6881),
            PeerAddr::v4([10, 0, 0, 2], 80),
            PeerAddr::v6(ip6, 21)
        ]
    );
    let dicts = b"d8:intervali1800e5:peersld2:ip9:127.0.0.17:peer id20:AAAAAAAAAAAAAAAAAAAA4:porti6881eed2:ip3:::14:porti1eed2:ip4:nope4:porti1eeee";
    let Reply::Announce(r) = http::parse_reply(dicts).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.peers.collect::<Vec<_>>(),
        [PeerAddr::v4([127, 0, 0, 1], 6881), PeerAddr::v6(ip6, 1)]
    );
    let Reply::Failure(why) = http::parse_reply(b"d14:failure reason7:go awaye").unwrap() else {
        panic!()
    };
    assert_eq!(why, b"go away");
    assert_eq!(
        http::parse_reply(b"<html>").unwrap_err(),
        TrackerError::BadBencode
    );
}

#[test]
fn http_answers_end_at_content_length_or_with_the_connection() {
    let full = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nde";
    assert_eq!(
        http::read_response(&full[..full.len() - 1], false),
        Ok(None)
    );
    assert_eq!(
        http::read_response(full, false),
        Ok(Some((200, &b"de"[..])))
    );
    assert!(http::read_response(&full[..full.len() - 1], true).is_err());
    let closed = b"HTTP/1.1 200 OK\r\n\r\nde";
    assert_eq!(http::read_response(closed, false), Ok(None));
    assert_eq!(
        http::read_response(closed, true),
        Ok(Some((200, &b"de"[..])))
    );
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n";
    assert!(http::read_response(chunked, true).is_err());
}

// --- The machines against each other -----------------------------------------------------

type Client = Announcer<2>;
type Server = Tracker<16, 32, 8>;

/// In-memory links between announcers (at their addresses) and one tracker at `TRACKER`.
struct Net {
    now: Instant,
    tracker: Server,
    clients: Vec<(PeerAddr, Client)>,
    /// (client index, its conn) <-> tracker's inbound conn.
    conns: Vec<(usize, ConnId, ConnId)>,
    next_inbound: u64,
    events: Vec<(usize, std::string::String)>,
    peers: Vec<(usize, Vec<PeerAddr>)>,
    /// Drop every datagram to the tracker (a dead UDP tracker).
    blackhole: bool,
}

enum Hop {
    ToTracker(Input<'static>, Vec<u8>),
    ToClient(usize, Input<'static>, Vec<u8>),
}

impl Net {
    fn new(config: TrackerConfig) -> Net {
        Net {
            now: Instant::ZERO,
            tracker: Server::new(config, 1),
            clients: Vec::new(),
            conns: Vec::new(),
            next_inbound: 0,
            events: Vec::new(),
            peers: Vec::new(),
            blackhole: false,
        }
    }

    fn client(&mut self, port: u16, left: u64, url: &str, config: AnnouncerConfig) -> usize {
        let id = [port as u8; 20];
        let mut c = Client::new(config, HASH, id, port, u64::from(port));
        c.set_totals(0, 0, left);
        c.add_tracker(self.now, url, TRACKER).unwrap();
        self.clients.push((PeerAddr::v4([127, 0, 0, 1], port), c));
        self.clients.len() - 1
    }

    /// Delivers everything until every machine waits.
    fn run(&mut self) {
        for _ in 0..1000 {
            let mut hops = Vec::new();
            for i in 0..self.clients.len() {
                let (me, c) = &mut self.clients[i];
                let me = *me;
                loop {
                    match c.poll_output(self.now) {
                        Output::Wait(_) => break,
                        Output::Transmit {
                            to: Dest::Addr(to),
                            payload,
                        } => {
                            assert_eq!(to, TRACKER);
                            if !self.blackhole {
                                hops.push(Hop::ToTracker(
                                    Input::Datagram {
                                        from: me,
                                        payload: &[],
                                    },
                                    payload.to_vec(),
                                ));
                            }
                        }
                        Output::Transmit {
                            to: Dest::Conn(conn),
                            payload,
                        } => {
                            let theirs = self
                                .conns
                                .iter()
                                .find(|c| c.0 == i && c.1 == conn)
                                .unwrap()
                                .2;
                            hops.push(Hop::ToTracker(
                                Input::Received {
                                    conn: theirs,
                                    bytes: &[],
                                },
                                payload.to_vec(),
                            ));
                        }
                        Output::Connect { conn, peer } => {
                            assert_eq!(peer, TRACKER);
                            if self.blackhole {
                                hops.push(Hop::ToClient(i, Input::Closed { conn }, Vec::new()));
                                continue;
                            }
                            let theirs = ConnId::inbound(self.next_inbound);
                            self.next_inbound += 1;
                            self.conns.push((i, conn, theirs));
                            hops.push(Hop::ToTracker(
                                Input::Accepted {
                                    conn: theirs,
                                    peer: me,
                                },
                                Vec::new(),
                            ));
                            hops.push(Hop::ToClient(i, Input::Connected { conn }, Vec::new()));
                        }
                        Output::Close { conn } => {
                            if let Some(k) = self.conns.iter().position(|c| c.0 == i && c.1 == conn)
                            {
                                let (_, _, theirs) = self.conns.swap_remove(k);
                                hops.push(Hop::ToTracker(
                                    Input::Closed { conn: theirs },
                                    Vec::new(),
                                ));
                            }
                        }
                        Output::Event(e) => {
                            if let AnnouncerEvent::Announced { peers, .. } = e {
                                self.peers.push((i, peers.to_vec()));
                            }
                            self.events.push((i, std::format!("{e:?}")));
                        }
                    }
                }
            }
            loop {
                match self.tracker.poll_output(self.now) {
                    Output::Wait(_) => break,
                    Output::Transmit {
                        to: Dest::Addr(to),
                        payload,
                    } => {
                        let i = self.clients.iter().position(|c| c.0 == to).unwrap();
                        hops.push(Hop::ToClient(
                            i,
                            Input::Datagram {
                                from: TRACKER,
                                payload: &[],
                            },
                            payload.to_vec(),
                        ));
                    }
                    Output::Transmit {
                        to: Dest::Conn(conn),
                        payload,
                    } => {
                        let &(i, theirs, _) = self.conns.iter().find(|c| c.2 == conn).unwrap();
                        hops.push(Hop::ToClient(
                            i,
                            Input::Received {
                                conn: theirs,
                                bytes: &[],
                            },
                            payload.to_vec(),
                        ));
                    }
                    Output::Close { conn } => {
                        if let Some(k) = self.conns.iter().position(|c| c.2 == conn) {
                            let (i, theirs, _) = self.conns.swap_remove(k);
                            hops.push(Hop::ToClient(i, Input::Closed { conn: theirs }, Vec::new()));
                        }
                    }
                    Output::Connect { .. } => panic!("the tracker dials no one"),
                    Output::Event(e) => match e {},
                }
            }
            if hops.is_empty() {
                return;
            }
            for hop in hops {
                let (to_tracker, i, input, bytes) = match hop {
                    Hop::ToTracker(input, bytes) => (true, 0, input, bytes),
                    Hop::ToClient(i, input, bytes) => (false, i, input, bytes),
                };
                let input = match input {
                    Input::Datagram { from, .. } => Input::Datagram {
                        from,
                        payload: &bytes,
                    },
                    Input::Received { conn, .. } => Input::Received {
                        conn,
                        bytes: &bytes,
                    },
                    other => other,
                };
                match to_tracker {
                    true => self.tracker.handle_input(self.now, input),
                    false => self.clients[i].1.handle_input(self.now, input),
                }
            }
        }
        panic!("no quiescence");
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.run();
    }
}

fn short() -> TrackerConfig {
    TrackerConfig {
        interval: Duration::from_secs(60),
        min_interval: Duration::from_secs(30),
        peer_timeout: Duration::from_secs(150),
        ..TrackerConfig::default()
    }
}

#[test]
fn bep3_http_announce_finds_the_other_peers_and_scrape_counts_them() {
    for url in ["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"] {
        let mut net = Net::new(short());
        let seed = net.client(7001, 0, url, AnnouncerConfig::default());
        net.run();
        let leech = net.client(7002, 100, url, AnnouncerConfig::default());
        net.run();
        assert_eq!(
            net.peers,
            [
                (seed, Vec::new()),
                (leech, std::vec![PeerAddr::v4([127, 0, 0, 1], 7001)])
            ],
            "{url}"
        );
        assert_eq!(net.tracker.scrape(&HASH), Some((1, 1, 0)));
        let s = net.tracker.stats();
        assert_eq!(s.http_announces + s.udp_announces, 2);
        // The leecher finishes: `completed` goes out at once and is counted.
        net.clients[leech].1.set_totals(0, 100, 0);
        net.clients[leech].1.completed(net.now);
        net.run();
        assert_eq!(net.tracker.scrape(&HASH), Some((2, 0, 1)), "{url}");
        // The seed re-announces on the tracker's interval and learns of the new one.
        net.advance(Duration::from_secs(59));
        assert_eq!(net.peers.len(), 3);
        net.advance(Duration::from_secs(1));
        assert!(net.peers[3..].contains(&(seed, std::vec![PeerAddr::v4([127, 0, 0, 1], 7002)])));
        // `stopped` removes the peer at once.
        net.clients[seed].1.stop(net.now);
        net.run();
        assert!(net.clients[seed].1.is_stopped());
        assert_eq!(net.tracker.scrape(&HASH), Some((1, 0, 1)));
    }
}

#[test]
fn stop_during_an_announce_in_flight_still_tells_the_tracker() {
    for url in ["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"] {
        let mut net = Net::new(short());
        let c = net.client(7001, 0, url, AnnouncerConfig::default());
        net.run();
        assert_eq!(net.tracker.scrape(&HASH), Some((1, 0, 0)));
        // The regular announce goes out and gets no answer...
        net.blackhole = true;
        net.advance(Duration::from_secs(60));
        // ...and the peer leaves meanwhile: `stopped` goes out anyway.
        net.blackhole = false;
        net.clients[c].1.stop(net.now);
        net.run();
        assert!(net.clients[c].1.is_stopped(), "{url}");
        assert_eq!(net.tracker.scrape(&HASH), None, "{url}");
    }
}

#[test]
fn tracker_expires_peers_that_stop_announcing() {
    let mut net = Net::new(short());
    net.client(7001, 0, "udp://127.0.0.1:6969", AnnouncerConfig::default());
    net.run();
    net.clients.clear();
    net.advance(Duration::from_secs(149));
    assert_eq!(net.tracker.swarm_count(), 1);
    net.advance(Duration::from_secs(2));
    assert_eq!(
        (net.tracker.swarm_count(), net.tracker.stats().expired),
        (0, 1)
    );
}

#[test]
fn bep15_retransmits_after_15_times_2_to_the_n_seconds_then_fails() {
    let mut net = Net::new(short());
    net.blackhole = true;
    let c = net.client(7001, 0, "udp://127.0.0.1:6969", AnnouncerConfig::default());
    net.run();
    let mut at = 0;
    for n in 0..8 {
        at += 15 << n;
        net.now = Instant::from_micros((at - 1) * 1_000_000);
        net.run();
        assert_eq!(net.clients[c].1.stats().retransmitted, n, "before {at} s");
        net.now = Instant::from_micros(at * 1_000_000);
        net.run();
        assert_eq!(net.clients[c].1.stats().retransmitted, n + 1, "at {at} s");
    }
    // The ninth wait (3840 s) ends the announce.
    at += 15 << 8;
    net.now = Instant::from_micros(at * 1_000_000);
    net.run();
    assert_eq!(net.clients[c].1.stats().failed, 1);
    assert!(net.events.last().unwrap().1.contains("Timeout"));
}

#[test]
fn bep15_connection_id_reused_for_a_minute_and_checked_by_the_tracker() {
    let config = TrackerConfig {
        interval: Duration::from_secs(20),
        min_interval: Duration::from_secs(1),
        ..short()
    };
    let mut net = Net::new(config);
    net.client(7001, 0, "udp://127.0.0.1:6969", AnnouncerConfig::default());
    net.run();
    net.advance(Duration::from_secs(20));
    // One connect served both announces.
    assert_eq!(
        (
            net.tracker.stats().connects,
            net.tracker.stats().udp_announces
        ),
        (1, 2)
    );
    net.advance(Duration::from_secs(20));
    net.advance(Duration::from_secs(20));
    // 60 s after the id: a new connect.
    assert_eq!(
        (
            net.tracker.stats().connects,
            net.tracker.stats().udp_announces
        ),
        (2, 4)
    );
    // A forged id is refused with an error.
    let mut buf = [0u8; 128];
    let forged = UdpRequest::Announce {
        conn_id: 42,
        tid: 1,
        announce: announce(9, AnnounceEvent::Started),
    }
    .encode(&mut buf)
    .unwrap()
    .to_vec();
    net.tracker.handle_input(
        net.now,
        Input::Datagram {
            from: PeerAddr::v4([10, 0, 0, 9], 1),
            payload: &forged,
        },
    );
    let Output::Transmit { payload, .. } = net.tracker.poll_output(net.now) else {
        panic!()
    };
    assert!(matches!(
        UdpResponse::decode(payload, false),
        Ok(UdpResponse::Error { tid: 1, .. })
    ));
    assert_eq!(net.tracker.stats().bad_conn_ids, 1);
}

#[test]
fn refused_announces_back_off_and_report_the_reason() {
    let mut net = Net::new(TrackerConfig::default());
    // A tracker with room for one torrent.
    let mut tiny: Tracker<1, 1, 1> = Tracker::new(TrackerConfig::default(), 1);
    let mut buf = [0u8; 1024];
    let url = TrackerUrl::parse("http://127.0.0.1:6969/announce").unwrap();
    let peer = PeerAddr::v4([127, 0, 0, 1], 1);
    for (n, hash) in [[1u8; 20], [2u8; 20]].into_iter().enumerate() {
        let mut a = announce(1, AnnounceEvent::Started);
        a.info_hash = hash;
        let len = http::write_announce(&mut buf, &url, &a, None).unwrap();
        let conn = ConnId::inbound(n as u64);
        tiny.handle_input(Instant::ZERO, Input::Accepted { conn, peer });
        tiny.handle_input(
            Instant::ZERO,
            Input::Received {
                conn,
                bytes: &buf[..len],
            },
        );
        let Output::Transmit { payload, .. } = tiny.poll_output(Instant::ZERO) else {
            panic!()
        };
        let (_, body) = http::read_response(payload, true).unwrap().unwrap();
        match (n, http::parse_reply(body).unwrap()) {
            (0, Reply::Announce(_)) => {}
            (1, Reply::Failure(why)) => assert_eq!(why, b"tracker full: too many torrents"),
            (_, other) => panic!("{other:?}"),
        }
        assert!(matches!(
            tiny.poll_output(Instant::ZERO),
            Output::Close { .. }
        ));
    }
    // A client whose tracker cannot be reached retries after 15, 30, 60, ... s, then on
    // the default interval; once it answers, the schedule is the tracker's again.
    net.blackhole = true;
    let c = net.client(
        7001,
        0,
        "http://127.0.0.1:6969/announce",
        AnnouncerConfig::default(),
    );
    net.run();
    let mut at = 0;
    for n in 0..9 {
        let wait = (15u64 << n).min(1800);
        at += wait;
        net.now = Instant::from_micros((at - 1) * 1_000_000);
        net.run();
        assert_eq!(net.clients[c].1.stats().failed, n + 1, "before {at} s");
        net.now = Instant::from_micros(at * 1_000_000);
        if n == 8 {
            net.blackhole = false;
        }
        net.run();
    }
    assert!(net.events.iter().any(|(_, e)| e.contains("Unreachable")));
    assert_eq!(net.clients[c].1.stats().announced, 1);
}

#[test]
fn http_tracker_answers_dictionaries_when_asked_and_400_to_junk() {
    let mut t: Server = Tracker::new(short(), 3);
    let peer = PeerAddr::v4([127, 0, 0, 1], 5000);
    let ask = |t: &mut Server, n: u64, request: &[u8]| -> (u16, Vec<u8>) {
        let conn = ConnId::inbound(n);
        t.handle_input(Instant::ZERO, Input::Accepted { conn, peer });
        t.handle_input(
            Instant::ZERO,
            Input::Received {
                conn,
                bytes: request,
            },
        );
        let Output::Transmit { payload, .. } = t.poll_output(Instant::ZERO) else {
            panic!()
        };
        let (code, body) = http::read_response(payload, true).unwrap().unwrap();
        let answer = (code, body.to_vec());
        assert!(matches!(t.poll_output(Instant::ZERO), Output::Close { .. }));
        answer
    };
    let hash = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
    let get = |id: char, port: u16, compact: u8| {
        std::format!(
            "GET /announce?info_hash={hash}&peer_id={}&port={port}&left=0&compact={compact} HTTP/1.1\r\nHost: x\r\n\r\n",
            std::iter::repeat_n(id, 20).collect::<std::string::String>()
        )
    };
    ask(&mut t, 0, get('A', 6881, 1).as_bytes());
    let (code, body) = ask(&mut t, 1, get('B', 6882, 0).as_bytes());
    assert_eq!(code, 200);
    let Reply::Announce(r) = http::parse_reply(&body).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.peers.collect::<Vec<_>>(),
        [PeerAddr::v4([127, 0, 0, 1], 6881)]
    );
    assert!(
        body.windows(27)
            .any(|w| w == b"7:peer id20:AAAAAAAAAAAAAAA")
    );
    let (code, body) = ask(
        &mut t,
        2,
        std::format!("GET /scrape?info_hash={hash} HTTP/1.0\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 200);
    let expected = [
        &b"d5:filesd20:"[..],
        &HASH,
        b"d8:completei2e10:downloadedi0e10:incompletei0eeee",
    ]
    .concat();
    assert_eq!(body, expected);
    for junk in [
        &b"GET /announce?info_hash=short&peer_id=x&port=1 HTTP/1.0\r\n\r\n"[..],
        b"BREW /pot HTCPCP/1.0\r\n\r\n",
    ] {
        assert_eq!(ask(&mut t, 3, junk).0, 400);
    }
    assert_eq!(ask(&mut t, 4, b"GET /index.html HTTP/1.0\r\n\r\n").0, 404);
    assert_eq!(t.stats().malformed, 2);
}

#[test]
fn arbitrary_bytes_never_panic_either_side() {
    let mut rng = crate::Rng::new(11);
    let mut t: Server = Tracker::new(short(), 3);
    let mut c = Client::new(AnnouncerConfig::default(), HASH, [1; 20], 1, 1);
    c.add_tracker(Instant::ZERO, "udp://127.0.0.1:6969", TRACKER)
        .unwrap();
    c.add_tracker(Instant::ZERO, "http://127.0.0.1:6969/announce", TRACKER)
        .unwrap();
    let mut buf = [0u8; 300];
    for round in 0..3000u64 {
        let now = Instant::from_micros(round * 100_000);
        let n = rng.below(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        if round % 3 == 0 && n > 16 {
            buf[8..12].copy_from_slice(&(rng.below(4) as u32).to_be_bytes());
        }
        t.handle_input(
            now,
            Input::Datagram {
                from: PeerAddr::v4([1, 2, 3, 4], 5),
                payload: &buf[..n],
            },
        );
        let conn = ConnId::inbound(round % 4);
        t.handle_input(
            now,
            Input::Accepted {
                conn,
                peer: TRACKER,
            },
        );
        t.handle_input(
            now,
            Input::Received {
                conn,
                bytes: &buf[..n],
            },
        );
        c.handle_input(
            now,
            Input::Datagram {
                from: TRACKER,
                payload: &buf[..n],
            },
        );
        c.handle_input(
            now,
            Input::Received {
                conn: ConnId::outbound(round % 3),
                bytes: &buf[..n],
            },
        );
        while !matches!(t.poll_output(now), Output::Wait(_)) {}
        while !matches!(c.poll_output(now), Output::Wait(_)) {}
    }
}
