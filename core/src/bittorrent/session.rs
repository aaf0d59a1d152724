//! The swarm member: one torrent shared over many peer connections, as one sans-IO machine.
//!
//! It speaks the peer wire protocol ([`super::wire`]: BEP 3, the Fast extension BEP 6 and
//! the BEP 10 handshake) on every connection, asks the rarest-first [`PiecePicker`] what to
//! request and the tit-for-tat [`Choker`] whom to serve, and leaves the bytes of the torrent
//! to the driver:
//!
//! * a block that arrives is handed over in [`Event::Write`], borrowed from the receive
//!   buffer; the machine keeps no copy;
//! * once every block of a piece is in, [`Event::Verify`] gives the piece's SHA-1 from the
//!   metainfo; the driver hashes what it stored and answers with
//!   [`Session::piece_checked`] (or [`Session::piece_lost`] when its disk failed: the
//!   piece is fetched again and nobody is blamed);
//! * a peer's request we accept becomes [`Event::Read`]; the driver answers with the bytes
//!   through [`Session::send_block`], which frames and sends them.
//!
//! So the machine holds at most the blocks in flight: those in receive buffers and the one
//! being uploaded.
//!
//! # Policies, and where they come from
//!
//! * **Pipelining** (libtorrent's `request_queue_time`): a peer that unchokes us is kept
//!   busy with `download rate × 3 s / 16 KiB` requests, at least [`MIN_QUEUE`] and at most
//!   what it announced as BEP 10 `reqq` (capped at [`MAX_OUTSTANDING`]).
//! * **Snubbing**: a peer that sends no block for 60 s while requests to it are
//!   outstanding is snubbed (the choker's anti-snubbing); its requests are cancelled and
//!   given back to the picker, and it gets one request at a time until a block comes.
//! * **Hash failures** (libtorrent's trust points and parole): every peer that sent a
//!   block of a piece that fails its check loses [`TRUST_PER_FAILURE`] trust points and is
//!   put on parole, where it only gets pieces to itself ([`PiecePicker::set_parole`]);
//!   every peer that sent blocks of a piece that passes wins a point back, up to
//!   [`TRUST_MAX`]; a piece that passes with a paroled peer as its only source ends the
//!   parole (our addition: libtorrent keeps it). A peer that was the only source of a failed piece, or falls to
//!   [`TRUST_BAN`], is banned: disconnected, and its IP refused from then on. So an honest
//!   peer that shared a few pieces with a corrupt one earns its trust back.
//! * **Protocol violations** close the connection: a malformed or oversized message, a
//!   bitfield that is not the first message or has spare bits set, a block that is not one
//!   of the torrent's, a request outside the torrent, have-all, have-none or reject-request
//!   without BEP 6 (its suggest and allowed-fast are ignored, as any peer may).
//! * **Uploads**: requests from a peer we choke, for a piece we lack, beyond
//!   [`MAX_INCOMING`] queued, or while [`Config::serve`] is off are refused (BEP 6
//!   reject-request where the peer speaks BEP 6, else dropped, as BEP 3 has it); a choke
//!   drops (BEP 3) or rejects (BEP 6) what was queued.
//! * **Seeds**: two seeds have nothing to trade, so a connection between them is closed.
//!
//! # Driver contract
//!
//! Besides the [`Machine`] contract: one [`Input::Received`] carries at most
//! [`Session::MAX_READ`] bytes (half the receive buffer; the other half holds a partial
//! message), and [`Session::send_block`] and [`Session::piece_checked`] answer the events
//! (late answers are fine; answers for things that went away get a typed error).
//!
//! # RAM
//!
//! Per connection 41 KB with the default `RX` (the receive buffer, a 4 KiB buffer for
//! control messages, the two request queues); the picker (see [`PiecePicker`]), the
//! choker, 20 bytes of hash per piece and one 16 KiB upload buffer on top.
//! `Session<256, 16, 32>` (a 64 MiB torrent of 256 KiB pieces, 32 peers) takes 1.42 MB,
//! `Session<8, 4, 4>` 184 KB (the `ram_table` test prints these).

use core::fmt;
use core::net::IpAddr;

use heapless::{Deque, Vec};

use super::choker::{Choker, ChokerConfig, Decision};
use super::metainfo::{HASH_LEN, Metainfo};
use super::picker::{PickerError, PiecePicker, PieceSources};
use super::wire::{
    self, BLOCK_LEN, Bitfield, BlockRequest, HANDSHAKE_LEN, Handshake, MAX_REQUEST_LEN, Message,
    PIECE_HEADER_LEN, Reserved, WireError,
};
use crate::bencode;
use crate::machine::{ConnId, Dest, Input, Machine, Output};
use crate::{Duration, Instant, PeerAddr, Rng};

/// Requests we keep outstanding with one peer, at most.
pub const MAX_OUTSTANDING: usize = 64;
/// Requests from one peer we queue, at most; announced to peers as BEP 10 `reqq`.
pub const MAX_INCOMING: usize = 128;
/// Requests kept outstanding with a peer that unchoked us before its rate is known.
pub const MIN_QUEUE: usize = 4;
/// Trust points a peer loses per failed piece it sent blocks of (libtorrent: 2).
pub const TRUST_PER_FAILURE: i32 = 2;
/// Trust points a peer can bank (libtorrent: 8).
pub const TRUST_MAX: i32 = 8;
/// A peer at this many trust points is banned (libtorrent: -7).
pub const TRUST_BAN: i32 = -7;
/// Control messages waiting to be sent on one connection (haves, requests, rejects, ...).
const TX: usize = 4096;
/// Banned IPs remembered; the oldest is forgotten first.
const BANS: usize = 32;
/// Inbound connections refused and not yet closed (one per input, by the contract).
const REFUSED: usize = 8;
/// Pieces complete and not yet handed out for verification (one per block, by the contract).
const VERIFY: usize = 8;
/// How often timers run (timeouts, keep-alives, snubbing, rechoking).
const TICK: Duration = Duration::from_secs(1);
/// Bytes of a request, cancel or reject-request message.
const REQUEST_MSG: usize = 17;
/// Our BEP 10 extended handshake: no extension messages, and our `reqq`.
const EXTENDED_HANDSHAKE: &[u8] = b"d1:mde4:reqqi128e1:v7:overlaye";

/// Settings of a session. [`Config::new`] gives the defaults, with their sources.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Config {
    /// SHA-1 of the metainfo's `info` dictionary.
    pub info_hash: [u8; HASH_LEN],
    /// Our 20-byte peer id.
    pub peer_id: [u8; HASH_LEN],
    /// The metainfo's `piece length`.
    pub piece_length: u32,
    /// The torrent's total length in bytes.
    pub total_length: u64,
    /// Connections at once, in and out (at most the session's `PEERS`).
    pub max_connections: usize,
    /// The choker's settings (BEP 3's four slots, 10 s rechoke, 30 s optimistic unchoke).
    pub choker: ChokerConfig,
    /// Whether we upload at all. `false` is a free rider: it never unchokes anyone.
    pub serve: bool,
    /// Requests kept outstanding with a peer cover this much of its download rate
    /// (libtorrent's `request_queue_time`, 3 s).
    pub request_queue_time: Duration,
    /// Pieces picked at random before rarest first takes over (libtorrent's
    /// `initial_picker_threshold`, 4); `u32::MAX` picks at random throughout, a baseline
    /// for experiments.
    pub initial_random_pieces: u32,
    /// A connection must finish its handshake within this (20 s).
    pub handshake_timeout: Duration,
    /// We send a keep-alive after this long without sending (BEP 3: two minutes).
    pub keepalive_interval: Duration,
    /// A connection that sent nothing for this long is closed (three keep-alive periods).
    pub idle_timeout: Duration,
}

impl Config {
    /// The defaults for a torrent.
    pub fn new(
        info_hash: [u8; HASH_LEN],
        peer_id: [u8; HASH_LEN],
        piece_length: u32,
        total_length: u64,
    ) -> Self {
        Config {
            info_hash,
            peer_id,
            piece_length,
            total_length,
            max_connections: usize::MAX,
            choker: ChokerConfig::default(),
            serve: true,
            request_queue_time: Duration::from_secs(3),
            initial_random_pieces: super::picker::INITIAL_PICKER_THRESHOLD,
            handshake_timeout: Duration::from_secs(20),
            keepalive_interval: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(360),
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloseReason {
    /// The remote end closed it.
    Remote,
    /// It could not be established.
    Unreachable,
    /// The handshake did not finish in time.
    Timeout,
    /// Nothing came for [`Config::idle_timeout`].
    Idle,
    /// The peer broke the protocol.
    Protocol(Violation),
    /// The peer is in another torrent.
    WrongTorrent,
    /// We dialled ourselves.
    SelfConnection,
    /// We already have a connection to this peer id.
    Duplicate,
    /// We banned the peer for sending corrupt data.
    Banned,
    /// Both ends are seeds.
    BothSeeds,
    /// A control message did not fit the connection's send buffer (a peer flooding us
    /// with requests faster than we drain them).
    SendBufferFull,
    /// We closed it ([`Session::disconnect`]).
    Local,
}

/// How a peer broke the protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Violation {
    /// The stream could not be framed or a message not read.
    Wire(WireError),
    /// The handshake is not BitTorrent's.
    Handshake,
    /// A bitfield of the wrong length or with spare bits set.
    Bitfield,
    /// A bitfield, have-all or have-none after the first message.
    LateBitfield,
    /// A have for a piece past the end.
    Have,
    /// A request for bytes outside the torrent or longer than 16 KiB.
    Request,
    /// A block that is not one of the torrent's blocks.
    Block,
    /// A BEP 6 message from a peer that did not negotiate BEP 6.
    NotFast,
    /// More bytes in one read than [`Session::MAX_READ`] (a driver error).
    Overflow,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Wire(e) => write!(f, "unreadable stream: {e}"),
            Violation::Handshake => f.write_str("not a BitTorrent handshake"),
            Violation::Bitfield => f.write_str("malformed bitfield"),
            Violation::LateBitfield => f.write_str("bitfield after the first message"),
            Violation::Have => f.write_str("have for a piece past the end"),
            Violation::Request => f.write_str("request outside the torrent"),
            Violation::Block => f.write_str("block that is not one of the torrent's"),
            Violation::NotFast => f.write_str("BEP 6 message without BEP 6"),
            Violation::Overflow => f.write_str("read larger than the receive buffer allows"),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Remote => f.write_str("closed by the remote"),
            CloseReason::Unreachable => f.write_str("unreachable"),
            CloseReason::Timeout => f.write_str("handshake timed out"),
            CloseReason::Idle => f.write_str("idle too long"),
            CloseReason::Protocol(v) => write!(f, "protocol violation: {v}"),
            CloseReason::WrongTorrent => f.write_str("peer is in another torrent"),
            CloseReason::SelfConnection => f.write_str("connected to ourselves"),
            CloseReason::Duplicate => f.write_str("already connected to this peer"),
            CloseReason::Banned => f.write_str("banned for corrupt data"),
            CloseReason::BothSeeds => f.write_str("both ends are seeds"),
            CloseReason::SendBufferFull => f.write_str("send buffer full"),
            CloseReason::Local => f.write_str("closed by us"),
        }
    }
}

/// Why a command was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SessionError {
    /// The torrent does not fit the session's capacities, or the hashes do not match it.
    Geometry(PickerError),
    /// [`Config::max_connections`] connections are open.
    Full,
    /// That IP is banned.
    Banned,
    /// We already dial or talk to that address.
    AlreadyConnected,
    /// No open connection has that id.
    UnknownConn,
    /// That block is not an outstanding [`Event::Read`] of that connection (cancelled,
    /// choked since, or never asked for).
    NotRequested,
    /// The bytes given are not the block's length.
    WrongLength,
    /// That piece is not waiting for [`Session::piece_checked`].
    NotAwaitingCheck,
    /// The previous block is still to be sent: drain the outputs first.
    Busy,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Geometry(e) => write!(f, "torrent does not fit the session: {e}"),
            SessionError::Full => f.write_str("too many connections"),
            SessionError::Banned => f.write_str("peer is banned"),
            SessionError::AlreadyConnected => f.write_str("already connected to that address"),
            SessionError::UnknownConn => f.write_str("no such connection"),
            SessionError::NotRequested => f.write_str("block not requested"),
            SessionError::WrongLength => f.write_str("wrong block length"),
            SessionError::NotAwaitingCheck => f.write_str("piece is not awaiting a check"),
            SessionError::Busy => f.write_str("previous block not yet sent"),
        }
    }
}

impl core::error::Error for SessionError {}

impl From<PickerError> for SessionError {
    fn from(e: PickerError) -> Self {
        SessionError::Geometry(e)
    }
}

/// What the session tells its driver.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event<'a> {
    /// Store this block at `piece * piece_length + begin`.
    Write {
        /// The piece.
        piece: u32,
        /// Offset in the piece.
        begin: u32,
        /// The block, borrowed from the receive buffer.
        data: &'a [u8],
    },
    /// Every block of `piece` is in: hash what was stored and call
    /// [`Session::piece_checked`] ([`Session::piece_lost`] if the disk failed).
    Verify {
        /// The piece.
        piece: u32,
        /// Its SHA-1 from the metainfo.
        hash: [u8; HASH_LEN],
    },
    /// Read this block and hand it to [`Session::send_block`] for `conn`.
    Read {
        /// Who asked.
        conn: ConnId,
        /// The block.
        block: BlockRequest,
    },
    /// A peer finished its handshake.
    Connected {
        /// The connection.
        conn: ConnId,
        /// Its address.
        peer: PeerAddr,
        /// Its peer id.
        peer_id: [u8; HASH_LEN],
    },
    /// A connection ended (no [`Input::Closed`] is due for it).
    Closed {
        /// The connection.
        conn: ConnId,
        /// Its address.
        peer: PeerAddr,
        /// Why.
        reason: CloseReason,
    },
    /// The last piece passed its check: we are a seed.
    Complete,
}

/// One connected peer, as [`Session::peers`] shows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PeerInfo {
    /// The connection.
    pub conn: ConnId,
    /// Its address.
    pub addr: PeerAddr,
    /// We choke it.
    pub am_choking: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// We want pieces it has.
    pub am_interested: bool,
    /// It wants pieces we have.
    pub peer_interested: bool,
    /// Pieces it has.
    pub pieces: u32,
    /// It is snubbed (no block for a minute while we waited on it).
    pub snubbed: bool,
    /// It is on parole for a failed piece.
    pub parole: bool,
    /// Its upload rate to us over the last 20 s, bytes per second.
    pub download_rate: u64,
    /// Our upload rate to it over the last 20 s, bytes per second.
    pub upload_rate: u64,
}

/// Counters.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Stats {
    /// Block bytes received that we lacked.
    pub downloaded: u64,
    /// Block bytes received twice (end game) or not asked of that peer (late after a
    /// cancel or a choke), and dropped.
    pub wasted: u64,
    /// Block bytes sent.
    pub uploaded: u64,
    /// Pieces that failed their hash check.
    pub hash_failures: u64,
    /// Peers banned.
    pub banned: u64,
    /// Connections closed for a protocol violation.
    pub violations: u64,
    /// Requests refused (choked, a piece we lack, a full queue, not serving).
    pub refused_requests: u64,
    /// Inputs for unknown connections, datagrams, and messages we ignore.
    pub ignored: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// To dial: `Output::Connect` is due.
    Dial,
    /// Dialled, waiting for `Input::Connected`.
    Connecting,
    /// Waiting for the peer's handshake.
    Handshake,
    /// Handshakes exchanged.
    Active,
    /// Gone: `Output::Close` is due when `tell_driver`, then `Event::Closed`.
    Closing {
        reason: CloseReason,
        tell_driver: bool,
    },
}

struct Conn<const RX: usize> {
    id: ConnId,
    addr: PeerAddr,
    phase: Phase,
    /// When the current phase began.
    since: Instant,
    peer_id: [u8; HASH_LEN],
    fast: bool,
    rx: Vec<u8, RX>,
    /// `rx` may hold a whole message.
    rx_ready: bool,
    tx: Vec<u8, TX>,
    /// A message after the handshake was seen (bitfields are only allowed first).
    got_first: bool,
    /// `Event::Connected` is due.
    announce: bool,
    am_interested: bool,
    peer_interested: bool,
    am_choking: bool,
    peer_choking: bool,
    /// Our requests not yet answered, oldest first.
    outstanding: Vec<BlockRequest, MAX_OUTSTANDING>,
    /// The peer's BEP 10 `reqq`, capped.
    max_queue: usize,
    /// The peer's requests we accepted, oldest first; the first `announced` went out as
    /// `Event::Read`.
    incoming: Vec<BlockRequest, MAX_INCOMING>,
    announced: usize,
    /// Pieces the peer has.
    pieces: u32,
    /// libtorrent's trust points: won by pieces that pass, lost by pieces that fail.
    trust: i32,
    snubbed: bool,
    /// Requests may need topping up.
    refill: bool,
    last_rx: Instant,
    last_tx: Instant,
}

impl<const RX: usize> Conn<RX> {
    fn new(id: ConnId, addr: PeerAddr, phase: Phase, now: Instant) -> Self {
        Conn {
            id,
            addr,
            phase,
            since: now,
            peer_id: [0; HASH_LEN],
            fast: false,
            rx: Vec::new(),
            rx_ready: false,
            tx: Vec::new(),
            got_first: false,
            announce: false,
            am_interested: false,
            peer_interested: false,
            am_choking: true,
            peer_choking: true,
            outstanding: Vec::new(),
            max_queue: MAX_OUTSTANDING,
            incoming: Vec::new(),
            announced: 0,
            pieces: 0,
            trust: 0,
            snubbed: false,
            refill: false,
            last_rx: now,
            last_tx: now,
        }
    }

    fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    fn is_open(&self) -> bool {
        !matches!(self.phase, Phase::Closing { .. })
    }

    /// Appends `msg` to the control buffer.
    fn push(&mut self, msg: &Message<'_>) -> Result<(), bencode::BufferFull> {
        let at = self.tx.len();
        let len = msg.encoded_len();
        if at + len > TX {
            return Err(bencode::BufferFull);
        }
        let _ = self.tx.resize(at + len, 0);
        msg.write(&mut self.tx[at..]).map(|_| ())
    }

    fn room_for_requests(&self) -> usize {
        (TX - self.tx.len()) / REQUEST_MSG
    }
}

/// What the next call must finish first: the borrow behind the last output has ended.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    /// Drop the message handed out in `Event::Write`.
    Consume {
        slot: usize,
        len: usize,
    },
    /// The control buffer went out.
    ClearTx {
        slot: usize,
    },
}

/// What reading a connection's receive buffer gave.
enum Step {
    /// No whole message.
    NeedMore,
    /// A message was handled; read on.
    Continue,
    /// A block to hand out: `rx[PIECE_HEADER_LEN..len]` of `slot`.
    Write {
        slot: usize,
        piece: u32,
        begin: u32,
        len: usize,
    },
}

/// A BitTorrent swarm member; see the module documentation. `PIECES` and `BLOCKS` bound the
/// torrent (as in [`PiecePicker`]), `PEERS` the connections (at most 64), `RX` each
/// connection's receive buffer.
pub struct Session<
    const PIECES: usize,
    const BLOCKS: usize,
    const PEERS: usize,
    const RX: usize = 34_816,
> {
    config: Config,
    hashes: [[u8; HASH_LEN]; PIECES],
    picker: PiecePicker<PIECES, BLOCKS, PEERS>,
    choker: Choker<PEERS>,
    conns: [Option<Conn<RX>>; PEERS],
    rng: Rng,
    next_conn: u64,
    after: After,
    /// A framed block to send on a slot: `upload_buf[..len]`.
    upload: Option<(usize, usize)>,
    upload_buf: [u8; PIECE_HEADER_LEN + BLOCK_LEN as usize],
    verify: Deque<u32, VERIFY>,
    /// Pieces handed out in `Event::Verify` and not yet checked.
    awaiting: [bool; PIECES],
    refused: Deque<ConnId, REFUSED>,
    bans: Vec<IpAddr, BANS>,
    complete_due: bool,
    next_tick: Instant,
    max_len: u32,
    stats: Stats,
}

impl<const PIECES: usize, const BLOCKS: usize, const PEERS: usize, const RX: usize>
    Session<PIECES, BLOCKS, PEERS, RX>
{
    /// The most bytes one [`Input::Received`] may carry.
    pub const MAX_READ: usize = RX / 2;

    /// A session for the torrent in `config`, whose piece hashes are `hashes` (the
    /// metainfo's `pieces`: 20 bytes per piece), with nothing had and no peers.
    pub fn new(config: Config, hashes: &[u8], seed: u64) -> Result<Self, SessionError> {
        // Half the buffer holds a partial message, the other half one read: a piece
        // message must fit in a half.
        const {
            assert!(
                RX / 2 >= PIECE_HEADER_LEN + BLOCK_LEN as usize,
                "RX must hold two piece messages"
            )
        };
        let mut picker = PiecePicker::new(config.piece_length, config.total_length)?;
        picker.set_initial_threshold(config.initial_random_pieces);
        let count = picker.piece_count() as usize;
        let max_len = (RX / 2 - 4) as u32;
        let bitfield_msg = 1 + Bitfield::byte_len(count as u32);
        let bitfield_fits = bitfield_msg <= max_len && bitfield_msg as usize + 4 <= TX;
        if hashes.len() != count * HASH_LEN || !bitfield_fits {
            return Err(SessionError::Geometry(PickerError::BadGeometry));
        }
        let mut table = [[0; HASH_LEN]; PIECES];
        for (slot, h) in table.iter_mut().zip(hashes.chunks_exact(HASH_LEN)) {
            slot.copy_from_slice(h);
        }
        Ok(Session {
            config: Config {
                max_connections: config.max_connections.min(PEERS),
                ..config
            },
            hashes: table,
            picker,
            choker: Choker::new(config.choker),
            conns: [const { None }; PEERS],
            rng: Rng::new(seed),
            next_conn: 0,
            after: After::Nothing,
            upload: None,
            upload_buf: [0; PIECE_HEADER_LEN + BLOCK_LEN as usize],
            verify: Deque::new(),
            awaiting: [false; PIECES],
            refused: Deque::new(),
            bans: Vec::new(),
            complete_due: false,
            next_tick: Instant::ZERO,
            max_len,
            stats: Stats::default(),
        })
    }

    /// A session for `metainfo`'s torrent with the other settings of [`Config::new`].
    pub fn from_metainfo(
        metainfo: &Metainfo<'_>,
        peer_id: [u8; HASH_LEN],
        seed: u64,
    ) -> Result<Self, SessionError> {
        Self::from_metainfo_with(metainfo, peer_id, seed, |config| config)
    }

    /// A session for `metainfo`'s torrent with the settings of [`Config::new`] as
    /// `adjust` changes them (whether to serve, how many connections).
    pub fn from_metainfo_with(
        metainfo: &Metainfo<'_>,
        peer_id: [u8; HASH_LEN],
        seed: u64,
        adjust: impl FnOnce(Config) -> Config,
    ) -> Result<Self, SessionError> {
        let piece_length = u32::try_from(metainfo.piece_length())
            .map_err(|_| SessionError::Geometry(PickerError::BadGeometry))?;
        let config = Config::new(
            metainfo.info_hash(),
            peer_id,
            piece_length,
            metainfo.total_length(),
        );
        let hashes = metainfo.info().get_bytes(b"pieces").unwrap_or_default();
        Self::new(adjust(config), hashes, seed)
    }

    // ---- queries --------------------------------------------------------------------------

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The piece picker: what we have, availability, block states.
    pub fn picker(&self) -> &PiecePicker<PIECES, BLOCKS, PEERS> {
        &self.picker
    }

    /// Whether we have every piece.
    pub fn is_complete(&self) -> bool {
        self.picker.is_complete()
    }

    /// Connections with the handshake done.
    pub fn peer_count(&self) -> usize {
        self.conns
            .iter()
            .flatten()
            .filter(|c| c.is_active())
            .count()
    }

    /// The connections with the handshake done.
    pub fn peers(&self, now: Instant) -> impl Iterator<Item = PeerInfo> + '_ {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| Some((slot, c.as_ref().filter(|c| c.is_active())?)))
            .map(move |(slot, c)| PeerInfo {
                conn: c.id,
                addr: c.addr,
                am_choking: c.am_choking,
                peer_choking: c.peer_choking,
                am_interested: c.am_interested,
                peer_interested: c.peer_interested,
                pieces: c.pieces,
                snubbed: c.snubbed,
                parole: self.picker.is_on_parole(slot),
                download_rate: self.choker.download_rate(c.id, now).unwrap_or(0),
                upload_rate: self.choker.upload_rate(c.id, now).unwrap_or(0),
            })
    }

    /// Whether `ip` is banned.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.bans.contains(&ip)
    }

    // ---- commands -------------------------------------------------------------------------

    /// We already have `piece` (checked by the driver: resume data, or seeding). Peers
    /// connected now hear of it.
    pub fn have_piece(&mut self, now: Instant, piece: u32) -> Result<(), SessionError> {
        self.settle();
        self.picker.mark_have(piece)?;
        self.announce_have(piece);
        self.recheck_interest(now);
        Ok(())
    }

    /// Dial `peer`. Its handshake is reported as [`Event::Connected`].
    pub fn add_peer(&mut self, now: Instant, peer: PeerAddr) -> Result<ConnId, SessionError> {
        self.settle();
        if self.is_banned(peer.ip()) {
            return Err(SessionError::Banned);
        }
        if self.conns.iter().flatten().any(|c| c.addr == peer) {
            return Err(SessionError::AlreadyConnected);
        }
        let slot = self.free_slot().ok_or(SessionError::Full)?;
        self.next_conn += 1;
        let id = ConnId::outbound(self.next_conn);
        self.conns[slot] = Some(Conn::new(id, peer, Phase::Dial, now));
        Ok(id)
    }

    /// Close a connection.
    pub fn disconnect(&mut self, conn: ConnId) -> Result<(), SessionError> {
        self.settle();
        let slot = self.slot_of(conn).ok_or(SessionError::UnknownConn)?;
        self.close(slot, CloseReason::Local, true);
        Ok(())
    }

    /// The driver's answer to [`Event::Read`]: the block's bytes, sent on `conn` at the next
    /// [`Machine::poll_output`]. Refused if the peer cancelled it or was choked since.
    pub fn send_block(
        &mut self,
        now: Instant,
        conn: ConnId,
        block: BlockRequest,
        data: &[u8],
    ) -> Result<(), SessionError> {
        self.settle();
        if self.upload.is_some() {
            return Err(SessionError::Busy);
        }
        let slot = self.slot_of(conn).ok_or(SessionError::UnknownConn)?;
        let c = self.conns[slot].as_mut().ok_or(SessionError::UnknownConn)?;
        let i = c.incoming[..c.announced]
            .iter()
            .position(|r| *r == block)
            .ok_or(SessionError::NotRequested)?;
        if data.len() != block.length as usize {
            return Err(SessionError::WrongLength);
        }
        c.incoming.remove(i);
        c.announced -= 1;
        c.last_tx = now;
        let head =
            wire::write_piece_header(&mut self.upload_buf, block.index, block.begin, data.len())
                .map_err(|_| SessionError::WrongLength)?;
        self.upload_buf[head..head + data.len()].copy_from_slice(data);
        self.upload = Some((slot, head + data.len()));
        let _ = self.choker.on_uploaded(conn, now, block.length);
        self.stats.uploaded += u64::from(block.length);
        Ok(())
    }

    /// The driver's answer to [`Event::Verify`]: whether the stored piece matches its hash.
    /// A pass is announced to every peer; a failure frees the piece again and puts the
    /// peers that sent it on parole, or bans them.
    pub fn piece_checked(
        &mut self,
        now: Instant,
        piece: u32,
        passed: bool,
    ) -> Result<(), SessionError> {
        self.settle();
        self.take_awaiting(piece)?;
        if passed {
            let sources = self.picker.on_piece_passed(piece)?;
            for slot in sources.contributors.iter() {
                if let Some(c) = self.conns[slot].as_mut() {
                    c.trust = (c.trust + 1).min(TRUST_MAX);
                }
            }
            if let Some(slot) = sources.sole_contributor() {
                let _ = self.picker.set_parole(slot, false);
            }
            self.announce_have(piece);
            if self.picker.is_complete() {
                self.complete_due = true;
            }
            self.recheck_interest(now);
        } else {
            self.stats.hash_failures += 1;
            let failed = self.free_piece(now, piece)?;
            for slot in failed.contributors.iter() {
                let Some(c) = self.conns[slot].as_mut().filter(|c| c.is_active()) else {
                    continue;
                };
                c.trust -= TRUST_PER_FAILURE;
                let _ = self.picker.set_parole(slot, true);
                let sole = failed.sole_contributor() == Some(slot);
                if sole || c.trust <= TRUST_BAN {
                    self.ban(slot);
                }
            }
        }
        Ok(())
    }

    /// The driver's other answer to [`Event::Verify`]: it lost what it stored of `piece` (a
    /// disk error while writing or reading it). The piece is wanted again from scratch and
    /// nobody is blamed.
    pub fn piece_lost(&mut self, now: Instant, piece: u32) -> Result<(), SessionError> {
        self.settle();
        self.take_awaiting(piece)?;
        self.free_piece(now, piece).map(|_| ())
    }

    fn take_awaiting(&mut self, piece: u32) -> Result<(), SessionError> {
        match self.awaiting.get_mut(piece as usize) {
            Some(awaiting) if *awaiting => {
                *awaiting = false;
                Ok(())
            }
            _ => Err(SessionError::NotAwaitingCheck),
        }
    }

    /// Every block of `piece` is wanted again; requests still out for it are cancelled.
    fn free_piece(&mut self, now: Instant, piece: u32) -> Result<PieceSources, SessionError> {
        let sources = self.picker.on_piece_failed(piece)?;
        for slot in 0..PEERS {
            self.cancel_requests(slot, |r| r.index == piece);
        }
        self.recheck_interest(now);
        Ok(sources)
    }

    // ---- connections ----------------------------------------------------------------------

    fn slot_of(&self, conn: ConnId) -> Option<usize> {
        self.conns
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.id == conn && c.is_open()))
    }

    fn free_slot(&self) -> Option<usize> {
        let open = self.conns.iter().flatten().count();
        if open >= self.config.max_connections {
            return None;
        }
        self.conns.iter().position(Option::is_none)
    }

    /// Ends a connection: its pieces and requests leave the picker, it leaves the choker,
    /// and `Output::Close` (when `tell_driver`) and `Event::Closed` fall due.
    fn close(&mut self, slot: usize, reason: CloseReason, tell_driver: bool) {
        let Some(c) = self.conns[slot].as_mut().filter(|c| c.is_open()) else {
            return;
        };
        if c.is_active() {
            let _ = self.picker.on_peer_left(slot);
            let _ = self.choker.remove_peer(c.id);
        }
        if matches!(reason, CloseReason::Protocol(_)) {
            self.stats.violations += 1;
        }
        // A dial not yet handed to the driver has nothing to close.
        let tell_driver = tell_driver && c.phase != Phase::Dial;
        c.phase = Phase::Closing {
            reason,
            tell_driver,
        };
        c.outstanding.clear();
        c.incoming.clear();
        c.announced = 0;
        c.rx.clear();
        c.tx.clear();
        if self.upload.is_some_and(|(s, _)| s == slot) {
            self.upload = None;
        }
    }

    fn ban(&mut self, slot: usize) {
        let Some(ip) = self.conns[slot].as_ref().map(|c| c.addr.ip()) else {
            return;
        };
        if !self.bans.contains(&ip) {
            if self.bans.is_full() {
                self.bans.remove(0);
            }
            let _ = self.bans.push(ip);
        }
        self.stats.banned += 1;
        // Every connection from that IP goes.
        for other in 0..PEERS {
            if self.conns[other]
                .as_ref()
                .is_some_and(|c| c.addr.ip() == ip)
            {
                self.close(other, CloseReason::Banned, true);
            }
        }
    }

    /// Queues a control message; a connection whose buffer is full is closed rather than
    /// left with a message missing.
    fn send(&mut self, slot: usize, msg: Message<'_>) {
        let Some(c) = self.conns[slot].as_mut().filter(|c| c.is_open()) else {
            return;
        };
        if c.push(&msg).is_err() {
            self.close(slot, CloseReason::SendBufferFull, true);
        }
    }

    fn announce_have(&mut self, piece: u32) {
        for slot in 0..PEERS {
            if self.conns[slot].as_ref().is_some_and(|c| c.is_active()) {
                self.send(slot, Message::Have { index: piece });
            }
        }
    }

    fn recheck_interest(&mut self, now: Instant) {
        for slot in 0..PEERS {
            self.update_interest(slot, now);
        }
    }

    /// Sends interested / not interested if what the peer has says we should change, and
    /// closes the connection if we are both seeds.
    fn update_interest(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns[slot].as_ref().filter(|c| c.is_active()) else {
            return;
        };
        let count = self.picker.piece_count();
        if self.picker.is_complete() && c.pieces == count {
            self.close(slot, CloseReason::BothSeeds, true);
            return;
        }
        let want = self.picker.is_interesting(slot);
        if want != c.am_interested {
            self.set_interest(slot, now, want);
        }
    }

    fn set_interest(&mut self, slot: usize, now: Instant, want: bool) {
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        c.am_interested = want;
        c.refill = true;
        let _ = self.choker.set_am_interested(c.id, now, want);
        let msg = if want {
            Message::Interested
        } else {
            Message::NotInterested
        };
        self.send(slot, msg);
    }

    fn on_handshake(&mut self, slot: usize, now: Instant, h: Handshake) {
        let reason = if h.info_hash != self.config.info_hash {
            Some(CloseReason::WrongTorrent)
        } else if h.peer_id == self.config.peer_id {
            Some(CloseReason::SelfConnection)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.close(slot, reason, true);
            return;
        }
        // Two peers that dialled each other at once: both ends must keep the same one of
        // the two connections, so keep the one dialled by the smaller peer id.
        let twin = (0..PEERS).find(|&s| {
            s != slot
                && self.conns[s]
                    .as_ref()
                    .is_some_and(|c| c.is_active() && c.peer_id == h.peer_id)
        });
        if let Some(twin) = twin {
            let we_dial_first = self.config.peer_id < h.peer_id;
            let this_is_ours = self.conns[slot]
                .as_ref()
                .is_some_and(|c| !c.id.is_inbound());
            let twin_is_ours = self.conns[twin]
                .as_ref()
                .is_some_and(|c| !c.id.is_inbound());
            if this_is_ours == twin_is_ours || this_is_ours != we_dial_first {
                self.close(slot, CloseReason::Duplicate, true);
                return;
            }
            self.close(twin, CloseReason::Duplicate, true);
        }
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        c.phase = Phase::Active;
        c.since = now;
        c.peer_id = h.peer_id;
        c.fast = h.reserved.fast();
        c.announce = true;
        let (id, fast, ext) = (c.id, c.fast, h.reserved.extension_protocol());
        let _ = self.choker.add_peer(id, now);
        let (have, count) = (self.picker.have_count(), self.picker.piece_count());
        if fast && have == count {
            self.send(slot, Message::HaveAll);
        } else if fast && have == 0 {
            self.send(slot, Message::HaveNone);
        } else if have > 0 {
            self.send_bitfield(slot);
        }
        if ext {
            self.send(
                slot,
                Message::Extended {
                    id: wire::EXTENDED_HANDSHAKE,
                    payload: EXTENDED_HANDSHAKE,
                },
            );
        }
    }

    fn send_bitfield(&mut self, slot: usize) {
        let count = self.picker.piece_count();
        let bytes = Bitfield::byte_len(count) as usize;
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        // Fits: checked against TX in `new`, and this is the first message after the
        // handshake.
        let at = c.tx.len();
        if c.tx.resize(at + 5 + bytes, 0).is_err() {
            self.close(slot, CloseReason::SendBufferFull, true);
            return;
        }
        let out = &mut c.tx[at..];
        out[..4].copy_from_slice(&(1 + bytes as u32).to_be_bytes());
        out[4] = wire::id::BITFIELD;
        for p in 0..count {
            if self.picker.has(p) {
                out[5 + (p / 8) as usize] |= 0x80 >> (p % 8);
            }
        }
    }

    // ---- receiving --------------------------------------------------------------------------

    /// Finishes what the last output lent out.
    fn settle(&mut self) {
        match core::mem::replace(&mut self.after, After::Nothing) {
            After::Nothing => {}
            After::Consume { slot, len } => {
                if let Some(c) = self.conns[slot].as_mut() {
                    consume(&mut c.rx, len);
                }
            }
            After::ClearTx { slot } => {
                if let Some(c) = self.conns[slot].as_mut() {
                    c.tx.clear();
                }
            }
        }
    }

    /// Reads received messages until one is a block to hand out.
    fn read_all(&mut self, now: Instant) -> Option<Step> {
        for slot in 0..PEERS {
            while let Some(c) = self.conns[slot].as_mut() {
                if !c.rx_ready || !matches!(c.phase, Phase::Handshake | Phase::Active) {
                    break;
                }
                match self.read_one(slot, now) {
                    Step::NeedMore => {
                        if let Some(c) = self.conns[slot].as_mut() {
                            c.rx_ready = false;
                        }
                        break;
                    }
                    Step::Continue => {}
                    write @ Step::Write { .. } => return Some(write),
                }
            }
        }
        None
    }

    fn read_one(&mut self, slot: usize, now: Instant) -> Step {
        let Some(c) = self.conns[slot].as_mut() else {
            return Step::NeedMore;
        };
        if c.phase == Phase::Handshake {
            return match Handshake::parse(&c.rx) {
                Ok(None) => Step::NeedMore,
                Ok(Some(h)) => {
                    consume(&mut c.rx, HANDSHAKE_LEN);
                    self.on_handshake(slot, now, h);
                    Step::Continue
                }
                Err(_) => {
                    self.close(slot, CloseReason::Protocol(Violation::Handshake), true);
                    Step::Continue
                }
            };
        }
        let (got, used) = match wire::frame(&c.rx, self.max_len) {
            Ok(None) => return Step::NeedMore,
            Ok(Some((msg, used))) => (Got::from(msg), used),
            Err(e) => {
                self.close(slot, CloseReason::Protocol(Violation::Wire(e)), true);
                return Step::Continue;
            }
        };
        let step = self.on_message(slot, now, got, used);
        if !matches!(step, Step::Write { .. })
            && let Some(c) = self.conns[slot].as_mut()
        {
            consume(&mut c.rx, used);
        }
        step
    }

    /// Handles one message of `used` bytes at the front of `slot`'s receive buffer.
    fn on_message(&mut self, slot: usize, now: Instant, got: Got, used: usize) -> Step {
        let count = self.picker.piece_count();
        let Some(c) = self.conns[slot].as_mut() else {
            return Step::Continue;
        };
        // BEP 10's handshake may come before the bitfield (we send it after ours).
        let first = !c.got_first;
        c.got_first |= !matches!(got, Got::Extended { .. });
        let fast = c.fast;
        let fail = |v| Err(CloseReason::Protocol(v));
        let outcome: Result<Step, CloseReason> = match got {
            Got::KeepAlive => Ok(Step::Continue),
            Got::Choke => {
                c.peer_choking = true;
                c.outstanding.clear();
                let id = c.id;
                let _ = self.choker.set_peer_choking(id, now, true);
                // Under BEP 6 the peer should reject what it will not send; we give every
                // request back at once either way (a late block is then wasted).
                let _ = self.picker.abort_requests_of(slot);
                Ok(Step::Continue)
            }
            Got::Unchoke => {
                c.peer_choking = false;
                c.refill = true;
                let id = c.id;
                let _ = self.choker.set_peer_choking(id, now, false);
                Ok(Step::Continue)
            }
            Got::Interested | Got::NotInterested => {
                let yes = matches!(got, Got::Interested);
                c.peer_interested = yes;
                let id = c.id;
                let _ = self.choker.set_peer_interested(id, yes);
                if yes && self.config.serve && self.choker.unchoke_if_free(id) == Ok(true) {
                    self.apply(slot, Decision::Unchoke);
                }
                Ok(Step::Continue)
            }
            Got::Have(index) if index >= count => fail(Violation::Have),
            Got::Have(index) => {
                if !self.picker.peer_has(slot, index) {
                    c.pieces += 1;
                }
                let _ = self.picker.on_have(slot, index);
                c.refill = true;
                if !c.am_interested && !self.picker.has(index) {
                    self.set_interest(slot, now, true);
                } else if self.picker.is_complete() && c.pieces == count {
                    self.close(slot, CloseReason::BothSeeds, true);
                }
                Ok(Step::Continue)
            }
            Got::Bitfield | Got::HaveAll | Got::HaveNone if !first => fail(Violation::LateBitfield),
            Got::HaveAll | Got::HaveNone if !fast => fail(Violation::NotFast),
            Got::Bitfield => {
                let bytes = &c.rx[5..used];
                match Bitfield::new(bytes, count) {
                    Ok(bits) => {
                        c.pieces = bits.count();
                        let _ = self.picker.on_bitfield(slot, &bits);
                        self.update_interest(slot, now);
                        Ok(Step::Continue)
                    }
                    Err(_) => fail(Violation::Bitfield),
                }
            }
            Got::HaveAll | Got::HaveNone => {
                let all = matches!(got, Got::HaveAll);
                c.pieces = if all { count } else { 0 };
                let _ = if all {
                    self.picker.on_have_all(slot)
                } else {
                    self.picker.on_have_none(slot)
                };
                self.update_interest(slot, now);
                Ok(Step::Continue)
            }
            Got::Request(r) => self.on_request(slot, r),
            Got::Cancel(r) => {
                if let Some(i) = c.incoming.iter().position(|q| *q == r) {
                    c.incoming.remove(i);
                    if i < c.announced {
                        c.announced -= 1;
                    }
                    // BEP 6: a cancelled request is answered with a reject.
                    if fast {
                        self.send(slot, Message::RejectRequest(r));
                    }
                }
                Ok(Step::Continue)
            }
            Got::Reject(_) if !fast => fail(Violation::NotFast),
            Got::Reject(r) => {
                if let Some(i) = c.outstanding.iter().position(|q| *q == r) {
                    c.outstanding.remove(i);
                    let _ = self.picker.abort_request(slot, &r);
                }
                c.refill = true;
                Ok(Step::Continue)
            }
            Got::Piece { index, begin } => self.on_block(slot, now, index, begin, used),
            Got::Extended { id } => {
                if id == wire::EXTENDED_HANDSHAKE
                    && let Ok(v) = bencode::decode(&c.rx[6..used])
                    && let Some(reqq) = v.as_dict().and_then(|d| d.get_int(b"reqq"))
                {
                    c.max_queue = usize::try_from(reqq).unwrap_or(0).clamp(1, MAX_OUTSTANDING);
                }
                Ok(Step::Continue)
            }
            Got::Ignored => {
                self.stats.ignored += 1;
                Ok(Step::Continue)
            }
        };
        outcome.unwrap_or_else(|reason| {
            self.close(slot, reason, true);
            Step::Continue
        })
    }

    fn on_request(&mut self, slot: usize, r: BlockRequest) -> Result<Step, CloseReason> {
        let piece_len = self.picker.piece_len(r.index);
        let inside = r
            .begin
            .checked_add(r.length)
            .is_some_and(|end| end <= piece_len);
        if r.length == 0 || r.length > MAX_REQUEST_LEN || !inside {
            return Err(CloseReason::Protocol(Violation::Request));
        }
        let serve = self.config.serve;
        let has = self.picker.has(r.index);
        let Some(c) = self.conns[slot].as_mut() else {
            return Ok(Step::Continue);
        };
        if c.incoming.contains(&r) {
            return Ok(Step::Continue);
        }
        if !serve || c.am_choking || !has || c.incoming.push(r).is_err() {
            self.stats.refused_requests += 1;
            if c.fast {
                self.send(slot, Message::RejectRequest(r));
            }
        }
        Ok(Step::Continue)
    }

    fn on_block(
        &mut self,
        slot: usize,
        now: Instant,
        index: u32,
        begin: u32,
        used: usize,
    ) -> Result<Step, CloseReason> {
        let length = (used - PIECE_HEADER_LEN) as u32;
        let r = BlockRequest {
            index,
            begin,
            length,
        };
        // A misaligned offset names another block's offset, so the comparison fails.
        if self.picker.block(index, begin / BLOCK_LEN) != Some(r) {
            return Err(CloseReason::Protocol(Violation::Block));
        }
        let Some(c) = self.conns[slot].as_mut() else {
            return Ok(Step::Continue);
        };
        // Only blocks we asked this peer for are taken: one that comes after a cancel, a
        // choke or a failed check is wasted, and nobody can slip data into a piece.
        let Some(i) = c.outstanding.iter().position(|q| *q == r) else {
            self.stats.wasted += u64::from(length);
            return Ok(Step::Continue);
        };
        c.outstanding.remove(i);
        c.refill = true;
        let id = c.id;
        let got = self
            .picker
            .on_block_received(slot, &r)
            .map_err(|_| CloseReason::Protocol(Violation::Block))?;
        if got.duplicate {
            self.stats.wasted += u64::from(length);
            return Ok(Step::Continue);
        }
        // Only a block we lacked counts as service: resending old blocks does not lift a
        // snub or earn a regular slot.
        c.snubbed = false;
        let _ = self.choker.on_downloaded(id, now, length);
        self.stats.downloaded += u64::from(length);
        // End game: the other peers asked for this block need not send it.
        for other in got.cancel.iter() {
            if let Some(o) = self.conns[other].as_mut()
                && let Some(i) = o.outstanding.iter().position(|q| *q == r)
            {
                o.outstanding.remove(i);
                o.refill = true;
                self.send(other, Message::Cancel(r));
            }
        }
        if got.piece_complete {
            self.awaiting[index as usize] = true;
            let _ = self.verify.push_back(index);
        }
        Ok(Step::Write {
            slot,
            piece: index,
            begin,
            len: used,
        })
    }

    // ---- timers and requests --------------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        let cfg = self.config;
        for slot in 0..PEERS {
            let Some(c) = self.conns[slot].as_mut() else {
                continue;
            };
            match c.phase {
                Phase::Connecting if now.saturating_since(c.since) >= cfg.handshake_timeout => {
                    self.close(slot, CloseReason::Unreachable, true);
                }
                Phase::Handshake if now.saturating_since(c.since) >= cfg.handshake_timeout => {
                    self.close(slot, CloseReason::Timeout, true);
                }
                Phase::Active if now.saturating_since(c.last_rx) >= cfg.idle_timeout => {
                    self.close(slot, CloseReason::Idle, true);
                }
                Phase::Active => {
                    c.refill = true;
                    let keepalive = now.saturating_since(c.last_tx) >= cfg.keepalive_interval;
                    let snub = !c.snubbed
                        && !c.outstanding.is_empty()
                        && self.choker.is_snubbed(c.id, now) == Some(true);
                    if keepalive {
                        c.last_tx = now;
                        self.send(slot, Message::KeepAlive);
                    }
                    if snub {
                        self.snub(slot);
                    }
                }
                _ => {}
            }
        }
        if cfg.serve && now >= self.choker.next_rechoke() {
            let seeding = self.picker.is_complete();
            for (conn, decision) in self.choker.rechoke(now, &mut self.rng, seeding) {
                if let Some(slot) = self.slot_of(conn) {
                    self.apply(slot, decision);
                }
            }
        }
        self.next_tick = now + TICK;
    }

    /// The peer sent nothing for a minute: its requests go to other peers (cancelled, so
    /// that it does not send them late), and it gets one at a time until it sends a block.
    fn snub(&mut self, slot: usize) {
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        c.snubbed = true;
        self.cancel_requests(slot, |_| true);
    }

    /// Cancels our requests to `slot` that `which` picks: the peer is told, the picker
    /// gives the blocks to whoever asks next.
    fn cancel_requests(&mut self, slot: usize, which: impl Fn(&BlockRequest) -> bool) {
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        let mut gone: Vec<BlockRequest, MAX_OUTSTANDING> = Vec::new();
        c.outstanding.retain(|r| {
            // Cannot fail: a subsequence of `outstanding`.
            !which(r) || gone.push(*r).is_err()
        });
        c.refill = true;
        for r in &gone {
            let _ = self.picker.abort_request(slot, r);
            self.send(slot, Message::Cancel(*r));
        }
    }

    fn apply(&mut self, slot: usize, decision: Decision) {
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        match decision {
            Decision::Unchoke => {
                c.am_choking = false;
                self.send(slot, Message::Unchoke);
            }
            Decision::Choke => {
                c.am_choking = true;
                let dropped = core::mem::take(&mut c.incoming);
                c.announced = 0;
                let fast = c.fast;
                self.stats.refused_requests += dropped.len() as u64;
                self.send(slot, Message::Choke);
                // BEP 6: choking no longer drops requests silently; each is rejected.
                if fast {
                    for r in dropped {
                        self.send(slot, Message::RejectRequest(r));
                    }
                }
            }
        }
    }

    /// Tops up the requests to a peer that unchokes us, to the queue its rate deserves.
    fn refill(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        c.refill = false;
        if !c.is_active() || c.peer_choking || !c.am_interested {
            return;
        }
        let desired = if c.snubbed {
            1
        } else {
            let rate = self.choker.download_rate(c.id, now).unwrap_or(0);
            let bytes = rate * self.config.request_queue_time.as_micros() / 1_000_000;
            ((bytes / u64::from(BLOCK_LEN)) as usize)
                .max(MIN_QUEUE)
                .min(c.max_queue)
        };
        let want = desired
            .saturating_sub(c.outstanding.len())
            .min(c.room_for_requests());
        if want == 0 {
            return;
        }
        let mut picks = [BlockRequest {
            index: 0,
            begin: 0,
            length: 0,
        }; MAX_OUTSTANDING];
        let out = &mut picks[..want];
        let n = self.picker.pick(slot, &mut self.rng, out).unwrap_or(0);
        if n > 0 && c.outstanding.is_empty() {
            let _ = self.choker.on_requested(c.id, now);
        }
        for r in &picks[..n] {
            if self.picker.mark_requested(slot, r).is_ok()
                && let Some(c) = self.conns[slot].as_mut()
                && c.outstanding.push(*r).is_ok()
            {
                self.send(slot, Message::Request(*r));
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .any(Option::is_some)
            .then_some(self.next_tick)
    }
}

/// Drops the first `n` bytes of a receive buffer.
fn consume<const N: usize>(rx: &mut Vec<u8, N>, n: usize) {
    let n = n.min(rx.len());
    rx.copy_within(n.., 0);
    rx.truncate(rx.len() - n);
}

/// A framed message without borrows, so that the session can change while it is handled;
/// the payloads stay in the receive buffer at known offsets.
enum Got {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    /// `rx[5..used]`.
    Bitfield,
    Request(BlockRequest),
    /// The block is `rx[13..used]`.
    Piece {
        index: u32,
        begin: u32,
    },
    Cancel(BlockRequest),
    HaveAll,
    HaveNone,
    Reject(BlockRequest),
    /// The payload is `rx[6..used]`.
    Extended {
        id: u8,
    },
    /// DHT port, suggest, allowed-fast and unknown ids: not acted on.
    Ignored,
}

impl From<Message<'_>> for Got {
    fn from(m: Message<'_>) -> Self {
        match m {
            Message::KeepAlive => Got::KeepAlive,
            Message::Choke => Got::Choke,
            Message::Unchoke => Got::Unchoke,
            Message::Interested => Got::Interested,
            Message::NotInterested => Got::NotInterested,
            Message::Have { index } => Got::Have(index),
            Message::Bitfield(_) => Got::Bitfield,
            Message::Request(r) => Got::Request(r),
            Message::Piece { index, begin, .. } => Got::Piece { index, begin },
            Message::Cancel(r) => Got::Cancel(r),
            Message::HaveAll => Got::HaveAll,
            Message::HaveNone => Got::HaveNone,
            Message::RejectRequest(r) => Got::Reject(r),
            Message::Extended { id, .. } => Got::Extended { id },
            Message::Port(_)
            | Message::Suggest { .. }
            | Message::AllowedFast { .. }
            | Message::Unknown { .. } => Got::Ignored,
        }
    }
}

impl<const PIECES: usize, const BLOCKS: usize, const PEERS: usize, const RX: usize> Machine
    for Session<PIECES, BLOCKS, PEERS, RX>
{
    type Event<'a>
        = Event<'a>
    where
        Self: 'a;

    fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        self.settle();
        match input {
            Input::Datagram { .. } => self.stats.ignored += 1,
            Input::Connected { conn } => {
                let handshake = self.handshake();
                let slot = self.slot_of(conn);
                match slot.and_then(|s| self.conns[s].as_mut()) {
                    Some(c) if c.phase == Phase::Connecting => {
                        c.phase = Phase::Handshake;
                        c.since = now;
                        c.last_rx = now;
                        c.last_tx = now;
                        let _ = c.tx.extend_from_slice(&handshake);
                    }
                    _ => self.stats.ignored += 1,
                }
            }
            Input::Accepted { conn, peer } => {
                let slot = (!self.is_banned(peer.ip()))
                    .then(|| self.free_slot())
                    .flatten();
                match slot {
                    Some(slot) => {
                        let mut c = Conn::new(conn, peer, Phase::Handshake, now);
                        let _ = c.tx.extend_from_slice(&self.handshake());
                        self.conns[slot] = Some(c);
                    }
                    None => {
                        if self.refused.push_back(conn).is_err() {
                            self.stats.ignored += 1;
                        }
                    }
                }
            }
            Input::Received { conn, bytes } => {
                let Some(slot) = self.slot_of(conn) else {
                    self.stats.ignored += 1;
                    return;
                };
                let Some(c) = self.conns[slot].as_mut() else {
                    return;
                };
                if !matches!(c.phase, Phase::Handshake | Phase::Active) {
                    self.stats.ignored += 1;
                } else if c.rx.extend_from_slice(bytes).is_err() {
                    self.close(slot, CloseReason::Protocol(Violation::Overflow), true);
                } else {
                    c.rx_ready = true;
                    c.last_rx = now;
                }
            }
            Input::Closed { conn } => match self.slot_of(conn) {
                Some(slot) => {
                    let reason = match self.conns[slot].as_ref().map(|c| c.phase) {
                        Some(Phase::Connecting) => CloseReason::Unreachable,
                        _ => CloseReason::Remote,
                    };
                    self.close(slot, reason, false);
                }
                None => self.stats.ignored += 1,
            },
        }
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, Event<'_>> {
        self.settle();
        if let Some(piece) = self.verify.pop_front() {
            let hash = self.hashes[piece as usize];
            return Output::Event(Event::Verify { piece, hash });
        }
        if let Some(Step::Write {
            slot,
            piece,
            begin,
            len,
        }) = self.read_all(now)
        {
            self.after = After::Consume { slot, len };
            // Every path returns, so the borrow may outlive this call (the slot is there:
            // reading it just now found the block).
            return match self.conns[slot].as_ref() {
                Some(c) => Output::Event(Event::Write {
                    piece,
                    begin,
                    data: &c.rx[PIECE_HEADER_LEN..len],
                }),
                None => Output::Wait(Some(now)),
            };
        }
        if now >= self.next_tick {
            self.tick(now);
        }
        for slot in 0..PEERS {
            if self.conns[slot].as_ref().is_some_and(|c| c.refill) {
                self.refill(slot, now);
            }
        }
        if let Some(conn) = self.refused.pop_front() {
            return Output::Close { conn };
        }
        if self.complete_due {
            self.complete_due = false;
            return Output::Event(Event::Complete);
        }
        // Lifecycle: dials, closes, handshakes done; then requests to read, control
        // messages, and a block, each connection's control messages before its block.
        for slot in 0..PEERS {
            let Some(c) = self.conns[slot].as_mut() else {
                continue;
            };
            match c.phase {
                Phase::Dial => {
                    c.phase = Phase::Connecting;
                    return Output::Connect {
                        conn: c.id,
                        peer: c.addr,
                    };
                }
                Phase::Closing {
                    reason,
                    tell_driver: true,
                } => {
                    c.phase = Phase::Closing {
                        reason,
                        tell_driver: false,
                    };
                    return Output::Close { conn: c.id };
                }
                Phase::Closing { reason, .. } => {
                    let (conn, peer) = (c.id, c.addr);
                    self.conns[slot] = None;
                    return Output::Event(Event::Closed { conn, peer, reason });
                }
                _ => {}
            }
            if c.announce {
                c.announce = false;
                return Output::Event(Event::Connected {
                    conn: c.id,
                    peer: c.addr,
                    peer_id: c.peer_id,
                });
            }
            if c.announced < c.incoming.len() {
                let block = c.incoming[c.announced];
                c.announced += 1;
                return Output::Event(Event::Read { conn: c.id, block });
            }
        }
        let pending_tx = |c: &Option<Conn<RX>>| c.as_ref().is_some_and(|c| !c.tx.is_empty());
        if let Some(slot) = self.conns.iter().position(pending_tx) {
            self.after = After::ClearTx { slot };
            return match self.conns[slot].as_mut() {
                Some(c) => {
                    c.last_tx = now;
                    Output::Transmit {
                        to: Dest::Conn(c.id),
                        payload: &c.tx,
                    }
                }
                None => Output::Wait(Some(now)),
            };
        }
        if let Some((slot, len)) = self.upload.take() {
            return match self.conns[slot].as_ref() {
                Some(c) => Output::Transmit {
                    to: Dest::Conn(c.id),
                    payload: &self.upload_buf[..len],
                },
                None => Output::Wait(Some(now)),
            };
        }
        Output::Wait(self.next_deadline())
    }
}

impl<const PIECES: usize, const BLOCKS: usize, const PEERS: usize, const RX: usize>
    Session<PIECES, BLOCKS, PEERS, RX>
{
    fn handshake(&self) -> [u8; HANDSHAKE_LEN] {
        Handshake {
            reserved: Reserved::NONE.with_fast().with_extension_protocol(),
            info_hash: self.config.info_hash,
            peer_id: self.config.peer_id,
        }
        .to_bytes()
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
