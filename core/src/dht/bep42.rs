//! BEP 42, "DHT Security extension": a node id's first 21 bits are tied to the node's
//! external IP through CRC-32C, so that a node cannot pick where it sits in the id space.
//!
//! `crc32c((ip & mask) | (r << 29))` for IPv4 (mask `03 0f 3f ff`) or over the first eight
//! octets for IPv6 (mask `01 03 07 0f 1f 3f 7f ff`, `r` in the top bits of the first octet);
//! the id's first 21 bits are the CRC's, its last byte holds `r`. Local addresses are
//! exempt.

use crate::{Id, Rng};
use core::net::IpAddr;
use crc::{CRC_32_ISCSI, Crc};

const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);
const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];

fn crc_of(ip: IpAddr, r: u8) -> u32 {
    let r = r & 7;
    match ip {
        IpAddr::V4(ip) => {
            let mut b = ip.octets();
            for (o, m) in b.iter_mut().zip(V4_MASK) {
                *o &= m;
            }
            b[0] |= r << 5;
            CRC32C.checksum(&b)
        }
        IpAddr::V6(ip) => {
            let mut b = [0; 8];
            b.copy_from_slice(&ip.octets()[..8]);
            for (o, m) in b.iter_mut().zip(V6_MASK) {
                *o &= m;
            }
            b[0] |= r << 5;
            CRC32C.checksum(&b)
        }
    }
}

/// Addresses BEP 42 exempts: they cannot be anyone's external address.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_private() || ip.is_loopback() || ip.is_link_local(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.is_unique_local() || ip.is_unicast_link_local(),
    }
}

/// A node id for `ip`: the CRC's 21 bits, then random bits, then `r` (0..8, from `rng`)
/// in the last byte.
pub fn generate(ip: IpAddr, rng: &mut Rng) -> Id {
    let mut id = Id::ZERO;
    rng.fill(&mut id.0);
    let r = id.0[19] & 7;
    id.0[19] = (id.0[19] & 0xf8) | r;
    stamp(&mut id, ip, r);
    id
}

/// Writes `ip`'s 21 bits into `id` for the random value `r`; the rest of `id` is kept.
fn stamp(id: &mut Id, ip: IpAddr, r: u8) {
    let crc = crc_of(ip, r);
    id.0[0] = (crc >> 24) as u8;
    id.0[1] = (crc >> 16) as u8;
    id.0[2] = ((crc >> 8) as u8 & 0xf8) | (id.0[2] & 0x07);
}

/// Whether `id` is a valid id for a node at `ip` (always true for local addresses).
pub fn verify(id: Id, ip: IpAddr) -> bool {
    if is_local(ip) {
        return true;
    }
    let crc = crc_of(ip, id.0[19]);
    id.0[0] == (crc >> 24) as u8
        && id.0[1] == (crc >> 16) as u8
        && id.0[2] & 0xf8 == (crc >> 8) as u8 & 0xf8
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// BEP 42's table: IP, rand (the last byte), and the id's first three bytes; the
    /// third byte's low three bits are random and come from the example ids.
    const VECTORS: [([u8; 4], u8, [u8; 3]); 5] = [
        ([124, 31, 75, 21], 0x01, [0x5f, 0xbf, 0xbf]),
        ([21, 75, 31, 124], 0x56, [0x5a, 0x3c, 0xe9]),
        ([65, 23, 51, 170], 0x16, [0xa5, 0xd4, 0x32]),
        ([84, 124, 73, 14], 0x41, [0x1b, 0x03, 0x21]),
        ([43, 213, 53, 83], 0x5a, [0xe5, 0x6f, 0x6c]),
    ];

    #[test]
    fn bep42_test_vectors_verify_and_regenerate() {
        for (ip, rand, prefix) in VECTORS {
            let ip = IpAddr::V4(Ipv4Addr::from(ip));
            let mut id = Id::ZERO;
            id.0[..3].copy_from_slice(&prefix);
            id.0[19] = rand;
            assert!(verify(id, ip), "{ip}");
            let mut fresh = Id([0xaa; 20]);
            fresh.0[19] = rand;
            fresh.0[2] = prefix[2] & 7;
            stamp(&mut fresh, ip, rand);
            assert_eq!(&fresh.0[..3], &prefix, "{ip}");
            // One flipped bit among the first 21 fails verification.
            id.0[2] ^= 0x08;
            assert!(!verify(id, ip));
        }
    }

    #[test]
    fn generated_ids_verify_and_local_addresses_are_exempt() {
        let mut rng = Rng::new(7);
        for i in 0..100u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(81, i, 7, 200));
            let id = generate(ip, &mut rng);
            assert!(verify(id, ip));
            assert!(!verify(id, IpAddr::V4(Ipv4Addr::new(82, i, 7, 200))));
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(verify(generate(v6, &mut rng), v6));
        assert!(verify(Id::ZERO, IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(verify(Id::ZERO, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    }
}
