//! `overlay`: run peers of the classic peer-to-peer systems, simulate them, and watch a demo.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

use cli::output::{CliError, Exit, Printer};

#[derive(Parser, Debug)]
#[command(name = "overlay", version, about, long_about = None)]
struct Cli {
    /// More logs on stderr (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// One JSON object per line on stdout, for scripts (errors too, on stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Chord (Stoica et al. 2001): run a peer, or put, get and look up keys through one.
    #[command(subcommand)]
    Chord(cli::chord::ChordCmd),
    /// BitTorrent's Mainline DHT (Kademlia, BEP 5/42/44): run a node, find and announce
    /// peers, put and get immutable items.
    #[command(subcommand)]
    Dht(cli::dht::DhtCmd),
    /// Gnutella 0.6 (ultrapeers and leaves, QRP, HUGE): run a servent, search the
    /// network, download files by SHA-1.
    #[command(subcommand)]
    Gnutella(cli::gnutella::GnutellaCmd),
    /// BitTorrent: make a .torrent, download one (resuming what is on disk), seed one.
    #[command(subcommand)]
    Torrent(cli::torrent::TorrentCmd),
    /// A BitTorrent tracker: HTTP (BEP 3) and UDP (BEP 15) announces and scrapes on one
    /// port.
    Tracker(cli::torrent::TrackerArgs),
    /// Run a protocol in the deterministic simulator and print what it measured.
    #[command(subcommand)]
    Sim(cli::sim::SimCmd),
    /// Start a network of real peers on loopback and put it through its paces.
    Demo(cli::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging(cli.verbose);
    let out = Printer { json: cli.json };
    let result = match cli.command {
        Command::Sim(cmd) => cli::sim::run(cmd, out),
        Command::Chord(cmd) => tokio_main(cli::chord::run(cmd, out)),
        Command::Dht(cmd) => tokio_main(cli::dht::run(cmd, out)),
        Command::Gnutella(cmd) => tokio_main(cli::gnutella::run(cmd, out)),
        Command::Torrent(cmd) => tokio_main(cli::torrent::run(cmd, out)),
        Command::Tracker(args) => tokio_main(cli::torrent::tracker(args, out)),
        Command::Demo(args) => tokio_main(cli::demo::run(args, out)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(out.json),
    }
}

fn tokio_main(work: impl Future<Output = Result<(), CliError>>) -> Result<(), CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Internal, format!("cannot start the runtime: {e}")))?
        .block_on(work)
}

fn logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
