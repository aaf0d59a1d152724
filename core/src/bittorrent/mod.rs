//! BitTorrent (BEP 3): metainfo files and magnet links ([`metainfo`], [`magnet`]), the
//! peer wire protocol's messages ([`wire`]), with the Fast extension (BEP 6) and the
//! extension protocol's handshake (BEP 10), the two policies a swarm member runs (the
//! rarest-first [`picker`] and the tit-for-tat [`choker`]), the [`session`], the machine
//! that runs them over peer connections and leaves the torrent's bytes to its driver, and
//! both sides of the [`tracker`] protocols (HTTP, BEP 15 over UDP). The design and the
//! swarm experiments: `docs/bittorrent.md`.
//!
//! Everything decodes into views that borrow the input (over [`crate::bencode`] for
//! metainfo), encodes into a caller's buffer, never allocates and never panics on any input.

pub mod choker;
pub mod magnet;
pub mod metainfo;
pub mod picker;
pub mod session;
pub mod tracker;
pub mod wire;
