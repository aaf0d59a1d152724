//! BEP 15, the UDP tracker protocol: `connect` (a connection id that proves the client's
//! address), `announce`, `scrape` and `error`, all big-endian, each request and answer
//! matched by a transaction id.

use super::{Announce, AnnounceEvent, Peers, TrackerError};

/// The magic `protocol_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// BEP 15's actions.
const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// Bytes of an announce request (BEP 15's table, offsets 0 to 98).
pub const ANNOUNCE_LEN: usize = 98;
/// The most info hashes one scrape may name ("up to about 74").
pub const MAX_SCRAPE: usize = 74;

/// A client's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Asks for a connection id.
    Connect {
        /// Transaction id.
        tid: u32,
    },
    /// An announce.
    Announce {
        /// From the connect answer.
        conn_id: u64,
        /// Transaction id.
        tid: u32,
        /// The announce.
        announce: Announce,
    },
    /// A scrape of the torrents in `info_hashes` (20 bytes each).
    Scrape {
        /// From the connect answer.
        conn_id: u64,
        /// Transaction id.
        tid: u32,
        /// Up to [`MAX_SCRAPE`] info hashes.
        info_hashes: &'a [u8],
    },
}

/// A tracker's answer.
#[derive(Clone, Debug)]
pub enum Response<'a> {
    /// A connection id, valid for a minute.
    Connect {
        /// Transaction id.
        tid: u32,
        /// The id.
        conn_id: u64,
    },
    /// The swarm's peers.
    Announce {
        /// Transaction id.
        tid: u32,
        /// Seconds until the next announce.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// The peers: 6-byte entries over IPv4, 18-byte ones over IPv6.
        peers: Peers<'a>,
    },
    /// Per torrent: seeders, completed, leechers (12 bytes each, in the order asked).
    Scrape {
        /// Transaction id.
        tid: u32,
        /// The entries.
        entries: &'a [u8],
    },
    /// The request failed.
    Error {
        /// Transaction id.
        tid: u32,
        /// Why.
        message: &'a [u8],
    },
}

impl Response<'_> {
    /// Its transaction id.
    pub fn tid(&self) -> u32 {
        match *self {
            Response::Connect { tid, .. }
            | Response::Announce { tid, .. }
            | Response::Scrape { tid, .. }
            | Response::Error { tid, .. } => tid,
        }
    }
}

/// A big-endian reader over a packet that never panics.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], TrackerError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(TrackerError::BadPacket)?;
        self.0 = rest;
        Ok(*head)
    }
    fn u16(&mut self) -> Result<u16, TrackerError> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, TrackerError> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, TrackerError> {
        self.take().map(u64::from_be_bytes)
    }
}

/// A big-endian writer into a caller's buffer.
struct Writer<'b> {
    out: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    fn new(out: &'b mut [u8]) -> Self {
        Writer { out, len: 0 }
    }
    fn put(&mut self, bytes: &[u8]) -> Result<&mut Self, TrackerError> {
        let end = self.len + bytes.len();
        self.out
            .get_mut(self.len..end)
            .ok_or(TrackerError::BufferFull)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(self)
    }
    fn u32(&mut self, v: u32) -> Result<&mut Self, TrackerError> {
        self.put(&v.to_be_bytes())
    }
    fn u64(&mut self, v: u64) -> Result<&mut Self, TrackerError> {
        self.put(&v.to_be_bytes())
    }
}

impl<'a> Request<'a> {
    /// Reads a request. A connect must carry [`PROTOCOL_ID`]; an announce is at least 98
    /// bytes (BEP 41's options after it are ignored).
    pub fn decode(packet: &'a [u8]) -> Result<Self, TrackerError> {
        let mut r = Reader(packet);
        let (conn_id, action, tid) = (r.u64()?, r.u32()?, r.u32()?);
        match action {
            CONNECT if conn_id == PROTOCOL_ID => Ok(Request::Connect { tid }),
            ANNOUNCE => {
                let info_hash = r.take()?;
                let peer_id = r.take()?;
                let (downloaded, left, uploaded) = (r.u64()?, r.u64()?, r.u64()?);
                let event = AnnounceEvent::from_udp(r.u32()?).ok_or(TrackerError::BadPacket)?;
                let _ip = r.u32()?;
                let key = r.u32()?;
                let numwant = r.u32()?;
                let port = r.u16()?;
                Ok(Request::Announce {
                    conn_id,
                    tid,
                    announce: Announce {
                        info_hash,
                        peer_id,
                        port,
                        uploaded,
                        downloaded,
                        left,
                        event,
                        // -1 (all ones) asks for the default.
                        numwant: (numwant != u32::MAX).then_some(numwant),
                        key,
                    },
                })
            }
            SCRAPE => {
                let hashes = r.0;
                if hashes.is_empty() || hashes.len() % 20 != 0 || hashes.len() / 20 > MAX_SCRAPE {
                    return Err(TrackerError::BadPacket);
                }
                Ok(Request::Scrape {
                    conn_id,
                    tid,
                    info_hashes: hashes,
                })
            }
            _ => Err(TrackerError::BadPacket),
        }
    }

    /// Writes the request; returns its bytes.
    pub fn encode<'b>(&self, out: &'b mut [u8]) -> Result<&'b [u8], TrackerError> {
        let mut w = Writer::new(out);
        match *self {
            Request::Connect { tid } => {
                w.u64(PROTOCOL_ID)?.u32(CONNECT)?.u32(tid)?;
            }
            Request::Announce {
                conn_id,
                tid,
                announce: a,
            } => {
                w.u64(conn_id)?.u32(ANNOUNCE)?.u32(tid)?;
                w.put(&a.info_hash)?.put(&a.peer_id)?;
                w.u64(a.downloaded)?.u64(a.left)?.u64(a.uploaded)?;
                w.u32(a.event.to_udp())?.u32(0)?.u32(a.key)?;
                w.u32(a.numwant.unwrap_or(u32::MAX))?
                    .put(&a.port.to_be_bytes())?;
            }
            Request::Scrape {
                conn_id,
                tid,
                info_hashes,
            } => {
                w.u64(conn_id)?.u32(SCRAPE)?.u32(tid)?.put(info_hashes)?;
            }
        }
        let len = w.len;
        Ok(&w.out[..len])
    }
}

impl<'a> Response<'a> {
    /// Reads an answer. `v6`: the request went over IPv6, so peers are 18 bytes each.
    pub fn decode(packet: &'a [u8], v6: bool) -> Result<Self, TrackerError> {
        let mut r = Reader(packet);
        let (action, tid) = (r.u32()?, r.u32()?);
        match action {
            CONNECT => Ok(Response::Connect {
                tid,
                conn_id: r.u64()?,
            }),
            ANNOUNCE => {
                let (interval, leechers, seeders) = (r.u32()?, r.u32()?, r.u32()?);
                let peers = match v6 {
                    false => Peers::compact(r.0, &[]),
                    true => Peers::compact(&[], r.0),
                };
                Ok(Response::Announce {
                    tid,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            SCRAPE if r.0.len() % 12 == 0 => Ok(Response::Scrape { tid, entries: r.0 }),
            ERROR => Ok(Response::Error { tid, message: r.0 }),
            _ => Err(TrackerError::BadPacket),
        }
    }
}

/// Writes a connect answer.
pub fn write_connect(out: &mut [u8], tid: u32, conn_id: u64) -> Result<&[u8], TrackerError> {
    let mut w = Writer::new(out);
    w.u32(CONNECT)?.u32(tid)?.u64(conn_id)?;
    let len = w.len;
    Ok(&w.out[..len])
}

/// Writes an announce answer's header; the caller appends the compact peers after the
/// 20 bytes it takes.
pub fn write_announce_head(
    out: &mut [u8],
    tid: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
) -> Result<usize, TrackerError> {
    let mut w = Writer::new(out);
    w.u32(ANNOUNCE)?
        .u32(tid)?
        .u32(interval)?
        .u32(leechers)?
        .u32(seeders)?;
    Ok(w.len)
}

/// Writes a scrape answer's header; the caller appends 12 bytes per torrent.
pub fn write_scrape_head(out: &mut [u8], tid: u32) -> Result<usize, TrackerError> {
    let mut w = Writer::new(out);
    w.u32(SCRAPE)?.u32(tid)?;
    Ok(w.len)
}

/// Writes an error answer.
pub fn write_error<'b>(
    out: &'b mut [u8],
    tid: u32,
    message: &str,
) -> Result<&'b [u8], TrackerError> {
    let mut w = Writer::new(out);
    w.u32(ERROR)?.u32(tid)?.put(message.as_bytes())?;
    let len = w.len;
    Ok(&w.out[..len])
}
