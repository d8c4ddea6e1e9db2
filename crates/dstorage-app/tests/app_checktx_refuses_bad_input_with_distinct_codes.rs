//! CheckTx: every kind of bad input is refused with its own code and a message naming the cause; valid
//! transactions from one sender can be pipelined; nothing refused changes state.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_app::AppConfig;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{tx_hash, Payload, Transaction, TxBody};

fn setup() -> (tempfile::TempDir, Harness, Wallet) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path().join("db.sqlite"));
    config.max_tx_bytes = 4096;
    let h = Harness::start_with(config, CHAIN).unwrap();
    let mut alice = Wallet::eth();
    h.block(vec![alice.tx(deploy("app", USERS))]).unwrap();
    (dir, h, alice)
}

fn refused(h: &Harness, tx: &[u8]) -> (ResultCode, String) {
    let r = h.check_tx(tx);
    (
        ResultCode::from_code(r.code.value()).expect("known code"),
        r.log,
    )
}

#[test]
fn each_bad_input_gets_its_own_code_and_reason() {
    let (_d, h, mut alice) = setup();
    let cases: Vec<(&str, Vec<u8>, ResultCode, &str)> = vec![
        (
            "garbage",
            b"\x01garbage".to_vec(),
            ResultCode::Malformed,
            "malformed",
        ),
        ("empty", Vec::new(), ResultCode::Malformed, "empty"),
        (
            "oversized",
            vec![0u8; 5000],
            ResultCode::TooLarge,
            "limit is 4096",
        ),
        (
            "bad signature",
            {
                let mut t =
                    Transaction::decode(&alice.tx_with_nonce(2, sql("app", "DELETE FROM users")))
                        .unwrap();
                t.signature[10] ^= 0xff;
                t.encode()
            },
            ResultCode::BadSignature,
            "signature",
        ),
        (
            "unknown standard",
            {
                let mut t =
                    Transaction::decode(&alice.tx_with_nonce(2, sql("app", "DELETE FROM users")))
                        .unwrap();
                t.body.standard = "rot13".into();
                t.encode()
            },
            ResultCode::UnknownStandard,
            "rot13",
        ),
        (
            "replayed nonce",
            alice.tx_with_nonce(1, sql("app", "DELETE FROM users")),
            ResultCode::NonceReplayed,
            "already used",
        ),
        (
            "nonce gap",
            alice.tx_with_nonce(7, sql("app", "DELETE FROM users")),
            ResultCode::NonceGap,
            "next nonce is 2",
        ),
        (
            "unknown schema",
            alice.tx_with_nonce(2, sql("nope", "DELETE FROM users")),
            ResultCode::SchemaNotFound,
            "nope",
        ),
        (
            "non-deterministic SQL",
            alice.tx_with_nonce(2, sql("app", "INSERT INTO users VALUES (9, 'x', random())")),
            ResultCode::SqlRefused,
            "random",
        ),
    ];
    for (name, tx, want, needle) in cases {
        let (got, log) = refused(&h, &tx);
        assert_eq!(got, want, "{name}: {log}");
        assert!(
            log.to_lowercase().contains(&needle.to_lowercase()),
            "{name}: message {log:?} lacks {needle:?}"
        );
    }
    alice.chain = "other".into();
    let (got, log) = refused(&h, &alice.tx_with_nonce(2, sql("app", "DELETE FROM users")));
    assert_eq!(got, ResultCode::WrongChainId, "{log}");
    assert!(log.contains("other"), "{log}");

    // None of it changed anything: the next nonce is still 2.
    assert_eq!(h.app.reads().nonce(&alice.identity()).unwrap(), 1);
}

#[test]
fn a_sender_can_pipeline_nonces_and_recheck_after_commit_drops_the_stale_ones() {
    let (_d, h, alice) = setup();
    let t2 = alice.tx_with_nonce(2, sql("app", "INSERT INTO users VALUES (1, 'a', 1)"));
    let t3 = alice.tx_with_nonce(3, sql("app", "INSERT INTO users VALUES (2, 'b', 2)"));
    let t3_again = alice.tx_with_nonce(3, sql("app", "INSERT INTO users VALUES (3, 'c', 3)"));
    assert_eq!(h.check_tx(&t2).code.value(), 0);
    assert_eq!(h.check_tx(&t3).code.value(), 0);
    // A second transaction with a nonce already admitted is refused as pending (see the test below).
    assert_eq!(refused(&h, &t3_again).0, ResultCode::NoncePending);
    // Commit t2 only; the recheck of t3 still passes, a recheck of t2 now is a replay.
    h.block(vec![t2.clone()]).unwrap();
    assert_eq!(refused(&h, &t2).0, ResultCode::NonceReplayed);
    assert_eq!(h.check_tx(&t3).code.value(), 0);
}

#[test]
fn a_tx_signed_over_other_text_does_not_verify() {
    // The signature covers the signed text, which covers the payload digest: changing the SQL breaks it.
    let (_d, h, alice) = setup();
    let honest = Transaction::decode(
        &alice.tx_with_nonce(2, sql("app", "INSERT INTO users VALUES (1, 'a', 1)")),
    )
    .unwrap();
    let forged = TxBody {
        payload: sql("app", "DELETE FROM users"),
        ..honest.body.clone()
    }
    .with_signature(honest.signature.clone());
    assert_eq!(refused(&h, &forged.encode()).0, ResultCode::BadSignature);
}

#[test]
fn checktx_follows_owners_and_nonces_that_blocks_change() {
    let (_d, h, mut alice) = setup();
    let mut bob = Wallet::ed25519();
    let write = |w: &Wallet, nonce: u64| {
        w.tx_with_nonce(nonce, sql("app", "INSERT INTO users VALUES (9, 'z', 9)"))
    };
    // Owner and nonce are read (and remembered) here...
    assert_eq!(h.check_tx(&write(&alice, 2)).code.value(), 0);
    assert_eq!(refused(&h, &write(&bob, 1)).0, ResultCode::Unauthorized);
    // ...then a block drops the schema and another gives it to bob.
    h.block(vec![alice.tx(dstorage_types::tx::Payload::DropSchema {
        schema: "app".into(),
    })])
    .unwrap();
    assert_eq!(refused(&h, &write(&alice, 3)).0, ResultCode::SchemaNotFound);
    assert_eq!(refused(&h, &write(&alice, 2)).0, ResultCode::NonceReplayed);
    h.block(vec![bob.tx(deploy("app", USERS))]).unwrap();
    assert_eq!(refused(&h, &write(&alice, 3)).0, ResultCode::Unauthorized);
    assert_eq!(refused(&h, &write(&bob, 1)).0, ResultCode::NonceReplayed);
    assert_eq!(h.check_tx(&write(&bob, 2)).code.value(), 0);
}

#[test]
fn recheck_leaves_a_dropped_schema_to_execution_which_records_it() {
    let (_d, h, alice) = setup();
    let drop = alice.tx_with_nonce(
        2,
        Payload::DropSchema {
            schema: "app".into(),
        },
    );
    let t3 = alice.tx_with_nonce(3, sql("app", "INSERT INTO users VALUES (1, 'a', 1)"));
    assert_eq!(h.check_tx(&drop).code.value(), 0);
    assert_eq!(h.check_tx(&t3).code.value(), 0);
    h.block(vec![drop]).unwrap();
    // The schema is gone, but t3 stays in the mempool: its sender learns why from its record, instead of
    // waiting for a transaction that silently left.
    assert_eq!(h.app.recheck_tx(&t3).code.value(), 0);
    h.block(vec![t3.clone()]).unwrap();
    let rec = h.app.reads().tx(&tx_hash(&t3)).unwrap().unwrap();
    assert_eq!(rec.code, ResultCode::SchemaNotFound);
    assert_eq!(h.app.reads().nonce(&alice.identity()).unwrap(), 3);
}

// Bug pinned (issue 13): a different transaction reusing the nonce of one that was only pending got
// `nonce_replayed` ("nonce 2 was already used") although nothing had committed that nonce, while docs/api.md
// uses that code for committed transactions. It is `nonce_pending` until a block uses the nonce, then
// `nonce_replayed`.
#[test]
fn a_nonce_held_by_a_pending_transaction_is_nonce_pending_until_a_block_commits_it() {
    let (_d, h, alice) = setup();
    let first = alice.tx_with_nonce(2, sql("app", "INSERT INTO users VALUES (1, 'a', 1)"));
    let rival = alice.tx_with_nonce(2, sql("app", "INSERT INTO users VALUES (2, 'b', 2)"));
    assert_eq!(h.check_tx(&first).code.value(), 0);
    let (code, log) = refused(&h, &rival);
    assert_eq!(code, ResultCode::NoncePending, "{log}");
    assert!(log.contains("nonce 2"), "{log}");
    assert!(log.contains("not committed yet"), "{log}");
    assert!(log.contains("next free nonce is 3"), "{log}");
    // The same bytes again are a resend, admitted as they were.
    assert_eq!(h.check_tx(&first).code.value(), 0);
    // Nothing was spent by the refusal: the committed nonce is still 1.
    assert_eq!(h.app.reads().nonce(&alice.identity()).unwrap(), 1);

    h.block(vec![first]).unwrap();
    let (code, log) = refused(&h, &rival);
    assert_eq!(code, ResultCode::NonceReplayed, "{log}");
    assert!(log.contains("nonce 2 was already used"), "{log}");
}
