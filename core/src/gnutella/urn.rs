//! HUGE's SHA-1 names (HUGE v0.94 sections 2.3 and 3): `urn:sha1:` and 32 base32
//! characters, the 20 bytes of the file's SHA-1. Queries ask for them, query hits report
//! them, and HTTP requests and responses carry them (`/uri-res/N2R?urn:sha1:...`,
//! `X-Gnutella-Content-URN`).

use super::{WriteError, base32};

/// Bytes in `urn:sha1:` and the 32 base32 characters of a SHA-1: 41.
pub const SHA1_URN_LEN: usize = 9 + 32;

/// HUGE section 2.3: case does not matter in the prefix or the hash.
fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Whether `s` starts with `urn:` in any case: HUGE section 3 reserves every such
/// extension string for URNs.
pub fn is_urn(s: &[u8]) -> bool {
    strip_prefix_ignore_case(s, b"urn:").is_some()
}

/// The SHA-1 named by `s`, if it is exactly `urn:sha1:` and 32 base32 characters, or a
/// `urn:bitprint:` whose first 32 characters (before the `.` and the TigerTree hash) are
/// the SHA-1. HUGE section 2.3 asks servents to down-convert bitprints to SHA-1.
pub fn parse_sha1(s: &[u8]) -> Option<[u8; 20]> {
    let hash = if let Some(rest) = strip_prefix_ignore_case(s, b"urn:sha1:") {
        rest
    } else {
        let rest = strip_prefix_ignore_case(s, b"urn:bitprint:")?;
        // 32 characters of SHA-1, a period, 39 of TigerTree.
        if rest.len() != 32 + 1 + 39 || rest[32] != b'.' {
            return None;
        }
        &rest[..32]
    };
    if hash.len() != 32 {
        return None;
    }
    let mut out = [0u8; 20];
    match base32::decode(hash, &mut out) {
        Ok(20) => Some(out),
        _ => None,
    }
}

/// Writes `urn:sha1:` and the base32 of `sha1` ([`SHA1_URN_LEN`] bytes) at the start of
/// `out`.
pub fn write_sha1(sha1: &[u8; 20], out: &mut [u8]) -> Result<usize, WriteError> {
    let out = out.get_mut(..SHA1_URN_LEN).ok_or(WriteError::BufferFull)?;
    out[..9].copy_from_slice(b"urn:sha1:");
    base32::encode(sha1, &mut out[9..])?;
    Ok(SHA1_URN_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-1 of the empty string (FIPS 180 / RFC 3174): da39a3ee 5e6b4b0d 3255bfef
    /// 95601890 afd80709.
    pub(crate) const EMPTY_SHA1: [u8; 20] = [
        0xda, 0x39, 0xa3, 0xee, 0x5e, 0x6b, 0x4b, 0x0d, 0x32, 0x55, 0xbf, 0xef, 0x95, 0x60, 0x18,
        0x90, 0xaf, 0xd8, 0x07, 0x09,
    ];

    #[test]
    fn sha1_of_the_empty_string_is_3i42h3s6nnfq2msvx7xzkyayscx5qbyj() {
        let mut out = [0u8; 64];
        assert_eq!(write_sha1(&EMPTY_SHA1, &mut out), Ok(SHA1_URN_LEN));
        assert_eq!(
            &out[..SHA1_URN_LEN],
            b"urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"
        );
        assert_eq!(parse_sha1(&out[..SHA1_URN_LEN]), Some(EMPTY_SHA1));
    }

    #[test]
    fn huge_section2_3_case_is_unimportant_and_bitprints_down_convert() {
        assert_eq!(
            parse_sha1(b"URN:SHA1:3i42h3s6nnfq2msvx7xzkyayscx5qbyj"),
            Some(EMPTY_SHA1)
        );
        // A bitprint: the SHA-1, a period, 39 characters of TigerTree.
        let bitprint = b"urn:bitprint:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ.LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ";
        assert_eq!(parse_sha1(bitprint), Some(EMPTY_SHA1));
        assert!(is_urn(b"Urn:"));
        assert!(!is_urn(b"ur"));
    }

    #[test]
    fn malformed_sha1_urns_are_none() {
        for bad in [
            &b"urn:sha1:"[..],
            b"urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBY",
            b"urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJA",
            b"urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBY1",
            b"urn:md5:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ",
            b"urn:bitprint:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ",
            b"",
        ] {
            assert_eq!(parse_sha1(bad), None, "{:?}", core::str::from_utf8(bad));
        }
        let mut small = [0u8; 40];
        assert_eq!(
            write_sha1(&EMPTY_SHA1, &mut small),
            Err(WriteError::BufferFull)
        );
    }
}
