//! The BitTorrent peer wire protocol, byte for byte: the handshake and the length-prefixed
//! messages of BEP 3 ("peer protocol"), the DHT port message of BEP 5, the Fast extension's
//! messages and reserved bit (BEP 6), and the extension protocol's envelope (BEP 10).
//!
//! A connection starts with one [`Handshake`] each way, then carries [`Message`]s. Both are
//! cut off the front of a stream buffer: [`Handshake::parse`] and [`frame`] return `Ok(None)`
//! until the whole thing has arrived, and what they return borrows the buffer. Integers are
//! big-endian. Writers fill a caller's buffer and write nothing when it is too small.
//!
//! The codec checks sizes only. Which message is allowed when (a bitfield only first, Fast
//! messages only once both sides set the BEP 6 bit, requests no longer than
//! [`MAX_REQUEST_LEN`]) is the [`session`](super::session)'s business.

use crate::bencode::BufferFull;
use core::fmt;
use sha1::{Digest, Sha1};

/// What every handshake starts with: the length byte 19, then the protocol name (BEP 3).
pub const HANDSHAKE_PREFIX: &[u8; 20] = b"\x13BitTorrent protocol";

/// Bytes in a handshake: prefix (20), reserved (8), info hash (20), peer id (20).
pub const HANDSHAKE_LEN: usize = 68;

/// The block size everyone requests: 16 KiB. BEP 3: "All current implementations use 2^14
/// (16 kiB), and close connections which request an amount greater than that."
pub const BLOCK_LEN: u32 = 16 * 1024;

/// The longest request a machine should serve: one [`BLOCK_LEN`], for the BEP 3 reason
/// above. Longer requests are answered with a reject (BEP 6) or a closed connection.
pub const MAX_REQUEST_LEN: u32 = BLOCK_LEN;

/// Bytes before a piece message's block: length prefix (4), id (1), index (4), begin (4).
pub const PIECE_HEADER_LEN: usize = 13;

/// The message length [`frame`] should accept when the bitfield is small: 32 KiB. The
/// longest other messages we invite are a piece carrying one [`BLOCK_LEN`] block (16393
/// bytes) and a BEP 9 metadata piece (16 KiB behind a short bencoded dict, inside a BEP 10
/// message); the rest is slack. Our choice, not a number from a spec.
pub const DEFAULT_MAX_LEN: u32 = 32 * 1024;

/// The message length limit for a torrent of `piece_count` pieces: [`DEFAULT_MAX_LEN`], or
/// the bitfield message if that is longer.
pub const fn max_len_for(piece_count: u32) -> u32 {
    let bitfield = 1 + Bitfield::byte_len(piece_count);
    if bitfield > DEFAULT_MAX_LEN {
        bitfield
    } else {
        DEFAULT_MAX_LEN
    }
}

/// The message ids (the byte after the length prefix).
pub mod id {
    /// BEP 3.
    pub const CHOKE: u8 = 0;
    /// BEP 3.
    pub const UNCHOKE: u8 = 1;
    /// BEP 3.
    pub const INTERESTED: u8 = 2;
    /// BEP 3.
    pub const NOT_INTERESTED: u8 = 3;
    /// BEP 3.
    pub const HAVE: u8 = 4;
    /// BEP 3.
    pub const BITFIELD: u8 = 5;
    /// BEP 3.
    pub const REQUEST: u8 = 6;
    /// BEP 3.
    pub const PIECE: u8 = 7;
    /// BEP 3.
    pub const CANCEL: u8 = 8;
    /// BEP 5: the sender's DHT port.
    pub const PORT: u8 = 9;
    /// BEP 6.
    pub const SUGGEST: u8 = 0x0D;
    /// BEP 6.
    pub const HAVE_ALL: u8 = 0x0E;
    /// BEP 6.
    pub const HAVE_NONE: u8 = 0x0F;
    /// BEP 6.
    pub const REJECT_REQUEST: u8 = 0x10;
    /// BEP 6.
    pub const ALLOWED_FAST: u8 = 0x11;
    /// BEP 10: an extension message; its first payload byte says which extension.
    pub const EXTENDED: u8 = 20;
}

/// The extended message id of the BEP 10 handshake; other ids are those it assigns.
pub const EXTENDED_HANDSHAKE: u8 = 0;

/// The handshake's 8 reserved bytes: each set bit announces an extension.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// No extensions.
    pub const NONE: Reserved = Reserved([0; 8]);

    // (byte, mask) of each bit, as the BEPs count them.
    const DHT: (usize, u8) = (7, 0x01); // BEP 5: the last bit
    const FAST: (usize, u8) = (7, 0x04); // BEP 6: the last byte's third least significant bit
    const EXTENSION_PROTOCOL: (usize, u8) = (5, 0x10); // BEP 10: bit 20 from the right

    const fn has(self, (byte, mask): (usize, u8)) -> bool {
        self.0[byte] & mask != 0
    }

    const fn with(mut self, (byte, mask): (usize, u8)) -> Reserved {
        self.0[byte] |= mask;
        self
    }

    /// The peer runs a Mainline DHT node and will send its port (BEP 5).
    pub const fn dht(self) -> bool {
        self.has(Self::DHT)
    }

    /// The peer speaks the Fast extension (BEP 6).
    pub const fn fast(self) -> bool {
        self.has(Self::FAST)
    }

    /// The peer speaks the extension protocol (BEP 10).
    pub const fn extension_protocol(self) -> bool {
        self.has(Self::EXTENSION_PROTOCOL)
    }

    /// These bits and the DHT bit.
    pub const fn with_dht(self) -> Reserved {
        self.with(Self::DHT)
    }

    /// These bits and the Fast extension bit.
    pub const fn with_fast(self) -> Reserved {
        self.with(Self::FAST)
    }

    /// These bits and the extension protocol bit.
    pub const fn with_extension_protocol(self) -> Reserved {
        self.with(Self::EXTENSION_PROTOCOL)
    }
}

/// The first 68 bytes each side sends (BEP 3, "peer protocol").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Handshake {
    /// The extensions the sender speaks.
    pub reserved: Reserved,
    /// The torrent: SHA-1 of the metainfo's info dictionary.
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// Reads the handshake at the start of `buf`: `Ok(None)` until all [`HANDSHAKE_LEN`]
    /// bytes are in, which it then consumes. A stream that is not BitTorrent fails at its
    /// first wrong byte, so a stray HTTP client is turned away without waiting for 68 bytes.
    pub fn parse(buf: &[u8]) -> Result<Option<Handshake>, WireError> {
        let seen = buf.len().min(HANDSHAKE_PREFIX.len());
        if buf[..seen] != HANDSHAKE_PREFIX[..seen] {
            return Err(WireError::NotBitTorrent);
        }
        let Some(b) = buf.first_chunk::<HANDSHAKE_LEN>() else {
            return Ok(None);
        };
        let mut h = Handshake {
            reserved: Reserved::NONE,
            info_hash: [0; 20],
            peer_id: [0; 20],
        };
        h.reserved.0.copy_from_slice(&b[20..28]);
        h.info_hash.copy_from_slice(&b[28..48]);
        h.peer_id.copy_from_slice(&b[48..]);
        Ok(Some(h))
    }

    /// The 68 bytes of this handshake.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut b = [0; HANDSHAKE_LEN];
        b[..20].copy_from_slice(HANDSHAKE_PREFIX);
        b[20..28].copy_from_slice(&self.reserved.0);
        b[28..48].copy_from_slice(&self.info_hash);
        b[48..].copy_from_slice(&self.peer_id);
        b
    }

    /// Writes the handshake at the start of `out`; returns [`HANDSHAKE_LEN`].
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BufferFull> {
        let dst = out.get_mut(..HANDSHAKE_LEN).ok_or(BufferFull)?;
        dst.copy_from_slice(&self.to_bytes());
        Ok(HANDSHAKE_LEN)
    }
}

/// The 12-byte payload of request, cancel and reject request: a block of a piece.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BlockRequest {
    /// The piece.
    pub index: u32,
    /// The block's byte offset in the piece.
    pub begin: u32,
    /// The block's length.
    pub length: u32,
}

impl BlockRequest {
    fn from_bytes(b: &[u8; 12]) -> BlockRequest {
        let [i0, i1, i2, i3, b0, b1, b2, b3, l0, l1, l2, l3] = *b;
        BlockRequest {
            index: u32::from_be_bytes([i0, i1, i2, i3]),
            begin: u32::from_be_bytes([b0, b1, b2, b3]),
            length: u32::from_be_bytes([l0, l1, l2, l3]),
        }
    }

    fn to_bytes(self) -> [u8; 12] {
        let mut b = [0; 12];
        b[..4].copy_from_slice(&self.index.to_be_bytes());
        b[4..8].copy_from_slice(&self.begin.to_be_bytes());
        b[8..].copy_from_slice(&self.length.to_be_bytes());
        b
    }
}

/// One message after the handshake, borrowing the buffer it was framed from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Message<'a> {
    /// Length 0, no id: keeps an idle connection open (BEP 3: generally every two minutes).
    KeepAlive,
    /// We will not serve the peer's requests (BEP 3).
    Choke,
    /// We will serve them again (BEP 3).
    Unchoke,
    /// We want something the peer has (BEP 3).
    Interested,
    /// We no longer do (BEP 3).
    NotInterested,
    /// We completed and verified a piece (BEP 3).
    Have {
        /// The piece.
        index: u32,
    },
    /// The pieces we have, high bit of the first byte first (BEP 3). Check it against the
    /// torrent's piece count with [`Bitfield::new`].
    Bitfield(&'a [u8]),
    /// Send us this block (BEP 3).
    Request(BlockRequest),
    /// A block (BEP 3).
    Piece {
        /// The piece.
        index: u32,
        /// The block's byte offset in the piece.
        begin: u32,
        /// The block's bytes.
        block: &'a [u8],
    },
    /// Forget that request (BEP 3).
    Cancel(BlockRequest),
    /// Our DHT node listens on this UDP port (BEP 5).
    Port(u16),
    /// You might want to download this piece from us (BEP 6).
    Suggest {
        /// The piece.
        index: u32,
    },
    /// We have every piece: a bitfield of ones (BEP 6).
    HaveAll,
    /// We have no piece: no bitfield at all (BEP 6).
    HaveNone,
    /// We will not serve that request (BEP 6).
    RejectRequest(BlockRequest),
    /// You may request this piece even while choked (BEP 6).
    AllowedFast {
        /// The piece.
        index: u32,
    },
    /// An extension message (BEP 10).
    Extended {
        /// [`EXTENDED_HANDSHAKE`], or an id the receiver assigned in its handshake.
        id: u8,
        /// Its payload, usually bencoded: read it with [`crate::bencode`].
        payload: &'a [u8],
    },
    /// An id this codec does not know. Not an error: extensions add ids, and the caller
    /// decides whether to ignore the message or close the connection.
    Unknown {
        /// The id byte.
        id: u8,
        /// Everything after it.
        payload: &'a [u8],
    },
}

/// Cuts the first message off `buf`: `Ok(None)` until it is whole, then the message and the
/// bytes it took. The length limit is checked as soon as the 4-byte prefix is in, so a peer
/// cannot make us buffer a huge message; [`max_len_for`] gives a good `max_len`.
pub fn frame(buf: &[u8], max_len: u32) -> Result<Option<(Message<'_>, usize)>, WireError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix);
    let too_long = WireError::TooLong { len, max: max_len };
    if len > max_len {
        return Err(too_long);
    }
    // Only fails where usize is 16 bits, and then the message could never fit anyway.
    let Some(end) = usize::try_from(len).ok().and_then(|l| l.checked_add(4)) else {
        return Err(too_long);
    };
    match buf.get(4..end) {
        Some(body) => Ok(Some((Message::parse(body)?, end))),
        None => Ok(None),
    }
}

/// `payload` as exactly `N` bytes, or the error for message `id`.
fn exact<const N: usize>(id: u8, payload: &[u8]) -> Result<&[u8; N], WireError> {
    payload.try_into().map_err(|_| WireError::BadLength {
        id,
        len: payload.len(),
    })
}

impl<'a> Message<'a> {
    /// Reads the bytes after a length prefix (as [`frame`] does): an empty body is a
    /// keep-alive, otherwise an id and a payload of exactly the size that id demands.
    pub fn parse(body: &'a [u8]) -> Result<Message<'a>, WireError> {
        let Some((&id, payload)) = body.split_first() else {
            return Ok(Message::KeepAlive);
        };
        let bad_length = WireError::BadLength {
            id,
            len: payload.len(),
        };
        let index = |p: &[u8]| exact::<4>(id, p).map(|b| u32::from_be_bytes(*b));
        let block_request = |p: &[u8]| exact::<12>(id, p).map(BlockRequest::from_bytes);
        let empty = |p: &[u8], m: Message<'a>| exact::<0>(id, p).map(|_| m);
        Ok(match id {
            id::CHOKE => empty(payload, Message::Choke)?,
            id::UNCHOKE => empty(payload, Message::Unchoke)?,
            id::INTERESTED => empty(payload, Message::Interested)?,
            id::NOT_INTERESTED => empty(payload, Message::NotInterested)?,
            id::HAVE => Message::Have {
                index: index(payload)?,
            },
            id::BITFIELD => Message::Bitfield(payload),
            id::REQUEST => Message::Request(block_request(payload)?),
            id::PIECE => {
                let Some(([i0, i1, i2, i3, b0, b1, b2, b3], block)) =
                    payload.split_first_chunk::<8>()
                else {
                    return Err(bad_length);
                };
                Message::Piece {
                    index: u32::from_be_bytes([*i0, *i1, *i2, *i3]),
                    begin: u32::from_be_bytes([*b0, *b1, *b2, *b3]),
                    block,
                }
            }
            id::CANCEL => Message::Cancel(block_request(payload)?),
            id::PORT => Message::Port(u16::from_be_bytes(*exact::<2>(id, payload)?)),
            id::SUGGEST => Message::Suggest {
                index: index(payload)?,
            },
            id::HAVE_ALL => empty(payload, Message::HaveAll)?,
            id::HAVE_NONE => empty(payload, Message::HaveNone)?,
            id::REJECT_REQUEST => Message::RejectRequest(block_request(payload)?),
            id::ALLOWED_FAST => Message::AllowedFast {
                index: index(payload)?,
            },
            id::EXTENDED => {
                let Some((&extended, payload)) = payload.split_first() else {
                    return Err(bad_length);
                };
                Message::Extended {
                    id: extended,
                    payload,
                }
            }
            id => Message::Unknown { id, payload },
        })
    }

    /// The id byte; `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        self.layout().map(|l| l.id)
    }

    /// Bytes [`Message::write`] needs: length prefix, id and payload.
    pub fn encoded_len(&self) -> usize {
        // A slice is at most isize::MAX bytes, so adding 17 at most cannot overflow.
        self.layout().map_or(4, |l| 5 + l.head_len + l.tail.len())
    }

    /// Writes the message at the start of `out`; returns [`Message::encoded_len`]. A message
    /// too long for the 4-byte length prefix fits no buffer and also returns `BufferFull`.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BufferFull> {
        let total = self.encoded_len();
        let len = u32::try_from(total - 4).map_err(|_| BufferFull)?;
        let dst = out.get_mut(..total).ok_or(BufferFull)?;
        dst[..4].copy_from_slice(&len.to_be_bytes());
        if let Some(l) = self.layout() {
            dst[4] = l.id;
            let (head, tail) = dst[5..].split_at_mut(l.head_len);
            head.copy_from_slice(&l.head[..l.head_len]);
            tail.copy_from_slice(l.tail);
        }
        Ok(total)
    }

    /// The id and payload, as at most 12 fixed bytes followed by borrowed ones.
    fn layout(&self) -> Option<Layout<'a>> {
        let fixed = |id: u8, bytes: &[u8]| {
            let mut head = [0; 12];
            head[..bytes.len()].copy_from_slice(bytes);
            Layout {
                id,
                head,
                head_len: bytes.len(),
                tail: &[],
            }
        };
        let borrowed = |id: u8, tail: &'a [u8]| Layout {
            id,
            head: [0; 12],
            head_len: 0,
            tail,
        };
        Some(match *self {
            Message::KeepAlive => return None,
            Message::Choke => fixed(id::CHOKE, &[]),
            Message::Unchoke => fixed(id::UNCHOKE, &[]),
            Message::Interested => fixed(id::INTERESTED, &[]),
            Message::NotInterested => fixed(id::NOT_INTERESTED, &[]),
            Message::Have { index } => fixed(id::HAVE, &index.to_be_bytes()),
            Message::Bitfield(bits) => borrowed(id::BITFIELD, bits),
            Message::Request(r) => fixed(id::REQUEST, &r.to_bytes()),
            Message::Piece {
                index,
                begin,
                block,
            } => {
                let mut head = [0; 8];
                head[..4].copy_from_slice(&index.to_be_bytes());
                head[4..].copy_from_slice(&begin.to_be_bytes());
                Layout {
                    tail: block,
                    ..fixed(id::PIECE, &head)
                }
            }
            Message::Cancel(r) => fixed(id::CANCEL, &r.to_bytes()),
            Message::Port(port) => fixed(id::PORT, &port.to_be_bytes()),
            Message::Suggest { index } => fixed(id::SUGGEST, &index.to_be_bytes()),
            Message::HaveAll => fixed(id::HAVE_ALL, &[]),
            Message::HaveNone => fixed(id::HAVE_NONE, &[]),
            Message::RejectRequest(r) => fixed(id::REJECT_REQUEST, &r.to_bytes()),
            Message::AllowedFast { index } => fixed(id::ALLOWED_FAST, &index.to_be_bytes()),
            Message::Extended {
                id: extended,
                payload,
            } => Layout {
                tail: payload,
                ..fixed(id::EXTENDED, &[extended])
            },
            Message::Unknown { id, payload } => borrowed(id, payload),
        })
    }
}

/// A message's bytes after its length prefix: the id, `head[..head_len]`, then `tail`.
struct Layout<'a> {
    id: u8,
    head: [u8; 12],
    head_len: usize,
    tail: &'a [u8],
}

/// Writes the first [`PIECE_HEADER_LEN`] bytes of a piece message whose block is
/// `block_len` bytes long, so that a driver can send the block from its own storage
/// without copying it into a message. A block too long for the length prefix returns
/// `BufferFull`, as [`Message::write`] does.
pub fn write_piece_header(
    out: &mut [u8],
    index: u32,
    begin: u32,
    block_len: usize,
) -> Result<usize, BufferFull> {
    let len = block_len
        .checked_add(9)
        .and_then(|l| u32::try_from(l).ok())
        .ok_or(BufferFull)?;
    let dst = out.get_mut(..PIECE_HEADER_LEN).ok_or(BufferFull)?;
    dst[..4].copy_from_slice(&len.to_be_bytes());
    dst[4] = id::PIECE;
    dst[5..9].copy_from_slice(&index.to_be_bytes());
    dst[9..].copy_from_slice(&begin.to_be_bytes());
    Ok(PIECE_HEADER_LEN)
}

/// Why a stream cannot be read. The connection is lost: close it.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WireError {
    /// The stream does not start with [`HANDSHAKE_PREFIX`].
    NotBitTorrent,
    /// A length prefix over the limit.
    TooLong {
        /// The announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A payload of the wrong size for its id.
    BadLength {
        /// The message id.
        id: u8,
        /// Payload bytes after the id.
        len: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotBitTorrent => f.write_str("not a BitTorrent handshake"),
            WireError::TooLong { len, max } => {
                write!(f, "BitTorrent message of {len} bytes exceeds {max}")
            }
            WireError::BadLength { id, len } => {
                write!(f, "BitTorrent message {id} with a {len}-byte payload")
            }
        }
    }
}

impl core::error::Error for WireError {}

/// A bitfield checked against the torrent's piece count: one bit per piece, the high bit of
/// the first byte for piece 0 (BEP 3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bitfield<'a> {
    bytes: &'a [u8],
    piece_count: u32,
}

impl<'a> Bitfield<'a> {
    /// Bytes in the bitfield of `piece_count` pieces.
    pub const fn byte_len(piece_count: u32) -> u32 {
        piece_count.div_ceil(8)
    }

    /// Checks `bytes` for a torrent of `piece_count` pieces: exactly
    /// [`Bitfield::byte_len`] bytes, and the spare bits at the end clear, as BEP 3 demands
    /// ("Spare bits at the end are set to zero").
    pub fn new(bytes: &'a [u8], piece_count: u32) -> Result<Self, BitfieldError> {
        if bytes.len() as u64 != u64::from(Self::byte_len(piece_count)) {
            return Err(BitfieldError::WrongLength {
                len: bytes.len(),
                piece_count,
            });
        }
        let used_in_last = piece_count % 8;
        if let (Some(last), 1..) = (bytes.last(), used_in_last)
            && last & (0xFF >> used_in_last) != 0
        {
            return Err(BitfieldError::SpareBitsSet);
        }
        Ok(Bitfield { bytes, piece_count })
    }

    /// Whether piece `index` is set; false past the end.
    pub fn has(&self, index: u32) -> bool {
        index < self.piece_count
            && usize::try_from(index / 8)
                .ok()
                .and_then(|i| self.bytes.get(i))
                .is_some_and(|b| b & (0x80 >> (index % 8)) != 0)
    }

    /// Pieces set.
    pub fn count(&self) -> u32 {
        // The spare bits are clear, so every set bit is a piece and the sum fits a u32.
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Pieces in the torrent.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Whether every piece is set: the peer is a seed.
    pub fn is_complete(&self) -> bool {
        self.count() == self.piece_count
    }

    /// The bytes, as sent.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Why a bitfield does not fit the torrent. The peer is broken: close the connection.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BitfieldError {
    /// Not [`Bitfield::byte_len`] bytes.
    WrongLength {
        /// Bytes received.
        len: usize,
        /// Pieces in the torrent.
        piece_count: u32,
    },
    /// A bit past the last piece is set.
    SpareBitsSet,
}

impl fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitfieldError::WrongLength { len, piece_count } => {
                write!(f, "bitfield of {len} bytes for {piece_count} pieces")
            }
            BitfieldError::SpareBitsSet => f.write_str("bitfield sets bits past the last piece"),
        }
    }
}

impl core::error::Error for BitfieldError {}

/// Pieces we let a peer request while we choke it (BEP 6 "Allowed Fast"), as libtorrent's
/// `allowed_fast_set_size` (5).
pub const ALLOWED_FAST: usize = 5;

/// BEP 6's canonical allowed-fast set for a peer at IPv4 address `ip` in the torrent
/// `info_hash` of `piece_count` pieces: up to `out.len()` distinct piece indices (all of
/// them in a smaller torrent), written to the front of `out`; returns how many. Both ends
/// compute the same set, so a peer knows what it may ask for before it is unchoked. The
/// address is masked to its /24, so that peers behind one NAT share a set.
pub fn allowed_fast_set(
    ip: [u8; 4],
    info_hash: &[u8; 20],
    piece_count: u32,
    out: &mut [u32],
) -> usize {
    let k = out.len().min(piece_count as usize);
    let mut x = Sha1::new();
    x.update([ip[0], ip[1], ip[2], 0]);
    x.update(info_hash);
    let mut digest: [u8; 20] = x.finalize().into();
    let mut n = 0;
    // Each round draws five indices; a duplicate is skipped. The bound only matters for a
    // torrent about as small as the set, where the last index takes many draws.
    for _ in 0..10_000 {
        for word in digest.chunks_exact(4) {
            if n == k {
                return n;
            }
            let index = u32::from_be_bytes([word[0], word[1], word[2], word[3]]) % piece_count;
            if !out[..n].contains(&index) {
                out[n] = index;
                n += 1;
            }
        }
        digest = Sha1::digest(digest).into();
    }
    n
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// BEP 6's own example: 80.4.4.200, an info hash of twenty 0xaa bytes, 1313 pieces.
    #[test]
    fn bep6_allowed_fast_set_matches_the_spec_example() {
        let mut out = [0u32; 9];
        let n = allowed_fast_set([80, 4, 4, 200], &[0xaa; 20], 1313, &mut out[..7]);
        assert_eq!(&out[..n], [1059, 431, 808, 1217, 287, 376, 1188]);
        let n = allowed_fast_set([80, 4, 4, 200], &[0xaa; 20], 1313, &mut out);
        assert_eq!(&out[..n], [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]);
        // The same /24 gets the same set.
        let mut other = [0u32; 9];
        allowed_fast_set([80, 4, 4, 1], &[0xaa; 20], 1313, &mut other);
        assert_eq!(other, out);
        // A torrent smaller than the set: every piece, once.
        let n = allowed_fast_set([80, 4, 4, 200], &[0xaa; 20], 3, &mut out);
        let mut small = out[..n].to_vec();
        small.sort();
        assert_eq!(small, [0, 1, 2]);
        assert_eq!(allowed_fast_set([1, 2, 3, 4], &[0; 20], 0, &mut out), 0);
    }
    use std::string::ToString;
    use std::vec::Vec;

    const INFO_HASH: [u8; 20] = [0xAA; 20];
    const PEER_ID: &[u8; 20] = b"-OV0001-abcdefghijkl";

    /// Every message type as BEP 3/5/6/10 lay it out, written out by hand: length prefix
    /// (4, big-endian), id (1), payload.
    fn vectors() -> Vec<(&'static [u8], Message<'static>)> {
        let r = BlockRequest {
            index: 1,
            begin: 0x4000,
            length: 0x4000,
        };
        std::vec![
            // BEP 3: "Messages of length zero are keepalives".
            (&[0, 0, 0, 0], Message::KeepAlive),
            // BEP 3: choke, unchoke, interested, not interested "have no payload".
            (&[0, 0, 0, 1, 0], Message::Choke),
            (&[0, 0, 0, 1, 1], Message::Unchoke),
            (&[0, 0, 0, 1, 2], Message::Interested),
            (&[0, 0, 0, 1, 3], Message::NotInterested),
            // BEP 3: have "is a single number, the index".
            (&[0, 0, 0, 5, 4, 0, 0, 0, 5], Message::Have { index: 5 }),
            (
                &[0, 0, 0, 5, 4, 1, 2, 3, 4],
                Message::Have { index: 0x0102_0304 }
            ),
            // BEP 3: bitfield, 9 pieces: pieces 0..=7 and 8.
            (
                &[0, 0, 0, 3, 5, 0xFF, 0x80],
                Message::Bitfield(&[0xFF, 0x80])
            ),
            // BEP 3: request and cancel "contain an index, begin, and length".
            (
                &[0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
                Message::Request(r),
            ),
            // BEP 3: piece "contain[s] an index, begin, and piece".
            (
                &[
                    0, 0, 0, 13, 7, 0, 0, 0, 1, 0, 0, 0x40, 0, 0xDE, 0xAD, 0xBE, 0xEF
                ],
                Message::Piece {
                    index: 1,
                    begin: 0x4000,
                    block: &[0xDE, 0xAD, 0xBE, 0xEF],
                },
            ),
            (
                &[0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
                Message::Cancel(r),
            ),
            // BEP 5: port, two bytes in network order: 6881.
            (&[0, 0, 0, 3, 9, 0x1A, 0xE1], Message::Port(6881)),
            // BEP 6: suggest piece, have all, have none, reject request, allowed fast.
            (
                &[0, 0, 0, 5, 0x0D, 0, 0, 0, 7],
                Message::Suggest { index: 7 }
            ),
            (&[0, 0, 0, 1, 0x0E], Message::HaveAll),
            (&[0, 0, 0, 1, 0x0F], Message::HaveNone),
            (
                &[0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
                Message::RejectRequest(r),
            ),
            (
                &[0, 0, 0, 5, 0x11, 0, 0, 0, 9],
                Message::AllowedFast { index: 9 }
            ),
            // BEP 10: id 20, extended id 0 (the handshake), a bencoded dictionary.
            (
                b"\x00\x00\x00\x1a\x14\x00d1:md11:ut_metadatai3eee",
                Message::Extended {
                    id: EXTENDED_HANDSHAKE,
                    payload: b"d1:md11:ut_metadatai3eee",
                },
            ),
            // BEP 10: an extension message under an id the receiver assigned.
            (
                &[0, 0, 0, 3, 20, 3, 0xFF],
                Message::Extended {
                    id: 3,
                    payload: &[0xFF],
                },
            ),
            // Ids nobody assigned are framed, not rejected.
            (
                &[0, 0, 0, 3, 0x15, 1, 2],
                Message::Unknown {
                    id: 0x15,
                    payload: &[1, 2],
                },
            ),
            (
                &[0, 0, 0, 1, 0xFF],
                Message::Unknown {
                    id: 0xFF,
                    payload: &[]
                }
            ),
        ]
    }

    fn handshake_bytes() -> Vec<u8> {
        let mut b = Vec::new();
        b.push(19);
        b.extend_from_slice(b"BitTorrent protocol");
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        b.extend_from_slice(&INFO_HASH);
        b.extend_from_slice(PEER_ID);
        b
    }

    #[test]
    fn bep3_handshake_layout_round_trips() {
        let bytes = handshake_bytes();
        assert_eq!(bytes.len(), HANDSHAKE_LEN);
        let h = Handshake::parse(&bytes).unwrap().unwrap();
        assert_eq!(h.info_hash, INFO_HASH);
        assert_eq!(&h.peer_id, PEER_ID);
        assert_eq!(
            h.reserved,
            Reserved::NONE
                .with_dht()
                .with_fast()
                .with_extension_protocol()
        );
        assert_eq!(h.to_bytes()[..], bytes[..]);
        let mut out = [0u8; 80];
        assert_eq!(h.write(&mut out), Ok(HANDSHAKE_LEN));
        assert_eq!(out[..HANDSHAKE_LEN], bytes[..]);
        // Trailing bytes (the first message) are left for `frame`.
        let mut more = bytes.clone();
        more.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Handshake::parse(&more), Ok(Some(h)));
    }

    #[test]
    fn bep3_handshake_needs_all_68_bytes_at_every_split() {
        let bytes = handshake_bytes();
        for cut in 0..HANDSHAKE_LEN {
            assert_eq!(Handshake::parse(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn bep3_handshake_rejects_other_protocols_at_the_first_wrong_byte() {
        assert_eq!(Handshake::parse(b"G"), Err(WireError::NotBitTorrent));
        assert_eq!(
            Handshake::parse(b"GET /announce HTTP/1.1\r\n"),
            Err(WireError::NotBitTorrent)
        );
        assert_eq!(
            Handshake::parse(b"\x13BitT0"),
            Err(WireError::NotBitTorrent)
        );
        let mut bytes = handshake_bytes();
        bytes[19] = b'X';
        assert_eq!(Handshake::parse(&bytes), Err(WireError::NotBitTorrent));
        bytes[19] = b'l';
        bytes[0] = 18;
        assert_eq!(Handshake::parse(&bytes), Err(WireError::NotBitTorrent));
    }

    #[test]
    fn handshake_write_into_a_short_buffer_writes_nothing() {
        let h = Handshake::parse(&handshake_bytes()).unwrap().unwrap();
        let mut out = [0x55u8; HANDSHAKE_LEN - 1];
        assert_eq!(h.write(&mut out), Err(BufferFull));
        assert!(out.iter().all(|&b| b == 0x55));
    }

    #[test]
    fn reserved_bits_bep5_bep6_bep10() {
        // BEP 5: the last bit of the reserved bytes.
        assert_eq!(Reserved::NONE.with_dht().0, [0, 0, 0, 0, 0, 0, 0, 0x01]);
        // BEP 6: the third least significant bit of the last reserved byte (0x04).
        assert_eq!(Reserved::NONE.with_fast().0, [0, 0, 0, 0, 0, 0, 0, 0x04]);
        // BEP 10: bit 20 from the right, counting from 0: reserved_byte[5] & 0x10.
        assert_eq!(
            Reserved::NONE.with_extension_protocol().0,
            [0, 0, 0, 0, 0, 0x10, 0, 0]
        );
        let none = Reserved::default();
        assert!(!none.dht() && !none.fast() && !none.extension_protocol());
        let all = Reserved([0xFF; 8]);
        assert!(all.dht() && all.fast() && all.extension_protocol());
        let fast = Reserved([0, 0, 0, 0, 0, 0, 0, 0x04]);
        assert!(fast.fast() && !fast.dht() && !fast.extension_protocol());
    }

    #[test]
    fn every_message_type_frames_and_writes_byte_for_byte() {
        for (bytes, message) in vectors() {
            let framed = frame(bytes, DEFAULT_MAX_LEN);
            assert_eq!(framed, Ok(Some((message, bytes.len()))), "{bytes:02x?}");
            assert_eq!(message.encoded_len(), bytes.len(), "{message:?}");
            assert_eq!(message.id(), bytes.get(4).copied(), "{message:?}");
            let mut out = [0u8; 64];
            assert_eq!(message.write(&mut out), Ok(bytes.len()), "{message:?}");
            assert_eq!(&out[..bytes.len()], bytes, "{message:?}");
        }
    }

    #[test]
    fn every_split_point_needs_more_then_completes() {
        for (bytes, message) in vectors() {
            for cut in 0..bytes.len() {
                assert_eq!(
                    frame(&bytes[..cut], DEFAULT_MAX_LEN),
                    Ok(None),
                    "{bytes:02x?} at {cut}"
                );
            }
            assert_eq!(
                frame(bytes, DEFAULT_MAX_LEN),
                Ok(Some((message, bytes.len())))
            );
        }
    }

    #[test]
    fn a_stream_fed_in_small_chunks_yields_every_message_in_order() {
        let vectors = vectors();
        let mut stream = handshake_bytes();
        for (bytes, _) in &vectors {
            stream.extend_from_slice(bytes);
        }
        for chunk in 1..=9 {
            let mut buf: Vec<u8> = Vec::new();
            let mut handshake = None;
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                if handshake.is_none() {
                    handshake = Handshake::parse(&buf).unwrap();
                    if handshake.is_some() {
                        buf.drain(..HANDSHAKE_LEN);
                    }
                    continue;
                }
                while let Some((message, used)) = frame(&buf, DEFAULT_MAX_LEN).unwrap() {
                    let mut out = [0u8; 64];
                    let n = message.write(&mut out).unwrap();
                    got.push(out[..n].to_vec());
                    buf.drain(..used);
                }
            }
            assert!(handshake.is_some());
            assert!(buf.is_empty(), "chunk {chunk}: {buf:02x?} left over");
            let want: Vec<Vec<u8>> = vectors.iter().map(|(b, _)| b.to_vec()).collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    #[test]
    fn a_too_long_prefix_fails_before_the_body_arrives() {
        // 0x00010000 = 64 KiB announced, nothing of it here yet.
        assert_eq!(
            frame(&[0, 1, 0, 0], DEFAULT_MAX_LEN),
            Err(WireError::TooLong {
                len: 0x1_0000,
                max: DEFAULT_MAX_LEN
            })
        );
        assert_eq!(
            frame(&[0xFF, 0xFF, 0xFF, 0xFF], u32::MAX - 1),
            Err(WireError::TooLong {
                len: u32::MAX,
                max: u32::MAX - 1
            })
        );
        // Exactly at the limit is fine; one over is not.
        let have = [0, 0, 0, 5, 4, 0, 0, 0, 5];
        assert_eq!(frame(&have, 5), Ok(Some((Message::Have { index: 5 }, 9))));
        assert_eq!(frame(&have, 4), Err(WireError::TooLong { len: 5, max: 4 }));
        // A keep-alive passes any limit.
        assert_eq!(frame(&[0, 0, 0, 0], 0), Ok(Some((Message::KeepAlive, 4))));
    }

    #[test]
    fn wrong_payload_sizes_are_bad_length_per_id() {
        let bad = |id: u8, len: usize| {
            let mut body = std::vec![id];
            body.resize(1 + len, 0);
            assert_eq!(
                Message::parse(&body),
                Err(WireError::BadLength { id, len }),
                "id {id} len {len}"
            );
            // And through the framer.
            let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(&body);
            assert_eq!(
                frame(&bytes, DEFAULT_MAX_LEN),
                Err(WireError::BadLength { id, len })
            );
        };
        // BEP 3 and BEP 6: no payload at all.
        for id in [0, 1, 2, 3, 0x0E, 0x0F] {
            bad(id, 1);
            bad(id, 4);
        }
        // Have, suggest, allowed fast: exactly one 4-byte index.
        for id in [4, 0x0D, 0x11] {
            bad(id, 0);
            bad(id, 3);
            bad(id, 5);
        }
        // Request, cancel, reject request: exactly 12 bytes.
        for id in [6, 8, 0x10] {
            bad(id, 0);
            bad(id, 11);
            bad(id, 13);
        }
        // Piece: at least index and begin.
        bad(7, 0);
        bad(7, 7);
        // Port (BEP 5): exactly 2 bytes.
        bad(9, 0);
        bad(9, 1);
        bad(9, 3);
        // Extended (BEP 10): at least the extended id.
        bad(20, 0);
    }

    #[test]
    fn sizes_that_have_no_upper_bound_accept_the_minimum() {
        assert_eq!(
            Message::parse(&[7, 0, 0, 0, 2, 0, 0, 0, 3]),
            Ok(Message::Piece {
                index: 2,
                begin: 3,
                block: &[]
            })
        );
        assert_eq!(Message::parse(&[5]), Ok(Message::Bitfield(&[])));
        assert_eq!(
            Message::parse(&[20, 0]),
            Ok(Message::Extended {
                id: 0,
                payload: &[]
            })
        );
        assert_eq!(Message::parse(&[]), Ok(Message::KeepAlive));
    }

    #[test]
    fn write_into_a_short_buffer_writes_nothing() {
        for (bytes, message) in vectors() {
            let mut out = [0x55u8; 64];
            assert_eq!(message.write(&mut out[..bytes.len() - 1]), Err(BufferFull));
            assert!(out.iter().all(|&b| b == 0x55), "{message:?}");
        }
    }

    #[test]
    fn piece_header_then_block_is_the_piece_message() {
        let block = [0xDE, 0xAD, 0xBE, 0xEF];
        let mut out = [0u8; 32];
        assert_eq!(
            write_piece_header(&mut out, 1, 0x4000, block.len()),
            Ok(PIECE_HEADER_LEN)
        );
        out[PIECE_HEADER_LEN..PIECE_HEADER_LEN + 4].copy_from_slice(&block);
        let mut whole = [0u8; 32];
        let piece = Message::Piece {
            index: 1,
            begin: 0x4000,
            block: &block,
        };
        assert_eq!(piece.write(&mut whole), Ok(17));
        assert_eq!(out[..17], whole[..17]);
        // A full 16 KiB block: length 9 + 16384 = 0x4009.
        write_piece_header(&mut out, 0, 0, BLOCK_LEN as usize).unwrap();
        assert_eq!(out[..5], [0, 0, 0x40, 0x09, 7]);

        let mut short = [0x55u8; PIECE_HEADER_LEN - 1];
        assert_eq!(write_piece_header(&mut short, 1, 2, 3), Err(BufferFull));
        assert!(short.iter().all(|&b| b == 0x55));
        assert_eq!(
            write_piece_header(&mut out, 1, 2, u32::MAX as usize),
            Err(BufferFull)
        );
        assert_eq!(
            write_piece_header(&mut out, 1, 2, usize::MAX),
            Err(BufferFull)
        );
    }

    #[test]
    fn bep3_bitfield_high_bit_first_spare_bits_clear() {
        // 11 pieces: 0, 2, 8 and 10 set; the 5 spare bits of the second byte clear.
        let bits = [0b1010_0000, 0b1010_0000];
        let b = Bitfield::new(&bits, 11).unwrap();
        let set: Vec<u32> = (0..16).filter(|&i| b.has(i)).collect();
        assert_eq!(set, [0, 2, 8, 10]);
        assert_eq!(b.count(), 4);
        assert_eq!(b.piece_count(), 11);
        assert!(!b.is_complete());
        assert_eq!(b.as_bytes(), &bits);
        assert!(!b.has(u32::MAX));

        let seed = Bitfield::new(&[0xFF, 0xE0], 11).unwrap();
        assert!(seed.is_complete());
        assert_eq!(seed.count(), 11);
        // A whole number of bytes has no spare bits.
        assert!(Bitfield::new(&[0xFF], 8).unwrap().is_complete());
        assert!(Bitfield::new(&[], 0).unwrap().is_complete());
    }

    #[test]
    fn bep3_bitfield_errors() {
        assert_eq!(
            Bitfield::new(&[0xFF, 0xF0], 11),
            Err(BitfieldError::SpareBitsSet)
        );
        assert_eq!(Bitfield::new(&[0x01], 7), Err(BitfieldError::SpareBitsSet));
        assert_eq!(
            Bitfield::new(&[0xFF], 9),
            Err(BitfieldError::WrongLength {
                len: 1,
                piece_count: 9
            })
        );
        assert_eq!(
            Bitfield::new(&[0, 0, 0], 16),
            Err(BitfieldError::WrongLength {
                len: 3,
                piece_count: 16
            })
        );
        assert_eq!(
            Bitfield::new(&[0], 0),
            Err(BitfieldError::WrongLength {
                len: 1,
                piece_count: 0
            })
        );
    }

    #[test]
    fn max_len_grows_only_for_large_bitfields() {
        assert_eq!(Bitfield::byte_len(0), 0);
        assert_eq!(Bitfield::byte_len(9), 2);
        assert_eq!(Bitfield::byte_len(u32::MAX), 0x2000_0000);
        assert_eq!(max_len_for(0), DEFAULT_MAX_LEN);
        assert_eq!(max_len_for(100_000), DEFAULT_MAX_LEN);
        assert_eq!(max_len_for(1_000_000), 1 + 125_000);
        assert_eq!(max_len_for(u32::MAX), 1 + 0x2000_0000);
        // The default admits a piece message carrying a full block.
        assert!(PIECE_HEADER_LEN as u32 - 4 + BLOCK_LEN <= DEFAULT_MAX_LEN);
        assert_eq!(MAX_REQUEST_LEN, 16384);
    }

    #[test]
    fn errors_display() {
        for e in [
            WireError::NotBitTorrent,
            WireError::TooLong { len: 9, max: 1 },
            WireError::BadLength { id: 4, len: 3 },
        ] {
            assert!(!e.to_string().is_empty());
        }
        for e in [
            BitfieldError::SpareBitsSet,
            BitfieldError::WrongLength {
                len: 1,
                piece_count: 9,
            },
        ] {
            assert!(!e.to_string().is_empty());
        }
    }
}
