//! Peer addresses. Drivers map links that are not IP (a browser's WebSocket, an in-memory
//! channel, a simulated node) onto addresses.
//!
//! Stored compactly (20 bytes against `SocketAddr`'s 32): machines keep many of them in
//! fixed-capacity tables, so this is most of a routing table's RAM. IPv6 flow info and scope
//! ids are not kept: they mean nothing to a remote peer.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a peer can be reached: an IPv4 or IPv6 address and a port.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddr {
    /// IPv4 addresses use the first four bytes.
    ip: [u8; 16],
    port: u16,
    v6: bool,
}

impl PeerAddr {
    /// An IPv4 address and port.
    pub const fn v4(ip: [u8; 4], port: u16) -> Self {
        PeerAddr {
            ip: [
                ip[0], ip[1], ip[2], ip[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            port,
            v6: false,
        }
    }

    /// An IPv6 address and port.
    pub const fn v6(ip: [u8; 16], port: u16) -> Self {
        PeerAddr { ip, port, v6: true }
    }

    /// The canonical byte form: the IP's octets (4 or 16) then the port, big-endian. Chord
    /// hashes this to name a node, so it must not change.
    pub fn write_canonical(&self, out: &mut [u8; 18]) -> usize {
        let n = if self.v6 { 16 } else { 4 };
        out[..n].copy_from_slice(&self.ip[..n]);
        out[n..n + 2].copy_from_slice(&self.port.to_be_bytes());
        n + 2
    }

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.ip))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                self.ip[0], self.ip[1], self.ip[2], self.ip[3],
            ))
        }
    }

    /// Whether it is an IPv6 address.
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// As a standard socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        match self.ip() {
            IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, self.port)),
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, self.port, 0, 0)),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        match a {
            SocketAddr::V4(a) => PeerAddr::v4(a.ip().octets(), a.port()),
            SocketAddr::V6(a) => PeerAddr::v6(a.ip().octets(), a.port()),
        }
    }
}

impl From<PeerAddr> for SocketAddr {
    fn from(a: PeerAddr) -> Self {
        a.socket_addr()
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.socket_addr(), f)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.socket_addr(), f)
    }
}

/// The serialized form: the address family's octets and the port.
#[derive(Serialize, Deserialize)]
enum WireAddr {
    V4([u8; 4], u16),
    V6([u8; 16], u16),
}

impl Serialize for PeerAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.v6 {
            WireAddr::V6(self.ip, self.port)
        } else {
            WireAddr::V4([self.ip[0], self.ip[1], self.ip[2], self.ip[3]], self.port)
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PeerAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match WireAddr::deserialize(d)? {
            WireAddr::V4(ip, port) => PeerAddr::v4(ip, port),
            WireAddr::V6(ip, port) => PeerAddr::v6(ip, port),
        })
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
        let n =
            PeerAddr::from("[::1]:7000".parse::<SocketAddr>().unwrap()).write_canonical(&mut buf);
        assert_eq!(n, 18);
        assert_eq!(&buf[15..18], &[1, 0x1b, 0x58]);
    }

    #[test]
    fn socket_addr_and_serde_round_trip_v4_and_v6() {
        for s in ["10.1.2.3:9", "[::1]:7000", "[2001:db8::5]:65535"] {
            let sa: SocketAddr = s.parse().unwrap();
            let a = PeerAddr::from(sa);
            assert_eq!(SocketAddr::from(a), sa);
            let mut shown = heapless::String::<64>::new();
            core::fmt::write(&mut shown, format_args!("{a}")).unwrap();
            assert_eq!(shown, s);
            let mut buf = [0u8; 32];
            let bytes = postcard::to_slice(&a, &mut buf).unwrap();
            assert_eq!(postcard::from_bytes::<PeerAddr>(bytes).unwrap(), a);
        }
    }

    #[test]
    fn compact() {
        assert!(core::mem::size_of::<PeerAddr>() <= 20);
    }
}
