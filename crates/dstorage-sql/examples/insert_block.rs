//! One block of 20 000 single-row inserts, as in `benches/insert.rs`.
//!
//! `cargo run --release -p dstorage-sql --example insert_block -- engine|plain|session` runs
//! one block once, for instruction-count profiling (`valgrind --tool=callgrind`), which is
//! repeatable on a loaded machine where wall time is not.
//!
//! `... -- compare [rounds]` times the three variants interleaved (each round runs all three,
//! in rotating order) and prints their medians and ratios to plain. This machine's speed
//! shifts by up to 1.6x for seconds at a time, and criterion measures one variant after the
//! other, so a shift between two of its groups skews their ratio; interleaving exposes every
//! variant to the same shifts.

use std::time::{Duration, Instant};

use dstorage_sql::{Engine, EngineConfig, Value};
use rusqlite::session::Session;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

const ROWS: i64 = 20_000;
const CREATE: &str =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER NOT NULL) STRICT";

/// Plain rusqlite, optionally with a session: returns the block's time (setup and the
/// connection close are not timed).
fn plain(dir: &tempfile::TempDir, with_session: bool) -> Duration {
    let file = if with_session { "session" } else { "plain" };
    let conn = Connection::open(dir.path().join(format!("{file}.sqlite"))).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("sync");
    conn.execute_batch(CREATE).expect("create");
    #[allow(
        clippy::disallowed_methods,
        reason = "the example times itself; it changes no replicated state"
    )]
    let started = Instant::now();
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
    let elapsed = started.elapsed();
    drop(conn);
    elapsed
}

/// The engine: returns the block's time and its changeset hash.
fn engine(dir: &tempfile::TempDir) -> (Duration, [u8; 32]) {
    let mut engine =
        Engine::open(&dir.path().join("engine.sqlite"), EngineConfig::default()).expect("open");
    let mut block = engine.begin_block().expect("begin");
    block.create_schema("app").expect("schema");
    block.execute("app", CREATE, 1_000_000).expect("create");
    block.commit().expect("commit");
    #[allow(
        clippy::disallowed_methods,
        reason = "the example times itself; it changes no replicated state"
    )]
    let started = Instant::now();
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
    let hash: [u8; 32] = Sha256::digest(&encoded.bytes).into();
    block.commit().expect("commit");
    let elapsed = started.elapsed();
    drop(engine);
    (elapsed, hash)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn compare(rounds: usize) {
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            let variant = (round + k) % 3;
            let dir = tempfile::tempdir().expect("tempdir");
            times[variant].push(match variant {
                0 => plain(&dir, false),
                1 => plain(&dir, true),
                _ => engine(&dir).0,
            });
        }
    }
    let plain_median = median(times[0].clone());
    println!("{rounds} interleaved rounds of {ROWS} single-row inserts in one block");
    println!("| variant | median | fastest | slowest | median / plain |");
    println!("|---|---|---|---|---|");
    for (name, t) in ["plain", "session", "engine"].iter().zip(times) {
        let m = median(t.clone());
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {:.2}x |",
            ms(m),
            ms(*t.iter().min().expect("rounds")),
            ms(*t.iter().max().expect("rounds")),
            m.as_secs_f64() / plain_median.as_secs_f64()
        );
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("plain") => {
            plain(&dir, false);
        }
        Some("session") => {
            plain(&dir, true);
        }
        Some("compare") => compare(args.next().and_then(|n| n.parse().ok()).unwrap_or(15)),
        _ => println!("{}", hex::encode(engine(&dir).1)),
    }
}
