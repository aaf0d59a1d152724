//! Servent tests: real handshakes, floods and routes between machines wired together in
//! memory (a tiny stream network: every Transmit is delivered whole, in order).

extern crate std;
use super::wire::{self, HEADER_LEN, Header, Kind, Payload};
use super::*;
use crate::machine::{ConnId, Dest, Input, Machine, Output};
use crate::{Duration, Instant, PeerAddr, QueryId};
use std::collections::{BTreeMap, VecDeque};
use std::vec::Vec;

type Node = Servent<&'static [SharedFile<'static>], 8, 4096, 256, 16384>;

const SONG: SharedFile<'static> = SharedFile {
    index: 7,
    size: 5000,
    name: b"Free_Software-Song.ogg",
    sha1: Some([0x5a; 20]),
};
const MANUAL: SharedFile<'static> = SharedFile {
    index: 2,
    size: 300,
    name: b"gnutella protocol manual.txt",
    sha1: None,
};
static ONLY_SONG: [SharedFile<'static>; 1] = [SONG];
static ONLY_MANUAL: [SharedFile<'static>; 1] = [MANUAL];
static NOTHING: [SharedFile<'static>; 0] = [];

fn addr(i: usize) -> PeerAddr {
    PeerAddr::v4([10, 0, 0, i as u8 + 1], 6346)
}

/// A hit as seen: at which node, for which search, hops, (index, name) of each result,
/// and where to download.
type SeenHit = (usize, QueryId, u8, Vec<(u32, Vec<u8>)>, PeerAddr);

/// What a test saw come out of the machines.
#[derive(Default, Debug)]
struct Seen {
    hits: Vec<SeenHit>,
    connected: Vec<(usize, PeerAddr, Role)>,
    closed: Vec<(usize, PeerAddr, CloseReason)>,
    uploads: Vec<(usize, ConnId, u32, u64, u64)>,
    pushes: Vec<(usize, u32, PeerAddr)>,
    /// Bytes written on connections that are not between two servents (a raw client).
    raw: BTreeMap<ConnId, Vec<u8>>,
}

/// Servents joined by in-memory streams.
struct Net {
    nodes: Vec<Node>,
    now: Instant,
    /// (node, its conn) -> (other node, other's conn).
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    queue: VecDeque<(usize, Input<'static>, Vec<u8>)>,
    next_inbound: u64,
    seen: Seen,
    /// Transmissions per node.
    sent: Vec<u64>,
    /// Headers of the descriptors delivered: (from, to, header).
    frames: Vec<(usize, usize, Header)>,
}

impl Net {
    fn new(configs: &[(Role, &'static [SharedFile<'static>])]) -> Self {
        let nodes = configs
            .iter()
            .enumerate()
            .map(|(i, &(role, lib))| Node::new(Config::new(role, addr(i)), lib, i as u64 + 1))
            .collect();
        Net {
            nodes,
            now: Instant::ZERO,
            links: BTreeMap::new(),
            queue: VecDeque::new(),
            next_inbound: 0,
            seen: Seen::default(),
            sent: std::vec![0; configs.len()],
            frames: Vec::new(),
        }
    }

    fn drain(&mut self, i: usize) {
        loop {
            let now = self.now;
            match self.nodes[i].poll_output(now) {
                Output::Transmit {
                    to: Dest::Conn(c),
                    payload,
                } => {
                    self.sent[i] += 1;
                    match self.links.get(&(i, c)) {
                        Some(&(j, jc)) => {
                            if !payload.starts_with(b"GNUTELLA")
                                && let Ok(Some(f)) = wire::frame(payload)
                            {
                                self.frames.push((i, j, f.header));
                            }
                            self.queue.push_back((
                                j,
                                Input::Received {
                                    conn: jc,
                                    bytes: &[],
                                },
                                payload.to_vec(),
                            ));
                        }
                        None => self
                            .seen
                            .raw
                            .entry(c)
                            .or_default()
                            .extend_from_slice(payload),
                    }
                }
                Output::Transmit { .. } => panic!("gnutella sends no datagrams"),
                Output::Connect { conn, peer } => {
                    let j = (0..self.nodes.len()).find(|&j| addr(j) == peer);
                    match j {
                        Some(j) => {
                            let jc = ConnId::inbound(self.next_inbound);
                            self.next_inbound += 1;
                            self.links.insert((i, conn), (j, jc));
                            self.links.insert((j, jc), (i, conn));
                            self.queue.push_back((
                                j,
                                Input::Accepted {
                                    conn: jc,
                                    peer: PeerAddr::v4([10, 0, 0, i as u8 + 1], 40000),
                                },
                                Vec::new(),
                            ));
                            self.queue
                                .push_back((i, Input::Connected { conn }, Vec::new()));
                        }
                        None => self
                            .queue
                            .push_back((i, Input::Closed { conn }, Vec::new())),
                    }
                }
                Output::Close { conn } => {
                    if let Some((j, jc)) = self.links.remove(&(i, conn)) {
                        self.links.remove(&(j, jc));
                        self.queue
                            .push_back((j, Input::Closed { conn: jc }, Vec::new()));
                    }
                }
                Output::Event(e) => record(&mut self.seen, i, e),
                Output::Wait(_) => return,
            }
        }
    }
}

fn record(seen: &mut Seen, i: usize, e: Event<'_>) {
    match e {
        Event::Hits { query, hops, hit } => {
            let files = hit
                .hits
                .iter()
                .map(|h| (h.index, h.name.to_vec()))
                .collect();
            let from = PeerAddr::v4(hit.ip, hit.port);
            seen.hits.push((i, query, hops, files, from));
        }
        Event::Connected { peer, role, .. } => seen.connected.push((i, peer, role)),
        Event::Closed { peer, reason, .. } => seen.closed.push((i, peer, reason)),
        Event::Upload {
            conn,
            index,
            start,
            len,
        } => seen.uploads.push((i, conn, index, start, len)),
        Event::Push { index, addr } => seen.pushes.push((i, index, addr)),
    }
}

impl Net {
    /// Delivers everything queued, draining after each input.
    fn settle(&mut self) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
        while let Some((j, input, bytes)) = self.queue.pop_front() {
            let input = match input {
                Input::Received { conn, .. } => Input::Received {
                    conn,
                    bytes: &bytes,
                },
                other => other,
            };
            self.nodes[j].handle_input(self.now, input);
            self.drain(j);
        }
    }

    fn connect(&mut self, from: usize, to: usize) {
        self.nodes[from].connect(self.now, addr(to)).unwrap();
        self.settle();
    }

    fn search(&mut self, from: usize, criteria: &str) -> QueryId {
        let q = self.nodes[from]
            .search(self.now, criteria.as_bytes(), None)
            .unwrap();
        self.settle();
        q
    }

    fn stats(&self) -> Stats {
        let mut t = Stats::default();
        for n in &self.nodes {
            let s = n.stats();
            t.queries_received += s.queries_received;
            t.queries_sent += s.queries_sent;
            t.duplicates += s.duplicates;
            t.queries_filtered += s.queries_filtered;
            t.hits_forwarded += s.hits_forwarded;
        }
        t
    }
}

/// `handshaking_0.6` section 2: CONNECT, 200, 200, then messages; both ends report the
/// other, ultrapeers as ultrapeers and leaves as leaves.
#[test]
fn handshake_brings_up_both_ends() {
    let mut net = Net::new(&[(Role::Ultrapeer, &NOTHING), (Role::Leaf, &ONLY_SONG)]);
    net.connect(1, 0);
    let mut c = net.seen.connected.clone();
    c.sort_by_key(|x| x.0);
    // The ultrapeer knows the leaf by its Listen-IP, not its ephemeral port.
    assert_eq!(c, [(0, addr(1), Role::Leaf), (1, addr(0), Role::Ultrapeer)]);
    assert_eq!(net.nodes[0].peers().count(), 1);
}

/// `ultra-peers` section 3.2: a shielded leaf refuses incoming servents with 503.
#[test]
fn a_leaf_refuses_to_be_dialled() {
    let mut net = Net::new(&[(Role::Ultrapeer, &NOTHING), (Role::Leaf, &NOTHING)]);
    net.connect(0, 1);
    assert_eq!(net.seen.closed, [(0, addr(1), CloseReason::Refused(503))]);
    assert_eq!(net.nodes[1].stats().refused, 1);
    assert_eq!(net.nodes[1].peers().count(), 0);
}

/// A chain 0 - 1 - 2 - 3 of ultrapeers: a query from 0 reaches 3 with TTL 3 (hops 0, 1,
/// 2 on arrival) and its hit comes back along the reverse path (0.6 draft section 2.2.3).
#[test]
fn query_floods_with_ttl_and_hits_return_by_reverse_path() {
    let lib: [&'static [SharedFile<'static>]; 4] = [&NOTHING, &NOTHING, &NOTHING, &ONLY_SONG];
    let mut net = Net::new(&lib.map(|l| (Role::Ultrapeer, l)));
    net.connect(1, 0);
    net.connect(2, 1);
    net.connect(3, 2);
    net.nodes[0].set_query_ttl(3);
    let q = net.search(0, "free song");
    assert_eq!(net.seen.hits.len(), 1);
    let (at, query, hops, files, from) = &net.seen.hits[0];
    assert_eq!((*at, *query, *hops), (0, q, 2));
    assert_eq!(files, &[(7, b"Free_Software-Song.ogg".to_vec())]);
    assert_eq!(*from, addr(3));
    let s = net.stats();
    assert_eq!(s.queries_received, 3);
    assert_eq!(s.hits_forwarded, 2);
    // One hop short: TTL 2 stops at node 2.
    net.nodes[0].set_query_ttl(2);
    net.search(0, "free song");
    assert_eq!(net.seen.hits.len(), 1, "no new hit");
    assert_eq!(net.stats().queries_received, 3 + 2);
}

/// A triangle: every node gets the query twice and drops the second copy by GUID.
#[test]
fn duplicates_are_dropped_by_guid() {
    let mut net = Net::new(&[
        (Role::Ultrapeer, &NOTHING),
        (Role::Ultrapeer, &NOTHING),
        (Role::Ultrapeer, &ONLY_SONG),
    ]);
    net.connect(1, 0);
    net.connect(2, 1);
    net.connect(2, 0);
    net.search(0, "song");
    let s = net.stats();
    // 0 sends to 1 and 2; each forwards to the other (and not back to 0).
    assert_eq!(s.queries_received, 4);
    assert_eq!(s.duplicates, 2);
    assert_eq!(net.seen.hits.len(), 1, "one hit: node 2 answers once");
}

/// Leaves are shielded by QRP: the ultrapeer passes a query only to the leaf whose table
/// may match, and the hit comes back through it.
#[test]
fn ultrapeer_routes_to_leaves_by_qrp() {
    let mut net = Net::new(&[
        (Role::Ultrapeer, &NOTHING),
        (Role::Leaf, &ONLY_SONG),
        (Role::Leaf, &ONLY_MANUAL),
        (Role::Leaf, &NOTHING),
    ]);
    net.connect(1, 0);
    net.connect(2, 0);
    net.connect(3, 0);
    let q = net.search(3, "gnutella manual");
    let hits: Vec<_> = net.seen.hits.iter().map(|h| (h.0, h.1, h.4)).collect();
    assert_eq!(hits, [(3, q, addr(2))]);
    let up = net.nodes[0].stats();
    assert_eq!(up.queries_to_leaves, 1, "only the manual's leaf");
    assert_eq!(up.queries_filtered, 1, "the song's leaf is skipped");
    assert_eq!(net.nodes[1].stats().queries_received, 0);
}

/// A query that arrives with TTL + hops above the maximum is cut down, not obeyed.
#[test]
fn excessive_ttl_is_lowered() {
    let lib: [&'static [SharedFile<'static>]; 3] = [&NOTHING, &NOTHING, &NOTHING];
    let mut net = Net::new(&lib.map(|l| (Role::Ultrapeer, l)));
    net.connect(1, 0);
    net.connect(2, 1);
    // A raw query from node 0 to node 1 claiming TTL 200.
    let conn = net.nodes[0].peers().next().unwrap().0;
    let header = Header {
        guid: [3; 16],
        kind: Kind::Query,
        ttl: 200,
        hops: 6,
        len: 0,
    };
    let q = Payload::Query(wire::Query {
        min_speed: 0,
        criteria: b"x",
        extensions: wire::Extensions::default(),
    });
    let mut buf = [0u8; 64];
    let n = wire::write_message(&mut buf, &header.guid, header.ttl, header.hops, &q).unwrap();
    let (j, jc) = net.links[&(0, conn)];
    net.nodes[j].handle_input(
        net.now,
        Input::Received {
            conn: jc,
            bytes: &buf[..n],
        },
    );
    net.drain(j);
    // hops 6 + TTL 200 is cut to TTL 1: node 1 answers but forwards nothing.
    assert_eq!(net.nodes[1].stats().queries_sent, 0);
    assert_eq!(net.nodes[1].stats().queries_received, 1);
}

/// HUGE section 6.1: `GET /uri-res/N2R?urn:sha1:...` is answered on the servent's port with
/// the file's head and an upload the driver streams; the connection closes after it.
#[test]
fn http_get_by_sha1_is_served() {
    let mut node = Node::new(Config::new(Role::Leaf, addr(0)), &ONLY_SONG, 1);
    let conn = ConnId::inbound(9);
    let now = Instant::ZERO;
    node.handle_input(
        now,
        Input::Accepted {
            conn,
            peer: addr(5),
        },
    );
    let mut req = [0u8; 256];
    let mut w = http::get_sha1(&mut req, &[0x5a; 20]);
    w.header("Range", "bytes=100-").unwrap();
    let n = w.finish().unwrap();
    node.handle_input(
        now,
        Input::Received {
            conn,
            bytes: &req[..n],
        },
    );
    let mut head = Vec::new();
    let mut upload = None;
    loop {
        match node.poll_output(now) {
            Output::Transmit { payload, .. } => head.extend_from_slice(payload),
            Output::Event(Event::Upload {
                index, start, len, ..
            }) => upload = Some((index, start, len)),
            Output::Wait(_) => break,
            o => panic!("unexpected {o:?}"),
        }
    }
    assert_eq!(upload, Some((7, 100, 4900)));
    let (resp, _) = http::parse_response(&head, http::Limits::DEFAULT)
        .unwrap()
        .unwrap();
    assert_eq!(resp.code, 206);
    assert_eq!(resp.content_length().unwrap(), Some(4900));
    assert_eq!(resp.content_urn().unwrap(), Some([0x5a; 20]));
    assert_eq!(
        node.upload(now, conn, &[0; 5000]),
        Err(UploadError::TooMuch)
    );
    node.upload(now, conn, &[1; 4000]).unwrap();
    node.upload(now, conn, &[2; 900]).unwrap();
    let mut body = 0;
    let mut closed = false;
    loop {
        match node.poll_output(now) {
            Output::Transmit { payload, .. } => body += payload.len(),
            Output::Close { .. } => closed = true,
            Output::Wait(_) => break,
            o => panic!("unexpected {o:?}"),
        }
    }
    assert_eq!((body, closed), (4900, true));
    assert_eq!(node.upload(now, conn, &[0]), Err(UploadError::NoUpload));
}

/// A handshake that never finishes is closed after `handshake_timeout`.
#[test]
fn stalled_handshakes_time_out() {
    let mut node = Node::new(Config::new(Role::Ultrapeer, addr(0)), &NOTHING, 1);
    let conn = ConnId::inbound(1);
    node.handle_input(
        Instant::ZERO,
        Input::Accepted {
            conn,
            peer: addr(3),
        },
    );
    let Output::Wait(Some(t)) = node.poll_output(Instant::ZERO) else {
        panic!("a deadline")
    };
    assert_eq!(t, Instant::ZERO + Duration::from_secs(20));
    assert!(matches!(node.poll_output(t), Output::Close { conn: c } if c == conn));
}

/// Sends `payload` as a descriptor from node `from` to its neighbour on `conn`, as raw
/// bytes (for messages a servent never originates itself).
fn inject(net: &mut Net, from: usize, conn: ConnId, guid: [u8; 16], ttl: u8, p: &Payload<'_>) {
    let mut buf = [0u8; 512];
    let n = wire::write_message(&mut buf, &guid, ttl, 0, p).unwrap();
    let (j, jc) = net.links[&(from, conn)];
    net.nodes[j].handle_input(
        net.now,
        Input::Received {
            conn: jc,
            bytes: &buf[..n],
        },
    );
    net.drain(j);
    net.settle();
}

/// Push (0.6 draft section 2.2.5): routed by servent id along the path its query hit
/// took, to the servent that sent the hit, which reports it.
#[test]
fn push_follows_the_query_hit_path_to_its_servent() {
    let lib: [&'static [SharedFile<'static>]; 3] = [&NOTHING, &NOTHING, &ONLY_SONG];
    let mut net = Net::new(&lib.map(|l| (Role::Ultrapeer, l)));
    net.connect(1, 0);
    net.connect(2, 1);
    net.search(0, "song");
    assert_eq!(net.seen.hits.len(), 1);
    let servent = net.nodes[2].servent_id();
    let conn = net.nodes[0].peers().next().unwrap().0;
    let push = Payload::Push(wire::Push {
        servent_id: servent,
        index: 7,
        ip: [10, 0, 0, 1],
        port: 6346,
        extensions: wire::Extensions::default(),
    });
    inject(&mut net, 0, conn, [9; 16], 7, &push);
    assert_eq!(net.seen.pushes, [(2, 7, addr(0))]);
    assert_eq!(net.nodes[1].stats().pushes_forwarded, 1);
    // A push for a servent nobody has seen a hit from goes nowhere.
    let lost = Payload::Push(wire::Push {
        servent_id: [0x42; 16],
        index: 1,
        ip: [10, 0, 0, 1],
        port: 6346,
        extensions: wire::Extensions::default(),
    });
    inject(&mut net, 0, conn, [10; 16], 7, &lost);
    assert_eq!(net.nodes[1].stats().unrouted, 1);
    assert_eq!(net.seen.pushes.len(), 1);
}

/// `ping-pong`: a ping is answered from the pong cache, never relayed (every ping on
/// the wire has hops 0); the first one finds the cache expired and refreshes it by pinging
/// the neighbours, whose pongs are cached and multiplexed back to the asker with the
/// asker's GUID and their hop counts; a second ping within T is throttled.
#[test]
fn pings_are_answered_from_the_pong_cache() {
    let lib: [&'static [SharedFile<'static>]; 4] = [&NOTHING, &NOTHING, &ONLY_SONG, &NOTHING];
    let mut net = Net::new(&lib.map(|l| (Role::Ultrapeer, l)));
    // A line 0 - 1 - 2 - 3.
    net.connect(0, 1);
    net.connect(2, 1);
    net.connect(3, 2);
    let conn = net.nodes[0].peers().next().unwrap().0;
    let ping = Payload::Ping(wire::Ping {
        extensions: wire::Extensions::default(),
    });
    inject(&mut net, 0, conn, [1; 16], 7, &ping);
    let pings: Vec<_> = net
        .frames
        .iter()
        .filter(|f| f.2.kind == Kind::Ping)
        .collect();
    assert!(pings.len() > 1, "refresh pings went out");
    assert!(pings.iter().all(|f| f.2.hops == 0), "no ping is relayed");
    assert!(!pings.iter().any(|f| f.2.guid == [1; 16]), "nor ours");
    // Answers to our ping: node 1's own pong (hops 0), node 2's (hops 1) and node 3's
    // (hops 2), each multiplexed as it arrived at 1 in answer to 1's refresh ping (node 2
    // refreshed its own cache from 3 the same way).
    let mut answers: Vec<u8> = net
        .frames
        .iter()
        .filter(|f| f.2.kind == Kind::Pong && f.2.guid == [1; 16] && f.1 == 0)
        .map(|f| f.2.hops)
        .collect();
    answers.sort();
    assert_eq!(answers, [0, 1, 2]);
    assert!(net.nodes[1].known_hosts() >= 1);
    // Within T: throttled (the refresh pings of the first round may have been too).
    let throttled = net.nodes[1].stats().pings_throttled;
    inject(&mut net, 0, conn, [2; 16], 7, &ping);
    assert_eq!(net.nodes[1].stats().pings_throttled, throttled + 1);
    assert!(
        !net.frames
            .iter()
            .any(|f| f.2.guid == [2; 16] && f.2.kind == Kind::Pong)
    );
    // After T: answered again.
    net.now = net.now + Duration::from_secs(3);
    inject(&mut net, 0, conn, [3; 16], 7, &ping);
    let again = net
        .frames
        .iter()
        .filter(|f| f.2.kind == Kind::Pong && f.2.guid == [3; 16] && f.1 == 0)
        .count();
    assert!(again >= 1);
}

/// A leaf is shielded: it answers what its ultrapeer passes down and routes nothing, even
/// with two ultrapeers (it would otherwise bridge them).
#[test]
fn leaves_never_route() {
    let mut net = Net::new(&[
        (Role::Ultrapeer, &NOTHING),
        (Role::Ultrapeer, &NOTHING),
        (Role::Leaf, &NOTHING),
    ]);
    net.connect(2, 0);
    net.connect(2, 1);
    let conn = net.nodes[0].peers().find(|p| p.2 == Role::Leaf).unwrap().0;
    let q = Payload::Query(wire::Query {
        min_speed: 0,
        criteria: b"anything",
        extensions: wire::Extensions::default(),
    });
    inject(&mut net, 0, conn, [4; 16], 5, &q);
    assert_eq!(net.nodes[2].stats().queries_received, 1);
    assert_eq!(net.nodes[2].stats().queries_sent, 0);
    assert_eq!(net.nodes[1].stats().queries_received, 0);
}

/// Bad input (the contract): a payload that does not decode is dropped and counted, the
/// connection stays; a hit nobody asked for is unrouted; a message longer than the
/// receive buffer cannot be framed and closes the connection; Bye closes it too.
#[test]
fn bad_messages_are_dropped_counted_or_close_the_link() {
    let mut net = Net::new(&[(Role::Ultrapeer, &NOTHING), (Role::Ultrapeer, &NOTHING)]);
    net.connect(1, 0);
    let conn = net.nodes[1].peers().next().unwrap().0;
    let (j, jc) = net.links[&(1, conn)];
    // A pong of 3 bytes (it needs 14).
    let mut bad = Header {
        guid: [5; 16],
        kind: Kind::Pong,
        ttl: 1,
        hops: 0,
        len: 3,
    }
    .to_bytes()
    .to_vec();
    bad.extend_from_slice(&[1, 2, 3]);
    net.nodes[j].handle_input(
        net.now,
        Input::Received {
            conn: jc,
            bytes: &bad,
        },
    );
    net.drain(j);
    assert_eq!(net.nodes[0].stats().malformed, 1);
    assert_eq!(net.nodes[0].peers().count(), 1);
    // An unsolicited query hit.
    let mut buf = [0u8; 128];
    let mut w = wire::QueryHitWriter::new(&mut buf, &[6; 16], 3, 0, 6346, [1, 2, 3, 4], 0);
    w.hit(1, 10, b"x", b"").unwrap();
    let n = w.finish(None, &[8; 16]).unwrap();
    net.nodes[j].handle_input(
        net.now,
        Input::Received {
            conn: jc,
            bytes: &buf[..n],
        },
    );
    net.drain(j);
    assert_eq!(net.nodes[0].stats().unrouted, 1);
    // A 5000-byte query: over the 4096-byte buffer but within the protocol's 64 KiB. It
    // is skipped as it streams in, and the ping after it is read.
    let big = Header {
        guid: [7; 16],
        kind: Kind::Query,
        ttl: 1,
        hops: 0,
        len: 5000,
    };
    let mut stream = big.to_bytes().to_vec();
    stream.resize(stream.len() + 5000, b'a');
    let mut ping = [0u8; 64];
    let n = wire::write_message(
        &mut ping,
        &[8; 16],
        1,
        0,
        &Payload::Ping(wire::Ping {
            extensions: wire::Extensions::default(),
        }),
    )
    .unwrap();
    stream.extend_from_slice(&ping[..n]);
    for chunk in stream.chunks(1500) {
        net.nodes[j].handle_input(
            net.now,
            Input::Received {
                conn: jc,
                bytes: chunk,
            },
        );
        net.drain(j);
    }
    let s0 = net.nodes[0].stats();
    assert_eq!(
        (s0.oversized, s0.queries_received, s0.pings_received),
        (1, 0, 1)
    );
    assert_eq!(net.nodes[0].peers().count(), 1);
    // A header announcing more than 64 KiB cannot be framed: the link closes.
    let huge = Header { len: 70_000, ..big };
    net.nodes[j].handle_input(
        net.now,
        Input::Received {
            conn: jc,
            bytes: &huge.to_bytes(),
        },
    );
    net.drain(j);
    net.settle();
    assert_eq!(net.nodes[0].peers().count(), 0);
    assert!(
        net.seen
            .closed
            .contains(&(0, addr(1), CloseReason::Protocol))
    );
    assert!(net.seen.closed.contains(&(1, addr(0), CloseReason::Remote)));
}

/// Many results are split into query hits of at most 2 KiB, `max_results` in all, and
/// every one is routed back.
#[test]
fn many_results_are_split_into_several_hits() {
    let names: &'static [std::string::String] = std::vec::Vec::leak(
        (0..40)
            .map(|i| std::format!("a long file name of song number {i:02} in the collection.ogg"))
            .collect(),
    );
    let files: &'static [SharedFile<'static>] = std::vec::Vec::leak(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| SharedFile {
                index: i as u32,
                size: 1000,
                name: n.as_bytes(),
                sha1: Some(core::array::from_fn(|k| (k * 7 + i) as u8)),
            })
            .collect(),
    );
    let mut net = Net::new(&[(Role::Ultrapeer, &NOTHING), (Role::Ultrapeer, files)]);
    net.connect(1, 0);
    net.search(0, "song collection");
    let hits: Vec<_> = net
        .frames
        .iter()
        .filter(|f| f.2.kind == Kind::QueryHit)
        .collect();
    assert!(hits.len() >= 2, "split");
    assert!(hits.iter().all(|f| HEADER_LEN + f.2.len as usize <= 2048));
    let results: usize = net.seen.hits.iter().map(|h| h.3.len()).sum();
    assert_eq!(results, 32, "max_results");
    assert_eq!(net.seen.hits.len(), hits.len());
}

#[test]
fn bye_and_disconnect_close_both_ends() {
    let mut net = Net::new(&[(Role::Ultrapeer, &NOTHING), (Role::Ultrapeer, &NOTHING)]);
    net.connect(1, 0);
    let conn = net.nodes[1].peers().next().unwrap().0;
    net.nodes[1].disconnect(net.now, conn);
    net.drain(1);
    net.settle();
    let mut closed = net.seen.closed.clone();
    closed.sort_by_key(|c| c.0);
    // Node 0 read the Bye (code 200) before the stream closed.
    assert_eq!(
        closed,
        [
            (0, addr(1), CloseReason::Bye(200)),
            (1, addr(0), CloseReason::Local)
        ]
    );
}

/// A search by `urn:sha1:` (HUGE section 4) finds the file whatever its name, and passes
/// QRP because leaves put their files' URNs in their tables.
#[test]
fn search_by_sha1_reaches_the_leaf_that_has_it() {
    let mut net = Net::new(&[
        (Role::Ultrapeer, &NOTHING),
        (Role::Leaf, &ONLY_SONG),
        (Role::Leaf, &ONLY_MANUAL),
        (Role::Leaf, &NOTHING),
    ]);
    for leaf in 1..4 {
        net.connect(leaf, 0);
    }
    let q = net.nodes[3]
        .search(net.now, b"", Some(&[0x5a; 20]))
        .unwrap();
    net.settle();
    let hits: Vec<_> = net.seen.hits.iter().map(|h| (h.1, h.4)).collect();
    assert_eq!(hits, [(q, addr(1))]);
    assert_eq!(net.nodes[0].stats().queries_to_leaves, 1);
}

#[test]
fn commands_refuse_what_they_cannot_do() {
    let mut node = Node::new(Config::new(Role::Leaf, addr(0)), &NOTHING, 1);
    let now = Instant::ZERO;
    assert_eq!(
        node.search(now, b"song", None),
        Err(servent::CommandError::NotConnected)
    );
    assert!(matches!(
        node.search(now, b"a\0b", None),
        Err(servent::CommandError::Invalid(_))
    ));
    for _ in 0..8 {
        node.connect(now, addr(1)).unwrap();
    }
    assert_eq!(node.connect(now, addr(1)), Err(servent::CommandError::Full));
}

/// The RAM table of docs/gnutella.md: `cargo test -p overlay-core --lib ram_table --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn ram_table() {
    use core::mem::size_of;
    type L = &'static [SharedFile<'static>];
    std::println!(
        "| `Servent<L, 8, 2048, 64, 8192>` | {} |",
        size_of::<Servent<L, 8, 2048, 64, 8192>>()
    );
    std::println!(
        "| `Servent<L>` = `<L, 32, 4096, 1024, 65536>` | {} |",
        size_of::<Servent<L>>()
    );
    std::println!(
        "| `Servent<L, 64, 4096, 4096, 65536>` (the `overlay` host) | {} |",
        size_of::<Servent<L, 64, 4096, 4096, 65536>>()
    );
    std::println!(
        "| a leaf's QRP table (per link) | {} |",
        size_of::<qrp::QueryRouteTable>()
    );
}
