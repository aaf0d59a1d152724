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

/// Zave's rectify: a notifier that is not closer than the predecessor replaces it only if
/// the predecessor turns out dead; a live predecessor keeps its place.
#[test]
fn zave_rectify_replaces_a_dead_predecessor_with_a_waiting_notifier() {
    // Ids: A (the node) at 1000, P (predecessor) at 900, Q (notifier, farther) at 500.
    let (a, p, q) = (A, B, PeerAddr::v4([10, 0, 0, 3], 7000));
    for p_alive in [true, false] {
        let mut n: Chord = Chord::with_id(Config::default(), Id::from_u64(1000), a, 1);
        n.create(t(0)).unwrap();
        let p_node = NodeRef {
            id: Id::from_u64(900),
            addr: p,
        };
        let q_node = NodeRef {
            id: Id::from_u64(500),
            addr: q,
        };
        let notify = |from: NodeRef| {
            let env = Envelope {
                version: wire::VERSION,
                sender: from.id,
                body: Body::Notify,
            };
            let mut buf = [0u8; 64];
            wire::encode(&env, &mut buf).unwrap().to_vec()
        };
        n.handle_input(
            t(0),
            Input::Datagram {
                from: p,
                payload: &notify(p_node),
            },
        );
        drain(&mut n, t(0));
        assert_eq!(n.predecessor(), Some(p_node));
        n.handle_input(
            t(10),
            Input::Datagram {
                from: q,
                payload: &notify(q_node),
            },
        );
        let (mut sent, _) = drain(&mut n, t(10));
        // Q is not closer: the node pings P instead of switching.
        assert!(sent.iter().any(|(to, _)| *to == p), "P is pinged");
        assert_eq!(n.predecessor(), Some(p_node));
        // P, if alive, answers like a ring of two (its predecessor and successor are A);
        // time passes beyond three request timeouts.
        for ms in (20..=2500).step_by(10) {
            for (to, bytes) in &sent {
                if *to != p || !p_alive {
                    continue;
                }
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
                let reply = Envelope {
                    version: wire::VERSION,
                    sender: p_node.id,
                    body,
                };
                let mut buf = [0u8; 256];
                let reply = wire::encode(&reply, &mut buf).unwrap().to_vec();
                n.handle_input(
                    t(ms),
                    Input::Datagram {
                        from: p,
                        payload: &reply,
                    },
                );
            }
            sent = drain(&mut n, t(ms)).0;
        }
        let want = if p_alive { p_node } else { q_node };
        assert_eq!(n.predecessor(), Some(want), "p_alive = {p_alive}");
    }
}
