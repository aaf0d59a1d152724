//! BitTorrent on the simulator: swarms of [`Session`]s over links with real upload and
//! download capacities ([`Link`]), with the storage a driver keeps, in memory.
//!
//! The torrent's bytes are a deterministic function of their offset ([`Torrent::fill`]),
//! so a seed needs no copy of them and a leecher keeps only the pieces it is assembling:
//! each is hashed with SHA-1 when the session asks ([`Event::Verify`]), and once it passes
//! the bytes can be generated again to serve uploads. A test that wants the bytes kept
//! (to compare them at the end) sets [`Store::keep`]. A corrupt peer flips a byte of every
//! block it uploads.
//!
//! The driver keeps its uplink's queue short: it reads a requested block only while less
//! than [`SEND_QUEUE`] of data waits on its uplink, as a send-buffer watermark or uTP's
//! LEDBAT (a 100 ms target) does. Without that, every request a peer sends waits behind
//! seconds of blocks queued on its own asymmetric uplink, and a peer that uploads
//! downloads slower than one that does not.

use crate::net::{Link, NetConfig, Sim, SimError, addr_of};
use crate::util::{mean, mix, shuffle};
use overlay_core::bittorrent::session::{CloseReason, Config, Event, Session, Stats};
use overlay_core::bittorrent::wire::BlockRequest;
use overlay_core::{ConnId, Dest, Duration, Input, Instant, Machine, Output, PeerAddr, Rng};
use sha1::{Digest, Sha1};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Pieces a simulated torrent may have: 128 MiB in 256 KiB pieces.
pub const PIECES: usize = 512;
/// Blocks per piece: 256 KiB pieces.
pub const BLOCKS: usize = 16;
/// Connections per peer: enough for a seed serving 63 leechers alone.
pub const PEERS: usize = 64;
/// A simulated swarm member.
pub type SimSession = Session<PIECES, BLOCKS, PEERS>;
/// How much queueing on its uplink a peer tolerates before it holds back blocks.
pub const SEND_QUEUE: Duration = Duration::from_millis(100);

/// A torrent whose content is generated from its offsets.
pub struct Torrent {
    /// Bytes per piece.
    pub piece_len: u32,
    /// Total bytes.
    pub total: u64,
    /// The metainfo's `pieces`: SHA-1 of each piece.
    pub hashes: Vec<u8>,
    /// The info hash (here a hash of the piece hashes: only its uniqueness matters).
    pub info_hash: [u8; 20],
    seed: u64,
}

impl Torrent {
    /// `total` bytes in pieces of `piece_len`, content drawn from `seed`.
    pub fn new(total: u64, piece_len: u32, seed: u64) -> Torrent {
        let mut t = Torrent {
            piece_len,
            total,
            hashes: Vec::new(),
            info_hash: [0; 20],
            seed,
        };
        let mut buf = vec![0; piece_len as usize];
        for p in 0..t.piece_count() {
            let len = t.piece_size(p);
            t.fill(p, 0, &mut buf[..len]);
            t.hashes.extend_from_slice(&Sha1::digest(&buf[..len]));
        }
        t.info_hash = Sha1::digest(&t.hashes).into();
        t
    }

    /// Pieces in the torrent.
    pub fn piece_count(&self) -> u32 {
        self.total.div_ceil(u64::from(self.piece_len)) as u32
    }

    /// Bytes in `piece`.
    pub fn piece_size(&self, piece: u32) -> usize {
        let start = u64::from(piece) * u64::from(self.piece_len);
        (self.total - start).min(u64::from(self.piece_len)) as usize
    }

    /// The torrent's bytes at `piece`, `begin`, `out.len()` of them.
    pub fn fill(&self, piece: u32, begin: u32, out: &mut [u8]) {
        let start = u64::from(piece) * u64::from(self.piece_len) + u64::from(begin);
        for (k, b) in out.iter_mut().enumerate() {
            let at = start + k as u64;
            *b = (mix(self.seed ^ (at >> 3)) >> ((at & 7) * 8)) as u8;
        }
    }

    /// A session configuration for this torrent.
    pub fn config(&self, peer_id: [u8; 20]) -> Config {
        Config::new(self.info_hash, peer_id, self.piece_len, self.total)
    }
}

/// What a simulated peer reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// A handshake finished.
    Connected(ConnId),
    /// A connection ended.
    Closed(ConnId, PeerAddr, CloseReason),
    /// A piece was checked.
    Checked {
        /// The piece.
        piece: u32,
        /// Whether its hash matched.
        passed: bool,
    },
    /// The download finished.
    Complete,
}

/// An output copied out of the session, so that storage can be served in between.
enum Owned {
    Transmit(ConnId, Vec<u8>),
    Connect(ConnId, PeerAddr),
    Close(ConnId),
    Event(PeerEvent),
}

/// A peer's storage, in memory: the pieces it is assembling, and those it keeps.
pub struct Store {
    torrent: Arc<Torrent>,
    /// Pieces being assembled.
    partial: HashMap<u32, Vec<u8>>,
    /// Verified pieces' bytes, when kept.
    kept: HashMap<u32, Vec<u8>>,
    /// Keep verified pieces' bytes (to compare them with the torrent's at the end).
    pub keep: bool,
    /// Upload corrupt blocks.
    pub corrupt: bool,
}

/// A session with its driver: in-memory storage, answered at once.
pub struct Peer {
    /// The machine.
    pub session: Box<SimSession>,
    /// Its storage.
    pub store: Store,
    out: VecDeque<Owned>,
    sending: Vec<u8>,
    deadline: Option<Instant>,
    /// Requests to serve once the uplink has room.
    reads: VecDeque<(ConnId, BlockRequest)>,
    /// The uplink's rate in bytes per second (0: unlimited), and until when what we sent
    /// keeps it busy.
    up_rate: u64,
    up_busy_until: Instant,
}

impl Peer {
    /// A peer of `torrent` with `config`; a seed has every piece.
    pub fn new(torrent: Arc<Torrent>, config: Config, seed: bool, rng_seed: u64) -> Peer {
        let mut session = Box::new(
            SimSession::new(config, &torrent.hashes, rng_seed)
                .expect("the torrent fits the simulated session"),
        );
        if seed {
            for p in 0..torrent.piece_count() {
                let _ = session.have_piece(Instant::ZERO, p);
            }
        }
        Peer {
            session,
            store: Store {
                torrent,
                partial: HashMap::new(),
                kept: HashMap::new(),
                keep: false,
                corrupt: false,
            },
            out: VecDeque::new(),
            sending: Vec::new(),
            deadline: None,
            reads: VecDeque::new(),
            up_rate: 0,
            up_busy_until: Instant::ZERO,
        }
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        self.session.stats()
    }
}

impl Store {
    /// Whether every kept piece holds the torrent's bytes (and every piece is kept).
    pub fn data_matches(&self) -> bool {
        let mut want = vec![0; self.torrent.piece_len as usize];
        (0..self.torrent.piece_count()).all(|p| {
            let len = self.torrent.piece_size(p);
            self.torrent.fill(p, 0, &mut want[..len]);
            self.kept.get(&p).is_some_and(|got| got[..] == want[..len])
        })
    }

    fn write(&mut self, piece: u32, begin: u32, data: &[u8]) {
        let size = self.torrent.piece_size(piece);
        let buf = self.partial.entry(piece).or_insert_with(|| vec![0; size]);
        let at = begin as usize;
        if let Some(dst) = buf.get_mut(at..at + data.len()) {
            dst.copy_from_slice(data);
        }
    }

    fn verify(&mut self, piece: u32, hash: &[u8; 20]) -> bool {
        let Some(buf) = self.partial.remove(&piece) else {
            return false;
        };
        let passed = Sha1::digest(&buf)[..] == hash[..];
        if passed && self.keep {
            self.kept.insert(piece, buf);
        }
        passed
    }

    fn read(&self, block: BlockRequest) -> Vec<u8> {
        let mut data = vec![0; block.length as usize];
        match self.kept.get(&block.index) {
            Some(piece) => {
                let at = block.begin as usize;
                let len = data.len();
                data.copy_from_slice(&piece[at..at + len]);
            }
            None => self.torrent.fill(block.index, block.begin, &mut data),
        }
        if self.corrupt && !data.is_empty() {
            data[0] ^= 0xff;
        }
        data
    }
}

impl Peer {
    /// Tells the driver its uplink's rate, so that it can keep the uplink's queue short.
    pub fn set_uplink(&mut self, bytes_per_sec: u64) {
        self.up_rate = bytes_per_sec;
    }

    /// When the uplink's queue is short enough for another block: now, or later.
    fn uplink_ready_at(&self, now: Instant) -> Instant {
        let ready = Instant::from_micros(
            self.up_busy_until
                .as_micros()
                .saturating_sub(SEND_QUEUE.as_micros()),
        );
        ready.max(now)
    }

    /// Drains the session, serving its storage requests, into `out`.
    fn pump(&mut self, now: Instant) {
        let mut checks: VecDeque<(u32, bool)> = VecDeque::new();
        loop {
            match self.session.poll_output(now) {
                Output::Transmit {
                    to: Dest::Conn(conn),
                    payload,
                } => {
                    if self.up_rate > 0 {
                        let busy = (payload.len() as u64 * 1_000_000).div_ceil(self.up_rate);
                        self.up_busy_until =
                            self.up_busy_until.max(now) + Duration::from_micros(busy);
                    }
                    self.out.push_back(Owned::Transmit(conn, payload.to_vec()));
                }
                Output::Transmit { .. } => {}
                Output::Connect { conn, peer } => self.out.push_back(Owned::Connect(conn, peer)),
                Output::Close { conn } => self.out.push_back(Owned::Close(conn)),
                Output::Event(e) => {
                    let report = match e {
                        Event::Write { piece, begin, data } => {
                            self.store.write(piece, begin, data);
                            None
                        }
                        Event::Verify { piece, hash } => {
                            let passed = self.store.verify(piece, &hash);
                            checks.push_back((piece, passed));
                            Some(PeerEvent::Checked { piece, passed })
                        }
                        Event::Read { conn, block } => {
                            self.reads.push_back((conn, block));
                            None
                        }
                        Event::Connected { conn, .. } => Some(PeerEvent::Connected(conn)),
                        Event::Closed { conn, peer, reason } => {
                            Some(PeerEvent::Closed(conn, peer, reason))
                        }
                        Event::Complete => Some(PeerEvent::Complete),
                    };
                    if let Some(r) = report {
                        self.out.push_back(Owned::Event(r));
                    }
                }
                Output::Wait(deadline) => {
                    // Answer one request, then drain again, as the contract asks.
                    let uplink_ready = self.uplink_ready_at(now);
                    if let Some((piece, passed)) = checks.pop_front() {
                        let _ = self.session.piece_checked(now, piece, passed);
                    } else if !self.reads.is_empty() && uplink_ready <= now {
                        let (conn, block) = self.reads.pop_front().expect("not empty");
                        let data = self.store.read(block);
                        // Refused if the peer cancelled it or was choked meanwhile.
                        let _ = self.session.send_block(now, conn, block, &data);
                    } else {
                        self.deadline = match (deadline, self.reads.is_empty()) {
                            (d, true) => d,
                            (Some(d), false) => Some(d.min(uplink_ready)),
                            (None, false) => Some(uplink_ready),
                        };
                        return;
                    }
                }
            }
        }
    }
}

impl Machine for Peer {
    type Event<'a> = PeerEvent;

    fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        self.session.handle_input(now, input);
    }

    fn poll_output(&mut self, now: Instant) -> Output<'_, PeerEvent> {
        if self.out.is_empty() {
            self.pump(now);
        }
        match self.out.pop_front() {
            Some(Owned::Transmit(conn, bytes)) => {
                self.sending = bytes;
                Output::Transmit {
                    to: Dest::Conn(conn),
                    payload: &self.sending,
                }
            }
            Some(Owned::Connect(conn, peer)) => Output::Connect { conn, peer },
            Some(Owned::Close(conn)) => Output::Close { conn },
            Some(Owned::Event(e)) => Output::Event(e),
            None => Output::Wait(self.deadline),
        }
    }
}

/// Who serves the leechers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Everyone trades with everyone it meets: each leecher dials [`SwarmConfig::dial`]
    /// random others, the seed among them with the same chance.
    Swarm,
    /// The seed serves every leecher, and leechers never meet.
    ClientServer,
}

/// One swarm experiment.
#[derive(Clone, Copy, Debug)]
pub struct SwarmConfig {
    /// Leechers, all starting at once (a flash crowd).
    pub leechers: usize,
    /// Of those, how many never upload.
    pub free_riders: usize,
    /// Extra peers that claim every piece and upload corrupt blocks.
    pub corrupt: usize,
    /// Torrent size.
    pub size: u64,
    /// Piece size.
    pub piece_len: u32,
    /// The seed's link.
    pub seed_link: Link,
    /// Each leecher's link.
    pub leecher_link: Link,
    /// How peers meet.
    pub mode: Mode,
    /// Peers each leecher dials (a tracker's answer).
    pub dial: usize,
    /// Random picking throughout instead of rarest first.
    pub random_picker: bool,
    /// Keep every verified piece's bytes, to compare them at the end.
    pub keep_data: bool,
    /// Seed of everything random.
    pub seed: u64,
    /// Give up after this much virtual time.
    pub max_time: Duration,
    /// Piece replication is sampled this often.
    pub sample_every: Duration,
    /// How long a leecher stays to seed once it has the file (`None`: to the end).
    pub seed_time: Option<Duration>,
}

impl SwarmConfig {
    /// `leechers` leechers of a `size`-byte torrent in 256 KiB pieces; a seed uploading
    /// 1 MB/s; leechers on asymmetric links, 2 MB/s down, 256 KB/s up (DSL-like 8:1).
    pub fn new(leechers: usize, size: u64) -> SwarmConfig {
        SwarmConfig {
            leechers,
            free_riders: 0,
            corrupt: 0,
            size,
            piece_len: 256 * 1024,
            seed_link: Link::new(1_000_000, 10_000_000),
            leecher_link: Link::new(256_000, 2_000_000),
            mode: Mode::Swarm,
            dial: 10,
            random_picker: false,
            keep_data: false,
            seed: 1,
            max_time: Duration::from_secs(36_000),
            sample_every: Duration::from_secs(5),
            seed_time: None,
        }
    }
}

/// The swarm at one instant: copies of each piece among the leechers present, and how far
/// each group has come.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the start.
    pub t: f64,
    /// Copies of the least replicated piece.
    pub min: u32,
    /// Copies of the most replicated piece.
    pub max: u32,
    /// Mean copies per piece.
    pub mean: f64,
    /// Standard deviation of the copies per piece.
    pub std: f64,
    /// Mean pieces had by the free riders present (finished ones count whole).
    pub have_free: f64,
    /// Mean pieces had by the contributing leechers.
    pub have_fair: f64,
    /// Mean number of leechers unchoking a free rider.
    pub unchoked_free: f64,
    /// Mean number of leechers unchoking a contributor.
    pub unchoked_fair: f64,
}

/// What a swarm experiment measured.
#[derive(Clone, Debug)]
pub struct SwarmResult {
    /// Each leecher's download time in seconds (`None`: not finished by `max_time`).
    pub finish: Vec<Option<f64>>,
    /// Which leechers were free riders.
    pub free_rider: Vec<bool>,
    /// The swarm every `sample_every`.
    pub samples: Vec<Sample>,
    /// The honest peers' counters, summed.
    pub total: Stats,
    /// Corrupt peers banned by someone (the count of bans, not of peers).
    pub bans: u64,
    /// Whether every leecher finished and its bytes equal the torrent's (only with
    /// `keep_data`).
    pub data_ok: bool,
    /// Events the simulator processed.
    pub events: u64,
}

impl SwarmResult {
    /// Download times of the finished leechers that match `filter` (by free-rider flag).
    pub fn times(&self, free_riders: bool) -> Vec<f64> {
        self.finish
            .iter()
            .zip(&self.free_rider)
            .filter(|(_, f)| **f == free_riders)
            .filter_map(|(t, _)| *t)
            .collect()
    }

    /// The median download time of the finished leechers of one group.
    pub fn median(&self, free_riders: bool) -> f64 {
        let mut t = self.times(free_riders);
        t.sort_by(f64::total_cmp);
        match t.len() {
            0 => f64::NAN,
            k if k % 2 == 1 => t[k / 2],
            k => (t[k / 2 - 1] + t[k / 2]) / 2.0,
        }
    }

    /// When the last leecher finished, if all did.
    pub fn last(&self) -> Option<f64> {
        self.finish
            .iter()
            .try_fold(0.0f64, |m, t| t.map(|t| m.max(t)))
    }

    /// Leechers that did not finish.
    pub fn unfinished(&self) -> usize {
        self.finish.iter().filter(|t| t.is_none()).count()
    }
}

/// Runs one experiment: node 0 is the seed, 1..=leechers the leechers (the first
/// `free_riders` of them free riders, drawn at random so that no order of joining favours
/// them), then the corrupt peers.
///
/// It runs on a thread of its own with a 64 MiB stack: sessions are built by value (core
/// allocates nothing), and one of 64 connections is 2.7 MB before it is boxed.
pub fn run_swarm(cfg: &SwarmConfig) -> Result<SwarmResult, SimError> {
    let cfg = *cfg;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, move || swarm(&cfg))
            .expect("spawn the simulation thread")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn swarm(cfg: &SwarmConfig) -> Result<SwarmResult, SimError> {
    let torrent = Arc::new(Torrent::new(cfg.size, cfg.piece_len, cfg.seed));
    let mut sim: Sim<Peer> = Sim::new(NetConfig {
        seed: cfg.seed,
        ..NetConfig::default()
    });
    let peer_id = |i: usize| {
        let mut id = *b"-OL0001-000000000000";
        id[8..].copy_from_slice(format!("{i:012}").as_bytes());
        id
    };
    let n = cfg.leechers;
    let members = 1 + n + cfg.corrupt;
    let mut rng = Rng::new(cfg.seed);
    let mut leechers: Vec<usize> = (1..=n).collect();
    shuffle(&mut leechers, &mut rng);
    let mut free_rider = vec![false; members];
    for &i in leechers.iter().take(cfg.free_riders) {
        free_rider[i] = true;
    }
    for (i, &free) in free_rider.iter().enumerate() {
        let leecher = (1..=n).contains(&i);
        let mut config = torrent.config(peer_id(i));
        config.serve = !free;
        if cfg.random_picker {
            config.initial_random_pieces = u32::MAX;
        }
        let (t, seed) = (torrent.clone(), cfg.seed);
        let node = sim.add(|_| {
            let mut p = Peer::new(t, config, !leecher, seed ^ mix(i as u64));
            p.store.keep = cfg.keep_data && leecher;
            p.store.corrupt = i > n;
            p
        });
        let link = if leecher {
            cfg.leecher_link
        } else {
            cfg.seed_link
        };
        sim.set_link(node, link);
        sim.command(node, &mut |_, _, _| {}, |p, _| p.set_uplink(link.up));
    }
    let mut quiet = |_: usize, _: Instant, _: PeerEvent| {};
    for i in 1..=n {
        let targets: Vec<usize> = match cfg.mode {
            Mode::ClientServer => vec![0],
            Mode::Swarm => {
                let mut others: Vec<usize> = (0..members).filter(|&j| j != i).collect();
                shuffle(&mut others, &mut rng);
                others.truncate(cfg.dial);
                others
            }
        };
        for j in targets {
            sim.command(i, &mut quiet, |p, now| {
                let _ = p.session.add_peer(now, addr_of(j));
            });
        }
    }
    let mut samples = Vec::new();
    let mut total = Stats::default();
    let mut data_ok = cfg.keep_data;
    let mut finish: Vec<Option<Instant>> = vec![None; members];
    let mut departures: Vec<(Instant, usize)> = Vec::new();
    let mut bans = 0;
    let end = Instant::ZERO + cfg.max_time;
    let mut next_sample = Instant::ZERO + cfg.sample_every;
    let mut next_announce = Instant::ZERO + ANNOUNCE_EVERY;
    while sim.now() < end && (1..=n).any(|i| finish[i].is_none()) {
        let until = departures
            .iter()
            .map(|d| d.0)
            .fold(next_sample.min(next_announce).min(end), Instant::min);
        sim.run_until(until, &mut |i, now, e| match e {
            PeerEvent::Complete => {
                finish[i] = Some(now);
                if let Some(stay) = cfg.seed_time {
                    departures.push((now + stay, i));
                }
            }
            PeerEvent::Closed(_, peer, CloseReason::Banned)
                if crate::net::index_of(peer).is_some_and(|j| j > n) =>
            {
                bans += 1
            }
            _ => {}
        })?;
        let now = sim.now();
        // Leechers done seeding leave (their connections close at the other ends).
        for &(_, i) in departures.iter().filter(|d| d.0 <= now) {
            if let Some(p) = sim.node(i) {
                account(p, &mut total, &mut data_ok);
            }
            sim.crash(i);
        }
        departures.retain(|d| d.0 > now);
        if now >= next_sample {
            next_sample = now + cfg.sample_every;
            samples.push(sample(&sim, n, torrent.piece_count(), &free_rider));
        }
        if now >= next_announce {
            next_announce = now + ANNOUNCE_EVERY;
            if cfg.mode == Mode::Swarm {
                announce(&mut sim, &mut rng, cfg.dial);
            }
        }
    }
    for i in 0..=n {
        if let Some(p) = sim.node(i) {
            account(p, &mut total, &mut data_ok);
        }
    }
    let seconds = |t: Instant| t.as_micros() as f64 / 1e6;
    Ok(SwarmResult {
        finish: finish[1..=n].iter().map(|t| t.map(seconds)).collect(),
        free_rider: free_rider[1..=n].to_vec(),
        samples,
        total,
        bans,
        data_ok: data_ok && finish[1..=n].iter().all(Option::is_some),
        events: sim.stats().events,
    })
}

/// How often a leecher short of peers asks the tracker again.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(30);

/// The tracker, played by the simulator: every member present (the seed too) with fewer
/// than `2 * dial` connections dials `dial` random members present now, as BitTorrent
/// clients connect to the peers each announce returns.
fn announce(sim: &mut Sim<Peer>, rng: &mut Rng, dial: usize) {
    let present: Vec<usize> = sim.live().collect();
    for &i in &present {
        if sim
            .node(i)
            .is_none_or(|p| p.session.peer_count() >= 2 * dial)
        {
            continue;
        }
        let mut others: Vec<usize> = present.iter().copied().filter(|&j| j != i).collect();
        shuffle(&mut others, rng);
        others.truncate(dial);
        for j in others {
            // Refused when already connected to it, or full: the tracker does not know.
            sim.command(i, &mut |_, _, _| {}, |p, now| {
                let _ = p.session.add_peer(now, addr_of(j));
            });
        }
    }
}

/// Adds a leaving or final peer's counters to `total`, and checks its bytes if it kept them
/// (the seed keeps none and is not checked).
fn account(p: &Peer, total: &mut Stats, data_ok: &mut bool) {
    let s = p.stats();
    total.downloaded += s.downloaded;
    total.wasted += s.wasted;
    total.uploaded += s.uploaded;
    total.hash_failures += s.hash_failures;
    total.banned += s.banned;
    total.violations += s.violations;
    if p.store.keep && !p.store.data_matches() {
        *data_ok = false;
    }
}

/// The swarm now; leechers that left count as having everything.
fn sample(sim: &Sim<Peer>, n: usize, pieces: u32, free_rider: &[bool]) -> Sample {
    let counts: Vec<f64> = (0..pieces)
        .map(|p| {
            (1..=n)
                .filter(|&i| sim.node(i).is_some_and(|x| x.session.picker().has(p)))
                .count() as f64
        })
        .collect();
    let avg = mean(counts.iter().copied());
    let var = counts.iter().map(|c| (c - avg).powi(2)).sum::<f64>() / counts.len().max(1) as f64;
    let have = |free: bool| {
        let group: Vec<f64> = (1..=n)
            .filter(|&i| free_rider[i] == free)
            .map(|i| {
                sim.node(i)
                    .map_or(pieces, |p| p.session.picker().have_count()) as f64
            })
            .collect();
        mean(group)
    };
    // Who unchokes whom, among leechers still downloading.
    let mut unchoked_by = vec![0u32; n + 1];
    let now = sim.now();
    for i in 1..=n {
        let Some(p) = sim.node(i).filter(|p| !p.session.is_complete()) else {
            continue;
        };
        for peer in p.session.peers(now).filter(|x| !x.am_choking) {
            if let Some(j) = crate::net::index_of(peer.addr).filter(|j| (1..=n).contains(j)) {
                unchoked_by[j] += 1;
            }
        }
    }
    let unchoked = |free: bool| {
        let group: Vec<f64> = (1..=n)
            .filter(|&i| {
                free_rider[i] == free && sim.node(i).is_some_and(|p| !p.session.is_complete())
            })
            .map(|i| f64::from(unchoked_by[i]))
            .collect();
        mean(group)
    };
    Sample {
        t: sim.now().as_micros() as f64 / 1e6,
        min: counts.iter().fold(f64::MAX, |a, &c| a.min(c)) as u32,
        max: counts.iter().fold(0.0, |a: f64, &c| a.max(c)) as u32,
        mean: avg,
        std: var.sqrt(),
        have_free: have(true),
        have_fair: have(false),
        unchoked_free: unchoked(true),
        unchoked_fair: unchoked(false),
    }
}
