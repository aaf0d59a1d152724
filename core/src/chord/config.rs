//! Chord's timers and capacities.
//!
//! Timer defaults follow the MIT Chord/DHash implementation's order of magnitude (maintenance
//! rounds about once a second, RPC timeouts well under that); they are configurable because
//! a simulator, a LAN and a microcontroller want different trade-offs between maintenance
//! traffic and repair speed. Capacities are constants of the crate: the RAM they cost is
//! reported by `core::mem::size_of::<Chord>()` (see docs/chord.md for the figure).

use crate::Duration;

/// The most successors a node keeps: the upper bound for [`Config::successors`].
pub const MAX_SUCCESSORS: usize = 16;
/// Distinct finger-table entries kept. A ring of N nodes has about log2(N) distinct fingers,
/// so 32 serves any ring up to ~2^32 nodes; the closest fingers go first when it is full
/// (the successor list covers that stretch anyway).
pub const MAX_FINGERS: usize = 32;
/// Requests awaiting a reply at once.
pub const MAX_PENDING: usize = 24;
/// Lookups in progress at once (user lookups, puts, gets, finger fixes and the join): the
/// default of `Chord`'s `LOOKUPS`.
pub const MAX_LOOKUPS: usize = 8;
/// Puts and gets in progress at once: the default of `Chord`'s `OPS`.
pub const MAX_OPS: usize = 4;
/// Messages queued for transmission. When full, new messages are dropped and counted, as a
/// full socket buffer would drop them; the protocol's timeouts recover.
pub const MAX_OUTBOX: usize = 32;
/// Key-replication jobs queued (one per target node and key range): room to refresh all
/// `MAX_SUCCESSORS` successors at once, plus hand-offs.
pub const MAX_JOBS: usize = MAX_SUCCESSORS + 8;
/// Candidates an iterative lookup keeps, and the most a node returns in one `Closer` reply.
pub const LOOKUP_CANDIDATES: usize = 4;
/// Timed-out nodes one lookup remembers, so that backtracking never returns to them.
pub const LOOKUP_DEAD: usize = 8;
/// The largest datagram a Chord node sends: envelope, successor list and a value must fit.
pub const MAX_DATAGRAM: usize = 1400;
/// The largest value a node can store (the `VALUE` parameter may not exceed it).
pub const MAX_VALUE: usize = 1024;

/// Run-time settings of a Chord node.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `r`, the successor-list length. Zave (2017) shows a ring survives up to `r - 1`
    /// consecutive failures and that `r >= 2` is needed for correctness. Default 8; clamped
    /// to `2..=MAX_SUCCESSORS`. Keys are replicated on the `r` successors of their owner.
    pub successors: usize,
    /// How often `stabilize` runs.
    pub stabilize_interval: Duration,
    /// How often one finger is refreshed (`fix_fingers`).
    pub fix_fingers_interval: Duration,
    /// How often the predecessor is pinged (`check_predecessor`, Zave's `flush`).
    pub check_predecessor_interval: Duration,
    /// How often a node re-sends the keys it owns to its successors, repairing replicas lost
    /// to datagram loss or churn.
    pub replica_refresh_interval: Duration,
    /// A request unanswered for this long is sent again, up to `request_retries` times;
    /// then the node asked counts as failed. Without retries a single lost datagram would
    /// evict a live successor.
    pub request_timeout: Duration,
    /// Retransmissions of an unanswered request before its node counts as failed.
    pub request_retries: u8,
    /// Whether lookups route through the whole successor list as well as the fingers (the
    /// journal version of Chord, ToN 2003, Sec. V-D) or through the fingers and the first
    /// successor only (the SIGCOMM 2001 `closest_preceding_node`, the setup of its Fig. 10).
    /// The successor list shortens the last hops of every lookup; default `true`.
    pub route_through_successor_list: bool,
    /// Queries one lookup may send before it gives up (a guard against routing loops while
    /// the ring is inconsistent).
    pub lookup_query_limit: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            successors: 8,
            stabilize_interval: Duration::from_secs(1),
            fix_fingers_interval: Duration::from_secs(1),
            check_predecessor_interval: Duration::from_secs(1),
            replica_refresh_interval: Duration::from_secs(30),
            request_timeout: Duration::from_millis(500),
            request_retries: 2,
            route_through_successor_list: true,
            lookup_query_limit: 32,
        }
    }
}
