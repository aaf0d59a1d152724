//! Gnutella 0.6 handshake and HTTP header blocks: never panics; whole and incremental parses agree.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::gnutella_handshake(data));
