//! Why a binding refuses a call: every protocol's command errors mapped to one set, each
//! with a message that says what to do, and a stable name (`code`) for languages that
//! switch on it.

use core::fmt;
use overlay_core::bittorrent::session::SessionError;
use overlay_core::{chord, dht, gnutella};

/// A refused call; it started nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An argument is out of range or does not parse; the text says which.
    InvalidArgument(String),
    /// Too many commands in progress, or (a torrent's `send_block`) the previous block not
    /// yet sent.
    Busy,
    /// Chord: not a member of a ring.
    NotMember,
    /// Chord: already a member of a ring, or joining one.
    AlreadyMember,
    /// Chord: the value is larger than a node stores (the limit in bytes).
    ValueTooLarge(usize),
    /// DHT: a BEP 44 item must be one bencoded value of at most 1000 bytes.
    BadItem,
    /// DHT: no node to ask.
    NoNodes,
    /// Every connection slot is taken.
    Full,
    /// Gnutella: no connection is up to send on.
    NotConnected,
    /// Gnutella: no upload of that many bytes is in progress on that connection.
    NoUpload,
    /// BitTorrent: that peer's IP is banned for corrupt data.
    Banned,
    /// BitTorrent: we already dial or talk to that address.
    AlreadyConnected,
    /// No open connection has that id.
    UnknownConnection,
    /// BitTorrent: that block is not an outstanding read of that connection.
    NotRequested,
    /// BitTorrent: that piece is not waiting for a check.
    NotAwaitingCheck,
    /// A machine broke its contract, or an output could not cross (a bug).
    Internal(String),
}

impl Refusal {
    /// The variant's name, stable across versions: what code switches on.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InvalidArgument(_) => "InvalidArgument",
            Refusal::Busy => "Busy",
            Refusal::NotMember => "NotMember",
            Refusal::AlreadyMember => "AlreadyMember",
            Refusal::ValueTooLarge(_) => "ValueTooLarge",
            Refusal::BadItem => "BadItem",
            Refusal::NoNodes => "NoNodes",
            Refusal::Full => "Full",
            Refusal::NotConnected => "NotConnected",
            Refusal::NoUpload => "NoUpload",
            Refusal::Banned => "Banned",
            Refusal::AlreadyConnected => "AlreadyConnected",
            Refusal::UnknownConnection => "UnknownConnection",
            Refusal::NotRequested => "NotRequested",
            Refusal::NotAwaitingCheck => "NotAwaitingCheck",
            Refusal::Internal(_) => "Internal",
        }
    }

    /// A Gnutella upload refused; `chunk` is the servent's most bytes per call.
    pub fn upload(e: gnutella::UploadError, chunk: usize) -> Self {
        match e {
            gnutella::UploadError::NoUpload | gnutella::UploadError::TooMuch => Refusal::NoUpload,
            gnutella::UploadError::TooLarge => {
                Refusal::InvalidArgument(format!("at most {chunk} bytes per upload call"))
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            Refusal::Busy => f.write_str(
                "busy: retry after a command in progress has finished (its event), or, for a \
                 block sent, after polling has drained to wait",
            ),
            Refusal::NotMember => f.write_str("not a member of a ring: create or join one first"),
            Refusal::AlreadyMember => f.write_str("already a member of a ring, or joining one"),
            Refusal::ValueTooLarge(max) => write!(f, "value too large: at most {max} bytes"),
            Refusal::BadItem => {
                f.write_str("a BEP 44 item must be one bencoded value of at most 1000 bytes")
            }
            Refusal::NoNodes => f.write_str("no node to ask: bootstrap needs at least one address"),
            Refusal::Full => f.write_str("every connection slot is taken"),
            Refusal::NotConnected => f.write_str("no connection is up: connect first"),
            Refusal::NoUpload => {
                f.write_str("no upload of that many bytes is in progress on that connection")
            }
            Refusal::Banned => f.write_str("that peer is banned for corrupt data"),
            Refusal::AlreadyConnected => f.write_str("already connected to that address"),
            Refusal::UnknownConnection => f.write_str("no open connection has that id"),
            Refusal::NotRequested => f.write_str("that block is not requested on that connection"),
            Refusal::NotAwaitingCheck => f.write_str("that piece is not waiting for a check"),
            Refusal::Internal(why) => write!(f, "internal error (a bug): {why}"),
        }
    }
}

impl From<chord::CommandError> for Refusal {
    fn from(e: chord::CommandError) -> Self {
        match e {
            chord::CommandError::Busy => Refusal::Busy,
            chord::CommandError::NotMember => Refusal::NotMember,
            chord::CommandError::AlreadyMember => Refusal::AlreadyMember,
            chord::CommandError::ValueTooLarge => Refusal::ValueTooLarge(chord::config::MAX_VALUE),
        }
    }
}

impl From<dht::CommandError> for Refusal {
    fn from(e: dht::CommandError) -> Self {
        match e {
            dht::CommandError::Busy => Refusal::Busy,
            dht::CommandError::BadItem => Refusal::BadItem,
            dht::CommandError::NoNodes => Refusal::NoNodes,
        }
    }
}

impl From<gnutella::CommandError> for Refusal {
    fn from(e: gnutella::CommandError) -> Self {
        match e {
            gnutella::CommandError::Full => Refusal::Full,
            gnutella::CommandError::NotConnected => Refusal::NotConnected,
            gnutella::CommandError::Invalid(e) => Refusal::InvalidArgument(e.to_string()),
        }
    }
}

impl From<SessionError> for Refusal {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Geometry(_) | SessionError::WrongLength => {
                Refusal::InvalidArgument(e.to_string())
            }
            SessionError::Full => Refusal::Full,
            SessionError::Banned => Refusal::Banned,
            SessionError::AlreadyConnected => Refusal::AlreadyConnected,
            SessionError::UnknownConn => Refusal::UnknownConnection,
            SessionError::NotRequested => Refusal::NotRequested,
            SessionError::NotAwaitingCheck => Refusal::NotAwaitingCheck,
            SessionError::Busy => Refusal::Busy,
        }
    }
}
