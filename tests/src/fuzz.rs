//! The bodies of the fuzz targets in `fuzz/`, shared with the corpus replay test so that a
//! plain `cargo test` (stable, no sanitizers) re-runs every committed corpus input.

use overlay_core::chord::{Chord, Config, wire};
use overlay_core::{Duration, Input, Instant, Machine, Output, PeerAddr};

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

/// A Chord node (a ring member) fed arbitrary datagrams, commands and time steps. Each
/// action byte picks what happens (`op % 8`); a datagram's length and bytes follow it. The machine
/// must never panic, must always drain to `Wait`, and must keep its invariants.
pub fn chord_machine(data: &[u8]) {
    const ME: PeerAddr = PeerAddr::v4([10, 0, 0, 1], 7000);
    let peers = [
        PeerAddr::v4([10, 0, 0, 2], 7000),
        PeerAddr::v4([10, 0, 0, 3], 7000),
        PeerAddr::v4([10, 0, 0, 4], 7000),
    ];
    let mut node: Chord<8, 16> = Chord::new(Config::default(), ME, 7);
    let mut now = Instant::ZERO;
    let _ = node.create(now);
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op % 8 {
            0..=3 => {
                // A datagram from peer `op % 3`: a length byte, then that many bytes.
                let Some((&len, tail)) = rest.split_first() else {
                    break;
                };
                let (payload, tail) = tail.split_at((len as usize).min(tail.len()));
                rest = tail;
                node.handle_input(
                    now,
                    Input::Datagram {
                        from: peers[op as usize % 3],
                        payload,
                    },
                );
            }
            4 => now = now + Duration::from_millis(op as u64 * 10),
            5 => {
                let _ = node.lookup(now, overlay_core::Id::from_u64(op as u64));
            }
            6 => {
                let _ = node.put(now, &[op], &[op; 3]);
                let _ = node.get(now, &[op]);
            }
            _ => {
                let _ = if op > 128 {
                    node.leave(now)
                } else {
                    node.join(now, peers[0]).map(|_| ())
                };
            }
        }
        drain(&mut node, now);
        let me = node.node();
        assert!(
            node.successors().iter().all(|s| s.addr != me.addr),
            "a node is its own successor"
        );
        assert!(node.successors().len() <= node.config().successors);
    }
}

fn drain(node: &mut Chord<8, 16>, now: Instant) {
    for _ in 0..10_000 {
        if let Output::Wait(_) = node.poll_output(now) {
            return;
        }
    }
    panic!("the machine never drained to Wait");
}
