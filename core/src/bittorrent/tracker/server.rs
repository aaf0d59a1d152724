//! The tracker: swarms of announced peers, served over HTTP and UDP.

use heapless::{Deque, Vec};
use sha2::{Digest, Sha256};

use super::http::{self, AnnounceQuery, Request as HttpRequest};
use super::udp::{self, Request as UdpRequest};
use super::{Announce, AnnounceEvent, TrackerError, write_compact};
use crate::bencode::Encoder;
use crate::machine::{ConnId, Dest, Input, Machine, Output};
use crate::{Duration, Instant, PeerAddr, Rng};

/// How the tracker answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    /// `interval`: how long peers wait between announces.
    pub interval: Duration,
    /// `min interval`: the shortest wait the tracker accepts.
    pub min_interval: Duration,
    /// A peer not heard from for this long is dropped (two intervals and a margin, so one
    /// lost announce does not drop it).
    pub peer_timeout: Duration,
    /// Peers returned when the client names no `numwant`.
    pub numwant: u32,
    /// The most peers one answer carries.
    pub max_numwant: u32,
    /// An HTTP connection that has not sent its whole request in this time is closed.
    pub request_timeout: Duration,
}

impl Default for TrackerConfig {
    /// opentracker's defaults: a 30 minute interval, 50 peers.
    fn default() -> Self {
        TrackerConfig {
            interval: Duration::from_secs(1800),
            min_interval: Duration::from_secs(900),
            peer_timeout: Duration::from_secs(2 * 1800 + 300),
            numwant: 50,
            max_numwant: 200,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// What the tracker counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Announces answered over HTTP.
    pub http_announces: u64,
    /// Announces answered over UDP.
    pub udp_announces: u64,
    /// Scrapes answered (both transports).
    pub scrapes: u64,
    /// BEP 15 connection ids handed out.
    pub connects: u64,
    /// Requests that could not be read: dropped (UDP) or answered with 400 (HTTP).
    pub malformed: u64,
    /// UDP requests with a connection id that is not (or no longer) valid for the sender.
    pub bad_conn_ids: u64,
    /// Announces refused because a table was full.
    pub refused: u64,
    /// Peers dropped for not announcing.
    pub expired: u64,
    /// HTTP connections closed for lack of room or time.
    pub dropped_conns: u64,
}

/// A peer in a swarm.
#[derive(Clone, Copy, Debug)]
struct Entry {
    addr: PeerAddr,
    peer_id: [u8; 20],
    seed: bool,
    last_seen: Instant,
}

/// One torrent's peers.
#[derive(Debug)]
struct Swarm<const PEERS: usize> {
    info_hash: [u8; 20],
    peers: Vec<Entry, PEERS>,
    /// `completed` events seen (the scrape's `downloaded`).
    completed: u32,
}

impl<const PEERS: usize> Swarm<PEERS> {
    /// (seeders, leechers).
    fn counts(&self) -> (u32, u32) {
        let seeds = self.peers.iter().filter(|p| p.seed).count() as u32;
        (seeds, self.peers.len() as u32 - seeds)
    }
}

/// An HTTP connection while its request arrives.
#[derive(Debug)]
struct HttpConn {
    conn: ConnId,
    peer: PeerAddr,
    opened: Instant,
    rx: Vec<u8, REQUEST_MAX>,
}

/// The largest HTTP request read (the request line of an announce is about 300 bytes).
const REQUEST_MAX: usize = 2048;
/// The largest answer: 200 compact IPv6 peers over UDP, or an HTTP answer.
const ANSWER_MAX: usize = 4096;
/// A BEP 15 connection id is accepted in the minute it was made and the next one.
const CONN_ID_EPOCH: u64 = 60_000_000;

/// Something to hand to the driver.
// Owned, in a fixed outbox: without alloc the bytes travel in the entry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Out {
    Send {
        to: Dest,
        len: usize,
        buf: [u8; ANSWER_MAX],
    },
    Close(ConnId),
}

/// A BitTorrent tracker (BEP 3 over HTTP, BEP 15 over UDP) for up to `SWARMS` torrents of
/// up to `PEERS` peers each, reading up to `CONNS` HTTP requests at once.
///
/// The driver gives it a UDP socket and a TCP listener (usually on the same port, as
/// opentracker does): datagrams are BEP 15, accepted connections carry one HTTP request
/// each, answered and closed. A peer's address is the one its request came from, with the
/// port it announced. Peers that stop announcing are dropped after
/// [`TrackerConfig::peer_timeout`]; a `stopped` announce drops one at once.
///
/// BEP 15's connection ids are stateless: the first 8 bytes of
/// SHA-256(secret, address, minute), accepted for that minute and the next, so a spoofed
/// source cannot announce and the tracker keeps nothing per client.
pub struct Tracker<const SWARMS: usize, const PEERS: usize, const CONNS: usize> {
    config: TrackerConfig,
    rng: Rng,
    secret: [u8; 16],
    swarms: Vec<Swarm<PEERS>, SWARMS>,
    conns: Vec<HttpConn, CONNS>,
    outbox: Deque<Out, 4>,
    sending: Option<Out>,
    next_sweep: Instant,
    stats: TrackerStats,
}

impl<const SWARMS: usize, const PEERS: usize, const CONNS: usize> Tracker<SWARMS, PEERS, CONNS> {
    /// An empty tracker. `seed` seeds its secret and its choice of peers.
    pub fn new(config: TrackerConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut secret = [0u8; 16];
        rng.fill(&mut secret);
        Tracker {
            config,
            rng,
            secret,
            swarms: Vec::new(),
            conns: Vec::new(),
            outbox: Deque::new(),
            sending: None,
            next_sweep: Instant::ZERO,
            stats: TrackerStats::default(),
        }
    }

    /// What it counted.
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// Torrents with at least one peer.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// A torrent's (seeders, leechers, completed), if anyone announced it.
    pub fn scrape(&self, info_hash: &[u8; 20]) -> Option<(u32, u32, u32)> {
        let swarm = self.swarms.iter().find(|s| &s.info_hash == info_hash)?;
        let (seeds, leechers) = swarm.counts();
        Some((seeds, leechers, swarm.completed))
    }

    fn conn_id(&self, from: PeerAddr, epoch: u64) -> u64 {
        let mut addr = [0u8; 18];
        let n = from.write_canonical(&mut addr);
        let digest = Sha256::new()
            .chain_update(self.secret)
            .chain_update(&addr[..n])
            .chain_update(epoch.to_be_bytes())
            .finalize();
        u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn conn_id_valid(&self, now: Instant, from: PeerAddr, id: u64) -> bool {
        let epoch = now.as_micros() / CONN_ID_EPOCH;
        id == self.conn_id(from, epoch) || (epoch > 0 && id == self.conn_id(from, epoch - 1))
    }

    /// Records an announce from `from` (the request's source address); the swarm's index,
    /// or why it was refused.
    fn record(
        &mut self,
        now: Instant,
        from: PeerAddr,
        a: &Announce,
    ) -> Result<Option<usize>, &'static str> {
        let addr = PeerAddr::from(core::net::SocketAddr::new(from.ip(), a.port));
        let index = match self.swarms.iter().position(|s| s.info_hash == a.info_hash) {
            Some(i) => i,
            None if a.event == AnnounceEvent::Stopped => return Ok(None),
            None => {
                let swarm = Swarm {
                    info_hash: a.info_hash,
                    peers: Vec::new(),
                    completed: 0,
                };
                self.swarms
                    .push(swarm)
                    .map_err(|_| "tracker full: too many torrents")?;
                self.swarms.len() - 1
            }
        };
        let swarm = &mut self.swarms[index];
        let known = swarm
            .peers
            .iter()
            .position(|p| p.peer_id == a.peer_id || p.addr == addr);
        if a.event == AnnounceEvent::Stopped {
            if let Some(i) = known {
                swarm.peers.swap_remove(i);
            }
            if swarm.peers.is_empty() {
                self.swarms.swap_remove(index);
            }
            return Ok(None);
        }
        if a.event == AnnounceEvent::Completed {
            swarm.completed = swarm.completed.saturating_add(1);
        }
        let entry = Entry {
            addr,
            peer_id: a.peer_id,
            seed: a.left == 0,
            last_seen: now,
        };
        match known {
            Some(i) => swarm.peers[i] = entry,
            None => swarm.peers.push(entry).map_err(|_| "swarm full")?,
        }
        Ok(Some(index))
    }

    /// Offers `take` the peers of swarm `index` other than `who`, from a random start,
    /// until it has accepted `want` of them.
    fn pick(
        &mut self,
        index: Option<usize>,
        who: &[u8; 20],
        want: u32,
        mut take: impl FnMut(&Entry) -> bool,
    ) {
        let Some(swarm) = index.and_then(|i| self.swarms.get(i)) else {
            return;
        };
        let n = swarm.peers.len();
        let start = self.rng.below(n.max(1) as u64) as usize;
        let mut taken = 0;
        for k in 0..n {
            let p = &swarm.peers[(start + k) % n];
            if &p.peer_id == who {
                continue;
            }
            if taken == want {
                break;
            }
            if take(p) {
                taken += 1;
            }
        }
    }

    fn want(&self, a: &Announce) -> u32 {
        a.numwant
            .unwrap_or(self.config.numwant)
            .min(self.config.max_numwant)
    }

    fn counts(&self, index: Option<usize>) -> (u32, u32) {
        index
            .and_then(|i| self.swarms.get(i))
            .map_or((0, 0), Swarm::counts)
    }

    fn queue(&mut self, out: Out) -> bool {
        self.outbox.push_back(out).is_ok()
    }

    fn on_datagram(&mut self, now: Instant, from: PeerAddr, payload: &[u8]) {
        let Ok(request) = UdpRequest::decode(payload) else {
            self.stats.malformed += 1;
            return;
        };
        if self.outbox.is_full() {
            self.stats.refused += 1;
            return;
        }
        let mut buf = [0u8; ANSWER_MAX];
        let len = match request {
            UdpRequest::Connect { tid } => {
                self.stats.connects += 1;
                let id = self.conn_id(from, now.as_micros() / CONN_ID_EPOCH);
                udp::write_connect(&mut buf, tid, id).map(<[u8]>::len)
            }
            UdpRequest::Announce { conn_id, tid, .. } | UdpRequest::Scrape { conn_id, tid, .. }
                if !self.conn_id_valid(now, from, conn_id) =>
            {
                self.stats.bad_conn_ids += 1;
                udp::write_error(&mut buf, tid, "bad connection id").map(<[u8]>::len)
            }
            UdpRequest::Announce { tid, announce, .. } => match self.record(now, from, &announce) {
                Err(why) => {
                    self.stats.refused += 1;
                    udp::write_error(&mut buf, tid, why).map(<[u8]>::len)
                }
                Ok(index) => {
                    self.stats.udp_announces += 1;
                    let (seeds, leechers) = self.counts(index);
                    let interval = self.config.interval.as_millis() / 1000;
                    let mut len =
                        udp::write_announce_head(&mut buf, tid, interval as u32, leechers, seeds)
                            .unwrap_or(0);
                    let want = self.want(&announce);
                    // BEP 15: the address family of the request decides the entries' size.
                    self.pick(index, &announce.peer_id, want, |p| {
                        p.addr.is_v6() == from.is_v6()
                            && match write_compact(p.addr, &mut buf[len..]) {
                                Some(n) => {
                                    len += n;
                                    true
                                }
                                None => false,
                            }
                    });
                    Ok(len)
                }
            },
            UdpRequest::Scrape {
                tid, info_hashes, ..
            } => {
                self.stats.scrapes += 1;
                let mut len = udp::write_scrape_head(&mut buf, tid).unwrap_or(0);
                for hash in info_hashes.chunks_exact(20) {
                    let hash: [u8; 20] = hash.try_into().unwrap_or_default();
                    let (seeds, leechers, done) = self.scrape(&hash).unwrap_or_default();
                    for v in [seeds, done, leechers] {
                        buf[len..len + 4].copy_from_slice(&v.to_be_bytes());
                        len += 4;
                    }
                }
                Ok(len)
            }
        };
        if let Ok(len) = len {
            self.queue(Out::Send {
                to: Dest::Addr(from),
                len,
                buf,
            });
        }
    }

    /// Answers a complete HTTP request: the bencoded body and the status.
    fn http_answer(
        &mut self,
        now: Instant,
        from: PeerAddr,
        request: Result<HttpRequest<'_>, TrackerError>,
        body: &mut [u8],
    ) -> (u16, usize) {
        let mut e = Encoder::new(body);
        let code = match request {
            Err(_) => {
                self.stats.malformed += 1;
                let _ = e
                    .dict()
                    .and_then(|e| e.str("failure reason")?.str("malformed request")?.end());
                400
            }
            Ok(HttpRequest::NotFound) => 404,
            Ok(HttpRequest::Announce(q)) => {
                self.http_announce(now, from, q, &mut e);
                200
            }
            Ok(HttpRequest::Scrape(hashes)) => {
                self.stats.scrapes += 1;
                let _ = e.dict().and_then(|e| e.str("files")?.dict());
                let mut any = false;
                for hash in hashes {
                    any = true;
                    let (seeds, leechers, done) = self.scrape(&hash).unwrap_or_default();
                    let _ = e.bytes(&hash).and_then(|e| {
                        e.dict()?
                            .str("complete")?
                            .int(seeds.into())?
                            .str("downloaded")?
                            .int(done.into())?
                            .str("incomplete")?
                            .int(leechers.into())?
                            .end()
                    });
                }
                let _ = e.end().and_then(|e| e.end());
                if !any {
                    // A full scrape may not fit one answer: name the torrents.
                    e = Encoder::new(body);
                    let _ = e.dict().and_then(|e| {
                        e.str("failure reason")?
                            .str("name the torrents to scrape")?
                            .end()
                    });
                }
                200
            }
        };
        (code, e.finish().map_or(0, <[u8]>::len))
    }

    fn http_announce(
        &mut self,
        now: Instant,
        from: PeerAddr,
        q: AnnounceQuery,
        e: &mut Encoder<'_>,
    ) {
        let a = q.announce;
        let index = match self.record(now, from, &a) {
            Ok(index) => index,
            Err(why) => {
                self.stats.refused += 1;
                let _ = e
                    .dict()
                    .and_then(|e| e.str("failure reason")?.str(why)?.end());
                return;
            }
        };
        self.stats.http_announces += 1;
        let (seeds, leechers) = self.counts(index);
        let secs = |d: Duration| (d.as_millis() / 1000) as i64;
        let (interval, min) = (secs(self.config.interval), secs(self.config.min_interval));
        let _ = e.dict().and_then(|e| {
            e.str("complete")?
                .int(seeds.into())?
                .str("incomplete")?
                .int(leechers.into())?;
            e.str("interval")?
                .int(interval)?
                .str("min interval")?
                .int(min)
        });
        // Dictionaries are ~70 bytes each: at most 50 fit an answer.
        let want = match q.dict_peers {
            true => self.want(&a).min(50),
            false => self.want(&a),
        };
        let mut peers: Vec<PeerAddr, 256> = Vec::new();
        let mut ids: Vec<[u8; 20], 50> = Vec::new();
        self.pick(index, &a.peer_id, want, |p| {
            let kept = peers.push(p.addr).is_ok();
            if kept && q.dict_peers {
                let _ = ids.push(p.peer_id);
            }
            kept
        });
        let _ = e.str("peers");
        if q.dict_peers {
            let _ = e.list();
            for (i, p) in peers.iter().enumerate() {
                let mut ip = [0u8; 40];
                let ip = fmt_ip(p, &mut ip);
                let _ = e.dict().and_then(|e| e.str("ip")?.bytes(ip));
                if !q.no_peer_id {
                    let _ = e
                        .str("peer id")
                        .and_then(|e| e.bytes(ids.get(i).map_or(&[][..], |id| &id[..])));
                }
                let _ = e.str("port").and_then(|e| e.int(p.port().into())?.end());
            }
            let _ = e.end();
        } else {
            for v6 in [false, true] {
                if v6 {
                    let _ = e.str("peers6");
                }
                let mut compact = [0u8; 256 * 18];
                let mut len = 0;
                for p in peers.iter().filter(|p| p.is_v6() == v6) {
                    len += write_compact(*p, &mut compact[len..]).unwrap_or(0);
                }
                let _ = e.bytes(&compact[..len]);
            }
        }
        let _ = e.end();
    }

    fn on_received(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(i) = self.conns.iter().position(|c| c.conn == conn) else {
            return;
        };
        let c = &mut self.conns[i];
        let overflow = c.rx.extend_from_slice(bytes).is_err();
        let from = c.peer;
        let rx = core::mem::take(&mut c.rx);
        let request = match overflow {
            true => Some(Err(TrackerError::BadHttp)),
            false => match http::read_request(&rx) {
                Ok(None) => None,
                Ok(Some((r, _))) => Some(Ok(r)),
                Err(e) => Some(Err(e)),
            },
        };
        let Some(request) = request else {
            self.conns[i].rx = rx;
            return;
        };
        self.conns.swap_remove(i);
        if self.outbox.len() + 2 > self.outbox.capacity() {
            self.stats.dropped_conns += 1;
            self.queue(Out::Close(conn));
            return;
        }
        let mut body = [0u8; ANSWER_MAX - 256];
        let (code, n) = self.http_answer(now, from, request, &mut body);
        let mut buf = [0u8; ANSWER_MAX];
        if let Ok(len) = http::write_answer(&mut buf, code, &body[..n]) {
            self.queue(Out::Send {
                to: Dest::Conn(conn),
                len,
                buf,
            });
        }
        self.queue(Out::Close(conn));
    }

    /// Drops peers not heard from within the timeout, and HTTP requests that take too long.
    fn sweep(&mut self, now: Instant) {
        let timeout = self.config.peer_timeout;
        let mut expired = 0;
        self.swarms.retain_mut(|s| {
            let before = s.peers.len();
            s.peers.retain(|p| now - p.last_seen < timeout);
            expired += (before - s.peers.len()) as u64;
            !s.peers.is_empty()
        });
        self.stats.expired += expired;
        let limit = self.config.request_timeout;
        while let Some(i) = self.conns.iter().position(|c| now - c.opened >= limit) {
            let conn = self.conns.swap_remove(i).conn;
            self.stats.dropped_conns += 1;
            if !self.queue(Out::Close(conn)) {
                break;
            }
        }
        self.next_sweep = now + Duration::from_secs(1);
    }
}

/// An IP address as text into `buf`.
fn fmt_ip<'b>(p: &PeerAddr, buf: &'b mut [u8; 40]) -> &'b [u8] {
    use core::fmt::Write;
    struct W<'w>(&'w mut [u8; 40], usize);
    impl Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    let mut w = W(buf, 0);
    let _ = write!(w, "{}", p.ip());
    let n = w.1;
    &buf[..n]
}

impl<const SWARMS: usize, const PEERS: usize, const CONNS: usize> Machine
    for Tracker<SWARMS, PEERS, CONNS>
{
    type Event<'a> = core::convert::Infallible;

    fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Datagram { from, payload } => self.on_datagram(now, from, payload),
            Input::Accepted { conn, peer } => {
                let c = HttpConn {
                    conn,
                    peer,
                    opened: now,
                    rx: Vec::new(),
                };
                if self.conns.push(c).is_err() {
                    self.stats.dropped_conns += 1;
                    self.queue(Out::Close(conn));
                }
            }
            Input::Received { conn, bytes } => self.on_received(now, conn, bytes),
            Input::Closed { conn } => self.conns.retain(|c| c.conn != conn),
            Input::Connected { conn } => {
                // The tracker dials no one.
                self.queue(Out::Close(conn));
            }
        }
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, Self::Event<'_>> {
        if now >= self.next_sweep {
            self.sweep(now);
        }
        self.sending = self.outbox.pop_front();
        match &self.sending {
            Some(Out::Send { to, len, buf }) => Output::Transmit {
                to: *to,
                payload: &buf[..*len],
            },
            Some(Out::Close(conn)) => Output::Close { conn: *conn },
            None => Output::Wait(Some(self.next_sweep)),
        }
    }
}
