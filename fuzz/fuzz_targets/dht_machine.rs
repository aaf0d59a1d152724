//! A Mainline DHT node fed arbitrary datagrams, KRPC, commands and time: never panics,
//! always drains, keeps its invariants.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::dht_machine(data));
