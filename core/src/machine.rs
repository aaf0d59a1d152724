//! The sans-IO contract that every protocol in this crate implements, and that every driver
//! (simulator, host runtime, bindings, firmware) is written against once.
//!
//! Shaped after str0m's `handle_input` / `poll_output` and quinn-proto's documented call
//! order: inputs go in, outputs come out, time is always passed in.

use crate::{Instant, PeerAddr};

/// A stream connection (TCP or anything ordered and reliable), named by a number.
///
/// Two allocators share the space without coordination: the machine numbers the
/// connections it opens with [`Output::Connect`] (high bit clear, [`ConnId::outbound`]),
/// the driver numbers the ones it accepts (high bit set, [`ConnId::inbound`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ConnId(u64);

impl ConnId {
    const INBOUND: u64 = 1 << 63;

    /// The `n`th connection the machine opened.
    pub const fn outbound(n: u64) -> Self {
        ConnId(n & !Self::INBOUND)
    }
    /// The `n`th connection the driver accepted.
    pub const fn inbound(n: u64) -> Self {
        ConnId(n | Self::INBOUND)
    }
    /// Whether the driver accepted this connection (the remote side dialled us).
    pub const fn is_inbound(self) -> bool {
        self.0 & Self::INBOUND != 0
    }
    /// The raw number, for drivers' tables and foreign bindings.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// Rebuilds an id from [`ConnId::raw`].
    pub const fn from_raw(raw: u64) -> Self {
        ConnId(raw)
    }
}

/// Names a command (a lookup, a put, a join, ...); the event that reports its result carries
/// the same id. Each machine numbers its own commands.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct QueryId(pub u64);

/// Something the outside world tells a machine.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// A datagram arrived (UDP, or any unreliable message link).
    Datagram {
        /// The sender.
        from: PeerAddr,
        /// The datagram's bytes, exactly as received; the machine validates them.
        payload: &'a [u8],
    },
    /// A connection the machine asked for with [`Output::Connect`] is established.
    Connected {
        /// The machine's own id for it.
        conn: ConnId,
    },
    /// The driver accepted a connection from `peer` and named it `conn` (inbound).
    Accepted {
        /// The driver's id for it ([`ConnId::inbound`]).
        conn: ConnId,
        /// The remote end.
        peer: PeerAddr,
    },
    /// Bytes arrived on a connection, in order. Framing is the machine's job: a read may
    /// hold part of a message or several.
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// A connection closed, was reset, or could not be established.
    Closed {
        /// The connection.
        conn: ConnId,
    },
}

/// Where a transmission goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dest {
    /// A datagram to this address.
    Addr(PeerAddr),
    /// Bytes on this connection.
    Conn(ConnId),
}

/// Something a machine asks its driver to do, or tells it.
#[derive(Debug)]
pub enum Output<'a, E> {
    /// Send these bytes. They borrow the machine's transmit buffer: copy or send them before
    /// the next call into the machine.
    Transmit {
        /// A datagram's destination or a connection.
        to: Dest,
        /// The bytes.
        payload: &'a [u8],
    },
    /// Open a stream connection to `peer`; report the outcome with [`Input::Connected`] or
    /// [`Input::Closed`].
    Connect {
        /// The machine's id for the connection ([`ConnId::outbound`]).
        conn: ConnId,
        /// Whom to dial.
        peer: PeerAddr,
    },
    /// Close this connection. No [`Input::Closed`] follows.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// The result of a command or a change of state the application may care about.
    Event(E),
    /// Nothing more to do now. Call [`Machine::poll_output`] again at the instant given
    /// (`None`: only when an input or command arrives). `Wait(Some(t))` with `t <= now`
    /// means the machine has more bounded work (hashing, proof-of-work) and wants to be
    /// called again as soon as the driver has served its other inputs.
    Wait(Option<Instant>),
}

/// A protocol state machine. Every protocol in this crate implements it.
///
/// # The contract
///
/// * **Construction** takes a configuration and a `seed` for the machine's own [`Rng`]:
///   identical seed and identical inputs give identical outputs.
/// * **Time** is passed in as `now` with every call and must never go backwards.
/// * **Inputs** go in through [`Machine::handle_input`]. Malformed or unexpected input is
///   dropped and counted (each machine exposes its counters); it never panics and never
///   corrupts state.
/// * **Commands** are inherent methods of each machine (`chord.lookup(now, key)`); they
///   return an id at once and their result arrives later as an [`Output::Event`] carrying
///   that id. No callbacks into the driver.
/// * **Outputs** come out of [`Machine::poll_output`]: datagrams and stream bytes to send,
///   connections to open or close, events, and finally [`Output::Wait`].
///
/// # Call order
///
/// ```text
/// let mut m = SomeMachine::new(config, seed);
/// loop {
///     // 1. drain: after construction, after every handle_input, after every command,
///     //    and whenever the last Wait deadline has passed
///     let deadline = loop {
///         match m.poll_output(now) {
///             Output::Transmit { to, payload } => send(to, payload),
///             Output::Connect { conn, peer } => dial(conn, peer),
///             Output::Close { conn } => close(conn),
///             Output::Event(e) => deliver(e),
///             Output::Wait(deadline) => break deadline,
///         }
///     };
///     // 2. sleep until an input arrives, a command is issued, or `deadline` passes
///     // 3. m.handle_input(now, input) / m.some_command(now, ...), then go to 1
/// }
/// ```
///
/// **Drain after every mutation**: a driver calls `poll_output` until it returns `Wait`
/// after each `handle_input` or command. Timers fire inside `poll_output` when `now` has
/// reached their deadline, so there is no separate timeout input. Each call does a bounded
/// amount of work, so a driver can interleave many machines fairly.
///
/// [`Rng`]: crate::Rng
pub trait Machine {
    /// What the machine reports: results of commands and changes of state. May borrow
    /// from the machine until the next call.
    type Event<'a>
    where
        Self: 'a;

    /// Feeds one input. Never panics; malformed input is dropped and counted.
    fn handle_input(&mut self, now: Instant, input: Input<'_>);

    /// Returns the next thing to do. Call until it returns [`Output::Wait`].
    fn poll_output(&mut self, now: Instant) -> Output<'_, Self::Event<'_>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_and_outbound_conn_ids_never_collide() {
        for n in [0, 1, 42, u64::MAX >> 1] {
            assert_ne!(ConnId::inbound(n), ConnId::outbound(n));
            assert!(ConnId::inbound(n).is_inbound());
            assert!(!ConnId::outbound(n).is_inbound());
            assert_eq!(
                ConnId::from_raw(ConnId::inbound(n).raw()),
                ConnId::inbound(n)
            );
        }
    }
}
