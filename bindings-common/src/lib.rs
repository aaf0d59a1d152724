//! What the bindings for other languages (Kotlin and Swift in `bindings-mobile/`, JS in
//! `bindings-wasm/`) share, written once: the [`Pump`] that owns a machine and carries the
//! contract's inputs and outputs across a call boundary, and the [`Refusal`]s a command can
//! meet, mapped from every protocol's own error type. Each binding adds only what its
//! language needs: how times, addresses and ids are written, its error type, its locking.

use overlay_core::{ConnId, Dest, Input, Instant, Machine, Output, PeerAddr};

mod refusal;
pub use refusal::Refusal;

/// One output of a machine, its borrowed bytes copied out and its event converted, before
/// a binding names it with its own output type.
#[derive(Debug)]
pub enum Step<E> {
    /// Send `payload` to the destination.
    Transmit(Dest, Vec<u8>),
    /// Open a connection to the peer and call it by this id.
    Connect(ConnId, PeerAddr),
    /// Close the connection.
    Close(ConnId),
    /// Something happened.
    Event(E),
    /// Drained: call again at this time, or on input.
    Wait(Option<Instant>),
}

/// A machine owned across a call boundary, with what the boundary keeps: the latest time
/// (the contract's time never goes backwards, and a foreign clock may) and the numbering
/// of the connections the caller accepts.
pub struct Pump<M> {
    /// Boxed: machines are large, fixed-size structs.
    machine: Box<M>,
    now: Instant,
    next_inbound: u64,
}

impl<M: Machine> Pump<M> {
    /// Owns `machine`.
    pub fn new(machine: Box<M>) -> Self {
        Pump {
            machine,
            now: Instant::ZERO,
            next_inbound: 0,
        }
    }

    /// The machine, to read (a status).
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The machine, for a command that takes no time.
    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }

    /// The machine and the caller's time, never earlier than the last one (a command).
    pub fn at(&mut self, now: Instant) -> (&mut M, Instant) {
        self.now = self.now.max(now);
        (&mut self.machine, self.now)
    }

    /// Hands one input to the machine. Malformed bytes are the machine's to drop and
    /// count: no error here.
    pub fn input(&mut self, now: Instant, input: Input<'_>) {
        let (machine, now) = self.at(now);
        machine.handle_input(now, input);
    }

    /// A connection the caller accepted from `peer`: numbered with inbound ids, which never
    /// collide with the machine's own, and reported. Returns its id.
    pub fn accepted(&mut self, now: Instant, peer: PeerAddr) -> ConnId {
        let conn = ConnId::inbound(self.next_inbound);
        self.next_inbound += 1;
        self.input(now, Input::Accepted { conn, peer });
        conn
    }

    /// The machine's next output, with what it borrows copied and its event converted by
    /// `event`.
    pub fn poll<E>(
        &mut self,
        now: Instant,
        event: impl for<'a> FnOnce(M::Event<'a>) -> E,
    ) -> Step<E> {
        let (machine, now) = self.at(now);
        match machine.poll_output(now) {
            Output::Transmit { to, payload } => Step::Transmit(to, payload.to_vec()),
            Output::Connect { conn, peer } => Step::Connect(conn, peer),
            Output::Close { conn } => Step::Close(conn),
            Output::Event(e) => Step::Event(event(e)),
            Output::Wait(deadline) => Step::Wait(deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use overlay_core::chord::Chord;

    #[test]
    fn the_clock_never_goes_back_and_accepted_connections_are_numbered_inbound() {
        let addr = PeerAddr::v4([127, 0, 0, 1], 7000);
        let mut pump = Pump::new(Box::new(Chord::<8, 64>::new(Default::default(), addr, 1)));
        assert_eq!(pump.at(Instant::from_micros(5)).1, Instant::from_micros(5));
        assert_eq!(pump.at(Instant::from_micros(3)).1, Instant::from_micros(5));
        let first = pump.accepted(Instant::ZERO, addr);
        let second = pump.accepted(Instant::ZERO, addr);
        assert_eq!((first, second), (ConnId::inbound(0), ConnId::inbound(1)));
        assert!(matches!(pump.poll(Instant::ZERO, |_| ()), Step::Wait(_)));
    }
}
