//! Feed arbitrary bytes to the SQL guard (as SQL text) and to the changeset decoder.
//! Run: `cargo +nightly fuzz run guard_and_decoder` from crates/dstorage-sql.
#![no_main]

use std::cell::RefCell;

use dstorage_sql::fuzzing::{fuzz_engine, fuzz_one};
use dstorage_sql::Engine;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static STATE: RefCell<Option<(tempfile::TempDir, Engine)>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        if state.is_none() {
            let dir = tempfile::tempdir().expect("tempdir");
            let engine = fuzz_engine(dir.path()).expect("fuzz engine");
            *state = Some((dir, engine));
        }
        if let Some((_, engine)) = state.as_mut() {
            fuzz_one(engine, data);
        }
    });
});
