//! Metainfo files (BEP 3's `.torrent`): read as a view over validated bencode, written
//! canonically into a caller's buffer.
//!
//! [`Metainfo::parse`] checks everything a downloader relies on before it returns: the
//! types of every key it exposes, that the piece hashes cover exactly the content, and that
//! no file path can escape the download directory. So the accessors and iterators cannot
//! fail afterwards, and nothing is copied: names, paths and hashes borrow the input.
//!
//! Pure v2 torrents (BEP 52) have no `pieces` and are not accepted; hybrid ones are read
//! as their v1 half. Keys this module does not interpret (`comment`, `url-list`, ...) are
//! reachable through [`Metainfo::root`] and [`Metainfo::info`].
//!
//! [`Torrent::write`] (or [`write_single`], [`write_multi`]) writes the canonical
//! encoding and parses it back, so what it returns is what a peer will read:
//!
//! ```
//! # use overlay_core::bittorrent::metainfo::{write_single, Metainfo};
//! let mut buf = [0u8; 128];
//! let pieces = [0u8; 40]; // two SHA-1 hashes: 20 bytes in pieces of 16
//! let written = write_single(&mut buf, b"a.iso", 16, &pieces, 20, Some(b"udp://t:1")).unwrap();
//! let info_hash = written.info_hash();
//! let read = Metainfo::parse(written.raw()).unwrap();
//! assert_eq!((read.info_hash(), read.piece_count()), (info_hash, 2));
//! ```

use crate::bencode::{self, BufferFull, Dict, Encoder, Limits, List, ListIter, Value};
use core::fmt;
use core::slice::ChunksExact;
use sha1::{Digest, Sha1};

/// Bytes in one piece hash (SHA-1), and in the info hash.
pub const HASH_LEN: usize = 20;

/// Why bytes are not a metainfo file this module can use.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MetainfoError {
    /// Not valid bencode.
    Bencode(bencode::Error),
    /// Valid bencode, but the top level is not a dict.
    NotADict,
    /// A required key is absent (single-file torrents without `files` need `length`).
    MissingKey(&'static str),
    /// A key holds the wrong type, or a negative size.
    WrongType(&'static str),
    /// A key holds a value of the right type that still cannot be used: a zero piece
    /// length, an empty `files` list, or both `length` and `files`.
    BadValue(&'static str),
    /// `pieces` is not a whole number of hashes, or not one hash per piece of the content
    /// (`ceil(total length / piece length)`), or the total length overflows.
    InconsistentSizes,
    /// A name or path component that could leave the download directory or name no file:
    /// empty, `.`, `..`, or containing `/`, `\` or NUL (an absolute path has one of these).
    BadPath,
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetainfoError::Bencode(e) => write!(f, "metainfo is not bencode: {e}"),
            MetainfoError::NotADict => f.write_str("metainfo is not a dictionary"),
            MetainfoError::MissingKey(k) => write!(f, "metainfo lacks `{k}`"),
            MetainfoError::WrongType(k) => write!(f, "metainfo `{k}` has the wrong type"),
            MetainfoError::BadValue(k) => write!(f, "metainfo `{k}` has an unusable value"),
            MetainfoError::InconsistentSizes => {
                f.write_str("metainfo piece hashes do not match its length")
            }
            MetainfoError::BadPath => f.write_str("metainfo names an unsafe path"),
        }
    }
}

impl core::error::Error for MetainfoError {}

/// A validated metainfo file, borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Metainfo<'a> {
    root: Dict<'a>,
    info: Dict<'a>,
    info_hash: [u8; HASH_LEN],
    name: &'a [u8],
    piece_length: u64,
    pieces: &'a [u8],
    /// `None` in single-file mode.
    files: Option<List<'a>>,
    total_length: u64,
    private: bool,
}

impl<'a> Metainfo<'a> {
    /// Parses and validates a metainfo file of at most [`Limits::DEFAULT`] (1 MiB).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MetainfoError> {
        Self::parse_with(bytes, Limits::DEFAULT)
    }

    /// Parses and validates a metainfo file under the caller's limits: torrents of very
    /// large content carry more than 1 MiB of piece hashes.
    pub fn parse_with(bytes: &'a [u8], limits: Limits) -> Result<Self, MetainfoError> {
        use MetainfoError::*;
        let root = bencode::decode_with(bytes, limits).map_err(Bencode)?;
        let root = root.as_dict().ok_or(NotADict)?;
        if let Some(announce) = root.get(b"announce") {
            announce.as_bytes().ok_or(WrongType("announce"))?;
        }
        if let Some(tiers) = root.get(b"announce-list") {
            check_tiers(tiers)?;
        }
        let info_value = root.get(b"info").ok_or(MissingKey("info"))?;
        let info = info_value.as_dict().ok_or(WrongType("info"))?;

        let name = bytes_at(&info, "name")?;
        check_component(name)?;
        let piece_length = size_at(&info, "piece length")?;
        if piece_length == 0 {
            return Err(BadValue("piece length"));
        }
        let pieces = bytes_at(&info, "pieces")?;
        // BEP 27 says `private=1`; any other non-zero value is read as private too, since
        // leaking a private torrent to the DHT is the worse mistake.
        let private = match info.get(b"private") {
            None => false,
            Some(v) => v.as_int().ok_or(WrongType("private"))? != 0,
        };
        let (files, total_length) = match (info.get(b"files"), info.get(b"length")) {
            (Some(_), Some(_)) => return Err(BadValue("length")),
            (None, None) => return Err(MissingKey("length")),
            (None, Some(length)) => (None, size_of(length, "length")?),
            (Some(files), None) => {
                let files = files.as_list().ok_or(WrongType("files"))?;
                (Some(files), check_files(files)?)
            }
        };
        let whole = pieces.len().is_multiple_of(HASH_LEN);
        let count = (pieces.len() / HASH_LEN) as u64;
        if !whole || count != total_length.div_ceil(piece_length) {
            return Err(InconsistentSizes);
        }
        Ok(Metainfo {
            root,
            info,
            info_hash: Sha1::digest(info_value.raw()).into(),
            name,
            piece_length,
            pieces,
            files,
            total_length,
            private,
        })
    }

    /// The whole file, byte for byte.
    pub fn raw(&self) -> &'a [u8] {
        self.root.raw()
    }

    /// The top-level dict, for keys this module does not interpret.
    pub fn root(&self) -> Dict<'a> {
        self.root
    }

    /// The `info` dict, for keys this module does not interpret.
    pub fn info(&self) -> Dict<'a> {
        self.info
    }

    /// SHA-1 of the exact bytes of the `info` value, as encoded in the file (even if its
    /// keys are unsorted): the torrent's identity in the swarm and the DHT.
    pub fn info_hash(&self) -> [u8; HASH_LEN] {
        self.info_hash
    }

    /// The main tracker's URL, if any (trackerless torrents rely on the DHT).
    pub fn announce(&self) -> Option<&'a [u8]> {
        self.root.get_bytes(b"announce")
    }

    /// BEP 12's tiers of tracker URLs, in order (empty without `announce-list`).
    pub fn announce_list(&self) -> Tiers<'a> {
        Tiers(self.root.get_list(b"announce-list").map(|l| l.iter()))
    }

    /// The suggested name: of the file in single-file mode, of the directory holding the
    /// files in multi-file mode. Checked to be one safe path component.
    pub fn name(&self) -> &'a [u8] {
        self.name
    }

    /// Bytes per piece (the last piece may be shorter).
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// How many pieces the content has.
    pub fn piece_count(&self) -> usize {
        self.pieces.len() / HASH_LEN
    }

    /// The SHA-1 of each piece, in order.
    pub fn piece_hashes(&self) -> ChunksExact<'a, u8> {
        self.pieces.chunks_exact(HASH_LEN)
    }

    /// The SHA-1 of piece `index`, if there is such a piece.
    pub fn piece_hash(&self, index: usize) -> Option<[u8; HASH_LEN]> {
        let start = index.checked_mul(HASH_LEN)?;
        let hash = self.pieces.get(start..start.checked_add(HASH_LEN)?)?;
        hash.try_into().ok()
    }

    /// The size of piece `index`: the piece length, except for a shorter last piece.
    pub fn piece_size(&self, index: usize) -> Option<u64> {
        let start = (index as u64).checked_mul(self.piece_length)?;
        if index >= self.piece_count() {
            return None;
        }
        Some((self.total_length - start).min(self.piece_length))
    }

    /// Whether the content is a single file (`length`) rather than a directory (`files`).
    pub fn is_single_file(&self) -> bool {
        self.files.is_none()
    }

    /// BEP 27: peers come only from the trackers (no DHT, no peer exchange).
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The content's size: the sum of the files' lengths.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// The files, in order, each with its offset in the content (the concatenation that
    /// pieces are cut from). A single-file torrent yields one file whose path is the name.
    pub fn files(&self) -> Files<'a> {
        let repr = match self.files {
            Some(list) => FilesRepr::Multi(list.iter()),
            None => FilesRepr::Single(Some(File {
                path: Path(PathRepr::Name(self.name)),
                length: self.total_length,
                offset: 0,
            })),
        };
        Files { repr, offset: 0 }
    }
}

/// BEP 12's tiers of trackers: an iterator of [`Trackers`].
#[derive(Clone, Debug)]
pub struct Tiers<'a>(Option<ListIter<'a>>);

impl<'a> Iterator for Tiers<'a> {
    type Item = Trackers<'a>;
    fn next(&mut self) -> Option<Trackers<'a>> {
        let tier = self.0.as_mut()?.next()?;
        tier.as_list().map(|l| Trackers(l.iter()))
    }
}

/// The tracker URLs of one tier, in the file's order (BEP 12 asks clients to shuffle it
/// once).
#[derive(Clone, Debug)]
pub struct Trackers<'a>(ListIter<'a>);

impl<'a> Iterator for Trackers<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next()?.as_bytes()
    }
}

/// One file of the content.
#[derive(Clone, Copy, Debug)]
pub struct File<'a> {
    /// Where the file goes, below the directory [`Metainfo::name`] in multi-file mode.
    pub path: Path<'a>,
    /// Its size in bytes.
    pub length: u64,
    /// Where its bytes start in the content.
    pub offset: u64,
}

/// A file's path: validated components, none of which can leave the download directory.
#[derive(Clone, Copy, Debug)]
pub struct Path<'a>(PathRepr<'a>);

#[derive(Clone, Copy, Debug)]
enum PathRepr<'a> {
    /// Single-file mode: the torrent's name.
    Name(&'a [u8]),
    /// Multi-file mode: the `path` list.
    List(List<'a>),
}

impl<'a> Path<'a> {
    /// The components, outermost first.
    pub fn components(&self) -> Components<'a> {
        Components(match self.0 {
            PathRepr::Name(name) => ComponentsRepr::Name(Some(name)),
            PathRepr::List(list) => ComponentsRepr::List(list.iter()),
        })
    }
}

impl<'a> IntoIterator for Path<'a> {
    type Item = &'a [u8];
    type IntoIter = Components<'a>;
    fn into_iter(self) -> Components<'a> {
        self.components()
    }
}

/// The components of a [`Path`].
#[derive(Clone, Debug)]
pub struct Components<'a>(ComponentsRepr<'a>);

#[derive(Clone, Debug)]
enum ComponentsRepr<'a> {
    Name(Option<&'a [u8]>),
    List(ListIter<'a>),
}

impl<'a> Iterator for Components<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            ComponentsRepr::Name(name) => name.take(),
            ComponentsRepr::List(list) => list.next()?.as_bytes(),
        }
    }
}

/// The files of a torrent, with their offsets: see [`Metainfo::files`].
#[derive(Clone, Debug)]
pub struct Files<'a> {
    repr: FilesRepr<'a>,
    offset: u64,
}

#[derive(Clone, Debug)]
enum FilesRepr<'a> {
    Single(Option<File<'a>>),
    Multi(ListIter<'a>),
}

impl<'a> Iterator for Files<'a> {
    type Item = File<'a>;
    fn next(&mut self) -> Option<File<'a>> {
        let list = match &mut self.repr {
            FilesRepr::Single(file) => return file.take(),
            FilesRepr::Multi(list) => list,
        };
        // Validated by `parse`: every entry is a dict with a size and a path list.
        let entry = list.next()?.as_dict()?;
        let length = u64::try_from(entry.get_int(b"length")?).ok()?;
        let path = Path(PathRepr::List(entry.get_list(b"path")?));
        let offset = self.offset;
        self.offset = offset.saturating_add(length);
        Some(File {
            path,
            length,
            offset,
        })
    }
}

fn bytes_at<'a>(dict: &Dict<'a>, key: &'static str) -> Result<&'a [u8], MetainfoError> {
    let value = dict
        .get(key.as_bytes())
        .ok_or(MetainfoError::MissingKey(key))?;
    value.as_bytes().ok_or(MetainfoError::WrongType(key))
}

fn size_at(dict: &Dict<'_>, key: &'static str) -> Result<u64, MetainfoError> {
    let value = dict
        .get(key.as_bytes())
        .ok_or(MetainfoError::MissingKey(key))?;
    size_of(value, key)
}

/// A size: a non-negative integer.
fn size_of(value: Value<'_>, key: &'static str) -> Result<u64, MetainfoError> {
    let n = value.as_int().ok_or(MetainfoError::WrongType(key))?;
    u64::try_from(n).map_err(|_| MetainfoError::WrongType(key))
}

/// BEP 12: a list of tiers, each a list of URL strings.
fn check_tiers(tiers: Value<'_>) -> Result<(), MetainfoError> {
    let wrong = MetainfoError::WrongType("announce-list");
    for tier in tiers.as_list().ok_or(wrong)? {
        for url in tier.as_list().ok_or(wrong)? {
            url.as_bytes().ok_or(wrong)?;
        }
    }
    Ok(())
}

/// Checks every entry of `files` and returns the total length.
fn check_files(files: List<'_>) -> Result<u64, MetainfoError> {
    use MetainfoError::*;
    if files.is_empty() {
        return Err(BadValue("files"));
    }
    let mut total = 0u64;
    for entry in files {
        let entry = entry.as_dict().ok_or(WrongType("files"))?;
        let length = size_at(&entry, "length")?;
        let path = entry.get(b"path").ok_or(MissingKey("path"))?;
        let path = path.as_list().ok_or(WrongType("path"))?;
        if path.is_empty() {
            return Err(BadPath);
        }
        for component in path {
            check_component(component.as_bytes().ok_or(WrongType("path"))?)?;
        }
        total = total.checked_add(length).ok_or(InconsistentSizes)?;
    }
    Ok(total)
}

/// One path component that names an entry inside its directory on every common file
/// system: a separator or `..` would let a torrent write outside the download directory.
fn check_component(component: &[u8]) -> Result<(), MetainfoError> {
    let unsafe_byte = component.iter().any(|b| matches!(b, b'/' | b'\\' | 0));
    if component.is_empty() || component == b"." || component == b".." || unsafe_byte {
        return Err(MetainfoError::BadPath);
    }
    Ok(())
}

/// Why a metainfo file could not be written.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteError {
    /// The caller's buffer is too small.
    BufferFull,
    /// A size above `i64::MAX`, which bencode integers cannot carry.
    TooLarge,
    /// What was written does not parse back: the reason [`Metainfo::parse`] gives (a bad
    /// path, piece hashes that do not match the length, ...).
    Invalid(MetainfoError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::BufferFull => f.write_str("metainfo output buffer full"),
            WriteError::TooLarge => f.write_str("metainfo size above i64::MAX"),
            WriteError::Invalid(e) => write!(f, "invalid metainfo: {e}"),
        }
    }
}

impl core::error::Error for WriteError {}

impl From<BufferFull> for WriteError {
    fn from(_: BufferFull) -> Self {
        WriteError::BufferFull
    }
}

/// What a metainfo file says, for [`Torrent::write`].
#[derive(Clone, Copy, Debug)]
pub struct Torrent<'x> {
    /// The main tracker's URL.
    pub announce: Option<&'x [u8]>,
    /// BEP 12 tiers of tracker URLs; written only when not empty.
    pub announce_list: &'x [&'x [&'x [u8]]],
    /// The file's or directory's name.
    pub name: &'x [u8],
    /// Bytes per piece.
    pub piece_length: u64,
    /// The concatenated SHA-1 hashes of the pieces.
    pub pieces: &'x [u8],
    /// One file or several.
    pub content: Content<'x>,
    /// BEP 27's private flag; written only when set.
    pub private: bool,
}

/// The shape of a torrent's content.
#[derive(Clone, Copy, Debug)]
pub enum Content<'x> {
    /// One file of this many bytes, named by the torrent's name.
    Single {
        /// Its size.
        length: u64,
    },
    /// A directory, named by the torrent's name, holding these files in this order.
    Multi(&'x [FileSpec<'x>]),
}

/// One file of a multi-file torrent, for [`Content::Multi`].
#[derive(Clone, Copy, Debug)]
pub struct FileSpec<'x> {
    /// Its path below the torrent's directory, outermost component first.
    pub path: &'x [&'x [u8]],
    /// Its size.
    pub length: u64,
}

/// Bounds the re-parse of our own output only by the buffer it is in.
const WRITTEN: Limits = Limits {
    max_depth: Limits::DEFAULT.max_depth,
    max_len: usize::MAX,
};

impl Torrent<'_> {
    /// Writes the canonical encoding (keys sorted, BEP 3) at the start of `out` and
    /// returns it parsed: [`Metainfo::raw`] is the file and [`Metainfo::info_hash`] its
    /// hash. Parsing our own output means only valid torrents are ever written.
    pub fn write<'b>(&self, out: &'b mut [u8]) -> Result<Metainfo<'b>, WriteError> {
        let mut e = Encoder::new(out);
        e.dict()?;
        if let Some(announce) = self.announce {
            e.str("announce")?.bytes(announce)?;
        }
        if !self.announce_list.is_empty() {
            e.str("announce-list")?.list()?;
            for tier in self.announce_list {
                e.list()?;
                for url in *tier {
                    e.bytes(url)?;
                }
                e.end()?;
            }
            e.end()?;
        }
        e.str("info")?.dict()?;
        match self.content {
            Content::Single { length } => {
                e.str("length")?.int(int(length)?)?;
            }
            Content::Multi(files) => {
                e.str("files")?.list()?;
                for file in files {
                    e.dict()?.str("length")?.int(int(file.length)?)?;
                    e.str("path")?.list()?;
                    for component in file.path {
                        e.bytes(component)?;
                    }
                    e.end()?.end()?;
                }
                e.end()?;
            }
        }
        e.str("name")?.bytes(self.name)?;
        e.str("piece length")?.int(int(self.piece_length)?)?;
        e.str("pieces")?.bytes(self.pieces)?;
        if self.private {
            e.str("private")?.int(1)?;
        }
        e.end()?.end()?;
        Metainfo::parse_with(e.finish()?, WRITTEN).map_err(WriteError::Invalid)
    }
}

fn int(size: u64) -> Result<i64, WriteError> {
    i64::try_from(size).map_err(|_| WriteError::TooLarge)
}

/// Writes a single-file torrent: see [`Torrent::write`].
pub fn write_single<'b>(
    out: &'b mut [u8],
    name: &[u8],
    piece_length: u64,
    pieces: &[u8],
    length: u64,
    announce: Option<&[u8]>,
) -> Result<Metainfo<'b>, WriteError> {
    Torrent {
        announce,
        announce_list: &[],
        name,
        piece_length,
        pieces,
        content: Content::Single { length },
        private: false,
    }
    .write(out)
}

/// Writes a multi-file torrent: see [`Torrent::write`].
pub fn write_multi<'b>(
    out: &'b mut [u8],
    name: &[u8],
    piece_length: u64,
    pieces: &[u8],
    files: &[FileSpec<'_>],
    announce: Option<&[u8]>,
) -> Result<Metainfo<'b>, WriteError> {
    Torrent {
        announce,
        announce_list: &[],
        name,
        piece_length,
        pieces,
        content: Content::Multi(files),
        private: false,
    }
    .write(out)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A single-file torrent as a client would write one, with tracker tiers and the usual
    /// extra keys. Its content is `i % 251` for `i` in `0..80_000`, cut into 32 KiB pieces.
    const SAMPLE: &[u8] = b"d8:announce40:http://tracker.example.org:6969/announce13:announce-listll40:http://tracker.example.org:6969/announceel39:udp://tracker.example.net:1337/announce27:udp://backup.example.net:80ee7:comment23:hand-built BEP 3 sample10:created by7:overlay13:creation datei1700000000e4:infod6:lengthi80000e4:name15:bep3-sample.bin12:piece lengthi32768e6:pieces60:\x9d\xbeR`\x85\x8a\x0f\x96\x0c\x06*\xa8\xf8\xd3\x91O\xf5\xbd\xe2P\x90\xa4\x03\xaeP\x94r\x971i\x82+\xf5'\xe7\xa7\x01\x1d\xe7\xe9.Pj+F\x00\xc7\xd7|;+y\x08\xb03\xb7\xec\xf9\x84#ee";
    /// `hashlib.sha1(<the info dict's bytes>).hexdigest()`.
    const SAMPLE_INFO_HASH: &str = "5a1d4fc61a09cfbde715a491324bf2c827558e0f";

    /// A private multi-file torrent: `album/cd1/01.flac` (5 bytes), `album/cover.jpg` (7).
    const ALBUM: &[u8] = b"d4:infod5:filesld6:lengthi5e4:pathl3:cd17:01.flaceed6:lengthi7e4:pathl9:cover.jpgeee4:name5:album12:piece lengthi8e6:pieces40:\x11\xf6\xad\x8e\xc5*)\x84\xab\xaa\xfd|;Qe\x03x\x5c r\x95\xcb\x0b\xfd)w\xc7a)\x8d\x96$\xe4\xb4\xd4\xc7*9\x97J7:privatei1eee";
    const ALBUM_INFO_HASH: &str = "5acb97103fcdd19b6328a96caa318b84d8f38047";

    fn hex(hash: [u8; 20]) -> std::string::String {
        hash.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    fn components<'a>(file: &File<'a>) -> Vec<&'a [u8]> {
        file.path.components().collect()
    }

    /// `d4:infod<entries>ee`: a torrent whose info dict holds exactly `entries`.
    fn with_info(entries: &[&[u8]]) -> Vec<u8> {
        [&b"d4:infod"[..], &entries.concat(), b"ee"].concat()
    }

    const NAME: &[u8] = b"4:name1:f";
    const PIECE_LENGTH: &[u8] = b"12:piece lengthi4e";
    const ONE_PIECE: &[u8] = b"6:pieces20:aaaaaaaaaaaaaaaaaaaa";
    const LENGTH: &[u8] = b"6:lengthi3e";

    fn parse_info(entries: &[&[u8]]) -> Result<(), MetainfoError> {
        Metainfo::parse(&with_info(entries)).map(|_| ())
    }

    #[test]
    fn bep3_single_file_sample() {
        let m = Metainfo::parse(SAMPLE).unwrap();
        assert_eq!(hex(m.info_hash()), SAMPLE_INFO_HASH);
        assert_eq!(m.raw(), SAMPLE);
        assert_eq!(
            m.announce(),
            Some(&b"http://tracker.example.org:6969/announce"[..])
        );
        assert_eq!(m.name(), b"bep3-sample.bin");
        assert_eq!(m.piece_length(), 32768);
        assert_eq!(m.total_length(), 80_000);
        assert!(m.is_single_file());
        assert!(!m.is_private());
        assert_eq!(m.root().get_bytes(b"created by"), Some(&b"overlay"[..]));

        // The piece hashes really are SHA-1 of the content's pieces, the last one short.
        let content: Vec<u8> = (0..80_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(m.piece_count(), 3);
        for (i, chunk) in content.chunks(32768).enumerate() {
            let expected: [u8; 20] = Sha1::digest(chunk).into();
            assert_eq!(m.piece_hash(i), Some(expected));
            assert_eq!(m.piece_size(i), Some(chunk.len() as u64));
        }
        assert_eq!(m.piece_hashes().count(), 3);
        assert_eq!((m.piece_hash(3), m.piece_size(3)), (None, None));
        assert_eq!(m.piece_hash(usize::MAX), None);

        let files: Vec<File<'_>> = m.files().collect();
        assert_eq!(files.len(), 1);
        assert_eq!((files[0].offset, files[0].length), (0, 80_000));
        assert_eq!(components(&files[0]), [&b"bep3-sample.bin"[..]]);
    }

    #[test]
    fn bep12_announce_list_tiers_in_order() {
        let m = Metainfo::parse(SAMPLE).unwrap();
        let tiers: Vec<Vec<&[u8]>> = m.announce_list().map(|t| t.collect()).collect();
        assert_eq!(
            tiers,
            [
                &[&b"http://tracker.example.org:6969/announce"[..]][..],
                &[
                    &b"udp://tracker.example.net:1337/announce"[..],
                    b"udp://backup.example.net:80"
                ],
            ]
        );
        let bare = Metainfo::parse(ALBUM).unwrap();
        assert_eq!(bare.announce_list().count(), 0);
        assert_eq!(bare.announce(), None);
    }

    #[test]
    fn bep3_multi_file_offsets_and_bep27_private() {
        let m = Metainfo::parse(ALBUM).unwrap();
        assert_eq!(hex(m.info_hash()), ALBUM_INFO_HASH);
        assert!(!m.is_single_file());
        assert!(m.is_private());
        assert_eq!(m.name(), b"album");
        assert_eq!(m.total_length(), 12);
        assert_eq!(m.piece_size(1), Some(4));
        let files: Vec<File<'_>> = m.files().collect();
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].offset, files[0].length), (0, 5));
        assert_eq!(components(&files[0]), [&b"cd1"[..], b"01.flac"]);
        assert_eq!((files[1].offset, files[1].length), (5, 7));
        assert_eq!(components(&files[1]), [&b"cover.jpg"[..]]);
    }

    /// BEP 3: the info hash is over the info value "as it appears in the file", so a
    /// dict with unsorted keys hashes as sent, not as re-encoded.
    #[test]
    fn bep3_info_hash_is_over_the_bytes_as_encoded() {
        let info: &[u8] =
            b"d4:name1:f6:lengthi3e6:pieces20:aaaaaaaaaaaaaaaaaaaa12:piece lengthi4ee";
        let file = [&b"d4:info"[..], info, b"e"].concat();
        let m = Metainfo::parse(&file).unwrap();
        let expected: [u8; 20] = Sha1::digest(info).into();
        assert_eq!(m.info_hash(), expected);
        assert_eq!(m.info().raw(), info);
    }

    #[test]
    fn minimal_info_dict_parses() {
        assert_eq!(parse_info(&[LENGTH, NAME, PIECE_LENGTH, ONE_PIECE]), Ok(()));
        // Empty content has no pieces.
        assert_eq!(
            parse_info(&[b"6:lengthi0e", NAME, PIECE_LENGTH, b"6:pieces0:"]),
            Ok(())
        );
        // `private=0` is public.
        let m = with_info(&[LENGTH, NAME, PIECE_LENGTH, ONE_PIECE, b"7:privatei0e"]);
        assert!(!Metainfo::parse(&m).unwrap().is_private());
    }

    #[test]
    fn top_level_errors() {
        use MetainfoError::*;
        let parse = |b: &[u8]| Metainfo::parse(b).map(|_| ());
        assert_eq!(
            parse(b"d4:info"),
            Err(Bencode(bencode::Error::UnexpectedEnd))
        );
        assert_eq!(parse(b"li1ee"), Err(NotADict));
        assert_eq!(parse(b"d8:announce3:urle"), Err(MissingKey("info")));
        assert_eq!(parse(b"d4:infoi1ee"), Err(WrongType("info")));
        assert_eq!(
            parse(b"d8:announcei1e4:infodee"),
            Err(WrongType("announce"))
        );
        for bad in [&b"l3:urle"[..], b"3:url", b"lli1eee"] {
            let file = [&b"d13:announce-list"[..], bad, b"4:infodee"].concat();
            assert_eq!(parse(&file), Err(WrongType("announce-list")));
        }
    }

    #[test]
    fn bep3_info_key_errors() {
        use MetainfoError::*;
        let cases: &[(&[&[u8]], MetainfoError)] = &[
            (&[LENGTH, PIECE_LENGTH, ONE_PIECE], MissingKey("name")),
            (
                &[LENGTH, b"4:namei1e", PIECE_LENGTH, ONE_PIECE],
                WrongType("name"),
            ),
            (&[LENGTH, NAME, ONE_PIECE], MissingKey("piece length")),
            (
                &[LENGTH, NAME, b"12:piece length1:4", ONE_PIECE],
                WrongType("piece length"),
            ),
            (
                &[LENGTH, NAME, b"12:piece lengthi-4e", ONE_PIECE],
                WrongType("piece length"),
            ),
            (
                &[LENGTH, NAME, b"12:piece lengthi0e", ONE_PIECE],
                BadValue("piece length"),
            ),
            (&[LENGTH, NAME, PIECE_LENGTH], MissingKey("pieces")),
            (
                &[LENGTH, NAME, PIECE_LENGTH, b"6:piecesi0e"],
                WrongType("pieces"),
            ),
            (&[NAME, PIECE_LENGTH, ONE_PIECE], MissingKey("length")),
            (
                &[b"6:lengthi-3e", NAME, PIECE_LENGTH, ONE_PIECE],
                WrongType("length"),
            ),
            (
                &[b"6:length1:3", NAME, PIECE_LENGTH, ONE_PIECE],
                WrongType("length"),
            ),
            (
                &[LENGTH, NAME, PIECE_LENGTH, ONE_PIECE, b"7:private1:1"],
                WrongType("private"),
            ),
            (
                &[
                    b"5:filesld6:lengthi3e4:pathl1:aeee",
                    LENGTH,
                    NAME,
                    PIECE_LENGTH,
                    ONE_PIECE,
                ],
                BadValue("length"),
            ),
        ];
        for (entries, error) in cases {
            assert_eq!(parse_info(entries), Err(*error), "{entries:?}");
        }
    }

    #[test]
    fn bep3_files_errors() {
        use MetainfoError::*;
        let cases: &[(&[u8], MetainfoError)] = &[
            (b"5:files3:abc", WrongType("files")),
            (b"5:filesle", BadValue("files")),
            (b"5:filesli1ee", WrongType("files")),
            (b"5:filesld4:pathl1:aeee", MissingKey("length")),
            (b"5:filesld6:lengthi-1e4:pathl1:aeee", WrongType("length")),
            (b"5:filesld6:lengthi3eee", MissingKey("path")),
            (b"5:filesld6:lengthi3e4:path1:aee", WrongType("path")),
            (b"5:filesld6:lengthi3e4:pathli1eeee", WrongType("path")),
            (b"5:filesld6:lengthi3e4:pathleee", BadPath),
        ];
        for (files, error) in cases {
            assert_eq!(
                parse_info(&[files, NAME, PIECE_LENGTH, ONE_PIECE]),
                Err(*error)
            );
        }
        let ok: &[u8] = b"5:filesld6:lengthi1e4:pathl1:aeed6:lengthi2e4:pathl1:beee";
        assert_eq!(parse_info(&[ok, NAME, PIECE_LENGTH, ONE_PIECE]), Ok(()));
    }

    /// Every component that could escape the download directory, in a path or as the name.
    #[test]
    fn unsafe_paths_are_rejected() {
        let bad: [&[u8]; 9] = [
            b"0:",
            b"1:.",
            b"2:..",
            b"3:a/b",
            b"4:/etc",
            b"3:a\\b",
            b"3:a\x00b",
            b"1:/",
            b"3:C:\\",
        ];
        for component in bad {
            let files = [&b"5:filesld6:lengthi3e4:pathl1:d"[..], component, b"eee"].concat();
            let result = parse_info(&[&files, NAME, PIECE_LENGTH, ONE_PIECE]);
            assert_eq!(
                result,
                Err(MetainfoError::BadPath),
                "{}",
                component.escape_ascii()
            );
            let name = [&b"4:name"[..], component].concat();
            let result = parse_info(&[LENGTH, &name, PIECE_LENGTH, ONE_PIECE]);
            assert_eq!(
                result,
                Err(MetainfoError::BadPath),
                "{}",
                component.escape_ascii()
            );
        }
        let dotted = parse_info(&[LENGTH, b"4:name5:..a..", PIECE_LENGTH, ONE_PIECE]);
        assert_eq!(dotted, Ok(()));
    }

    /// BEP 3: `pieces` is "a string whose length is a multiple of 20", one hash per piece.
    #[test]
    fn bep3_piece_count_must_match_length() {
        let inconsistent = Err(MetainfoError::InconsistentSizes);
        let nineteen: &[u8] = b"6:pieces19:aaaaaaaaaaaaaaaaaaa";
        assert_eq!(
            parse_info(&[LENGTH, NAME, PIECE_LENGTH, nineteen]),
            inconsistent
        );
        // 5 bytes in pieces of 4 need two hashes.
        assert_eq!(
            parse_info(&[b"6:lengthi5e", NAME, PIECE_LENGTH, ONE_PIECE]),
            inconsistent
        );
        assert_eq!(
            parse_info(&[b"6:lengthi0e", NAME, PIECE_LENGTH, ONE_PIECE]),
            inconsistent
        );
        let overflow: &[u8] = b"5:filesld6:lengthi9223372036854775807e4:pathl1:aeed6:lengthi9223372036854775807e4:pathl1:aeed6:lengthi9e4:pathl1:aeee";
        assert_eq!(
            parse_info(&[overflow, NAME, PIECE_LENGTH, ONE_PIECE]),
            inconsistent
        );
    }

    #[test]
    fn write_single_is_canonical_and_round_trips() {
        let pieces = [7u8; 40];
        let mut buf = [0u8; 256];
        let m = write_single(&mut buf, b"f.iso", 16, &pieces, 17, Some(b"http://t/a")).unwrap();
        let expected = [
            &b"d8:announce10:http://t/a4:infod6:lengthi17e4:name5:f.iso12:piece lengthi16e6:pieces40:"[..],
            &pieces,
            b"ee",
        ]
        .concat();
        assert_eq!(m.raw(), expected);
        assert!(m.root().keys_sorted() && m.info().keys_sorted());
        let info = m.root().get(b"info").unwrap().raw();
        assert_eq!(m.info_hash(), <[u8; 20]>::from(Sha1::digest(info)));
        assert_eq!(
            (m.name(), m.total_length(), m.piece_count()),
            (&b"f.iso"[..], 17, 2)
        );
        assert_eq!(m.announce(), Some(&b"http://t/a"[..]));
    }

    /// Writing the album's fields gives the album's bytes, hence its info hash.
    #[test]
    fn torrent_write_reproduces_a_multi_file_vector() {
        let album = Metainfo::parse(ALBUM).unwrap();
        let files = [
            FileSpec {
                path: &[b"cd1", b"01.flac"],
                length: 5,
            },
            FileSpec {
                path: &[b"cover.jpg"],
                length: 7,
            },
        ];
        let torrent = Torrent {
            announce: None,
            announce_list: &[],
            name: b"album",
            piece_length: 8,
            pieces: album.info().get_bytes(b"pieces").unwrap(),
            content: Content::Multi(&files),
            private: true,
        };
        let mut buf = [0u8; 256];
        let m = torrent.write(&mut buf).unwrap();
        assert_eq!(m.raw(), ALBUM);
        assert_eq!(hex(m.info_hash()), ALBUM_INFO_HASH);
    }

    #[test]
    fn torrent_write_with_tiers_round_trips() {
        let tier: &[&[u8]] = &[b"udp://a:1", b"udp://b:2"];
        let files = [FileSpec {
            path: &[b"x"],
            length: 3,
        }];
        let torrent = Torrent {
            announce: Some(b"udp://a:1"),
            announce_list: &[tier, &[b"http://c/announce"]],
            name: b"dir",
            piece_length: 4,
            pieces: &[1; 20],
            content: Content::Multi(&files),
            private: false,
        };
        let mut buf = [0u8; 256];
        let m = torrent.write(&mut buf).unwrap();
        assert!(m.root().keys_sorted());
        let tiers: Vec<Vec<&[u8]>> = m.announce_list().map(|t| t.collect()).collect();
        assert_eq!(tiers, [tier, &[&b"http://c/announce"[..]]]);
        let again = Metainfo::parse(m.raw()).unwrap();
        assert_eq!(again.info_hash(), m.info_hash());
        assert_eq!(m.root().get(b"info").unwrap().raw(), m.info().raw());
    }

    #[test]
    fn writer_errors() {
        let mut buf = [0u8; 256];
        let files = [FileSpec {
            path: &[b"..", b"x"],
            length: 3,
        }];
        assert_eq!(
            write_multi(&mut buf, b"d", 4, &[0; 20], &files, None).unwrap_err(),
            WriteError::Invalid(MetainfoError::BadPath)
        );
        assert_eq!(
            write_single(&mut buf, b"f", 4, &[0; 20], 5, None).unwrap_err(),
            WriteError::Invalid(MetainfoError::InconsistentSizes)
        );
        assert_eq!(
            write_single(&mut buf, b"f", 1 << 63, &[0; 20], 5, None).unwrap_err(),
            WriteError::TooLarge
        );
        for len in 0..79 {
            assert_eq!(
                write_single(&mut buf[..len], b"f", 4, &[0; 20], 3, None).unwrap_err(),
                WriteError::BufferFull
            );
        }
        assert!(write_single(&mut buf[..79], b"f", 4, &[0; 20], 3, None).is_ok());
    }

    /// Every prefix of a valid file, and every single-byte corruption, fails cleanly or
    /// parses into something self-consistent; nothing panics.
    #[test]
    fn mangled_inputs_never_panic() {
        for end in 0..ALBUM.len() {
            assert!(Metainfo::parse(&ALBUM[..end]).is_err());
        }
        let mut bytes = ALBUM.to_vec();
        for i in 0..bytes.len() {
            for b in [0u8, b'0', b'9', b'e', b'l', b'd', b'/', b':', 0xff] {
                let old = core::mem::replace(&mut bytes[i], b);
                if let Ok(m) = Metainfo::parse(&bytes) {
                    let sum: u64 = m.files().map(|f| f.length).sum();
                    assert_eq!(sum, m.total_length());
                    for f in m.files() {
                        assert!(f.path.components().count() > 0);
                    }
                }
                bytes[i] = old;
            }
        }
    }
}
