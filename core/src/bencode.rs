//! Bencode (BEP 3): the encoding of BitTorrent metainfo and of the Mainline DHT's KRPC
//! messages (BEP 5, BEP 44).
//!
//! Decoding is zero-copy and validated once. [`decode`] walks the input a single time,
//! iteratively (one bit of state per open container, no recursion), checking every rule
//! and the [`Limits`]; it returns a [`Value`] that borrows the input. Lists and dicts keep
//! their raw bytes and re-parse them lazily as they are iterated, so nothing is copied and
//! nothing is allocated. Nothing panics on any input (fuzzed by
//! `fuzz/fuzz_targets/bencode.rs`).
//!
//! What is accepted:
//!
//! * integers and string lengths must be canonical: no leading zeros, no `-0`, no empty
//!   integer, integers within `i64`. So every accepted integer or string has exactly one
//!   encoding, and [`Value::raw`] is what [`Encoder`] would write for it;
//! * dict keys in any order. BEP 3 says keys are sorted, but deployed clients send unsorted
//!   dicts and a DHT node has to answer them. [`Value::raw`] keeps the original order, so
//!   hashing `raw()` gives the peer's info hash or BEP 44 target;
//! * duplicate keys. Finding duplicates in an unsorted dict takes memory or quadratic time.
//!   Lookups return the first occurrence, iteration yields every entry, and
//!   [`Dict::keys_sorted`] checks the BEP 3 order (which rules out duplicates) for callers
//!   that want to be strict.
//!
//! Encoding writes into a caller's buffer with [`Encoder`].

use core::fmt;
use core::iter::FusedIterator;

/// How much the decoder accepts. Validation runs in time linear in the input and in
/// constant memory whatever the limits are. They bound how deeply a value may nest and
/// how long [`decode_prefix`] keeps asking a stream for more bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// The most lists and dicts that may be open at once: `0` accepts only integers and
    /// strings.
    pub max_depth: u8,
    /// The most bytes one encoded value may take. A value that needs more is
    /// [`Error::TooLong`], even when the input ends before that point.
    pub max_len: usize,
}

impl Limits {
    /// 32 levels (KRPC needs 3, metainfo 5) and 1 MiB: a KRPC datagram is under 1.5 KiB,
    /// and most metainfo files are under 1 MiB. Callers that load large torrents should
    /// raise `max_len`.
    pub const DEFAULT: Limits = Limits {
        max_depth: 32,
        max_len: 1 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

// The lazy views re-parse bytes that were already validated under limits at least this
// tight, so these never bind.
const VALIDATED: Limits = Limits {
    max_depth: u8::MAX,
    max_len: usize::MAX,
};

/// Why an input was not accepted.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// The input ends inside a value that more bytes could complete. A stream reader
    /// should wait for more. This is the error for exactly the strict prefixes of valid
    /// encodings (within the limits), and only for them.
    UnexpectedEnd,
    /// A byte that cannot start a value here: not `i`, `l`, `d` or a digit, or an `e` where
    /// a value is required (at the top level, or after a dict key: `d1:ae`).
    UnexpectedByte(u8),
    /// An integer that is not canonical: `ie`, `i-e`, a leading zero (`i01e`), `i-0e`, a
    /// non-digit, or a value outside `i64`.
    BadInteger,
    /// A string length prefix with a leading zero (`01:a`), a non-digit before the `:`, or a
    /// value beyond `usize`.
    BadLength,
    /// A dict key that is an integer, list or dict (keys are byte strings).
    KeyNotString,
    /// More lists and dicts open at once than [`Limits::max_depth`].
    TooDeep,
    /// The value needs more than [`Limits::max_len`] bytes.
    TooLong,
    /// [`decode`] only: bytes follow the value.
    TrailingBytes,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnexpectedEnd => f.write_str("bencode input ends inside a value"),
            Error::UnexpectedByte(b) => {
                write!(f, "unexpected byte {:?} in bencode", char::from(*b))
            }
            Error::BadInteger => f.write_str("malformed or out-of-range bencode integer"),
            Error::BadLength => f.write_str("malformed bencode string length"),
            Error::KeyNotString => f.write_str("bencode dict key is not a string"),
            Error::TooDeep => f.write_str("bencode nests deeper than the limit"),
            Error::TooLong => f.write_str("bencode value longer than the limit"),
            Error::TrailingBytes => f.write_str("bytes after the bencode value"),
        }
    }
}

impl core::error::Error for Error {}

/// Decodes `input`, which must be exactly one value, under [`Limits::DEFAULT`].
pub fn decode(input: &[u8]) -> Result<Value<'_>, Error> {
    decode_with(input, Limits::DEFAULT)
}

/// Decodes `input`, which must be exactly one value, under `limits`.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Value<'_>, Error> {
    let value = parse(input, limits)?;
    if value.raw.len() != input.len() {
        return Err(Error::TrailingBytes);
    }
    Ok(value)
}

/// Decodes the value at the start of `input` and returns it with the number of bytes it
/// takes. Any bytes after it are ignored. This is for streams and concatenated values:
/// on [`Error::UnexpectedEnd`], read more bytes and try again.
pub fn decode_prefix(input: &[u8], limits: Limits) -> Result<(Value<'_>, usize), Error> {
    let value = parse(input, limits)?;
    Ok((value, value.raw.len()))
}

/// A decoded value: a view into the validated input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
    kind: Kind<'a>,
}

/// What a [`Value`] is, for `match`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `i<n>e`.
    Int(i64),
    /// `<len>:<bytes>`: the bytes, without the length prefix.
    Bytes(&'a [u8]),
    /// `l...e`.
    List(List<'a>),
    /// `d...e`.
    Dict(Dict<'a>),
}

impl<'a> Value<'a> {
    /// What this value is.
    pub fn kind(&self) -> Kind<'a> {
        self.kind
    }

    /// The exact encoded bytes of this value, as they appear in the input. The info hash
    /// is SHA-1 of the raw `info` dict, and a BEP 44 target is SHA-1 of the raw `v`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(v) => Some(v),
            _ => None,
        }
    }

    /// The string's bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The string, if this is a string of valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.as_bytes()?).ok()
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<List<'a>> {
        match self.kind {
            Kind::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dict, if this is one.
    pub fn as_dict(&self) -> Option<Dict<'a>> {
        match self.kind {
            Kind::Dict(d) => Some(d),
            _ => None,
        }
    }
}

/// A validated list. Its elements are parsed on demand, so [`List::len`] and
/// [`List::get`] take time linear in the list's size.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct List<'a> {
    // `l...e`, validated.
    raw: &'a [u8],
}

impl<'a> List<'a> {
    /// The elements, in order.
    pub fn iter(&self) -> ListIter<'a> {
        ListIter {
            raw: self.raw,
            pos: 1,
        }
    }

    /// The number of elements (counted: linear time).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the list is `le`.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The `i`th element (linear time).
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        self.iter().nth(i)
    }

    /// The exact encoded bytes of the list, `l` to `e`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

impl<'a> IntoIterator for List<'a> {
    type Item = Value<'a>;
    type IntoIter = ListIter<'a>;
    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &List<'a> {
    type Item = Value<'a>;
    type IntoIter = ListIter<'a>;
    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

/// The elements of a [`List`], in order.
#[derive(Clone, Debug)]
pub struct ListIter<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        next_value(self.raw, &mut self.pos)
    }
}

impl FusedIterator for ListIter<'_> {}

/// A validated dict. Entries are parsed on demand, in the order they were encoded, so
/// lookups take time linear in the dict's size. Keys may be unsorted and may repeat:
/// lookups return the first entry with the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Dict<'a> {
    // `d...e`, validated.
    raw: &'a [u8],
}

impl<'a> Dict<'a> {
    /// The entries `(key, value)`, in encoded order.
    pub fn iter(&self) -> DictIter<'a> {
        DictIter {
            raw: self.raw,
            pos: 1,
        }
    }

    /// The value of the first entry with `key`.
    pub fn get(&self, key: &[u8]) -> Option<Value<'a>> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The value under `key`, if it is a string.
    pub fn get_bytes(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.get(key)?.as_bytes()
    }

    /// The value under `key`, if it is a string of valid UTF-8.
    pub fn get_str(&self, key: &[u8]) -> Option<&'a str> {
        self.get(key)?.as_str()
    }

    /// The value under `key`, if it is an integer.
    pub fn get_int(&self, key: &[u8]) -> Option<i64> {
        self.get(key)?.as_int()
    }

    /// The value under `key`, if it is a list.
    pub fn get_list(&self, key: &[u8]) -> Option<List<'a>> {
        self.get(key)?.as_list()
    }

    /// The value under `key`, if it is a dict.
    pub fn get_dict(&self, key: &[u8]) -> Option<Dict<'a>> {
        self.get(key)?.as_dict()
    }

    /// The number of entries, duplicates included (counted: linear time).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the dict is `de`.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Whether the keys are in strictly increasing order as raw byte strings: the BEP 3
    /// order, which also rules out duplicates. Only this dict is checked, not the dicts
    /// nested in it.
    pub fn keys_sorted(&self) -> bool {
        let mut keys = self.iter().map(|(k, _)| k);
        let Some(mut prev) = keys.next() else {
            return true;
        };
        for k in keys {
            if k <= prev {
                return false;
            }
            prev = k;
        }
        true
    }

    /// The exact encoded bytes of the dict, `d` to `e`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

impl<'a> IntoIterator for Dict<'a> {
    type Item = (&'a [u8], Value<'a>);
    type IntoIter = DictIter<'a>;
    fn into_iter(self) -> DictIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Dict<'a> {
    type Item = (&'a [u8], Value<'a>);
    type IntoIter = DictIter<'a>;
    fn into_iter(self) -> DictIter<'a> {
        self.iter()
    }
}

/// The entries of a [`Dict`], in encoded order.
#[derive(Clone, Debug)]
pub struct DictIter<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for DictIter<'a> {
    type Item = (&'a [u8], Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        let key = next_value(self.raw, &mut self.pos)?.as_bytes();
        let value = next_value(self.raw, &mut self.pos);
        match (key, value) {
            (Some(k), Some(v)) => Some((k, v)),
            // Validation rules this out; end the iteration rather than panic.
            _ => {
                self.pos = self.raw.len();
                None
            }
        }
    }
}

impl FusedIterator for DictIter<'_> {}

/// The value at `*pos` in a validated container's bytes, advancing past it. `None` at the
/// container's closing `e` (and, never on validated bytes, at anything unparsable: the
/// iteration just ends there).
fn next_value<'a>(raw: &'a [u8], pos: &mut usize) -> Option<Value<'a>> {
    let rest = raw.get(*pos..)?;
    if rest.first() == Some(&b'e') {
        return None;
    }
    match parse(rest, VALIDATED) {
        Ok(v) => {
            *pos += v.raw.len();
            Some(v)
        }
        Err(_) => {
            *pos = raw.len();
            None
        }
    }
}

/// Validates the value at the start of `input` and builds its view.
fn parse(input: &[u8], limits: Limits) -> Result<Value<'_>, Error> {
    let c = Cursor::new(input, limits);
    let end = validate(&c, limits.max_depth)?;
    let raw = input.get(..end).ok_or(Error::UnexpectedEnd)?;
    let kind = match raw.first() {
        Some(b'i') => Kind::Int(c.int(0)?.0),
        Some(b'l') => Kind::List(List { raw }),
        Some(b'd') => Kind::Dict(Dict { raw }),
        _ => Kind::Bytes(c.bytes(0)?.0),
    };
    Ok(Value { raw, kind })
}

/// Reads the input within the length limit, and tells a truncated input from a value
/// that is longer than the limit.
struct Cursor<'a> {
    input: &'a [u8],
    // min(input.len(), max_len): what may be read.
    window: usize,
    max_len: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a [u8], limits: Limits) -> Self {
        Cursor {
            input,
            window: input.len().min(limits.max_len),
            max_len: limits.max_len,
        }
    }

    /// Succeeds when the first `end` bytes may be read.
    fn need(&self, end: usize) -> Result<(), Error> {
        if end <= self.window {
            Ok(())
        } else if end > self.max_len {
            Err(Error::TooLong)
        } else {
            Err(Error::UnexpectedEnd)
        }
    }

    fn byte(&self, pos: usize) -> Result<u8, Error> {
        self.need(pos.saturating_add(1))?;
        self.input.get(pos).copied().ok_or(Error::UnexpectedEnd)
    }

    /// The integer whose `i` is at `pos`, and the position after its `e`. Every check
    /// fires as soon as its byte is read, so a prefix that no byte could repair is never
    /// reported as `UnexpectedEnd`.
    fn int(&self, pos: usize) -> Result<(i64, usize), Error> {
        let mut p = pos + 1;
        let neg = self.byte(p)? == b'-';
        if neg {
            p += 1;
        }
        let start = p;
        // The magnitude, kept within what i64 can hold with this sign.
        let limit = if neg { 1u64 << 63 } else { i64::MAX as u64 };
        let mut mag: u64 = 0;
        loop {
            match self.byte(p)? {
                d @ b'0'..=b'9' => {
                    // A zero must be the whole integer, and never negative.
                    if (p > start && mag == 0) || (p == start && neg && d == b'0') {
                        return Err(Error::BadInteger);
                    }
                    mag = mag
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u64::from(d - b'0')))
                        .filter(|&m| m <= limit)
                        .ok_or(Error::BadInteger)?;
                    p += 1;
                }
                b'e' if p > start => break,
                _ => return Err(Error::BadInteger),
            }
        }
        let v = if neg {
            0i64.checked_sub_unsigned(mag)
        } else {
            i64::try_from(mag).ok()
        };
        Ok((v.ok_or(Error::BadInteger)?, p + 1))
    }

    /// The string whose length prefix starts at `pos`, and the position after it.
    fn bytes(&self, pos: usize) -> Result<(&'a [u8], usize), Error> {
        let mut p = pos;
        let mut len: usize = 0;
        loop {
            match self.byte(p)? {
                d @ b'0'..=b'9' => {
                    if p > pos && len == 0 {
                        return Err(Error::BadLength);
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(d - b'0')))
                        .ok_or(Error::BadLength)?;
                    p += 1;
                }
                b':' if p > pos => break,
                _ => return Err(Error::BadLength),
            }
        }
        let start = p + 1;
        // Past usize is past any limit.
        let end = start.checked_add(len).ok_or(Error::TooLong)?;
        self.need(end)?;
        let s = self.input.get(start..end).ok_or(Error::UnexpectedEnd)?;
        Ok((s, end))
    }
}

/// Validates the value at the start of the input and returns its length. Iterative: the
/// only state per open container is one bit (list or dict), so the stack is 32 bytes
/// whatever the input.
fn validate(c: &Cursor<'_>, max_depth: u8) -> Result<usize, Error> {
    let mut dicts = [0u8; 32]; // bit d: level d is a dict
    let is_dict =
        |dicts: &[u8; 32], d: usize| dicts.get(d / 8).is_some_and(|b| (b >> (d % 8)) & 1 != 0);
    let mut depth = 0usize;
    // Whether the innermost container is a dict waiting for a key (or its `e`).
    let mut want_key = false;
    let mut pos = 0usize;
    loop {
        let b = c.byte(pos)?;
        let in_dict = depth > 0 && is_dict(&dicts, depth - 1);
        if b == b'e' && depth > 0 && (want_key || !in_dict) {
            pos += 1;
            depth -= 1;
            if depth == 0 {
                return Ok(pos);
            }
            // The container just closed was a list element or a dict value.
            want_key = is_dict(&dicts, depth - 1);
            continue;
        }
        if want_key && !b.is_ascii_digit() {
            return Err(match b {
                b'i' | b'l' | b'd' => Error::KeyNotString,
                _ => Error::UnexpectedByte(b),
            });
        }
        pos = match b {
            b'i' => c.int(pos)?.1,
            b'0'..=b'9' => c.bytes(pos)?.1,
            b'l' | b'd' => {
                if depth >= usize::from(max_depth) {
                    return Err(Error::TooDeep);
                }
                // depth < max_depth <= 255, so the bit exists.
                if let Some(bits) = dicts.get_mut(depth / 8) {
                    let bit = 1 << (depth % 8);
                    if b == b'd' {
                        *bits |= bit;
                    } else {
                        *bits &= !bit;
                    }
                }
                depth += 1;
                want_key = b == b'd';
                pos += 1;
                continue;
            }
            _ => return Err(Error::UnexpectedByte(b)),
        };
        if depth == 0 {
            return Ok(pos);
        }
        if in_dict {
            want_key = !want_key;
        }
    }
}

/// The caller's output buffer is too small for what was written (an [`Encoder`], and the
/// other codecs that write into caller buffers, such as BitTorrent's peer wire).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BufferFull;

impl fmt::Display for BufferFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output buffer full")
    }
}

impl core::error::Error for BufferFull {}

/// Writes bencode into a caller's buffer. Every method returns `Result<&mut Self,
/// BufferFull>`, so a message is one chain of `?`:
///
/// ```
/// # use overlay_core::bencode::{BufferFull, Encoder};
/// # fn main() -> Result<(), BufferFull> {
/// let mut buf = [0u8; 64];
/// let mut e = Encoder::new(&mut buf);
/// e.dict()?
///     .str("a")?.dict()?.str("id")?.bytes(b"abcdefghij0123456789")?.end()?
///     .str("q")?.str("ping")?
///     .str("t")?.bytes(b"aa")?
///     .str("y")?.str("q")?
///     .end()?;
/// assert_eq!(e.finish()?, b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe");
/// # Ok(())
/// # }
/// ```
///
/// The encoder does not check structure. The caller writes dict keys as strings, in
/// sorted order (BEP 3: as raw bytes), each followed by its value, and closes every list
/// and dict with [`Encoder::end`].
///
/// A write that does not fit writes nothing and fails. From then on every write fails
/// and [`Encoder::finish`] returns [`BufferFull`], so a truncated message is never mistaken
/// for a whole one.
#[derive(Debug)]
pub struct Encoder<'b> {
    buf: &'b mut [u8],
    len: usize,
    full: bool,
}

impl<'b> Encoder<'b> {
    /// An encoder writing at the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Encoder {
            buf,
            len: 0,
            full: false,
        }
    }

    /// `i<v>e`.
    pub fn int(&mut self, v: i64) -> Result<&mut Self, BufferFull> {
        let mut digits = [0u8; 20];
        let digits = decimal(v.unsigned_abs(), &mut digits);
        let sign: &[u8] = if v < 0 { b"-" } else { b"" };
        self.put(&[b"i", sign, digits, b"e"])
    }

    /// `<len>:<b>`: a byte string (also a dict key).
    pub fn bytes(&mut self, b: &[u8]) -> Result<&mut Self, BufferFull> {
        let mut digits = [0u8; 20];
        let digits = decimal(b.len() as u64, &mut digits);
        self.put(&[digits, b":", b])
    }

    /// A UTF-8 string: the same as [`Encoder::bytes`] of its bytes.
    pub fn str(&mut self, s: &str) -> Result<&mut Self, BufferFull> {
        self.bytes(s.as_bytes())
    }

    /// Splices in bytes that are already encoded, such as a decoded [`Value::raw`]. They
    /// are copied as they are, without being checked.
    pub fn raw(&mut self, encoded: &[u8]) -> Result<&mut Self, BufferFull> {
        self.put(&[encoded])
    }

    /// Splices in a decoded value, byte for byte.
    pub fn value(&mut self, v: &Value<'_>) -> Result<&mut Self, BufferFull> {
        self.raw(v.raw())
    }

    /// Opens a list (`l`). Close it with [`Encoder::end`].
    pub fn list(&mut self) -> Result<&mut Self, BufferFull> {
        self.put(&[b"l"])
    }

    /// Opens a dict (`d`). Write keys in sorted order, and close it with [`Encoder::end`].
    pub fn dict(&mut self) -> Result<&mut Self, BufferFull> {
        self.put(&[b"d"])
    }

    /// Closes the innermost open list or dict (`e`).
    pub fn end(&mut self) -> Result<&mut Self, BufferFull> {
        self.put(&[b"e"])
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far (even after [`BufferFull`]: whatever fit before it).
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The encoding, or [`BufferFull`] if any write did not fit.
    pub fn finish(self) -> Result<&'b [u8], BufferFull> {
        if self.full {
            return Err(BufferFull);
        }
        let buf: &'b [u8] = self.buf;
        Ok(buf.get(..self.len).unwrap_or_default())
    }

    /// Appends `parts` whole, or nothing and marks the encoder full.
    fn put(&mut self, parts: &[&[u8]]) -> Result<&mut Self, BufferFull> {
        let total = parts.iter().try_fold(0usize, |n, p| n.checked_add(p.len()));
        let fits = total
            .and_then(|t| self.len.checked_add(t))
            .is_some_and(|end| end <= self.buf.len());
        if self.full || !fits {
            self.full = true;
            return Err(BufferFull);
        }
        for part in parts {
            let end = self.len + part.len();
            if let Some(dst) = self.buf.get_mut(self.len..end) {
                dst.copy_from_slice(part);
            }
            self.len = end;
        }
        Ok(self)
    }
}

/// `n` in decimal, written at the end of `buf` (a u64 has at most 20 digits).
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.get(start..).unwrap_or_default()
}

// Debug output reads like the data: `{b"t": b"aa", b"v": [1, -2]}`.

struct Escaped<'a>(&'a [u8]);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Int(v) => fmt::Debug::fmt(&v, f),
            Kind::Bytes(b) => fmt::Debug::fmt(&Escaped(b), f),
            Kind::List(l) => fmt::Debug::fmt(&l, f),
            Kind::Dict(d) => fmt::Debug::fmt(&d, f),
        }
    }
}

impl fmt::Debug for Kind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Int(v) => f.debug_tuple("Int").field(v).finish(),
            Kind::Bytes(b) => f.debug_tuple("Bytes").field(&Escaped(b)).finish(),
            Kind::List(l) => f.debug_tuple("List").field(l).finish(),
            Kind::Dict(d) => f.debug_tuple("Dict").field(d).finish(),
        }
    }
}

impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (Escaped(k), v)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::vec::Vec;

    /// BEP 5's KRPC examples, one per message.
    const KRPC: [&[u8]; 10] = [
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        b"d1:rd2:id20:abcdefghij01234567895:nodes9:def456...5:token8:aoeusnthe1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
    ];

    /// BEP 3's examples.
    const BEP3: [&[u8]; 7] = [
        b"4:spam",
        b"i3e",
        b"i-3e",
        b"i0e",
        b"l4:spam4:eggse",
        b"d3:cow3:moo4:spam4:eggse",
        b"d4:spaml1:a1:bee",
    ];

    /// Re-encodes `v` element by element (not by splicing `raw`).
    fn reencode(v: Value<'_>, e: &mut Encoder<'_>) -> Result<(), BufferFull> {
        match v.kind() {
            Kind::Int(n) => {
                e.int(n)?;
            }
            Kind::Bytes(b) => {
                e.bytes(b)?;
            }
            Kind::List(l) => {
                e.list()?;
                for x in l {
                    reencode(x, e)?;
                }
                e.end()?;
            }
            Kind::Dict(d) => {
                e.dict()?;
                for (k, x) in d {
                    e.bytes(k)?;
                    reencode(x, e)?;
                }
                e.end()?;
            }
        }
        Ok(())
    }

    fn round_trip(input: &[u8]) {
        let v = decode(input).unwrap();
        assert_eq!(v.raw(), input);
        let mut buf = [0u8; 512];
        let mut e = Encoder::new(&mut buf);
        reencode(v, &mut e).unwrap();
        assert_eq!(e.finish().unwrap(), input);
    }

    #[test]
    fn bep3_examples_decode() {
        assert_eq!(decode(b"4:spam").unwrap().as_bytes(), Some(&b"spam"[..]));
        assert_eq!(decode(b"4:spam").unwrap().as_str(), Some("spam"));
        assert_eq!(decode(b"i3e").unwrap().as_int(), Some(3));
        assert_eq!(decode(b"i-3e").unwrap().as_int(), Some(-3));
        assert_eq!(decode(b"i0e").unwrap().as_int(), Some(0));
        assert_eq!(decode(b"0:").unwrap().as_bytes(), Some(&b""[..]));

        let l = decode(b"l4:spam4:eggse").unwrap().as_list().unwrap();
        assert_eq!(l.len(), 2);
        assert!(!l.is_empty());
        assert_eq!(l.get(0).unwrap().as_str(), Some("spam"));
        assert_eq!(l.get(1).unwrap().as_str(), Some("eggs"));
        assert_eq!(l.get(2), None);
        let strs: Vec<_> = l.iter().map(|v| v.as_bytes().unwrap()).collect();
        assert_eq!(strs, [&b"spam"[..], b"eggs"]);

        let d = decode(b"d3:cow3:moo4:spam4:eggse")
            .unwrap()
            .as_dict()
            .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.get_str(b"cow"), Some("moo"));
        assert_eq!(d.get_bytes(b"spam"), Some(&b"eggs"[..]));
        assert_eq!(d.get(b"moo"), None);
        assert_eq!(d.get_int(b"cow"), None, "a string is not an int");
        assert!(d.keys_sorted());

        let d = decode(b"d4:spaml1:a1:bee").unwrap().as_dict().unwrap();
        let spam = d.get_list(b"spam").unwrap();
        assert_eq!(spam.len(), 2);
        assert_eq!(spam.get(1).unwrap().as_str(), Some("b"));

        for input in BEP3 {
            round_trip(input);
        }
        assert!(decode(b"le").unwrap().as_list().unwrap().is_empty());
        assert!(decode(b"de").unwrap().as_dict().unwrap().is_empty());
        assert_eq!(decode(b"de").unwrap().as_list(), None);
        assert_eq!(decode(b"1:\xff").unwrap().as_str(), None, "not UTF-8");
    }

    #[test]
    fn raw_is_the_exact_slice_of_the_input() {
        let input = b"d4:infod6:lengthi42e4:name1:x5:filesld4:pathl1:a1:beeee1:ti-7ee";
        let top = decode(input).unwrap();
        assert_eq!(top.raw(), input);
        let info = top.as_dict().unwrap().get(b"info").unwrap();
        assert_eq!(
            info.raw(),
            b"d6:lengthi42e4:name1:x5:filesld4:pathl1:a1:beeee"
        );
        // Zero-copy: the view points into the input.
        assert_eq!(info.raw().as_ptr(), input[7..].as_ptr());
        let info = info.as_dict().unwrap();
        assert_eq!(info.get(b"length").unwrap().raw(), b"i42e");
        assert_eq!(info.get(b"name").unwrap().raw(), b"1:x");
        let files = info.get_list(b"files").unwrap();
        assert_eq!(files.raw(), b"ld4:pathl1:a1:beee");
        let file = files.get(0).unwrap().as_dict().unwrap();
        assert_eq!(file.raw(), b"d4:pathl1:a1:bee");
        assert_eq!(file.get(b"path").unwrap().raw(), b"l1:a1:be");
        assert_eq!(
            file.get_list(b"path").unwrap().get(1).unwrap().raw(),
            b"1:b"
        );
        assert_eq!(top.as_dict().unwrap().get(b"t").unwrap().raw(), b"i-7e");
        assert_eq!(top.as_dict().unwrap().get_dict(b"info"), Some(info));
    }

    #[test]
    fn krpc_examples_round_trip_and_read() {
        for msg in KRPC {
            round_trip(msg);
            let d = decode(msg).unwrap().as_dict().unwrap();
            assert!(d.keys_sorted());
            assert_eq!(d.get_bytes(b"t"), Some(&b"aa"[..]));
        }
        let get_peers = decode(KRPC[5]).unwrap().as_dict().unwrap();
        let r = get_peers.get_dict(b"r").unwrap();
        assert_eq!(r.get_bytes(b"token"), Some(&b"aoeusnth"[..]));
        let values: Vec<_> = r.get_list(b"values").unwrap().iter().collect();
        assert_eq!(values.len(), 2);
        assert_eq!(values[1].as_bytes(), Some(&b"idhtnm"[..]));

        let announce = decode(KRPC[7]).unwrap().as_dict().unwrap();
        let a = announce.get_dict(b"a").unwrap();
        assert_eq!(a.get_int(b"port"), Some(6881));
        assert_eq!(a.get_int(b"implied_port"), Some(1));
        assert_eq!(announce.get_str(b"q"), Some("announce_peer"));

        let error = decode(KRPC[9]).unwrap().as_dict().unwrap();
        let e = error.get_list(b"e").unwrap();
        assert_eq!(e.get(0).unwrap().as_int(), Some(201));
        assert_eq!(e.get(1).unwrap().as_str(), Some("A Generic Error Ocurred"));
    }

    #[test]
    fn the_encoder_writes_krpc_messages() {
        let mut buf = [0u8; 128];
        let mut e = Encoder::new(&mut buf);
        e.dict()
            .and_then(|e| {
                e.str("r")?
                    .dict()?
                    .str("id")?
                    .bytes(b"abcdefghij0123456789")
            })
            .and_then(|e| e.str("token")?.str("aoeusnth"))
            .and_then(|e| e.str("values")?.list()?.bytes(b"axje.u")?.bytes(b"idhtnm"))
            .and_then(|e| {
                e.end()?
                    .end()?
                    .str("t")?
                    .str("aa")?
                    .str("y")?
                    .str("r")?
                    .end()
            })
            .unwrap();
        assert_eq!(e.len(), KRPC[5].len());
        assert_eq!(e.written(), KRPC[5]);
        assert_eq!(e.finish().unwrap(), KRPC[5]);

        // Splicing a decoded value copies it byte for byte.
        let a = decode(KRPC[0])
            .unwrap()
            .as_dict()
            .unwrap()
            .get(b"a")
            .unwrap();
        let mut buf = [0u8; 64];
        let mut e = Encoder::new(&mut buf);
        assert!(e.is_empty());
        e.list()
            .unwrap()
            .value(&a)
            .unwrap()
            .raw(b"i1e")
            .unwrap()
            .end()
            .unwrap();
        assert_eq!(e.finish().unwrap(), b"ld2:id20:abcdefghij0123456789ei1ee");
    }

    #[test]
    fn every_error_has_an_input() {
        use Error::*;
        let cases: &[(&[u8], Error)] = &[
            (b"", UnexpectedEnd),
            (b"i", UnexpectedEnd),
            (b"i12", UnexpectedEnd),
            (b"4:spa", UnexpectedEnd),
            (b"l", UnexpectedEnd),
            (b"l4:spam", UnexpectedEnd),
            (b"d1:a", UnexpectedEnd),
            (b"x", UnexpectedByte(b'x')),
            (b"e", UnexpectedByte(b'e')),
            (b"d1:ae", UnexpectedByte(b'e')), // a key without a value
            (b"l-e", UnexpectedByte(b'-')),
            (b"d:e", UnexpectedByte(b':')),
            (b"ie", BadInteger),
            (b"i-e", BadInteger),
            (b"i01e", BadInteger),
            (b"i00e", BadInteger),
            (b"i-0e", BadInteger),
            (b"i-01e", BadInteger),
            (b"i+1e", BadInteger),
            (b"i 1e", BadInteger),
            (b"i1.5e", BadInteger),
            (b"i--1e", BadInteger),
            (b"i9223372036854775808e", BadInteger),
            (b"i-9223372036854775809e", BadInteger),
            (b"i99999999999999999999999e", BadInteger),
            (b"01:a", BadLength),
            (b"00:", BadLength),
            (b"1a:a", BadLength),
            (b"l1e", BadLength),
            (b"99999999999999999999:", BadLength),
            (b"999999999999999999999999999999:", BadLength),
            (b"di1e1:ae", KeyNotString),
            (b"dle1:ae", KeyNotString),
            (b"dde1:ae", KeyNotString),
            (b"d1:ai1ei2e1:be", KeyNotString),
            (b"99999999:abc", TooLong),
            (b"18446744073709551615:", TooLong),
            (b"i1ee", TrailingBytes),
            (b"4:spam4:eggs", TrailingBytes),
            (b"lei0e", TrailingBytes),
        ];
        for &(input, err) in cases {
            assert_eq!(decode(input), Err(err), "{}", input.escape_ascii());
        }
        // TooDeep has its own test; every variant was produced.
        assert_eq!(
            decode_with(
                b"l",
                Limits {
                    max_depth: 0,
                    max_len: 9
                }
            ),
            Err(TooDeep)
        );
    }

    #[test]
    fn depth_is_limited_without_recursion() {
        let mut deep = [b'l'; 100_000];
        assert_eq!(decode(&deep), Err(Error::TooDeep));
        deep[..50_000].fill(b'd');
        assert_eq!(decode(&deep), Err(Error::KeyNotString));
        let max = Limits {
            max_depth: u8::MAX,
            max_len: usize::MAX,
        };
        assert_eq!(decode_with(&deep[50_000..], max), Err(Error::TooDeep));

        // Exactly `max_depth` levels decode; one more does not.
        let nested = |n: usize, buf: &mut [u8; 600]| -> usize {
            buf[..n].fill(b'l');
            buf[n..2 * n].fill(b'e');
            2 * n
        };
        let mut buf = [0u8; 600];
        for depth in [0u8, 1, 5, 32, 255] {
            let limits = Limits {
                max_depth: depth,
                max_len: 1 << 20,
            };
            let n = nested(depth.into(), &mut buf);
            let v = decode_with(&buf[..n], limits);
            if depth == 0 {
                assert_eq!(v, Err(Error::UnexpectedEnd), "empty input");
            } else {
                // Walk to the innermost list.
                let mut l = v.unwrap().as_list().unwrap();
                for _ in 1..depth {
                    l = l.get(0).unwrap().as_list().unwrap();
                }
                assert!(l.is_empty());
            }
            if depth < u8::MAX {
                let n = nested(usize::from(depth) + 1, &mut buf);
                assert_eq!(decode_with(&buf[..n], limits), Err(Error::TooDeep));
            }
        }
        assert_eq!(decode(b"i1e").unwrap().as_int(), Some(1));
        let flat = Limits {
            max_depth: 0,
            max_len: 16,
        };
        assert_eq!(decode_with(b"4:spam", flat).unwrap().as_str(), Some("spam"));
        assert_eq!(decode_with(b"de", flat), Err(Error::TooDeep));
        // Dicts and lists interleave: the list/dict bit per level is kept right.
        let mixed = b"dld1:ald1:bi1eeee1:cee";
        assert_eq!(decode(mixed), Err(Error::KeyNotString));
        let mixed = b"d1:kld1:ald1:bi1eei5eeee1:ci0e1:zi2ee";
        let d = decode(mixed).unwrap().as_dict().unwrap();
        assert_eq!(d.get_int(b"z"), Some(2));
        let inner = d.get_list(b"k").unwrap().get(0).unwrap().as_dict().unwrap();
        assert_eq!(inner.get_list(b"a").unwrap().len(), 2);
    }

    #[test]
    fn integers_span_i64() {
        let mut buf = [0u8; 32];
        for v in [i64::MIN, i64::MIN + 1, -10, -1, 0, 1, 9, 10, i64::MAX] {
            let mut e = Encoder::new(&mut buf);
            e.int(v).unwrap();
            let bytes = e.finish().unwrap();
            assert_eq!(bytes, format!("i{v}e").as_bytes());
            assert_eq!(decode(bytes).unwrap().as_int(), Some(v));
        }
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap().as_int(),
            Some(i64::MAX)
        );
    }

    #[test]
    fn length_limit_and_prefix_decoding() {
        let small = Limits {
            max_depth: 4,
            max_len: 6,
        };
        assert!(decode_with(b"4:spam", small).is_ok());
        assert_eq!(decode_with(b"5:spams", small), Err(Error::TooLong));
        assert_eq!(
            decode_with(b"5:spa", small),
            Err(Error::TooLong),
            "even truncated"
        );
        assert_eq!(decode_with(b"i12345e", small), Err(Error::TooLong));
        assert_eq!(decode_with(b"l1:a1:be", small), Err(Error::TooLong));
        assert_eq!(decode_with(b"l1:ae", small).unwrap().raw(), b"l1:ae");
        assert_eq!(
            decode_with(
                b"i1e",
                Limits {
                    max_depth: 0,
                    max_len: 0
                }
            ),
            Err(Error::TooLong)
        );

        // A stream of concatenated values.
        let stream = b"i1e4:spamli2eed1:ai3ee";
        let mut rest = &stream[..];
        let mut seen = Vec::new();
        while !rest.is_empty() {
            let (v, n) = decode_prefix(rest, Limits::DEFAULT).unwrap();
            assert_eq!(v.raw(), &rest[..n]);
            seen.push(n);
            rest = &rest[n..];
        }
        assert_eq!(seen, [3, 6, 5, 8]);
        // Only the value is limited, not what follows it.
        assert_eq!(decode_prefix(b"i1e4:spam", small).unwrap().1, 3);
    }

    #[test]
    fn exactly_the_strict_prefixes_of_valid_inputs_are_unexpected_end() {
        for input in KRPC.iter().chain(&BEP3) {
            for cut in 0..input.len() {
                assert_eq!(
                    decode(&input[..cut]),
                    Err(Error::UnexpectedEnd),
                    "{}",
                    input[..cut].escape_ascii()
                );
            }
        }
        // Dead ends are reported at once, not as "need more bytes".
        for dead in [
            &b"i-0"[..],
            b"i01",
            b"01",
            b"i99999999999999999999",
            b"d1:ae",
        ] {
            assert_ne!(decode(dead), Err(Error::UnexpectedEnd));
        }
    }

    #[test]
    fn unsorted_and_duplicate_keys_are_accepted() {
        let d = decode(b"d1:bi2e1:ai1e1:bi3ee").unwrap().as_dict().unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.get_int(b"b"), Some(2), "the first entry wins");
        assert_eq!(d.get_int(b"a"), Some(1));
        assert!(!d.keys_sorted());
        let keys: Vec<_> = d.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [&b"b"[..], b"a", b"b"]);
        // Re-encoding keeps the order, so raw() hashes as the sender hashed.
        round_trip(b"d1:bi2e1:ai1e1:bi3ee");
        assert!(
            !decode(b"d1:ai1e1:ai1ee")
                .unwrap()
                .as_dict()
                .unwrap()
                .keys_sorted()
        );
        assert!(decode(b"de").unwrap().as_dict().unwrap().keys_sorted());
        // Raw-byte order, not alphanumeric: "Z" (0x5a) < "a" (0x61), "a" < "aa".
        assert!(
            decode(b"d1:Zi0e1:ai0e2:aai0ee")
                .unwrap()
                .as_dict()
                .unwrap()
                .keys_sorted()
        );
    }

    #[test]
    fn buffer_full_is_clear_and_sticky() {
        let msg = KRPC[0];
        let v = decode(msg).unwrap();
        // An exactly-sized buffer takes the whole message.
        let mut exact = [0u8; 56];
        assert_eq!(exact.len(), msg.len());
        let mut e = Encoder::new(&mut exact);
        reencode(v, &mut e).unwrap();
        assert_eq!(e.finish().unwrap(), msg);

        // One byte short: the last write fails, and so does everything after it.
        let mut short = [0u8; 55];
        let mut e = Encoder::new(&mut short);
        assert_eq!(reencode(v, &mut e), Err(BufferFull));
        assert_eq!(e.written(), &msg[..55]);
        assert_eq!(e.end().map(|_| ()), Err(BufferFull));
        assert_eq!(e.len(), 55);
        assert_eq!(e.finish(), Err(BufferFull));

        // A failed write writes nothing, even the part that would fit.
        let mut buf = [0u8; 4];
        let mut e = Encoder::new(&mut buf);
        e.str("ab").unwrap();
        assert_eq!(e.str("c").map(|_| ()), Err(BufferFull));
        assert_eq!(e.written(), b"2:ab");
        let mut buf = [0u8; 3];
        let mut e = Encoder::new(&mut buf);
        assert_eq!(e.int(-10).map(|_| ()), Err(BufferFull));
        assert!(e.is_empty());
        assert_eq!(format!("{BufferFull}"), "output buffer full");
    }

    #[test]
    fn debug_reads_like_the_data() {
        let v = decode(b"d1:ai-1e1:bl1:\"i2eee").unwrap();
        assert_eq!(format!("{v:?}"), r#"{b"a": -1, b"b": [b"\"", 2]}"#);
        assert_eq!(
            format!("{:?}", v.kind()),
            r#"Dict({b"a": -1, b"b": [b"\"", 2]})"#
        );
        assert_eq!(
            format!("{}", Error::UnexpectedByte(b'x')),
            "unexpected byte 'x' in bencode"
        );
    }

    /// xorshift64*: a deterministic generator for the mutation test.
    struct Rand(u64);
    impl Rand {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn mutated_messages_never_panic_and_what_decodes_re_encodes_exactly() {
        // Bytes that matter to the grammar, so mutations reach the interesting branches.
        const TOKENS: &[u8] = b"ilde0123456789:-";
        let seeds: Vec<&[u8]> = KRPC.iter().chain(&BEP3).copied().collect();
        let mut rng = Rand(0x9e37_79b9_7f4a_7c15);
        let mut decoded = 0;
        let mut out = [0u8; 1024];
        for _ in 0..100_000 {
            let mut m: Vec<u8> = seeds[rng.below(seeds.len())].to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len() + 1);
                let token = TOKENS[rng.below(TOKENS.len())];
                match rng.below(6) {
                    0 if at < m.len() => m[at] = token,
                    1 => m.insert(at, token),
                    2 if at < m.len() => {
                        m.remove(at);
                    }
                    3 => m.truncate(at),
                    4 if at < m.len() => m[at] ^= 1 << rng.below(8),
                    _ => {
                        // Splice a slice of another seed in (nesting, repeated keys).
                        let other = seeds[rng.below(seeds.len())];
                        let from = rng.below(other.len());
                        let to = from + rng.below(other.len() - from + 1);
                        m.splice(at..at, other[from..to].iter().copied());
                    }
                }
            }
            let Ok(v) = decode(&m) else { continue };
            decoded += 1;
            let mut e = Encoder::new(&mut out);
            reencode(v, &mut e).unwrap();
            let bytes = e.finish().unwrap();
            assert_eq!(bytes, &m[..], "re-encoding differs");
            assert_eq!(decode(bytes), Ok(v));
        }
        // The test is only worth something if a fair share of mutants are valid.
        assert!(decoded > 5_000, "only {decoded} mutants decoded");
    }
}
