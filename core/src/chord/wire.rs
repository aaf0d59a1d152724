//! Chord's wire format. Chord has no deployed wire format, so messages are postcard + serde
//! in a versioned envelope: one version byte, the sender's id, then the body.
//!
//! Decoding is strict and total: the version must match, lists longer than their capacity,
//! values longer than [`MAX_VALUE`] and trailing bytes are errors, and nothing panics on any
//! input (fuzzed by `fuzz/fuzz_targets/chord_decode.rs`).

use super::config::{LOOKUP_CANDIDATES, MAX_SUCCESSORS, MAX_VALUE};
use crate::{Id, PeerAddr};
use serde::{Deserialize, Serialize};

/// The envelope version this code speaks.
pub const VERSION: u8 = 1;

/// A node as peers name it: its ring id and where it listens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct NodeRef {
    /// Position on the ring.
    pub id: Id,
    /// Where to reach it.
    pub addr: PeerAddr,
}

/// A successor list as carried on the wire.
pub type NodeList = heapless::Vec<NodeRef, MAX_SUCCESSORS>;
/// The closest preceding nodes a node knows for a key.
pub type Candidates = heapless::Vec<NodeRef, LOOKUP_CANDIDATES>;

/// Every datagram: version, sender id, body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<'a> {
    /// [`VERSION`].
    pub version: u8,
    /// The sender's ring id (its address is the datagram's source).
    pub sender: Id,
    /// The message.
    #[serde(borrow)]
    pub body: Body<'a>,
}

/// Chord's messages. Requests carry a request id (`rid`) that the reply echoes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body<'a> {
    /// One step of an iterative lookup: "is `key` between you and your successor?"
    FindSuccessor {
        /// Request id.
        rid: u32,
        /// The key looked up.
        key: Id,
    },
    /// Yes: the key's owner is `nodes[0]`, followed by its successors (the replica set).
    Successors {
        /// Echoed request id.
        rid: u32,
        /// The owner and its successors.
        nodes: NodeList,
    },
    /// No: these nodes precede the key more closely than the responder, closest first.
    Closer {
        /// Echoed request id.
        rid: u32,
        /// Closest preceding nodes.
        nodes: Candidates,
    },
    /// Zave's stabilize query: "who is your predecessor, and what is your successor list?"
    GetState {
        /// Request id.
        rid: u32,
    },
    /// Answer to [`Body::GetState`].
    State {
        /// Echoed request id.
        rid: u32,
        /// The responder's predecessor, if it has one.
        predecessor: Option<NodeRef>,
        /// The responder's successor list.
        successors: NodeList,
    },
    /// "I think I am your predecessor" (Zave's `rectify` at the receiver).
    Notify,
    /// Liveness probe (`check_predecessor`).
    Ping {
        /// Request id.
        rid: u32,
    },
    /// Answer to [`Body::Ping`].
    Pong {
        /// Echoed request id.
        rid: u32,
    },
    /// Store `value` under `key`. `owner` is set when the receiver is the key's owner (a
    /// client's put: the owner acknowledges it and replicates); otherwise it is a replica
    /// or a hand-off and is not acknowledged.
    Store {
        /// Request id (echoed only when `owner`).
        rid: u32,
        /// The key.
        key: Id,
        /// The value.
        value: &'a [u8],
        /// Whether the receiver owns the key.
        owner: bool,
    },
    /// Answer to an owner's [`Body::Store`]: `stored` is false when the store was full.
    Stored {
        /// Echoed request id.
        rid: u32,
        /// Whether the value is now stored.
        stored: bool,
    },
    /// Read the value under `key`.
    Fetch {
        /// Request id.
        rid: u32,
        /// The key.
        key: Id,
    },
    /// Answer to [`Body::Fetch`].
    Fetched {
        /// Echoed request id.
        rid: u32,
        /// The value, if the responder holds the key.
        value: Option<&'a [u8]>,
    },
    /// A graceful leave, sent to the leaving node's predecessor and successor: the
    /// predecessor adopts `successors`, the successor adopts `predecessor`.
    Leave {
        /// The leaving node's predecessor.
        predecessor: Option<NodeRef>,
        /// The leaving node's successor list.
        successors: NodeList,
    },
}

/// Why a datagram was not accepted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// Empty, truncated, trailing bytes, an unknown tag, or an over-long list or value.
    Malformed,
    /// A well-formed envelope of a version this code does not speak.
    Version(u8),
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Malformed => f.write_str("malformed Chord datagram"),
            DecodeError::Version(v) => write!(f, "unsupported Chord envelope version {v}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Parses and validates a datagram.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    match bytes.first() {
        None => return Err(DecodeError::Malformed),
        Some(&v) if v != VERSION => return Err(DecodeError::Version(v)),
        Some(_) => {}
    }
    let (env, rest): (Envelope<'_>, _) =
        postcard::take_from_bytes(bytes).map_err(|_| DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed);
    }
    let value = match env.body {
        Body::Store { value, .. }
        | Body::Fetched {
            value: Some(value), ..
        } => value.len(),
        _ => 0,
    };
    if value > MAX_VALUE {
        return Err(DecodeError::Malformed);
    }
    Ok(env)
}

/// Serializes `env` into `buf`, returning the bytes written; `None` if it does not fit.
pub fn encode<'b>(env: &Envelope<'_>, buf: &'b mut [u8]) -> Option<&'b mut [u8]> {
    postcard::to_slice(env, buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeRef {
        NodeRef {
            id: Id::from_u64(n as u64),
            addr: PeerAddr::v4([10, 0, 0, n], 7000),
        }
    }

    fn round_trip(body: Body<'_>) {
        let env = Envelope {
            version: VERSION,
            sender: Id::from_u64(9),
            body,
        };
        let mut buf = [0u8; 1400];
        let n = encode(&env, &mut buf).unwrap().len();
        assert_eq!(decode(&buf[..n]).unwrap(), env);
        // Every strict prefix is rejected, never accepted or panicking.
        for cut in 0..n {
            assert!(decode(&buf[..cut]).is_err(), "prefix {cut} of {n} accepted");
        }
    }

    #[test]
    fn every_message_round_trips_and_truncations_are_rejected() {
        let list: NodeList = (1..=3).map(node).collect();
        round_trip(Body::FindSuccessor {
            rid: 1,
            key: Id::MAX,
        });
        round_trip(Body::Successors {
            rid: 2,
            nodes: list.clone(),
        });
        round_trip(Body::Closer {
            rid: 3,
            nodes: (4..=5).map(node).collect(),
        });
        round_trip(Body::GetState { rid: 4 });
        round_trip(Body::State {
            rid: 5,
            predecessor: Some(node(7)),
            successors: list.clone(),
        });
        round_trip(Body::Notify);
        round_trip(Body::Ping { rid: u32::MAX });
        round_trip(Body::Pong { rid: 0 });
        round_trip(Body::Store {
            rid: 6,
            key: Id::from_u64(1),
            value: b"v",
            owner: true,
        });
        round_trip(Body::Stored {
            rid: 7,
            stored: false,
        });
        round_trip(Body::Fetch {
            rid: 8,
            key: Id::ZERO,
        });
        round_trip(Body::Fetched {
            rid: 9,
            value: None,
        });
        round_trip(Body::Leave {
            predecessor: None,
            successors: list,
        });
    }

    #[test]
    fn wrong_version_trailing_bytes_and_oversize_values_are_rejected() {
        let env = Envelope {
            version: VERSION,
            sender: Id::ZERO,
            body: Body::Notify,
        };
        let mut buf = [0u8; 64];
        let n = encode(&env, &mut buf).unwrap().len();
        buf[n] = 0;
        assert_eq!(decode(&buf[..n + 1]), Err(DecodeError::Malformed));
        buf[0] = 2;
        assert_eq!(decode(&buf[..n]), Err(DecodeError::Version(2)));
        assert_eq!(decode(&[]), Err(DecodeError::Malformed));

        let big = [7u8; MAX_VALUE + 1];
        let env = Envelope {
            version: VERSION,
            sender: Id::ZERO,
            body: Body::Store {
                rid: 0,
                key: Id::ZERO,
                value: &big,
                owner: false,
            },
        };
        let mut buf = [0u8; 2048];
        let n = encode(&env, &mut buf).unwrap().len();
        assert_eq!(decode(&buf[..n]), Err(DecodeError::Malformed));
    }

    #[test]
    fn a_list_longer_than_its_capacity_is_rejected() {
        // A Successors message with MAX_SUCCESSORS + 1 nodes, built through a roomier type.
        #[derive(Serialize)]
        #[allow(clippy::large_enum_variant)] // a test fixture, never stored
        enum Wide {
            _FindSuccessor,
            Successors {
                rid: u32,
                nodes: heapless::Vec<NodeRef, 17>,
            },
        }
        #[derive(Serialize)]
        struct WideEnv {
            version: u8,
            sender: Id,
            body: Wide,
        }
        let nodes = (0..=MAX_SUCCESSORS as u8).map(node).collect();
        let env = WideEnv {
            version: VERSION,
            sender: Id::ZERO,
            body: Wide::Successors { rid: 1, nodes },
        };
        let mut buf = [0u8; 2048];
        let n = postcard::to_slice(&env, &mut buf).unwrap().len();
        assert_eq!(decode(&buf[..n]), Err(DecodeError::Malformed));
    }
}
