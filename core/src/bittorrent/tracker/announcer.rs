//! The tracker client: one torrent announced to its trackers.

use heapless::{Deque, String, Vec};

use super::http::{self, Reply};
use super::udp::{Request as UdpRequest, Response as UdpResponse};
use super::{Announce, AnnounceEvent, Scheme, TrackerError, TrackerUrl};
use crate::machine::{ConnId, Dest, Input, Machine, Output};
use crate::{Duration, Instant, PeerAddr, Rng};

/// The most peers one answer hands out (trackers cap theirs at 50 to 200).
pub const MAX_PEERS: usize = 200;
/// The largest HTTP answer read: 200 peers as dictionaries are about 14 KiB.
const HTTP_MAX: usize = 16 * 1024;
/// The longest URL part kept per tracker (host, path).
const URL_MAX: usize = 200;
/// BEP 15: a connection id may be used for a minute after it was received.
const CONN_ID_LIFE: Duration = Duration::from_secs(60);

/// When and how hard the announcer tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnouncerConfig {
    /// Peers asked for per announce.
    pub numwant: u32,
    /// BEP 15's first retransmission timeout; the n-th waits `udp_timeout * 2^n`.
    pub udp_timeout: Duration,
    /// BEP 15's retransmissions before an announce fails ("up to 8").
    pub udp_retries: u32,
    /// An HTTP announce not answered in this time fails.
    pub http_timeout: Duration,
    /// The interval when a tracker names none.
    pub default_interval: Duration,
    /// The first wait after a failed announce; it doubles with each failure in a row, up
    /// to `default_interval`.
    pub retry_after: Duration,
}

impl Default for AnnouncerConfig {
    /// BEP 15's 15 s and 8 retransmissions; libtorrent's 50 peers and 30 minutes.
    fn default() -> Self {
        AnnouncerConfig {
            numwant: 50,
            udp_timeout: Duration::from_secs(15),
            udp_retries: 8,
            http_timeout: Duration::from_secs(30),
            default_interval: Duration::from_secs(1800),
            retry_after: Duration::from_secs(15),
        }
    }
}

/// Why an announce failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The tracker refused it, saying why (its `failure reason`, BEP 15's error message).
    Refused,
    /// No answer in time (after BEP 15's retransmissions, over UDP).
    Timeout,
    /// The TCP connection could not be made or closed without an answer.
    Unreachable,
    /// The answer could not be read.
    Malformed(TrackerError),
}

/// What the announcer reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnouncerEvent<'a> {
    /// A tracker answered.
    Announced {
        /// Which tracker ([`Announcer::add_tracker`]'s index).
        tracker: usize,
        /// The peers it returned.
        peers: &'a [PeerAddr],
        /// Seeders in the swarm, when it says.
        seeders: Option<u32>,
        /// Leechers in the swarm, when it says.
        leechers: Option<u32>,
        /// When the next regular announce goes out.
        next: Instant,
    },
    /// A tracker's `warning message`.
    Warning {
        /// Which tracker.
        tracker: usize,
        /// The message.
        message: &'a [u8],
    },
    /// An announce failed; it is tried again later.
    Failed {
        /// Which tracker.
        tracker: usize,
        /// Why.
        failure: Failure,
        /// The tracker's words, for [`Failure::Refused`] (at most 128 bytes).
        reason: &'a [u8],
        /// When it is tried again.
        retry: Instant,
    },
}

/// What the announcer counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnnouncerStats {
    /// Announces answered.
    pub announced: u64,
    /// Announces that failed.
    pub failed: u64,
    /// UDP retransmissions.
    pub retransmitted: u64,
    /// Datagrams or bytes that matched no announce in flight, or were malformed.
    pub dropped: u64,
    /// Peers received, in all.
    pub peers: u64,
}

/// An announce in flight.
// The HTTP buffer lives in its slot: without alloc there is nowhere else to put it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Flight {
    Idle,
    Http {
        conn: ConnId,
        deadline: Instant,
        rx: Vec<u8, HTTP_MAX>,
    },
    Udp {
        tid: u32,
        /// Waiting for a connection id (else for the announce's answer).
        connecting: bool,
        attempt: u32,
        deadline: Instant,
    },
}

/// One tracker.
#[derive(Debug)]
struct Slot {
    scheme: Scheme,
    host: String<URL_MAX>,
    port: u16,
    path: String<URL_MAX>,
    addr: PeerAddr,
    flight: Flight,
    next: Instant,
    /// The event the next announce carries.
    event: AnnounceEvent,
    conn_id: Option<(u64, Instant)>,
    tracker_id: Vec<u8, 64>,
    min_interval: Duration,
    failures: u32,
    /// Sent `stopped`: no more announces.
    done: bool,
}

/// Something to hand to the driver.
// Owned, in a fixed outbox: without alloc the bytes travel in the entry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Out {
    Send {
        to: Dest,
        len: usize,
        buf: [u8; 1024],
    },
    Connect {
        conn: ConnId,
        peer: PeerAddr,
    },
    Close(ConnId),
    Announced {
        tracker: usize,
        peers: Vec<PeerAddr, MAX_PEERS>,
        seeders: Option<u32>,
        leechers: Option<u32>,
        next: Instant,
    },
    Warning {
        tracker: usize,
        message: Vec<u8, 128>,
    },
    Failed {
        tracker: usize,
        failure: Failure,
        reason: Vec<u8, 128>,
        retry: Instant,
    },
}

/// Announces one torrent to up to `TRACKERS` trackers (BEP 3 over HTTP, BEP 15 over UDP)
/// and reports the peers they return.
///
/// Each tracker is announced to on its own schedule: `started` first, then every
/// `interval` it asks for (never sooner than its `min interval`), `completed` when
/// [`Announcer::completed`] is called, `stopped` on [`Announcer::stop`]. A failed announce
/// is retried after 15 s, doubling with each failure in a row. Over UDP a request is
/// retransmitted after 15 × 2ⁿ s (BEP 15), and a connection id is reused for its minute.
///
/// The driver resolves the trackers' names ([`TrackerUrl::parse`] says which host and
/// port) and carries the bytes: HTTP answers come on a TCP connection it opens
/// ([`Output::Connect`]), UDP answers are datagrams from the tracker's address.
pub struct Announcer<const TRACKERS: usize> {
    config: AnnouncerConfig,
    rng: Rng,
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    port: u16,
    key: u32,
    totals: (u64, u64, u64),
    trackers: Vec<Slot, TRACKERS>,
    next_conn: u64,
    outbox: Deque<Out, 8>,
    sending: Option<Out>,
    stats: AnnouncerStats,
}

impl<const TRACKERS: usize> Announcer<TRACKERS> {
    /// An announcer for the torrent `info_hash`, as `peer_id` listening on `port`.
    pub fn new(
        config: AnnouncerConfig,
        info_hash: [u8; 20],
        peer_id: [u8; 20],
        port: u16,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let key = rng.next_u32();
        Announcer {
            config,
            rng,
            info_hash,
            peer_id,
            port,
            key,
            totals: (0, 0, 0),
            trackers: Vec::new(),
            next_conn: 0,
            outbox: Deque::new(),
            sending: None,
            stats: AnnouncerStats::default(),
        }
    }

    /// Adds the tracker at `url`, reached at `addr` (its host resolved by the driver). Its
    /// first announce (`started`) goes out at once. Returns its index.
    pub fn add_tracker(
        &mut self,
        now: Instant,
        url: &str,
        addr: PeerAddr,
    ) -> Result<usize, TrackerError> {
        let url = TrackerUrl::parse(url)?;
        let slot = Slot {
            scheme: url.scheme,
            host: String::try_from(url.host).map_err(|_| TrackerError::BadUrl)?,
            port: url.port,
            path: String::try_from(url.path).map_err(|_| TrackerError::BadUrl)?,
            addr,
            flight: Flight::Idle,
            next: now,
            event: AnnounceEvent::Started,
            conn_id: None,
            tracker_id: Vec::new(),
            min_interval: Duration::from_secs(0),
            failures: 0,
            done: false,
        };
        self.trackers
            .push(slot)
            .map_err(|_| TrackerError::BufferFull)?;
        Ok(self.trackers.len() - 1)
    }

    /// The totals the next announces report: bytes uploaded and downloaded since the
    /// start, bytes still missing.
    pub fn set_totals(&mut self, uploaded: u64, downloaded: u64, left: u64) {
        self.totals = (uploaded, downloaded, left);
    }

    /// The download finished: tells every tracker (`completed`) now.
    pub fn completed(&mut self, now: Instant) {
        for i in 0..self.trackers.len() {
            // A `started` not yet through stays: the tracker has not seen us yet.
            if !self.trackers[i].done && self.trackers[i].event == AnnounceEvent::Empty {
                self.restart(now, i, AnnounceEvent::Completed);
            }
        }
    }

    /// Leaving the swarm: tells every tracker (`stopped`), once, with no retries; then
    /// [`Announcer::is_stopped`].
    pub fn stop(&mut self, now: Instant) {
        for i in 0..self.trackers.len() {
            if !self.trackers[i].done {
                self.restart(now, i, AnnounceEvent::Stopped);
                self.trackers[i].failures = 0;
            }
        }
    }

    /// Makes tracker `i`'s next announce carry `event`, now: an announce in flight is
    /// dropped (its answer would be taken for this one's).
    fn restart(&mut self, now: Instant, i: usize, event: AnnounceEvent) {
        if let Flight::Http { conn, .. } = self.trackers[i].flight {
            self.queue(Out::Close(conn));
        }
        let t = &mut self.trackers[i];
        t.flight = Flight::Idle;
        t.event = event;
        t.next = now;
    }

    /// Every tracker was sent its `stopped` (answered or failed).
    pub fn is_stopped(&self) -> bool {
        self.trackers.iter().all(|t| t.done)
    }

    /// What it counted.
    pub fn stats(&self) -> AnnouncerStats {
        self.stats
    }

    fn announce(&self, t: &Slot) -> Announce {
        let (uploaded, downloaded, left) = self.totals;
        Announce {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            port: self.port,
            uploaded,
            downloaded,
            left,
            event: t.event,
            numwant: match t.event {
                AnnounceEvent::Stopped => Some(0),
                _ => Some(self.config.numwant),
            },
            key: self.key,
        }
    }

    fn queue(&mut self, out: Out) {
        // The outbox holds more than one round of every tracker's outputs, and it is
        // drained after every call.
        if self.outbox.push_back(out).is_err() {
            self.stats.dropped += 1;
        }
    }

    /// Starts the announce of tracker `i`.
    fn start(&mut self, now: Instant, i: usize) {
        let t = &self.trackers[i];
        match t.scheme {
            Scheme::Http => {
                let conn = ConnId::outbound(self.next_conn);
                self.next_conn += 1;
                let peer = t.addr;
                self.trackers[i].flight = Flight::Http {
                    conn,
                    deadline: now + self.config.http_timeout,
                    rx: Vec::new(),
                };
                self.queue(Out::Connect { conn, peer });
            }
            Scheme::Udp => self.send_udp(now, i, 0),
        }
    }

    /// Sends tracker `i`'s next BEP 15 request: the announce while its connection id is
    /// fresh, else a connect.
    fn send_udp(&mut self, now: Instant, i: usize, attempt: u32) {
        let tid = self.rng.next_u32();
        let announce = self.announce(&self.trackers[i]);
        let t = &mut self.trackers[i];
        let conn_id = t
            .conn_id
            .filter(|&(_, at)| now - at < CONN_ID_LIFE)
            .map(|(id, _)| id);
        let request = match conn_id {
            Some(conn_id) => UdpRequest::Announce {
                conn_id,
                tid,
                announce,
            },
            None => UdpRequest::Connect { tid },
        };
        let wait = Duration::from_micros(
            self.config
                .udp_timeout
                .as_micros()
                .saturating_mul(1 << attempt.min(16)),
        );
        t.flight = Flight::Udp {
            tid,
            connecting: conn_id.is_none(),
            attempt,
            deadline: now + wait,
        };
        let mut buf = [0u8; 1024];
        if let Ok(bytes) = request.encode(&mut buf) {
            let len = bytes.len();
            let to = Dest::Addr(t.addr);
            self.queue(Out::Send { to, len, buf });
        }
    }

    /// Tracker `i` answered; `peers` and the rest from its answer.
    fn succeeded(
        &mut self,
        now: Instant,
        i: usize,
        interval: Option<u32>,
        peers: impl Iterator<Item = PeerAddr>,
        seeders: Option<u32>,
        leechers: Option<u32>,
    ) {
        self.stats.announced += 1;
        let default = self.config.default_interval;
        let t = &mut self.trackers[i];
        t.flight = Flight::Idle;
        t.failures = 0;
        if t.event == AnnounceEvent::Stopped {
            t.done = true;
        }
        t.event = AnnounceEvent::Empty;
        let interval = interval.map_or(default, |s| Duration::from_secs(s.into()));
        t.next = now + interval.max(t.min_interval).max(Duration::from_secs(1));
        let next = t.next;
        let peers: Vec<PeerAddr, MAX_PEERS> = peers.take(MAX_PEERS).collect();
        self.stats.peers += peers.len() as u64;
        self.queue(Out::Announced {
            tracker: i,
            peers,
            seeders,
            leechers,
            next,
        });
    }

    /// Tracker `i`'s announce failed.
    fn failed(&mut self, now: Instant, i: usize, failure: Failure, reason: &[u8]) {
        self.stats.failed += 1;
        let (base, cap) = (self.config.retry_after, self.config.default_interval);
        if let Flight::Http { conn, .. } = self.trackers[i].flight {
            self.queue(Out::Close(conn));
        }
        let t = &mut self.trackers[i];
        t.flight = Flight::Idle;
        t.done |= t.event == AnnounceEvent::Stopped;
        let wait = base.as_micros().saturating_mul(1 << t.failures.min(16));
        t.failures += 1;
        t.next = now + Duration::from_micros(wait.min(cap.as_micros())).max(t.min_interval);
        let retry = t.next;
        let reason = Vec::from_slice(&reason[..reason.len().min(128)]).unwrap_or_default();
        self.queue(Out::Failed {
            tracker: i,
            failure,
            reason,
            retry,
        });
    }

    /// An HTTP answer, complete or cut off by `closed`.
    fn on_http(&mut self, now: Instant, i: usize, closed: bool) {
        let Flight::Http { rx, conn, .. } = &mut self.trackers[i].flight else {
            return;
        };
        let conn = *conn;
        let rx = core::mem::take(rx);
        let answer: Result<Reply<'_>, Failure> = match http::read_response(&rx, closed) {
            Ok(None) => {
                if let Flight::Http { rx: slot, .. } = &mut self.trackers[i].flight {
                    *slot = rx;
                }
                return;
            }
            Err(_) if closed && rx.is_empty() => Err(Failure::Unreachable),
            Err(e) => Err(Failure::Malformed(e)),
            Ok(Some((code, body))) => match http::parse_reply(body) {
                Ok(reply) => Ok(reply),
                Err(_) if code != 200 => Err(Failure::Malformed(TrackerError::BadHttp)),
                Err(e) => Err(Failure::Malformed(e)),
            },
        };
        if !closed {
            self.queue(Out::Close(conn));
        }
        // The connection is closed either way: `failed` must not close it again.
        self.trackers[i].flight = Flight::Idle;
        match answer {
            Err(f) => self.failed(now, i, f, &[]),
            Ok(Reply::Failure(reason)) => self.failed(now, i, Failure::Refused, reason),
            Ok(Reply::Announce(r)) => {
                let t = &mut self.trackers[i];
                if let Some(id) = r.tracker_id {
                    t.tracker_id = Vec::from_slice(id).unwrap_or_default();
                }
                if let Some(min) = r.min_interval {
                    t.min_interval = Duration::from_secs(min.into());
                }
                if let Some(w) = r.warning {
                    let message = Vec::from_slice(&w[..w.len().min(128)]).unwrap_or_default();
                    self.queue(Out::Warning {
                        tracker: i,
                        message,
                    });
                }
                self.succeeded(now, i, r.interval, r.peers, r.complete, r.incomplete);
            }
        }
    }

    fn on_datagram(&mut self, now: Instant, from: PeerAddr, payload: &[u8]) {
        let Ok(response) = UdpResponse::decode(payload, from.is_v6()) else {
            self.stats.dropped += 1;
            return;
        };
        let found = self.trackers.iter().position(|t| {
            t.addr == from && matches!(t.flight, Flight::Udp { tid, .. } if tid == response.tid())
        });
        let Some(i) = found else {
            self.stats.dropped += 1;
            return;
        };
        let Flight::Udp { connecting, .. } = self.trackers[i].flight else {
            return;
        };
        match response {
            UdpResponse::Connect { conn_id, .. } if connecting => {
                self.trackers[i].conn_id = Some((conn_id, now));
                self.send_udp(now, i, 0);
            }
            UdpResponse::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } if !connecting => {
                self.succeeded(now, i, Some(interval), peers, Some(seeders), Some(leechers));
            }
            UdpResponse::Error { message, .. } => {
                // A stale connection id: connect again next time.
                self.trackers[i].conn_id = None;
                self.failed(now, i, Failure::Refused, message);
            }
            _ => self.stats.dropped += 1,
        }
    }

    /// Starts what is due and handles what timed out; the next deadline.
    fn tick(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for i in 0..self.trackers.len() {
            if self.outbox.len() + 2 > self.outbox.capacity() {
                // Room for this tracker's outputs next time.
                return Some(now);
            }
            let t = &self.trackers[i];
            match t.flight {
                _ if t.done => continue,
                Flight::Idle if now >= t.next => self.start(now, i),
                Flight::Http { deadline, .. } if now >= deadline => {
                    self.failed(now, i, Failure::Timeout, &[])
                }
                Flight::Udp {
                    attempt, deadline, ..
                } if now >= deadline => {
                    if attempt >= self.config.udp_retries
                        || self.trackers[i].event == AnnounceEvent::Stopped
                    {
                        self.failed(now, i, Failure::Timeout, &[]);
                    } else {
                        self.stats.retransmitted += 1;
                        self.send_udp(now, i, attempt + 1);
                    }
                }
                _ => {}
            }
            let t = &self.trackers[i];
            let due = match t.flight {
                _ if t.done => continue,
                Flight::Idle => t.next,
                Flight::Http { deadline, .. } | Flight::Udp { deadline, .. } => deadline,
            };
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }
}

impl<const TRACKERS: usize> Machine for Announcer<TRACKERS> {
    type Event<'a> = AnnouncerEvent<'a>;

    fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        let http =
            |c: ConnId| move |t: &Slot| matches!(t.flight, Flight::Http { conn, .. } if conn == c);
        match input {
            Input::Datagram { from, payload } => self.on_datagram(now, from, payload),
            Input::Connected { conn } => {
                let Some(i) = self.trackers.iter().position(http(conn)) else {
                    self.queue(Out::Close(conn));
                    return;
                };
                let announce = self.announce(&self.trackers[i]);
                let t = &self.trackers[i];
                let url = TrackerUrl {
                    scheme: t.scheme,
                    host: &t.host,
                    port: t.port,
                    path: &t.path,
                };
                let id = (!t.tracker_id.is_empty()).then_some(&t.tracker_id[..]);
                let mut buf = [0u8; 1024];
                match http::write_announce(&mut buf, &url, &announce, id) {
                    Ok(len) => self.queue(Out::Send {
                        to: Dest::Conn(conn),
                        len,
                        buf,
                    }),
                    Err(e) => self.failed(now, i, Failure::Malformed(e), &[]),
                }
            }
            Input::Received { conn, bytes } => {
                let Some(i) = self.trackers.iter().position(http(conn)) else {
                    self.stats.dropped += 1;
                    return;
                };
                if let Flight::Http { rx, .. } = &mut self.trackers[i].flight
                    && rx.extend_from_slice(bytes).is_err()
                {
                    self.failed(now, i, Failure::Malformed(TrackerError::BufferFull), &[]);
                    return;
                }
                self.on_http(now, i, false);
            }
            Input::Closed { conn } => {
                if let Some(i) = self.trackers.iter().position(http(conn)) {
                    self.on_http(now, i, true);
                }
            }
            Input::Accepted { conn, .. } => self.queue(Out::Close(conn)),
        }
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, Self::Event<'_>> {
        let deadline = self.tick(now);
        self.sending = self.outbox.pop_front();
        match &self.sending {
            None => Output::Wait(deadline),
            Some(Out::Send { to, len, buf }) => Output::Transmit {
                to: *to,
                payload: &buf[..*len],
            },
            Some(Out::Connect { conn, peer }) => Output::Connect {
                conn: *conn,
                peer: *peer,
            },
            Some(Out::Close(conn)) => Output::Close { conn: *conn },
            Some(Out::Announced {
                tracker,
                peers,
                seeders,
                leechers,
                next,
            }) => Output::Event(AnnouncerEvent::Announced {
                tracker: *tracker,
                peers,
                seeders: *seeders,
                leechers: *leechers,
                next: *next,
            }),
            Some(Out::Warning { tracker, message }) => Output::Event(AnnouncerEvent::Warning {
                tracker: *tracker,
                message,
            }),
            Some(Out::Failed {
                tracker,
                failure,
                reason,
                retry,
            }) => Output::Event(AnnouncerEvent::Failed {
                tracker: *tracker,
                failure: *failure,
                reason,
                retry: *retry,
            }),
        }
    }
}
