//! The bencode decoder: never panics; what decodes re-encodes to exactly its raw bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::bencode(data));
