//! The firmware peer on an emulated Cortex-M (QEMU `mps2-an386`, its LAN9118 on a tap
//! device) joins a DHT and a Chord ring of `overlay` processes on the host, answers their
//! lookups, stores what they put and serves it back, survives a reset with its saved
//! routing state, and keeps working after 1000 malformed datagrams per protocol.
//!
//! Needs `qemu-system-arm`, the firmware ELF (`OVERLAY_FIRMWARE_ELF`) and root for the tap
//! device, inside a private network namespace: `firmware/test.sh` builds the firmware and
//! runs this test under `unshare --net --pid --kill-child`, so every process dies with it.
//! Every wait is bounded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use overlay_core::{Id, PeerAddr, Rng, chord};
use overlay_sim::chord::ChordNet;
use serde_json::Value;

mod common;

const OVERLAY: &str = env!("CARGO_BIN_EXE_overlay");
/// The host's addresses on the tap device: two of each kind of peer, and a sender of junk.
const HOST_A: &str = "10.0.2.2";
const HOST_B: &str = "10.0.2.3";
const JUNK_FROM: &str = "10.0.2.4";
/// The firmware's built-in settings (firmware/src/settings.rs).
const DEVICE_DHT: &str = "10.0.2.15:6881";
const DEVICE_CHORD: &str = "10.0.2.15:7000";
/// Joining, stabilizing, a reboot: each is a few seconds; this bounds every wait.
const WAIT: Duration = Duration::from_secs(45);

/// A child process killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The emulated board: its console, line by line, and QEMU's monitor.
struct Board {
    _qemu: Reaped,
    console: Receiver<String>,
    monitor: std::path::PathBuf,
    /// Every console line so far.
    seen: Vec<String>,
    /// Where the current step's search starts in `seen`: the DHT and Chord tasks log
    /// independently, so a step's lines may come in any order.
    step: usize,
}

impl Board {
    fn boot(elf: &str) -> Board {
        let monitor =
            std::env::temp_dir().join(format!("overlay-qemu-{}.sock", std::process::id()));
        let mut qemu = Command::new("qemu-system-arm")
            .args(["-M", "mps2-an386", "-nographic"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args([
                "-nic",
                "tap,ifname=tap0,script=no,downscript=no,model=lan9118",
            ])
            .arg("-monitor")
            .arg(format!("unix:{},server=on,wait=off", monitor.display()))
            .args(["-serial", "stdio", "-kernel", elf])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qemu-system-arm runs");
        let stdout = qemu.stdout.take().unwrap();
        let (tx, console) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Board {
            _qemu: Reaped(qemu),
            console,
            monitor,
            seen: Vec::new(),
            step: 0,
        }
    }

    /// Starts a new step: [`Board::expect`] looks only at lines printed from now on.
    fn next_step(&mut self) {
        self.step = self.seen.len();
    }

    /// A console line of this step that satisfies `want`, waiting at most [`WAIT`].
    fn expect(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen[self.step..].iter().find(|l| want(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.console.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    assert!(!line.starts_with("fatal:"), "the firmware failed: {line}");
                    if want(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no console line {what} within {WAIT:?}; the last ones:\n{}",
                    self.tail()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("QEMU exited; the last console lines:\n{}", self.tail())
                }
            }
        }
    }

    /// A `status PROTOCOL` line of this step whose fields satisfy `want`.
    fn status(&mut self, protocol: &str, what: &str, want: impl Fn(&Status) -> bool) -> Status {
        let prefix = format!("status {protocol} ");
        let line = self.expect(what, |l| {
            l.strip_prefix(&prefix)
                .is_some_and(|rest| want(&Status::parse(rest)))
        });
        Status::parse(&line[prefix.len()..])
    }

    /// Presses the reset button (QEMU's `system_reset`): RAM is kept, the CPU restarts.
    fn reset(&mut self) {
        let mut monitor = UnixStream::connect(&self.monitor).expect("QEMU's monitor socket");
        monitor.set_read_timeout(Some(WAIT)).unwrap();
        monitor.write_all(b"system_reset\n").unwrap();
        // The monitor echoes the command once it has taken it.
        let mut echoed = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&echoed).contains("system_reset") {
            assert!(
                matches!(monitor.read(&mut byte), Ok(1)),
                "QEMU's monitor closed"
            );
            echoed.push(byte[0]);
        }
    }

    fn tail(&self) -> String {
        let from = self.seen.len().saturating_sub(80);
        self.seen[from..].join("\n")
    }
}

/// The `key=value` fields of a status line.
struct Status(HashMap<String, String>);

impl Status {
    fn parse(fields: &str) -> Status {
        Status(
            fields
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }
    fn count(&self, key: &str) -> u64 {
        self.get(key).parse().unwrap_or(0)
    }
}

/// Runs a short-lived `overlay --json ...` command: its last JSON line, or the error line.
fn overlay(args: &[&str]) -> Value {
    let out = Command::new("timeout")
        .arg("60")
        .arg(OVERLAY)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("overlay {args:?} printed no JSON: {text}"))
}

/// A long-lived `overlay` peer. Its output is read for as long as it runs: a closed pipe
/// would end it at its next event.
struct Peer {
    _process: Reaped,
    _events: Receiver<Value>,
}

/// Starts `overlay --json ARGS` and waits for `event`.
fn peer(args: &[&str], event: &str) -> Peer {
    let mut cmd = Command::new(OVERLAY);
    cmd.arg("--json").args(args);
    let (child, events) = common::spawn_json_lines(&mut cmd);
    let process = Reaped(child);
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{args:?}: no {event}"));
        if e["event"] == event {
            return Peer {
                _process: process,
                _events: events,
            };
        }
    }
}

fn sh(cmd: &str) {
    let ok = Command::new("sh")
        .args(["-c", cmd])
        .status()
        .unwrap()
        .success();
    assert!(ok, "{cmd} failed");
}

fn chord_id(addr: &str) -> Id {
    let a: SocketAddr = addr.parse().unwrap();
    chord::node_id(PeerAddr::from(a))
}

/// 1000 datagrams that are not the protocol: random bytes of every length up to 1400,
/// empty ones, and truncated or corrupted real messages.
fn junk(to: &str, valid: &[u8]) {
    let socket = UdpSocket::bind((JUNK_FROM, 0)).unwrap();
    let mut rng = Rng::new(8);
    let mut next = move || rng.next_u64();
    for i in 0..1000 {
        let datagram: Vec<u8> = match i % 4 {
            0 => (0..(next() % 1400) as usize)
                .map(|_| next() as u8)
                .collect(),
            1 => Vec::new(),
            2 => valid[..(next() as usize % valid.len())].to_vec(),
            _ => {
                let mut d = valid.to_vec();
                let at = next() as usize % d.len();
                d[at] ^= 0x80 | next() as u8;
                d.truncate(d.len() - 1);
                d
            }
        };
        socket.send_to(&datagram, to).unwrap();
        // The board's socket queue holds a few datagrams: pace them so that each one
        // reaches the machine and is counted, rather than dropped by the stack.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Issue 8's proof: the microcontroller peer in both overlays, its state across a reset,
/// and its robustness against junk (BEP 5 §"KRPC Protocol" errors are dropped and counted;
/// Chord's envelope likewise).
#[test]
#[ignore = "needs qemu-system-arm, the firmware ELF and a tap device: firmware/test.sh runs it"]
fn firmware_peer_joins_dht_and_chord_on_qemu() {
    let elf = std::env::var("OVERLAY_FIRMWARE_ELF").expect("OVERLAY_FIRMWARE_ELF names the ELF");
    common::in_private_network(
        "firmware_peer_joins_dht_and_chord_on_qemu",
        common::Fallback::Fail,
        || run(&elf),
    );
}

fn run(elf: &str) {
    sh("ip tuntap add dev tap0 mode tap && ip link set tap0 up");
    for ip in [HOST_A, HOST_B, JUNK_FROM] {
        sh(&format!("ip addr add {ip}/24 dev tap0"));
    }
    let dht_a = format!("{HOST_A}:6881");
    let dht_b = format!("{HOST_B}:6881");
    let chord_a = format!("{HOST_A}:7000");
    let chord_b = format!("{HOST_B}:7000");
    let mut dht_peers = vec![
        peer(&["dht", "start", "--bind", &dht_a], "listening"),
        peer(
            &["dht", "start", "--bind", &dht_b, "--bootstrap", &dht_a],
            "bootstrapped",
        ),
    ];
    let _chord_peers = [
        peer(&["chord", "join", "--bind", &chord_a], "created"),
        peer(
            &["chord", "join", "--bind", &chord_b, "--bootstrap", &chord_a],
            "joined",
        ),
    ];

    // Joining both overlays.
    let mut board = Board::boot(elf);
    let id_line = board.expect("with the DHT node's id", |l| l.starts_with("dht: node id="));
    let dht_id = id_line["dht: node id=".len()..]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    board.expect("saying the DHT node bootstrapped", |l| {
        l.starts_with("dht: bootstrapped nodes=") && !l.ends_with("nodes=0")
    });
    board.expect("saying the Chord node joined", |l| {
        l.starts_with("chord: joined")
    });
    board.expect("saying the DHT state was saved", |l| {
        l.starts_with("dht: saved")
    });
    board.expect("saying the Chord state was saved", |l| {
        l.starts_with("chord: saved")
    });

    // A reset keeps the saved routing state (RAM behind a CRC): the node comes back with the
    // same DHT id, bootstraps through the nodes it knew and rejoins the ring.
    board.next_step();
    board.reset();
    board.expect("from the second boot", |l| {
        l.starts_with("boot: overlay-firmware")
    });
    let restored = board.expect("restoring the DHT state", |l| {
        l.starts_with("dht: restored")
    });
    assert!(
        restored.contains(&format!("id={dht_id}")),
        "{restored} (was {dht_id})"
    );
    board.expect("restoring the Chord contacts", |l| {
        l.starts_with("chord: restored contacts=")
    });
    board.expect("saying the Chord node joined again", |l| {
        l.starts_with("chord: joined")
    });
    board.expect("saying the DHT node bootstrapped again", |l| {
        l.starts_with("dht: bootstrapped nodes=") && !l.ends_with("nodes=0")
    });

    // Chord: a key in the board's arc is owned by the board; host peers' lookups end there,
    // a put through a host peer stores it there, and the board serves it back.
    // The simulator's oracle (Stoica et al. §4.2: a key's owner is its successor) over the
    // ring's three members; member 2 is the board.
    let mut ring = [
        (chord_id(&chord_a), 0),
        (chord_id(&chord_b), 1),
        (chord_id(DEVICE_CHORD), 2),
    ];
    ring.sort_unstable();
    let key = (0..)
        .map(|n| format!("firmware-key-{n}"))
        .find(|k| <ChordNet>::true_successor(&ring, Id::sha256(k.as_bytes())).1 == 2)
        .unwrap();
    // Stabilization may still be settling the ring after the reset: retry the lookup.
    let deadline = Instant::now() + WAIT;
    loop {
        let found = overlay(&["chord", "lookup", "--via", &chord_a, &key]);
        if found["owner"]["addr"] == DEVICE_CHORD {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the board never owned {key}: {found}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    board.next_step();
    let stored = overlay(&[
        "chord",
        "put",
        "--via",
        &chord_b,
        &key,
        "stored on a microcontroller",
    ]);
    assert_eq!(stored["owner"]["addr"], DEVICE_CHORD, "{stored}");
    board.status("chord", "holding the key", |s| s.count("keys") >= 1);
    let got = overlay(&["chord", "get", "--via", DEVICE_CHORD, &key]);
    assert_eq!(got["value"], "stored on a microcontroller", "{got}");
    let found = overlay(&["chord", "lookup", "--via", DEVICE_CHORD, "another key"]);
    assert_eq!(
        found["event"], "owner",
        "the board routes lookups too: {found}"
    );

    // DHT (BEP 44): an item put through a host node is stored on the board too.
    board.next_step();
    let put = overlay(&["dht", "put", "--via", &dht_a, "kept by the board"]);
    assert_eq!(put["event"], "stored", "{put}");
    let item_key = put["key"].as_str().unwrap().to_string();
    board.status("dht", "holding the item", |s| s.count("items") >= 1);
    let got = overlay(&["dht", "get", "--via", DEVICE_DHT, &item_key]);
    assert_eq!(got["value"], "kept by the board", "{got}");

    // 1000 malformed datagrams to each port: dropped and counted, and the board carries on.
    board.next_step();
    let before_dht = board.status("dht", "before the junk", |_| true);
    let before_chord = board.status("chord", "before the junk", |_| true);
    board.next_step();
    junk(
        DEVICE_DHT,
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
    );
    junk(DEVICE_CHORD, &chord_ping());
    let dropped = |s: &Status| s.count("malformed") + s.count("unexpected");
    let base = dropped(&before_dht);
    board.status("dht", "counting 1000 malformed datagrams", |s| {
        dropped(s) >= base + 1000
    });
    let chord_dropped =
        |s: &Status| s.count("malformed") + s.count("wrong_version") + s.count("unexpected");
    let base = chord_dropped(&before_chord);
    board.status("chord", "counting 1000 malformed datagrams", |s| {
        chord_dropped(s) >= base + 1000
    });
    let got = overlay(&["chord", "get", "--via", DEVICE_CHORD, &key]);
    assert_eq!(
        got["value"], "stored on a microcontroller",
        "after the junk: {got}"
    );

    // With every host DHT node gone, the item still comes back: the board serves it.
    dht_peers.clear();
    let got = overlay(&["dht", "get", "--via", DEVICE_DHT, &item_key]);
    assert_eq!(
        got["value"], "kept by the board",
        "from the board alone: {got}"
    );
    board.status("memory", "reporting the stack", |s| {
        s.count("stack_used") > 0
    });
    eprintln!("console (last lines):\n{}", board.tail());
}

/// A real Chord ping in the wire envelope, for the junk to corrupt.
fn chord_ping() -> Vec<u8> {
    use overlay_core::chord::wire::{self, Body, Envelope, VERSION};
    let envelope = Envelope {
        version: VERSION,
        sender: chord_id("10.0.2.4:7000"),
        body: Body::Ping { rid: 1 },
    };
    let mut buf = [0u8; 256];
    wire::encode(&envelope, &mut buf).unwrap().to_vec()
}
