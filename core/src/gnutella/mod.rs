//! Gnutella 0.6: the unstructured, flooding file-sharing network of 2000-2008 (LimeWire,
//! BearShare, gtk-gnutella), with the 0.6 additions of HTTP-style connection handshakes,
//! ultrapeers and leaves, and the extensions that every deployed servent speaks (HUGE
//! `urn:sha1:` names, GGEP blocks, the Bye message).
//!
//! [`Servent`] is the machine: one servent with many TCP connections, either an ultrapeer
//! (it floods queries among ultrapeers with TTL and hops, drops duplicates by GUID, routes
//! query hits back along the reverse path and pushes by servent id, answers pings from its
//! pong cache, and passes queries to its leaves only where their QRP tables match) or a
//! leaf (shielded: it sends its QRP table, answers what its ultrapeers pass down and never
//! routes). It answers queries from a [`Library`] the caller provides and serves HTTP
//! downloads on the same port, with the bytes streamed by the driver. Its parts:
//!
//! * [`config`]: roles and settings, with the deployed network's defaults;
//! * [`library`]: the caller's shared files and how a query matches them;
//! * [`wire`]: the binary descriptors exchanged once a connection is up: the 23-byte
//!   header, a stream framer, and Ping, Pong, Bye, Push, Query and QueryHit payloads;
//! * [`handshake`]: the text handshake that opens a connection (`GNUTELLA CONNECT/0.6`);
//! * [`http`]: the HTTP/1.x requests and responses that move files between servents;
//! * [`headers`]: the header-block reader and writer the last two share;
//! * [`base32`] and [`urn`]: HUGE's `urn:sha1:` names, used by all three;
//! * [`routing`]: the bounded, expiring GUID tables for duplicate suppression, reverse-path
//!   routing of pongs and query hits, and Push routing by servent id;
//! * [`pongcache`]: pong caching and ping multiplexing (the LimeWire/BearShare scheme in
//!   gtk-gnutella's `ping-pong`);
//! * [`qrp`]: the Query Routing Protocol tables leaves send their ultrapeers.
//!
//! The references are the protocol documents kept in gtk-gnutella's `doc/gnutella/`
//! (`handshaking_0.6`, `ultra-peers`, `ping-pong`, `QRP`, `bye`, `huge`, `GGEP`) and the RFC-Gnutella 0.6
//! draft. Everything decodes zero-copy into views that borrow the input, encodes into a
//! caller's buffer, never allocates and never panics on any input (fuzzed by
//! `fuzz/fuzz_targets/gnutella_*.rs`).

use core::fmt;

pub mod base32;
pub mod config;
pub mod handshake;
pub mod headers;
pub mod http;
pub mod library;
pub mod pongcache;
pub mod qrp;
pub mod routing;
mod servent;
#[cfg(test)]
mod tests;
pub mod urn;
pub mod wire;

pub use config::{Config, Role};
pub use library::{Library, SharedFile};
pub use servent::{CloseReason, CommandError, Event, Servent, Stats, UploadError};

/// Why an encoder could not write a message.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteError {
    /// The caller's buffer is too small. Nothing usable was written.
    BufferFull,
    /// A field cannot be represented on the wire: the text names which and why (a NUL
    /// inside a NUL-terminated string, a CR or LF inside a header value, more than 255
    /// hits, ...). Writing it anyway would let a peer read a different message.
    Invalid(&'static str),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::BufferFull => f.write_str("gnutella output buffer full"),
            WriteError::Invalid(what) => write!(f, "cannot encode: {what}"),
        }
    }
}

impl core::error::Error for WriteError {}

/// Copies `parts` one after another into `out` at `*len`, advancing `*len`; writes nothing
/// unless all of them fit.
fn put(out: &mut [u8], len: &mut usize, parts: &[&[u8]]) -> Result<(), WriteError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let end = len.checked_add(total).ok_or(WriteError::BufferFull)?;
    let dst = out.get_mut(*len..end).ok_or(WriteError::BufferFull)?;
    let mut at = 0;
    for p in parts {
        dst[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    *len = end;
    Ok(())
}
