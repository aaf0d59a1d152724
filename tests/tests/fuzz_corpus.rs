//! Replays the committed fuzz corpora (fuzz/corpus/*) through the fuzz targets' bodies, so
//! CI checks them on stable without cargo-fuzz.

use overlay_core::chord::wire::{self, Body, Envelope, NodeRef, VERSION};
use overlay_core::{Id, PeerAddr};
use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn chord_decode_corpus_replays() {
    let inputs = corpus("chord_decode");
    assert!(
        inputs.len() >= 14,
        "the seed corpus has one input per message type"
    );
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::chord_decode(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn chord_machine_corpus_replays() {
    let inputs = corpus("chord_machine");
    assert!(!inputs.is_empty());
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::chord_machine(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn bencode_corpus_replays() {
    let inputs = corpus("bencode");
    assert!(!inputs.is_empty());
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::bencode(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn krpc_corpus_replays() {
    let inputs = corpus("krpc");
    assert!(
        inputs.len() >= 10,
        "the seed corpus has every query, a response and an error"
    );
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::krpc(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn dht_machine_corpus_replays() {
    let inputs = corpus("dht_machine");
    assert!(!inputs.is_empty());
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::dht_machine(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn bridge_frame_corpus_replays() {
    let inputs = corpus("bridge_frame");
    assert!(
        inputs.len() >= 6,
        "the seed corpus has both families, empty payloads and malformed headers"
    );
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::bridge_frame(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

/// Writes the `bridge_frame` seed corpus: frames to and from IPv4 and IPv6 addresses (an
/// IPv4-mapped one too) with a KRPC query, a Chord datagram and empty payloads, and headers
/// that must be refused. Run with `cargo test -p overlay-sim --test fuzz_corpus -- --ignored`
/// after changing the frame.
#[test]
#[ignore]
fn write_bridge_seed_corpus() {
    use overlay_core::bridge::{MAX_HEADER, encode};
    let mut ping = [0u8; 64];
    let chord = wire::encode(
        &Envelope {
            version: VERSION,
            sender: Id::from_u64(7),
            body: Body::Ping { rid: 1 },
        },
        &mut ping,
    )
    .unwrap()
    .to_vec();
    let mut mapped = [0u8; 16];
    mapped[10..12].copy_from_slice(&[0xff, 0xff]);
    mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
    let frames: [(&str, PeerAddr, &[u8]); 5] = [
        (
            "v4-krpc",
            PeerAddr::v4([127, 0, 0, 1], 6881),
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        ),
        ("v4-empty", PeerAddr::v4([10, 0, 0, 2], 0), b""),
        (
            "v6-chord",
            PeerAddr::v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 7000),
            &chord,
        ),
        (
            "v6-empty",
            PeerAddr::v6(
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
                65535,
            ),
            b"",
        ),
        ("v4-mapped", PeerAddr::v6(mapped, 40001), b"x"),
    ];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/bridge_frame");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, addr, payload) in frames {
        let mut out = vec![0u8; MAX_HEADER + payload.len()];
        let n = encode(addr, payload, &mut out).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), &out[..n]).unwrap();
    }
    // Refused: a header cut short, and a length byte that is neither 6 nor 18.
    std::fs::write(dir.join("seed-short"), [18, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
    std::fs::write(dir.join("seed-bad-length"), [5, 127, 0, 0, 1, 0x1a]).unwrap();
}

/// Writes the seed corpus: one valid datagram per message type (for both targets; the
/// machine target gets them wrapped in "deliver this datagram" actions). Run with
/// `cargo test -p overlay-sim --test fuzz_corpus -- --ignored` after changing the wire.
#[test]
#[ignore]
fn write_seed_corpus() {
    let node = |n: u8| NodeRef {
        id: Id::from_u64(n as u64 * 1000),
        addr: PeerAddr::v4([10, 0, 0, n], 7000),
    };
    let list: wire::NodeList = (2..=4).map(node).collect();
    let bodies = [
        Body::FindSuccessor {
            rid: 1,
            key: Id::from_u64(5),
        },
        Body::Successors {
            rid: 1,
            nodes: list.clone(),
        },
        Body::Closer {
            rid: 1,
            nodes: (2..=3).map(node).collect(),
        },
        Body::GetState { rid: 2 },
        Body::State {
            rid: 2,
            predecessor: Some(node(4)),
            successors: list.clone(),
        },
        Body::Notify,
        Body::Ping { rid: 3 },
        Body::Pong { rid: 3 },
        Body::Store {
            rid: 4,
            key: Id::from_u64(9),
            value: b"value",
            owner: true,
        },
        Body::Store {
            rid: 0,
            key: Id::from_u64(9),
            value: b"replica",
            owner: false,
        },
        Body::Stored {
            rid: 4,
            stored: true,
        },
        Body::Fetch {
            rid: 5,
            key: Id::from_u64(9),
        },
        Body::Fetched {
            rid: 5,
            value: Some(b"value"),
        },
        Body::Fetched {
            rid: 5,
            value: None,
        },
        Body::Leave {
            predecessor: Some(node(2)),
            successors: list,
        },
    ];
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for dir in ["chord_decode", "chord_machine"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (k, body) in bodies.into_iter().enumerate() {
        let env = Envelope {
            version: VERSION,
            sender: Id::from_u64(2000),
            body,
        };
        let mut buf = [0u8; 1400];
        let bytes = wire::encode(&env, &mut buf).unwrap().to_vec();
        std::fs::write(
            root.join("chord_decode").join(format!("seed-{k:02}")),
            &bytes,
        )
        .unwrap();
        // Machine actions: op 1 delivers a datagram from peer 1 (a length byte, then the
        // bytes); op 36 lets 360 ms pass.
        let mut action = vec![1, bytes.len() as u8];
        action.extend_from_slice(&bytes);
        action.push(36);
        std::fs::write(
            root.join("chord_machine").join(format!("seed-{k:02}")),
            &action,
        )
        .unwrap();
        if matches!(env.body, Body::Notify) {
            // A notify makes the lone node stabilize with the notifier; answer its GetState
            // (op 3: reply to sent request 0, shape 0x43: peers 0 and 1, "yes"), then look a
            // key up, answer that, and put and get.
            let mut chain = action.clone();
            chain.extend_from_slice(&[124, 3, 0, 0x43, 5, 3, 1, 0x41, 124, 6, 3, 2, 0x41, 124]);
            let path = root.join("chord_machine").join("seed-stabilize-lookup");
            std::fs::write(path, &chain).unwrap();
        }
    }
}

/// Writes the DHT seed corpora: KRPC messages of every kind for `krpc`, and for
/// `dht_machine` scripts that bootstrap, look up, announce, put and get, serve queries,
/// time out and take garbage (see `overlay_sim::fuzz::dht_machine` for the action bytes).
/// Run with `cargo test -p overlay-sim --test fuzz_corpus -- --ignored` after changing the
/// wire or the script format.
#[test]
#[ignore]
fn write_dht_seed_corpus() {
    use overlay_core::dht::wire::{self as krpc, OutQuery, OutResponse, Want};
    let id = Id(*b"abcdefghij0123456789");
    let other = Id(*b"mnopqrstuvwxyz123456");
    let mut messages: Vec<Vec<u8>> = [
        // BEP 5's examples, as other clients send them (no `v`).
        &b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"[..],
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        b"d1:rd2:id20:0123456789abcdefghij5:nodes26:mnopqrstuvwxyz123456\x0a\x00\x00\x09\x1a\xe1e1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        // BEP 32's want, BEP 43's ro, a BEP 44 mutable put and an unknown method.
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node2:roi1e1:t2:aa1:y1:qe",
        b"d1:ad2:id20:abcdefghij01234567891:k32:01234567890123456789012345678901:v4:spam5:token2:tte1:q3:put1:t2:aa1:y1:qe",
        b"d1:ad2:id20:abcdefghij0123456789e1:q9:vote_item1:t2:aa1:y1:qe",
        // A query with a bad id: answered with error 203.
        b"d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe",
    ]
    .iter()
    .map(|m| m.to_vec())
    .collect();
    let token = b"tok12345";
    for (ro, q) in [
        (false, OutQuery::Ping),
        (true, OutQuery::FindNode(other)),
        (false, OutQuery::GetPeers(other)),
        (
            false,
            OutQuery::AnnouncePeer {
                info_hash: other,
                port: 6881,
                implied_port: false,
                token,
            },
        ),
        (false, OutQuery::Get(other)),
        (
            false,
            OutQuery::Put {
                token,
                value: b"l4:spami42ee",
            },
        ),
    ] {
        let mut buf = [0u8; 1500];
        let n = krpc::write_query(&mut buf, b"\x12\x34", id, ro, &q).unwrap();
        messages.push(buf[..n].to_vec());
    }
    let nodes = [
        (other, PeerAddr::v4([10, 0, 0, 9], 6881)),
        (
            id,
            PeerAddr::v6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 7),
        ),
    ];
    let values = [
        PeerAddr::v4([5, 6, 7, 8], 9),
        PeerAddr::v6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 10),
    ];
    for fields in [
        OutResponse::default(),
        OutResponse {
            nodes: &nodes,
            want: Want { v4: true, v6: true },
            ..OutResponse::default()
        },
        OutResponse {
            nodes: &nodes,
            want: Want {
                v4: true,
                v6: false,
            },
            token: Some(token),
            values: &values,
            value: None,
        },
        OutResponse {
            nodes: &nodes[1..],
            want: Want {
                v4: false,
                v6: true,
            },
            token: Some(token),
            values: &[],
            value: Some(b"12:Hello World!"),
        },
    ] {
        let mut buf = [0u8; 1500];
        let requester = PeerAddr::v4([1, 2, 3, 4], 6881);
        let n = krpc::write_response(&mut buf, b"\x12\x34", other, requester, &fields).unwrap();
        messages.push(buf[..n].to_vec());
    }
    let mut buf = [0u8; 128];
    let n = krpc::write_error(&mut buf, b"\x12\x34", 203, "bad token").unwrap();
    messages.push(buf[..n].to_vec());

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for dir in ["krpc", "dht_machine"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (k, m) in messages.iter().enumerate() {
        std::fs::write(root.join("krpc").join(format!("seed-{k:02}")), m).unwrap();
    }

    // Machine scripts: a configuration byte, then actions (`op % 8`): 0 a raw datagram
    // (length, bytes), 2 time (b² × 100 ms), 3 answer one query (pick, shape), 4 a query
    // (sel, arg), 5 a command (sel, arg[, bytes]), 6 answer all (shape), 7 odd (b).
    let answer_all = |shape: u8, times: usize| [6, shape].repeat(times);
    let mut lookups = vec![0u8, 5, 0, 0b11];
    lookups.extend(answer_all(0x01, 4));
    lookups.extend([2, 30, 5, 1, 3]); // find_node of a universe id
    lookups.extend(answer_all(0x01, 4));
    lookups.extend([5, 3, 1]); // announce an info hash
    lookups.extend(answer_all(0x03, 4));
    lookups.extend(answer_all(0x00, 2));
    lookups.extend([5, 5, 4, b'a', b'b', b'c', b'd']); // put "4:abcd"
    lookups.extend(answer_all(0x01, 4));
    lookups.extend(answer_all(0x00, 2));
    lookups.extend([5, 4, 0]); // get "4:fuzz"
    lookups.extend(answer_all(0x05, 4));
    lookups.extend([7, 0, 2, 255, 2, 255]);

    let ask = |method: u8, who: u8, arg: u8| [4, method << 3 | who, arg];
    let mut serving = vec![0u8];
    serving.extend(ask(0, 0, 0));
    serving.extend(ask(1, 1, 3));
    serving.extend(ask(2, 2, 1)); // get_peers: sender 2 gets a token
    serving.extend(ask(3, 2, 1)); // announce_peer with it
    serving.extend(ask(4, 0, 0)); // get: sender 0 gets a token
    serving.extend(ask(5, 0, 0)); // put with it
    serving.extend(ask(6, 2, 1)); // announce_peer, implied port
    serving.extend(ask(7, 3, 0)); // read-only ping
    serving.extend(ask(2, 5, 1)); // from the IPv6 sender
    serving.extend([4, 0xc0, 0]); // from our own id
    serving.extend([3, 0, 0x01]); // answer a ping-first
    serving.extend(answer_all(0x00, 1));
    serving.extend(ask(3, 2, 0x81)); // a bogus token
    serving.extend([2, 200, 2, 200]); // 4000 s twice: the secret rotates twice
    serving.extend(ask(3, 2, 1)); // a stale token
    serving.extend(ask(2, 2, 1));

    let mut timeouts = vec![0u8, 5, 0, 0x3f];
    timeouts.extend([2, 10, 7, 0, 2, 10, 7, 0, 5, 1, 3, 7, 0, 7, 0, 2, 255]);
    timeouts.extend([5, 0, 0, 7, 0, 3, 0, 0x08, 7, 0, 2, 255, 2, 255]);

    let ping = &messages[0];
    let mut garbage = vec![0u8, 0, ping.len() as u8];
    garbage.extend_from_slice(ping);
    garbage.extend([8, 5, b'd', b'1', b':', b't', b'e']);
    let bad = &messages[11];
    garbage.extend([16, bad.len() as u8]);
    garbage.extend_from_slice(bad);
    garbage.extend([7, 1, 7, 2, 7, 3]);

    let mut read_only = lookups.clone();
    read_only[0] = 0xe3; // K = 4, alpha 3, read-only

    let mut big = vec![0x90u8, 5, 0, 1];
    big.extend(answer_all(0x01, 3));
    big.extend([5, 7, 5]); // put a 999-byte item
    big.extend(answer_all(0x01, 3));
    big.extend(answer_all(0x00, 2));
    big.extend([5, 7, 9]); // 1003 bytes: refused
    big.extend([5, 4, 0, 6, 0x05, 6, 0x47, 6, 0xc2, 6, 0x10]);

    for (name, script) in [
        ("lookups", lookups),
        ("serving", serving),
        ("timeouts", timeouts),
        ("garbage", garbage),
        ("read-only", read_only),
        ("big-item", big),
    ] {
        std::fs::write(
            root.join("dht_machine").join(format!("seed-{name}")),
            script,
        )
        .unwrap();
    }
}

#[test]
fn gnutella_descriptor_corpus_replays() {
    let inputs = corpus("gnutella_descriptor");
    assert!(
        inputs.len() >= 7,
        "the seed corpus has every descriptor type and a multi-message stream"
    );
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::gnutella_descriptor(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn gnutella_handshake_corpus_replays() {
    let inputs = corpus("gnutella_handshake");
    assert!(
        inputs.len() >= 6,
        "the seed corpus has handshakes, requests and responses"
    );
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::gnutella_handshake(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn gnutella_servent_corpus_replays() {
    let inputs = corpus("gnutella_servent");
    assert!(
        inputs.len() >= 4,
        "the seed corpus reaches every connection state"
    );
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| overlay_sim::fuzz::gnutella_servent(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
    }
}

#[test]
fn bittorrent_corpora_replay() {
    for (target, body) in [
        (
            "bittorrent_metainfo",
            overlay_sim::fuzz::bittorrent_metainfo as fn(&[u8]),
        ),
        ("bittorrent_wire", overlay_sim::fuzz::bittorrent_wire),
        ("bittorrent_session", overlay_sim::fuzz::bittorrent_session),
        ("bittorrent_tracker", overlay_sim::fuzz::bittorrent_tracker),
    ] {
        let inputs = corpus(target);
        assert!(inputs.len() >= 3, "{target}: the seed corpus");
        for (path, bytes) in inputs {
            let r = std::panic::catch_unwind(|| body(&bytes));
            assert!(r.is_ok(), "{} panics", path.display());
        }
    }
}

/// Writes the BitTorrent seed corpora: torrents (single- and multi-file, written by the
/// metainfo writer) and BEP 9 magnet links; a handshake followed by one message of every
/// type (after the limits byte `0`). Run with `cargo test -p overlay-sim --test
/// fuzz_corpus -- --ignored` after changing the codecs.
#[test]
#[ignore]
fn write_bittorrent_seed_corpus() {
    use overlay_core::bittorrent::metainfo::{Content, FileSpec, Torrent};
    use overlay_core::bittorrent::wire::{BlockRequest, Handshake, Message, Reserved};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let dir = root.join("bittorrent_metainfo");
    std::fs::create_dir_all(&dir).unwrap();
    let pieces = [0x5a; 60];
    let a: &[&[u8]] = &[b"docs", b"a.txt"];
    let b: &[&[u8]] = &[b"b.bin"];
    let files = [
        FileSpec {
            path: a,
            length: 40_000,
        },
        FileSpec {
            path: b,
            length: 30_000,
        },
    ];
    let tiers: &[&[&[u8]]] = &[&[b"http://127.0.0.1:6969/announce"]];
    for (name, content) in [
        ("single", Content::Single { length: 70_000 }),
        ("multi", Content::Multi(&files)),
    ] {
        let t = Torrent {
            announce: Some(b"http://127.0.0.1:6969/announce"),
            announce_list: tiers,
            name: b"example",
            piece_length: 32_768,
            pieces: &pieces,
            content,
            private: name == "multi",
        };
        let mut out = vec![0u8; 1024];
        let n = t.write(&mut out).unwrap().raw().len();
        std::fs::write(dir.join(format!("seed-{name}")), &out[..n]).unwrap();
    }
    let magnets: [&[u8]; 2] = [
        b"magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Example%20File&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&x.pe=127.0.0.1:6881",
        b"magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK",
    ];
    for (k, m) in magnets.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-magnet-{k}")), m).unwrap();
    }

    let dir = root.join("bittorrent_wire");
    std::fs::create_dir_all(&dir).unwrap();
    let req = BlockRequest {
        index: 1,
        begin: 16_384,
        length: 16_384,
    };
    let block = [7u8; 64];
    let messages = [
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have { index: 5 },
        Message::Bitfield(&[0xff, 0xe0]),
        Message::Request(req),
        Message::Piece {
            index: 1,
            begin: 0,
            block: &block,
        },
        Message::Cancel(req),
        Message::Port(6881),
        Message::Suggest { index: 2 },
        Message::HaveAll,
        Message::HaveNone,
        Message::RejectRequest(req),
        Message::AllowedFast { index: 3 },
        Message::Extended {
            id: 0,
            payload: b"d1:md11:ut_metadatai1eee",
        },
    ];
    let hs = Handshake {
        reserved: Reserved::NONE
            .with_fast()
            .with_extension_protocol()
            .with_dht(),
        info_hash: [0xc1; 20],
        peer_id: *b"-OV0001-123456789012",
    };
    let mut stream = vec![0u8];
    stream.extend_from_slice(&hs.to_bytes());
    let mut each = Vec::new();
    for m in &messages {
        let mut out = vec![0u8; m.encoded_len()];
        m.write(&mut out).unwrap();
        each.push(out.clone());
        stream.extend_from_slice(&out);
    }
    std::fs::write(dir.join("seed-stream"), &stream).unwrap();
    for (k, m) in each.iter().enumerate() {
        // After the limits byte and a handshake-sized prefix that is not one.
        let mut input = vec![0u8];
        input.extend_from_slice(m);
        std::fs::write(dir.join(format!("seed-{k:02}")), input).unwrap();
    }
}

/// Writes the `bittorrent_session` seed corpus: scripts (see `fuzz::bittorrent_session`)
/// that leech a whole piece from a peer and fail its check (a ban), serve a request to an
/// interested peer and see it cancelled, and break the protocol after a dial. Run with
/// `cargo test -p overlay-sim --test fuzz_corpus -- --ignored` after changing the script
/// format.
#[test]
#[ignore]
fn write_bittorrent_session_seed_corpus() {
    use overlay_core::bittorrent::wire::{BlockRequest, Message};
    let msg = |m: Message<'_>| {
        let mut out = vec![0; m.encoded_len()];
        m.write(&mut out).unwrap();
        out
    };
    // Bytes on the first connection, in ops of at most 255 bytes.
    let feed = |bytes: &[u8]| -> Vec<u8> {
        bytes
            .chunks(255)
            .flat_map(|c| [vec![2, c.len() as u8], c.to_vec()].concat())
            .collect()
    };
    let up = vec![0, 0, 1, 7];
    let block = |b: u32| Message::Piece {
        index: 0,
        begin: b * 16_384,
        block: &[0x42; 16_384],
    };
    let leech = [
        vec![0],
        up.clone(),
        feed(&msg(Message::HaveAll)),
        feed(&msg(Message::Unchoke)),
        feed(&[msg(block(0)), msg(block(1)), msg(block(2)), msg(block(3))].concat()),
        vec![6, 0],
    ]
    .concat();
    let request = BlockRequest {
        index: 2,
        begin: 16_384,
        length: 16_384,
    };
    let upload = [
        vec![1],
        up.clone(),
        feed(&[msg(Message::HaveNone), msg(Message::Interested)].concat()),
        feed(&msg(Message::Request(request))),
        vec![6, 9],
        feed(&msg(Message::Request(request))),
        feed(&msg(Message::Cancel(request))),
        vec![7, 250],
    ]
    .concat();
    let broken = [
        vec![2],
        vec![5, 1, 0, 1, 1, 9],
        feed(&[0, 0, 0, 2, 5, 0xff]),
        vec![7, 200, 4, 0],
    ]
    .concat();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/bittorrent_session");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, script) in [("leech", leech), ("upload", upload), ("broken", broken)] {
        std::fs::write(dir.join(format!("seed-{name}")), script).unwrap();
    }
}

/// Writes the `gnutella_servent` seed corpus: scripts (see `fuzz::gnutella_servent`) that
/// bring a connection up and then feed it a query, a ping, a QRP table, a Bye; an HTTP
/// request; a dial; a search and time passing. Run with `cargo test -p overlay-sim --test
/// fuzz_corpus -- --ignored` after changing the script format.
#[test]
#[ignore]
fn write_gnutella_servent_seed_corpus() {
    let msg = |kind: u8, ttl: u8, payload: &[u8]| {
        // A GUID per message: the servent drops a GUID it has seen.
        let mut m = vec![kind ^ payload.len() as u8; 16];
        m.extend_from_slice(&[kind, ttl, 0]);
        m.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        m.extend_from_slice(payload);
        m
    };
    let op = |op: u8, bytes: &[u8]| {
        let mut v = vec![op, bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    };
    let up = [op(0, b""), op(1, b"")].concat();
    let leaf_up = [op(0, b""), op(0x81, b"")].concat();
    let scripts: [(&str, Vec<u8>); 6] = [
        (
            "query",
            [
                vec![0],
                up.clone(),
                op(2, &msg(0x80, 5, b"\0\0free song\0")),
                op(2, &msg(0x00, 7, b"")),
                op(2, &msg(0x02, 1, b"\xc8\0bye\0")),
            ]
            .concat(),
        ),
        (
            "qrp",
            [
                vec![0],
                leaf_up,
                op(2, &msg(0x30, 1, &[0, 8, 0, 0, 0, 7])),
                op(2, &msg(0x30, 1, &[1, 1, 1, 0, 4, 0, 0xa0, 0, 0])),
                op(0x86, b"free"),
            ]
            .concat(),
        ),
        (
            "http",
            [
                vec![1],
                op(0, b""),
                op(
                    2,
                    b"GET /get/0/free%20software%20song.ogg HTTP/1.1\r\nRange: bytes=5-\r\n\r\n",
                ),
                op(0x86, &[0; 100]),
            ]
            .concat(),
        ),
        (
            "dial",
            [
                vec![0],
                op(5, b""),
                op(2, b"GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\n\r\n"),
                op(6, b"free song"),
            ]
            .concat(),
        ),
        (
            "timeout",
            [vec![0], op(0, b""), op(7, &[0; 250]), op(7, b"")].concat(),
        ),
        (
            "leaf",
            [
                vec![1],
                op(5, b""),
                op(2, b"GNUTELLA/0.6 200 OK\r\n\r\n"),
                op(0, b""),
                op(1, b""),
            ]
            .concat(),
        ),
    ];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/gnutella_servent");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, script) in scripts {
        std::fs::write(dir.join(format!("seed-{name}")), script).unwrap();
    }
}

/// Writes the Gnutella seed corpora: one message of every descriptor type (and a stream
/// of several) for `gnutella_descriptor`; the handshake and HTTP examples of the specs
/// for `gnutella_handshake` (after the limits byte `0`: default limits). Run with
/// `cargo test -p overlay-sim --test fuzz_corpus -- --ignored` after changing the wire.
#[test]
#[ignore]
fn write_gnutella_seed_corpus() {
    let guid = [7u8; 16];
    let msg = |kind: u8, payload: &[u8]| {
        let mut m = guid.to_vec();
        m.extend_from_slice(&[kind, 7, 0]);
        m.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        m.extend_from_slice(payload);
        m
    };
    let sha1 = b"urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";
    let mut query = b"\0\0Gnutella Protocol\0".to_vec();
    query.extend_from_slice(sha1);
    query.extend_from_slice(b"\x1cother\x1c\xc3\x81H\x41\x01\0");
    let mut hit = vec![2, 0xca, 0x18, 10, 0, 0, 2, 0, 1, 0, 0];
    hit.extend_from_slice(b"\0\0\0\0\0\x04\0\0GnutellaProtocol04.pdf\0");
    hit.extend_from_slice(sha1);
    hit.extend_from_slice(b"\0\x09\0\0\0\x04\x03\x02\x01b.txt\0\0GTKG\x02\x1d\x09\xc3\x82GU\x40");
    hit.extend_from_slice(&[0xee; 16]);
    let mut push = vec![0xee; 16];
    push.extend_from_slice(&[7, 0, 0, 0, 192, 168, 0, 1, 0xca, 0x18]);
    let messages = [
        msg(0x00, b""),
        msg(0x00, b"\xc3\x82SC\x40"),
        msg(
            0x01,
            b"\xca\x18\x0a\x00\x00\x01\x05\x00\x00\x00\xe8\x03\x00\x00\xc3\x82DU\x42\x10\x0e",
        ),
        msg(0x02, b"\xc8\x00Shutting Down\r\nServer: x\r\n\r\n\0"),
        msg(0x40, &push),
        msg(0x80, &query),
        msg(0x80, b"\0\0Gnutella Protocol\0urn:\0"),
        msg(0x81, &hit),
        msg(0x31, b"GTKG\x01\x00\x01\x00"),
        // QRP Appendix B, example 3: RESET and a two-part 4-bit PATCH.
        msg(0x30, &[0, 8, 0, 0, 0, 7]),
        msg(0x30, &[1, 1, 2, 0, 4, 0, 0xa0]),
        msg(0x30, &[1, 2, 2, 0, 4, 0, 0]),
    ];
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let dir = root.join("gnutella_descriptor");
    std::fs::create_dir_all(&dir).unwrap();
    for (k, m) in messages.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{k:02}")), m).unwrap();
    }
    std::fs::write(dir.join("seed-stream"), messages.concat()).unwrap();

    let blocks: [&[u8]; 9] = [
        b"GNUTELLA CONNECT/0.6\r\nUser-Agent: BearShare\r\nQuery-Routing: 0.2\r\n\r\n",
        b"GNUTELLA/0.6 200 OK\r\nUser-Agent: BearShare\r\nQuery-Routing: 0.1\r\nBearShare-Data: 5ef89a\r\n\r\n",
        b"GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: False\r\nUser-Agent: LimeWire 1.9\r\nX-Query-Routing: 0.1\r\nX-My-Address: 10.254.0.16:6349\r\n\r\n",
        b"GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\nX-Ultrapeer-Needed: false\r\nUser-Agent: LimeWire 1.9\r\nX-Try-Ultrapeers: 23.35.1.146:6346,\r\n    18.207.63.25:6347\r\nX-Try: 24.37.144:6346, 193.205.63.22:6346\r\nX-My-Address: 10.254.0.16:6346\r\nX-Query-Routing: 0.1\r\nListen-IP: [2001:db8::1]:6346\r\nRemote-IP: 1.2.3.4\r\nAccept-Encoding: deflate\r\n\r\n",
        b"GNUTELLA/0.6 503 I am a shielded leaf node\r\nX-Ultrapeer: False\r\nX-Try-Ultrapeers: 18.2.3.14:6346,\r\n   18.1.17.2:6346\r\n\r\n",
        b"GET /uri-res/N2R?urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB HTTP/1.1\r\nHost: 10.0.0.1:6346\r\nUser-Agent: gtk-gnutella/1.2.2\r\nRange: bytes=0-1023\r\n\r\n",
        b"GET /get/42/My%20Song.mp3 HTTP/1.0\r\nRange: bytes=-500\r\n\r\n",
        b"HTTP/1.1 206 Partial Content\r\nServer: overlay\r\nContent-Length: 1024\r\nContent-Range: bytes 0-1023/4096\r\nX-Gnutella-Content-URN: urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ\r\n\r\nbody",
        b"HTTP/1.1 416 Requested Range Not Satisfiable\r\nContent-Range: bytes */4096\r\n\r\n",
    ];
    let dir = root.join("gnutella_handshake");
    std::fs::create_dir_all(&dir).unwrap();
    for (k, b) in blocks.iter().enumerate() {
        let mut input = vec![0u8];
        input.extend_from_slice(b);
        std::fs::write(dir.join(format!("seed-{k:02}")), input).unwrap();
    }
}
