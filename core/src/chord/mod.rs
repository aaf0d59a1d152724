//! Chord (Stoica et al., SIGCOMM 2001), with ring maintenance as corrected by Pamela Zave,
//! "Reasoning about identifier spaces: how to make Chord correct" (IEEE TSE 2017).
//!
//! Read Zave's paper first: the 2001 pseudocode is not correct (rings can break, members can
//! be skipped forever). What this module takes from her:
//! * a successor list of `r >= 2` entries that is the backbone of correctness; a node's list
//!   is its successor followed by that successor's list (`reconcile`, see
//!   [`routing::SuccessorList::reconcile`]);
//! * `stabilize` asks the successor for its predecessor and list, and adopts the
//!   predecessor as its new successor only after that node has answered (it is alive);
//! * `notify` (her `rectify`) sets the predecessor when there is none or the notifier is
//!   closer; `check_predecessor` (her `flush`) clears a dead predecessor;
//! * a joining node is not a member, and answers nothing, until it has a successor list.
//!
//! **Lookups are iterative**: the node that asks sends each `FindSuccessor` step itself and
//! collects the answers. So it can time out a dead hop and route around it with the other
//! candidates it holds, it knows the exact path length (the figure Stoica's Fig. 10
//! reports), and no node keeps state for other nodes' lookups (state that a no-alloc node
//! would have to bound, and that an attacker could exhaust).
//!
//! **Keys** live on their successor (the owner) and are replicated on the owner's `r`
//! successors. A joining node receives its keys from its successor when it notifies it; a
//! leaving node hands all its keys to its successor; each owner re-sends its keys to its
//! successors every `replica_refresh_interval` and to every node that enters its successor
//! list, which repairs replicas after failures. A `get` reads the owner and falls back to
//! the replicas.
//!
//! # Example
//!
//! A node joining a ring through a known peer; the driver owns the socket and the clock.
//!
//! ```
//! use overlay_core::chord::{Chord, Config, Event};
//! use overlay_core::{Dest, Instant, Machine, Output, PeerAddr};
//!
//! let mut node: Chord = Chord::new(Config::default(), PeerAddr::v4([127, 0, 0, 1], 7000), 42);
//! let now = Instant::ZERO;
//! let join = node.join(now, PeerAddr::v4([127, 0, 0, 1], 7001)).unwrap();
//! let mut sent = 0;
//! let deadline = loop {
//!     match node.poll_output(now) {
//!         Output::Transmit { to: Dest::Addr(to), payload } => {
//!             assert_eq!(to, PeerAddr::v4([127, 0, 0, 1], 7001)); // socket.send_to(payload, to)
//!             sent += payload.len();
//!         }
//!         Output::Event(Event::Joined { query, .. }) => assert_eq!(query, join),
//!         Output::Wait(deadline) => break deadline,
//!         _ => {}
//!     }
//! };
//! assert!(sent > 0);
//! // Sleep until `deadline` or a datagram; hand the datagram to
//! // `node.handle_input(now, Input::Datagram { from, payload })` and drain again.
//! assert!(deadline.is_some()); // the join request's retransmission timer
//! ```

pub mod config;
pub mod routing;
pub mod store;
pub mod wire;

pub use config::Config;
pub use routing::{Finger, FingerTable, SuccessorList};
pub use store::{Store, StoreError};
pub use wire::NodeRef;

use crate::machine::{Dest, Input, Machine, Output};
use crate::{Duration, Id, Instant, PeerAddr, Rng};
use config::{LOOKUP_DEAD, MAX_DATAGRAM, MAX_JOBS, MAX_OUTBOX, MAX_PENDING, MAX_VALUE};
use heapless::{Deque, Vec};
use routing::{closest_preceding, cover_end};
use wire::{Body, Candidates, Envelope, NodeList, VERSION};

pub use crate::machine::QueryId;

/// Why a command could not be started.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CommandError {
    /// Too many lookups or operations are in progress; retry after one completes.
    Busy,
    /// The node is not (or no longer) a member of a ring.
    NotMember,
    /// The node is already a member (or joining).
    AlreadyMember,
    /// The value is longer than the node's `VALUE` capacity.
    ValueTooLarge,
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CommandError::Busy => "too many operations in progress",
            CommandError::NotMember => "not a member of a Chord ring",
            CommandError::AlreadyMember => "already a member of a Chord ring",
            CommandError::ValueTooLarge => "value larger than the node's value capacity",
        })
    }
}

impl core::error::Error for CommandError {}

/// Why a command failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Failure {
    /// Every node that could answer timed out, or the query limit was reached.
    Unreachable,
    /// The owner's store is full.
    StoreFull,
    /// Too many requests in flight to send the next one.
    Busy,
    /// The node left the ring before the command finished.
    Left,
}

/// What a Chord node reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event<'a> {
    /// The join completed: the node is a member with this successor.
    Joined {
        /// The join's id.
        query: QueryId,
        /// The first successor.
        successor: NodeRef,
    },
    /// A lookup found the key's owner.
    LookupDone {
        /// The lookup's id.
        query: QueryId,
        /// The key.
        key: Id,
        /// Its owner (successor).
        owner: NodeRef,
        /// Nodes queried on the way (Stoica's path length).
        hops: u8,
    },
    /// A value is stored at the key's owner.
    PutDone {
        /// The put's id.
        query: QueryId,
        /// The key's id.
        key: Id,
        /// The node that stored it.
        owner: NodeRef,
        /// Lookup path length.
        hops: u8,
    },
    /// A get finished; `value` is `None` if no replica holds the key.
    GetDone {
        /// The get's id.
        query: QueryId,
        /// The key's id.
        key: Id,
        /// The value.
        value: Option<&'a [u8]>,
        /// Lookup path length.
        hops: u8,
    },
    /// A command failed.
    Failed {
        /// The command's id.
        query: QueryId,
        /// The key it concerned.
        key: Id,
        /// Why.
        reason: Failure,
    },
    /// A graceful leave finished: keys were handed over and neighbours told. The node may
    /// now be dropped.
    Left,
}

/// Counters of what the node dropped or retried: malformed input is counted, never obeyed.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that failed to decode.
    pub malformed: u64,
    /// Datagrams of another envelope version.
    pub wrong_version: u64,
    /// Well-formed input that made no sense now (an unknown reply, a stream input, a
    /// request while not a member).
    pub unexpected: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Messages, replication jobs or a lookup's memory of a dead node dropped because a
    /// queue was full.
    pub dropped: u64,
    /// Values not stored because the store was full.
    pub store_full: u64,
}

/// Where the node is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Created; neither created a ring nor joined one.
    Idle,
    /// Looking up its own successor through a bootstrap node.
    Joining,
    /// A member of a ring.
    Member,
    /// Handing over its keys before leaving.
    Leaving,
    /// Gone; drop it.
    Left,
    /// A client: routes lookups, puts and gets through a contact node without joining, and
    /// serves nobody (no ring member learns of it, so it may come and go freely).
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    User,
    Join,
    Finger(u8),
    Op,
}

#[derive(Clone, Debug)]
struct Lookup {
    query: QueryId,
    key: Id,
    purpose: Purpose,
    queries: u8,
    hops: u8,
    candidates: Candidates,
    /// The last node that answered with closer nodes: where the lookup backtracks to.
    last: Option<NodeRef>,
    /// Nodes that timed out during this lookup; never asked or answered with again.
    dead: Vec<PeerAddr, LOOKUP_DEAD>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingKind {
    LookupStep(QueryId),
    Stabilize,
    StabilizeCandidate,
    CheckPredecessor,
    OpRequest(QueryId),
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    rid: u32,
    to: NodeRef,
    deadline: Instant,
    kind: PendingKind,
    msg: Msg,
    retries_left: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Put,
    Get,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Pending,
    Stored(NodeRef),
    Found,
    NotFound,
    Failed(Failure),
}

#[derive(Clone, Debug)]
struct Op<const VALUE: usize> {
    query: QueryId,
    key: Id,
    kind: OpKind,
    value: Vec<u8, VALUE>,
    targets: NodeList,
    next: usize,
    hops: u8,
    answered: bool,
    outcome: Outcome,
}

/// A message waiting for the transmit buffer; bodies that carry state (lists, values) are
/// filled in from the node's current state when encoded.
#[derive(Clone, Copy, Debug)]
enum Msg {
    FindSuccessor { rid: u32, key: Id },
    Successors { rid: u32 },
    Closer { rid: u32, key: Id },
    GetState { rid: u32 },
    State { rid: u32 },
    Notify,
    Ping { rid: u32 },
    Pong { rid: u32 },
    StoreFromOp { rid: u32, query: QueryId },
    Replica { key: Id },
    Stored { rid: u32, stored: bool },
    Fetch { rid: u32, key: Id },
    Fetched { rid: u32, key: Id },
    Leave,
}

/// Hands the keys in the ring interval `(lo, hi]` to `to`, one `Store` per poll.
#[derive(Clone, Copy, Debug)]
struct Job {
    to: NodeRef,
    lo: Id,
    hi: Id,
    after: Option<Id>,
}

#[derive(Clone, Copy, Debug)]
enum EventRec {
    Joined(QueryId, NodeRef),
    Lookup(QueryId, Id, NodeRef, u8),
    Failed(QueryId, Id, Failure),
    OpDone(QueryId),
    Left,
}

/// A Chord node: a [`Machine`] speaking datagrams.
///
/// `STORE` is the number of key-value pairs it can hold and `VALUE` the largest value in
/// bytes (at most [`config::MAX_VALUE`]); `LOOKUPS` and `OPS` are the lookups and the puts
/// and gets it runs at once (a node that only serves others, as a microcontroller may,
/// needs few). RAM: about 11.5 KiB of routing state, queues and transmit buffer, plus
/// `VALUE` for the value an event carries, about 410 bytes per lookup, `OPS * (VALUE + 740)`
/// for operations in flight and `STORE * (VALUE + 28)` of store;
/// `core::mem::size_of::<Chord<..>>()` is the exact figure.
pub struct Chord<
    const STORE: usize = 64,
    const VALUE: usize = 64,
    const LOOKUPS: usize = { config::MAX_LOOKUPS },
    const OPS: usize = { config::MAX_OPS },
> {
    config: Config,
    me: NodeRef,
    rng: Rng,
    phase: Phase,
    predecessor: Option<NodeRef>,
    /// A notifier that is not closer than the predecessor, kept while the predecessor's
    /// liveness is checked (Zave's rectify): it takes over if the predecessor is dead.
    rectify_candidate: Option<NodeRef>,
    /// A client's entry point into the ring.
    contact: Option<PeerAddr>,
    successors: SuccessorList,
    fingers: FingerTable,
    next_finger: u8,
    store: Store<STORE, VALUE>,
    lookups: Vec<Lookup, LOOKUPS>,
    pending: Vec<Pending, MAX_PENDING>,
    ops: Vec<Op<VALUE>, OPS>,
    outbox: Deque<(PeerAddr, Msg), MAX_OUTBOX>,
    jobs: Deque<Job, MAX_JOBS>,
    events: Deque<EventRec, 16>,
    next_query: u64,
    next_stabilize: Instant,
    next_fix_fingers: Instant,
    next_check_predecessor: Instant,
    next_refresh: Instant,
    stats: Stats,
    event_value: Vec<u8, VALUE>,
    tx: [u8; MAX_DATAGRAM],
}

impl<const STORE: usize, const VALUE: usize, const LOOKUPS: usize, const OPS: usize>
    Chord<STORE, VALUE, LOOKUPS, OPS>
{
    const VALUE_FITS: () = assert!(VALUE <= MAX_VALUE, "VALUE exceeds config::MAX_VALUE");

    /// A node at `addr` whose id is SHA-256 of the address's canonical bytes (truncated to
    /// 160 bits). Call [`Chord::create`] or [`Chord::join`] next.
    pub fn new(config: Config, addr: PeerAddr, seed: u64) -> Self {
        Self::with_id(config, node_id(addr), addr, seed)
    }

    /// A node with a caller-chosen id.
    // Never inlined, so that the node is built straight into the caller's return slot: a
    // firmware puts it in a static, and an inlined constructor would first build a stack
    // copy of this ~20 KiB struct.
    #[inline(never)]
    pub fn with_id(config: Config, id: Id, addr: PeerAddr, seed: u64) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALUE_FITS;
        let mut config = config;
        config.successors = config.successors.clamp(2, config::MAX_SUCCESSORS);
        Chord {
            config,
            me: NodeRef { id, addr },
            rng: Rng::new(seed),
            phase: Phase::Idle,
            predecessor: None,
            rectify_candidate: None,
            contact: None,
            successors: SuccessorList::default(),
            fingers: FingerTable::default(),
            next_finger: 0,
            store: Store::default(),
            lookups: Vec::new(),
            pending: Vec::new(),
            ops: Vec::new(),
            outbox: Deque::new(),
            jobs: Deque::new(),
            events: Deque::new(),
            next_query: 0,
            next_stabilize: Instant::ZERO,
            next_fix_fingers: Instant::ZERO,
            next_check_predecessor: Instant::ZERO,
            next_refresh: Instant::ZERO,
            stats: Stats::default(),
            event_value: Vec::new(),
            tx: [0; MAX_DATAGRAM],
        }
    }

    // ----- commands -----

    /// Starts a new ring of one node.
    pub fn create(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.phase != Phase::Idle {
            return Err(CommandError::AlreadyMember);
        }
        self.become_member(now);
        Ok(())
    }

    /// Joins the ring that `bootstrap` belongs to. [`Event::Joined`] or [`Event::Failed`]
    /// follows with the returned id; after a failure the node is idle and may try again.
    pub fn join(&mut self, now: Instant, bootstrap: PeerAddr) -> Result<QueryId, CommandError> {
        if self.phase != Phase::Idle {
            return Err(CommandError::AlreadyMember);
        }
        let query = self.new_query();
        let candidates = self.entry_point(bootstrap);
        let lookup = Lookup {
            query,
            key: self.me.id,
            purpose: Purpose::Join,
            queries: 0,
            hops: 0,
            candidates,
            last: None,
            dead: Vec::new(),
        };
        self.lookups.push(lookup).map_err(|_| CommandError::Busy)?;
        self.phase = Phase::Joining;
        self.advance_lookup(now, query);
        Ok(query)
    }

    /// Becomes a client of the ring that `contact` belongs to: lookups, puts and gets start
    /// at `contact` instead of at this node's own routing state, and the node never joins.
    /// A contact that does not answer fails the command with [`Failure::Unreachable`].
    /// A client may call it again to change its contact (when the old one stopped
    /// answering, say).
    pub fn client(&mut self, contact: PeerAddr) -> Result<(), CommandError> {
        if !matches!(self.phase, Phase::Idle | Phase::Client) {
            return Err(CommandError::AlreadyMember);
        }
        self.phase = Phase::Client;
        self.contact = Some(contact);
        Ok(())
    }

    /// Finds the owner (successor) of `key`: [`Event::LookupDone`] or [`Event::Failed`].
    pub fn lookup(&mut self, now: Instant, key: Id) -> Result<QueryId, CommandError> {
        self.check_can_route()?;
        let query = self.new_query();
        self.start_lookup(now, query, key, Purpose::User);
        Ok(query)
    }

    /// Stores `value` under SHA-256(`key`) on its owner, which replicates it:
    /// [`Event::PutDone`] or [`Event::Failed`].
    pub fn put(&mut self, now: Instant, key: &[u8], value: &[u8]) -> Result<QueryId, CommandError> {
        self.put_id(now, Id::sha256(key), value)
    }

    /// Stores `value` under a key id.
    pub fn put_id(&mut self, now: Instant, key: Id, value: &[u8]) -> Result<QueryId, CommandError> {
        let value = Vec::from_slice(value).map_err(|_| CommandError::ValueTooLarge)?;
        self.start_op(now, key, OpKind::Put, value)
    }

    /// Reads the value under SHA-256(`key`): [`Event::GetDone`] or [`Event::Failed`].
    pub fn get(&mut self, now: Instant, key: &[u8]) -> Result<QueryId, CommandError> {
        self.get_id(now, Id::sha256(key))
    }

    /// Reads the value under a key id.
    pub fn get_id(&mut self, now: Instant, key: Id) -> Result<QueryId, CommandError> {
        self.start_op(now, key, OpKind::Get, Vec::new())
    }

    /// Leaves gracefully: hands every key to the successor, tells the predecessor and the
    /// successor, then reports [`Event::Left`].
    /// Commands still in progress fail with [`Failure::Left`].
    pub fn leave(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.phase != Phase::Member {
            return Err(CommandError::NotMember);
        }
        self.phase = Phase::Leaving;
        self.jobs.clear();
        self.pending.clear();
        for l in core::mem::take(&mut self.lookups) {
            self.resolve(now, l.query, l.key, l.purpose, l.hops, Err(Failure::Left));
        }
        for i in 0..self.ops.len() {
            if self.ops[i].outcome == Outcome::Pending {
                self.ops[i].outcome = Outcome::Failed(Failure::Left);
                let query = self.ops[i].query;
                self.push_event(EventRec::OpDone(query));
            }
        }
        if let Some(s) = self.successors.first().copied() {
            self.add_job(s, self.me.id, self.me.id);
            self.send(s.addr, Msg::Leave);
        }
        if let Some(p) = self.predecessor
            && Some(p.addr) != self.successors.first().map(|s| s.addr)
        {
            self.send(p.addr, Msg::Leave);
        }
        Ok(())
    }

    // ----- getters -----

    /// This node.
    pub fn node(&self) -> NodeRef {
        self.me
    }
    /// Where the node is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// The predecessor, if known.
    pub fn predecessor(&self) -> Option<NodeRef> {
        self.predecessor
    }
    /// The successor list, nearest first (empty when alone).
    pub fn successors(&self) -> &[NodeRef] {
        self.successors.as_slice()
    }
    /// The finger table.
    pub fn fingers(&self) -> &FingerTable {
        &self.fingers
    }
    /// The key-value store (owned keys and replicas).
    pub fn store(&self) -> &Store<STORE, VALUE> {
        &self.store
    }
    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// The run-time settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- internals: setup -----

    fn new_query(&mut self) -> QueryId {
        self.next_query += 1;
        QueryId(self.next_query)
    }

    fn check_can_route(&self) -> Result<(), CommandError> {
        if !matches!(self.phase, Phase::Member | Phase::Client) {
            return Err(CommandError::NotMember);
        }
        // A full event queue means the driver is not draining: refuse rather than lose a
        // result.
        if self.lookups.is_full() || self.events.is_full() {
            return Err(CommandError::Busy);
        }
        Ok(())
    }

    fn jitter(&mut self, interval: Duration) -> Duration {
        Duration::from_micros(self.rng.below(interval.as_micros().max(1)))
    }

    fn become_member(&mut self, now: Instant) {
        self.phase = Phase::Member;
        // Random first ticks keep a ring's maintenance traffic from synchronising.
        let c = self.config;
        self.next_stabilize = now + self.jitter(c.stabilize_interval);
        self.next_fix_fingers = now + self.jitter(c.fix_fingers_interval);
        self.next_check_predecessor = now + self.jitter(c.check_predecessor_interval);
        self.next_refresh =
            now + c.replica_refresh_interval + self.jitter(c.replica_refresh_interval);
    }

    fn start_op(
        &mut self,
        now: Instant,
        key: Id,
        kind: OpKind,
        value: Vec<u8, VALUE>,
    ) -> Result<QueryId, CommandError> {
        self.check_can_route()?;
        if self.ops.is_full() {
            return Err(CommandError::Busy);
        }
        let query = self.new_query();
        let op = Op {
            query,
            key,
            kind,
            value,
            targets: NodeList::new(),
            next: 0,
            hops: 0,
            answered: false,
            outcome: Outcome::Pending,
        };
        let _ = self.ops.push(op);
        self.start_lookup(now, query, key, Purpose::Op);
        Ok(query)
    }

    // ----- internals: sending -----

    fn send(&mut self, to: PeerAddr, msg: Msg) {
        if to == self.me.addr {
            return; // never talk to ourselves over the network
        }
        if self.outbox.push_back((to, msg)).is_err() {
            self.stats.dropped += 1;
        }
    }

    /// Sends a request and remembers it; `false` if too many are in flight.
    fn request(
        &mut self,
        now: Instant,
        to: NodeRef,
        kind: PendingKind,
        msg: impl FnOnce(u32) -> Msg,
    ) -> bool {
        if self.pending.is_full() {
            self.stats.dropped += 1;
            return false;
        }
        let rid = self.rng.next_u32();
        let deadline = now + self.config.request_timeout;
        let msg = msg(rid);
        let retries_left = self.config.request_retries;
        let _ = self.pending.push(Pending {
            rid,
            to,
            deadline,
            kind,
            msg,
            retries_left,
        });
        self.send(to.addr, msg);
        true
    }

    fn take_pending(&mut self, rid: u32, from: PeerAddr) -> Option<Pending> {
        let i = self
            .pending
            .iter()
            .position(|p| p.rid == rid && p.to.addr == from)?;
        Some(self.pending.swap_remove(i))
    }

    fn add_job(&mut self, to: NodeRef, lo: Id, hi: Id) {
        if to.addr == self.me.addr
            || self
                .jobs
                .iter()
                .any(|j| j.to.addr == to.addr && j.lo == lo && j.hi == hi)
        {
            return;
        }
        if self
            .jobs
            .push_back(Job {
                to,
                lo,
                hi,
                after: None,
            })
            .is_err()
        {
            self.stats.dropped += 1;
        }
    }

    /// Queues the keys this node owns, `(predecessor, me]`, for each node in `to`.
    fn replicate_owned_to(&mut self, to: &[NodeRef]) {
        if let Some(p) = self.predecessor {
            for n in to {
                self.add_job(*n, p.id, self.me.id);
            }
        }
    }

    fn push_event(&mut self, e: EventRec) {
        if self.events.push_back(e).is_err() {
            self.stats.dropped += 1;
        }
    }

    // ----- internals: routing state -----

    fn set_successors(&mut self, head: NodeRef, rest: &[NodeRef]) {
        let mut fresh = NodeList::new();
        let r = self.config.successors;
        self.successors
            .reconcile(self.me.id, r, head, rest, &mut fresh);
        // Nodes that just entered the list hold no replicas of our keys yet.
        self.replicate_owned_to(&fresh);
    }

    /// A node failed to answer (or left): forget it everywhere.
    fn forget(&mut self, addr: PeerAddr) {
        let was_first = self.successors.first().map(|s| s.addr) == Some(addr);
        self.successors.remove(addr);
        self.fingers.remove(addr);
        if self.predecessor.map(|p| p.addr) == Some(addr) {
            self.predecessor = None;
        }
        if self.successors.first().is_none() {
            // All r successors gone at once (Zave: only if r consecutive nodes fail); fall
            // back on the nearest finger rather than believing we are alone.
            let me = self.me.id;
            let nearest = self
                .fingers
                .iter()
                .map(|f| f.node)
                .min_by_key(|n| me.ring_distance(n.id));
            if let Some(n) = nearest {
                self.set_successors(n, &[]);
            }
        }
        if was_first {
            self.next_stabilize = Instant::ZERO; // repair at once
        }
    }

    /// The routing state, read-only. (`encode` builds the same view from field borrows so
    /// that it can write into the transmit buffer at the same time.)
    fn view(&self) -> RoutingView<'_> {
        RoutingView {
            me: self.me,
            config: &self.config,
            successors: &self.successors,
            fingers: &self.fingers,
        }
    }

    // ----- internals: lookups -----

    fn start_lookup(&mut self, now: Instant, query: QueryId, key: Id, purpose: Purpose) {
        let candidates = match self.contact {
            Some(contact) => self.entry_point(contact),
            None => match self.view().route(key) {
                Route::Answer(nodes) => {
                    return self.resolve(now, query, key, purpose, 0, Ok(nodes));
                }
                Route::Ask(candidates) => candidates,
            },
        };
        let lookup = Lookup {
            query,
            key,
            purpose,
            queries: 0,
            hops: 0,
            candidates,
            last: None,
            dead: Vec::new(),
        };
        if self.lookups.push(lookup).is_err() {
            self.resolve(now, query, key, purpose, 0, Err(Failure::Busy));
            return;
        }
        self.advance_lookup(now, query);
    }

    /// The first candidate of a lookup that starts at a node known only by address (a
    /// bootstrap or a client's contact): its id is learnt from its answer.
    fn entry_point(&self, addr: PeerAddr) -> Candidates {
        Candidates::from_iter([NodeRef {
            id: self.me.id,
            addr,
        }])
    }

    /// Sends the lookup's next query, or finishes it.
    fn advance_lookup(&mut self, now: Instant, query: QueryId) {
        let Some(i) = self.lookups.iter().position(|l| l.query == query) else {
            return;
        };
        loop {
            let l = &mut self.lookups[i];
            if l.queries >= self.config.lookup_query_limit {
                return self.finish_lookup(now, i, Err(Failure::Unreachable));
            }
            if l.candidates.is_empty() {
                return self.backtrack(now, i);
            }
            let next = l.candidates.remove(0);
            if next.addr == self.me.addr {
                // We precede the key more closely than anyone asked so far.
                let key = l.key;
                if self.phase == Phase::Member && self.view().owns_step(key) {
                    let nodes = self.view().successors_or_self();
                    return self.finish_lookup(now, i, Ok(nodes));
                }
                continue;
            }
            l.queries += 1;
            let key = l.key;
            if !self.request(now, next, PendingKind::LookupStep(query), |rid| {
                Msg::FindSuccessor { rid, key }
            }) {
                return self.finish_lookup(now, i, Err(Failure::Busy));
            }
            return;
        }
    }

    /// Every candidate timed out. Stoica Sec. 5.3 (IV.E): "lookups proceed, after a timeout,
    /// by another path": ask the last node that answered for its successor list (its
    /// State), whose live entries lead past the dead ones; a lookup that started here
    /// re-reads this node's own tables, from which the timeouts removed the dead.
    fn backtrack(&mut self, now: Instant, i: usize) {
        let l = &mut self.lookups[i];
        let (query, key) = (l.query, l.key);
        match l.last.take() {
            Some(last) => {
                l.queries += 1;
                if !self.request(now, last, PendingKind::LookupStep(query), |rid| {
                    Msg::GetState { rid }
                }) {
                    self.finish_lookup(now, i, Err(Failure::Busy));
                }
            }
            // Nobody answered yet: the lookup started at this member, whose tables no
            // longer hold the nodes that timed out.
            None if self.phase == Phase::Member && l.purpose != Purpose::Join => {
                let mut fresh = match self.view().route(key) {
                    Route::Answer(nodes) => return self.finish_lookup(now, i, Ok(nodes)),
                    Route::Ask(candidates) => candidates,
                };
                let l = &mut self.lookups[i];
                fresh.retain(|c| !l.dead.contains(&c.addr));
                if fresh.is_empty() {
                    return self.finish_lookup(now, i, Err(Failure::Unreachable));
                }
                l.candidates = fresh;
                self.advance_lookup(now, query);
            }
            None => self.finish_lookup(now, i, Err(Failure::Unreachable)),
        }
    }

    fn finish_lookup(&mut self, now: Instant, i: usize, result: Result<NodeList, Failure>) {
        let l = self.lookups.swap_remove(i);
        self.pending
            .retain(|p| p.kind != PendingKind::LookupStep(l.query));
        self.resolve(now, l.query, l.key, l.purpose, l.hops, result);
    }

    fn resolve(
        &mut self,
        now: Instant,
        query: QueryId,
        key: Id,
        purpose: Purpose,
        hops: u8,
        result: Result<NodeList, Failure>,
    ) {
        match (purpose, result) {
            (Purpose::User, Ok(nodes)) => {
                self.push_event(EventRec::Lookup(query, key, nodes[0], hops))
            }
            (Purpose::User, Err(f)) => self.push_event(EventRec::Failed(query, key, f)),
            (Purpose::Join, Ok(nodes)) => {
                self.become_member(now);
                self.set_successors(nodes[0], &nodes[1..]);
                if let Some(s) = self.successors.first().copied() {
                    self.send(s.addr, Msg::Notify);
                    self.push_event(EventRec::Joined(query, s));
                } else {
                    // The ring answered with only ourselves: nobody else is there.
                    self.phase = Phase::Idle;
                    self.push_event(EventRec::Failed(query, key, Failure::Unreachable));
                }
            }
            (Purpose::Join, Err(f)) => {
                self.phase = Phase::Idle;
                self.push_event(EventRec::Failed(query, key, f));
            }
            (Purpose::Finger(bit), Ok(nodes)) => {
                let n = nodes[0];
                self.next_finger = if n.addr == self.me.addr {
                    0
                } else {
                    self.fingers.set(self.me.id, bit, n);
                    cover_end(self.me.id, n.id)
                };
                if self.next_finger >= 160 {
                    self.next_finger = 0;
                }
            }
            (Purpose::Finger(_), Err(_)) => {}
            (Purpose::Op, result) => {
                if let Some(op) = self.ops.iter_mut().find(|o| o.query == query) {
                    op.hops = hops;
                    match result {
                        Ok(nodes) => op.targets = nodes,
                        Err(f) => op.outcome = Outcome::Failed(f),
                    }
                }
                self.advance_op(now, query);
            }
        }
    }

    fn on_lookup_reply(&mut self, now: Instant, query: QueryId, from: NodeRef, body: &Body<'_>) {
        let Some(i) = self.lookups.iter().position(|l| l.query == query) else {
            return;
        };
        let l = &mut self.lookups[i];
        l.hops = l.hops.saturating_add(1);
        match body {
            Body::Successors { nodes, .. } if !nodes.is_empty() => {
                self.finish_lookup(now, i, Ok(nodes.clone()))
            }
            Body::Closer { nodes, .. } => {
                // Only nodes strictly between the one that answered and the key make
                // progress; anything else could loop.
                let dead = &l.dead;
                let pool = nodes.iter().chain(l.candidates.iter());
                let merged =
                    closest_preceding(from.id, l.key, pool.filter(|n| !dead.contains(&n.addr)));
                l.candidates = merged;
                l.last = Some(from);
                self.advance_lookup(now, query);
            }
            // The answer to a backtrack: the responder's successor list, past the dead.
            Body::State { successors, .. } => {
                let dead = &l.dead;
                let live = || successors.iter().filter(|n| !dead.contains(&n.addr));
                let closer = closest_preceding(from.id, l.key, live());
                l.last = Some(from);
                if !closer.is_empty() {
                    l.candidates = closer;
                    return self.advance_lookup(now, query);
                }
                // Everything between the responder and the key is dead: the first live
                // successor at or after the key owns it. A responder with no successors
                // believes it is alone, so it owns every key.
                let key = l.key;
                let owners: NodeList = match successors.is_empty() {
                    true => NodeList::from_iter([from]),
                    false => live()
                        .skip_while(|n| !key.in_half_open(from.id, n.id))
                        .copied()
                        .collect(),
                };
                match owners.is_empty() {
                    true => self.finish_lookup(now, i, Err(Failure::Unreachable)),
                    false => self.finish_lookup(now, i, Ok(owners)),
                }
            }
            _ => {
                self.stats.unexpected += 1;
                self.advance_lookup(now, query);
            }
        }
    }

    // ----- internals: puts and gets -----

    fn advance_op(&mut self, now: Instant, query: QueryId) {
        let Some(i) = self.ops.iter().position(|o| o.query == query) else {
            return;
        };
        loop {
            let op = &mut self.ops[i];
            if op.outcome != Outcome::Pending {
                break;
            }
            let Some(target) = op.targets.get(op.next).copied() else {
                op.outcome = match (op.kind, op.answered) {
                    (OpKind::Get, true) => Outcome::NotFound,
                    _ => Outcome::Failed(Failure::Unreachable),
                };
                break;
            };
            op.next += 1;
            if target.addr != self.me.addr {
                let (kind, key) = (op.kind, op.key);
                let sent = self.request(
                    now,
                    target,
                    PendingKind::OpRequest(query),
                    |rid| match kind {
                        OpKind::Put => Msg::StoreFromOp { rid, query },
                        OpKind::Get => Msg::Fetch { rid, key },
                    },
                );
                if !sent {
                    self.ops[i].outcome = Outcome::Failed(Failure::Busy);
                    break;
                }
                return;
            }
            // We are the owner (or a replica) ourselves.
            match op.kind {
                OpKind::Put => {
                    let (key, value) = (op.key, op.value.clone());
                    let outcome = match self.store_as_owner(key, &value) {
                        Ok(()) => Outcome::Stored(self.me),
                        Err(_) => Outcome::Failed(Failure::StoreFull),
                    };
                    self.ops[i].outcome = outcome;
                }
                OpKind::Get => match self.store.get(op.key) {
                    Some(v) => {
                        let v = Vec::from_slice(v).unwrap_or_default();
                        let op = &mut self.ops[i];
                        op.value = v;
                        op.outcome = Outcome::Found;
                    }
                    None => op.answered = true,
                },
            }
        }
        self.push_event(EventRec::OpDone(query));
    }

    fn on_op_reply(&mut self, now: Instant, query: QueryId, body: &Body<'_>) {
        let Some(op) = self.ops.iter_mut().find(|o| o.query == query) else {
            return;
        };
        match (body, op.kind) {
            (Body::Stored { stored: true, .. }, OpKind::Put) => {
                op.outcome = Outcome::Stored(op.targets[op.next - 1]);
            }
            (Body::Stored { stored: false, .. }, OpKind::Put) => {
                op.outcome = Outcome::Failed(Failure::StoreFull)
            }
            (Body::Fetched { value: Some(v), .. }, OpKind::Get) => match Vec::from_slice(v) {
                Ok(v) => {
                    op.value = v;
                    op.outcome = Outcome::Found;
                }
                Err(_) => self.stats.malformed += 1, // longer than we can hold: try a replica
            },
            (Body::Fetched { value: None, .. }, OpKind::Get) => op.answered = true,
            _ => self.stats.unexpected += 1,
        }
        self.advance_op(now, query);
    }

    /// Stores a key this node owns and queues it for its successors.
    fn store_as_owner(&mut self, key: Id, value: &[u8]) -> Result<(), StoreError> {
        self.store
            .put(key, value, self.me.id)
            .inspect_err(|_| self.stats.store_full += 1)?;
        for i in 0..self.successors.as_slice().len() {
            let to = self.successors.as_slice()[i].addr;
            self.send(to, Msg::Replica { key });
        }
        Ok(())
    }

    // ----- internals: maintenance (Zave's operations) -----

    fn run_timers(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            if p.deadline > now {
                i += 1;
            } else if p.retries_left > 0 {
                p.retries_left -= 1;
                p.deadline = now + self.config.request_timeout;
                let (to, msg) = (p.to.addr, p.msg);
                self.send(to, msg);
                i += 1;
            } else {
                let p = self.pending.swap_remove(i);
                self.stats.timeouts += 1;
                self.on_timeout(now, p);
            }
        }
        if self.phase != Phase::Member {
            return;
        }
        let c = self.config;
        if now >= self.next_stabilize {
            self.next_stabilize = now + c.stabilize_interval;
            self.stabilize(now);
        }
        if now >= self.next_fix_fingers {
            self.next_fix_fingers = now + c.fix_fingers_interval;
            self.fix_fingers(now);
        }
        if now >= self.next_check_predecessor {
            self.next_check_predecessor = now + c.check_predecessor_interval;
            self.check_predecessor(now);
        }
        if now >= self.next_refresh {
            self.next_refresh = now + c.replica_refresh_interval;
            let succs = self.successors.to_list();
            self.replicate_owned_to(&succs);
        }
    }

    fn stabilize(&mut self, now: Instant) {
        let busy = self.pending.iter().any(|p| {
            matches!(
                p.kind,
                PendingKind::Stabilize | PendingKind::StabilizeCandidate
            )
        });
        if busy {
            return;
        }
        match (self.successors.first().copied(), self.predecessor) {
            (Some(s), _) => {
                self.request(now, s, PendingKind::Stabilize, |rid| Msg::GetState { rid });
            }
            // Alone, but someone notified us: it is our successor too, once it answers.
            (None, Some(p)) => {
                self.request(now, p, PendingKind::StabilizeCandidate, |rid| {
                    Msg::GetState { rid }
                });
            }
            (None, None) => {}
        }
    }

    fn fix_fingers(&mut self, now: Instant) {
        if self
            .lookups
            .iter()
            .any(|l| matches!(l.purpose, Purpose::Finger(_)))
            || self.lookups.is_full()
        {
            return;
        }
        // Fingers that fall before the successor are answered locally; the first one beyond
        // it needs a lookup. One lookup per round, as in the paper's fix_fingers.
        let mut bit = self.next_finger;
        let Some(s) = self.successors.first().copied() else {
            return;
        };
        loop {
            let target = self.me.id.wrapping_add(Id::pow2(bit as u32));
            if target.in_half_open(self.me.id, s.id) {
                self.fingers.set(self.me.id, bit, s);
                bit = cover_end(self.me.id, s.id);
                if bit >= 160 {
                    self.next_finger = 0;
                    return;
                }
                continue;
            }
            self.next_finger = bit;
            let query = self.new_query();
            self.start_lookup(now, query, target, Purpose::Finger(bit));
            return;
        }
    }

    fn on_state(
        &mut self,
        now: Instant,
        kind: PendingKind,
        from: NodeRef,
        predecessor: Option<NodeRef>,
        successors: &[NodeRef],
    ) {
        if kind == PendingKind::Stabilize
            && self.successors.first().map(|s| s.addr) != Some(from.addr)
        {
            // A late answer from a node that is no longer our successor (it failed or left
            // meanwhile): adopting its view would bring it back.
            return;
        }
        self.set_successors(from, successors);
        if kind == PendingKind::Stabilize
            && let Some(p) = predecessor
            && p.id.in_open(self.me.id, from.id)
            && p.addr != self.me.addr
        {
            // Adopt p only once it has answered: Zave's fix for dead candidates.
            self.request(now, p, PendingKind::StabilizeCandidate, |rid| {
                Msg::GetState { rid }
            });
            return;
        }
        self.send(from.addr, Msg::Notify);
    }

    /// Zave's flush: ping the predecessor (unless a ping is already out).
    fn check_predecessor(&mut self, now: Instant) {
        let Some(pred) = self.predecessor else { return };
        let busy = self
            .pending
            .iter()
            .any(|p| p.kind == PendingKind::CheckPredecessor && p.to.addr == pred.addr);
        if !busy {
            self.request(now, pred, PendingKind::CheckPredecessor, |rid| Msg::Ping {
                rid,
            });
        }
    }

    /// Zave's rectify: take the notifier as predecessor if there is none or it is closer;
    /// otherwise keep it as a candidate and check that the predecessor is still alive.
    fn on_notify(&mut self, now: Instant, from: NodeRef) {
        if from.addr == self.me.addr {
            return;
        }
        match self.predecessor {
            Some(p) if p.addr == from.addr => {}
            Some(p) if !from.id.in_open(p.id, self.me.id) => {
                let nearer = |c: &NodeRef| from.id.in_open(c.id, self.me.id);
                if self.rectify_candidate.as_ref().is_none_or(nearer) {
                    self.rectify_candidate = Some(from);
                }
                self.check_predecessor(now);
            }
            _ => {
                // The new predecessor now owns (old predecessor, new]: hand those keys over.
                let lo = self.predecessor.map_or(self.me.id, |p| p.id);
                self.predecessor = Some(from);
                self.rectify_candidate = None;
                self.add_job(from, lo, from.id);
            }
        }
    }

    fn on_leave(&mut self, from: NodeRef, predecessor: Option<NodeRef>, successors: &[NodeRef]) {
        let was_successor = self.successors.first().map(|s| s.addr) == Some(from.addr);
        let was_predecessor = self.predecessor.map(|p| p.addr) == Some(from.addr);
        self.successors.remove(from.addr);
        self.fingers.remove(from.addr);
        if was_successor {
            let rest: NodeList = successors
                .iter()
                .filter(|n| n.addr != from.addr)
                .copied()
                .collect();
            if let Some((head, tail)) = rest.split_first() {
                self.set_successors(*head, tail);
            }
            if let Some(s) = self.successors.first().copied() {
                self.send(s.addr, Msg::Notify);
            }
        }
        if was_predecessor {
            self.predecessor = predecessor.filter(|p| p.addr != self.me.addr);
            // We now own the leaver's keys (it hands them to us): replicate them onward.
            let lo = self.predecessor.map_or(self.me.id, |p| p.id);
            for i in 0..self.successors.as_slice().len() {
                let to = self.successors.as_slice()[i];
                self.add_job(to, lo, from.id);
            }
        }
    }

    fn on_timeout(&mut self, now: Instant, p: Pending) {
        self.forget(p.to.addr);
        match p.kind {
            PendingKind::LookupStep(q) => {
                if let Some(l) = self.lookups.iter_mut().find(|l| l.query == q)
                    && l.dead.push(p.to.addr).is_err()
                {
                    self.stats.dropped += 1; // it may be asked again, costing a timeout
                }
                self.advance_lookup(now, q)
            }
            PendingKind::OpRequest(q) => self.advance_op(now, q),
            PendingKind::Stabilize => {}
            // The predecessor is dead (now forgotten): a waiting notifier takes its place.
            // It already holds its own keys, so there is nothing to hand it; the dead
            // node's keys are ours now and go to our successors as replicas.
            // Only if the dead node was still the predecessor (`forget` cleared it); a
            // ping to a former predecessor says nothing about the current one.
            PendingKind::CheckPredecessor if self.predecessor.is_none() => {
                if let Some(c) = self.rectify_candidate.take() {
                    self.predecessor = Some(c);
                    let succs = self.successors.to_list();
                    self.replicate_owned_to(&succs);
                }
            }
            PendingKind::CheckPredecessor => {
                if self.rectify_candidate.is_some() {
                    self.check_predecessor(now);
                }
            }
            PendingKind::StabilizeCandidate => {
                if let Some(s) = self.successors.first().copied() {
                    self.send(s.addr, Msg::Notify);
                }
            }
        }
    }

    // ----- internals: input -----

    fn on_datagram(&mut self, now: Instant, from: PeerAddr, payload: &[u8]) {
        self.stats.received += 1;
        let env = match wire::decode(payload) {
            Ok(env) => env,
            Err(wire::DecodeError::Version(_)) => return self.stats.wrong_version += 1,
            Err(wire::DecodeError::Malformed) => return self.stats.malformed += 1,
        };
        let sender = NodeRef {
            id: env.sender,
            addr: from,
        };
        if from == self.me.addr || env.sender == self.me.id {
            return self.stats.unexpected += 1; // a reflection or an id collision
        }
        let member = self.phase == Phase::Member;
        match env.body {
            Body::FindSuccessor { rid, key } if member => {
                let msg = if self.view().owns_step(key) {
                    Msg::Successors { rid }
                } else {
                    Msg::Closer { rid, key }
                };
                self.send(from, msg);
            }
            Body::GetState { rid } if member => self.send(from, Msg::State { rid }),
            Body::Ping { rid } if member => self.send(from, Msg::Pong { rid }),
            Body::Notify if member => self.on_notify(now, sender),
            Body::Store {
                rid,
                key,
                value,
                owner,
            } if member => {
                if owner {
                    let stored = self.store_as_owner(key, value).is_ok();
                    self.send(from, Msg::Stored { rid, stored });
                    // A put that fell back to us because the owner did not answer: the
                    // owner is most likely our predecessor; give it a copy too.
                    if let Some(p) = self.predecessor
                        && stored
                        && !key.in_half_open(p.id, self.me.id)
                    {
                        self.send(p.addr, Msg::Replica { key });
                    }
                } else if self.store.put(key, value, self.me.id).is_err() {
                    self.stats.store_full += 1;
                }
            }
            Body::Fetch { rid, key } if member => self.send(from, Msg::Fetched { rid, key }),
            Body::Leave {
                predecessor,
                ref successors,
            } if member => self.on_leave(sender, predecessor, successors),
            Body::Successors { rid, .. }
            | Body::Closer { rid, .. }
            | Body::State { rid, .. }
            | Body::Pong { rid }
            | Body::Stored { rid, .. }
            | Body::Fetched { rid, .. } => {
                let Some(p) = self.take_pending(rid, from) else {
                    return self.stats.unexpected += 1;
                };
                match (p.kind, &env.body) {
                    (PendingKind::LookupStep(q), _) => {
                        self.on_lookup_reply(now, q, sender, &env.body)
                    }
                    (PendingKind::OpRequest(q), _) => self.on_op_reply(now, q, &env.body),
                    (
                        kind @ (PendingKind::Stabilize | PendingKind::StabilizeCandidate),
                        Body::State {
                            predecessor,
                            successors,
                            ..
                        },
                    ) if member => self.on_state(now, kind, sender, *predecessor, successors),
                    (PendingKind::CheckPredecessor, Body::Pong { .. }) => {
                        if self.predecessor.map(|p| p.addr) == Some(from) {
                            self.rectify_candidate = None; // the predecessor lives
                        }
                    }
                    _ => self.stats.unexpected += 1,
                }
            }
            _ => self.stats.unexpected += 1, // a request while not a member
        }
    }

    // ----- internals: output -----

    /// Encodes a message straight into the transmit buffer; its length, or `None` if it
    /// vanished (a value deleted meanwhile) or did not fit.
    fn encode(&mut self, msg: Msg) -> Option<usize> {
        let view = RoutingView {
            me: self.me,
            config: &self.config,
            successors: &self.successors,
            fingers: &self.fingers,
        };
        let body = message_body(msg, &view, self.predecessor, &self.ops, &self.store)?;
        let env = Envelope {
            version: VERSION,
            sender: self.me.id,
            body,
        };
        Some(wire::encode(&env, &mut self.tx)?.len())
    }

    /// The next replication message from the job queue.
    fn next_job_message(&mut self) -> Option<(PeerAddr, Msg)> {
        while let Some(job) = self.jobs.front_mut() {
            match self.store.next_in_range(job.after, job.lo, job.hi) {
                Some(e) => {
                    job.after = Some(e.key);
                    return Some((job.to.addr, Msg::Replica { key: e.key }));
                }
                None => {
                    self.jobs.pop_front();
                }
            }
        }
        None
    }

    fn next_deadline(&self) -> Option<Instant> {
        let pending = self.pending.iter().map(|p| p.deadline).min();
        let timers = (self.phase == Phase::Member).then(|| {
            self.next_stabilize
                .min(self.next_fix_fingers)
                .min(self.next_check_predecessor)
                .min(self.next_refresh)
        });
        match (pending, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn event(&mut self, rec: EventRec) -> Event<'_> {
        match rec {
            EventRec::Joined(query, successor) => Event::Joined { query, successor },
            EventRec::Lookup(query, key, owner, hops) => Event::LookupDone {
                query,
                key,
                owner,
                hops,
            },
            EventRec::Failed(query, key, reason) => Event::Failed { query, key, reason },
            EventRec::Left => Event::Left,
            EventRec::OpDone(query) => {
                let Some(i) = self.ops.iter().position(|o| o.query == query) else {
                    return Event::Failed {
                        query,
                        key: Id::ZERO,
                        reason: Failure::Unreachable,
                    };
                };
                let op = self.ops.swap_remove(i);
                let (key, hops) = (op.key, op.hops);
                match op.outcome {
                    Outcome::Stored(owner) => Event::PutDone {
                        query,
                        key,
                        owner,
                        hops,
                    },
                    Outcome::Found => {
                        self.event_value = op.value;
                        Event::GetDone {
                            query,
                            key,
                            value: Some(&self.event_value),
                            hops,
                        }
                    }
                    Outcome::NotFound => Event::GetDone {
                        query,
                        key,
                        value: None,
                        hops,
                    },
                    Outcome::Failed(reason) => Event::Failed { query, key, reason },
                    Outcome::Pending => Event::Failed {
                        query,
                        key,
                        reason: Failure::Unreachable,
                    },
                }
            }
        }
    }
}

impl<const STORE: usize, const VALUE: usize, const LOOKUPS: usize, const OPS: usize> Machine
    for Chord<STORE, VALUE, LOOKUPS, OPS>
{
    type Event<'a> = Event<'a>;

    fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Datagram { from, payload } => {
                if matches!(self.phase, Phase::Leaving | Phase::Left | Phase::Idle) {
                    self.stats.unexpected += 1;
                    return;
                }
                self.on_datagram(now, from, payload)
            }
            // Chord runs over datagrams only.
            Input::Connected { .. }
            | Input::Accepted { .. }
            | Input::Received { .. }
            | Input::Closed { .. } => self.stats.unexpected += 1,
        }
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, Event<'_>> {
        self.run_timers(now);
        while let Some((to, msg)) = self.outbox.pop_front().or_else(|| self.next_job_message()) {
            if let Some(n) = self.encode(msg) {
                self.stats.sent += 1;
                return Output::Transmit {
                    to: Dest::Addr(to),
                    payload: &self.tx[..n],
                };
            }
        }
        if self.phase == Phase::Leaving {
            self.phase = Phase::Left;
            self.push_event(EventRec::Left);
        }
        if let Some(rec) = self.events.pop_front() {
            return Output::Event(self.event(rec));
        }
        Output::Wait(self.next_deadline())
    }
}

/// Where a node's own tables put a key.
// A short-lived return value on the stack; there is no allocator to box the larger side.
#[allow(clippy::large_enum_variant)]
enum Route {
    /// The key is in `(me, successor]`: the successor list (or this node alone) answers it.
    Answer(NodeList),
    /// The nodes to ask next, closest to the key first.
    Ask(Candidates),
}

/// Read-only routing state: what replies and lookups are computed from.
struct RoutingView<'a> {
    me: NodeRef,
    config: &'a Config,
    successors: &'a SuccessorList,
    fingers: &'a FingerTable,
}

impl RoutingView<'_> {
    /// The successor list, or this node alone (a ring of one owns every key).
    fn successors_or_self(&self) -> NodeList {
        let mut l = self.successors.to_list();
        if l.is_empty() {
            let _ = l.push(self.me);
        }
        l
    }

    /// Answers `key` from the successor list, or names the nodes to ask.
    fn route(&self, key: Id) -> Route {
        match self.owns_step(key) {
            true => Route::Answer(self.successors_or_self()),
            false => Route::Ask(self.closest_preceding(key)),
        }
    }

    /// `key` lies between this node and its successor, so the successor list answers it.
    fn owns_step(&self, key: Id) -> bool {
        match self.successors.first() {
            None => true,
            Some(s) => key.in_half_open(self.me.id, s.id),
        }
    }

    /// The known nodes that most closely precede `key`, among those lookups may route
    /// through: the fingers, and the whole successor list or only its head.
    fn closest_preceding(&self, key: Id) -> Candidates {
        let succs = self.successors.as_slice();
        let routed = if self.config.route_through_successor_list {
            succs
        } else {
            &succs[..succs.len().min(1)]
        };
        let known = routed.iter().chain(self.fingers.iter().map(|f| &f.node));
        closest_preceding(self.me.id, key, known)
    }
}

/// The body of an outgoing message, filled in from the node's current state.
fn message_body<'a, const VALUE: usize, const STORE: usize>(
    msg: Msg,
    view: &RoutingView<'_>,
    predecessor: Option<NodeRef>,
    ops: &'a [Op<VALUE>],
    store: &'a Store<STORE, VALUE>,
) -> Option<Body<'a>> {
    Some(match msg {
        Msg::FindSuccessor { rid, key } => Body::FindSuccessor { rid, key },
        Msg::Successors { rid } => Body::Successors {
            rid,
            nodes: view.successors_or_self(),
        },
        Msg::Closer { rid, key } => Body::Closer {
            rid,
            nodes: view.closest_preceding(key),
        },
        Msg::GetState { rid } => Body::GetState { rid },
        Msg::State { rid } => Body::State {
            rid,
            predecessor,
            successors: view.successors.to_list(),
        },
        Msg::Notify => Body::Notify,
        Msg::Ping { rid } => Body::Ping { rid },
        Msg::Pong { rid } => Body::Pong { rid },
        Msg::StoreFromOp { rid, query } => {
            let op = ops.iter().find(|o| o.query == query)?;
            Body::Store {
                rid,
                key: op.key,
                value: &op.value,
                owner: true,
            }
        }
        Msg::Replica { key } => Body::Store {
            rid: 0,
            key,
            value: store.get(key)?,
            owner: false,
        },
        Msg::Stored { rid, stored } => Body::Stored { rid, stored },
        Msg::Fetch { rid, key } => Body::Fetch { rid, key },
        Msg::Fetched { rid, key } => Body::Fetched {
            rid,
            value: store.get(key),
        },
        Msg::Leave => Body::Leave {
            predecessor,
            successors: view.successors.to_list(),
        },
    })
}

/// The id a node at `addr` takes: SHA-256 of the address's canonical bytes, truncated.
pub fn node_id(addr: PeerAddr) -> Id {
    let mut buf = [0; 18];
    let n = addr.write_canonical(&mut buf);
    Id::sha256(&buf[..n])
}

#[cfg(test)]
mod tests;
