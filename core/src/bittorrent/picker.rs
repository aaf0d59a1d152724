//! The piece picker: which blocks to request from which peer, as libtorrent's
//! `piece_picker.cpp` and `request_blocks.cpp` decide it, without I/O or allocation.
//!
//! BEP 3 leaves the order to the client ("a good piece selection strategy is rarest first");
//! libtorrent's refinements, which this follows:
//!
//! 1. **Partial pieces first.** Blocks of pieces already in progress are handed out before a
//!    new piece is started, the most advanced piece first, so pieces finish, get verified and
//!    can be shared sooner.
//! 2. **Initial random picking.** While we have fewer than [`INITIAL_PICKER_THRESHOLD`]
//!    pieces, a new piece is chosen at random among those the peer has: the rarest pieces
//!    are slow to get from few peers, and we want something to trade quickly.
//! 3. **Rarest first.** After that, a new piece is one of those the peer has with the
//!    fewest copies among our peers, at random among equally rare ones (so that peers
//!    starting together do not all chase the same piece).
//! 4. **Strict end game.** Only once no block anywhere is free (every block we lack is
//!    requested or in) does a peer get blocks that another peer was already asked for
//!    (libtorrent's `strict_end_game_mode`, on by default). When such a block arrives,
//!    [`Received::cancel`] names the other peers it is still requested from.
//!
//! # Calling it
//!
//! The driver maps each connection to a peer slot `0..PEERS` and tells the picker what the
//! peer has ([`PiecePicker::on_bitfield`], [`on_have`](PiecePicker::on_have),
//! [`on_have_all`](PiecePicker::on_have_all), [`on_have_none`](PiecePicker::on_have_none)).
//! When the peer unchokes us it calls [`pick`](PiecePicker::pick), which changes nothing,
//! sends the requests it wants and reports each with
//! [`mark_requested`](PiecePicker::mark_requested). Blocks come back through
//! [`on_block_received`](PiecePicker::on_block_received); once it says the piece is complete
//! the driver checks the SHA-1 and calls [`on_piece_passed`](PiecePicker::on_piece_passed)
//! or [`on_piece_failed`](PiecePicker::on_piece_failed) (which names the peers to put on
//! parole). A choked, snubbed or rejecting peer's requests are given back with
//! [`abort_requests_of`](PiecePicker::abort_requests_of) or
//! [`abort_request`](PiecePicker::abort_request); a peer that leaves goes through
//! [`on_peer_left`](PiecePicker::on_peer_left), which also takes its pieces out of the
//! availability counts.
//!
//! # Capacities and RAM
//!
//! `PiecePicker<PIECES, BLOCKS, PEERS>` holds a torrent of up to `PIECES` pieces of up to
//! `BLOCKS` blocks of [`BLOCK_LEN`] each (a 256 KiB piece is 16 blocks), shared with up to
//! `PEERS` peers, at most 64 (peer sets are `u64` bit masks; checked when the type is
//! built). It takes at most `PIECES * (9 + 16 * BLOCKS) + 32` bytes: per piece an 8-byte
//! mask of the peers that have it and a have flag, and per block a 16-byte state (a peer
//! mask and its kind). Nothing is kept per peer beyond those masks. For example 1024 pieces
//! of 256 KiB (a 256 MiB torrent) and 64 peers take about 265 KiB; the value is built on
//! the stack by [`PiecePicker::new`], so place it in a `static` on small targets.
//!
//! Work per call is bounded by the capacities: `pick` scans the pieces once per piece it
//! picks (so at most `out.len()` scans), and the others touch one piece, or every piece
//! once.

use super::wire::{BLOCK_LEN, Bitfield, BlockRequest};
use crate::Rng;
use core::fmt;

/// A block to request: piece index, byte offset and length, as the request message carries
/// them.
pub type BlockRef = BlockRequest;

/// Pieces we must have before leaving random picking for rarest first: libtorrent's
/// `settings_pack::initial_picker_threshold`, default 4.
pub const INITIAL_PICKER_THRESHOLD: u32 = 4;

/// A set of peer slots (at most 64), as a bit mask: bit `i` is peer `i`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct PeerSet(pub u64);

impl PeerSet {
    /// No peers.
    pub const EMPTY: PeerSet = PeerSet(0);

    /// Whether `peer` is in the set.
    pub const fn contains(self, peer: usize) -> bool {
        peer < 64 && self.0 & (1 << peer) != 0
    }

    /// Peers in the set.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The peers, lowest slot first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            let peer = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            Some(peer)
        })
    }
}

/// Where one block stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockState {
    /// Nobody was asked for it.
    Free,
    /// Asked of these peers (more than one only in the end game).
    Requested(PeerSet),
    /// In, from this peer, and not yet known to be written (libtorrent's "writing").
    Writing(usize),
    /// Written; `Some(peer)` it came from, or `None` for a piece we had or that passed.
    Finished(Option<usize>),
}

/// Who sent the blocks of a piece that was checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PieceSources {
    /// The peers connected now that sent blocks of it.
    pub contributors: PeerSet,
    /// Blocks from peers that left since (or of unknown origin).
    pub unattributed: u32,
}

impl PieceSources {
    /// The one peer that sent every block, if there is one.
    pub fn sole_contributor(&self) -> Option<usize> {
        (self.contributors.len() == 1 && self.unattributed == 0)
            .then(|| self.contributors.iter().next())
            .flatten()
    }
}

/// What [`PiecePicker::on_block_received`] learned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Received {
    /// Every block of the piece is now in: check its hash, then call
    /// [`PiecePicker::on_piece_passed`] or [`PiecePicker::on_piece_failed`]. True only on
    /// the block that completes it.
    pub piece_complete: bool,
    /// The other peers this block was requested from: send them a cancel (end game).
    pub cancel: PeerSet,
    /// We had this block already (an end-game duplicate); nothing changed.
    pub duplicate: bool,
}

/// How many full copies of the torrent our swarm holds, counting ours: libtorrent's
/// `distributed_copies`. Copies of the rarest piece, and how many pieces have more.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DistributedCopies {
    /// Copies of the rarest piece(s) among our peers and us.
    pub min: u32,
    /// Pieces with more than `min` copies.
    pub above_min: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
}

impl DistributedCopies {
    /// `min` plus the share of pieces above it: libtorrent's floating-point form.
    pub fn value(&self) -> f64 {
        f64::from(self.min) + self.fraction()
    }

    /// The share of pieces with more than `min` copies, in `0..=1`.
    pub fn fraction(&self) -> f64 {
        if self.piece_count == 0 {
            0.0
        } else {
            f64::from(self.above_min) / f64::from(self.piece_count)
        }
    }
}

/// Why the picker refused an input. The picker is unchanged.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PickerError {
    /// The torrent does not fit the capacities, or its lengths do not add up.
    BadGeometry,
    /// A piece index past the last piece.
    PieceOutOfRange(u32),
    /// A peer slot at or past `PEERS`.
    PeerOutOfRange(usize),
    /// A block that is not one of the piece's 16 KiB blocks (wrong offset or length).
    BadBlock(BlockRequest),
    /// A bitfield for another piece count than the torrent's.
    WrongBitfieldLength {
        /// The bitfield's piece count.
        piece_count: u32,
        /// The torrent's.
        expected: u32,
    },
    /// We have the piece already.
    AlreadyHave(u32),
}

impl fmt::Display for PickerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickerError::BadGeometry => f.write_str("torrent geometry does not fit the picker"),
            PickerError::PieceOutOfRange(i) => write!(f, "piece {i} out of range"),
            PickerError::PeerOutOfRange(p) => write!(f, "peer slot {p} out of range"),
            PickerError::BadBlock(b) => write!(
                f,
                "no block at piece {} offset {} of length {}",
                b.index, b.begin, b.length
            ),
            PickerError::WrongBitfieldLength {
                piece_count,
                expected,
            } => write!(
                f,
                "bitfield of {piece_count} pieces, torrent has {expected}"
            ),
            PickerError::AlreadyHave(i) => write!(f, "piece {i} already had"),
        }
    }
}

impl core::error::Error for PickerError {}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Free,
    Requested,
    Writing,
    Finished,
}

/// One block: its kind and, for `Requested` the peers asked, for `Writing`/`Finished` the
/// one bit of the peer it came from (zero when unknown).
#[derive(Clone, Copy, Debug)]
struct Block {
    kind: Kind,
    peers: u64,
}

impl Block {
    const FREE: Block = Block {
        kind: Kind::Free,
        peers: 0,
    };
}

/// A rarest-first piece picker for one torrent; see the module documentation.
#[derive(Clone, Debug)]
pub struct PiecePicker<const PIECES: usize, const BLOCKS: usize, const PEERS: usize> {
    piece_count: u32,
    piece_len: u32,
    last_piece_len: u32,
    have_count: u32,
    /// Pieces to have before rarest first takes over from random picking.
    initial_threshold: u32,
    /// Peers on parole.
    parole: u64,
    /// Free blocks in pieces we lack: zero means the end game.
    free_blocks: u32,
    /// Per piece, the peers that have it.
    peers_with: [u64; PIECES],
    have: [bool; PIECES],
    blocks: [[Block; BLOCKS]; PIECES],
}

impl<const PIECES: usize, const BLOCKS: usize, const PEERS: usize>
    PiecePicker<PIECES, BLOCKS, PEERS>
{
    /// A picker for `total_len` bytes in pieces of `piece_len` (the metainfo's `length`, or
    /// sum of file lengths, and `piece length`), with nothing had and no peers.
    ///
    /// [`PickerError::BadGeometry`] if there are no pieces, more than `PIECES`, a piece of
    /// more than `BLOCKS` blocks, or `total_len` does not fit `piece_len`.
    pub fn new(piece_len: u32, total_len: u64) -> Result<Self, PickerError> {
        // Peer sets are u64 masks: refuse to build the type otherwise.
        const { assert!(PEERS <= 64, "a PiecePicker tracks at most 64 peers") };
        if piece_len == 0 || total_len == 0 {
            return Err(PickerError::BadGeometry);
        }
        let count = total_len.div_ceil(u64::from(piece_len));
        let blocks_per_piece = piece_len.div_ceil(BLOCK_LEN) as usize;
        if count > PIECES as u64 || blocks_per_piece > BLOCKS {
            return Err(PickerError::BadGeometry);
        }
        let piece_count = u32::try_from(count).map_err(|_| PickerError::BadGeometry)?;
        // count >= 1 and total_len > (count - 1) * piece_len, so this is in 1..=piece_len.
        let last = total_len - (count - 1) * u64::from(piece_len);
        let last_piece_len = u32::try_from(last).map_err(|_| PickerError::BadGeometry)?;
        let mut picker = PiecePicker {
            piece_count,
            piece_len,
            last_piece_len,
            have_count: 0,
            initial_threshold: INITIAL_PICKER_THRESHOLD,
            parole: 0,
            free_blocks: 0,
            peers_with: [0; PIECES],
            have: [false; PIECES],
            blocks: [[Block::FREE; BLOCKS]; PIECES],
        };
        for p in 0..piece_count {
            picker.free_blocks += picker.block_count(p);
        }
        Ok(picker)
    }

    // ---- geometry -------------------------------------------------------------------------

    /// Pieces in the torrent.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Bytes in `piece` (the last one may be shorter); 0 past the end.
    pub fn piece_len(&self, piece: u32) -> u32 {
        if piece >= self.piece_count {
            0
        } else if piece + 1 == self.piece_count {
            self.last_piece_len
        } else {
            self.piece_len
        }
    }

    /// Blocks in `piece`; 0 past the end.
    pub fn block_count(&self, piece: u32) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_LEN)
    }

    /// The request for block `block` of `piece`: [`BLOCK_LEN`] bytes, the last block of
    /// the last piece shorter; `None` past the end.
    pub fn block(&self, piece: u32, block: u32) -> Option<BlockRef> {
        if block >= self.block_count(piece) {
            return None;
        }
        let begin = block * BLOCK_LEN;
        Some(BlockRequest {
            index: piece,
            begin,
            length: (self.piece_len(piece) - begin).min(BLOCK_LEN),
        })
    }

    /// Where block `block` of `piece` stands; `None` past the end.
    pub fn block_state(&self, piece: u32, block: u32) -> Option<BlockState> {
        if block >= self.block_count(piece) {
            return None;
        }
        let b = self.blocks[piece as usize][block as usize];
        let from = || (b.peers != 0).then(|| b.peers.trailing_zeros() as usize);
        Some(match b.kind {
            Kind::Free => BlockState::Free,
            Kind::Requested => BlockState::Requested(PeerSet(b.peers)),
            Kind::Writing => BlockState::Writing(from().unwrap_or(0)),
            Kind::Finished => BlockState::Finished(from()),
        })
    }

    /// Pick new pieces at random until we have `pieces` of them ([`INITIAL_PICKER_THRESHOLD`]
    /// by default). `u32::MAX` makes a random picker, the baseline that rarest first is
    /// measured against.
    pub fn set_initial_threshold(&mut self, pieces: u32) {
        self.initial_threshold = pieces;
    }

    // ---- queries --------------------------------------------------------------------------

    /// Whether we have `piece` (verified); false past the end.
    pub fn has(&self, piece: u32) -> bool {
        piece < self.piece_count && self.have[piece as usize]
    }

    /// Pieces we have.
    pub fn have_count(&self) -> u32 {
        self.have_count
    }

    /// Whether we have every piece: we are a seed.
    pub fn is_complete(&self) -> bool {
        self.have_count == self.piece_count
    }

    /// Peers that have `piece` (not counting us); `None` past the end.
    pub fn availability(&self, piece: u32) -> Option<u32> {
        (piece < self.piece_count).then(|| self.peers_with[piece as usize].count_ones())
    }

    /// Whether the end game is on: no block we lack is free.
    pub fn in_end_game(&self) -> bool {
        self.free_blocks == 0 && !self.is_complete()
    }

    /// Copies of the torrent among our peers and us; see [`DistributedCopies`].
    pub fn distributed_copies(&self) -> DistributedCopies {
        let copies = |p: usize| self.peers_with[p].count_ones() + u32::from(self.have[p]);
        let n = self.piece_count as usize;
        let min = (0..n).map(copies).min().unwrap_or(0);
        let above_min = (0..n).filter(|&p| copies(p) > min).count() as u32;
        DistributedCopies {
            min,
            above_min,
            piece_count: self.piece_count,
        }
    }

    /// Whether `peer` has `piece`, as far as its bitfield and haves say.
    pub fn peer_has(&self, peer: usize, piece: u32) -> bool {
        peer < PEERS
            && piece < self.piece_count
            && self.peers_with[piece as usize] & (1 << peer) != 0
    }

    /// Whether `peer` has a piece we lack: whether to be interested in it.
    pub fn is_interesting(&self, peer: usize) -> bool {
        peer < PEERS
            && (0..self.piece_count as usize)
                .any(|p| !self.have[p] && self.peers_with[p] & (1 << peer) != 0)
    }

    // ---- what peers have ------------------------------------------------------------------

    fn check_peer(peer: usize) -> Result<u64, PickerError> {
        if peer < PEERS {
            Ok(1 << peer)
        } else {
            Err(PickerError::PeerOutOfRange(peer))
        }
    }

    fn check_piece(&self, piece: u32) -> Result<usize, PickerError> {
        if piece < self.piece_count {
            Ok(piece as usize)
        } else {
            Err(PickerError::PieceOutOfRange(piece))
        }
    }

    /// `peer` sent its bitfield (BEP 3): it replaces what we knew the peer has. Checked
    /// against the torrent's piece count (build it with [`Bitfield::new`]).
    pub fn on_bitfield(&mut self, peer: usize, bitfield: &Bitfield<'_>) -> Result<(), PickerError> {
        let bit = Self::check_peer(peer)?;
        if bitfield.piece_count() != self.piece_count {
            return Err(PickerError::WrongBitfieldLength {
                piece_count: bitfield.piece_count(),
                expected: self.piece_count,
            });
        }
        for p in 0..self.piece_count {
            if bitfield.has(p) {
                self.peers_with[p as usize] |= bit;
            } else {
                self.peers_with[p as usize] &= !bit;
            }
        }
        Ok(())
    }

    /// `peer` announced `piece` (BEP 3 have). Announcing it twice counts once.
    pub fn on_have(&mut self, peer: usize, piece: u32) -> Result<(), PickerError> {
        let bit = Self::check_peer(peer)?;
        let p = self.check_piece(piece)?;
        self.peers_with[p] |= bit;
        Ok(())
    }

    /// `peer` has every piece (BEP 6 have all).
    pub fn on_have_all(&mut self, peer: usize) -> Result<(), PickerError> {
        let bit = Self::check_peer(peer)?;
        for mask in &mut self.peers_with[..self.piece_count as usize] {
            *mask |= bit;
        }
        Ok(())
    }

    /// `peer` has no piece (BEP 6 have none).
    pub fn on_have_none(&mut self, peer: usize) -> Result<(), PickerError> {
        let bit = Self::check_peer(peer)?;
        for mask in &mut self.peers_with[..self.piece_count as usize] {
            *mask &= !bit;
        }
        Ok(())
    }

    /// `peer` disconnected: its pieces leave the availability counts, its requests are
    /// freed and the blocks it sent become anonymous, so that whoever takes its slot next
    /// is never blamed for them by [`on_piece_failed`](Self::on_piece_failed).
    pub fn on_peer_left(&mut self, peer: usize) -> Result<(), PickerError> {
        let bit = Self::check_peer(peer)?;
        self.on_have_none(peer)?;
        self.abort_requests_of(peer)?;
        self.parole &= !bit;
        for piece in &mut self.blocks[..self.piece_count as usize] {
            for blk in piece.iter_mut() {
                if matches!(blk.kind, Kind::Writing | Kind::Finished) {
                    blk.peers &= !bit;
                }
            }
        }
        Ok(())
    }

    // ---- block states ---------------------------------------------------------------------

    /// Sets a block, keeping the free-block count (which pieces we have never count in).
    fn set_block(&mut self, p: usize, b: usize, kind: Kind, peers: u64) {
        let old = self.blocks[p][b].kind;
        if old == Kind::Free && kind != Kind::Free {
            self.free_blocks = self.free_blocks.saturating_sub(1);
        } else if old != Kind::Free && kind == Kind::Free {
            self.free_blocks += 1;
        }
        self.blocks[p][b] = Block { kind, peers };
    }

    /// The (piece, block) slots of `req`, if it is exactly one of the torrent's blocks.
    fn locate(&self, req: &BlockRequest) -> Result<(usize, usize), PickerError> {
        let p = self.check_piece(req.index)?;
        // A misaligned offset gives another block's offset, so the comparison rejects it.
        if self.block(req.index, req.begin / BLOCK_LEN) != Some(*req) {
            return Err(PickerError::BadBlock(*req));
        }
        Ok((p, (req.begin / BLOCK_LEN) as usize))
    }

    /// We sent `peer` a request for `block`. A block already in is refused with
    /// [`PickerError::AlreadyHave`]; requesting a block twice of one peer counts once.
    pub fn mark_requested(&mut self, peer: usize, block: &BlockRef) -> Result<(), PickerError> {
        let bit = Self::check_peer(peer)?;
        let (p, b) = self.locate(block)?;
        let cur = self.blocks[p][b];
        match cur.kind {
            Kind::Free => self.set_block(p, b, Kind::Requested, bit),
            Kind::Requested => self.blocks[p][b].peers |= bit,
            Kind::Writing | Kind::Finished => return Err(PickerError::AlreadyHave(block.index)),
        }
        Ok(())
    }

    /// `block` arrived from `peer`. An unrequested block is taken as well (libtorrent
    /// accepts them too); a block already in is a duplicate and changes nothing.
    pub fn on_block_received(
        &mut self,
        peer: usize,
        block: &BlockRef,
    ) -> Result<Received, PickerError> {
        let bit = Self::check_peer(peer)?;
        let (p, b) = self.locate(block)?;
        let cur = self.blocks[p][b];
        if self.have[p] || matches!(cur.kind, Kind::Writing | Kind::Finished) {
            return Ok(Received {
                piece_complete: false,
                cancel: PeerSet::EMPTY,
                duplicate: true,
            });
        }
        let cancel = if cur.kind == Kind::Requested {
            PeerSet(cur.peers & !bit)
        } else {
            PeerSet::EMPTY
        };
        self.set_block(p, b, Kind::Writing, bit);
        let n = self.block_count(block.index) as usize;
        let piece_complete = self.blocks[p][..n]
            .iter()
            .all(|blk| matches!(blk.kind, Kind::Writing | Kind::Finished));
        Ok(Received {
            piece_complete,
            cancel,
            duplicate: false,
        })
    }

    /// `block` is on disk (libtorrent's writing → finished). Optional for drivers without a
    /// disk stage; a piece is complete either way.
    pub fn on_block_written(&mut self, block: &BlockRef) -> Result<(), PickerError> {
        let (p, b) = self.locate(block)?;
        if self.blocks[p][b].kind == Kind::Writing {
            self.blocks[p][b].kind = Kind::Finished;
        }
        Ok(())
    }

    /// `peer` will not send `block` (BEP 6 reject, or we cancelled it): if nobody else was
    /// asked, the block is free again.
    pub fn abort_request(&mut self, peer: usize, block: &BlockRef) -> Result<(), PickerError> {
        let bit = Self::check_peer(peer)?;
        let (p, b) = self.locate(block)?;
        self.drop_request(p, b, bit);
        Ok(())
    }

    fn drop_request(&mut self, p: usize, b: usize, bit: u64) {
        let cur = self.blocks[p][b];
        if cur.kind == Kind::Requested && cur.peers & bit != 0 {
            let rest = cur.peers & !bit;
            if rest == 0 {
                self.set_block(p, b, Kind::Free, 0);
            } else {
                self.blocks[p][b].peers = rest;
            }
        }
    }

    /// `peer` choked us, was snubbed or left: every block requested of it that nobody else
    /// was asked for is free again. Returns how many requests were dropped.
    pub fn abort_requests_of(&mut self, peer: usize) -> Result<u32, PickerError> {
        let bit = Self::check_peer(peer)?;
        let mut dropped = 0;
        for p in 0..self.piece_count as usize {
            for b in 0..self.block_count(p as u32) as usize {
                let blk = self.blocks[p][b];
                if blk.kind == Kind::Requested && blk.peers & bit != 0 {
                    self.drop_request(p, b, bit);
                    dropped += 1;
                }
            }
        }
        Ok(dropped)
    }

    /// `piece` passed its hash check: we have it (tell peers with a have message). Returns
    /// who sent its blocks, to trust more. Announcing it twice changes nothing.
    pub fn on_piece_passed(&mut self, piece: u32) -> Result<PieceSources, PickerError> {
        let p = self.check_piece(piece)?;
        let mut sources = PieceSources {
            contributors: PeerSet::EMPTY,
            unattributed: 0,
        };
        if self.have[p] {
            return Ok(sources);
        }
        for b in 0..self.block_count(piece) as usize {
            let from = match self.blocks[p][b].kind {
                Kind::Writing | Kind::Finished => self.blocks[p][b].peers,
                _ => 0,
            };
            sources.contributors.0 |= from;
            sources.unattributed += u32::from(from == 0);
            self.set_block(p, b, Kind::Finished, from);
        }
        self.have[p] = true;
        self.have_count += 1;
        Ok(sources)
    }

    /// We had `piece` before we started (resume data, or seeding from disk).
    pub fn mark_have(&mut self, piece: u32) -> Result<(), PickerError> {
        self.on_piece_passed(piece).map(|_| ())
    }

    /// `piece` failed its hash check: every block is free again, and the peers that sent
    /// its blocks are named, to put on parole or ban (libtorrent's `piece_failed`).
    /// Requests still out for it are forgotten: should their blocks arrive, they are taken
    /// like unrequested ones.
    pub fn on_piece_failed(&mut self, piece: u32) -> Result<PieceSources, PickerError> {
        let p = self.check_piece(piece)?;
        if self.have[p] {
            return Err(PickerError::AlreadyHave(piece));
        }
        let mut failed = PieceSources {
            contributors: PeerSet::EMPTY,
            unattributed: 0,
        };
        for b in 0..self.block_count(piece) as usize {
            let blk = self.blocks[p][b];
            if matches!(blk.kind, Kind::Writing | Kind::Finished) {
                failed.contributors.0 |= blk.peers;
                failed.unattributed += u32::from(blk.peers == 0);
            }
            self.set_block(p, b, Kind::Free, 0);
        }
        Ok(failed)
    }

    // ---- picking --------------------------------------------------------------------------

    fn free_count(&self, p: usize) -> u32 {
        let n = self.block_count(p as u32) as usize;
        self.blocks[p][..n]
            .iter()
            .filter(|b| b.kind == Kind::Free)
            .count() as u32
    }

    /// Appends up to `out.len() - n` free blocks of `p` to `out` from index `n`; returns
    /// the new `n`.
    fn take_free(&self, p: usize, out: &mut [BlockRef], mut n: usize) -> usize {
        for b in 0..self.block_count(p as u32) {
            if n >= out.len() {
                break;
            }
            if self.blocks[p][b as usize].kind == Kind::Free
                && let Some(r) = self.block(p as u32, b)
            {
                out[n] = r;
                n += 1;
            }
        }
        n
    }

    /// Up to `out.len()` blocks to request from `peer`, written to the front of `out`;
    /// returns how many. Changes nothing: report the requests actually sent with
    /// [`mark_requested`](Self::mark_requested). The order, after libtorrent: free blocks of
    /// pieces in progress, the most advanced first; then new pieces, at random while we
    /// have fewer than [`INITIAL_PICKER_THRESHOLD`], else the rarest (random among equals);
    /// in the end game, blocks requested of other peers, the least requested first.
    ///
    /// Parole ([`set_parole`](Self::set_parole), libtorrent's `on_parole`): a peer on
    /// parole gets only pieces no other peer has a block of or a request for, and no end
    /// game, so that a piece of its that fails again names it alone; the other peers leave
    /// its pieces alone unless nothing else is left to request.
    pub fn pick(
        &self,
        peer: usize,
        rng: &mut Rng,
        out: &mut [BlockRef],
    ) -> Result<usize, PickerError> {
        let bit = Self::check_peer(peer)?;
        let mine = |p: usize| !self.have[p] && self.peers_with[p] & bit != 0;
        if self.parole & bit != 0 {
            if self.in_end_game() {
                return Ok(0);
            }
            return Ok(self.pick_into(rng, out, 0, &|p| {
                mine(p) && self.untouched_by_others(p, bit)
            }));
        }
        if self.in_end_game() {
            return Ok(self.pick_end_game(bit, out));
        }
        let others_on_parole = self.parole & !bit;
        let n = self.pick_into(rng, out, 0, &|p| {
            mine(p) && !self.touched_by(p, others_on_parole)
        });
        Ok(self.pick_into(rng, out, n, &mine))
    }

    /// Puts `peer` on parole (it sent a block of a piece that failed its hash check) or
    /// takes it off; see [`pick`](Self::pick).
    pub fn set_parole(&mut self, peer: usize, on: bool) -> Result<(), PickerError> {
        let bit = Self::check_peer(peer)?;
        if on {
            self.parole |= bit;
        } else {
            self.parole &= !bit;
        }
        Ok(())
    }

    /// Whether `peer` is on parole.
    pub fn is_on_parole(&self, peer: usize) -> bool {
        PeerSet(self.parole).contains(peer)
    }

    /// Whether no other connected peer has a block of `p` or a request for one. A block
    /// from a peer that left does not count: the piece might have no other source, and a
    /// failure with such a block never convicts the suspect alone
    /// ([`PieceSources::sole_contributor`]).
    fn untouched_by_others(&self, p: usize, bit: u64) -> bool {
        let n = self.block_count(p as u32) as usize;
        self.blocks[p][..n]
            .iter()
            .all(|b| b.kind == Kind::Free || b.peers & !bit == 0)
    }

    /// Whether a peer in `mask` has a block of `p` or a request for one.
    fn touched_by(&self, p: usize, mask: u64) -> bool {
        let n = self.block_count(p as u32) as usize;
        mask != 0
            && self.blocks[p][..n]
                .iter()
                .any(|b| b.kind != Kind::Free && b.peers & mask != 0)
    }

    /// Appends to `out` from index `n` blocks of the pieces `wanted` accepts: partial
    /// pieces first, then new ones; returns the new `n`.
    fn pick_into(
        &self,
        rng: &mut Rng,
        out: &mut [BlockRef],
        mut n: usize,
        wanted: &dyn Fn(usize) -> bool,
    ) -> usize {
        let count = self.piece_count as usize;
        // Pieces already picked in this call are skipped; each pick takes every free block
        // of its piece that fits, so a piece is only ever picked once.
        let picked = |out: &[BlockRef], p: usize| out.iter().any(|r| r.index as usize == p);

        // 1. Partial pieces, fewest free blocks first (closest to done), lowest index on a tie.
        while n < out.len() {
            let mut best: Option<(u32, usize)> = None;
            for p in 0..count {
                if !wanted(p) || picked(&out[..n], p) {
                    continue;
                }
                let free = self.free_count(p);
                if free == 0 || free == self.block_count(p as u32) {
                    continue;
                }
                if best.is_none_or(|(f, _)| free < f) {
                    best = Some((free, p));
                }
            }
            let Some((_, p)) = best else { break };
            n = self.take_free(p, out, n);
        }

        // 2. New pieces: random at first, then rarest first, random among the rarest.
        let random = self.have_count < self.initial_threshold;
        while n < out.len() {
            let fresh = |p: usize| {
                wanted(p)
                    && !picked(&out[..n], p)
                    && self.free_count(p) == self.block_count(p as u32)
            };
            let mut rarest = u32::MAX;
            let mut ties = 0u64;
            for p in 0..count {
                if !fresh(p) {
                    continue;
                }
                let avail = if random {
                    0
                } else {
                    self.peers_with[p].count_ones()
                };
                if avail < rarest {
                    rarest = avail;
                    ties = 1;
                } else if avail == rarest {
                    ties += 1;
                }
            }
            if ties == 0 {
                break;
            }
            let mut k = rng.below(ties);
            let mut chosen = None;
            for p in 0..count {
                if fresh(p) && (random || self.peers_with[p].count_ones() == rarest) {
                    if k == 0 {
                        chosen = Some(p);
                        break;
                    }
                    k -= 1;
                }
            }
            let Some(p) = chosen else { break };
            n = self.take_free(p, out, n);
        }
        n
    }

    /// End game: blocks requested of others and not of this peer, in pieces it has; first
    /// those asked of one peer only, then the rest.
    fn pick_end_game(&self, bit: u64, out: &mut [BlockRef]) -> usize {
        let mut n = 0;
        for single in [true, false] {
            for p in 0..self.piece_count as usize {
                if self.have[p] || self.peers_with[p] & bit == 0 {
                    continue;
                }
                for b in 0..self.block_count(p as u32) {
                    if n >= out.len() {
                        return n;
                    }
                    let blk = self.blocks[p][b as usize];
                    if blk.kind != Kind::Requested
                        || blk.peers & bit != 0
                        || (blk.peers.count_ones() == 1) != single
                    {
                        continue;
                    }
                    if let Some(r) = self.block(p as u32, b) {
                        out[n] = r;
                        n += 1;
                    }
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    /// 16 pieces of 4 blocks (64 KiB), 8 peers.
    type Picker = PiecePicker<16, 4, 8>;
    const PIECE: u32 = 4 * BLOCK_LEN;

    fn picker(pieces: u32) -> Picker {
        Picker::new(PIECE, u64::from(pieces) * u64::from(PIECE)).unwrap()
    }

    fn pick(p: &Picker, peer: usize, seed: u64, max: usize) -> Vec<BlockRef> {
        let mut out = [BlockRequest {
            index: 0,
            begin: 0,
            length: 0,
        }; 64];
        let n = p.pick(peer, &mut Rng::new(seed), &mut out[..max]).unwrap();
        out[..n].to_vec()
    }

    fn pieces_of(blocks: &[BlockRef]) -> Vec<u32> {
        let mut v: Vec<u32> = blocks.iter().map(|b| b.index).collect();
        v.dedup();
        v
    }

    /// Leaves libtorrent's initial random phase by having `INITIAL_PICKER_THRESHOLD` pieces.
    fn past_initial_phase(p: &mut Picker) {
        for i in 0..INITIAL_PICKER_THRESHOLD {
            p.mark_have(i).unwrap();
        }
    }

    #[test]
    fn bep3_rarest_first_picks_the_piece_fewest_peers_have() {
        let mut p = picker(10);
        past_initial_phase(&mut p);
        p.on_have_all(0).unwrap();
        for peer in 1..4 {
            p.on_have_all(peer).unwrap();
        }
        // Piece 9 only peer 0 has; piece 8 two peers have.
        for peer in 1..4 {
            p.on_have_none(peer).unwrap();
            for i in 0..9 {
                p.on_have(peer, i).unwrap();
            }
        }
        p.on_have_none(3).unwrap();
        p.on_have(3, 8).unwrap();
        for i in 4..8 {
            p.on_have(3, i).unwrap();
        }
        assert_eq!(p.availability(9), Some(1));
        assert_eq!(p.availability(8), Some(4));
        assert_eq!(p.availability(7), Some(4));
        assert_eq!(p.availability(3), Some(3));
        let got = pick(&p, 0, 1, 4);
        assert_eq!(pieces_of(&got), [9]);
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].begin, 3 * BLOCK_LEN);
    }

    #[test]
    fn libtorrent_equally_rare_pieces_are_random_but_reproducible_per_seed() {
        let mut p = picker(16);
        past_initial_phase(&mut p);
        p.on_have_all(0).unwrap();
        let mut firsts = std::collections::BTreeSet::new();
        for seed in 0..32 {
            let a = pick(&p, 0, seed, 8);
            assert_eq!(a, pick(&p, 0, seed, 8), "seed {seed} must reproduce");
            // Two whole pieces, both new, none we have.
            assert_eq!(pieces_of(&a).len(), 2);
            assert!(a.iter().all(|b| b.index >= INITIAL_PICKER_THRESHOLD));
            firsts.insert(a[0].index);
        }
        assert!(firsts.len() > 4, "ties should spread: {firsts:?}");
    }

    #[test]
    fn libtorrent_partial_pieces_are_finished_before_new_ones() {
        let mut p = picker(10);
        past_initial_phase(&mut p);
        p.on_have_all(0).unwrap();
        p.on_have_all(1).unwrap();
        // Piece 9 is rarest, but piece 6 has a block in and piece 7 two.
        p.on_have_none(1).unwrap();
        for i in 0..9 {
            p.on_have(1, i).unwrap();
        }
        let b = |piece, blk| Picker::block(&picker(10), piece, blk).unwrap();
        let (b60, b70, b71) = (b(6, 0), b(7, 0), b(7, 1));
        p.mark_requested(1, &b60).unwrap();
        p.mark_requested(1, &b70).unwrap();
        p.on_block_received(1, &b70).unwrap();
        p.mark_requested(1, &b71).unwrap();
        let got = pick(&p, 0, 3, 9);
        // Piece 7 (2 blocks left) before piece 6 (3 left), then the rarest new piece.
        assert_eq!(pieces_of(&got), [7, 6, 9]);
        assert_eq!(got.len(), 2 + 3 + 4);
        assert_eq!(got[0], b(7, 2));
    }

    #[test]
    fn libtorrent_initial_random_picking_for_the_first_four_pieces() {
        let mut p = picker(16);
        p.on_have_all(0).unwrap();
        for peer in 1..8 {
            p.on_have_all(peer).unwrap();
            p.on_have_none(peer).unwrap();
            for i in 0..15 {
                p.on_have(peer, i).unwrap();
            }
        }
        // Piece 15 is the rarest, but with nothing had the pick ignores rarity.
        let firsts: std::collections::BTreeSet<u32> =
            (0..32).map(|seed| pick(&p, 0, seed, 1)[0].index).collect();
        assert!(firsts.len() > 4, "{firsts:?}");
        for i in 0..3 {
            p.mark_have(i).unwrap();
        }
        assert!((0..32).any(|seed| pick(&p, 0, seed, 1)[0].index != 15));
        // The fourth piece ends the random phase: now always the rarest.
        p.mark_have(3).unwrap();
        for seed in 0..32 {
            assert_eq!(pick(&p, 0, seed, 1)[0].index, 15);
        }
    }

    #[test]
    fn pieces_we_have_or_the_peer_lacks_are_never_picked() {
        let mut p = picker(6);
        p.on_have(0, 1).unwrap();
        p.on_have(0, 2).unwrap();
        p.on_have(0, 3).unwrap();
        p.mark_have(2).unwrap();
        for seed in 0..16 {
            let got = pieces_of(&pick(&p, 0, seed, 64));
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(sorted, [1, 3]);
        }
        assert!(p.is_interesting(0));
        assert!(!p.is_interesting(1));
    }

    #[test]
    fn libtorrent_strict_end_game_only_when_every_block_is_requested_and_cancels_on_arrival() {
        // 2 pieces of 4 blocks.
        let mut p = picker(2);
        p.on_have_all(0).unwrap();
        p.on_have_all(1).unwrap();
        let all: Vec<BlockRef> = (0..2)
            .flat_map(|i| (0..4).map(move |b| (i, b)))
            .map(|(i, b)| p.block(i, b).unwrap())
            .collect();
        for b in &all[..7] {
            p.mark_requested(0, b).unwrap();
        }
        assert!(!p.in_end_game());
        // One block is free: peer 1 gets it and nothing already asked of peer 0.
        assert_eq!(pick(&p, 1, 0, 8), [all[7]]);
        p.mark_requested(1, &all[7]).unwrap();
        assert!(p.in_end_game());
        // Now peer 1 may duplicate peer 0's blocks, but not its own.
        let dup = pick(&p, 1, 0, 8);
        assert_eq!(dup, &all[..7]);
        // Peer 0 gets the one block asked of only peer 1.
        assert_eq!(pick(&p, 0, 0, 8), [all[7]]);
        p.mark_requested(1, &all[0]).unwrap();
        assert_eq!(
            p.block_state(0, 0),
            Some(BlockState::Requested(PeerSet(0b11)))
        );
        // Blocks asked of one peer only come before those asked of two.
        assert_eq!(pick(&p, 1, 0, 1), [all[1]]);
        // The block arrives from peer 1: cancel it at peer 0.
        let r = p.on_block_received(1, &all[0]).unwrap();
        assert_eq!(r.cancel, PeerSet(0b01));
        assert_eq!(r.cancel.iter().collect::<Vec<_>>(), [0]);
        assert!(!r.piece_complete && !r.duplicate);
        // Peer 0's copy arrives anyway: a duplicate.
        let r = p.on_block_received(0, &all[0]).unwrap();
        assert!(r.duplicate);
        assert_eq!(p.block_state(0, 0), Some(BlockState::Writing(1)));
    }

    #[test]
    fn block_received_completes_piece_once_and_pass_marks_have() {
        let mut p = picker(3);
        p.on_have_all(2).unwrap();
        let blocks: Vec<BlockRef> = (0..4).map(|b| p.block(1, b).unwrap()).collect();
        for (i, b) in blocks.iter().enumerate() {
            p.mark_requested(2, b).unwrap();
            let r = p.on_block_received(2, b).unwrap();
            assert_eq!(r.piece_complete, i == 3);
            assert!(r.cancel.is_empty());
        }
        p.on_block_written(&blocks[0]).unwrap();
        assert_eq!(p.block_state(1, 0), Some(BlockState::Finished(Some(2))));
        p.on_piece_passed(1).unwrap();
        p.on_piece_passed(1).unwrap();
        assert!(p.has(1));
        assert_eq!(p.have_count(), 1);
        assert!(!p.is_complete());
        p.mark_have(0).unwrap();
        p.mark_have(2).unwrap();
        assert!(p.is_complete());
        assert!(!p.in_end_game());
        assert!(pick(&p, 2, 0, 8).is_empty());
        assert_eq!(
            p.mark_requested(2, &blocks[0]),
            Err(PickerError::AlreadyHave(1))
        );
    }

    #[test]
    fn libtorrent_failed_hash_frees_blocks_and_names_contributors() {
        let mut p = picker(2);
        for peer in 0..4 {
            p.on_have_all(peer).unwrap();
        }
        // Blocks 0,1 from peer 1, block 2 from peer 3, block 3 from peer 1.
        for (b, peer) in [(0, 1), (1, 1), (2, 3), (3, 1)] {
            let r = p.block(0, b).unwrap();
            p.mark_requested(peer, &r).unwrap();
            p.on_block_received(peer, &r).unwrap();
        }
        let r = p.block(1, 0).unwrap();
        p.mark_requested(2, &r).unwrap();
        let failed = p.on_piece_failed(0).unwrap();
        let bad = failed.contributors;
        assert_eq!(bad.iter().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(bad.len(), 2);
        assert!(!bad.contains(2));
        assert_eq!(failed.sole_contributor(), None);
        for b in 0..4 {
            assert_eq!(p.block_state(0, b), Some(BlockState::Free));
        }
        assert!(!p.has(0));
        // The piece is wanted again.
        assert!(pieces_of(&pick(&p, 0, 0, 8)).contains(&0));
        p.mark_have(1).unwrap();
        assert_eq!(p.on_piece_failed(1), Err(PickerError::AlreadyHave(1)));
    }

    /// libtorrent's parole: a peer that sent part of a failed piece only gets pieces nobody
    /// else touched, and the others leave its pieces alone, so that a second failure names
    /// it alone.
    #[test]
    fn libtorrent_parole_keeps_a_suspects_pieces_to_itself() {
        let mut p = picker(3);
        for peer in 0..3 {
            p.on_have_all(peer).unwrap();
        }
        // Piece 0: a block in from peer 1. Piece 1: a block requested of peer 2. Piece 2:
        // untouched. Peer 0 on parole gets piece 2 only; piece 0 is partial and would come
        // first in a normal pick.
        let r = p.block(0, 0).unwrap();
        p.mark_requested(1, &r).unwrap();
        p.on_block_received(1, &r).unwrap();
        p.mark_requested(2, &p.block(1, 0).unwrap()).unwrap();
        assert_eq!(pieces_of(&pick(&p, 0, 1, 3)), [0]);
        p.set_parole(0, true).unwrap();
        assert!(p.is_on_parole(0));
        assert_eq!(pieces_of(&pick(&p, 0, 1, 16)), [2]);
        // Peer 1 on parole too: its partial piece 0 stays its own, and peer 2 turns to it
        // only once nothing else is free.
        p.set_parole(1, true).unwrap();
        assert_eq!(pieces_of(&pick(&p, 1, 1, 3)), [0]);
        assert_eq!(pieces_of(&pick(&p, 2, 1, 3)), [1]);
        assert_eq!(pieces_of(&pick(&p, 2, 1, 16)), [1, 2, 0]);
        // No end game on parole: with every block requested, nothing; others get duplicates.
        for piece in 0..3 {
            for b in 0..4 {
                let _ = p.mark_requested(2, &p.block(piece, b).unwrap());
            }
        }
        assert!(p.in_end_game());
        assert!(pick(&p, 0, 1, 4).is_empty());
        p.on_peer_left(0).unwrap();
        assert!(!p.is_on_parole(0));
        p.on_have_all(0).unwrap();
        assert!(!pick(&p, 0, 1, 4).is_empty());
    }

    #[test]
    fn a_peer_that_left_is_not_blamed_through_its_reused_slot() {
        let mut p = picker(2);
        p.on_have_all(0).unwrap();
        p.on_have_all(1).unwrap();
        for b in 0..4 {
            let r = p.block(0, b).unwrap();
            let from = if b == 0 { 0 } else { 1 };
            p.mark_requested(from, &r).unwrap();
            p.on_block_received(from, &r).unwrap();
        }
        // Peer 0 leaves; a newcomer takes slot 0; the piece fails: only peer 1 is named,
        // and not as the sole contributor, since one block's sender is gone.
        p.on_peer_left(0).unwrap();
        assert!(!p.peer_has(0, 1));
        p.on_have_all(0).unwrap();
        assert!(p.peer_has(0, 1));
        let failed = p.on_piece_failed(0).unwrap();
        assert_eq!(failed.contributors.iter().collect::<Vec<_>>(), [1]);
        assert_eq!(failed.unattributed, 1);
        assert_eq!(failed.sole_contributor(), None);
    }

    #[test]
    fn a_random_picker_ignores_rarity() {
        let mut p = picker(10);
        past_initial_phase(&mut p);
        p.on_have_all(0).unwrap();
        // Piece 4 is common, the others are had by peer 0 alone: rarest first never picks
        // piece 4, a random picker sometimes does.
        for peer in 1..6 {
            p.on_have(peer, 4).unwrap();
        }
        let picks = |p: &Picker| {
            (0..64)
                .filter(|&seed| pieces_of(&pick(p, 0, seed, 1)) == [4])
                .count()
        };
        assert_eq!(picks(&p), 0);
        p.set_initial_threshold(u32::MAX);
        assert!(picks(&p) > 0);
    }

    #[test]
    fn peer_leaving_decrements_availability_and_frees_its_requests() {
        let mut p = picker(4);
        p.on_have_all(0).unwrap();
        p.on_have_all(1).unwrap();
        p.on_have(2, 3).unwrap();
        assert_eq!(p.availability(3), Some(3));
        let b0 = p.block(3, 0).unwrap();
        let b1 = p.block(3, 1).unwrap();
        p.mark_requested(2, &b0).unwrap();
        p.mark_requested(2, &b1).unwrap();
        p.mark_requested(0, &b1).unwrap();
        p.on_peer_left(2).unwrap();
        assert_eq!(p.availability(3), Some(2));
        assert_eq!(p.availability(0), Some(2));
        assert_eq!(p.block_state(3, 0), Some(BlockState::Free));
        assert_eq!(
            p.block_state(3, 1),
            Some(BlockState::Requested(PeerSet(0b1)))
        );
        // Snubbed: requests go, availability stays.
        assert_eq!(p.abort_requests_of(0), Ok(1));
        assert_eq!(p.block_state(3, 1), Some(BlockState::Free));
        assert_eq!(p.availability(3), Some(2));
        // BEP 6 reject of a single request.
        p.mark_requested(1, &b0).unwrap();
        p.abort_request(1, &b0).unwrap();
        assert_eq!(p.block_state(3, 0), Some(BlockState::Free));
        // A re-sent bitfield replaces the old one.
        let bf = [0b1000_0000];
        p.on_bitfield(1, &Bitfield::new(&bf, 4).unwrap()).unwrap();
        assert_eq!(
            (0..4)
                .map(|i| p.availability(i).unwrap())
                .collect::<Vec<_>>(),
            [2, 1, 1, 1]
        );
    }

    #[test]
    fn bep3_last_piece_is_short_and_its_last_block_shorter() {
        // 2 whole pieces and 20000 bytes: the last piece is one 16 KiB block and 3616 bytes.
        let total = 2 * u64::from(PIECE) + 20_000;
        let mut p = Picker::new(PIECE, total).unwrap();
        assert_eq!(p.piece_count(), 3);
        assert_eq!(p.piece_len(2), 20_000);
        assert_eq!(p.block_count(2), 2);
        assert_eq!(p.block(2, 1).unwrap().length, 20_000 - BLOCK_LEN);
        assert_eq!(p.block(2, 2), None);
        assert_eq!(p.block(1, 3).unwrap().length, BLOCK_LEN);
        p.on_have(0, 2).unwrap();
        let got = pick(&p, 0, 0, 8);
        assert_eq!(
            got.iter().map(|b| (b.begin, b.length)).collect::<Vec<_>>(),
            [(0, BLOCK_LEN), (BLOCK_LEN, 3616)]
        );
        let sum: u64 = (0..3)
            .flat_map(|i| (0..p.block_count(i)).map(move |b| (i, b)))
            .map(|(i, b)| u64::from(p.block(i, b).unwrap().length))
            .sum();
        assert_eq!(sum, total);
        // The short block requested at full length is not a block.
        let wrong = BlockRequest {
            index: 2,
            begin: BLOCK_LEN,
            length: BLOCK_LEN,
        };
        assert_eq!(
            p.on_block_received(0, &wrong),
            Err(PickerError::BadBlock(wrong))
        );
        // Pieces shorter than a block are one block.
        let small = PiecePicker::<8, 1, 2>::new(1000, 7500).unwrap();
        assert_eq!(small.piece_count(), 8);
        assert_eq!(small.block(7, 0).unwrap().length, 500);
    }

    #[test]
    fn bad_inputs_are_typed_errors_and_change_nothing() {
        assert_eq!(Picker::new(0, 10).unwrap_err(), PickerError::BadGeometry);
        assert_eq!(Picker::new(PIECE, 0).unwrap_err(), PickerError::BadGeometry);
        // 17 pieces do not fit 16; 5-block pieces do not fit 4.
        assert!(Picker::new(PIECE, 17 * u64::from(PIECE)).is_err());
        assert!(Picker::new(PIECE + 1, u64::from(PIECE)).is_err());
        assert!(Picker::new(1, u64::MAX).is_err());

        let mut p = picker(10);
        let before = (0..10).map(|i| p.availability(i)).collect::<Vec<_>>();
        assert_eq!(p.on_have(8, 0), Err(PickerError::PeerOutOfRange(8)));
        assert_eq!(p.on_have(0, 10), Err(PickerError::PieceOutOfRange(10)));
        assert_eq!(
            p.on_have_all(usize::MAX),
            Err(PickerError::PeerOutOfRange(usize::MAX))
        );
        let nine = [0xFF, 0x80];
        let bf = Bitfield::new(&nine, 9).unwrap();
        assert_eq!(
            p.on_bitfield(0, &bf),
            Err(PickerError::WrongBitfieldLength {
                piece_count: 9,
                expected: 10
            })
        );
        assert_eq!(
            before,
            (0..10).map(|i| p.availability(i)).collect::<Vec<_>>()
        );
        assert_eq!(p.availability(10), None);
        assert_eq!(p.block_state(10, 0), None);
        assert_eq!(p.block_state(0, 4), None);
        assert_eq!(p.piece_len(u32::MAX), 0);
        let mut out = [p.block(0, 0).unwrap(); 4];
        assert_eq!(
            p.pick(64, &mut Rng::new(0), &mut out),
            Err(PickerError::PeerOutOfRange(64))
        );
        assert_eq!(p.pick(0, &mut Rng::new(0), &mut []), Ok(0));
        let odd = BlockRequest {
            index: 0,
            begin: 1,
            length: BLOCK_LEN,
        };
        assert_eq!(p.mark_requested(0, &odd), Err(PickerError::BadBlock(odd)));
        let past = BlockRequest {
            index: 0,
            begin: 4 * BLOCK_LEN,
            length: BLOCK_LEN,
        };
        assert_eq!(p.abort_request(0, &past), Err(PickerError::BadBlock(past)));
        let far = BlockRequest {
            index: 99,
            begin: 0,
            length: BLOCK_LEN,
        };
        assert_eq!(
            p.on_block_written(&far),
            Err(PickerError::PieceOutOfRange(99))
        );
        assert_eq!(p.on_piece_failed(10), Err(PickerError::PieceOutOfRange(10)));
        assert_eq!(p.on_piece_passed(10), Err(PickerError::PieceOutOfRange(10)));
        assert_eq!(
            PickerError::PieceOutOfRange(10).to_string(),
            "piece 10 out of range"
        );
    }

    #[test]
    fn libtorrent_distributed_copies_counts_peers_and_us() {
        let mut p = picker(4);
        assert_eq!(p.distributed_copies().min, 0);
        p.on_have_all(0).unwrap();
        p.on_have_all(1).unwrap();
        p.on_have(2, 0).unwrap();
        let d = p.distributed_copies();
        assert_eq!((d.min, d.above_min, d.piece_count), (2, 1, 4));
        assert_eq!(d.value(), 2.25);
        p.mark_have(1).unwrap();
        let d = p.distributed_copies();
        assert_eq!((d.min, d.above_min), (2, 2));
        assert_eq!(d.fraction(), 0.5);
    }

    #[test]
    fn ram_cost_is_as_documented() {
        fn bound(pieces: usize, blocks: usize) -> usize {
            pieces * (9 + 16 * blocks) + 32
        }
        assert!(core::mem::size_of::<Picker>() <= bound(16, 4));
        assert!(core::mem::size_of::<PiecePicker<1024, 16, 64>>() <= bound(1024, 16));
    }

    /// A seeded swarm of random drivers, with garbage thrown in: never panics, the free
    /// block count stays true, and the download completes.
    #[test]
    fn random_driver_downloads_everything_without_panicking() {
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let total = 13 * u64::from(PIECE) + 1 + rng.below(u64::from(PIECE) - 1);
            let mut p = Picker::new(PIECE, total).unwrap();
            for peer in 0..8 {
                if rng.chance(0.5) {
                    p.on_have_all(peer).unwrap();
                } else {
                    for i in 0..16 {
                        if rng.chance(0.4) {
                            let _ = p.on_have(peer, i);
                        }
                    }
                }
            }
            p.on_have_all(0).unwrap();
            let mut out = [p.block(0, 0).unwrap(); 6];
            let mut inflight: Vec<(usize, BlockRef)> = Vec::new();
            let mut steps = 0;
            while !p.is_complete() {
                steps += 1;
                assert!(steps < 10_000, "seed {seed} did not finish");
                let peer = rng.below(9) as usize; // 8 is out of range
                match rng.below(10) {
                    0..=3 => {
                        if let Ok(n) = p.pick(peer, &mut rng, &mut out) {
                            for b in &out[..n] {
                                p.mark_requested(peer, b).unwrap();
                                inflight.push((peer, *b));
                            }
                        }
                    }
                    4..=7 if !inflight.is_empty() => {
                        let (from, b) =
                            inflight.swap_remove(rng.below(inflight.len() as u64) as usize);
                        let r = p.on_block_received(from, &b).unwrap();
                        if r.piece_complete {
                            if rng.chance(0.1) {
                                p.on_piece_failed(b.index).unwrap();
                            } else {
                                p.on_piece_passed(b.index).unwrap();
                            }
                        }
                    }
                    8 => {
                        let _ = p.abort_requests_of(peer);
                        inflight.retain(|(q, _)| *q != peer);
                    }
                    _ => {
                        let junk = BlockRequest {
                            index: rng.next_u32() % 20,
                            begin: rng.next_u32() % (5 * BLOCK_LEN),
                            length: rng.next_u32() % (BLOCK_LEN + 2),
                        };
                        let _ = p.mark_requested(peer, &junk);
                        let _ = p.on_have(peer, junk.index);
                    }
                }
                let free = (0..p.piece_count())
                    .flat_map(|i| (0..p.block_count(i)).map(move |b| (i, b)))
                    .filter(|&(i, b)| p.block_state(i, b) == Some(BlockState::Free))
                    .count() as u32;
                assert_eq!(free, p.free_blocks, "seed {seed}");
            }
            assert_eq!(p.have_count(), p.piece_count());
        }
    }
}
