//! Single-node behaviour of the DHT machine: how it answers each KRPC query (BEP 5, 42, 44).
//! Lookups across many nodes are tested through the simulator in `tests/`, and against
//! libtorrent and aria2 in `node/tests/dht_interop.rs`.

extern crate std;
use super::*;
use crate::bencode::Encoder;
use std::format;
use std::vec::Vec as StdVec;

const ME: PeerAddr = PeerAddr::v4([10, 0, 0, 1], 6881);
const A: PeerAddr = PeerAddr::v4([10, 0, 0, 2], 6881);
const B: PeerAddr = PeerAddr::v4([10, 0, 0, 3], 7000);
const IH: Id = Id(*b"mnopqrstuvwxyz123456");

fn node() -> Dht<64, 4, 16, 4> {
    Dht::new(Config::default(), ME, 1)
}

fn drain(n: &mut Dht<64, 4, 16, 4>, now: Instant) -> StdVec<(PeerAddr, StdVec<u8>)> {
    let mut out = StdVec::new();
    loop {
        match n.poll_output(now) {
            Output::Transmit {
                to: Dest::Addr(to),
                payload,
            } => out.push((to, payload.to_vec())),
            Output::Wait(_) => return out,
            _ => {}
        }
    }
}

/// Sends `query` (method and the `a` dict's extra keys, already sorted and encoded) from
/// `from` with id `sender` and returns the one reply.
fn ask(n: &mut Dht<64, 4, 16, 4>, from: PeerAddr, method: &str, extra: &[u8]) -> StdVec<u8> {
    let mut buf = [0u8; 1400];
    let mut e = Encoder::new(&mut buf);
    e.dict().unwrap().bytes(b"a").unwrap().dict().unwrap();
    e.bytes(b"id").unwrap().bytes(&Id([9; 20]).0).unwrap();
    e.raw(extra).unwrap().end().unwrap();
    e.bytes(b"q").unwrap().str(method).unwrap();
    e.bytes(b"t").unwrap().bytes(b"tt").unwrap();
    e.bytes(b"y").unwrap().bytes(b"q").unwrap().end().unwrap();
    let len = e.len();
    n.handle_input(
        Instant::ZERO,
        Input::Datagram {
            from,
            payload: &buf[..len],
        },
    );
    let replies: StdVec<_> = drain(n, Instant::ZERO)
        .into_iter()
        .filter(|(to, p)| *to == from && (p.ends_with(b"1:y1:re") || p.ends_with(b"1:y1:ee")))
        .collect();
    assert_eq!(replies.len(), 1, "one reply to {method}");
    replies[0].1.clone()
}

fn response(bytes: &[u8]) -> wire::Response<'_> {
    match wire::decode(bytes).unwrap().body {
        Body::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

fn error_code(bytes: &[u8]) -> i64 {
    match wire::decode(bytes).unwrap().body {
        Body::Error { code, .. } => code,
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn bep5_ping_is_answered_with_our_id_and_bep42_ip_of_the_requester() {
    let mut n = node();
    let reply = ask(&mut n, A, "ping", b"");
    let m = wire::decode(&reply).unwrap();
    assert_eq!(m.tid, b"tt");
    assert_eq!(
        m.ip,
        Some(A),
        "BEP 42: the requester's address as we saw it"
    );
    assert_eq!(response(&reply).id, n.id());
    // An unknown querier that would fit in the table is pinged (BEP 5: only nodes that
    // answer enter the table).
    assert!(n.table().is_empty());
}

#[test]
fn bep5_announce_needs_the_token_given_to_that_ip_and_get_peers_returns_it() {
    let mut n = node();
    let get_peers = [&b"9:info_hash20:"[..], &IH.0].concat();
    let reply = ask(&mut n, A, "get_peers", &get_peers);
    let token = response(&reply).token.unwrap().to_vec();
    assert_eq!(token.len(), store::TOKEN_LEN);

    let announce = |port: &str, token: &[u8], implied: bool| {
        let mut a = StdVec::new();
        if implied {
            a.extend_from_slice(b"12:implied_porti1e");
        }
        a.extend_from_slice(b"9:info_hash20:");
        a.extend_from_slice(&IH.0);
        a.extend_from_slice(format!("4:porti{port}e5:token{}:", token.len()).as_bytes());
        a.extend_from_slice(token);
        a
    };
    // From another IP the token is refused (BEP 5: tokens are bound to the requester's IP).
    assert_eq!(
        error_code(&ask(
            &mut n,
            B,
            "announce_peer",
            &announce("1", &token, false)
        )),
        203
    );
    assert_eq!(
        error_code(&ask(
            &mut n,
            A,
            "announce_peer",
            &announce("1", b"nope", false)
        )),
        203
    );
    assert_eq!(n.stats().bad_tokens, 2);
    // From A it is accepted; implied_port takes the UDP source port instead of `port`.
    response(&ask(
        &mut n,
        A,
        "announce_peer",
        &announce("51413", &token, false),
    ));
    let token_b = response(&ask(&mut n, B, "get_peers", &get_peers))
        .token
        .unwrap()
        .to_vec();
    response(&ask(
        &mut n,
        B,
        "announce_peer",
        &announce("9", &token_b, true),
    ));
    assert_eq!(n.stored_peers(), 2);

    let reply = ask(&mut n, B, "get_peers", &get_peers);
    let values = response(&reply).values.unwrap();
    let mut peers: StdVec<PeerAddr> = wire::peers(&values).collect();
    peers.sort();
    assert_eq!(
        peers,
        [
            PeerAddr::v4([10, 0, 0, 2], 51413),
            PeerAddr::v4([10, 0, 0, 3], 7000)
        ]
    );
}

#[test]
fn bep44_immutable_put_and_get_with_token_and_size_limit() {
    let mut n = node();
    let target = item_target(b"12:Hello World!");
    let get = [&b"6:target20:"[..], &target.0].concat();
    let r = ask(&mut n, A, "get", &get);
    assert!(response(&r).value.is_none());
    let token = response(&r).token.unwrap().to_vec();
    let put = |token: &[u8], v: &[u8]| {
        [
            format!("5:token{}:", token.len()).as_bytes(),
            token,
            b"1:v",
            v,
        ]
        .concat()
    };
    response(&ask(&mut n, A, "put", &put(&token, b"12:Hello World!")));
    assert_eq!(n.item(target), Some(&b"12:Hello World!"[..]));
    let r = ask(&mut n, B, "get", &get);
    assert_eq!(response(&r).value, Some(&b"12:Hello World!"[..]));
    // Too big (BEP 44: v under 1000 bytes) and bad tokens are refused.
    let big = [&b"1001:"[..], &[b'x'; 1001]].concat();
    assert_eq!(error_code(&ask(&mut n, A, "put", &put(&token, &big))), 205);
    assert_eq!(
        error_code(&ask(&mut n, B, "put", &put(&token, b"1:x"))),
        203
    );
    assert_eq!(n.stored_items(), 1);
}

/// Makes `n` hear from a node: it queries `n`, `n` pings it back (BEP 5: only nodes that
/// answer enter the table), and it answers with `id`, saying it saw `n` at `seen` (BEP 42).
fn teach_seen(n: &mut Dht<64, 4, 16, 4>, from: PeerAddr, id: Id, seen: PeerAddr) {
    ask(n, from, "ping", b"");
    let pings: StdVec<u16> = n
        .pending
        .iter()
        .filter(|p| p.to == from)
        .map(|p| p.tid)
        .collect();
    for tid in pings {
        let mut buf = [0u8; 200];
        let len = wire::write_response(
            &mut buf,
            &tid.to_be_bytes(),
            id,
            seen,
            &OutResponse::default(),
        )
        .unwrap();
        n.handle_input(
            Instant::ZERO,
            Input::Datagram {
                from,
                payload: &buf[..len],
            },
        );
    }
}

fn teach(n: &mut Dht<64, 4, 16, 4>, from: PeerAddr, id: Id) {
    teach_seen(n, from, id, ME);
}

fn teach_many(n: &mut Dht<64, 4, 16, 4>, count: u8) {
    for i in 0..count {
        let mut id = Id::ZERO;
        id.0[0] = i * 12;
        teach(n, PeerAddr::v4([10, 1, 0, i], 6881), id);
    }
}

#[test]
fn find_node_returns_the_closest_nodes_it_knows_in_compact_form() {
    let mut n = node();
    teach_many(&mut n, 20);
    assert!(n.table().len() >= 8, "{}", n.table().len());
    let target = Id([0x30; 20]);
    let r = ask(
        &mut n,
        A,
        "find_node",
        &[&b"6:target20:"[..], &target.0].concat(),
    );
    let nodes: StdVec<(Id, PeerAddr)> = response(&r).nodes.iter().collect();
    assert_eq!(nodes.len(), 8);
    let mut all: StdVec<Id> = n.table().iter().map(|x| x.id).collect();
    all.sort_by_key(|id| id.xor(target));
    assert_eq!(
        nodes.iter().map(|(id, _)| *id).collect::<StdVec<_>>(),
        all[..8]
    );
}

#[test]
fn bad_input_is_counted_and_answered_only_when_it_is_a_query() {
    let mut n = node();
    for junk in [&b""[..], b"d", b"i-0e", b"d1:t2:aa1:y1:re", &[0xff; 64]] {
        n.handle_input(
            Instant::ZERO,
            Input::Datagram {
                from: A,
                payload: junk,
            },
        );
        assert!(drain(&mut n, Instant::ZERO).is_empty());
    }
    assert_eq!(n.stats().malformed, 5);
    // A query with a bad id gets error 203; an unknown method 204 (BEP 5).
    n.handle_input(
        Instant::ZERO,
        Input::Datagram {
            from: A,
            payload: b"d1:ad2:id3:abce1:q4:ping1:t2:tt1:y1:qe",
        },
    );
    let out = drain(&mut n, Instant::ZERO);
    assert_eq!(error_code(&out[0].1), 203);
    assert_eq!(error_code(&ask(&mut n, A, "sample_infohashes", b"")), 204);
    // A response nobody asked for is dropped.
    let mut buf = [0u8; 200];
    let len =
        wire::write_response(&mut buf, b"zz", Id([3; 20]), ME, &OutResponse::default()).unwrap();
    n.handle_input(
        Instant::ZERO,
        Input::Datagram {
            from: A,
            payload: &buf[..len],
        },
    );
    assert!(drain(&mut n, Instant::ZERO).is_empty());
    assert_eq!(n.stats().unexpected, 1);
}

#[test]
fn commands_validate_their_arguments() {
    let mut n = node();
    assert_eq!(n.bootstrap(Instant::ZERO, &[]), Err(CommandError::NoNodes));
    assert_eq!(
        n.put(Instant::ZERO, b"not bencode"),
        Err(CommandError::BadItem)
    );
    // No nodes yet: a lookup fails at once rather than hanging.
    let q = n.find_node(Instant::ZERO, IH).unwrap();
    match n.poll_output(Instant::ZERO) {
        Output::Event(Event::Failed { query, reason }) => {
            assert_eq!((query, reason), (q, Failure::NoNodes))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(n.poll_output(Instant::ZERO), Output::Wait(_)));
    assert_eq!(n.lookups(), 0);
}

#[test]
fn unanswered_requests_time_out_and_the_deadline_says_when() {
    let mut n = node();
    n.bootstrap(Instant::ZERO, &[A]).unwrap();
    let sent = drain(&mut n, Instant::ZERO);
    assert_eq!(sent.len(), 1);
    let Output::Wait(Some(deadline)) = n.poll_output(Instant::ZERO) else {
        panic!()
    };
    assert!(deadline <= Instant::ZERO + n.config().request_timeout);
    let later = Instant::ZERO + n.config().request_timeout;
    loop {
        if let Output::Wait(_) = n.poll_output(later) {
            break;
        }
    }
    assert_eq!(n.stats().timeouts, 1);
}

#[test]
fn a_lookup_keeps_at_most_alpha_requests_in_flight() {
    for alpha in [1, 3, 5] {
        let mut n: Dht<64, 4, 16, 4> = Dht::new(
            Config {
                alpha,
                ..Config::default()
            },
            ME,
            1,
        );
        teach_many(&mut n, 20);
        drain(&mut n, Instant::ZERO);
        n.find_node(Instant::ZERO, Id([0x40; 20])).unwrap();
        let sent = drain(&mut n, Instant::ZERO);
        assert_eq!(sent.len(), alpha, "alpha {alpha}");
        assert!(
            sent.iter()
                .all(|(_, p)| p.windows(11).any(|w| w == b"9:find_node"))
        );
    }
}

#[test]
fn an_empty_table_bootstraps_again_from_the_known_nodes() {
    let mut n = node();
    let q = n.bootstrap(Instant::ZERO, &[A]).unwrap();
    assert_eq!(drain(&mut n, Instant::ZERO).len(), 1);
    // A never answers: the bootstrap fails at the request timeout...
    let timeout = n.config().request_timeout;
    let mut t = Instant::ZERO + timeout;
    let mut failed = false;
    loop {
        match n.poll_output(t) {
            Output::Event(Event::Failed { query, reason }) => {
                assert_eq!((query, reason), (q, Failure::Unreachable));
                failed = true;
            }
            Output::Wait(_) => break,
            _ => {}
        }
    }
    assert!(failed);
    // ...and while the table is empty, the node asks its bootstrap nodes again.
    let mut again = 0;
    for _ in 0..30 {
        t = t + Duration::from_secs(1);
        again += drain(&mut n, t).iter().filter(|(to, _)| *to == A).count();
    }
    assert!(again >= 1, "re-bootstrapped {again} times");
}

#[test]
fn a_silent_node_is_pinged_for_liveness_and_dropped_when_bad() {
    let mut n = node();
    teach_many(&mut n, 10);
    drain(&mut n, Instant::ZERO);
    let victim = PeerAddr::v4([10, 1, 0, 0], 6881);
    // It goes silent: a liveness ping after a minute fails twice (failures_to_bad).
    let mut t = Instant::ZERO;
    for _ in 0..400 {
        t = t + Duration::from_secs(1);
        drain(&mut n, t);
        if !n.table().iter().any(|x| x.addr == victim) {
            break;
        }
    }
    assert!(
        !n.table().iter().any(|x| x.addr == victim),
        "silent node dropped"
    );
    assert!(n.stats().timeouts >= 2);
}

#[test]
fn bep42_a_new_id_when_responders_agree_on_a_public_address_it_does_not_match() {
    let mut n = node();
    let old = n.id();
    let public = PeerAddr::v4([81, 2, 3, 4], 6881);
    // Three responders (distinct IPs) report the same public address.
    for i in 0..3u8 {
        let mut id = Id::ZERO;
        id.0[0] = 0x80 | i;
        teach_seen(&mut n, PeerAddr::v4([10, 2, 0, i], 6881), id, public);
        if i < 2 {
            assert_eq!(n.id(), old, "two votes are not a majority of three");
        }
    }
    assert_ne!(n.id(), old);
    assert!(bep42::verify(n.id(), public.ip()));
    assert!(n.table().is_empty(), "a new id starts a new table");
    let mut saw = false;
    let mut rejoin = 0;
    loop {
        match n.poll_output(Instant::ZERO) {
            Output::Event(Event::NewId { id, external }) => {
                assert_eq!((id, external), (n.id(), public.ip()));
                saw = true;
            }
            Output::Transmit { payload, .. } => {
                rejoin += usize::from(payload.windows(11).any(|w| w == b"9:find_node"));
            }
            Output::Wait(_) => break,
            _ => {}
        }
    }
    assert!(saw);
    assert_eq!(rejoin, 3, "rejoins through the three nodes it knew");
    // Local addresses (loopback, private) never count: the id stays.
    let mut n = node();
    let old = n.id();
    for i in 0..3u8 {
        teach(&mut n, PeerAddr::v4([10, 2, 0, i], 6881), Id([i + 1; 20]));
    }
    assert_eq!(n.id(), old);
}

#[test]
fn a_lookup_reports_its_rounds_messages_and_elapsed_time() {
    let mut n = node();
    teach_many(&mut n, 3);
    drain(&mut n, Instant::ZERO);
    let q = n.find_node(Instant::ZERO, Id([0x40; 20])).unwrap();
    let asked = drain(&mut n, Instant::ZERO);
    assert_eq!(asked.len(), 3);
    let later = Instant::from_micros(30_000);
    let pending: StdVec<(PeerAddr, u16)> = n.pending.iter().map(|p| (p.to, p.tid)).collect();
    for (from, tid) in pending {
        // The id `teach_many` gave the node at this address.
        let mut id = Id::ZERO;
        let core::net::IpAddr::V4(ip) = from.ip() else {
            panic!("teach_many uses IPv4")
        };
        id.0[0] = ip.octets()[3] * 12;
        let mut buf = [0u8; 200];
        let len = wire::write_response(
            &mut buf,
            &tid.to_be_bytes(),
            id,
            ME,
            &OutResponse::default(),
        )
        .unwrap();
        n.handle_input(
            later,
            Input::Datagram {
                from,
                payload: &buf[..len],
            },
        );
    }
    let stats = loop {
        match n.poll_output(later) {
            Output::Event(Event::Nodes {
                query,
                nodes,
                stats,
                ..
            }) => {
                assert_eq!((query, nodes.len()), (q, 3));
                break stats;
            }
            Output::Wait(_) => panic!("no result"),
            _ => {}
        }
    };
    assert_eq!((stats.rounds, stats.messages, stats.failures), (1, 3, 0));
    assert_eq!(stats.elapsed, Duration::from_millis(30));
}
