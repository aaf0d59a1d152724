//! `overlay chord ...`: a long-running peer (`join`) and short-lived client peers (`put`,
//! `get`, `lookup`) that route through a member without joining.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Subcommand};
use overlay_core::Id;
use overlay_core::chord::config::MAX_VALUE;
use overlay_core::chord::{CommandError, Config, Failure, NodeRef};
use overlay_node::chord::{ChordError, ChordPeer};
use serde_json::{Value, json};

use super::output::{CliError, Exit, Printer, bind_error};

#[derive(Subcommand, Debug)]
pub enum ChordCmd {
    /// Run a peer: start a ring, or join one through --bootstrap; Ctrl-C leaves gracefully
    /// and hands this peer's keys to its successor.
    Join(JoinArgs),
    /// Store VALUE under KEY through the member at --via.
    Put {
        key: String,
        value: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the value under KEY, asked through the member at --via.
    Get {
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the node that owns KEY (its successor) and the lookup's path length.
    Lookup {
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Args, Debug)]
pub struct JoinArgs {
    /// The address to listen on: the one other peers reach this peer at (its id is derived
    /// from it). Port 0 picks a free port.
    #[arg(long)]
    bind: SocketAddr,
    /// A member of the ring to join; without it, this peer starts a new ring.
    #[arg(long)]
    bootstrap: Option<SocketAddr>,
    #[command(flatten)]
    maintenance: Maintenance,
    /// Seed of the peer's random choices (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Also serve browser tabs on this WebSocket address (e.g. 127.0.0.1:8080): each gets a
    /// UDP socket of its own and becomes a peer. Plain ws://, no TLS: keep it on loopback.
    #[arg(long, value_name = "ADDR")]
    ws: Option<SocketAddr>,
}

/// Timing of the ring's maintenance.
#[derive(Args, Debug, Clone, Copy)]
pub struct Maintenance {
    /// Milliseconds between stabilize rounds (also finger fixing and predecessor checks).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub stabilize_ms: u64,
    /// Successor-list length r: the ring survives r - 1 consecutive failures.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub successors: u8,
}

impl Maintenance {
    pub fn config(&self) -> Config {
        let every = overlay_core::Duration::from_millis(self.stabilize_ms);
        Config {
            stabilize_interval: every,
            fix_fingers_interval: every,
            check_predecessor_interval: every,
            successors: self.successors as usize,
            ..Config::default()
        }
    }
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// A member of the ring to ask.
    #[arg(long)]
    via: SocketAddr,
    /// Local address of this short-lived client (default: any, on a free port).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

pub async fn run(cmd: ChordCmd, out: Printer) -> Result<(), CliError> {
    match cmd {
        ChordCmd::Join(args) => join(args, out).await,
        ChordCmd::Put { key, value, client } => {
            let peer = start_client(&client).await?;
            let (owner, hops) = within(&client, peer.put(key.as_bytes(), value.as_bytes())).await?;
            out.emit(
                format!(
                    "stored {key:?} at {} (id {}), {}",
                    owner.addr,
                    owner.id,
                    path(hops)
                ),
                json!({"event": "stored", "key": key, "owner": node_json(owner), "hops": hops}),
            );
            Ok(())
        }
        ChordCmd::Get { key, client } => {
            let peer = start_client(&client).await?;
            match within(&client, peer.get(key.as_bytes())).await? {
                (Some(value), hops) => {
                    let text = String::from_utf8_lossy(&value);
                    out.emit(
                        &text,
                        json!({"event": "got", "key": key, "value": text, "hops": hops}),
                    );
                    Ok(())
                }
                (None, _) => Err(
                    CliError::new(Exit::NotFound, format!("no value under {key:?}"))
                        .hint("store one with `overlay chord put KEY VALUE --via ADDR`"),
                ),
            }
        }
        ChordCmd::Lookup { key, client } => {
            let peer = start_client(&client).await?;
            let id = Id::sha256(key.as_bytes());
            let (owner, hops) = within(&client, peer.lookup(id)).await?;
            out.emit(
                format!("{key:?} (id {id}) is owned by {} (id {}), {}", owner.addr, owner.id, path(hops)),
                json!({"event": "owner", "key": key, "id": format!("{id:x}"), "owner": node_json(owner), "hops": hops}),
            );
            Ok(())
        }
    }
}

async fn join(args: JoinArgs, out: Printer) -> Result<(), CliError> {
    if args.bind.ip().is_unspecified() {
        return Err(CliError::new(Exit::Usage, format!("cannot serve on {}", args.bind)).hint(
            "a peer's id comes from its address: bind the address other peers reach it at, e.g. 127.0.0.1:7000",
        ));
    }
    // Watched from the start, so that no Ctrl-C is missed between two waits.
    let mut stop = Shutdown::watch()?;
    let seed = args.seed.unwrap_or_else(random_seed);
    let peer = ChordPeer::bind(args.bind, args.maintenance.config(), seed)
        .await
        .map_err(|e| bind_error(args.bind, e))?;
    let ws = super::bind_ws(args.ws, args.bind).await?;
    out.emit(
        format!("listening on {} as {}", peer.addr(), peer.id()),
        json!({"event": "listening", "addr": peer.addr().to_string(), "id": format!("{:x}", peer.id())}),
    );
    match args.bootstrap {
        None => {
            peer.create().await.map_err(internal)?;
            out.emit(
                format!(
                    "started a new ring; others join with `overlay chord join --bind ADDR --bootstrap {}`",
                    peer.addr()
                ),
                json!({"event": "created"}),
            );
        }
        Some(bootstrap) => {
            let joined = tokio::select! {
                joined = peer.join(bootstrap) => joined,
                () = stop.requested() => {
                    out.emit("stopped before joining", json!({"event": "stopped"}));
                    return Ok(());
                }
            };
            let successor = joined.map_err(|e| match e {
                ChordError::Failed(Failure::Unreachable) => {
                    CliError::new(Exit::Unreachable, format!("bootstrap {bootstrap} did not answer"))
                        .hint("is a peer running there? Start the first peer without --bootstrap, or check the address and firewall")
                }
                e => internal(e),
            })?;
            out.emit(
                format!(
                    "joined the ring through {bootstrap}; successor {} (id {})",
                    successor.addr, successor.id
                ),
                json!({"event": "joined", "successor": node_json(successor)}),
            );
        }
    }
    // Tabs get the peer as their bootstrap: it is a member now.
    let bridge = super::start_bridge(ws, peer.addr(), "chord", out)?;
    serve(&peer, &mut stop, out).await?;
    // Tabs depend on this peer's UDP: they go before it leaves.
    super::stop_bridge(bridge, out);
    let addr = peer.addr();
    let stats = peer.snapshot().await.map_err(internal)?.stats;
    match tokio::time::timeout(Duration::from_secs(5), peer.leave()).await {
        Ok(Ok(keys)) => {
            out.emit(
                format!(
                    "left the ring; handed {keys} keys to the successor. Datagrams before leaving: {} received, {} sent, {} malformed, {} of another version, {} unexpected, {} requests timed out",
                    stats.received, stats.sent, stats.malformed, stats.wrong_version, stats.unexpected, stats.timeouts
                ),
                json!({"event": "left", "handed_over": keys, "stats": {
                    "received": stats.received, "sent": stats.sent, "malformed": stats.malformed,
                    "wrong_version": stats.wrong_version, "unexpected": stats.unexpected,
                    "timeouts": stats.timeouts, "dropped": stats.dropped, "store_full": stats.store_full,
                }}),
            );
            Ok(())
        }
        Ok(Err(e)) => Err(internal(e)),
        Err(_) => Err(CliError::new(
            Exit::Internal,
            format!("{addr}: leaving took more than 5 s"),
        )),
    }
}

/// Ctrl-C and SIGTERM, registered once: a signal that arrives while nothing waits on it is
/// kept for the next wait, not lost.
pub struct Shutdown {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub fn watch() -> Result<Self, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind| {
            signal(kind)
                .map_err(|e| CliError::new(Exit::Internal, format!("cannot watch signals: {e}")))
        };
        Ok(Shutdown {
            interrupt: watch(SignalKind::interrupt())?,
            terminate: watch(SignalKind::terminate())?,
        })
    }

    pub async fn requested(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, reporting the peer's neighbours whenever they change.
async fn serve(peer: &ChordPeer, stop: &mut Shutdown, out: Printer) -> Result<(), CliError> {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last = None;
    loop {
        tokio::select! {
            () = stop.requested() => return Ok(()),
            _ = tick.tick() => {
                let s = peer.snapshot().await.map_err(internal)?;
                let now = (s.predecessor, s.successors.first().copied());
                if last != Some(now) {
                    last = Some(now);
                    let show = |n: Option<NodeRef>| n.map_or("none".to_string(), |n| n.addr.to_string());
                    out.emit(
                        format!("predecessor {}, successor {}, {} keys", show(now.0), show(now.1), s.keys),
                        json!({
                            "event": "neighbours",
                            "predecessor": now.0.map(node_json),
                            "successor": now.1.map(node_json),
                            "keys": s.keys,
                        }),
                    );
                }
            }
        }
    }
}

async fn start_client(args: &ClientArgs) -> Result<ChordPeer, CliError> {
    let bind = super::client_bind(args.via, args.bind);
    let peer = ChordPeer::bind(bind, Config::default(), random_seed())
        .await
        .map_err(|e| bind_error(bind, e))?;
    peer.client(args.via).await.map_err(internal)?;
    Ok(peer)
}

/// Runs a client command under the `--timeout-ms` limit, explaining failures.
async fn within<T>(
    args: &ClientArgs,
    work: impl Future<Output = Result<T, ChordError>>,
) -> Result<T, CliError> {
    let hint = format!(
        "is a peer running at {}? Start one with `overlay chord join --bind {}`",
        args.via, args.via
    );
    match tokio::time::timeout(Duration::from_millis(args.timeout_ms), work).await {
        Err(_) => Err(CliError::new(
            Exit::Unreachable,
            format!(
                "no result through {} within {} ms",
                args.via, args.timeout_ms
            ),
        )
        .hint(hint)),
        Ok(Err(ChordError::Failed(Failure::Unreachable))) => Err(CliError::new(
            Exit::Unreachable,
            format!(
                "no answer through {}: neither it nor the key's owner and replicas replied",
                args.via
            ),
        )
        .hint(hint)),
        // The machine refuses it before anything is sent.
        Ok(Err(ChordError::Refused(CommandError::ValueTooLarge))) => Err(CliError::new(
            Exit::Refused,
            format!("the value is too large: Chord values hold at most {MAX_VALUE} bytes"),
        )),
        Ok(Err(ChordError::Failed(Failure::StoreFull))) => Err(CliError::new(
            Exit::Refused,
            "the key's owner has no room left",
        )
        .hint("the ring needs more peers, or larger stores")),
        Ok(Err(e)) => Err(internal(e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// "1 node asked", "3 nodes asked": a lookup's path length.
fn path(hops: u8) -> String {
    format!("{hops} node{} asked", if hops == 1 { "" } else { "s" })
}

pub fn node_json(n: NodeRef) -> Value {
    json!({"addr": n.addr.to_string(), "id": format!("{:x}", n.id)})
}

pub fn internal(e: impl std::fmt::Display) -> CliError {
    CliError::new(Exit::Internal, e)
}

/// A seed from the OS's per-process hash keys: different every run, no extra dependency.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
