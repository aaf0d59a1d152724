//! Gnutella 0.6 in C: `overlay_gnutella` wraps `overlay_core::gnutella::Servent` (see
//! docs/gnutella.md), the first stream protocol of these bindings.
//!
//! The caller owns the TCP connections. The servent asks for them with `CONNECT` outputs
//! (dial `addr`, report `overlay_gnutella_handle_connected` or `_closed` for `conn`),
//! sends on them with `TRANSMIT` (`conn` set) and ends them with `CLOSE`; the caller
//! reports what it accepted (`overlay_gnutella_handle_accepted`, naming the connection
//! with `OVERLAY_CONN_INBOUND` set), what arrived (`_handle_received`) and what closed
//! (`_handle_closed`). Shared files are a list the caller gives
//! (`overlay_gnutella_share`); their bytes stay with the caller, who streams them with
//! `overlay_gnutella_upload` when an `UPLOAD` event asks.

use crate::handle::{
    Handle, Protocol, boundary, bytes_arg, command, feed, free_handle, list_arg, new_handle,
    overlay_output, poll_output, read_arg, with_machine, write_out,
};
use crate::result::overlay_result;
use crate::types::{overlay_addr, overlay_id};
use overlay_core::gnutella::{
    CloseReason, CommandError, Config, Event, Library, Role, Servent, SharedFile, UploadError,
};
use overlay_core::{ConnId, Duration, Input};

/// The bit that marks a connection the caller accepted (`conn` of
/// `overlay_gnutella_handle_accepted`); the servent numbers the ones it opens without it.
pub const OVERLAY_CONN_INBOUND: u64 = 0x8000000000000000;
/// A buffer of this many bytes takes any output of a Gnutella handle (its outbox: a flood
/// of one query, an upload chunk); `overlay_gnutella_upload` takes at most this many bytes.
pub const OVERLAY_GNUTELLA_OUTPUT_CAP: usize = 65536;
/// Connections at once (handshakes, peers, leaves and uploads together).
pub const OVERLAY_GNUTELLA_LINKS: usize = 32;

/// The machine a handle wraps: the core's default capacities (32 connections with 4 KiB
/// receive buffers, 1024 routes per generation, a 64 KiB outbox).
pub type GnutellaNode = Servent<SharedList, OVERLAY_GNUTELLA_LINKS>;

const _: () = assert!(OVERLAY_GNUTELLA_OUTPUT_CAP == GnutellaNode::UPLOAD_CHUNK);

/// The files a C servent shares: names, sizes and hashes copied from the caller.
#[derive(Default)]
pub struct SharedList {
    files: Vec<OwnedFile>,
}

/// A shared file with its name owned.
struct OwnedFile {
    index: u32,
    size: u64,
    name: Vec<u8>,
    sha1: Option<[u8; 20]>,
}

impl Library for SharedList {
    fn files(&self) -> impl Iterator<Item = SharedFile<'_>> {
        self.files.iter().map(|f| SharedFile {
            index: f.index,
            size: f.size,
            name: &f.name,
            sha1: f.sha1,
        })
    }
}

/// A servent (opaque). Create with `overlay_gnutella_new`, free with
/// `overlay_gnutella_free`. One thread at a time may use it.
pub struct overlay_gnutella(Handle<overlay_gnutella>);

/// Which tier a servent is in.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum overlay_gnutella_role {
    /// Routes queries among ultrapeers and shields its leaves.
    #[default]
    Ultrapeer = 0,
    /// Attaches to a few ultrapeers and never routes.
    Leaf = 1,
}

impl From<Role> for overlay_gnutella_role {
    fn from(r: Role) -> Self {
        match r {
            Role::Ultrapeer => overlay_gnutella_role::Ultrapeer,
            Role::Leaf => overlay_gnutella_role::Leaf,
        }
    }
}

/// Run-time settings; `overlay_gnutella_config_default` fills in the defaults of the
/// deployed network for a role.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct overlay_gnutella_config {
    /// `OVERLAY_GNUTELLA_ROLE_ULTRAPEER` or `OVERLAY_GNUTELLA_ROLE_LEAF` (anything else is
    /// `INVALID_ARGUMENT`).
    pub role: u32,
    /// Where we accept connections, as pongs, query hits and `Listen-IP` advertise it.
    pub listen: overlay_addr,
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

impl overlay_gnutella_config {
    fn to_config(self) -> Result<Config, overlay_result> {
        let role = match self.role {
            0 => Role::Ultrapeer,
            1 => Role::Leaf,
            _ => return Err(overlay_result::InvalidArgument),
        };
        Ok(Config {
            max_peers: self.max_peers,
            max_leaves: self.max_leaves,
            query_ttl: self.query_ttl,
            max_ttl: self.max_ttl,
            max_results: self.max_results,
            speed_kbps: self.speed_kbps,
            route_lifetime: Duration::from_millis(self.route_lifetime_ms),
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            ..Config::new(role, self.listen.to_peer()?)
        })
    }
}

/// One shared file, as `overlay_gnutella_share` takes it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct overlay_gnutella_file {
    /// Its index, stable while it is shared (query hits and `GET /get/<index>/` use it).
    pub index: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its name without directories (`name_len` bytes; no NUL needed).
    pub name: *const u8,
    /// The name's length.
    pub name_len: usize,
    /// Whether `sha1` holds the file's SHA-1 (HUGE `urn:sha1:`).
    pub has_sha1: bool,
    /// The file's SHA-1.
    pub sha1: overlay_id,
}

/// Which event an `overlay_gnutella_event` is.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum overlay_gnutella_event_kind {
    /// Not an event (the output is not `EVENT`).
    #[default]
    None = 0,
    /// Connection `conn` to `addr` finished its handshake: the remote is `role`.
    Connected = 1,
    /// Connection `conn` to `addr` (up or still opening) ended: `close_reason`, and
    /// `code` for `REFUSED` and `BYE`.
    Closed = 2,
    /// A query hit for search `query`, `hops` away: download from `addr` (`speed_kbps`,
    /// `servent_id` for a Push). The buffer holds `count` results, each an
    /// `overlay_gnutella_result` followed by its name and a NUL.
    Hits = 3,
    /// An HTTP request on `conn` was accepted: stream `length` bytes of file `index` from
    /// byte `start` with `overlay_gnutella_upload`; the servent closes `conn` after the last.
    Upload = 4,
    /// A Push addressed to us: connect to `addr` and offer file `index` (`GIV`).
    Push = 5,
}

/// Why a connection ended.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum overlay_gnutella_close_reason {
    /// Not a `CLOSED` event.
    #[default]
    None = 0,
    /// The remote end closed it.
    Remote = 1,
    /// It could not be established.
    Unreachable = 2,
    /// The remote refused the handshake with `code` (503: full, or a leaf).
    Refused = 3,
    /// The remote is not what we need (a leaf dialled by a leaf).
    Unsuitable = 4,
    /// The remote said Bye with `code`.
    Bye = 5,
    /// The handshake did not finish in time.
    Timeout = 6,
    /// The remote broke the protocol.
    Protocol = 7,
    /// We closed it (`overlay_gnutella_disconnect`).
    Local = 8,
}

/// What a servent reports; the fields each kind sets are named on the kind, the others
/// are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct overlay_gnutella_event {
    /// Which event.
    pub kind: overlay_gnutella_event_kind,
    /// `CONNECTED`, `CLOSED`, `UPLOAD`: the connection.
    pub conn: u64,
    /// `CONNECTED`, `CLOSED`: the remote; `HITS`: where to download; `PUSH`: who asks.
    pub addr: overlay_addr,
    /// `CONNECTED`: what the remote is.
    pub role: overlay_gnutella_role,
    /// `CLOSED`: why.
    pub close_reason: overlay_gnutella_close_reason,
    /// `CLOSED` with `REFUSED` or `BYE`: the code the remote gave.
    pub code: u16,
    /// `HITS`: the search's id.
    pub query: u64,
    /// `HITS`: hops the hit travelled.
    pub hops: u32,
    /// `HITS`: results in the buffer.
    pub count: u32,
    /// `HITS`: the responder's speed, kbit/s.
    pub speed_kbps: u32,
    /// `HITS`: the responder's servent id (whom a Push goes to).
    pub servent_id: [u8; 16],
    /// `UPLOAD`, `PUSH`: the file's index.
    pub index: u32,
    /// `UPLOAD`: the first byte to send.
    pub start: u64,
    /// `UPLOAD`: how many bytes to send.
    pub length: u64,
}

/// One result of a `HITS` event, as it lies in the buffer: this header (40 bytes, no
/// padding), then `name_len` bytes of name and a NUL; the next result follows. Copy the
/// header out with `memcpy`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct overlay_gnutella_result {
    /// The file's size in bytes.
    pub size: u64,
    /// The file's index at the responder (`GET /get/<index>/<name>`).
    pub index: u32,
    /// The name's length, without its NUL.
    pub name_len: u32,
    /// The file's SHA-1, when `has_sha1`.
    pub sha1: overlay_id,
    /// Whether the result named its SHA-1 (`urn:sha1:`).
    pub has_sha1: bool,
    /// Zero.
    pub reserved: [u8; 3],
}

const _: () = assert!(size_of::<overlay_gnutella_result>() == 40);

impl overlay_gnutella_result {
    /// The header's bytes as the struct lays them out in C.
    fn to_c_bytes(self) -> [u8; 40] {
        let mut b = [0; 40];
        b[0..8].copy_from_slice(&self.size.to_ne_bytes());
        b[8..12].copy_from_slice(&self.index.to_ne_bytes());
        b[12..16].copy_from_slice(&self.name_len.to_ne_bytes());
        b[16..36].copy_from_slice(&self.sha1.bytes);
        b[36] = self.has_sha1.into();
        b
    }
}

/// One output of a Gnutella handle (see `overlay_output_kind`).
pub type overlay_gnutella_output = overlay_output<overlay_gnutella_event>;

/// A servent's state and counters, from `overlay_gnutella_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct overlay_gnutella_snapshot {
    /// Our servent id (the last 16 bytes of our query hits).
    pub servent_id: [u8; 16],
    /// Our role.
    pub role: overlay_gnutella_role,
    /// Connections up (handshake done).
    pub peers: u32,
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

impl From<CommandError> for overlay_result {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Full => overlay_result::Full,
            CommandError::NotConnected => overlay_result::NotConnected,
            CommandError::Invalid(_) => overlay_result::InvalidArgument,
        }
    }
}

impl From<UploadError> for overlay_result {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::NoUpload => overlay_result::NoUpload,
            UploadError::TooMuch | UploadError::TooLarge => overlay_result::InvalidArgument,
        }
    }
}

impl Protocol for overlay_gnutella {
    type Machine = GnutellaNode;
    type Event = overlay_gnutella_event;

    fn event(event: Event<'_>, data: &mut Vec<u8>) -> overlay_gnutella_event {
        use overlay_gnutella_close_reason as R;
        use overlay_gnutella_event_kind as K;
        let mut e = overlay_gnutella_event::default();
        match event {
            Event::Connected { conn, peer, role } => {
                (e.kind, e.conn, e.addr) =
                    (K::Connected, conn.raw(), overlay_addr::from_peer(peer));
                e.role = role.into();
            }
            Event::Closed { conn, peer, reason } => {
                (e.kind, e.conn, e.addr) = (K::Closed, conn.raw(), overlay_addr::from_peer(peer));
                (e.close_reason, e.code) = match reason {
                    CloseReason::Remote => (R::Remote, 0),
                    CloseReason::Unreachable => (R::Unreachable, 0),
                    CloseReason::Refused(code) => (R::Refused, code),
                    CloseReason::Unsuitable => (R::Unsuitable, 0),
                    CloseReason::Bye(code) => (R::Bye, code),
                    CloseReason::Timeout => (R::Timeout, 0),
                    CloseReason::Protocol => (R::Protocol, 0),
                    CloseReason::Local => (R::Local, 0),
                };
            }
            Event::Hits { query, hops, hit } => {
                (e.kind, e.query, e.hops) = (K::Hits, query.0, hops.into());
                let from = overlay_core::PeerAddr::v4(hit.ip, hit.port);
                (e.addr, e.speed_kbps) = (overlay_addr::from_peer(from), hit.speed);
                e.servent_id = hit.servent_id;
                for h in hit.hits.iter() {
                    let sha1 = h.extensions.sha1_urns().next();
                    let result = overlay_gnutella_result {
                        size: h.size.into(),
                        index: h.index,
                        name_len: h.name.len() as u32,
                        sha1: overlay_id {
                            bytes: sha1.unwrap_or_default(),
                        },
                        has_sha1: sha1.is_some(),
                        reserved: [0; 3],
                    };
                    data.extend_from_slice(&result.to_c_bytes());
                    data.extend_from_slice(h.name);
                    data.push(0);
                    e.count += 1;
                }
            }
            Event::Upload {
                conn,
                index,
                start,
                len,
            } => {
                (e.kind, e.conn, e.index) = (K::Upload, conn.raw(), index);
                (e.start, e.length) = (start, len);
            }
            Event::Push { index, addr } => {
                (e.kind, e.index, e.addr) = (K::Push, index, overlay_addr::from_peer(addr));
            }
        }
        e
    }

    fn wrap(handle: Handle<Self>) -> Self {
        overlay_gnutella(handle)
    }

    fn handle(&mut self) -> &mut Handle<Self> {
        &mut self.0
    }
}

/// Writes the default settings of `role` (`OVERLAY_GNUTELLA_ROLE_*`), listening on
/// `*listen`, to `*out`.
///
/// # Safety
///
/// `listen` must be `NULL` or point to an `overlay_addr`; `out` must be `NULL` or point to
/// a writable `overlay_gnutella_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_config_default(
    role: u32,
    listen: *const overlay_addr,
    out: *mut overlay_gnutella_config,
) -> overlay_result {
    boundary(|| {
        let role = match role {
            0 => Role::Ultrapeer,
            1 => Role::Leaf,
            _ => return Err(overlay_result::InvalidArgument),
        };
        // SAFETY: as the caller guarantees above.
        let listen = unsafe { read_arg(listen) }?;
        let c = Config::new(role, listen.to_peer()?);
        let config = overlay_gnutella_config {
            role: overlay_gnutella_role::from(role) as u32,
            listen,
            max_peers: c.max_peers,
            max_leaves: c.max_leaves,
            query_ttl: c.query_ttl,
            max_ttl: c.max_ttl,
            max_results: c.max_results,
            speed_kbps: c.speed_kbps,
            route_lifetime_ms: c.route_lifetime.as_millis(),
            handshake_timeout_ms: c.handshake_timeout.as_millis(),
        };
        // SAFETY: as the caller guarantees above.
        unsafe { write_out(out, config) }
    })
}

/// Creates a servent sharing nothing (see `overlay_gnutella_share`) and writes it to
/// `*out`. `seed` seeds its random generator (GUIDs, its servent id).
///
/// # Safety
///
/// `config` must be `NULL` or point to an initialised config; `out` must be `NULL` or
/// point to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_new(
    config: *const overlay_gnutella_config,
    seed: u64,
    out: *mut *mut overlay_gnutella,
) -> overlay_result {
    boundary(|| {
        // SAFETY: as the caller guarantees above.
        let config = unsafe { read_arg(config) }?.to_config()?;
        let make = || GnutellaNode::new(config, SharedList::default(), seed);
        // SAFETY: as the caller guarantees above.
        unsafe { new_handle(make, out) }
    })
}

/// Frees a servent; `NULL` is a no-op. Its connections are the caller's to close.
///
/// # Safety
///
/// `h` must be `NULL` or a servent from `overlay_gnutella_new` not yet freed; it must not
/// be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_free(h: *mut overlay_gnutella) {
    // SAFETY: as the caller guarantees above.
    unsafe { free_handle(h) }
}

/// Replaces the shared files with the `count` in `files` (names, sizes and hashes are
/// copied), rebuilds the QRP table and sends it to our ultrapeers. Drain afterwards.
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread; `files` must point to
/// `count` structs (or be `NULL` with `count` 0), each `name` to `name_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_share(
    h: *mut overlay_gnutella,
    now_us: u64,
    files: *const overlay_gnutella_file,
    count: usize,
) -> overlay_result {
    let run = |m: &mut GnutellaNode, now| {
        let mut list = Vec::new();
        let each = |f: overlay_gnutella_file| {
            // SAFETY: as the caller guarantees above.
            let name = unsafe { bytes_arg(f.name, f.name_len) }?.to_vec();
            list.push(OwnedFile {
                index: f.index,
                size: f.size,
                name,
                sha1: f.has_sha1.then_some(f.sha1.bytes),
            });
            Ok(())
        };
        // SAFETY: as the caller guarantees above.
        unsafe { list_arg(files, count, each) }?;
        m.library_mut().files = list;
        m.library_changed(now);
        Ok(())
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, now_us, run) }
}

/// Reports a connection the caller accepted from `*peer`, named `conn` (with
/// `OVERLAY_CONN_INBOUND` set, else `INVALID_ARGUMENT`; numbering them is the caller's).
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread; `peer` must be `NULL` or
/// point to an `overlay_addr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_handle_accepted(
    h: *mut overlay_gnutella,
    now_us: u64,
    conn: u64,
    peer: *const overlay_addr,
) -> overlay_result {
    let input = || {
        // SAFETY: as the caller guarantees above.
        let peer = unsafe { read_arg(peer) }?.to_peer()?;
        let conn = ConnId::from_raw(conn);
        if !conn.is_inbound() {
            return Err(overlay_result::InvalidArgument);
        }
        Ok(Input::Accepted { conn, peer })
    };
    // SAFETY: as the caller guarantees above.
    unsafe { feed(h, now_us, input) }
}

/// Reports that the connection `conn` the servent asked for (`CONNECT`) is established.
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_handle_connected(
    h: *mut overlay_gnutella,
    now_us: u64,
    conn: u64,
) -> overlay_result {
    let conn = ConnId::from_raw(conn);
    // SAFETY: as the caller guarantees above.
    unsafe { feed(h, now_us, || Ok(Input::Connected { conn })) }
}

/// Hands bytes that arrived on `conn` to the servent, in order (any split will do).
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread; `bytes` must point to
/// `len` readable bytes (or be `NULL` with `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_handle_received(
    h: *mut overlay_gnutella,
    now_us: u64,
    conn: u64,
    bytes: *const u8,
    len: usize,
) -> overlay_result {
    let input = || {
        // SAFETY: as the caller guarantees above.
        let bytes = unsafe { bytes_arg(bytes, len) }?;
        Ok(Input::Received {
            conn: ConnId::from_raw(conn),
            bytes,
        })
    };
    // SAFETY: as the caller guarantees above.
    unsafe { feed(h, now_us, input) }
}

/// Reports that `conn` closed, was reset, or could not be established.
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_handle_closed(
    h: *mut overlay_gnutella,
    now_us: u64,
    conn: u64,
) -> overlay_result {
    let conn = ConnId::from_raw(conn);
    // SAFETY: as the caller guarantees above.
    unsafe { feed(h, now_us, || Ok(Input::Closed { conn })) }
}

/// Writes the servent's next output to `*out` and its bytes to `buf` (see
/// `overlay_output_kind`; `TRANSMIT`, `CONNECT` and `CLOSE` name a connection). Call until
/// the kind is `WAIT`. A buffer of `OVERLAY_GNUTELLA_OUTPUT_CAP` bytes takes any output;
/// a smaller one that does not gets `OVERLAY_RESULT_BUFFER_TOO_SMALL`, `out->len` set to
/// the length needed, and the output kept for the next call.
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread; `buf` must point to
/// `cap` writable bytes (or be `NULL` with `cap` 0); `out` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_poll_output(
    h: *mut overlay_gnutella,
    now_us: u64,
    buf: *mut u8,
    cap: usize,
    out: *mut overlay_output<overlay_gnutella_event>,
) -> overlay_result {
    // SAFETY: as the caller guarantees above.
    unsafe { poll_output(h, now_us, buf, cap, out) }
}

/// Dials `*peer` (a `CONNECT` output follows) and runs the 0.6 handshake; `CONNECTED` or
/// `CLOSED` with the id written to `*conn` follows.
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread; `peer` must be `NULL` or
/// point to an `overlay_addr`; `conn` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_connect(
    h: *mut overlay_gnutella,
    now_us: u64,
    peer: *const overlay_addr,
    conn: *mut u64,
) -> overlay_result {
    let run = |m: &mut GnutellaNode, now| {
        // SAFETY: as the caller guarantees above.
        let peer = unsafe { read_arg(peer) }?.to_peer()?;
        if conn.is_null() {
            return Err(overlay_result::NullArgument);
        }
        let id = m.connect(now, peer)?;
        // SAFETY: not NULL (checked above), writable as the caller guarantees.
        unsafe { write_out(conn, id.raw()) }
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, now_us, run) }
}

/// Says Bye (200) on `conn` and closes it (a `CLOSE` output follows; an unknown `conn`
/// is ignored).
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_disconnect(
    h: *mut overlay_gnutella,
    now_us: u64,
    conn: u64,
) -> overlay_result {
    let run = |m: &mut GnutellaNode, now| {
        m.disconnect(now, ConnId::from_raw(conn));
        Ok(())
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, now_us, run) }
}

/// Searches for files whose names have every keyword of `criteria` (`len` bytes, no NUL)
/// or, with `sha1` not `NULL`, for that file. `HITS` events with the id written to
/// `*query` follow for as long as the route lives (10 minutes): the caller decides when
/// it has enough. `NOT_CONNECTED` when no connection is up.
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread; `criteria` must point to
/// `len` bytes (or be `NULL` with `len` 0); `sha1` must be `NULL` or point to an
/// `overlay_id`; `query` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_search(
    h: *mut overlay_gnutella,
    now_us: u64,
    criteria: *const u8,
    len: usize,
    sha1: *const overlay_id,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut GnutellaNode, now| {
        // SAFETY: as the caller guarantees above.
        let criteria = unsafe { bytes_arg(criteria, len) }?;
        let sha1 = match sha1.is_null() {
            true => None,
            // SAFETY: not NULL, and the caller guarantees an `overlay_id`.
            false => Some(unsafe { read_arg(sha1) }?.bytes),
        };
        Ok(m.search(now, criteria, sha1.as_ref())?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Streams the next `len` bytes (at most `OVERLAY_GNUTELLA_OUTPUT_CAP`) of the upload on
/// `conn` (`UPLOAD` event); after the last byte the servent closes `conn`. `NO_UPLOAD` if
/// none is in progress there; `INVALID_ARGUMENT` for more bytes than it has left.
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread; `bytes` must point to
/// `len` readable bytes (or be `NULL` with `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_upload(
    h: *mut overlay_gnutella,
    now_us: u64,
    conn: u64,
    bytes: *const u8,
    len: usize,
) -> overlay_result {
    let run = |m: &mut GnutellaNode, now| {
        // SAFETY: as the caller guarantees above.
        let bytes = unsafe { bytes_arg(bytes, len) }?;
        Ok(m.upload(now, ConnId::from_raw(conn), bytes)?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, now_us, run) }
}

/// Writes the servent's state and counters to `*out`.
///
/// # Safety
///
/// `h` must be `NULL` or a live servent used by no other thread; `out` must be `NULL` or
/// point to a writable `overlay_gnutella_snapshot`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_gnutella_status(
    h: *mut overlay_gnutella,
    out: *mut overlay_gnutella_snapshot,
) -> overlay_result {
    let run = |m: &mut GnutellaNode, _now| {
        let s = m.stats();
        let snapshot = overlay_gnutella_snapshot {
            servent_id: m.servent_id(),
            role: m.config().role.into(),
            peers: m.peers().count() as u32,
            known_hosts: m.known_hosts() as u32,
            shared_files: m.library().files.len() as u32,
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
        };
        // SAFETY: as the caller guarantees above.
        unsafe { write_out(out, snapshot) }
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, 0, run) }
}
