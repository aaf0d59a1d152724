//! The WebSocket bridge's datagram frame: how a peer that has no UDP (a browser tab) sends
//! and receives datagrams through a host that has (`overlay ... --ws`).
//!
//! Each binary WebSocket message carries one datagram:
//!
//! ```text
//! +-----+---------------------------+------------+-----------------+
//! | len | address (len - 2 octets)  | port (BE)  | payload ...     |
//! +-----+---------------------------+------------+-----------------+
//!   1 B   4 (IPv4) or 16 (IPv6)        2 B         the datagram
//! ```
//!
//! `len` is 6 for IPv4 and 18 for IPv6: the address in [`PeerAddr`]'s canonical byte form
//! (the compact node form of BEP 5), so a frame is self-describing. From the tab to the
//! host the address is the destination; from the host to the tab it is the source. The
//! host opens one UDP socket per tab, so the tab is a full peer at that socket's address,
//! which the host announces in a text message before any frame (see docs/wasm.md).

use crate::PeerAddr;

/// Bytes a frame adds before its payload, at most (IPv6).
pub const MAX_HEADER: usize = 1 + 18;

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Empty, shorter than its header says, or a length byte other than 6 or 18.
    Malformed,
    /// The output buffer cannot hold the frame.
    TooSmall,
}

/// Writes the frame of `payload` to or from `addr` into `out`; returns its length.
pub fn encode(addr: PeerAddr, payload: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let mut canonical = [0u8; 18];
    let n = addr.write_canonical(&mut canonical);
    let total = 1 + n + payload.len();
    let out = out.get_mut(..total).ok_or(FrameError::TooSmall)?;
    out[0] = n as u8;
    out[1..1 + n].copy_from_slice(&canonical[..n]);
    out[1 + n..].copy_from_slice(payload);
    Ok(total)
}

/// Splits a frame into its address and payload (which may be empty: UDP allows it).
pub fn decode(frame: &[u8]) -> Result<(PeerAddr, &[u8]), FrameError> {
    let (&n, rest) = frame.split_first().ok_or(FrameError::Malformed)?;
    let n = n as usize;
    if n != 6 && n != 18 {
        return Err(FrameError::Malformed);
    }
    let (addr, payload) = rest.split_at_checked(n).ok_or(FrameError::Malformed)?;
    let port = u16::from_be_bytes([addr[n - 2], addr[n - 1]]);
    let addr = match n {
        6 => PeerAddr::v4([addr[0], addr[1], addr[2], addr[3]], port),
        _ => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&addr[..16]);
            PeerAddr::v6(ip, port)
        }
    };
    Ok((addr, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_for_both_families() {
        let mut buf = [0u8; 64];
        for addr in [
            PeerAddr::v4([127, 0, 0, 1], 7000),
            PeerAddr::v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 65535),
        ] {
            for payload in [&b""[..], b"d1:y1:qe"] {
                let n = encode(addr, payload, &mut buf).unwrap();
                assert_eq!(n, 1 + if addr.is_v6() { 18 } else { 6 } + payload.len());
                assert_eq!(decode(&buf[..n]), Ok((addr, payload)));
            }
        }
    }

    #[test]
    fn the_header_is_bep5_compact_form_behind_its_length() {
        let mut buf = [0u8; 16];
        let n = encode(PeerAddr::v4([10, 0, 0, 2], 0x1AE1), b"x", &mut buf).unwrap();
        assert_eq!(&buf[..n], &[6, 10, 0, 0, 2, 0x1A, 0xE1, b'x']);
    }

    #[test]
    fn malformed_frames_and_small_buffers_are_refused() {
        for bad in [
            &[][..],
            &[6, 1, 2, 3, 4, 5],
            &[5, 1, 2, 3, 4, 5],
            &[0],
            &[18; 18],
        ] {
            assert_eq!(decode(bad), Err(FrameError::Malformed), "{bad:?}");
        }
        let mut small = [0u8; 7];
        let addr = PeerAddr::v4([127, 0, 0, 1], 1);
        assert_eq!(encode(addr, b"x", &mut small), Err(FrameError::TooSmall));
        assert_eq!(encode(addr, b"", &mut small), Ok(7));
    }
}
