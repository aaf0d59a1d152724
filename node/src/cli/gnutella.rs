//! `overlay gnutella ...`: a long-running servent (`serve`), and short-lived leaves that
//! search the network through an ultrapeer (`search`) or search and download the first hit
//! by its SHA-1 (`fetch KEYWORDS --connect`); `fetch --from` downloads straight from a
//! servent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use overlay_core::gnutella::{CloseReason, CommandError, Config, Role, urn};
use overlay_node::gnutella::{
    FetchError, FetchTarget, Fetched, GnutellaError, GnutellaPeer, Hit, Notice, Search,
    SharedFolder, fetch, sha1_urn,
};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::chord::{Shutdown, internal, random_seed};
use super::hex;
use super::output::{CliError, Exit, Printer, bind_error};

#[derive(Subcommand, Debug)]
pub enum GnutellaCmd {
    /// Run a servent (an ultrapeer, or a leaf with --leaf) that shares the files of --share
    /// and connects to --connect, until Ctrl-C.
    Serve(ServeArgs),
    /// Search the network through the ultrapeer at --connect and print every hit.
    Search(SearchArgs),
    /// Download a file: search through --connect and fetch the first hit by its SHA-1, or
    /// fetch --urn straight from the servent at --from. The bytes are checked against the
    /// SHA-1.
    Fetch(FetchArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The TCP address to listen on: the one other servents reach this one at (query hits
    /// advertise it). Port 0 picks a free port.
    #[arg(long)]
    listen: SocketAddr,
    /// A folder whose files to share (hashed at start).
    #[arg(long)]
    share: Option<PathBuf>,
    /// Share the files in the folder's subfolders too.
    #[arg(long)]
    recursive: bool,
    /// Run as a leaf: attach to the ultrapeers of --connect, send them a QRP table, route
    /// nothing. Without it the servent is an ultrapeer.
    #[arg(long)]
    leaf: bool,
    /// Servents to connect to (repeat for several).
    #[arg(long)]
    connect: Vec<SocketAddr>,
    /// Leaves an ultrapeer accepts (LimeWire: 30).
    #[arg(long, default_value_t = 30)]
    max_leaves: u8,
    /// Connections to ultrapeers accepted in all (default: 32 for an ultrapeer, 3 for a
    /// leaf).
    #[arg(long)]
    max_peers: Option<u8>,
    /// Seed of the servent's random choices (GUIDs, servent id; default: random).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args, Debug)]
pub struct Query {
    /// Keywords: a file matches when every one is a word of its name (any case).
    keywords: Vec<String>,
    /// The file with this SHA-1 (urn:sha1: and 32 base32 characters) instead of keywords.
    #[arg(long)]
    urn: Option<String>,
    /// Seconds to wait for hits (a flood has no end: the hits that come in this time).
    #[arg(long, default_value_t = 3.0)]
    wait: f64,
    /// Hops the query may travel (1 to 7; LimeWire's ultrapeers used 3 or 4).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=7))]
    ttl: u8,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Local address of this short-lived leaf (default: the loopback address when
    /// --connect is on loopback, else any, on a free port).
    #[arg(long)]
    bind: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    query: Query,
    /// The ultrapeer to search through (this command attaches to it as a leaf).
    #[arg(long)]
    connect: SocketAddr,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    query: Query,
    /// The ultrapeer to search through.
    #[arg(long, conflicts_with = "from", required_unless_present = "from")]
    connect: Option<SocketAddr>,
    /// Download --urn straight from this servent, without searching.
    #[arg(long, requires = "urn")]
    from: Option<SocketAddr>,
    /// Where to write the file.
    #[arg(short, long)]
    output: PathBuf,
    /// Give up a download after this many milliseconds without progress.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(cmd: GnutellaCmd, out: Printer) -> Result<(), CliError> {
    match cmd {
        GnutellaCmd::Serve(args) => serve(args, out).await,
        GnutellaCmd::Search(args) => search(args, out).await,
        GnutellaCmd::Fetch(args) => fetch_cmd(args, out).await,
    }
}

async fn serve(args: ServeArgs, out: Printer) -> Result<(), CliError> {
    if args.listen.ip().is_unspecified() {
        return Err(
            CliError::new(Exit::Usage, format!("cannot serve on {}", args.listen)).hint(
                "query hits and pongs advertise the listening address: use the one other servents reach this one at, e.g. 127.0.0.1:6346",
            ),
        );
    }
    // Watched from the start, so that no Ctrl-C is missed between two waits.
    let mut stop = Shutdown::watch()?;
    let folder = match &args.share {
        Some(dir) => scan(dir, args.recursive).await?,
        None => SharedFolder::new(),
    };
    let role = if args.leaf {
        Role::Leaf
    } else {
        Role::Ultrapeer
    };
    let mut config = Config::new(role, args.listen.into());
    config.max_leaves = if args.leaf { 0 } else { args.max_leaves };
    if let Some(n) = args.max_peers {
        config.max_peers = n;
    }
    let (files, bytes) = (folder.len(), folder.bytes());
    let seed = args.seed.unwrap_or_else(random_seed);
    let peer = GnutellaPeer::spawn(config, folder, seed, args.listen)
        .await
        .map_err(|e| listen_error(args.listen, e))?;
    let mut notices = peer.notices();
    out.emit(
        format!(
            "listening on {} as {} {}, sharing {files} files ({} KiB)",
            peer.addr(),
            role_name(role),
            hex(&peer.servent_id()),
            bytes.div_ceil(1024)
        ),
        json!({"event": "listening", "addr": peer.addr().to_string(), "role": role_name(role),
               "servent_id": hex(&peer.servent_id()), "files": files, "bytes": bytes}),
    );
    // Dials run beside the notices, which report them (connected, or closed and why).
    let dials = async {
        let mut up = 0;
        for &addr in &args.connect {
            up += usize::from(peer.connect(addr).await.is_ok());
        }
        up
    };
    tokio::pin!(dials);
    let mut dialling = !args.connect.is_empty();
    loop {
        tokio::select! {
            () = stop.requested() => break,
            up = &mut dials, if dialling => {
                dialling = false;
                if up == 0 {
                    drain(&mut notices, out);
                    return Err(CliError::new(
                        Exit::Unreachable,
                        format!("no servent answered at {}", list(&args.connect)),
                    )
                    .hint("is one running there? Start one with `overlay gnutella serve --listen ADDR`"));
                }
            }
            n = notices.recv() => match n {
                Ok(n) => print_notice(&n, out),
                Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "notices lost"),
                Err(RecvError::Closed) => break,
            },
        }
    }
    drain(&mut notices, out);
    let s = peer.snapshot().await.map_err(internal)?;
    // Bye (200) to every connection, and a moment to send it.
    for c in &s.peers {
        let _ = peer.disconnect(c.conn).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let st = s.stats;
    out.emit(
        format!(
            "stopped. Queries: {} received, {} sent ({} to leaves, {} leaves skipped by QRP), {} duplicates; hits: {} sent, {} forwarded; {} uploads ({} bytes); {} malformed",
            st.queries_received, st.queries_sent, st.queries_to_leaves, st.queries_filtered,
            st.duplicates, st.hits_sent, st.hits_forwarded, st.uploads, s.uploaded, st.malformed
        ),
        json!({"event": "stopped", "peers": s.peers.len(), "stats": {
            "queries_received": st.queries_received, "queries_sent": st.queries_sent,
            "queries_to_leaves": st.queries_to_leaves, "queries_filtered": st.queries_filtered,
            "duplicates": st.duplicates, "ttl_expired": st.ttl_expired, "hits_sent": st.hits_sent,
            "hits_forwarded": st.hits_forwarded, "hits_received": st.hits_received,
            "unrouted": st.unrouted, "pings_received": st.pings_received, "pongs_sent": st.pongs_sent,
            "malformed": st.malformed, "unhandled": st.unhandled, "qrp_errors": st.qrp_errors,
            "outbox_full": st.outbox_full, "refused": st.refused, "uploads": st.uploads,
            "uploaded_bytes": s.uploaded,
        }}),
    );
    Ok(())
}

/// Prints the notices already queued.
fn drain(notices: &mut tokio::sync::broadcast::Receiver<Notice>, out: Printer) {
    while let Ok(n) = notices.try_recv() {
        print_notice(&n, out);
    }
}

fn print_notice(n: &Notice, out: Printer) {
    match n {
        Notice::Connected { addr, role } => out.emit(
            format!("connected: {addr} ({})", role_name(*role)),
            json!({"event": "connected", "addr": addr.to_string(), "role": role_name(*role)}),
        ),
        Notice::Closed { addr, reason } => out.emit(
            format!("closed: {addr} ({reason})"),
            json!({"event": "closed", "addr": addr.to_string(), "reason": reason.to_string()}),
        ),
        Notice::UploadStarted {
            index,
            name,
            start,
            len,
        } => out.emit(
            format!("upload: {name:?} (#{index}), {len} bytes from byte {start}"),
            json!({"event": "upload", "index": index, "name": name, "start": start, "len": len}),
        ),
        Notice::UploadDone { index, bytes } => out.emit(
            format!("upload done: #{index}, {bytes} bytes"),
            json!({"event": "uploaded", "index": index, "bytes": bytes}),
        ),
        Notice::UploadFailed { index, error } => out.emit(
            format!("upload of #{index} stopped: {error}"),
            json!({"event": "upload_failed", "index": index, "error": error}),
        ),
        Notice::Push { index, addr } => out.emit(
            format!("push: {addr} asks for #{index} (pushes are not served)"),
            json!({"event": "push", "index": index, "addr": addr.to_string()}),
        ),
    }
}

/// Hashes the folder's files, off the runtime's threads.
async fn scan(dir: &Path, recursive: bool) -> Result<SharedFolder, CliError> {
    let path = dir.to_path_buf();
    tokio::task::spawn_blocking(move || SharedFolder::scan(&path, recursive))
        .await
        .map_err(internal)?
        .map_err(|e| {
            CliError::new(Exit::Usage, format!("cannot share {}: {e}", dir.display()))
                .hint("--share takes a folder of files to share")
        })
}

async fn search(args: SearchArgs, out: Printer) -> Result<(), CliError> {
    let (criteria, sha1) = query_of(&args.query)?;
    let leaf = start_leaf(args.connect, &args.client, args.query.ttl).await?;
    let started = tokio::time::Instant::now();
    let mut search = leaf
        .start_search(&criteria, sha1)
        .await
        .map_err(|e| refused(args.connect, e))?;
    let until = started + wait_of(&args.query);
    let mut hits = Vec::new();
    while let Some(hit) = search.next_before(until).await {
        print_hit(&hit, out);
        hits.push(hit);
    }
    bye(&leaf).await;
    if hits.is_empty() {
        return Err(nothing_found(&criteria, sha1, &args.query));
    }
    let mut servents: Vec<SocketAddr> = hits.iter().map(|h| h.addr).collect();
    servents.sort();
    servents.dedup();
    out.emit(
        format!(
            "{} hit{} from {} servent{} in {:.1} s",
            hits.len(),
            plural(hits.len()),
            servents.len(),
            plural(servents.len()),
            started.elapsed().as_secs_f64()
        ),
        json!({"event": "done", "hits": hits.len(), "servents": servents.len()}),
    );
    Ok(())
}

async fn fetch_cmd(args: FetchArgs, out: Printer) -> Result<(), CliError> {
    let stall = Duration::from_millis(args.timeout_ms);
    if let Some(from) = args.from {
        if !args.query.keywords.is_empty() {
            return Err(CliError::new(
                Exit::Usage,
                "--from fetches by --urn: keywords need --connect to search",
            ));
        }
        let (_, sha1) = query_of(&args.query)?;
        let sha1 = sha1.ok_or_else(|| CliError::new(Exit::Usage, "--from needs --urn"))?;
        let done = fetch(from, &FetchTarget::Sha1(sha1), &args.output, stall)
            .await
            .map_err(|e| fetch_error(from, e))?;
        print_fetched(&done, from, None, &args.output, out);
        return Ok(());
    }
    let Some(connect) = args.connect else {
        return Err(CliError::new(
            Exit::Usage,
            "give --connect, or --from and --urn",
        ));
    };
    let (criteria, sha1) = query_of(&args.query)?;
    let leaf = start_leaf(connect, &args.client, args.query.ttl).await?;
    let mut search = leaf
        .start_search(&criteria, sha1)
        .await
        .map_err(|e| refused(connect, e))?;
    let until = tokio::time::Instant::now() + wait_of(&args.query);
    let fetched = first_download(&mut search, until, &args.output, stall, out).await;
    bye(&leaf).await;
    match fetched {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Err(nothing_found(&criteria, sha1, &args.query)),
    }
}

/// Downloads the hits in the order they come until one succeeds; `None` if none came.
async fn first_download(
    search: &mut Search,
    until: tokio::time::Instant,
    output: &Path,
    stall: Duration,
    out: Printer,
) -> Option<Result<(), CliError>> {
    let mut failed = None;
    while let Some(hit) = search.next_before(until).await {
        let target = match hit.sha1 {
            Some(s) => FetchTarget::Sha1(s),
            None => FetchTarget::Index {
                index: hit.index,
                name: hit.name.clone(),
            },
        };
        match fetch(hit.addr, &target, output, stall).await {
            Ok(done) => {
                print_fetched(&done, hit.addr, Some(&hit), output, out);
                return Some(Ok(()));
            }
            Err(e) => {
                tracing::info!(from = %hit.addr, error = %e, "download failed; next hit");
                failed = Some(Err(fetch_error(hit.addr, e)));
            }
        }
    }
    failed
}

/// Says Bye (200) to the ultrapeers, as a leaf that leaves should, and gives the bytes a
/// moment to go out before the process ends.
async fn bye(leaf: &GnutellaPeer) {
    if let Ok(peers) = leaf.peers().await {
        for c in peers {
            let _ = leaf.disconnect(c.conn).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print_fetched(done: &Fetched, from: SocketAddr, hit: Option<&Hit>, path: &Path, out: Printer) {
    let urn = sha1_urn(&done.sha1);
    let name = hit.map(|h| h.name.as_str());
    let check = if done.verified {
        "SHA-1 verified"
    } else {
        "no SHA-1 to check against"
    };
    out.emit(
        format!(
            "fetched {}{} bytes from {from} into {}; {check}: {urn}",
            name.map(|n| format!("{n:?}, ")).unwrap_or_default(),
            done.bytes,
            path.display()
        ),
        json!({"event": "fetched", "from": from.to_string(), "name": name, "bytes": done.bytes,
               "urn": urn, "verified": done.verified, "path": path.display().to_string(),
               "hops": hit.map(|h| h.hops), "server": done.server}),
    );
}

fn print_hit(h: &Hit, out: Printer) {
    let urn = h.sha1.as_ref().map(sha1_urn);
    out.emit(
        format!(
            "{}  #{}  {} bytes  {:?}  {}  hops {}",
            h.addr,
            h.index,
            h.size,
            h.name,
            urn.as_deref().unwrap_or("(no urn)"),
            h.hops
        ),
        hit_json(h),
    );
}

fn hit_json(h: &Hit) -> Value {
    json!({"event": "hit", "addr": h.addr.to_string(), "index": h.index, "size": h.size,
           "name": h.name, "urn": h.sha1.as_ref().map(sha1_urn), "hops": h.hops,
           "servent_id": hex(&h.servent_id), "speed_kbps": h.speed_kbps})
}

/// The search text and SHA-1 of a query's arguments.
fn query_of(q: &Query) -> Result<(String, Option<[u8; 20]>), CliError> {
    let sha1 = match &q.urn {
        Some(u) => Some(urn::parse_sha1(u.as_bytes()).ok_or_else(|| {
            CliError::new(Exit::Usage, format!("{u:?} is not a SHA-1 URN"))
                .hint("write urn:sha1: and 32 base32 characters, as `overlay gnutella search` prints them")
        })?),
        None => None,
    };
    let criteria = q.keywords.join(" ");
    match (criteria.is_empty(), sha1) {
        (true, None) => Err(CliError::new(Exit::Usage, "nothing to search for")
            .hint("give keywords, e.g. `free song`, or --urn urn:sha1:...")),
        // HUGE queries by hash alone carry `\` as their text (LimeWire's convention).
        (true, Some(s)) => Ok(("\\".to_string(), Some(s))),
        (false, s) => Ok((criteria, s)),
    }
}

fn wait_of(q: &Query) -> Duration {
    Duration::try_from_secs_f64(q.wait).unwrap_or(Duration::ZERO)
}

/// A short-lived leaf that shares nothing, attached to the ultrapeer at `connect`.
async fn start_leaf(
    connect: SocketAddr,
    client: &ClientArgs,
    ttl: u8,
) -> Result<GnutellaPeer, CliError> {
    let bind = client.bind.unwrap_or(match connect.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ip if ip.is_loopback() => SocketAddr::new(ip, 0),
        _ => super::client_bind(connect, None),
    });
    let config = Config::new(Role::Leaf, bind.into());
    let leaf = GnutellaPeer::spawn(config, SharedFolder::new(), random_seed(), bind)
        .await
        .map_err(|e| listen_error(bind, e))?;
    leaf.set_query_ttl(ttl).await.map_err(internal)?;
    match leaf.connect(connect).await {
        Ok(_) => Ok(leaf),
        Err(GnutellaError::Closed(CloseReason::Refused(code))) => Err(CliError::new(
            Exit::Refused,
            format!("{connect} refused this leaf with {code}"),
        )
        .hint("it is full, or a leaf itself: connect to another ultrapeer")),
        Err(GnutellaError::Closed(CloseReason::Unsuitable)) => Err(CliError::new(
            Exit::Refused,
            format!("{connect} is a leaf: searches go through ultrapeers"),
        )),
        Err(e) => Err(CliError::new(
            Exit::Unreachable,
            format!("no servent answered at {connect}: {e}"),
        )
        .hint(format!(
            "is one running there? Start one with `overlay gnutella serve --listen {connect}`"
        ))),
    }
}

fn refused(connect: SocketAddr, e: GnutellaError) -> CliError {
    match e {
        GnutellaError::Refused(CommandError::NotConnected) => CliError::new(
            Exit::Unreachable,
            format!("the connection to {connect} closed before the search"),
        ),
        GnutellaError::Refused(CommandError::Invalid(_)) => {
            CliError::new(Exit::Usage, format!("cannot search for that: {e}"))
        }
        e => internal(e),
    }
}

fn nothing_found(criteria: &str, sha1: Option<[u8; 20]>, q: &Query) -> CliError {
    let what = match sha1 {
        Some(s) => sha1_urn(&s),
        None => format!("{criteria:?}"),
    };
    CliError::new(
        Exit::NotFound,
        format!("no hits for {what} within {} s", q.wait),
    )
    .hint("nobody within --ttl hops shares a file whose name has every keyword: try fewer keywords, a larger --ttl or a longer --wait")
}

fn fetch_error(from: SocketAddr, e: FetchError) -> CliError {
    let what = format!("download from {from} failed: {e}");
    match e {
        FetchError::Connect(_)
        | FetchError::Timeout(_)
        | FetchError::Io(_)
        | FetchError::Short { .. } => CliError::new(Exit::Unreachable, what)
            .hint("is the servent still running? Downloads go to the address its query hit gives"),
        FetchError::Status(404, _) => CliError::new(Exit::NotFound, what)
            .hint("the servent does not share that file (any more): search again"),
        FetchError::Status(503, _) => {
            CliError::new(Exit::Refused, what).hint("the servent is busy: try again later")
        }
        _ => CliError::new(Exit::Internal, what),
    }
}

/// An error binding the listener, explained for TCP.
fn listen_error(addr: SocketAddr, e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        return CliError::new(Exit::Bind, format!("cannot listen on {addr}: {e}")).hint(
            "another process uses this port: pick another with --listen, or find it with `ss -tlpn`",
        );
    }
    bind_error(addr, e)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Ultrapeer => "ultrapeer",
        Role::Leaf => "leaf",
    }
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
