//! Mainline DHT peers on real sockets: the core machine on the runtime, with async commands
//! that resolve when the machine reports their result.

use std::net::SocketAddr;

use crate::runtime::{Gone, Host, Peer, Sockets, Waiting, Waits};
use overlay_core::dht::{
    CommandError, Config, Dht, Event, Failure, LookupStats, Stats, item_target,
};
use overlay_core::{Id, Instant, PeerAddr, QueryId};

/// The machine a host peer runs: a 256-node table, 16 lookups at once, 4096 announced
/// peers and 256 BEP 44 items.
pub type Node = Dht<256, 16, 4096, 256>;

/// Why a DHT command did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhtError {
    /// The machine refused to start it.
    Refused(CommandError),
    /// It started and failed.
    Failed(Failure),
    /// The peer stopped before it finished.
    Gone,
    /// The machine answered with another command's kind of result: a bug.
    Internal,
}

impl std::fmt::Display for DhtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DhtError::Refused(e) => write!(f, "refused: {e}"),
            DhtError::Failed(Failure::NoNodes) => f.write_str("the routing table is empty"),
            DhtError::Failed(Failure::Unreachable) => f.write_str("no node answered"),
            DhtError::Failed(Failure::ItemLost) => {
                f.write_str("the item was evicted before it was sent")
            }
            DhtError::Gone => f.write_str("the peer has stopped"),
            DhtError::Internal => f.write_str("internal error: a result of the wrong kind"),
        }
    }
}

impl std::error::Error for DhtError {}

impl From<Gone> for DhtError {
    fn from(_: Gone) -> Self {
        DhtError::Gone
    }
}

/// A finished command's result, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Bootstrapped; nodes in the table.
    Bootstrapped(usize),
    /// The K closest nodes.
    Nodes(Vec<(Id, SocketAddr)>, LookupStats),
    /// Peers of a torrent.
    Peers(Vec<SocketAddr>, LookupStats),
    /// A write stored on this many nodes.
    Stored(u8, LookupStats),
    /// A BEP 44 item (bencoded), if found.
    Item(Option<Vec<u8>>, LookupStats),
    /// A failure.
    Failed(Failure),
}

/// Routes each event to the caller waiting for its query.
#[derive(Default)]
pub struct DhtHost {
    waiting: Waiting<Outcome>,
}

impl Waits<Outcome> for DhtHost {
    fn waiting(&mut self) -> &mut Waiting<Outcome> {
        &mut self.waiting
    }
}

impl Host<Node> for DhtHost {
    fn on_event(&mut self, _now: Instant, event: Event<'_>) -> crate::runtime::Control {
        tracing::debug!(?event, "dht");
        let (query, outcome) = match event {
            Event::Bootstrapped { query, nodes } => (query, Outcome::Bootstrapped(nodes)),
            Event::Nodes {
                query,
                nodes,
                stats,
                ..
            } => (
                query,
                Outcome::Nodes(
                    nodes.iter().map(|(id, a)| (*id, a.socket_addr())).collect(),
                    stats,
                ),
            ),
            Event::Peers {
                query,
                peers,
                stats,
                ..
            } => (
                query,
                Outcome::Peers(peers.iter().map(PeerAddr::socket_addr).collect(), stats),
            ),
            Event::Announced {
                query,
                stored,
                stats,
                ..
            }
            | Event::Stored {
                query,
                stored,
                stats,
                ..
            } => (query, Outcome::Stored(stored, stats)),
            Event::Item {
                query,
                value,
                stats,
                ..
            } => (query, Outcome::Item(value.map(<[u8]>::to_vec), stats)),
            Event::Failed { query, reason } => (query, Outcome::Failed(reason)),
            Event::NewId { id, external } => {
                tracing::info!(%external, id = %format_args!("{id:x}"), "BEP 42: new node id for our external address");
                return crate::runtime::Control::Continue;
            }
        };
        self.waiting.resolve(query, outcome);
        crate::runtime::Control::Continue
    }
}

/// A peer's routing state and counters at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The node id.
    pub id: Id,
    /// Nodes in the routing table, with the bucket each is in.
    pub nodes: Vec<(usize, Id, SocketAddr)>,
    /// Buckets in use.
    pub buckets: usize,
    /// Announced peers stored.
    pub peers: usize,
    /// BEP 44 items stored.
    pub items: usize,
    /// The machine's counters.
    pub stats: Stats,
}

/// A Mainline DHT peer running on a UDP socket.
pub struct DhtPeer {
    peer: Peer<Node, DhtHost>,
    id: Id,
}

impl DhtPeer {
    /// Binds a UDP socket and starts a node on it (not yet bootstrapped).
    pub async fn bind(addr: SocketAddr, config: Config, seed: u64) -> std::io::Result<Self> {
        let sockets = Sockets::udp(addr).await?;
        let local = sockets.local_addr()?;
        let machine = Box::new(Node::new(config, PeerAddr::from(local), seed));
        let id = machine.id();
        let peer = Peer::spawn(machine, DhtHost::default(), sockets)?;
        Ok(DhtPeer { peer, id })
    }

    /// The peer's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// The node id it started with (BEP 42 may give it another for a public external
    /// address: [`DhtPeer::snapshot`] has the current one).
    pub fn id(&self) -> Id {
        self.id
    }

    /// Joins the DHT through these nodes; the routing table's size afterwards.
    pub async fn bootstrap(&self, nodes: &[SocketAddr]) -> Result<usize, DhtError> {
        let nodes: Vec<PeerAddr> = nodes.iter().copied().map(PeerAddr::from).collect();
        match self.query(move |m, now| m.bootstrap(now, &nodes)).await? {
            Outcome::Bootstrapped(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// The K nodes closest to `target`.
    pub async fn find_node(
        &self,
        target: Id,
    ) -> Result<(Vec<(Id, SocketAddr)>, LookupStats), DhtError> {
        match self.query(move |m, now| m.find_node(now, target)).await? {
            Outcome::Nodes(nodes, stats) => Ok((nodes, stats)),
            other => Err(unexpected(other)),
        }
    }

    /// Peers of a torrent.
    pub async fn get_peers(
        &self,
        info_hash: Id,
    ) -> Result<(Vec<SocketAddr>, LookupStats), DhtError> {
        match self
            .query(move |m, now| m.get_peers(now, info_hash))
            .await?
        {
            Outcome::Peers(peers, stats) => Ok((peers, stats)),
            other => Err(unexpected(other)),
        }
    }

    /// Announces a torrent on `port` (`None`: the DHT socket's port); the nodes that
    /// stored it.
    pub async fn announce(
        &self,
        info_hash: Id,
        port: Option<u16>,
    ) -> Result<(u8, LookupStats), DhtError> {
        match self
            .query(move |m, now| m.announce(now, info_hash, port))
            .await?
        {
            Outcome::Stored(n, stats) => Ok((n, stats)),
            other => Err(unexpected(other)),
        }
    }

    /// BEP 44: stores a bencoded value; its target and the nodes that stored it.
    pub async fn put(&self, value: &[u8]) -> Result<(Id, u8, LookupStats), DhtError> {
        let target = item_target(value);
        let value = value.to_vec();
        match self.query(move |m, now| Ok(m.put(now, &value)?.0)).await? {
            Outcome::Stored(n, stats) => Ok((target, n, stats)),
            other => Err(unexpected(other)),
        }
    }

    /// BEP 44: the bencoded value stored under `target`, if any node has it.
    pub async fn get(&self, target: Id) -> Result<(Option<Vec<u8>>, LookupStats), DhtError> {
        match self.query(move |m, now| m.get(now, target)).await? {
            Outcome::Item(value, stats) => Ok((value, stats)),
            other => Err(unexpected(other)),
        }
    }

    /// The peer's routing state now.
    pub async fn snapshot(&self) -> Result<Snapshot, DhtError> {
        Ok(self
            .peer
            .call(|m, _, _| {
                let t = m.table();
                Snapshot {
                    id: m.id(),
                    nodes: t
                        .iter()
                        .map(|n| (t.bucket_of(n.id), n.id, n.addr.socket_addr()))
                        .collect(),
                    buckets: t.buckets(),
                    peers: m.stored_peers(),
                    items: m.stored_items(),
                    stats: m.stats(),
                }
            })
            .await?)
    }

    /// Ends the peer at once, as a crash would.
    pub fn kill(&self) {
        self.peer.kill();
    }

    /// Starts a command and waits for its result event.
    async fn query(
        &self,
        start: impl FnOnce(&mut Node, Instant) -> Result<QueryId, CommandError> + Send + 'static,
    ) -> Result<Outcome, DhtError> {
        match self.peer.query(start).await?.map_err(DhtError::Refused)? {
            Outcome::Failed(f) => Err(DhtError::Failed(f)),
            outcome => Ok(outcome),
        }
    }
}

/// An outcome of the wrong kind for its command: the machine broke its contract.
fn unexpected(outcome: Outcome) -> DhtError {
    tracing::error!(
        ?outcome,
        "a DHT command finished with another command's result"
    );
    DhtError::Internal
}
