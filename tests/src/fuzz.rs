//! The bodies of the fuzz targets in `fuzz/`, shared with the corpus replay test so that a
//! plain `cargo test` (stable, no sanitizers) re-runs every committed corpus input.

use overlay_core::chord::wire::{Body, Envelope, NodeRef, VERSION};
use overlay_core::chord::{Chord, Config, node_id, wire};
use overlay_core::{Dest, Duration, Id, Input, Instant, Machine, Output, PeerAddr};
use std::collections::VecDeque;

/// Chord's decoder: any input either fails to decode or decodes to an envelope whose
/// encoding decodes to the same envelope. (Bytes need not round-trip: postcard accepts
/// over-long varints, which the encoder never writes.)
pub fn chord_decode(data: &[u8]) {
    if let Ok(env) = wire::decode(data) {
        let mut buf = [0u8; 4096];
        let bytes = wire::encode(&env, &mut buf).expect("a decoded envelope re-encodes");
        assert!(
            bytes.len() <= data.len(),
            "the canonical encoding is never longer"
        );
        assert_eq!(
            wire::decode(bytes),
            Ok(env),
            "decode/encode/decode is not stable"
        );
    }
}

/// Bencode: any input either fails to decode or decodes to a value that re-encodes, element
/// by element, to exactly its raw bytes (integers and lengths are canonical and dict order
/// is kept). `decode` and `decode_prefix` agree, strict prefixes of a value are
/// `UnexpectedEnd`, and the lazy views agree with their iterators.
pub fn bencode(data: &[u8]) {
    use overlay_core::bencode::{self, Encoder, Error, Limits};
    let whole = bencode::decode(data);
    let prefix = bencode::decode_prefix(data, Limits::DEFAULT);
    match (whole, prefix) {
        (Ok(v), Ok((p, n))) => assert!(v == p && n == data.len()),
        (Err(Error::TrailingBytes), Ok((_, n))) => assert!(n < data.len()),
        (Err(e), Err(f)) => assert_eq!(e, f, "decode and decode_prefix disagree"),
        (w, p) => panic!("decode {w:?} but decode_prefix {p:?}"),
    }
    let Ok((value, n)) = prefix else { return };
    let mut buf = vec![0u8; n];
    let mut enc = Encoder::new(&mut buf);
    bencode_walk(value, &mut enc);
    let out = enc
        .finish()
        .expect("the re-encoding fits in the raw length");
    assert_eq!(out, value.raw(), "re-encoding differs from the raw bytes");
    assert_eq!(bencode::decode(out).map(|v| v.raw().len()), Ok(n));
    for cut in [0, n / 2, n - 1] {
        assert_eq!(
            bencode::decode_prefix(&data[..cut], Limits::DEFAULT).map(|(_, n)| n),
            Err(Error::UnexpectedEnd),
            "a strict prefix of a value is not UnexpectedEnd"
        );
    }
    let _ = format!("{value:?}");
}

/// Re-encodes `v` element by element, checking the views' lookups on the way.
fn bencode_walk(v: overlay_core::bencode::Value<'_>, enc: &mut overlay_core::bencode::Encoder<'_>) {
    use overlay_core::bencode::Kind;
    let fits = "the re-encoding fits in the raw length";
    match v.kind() {
        Kind::Int(i) => {
            assert_eq!(v.as_int(), Some(i));
            enc.int(i).expect(fits);
        }
        Kind::Bytes(b) => {
            assert_eq!(v.as_bytes(), Some(b));
            enc.bytes(b).expect(fits);
        }
        Kind::List(list) => {
            enc.list().expect(fits);
            let mut count = 0;
            for (i, item) in list.iter().enumerate() {
                assert_eq!(list.get(i), Some(item));
                bencode_walk(item, enc);
                count += 1;
            }
            assert_eq!(list.len(), count);
            assert_eq!(list.get(count), None);
            enc.end().expect(fits);
        }
        Kind::Dict(dict) => {
            enc.dict().expect(fits);
            let mut count = 0;
            for (key, item) in dict {
                let first = dict.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
                assert_eq!(dict.get(key), first, "get is the first entry with the key");
                enc.bytes(key).expect(fits);
                bencode_walk(item, enc);
                count += 1;
            }
            assert_eq!(dict.len(), count);
            enc.end().expect(fits);
        }
    }
}

/// A Chord node fed arbitrary datagrams, well-formed replies to its own requests,
/// commands and time steps. Each action byte picks what happens (`op % 8`):
///
/// * 0-2: a raw datagram from peer `op % 3`: a length byte, then that many bytes;
/// * 3: a reply to one of the node's recent requests (next byte: which one; the one after:
///   the reply's shape), with the right request id, so the fuzzer reaches the code behind
///   the id check (lookups, stabilize, puts and gets) and not only the parser;
/// * 4: time passes; 5: a lookup; 6: a put and a get; 7: join or leave.
///
/// The machine must never panic, must always drain to `Wait`, and must keep its invariants.
pub fn chord_machine(data: &[u8]) {
    const ME: PeerAddr = PeerAddr::v4([10, 0, 0, 1], 7000);
    let peers: [NodeRef; 6] = core::array::from_fn(|i| {
        let addr = PeerAddr::v4([10, 0, 0, 2 + i as u8], 7000);
        NodeRef {
            id: node_id(addr),
            addr,
        }
    });
    let mut node: Chord<8, 16> = Chord::new(Config::default(), ME, 7);
    let mut now = Instant::ZERO;
    let mut sent: VecDeque<(PeerAddr, Vec<u8>)> = VecDeque::new();
    // A high first bit makes the node a client of peer 0 instead of a ring of its own.
    let _ = match data.first().is_some_and(|b| b & 0x80 != 0) {
        true => node.client(peers[0].addr),
        false => node.create(now),
    };
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op % 8 {
            0..=2 => {
                let Some((&len, tail)) = rest.split_first() else {
                    break;
                };
                let (payload, tail) = tail.split_at((len as usize).min(tail.len()));
                rest = tail;
                let from = peers[op as usize % 3].addr;
                node.handle_input(now, Input::Datagram { from, payload });
            }
            3 => {
                let [pick, shape, tail @ ..] = rest else {
                    break;
                };
                rest = tail;
                if let Some((to, request)) = sent.get(*pick as usize % sent.len().max(1)) {
                    let mut buf = [0u8; 1400];
                    if let Some(reply) = reply_to(request, *shape, &peers, &mut buf) {
                        node.handle_input(
                            now,
                            Input::Datagram {
                                from: *to,
                                payload: reply,
                            },
                        );
                    }
                }
            }
            4 => now = now + Duration::from_millis(op as u64 * 10),
            5 => {
                let _ = node.lookup(
                    now,
                    Id::from_u64(op as u64).wrapping_add(Id::pow2(op as u32)),
                );
            }
            6 => {
                let _ = node.put(now, &[op], &[op; 3]);
                let _ = node.get(now, &[op]);
            }
            _ => {
                let _ = if op > 128 {
                    node.leave(now)
                } else {
                    node.join(now, peers[0].addr).map(|_| ())
                };
            }
        }
        drain(&mut node, now, &mut sent);
        let me = node.node();
        assert!(
            node.successors().iter().all(|s| s.addr != me.addr),
            "a node is its own successor"
        );
        assert!(node.successors().len() <= node.config().successors);
    }
}

/// A well-formed reply to `request` (a datagram the node sent), shaped by `shape`: which
/// reply variant, which peers it names, whether a store succeeded or a value is found.
fn reply_to<'b>(
    request: &[u8],
    shape: u8,
    peers: &[NodeRef; 6],
    buf: &'b mut [u8],
) -> Option<&'b [u8]> {
    let request = wire::decode(request).ok()?;
    let named: wire::NodeList = peers
        .iter()
        .enumerate()
        .filter(|(i, _)| shape & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    let yes = shape & 0x40 != 0;
    let body = match request.body {
        Body::FindSuccessor { rid, .. } if yes => Body::Successors { rid, nodes: named },
        Body::FindSuccessor { rid, .. } => Body::Closer {
            rid,
            nodes: named.iter().take(4).copied().collect(),
        },
        Body::GetState { rid } => Body::State {
            rid,
            predecessor: named.first().copied().filter(|_| yes),
            successors: named,
        },
        Body::Ping { rid } => Body::Pong { rid },
        Body::Store {
            rid, owner: true, ..
        } => Body::Stored { rid, stored: yes },
        Body::Fetch { rid, .. } => Body::Fetched {
            rid,
            value: yes.then_some(&b"fuzz"[..]),
        },
        _ => return None,
    };
    let sender = peers[(shape >> 7) as usize].id;
    let env = Envelope {
        version: VERSION,
        sender,
        body,
    };
    Some(wire::encode(&env, buf)?)
}

fn drain(node: &mut Chord<8, 16>, now: Instant, sent: &mut VecDeque<(PeerAddr, Vec<u8>)>) {
    for _ in 0..10_000 {
        match node.poll_output(now) {
            Output::Wait(_) => return,
            Output::Transmit {
                to: Dest::Addr(to),
                payload,
            } => {
                if sent.len() == 16 {
                    sent.pop_front();
                }
                sent.push_back((to, payload.to_vec()));
            }
            _ => {}
        }
    }
    panic!("the machine never drained to Wait");
}
