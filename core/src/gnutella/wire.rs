//! Gnutella descriptors, byte for byte: the 23-byte header and the Ping, Pong, Bye,
//! Push, Query and QueryHit payloads (the 0.4 protocol document and the RFC-Gnutella 0.6
//! draft; the layouts are the ones gtk-gnutella's `src/core/gnutella.h` accesses), with
//! HUGE's extension strings (`doc/gnutella/huge` section 3), GGEP blocks
//! (`doc/gnutella/GGEP`) and the Bye message (`doc/gnutella/bye` section 2).
//!
//! Integers are little-endian, except IPv4 addresses, which are in network order.
//!
//! [`frame`] cuts one message off the front of a TCP stream buffer (or says it needs more
//! bytes); [`decode`] turns its payload into a view that borrows it. Everything a view
//! holds was checked by `decode` (lengths, NUL terminators, GGEP structure), so its
//! iterators cannot fail. The decoded views re-encode byte for byte with
//! [`write_message`]; [`QueryHitWriter`] builds new query hits result by result.

use super::{WriteError, put, urn};
use core::fmt;
use core::iter::FusedIterator;

/// Bytes in a descriptor header.
pub const HEADER_LEN: usize = 23;

/// The largest payload [`frame`] accepts: 64 KiB. gtk-gnutella's tools and LimeWire
/// (`MessageSettings.MAX_LENGTH` = 65536) drop anything longer, and a length beyond it is
/// the usual sign of a desynchronised stream, not a real message.
pub const MAX_PAYLOAD: u32 = 64 * 1024;

/// A message id, or a servent id: 16 bytes.
pub type Guid = [u8; 16];

/// The GGEP magic byte (`GGEP`, "GGEP Extension Prefix").
pub const GGEP_MAGIC: u8 = 0xC3;

/// HUGE section 3's separator between extension strings (ASCII FS).
pub const HUGE_SEPARATOR: u8 = 0x1C;

/// The payload descriptor: the header's type byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    /// 0x00.
    Ping,
    /// 0x01.
    Pong,
    /// 0x02 (`bye`).
    Bye,
    /// 0x40.
    Push,
    /// 0x80.
    Query,
    /// 0x81.
    QueryHit,
    /// Anything else (0x30 QRP, 0x31/0x32 vendor messages, ...): framed, not decoded.
    Other(u8),
}

impl Kind {
    /// The kind of a type byte.
    pub fn from_byte(b: u8) -> Kind {
        match b {
            0x00 => Kind::Ping,
            0x01 => Kind::Pong,
            0x02 => Kind::Bye,
            0x40 => Kind::Push,
            0x80 => Kind::Query,
            0x81 => Kind::QueryHit,
            other => Kind::Other(other),
        }
    }

    /// The type byte.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Ping => 0x00,
            Kind::Pong => 0x01,
            Kind::Bye => 0x02,
            Kind::Push => 0x40,
            Kind::Query => 0x80,
            Kind::QueryHit => 0x81,
            Kind::Other(b) => b,
        }
    }
}

/// The descriptor header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// The message id, by which replies are routed back.
    pub guid: Guid,
    /// The payload type.
    pub kind: Kind,
    /// Hops still allowed.
    pub ttl: u8,
    /// Hops taken so far.
    pub hops: u8,
    /// Payload bytes after the header.
    pub len: u32,
}

impl Header {
    /// Reads a header. Every 23 bytes are a header; what they say is checked by
    /// [`frame`] and [`decode`].
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&b[..16]);
        Header {
            guid,
            kind: Kind::from_byte(b[16]),
            ttl: b[17],
            hops: b[18],
            len: u32::from_le_bytes([b[19], b[20], b[21], b[22]]),
        }
    }

    /// The 23 bytes of this header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..16].copy_from_slice(&self.guid);
        b[16] = self.kind.byte();
        b[17] = self.ttl;
        b[18] = self.hops;
        b[19..].copy_from_slice(&self.len.to_le_bytes());
        b
    }
}

/// One message cut from a stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Frame<'a> {
    /// Its header.
    pub header: Header,
    /// Its payload, `header.len` bytes.
    pub payload: &'a [u8],
    /// Bytes it took from the buffer: drop them before the next call.
    pub consumed: usize,
}

/// Why a stream cannot be framed. The stream is lost: close the connection (after a Bye
/// with code 400, `bye` section 2).
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// The header announces a payload longer than the limit.
    TooLong {
        /// The announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { len, max } => {
                write!(f, "gnutella payload of {len} bytes exceeds {max}")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// Cuts the first message off `buf` under [`MAX_PAYLOAD`]: `Ok(None)` until the header
/// and the whole payload have arrived.
pub fn frame(buf: &[u8]) -> Result<Option<Frame<'_>>, FrameError> {
    frame_with(buf, MAX_PAYLOAD)
}

/// [`frame`] with another payload limit. The limit is checked as soon as the header is
/// in, so a peer cannot make us buffer a huge payload.
pub fn frame_with(buf: &[u8], max_payload: u32) -> Result<Option<Frame<'_>>, FrameError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = Header::parse(head);
    if header.len > max_payload {
        return Err(FrameError::TooLong {
            len: header.len,
            max: max_payload,
        });
    }
    // `len` fits in usize: it is at most `max_payload`, a u32, on a 32- or 64-bit target,
    // and `checked_add` covers 16-bit ones.
    let Some(consumed) = HEADER_LEN.checked_add(header.len as usize) else {
        return Ok(None);
    };
    match buf.get(HEADER_LEN..consumed) {
        Some(payload) => Ok(Some(Frame {
            header,
            payload,
            consumed,
        })),
        None => Ok(None),
    }
}

/// Why a payload was not accepted.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// Shorter than the payload type's fixed fields.
    TooShort,
    /// A string that must end in NUL does not (the search criteria, a file name, a
    /// result's extension block, the Bye message).
    MissingNul,
    /// Bytes after the last field of a payload that has no room for them (a Bye).
    TrailingBytes,
    /// A GGEP block that breaks `GGEP`'s rules (reserved bit set, empty or NUL id, bad
    /// length chunks) or runs past its extension block.
    BadGgep,
    /// A query hit's trailer (between the results and the servent id) that is too short
    /// for a QHD's vendor code and open-data size, or whose open data overruns it.
    BadTrailer,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::TooShort => "gnutella payload shorter than its fixed fields",
            DecodeError::MissingNul => "gnutella string not NUL-terminated",
            DecodeError::TrailingBytes => "bytes after the gnutella payload's last field",
            DecodeError::BadGgep => "malformed GGEP block",
            DecodeError::BadTrailer => "malformed query hit trailer",
        })
    }
}

impl core::error::Error for DecodeError {}

/// A decoded payload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Payload<'a> {
    /// 0x00.
    Ping(Ping<'a>),
    /// 0x01.
    Pong(Pong<'a>),
    /// 0x02.
    Bye(Bye<'a>),
    /// 0x40.
    Push(Push<'a>),
    /// 0x80.
    Query(Query<'a>),
    /// 0x81.
    QueryHit(QueryHit<'a>),
    /// A type this module does not decode, with its raw payload.
    Other {
        /// The type byte.
        kind: u8,
        /// The payload.
        bytes: &'a [u8],
    },
}

/// Ping: an optional extension block (GGEP, `GGEP` "Ping Message").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ping<'a> {
    /// The payload, usually empty.
    pub extensions: Extensions<'a>,
}

/// Pong: the address of a servent and how much it shares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pong<'a> {
    /// The port it listens on.
    pub port: u16,
    /// Its IPv4 address.
    pub ip: [u8; 4],
    /// Files it shares.
    pub files: u32,
    /// Kilobytes it shares.
    pub kbytes: u32,
    /// What follows the 14 fixed bytes (GGEP).
    pub extensions: Extensions<'a>,
}

/// Bye: why the sender is closing (`bye` section 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bye<'a> {
    /// An SMTP-style code: 2xx normal, 4xx the receiver misbehaved, 5xx internal.
    pub code: u16,
    /// The text, without its NUL; may carry HTTP-style headers after a CR LF.
    pub message: &'a [u8],
}

/// Push: asks a firewalled servent to connect out and upload a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Push<'a> {
    /// The servent that should push (its id from the query hit).
    pub servent_id: Guid,
    /// The file, by the index in the query hit.
    pub index: u32,
    /// Where to connect: IPv4 address.
    pub ip: [u8; 4],
    /// Where to connect: port.
    pub port: u16,
    /// What follows the 26 fixed bytes (GGEP, `GGEP` "Push Message").
    pub extensions: Extensions<'a>,
}

/// Query: a search.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Query<'a> {
    /// The two bytes after the header, little-endian: the 0.4 "minimum speed". Servents
    /// since the `min_speed` proposal (gtk-gnutella `doc/gnutella/min_speed`) read them
    /// big-endian as flags; [`Query::flags`] gives that reading.
    pub min_speed: u16,
    /// The search text, without its NUL.
    pub criteria: &'a [u8],
    /// Everything after the NUL: HUGE strings and GGEP, often with a closing NUL.
    pub extensions: Extensions<'a>,
}

impl Query<'_> {
    /// The same two bytes as [`Query::min_speed`], read big-endian, as servents that
    /// use them as flags do (gtk-gnutella's `gnutella_msg_search_get_flags`).
    pub fn flags(&self) -> u16 {
        self.min_speed.swap_bytes()
    }
}

/// QueryHit: results from one servent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct QueryHit<'a> {
    /// The port to download from.
    pub port: u16,
    /// The IPv4 address to download from.
    pub ip: [u8; 4],
    /// Its speed in kbit/s.
    pub speed: u32,
    /// The results.
    pub hits: Hits<'a>,
    /// The trailer between the results and the servent id, if not empty.
    pub qhd: Option<Qhd<'a>>,
    /// The last 16 bytes: whom to send a Push to.
    pub servent_id: Guid,
}

/// The results of a [`QueryHit`], validated, decoded as they are iterated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Hits<'a> {
    raw: &'a [u8],
    count: u8,
}

impl<'a> Hits<'a> {
    /// How many results.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The result records exactly as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The results in order.
    pub fn iter(&self) -> HitIter<'a> {
        HitIter {
            rest: self.raw,
            left: self.count,
        }
    }
}

impl<'a> IntoIterator for Hits<'a> {
    type Item = Hit<'a>;
    type IntoIter = HitIter<'a>;
    fn into_iter(self) -> HitIter<'a> {
        self.iter()
    }
}

/// One result of a query hit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Hit<'a> {
    /// The file's index, for `GET /get/<index>/<name>` and Push.
    pub index: u32,
    /// The file's size in bytes (`0xFFFFFFFF` with a GGEP `LF` for files of 4 GiB and
    /// more, gtk-gnutella `doc/gnutella/filesize64`).
    pub size: u32,
    /// The file name, without its NUL.
    pub name: &'a [u8],
    /// The block between the name's NUL and the record's closing NUL: HUGE URNs, GGEP.
    pub extensions: Extensions<'a>,
}

/// Iterator over [`Hits`].
#[derive(Clone, Debug)]
pub struct HitIter<'a> {
    rest: &'a [u8],
    left: u8,
}

impl<'a> Iterator for HitIter<'a> {
    type Item = Hit<'a>;

    fn next(&mut self) -> Option<Hit<'a>> {
        if self.left == 0 {
            return None;
        }
        // `decode` checked that `left` records follow; `None` here is unreachable.
        let (hit, n) = parse_hit(self.rest).ok()?;
        self.rest = &self.rest[n..];
        self.left -= 1;
        Some(hit)
    }
}

impl FusedIterator for HitIter<'_> {}

/// The query hit trailer ("QHD", RFC-Gnutella 0.6 draft, QueryHit): a vendor code, the
/// open data (flags), and private data up to the servent id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Qhd<'a> {
    /// Four letters naming the vendor (`GTKG`, `LIME`, `BEAR`).
    pub vendor: [u8; 4],
    /// The open data, whose length is the byte after the vendor code.
    pub open: &'a [u8],
    /// The rest, vendor-specific (often a GGEP block).
    pub private: &'a [u8],
}

/// QHD flag bits (in both open-data bytes).
pub mod qhd_flag {
    /// The servent is firewalled: download by Push.
    pub const PUSH: u8 = 0x01;
    /// All upload slots are taken.
    pub const BUSY: u8 = 0x04;
    /// The servent has completed an upload.
    pub const UPLOADED: u8 = 0x08;
    /// The speed field was measured, not set by the user.
    pub const SPEED: u8 = 0x10;
    /// The private data holds a GGEP block.
    pub const GGEP: u8 = 0x20;
}

impl Qhd<'_> {
    /// A flag's value if the open data says it is meaningful. With two open-data bytes,
    /// the first says which bits of the second are set, except for the push bit, whose
    /// roles are swapped (a historical accident every servent copies).
    pub fn flag(&self, bit: u8) -> Option<bool> {
        let [first, second, ..] = *self.open else {
            return None;
        };
        let (enabled, value) = if bit == qhd_flag::PUSH {
            (second, first)
        } else {
            (first, second)
        };
        (enabled & bit != 0).then_some(value & bit != 0)
    }
}

/// Extension bytes: HUGE strings separated by 0x1C, GGEP blocks, legacy text. Validated
/// by [`decode`] (every GGEP block is well-formed), iterated lazily.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Extensions<'a> {
    raw: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// Checks the GGEP blocks in `raw`.
    pub fn new(raw: &'a [u8]) -> Result<Self, DecodeError> {
        let mut rest = raw;
        while !rest.is_empty() {
            (_, rest) = next_extension(rest)?;
        }
        Ok(Extensions { raw })
    }

    /// The bytes exactly as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Each extension in order (separators and NULs skipped).
    pub fn iter(&self) -> ExtensionIter<'a> {
        ExtensionIter { rest: self.raw }
    }

    /// The SHA-1s named by the `urn:sha1:` (and `urn:bitprint:`) strings.
    pub fn sha1_urns(&self) -> impl Iterator<Item = [u8; 20]> + 'a {
        self.iter().filter_map(|e| match e {
            Extension::Urn(u) => urn::parse_sha1(u),
            _ => None,
        })
    }
}

impl<'a> IntoIterator for Extensions<'a> {
    type Item = Extension<'a>;
    type IntoIter = ExtensionIter<'a>;
    fn into_iter(self) -> ExtensionIter<'a> {
        self.iter()
    }
}

/// One item of an extension block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Extension<'a> {
    /// A HUGE string starting `urn:` (any case): `urn:sha1:...`, or a bare `urn:` that
    /// asks for URNs in the hits (HUGE section 4).
    Urn(&'a [u8]),
    /// A GGEP block, from its 0xC3 to the end of its last extension.
    Ggep(Ggep<'a>),
    /// Any other string (XML metadata, vendor text): HUGE section 3 says to ignore what
    /// one does not understand.
    Other(&'a [u8]),
}

/// Iterator over [`Extensions`].
#[derive(Clone, Debug)]
pub struct ExtensionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = Extension<'a>;

    fn next(&mut self) -> Option<Extension<'a>> {
        let (item, rest) = next_extension(self.rest).ok()?;
        self.rest = rest;
        item
    }
}

impl FusedIterator for ExtensionIter<'_> {}

/// The next item and what follows it; `None` when only separators are left.
fn next_extension(b: &[u8]) -> Result<(Option<Extension<'_>>, &[u8]), DecodeError> {
    let skip = b
        .iter()
        .take_while(|&&c| c == HUGE_SEPARATOR || c == 0)
        .count();
    let b = &b[skip..];
    if b.is_empty() {
        return Ok((None, b));
    }
    if b[0] == GGEP_MAGIC {
        let n = ggep_len(b)?;
        let ggep = Ggep { raw: &b[..n] };
        return Ok((Some(Extension::Ggep(ggep)), &b[n..]));
    }
    let n = b
        .iter()
        .position(|&c| c == HUGE_SEPARATOR || c == 0)
        .unwrap_or(b.len());
    let s = &b[..n];
    let item = if urn::is_urn(s) {
        Extension::Urn(s)
    } else {
        Extension::Other(s)
    };
    Ok((Some(item), &b[n..]))
}

/// A GGEP block, validated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ggep<'a> {
    raw: &'a [u8],
}

impl<'a> Ggep<'a> {
    /// The block's bytes, magic included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The extensions in order.
    pub fn iter(&self) -> GgepIter<'a> {
        GgepIter {
            rest: &self.raw[1..],
        }
    }

    /// The first extension with this id.
    pub fn get(&self, id: &[u8]) -> Option<GgepExtension<'a>> {
        self.iter().find(|e| e.id == id)
    }
}

/// One GGEP extension ("GGEP Extension Header" and data).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GgepExtension<'a> {
    /// The id, 1 to 15 bytes (`H` for hashes, `LF` for large file sizes, ...).
    pub id: &'a [u8],
    /// The data is COBS-encoded (flag bit 6).
    pub cobs: bool,
    /// The data is deflated (flag bit 5).
    pub deflate: bool,
    /// The data as sent (still encoded and compressed, if the flags say so).
    pub data: &'a [u8],
}

/// Iterator over a [`Ggep`] block's extensions.
#[derive(Clone, Debug)]
pub struct GgepIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for GgepIter<'a> {
    type Item = GgepExtension<'a>;

    fn next(&mut self) -> Option<GgepExtension<'a>> {
        let (ext, n, last) = ggep_extension(self.rest).ok()?;
        self.rest = if last { &[] } else { &self.rest[n..] };
        Some(ext)
    }
}

impl FusedIterator for GgepIter<'_> {}

/// One extension at the start of `b`: it, its length, and whether it is the last.
fn ggep_extension(b: &[u8]) -> Result<(GgepExtension<'_>, usize, bool), DecodeError> {
    let bad = DecodeError::BadGgep;
    let &flags = b.first().ok_or(bad)?;
    let id_len = usize::from(flags & 0x0f);
    // Bit 4 is reserved and must be 0; ids are 1 to 15 bytes, none of them NUL.
    if flags & 0x10 != 0 || id_len == 0 {
        return Err(bad);
    }
    let id = b.get(1..1 + id_len).ok_or(bad)?;
    if id.contains(&0) {
        return Err(bad);
    }
    // The data length: 1 to 3 chunks of 6 bits, big-endian, each with 0x80 "more" or
    // 0x40 "last" (never both, never neither), so no byte of it is 0.
    let mut at = 1 + id_len;
    let mut len = 0usize;
    for chunk in 0..3 {
        let &c = b.get(at).ok_or(bad)?;
        at += 1;
        len = (len << 6) | usize::from(c & 0x3f);
        match c & 0xc0 {
            0x40 => break,
            0x80 if chunk < 2 => {}
            _ => return Err(bad),
        }
    }
    let data = b.get(at..at + len).ok_or(bad)?;
    let ext = GgepExtension {
        id,
        cobs: flags & 0x40 != 0,
        deflate: flags & 0x20 != 0,
        data,
    };
    Ok((ext, at + len, flags & 0x80 != 0))
}

/// The length of the GGEP block at the start of `b` (which starts with the magic).
fn ggep_len(b: &[u8]) -> Result<usize, DecodeError> {
    let mut at = 1;
    loop {
        let (_, n, last) = ggep_extension(&b[at..])?;
        at += n;
        if last {
            return Ok(at);
        }
    }
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn ip4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

fn guid(b: &[u8]) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[..16]);
    g
}

/// Splits `b` at its first NUL: (before, after).
fn until_nul(b: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let n = b
        .iter()
        .position(|&c| c == 0)
        .ok_or(DecodeError::MissingNul)?;
    Ok((&b[..n], &b[n + 1..]))
}

/// One result record at the start of `b`, and its length.
fn parse_hit(b: &[u8]) -> Result<(Hit<'_>, usize), DecodeError> {
    let fixed = b.get(..8).ok_or(DecodeError::TooShort)?;
    let (name, rest) = until_nul(&b[8..])?;
    let (ext, rest) = until_nul(rest)?;
    let hit = Hit {
        index: le32(fixed),
        size: le32(&fixed[4..]),
        name,
        extensions: Extensions::new(ext)?,
    };
    Ok((hit, b.len() - rest.len()))
}

/// Decodes the payload of a message of `kind`.
pub fn decode(kind: Kind, p: &[u8]) -> Result<Payload<'_>, DecodeError> {
    let short = DecodeError::TooShort;
    Ok(match kind {
        Kind::Ping => Payload::Ping(Ping {
            extensions: Extensions::new(p)?,
        }),
        Kind::Pong => {
            let f = p.get(..14).ok_or(short)?;
            Payload::Pong(Pong {
                port: le16(f),
                ip: ip4(&f[2..]),
                files: le32(&f[6..]),
                kbytes: le32(&f[10..]),
                extensions: Extensions::new(&p[14..])?,
            })
        }
        Kind::Bye => {
            let f = p.get(..2).ok_or(short)?;
            let (message, rest) = until_nul(&p[2..])?;
            if !rest.is_empty() {
                return Err(DecodeError::TrailingBytes);
            }
            Payload::Bye(Bye {
                code: le16(f),
                message,
            })
        }
        Kind::Push => {
            let f = p.get(..26).ok_or(short)?;
            Payload::Push(Push {
                servent_id: guid(f),
                index: le32(&f[16..]),
                ip: ip4(&f[20..]),
                port: le16(&f[24..]),
                extensions: Extensions::new(&p[26..])?,
            })
        }
        Kind::Query => {
            let f = p.get(..2).ok_or(short)?;
            let (criteria, ext) = until_nul(&p[2..])?;
            Payload::Query(Query {
                min_speed: le16(f),
                criteria,
                extensions: Extensions::new(ext)?,
            })
        }
        Kind::QueryHit => decode_query_hit(p)?,
        Kind::Other(kind) => Payload::Other { kind, bytes: p },
    })
}

fn decode_query_hit(p: &[u8]) -> Result<Payload<'_>, DecodeError> {
    // 11 fixed bytes, the results, the trailer, and the servent id at the very end.
    if p.len() < 11 + 16 {
        return Err(DecodeError::TooShort);
    }
    let (body, id) = p.split_at(p.len() - 16);
    let count = body[0];
    let mut at = 11;
    for _ in 0..count {
        let (_, n) = parse_hit(&body[at..])?;
        at += n;
    }
    let trailer = &body[at..];
    let qhd = if trailer.is_empty() {
        None
    } else {
        let vendor = trailer.get(..4).ok_or(DecodeError::BadTrailer)?;
        let &open_len = trailer.get(4).ok_or(DecodeError::BadTrailer)?;
        let open_end = 5 + usize::from(open_len);
        let open = trailer.get(5..open_end).ok_or(DecodeError::BadTrailer)?;
        Some(Qhd {
            vendor: ip4(vendor),
            open,
            private: &trailer[open_end..],
        })
    };
    Ok(Payload::QueryHit(QueryHit {
        port: le16(&body[1..]),
        ip: ip4(&body[3..]),
        speed: le32(&body[7..]),
        hits: Hits {
            raw: &body[11..at],
            count,
        },
        qhd,
        servent_id: guid(id),
    }))
}

impl Payload<'_> {
    /// The type byte this payload is sent with.
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Ping(_) => Kind::Ping,
            Payload::Pong(_) => Kind::Pong,
            Payload::Bye(_) => Kind::Bye,
            Payload::Push(_) => Kind::Push,
            Payload::Query(_) => Kind::Query,
            Payload::QueryHit(_) => Kind::QueryHit,
            Payload::Other { kind, .. } => Kind::from_byte(*kind),
        }
    }

    /// Writes the payload (no header) at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WriteError> {
        let mut n = 0;
        match self {
            Payload::Ping(p) => put(out, &mut n, &[p.extensions.raw])?,
            Payload::Pong(p) => put(
                out,
                &mut n,
                &[
                    &p.port.to_le_bytes(),
                    &p.ip,
                    &p.files.to_le_bytes(),
                    &p.kbytes.to_le_bytes(),
                    p.extensions.raw,
                ],
            )?,
            Payload::Bye(b) => {
                no_nul(b.message, "Bye message contains NUL")?;
                put(out, &mut n, &[&b.code.to_le_bytes(), b.message, &[0]])?
            }
            Payload::Push(p) => put(
                out,
                &mut n,
                &[
                    &p.servent_id,
                    &p.index.to_le_bytes(),
                    &p.ip,
                    &p.port.to_le_bytes(),
                    p.extensions.raw,
                ],
            )?,
            Payload::Query(q) => {
                no_nul(q.criteria, "search criteria contain NUL")?;
                put(
                    out,
                    &mut n,
                    &[
                        &q.min_speed.to_le_bytes(),
                        q.criteria,
                        &[0],
                        q.extensions.raw,
                    ],
                )?
            }
            Payload::QueryHit(h) => {
                put(
                    out,
                    &mut n,
                    &[
                        &[h.hits.count],
                        &h.port.to_le_bytes(),
                        &h.ip,
                        &h.speed.to_le_bytes(),
                        h.hits.raw,
                    ],
                )?;
                write_trailer(out, &mut n, h.qhd.as_ref(), &h.servent_id)?
            }
            Payload::Other { bytes, .. } => put(out, &mut n, &[bytes])?,
        }
        Ok(n)
    }
}

fn no_nul(s: &[u8], what: &'static str) -> Result<(), WriteError> {
    if s.contains(&0) {
        return Err(WriteError::Invalid(what));
    }
    Ok(())
}

fn write_trailer(
    out: &mut [u8],
    n: &mut usize,
    qhd: Option<&Qhd<'_>>,
    servent_id: &Guid,
) -> Result<(), WriteError> {
    if let Some(q) = qhd {
        let open_len = u8::try_from(q.open.len())
            .map_err(|_| WriteError::Invalid("QHD open data longer than 255 bytes"))?;
        put(out, n, &[&q.vendor, &[open_len], q.open, q.private])?;
    }
    put(out, n, &[servent_id])
}

/// Writes a whole message, header and payload, at the start of `out`; returns its
/// length. The header's length field is the payload's.
pub fn write_message(
    out: &mut [u8],
    guid: &Guid,
    ttl: u8,
    hops: u8,
    payload: &Payload<'_>,
) -> Result<usize, WriteError> {
    let body = out.get_mut(HEADER_LEN..).ok_or(WriteError::BufferFull)?;
    let len = payload.write(body)?;
    let header = Header {
        guid: *guid,
        kind: payload.kind(),
        ttl,
        hops,
        len: u32::try_from(len).map_err(|_| WriteError::Invalid("payload over 4 GiB"))?,
    };
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    Ok(HEADER_LEN + len)
}

/// Builds a QueryHit message in a caller's buffer, one result at a time:
/// [`QueryHitWriter::new`], [`QueryHitWriter::hit`] for each result, then
/// [`QueryHitWriter::finish`]. A call that fails writes nothing and makes `finish` fail.
#[derive(Debug)]
pub struct QueryHitWriter<'b> {
    out: &'b mut [u8],
    len: usize,
    count: u8,
    failed: Option<WriteError>,
}

impl<'b> QueryHitWriter<'b> {
    /// Starts a query hit: the header (its length is filled in by `finish`) and the 11
    /// fixed bytes.
    pub fn new(
        out: &'b mut [u8],
        guid: &Guid,
        ttl: u8,
        hops: u8,
        port: u16,
        ip: [u8; 4],
        speed: u32,
    ) -> Self {
        let header = Header {
            guid: *guid,
            kind: Kind::QueryHit,
            ttl,
            hops,
            len: 0,
        };
        let mut len = 0;
        let r = put(
            out,
            &mut len,
            &[
                &header.to_bytes(),
                &[0],
                &port.to_le_bytes(),
                &ip,
                &speed.to_le_bytes(),
            ],
        );
        QueryHitWriter {
            out,
            len,
            count: 0,
            failed: r.err(),
        }
    }

    /// Adds a result. `extensions` is the block between the NULs (see
    /// [`urn::write_sha1`] for a HUGE SHA-1); neither it nor `name` may contain NUL,
    /// and a query hit holds at most 255 results.
    pub fn hit(
        &mut self,
        index: u32,
        size: u32,
        name: &[u8],
        extensions: &[u8],
    ) -> Result<&mut Self, WriteError> {
        let r = self.try_hit(index, size, name, extensions);
        match r {
            Ok(()) => Ok(self),
            Err(e) => {
                self.failed.get_or_insert(e);
                Err(e)
            }
        }
    }

    fn try_hit(
        &mut self,
        index: u32,
        size: u32,
        name: &[u8],
        ext: &[u8],
    ) -> Result<(), WriteError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.count == u8::MAX {
            return Err(WriteError::Invalid("more than 255 results"));
        }
        no_nul(name, "file name contains NUL")?;
        no_nul(ext, "result extension block contains NUL")?;
        let parts: [&[u8]; 6] = [
            &index.to_le_bytes(),
            &size.to_le_bytes(),
            name,
            &[0],
            ext,
            &[0],
        ];
        put(self.out, &mut self.len, &parts)?;
        self.count += 1;
        Ok(())
    }

    /// Results written so far.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// Writes the trailer and the servent id, fills in the result count and the header's
    /// length; returns the message's length.
    pub fn finish(mut self, qhd: Option<&Qhd<'_>>, servent_id: &Guid) -> Result<usize, WriteError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        write_trailer(self.out, &mut self.len, qhd, servent_id)?;
        let payload = u32::try_from(self.len - HEADER_LEN)
            .map_err(|_| WriteError::Invalid("payload over 4 GiB"))?;
        self.out[19..HEADER_LEN].copy_from_slice(&payload.to_le_bytes());
        self.out[HEADER_LEN] = self.count;
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    const GUID: Guid = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x10,
    ];
    const SERVENT: Guid = [0xee; 16];
    // HUGE v0.94 section 1's example hash.
    const PLST: &[u8] = b"urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";

    /// The 0.4 header layout: GUID (16), payload descriptor (1), TTL (1), hops (1),
    /// payload length (4, little-endian).
    fn header(kind: u8, ttl: u8, hops: u8, len: u32) -> Vec<u8> {
        let mut h = GUID.to_vec();
        h.extend_from_slice(&[kind, ttl, hops]);
        h.extend_from_slice(&len.to_le_bytes());
        h
    }

    fn message(kind: u8, ttl: u8, hops: u8, payload: &[u8]) -> Vec<u8> {
        let mut m = header(kind, ttl, hops, payload.len() as u32);
        m.extend_from_slice(payload);
        m
    }

    /// Frames `bytes` as one message, decodes it, and checks it re-encodes to `bytes`.
    fn round_trip(bytes: &[u8]) -> (Header, Payload<'_>) {
        let f = frame(bytes).unwrap().unwrap();
        assert_eq!(f.consumed, bytes.len());
        let p = decode(f.header.kind, f.payload).unwrap();
        let mut out = [0u8; 512];
        let n = write_message(&mut out, &f.header.guid, f.header.ttl, f.header.hops, &p).unwrap();
        assert_eq!(&out[..n], bytes, "re-encoding differs");
        (f.header, p)
    }

    #[test]
    fn protocol_0_4_header_is_23_bytes_little_endian_length() {
        let bytes = header(0x80, 7, 2, 0x0102_0304);
        assert_eq!(bytes.len(), HEADER_LEN);
        assert_eq!(&bytes[19..], [0x04, 0x03, 0x02, 0x01]);
        let h = Header::parse(bytes[..].try_into().unwrap());
        assert_eq!(
            h,
            Header {
                guid: GUID,
                kind: Kind::Query,
                ttl: 7,
                hops: 2,
                len: 0x0102_0304
            }
        );
        assert_eq!(h.to_bytes()[..], bytes[..]);
        for b in 0..=255u8 {
            assert_eq!(Kind::from_byte(b).byte(), b);
        }
        assert_eq!(Kind::from_byte(0x31), Kind::Other(0x31));
    }

    #[test]
    fn ping_is_empty_or_a_ggep_block() {
        let bytes = message(0x00, 1, 0, &[]);
        assert_eq!(bytes.len(), 23);
        let (h, p) = round_trip(&bytes);
        assert_eq!((h.kind, h.ttl, h.hops, h.len), (Kind::Ping, 1, 0, 0));
        assert!(matches!(p, Payload::Ping(Ping { extensions }) if extensions.is_empty()));

        // GGEP "Ping Message": magic 0xC3; flags 0x82 = last extension, id length 2;
        // id "SC"; length chunk 0x40 = last chunk, 0 bytes of data.
        let bytes = message(0x00, 1, 0, &[0xc3, 0x82, b'S', b'C', 0x40]);
        let (_, p) = round_trip(&bytes);
        let Payload::Ping(ping) = p else { panic!() };
        let items: Vec<_> = ping.extensions.iter().collect();
        let [Extension::Ggep(g)] = items[..] else {
            panic!("{items:?}")
        };
        assert_eq!(g.raw(), &bytes[23..]);
        let e = g.get(b"SC").unwrap();
        assert_eq!((e.data, e.cobs, e.deflate), (&[][..], false, false));
    }

    #[test]
    fn pong_fields_port_le_ip_network_order_counts_le() {
        let payload = [
            0xca, 0x18, // port 6346, little-endian
            10, 0, 0, 1, // IPv4 10.0.0.1, network order
            0x05, 0x00, 0x00, 0x00, // files shared: 5
            0xe8, 0x03, 0x00, 0x00, // kbytes shared: 1000
            // GGEP: flags 0x82 (last, id length 2), "DU", length 0x42 (2 bytes),
            // daily uptime 3600 s little-endian.
            0xc3, 0x82, b'D', b'U', 0x42, 0x10, 0x0e,
        ];
        let bytes = message(0x01, 3, 4, &payload);
        let (_, p) = round_trip(&bytes);
        let Payload::Pong(pong) = p else { panic!() };
        assert_eq!(
            (pong.port, pong.ip, pong.files, pong.kbytes),
            (6346, [10, 0, 0, 1], 5, 1000)
        );
        let Some(Extension::Ggep(g)) = pong.extensions.iter().next() else {
            panic!()
        };
        assert_eq!(g.get(b"DU").unwrap().data, [0x10, 0x0e]);
        assert_eq!(
            decode(Kind::Pong, &payload[..13]),
            Err(DecodeError::TooShort)
        );
    }

    #[test]
    fn bye_section2_code_le_and_nul_terminated_string() {
        // `bye` section 6's first example, code 200 in two little-endian bytes.
        let mut payload = vec![0xc8, 0x00];
        payload.extend_from_slice(b"Shutting Down\r\nServer: my server/version\r\n\r\n\0");
        let bytes = message(0x02, 1, 0, &payload);
        let (_, p) = round_trip(&bytes);
        let Payload::Bye(bye) = p else { panic!() };
        assert_eq!(bye.code, 200);
        assert_eq!(bye.message, &payload[2..payload.len() - 1]);
        assert_eq!(
            decode(Kind::Bye, b"\xc8\x00no nul"),
            Err(DecodeError::MissingNul)
        );
        assert_eq!(
            decode(Kind::Bye, b"\xc8\x00a\0b"),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(decode(Kind::Bye, b"\xc8"), Err(DecodeError::TooShort));
    }

    #[test]
    fn push_servent_id_index_ip_port() {
        let mut payload = SERVENT.to_vec(); // servent id of the firewalled host
        payload.extend_from_slice(&[0x07, 0x00, 0x00, 0x00]); // file index 7
        payload.extend_from_slice(&[192, 168, 0, 1]); // connect back to 192.168.0.1
        payload.extend_from_slice(&[0xca, 0x18]); // port 6346
        assert_eq!(payload.len(), 26);
        let bytes = message(0x40, 7, 0, &payload);
        let (_, p) = round_trip(&bytes);
        assert_eq!(
            p,
            Payload::Push(Push {
                servent_id: SERVENT,
                index: 7,
                ip: [192, 168, 0, 1],
                port: 6346,
                extensions: Extensions::default(),
            })
        );
        assert_eq!(
            decode(Kind::Push, &payload[..25]),
            Err(DecodeError::TooShort)
        );
    }

    #[test]
    fn query_huge_section1_examples() {
        // "Gnutella Protocol[0x00]urn:[0x00]": ask for URNs in the hits.
        let mut payload = vec![0x00, 0x00]; // minimum speed 0
        payload.extend_from_slice(b"Gnutella Protocol\0urn:\0");
        let bytes = message(0x80, 7, 0, &payload);
        let (_, p) = round_trip(&bytes);
        let Payload::Query(q) = p else { panic!() };
        assert_eq!((q.min_speed, q.criteria), (0, &b"Gnutella Protocol"[..]));
        assert!(q.extensions.iter().eq([Extension::Urn(b"urn:")]));
        assert_eq!(q.extensions.sha1_urns().count(), 0);

        // "[0x00]urn:sha1:PLST...[0x00]": search by hash, empty criteria; then a second
        // extension after 0x1C and a GGEP block.
        let mut payload = vec![0x60, 0x80]; // flags 0x6080 when read big-endian
        payload.push(0);
        payload.extend_from_slice(PLST);
        payload.extend_from_slice(b"\x1cother\x1c\xc3\x81H\x41\x01\0");
        let bytes = message(0x80, 7, 0, &payload);
        let (_, p) = round_trip(&bytes);
        let Payload::Query(q) = p else { panic!() };
        assert_eq!((q.min_speed, q.flags()), (0x8060, 0x6080));
        assert!(q.criteria.is_empty());
        let items: Vec<_> = q.extensions.iter().collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], Extension::Urn(PLST));
        assert_eq!(items[1], Extension::Other(b"other"));
        assert!(matches!(items[2], Extension::Ggep(g) if g.get(b"H").unwrap().data == [1]));
        assert!(
            q.extensions
                .sha1_urns()
                .eq([urn::parse_sha1(PLST).unwrap()])
        );
        assert_eq!(
            decode(Kind::Query, b"\0\0no nul"),
            Err(DecodeError::MissingNul)
        );
        assert_eq!(decode(Kind::Query, b"\0"), Err(DecodeError::TooShort));
    }

    fn query_hit_payload() -> Vec<u8> {
        let mut p = vec![
            0x02, // number of hits
            0xca, 0x18, // port 6346
            10, 0, 0, 2, // IPv4 10.0.0.2
            0x00, 0x01, 0x00, 0x00, // speed 256 kbit/s
        ];
        // Result 1 (HUGE section 1): index 0, size 1024, name NUL, "urn:sha1:..." NUL.
        p.extend_from_slice(&[0, 0, 0, 0, 0x00, 0x04, 0x00, 0x00]);
        p.extend_from_slice(b"GnutellaProtocol04.pdf\0");
        p.extend_from_slice(PLST);
        p.push(0);
        // Result 2: index 9, size 0x01020304, name, empty extension block.
        p.extend_from_slice(&[9, 0, 0, 0, 0x04, 0x03, 0x02, 0x01]);
        p.extend_from_slice(b"b.txt\0\0");
        // QHD: vendor "GTKG", open data size 2, flags, then private data.
        p.extend_from_slice(b"GTKG");
        p.push(2);
        // Byte 0: push value set; busy, uploaded and speed meaningful. Byte 1: push
        // meaningful, uploaded set.
        p.push(qhd_flag::PUSH | qhd_flag::BUSY | qhd_flag::UPLOADED | qhd_flag::SPEED);
        p.push(qhd_flag::PUSH | qhd_flag::UPLOADED);
        p.extend_from_slice(b"priv");
        p.extend_from_slice(&SERVENT); // servent id: the last 16 bytes
        p
    }

    #[test]
    fn query_hit_results_qhd_and_servent_id() {
        let payload = query_hit_payload();
        let bytes = message(0x81, 5, 2, &payload);
        let (_, p) = round_trip(&bytes);
        let Payload::QueryHit(h) = p else { panic!() };
        assert_eq!((h.port, h.ip, h.speed), (6346, [10, 0, 0, 2], 256));
        assert_eq!(h.servent_id, SERVENT);
        assert_eq!(h.hits.len(), 2);
        let hits: Vec<_> = h.hits.iter().collect();
        assert_eq!((hits[0].index, hits[0].size), (0, 1024));
        assert_eq!(hits[0].name, b"GnutellaProtocol04.pdf");
        assert!(
            hits[0]
                .extensions
                .sha1_urns()
                .eq([urn::parse_sha1(PLST).unwrap()])
        );
        assert_eq!(
            (hits[1].index, hits[1].size, hits[1].name),
            (9, 0x0102_0304, &b"b.txt"[..])
        );
        assert!(hits[1].extensions.is_empty());
        let qhd = h.qhd.unwrap();
        assert_eq!((&qhd.vendor, qhd.private), (b"GTKG", &b"priv"[..]));
        assert_eq!(qhd.flag(qhd_flag::PUSH), Some(true));
        assert_eq!(qhd.flag(qhd_flag::BUSY), Some(false));
        assert_eq!(qhd.flag(qhd_flag::UPLOADED), Some(true));
        assert_eq!(qhd.flag(qhd_flag::SPEED), Some(false));
        assert_eq!(qhd.flag(qhd_flag::GGEP), None);

        // The same message built result by result.
        let mut out = [0u8; 512];
        let mut w = QueryHitWriter::new(&mut out, &GUID, 5, 2, 6346, [10, 0, 0, 2], 256);
        let mut ext = [0u8; 41];
        let n = urn::write_sha1(&urn::parse_sha1(PLST).unwrap(), &mut ext).unwrap();
        w.hit(0, 1024, b"GnutellaProtocol04.pdf", &ext[..n])
            .unwrap();
        w.hit(9, 0x0102_0304, b"b.txt", b"").unwrap();
        assert_eq!(w.count(), 2);
        let n = w.finish(Some(&qhd), &SERVENT).unwrap();
        assert_eq!(&out[..n], &bytes[..]);
    }

    #[test]
    fn query_hit_without_qhd_and_malformed_ones() {
        // No results, no trailer: 11 bytes and the servent id.
        let mut p = vec![0, 0xca, 0x18, 1, 2, 3, 4, 0, 0, 0, 0];
        p.extend_from_slice(&SERVENT);
        let bytes = message(0x81, 1, 0, &p);
        let (_, d) = round_trip(&bytes);
        assert!(matches!(d, Payload::QueryHit(h) if h.qhd.is_none() && h.hits.is_empty()));

        assert_eq!(decode(Kind::QueryHit, &p[..26]), Err(DecodeError::TooShort));
        // A trailer of 3 bytes is too short for a vendor code and a size.
        let mut t = p.clone();
        t.splice(11..11, *b"GTK");
        assert_eq!(decode(Kind::QueryHit, &t), Err(DecodeError::BadTrailer));
        // Open data of 5 bytes announced, 1 present.
        let mut t = p.clone();
        t.splice(11..11, *b"GTKG\x05\x00");
        assert_eq!(decode(Kind::QueryHit, &t), Err(DecodeError::BadTrailer));
        // One hit announced: its name runs into the servent id without a NUL...
        let mut t = p.clone();
        t[0] = 1;
        t.splice(11..11, *b"\0\0\0\0\0\0\0\0name");
        assert_eq!(decode(Kind::QueryHit, &t), Err(DecodeError::MissingNul));
        // ...or its fixed fields do not fit before it.
        let mut t = p.clone();
        t[0] = 1;
        assert_eq!(decode(Kind::QueryHit, &t), Err(DecodeError::TooShort));
        // A result's GGEP that overruns its block.
        let mut t = p.clone();
        t[0] = 1;
        t.splice(11..11, *b"\0\0\0\0\0\0\0\0n\0\xc3\x81H\x45\0");
        assert_eq!(decode(Kind::QueryHit, &t), Err(DecodeError::BadGgep));
    }

    #[test]
    fn ggep_length_encoding_boundaries_and_rules() {
        // GGEP "Boundary Cases": 63 = 0x7f, 64 = 0x81 0x40, 4096 = 0x81 0x80 0x40.
        for (len, chunks) in [
            (0usize, &[0x40u8][..]),
            (63, &[0x7f]),
            (64, &[0x81, 0x40]),
            (4095, &[0xbf, 0x7f]),
            (4096, &[0x81, 0x80, 0x40]),
        ] {
            let mut b = vec![0xc3, 0x81, b'X'];
            b.extend_from_slice(chunks);
            b.extend(core::iter::repeat_n(0xaa, len));
            let ext = Extensions::new(&b).unwrap();
            let Some(Extension::Ggep(g)) = ext.iter().next() else {
                panic!()
            };
            assert_eq!(g.raw().len(), b.len());
            assert_eq!(g.get(b"X").unwrap().data.len(), len);
        }
        // Two extensions, the first COBS and deflated, then the last one.
        let b = [0xc3, 0x61, b'A', 0x41, 1, 0x82, b'B', b'B', 0x40];
        let ext = Extensions::new(&b).unwrap();
        let Some(Extension::Ggep(g)) = ext.iter().next() else {
            panic!()
        };
        let all: Vec<_> = g.iter().collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].cobs && all[0].deflate && all[0].data == [1]);
        assert_eq!(all[1].id, b"BB");
        for bad in [
            &[0xc3][..],                                 // no extension header
            &[0xc3, 0x90, b'A', 0x40],                   // reserved bit 4 set
            &[0xc3, 0x80, 0x40],                         // id length 0
            &[0xc3, 0x81, 0x00, 0x40],                   // NUL in the id
            &[0xc3, 0x81, b'A', 0x00],                   // a length chunk with neither flag
            &[0xc3, 0x81, b'A', 0xc1],                   // a length chunk with both flags
            &[0xc3, 0x81, b'A', 0x81, 0x81, 0x81, 0x40], // four length chunks
            &[0xc3, 0x81, b'A', 0x42, 0x00],             // data runs past the end
            &[0xc3, 0x01, b'A', 0x40],                   // no "last extension" flag anywhere
        ] {
            assert_eq!(Extensions::new(bad), Err(DecodeError::BadGgep), "{bad:x?}");
        }
    }

    #[test]
    fn framing_every_split_point_of_a_multi_message_stream() {
        let mut stream = message(0x00, 1, 0, &[]);
        stream.extend(message(
            0x01,
            1,
            1,
            &[0xca, 0x18, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0],
        ));
        stream.extend(message(0x80, 7, 0, b"\0\0text\0"));
        stream.extend(message(0x31, 1, 0, b"vendor"));
        stream.extend(message(0x81, 5, 2, &query_hit_payload()));
        let whole = read_all(&[&stream[..]]);
        assert_eq!(whole.len(), 5);
        assert_eq!(whole[3].0.kind, Kind::Other(0x31));
        // TCP may cut the stream anywhere: every split, and one byte at a time.
        for cut in 0..=stream.len() {
            assert_eq!(
                read_all(&[&stream[..cut], &stream[cut..]]),
                whole,
                "cut {cut}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read_all(&bytes), whole);
    }

    /// A connection's reader: appends each chunk to its buffer and frames and decodes
    /// every whole message in it.
    fn read_all(chunks: &[&[u8]]) -> Vec<(Header, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(f) = frame(&buf).unwrap() {
                decode(f.header.kind, f.payload).unwrap();
                got.push((f.header, f.payload.to_vec()));
                let n = f.consumed;
                buf.drain(..n);
            }
        }
        assert!(buf.is_empty());
        got
    }

    #[test]
    fn framer_refuses_lengths_over_the_limit_as_soon_as_the_header_is_in() {
        let h = header(0x80, 7, 0, MAX_PAYLOAD + 1);
        assert_eq!(
            frame(&h),
            Err(FrameError::TooLong {
                len: MAX_PAYLOAD + 1,
                max: MAX_PAYLOAD
            })
        );
        assert_eq!(frame(&h[..22]), Ok(None));
        let h = header(0x80, 7, 0, MAX_PAYLOAD);
        assert_eq!(frame(&h), Ok(None), "at the limit: wait for the payload");
        let e = frame_with(&header(0, 1, 0, 5), 4).unwrap_err();
        assert_eq!(e.to_string(), "gnutella payload of 5 bytes exceeds 4");
    }

    #[test]
    fn encoders_refuse_what_would_read_back_differently() {
        let mut out = [0u8; 64];
        let q = Payload::Query(Query {
            min_speed: 0,
            criteria: b"a\0b",
            extensions: Extensions::default(),
        });
        assert_eq!(
            write_message(&mut out, &GUID, 1, 0, &q),
            Err(WriteError::Invalid("search criteria contain NUL"))
        );
        let bye = Payload::Bye(Bye {
            code: 200,
            message: b"x\0",
        });
        assert!(matches!(
            write_message(&mut out, &GUID, 1, 0, &bye),
            Err(WriteError::Invalid(_))
        ));
        let ping = Payload::Ping(Ping {
            extensions: Extensions::default(),
        });
        assert_eq!(
            write_message(&mut out[..22], &GUID, 1, 0, &ping),
            Err(WriteError::BufferFull)
        );
        assert_eq!(write_message(&mut out[..23], &GUID, 1, 0, &ping), Ok(23));

        let mut big = [0u8; 8192];
        let mut w = QueryHitWriter::new(&mut big, &GUID, 1, 0, 1, [0; 4], 0);
        for i in 0..255 {
            w.hit(i, 0, b"", b"").unwrap();
        }
        assert_eq!(
            w.hit(255, 0, b"", b"").err(),
            Some(WriteError::Invalid("more than 255 results"))
        );
        assert!(w.finish(None, &SERVENT).is_err());

        let mut w = QueryHitWriter::new(&mut big, &GUID, 1, 0, 1, [0; 4], 0);
        assert!(w.hit(0, 0, b"a\0", b"").is_err());
        let open = [0u8; 256];
        let w = QueryHitWriter::new(&mut big, &GUID, 1, 0, 1, [0; 4], 0);
        let qhd = Qhd {
            vendor: *b"GTKG",
            open: &open,
            private: b"",
        };
        assert_eq!(
            w.finish(Some(&qhd), &SERVENT),
            Err(WriteError::Invalid("QHD open data longer than 255 bytes"))
        );
        let w = QueryHitWriter::new(&mut out[..40], &GUID, 1, 0, 1, [0; 4], 0);
        assert_eq!(w.finish(None, &SERVENT), Err(WriteError::BufferFull));
        let w = QueryHitWriter::new(&mut out[..20], &GUID, 1, 0, 1, [0; 4], 0);
        assert_eq!(w.finish(None, &SERVENT), Err(WriteError::BufferFull));
    }
}
