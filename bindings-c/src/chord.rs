//! Chord in C: `overlay_chord` wraps `overlay_core::chord::Chord` (see docs/chord.md).
//!
//! A node is created idle at its own address (its id is SHA-256 of that address), then
//! either starts a ring (`overlay_chord_create`), joins one through any member
//! (`overlay_chord_join`), or becomes a client that routes through a member without joining
//! (`overlay_chord_client`). Keys are byte strings, stored under their SHA-256.

use crate::handle::{
    Handle, Protocol, boundary, bytes_arg, command, free_handle, handle_datagram, new_handle,
    overlay_output, poll_output, read_arg, with_machine, write_out,
};
use crate::result::overlay_result;
use crate::types::{overlay_addr, overlay_id, overlay_node};
use overlay_core::Duration;
use overlay_core::Id;
use overlay_core::chord::{Chord, CommandError, Config, Event, Failure, NodeRef, Phase, config};

/// Keys (owned and replicas) one node holds: the host node's figure.
pub const OVERLAY_CHORD_STORE: usize = 256;
/// The largest value a node stores, in bytes (the protocol's limit, so that a C node
/// never refuses what another node may store).
pub const OVERLAY_CHORD_MAX_VALUE: usize = 1024;
/// A buffer of this many bytes takes any output of a Chord handle (the largest datagram
/// it sends; a value is smaller).
pub const OVERLAY_CHORD_OUTPUT_CAP: usize = 1400;

const _: () = {
    assert!(OVERLAY_CHORD_MAX_VALUE == config::MAX_VALUE);
    assert!(OVERLAY_CHORD_OUTPUT_CAP >= config::MAX_DATAGRAM);
    assert!(OVERLAY_CHORD_OUTPUT_CAP >= OVERLAY_CHORD_MAX_VALUE);
};

/// The machine a handle wraps.
pub type ChordNode = Chord<OVERLAY_CHORD_STORE, OVERLAY_CHORD_MAX_VALUE>;

/// A Chord node (opaque). Create with `overlay_chord_new`, free with `overlay_chord_free`.
/// One thread at a time may use it.
pub struct overlay_chord(Handle<overlay_chord>);

/// Run-time settings; `overlay_chord_config_default` fills in the defaults (docs/chord.md
/// says where they come from).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct overlay_chord_config {
    /// `r`, the successor-list length, and the replicas of each key (2 to 16; default 8).
    pub successors: u32,
    /// How often `stabilize` runs.
    pub stabilize_interval_ms: u64,
    /// How often one finger is refreshed.
    pub fix_fingers_interval_ms: u64,
    /// How often the predecessor is pinged.
    pub check_predecessor_interval_ms: u64,
    /// How often an owner re-sends its keys to its successors.
    pub replica_refresh_interval_ms: u64,
    /// An unanswered request is sent again after this long.
    pub request_timeout_ms: u64,
    /// Retransmissions before the node asked counts as failed.
    pub request_retries: u8,
    /// Route lookups through the whole successor list as well as the fingers.
    pub route_through_successor_list: bool,
    /// Queries one lookup may send before it gives up.
    pub lookup_query_limit: u8,
}

impl From<Config> for overlay_chord_config {
    fn from(c: Config) -> Self {
        overlay_chord_config {
            successors: c.successors as u32,
            stabilize_interval_ms: c.stabilize_interval.as_millis(),
            fix_fingers_interval_ms: c.fix_fingers_interval.as_millis(),
            check_predecessor_interval_ms: c.check_predecessor_interval.as_millis(),
            replica_refresh_interval_ms: c.replica_refresh_interval.as_millis(),
            request_timeout_ms: c.request_timeout.as_millis(),
            request_retries: c.request_retries,
            route_through_successor_list: c.route_through_successor_list,
            lookup_query_limit: c.lookup_query_limit,
        }
    }
}

impl From<overlay_chord_config> for Config {
    fn from(c: overlay_chord_config) -> Self {
        Config {
            successors: c.successors as usize,
            stabilize_interval: Duration::from_millis(c.stabilize_interval_ms),
            fix_fingers_interval: Duration::from_millis(c.fix_fingers_interval_ms),
            check_predecessor_interval: Duration::from_millis(c.check_predecessor_interval_ms),
            replica_refresh_interval: Duration::from_millis(c.replica_refresh_interval_ms),
            request_timeout: Duration::from_millis(c.request_timeout_ms),
            request_retries: c.request_retries,
            route_through_successor_list: c.route_through_successor_list,
            lookup_query_limit: c.lookup_query_limit,
        }
    }
}

/// Which event an `overlay_chord_event` is.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum overlay_chord_event_kind {
    /// Not an event (the output is not `EVENT`).
    #[default]
    None = 0,
    /// The join completed: `node` is the first successor.
    Joined = 1,
    /// A lookup found the owner of `key`: `node`, after `hops` nodes asked.
    LookupDone = 2,
    /// A value is stored under `key` at its owner `node` (which replicates it).
    PutDone = 3,
    /// A get finished: if `found`, the value is the output's `len` bytes in the buffer.
    GetDone = 4,
    /// A command failed: `error` says why (`UNREACHABLE`, `STORE_FULL`, `BUSY`, `LEFT`).
    Failed = 5,
    /// A graceful leave finished: keys handed over, neighbours told. Free the handle.
    Left = 6,
}

/// What a Chord node reports; the fields each kind sets are named on the kind, the others
/// are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct overlay_chord_event {
    /// Which event.
    pub kind: overlay_chord_event_kind,
    /// The id the command returned (0 for `LEFT`).
    pub query: u64,
    /// The key's id (SHA-256 of the key, truncated to 160 bits).
    pub key: overlay_id,
    /// `JOINED`: the successor; `LOOKUP_DONE`, `PUT_DONE`: the key's owner.
    pub node: overlay_node,
    /// Nodes asked on the way (Stoica's path length).
    pub hops: u32,
    /// `GET_DONE`: whether a value was found.
    pub found: bool,
    /// `FAILED`: why.
    pub error: overlay_result,
}

/// One output of a Chord handle (see `overlay_output_kind`).
pub type overlay_chord_output = overlay_output<overlay_chord_event>;

/// Where a node is in its life.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum overlay_chord_phase {
    /// Created; neither created a ring nor joined one.
    Idle = 0,
    /// Joining through a bootstrap node.
    Joining = 1,
    /// A member of a ring.
    Member = 2,
    /// Handing over its keys before leaving.
    Leaving = 3,
    /// Gone: free it.
    Left = 4,
    /// A client routing through a contact node.
    Client = 5,
}

/// A node's state and counters, from `overlay_chord_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct overlay_chord_snapshot {
    /// The node itself.
    pub node: overlay_node,
    /// Its phase.
    pub phase: overlay_chord_phase,
    /// Whether `predecessor` is set.
    pub has_predecessor: bool,
    /// The predecessor.
    pub predecessor: overlay_node,
    /// Entries in the successor list (0 when alone or not a member).
    pub successors: u32,
    /// The first successor, when `successors` > 0.
    pub successor: overlay_node,
    /// Keys held (owned and replicas).
    pub keys: u32,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that failed to decode (dropped).
    pub malformed: u64,
    /// Datagrams of another protocol version (dropped).
    pub wrong_version: u64,
    /// Well-formed input that made no sense now (dropped).
    pub unexpected: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Messages or jobs dropped because a queue was full.
    pub dropped: u64,
    /// Values not stored because the store was full.
    pub store_full: u64,
}

impl From<CommandError> for overlay_result {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Busy => overlay_result::Busy,
            CommandError::NotMember => overlay_result::NotMember,
            CommandError::AlreadyMember => overlay_result::AlreadyMember,
            CommandError::ValueTooLarge => overlay_result::ValueTooLarge,
        }
    }
}

impl From<Failure> for overlay_result {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unreachable => overlay_result::Unreachable,
            Failure::StoreFull => overlay_result::StoreFull,
            Failure::Busy => overlay_result::Busy,
            Failure::Left => overlay_result::Left,
        }
    }
}

impl Protocol for overlay_chord {
    type Machine = ChordNode;
    type Event = overlay_chord_event;

    fn event(event: Event<'_>, data: &mut Vec<u8>) -> overlay_chord_event {
        use overlay_chord_event_kind as K;
        let mut e = overlay_chord_event::default();
        match event {
            Event::Joined { query, successor } => {
                (e.kind, e.query, e.node) = (K::Joined, query.0, successor.into());
            }
            Event::LookupDone {
                query,
                key,
                owner,
                hops,
            } => {
                (e.kind, e.query, e.key) = (K::LookupDone, query.0, key.into());
                (e.node, e.hops) = (owner.into(), hops.into());
            }
            Event::PutDone {
                query,
                key,
                owner,
                hops,
            } => {
                (e.kind, e.query, e.key) = (K::PutDone, query.0, key.into());
                (e.node, e.hops) = (owner.into(), hops.into());
            }
            Event::GetDone {
                query,
                key,
                value,
                hops,
            } => {
                (e.kind, e.query, e.key) = (K::GetDone, query.0, key.into());
                (e.found, e.hops) = (value.is_some(), hops.into());
                data.extend_from_slice(value.unwrap_or_default());
            }
            Event::Failed { query, key, reason } => {
                (e.kind, e.query, e.key) = (K::Failed, query.0, key.into());
                e.error = reason.into();
            }
            Event::Left => e.kind = K::Left,
        }
        e
    }

    fn wrap(handle: Handle<Self>) -> Self {
        overlay_chord(handle)
    }

    fn handle(&mut self) -> &mut Handle<Self> {
        &mut self.0
    }
}

impl From<NodeRef> for overlay_node {
    fn from(n: NodeRef) -> Self {
        overlay_node::new(n.id, n.addr)
    }
}

/// Writes the default settings to `*out`.
///
/// # Safety
///
/// `out` must be `NULL` or point to a writable `overlay_chord_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_config_default(
    out: *mut overlay_chord_config,
) -> overlay_result {
    // SAFETY: as the caller guarantees above.
    boundary(|| unsafe { write_out(out, Config::default().into()) })
}

/// Creates an idle node at `*addr` (the address other nodes reach it at: its id is
/// SHA-256 of it) and writes it to `*out`. `seed` seeds the node's random generator:
/// the same seed and the same calls give the same outputs.
///
/// # Safety
///
/// `config` and `addr` must be `NULL` or point to initialised structs; `out` must be
/// `NULL` or point to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_new(
    config: *const overlay_chord_config,
    addr: *const overlay_addr,
    seed: u64,
    out: *mut *mut overlay_chord,
) -> overlay_result {
    boundary(|| {
        // SAFETY: as the caller guarantees above.
        let (config, addr) = unsafe { (read_arg(config)?, read_arg(addr)?.to_peer()?) };
        // SAFETY: as the caller guarantees above.
        unsafe { new_handle(|| ChordNode::new(config.into(), addr, seed), out) }
    })
}

/// Frees a node; `NULL` is a no-op.
///
/// # Safety
///
/// `h` must be `NULL` or a node from `overlay_chord_new` not yet freed; it must not be
/// used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_free(h: *mut overlay_chord) {
    // SAFETY: as the caller guarantees above.
    unsafe { free_handle(h) }
}

/// Hands a received datagram to the node. Malformed datagrams are dropped and counted
/// (`overlay_chord_status`), not an error. Drain `overlay_chord_poll_output` afterwards.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `from` must be `NULL` or
/// point to an `overlay_addr`; `bytes` must point to `len` readable bytes (or be `NULL`
/// with `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_handle_datagram(
    h: *mut overlay_chord,
    now_us: u64,
    from: *const overlay_addr,
    bytes: *const u8,
    len: usize,
) -> overlay_result {
    // SAFETY: as the caller guarantees above.
    unsafe { handle_datagram(h, now_us, from, bytes, len) }
}

/// Writes the node's next output to `*out` and its bytes to `buf` (see
/// `overlay_output_kind`). Call until the kind is `WAIT`. A buffer of
/// `OVERLAY_CHORD_OUTPUT_CAP` bytes takes any output; a smaller one that does not gets
/// `OVERLAY_RESULT_BUFFER_TOO_SMALL`, `out->len` set to the length needed, and the output
/// kept for the next call.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `buf` must point to `cap`
/// writable bytes (or be `NULL` with `cap` 0); `out` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_poll_output(
    h: *mut overlay_chord,
    now_us: u64,
    buf: *mut u8,
    cap: usize,
    out: *mut overlay_output<overlay_chord_event>,
) -> overlay_result {
    // SAFETY: as the caller guarantees above.
    unsafe { poll_output(h, now_us, buf, cap, out) }
}

/// Starts a new ring of one node (an idle node only; else `ALREADY_MEMBER`).
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_create(
    h: *mut overlay_chord,
    now_us: u64,
) -> overlay_result {
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, now_us, |m, now| Ok(m.create(now)?)) }
}

/// Joins the ring that `*bootstrap` belongs to; a `JOINED` or `FAILED` event with the id
/// written to `*query` follows. After a failure the node is idle and may try again.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `bootstrap` must be `NULL`
/// or point to an `overlay_addr`; `query` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_join(
    h: *mut overlay_chord,
    now_us: u64,
    bootstrap: *const overlay_addr,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut ChordNode, now| {
        // SAFETY: as the caller guarantees above.
        let bootstrap = unsafe { read_arg(bootstrap) }?.to_peer()?;
        Ok(m.join(now, bootstrap)?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Makes an idle node a client of the ring `*contact` belongs to: lookups, puts and gets
/// route through the contact, and the node never joins (no member keeps it in its tables).
/// A client may call it again to change its contact.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `contact` must be `NULL` or
/// point to an `overlay_addr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_client(
    h: *mut overlay_chord,
    contact: *const overlay_addr,
) -> overlay_result {
    let run = |m: &mut ChordNode, _now| {
        // SAFETY: as the caller guarantees above.
        let contact = unsafe { read_arg(contact) }?.to_peer()?;
        Ok(m.client(contact)?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, 0, run) }
}

/// Finds the owner of `key` (`key_len` bytes, hashed with SHA-256): `LOOKUP_DONE` or
/// `FAILED` follows.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `key` must point to
/// `key_len` readable bytes (or be `NULL` with `key_len` 0); `query` must be `NULL` or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_lookup(
    h: *mut overlay_chord,
    now_us: u64,
    key: *const u8,
    key_len: usize,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut ChordNode, now| {
        // SAFETY: as the caller guarantees above.
        let key = unsafe { bytes_arg(key, key_len) }?;
        Ok(m.lookup(now, Id::sha256(key))?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Stores `value` under `key` at the key's owner, which replicates it: `PUT_DONE` or
/// `FAILED` follows. A value over `OVERLAY_CHORD_MAX_VALUE` bytes is `VALUE_TOO_LARGE`.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `key` and `value` must point
/// to `key_len` and `value_len` readable bytes (or be `NULL` with length 0); `query` must
/// be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_put(
    h: *mut overlay_chord,
    now_us: u64,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut ChordNode, now| {
        // SAFETY: as the caller guarantees above.
        let (key, value) = unsafe { (bytes_arg(key, key_len)?, bytes_arg(value, value_len)?) };
        Ok(m.put(now, key, value)?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Reads the value under `key` from its owner (or a replica): `GET_DONE` (with `found`
/// and the value in the buffer) or `FAILED` follows.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `key` must point to
/// `key_len` readable bytes (or be `NULL` with `key_len` 0); `query` must be `NULL` or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_get(
    h: *mut overlay_chord,
    now_us: u64,
    key: *const u8,
    key_len: usize,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut ChordNode, now| {
        // SAFETY: as the caller guarantees above.
        let key = unsafe { bytes_arg(key, key_len) }?;
        Ok(m.get(now, key)?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Leaves the ring gracefully: hands every key to the successor, tells both neighbours,
/// then reports `LEFT`. Commands in progress fail with `LEFT`. A member only (else
/// `NOT_MEMBER`).
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_leave(h: *mut overlay_chord, now_us: u64) -> overlay_result {
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, now_us, |m, now| Ok(m.leave(now)?)) }
}

/// Writes the node's state and counters to `*out`.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `out` must be `NULL` or
/// point to a writable `overlay_chord_snapshot`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_chord_status(
    h: *mut overlay_chord,
    out: *mut overlay_chord_snapshot,
) -> overlay_result {
    let run = |m: &mut ChordNode, _now| {
        let s = m.stats();
        let status = overlay_chord_snapshot {
            node: m.node().into(),
            phase: match m.phase() {
                Phase::Idle => overlay_chord_phase::Idle,
                Phase::Joining => overlay_chord_phase::Joining,
                Phase::Member => overlay_chord_phase::Member,
                Phase::Leaving => overlay_chord_phase::Leaving,
                Phase::Left => overlay_chord_phase::Left,
                Phase::Client => overlay_chord_phase::Client,
            },
            has_predecessor: m.predecessor().is_some(),
            predecessor: m.predecessor().map(Into::into).unwrap_or_default(),
            successors: m.successors().len() as u32,
            successor: m
                .successors()
                .first()
                .map(|&n| n.into())
                .unwrap_or_default(),
            keys: m.store().len() as u32,
            received: s.received,
            sent: s.sent,
            malformed: s.malformed,
            wrong_version: s.wrong_version,
            unexpected: s.unexpected,
            timeouts: s.timeouts,
            dropped: s.dropped,
            store_full: s.store_full,
        };
        // SAFETY: as the caller guarantees above.
        unsafe { write_out(out, status) }
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, 0, run) }
}
