//! The bodies of the fuzz targets in `fuzz/`, shared with the corpus replay test so that a
//! plain `cargo test` (stable, no sanitizers) re-runs every committed corpus input.

use overlay_core::chord::wire::{Body, Envelope, NodeRef, VERSION};
use overlay_core::chord::{Chord, Config, node_id, wire};
use overlay_core::dht::{self, Dht};
use overlay_core::{
    ConnId, Dest, Duration, Id, Input, Instant, Machine, Output, PeerAddr, QueryId,
};
use std::collections::{HashSet, VecDeque};

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

// ----- Mainline DHT -----

/// KRPC, the Mainline DHT's wire format: any input either fails to decode or decodes to a
/// message whose fields, re-encoded with the node's own `write_query` / `write_response` /
/// `write_error`, decode to the same fields. (Bytes need not round-trip: the decoder skips
/// unknown keys and reads the first of duplicate ones.) The encoders report a buffer that is
/// too short; they never panic on one.
pub fn krpc(data: &[u8]) {
    use dht::config::MAX_K;
    use dht::wire::{self, Body, OutQuery, OutResponse, Query, Want};
    let msg = match wire::decode(data) {
        Ok(msg) => msg,
        Err(e) => {
            let _ = format!("{e:?}");
            return;
        }
    };
    let _ = format!("{msg:?}");
    // Everything re-encoded comes from `data`, but for at most MAX_K nodes of each family
    // and the fixed keys around it.
    let mut buf = vec![0u8; 2 * data.len() + 2048];
    let fits = "the re-encoding fits in twice the input";
    match msg.body {
        Body::Query {
            sender,
            read_only,
            want: _,
            query,
        } => {
            let out = match query {
                Query::Ping => OutQuery::Ping,
                Query::FindNode { target } => OutQuery::FindNode(target),
                Query::GetPeers { info_hash } => OutQuery::GetPeers(info_hash),
                Query::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port,
                    token,
                } => OutQuery::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port,
                    token,
                },
                Query::Get { target } => OutQuery::Get(target),
                Query::Put {
                    token,
                    value,
                    mutable: false,
                } => OutQuery::Put { token, value },
                // The node never sends mutable puts or unknown methods.
                Query::Put { .. } | Query::Unknown { .. } => return,
            };
            let write = |buf: &mut [u8]| wire::write_query(buf, msg.tid, sender, read_only, &out);
            let n = write(&mut buf).expect(fits);
            krpc_short_buffers(n, write);
            let again = wire::decode(&buf[..n]).expect("a re-encoded query decodes");
            assert_eq!(again.tid, msg.tid);
            assert_eq!(again.version, Some(&wire::VERSION[..]));
            assert!(again.ip.is_none(), "a query has no BEP 42 ip");
            let Body::Query {
                sender: s,
                read_only: r,
                want: w,
                query: q,
            } = again.body
            else {
                panic!("a query re-encodes as {:?}", again.body);
            };
            assert_eq!((s, r, q), (sender, read_only, query), "query fields differ");
            assert_eq!(w, Want::default(), "write_query sends no want");
        }
        Body::Response(r) => {
            let v4: Vec<_> = r.nodes.iter().take(MAX_K).collect();
            let v6: Vec<_> = r.nodes6.iter().take(MAX_K).collect();
            assert!(v4.iter().all(|(_, a)| !a.is_v6()) && v6.iter().all(|(_, a)| a.is_v6()));
            let nodes: Vec<_> = v4.iter().chain(&v6).copied().collect();
            let values: Vec<PeerAddr> = r.values.iter().flat_map(|l| wire::peers(l)).collect();
            let requester = msg.ip.unwrap_or(PeerAddr::v4([192, 0, 2, 1], 6881));
            let fields = OutResponse {
                nodes: &nodes,
                want: Want { v4: true, v6: true },
                token: r.token,
                values: &values,
                value: r.value,
            };
            let write =
                |buf: &mut [u8]| wire::write_response(buf, msg.tid, r.id, requester, &fields);
            let n = write(&mut buf).expect(fits);
            krpc_short_buffers(n, write);
            let again = wire::decode(&buf[..n]).expect("a re-encoded response decodes");
            assert_eq!(again.tid, msg.tid);
            assert_eq!(again.version, Some(&wire::VERSION[..]));
            assert_eq!(again.ip, Some(requester), "BEP 42 ip differs");
            let Body::Response(s) = again.body else {
                panic!("a response re-encodes as {:?}", again.body);
            };
            assert_eq!(s.id, r.id);
            assert!(s.nodes.iter().eq(v4), "nodes differ");
            assert!(s.nodes6.iter().eq(v6), "nodes6 differ");
            assert_eq!(s.values.is_some(), !values.is_empty());
            assert!(
                s.values.iter().flat_map(|l| wire::peers(l)).eq(values),
                "values differ"
            );
            assert_eq!(s.token, r.token, "token differs");
            assert_eq!(s.value, r.value, "v differs");
        }
        Body::Error { code, message } => {
            let Ok(text) = core::str::from_utf8(message) else {
                return;
            };
            let write = |buf: &mut [u8]| wire::write_error(buf, msg.tid, code, text);
            let n = write(&mut buf).expect(fits);
            krpc_short_buffers(n, write);
            let again = wire::decode(&buf[..n]).expect("a re-encoded error decodes");
            assert_eq!(again.tid, msg.tid);
            let Body::Error {
                code: c,
                message: m,
            } = again.body
            else {
                panic!("an error re-encodes as {:?}", again.body);
            };
            assert_eq!((c, m), (code, message), "error fields differ");
        }
    }
}

/// An encoding of `n` bytes fits a buffer of exactly `n` and is refused, not panicked on,
/// by shorter ones.
fn krpc_short_buffers(
    n: usize,
    write: impl Fn(&mut [u8]) -> Result<usize, overlay_core::bencode::BufferFull>,
) {
    assert_eq!(write(&mut vec![0; n]), Ok(n), "an exact buffer is refused");
    for cut in [0, n / 2, n - 1] {
        assert!(write(&mut vec![0; cut]).is_err(), "{cut} bytes hold {n}");
    }
}

/// The node the DHT target drives: small capacities, so the fuzzer reaches the limits (a
/// full table, both lookup slots busy, full stores).
type FuzzDht = Dht<32, 2, 8, 2>;
const DHT_TABLE: usize = 32;
const DHT_LOOKUPS: usize = 2;
const DHT_ME: PeerAddr = PeerAddr::v4([10, 0, 0, 1], 6881);
/// Nodes the fuzzed node may hear of; the first `DHT_SENDERS` also send it datagrams.
const DHT_UNIVERSE: usize = 64;
const DHT_SENDERS: usize = 6;

/// Universe node `i`'s address: mostly IPv4, one in eight IPv6 (BEP 32), one IP each.
fn dht_addr(i: usize) -> PeerAddr {
    let i = (i % DHT_UNIVERSE) as u8;
    if i % 8 == 5 {
        PeerAddr::v6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, i], 6881)
    } else {
        PeerAddr::v4([10, 0, 1, i], 6881)
    }
}

/// A query the node sent: where, its transaction id, and for a `get` its target.
struct DhtSent {
    to: PeerAddr,
    tid: Vec<u8>,
    get: Option<Id>,
}

/// The driver of the DHT target: the node, the clock, what the node sent and what it told,
/// and the figures its invariants are checked against.
struct DhtRun {
    node: FuzzDht,
    now: Instant,
    /// The universe's ids: node `i` shares `i % 10` leading bits with ours (the last 24
    /// share 0 or 1), so the far buckets overflow and ours splits.
    ids: [Id; DHT_UNIVERSE],
    /// The node's queries not answered yet, oldest first.
    sent: VecDeque<DhtSent>,
    /// The last write token the node gave each sender.
    tokens: Vec<(PeerAddr, Vec<u8>)>,
    /// BEP 44 items known to exist (put by commands), to answer `get`s with.
    items: Vec<Vec<u8>>,
    deadline: Option<Instant>,
    stats: dht::Stats,
    datagrams: u64,
    transmits: u64,
    reported: HashSet<QueryId>,
}

/// A Mainline DHT node (`Dht<32, 2, 8, 2>`) fed arbitrary datagrams, well-formed KRPC
/// queries and responses to its own queries, commands and time. The first byte picks the
/// configuration (bit 7: K = 1 + bits 0-2 and alpha 1 or 3 by bit 3; bit 4: no IP
/// restriction; bits 5 and 6: read-only). Then each action byte picks what happens
/// (`op % 8`):
///
/// * 0-1: a raw datagram from sender `(op >> 3) % 6`: a length byte, then that many bytes;
/// * 2: time passes (next byte `b`: `b² × 100` ms, up to 1.8 hours);
/// * 3: a response to one of the node's outstanding queries (next byte: which one; the one
///   after: its shape, see `DhtRun::answer`; bit 5 keeps the query outstanding, for a
///   duplicate answer), with the node's transaction id, sent from where the query went, so
///   the fuzzer gets past the transaction check;
/// * 4: a well-formed query from a sender (next two bytes: sender, method, id, target and
///   token, which is the one the node gave that sender unless a bit spoils it);
/// * 5: a command (next two bytes; a put of a string takes that many more bytes);
/// * 6: every outstanding query answered (next byte: the shape), which drives lookups to
///   their store phase and their end;
/// * 7: odd inputs (next byte): time jumps to the node's deadline, stream input, an
///   oversized datagram, a query from port 0.
///
/// The node must never panic and must drain to `Wait` within 10 000 outputs after every
/// step. Its counters never decrease and count exactly the datagrams fed and sent; it never
/// runs more than 2 lookups or holds more than 32 nodes, and never itself or an id twice;
/// every datagram it sends is KRPC; commands are refused as busy exactly when both lookup
/// slots are taken; each command is reported once, with results within their bounds.
pub fn dht_machine(data: &[u8]) {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let mut config = dht::Config::default();
    if cfg & 0x80 != 0 {
        config.k = 1 + (cfg & 7) as usize;
        config.alpha = if cfg & 8 != 0 { 1 } else { 3 };
    }
    config.restrict_ips = cfg & 0x10 == 0;
    config.read_only = cfg & 0x60 == 0x60;
    let mut run = DhtRun::new(config);
    run.drain();
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op % 8 {
            0 | 1 => {
                let Some((&len, tail)) = rest.split_first() else {
                    break;
                };
                let (payload, tail) = tail.split_at((len as usize).min(tail.len()));
                rest = tail;
                run.deliver(dht_addr((op >> 3) as usize % DHT_SENDERS), payload);
            }
            2 => {
                let Some((&b, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                run.now = run.now + Duration::from_millis(b as u64 * b as u64 * 100);
                run.drain();
            }
            3 => {
                let [pick, shape, tail @ ..] = rest else {
                    break;
                };
                rest = tail;
                if !run.sent.is_empty() {
                    let i = *pick as usize % run.sent.len();
                    let q = if shape & 0x20 != 0 {
                        // Kept: a second answer to it is a duplicate.
                        let q = &run.sent[i];
                        DhtSent {
                            to: q.to,
                            tid: q.tid.clone(),
                            get: q.get,
                        }
                    } else {
                        run.sent.remove(i).unwrap()
                    };
                    run.answer(&q, *shape, *pick);
                }
            }
            4 => {
                let [sel, arg, tail @ ..] = rest else {
                    break;
                };
                rest = tail;
                run.query(*sel, *arg);
            }
            5 => {
                let [sel, arg, tail @ ..] = rest else {
                    break;
                };
                rest = tail;
                let (bytes, tail) = match sel & 7 {
                    5 | 6 => rest.split_at((*arg as usize).min(rest.len())),
                    _ => (&[][..], rest),
                };
                rest = tail;
                run.command(*sel, *arg, bytes);
            }
            6 => {
                let Some((&shape, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                let all = core::mem::take(&mut run.sent);
                for (i, q) in all.iter().enumerate() {
                    run.answer(q, shape & !0x20, (i as u8).wrapping_mul(37) ^ shape);
                }
            }
            _ => {
                let Some((&b, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                run.odd(b);
            }
        }
    }
}

impl DhtRun {
    fn new(config: dht::Config) -> Self {
        let node = FuzzDht::new(config, DHT_ME, 7);
        let own = node.id();
        let ids = core::array::from_fn(|i| {
            let prefix = if i < 40 { i % 10 } else { i % 2 } as u32;
            let noise = Id::from_u64((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            own.xor(Id::pow2(159 - prefix).xor(noise))
        });
        DhtRun {
            node,
            now: Instant::ZERO,
            ids,
            sent: VecDeque::new(),
            tokens: Vec::new(),
            items: vec![b"4:fuzz".to_vec()],
            deadline: None,
            stats: dht::Stats::default(),
            datagrams: 0,
            transmits: 0,
            reported: HashSet::new(),
        }
    }

    fn deliver(&mut self, from: PeerAddr, payload: &[u8]) {
        self.datagrams += 1;
        self.node
            .handle_input(self.now, Input::Datagram { from, payload });
        self.drain();
    }

    /// The id that answers from `addr`.
    fn id_at(&self, addr: PeerAddr) -> Id {
        (0..DHT_UNIVERSE)
            .find(|&i| dht_addr(i) == addr)
            .map(|i| self.ids[i])
            .unwrap_or_else(|| Id::sha256(addr.to_string().as_bytes()))
    }

    /// An id to look up or ask about, by `arg`: a known item's target, one of three info
    /// hashes, our own id, or a universe node's.
    fn target(&self, arg: u8) -> Id {
        let n = arg as usize / 4;
        match arg % 4 {
            0 => dht::item_target(&self.items[n % self.items.len()]),
            1 => Id::sha256(&[(n % 3) as u8]),
            2 => self.node.id(),
            _ => self.ids[n % DHT_UNIVERSE],
        }
    }

    /// Answers the node's query `q`, shaped by `shape`'s bits: 0 a token (1 + `pick % 24`
    /// bytes: sometimes too long to keep), 1 `values` (1 to 64 peers), 2 `v` (the item a
    /// `get` asked for if known, else a wrong one), 3 an error instead, 4 our own id as
    /// the responder's, 6 a BEP 42 `ip` other than ours, 7 sent from the wrong address.
    /// `pick` picks the nodes returned (0 to 7 of the universe) and the rest.
    fn answer(&mut self, q: &DhtSent, shape: u8, pick: u8) {
        let from = if shape & 0x80 != 0 {
            dht_addr(pick as usize)
        } else {
            q.to
        };
        let mut buf = [0u8; 1500];
        let n = if shape & 0x08 != 0 {
            dht::wire::write_error(&mut buf, &q.tid, 201 + (pick % 5) as i64, "fuzz")
        } else {
            let id = if shape & 0x10 != 0 {
                self.node.id()
            } else {
                self.id_at(q.to)
            };
            let start = (pick >> 3) as usize * 2;
            let nodes: Vec<(Id, PeerAddr)> = (start..start + (pick & 7) as usize)
                .map(|i| (self.ids[i % DHT_UNIVERSE], dht_addr(i)))
                .collect();
            let token = [pick; 24];
            let responder = (0..DHT_UNIVERSE)
                .find(|&i| dht_addr(i) == q.to)
                .unwrap_or(99);
            let values: Vec<PeerAddr> = match shape & 0x02 {
                0 => Vec::new(),
                _ => (0..=pick % 64)
                    .map(|j| {
                        let port = if j == 0 && pick & 0x80 != 0 { 0 } else { 6881 };
                        PeerAddr::v4([10, 9, responder as u8, j], port)
                    })
                    .collect(),
            };
            let value = match (shape & 0x04, q.get) {
                (0, _) => None,
                (_, Some(target)) => Some(
                    self.items
                        .iter()
                        .find(|v| dht::item_target(v) == target)
                        .map_or(&b"4:nope"[..], |v| v),
                ),
                (_, None) => Some(&b"4:nope"[..]),
            };
            let requester = if shape & 0x40 != 0 {
                PeerAddr::v4([203, 0, 113, pick & 3], 6881)
            } else {
                DHT_ME
            };
            let fields = dht::wire::OutResponse {
                nodes: &nodes,
                want: dht::wire::Want { v4: true, v6: true },
                token: (shape & 0x01 != 0).then_some(&token[..1 + pick as usize % 24]),
                values: &values,
                value,
            };
            dht::wire::write_response(&mut buf, &q.tid, id, requester, &fields)
        };
        if let Ok(n) = n {
            self.deliver(from, &buf[..n]);
        }
    }

    /// A well-formed query from sender `sel & 7 % 6`: method by bits 3-5 (ping, find_node,
    /// get_peers, announce_peer, get, put, announce_peer with implied port, read-only
    /// ping), sender id by bits 6-7 (the sender's, a new one near ours, or ours); `arg`
    /// picks the target and port, and its bit 7 spoils the token.
    fn query(&mut self, sel: u8, arg: u8) {
        use dht::wire::OutQuery;
        let who = (sel & 7) as usize % DHT_SENDERS;
        let from = dht_addr(who);
        let own = self.node.id();
        let sender = match sel >> 6 {
            0 | 1 => self.ids[who],
            2 => own.xor(Id::pow2(arg as u32 % 160)),
            _ => own,
        };
        let target = self.target(arg);
        let token = match self.tokens.iter().find(|(a, _)| *a == from) {
            Some((_, t)) if arg & 0x80 == 0 => t.clone(),
            _ => b"bogus".to_vec(),
        };
        let value = self.items[arg as usize % self.items.len()].clone();
        let method = (sel >> 3) & 7;
        let query = match method {
            0 | 7 => OutQuery::Ping,
            1 => OutQuery::FindNode(target),
            2 => OutQuery::GetPeers(target),
            3 | 6 => OutQuery::AnnouncePeer {
                info_hash: target,
                port: (arg as u16).wrapping_mul(97),
                implied_port: method == 6,
                token: &token,
            },
            4 => OutQuery::Get(target),
            _ => OutQuery::Put {
                token: &token,
                value: &value,
            },
        };
        let mut buf = [0u8; 1500];
        let n = dht::wire::write_query(&mut buf, &[sel, arg], sender, method == 7, &query)
            .expect("a query fits a datagram");
        self.deliver(from, &buf[..n]);
    }

    /// A command by `sel & 7`: bootstrap from the senders in `arg`'s bits, find_node,
    /// get_peers, announce (bit 7: implied port) or get of `target(arg)`, put of `bytes` as
    /// a string, put of `bytes` as they are, put of a string of 990 to 999 bytes (too big
    /// past 996).
    fn command(&mut self, sel: u8, arg: u8, bytes: &[u8]) {
        use dht::CommandError;
        let (now, target) = (self.now, self.target(arg));
        let busy = self.node.lookups() == DHT_LOOKUPS;
        let r = match sel & 7 {
            0 => {
                let from: Vec<PeerAddr> = (0..DHT_SENDERS)
                    .filter(|i| arg & (1 << i) != 0)
                    .map(dht_addr)
                    .collect();
                self.node.bootstrap(now, &from)
            }
            1 => self.node.find_node(now, target),
            2 => self.node.get_peers(now, target),
            3 => {
                let port = (sel & 0x80 == 0).then_some((arg as u16).wrapping_mul(257));
                self.node.announce(now, target, port)
            }
            4 => self.node.get(now, target),
            op => {
                let value = match op {
                    5 => [format!("{}:", bytes.len()).as_bytes(), bytes].concat(),
                    6 => bytes.to_vec(),
                    _ => {
                        let n = 990 + arg as usize % 10;
                        [format!("{n}:").as_bytes(), &vec![arg; n]].concat()
                    }
                };
                let r = self.node.put(now, &value);
                if let Ok((_, target)) = r {
                    assert!(!busy, "a third lookup started");
                    assert_eq!(target, dht::item_target(&value));
                    assert_eq!(self.node.item(target), Some(&value[..]), "a put is kept");
                    if !self.items.contains(&value) {
                        if self.items.len() == 8 {
                            self.items.remove(1);
                        }
                        self.items.push(value);
                    }
                } else {
                    assert!(busy || r == Err(CommandError::BadItem), "{r:?}");
                }
                self.drain();
                return;
            }
        };
        match r {
            Err(CommandError::Busy) => assert!(busy, "busy with a free lookup slot"),
            Err(CommandError::NoNodes) => assert!(sel & 7 == 0 && arg & 0x3f == 0),
            Err(e) => panic!("{e:?}"),
            Ok(_) => assert!(!busy, "a third lookup started"),
        }
        self.drain();
    }

    /// Odd inputs, by `b % 4`: time jumps to the node's deadline; stream input (the DHT
    /// speaks datagrams only); a datagram over 1500 bytes; a ping from port 0.
    fn odd(&mut self, b: u8) {
        match b % 4 {
            0 => {
                if let Some(t) = self.deadline.filter(|t| *t > self.now) {
                    self.now = t;
                }
                self.drain();
            }
            1 => {
                let conn = ConnId::inbound(b as u64);
                self.node
                    .handle_input(self.now, Input::Received { conn, bytes: &[b] });
                self.drain();
            }
            2 => self.deliver(dht_addr(b as usize % DHT_SENDERS), &[b'd'; 1501]),
            _ => {
                let mut buf = [0u8; 128];
                let ping = dht::wire::OutQuery::Ping;
                let n = dht::wire::write_query(&mut buf, b"pz", self.ids[1], false, &ping)
                    .expect("a ping fits");
                self.deliver(PeerAddr::v4([10, 0, 2, b], 0), &buf[..n]);
            }
        }
    }

    /// Polls the node until `Wait`, checking every output, then the invariants.
    fn drain(&mut self) {
        use dht::Event;
        use dht::wire::{Body, Query};
        let k = self.node.config().k;
        for _ in 0..10_000 {
            match self.node.poll_output(self.now) {
                Output::Wait(deadline) => {
                    self.deadline = deadline;
                    self.check();
                    return;
                }
                Output::Transmit { to, payload } => {
                    self.transmits += 1;
                    let Dest::Addr(to) = to else {
                        panic!("a DHT node writes to a stream");
                    };
                    assert!(payload.len() <= 1500, "a datagram of {}", payload.len());
                    let msg = dht::wire::decode(payload).unwrap_or_else(|e| {
                        panic!("sent {:?}: {e:?}", String::from_utf8_lossy(payload))
                    });
                    match msg.body {
                        Body::Query { query, .. } => {
                            if self.sent.len() == 64 {
                                self.sent.pop_front();
                            }
                            self.sent.push_back(DhtSent {
                                to,
                                tid: msg.tid.to_vec(),
                                get: match query {
                                    Query::Get { target } => Some(target),
                                    _ => None,
                                },
                            });
                        }
                        Body::Response(r) => {
                            if let Some(token) = r.token {
                                self.tokens.retain(|(a, _)| *a != to);
                                self.tokens.push((to, token.to_vec()));
                            }
                        }
                        Body::Error { .. } => {}
                    }
                }
                Output::Event(e) => {
                    let query = match e {
                        Event::Bootstrapped { query, nodes } => {
                            assert!(nodes <= DHT_TABLE);
                            query
                        }
                        Event::Nodes { query, nodes, .. } => {
                            assert!(nodes.len() <= k, "{} nodes", nodes.len());
                            query
                        }
                        Event::Peers { query, peers, .. } => {
                            assert!(peers.len() <= dht::config::MAX_PEERS_RESULT);
                            assert!(peers.iter().all(|p| p.port() != 0), "a peer at port 0");
                            query
                        }
                        Event::Item {
                            query,
                            target,
                            value,
                            ..
                        } => {
                            if let Some(v) = value {
                                assert_eq!(dht::item_target(v), target, "a wrong item");
                            }
                            query
                        }
                        Event::Announced { query, stored, .. }
                        | Event::Stored { query, stored, .. } => {
                            assert!(stored as usize <= k, "stored at {stored} of K = {k}");
                            query
                        }
                        Event::Failed { query, .. } => query,
                        Event::NewId { id, external } => {
                            assert!(
                                dht::bep42::verify(id, external),
                                "a new id that fails BEP 42"
                            );
                            continue;
                        }
                    };
                    assert!(self.reported.insert(query), "{query:?} reported twice");
                }
                other => panic!("a DHT node asks for {other:?}"),
            }
        }
        panic!("the DHT never drained to Wait");
    }

    fn check(&mut self) {
        let (old, new) = (self.stats, self.node.stats());
        let fields = |s: dht::Stats| {
            [
                s.received,
                s.sent,
                s.malformed,
                s.unexpected,
                s.answered,
                s.timeouts,
                s.errors,
                s.bad_tokens,
                s.dropped,
            ]
        };
        assert!(
            fields(old).iter().zip(fields(new)).all(|(o, n)| n >= *o),
            "a counter decreased: {old:?} to {new:?}"
        );
        assert_eq!(new.received, self.datagrams, "datagrams received");
        assert_eq!(new.sent, self.transmits, "datagrams sent");
        self.stats = new;
        assert!(self.node.lookups() <= DHT_LOOKUPS);
        let table = self.node.table();
        assert!(table.len() <= DHT_TABLE);
        assert_eq!(table.iter().count(), table.len());
        let own = self.node.id();
        let mut ids = HashSet::new();
        for n in table.iter() {
            assert!(n.id != own, "our own id in the table");
            assert!(ids.insert(n.id), "{:?} twice in the table", n.id);
        }
    }
}

/// Gnutella descriptors: the framer and every payload decoder. Whatever decodes
/// re-encodes to exactly the bytes it came from (views keep extension bytes raw), query
/// hits rebuilt result by result with `QueryHitWriter` match too, every strict prefix of
/// a frame is "need more", and the views' iterators agree with what was validated.
pub fn gnutella_descriptor(data: &[u8]) {
    use overlay_core::gnutella::qrp;
    use overlay_core::gnutella::wire::{self, Extension, Payload, QueryHitWriter};
    let mut rest = data;
    // The first byte picks a small payload limit now and then, to reach `TooLong`.
    let max = match data.first() {
        Some(b) if b & 0x0f == 0x0f => u32::from(*b),
        _ => wire::MAX_PAYLOAD,
    };
    while let Ok(Some(f)) = wire::frame_with(rest, max) {
        for cut in [0, 1, wire::HEADER_LEN - 1, wire::HEADER_LEN, f.consumed - 1] {
            if cut < f.consumed {
                assert_eq!(wire::frame_with(&rest[..cut], max), Ok(None), "cut {cut}");
            }
        }
        let h = f.header;
        assert_eq!(
            wire::Header::parse(rest[..23].try_into().unwrap()).to_bytes(),
            rest[..23]
        );
        if let Ok(p) = wire::decode(h.kind, f.payload) {
            let mut out = vec![0u8; f.consumed];
            let n = wire::write_message(&mut out, &h.guid, h.ttl, h.hops, &p)
                .expect("a decoded payload re-encodes");
            assert_eq!(&out[..n], &rest[..f.consumed], "re-encoding differs");
            let check_ext = |e: wire::Extensions<'_>| {
                let mut total = 0;
                for item in e {
                    match item {
                        Extension::Ggep(g) => {
                            total += g.raw().len();
                            for x in g.iter() {
                                assert!(!x.id.is_empty() && x.id.len() <= 15);
                                assert_eq!(g.get(x.id).map(|y| y.id), Some(x.id));
                            }
                        }
                        Extension::Urn(u) | Extension::Other(u) => total += u.len(),
                    }
                }
                assert!(total <= e.raw().len());
                let _ = e.sha1_urns().count();
            };
            match p {
                Payload::Ping(x) => check_ext(x.extensions),
                Payload::Pong(x) => check_ext(x.extensions),
                Payload::Push(x) => check_ext(x.extensions),
                Payload::Query(x) => check_ext(x.extensions),
                Payload::QueryHit(q) => {
                    let mut again = vec![0u8; f.consumed];
                    let mut w = QueryHitWriter::new(
                        &mut again, &h.guid, h.ttl, h.hops, q.port, q.ip, q.speed,
                    );
                    let mut count = 0;
                    for hit in q.hits {
                        check_ext(hit.extensions);
                        w.hit(hit.index, hit.size, hit.name, hit.extensions.raw())
                            .expect("a decoded hit re-encodes");
                        count += 1;
                    }
                    assert_eq!(count, q.hits.len());
                    let n = w.finish(q.qhd.as_ref(), &q.servent_id).expect("fits");
                    assert_eq!(&again[..n], &rest[..f.consumed], "QueryHitWriter differs");
                    if let Some(qhd) = q.qhd {
                        for bit in [1u8, 4, 8, 16, 32] {
                            let _ = qhd.flag(bit);
                        }
                    }
                }
                Payload::Other {
                    kind: qrp::ROUTE_TABLE_UPDATE,
                    bytes,
                } => {
                    // QRP: what decodes re-encodes, and a table takes any update without
                    // panicking (and stays usable).
                    if let Ok(u) = qrp::Update::decode(bytes) {
                        let mut again = vec![0u8; bytes.len()];
                        let n = u.write(&mut again).expect("a decoded update re-encodes");
                        assert_eq!(&again[..n], bytes);
                        let mut table = qrp::QueryRouteTable::new();
                        let reset = qrp::Update::Reset {
                            table_len: 1 << (h.ttl % 20 + 1),
                            infinity: 7,
                        };
                        table.apply(&reset).unwrap();
                        let _ = table.apply(&u);
                        let _ = table.may_match(b"free song", []);
                    }
                }
                Payload::Bye(_) | Payload::Other { .. } => {}
            }
            let _ = format!("{p:?}");
        }
        rest = &rest[f.consumed..];
    }
}

/// The handshake and HTTP parsers: parsing the whole input and every prefix agree (a
/// block that parses from the whole input is "need more" on each strict prefix and the
/// same on its own bytes), typed getters never panic, and blocks rebuilt with the
/// writers parse back to the same start line and headers.
pub fn gnutella_handshake(data: &[u8]) {
    use overlay_core::gnutella::handshake::{self, StartLine};
    use overlay_core::gnutella::headers::{self, Limits};
    use overlay_core::gnutella::http;
    // The first byte picks tight limits now and then, to reach them.
    let limits = match data.first() {
        Some(b) if b & 0x07 == 0x07 => Limits {
            max_line: usize::from(b >> 3) + 1,
            max_headers: usize::from(b >> 5),
            max_total: usize::from(*b) * 2,
        },
        _ => Limits::DEFAULT,
    };
    let input = data.get(1..).unwrap_or(&[]);
    let whole = headers::parse(input, limits);
    if let Ok(Some((head, n))) = whole {
        for cut in [0, n / 2, n - 1] {
            assert_eq!(headers::parse(&input[..cut], limits), Ok(None), "cut {cut}");
        }
        assert_eq!(headers::parse(&input[..n], limits), Ok(Some((head, n))));
        for (name, value) in head.headers {
            assert!(!name.is_empty());
            let _ = (value.to_u64(), value.to_bool(), value.items().count());
        }
    }
    // The three typed parsers agree with the block reader on where a block ends.
    let ends = |r: Option<usize>| match whole {
        Ok(Some((_, n))) => assert_eq!(r, Some(n)),
        _ => assert_eq!(r, None),
    };
    match handshake::parse(input, limits) {
        Ok(Some((h, n))) => {
            ends(Some(n));
            let _ = (
                h.ultrapeer(),
                h.ultrapeer_needed(),
                h.listen_addr(),
                h.remote_ip(),
            );
            let _ = (
                h.user_agent(),
                h.query_routing(),
                h.content_encoding(),
                h.is_ok(),
            );
            let _ = (
                h.try_ultrapeers().count(),
                h.try_hosts().count(),
                h.accept_encoding().count(),
            );
            let mut buf = vec![0u8; 2 * n + 64];
            let mut w = match h.start {
                StartLine::Connect(_) => handshake::connect(&mut buf),
                StartLine::Status { code, reason, .. } => match std::str::from_utf8(reason) {
                    Ok(r) if code >= 100 => handshake::status(&mut buf, code, r),
                    _ => return,
                },
            };
            for (name, value) in h.headers {
                if !value.is_folded() {
                    w.header(name, value.bytes())
                        .expect("a parsed header re-encodes");
                }
            }
            let m = w.finish().expect("fits");
            // Rebuilt lines gain a space after the colon: reparse without limits.
            let loose = Limits {
                max_line: usize::MAX / 2,
                max_headers: usize::MAX,
                max_total: usize::MAX,
            };
            let (again, k) = handshake::parse(&buf[..m], loose).unwrap().unwrap();
            assert_eq!(k, m);
            assert_eq!(again.code(), h.code());
        }
        Ok(None) => ends(None),
        Err(_) => {}
    }
    match http::parse_request(input, limits) {
        Ok(Some((r, n))) => {
            ends(Some(n));
            let _ = (r.range(), r.host(), r.user_agent(), r.target);
            if let Ok(Some(range)) = r.range() {
                let mut buf = [0u8; 128];
                let mut w = http::get_index(&mut buf, 1, b"x");
                w.header_fmt("Range", format_args!("{range}")).unwrap();
                let m = w.finish().unwrap();
                let (again, _) = http::parse_request(&buf[..m], Limits::DEFAULT)
                    .unwrap()
                    .unwrap();
                assert_eq!(again.range(), Ok(Some(range)));
            }
            if let http::Target::Sha1(sha1) = r.target {
                let mut buf = [0u8; 128];
                let m = http::get_sha1(&mut buf, &sha1).finish().unwrap();
                let (again, _) = http::parse_request(&buf[..m], Limits::DEFAULT)
                    .unwrap()
                    .unwrap();
                assert_eq!(again.target, r.target);
            }
        }
        Ok(None) => ends(None),
        Err(_) => {}
    }
    match http::parse_response(input, limits) {
        Ok(Some((r, n))) => {
            ends(Some(n));
            let _ = (r.content_length(), r.content_urn(), r.server());
            if let Ok(Some(cr)) = r.content_range() {
                let mut buf = [0u8; 128];
                let mut w = http::response(&mut buf, 206, "Partial Content");
                w.header_fmt("Content-Range", format_args!("{cr}")).unwrap();
                let m = w.finish().unwrap();
                let (again, _) = http::parse_response(&buf[..m], Limits::DEFAULT)
                    .unwrap()
                    .unwrap();
                assert_eq!(again.content_range(), Ok(Some(cr)));
            }
        }
        Ok(None) => ends(None),
        Err(_) => {}
    }
}

/// A Gnutella servent fed arbitrary connection events and bytes. Op bytes pick: accept a
/// connection; complete a canned handshake on one (so that the fuzzer reaches the message
/// layer cheaply); bytes on one; its close; dial out and be connected; a search; upload
/// bytes; time passing. Checks: a drain ends; nothing is sent on a connection after its
/// Close; counters never go down; connections never exceed the machine's capacity.
pub fn gnutella_servent(data: &[u8]) {
    use overlay_core::gnutella::{Config, Role, Servent, SharedFile, Stats};
    use overlay_core::{ConnId, Duration, Input, Machine};
    static FILES: [SharedFile<'static>; 2] = [
        SharedFile {
            index: 0,
            size: 10_000,
            name: b"free software song.ogg",
            sha1: Some([0x11; 20]),
        },
        SharedFile {
            index: 1,
            size: 0,
            name: b"empty.txt",
            sha1: None,
        },
    ];
    // Room for a leaf's QRP table: 1 KiB patches in, a RESET and four patches out.
    type Node = Servent<&'static [SharedFile<'static>], 4, 2048, 16, 8192>;
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let role = if first & 1 == 0 {
        Role::Ultrapeer
    } else {
        Role::Leaf
    };
    let mut node = Node::new(
        Config::new(role, PeerAddr::v4([10, 0, 0, 1], 6346)),
        &FILES[..],
        u64::from(first),
    );
    let mut now = Instant::ZERO;
    let mut conns: Vec<ConnId> = Vec::new();
    let mut closed: HashSet<ConnId> = HashSet::new();
    let mut inbound = 0u64;
    let mut last = Stats::default();
    let drain = |node: &mut Node, now: Instant, closed: &mut HashSet<ConnId>| {
        drain_streams(node, now, closed, |_| {});
    };
    for (op, len, bytes) in script(rest) {
        let pick = |conns: &[ConnId]| pick(conns, len);
        match op % 8 {
            0 => {
                let conn = ConnId::inbound(inbound);
                inbound += 1;
                conns.push(conn);
                node.handle_input(
                    now,
                    Input::Accepted {
                        conn,
                        peer: PeerAddr::v4([10, 0, 0, 2], 40000 + len as u16),
                    },
                );
            }
            1 => {
                if let Some(conn) = pick(&conns) {
                    let up = if op & 0x80 == 0 { "True" } else { "False" };
                    let hello = format!(
                        "GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: {up}\r\n\r\nGNUTELLA/0.6 200 OK\r\n\r\n"
                    );
                    node.handle_input(
                        now,
                        Input::Received {
                            conn,
                            bytes: hello.as_bytes(),
                        },
                    );
                }
            }
            2 | 3 => {
                if let Some(conn) = pick(&conns) {
                    node.handle_input(now, Input::Received { conn, bytes });
                }
            }
            4 => {
                if let Some(conn) = pick(&conns) {
                    node.handle_input(now, Input::Closed { conn });
                }
            }
            5 => {
                if let Ok(conn) = node.connect(now, PeerAddr::v4([10, 0, 0, 3], 6346)) {
                    conns.push(conn);
                    drain(&mut node, now, &mut closed);
                    node.handle_input(now, Input::Connected { conn });
                }
            }
            6 => {
                if op & 0x80 == 0 {
                    let _ = node.search(now, bytes, None);
                } else if let Some(conn) = pick(&conns) {
                    let _ = node.upload(now, conn, bytes);
                }
            }
            _ => now = now + Duration::from_millis(u64::from(len) * 100),
        }
        drain(&mut node, now, &mut closed);
        let s = node.stats();
        assert!(s.queries_received >= last.queries_received);
        assert!(s.malformed >= last.malformed && s.duplicates >= last.duplicates);
        last = s;
        assert!(node.peers().count() <= 4);
    }
}

/// BitTorrent metainfo (BEP 3) and magnet links (BEP 9): never panic; a torrent that parses
/// gives consistent sizes (pieces cover the total length, files tile it) and rebuilt with
/// the writer from its own fields parses back to the same info hash when its info dict was
/// canonical; a magnet link's values decode within the length they announce.
pub fn bittorrent_metainfo(data: &[u8]) {
    use overlay_core::bittorrent::magnet::Magnet;
    use overlay_core::bittorrent::metainfo::{Content, FileSpec, Metainfo, Torrent};
    if let Ok(m) = Magnet::parse(data) {
        let _ = m.info_hash();
        let values = m
            .display_name()
            .into_iter()
            .chain(m.trackers())
            .chain(m.peers());
        for v in values {
            let mut buf = vec![0u8; v.decoded_len()];
            let decoded = v.decode(&mut buf).expect("decodes into its own length");
            assert_eq!(decoded.len(), v.decoded_len());
        }
    }
    let Ok(t) = Metainfo::parse(data) else {
        return;
    };
    let (total, pieces) = (t.total_length(), t.piece_count());
    assert_eq!(t.piece_hashes().count(), pieces);
    let sizes: u64 = (0..pieces).map(|i| t.piece_size(i).unwrap()).sum();
    assert_eq!(sizes, total, "pieces cover the content");
    assert!(t.piece_size(pieces).is_none());
    let mut at = 0;
    let mut specs = Vec::new();
    let mut paths = Vec::new();
    for f in t.files() {
        assert_eq!(f.offset, at, "files tile the content");
        at += f.length;
        paths.push(f.path.components().collect::<Vec<_>>());
        specs.push(f.length);
    }
    assert_eq!(at, total);
    for _ in t.announce_list().flatten() {}
    // Rebuild from the fields: the same info hash when the info dict held only these keys,
    // canonically ordered.
    let files: Vec<FileSpec<'_>> = paths
        .iter()
        .zip(&specs)
        .map(|(p, &length)| FileSpec { path: p, length })
        .collect();
    let content = if t.is_single_file() {
        Content::Single { length: total }
    } else {
        Content::Multi(&files)
    };
    let pieces_bytes: Vec<u8> = t.piece_hashes().flatten().copied().collect();
    let torrent = Torrent {
        announce: t.announce(),
        announce_list: &[],
        name: t.name(),
        piece_length: t.piece_length(),
        pieces: &pieces_bytes,
        content,
        private: t.is_private(),
    };
    let mut out = vec![0u8; data.len() + 256];
    if let Ok(again) = torrent.write(&mut out) {
        assert_eq!(again.total_length(), total);
        assert_eq!(again.piece_count(), pieces);
    }
}

/// The BitTorrent peer wire (BEP 3, 6, 10): the handshake and the message framer never
/// panic; every strict prefix of a frame is "need more"; whatever frames re-encodes to the
/// bytes it came from; a bitfield view agrees with its bytes.
pub fn bittorrent_wire(data: &[u8]) {
    use overlay_core::bittorrent::wire::{self, Bitfield, Handshake, Message};
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // A stream may open with the handshake; the messages follow it.
    let mut buf = rest;
    if let Ok(Some(h)) = Handshake::parse(rest) {
        assert_eq!(h.to_bytes(), rest[..wire::HANDSHAKE_LEN]);
        buf = &rest[wire::HANDSHAKE_LEN..];
    }
    // The first byte picks a small limit now and then, to reach `TooLong`.
    let max = if first & 0x0f == 0x0f {
        u32::from(first)
    } else {
        wire::DEFAULT_MAX_LEN
    };
    while let Ok(Some((m, used))) = wire::frame(buf, max) {
        for cut in [0, 3, 4, used - 1] {
            if cut < used {
                assert!(
                    matches!(wire::frame(&buf[..cut], max), Ok(None)),
                    "cut {cut}"
                );
            }
        }
        let mut out = vec![0u8; used];
        assert_eq!(m.encoded_len(), used);
        let n = m.write(&mut out).expect("a framed message re-encodes");
        assert_eq!(&out[..n], &buf[..used]);
        if let Message::Bitfield(bytes) = m {
            let pieces = (bytes.len() as u32)
                .saturating_mul(8)
                .saturating_sub(u32::from(first % 8));
            if let Ok(b) = Bitfield::new(bytes, pieces) {
                assert_eq!(b.count(), (0..pieces).filter(|&i| b.has(i)).count() as u32);
            }
        }
        buf = &buf[used..];
    }
}

/// The info hash and geometry the `bittorrent_session` target's session and scripts share:
/// 8 pieces of 64 KiB (4 blocks), the last 1000 bytes short.
pub const SESSION_INFO_HASH: [u8; 20] = [0x1b; 20];
/// See [`SESSION_INFO_HASH`].
pub const SESSION_TORRENT: (u32, u64) = (65_536, 8 * 65_536 - 1000);

/// The BitTorrent session machine fed arbitrary connection events and bytes. The first
/// byte picks a seed (bit 0) and a free rider (bit 1). Op bytes pick: accept a connection;
/// a canned handshake for this torrent on one (so that the fuzzer reaches the message
/// layer cheaply; the length byte picks the peer id); bytes on one; its close; dial out and
/// be connected; answer the oldest read with a block, or the oldest check with pass or fail
/// (bit 7); time passing. Checks: a drain ends; nothing is sent on a connection after its
/// Close; writes, reads and checks name blocks and pieces of the torrent; counters never go
/// down; connections never exceed the capacity.
pub fn bittorrent_session(data: &[u8]) {
    use overlay_core::bittorrent::session::{Config, Event, Session, Stats};
    use overlay_core::bittorrent::wire::{BLOCK_LEN, BlockRequest, Handshake, Reserved};
    type S = Session<8, 4, 4>;
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (piece_len, total) = SESSION_TORRENT;
    let mut config = Config::new(SESSION_INFO_HASH, [0xee; 20], piece_len, total);
    config.serve = first & 2 == 0;
    let Ok(mut s) = S::new(config, &[0x11; 8 * 20], u64::from(first)) else {
        panic!("the fuzz torrent fits");
    };
    if first & 1 == 1 {
        for p in 0..8 {
            s.have_piece(Instant::ZERO, p).unwrap();
        }
    }
    let mut now = Instant::ZERO;
    let mut conns: Vec<ConnId> = Vec::new();
    let mut closed: HashSet<ConnId> = HashSet::new();
    let mut reads: VecDeque<(ConnId, BlockRequest)> = VecDeque::new();
    let mut checks: VecDeque<u32> = VecDeque::new();
    let mut inbound = 0u64;
    let mut last = Stats::default();
    let drain = |s: &mut S,
                 now: Instant,
                 closed: &mut HashSet<ConnId>,
                 reads: &mut VecDeque<(ConnId, BlockRequest)>,
                 checks: &mut VecDeque<u32>| {
        drain_streams(s, now, closed, |e| match e {
            Event::Write { piece, begin, data } => {
                assert!(piece < 8 && data.len() <= BLOCK_LEN as usize);
                assert_eq!(begin % BLOCK_LEN, 0);
            }
            Event::Verify { piece, .. } => {
                assert!(piece < 8);
                checks.push_back(piece);
            }
            Event::Read { conn, block } => {
                assert!(block.index < 8 && block.length <= BLOCK_LEN);
                reads.push_back((conn, block));
            }
            _ => {}
        });
    };
    for (op, len, bytes) in script(rest) {
        let pick = |conns: &[ConnId]| pick(conns, len);
        match op % 8 {
            0 => {
                let conn = ConnId::inbound(inbound);
                inbound += 1;
                conns.push(conn);
                let peer = PeerAddr::v4([10, 0, 0, 2 + (len & 3)], 6881);
                s.handle_input(now, Input::Accepted { conn, peer });
            }
            1 => {
                if let Some(conn) = pick(&conns) {
                    let hello = Handshake {
                        reserved: Reserved::NONE.with_fast().with_extension_protocol(),
                        info_hash: SESSION_INFO_HASH,
                        peer_id: [len; 20],
                    }
                    .to_bytes();
                    s.handle_input(
                        now,
                        Input::Received {
                            conn,
                            bytes: &hello,
                        },
                    );
                }
            }
            2 | 3 => {
                if let Some(conn) = pick(&conns) {
                    s.handle_input(now, Input::Received { conn, bytes });
                }
            }
            4 => {
                if let Some(conn) = pick(&conns) {
                    s.handle_input(now, Input::Closed { conn });
                }
            }
            5 => {
                let peer = PeerAddr::v4([10, 0, 1, len], 6881);
                if let Ok(conn) = s.add_peer(now, peer) {
                    conns.push(conn);
                    drain(&mut s, now, &mut closed, &mut reads, &mut checks);
                    s.handle_input(now, Input::Connected { conn });
                }
            }
            6 => {
                if op & 0x80 == 0
                    && let Some((conn, block)) = reads.pop_front()
                {
                    let data = vec![len; block.length as usize];
                    let _ = s.send_block(now, conn, block, &data);
                } else if let Some(piece) = checks.pop_front() {
                    let _ = s.piece_checked(now, piece, op & 0x80 != 0);
                }
            }
            _ => now = now + Duration::from_millis(u64::from(len) * 500),
        }
        drain(&mut s, now, &mut closed, &mut reads, &mut checks);
        let st = s.stats();
        assert!(st.downloaded >= last.downloaded && st.uploaded >= last.uploaded);
        assert!(st.violations >= last.violations && st.banned >= last.banned);
        last = st;
        assert!(s.peer_count() <= 4);
    }
}

/// The steps of a fuzz script: an op byte, a length byte, then up to that many bytes (fewer
/// at the end of the input).
fn script(mut rest: &[u8]) -> impl Iterator<Item = (u8, u8, &[u8])> {
    std::iter::from_fn(move || {
        let [op, len, tail @ ..] = rest else {
            return None;
        };
        let (bytes, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        Some((*op, *len, bytes))
    })
}

/// The connection a script's length byte picks, if there is any.
fn pick(conns: &[ConnId], len: u8) -> Option<ConnId> {
    (!conns.is_empty()).then(|| conns[usize::from(len) % conns.len()])
}

/// Drains a stream machine, checking what every stream protocol owes its driver: no
/// datagrams, no empty sends, nothing sent on a connection after its Close, and a drain
/// that ends. Events go to `on_event`.
fn drain_streams<M: Machine>(
    m: &mut M,
    now: Instant,
    closed: &mut HashSet<ConnId>,
    mut on_event: impl FnMut(M::Event<'_>),
) {
    for _ in 0..100_000 {
        match m.poll_output(now) {
            Output::Transmit { to, payload } => {
                let Dest::Conn(c) = to else {
                    panic!("a stream machine sends no datagrams")
                };
                assert!(!closed.contains(&c), "sent on {c:?} after closing it");
                assert!(!payload.is_empty(), "an empty send on {c:?}");
            }
            Output::Close { conn } => {
                closed.insert(conn);
            }
            Output::Connect { .. } => {}
            Output::Event(e) => on_event(e),
            Output::Wait(_) => return,
        }
    }
    panic!("the drain does not end");
}

// ----- The WebSocket bridge -----

/// The bridge's datagram frame (`overlay_core::bridge`): any input either fails to decode
/// or decodes to an address and payload that re-encode to exactly its bytes (the header has
/// one form per address), also after a trip through `SocketAddr` as the node's bridge makes;
/// a buffer one byte short is refused, not panicked on.
pub fn bridge_frame(data: &[u8]) {
    use overlay_core::bridge::{FrameError, decode, encode};
    let Ok((addr, payload)) = decode(data) else {
        return;
    };
    assert_eq!(
        PeerAddr::from(addr.socket_addr()),
        addr,
        "the address survives SocketAddr"
    );
    let mut out = vec![0u8; data.len()];
    assert_eq!(encode(addr, payload, &mut out), Ok(data.len()));
    assert_eq!(out, data, "decode/encode is not the identity");
    assert_eq!(
        encode(addr, payload, &mut out[..data.len() - 1]),
        Err(FrameError::TooSmall)
    );
}

/// BitTorrent trackers (BEP 3, 15, 23): the first byte picks a decoder, the rest is its
/// input. BEP 15 requests that decode re-encode to the bytes they came from (an
/// announce's 98, a connect's 16); HTTP requests and answers parse or are refused; and the
/// same bytes go to a tracker and an announcer as datagrams and stream bytes. Nothing
/// panics, and both machines' drains end.
pub fn bittorrent_tracker(data: &[u8]) {
    use overlay_core::bittorrent::tracker::udp::{self, Request, Response};
    use overlay_core::bittorrent::tracker::{
        Announcer, AnnouncerConfig, Tracker, TrackerConfig, http,
    };
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    match first % 4 {
        0 => {
            if let Ok(r) = Request::decode(rest) {
                let mut buf = [0u8; 2048];
                let bytes = r.encode(&mut buf).expect("a decoded request re-encodes");
                let (ours, theirs) = (bytes, &rest[..bytes.len()]);
                match r {
                    // The ip field (offset 84) is not kept; BEP 41 options after 98 bytes
                    // are ignored.
                    Request::Announce { .. } => {
                        assert_eq!(ours.len(), udp::ANNOUNCE_LEN);
                        assert_eq!(ours[..84], theirs[..84], "announce round trip");
                        assert_eq!(ours[88..], theirs[88..], "announce round trip");
                    }
                    _ => assert_eq!(ours, theirs, "request round trip"),
                }
            }
        }
        1 => {
            if let Ok(r) = Response::decode(rest, first & 0x80 != 0)
                && let Response::Announce { peers, .. } = r
            {
                assert!(peers.count() <= rest.len() / 6);
            }
        }
        2 => {
            if let Ok(Some((_, used))) = http::read_request(rest) {
                assert!(used <= rest.len());
            }
        }
        _ => {
            if let Ok(Some((_, body))) = http::read_response(rest, first & 0x80 != 0)
                && let Ok(http::Reply::Announce(r)) = http::parse_reply(body)
            {
                assert!(r.peers.count() <= body.len() / 6);
            }
        }
    }
    let now = Instant::from_micros(u64::from(first) * 1_000_000);
    let tracker_addr = PeerAddr::v4([127, 0, 0, 1], 6969);
    let mut t: Tracker<4, 4, 2> = Tracker::new(TrackerConfig::default(), 1);
    let mut a: Announcer<2> = Announcer::new(AnnouncerConfig::default(), [1; 20], [2; 20], 1, 1);
    a.add_tracker(Instant::ZERO, "udp://127.0.0.1:6969", tracker_addr)
        .unwrap();
    a.add_tracker(
        Instant::ZERO,
        "http://127.0.0.1:6969/announce",
        tracker_addr,
    )
    .unwrap();
    let from = PeerAddr::v4([10, 0, 0, 1], 1000);
    t.handle_input(
        now,
        Input::Datagram {
            from,
            payload: rest,
        },
    );
    t.handle_input(
        now,
        Input::Accepted {
            conn: ConnId::inbound(0),
            peer: from,
        },
    );
    t.handle_input(
        now,
        Input::Received {
            conn: ConnId::inbound(0),
            bytes: rest,
        },
    );
    for _ in 0..16 {
        if matches!(t.poll_output(now), Output::Wait(_)) {
            break;
        }
    }
    // The announcer's first round opens its HTTP connection (outbound 0) and sends a
    // connect; then the bytes arrive as both answers.
    for _ in 0..16 {
        if matches!(a.poll_output(Instant::ZERO), Output::Wait(_)) {
            break;
        }
    }
    a.handle_input(
        now,
        Input::Connected {
            conn: ConnId::outbound(0),
        },
    );
    a.handle_input(
        now,
        Input::Datagram {
            from: tracker_addr,
            payload: rest,
        },
    );
    a.handle_input(
        now,
        Input::Received {
            conn: ConnId::outbound(0),
            bytes: rest,
        },
    );
    a.handle_input(
        now,
        Input::Closed {
            conn: ConnId::outbound(0),
        },
    );
    for _ in 0..64 {
        if matches!(a.poll_output(now), Output::Wait(_)) {
            break;
        }
    }
}
