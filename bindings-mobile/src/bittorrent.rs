//! BitTorrent for Kotlin and Swift: [`TorrentSession`] wraps
//! `overlay_core::bittorrent::session::Session`, one torrent over TCP connections (BEP 3
//! peer wire with BEP 6 and BEP 10; see docs/bittorrent.md), a stream protocol like
//! Gnutella.
//!
//! Storage stays with the app: the session asks it to store a block (`Write`), to hash a
//! complete piece (`Verify`, answered with `piece_checked`, or `piece_lost` when its
//! storage failed) and to read a block for upload (`Read`, answered with `send_block`).
//! [`torrent_info`] reads a `.torrent` file's layout for the app's storage.

use crate::common::{Driver, OverlayError, SocketAddress, bytes20, peer, stream_output};
use overlay_core::ConnId;
use overlay_core::bittorrent::metainfo::Metainfo;
use overlay_core::bittorrent::session::{CloseReason, Config, Event, Session};
use overlay_core::bittorrent::wire::BlockRequest;
use std::sync::Arc;

/// Pieces at most (4096 pieces of 1 MiB: 4 GiB), blocks per piece at most (64 of 16 KiB:
/// 1 MiB pieces) and connections at once: the host node's figures. The machine a
/// `TorrentSession` wraps.
pub type Machine = Session<4096, 64, 64>;

/// The most bytes one `received` call takes (half the session's receive buffer).
#[uniffi::export]
pub fn torrent_max_read() -> u32 {
    Machine::MAX_READ as u32
}

/// One file of a torrent's content.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TorrentFile {
    /// Its path components, outermost first (below the torrent's name in multi-file
    /// mode); each is checked not to leave the download directory.
    pub path: Vec<String>,
    /// Its size in bytes.
    pub length: u64,
    /// Where its bytes start in the content (pieces span files).
    pub offset: u64,
}

/// What a `.torrent` file describes.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TorrentInfo {
    /// SHA-1 of the bencoded `info` dictionary (20 bytes).
    pub info_hash: Vec<u8>,
    /// The suggested name (a file, or the directory of a multi-file torrent).
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u64,
    /// Pieces.
    pub piece_count: u32,
    /// The content's length in bytes.
    pub total_length: u64,
    /// The files, in content order.
    pub files: Vec<TorrentFile>,
    /// Whether it is a single file (`name` is the file).
    pub single_file: bool,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses a `.torrent` argument.
fn metainfo(torrent: &[u8]) -> Result<Metainfo<'_>, OverlayError> {
    Metainfo::parse(torrent)
        .map_err(|e| OverlayError::InvalidArgument(format!("not a torrent: {e}")))
}

/// Reads a `.torrent` file (BEP 3 metainfo).
#[uniffi::export]
pub fn torrent_info(torrent: Vec<u8>) -> Result<TorrentInfo, OverlayError> {
    let m = metainfo(&torrent)?;
    Ok(TorrentInfo {
        info_hash: m.info_hash().to_vec(),
        name: text(m.name()),
        piece_length: m.piece_length(),
        piece_count: m.piece_count() as u32,
        total_length: m.total_length(),
        files: m
            .files()
            .map(|f| TorrentFile {
                path: f.path.components().map(text).collect(),
                length: f.length,
                offset: f.offset,
            })
            .collect(),
        single_file: m.is_single_file(),
    })
}

/// SHA-1 of `data`: a piece's hash, for `Verify`, where the platform has none at hand
/// (Android has `MessageDigest`, iOS `Insecure.SHA1`; Swift on Linux has neither).
#[uniffi::export]
pub fn sha1(data: Vec<u8>) -> Vec<u8> {
    use sha1::Digest;
    sha1::Sha1::digest(&data).to_vec()
}

/// Settings of a session beyond the torrent itself.
#[derive(Clone, Debug, uniffi::Record)]
pub struct TorrentConfig {
    /// Our 20-byte peer id (BEP 20 style, e.g. `-OV0001-` and 12 random bytes).
    pub peer_id: Vec<u8>,
    /// Connections at once, in and out (at most 64).
    pub max_connections: u32,
    /// Whether we upload at all (`false`: never unchoke anyone).
    pub serve: bool,
}

/// A block of a piece: `length` bytes at `begin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TorrentBlock {
    /// The piece.
    pub piece: u32,
    /// Offset in the piece.
    pub begin: u32,
    /// Length (16 KiB but for a piece's last block).
    pub length: u32,
}

impl From<BlockRequest> for TorrentBlock {
    fn from(b: BlockRequest) -> Self {
        TorrentBlock {
            piece: b.index,
            begin: b.begin,
            length: b.length,
        }
    }
}

impl From<TorrentBlock> for BlockRequest {
    fn from(b: TorrentBlock) -> Self {
        BlockRequest {
            index: b.piece,
            begin: b.begin,
            length: b.length,
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum TorrentCloseReason {
    /// The remote end closed it.
    Remote,
    /// It could not be established.
    Unreachable,
    /// The handshake did not finish in time.
    Timeout,
    /// Nothing arrived for too long.
    Idle,
    /// The remote broke the protocol; `detail` says how.
    Protocol { detail: String },
    /// The remote serves another torrent.
    WrongTorrent,
    /// We dialled ourselves.
    SelfConnection,
    /// We already talk to that peer.
    Duplicate,
    /// The peer's IP is banned for corrupt data.
    Banned,
    /// Both ends are seeds: nothing to trade.
    BothSeeds,
    /// The remote read too slowly for our send buffer.
    SendBufferFull,
    /// We closed it (`disconnect`).
    Local,
}

impl From<CloseReason> for TorrentCloseReason {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::Remote => TorrentCloseReason::Remote,
            CloseReason::Unreachable => TorrentCloseReason::Unreachable,
            CloseReason::Timeout => TorrentCloseReason::Timeout,
            CloseReason::Idle => TorrentCloseReason::Idle,
            CloseReason::Protocol(v) => TorrentCloseReason::Protocol {
                detail: v.to_string(),
            },
            CloseReason::WrongTorrent => TorrentCloseReason::WrongTorrent,
            CloseReason::SelfConnection => TorrentCloseReason::SelfConnection,
            CloseReason::Duplicate => TorrentCloseReason::Duplicate,
            CloseReason::Banned => TorrentCloseReason::Banned,
            CloseReason::BothSeeds => TorrentCloseReason::BothSeeds,
            CloseReason::SendBufferFull => TorrentCloseReason::SendBufferFull,
            CloseReason::Local => TorrentCloseReason::Local,
        }
    }
}

/// What a session reports.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum TorrentEvent {
    /// Store `data` at `piece * piece_length + begin`.
    Write {
        piece: u32,
        begin: u32,
        data: Vec<u8>,
    },
    /// Every block of `piece` is stored: hash what was stored, compare with `hash` (its
    /// SHA-1 from the metainfo) and call `piece_checked` (`piece_lost` if storage failed).
    Verify { piece: u32, hash: Vec<u8> },
    /// Read `block` and hand it to `send_block` for `conn` (after draining the outputs).
    Read { conn: u64, block: TorrentBlock },
    /// A peer finished its handshake.
    Connected {
        conn: u64,
        peer: SocketAddress,
        peer_id: Vec<u8>,
    },
    /// A connection ended (no `closed` report is due for it).
    Closed {
        conn: u64,
        peer: SocketAddress,
        reason: TorrentCloseReason,
    },
    /// The last piece passed its check: we are a seed.
    Complete,
}

impl From<Event<'_>> for TorrentEvent {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Write { piece, begin, data } => TorrentEvent::Write {
                piece,
                begin,
                data: data.to_vec(),
            },
            Event::Verify { piece, hash } => TorrentEvent::Verify {
                piece,
                hash: hash.to_vec(),
            },
            Event::Read { conn, block } => TorrentEvent::Read {
                conn: conn.raw(),
                block: block.into(),
            },
            Event::Connected {
                conn,
                peer,
                peer_id,
            } => TorrentEvent::Connected {
                conn: conn.raw(),
                peer: peer.into(),
                peer_id: peer_id.to_vec(),
            },
            Event::Closed { conn, peer, reason } => TorrentEvent::Closed {
                conn: conn.raw(),
                peer: peer.into(),
                reason: reason.into(),
            },
            Event::Complete => TorrentEvent::Complete,
        }
    }
}

stream_output!(
    /// One output of a torrent session.
    TorrentOutput,
    TorrentEvent
);

/// One connected peer.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TorrentPeer {
    /// The connection.
    pub conn: u64,
    /// The remote.
    pub addr: SocketAddress,
    /// We choke it (it may not download from us).
    pub am_choking: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// We want pieces it has.
    pub am_interested: bool,
    /// It wants pieces we have.
    pub peer_interested: bool,
    /// Pieces it has.
    pub pieces: u32,
    /// It unchoked us but sent nothing for a minute.
    pub snubbed: bool,
    /// It sent data of a piece that failed its check.
    pub parole: bool,
    /// Bytes per second we download from it.
    pub download_rate: u64,
    /// Bytes per second we upload to it.
    pub upload_rate: u64,
}

/// A session's state and counters.
#[derive(Clone, Debug, uniffi::Record)]
pub struct TorrentStatus {
    /// Pieces we have (checked).
    pub have: u32,
    /// Pieces in the torrent.
    pub pieces: u32,
    /// Whether we have every piece.
    pub complete: bool,
    /// The connected peers.
    pub peers: Vec<TorrentPeer>,
    /// Payload bytes received in blocks we asked for.
    pub downloaded: u64,
    /// Payload bytes received that were not needed (end-game duplicates, late blocks).
    pub wasted: u64,
    /// Payload bytes uploaded.
    pub uploaded: u64,
    /// Pieces that failed their check.
    pub hash_failures: u64,
    /// Peers banned for corrupt data.
    pub banned: u64,
    /// Connections closed for breaking the protocol.
    pub violations: u64,
    /// Requests refused (choked, unknown piece, over the limit, not serving).
    pub refused_requests: u64,
    /// Inputs that made no sense now (dropped).
    pub ignored: u64,
}

/// One torrent shared with peers over TCP. Thread-safe; report what happens on its
/// connections, act on what `poll_output` gives until it says `Wait`.
#[derive(uniffi::Object)]
pub struct TorrentSession {
    driver: Driver<Machine>,
}

#[uniffi::export]
impl TorrentSession {
    /// A session for the torrent in `torrent` (a `.torrent` file's bytes), with nothing
    /// had and no peers. Pieces already in storage are announced with `have_piece` after
    /// the app checked them. `seed` seeds its random generator.
    #[uniffi::constructor]
    pub fn new(
        torrent: Vec<u8>,
        config: TorrentConfig,
        seed: u64,
    ) -> Result<Arc<Self>, OverlayError> {
        let peer_id = bytes20(&config.peer_id, "a peer id")?;
        let driver = Driver::build(|| {
            let adjust = |core| Config {
                max_connections: config.max_connections as usize,
                serve: config.serve,
                ..core
            };
            Ok(Machine::from_metainfo_with(
                &metainfo(&torrent)?,
                peer_id,
                seed,
                adjust,
            )?)
        })?;
        Ok(Arc::new(TorrentSession { driver }))
    }

    /// Dials a peer at `to`: a `Connect` output with the returned id follows.
    pub fn add_peer(&self, now_us: u64, to: SocketAddress) -> Result<u64, OverlayError> {
        let to = peer(&to)?;
        self.driver
            .run(now_us, |m, now| Ok(m.add_peer(now, to)?.raw()))
    }

    /// Closes connection `conn` (a `Close` output and a `Closed` event follow).
    pub fn disconnect(&self, conn: u64) -> Result<(), OverlayError> {
        self.driver
            .run(0, |m, _| Ok(m.disconnect(ConnId::from_raw(conn))?))
    }

    /// Marks `piece` as had (already in storage and checked by the app).
    pub fn have_piece(&self, now_us: u64, piece: u32) -> Result<(), OverlayError> {
        self.driver
            .run(now_us, |m, now| Ok(m.have_piece(now, piece)?))
    }

    /// The answer to `Read`: the block's bytes, sent on `conn` at the next `poll_output`.
    /// One block at a time: answer a `Read` once `poll_output` has drained to `Wait` (a
    /// second block before the first was sent is `Busy`). Refused if the peer cancelled
    /// it or was choked since.
    pub fn send_block(
        &self,
        now_us: u64,
        conn: u64,
        block: TorrentBlock,
        data: Vec<u8>,
    ) -> Result<(), OverlayError> {
        let conn = ConnId::from_raw(conn);
        self.driver.run(now_us, |m, now| {
            Ok(m.send_block(now, conn, block.into(), &data)?)
        })
    }

    /// The answer to `Verify`: whether the stored piece matched its hash. A failure puts
    /// the peers that sent it on parole, or bans them.
    pub fn piece_checked(&self, now_us: u64, piece: u32, passed: bool) -> Result<(), OverlayError> {
        self.driver
            .run(now_us, |m, now| Ok(m.piece_checked(now, piece, passed)?))
    }

    /// The other answer to `Verify`: storage lost what it held of `piece` (an I/O error).
    /// The piece is wanted again and nobody is blamed.
    pub fn piece_lost(&self, now_us: u64, piece: u32) -> Result<(), OverlayError> {
        self.driver
            .run(now_us, |m, now| Ok(m.piece_lost(now, piece)?))
    }

    /// Reports a connection the app accepted from `peer`; returns its id.
    pub fn accepted(&self, now_us: u64, peer: SocketAddress) -> Result<u64, OverlayError> {
        self.driver.accepted(now_us, &peer)
    }

    /// Reports that the dial the session asked for (`Connect`) succeeded.
    pub fn connected(&self, now_us: u64, conn: u64) -> Result<(), OverlayError> {
        self.driver.connected(now_us, conn)
    }

    /// Hands it bytes that arrived on `conn`: at most `torrent_max_read()` per call, and
    /// drain `poll_output` between calls.
    pub fn received(&self, now_us: u64, conn: u64, bytes: Vec<u8>) -> Result<(), OverlayError> {
        if bytes.len() > Machine::MAX_READ {
            return Err(OverlayError::InvalidArgument(format!(
                "at most {} bytes per received call",
                Machine::MAX_READ
            )));
        }
        self.driver.received(now_us, conn, &bytes)
    }

    /// Reports that `conn` closed (or that its dial failed).
    pub fn closed(&self, now_us: u64, conn: u64) -> Result<(), OverlayError> {
        self.driver.closed(now_us, conn)
    }

    /// Its next output; call until `Wait`.
    pub fn poll_output(&self, now_us: u64) -> Result<TorrentOutput, OverlayError> {
        self.driver.poll(now_us, |e| e.into())
    }

    /// Its state and counters (peer rates as of `now_us`).
    pub fn status(&self, now_us: u64) -> Result<TorrentStatus, OverlayError> {
        self.driver.run(now_us, |m, now| {
            let s = m.stats();
            Ok(TorrentStatus {
                have: m.picker().have_count(),
                pieces: m.picker().piece_count(),
                complete: m.is_complete(),
                peers: m
                    .peers(now)
                    .map(|p| TorrentPeer {
                        conn: p.conn.raw(),
                        addr: p.addr.into(),
                        am_choking: p.am_choking,
                        peer_choking: p.peer_choking,
                        am_interested: p.am_interested,
                        peer_interested: p.peer_interested,
                        pieces: p.pieces,
                        snubbed: p.snubbed,
                        parole: p.parole,
                        download_rate: p.download_rate,
                        upload_rate: p.upload_rate,
                    })
                    .collect(),
                downloaded: s.downloaded,
                wasted: s.wasted,
                uploaded: s.uploaded,
                hash_failures: s.hash_failures,
                banned: s.banned,
                violations: s.violations,
                refused_requests: s.refused_requests,
                ignored: s.ignored,
            })
        })
    }
}
