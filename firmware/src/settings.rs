//! Addresses fixed when the firmware is built, from environment variables (a board has no
//! command line): `OVERLAY_IP` (address/prefix), `OVERLAY_GATEWAY`, `OVERLAY_DHT_PORT`,
//! `OVERLAY_DHT_BOOTSTRAP`, `OVERLAY_CHORD_PORT`, `OVERLAY_CHORD_BOOTSTRAP`. The defaults
//! suit QEMU's user network and the test harness (the host is 10.0.2.2).

use core::net::{Ipv4Addr, SocketAddrV4};
use embassy_net::{Ipv4Cidr, StaticConfigV4};
use heapless::Vec;
use overlay_core::PeerAddr;

/// The environment variable's value when the firmware was built, or `default`.
macro_rules! setting {
    ($name:literal, $default:literal) => {
        match option_env!($name) {
            Some(value) => value,
            None => $default,
        }
    };
}

const IP: &str = setting!("OVERLAY_IP", "10.0.2.15/24");
const GATEWAY: &str = setting!("OVERLAY_GATEWAY", "10.0.2.2");
/// The DHT node's UDP port (BEP 5's customary 6881).
pub const DHT_PORT: &str = setting!("OVERLAY_DHT_PORT", "6881");
/// Nodes the DHT node bootstraps through, comma-separated.
pub const DHT_BOOTSTRAP: &str = setting!("OVERLAY_DHT_BOOTSTRAP", "10.0.2.2:6881");
/// The Chord node's UDP port.
pub const CHORD_PORT: &str = setting!("OVERLAY_CHORD_PORT", "7000");
/// Members the Chord node joins through, comma-separated, tried in turn.
pub const CHORD_BOOTSTRAP: &str = setting!("OVERLAY_CHORD_BOOTSTRAP", "10.0.2.2:7000");

/// The interface's static address and gateway. A malformed setting is a build mistake:
/// it is reported on the console and the built-in default is used.
pub fn network() -> StaticConfigV4 {
    let address = parse_cidr(IP).unwrap_or_else(|| {
        crate::log!("settings: bad OVERLAY_IP {IP:?}");
        Ipv4Cidr::new(Ipv4Addr::new(10, 0, 2, 15), 24)
    });
    let gateway = GATEWAY.parse::<Ipv4Addr>().ok();
    if gateway.is_none() {
        crate::log!("settings: bad OVERLAY_GATEWAY {GATEWAY:?}");
    }
    StaticConfigV4 {
        address,
        gateway,
        dns_servers: Vec::new(),
    }
}

/// Our own address as peers see it, on `port`.
pub fn own_addr(port: u16) -> PeerAddr {
    PeerAddr::v4(network().address.address().octets(), port)
}

/// A port setting.
pub fn port(name: &str, value: &str) -> u16 {
    value.parse().unwrap_or_else(|_| {
        crate::log!("settings: bad {name} {value:?}");
        0
    })
}

/// A comma-separated list of `ip:port`; malformed entries are reported and skipped.
pub fn addrs<const N: usize>(name: &str, list: &str) -> Vec<PeerAddr, N> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.parse::<SocketAddrV4>() {
            Ok(a) if out.push(PeerAddr::v4(a.ip().octets(), a.port())).is_ok() => {}
            _ => crate::log!("settings: {name}: skipped {item:?}"),
        }
    }
    out
}

fn parse_cidr(s: &str) -> Option<Ipv4Cidr> {
    let (ip, prefix) = s.split_once('/')?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some(Ipv4Cidr::new(ip.parse().ok()?, prefix))
}
