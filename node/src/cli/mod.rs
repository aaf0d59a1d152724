//! The `overlay` command's subcommands.

pub mod chord;
pub mod demo;
pub mod dht;
pub mod gnutella;
pub mod output;
pub mod sim;
pub mod torrent;

use std::net::SocketAddr;

use overlay_node::bridge::{Bridge, Limits};
use serde_json::json;

use output::{CliError, Exit, Printer};

/// Bytes as lowercase hex (info hashes, GUIDs).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a short-lived client binds: `--bind`, else any address of `--via`'s family on a
/// free port.
pub fn client_bind(via: SocketAddr, bind: Option<SocketAddr>) -> SocketAddr {
    bind.unwrap_or(match via {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    })
}

/// `--ws ADDR`: binds the WebSocket bridge's listener before the peer starts its work, so
/// that a bad address fails at once. Tabs get UDP sockets on the peer's IP (`bind`), which
/// must therefore be one they can be reached at.
pub async fn bind_ws(
    ws: Option<SocketAddr>,
    bind: SocketAddr,
) -> Result<Option<tokio::net::TcpListener>, CliError> {
    let Some(ws) = ws else { return Ok(None) };
    // No TLS and no authentication: anyone who reaches the listener can send UDP from
    // this host. Loopback keeps that to this machine (and, through the origin check, to
    // pages it serves itself).
    if !ws.ip().is_loopback() {
        return Err(CliError::new(
            Exit::Usage,
            format!("--ws {ws} would let other hosts send UDP from this one"),
        )
        .hint("the bridge has no TLS or authentication: serve it on loopback, e.g. --ws 127.0.0.1:7700"));
    }
    if bind.ip().is_unspecified() {
        return Err(CliError::new(
            Exit::Usage,
            format!("--ws needs a --bind address tabs can be reached at, not {bind}"),
        )
        .hint("bind the peer to a concrete address, e.g. --bind 127.0.0.1:7000"));
    }
    tokio::net::TcpListener::bind(ws).await.map(Some).map_err(|e| {
        let in_use = e.kind() == std::io::ErrorKind::AddrInUse;
        let error = output::bind_error(ws, e);
        match in_use {
            true => error.hint("another process uses this port: pick another with --ws, or find it with `ss -tlpn`"),
            false => error,
        }
    })
}

/// Starts the bridge on `listener` next to the peer at `peer`, and prints where it listens
/// (`{"event":"bridge","ws":ADDR}`: scripts that asked for port 0 learn the port).
pub fn start_bridge(
    listener: Option<tokio::net::TcpListener>,
    peer: SocketAddr,
    protocol: &'static str,
    out: Printer,
) -> Result<Option<Bridge>, CliError> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let bridge = Bridge::spawn(listener, peer, protocol, Limits::default())
        .map_err(|e| CliError::new(Exit::Internal, format!("cannot start the bridge: {e}")))?;
    out.emit(
        format!(
            "bridging browser tabs on ws://{}: each becomes a {protocol} peer with a UDP address of its own",
            bridge.addr()
        ),
        json!({"event": "bridge", "ws": bridge.addr().to_string()}),
    );
    Ok(Some(bridge))
}

/// Stops the bridge (its tabs go with it) and prints what it counted.
pub fn stop_bridge(bridge: Option<Bridge>, out: Printer) {
    let Some(bridge) = bridge else { return };
    let s = bridge.stats();
    drop(bridge);
    out.emit(
        format!(
            "bridge closed: {} tabs served ({} refused, {} failed handshakes); datagrams: {} sent for tabs, {} delivered to them, {} malformed frames dropped, {} UDP errors",
            s.tabs, s.refused, s.failed_handshakes, s.sent, s.delivered, s.dropped, s.udp_errors
        ),
        json!({"event": "bridge_closed", "tabs": s.tabs, "refused": s.refused,
               "failed_handshakes": s.failed_handshakes, "sent": s.sent,
               "delivered": s.delivered, "dropped": s.dropped, "udp_errors": s.udp_errors}),
    );
}
