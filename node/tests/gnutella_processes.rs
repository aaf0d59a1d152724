//! Real `overlay gnutella` processes on loopback: three ultrapeers in a line (U1 - U2 -
//! U3), U3 sharing a folder; a short-lived leaf attached to U1 finds U3's file three
//! servents away, downloads it by SHA-1 and gets the same bytes; TTLs that stop short find
//! nothing, and so does a word nobody shares; the exit codes of `overlay gnutella`.
//!
//! The test re-runs itself inside a private network namespace (`unshare -n`, loopback
//! only) where it can; where it cannot (no privileges), it runs on the host's loopback.
//! Every wait is bounded and every process is killed when the test ends.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use overlay_core::Rng;
use serde_json::Value;
use sha1::{Digest, Sha1};

mod common;
use common::{Fallback, TempDir, in_private_network};

const OVERLAY: &str = env!("CARGO_BIN_EXE_overlay");

/// A running `overlay --json gnutella serve` and the JSON events it prints.
struct Servent {
    child: Child,
    addr: SocketAddr,
    events: Receiver<Value>,
}

impl Servent {
    /// Starts `overlay --json gnutella serve --listen 127.0.0.1:0 ARGS` and waits for its
    /// `listening` event.
    fn start(args: &[&str]) -> Servent {
        let (child, events) = common::spawn_json_lines(
            Command::new(OVERLAY)
                .args(["--json", "gnutella", "serve", "--listen", "127.0.0.1:0"])
                .args(args),
        );
        let mut s = Servent {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            events,
        };
        let listening = s.wait_for("listening", Duration::from_secs(10));
        s.addr = listening["addr"].as_str().unwrap().parse().unwrap();
        s
    }

    /// Waits for the next event called `name`.
    fn wait_for(&mut self, name: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{}: no {name:?} event within {limit:?}", self.addr));
            if v["event"] == name {
                return v;
            }
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

impl Drop for Servent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a short-lived `overlay` command, killed if it runs past 30 s.
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
            let _ = child.wait();
            panic!("overlay {args:?} ran past 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// The JSON lines a command printed.
fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|_| {
                panic!(
                    "not JSON: {l:?} / {:?}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        })
        .collect()
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// HUGE's `urn:sha1:` of `bytes`, computed here independently of the node's code: SHA-1,
/// then RFC 4648 base32.
fn sha1_urn(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest: [u8; 20] = Sha1::digest(bytes).into();
    let mut text = String::from("urn:sha1:");
    for chunk in digest.chunks(5) {
        let n = chunk.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
        for i in (0..8).rev() {
            text.push(ALPHABET[(n >> (5 * i) & 31) as usize] as char);
        }
    }
    text
}

fn search(via: SocketAddr, extra: &[&str]) -> Output {
    let via = via.to_string();
    let mut args = vec!["--json", "gnutella", "search"];
    args.extend(extra);
    args.extend(["--connect", &via, "--wait", "1.5"]);
    overlay(&args)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Ultrapeers U1 - U2 - U3 in a line, the file at U3: a leaf of U1 finds it with hops 2
/// (the query hit is relayed by U2 and U1), fetches it by SHA-1 and gets identical bytes.
#[test]
fn gnutella_processes_find_and_fetch_a_file_three_servents_away() {
    in_private_network(
        "gnutella_processes_find_and_fetch_a_file_three_servents_away",
        Fallback::HostLoopback,
        || {
            let dir = TempDir::new("gnutella-processes");
            let share = dir.path("share");
            std::fs::create_dir(&share).unwrap();
            let mut song = vec![0u8; 300 * 1024 + 17];
            Rng::new(11).fill(&mut song);
            std::fs::write(share.join("free software song.ogg"), &song).unwrap();
            std::fs::write(
                share.join("gnutella protocol manual.txt"),
                b"GNUTELLA CONNECT/0.6",
            )
            .unwrap();
            let urn = sha1_urn(&song);

            let mut u1 = Servent::start(&[]);
            let mut u2 = Servent::start(&["--connect", &u1.addr.to_string()]);
            let c = u2.wait_for("connected", Duration::from_secs(10));
            assert_eq!(c["addr"], u1.addr.to_string());
            assert_eq!(c["role"], "ultrapeer");
            let share_arg = share.display().to_string();
            let mut u3 =
                Servent::start(&["--connect", &u2.addr.to_string(), "--share", &share_arg]);
            u3.wait_for("connected", Duration::from_secs(10));
            u1.wait_for("connected", Duration::from_secs(5));

            // Found three servents away: U3's hit is relayed by U2 and U1.
            let out = search(u1.addr, &["free", "song"]);
            assert!(out.status.success(), "{}", stderr(&out));
            let ev = events(&out);
            let hits = named(&ev, "hit");
            assert_eq!(hits.len(), 1, "{ev:?}");
            let hit = hits[0];
            assert_eq!(hit["addr"], u3.addr.to_string());
            assert_eq!(hit["name"], "free software song.ogg");
            assert_eq!(hit["size"], song.len() as u64);
            assert_eq!(hit["urn"], urn.as_str());
            assert_eq!(hit["hops"], 2);
            assert_eq!(named(&ev, "done")[0]["hits"], 1);

            // By SHA-1 alone, the same file.
            let out = search(u1.addr, &["--urn", &urn]);
            assert!(out.status.success(), "{}", stderr(&out));
            let ev = events(&out);
            assert_eq!(named(&ev, "hit")[0]["index"], hit["index"]);

            // Fetch: search, download the first hit by SHA-1, verify.
            let out_path = dir.str("downloaded.ogg");
            let via = u1.addr.to_string();
            let out = overlay(&[
                "--json",
                "gnutella",
                "fetch",
                "free",
                "song",
                "--connect",
                &via,
                "-o",
                &out_path,
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
            let fetched = named(&events(&out), "fetched")[0].clone();
            assert_eq!(fetched["verified"], true);
            assert_eq!(fetched["urn"], urn.as_str());
            assert_eq!(fetched["from"], u3.addr.to_string());
            assert_eq!(fetched["hops"], 2);
            assert!(read(Path::new(&out_path)) == song, "the bytes differ");
            let up = u3.wait_for("uploaded", Duration::from_secs(5));
            assert_eq!(up["bytes"], song.len() as u64);
            assert!(!dir.path("downloaded.ogg.part").exists());

            // Straight from U3 by URN.
            let direct = dir.str("direct.ogg");
            let out = overlay(&[
                "gnutella",
                "fetch",
                "--from",
                &u3.addr.to_string(),
                "--urn",
                &urn,
                "-o",
                &direct,
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
            assert!(read(Path::new(&direct)) == song, "the bytes differ");

            // A word nobody shares: no hit, exit 3 with a hint.
            let out = search(u1.addr, &["jazz"]);
            assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
            assert!(named(&events(&out), "hit").is_empty());
            assert!(stderr(&out).contains("no hits"), "{}", stderr(&out));

            // TTL: the query needs 3 (U1, U2, U3); with 2 it dies at U2.
            let out = search(u1.addr, &["free", "song", "--ttl", "2"]);
            assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
            let out = search(u1.addr, &["free", "song", "--ttl", "3"]);
            assert!(out.status.success(), "{}", stderr(&out));

            // A SHA-1 nobody shares, straight from U3: 404, exit 3, nothing written.
            let missing = sha1_urn(b"not shared");
            let nothing = dir.str("nothing");
            let out = overlay(&[
                "gnutella",
                "fetch",
                "--from",
                &u3.addr.to_string(),
                "--urn",
                &missing,
                "-o",
                &nothing,
            ]);
            assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
            assert!(stderr(&out).contains("404"), "{}", stderr(&out));
            assert!(!Path::new(&nothing).exists());

            // Nobody there: exit 4. Not a URN: exit 2.
            let out = overlay(&["gnutella", "search", "x", "--connect", "127.0.0.1:9"]);
            assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
            assert!(stderr(&out).contains("hint:"));
            let out = overlay(&[
                "gnutella",
                "search",
                "--urn",
                "urn:sha1:XYZ",
                "--connect",
                &via,
            ]);
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

            // Ctrl-C stops U2 cleanly; its counters show what it relayed.
            u2.signal("-INT");
            let stopped = u2.wait_for("stopped", Duration::from_secs(5));
            let stats = &stopped["stats"];
            assert!(stats["hits_forwarded"].as_u64().unwrap() >= 4, "{stopped}");
            assert!(
                stats["queries_received"].as_u64().unwrap() >= 6,
                "{stopped}"
            );
            assert_eq!(stats["malformed"], 0, "{stopped}");
            assert_eq!(u2.exit_code(Duration::from_secs(5)), Some(0));
            // U1 and U3 hear its Bye.
            let closed = u3.wait_for("closed", Duration::from_secs(5));
            assert_eq!(closed["addr"], u2.addr.to_string());
        },
    );
}
