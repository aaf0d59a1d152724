//! The Gnutella 0.6 connection handshake (`handshaking_0.6` section 3, in gtk-gnutella's
//! `doc/gnutella/`), with the ultrapeer headers of `ultra-peers` section 3:
//!
//! ```text
//! client: GNUTELLA CONNECT/0.6 CRLF, headers, CRLF
//! server: GNUTELLA/0.6 200 OK CRLF, headers, CRLF      (or 503 and close)
//! client: GNUTELLA/0.6 200 OK CRLF, headers, CRLF      (then binary messages)
//! ```
//!
//! [`parse`] reads one of these three blocks from a stream buffer, incrementally (see
//! [`super::headers`]); the bytes after it are the first binary descriptors. [`connect`]
//! and [`status`] start writing one. Versions above 0.6 are accepted, as section 3 asks
//! ("servents should ignore higher version numbers"); the 0.4 handshake (`GNUTELLA
//! CONNECT/0.4` LF LF) is not spoken.

use super::headers::{self, parse_status_line, parse_version_number};
pub use super::headers::{HeadError, HeadWriter, Headers, Limits, Value, Version};
use crate::PeerAddr;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

/// Status codes seen in handshakes.
pub mod code {
    /// "200 OK": go on.
    pub const OK: u16 = 200;
    /// "401 Unauthorized" (`handshaking_0.6` section 2).
    pub const UNAUTHORIZED: u16 = 401;
    /// "503 Service Unavailable": full, or a shielded leaf redirecting with
    /// `X-Try-Ultrapeers` (`ultra-peers` section 3.2).
    pub const SERVICE_UNAVAILABLE: u16 = 503;
}

/// The first line of a handshake block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StartLine<'a> {
    /// `GNUTELLA CONNECT/<version>`: the client's opening (step 2).
    Connect(Version),
    /// `GNUTELLA/<version> <code> <reason>`: the server's answer (step 4) or the client's
    /// final one (step 6).
    Status {
        /// The protocol version the sender speaks.
        version: Version,
        /// `200` to go on, anything else to refuse.
        code: u16,
        /// The text after the code (may be empty).
        reason: &'a [u8],
    },
}

/// One parsed handshake block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Handshake<'a> {
    /// The first line.
    pub start: StartLine<'a>,
    /// The capability headers.
    pub headers: Headers<'a>,
}

/// Reads a handshake block from the start of `buf`: `Ok(None)` until its empty line has
/// arrived, then the block and the bytes it took.
pub fn parse(buf: &[u8], limits: Limits) -> Result<Option<(Handshake<'_>, usize)>, HeadError> {
    let Some((head, n)) = headers::parse(buf, limits)? else {
        return Ok(None);
    };
    let start = if let Some(v) = head.start.strip_prefix(b"GNUTELLA CONNECT/") {
        StartLine::Connect(parse_version_number(v).ok_or(HeadError::BadStartLine)?)
    } else {
        let (version, code, reason) = parse_status_line(head.start, b"GNUTELLA")?;
        StartLine::Status {
            version,
            code,
            reason,
        }
    };
    let headers = head.headers;
    Ok(Some((Handshake { start, headers }, n)))
}

impl<'a> Handshake<'a> {
    /// The status code, if this is a status block.
    pub fn code(&self) -> Option<u16> {
        match self.start {
            StartLine::Status { code, .. } => Some(code),
            StartLine::Connect(_) => None,
        }
    }

    /// Whether this is a `200` status block.
    pub fn is_ok(&self) -> bool {
        self.code() == Some(code::OK)
    }

    /// `User-Agent`: the servent's vendor and version.
    pub fn user_agent(&self) -> Option<Value<'a>> {
        self.headers.get("User-Agent")
    }

    /// `X-Ultrapeer`: whether the sender acts as an ultrapeer (`true`) or a leaf.
    pub fn ultrapeer(&self) -> Result<Option<bool>, HeadError> {
        self.flag("X-Ultrapeer")
    }

    /// `X-Ultrapeer-Needed`: whether the sender wants more ultrapeers (`ultra-peers`
    /// section 5); `false` asks an ultrapeer to become our leaf.
    pub fn ultrapeer_needed(&self) -> Result<Option<bool>, HeadError> {
        self.flag("X-Ultrapeer-Needed")
    }

    fn flag(&self, name: &'static str) -> Result<Option<bool>, HeadError> {
        self.headers
            .get(name)
            .map(|v| v.to_bool().ok_or(HeadError::BadValue(name)))
            .transpose()
    }

    /// `X-Try-Ultrapeers`: ultrapeers to try instead, `ip:port` separated by commas,
    /// possibly folded over several lines. Each item is parsed on its own, so one bad
    /// entry does not hide the others.
    pub fn try_ultrapeers(&self) -> PeerList<'a> {
        self.peer_list("X-Try-Ultrapeers")
    }

    /// `X-Try`: other (non-ultrapeer) hosts to try, in the same form.
    pub fn try_hosts(&self) -> PeerList<'a> {
        self.peer_list("X-Try")
    }

    fn peer_list(&self, name: &'static str) -> PeerList<'a> {
        let raw = self.headers.get(name).map_or(&b""[..], |v| v.bytes());
        PeerList {
            name,
            items: raw.split(|&b| b == b','),
        }
    }

    /// `X-Query-Routing`: the QRP version the sender offers between leaf and ultrapeer.
    pub fn query_routing(&self) -> Option<Value<'a>> {
        self.headers.get("X-Query-Routing")
    }

    /// The address the sender listens on: `Listen-IP`, else `X-My-Address` (both
    /// `ip:port`).
    pub fn listen_addr(&self) -> Result<Option<PeerAddr>, HeadError> {
        for name in ["Listen-IP", "X-My-Address"] {
            if let Some(v) = self.headers.get(name) {
                return parse_peer(v.bytes())
                    .map(Some)
                    .ok_or(HeadError::BadValue(name));
            }
        }
        Ok(None)
    }

    /// `Remote-IP`: our address as the sender sees it (an IP, no port).
    pub fn remote_ip(&self) -> Result<Option<IpAddr>, HeadError> {
        self.headers
            .get("Remote-IP")
            .map(|v| {
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or(HeadError::BadValue("Remote-IP"))
            })
            .transpose()
    }

    /// `Accept-Encoding`'s items (`deflate` turns on compressed links).
    pub fn accept_encoding(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .get("Accept-Encoding")
            .into_iter()
            .flat_map(|v| v.items())
    }

    /// `Content-Encoding`: how the sender compresses what it sends after the handshake.
    pub fn content_encoding(&self) -> Option<Value<'a>> {
        self.headers.get("Content-Encoding")
    }
}

/// `ip:port` (IPv6 in brackets) as a peer address.
pub fn parse_peer(s: &[u8]) -> Option<PeerAddr> {
    let s = core::str::from_utf8(s).ok()?;
    s.trim_matches(|c: char| c.is_ascii_whitespace())
        .parse::<SocketAddr>()
        .ok()
        .map(PeerAddr::from)
}

/// The entries of a peer-list header ([`Handshake::try_ultrapeers`]): each
/// `Ok(address)`, or `Err(BadValue)` for an entry that is not `ip:port`.
#[derive(Clone, Debug)]
pub struct PeerList<'a> {
    name: &'static str,
    items: core::slice::Split<'a, u8, fn(&u8) -> bool>,
}

impl Iterator for PeerList<'_> {
    type Item = Result<PeerAddr, HeadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let item = self.items.next()?;
            if item.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            return Some(parse_peer(item).ok_or(HeadError::BadValue(self.name)));
        }
    }
}

/// Displays addresses as a peer-list header value (`a:p, b:q`), for
/// `w.header_fmt("X-Try-Ultrapeers", format_args!("{}", Peers(&list)))`.
#[derive(Clone, Copy, Debug)]
pub struct Peers<'p>(pub &'p [PeerAddr]);

impl fmt::Display for Peers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            fmt::Display::fmt(p, f)?;
        }
        Ok(())
    }
}

/// Starts the client's opening block, `GNUTELLA CONNECT/0.6`. Add headers, then
/// [`HeadWriter::finish`].
pub fn connect(out: &mut [u8]) -> HeadWriter<'_> {
    HeadWriter::with_start(out, format_args!("GNUTELLA CONNECT/0.6"))
}

/// Starts a status block, `GNUTELLA/0.6 <code> <reason>` (the server's answer, or the
/// client's final `200 OK`). The code must have three digits and the reason no control
/// characters, or [`HeadWriter::finish`] fails.
pub fn status<'b>(out: &'b mut [u8], code: u16, reason: &str) -> HeadWriter<'b> {
    let mut w = HeadWriter::with_start(out, format_args!("GNUTELLA/0.6 {code} {reason}"));
    if !(100..=999).contains(&code) {
        w.fail(super::WriteError::Invalid(
            "status code is not three digits",
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::gnutella::WriteError;
    use std::vec::Vec;

    fn whole(buf: &[u8]) -> (Handshake<'_>, usize) {
        parse(buf, Limits::DEFAULT).unwrap().unwrap()
    }

    // handshaking_0.6 section 3, the sample interaction between a BearShare client and
    // server, all three blocks back to back as each side reads them.
    const SAMPLE_CONNECT: &[u8] =
        b"GNUTELLA CONNECT/0.6\r\nUser-Agent: BearShare\r\nQuery-Routing: 0.2\r\n\r\n";
    const SAMPLE_OK: &[u8] = b"GNUTELLA/0.6 200 OK\r\nUser-Agent: BearShare\r\n\
        Query-Routing: 0.1\r\nBearShare-Data: 5ef89a\r\n\r\n";
    const SAMPLE_FINAL: &[u8] = b"GNUTELLA/0.6 200 OK\r\nBearShare-Data: a04fce\r\n\r\n";

    #[test]
    fn handshaking_0_6_section3_sample_interaction() {
        let (c, n) = whole(SAMPLE_CONNECT);
        assert_eq!(n, SAMPLE_CONNECT.len());
        assert_eq!(c.start, StartLine::Connect(Version::GNUTELLA_0_6));
        assert_eq!(c.user_agent().unwrap().bytes(), b"BearShare");
        assert_eq!(c.headers.get("query-routing").unwrap().bytes(), b"0.2");
        assert_eq!(c.code(), None);

        let (s, _) = whole(SAMPLE_OK);
        assert!(s.is_ok());
        assert_eq!(s.headers.len(), 3);
        assert_eq!(s.headers.get("BEARSHARE-DATA").unwrap().bytes(), b"5ef89a");

        // The final block, then the binary messages: the block stops at its empty line.
        let mut stream = SAMPLE_FINAL.to_vec();
        stream.extend_from_slice(&[0xaa; 23]);
        let (f, n) = whole(&stream);
        assert_eq!(n, SAMPLE_FINAL.len());
        assert_eq!(
            f.start,
            StartLine::Status {
                version: Version::GNUTELLA_0_6,
                code: 200,
                reason: b"OK"
            }
        );
    }

    // ultra-peers section 3.1: a leaf connecting to an ultrapeer, X-Try-Ultrapeers folded
    // over two lines, and the document's own malformed X-Try entry (three octets).
    const LEAF_TO_ULTRAPEER: &[u8] = b"GNUTELLA/0.6 200 OK\r\n\
        X-Ultrapeer: True\r\n\
        X-Ultrapeer-Needed: false\r\n\
        User-Agent: LimeWire 1.9\r\n\
        X-Try-Ultrapeers: 23.35.1.146:6346,\r\n    18.207.63.25:6347\r\n\
        X-Try: 24.37.144:6346, 193.205.63.22:6346\r\n\
        X-My-Address: 10.254.0.16:6346\r\n\
        X-Query-Routing: 0.1\r\n\r\n";

    #[test]
    fn ultra_peers_section3_1_leaf_to_ultrapeer_headers() {
        let (c, _) = whole(
            b"GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: False\r\nUser-Agent: LimeWire 1.9\r\n\
              X-Query-Routing: 0.1\r\nX-My-Address: 10.254.0.16:6349\r\n\r\n",
        );
        assert_eq!(c.ultrapeer(), Ok(Some(false)));
        assert_eq!(
            c.listen_addr(),
            Ok(Some(PeerAddr::v4([10, 254, 0, 16], 6349)))
        );

        let (s, _) = whole(LEAF_TO_ULTRAPEER);
        assert_eq!(s.ultrapeer(), Ok(Some(true)));
        assert_eq!(s.ultrapeer_needed(), Ok(Some(false)));
        assert_eq!(s.query_routing().unwrap().bytes(), b"0.1");
        let tries: Vec<_> = s.try_ultrapeers().collect();
        assert_eq!(
            tries,
            [
                Ok(PeerAddr::v4([23, 35, 1, 146], 6346)),
                Ok(PeerAddr::v4([18, 207, 63, 25], 6347))
            ]
        );
        assert!(s.headers.get("X-Try-Ultrapeers").unwrap().is_folded());
        let tries: Vec<_> = s.try_hosts().collect();
        assert_eq!(
            tries,
            [
                Err(HeadError::BadValue("X-Try")),
                Ok(PeerAddr::v4([193, 205, 63, 22], 6346))
            ]
        );
        assert_eq!(s.headers.len(), 7);
        assert_eq!(s.remote_ip(), Ok(None));
    }

    #[test]
    fn ultra_peers_section3_2_shielded_leaf_refuses_with_503() {
        let (s, _) = whole(
            b"GNUTELLA/0.6 503 I am a shielded leaf node\r\nX-Ultrapeer: False\r\n\
              X-Try-Ultrapeers: 18.2.3.14:6346,\r\n   18.1.17.2:6346\r\n\r\n",
        );
        assert_eq!(
            s.start,
            StartLine::Status {
                version: Version::GNUTELLA_0_6,
                code: code::SERVICE_UNAVAILABLE,
                reason: b"I am a shielded leaf node"
            }
        );
        assert!(!s.is_ok());
        assert_eq!(s.try_ultrapeers().filter(Result::is_ok).count(), 2);
    }

    #[test]
    fn other_headers_parse_and_bad_values_are_typed_errors() {
        let (h, _) = whole(
            b"GNUTELLA CONNECT/0.7\r\nlisten-ip: [2001:db8::1]:6346\r\nRemote-IP: 1.2.3.4\r\n\
              Accept-Encoding: deflate, gzip\r\nContent-Encoding: deflate\r\n\
              X-Ultrapeer: maybe\r\n\r\n",
        );
        // Section 3: higher versions are accepted.
        assert_eq!(h.start, StartLine::Connect(Version { major: 0, minor: 7 }));
        assert_eq!(
            h.listen_addr(),
            Ok(Some(PeerAddr::v6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                6346
            )))
        );
        assert_eq!(h.remote_ip(), Ok(Some(IpAddr::from([1, 2, 3, 4]))));
        assert!(h.accept_encoding().eq([&b"deflate"[..], b"gzip"]));
        assert!(h.content_encoding().unwrap().eq_ignore_case("DEFLATE"));
        assert_eq!(h.ultrapeer(), Err(HeadError::BadValue("X-Ultrapeer")));
        assert_eq!(h.ultrapeer_needed(), Ok(None));

        let (h, _) = whole(b"GNUTELLA/0.6 200 OK\r\nRemote-IP: 1.2.3\r\nX-My-Address: x\r\n\r\n");
        assert_eq!(h.remote_ip(), Err(HeadError::BadValue("Remote-IP")));
        assert_eq!(h.listen_addr(), Err(HeadError::BadValue("X-My-Address")));
        assert_eq!(h.try_ultrapeers().count(), 0);
    }

    #[test]
    fn every_split_point_needs_more_then_completes() {
        // The handshake arrives over TCP in arbitrary pieces: every strict prefix of the
        // block is "need more", and the whole block parses the same whatever follows.
        for block in [SAMPLE_CONNECT, SAMPLE_OK, LEAF_TO_ULTRAPEER] {
            for cut in 0..block.len() {
                assert_eq!(parse(&block[..cut], Limits::DEFAULT), Ok(None), "cut {cut}");
            }
            let mut more = block.to_vec();
            more.extend_from_slice(b"GNUTELLA");
            assert_eq!(
                parse(&more, Limits::DEFAULT).unwrap().map(|(_, n)| n),
                Some(block.len())
            );
        }
    }

    #[test]
    fn malformed_start_lines_are_bad_start_line() {
        for bad in [
            &b"GNUTELLA CONNECT/0.4\n\n"[..],
            b"GNUTELLA CONNECT/\r\n\r\n",
            b"GNUTELLA CONNECT/0.6.1\r\n\r\n",
            b"GNUTELLA CONNECT/256.0\r\n\r\n",
            b"GNUTELLA OK\r\n\r\n",
            b"GNUTELLA/0.6 20 OK\r\n\r\n",
            b"GNUTELLA/0.6 2000 OK\r\n\r\n",
            b"GNUTELLA/0.6 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"\r\n",
        ] {
            let r = parse(bad, Limits::DEFAULT);
            assert!(
                matches!(
                    r,
                    Err(HeadError::BadStartLine) | Err(HeadError::BadLineEnding)
                ),
                "{:?}: {r:?}",
                core::str::from_utf8(bad)
            );
        }
        assert_eq!(
            parse(b"GNUTELLA/0.6 200\r\n\r\n", Limits::DEFAULT)
                .unwrap()
                .unwrap()
                .0
                .code(),
            Some(200)
        );
    }

    #[test]
    fn builder_writes_the_section3_blocks_byte_for_byte() {
        let mut buf = [0u8; 256];
        let mut w = connect(&mut buf);
        w.header("User-Agent", "BearShare").unwrap();
        w.header("Query-Routing", "0.2").unwrap();
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], SAMPLE_CONNECT);

        let mut w = status(&mut buf, 200, "OK");
        w.header("BearShare-Data", "a04fce").unwrap();
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], SAMPLE_FINAL);

        let peers = [
            PeerAddr::v4([18, 2, 3, 14], 6346),
            PeerAddr::v4([18, 1, 17, 2], 6346),
        ];
        let mut w = status(&mut buf, 503, "I am a shielded leaf node");
        w.header("X-Ultrapeer", "False").unwrap();
        w.header_fmt("X-Try-Ultrapeers", format_args!("{}", Peers(&peers)))
            .unwrap();
        let n = w.finish().unwrap();
        assert_eq!(
            &buf[..n],
            b"GNUTELLA/0.6 503 I am a shielded leaf node\r\nX-Ultrapeer: False\r\n\
              X-Try-Ultrapeers: 18.2.3.14:6346,18.1.17.2:6346\r\n\r\n"
        );
        let (h, m) = whole(&buf[..n]);
        assert_eq!(m, n);
        assert!(h.try_ultrapeers().map(Result::unwrap).eq(peers));
    }

    #[test]
    fn builder_refuses_injection_bad_codes_and_small_buffers() {
        let mut buf = [0u8; 128];
        let mut w = connect(&mut buf);
        assert_eq!(
            w.header("User-Agent", "x\r\nX-Ultrapeer: True").err(),
            Some(WriteError::Invalid(
                "header value has CR, LF or a control character"
            ))
        );
        // Sticky: later writes and finish fail too.
        assert!(w.header("A", "b").is_err());
        assert!(w.finish().is_err());

        let mut w = connect(&mut buf);
        assert_eq!(
            w.header("Bad Name", "v").err(),
            Some(WriteError::Invalid("header name is not a token"))
        );
        assert!(status(&mut buf, 1000, "Big").finish().is_err());
        assert!(status(&mut buf, 200, "O\nK").finish().is_err());

        let mut small = [0u8; 22];
        assert_eq!(connect(&mut small).finish(), Err(WriteError::BufferFull));
        let mut exact = [0u8; 24];
        assert_eq!(connect(&mut exact).finish(), Ok(24));
    }
}
