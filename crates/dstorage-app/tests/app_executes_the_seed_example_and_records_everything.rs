//! The seed example through the whole application: deploy, write, read back, the block's changeset, the
//! transaction records, and the app hash chain.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::tx_hash;
use dstorage_types::value::Value;

#[test]
fn seed_example_block_changes_exactly_three_rows_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::eth();

    let deploy_tx = alice.tx(deploy("app", USERS));
    let b1 = h
        .block(vec![
            deploy_tx.clone(),
            alice.tx(sql(
                "app",
                "INSERT INTO users VALUES (1,'satoshi',49),(2,'vitalik',30),(3,'gavin',52)",
            )),
        ])
        .unwrap();
    assert_eq!(b1.results.len(), 2);
    assert!(
        b1.results.iter().all(|r| code(r) == ResultCode::Ok),
        "{:?}",
        b1.results
    );

    // Regression: DDL once reported the row count of an earlier INSERT (SQLite's changes() is not reset by DDL).
    let deployed = h
        .app
        .reads()
        .tx(&tx_hash(&deploy_tx))
        .unwrap()
        .expect("record");
    assert_eq!(deployed.rows_changed, 0);
    let inserted = h
        .app
        .reads()
        .tx(&tx_hash(&b1.txs[1]))
        .unwrap()
        .expect("record");
    assert_eq!(inserted.rows_changed, 3);

    let seed = alice.tx(sql(
        "app",
        "INSERT INTO users VALUES (4, 'eth_maxi', 44); \
         UPDATE users SET age = age + 1 WHERE username = 'satoshi'; \
         DELETE FROM users WHERE age > 50",
    ));
    let b2 = h.block(vec![seed.clone()]).unwrap();
    assert_eq!(code(&b2.results[0]), ResultCode::Ok, "{:?}", b2.results[0]);
    assert_ne!(b1.app_hash, b2.app_hash);

    // Committed state as a reader sees it.
    let rows = h
        .app
        .reads()
        .query("app", "SELECT id, username, age FROM users", 1_000_000)
        .unwrap();
    assert_eq!(
        rows.rows,
        vec![
            vec![
                Value::Integer(1),
                Value::Text("satoshi".into()),
                Value::Integer(50)
            ],
            vec![
                Value::Integer(2),
                Value::Text("vitalik".into()),
                Value::Integer(30)
            ],
            vec![
                Value::Integer(4),
                Value::Text("eth_maxi".into()),
                Value::Integer(44)
            ],
        ]
    );

    // The block's changeset: update key 1 (age at position 2 := 50), delete key 3, insert key 4.
    let cs = h.app.reads().changeset(2).unwrap().expect("changeset kept");
    let printed = cs.to_string();
    let lines: Vec<&str> = printed.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{printed}");
    assert!(
        lines[0].starts_with("UPDATE") && lines[0].contains("[2]=50"),
        "{printed}"
    );
    assert!(
        lines[1].starts_with("DELETE") && lines[1].contains('3'),
        "{printed}"
    );
    assert!(
        lines[2].starts_with("INSERT") && lines[2].contains("'eth_maxi'"),
        "{printed}"
    );

    // The transaction record.
    let rec = h.app.reads().tx(&tx_hash(&seed)).unwrap().expect("record");
    assert_eq!(rec.height, 2);
    assert_eq!(rec.index, 0);
    assert_eq!(rec.code, ResultCode::Ok);
    assert_eq!(rec.rows_changed, 3);
    assert!(rec.cost > 0);
    assert_eq!(rec.sender.as_deref(), Some(alice.identity().as_str()));
    assert_eq!(rec.nonce, Some(3));
    assert_eq!(h.app.reads().nonce(&alice.identity()).unwrap(), 3);

    // Schemas list the owner.
    let schemas = h.app.reads().schemas().unwrap();
    assert_eq!(schemas.len(), 1);
    assert_eq!(schemas[0].owner, alice.identity());
    assert_eq!(schemas[0].info.name, "app");
}

#[test]
fn only_the_owner_may_write_to_a_schema() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::eth();
    let mut mallory = Wallet::ed25519();
    h.block(vec![alice.tx(deploy("app", USERS))]).unwrap();

    // CheckTx refuses it up front ...
    let bad = mallory.tx(sql("app", "DELETE FROM users"));
    let checked = h.check_tx(&bad);
    assert_eq!(
        checked.code.value(),
        ResultCode::Unauthorized.code(),
        "{}",
        checked.log
    );
    assert!(checked.log.contains("owned by"), "{}", checked.log);

    // ... and if a proposer includes it anyway, execution refuses it too, and the nonce is spent.
    let b = h.finalize_and_commit(2, vec![bad.into()]).unwrap();
    assert_eq!(code(&b.results[0]), ResultCode::Unauthorized);
    assert_eq!(h.app.reads().nonce(&mallory.identity()).unwrap(), 1);
}

#[test]
fn a_block_without_transactions_keeps_the_app_hash() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let genesis = h.app.committed().app_hash;
    let empty = h.block(vec![]).unwrap();
    assert_eq!(empty.app_hash, genesis);
    let mut alice = Wallet::eth();
    let deployed = h.block(vec![alice.tx(deploy("app", USERS))]).unwrap();
    assert_ne!(deployed.app_hash, genesis);
    let after = h.block(vec![]).unwrap();
    assert_eq!(after.app_hash, deployed.app_hash);
    assert_eq!(h.app.committed().height, 3);
    // A block whose only transaction fails still changes the app hash: its result is part of it.
    let failed = h
        .block(vec![alice.tx(sql("app", "INSERT INTO nope VALUES (1)"))])
        .unwrap();
    assert_ne!(failed.app_hash, after.app_hash);
}
