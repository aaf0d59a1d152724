//! BitTorrent trackers (BEP 3, 15, 23): the HTTP and UDP codecs, the tracker and the announcer never panic on any bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::bittorrent_tracker(data));
