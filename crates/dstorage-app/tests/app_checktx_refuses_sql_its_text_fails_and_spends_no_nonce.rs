//! SQL that fails by its text alone (it does not parse, or the guard refuses a construct, a table definition or a
//! name) is refused at CheckTx with `sql_refused`, for a deploy as for a transaction, and spends no nonce. The
//! same transaction put in a block by a proposer that skipped CheckTx is still a valid proposal, and fails there
//! with the same code and message. SQL that fails only on the state (unknown tables, constraints, a taken
//! schema name) is admitted and fails in its block.
//!
//! Regression: a table without STRICT or without a PRIMARY KEY, a REAL column and CREATE TRIGGER were admitted
//! and committed as `sql_error` results (nonce spent, block slot used), since CheckTx judged no deploy at all,
//! classed table-definition errors as input, and stopped judging a transaction at its first statement that
//! named a table it creates.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use tendermint::abci::response::ProcessProposal;

fn setup() -> (tempfile::TempDir, Harness, Wallet) {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::eth();
    h.block(vec![
        alice.tx(deploy("app", USERS)),
        alice.tx(sql("app", "INSERT INTO users VALUES (1, 'a', 1)")),
    ])
    .unwrap();
    (dir, h, alice)
}

fn check(h: &Harness, tx: &[u8]) -> (ResultCode, String) {
    let r = h.check_tx(tx);
    (
        ResultCode::from_code(r.code.value()).expect("known code"),
        r.log,
    )
}

/// Put `tx` in a block without CheckTx, as a byzantine or careless proposer could: the proposal is valid
/// (ProcessProposal accepts it) and the transaction's result is returned.
fn in_a_block(h: &Harness, tx: &[u8]) -> (ResultCode, String) {
    let height = h.app.committed().height + 1;
    let txs = vec![tx.to_vec().into()];
    assert!(
        matches!(
            h.process(height, txs.clone()).unwrap(),
            ProcessProposal::Accept
        ),
        "a proposal holding a transaction CheckTx refuses for its SQL is still valid"
    );
    let out = h.finalize_and_commit(height, txs).unwrap();
    (code(&out.results[0]), out.results[0].log.clone())
}

const TRIGGER: &str = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END";

#[test]
fn sql_its_text_fails_is_refused_at_checktx_and_fails_the_same_way_in_a_block() {
    let (_d, h, mut alice) = setup();
    let table = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT) STRICT";
    let cases: Vec<(Payload, &str)> = vec![
        (
            deploy("d", "CREATE TABLE t (id INTEGER PRIMARY KEY)"),
            "must be STRICT",
        ),
        (
            deploy("d", "CREATE TABLE t (a INTEGER) STRICT"),
            "PRIMARY KEY is required",
        ),
        (
            deploy(
                "d",
                "CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL) STRICT",
            ),
            "column x has type REAL",
        ),
        (
            deploy("d", "CREATE TABLE t (id INTEGER PRIMARY KEY, x ANY) STRICT"),
            "column x has type ANY",
        ),
        (
            deploy("d", "CREATE TABLE t (id INTEGER PRIMARY KEY, x) STRICT"),
            "no type",
        ),
        (
            deploy(
                "d",
                "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT) STRICT",
            ),
            "AUTOINCREMENT",
        ),
        (
            deploy("d", "CREATE TEMP TABLE t (id INTEGER PRIMARY KEY) STRICT"),
            "temporary",
        ),
        (
            deploy("d", "CREATE TABLE t AS SELECT 1 AS id"),
            "list the columns",
        ),
        // Statements after one that creates a table are judged too, though the table does not exist yet.
        (deploy("d", &format!("{table}; {TRIGGER}")), "TRIGGER"),
        (
            deploy(
                "d",
                &format!("{table}; INSERT INTO t VALUES (1, hex(random()))"),
            ),
            "random",
        ),
        (
            deploy("d", &format!("{table}; INSERT INTO t VALUES (1.5, 'x')")),
            "1.5",
        ),
        (deploy("Bad-Name", table), "schema name \"Bad-Name\""),
        (deploy("d", ""), "no statement"),
        (sql("app", TRIGGER), "TRIGGER"),
        (
            sql("app", "CREATE TABLE t2 (a INTEGER) STRICT"),
            "PRIMARY KEY is required",
        ),
        (
            sql(
                "app",
                "CREATE TABLE t2 (id INTEGER PRIMARY KEY, r REAL) STRICT",
            ),
            "column r has type REAL",
        ),
        (
            sql(
                "app",
                &format!("{table}; INSERT INTO t SELECT id, v FROM t LIMIT 1; {TRIGGER}"),
            ),
            "TRIGGER",
        ),
        (sql("app", "SELEC 1"), "does not parse"),
        (
            sql("app", "INSERT INTO other.users VALUES (2, 'b', 2)"),
            "may not write to other.users",
        ),
        (
            sql("app", "INSERT INTO \"a b\" VALUES (2)"),
            "table name \"a b\" is invalid",
        ),
        (
            sql("app", "SELECT id, row_number() OVER () FROM users"),
            "row_number",
        ),
    ];
    let schemas_before = h.app.reads().schemas().unwrap().len();
    for (i, (payload, needle)) in cases.into_iter().enumerate() {
        let nonce = alice.next_nonce;
        let tx = alice.tx_with_nonce(nonce, payload);
        let (got, log) = check(&h, &tx);
        assert_eq!(got, ResultCode::SqlRefused, "case {i}: {log}");
        assert!(log.contains(needle), "case {i}: {log:?} lacks {needle:?}");
        assert_eq!(
            h.app.reads().nonce(&alice.identity()).unwrap(),
            nonce - 1,
            "case {i}: a refused transaction spends no nonce"
        );
        // In a block the same transaction fails alike, and spends its nonce there.
        let (in_block, block_log) = in_a_block(&h, &tx);
        assert_eq!(
            (in_block, block_log.as_str()),
            (ResultCode::SqlRefused, log.as_str()),
            "case {i}"
        );
        assert_eq!(h.app.reads().nonce(&alice.identity()).unwrap(), nonce);
        alice.next_nonce += 1;
    }
    // No refused deploy left a schema behind.
    assert_eq!(h.app.reads().schemas().unwrap().len(), schemas_before);
}

#[test]
fn sql_that_fails_only_on_the_state_is_admitted_and_fails_in_its_block() {
    let (_d, h, mut alice) = setup();
    let cases: Vec<(Payload, ResultCode, &str)> = vec![
        (
            sql("app", "INSERT INTO nowhere VALUES (1)"),
            ResultCode::SqlError,
            "no such table",
        ),
        (
            sql("app", "INSERT INTO users VALUES (1, 'again', 1)"),
            ResultCode::SqlError,
            "UNIQUE constraint failed",
        ),
        (
            sql("app", "INSERT INTO users VALUES (2, 'b', 'not a number')"),
            ResultCode::SqlError,
            "cannot store TEXT value in INTEGER column",
        ),
        (
            deploy("app", USERS),
            ResultCode::SchemaExists,
            "already exists",
        ),
        (
            deploy(
                "d",
                "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT; INSERT INTO t VALUES (1), (1)",
            ),
            ResultCode::SqlError,
            "UNIQUE constraint failed",
        ),
    ];
    for (i, (payload, want, needle)) in cases.into_iter().enumerate() {
        let tx = alice.tx(payload);
        let (got, log) = check(&h, &tx);
        assert_eq!(got, ResultCode::Ok, "case {i} is admitted: {log}");
        let out = h.block(vec![tx]).unwrap();
        let r = &out.results[0];
        assert_eq!(code(r), want, "case {i}: {}", r.log);
        assert!(
            r.log.contains(needle),
            "case {i}: {:?} lacks {needle:?}",
            r.log
        );
    }
    assert_eq!(
        h.app.reads().nonce(&alice.identity()).unwrap(),
        alice.next_nonce - 1
    );
}

#[test]
fn a_refused_statement_after_one_that_fails_on_the_state_is_refused_at_checktx() {
    // In a block the first failing statement decides the result; CheckTx refuses by the later statement's
    // text, since the transaction cannot succeed in any state (docs/protocol.md, result codes).
    let (_d, h, alice) = setup();
    let tx = alice.tx_with_nonce(
        3,
        sql(
            "app",
            "INSERT INTO nowhere VALUES (1); CREATE TABLE t2 (id INTEGER PRIMARY KEY)",
        ),
    );
    let (got, log) = check(&h, &tx);
    assert_eq!(got, ResultCode::SqlRefused, "{log}");
    assert!(log.contains("must be STRICT"), "{log}");
    let (in_block, block_log) = in_a_block(&h, &tx);
    assert_eq!(in_block, ResultCode::SqlError, "{block_log}");
    assert!(block_log.contains("no such table"), "{block_log}");
}
