//! Feed arbitrary bytes to every verifier and to every identity parser: `cargo +nightly fuzz run verify`.
#![no_main]

include!("../fuzz_body.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_one(data));
