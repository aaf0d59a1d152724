//! Gnutella 0.6 descriptors (framer and payload decoders): never panics; what decodes re-encodes byte for byte.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::gnutella_descriptor(data));
