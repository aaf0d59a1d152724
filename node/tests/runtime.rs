//! The runtime's stream and timer paths, driven by a small machine written for the test:
//! dial, accept, bytes both ways, close, a refused dial, a timer, and a host that stops.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use overlay_core::machine::{ConnId, Dest, Input, Machine, Output};
use overlay_core::{Duration, Instant, PeerAddr};
use overlay_node::runtime::{Control, Host, Peer, Sockets};
use tokio::sync::mpsc;

/// What the echo machine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Note {
    Accepted,
    Connected(ConnId),
    Received(ConnId, Vec<u8>),
    Closed(ConnId),
    Tick,
    Greeted,
}

/// Accepted connections echo what they receive in upper case; dialled ones send "hello"
/// and close after the echo. One timer fires 50 ms after the first poll.
#[derive(Default)]
struct Echo {
    out: VecDeque<Action>,
    notes: VecDeque<Note>,
    wake: Option<Instant>,
    ticked: bool,
    dialled: u64,
    tx: Vec<u8>,
    /// Sent to every accepted connection, then reported as `Greeted`.
    greeting: Option<Vec<u8>>,
}

enum Action {
    Send(ConnId, Vec<u8>),
    Connect(ConnId, PeerAddr),
    Close(ConnId),
}

impl Echo {
    fn dial(&mut self, peer: PeerAddr) -> ConnId {
        let conn = ConnId::outbound(self.dialled);
        self.dialled += 1;
        self.out.push_back(Action::Connect(conn, peer));
        conn
    }
}

impl Machine for Echo {
    type Event<'a> = Note;

    fn handle_input(&mut self, _now: Instant, input: Input<'_>) {
        match input {
            Input::Datagram { .. } => {}
            Input::Accepted { conn, .. } => {
                self.notes.push_back(Note::Accepted);
                if let Some(g) = self.greeting.clone() {
                    self.out.push_back(Action::Send(conn, g));
                    self.notes.push_back(Note::Greeted);
                }
            }
            Input::Connected { conn } => {
                self.notes.push_back(Note::Connected(conn));
                self.out.push_back(Action::Send(conn, b"hello".to_vec()));
            }
            Input::Received { conn, bytes } => {
                self.notes.push_back(Note::Received(conn, bytes.to_vec()));
                if conn.is_inbound() {
                    self.out
                        .push_back(Action::Send(conn, bytes.to_ascii_uppercase()));
                } else {
                    self.out.push_back(Action::Close(conn));
                }
            }
            Input::Closed { conn } => self.notes.push_back(Note::Closed(conn)),
        }
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, Note> {
        let wake = *self.wake.get_or_insert(now + Duration::from_millis(50));
        if !self.ticked && now >= wake {
            self.ticked = true;
            self.notes.push_back(Note::Tick);
        }
        if let Some(a) = self.out.pop_front() {
            return match a {
                Action::Send(conn, bytes) => {
                    self.tx = bytes;
                    Output::Transmit {
                        to: Dest::Conn(conn),
                        payload: &self.tx,
                    }
                }
                Action::Connect(conn, peer) => Output::Connect { conn, peer },
                Action::Close(conn) => Output::Close { conn },
            };
        }
        if let Some(n) = self.notes.pop_front() {
            return Output::Event(n);
        }
        Output::Wait((!self.ticked).then_some(wake))
    }
}

/// Forwards notes to the test; stops the peer on the notes `.1` picks.
struct Forward(mpsc::UnboundedSender<Note>, fn(&Note) -> bool);

impl Host<Echo> for Forward {
    fn on_event(&mut self, _now: Instant, note: Note) -> Control {
        let stop = (self.1)(&note);
        let _ = self.0.send(note);
        if stop {
            Control::Stop
        } else {
            Control::Continue
        }
    }
}

fn never(_: &Note) -> bool {
    false
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Note>) -> Note {
    tokio::time::timeout(StdDuration::from_secs(5), rx.recv())
        .await
        .expect("a note within 5 s")
        .expect("the peer is running")
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test]
async fn streams_dial_accept_echo_close_and_timers_fire() {
    let (server_tx, mut server) = mpsc::unbounded_channel();
    let sockets = Sockets::udp(local())
        .await
        .unwrap()
        .with_tcp(local())
        .await
        .unwrap();
    let tcp_addr = sockets.tcp_addr().unwrap();
    // The server stops itself when its connection closes.
    let server_peer = Peer::spawn(
        Box::new(Echo::default()),
        Forward(server_tx, |n| matches!(n, Note::Closed(_))),
        sockets,
    )
    .unwrap();

    let (client_tx, mut client) = mpsc::unbounded_channel();
    let client_peer = Peer::spawn(
        Box::new(Echo::default()),
        Forward(client_tx, never),
        Sockets::udp(local()).await.unwrap(),
    )
    .unwrap();
    // Timers: each machine's 50 ms tick arrives without any input.
    assert_eq!(next(&mut client).await, Note::Tick);
    assert_eq!(next(&mut server).await, Note::Tick);

    let conn = client_peer
        .call(move |m, _, _| m.dial(PeerAddr::from(tcp_addr)))
        .await
        .unwrap();
    assert_eq!(next(&mut client).await, Note::Connected(conn));
    assert_eq!(next(&mut server).await, Note::Accepted);
    let Note::Received(inbound, bytes) = next(&mut server).await else {
        panic!("the server got no bytes");
    };
    assert!(inbound.is_inbound());
    assert_eq!(bytes, b"hello");
    assert_eq!(
        next(&mut client).await,
        Note::Received(conn, b"HELLO".to_vec())
    );
    // The client closed after the echo: the server sees Closed, stops, and hands back its
    // machine and counters.
    assert_eq!(next(&mut server).await, Note::Closed(inbound));
    let finished = server_peer.finished().await.unwrap();
    assert_eq!(finished.io.accepted, 1);

    // A dial to a port nobody listens on reports Closed.
    let dead = std::net::TcpListener::bind(local())
        .unwrap()
        .local_addr()
        .unwrap();
    let refused = client_peer
        .call(move |m, _, _| m.dial(PeerAddr::from(dead)))
        .await
        .unwrap();
    assert_eq!(next(&mut client).await, Note::Closed(refused));

    // A killed peer is gone: commands fail, nothing is left running.
    client_peer.kill();
    let ended = async {
        while !client_peer.is_finished() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(StdDuration::from_secs(5), ended)
        .await
        .expect("killed within 5 s");
    assert!(client_peer.call(|_, _, _| ()).await.is_err());
}

/// A host that stops its peer right after queueing bytes on a connection does not lose
/// them: the peer sends what is queued before its task ends.
#[tokio::test]
async fn a_stopping_peer_sends_what_it_queued() {
    use tokio::io::AsyncReadExt;
    let greeting: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    let machine = Echo {
        greeting: Some(greeting.clone()),
        ..Echo::default()
    };
    let (tx, _notes) = mpsc::unbounded_channel();
    let sockets = Sockets::default().with_tcp(local()).await.unwrap();
    let addr = sockets.tcp_addr().unwrap();
    let peer = Peer::spawn(
        Box::new(machine),
        Forward(tx, |n| *n == Note::Greeted),
        sockets,
    )
    .unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut got = Vec::new();
    let read = stream.read_to_end(&mut got);
    tokio::time::timeout(StdDuration::from_secs(5), read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), greeting.len());
    assert!(got == greeting);
    tokio::time::timeout(StdDuration::from_secs(5), peer.finished())
        .await
        .unwrap()
        .unwrap();
}
