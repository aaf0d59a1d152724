//! BitTorrent on real sockets and files: the core [`Session`] on the runtime over TCP, and
//! the torrent's pieces in files on disk ([`Files`]), as the session leaves storage to its
//! driver.
//!
//! The session's storage events go, in order, to one disk task: a block to write
//! (`Event::Write`), a piece to hash with SHA-1 against the metainfo (`Event::Verify`,
//! answered with `Session::piece_checked`, or `Session::piece_lost` when the disk failed),
//! a block to read for a peer (`Event::Read`, answered with `Session::send_block`). File
//! I/O runs on tokio's blocking pool, off the network task; the one disk task keeps a
//! piece's writes before its check. On start, the
//! pieces already on disk are checked and announced as had, so a folder holding the whole
//! file seeds and a partial download resumes.
//!
//! Everything of the protocol is the core session's; this module moves bytes between it,
//! the sockets and the files.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use overlay_core::bittorrent::metainfo::Metainfo;
use overlay_core::bittorrent::session::{CloseReason, Event, Session, SessionError, Stats};
use overlay_core::bittorrent::wire::BlockRequest;
use overlay_core::machine::ConnId;
use overlay_core::{Instant, PeerAddr, Rng};
use sha1::{Digest, Sha1};
use tokio::sync::{broadcast, mpsc};

use crate::runtime::{Control, Gone, Host, Peer, PeerHandle, Sockets, on_large_stack};

/// The machine a host peer runs (boxed, about 7 MB): torrents of up to 4096 pieces of up
/// to 1 MiB (4 GiB), 64 connections with the core's default receive buffers.
pub type Node = Session<4096, 64, 64>;

/// Notices kept for a slow reader of [`TorrentPeer::notices`] before the oldest are lost.
const NOTICES: usize = 1024;

/// The files of a torrent in a folder: `folder/name` for a single-file torrent,
/// `folder/name/path...` for each file of a multi-file one (BEP 3), and where each starts
/// in the torrent's byte stream.
#[derive(Debug)]
pub struct Files {
    files: Vec<(PathBuf, u64, u64)>,
    /// Each file, opened once on first use (read-write where allowed, else read-only) and
    /// then read and written at offsets (`pread`/`pwrite`): no open or seek per block.
    handles: Vec<OnceLock<File>>,
    piece_len: u64,
    total: u64,
    hashes: Vec<[u8; 20]>,
}

impl Files {
    /// The layout of `meta`'s files under `folder` (the metainfo's paths were checked when
    /// it was parsed: no `..`, no absolute or empty components).
    pub fn new(meta: &Metainfo<'_>, folder: &Path) -> io::Result<Files> {
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a path is not UTF-8"))
        };
        let root = folder.join(text(meta.name())?);
        let mut files = Vec::new();
        for f in meta.files() {
            let mut path = root.clone();
            if !meta.is_single_file() {
                for part in f.path.components() {
                    path.push(text(part)?);
                }
            }
            files.push((path, f.offset, f.length));
        }
        let hashes = meta
            .piece_hashes()
            .map(|h| h.try_into().unwrap_or([0; 20]))
            .collect();
        Ok(Files {
            handles: files.iter().map(|_| OnceLock::new()).collect(),
            files,
            piece_len: meta.piece_length(),
            total: meta.total_length(),
            hashes,
        })
    }

    /// Creates the folders and files that are missing, each at its full length (sparse);
    /// whether any file already held bytes (else no piece can be on disk yet).
    pub fn create(&self) -> io::Result<bool> {
        let mut had_bytes = false;
        for (path, _, len) in &self.files {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?;
            let existing = f.metadata()?.len();
            had_bytes |= existing > 0;
            if existing < *len {
                f.set_len(*len)?;
            }
        }
        Ok(had_bytes)
    }

    /// Pieces in the torrent.
    pub fn piece_count(&self) -> u32 {
        self.hashes.len() as u32
    }

    /// Each file's part of `len` bytes at torrent offset `at`: (path, offset in the file,
    /// range in the caller's buffer).
    fn spans(
        &self,
        at: u64,
        len: usize,
    ) -> impl Iterator<Item = (usize, u64, std::ops::Range<usize>)> {
        let end = at + len as u64;
        self.files
            .iter()
            .enumerate()
            .filter_map(move |(i, (_, start, flen))| {
                let (lo, hi) = (at.max(*start), end.min(start + flen));
                (lo < hi).then(|| {
                    let buf = (lo - at) as usize..(hi - at) as usize;
                    (i, lo - start, buf)
                })
            })
    }

    /// File `i`, opened.
    fn handle(&self, i: usize) -> io::Result<&File> {
        if let Some(f) = self.handles[i].get() {
            return Ok(f);
        }
        let path = &self.files[i].0;
        let f = match OpenOptions::new().read(true).write(true).open(path) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path)?,
            other => other?,
        };
        // Reads are piece checks and block uploads at scattered offsets: readahead past
        // them would fill the download's unwritten holes with zeroed pages (a quarter of
        // the CPU of a loopback download, measured with perf). Advice only: errors are
        // ignored.
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::Random);
        // Another thread may have opened it meanwhile: either handle will do.
        Ok(self.handles[i].get_or_init(|| f))
    }

    /// Reads `buf.len()` bytes at torrent offset `at`.
    pub fn read(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        for (i, offset, range) in self.spans(at, buf.len()) {
            self.handle(i)?.read_exact_at(&mut buf[range], offset)?;
        }
        Ok(())
    }

    /// Writes `data` at torrent offset `at`.
    pub fn write(&self, at: u64, data: &[u8]) -> io::Result<()> {
        for (i, offset, range) in self.spans(at, data.len()) {
            self.handle(i)?.write_all_at(&data[range], offset)?;
        }
        Ok(())
    }

    /// Whether `piece` on disk matches its SHA-1 from the metainfo. Read in 64 KiB chunks
    /// into one buffer: a fresh piece-sized buffer per check would have the kernel zero a
    /// megabyte of new pages each time (it was a quarter of a download's CPU).
    pub fn check(&self, piece: u32) -> io::Result<bool> {
        const CHUNK: usize = 64 << 10;
        let at = u64::from(piece) * self.piece_len;
        let len = self.total.saturating_sub(at).min(self.piece_len);
        let mut buf = [0u8; CHUNK];
        let mut hash = Sha1::new();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            self.read(at + done, &mut buf[..n])?;
            hash.update(&buf[..n]);
            done += n as u64;
        }
        Ok(self.hashes.get(piece as usize) == Some(&hash.finalize().into()))
    }
}

/// What a torrent peer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A peer finished its handshake.
    Connected(PeerAddr),
    /// A connection ended.
    Closed(PeerAddr, CloseReason),
    /// A piece was checked against its hash.
    Checked {
        /// The piece.
        piece: u32,
        /// Whether it matched.
        passed: bool,
    },
    /// Every piece is in and checked.
    Complete,
    /// The disk failed (the message says how): a block to upload is dropped, a piece is
    /// fetched again.
    DiskError(String),
}

/// The most block writes the disk task hands to the blocking pool at once.
const WRITE_BATCH: usize = 64;

/// A storage request of the session, for the disk task.
enum Job {
    Write { at: u64, data: Vec<u8> },
    Verify { piece: u32 },
    Read { conn: ConnId, block: BlockRequest },
}

/// The host of a torrent peer: storage events to the disk task, the rest as notices.
pub struct TorrentHost {
    jobs: mpsc::UnboundedSender<Job>,
    notices: broadcast::Sender<Notice>,
    piece_len: u64,
}

impl Host<Node> for TorrentHost {
    fn on_event(&mut self, _now: Instant, event: Event<'_>) -> Control {
        let job = match event {
            Event::Write { piece, begin, data } => Some(Job::Write {
                at: u64::from(piece) * self.piece_len + u64::from(begin),
                data: data.to_vec(),
            }),
            Event::Verify { piece, .. } => Some(Job::Verify { piece }),
            Event::Read { conn, block } => Some(Job::Read { conn, block }),
            Event::Connected { peer, .. } => {
                let _ = self.notices.send(Notice::Connected(peer));
                None
            }
            Event::Closed { peer, reason, .. } => {
                let _ = self.notices.send(Notice::Closed(peer, reason));
                None
            }
            Event::Complete => {
                let _ = self.notices.send(Notice::Complete);
                None
            }
        };
        if let Some(job) = job {
            // Fails only once the disk task ended with the peer.
            let _ = self.jobs.send(job);
        }
        Control::Continue
    }
}

/// Carries out the session's storage requests in order, answering checks and reads. A
/// disk error is reported; a piece that could not be written or read back is answered
/// with `Session::piece_lost`, so it is fetched again and no peer is blamed for it.
async fn disk(
    files: Arc<Files>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    peer: PeerHandle<Node, TorrentHost>,
    notices: broadcast::Sender<Notice>,
) {
    let report = |e: io::Error| {
        tracing::warn!("disk: {e}");
        let _ = notices.send(Notice::DiskError(e.to_string()));
    };
    // Pieces with a block that could not be written: their check would blame the peers.
    let mut unwritten = std::collections::HashSet::new();
    // A job taken from the queue behind a run of writes, for the next round.
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let files = files.clone();
        let answered = match job {
            Job::Write { at, data } => {
                // The writes queued behind this one go in the same trip to the blocking
                // pool (one thread handoff per batch, not per 16 KiB block), in order.
                let mut batch = vec![(at, data)];
                while batch.len() < WRITE_BATCH {
                    match jobs.try_recv() {
                        Ok(Job::Write { at, data }) => batch.push((at, data)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let piece_len = files.piece_len;
                let failed = blocking(move || {
                    let mut failed = Vec::new();
                    for (at, data) in batch {
                        if let Err(e) = files.write(at, &data) {
                            failed.push(((at / piece_len) as u32, e));
                        }
                    }
                    Ok(failed)
                })
                .await;
                match failed {
                    Ok(failed) => {
                        for (piece, e) in failed {
                            unwritten.insert(piece);
                            report(e);
                        }
                    }
                    Err(e) => report(e),
                }
                Ok(())
            }
            Job::Verify { piece } => {
                let checked = match unwritten.remove(&piece) {
                    true => Err(io::Error::other("a block of the piece was not written")),
                    false => blocking(move || files.check(piece)).await,
                };
                let answer = match checked {
                    Ok(passed) => {
                        let _ = notices.send(Notice::Checked { piece, passed });
                        Ok(passed)
                    }
                    Err(e) => {
                        report(e);
                        Err(())
                    }
                };
                peer.call(move |m, _, now| {
                    let _ = match answer {
                        Ok(passed) => m.piece_checked(now, piece, passed),
                        Err(()) => m.piece_lost(now, piece),
                    };
                })
                .await
            }
            Job::Read { conn, block } => {
                let read = blocking(move || {
                    let mut data = vec![0; block.length as usize];
                    let at = u64::from(block.index) * files.piece_len + u64::from(block.begin);
                    files.read(at, &mut data).map(|()| data)
                });
                match read.await {
                    // Refused if the peer cancelled it or was choked meanwhile.
                    Ok(data) => {
                        peer.call(move |m, _, now| {
                            let _ = m.send_block(now, conn, block, &data);
                        })
                        .await
                    }
                    Err(e) => {
                        report(e);
                        Ok(())
                    }
                }
            }
        };
        if answered.is_err() {
            return;
        }
    }
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

/// A torrent shared from a folder: one [`Session`] on a TCP listener, its pieces in
/// [`Files`].
pub struct TorrentPeer {
    peer: Peer<Node, TorrentHost>,
    notices: broadcast::Sender<Notice>,
    pieces: u32,
    peer_id: [u8; 20],
}

impl TorrentPeer {
    /// Starts sharing the torrent `metainfo` (a .torrent file's bytes) from `folder` on a
    /// TCP listener at `bind`: creates the missing files, checks the pieces on disk and
    /// announces those that match. `seed` seeds the session's randomness and peer id.
    pub async fn start(
        metainfo: Vec<u8>,
        folder: &Path,
        bind: SocketAddr,
        seed: u64,
    ) -> io::Result<TorrentPeer> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        let meta = Metainfo::parse(&metainfo).map_err(|e| invalid(e.to_string()))?;
        let files = Arc::new(Files::new(&meta, folder)?);
        let pieces = files.piece_count();
        // The session checks that the torrent fits it before anything touches the disk.
        let (mut machine, peer_id) = build(metainfo.clone(), seed).await?;
        let checked = {
            let files = files.clone();
            blocking(move || {
                // Fresh files are all holes: reading them back would only zero-fill pages.
                if !files.create()? {
                    return Ok(Vec::new());
                }
                (0..files.piece_count())
                    .map(|p| files.check(p))
                    .collect::<io::Result<Vec<bool>>>()
            })
            .await?
        };
        for (p, _) in checked.iter().enumerate().filter(|(_, ok)| **ok) {
            machine
                .have_piece(Instant::ZERO, p as u32)
                .map_err(|e| invalid(e.to_string()))?;
        }
        let sockets = Sockets::tcp(bind).await?;
        let (notices, _) = broadcast::channel(NOTICES);
        let (jobs, rx) = mpsc::unbounded_channel();
        let piece_len = files.piece_len;
        let host = {
            let notices = notices.clone();
            move |handle: PeerHandle<Node, TorrentHost>| {
                tokio::spawn(disk(files, rx, handle, notices.clone()));
                TorrentHost {
                    jobs,
                    notices,
                    piece_len,
                }
            }
        };
        let peer = Peer::spawn_with(machine, host, sockets)?;
        Ok(TorrentPeer {
            peer,
            notices,
            pieces,
            peer_id,
        })
    }

    /// The peer id it sends in handshakes (and announces to trackers).
    pub fn peer_id(&self) -> [u8; 20] {
        self.peer_id
    }

    /// The TCP address peers dial.
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// Notices from now on.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Dials a peer.
    pub async fn add_peer(&self, addr: SocketAddr) -> Result<Result<ConnId, SessionError>, Gone> {
        let peer = PeerAddr::from(addr);
        self.peer.call(move |m, _, now| m.add_peer(now, peer)).await
    }

    /// Pieces had and pieces in the torrent.
    pub async fn progress(&self) -> Result<(u32, u32), Gone> {
        let pieces = self.pieces;
        self.peer
            .call(move |m, _, _| (m.picker().have_count(), pieces))
            .await
    }

    /// Pieces had, connected peers and the session's counters, at once.
    pub async fn status(&self) -> Result<(u32, usize, Stats), Gone> {
        self.peer
            .call(|m, _, _| (m.picker().have_count(), m.peer_count(), m.stats()))
            .await
    }

    /// The session's counters.
    pub async fn stats(&self) -> Result<Stats, Gone> {
        self.peer.call(|m, _, _| m.stats()).await
    }

    /// Waits until every piece is in, at most `limit`; whether it is.
    pub async fn wait_complete(&self, limit: Duration) -> bool {
        let mut notices = self.notices();
        if self.peer.call(|m, _, _| m.is_complete()).await == Ok(true) {
            return true;
        }
        tokio::time::timeout(limit, async {
            loop {
                match notices.recv().await {
                    Ok(Notice::Complete) => return true,
                    Err(broadcast::error::RecvError::Closed) => return false,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

/// Builds the session (7 MB) where it fits ([`on_large_stack`]), with a peer id drawn from
/// `seed`; the session and its peer id.
async fn build(metainfo: Vec<u8>, seed: u64) -> io::Result<(Box<Node>, [u8; 20])> {
    on_large_stack("bittorrent-session", move || {
        let mut peer_id = *b"-OL0001-000000000000";
        let mut rng = Rng::new(seed);
        for b in &mut peer_id[8..] {
            *b = b'0' + (rng.below(10) as u8);
        }
        Metainfo::parse(&metainfo)
            .map_err(|e| e.to_string())
            .and_then(|m| Node::from_metainfo(&m, peer_id, seed).map_err(|e| e.to_string()))
            .map(|node| (Box::new(node), peer_id))
    })
    .await?
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
