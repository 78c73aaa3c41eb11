//! uniffi's binding generator, run on the built library:
//! `cargo run -p fieldsync-android --features bindgen --bin uniffi-bindgen -- generate --library <lib> --language kotlin --out-dir <dir>`

fn main() {
    uniffi::uniffi_bindgen_main()
}
