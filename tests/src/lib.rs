//! overlay-sim: a deterministic discrete-event network simulator that drives overlay-core
//! machines through the sans-IO contract, the global oracles that check them, and the
//! reproductions of published results built on both.

pub mod bittorrent;
pub mod chord;
pub mod dht;
pub mod fuzz;
pub mod gnutella;
pub mod net;
pub mod opts;
#[cfg(feature = "plot")]
pub mod plot;
pub mod util;

pub use net::{NetConfig, NetStats, Sim, SimError};
