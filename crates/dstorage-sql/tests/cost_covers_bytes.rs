//! Reads and writes are charged for the bytes they produce (docs/sql.md, "Cost"), so the
//! cost limit bounds the memory a call can take, and a call producing too many bytes is
//! stopped while it runs, not after.

mod common;

use common::{commit_block, engine, LIMIT};
use dstorage_sql::{Engine, SqlError, Value, BYTES_PER_STEP, PROGRESS_STEP, VALUE_OVERHEAD};

/// Bytes of each blob in the test table.
const BLOB: u64 = 100_000;
/// What one row of the test table's `v` costs in bytes.
const ROW_CHARGE: u64 = (BLOB + VALUE_OVERHEAD) / BYTES_PER_STEP;

/// A table `b` of 40 rows holding a 100 kB blob each.
fn with_blobs() -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = engine();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB NOT NULL) STRICT",
            "INSERT INTO b SELECT x, zeroblob(100000) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40) SELECT x FROM c)",
        ],
    );
    (dir, engine)
}

fn used(result: Result<impl std::fmt::Debug, SqlError>, limit: u64) -> u64 {
    match result {
        Err(SqlError::CostLimitExceeded { limit: l, used }) if l == limit => used,
        other => panic!("expected cost limit exceeded at {limit}, got {other:?}"),
    }
}

// Regression: a read of 200 rows of 999 KB blobs cost about 5,400 steps and made a node
// gather and send 400 MB; the 10M-step limit allowed reads of hundreds of GB.
#[test]
fn a_read_of_large_values_is_stopped_at_the_limit_while_it_runs() {
    let (_dir, engine) = with_blobs();
    let limit = 200_000;
    let stopped = || {
        let mut reader = engine.reader().expect("reader");
        used(reader.query("app", "SELECT v FROM b", limit), limit)
    };
    let first = stopped();
    assert_eq!(first, stopped(), "the stopping point is deterministic");
    // Stopped at the first row that passed the limit: 16 rows of 100 kB, not 40.
    assert!(
        first > limit && first <= limit + ROW_CHARGE + PROGRESS_STEP,
        "used {first}"
    );
    let full = engine
        .reader()
        .expect("reader")
        .query("app", "SELECT v FROM b", LIMIT)
        .expect("within the limit");
    assert_eq!(full.rows.len(), 40);
    assert!(full.cost >= 40 * ROW_CHARGE, "cost {}", full.cost);
    // The same read in a transaction is charged the same way.
    let mut engine = engine;
    let mut block = engine.begin_block().expect("begin");
    assert_eq!(
        used(block.execute("app", "SELECT v FROM b", limit), limit),
        first
    );
}

#[test]
fn a_read_of_many_small_values_is_charged_per_value() {
    let (_dir, engine) = with_blobs();
    let mut reader = engine.reader().expect("reader");
    let one = reader
        .query("app", "SELECT id FROM b", LIMIT)
        .expect("one column")
        .cost;
    let five = reader
        .query("app", "SELECT id, id, id, id, id FROM b", LIMIT)
        .expect("five columns")
        .cost;
    // Four more integers per row, each counting the per-value overhead.
    assert!(
        five >= one + 40 * 4 * VALUE_OVERHEAD / BYTES_PER_STEP,
        "{one} {five}"
    );
}

#[test]
fn a_write_is_charged_for_the_bytes_it_writes_and_fails_alone_past_the_limit() {
    let (_dir, mut engine) = with_blobs();
    let mut block = engine.begin_block().expect("begin");
    let insert = "INSERT INTO b VALUES (?1, zeroblob(100000))";
    let err = block
        .execute_with_params("app", insert, &[100.into()], 10_000)
        .expect_err("100 kB cost more than 10,000 steps");
    assert!(
        matches!(err, SqlError::CostLimitExceeded { limit: 10_000, .. }),
        "{err}"
    );
    assert!(block.changeset().expect("changeset").records.is_empty());
    let cost = block
        .execute_with_params("app", insert, &[101.into()], LIMIT)
        .expect("within the limit")
        .cost;
    assert!(cost >= ROW_CHARGE, "cost {cost}");
    // An update writes the old and the new value into the change log: both are charged.
    let update = block
        .execute(
            "app",
            "UPDATE b SET v = zeroblob(100001) WHERE id = 101",
            LIMIT,
        )
        .expect("update")
        .cost;
    assert!(update >= 2 * ROW_CHARGE, "cost {update}");
    block.commit().expect("commit");
}

#[test]
fn a_savepoint_free_insert_of_a_large_parameter_is_charged_like_the_savepoint_path() {
    let cost_of = |savepoint_free: bool| {
        let (_dir, mut engine) = with_blobs();
        engine.set_savepoint_free_inserts(savepoint_free);
        let sql = "INSERT INTO b VALUES (?1, ?2)";
        let blob = Value::Blob(vec![7; BLOB as usize]);
        let mut block = engine.begin_block().expect("begin");
        let mut costs = Vec::new();
        for (id, limit) in [(100, LIMIT), (101, LIMIT), (102, 10_000), (103, LIMIT)] {
            let outcome = block
                .execute_with_params("app", sql, &[id.into(), blob.clone()], limit)
                .map(|o| o.cost);
            costs.push(format!("{outcome:?}"));
        }
        assert_eq!(block.changeset().expect("changeset").records.len(), 3);
        block.commit().expect("commit");
        (costs, engine.savepoint_free_runs())
    };
    let (fast, fast_runs) = cost_of(true);
    let (slow, slow_runs) = cost_of(false);
    assert_eq!(fast, slow);
    assert!(fast[2].contains("CostLimitExceeded"), "{fast:?}");
    // The cached statement ran without its savepoint where its bound fit the limit.
    assert_eq!((fast_runs, slow_runs), (2, 0));
}

#[test]
fn an_insert_of_large_values_is_stopped_within_a_row_of_the_limit() {
    let stopped = || {
        let (_dir, mut engine) = with_blobs();
        let mut block = engine.begin_block().expect("begin");
        let limit = 300_000;
        let used = used(
            block.execute(
                "app",
                "INSERT INTO b SELECT x, zeroblob(100000) FROM (WITH RECURSIVE c(x) AS (SELECT 1000 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)",
                limit,
            ),
            limit,
        );
        assert!(block.changeset().expect("changeset").records.is_empty());
        block
            .execute("app", "INSERT INTO b VALUES (41, x'00')", LIMIT)
            .expect("the block goes on");
        block.commit().expect("commit");
        used
    };
    let first = stopped();
    assert_eq!(first, stopped());
    assert!(
        first > 300_000 && first <= 300_000 + ROW_CHARGE + 100,
        "used {first}"
    );
}

#[test]
fn a_row_of_many_large_values_is_stopped_within_a_value_of_the_limit() {
    let (_dir, engine) = with_blobs();
    let columns = vec!["zeroblob(100000)"; 100];
    let sql = format!("SELECT {}", columns.join(", "));
    let limit = 100_000;
    let stopped = || {
        let mut reader = engine.reader().expect("reader");
        used(reader.query("app", &sql, limit), limit)
    };
    let first = stopped();
    assert_eq!(first, stopped());
    // 10 MB in one row: stopped at its 8th value, not after gathering all 100.
    assert!(
        first > limit && first <= limit + ROW_CHARGE + PROGRESS_STEP,
        "used {first}"
    );
}
