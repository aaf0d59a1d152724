//! What a DHT node keeps for others: announce tokens, announced peers (BEP 5) and immutable
//! items (BEP 44). Fixed capacities; the oldest entry makes room when full.

use super::config::MAX_ITEM;
use crate::bencode::{BufferFull, Encoder};
use crate::{Duration, Id, Instant, PeerAddr, Rng};
use core::net::IpAddr;
use heapless::Vec;
use sha1::{Digest, Sha1};

/// Bytes in the tokens this node hands out.
pub const TOKEN_LEN: usize = 8;

/// BEP 5's write tokens: SHA-1 of a secret and the requester's IP, so that only a node that
/// received a token at its address can announce from it. The secret rotates every
/// `token_rotation` and the previous one is still accepted.
pub struct Tokens {
    secret: [u8; 8],
    previous: [u8; 8],
    rotated: Instant,
}

impl Tokens {
    /// Fresh secrets.
    pub fn new(rng: &mut Rng, now: Instant) -> Self {
        let mut t = Tokens {
            secret: [0; 8],
            previous: [0; 8],
            rotated: now,
        };
        rng.fill(&mut t.secret);
        rng.fill(&mut t.previous);
        t
    }

    /// Rotates the secret if `every` has passed; after two periods or more (a driver that
    /// did not call for a while) the previous secret is replaced too, so that no token
    /// outlives two periods.
    pub fn rotate(&mut self, now: Instant, every: Duration, rng: &mut Rng) {
        let elapsed = now.saturating_since(self.rotated);
        if elapsed >= every {
            self.previous = self.secret;
            rng.fill(&mut self.secret);
            if elapsed >= every + every {
                rng.fill(&mut self.previous);
            }
            self.rotated = now;
        }
    }

    fn token_with(secret: &[u8; 8], ip: IpAddr) -> [u8; TOKEN_LEN] {
        let mut h = Sha1::new();
        h.update(secret);
        match ip {
            IpAddr::V4(ip) => h.update(ip.octets()),
            IpAddr::V6(ip) => h.update(ip.octets()),
        }
        let mut t = [0; TOKEN_LEN];
        t.copy_from_slice(&h.finalize()[..TOKEN_LEN]);
        t
    }

    /// The token for a requester at `ip`.
    pub fn token(&self, ip: IpAddr) -> [u8; TOKEN_LEN] {
        Self::token_with(&self.secret, ip)
    }

    /// Whether `token` was handed to `ip` under the current or the previous secret.
    pub fn valid(&self, token: &[u8], ip: IpAddr) -> bool {
        token == Self::token_with(&self.secret, ip) || token == Self::token_with(&self.previous, ip)
    }
}

#[derive(Clone, Copy, Debug)]
struct PeerEntry {
    info_hash: Id,
    addr: PeerAddr,
    at: Instant,
}

/// Peers announced to this node, `P` in all.
pub struct PeerStore<const P: usize> {
    entries: Vec<PeerEntry, P>,
}

impl<const P: usize> Default for PeerStore<P> {
    fn default() -> Self {
        PeerStore {
            entries: Vec::new(),
        }
    }
}

impl<const P: usize> PeerStore<P> {
    /// Stores (or refreshes) `addr` as a peer of `info_hash`. At `per_torrent` peers for
    /// one torrent, or when full, the oldest (of that torrent, or of all) makes room.
    pub fn announce(&mut self, now: Instant, info_hash: Id, addr: PeerAddr, per_torrent: usize) {
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.info_hash == info_hash && e.addr == addr)
        {
            e.at = now;
            return;
        }
        let same = self
            .entries
            .iter()
            .filter(|e| e.info_hash == info_hash)
            .count();
        let oldest = |only_this: bool| {
            (0..self.entries.len())
                .filter(|&i| !only_this || self.entries[i].info_hash == info_hash)
                .min_by_key(|&i| self.entries[i].at)
        };
        let evict = if same >= per_torrent.max(1) {
            oldest(true)
        } else if self.entries.is_full() {
            oldest(false)
        } else {
            None
        };
        if let Some(i) = evict {
            self.entries.swap_remove(i);
        }
        let _ = self.entries.push(PeerEntry {
            info_hash,
            addr,
            at: now,
        });
    }

    /// The peers of `info_hash`, at most `out`'s capacity (a random subset when there are
    /// more, so that every peer gets handed out).
    pub fn peers<const C: usize>(&self, info_hash: Id, rng: &mut Rng, out: &mut Vec<PeerAddr, C>) {
        out.clear();
        let mut seen = 0u64;
        for e in self.entries.iter().filter(|e| e.info_hash == info_hash) {
            seen += 1;
            if out.push(e.addr).is_err() {
                // Reservoir sampling keeps the choice uniform.
                let j = rng.below(seen) as usize;
                if j < C {
                    out[j] = e.addr;
                }
            }
        }
    }

    /// Whether any peer of `info_hash` is stored.
    pub fn has(&self, info_hash: Id) -> bool {
        self.entries.iter().any(|e| e.info_hash == info_hash)
    }

    /// Drops peers older than `lifetime`.
    pub fn expire(&mut self, now: Instant, lifetime: Duration) {
        self.entries
            .retain(|e| now.saturating_since(e.at) < lifetime);
    }

    /// Peers stored, all torrents together.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A BEP 44 immutable item: `v` exactly as bencoded, stored under SHA-1 of those bytes.
#[derive(Clone, Debug)]
pub struct Item {
    /// SHA-1 of `value`.
    pub target: Id,
    /// The bencoded value.
    pub value: Vec<u8, MAX_ITEM>,
    at: Instant,
}

/// BEP 44 immutable items stored at this node, `I` in all.
pub struct ItemStore<const I: usize> {
    items: Vec<Item, I>,
}

impl<const I: usize> Default for ItemStore<I> {
    fn default() -> Self {
        ItemStore { items: Vec::new() }
    }
}

/// The BEP 44 target of an immutable item: SHA-1 of its bencoded value.
pub fn item_target(value: &[u8]) -> Id {
    let mut id = Id::ZERO;
    id.0.copy_from_slice(&Sha1::digest(value));
    id
}

/// A byte string as a BEP 44 item: `v` bencoded as a string (`<len>:<bytes>`), written into
/// `out`. An item must fit [`MAX_ITEM`] bytes: with `out` that size, `BufferFull` means the
/// value is too large to be an item.
pub fn string_item<'b>(value: &[u8], out: &'b mut [u8]) -> Result<&'b [u8], BufferFull> {
    let mut e = Encoder::new(out);
    e.bytes(value)?;
    e.finish()
}

impl<const I: usize> ItemStore<I> {
    /// Stores `value` (bencoded, at most [`MAX_ITEM`] bytes) and returns its target; the
    /// oldest item makes room when full. `None` if the value is too large or `I` is 0.
    pub fn put(&mut self, now: Instant, value: &[u8]) -> Option<Id> {
        let target = item_target(value);
        if let Some(item) = self.items.iter_mut().find(|i| i.target == target) {
            item.at = now;
            return Some(target);
        }
        let value = Vec::from_slice(value).ok()?;
        if self.items.is_full() {
            let oldest = (0..self.items.len()).min_by_key(|&i| self.items[i].at)?;
            self.items.swap_remove(oldest);
        }
        self.items
            .push(Item {
                target,
                value,
                at: now,
            })
            .ok()?;
        Some(target)
    }

    /// The value stored under `target`.
    pub fn get(&self, target: Id) -> Option<&[u8]> {
        self.items
            .iter()
            .find(|i| i.target == target)
            .map(|i| i.value.as_slice())
    }

    /// Drops items older than `lifetime`.
    pub fn expire(&mut self, now: Instant, lifetime: Duration) {
        self.items.retain(|i| now.saturating_since(i.at) < lifetime);
    }

    /// Items stored.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn bep5_tokens_are_bound_to_the_ip_and_survive_one_rotation() {
        let mut rng = Rng::new(1);
        let every = Duration::from_secs(300);
        let mut t = Tokens::new(&mut rng, Instant::ZERO);
        let token = t.token(ip(1));
        assert!(t.valid(&token, ip(1)));
        assert!(!t.valid(&token, ip(2)));
        assert!(!t.valid(&token[..4], ip(1)));
        t.rotate(Instant::ZERO + every, every, &mut rng);
        assert!(t.valid(&token, ip(1)), "previous secret still accepted");
        t.rotate(Instant::ZERO + every + every, every, &mut rng);
        assert!(!t.valid(&token, ip(1)), "two rotations later it expired");
        // A driver that did not call for an hour: one late rotation expires everything.
        let token = t.token(ip(1));
        t.rotate(Instant::ZERO + Duration::from_secs(3600), every, &mut rng);
        assert!(!t.valid(&token, ip(1)));
    }

    #[test]
    fn peer_store_limits_per_torrent_and_in_all_and_expires() {
        let mut rng = Rng::new(2);
        let mut s: PeerStore<8> = PeerStore::default();
        let (a, b) = (Id([1; 20]), Id([2; 20]));
        for p in 0..5u16 {
            s.announce(
                Instant::from_micros(p as u64),
                a,
                PeerAddr::v4([10, 0, 0, 1], p),
                3,
            );
        }
        let mut out: Vec<PeerAddr, 50> = Vec::new();
        s.peers(a, &mut rng, &mut out);
        assert_eq!(out.len(), 3);
        assert!(
            !out.contains(&PeerAddr::v4([10, 0, 0, 1], 0)),
            "oldest went first"
        );
        for p in 0..8u16 {
            s.announce(
                Instant::from_micros(10 + p as u64),
                b,
                PeerAddr::v4([10, 0, 0, 2], p),
                100,
            );
        }
        assert_eq!(s.len(), 8);
        s.expire(Instant::from_micros(17), Duration::from_micros(3));
        s.peers(b, &mut rng, &mut out);
        assert_eq!(out.len(), 3);
        assert!(!s.has(a));
    }

    #[test]
    fn bep44_items_are_stored_under_the_sha1_of_their_bencoded_value() {
        let mut buf = [0; MAX_ITEM];
        assert_eq!(
            string_item(b"Hello World!", &mut buf),
            Ok(&b"12:Hello World!"[..])
        );
        assert_eq!(
            string_item(&[b'x'; 996], &mut buf).map(|v| v.len()),
            Ok(MAX_ITEM)
        );
        assert_eq!(string_item(&[b'x'; 997], &mut buf), Err(BufferFull));
        let mut s: ItemStore<2> = ItemStore::default();
        // BEP 44's example: the target of "12:Hello World!".
        let target = s.put(Instant::ZERO, b"12:Hello World!").unwrap();
        let mut hex = heapless::String::<40>::new();
        core::fmt::write(&mut hex, format_args!("{target:x}")).unwrap();
        assert_eq!(hex, "e5f96f6f38320f0f33959cb4d3d656452117aadb");
        assert_eq!(s.get(target), Some(&b"12:Hello World!"[..]));
        assert!(s.put(Instant::ZERO, &[b'x'; MAX_ITEM + 1]).is_none());
        s.put(Instant::from_micros(1), b"1:a").unwrap();
        s.put(Instant::from_micros(2), b"1:b").unwrap();
        assert_eq!(s.get(target), None, "oldest evicted when full");
        s.expire(Instant::from_micros(10), Duration::from_micros(9));
        assert_eq!(s.len(), 1);
    }
}
