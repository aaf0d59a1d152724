//! The WebSocket bridge's datagram frame: never panics; what decodes re-encodes to the same
//! bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::bridge_frame(data));
