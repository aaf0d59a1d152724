//! BitTorrent metainfo (BEP 3) and magnet links (BEP 9): never panic; sizes are consistent; the writer rebuilds what parses.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::bittorrent_metainfo(data));
