//! Gnutella 0.6 for Kotlin and Swift: [`GnutellaServent`] wraps
//! `overlay_core::gnutella::Servent` (see docs/gnutella.md), a stream protocol.
//!
//! The app owns the TCP connections. The servent asks for them with `Connect` outputs
//! (dial, then report `connected` or `closed` for that id), writes with `Transmit` and
//! ends them with `Close`; the app reports what it accepted (`accepted`, which names the
//! connection), what arrived (`received`) and what closed (`closed`). Shared files are a
//! list the app gives (`share`); their bytes stay with the app, which streams them with
//! `upload` when an `Upload` event asks.

use crate::common::{Driver, OverlayError, SocketAddress, bytes20, id, peer, stream_output};
use overlay_bindings::Refusal;
use overlay_core::gnutella::{CloseReason, Config, Event, Library, Role, Servent, SharedFile};
use overlay_core::{ConnId, Duration};
use std::sync::Arc;

/// Connections at once (handshakes, peers, leaves and uploads together).
pub const LINKS: usize = 32;

/// The machine a `GnutellaServent` wraps.
pub type Machine = Servent<SharedFiles, LINKS>;

/// The most bytes one `upload` call takes.
#[uniffi::export]
pub fn gnutella_upload_chunk() -> u32 {
    Machine::UPLOAD_CHUNK as u32
}

/// One shared file: what query hits describe. Its bytes stay with the app.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct GnutellaFile {
    /// Its index, stable while it is shared (query hits and `GET /get/<index>/` use it).
    pub index: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its name without directories.
    pub name: String,
    /// Its SHA-1 (20 bytes; HUGE `urn:sha1:`), if known.
    pub sha1: Option<Vec<u8>>,
}

/// A shared file, checked and in the shape core reads.
struct Shared {
    index: u32,
    size: u64,
    name: String,
    sha1: Option<[u8; 20]>,
}

impl TryFrom<GnutellaFile> for Shared {
    type Error = OverlayError;

    /// Refuses what Gnutella cannot describe (a query hit's name is NUL-terminated and has
    /// no directories; its size is 32 bits), which core would otherwise leave out of every
    /// hit without a word.
    fn try_from(f: GnutellaFile) -> Result<Self, OverlayError> {
        let bad = |why: &str| OverlayError::InvalidArgument(format!("file {:?}: {why}", f.name));
        if f.name.is_empty() || f.name.contains(['\0', '/']) {
            return Err(bad("a name must be non-empty, without NUL or '/'"));
        }
        if f.size > u64::from(u32::MAX) {
            return Err(bad("Gnutella describes files below 4 GiB"));
        }
        let sha1 = f
            .sha1
            .as_deref()
            .map(|s| bytes20(s, "a SHA-1"))
            .transpose()?;
        Ok(Shared {
            index: f.index,
            size: f.size,
            name: f.name,
            sha1,
        })
    }
}

/// The files an app's servent shares.
#[derive(Default)]
pub struct SharedFiles(Vec<Shared>);

impl Library for SharedFiles {
    fn files(&self) -> impl Iterator<Item = SharedFile<'_>> {
        self.0.iter().map(|f| SharedFile {
            index: f.index,
            size: f.size,
            name: f.name.as_bytes(),
            sha1: f.sha1,
        })
    }
}

/// Which tier a servent is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum GnutellaRole {
    /// Routes queries among ultrapeers and shields its leaves.
    Ultrapeer,
    /// Attaches to a few ultrapeers and never routes.
    Leaf,
}

impl From<Role> for GnutellaRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Ultrapeer => GnutellaRole::Ultrapeer,
            Role::Leaf => GnutellaRole::Leaf,
        }
    }
}

impl From<GnutellaRole> for Role {
    fn from(r: GnutellaRole) -> Self {
        match r {
            GnutellaRole::Ultrapeer => Role::Ultrapeer,
            GnutellaRole::Leaf => Role::Leaf,
        }
    }
}

/// Run-time settings; [`gnutella_config_default`] gives the deployed network's defaults
/// for a role.
#[derive(Clone, Debug, uniffi::Record)]
pub struct GnutellaConfig {
    /// Ultrapeer or leaf.
    pub role: GnutellaRole,
    /// Where we accept connections, as pongs, query hits and `Listen-IP` advertise it.
    pub listen: SocketAddress,
    /// Connections to ultrapeers (or flat peers) accepted in all.
    pub max_peers: u8,
    /// Leaves an ultrapeer accepts.
    pub max_leaves: u8,
    /// TTL of our own queries.
    pub query_ttl: u8,
    /// The largest TTL + hops accepted.
    pub max_ttl: u8,
    /// Results per query hit at most.
    pub max_results: u8,
    /// Speed announced in query hits, kbit/s.
    pub speed_kbps: u32,
    /// How long a GUID is remembered for duplicate suppression and reverse routing.
    pub route_lifetime_ms: u64,
    /// A connection still in its handshake after this long is closed.
    pub handshake_timeout_ms: u64,
}

impl GnutellaConfig {
    fn to_config(&self) -> Result<Config, OverlayError> {
        Ok(Config {
            max_peers: self.max_peers,
            max_leaves: self.max_leaves,
            query_ttl: self.query_ttl,
            max_ttl: self.max_ttl,
            max_results: self.max_results,
            speed_kbps: self.speed_kbps,
            route_lifetime: Duration::from_millis(self.route_lifetime_ms),
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            ..Config::new(self.role.into(), peer(&self.listen)?)
        })
    }
}

/// The default settings of `role`, listening on `listen`.
#[uniffi::export]
pub fn gnutella_config_default(
    role: GnutellaRole,
    listen: SocketAddress,
) -> Result<GnutellaConfig, OverlayError> {
    let c = Config::new(role.into(), peer(&listen)?);
    Ok(GnutellaConfig {
        role,
        listen,
        max_peers: c.max_peers,
        max_leaves: c.max_leaves,
        query_ttl: c.query_ttl,
        max_ttl: c.max_ttl,
        max_results: c.max_results,
        speed_kbps: c.speed_kbps,
        route_lifetime_ms: c.route_lifetime.as_millis(),
        handshake_timeout_ms: c.handshake_timeout.as_millis(),
    })
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum GnutellaCloseReason {
    /// The remote end closed it.
    Remote,
    /// It could not be established.
    Unreachable,
    /// The remote refused the handshake with `code` (503: full, or a leaf).
    Refused { code: u16 },
    /// The remote is not what we need (a leaf dialled by a leaf).
    Unsuitable,
    /// The remote said Bye with `code`.
    Bye { code: u16 },
    /// The handshake did not finish in time.
    Timeout,
    /// The remote broke the protocol.
    Protocol,
    /// We closed it (`disconnect`).
    Local,
}

impl From<CloseReason> for GnutellaCloseReason {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::Remote => GnutellaCloseReason::Remote,
            CloseReason::Unreachable => GnutellaCloseReason::Unreachable,
            CloseReason::Refused(code) => GnutellaCloseReason::Refused { code },
            CloseReason::Unsuitable => GnutellaCloseReason::Unsuitable,
            CloseReason::Bye(code) => GnutellaCloseReason::Bye { code },
            CloseReason::Timeout => GnutellaCloseReason::Timeout,
            CloseReason::Protocol => GnutellaCloseReason::Protocol,
            CloseReason::Local => GnutellaCloseReason::Local,
        }
    }
}

/// One result of a query hit.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct GnutellaResult {
    /// The file's index at the responder (`GET /get/<index>/<name>`).
    pub index: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its name, as the responder sent it (decoded as UTF-8, lossily).
    pub name: String,
    /// Its SHA-1 (20 bytes), when the result named one (`urn:sha1:`).
    pub sha1: Option<Vec<u8>>,
}

/// What a servent reports.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum GnutellaEvent {
    /// Connection `conn` to `peer` finished its handshake: the remote is `role`.
    Connected {
        conn: u64,
        peer: SocketAddress,
        role: GnutellaRole,
    },
    /// Connection `conn` to `peer` (up or still opening) ended.
    Closed {
        conn: u64,
        peer: SocketAddress,
        reason: GnutellaCloseReason,
    },
    /// A query hit for search `query`, `hops` away: download from `from` over HTTP
    /// (`servent_id`, 16 bytes, is whom a Push goes to).
    Hits {
        query: u64,
        hops: u8,
        from: SocketAddress,
        speed_kbps: u32,
        servent_id: Vec<u8>,
        results: Vec<GnutellaResult>,
    },
    /// An HTTP request on `conn` was accepted: stream `length` bytes of file `index` from
    /// byte `start` with `upload`; the servent closes `conn` after the last.
    Upload {
        conn: u64,
        index: u32,
        start: u64,
        length: u64,
    },
    /// A Push addressed to us: connect to `to` and offer file `index` (`GIV`).
    Push { index: u32, to: SocketAddress },
}

impl From<Event<'_>> for GnutellaEvent {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Connected { conn, peer, role } => GnutellaEvent::Connected {
                conn: conn.raw(),
                peer: peer.into(),
                role: role.into(),
            },
            Event::Closed { conn, peer, reason } => GnutellaEvent::Closed {
                conn: conn.raw(),
                peer: peer.into(),
                reason: reason.into(),
            },
            Event::Hits { query, hops, hit } => GnutellaEvent::Hits {
                query: query.0,
                hops,
                from: overlay_core::PeerAddr::v4(hit.ip, hit.port).into(),
                speed_kbps: hit.speed,
                servent_id: hit.servent_id.to_vec(),
                results: hit
                    .hits
                    .iter()
                    .map(|h| GnutellaResult {
                        index: h.index,
                        size: h.size.into(),
                        name: String::from_utf8_lossy(h.name).into_owned(),
                        sha1: h.extensions.sha1_urns().next().map(|s| s.to_vec()),
                    })
                    .collect(),
            },
            Event::Upload {
                conn,
                index,
                start,
                len,
            } => GnutellaEvent::Upload {
                conn: conn.raw(),
                index,
                start,
                length: len,
            },
            Event::Push { index, addr } => GnutellaEvent::Push {
                index,
                to: addr.into(),
            },
        }
    }
}

stream_output!(
    /// One output of a servent.
    GnutellaOutput,
    GnutellaEvent
);

/// A connection that finished its handshake.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct GnutellaPeer {
    /// The connection.
    pub conn: u64,
    /// The remote.
    pub addr: SocketAddress,
    /// What it is.
    pub role: GnutellaRole,
}

/// A servent's state and counters.
#[derive(Clone, Debug, uniffi::Record)]
pub struct GnutellaStatus {
    /// Our servent id (16 bytes: the last 16 bytes of our query hits).
    pub servent_id: Vec<u8>,
    /// Our role.
    pub role: GnutellaRole,
    /// Connections up (handshake done).
    pub peers: Vec<GnutellaPeer>,
    /// Hosts in the pong cache.
    pub known_hosts: u32,
    /// Files shared.
    pub shared_files: u32,
    /// Query descriptors received (duplicates included).
    pub queries_received: u64,
    /// Query descriptors sent (ours and forwarded).
    pub queries_sent: u64,
    /// Descriptors dropped as duplicates.
    pub duplicates: u64,
    /// Query hits we answered with.
    pub hits_sent: u64,
    /// Query hits passed back along the reverse path.
    pub hits_forwarded: u64,
    /// Query hits for our own searches.
    pub hits_received: u64,
    /// Payloads that failed to decode (dropped).
    pub malformed: u64,
    /// Messages dropped because the outbox was full.
    pub outbox_full: u64,
    /// Handshakes refused.
    pub refused: u64,
    /// Uploads started.
    pub uploads: u64,
}

/// A Gnutella 0.6 servent. Thread-safe; report what happens on its connections, write
/// what `poll_output` gives until it says `Wait`.
#[derive(uniffi::Object)]
pub struct GnutellaServent {
    driver: Driver<Machine>,
}

#[uniffi::export]
impl GnutellaServent {
    /// A servent sharing nothing (see `share`). `seed` seeds its random generator (GUIDs,
    /// its servent id).
    #[uniffi::constructor]
    pub fn new(config: GnutellaConfig, seed: u64) -> Result<Arc<Self>, OverlayError> {
        let config = config.to_config()?;
        let driver = Driver::build(|| Ok(Machine::new(config, SharedFiles::default(), seed)))?;
        Ok(Arc::new(GnutellaServent { driver }))
    }

    /// Replaces the shared files (ultrapeers learn the new QRP table). Refused, changing
    /// nothing, if a file cannot be described (a name with NUL or '/', 4 GiB or more) or
    /// two share an index.
    pub fn share(&self, now_us: u64, files: Vec<GnutellaFile>) -> Result<(), OverlayError> {
        let files = files
            .into_iter()
            .map(Shared::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let mut indices: Vec<u32> = files.iter().map(|f| f.index).collect();
        indices.sort_unstable();
        if let Some(w) = indices.windows(2).find(|w| w[0] == w[1]) {
            let why = format!("two files have index {}", w[0]);
            return Err(OverlayError::InvalidArgument(why));
        }
        self.driver.run(now_us, |m, now| {
            m.library_mut().0 = files;
            m.library_changed(now);
            Ok(())
        })
    }

    /// Reports a connection the app accepted from `peer`; returns its id.
    pub fn accepted(&self, now_us: u64, peer: SocketAddress) -> Result<u64, OverlayError> {
        self.driver.accepted(now_us, &peer)
    }

    /// Reports that the dial the servent asked for (`Connect`) succeeded.
    pub fn connected(&self, now_us: u64, conn: u64) -> Result<(), OverlayError> {
        self.driver.connected(now_us, conn)
    }

    /// Hands it bytes that arrived on `conn`.
    pub fn received(&self, now_us: u64, conn: u64, bytes: Vec<u8>) -> Result<(), OverlayError> {
        self.driver.received(now_us, conn, &bytes)
    }

    /// Reports that `conn` closed (or that its dial failed).
    pub fn closed(&self, now_us: u64, conn: u64) -> Result<(), OverlayError> {
        self.driver.closed(now_us, conn)
    }

    /// Its next output; call until `Wait`.
    pub fn poll_output(&self, now_us: u64) -> Result<GnutellaOutput, OverlayError> {
        self.driver.poll(now_us, |e| e.into())
    }

    /// Connects to a servent at `to`: a `Connect` output with the returned id follows.
    pub fn connect(&self, now_us: u64, to: SocketAddress) -> Result<u64, OverlayError> {
        let to = peer(&to)?;
        self.driver
            .run(now_us, |m, now| Ok(m.connect(now, to)?.raw()))
    }

    /// Says Bye on `conn` (if up) and closes it.
    pub fn disconnect(&self, now_us: u64, conn: u64) -> Result<(), OverlayError> {
        self.driver.run(now_us, |m, now| {
            m.disconnect(now, ConnId::from_raw(conn));
            Ok(())
        })
    }

    /// Searches for files whose names have every keyword of `criteria` or, with `sha1`
    /// (20 bytes), for that file. `Hits` events with the returned id follow for as long
    /// as the route lives (10 minutes): the app decides when it has enough.
    pub fn search(
        &self,
        now_us: u64,
        criteria: String,
        sha1: Option<Vec<u8>>,
    ) -> Result<u64, OverlayError> {
        let sha1 = sha1.map(|s| id(&s)).transpose()?;
        self.driver.run(now_us, |m, now| {
            Ok(
                m.search(now, criteria.as_bytes(), sha1.as_ref().map(|s| &s.0))?
                    .0,
            )
        })
    }

    /// Streams the next bytes (at most `gnutella_upload_chunk()`) of the upload on `conn`
    /// (`Upload` event); after the last byte the servent closes `conn`.
    pub fn upload(&self, now_us: u64, conn: u64, bytes: Vec<u8>) -> Result<(), OverlayError> {
        let conn = ConnId::from_raw(conn);
        self.driver.run(now_us, |m, now| {
            let chunk = Machine::UPLOAD_CHUNK;
            Ok(m.upload(now, conn, &bytes)
                .map_err(|e| Refusal::upload(e, chunk))?)
        })
    }

    /// Its state and counters.
    pub fn status(&self) -> Result<GnutellaStatus, OverlayError> {
        self.driver.read(|m| {
            let s = m.stats();
            GnutellaStatus {
                servent_id: m.servent_id().to_vec(),
                role: m.config().role.into(),
                peers: m
                    .peers()
                    .map(|(conn, addr, role)| GnutellaPeer {
                        conn: conn.raw(),
                        addr: addr.into(),
                        role: role.into(),
                    })
                    .collect(),
                known_hosts: m.known_hosts() as u32,
                shared_files: m.library().0.len() as u32,
                queries_received: s.queries_received,
                queries_sent: s.queries_sent,
                duplicates: s.duplicates,
                hits_sent: s.hits_sent,
                hits_forwarded: s.hits_forwarded,
                hits_received: s.hits_received,
                malformed: s.malformed,
                outbox_full: s.outbox_full,
                refused: s.refused,
                uploads: s.uploads,
            }
        })
    }
}
