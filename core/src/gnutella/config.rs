//! A servent's settings, with the defaults of the deployed network and where they come from.

use super::pongcache::PongConfig;
use crate::{Duration, PeerAddr};

/// Which tier a servent is in (`ultra-peers` section 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Routes: keeps connections to other ultrapeers and floods queries among them, and
    /// shields leaves, passing them only the queries their QRP tables may match. A network
    /// of ultrapeers without leaves is the flat Gnutella 0.4 network.
    Ultrapeer,
    /// Attaches to a few ultrapeers, sends its QRP table, never routes: it only answers
    /// the queries its ultrapeers pass down and sends its own.
    Leaf,
}

/// A servent's settings.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Ultrapeer or leaf.
    pub role: Role,
    /// Where we accept connections, as pongs, query hits and `Listen-IP` advertise it.
    pub listen: PeerAddr,
    /// Connections to ultrapeers (or flat peers) accepted in all. An ultrapeer dials the
    /// ones it is told to; a leaf should keep 3 (LimeWire's leaf setting).
    pub max_peers: u8,
    /// Leaves an ultrapeer accepts (0 for a flat servent).
    pub max_leaves: u8,
    /// TTL of our own queries; LimeWire's ultrapeers used 3 over 30 ultrapeer connections,
    /// flat 0.4 servents 7.
    pub query_ttl: u8,
    /// The largest TTL + hops accepted: a query claiming more is cut down to it (the
    /// 0.6 draft's 7).
    pub max_ttl: u8,
    /// How long a GUID is remembered for duplicate suppression and reverse routing:
    /// between half of this and all of it. Replies later than this are dropped.
    pub route_lifetime: Duration,
    /// A connection still in its handshake after this long is closed.
    pub handshake_timeout: Duration,
    /// The pong cache's constants.
    pub pong: PongConfig,
    /// Results per query hit at most.
    pub max_results: u8,
    /// Speed announced in query hits, kbit/s.
    pub speed_kbps: u32,
    /// `User-Agent` and `Server`.
    pub user_agent: &'static str,
}

impl Config {
    /// The defaults for `role`, listening on `listen`.
    pub fn new(role: Role, listen: PeerAddr) -> Self {
        let (max_peers, max_leaves, query_ttl) = match role {
            Role::Ultrapeer => (32, 30, 4),
            Role::Leaf => (3, 0, 4),
        };
        Config {
            role,
            listen,
            max_peers,
            max_leaves,
            query_ttl,
            max_ttl: 7,
            route_lifetime: Duration::from_secs(10 * 60),
            handshake_timeout: Duration::from_secs(20),
            pong: PongConfig::default(),
            max_results: 32,
            speed_kbps: 10_000,
            user_agent: concat!("overlay/", env!("CARGO_PKG_VERSION")),
        }
    }
}
