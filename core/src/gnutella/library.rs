//! What a servent shares: the caller's index of files, and how a query matches it.
//!
//! The servent never reads files; it asks a [`Library`] for names, sizes and hashes to
//! answer queries, build its QRP table and serve HTTP requests. The driver owns the files
//! and streams their bytes when an upload starts (`Event::Upload`).

use super::qrp::keywords;

/// One shared file, as queries and downloads see it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SharedFile<'a> {
    /// Its index, stable while it is shared (query hits and `GET /get/<index>/` use it).
    pub index: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its name, without directories.
    pub name: &'a [u8],
    /// Its SHA-1 (HUGE `urn:sha1:`), if known.
    pub sha1: Option<[u8; 20]>,
}

/// The caller's index of shared files.
pub trait Library {
    /// Every shared file.
    fn files(&self) -> impl Iterator<Item = SharedFile<'_>>;

    /// The file with this index.
    fn by_index(&self, index: u32) -> Option<SharedFile<'_>> {
        self.files().find(|f| f.index == index)
    }

    /// The file with this SHA-1.
    fn by_sha1(&self, sha1: &[u8; 20]) -> Option<SharedFile<'_>> {
        self.files().find(|f| f.sha1.as_ref() == Some(sha1))
    }
}

impl Library for [SharedFile<'_>] {
    fn files(&self) -> impl Iterator<Item = SharedFile<'_>> {
        self.iter().copied()
    }
}

impl<L: Library + ?Sized> Library for &L {
    fn files(&self) -> impl Iterator<Item = SharedFile<'_>> {
        (**self).files()
    }
}

/// Whether `file` answers a query: by hash when the query names `urn:sha1:`s (any of
/// them), else when every keyword of `criteria` is a keyword of the name, ignoring ASCII
/// case (the same keywords QRP hashes, so an ultrapeer never filters out a match). A query
/// without keywords or hashes matches nothing.
pub fn matches(criteria: &[u8], sha1s: &[[u8; 20]], file: &SharedFile<'_>) -> bool {
    if !sha1s.is_empty() {
        return file.sha1.is_some_and(|s| sha1s.contains(&s));
    }
    let mut words = keywords(criteria).peekable();
    words.peek().is_some() && words.all(|w| keywords(file.name).any(|n| n.eq_ignore_ascii_case(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SONG: SharedFile<'static> = SharedFile {
        index: 3,
        size: 1000,
        name: b"Free_Software-Song.ogg",
        sha1: Some([9; 20]),
    };

    #[test]
    fn keywords_match_whole_words_in_any_case() {
        assert!(matches(b"free song", &[], &SONG));
        assert!(matches(b"SOFTWARE", &[], &SONG));
        assert!(matches(b"song, free!", &[], &SONG));
        assert!(
            !matches(b"soft", &[], &SONG),
            "whole keywords, not substrings"
        );
        assert!(!matches(b"free jazz", &[], &SONG), "every keyword");
        assert!(!matches(b"", &[], &SONG));
        assert!(!matches(b" - ", &[], &SONG));
    }

    #[test]
    fn hashes_override_keywords() {
        assert!(matches(b"\\", &[[9; 20]], &SONG));
        assert!(matches(b"jazz", &[[1; 20], [9; 20]], &SONG));
        assert!(!matches(b"free", &[[1; 20]], &SONG));
    }

    #[test]
    fn slices_are_libraries() {
        let files = [SONG];
        let lib: &[SharedFile<'_>] = &files;
        assert_eq!(lib.by_index(3), Some(SONG));
        assert_eq!(lib.by_sha1(&[9; 20]), Some(SONG));
        assert_eq!(lib.by_index(4), None);
    }
}
