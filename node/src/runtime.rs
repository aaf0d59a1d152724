//! The host runtime: one driver, written once, that runs any [`Machine`] over real tokio
//! sockets. It holds no protocol logic: datagrams go to UDP, connections to TCP (framing is
//! the machine's), `Wait(deadline)` becomes a timer, and events go to a [`Host`].
//!
//! A peer is a task that owns its machine and its host; the outside world talks to it with
//! [`Command`]s, closures run on the task between two drains, so a command sees the machine
//! exactly as the contract says (and results come back as events through the host).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use overlay_core::machine::{ConnId, Dest, Input, Machine, Output};
use overlay_core::{Instant, PeerAddr, QueryId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

/// Largest UDP payload (IPv4); anything a socket can deliver fits, so nothing is truncated
/// before the machine sees it.
const MAX_UDP: usize = 65_535;
/// Bytes read from a stream at a time.
const STREAM_READ: usize = 16 * 1024;
/// How long a dial may take before the machine is told the connection closed.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A connection whose remote end reads nothing for this long is closed.
const WRITE_STALL: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a stopping peer waits for its connections to send what is queued.
const STOP_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);
/// Pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
/// Datagrams taken straight from the socket, without a trip through `select!`, before the
/// other sources get their turn: under load this saves a timer and a wake-up per datagram.
const UDP_BURST: u32 = 32;

/// Maps tokio's clock onto the machines' [`Instant`] (microseconds since the peer started).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Clock {
            origin: tokio::time::Instant::now(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    /// The tokio instant of `t`; `None` if it lies beyond what the platform's clock can
    /// represent (a machine's "never", saturated).
    fn at(&self, t: Instant) -> Option<tokio::time::Instant> {
        self.origin
            .checked_add(std::time::Duration::from_micros(t.as_micros()))
    }
}

/// Stack of the thread [`on_large_stack`] runs on.
const LARGE_STACK: usize = 64 << 20;

/// Runs `f` on a thread of its own with a 64 MiB stack, for building a machine: machines
/// are built by value (core allocates nothing), and an unoptimized build moves a large one
/// (a Gnutella servent is 1.9 MB, a torrent session 7 MB) through the stack more than once
/// on its way to the heap, more than the 2 MiB stack of a tokio worker or a test thread.
pub async fn on_large_stack<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(LARGE_STACK)
        .spawn(move || {
            let _ = tx.send(f());
        })?;
    rx.await
        .map_err(|_| io::Error::other(format!("{name}: the build failed")))
}

/// Whether a peer keeps running after an event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Control {
    /// Keep running.
    Continue,
    /// Stop the peer (after a graceful leave, say); its task returns the machine and host.
    Stop,
}

/// The application side of a peer: receives the machine's events.
pub trait Host<M: Machine>: Send + 'static {
    /// Called for every event, in order.
    fn on_event(&mut self, now: Instant, event: M::Event<'_>) -> Control;
}

/// Work for a peer's task: runs between two drains with the machine, the host and `now`.
pub type Command<M, H> = Box<dyn FnOnce(&mut M, &mut H, Instant) + Send>;

/// The sockets a peer owns.
#[derive(Debug, Default)]
pub struct Sockets {
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
}

impl Sockets {
    /// A TCP listener bound to `addr` and no UDP socket, for stream-only protocols.
    pub async fn tcp(addr: SocketAddr) -> io::Result<Self> {
        Sockets::default().with_tcp(addr).await
    }

    /// A UDP socket bound to `addr`, for datagram protocols.
    pub async fn udp(addr: SocketAddr) -> io::Result<Self> {
        Ok(Sockets {
            udp: Some(UdpSocket::bind(addr).await?),
            tcp: None,
        })
    }

    /// Adds a TCP listener bound to `addr`, for stream protocols (dialling out needs none).
    pub async fn with_tcp(mut self, addr: SocketAddr) -> io::Result<Self> {
        self.tcp = Some(TcpListener::bind(addr).await?);
        Ok(self)
    }

    /// The TCP listener's address, if there is one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|t| t.local_addr().ok())
    }

    /// The UDP address, else the TCP listener's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match (&self.udp, &self.tcp) {
            (Some(u), _) => u.local_addr(),
            (None, Some(t)) => t.local_addr(),
            (None, None) => Err(io::Error::new(io::ErrorKind::NotConnected, "no socket")),
        }
    }
}

/// What the driver counted about its sockets (the machine counts what it dropped itself).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct IoStats {
    /// Datagrams received and handed to the machine.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Sends that failed (unreachable address, no UDP socket, closed connection).
    pub send_errors: u64,
    /// Receive errors (on some platforms an ICMP port-unreachable surfaces here); the socket
    /// goes on.
    pub recv_errors: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections dialled successfully.
    pub connected: u64,
}

/// What stream tasks tell the driver.
enum StreamInput {
    Connected(ConnId, TcpStream),
    Received(ConnId, Vec<u8>),
    Closed(ConnId),
}

/// An open (or opening) connection: its writer queue and the tasks serving it.
struct Conn {
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// The reader, or the dialler while connecting.
    reader: AbortHandle,
    writer_task: Option<AbortHandle>,
}

impl Conn {
    /// The remote end is gone: stop both sides at once.
    fn abort(self) {
        self.reader.abort();
        if let Some(w) = self.writer_task {
            w.abort();
        }
    }

    /// We close: the reader stops; the writer sends what is queued, then shuts down.
    fn close(self) {
        self.reader.abort();
    }
}

/// Callers waiting for the outcomes of their commands, by query id. A host keeps one and
/// resolves an entry when the machine reports that query's event.
pub struct Waiting<O>(HashMap<QueryId, oneshot::Sender<O>>);

impl<O> Default for Waiting<O> {
    fn default() -> Self {
        Waiting(HashMap::new())
    }
}

impl<O> Waiting<O> {
    /// Someone waits for `query`'s outcome.
    pub fn register(&mut self, query: QueryId) -> oneshot::Receiver<O> {
        let (tx, rx) = oneshot::channel();
        self.0.insert(query, tx);
        rx
    }

    /// `query` finished with `outcome` (nobody may be waiting any more).
    pub fn resolve(&mut self, query: QueryId, outcome: O) {
        if let Some(tx) = self.0.remove(&query) {
            let _ = tx.send(outcome);
        }
    }
}

/// A host whose callers wait for command outcomes of type `O` ([`Peer::query`]).
pub trait Waits<O> {
    /// The waiting callers.
    fn waiting(&mut self) -> &mut Waiting<O>;
}

/// Another way to reach a running peer's task, for work that runs beside it (a host that
/// streams a file into its machine, say): cloneable; the task still ends when its [`Peer`]
/// is dropped or killed, and calls then fail with [`Gone`]. Its [`PeerHandle::call`] is
/// [`Peer::call`].
pub struct PeerHandle<M, H> {
    commands: mpsc::UnboundedSender<Command<M, H>>,
}

impl<M, H> Clone for PeerHandle<M, H> {
    fn clone(&self) -> Self {
        PeerHandle {
            commands: self.commands.clone(),
        }
    }
}

impl<M: 'static, H: 'static> PeerHandle<M, H> {
    /// Runs `f` on the peer's task and returns its result; [`Gone`] once the task ended.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut M, &mut H, Instant) -> R + Send + 'static,
    ) -> Result<R, Gone> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Box::new(move |m, h, now| {
                let _ = tx.send(f(m, h, now));
            }))
            .map_err(|_| Gone)?;
        rx.await.map_err(|_| Gone)
    }
}

/// A running peer: a task driving one machine. Dropping the handle ends the task, as
/// [`Peer::kill`] does; [`Peer::finished`] waits for the host to stop it instead.
pub struct Peer<M: Machine, H> {
    handle: PeerHandle<M, H>,
    /// `None` only inside [`Peer::finished`].
    task: Option<JoinHandle<Finished<M, H>>>,
    addr: SocketAddr,
}

/// A peer's machine, host and socket counters after it stopped.
pub struct Finished<M, H> {
    /// The machine.
    pub machine: Box<M>,
    /// The host.
    pub host: H,
    /// Socket counters.
    pub io: IoStats,
}

/// The peer's task has ended (it stopped or was killed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gone;

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the peer has stopped")
    }
}

impl std::error::Error for Gone {}

impl<M, H> Peer<M, H>
where
    M: Machine + Send + 'static,
    H: Host<M>,
{
    /// Starts driving `machine` on `sockets`. Must be called inside a tokio runtime.
    pub fn spawn(machine: Box<M>, host: H, sockets: Sockets) -> io::Result<Self> {
        Self::spawn_with(machine, |_| host, sockets)
    }

    /// Like [`Peer::spawn`], for a host that needs a [`PeerHandle`] to its own peer:
    /// `host` gets one before the first event. A host that keeps it keeps the command
    /// channel open; the task still ends when the [`Peer`] is dropped or killed.
    pub fn spawn_with(
        machine: Box<M>,
        host: impl FnOnce(PeerHandle<M, H>) -> H,
        sockets: Sockets,
    ) -> io::Result<Self> {
        let addr = sockets.local_addr()?;
        let (commands, rx) = mpsc::unbounded_channel();
        let handle = PeerHandle { commands };
        let host = host(handle.clone());
        let task = Some(tokio::spawn(drive(machine, host, sockets, rx)));
        Ok(Peer { handle, task, addr })
    }

    /// A cloneable handle to the peer's task.
    pub fn handle(&self) -> PeerHandle<M, H> {
        self.handle.clone()
    }

    /// The address the peer's socket is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `f` on the peer's task and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut M, &mut H, Instant) -> R + Send + 'static,
    ) -> Result<R, Gone> {
        self.handle.call(f).await
    }

    /// Starts a command (`start` returns its query id, or why it refused) and waits for its
    /// outcome, which the host resolves when the machine reports that query's event.
    pub async fn query<O, E>(
        &self,
        start: impl FnOnce(&mut M, Instant) -> Result<QueryId, E> + Send + 'static,
    ) -> Result<Result<O, E>, Gone>
    where
        H: Waits<O>,
        O: Send + 'static,
        E: Send + 'static,
    {
        let waiting = self
            .call(move |m, h, now| Ok(h.waiting().register(start(m, now)?)))
            .await?;
        match waiting {
            Ok(rx) => rx.await.map(Ok).map_err(|_| Gone),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Ends the peer at once, as a crash would: its sockets close, nobody is told.
    pub fn kill(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits until the host stops the peer; its machine, host and counters.
    pub async fn finished(mut self) -> Result<Finished<M, H>, Gone> {
        match self.task.take() {
            Some(t) => t.await.map_err(|_| Gone),
            None => Err(Gone),
        }
    }
}

impl<M: Machine, H> Drop for Peer<M, H> {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// The driver: drains the machine, then waits for a socket, a stream task, a command or the
/// machine's deadline, feeds it in, and drains again.
async fn drive<M, H>(
    mut machine: Box<M>,
    mut host: H,
    sockets: Sockets,
    mut commands: mpsc::UnboundedReceiver<Command<M, H>>,
) -> Finished<M, H>
where
    M: Machine + Send + 'static,
    H: Host<M>,
{
    let clock = Clock::start();
    let Sockets { udp, tcp } = sockets;
    let (stream_tx, mut stream_rx) = mpsc::unbounded_channel();
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    // Owns every stream task, so that they end with the peer.
    let mut tasks = JoinSet::new();
    let mut next_inbound = 0u64;
    let mut io = IoStats::default();
    let mut buf = vec![0u8; MAX_UDP];
    let mut commands_open = true;
    // After an accept error (out of file descriptors, say), wait before trying again.
    let mut accept_after: Option<tokio::time::Instant> = None;
    let mut stopping = false;
    let mut burst = 0;
    loop {
        let now = clock.now();
        // 1. Drain until the machine waits. A host that stops the peer still gets the
        //    outputs queued after its stopping event carried out.
        let deadline = loop {
            // A datagram the socket could not take at once: sent, awaiting, after the
            // output (which may borrow a non-Send event type) is gone.
            let mut blocked = None;
            match machine.poll_output(now) {
                Output::Transmit {
                    to: Dest::Addr(to),
                    payload,
                } => match udp
                    .as_ref()
                    .map(|u| u.try_send_to(payload, to.socket_addr()))
                {
                    Some(Ok(_)) => io.datagrams_out += 1,
                    Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        blocked = Some((payload.to_vec(), to.socket_addr()))
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, %to, "udp send");
                        io.send_errors += 1;
                    }
                    None => io.send_errors += 1,
                },
                Output::Transmit {
                    to: Dest::Conn(conn),
                    payload,
                } => {
                    let sent = conns
                        .get(&conn)
                        .and_then(|c| c.writer.as_ref())
                        .is_some_and(|w| w.send(payload.to_vec()).is_ok());
                    if !sent {
                        io.send_errors += 1;
                    }
                }
                Output::Connect { conn, peer } => {
                    let tx = stream_tx.clone();
                    let reader = tasks.spawn(async move {
                        let dial = TcpStream::connect(peer.socket_addr());
                        let input = match tokio::time::timeout(CONNECT_TIMEOUT, dial).await {
                            Ok(Ok(stream)) => StreamInput::Connected(conn, stream),
                            _ => StreamInput::Closed(conn),
                        };
                        let _ = tx.send(input);
                    });
                    let opening = Conn {
                        writer: None,
                        reader,
                        writer_task: None,
                    };
                    conns.insert(conn, opening);
                }
                Output::Close { conn } => {
                    if let Some(c) = conns.remove(&conn) {
                        c.close();
                    }
                }
                Output::Event(e) => {
                    if host.on_event(now, e) == Control::Stop {
                        stopping = true;
                    }
                }
                Output::Wait(deadline) => break deadline,
            }
            if let (Some((bytes, to)), Some(u)) = (blocked, &udp) {
                match u.send_to(&bytes, to).await {
                    Ok(_) => io.datagrams_out += 1,
                    Err(_) => io.send_errors += 1,
                }
            }
        };
        if stopping {
            // Readers stop; writers get a moment to send what is queued.
            for (_, c) in conns.drain() {
                c.close();
            }
            let flush = async { while tasks.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(STOP_FLUSH, flush).await;
            return Finished { machine, host, io };
        }
        // Forget the stream tasks that have ended.
        while tasks.try_join_next().is_some() {}
        // 2a. A datagram already waiting goes in at once, up to a burst.
        if burst < UDP_BURST
            && let Some(u) = &udp
            && let Ok((n, from)) = u.try_recv_from(&mut buf)
        {
            burst += 1;
            io.datagrams_in += 1;
            let input = Input::Datagram {
                from: PeerAddr::from(from),
                payload: &buf[..n],
            };
            machine.handle_input(clock.now(), input);
            continue;
        }
        burst = 0;
        // 2b. Wait for something to happen (in random order: no source can starve another).
        let timer = deadline.and_then(|d| clock.at(d));
        tokio::select! {
            cmd = commands.recv(), if commands_open => match cmd {
                Some(cmd) => cmd(&mut machine, &mut host, clock.now()),
                None => commands_open = false,
            },
            r = recv_from(udp.as_ref(), &mut buf) => match r {
                Ok((n, from)) => {
                    io.datagrams_in += 1;
                    let input = Input::Datagram { from: PeerAddr::from(from), payload: &buf[..n] };
                    machine.handle_input(clock.now(), input);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive");
                    io.recv_errors += 1;
                }
            },
            r = accept(tcp.as_ref(), accept_after) => match r {
                Ok((stream, peer)) => {
                    accept_after = None;
                    let conn = ConnId::inbound(next_inbound);
                    next_inbound += 1;
                    io.accepted += 1;
                    conns.insert(conn, open_stream(conn, stream, &stream_tx, &mut tasks));
                    machine.handle_input(clock.now(), Input::Accepted { conn, peer: PeerAddr::from(peer) });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept");
                    accept_after = Some(tokio::time::Instant::now() + ACCEPT_BACKOFF);
                }
            },
            Some(s) = stream_rx.recv() => match s {
                StreamInput::Connected(conn, stream) => {
                    // Unknown if the machine closed it while dialling: the stream drops.
                    if let Some(c) = conns.get_mut(&conn) {
                        io.connected += 1;
                        *c = open_stream(conn, stream, &stream_tx, &mut tasks);
                        machine.handle_input(clock.now(), Input::Connected { conn });
                    }
                }
                StreamInput::Received(conn, bytes) => if conns.contains_key(&conn) {
                    machine.handle_input(clock.now(), Input::Received { conn, bytes: &bytes });
                },
                StreamInput::Closed(conn) => if let Some(c) = conns.remove(&conn) {
                    c.abort();
                    machine.handle_input(clock.now(), Input::Closed { conn });
                },
            },
            _ = sleep_until(timer) => {}
        }
    }
}

/// Starts a connection's reader and writer tasks.
fn open_stream(
    conn: ConnId,
    stream: TcpStream,
    tx: &mpsc::UnboundedSender<StreamInput>,
    tasks: &mut JoinSet<()>,
) -> Conn {
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let (writer, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer_task = tasks.spawn(async move {
        while let Some(bytes) = queue.recv().await {
            // A remote that stops reading for this long is treated as gone.
            match tokio::time::timeout(WRITE_STALL, write.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        let _ = write.shutdown().await;
    });
    let tx = tx.clone();
    let reader = tasks.spawn(async move {
        let mut buf = vec![0u8; STREAM_READ];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send(StreamInput::Received(conn, buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(StreamInput::Closed(conn));
    });
    Conn {
        writer: Some(writer),
        reader,
        writer_task: Some(writer_task),
    }
}

async fn recv_from(udp: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match udp {
        Some(u) => u.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn accept(
    tcp: Option<&TcpListener>,
    not_before: Option<tokio::time::Instant>,
) -> io::Result<(TcpStream, SocketAddr)> {
    if let Some(t) = not_before {
        tokio::time::sleep_until(t).await;
    }
    match tcp {
        Some(t) => t.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
