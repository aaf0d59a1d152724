//! Single-node behaviour of the Chord machine. Multi-node behaviour (rings, failures, the
//! paper's figures) is tested through the simulator in `tests/`.

use super::*;

const A: PeerAddr = PeerAddr::v4([10, 0, 0, 1], 7000);
const B: PeerAddr = PeerAddr::v4([10, 0, 0, 2], 7000);

fn t(ms: u64) -> Instant {
    Instant::from_micros(ms * 1000)
}

/// Everything the node wants to send and report now, as owned values.
fn drain(
    n: &mut Chord,
    now: Instant,
) -> (
    std::vec::Vec<(PeerAddr, std::vec::Vec<u8>)>,
    std::vec::Vec<std::string::String>,
) {
    let (mut sent, mut events) = (std::vec::Vec::new(), std::vec::Vec::new());
    for _ in 0..1000 {
        match n.poll_output(now) {
            Output::Transmit {
                to: Dest::Addr(a),
                payload,
            } => sent.push((a, payload.to_vec())),
            Output::Event(e) => events.push(std::format!("{e:?}")),
            Output::Wait(_) => return (sent, events),
            other => panic!("unexpected output {other:?}"),
        }
    }
    panic!("poll_output never returned Wait");
}

extern crate std;

#[test]
fn a_lone_node_owns_every_key_and_serves_put_and_get_locally() {
    let mut n: Chord = Chord::new(Config::default(), A, 1);
    n.create(t(0)).unwrap();
    let put = n.put(t(0), b"k", b"v").unwrap();
    let (sent, events) = drain(&mut n, t(0));
    assert!(sent.is_empty());
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with(&std::format!("PutDone {{ query: {put:?}")));
    n.get(t(0), b"k").unwrap();
    let (_, events) = drain(&mut n, t(0));
    assert!(events[0].contains("value: Some([118])"), "{events:?}");
    n.get(t(0), b"missing").unwrap();
    let (_, events) = drain(&mut n, t(0));
    assert!(events[0].contains("value: None"), "{events:?}");
}

#[test]
fn malformed_and_foreign_input_is_counted_not_obeyed() {
    let mut n: Chord = Chord::new(Config::default(), A, 1);
    n.create(t(0)).unwrap();
    for junk in [&[][..], &[1], &[2, 0, 0], &[1; 300], &[0xff; 40]] {
        n.handle_input(
            t(1),
            Input::Datagram {
                from: B,
                payload: junk,
            },
        );
    }
    n.handle_input(
        t(1),
        Input::Received {
            conn: crate::ConnId::inbound(1),
            bytes: b"x",
        },
    );
    let s = n.stats();
    assert_eq!(s.received, 5);
    assert_eq!(s.malformed + s.wrong_version, 5);
    assert_eq!(s.wrong_version, 2);
    assert_eq!(s.unexpected, 1);
    assert!(n.successors().is_empty() && n.predecessor().is_none());
}

#[test]
fn commands_before_joining_are_refused_with_typed_errors() {
    let mut n: Chord = Chord::new(Config::default(), A, 1);
    assert_eq!(n.lookup(t(0), Id::ZERO), Err(CommandError::NotMember));
    assert_eq!(n.leave(t(0)), Err(CommandError::NotMember));
    n.create(t(0)).unwrap();
    assert_eq!(n.create(t(0)), Err(CommandError::AlreadyMember));
    assert_eq!(n.join(t(0), B), Err(CommandError::AlreadyMember));
    let big = [0u8; 65];
    assert_eq!(n.put(t(0), b"k", &big), Err(CommandError::ValueTooLarge));
}

#[test]
fn join_asks_the_bootstrap_and_fails_cleanly_when_it_never_answers() {
    let mut n: Chord = Chord::new(Config::default(), A, 1);
    let q = n.join(t(0), B).unwrap();
    let (sent, _) = drain(&mut n, t(0));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, B);
    let env = wire::decode(&sent[0].1).unwrap();
    assert!(matches!(env.body, Body::FindSuccessor { key, .. } if key == n.node().id));
    // Each timeout retransmits the same request, `request_retries` (2) times...
    assert_eq!(drain(&mut n, t(600)).0, sent);
    assert_eq!(drain(&mut n, t(1200)).0, sent);
    // ...then the join fails and the node is idle again.
    let (sent, events) = drain(&mut n, t(1800));
    assert!(sent.is_empty());
    assert_eq!(
        events,
        [std::format!(
            "{:?}",
            Event::Failed {
                query: q,
                key: n.node().id,
                reason: Failure::Unreachable
            }
        )]
    );
    assert_eq!(n.phase(), Phase::Idle);
}

#[test]
fn same_seed_same_inputs_same_outputs() {
    let run = || {
        let mut n: Chord = Chord::new(Config::default(), A, 42);
        n.join(t(0), B).unwrap();
        drain(&mut n, t(0)).0
    };
    assert_eq!(run(), run());
}

#[test]
fn node_ids_are_sha256_of_the_canonical_address() {
    assert_eq!(node_id(A), Id::sha256(&[10, 0, 0, 1, 0x1b, 0x58]));
}

/// The bytes `sender` would send.
fn from_node(sender: NodeRef, body: Body<'_>) -> std::vec::Vec<u8> {
    let env = Envelope {
        version: wire::VERSION,
        sender: sender.id,
        body,
    };
    let mut buf = [0u8; 1400];
    wire::encode(&env, &mut buf).unwrap().to_vec()
}

/// Lets time pass from `from_ms` to `to_ms` in 10 ms steps. Peers in `alive` answer the
/// node's pings and stabilize queries as a ring of two would; the others are silent.
fn run_with_peers(n: &mut Chord, mut sent: Sent, alive: &[NodeRef], from_ms: u64, to_ms: u64) {
    for ms in (from_ms..=to_ms).step_by(10) {
        for (to, bytes) in &sent {
            let Some(peer) = alive.iter().find(|p| p.addr == *to) else {
                continue;
            };
            let me = n.node();
            let body = match wire::decode(bytes).unwrap().body {
                Body::Ping { rid } => Body::Pong { rid },
                Body::GetState { rid } => Body::State {
                    rid,
                    predecessor: Some(me),
                    successors: [me].into_iter().collect(),
                },
                _ => continue,
            };
            n.handle_input(
                t(ms),
                Input::Datagram {
                    from: peer.addr,
                    payload: &from_node(*peer, body),
                },
            );
        }
        sent = drain(n, t(ms)).0;
    }
}

type Sent = std::vec::Vec<(PeerAddr, std::vec::Vec<u8>)>;

/// A ring member at id 1000 (address `A`), alone so far.
fn member_at_1000() -> Chord {
    let mut n: Chord = Chord::with_id(Config::default(), Id::from_u64(1000), A, 1);
    n.create(t(0)).unwrap();
    n
}

/// Delivers `body` from `from` at `ms` and returns what the node sends in response.
fn receive(n: &mut Chord, ms: u64, from: NodeRef, body: Body<'_>) -> Sent {
    let payload = from_node(from, body);
    n.handle_input(
        t(ms),
        Input::Datagram {
            from: from.addr,
            payload: &payload,
        },
    );
    drain(n, t(ms)).0
}

fn peer(id: u64, last_octet: u8) -> NodeRef {
    NodeRef {
        id: Id::from_u64(id),
        addr: PeerAddr::v4([10, 0, 0, last_octet], 7000),
    }
}

/// Zave's rectify: a notifier that is not closer than the predecessor replaces it only if
/// the predecessor turns out dead; a live predecessor keeps its place.
#[test]
fn zave_rectify_replaces_a_dead_predecessor_with_a_waiting_notifier() {
    // The node at 1000; P (predecessor) at 900; Q (a farther notifier) at 500.
    let (p, q) = (peer(900, 2), peer(500, 3));
    for p_alive in [true, false] {
        let mut n = member_at_1000();
        receive(&mut n, 0, p, Body::Notify);
        assert_eq!(n.predecessor(), Some(p));
        let sent = receive(&mut n, 10, q, Body::Notify);
        // Q is not closer: the node pings P instead of switching.
        assert!(sent.iter().any(|(to, _)| *to == p.addr), "P is pinged");
        assert_eq!(n.predecessor(), Some(p));
        let alive: &[NodeRef] = if p_alive { &[p] } else { &[] };
        run_with_peers(&mut n, sent, alive, 20, 2500);
        let want = if p_alive { p } else { q };
        assert_eq!(n.predecessor(), Some(want), "p_alive = {p_alive}");
    }
}

/// A ping to a former predecessor says nothing about the current one: its timeout must not
/// let a waiting notifier replace a live, closer predecessor.
#[test]
fn zave_rectify_ignores_the_death_of_a_former_predecessor() {
    // The node at 1000; P at 900 (will die), Y at 500 (farther), Q at 950 (closer, alive).
    let (p, y, q) = (peer(900, 2), peer(500, 3), peer(950, 4));
    let mut n = member_at_1000();
    let mut sent = Sent::new();
    for (ms, who) in [(0, p), (10, y), (20, q), (30, y)] {
        sent.extend(receive(&mut n, ms, who, Body::Notify));
    }
    assert_eq!(n.predecessor(), Some(q));
    run_with_peers(&mut n, sent, &[q], 40, 2500);
    assert_eq!(n.predecessor(), Some(q));
}

/// A driver that does not drain gets `Busy`, not silently lost results.
#[test]
fn commands_are_refused_when_results_are_not_drained() {
    let mut n: Chord = Chord::new(Config::default(), A, 1);
    n.create(t(0)).unwrap();
    let mut accepted = 0;
    while n.lookup(t(0), Id::from_u64(accepted)).is_ok() {
        accepted += 1;
        assert!(accepted <= 64, "never refused");
    }
    assert_eq!(n.put(t(0), b"k", b"v"), Err(CommandError::Busy));
    let (_, events) = drain(&mut n, t(0));
    assert_eq!(events.len() as u64, accepted);
    assert!(n.put(t(0), b"k", b"v").is_ok());
    assert_eq!(n.stats().dropped, 0);
}

/// A put that fell back to this node because the owner (its predecessor) did not answer in
/// time is acknowledged and also copied to the predecessor, so the owner ends up holding it.
#[test]
fn a_fallback_put_is_copied_to_the_predecessor() {
    let (p, client) = (peer(900, 2), peer(5000, 3));
    let mut n = member_at_1000();
    receive(&mut n, 0, p, Body::Notify);
    // Key 850 is owned by P (it lies in (pred of P, 900]), not by this node.
    let store = Body::Store {
        rid: 7,
        key: Id::from_u64(850),
        value: b"v",
        owner: true,
    };
    let sent = receive(&mut n, 1, client, store);
    let bodies: std::vec::Vec<_> = sent
        .iter()
        .map(|(to, b)| (*to, wire::decode(b).unwrap().body))
        .collect();
    assert!(bodies.contains(&(
        client.addr,
        Body::Stored {
            rid: 7,
            stored: true
        }
    )));
    let copy = Body::Store {
        rid: 0,
        key: Id::from_u64(850),
        value: b"v",
        owner: false,
    };
    assert!(bodies.contains(&(p.addr, copy)), "{bodies:?}");
}
