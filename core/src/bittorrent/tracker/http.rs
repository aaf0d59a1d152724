//! BEP 3's HTTP tracker protocol: the announce `GET` with its escaped parameters and the
//! bencoded answer (BEP 23 compact peers, BEP 7 `peers6`, or the list of dictionaries),
//! and the scrape convention (BEP 48), for both the client and the server side.
//!
//! The HTTP framing is the one the Gnutella transfers use ([`crate::gnutella::headers`]):
//! one header-block parser and writer for the crate.

use super::{Announce, AnnounceEvent, Peers, TrackerError, TrackerUrl};
use crate::bencode::{self, Dict};
use crate::bittorrent::magnet::{Encoded, Params};
use crate::gnutella::WriteError;
use crate::gnutella::headers::{HeadWriter, Limits};
use crate::gnutella::http::{PercentEncoded, parse_request, parse_response};

impl From<WriteError> for TrackerError {
    fn from(_: WriteError) -> Self {
        TrackerError::BufferFull
    }
}

/// Writes the announce request for `url` (BEP 3: `info_hash`, `peer_id`, `port`,
/// `uploaded`, `downloaded`, `left`, `event`; with `compact=1` (BEP 23), `numwant`, `key`
/// and the `trackerid` a previous answer gave). HTTP/1.0 with `Connection: close`, so the
/// answer ends with the connection and is never chunked. Returns the bytes written.
pub fn write_announce(
    out: &mut [u8],
    url: &TrackerUrl<'_>,
    a: &Announce,
    tracker_id: Option<&[u8]>,
) -> Result<usize, TrackerError> {
    let sep = if url.path.contains('?') { '&' } else { '?' };
    let mut w = HeadWriter::with_start(
        out,
        format_args!(
            "GET {}{sep}info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&corrupt=0&key={:08X}&compact=1&no_peer_id=1{}{}{}{}{}{} HTTP/1.0",
            url.path,
            PercentEncoded(&a.info_hash),
            PercentEncoded(&a.peer_id),
            a.port,
            a.uploaded,
            a.downloaded,
            a.left,
            a.key,
            if a.event.http_name().is_some() {
                "&event="
            } else {
                ""
            },
            a.event.http_name().unwrap_or(""),
            if a.numwant.is_some() { "&numwant=" } else { "" },
            Num(a.numwant),
            if tracker_id.is_some() {
                "&trackerid="
            } else {
                ""
            },
            PercentEncoded(tracker_id.unwrap_or_default()),
        ),
    );
    finish_request(&mut w, url)?;
    Ok(w.finish()?)
}

/// `Some(n)` as digits, `None` as nothing.
struct Num(Option<u32>);

impl core::fmt::Display for Num {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => Ok(()),
        }
    }
}

fn finish_request(w: &mut HeadWriter<'_>, url: &TrackerUrl<'_>) -> Result<(), TrackerError> {
    match url.host.contains(':') {
        true => w.header_fmt("Host", format_args!("[{}]:{}", url.host, url.port))?,
        false => w.header_fmt("Host", format_args!("{}:{}", url.host, url.port))?,
    };
    w.header("User-Agent", "overlay/0.1")?
        .header("Accept-Encoding", "identity")?
        .header("Connection", "close")?;
    Ok(())
}

/// The scrape path for an announce path (BEP 48): the last segment's `announce` becomes
/// `scrape`; a tracker whose path does not have it has no scrape.
pub fn scrape_path(announce_path: &str) -> Option<(&str, &str)> {
    let last = announce_path.rfind('/')?;
    let segment = &announce_path[last + 1..];
    segment.starts_with("announce").then(|| {
        let (head, tail) = announce_path.split_at(last + 1);
        (head, &tail["announce".len()..])
    })
}

/// Writes a scrape request for `info_hashes` to the tracker at `url` (whose path is an
/// announce path, BEP 48).
pub fn write_scrape(
    out: &mut [u8],
    url: &TrackerUrl<'_>,
    info_hashes: &[[u8; 20]],
) -> Result<usize, TrackerError> {
    let (head, tail) = scrape_path(url.path).ok_or(TrackerError::BadUrl)?;
    struct Hashes<'h>(&'h [[u8; 20]], char);
    impl core::fmt::Display for Hashes<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let mut sep = self.1;
            for h in self.0 {
                write!(f, "{sep}info_hash={}", PercentEncoded(h))?;
                sep = '&';
            }
            Ok(())
        }
    }
    let sep = if tail.contains('?') { '&' } else { '?' };
    let mut w = HeadWriter::with_start(
        out,
        format_args!(
            "GET {head}scrape{tail}{} HTTP/1.0",
            Hashes(info_hashes, sep)
        ),
    );
    finish_request(&mut w, url)?;
    Ok(w.finish()?)
}

/// Reads an HTTP response from the start of `buf`: `Ok(None)` while more may come, else
/// the status code and the body. The body ends at `Content-Length`, or with the connection
/// (`closed`: the peer closed it, so `buf` is all there is).
pub fn read_response(buf: &[u8], closed: bool) -> Result<Option<(u16, &[u8])>, TrackerError> {
    let Some((head, n)) =
        parse_response(buf, Limits::DEFAULT).map_err(|_| TrackerError::BadHttp)?
    else {
        return match closed {
            true => Err(TrackerError::BadHttp),
            false => Ok(None),
        };
    };
    if head
        .headers
        .get("Transfer-Encoding")
        .is_some_and(|v| !v.eq_ignore_case("identity"))
    {
        return Err(TrackerError::BadHttp);
    }
    let body = &buf[n..];
    match head.headers.get("Content-Length") {
        Some(len) => {
            let len = len.to_u64().ok_or(TrackerError::BadHttp)?;
            match usize::try_from(len).ok().and_then(|l| body.get(..l)) {
                Some(body) => Ok(Some((head.code, body))),
                None if closed => Err(TrackerError::BadHttp),
                None => Ok(None),
            }
        }
        None if closed => Ok(Some((head.code, body))),
        None => Ok(None),
    }
}

/// A tracker's answer to an announce.
#[derive(Clone, Debug)]
pub enum Reply<'a> {
    /// `failure reason`: the announce was refused; nothing else in the answer counts.
    Failure(&'a [u8]),
    /// The swarm's peers and when to announce again.
    Announce(AnnounceReply<'a>),
}

/// A successful announce answer (BEP 3, with BEP 23's and BEP 7's peer forms).
#[derive(Clone, Debug)]
pub struct AnnounceReply<'a> {
    /// Seconds until the next regular announce (`None` when the tracker left it out).
    pub interval: Option<u32>,
    /// Seconds the tracker wants between announces at least.
    pub min_interval: Option<u32>,
    /// An id to send back in later announces.
    pub tracker_id: Option<&'a [u8]>,
    /// Seeders in the swarm.
    pub complete: Option<u32>,
    /// Leechers in the swarm.
    pub incomplete: Option<u32>,
    /// `warning message`: shown to the user; the announce still counts.
    pub warning: Option<&'a [u8]>,
    /// The peers.
    pub peers: Peers<'a>,
}

fn count(d: &Dict<'_>, key: &[u8]) -> Option<u32> {
    d.get_int(key).and_then(|n| u32::try_from(n).ok())
}

/// Parses an announce answer's body.
pub fn parse_reply(body: &[u8]) -> Result<Reply<'_>, TrackerError> {
    let d = bencode::decode(body)
        .ok()
        .and_then(|v| v.as_dict())
        .ok_or(TrackerError::BadBencode)?;
    if let Some(reason) = d.get_bytes(b"failure reason") {
        return Ok(Reply::Failure(reason));
    }
    let mut peers = Peers::compact(
        d.get_bytes(b"peers").unwrap_or_default(),
        d.get_bytes(b"peers6").unwrap_or_default(),
    );
    if let Some(list) = d.get_list(b"peers") {
        peers = peers.with_dicts(list.iter());
    }
    Ok(Reply::Announce(AnnounceReply {
        interval: count(&d, b"interval"),
        min_interval: count(&d, b"min interval"),
        tracker_id: d.get_bytes(b"tracker id"),
        complete: count(&d, b"complete"),
        incomplete: count(&d, b"incomplete"),
        warning: d.get_bytes(b"warning message"),
        peers,
    }))
}

/// What a request to a tracker asks for.
#[derive(Clone, Debug)]
pub enum Request<'a> {
    /// An announce (a path ending in `/announce`).
    Announce(AnnounceQuery),
    /// A scrape (a path ending in `/scrape`): the torrents named by its `info_hash`
    /// parameters, all of them when there are none.
    Scrape(ScrapeQuery<'a>),
    /// Any other path.
    NotFound,
}

/// An announce as a tracker reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceQuery {
    /// The parameters shared with BEP 15 (`key` 0 when absent).
    pub announce: Announce,
    /// `compact=0`: the client asked for the list of dictionaries (BEP 23).
    pub dict_peers: bool,
    /// `no_peer_id=1`: dictionaries without `peer id`.
    pub no_peer_id: bool,
}

/// A scrape's torrents, still percent-encoded.
#[derive(Clone, Debug)]
pub struct ScrapeQuery<'a>(&'a [u8]);

impl Iterator for ScrapeQuery<'_> {
    type Item = [u8; 20];
    fn next(&mut self) -> Option<[u8; 20]> {
        let mut params = Params(self.0);
        let found = params.find_map(|(k, v)| (k == b"info_hash").then(|| hash20(v)));
        self.0 = params.0;
        found?.ok()
    }
}

/// Reads a request block from the start of `buf`: `Ok(None)` until it is complete; the
/// request and the bytes it took.
pub fn read_request(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, TrackerError> {
    let Some((head, n)) = parse_request(buf, Limits::DEFAULT).map_err(|_| TrackerError::BadHttp)?
    else {
        return Ok(None);
    };
    let (path, query) = match head.uri.iter().position(|&b| b == b'?') {
        Some(at) => (&head.uri[..at], &head.uri[at + 1..]),
        None => (head.uri, &b""[..]),
    };
    let request = if path.ends_with(b"/announce") {
        Request::Announce(parse_announce(query)?)
    } else if path.ends_with(b"/scrape") {
        // Every hash must decode, so the iterator never stops early on a bad one.
        if Params(query).any(|(k, v)| k == b"info_hash" && hash20(v).is_err()) {
            return Err(TrackerError::BadRequest);
        }
        Request::Scrape(ScrapeQuery(query))
    } else {
        Request::NotFound
    };
    Ok(Some((request, n)))
}

/// A percent-encoded 20-byte value (`info_hash`, `peer_id`).
fn hash20(v: &[u8]) -> Result<[u8; 20], TrackerError> {
    let mut out = [0u8; 20];
    let decoded = Encoded::new(v)
        .and_then(|e| e.decode(&mut out[..]).map(|d| d.len()))
        .map_err(|_| TrackerError::BadRequest)?;
    match decoded {
        20 => Ok(out),
        _ => Err(TrackerError::BadRequest),
    }
}

fn parse_announce(query: &[u8]) -> Result<AnnounceQuery, TrackerError> {
    let bad = TrackerError::BadRequest;
    let (mut info_hash, mut peer_id, mut port) = (None, None, None);
    let mut a = AnnounceQuery {
        announce: Announce {
            info_hash: [0; 20],
            peer_id: [0; 20],
            port: 0,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: AnnounceEvent::Empty,
            numwant: None,
            key: 0,
        },
        dict_peers: false,
        no_peer_id: false,
    };
    let num = |v: &[u8]| -> Result<u64, TrackerError> {
        core::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(bad)
    };
    for (k, v) in Params(query) {
        match k {
            b"info_hash" => info_hash = Some(hash20(v)?),
            b"peer_id" => peer_id = Some(hash20(v)?),
            b"port" => port = Some(u16::try_from(num(v)?).map_err(|_| bad)?),
            b"uploaded" => a.announce.uploaded = num(v)?,
            b"downloaded" => a.announce.downloaded = num(v)?,
            b"left" => a.announce.left = num(v)?,
            b"event" => a.announce.event = AnnounceEvent::from_http(v).ok_or(bad)?,
            b"numwant" => a.announce.numwant = u32::try_from(num(v)?).ok(),
            b"key" => {
                let text = core::str::from_utf8(v).map_err(|_| bad)?;
                a.announce.key = u32::from_str_radix(text, 16).unwrap_or(0);
            }
            b"compact" => a.dict_peers = v == b"0",
            b"no_peer_id" => a.no_peer_id = v == b"1",
            _ => {}
        }
    }
    a.announce.info_hash = info_hash.ok_or(bad)?;
    a.announce.peer_id = peer_id.ok_or(bad)?;
    a.announce.port = port.filter(|&p| p != 0).ok_or(bad)?;
    Ok(a)
}

/// Writes a complete `200 OK` answer carrying `body` (bencoded), or a status without a
/// body, and `Connection: close`. Returns the bytes written.
pub fn write_answer(out: &mut [u8], code: u16, body: &[u8]) -> Result<usize, TrackerError> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let mut w = crate::gnutella::http::response(out, code, reason);
    w.header("Content-Type", "text/plain")?
        .header_fmt("Content-Length", format_args!("{}", body.len()))?
        .header("Connection", "close")?;
    let n = w.finish()?;
    let end = n.checked_add(body.len()).ok_or(TrackerError::BufferFull)?;
    out.get_mut(n..end)
        .ok_or(TrackerError::BufferFull)?
        .copy_from_slice(body);
    Ok(end)
}
