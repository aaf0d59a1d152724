//! What the integration tests that run real networks share.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const NETNS_ENV: &str = "OVERLAY_TEST_IN_NETNS";

/// Where a test may run when no network namespace can be made (no privileges).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// On the host's loopback: fine for our own peers.
    HostLoopback,
    /// Nowhere: third-party clients with their protections off must see only loopback.
    Fail,
}

/// Runs `body` inside a fresh network namespace with only loopback up, by re-executing
/// this test there (bounded to 5 minutes).
pub fn in_private_network(test: &str, fallback: Fallback, body: impl FnOnce()) {
    if std::env::var_os(NETNS_ENV).is_some() {
        return body();
    }
    const SETUP: &str = "ip link set lo up && exec \"$0\" \"$@\"";
    let probe = Command::new("unshare")
        .args(["-n", "sh", "-c", SETUP, "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            fallback == Fallback::HostLoopback,
            "{test} needs a network namespace (unshare -n, as root)"
        );
        eprintln!("no network namespace available: running on the host's loopback");
        return body();
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("timeout")
        .args(["300", "unshare", "-n", "sh", "-c", SETUP])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "{test} failed inside its network namespace"
    );
    assert!(
        text.contains("1 passed"),
        "{test} did not run inside its namespace"
    );
}

/// Sends `signal` (`-INT`, `-TERM`, ...) to a child process.
pub fn signal(child: &Child, signal: &str) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits, at most `limit`, for a child process to exit; its exit code. `what` names it in
/// the panic if it does not.
pub fn exit_code(child: &mut Child, limit: Duration, what: &dyn std::fmt::Display) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not exit within {limit:?}");
}

/// Starts `cmd` (an `overlay --json ...`) with its stdout read on a thread: the child, and
/// the JSON objects it prints, one per line.
pub fn spawn_json_lines(cmd: &mut Command) -> (Child, Receiver<serde_json::Value>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, events) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    (child, events)
}

/// A fresh folder under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("overlay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
