//! Real `overlay` processes on loopback: 16 Chord peers in separate processes join one
//! ring, keys are put and read across processes, a peer is SIGKILLed and another leaves on
//! Ctrl-C (a third on SIGTERM), hostile datagrams are thrown at them, and the command's
//! exit codes are checked.
//!
//! Each test re-runs itself inside a private network namespace (`unshare -n`, loopback
//! only) where it can, so nothing but 127.0.0.1 is reachable; where it cannot (no
//! privileges), it runs on the host's loopback. Every wait is bounded.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use overlay_core::chord::wire::{Body, Envelope, VERSION, encode};
use overlay_core::{Id, Rng};
use serde_json::Value;

mod common;
use common::{Fallback, in_private_network};

const OVERLAY: &str = env!("CARGO_BIN_EXE_overlay");

/// A running `overlay chord join` and the JSON events it prints.
struct PeerProcess {
    child: Child,
    addr: SocketAddr,
    id: Id,
    events: Receiver<Value>,
    /// The last "neighbours" event: (predecessor id, successor id).
    neighbours: Option<(String, String)>,
}

impl PeerProcess {
    fn start(bootstrap: Option<SocketAddr>) -> PeerProcess {
        let mut args = vec![
            "chord",
            "join",
            "--bind",
            "127.0.0.1:0",
            "--stabilize-ms",
            "100",
        ];
        let bootstrap = bootstrap.map(|b| b.to_string());
        if let Some(b) = &bootstrap {
            args.extend(["--bootstrap", b]);
        }
        Self::spawn(&args)
    }

    /// Runs `overlay --json ARGS` and waits for its `listening` event.
    fn spawn(args: &[&str]) -> PeerProcess {
        let (child, events) =
            common::spawn_json_lines(Command::new(OVERLAY).arg("--json").args(args));
        let mut p = PeerProcess {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            id: Id::ZERO,
            events,
            neighbours: None,
        };
        let listening = p.wait_for("listening", Duration::from_secs(10));
        p.addr = listening["addr"].as_str().unwrap().parse().unwrap();
        p.id = parse_id(&listening["id"]);
        p
    }

    /// Waits for the next event called `name`, remembering neighbour reports on the way.
    fn wait_for(&mut self, name: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{}: no {name:?} event within {limit:?}", self.addr));
            self.note(&v);
            if v["event"] == name {
                return v;
            }
        }
    }

    /// Takes in every event printed so far.
    fn drain(&mut self) {
        while let Ok(v) = self.events.try_recv() {
            self.note(&v);
        }
    }

    fn note(&mut self, v: &Value) {
        if v["event"] == "neighbours" {
            let id = |n: &Value| n["id"].as_str().unwrap_or("none").to_string();
            self.neighbours = Some((id(&v["predecessor"]), id(&v["successor"])));
        }
    }

    fn signal(&self, signal: &str) {
        common::signal(&self.child, signal);
    }

    /// Waits (bounded) for the process to exit; its exit code.
    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        common::exit_code(&mut self.child, limit, &self.addr)
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_id(v: &Value) -> Id {
    v.as_str().unwrap().parse().unwrap()
}

/// Runs a short-lived `overlay` command (bounded by its own --timeout-ms and a kill).
fn overlay(args: &[&str]) -> Output {
    let mut child = Command::new(OVERLAY)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("overlay {args:?} ran past 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {:?} / {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn put(via: SocketAddr, key: &str, value: &str) -> Value {
    let out = overlay(&[
        "--json",
        "chord",
        "put",
        key,
        value,
        "--via",
        &via.to_string(),
    ]);
    assert!(
        out.status.success(),
        "put {key} via {via}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_out(&out)
}

fn get(via: SocketAddr, key: &str) -> Option<String> {
    let out = overlay(&["--json", "chord", "get", key, "--via", &via.to_string()]);
    match out.status.code() {
        Some(0) => Some(json_out(&out)["value"].as_str().unwrap().to_string()),
        Some(3) => None,
        code => panic!(
            "get {key} via {via}: exit {code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The oracle: the peer whose id is the first at or after `key`.
fn owner(peers: &[&PeerProcess], key: Id) -> SocketAddr {
    let mut ring: Vec<(Id, SocketAddr)> = peers.iter().map(|p| (p.id, p.addr)).collect();
    ring.sort_unstable();
    let at = ring.partition_point(|(id, _)| *id < key);
    ring[at % ring.len()].1
}

/// Waits until every live peer reports the oracle's predecessor and successor.
fn wait_for_ring(peers: &mut [PeerProcess], alive: &[bool], limit: Duration) {
    let mut ring: Vec<Id> = peers
        .iter()
        .zip(alive)
        .filter(|(_, a)| **a)
        .map(|(p, _)| p.id)
        .collect();
    ring.sort_unstable();
    let hex = |id: Id| format!("{id:x}");
    let deadline = Instant::now() + limit;
    loop {
        let mut wrong = 0;
        for (p, _) in peers.iter_mut().zip(alive).filter(|(_, a)| **a) {
            p.drain();
            let k = ring.binary_search(&p.id).unwrap();
            let want = (
                hex(ring[(k + ring.len() - 1) % ring.len()]),
                hex(ring[(k + 1) % ring.len()]),
            );
            if p.neighbours.as_ref() != Some(&want) {
                wrong += 1;
            }
        }
        if wrong == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{wrong} peers still had wrong neighbours after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stoica Sec. 4-5 across real processes: joins, puts and gets through any peer, a crash
/// (SIGKILL) absorbed by the successor-list replicas, a graceful leave (SIGTERM) that hands
/// keys over, and garbage datagrams dropped while the peers keep serving.
#[test]
fn sixteen_processes_form_a_ring_and_survive_a_kill_a_leave_and_garbage() {
    in_private_network(
        "sixteen_processes_form_a_ring_and_survive_a_kill_a_leave_and_garbage",
        Fallback::HostLoopback,
        || {
            let mut peers = vec![PeerProcess::start(None)];
            peers[0].wait_for("created", Duration::from_secs(5));
            let mut rng = Rng::new(7);
            for _ in 1..16 {
                let via = peers[rng.below(peers.len() as u64) as usize].addr;
                let mut p = PeerProcess::start(Some(via));
                p.wait_for("joined", Duration::from_secs(10));
                peers.push(p);
            }
            let mut alive = vec![true; peers.len()];
            wait_for_ring(&mut peers, &alive, Duration::from_secs(30));

            // Puts land on the oracle's owner; gets through other processes read them back.
            let keys: Vec<(String, String)> = (0..16)
                .map(|k| (format!("key-{k}"), format!("value-{k}")))
                .collect();
            for (k, (key, value)) in keys.iter().enumerate() {
                let stored = put(peers[k].addr, key, value);
                let all: Vec<&PeerProcess> = peers.iter().collect();
                let want = owner(&all, Id::sha256(key.as_bytes()));
                assert_eq!(
                    stored["owner"]["addr"].as_str().unwrap(),
                    want.to_string(),
                    "{key}"
                );
            }
            for (k, (key, value)) in keys.iter().enumerate() {
                assert_eq!(
                    get(peers[(k + 5) % 16].addr, key).as_deref(),
                    Some(value.as_str())
                );
            }
            assert_eq!(
                get(peers[3].addr, "never-stored"),
                None,
                "a missing key exits 3"
            );

            // SIGKILL the owner of key-0: its replicas answer, at once and after repair.
            let all: Vec<&PeerProcess> = peers.iter().collect();
            let victim_addr = owner(&all, Id::sha256(b"key-0"));
            let victim = peers.iter().position(|p| p.addr == victim_addr).unwrap();
            peers[victim].signal("-KILL");
            alive[victim] = false;
            let via = peers[(victim + 1) % 16].addr;
            assert_eq!(
                get(via, "key-0").as_deref(),
                Some("value-0"),
                "right after the kill"
            );
            wait_for_ring(&mut peers, &alive, Duration::from_secs(30));

            // SIGINT (Ctrl-C) another: it leaves gracefully, hands its keys over, exits 0.
            let leaver = (victim + 8) % 16;
            peers[leaver].signal("-INT");
            let left = peers[leaver].wait_for("left", Duration::from_secs(10));
            assert!(left["handed_over"].as_u64().is_some());
            assert_eq!(peers[leaver].exit_code(Duration::from_secs(10)), Some(0));
            alive[leaver] = false;
            wait_for_ring(&mut peers, &alive, Duration::from_secs(30));
            let live: Vec<usize> = (0..16).filter(|&i| alive[i]).collect();
            for (k, (key, value)) in keys.iter().enumerate() {
                let via = peers[live[k % live.len()]].addr;
                assert_eq!(
                    get(via, key).as_deref(),
                    Some(value.as_str()),
                    "{key} after kill + leave"
                );
            }

            // Garbage: random bytes, every truncation of a valid request, an oversized datagram.
            let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut valid = [0u8; 64];
            let request = Envelope {
                version: VERSION,
                sender: Id::sha256(b"attacker"),
                body: Body::FindSuccessor {
                    rid: 1,
                    key: Id::sha256(b"key-1"),
                },
            };
            let valid = encode(&request, &mut valid).unwrap().to_vec();
            let targets: Vec<SocketAddr> = live.iter().take(4).map(|&i| peers[i].addr).collect();
            for (t, &to) in targets.iter().enumerate() {
                for _ in 0..500 {
                    let mut junk = vec![0u8; 1 + rng.below(1400) as usize];
                    rng.fill(&mut junk);
                    raw.send_to(&junk, to).unwrap();
                    // The first target's garbage is paced so that its socket buffer (not
                    // the peer) drops none of it, and its counters can be checked.
                    if t == 0 {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                }
                for n in 0..valid.len() {
                    raw.send_to(&valid[..n], to).unwrap();
                }
                raw.send_to(&vec![0xff; 65_507], to).unwrap();
            }
            for &i in &live {
                assert_eq!(
                    peers[i].child.try_wait().unwrap(),
                    None,
                    "{} died of garbage",
                    peers[i].addr
                );
            }
            for (k, (key, value)) in keys.iter().enumerate() {
                let via = targets[k % targets.len()];
                assert_eq!(
                    get(via, key).as_deref(),
                    Some(value.as_str()),
                    "{key} after garbage"
                );
            }
            assert!(
                overlay(&["chord", "lookup", "key-1", "--via", &targets[0].to_string()])
                    .status
                    .success()
            );
            // The garbage was counted, not obeyed: a target reports its counters as it leaves.
            let target = live
                .iter()
                .copied()
                .find(|&i| peers[i].addr == targets[0])
                .unwrap();
            peers[target].signal("-TERM");
            let stats = &peers[target].wait_for("left", Duration::from_secs(10))["stats"];
            let dropped =
                stats["malformed"].as_u64().unwrap() + stats["wrong_version"].as_u64().unwrap();
            assert!(
                dropped >= 500 + valid.len() as u64,
                "only {dropped} bad datagrams counted: {stats}"
            );
        },
    );
}

/// Exit codes and messages that tell the user what to do.
#[test]
fn errors_exit_with_their_documented_codes_and_say_what_to_do() {
    in_private_network(
        "errors_exit_with_their_documented_codes_and_say_what_to_do",
        Fallback::HostLoopback,
        || {
            // Nobody at --via: exit 4, with a hint.
            let out = overlay(&[
                "chord",
                "get",
                "k",
                "--via",
                "127.0.0.1:9",
                "--timeout-ms",
                "3000",
            ]);
            assert_eq!(out.status.code(), Some(4));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("no answer through 127.0.0.1:9") && err.contains("hint:"),
                "{err}"
            );

            // Bootstrap unreachable: exit 4.
            let out = overlay(&[
                "--json",
                "chord",
                "join",
                "--bind",
                "127.0.0.1:0",
                "--bootstrap",
                "127.0.0.1:9",
            ]);
            assert_eq!(out.status.code(), Some(4));
            let err: Value = serde_json::from_slice(&out.stderr).unwrap();
            assert_eq!(err["exit"], 4);
            assert!(
                err["error"]
                    .as_str()
                    .unwrap()
                    .contains("bootstrap 127.0.0.1:9 did not answer")
            );

            // Port in use: exit 5.
            let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = taken.local_addr().unwrap().to_string();
            let out = overlay(&["chord", "join", "--bind", &addr]);
            assert_eq!(out.status.code(), Some(5));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("another process uses this port"), "{err}");

            // An unspecified address cannot name a peer: exit 2.
            let out = overlay(&["chord", "join", "--bind", "0.0.0.0:7000"]);
            assert_eq!(out.status.code(), Some(2));

            // A value too large for the protocol: exit 6, nothing sent.
            let big = "x".repeat(2000);
            let out = overlay(&["chord", "put", "k", &big, "--via", "127.0.0.1:9"]);
            assert_eq!(out.status.code(), Some(6));

            // Bad arguments: clap's exit 2.
            assert_eq!(overlay(&["chord", "put", "k"]).status.code(), Some(2));
        },
    );
}

/// Mainline DHT nodes in separate processes: announce, get_peers and BEP 44 put/get across
/// them, 1000 garbage datagrams per node, a Ctrl-C, and the exit codes of `overlay dht`.
#[test]
fn dht_processes_announce_and_put_across_processes_and_survive_garbage() {
    in_private_network(
        "dht_processes_announce_and_put_across_processes_and_survive_garbage",
        Fallback::HostLoopback,
        || {
            let mut nodes = vec![PeerProcess::spawn(&[
                "dht",
                "start",
                "--bind",
                "127.0.0.1:0",
            ])];
            let first = nodes[0].addr.to_string();
            for _ in 0..5 {
                let mut n = PeerProcess::spawn(&[
                    "dht",
                    "start",
                    "--bind",
                    "127.0.0.1:0",
                    "--bootstrap",
                    &first,
                ]);
                let b = n.wait_for("bootstrapped", Duration::from_secs(10));
                assert!(b["nodes"].as_u64().unwrap() >= 1, "{b}");
                nodes.push(n);
            }
            let via = |i: usize| nodes[i].addr.to_string();
            let ih = "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401";
            let out = overlay(&[
                "--json",
                "dht",
                "announce",
                ih,
                "--port",
                "51413",
                "--via",
                &via(1),
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(json_out(&out)["stored"].as_u64().unwrap() >= 1);
            let out = overlay(&["--json", "dht", "get-peers", ih, "--via", &via(4)]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(json_out(&out)["peers"][0], "127.0.0.1:51413");

            let out = overlay(&["--json", "dht", "put", "hello, dht", "--via", &via(2)]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let key = json_out(&out)["key"].as_str().unwrap().to_string();
            let read = |via: String| {
                let out = overlay(&["--json", "dht", "get", &key, "--via", &via]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                json_out(&out)["value"].as_str().unwrap().to_string()
            };
            assert_eq!(read(via(5)), "hello, dht");

            // 1000 hostile datagrams per node: random bytes and truncated KRPC.
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut rng = Rng::new(9);
            let krpc = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
            for n in &nodes {
                for i in 0..1000 {
                    let mut junk = vec![0u8; (rng.below(200) + 1) as usize];
                    rng.fill(&mut junk);
                    let datagram = if i % 2 == 0 {
                        &junk[..]
                    } else {
                        &krpc[..junk.len().min(krpc.len() - 1)]
                    };
                    socket.send_to(datagram, n.addr).unwrap();
                    if i % 20 == 0 {
                        // Paced, so that the receiving socket's buffer drops none.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(
                read(via(3)),
                "hello, dht",
                "still serving after the garbage"
            );

            // Exit codes: 3 nothing there, 2 not a key, 4 nobody at --via, 6 item too large.
            let missing = "0000000000000000000000000000000000000000";
            assert_eq!(
                overlay(&["dht", "get", missing, "--via", &via(0)])
                    .status
                    .code(),
                Some(3)
            );
            assert_eq!(
                overlay(&["dht", "get", "xyz", "--via", &via(0)])
                    .status
                    .code(),
                Some(2)
            );
            let out = overlay(&[
                "dht",
                "get",
                missing,
                "--via",
                "127.0.0.1:9",
                "--timeout-ms",
                "3000",
            ]);
            assert_eq!(out.status.code(), Some(4));
            assert!(String::from_utf8_lossy(&out.stderr).contains("hint:"));
            let big = "x".repeat(1000);
            assert_eq!(
                overlay(&["dht", "put", &big, "--via", &via(0)])
                    .status
                    .code(),
                Some(6)
            );

            // Ctrl-C stops a node cleanly and it reports the garbage it dropped.
            nodes[1].signal("-INT");
            let stopped = nodes[1].wait_for("stopped", Duration::from_secs(5));
            assert!(
                stopped["stats"]["malformed"].as_u64().unwrap() >= 1000,
                "{stopped}"
            );
            assert_eq!(nodes[1].exit_code(Duration::from_secs(5)), Some(0));
        },
    );
}
