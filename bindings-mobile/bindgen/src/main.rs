//! uniffi's generator, built from the same uniffi as the library:
//! `uniffi-bindgen generate --library target/release/liboverlay_mobile.so --language kotlin
//! --out-dir OUT` (or `--language swift`).
fn main() {
    uniffi::uniffi_bindgen_main()
}
