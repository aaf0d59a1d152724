//! Chord's datagram decoder: never panics; what decodes re-encodes to the same bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::chord_decode(data));
