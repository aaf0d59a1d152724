//! The `overlay` command's subcommands.

pub mod chord;
pub mod demo;
pub mod dht;
pub mod output;
pub mod sim;
