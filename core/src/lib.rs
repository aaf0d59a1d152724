//! overlay-core: the classic peer-to-peer systems as sans-IO state machines.
//!
//! Every protocol here is a [`Machine`]: it never touches a socket, a clock, a thread or a
//! global random generator. A *driver* (the simulator in `tests/`, the host runtime, the
//! bindings, the firmware) feeds it bytes and time and carries out what it asks for. The
//! contract, and the order in which to call it, is documented on [`Machine`].
//!
//! The crate is `#![no_std]` and never allocates: capacities are const generics on
//! `heapless` collections, and each machine documents what its capacities cost in RAM.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod bencode;
pub mod bittorrent;
pub mod bridge;
pub mod chord;
pub mod dht;
pub mod gnutella;
pub mod id;
pub mod machine;
pub mod rng;
pub mod time;

pub use addr::PeerAddr;
pub use id::Id;
pub use machine::{ConnId, Dest, Input, Machine, Output, QueryId};
pub use rng::Rng;
pub use time::{Duration, Instant};
