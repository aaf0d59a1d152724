//! The `overlay` command's subcommands.

pub mod chord;
pub mod demo;
pub mod dht;
pub mod gnutella;
pub mod output;
pub mod sim;

use std::net::SocketAddr;

/// Where a short-lived client binds: `--bind`, else any address of `--via`'s family on a
/// free port.
pub fn client_bind(via: SocketAddr, bind: Option<SocketAddr>) -> SocketAddr {
    bind.unwrap_or(match via {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    })
}
