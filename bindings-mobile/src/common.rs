//! What every protocol object shares: addresses and node records, the one error type, and
//! the `Driver` that owns a machine behind a lock and pumps it (inputs in, outputs out),
//! written once.

use overlay_bindings::{Pump, Refusal, Step};
use overlay_core::{ConnId, Id, Input, Instant, Machine, PeerAddr};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

/// An IP address and port, as the host's sockets take them (`"127.0.0.1"`, `"::1"`; an
/// IPv6 scope such as Java's `"fe80::1%wlan0"` is accepted and dropped, as peers never see
/// it).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SocketAddress {
    /// The IP address in text (IPv4 dotted or IPv6).
    pub ip: String,
    /// The port.
    pub port: u16,
}

impl From<PeerAddr> for SocketAddress {
    fn from(a: PeerAddr) -> Self {
        SocketAddress {
            ip: a.ip().to_string(),
            port: a.port(),
        }
    }
}

impl TryFrom<&SocketAddress> for PeerAddr {
    type Error = OverlayError;

    fn try_from(a: &SocketAddress) -> Result<Self, OverlayError> {
        let text = a.ip.trim_start_matches('[').trim_end_matches(']');
        let text = text.split_once('%').map_or(text, |(ip, _scope)| ip);
        let ip: IpAddr = text.parse().map_err(|_| {
            OverlayError::InvalidArgument(format!("{:?} is not an IP address", a.ip))
        })?;
        Ok(std::net::SocketAddr::new(ip, a.port).into())
    }
}

/// Parses an address argument.
pub(crate) fn peer(a: &SocketAddress) -> Result<PeerAddr, OverlayError> {
    a.try_into()
}

/// A node of an overlay: its 160-bit id (20 bytes) and where it is reached.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct NodeInfo {
    /// The node's id, 20 bytes, most significant first.
    pub id: Vec<u8>,
    /// Its address.
    pub addr: SocketAddress,
}

impl NodeInfo {
    pub(crate) fn new(id: Id, addr: PeerAddr) -> Self {
        NodeInfo {
            id: id_bytes(id),
            addr: addr.into(),
        }
    }
}

/// An id as the foreign side sees it: 20 bytes.
pub(crate) fn id_bytes(id: Id) -> Vec<u8> {
    id.0.to_vec()
}

/// Parses a 20-byte argument; `what` names it in the error ("an id", "a peer id").
pub(crate) fn bytes20(bytes: &[u8], what: &str) -> Result<[u8; 20], OverlayError> {
    bytes.try_into().map_err(|_| {
        OverlayError::InvalidArgument(format!("{what} is 20 bytes, not {}", bytes.len()))
    })
}

/// Parses a 20-byte id argument (a node id, a key's id, an info hash).
pub(crate) fn id(bytes: &[u8]) -> Result<Id, OverlayError> {
    bytes20(bytes, "an id").map(Id)
}

/// Why a call was refused (Kotlin: `OverlayException` subclasses; Swift: `OverlayError`
/// cases). A refused command starts nothing.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum OverlayError {
    /// An argument is out of range or does not parse; the message says which.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Busy: too many commands in progress (retry after one has finished, which its event
    /// says), or, for a torrent's `send_block`, the previous block not yet sent (retry
    /// after `poll_output` has drained to `Wait`).
    #[error(
        "busy: retry after a command in progress has finished (its event), or, for \
         send_block, after poll_output has drained to Wait"
    )]
    Busy,
    /// Chord: the node is not a member of a ring (join or create first).
    #[error("not a member of a ring: create or join one first")]
    NotMember,
    /// Chord: the node is already a member of a ring, or joining one.
    #[error("already a member of a ring, or joining one")]
    AlreadyMember,
    /// Chord: the value is larger than a node stores.
    #[error("value too large: at most {0} bytes")]
    ValueTooLarge(usize),
    /// DHT: a BEP 44 item must be one bencoded value of at most 1000 bytes.
    #[error("a BEP 44 item must be one bencoded value of at most 1000 bytes")]
    BadItem,
    /// DHT: no node to ask (bootstrap needs at least one address).
    #[error("no node to ask: bootstrap needs at least one address")]
    NoNodes,
    /// Every connection slot is taken.
    #[error("every connection slot is taken")]
    Full,
    /// Gnutella: no connection is up to send on (connect first).
    #[error("no connection is up: connect first")]
    NotConnected,
    /// Gnutella: no upload is in progress on that connection, or it asks for fewer bytes.
    #[error("no upload of that many bytes is in progress on that connection")]
    NoUpload,
    /// BitTorrent: that peer's IP is banned (it sent corrupt data).
    #[error("that peer is banned for corrupt data")]
    Banned,
    /// BitTorrent: we already dial or talk to that address.
    #[error("already connected to that address")]
    AlreadyConnected,
    /// No open connection has that id.
    #[error("no open connection has that id")]
    UnknownConnection,
    /// BitTorrent: that block is not an outstanding read of that connection (cancelled,
    /// choked since, or never asked for).
    #[error("that block is not requested on that connection")]
    NotRequested,
    /// BitTorrent: that piece is not waiting for a check.
    #[error("that piece is not waiting for a check")]
    NotAwaitingCheck,
    /// An earlier call on this object panicked (a bug: please report it); the machine may
    /// be half-way through a change, so every call fails now. Create a new object.
    #[error("an earlier call panicked: this object is unusable, create a new one")]
    Poisoned,
    /// The library could not do what the call needs (no thread to build a machine on), or
    /// a machine broke its contract (a bug: please report it).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Every protocol's command errors, through the mapping shared with the WASM bindings
/// (`?` in the objects).
impl<E: Into<Refusal>> From<E> for OverlayError {
    fn from(e: E) -> Self {
        match e.into() {
            Refusal::InvalidArgument(why) => OverlayError::InvalidArgument(why),
            Refusal::Busy => OverlayError::Busy,
            Refusal::NotMember => OverlayError::NotMember,
            Refusal::AlreadyMember => OverlayError::AlreadyMember,
            Refusal::ValueTooLarge(max) => OverlayError::ValueTooLarge(max),
            Refusal::BadItem => OverlayError::BadItem,
            Refusal::NoNodes => OverlayError::NoNodes,
            Refusal::Full => OverlayError::Full,
            Refusal::NotConnected => OverlayError::NotConnected,
            Refusal::NoUpload => OverlayError::NoUpload,
            Refusal::Banned => OverlayError::Banned,
            Refusal::AlreadyConnected => OverlayError::AlreadyConnected,
            Refusal::UnknownConnection => OverlayError::UnknownConnection,
            Refusal::NotRequested => OverlayError::NotRequested,
            Refusal::NotAwaitingCheck => OverlayError::NotAwaitingCheck,
            Refusal::Internal(why) => OverlayError::Internal(why),
        }
    }
}

/// Defines a datagram protocol's output enum (`Transmit`, `Event`, `Wait`) and its
/// conversion from [`Step`].
macro_rules! datagram_output {
    ($(#[$doc:meta])* $name:ident, $event:ty) => {
        $(#[$doc])*
        #[derive(Debug, uniffi::Enum)]
        pub enum $name {
            /// Send `datagram` to `to`.
            Transmit {
                /// The destination.
                to: $crate::common::SocketAddress,
                /// The datagram's bytes.
                datagram: Vec<u8>,
            },
            /// Something happened.
            Event {
                /// What.
                event: $event,
            },
            /// Drained: call `poll_output` again at `until_us` (at once if that is not
            /// after now), or when a datagram arrives or a command is issued; `null` /
            /// `nil`: no timer, only then.
            Wait {
                /// When, in the caller's microseconds.
                until_us: Option<u64>,
            },
        }

        impl TryFrom<overlay_bindings::Step<$event>> for $name {
            type Error = $crate::common::OverlayError;

            fn try_from(step: overlay_bindings::Step<$event>) -> Result<Self, Self::Error> {
                use overlay_bindings::Step;
                Ok(match step {
                    Step::Transmit(overlay_core::Dest::Addr(to), datagram) => $name::Transmit {
                        to: to.into(),
                        datagram,
                    },
                    Step::Event(event) => $name::Event { event },
                    Step::Wait(until) => $name::Wait {
                        until_us: until.map(overlay_core::Instant::as_micros),
                    },
                    // A datagram machine has no connections (the machine contract).
                    Step::Transmit(overlay_core::Dest::Conn(_), _)
                    | Step::Connect(..)
                    | Step::Close(_) => {
                        return Err($crate::common::OverlayError::Internal(
                            "a datagram machine asked for a connection".into(),
                        ));
                    }
                })
            }
        }
    };
}

/// Defines a stream protocol's output enum (`Transmit` on a connection, `Connect`,
/// `Close`, `Event`, `Wait`) and its conversion from [`Step`].
macro_rules! stream_output {
    ($(#[$doc:meta])* $name:ident, $event:ty) => {
        $(#[$doc])*
        #[derive(Debug, uniffi::Enum)]
        pub enum $name {
            /// Write `bytes` to connection `conn`, in order.
            Transmit {
                /// The connection.
                conn: u64,
                /// The bytes.
                bytes: Vec<u8>,
            },
            /// Open a TCP connection to `to` and call it `conn`; report `connected` or
            /// `closed` for it.
            Connect {
                /// The id the machine gave it.
                conn: u64,
                /// Whom to dial.
                to: $crate::common::SocketAddress,
            },
            /// Close connection `conn` (no `closed` report is due for it).
            Close {
                /// The connection.
                conn: u64,
            },
            /// Something happened.
            Event {
                /// What.
                event: $event,
            },
            /// Drained: call `poll_output` again at `until_us` (at once if that is not
            /// after now), or when an input arrives or a command is issued; `null` / `nil`:
            /// no timer, only then.
            Wait {
                /// When, in the caller's microseconds.
                until_us: Option<u64>,
            },
        }

        impl TryFrom<overlay_bindings::Step<$event>> for $name {
            type Error = $crate::common::OverlayError;

            fn try_from(step: overlay_bindings::Step<$event>) -> Result<Self, Self::Error> {
                use overlay_bindings::Step;
                Ok(match step {
                    Step::Transmit(overlay_core::Dest::Conn(conn), bytes) => $name::Transmit {
                        conn: conn.raw(),
                        bytes,
                    },
                    Step::Connect(conn, to) => $name::Connect {
                        conn: conn.raw(),
                        to: to.into(),
                    },
                    Step::Close(conn) => $name::Close { conn: conn.raw() },
                    Step::Event(event) => $name::Event { event },
                    Step::Wait(until) => $name::Wait {
                        until_us: until.map(overlay_core::Instant::as_micros),
                    },
                    // A stream machine sends on connections only (the machine contract).
                    Step::Transmit(overlay_core::Dest::Addr(_), _) => {
                        return Err($crate::common::OverlayError::Internal(
                            "a stream machine sent a datagram".into(),
                        ));
                    }
                })
            }
        }
    };
}

pub(crate) use {datagram_output, stream_output};

/// The latest time the caller may give: 2^63 - 1 microseconds (292,000 years). A larger
/// one is surely a bug (a negative `Long` taken as unsigned), and taking it would stop
/// every timer for good, since time never goes backwards.
const MAX_NOW_US: u64 = i64::MAX as u64;

/// A machine owned by a foreign object: a lock (uniffi objects are shared and called
/// through `&self`, from any thread) around the pump shared with the WASM bindings (the
/// boxed machine, a clock that never goes back, the numbering of accepted connections).
pub(crate) struct Driver<M> {
    pump: Mutex<Pump<M>>,
}

/// The caller's time as the machine's. A time past 2^63 is surely a bug (a negative `Long`
/// taken as unsigned), and taking it would stop every timer for good, since time never
/// goes backwards.
fn instant(now_us: u64) -> Result<Instant, OverlayError> {
    if now_us > MAX_NOW_US {
        return Err(OverlayError::InvalidArgument(format!(
            "now_us {now_us} is past 2^63: a negative time taken as unsigned?"
        )));
    }
    Ok(Instant::from_micros(now_us))
}

impl<M: Machine + Send> Driver<M> {
    /// Builds the machine on a thread of its own whose stack holds several copies of it:
    /// core allocates nothing, so machines are built by value, and an unoptimized build
    /// moves a large one (a torrent session is 7 MB) through the stack several times on
    /// its way to the heap: far more than the 1 MiB stack of a JVM or Android thread, or
    /// a Swift dispatch queue's. The stack is reserved address space, touched only as
    /// deep as the build goes.
    pub(crate) fn build(
        make: impl FnOnce() -> Result<M, OverlayError> + Send,
    ) -> Result<Self, OverlayError> {
        let stack = 16 * size_of::<M>() + (8 << 20);
        let machine = std::thread::scope(|s| {
            let builder = std::thread::Builder::new()
                .name("overlay-build".into())
                .stack_size(stack);
            let thread = builder
                .spawn_scoped(s, || make().map(Box::new))
                .map_err(|e| {
                    OverlayError::Internal(format!("no thread with a {stack}-byte stack: {e}"))
                })?;
            thread.join().map_err(|_| {
                OverlayError::Internal("building the machine panicked (a bug)".into())
            })?
        })?;
        Ok(Driver {
            pump: Mutex::new(Pump::new(machine)),
        })
    }

    /// The pump, unless an earlier call panicked while holding it.
    fn lock(&self) -> Result<MutexGuard<'_, Pump<M>>, OverlayError> {
        self.pump.lock().map_err(|_| OverlayError::Poisoned)
    }

    /// Runs `f` on the machine at the caller's time (a command, a status read).
    pub(crate) fn run<R>(
        &self,
        now_us: u64,
        f: impl FnOnce(&mut M, Instant) -> Result<R, OverlayError>,
    ) -> Result<R, OverlayError> {
        let now = instant(now_us)?;
        let mut pump = self.lock()?;
        let (machine, now) = pump.at(now);
        f(machine, now)
    }

    /// Reads the machine (a status), without moving its clock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&M) -> R) -> Result<R, OverlayError> {
        Ok(f(self.lock()?.machine()))
    }

    /// Hands one input to the machine. Malformed bytes are the machine's to drop and
    /// count: they are no error here.
    fn input(&self, now_us: u64, input: Input<'_>) -> Result<(), OverlayError> {
        let now = instant(now_us)?;
        self.lock()?.input(now, input);
        Ok(())
    }

    /// A datagram from `from` (datagram protocols).
    pub(crate) fn datagram(
        &self,
        now_us: u64,
        from: &SocketAddress,
        payload: &[u8],
    ) -> Result<(), OverlayError> {
        let from = peer(from)?;
        self.input(now_us, Input::Datagram { from, payload })
    }

    /// A connection the caller accepted from `peer` (stream protocols): numbers it
    /// (inbound ids never collide with the machine's own) and reports it. Returns its id.
    pub(crate) fn accepted(&self, now_us: u64, peer: &SocketAddress) -> Result<u64, OverlayError> {
        let peer = self::peer(peer)?;
        let now = instant(now_us)?;
        Ok(self.lock()?.accepted(now, peer).raw())
    }

    /// The dial the machine asked for succeeded.
    pub(crate) fn connected(&self, now_us: u64, conn: u64) -> Result<(), OverlayError> {
        let conn = ConnId::from_raw(conn);
        self.input(now_us, Input::Connected { conn })
    }

    /// Bytes arrived on `conn`.
    pub(crate) fn received(
        &self,
        now_us: u64,
        conn: u64,
        bytes: &[u8],
    ) -> Result<(), OverlayError> {
        let conn = ConnId::from_raw(conn);
        self.input(now_us, Input::Received { conn, bytes })
    }

    /// `conn` closed, or its dial failed.
    pub(crate) fn closed(&self, now_us: u64, conn: u64) -> Result<(), OverlayError> {
        let conn = ConnId::from_raw(conn);
        self.input(now_us, Input::Closed { conn })
    }

    /// The machine's next output, its borrowed bytes copied out, its event converted by
    /// `event`, in the protocol's output enum `O`.
    pub(crate) fn poll<E, O: TryFrom<Step<E>, Error = OverlayError>>(
        &self,
        now_us: u64,
        event: impl for<'a> FnOnce(M::Event<'a>) -> E,
    ) -> Result<O, OverlayError> {
        let now = instant(now_us)?;
        let step = self.lock()?.poll(now, event);
        step.try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_2_63_are_refused() {
        assert_eq!(instant(5).unwrap(), Instant::from_micros(5));
        assert!(matches!(
            instant(u64::MAX),
            Err(OverlayError::InvalidArgument(_))
        ));
    }
}
