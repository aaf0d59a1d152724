//! `overlay dht ...`: a long-running Mainline DHT node (`start`) and short-lived read-only
//! nodes (BEP 43) that bootstrap through a known node, do one thing and exit.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Subcommand};
use overlay_core::Id;
use overlay_core::dht::config::MAX_ITEM;
use overlay_core::dht::{CommandError, Config, Failure, LookupStats, string_item};
use overlay_node::dht::{DhtError, DhtPeer};
use serde_json::json;

use super::chord::{Shutdown, internal, random_seed};
use super::output::{CliError, Exit, Printer, bind_error};

#[derive(Subcommand, Debug)]
pub enum DhtCmd {
    /// Run a DHT node; with --bootstrap it joins the DHT those nodes belong to.
    Start(StartArgs),
    /// Print the peers of a torrent (40 hex digits), found through the DHT.
    GetPeers {
        info_hash: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Announce that a peer serves a torrent on --port (BEP 5 announce_peer).
    Announce {
        info_hash: String,
        /// The TCP port the torrent's peer listens on.
        #[arg(long)]
        port: u16,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Store VALUE as a BEP 44 immutable item; prints its key (SHA-1 of the bencoded value).
    Put {
        value: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the BEP 44 immutable item stored under KEY (40 hex digits).
    Get {
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The UDP address to listen on. Port 0 picks a free port.
    #[arg(long)]
    bind: SocketAddr,
    /// Nodes of the DHT to join (repeat for several).
    #[arg(long)]
    bootstrap: Vec<SocketAddr>,
    /// K, the bucket size (BEP 5: 8).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=16))]
    k: u8,
    /// Seed of the node's random choices and id (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Also serve browser tabs on this WebSocket address (e.g. 127.0.0.1:8080): each gets a
    /// UDP socket of its own and becomes a node. Plain ws://, no TLS: keep it on loopback.
    #[arg(long, value_name = "ADDR")]
    ws: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// A node of the DHT to bootstrap through.
    #[arg(long)]
    via: SocketAddr,
    /// Local address of this short-lived node (default: any, on a free port).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 20_000)]
    timeout_ms: u64,
}

/// The settings for a node bound at `bind`. On loopback every node is 127.0.0.1, so BEP 5's
/// one-node-per-IP rule (right on the Internet) would keep one node per bucket.
pub fn config_for(bind: SocketAddr) -> Config {
    Config {
        restrict_ips: !bind.ip().is_loopback(),
        ..Config::default()
    }
}

pub async fn run(cmd: DhtCmd, out: Printer) -> Result<(), CliError> {
    match cmd {
        DhtCmd::Start(args) => start(args, out).await,
        DhtCmd::GetPeers { info_hash, client } => {
            let info_hash = hex_id(&info_hash)?;
            let node = start_client(&client).await?;
            let (peers, stats) = within(&client, node.get_peers(info_hash)).await?;
            if peers.is_empty() {
                return Err(CliError::new(
                    Exit::NotFound,
                    format!("no peers of {info_hash:x} ({})", asked(stats)),
                )
                .hint("announce one with `overlay dht announce INFOHASH --port P --via ADDR`"));
            }
            let list: Vec<String> = peers.iter().map(ToString::to_string).collect();
            out.emit(
                format!("{} ({})", list.join(" "), asked(stats)),
                json!({"event": "peers", "info_hash": format!("{info_hash:x}"), "peers": list, "rounds": stats.rounds, "messages": stats.messages}),
            );
            Ok(())
        }
        DhtCmd::Announce {
            info_hash,
            port,
            client,
        } => {
            let info_hash = hex_id(&info_hash)?;
            let node = start_client(&client).await?;
            let (stored, stats) = within(&client, node.announce(info_hash, Some(port))).await?;
            out.emit(
                format!("announced {info_hash:x} port {port} to {stored} nodes ({})", asked(stats)),
                json!({"event": "announced", "info_hash": format!("{info_hash:x}"), "port": port, "stored": stored}),
            );
            Ok(())
        }
        DhtCmd::Put { value, client } => {
            let mut buf = [0; MAX_ITEM];
            // Refused before anything is sent.
            let item = string_item(value.as_bytes(), &mut buf).map_err(|_| too_large())?;
            let node = start_client(&client).await?;
            let (target, stored, stats) = within(&client, node.put(item)).await?;
            out.emit(
                format!("{target:x}\nstored on {stored} nodes ({})", asked(stats)),
                json!({"event": "stored", "key": format!("{target:x}"), "stored": stored}),
            );
            Ok(())
        }
        DhtCmd::Get { key, client } => {
            let target = hex_id(&key)?;
            let node = start_client(&client).await?;
            match within(&client, node.get(target)).await? {
                (Some(item), stats) => {
                    let text = match overlay_core::bencode::decode(&item)
                        .ok()
                        .and_then(|v| v.as_bytes())
                    {
                        Some(b) => String::from_utf8_lossy(b).into_owned(),
                        None => String::from_utf8_lossy(&item).into_owned(),
                    };
                    out.emit(
                        &text,
                        json!({"event": "item", "key": key, "value": text, "rounds": stats.rounds}),
                    );
                    Ok(())
                }
                (None, stats) => Err(CliError::new(
                    Exit::NotFound,
                    format!("no item under {key} ({})", asked(stats)),
                )
                .hint("store one with `overlay dht put VALUE --via ADDR`")),
            }
        }
    }
}

async fn start(args: StartArgs, out: Printer) -> Result<(), CliError> {
    let mut stop = Shutdown::watch()?;
    let config = Config {
        k: args.k as usize,
        ..config_for(args.bind)
    };
    let node = DhtPeer::bind(args.bind, config, args.seed.unwrap_or_else(random_seed))
        .await
        .map_err(|e| bind_error(args.bind, e))?;
    let ws = super::bind_ws(args.ws, args.bind).await?;
    out.emit(
        format!("listening on {} as {:x}", node.addr(), node.id()),
        json!({"event": "listening", "addr": node.addr().to_string(), "id": format!("{:x}", node.id())}),
    );
    if !args.bootstrap.is_empty() {
        let joined = tokio::select! {
            joined = node.bootstrap(&args.bootstrap) => joined,
            () = stop.requested() => return Ok(()),
        };
        let nodes = joined.map_err(|e| unreachable_via(&args.bootstrap, e))?;
        out.emit(
            format!("bootstrapped: {nodes} nodes in the routing table"),
            json!({"event": "bootstrapped", "nodes": nodes}),
        );
    } else {
        out.emit(
            format!(
                "the first node; others join with `overlay dht start --bind ADDR --bootstrap {}`",
                node.addr()
            ),
            json!({"event": "first"}),
        );
    }
    let bridge = super::start_bridge(ws, node.addr(), "dht", out)?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = None;
    loop {
        tokio::select! {
            () = stop.requested() => break,
            _ = tick.tick() => {
                let s = node.snapshot().await.map_err(internal)?;
                let now = (s.nodes.len(), s.buckets, s.peers, s.items);
                if last != Some(now) {
                    last = Some(now);
                    out.emit(
                        format!("{} nodes in {} buckets; storing {} peers and {} items", now.0, now.1, now.2, now.3),
                        json!({"event": "table", "nodes": now.0, "buckets": now.1, "peers": now.2, "items": now.3}),
                    );
                }
            }
        }
    }
    super::stop_bridge(bridge, out);
    let s = node.snapshot().await.map_err(internal)?.stats;
    out.emit(
        format!(
            "stopped. Datagrams: {} received, {} sent, {} malformed, {} unexpected; {} queries answered, {} requests timed out",
            s.received, s.sent, s.malformed, s.unexpected, s.answered, s.timeouts
        ),
        json!({"event": "stopped", "stats": {"received": s.received, "sent": s.sent, "malformed": s.malformed,
            "unexpected": s.unexpected, "answered": s.answered, "timeouts": s.timeouts, "bad_tokens": s.bad_tokens}}),
    );
    Ok(())
}

fn unreachable_via(via: &[SocketAddr], e: DhtError) -> CliError {
    match e {
        DhtError::Failed(Failure::Unreachable | Failure::NoNodes) => CliError::new(
            Exit::Unreachable,
            format!("no DHT node answered at {}", list(via)),
        )
        .hint("is a node running there? Start one with `overlay dht start --bind ADDR`"),
        e => internal(e),
    }
}

fn list(via: &[SocketAddr]) -> String {
    via.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A short-lived read-only node, bootstrapped through `--via`.
async fn start_client(args: &ClientArgs) -> Result<DhtPeer, CliError> {
    let bind = super::client_bind(args.via, args.bind);
    let config = Config {
        read_only: true,
        ..config_for(args.via)
    };
    let node = DhtPeer::bind(bind, config, random_seed())
        .await
        .map_err(|e| bind_error(bind, e))?;
    within(args, node.bootstrap(&[args.via]))
        .await
        .map_err(|e| match e.exit {
            Exit::Unreachable => {
                unreachable_via(&[args.via], DhtError::Failed(Failure::Unreachable))
            }
            _ => e,
        })?;
    Ok(node)
}

/// Runs a client command under the `--timeout-ms` limit, explaining failures.
async fn within<T>(
    args: &ClientArgs,
    work: impl Future<Output = Result<T, DhtError>>,
) -> Result<T, CliError> {
    match tokio::time::timeout(Duration::from_millis(args.timeout_ms), work).await {
        Err(_) => Err(CliError::new(
            Exit::Unreachable,
            format!(
                "no result through {} within {} ms",
                args.via, args.timeout_ms
            ),
        )),
        Ok(Err(DhtError::Failed(Failure::Unreachable | Failure::NoNodes))) => Err(unreachable_via(
            &[args.via],
            DhtError::Failed(Failure::Unreachable),
        )),
        Ok(Err(DhtError::Refused(CommandError::BadItem))) => Err(too_large()),
        Ok(Err(e)) => Err(internal(e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// 40 hex digits as an id.
fn hex_id(s: &str) -> Result<Id, CliError> {
    s.parse().map_err(|e| {
        CliError::new(Exit::Usage, format!("{s:?}: {e}"))
            .hint("info hashes and item keys are SHA-1 digests, e.g. 5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401")
    })
}

fn too_large() -> CliError {
    CliError::new(
        Exit::Refused,
        "the value is too large: a BEP 44 item holds at most 1000 bytes bencoded",
    )
}

fn asked(stats: LookupStats) -> String {
    format!(
        "{} requests, {} rounds, {:.1} ms",
        stats.messages,
        stats.rounds,
        stats.elapsed.as_micros() as f64 / 1000.0
    )
}
