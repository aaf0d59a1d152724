//! BitTorrent (BEP 3), so far its codecs: metainfo files and magnet links
//! ([`metainfo`], [`magnet`]) and the peer wire protocol's messages ([`wire`]), with the
//! Fast extension (BEP 6) and the extension protocol's handshake (BEP 10). The swarm
//! machine (piece picker, choker) comes with the rest of its issue.
//!
//! Everything decodes into views that borrow the input (over [`crate::bencode`] for
//! metainfo), encodes into a caller's buffer, never allocates and never panics on any input.

pub mod choker;
pub mod magnet;
pub mod metainfo;
pub mod picker;
pub mod wire;
