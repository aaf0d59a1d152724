//! A Chord node fed arbitrary datagrams, commands and time: never panics, always drains.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| overlay_sim::fuzz::chord_machine(data));
