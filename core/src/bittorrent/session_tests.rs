//! Scripted, byte-exact tests of the swarm machine. Each test plays the remote peers by hand:
//! it feeds their bytes through `handle_input`, drains `poll_output` into owned values and
//! checks every byte we send against BEP 3 (peer protocol), BEP 6 (Fast extension) and
//! BEP 10 (extension protocol), written out by hand where the layout is the point.

extern crate std;

use super::*;
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::vec;
use std::vec::Vec;

/// 8 pieces of 4 blocks of 16 KiB, 4 peers, the default receive buffer.
type S = Session<8, 4, 4>;

const PIECE_LEN: u32 = 4 * BLOCK_LEN;
/// Seven whole pieces and a short last one of 40 000 bytes: blocks of 16 384, 16 384 and
/// 7 232 bytes.
const TOTAL: u64 = 7 * PIECE_LEN as u64 + 40_000;
const LAST_BLOCK: u32 = 40_000 - 2 * BLOCK_LEN;
const INFO_HASH: [u8; 20] = [0xA5; 20];
const OUR_ID: [u8; 20] = *b"-OV0001-ourselves000";
const ID_A: [u8; 20] = *b"-XX0001-peer-a-00000";
const ID_B: [u8; 20] = *b"-XX0001-peer-b-00000";
const SEED: u64 = 7;
/// Our handshake's reserved bytes, by hand: BEP 10 sets 0x10 in byte 5 ("the 20th bit from
/// the right"), BEP 6 sets 0x04 in byte 7 ("the third least significant bit").
const OUR_RESERVED: [u8; 8] = [0, 0, 0, 0, 0, 0x10, 0, 0x04];

// ---- the torrent ---------------------------------------------------------------------------

fn byte_at(offset: u64) -> u8 {
    ((offset.wrapping_mul(0x9E37_79B9) >> 11) as u8) ^ (offset as u8)
}

fn piece_count(total: u64) -> u32 {
    total.div_ceil(u64::from(PIECE_LEN)) as u32
}

fn piece_len(total: u64, piece: u32) -> u32 {
    let start = u64::from(piece) * u64::from(PIECE_LEN);
    (total - start).min(u64::from(PIECE_LEN)) as u32
}

/// The torrent's bytes `[begin, begin + len)` of `piece`.
fn content(piece: u32, begin: u32, len: u32) -> Vec<u8> {
    let start = u64::from(piece) * u64::from(PIECE_LEN) + u64::from(begin);
    (start..start + u64::from(len)).map(byte_at).collect()
}

fn piece_hash(total: u64, piece: u32) -> [u8; 20] {
    Sha1::digest(content(piece, 0, piece_len(total, piece))).into()
}

fn hashes(total: u64) -> Vec<u8> {
    (0..piece_count(total))
        .flat_map(|p| piece_hash(total, p))
        .collect()
}

fn config(total: u64) -> Config {
    Config::new(INFO_HASH, OUR_ID, PIECE_LEN, total)
}

fn session_of<const P: usize>(total: u64) -> Session<P, 4, 4> {
    Session::new(config(total), &hashes(total), SEED).unwrap()
}

fn session() -> S {
    session_of::<8>(TOTAL)
}

/// A session that has every piece.
fn seed() -> S {
    let mut s = session();
    for p in 0..8 {
        s.have_piece(Instant::ZERO, p).unwrap();
    }
    s
}

/// The block length of a request for block `begin` of `piece` in [`TOTAL`].
fn block_len(piece: u32, begin: u32) -> u32 {
    (piece_len(TOTAL, piece) - begin).min(BLOCK_LEN)
}

// ---- time, peers, messages ---------------------------------------------------------------

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

fn at_ms(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn addr(n: u8) -> PeerAddr {
    PeerAddr::v4([10, 0, 0, n], 6881)
}

fn inbound(n: u64) -> ConnId {
    ConnId::inbound(n)
}

const FAST_EXT: Reserved = Reserved::NONE.with_fast().with_extension_protocol();
const FAST: Reserved = Reserved::NONE.with_fast();
const PLAIN: Reserved = Reserved::NONE;

fn handshake(reserved: Reserved, info_hash: [u8; 20], peer_id: [u8; 20]) -> Vec<u8> {
    Handshake {
        reserved,
        info_hash,
        peer_id,
    }
    .to_bytes()
    .to_vec()
}

/// Our own 68-byte handshake, written out by hand (BEP 3: pstrlen 19, pstr, reserved,
/// info_hash, peer_id).
fn our_handshake() -> Vec<u8> {
    let mut b = vec![19];
    b.extend_from_slice(b"BitTorrent protocol");
    b.extend_from_slice(&OUR_RESERVED);
    b.extend_from_slice(&INFO_HASH);
    b.extend_from_slice(&OUR_ID);
    b
}

fn msg(m: Message<'_>) -> Vec<u8> {
    let mut out = vec![0; m.encoded_len()];
    assert_eq!(m.write(&mut out), Ok(out.len()));
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn req(index: u32, begin: u32, length: u32) -> BlockRequest {
    BlockRequest {
        index,
        begin,
        length,
    }
}

/// A request, cancel (id 8) or reject-request (id 16) by hand: length 13, id, then index,
/// begin and length as big-endian u32 (BEP 3, BEP 6).
fn block_msg(id: u8, r: BlockRequest) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 13, id];
    b.extend_from_slice(&r.index.to_be_bytes());
    b.extend_from_slice(&r.begin.to_be_bytes());
    b.extend_from_slice(&r.length.to_be_bytes());
    b
}

fn request_bytes(r: BlockRequest) -> Vec<u8> {
    block_msg(6, r)
}

fn cancel_bytes(r: BlockRequest) -> Vec<u8> {
    block_msg(8, r)
}

fn reject_bytes(r: BlockRequest) -> Vec<u8> {
    block_msg(0x10, r)
}

/// BEP 3 have: length 5, id 4, the index.
fn have_bytes(index: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 5, 4];
    b.extend_from_slice(&index.to_be_bytes());
    b
}

const KEEP_ALIVE: [u8; 4] = [0, 0, 0, 0];
const CHOKE: [u8; 5] = [0, 0, 0, 1, 0];
const UNCHOKE: [u8; 5] = [0, 0, 0, 1, 1];
const INTERESTED: [u8; 5] = [0, 0, 0, 1, 2];
const NOT_INTERESTED: [u8; 5] = [0, 0, 0, 1, 3];
/// BEP 6: have all is id 0x0E, have none 0x0F, both with no payload.
const HAVE_ALL: [u8; 5] = [0, 0, 0, 1, 0x0E];
const HAVE_NONE: [u8; 5] = [0, 0, 0, 1, 0x0F];

/// The piece message a peer sends for `r`, with the torrent's bytes.
fn piece_msg(r: BlockRequest) -> Vec<u8> {
    let data = content(r.index, r.begin, r.length);
    msg(Message::Piece {
        index: r.index,
        begin: r.begin,
        block: &data,
    })
}

/// The 13-byte piece header by hand (BEP 3): length 9 + block, id 7, index, begin.
fn piece_header(r: BlockRequest) -> Vec<u8> {
    let mut b = (9 + r.length).to_be_bytes().to_vec();
    b.push(7);
    b.extend_from_slice(&r.index.to_be_bytes());
    b.extend_from_slice(&r.begin.to_be_bytes());
    b
}

/// Our BEP 10 extended handshake: length, id 20, extended id 0, the bencoded dictionary.
fn our_extended_handshake() -> Vec<u8> {
    let dict = b"d1:mde4:reqqi128e1:v7:overlaye";
    let mut b = ((2 + dict.len()) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(&[20, 0]);
    b.extend_from_slice(dict);
    b
}

/// Splits a stream of whole messages into messages (length prefix included).
fn frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (_, used) = wire::frame(bytes, u32::MAX)
            .expect("we send well-formed messages")
            .expect("we send whole messages");
        out.push(bytes[..used].to_vec());
        bytes = &bytes[used..];
    }
    out
}

/// The requests among a stream of messages; any other message fails the test.
fn requests_in(bytes: &[u8]) -> Vec<BlockRequest> {
    frames(bytes)
        .iter()
        .map(|f| match wire::frame(f, u32::MAX) {
            Ok(Some((Message::Request(r), 17))) => {
                assert_eq!(*f, request_bytes(r), "BEP 3 request layout");
                r
            }
            other => panic!("expected a request, got {other:?}"),
        })
        .collect()
}

// ---- driving -------------------------------------------------------------------------------

/// One output, owned.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Owned {
    Transmit(ConnId, Vec<u8>),
    Connect(ConnId, PeerAddr),
    Close(ConnId),
    Write {
        piece: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Verify {
        piece: u32,
        hash: [u8; 20],
    },
    Read(ConnId, BlockRequest),
    Connected(ConnId, PeerAddr, [u8; 20]),
    Closed(ConnId, PeerAddr, CloseReason),
    Complete,
}

/// Polls until `Wait`, copying everything.
fn drain<const P: usize, const B: usize, const N: usize>(
    s: &mut Session<P, B, N>,
    now: Instant,
) -> Vec<Owned> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let o = match s.poll_output(now) {
            Output::Wait(_) => return out,
            Output::Transmit {
                to: Dest::Conn(c),
                payload,
            } => Owned::Transmit(c, payload.to_vec()),
            Output::Transmit { to, .. } => panic!("datagram to {to:?}"),
            Output::Connect { conn, peer } => Owned::Connect(conn, peer),
            Output::Close { conn } => Owned::Close(conn),
            Output::Event(e) => match e {
                Event::Write { piece, begin, data } => Owned::Write {
                    piece,
                    begin,
                    data: data.to_vec(),
                },
                Event::Verify { piece, hash } => Owned::Verify { piece, hash },
                Event::Read { conn, block } => Owned::Read(conn, block),
                Event::Connected {
                    conn,
                    peer,
                    peer_id,
                } => Owned::Connected(conn, peer, peer_id),
                Event::Closed { conn, peer, reason } => Owned::Closed(conn, peer, reason),
                Event::Complete => Owned::Complete,
            },
        };
        out.push(o);
    }
    panic!("poll_output never returned Wait");
}

fn wait_deadline(s: &mut S, now: Instant) -> Option<Instant> {
    match s.poll_output(now) {
        Output::Wait(d) => d,
        o => panic!("expected Wait, got {o:?}"),
    }
}

fn recv<const P: usize, const B: usize, const N: usize>(
    s: &mut Session<P, B, N>,
    now: Instant,
    conn: ConnId,
    bytes: &[u8],
) -> Vec<Owned> {
    s.handle_input(now, Input::Received { conn, bytes });
    drain(s, now)
}

/// Bytes sent on `conn`, concatenated.
fn sent(outs: &[Owned], conn: ConnId) -> Vec<u8> {
    outs.iter()
        .filter_map(|o| match o {
            Owned::Transmit(c, b) if *c == conn => Some(b.as_slice()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

/// Accepts inbound connection `n` from `addr(n)`; checks that our handshake goes out at
/// once, byte for byte.
fn accept<const P: usize, const B: usize, const N: usize>(
    s: &mut Session<P, B, N>,
    now: Instant,
    n: u8,
) -> ConnId {
    let conn = inbound(u64::from(n));
    s.handle_input(
        now,
        Input::Accepted {
            conn,
            peer: addr(n),
        },
    );
    assert_eq!(
        drain(s, now),
        [Owned::Transmit(conn, our_handshake())],
        "BEP 3: the handshake goes out first"
    );
    conn
}

/// Accepts connection `n` and plays the peer's handshake; returns what we sent back.
fn connect<const P: usize, const B: usize, const N: usize>(
    s: &mut Session<P, B, N>,
    now: Instant,
    n: u8,
    reserved: Reserved,
    peer_id: [u8; 20],
) -> (ConnId, Vec<Owned>) {
    let conn = accept(s, now, n);
    let outs = recv(s, now, conn, &handshake(reserved, INFO_HASH, peer_id));
    (conn, outs)
}

fn peer_id(n: u8) -> [u8; 20] {
    let mut id = *b"-XX0001-peer-n-00000";
    id[13] = b'0' + n;
    id
}

// ---- 1. handshakes -------------------------------------------------------------------------

#[test]
fn bep3_bep6_bep10_inbound_handshake_then_extended_handshake_and_have_none() {
    let mut s = session();
    let conn = accept(&mut s, at(0), 1);
    // Our handshake as sent, bit by bit: 0x10 in byte 5 (BEP 10), 0x04 in byte 7 (BEP 6).
    let ours = our_handshake();
    assert_eq!(ours.len(), 68);
    assert_eq!(ours[20 + 5] & 0x10, 0x10);
    assert_eq!(ours[20 + 7] & 0x04, 0x04);
    let outs = recv(&mut s, at(0), conn, &handshake(FAST_EXT, INFO_HASH, ID_A));
    let ext = our_extended_handshake();
    assert_eq!(
        outs,
        [
            Owned::Connected(conn, addr(1), ID_A),
            Owned::Transmit(conn, cat(&[&HAVE_NONE, &ext])),
        ]
    );
    // BEP 10: the payload after ids 20 and 0 is a bencoded dictionary with `reqq`.
    let dict = bencode::decode(&ext[6..]).unwrap().as_dict().unwrap();
    assert_eq!(dict.get_int(b"reqq"), Some(MAX_INCOMING as i64));
    assert_eq!(dict.get_int(b"reqq"), Some(128));
    assert!(dict.get_dict(b"m").is_some_and(|m| m.is_empty()));
    assert_eq!(s.peer_count(), 1);
}

#[test]
fn bep3_bitfield_is_high_bit_first_with_spare_bits_zero() {
    // 8 pieces, we have 0, 2 and 7: 1010_0001.
    let mut s = session();
    for p in [0, 2, 7] {
        s.have_piece(Instant::ZERO, p).unwrap();
    }
    let (conn, outs) = connect(&mut s, at(0), 1, PLAIN, ID_A);
    assert_eq!(
        outs,
        [
            Owned::Connected(conn, addr(1), ID_A),
            Owned::Transmit(conn, vec![0, 0, 0, 2, 5, 0xA1]),
        ]
    );

    // 10 pieces (the last short), we have 0, 8 and 9: 1000_0000 1100_0000, the six spare
    // bits zero. A peer with BEP 10 but not BEP 6 gets the bitfield first (BEP 3: "only
    // ever sent as the first message"), then the extended handshake.
    let total = 9 * u64::from(PIECE_LEN) + 100;
    let mut s = session_of::<16>(total);
    for p in [0, 8, 9] {
        s.have_piece(Instant::ZERO, p).unwrap();
    }
    let reserved = Reserved::NONE.with_extension_protocol();
    let (conn, outs) = connect(&mut s, at(0), 1, reserved, ID_A);
    assert_eq!(
        outs,
        [
            Owned::Connected(conn, addr(1), ID_A),
            Owned::Transmit(
                conn,
                cat(&[&[0, 0, 0, 3, 5, 0x80, 0xC0], &our_extended_handshake()])
            ),
        ]
    );

    // 5 pieces, all had: 1111_1000 to a plain peer, have all to a fast one.
    let total = 4 * u64::from(PIECE_LEN) + 1;
    let mut s = session_of::<8>(total);
    for p in 0..5 {
        s.have_piece(Instant::ZERO, p).unwrap();
    }
    let (conn, outs) = connect(&mut s, at(0), 1, PLAIN, ID_A);
    assert_eq!(sent(&outs, conn), [0, 0, 0, 2, 5, 0xF8]);
    let (conn, outs) = connect(&mut s, at(0), 2, FAST, ID_B);
    assert_eq!(sent(&outs, conn), HAVE_ALL);
}

#[test]
fn bep3_nothing_after_the_handshake_to_a_plain_peer_when_we_have_nothing() {
    let mut s = session();
    let (conn, outs) = connect(&mut s, at(0), 1, PLAIN, ID_A);
    assert_eq!(outs, [Owned::Connected(conn, addr(1), ID_A)]);
}

#[test]
fn have_piece_after_connecting_sends_have() {
    let mut s = session();
    let (conn, _) = connect(&mut s, at(0), 1, FAST, ID_A);
    s.have_piece(Instant::ZERO, 3).unwrap();
    assert_eq!(drain(&mut s, at(0)), [Owned::Transmit(conn, have_bytes(3))]);
    assert_eq!(have_bytes(3), [0, 0, 0, 5, 4, 0, 0, 0, 3]);
}

// ---- 2. refused handshakes -----------------------------------------------------------------

#[test]
fn wrong_info_hash_closes_with_wrong_torrent() {
    let mut s = session();
    let conn = accept(&mut s, at(0), 1);
    let outs = recv(&mut s, at(0), conn, &handshake(FAST, [0x5A; 20], ID_A));
    assert_eq!(
        outs,
        [
            Owned::Close(conn),
            Owned::Closed(conn, addr(1), CloseReason::WrongTorrent)
        ]
    );
    assert_eq!(s.peer_count(), 0);
    // The slot is free again, and the machine idles.
    assert_eq!(wait_deadline(&mut s, at(0)), None);
}

#[test]
fn dialling_ourselves_closes_with_self_connection() {
    let mut s = session();
    let conn = s.add_peer(at(0), addr(9)).unwrap();
    assert_eq!(conn, ConnId::outbound(1));
    assert_eq!(drain(&mut s, at(0)), [Owned::Connect(conn, addr(9))]);
    s.handle_input(at(0), Input::Connected { conn });
    assert_eq!(
        drain(&mut s, at(0)),
        [Owned::Transmit(conn, our_handshake())]
    );
    // The "peer" answers with our own handshake.
    let outs = recv(&mut s, at(0), conn, &our_handshake());
    assert_eq!(
        outs,
        [
            Owned::Close(conn),
            Owned::Closed(conn, addr(9), CloseReason::SelfConnection)
        ]
    );
}

#[test]
fn second_connection_with_the_same_peer_id_is_a_duplicate() {
    let mut s = session();
    let (a, _) = connect(&mut s, at(0), 1, FAST, ID_A);
    let (b, outs) = connect(&mut s, at(0), 2, FAST, ID_A);
    assert_eq!(
        outs,
        [
            Owned::Close(b),
            Owned::Closed(b, addr(2), CloseReason::Duplicate)
        ]
    );
    assert_eq!(s.peer_count(), 1);
    // The first connection still works.
    assert_eq!(recv(&mut s, at(0), a, &KEEP_ALIVE), []);
    assert_eq!(s.stats().violations, 0);
}

#[test]
fn remote_close_reports_closed_without_close() {
    let mut s = session();
    let (a, _) = connect(&mut s, at(0), 1, FAST, ID_A);
    s.handle_input(at(1), Input::Closed { conn: a });
    assert_eq!(
        drain(&mut s, at(1)),
        [Owned::Closed(a, addr(1), CloseReason::Remote)]
    );
    // Late input for it is ignored and counted.
    let ignored = s.stats().ignored;
    assert_eq!(recv(&mut s, at(1), a, &KEEP_ALIVE), []);
    assert_eq!(s.stats().ignored, ignored + 1);
}

// ---- 3. leeching ---------------------------------------------------------------------------

/// Plays a seed: it has everything, sends have all (BEP 6) and unchokes us.
fn unchoking_seed(s: &mut S, now: Instant, n: u8, id: [u8; 20]) -> (ConnId, Vec<BlockRequest>) {
    let (conn, outs) = connect(s, now, n, FAST, id);
    assert_eq!(outs[0], Owned::Connected(conn, addr(n), id));
    assert_eq!(sent(&outs, conn), HAVE_NONE);
    // BEP 3: a peer with pieces we lack makes us interested.
    let outs = recv(s, now, conn, &HAVE_ALL);
    assert_eq!(outs, [Owned::Transmit(conn, INTERESTED.to_vec())]);
    let outs = recv(s, now, conn, &UNCHOKE);
    assert_eq!(outs.len(), 1, "{outs:?}");
    let reqs = requests_in(&sent(&outs, conn));
    (conn, reqs)
}

#[test]
fn bep3_bep6_leech_everything_from_a_scripted_seed() {
    let mut s = session();
    let t = at(0);
    // The seed, dialled by us (so also the outbound path).
    let seed = s.add_peer(t, addr(1)).unwrap();
    assert_eq!(drain(&mut s, t), [Owned::Connect(seed, addr(1))]);
    s.handle_input(t, Input::Connected { conn: seed });
    assert_eq!(drain(&mut s, t), [Owned::Transmit(seed, our_handshake())]);
    let outs = recv(
        &mut s,
        t,
        seed,
        &cat(&[&handshake(FAST_EXT, INFO_HASH, ID_A), &HAVE_ALL]),
    );
    assert_eq!(
        outs,
        [
            Owned::Connected(seed, addr(1), ID_A),
            Owned::Transmit(
                seed,
                cat(&[&HAVE_NONE, &our_extended_handshake(), &INTERESTED])
            ),
        ]
    );
    // A leecher that has nothing: we are not interested in it.
    let (leech, outs) = connect(&mut s, t, 2, FAST, ID_B);
    assert_eq!(sent(&outs, leech), HAVE_NONE);
    assert_eq!(recv(&mut s, t, leech, &HAVE_NONE), []);

    // Unchoke: MIN_QUEUE requests of 17 bytes each.
    let outs = recv(&mut s, t, seed, &UNCHOKE);
    let bytes = sent(&outs, seed);
    assert_eq!(outs.len(), 1);
    assert_eq!(bytes.len(), MIN_QUEUE * 17);
    let mut pending: VecDeque<BlockRequest> = requests_in(&bytes).into();
    assert_eq!(pending.len(), MIN_QUEUE);

    let mut got = BTreeSet::new();
    let mut passed = Vec::new();
    while let Some(r) = pending.pop_front() {
        // Every request is for one of the torrent's blocks, exactly.
        assert!(r.index < 8 && r.begin % BLOCK_LEN == 0, "{r:?}");
        assert_eq!(r.length, block_len(r.index, r.begin), "{r:?}");
        assert!(got.insert((r.index, r.begin)), "requested twice: {r:?}");
        let outs = recv(&mut s, t, seed, &piece_msg(r));
        let mut verify = None;
        for o in outs {
            match o {
                Owned::Write { piece, begin, data } => {
                    assert_eq!((piece, begin), (r.index, r.begin));
                    assert_eq!(data, content(r.index, r.begin, r.length));
                }
                Owned::Verify { piece, hash } => {
                    assert_eq!(piece, r.index);
                    assert_eq!(hash, piece_hash(TOTAL, piece));
                    verify = Some(piece);
                }
                Owned::Transmit(c, b) if c == seed => pending.extend(requests_in(&b)),
                o => panic!("unexpected {o:?}"),
            }
        }
        if let Some(piece) = verify {
            s.piece_checked(t, piece, true).unwrap();
            passed.push(piece);
            let outs = drain(&mut s, t);
            if passed.len() < 8 {
                assert_eq!(
                    outs,
                    [
                        Owned::Transmit(seed, have_bytes(piece)),
                        Owned::Transmit(leech, have_bytes(piece)),
                    ]
                );
            } else {
                // The last piece: complete, and two seeds have nothing to trade.
                assert_eq!(
                    outs,
                    [
                        Owned::Complete,
                        Owned::Close(seed),
                        Owned::Closed(seed, addr(1), CloseReason::BothSeeds),
                        Owned::Transmit(leech, have_bytes(piece)),
                    ]
                );
            }
        }
    }
    assert_eq!(got.len(), 7 * 4 + 3);
    assert_eq!(passed.len(), 8);
    assert!(s.is_complete());
    let st = s.stats();
    assert_eq!((st.downloaded, st.wasted, st.hash_failures), (TOTAL, 0, 0));
    assert_eq!(
        s.piece_checked(t, 0, true),
        Err(SessionError::NotAwaitingCheck)
    );
    // The leecher stays; a newcomer that has everything is turned away at once.
    assert_eq!(s.peer_count(), 1);
    let (c, outs) = connect(&mut s, t, 3, FAST, peer_id(3));
    assert_eq!(sent(&outs, c), HAVE_ALL);
    let outs = recv(&mut s, t, c, &HAVE_ALL);
    assert_eq!(
        outs,
        [
            Owned::Close(c),
            Owned::Closed(c, addr(3), CloseReason::BothSeeds)
        ]
    );
}

#[test]
fn bep10_reqq_below_min_queue_caps_requests_without_panicking() {
    let mut s = session();
    let (conn, _) = connect(&mut s, at(0), 1, FAST_EXT, ID_A);
    let ext = msg(Message::Extended {
        id: 0,
        payload: b"d4:reqqi2ee",
    });
    let outs = recv(&mut s, at(0), conn, &cat(&[&ext, &HAVE_ALL, &UNCHOKE]));
    let bytes = sent(&outs, conn);
    assert_eq!(&bytes[..5], INTERESTED);
    assert_eq!(
        requests_in(&bytes[5..]).len(),
        2,
        "BEP 10 reqq caps the queue"
    );
}

// ---- 4. hash failures ----------------------------------------------------------------------

/// Feeds the seed's blocks until a piece is complete; returns it.
fn leech_one_piece(s: &mut S, now: Instant, conn: ConnId, reqs: Vec<BlockRequest>) -> u32 {
    let mut pending: VecDeque<_> = reqs.into();
    while let Some(r) = pending.pop_front() {
        for o in recv(s, now, conn, &piece_msg(r)) {
            match o {
                Owned::Verify { piece, .. } => return piece,
                Owned::Transmit(c, b) if c == conn => pending.extend(requests_in(&b)),
                Owned::Write { .. } => {}
                o => panic!("unexpected {o:?}"),
            }
        }
    }
    panic!("no piece completed");
}

#[test]
fn hash_failure_of_a_piece_from_one_peer_bans_it() {
    let mut s = session();
    let t = at(0);
    let (conn, reqs) = unchoking_seed(&mut s, t, 1, ID_A);
    let piece = leech_one_piece(&mut s, t, conn, reqs);
    s.piece_checked(t, piece, false).unwrap();
    assert_eq!(
        drain(&mut s, t),
        [
            Owned::Close(conn),
            Owned::Closed(conn, addr(1), CloseReason::Banned)
        ]
    );
    assert!(s.is_banned(addr(1).ip()));
    assert!(!s.is_banned(addr(2).ip()));
    let st = s.stats();
    assert_eq!((st.hash_failures, st.banned, st.violations), (1, 1, 0));
    // The piece is wanted again.
    assert!(!s.picker().has(piece));
    assert_eq!(
        s.piece_checked(t, piece, false),
        Err(SessionError::NotAwaitingCheck)
    );
    // The same IP on another port is refused at once, and cannot be dialled.
    let again = inbound(77);
    s.handle_input(
        at(1),
        Input::Accepted {
            conn: again,
            peer: PeerAddr::v4([10, 0, 0, 1], 9999),
        },
    );
    assert_eq!(drain(&mut s, at(1)), [Owned::Close(again)]);
    assert_eq!(
        s.add_peer(at(1), PeerAddr::v4([10, 0, 0, 1], 1234)),
        Err(SessionError::Banned)
    );
    assert_eq!(s.peer_count(), 0);
}

#[test]
fn hash_failure_with_two_contributors_strikes_both_and_bans_neither() {
    let mut s = session();
    let t = at(0);
    let (a, reqs) = unchoking_seed(&mut s, t, 1, ID_A);
    let x = reqs[0].index;
    let of_x: Vec<_> = reqs.iter().copied().filter(|r| r.index == x).collect();
    // A sends half of piece X and chokes us: the other half is free again.
    for r in &of_x[..2] {
        recv(&mut s, t, a, &piece_msg(*r));
    }
    recv(&mut s, t, a, &CHOKE);
    // B unchokes us and is asked for the rest of X first (partial pieces first).
    let (b, _) = connect(&mut s, t, 2, FAST, ID_B);
    assert_eq!(
        recv(&mut s, t, b, &HAVE_ALL),
        [Owned::Transmit(b, INTERESTED.to_vec())]
    );
    let asked = requests_in(&sent(&recv(&mut s, t, b, &UNCHOKE), b));
    assert_eq!(&asked[..2], &of_x[2..]);
    // A block A was asked for before the choke is not taken from it now.
    let late = recv(&mut s, t, a, &piece_msg(of_x[2]));
    assert!(
        late.iter().all(|o| !matches!(o, Owned::Write { .. })),
        "{late:?}"
    );
    let mut piece = None;
    for r in &asked[..2] {
        for o in recv(&mut s, t, b, &piece_msg(*r)) {
            if let Owned::Verify { piece: p, .. } = o {
                piece = Some(p);
            }
        }
    }
    let piece = piece.expect("B's blocks completed the piece");
    assert_eq!(piece, x);
    s.piece_checked(t, piece, false).unwrap();
    let outs = drain(&mut s, t);
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Owned::Close(_) | Owned::Closed(..))),
        "{outs:?}"
    );
    assert!(s.picker().is_on_parole(0) && s.picker().is_on_parole(1));
    let st = s.stats();
    assert_eq!((st.hash_failures, st.banned), (1, 0));
    assert_eq!(s.peer_count(), 2);

    // B, on parole, finishes a piece of its own that passes: its parole ends (it alone sent
    // it), A's does not.
    let mut pending: VecDeque<BlockRequest> = asked[2..].iter().copied().collect();
    pending.extend(requests_in(&sent(&outs, b)));
    let mut passed = None;
    while let Some(r) = pending.pop_front() {
        for o in recv(&mut s, t, b, &piece_msg(r)) {
            match o {
                Owned::Verify { piece: p, .. } => passed = Some(p),
                Owned::Transmit(c, bytes) if c == b => pending.extend(requests_in(&bytes)),
                _ => {}
            }
        }
        if passed.is_some() {
            break;
        }
    }
    let passed = passed.expect("B completes a piece");
    assert_ne!(passed, x);
    s.piece_checked(t, passed, true).unwrap();
    drain(&mut s, t);
    assert!(!s.picker().is_on_parole(1), "B's own piece passed");
    assert!(s.picker().is_on_parole(0));
}

/// A piece the driver could not store (a disk error) is fetched again; the peer that sent
/// it is not blamed.
#[test]
fn a_piece_lost_to_the_disk_is_fetched_again_and_blames_nobody() {
    let mut s = session();
    let t = at(0);
    let (a, reqs) = unchoking_seed(&mut s, t, 1, ID_A);
    let x = reqs[0].index;
    let mut verify = None;
    for r in reqs.iter().filter(|r| r.index == x) {
        for o in recv(&mut s, t, a, &piece_msg(*r)) {
            if let Owned::Verify { piece, .. } = o {
                verify = Some(piece);
            }
        }
    }
    assert_eq!(verify, Some(x));
    s.piece_lost(t, x).unwrap();
    assert_eq!(s.piece_lost(t, x), Err(SessionError::NotAwaitingCheck));
    assert!(!s.picker().is_on_parole(0));
    assert_eq!((s.stats().hash_failures, s.stats().banned), (0, 0));
    // Its blocks are free again, for the next requests.
    assert!(!s.picker().has(x));
    for b in 0..4 {
        assert_eq!(
            s.picker().block_state(x, b),
            Some(super::super::picker::BlockState::Free)
        );
    }
    assert_eq!(s.peer_count(), 1);
}

// ---- 5. uploading --------------------------------------------------------------------------

/// A fast peer that says it is interested is unchoked at once while a regular slot is free
/// (libtorrent's `incoming_interested`), without waiting for the next rechoke. `have` is
/// what we announce before our BEP 10 handshake.
fn serving(s: &mut S, n: u8, id: [u8; 20], have: &[u8]) -> ConnId {
    let (conn, outs) = connect(s, at(0), n, FAST_EXT, id);
    assert_eq!(sent(&outs, conn), cat(&[have, &our_extended_handshake()]));
    assert_eq!(recv(s, at(1), conn, &HAVE_NONE), []);
    assert_eq!(
        recv(s, at(1), conn, &INTERESTED),
        [Owned::Transmit(conn, UNCHOKE.to_vec())]
    );
    // The rechoke 10 s in keeps it.
    assert_eq!(drain(s, at(10)), []);
    conn
}

#[test]
fn bep3_bep6_upload_requests_become_reads_and_blocks_go_out_framed() {
    let mut s = seed();
    let p = serving(&mut s, 1, ID_A, &HAVE_ALL);
    let t = at(11);
    let r1 = req(2, 0x4000, BLOCK_LEN);
    assert_eq!(recv(&mut s, t, p, &request_bytes(r1)), [Owned::Read(p, r1)]);
    let data = content(2, 0x4000, BLOCK_LEN);
    assert_eq!(
        s.send_block(t, p, r1, &data[1..]),
        Err(SessionError::WrongLength)
    );
    s.send_block(t, p, r1, &data).unwrap();
    let header = [0, 0, 0x40, 0x09, 7, 0, 0, 0, 2, 0, 0, 0x40, 0x00];
    assert_eq!(piece_header(r1), header);
    assert_eq!(
        drain(&mut s, t),
        [Owned::Transmit(p, cat(&[&header, &data]))]
    );
    assert_eq!(s.stats().uploaded, u64::from(BLOCK_LEN));
    // Answered once only.
    assert_eq!(
        s.send_block(t, p, r1, &data),
        Err(SessionError::NotRequested)
    );

    // The short last block of the torrent.
    let r2 = req(7, 0x8000, LAST_BLOCK);
    assert_eq!(recv(&mut s, t, p, &request_bytes(r2)), [Owned::Read(p, r2)]);
    let data = content(7, 0x8000, LAST_BLOCK);
    s.send_block(t, p, r2, &data).unwrap();
    assert_eq!(
        drain(&mut s, t),
        [Owned::Transmit(p, cat(&[&piece_header(r2), &data]))]
    );

    // BEP 6: a cancel of an announced request is answered with a reject, and the late
    // answer is refused.
    let r3 = req(5, 0, BLOCK_LEN);
    assert_eq!(recv(&mut s, t, p, &request_bytes(r3)), [Owned::Read(p, r3)]);
    assert_eq!(
        recv(&mut s, t, p, &cancel_bytes(r3)),
        [Owned::Transmit(p, reject_bytes(r3))]
    );
    assert_eq!(
        s.send_block(t, p, r3, &content(5, 0, BLOCK_LEN)),
        Err(SessionError::NotRequested)
    );
    assert_eq!(
        s.send_block(t, inbound(99), r3, &content(5, 0, BLOCK_LEN)),
        Err(SessionError::UnknownConn)
    );
    let st = s.stats();
    assert_eq!(st.uploaded, u64::from(BLOCK_LEN + LAST_BLOCK));
    assert_eq!(st.violations, 0);
}

#[test]
fn send_block_twice_before_draining_is_busy() {
    let mut s = seed();
    let p = serving(&mut s, 1, ID_A, &HAVE_ALL);
    let t = at(11);
    let (r1, r2) = (req(0, 0, BLOCK_LEN), req(0, BLOCK_LEN, BLOCK_LEN));
    let outs = recv(
        &mut s,
        t,
        p,
        &cat(&[&request_bytes(r1), &request_bytes(r2)]),
    );
    assert_eq!(outs, [Owned::Read(p, r1), Owned::Read(p, r2)]);
    s.send_block(t, p, r2, &content(0, BLOCK_LEN, BLOCK_LEN))
        .unwrap();
    assert_eq!(
        s.send_block(t, p, r1, &content(0, 0, BLOCK_LEN)),
        Err(SessionError::Busy)
    );
    assert_eq!(drain(&mut s, t).len(), 1);
    s.send_block(t, p, r1, &content(0, 0, BLOCK_LEN)).unwrap();
    assert_eq!(
        drain(&mut s, t),
        [Owned::Transmit(
            p,
            cat(&[&piece_header(r1), &content(0, 0, BLOCK_LEN)])
        )]
    );
}

#[test]
fn bep6_request_from_a_choked_fast_peer_is_rejected_and_bep3_plain_peer_dropped() {
    let mut s = seed();
    let (fast, _) = connect(&mut s, at(0), 1, FAST, ID_A);
    let (plain, outs) = connect(&mut s, at(0), 2, PLAIN, ID_B);
    assert_eq!(sent(&outs, plain), [0, 0, 0, 2, 5, 0xFF]);
    let r = req(1, 0, BLOCK_LEN);
    assert_eq!(
        recv(&mut s, at(1), fast, &request_bytes(r)),
        [Owned::Transmit(fast, reject_bytes(r))]
    );
    assert_eq!(recv(&mut s, at(1), plain, &request_bytes(r)), []);
    let st = s.stats();
    assert_eq!((st.refused_requests, st.violations), (2, 0));
}

#[test]
fn bep6_request_for_a_piece_we_lack_is_rejected() {
    let mut s = session();
    for p in (0..8).filter(|&p| p != 3) {
        s.have_piece(Instant::ZERO, p).unwrap();
    }
    // BEP 3 bitfield: all but piece 3, 1110_1111.
    let p = serving(&mut s, 1, ID_A, &[0, 0, 0, 2, 5, 0xEF]);
    let t = at(11);
    let r = req(3, 0, BLOCK_LEN);
    assert_eq!(
        recv(&mut s, t, p, &request_bytes(r)),
        [Owned::Transmit(p, reject_bytes(r))]
    );
    let ok = req(4, 0, BLOCK_LEN);
    assert_eq!(recv(&mut s, t, p, &request_bytes(ok)), [Owned::Read(p, ok)]);
    assert_eq!(s.stats().refused_requests, 1);
}

#[test]
fn bep6_choking_rejects_every_queued_request() {
    let mut s = seed();
    let p = serving(&mut s, 1, ID_A, &HAVE_ALL);
    let (r1, r2) = (req(0, 0, BLOCK_LEN), req(6, 0xC000, BLOCK_LEN));
    let outs = recv(
        &mut s,
        at(11),
        p,
        &cat(&[&request_bytes(r1), &request_bytes(r2)]),
    );
    assert_eq!(outs, [Owned::Read(p, r1), Owned::Read(p, r2)]);
    // Not interested any more: the next rechoke chokes it.
    assert_eq!(recv(&mut s, at(12), p, &NOT_INTERESTED), []);
    assert_eq!(
        drain(&mut s, at(20)),
        [Owned::Transmit(
            p,
            cat(&[&CHOKE, &reject_bytes(r1), &reject_bytes(r2)])
        )]
    );
    assert_eq!(
        s.send_block(at(20), p, r1, &content(0, 0, BLOCK_LEN)),
        Err(SessionError::NotRequested)
    );
}

// ---- 6. protocol violations ----------------------------------------------------------------

/// A fresh session, a peer with `reserved` that completes its handshake, then `bytes`:
/// the connection must be closed for `v`.
fn assert_violation<const P: usize>(total: u64, reserved: Reserved, bytes: &[u8], v: Violation) {
    let mut s = session_of::<P>(total);
    let (conn, _) = connect(&mut s, at(0), 1, reserved, ID_A);
    let outs = recv(&mut s, at(0), conn, bytes);
    assert_eq!(
        outs,
        [
            Owned::Close(conn),
            Owned::Closed(conn, addr(1), CloseReason::Protocol(v))
        ],
        "{v:?}"
    );
    assert_eq!(s.stats().violations, 1, "{v:?}");
    assert_eq!(s.peer_count(), 0);
}

#[test]
fn protocol_violations_close_the_connection() {
    let piece = |index: u32, begin: u32, len: usize| {
        msg(Message::Piece {
            index,
            begin,
            block: &vec![0; len],
        })
    };
    let request = |r| request_bytes(r);
    let cases: Vec<(Reserved, Vec<u8>, Violation)> = vec![
        // BEP 3: the bitfield "is only ever sent as the first message".
        (
            PLAIN,
            cat(&[&INTERESTED, &[0, 0, 0, 2, 5, 0xFF]]),
            Violation::LateBitfield,
        ),
        // BEP 6: have all / have none take the bitfield's place, first.
        (FAST, cat(&[&HAVE_NONE, &HAVE_ALL]), Violation::LateBitfield),
        (
            FAST,
            cat(&[&[0, 0, 0, 2, 5, 0x00], &HAVE_NONE]),
            Violation::LateBitfield,
        ),
        // BEP 3: a bitfield of the wrong length.
        (PLAIN, vec![0, 0, 0, 3, 5, 0xFF, 0x00], Violation::Bitfield),
        (PLAIN, vec![0, 0, 0, 1, 5], Violation::Bitfield),
        // BEP 6: its messages without the reserved bit.
        (PLAIN, HAVE_ALL.to_vec(), Violation::NotFast),
        (PLAIN, HAVE_NONE.to_vec(), Violation::NotFast),
        (
            PLAIN,
            reject_bytes(req(0, 0, BLOCK_LEN)),
            Violation::NotFast,
        ),
        // BEP 3 have past the last piece.
        (FAST, have_bytes(8), Violation::Have),
        // Requests longer than 16 KiB, empty, or outside the torrent.
        (FAST, request(req(0, 0, BLOCK_LEN + 1)), Violation::Request),
        (FAST, request(req(0, 0, 0)), Violation::Request),
        (FAST, request(req(8, 0, BLOCK_LEN)), Violation::Request),
        (
            FAST,
            request(req(7, 0x8000, LAST_BLOCK + 1)),
            Violation::Request,
        ),
        (
            FAST,
            request(req(0, 0xC000 + 1, BLOCK_LEN)),
            Violation::Request,
        ),
        (FAST, request(req(0, u32::MAX, 2)), Violation::Request),
        // Blocks that are not the torrent's: misaligned, wrong length, past the end.
        (FAST, piece(0, 1, BLOCK_LEN as usize), Violation::Block),
        (FAST, piece(0, 0, 100), Violation::Block),
        (FAST, piece(7, 0x8000, BLOCK_LEN as usize), Violation::Block),
        (FAST, piece(8, 0, BLOCK_LEN as usize), Violation::Block),
        // A length prefix over the limit (half the receive buffer less the prefix):
        // refused as soon as the prefix is in.
        (
            FAST,
            vec![0, 0, 0x43, 0xFD],
            Violation::Wire(WireError::TooLong {
                len: 17_405,
                max: 17_404,
            }),
        ),
        (
            FAST,
            vec![0xFF, 0xFF, 0xFF, 0xFF],
            Violation::Wire(WireError::TooLong {
                len: u32::MAX,
                max: 17_404,
            }),
        ),
        // A payload of the wrong size for its id.
        (
            FAST,
            vec![0, 0, 0, 2, 2, 0],
            Violation::Wire(WireError::BadLength { id: 2, len: 1 }),
        ),
    ];
    for (reserved, bytes, v) in cases {
        assert_violation::<8>(TOTAL, reserved, &bytes, v);
    }
    // Five pieces: one bitfield byte with three spare bits, which must be zero.
    let five = 4 * u64::from(PIECE_LEN) + 1;
    assert_violation::<8>(five, PLAIN, &[0, 0, 0, 2, 5, 0xFC], Violation::Bitfield);
    assert_violation::<8>(five, PLAIN, &[0, 0, 0, 2, 5, 0xF9], Violation::Bitfield);
}

#[test]
fn garbage_handshakes_and_oversized_reads_close_the_connection() {
    let mut bad_pstrlen = our_handshake();
    bad_pstrlen[0] = 18;
    let mut bad_pstr = our_handshake();
    bad_pstr[5] = b't';
    let cases: [(&[u8], Violation); 4] = [
        (b"GET / HTTP/1.1\r\n\r\n", Violation::Handshake),
        (&bad_pstrlen, Violation::Handshake),
        (&bad_pstr[..10], Violation::Handshake),
        (&[0u8; S::MAX_READ * 2 + 1], Violation::Overflow),
    ];
    for (bytes, v) in cases {
        let mut s = session();
        let conn = accept(&mut s, at(0), 1);
        assert_eq!(
            recv(&mut s, at(0), conn, bytes),
            [
                Owned::Close(conn),
                Owned::Closed(conn, addr(1), CloseReason::Protocol(v))
            ],
            "{v:?}"
        );
        assert_eq!(s.stats().violations, 1);
    }
}

#[test]
fn unknown_and_ignored_messages_are_not_violations() {
    let mut s = session();
    let (conn, _) = connect(&mut s, at(0), 1, FAST_EXT, ID_A);
    let stream = cat(&[
        &HAVE_NONE,
        &msg(Message::Port(6881)),
        &msg(Message::Suggest { index: 1 }),
        &msg(Message::AllowedFast { index: 2 }),
        &msg(Message::Unknown {
            id: 0x42,
            payload: b"xyz",
        }),
        &msg(Message::Extended {
            id: 3,
            payload: b"de",
        }),
        // A BEP 10 handshake that is not bencode: ignored, not fatal.
        &msg(Message::Extended {
            id: 0,
            payload: b"not bencode",
        }),
        &KEEP_ALIVE,
    ]);
    assert_eq!(recv(&mut s, at(0), conn, &stream), []);
    assert_eq!(s.stats().violations, 0);
    assert_eq!(s.stats().ignored, 4);
    assert_eq!(s.peer_count(), 1);
}

/// Random bytes after a good handshake, and random well-formed messages, never panic, and
/// every output keeps the contract (Wait comes).
#[test]
fn random_streams_never_panic() {
    let mut rng = Rng::new(99);
    for round in 0..300u32 {
        let mut s = session();
        if round % 3 == 0 {
            s.have_piece(Instant::ZERO, round % 8).unwrap();
        }
        let (conn, _) = connect(&mut s, at(0), 1, FAST_EXT, ID_A);
        let mut stream = Vec::new();
        for _ in 0..20 {
            let r = req(
                rng.below(10) as u32,
                [0, 1, BLOCK_LEN, 3 * BLOCK_LEN][rng.below(4) as usize],
                [0, 1, LAST_BLOCK, BLOCK_LEN, BLOCK_LEN + 1][rng.below(5) as usize],
            );
            let reqq = std::format!("d4:reqqi{}ee", rng.below(300) as i64 - 10);
            let m = match rng.below(14) {
                0 => HAVE_ALL.to_vec(),
                1 => HAVE_NONE.to_vec(),
                2 => UNCHOKE.to_vec(),
                3 => CHOKE.to_vec(),
                4 => INTERESTED.to_vec(),
                5 => request_bytes(r),
                6 => cancel_bytes(r),
                7 => reject_bytes(r),
                8 if r.length <= BLOCK_LEN => {
                    piece_msg(req(r.index.min(7), r.begin.min(2 * BLOCK_LEN), r.length))
                }
                9 => have_bytes(rng.below(9) as u32),
                10 => msg(Message::Extended {
                    id: 0,
                    payload: reqq.as_bytes(),
                }),
                11 => {
                    let mut b = vec![0; rng.below(8) as usize];
                    rng.fill(&mut b);
                    b
                }
                12 => vec![0, 0, 0, 2, 5, rng.next_u32() as u8],
                _ => KEEP_ALIVE.to_vec(),
            };
            stream.extend_from_slice(&m);
        }
        let mut t = 0;
        let mut rest = stream.as_slice();
        while !rest.is_empty() {
            let n = (1 + rng.below(3000) as usize).min(rest.len());
            for o in recv(&mut s, at_ms(t), conn, &rest[..n]) {
                match o {
                    Owned::Read(c, b) => {
                        let _ = s.send_block(at_ms(t), c, b, &content(b.index, b.begin, b.length));
                    }
                    Owned::Verify { piece, .. } => {
                        let _ = s.piece_checked(at_ms(t), piece, rng.chance(0.5));
                    }
                    _ => {}
                }
            }
            rest = &rest[n..];
            t += rng.below(30_000);
        }
        let _ = drain(&mut s, at_ms(t + 400_000));
    }
}

// ---- 7. timers -----------------------------------------------------------------------------

/// Polls at every deadline the machine asks for, from `from` until `until`; returns what
/// each poll gave, with its instant.
fn follow(s: &mut S, from: Instant, until: Instant) -> Vec<(Instant, Vec<Owned>)> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= until {
        let got = drain(s, now);
        if !got.is_empty() {
            out.push((now, got));
        }
        match wait_deadline(s, now) {
            Some(next) => {
                assert!(next > now, "a deadline in the past");
                now = next;
            }
            None => break,
        }
    }
    out
}

#[test]
fn handshake_not_finished_in_20_s_times_out() {
    let mut s = session();
    let conn = accept(&mut s, at(0), 1);
    // Half a handshake does not count.
    assert_eq!(recv(&mut s, at_ms(5_500), conn, &our_handshake()[..30]), []);
    assert_eq!(wait_deadline(&mut s, at_ms(5_500)), Some(at_ms(6_500)));
    // Timers run once a second: the close comes at the first tick at or after 20 s.
    let got = follow(&mut s, at_ms(5_500), at(30));
    assert_eq!(got.len(), 1, "{got:?}");
    let (when, outs) = &got[0];
    assert!(*when >= at(20) && *when < at(21), "{when:?}");
    assert_eq!(
        *outs,
        [
            Owned::Close(conn),
            Owned::Closed(conn, addr(1), CloseReason::Timeout)
        ]
    );
    assert_eq!(wait_deadline(&mut s, at(30)), None);
}

#[test]
fn bep3_keep_alive_after_two_minutes_of_silence_and_idle_close() {
    let mut s = session();
    let (conn, outs) = connect(&mut s, at(0), 1, FAST, ID_A);
    assert_eq!(sent(&outs, conn), HAVE_NONE);
    assert_eq!(drain(&mut s, at(60)), []);
    assert_eq!(drain(&mut s, at(119)), []);
    assert_eq!(
        drain(&mut s, at(120)),
        [Owned::Transmit(conn, KEEP_ALIVE.to_vec())]
    );
    assert_eq!(drain(&mut s, at(239)), []);
    assert_eq!(
        drain(&mut s, at(240)),
        [Owned::Transmit(conn, KEEP_ALIVE.to_vec())]
    );
    // The peer said nothing since the handshake: three keep-alive periods close it.
    assert_eq!(drain(&mut s, at(359)), []);
    assert_eq!(
        drain(&mut s, at(360)),
        [
            Owned::Close(conn),
            Owned::Closed(conn, addr(1), CloseReason::Idle)
        ]
    );
}

#[test]
fn peer_sending_nothing_for_60_s_is_snubbed_and_its_requests_cancelled() {
    let mut s = session();
    let (conn, reqs) = unchoking_seed(&mut s, at(0), 1, ID_A);
    assert_eq!(reqs.len(), MIN_QUEUE);
    // Keep-alives keep the connection open but are not blocks.
    assert_eq!(recv(&mut s, at(30), conn, &KEEP_ALIVE), []);
    assert_eq!(drain(&mut s, at(59)), []);
    let outs = drain(&mut s, at(60));
    assert_eq!(outs.len(), 1, "{outs:?}");
    let bytes = sent(&outs, conn);
    // BEP 3 cancel for each outstanding request, oldest first, then one request only.
    let cancels: Vec<u8> = reqs.iter().flat_map(|r| cancel_bytes(*r)).collect();
    assert_eq!(&bytes[..cancels.len()], cancels);
    let again = requests_in(&bytes[cancels.len()..]);
    assert_eq!(again.len(), 1);
    // Still one at a time a second later.
    assert_eq!(drain(&mut s, at(61)), []);
    // A block ends the snub: the queue is topped up to MIN_QUEUE again.
    let outs = recv(&mut s, at(62), conn, &piece_msg(again[0]));
    assert!(matches!(outs[0], Owned::Write { .. }));
    assert_eq!(requests_in(&sent(&outs, conn)).len(), MIN_QUEUE);
}

// ---- 8. reads split anywhere -----------------------------------------------------------------

/// What one turn of the script produced: the events in order and the bytes sent per
/// connection (a stream has no message boundaries to compare).
type Record = (Vec<Owned>, BTreeMap<ConnId, Vec<u8>>);

fn record(outs: Vec<Owned>, rec: &mut Record) {
    for o in outs {
        match o {
            Owned::Transmit(c, b) => rec.1.entry(c).or_default().extend_from_slice(&b),
            o => rec.0.push(o),
        }
    }
}

/// Runs the script, feeding each turn of the peer in reads of `chunk` bytes; returns one
/// record per turn.
fn scripted_exchange(chunk: usize) -> (Vec<Record>, Stats) {
    let mut s = session();
    let t = at(0);
    let conn = accept(&mut s, t, 1);
    let ext = msg(Message::Extended {
        id: 0,
        payload: b"d1:md6:ut_pexi1ee4:reqqi250ee",
    });
    let mut turns: Vec<Record> = Vec::new();
    let feed = |s: &mut S, bytes: &[u8]| -> Record {
        let mut rec = Record::default();
        for piece in bytes.chunks(chunk) {
            record(recv(s, t, conn, piece), &mut rec);
        }
        // The driver checks the pieces after the turn.
        let verify: Vec<u32> = rec
            .0
            .iter()
            .filter_map(|o| match o {
                Owned::Verify { piece, .. } => Some(*piece),
                _ => None,
            })
            .collect();
        for p in verify {
            s.piece_checked(t, p, true).unwrap();
            record(drain(s, t), &mut rec);
        }
        rec
    };
    // Turn 1: handshake, BEP 10 handshake, have all, unchoke, keep-alive.
    let t1 = cat(&[
        &handshake(FAST_EXT, INFO_HASH, ID_A),
        &ext,
        &HAVE_ALL,
        &UNCHOKE,
        &KEEP_ALIVE,
    ]);
    turns.push(feed(&mut s, &t1));
    // Turn 2: the blocks asked for (the last bytes of the stream were the requests).
    let asked = |rec: &Record| {
        let b = &rec.1[&conn];
        let frames = frames(b);
        frames
            .iter()
            .filter(|f| f.len() > 4 && f[4] == 6)
            .map(|f| requests_in(f)[0])
            .collect::<Vec<_>>()
    };
    let first = asked(&turns[0]);
    assert_eq!(first.len(), MIN_QUEUE);
    let t2: Vec<u8> = first.iter().flat_map(|r| piece_msg(*r)).collect();
    turns.push(feed(&mut s, &t2));
    // Turn 3: choke (our requests are gone), keep-alive, unchoke (asked again).
    turns.push(feed(&mut s, &cat(&[&CHOKE, &KEEP_ALIVE, &UNCHOKE])));
    // Turn 4: the blocks asked for after the unchoke.
    let again: Vec<BlockRequest> = asked(&turns[2]);
    let t4: Vec<u8> = again.iter().flat_map(|r| piece_msg(*r)).collect();
    turns.push(feed(&mut s, &t4));
    // Turn 5: a request while choked (BEP 6 reject), interest (unchoked at once), a request
    // for the piece we have (a read) and a have.
    let r = req(first[0].index, 0, BLOCK_LEN);
    let t5 = cat(&[
        &request_bytes(r),
        &INTERESTED,
        &request_bytes(r),
        &have_bytes(5),
        &KEEP_ALIVE,
    ]);
    turns.push(feed(&mut s, &t5));
    // Turn 6: the peer cancels it (BEP 6 reject). (In the same read as the request, the
    // read would never be announced: that difference is the point of cancelling.)
    turns.push(feed(&mut s, &cancel_bytes(r)));
    (turns, s.stats())
}

#[test]
fn reads_split_anywhere_give_identical_outputs() {
    let whole = scripted_exchange(S::MAX_READ);
    // Sanity: the script did something.
    assert!(
        whole.0[1]
            .0
            .iter()
            .any(|o| matches!(o, Owned::Write { .. }))
    );
    assert!(whole.1.downloaded >= 4 * u64::from(BLOCK_LEN) - u64::from(BLOCK_LEN));
    for chunk in [1, 2, 3, 5, 13, 17, 68, 100, 4096, 16_397, S::MAX_READ - 1] {
        let split = scripted_exchange(chunk);
        assert_eq!(split.1, whole.1, "stats with reads of {chunk}");
        assert_eq!(split.0.len(), whole.0.len());
        for (i, (a, b)) in split.0.iter().zip(&whole.0).enumerate() {
            assert_eq!(a.0, b.0, "events of turn {i} with reads of {chunk}");
            assert_eq!(a.1, b.1, "bytes of turn {i} with reads of {chunk}");
        }
    }
}

// ---- 9. end game ---------------------------------------------------------------------------

#[test]
fn strict_end_game_duplicates_only_when_no_block_is_free_and_cancels_the_rest() {
    let mut s = session();
    // Missing: piece 6 (4 blocks) and the short piece 7 (3 blocks).
    for p in 0..6 {
        s.have_piece(Instant::ZERO, p).unwrap();
    }
    let t = at(0);
    let mut peers = Vec::new();
    for (n, id) in [(1, ID_A), (2, ID_B)] {
        let (c, outs) = connect(&mut s, t, n, FAST, id);
        assert_eq!(sent(&outs, c), [0, 0, 0, 2, 5, 0xFC]);
        assert_eq!(
            recv(&mut s, t, c, &HAVE_ALL),
            [Owned::Transmit(c, INTERESTED.to_vec())]
        );
        peers.push(c);
    }
    let (a, b) = (peers[0], peers[1]);
    let a_reqs = requests_in(&sent(&recv(&mut s, t, a, &UNCHOKE), a));
    assert_eq!(a_reqs.len(), MIN_QUEUE);
    assert!(!s.picker().in_end_game());
    // B unchokes: it gets the three free blocks only, none of A's, though it wants four.
    let b_reqs = requests_in(&sent(&recv(&mut s, t, b, &UNCHOKE), b));
    assert_eq!(b_reqs.len(), 3);
    let all: BTreeSet<(u32, u32)> = a_reqs
        .iter()
        .chain(&b_reqs)
        .map(|r| (r.index, r.begin))
        .collect();
    assert_eq!(all.len(), 7, "disjoint: {a_reqs:?} {b_reqs:?}");
    assert!(s.picker().in_end_game());
    // The next refill (a timer tick): no block is free, so B duplicates one of A's, the
    // lowest first; A already has its four.
    let dup = *a_reqs.iter().min_by_key(|r| (r.index, r.begin)).unwrap();
    assert_eq!(
        drain(&mut s, at(1)),
        [Owned::Transmit(b, request_bytes(dup))]
    );
    // A delivers it: B's copy is cancelled (BEP 3 cancel), and each tops up with a
    // duplicate of the other's.
    let outs = recv(&mut s, at(1), a, &piece_msg(dup));
    assert_eq!(
        outs[0],
        Owned::Write {
            piece: dup.index,
            begin: dup.begin,
            data: content(dup.index, dup.begin, dup.length),
        }
    );
    let a_dup = *b_reqs.iter().min_by_key(|r| (r.index, r.begin)).unwrap();
    let b_dup = *a_reqs
        .iter()
        .filter(|r| **r != dup)
        .min_by_key(|r| (r.index, r.begin))
        .unwrap();
    assert_eq!(
        outs[1..],
        [
            Owned::Transmit(a, request_bytes(a_dup)),
            Owned::Transmit(b, cat(&[&cancel_bytes(dup), &request_bytes(b_dup)])),
        ]
    );
    // B sends its cancelled copy anyway: wasted, not written twice.
    assert_eq!(s.stats().wasted, 0);
    let outs = recv(&mut s, at(1), b, &piece_msg(dup));
    assert!(
        !outs.iter().any(|o| matches!(o, Owned::Write { .. })),
        "{outs:?}"
    );
    assert_eq!(s.stats().wasted, u64::from(dup.length));
}

// ---- two sessions --------------------------------------------------------------------------

/// Plays the leecher's driver: stores blocks, checks pieces, forwards bytes.
fn leech_driver(
    leech: &mut S,
    now: Instant,
    store: &mut [u8],
    to_seed: &mut Vec<u8>,
    closed: &mut Option<CloseReason>,
) {
    for o in drain(leech, now) {
        match o {
            Owned::Transmit(_, b) => to_seed.extend_from_slice(&b),
            Owned::Write { piece, begin, data } => {
                let at = (piece * PIECE_LEN + begin) as usize;
                store[at..at + data.len()].copy_from_slice(&data);
            }
            Owned::Verify { piece, hash } => {
                let start = (piece * PIECE_LEN) as usize;
                let end = start + piece_len(TOTAL, piece) as usize;
                let ok = <[u8; 20]>::from(Sha1::digest(&store[start..end])) == hash;
                leech.piece_checked(now, piece, ok).unwrap();
                leech_driver(leech, now, store, to_seed, closed);
            }
            Owned::Closed(_, _, reason) => *closed = Some(reason),
            Owned::Connected(..) | Owned::Complete | Owned::Close(_) => {}
            o => panic!("leecher: unexpected {o:?}"),
        }
    }
}

/// Two sessions of this crate talk to each other: a seed and a leecher, wired back to back
/// (each Received at most `MAX_READ` bytes, drained after each).
#[test]
fn two_sessions_trade_the_whole_torrent() {
    let mut seed_s: S = Session::new(
        Config::new(INFO_HASH, ID_B, PIECE_LEN, TOTAL),
        &hashes(TOTAL),
        SEED + 1,
    )
    .unwrap();
    for p in 0..8 {
        seed_s.have_piece(Instant::ZERO, p).unwrap();
    }
    let mut leech = session();
    let mut store = vec![0u8; TOTAL as usize];
    let out_conn = leech.add_peer(at(0), addr(1)).unwrap();
    let in_conn = inbound(1);
    let mut to_seed: Vec<u8> = Vec::new();
    let mut closed = None;
    assert_eq!(
        drain(&mut leech, at(0)),
        [Owned::Connect(out_conn, addr(1))]
    );
    seed_s.handle_input(
        at(0),
        Input::Accepted {
            conn: in_conn,
            peer: addr(2),
        },
    );
    leech.handle_input(at(0), Input::Connected { conn: out_conn });
    for step in 0..200u64 {
        let now = at_ms(step * 500);
        leech_driver(&mut leech, now, &mut store, &mut to_seed, &mut closed);
        for chunk in core::mem::take(&mut to_seed).chunks(S::MAX_READ) {
            seed_s.handle_input(
                now,
                Input::Received {
                    conn: in_conn,
                    bytes: chunk,
                },
            );
        }
        let mut to_leech = Vec::new();
        let mut queue: VecDeque<Owned> = drain(&mut seed_s, now).into();
        while let Some(o) = queue.pop_front() {
            match o {
                Owned::Transmit(_, b) => to_leech.extend_from_slice(&b),
                Owned::Read(c, b) => {
                    seed_s
                        .send_block(now, c, b, &content(b.index, b.begin, b.length))
                        .unwrap();
                    queue.extend(drain(&mut seed_s, now));
                }
                Owned::Close(_) => leech.handle_input(now, Input::Closed { conn: out_conn }),
                Owned::Connected(..) | Owned::Closed(..) => {}
                o => panic!("seed: unexpected {o:?}"),
            }
        }
        for chunk in to_leech.chunks(S::MAX_READ) {
            leech.handle_input(
                now,
                Input::Received {
                    conn: out_conn,
                    bytes: chunk,
                },
            );
            leech_driver(&mut leech, now, &mut store, &mut to_seed, &mut closed);
        }
        if closed.is_some() {
            break;
        }
    }
    assert_eq!(leech.stats().violations, 0, "{closed:?}");
    assert_eq!(seed_s.stats().violations, 0);
    assert!(leech.is_complete(), "{closed:?}");
    assert_eq!(closed, Some(CloseReason::BothSeeds));
    let want: Vec<u8> = (0..TOTAL).map(byte_at).collect();
    assert!(store == want);
    assert_eq!(seed_s.stats().uploaded, TOTAL);
    assert_eq!(leech.stats().downloaded, TOTAL);
}

/// The RAM table of docs/bittorrent.md: `cargo test -p overlay-core --lib
/// bittorrent::session::tests::ram_table -- --ignored --nocapture`.
#[test]
#[ignore]
fn ram_table() {
    use core::mem::size_of;
    std::println!(
        "Session<8, 4, 4> (8 pieces of 64 KiB, 4 peers): {} bytes",
        size_of::<Session<8, 4, 4>>()
    );
    std::println!(
        "Session<256, 16, 32> (64 MiB in 256 KiB pieces): {} bytes",
        size_of::<Session<256, 16, 32>>()
    );
    std::println!(
        "Session<512, 16, 64> (the simulator's): {} bytes",
        size_of::<Session<512, 16, 64>>()
    );
    std::println!(
        "Session<4096, 64, 64> (the node's): {} bytes",
        size_of::<Session<4096, 64, 64>>()
    );
    std::println!(
        "one connection: {} bytes",
        size_of::<Option<Conn<34_816>>>()
    );
    std::println!(
        "PiecePicker<512, 16, 64>: {} bytes",
        size_of::<PiecePicker<512, 16, 64>>()
    );
}
