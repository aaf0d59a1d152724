//! Gnutella 0.6 servents on real sockets: the core machine ([`Servent`]) on the runtime
//! over TCP, a [`SharedFolder`] of files on disk as its library, uploads streamed from
//! those files when the machine asks for them (`Event::Upload`), and [`fetch`], the HTTP
//! client that downloads a file from a servent (HUGE v0.94 section 6.1,
//! `GET /uri-res/N2R?urn:sha1:...`) and checks its SHA-1.
//!
//! Everything of the protocol (handshakes, flooding, QRP, the HTTP heads) is the core
//! machine's and `overlay_core::gnutella::http`'s; this module moves bytes between them,
//! the sockets and the files.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlay_core::gnutella::http::{self, Limits};
use overlay_core::gnutella::{
    CloseReason, CommandError, Config, Event, Library, Role, Servent, SharedFile, Stats,
    UploadError, urn,
};
use overlay_core::machine::ConnId;
use overlay_core::{Instant, PeerAddr, QueryId};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::runtime::{Control, Gone, Host, Peer, PeerHandle, Sockets, on_large_stack};

/// The machine a host peer runs (1.1 MB, boxed): 64 connections (peers, leaves,
/// handshakes and uploads together) with the core's 4 KiB receive buffers (hits come in
/// messages of at most 2 KiB; a longer message is skipped, not fatal), 4096 GUIDs per
/// routing-table generation, and a 64 KiB outbox, which is also the largest upload chunk
/// ([`Servent::UPLOAD_CHUNK`]).
pub type Node = Servent<SharedFolder, 64, 4096, 4096, 65536>;

/// `User-Agent` of our downloads (the servent's own is in its [`Config`]).
pub const USER_AGENT: &str = concat!("overlay/", env!("CARGO_PKG_VERSION"));

/// Notices kept for a slow reader of [`GnutellaPeer::notices`] before the oldest are lost.
const NOTICES: usize = 256;
/// How long [`GnutellaPeer::connect`] waits at most: the runtime's 10 s dial and the
/// machine's 20 s handshake limit, with a margin.
const CONNECT_LIMIT: Duration = Duration::from_secs(35);
/// Bytes read from a file, or a socket, at a time.
const READ_CHUNK: usize = 64 * 1024;

/// One file of a [`SharedFolder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderFile {
    /// Its index in query hits and `GET /get/<index>/<name>`.
    pub index: u32,
    /// Its name, without directories.
    pub name: String,
    /// Its size when it was hashed.
    pub size: u64,
    /// Its SHA-1 when it was hashed.
    pub sha1: [u8; 20],
    /// Where to read it.
    pub path: PathBuf,
}

impl FolderFile {
    fn shared(&self) -> SharedFile<'_> {
        SharedFile {
            index: self.index,
            size: self.size,
            name: self.name.as_bytes(),
            sha1: Some(self.sha1),
        }
    }
}

/// Files on disk shared by a servent: each hashed once (SHA-1, for HUGE `urn:sha1:`
/// names), numbered from 0 in the order added, read again when someone downloads it.
#[derive(Clone, Debug, Default)]
pub struct SharedFolder {
    files: Vec<FolderFile>,
    by_sha1: HashMap<[u8; 20], usize>,
}

impl SharedFolder {
    /// Nothing shared.
    pub fn new() -> Self {
        Self::default()
    }

    /// The regular files in `dir` (and, with `recursive`, in its subdirectories; symbolic
    /// links to directories are not followed), sorted by path, hidden files (names that
    /// start with `.`) left out. Reads and hashes every file, so it blocks: call it from
    /// a blocking context. A file that cannot be read is skipped with a warning.
    pub fn scan(dir: &Path, recursive: bool) -> io::Result<Self> {
        let mut paths = Vec::new();
        collect(dir, recursive, &mut paths)?;
        paths.sort();
        let mut folder = SharedFolder::new();
        for path in paths {
            if let Err(e) = folder.add(&path) {
                tracing::warn!(path = %path.display(), error = %e, "not shared");
            }
        }
        Ok(folder)
    }

    /// Hashes the file at `path` and shares it under its file name; its index. A file
    /// already shared (the same SHA-1) keeps its first index.
    pub fn add(&mut self, path: &Path) -> io::Result<u32> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let (size, sha1) = hash_file(path)?;
        if let Some(&i) = self.by_sha1.get(&sha1) {
            return Ok(self.files[i].index);
        }
        let index = u32::try_from(self.files.len())
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "too many files"))?;
        self.by_sha1.insert(sha1, self.files.len());
        self.files.push(FolderFile {
            index,
            name,
            size,
            sha1,
            path: path.to_path_buf(),
        });
        Ok(index)
    }

    /// The shared files, by index.
    pub fn entries(&self) -> &[FolderFile] {
        &self.files
    }

    /// The file with this index.
    pub fn get(&self, index: u32) -> Option<&FolderFile> {
        self.files.get(index as usize)
    }

    /// How many files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether nothing is shared.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Bytes shared in all.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

impl Library for SharedFolder {
    fn files(&self) -> impl Iterator<Item = SharedFile<'_>> {
        self.files.iter().map(FolderFile::shared)
    }

    fn by_index(&self, index: u32) -> Option<SharedFile<'_>> {
        self.get(index).map(FolderFile::shared)
    }

    fn by_sha1(&self, sha1: &[u8; 20]) -> Option<SharedFile<'_>> {
        self.by_sha1.get(sha1).map(|&i| self.files[i].shared())
    }
}

fn collect(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if recursive {
                collect(&path, recursive, out)?;
            }
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// The size and SHA-1 of the file at `path`.
fn hash_file(path: &Path) -> io::Result<(u64, [u8; 20])> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
}

/// `urn:sha1:` and the base32 of `sha1` (HUGE section 2.3).
pub fn sha1_urn(sha1: &[u8; 20]) -> String {
    let mut text = [0u8; urn::SHA1_URN_LEN];
    // 41 bytes into 41 bytes cannot fail.
    let n = urn::write_sha1(sha1, &mut text).unwrap_or(0);
    String::from_utf8_lossy(&text[..n]).into_owned()
}

/// One result of a search, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Where to download it (the servent's address as its query hit gives it).
    pub addr: SocketAddr,
    /// Its index at that servent.
    pub index: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its name (bytes that are not UTF-8 replaced).
    pub name: String,
    /// Its SHA-1, from the result's HUGE `urn:sha1:` extension, if it has one.
    pub sha1: Option<[u8; 20]>,
    /// The servent id of the servent that has it (a Push is routed by it).
    pub servent_id: [u8; 16],
    /// The hops count of the query hit when it arrived: the servents that relayed it
    /// (0 when the servent we are connected to answered).
    pub hops: u8,
    /// The speed it announced, kbit/s.
    pub speed_kbps: u32,
}

/// Something a running servent did, for whoever watches ([`GnutellaPeer::notices`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A connection finished its handshake.
    Connected {
        /// The remote's address (its listening address when it sent one).
        addr: SocketAddr,
        /// What it is.
        role: Role,
    },
    /// A connection ended.
    Closed {
        /// The remote's address.
        addr: SocketAddr,
        /// Why.
        reason: CloseReason,
    },
    /// An upload started.
    UploadStarted {
        /// The file.
        index: u32,
        /// Its name.
        name: String,
        /// First byte.
        start: u64,
        /// Bytes to send.
        len: u64,
    },
    /// An upload sent all its bytes.
    UploadDone {
        /// The file.
        index: u32,
        /// Bytes sent.
        bytes: u64,
    },
    /// An upload stopped early.
    UploadFailed {
        /// The file.
        index: u32,
        /// Why.
        error: String,
    },
    /// A Push asked us to connect to `addr` and offer file `index` (not served: this host
    /// does not send `GIV`).
    Push {
        /// The file.
        index: u32,
        /// Who asked.
        addr: SocketAddr,
    },
}

/// Why a Gnutella command did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GnutellaError {
    /// The machine refused to start it.
    Refused(CommandError),
    /// The connection closed before its handshake finished.
    Closed(CloseReason),
    /// No outcome in time.
    Timeout,
    /// The peer stopped.
    Gone,
}

impl std::fmt::Display for GnutellaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GnutellaError::Refused(e) => write!(f, "{e}"),
            GnutellaError::Closed(reason) => {
                write!(f, "the connection closed: {reason}")
            }
            GnutellaError::Timeout => f.write_str("no answer in time"),
            GnutellaError::Gone => f.write_str("the peer has stopped"),
        }
    }
}

impl std::error::Error for GnutellaError {}

impl From<Gone> for GnutellaError {
    fn from(_: Gone) -> Self {
        GnutellaError::Gone
    }
}

/// A connection that is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Its id in the machine.
    pub conn: ConnId,
    /// The remote's address.
    pub addr: SocketAddr,
    /// What the remote is.
    pub role: Role,
}

type DialOutcome = Result<(SocketAddr, Role), CloseReason>;

/// The application side of a servent: passes hits to their searches and connection
/// outcomes to their callers, streams uploads from the shared files, and tells watchers.
pub struct GnutellaHost {
    handle: PeerHandle<Node, GnutellaHost>,
    searches: HashMap<QueryId, mpsc::UnboundedSender<Hit>>,
    dials: HashMap<ConnId, oneshot::Sender<DialOutcome>>,
    notices: broadcast::Sender<Notice>,
    uploaded: u64,
}

impl GnutellaHost {
    fn notice(&self, n: Notice) {
        // Nobody watching is fine.
        let _ = self.notices.send(n);
    }
}

impl Host<Node> for GnutellaHost {
    fn on_event(&mut self, _now: Instant, event: Event<'_>) -> Control {
        tracing::debug!(?event, "gnutella");
        match event {
            // Watchers hear of it before the caller does, so that a caller who reads the
            // notices after its `connect` returned finds this one there.
            Event::Connected { conn, peer, role } => {
                let addr = peer.socket_addr();
                self.notice(Notice::Connected { addr, role });
                if let Some(tx) = self.dials.remove(&conn) {
                    let _ = tx.send(Ok((addr, role)));
                }
            }
            Event::Closed { conn, peer, reason } => {
                let addr = peer.socket_addr();
                self.notice(Notice::Closed { addr, reason });
                if let Some(tx) = self.dials.remove(&conn) {
                    let _ = tx.send(Err(reason));
                }
            }
            Event::Hits { query, hops, hit } => {
                let Some(tx) = self.searches.get(&query) else {
                    return Control::Continue;
                };
                let addr = SocketAddr::from((hit.ip, hit.port));
                for h in hit.hits.iter() {
                    let found = Hit {
                        addr,
                        index: h.index,
                        size: u64::from(h.size),
                        name: String::from_utf8_lossy(h.name).into_owned(),
                        sha1: h.extensions.sha1_urns().next(),
                        servent_id: hit.servent_id,
                        hops,
                        speed_kbps: hit.speed,
                    };
                    if tx.send(found).is_err() {
                        // Its caller stopped listening.
                        self.searches.remove(&query);
                        break;
                    }
                }
            }
            Event::Upload {
                conn,
                index,
                start,
                len,
            } => {
                let handle = self.handle.clone();
                let notices = self.notices.clone();
                tokio::spawn(upload(handle, notices, conn, index, start, len));
            }
            Event::Push { index, addr } => self.notice(Notice::Push {
                index,
                addr: addr.socket_addr(),
            }),
        }
        Control::Continue
    }
}

/// Streams `len` bytes of file `index` from byte `start` into the machine's upload on
/// `conn`, a chunk at a time; on failure the connection is closed (the downloader sees a
/// short body).
async fn upload(
    handle: PeerHandle<Node, GnutellaHost>,
    notices: broadcast::Sender<Notice>,
    conn: ConnId,
    index: u32,
    start: u64,
    len: u64,
) {
    let sent = async {
        let file = handle
            .call(move |m, _, _| m.library().get(index).cloned())
            .await
            .map_err(|_| "the peer stopped".to_string())?
            .ok_or_else(|| format!("no file {index}"))?;
        let _ = notices.send(Notice::UploadStarted {
            index,
            name: file.name.clone(),
            start,
            len,
        });
        let read_error = |e: io::Error| format!("cannot read {}: {e}", file.path.display());
        let mut f = tokio::fs::File::open(&file.path)
            .await
            .map_err(read_error)?;
        f.seek(io::SeekFrom::Start(start))
            .await
            .map_err(read_error)?;
        let mut left = len;
        while left > 0 {
            let n = left.min(READ_CHUNK.min(Node::UPLOAD_CHUNK) as u64) as usize;
            let mut chunk = vec![0u8; n];
            f.read_exact(&mut chunk).await.map_err(read_error)?;
            let pushed = handle
                .call(move |m, h, now| {
                    let r = m.upload(now, conn, &chunk);
                    if r.is_ok() {
                        h.uploaded += chunk.len() as u64;
                    }
                    r
                })
                .await
                .map_err(|_| "the peer stopped".to_string())?;
            match pushed {
                Ok(()) => left -= n as u64,
                Err(UploadError::NoUpload) => {
                    return Err("the downloader closed the connection".to_string());
                }
                Err(e) => return Err(format!("the servent refused a chunk: {e:?}")),
            }
        }
        Ok(len)
    }
    .await;
    let notice = match sent {
        Ok(bytes) => Notice::UploadDone { index, bytes },
        Err(error) => {
            // Nothing more will come: end the upload (a no-op if it already closed).
            let _ = handle.call(move |m, _, now| m.disconnect(now, conn)).await;
            Notice::UploadFailed { index, error }
        }
    };
    let _ = notices.send(notice);
}

/// A search in progress: its hits as they arrive. Dropping it stops reporting them.
pub struct Search {
    query: QueryId,
    hits: mpsc::UnboundedReceiver<Hit>,
}

impl Search {
    /// The machine's id of the search.
    pub fn id(&self) -> QueryId {
        self.query
    }

    /// The next hit, or `None` once `until` passes.
    pub async fn next_before(&mut self, until: tokio::time::Instant) -> Option<Hit> {
        tokio::time::timeout_at(until, self.hits.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every hit that arrives within `wait`.
    pub async fn collect(mut self, wait: Duration) -> Vec<Hit> {
        let until = tokio::time::Instant::now() + wait;
        let mut hits = Vec::new();
        while let Some(h) = self.next_before(until).await {
            hits.push(h);
        }
        hits
    }
}

/// A servent's connections and counters at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Connections up.
    pub peers: Vec<Connection>,
    /// Hosts in the pong cache.
    pub known_hosts: usize,
    /// Files shared.
    pub files: usize,
    /// Bytes shared.
    pub shared_bytes: u64,
    /// File bytes handed to uploads.
    pub uploaded: u64,
    /// The machine's counters.
    pub stats: Stats,
}

/// A Gnutella servent on a TCP port: ultrapeer or leaf, as its [`Config`] says.
pub struct GnutellaPeer {
    peer: Peer<Node, GnutellaHost>,
    notices: broadcast::Sender<Notice>,
    servent_id: [u8; 16],
}

impl GnutellaPeer {
    /// Binds a TCP listener at `listen` and starts a servent sharing `folder` on it. The
    /// bound address (port 0 picks a free one) replaces `config.listen`: it is what pongs,
    /// query hits and the handshake's `Listen-IP` advertise, so bind the address others
    /// reach this servent at, not an unspecified one.
    pub async fn spawn(
        config: Config,
        folder: SharedFolder,
        seed: u64,
        listen: SocketAddr,
    ) -> io::Result<Self> {
        let sockets = Sockets::tcp(listen).await?;
        let local = sockets.local_addr()?;
        let config = Config {
            listen: PeerAddr::from(local),
            ..config
        };
        let machine = build(config, folder, seed).await?;
        let servent_id = machine.servent_id();
        let (notices, _) = broadcast::channel(NOTICES);
        let tx = notices.clone();
        let peer = Peer::spawn_with(
            machine,
            move |handle| GnutellaHost {
                handle,
                searches: HashMap::new(),
                dials: HashMap::new(),
                notices: tx,
                uploaded: 0,
            },
            sockets,
        )?;
        Ok(GnutellaPeer {
            peer,
            notices,
            servent_id,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// The servent id (the last 16 bytes of its query hits).
    pub fn servent_id(&self) -> [u8; 16] {
        self.servent_id
    }

    /// What the servent does from now on: connections, uploads, pushes. A reader that
    /// falls more than 256 notices behind loses the oldest.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Connects to the servent at `addr` and runs the 0.6 handshake; the connection once
    /// it is up.
    pub async fn connect(&self, addr: SocketAddr) -> Result<Connection, GnutellaError> {
        let rx = self
            .peer
            .call(move |m, h, now| {
                let conn = m.connect(now, PeerAddr::from(addr))?;
                let (tx, rx) = oneshot::channel();
                h.dials.insert(conn, tx);
                Ok((conn, rx))
            })
            .await?
            .map_err(GnutellaError::Refused)?;
        let (conn, rx) = rx;
        match tokio::time::timeout(CONNECT_LIMIT, rx).await {
            Err(_) => Err(GnutellaError::Timeout),
            Ok(Err(_)) => Err(GnutellaError::Gone),
            Ok(Ok(Err(reason))) => Err(GnutellaError::Closed(reason)),
            Ok(Ok(Ok((addr, role)))) => Ok(Connection { conn, addr, role }),
        }
    }

    /// Closes a connection (with Bye, if it is up).
    pub async fn disconnect(&self, conn: ConnId) -> Result<(), GnutellaError> {
        Ok(self
            .peer
            .call(move |m, _, now| m.disconnect(now, conn))
            .await?)
    }

    /// Starts a search for files matching the keywords of `criteria`, or, with `sha1`,
    /// for that file (`criteria` then goes along as text; HUGE queries by hash send `\`).
    pub async fn start_search(
        &self,
        criteria: &str,
        sha1: Option<[u8; 20]>,
    ) -> Result<Search, GnutellaError> {
        let criteria = criteria.as_bytes().to_vec();
        let (query, hits) = self
            .peer
            .call(move |m, h, now| {
                let query = m.search(now, &criteria, sha1.as_ref())?;
                h.searches.retain(|_, tx| !tx.is_closed());
                let (tx, rx) = mpsc::unbounded_channel();
                h.searches.insert(query, tx);
                Ok((query, rx))
            })
            .await?
            .map_err(GnutellaError::Refused)?;
        Ok(Search { query, hits })
    }

    /// Searches as [`GnutellaPeer::start_search`] does and collects the hits that arrive
    /// within `wait` (a flood has no end: the caller decides when it has heard enough).
    pub async fn search(
        &self,
        criteria: &str,
        sha1: Option<[u8; 20]>,
        wait: Duration,
    ) -> Result<Vec<Hit>, GnutellaError> {
        Ok(self.start_search(criteria, sha1).await?.collect(wait).await)
    }

    /// Sets the TTL of the next searches (at most the configured maximum, 7).
    pub async fn set_query_ttl(&self, ttl: u8) -> Result<(), GnutellaError> {
        Ok(self.peer.call(move |m, _, _| m.set_query_ttl(ttl)).await?)
    }

    /// Shares `folder` instead of what was shared, and tells the ultrapeers (a leaf
    /// sends its new QRP table).
    pub async fn share(&self, folder: SharedFolder) -> Result<(), GnutellaError> {
        Ok(self
            .peer
            .call(move |m, _, now| {
                *m.library_mut() = folder;
                m.library_changed(now);
            })
            .await?)
    }

    /// The connections up.
    pub async fn peers(&self) -> Result<Vec<Connection>, GnutellaError> {
        Ok(self.snapshot().await?.peers)
    }

    /// The machine's counters.
    pub async fn stats(&self) -> Result<Stats, GnutellaError> {
        Ok(self.peer.call(|m, _, _| m.stats()).await?)
    }

    /// Connections, counters and what is shared, now.
    pub async fn snapshot(&self) -> Result<Snapshot, GnutellaError> {
        Ok(self
            .peer
            .call(|m, h, _| Snapshot {
                peers: m
                    .peers()
                    .map(|(conn, addr, role)| Connection {
                        conn,
                        addr: addr.socket_addr(),
                        role,
                    })
                    .collect(),
                known_hosts: m.known_hosts(),
                files: m.library().len(),
                shared_bytes: m.library().bytes(),
                uploaded: h.uploaded,
                stats: m.stats(),
            })
            .await?)
    }

    /// Ends the servent at once: its connections close, nobody is told.
    pub fn kill(&self) {
        self.peer.kill();
    }
}

/// Builds the machine (1.9 MB) where it fits ([`on_large_stack`]).
async fn build(config: Config, folder: SharedFolder, seed: u64) -> io::Result<Box<Node>> {
    on_large_stack("gnutella-servent", move || {
        Box::new(Node::new(config, folder, seed))
    })
    .await
}

/// What to download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchTarget {
    /// The file with this SHA-1 (`/uri-res/N2R?urn:sha1:...`); what arrives is checked
    /// against it.
    Sha1([u8; 20]),
    /// The file at this index with this name, from a query hit (`/get/<index>/<name>`).
    Index {
        /// The index.
        index: u32,
        /// The name.
        name: String,
    },
}

/// A finished download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Bytes written.
    pub bytes: u64,
    /// Their SHA-1.
    pub sha1: [u8; 20],
    /// Whether it matched a SHA-1 known before (the one asked for, or the server's
    /// `X-Gnutella-Content-URN`).
    pub verified: bool,
    /// The server's `Server` header.
    pub server: Option<String>,
}

/// Why a download failed.
#[derive(Debug)]
pub enum FetchError {
    /// The server could not be reached.
    Connect(io::Error),
    /// Nothing happened for the allowed time, at this stage.
    Timeout(&'static str),
    /// A socket error during the transfer.
    Io(io::Error),
    /// The output file could not be written.
    File(PathBuf, io::Error),
    /// The request could not be written (a name that cannot be sent).
    Request(overlay_core::gnutella::WriteError),
    /// The server answered with this status (404: no such file, 503: busy).
    Status(u16, String),
    /// The response broke HTTP (or the server named another file than asked).
    BadResponse(String),
    /// The connection closed before the whole body came.
    Short {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The bytes are not the file asked for.
    Mismatch {
        /// The SHA-1 expected.
        expected: [u8; 20],
        /// The SHA-1 of what arrived.
        got: [u8; 20],
    },
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Connect(e) => write!(f, "cannot connect: {e}"),
            FetchError::Timeout(stage) => write!(f, "timed out {stage}"),
            FetchError::Io(e) => write!(f, "transfer failed: {e}"),
            FetchError::File(p, e) => write!(f, "cannot write {}: {e}", p.display()),
            FetchError::Request(e) => write!(f, "cannot write the request: {e}"),
            FetchError::Status(code, reason) => write!(f, "the server answered {code} {reason}"),
            FetchError::BadResponse(what) => write!(f, "bad response: {what}"),
            FetchError::Short { got, expected } => {
                write!(f, "the connection closed after {got} of {expected} bytes")
            }
            FetchError::Mismatch { expected, got } => write!(
                f,
                "the bytes are not the file asked for: SHA-1 {} instead of {}",
                sha1_urn(got),
                sha1_urn(expected)
            ),
        }
    }
}

impl std::error::Error for FetchError {}

/// Downloads `target` from the servent at `from` into `out` (written as `out.part`,
/// renamed when complete and, for a SHA-1 target, verified). Every wait (connecting,
/// the response head, each read of the body) is bounded by `stall`.
pub async fn fetch(
    from: SocketAddr,
    target: &FetchTarget,
    out: &Path,
    stall: Duration,
) -> Result<Fetched, FetchError> {
    let mut stream = tokio::time::timeout(stall, TcpStream::connect(from))
        .await
        .map_err(|_| FetchError::Timeout("connecting"))?
        .map_err(FetchError::Connect)?;
    let host = from.to_string();
    let name_len = match target {
        FetchTarget::Index { name, .. } => 3 * name.len(),
        FetchTarget::Sha1(_) => 0,
    };
    let mut req = vec![0u8; 512 + name_len];
    let mut w = match target {
        FetchTarget::Sha1(s) => http::get_sha1(&mut req, s),
        FetchTarget::Index { index, name } => http::get_index(&mut req, *index, name.as_bytes()),
    };
    w.header("Host", &host)
        .and_then(|w| w.header("User-Agent", USER_AGENT))
        .map_err(FetchError::Request)?;
    let n = w.finish().map_err(FetchError::Request)?;
    tokio::time::timeout(stall, stream.write_all(&req[..n]))
        .await
        .map_err(|_| FetchError::Timeout("sending the request"))?
        .map_err(FetchError::Io)?;

    // The head, read until it parses (at most `Limits::DEFAULT.max_total` bytes).
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let head = loop {
        let parsed = http::parse_response(&buf, Limits::DEFAULT)
            .map_err(|e| FetchError::BadResponse(e.to_string()))?;
        if let Some((resp, used)) = parsed {
            let bad = |e: http::HeadError| FetchError::BadResponse(e.to_string());
            break Head {
                code: resp.code,
                reason: String::from_utf8_lossy(resp.reason).into_owned(),
                length: resp.content_length().map_err(bad)?,
                range: resp.content_range().map_err(bad)?,
                urn: resp.content_urn().map_err(bad)?,
                server: resp
                    .server()
                    .map(|v| String::from_utf8_lossy(v.bytes()).into_owned()),
                used,
            };
        }
        let n = tokio::time::timeout(stall, stream.read(&mut chunk))
            .await
            .map_err(|_| FetchError::Timeout("waiting for the response"))?
            .map_err(FetchError::Io)?;
        if n == 0 {
            return Err(FetchError::BadResponse(
                "the connection closed before the response head".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let length = head
        .length
        .ok_or_else(|| FetchError::BadResponse("no Content-Length".into()))?;
    match head.code {
        http::code::OK => {}
        // We asked for no range: a 206 must still be the whole file.
        http::code::PARTIAL_CONTENT
            if head.range.is_some_and(|r| {
                r.range == Some((0, length.saturating_sub(1))) && r.total == Some(length)
            }) => {}
        code => return Err(FetchError::Status(code, head.reason)),
    }
    let expected = match target {
        FetchTarget::Sha1(s) => Some(*s),
        FetchTarget::Index { .. } => head.urn,
    };
    if let (Some(want), Some(named)) = (expected, head.urn)
        && want != named
    {
        return Err(FetchError::BadResponse(format!(
            "the server sends {} for {}",
            sha1_urn(&named),
            sha1_urn(&want)
        )));
    }

    let mut part = out.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = receive(&mut stream, &buf[head.used..], length, &part, stall).await;
    let result = result.and_then(|sha1| match expected {
        Some(want) if want != sha1 => Err(FetchError::Mismatch {
            expected: want,
            got: sha1,
        }),
        _ => Ok(sha1),
    });
    match result {
        Ok(sha1) => {
            tokio::fs::rename(&part, out)
                .await
                .map_err(|e| FetchError::File(out.to_path_buf(), e))?;
            Ok(Fetched {
                bytes: length,
                sha1,
                verified: expected.is_some(),
                server: head.server,
            })
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

/// The parts of a response head a download needs, owned.
struct Head {
    code: u16,
    reason: String,
    length: Option<u64>,
    range: Option<http::ContentRange>,
    urn: Option<[u8; 20]>,
    server: Option<String>,
    used: usize,
}

/// Writes `length` body bytes (`first`, then what the stream brings) to `path`; their
/// SHA-1.
async fn receive(
    stream: &mut TcpStream,
    first: &[u8],
    length: u64,
    path: &Path,
    stall: Duration,
) -> Result<[u8; 20], FetchError> {
    let file_error = |e| FetchError::File(path.to_path_buf(), e);
    let mut file = tokio::fs::File::create(path).await.map_err(file_error)?;
    let mut hasher = Sha1::new();
    let mut got = 0u64;
    let take = first
        .len()
        .min(usize::try_from(length).unwrap_or(usize::MAX));
    hasher.update(&first[..take]);
    file.write_all(&first[..take]).await.map_err(file_error)?;
    got += take as u64;
    let mut buf = vec![0u8; READ_CHUNK];
    while got < length {
        let want = buf
            .len()
            .min(usize::try_from(length - got).unwrap_or(usize::MAX));
        let n = tokio::time::timeout(stall, stream.read(&mut buf[..want]))
            .await
            .map_err(|_| FetchError::Timeout("receiving the file"))?
            .map_err(FetchError::Io)?;
        if n == 0 {
            return Err(FetchError::Short {
                got,
                expected: length,
            });
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).await.map_err(file_error)?;
        got += n as u64;
    }
    file.flush().await.map_err(file_error)?;
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("overlay-gnutella-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// FIPS 180 / RFC 3174: SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d.
    #[test]
    fn folders_hash_their_files_and_skip_hidden_ones() {
        let dir = temp_dir("scan");
        std::fs::write(dir.join("b abc.txt"), b"abc").unwrap();
        std::fs::write(dir.join("a empty.txt"), b"").unwrap();
        std::fs::write(dir.join(".hidden"), b"x").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub").join("deep.txt"), b"deep").unwrap();
        let flat = SharedFolder::scan(&dir, false).unwrap();
        let names: Vec<&str> = flat.entries().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a empty.txt", "b abc.txt"]);
        let abc = flat.get(1).unwrap();
        assert_eq!((abc.index, abc.size), (1, 3));
        assert_eq!(
            sha1_urn(&abc.sha1),
            "urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"
        );
        assert_eq!(flat.by_sha1(&abc.sha1).map(|f| f.index), Some(1));
        assert_eq!(flat.by_index(0).map(|f| f.size), Some(0));
        let deep = SharedFolder::scan(&dir, true).unwrap();
        assert_eq!(deep.len(), 3);
        assert_eq!(deep.get(2).unwrap().name, "deep.txt");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Downloads by SHA-1 and by index from a servent on loopback; a file that shrank
    /// after it was hashed ends its upload early, and the download says so and leaves no
    /// file behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_stream_files_and_downloads_check_them() {
        let dir = temp_dir("upload");
        let share = dir.join("share");
        std::fs::create_dir(&share).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(share.join("big one.bin"), &big).unwrap();
        std::fs::write(share.join("small.txt"), b"small").unwrap();
        let folder = SharedFolder::scan(&share, false).unwrap();
        let big_sha1 = folder.get(0).unwrap().sha1;
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let config = Config::new(Role::Leaf, local.into());
        let servent = GnutellaPeer::spawn(config, folder, 1, local).await.unwrap();
        let mut notices = servent.notices();
        let limit = Duration::from_secs(5);

        let out = dir.join("by-sha1");
        let got = fetch(servent.addr(), &FetchTarget::Sha1(big_sha1), &out, limit)
            .await
            .unwrap();
        assert_eq!(
            (got.bytes, got.sha1, got.verified),
            (200_000, big_sha1, true)
        );
        assert_eq!(std::fs::read(&out).unwrap(), big);

        let by_index = FetchTarget::Index {
            index: 1,
            name: "small.txt".into(),
        };
        let out = dir.join("by-index");
        let got = fetch(servent.addr(), &by_index, &out, limit).await.unwrap();
        assert!(got.verified, "checked against X-Gnutella-Content-URN");
        assert_eq!(std::fs::read(&out).unwrap(), b"small");

        let missing = FetchTarget::Sha1([7; 20]);
        let err = fetch(servent.addr(), &missing, &dir.join("none"), limit).await;
        assert!(matches!(err, Err(FetchError::Status(404, _))), "{err:?}");

        std::fs::write(share.join("big one.bin"), &big[..1000]).unwrap();
        let out = dir.join("short");
        let err = fetch(servent.addr(), &FetchTarget::Sha1(big_sha1), &out, limit).await;
        assert!(
            matches!(err, Err(FetchError::Short { got, expected: 200_000 }) if got <= 1000),
            "{err:?}"
        );
        assert!(!out.exists() && !dir.join("short.part").exists());
        let mut seen = Vec::new();
        while let Ok(Ok(n)) = tokio::time::timeout(limit, notices.recv()).await {
            let failed = matches!(n, Notice::UploadFailed { .. });
            seen.push(n);
            if failed {
                break;
            }
        }
        assert!(
            matches!(seen.last(), Some(Notice::UploadFailed { index: 0, .. })),
            "{seen:?}"
        );
        let s = servent.snapshot().await.unwrap();
        assert_eq!(s.stats.uploads, 3);
        assert_eq!(s.uploaded, 200_000 + 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
