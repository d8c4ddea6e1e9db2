//! `count(*)` walks its table in metered steps (docs/sql.md, "Cost"): on a table of a
//! million rows it costs about what a scan costs, the same on every run and every engine.

mod common;

use common::{commit_block, engine};
use dstorage_sql::{table_physical_name, Engine, EngineConfig, SqlError, Value};

const ROWS: i64 = 1_000_000;

/// An engine whose `app.big` holds a million rows (and an index on `g`), filled outside
/// the guard and the change log for speed: the cost of building it is not under test.
fn big() -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = engine();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE big(id INTEGER PRIMARY KEY, g INTEGER NOT NULL) STRICT",
            "CREATE INDEX big_g ON big(g)",
        ],
    );
    engine
        .connection()
        .execute_batch(&format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS}) \
             INSERT INTO \"{}\" SELECT x, x % 100 FROM c",
            table_physical_name("app", "big")
        ))
        .expect("fill");
    (dir, engine)
}

/// A copy of `engine`'s database opened as a second engine.
fn second(dir: &tempfile::TempDir, engine: Engine) -> (tempfile::TempDir, Engine) {
    drop(engine);
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::copy(dir.path().join("db.sqlite"), copy.path().join("db.sqlite")).expect("copy");
    let engine =
        Engine::open(&copy.path().join("db.sqlite"), EngineConfig::default()).expect("open");
    (copy, engine)
}

/// Fifty count subqueries, as fifty columns (a sum of fifty terms nests fifty deep in
/// the guard's parser, which overflows a test thread's stack in a debug build: the lead's
/// parser rewrite bounds that separately).
fn fifty_counts() -> String {
    let terms = vec!["(SELECT count(*) FROM big)"; 50];
    format!("SELECT {}", terms.join(", "))
}

fn stopped_read(engine: &Engine) -> u64 {
    let limit = EngineConfig::default().cost_limit_per_tx;
    match engine
        .reader()
        .expect("reader")
        .query("app", &fifty_counts(), u64::MAX)
    {
        Err(SqlError::CostLimitExceeded { limit: l, used }) if l == limit => used,
        other => panic!("expected cost limit exceeded, got {other:?}"),
    }
}

fn stopped_transaction(engine: &mut Engine) -> u64 {
    let mut block = engine.begin_block().expect("begin");
    let used = match block.execute("app", &fifty_counts(), u64::MAX) {
        Err(SqlError::CostLimitExceeded { used, .. }) => used,
        other => panic!("expected cost limit exceeded, got {other:?}"),
    };
    block.discard().expect("discard");
    used
}

// Regression: SQLite compiled `SELECT count(*) FROM t` to one OP_Count instruction, which
// walks the whole b-tree in one VM step: count(*) cost 9 steps on 10k rows and on 1M
// (10 ms), so a transaction of many count(*) subqueries cost almost nothing and kept every
// validator busy for seconds.
#[test]
fn fifty_counts_of_a_million_rows_are_stopped_by_the_cost_limit_with_the_same_cost_everywhere() {
    let (dir, mut engine) = big();
    let one = engine
        .reader()
        .expect("reader")
        .query("app", "SELECT count(*) FROM big", u64::MAX)
        .expect("one count fits the limit");
    assert_eq!(one.rows, vec![vec![Value::Integer(ROWS)]]);
    assert!(
        one.cost >= ROWS as u64,
        "a count walks its rows: {}",
        one.cost
    );

    let read = stopped_read(&engine);
    assert_eq!(read, stopped_read(&engine), "two runs");
    let limit = EngineConfig::default().cost_limit_per_tx;
    assert!(read > limit && read <= limit + 16, "used {read}");
    let tx = stopped_transaction(&mut engine);
    assert_eq!(tx, stopped_transaction(&mut engine), "two runs");

    let (_copy, mut other) = second(&dir, engine);
    assert_eq!(stopped_read(&other), read, "two engines");
    assert_eq!(stopped_transaction(&mut other), tx, "two engines");
}

#[test]
fn count_gives_the_same_results_as_sqlites_own() {
    let (_dir, mut engine) = common::engine();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE t(id INTEGER PRIMARY KEY, g INTEGER) STRICT",
            "INSERT INTO t VALUES (1, 1), (2, NULL), (3, 1), (4, 2)",
            // The engine's count is usable in a view: it is registered as innocuous, which
            // SQLite requires of functions in the schema when it does not trust it.
            "CREATE VIEW v AS SELECT count(*) AS n FROM t",
        ],
    );
    let mut reader = engine.reader().expect("reader");
    for (sql, expected) in [
        ("SELECT count(*) FROM t", vec![vec![Value::Integer(4)]]),
        ("SELECT count() FROM t", vec![vec![Value::Integer(4)]]),
        (
            "SELECT count(*) FROM t WHERE id > 10",
            vec![vec![Value::Integer(0)]],
        ),
        ("SELECT count(g) FROM t", vec![vec![Value::Integer(3)]]),
        ("SELECT n FROM v", vec![vec![Value::Integer(4)]]),
        (
            "SELECT count(DISTINCT g) FROM t",
            vec![vec![Value::Integer(2)]],
        ),
        (
            "SELECT g, count(*) FROM t GROUP BY g",
            vec![
                vec![Value::Null, Value::Integer(1)],
                vec![Value::Integer(1), Value::Integer(2)],
                vec![Value::Integer(2), Value::Integer(1)],
            ],
        ),
    ] {
        assert_eq!(
            reader.query("app", sql, common::LIMIT).expect(sql).rows,
            expected,
            "{sql}"
        );
    }
}
