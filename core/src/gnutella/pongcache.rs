//! Pong caching and ping multiplexing: the ping/pong scheme of Rohrs and Falco (LimeWire,
//! BearShare) that gtk-gnutella ships as `doc/gnutella/ping-pong`.
//!
//! A servent does not flood the pings it receives. It answers at once from a cache of recent
//! pongs (at most N of them, spread over hop counts, none learnt from the asker), refreshes
//! the cache by pinging its own neighbours every T seconds, and *multiplexes*: a pong that
//! arrives later is passed on to every connection that still needs pongs of that hop count,
//! under the GUID of that connection's last ping. Incoming pings are throttled to one per T
//! per connection. So a ping is rarely a broadcast, and ping/pong traffic is bounded by about
//! one ping and N pongs per connection per T.

use super::routing::Guid;
use crate::{ConnId, Duration, Instant, PeerAddr};
use heapless::Vec;

/// M: the largest TTL, and the largest hop count cached (the scheme's suggested 7).
pub const MAX_TTL: u8 = 7;

/// A pong worth passing on: a host that accepted connections recently.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CachedPong {
    /// Where it listens.
    pub addr: PeerAddr,
    /// Files it shares.
    pub files: u32,
    /// Kilobytes it shares.
    pub kbytes: u32,
    /// Hops the pong travelled to reach us (1 = a neighbour).
    pub hops: u8,
    /// The connection it came from: never sent back down it.
    pub from: ConnId,
}

/// The scheme's constants.
#[derive(Clone, Copy, Debug)]
pub struct PongConfig {
    /// T: how long cached pongs live, the refresh period and the ping throttle (3 s).
    pub expiry: Duration,
    /// N: the most pongs sent for one ping (10).
    pub per_ping: u8,
}

impl Default for PongConfig {
    fn default() -> Self {
        PongConfig {
            expiry: Duration::from_secs(3),
            per_ping: 10,
        }
    }
}

/// The pong cache: `P` pongs at most.
pub struct PongCache<const P: usize> {
    pongs: Vec<CachedPong, P>,
    next_expire: Instant,
    config: PongConfig,
}

/// What to do with an incoming ping, per the scheme.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PingVerdict {
    /// Over the per-connection rate: drop it.
    Throttled,
    /// Answer it from the cache; `refresh` says the cache expired and the servent should
    /// ping all its neighbours (TTL M, a new GUID) to refill it.
    Answer {
        /// Ping every neighbour now.
        refresh: bool,
    },
}

/// Per-connection state of the scheme: when its next ping is accepted, the GUID of its last
/// ping, and how many pongs of each hop count it still needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Demux {
    accept_at: Instant,
    guid: Option<Guid>,
    needed: [u8; MAX_TTL as usize + 1],
}

impl<const P: usize> PongCache<P> {
    /// An empty cache (its first ping triggers a refresh).
    pub fn new(config: PongConfig) -> Self {
        PongCache {
            pongs: Vec::new(),
            next_expire: Instant::ZERO,
            config,
        }
    }

    /// Pongs cached now.
    pub fn len(&self) -> usize {
        self.pongs.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.pongs.is_empty()
    }

    /// A ping with `guid` and `ttl` arrived on a connection whose state is `demux`. Throttles,
    /// expires the cache when due, and records what the connection needs: `N / ttl` pongs of
    /// each hop count up to its TTL.
    pub fn on_ping(&mut self, now: Instant, demux: &mut Demux, guid: Guid, ttl: u8) -> PingVerdict {
        if now < demux.accept_at {
            return PingVerdict::Throttled;
        }
        demux.accept_at = now + self.config.expiry;
        let refresh = now >= self.next_expire;
        if refresh {
            self.pongs.clear();
            self.next_expire = now + self.config.expiry;
        }
        let ttl = ttl.clamp(1, MAX_TTL);
        demux.guid = Some(guid);
        let share = (self.config.per_ping / ttl).max(1);
        for (hops, need) in demux.needed.iter_mut().enumerate() {
            *need = if (1..=ttl as usize).contains(&hops) {
                share
            } else {
                0
            };
        }
        PingVerdict::Answer { refresh }
    }

    /// The cached pongs to send now to the connection `to` (at most `out`'s capacity), taking
    /// them off what it still needs; never pongs that came from `to`.
    pub fn answer<const O: usize>(
        &self,
        to: ConnId,
        demux: &mut Demux,
        out: &mut Vec<CachedPong, O>,
    ) {
        out.clear();
        for p in &self.pongs {
            let need = &mut demux.needed[(p.hops as usize).min(MAX_TTL as usize)];
            if p.from != to && *need > 0 && out.push(*p).is_ok() {
                *need -= 1;
            }
        }
    }

    /// A pong arrived: cache it (the oldest makes room when full).
    pub fn on_pong(&mut self, pong: CachedPong) {
        if self.pongs.iter().any(|p| p.addr == pong.addr) {
            return;
        }
        if self.pongs.is_full() {
            self.pongs.remove(0);
        }
        let _ = self.pongs.push(pong);
    }
}

impl Demux {
    /// Whether this connection still needs a pong with `hops`, and under which GUID to send
    /// it (its last ping's); counts the pong as sent.
    pub fn take(&mut self, hops: u8) -> Option<Guid> {
        let need = self.needed.get_mut(hops as usize)?;
        if *need == 0 {
            return None;
        }
        *need -= 1;
        self.guid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ConnId = ConnId::inbound(1);
    const B: ConnId = ConnId::inbound(2);

    fn pong(i: u8, hops: u8, from: ConnId) -> CachedPong {
        CachedPong {
            addr: PeerAddr::v4([10, 0, 0, i], 6346),
            files: i as u32,
            kbytes: 0,
            hops,
            from,
        }
    }

    #[test]
    fn pings_are_throttled_to_one_per_t_per_connection() {
        let mut cache: PongCache<32> = PongCache::new(PongConfig::default());
        let mut d = Demux::default();
        let t0 = Instant::from_micros(1);
        assert_eq!(
            cache.on_ping(t0, &mut d, [1; 16], 7),
            PingVerdict::Answer { refresh: true }
        );
        assert_eq!(
            cache.on_ping(t0, &mut d, [2; 16], 7),
            PingVerdict::Throttled
        );
        let later = t0 + Duration::from_secs(3);
        assert_eq!(
            cache.on_ping(later, &mut d, [3; 16], 7),
            PingVerdict::Answer { refresh: true }
        );
    }

    #[test]
    fn answers_spread_n_over_hop_counts_and_skip_the_askers_own_pongs() {
        let mut cache: PongCache<64> = PongCache::new(PongConfig::default());
        let mut d = Demux::default();
        cache.on_ping(Instant::ZERO, &mut d, [1; 16], 2);
        for i in 0..20 {
            cache.on_pong(pong(i, 1 + i % 3, if i < 4 { A } else { B }));
        }
        let mut out: Vec<CachedPong, 16> = Vec::new();
        cache.answer(A, &mut d, &mut out);
        // TTL 2: N / 2 = 5 pongs of hops 1 and 5 of hops 2, none of hops 3, none from A.
        assert_eq!(out.iter().filter(|p| p.hops == 1).count(), 5);
        assert_eq!(out.iter().filter(|p| p.hops == 2).count(), 5);
        assert!(out.iter().all(|p| p.hops <= 2 && p.from != A));
        assert_eq!(d.take(1), None, "its needs are met");
    }

    #[test]
    fn later_pongs_are_demultiplexed_under_the_last_pings_guid() {
        let mut cache: PongCache<8> = PongCache::new(PongConfig::default());
        let mut d = Demux::default();
        cache.on_ping(Instant::ZERO, &mut d, [9; 16], 1);
        assert_eq!(d.take(2), None, "TTL 1 asked for neighbours only");
        for _ in 0..10 {
            assert_eq!(d.take(1), Some([9; 16]));
        }
        assert_eq!(d.take(1), None, "N pongs at most");
    }

    #[test]
    fn the_cache_expires_every_t_and_is_bounded() {
        let mut cache: PongCache<4> = PongCache::new(PongConfig::default());
        let mut d = Demux::default();
        cache.on_ping(Instant::ZERO, &mut d, [1; 16], 7);
        for i in 0..6 {
            cache.on_pong(pong(i, 1, B));
        }
        assert_eq!(cache.len(), 4);
        cache.on_pong(pong(5, 1, B));
        assert_eq!(cache.len(), 4, "a known address is not cached twice");
        let mut other = Demux::default();
        let verdict = cache.on_ping(Instant::from_micros(3_000_000), &mut other, [2; 16], 7);
        assert_eq!(verdict, PingVerdict::Answer { refresh: true });
        assert!(cache.is_empty(), "expired after T");
    }
}
