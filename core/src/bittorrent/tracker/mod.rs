//! Trackers: how a swarm member learns its peers from a central rendezvous (BEP 3's
//! "Trackers" section), over HTTP ([`http`], with BEP 23's compact peer lists and BEP 7's
//! `peers6`) or over UDP ([`udp`], BEP 15), from both sides:
//!
//! - [`Announcer`], the client: announces one torrent to its trackers on their schedule
//!   (`interval`, `min interval`, BEP 15's retransmission backoff) and hands out the peers
//!   they return;
//! - [`Tracker`], the server: swarms of announced peers, expired when they stop
//!   announcing, served over HTTP (announce and scrape) and UDP (connect, announce,
//!   scrape).
//!
//! Both are [`crate::machine::Machine`]s: the driver carries the bytes (the TCP connection
//! of an HTTP request, the UDP datagrams) and resolves trackers' host names.

mod announcer;
pub mod http;
mod server;
pub mod udp;

pub use announcer::{Announcer, AnnouncerConfig, AnnouncerEvent, AnnouncerStats, Failure};
pub use server::{Tracker, TrackerConfig, TrackerStats};

use crate::PeerAddr;
use crate::bencode::ListIter;
use core::fmt;

/// What an announce tells the tracker about the announcing peer (BEP 3, BEP 15).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum AnnounceEvent {
    /// A regular announce.
    #[default]
    Empty,
    /// The download finished.
    Completed,
    /// The first announce.
    Started,
    /// The peer is leaving the swarm.
    Stopped,
}

impl AnnounceEvent {
    /// BEP 15's number for it: 0 none, 1 completed, 2 started, 3 stopped.
    pub const fn to_udp(self) -> u32 {
        self as u32
    }

    /// The event with BEP 15's number `n`.
    pub const fn from_udp(n: u32) -> Option<Self> {
        match n {
            0 => Some(AnnounceEvent::Empty),
            1 => Some(AnnounceEvent::Completed),
            2 => Some(AnnounceEvent::Started),
            3 => Some(AnnounceEvent::Stopped),
            _ => None,
        }
    }

    /// BEP 3's `event` parameter (none for a regular announce).
    pub const fn http_name(self) -> Option<&'static str> {
        match self {
            AnnounceEvent::Empty => None,
            AnnounceEvent::Completed => Some("completed"),
            AnnounceEvent::Started => Some("started"),
            AnnounceEvent::Stopped => Some("stopped"),
        }
    }

    /// The event named by BEP 3's `event` parameter (`empty` and absent are regular).
    pub fn from_http(name: &[u8]) -> Option<Self> {
        match name {
            b"" | b"empty" => Some(AnnounceEvent::Empty),
            b"completed" => Some(AnnounceEvent::Completed),
            b"started" => Some(AnnounceEvent::Started),
            b"stopped" => Some(AnnounceEvent::Stopped),
            _ => None,
        }
    }
}

/// One announce: the torrent, who is asking, and its totals so far (BEP 3's request
/// parameters; BEP 15 carries the same fields).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Announce {
    /// The torrent.
    pub info_hash: [u8; 20],
    /// The announcing peer's id.
    pub peer_id: [u8; 20],
    /// The port it accepts peer connections on.
    pub port: u16,
    /// Bytes uploaded since the `started` announce.
    pub uploaded: u64,
    /// Bytes downloaded since the `started` announce.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Why it announces.
    pub event: AnnounceEvent,
    /// How many peers it wants (`None`: the tracker's default).
    pub numwant: Option<u32>,
    /// A number that stays the same across the peer's announces, so a tracker can tell it
    /// is the same peer when its address changes.
    pub key: u32,
}

/// How a tracker is reached, from its URL (`http://host:port/path`, `udp://host:port`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TrackerUrl<'a> {
    /// HTTP or UDP.
    pub scheme: Scheme,
    /// The host, as written (a name the driver resolves, or an IP literal; IPv6 literals
    /// without their brackets).
    pub host: &'a str,
    /// The port (80 for HTTP when the URL names none).
    pub port: u16,
    /// HTTP's path and query, `/` when empty; BEP 15's URLs have no use for it.
    pub path: &'a str,
}

/// The transport a tracker speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scheme {
    /// BEP 3: `GET` over HTTP.
    Http,
    /// BEP 15: UDP.
    Udp,
}

impl<'a> TrackerUrl<'a> {
    /// Parses an `http://` or `udp://` tracker URL. `https://` is refused: TLS is the
    /// driver's, and a tracker that only speaks it needs another transport.
    pub fn parse(url: &'a str) -> Result<Self, TrackerError> {
        let bad = TrackerError::BadUrl;
        let (scheme, rest) = if let Some(rest) = strip_ignore_case(url, "http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = strip_ignore_case(url, "udp://") {
            (Scheme::Udp, rest)
        } else {
            return Err(TrackerError::UnsupportedScheme);
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(bad)?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match (port, scheme) {
            (Some(p), _) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or(bad)?,
            (None, Scheme::Http) => 80,
            (None, Scheme::Udp) => return Err(bad),
        };
        let host_ok = |c: char| c.is_ascii_alphanumeric() || "-._:".contains(c);
        if host.is_empty()
            || !host.chars().all(host_ok)
            || !path.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(bad);
        }
        Ok(TrackerUrl {
            scheme,
            host,
            port,
            path,
        })
    }
}

fn strip_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Why a tracker exchange failed.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrackerError {
    /// The URL is neither `http://` nor `udp://`.
    UnsupportedScheme,
    /// The URL has no usable host or port.
    BadUrl,
    /// The HTTP response is malformed, not a 200, or chunked (we ask HTTP/1.0).
    BadHttp,
    /// The body is not the bencoded dictionary BEP 3 describes.
    BadBencode,
    /// A BEP 15 packet of the wrong size or action.
    BadPacket,
    /// A request is missing a parameter or has one out of range.
    BadRequest,
    /// The caller's buffer is too small.
    BufferFull,
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrackerError::UnsupportedScheme => "tracker URL is neither http:// nor udp://",
            TrackerError::BadUrl => "tracker URL has no usable host and port",
            TrackerError::BadHttp => "malformed or unsuccessful HTTP response",
            TrackerError::BadBencode => "tracker response is not a bencoded dictionary",
            TrackerError::BadPacket => "malformed BEP 15 packet",
            TrackerError::BadRequest => "announce request missing or bad parameter",
            TrackerError::BufferFull => "tracker output buffer full",
        })
    }
}

impl core::error::Error for TrackerError {}

/// The peers of a tracker's answer, in whichever form it came: BEP 23's compact strings
/// (6 bytes per IPv4 peer, 18 per IPv6 one: BEP 7's `peers6`, BEP 15 over IPv6) or BEP 3's
/// list of dictionaries. Entries that are not a peer are skipped.
#[derive(Clone, Debug)]
pub struct Peers<'a> {
    compact4: &'a [u8],
    compact6: &'a [u8],
    dicts: Option<ListIter<'a>>,
}

impl<'a> Peers<'a> {
    /// Compact IPv4 and IPv6 entries; a trailing partial entry is ignored.
    pub const fn compact(v4: &'a [u8], v6: &'a [u8]) -> Self {
        Peers {
            compact4: v4,
            compact6: v6,
            dicts: None,
        }
    }

    pub(crate) fn with_dicts(mut self, list: ListIter<'a>) -> Self {
        self.dicts = Some(list);
        self
    }
}

impl Iterator for Peers<'_> {
    type Item = PeerAddr;
    fn next(&mut self) -> Option<PeerAddr> {
        if let Some((entry, rest)) = self.compact4.split_first_chunk::<6>() {
            self.compact4 = rest;
            let [a, b, c, d, p0, p1] = *entry;
            return Some(PeerAddr::v4([a, b, c, d], u16::from_be_bytes([p0, p1])));
        }
        self.compact4 = &[];
        if let Some((entry, rest)) = self.compact6.split_first_chunk::<18>() {
            self.compact6 = rest;
            let (ip, port) = entry.split_at(16);
            let ip: [u8; 16] = ip.try_into().unwrap_or_default();
            return Some(PeerAddr::v6(ip, u16::from_be_bytes([port[0], port[1]])));
        }
        self.compact6 = &[];
        for entry in self.dicts.as_mut()? {
            if let Some(peer) = entry.as_dict().and_then(|d| {
                let ip: core::net::IpAddr = d.get_str(b"ip")?.parse().ok()?;
                let port = u16::try_from(d.get_int(b"port")?).ok()?;
                Some(PeerAddr::from(core::net::SocketAddr::new(ip, port)))
            }) {
                return Some(peer);
            }
        }
        None
    }
}

/// Writes `peer` in BEP 23's compact form (6 bytes for IPv4, 18 for IPv6) at the start of
/// `out`; returns the bytes written.
pub fn write_compact(peer: PeerAddr, out: &mut [u8]) -> Option<usize> {
    let mut canonical = [0u8; 18];
    let n = peer.write_canonical(&mut canonical);
    out.get_mut(..n)?.copy_from_slice(&canonical[..n]);
    Some(n)
}

#[cfg(test)]
mod tests;
