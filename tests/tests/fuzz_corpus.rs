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
