//! `overlay torrent ...` (make a torrent, download one, seed one) and `overlay tracker`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use overlay_core::bittorrent::metainfo::{Content, FileSpec, Metainfo, Torrent};
use overlay_core::bittorrent::tracker::{AnnouncerConfig, TrackerConfig};
use overlay_node::bittorrent::{Notice, TorrentPeer};
use overlay_node::dht::DhtPeer;
use overlay_node::tracker::{TrackerNotice, TrackerServer, Trackers};
use serde_json::json;
use sha1::{Digest, Sha1};

use super::chord::{Shutdown, internal, random_seed};
use super::hex;
use super::output::{CliError, Exit, Printer, bind_error};

#[derive(Subcommand, Debug)]
pub enum TorrentCmd {
    /// Make a .torrent (BEP 3) of FILE or DIR: its pieces hashed with SHA-1.
    Create {
        /// The file or folder to share.
        path: PathBuf,
        /// Where to write the .torrent.
        #[arg(short, long)]
        out: PathBuf,
        /// A tracker URL (http:// or udp://); repeat for more (BEP 12 tiers of one).
        #[arg(long = "tracker", value_name = "URL")]
        trackers: Vec<String>,
        /// Piece size in KiB (a power of two, 16 or more).
        #[arg(long, default_value_t = 1024)]
        piece_kib: u64,
    },
    /// Download a torrent into DIR. What DIR already holds is checked first, so a stopped
    /// download resumes; then the torrent is fetched from the peers its trackers (and
    /// --peer) name, with a progress line, and a summary at the end.
    Download {
        /// The .torrent file.
        torrent: String,
        /// The folder to download into.
        #[arg(short, long)]
        out: PathBuf,
        #[command(flatten)]
        share: ShareArgs,
        /// Keep seeding this many seconds after the download completes.
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        seed_after: u64,
    },
    /// Seed a torrent whose files are in DIR (checked first), until Ctrl-C or --for.
    Seed {
        /// The .torrent file.
        torrent: PathBuf,
        /// The folder holding the torrent's files.
        dir: PathBuf,
        #[command(flatten)]
        share: ShareArgs,
        /// Stop after this many seconds.
        #[arg(long = "for", value_name = "SECS")]
        duration: Option<u64>,
    },
}

#[derive(Args, Debug)]
pub struct ShareArgs {
    /// The TCP address to accept peers on (port 0: a free one).
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// A peer to dial besides the trackers' (repeatable).
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<SocketAddr>,
    /// Another tracker to announce to, besides the torrent's (repeatable).
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Do not announce to the torrent's own trackers.
    #[arg(long)]
    no_trackers: bool,
    /// Also find peers (and announce this one) through the Mainline DHT, joined through
    /// this node (repeatable). Private torrents (BEP 27) never use the DHT.
    #[arg(long = "dht", value_name = "ADDR")]
    dht: Vec<SocketAddr>,
    /// Seed of the peer id and the random choices (default: random).
    #[arg(long)]
    seed: Option<u64>,
}

/// `overlay tracker`: a BitTorrent tracker, HTTP and UDP on one port.
#[derive(Args, Debug)]
pub struct TrackerArgs {
    /// The address to serve on, UDP (BEP 15) and TCP (HTTP) both.
    #[arg(long)]
    bind: SocketAddr,
    /// Seconds between announces the tracker asks of its peers.
    #[arg(long, default_value_t = 1800)]
    interval: u64,
}

pub async fn run(cmd: TorrentCmd, out: Printer) -> Result<(), CliError> {
    match cmd {
        TorrentCmd::Create {
            path,
            out: file,
            trackers,
            piece_kib,
        } => create(&path, &file, &trackers, piece_kib, out).await,
        TorrentCmd::Download {
            torrent,
            out: dir,
            share,
            seed_after,
        } => {
            if torrent.starts_with("magnet:") {
                return Err(CliError::new(Exit::Usage, "magnet links are not supported yet")
                    .hint("they need BEP 9's metadata exchange and DHT peer discovery; download with the .torrent file"));
            }
            share_torrent(
                Path::new(&torrent),
                &dir,
                share,
                Mode::Download { seed_after },
                out,
            )
            .await
        }
        TorrentCmd::Seed {
            torrent,
            dir,
            share,
            duration,
        } => share_torrent(&torrent, &dir, share, Mode::Seed { duration }, out).await,
    }
}

pub async fn tracker(args: TrackerArgs, out: Printer) -> Result<(), CliError> {
    let mut stop = Shutdown::watch()?;
    let interval = overlay_core::Duration::from_secs(args.interval.max(1));
    let config = TrackerConfig {
        interval,
        min_interval: overlay_core::Duration::from_secs((args.interval / 2).max(1)),
        peer_timeout: overlay_core::Duration::from_secs(2 * args.interval + 300),
        ..TrackerConfig::default()
    };
    let server = TrackerServer::bind(args.bind, config, random_seed())
        .await
        .map_err(|e| bind_error(args.bind, e))?;
    let addr = server.addr();
    out.emit(
        format!("tracker on http://{addr}/announce and udp://{addr}"),
        json!({"event": "listening", "http": format!("http://{addr}/announce"), "udp": format!("udp://{addr}")}),
    );
    stop.requested().await;
    let s = server.stats().await.map_err(internal)?;
    let swarms = server.swarms().await.map_err(internal)?;
    out.emit(
        format!(
            "tracker stopped: {} HTTP and {} UDP announces, {} scrapes, {swarms} torrents; {} malformed requests, {} bad connection ids, {} refused",
            s.http_announces, s.udp_announces, s.scrapes, s.malformed, s.bad_conn_ids, s.refused
        ),
        json!({"event": "stopped", "http_announces": s.http_announces, "udp_announces": s.udp_announces,
               "scrapes": s.scrapes, "swarms": swarms, "malformed": s.malformed,
               "bad_conn_ids": s.bad_conn_ids, "refused": s.refused, "expired": s.expired}),
    );
    Ok(())
}

/// Hashes `path` into a torrent at `file`.
async fn create(
    path: &Path,
    file: &Path,
    trackers: &[String],
    piece_kib: u64,
    out: Printer,
) -> Result<(), CliError> {
    if piece_kib < 16 || !piece_kib.is_power_of_two() {
        return Err(CliError::new(
            Exit::Usage,
            format!("--piece-kib {piece_kib} is not a power of two of 16 or more"),
        ));
    }
    let piece_len = piece_kib * 1024;
    let (name, files) = list_files(path)
        .map_err(|e| CliError::new(Exit::Usage, format!("{}: {e}", path.display())))?;
    let total: u64 = files.iter().map(|f| f.1).sum();
    let bar = out.progress(total.div_ceil(piece_len), "hashing");
    let paths: Vec<PathBuf> = files.iter().map(|f| f.0.clone()).collect();
    let hashing = {
        let bar = bar.clone();
        tokio::task::spawn_blocking(move || hash_pieces(&paths, piece_len, &bar))
    };
    let pieces = hashing.await.map_err(internal)?.map_err(internal)?;
    bar.finish_and_clear();
    let parts: Vec<Vec<Vec<u8>>> = files
        .iter()
        .map(|(p, _)| {
            p.strip_prefix(path)
                .unwrap_or(p)
                .components()
                .map(|c| c.as_os_str().as_encoded_bytes().to_vec())
                .collect()
        })
        .collect();
    let refs: Vec<Vec<&[u8]>> = parts
        .iter()
        .map(|p| p.iter().map(Vec::as_slice).collect())
        .collect();
    let specs: Vec<FileSpec<'_>> = refs
        .iter()
        .zip(&files)
        .map(|(p, f)| FileSpec {
            path: p,
            length: f.1,
        })
        .collect();
    let tier: Vec<&[u8]> = trackers.iter().map(|t| t.as_bytes()).collect();
    let tiers = [tier.as_slice()];
    let torrent = Torrent {
        announce: tier.first().copied(),
        announce_list: if trackers.len() > 1 { &tiers } else { &[] },
        name: name.as_bytes(),
        piece_length: piece_len,
        pieces: &pieces,
        content: match path.is_dir() {
            true => Content::Multi(&specs),
            false => Content::Single { length: total },
        },
        private: false,
    };
    let mut buf =
        vec![
            0u8;
            pieces.len() + 64 * 1024 + parts.iter().flatten().map(Vec::len).sum::<usize>() * 2
        ];
    let meta = torrent.write(&mut buf).map_err(internal)?;
    std::fs::write(file, meta.raw())
        .map_err(|e| CliError::new(Exit::Internal, format!("{}: {e}", file.display())))?;
    let hash = hex(&meta.info_hash());
    out.emit(
        format!(
            "wrote {} ({} files, {total} bytes, {} pieces of {piece_kib} KiB), info hash {hash}",
            file.display(),
            files.len(),
            pieces.len() / 20
        ),
        json!({"event": "created", "file": file.display().to_string(), "info_hash": hash,
               "files": files.len(), "bytes": total, "pieces": pieces.len() / 20}),
    );
    Ok(())
}

/// The torrent's name and its files (path, size), in BEP 3's order: a folder's files
/// sorted by path.
fn list_files(path: &Path) -> std::io::Result<(String, Vec<(PathBuf, u64)>)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("no UTF-8 file name"))?
        .to_string();
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p)? {
                stack.push(entry?.path());
            }
        } else {
            files.push((p, meta.len()));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(std::io::Error::other("no files to share"));
    }
    Ok((name, files))
}

/// The SHA-1 of each piece of the files' concatenation.
fn hash_pieces(
    paths: &[PathBuf],
    piece_len: u64,
    bar: &indicatif::ProgressBar,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut pieces = Vec::new();
    let mut piece = Vec::with_capacity(piece_len as usize);
    let mut buf = vec![0u8; 1 << 20];
    for path in paths {
        let mut f = std::fs::File::open(path)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let mut data = &buf[..n];
            while !data.is_empty() {
                let take = data.len().min(piece_len as usize - piece.len());
                piece.extend_from_slice(&data[..take]);
                data = &data[take..];
                if piece.len() == piece_len as usize {
                    pieces.extend_from_slice(&Sha1::digest(&piece));
                    piece.clear();
                    bar.inc(1);
                }
            }
        }
    }
    if !piece.is_empty() {
        pieces.extend_from_slice(&Sha1::digest(&piece));
    }
    Ok(pieces)
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Download { seed_after: u64 },
    Seed { duration: Option<u64> },
}

/// Downloads or seeds a torrent until it is done, Ctrl-C, or the time is up.
async fn share_torrent(
    torrent: &Path,
    dir: &Path,
    share: ShareArgs,
    mode: Mode,
    out: Printer,
) -> Result<(), CliError> {
    let mut stop = Shutdown::watch()?;
    let bytes = std::fs::read(torrent)
        .map_err(|e| CliError::new(Exit::Usage, format!("{}: {e}", torrent.display())))?;
    let meta = Metainfo::parse(&bytes)
        .map_err(|e| CliError::new(Exit::Usage, format!("{}: {e}", torrent.display())))?;
    let info_hash = meta.info_hash();
    let (total, piece_len) = (meta.total_length(), meta.piece_length());
    let mut urls: Vec<String> = Vec::new();
    if !share.no_trackers {
        let mut add = |u: &[u8]| {
            let u = String::from_utf8_lossy(u).into_owned();
            if !urls.contains(&u) {
                urls.push(u);
            }
        };
        meta.announce().into_iter().for_each(&mut add);
        meta.announce_list().flatten().for_each(&mut add);
    }
    urls.extend(share.trackers.iter().cloned());
    let seed = share.seed.unwrap_or_else(random_seed);
    if matches!(mode, Mode::Download { .. }) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::new(Exit::Internal, format!("{}: {e}", dir.display())))?;
    }
    let started = Instant::now();
    let checking = out.spinner(format!("checking what {} holds", dir.display()));
    let peer = TorrentPeer::start(bytes.clone(), dir, share.bind, seed)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse
            | std::io::ErrorKind::AddrNotAvailable
            | std::io::ErrorKind::PermissionDenied => bind_error(share.bind, e),
            _ => CliError::new(Exit::Internal, format!("{}: {e}", dir.display())),
        })?;
    checking.finish_and_clear();
    let mut notices = peer.notices();
    let (have0, pieces) = peer.progress().await.map_err(internal)?;
    let addr = peer.addr();
    out.emit(
        format!("{} on {addr}: {have0}/{pieces} pieces on disk, info hash {}", name(&meta), hex(&info_hash)),
        json!({"event": "listening", "addr": addr.to_string(), "have": have0, "pieces": pieces, "info_hash": hex(&info_hash)}),
    );
    let left = |have: u32| total.saturating_sub(u64::from(have) * piece_len);
    let (trackers, mut tracker_notices, skipped) = Trackers::start(
        &urls,
        info_hash,
        peer.peer_id(),
        addr.port(),
        left(have0),
        AnnouncerConfig::default(),
        seed,
    )
    .await
    .map_err(internal)?;
    for (url, why) in skipped {
        out.emit(
            format!("skipping tracker {url}: {why}"),
            json!({"event": "tracker_skipped", "url": url, "why": why}),
        );
    }
    for p in &share.peers {
        let _ = peer.add_peer(*p).await;
    }
    let mut dht_peers = match (share.dht.is_empty(), meta.is_private()) {
        (true, _) => None,
        (false, true) => {
            out.emit(
                "a private torrent (BEP 27): not using the DHT",
                json!({"event": "dht_skipped", "why": "private"}),
            );
            None
        }
        (false, false) => Some(discover(&share.dht, addr, info_hash, seed, out).await?),
    };
    let bar = out.bytes_progress(total);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut done_at = (have0 == pieces).then(Instant::now);
    let deadline = |done: Option<Instant>| -> Option<Instant> {
        match mode {
            Mode::Download { seed_after } => done.map(|t| t + Duration::from_secs(seed_after)),
            Mode::Seed { duration } => duration.map(|d| started + Duration::from_secs(d)),
        }
    };
    let mut seen_peers = std::collections::HashSet::new();
    let reason = loop {
        let until = deadline(done_at);
        let sleep = async {
            match until {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.requested() => break "interrupted",
            () = sleep => break if matches!(mode, Mode::Seed { .. }) { "time is up" } else { "done" },
            notice = tracker_notices.recv() => match notice {
                Some(TrackerNotice::Announced { url, peers, swarm }) => {
                    for p in &peers {
                        if *p != addr && !(p.port() == addr.port() && (addr.ip().is_unspecified() || p.ip() == addr.ip())) {
                            let _ = peer.add_peer(*p).await;
                        }
                    }
                    out.emit(format!("tracker {url}: {} peers", peers.len()),
                        json!({"event": "announced", "url": url, "peers": peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                               "seeders": swarm.map(|s| s.0), "leechers": swarm.map(|s| s.1)}));
                }
                Some(TrackerNotice::Failed { url, why }) => out.emit(format!("tracker {url}: {why}"), json!({"event": "tracker_failed", "url": url, "why": why})),
                Some(TrackerNotice::Warning { url, message }) => out.emit(format!("tracker {url} warns: {message}"), json!({"event": "tracker_warning", "url": url, "message": message})),
                None => {}
            },
            found = async { dht_peers.as_mut()?.recv().await }, if dht_peers.is_some() => match found {
                Some((peers, stored)) => {
                    for p in &peers {
                        if *p != addr {
                            let _ = peer.add_peer(*p).await;
                        }
                    }
                    out.emit(format!("DHT: {} peers; announced to {stored} nodes", peers.len()),
                        json!({"event": "dht", "peers": peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(), "stored": stored}));
                }
                None => dht_peers = None,
            },
            notice = notices.recv() => match notice {
                Ok(Notice::Complete) if done_at.is_none() => {
                    done_at = Some(Instant::now());
                    let _ = trackers.set_totals(0, total, 0).await;
                    let _ = trackers.completed().await;
                    if let Mode::Download { seed_after: 0 } = mode {
                        break "done";
                    }
                }
                Ok(Notice::Connected(p)) => { seen_peers.insert(p); }
                Ok(Notice::DiskError(e)) => out.emit(format!("disk: {e}"), json!({"event": "disk_error", "error": e})),
                _ => {}
            },
            _ = tick.tick() => {
                let (have, connected, stats) = peer.status().await.map_err(internal)?;
                let _ = trackers.set_totals(stats.uploaded, stats.downloaded, left(have)).await;
                bar.set_position(total - left(have));
                bar.set_message(format!("{connected} peers, {} up", indicatif::HumanBytes(stats.uploaded)));
                if out.json {
                    out.emit("", json!({"event": "progress", "have": have, "pieces": pieces, "peers": connected,
                                        "downloaded": stats.downloaded, "uploaded": stats.uploaded}));
                }
            }
        }
    };
    bar.finish_and_clear();
    trackers.stop(Duration::from_secs(2)).await;
    let (have, _, stats) = peer.status().await.map_err(internal)?;
    let secs = done_at
        .unwrap_or_else(Instant::now)
        .duration_since(started)
        .as_secs_f64();
    let rate = stats.downloaded as f64 / secs.max(1e-3) / 1e6;
    out.emit(
        format!(
            "{reason}: {have}/{pieces} pieces; downloaded {} in {secs:.1} s ({rate:.1} MB/s) from {} peers, uploaded {}; {} hash failures, {} wasted",
            indicatif::HumanBytes(stats.downloaded), seen_peers.len(), indicatif::HumanBytes(stats.uploaded), stats.hash_failures, indicatif::HumanBytes(stats.wasted)
        ),
        json!({"event": "summary", "reason": reason, "have": have, "pieces": pieces, "complete": have == pieces,
               "downloaded": stats.downloaded, "uploaded": stats.uploaded, "seconds": secs, "mb_per_s": rate,
               "peers": seen_peers.len(), "hash_failures": stats.hash_failures, "wasted": stats.wasted}),
    );
    match (mode, have == pieces) {
        (Mode::Download { .. }, false) => Err(CliError::new(
            Exit::Unreachable,
            format!("stopped with {have}/{pieces} pieces"),
        )
        .hint("run the same command again: what is on disk is kept and checked")),
        _ => Ok(()),
    }
}

/// How often the DHT is asked for the torrent's peers, and told of this one.
const DHT_EVERY: Duration = Duration::from_secs(15);

/// Joins the DHT through `bootstrap` and, every [`DHT_EVERY`], looks up the torrent's peers
/// (BEP 5 `get_peers`) and announces this one on its TCP port (`announce_peer`). Each
/// round's peers, and the nodes that stored the announce, come on the receiver.
async fn discover(
    bootstrap: &[SocketAddr],
    addr: SocketAddr,
    info_hash: [u8; 20],
    seed: u64,
    out: Printer,
) -> Result<tokio::sync::mpsc::UnboundedReceiver<(Vec<SocketAddr>, u8)>, CliError> {
    let bind = SocketAddr::new(addr.ip(), 0);
    let dht = DhtPeer::bind(bind, super::dht::config_for(bind), seed)
        .await
        .map_err(|e| bind_error(bind, e))?;
    let nodes = dht.bootstrap(bootstrap).await.map_err(|e| {
        CliError::new(
            Exit::Unreachable,
            format!("cannot join the DHT through {bootstrap:?}: {e}"),
        )
    })?;
    out.emit(
        format!("DHT: joined through {bootstrap:?}, {nodes} nodes known"),
        json!({"event": "dht_joined", "nodes": nodes}),
    );
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let target = overlay_core::Id(info_hash);
    tokio::spawn(async move {
        loop {
            let peers = dht
                .get_peers(target)
                .await
                .map(|(p, _)| p)
                .unwrap_or_default();
            let stored = dht
                .announce(target, Some(addr.port()))
                .await
                .map_or(0, |(n, _)| n);
            if tx.send((peers, stored)).is_err() {
                return;
            }
            tokio::time::sleep(DHT_EVERY).await;
        }
    });
    Ok(rx)
}

fn name(meta: &Metainfo<'_>) -> String {
    String::from_utf8_lossy(meta.name()).into_owned()
}
