//! Gnutella 0.6 for JavaScript: [`GnutellaServent`] wraps `overlay_core::gnutella::Servent`
//! (see docs/gnutella.md), a stream protocol.
//!
//! The caller owns the connections (TCP in Node; in a browser, any reliable stream it can
//! open). The servent asks for them with `connect` outputs (dial, then report `connected`
//! or `closed` for that id), writes with `transmit` and ends them with `close`; the caller
//! reports what it accepted (`accepted`, which names the connection), what arrived
//! (`received`) and what closed (`closed`). Shared files are a list the caller gives
//! (`share`); their bytes stay with the caller, which streams them with `upload` when an
//! `upload` event asks.

use crate::common::{
    Driver, OverlayError, conn_js, conn_rust, hex_bytes, hex_id, hex20, interval, invalid, js,
    peer, query_js, rng_seed, rust, stream_output,
};
use overlay_bindings::Refusal;
use overlay_core::gnutella::{CloseReason, Config, Event, Library, Role, Servent, SharedFile};
use serde::{Deserialize, Serialize};
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;

/// Connections at once (handshakes, peers, leaves and uploads together).
pub const LINKS: usize = 32;

/// The machine a `GnutellaServent` wraps.
pub type Machine = Servent<SharedFiles, LINKS>;

/// One shared file: what query hits describe. Its bytes stay with the caller.
#[derive(Clone, Debug, Deserialize, Tsify)]
#[serde(deny_unknown_fields)]
pub struct GnutellaFile {
    /// Its index, stable while it is shared (query hits and `GET /get/<index>/` use it).
    pub index: u32,
    /// Its size in bytes.
    pub size: f64,
    /// Its name without directories.
    pub name: String,
    /// Its SHA-1 in hex (HUGE `urn:sha1:`), if known.
    #[serde(default)]
    #[tsify(optional)]
    pub sha1: Option<String>,
}

/// A shared file, checked, in the shape core reads.
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
        let bad = |why: &str| invalid(format!("file {:?}: {why}", f.name));
        if f.name.is_empty() || f.name.contains(['\0', '/']) {
            return Err(bad("a name must be non-empty, without NUL or '/'"));
        }
        if !(0.0..=f64::from(u32::MAX)).contains(&f.size) || f.size.fract() != 0.0 {
            return Err(bad("a size is a whole number of bytes below 4 GiB"));
        }
        let sha1 = f.sha1.as_deref().map(|s| hex20(s, "a SHA-1")).transpose()?;
        Ok(Shared {
            index: f.index,
            size: f.size as u64,
            name: f.name,
            sha1,
        })
    }
}

/// The files a servent shares.
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
#[derive(Clone, Copy, Debug, Serialize, Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
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

/// Settings: the role and listening address are required, the rest default to the
/// deployed network's values for the role.
#[derive(Clone, Debug, Deserialize, Tsify)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GnutellaConfig {
    /// Ultrapeer or leaf.
    pub role: GnutellaRole,
    /// Where we accept connections, as pongs, query hits and `Listen-IP` advertise it.
    pub listen: String,
    /// Connections to ultrapeers (or flat peers) accepted in all.
    #[serde(default)]
    #[tsify(optional)]
    pub max_peers: Option<u8>,
    /// Leaves an ultrapeer accepts.
    #[serde(default)]
    #[tsify(optional)]
    pub max_leaves: Option<u8>,
    /// TTL of our own queries.
    #[serde(default)]
    #[tsify(optional)]
    pub query_ttl: Option<u8>,
    /// Results per query hit at most.
    #[serde(default)]
    #[tsify(optional)]
    pub max_results: Option<u8>,
    /// A connection still in its handshake after this many milliseconds is closed.
    #[serde(default)]
    #[tsify(optional)]
    pub handshake_timeout_ms: Option<u64>,
}

impl GnutellaConfig {
    fn to_config(&self) -> Result<Config, OverlayError> {
        let role = match self.role {
            GnutellaRole::Ultrapeer => Role::Ultrapeer,
            GnutellaRole::Leaf => Role::Leaf,
        };
        let c = Config::new(role, peer(&self.listen)?);
        Ok(Config {
            max_peers: self.max_peers.unwrap_or(c.max_peers),
            max_leaves: self.max_leaves.unwrap_or(c.max_leaves),
            query_ttl: self.query_ttl.unwrap_or(c.query_ttl),
            max_results: self.max_results.unwrap_or(c.max_results),
            handshake_timeout: match self.handshake_timeout_ms {
                Some(ms) => interval(ms, "handshakeTimeoutMs")?,
                None => c.handshake_timeout,
            },
            ..c
        })
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, Serialize, Tsify)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum GnutellaCloseReason {
    /// The remote end closed it.
    Remote,
    /// It could not be established.
    Unreachable,
    /// The remote refused the handshake with this status code.
    Refused { code: u16 },
    /// We refused the remote (wrong role, no slot, bad headers).
    Unsuitable,
    /// A Bye descriptor with this code.
    Bye { code: u16 },
    /// The handshake or an upload stalled.
    Timeout,
    /// The remote broke the protocol.
    Protocol,
    /// We closed it.
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
#[derive(Clone, Debug, Serialize, Tsify)]
#[tsify(missing_as_null)]
pub struct GnutellaResult {
    /// The file's index at the responder.
    pub index: u32,
    /// Its size.
    pub size: u64,
    /// Its name.
    pub name: String,
    /// Its SHA-1 in hex, if the hit carried one.
    pub sha1: Option<String>,
}

/// What a servent reports; connection ids are those of the outputs and inputs.
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum GnutellaEvent {
    /// A connection finished its handshake; `role` is the remote's.
    Connected {
        conn: f64,
        peer: String,
        role: GnutellaRole,
    },
    /// A connection ended (no `closed` report is due for it).
    Closed {
        conn: f64,
        peer: String,
        reason: GnutellaCloseReason,
    },
    /// A query hit for our search `query`, `hops` away, from the servent at `from`.
    Hits {
        query: f64,
        hops: u8,
        from: String,
        speed_kbps: u32,
        servent_id: String,
        results: Vec<GnutellaResult>,
    },
    /// A download asks for `length` bytes of file `index` from `start`: stream them with
    /// `upload` (at most `GnutellaServent.uploadChunk` bytes per call).
    Upload {
        conn: f64,
        index: u32,
        start: u64,
        length: u64,
    },
    /// A push request for file `index`: the caller may dial `to` and offer the file.
    Push { index: u32, to: String },
}

impl From<Event<'_>> for GnutellaEvent {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Connected { conn, peer, role } => GnutellaEvent::Connected {
                conn: conn_js(conn),
                peer: peer.to_string(),
                role: role.into(),
            },
            Event::Closed { conn, peer, reason } => GnutellaEvent::Closed {
                conn: conn_js(conn),
                peer: peer.to_string(),
                reason: reason.into(),
            },
            Event::Hits { query, hops, hit } => GnutellaEvent::Hits {
                query: query_js(query),
                hops,
                from: overlay_core::PeerAddr::v4(hit.ip, hit.port).to_string(),
                speed_kbps: hit.speed,
                servent_id: hex_bytes(&hit.servent_id),
                results: hit
                    .hits
                    .iter()
                    .map(|h| GnutellaResult {
                        index: h.index,
                        size: h.size.into(),
                        name: String::from_utf8_lossy(h.name).into_owned(),
                        sha1: h.extensions.sha1_urns().next().map(|s| hex_bytes(&s)),
                    })
                    .collect(),
            },
            Event::Upload {
                conn,
                index,
                start,
                len,
            } => GnutellaEvent::Upload {
                conn: conn_js(conn),
                index,
                start,
                length: len,
            },
            Event::Push { index, addr } => GnutellaEvent::Push {
                index,
                to: addr.to_string(),
            },
        }
    }
}

stream_output!(
    /// One output of a servent.
    GnutellaOutput,
    GnutellaEvent
);

/// One connected peer or leaf.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct GnutellaPeer {
    /// The connection.
    pub conn: f64,
    /// The remote.
    pub addr: String,
    /// Its role.
    pub role: GnutellaRole,
}

/// A servent's state and counters.
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct GnutellaStatus {
    /// Our servent id (16 bytes, hex).
    pub servent_id: String,
    /// Our role.
    pub role: GnutellaRole,
    /// The connections past their handshake.
    pub peers: Vec<GnutellaPeer>,
    /// Hosts known from pongs and headers.
    pub known_hosts: usize,
    /// Files shared.
    pub shared_files: usize,
    /// Queries received.
    pub queries_received: u64,
    /// Queries sent (ours and forwarded).
    pub queries_sent: u64,
    /// Descriptors dropped as duplicates.
    pub duplicates: u64,
    /// Query hits we answered with.
    pub hits_sent: u64,
    /// Query hits routed back for others.
    pub hits_forwarded: u64,
    /// Query hits for our searches.
    pub hits_received: u64,
    /// Malformed input (dropped, or the connection closed).
    pub malformed: u64,
    /// Descriptors dropped because a connection's outbox was full.
    pub outbox_full: u64,
    /// Connections refused.
    pub refused: u64,
    /// Uploads started.
    pub uploads: u64,
}

/// A Gnutella 0.6 servent (ultrapeer or leaf). Report what happens on its connections,
/// act on what `pollOutput` gives until it says `wait`.
#[wasm_bindgen]
pub struct GnutellaServent {
    driver: Driver<Machine>,
}

#[wasm_bindgen]
impl GnutellaServent {
    /// A servent sharing nothing yet, with no connections. `seed` seeds its random
    /// generator (servent id, GUIDs).
    #[wasm_bindgen(constructor)]
    pub fn new(config: Ts<GnutellaConfig>, seed: f64) -> Result<GnutellaServent, OverlayError> {
        let config = rust(config)?.to_config()?;
        Ok(GnutellaServent {
            driver: Driver::new(Machine::new(
                config,
                SharedFiles::default(),
                rng_seed(seed)?,
            )),
        })
    }

    /// The most bytes one `upload` call takes.
    #[wasm_bindgen(getter = uploadChunk)]
    pub fn upload_chunk() -> usize {
        Machine::UPLOAD_CHUNK
    }

    /// Replaces the shared files (query hits and uploads follow the new list; ultrapeers
    /// get the new QRP table).
    pub fn share(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        files: Vec<Ts<GnutellaFile>>,
    ) -> Result<(), OverlayError> {
        let files = files
            .into_iter()
            .map(|f| Shared::try_from(rust(f)?))
            .collect::<Result<Vec<_>, _>>()?;
        let mut indices: Vec<u32> = files.iter().map(|f| f.index).collect();
        indices.sort_unstable();
        if let Some(w) = indices.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("two files have index {}", w[0])));
        }
        self.driver.run(now_us, |m, now| {
            m.library_mut().0 = files;
            m.library_changed(now);
            Ok(())
        })
    }

    /// Reports a connection the caller accepted from `peer`; returns its id (negative).
    pub fn accepted(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        peer: &str,
    ) -> Result<f64, OverlayError> {
        self.driver.accepted(now_us, peer)
    }

    /// Reports that the dial the servent asked for (`connect`) succeeded.
    pub fn connected(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
    ) -> Result<(), OverlayError> {
        self.driver.connected(now_us, conn)
    }

    /// Hands it bytes that arrived on `conn`.
    pub fn received(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
        bytes: &[u8],
    ) -> Result<(), OverlayError> {
        self.driver.received(now_us, conn, bytes)
    }

    /// Reports that `conn` closed (or that its dial failed).
    pub fn closed(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
    ) -> Result<(), OverlayError> {
        self.driver.closed(now_us, conn)
    }

    /// Its next output; call until `wait`.
    #[wasm_bindgen(js_name = pollOutput)]
    pub fn poll_output(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
    ) -> Result<Ts<GnutellaOutput>, OverlayError> {
        js(&self
            .driver
            .poll::<_, GnutellaOutput>(now_us, |e| e.into())?)
    }

    /// Connects to the servent at `to`: a `connect` output with the returned id follows.
    pub fn connect(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        to: &str,
    ) -> Result<f64, OverlayError> {
        let to = peer(to)?;
        self.driver
            .run(now_us, |m, now| Ok(conn_js(m.connect(now, to)?)))
    }

    /// Closes connection `conn` (a Bye to a peer; a `close` output follows).
    pub fn disconnect(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
    ) -> Result<(), OverlayError> {
        let conn = conn_rust(conn)?;
        self.driver.run(now_us, |m, now| {
            m.disconnect(now, conn);
            Ok(())
        })
    }

    /// Floods a query for `criteria` (keywords), or for the file with SHA-1 `sha1` (hex):
    /// `hits` events with the returned id follow as answers arrive.
    pub fn search(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        criteria: &str,
        sha1: Option<String>,
    ) -> Result<f64, OverlayError> {
        let sha1 = sha1.map(|s| hex_id(&s, "a SHA-1")).transpose()?;
        self.driver.run(now_us, |m, now| {
            let query = m.search(now, criteria.as_bytes(), sha1.as_ref().map(|s| &s.0))?;
            Ok(query_js(query))
        })
    }

    /// Streams the next bytes of the upload on `conn` (at most `uploadChunk` per call).
    pub fn upload(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
        bytes: &[u8],
    ) -> Result<(), OverlayError> {
        let conn = conn_rust(conn)?;
        self.driver.run(now_us, |m, now| {
            let chunk = Machine::UPLOAD_CHUNK;
            Ok(m.upload(now, conn, bytes)
                .map_err(|e| Refusal::upload(e, chunk))?)
        })
    }

    /// Its state and counters.
    pub fn status(&self) -> Result<Ts<GnutellaStatus>, OverlayError> {
        let m = self.driver.machine();
        let s = m.stats();
        js(&GnutellaStatus {
            servent_id: hex_bytes(&m.servent_id()),
            role: m.config().role.into(),
            peers: m
                .peers()
                .map(|(conn, addr, role)| GnutellaPeer {
                    conn: conn_js(conn),
                    addr: addr.to_string(),
                    role: role.into(),
                })
                .collect(),
            known_hosts: m.known_hosts(),
            shared_files: m.library().0.len(),
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
        })
    }
}
