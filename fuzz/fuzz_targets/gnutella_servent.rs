//! The Gnutella servent machine under arbitrary connection events and bytes: never panics, never sends on a closed connection.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::gnutella_servent(data));
