//! overlay-node: the host runtime that drives overlay-core machines over real sockets
//! ([`runtime`]), the protocol hosts built on it ([`chord`], [`dht`], [`gnutella`]), the
//! WebSocket [`bridge`] that makes browser tabs peers, and the `overlay` command.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bittorrent;
pub mod bridge;
pub mod chord;
pub mod dht;
pub mod gnutella;
pub mod runtime;
pub mod tracker;
