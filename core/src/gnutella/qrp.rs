//! The Query Routing Protocol (QRP 1.0, Rohrs 2002; gtk-gnutella `doc/gnutella/QRP`), as
//! ultrapeers use it: a leaf hashes the keywords of its shared files into a table and sends
//! it to its ultrapeers in ROUTE_TABLE_UPDATE (0x30) messages; an ultrapeer passes a query
//! to a leaf only if every keyword of the query is in that leaf's table. The tables are not
//! propagated further (the document's "Important Note").
//!
//! Tables are kept as presence bits at a fixed size, [`TABLE_BITS`]: the hash is built so that
//! tables of different sizes convert into each other (section "Hashing Details"), so a leaf's
//! table of any power-of-two size maps onto ours. Patches compressed with ZLIB (compressor 1)
//! are refused with [`QrpError::Compressed`]: inflating needs more memory than this crate
//! keeps per connection, and the receiver then routes every query to that leaf, which the
//! document itself advises while a table is incomplete.

use super::{WriteError, put, urn};
use core::fmt;

/// The descriptor type of ROUTE_TABLE_UPDATE (section "Gnutella Protocol Changes").
pub const ROUTE_TABLE_UPDATE: u8 = 0x30;
/// log2 of the slots of the tables kept here: 8192 slots, 1 KiB of bits per table.
pub const TABLE_BITS: u8 = 13;
const SLOTS: usize = 1 << TABLE_BITS;
/// Bytes of a table's bits.
pub const TABLE_BYTES: usize = SLOTS / 8;
/// The INFINITY our leaves announce (LimeWire's 7, as in the document's examples).
pub const INFINITY: u8 = 7;
/// Patch data bytes per PATCH message our leaves send: 4-bit entries, 2048 per message.
const PATCH_CHUNK: usize = 1024;
/// Largest table size accepted (2^24 entries): a patch is at most 255 messages.
const MAX_TABLE_LOG: u8 = 24;

/// The QRP hash of `word` into a table of `2^bits` slots (Appendix A's `hash`): the bytes,
/// ASCII-lower-cased, XORed as little-endian 32-bit words, times 0x4F1BBCDC, top `bits`
/// bits of the low 32.
pub fn hash(word: &[u8], bits: u8) -> u32 {
    let mut x = 0u32;
    for (i, b) in word.iter().enumerate() {
        x ^= u32::from(b.to_ascii_lowercase()) << ((i % 4) * 8);
    }
    match bits {
        0 => 0,
        b => x.wrapping_mul(0x4F1B_BCDC) >> (32 - u32::from(b.min(32))),
    }
}

/// The keywords of a file name or a query: runs of letters and digits (bytes beyond ASCII
/// count as letters), so `"Free_Software-Song.ogg"` gives `free`, `software`, `song`, `ogg`.
pub fn keywords(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| b.is_ascii() && !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Why a ROUTE_TABLE_UPDATE was not applied.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QrpError {
    /// Shorter than its variant's fields.
    Truncated,
    /// Neither RESET (0) nor PATCH (1).
    UnknownVariant(u8),
    /// TABLE_LENGTH is not a power of two between 2 and 2^24.
    BadTableLength,
    /// ENTRY_BITS is not 4 or 8.
    BadEntryBits,
    /// A PATCH before any RESET, out of sequence, or with more entries than the table.
    Sequence,
    /// A ZLIB-compressed patch (not inflated here; see the module documentation).
    Compressed,
}

impl fmt::Display for QrpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QrpError::Truncated => f.write_str("QRP message truncated"),
            QrpError::UnknownVariant(v) => write!(f, "unknown QRP variant {v}"),
            QrpError::BadTableLength => f.write_str("QRP table length not a power of two"),
            QrpError::BadEntryBits => f.write_str("QRP entry bits not 4 or 8"),
            QrpError::Sequence => f.write_str("QRP patch out of sequence"),
            QrpError::Compressed => f.write_str("compressed QRP patches are not supported"),
        }
    }
}

impl core::error::Error for QrpError {}

/// A ROUTE_TABLE_UPDATE payload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Update<'a> {
    /// Variant 0: the table is now `table_len` entries of `infinity`.
    Reset {
        /// Entries, a power of two.
        table_len: u32,
        /// The value meaning "no file".
        infinity: u8,
    },
    /// Variant 1: one message of a patch sequence.
    Patch {
        /// This message's position, from 1.
        seq_no: u8,
        /// Messages in the sequence.
        seq_size: u8,
        /// 0 none, 1 ZLIB.
        compressor: u8,
        /// Bits per entry, 4 or 8.
        entry_bits: u8,
        /// The (compressed) signed entries.
        data: &'a [u8],
    },
}

impl<'a> Update<'a> {
    /// Reads a payload.
    pub fn decode(p: &'a [u8]) -> Result<Self, QrpError> {
        match *p {
            [0, a, b, c, d, infinity, ..] => Ok(Update::Reset {
                table_len: u32::from_le_bytes([a, b, c, d]),
                infinity,
            }),
            [1, seq_no, seq_size, compressor, entry_bits, ref data @ ..] => Ok(Update::Patch {
                seq_no,
                seq_size,
                compressor,
                entry_bits,
                data,
            }),
            [0 | 1, ..] | [] => Err(QrpError::Truncated),
            [v, ..] => Err(QrpError::UnknownVariant(v)),
        }
    }

    /// Writes the payload at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WriteError> {
        let mut n = 0;
        match self {
            Update::Reset {
                table_len,
                infinity,
            } => put(out, &mut n, &[&[0], &table_len.to_le_bytes(), &[*infinity]])?,
            Update::Patch {
                seq_no,
                seq_size,
                compressor,
                entry_bits,
                data,
            } => put(
                out,
                &mut n,
                &[&[1, *seq_no, *seq_size, *compressor, *entry_bits], data],
            )?,
        }
        Ok(n)
    }
}

/// A query route table as presence bits over [`TABLE_BITS`] slots: a leaf's own (built from
/// its keywords and sent with [`QueryRouteTable::updates`]) or the one an ultrapeer keeps
/// for a leaf (fed with [`QueryRouteTable::apply`]).
#[derive(Clone)]
pub struct QueryRouteTable {
    bits: [u8; TABLE_BYTES],
    /// Set by RESET: the sender's table size (log2) and infinity.
    sender: Option<(u8, u8)>,
    /// The patch sequence in progress: next SEQ_NO, SEQ_SIZE, entries consumed.
    seq: (u8, u8, u32),
    /// A whole patch sequence has been applied since the last RESET.
    complete: bool,
}

impl Default for QueryRouteTable {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for QueryRouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryRouteTable")
            .field("slots_set", &self.len())
            .field("complete", &self.complete)
            .finish()
    }
}

impl QueryRouteTable {
    /// An empty table, not yet complete.
    pub const fn new() -> Self {
        QueryRouteTable {
            bits: [0; TABLE_BYTES],
            sender: None,
            seq: (1, 0, 0),
            complete: false,
        }
    }

    fn set(&mut self, slot: usize, on: bool) {
        let (byte, bit) = (slot / 8, 1 << (slot % 8));
        if on {
            self.bits[byte] |= bit;
        } else {
            self.bits[byte] &= !bit;
        }
    }

    fn get(&self, slot: u32) -> bool {
        let slot = slot as usize;
        self.bits[slot / 8] & (1 << (slot % 8)) != 0
    }

    /// Adds a keyword (a leaf building its own table).
    pub fn insert(&mut self, word: &[u8]) {
        self.set(hash(word, TABLE_BITS) as usize, true);
        self.complete = true;
    }

    /// Adds every keyword of `name`, and the file's `urn:sha1:` name when it has one (as
    /// LimeWire's tables do, so queries by hash reach the leaf too).
    pub fn insert_file(&mut self, name: &[u8], sha1: Option<&[u8; 20]>) {
        for w in keywords(name) {
            self.insert(w);
        }
        if let Some(s) = sha1 {
            let mut text = [0u8; urn::SHA1_URN_LEN];
            if urn::write_sha1(s, &mut text).is_ok() {
                self.insert(&text);
            }
        }
    }

    /// Slots set.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Whether no slot is set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a whole table has arrived since the last RESET. Until then the document
    /// advises forwarding every query ([`QueryRouteTable::may_match`] says yes).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether a query may match: every keyword of `criteria` and every `urn:sha1:` in
    /// `urns` is in the table (no false negatives; false positives where hashes collide).
    /// Always yes while the table is incomplete.
    pub fn may_match<'u>(
        &self,
        criteria: &[u8],
        urns: impl IntoIterator<Item = &'u [u8; 20]>,
    ) -> bool {
        if !self.complete {
            return true;
        }
        let words = keywords(criteria).all(|w| self.get(hash(w, TABLE_BITS)));
        words
            && urns.into_iter().all(|s| {
                let mut text = [0u8; urn::SHA1_URN_LEN];
                urn::write_sha1(s, &mut text).is_ok() && self.get(hash(&text, TABLE_BITS))
            })
    }

    /// Applies an update received from a leaf. An error leaves the table incomplete (every
    /// query passes) until the next RESET.
    pub fn apply(&mut self, update: &Update<'_>) -> Result<(), QrpError> {
        let r = self.try_apply(update);
        if r.is_err() {
            self.complete = false;
            self.sender = None;
        }
        r
    }

    fn try_apply(&mut self, update: &Update<'_>) -> Result<(), QrpError> {
        match *update {
            Update::Reset {
                table_len,
                infinity,
            } => {
                if !table_len.is_power_of_two() || !(2..=1 << MAX_TABLE_LOG).contains(&table_len) {
                    return Err(QrpError::BadTableLength);
                }
                self.bits = [0; TABLE_BYTES];
                self.sender = Some((table_len.trailing_zeros() as u8, infinity));
                self.seq = (1, 0, 0);
                self.complete = false;
                Ok(())
            }
            Update::Patch {
                seq_no,
                seq_size,
                compressor,
                entry_bits,
                data,
            } => {
                let (log, infinity) = self.sender.ok_or(QrpError::Sequence)?;
                let (next, size, at) = self.seq;
                if seq_no != next || (seq_no > 1 && seq_size != size) || seq_no > seq_size {
                    return Err(QrpError::Sequence);
                }
                if compressor != 0 {
                    return Err(QrpError::Compressed);
                }
                let per_byte = match entry_bits {
                    4 => 2,
                    8 => 1,
                    _ => return Err(QrpError::BadEntryBits),
                };
                let entries = data.len() as u32 * per_byte;
                let end = at.checked_add(entries).ok_or(QrpError::Sequence)?;
                if end > 1 << log {
                    return Err(QrpError::Sequence);
                }
                for (k, &byte) in data.iter().enumerate() {
                    let first = at + k as u32 * per_byte;
                    if per_byte == 2 {
                        self.patch_entry(log, infinity, first, (byte as i8) >> 4);
                        self.patch_entry(log, infinity, first + 1, ((byte << 4) as i8) >> 4);
                    } else {
                        self.patch_entry(log, infinity, first, byte as i8);
                    }
                }
                self.seq = if seq_no == seq_size {
                    self.complete = true;
                    (1, 0, 0)
                } else {
                    (seq_no + 1, seq_size, end)
                };
                Ok(())
            }
        }
    }

    /// Entry `i` of the sender's `2^log`-entry table changed by `delta`. A decrease means
    /// the entry is now below infinity: present. An increase from the distance 1 a leaf
    /// announces up to infinity clears it, unless the sender's table is larger than ours
    /// and several of its entries share our slot (then the slot stays set: a false
    /// positive, never a false negative).
    fn patch_entry(&mut self, log: u8, infinity: u8, i: u32, delta: i8) {
        if delta == 0 {
            return;
        }
        let (first, count) = if log >= TABLE_BITS {
            ((i >> (log - TABLE_BITS)) as usize, 1)
        } else {
            let span = 1usize << (TABLE_BITS - log);
            (i as usize * span, span)
        };
        let on = if delta < 0 {
            true
        } else if log <= TABLE_BITS && 1 + i16::from(delta) >= i16::from(infinity) {
            false
        } else {
            return;
        };
        for slot in first..first + count {
            self.set(slot, on);
        }
    }

    /// The messages that send this table from scratch: a RESET, then PATCH messages of
    /// 4-bit entries (`INFINITY - 1` where a slot is set), uncompressed. Calls `send` with
    /// each payload; stops at the first error.
    pub fn updates<E>(
        &self,
        scratch: &mut [u8],
        mut send: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), UpdatesError<E>> {
        let reset = Update::Reset {
            table_len: SLOTS as u32,
            infinity: INFINITY,
        };
        let n = reset.write(scratch).map_err(UpdatesError::Write)?;
        send(&scratch[..n]).map_err(UpdatesError::Send)?;
        let delta = (1i8 - INFINITY as i8) as u8 & 0x0F;
        let nibbles = SLOTS / 2;
        let seq_size = nibbles.div_ceil(PATCH_CHUNK) as u8;
        let mut data = [0u8; PATCH_CHUNK];
        for (k, chunk) in (0..nibbles).step_by(PATCH_CHUNK).enumerate() {
            let len = PATCH_CHUNK.min(nibbles - chunk);
            for (j, d) in data[..len].iter_mut().enumerate() {
                let slot = 2 * (chunk + j) as u32;
                let hi = if self.get(slot) { delta << 4 } else { 0 };
                let lo = if self.get(slot + 1) { delta } else { 0 };
                *d = hi | lo;
            }
            let patch = Update::Patch {
                seq_no: k as u8 + 1,
                seq_size,
                compressor: 0,
                entry_bits: 4,
                data: &data[..len],
            };
            let n = patch.write(scratch).map_err(UpdatesError::Write)?;
            send(&scratch[..n]).map_err(UpdatesError::Send)?;
        }
        Ok(())
    }
}

/// Why [`QueryRouteTable::updates`] stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UpdatesError<E> {
    /// The scratch buffer is too small.
    Write(WriteError),
    /// `send` failed.
    Send(E),
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Appendix A's unit tests of the reference HashFunction, all of them.
    #[test]
    fn hash_matches_appendix_a_vectors() {
        let cases: &[(&str, u8, u32)] = &[
            ("", 13, 0),
            ("eb", 13, 6791),
            ("ebc", 13, 7082),
            ("ebck", 13, 6698),
            ("ebckl", 13, 3179),
            ("ebcklm", 13, 3235),
            ("ebcklme", 13, 6438),
            ("ebcklmen", 13, 1062),
            ("ebcklmenq", 13, 3527),
            ("", 16, 0),
            ("n", 16, 65003),
            ("nd", 16, 54193),
            ("ndf", 16, 4953),
            ("ndfl", 16, 58201),
            ("ndfla", 16, 34830),
            ("ndflal", 16, 36910),
            ("ndflale", 16, 34586),
            ("ndflalem", 16, 37658),
            ("ndflaleme", 16, 45559),
            ("ol2j34lj", 10, 318),
            ("asdfas23", 10, 503),
            ("9um3o34fd", 10, 758),
            ("a234d", 10, 281),
            ("a3f", 10, 767),
            ("3nja9", 10, 581),
            ("2459345938032343", 10, 146),
            ("7777a88a8a8a8", 10, 342),
            ("asdfjklkj3k", 10, 861),
            ("adfk32l", 10, 1011),
            ("zzzzzzzzzzz", 10, 944),
            // 2. Case tests.
            ("3NJA9", 10, 581),
            ("3nJa9", 10, 581),
        ];
        for &(word, bits, want) in cases {
            assert_eq!(hash(word.as_bytes(), bits), want, "hash({word:?}, {bits})");
        }
        // Appendix B's small tables: "test" hashes to 2 and "qrp" to 7 of 8.
        assert_eq!(hash(b"test", 3), 2);
        assert_eq!(hash(b"qrp", 3), 7);
    }

    /// Appendix B, examples 1 (8-bit entries) and 2 and 3 (4-bit, split): the payloads
    /// after the 23-byte header, applied in order, and the table they leave. The text says
    /// "qrp" hashes to 7 (Appendix A's function agrees, see above), but the bytes printed
    /// put its entry at index 6 in all three examples; we apply the bytes as printed and
    /// look at the entries they name.
    #[test]
    fn appendix_b_patch_examples_apply() {
        let reset = [0u8, 8, 0, 0, 0, 7];
        let examples: &[&[&[u8]]] = &[
            // Example 1: "test", then "qrp" added, then "test" removed.
            &[&[1, 1, 1, 0, 8, 0, 0, 0xfa, 0, 0, 0, 0, 0]],
            &[&[1, 1, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0xfa, 0]],
            &[&[1, 1, 1, 0, 8, 0, 0, 6, 0, 0, 0, 0, 0]],
        ];
        let nibbles: &[&[&[u8]]] = &[
            &[&[1, 1, 1, 0, 4, 0, 0xa0, 0, 0]],
            &[&[1, 1, 1, 0, 4, 0, 0, 0, 0xa0]],
            &[&[1, 1, 1, 0, 4, 0, 0x60, 0, 0]],
        ];
        let split: &[&[&[u8]]] = &[
            &[&[1, 1, 2, 0, 4, 0, 0xa0], &[1, 2, 2, 0, 4, 0, 0]],
            &[&[1, 1, 2, 0, 4, 0, 0], &[1, 2, 2, 0, 4, 0, 0xa0]],
            &[&[1, 1, 2, 0, 4, 0, 0x60], &[1, 2, 2, 0, 4, 0, 0]],
        ];
        for steps in [examples, nibbles, split] {
            let mut t = QueryRouteTable::new();
            t.apply(&Update::decode(&reset).unwrap()).unwrap();
            assert!(!t.is_complete());
            let mut seen = Vec::new();
            for step in steps {
                for msg in *step {
                    let u = Update::decode(msg).unwrap();
                    let mut out = [0u8; 16];
                    let n = u.write(&mut out).unwrap();
                    assert_eq!(&out[..n], *msg, "re-encoding is byte-exact");
                    t.apply(&u).unwrap();
                }
                assert!(t.is_complete());
                // Entry i of an 8-entry table covers our slots i * 1024 .. (i + 1) * 1024.
                seen.push((t.get(2 * 1024), t.get(6 * 1024)));
                assert!(t.may_match(b"test", []) == t.get(2 * 1024));
            }
            assert_eq!(seen, [(true, false), (true, true), (false, true)]);
        }
    }

    #[test]
    fn updates_round_trip_into_an_ultrapeers_table() {
        let mut leaf = QueryRouteTable::new();
        // Not a repeating pattern: the QRP hash XORs 4-byte words, so a base32 text with an
        // 8-character period (any hash of 20 equal bytes) cancels out.
        let sha1: [u8; 20] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let other: [u8; 20] = core::array::from_fn(|i| (i * 53 + 5) as u8);
        leaf.insert_file(b"Free_Software-Song.ogg", Some(&sha1));
        let mut up = QueryRouteTable::new();
        let mut scratch = [0u8; 2048];
        let mut messages = 0;
        leaf.updates::<()>(&mut scratch, |p| {
            messages += 1;
            up.apply(&Update::decode(p).unwrap()).unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(messages, 1 + 4, "a RESET and four 1 KiB patches");
        assert!(up.is_complete());
        assert_eq!(up.len(), leaf.len());
        assert!(up.may_match(b"free song", []));
        assert!(up.may_match(b"SOFTWARE", [&sha1]));
        assert!(!up.may_match(b"free jazz", []));
        assert!(!up.may_match(b"", [&other]));
    }

    #[test]
    fn smaller_and_larger_sender_tables_scale() {
        // A 16-slot sender: its entry covers 512 of our slots.
        let mut up = QueryRouteTable::new();
        up.apply(&Update::Reset {
            table_len: 16,
            infinity: 7,
        })
        .unwrap();
        let h = hash(b"jazz", 4) as usize;
        let mut data = [0u8; 8];
        data[h / 2] = if h.is_multiple_of(2) { 0xa0 } else { 0x0a };
        let patch = Update::Patch {
            seq_no: 1,
            seq_size: 1,
            compressor: 0,
            entry_bits: 4,
            data: &data,
        };
        up.apply(&patch).unwrap();
        assert!(up.may_match(b"jazz", []));
        assert_eq!(up.len(), 512);
        // A 2^16-slot sender with 8-bit entries: folded onto ours.
        let mut up = QueryRouteTable::new();
        up.apply(&Update::Reset {
            table_len: 1 << 16,
            infinity: 7,
        })
        .unwrap();
        let mut data = std::vec![0u8; 1 << 16];
        data[hash(b"jazz", 16) as usize] = 0xfa;
        for (k, chunk) in data.chunks(4096).enumerate() {
            let patch = Update::Patch {
                seq_no: k as u8 + 1,
                seq_size: 16,
                compressor: 0,
                entry_bits: 8,
                data: chunk,
            };
            up.apply(&patch).unwrap();
        }
        assert!(up.may_match(b"jazz", []));
        assert_eq!(up.len(), 1);
    }

    #[test]
    fn bad_updates_are_refused_and_leave_the_table_open() {
        let mut t = QueryRouteTable::new();
        let patch = |seq_no, seq_size| Update::Patch {
            seq_no,
            seq_size,
            compressor: 0,
            entry_bits: 4,
            data: &[0; 4],
        };
        assert_eq!(t.apply(&patch(1, 1)), Err(QrpError::Sequence), "no RESET");
        let reset = |table_len| Update::Reset {
            table_len,
            infinity: 7,
        };
        assert_eq!(t.apply(&reset(12)), Err(QrpError::BadTableLength));
        assert_eq!(t.apply(&reset(0)), Err(QrpError::BadTableLength));
        t.apply(&reset(8)).unwrap();
        assert_eq!(t.apply(&patch(2, 2)), Err(QrpError::Sequence), "skipped 1");
        t.apply(&reset(8)).unwrap();
        t.apply(&patch(1, 2)).unwrap();
        assert_eq!(
            t.apply(&patch(2, 2)),
            Err(QrpError::Sequence),
            "past 8 entries"
        );
        assert!(t.may_match(b"anything", []), "an open table passes all");
        t.apply(&reset(8)).unwrap();
        let zlib = Update::Patch {
            seq_no: 1,
            seq_size: 1,
            compressor: 1,
            entry_bits: 4,
            data: &[0x78, 0x9c],
        };
        assert_eq!(t.apply(&zlib), Err(QrpError::Compressed));
        assert_eq!(Update::decode(&[]), Err(QrpError::Truncated));
        assert_eq!(Update::decode(&[0, 8, 0]), Err(QrpError::Truncated));
        assert_eq!(Update::decode(&[9, 1]), Err(QrpError::UnknownVariant(9)));
        let bits = Update::Patch {
            seq_no: 1,
            seq_size: 1,
            compressor: 0,
            entry_bits: 2,
            data: &[0],
        };
        t.apply(&reset(8)).unwrap();
        assert_eq!(t.apply(&bits), Err(QrpError::BadEntryBits));
    }
}
