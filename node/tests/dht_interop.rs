//! Our Mainline DHT node against real third-party DHT implementations on loopback:
//! libtorrent 2.x (through `interop/libtorrent_dht.py`) and aria2.
//!
//! * BEP 5: our node bootstraps from a libtorrent node; a second libtorrent node bootstraps
//!   from ours (so libtorrent queries us and takes our answers); `announce_peer` then
//!   `get_peers` round-trips in both directions.
//! * BEP 44: an immutable item put by us is read by libtorrent, and the other way round.
//! * aria2's DHT, bootstrapped from our node, finds a peer one of our nodes announced and
//!   dials it with a BitTorrent handshake for the torrent.
//!
//! The tests need `python3 -c 'import libtorrent'` and `aria2c` (the README's test command
//! installs them through `interop/install.sh`) and run inside a private network namespace
//! with only loopback up. Every process and wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use overlay_core::Id;
use overlay_core::dht::{Config, item_target};
use overlay_node::dht::DhtPeer;
use serde_json::{Value, json};

mod common;
use common::{Fallback, in_private_network};

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");

/// Settings for our nodes on loopback, where every node is 127.0.0.1.
fn loopback() -> Config {
    Config {
        restrict_ips: false,
        ..Config::default()
    }
}

/// A libtorrent DHT node driven by JSON lines.
struct Libtorrent {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    ready: Value,
}

impl Libtorrent {
    fn start(port: u16, bootstrap: &[SocketAddr]) -> Libtorrent {
        let mut cmd = Command::new("python3");
        cmd.arg(format!("{INTEROP}/libtorrent_dht.py"))
            .args(["--port", &port.to_string()]);
        for b in bootstrap {
            cmd.args(["--bootstrap", &b.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with libtorrent (run node/tests/interop/install.sh)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let ready = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("libtorrent node did not start");
        assert_eq!(ready["ready"], true, "{ready}");
        Libtorrent {
            child,
            stdin,
            lines,
            ready,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ready["port"].as_u64().unwrap() as u16))
    }

    fn ask(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("libtorrent did not answer {command}"))
    }
}

impl Drop for Libtorrent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(id: Id) -> String {
    format!("{id:x}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// BEP 5 and 44 against libtorrent, both directions.
#[test]
fn libtorrent_bep5_bootstrap_announce_get_peers_and_bep44_items_both_ways() {
    in_private_network(
        "libtorrent_bep5_bootstrap_announce_get_peers_and_bep44_items_both_ways",
        Fallback::Fail,
        || {
            let rt = runtime();
            rt.block_on(async {
                let seed_node = Libtorrent::start(6881, &[]);
                // Our node bootstraps from libtorrent's.
                let ours = DhtPeer::bind("127.0.0.1:7001".parse().unwrap(), loopback(), 1)
                    .await
                    .unwrap();
                let nodes = ours.bootstrap(&[seed_node.addr()]).await.unwrap();
                assert!(
                    nodes >= 1,
                    "our table after bootstrapping from libtorrent: {nodes}"
                );
                let table = ours.snapshot().await.unwrap();
                let lt_id = seed_node.ready["node_id"].as_str().unwrap().to_string();
                assert!(
                    table.nodes.iter().any(|(_, id, _)| hex(*id) == lt_id),
                    "libtorrent's node is in our table"
                );

                // A second libtorrent node bootstraps from ours: libtorrent queries us and
                // puts us in its table.
                let mut other = Libtorrent::start(6882, &[ours.addr()]);
                let booted = other.ready["bootstrapped"].to_string();
                assert!(
                    booted.contains("7001"),
                    "libtorrent bootstrapped from us: {booted}"
                );
                let rt_lt = other.ask(json!({"cmd": "routing_table"}));
                assert!(
                    rt_lt["nodes"].to_string().contains(&hex(ours.id())),
                    "our node is in libtorrent's routing table: {rt_lt}"
                );
                // Let the tables settle: every node has met the others.
                let mut seed_node = seed_node;
                seed_node.ask(json!({"cmd": "add_node", "addr": ours.addr().to_string()}));

                // Our announce -> libtorrent's get_peers.
                let ours_ih = Id([0x11; 20]);
                let (stored, _) = ours.announce(ours_ih, Some(6890)).await.unwrap();
                assert!(
                    stored >= 1,
                    "libtorrent nodes stored our announce: {stored}"
                );
                let got = other.ask(json!({"cmd": "get_peers", "ih": hex(ours_ih), "timeout": 20}));
                assert!(
                    got["peers"].to_string().contains("127.0.0.1:6890"),
                    "libtorrent found the peer we announced: {got}"
                );

                // libtorrent's announce -> our get_peers.
                let lt_ih = Id([0x22; 20]);
                let ann = other
                    .ask(json!({"cmd": "announce", "ih": hex(lt_ih), "port": 6891, "timeout": 20}));
                assert_eq!(ann["ok"], true, "libtorrent announced: {ann}");
                let (peers, _) = ours.get_peers(lt_ih).await.unwrap();
                assert!(
                    peers.contains(&"127.0.0.1:6891".parse().unwrap()),
                    "we found the peer libtorrent announced: {peers:?}"
                );

                // BEP 44: our put -> libtorrent's get.
                let (target, stored, _) = ours.put(b"18:hello from overlay").await.unwrap();
                assert!(stored >= 1);
                assert_eq!(target, item_target(b"18:hello from overlay"));
                let got = other.ask(json!({"cmd": "get", "target": hex(target), "timeout": 20}));
                assert_eq!(
                    got["value"], "hello from overlay",
                    "libtorrent read our item: {got}"
                );

                // libtorrent's put -> our get.
                let put = other
                    .ask(json!({"cmd": "put", "value": "hello from libtorrent", "timeout": 20}));
                let target = put["target"].as_str().unwrap().to_string();
                assert_eq!(target, hex(item_target(b"21:hello from libtorrent")));
                let (value, _) = ours.get(target.parse().unwrap()).await.unwrap();
                assert_eq!(value.as_deref(), Some(&b"21:hello from libtorrent"[..]));

                let stats = ours.snapshot().await.unwrap().stats;
                eprintln!("our node: {stats:?}");
                assert_eq!(stats.malformed, 0, "libtorrent's messages all decoded");
            });
        },
    );
}

/// aria2's DHT, bootstrapped from our node, finds a peer our nodes announced and dials it.
#[test]
fn aria2_finds_a_peer_announced_through_our_dht() {
    in_private_network(
        "aria2_finds_a_peer_announced_through_our_dht",
        Fallback::Fail,
        || {
            let info_hash = Command::new("python3")
                .arg(format!("{INTEROP}/aria2_find_peer.py"))
                .arg("--print-infohash")
                .output()
                .expect("python3");
            let ih: Id = String::from_utf8(info_hash.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let rt = runtime();
            let (entry, _announcer) = rt.block_on(async {
                let entry = DhtPeer::bind("127.0.0.1:7101".parse().unwrap(), loopback(), 2)
                    .await
                    .unwrap();
                let announcer = DhtPeer::bind("127.0.0.1:7102".parse().unwrap(), loopback(), 3)
                    .await
                    .unwrap();
                announcer.bootstrap(&[entry.addr()]).await.unwrap();
                let (stored, _) = announcer.announce(ih, Some(6890)).await.unwrap();
                assert!(stored >= 1);
                (entry, announcer)
            });
            let out = Command::new("sh")
                .arg(format!("{INTEROP}/aria2_find_peer.sh"))
                .args([
                    "--entry",
                    &entry.addr().port().to_string(),
                    "--peer-port",
                    "6890",
                ])
                .output()
                .expect("sh");
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            eprintln!("{text}");
            assert!(
                out.status.success(),
                "aria2 did not dial the announced peer"
            );
            drop(rt);
        },
    );
}
