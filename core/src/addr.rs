//! Peer addresses. A thin wrapper over `core::net::SocketAddr`; drivers map links that are
//! not IP (a browser's WebSocket, an in-memory channel, a simulated node) onto addresses.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a peer can be reached.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddr(pub SocketAddr);

impl PeerAddr {
    /// An IPv4 address and port.
    pub const fn v4(ip: [u8; 4], port: u16) -> Self {
        PeerAddr(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]),
            port,
        )))
    }

    /// The canonical byte form: the IP's octets (4 or 16) then the port, big-endian. Chord
    /// hashes this to name a node, so it must not change.
    pub fn write_canonical(&self, out: &mut [u8; 18]) -> usize {
        match self.0 {
            SocketAddr::V4(a) => {
                out[..4].copy_from_slice(&a.ip().octets());
                out[4..6].copy_from_slice(&a.port().to_be_bytes());
                6
            }
            SocketAddr::V6(a) => {
                out[..16].copy_from_slice(&a.ip().octets());
                out[16..18].copy_from_slice(&a.port().to_be_bytes());
                18
            }
        }
    }

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.0.ip()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.port()
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        PeerAddr(a)
    }
}

impl From<PeerAddr> for SocketAddr {
    fn from(a: PeerAddr) -> Self {
        a.0
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The serialized form: compact octets, no flow info or scope id (they are meaningless to a
/// remote peer).
#[derive(Serialize, Deserialize)]
enum WireAddr {
    V4([u8; 4], u16),
    V6([u8; 16], u16),
}

impl Serialize for PeerAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            SocketAddr::V4(a) => WireAddr::V4(a.ip().octets(), a.port()),
            SocketAddr::V6(a) => WireAddr::V6(a.ip().octets(), a.port()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PeerAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(PeerAddr(match WireAddr::deserialize(d)? {
            WireAddr::V4(ip, port) => SocketAddr::V4(SocketAddrV4::new(ip.into(), port)),
            WireAddr::V6(ip, port) => {
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_are_octets_then_big_endian_port() {
        let mut buf = [0; 18];
        let n = PeerAddr::v4([127, 0, 0, 1], 7000).write_canonical(&mut buf);
        assert_eq!(&buf[..n], &[127, 0, 0, 1, 0x1b, 0x58]);
    }

    #[test]
    fn serde_round_trip_v4_and_v6() {
        for a in [
            PeerAddr::v4([10, 1, 2, 3], 9),
            PeerAddr("[::1]:7000".parse().unwrap()),
        ] {
            let mut buf = [0u8; 32];
            let bytes = postcard::to_slice(&a, &mut buf).unwrap();
            assert_eq!(postcard::from_bytes::<PeerAddr>(bytes).unwrap(), a);
        }
    }
}
