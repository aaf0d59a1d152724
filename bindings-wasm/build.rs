//! Sizes the WASM stack for the largest machine: core allocates nothing, so machines are
//! built by value and boxed, and a torrent session (1.76 MB here: tests/web.rs `machine_sizes`)
//! passes through the stack several times on its way to the heap. Rust's default WASM
//! stack is 1 MiB; the stack is linear memory that a tab reserves once.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size={}", 16 << 20);
    }
}
