//! Regression tests for issue 10: one signed transaction halted the chain for good. Every
//! validator failed the same block (`executing block N: storage: SQLite: string or blob too
//! big`) after a transaction whose block changeset or record was over the system store's
//! 1,000,000-byte value limit; and deep SQL overflowed the stack of the thread checking it.
//! Each case now ends with the transaction's own result, and the chain goes on.

mod common;

use bytes::Bytes;
use common::{code, deploy, sql, Wallet};
use dstorage_app::testing::Harness;
use dstorage_app::AppConfig;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::tx_hash;
use dstorage_types::value::Value;

const TABLE: &str = "CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB) STRICT";

fn start(config: Option<AppConfig>) -> (tempfile::TempDir, Harness, Wallet) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config.unwrap_or_else(|| AppConfig::new(dir.path().join("db.sqlite")));
    let config = AppConfig {
        db_path: dir.path().join("db.sqlite"),
        ..config
    };
    let h = Harness::start_with(config, common::CHAIN).expect("start");
    let mut w = Wallet::eth();
    let out = h.block(vec![w.tx(deploy("app", TABLE))]).expect("deploy");
    assert_eq!(code(&out.results[0]), ResultCode::Ok);
    (dir, h, w)
}

/// Run `txs` in one block; return each transaction's committed code and the block's app hash.
fn block(h: &Harness, txs: Vec<Vec<u8>>) -> (Vec<ResultCode>, [u8; 32]) {
    let height = h.app.committed().height + 1;
    let out = h
        .finalize_and_commit(height, txs.into_iter().map(Bytes::from).collect())
        .expect("the block commits");
    (out.results.iter().map(code).collect(), out.app_hash)
}

fn count(h: &Harness) -> Value {
    let r = h
        .app
        .reads()
        .query("app", "SELECT count(*) FROM b", 1_000_000)
        .expect("count");
    r.rows[0][0].clone()
}

#[test]
fn the_three_block_halting_transactions_of_the_issue_commit() {
    let (_dir, h, mut w) = start(None);
    // One transaction whose changeset is over a megabyte.
    let (codes, first) = block(
        &h,
        vec![w.tx(sql(
            "app",
            "INSERT INTO b VALUES (4, zeroblob(520000)), (5, zeroblob(520000))",
        ))],
    );
    assert_eq!(codes, [ResultCode::Ok]);
    // Three valid 400 KB inserts in one block.
    let (codes, second) = block(
        &h,
        (6..9)
            .map(|id| {
                w.tx(sql(
                    "app",
                    &format!("INSERT INTO b VALUES ({id}, zeroblob(400000))"),
                ))
            })
            .collect(),
    );
    assert_eq!(codes, [ResultCode::Ok; 3]);
    assert!(h
        .app
        .reads()
        .changeset(h.app.committed().height)
        .expect("read")
        .is_some());
    // An 800 KB RETURNING result: a transaction record over a megabyte as JSON.
    let returning = w.tx(sql(
        "app",
        "UPDATE b SET id = id WHERE id = 6 RETURNING v, v",
    ));
    let (codes, third) = block(&h, vec![returning.clone()]);
    assert_eq!(codes, [ResultCode::Ok]);
    let record = h
        .app
        .reads()
        .tx(&tx_hash(&returning))
        .expect("read")
        .expect("record");
    assert_eq!(record.rows, vec![vec![Value::Blob(vec![0; 400000]); 2]]);
    // The chain goes on.
    let (codes, fourth) = block(
        &h,
        vec![w.tx(sql("app", "INSERT INTO b VALUES (1, x'01')"))],
    );
    assert_eq!(codes, [ResultCode::Ok]);
    assert_eq!(count(&h), Value::Integer(6));
    let hashes = [first, second, third, fourth];
    for pair in hashes.windows(2) {
        assert_ne!(pair[0], pair[1]);
    }
    let at = h.app.committed();
    let h = h.restart().expect("restart");
    assert_eq!(h.app.committed(), at);
}

#[test]
fn a_hostile_generator_of_bytes_fails_alone_and_the_block_goes_on() {
    // Under the default cost limit the bytes the generator moves stop it first
    // (`a_hostile_generator_of_bytes_stops_at_the_cost_limit_and_the_block_goes_on`); with a
    // limit high enough, its 20 MB meet the write limit.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = AppConfig {
        cost_limit_per_tx: 1_000_000_000,
        ..AppConfig::new(dir.path().join("db.sqlite"))
    };
    let (_dir, h, mut w) = start(Some(config));
    let (codes, _) = block(
        &h,
        vec![
            w.tx(sql("app", "INSERT INTO b VALUES (1, x'01')")),
            w.tx(sql(
                "app",
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<20) \
                 INSERT INTO b SELECT x + 10, zeroblob(999000) FROM c",
            )),
            w.tx(sql("app", "INSERT INTO b VALUES (2, x'02')")),
        ],
    );
    assert_eq!(
        codes,
        [
            ResultCode::Ok,
            ResultCode::DataLimitExceeded,
            ResultCode::Ok
        ]
    );
    assert_eq!(count(&h), Value::Integer(2));
}

#[test]
fn a_hostile_generator_of_bytes_stops_at_the_cost_limit_and_the_block_goes_on() {
    // Regression: the rows of an INSERT ... SELECT were made and sorted with only their VM
    // steps charged (1,000 rows of 999 KB: about 1 GB, seconds of work on every validator)
    // and then inserted in a loop with no meter call, where only the write limit or the
    // last-resort interrupt (4x the limit, the block rolled back and executed again) ended
    // it. Now the bytes it moves are charged and it stops at the cost limit, alone.
    let outcome = || {
        let (_dir, h, mut w) = start(None);
        let height = h.app.committed().height + 1;
        let out = h
            .finalize_and_commit(
                height,
                vec![
                    Bytes::from(w.tx(sql("app", "INSERT INTO b VALUES (1, x'01')"))),
                    Bytes::from(w.tx(sql(
                        "app",
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<1000) \
                         INSERT INTO b SELECT x + 10, zeroblob(999000) FROM c",
                    ))),
                    Bytes::from(w.tx(sql("app", "INSERT INTO b VALUES (2, x'02')"))),
                ],
            )
            .expect("the block commits");
        let codes: Vec<ResultCode> = out.results.iter().map(code).collect();
        assert_eq!(
            codes,
            [
                ResultCode::Ok,
                ResultCode::CostLimitExceeded,
                ResultCode::Ok
            ]
        );
        assert_eq!(count(&h), Value::Integer(2));
        let log = out.results[1].log.clone();
        assert!(
            log.starts_with("cost limit exceeded: limit 10000000, used "),
            "{log}"
        );
        (out.results[1].gas_used, out.app_hash)
    };
    // The same cost and app hash on two independent nodes.
    assert_eq!(outcome(), outcome());
}

#[test]
fn the_transaction_that_would_overfill_a_block_fails_with_block_full() {
    let config = AppConfig {
        max_tx_write_bytes: 3_000_000,
        max_result_bytes: 3_000_000,
        max_block_write_bytes: 5_000_000,
        ..AppConfig::new("unused")
    };
    let (_dir, h, mut w) = start(Some(config));
    let two_rows = |first: u32| {
        format!(
            "INSERT INTO b VALUES ({first}, zeroblob(900000)), ({}, zeroblob(900000))",
            first + 1
        )
    };
    let (codes, _) = block(
        &h,
        vec![
            w.tx(sql("app", &two_rows(10))),
            w.tx(sql("app", &two_rows(20))),
            w.tx(sql("app", &two_rows(30))),
            w.tx(sql("app", "INSERT INTO b VALUES (1, x'01')")),
        ],
    );
    assert_eq!(
        codes,
        [
            ResultCode::Ok,
            ResultCode::Ok,
            ResultCode::BlockFull,
            ResultCode::Ok
        ]
    );
    // Sent again (with a new nonce), it fits in the next block.
    let (codes, _) = block(&h, vec![w.tx(sql("app", &two_rows(30)))]);
    assert_eq!(codes, [ResultCode::Ok]);
    assert_eq!(count(&h), Value::Integer(7));
}

#[test]
fn deep_sql_is_refused_at_checktx_and_in_a_block_on_a_small_stack() {
    let (_dir, h, mut w) = start(None);
    let deep = format!("SELECT 1{}", "+1".repeat(30_000));
    let tx = w.tx(sql("app", &deep));
    let h = std::sync::Arc::new(h);
    let checker = std::sync::Arc::clone(&h);
    let checked_tx = tx.clone();
    #[allow(
        clippy::disallowed_methods,
        reason = "the test is that CheckTx runs on a thread with a small stack"
    )]
    let check = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || checker.check_tx(&checked_tx))
        .expect("spawn")
        .join()
        .expect("CheckTx returned");
    assert_eq!(check.code.value(), ResultCode::SqlRefused.code());
    assert!(check.log.contains("nested too deeply"), "{}", check.log);
    // A proposer that includes it anyway: the transaction fails, the block commits.
    let (codes, _) = block(
        &h,
        vec![tx, w.tx(sql("app", "INSERT INTO b VALUES (1, x'01')"))],
    );
    assert_eq!(codes, [ResultCode::SqlRefused, ResultCode::Ok]);
    let read = h
        .app
        .reads()
        .query("app", &deep, 1_000_000)
        .expect_err("refused");
    assert!(read.to_string().contains("nested too deeply"), "{read}");
}
