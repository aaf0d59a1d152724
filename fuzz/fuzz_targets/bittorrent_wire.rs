//! BitTorrent peer wire (BEP 3, 6, 10): handshake and framer never panic; what frames re-encodes byte for byte.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::bittorrent_wire(data));
