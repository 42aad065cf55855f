//! uniffi's binding generator, built from the same uniffi version as the library so the
//! generated Python, Kotlin and Swift sources always match its scaffolding.

fn main() {
    uniffi::uniffi_bindgen_main()
}
