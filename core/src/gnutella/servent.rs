//! The servent: connections, handshakes, flooding and routing, pong caching, QRP and
//! uploads, as one sans-IO machine.

use super::config::{Config, Role};
use super::handshake::{self, Peers, StartLine};
use super::headers::Limits;
use super::http::{self, ByteRange, ContentRange, Method, Target};
use super::library::{self, Library};
use super::pongcache::{CachedPong, Demux, PingVerdict, PongCache};
use super::qrp::{self, QueryRouteTable};
use super::routing::{Guid, Origin, RouteTable};
use super::wire::{self, Extensions, HEADER_LEN, Header, Kind, Payload, QueryHit, QueryHitWriter};
use super::{WriteError, urn};
use crate::machine::{ConnId, Dest, Input, Machine, Output};
use crate::{Instant, PeerAddr, QueryId, Rng};
use heapless::{Deque, Vec};

/// Outputs queued at once: one input may flood a query to every connection and answer it.
const PENDING: usize = 128;
/// Pongs kept in the cache.
const PONGS: usize = 32;
/// Our searches whose hits are still reported.
const SEARCHES: usize = 16;
/// Hosts named in an `X-Try-Ultrapeers` header.
const TRY_ULTRAPEERS: usize = 10;
/// `urn:sha1:` names read from one query.
const QUERY_URNS: usize = 4;
/// Our query hits are split into messages of at most this many bytes, so that a servent
/// with a small receive buffer takes them (a lone result with a longer name goes alone).
const MAX_HIT: usize = 2048;

/// Why a connection ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloseReason {
    /// The remote end closed it.
    Remote,
    /// It could not be established.
    Unreachable,
    /// The remote refused the handshake with this code (503: full, or a leaf).
    Refused(u16),
    /// The remote is not what we need (a leaf dialled by a leaf).
    Unsuitable,
    /// The remote said Bye with this code.
    Bye(u16),
    /// The handshake did not finish in time.
    Timeout,
    /// The remote broke the protocol (a bad handshake, a message too long to frame).
    Protocol,
    /// We closed it ([`Servent::disconnect`]).
    Local,
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CloseReason::Remote => f.write_str("closed by the remote"),
            CloseReason::Unreachable => f.write_str("unreachable"),
            CloseReason::Refused(code) => write!(f, "refused with {code}"),
            CloseReason::Unsuitable => {
                f.write_str("not a servent we need (a leaf dialled by a leaf)")
            }
            CloseReason::Bye(code) => write!(f, "Bye {code}"),
            CloseReason::Timeout => f.write_str("handshake timed out"),
            CloseReason::Protocol => f.write_str("protocol error"),
            CloseReason::Local => f.write_str("closed here"),
        }
    }
}

/// What the servent reports.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A connection finished its handshake and carries messages.
    Connected {
        /// The connection.
        conn: ConnId,
        /// The remote's address (for inbound ones, its `Listen-IP` if it sent one).
        peer: PeerAddr,
        /// What the remote is.
        role: Role,
    },
    /// A connection (up or still opening) ended.
    Closed {
        /// The connection.
        conn: ConnId,
        /// The remote's address.
        peer: PeerAddr,
        /// Why.
        reason: CloseReason,
    },
    /// A query hit for one of our searches.
    Hits {
        /// The search.
        query: QueryId,
        /// Hops it travelled.
        hops: u8,
        /// The hit: where to download, the results, the servent id for a Push.
        hit: QueryHit<'a>,
    },
    /// An HTTP request was accepted: stream `len` bytes of file `index` from byte `start`
    /// with [`Servent::upload`]. The servent closes the connection after the last byte.
    Upload {
        /// The connection.
        conn: ConnId,
        /// The file.
        index: u32,
        /// First byte.
        start: u64,
        /// Bytes to send.
        len: u64,
    },
    /// A Push addressed to us: connect to `addr` and offer file `index` (`GIV`).
    Push {
        /// The file.
        index: u32,
        /// Who asks.
        addr: PeerAddr,
    },
}

/// Why [`Servent::upload`] refused bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UploadError {
    /// No upload on this connection (it closed, or never was one).
    NoUpload,
    /// More bytes than the upload has left.
    TooMuch,
    /// More bytes at once than the outbox holds: send smaller chunks.
    TooLarge,
}

/// Why a command was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CommandError {
    /// Every connection slot is taken.
    Full,
    /// No connection is up to send the query on.
    NotConnected,
    /// The search text cannot be sent (it contains NUL or is too long).
    Invalid(WriteError),
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CommandError::Full => f.write_str("every connection slot is taken"),
            CommandError::NotConnected => f.write_str("no connection is up to send the query on"),
            CommandError::Invalid(e) => write!(f, "cannot send it: {e}"),
        }
    }
}

impl core::error::Error for CommandError {}

/// Counters: what arrived, what was sent on, what was dropped and why.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Query descriptors received (duplicates included).
    pub queries_received: u64,
    /// Query descriptors sent: our own searches and forwarded ones.
    pub queries_sent: u64,
    /// Of those, sent to leaves.
    pub queries_to_leaves: u64,
    /// Leaves a query was not passed to because their QRP table rules it out.
    pub queries_filtered: u64,
    /// Descriptors dropped as duplicates (GUID already seen).
    pub duplicates: u64,
    /// Descriptors that arrived with TTL 0, or that could not go on because their TTL ran out.
    pub ttl_expired: u64,
    /// Query hits we answered with.
    pub hits_sent: u64,
    /// Query hits passed back along the reverse path.
    pub hits_forwarded: u64,
    /// Query hits for our own searches.
    pub hits_received: u64,
    /// Replies (hits, pongs, pushes) for which no route is known.
    pub unrouted: u64,
    /// Pushes passed on towards their servent.
    pub pushes_forwarded: u64,
    /// Pings received.
    pub pings_received: u64,
    /// Pings over the per-connection rate (ping-pong scheme).
    pub pings_throttled: u64,
    /// Pongs sent.
    pub pongs_sent: u64,
    /// Pongs received.
    pub pongs_received: u64,
    /// Payloads that failed to decode (dropped; the connection stays).
    pub malformed: u64,
    /// Messages longer than the receive buffer but within the protocol's 64 KiB: skipped.
    pub oversized: u64,
    /// Messages of types we do not handle, or from the wrong side (QRP from a peer).
    pub unhandled: u64,
    /// QRP updates refused (see [`qrp::QrpError`]).
    pub qrp_errors: u64,
    /// Messages dropped because the outbox was full.
    pub outbox_full: u64,
    /// Handshakes we refused (full, or we are a leaf).
    pub refused: u64,
    /// Uploads started.
    pub uploads: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LinkState {
    /// We asked the driver to dial.
    Dialling,
    /// Outbound: our `GNUTELLA CONNECT/0.6` is sent.
    SentConnect,
    /// Inbound: waiting for the first block (a handshake or an HTTP request).
    AwaitFirst,
    /// Inbound: our `200` is sent, waiting for the remote's final `200`.
    SentOk,
    /// Handshake done: messages flow.
    Up,
    /// An HTTP upload with this many bytes still to come from the driver.
    Upload { left: u64 },
}

struct Link<const RX: usize> {
    conn: ConnId,
    peer: PeerAddr,
    state: LinkState,
    role: Role,
    since: Instant,
    rx: Vec<u8, RX>,
    /// Bytes still to skip of an oversized message.
    skip: u32,
    demux: Demux,
    /// A leaf's QRP table, when we are its ultrapeer.
    qrt: Option<QueryRouteTable>,
}

impl<const RX: usize> Link<RX> {
    /// A connection opening (its remote's role is known after the handshake).
    fn new(conn: ConnId, peer: PeerAddr, state: LinkState, now: Instant) -> Self {
        Link {
            conn,
            peer,
            state,
            role: Role::Ultrapeer,
            since: now,
            rx: Vec::new(),
            skip: 0,
            demux: Demux::default(),
            qrt: None,
        }
    }
}

enum Pending {
    Transmit {
        conn: ConnId,
        at: usize,
        len: usize,
    },
    Connect {
        conn: ConnId,
        peer: PeerAddr,
    },
    Close {
        conn: ConnId,
    },
    Connected {
        conn: ConnId,
        peer: PeerAddr,
        role: Role,
    },
    Closed {
        conn: ConnId,
        peer: PeerAddr,
        reason: CloseReason,
    },
    Hits {
        query: QueryId,
        hops: u8,
        at: usize,
        len: usize,
    },
    Upload {
        conn: ConnId,
        index: u32,
        start: u64,
        len: u64,
    },
    Push {
        index: u32,
        addr: PeerAddr,
    },
}

/// What one input or command produced, drained by `poll_output`: bytes in an arena,
/// outputs in order. Emptied before the next input (the contract's drain rule).
struct Outbox<const N: usize> {
    arena: [u8; N],
    used: usize,
    queue: Deque<Pending, PENDING>,
}

impl<const N: usize> Outbox<N> {
    /// Writes into the arena's free space; the range written.
    fn write(
        &mut self,
        f: impl FnOnce(&mut [u8]) -> Result<usize, WriteError>,
    ) -> Result<(usize, usize), WriteError> {
        let at = self.used;
        let n = f(&mut self.arena[at..])?;
        self.used += n;
        Ok((at, n))
    }

    /// Writes `header` and `payload` (a message relayed with a new TTL and hops).
    fn message(&mut self, header: &Header, payload: &[u8]) -> Result<(usize, usize), WriteError> {
        self.write(|buf| {
            let total = HEADER_LEN + payload.len();
            let dst = buf.get_mut(..total).ok_or(WriteError::BufferFull)?;
            dst[..HEADER_LEN].copy_from_slice(&header.to_bytes());
            dst[HEADER_LEN..].copy_from_slice(payload);
            Ok(total)
        })
    }

    /// Copies the bytes at `at..at + len` to the free space.
    fn duplicate(&mut self, at: usize, len: usize) -> Result<(usize, usize), WriteError> {
        let to = self.used;
        if to + len > N {
            return Err(WriteError::BufferFull);
        }
        self.arena.copy_within(at..at + len, to);
        self.used += len;
        Ok((to, len))
    }

    fn push(&mut self, p: Pending) -> bool {
        self.queue.push_back(p).is_ok()
    }

    fn room(&self) -> usize {
        PENDING - self.queue.len()
    }

    /// Forgets the bytes of outputs already taken, once all are.
    fn settle(&mut self) {
        if self.queue.is_empty() {
            self.used = 0;
        }
    }
}

/// A Gnutella 0.6 servent (see the [module documentation](super)).
///
/// `LINKS` connections at most (handshakes, peers, leaves and uploads together), each with
/// a receive buffer of `RX` bytes (the largest message accepted is `RX - 23` bytes) and,
/// for a leaf of ours, a 1 KiB QRP table; `ROUTES` GUIDs per generation in each of the two
/// routing tables (queries and pings; servent ids); an outbox of `OUT` bytes for what one
/// input produces (a full outbox drops messages, counted in [`Stats::outbox_full`]).
pub struct Servent<
    L,
    const LINKS: usize = 32,
    const RX: usize = 4096,
    const ROUTES: usize = 1024,
    const OUT: usize = 65536,
> {
    config: Config,
    library: L,
    rng: Rng,
    servent_id: Guid,
    links: Vec<Link<RX>, LINKS>,
    next_conn: u64,
    routes: RouteTable<ROUTES>,
    pushes: RouteTable<ROUTES>,
    searches: Deque<(Guid, QueryId), SEARCHES>,
    next_query: u64,
    pongs: PongCache<PONGS>,
    own_qrt: QueryRouteTable,
    /// Files and kilobytes shared, for our pong.
    shared: (u32, u32),
    out: Outbox<OUT>,
    /// When the next handshake times out.
    deadline: Option<Instant>,
    stats: Stats,
}

impl<L: Library, const LINKS: usize, const RX: usize, const ROUTES: usize, const OUT: usize>
    Servent<L, LINKS, RX, ROUTES, OUT>
{
    /// A servent sharing `library`, with its randomness from `seed`.
    pub fn new(config: Config, library: L, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let servent_id = new_guid(&mut rng);
        let mut s = Servent {
            config,
            library,
            rng,
            servent_id,
            links: Vec::new(),
            next_conn: 0,
            routes: RouteTable::new(config.route_lifetime, Instant::ZERO),
            pushes: RouteTable::new(config.route_lifetime, Instant::ZERO),
            searches: Deque::new(),
            next_query: 0,
            pongs: PongCache::new(config.pong),
            own_qrt: QueryRouteTable::new(),
            shared: (0, 0),
            out: Outbox {
                arena: [0; OUT],
                used: 0,
                queue: Deque::new(),
            },
            deadline: None,
            stats: Stats::default(),
        };
        s.index_library();
        s
    }

    /// Rebuilds what we derive from the library (our QRP table, the counts in our pong)
    /// and sends the new table to our ultrapeers: call after the library changed.
    pub fn library_changed(&mut self, _now: Instant) {
        self.out.settle();
        self.index_library();
        if self.config.role == Role::Leaf {
            let ups: Vec<ConnId, LINKS> = self.up_links(Role::Ultrapeer, None).collect();
            for conn in ups {
                self.send_qrt(conn);
            }
        }
    }

    fn index_library(&mut self) {
        let mut qrt = QueryRouteTable::new();
        let (mut files, mut bytes) = (0u32, 0u64);
        for f in self.library.files() {
            qrt.insert_file(f.name, f.sha1.as_ref());
            files = files.saturating_add(1);
            bytes = bytes.saturating_add(f.size);
        }
        self.own_qrt = qrt;
        self.shared = (files, u32::try_from(bytes / 1024).unwrap_or(u32::MAX));
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets the TTL of our next searches (at most `max_ttl`).
    pub fn set_query_ttl(&mut self, ttl: u8) {
        self.config.query_ttl = ttl.min(self.config.max_ttl);
    }

    /// The shared files.
    pub fn library(&self) -> &L {
        &self.library
    }

    /// The shared files, to change them; call [`Servent::library_changed`] after.
    pub fn library_mut(&mut self) -> &mut L {
        &mut self.library
    }

    /// Our servent id, the last 16 bytes of our query hits (Push is routed by it).
    pub fn servent_id(&self) -> Guid {
        self.servent_id
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Connections up: id, remote address and role.
    pub fn peers(&self) -> impl Iterator<Item = (ConnId, PeerAddr, Role)> + '_ {
        self.links
            .iter()
            .filter(|l| l.state == LinkState::Up)
            .map(|l| (l.conn, l.peer, l.role))
    }

    /// Pongs in the cache (hosts recently reachable).
    pub fn known_hosts(&self) -> usize {
        self.pongs.len()
    }

    /// Dials `peer` and, once connected, runs the 0.6 handshake; [`Event::Connected`] or
    /// [`Event::Closed`] follows.
    pub fn connect(&mut self, now: Instant, peer: PeerAddr) -> Result<ConnId, CommandError> {
        self.out.settle();
        let conn = ConnId::outbound(self.next_conn);
        let link = Link::new(conn, peer, LinkState::Dialling, now);
        if self.out.room() == 0 || self.links.push(link).is_err() {
            return Err(CommandError::Full);
        }
        self.next_conn += 1;
        self.out.push(Pending::Connect { conn, peer });
        Ok(conn)
    }

    /// Sends Bye (200) and closes `conn`.
    pub fn disconnect(&mut self, _now: Instant, conn: ConnId) {
        self.out.settle();
        if self
            .links
            .iter()
            .any(|l| l.conn == conn && l.state == LinkState::Up)
        {
            let bye = Payload::Bye(wire::Bye {
                code: 200,
                message: b"Closing",
            });
            let guid = new_guid(&mut self.rng);
            self.send_message(&[conn], &guid, 1, 0, &bye);
        }
        self.close(conn, CloseReason::Local);
    }

    /// Searches the network for files matching `criteria` (keywords) or, when `sha1` is
    /// given, that file. Each [`Event::Hits`] that answers carries the returned id; hits
    /// arrive for as long as the route lives, so the caller decides when it has enough.
    pub fn search(
        &mut self,
        now: Instant,
        criteria: &[u8],
        sha1: Option<&[u8; 20]>,
    ) -> Result<QueryId, CommandError> {
        self.out.settle();
        if criteria.contains(&0) {
            return Err(CommandError::Invalid(WriteError::Invalid(
                "search criteria contain NUL",
            )));
        }
        let mut ext = [0u8; urn::SHA1_URN_LEN];
        let ext_len = match sha1 {
            Some(s) => urn::write_sha1(s, &mut ext).map_err(CommandError::Invalid)?,
            None => 0,
        };
        let extensions = Extensions::new(&ext[..ext_len])
            .map_err(|_| CommandError::Invalid(WriteError::Invalid("bad extension")))?;
        let guid = new_guid(&mut self.rng);
        let query = wire::Query {
            min_speed: 0,
            criteria,
            extensions,
        };
        let ttl = self.config.query_ttl;
        let msg = self
            .out
            .write(|buf| wire::write_message(buf, &guid, ttl, 0, &Payload::Query(query)))
            .map_err(CommandError::Invalid)?;
        let urns: Vec<[u8; 20], 1> = sha1.copied().into_iter().collect();
        let sent = self.flood(msg, None, &urns, criteria);
        if sent == 0 {
            return Err(CommandError::NotConnected);
        }
        self.routes.set(now, guid, Origin::Local);
        let query = QueryId(self.next_query);
        self.next_query += 1;
        if self.searches.is_full() {
            self.searches.pop_front();
        }
        let _ = self.searches.push_back((guid, query));
        Ok(query)
    }

    /// Streams the next bytes of the upload on `conn` ([`Event::Upload`]); at most
    /// [`Servent::UPLOAD_CHUNK`] at a time. After the last byte the connection closes.
    pub fn upload(&mut self, _now: Instant, conn: ConnId, bytes: &[u8]) -> Result<(), UploadError> {
        self.out.settle();
        let li = self.find(conn).ok_or(UploadError::NoUpload)?;
        let LinkState::Upload { left } = self.links[li].state else {
            return Err(UploadError::NoUpload);
        };
        if bytes.len() as u64 > left {
            return Err(UploadError::TooMuch);
        }
        if bytes.len() > OUT - self.out.used || self.out.room() < 2 {
            return Err(UploadError::TooLarge);
        }
        let (at, len) = self
            .out
            .write(|buf| {
                buf[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            })
            .map_err(|_| UploadError::TooLarge)?;
        self.out.push(Pending::Transmit { conn, at, len });
        let left = left - bytes.len() as u64;
        self.links[li].state = LinkState::Upload { left };
        if left == 0 {
            self.close(conn, CloseReason::Local);
        }
        Ok(())
    }

    /// The most bytes one [`Servent::upload`] call takes.
    pub const UPLOAD_CHUNK: usize = OUT;

    fn find(&self, conn: ConnId) -> Option<usize> {
        self.links.iter().position(|l| l.conn == conn)
    }

    /// Up connections with remote `role`, except `but`.
    fn up_links(&self, role: Role, but: Option<ConnId>) -> impl Iterator<Item = ConnId> + '_ {
        self.links
            .iter()
            .filter(move |l| l.state == LinkState::Up && l.role == role && Some(l.conn) != but)
            .map(|l| l.conn)
    }

    /// Queues the arena bytes `msg` (a whole query message, header first) to every
    /// ultrapeer except `from`, if its TTL allows, and to every leaf (except `from`) whose
    /// QRP table may match, with TTL at least 1 (the last hop to a leaf is free, as with
    /// LimeWire's last-hop QRP). Returns the copies sent.
    fn flood(
        &mut self,
        msg: (usize, usize),
        from: Option<ConnId>,
        urns: &[[u8; 20]],
        criteria: &[u8],
    ) -> usize {
        let (at, len) = msg;
        let ttl = self.out.arena[at + 17];
        let mut sent = 0;
        let mut leaf_msg = None;
        for i in 0..self.links.len() {
            let l = &self.links[i];
            if l.state != LinkState::Up || Some(l.conn) == from {
                continue;
            }
            let conn = l.conn;
            let range = match l.role {
                Role::Ultrapeer if ttl > 0 => (at, len),
                Role::Ultrapeer => continue,
                Role::Leaf => {
                    if self.config.role == Role::Leaf {
                        continue;
                    }
                    if let Some(t) = &l.qrt
                        && !t.may_match(criteria, urns)
                    {
                        self.stats.queries_filtered += 1;
                        continue;
                    }
                    if ttl > 0 {
                        (at, len)
                    } else {
                        // The same message with TTL 1, copied once.
                        if leaf_msg.is_none() {
                            leaf_msg = self.out.duplicate(at, len).ok();
                        }
                        match leaf_msg {
                            Some((a, n)) => {
                                self.out.arena[a + 17] = 1;
                                (a, n)
                            }
                            None => {
                                self.stats.outbox_full += 1;
                                continue;
                            }
                        }
                    }
                }
            };
            if !self.out.push(Pending::Transmit {
                conn,
                at: range.0,
                len: range.1,
            }) {
                self.stats.outbox_full += 1;
                continue;
            }
            self.stats.queries_sent += 1;
            if self.links[i].role == Role::Leaf {
                self.stats.queries_to_leaves += 1;
            }
            sent += 1;
        }
        sent
    }

    /// Encodes a message once and queues it on each of `to`; false if it did not fit.
    fn send_message(
        &mut self,
        to: &[ConnId],
        guid: &Guid,
        ttl: u8,
        hops: u8,
        payload: &Payload<'_>,
    ) -> bool {
        match self
            .out
            .write(|buf| wire::write_message(buf, guid, ttl, hops, payload))
        {
            Ok((at, len)) if self.out.room() >= to.len() => {
                for &conn in to {
                    self.out.push(Pending::Transmit { conn, at, len });
                }
                true
            }
            _ => {
                self.stats.outbox_full += 1;
                false
            }
        }
    }

    /// Queues an already framed message (a header and a payload, as received) with a new
    /// TTL and hops count.
    fn relay(&mut self, conn: ConnId, header: &Header, payload: &[u8]) -> bool {
        match self.out.message(header, payload) {
            Ok((at, len)) if self.out.push(Pending::Transmit { conn, at, len }) => true,
            _ => {
                self.stats.outbox_full += 1;
                false
            }
        }
    }

    /// Ends a connection we decided to close: routes through it are forgotten, the
    /// driver closes it, the application hears of it unless it was an upload.
    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.end(conn, reason, true);
    }

    /// Forgets a connection: its slot and every route through it; asks the driver to close
    /// it when `close` (not when the driver told us it closed); tells the application
    /// unless it never was a servent connection (an upload, or refused at its first block).
    fn end(&mut self, conn: ConnId, reason: CloseReason, close: bool) {
        let Some(li) = self.find(conn) else { return };
        let link = self.links.swap_remove(li);
        self.routes.forget_conn(conn);
        self.pushes.forget_conn(conn);
        if close {
            self.out.push(Pending::Close { conn });
        }
        if !matches!(link.state, LinkState::Upload { .. } | LinkState::AwaitFirst) {
            self.out.push(Pending::Closed {
                conn,
                peer: link.peer,
                reason,
            });
        }
    }

    fn on_closed(&mut self, conn: ConnId) {
        let reason = match self.find(conn).map(|li| self.links[li].state) {
            Some(LinkState::Dialling) => CloseReason::Unreachable,
            _ => CloseReason::Remote,
        };
        self.end(conn, reason, false);
    }

    fn on_accepted(&mut self, now: Instant, conn: ConnId, peer: PeerAddr) {
        let link = Link::new(conn, peer, LinkState::AwaitFirst, now);
        if self.links.push(link).is_err() {
            self.stats.refused += 1;
            self.out.push(Pending::Close { conn });
        }
    }

    fn on_connected(&mut self, now: Instant, conn: ConnId) {
        let Some(li) = self.find(conn) else { return };
        if self.links[li].state != LinkState::Dialling {
            return;
        }
        let config = self.config;
        let head = self.out.write(|buf| {
            let mut w = handshake::connect(buf);
            our_headers(&config, &mut w)?;
            w.finish()
        });
        match head {
            Ok((at, len)) => {
                self.out.push(Pending::Transmit { conn, at, len });
                self.links[li].state = LinkState::SentConnect;
                self.links[li].since = now;
            }
            Err(_) => {
                self.stats.outbox_full += 1;
                self.close(conn, CloseReason::Local);
            }
        }
    }

    /// Bytes arrived: buffer them behind what is pending and consume whole blocks and
    /// messages. A message too large for the buffer closes the connection.
    fn on_received(&mut self, now: Instant, conn: ConnId, mut bytes: &[u8]) {
        let Some(li) = self.find(conn) else { return };
        let mut rx = core::mem::take(&mut self.links[li].rx);
        let result = loop {
            let take = (RX - rx.len()).min(bytes.len());
            let _ = rx.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            match self.consume(now, conn, &rx) {
                Ok(used) => {
                    rx.copy_within(used.., 0);
                    rx.truncate(rx.len() - used);
                }
                Err(reason) => break Err(reason),
            }
            if bytes.is_empty() {
                break Ok(());
            }
            if rx.is_full() {
                break Err(CloseReason::Protocol);
            }
        };
        match result {
            Ok(()) => {
                if let Some(li) = self.find(conn) {
                    self.links[li].rx = rx;
                }
            }
            Err(reason) => self.close(conn, reason),
        }
    }

    /// Consumes what it can of `buf`, by the connection's state; the bytes used.
    fn consume(&mut self, now: Instant, conn: ConnId, buf: &[u8]) -> Result<usize, CloseReason> {
        let mut used = 0;
        loop {
            let Some(li) = self.find(conn) else {
                return Ok(buf.len());
            };
            let rest = &buf[used..];
            let link = &mut self.links[li];
            let n = match link.state {
                LinkState::Up if link.skip > 0 => {
                    let n = (link.skip as usize).min(rest.len());
                    link.skip -= n as u32;
                    n
                }
                LinkState::Up => self.on_messages(now, conn, rest)?,
                LinkState::Upload { .. } | LinkState::Dialling => rest.len(),
                LinkState::AwaitFirst
                    if rest.starts_with(b"GET ") || rest.starts_with(b"HEAD ") =>
                {
                    self.on_http_request(li, rest)?
                }
                _ => self.on_handshake(now, li, rest)?,
            };
            used += n;
            if n == 0 || used == buf.len() {
                return Ok(used);
            }
        }
    }

    fn on_handshake(&mut self, now: Instant, li: usize, buf: &[u8]) -> Result<usize, CloseReason> {
        let Some((hs, used)) =
            handshake::parse(buf, Limits::DEFAULT).map_err(|_| CloseReason::Protocol)?
        else {
            return Ok(0);
        };
        let conn = self.links[li].conn;
        let role = match hs.ultrapeer() {
            Ok(Some(false)) => Role::Leaf,
            Ok(_) => Role::Ultrapeer,
            Err(_) => return Err(CloseReason::Protocol),
        };
        match (self.links[li].state, hs.start) {
            (LinkState::AwaitFirst, StartLine::Connect(_)) => {
                let listen = hs.listen_addr().ok().flatten();
                let count = self.count(role);
                let (code, reason) = match (self.config.role, role) {
                    (Role::Leaf, _) => (503, "Shielded leaf node"),
                    (_, Role::Leaf) if count >= self.config.max_leaves as usize => {
                        (503, "Too many leaves")
                    }
                    (_, Role::Ultrapeer) if count >= self.config.max_peers as usize => {
                        (503, "Too many connections")
                    }
                    _ => (200, "OK"),
                };
                let tries: Vec<PeerAddr, TRY_ULTRAPEERS> = self
                    .links
                    .iter()
                    .filter(|l| l.state == LinkState::Up && l.role == Role::Ultrapeer)
                    .map(|l| l.peer)
                    .take(TRY_ULTRAPEERS)
                    .collect();
                let config = self.config;
                let head = self.out.write(|buf| {
                    let mut w = handshake::status(buf, code, reason);
                    our_headers(&config, &mut w)?;
                    if !tries.is_empty() {
                        w.header_fmt("X-Try-Ultrapeers", format_args!("{}", Peers(&tries)))?;
                    }
                    w.finish()
                });
                let Ok((at, len)) = head else {
                    self.stats.outbox_full += 1;
                    return Err(CloseReason::Local);
                };
                self.out.push(Pending::Transmit { conn, at, len });
                if code != 200 {
                    self.stats.refused += 1;
                    self.close(conn, CloseReason::Local);
                    return Ok(buf.len());
                }
                let link = &mut self.links[li];
                link.state = LinkState::SentOk;
                link.role = role;
                link.since = now;
                if let Some(addr) = listen {
                    link.peer = addr;
                }
                Ok(used)
            }
            (LinkState::SentConnect, StartLine::Status { code, .. }) => {
                if code != 200 {
                    return Err(CloseReason::Refused(code));
                }
                let unsuitable = match (self.config.role, role) {
                    (Role::Leaf, Role::Leaf) => true,
                    (Role::Ultrapeer, r) => self.count(r) >= self.cap(r),
                    _ => false,
                };
                let (code, reason) = if unsuitable {
                    (503, "Not needed")
                } else {
                    (200, "OK")
                };
                let head = self
                    .out
                    .write(|buf| handshake::status(buf, code, reason).finish());
                if let Ok((at, len)) = head {
                    self.out.push(Pending::Transmit { conn, at, len });
                }
                if unsuitable {
                    return Err(CloseReason::Unsuitable);
                }
                self.up(li, role);
                Ok(used)
            }
            (LinkState::SentOk, StartLine::Status { code, .. }) => {
                if code != 200 {
                    return Err(CloseReason::Refused(code));
                }
                let role = self.links[li].role;
                self.up(li, role);
                Ok(used)
            }
            _ => Err(CloseReason::Protocol),
        }
    }

    /// Connections up or coming up with remote `role`.
    fn count(&self, role: Role) -> usize {
        self.links
            .iter()
            .filter(|l| l.role == role && matches!(l.state, LinkState::Up | LinkState::SentOk))
            .count()
    }

    fn cap(&self, role: Role) -> usize {
        match role {
            Role::Ultrapeer => self.config.max_peers as usize,
            Role::Leaf => self.config.max_leaves as usize,
        }
    }

    /// The handshake is done: messages flow; a leaf sends its QRP table at once.
    fn up(&mut self, li: usize, role: Role) {
        let link = &mut self.links[li];
        link.state = LinkState::Up;
        link.role = role;
        let (conn, peer) = (link.conn, link.peer);
        self.out.push(Pending::Connected { conn, peer, role });
        if self.config.role == Role::Leaf {
            self.send_qrt(conn);
        }
    }

    fn send_qrt(&mut self, conn: ConnId) {
        let mut scratch = [0u8; 1100];
        let (out, rng) = (&mut self.out, &mut self.rng);
        let sent = self.own_qrt.updates(&mut scratch, |payload| {
            let guid = new_guid(rng);
            let header = Header {
                guid,
                kind: Kind::Other(qrp::ROUTE_TABLE_UPDATE),
                ttl: 1,
                hops: 0,
                len: payload.len() as u32,
            };
            let (at, len) = out.message(&header, payload).map_err(|_| ())?;
            if out.push(Pending::Transmit { conn, at, len }) {
                Ok(())
            } else {
                Err(())
            }
        });
        if sent.is_err() {
            self.stats.outbox_full += 1;
        }
    }

    /// Frames and handles whole messages; the bytes used.
    fn on_messages(
        &mut self,
        now: Instant,
        conn: ConnId,
        buf: &[u8],
    ) -> Result<usize, CloseReason> {
        let max = (RX - HEADER_LEN) as u32;
        let mut used = 0;
        while self.find(conn).is_some() {
            match wire::frame_with(&buf[used..], max) {
                Ok(Some(f)) => {
                    used += f.consumed;
                    self.on_message(now, conn, &f.header, f.payload);
                }
                Ok(None) => break,
                // Within the protocol's limit but not our buffer: skip it, keep the link.
                Err(wire::FrameError::TooLong { len, .. }) if len <= wire::MAX_PAYLOAD => {
                    self.stats.oversized += 1;
                    let total = HEADER_LEN + len as usize;
                    let here = total.min(buf.len() - used);
                    used += here;
                    if let Some(li) = self.find(conn) {
                        self.links[li].skip = (total - here) as u32;
                    }
                    break;
                }
                Err(_) => return Err(CloseReason::Protocol),
            }
        }
        Ok(used)
    }

    fn on_message(&mut self, now: Instant, conn: ConnId, header: &Header, payload: &[u8]) {
        let Ok(msg) = wire::decode(header.kind, payload) else {
            self.stats.malformed += 1;
            return;
        };
        // A message that may be relayed must have TTL left.
        if header.ttl == 0 && !matches!(msg, Payload::Bye(_) | Payload::Other { .. }) {
            self.stats.ttl_expired += 1;
            return;
        }
        match msg {
            Payload::Ping(_) => self.on_ping(now, conn, header),
            Payload::Pong(p) => self.on_pong(now, conn, header, &p),
            Payload::Query(q) => self.on_query(now, conn, header, &q, payload),
            Payload::QueryHit(h) => self.on_hit(now, conn, header, &h, payload),
            Payload::Push(p) => self.on_push(now, conn, header, &p, payload),
            Payload::Bye(b) => self.close(conn, CloseReason::Bye(b.code)),
            Payload::Other {
                kind: qrp::ROUTE_TABLE_UPDATE,
                bytes,
            } => self.on_qrp(conn, bytes),
            Payload::Other { .. } => self.stats.unhandled += 1,
        }
    }

    /// The header a relayed message goes on with: one hop more, one TTL less, and never
    /// more than `max_ttl` in all (the 0.6 draft lets a servent lower an excessive TTL).
    fn next_hop(&self, h: &Header) -> Header {
        let ttl = h.ttl.min(self.config.max_ttl.saturating_sub(h.hops));
        Header {
            ttl: ttl.saturating_sub(1),
            hops: h.hops.saturating_add(1),
            ..*h
        }
    }

    fn on_query(
        &mut self,
        now: Instant,
        conn: ConnId,
        header: &Header,
        q: &wire::Query<'_>,
        payload: &[u8],
    ) {
        self.stats.queries_received += 1;
        if !self.routes.insert_new(now, header.guid, Origin::Conn(conn)) {
            self.stats.duplicates += 1;
            return;
        }
        let urns: Vec<[u8; 20], QUERY_URNS> = q.extensions.sha1_urns().take(QUERY_URNS).collect();
        self.answer(conn, header, q.criteria, &urns);
        if self.config.role == Role::Leaf {
            return;
        }
        let next = self.next_hop(header);
        match self.out.message(&next, payload) {
            Ok(msg) => {
                self.flood(msg, Some(conn), &urns, q.criteria);
            }
            Err(_) => self.stats.outbox_full += 1,
        }
    }

    /// Answers a query from the library: at most `max_results` results, in query hits of
    /// at most [`MAX_HIT`] bytes.
    fn answer(&mut self, conn: ConnId, header: &Header, criteria: &[u8], urns: &[[u8; 20]]) {
        let (listen, speed, max) = (
            self.config.listen,
            self.config.speed_kbps,
            usize::from(self.config.max_results),
        );
        let ip = match listen.ip() {
            core::net::IpAddr::V4(v4) => v4.octets(),
            core::net::IpAddr::V6(_) => [0; 4],
        };
        // The hit needs as many hops back as the query took to come.
        let ttl = header.hops.saturating_add(1);
        let mut sent = 0;
        while sent < max {
            let (library, servent_id) = (&self.library, &self.servent_id);
            let (mut count, mut more) = (0, false);
            let written = self.out.write(|buf| {
                let mut w =
                    QueryHitWriter::new(buf, &header.guid, ttl, 0, listen.port(), ip, speed);
                // Header, the 11 fixed bytes, the servent id.
                let mut size = HEADER_LEN + 11 + 16;
                let found = library
                    .files()
                    .filter(|f| f.size < u64::from(u32::MAX) && !f.name.contains(&0))
                    .filter(|f| library::matches(criteria, urns, f))
                    .skip(sent)
                    .take(max - sent);
                for f in found {
                    let mut ext = [0u8; urn::SHA1_URN_LEN];
                    let n = match &f.sha1 {
                        Some(s) => urn::write_sha1(s, &mut ext)?,
                        None => 0,
                    };
                    let record = 8 + f.name.len() + 1 + n + 1;
                    if count > 0 && size + record > MAX_HIT {
                        more = true;
                        break;
                    }
                    w.hit(f.index, f.size as u32, f.name, &ext[..n])?;
                    size += record;
                    count += 1;
                }
                if count == 0 {
                    return Ok(0);
                }
                w.finish(None, servent_id)
            });
            match written {
                Ok((_, 0)) => return,
                Ok((at, len)) if self.out.push(Pending::Transmit { conn, at, len }) => {
                    self.stats.hits_sent += 1;
                }
                _ => {
                    self.stats.outbox_full += 1;
                    return;
                }
            }
            sent += count;
            if !more {
                return;
            }
        }
    }

    fn on_hit(
        &mut self,
        now: Instant,
        conn: ConnId,
        header: &Header,
        h: &QueryHit<'_>,
        payload: &[u8],
    ) {
        self.pushes.set(now, h.servent_id, Origin::Conn(conn));
        match self.routes.get(now, &header.guid) {
            Some(Origin::Local) => {
                let Some(&(_, query)) = self.searches.iter().find(|(g, _)| *g == header.guid)
                else {
                    self.stats.unrouted += 1;
                    return;
                };
                self.stats.hits_received += 1;
                let staged = self.out.write(|buf| {
                    let dst = buf.get_mut(..payload.len()).ok_or(WriteError::BufferFull)?;
                    dst.copy_from_slice(payload);
                    Ok(payload.len())
                });
                let hops = header.hops;
                match staged {
                    Ok((at, len))
                        if self.out.push(Pending::Hits {
                            query,
                            hops,
                            at,
                            len,
                        }) => {}
                    _ => self.stats.outbox_full += 1,
                }
            }
            Some(Origin::Conn(back)) => self.route_back(back, header, payload, true),
            None => self.stats.unrouted += 1,
        }
    }

    /// Sends a reply one hop further back, if its TTL allows.
    fn route_back(&mut self, back: ConnId, header: &Header, payload: &[u8], hit: bool) {
        // Not `next_hop`: `max_ttl` bounds how far a query spreads, and a reply only walks
        // back its path, which the free last hop to a leaf makes `max_ttl + 1` long.
        let next = Header {
            ttl: header.ttl.saturating_sub(1),
            hops: header.hops.saturating_add(1),
            ..*header
        };
        if next.ttl == 0 {
            self.stats.ttl_expired += 1;
        } else if self.relay(back, &next, payload) {
            if hit {
                self.stats.hits_forwarded += 1;
            } else {
                self.stats.pushes_forwarded += 1;
            }
        }
    }

    fn on_push(
        &mut self,
        now: Instant,
        conn: ConnId,
        header: &Header,
        p: &wire::Push<'_>,
        payload: &[u8],
    ) {
        if !self.routes.insert_new(now, header.guid, Origin::Conn(conn)) {
            self.stats.duplicates += 1;
            return;
        }
        if p.servent_id == self.servent_id {
            let addr = PeerAddr::v4(p.ip, p.port);
            self.out.push(Pending::Push {
                index: p.index,
                addr,
            });
            return;
        }
        match self.pushes.get(now, &p.servent_id) {
            Some(Origin::Conn(next)) if next != conn => {
                self.route_back(next, header, payload, false)
            }
            _ => self.stats.unrouted += 1,
        }
    }

    fn our_pong(&self) -> Option<Payload<'static>> {
        let core::net::IpAddr::V4(ip) = self.config.listen.ip() else {
            return None;
        };
        Some(Payload::Pong(wire::Pong {
            port: self.config.listen.port(),
            ip: ip.octets(),
            files: self.shared.0,
            kbytes: self.shared.1,
            extensions: Extensions::default(),
        }))
    }

    /// Pings are answered, never flooded (`ping-pong`): our own pong, then cached pongs
    /// spread over hop counts; an expired cache is refreshed by pinging our ultrapeers.
    fn on_ping(&mut self, now: Instant, conn: ConnId, header: &Header) {
        self.stats.pings_received += 1;
        let direct = header.hops == 0 && header.ttl <= 1;
        if !direct && !self.routes.insert_new(now, header.guid, Origin::Conn(conn)) {
            self.stats.duplicates += 1;
            return;
        }
        let Some(li) = self.find(conn) else { return };
        let verdict = if direct || self.config.role == Role::Leaf {
            PingVerdict::Answer { refresh: false }
        } else {
            self.pongs
                .on_ping(now, &mut self.links[li].demux, header.guid, header.ttl)
        };
        let PingVerdict::Answer { refresh } = verdict else {
            self.stats.pings_throttled += 1;
            return;
        };
        if let Some(pong) = self.our_pong()
            && self.send_message(&[conn], &header.guid, 1, 0, &pong)
        {
            self.stats.pongs_sent += 1;
        }
        if direct || self.config.role == Role::Leaf {
            return;
        }
        let mut cached: Vec<CachedPong, PONGS> = Vec::new();
        self.pongs
            .answer(conn, &mut self.links[li].demux, &mut cached);
        for p in cached {
            self.send_cached(conn, &header.guid, &p);
        }
        if refresh {
            let guid = new_guid(&mut self.rng);
            self.routes.set(now, guid, Origin::Local);
            let ups: Vec<ConnId, LINKS> = self.up_links(Role::Ultrapeer, None).collect();
            let ping = Payload::Ping(wire::Ping {
                extensions: Extensions::default(),
            });
            self.send_message(&ups, &guid, super::pongcache::MAX_TTL, 0, &ping);
        }
    }

    fn send_cached(&mut self, conn: ConnId, guid: &Guid, p: &CachedPong) {
        let core::net::IpAddr::V4(ip) = p.addr.ip() else {
            return;
        };
        let pong = Payload::Pong(wire::Pong {
            port: p.addr.port(),
            ip: ip.octets(),
            files: p.files,
            kbytes: p.kbytes,
            extensions: Extensions::default(),
        });
        if self.send_message(&[conn], guid, 1, p.hops, &pong) {
            self.stats.pongs_sent += 1;
        }
    }

    /// A pong for our refresh ping fills the cache and goes on, multiplexed, to every
    /// connection still waiting for pongs of its hop count.
    fn on_pong(&mut self, now: Instant, conn: ConnId, header: &Header, p: &wire::Pong<'_>) {
        self.stats.pongs_received += 1;
        if self.routes.get(now, &header.guid) != Some(Origin::Local) {
            self.stats.unrouted += 1;
            return;
        }
        if p.ip == [0; 4] || p.port == 0 {
            return;
        }
        let pong = CachedPong {
            addr: PeerAddr::v4(p.ip, p.port),
            files: p.files,
            kbytes: p.kbytes,
            hops: header.hops.saturating_add(1),
            from: conn,
        };
        self.pongs.on_pong(pong);
        for i in 0..self.links.len() {
            let l = &mut self.links[i];
            if l.state != LinkState::Up || l.role != Role::Ultrapeer || l.conn == conn {
                continue;
            }
            if let Some(guid) = l.demux.take(pong.hops) {
                let to = l.conn;
                self.send_cached(to, &guid, &pong);
            }
        }
    }

    fn on_qrp(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(li) = self.find(conn) else { return };
        let link = &mut self.links[li];
        if self.config.role != Role::Ultrapeer || link.role != Role::Leaf {
            self.stats.unhandled += 1;
            return;
        }
        let table = link.qrt.get_or_insert_with(QueryRouteTable::new);
        if qrp::Update::decode(bytes)
            .and_then(|u| table.apply(&u))
            .is_err()
        {
            self.stats.qrp_errors += 1;
        }
    }

    /// An HTTP request on an inbound connection: answer its head from the library and
    /// start the upload, or refuse.
    fn on_http_request(&mut self, li: usize, buf: &[u8]) -> Result<usize, CloseReason> {
        let Some((req, used)) =
            http::parse_request(buf, Limits::DEFAULT).map_err(|_| CloseReason::Protocol)?
        else {
            return Ok(0);
        };
        let conn = self.links[li].conn;
        let file = match req.target {
            Target::Sha1(s) => self.library.by_sha1(&s),
            Target::Index { index, .. } => self.library.by_index(index),
            Target::Other => None,
        };
        let (code, reason, span) = match (file, req.range()) {
            (None, _) => (http::code::NOT_FOUND, "Not Found", None),
            (Some(f), Ok(None)) => (http::code::OK, "OK", Some((0, f.size))),
            (Some(f), Ok(Some(r))) => match resolve(r, f.size) {
                Some((a, b)) => (
                    http::code::PARTIAL_CONTENT,
                    "Partial Content",
                    Some((a, b - a + 1)),
                ),
                None => (
                    http::code::RANGE_NOT_SATISFIABLE,
                    "Range Not Satisfiable",
                    None,
                ),
            },
            (Some(_), Err(_)) => (
                http::code::RANGE_NOT_SATISFIABLE,
                "Range Not Satisfiable",
                None,
            ),
        };
        let (size, sha1, index) = file.map_or((0, None, 0), |f| (f.size, f.sha1, f.index));
        let ua = self.config.user_agent;
        let head = self.out.write(|out| {
            let mut w = http::response(out, code, reason);
            w.header("Server", ua)?.header("Connection", "close")?;
            let len = span.map_or(0, |(_, n)| n);
            w.header_fmt("Content-Length", format_args!("{len}"))?;
            if span.is_some() {
                w.header("Content-Type", "application/binary")?;
            }
            if code == http::code::PARTIAL_CONTENT || code == http::code::RANGE_NOT_SATISFIABLE {
                let range = span.map(|(a, n)| (a, a + n - 1));
                let cr = ContentRange {
                    range,
                    total: Some(size),
                };
                w.header_fmt("Content-Range", format_args!("{cr}"))?;
            }
            if let Some(s) = sha1 {
                let mut text = [0u8; urn::SHA1_URN_LEN];
                let n = urn::write_sha1(&s, &mut text)?;
                w.header("X-Gnutella-Content-URN", &text[..n])?;
            }
            w.finish()
        });
        let Ok((at, len)) = head else {
            self.stats.outbox_full += 1;
            return Err(CloseReason::Local);
        };
        self.out.push(Pending::Transmit { conn, at, len });
        match span {
            Some((start, n)) if n > 0 && req.method == Method::Get => {
                self.stats.uploads += 1;
                self.links[li].state = LinkState::Upload { left: n };
                self.out.push(Pending::Upload {
                    conn,
                    index,
                    start,
                    len: n,
                });
            }
            _ => self.close(conn, CloseReason::Local),
        }
        Ok(used)
    }

    /// Closes connections whose handshake ran out of time; the next such deadline.
    fn expire(&mut self, now: Instant) -> Option<Instant> {
        let timeout = self.config.handshake_timeout;
        let opening = |s: LinkState| {
            matches!(
                s,
                LinkState::SentConnect | LinkState::AwaitFirst | LinkState::SentOk
            )
        };
        while let Some(l) = self
            .links
            .iter()
            .find(|l| opening(l.state) && l.since + timeout <= now)
        {
            let conn = l.conn;
            self.close(conn, CloseReason::Timeout);
        }
        self.links
            .iter()
            .filter(|l| opening(l.state))
            .map(|l| l.since + timeout)
            .min()
    }
}

/// Our handshake headers: who we are, where we listen, whether we are an ultrapeer.
fn our_headers(config: &Config, w: &mut handshake::HeadWriter<'_>) -> Result<(), WriteError> {
    let up = config.role == Role::Ultrapeer;
    w.header("User-Agent", config.user_agent)?
        .header("X-Ultrapeer", if up { "True" } else { "False" })?
        .header("X-Query-Routing", "0.1")?
        .header_fmt("Listen-IP", format_args!("{}", config.listen))?;
    Ok(())
}

/// A `Range` within a file of `size` bytes: the first and last byte, or `None` if it lies
/// outside (RFC 7233 section 2.1).
fn resolve(r: ByteRange, size: u64) -> Option<(u64, u64)> {
    let last = size.checked_sub(1)?;
    match r {
        ByteRange::From { first, last: l } if first <= last => {
            Some((first, l.map_or(last, |l| l.min(last))))
        }
        ByteRange::Suffix(n) if n > 0 => Some((size - n.min(size), last)),
        _ => None,
    }
}

/// A fresh message GUID, marked as modern servents mark theirs (QRP footnote 10: byte 8
/// all ones, byte 15 the version, 0).
fn new_guid(rng: &mut Rng) -> Guid {
    let mut g = [0u8; 16];
    rng.fill(&mut g);
    g[8] = 0xff;
    g[15] = 0;
    g
}

impl<L: Library, const LINKS: usize, const RX: usize, const ROUTES: usize, const OUT: usize> Machine
    for Servent<L, LINKS, RX, ROUTES, OUT>
{
    type Event<'a>
        = Event<'a>
    where
        Self: 'a;

    fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        self.out.settle();
        match input {
            Input::Accepted { conn, peer } => self.on_accepted(now, conn, peer),
            Input::Connected { conn } => self.on_connected(now, conn),
            Input::Received { conn, bytes } => self.on_received(now, conn, bytes),
            Input::Closed { conn } => self.on_closed(conn),
            // Gnutella 0.6 runs over TCP here (no GUESS / UDP hits).
            Input::Datagram { .. } => self.stats.unhandled += 1,
        }
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, Event<'_>> {
        self.out.settle();
        if self.out.queue.is_empty() {
            self.deadline = self.expire(now);
        }
        while let Some(p) = self.out.queue.pop_front() {
            let arena = &self.out.arena;
            return match p {
                Pending::Transmit { conn, at, len } => Output::Transmit {
                    to: Dest::Conn(conn),
                    payload: &arena[at..at + len],
                },
                Pending::Connect { conn, peer } => Output::Connect { conn, peer },
                Pending::Close { conn } => Output::Close { conn },
                Pending::Connected { conn, peer, role } => {
                    Output::Event(Event::Connected { conn, peer, role })
                }
                Pending::Closed { conn, peer, reason } => {
                    Output::Event(Event::Closed { conn, peer, reason })
                }
                Pending::Hits {
                    query,
                    hops,
                    at,
                    len,
                } => match wire::decode(Kind::QueryHit, &arena[at..at + len]) {
                    Ok(Payload::QueryHit(hit)) => Output::Event(Event::Hits { query, hops, hit }),
                    // It decoded when it arrived; unreachable, but never a panic.
                    _ => continue,
                },
                Pending::Upload {
                    conn,
                    index,
                    start,
                    len,
                } => Output::Event(Event::Upload {
                    conn,
                    index,
                    start,
                    len,
                }),
                Pending::Push { index, addr } => Output::Event(Event::Push { index, addr }),
            };
        }
        Output::Wait(self.deadline)
    }
}
