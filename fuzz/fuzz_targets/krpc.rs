//! KRPC (the Mainline DHT's wire): never panics; what decodes re-encodes to the same fields.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::krpc(data));
