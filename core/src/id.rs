//! 160-bit identifiers and the two geometries built on them, in one place:
//! the ring of Chord and Freenet (clockwise distance, intervals modulo 2^160) and the XOR
//! metric of Kademlia.
//!
//! Ids are big-endian byte strings, so the derived `Ord` is numeric order and the bytes are
//! what goes on the wire (SHA-1 and truncated SHA-256 outputs are used as they come).

use core::cmp::Ordering;
use core::fmt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes in an [`Id`].
pub const ID_BYTES: usize = 20;
/// Bits in an [`Id`]: the `m` of the Chord paper.
pub const ID_BITS: u32 = 160;

/// A 160-bit identifier: a point on the ring, or a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Id(pub [u8; ID_BYTES]);

impl Id {
    /// Zero, the top of the ring.
    pub const ZERO: Id = Id([0; ID_BYTES]);
    /// 2^160 - 1, the point just before zero.
    pub const MAX: Id = Id([0xff; ID_BYTES]);

    /// SHA-256 of `bytes`, truncated to its first 160 bits.
    pub fn sha256(bytes: &[u8]) -> Id {
        let digest = Sha256::digest(bytes);
        let mut id = [0; ID_BYTES];
        id.copy_from_slice(&digest[..ID_BYTES]);
        Id(id)
    }

    /// The id whose low 64 bits are `v` (the rest zero): handy in tests and examples.
    pub const fn from_u64(v: u64) -> Id {
        let mut id = [0; ID_BYTES];
        let b = v.to_be_bytes();
        let mut i = 0;
        while i < 8 {
            id[ID_BYTES - 8 + i] = b[i];
            i += 1;
        }
        Id(id)
    }

    /// 2^i mod 2^160 (zero for `i >= 160`).
    pub fn pow2(i: u32) -> Id {
        let mut id = [0; ID_BYTES];
        if i < ID_BITS {
            id[ID_BYTES - 1 - (i / 8) as usize] = 1 << (i % 8);
        }
        Id(id)
    }

    /// The id as three big-endian limbs (32 + 64 + 64 bits): ring arithmetic and
    /// comparisons are the simulator's hottest code, and limbs beat a byte loop.
    #[inline]
    fn limbs(self) -> (u32, u64, u64) {
        let b = &self.0;
        (
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]),
            u64::from_be_bytes([b[12], b[13], b[14], b[15], b[16], b[17], b[18], b[19]]),
        )
    }

    #[inline]
    fn from_limbs((a, b, c): (u32, u64, u64)) -> Id {
        let mut id = [0; ID_BYTES];
        id[..4].copy_from_slice(&a.to_be_bytes());
        id[4..12].copy_from_slice(&b.to_be_bytes());
        id[12..].copy_from_slice(&c.to_be_bytes());
        Id(id)
    }

    /// `self + other` mod 2^160.
    pub fn wrapping_add(self, other: Id) -> Id {
        let (a, b) = (self.limbs(), other.limbs());
        let (lo, c1) = a.2.overflowing_add(b.2);
        let (mid, c2) = a.1.overflowing_add(b.1);
        let (mid, c3) = mid.overflowing_add(c1 as u64);
        let hi = a.0.wrapping_add(b.0).wrapping_add((c2 | c3) as u32);
        Id::from_limbs((hi, mid, lo))
    }

    /// `self - other` mod 2^160.
    pub fn wrapping_sub(self, other: Id) -> Id {
        let (a, b) = (self.limbs(), other.limbs());
        let (lo, b1) = a.2.overflowing_sub(b.2);
        let (mid, b2) = a.1.overflowing_sub(b.1);
        let (mid, b3) = mid.overflowing_sub(b1 as u64);
        let hi = a.0.wrapping_sub(b.0).wrapping_sub((b2 | b3) as u32);
        Id::from_limbs((hi, mid, lo))
    }

    /// Clockwise distance from `self` to `to` on the ring: `to - self` mod 2^160.
    pub fn ring_distance(self, to: Id) -> Id {
        to.wrapping_sub(self)
    }

    /// `self` lies in the open ring interval `(a, b)`. When `a == b` the interval is the
    /// whole ring except `a` (Chord's convention for a ring of one node).
    pub fn in_open(self, a: Id, b: Id) -> bool {
        match a.cmp(&b) {
            Ordering::Less => a < self && self < b,
            Ordering::Greater => a < self || self < b,
            Ordering::Equal => self != a,
        }
    }

    /// `self` lies in the half-open ring interval `(a, b]`. When `a == b` this is the whole
    /// ring: a lone node is the successor of every key.
    pub fn in_half_open(self, a: Id, b: Id) -> bool {
        self == b || self.in_open(a, b)
    }

    /// Kademlia's XOR distance.
    pub fn xor(self, other: Id) -> Id {
        Id(core::array::from_fn(|i| self.0[i] ^ other.0[i]))
    }

    /// Number of leading zero bits (160 for zero). For an XOR distance this is the length of
    /// the common prefix, i.e. the k-bucket index counted from the far end.
    pub fn leading_zeros(self) -> u32 {
        let mut n = 0;
        for b in self.0 {
            if b != 0 {
                return n + b.leading_zeros();
            }
            n += 8;
        }
        n
    }

    /// Position of the highest set bit plus one (0 for zero): `floor(log2(self)) + 1`.
    pub fn bit_len(self) -> u32 {
        ID_BITS - self.leading_zeros()
    }

    /// The top 64 bits, for plots and coarse arithmetic.
    pub fn high_u64(self) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }

    /// The position on the ring as a fraction of a turn in `[0, 1)`, for pictures.
    pub fn as_fraction(self) -> f64 {
        self.high_u64() as f64 / 18_446_744_073_709_551_616.0
    }
}

/// Numeric order, which for big-endian bytes is byte order.
impl Ord for Id {
    #[inline]
    fn cmp(&self, other: &Id) -> Ordering {
        self.limbs().cmp(&other.limbs())
    }
}

impl PartialOrd for Id {
    #[inline]
    fn partial_cmp(&self, other: &Id) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

/// Short hex form (first 8 hex digits), as in most DHT logs.
impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Full 40-digit hex form.
impl fmt::LowerHex for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// An [`Id`] written as anything but exactly 40 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ParseIdError;

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id is 40 hex digits")
    }
}

impl core::error::Error for ParseIdError {}

/// Parses the full hex form that [`fmt::LowerHex`] writes (either case): info hashes,
/// BEP 44 targets and node ids as people and other clients write them.
impl core::str::FromStr for Id {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Id, ParseIdError> {
        let digits = s.as_bytes();
        if digits.len() != 2 * ID_BYTES {
            return Err(ParseIdError);
        }
        let nibble = |c: u8| (c as char).to_digit(16).ok_or(ParseIdError);
        let mut id = Id::ZERO;
        for (b, pair) in id.0.iter_mut().zip(digits.chunks_exact(2)) {
            *b = (nibble(pair[0])? << 4 | nibble(pair[1])?) as u8;
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_anything_else_is_refused() {
        let id: Id = "5FBFBFF10C5D6A4EC8A88E4C6AB4C28B95EEE401".parse().unwrap();
        let mut shown = heapless::String::<40>::new();
        core::fmt::write(&mut shown, format_args!("{id:x}")).unwrap();
        assert_eq!(shown, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401");
        assert_eq!(shown.parse::<Id>(), Ok(id));
        for bad in [
            "",
            "5fbf",
            "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee40",
            "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee4012",
            "zfbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401",
            "+fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401",
        ] {
            assert_eq!(bad.parse::<Id>(), Err(ParseIdError), "{bad:?}");
        }
    }

    const fn id(v: u64) -> Id {
        Id::from_u64(v)
    }

    #[test]
    fn ring_arithmetic_wraps_modulo_2_pow_160() {
        assert_eq!(Id::MAX.wrapping_add(id(1)), Id::ZERO);
        assert_eq!(Id::ZERO.wrapping_sub(id(1)), Id::MAX);
        assert_eq!(id(5).ring_distance(id(3)), Id::MAX.wrapping_sub(id(1)));
        assert_eq!(Id::pow2(0), id(1));
        assert_eq!(Id::pow2(63), id(1 << 63));
        assert_eq!(Id::pow2(159).0[0], 0x80);
        assert_eq!(Id::pow2(160), Id::ZERO);
    }

    #[test]
    fn intervals_follow_chord_conventions() {
        // (3, 7): plain; (7, 3): wraps through zero; (3, 3): everything but 3.
        assert!(id(5).in_open(id(3), id(7)));
        assert!(!id(7).in_open(id(3), id(7)));
        assert!(id(7).in_half_open(id(3), id(7)));
        assert!(id(1).in_open(id(7), id(3)));
        assert!(Id::MAX.in_open(id(7), id(3)));
        assert!(!id(5).in_open(id(7), id(3)));
        assert!(id(9).in_open(id(3), id(3)));
        assert!(!id(3).in_open(id(3), id(3)));
        assert!(id(3).in_half_open(id(3), id(3)));
    }

    #[test]
    fn limb_arithmetic_agrees_with_bytewise_arithmetic() {
        // Reference: schoolbook byte-at-a-time subtraction and byte order.
        fn sub_bytes(a: Id, b: Id) -> Id {
            let mut out = [0; ID_BYTES];
            let mut borrow = 0i16;
            for i in (0..ID_BYTES).rev() {
                let d = a.0[i] as i16 - b.0[i] as i16 - borrow;
                borrow = (d < 0) as i16;
                out[i] = d.rem_euclid(256) as u8;
            }
            Id(out)
        }
        let mut rng = crate::Rng::new(3);
        let mut ids = [
            Id::ZERO,
            Id::MAX,
            Id::pow2(63),
            Id::pow2(64),
            Id::pow2(127),
            Id::pow2(128),
            id(1),
        ];
        for _ in 0..1000 {
            let mut a = Id::ZERO;
            let mut b = Id::ZERO;
            rng.fill(&mut a.0);
            rng.fill(&mut b.0);
            ids[0] = a;
            for &c in &ids {
                assert_eq!(a.wrapping_sub(c), sub_bytes(a, c));
                assert_eq!(b.wrapping_add(c).wrapping_sub(c), b);
                assert_eq!(a.cmp(&c), a.0.cmp(&c.0));
            }
            ids[1] = b;
        }
    }

    #[test]
    fn xor_metric_and_prefix_length() {
        assert_eq!(id(0b1010).xor(id(0b0110)), id(0b1100));
        assert_eq!(Id::ZERO.leading_zeros(), 160);
        assert_eq!(id(1).leading_zeros(), 159);
        assert_eq!(id(1).bit_len(), 1);
        assert_eq!(Id::MAX.bit_len(), 160);
    }

    #[test]
    fn sha256_truncates_to_160_bits() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c ... (FIPS 180-2 B.1)
        let expect = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3,
        ];
        assert_eq!(Id::sha256(b"abc"), Id(expect));
    }
}
