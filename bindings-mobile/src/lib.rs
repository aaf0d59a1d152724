//! overlay-mobile: overlay-core's machines for Kotlin and Swift, through uniffi.
//!
//! Each protocol is one object (`ChordNode`, `DhtNode`, `GnutellaServent`,
//! `TorrentSession`) with the sans-IO methods of `overlay_core::Machine`: the app owns the
//! sockets and the clock, hands the object what arrives (`handle_datagram`, or for the
//! stream protocols `accepted`, `connected`, `received`, `closed`), issues commands (which
//! return an id now; the result arrives later as an event carrying that id), and drains
//! `poll_output` until it says `Wait`:
//!
//! ```kotlin
//! node.handleDatagram(nowUs(), from, bytes)
//! val query = node.getPeers(nowUs(), infoHash)
//! while (true) when (val out = node.pollOutput(nowUs())) {
//!     is DhtOutput.Transmit -> socket.send(out.datagram, out.to)
//!     is DhtOutput.Event -> handle(out.event)
//!     is DhtOutput.Wait -> break      // sleep until out.untilUs or the next datagram
//! }
//! ```
//!
//! uniffi objects are shared and called through `&self` from any thread, so each wraps
//! its machine in a lock (`common::Driver`, written once for every protocol). Times are
//! the caller's microseconds from any fixed origin; they never go backwards (an earlier
//! time is taken as the latest seen). Refused calls throw [`OverlayError`] and start
//! nothing. docs/mobile.md is the guide.

uniffi::setup_scaffolding!();

pub mod bittorrent;
pub mod chord;
pub mod common;
pub mod dht;
pub mod gnutella;

pub use common::{NodeInfo, OverlayError, SocketAddress};
