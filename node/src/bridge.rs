//! The WebSocket bridge (`overlay ... --ws ADDR`): browsers have no UDP, so a tab running
//! the WASM peer connects here over WebSocket and the host gives it a UDP socket of its own.
//! The tab is then a full overlay peer at that socket's address; the bridge only relays,
//! it knows nothing of the protocol.
//!
//! Per tab: one text hello, `{"type":"hello","addr":…,"peer":…,"protocol":…}` (`addr` is
//! the tab's UDP address, `peer` the hosting peer: a natural bootstrap), then binary
//! messages, each one datagram framed by [`overlay_core::bridge`]: from the tab the frame's
//! address is the destination, to the tab it is the source. When the WebSocket closes, the
//! tab's UDP socket closes with it.
//!
//! No TLS: serve it on loopback. Browsers let any web page open a WebSocket to localhost,
//! so a tab is served only if its page came from a loopback host (its `Origin`), or if it
//! sends no `Origin` (not a browser): a site the user visits cannot send UDP through it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use overlay_core::PeerAddr;
use overlay_core::bridge::{self, MAX_HEADER};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Largest UDP payload: whatever a socket delivers fits in one frame.
const MAX_UDP: usize = 65_535;
/// Largest frame either way; the WebSocket refuses larger messages (and closes that tab).
pub const MAX_FRAME: usize = MAX_UDP + MAX_HEADER;
/// Pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the bridge allows, so that tabs cannot exhaust the host.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Tabs served at once (each holds a UDP socket and a task); more are refused.
    pub max_tabs: usize,
    /// Time a connection gets to complete the WebSocket handshake.
    pub handshake_timeout: Duration,
    /// A tab that takes no frame for this long is treated as gone.
    pub write_stall: Duration,
    /// A tab that sends nothing for this long (no frame, and no pong to the bridge's
    /// pings) is closed, so that connections left open cannot hold every slot.
    pub idle_timeout: Duration,
    /// How often an open tab is pinged (browsers answer pings by themselves).
    pub ping_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tabs: 64,
            handshake_timeout: Duration::from_secs(10),
            write_stall: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
        }
    }
}

/// What the bridge counted, over all tabs.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct BridgeStats {
    /// Tabs that completed the handshake and got a UDP socket.
    pub tabs: u64,
    /// Tabs connected now.
    pub open: u64,
    /// Connections refused because `max_tabs` tabs were connected.
    pub refused: u64,
    /// Connections that failed or timed out in the handshake.
    pub failed_handshakes: u64,
    /// Datagrams sent for tabs.
    pub sent: u64,
    /// Datagrams delivered to tabs.
    pub delivered: u64,
    /// Messages from tabs dropped: malformed frames, and text after the hello.
    pub dropped: u64,
    /// UDP sends and receives that failed.
    pub udp_errors: u64,
}

/// [`BridgeStats`], shared by the tasks.
#[derive(Default)]
struct Counters {
    tabs: AtomicU64,
    open: AtomicU64,
    refused: AtomicU64,
    failed_handshakes: AtomicU64,
    sent: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    udp_errors: AtomicU64,
}

fn add(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// What every tab's task needs.
struct Shared {
    host_peer: SocketAddr,
    protocol: &'static str,
    limits: Limits,
    counters: Counters,
}

/// A running bridge; dropping it closes the listener and every tab.
pub struct Bridge {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Bridge {
    /// Serves tabs on `listener`, next to the peer at `host_peer`, which runs `protocol`
    /// ("chord", "dht": told to tabs in the hello). Tabs' UDP sockets are bound on
    /// `host_peer`'s IP, so it must be an address others reach, not unspecified. Must be
    /// called inside a tokio runtime.
    pub fn spawn(
        listener: TcpListener,
        host_peer: SocketAddr,
        protocol: &'static str,
        limits: Limits,
    ) -> io::Result<Bridge> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            host_peer,
            protocol,
            limits,
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::info!(ws = %addr, peer = %host_peer, protocol, "bridge serving");
        Ok(Bridge { addr, shared, task })
    }

    /// The WebSocket listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters so far.
    pub fn stats(&self) -> BridgeStats {
        let c = &self.shared.counters;
        BridgeStats {
            tabs: c.tabs.load(Relaxed),
            open: c.open.load(Relaxed),
            refused: c.refused.load(Relaxed),
            failed_handshakes: c.failed_handshakes.load(Relaxed),
            sent: c.sent.load(Relaxed),
            delivered: c.delivered.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            udp_errors: c.udp_errors.load(Relaxed),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // The tabs' JoinSet lives in the task: aborting it ends them too.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.limits.max_tabs));
    // Owns every tab's task, so that they end with the bridge.
    let mut tabs = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, from)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        tabs.spawn(tab(stream, from, shared.clone(), slot));
                    }
                    // Dropping the stream closes it: the cheapest refusal, and it needs no
                    // task (a 503 would, for every refused connection).
                    Err(_) => {
                        add(&shared.counters.refused);
                        tracing::warn!(%from, max = shared.limits.max_tabs, "bridge full: connection refused");
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "bridge accept");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Forget tabs that have ended.
            Some(_) = tabs.join_next() => {}
        }
    }
}

/// Counts a tab as open while it lives, even if its task is aborted.
struct OpenTab<'a>(&'a AtomicU64);

impl Drop for OpenTab<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// One tab: handshake, UDP socket, hello, then relay until either side ends.
async fn tab(
    stream: TcpStream,
    from: SocketAddr,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
) {
    let c = &shared.counters;
    let limits = shared.limits;
    // Datagrams are small and latency is what peers measure: no Nagle delay.
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
        // Tabs are many and datagrams small: no need for the default 128 KiB per tab.
        .read_buffer_size(16 * 1024);
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_origin, Some(config));
    let mut ws = match tokio::time::timeout(limits.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            add(&c.failed_handshakes);
            tracing::debug!(%from, error = %e, "bridge handshake");
            return;
        }
        Err(_) => {
            add(&c.failed_handshakes);
            tracing::debug!(%from, "bridge handshake timed out");
            return;
        }
    };
    let udp = match UdpSocket::bind(SocketAddr::new(shared.host_peer.ip(), 0)).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(%from, error = %e, "bridge: cannot bind a UDP socket for a tab");
            let _ = tokio::time::timeout(limits.write_stall, ws.close(None)).await;
            return;
        }
    };
    let Ok(addr) = udp.local_addr() else { return };
    let hello = serde_json::json!({
        "type": "hello",
        "addr": addr.to_string(),
        "peer": shared.host_peer.to_string(),
        "protocol": shared.protocol,
    });
    let greeted = ws.send(Message::text(hello.to_string()));
    if !matches!(
        tokio::time::timeout(limits.write_stall, greeted).await,
        Ok(Ok(()))
    ) {
        return;
    }
    add(&c.tabs);
    c.open.fetch_add(1, Relaxed);
    let _open = OpenTab(&c.open);
    tracing::info!(%from, %addr, "bridge: tab connected");
    relay(&mut ws, &udp, &shared).await;
    tracing::info!(%from, %addr, "bridge: tab gone");
}

/// The handshake's callback: refuses (403) a page whose `Origin` is not a loopback host.
#[allow(
    clippy::result_large_err,
    reason = "the signature is tungstenite's `Callback`"
)]
fn check_origin(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    let origin = request
        .headers()
        .get("origin")
        .map(|o| o.to_str().unwrap_or(""));
    if origin.is_none_or(origin_is_loopback) {
        return Ok(response);
    }
    let mut refusal = ErrorResponse::new(Some(
        "pages from other hosts may not use this bridge".into(),
    ));
    *refusal.status_mut() = StatusCode::FORBIDDEN;
    Err(refusal)
}

/// Whether a page's origin (`http://127.0.0.1:8000`, `http://[::1]`, `http://localhost`)
/// names a loopback host.
fn origin_is_loopback(origin: &str) -> bool {
    let Some((_scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(ip, _)| ip),
        None => rest.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Moves datagrams between the tab's WebSocket and its UDP socket until the WebSocket
/// closes or stalls. Both waits are cancel-safe, so one `select!` does both directions.
async fn relay(ws: &mut WebSocketStream<TcpStream>, udp: &UdpSocket, shared: &Shared) {
    let c = &shared.counters;
    let limits = shared.limits;
    let mut datagram = vec![0u8; MAX_UDP];
    let mut frame = vec![0u8; MAX_FRAME];
    let mut heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval_at(heard + limits.ping_interval, limits.ping_interval);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if heard.elapsed() >= limits.idle_timeout {
                    tracing::debug!("bridge: tab idle, closed");
                    return;
                }
                let ping = ws.send(Message::Ping(Default::default()));
                if !matches!(tokio::time::timeout(limits.write_stall, ping).await, Ok(Ok(()))) {
                    return;
                }
            }
            // Anything from the tab, its pongs included, shows it is there.
            msg = ws.next() => match msg.inspect(|m| if m.is_ok() { heard = tokio::time::Instant::now() }) {
                Some(Ok(Message::Binary(bytes))) => match bridge::decode(&bytes) {
                    Ok((to, payload)) => match udp.send_to(payload, to.socket_addr()).await {
                        Ok(_) => add(&c.sent),
                        Err(e) => {
                            add(&c.udp_errors);
                            tracing::debug!(%to, error = %e, "bridge: udp send");
                        }
                    },
                    Err(_) => add(&c.dropped),
                },
                Some(Ok(Message::Text(_))) => add(&c.dropped),
                // Pings are answered, and a close is acknowledged, by the next read.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "bridge: websocket");
                    return;
                }
                None => return,
            },
            r = udp.recv_from(&mut datagram) => match r {
                Ok((n, from)) => {
                    let Ok(len) = bridge::encode(PeerAddr::from(from), &datagram[..n], &mut frame) else {
                        add(&c.dropped);
                        continue;
                    };
                    let send = ws.send(Message::binary(frame[..len].to_vec()));
                    match tokio::time::timeout(shared.limits.write_stall, send).await {
                        Ok(Ok(())) => add(&c.delivered),
                        _ => return,
                    }
                }
                Err(e) => {
                    add(&c.udp_errors);
                    tracing::debug!(error = %e, "bridge: udp receive");
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::origin_is_loopback;

    #[test]
    fn only_pages_from_loopback_hosts_may_use_the_bridge() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://127.9.9.9",
            "http://[::1]:80",
            "http://localhost:5173",
            "https://LOCALHOST",
        ] {
            assert!(origin_is_loopback(ok), "{ok}");
        }
        for bad in [
            "https://example.com",
            "http://127.0.0.1.evil.example",
            "null",
            "http://[::2]:80",
            "http://10.0.0.1",
            "",
        ] {
            assert!(!origin_is_loopback(bad), "{bad}");
        }
    }
}
