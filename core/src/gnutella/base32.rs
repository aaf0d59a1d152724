//! Base32 (RFC 4648 section 6: the alphabet `A-Z2-7`, five bits per character, most
//! significant first), the encoding of HUGE's `urn:sha1:` names.
//!
//! HUGE v0.94 section 2.3 asks for the "canonical" encoding "without stray intervening
//! characters or end-padding", and says case is unimportant. So [`encode`] writes upper
//! case and no `=`, and [`decode`] accepts either case and, for RFC 4648's own vectors,
//! trailing `=` padding; it rejects anything else, including non-zero leftover bits (two
//! strings for one value would make two names for one file).

use super::WriteError;
use core::fmt;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Characters needed for `bytes` bytes, without padding.
pub const fn encoded_len(bytes: usize) -> usize {
    (bytes * 8).div_ceil(5)
}

/// Why a string is not canonical base32.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Base32Error {
    /// A byte outside `A-Z`, `a-z`, `2-7` (or a `=` before the end).
    BadChar(u8),
    /// A length no byte string encodes to (1, 3 or 6 characters past a multiple of 8),
    /// or padding that does not bring the length to a multiple of 8.
    BadLength,
    /// The bits after the last whole byte are not zero: not the canonical encoding.
    NonCanonical,
    /// The output buffer is too small.
    BufferFull,
}

impl fmt::Display for Base32Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base32Error::BadChar(b) => write!(f, "byte {b:#04x} is not base32"),
            Base32Error::BadLength => f.write_str("base32 string of impossible length"),
            Base32Error::NonCanonical => f.write_str("base32 leftover bits are not zero"),
            Base32Error::BufferFull => f.write_str("base32 output buffer full"),
        }
    }
}

impl core::error::Error for Base32Error {}

/// Writes `input` as base32 (upper case, unpadded) at the start of `out`; returns the
/// number of characters, [`encoded_len`]`(input.len())`.
pub fn encode(input: &[u8], out: &mut [u8]) -> Result<usize, WriteError> {
    let n = encoded_len(input.len());
    let out = out.get_mut(..n).ok_or(WriteError::BufferFull)?;
    let (mut acc, mut bits, mut at) = (0u16, 0u32, 0);
    for &b in input {
        acc = (acc << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out[at] = ALPHABET[usize::from((acc >> bits) & 31)];
            at += 1;
        }
        // Keep only the bits not yet written, so the shift above never overflows.
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out[at] = ALPHABET[usize::from((acc << (5 - bits)) & 31)];
    }
    Ok(n)
}

/// Decodes base32 `input` (either case, optional trailing `=`) into the start of `out`;
/// returns the number of bytes.
pub fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, Base32Error> {
    let body_len = input.len() - input.iter().rev().take_while(|&&c| c == b'=').count();
    let (body, pad) = input.split_at(body_len);
    if !pad.is_empty() && !input.len().is_multiple_of(8) {
        return Err(Base32Error::BadLength);
    }
    // 8 characters carry 5 bytes; a tail of 2, 4, 5 or 7 characters carries 1 to 4.
    let tail = match body.len() % 8 {
        0 => 0,
        2 => 1,
        4 => 2,
        5 => 3,
        7 => 4,
        _ => return Err(Base32Error::BadLength),
    };
    if !pad.is_empty() && pad.len() != (8 - body.len() % 8) % 8 {
        return Err(Base32Error::BadLength);
    }
    let n = body.len() / 8 * 5 + tail;
    let out = out.get_mut(..n).ok_or(Base32Error::BufferFull)?;
    let (mut acc, mut bits, mut at) = (0u16, 0u32, 0);
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(Base32Error::BadChar(c)),
        };
        acc = (acc << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[at] = (acc >> bits) as u8;
            at += 1;
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return Err(Base32Error::NonCanonical);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4648 section 10, the BASE32 test vectors.
    const RFC4648_10: [(&[u8], &[u8]); 7] = [
        (b"", b""),
        (b"f", b"MY======"),
        (b"fo", b"MZXQ===="),
        (b"foo", b"MZXW6==="),
        (b"foob", b"MZXW6YQ="),
        (b"fooba", b"MZXW6YTB"),
        (b"foobar", b"MZXW6YTBOI======"),
    ];

    #[test]
    fn rfc4648_section10_vectors_encode_unpadded() {
        for (plain, coded) in RFC4648_10 {
            let unpadded = &coded[..coded.iter().position(|&c| c == b'=').unwrap_or(coded.len())];
            let mut out = [0u8; 16];
            let n = encode(plain, &mut out).unwrap();
            assert_eq!(&out[..n], unpadded);
            assert_eq!(n, encoded_len(plain.len()));
        }
    }

    #[test]
    fn rfc4648_section10_vectors_decode_padded_unpadded_and_lower_case() {
        for (plain, coded) in RFC4648_10 {
            let mut out = [0u8; 8];
            let n = decode(coded, &mut out).unwrap();
            assert_eq!(&out[..n], plain);
            let unpadded = &coded[..coded.iter().position(|&c| c == b'=').unwrap_or(coded.len())];
            let n = decode(unpadded, &mut out).unwrap();
            assert_eq!(&out[..n], plain);
            let mut lower = [0u8; 16];
            lower[..coded.len()].copy_from_slice(coded);
            lower.make_ascii_lowercase();
            let n = decode(&lower[..coded.len()], &mut out).unwrap();
            assert_eq!(&out[..n], plain);
        }
    }

    #[test]
    fn huge_section2_3_example_0ff5_is_b72q() {
        // HUGE v0.94 section 2.3: 0x0F 0xF5 -> B72Q.
        let mut out = [0u8; 4];
        assert_eq!(encode(&[0x0f, 0xf5], &mut out), Ok(4));
        assert_eq!(&out, b"B72Q");
        let mut back = [0u8; 2];
        assert_eq!(decode(b"B72Q", &mut back), Ok(2));
        assert_eq!(back, [0x0f, 0xf5]);
    }

    #[test]
    fn malformed_base32_is_rejected() {
        let mut out = [0u8; 8];
        assert_eq!(decode(b"M", &mut out), Err(Base32Error::BadLength));
        assert_eq!(decode(b"MZX", &mut out), Err(Base32Error::BadLength));
        assert_eq!(decode(b"MZXW6Y", &mut out), Err(Base32Error::BadLength));
        assert_eq!(decode(b"MY=", &mut out), Err(Base32Error::BadLength));
        assert_eq!(decode(b"MY==", &mut out), Err(Base32Error::BadLength));
        assert_eq!(
            decode(b"MZXW6YTB========", &mut out),
            Err(Base32Error::BadLength)
        );
        assert_eq!(decode(b"M1", &mut out), Err(Base32Error::BadChar(b'1')));
        assert_eq!(
            decode(b"M=YA====", &mut out),
            Err(Base32Error::BadChar(b'='))
        );
        // "MZ" carries 'f' (0x66) and two leftover bits that must be zero: "MY" is canonical.
        assert_eq!(decode(b"MZ", &mut out), Err(Base32Error::NonCanonical));
        assert_eq!(
            decode(b"MZXW6YTB", &mut out[..4]),
            Err(Base32Error::BufferFull)
        );
        assert_eq!(encode(b"foo", &mut out[..4]), Err(WriteError::BufferFull));
    }

    #[test]
    fn every_length_round_trips() {
        let data: [u8; 21] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        for len in 0..=data.len() {
            let mut text = [0u8; 34];
            let n = encode(&data[..len], &mut text).unwrap();
            let mut back = [0u8; 21];
            let m = decode(&text[..n], &mut back).unwrap();
            assert_eq!(&back[..m], &data[..len]);
        }
    }
}
