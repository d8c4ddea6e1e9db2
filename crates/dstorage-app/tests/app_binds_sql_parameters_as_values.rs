//! A `sql` payload with parameters binds each value to its placeholder: values are data, never SQL, and a
//! statement that does not fit its parameters fails with a code naming the cause, leaving nothing behind.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

fn with_params(schema: &str, sql: &str, params: Vec<Value>) -> Payload {
    Payload::Sql {
        schema: schema.into(),
        sql: sql.into(),
        params,
    }
}

fn rows(h: &Harness) -> Vec<Vec<Value>> {
    h.app
        .reads()
        .query("app", "SELECT id, username, age FROM users", 1_000_000)
        .unwrap()
        .rows
}

#[test]
fn bound_values_are_stored_verbatim_including_sql_lookalikes() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::ed25519();
    let evil = "x'); DROP TABLE users; --";
    let insert = "INSERT INTO users VALUES (?, ?, ?)";
    let out = h
        .block(vec![
            alice.tx(deploy("app", USERS)),
            alice.tx(with_params(
                "app",
                insert,
                vec![Value::Integer(1), Value::Text(evil.into()), Value::Null],
            )),
            alice.tx(with_params(
                "app",
                insert,
                vec![
                    Value::Integer(2),
                    Value::Text("vitalik".into()),
                    Value::Integer(30),
                ],
            )),
            alice.tx(with_params(
                "app",
                "UPDATE users SET age = ?1 + ?1 WHERE id = ?2",
                vec![Value::Integer(21), Value::Integer(1)],
            )),
        ])
        .unwrap();
    for r in &out.results {
        assert_eq!(code(r), ResultCode::Ok, "{}", r.log);
    }
    assert_eq!(
        rows(&h),
        vec![
            vec![
                Value::Integer(1),
                Value::Text(evil.into()),
                Value::Integer(42)
            ],
            vec![
                Value::Integer(2),
                Value::Text("vitalik".into()),
                Value::Integer(30)
            ],
        ]
    );
}

#[test]
fn a_statement_that_does_not_fit_its_parameters_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::ed25519();
    h.block(vec![alice.tx(deploy("app", USERS))]).unwrap();
    let cases = [
        (
            "INSERT INTO users VALUES (?, ?, ?)",
            vec![Value::Integer(1)],
            "the statement takes 3",
        ),
        (
            "INSERT INTO users VALUES (?, 'a', 1); INSERT INTO users VALUES (?, 'b', 2)",
            vec![Value::Integer(1), Value::Integer(2)],
            "one statement",
        ),
        (
            "INSERT INTO users VALUES (?, ?, ?)",
            vec![
                Value::Integer(1),
                Value::Text("a".into()),
                Value::Text("not an integer".into()),
            ],
            "users",
        ),
    ];
    for (i, (stmt, params, needle)) in cases.into_iter().enumerate() {
        let out = h
            .block(vec![alice.tx(with_params("app", stmt, params))])
            .unwrap();
        let r = &out.results[0];
        assert_ne!(code(r), ResultCode::Ok, "case {i} succeeded");
        assert!(
            r.log.contains(needle),
            "case {i}: {:?} lacks {needle:?}",
            r.log
        );
        assert!(rows(&h).is_empty(), "case {i} left rows behind");
    }
}

#[test]
fn nodes_executing_the_same_parameterised_block_agree_on_the_app_hash() {
    let mut hashes = Vec::new();
    let mut alice = Wallet::ed25519();
    let txs: Vec<Vec<u8>> = std::iter::once(alice.tx(deploy("app", USERS)))
        .chain((0..20).map(|i| {
            alice.tx(with_params(
                "app",
                "INSERT INTO users VALUES (?, ?, ?)",
                vec![
                    Value::Integer(i),
                    Value::Text(format!("user{i}")),
                    Value::Integer(i % 7),
                ],
            ))
        }))
        .collect();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
        let out = h.block(txs.clone()).unwrap();
        assert!(out.results.iter().all(|r| code(r) == ResultCode::Ok));
        assert_eq!(rows(&h).len(), 20);
        hashes.push(out.app_hash);
    }
    assert_eq!(hashes[0], hashes[1]);
}

#[test]
fn checktx_reuses_an_insert_estimate_until_a_block_changes_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::ed25519();
    h.block(vec![alice.tx(deploy("app", USERS))]).unwrap();
    let insert = |nonce: u64, id: i64| {
        alice.tx_with_nonce(
            nonce,
            with_params(
                "app",
                "INSERT INTO users(id, username) VALUES (?, 'u')",
                vec![Value::Integer(id)],
            ),
        )
    };
    let first = h.check_tx(&insert(2, 1));
    assert_eq!(first.code.value(), 0, "{}", first.log);
    assert!(first.gas_wanted > 0);
    let again = h.check_tx(&insert(3, 2));
    assert_eq!(again.code.value(), 0, "{}", again.log);
    assert_eq!(again.gas_wanted, first.gas_wanted);

    // A wider table costs more to write: the remembered estimate must not outlive the DDL.
    let widened = h
        .block(vec![alice.tx_with_nonce(
            2,
            sql(
                "app",
                "DROP TABLE users; CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, age INTEGER, extra TEXT) STRICT",
            ),
        )])
        .unwrap();
    assert_eq!(
        code(&widened.results[0]),
        ResultCode::Ok,
        "{}",
        widened.results[0].log
    );
    let after = h.check_tx(&insert(3, 1));
    assert_eq!(after.code.value(), 0, "{}", after.log);
    assert_eq!(
        after.gas_wanted,
        first.gas_wanted + 6,
        "one more column: two more steps to write it, four for its value's byte charge"
    );
}
