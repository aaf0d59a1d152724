//! The plain C structs every protocol shares: 160-bit ids, IPv4/IPv6 addresses, nodes;
//! and the text helpers that parse and print them.
//!
//! The structs have no padding (their layout is asserted below), so a list of them can be
//! written into a caller's byte buffer and copied out with `memcpy`, whatever the buffer's
//! alignment.

use crate::handle::{boundary, out_text, read_arg, write_out};
use crate::result::overlay_result;
use core::ffi::{CStr, c_char};
use overlay_core::{Id, PeerAddr};

/// `overlay_addr.family` of an IPv4 address.
pub const OVERLAY_IPV4: u16 = 4;
/// `overlay_addr.family` of an IPv6 address.
pub const OVERLAY_IPV6: u16 = 6;

/// An IPv4 or IPv6 address and a port.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct overlay_addr {
    /// `OVERLAY_IPV4` or `OVERLAY_IPV6`; anything else is refused with
    /// `OVERLAY_RESULT_INVALID_ARGUMENT`.
    pub family: u16,
    /// The port, in host byte order.
    pub port: u16,
    /// The address in network byte order; an IPv4 address uses the first 4 bytes (the rest
    /// are 0 in what the library writes and ignored in what it reads).
    pub ip: [u8; 16],
}

/// A 160-bit identifier: a node id, a Chord key's id, an info hash, a BEP 44 target.
/// Big-endian, as it is written in hex.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct overlay_id {
    /// The 20 bytes.
    pub bytes: [u8; 20],
}

/// A node: its id and where it is reached.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct overlay_node {
    /// The node's id.
    pub id: overlay_id,
    /// Its address.
    pub addr: overlay_addr,
}

const _: () = {
    assert!(core::mem::size_of::<overlay_addr>() == 20);
    assert!(core::mem::size_of::<overlay_id>() == 20);
    assert!(core::mem::size_of::<overlay_node>() == 40);
    assert!(core::mem::offset_of!(overlay_addr, port) == 2);
    assert!(core::mem::offset_of!(overlay_addr, ip) == 4);
    assert!(core::mem::offset_of!(overlay_node, addr) == 20);
};

impl overlay_addr {
    /// The core address, or `InvalidArgument` for an unknown family.
    pub fn to_peer(&self) -> Result<PeerAddr, overlay_result> {
        match self.family {
            OVERLAY_IPV4 => Ok(PeerAddr::v4(
                [self.ip[0], self.ip[1], self.ip[2], self.ip[3]],
                self.port,
            )),
            OVERLAY_IPV6 => Ok(PeerAddr::v6(self.ip, self.port)),
            _ => Err(overlay_result::InvalidArgument),
        }
    }

    /// The C form of a core address.
    pub fn from_peer(a: PeerAddr) -> overlay_addr {
        let mut ip = [0; 16];
        let family = match a.ip() {
            core::net::IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                OVERLAY_IPV4
            }
            core::net::IpAddr::V6(v6) => {
                ip = v6.octets();
                OVERLAY_IPV6
            }
        };
        overlay_addr {
            family,
            port: a.port(),
            ip,
        }
    }

    /// The address's bytes exactly as the struct lays them out in C (native byte order
    /// for the two `uint16_t`), for lists written into a caller's buffer.
    pub fn to_c_bytes(&self) -> [u8; 20] {
        let mut b = [0; 20];
        b[0..2].copy_from_slice(&self.family.to_ne_bytes());
        b[2..4].copy_from_slice(&self.port.to_ne_bytes());
        b[4..].copy_from_slice(&self.ip);
        b
    }
}

impl From<Id> for overlay_id {
    fn from(id: Id) -> Self {
        overlay_id { bytes: id.0 }
    }
}

impl From<overlay_id> for Id {
    fn from(id: overlay_id) -> Self {
        Id(id.bytes)
    }
}

impl overlay_node {
    /// The C form of a core node.
    pub fn new(id: Id, addr: PeerAddr) -> overlay_node {
        overlay_node {
            id: id.into(),
            addr: overlay_addr::from_peer(addr),
        }
    }

    /// The node's bytes as the struct lays them out in C.
    pub fn to_c_bytes(&self) -> [u8; 40] {
        let mut b = [0; 40];
        b[..20].copy_from_slice(&self.id.bytes);
        b[20..].copy_from_slice(&self.addr.to_c_bytes());
        b
    }
}

/// Reads a NUL-terminated argument as UTF-8 text.
///
/// # Safety
///
/// `text` must be `NULL` or point to a NUL-terminated string.
unsafe fn text_arg<'a>(text: *const c_char) -> Result<&'a str, overlay_result> {
    if text.is_null() {
        return Err(overlay_result::NullArgument);
    }
    // SAFETY: not NULL, and the caller guarantees a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_str().map_err(|_| overlay_result::InvalidArgument)
}

/// Parses `"192.0.2.1:6881"` or `"[2001:db8::1]:6881"` into `*out`.
///
/// Returns `OVERLAY_RESULT_INVALID_ARGUMENT` for anything else (a host name included:
/// resolving names is the caller's business).
///
/// # Safety
///
/// `text` must be `NULL` or a NUL-terminated string; `out` must be `NULL` or point to a
/// writable `overlay_addr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_addr_parse(
    text: *const c_char,
    out: *mut overlay_addr,
) -> overlay_result {
    boundary(|| {
        // SAFETY: as the caller guarantees above.
        let text = unsafe { text_arg(text) }?;
        let parsed: core::net::SocketAddr =
            text.parse().map_err(|_| overlay_result::InvalidArgument)?;
        // SAFETY: as the caller guarantees above.
        unsafe { write_out(out, overlay_addr::from_peer(parsed.into())) }
    })
}

/// Writes `*addr` as text (`"192.0.2.1:6881"`, `"[2001:db8::1]:6881"`) into `buf`,
/// NUL-terminated, and its length without the NUL to `*out_len` (which may be `NULL`).
/// `OVERLAY_ADDR_TEXT_CAP` bytes always suffice.
///
/// Returns `OVERLAY_RESULT_BUFFER_TOO_SMALL` (writing nothing to `buf`, the length to
/// `*out_len`) if `cap` is not at least the length plus one.
///
/// # Safety
///
/// `addr` must be `NULL` or point to an `overlay_addr`; `buf` must point to `cap`
/// writable bytes (or be `NULL` with `cap` 0); `out_len` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_addr_format(
    addr: *const overlay_addr,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> overlay_result {
    boundary(|| {
        // SAFETY: as the caller guarantees above.
        let addr = unsafe { read_arg(addr) }?.to_peer()?;
        let mut text = heapless_text::<OVERLAY_ADDR_TEXT_CAP>();
        core::fmt::write(&mut text, format_args!("{addr}")).map_err(|_| overlay_result::Panic)?;
        // SAFETY: as the caller guarantees above.
        unsafe { out_text(&text, buf, cap, out_len) }
    })
}

/// A buffer of this many bytes holds any address `overlay_addr_format` writes, with its NUL
/// (`[` + 39 + `]:` + 5 digits + NUL, rounded up).
pub const OVERLAY_ADDR_TEXT_CAP: usize = 64;

/// Parses 40 hex digits (either case) into `*out`: how info hashes and BEP 44 targets are
/// written. Returns `OVERLAY_RESULT_INVALID_ARGUMENT` for anything else.
///
/// # Safety
///
/// `hex` must be `NULL` or a NUL-terminated string; `out` must be `NULL` or point to a
/// writable `overlay_id`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_id_parse_hex(
    hex: *const c_char,
    out: *mut overlay_id,
) -> overlay_result {
    boundary(|| {
        // SAFETY: as the caller guarantees above.
        let hex = unsafe { text_arg(hex) }?;
        let id: Id = hex.parse().map_err(|_| overlay_result::InvalidArgument)?;
        // SAFETY: as the caller guarantees above.
        unsafe { write_out(out, id.into()) }
    })
}

/// Writes `*id` as 40 lowercase hex digits and a NUL into `buf` (so `cap` must be at least
/// 41, else `OVERLAY_RESULT_BUFFER_TOO_SMALL`, writing nothing), and 40 to `*out_len`
/// (which may be `NULL`).
///
/// # Safety
///
/// `id` must be `NULL` or point to an `overlay_id`; `buf` must point to `cap` writable
/// bytes (or be `NULL` with `cap` 0); `out_len` must be `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn overlay_id_format_hex(
    id: *const overlay_id,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> overlay_result {
    boundary(|| {
        // SAFETY: as the caller guarantees above.
        let id = Id::from(unsafe { read_arg(id) }?);
        let mut text = heapless_text::<41>();
        core::fmt::write(&mut text, format_args!("{id:x}")).map_err(|_| overlay_result::Panic)?;
        // SAFETY: as the caller guarantees above.
        unsafe { out_text(&text, buf, cap, out_len) }
    })
}

/// A small stack string for formatting (the crate's only text is short).
fn heapless_text<const N: usize>() -> Text<N> {
    Text {
        bytes: [0; N],
        len: 0,
    }
}

/// Fixed-capacity text that `core::fmt::write` can fill.
struct Text<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> core::fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> core::ops::Deref for Text<N> {
    type Target = str;
    fn deref(&self) -> &str {
        // Only whole `&str`s are ever appended.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_the_c_struct() {
        for s in ["127.0.0.1:6881", "[::1]:7000", "[2001:db8::5]:65535"] {
            let sa: core::net::SocketAddr = s.parse().unwrap();
            let c = overlay_addr::from_peer(sa.into());
            assert_eq!(c.to_peer().unwrap().socket_addr(), sa);
        }
        let bad = overlay_addr {
            family: 5,
            ..overlay_addr::default()
        };
        assert_eq!(bad.to_peer(), Err(overlay_result::InvalidArgument));
    }

    #[test]
    fn c_bytes_are_the_struct_layout() {
        let a = overlay_addr::from_peer(PeerAddr::v4([10, 0, 0, 1], 0x1234));
        // SAFETY: overlay_addr is repr(C) with no padding (asserted above): 20 plain bytes.
        let raw: [u8; 20] = unsafe { core::mem::transmute(a) };
        assert_eq!(raw, a.to_c_bytes());
        let n = overlay_node::new(Id([7; 20]), PeerAddr::v6([1; 16], 9));
        // SAFETY: overlay_node is repr(C) with no padding (asserted above): 40 plain bytes.
        let raw: [u8; 40] = unsafe { core::mem::transmute(n) };
        assert_eq!(raw, n.to_c_bytes());
    }
}
