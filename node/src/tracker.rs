//! Trackers on real sockets: the core [`Tracker`] serving HTTP and UDP on one port, and
//! the core [`Announcer`] announcing a torrent, with the tracker URLs' host names resolved
//! here (core cannot resolve names).

use std::net::SocketAddr;

use overlay_core::bittorrent::tracker::{
    Announcer, AnnouncerConfig, AnnouncerEvent, Failure, Tracker, TrackerConfig, TrackerStats,
    TrackerUrl,
};
use overlay_core::{Instant, PeerAddr};
use tokio::sync::mpsc;

use crate::runtime::{Control, Gone, Host, Peer, Sockets, on_large_stack};

/// The tracker a host runs: 1024 torrents of up to 256 peers each, 64 HTTP requests at
/// once (about 15 MB, boxed).
pub type Server = Tracker<1024, 256, 64>;

/// The announcer a host runs: up to 16 trackers per torrent.
pub type Client = Announcer<16>;

/// The tracker has no events: it only answers.
pub struct Quiet;

impl Host<Server> for Quiet {
    fn on_event(&mut self, _: Instant, event: core::convert::Infallible) -> Control {
        match event {}
    }
}

/// A tracker serving BEP 3 over HTTP (TCP) and BEP 15 over UDP on the same address, as
/// opentracker does.
pub struct TrackerServer {
    peer: Peer<Server, Quiet>,
}

impl TrackerServer {
    /// Binds UDP and TCP on `addr` (port 0: a free port, the same for both when it can).
    pub async fn bind(addr: SocketAddr, config: TrackerConfig, seed: u64) -> std::io::Result<Self> {
        let sockets = Sockets::udp(addr).await?;
        let udp = sockets.local_addr()?;
        let sockets = sockets.with_tcp(udp).await?;
        let machine =
            on_large_stack("tracker", move || Box::new(Server::new(config, seed))).await?;
        Ok(TrackerServer {
            peer: Peer::spawn(machine, Quiet, sockets)?,
        })
    }

    /// The address it serves (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// What it counted.
    pub async fn stats(&self) -> Result<TrackerStats, Gone> {
        self.peer.call(|m, _, _| m.stats()).await
    }

    /// Torrents with peers.
    pub async fn swarms(&self) -> Result<usize, Gone> {
        self.peer.call(|m, _, _| m.swarm_count()).await
    }
}

/// What a torrent's trackers said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerNotice {
    /// A tracker answered with these peers.
    Announced {
        /// Its URL.
        url: String,
        /// The peers.
        peers: Vec<SocketAddr>,
        /// Seeders and leechers it counts, when it says.
        swarm: Option<(u32, u32)>,
    },
    /// An announce failed and will be retried.
    Failed {
        /// Its URL.
        url: String,
        /// Why.
        why: String,
    },
    /// A tracker's warning.
    Warning {
        /// Its URL.
        url: String,
        /// The message.
        message: String,
    },
}

/// Forwards the announcer's events as [`TrackerNotice`]s.
pub struct Notify {
    urls: Vec<String>,
    tx: mpsc::UnboundedSender<TrackerNotice>,
}

impl Host<Client> for Notify {
    fn on_event(&mut self, _: Instant, event: AnnouncerEvent<'_>) -> Control {
        let url = |i: usize| self.urls.get(i).cloned().unwrap_or_default();
        let notice = match event {
            AnnouncerEvent::Announced {
                tracker,
                peers,
                seeders,
                leechers,
                ..
            } => TrackerNotice::Announced {
                url: url(tracker),
                peers: peers.iter().map(|p| p.socket_addr()).collect(),
                swarm: seeders.zip(leechers),
            },
            AnnouncerEvent::Failed {
                tracker,
                failure,
                reason,
                ..
            } => TrackerNotice::Failed {
                url: url(tracker),
                why: match failure {
                    Failure::Refused => format!("refused: {}", String::from_utf8_lossy(reason)),
                    Failure::Timeout => "no answer".into(),
                    Failure::Unreachable => "unreachable".into(),
                    Failure::Malformed(e) => e.to_string(),
                },
            },
            AnnouncerEvent::Warning { tracker, message } => TrackerNotice::Warning {
                url: url(tracker),
                message: String::from_utf8_lossy(message).into_owned(),
            },
        };
        let _ = self.tx.send(notice);
        Control::Continue
    }
}

/// A torrent announced to its trackers.
pub struct Trackers {
    peer: Peer<Client, Notify>,
}

impl Trackers {
    /// Resolves `urls` and starts announcing (`started` at once) the torrent `info_hash`
    /// as `peer_id`, reachable on `port`, with `left` bytes still missing. URLs that cannot
    /// be used are returned with why; the notices arrive on the receiver.
    pub async fn start(
        urls: &[String],
        info_hash: [u8; 20],
        peer_id: [u8; 20],
        port: u16,
        left: u64,
        config: AnnouncerConfig,
        seed: u64,
    ) -> std::io::Result<(
        Trackers,
        mpsc::UnboundedReceiver<TrackerNotice>,
        Vec<(String, String)>,
    )> {
        let mut resolved = Vec::new();
        let mut skipped = Vec::new();
        for url in urls {
            match resolve(url).await {
                Ok(addr) => resolved.push((url.clone(), addr)),
                Err(why) => skipped.push((url.clone(), why)),
            }
        }
        // One UDP socket, of the first tracker's family; trackers of the other are skipped.
        let v6 = resolved.first().is_some_and(|(_, a)| a.is_ipv6());
        resolved.retain(|(url, a)| {
            let keep = a.is_ipv6() == v6;
            if !keep {
                skipped.push((
                    url.clone(),
                    "another address family than the first tracker".into(),
                ));
            }
            keep
        });
        let any = match v6 {
            true => SocketAddr::from(([0u16; 8], 0)),
            false => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let mut machine = on_large_stack("announcer", move || {
            Box::new(Client::new(config, info_hash, peer_id, port, seed))
        })
        .await?;
        // The first announce tells whether we are a seed.
        machine.set_totals(0, 0, left);
        let mut kept = Vec::new();
        for (url, addr) in resolved {
            match machine.add_tracker(Instant::ZERO, &url, PeerAddr::from(addr)) {
                Ok(_) => kept.push(url),
                Err(e) => skipped.push((url, e.to_string())),
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let host = Notify { urls: kept, tx };
        let peer = Peer::spawn(machine, host, Sockets::udp(any).await?)?;
        Ok((Trackers { peer }, rx, skipped))
    }

    /// The totals later announces report.
    pub async fn set_totals(&self, uploaded: u64, downloaded: u64, left: u64) -> Result<(), Gone> {
        self.peer
            .call(move |m, _, _| m.set_totals(uploaded, downloaded, left))
            .await
    }

    /// Announces `completed` now.
    pub async fn completed(&self) -> Result<(), Gone> {
        self.peer.call(|m, _, now| m.completed(now)).await
    }

    /// Announces `stopped` and waits (at most `limit`) until every tracker was told.
    pub async fn stop(&self, limit: std::time::Duration) {
        let _ = self.peer.call(|m, _, now| m.stop(now)).await;
        let _ = tokio::time::timeout(limit, async {
            while self.peer.call(|m, _, _| m.is_stopped()).await == Ok(false) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

/// A tracker URL's address (its host resolved).
async fn resolve(url: &str) -> Result<SocketAddr, String> {
    let parsed = TrackerUrl::parse(url).map_err(|e| e.to_string())?;
    let mut addrs = tokio::net::lookup_host((parsed.host, parsed.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", parsed.host))?;
    addrs
        .next()
        .ok_or_else(|| format!("{} has no address", parsed.host))
}
