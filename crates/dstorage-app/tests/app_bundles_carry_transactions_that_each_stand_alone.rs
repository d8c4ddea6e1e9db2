//! Bundles: several signed transactions carried as one CometBFT transaction. Every rule applies to each member
//! as if it had been sent alone; the bundle only saves CometBFT's per-transaction work.

mod common;

use bytes::Bytes;
use common::*;
use dstorage_app::testing::Harness;
use dstorage_app::AppConfig;
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{encode_bundle, tx_hash};
use dstorage_types::value::Value;
use tendermint::abci::response::ProcessProposal;

/// A chain where alice owns `app` and bob owns `bobs`, both with the users table.
fn setup(db: &std::path::Path) -> (Harness, Wallet, Wallet) {
    let h = Harness::start(db, CHAIN).unwrap();
    let (alice, bob) = wallets();
    h.block(vec![
        alice.tx_with_nonce(1, deploy("app", USERS)),
        bob.tx_with_nonce(1, deploy("bobs", USERS)),
    ])
    .unwrap();
    (h, alice, bob)
}

/// The same two keys in every call, so two chains started from `setup` are equal.
fn wallets() -> (Wallet, Wallet) {
    let key = |t, byte| dstorage_auth::SecretKey::from_bytes(t, &[byte; 32]).unwrap();
    let wallet = |t, byte, standard| Wallet {
        signer: dstorage_client::Signer::new(key(t, byte), standard).unwrap(),
        next_nonce: 1,
        chain: CHAIN.to_string(),
    };
    (
        wallet(KeyType::Secp256k1, 7, "eth_personal_sign"),
        wallet(KeyType::Ed25519, 9, "ed25519"),
    )
}

fn insert(w: &Wallet, nonce: u64, schema: &str, id: i64) -> Vec<u8> {
    w.tx_with_nonce(
        nonce,
        sql(
            schema,
            &format!("INSERT INTO users VALUES ({id}, 'u{id}', {id})"),
        ),
    )
}

fn refused(h: &Harness, tx: &[u8]) -> (ResultCode, String) {
    let r = h.check_tx(tx);
    (ResultCode::from_code(r.code.value()).unwrap(), r.log)
}

#[test]
fn each_member_of_a_bundle_executes_alone_with_its_own_record() {
    let dir = tempfile::tempdir().unwrap();
    let (h, alice, bob) = setup(&dir.path().join("db"));
    let a2 = insert(&alice, 2, "app", 1);
    let b2 = bob.tx_with_nonce(2, sql("bobs", "INSERT INTO nope VALUES (1)"));
    let a3 = insert(&alice, 3, "app", 2);
    let bundle = encode_bundle(&[a2.clone(), b2.clone(), a3.clone()]);
    assert_eq!(
        h.check_tx(&bundle).code.value(),
        0,
        "{}",
        h.check_tx(&bundle).log
    );
    let out = h.block(vec![bundle.clone()]).unwrap();
    assert_eq!(out.txs, vec![bundle]);
    assert_eq!(out.results.len(), 1);
    assert_eq!(out.results[0].code.value(), 0);
    assert!(
        out.results[0]
            .log
            .contains("bundle of 3 transactions: 2 ok, 1 failed"),
        "{}",
        out.results[0].log
    );
    let reads = h.app.reads();
    let rec = |tx: &[u8]| {
        reads
            .tx(&tx_hash(tx))
            .unwrap()
            .expect("a record per member")
    };
    let (r0, r1, r2) = (rec(&a2), rec(&b2), rec(&a3));
    assert_eq!((r0.index, r1.index, r2.index), (0, 1, 2));
    assert_eq!(
        (r0.code, r1.code, r2.code),
        (ResultCode::Ok, ResultCode::SqlError, ResultCode::Ok)
    );
    assert!(r1.message.contains("nope"), "{}", r1.message);
    assert_eq!(r1.nonce, Some(2), "the failed member spent its nonce");
    let rows = reads
        .query("app", "SELECT id FROM users", 1_000_000)
        .unwrap()
        .rows;
    assert_eq!(rows, vec![vec![Value::Integer(1)], vec![Value::Integer(2)]]);
    assert_eq!(reads.nonce(&bob.identity()).unwrap(), 2);
}

#[test]
fn a_bundle_and_the_same_transactions_sent_bare_give_the_same_app_hash() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let (h1, alice, bob) = setup(&d1.path().join("db"));
    let (h2, _, _) = setup(&d2.path().join("db"));
    let txs = vec![
        insert(&alice, 2, "app", 1),
        bob.tx_with_nonce(
            2,
            sql(
                "bobs",
                "INSERT INTO users VALUES (1, 'x', 'not an integer')",
            ),
        ),
        insert(&bob, 3, "bobs", 2),
    ];
    let bundled = h1.block(vec![encode_bundle(&txs)]).unwrap();
    let bare = h2.block(txs).unwrap();
    assert_eq!(bare.txs.len(), 3);
    assert_eq!(bundled.app_hash, bare.app_hash);
}

#[test]
fn checktx_admits_a_bundle_all_or_nothing_and_names_the_failing_member() {
    let dir = tempfile::tempdir().unwrap();
    let (h, alice, bob) = setup(&dir.path().join("db"));
    let a2 = insert(&alice, 2, "app", 1);
    let b5 = insert(&bob, 5, "bobs", 1);
    let (code, log) = refused(&h, &encode_bundle(&[a2.clone(), b5.clone()]));
    assert_eq!(code, ResultCode::NonceGap, "{log}");
    assert!(log.contains("bundle member 1 of 2"), "{log}");
    assert!(log.contains(&tx_hash(&b5).to_string()), "{log}");
    // Nothing of the refused bundle was admitted: a2 alone is still next.
    assert_eq!(h.check_tx(&a2).code.value(), 0);
    // Members count each other's nonces, in order.
    let a3 = insert(&alice, 3, "app", 2);
    let a4 = insert(&alice, 4, "app", 3);
    assert_eq!(
        h.check_tx(&encode_bundle(&[a3.clone(), a4])).code.value(),
        0
    );
    // a3 waits in the bundle: another transaction with its nonce is refused, as pending, not as a replay.
    assert_eq!(
        refused(&h, &insert(&alice, 3, "app", 99)).0,
        ResultCode::NoncePending
    );
    let reversed = encode_bundle(&[insert(&bob, 3, "bobs", 1), insert(&bob, 2, "bobs", 2)]);
    assert_eq!(refused(&h, &reversed).0, ResultCode::NonceGap);
    // Payload rules apply to members too.
    let foreign = bob.tx_with_nonce(2, sql("app", "DELETE FROM users"));
    let (code, log) = refused(&h, &encode_bundle(&[insert(&alice, 5, "app", 4), foreign]));
    assert_eq!(code, ResultCode::Unauthorized, "{log}");
}

#[test]
fn recheck_keeps_a_bundle_while_a_member_waits_and_drops_it_when_none_does() {
    let dir = tempfile::tempdir().unwrap();
    let (h, alice, bob) = setup(&dir.path().join("db"));
    let a2 = insert(&alice, 2, "app", 1);
    let b2 = insert(&bob, 2, "bobs", 1);
    let bundle = encode_bundle(&[a2.clone(), b2.clone()]);
    assert_eq!(h.check_tx(&bundle).code.value(), 0);
    // a2 commits on its own (sent to another node, say); the bundle still carries b2.
    h.block(vec![a2]).unwrap();
    let r = h.app.recheck_tx(&bundle);
    assert_eq!(r.code.value(), 0, "{}", r.log);
    // A fresh CheckTx of the same bundle is a replay of a2: the API never gets a used nonce admitted.
    assert_eq!(refused(&h, &bundle).0, ResultCode::NonceReplayed);
    h.block(vec![b2]).unwrap();
    let r = h.app.recheck_tx(&bundle);
    assert_eq!(
        ResultCode::from_code(r.code.value()),
        Some(ResultCode::NonceReplayed),
        "{}",
        r.log
    );
}

#[test]
fn the_proposer_leaves_executed_members_out_of_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (h, alice, bob) = setup(&dir.path().join("db"));
    let a2 = insert(&alice, 2, "app", 1);
    let a3 = insert(&alice, 3, "app", 2);
    let b2 = insert(&bob, 2, "bobs", 1);
    h.block(vec![a2.clone()]).unwrap();
    // One member left: it goes bare.
    let out = h
        .block(vec![encode_bundle(&[a2.clone(), b2.clone()])])
        .unwrap();
    assert_eq!(out.txs, vec![b2.clone()]);
    // Two left: a new bundle of them, in order.
    let b3 = insert(&bob, 3, "bobs", 2);
    let out = h
        .block(vec![encode_bundle(&[a2, a3.clone(), b2, b3.clone()])])
        .unwrap();
    assert_eq!(out.txs, vec![encode_bundle(&[a3, b3])]);
    assert_eq!(h.app.reads().nonce(&bob.identity()).unwrap(), 3);
}

#[test]
fn the_proposer_defers_a_bundle_until_its_members_predecessors_are_in() {
    let dir = tempfile::tempdir().unwrap();
    let (h, alice, bob) = setup(&dir.path().join("db"));
    let a2 = insert(&alice, 2, "app", 1);
    let a3 = insert(&alice, 3, "app", 2);
    let b2 = insert(&bob, 2, "bobs", 1);
    let bundle = encode_bundle(&[b2, a3]);
    let out = h.block(vec![bundle.clone(), a2.clone()]).unwrap();
    assert_eq!(out.txs, vec![a2, bundle]);
}

#[test]
fn validators_reject_bundles_an_honest_proposer_would_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path().join("db"));
    config.max_bundle_bytes = 4096;
    let h = Harness::start_with(config, CHAIN).unwrap();
    let (alice, bob) = wallets();
    h.block(vec![
        alice.tx_with_nonce(1, deploy("app", USERS)),
        bob.tx_with_nonce(1, deploy("bobs", USERS)),
    ])
    .unwrap();
    let verdict = |txs: Vec<Vec<u8>>| {
        h.process(2, txs.into_iter().map(Bytes::from).collect())
            .unwrap()
    };
    let a2 = insert(&alice, 2, "app", 1);
    let b2 = insert(&bob, 2, "bobs", 1);
    assert_eq!(
        verdict(vec![encode_bundle(&[a2.clone(), b2.clone()])]),
        ProcessProposal::Accept
    );
    // A member out of nonce order, a stale member, a forged member.
    assert_eq!(
        verdict(vec![encode_bundle(&[
            a2.clone(),
            insert(&bob, 3, "bobs", 1)
        ])]),
        ProcessProposal::Reject
    );
    assert_eq!(
        verdict(vec![encode_bundle(&[
            insert(&alice, 1, "app", 1),
            b2.clone()
        ])]),
        ProcessProposal::Reject
    );
    let mut forged = b2.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        verdict(vec![encode_bundle(&[a2.clone(), forged])]),
        ProcessProposal::Reject
    );
    // A bundle of one, and a bundle over the network's bundle size.
    let mut one = vec![2u8, 0, 0, 0, 1];
    one.extend_from_slice(&(a2.len() as u32).to_be_bytes());
    one.extend_from_slice(&a2);
    assert_eq!(verdict(vec![one]), ProcessProposal::Reject);
    let big: Vec<Vec<u8>> = (0..40)
        .map(|i| insert(&alice, 2 + i, "app", i as i64))
        .collect();
    assert!(encode_bundle(&big).len() > 4096);
    assert_eq!(verdict(vec![encode_bundle(&big)]), ProcessProposal::Reject);
    let (code, log) = refused(&h, &encode_bundle(&big));
    assert_eq!(code, ResultCode::TooLarge, "{log}");
}

#[test]
fn resending_a_transaction_that_waits_in_a_bundle_is_admitted_and_it_executes_once() {
    let dir = tempfile::tempdir().unwrap();
    let (h, alice, bob) = setup(&dir.path().join("db"));
    let a2 = insert(&alice, 2, "app", 1);
    let b2 = insert(&bob, 2, "bobs", 1);
    let bundle = encode_bundle(&[a2.clone(), b2.clone()]);
    assert_eq!(h.check_tx(&bundle).code.value(), 0);
    // A client retrying a2: the same bytes are admitted again, not refused as a replay of their own nonce.
    let again = h.check_tx(&a2);
    assert_eq!(again.code.value(), 0, "{}", again.log);
    // Another transaction with a2's nonce is refused: a2 holds it, pending (nothing committed it yet).
    let rival = insert(&alice, 2, "app", 9);
    assert_eq!(refused(&h, &rival).0, ResultCode::NoncePending);
    // The proposer takes the bundle and leaves the copy out; a2 runs once.
    let out = h.block(vec![bundle.clone(), a2.clone()]).unwrap();
    assert_eq!(out.txs, vec![bundle]);
    let rows = h
        .app
        .reads()
        .query("app", "SELECT count(*) FROM users", 1_000_000)
        .unwrap()
        .rows;
    assert_eq!(rows, vec![vec![Value::Integer(1)]]);
    // Once committed, the copy is a replay again.
    assert_eq!(refused(&h, &a2).0, ResultCode::NonceReplayed);
}
