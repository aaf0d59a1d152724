//! The pump: one UDP socket and one [`Machine`], driven by the contract in
//! `overlay_core::machine`. Datagrams go in, `poll_output` is drained until `Wait`, and the
//! task sleeps until the deadline or the next datagram. No protocol logic lives here: a
//! protocol's [`App`] issues commands and reports events.

use embassy_futures::select::select;
use embassy_net::udp::UdpSocket;
use embassy_net::{IpAddress, IpEndpoint};
use embassy_time::Timer;
use overlay_core::{Dest, Duration, Input, Instant, Machine, Output, PeerAddr};

/// The application side of a peer: what the firmware does with one machine.
pub trait App {
    /// The protocol.
    type Machine: Machine;
    /// Reports an event from the machine.
    fn event(&mut self, now: Instant, event: <Self::Machine as Machine>::Event<'_>);
    /// Called every [`App::TICK`]: issue commands, log the status, save routing state.
    fn tick(&mut self, now: Instant, machine: &mut Self::Machine, link: &LinkStats);
    /// How often [`App::tick`] runs.
    const TICK: Duration = Duration::from_secs(2);
}

/// What the pump itself dropped: the machine counts what it received and rejected.
#[derive(Clone, Copy, Default, Debug)]
pub struct LinkStats {
    /// Datagrams the stack would not send (no route, not IPv4, too large).
    pub unsent: u64,
}

/// The time as core counts it.
pub fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros())
}

/// Runs `machine` on `socket` for ever. Datagrams are handed to the machine where they
/// lie in the socket's buffer: no second copy, no size limit but the buffer's.
pub async fn run<A: App>(socket: &mut UdpSocket<'_>, machine: &mut A::Machine, app: &mut A) -> ! {
    let mut link = LinkStats::default();
    let mut next_tick = now();
    loop {
        let t = now();
        if t >= next_tick {
            app.tick(t, machine, &link);
            next_tick = t + A::TICK;
        }
        let deadline = drain(socket, machine, app, &mut link).await;
        let wake = deadline.map_or(next_tick, |d| d.min(next_tick));
        let timer = Timer::at(embassy_time::Instant::from_micros(wake.as_micros()));
        let receive = socket.recv_from_with(|payload, meta| {
            let from = peer_addr(meta.endpoint);
            machine.handle_input(now(), Input::Datagram { from, payload });
        });
        select(receive, timer).await;
    }
}

/// Polls until the machine waits; its deadline.
async fn drain<A: App>(
    socket: &mut UdpSocket<'_>,
    machine: &mut A::Machine,
    app: &mut A,
    link: &mut LinkStats,
) -> Option<Instant> {
    loop {
        let t = now();
        let refused = match machine.poll_output(t) {
            Output::Transmit {
                to: Dest::Addr(to),
                payload,
            } => {
                let sent = match endpoint(to) {
                    Some(ep) => socket.send_to(payload, ep).await.is_ok(),
                    None => false,
                };
                link.unsent += u64::from(!sent);
                None
            }
            Output::Transmit {
                to: Dest::Conn(conn),
                ..
            }
            | Output::Connect { conn, .. }
            | Output::Close { conn } => Some(conn),
            Output::Event(event) => {
                app.event(t, event);
                None
            }
            Output::Wait(deadline) => return deadline,
        };
        // Streams are not carried here: a datagram machine never asks, and one that did
        // learns at once that the connection is closed.
        if let Some(conn) = refused {
            machine.handle_input(t, Input::Closed { conn });
        }
    }
}

/// The stack is built for IPv4 only (`proto-ipv4`), so every sender is an IPv4 one.
fn peer_addr(ep: IpEndpoint) -> PeerAddr {
    let IpAddress::Ipv4(ip) = ep.addr;
    PeerAddr::v4(ip.octets(), ep.port)
}

fn endpoint(addr: PeerAddr) -> Option<IpEndpoint> {
    match addr.socket_addr() {
        core::net::SocketAddr::V4(a) => Some(IpEndpoint::new(IpAddress::Ipv4(*a.ip()), a.port())),
        core::net::SocketAddr::V6(_) => None,
    }
}

/// A UDP socket on `$stack` bound to `$port`, with buffers of `$rx` and `$tx` bytes in
/// statics of its own (one set per use of the macro). Size them for the largest burst the
/// protocol receives: the stack drops datagrams that do not fit.
#[macro_export]
macro_rules! udp_socket {
    ($stack:expr, $port:expr, rx: $rx:literal, tx: $tx:literal) => {{
        use embassy_net::udp::{PacketMetadata, UdpSocket};
        use static_cell::ConstStaticCell;
        static RX: ConstStaticCell<[u8; $rx]> = ConstStaticCell::new([0; $rx]);
        static TX: ConstStaticCell<[u8; $tx]> = ConstStaticCell::new([0; $tx]);
        static RX_META: ConstStaticCell<[PacketMetadata; 8]> =
            ConstStaticCell::new([PacketMetadata::EMPTY; 8]);
        static TX_META: ConstStaticCell<[PacketMetadata; 4]> =
            ConstStaticCell::new([PacketMetadata::EMPTY; 4]);
        let mut socket =
            UdpSocket::new($stack, RX_META.take(), RX.take(), TX_META.take(), TX.take());
        if let Err(e) = socket.bind($port) {
            $crate::log!("cannot bind UDP port {}: {:?}", $port, e);
        }
        socket
    }};
}
