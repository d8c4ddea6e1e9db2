//! Feed arbitrary SQL through the engine (guard, then SQLite) and check on the database
//! afterwards, with an unguarded connection, that whatever ran kept every consensus rule
//! (`dstorage_sql::fuzzing::SqlRules`). A broken rule is a crash with the rule and the SQL.
//! Run: `make fuzz-sql SECONDS=60` from the repository root, or
//! `cargo +nightly fuzz run sql_rules corpus/sql_rules seeds/sql_rules -- -dict=sql.dict`
//! from crates/dstorage-sql/fuzz. `seeds/sql_rules` holds the stable twin test's attack
//! corpus and generated statements (written by that test with `DSTORAGE_FUZZ_WRITE_SEEDS`).
#![no_main]

use std::cell::RefCell;

use dstorage_sql::fuzzing::SqlRules;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static STATE: RefCell<Option<(tempfile::TempDir, SqlRules)>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        if state.is_none() {
            // Every input copies and commits a small database: on tmpfs its fsyncs cost
            // nothing.
            let dir = tempfile::tempdir_in("/dev/shm")
                .or_else(|_| tempfile::tempdir())
                .expect("tempdir");
            let rules = SqlRules::new(dir.path(), &[]).expect("rules database");
            *state = Some((dir, rules));
        }
        if let Some((_, rules)) = state.as_ref() {
            if let Err(v) = rules.check(&sql) {
                panic!("rule broken: {v}\nSQL: {sql:?}");
            }
        }
    });
});
