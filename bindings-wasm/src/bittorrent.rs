//! BitTorrent for JavaScript: [`TorrentSession`] wraps
//! `overlay_core::bittorrent::session::Session`, one torrent over stream connections (BEP 3
//! peer wire with BEP 6 and BEP 10; see docs/bittorrent.md), a stream protocol like
//! Gnutella.
//!
//! Storage stays with the caller: the session asks it to store a block (`write`), to hash
//! a complete piece (`verify`, answered with `pieceChecked`, or `pieceLost` when storage
//! failed) and to read a block for upload (`read`, answered with `sendBlock`).
//! [`torrent_info`] reads a `.torrent` file's layout; [`sha1`] hashes a piece.

use crate::common::{
    Driver, OverlayError, boolean, conn_js, conn_rust, hex, hex_bytes, hex20, invalid, js, peer,
    rng_seed, rust, stream_output, whole_u32,
};
use overlay_core::Id;
use overlay_core::bittorrent::metainfo::Metainfo;
use overlay_core::bittorrent::session::{CloseReason, Config, Event, Session};
use overlay_core::bittorrent::wire::BlockRequest;
use serde::{Deserialize, Serialize};
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;

/// Pieces at most (1024 pieces of 1 MiB: 1 GiB), blocks per piece at most (64 of 16 KiB:
/// 1 MiB pieces) and connections at once (16: a tab's). Smaller than the host node's
/// 4096 pieces and 64 connections: the machine is built by value on the WASM stack, which
/// a tab reserves in full, and the node's 7 MB session overflowed a 32 MiB stack there
/// (it built with 64 MiB); this one is 1.76 MB. The machine a `TorrentSession` wraps.
pub type Machine = Session<1024, 64, 16>;

/// One file of a torrent's content.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct TorrentFile {
    /// Its path components, outermost first (below the torrent's name in multi-file mode).
    pub path: Vec<String>,
    /// Its size in bytes.
    pub length: u64,
    /// Where its bytes start in the content (pieces span files).
    pub offset: u64,
}

/// What a `.torrent` file describes.
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct TorrentInfo {
    /// SHA-1 of the bencoded `info` dictionary, in hex.
    pub info_hash: String,
    /// The suggested name (a file, or the directory of a multi-file torrent).
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u64,
    /// Pieces.
    pub piece_count: usize,
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
    Metainfo::parse(torrent).map_err(|e| invalid(format!("not a torrent: {e}")))
}

/// Reads a `.torrent` file (BEP 3 metainfo).
#[wasm_bindgen(js_name = torrentInfo)]
pub fn torrent_info(torrent: &[u8]) -> Result<Ts<TorrentInfo>, OverlayError> {
    let m = metainfo(torrent)?;
    js(&TorrentInfo {
        info_hash: hex(Id(m.info_hash())),
        name: text(m.name()),
        piece_length: m.piece_length(),
        piece_count: m.piece_count(),
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

/// SHA-1 of `data` in hex: a piece's hash, for `verify` (a browser's `crypto.subtle` is
/// asynchronous and absent on plain http pages).
#[wasm_bindgen]
pub fn sha1(data: &[u8]) -> String {
    use sha1::Digest;
    hex_bytes(&sha1::Sha1::digest(data))
}

/// Settings of a session beyond the torrent itself.
#[derive(Clone, Debug, Deserialize, Tsify)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TorrentConfig {
    /// Our 20-byte peer id in hex (BEP 20 style, e.g. `-OV0001-` and 12 random bytes).
    pub peer_id: String,
    /// Connections at once, in and out (at most 16, the default).
    #[serde(default)]
    #[tsify(optional)]
    pub max_connections: Option<usize>,
    /// Whether we upload at all (`false`: never unchoke anyone; default `true`).
    #[serde(default)]
    #[tsify(optional)]
    pub serve: Option<bool>,
}

/// A block of a piece: `length` bytes at `begin`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, Tsify)]
#[serde(deny_unknown_fields)]
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

/// Why a connection ended.
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(tag = "type", rename_all = "camelCase")]
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
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TorrentEvent {
    /// Store `data` at `piece * pieceLength + begin`.
    Write {
        piece: u32,
        begin: u32,
        #[serde(with = "serde_bytes")]
        #[tsify(type = "Uint8Array")]
        data: Vec<u8>,
    },
    /// Every block of `piece` is stored: hash what was stored, compare with `hash` (its
    /// SHA-1 from the metainfo, hex) and call `pieceChecked` (`pieceLost` if storage
    /// failed).
    Verify { piece: u32, hash: String },
    /// Read `block` and hand it to `sendBlock` for `conn` (after draining the outputs).
    Read { conn: f64, block: TorrentBlock },
    /// A peer finished its handshake.
    Connected {
        conn: f64,
        peer: String,
        peer_id: String,
    },
    /// A connection ended (no `closed` report is due for it).
    Closed {
        conn: f64,
        peer: String,
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
                hash: hex_bytes(&hash),
            },
            Event::Read { conn, block } => TorrentEvent::Read {
                conn: conn_js(conn),
                block: block.into(),
            },
            Event::Connected {
                conn,
                peer,
                peer_id,
            } => TorrentEvent::Connected {
                conn: conn_js(conn),
                peer: peer.to_string(),
                peer_id: hex_bytes(&peer_id),
            },
            Event::Closed { conn, peer, reason } => TorrentEvent::Closed {
                conn: conn_js(conn),
                peer: peer.to_string(),
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
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct TorrentPeer {
    /// The connection.
    pub conn: f64,
    /// The remote.
    pub addr: String,
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
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
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

/// One torrent shared with peers over stream connections. Report what happens on its
/// connections, act on what `pollOutput` gives until it says `wait`.
#[wasm_bindgen]
pub struct TorrentSession {
    driver: Driver<Machine>,
}

#[wasm_bindgen]
impl TorrentSession {
    /// A session for the torrent in `torrent` (a `.torrent` file's bytes), with nothing
    /// had and no peers. Pieces already in storage are announced with `havePiece` after
    /// the caller checked them. `seed` seeds its random generator.
    #[wasm_bindgen(constructor)]
    pub fn new(
        torrent: &[u8],
        config: Ts<TorrentConfig>,
        seed: f64,
    ) -> Result<TorrentSession, OverlayError> {
        let config = rust(config)?;
        let peer_id = hex20(&config.peer_id, "a peer id")?;
        let adjust = |core: Config| Config {
            max_connections: config.max_connections.unwrap_or(core.max_connections),
            serve: config.serve.unwrap_or(core.serve),
            ..core
        };
        let machine =
            Machine::from_metainfo_with(&metainfo(torrent)?, peer_id, rng_seed(seed)?, adjust)?;
        Ok(TorrentSession {
            driver: Driver::new(machine),
        })
    }

    /// The most bytes one `received` call takes (half the session's receive buffer).
    #[wasm_bindgen(getter = maxRead)]
    pub fn max_read() -> usize {
        Machine::MAX_READ
    }

    /// Dials a peer at `to`: a `connect` output with the returned id follows.
    #[wasm_bindgen(js_name = addPeer)]
    pub fn add_peer(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        to: &str,
    ) -> Result<f64, OverlayError> {
        let to = peer(to)?;
        self.driver
            .run(now_us, |m, now| Ok(conn_js(m.add_peer(now, to)?)))
    }

    /// Closes connection `conn` (a `close` output and a `closed` event follow).
    pub fn disconnect(&mut self, conn: f64) -> Result<(), OverlayError> {
        let conn = conn_rust(conn)?;
        Ok(self.driver.machine_mut().disconnect(conn)?)
    }

    /// Marks `piece` as had (already in storage and checked by the caller).
    #[wasm_bindgen(js_name = havePiece)]
    pub fn have_piece(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        piece: f64,
    ) -> Result<(), OverlayError> {
        let piece = whole_u32(piece, "piece")?;
        self.driver
            .run(now_us, |m, now| Ok(m.have_piece(now, piece)?))
    }

    /// The answer to `read`: the block's bytes, sent on `conn` at the next `pollOutput`.
    /// One block at a time: answer a `read` once `pollOutput` has drained to `wait` (a
    /// second block before the first was sent is `Busy`).
    #[wasm_bindgen(js_name = sendBlock)]
    pub fn send_block(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
        block: Ts<TorrentBlock>,
        data: &[u8],
    ) -> Result<(), OverlayError> {
        let conn = conn_rust(conn)?;
        let b = rust(block)?;
        let block = BlockRequest {
            index: b.piece,
            begin: b.begin,
            length: b.length,
        };
        self.driver
            .run(now_us, |m, now| Ok(m.send_block(now, conn, block, data)?))
    }

    /// The answer to `verify`: whether the stored piece matched its hash. A failure puts
    /// the peers that sent it on parole, or bans them.
    #[wasm_bindgen(js_name = pieceChecked)]
    pub fn piece_checked(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        piece: f64,
        passed: JsValue,
    ) -> Result<(), OverlayError> {
        let piece = whole_u32(piece, "piece")?;
        let passed = boolean(&passed, "passed")?;
        self.driver
            .run(now_us, |m, now| Ok(m.piece_checked(now, piece, passed)?))
    }

    /// The other answer to `verify`: storage lost what it held of `piece`. The piece is
    /// wanted again and nobody is blamed.
    #[wasm_bindgen(js_name = pieceLost)]
    pub fn piece_lost(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        piece: f64,
    ) -> Result<(), OverlayError> {
        let piece = whole_u32(piece, "piece")?;
        self.driver
            .run(now_us, |m, now| Ok(m.piece_lost(now, piece)?))
    }

    /// Reports a connection the caller accepted from `peer`; returns its id (negative).
    pub fn accepted(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        peer: &str,
    ) -> Result<f64, OverlayError> {
        self.driver.accepted(now_us, peer)
    }

    /// Reports that the dial the session asked for (`connect`) succeeded.
    pub fn connected(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
    ) -> Result<(), OverlayError> {
        self.driver.connected(now_us, conn)
    }

    /// Hands it bytes that arrived on `conn`: at most `maxRead` per call, and drain
    /// `pollOutput` between calls.
    pub fn received(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
        bytes: &[u8],
    ) -> Result<(), OverlayError> {
        if bytes.len() > Machine::MAX_READ {
            return Err(invalid(format!(
                "at most {} bytes per received call",
                Machine::MAX_READ
            )));
        }
        self.driver.received(now_us, conn, bytes)
    }

    /// Reports that `conn` closed (or that its dial failed).
    pub fn closed(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
        conn: f64,
    ) -> Result<(), OverlayError> {
        self.driver.closed(now_us, conn)
    }

    /// Its next output; call until `wait`.
    #[wasm_bindgen(js_name = pollOutput)]
    pub fn poll_output(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
    ) -> Result<Ts<TorrentOutput>, OverlayError> {
        js(&self.driver.poll::<_, TorrentOutput>(now_us, |e| e.into())?)
    }

    /// Its state and counters (peer rates as of `nowUs`).
    pub fn status(
        &mut self,
        #[wasm_bindgen(js_name = nowUs)] now_us: f64,
    ) -> Result<Ts<TorrentStatus>, OverlayError> {
        let status = self.driver.run(now_us, |m, now| {
            let s = m.stats();
            Ok(TorrentStatus {
                have: m.picker().have_count(),
                pieces: m.picker().piece_count(),
                complete: m.is_complete(),
                peers: m
                    .peers(now)
                    .map(|p| TorrentPeer {
                        conn: conn_js(p.conn),
                        addr: p.addr.to_string(),
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
        })?;
        js(&status)
    }
}
