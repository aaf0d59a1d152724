//! Our BitTorrent client and tracker against real third-party software on loopback
//! (BEP 3's peer wire and HTTP tracker protocol, BEP 15's UDP trackers, BEP 23's compact
//! peers):
//!
//! * aria2 1.36 seeds a 64 MiB torrent that `overlay torrent download` fetches, having
//!   found it through `overlay tracker` over HTTP; then aria2 downloads it from
//!   `overlay torrent seed` the same way;
//! * libtorrent 2.1 (through `interop/libtorrent_torrent.py`) the same, through our
//!   tracker over UDP;
//! * aria2 and libtorrent find each other through our tracker, and one downloads from the
//!   other;
//! * our client announces to opentracker over HTTP and UDP, and a second one finds the
//!   first there;
//! * qBittorrent 4.5 downloads from our seed and seeds to our client, through our tracker;
//! * Transmission 3.00 downloads from our seed;
//! * a trackerless torrent through a libtorrent DHT node, both ways;
//! * a stopped download resumes from what is on disk.
//!
//! Every download is compared byte for byte with the original. The tests need aria2c,
//! `python3 -c 'import libtorrent'`, opentracker, qbittorrent-nox, curl and
//! transmission-daemon (the README's test command installs
//! them through `interop/install.sh`) and run in a private network namespace with only
//! loopback up. Every process and wait is bounded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Fallback, TempDir, exit_code, in_private_network, spawn_json_lines};

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
const OVERLAY: &str = env!("CARGO_BIN_EXE_overlay");
/// The torrent's size: 64 pieces of 1 MiB.
const SIZE: usize = 64 << 20;

/// Kills a child when dropped, so that a failing test leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `seed/data.bin` with 64 MiB of seeded noise, and a torrent of it announcing to
/// `trackers`: its path and info hash (hex).
fn content(s: &TempDir, trackers: &[String]) -> (PathBuf, String) {
    content_of(s, trackers, SIZE)
}

/// [`content`] of `size` bytes.
fn content_of(s: &TempDir, trackers: &[String], size: usize) -> (PathBuf, String) {
    let dir = s.path("seed");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = overlay_core::Rng::new(size as u64);
    let mut data = vec![0u8; size];
    rng.fill(&mut data);
    std::fs::write(dir.join("data.bin"), &data).unwrap();
    let torrent = s.path("t.torrent");
    let mut cmd = Command::new(OVERLAY);
    cmd.args(["--json", "torrent", "create"])
        .arg(dir.join("data.bin"))
        .arg("-o")
        .arg(&torrent);
    for t in trackers {
        cmd.args(["--tracker", t]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    (torrent, created["info_hash"].as_str().unwrap().to_string())
}

/// Whether `dir/data.bin` is the original, byte for byte (`cmp`).
fn same(s: &TempDir, dir: &str) -> bool {
    Command::new("cmp")
        .arg(s.path("seed/data.bin"))
        .arg(s.path(dir).join("data.bin"))
        .status()
        .unwrap()
        .success()
}

/// Polls `done` every 100 ms until it holds; panics with `what` after `limit`.
fn wait_for(what: &dyn std::fmt::Display, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A command's standard output, or `None` if it failed.
fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .output()
        .expect("a command the interop tests need (see install.sh)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether a third-party client's download in `dir` becomes the original within 10 s.
/// libtorrent (and qbittorrent, built on it) reports a piece once its hash checks, which
/// can be before its disk threads have written it out; a piece with wrong bytes would not
/// have checked.
fn same_soon(s: &TempDir, dir: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !same(s, dir) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

/// The first event named `name` within `limit`.
fn event(events: &Receiver<Value>, name: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(v) if v["event"] == name => return v,
            Ok(_) => {}
            Err(e) => panic!("no {name} event within {limit:?}: {e}"),
        }
    }
}

/// `overlay tracker` on a free port: the process and its port.
fn our_tracker() -> (Running, Receiver<Value>, u16) {
    let (child, events) = spawn_json_lines(Command::new(OVERLAY).args([
        "--json",
        "tracker",
        "--bind",
        "127.0.0.1:0",
        "--interval",
        "5",
    ]));
    let child = Running(child);
    let listening = event(&events, "listening", Duration::from_secs(10));
    let udp = listening["udp"].as_str().unwrap();
    let port = udp.rsplit(':').next().unwrap().parse().unwrap();
    (child, events, port)
}

/// `overlay torrent download` into `dir`, to the end: its summary.
fn our_download(s: &TempDir, torrent: &Path, dir: &str, extra: &[&str]) -> Value {
    let (child, events) = spawn_json_lines(
        Command::new(OVERLAY)
            .args(["--json", "torrent", "download"])
            .arg(torrent)
            .arg("-o")
            .arg(s.path(dir))
            .args(["--bind", "127.0.0.1:0"])
            .args(extra),
    );
    let mut child = Running(child);
    let summary = event(&events, "summary", Duration::from_secs(120));
    assert_eq!(
        exit_code(
            &mut child.0,
            Duration::from_secs(10),
            &"overlay torrent download"
        ),
        Some(0),
        "{summary}"
    );
    summary
}

/// `overlay torrent seed` of `seed/`, for at most two minutes. Keep the receiver while it
/// runs: it prints to it, and dies when no one reads.
fn our_seed(s: &TempDir, torrent: &Path, extra: &[&str]) -> (Running, Receiver<Value>) {
    let (child, events) = spawn_json_lines(
        Command::new(OVERLAY)
            .args(["--json", "torrent", "seed"])
            .arg(torrent)
            .arg(s.path("seed"))
            .args(["--bind", "127.0.0.1:0", "--for", "120"])
            .args(extra),
    );
    let child = Running(child);
    let listening = event(&events, "listening", Duration::from_secs(30));
    assert_eq!(
        listening["have"], listening["pieces"],
        "the seed checked its file"
    );
    (child, events)
}

/// aria2c sharing `torrent` in `dir` on `port`: a seed (for `seed_minutes`) when `dir`
/// holds the file, else a leecher that exits once it has it.
fn aria2(torrent: &Path, dir: &Path, port: u16, seed_minutes: f64) -> Running {
    // Not under `timeout`, which would leave aria2c running when killed: `Running` kills
    // it, and the namespace's own timeout bounds the test.
    let child = Command::new("aria2c")
        .args([
            "--enable-dht=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--bt-external-ip=127.0.0.1",
            "--check-integrity=true",
            "--seed-ratio=0.0",
            "--file-allocation=none",
            "--summary-interval=0",
            "--console-log-level=warn",
            "--allow-overwrite=true",
        ])
        .arg(format!("--seed-time={seed_minutes}"))
        .arg(format!("--listen-port={port}"))
        .arg(format!("--dir={}", dir.display()))
        .arg(torrent)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("aria2c (run node/tests/interop/install.sh)");
    Running(child)
}

/// A libtorrent client sharing `torrent` in `dir` on `port`, with `extra` arguments.
fn libtorrent(torrent: &Path, dir: &Path, port: u16, extra: &[&str]) -> (Running, Receiver<Value>) {
    let (child, events) = spawn_json_lines(
        // Bounded by its own --seconds, and killed when dropped.
        Command::new("python3")
            .arg(format!("{INTEROP}/libtorrent_torrent.py"))
            .arg("--torrent")
            .arg(torrent)
            .arg("--dir")
            .arg(dir)
            .args(["--port", &port.to_string(), "--seconds", "140"])
            .args(extra),
    );
    let child = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("libtorrent started");
        if v["ready"] == true {
            return (child, events);
        }
    }
}

/// Waits for a libtorrent client's `finished` line.
fn libtorrent_finished(events: &Receiver<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("libtorrent finished within 120 s");
        if v["finished"] == true {
            return v;
        }
    }
}

fn check_summary(summary: &Value) {
    check_summary_of(summary, 64);
}

/// A complete download that fetched `pieces` of the 1 MiB pieces (the rest was on disk).
fn check_summary_of(summary: &Value, pieces: u64) {
    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(summary["hash_failures"], 0, "{summary}");
    let downloaded = summary["downloaded"].as_u64().unwrap();
    assert!(downloaded >= pieces << 20, "{summary}");
    assert!(downloaded < (pieces + 1) << 20, "{summary}");
}

#[test]
fn aria2_seeds_to_us_and_leeches_from_us_through_our_http_tracker() {
    in_private_network(
        "aria2_seeds_to_us_and_leeches_from_us_through_our_http_tracker",
        Fallback::Fail,
        || {
            let s = TempDir::new("bt-aria2");
            let (_tracker, _, port) = our_tracker();
            let (torrent, _) = content(&s, &[format!("http://127.0.0.1:{port}/announce")]);
            // aria2 seeds; we find it through the tracker and download.
            let seed = aria2(&torrent, &s.path("seed"), 6881, 2.0);
            let summary = our_download(&s, &torrent, "ours", &[]);
            check_summary(&summary);
            assert!(same(&s, "ours"), "our download from aria2 differs");
            drop(seed);
            // We seed; aria2 finds us through the tracker, downloads and exits.
            let (_seed, _seed_events) = our_seed(&s, &torrent, &[]);
            let mut leech = aria2(&torrent, &s.path("aria2"), 6882, 0.0);
            assert_eq!(
                exit_code(&mut leech.0, Duration::from_secs(120), &"aria2c"),
                Some(0)
            );
            assert!(same(&s, "aria2"), "aria2's download from us differs");
        },
    );
}

#[test]
fn libtorrent_seeds_to_us_and_leeches_from_us_through_our_udp_tracker() {
    in_private_network(
        "libtorrent_seeds_to_us_and_leeches_from_us_through_our_udp_tracker",
        Fallback::Fail,
        || {
            let s = TempDir::new("bt-libtorrent");
            let (_tracker, _, port) = our_tracker();
            let (torrent, _) = content(&s, &[format!("udp://127.0.0.1:{port}")]);
            let (seed, seed_events) = libtorrent(&torrent, &s.path("seed"), 6881, &[]);
            libtorrent_finished(&seed_events);
            let summary = our_download(&s, &torrent, "ours", &[]);
            check_summary(&summary);
            assert!(same(&s, "ours"), "our download from libtorrent differs");
            drop(seed);
            let (_ours, _ours_events) = our_seed(&s, &torrent, &[]);
            let (_leech, events) = libtorrent(&torrent, &s.path("lt"), 6882, &[]);
            let done = libtorrent_finished(&events);
            eprintln!("libtorrent downloaded from us in {} s", done["seconds"]);
            assert!(same_soon(&s, "lt"), "libtorrent's download from us differs");
        },
    );
}

#[test]
fn aria2_and_libtorrent_find_each_other_through_our_tracker() {
    in_private_network(
        "aria2_and_libtorrent_find_each_other_through_our_tracker",
        Fallback::Fail,
        || {
            let s = TempDir::new("bt-find");
            let (_tracker, _, port) = our_tracker();
            let (torrent, _) = content(&s, &[format!("http://127.0.0.1:{port}/announce")]);
            let (_seed, seed_events) = libtorrent(&torrent, &s.path("seed"), 6881, &[]);
            libtorrent_finished(&seed_events);
            let mut leech = aria2(&torrent, &s.path("aria2"), 6882, 0.0);
            assert_eq!(
                exit_code(&mut leech.0, Duration::from_secs(120), &"aria2c"),
                Some(0)
            );
            assert!(
                same(&s, "aria2"),
                "aria2's download from libtorrent differs"
            );
        },
    );
}

#[test]
fn we_announce_to_opentracker_over_http_and_udp() {
    in_private_network(
        "we_announce_to_opentracker_over_http_and_udp",
        Fallback::Fail,
        || {
            let s = TempDir::new("bt-opentracker");
            let (torrent, info_hash) = content(
                &s,
                &[
                    "http://127.0.0.1:6969/announce".into(),
                    "udp://127.0.0.1:6969".into(),
                ],
            );
            // opentracker as Debian builds it serves only whitelisted torrents.
            let root = s.path("ot");
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("whitelist.txt"), format!("{info_hash}\n")).unwrap();
            let mut conf = std::fs::File::create(s.path("opentracker.conf")).unwrap();
            writeln!(conf, "listen.tcp_udp 127.0.0.1:6969\ntracker.rootdir {}\naccess.whitelist /whitelist.txt", root.display()).unwrap();
            let child = Command::new("opentracker")
                .arg("-f")
                .arg(s.path("opentracker.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("opentracker (run node/tests/interop/install.sh)");
            let _ot = Running(child);
            std::thread::sleep(Duration::from_millis(300));
            let (_seed, seed_events) = our_seed(&s, &torrent, &[]);
            for url in ["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"] {
                let v = event(&seed_events, "announced", Duration::from_secs(20));
                assert!(
                    v["url"] == "http://127.0.0.1:6969/announce"
                        || v["url"] == "udp://127.0.0.1:6969",
                    "{v} for {url}"
                );
            }
            let summary = our_download(&s, &torrent, "ours", &[]);
            check_summary(&summary);
            assert!(same(&s, "ours"));
        },
    );
}

#[test]
fn our_download_resumes_from_what_is_on_disk() {
    in_private_network(
        "our_download_resumes_from_what_is_on_disk",
        Fallback::HostLoopback,
        || {
            let s = TempDir::new("bt-resume");
            let (_tracker, _, port) = our_tracker();
            let (torrent, _) = content(&s, &[format!("udp://127.0.0.1:{port}")]);
            // A stopped download: the first 40 MiB on disk, one byte of piece 3 wrong.
            let mut partial = std::fs::read(s.path("seed/data.bin")).unwrap();
            partial.truncate(40 << 20);
            partial[3 << 20] ^= 1;
            std::fs::create_dir_all(s.path("ours")).unwrap();
            std::fs::write(s.path("ours/data.bin"), &partial).unwrap();
            let (_seed, _seed_events) = our_seed(&s, &torrent, &[]);
            let summary = our_download(&s, &torrent, "ours", &[]);
            check_summary_of(&summary, 64 - 39);
            assert!(same(&s, "ours"), "the resumed download differs");
        },
    );
}

/// A libtorrent DHT node (`interop/libtorrent_dht.py`) on `port`, idle: the bootstrap and
/// the store of a trackerless swarm.
fn libtorrent_dht_node(port: u16) -> (Running, Receiver<Value>) {
    let (child, events) = spawn_json_lines(
        Command::new("python3")
            .arg(format!("{INTEROP}/libtorrent_dht.py"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::piped()),
    );
    let child = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the libtorrent DHT node started");
        if v["ready"] == true {
            return (child, events);
        }
    }
}

#[test]
fn trackerless_torrent_through_the_dht_with_libtorrent() {
    in_private_network(
        "trackerless_torrent_through_the_dht_with_libtorrent",
        Fallback::Fail,
        || {
            let s = TempDir::new("bt-dht");
            let (torrent, _) = content(&s, &[]);
            // A libtorrent DHT node is the DHT; our seed joins it and announces itself.
            let (_node, _node_events) = libtorrent_dht_node(6990);
            let dht = ["--dht", "127.0.0.1:6990"];
            let (_seed, seed_events) = our_seed(&s, &torrent, &dht);
            let round = event(&seed_events, "dht", Duration::from_secs(30));
            assert!(round["stored"].as_u64().unwrap() >= 1, "{round}");
            // libtorrent, with only the DHT to go by, finds our seed and downloads.
            let (_leech, events) = libtorrent(
                &torrent,
                &s.path("lt"),
                6882,
                &["--dht-bootstrap", "127.0.0.1:6990"],
            );
            libtorrent_finished(&events);
            assert!(
                same_soon(&s, "lt"),
                "libtorrent's download through the DHT differs"
            );
            // Our client, with only the DHT to go by, finds the seeds and downloads.
            let summary = our_download(&s, &torrent, "ours", &dht);
            check_summary(&summary);
            assert!(same(&s, "ours"), "our download through the DHT differs");
        },
    );
}

/// qbittorrent-nox with a fresh profile under `s` (DHT, LSD and PeX off, on loopback,
/// listening on 6883), its WebUI on 127.0.0.1:8090 without authentication.
fn qbittorrent(s: &TempDir) -> Running {
    let config = s.path("qb-profile/qBittorrent/config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("qBittorrent.conf"),
        "[LegalNotice]\nAccepted=true\n\n[BitTorrent]\nSession\\DHTEnabled=false\n\
         Session\\LSDEnabled=false\nSession\\PeXEnabled=false\nSession\\Interface=lo\n\
         Session\\InterfaceName=lo\nSession\\Port=6883\nSession\\MultiConnectionsPerIp=true\n\
         Session\\QueueingSystemEnabled=false\n\n[Preferences]\nWebUI\\Address=127.0.0.1\n\
         WebUI\\Port=8090\nWebUI\\LocalHostAuth=false\nWebUI\\HostHeaderValidation=false\n\
         WebUI\\CSRFProtection=false\nConnection\\ResolvePeerCountries=false\n",
    )
    .unwrap();
    let child = Command::new("qbittorrent-nox")
        .arg(format!("--profile={}", s.path("qb-profile").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qbittorrent-nox (run node/tests/interop/install.sh)");
    let qb = Running(child);
    wait_for(&"qbittorrent's WebUI up", Duration::from_secs(20), || {
        qb_api(&["-f", "http://127.0.0.1:8090/api/v2/app/version"]).is_some()
    });
    qb
}

/// A WebUI call through curl: its body, or `None` if it failed.
fn qb_api(args: &[&str]) -> Option<String> {
    output_of(
        Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .args(args),
    )
}

/// Adds `torrent` to qbittorrent, saving into (or seeding from) `dir`, and waits until it
/// has every piece.
fn qb_complete(torrent: &Path, dir: &Path) {
    let added = qb_api(&[
        "-F",
        &format!("torrents=@{}", torrent.display()),
        "-F",
        &format!("savepath={}", dir.display()),
        "http://127.0.0.1:8090/api/v2/torrents/add",
    ]);
    assert_eq!(added.as_deref(), Some("Ok."));
    wait_for(&"qbittorrent finished", Duration::from_secs(120), || {
        let info = qb_api(&["http://127.0.0.1:8090/api/v2/torrents/info"]).unwrap_or_default();
        let torrents: Value = serde_json::from_str(&info).unwrap_or(Value::Null);
        torrents[0]["progress"] == 1.0
    });
}

#[test]
fn qbittorrent_leeches_from_us_and_seeds_to_us_through_our_tracker() {
    in_private_network(
        "qbittorrent_leeches_from_us_and_seeds_to_us_through_our_tracker",
        Fallback::Fail,
        || {
            let s = TempDir::new("bt-qbittorrent");
            let (_tracker, _, port) = our_tracker();
            let (torrent, _) = content(&s, &[format!("http://127.0.0.1:{port}/announce")]);
            let qb = qbittorrent(&s);
            // We seed; qbittorrent finds us through the tracker and downloads.
            let (seed, _seed_events) = our_seed(&s, &torrent, &[]);
            qb_complete(&torrent, &s.path("qb"));
            assert!(
                same_soon(&s, "qb"),
                "qbittorrent's download from us differs"
            );
            drop(seed);
            // qbittorrent seeds what it downloaded; we find it through the tracker.
            let summary = our_download(&s, &torrent, "ours", &[]);
            check_summary(&summary);
            assert!(same(&s, "ours"), "our download from qbittorrent differs");
            drop(qb);
        },
    );
}

/// transmission-daemon 3.00 with a fresh configuration under `s` (DHT, LPD, PeX, uTP and
/// port forwarding off, on 127.0.0.1:6884), its RPC on 127.0.0.1:9091 without
/// authentication.
fn transmission(s: &TempDir) -> Running {
    let conf = s.path("tr-conf");
    std::fs::create_dir_all(&conf).unwrap();
    let settings = serde_json::json!({
        "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
        "port-forwarding-enabled": false, "bind-address-ipv4": "127.0.0.1", "peer-port": 6884,
        "rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": 9091,
        "rpc-authentication-required": false, "rpc-whitelist-enabled": false,
        "rpc-host-whitelist-enabled": false, "incomplete-dir-enabled": false,
        "ratio-limit-enabled": false, "start-added-torrents": true,
    });
    std::fs::write(conf.join("settings.json"), settings.to_string()).unwrap();
    let child = Command::new("transmission-daemon")
        .arg("-f")
        .arg("-g")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("transmission-daemon (run node/tests/interop/install.sh)");
    let tr = Running(child);
    wait_for(&"transmission's RPC up", Duration::from_secs(20), || {
        transmission_remote(&["-l"]).is_some()
    });
    tr
}

/// `transmission-remote 127.0.0.1:9091 ARGS`: its output, or `None` if it failed.
fn transmission_remote(args: &[&str]) -> Option<String> {
    output_of(
        Command::new("transmission-remote")
            .arg("127.0.0.1:9091")
            .args(args),
    )
}

/// Our download from a Transmission seed is not here: it stalls after a few MiB (see
/// docs/bittorrent.md, "Left out").
#[test]
fn transmission_leeches_from_us() {
    in_private_network("transmission_leeches_from_us", Fallback::Fail, || {
        let s = TempDir::new("bt-transmission");
        let (_tracker, _, port) = our_tracker();
        // 16 MiB: Transmission downloads from us at about 2 MB/s.
        let trackers = [format!("http://127.0.0.1:{port}/announce")];
        let (torrent, _) = content_of(&s, &trackers, 16 << 20);
        let _tr = transmission(&s);
        // Transmission drops 127.x peers that trackers name, so it never dials: it
        // announces first, and our seed, told of it by the tracker, dials it.
        let dir = s.path("tr");
        let added = transmission_remote(&[
            "-a",
            &torrent.display().to_string(),
            "-w",
            &dir.display().to_string(),
        ]);
        assert!(added.is_some_and(|o| o.contains("success")));
        let (_seed, _seed_events) = our_seed(&s, &torrent, &[]);
        wait_for(&"transmission finished", Duration::from_secs(120), || {
            transmission_remote(&["-t", "1", "-i"])
                .is_some_and(|info| info.contains("Percent Done: 100%"))
        });
        assert!(
            same_soon(&s, "tr"),
            "transmission's download from us differs"
        );
    });
}
