//! One block of 20 000 single-row inserts, as in `benches/insert.rs`, run once: for
//! instruction-count profiling (`valgrind --tool=callgrind`), which is repeatable on a
//! loaded machine where wall time is not.
//!
//! `cargo run --release -p dstorage-sql --example insert_block -- engine|plain|session`

use dstorage_sql::{Engine, EngineConfig, Value};
use rusqlite::session::Session;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

const ROWS: i64 = 20_000;
const CREATE: &str =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER NOT NULL) STRICT";

fn plain(dir: &tempfile::TempDir, with_session: bool) {
    let conn = Connection::open(dir.path().join("plain.sqlite")).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("sync");
    conn.execute_batch(CREATE).expect("create");
    conn.execute_batch("BEGIN").expect("begin");
    let mut session = with_session.then(|| {
        let mut s = Session::new(&conn).expect("session");
        s.attach(None::<&str>).expect("attach");
        s
    });
    {
        let mut stmt = conn
            .prepare("INSERT INTO t VALUES (?1, ?2, ?3)")
            .expect("prepare");
        for i in 0..ROWS {
            stmt.execute(rusqlite::params![i, "name", i % 7])
                .expect("insert");
        }
    }
    if let Some(s) = session.as_mut() {
        let _ = s.changeset().expect("changeset");
    }
    drop(session);
    conn.execute_batch("COMMIT").expect("commit");
}

fn engine(dir: &tempfile::TempDir) {
    let mut engine =
        Engine::open(&dir.path().join("engine.sqlite"), EngineConfig::default()).expect("open");
    let mut block = engine.begin_block().expect("begin");
    block.create_schema("app").expect("schema");
    block.execute("app", CREATE, 1_000_000).expect("create");
    block.commit().expect("commit");
    let mut block = engine.begin_block().expect("begin");
    for i in 0..ROWS {
        block
            .execute_with_params(
                "app",
                "INSERT INTO t VALUES (?1, ?2, ?3)",
                &[
                    Value::Integer(i),
                    Value::Text("name".into()),
                    Value::Integer(i % 7),
                ],
                10_000,
            )
            .expect("insert");
    }
    // What a node does at the end of a block: the canonical encoding, and its SHA-256.
    let encoded = block.changeset_encoded().expect("changeset");
    println!("{}", hex::encode(Sha256::digest(&encoded.bytes)));
    block.commit().expect("commit");
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    match std::env::args().nth(1).as_deref() {
        Some("plain") => plain(&dir, false),
        Some("session") => plain(&dir, true),
        _ => engine(&dir),
    }
}
