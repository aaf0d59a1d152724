//! Chord peers on real sockets: the core machine on the runtime, with async commands that
//! resolve when the machine reports their result.

use std::net::SocketAddr;

use overlay_core::chord::{
    Chord, CommandError, Config, Event, Failure, NodeRef, Phase, QueryId, Stats,
};
use overlay_core::{Id, Instant, PeerAddr};
use tokio::sync::oneshot;

use crate::runtime::{Control, Gone, Host, Peer, Sockets, Waiting, Waits};

/// Keys a host peer can hold (owned and replicas).
pub const STORE: usize = 256;
/// The largest value a host peer stores: the protocol's limit, so that a host peer never
/// refuses what another implementation may store.
pub const VALUE: usize = overlay_core::chord::config::MAX_VALUE;

/// The machine a host peer runs.
pub type Node = Chord<STORE, VALUE>;

/// Why a Chord command did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChordError {
    /// The machine refused to start it.
    Refused(CommandError),
    /// It started and failed.
    Failed(Failure),
    /// The peer stopped before it finished.
    Gone,
    /// The machine answered with another command's kind of result: a bug.
    Internal,
}

impl std::fmt::Display for ChordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChordError::Refused(e) => write!(f, "refused: {e}"),
            ChordError::Failed(Failure::Unreachable) => f.write_str("no node answered"),
            ChordError::Failed(Failure::StoreFull) => f.write_str("the owner's store is full"),
            ChordError::Failed(Failure::Busy) => f.write_str("too many requests in flight"),
            ChordError::Failed(Failure::Left) => f.write_str("the peer left the ring"),
            ChordError::Gone => f.write_str("the peer has stopped"),
            ChordError::Internal => f.write_str("internal error: a result of the wrong kind"),
        }
    }
}

impl std::error::Error for ChordError {}

impl From<Gone> for ChordError {
    fn from(_: Gone) -> Self {
        ChordError::Gone
    }
}

/// A finished command's result, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Joined(NodeRef),
    Found { owner: NodeRef, hops: u8 },
    Got { value: Option<Vec<u8>>, hops: u8 },
    Failed(Failure),
}

/// Routes each event to the caller waiting for its query.
#[derive(Default)]
pub struct ChordHost {
    waiting: Waiting<Outcome>,
    left: Option<oneshot::Sender<()>>,
}

impl Waits<Outcome> for ChordHost {
    fn waiting(&mut self) -> &mut Waiting<Outcome> {
        &mut self.waiting
    }
}

impl Host<Node> for ChordHost {
    fn on_event(&mut self, _now: Instant, event: Event<'_>) -> Control {
        tracing::debug!(?event, "chord");
        let (query, outcome) = match event {
            Event::Left => {
                if let Some(tx) = self.left.take() {
                    let _ = tx.send(());
                }
                return Control::Stop;
            }
            Event::Joined { query, successor } => (query, Outcome::Joined(successor)),
            Event::LookupDone {
                query, owner, hops, ..
            }
            | Event::PutDone {
                query, owner, hops, ..
            } => (query, Outcome::Found { owner, hops }),
            Event::GetDone {
                query, value, hops, ..
            } => (
                query,
                Outcome::Got {
                    value: value.map(<[u8]>::to_vec),
                    hops,
                },
            ),
            Event::Failed { query, reason, .. } => (query, Outcome::Failed(reason)),
        };
        self.waiting.resolve(query, outcome);
        Control::Continue
    }
}

/// A peer's routing state and counters at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The node.
    pub node: NodeRef,
    /// Its phase.
    pub phase: Phase,
    /// Its predecessor.
    pub predecessor: Option<NodeRef>,
    /// Its successor list.
    pub successors: Vec<NodeRef>,
    /// The finger nodes (the table keeps each node once), in finger order.
    pub fingers: Vec<NodeRef>,
    /// Keys held (owned and replicas).
    pub keys: usize,
    /// The machine's counters.
    pub stats: Stats,
}

/// A Chord peer running on a UDP socket.
pub struct ChordPeer {
    peer: Peer<Node, ChordHost>,
}

impl ChordPeer {
    /// Binds a UDP socket and starts an idle node on it; its id is derived from the bound
    /// address, which must be the one other peers reach it at.
    pub async fn bind(addr: SocketAddr, config: Config, seed: u64) -> std::io::Result<Self> {
        let sockets = Sockets::udp(addr).await?;
        let local = sockets.local_addr()?;
        let machine = Box::new(Node::new(config, PeerAddr::from(local), seed));
        let peer = Peer::spawn(machine, ChordHost::default(), sockets)?;
        Ok(ChordPeer { peer })
    }

    /// The peer's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// The peer's node id.
    pub fn id(&self) -> Id {
        overlay_core::chord::node_id(PeerAddr::from(self.addr()))
    }

    /// Starts a new ring with this peer alone in it.
    pub async fn create(&self) -> Result<(), ChordError> {
        self.peer
            .call(|m, _, now| m.create(now))
            .await?
            .map_err(ChordError::Refused)
    }

    /// Joins the ring `bootstrap` belongs to; the first successor.
    pub async fn join(&self, bootstrap: SocketAddr) -> Result<NodeRef, ChordError> {
        let via = PeerAddr::from(bootstrap);
        match self.query(move |m, now| m.join(now, via)).await? {
            Outcome::Joined(successor) => Ok(successor),
            other => Err(unexpected(other)),
        }
    }

    /// Makes this peer a client of the ring `contact` belongs to (it never joins).
    pub async fn client(&self, contact: SocketAddr) -> Result<(), ChordError> {
        let contact = PeerAddr::from(contact);
        self.peer
            .call(move |m, _, _| m.client(contact))
            .await?
            .map_err(ChordError::Refused)
    }

    /// The owner of `key` and the lookup's path length.
    pub async fn lookup(&self, key: Id) -> Result<(NodeRef, u8), ChordError> {
        match self.query(move |m, now| m.lookup(now, key)).await? {
            Outcome::Found { owner, hops } => Ok((owner, hops)),
            other => Err(unexpected(other)),
        }
    }

    /// Stores `value` under SHA-256(`key`); the node that stored it and the path length.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<(NodeRef, u8), ChordError> {
        let (key, value) = (Id::sha256(key), value.to_vec());
        match self.query(move |m, now| m.put_id(now, key, &value)).await? {
            Outcome::Found { owner, hops } => Ok((owner, hops)),
            other => Err(unexpected(other)),
        }
    }

    /// The value under SHA-256(`key`) (`None`: no replica holds it) and the path length.
    pub async fn get(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, u8), ChordError> {
        let key = Id::sha256(key);
        match self.query(move |m, now| m.get_id(now, key)).await? {
            Outcome::Got { value, hops } => Ok((value, hops)),
            other => Err(unexpected(other)),
        }
    }

    /// The peer's routing state now.
    pub async fn snapshot(&self) -> Result<Snapshot, ChordError> {
        Ok(self.peer.call(|m, _, _| snapshot(m)).await?)
    }

    /// Leaves gracefully (keys handed to the successor, neighbours told) and waits until
    /// the node is done and its task has stopped; the number of keys it handed over.
    pub async fn leave(&self) -> Result<usize, ChordError> {
        let (keys, done) = self
            .peer
            .call(|m, host, now| {
                m.leave(now)?;
                let (tx, rx) = oneshot::channel();
                host.left = Some(tx);
                Ok((m.store().len(), rx))
            })
            .await?
            .map_err(ChordError::Refused)?;
        done.await.map_err(|_| ChordError::Gone)?;
        Ok(keys)
    }

    /// Ends the peer at once, as a crash would.
    pub fn kill(&self) {
        self.peer.kill();
    }

    /// Starts a command and waits for its result event.
    async fn query(
        &self,
        start: impl FnOnce(&mut Node, Instant) -> Result<QueryId, CommandError> + Send + 'static,
    ) -> Result<Outcome, ChordError> {
        match self.peer.query(start).await?.map_err(ChordError::Refused)? {
            Outcome::Failed(f) => Err(ChordError::Failed(f)),
            outcome => Ok(outcome),
        }
    }
}

/// An outcome of the wrong kind for its command: the machine broke its contract.
fn unexpected(outcome: Outcome) -> ChordError {
    tracing::error!(
        ?outcome,
        "a Chord command finished with another command's result"
    );
    ChordError::Internal
}

fn snapshot(m: &Node) -> Snapshot {
    Snapshot {
        node: m.node(),
        phase: m.phase(),
        predecessor: m.predecessor(),
        successors: m.successors().to_vec(),
        fingers: m.fingers().iter().map(|f| f.node).collect(),
        keys: m.store().len(),
        stats: m.stats(),
    }
}
