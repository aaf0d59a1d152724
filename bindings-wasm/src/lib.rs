//! overlay-wasm: overlay's peers for JavaScript, in the browser and in Node.
//!
//! One class per protocol of `overlay-core` (`ChordNode`, `DhtNode`, `GnutellaServent`,
//! `TorrentSession`), each with the machine contract's methods (`handleDatagram` or the
//! stream inputs, `pollOutput`), commands that return ids, and outputs and events as plain
//! JS objects typed by the generated TypeScript declarations. Errors are thrown as JS
//! `Error`s with a `code`. A browser has no UDP: `bridgeFrame`/`bridgeUnframe` carry
//! datagrams over a WebSocket to an `overlay` node started with `--ws`, which gives the tab
//! an overlay address of its own (docs/wasm.md).

mod bittorrent;
mod bridge;
mod chord;
mod common;
mod dht;
mod gnutella;

pub use bittorrent::{
    Machine as TorrentMachine, TorrentConfig, TorrentEvent, TorrentInfo, TorrentOutput,
    TorrentSession, sha1, torrent_info,
};
pub use bridge::{Unframed, bridge_frame, bridge_unframe};
pub use chord::{
    ChordConfig, ChordEvent, ChordNode, ChordOutput, ChordStatus, Machine as ChordMachine,
};
pub use common::{NodeInfo, OverlayError};
pub use dht::{DhtConfig, DhtEvent, DhtNode, DhtOutput, DhtStatus, Machine as DhtMachine};
pub use gnutella::{
    GnutellaConfig, GnutellaEvent, GnutellaFile, GnutellaOutput, GnutellaServent,
    Machine as GnutellaMachine,
};
