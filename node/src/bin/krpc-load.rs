//! `krpc-load`: a KRPC load generator for benchmarking DHT nodes (ours, libtorrent's):
//! how many queries per second one node answers.
//!
//! ```text
//! krpc-load --target 127.0.0.1:7000 [--query ping|find_node] [--seconds 5]
//!           [--sockets 64] [--window 8]
//! ```
//!
//! One thread, `--sockets` non-blocking UDP sockets (distinct source ports), each keeping
//! `--window` queries outstanding; a socket that got no reply for 200 ms is assumed to have
//! lost its queries and sends again. Queries carry `ro=1` (BEP 43) so that the node does not
//! add the generator's ports to its table. Prints one JSON line.
//! Loopback only: run it inside the benchmark's network namespace.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use overlay_core::Id;
use overlay_core::dht::wire::{self, OutQuery};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Flow {
    socket: UdpSocket,
    outstanding: usize,
    last_reply: Instant,
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let target: SocketAddr = arg(&args, "--target", SocketAddr::from(([127, 0, 0, 1], 7000)));
    let query: String = arg(&args, "--query", "ping".to_string());
    let seconds: f64 = arg(&args, "--seconds", 5.0);
    let (sockets, window): (usize, usize) =
        (arg(&args, "--sockets", 64), arg(&args, "--window", 8));
    let q = match query.as_str() {
        "find_node" => OutQuery::FindNode(Id([0x5a; 20])),
        _ => OutQuery::Ping,
    };
    let me = Id([0x42; 20]);
    let mut flows = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        socket.connect(target)?;
        flows.push(Flow {
            socket,
            outstanding: 0,
            last_reply: Instant::now(),
        });
    }
    let (mut sent, mut replies, mut tid) = (0u64, 0u64, 0u16);
    let (mut out, mut buf) = ([0u8; 256], [0u8; 2048]);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        for f in &mut flows {
            if f.outstanding > 0 && f.last_reply.elapsed() > Duration::from_millis(200) {
                f.outstanding = 0;
                f.last_reply = Instant::now();
            }
            while f.outstanding < window {
                tid = tid.wrapping_add(1);
                let Ok(n) = wire::write_query(&mut out, &tid.to_be_bytes(), me, true, &q) else {
                    break;
                };
                if f.socket.send(&out[..n]).is_err() {
                    break;
                }
                f.outstanding += 1;
                sent += 1;
            }
            while let Ok(n) = f.socket.recv(&mut buf) {
                if wire::decode(&buf[..n]).is_ok() {
                    replies += 1;
                    f.outstanding = f.outstanding.saturating_sub(1);
                    f.last_reply = Instant::now();
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"target\": \"{target}\", \"query\": \"{query}\", \"seconds\": {secs:.2}, \"sent\": {sent}, \"replies\": {replies}, \"replies_per_s\": {:.0}}}",
        replies as f64 / secs
    );
    Ok(())
}
