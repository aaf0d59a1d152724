//! The HTTP/1.x file transfer between servents: requests by SHA-1 (HUGE v0.94 section
//! 6.1, `GET /uri-res/N2R?urn:sha1:<base32>`) or by the legacy index and name (the 0.4
//! protocol's `GET /get/<index>/<name>`), with `Range` (RFC 7233) for swarming, and the
//! responses `200`, `206 Partial Content` (with `Content-Range`), `404`, `416`, `503`,
//! carrying `X-Gnutella-Content-URN` (HUGE section 6.2.1).
//!
//! Parsing is incremental, on the header block reader of [`super::headers`]; the body
//! after the block is the caller's to stream. Only what a servent needs is typed; every
//! other header is in [`Request::headers`] / [`Response::headers`].

use super::headers::{self, parse_status_line, parse_u64, parse_version};
pub use super::headers::{HeadError, HeadWriter, Headers, Limits, Value, Version};
use super::{WriteError, urn};
use core::fmt;

/// The request method.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Method {
    /// `GET`: send the file (or range).
    Get,
    /// `HEAD`: only the headers (alternate-location checks).
    Head,
}

/// What a request asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target<'a> {
    /// `/uri-res/N2R?urn:sha1:<base32>` (also a `urn:bitprint:`, down-converted): the
    /// file with this SHA-1.
    Sha1([u8; 20]),
    /// `/get/<index>/<name>`: the file at this index of the last query hit.
    Index {
        /// The index from the query hit.
        index: u32,
        /// The name, still percent-encoded as sent.
        name: &'a [u8],
    },
    /// Any other target (`/`, browse-host, a URN type we do not serve).
    Other,
}

/// A parsed request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Request<'a> {
    /// `GET` or `HEAD`.
    pub method: Method,
    /// The request target exactly as sent.
    pub uri: &'a [u8],
    /// The target, interpreted.
    pub target: Target<'a>,
    /// The HTTP version.
    pub version: Version,
    /// The headers.
    pub headers: Headers<'a>,
}

/// A parsed response.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Response<'a> {
    /// The HTTP version.
    pub version: Version,
    /// The status code.
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a [u8],
    /// The headers.
    pub headers: Headers<'a>,
}

/// Status codes of file transfers.
pub mod code {
    /// The whole file follows.
    pub const OK: u16 = 200;
    /// The requested range follows (`Content-Range` says which).
    pub const PARTIAL_CONTENT: u16 = 206;
    /// No such file.
    pub const NOT_FOUND: u16 = 404;
    /// The range is outside the file.
    pub const RANGE_NOT_SATISFIABLE: u16 = 416;
    /// No free upload slot: try later.
    pub const SERVICE_UNAVAILABLE: u16 = 503;
}

/// Reads a request block from the start of `buf`: `Ok(None)` until it is complete.
pub fn parse_request(
    buf: &[u8],
    limits: Limits,
) -> Result<Option<(Request<'_>, usize)>, HeadError> {
    let Some((head, n)) = headers::parse(buf, limits)? else {
        return Ok(None);
    };
    let bad = HeadError::BadStartLine;
    let mut parts = head.start.split(|&b| b == b' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => return Err(bad),
    };
    let version = parse_version(version, b"HTTP").ok_or(bad)?;
    if uri.is_empty() {
        return Err(bad);
    }
    let request = Request {
        method,
        uri,
        target: parse_target(uri),
        version,
        headers: head.headers,
    };
    Ok(Some((request, n)))
}

fn parse_target(uri: &[u8]) -> Target<'_> {
    if let Some(urn_text) = uri.strip_prefix(b"/uri-res/N2R?")
        && let Some(sha1) = urn::parse_sha1(urn_text)
    {
        return Target::Sha1(sha1);
    }
    if let Some(rest) = uri.strip_prefix(b"/get/")
        && let Some(slash) = rest.iter().position(|&b| b == b'/')
        && let Some(index) = parse_u64(&rest[..slash]).and_then(|i| u32::try_from(i).ok())
    {
        return Target::Index {
            index,
            name: &rest[slash + 1..],
        };
    }
    Target::Other
}

/// Reads a response block from the start of `buf`: `Ok(None)` until it is complete.
pub fn parse_response(
    buf: &[u8],
    limits: Limits,
) -> Result<Option<(Response<'_>, usize)>, HeadError> {
    let Some((head, n)) = headers::parse(buf, limits)? else {
        return Ok(None);
    };
    let (version, code, reason) = parse_status_line(head.start, b"HTTP")?;
    let response = Response {
        version,
        code,
        reason,
        headers: head.headers,
    };
    Ok(Some((response, n)))
}

/// One byte range of a `Range` header (RFC 7233 section 2.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ByteRange {
    /// `first-last` or `first-` (to the end of the file); inclusive.
    From {
        /// The first byte.
        first: u64,
        /// The last byte, or `None` for "to the end".
        last: Option<u64>,
    },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByteRange::From { first, last: None } => write!(f, "bytes={first}-"),
            ByteRange::From {
                first,
                last: Some(last),
            } => write!(f, "bytes={first}-{last}"),
            ByteRange::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

fn parse_range(v: &[u8]) -> Option<ByteRange> {
    let spec = v.strip_prefix(b"bytes=")?;
    let dash = spec.iter().position(|&b| b == b'-')?;
    let (a, b) = (&spec[..dash], &spec[dash + 1..]);
    if a.is_empty() {
        return parse_u64(b).map(ByteRange::Suffix);
    }
    let first = parse_u64(a)?;
    let last = if b.is_empty() {
        None
    } else {
        Some(parse_u64(b).filter(|&l| l >= first)?)
    };
    Some(ByteRange::From { first, last })
}

/// A `Content-Range` (RFC 7233 section 4.2): `bytes first-last/total`, `total` may be
/// `*`; on a 416, `bytes */total`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ContentRange {
    /// The first and last bytes sent, inclusive; `None` in a 416's `*`.
    pub range: Option<(u64, u64)>,
    /// The file's size, if known.
    pub total: Option<u64>,
}

impl fmt::Display for ContentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes ")?;
        match self.range {
            Some((a, b)) => write!(f, "{a}-{b}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("*"),
        }
    }
}

fn parse_content_range(v: &[u8]) -> Option<ContentRange> {
    let spec = v.strip_prefix(b"bytes ")?;
    let slash = spec.iter().position(|&b| b == b'/')?;
    let (range, total) = (&spec[..slash], &spec[slash + 1..]);
    let total = match total {
        b"*" => None,
        t => Some(parse_u64(t)?),
    };
    let range = if range == b"*" {
        total?;
        None
    } else {
        let dash = range.iter().position(|&b| b == b'-')?;
        let a = parse_u64(&range[..dash])?;
        let b = parse_u64(&range[dash + 1..])?;
        // RFC 7233 section 4.2: an invalid range (last < first, or past the total).
        if b < a || total.is_some_and(|t| b >= t) {
            return None;
        }
        Some((a, b))
    };
    Some(ContentRange { range, total })
}

impl<'a> Request<'a> {
    /// `Host`.
    pub fn host(&self) -> Option<Value<'a>> {
        self.headers.get("Host")
    }

    /// `User-Agent`.
    pub fn user_agent(&self) -> Option<Value<'a>> {
        self.headers.get("User-Agent")
    }

    /// `Range`, one range. A list of ranges (RFC 7233 allows it; few servents send it) is
    /// `BadValue`: serve the whole file or answer 416.
    pub fn range(&self) -> Result<Option<ByteRange>, HeadError> {
        self.headers
            .get("Range")
            .map(|v| parse_range(v.bytes()).ok_or(HeadError::BadValue("Range")))
            .transpose()
    }
}

impl<'a> Response<'a> {
    /// `Content-Length`.
    pub fn content_length(&self) -> Result<Option<u64>, HeadError> {
        self.headers
            .get("Content-Length")
            .map(|v| v.to_u64().ok_or(HeadError::BadValue("Content-Length")))
            .transpose()
    }

    /// `Content-Range`.
    pub fn content_range(&self) -> Result<Option<ContentRange>, HeadError> {
        self.headers
            .get("Content-Range")
            .map(|v| parse_content_range(v.bytes()).ok_or(HeadError::BadValue("Content-Range")))
            .transpose()
    }

    /// `X-Gnutella-Content-URN`: the file's SHA-1 (HUGE section 6.2.1).
    pub fn content_urn(&self) -> Result<Option<[u8; 20]>, HeadError> {
        self.headers
            .get("X-Gnutella-Content-URN")
            .map(|v| {
                urn::parse_sha1(v.bytes()).ok_or(HeadError::BadValue("X-Gnutella-Content-URN"))
            })
            .transpose()
    }

    /// `Server`.
    pub fn server(&self) -> Option<Value<'a>> {
        self.headers.get("Server")
    }
}

/// Starts `GET /uri-res/N2R?urn:sha1:<base32> HTTP/1.1`. Add `Host` (HTTP/1.1 requires
/// it), `User-Agent` and `Range`, then [`HeadWriter::finish`].
pub fn get_sha1<'b>(out: &'b mut [u8], sha1: &[u8; 20]) -> HeadWriter<'b> {
    let mut text = [0u8; urn::SHA1_URN_LEN];
    // 41 bytes into a 41-byte buffer cannot fail.
    let n = urn::write_sha1(sha1, &mut text).unwrap_or(0);
    let text = core::str::from_utf8(&text[..n]).unwrap_or("");
    HeadWriter::with_start(out, format_args!("GET /uri-res/N2R?{text} HTTP/1.1"))
}

/// Starts the legacy `GET /get/<index>/<name> HTTP/1.0`, percent-encoding the name (every
/// byte but RFC 3986's unreserved ones).
pub fn get_index<'b>(out: &'b mut [u8], index: u32, name: &[u8]) -> HeadWriter<'b> {
    HeadWriter::with_start(
        out,
        format_args!("GET /get/{index}/{} HTTP/1.0", PercentEncoded(name)),
    )
}

/// Starts a response, `HTTP/1.1 <code> <reason>`.
pub fn response<'b>(out: &'b mut [u8], code: u16, reason: &str) -> HeadWriter<'b> {
    let mut w = HeadWriter::with_start(out, format_args!("HTTP/1.1 {code} {reason}"));
    if !(100..=999).contains(&code) {
        w.fail(WriteError::Invalid("status code is not three digits"));
    }
    w
}

/// Percent-encodes bytes outside RFC 3986's `unreserved` set.
pub(crate) struct PercentEncoded<'a>(pub(crate) &'a [u8]);

impl fmt::Display for PercentEncoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                fmt::Write::write_char(f, char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    // HUGE v0.94 section 1's example, as an HTTP/1.1 request with the headers a
    // servent sends for a swarmed chunk.
    const REQUEST: &[u8] =
        b"GET /uri-res/N2R?urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB HTTP/1.1\r\n\
        Host: 10.0.0.1:6346\r\nUser-Agent: gtk-gnutella/1.2.2\r\nRange: bytes=0-1023\r\n\r\n";

    fn sha1_of(text: &[u8]) -> [u8; 20] {
        let mut u = [0u8; 41];
        u[..9].copy_from_slice(b"urn:sha1:");
        u[9..].copy_from_slice(text);
        urn::parse_sha1(&u).unwrap()
    }

    #[test]
    fn huge_section6_1_uri_res_request() {
        let (r, n) = parse_request(REQUEST, Limits::DEFAULT).unwrap().unwrap();
        assert_eq!(n, REQUEST.len());
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.version, Version::HTTP_1_1);
        assert_eq!(
            r.target,
            Target::Sha1(sha1_of(b"PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB"))
        );
        assert_eq!(r.host().unwrap().bytes(), b"10.0.0.1:6346");
        assert_eq!(r.user_agent().unwrap().bytes(), b"gtk-gnutella/1.2.2");
        assert_eq!(
            r.range(),
            Ok(Some(ByteRange::From {
                first: 0,
                last: Some(1023)
            }))
        );
        for cut in 0..REQUEST.len() {
            assert_eq!(parse_request(&REQUEST[..cut], Limits::DEFAULT), Ok(None));
        }
    }

    #[test]
    fn builder_writes_the_uri_res_request_byte_for_byte() {
        let mut buf = [0u8; 256];
        let mut w = get_sha1(&mut buf, &sha1_of(b"PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB"));
        w.header("Host", "10.0.0.1:6346").unwrap();
        w.header("User-Agent", "gtk-gnutella/1.2.2").unwrap();
        let range = ByteRange::From {
            first: 0,
            last: Some(1023),
        };
        w.header_fmt("Range", format_args!("{range}")).unwrap();
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], REQUEST);
    }

    #[test]
    fn legacy_get_by_index_and_name() {
        let mut buf = [0u8; 128];
        let n = get_index(&mut buf, 42, b"My Song.mp3").finish().unwrap();
        assert_eq!(&buf[..n], b"GET /get/42/My%20Song.mp3 HTTP/1.0\r\n\r\n");
        let (r, _) = parse_request(&buf[..n], Limits::DEFAULT).unwrap().unwrap();
        assert_eq!(r.version, Version::HTTP_1_0);
        assert_eq!(
            r.target,
            Target::Index {
                index: 42,
                name: b"My%20Song.mp3"
            }
        );
        let (r, _) = parse_request(b"HEAD /get/x/y HTTP/1.1\r\n\r\n", Limits::DEFAULT)
            .unwrap()
            .unwrap();
        assert_eq!((r.method, r.target), (Method::Head, Target::Other));
        let (r, _) = parse_request(b"GET /get/4294967296/y HTTP/1.1\r\n\r\n", Limits::DEFAULT)
            .unwrap()
            .unwrap();
        assert_eq!(r.target, Target::Other);
    }

    #[test]
    fn rfc7233_range_forms() {
        let range = |v: &str| parse_range(v.as_bytes());
        assert_eq!(
            range("bytes=100-"),
            Some(ByteRange::From {
                first: 100,
                last: None
            })
        );
        assert_eq!(range("bytes=-500"), Some(ByteRange::Suffix(500)));
        for bad in [
            "bytes=5-4",
            "bytes=-",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=1",
        ] {
            assert_eq!(range(bad), None, "{bad}");
        }
        for r in [
            ByteRange::Suffix(7),
            ByteRange::From {
                first: 3,
                last: None,
            },
        ] {
            let mut buf = [0u8; 64];
            let mut w = get_index(&mut buf, 1, b"a");
            w.header_fmt("Range", format_args!("{r}")).unwrap();
            let n = w.finish().unwrap();
            let (req, _) = parse_request(&buf[..n], Limits::DEFAULT).unwrap().unwrap();
            assert_eq!(req.range(), Ok(Some(r)));
        }
        let (req, _) = parse_request(
            b"GET / HTTP/1.1\r\nRange: bytes=9-1\r\n\r\n",
            Limits::DEFAULT,
        )
        .unwrap()
        .unwrap();
        assert_eq!(req.range(), Err(HeadError::BadValue("Range")));
    }

    #[test]
    fn responses_206_404_503_parse_and_build() {
        let empty = [
            0xda, 0x39, 0xa3, 0xee, 0x5e, 0x6b, 0x4b, 0x0d, 0x32, 0x55, 0xbf, 0xef, 0x95, 0x60,
            0x18, 0x90, 0xaf, 0xd8, 0x07, 0x09,
        ];
        let mut buf = [0u8; 256];
        let mut w = response(&mut buf, 206, "Partial Content");
        w.header("Server", "overlay").unwrap();
        w.header_fmt("Content-Length", format_args!("{}", 1024))
            .unwrap();
        let cr = ContentRange {
            range: Some((0, 1023)),
            total: Some(4096),
        };
        w.header_fmt("Content-Range", format_args!("{cr}")).unwrap();
        w.header(
            "X-Gnutella-Content-URN",
            "urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ",
        )
        .unwrap();
        let n = w.finish().unwrap();
        let expect: &[u8] = b"HTTP/1.1 206 Partial Content\r\nServer: overlay\r\n\
            Content-Length: 1024\r\nContent-Range: bytes 0-1023/4096\r\n\
            X-Gnutella-Content-URN: urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ\r\n\r\n";
        assert_eq!(&buf[..n], expect);
        let mut stream = expect.to_vec();
        stream.extend_from_slice(&[7; 1024]);
        let (r, m) = parse_response(&stream, Limits::DEFAULT).unwrap().unwrap();
        assert_eq!(m, expect.len());
        assert_eq!(
            (r.version, r.code, r.reason),
            (Version::HTTP_1_1, 206, &b"Partial Content"[..])
        );
        assert_eq!(r.content_length(), Ok(Some(1024)));
        assert_eq!(r.content_range(), Ok(Some(cr)));
        assert_eq!(r.content_urn(), Ok(Some(empty)));
        assert_eq!(r.server().unwrap().bytes(), b"overlay");
        for cut in 0..expect.len() {
            assert_eq!(parse_response(&stream[..cut], Limits::DEFAULT), Ok(None));
        }

        let (r, _) = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n", Limits::DEFAULT)
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.code, r.content_length(), r.content_urn()),
            (code::NOT_FOUND, Ok(None), Ok(None))
        );
        let (r, _) = parse_response(
            b"HTTP/1.1 416 Requested Range Not Satisfiable\r\nContent-Range: bytes */4096\r\n\r\n",
            Limits::DEFAULT,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            r.content_range(),
            Ok(Some(ContentRange {
                range: None,
                total: Some(4096)
            }))
        );
        let (r, _) = parse_response(
            b"HTTP/1.1 503 Busy\r\nContent-Length: -1\r\nContent-Range: bytes 5-9/8\r\n\
              X-Gnutella-Content-URN: urn:sha1:XYZ\r\n\r\n",
            Limits::DEFAULT,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.code, code::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.content_length(),
            Err(HeadError::BadValue("Content-Length"))
        );
        assert_eq!(r.content_range(), Err(HeadError::BadValue("Content-Range")));
        assert_eq!(
            r.content_urn(),
            Err(HeadError::BadValue("X-Gnutella-Content-URN"))
        );
    }

    #[test]
    fn malformed_request_lines_are_bad_start_line() {
        for bad in [
            &b"POST / HTTP/1.1\r\n\r\n"[..],
            b"GET  HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 x\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET / HTTP/x\r\n\r\n",
            b"GET / GNUTELLA/0.6\r\n\r\n",
        ] {
            assert_eq!(
                parse_request(bad, Limits::DEFAULT),
                Err(HeadError::BadStartLine),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
        assert_eq!(
            parse_response(b"HTTP/1.1 OK\r\n\r\n", Limits::DEFAULT),
            Err(HeadError::BadStartLine)
        );
        assert_eq!(
            response(&mut [0u8; 64], 99, "x").finish(),
            Err(WriteError::Invalid("status code is not three digits"))
        );
    }
}
