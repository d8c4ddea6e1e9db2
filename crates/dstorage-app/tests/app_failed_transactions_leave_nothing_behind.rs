//! Transactions that fail in a block get a result code naming the cause, spend their nonce, and leave no
//! partial writes behind.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_app::AppConfig;
use dstorage_types::result::ResultCode;
use dstorage_types::value::Value;

fn count(h: &Harness) -> i64 {
    match &h
        .app
        .reads()
        .query("app", "SELECT count(*) FROM users", 1_000_000)
        .unwrap()
        .rows[0][0]
    {
        Value::Integer(n) => *n,
        other => panic!("count is {other:?}"),
    }
}

#[test]
fn a_failing_statement_rolls_back_its_whole_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::eth();
    h.block(vec![
        alice.tx(deploy("app", USERS)),
        alice.tx(sql("app", "INSERT INTO users VALUES (1, 'a', 1)")),
    ])
    .unwrap();
    let cases = [
        (
            "INSERT INTO users VALUES (2, 'b', 2); INSERT INTO users VALUES (1, 'dup', 1)",
            ResultCode::SqlError,
            "UNIQUE",
        ),
        (
            "INSERT INTO users VALUES (3, 'c', 3); INSERT INTO users VALUES (4, 'd', 'old')",
            ResultCode::SqlError,
            "users",
        ),
        (
            "INSERT INTO users VALUES (5, 'e', 5); SELEC 1",
            ResultCode::SqlRefused,
            "SELEC",
        ),
        (
            "INSERT INTO users VALUES (6, 'f', 6); INSERT INTO nowhere VALUES (1)",
            ResultCode::SqlError,
            "nowhere",
        ),
        (
            "INSERT INTO users VALUES (7, 'g', strftime('%s','now'))",
            ResultCode::SqlRefused,
            "strftime",
        ),
    ];
    for (i, (stmt, want, needle)) in cases.iter().enumerate() {
        let out = h
            .finalize_and_commit(
                h.app.committed().height + 1,
                vec![alice.tx(sql("app", stmt)).into()],
            )
            .unwrap();
        let r = &out.results[0];
        assert_eq!(code(r), *want, "case {i}: {}", r.log);
        assert!(
            r.log.contains(needle),
            "case {i}: {:?} lacks {needle:?}",
            r.log
        );
        assert_eq!(count(&h), 1, "case {i} left rows behind");
    }
    // Every failed transaction still spent its nonce (2 + 5 = 7 used).
    assert_eq!(h.app.reads().nonce(&alice.identity()).unwrap(), 7);
}

#[test]
fn a_runaway_query_stops_at_the_cost_limit_with_the_same_cost_everywhere() {
    let mut results = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AppConfig::new(dir.path().join("db.sqlite"));
        config.cost_limit_per_tx = 50_000;
        let h = Harness::start_with(config, CHAIN).unwrap();
        let mut alice = Wallet::eth();
        let runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO users SELECT x, 'n', x FROM c";
        h.block(vec![alice.tx(deploy("app", USERS))]).unwrap();
        // Regression: SQLite rolls back the *whole* transaction when a writing statement is interrupted, which
        // once took the block's earlier writes with it and left the block uncommittable. The first
        // transaction's write must survive the runaway second one.
        let ok = alice.tx(sql("app", "INSERT INTO users VALUES (-1, 'kept', 0)"));
        let out = h
            .finalize_and_commit(2, vec![ok.into(), alice.tx(sql("app", runaway)).into()])
            .unwrap();
        assert_eq!(
            code(&out.results[0]),
            ResultCode::Ok,
            "{}",
            out.results[0].log
        );
        let r = &out.results[1];
        assert_eq!(code(r), ResultCode::CostLimitExceeded, "{}", r.log);
        assert!(r.log.contains("50000"), "{}", r.log);
        assert_eq!(count(&h), 1);
        assert_eq!(
            h.app.reads().nonce(&alice.identity()).unwrap(),
            3,
            "the runaway transaction spends its nonce"
        );
        results.push((r.gas_used, out.app_hash));
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn a_deploy_whose_sql_fails_leaves_no_schema_and_the_name_stays_free() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::eth();
    let out = h
        .block(vec![alice.tx(deploy(
            "app",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL) STRICT",
        ))])
        .unwrap();
    assert_ne!(code(&out.results[0]), ResultCode::Ok);
    assert!(
        out.results[0].log.contains("REAL"),
        "{}",
        out.results[0].log
    );
    assert!(h.app.reads().schemas().unwrap().is_empty());
    let out = h.block(vec![alice.tx(deploy("app", USERS))]).unwrap();
    assert_eq!(
        code(&out.results[0]),
        ResultCode::Ok,
        "{}",
        out.results[0].log
    );
    // A second deploy of the same name is refused.
    let mut bob = Wallet::ed25519();
    let out = h
        .finalize_and_commit(3, vec![bob.tx(deploy("app", USERS)).into()])
        .unwrap();
    assert_eq!(code(&out.results[0]), ResultCode::SchemaExists);
}

#[test]
fn dropping_a_schema_removes_its_data_and_shows_in_the_changeset() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::eth();
    h.block(vec![
        alice.tx(deploy("app", USERS)),
        alice.tx(sql("app", "INSERT INTO users VALUES (1, 'a', 1)")),
    ])
    .unwrap();
    let out = h
        .block(vec![alice.tx(dstorage_types::tx::Payload::DropSchema {
            schema: "app".into(),
        })])
        .unwrap();
    assert_eq!(
        code(&out.results[0]),
        ResultCode::Ok,
        "{}",
        out.results[0].log
    );
    assert!(h.app.reads().schemas().unwrap().is_empty());
    let cs = h.app.reads().changeset(2).unwrap().unwrap().to_string();
    assert!(
        cs.contains("DELETE"),
        "the dropped row must be in the changeset:\n{cs}"
    );
}
