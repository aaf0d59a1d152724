//! Puts the board's memory map where cortex-m-rt's `link.x` looks for `memory.x`
//! (embassy-stm32 supplies its own with the `memory-x` feature).

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    if env::var_os("CARGO_FEATURE_MPS2_AN386").is_some() {
        fs::copy("memory/mps2-an386.x", out.join("memory.x")).unwrap();
        // cortex-m-rt's `device` feature includes this; the vector table is in Rust.
        fs::copy("memory/mps2-an386-device.x", out.join("device.x")).unwrap();
        println!("cargo:rustc-link-search={}", out.display());
    }
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-changed=build.rs");
}
