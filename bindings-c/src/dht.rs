//! The Mainline DHT in C: `overlay_dht` wraps `overlay_core::dht::Dht`, Kademlia as
//! BitTorrent speaks it (BEP 5, 32, 42, 43, 44; see docs/dht.md). It talks KRPC byte for
//! byte, so a C node joins a DHT of libtorrent, aria2 or `overlay dht start` nodes.
//!
//! Node lists and peer lists in events are written to the caller's buffer as arrays of
//! `overlay_node` and `overlay_addr` (40 and 20 bytes, no padding): copy them out with
//! `memcpy`, whatever the buffer's alignment.

use crate::handle::{
    Handle, Protocol, boundary, bytes_arg, command, free_handle, handle_datagram, list_arg,
    new_handle, overlay_output, poll_output, read_arg, with_machine, write_out,
};
use crate::result::overlay_result;
use crate::types::{overlay_addr, overlay_id, overlay_node};
use overlay_core::Duration;
use overlay_core::dht::{CommandError, Config, Dht, Event, Failure, LookupStats, config};

/// Nodes in the routing table; the host node's figure, as are the three below.
pub const OVERLAY_DHT_TABLE: usize = 256;
/// Lookups in progress at once.
pub const OVERLAY_DHT_LOOKUPS: usize = 16;
/// Announced peers stored for others.
pub const OVERLAY_DHT_PEERS: usize = 4096;
/// BEP 44 items stored (1 KiB each).
pub const OVERLAY_DHT_ITEMS: usize = 256;
/// A buffer of this many bytes takes any output of a DHT handle: the largest datagram
/// (lists and items are smaller: at most 16 nodes of 40 bytes, 50 peers of 20 bytes, an
/// item of 1000 bytes).
pub const OVERLAY_DHT_OUTPUT_CAP: usize = 1500;

const _: () = {
    assert!(OVERLAY_DHT_OUTPUT_CAP >= config::MAX_DATAGRAM);
    assert!(OVERLAY_DHT_OUTPUT_CAP >= config::MAX_ITEM);
    assert!(OVERLAY_DHT_OUTPUT_CAP >= config::MAX_K * size_of::<overlay_node>());
    assert!(OVERLAY_DHT_OUTPUT_CAP >= config::MAX_PEERS_RESULT * size_of::<overlay_addr>());
};

/// The machine a handle wraps.
pub type DhtNode =
    Dht<OVERLAY_DHT_TABLE, OVERLAY_DHT_LOOKUPS, OVERLAY_DHT_PEERS, OVERLAY_DHT_ITEMS>;

/// A Mainline DHT node (opaque). Create with `overlay_dht_new`, free with
/// `overlay_dht_free`. One thread at a time may use it.
pub struct overlay_dht(Handle<overlay_dht>);

/// Run-time settings; `overlay_dht_config_default` fills in the defaults (BEP 5's and
/// libtorrent's, see docs/dht.md).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct overlay_dht_config {
    /// K, the bucket size and the closest nodes a lookup converges on (1 to 16; 8).
    pub k: u32,
    /// Alpha, the parallel requests of one lookup (3).
    pub alpha: u32,
    /// An unanswered request fails after this long.
    pub request_timeout_ms: u64,
    /// A node unheard of this long is questionable; a bucket untouched this long is
    /// refreshed (BEP 5: 15 minutes).
    pub node_timeout_ms: u64,
    /// How often the node looks up its own id again.
    pub self_refresh_ms: u64,
    /// How often the least recently heard table entry is pinged.
    pub liveness_interval_ms: u64,
    /// Failed requests in a row after which a node is bad.
    pub failures_to_bad: u8,
    /// How often token secrets rotate (BEP 5: 5 minutes).
    pub token_rotation_ms: u64,
    /// How long an announced peer is kept.
    pub peer_lifetime_ms: u64,
    /// How long a BEP 44 item is kept.
    pub item_lifetime_ms: u64,
    /// Peers kept for one info hash.
    pub max_peers_per_torrent: u32,
    /// One node per IP address in a bucket; turn off on loopback, where every node is
    /// 127.0.0.1.
    pub restrict_ips: bool,
    /// BEP 42: prefer nodes whose id matches their IP.
    pub prefer_verified: bool,
    /// BEP 42: take an id made for our external address when responders agree on one.
    pub bep42_id: bool,
    /// BEP 43: ask others not to add this node to their tables (short-lived clients).
    pub read_only: bool,
    /// How often timeouts, bucket refreshes and secret rotation are checked.
    pub tick_ms: u64,
}

impl From<Config> for overlay_dht_config {
    fn from(c: Config) -> Self {
        overlay_dht_config {
            k: c.k as u32,
            alpha: c.alpha as u32,
            request_timeout_ms: c.request_timeout.as_millis(),
            node_timeout_ms: c.node_timeout.as_millis(),
            self_refresh_ms: c.self_refresh.as_millis(),
            liveness_interval_ms: c.liveness_interval.as_millis(),
            failures_to_bad: c.failures_to_bad,
            token_rotation_ms: c.token_rotation.as_millis(),
            peer_lifetime_ms: c.peer_lifetime.as_millis(),
            item_lifetime_ms: c.item_lifetime.as_millis(),
            max_peers_per_torrent: c.max_peers_per_torrent as u32,
            restrict_ips: c.restrict_ips,
            prefer_verified: c.prefer_verified,
            bep42_id: c.bep42_id,
            read_only: c.read_only,
            tick_ms: c.tick.as_millis(),
        }
    }
}

impl From<overlay_dht_config> for Config {
    fn from(c: overlay_dht_config) -> Self {
        Config {
            k: c.k as usize,
            alpha: c.alpha as usize,
            request_timeout: Duration::from_millis(c.request_timeout_ms),
            node_timeout: Duration::from_millis(c.node_timeout_ms),
            self_refresh: Duration::from_millis(c.self_refresh_ms),
            liveness_interval: Duration::from_millis(c.liveness_interval_ms),
            failures_to_bad: c.failures_to_bad,
            token_rotation: Duration::from_millis(c.token_rotation_ms),
            peer_lifetime: Duration::from_millis(c.peer_lifetime_ms),
            item_lifetime: Duration::from_millis(c.item_lifetime_ms),
            max_peers_per_torrent: c.max_peers_per_torrent as usize,
            restrict_ips: c.restrict_ips,
            prefer_verified: c.prefer_verified,
            bep42_id: c.bep42_id,
            read_only: c.read_only,
            tick: Duration::from_millis(c.tick_ms),
        }
    }
}

/// Which event an `overlay_dht_event` is.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum overlay_dht_event_kind {
    /// Not an event (the output is not `EVENT`).
    #[default]
    None = 0,
    /// The bootstrap finished; `count` nodes are in the routing table.
    Bootstrapped = 1,
    /// A `find_node` converged: the buffer holds `count` `overlay_node`s, the K closest to
    /// `target` that answered, closest first.
    Nodes = 2,
    /// A `get_peers` finished: the buffer holds `count` `overlay_addr`s, the peers of the
    /// torrent `target`.
    Peers = 3,
    /// An announce of torrent `target` finished: `count` nodes stored it.
    Announced = 4,
    /// A BEP 44 `get` of `target` finished: if `found`, the bencoded value is the
    /// output's `len` bytes in the buffer (checked against the target).
    Item = 5,
    /// A BEP 44 `put` of `target` finished: `count` nodes stored it.
    Stored = 6,
    /// A command failed: `error` says why (`NO_NODES`, `UNREACHABLE`, `ITEM_LOST`).
    Failed = 7,
    /// BEP 42: responders agree on a public address our id did not match, so the node
    /// took the id `node.id` made for `node.addr` (port 0) and is bootstrapping again.
    NewId = 8,
}

/// How a lookup went.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct overlay_dht_lookup_stats {
    /// The longest chain of referrals followed.
    pub rounds: u32,
    /// Requests sent in the search (stores excluded).
    pub messages: u32,
    /// Requests that timed out or were answered with an error.
    pub failures: u32,
    /// From the command to its result, in microseconds.
    pub elapsed_us: u64,
}

impl From<LookupStats> for overlay_dht_lookup_stats {
    fn from(s: LookupStats) -> Self {
        overlay_dht_lookup_stats {
            rounds: s.rounds.into(),
            messages: s.messages.into(),
            failures: s.failures.into(),
            elapsed_us: s.elapsed.as_micros(),
        }
    }
}

/// What a DHT node reports; the fields each kind sets are named on the kind, the others
/// are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct overlay_dht_event {
    /// Which event.
    pub kind: overlay_dht_event_kind,
    /// The id the command returned (0 for `NEW_ID`, which no command started).
    pub query: u64,
    /// The lookup's target: a node id, an info hash, a BEP 44 target.
    pub target: overlay_id,
    /// Records in the buffer (`NODES`, `PEERS`), nodes in the table (`BOOTSTRAPPED`) or
    /// nodes that stored a write (`ANNOUNCED`, `STORED`).
    pub count: u32,
    /// `ITEM`: whether the item was found.
    pub found: bool,
    /// `FAILED`: why.
    pub error: overlay_result,
    /// `NEW_ID`: the new id and the external address it was made for.
    pub node: overlay_node,
    /// `NODES`, `PEERS`, `ANNOUNCED`, `ITEM`, `STORED`: how the lookup went.
    pub stats: overlay_dht_lookup_stats,
}

/// One output of a DHT handle (see `overlay_output_kind`).
pub type overlay_dht_output = overlay_output<overlay_dht_event>;

/// A node's state and counters, from `overlay_dht_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct overlay_dht_snapshot {
    /// The node's id and the address it was created with.
    pub node: overlay_node,
    /// Nodes in the routing table.
    pub table_nodes: u32,
    /// Lookups in progress.
    pub lookups: u32,
    /// Announced peers stored for others.
    pub stored_peers: u32,
    /// BEP 44 items stored.
    pub stored_items: u32,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that were not valid KRPC (dropped).
    pub malformed: u64,
    /// Well-formed input that made no sense now (dropped).
    pub unexpected: u64,
    /// Queries answered.
    pub answered: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Error responses received.
    pub errors: u64,
    /// Writes refused for a bad token.
    pub bad_tokens: u64,
    /// Messages or peers dropped because a queue was full.
    pub dropped: u64,
}

impl From<CommandError> for overlay_result {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Busy => overlay_result::Busy,
            CommandError::BadItem => overlay_result::BadItem,
            CommandError::NoNodes => overlay_result::NoNodes,
        }
    }
}

impl From<Failure> for overlay_result {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NoNodes => overlay_result::NoNodes,
            Failure::Unreachable => overlay_result::Unreachable,
            Failure::ItemLost => overlay_result::ItemLost,
        }
    }
}

impl Protocol for overlay_dht {
    type Machine = DhtNode;
    type Event = overlay_dht_event;

    fn event(event: Event<'_>, data: &mut Vec<u8>) -> overlay_dht_event {
        use overlay_dht_event_kind as K;
        let mut e = overlay_dht_event::default();
        match event {
            Event::Bootstrapped { query, nodes } => {
                (e.kind, e.query, e.count) = (K::Bootstrapped, query.0, nodes as u32);
            }
            Event::Nodes {
                query,
                target,
                nodes,
                stats,
            } => {
                (e.kind, e.query, e.target) = (K::Nodes, query.0, target.into());
                (e.count, e.stats) = (nodes.len() as u32, stats.into());
                for &(id, addr) in nodes {
                    data.extend_from_slice(&overlay_node::new(id, addr).to_c_bytes());
                }
            }
            Event::Peers {
                query,
                info_hash,
                peers,
                stats,
            } => {
                (e.kind, e.query, e.target) = (K::Peers, query.0, info_hash.into());
                (e.count, e.stats) = (peers.len() as u32, stats.into());
                for &p in peers {
                    data.extend_from_slice(&overlay_addr::from_peer(p).to_c_bytes());
                }
            }
            Event::Announced {
                query,
                info_hash,
                stored,
                stats,
            } => {
                (e.kind, e.query, e.target) = (K::Announced, query.0, info_hash.into());
                (e.count, e.stats) = (stored.into(), stats.into());
            }
            Event::Item {
                query,
                target,
                value,
                stats,
            } => {
                (e.kind, e.query, e.target) = (K::Item, query.0, target.into());
                (e.found, e.stats) = (value.is_some(), stats.into());
                data.extend_from_slice(value.unwrap_or_default());
            }
            Event::Stored {
                query,
                target,
                stored,
                stats,
            } => {
                (e.kind, e.query, e.target) = (K::Stored, query.0, target.into());
                (e.count, e.stats) = (stored.into(), stats.into());
            }
            Event::Failed { query, reason } => {
                (e.kind, e.query, e.error) = (K::Failed, query.0, reason.into());
            }
            Event::NewId { id, external } => {
                e.kind = K::NewId;
                e.node = overlay_node::new(id, core::net::SocketAddr::new(external, 0).into());
            }
        }
        e
    }

    fn wrap(handle: Handle<Self>) -> Self {
        overlay_dht(handle)
    }

    fn handle(&mut self) -> &mut Handle<Self> {
        &mut self.0
    }
}

/// Writes the default settings to `*out`.
///
/// # Safety
///
/// `out` must be `NULL` or point to a writable `overlay_dht_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_config_default(
    out: *mut overlay_dht_config,
) -> overlay_result {
    // SAFETY: as the caller guarantees above.
    boundary(|| unsafe { write_out(out, Config::default().into()) })
}

/// Creates a node at `*addr` and writes it to `*out`. Its id is random (from `seed`) on
/// a local or unspecified address, and a BEP 42 id for a public one. `seed` seeds the
/// node's random generator: the same seed and the same calls give the same outputs.
///
/// # Safety
///
/// `config` and `addr` must be `NULL` or point to initialised structs; `out` must be
/// `NULL` or point to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_new(
    config: *const overlay_dht_config,
    addr: *const overlay_addr,
    seed: u64,
    out: *mut *mut overlay_dht,
) -> overlay_result {
    boundary(|| {
        // SAFETY: as the caller guarantees above.
        let (config, addr) = unsafe { (read_arg(config)?, read_arg(addr)?.to_peer()?) };
        // SAFETY: as the caller guarantees above.
        unsafe { new_handle(|| DhtNode::new(config.into(), addr, seed), out) }
    })
}

/// Frees a node; `NULL` is a no-op.
///
/// # Safety
///
/// `h` must be `NULL` or a node from `overlay_dht_new` not yet freed; it must not be used
/// afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_free(h: *mut overlay_dht) {
    // SAFETY: as the caller guarantees above.
    unsafe { free_handle(h) }
}

/// Hands a received datagram to the node. Malformed datagrams are dropped and counted
/// (`overlay_dht_status`), not an error. Drain `overlay_dht_poll_output` afterwards.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `from` must be `NULL` or
/// point to an `overlay_addr`; `bytes` must point to `len` readable bytes (or be `NULL`
/// with `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_handle_datagram(
    h: *mut overlay_dht,
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
/// `OVERLAY_DHT_OUTPUT_CAP` bytes takes any output; a smaller one that does not gets
/// `OVERLAY_RESULT_BUFFER_TOO_SMALL`, `out->len` set to the length needed, and the output
/// kept for the next call.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `buf` must point to `cap`
/// writable bytes (or be `NULL` with `cap` 0); `out` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_poll_output(
    h: *mut overlay_dht,
    now_us: u64,
    buf: *mut u8,
    cap: usize,
    out: *mut overlay_output<overlay_dht_event>,
) -> overlay_result {
    // SAFETY: as the caller guarantees above.
    unsafe { poll_output(h, now_us, buf, cap, out) }
}

/// Joins the DHT through the `count` addresses in `nodes`: asks them for the nodes closest
/// to our id, then looks our id up, filling the routing table; `BOOTSTRAPPED` follows. The
/// first 8 addresses are kept, to bootstrap again if the table empties (`count` 0 reuses
/// them; with none kept that is `NO_NODES`).
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `nodes` must point to
/// `count` `overlay_addr`s (or be `NULL` with `count` 0); `query` must be `NULL` or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_bootstrap(
    h: *mut overlay_dht,
    now_us: u64,
    nodes: *const overlay_addr,
    count: usize,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut DhtNode, now| {
        let mut addrs = Vec::new();
        // SAFETY: as the caller guarantees above.
        unsafe {
            list_arg(nodes, count, |a| {
                addrs.push(a.to_peer()?);
                Ok(())
            })
        }?;
        Ok(m.bootstrap(now, &addrs)?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Looks up the K nodes closest to `*target`: `NODES` or `FAILED` follows.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `target` must be `NULL` or
/// point to an `overlay_id`; `query` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_find_node(
    h: *mut overlay_dht,
    now_us: u64,
    target: *const overlay_id,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut DhtNode, now| {
        // SAFETY: as the caller guarantees above.
        let target = unsafe { read_arg(target) }?;
        Ok(m.find_node(now, target.into())?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Looks up the peers of torrent `*info_hash`: `PEERS` or `FAILED` follows.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `info_hash` must be `NULL`
/// or point to an `overlay_id`; `query` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_get_peers(
    h: *mut overlay_dht,
    now_us: u64,
    info_hash: *const overlay_id,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut DhtNode, now| {
        // SAFETY: as the caller guarantees above.
        let info_hash = unsafe { read_arg(info_hash) }?;
        Ok(m.get_peers(now, info_hash.into())?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Announces that we have torrent `*info_hash` and take connections on `port` (0: the
/// port our DHT datagrams come from, BEP 5's `implied_port`) to the K closest nodes:
/// `ANNOUNCED` or `FAILED` follows. Announce again every 15 minutes or so: nodes forget
/// after 30.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `info_hash` must be `NULL`
/// or point to an `overlay_id`; `query` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_announce(
    h: *mut overlay_dht,
    now_us: u64,
    info_hash: *const overlay_id,
    port: u16,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut DhtNode, now| {
        // SAFETY: as the caller guarantees above.
        let info_hash = unsafe { read_arg(info_hash) }?;
        Ok(m.announce(now, info_hash.into(), (port != 0).then_some(port))?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// BEP 44: gets the immutable item `*target` (the SHA-1 of its bencoded value): `ITEM` or
/// `FAILED` follows.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `target` must be `NULL` or
/// point to an `overlay_id`; `query` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_get(
    h: *mut overlay_dht,
    now_us: u64,
    target: *const overlay_id,
    query: *mut u64,
) -> overlay_result {
    let start = |m: &mut DhtNode, now| {
        // SAFETY: as the caller guarantees above.
        let target = unsafe { read_arg(target) }?;
        Ok(m.get(now, target.into())?)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// BEP 44: puts an immutable item, `value_len` bytes of one bencoded value (a string is
/// `<length>:<bytes>`, e.g. `"5:hello"`) of at most 1000 bytes, else `BAD_ITEM`. It is
/// stored under its SHA-1, written to `*target`, first in our own store and then on the K
/// closest nodes: `STORED` or `FAILED` follows.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `value` must point to
/// `value_len` readable bytes (or be `NULL` with `value_len` 0); `query` and `target` must
/// be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_put(
    h: *mut overlay_dht,
    now_us: u64,
    value: *const u8,
    value_len: usize,
    query: *mut u64,
    target: *mut overlay_id,
) -> overlay_result {
    let start = |m: &mut DhtNode, now| {
        if target.is_null() {
            return Err(overlay_result::NullArgument);
        }
        // SAFETY: as the caller guarantees above.
        let value = unsafe { bytes_arg(value, value_len) }?;
        let (id, item) = m.put(now, value)?;
        // SAFETY: not NULL (checked above), writable as the caller guarantees.
        unsafe { write_out(target, item.into()) }?;
        Ok(id)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { command(h, now_us, query, start) }
}

/// Writes the node's state and counters to `*out`.
///
/// # Safety
///
/// `h` must be `NULL` or a live node used by no other thread; `out` must be `NULL` or
/// point to a writable `overlay_dht_snapshot`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_dht_status(
    h: *mut overlay_dht,
    out: *mut overlay_dht_snapshot,
) -> overlay_result {
    let run = |m: &mut DhtNode, _now| {
        let s = m.stats();
        let status = overlay_dht_snapshot {
            node: overlay_node::new(m.id(), m.addr()),
            table_nodes: m.table().len() as u32,
            lookups: m.lookups() as u32,
            stored_peers: m.stored_peers() as u32,
            stored_items: m.stored_items() as u32,
            received: s.received,
            sent: s.sent,
            malformed: s.malformed,
            unexpected: s.unexpected,
            answered: s.answered,
            timeouts: s.timeouts,
            errors: s.errors,
            bad_tokens: s.bad_tokens,
            dropped: s.dropped,
        };
        // SAFETY: as the caller guarantees above.
        unsafe { write_out(out, status) }
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, 0, run) }
}
