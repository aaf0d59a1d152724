//! The HTTP-style header block that both the Gnutella 0.6 handshake and the HTTP file
//! transfer use: a start line, header lines, and an empty line, every line ending in
//! CR LF (`handshaking_0.6` section 3; RFC 7230 sections 3 and 3.2).
//!
//! [`parse`] reads a block from the start of a stream buffer and says how many bytes it
//! took, or that it needs more: call it again when more bytes arrive. It keeps no state
//! between calls (each re-reads the buffer, at most [`Limits::max_total`] bytes, so one
//! call's work is bounded however a peer dribbles its bytes). Obsolete line folding (a
//! line starting with a space or tab continues the previous header) is accepted, because
//! the Gnutella documents use it (`ultra-peers` section 3.1 folds `X-Try-Ultrapeers`).
//! Lines must end in CR LF: a bare CR or LF is an error, not a guess.
//!
//! [`HeadWriter`] writes a block into a caller's buffer and refuses names and values that
//! would let a peer read different headers than were meant (CR, LF, NUL).

use super::{WriteError, put};
use core::fmt::{self, Write as _};

/// How much [`parse`] accepts before giving up on a peer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// The most bytes in one line, without its CR LF.
    pub max_line: usize,
    /// The most header lines (continuation lines not counted).
    pub max_headers: usize,
    /// The most bytes in the whole block, its final empty line included.
    pub max_total: usize,
}

impl Limits {
    /// 4 KiB a line, 64 headers, 16 KiB in all. A deployed handshake is under 1 KiB
    /// (gtk-gnutella and LimeWire send about 20 headers); Apache's request defaults
    /// (`LimitRequestFieldSize` 8190, `LimitRequestFields` 100) are the looser bound HTTP
    /// peers expect, and these stay well inside what a small device can buffer.
    pub const DEFAULT: Limits = Limits {
        max_line: 4096,
        max_headers: 64,
        max_total: 16 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a header block (or a value in it) was not accepted.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HeadError {
    /// A line is longer than [`Limits::max_line`].
    LineTooLong,
    /// More header lines than [`Limits::max_headers`].
    TooManyHeaders,
    /// The block is longer than [`Limits::max_total`].
    TooLarge,
    /// A line ends in a bare LF, or a CR appears inside a line.
    BadLineEnding,
    /// The start line is empty, has control characters, or is not the expected request
    /// or status line.
    BadStartLine,
    /// A header line has no `:`, an empty name or one with characters outside RFC 7230's
    /// `token`, a control character, or is a continuation line with nothing to continue.
    BadHeaderLine,
    /// The named header's value is not what its definition allows.
    BadValue(&'static str),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::LineTooLong => f.write_str("header line longer than the limit"),
            HeadError::TooManyHeaders => f.write_str("more headers than the limit"),
            HeadError::TooLarge => f.write_str("header block larger than the limit"),
            HeadError::BadLineEnding => f.write_str("header line not ended by CR LF"),
            HeadError::BadStartLine => f.write_str("malformed start line"),
            HeadError::BadHeaderLine => f.write_str("malformed header line"),
            HeadError::BadValue(name) => write!(f, "malformed {name} header"),
        }
    }
}

impl core::error::Error for HeadError {}

/// A parsed block: the start line and the headers, borrowing the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Head<'a> {
    /// The first line, without its CR LF.
    pub start: &'a [u8],
    /// The header lines.
    pub headers: Headers<'a>,
}

/// Visible text as RFC 7230 allows it in a field value: tab, printable ASCII and
/// `obs-text` (bytes 0x80-0xFF, which old servents send in Latin-1 file names).
fn is_text(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// RFC 7230 section 3.2.6 `tchar`: what a header name may be made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

const BAD_VALUE: &str = "header value has CR, LF or a control character";

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ws(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Reads the header block at the start of `buf`. `Ok(None)`: the block is not complete
/// yet (and nothing seen so far breaks a rule or a limit); read more and call again with
/// the longer buffer. `Ok(Some((head, n)))`: the block is the first `n` bytes; what
/// follows belongs to the next layer (binary Gnutella messages, a file body).
pub fn parse(buf: &[u8], limits: Limits) -> Result<Option<(Head<'_>, usize)>, HeadError> {
    let mut pos = 0;
    let mut start: Option<&[u8]> = None;
    let mut headers_from = 0;
    let mut count = 0usize;
    loop {
        let rest = &buf[pos..];
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            // Incomplete line: fail now if no completion could pass the limits, so a
            // peer cannot make us buffer without bound.
            if rest.len() > limits.max_line.saturating_add(1) {
                return Err(HeadError::LineTooLong);
            }
            if buf.len() >= limits.max_total {
                return Err(HeadError::TooLarge);
            }
            return Ok(None);
        };
        let end = pos + lf + 1;
        let content = rest[..lf]
            .strip_suffix(b"\r")
            .ok_or(HeadError::BadLineEnding)?;
        if content.contains(&b'\r') {
            return Err(HeadError::BadLineEnding);
        }
        if content.len() > limits.max_line {
            return Err(HeadError::LineTooLong);
        }
        if end > limits.max_total {
            return Err(HeadError::TooLarge);
        }
        match start {
            None => {
                if content.is_empty() || !content.iter().all(|&b| is_text(b)) {
                    return Err(HeadError::BadStartLine);
                }
                start = Some(content);
                headers_from = end;
            }
            Some(start) if content.is_empty() => {
                let headers = Headers {
                    raw: &buf[headers_from..pos],
                };
                return Ok(Some((Head { start, headers }, end)));
            }
            Some(_) => {
                let value = if matches!(content[0], b' ' | b'\t') {
                    if count == 0 {
                        return Err(HeadError::BadHeaderLine);
                    }
                    content
                } else {
                    let colon = content
                        .iter()
                        .position(|&b| b == b':')
                        .ok_or(HeadError::BadHeaderLine)?;
                    let name = &content[..colon];
                    if !is_token(name) {
                        return Err(HeadError::BadHeaderLine);
                    }
                    count += 1;
                    if count > limits.max_headers {
                        return Err(HeadError::TooManyHeaders);
                    }
                    &content[colon + 1..]
                };
                if !value.iter().all(|&b| is_text(b)) {
                    return Err(HeadError::BadHeaderLine);
                }
            }
        }
        pos = end;
    }
}

/// The header lines of a parsed block. Names compare case-insensitively (RFC 7230
/// section 3.2); the order and any repeats are kept.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Headers<'a> {
    // Whole lines, each with its CR LF, already validated by `parse`.
    raw: &'a [u8],
}

impl<'a> Headers<'a> {
    /// The header lines exactly as received, each ending in CR LF.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Every header in order, as (name, value).
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter { rest: self.raw }
    }

    /// The value of the first header called `name` (any case).
    pub fn get(&self, name: &str) -> Option<Value<'a>> {
        self.get_all(name).next()
    }

    /// The values of every header called `name` (any case), in order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = Value<'a>> + 'n
    where
        'a: 'n,
    {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a [u8], Value<'a>);
    type IntoIter = HeaderIter<'a>;
    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Headers`]: (name, value).
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // `parse` checked every line: the first has a colon and each ends in CR LF.
        let colon = self.rest.iter().position(|&b| b == b':')?;
        let mut end = colon;
        loop {
            let lf = end + self.rest[end..].iter().position(|&b| b == b'\n')?;
            end = lf + 1;
            if !matches!(self.rest.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        let name = &self.rest[..colon];
        let value = Value(trim(&self.rest[colon + 1..end]));
        self.rest = &self.rest[end..];
        Some((name, value))
    }
}

impl core::iter::FusedIterator for HeaderIter<'_> {}

/// A header's value, trimmed of surrounding white space. A folded value keeps its inner
/// CR LF and indentation; [`Value::items`] treats them as white space.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Value<'a>(&'a [u8]);

impl<'a> Value<'a> {
    /// The bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The value as UTF-8, if it is.
    pub fn as_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.0).ok()
    }

    /// Whether it spans continuation lines.
    pub fn is_folded(&self) -> bool {
        self.0.contains(&b'\n')
    }

    /// Whether it equals `s`, ignoring ASCII case.
    pub fn eq_ignore_case(&self, s: &str) -> bool {
        self.0.eq_ignore_ascii_case(s.as_bytes())
    }

    /// The comma-separated items (RFC 7230 section 7's `#rule`), each trimmed, empty ones
    /// skipped: `X-Try-Ultrapeers`, `Accept-Encoding`, `Range`.
    pub fn items(self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .split(|&b| b == b',')
            .map(trim)
            .filter(|s| !s.is_empty())
    }

    /// The value as a decimal integer: digits only, no sign, no overflow.
    pub fn to_u64(&self) -> Option<u64> {
        parse_u64(self.0)
    }

    /// `True` or `False` in any case (`ultra-peers` section 3.1: "case is ignored").
    pub fn to_bool(&self) -> Option<bool> {
        if self.eq_ignore_case("true") {
            Some(true)
        } else if self.eq_ignore_case("false") {
            Some(false)
        } else {
            None
        }
    }
}

/// A decimal integer of 1 to 20 ASCII digits that fits in `u64`.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// A protocol version, `major.minor` (`GNUTELLA/0.6`, `HTTP/1.1`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Version {
    /// Before the dot.
    pub major: u8,
    /// After the dot.
    pub minor: u8,
}

impl Version {
    /// Gnutella 0.6.
    pub const GNUTELLA_0_6: Version = Version { major: 0, minor: 6 };
    /// HTTP/1.0.
    pub const HTTP_1_0: Version = Version { major: 1, minor: 0 };
    /// HTTP/1.1.
    pub const HTTP_1_1: Version = Version { major: 1, minor: 1 };
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// `<proto>/<major>.<minor>`, both numbers decimal and under 256.
pub(crate) fn parse_version(s: &[u8], proto: &[u8]) -> Option<Version> {
    parse_version_number(s.strip_prefix(proto)?.strip_prefix(b"/")?)
}

/// `<major>.<minor>`, both numbers decimal and under 256.
pub(crate) fn parse_version_number(rest: &[u8]) -> Option<Version> {
    let dot = rest.iter().position(|&b| b == b'.')?;
    let num = |d: &[u8]| {
        (d.len() <= 3)
            .then(|| parse_u64(d))
            .flatten()
            .and_then(|v| u8::try_from(v).ok())
    };
    Some(Version {
        major: num(&rest[..dot])?,
        minor: num(&rest[dot + 1..])?,
    })
}

/// A status line, `<proto>/<version> <3-digit code>[ <reason>]`.
pub(crate) fn parse_status_line<'a>(
    line: &'a [u8],
    proto: &[u8],
) -> Result<(Version, u16, &'a [u8]), HeadError> {
    let bad = HeadError::BadStartLine;
    let sp = line.iter().position(|&b| b == b' ').ok_or(bad)?;
    let version = parse_version(&line[..sp], proto).ok_or(bad)?;
    let rest = &line[sp + 1..];
    let (code, reason) = match rest.get(3) {
        None => (rest, &b""[..]),
        Some(b' ') => (&rest[..3], &rest[4..]),
        Some(_) => return Err(bad),
    };
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let code = parse_u64(code).ok_or(bad)? as u16;
    Ok((version, code, reason))
}

/// Writes a header block into a caller's buffer: the start line (written by the
/// constructors in [`super::handshake`] and [`super::http`]), then [`HeadWriter::header`]
/// for each header, then [`HeadWriter::finish`] for the empty line.
///
/// Like [`crate::bencode::Encoder`], a write that fails writes nothing, and every later
/// call and [`HeadWriter::finish`] fail too, so a truncated block is never sent.
#[derive(Debug)]
pub struct HeadWriter<'b> {
    out: &'b mut [u8],
    len: usize,
    failed: Option<WriteError>,
}

/// `fmt::Write` into a slice, remembering whether it ran out of room.
struct SliceWriter<'s> {
    out: &'s mut [u8],
    len: usize,
    full: bool,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        match self.out.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(s.as_bytes());
                self.len = end;
                Ok(())
            }
            None => {
                self.full = true;
                Err(fmt::Error)
            }
        }
    }
}

impl<'b> HeadWriter<'b> {
    /// Starts a block whose start line is `line`, formatted.
    pub(crate) fn with_start(out: &'b mut [u8], line: fmt::Arguments<'_>) -> Self {
        let mut w = HeadWriter {
            out,
            len: 0,
            failed: None,
        };
        let r = w.formatted(line, b"", "start line has a control character");
        if let Err(e) = r {
            w.failed = Some(e);
        }
        w
    }

    /// Writes `name: value` and CR LF. The name must be an RFC 7230 token and the value
    /// must not contain CR, LF or other control characters (tab aside).
    pub fn header(
        &mut self,
        name: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Self, WriteError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let (name, value) = (name.as_ref(), value.as_ref());
        let r = if !is_token(name) {
            Err(WriteError::Invalid("header name is not a token"))
        } else if !value.iter().all(|&b| is_text(b)) {
            Err(WriteError::Invalid(BAD_VALUE))
        } else {
            put(self.out, &mut self.len, &[name, b": ", value, b"\r\n"])
        };
        self.check(r)
    }

    fn check(&mut self, r: Result<(), WriteError>) -> Result<&mut Self, WriteError> {
        match r {
            Ok(()) => Ok(self),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    /// Writes `name: ` and the formatted `value`, with the same rules as
    /// [`HeadWriter::header`]: `w.header_fmt("Content-Length", format_args!("{n}"))`.
    pub fn header_fmt(
        &mut self,
        name: impl AsRef<[u8]>,
        value: fmt::Arguments<'_>,
    ) -> Result<&mut Self, WriteError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let name = name.as_ref();
        let r = if !is_token(name) {
            Err(WriteError::Invalid("header name is not a token"))
        } else {
            self.formatted(value, name, BAD_VALUE)
        };
        self.check(r)
    }

    /// Writes `[name: ]value` CR LF, checking the value's bytes; on failure the length is
    /// left where it was.
    fn formatted(
        &mut self,
        value: fmt::Arguments<'_>,
        name: &[u8],
        invalid: &'static str,
    ) -> Result<(), WriteError> {
        let mut len = self.len;
        if !name.is_empty() {
            put(self.out, &mut len, &[name, b": "])?;
        }
        let mut w = SliceWriter {
            out: &mut *self.out,
            len,
            full: false,
        };
        let r = w.write_fmt(value);
        let (end, full) = (w.len, w.full);
        if r.is_err() {
            return Err(if full {
                WriteError::BufferFull
            } else {
                WriteError::Invalid("a value's Display failed")
            });
        }
        let written = &self.out[len..end];
        // Nothing formatted may end the line early.
        if !written.iter().all(|&b| is_text(b)) {
            return Err(WriteError::Invalid(invalid));
        }
        let mut len = end;
        put(self.out, &mut len, &[b"\r\n"])?;
        self.len = len;
        Ok(())
    }

    /// Makes [`HeadWriter::finish`] fail with `e` (a constructor found a bad argument).
    pub(crate) fn fail(&mut self, e: WriteError) {
        self.failed.get_or_insert(e);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the empty line that ends the block; returns the block's length.
    pub fn finish(mut self) -> Result<usize, WriteError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        put(self.out, &mut self.len, &[b"\r\n"])?;
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn parse_all(buf: &[u8]) -> Result<Option<(Head<'_>, usize)>, HeadError> {
        parse(buf, Limits::DEFAULT)
    }

    #[test]
    fn rfc7230_section3_2_names_case_insensitive_values_trimmed_repeats_kept() {
        let block = b"START\r\nA: 1\r\nb:2  \r\nA:\t3\r\nEmpty:\r\n\r\nbody";
        let (head, n) = parse_all(block).unwrap().unwrap();
        assert_eq!(n, block.len() - 4);
        assert_eq!(head.start, b"START");
        let all: Vec<_> = head.headers.iter().map(|(k, v)| (k, v.bytes())).collect();
        assert_eq!(
            all,
            [
                (&b"A"[..], &b"1"[..]),
                (b"b", b"2"),
                (b"A", b"3"),
                (b"Empty", b"")
            ]
        );
        assert_eq!(head.headers.get("a").unwrap().bytes(), b"1");
        assert!(
            head.headers
                .get_all("A")
                .map(|v| v.bytes())
                .eq([&b"1"[..], b"3"])
        );
        assert_eq!(head.headers.get("B").unwrap().to_u64(), Some(2));
        assert_eq!(head.headers.get("missing"), None);
        assert_eq!(head.headers.len(), 4);
        assert!(!head.headers.is_empty());
    }

    #[test]
    fn rfc7230_section3_2_4_obsolete_folding_continues_the_value() {
        let block = b"S\r\nList: a,\r\n b ,\r\n\t c\r\nNext: x\r\n\r\n";
        let (head, _) = parse_all(block).unwrap().unwrap();
        let list = head.headers.get("list").unwrap();
        assert!(list.is_folded());
        assert!(list.items().eq([&b"a"[..], b"b", b"c"]));
        assert_eq!(head.headers.get("next").unwrap().bytes(), b"x");
        // A continuation with nothing to continue.
        assert_eq!(
            parse_all(b"S\r\n cont\r\n\r\n"),
            Err(HeadError::BadHeaderLine)
        );
    }

    #[test]
    fn malformed_lines_are_typed_errors() {
        let cases: [(&[u8], HeadError); 9] = [
            (b"S\nA: b\r\n\r\n", HeadError::BadLineEnding),
            (b"S\r\nA: b\n\r\n", HeadError::BadLineEnding),
            (b"S\r\nA: b\rc\r\n\r\n", HeadError::BadLineEnding),
            (b"\r\n", HeadError::BadStartLine),
            (b"S\x01\r\n\r\n", HeadError::BadStartLine),
            (b"S\r\nNoColon\r\n\r\n", HeadError::BadHeaderLine),
            (b"S\r\n: empty name\r\n\r\n", HeadError::BadHeaderLine),
            (b"S\r\nBad Name: v\r\n\r\n", HeadError::BadHeaderLine),
            (b"S\r\nA: nul\x00\r\n\r\n", HeadError::BadHeaderLine),
        ];
        for (block, err) in cases {
            assert_eq!(parse_all(block), Err(err), "{block:?}");
        }
        // obs-text (Latin-1) is allowed in values.
        assert!(parse_all(b"S\r\nName: caf\xe9\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn limits_bind_early_on_incomplete_input_and_on_complete_blocks() {
        let tight = Limits {
            max_line: 8,
            max_headers: 2,
            max_total: 40,
        };
        // Exactly at the line limit passes; one byte more fails, complete or not.
        assert!(parse(b"12345678\r\n\r\n", tight).unwrap().is_some());
        assert_eq!(
            parse(b"123456789\r\n\r\n", tight),
            Err(HeadError::LineTooLong)
        );
        assert_eq!(
            parse(b"S\r\n1234567890", tight),
            Err(HeadError::LineTooLong)
        );
        assert_eq!(parse(b"S\r\n123456789", tight), Ok(None));
        assert_eq!(
            parse(b"S\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", tight),
            Err(HeadError::TooManyHeaders)
        );
        // 40 bytes in all is the most, the empty line included...
        let ok = b"S\r\nA: 12345\r\nB: 12345\r\n 123456\r\n 123\r\n\r\n";
        assert_eq!(ok.len(), 40);
        assert!(parse(ok, tight).unwrap().is_some());
        let over = b"S\r\nA: 12345\r\nB: 12345\r\n 123456\r\n 1234\r\n\r\n";
        assert_eq!(parse(over, tight), Err(HeadError::TooLarge));
        // ...and an incomplete block that already fills the limit cannot finish inside it.
        assert_eq!(parse(&over[..40], tight), Err(HeadError::TooLarge));
        assert_eq!(parse(&over[..39], tight), Ok(None));
    }

    #[test]
    fn values_convert() {
        let v = |s: &'static [u8]| Value(s);
        assert_eq!(v(b"18446744073709551615").to_u64(), Some(u64::MAX));
        assert_eq!(v(b"18446744073709551616").to_u64(), None);
        assert_eq!(v(b"").to_u64(), None);
        assert_eq!(v(b"+1").to_u64(), None);
        assert_eq!(v(b"TRUE").to_bool(), Some(true));
        assert_eq!(v(b"False").to_bool(), Some(false));
        assert_eq!(v(b"yes").to_bool(), None);
        assert_eq!(v(b"\xff").as_str(), None);
        assert!(v(b" , ,a,").items().eq([&b"a"[..]]));
        assert_eq!(parse_version(b"HTTP/1.1", b"HTTP"), Some(Version::HTTP_1_1));
        assert_eq!(parse_version(b"HTTP/1.", b"HTTP"), None);
        assert_eq!(parse_version(b"HTTP/0001.1", b"HTTP"), None);
        assert_eq!(parse_version(b"HTTP/1.256", b"HTTP"), None);
    }

    #[test]
    fn writer_formats_and_checks() {
        let mut buf = [0u8; 64];
        let mut w = HeadWriter::with_start(&mut buf, format_args!("X {}", 1));
        assert!(!w.is_empty() && w.len() == 5);
        w.header("A", b"caf\xe9").unwrap();
        w.header_fmt("N", format_args!("{}", 42)).unwrap();
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], b"X 1\r\nA: caf\xe9\r\nN: 42\r\n\r\n");

        let mut w = HeadWriter::with_start(&mut buf, format_args!("X"));
        assert_eq!(
            w.header_fmt("N", format_args!("a\nb")).err(),
            Some(WriteError::Invalid(BAD_VALUE))
        );
        let mut small = [0u8; 12];
        let mut w = HeadWriter::with_start(&mut small, format_args!("X"));
        assert_eq!(
            w.header_fmt("N", format_args!("{}", 123456789)).err(),
            Some(WriteError::BufferFull)
        );
        assert_eq!(w.len(), 3, "a failed write writes nothing");
        assert_eq!(w.finish(), Err(WriteError::BufferFull));
        let mut tiny = [0u8; 2];
        assert_eq!(
            HeadWriter::with_start(&mut tiny, format_args!("START")).finish(),
            Err(WriteError::BufferFull)
        );
    }
}
