//! The one result code of every function, and its message (rustls-ffi's `rustls_result`
//! and `rustls_error`).
//!
//! Codes are grouped: below 100 the caller misused the API (or the library panicked), from
//! 100 a command was refused and nothing started, from 200 a started command failed (these
//! arrive in a `FAILED` event's `error` field, never as a function's return value).

use crate::handle::{boundary, out_text};
use core::ffi::c_char;

/// What a function did. `OVERLAY_RESULT_OK` is 0; everything else is an error, and a
/// function that returns an error has changed nothing (except where its doc says what it
/// wrote to report the error, such as the length a buffer needs).
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum overlay_result {
    /// Success.
    #[default]
    Ok = 0,
    /// A pointer the function needs was `NULL`.
    NullArgument = 1,
    /// An argument is out of range: an address family other than 4 or 6, a length too
    /// large, text that does not parse.
    InvalidArgument = 2,
    /// The caller's buffer is too small: nothing was written and nothing was consumed; the
    /// length it needs was reported where the function's doc says.
    BufferTooSmall = 3,
    /// The library panicked (a bug: please report it). The handle is poisoned.
    Panic = 4,
    /// An earlier call on this handle panicked; only `*_free` works on it now.
    Poisoned = 5,

    /// Too many commands in progress; retry after one completes (after draining events).
    Busy = 100,
    /// The node is not a member of a ring (Chord: join or create first).
    NotMember = 101,
    /// The node is already a member of a ring, or joining one.
    AlreadyMember = 102,
    /// The value is larger than the node stores (Chord: `OVERLAY_CHORD_MAX_VALUE`).
    ValueTooLarge = 103,
    /// A BEP 44 item must be one bencoded value of at most 1000 bytes.
    BadItem = 104,
    /// No node to ask: bootstrap from at least one address first.
    NoNodes = 105,
    /// Every connection slot is taken (Gnutella).
    Full = 106,
    /// No connection is up to send on (Gnutella: connect first).
    NotConnected = 107,
    /// No upload is in progress on that connection (Gnutella).
    NoUpload = 108,

    /// No node answered (every candidate timed out, or the query limit was reached).
    Unreachable = 200,
    /// The node that should store the value has a full store.
    StoreFull = 201,
    /// The node left the ring before the command finished.
    Left = 202,
    /// The item to put was evicted from the node's own store before it was sent.
    ItemLost = 203,
}

impl overlay_result {
    /// Every code, for the message function and the tests.
    pub(crate) const ALL: [overlay_result; 19] = [
        overlay_result::Ok,
        overlay_result::NullArgument,
        overlay_result::InvalidArgument,
        overlay_result::BufferTooSmall,
        overlay_result::Panic,
        overlay_result::Poisoned,
        overlay_result::Busy,
        overlay_result::NotMember,
        overlay_result::AlreadyMember,
        overlay_result::ValueTooLarge,
        overlay_result::BadItem,
        overlay_result::NoNodes,
        overlay_result::Full,
        overlay_result::NotConnected,
        overlay_result::NoUpload,
        overlay_result::Unreachable,
        overlay_result::StoreFull,
        overlay_result::Left,
        overlay_result::ItemLost,
    ];

    /// The code a C caller passed as a number, if it is one.
    pub fn from_u32(code: u32) -> Option<overlay_result> {
        Self::ALL.into_iter().find(|r| *r as u32 == code)
    }

    /// What the code means, in a sentence.
    pub fn message(self) -> &'static str {
        match self {
            overlay_result::Ok => "success",
            overlay_result::NullArgument => "a required pointer argument was NULL",
            overlay_result::InvalidArgument => "an argument is out of range or does not parse",
            overlay_result::BufferTooSmall => {
                "the buffer is too small: nothing was written; the length it needs was reported"
            }
            overlay_result::Panic => {
                "the library panicked (a bug); the handle is poisoned and can only be freed"
            }
            overlay_result::Poisoned => {
                "an earlier call on this handle panicked; the handle can only be freed"
            }
            overlay_result::Busy => "too many commands in progress; retry after one completes",
            overlay_result::NotMember => "not a member of a Chord ring: join or create one first",
            overlay_result::AlreadyMember => "already a member of a Chord ring, or joining one",
            overlay_result::ValueTooLarge => "the value is larger than the node can store",
            overlay_result::BadItem => {
                "a BEP 44 item must be one bencoded value of at most 1000 bytes"
            }
            overlay_result::NoNodes => "no node to ask: bootstrap from at least one address",
            overlay_result::Full => "every connection slot is taken",
            overlay_result::NotConnected => "no connection is up to send on: connect first",
            overlay_result::NoUpload => "no upload is in progress on that connection",
            overlay_result::Unreachable => "no node answered",
            overlay_result::StoreFull => "the node that should store the value has a full store",
            overlay_result::Left => "the node left the ring before the command finished",
            overlay_result::ItemLost => {
                "the item was evicted from the node's store before it was sent"
            }
        }
    }
}

/// Writes the message of `code` into `buf` as a NUL-terminated string and its length
/// (without the NUL, as `snprintf` counts) to `*out_len` (which may be `NULL`). A code this
/// library does not know gets the message "unknown result code".
///
/// Returns `OVERLAY_RESULT_BUFFER_TOO_SMALL` if `cap` is not at least that length plus one
/// (nothing is written to `buf`; `*out_len` still gets the length).
///
/// # Safety
///
/// `buf` must point to `cap` writable bytes (or be `NULL` with `cap` 0); `out_len` must be
/// `NULL` or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_result_message(
    code: u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> overlay_result {
    boundary(|| {
        let text = overlay_result::from_u32(code).map_or("unknown result code", |r| r.message());
        // SAFETY: the caller guarantees `buf`/`cap` and `out_len` as documented above.
        unsafe { out_text(text, buf, cap, out_len) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_number_and_message() {
        for (i, a) in overlay_result::ALL.iter().enumerate() {
            assert_eq!(overlay_result::from_u32(*a as u32), Some(*a));
            for b in &overlay_result::ALL[i + 1..] {
                assert_ne!(*a as u32, *b as u32);
                assert_ne!(a.message(), b.message());
            }
        }
        assert_eq!(overlay_result::from_u32(9999), None);
    }

    #[test]
    fn a_message_that_does_not_fit_is_not_written() {
        let mut buf = [0x55 as core::ffi::c_char; 8];
        let mut len = 0;
        // SAFETY: a writable buffer of its length and a writable length.
        let r = unsafe {
            overlay_result_message(overlay_result::Busy as u32, buf.as_mut_ptr(), 8, &mut len)
        };
        assert_eq!(r, overlay_result::BufferTooSmall);
        assert_eq!(len, overlay_result::Busy.message().len());
        assert_eq!(buf, [0x55; 8]);
    }
}
