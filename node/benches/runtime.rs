//! The host runtime's overhead, measured side by side with the same exchange on bare tokio
//! sockets: two peers on loopback bounce one 64-byte datagram back and forth (a round trip
//! is two datagrams, each crossing the kernel once). Runs alternate, twice each.
//!
//! `cargo bench -p overlay-node --bench runtime [-- ROUND_TRIPS]`

use std::net::SocketAddr;
use std::time::{Duration as StdDuration, Instant as Wall};

use overlay_core::machine::{Dest, Input, Machine, Output};
use overlay_core::{Instant, PeerAddr};
use overlay_node::runtime::{Control, Host, Peer, Sockets};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const PAYLOAD: usize = 64;

/// Answers every datagram with one of its own until `left` reaches zero; the serving side
/// never stops, the starting side reports `Done` on its last answer.
struct Bouncer {
    left: u64,
    reply: Option<PeerAddr>,
    serve: bool,
    done: bool,
    tx: [u8; PAYLOAD],
}

struct Done;

impl Machine for Bouncer {
    type Event<'a> = Done;

    fn handle_input(&mut self, _now: Instant, input: Input<'_>) {
        if let Input::Datagram { from, .. } = input {
            if self.serve || self.left > 1 {
                self.left -= u64::from(!self.serve);
                self.reply = Some(from);
            } else {
                self.done = true;
            }
        }
    }

    fn poll_output(&mut self, _now: Instant) -> Output<'_, Done> {
        if let Some(to) = self.reply.take() {
            return Output::Transmit {
                to: Dest::Addr(to),
                payload: &self.tx,
            };
        }
        if std::mem::take(&mut self.done) {
            return Output::Event(Done);
        }
        Output::Wait(None)
    }
}

struct Finish(Option<oneshot::Sender<()>>);

impl Host<Bouncer> for Finish {
    fn on_event(&mut self, _now: Instant, _: Done) -> Control {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
        Control::Stop
    }
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn bouncer(serve: bool, left: u64, first: Option<PeerAddr>) -> Box<Bouncer> {
    Box::new(Bouncer {
        left,
        reply: first,
        serve,
        done: false,
        tx: [7; PAYLOAD],
    })
}

/// Round trips per second through two runtime peers.
async fn through_runtime(round_trips: u64) -> f64 {
    let server_sockets = Sockets::udp(local()).await.unwrap();
    let server_addr = PeerAddr::from(server_sockets.local_addr().unwrap());
    let (never, _keep) = oneshot::channel();
    let _server = Peer::spawn(bouncer(true, 0, None), Finish(Some(never)), server_sockets).unwrap();
    let (tx, rx) = oneshot::channel();
    let started = Wall::now();
    let client = Peer::spawn(
        bouncer(false, round_trips, Some(server_addr)),
        Finish(Some(tx)),
        Sockets::udp(local()).await.unwrap(),
    )
    .unwrap();
    rx.await.unwrap();
    let rate = round_trips as f64 / started.elapsed().as_secs_f64();
    drop(client);
    rate
}

/// Round trips per second between two bare tokio sockets, each task doing what the
/// runtime's would: receive into a buffer, send a reply.
async fn bare_tokio(round_trips: u64) -> f64 {
    let server = UdpSocket::bind(local()).await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let reply = [7u8; PAYLOAD];
        loop {
            let (_, from) = server.recv_from(&mut buf).await.unwrap();
            server.send_to(&reply, from).await.unwrap();
        }
    });
    let client = UdpSocket::bind(local()).await.unwrap();
    let started = Wall::now();
    // A task, as the runtime's peers are (not the thread blocked on the runtime).
    let rate = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let payload = [7u8; PAYLOAD];
        for _ in 0..round_trips {
            client.send_to(&payload, server_addr).await.unwrap();
            client.recv_from(&mut buf).await.unwrap();
        }
        round_trips as f64 / started.elapsed().as_secs_f64()
    })
    .await
    .unwrap();
    echo.abort();
    rate
}

fn main() {
    let round_trips: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("UDP ping-pong on loopback, {round_trips} round trips of {PAYLOAD} bytes per run");
    let (mut bare, mut runtime) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        bare.push(rt.block_on(bare_tokio(round_trips)));
        runtime.push(rt.block_on(through_runtime(round_trips)));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let show = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  bare tokio sockets: {} round trips/s", show(&bare));
    println!("  overlay runtime:    {} round trips/s", show(&runtime));
    println!("  runtime / bare: {:.2}", mean(&runtime) / mean(&bare));
    rt.shutdown_timeout(StdDuration::from_secs(1));
}
