//! The WebSocket bridge (`--ws`): a WebSocket client stands in for a browser tab, reads the
//! hello, and exchanges real Chord and KRPC datagrams with the hosting peer through it.
//! Loopback only; every wait is bounded.

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use overlay_core::Id;
use overlay_core::PeerAddr;
use overlay_core::bridge::{self, MAX_HEADER};
use overlay_core::chord::wire::{self, Body, Envelope, VERSION};
use overlay_core::dht::Config;
use overlay_node::bridge::{Bridge, BridgeStats, Limits, MAX_FRAME};
use overlay_node::dht::DhtPeer;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod common;

const OVERLAY: &str = env!("CARGO_BIN_EXE_overlay");
/// The bound on every wait.
const WAIT: Duration = Duration::from_secs(10);

type Tab = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A KRPC `ping` query (BEP 5), transaction id "aa".
const KRPC_PING: &[u8] = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";

/// A DHT node on loopback with a bridge beside it, in this process.
async fn dht_with_bridge(limits: Limits) -> (DhtPeer, Bridge) {
    let config = Config {
        restrict_ips: false,
        ..Config::default()
    };
    let node = DhtPeer::bind("127.0.0.1:0".parse().unwrap(), config, 7)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bridge = Bridge::spawn(listener, node.addr(), "dht", limits).unwrap();
    (node, bridge)
}

/// Connects a tab; it and its hello.
async fn connect(ws: SocketAddr) -> (Tab, Value) {
    let (mut tab, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(format!("ws://{ws}")))
            .await
            .expect("the handshake within the limit")
            .expect("the handshake");
    let hello = match next(&mut tab).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected the hello, got {other:?}"),
    };
    (tab, hello)
}

/// The next message from the bridge, past its pings (which reading answers).
async fn next(tab: &mut Tab) -> Message {
    loop {
        let message = tokio::time::timeout(WAIT, tab.next())
            .await
            .expect("a message within the limit")
            .expect("the WebSocket is open")
            .expect("a valid message");
        if !matches!(message, Message::Ping(_)) {
            return message;
        }
    }
}

/// The next datagram frame: its source and payload.
async fn next_frame(tab: &mut Tab) -> (SocketAddr, Vec<u8>) {
    match next(tab).await {
        Message::Binary(frame) => {
            let (from, payload) = bridge::decode(&frame).expect("a well-formed frame");
            (from.socket_addr(), payload.to_vec())
        }
        other => panic!("expected a frame, got {other:?}"),
    }
}

async fn send_frame(tab: &mut Tab, to: SocketAddr, payload: &[u8]) {
    let mut frame = vec![0u8; MAX_HEADER + payload.len()];
    let n = bridge::encode(PeerAddr::from(to), payload, &mut frame).unwrap();
    frame.truncate(n);
    tab.send(Message::binary(frame)).await.unwrap();
}

/// Waits (bounded) until the bridge's counters satisfy `ok`: they are bumped after the
/// datagram they count has left, so a test can see its effect first.
async fn settled(bridge: &Bridge, ok: impl Fn(BridgeStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok(bridge.stats()) {
        assert!(Instant::now() < deadline, "counters: {:?}", bridge.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn addr(v: &Value) -> SocketAddr {
    v.as_str().expect("an address string").parse().unwrap()
}

/// Sends a KRPC ping to `host` through the tab and checks that the answer comes back framed,
/// from `host`. (The host may also query the tab, a node it has just heard of: skipped.)
async fn krpc_ping_is_answered(tab: &mut Tab, host: SocketAddr) {
    send_frame(tab, host, KRPC_PING).await;
    loop {
        let (from, datagram) = next_frame(tab).await;
        assert_eq!(from, host, "the datagram's source is the host peer");
        if contains(&datagram, b"1:y1:q") {
            continue;
        }
        let text = String::from_utf8_lossy(&datagram);
        assert!(contains(&datagram, b"1:y1:r"), "a KRPC response: {text}");
        assert!(
            contains(&datagram, b"1:t2:aa"),
            "to our transaction: {text}"
        );
        return;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_gets_a_hello_and_its_krpc_ping_is_answered_by_the_host_peer() {
    let (node, bridge) = dht_with_bridge(Limits::default()).await;
    let (mut tab, hello) = connect(bridge.addr()).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["protocol"], "dht");
    assert_eq!(addr(&hello["peer"]), node.addr());
    let tab_addr = addr(&hello["addr"]);
    assert_eq!(
        tab_addr.ip(),
        node.addr().ip(),
        "the tab's UDP socket is on the peer's IP"
    );
    assert_ne!(tab_addr, node.addr());
    krpc_ping_is_answered(&mut tab, node.addr()).await;
    settled(&bridge, |s| {
        (s.tabs, s.open, s.sent) == (1, 1, 1) && s.delivered >= 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_and_text_are_dropped_and_counted_and_the_tab_keeps_working() {
    let (node, bridge) = dht_with_bridge(Limits::default()).await;
    let (mut tab, _) = connect(bridge.addr()).await;
    let bad: [&[u8]; 4] = [b"", &[5, 127, 0, 0, 1, 0], &[6, 127, 0, 0, 1], &[18; 10]];
    for frame in bad {
        tab.send(Message::binary(frame.to_vec())).await.unwrap();
    }
    tab.send(Message::text("not a frame")).await.unwrap();
    krpc_ping_is_answered(&mut tab, node.addr()).await;
    settled(&bridge, |s| (s.dropped, s.open, s.sent) == (5, 1, 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_to_the_tabs_address_arrive_framed_with_their_source_and_back() {
    let (_node, bridge) = dht_with_bridge(Limits::default()).await;
    let (mut tab, hello) = connect(bridge.addr()).await;
    let tab_addr = addr(&hello["addr"]);
    let plain = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    plain.send_to(b"to the tab", tab_addr).await.unwrap();
    let (from, payload) = next_frame(&mut tab).await;
    assert_eq!(from, plain.local_addr().unwrap());
    assert_eq!(payload, b"to the tab");
    // The other way: the tab's datagram leaves from its own UDP socket. An empty one too.
    for payload in [&b"from the tab"[..], b""] {
        send_frame(&mut tab, plain.local_addr().unwrap(), payload).await;
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(WAIT, plain.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((from, &buf[..n]), (tab_addr, payload));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_pings_are_answered() {
    let (_node, bridge) = dht_with_bridge(Limits::default()).await;
    let (mut tab, _) = connect(bridge.addr()).await;
    tab.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut tab).await,
        Message::Pong(b"are you there".to_vec().into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_websocket_closes_the_tabs_udp_socket() {
    let (_node, bridge) = dht_with_bridge(Limits::default()).await;
    let (mut tab, hello) = connect(bridge.addr()).await;
    let tab_addr = addr(&hello["addr"]);
    tab.close(None).await.unwrap();
    while let Ok(Some(_)) = tokio::time::timeout(WAIT, tab.next()).await {}
    // The port is free again once the bridge dropped the socket.
    let deadline = Instant::now() + WAIT;
    while UdpSocket::bind(tab_addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{tab_addr} still bound after the close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    settled(&bridge, |s| s.open == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_beyond_the_cap_are_refused_until_one_leaves() {
    let limits = Limits {
        max_tabs: 1,
        ..Limits::default()
    };
    let (node, bridge) = dht_with_bridge(limits).await;
    let url = format!("ws://{}", bridge.addr());
    let (mut first, _) = connect(bridge.addr()).await;
    let second = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url)).await;
    assert!(matches!(second, Ok(Err(_))), "a second tab is refused");
    settled(&bridge, |s| s.refused == 1).await;
    krpc_ping_is_answered(&mut first, node.addr()).await;
    first.close(None).await.unwrap();
    while let Ok(Some(_)) = tokio::time::timeout(WAIT, first.next()).await {}
    // Its slot is free once its task ended.
    let deadline = Instant::now() + WAIT;
    let mut third = loop {
        if let Ok(Ok((mut tab, _))) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url)).await
            && let Message::Text(_) = next(&mut tab).await
        {
            break tab;
        }
        assert!(
            Instant::now() < deadline,
            "no slot freed after the first tab left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    krpc_ping_is_answered(&mut third, node.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_datagram_crosses_and_an_oversized_message_closes_only_its_tab() {
    let (node, bridge) = dht_with_bridge(Limits::default()).await;
    let (mut good, _) = connect(bridge.addr()).await;
    let (mut bad, _) = connect(bridge.addr()).await;
    // The largest IPv4 UDP payload, through the bridge and back.
    let plain = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let big = vec![0x5a; 65_507];
    send_frame(&mut good, plain.local_addr().unwrap(), &big).await;
    let mut buf = vec![0u8; 65_535];
    let (n, from) = tokio::time::timeout(WAIT, plain.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, big.len());
    plain.send_to(&buf[..n], from).await.unwrap();
    assert_eq!(next_frame(&mut good).await.1, big);
    // One byte over the frame limit: that tab is closed.
    // (The send itself may fail: the bridge closes as soon as it reads the length.)
    let _ = bad.send(Message::binary(vec![6; MAX_FRAME + 1])).await;
    loop {
        match tokio::time::timeout(WAIT, bad.next())
            .await
            .expect("closed within the limit")
        {
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => {}
        }
    }
    krpc_ping_is_answered(&mut good, node.addr()).await;
}

// ----- The `overlay` command -----

/// A running `overlay --json ...`, killed when dropped.
struct Process {
    child: Child,
    events: Receiver<Value>,
}

impl Process {
    fn spawn(args: &[&str]) -> Process {
        let (child, events) =
            common::spawn_json_lines(Command::new(OVERLAY).arg("--json").args(args));
        Process { child, events }
    }

    /// Waits (bounded) for the next event called `name`.
    fn wait_for(&self, name: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        tokio::task::block_in_place(|| {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let v = self
                    .events
                    .recv_timeout(left)
                    .unwrap_or_else(|_| panic!("no {name:?} event within {WAIT:?}"));
                if v["event"] == name {
                    return v;
                }
            }
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chord_join_with_ws_bridges_a_tab_whose_chord_ping_gets_a_pong() {
    let p = Process::spawn(&[
        "chord",
        "join",
        "--bind",
        "127.0.0.1:0",
        "--ws",
        "127.0.0.1:0",
    ]);
    let host = addr(&p.wait_for("listening")["addr"]);
    let ws = addr(&p.wait_for("bridge")["ws"]);
    let (mut tab, hello) = connect(ws).await;
    assert_eq!(hello["protocol"], "chord");
    assert_eq!(addr(&hello["peer"]), host);
    let ping = Envelope {
        version: VERSION,
        sender: Id::sha256(hello["addr"].as_str().unwrap().as_bytes()),
        body: Body::Ping { rid: 42 },
    };
    let mut buf = [0u8; 128];
    send_frame(&mut tab, host, wire::encode(&ping, &mut buf).unwrap()).await;
    let (from, reply) = next_frame(&mut tab).await;
    assert_eq!(from, host);
    let reply = wire::decode(&reply).expect("a Chord datagram");
    assert!(
        matches!(reply.body, Body::Pong { rid: 42 }),
        "{:?}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_start_with_ws_bridges_a_tab_whose_krpc_ping_is_answered() {
    let p = Process::spawn(&[
        "dht",
        "start",
        "--bind",
        "127.0.0.1:0",
        "--ws",
        "127.0.0.1:0",
    ]);
    let host = addr(&p.wait_for("listening")["addr"]);
    let ws = addr(&p.wait_for("bridge")["ws"]);
    let (mut tab, hello) = connect(ws).await;
    assert_eq!(hello["protocol"], "dht");
    assert_eq!(addr(&hello["peer"]), host);
    krpc_ping_is_answered(&mut tab, host).await;
}

#[tokio::test]
async fn pages_from_other_hosts_are_refused_and_loopback_pages_are_served() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (_node, bridge) = dht_with_bridge(Limits::default()).await;
    let with_origin = |origin: &str| {
        let mut request = format!("ws://{}", bridge.addr())
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    let refused = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(with_origin("https://example.com")),
    )
    .await
    .expect("an answer within the limit");
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    let (mut tab, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(with_origin("http://127.0.0.1:8000")),
    )
    .await
    .expect("the handshake within the limit")
    .expect("a loopback page is served");
    assert!(
        matches!(next(&mut tab).await, Message::Text(_)),
        "the hello"
    );
}

#[test]
fn a_bridge_off_loopback_is_refused_as_bad_usage() {
    let out = Command::new(OVERLAY)
        .args([
            "chord",
            "join",
            "--bind",
            "127.0.0.1:0",
            "--ws",
            "0.0.0.0:0",
        ])
        .output()
        .expect("overlay runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tab_is_closed_and_one_that_answers_pings_stays() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(400),
        ping_interval: Duration::from_millis(100),
        ..Limits::default()
    };
    let (node, bridge) = dht_with_bridge(limits).await;
    // A tab that reads answers the bridge's pings (RFC 6455 section 5.5.2: a pong for a
    // ping), as a browser does; one that never reads never does.
    let (silent, _) = connect(bridge.addr()).await;
    let (mut live, _) = connect(bridge.addr()).await;
    let reader = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_millis(1500);
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(until, live.next()).await {}
        live
    });
    settled(&bridge, |s| s.open == 1).await;
    let mut live = reader.await.unwrap();
    assert_eq!(bridge.stats().open, 1, "the tab that answers stays open");
    krpc_ping_is_answered(&mut live, node.addr()).await;
    drop(silent);
}
