//! The BitTorrent session machine under arbitrary connection events, bytes and storage answers: never panics, never sends on a closed connection.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::bittorrent_session(data));
