//! Regression tests for issue 10: a block's changeset or a transaction record over the
//! system store's 1,000,000-byte value limit failed the block on every node, for good
//! (`storage: SQLite: string or blob too big`). Now the system store takes such values, and
//! what a transaction writes or returns is limited while it runs: it fails alone, with its
//! own error, and the block goes on.

mod common;

use common::LIMIT;
use dstorage_sql::{Engine, EngineConfig, SqlError, Value};
use tempfile::TempDir;

const MIB: u64 = 1024 * 1024;

fn engine_with(config: EngineConfig) -> (TempDir, Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut engine = Engine::open(&dir.path().join("db.sqlite"), config).expect("open");
    common::commit_block(
        &mut engine,
        Some("app"),
        "app",
        &["CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB) STRICT"],
    );
    (dir, engine)
}

fn rows(engine: &Engine) -> i64 {
    engine
        .connection()
        .query_row("SELECT count(*) FROM \"app.b\"", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn a_changeset_over_a_megabyte_is_stored_and_read_back() {
    let (_dir, mut engine) = engine_with(EngineConfig::default());
    let mut block = engine.begin_block().expect("begin");
    block
        .execute(
            "app",
            "INSERT INTO b VALUES (4, zeroblob(520000)), (5, zeroblob(520000))",
            LIMIT,
        )
        .expect("two half-megabyte rows");
    let changeset = block.changeset_encoded().expect("changeset");
    assert!(
        changeset.bytes.len() > 1_040_000,
        "{}",
        changeset.bytes.len()
    );
    block
        .kv_put(b"cs", &changeset.bytes)
        .expect("a 1 MB system value");
    let record = vec![7u8; 3_000_000];
    block
        .kv_put(b"record", &record)
        .expect("a 3 MB system value");
    block.commit().expect("commit");
    assert_eq!(
        engine.kv_get(b"cs").expect("get"),
        Some(changeset.bytes.clone())
    );
    let reader = engine.reader().expect("reader");
    assert_eq!(reader.kv_get(b"record").expect("get"), Some(record));
    // The user limit still holds for user values.
    let mut block = engine.begin_block().expect("begin");
    let err = block
        .execute("app", "INSERT INTO b VALUES (6, zeroblob(1000001))", LIMIT)
        .expect_err("over max_value_length");
    assert!(err.to_string().contains("too big"), "{err}");
    block.discard().expect("discard");
}

#[test]
fn a_hostile_generator_of_bytes_fails_alone_with_the_write_limit() {
    // The cost limit now stops the generator of 1,000 rows of 999 KB this test first ran
    // (metering_stops_runaways.rs, `a_runaway_insert_select_stops_at_the_cost_limit`):
    // with a limit high enough, 40 MB still meet the write limit first.
    let limit = 1_000_000_000;
    let (_dir, mut engine) = engine_with(EngineConfig {
        cost_limit_per_tx: limit,
        ..EngineConfig::default()
    });
    let mut block = engine.begin_block().expect("begin");
    block
        .execute("app", "INSERT INTO b VALUES (1, x'01')", LIMIT)
        .expect("before");
    // 40 MB from a 100-byte statement.
    let err = block
        .execute(
            "app",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<40) \
             INSERT INTO b SELECT x + 10, zeroblob(999000) FROM c",
            limit,
        )
        .expect_err("over the write limit");
    assert!(
        matches!(err, SqlError::DataLimitExceeded { what: "writes", limit } if limit == 8 * MIB),
        "{err}"
    );
    assert!(err.to_string().contains("split it"), "{err}");
    block
        .execute("app", "INSERT INTO b VALUES (2, x'02')", LIMIT)
        .expect("after");
    let changeset = block.changeset().expect("changeset");
    assert_eq!(changeset.records.len(), 2, "{changeset}");
    block.commit().expect("commit");
    assert_eq!(rows(&engine), 2);
}

#[test]
fn the_transaction_that_would_overfill_the_block_fails_with_block_full() {
    let config = EngineConfig {
        max_tx_write_bytes: 3 * MIB,
        max_result_bytes: 3 * MIB,
        max_block_write_bytes: 5 * MIB,
        ..EngineConfig::default()
    };
    let run = || {
        let (dir, mut engine) = engine_with(config.clone());
        let mut block = engine.begin_block().expect("begin");
        let mut outcomes = Vec::new();
        for id in 0..4 {
            let sql = format!(
                "INSERT INTO b VALUES ({}, zeroblob(900000)), ({}, zeroblob(900000))",
                2 * id,
                2 * id + 1
            );
            outcomes.push(block.execute("app", &sql, LIMIT).map(|_| ()));
        }
        // A small write still fits in what is left.
        outcomes.push(
            block
                .execute("app", "INSERT INTO b VALUES (100, x'00')", LIMIT)
                .map(|_| ()),
        );
        let changeset = block.changeset_encoded().expect("changeset").bytes;
        block.commit().expect("commit");
        (dir, engine, outcomes, changeset)
    };
    let (_d1, e1, outcomes, cs1) = run();
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok(), "{outcomes:?}");
    for o in &outcomes[2..4] {
        assert!(
            matches!(o, Err(SqlError::BlockFull { what: "writes", limit, left }) if *limit == 5 * MIB && *left < 2 * MIB),
            "{o:?}"
        );
        assert!(o.as_ref().unwrap_err().to_string().contains("later block"));
    }
    assert!(outcomes[4].is_ok(), "{:?}", outcomes[4]);
    assert_eq!(rows(&e1), 5);
    // Every node counts the same bytes: the same block gives the same changeset.
    let (_d2, _e2, _, cs2) = run();
    assert_eq!(cs1, cs2);
}

#[test]
fn a_result_over_the_limit_fails_the_transaction_and_undoes_its_writes() {
    let config = EngineConfig {
        max_result_bytes: 500_000,
        ..EngineConfig::default()
    };
    let (_dir, mut engine) = engine_with(config);
    common::commit_block(
        &mut engine,
        None,
        "app",
        &["INSERT INTO b VALUES (1, zeroblob(300000))"],
    );
    let mut block = engine.begin_block().expect("begin");
    let err = block
        .execute(
            "app",
            "UPDATE b SET v = zeroblob(300001) WHERE id = 1 RETURNING v, v",
            LIMIT,
        )
        .expect_err("600 KB of result");
    assert!(
        matches!(
            err,
            SqlError::DataLimitExceeded {
                what: "returns",
                limit: 500_000
            }
        ),
        "{err}"
    );
    let one = block
        .execute(
            "app",
            "UPDATE b SET v = x'01' WHERE id = 1 RETURNING id",
            LIMIT,
        )
        .expect("a small result");
    assert_eq!(one.rows.expect("rows").rows, vec![vec![Value::Integer(1)]]);
    block.commit().expect("commit");
    let mut reader = engine.reader().expect("reader");
    let r = reader.query("app", "SELECT v FROM b", LIMIT).expect("read");
    assert_eq!(r.rows, vec![vec![Value::Blob(vec![1])]]);
}

#[test]
fn a_read_over_the_result_limit_is_refused_without_holding_its_rows() {
    let config = EngineConfig {
        max_result_bytes: 2 * MIB,
        ..EngineConfig::default()
    };
    let (_dir, mut engine) = engine_with(config);
    common::commit_block(
        &mut engine,
        None,
        "app",
        &[
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<5) \
           INSERT INTO b SELECT x, zeroblob(999000) FROM c",
        ],
    );
    let mut reader = engine.reader().expect("reader");
    let err = reader
        .query("app", "SELECT v FROM b", LIMIT)
        .expect_err("5 MB of rows");
    assert!(
        matches!(err, SqlError::DataLimitExceeded { what: "returns", limit } if limit == 2 * MIB),
        "{err}"
    );
    let two = reader
        .query("app", "SELECT id FROM b WHERE id <= 2", LIMIT)
        .expect("small read");
    assert_eq!(two.rows.len(), 2);
}

#[test]
fn repeated_parameterized_inserts_fill_the_block_without_aborting_it() {
    let config = EngineConfig {
        max_tx_write_bytes: 3 * MIB,
        max_result_bytes: MIB,
        max_block_write_bytes: 3 * MIB,
        ..EngineConfig::default()
    };
    let (_dir, mut engine) = engine_with(config);
    let mut block = engine.begin_block().expect("begin");
    let mut codes = Vec::new();
    for id in 0..6 {
        let r = block.execute_with_params(
            "app",
            "INSERT INTO b VALUES (?, ?)",
            &[Value::Integer(id), Value::Blob(vec![9; 900_000])],
            LIMIT,
        );
        codes.push(match r {
            Ok(_) => "ok".to_owned(),
            Err(SqlError::BlockFull { .. }) => "block_full".to_owned(),
            Err(e) => panic!("{e}"),
        });
    }
    // The first runs are candidates for the savepoint-free path; near the end of the budget
    // the engine takes the savepoint instead, so the row past it is undone.
    assert_eq!(
        codes,
        ["ok", "ok", "ok", "block_full", "block_full", "block_full"]
    );
    block.commit().expect("commit");
    assert_eq!(rows(&engine), 3);
}

#[test]
fn dropping_a_table_whose_rows_are_over_the_write_limit_fails_and_keeps_it() {
    let config = EngineConfig {
        max_tx_write_bytes: 2 * MIB,
        ..EngineConfig::default()
    };
    let (_dir, mut engine) = engine_with(config);
    for id in 0..3 {
        common::commit_block(
            &mut engine,
            None,
            "app",
            &[&format!("INSERT INTO b VALUES ({id}, zeroblob(900000))")],
        );
    }
    let mut block = engine.begin_block().expect("begin");
    let err = block
        .execute("app", "DROP TABLE b", LIMIT)
        .expect_err("2.7 MB of deletes");
    assert!(
        matches!(err, SqlError::DataLimitExceeded { what: "writes", .. }),
        "{err}"
    );
    let err = block.drop_schema("app").expect_err("the same rows");
    assert!(
        matches!(err, SqlError::DataLimitExceeded { what: "writes", .. }),
        "{err}"
    );
    block
        .execute("app", "DELETE FROM b WHERE id = 0", LIMIT)
        .expect("one row at a time fits");
    assert!(block.changeset().expect("changeset").records.len() == 1);
    block.commit().expect("commit");
    assert_eq!(rows(&engine), 2);
}

#[test]
fn limits_that_could_outgrow_the_system_store_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig {
        max_block_write_bytes: 400_000_000,
        ..EngineConfig::default()
    };
    let err = Engine::open(&dir.path().join("db.sqlite"), config).expect_err("too large");
    assert!(err.to_string().contains("system value"), "{err}");
}
