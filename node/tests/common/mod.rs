//! What the integration tests that run real networks share.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::process::Command;

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
