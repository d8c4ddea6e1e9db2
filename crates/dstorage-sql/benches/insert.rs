//! Single-row inserts inside one block: plain rusqlite (prepared statement, one
//! transaction), rusqlite with only a session attached, and the whole engine (guard,
//! metering, savepoint per transaction, session, canonical changeset and its SHA-256).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dstorage_sql::{Engine, EngineConfig, Value};
use rusqlite::session::Session;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

const ROWS: u64 = 20_000;
const CREATE: &str =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER NOT NULL) STRICT";

fn plain_connection(dir: &tempfile::TempDir) -> Connection {
    let conn = Connection::open(dir.path().join("plain.sqlite")).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("sync");
    conn.execute_batch(CREATE).expect("create");
    conn
}

fn plain(c: &mut Criterion, with_session: bool) {
    let name = if with_session {
        "rusqlite_with_session"
    } else {
        "rusqlite_plain"
    };
    let mut group = c.benchmark_group("insert_block");
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function(name, |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let conn = plain_connection(&dir);
                (dir, conn)
            },
            |(_dir, conn)| {
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
                    for i in 0..ROWS as i64 {
                        stmt.execute(rusqlite::params![i, "name", i % 7])
                            .expect("insert");
                    }
                }
                if let Some(s) = session.as_mut() {
                    let _ = s.changeset().expect("changeset");
                }
                drop(session);
                conn.execute_batch("COMMIT").expect("commit");
                // Returned, so criterion drops them after the clock stops: closing the connection
                // checkpoints the WAL with an fsync, and that is not part of a block.
                (_dir, conn)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_block");
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("engine", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut engine =
                    Engine::open(&dir.path().join("engine.sqlite"), EngineConfig::default())
                        .expect("open");
                let mut block = engine.begin_block().expect("begin");
                block.create_schema("app").expect("schema");
                block.execute("app", CREATE, 1_000_000).expect("create");
                block.commit().expect("commit");
                (dir, engine)
            },
            |(_dir, mut engine)| {
                let mut block = engine.begin_block().expect("begin");
                for i in 0..ROWS as i64 {
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
                // What a node does at the end of a block: the canonical encoding, and its
                // SHA-256 (the changeset hash).
                let encoded = block.changeset_encoded().expect("changeset");
                std::hint::black_box(Sha256::digest(&encoded.bytes));
                block.commit().expect("commit");
                // As above: closing is not part of the block.
                (_dir, engine)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    plain(c, false);
    plain(c, true);
    engine(c);
}

criterion_group! {
    name = insert;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(insert);
