//! The choker: which peers we upload to. BEP 3's tit-for-tat ("Choking and optimistic
//! unchoking"), arranged the way libtorrent's `src/choker.cpp` and its peer accounting do it.
//!
//! Every rechoke (BEP 3: every ten seconds) the interested peers are ranked and the best
//! [`ChokerConfig::regular_slots`] are unchoked (BEP 3 says four): while leeching by how fast
//! they upload to *us* over a rolling 20 s window (BEP 3: "a rolling 20-second average"),
//! while seeding by how fast *we* upload to them (libtorrent's `fastest_upload` seeding
//! choker; its default `round_robin` and `anti_leech` are not implemented). On top of those,
//! one optimistic unchoke rotates every third rechoke (30 s, BEP 3) among the choked
//! interested peers, picked at random with peers connected less than 30 s ago three times as
//! likely (BEP 3: "newly connected peers are three times as likely to start as the current
//! optimistic unchoke").
//!
//! Anti-snubbing: a peer that has sent us no block for 60 s while we were interested and it
//! was unchoking us is *snubbed* (mainline's and libtorrent's `request_timeout` of 60 s).
//! As in libtorrent, a snubbed peer is no tit-for-tat candidate: it only gets a regular slot
//! that no unsnubbed interested peer wants.
//!
//! Sans-IO: the driver reports connections, interest, choke state and bytes with their time,
//! calls [`Choker::rechoke`] whenever [`Choker::next_rechoke`] is due, and sends a choke or
//! unchoke message for each [`Decision`] it returns. Only changes are returned; peers start
//! choked (BEP 3: "connections start out choked and not interested"), so adding one sends
//! nothing. Uninterested peers are never unchoked, unlike BEP 3's suggestion to unchoke
//! faster uninterested peers; libtorrent does not do that either.
//!
//! No allocation, no panics: `PEERS` fixes the capacity, unknown [`ConnId`]s get a
//! [`ChokerError`]. RAM on a 64-bit target (checked by a test): `88 + 80 × PEERS` bytes for
//! the `Choker` (80 per peer: id, three instants, two 20 s rate windows, four flags), and
//! during [`Choker::rechoke`] about `41 × PEERS` bytes of stack (the ranking, the unchoke set
//! and the returned [`Decisions`]).

use core::fmt;

use heapless::Vec;

use crate::{ConnId, Duration, Instant, Rng};

/// Tunables, with their sources.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChokerConfig {
    /// Peers unchoked by rank, not counting the optimistic one. BEP 3: four.
    pub regular_slots: usize,
    /// How often to rechoke. BEP 3: every ten seconds (libtorrent's `unchoke_interval`
    /// defaults to 15 s).
    pub rechoke_interval: Duration,
    /// The optimistic unchoke rotates every this many rechokes. BEP 3: every 30 s, that is
    /// every third rechoke.
    pub optimistic_every: u32,
    /// No block for this long while we want blocks makes a peer snubbed. Mainline's and
    /// libtorrent's `request_timeout`: 60 s.
    pub snub_timeout: Duration,
    /// A peer connected less than this long ago counts as new for the optimistic draw. One
    /// optimistic period (30 s), so each peer gets one boosted draw.
    pub new_peer_age: Duration,
    /// How much likelier a new peer is to be the optimistic unchoke. BEP 3: three times.
    pub new_peer_weight: u32,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        ChokerConfig {
            regular_slots: 4,
            rechoke_interval: Duration::from_secs(10),
            optimistic_every: 3,
            snub_timeout: Duration::from_secs(60),
            new_peer_age: Duration::from_secs(30),
            new_peer_weight: 3,
        }
    }
}

/// What the driver must tell a peer after a rechoke.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Decision {
    /// Send `choke`: we stop uploading to it.
    Choke,
    /// Send `unchoke`: it may request blocks from us.
    Unchoke,
}

/// The changes one rechoke made, chokes first; at most one per peer.
pub type Decisions<const PEERS: usize> = Vec<(ConnId, Decision), PEERS>;

/// Why a choker call was refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ChokerError {
    /// No peer with that id was added (or it was removed).
    UnknownPeer,
    /// That peer is already in the choker.
    AlreadyAdded,
    /// All `PEERS` places are taken.
    Full,
}

impl fmt::Display for ChokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChokerError::UnknownPeer => "unknown peer",
            ChokerError::AlreadyAdded => "peer already added",
            ChokerError::Full => "choker full",
        })
    }
}

impl core::error::Error for ChokerError {}

/// Width of one rate bucket. Four of them make BEP 3's 20 s window.
const BUCKET: Duration = Duration::from_secs(5);
const BUCKETS: usize = 4;
/// The window the rates average over: BEP 3's 20 s.
const WINDOW_SECS: u64 = 20;

/// Bytes in the last 20 s, in four 5 s buckets; the newest is partly filled, so the window
/// really spans 15 to 20 s, the same for every peer. 24 bytes.
#[derive(Clone, Copy, Default, Debug)]
struct RateWindow {
    bytes: [u32; BUCKETS],
    /// Index (time / 5 s) of the newest bucket written.
    head: u64,
}

fn bucket_of(now: Instant) -> u64 {
    now.as_micros() / BUCKET.as_micros()
}

impl RateWindow {
    fn record(&mut self, now: Instant, bytes: u32) {
        // A clock that steps back is treated as standing still.
        let at = bucket_of(now).max(self.head);
        let stale = at - self.head;
        // Clear the buckets that were skipped over (all of them after a long silence).
        for i in 1..=stale.min(BUCKETS as u64) {
            self.bytes[((self.head + i) % BUCKETS as u64) as usize] = 0;
        }
        self.head = at;
        let slot = &mut self.bytes[(at % BUCKETS as u64) as usize];
        *slot = slot.saturating_add(bytes);
    }

    /// Bytes seen in the window ending at `now`.
    fn total(&self, now: Instant) -> u64 {
        let now_b = bucket_of(now).max(self.head);
        let oldest = now_b.saturating_sub(BUCKETS as u64 - 1);
        (oldest..=self.head)
            .take(BUCKETS)
            .map(|i| u64::from(self.bytes[(i % BUCKETS as u64) as usize]))
            .sum()
    }

    /// Average bytes per second over the window.
    fn rate(&self, now: Instant) -> u64 {
        self.total(now) / WINDOW_SECS
    }
}

/// What the choker knows of one connection. 80 bytes on 64-bit targets.
#[derive(Clone, Copy, Debug)]
struct Peer {
    conn: ConnId,
    connected_at: Instant,
    /// Start of the current snub countdown: when we last began wanting blocks from it, or
    /// its last block, whichever is later.
    snub_clock: Instant,
    down: RateWindow,
    up: RateWindow,
    /// It is interested in what we have.
    peer_interested: bool,
    /// We are interested in what it has.
    am_interested: bool,
    /// It is choking us (BEP 3: connections start choked).
    peer_choking: bool,
    /// We are choking it, as last told to the driver.
    am_choking: bool,
}

impl Peer {
    fn wants_blocks(&self) -> bool {
        self.am_interested && !self.peer_choking
    }
    fn snubbed(&self, now: Instant, timeout: Duration) -> bool {
        self.wants_blocks() && now.saturating_since(self.snub_clock) >= timeout
    }
}

/// BEP 3's tit-for-tat choker for up to `PEERS` connections. See the module documentation
/// for the algorithm and its sources.
///
/// Call order: [`add_peer`](Self::add_peer) on connect, [`remove_peer`](Self::remove_peer)
/// on disconnect; report interest, their choke state and bytes as messages come and go;
/// call [`rechoke`](Self::rechoke) once `now >= next_rechoke()` and send what it returns.
#[derive(Clone, Debug)]
pub struct Choker<const PEERS: usize> {
    config: ChokerConfig,
    peers: Vec<Peer, PEERS>,
    optimistic: Option<ConnId>,
    last_rechoke: Option<Instant>,
    /// Rechokes done, wrapping; the optimistic unchoke rotates when it is a multiple of
    /// `optimistic_every`.
    rounds: u32,
}

impl<const PEERS: usize> Default for Choker<PEERS> {
    fn default() -> Self {
        Self::new(ChokerConfig::default())
    }
}

impl<const PEERS: usize> Choker<PEERS> {
    /// An empty choker.
    pub fn new(config: ChokerConfig) -> Self {
        Choker {
            config,
            peers: Vec::new(),
            optimistic: None,
            last_rechoke: None,
            rounds: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ChokerConfig {
        &self.config
    }

    /// Peers known.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// No peers known.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    fn find(&self, conn: ConnId) -> Option<usize> {
        self.peers.iter().position(|p| p.conn == conn)
    }

    fn peer_mut(&mut self, conn: ConnId) -> Result<&mut Peer, ChokerError> {
        self.peers
            .iter_mut()
            .find(|p| p.conn == conn)
            .ok_or(ChokerError::UnknownPeer)
    }

    fn peer(&self, conn: ConnId) -> Option<&Peer> {
        self.peers.iter().find(|p| p.conn == conn)
    }

    /// A new connection: choked both ways, neither side interested (BEP 3).
    pub fn add_peer(&mut self, conn: ConnId, now: Instant) -> Result<(), ChokerError> {
        if self.find(conn).is_some() {
            return Err(ChokerError::AlreadyAdded);
        }
        self.peers
            .push(Peer {
                conn,
                connected_at: now,
                snub_clock: now,
                down: RateWindow::default(),
                up: RateWindow::default(),
                peer_interested: false,
                am_interested: false,
                peer_choking: true,
                am_choking: true,
            })
            .map_err(|_| ChokerError::Full)
    }

    /// The connection is gone; no message is due for it. Its slot, if it had one, is
    /// refilled at the next rechoke (call [`rechoke`](Self::rechoke) early to refill now).
    pub fn remove_peer(&mut self, conn: ConnId) -> Result<(), ChokerError> {
        let i = self.find(conn).ok_or(ChokerError::UnknownPeer)?;
        // Order is kept so that ties keep breaking by connection age.
        self.peers.remove(i);
        if self.optimistic == Some(conn) {
            self.optimistic = None;
        }
        Ok(())
    }

    /// It sent `interested` (`true`) or `not interested` (`false`).
    pub fn set_peer_interested(
        &mut self,
        conn: ConnId,
        interested: bool,
    ) -> Result<(), ChokerError> {
        self.peer_mut(conn)?.peer_interested = interested;
        Ok(())
    }

    /// We sent it `interested` or `not interested`.
    pub fn set_am_interested(
        &mut self,
        conn: ConnId,
        now: Instant,
        interested: bool,
    ) -> Result<(), ChokerError> {
        let p = self.peer_mut(conn)?;
        let before = p.wants_blocks();
        p.am_interested = interested;
        if !before && p.wants_blocks() {
            p.snub_clock = now;
        }
        Ok(())
    }

    /// Gives `conn` a regular slot now if one is free (fewer than
    /// [`ChokerConfig::regular_slots`] peers unchoked besides the optimistic one) and it is
    /// interested and choked, as libtorrent's `incoming_interested` does, rather than
    /// letting it wait up to a rechoke interval. Returns whether to send `unchoke`.
    pub fn unchoke_if_free(&mut self, conn: ConnId) -> Result<bool, ChokerError> {
        let optimistic = self.optimistic;
        let regular = self
            .peers
            .iter()
            .filter(|p| !p.am_choking && Some(p.conn) != optimistic)
            .count();
        let free = regular < self.config.regular_slots;
        let p = self.peer_mut(conn)?;
        if !free || !p.peer_interested || !p.am_choking {
            return Ok(false);
        }
        p.am_choking = false;
        Ok(true)
    }

    /// It sent `choke` (`true`) or `unchoke` (`false`) to us.
    pub fn set_peer_choking(
        &mut self,
        conn: ConnId,
        now: Instant,
        choking: bool,
    ) -> Result<(), ChokerError> {
        let p = self.peer_mut(conn)?;
        let before = p.wants_blocks();
        p.peer_choking = choking;
        if !before && p.wants_blocks() {
            p.snub_clock = now;
        }
        Ok(())
    }

    /// We sent it a request while none was outstanding: the snub countdown starts now, so
    /// that a peer we asked nothing of is never counted as silent.
    pub fn on_requested(&mut self, conn: ConnId, now: Instant) -> Result<(), ChokerError> {
        self.peer_mut(conn)?.snub_clock = now;
        Ok(())
    }

    /// We received `bytes` of block data from it; this also ends a snub.
    pub fn on_downloaded(
        &mut self,
        conn: ConnId,
        now: Instant,
        bytes: u32,
    ) -> Result<(), ChokerError> {
        let p = self.peer_mut(conn)?;
        p.down.record(now, bytes);
        p.snub_clock = now;
        Ok(())
    }

    /// We sent it `bytes` of block data.
    pub fn on_uploaded(
        &mut self,
        conn: ConnId,
        now: Instant,
        bytes: u32,
    ) -> Result<(), ChokerError> {
        self.peer_mut(conn)?.up.record(now, bytes);
        Ok(())
    }

    /// Its upload rate to us over the last 20 s, in bytes per second.
    pub fn download_rate(&self, conn: ConnId, now: Instant) -> Option<u64> {
        self.peer(conn).map(|p| p.down.rate(now))
    }

    /// Our upload rate to it over the last 20 s, in bytes per second.
    pub fn upload_rate(&self, conn: ConnId, now: Instant) -> Option<u64> {
        self.peer(conn).map(|p| p.up.rate(now))
    }

    /// Whether it has sent us nothing for [`ChokerConfig::snub_timeout`] while we wanted
    /// blocks from it.
    pub fn is_snubbed(&self, conn: ConnId, now: Instant) -> Option<bool> {
        self.peer(conn)
            .map(|p| p.snubbed(now, self.config.snub_timeout))
    }

    /// Whether we currently unchoke it (as of the last rechoke).
    pub fn is_unchoked(&self, conn: ConnId) -> Option<bool> {
        self.peer(conn).map(|p| !p.am_choking)
    }

    /// The current optimistic unchoke, if any.
    pub fn optimistic(&self) -> Option<ConnId> {
        self.optimistic
    }

    /// When the next rechoke is due: immediately before the first, then every
    /// [`ChokerConfig::rechoke_interval`] after the last.
    pub fn next_rechoke(&self) -> Instant {
        match self.last_rechoke {
            None => Instant::ZERO,
            Some(t) => t + self.config.rechoke_interval,
        }
    }

    /// Recompute who is unchoked and return the changes, chokes first. `seeding` selects
    /// the ranking: upload rate to them (`fastest_upload`) instead of download rate from
    /// them. Work is `O(PEERS log PEERS)` for the sort plus `O(PEERS)` for the rest.
    pub fn rechoke(&mut self, now: Instant, rng: &mut Rng, seeding: bool) -> Decisions<PEERS> {
        let timeout = self.config.snub_timeout;
        // Interested peers, ranked: unsnubbed before snubbed (anti-snubbing), faster first,
        // then older connections first, so that equal peers keep their order between rounds.
        let mut ranked: Vec<(usize, bool, u64), PEERS> = Vec::new();
        for (i, p) in self.peers.iter().enumerate() {
            if p.peer_interested {
                let snubbed = !seeding && p.snubbed(now, timeout);
                let rate = if seeding {
                    p.up.rate(now)
                } else {
                    p.down.rate(now)
                };
                // Cannot fail: at most one entry per peer.
                let _ = ranked.push((i, snubbed, rate));
            }
        }
        ranked.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));

        let mut unchoke = [false; PEERS];
        for &(i, _, _) in ranked.iter().take(self.config.regular_slots) {
            unchoke[i] = true;
        }

        self.pick_optimistic(now, rng, &unchoke);
        if let Some(i) = self.optimistic.and_then(|c| self.find(c)) {
            unchoke[i] = true;
        }

        let mut out: Decisions<PEERS> = Vec::new();
        for want_unchoke in [false, true] {
            for (p, &u) in self.peers.iter_mut().zip(unchoke.iter()) {
                if u == want_unchoke && p.am_choking == u {
                    p.am_choking = !u;
                    let d = if u {
                        Decision::Unchoke
                    } else {
                        Decision::Choke
                    };
                    // Cannot fail: each peer changes at most once.
                    let _ = out.push((p.conn, d));
                }
            }
        }
        self.rounds = self.rounds.wrapping_add(1);
        self.last_rechoke = Some(now);
        out
    }

    /// Keep, rotate or fill the optimistic unchoke. `regular` marks the peers that already
    /// hold a regular slot this round.
    fn pick_optimistic(&mut self, now: Instant, rng: &mut Rng, regular: &[bool; PEERS]) {
        let every = self.config.optimistic_every.max(1);
        let rotate = self.rounds.is_multiple_of(every);
        let current = self.optimistic.and_then(|c| self.find(c));
        let still_valid = current.is_some_and(|i| self.peers[i].peer_interested && !regular[i]);
        if still_valid && !rotate {
            return;
        }
        // Candidates: choked-by-rank interested peers, other than the one rotated out.
        let eligible = |i: usize, p: &Peer| p.peer_interested && !regular[i] && Some(i) != current;
        let weight = |p: &Peer| {
            if now.saturating_since(p.connected_at) < self.config.new_peer_age {
                u64::from(self.config.new_peer_weight.max(1))
            } else {
                1
            }
        };
        let total: u64 = self
            .peers
            .iter()
            .enumerate()
            .filter(|&(i, p)| eligible(i, p))
            .map(|(_, p)| weight(p))
            .sum();
        if total == 0 {
            // Nobody else to rotate to: keep the current one if it still qualifies.
            if !still_valid {
                self.optimistic = None;
            }
            return;
        }
        let mut r = rng.below(total);
        for (i, p) in self.peers.iter().enumerate() {
            if !eligible(i, p) {
                continue;
            }
            let w = weight(p);
            if r < w {
                self.optimistic = Some(p.conn);
                return;
            }
            r -= w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Instant {
        Instant::from_micros(s * 1_000_000)
    }
    fn c(n: u64) -> ConnId {
        ConnId::outbound(n)
    }

    /// `n` peers connected at `at`, all interested in us, choked.
    fn swarm<const P: usize>(config: ChokerConfig, n: u64, at: Instant) -> Choker<P> {
        let mut ch = Choker::new(config);
        for i in 0..n {
            ch.add_peer(c(i), at).unwrap();
            ch.set_peer_interested(c(i), true).unwrap();
        }
        ch
    }

    fn unchoked<const P: usize>(ch: &Choker<P>, n: u64) -> usize {
        (0..n)
            .filter(|&i| ch.is_unchoked(c(i)) == Some(true))
            .count()
    }
    #[test]
    fn an_interested_peer_takes_a_free_regular_slot_at_once() {
        let cfg = ChokerConfig {
            regular_slots: 2,
            ..ChokerConfig::default()
        };
        let mut ch: Choker<4> = Choker::new(cfg);
        for i in 0..4 {
            ch.add_peer(c(i), t(0)).unwrap();
        }
        // Not interested: no slot.
        assert_eq!(ch.unchoke_if_free(c(0)), Ok(false));
        for i in 0..3 {
            ch.set_peer_interested(c(i), true).unwrap();
        }
        assert_eq!(ch.unchoke_if_free(c(0)), Ok(true));
        // Already unchoked: nothing to send.
        assert_eq!(ch.unchoke_if_free(c(0)), Ok(false));
        assert_eq!(ch.unchoke_if_free(c(1)), Ok(true));
        // Both regular slots are taken.
        assert_eq!(ch.unchoke_if_free(c(2)), Ok(false));
        assert_eq!(unchoked(&ch, 4), 2);
        assert_eq!(ch.unchoke_if_free(c(9)), Err(ChokerError::UnknownPeer));
    }

    /// BEP 3: "unchoking the four peers which it has the best download rates from".
    #[test]
    fn bep3_leeching_unchokes_best_downloaders() {
        let cfg = ChokerConfig::default();
        let mut ch: Choker<10> = swarm(cfg, 10, t(0));
        // Peer i uploads (i + 1) KiB/s to us for 20 s.
        for s in 0..20 {
            for i in 0..10 {
                ch.on_downloaded(c(i), t(s), (i as u32 + 1) * 1024).unwrap();
            }
        }
        let mut rng = Rng::new(1);
        ch.rechoke(t(20), &mut rng, false);
        for i in 6..10 {
            assert_eq!(ch.is_unchoked(c(i)), Some(true), "fast peer {i}");
        }
        // Plus exactly one optimistic among the slow ones.
        let opt = ch.optimistic().unwrap();
        assert!((0..6).any(|i| c(i) == opt));
        assert_eq!(unchoked(&ch, 10), 5);
    }

    /// libtorrent's `fastest_upload` seeding choker: rank by our upload rate to them, and
    /// ignore what they send us (a seed downloads nothing).
    #[test]
    fn fastest_upload_seeding_ranks_by_upload_rate() {
        let cfg = ChokerConfig {
            regular_slots: 2,
            ..ChokerConfig::default()
        };
        let mut ch: Choker<6> = swarm(cfg, 6, t(0));
        for s in 0..20 {
            for i in 0..6u64 {
                // Upload fastest to peers 0 and 1; peer 5 uploads most to us, irrelevant now.
                ch.on_uploaded(c(i), t(s), (6 - i as u32) * 1000).unwrap();
                ch.on_downloaded(c(i), t(s), i as u32 * 5000).unwrap();
            }
        }
        let mut rng = Rng::new(2);
        ch.rechoke(t(20), &mut rng, true);
        assert_eq!(ch.is_unchoked(c(0)), Some(true));
        assert_eq!(ch.is_unchoked(c(1)), Some(true));
        assert_eq!(unchoked(&ch, 6), 3);
        // At a bucket boundary the window holds 15 s (seconds 5..20).
        assert_eq!(ch.upload_rate(c(0), t(20)), Some(6 * 1000 * 15 / 20));
        // Leeching with the same numbers ranks the other way round.
        let mut ch2 = ch.clone();
        ch2.rechoke(t(30), &mut rng, false);
        assert_eq!(ch2.is_unchoked(c(5)), Some(true));
        assert_eq!(ch2.is_unchoked(c(4)), Some(true));
    }

    /// BEP 3: four regular unchokes plus one optimistic, whenever that many want them.
    #[test]
    fn bep3_exactly_regular_slots_plus_one_unchoked() {
        for slots in [0usize, 1, 4, 7] {
            let cfg = ChokerConfig {
                regular_slots: slots,
                ..ChokerConfig::default()
            };
            let mut ch: Choker<16> = swarm(cfg, 12, t(0));
            let mut rng = Rng::new(3);
            for round in 0..12 {
                let now = t(round * 10);
                assert!(ch.next_rechoke() <= now);
                ch.rechoke(now, &mut rng, round % 2 == 0);
                assert_eq!(unchoked(&ch, 12), slots + 1, "slots {slots} round {round}");
            }
        }
        // Too few interested peers: everyone interested is unchoked, nobody else.
        let mut ch: Choker<16> = swarm(ChokerConfig::default(), 3, t(0));
        ch.add_peer(c(99), t(0)).unwrap();
        ch.rechoke(t(0), &mut Rng::new(3), false);
        assert_eq!(unchoked(&ch, 3), 3);
        assert_eq!(ch.is_unchoked(c(99)), Some(false));
    }

    /// BEP 3: the optimistic unchoke rotates every 30 s, i.e. every third 10 s rechoke, and
    /// stays put in between.
    #[test]
    fn bep3_optimistic_rotates_every_30s() {
        let mut ch: Choker<12> = swarm(ChokerConfig::default(), 12, t(0));
        let mut rng = Rng::new(4);
        let mut prev = None;
        let mut now = t(100);
        for period in 0..10 {
            ch.rechoke(now, &mut rng, false);
            let opt = ch.optimistic();
            assert!(opt.is_some());
            assert_ne!(opt, prev, "rotated at period {period}");
            for _ in 0..2 {
                assert_eq!(ch.next_rechoke(), now + Duration::from_secs(10));
                now = ch.next_rechoke();
                ch.rechoke(now, &mut rng, false);
                assert_eq!(ch.optimistic(), opt, "kept between rotations");
            }
            prev = opt;
            now = ch.next_rechoke();
        }
    }

    /// BEP 3: newly connected peers are three times as likely to become the optimistic
    /// unchoke. One new peer against three old ones: it should win about 3/6 of the draws and
    /// each old one about 1/6.
    #[test]
    fn bep3_optimistic_favours_new_peers_three_to_one() {
        let cfg = ChokerConfig {
            regular_slots: 0,
            ..ChokerConfig::default()
        };
        let mut rng = Rng::new(0x5eed);
        let trials = 6000;
        let mut new_wins = 0u32;
        let mut old_wins = 0u32;
        for _ in 0..trials {
            let mut ch: Choker<4> = swarm(cfg, 3, t(0));
            ch.add_peer(c(3), t(95)).unwrap();
            ch.set_peer_interested(c(3), true).unwrap();
            ch.rechoke(t(100), &mut rng, false);
            if ch.optimistic() == Some(c(3)) {
                new_wins += 1;
            } else {
                old_wins += 1;
            }
        }
        // Per-peer ratio: new / (old / 3), expected 3.
        let ratio = f64::from(new_wins) * 3.0 / f64::from(old_wins);
        assert!((2.7..3.3).contains(&ratio), "ratio {ratio}, new {new_wins}");
        // After 30 s the same peer is no longer new: the draw is even.
        let mut new_wins = 0u32;
        for _ in 0..trials {
            let mut ch: Choker<4> = swarm(cfg, 3, t(0));
            ch.add_peer(c(3), t(70)).unwrap();
            ch.set_peer_interested(c(3), true).unwrap();
            ch.rechoke(t(100), &mut rng, false);
            new_wins += u32::from(ch.optimistic() == Some(c(3)));
        }
        let share = f64::from(new_wins) / f64::from(trials);
        assert!((0.22..0.28).contains(&share), "share {share}");
    }

    /// Anti-snubbing (mainline, libtorrent): no block for the snub timeout while we want
    /// blocks and it unchokes us makes a peer snubbed, and a snubbed peer loses its regular
    /// slot to any unsnubbed interested peer, even a slower one.
    #[test]
    fn anti_snubbing_snubbed_peer_loses_its_slot() {
        // The default 60 s outlasts the 20 s rate window, so a snubbed peer's rate is always
        // zero by then; a 10 s timeout shows that snubbing, not the rate, costs the slot.
        let cfg = ChokerConfig {
            regular_slots: 1,
            optimistic_every: 1000,
            snub_timeout: Duration::from_secs(10),
            ..ChokerConfig::default()
        };
        let mut ch: Choker<4> = swarm(cfg, 2, t(0));
        let mut rng = Rng::new(5);
        // Peer 0 is our best source; we want more from it and it unchokes us.
        ch.set_am_interested(c(0), t(0), true).unwrap();
        ch.set_peer_choking(c(0), t(0), false).unwrap();
        ch.on_downloaded(c(0), t(1), 1_000_000).unwrap();
        ch.rechoke(t(2), &mut rng, false);
        assert_eq!(ch.is_unchoked(c(0)), Some(true));
        assert_eq!(ch.optimistic(), Some(c(1)), "the only other candidate");
        // A slower challenger arrives.
        ch.add_peer(c(2), t(3)).unwrap();
        ch.set_peer_interested(c(2), true).unwrap();
        ch.on_downloaded(c(2), t(4), 100).unwrap();
        assert_eq!(ch.is_snubbed(c(0), t(10)), Some(false));
        assert_eq!(ch.is_snubbed(c(0), t(11)), Some(true));
        // Control: not snubbed (it chokes us now), it keeps the slot on its rate.
        let mut control = ch.clone();
        control.set_peer_choking(c(0), t(5), true).unwrap();
        assert_eq!(control.is_snubbed(c(0), t(12)), Some(false));
        assert!(control.rechoke(t(12), &mut rng.clone(), false).is_empty());
        // Snubbed: the slot goes to the slower peer; the optimistic stays.
        let out = ch.rechoke(t(12), &mut rng, false);
        assert_eq!(
            &out[..],
            &[(c(0), Decision::Choke), (c(2), Decision::Unchoke)][..]
        );
        assert_eq!(ch.optimistic(), Some(c(1)));
        // A block ends the snub.
        ch.on_downloaded(c(0), t(13), 1).unwrap();
        assert_eq!(ch.is_snubbed(c(0), t(22)), Some(false));
        assert_eq!(ch.is_snubbed(c(0), t(23)), Some(true));
        // A snubbed peer still gets a slot nobody else wants.
        let mut ch: Choker<3> = swarm(ChokerConfig::default(), 1, t(0));
        ch.set_am_interested(c(0), t(0), true).unwrap();
        ch.set_peer_choking(c(0), t(0), false).unwrap();
        ch.rechoke(t(100), &mut rng, false);
        assert_eq!(ch.is_snubbed(c(0), t(100)), Some(true));
        assert_eq!(ch.is_unchoked(c(0)), Some(true));
    }

    /// Only changes go out: a second rechoke with nothing new says nothing, chokes come
    /// before unchokes, and adding a peer (born choked, BEP 3) says nothing.
    #[test]
    fn only_changes_are_reported() {
        let cfg = ChokerConfig {
            regular_slots: 2,
            optimistic_every: 1000,
            ..ChokerConfig::default()
        };
        let mut ch: Choker<8> = swarm(cfg, 3, t(0));
        let mut rng = Rng::new(6);
        for i in 0..3 {
            ch.on_downloaded(c(i), t(1), 1000 * (i as u32 + 1)).unwrap();
        }
        let out = ch.rechoke(t(2), &mut rng, false);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|&(_, d)| d == Decision::Unchoke));
        assert!(ch.rechoke(t(12), &mut rng, false).is_empty());
        // Two fast newcomers take the regular slots from peers 1 and 2; the optimistic
        // (peer 0, the only one left) stays.
        for i in 3..5 {
            ch.add_peer(c(i), t(13)).unwrap();
            ch.set_peer_interested(c(i), true).unwrap();
            ch.on_downloaded(c(i), t(13), 1_000_000).unwrap();
        }
        let out = ch.rechoke(t(22), &mut rng, false);
        assert_eq!(ch.optimistic(), Some(c(0)));
        let expect = [
            (c(1), Decision::Choke),
            (c(2), Decision::Choke),
            (c(3), Decision::Unchoke),
            (c(4), Decision::Unchoke),
        ];
        assert_eq!(&out[..], &expect[..]);
    }

    /// BEP 3 ranks interested peers only: an uninterested peer, however fast, gets no
    /// regular slot (nor the optimistic one), and losing interest costs the slot.
    #[test]
    fn uninterested_peers_not_unchoked() {
        let mut ch: Choker<8> = swarm(ChokerConfig::default(), 2, t(0));
        ch.add_peer(c(7), t(0)).unwrap();
        ch.on_downloaded(c(7), t(1), u32::MAX).unwrap();
        let mut rng = Rng::new(7);
        ch.rechoke(t(2), &mut rng, false);
        assert_eq!(ch.is_unchoked(c(7)), Some(false));
        assert_eq!(unchoked(&ch, 2), 2);
        ch.set_peer_interested(c(0), false).unwrap();
        let out = ch.rechoke(t(12), &mut rng, false);
        assert_eq!(&out[..], &[(c(0), Decision::Choke)][..]);
    }

    /// Unknown ids, duplicates and a full table are typed errors, never panics; removing
    /// the optimistic peer frees its slot for the next rechoke.
    #[test]
    fn bad_ids_are_errors() {
        let mut ch: Choker<2> = Choker::default();
        assert_eq!(
            ch.set_peer_interested(c(1), true),
            Err(ChokerError::UnknownPeer)
        );
        assert_eq!(
            ch.on_downloaded(c(1), t(0), 5),
            Err(ChokerError::UnknownPeer)
        );
        assert_eq!(ch.on_uploaded(c(1), t(0), 5), Err(ChokerError::UnknownPeer));
        assert_eq!(
            ch.set_am_interested(c(1), t(0), true),
            Err(ChokerError::UnknownPeer)
        );
        assert_eq!(
            ch.set_peer_choking(c(1), t(0), true),
            Err(ChokerError::UnknownPeer)
        );
        assert_eq!(ch.remove_peer(c(1)), Err(ChokerError::UnknownPeer));
        assert_eq!(ch.is_unchoked(c(1)), None);
        assert_eq!(ch.download_rate(c(1), t(0)), None);
        ch.add_peer(c(1), t(0)).unwrap();
        assert_eq!(ch.add_peer(c(1), t(0)), Err(ChokerError::AlreadyAdded));
        ch.add_peer(c(2), t(0)).unwrap();
        assert_eq!(ch.add_peer(c(3), t(0)), Err(ChokerError::Full));
        ch.set_peer_interested(c(1), true).unwrap();
        let mut rng = Rng::new(8);
        ch.rechoke(t(0), &mut rng, false);
        assert_eq!(ch.optimistic(), None, "peer 1 holds a regular slot");
        ch.remove_peer(c(1)).unwrap();
        assert_eq!(ch.len(), 1);
        assert!(ch.rechoke(t(10), &mut rng, false).is_empty());
        let mut shown = heapless::String::<32>::new();
        core::fmt::Write::write_fmt(&mut shown, format_args!("{}", ChokerError::Full)).unwrap();
        assert_eq!(shown.as_str(), "choker full");
    }

    /// The 20 s window forgets old bytes, survives a clock stepping back and saturates.
    #[test]
    fn rate_window_is_rolling_20s() {
        let mut w = RateWindow::default();
        w.record(t(0), 2000);
        w.record(t(7), 2000);
        assert_eq!(w.total(t(19)), 4000);
        assert_eq!(w.total(t(20)), 2000, "bucket 0..5 s fell out");
        assert_eq!(w.total(t(25)), 0);
        w.record(t(3), 100);
        assert_eq!(w.total(t(7)), 4100, "a step back counts as now");
        w.record(t(1000), u32::MAX);
        w.record(t(1001), u32::MAX);
        assert_eq!(w.total(t(1001)), u64::from(u32::MAX));
        assert_eq!(w.rate(t(1001)), u64::from(u32::MAX) / 20);
        // No panic on extreme instants.
        w.record(Instant::from_micros(u64::MAX), 1);
        assert_eq!(w.total(Instant::ZERO), 1);
    }

    /// The RAM figure in the module documentation.
    #[test]
    fn ram_per_peer() {
        assert_eq!(core::mem::size_of::<Peer>(), 80);
        let base = core::mem::size_of::<Choker<0>>();
        assert_eq!(core::mem::size_of::<Choker<10>>(), base + 10 * 80);
        assert_eq!(base, 88, "base {base}");
    }

    /// Same seed, same inputs, same decisions.
    #[test]
    fn deterministic_with_seed() {
        let run = |seed| {
            let mut ch: Choker<16> = swarm(ChokerConfig::default(), 16, t(0));
            let mut rng = Rng::new(seed);
            let mut log: Vec<(ConnId, Decision), 256> = Vec::new();
            for r in 0..12u64 {
                for i in 0..16 {
                    ch.on_downloaded(c(i), t(r * 10), ((i * 7 + r * 13) % 17) as u32)
                        .unwrap();
                }
                for d in ch.rechoke(t(r * 10 + 1), &mut rng, false) {
                    let _ = log.push(d);
                }
            }
            log
        };
        assert_eq!(run(9), run(9));
    }
}
