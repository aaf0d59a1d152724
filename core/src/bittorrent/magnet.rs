//! Magnet links (BEP 9): `magnet:?xt=urn:btih:<info hash>&dn=<name>&tr=<tracker>&x.pe=<peer>`.
//!
//! [`Magnet::parse`] finds the info hash (40 hex digits or 32 base32 characters, either
//! case) and checks every percent escape of the parameters it exposes, so the views it
//! hands out ([`Encoded`]) can always be decoded. Values stay percent-encoded, borrowing
//! the URI, until a caller decodes one into its own buffer.
//!
//! Other parameters (`xl`, `so`, `ws`, BEP 52's `urn:btmh:` topics, ...) are skipped.
//!
//! ```
//! # use overlay_core::bittorrent::magnet::Magnet;
//! let link = b"magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=a%20b&tr=udp%3A%2F%2Ft";
//! let magnet = Magnet::parse(link).unwrap();
//! assert_eq!(magnet.info_hash()[..2], [0xc1, 0x2f]);
//! let mut buf = [0u8; 32];
//! assert_eq!(magnet.display_name().unwrap().decode(&mut buf), Ok(&b"a b"[..]));
//! assert_eq!(magnet.trackers().next().unwrap().raw(), b"udp%3A%2F%2Ft");
//! ```

use crate::gnutella::base32;
use core::fmt;

/// Why a URI is not a magnet link this module can use.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    NotMagnet,
    /// No `xt` parameter is a `urn:btih:` topic.
    MissingInfoHash,
    /// The `urn:btih:` topic is neither 40 hex digits nor 32 base32 characters.
    BadInfoHash,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The caller's buffer is too small for the decoded value.
    BufferFull,
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MagnetError::NotMagnet => "not a magnet URI",
            MagnetError::MissingInfoHash => "magnet URI has no urn:btih: topic",
            MagnetError::BadInfoHash => "magnet info hash is neither 40 hex nor 32 base32",
            MagnetError::BadEscape => "magnet URI has a bad percent escape",
            MagnetError::BufferFull => "magnet output buffer full",
        })
    }
}

impl core::error::Error for MagnetError {}

/// A parsed magnet link, borrowing the URI.
#[derive(Clone, Copy, Debug)]
pub struct Magnet<'a> {
    info_hash: [u8; 20],
    /// Everything after `magnet:?`.
    query: &'a [u8],
}

/// Parameters whose escapes `parse` checks, so that their [`Encoded`] views decode.
const EXPOSED: [&[u8]; 4] = [b"xt", b"dn", b"tr", b"x.pe"];

impl<'a> Magnet<'a> {
    /// Parses a magnet URI. The first `urn:btih:` topic gives the info hash.
    pub fn parse(uri: &'a [u8]) -> Result<Self, MagnetError> {
        let query = strip_prefix_ignore_case(uri, b"magnet:?").ok_or(MagnetError::NotMagnet)?;
        let mut info_hash = None;
        for (key, value) in Params(query) {
            if !EXPOSED.contains(&key) {
                continue;
            }
            let value = Encoded::new(value)?;
            if key == b"xt" && info_hash.is_none() {
                // A topic is at most `urn:btih:` and 40 digits; anything longer is not ours.
                let mut topic = [0u8; 49];
                let Ok(topic) = value.decode(&mut topic) else {
                    continue;
                };
                if let Some(hash) = strip_prefix_ignore_case(topic, b"urn:btih:") {
                    info_hash = Some(info_hash_of(hash)?);
                }
            }
        }
        let info_hash = info_hash.ok_or(MagnetError::MissingInfoHash)?;
        Ok(Magnet { info_hash, query })
    }

    /// The torrent's info hash (BEP 3: SHA-1 of the `info` dict).
    pub fn info_hash(&self) -> [u8; 20] {
        self.info_hash
    }

    /// `dn`: a name to show until the metadata arrives.
    pub fn display_name(&self) -> Option<Encoded<'a>> {
        self.values(b"dn").next()
    }

    /// `tr`: tracker URLs, in order.
    pub fn trackers(&self) -> Values<'a> {
        self.values(b"tr")
    }

    /// `x.pe`: peer addresses (`host:port`, `1.2.3.4:port` or `[v6]:port`) to connect
    /// to directly.
    pub fn peers(&self) -> Values<'a> {
        self.values(b"x.pe")
    }

    fn values(&self, key: &'static [u8]) -> Values<'a> {
        Values {
            params: Params(self.query),
            key,
        }
    }
}

/// The values of one parameter, in order.
#[derive(Clone, Debug)]
pub struct Values<'a> {
    params: Params<'a>,
    key: &'static [u8],
}

impl<'a> Iterator for Values<'a> {
    type Item = Encoded<'a>;
    fn next(&mut self) -> Option<Encoded<'a>> {
        let key = self.key;
        let (_, value) = self.params.find(|&(k, _)| k == key)?;
        Some(Encoded(value))
    }
}

/// A parameter's value as it appears in the URI: form-urlencoded (`%XX` is a byte, `+` a
/// space), with every escape checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Encoded<'a>(&'a [u8]);

impl<'a> Encoded<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Result<Self, MagnetError> {
        let mut rest = raw;
        while let Some(at) = rest.iter().position(|&b| b == b'%') {
            let digits = rest.get(at + 1..at + 3).unwrap_or_default();
            hex_byte(digits).ok_or(MagnetError::BadEscape)?;
            rest = rest.get(at + 3..).unwrap_or_default();
        }
        Ok(Encoded(raw))
    }

    /// The bytes as they appear in the URI.
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }

    /// The decoded length, never more than the raw length.
    pub fn decoded_len(&self) -> usize {
        let escapes = self.0.iter().filter(|&&b| b == b'%').count();
        self.0.len() - 2 * escapes
    }

    /// Decodes into the start of `out` (which [`Encoded::decoded_len`] bytes, or the raw
    /// length, always fit) and returns the decoded bytes.
    pub fn decode<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], MagnetError> {
        let out = out
            .get_mut(..self.decoded_len())
            .ok_or(MagnetError::BufferFull)?;
        let mut bytes = self.0.iter();
        for slot in out.iter_mut() {
            *slot = match bytes.next() {
                // Checked when the value was parsed.
                Some(b'%') => {
                    let digits = [bytes.next(), bytes.next()].map(|d| d.copied().unwrap_or(0));
                    hex_byte(&digits).unwrap_or(0)
                }
                Some(b'+') => b' ',
                Some(&b) => b,
                None => 0,
            };
        }
        Ok(out)
    }
}

/// The `key=value` pairs of a query, split on `&` (a pair without `=` has an empty value).
#[derive(Clone, Debug)]
pub(crate) struct Params<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        while !self.0.is_empty() {
            let mut split = self.0.splitn(2, |&b| b == b'&');
            let pair = split.next().unwrap_or_default();
            self.0 = split.next().unwrap_or_default();
            if pair.is_empty() {
                continue;
            }
            let mut kv = pair.splitn(2, |&b| b == b'=');
            let key = kv.next().unwrap_or_default();
            return Some((key, kv.next().unwrap_or_default()));
        }
        None
    }
}

/// BEP 9: "the hex encoded info-hash" (40 characters), or its base32 form (32).
fn info_hash_of(text: &[u8]) -> Result<[u8; 20], MagnetError> {
    let mut hash = [0u8; 20];
    match text.len() {
        40 => {
            for (byte, digits) in hash.iter_mut().zip(text.chunks_exact(2)) {
                *byte = hex_byte(digits).ok_or(MagnetError::BadInfoHash)?;
            }
        }
        32 => {
            base32::decode(text, &mut hash).map_err(|_| MagnetError::BadInfoHash)?;
        }
        _ => return Err(MagnetError::BadInfoHash),
    }
    Ok(hash)
}

/// Two hex digits as a byte.
fn hex_byte(digits: &[u8]) -> Option<u8> {
    match digits {
        &[hi, lo] => Some(hex(hi)? << 4 | hex(lo)?),
        _ => None,
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986: schemes (and the URN namespace) are case-insensitive.
fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = s.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// The info hash of BEP 9's examples, and its forms in a magnet link.
    const HASH: [u8; 20] = [
        0xc1, 0x2f, 0xe1, 0xc0, 0x6b, 0xba, 0x25, 0x4a, 0x9d, 0xc9, 0xf5, 0x19, 0xb3, 0x35, 0xaa,
        0x7c, 0x13, 0x67, 0xa8, 0x8a,
    ];
    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    /// `base64.b32encode(bytes.fromhex(HEX))`.
    const BASE32: &str = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";

    fn magnet(query: &str) -> Result<Magnet<'_>, MagnetError> {
        Magnet::parse(query.as_bytes())
    }

    fn decoded(value: Encoded<'_>) -> Vec<u8> {
        let mut buf = [0u8; 256];
        value.decode(&mut buf).unwrap().to_vec()
    }

    /// BEP 9: `magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker-url>&x.pe=<peer-address>`.
    #[test]
    fn bep9_full_link() {
        let uri = std::format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny%E2%80%99s.mkv\
             &tr=udp%3A%2F%2Ftracker.example.org%3A6969&tr=http://t2.example/announce\
             &x.pe=10.0.0.1:6881&x.pe=%5B2001:db8::1%5D:6881&xl=12345"
        );
        let m = magnet(&uri).unwrap();
        assert_eq!(m.info_hash(), HASH);
        let name = m.display_name().unwrap();
        assert_eq!(name.raw(), b"Big+Buck%20Bunny%E2%80%99s.mkv");
        assert_eq!(name.decoded_len(), 22);
        assert_eq!(decoded(name), "Big Buck Bunny\u{2019}s.mkv".as_bytes());
        let trackers: Vec<Vec<u8>> = m.trackers().map(decoded).collect();
        assert_eq!(
            trackers,
            [
                &b"udp://tracker.example.org:6969"[..],
                b"http://t2.example/announce"
            ]
        );
        let peers: Vec<Vec<u8>> = m.peers().map(decoded).collect();
        assert_eq!(peers, [&b"10.0.0.1:6881"[..], b"[2001:db8::1]:6881"]);
    }

    /// BEP 9: the hash may be hex (either case) or "32 character base32".
    #[test]
    fn bep9_hex_and_base32_info_hashes() {
        let upper_hex = HEX.to_ascii_uppercase();
        let lower_base32 = BASE32.to_ascii_lowercase();
        for hash in [HEX, &upper_hex, BASE32, &lower_base32] {
            let uri = std::format!("magnet:?xt=urn:btih:{hash}");
            let m = magnet(&uri).unwrap();
            assert_eq!(m.info_hash(), HASH, "{hash}");
            assert_eq!(
                (m.display_name(), m.trackers().count(), m.peers().count()),
                (None, 0, 0)
            );
        }
    }

    /// RFC 3986: the scheme and URN prefix are case-insensitive, and a topic may be
    /// percent-encoded as a whole.
    #[test]
    fn case_and_escapes_in_the_topic() {
        for uri in [
            std::format!("MAGNET:?xt=URN:BTIH:{HEX}"),
            std::format!("magnet:?xt=urn%3Abtih%3A{HEX}"),
        ] {
            assert_eq!(magnet(&uri).unwrap().info_hash(), HASH, "{uri}");
        }
    }

    /// The first `urn:btih:` topic wins; other topics (BEP 52's `urn:btmh:`) are skipped.
    #[test]
    fn first_btih_topic_wins() {
        let uri = std::format!(
            "magnet:?&xt=urn:btmh:1220abcd&&xt=urn:btih:{HEX}&xt=urn:btih:{}&dn",
            "0".repeat(40)
        );
        let m = magnet(&uri).unwrap();
        assert_eq!(m.info_hash(), HASH);
        assert_eq!(m.display_name().map(|d| d.raw()), Some(&b""[..]));
    }

    #[test]
    fn errors() {
        use MagnetError::*;
        let cases: &[(&str, MagnetError)] = &[
            ("", NotMagnet),
            ("magnet:", NotMagnet),
            ("http://example.org/?xt=urn:btih:", NotMagnet),
            ("magnet:?", MissingInfoHash),
            ("magnet:?dn=x&tr=y", MissingInfoHash),
            (
                "magnet:?xt=urn:sha1:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK",
                MissingInfoHash,
            ),
            (
                "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88",
                BadInfoHash,
            ),
            (
                "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88g",
                BadInfoHash,
            ),
            (
                "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1",
                BadInfoHash,
            ),
            (
                "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEKA",
                BadInfoHash,
            ),
            ("magnet:?xt=urn:btih:", BadInfoHash),
            (
                "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=%4",
                BadEscape,
            ),
            (
                "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&tr=%zz",
                BadEscape,
            ),
            (
                "magnet:?x.pe=%&xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a",
                BadEscape,
            ),
        ];
        for (uri, error) in cases {
            assert_eq!(magnet(uri).map(|_| ()), Err(*error), "{uri}");
        }
        // Parameters this module does not expose are not checked.
        assert!(magnet(&std::format!("magnet:?xt=urn:btih:{HEX}&ws=%zz")).is_ok());
        // A topic too long to be ours is skipped, not an error.
        let long = std::format!("magnet:?xt=urn:btih:{HEX}{HEX}&xt=urn:btih:{BASE32}");
        assert_eq!(magnet(&long).unwrap().info_hash(), HASH);
    }

    #[test]
    fn decode_needs_room_for_the_decoded_bytes() {
        let uri = std::format!("magnet:?xt=urn:btih:{HEX}&dn=a%20b");
        let name = magnet(&uri).unwrap().display_name().unwrap();
        assert_eq!(name.decode(&mut [0; 2]), Err(MagnetError::BufferFull));
        assert_eq!(name.decode(&mut [0; 3]), Ok(&b"a b"[..]));
    }

    /// Prefixes and single-byte corruptions of a link fail cleanly or parse; nothing panics.
    #[test]
    fn mangled_links_never_panic() {
        let uri = std::format!("magnet:?xt=urn:btih:{BASE32}&dn=a%20b+c&tr=u%3A&x.pe=h:1");
        let mut bytes = uri.into_bytes();
        for end in 0..bytes.len() {
            let _ = Magnet::parse(&bytes[..end]);
        }
        for i in 0..bytes.len() {
            for b in [0u8, b'%', b'&', b'=', b'+', b'1', b'f', 0xff] {
                let old = core::mem::replace(&mut bytes[i], b);
                if let Ok(m) = Magnet::parse(&bytes) {
                    for value in m.trackers().chain(m.peers()).chain(m.display_name()) {
                        let mut buf = [0u8; 64];
                        let out = value.decode(&mut buf).unwrap();
                        assert_eq!(out.len(), value.decoded_len());
                    }
                }
                bytes[i] = old;
            }
        }
    }
}
