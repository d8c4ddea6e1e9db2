//! ProcessProposal: a proposal with any transaction an honest proposer would have dropped is rejected.

mod common;

use bytes::Bytes;
use common::*;
use dstorage_app::testing::Harness;
use tendermint::abci::response::ProcessProposal;

fn setup() -> (tempfile::TempDir, Harness, Wallet) {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = Wallet::eth();
    h.block(vec![alice.tx(deploy("app", USERS))]).unwrap();
    (dir, h, alice)
}

fn verdict(h: &Harness, txs: Vec<Vec<u8>>) -> ProcessProposal {
    h.process(2, txs.into_iter().map(Bytes::from).collect())
        .unwrap()
}

#[test]
fn valid_proposal_is_accepted() {
    let (_d, h, mut alice) = setup();
    let a = alice.tx(sql("app", "INSERT INTO users VALUES (1, 'a', 1)"));
    let b = alice.tx(sql("app", "INSERT INTO users VALUES (2, 'b', 2)"));
    assert_eq!(verdict(&h, vec![a, b]), ProcessProposal::Accept);
}

#[test]
fn proposal_with_a_forged_signature_is_rejected() {
    let (_d, h, mut alice) = setup();
    let mut tx = alice.tx(sql("app", "DELETE FROM users"));
    let last = tx.len() - 1;
    tx[last] ^= 1;
    assert_eq!(verdict(&h, vec![tx]), ProcessProposal::Reject);
}

#[test]
fn proposal_with_a_nonce_gap_or_replay_is_rejected() {
    let (_d, h, alice) = setup();
    let gap = alice.tx_with_nonce(5, sql("app", "DELETE FROM users"));
    assert_eq!(verdict(&h, vec![gap]), ProcessProposal::Reject);
    let replay = alice.tx_with_nonce(1, sql("app", "DELETE FROM users"));
    assert_eq!(verdict(&h, vec![replay]), ProcessProposal::Reject);
    let twice = alice.tx_with_nonce(2, sql("app", "DELETE FROM users"));
    assert_eq!(
        verdict(&h, vec![twice.clone(), twice]),
        ProcessProposal::Reject
    );
}

#[test]
fn proposal_with_out_of_order_nonces_is_rejected() {
    let (_d, h, alice) = setup();
    let n2 = alice.tx_with_nonce(2, sql("app", "INSERT INTO users VALUES (1, 'a', 1)"));
    let n3 = alice.tx_with_nonce(3, sql("app", "INSERT INTO users VALUES (2, 'b', 2)"));
    assert_eq!(verdict(&h, vec![n3, n2]), ProcessProposal::Reject);
}

#[test]
fn proposal_with_garbage_or_another_chain_is_rejected() {
    let (_d, h, mut alice) = setup();
    assert_eq!(
        verdict(&h, vec![b"not a transaction".to_vec()]),
        ProcessProposal::Reject
    );
    alice.chain = "another-chain".into();
    let other = alice.tx(sql("app", "DELETE FROM users"));
    assert_eq!(verdict(&h, vec![other]), ProcessProposal::Reject);
}

#[test]
fn prepare_proposal_defers_early_nonces_and_drops_what_cannot_execute() {
    let (_d, h, alice) = setup();
    let mut bob = Wallet::ed25519();
    let a2 = alice.tx_with_nonce(2, sql("app", "INSERT INTO users VALUES (1, 'a', 1)"));
    let a3 = alice.tx_with_nonce(3, sql("app", "INSERT INTO users VALUES (2, 'b', 2)"));
    let a9 = alice.tx_with_nonce(9, sql("app", "INSERT INTO users VALUES (3, 'c', 3)"));
    let b1 = bob.tx(deploy("bobs", USERS));
    let garbage = b"junk".to_vec();
    // Mempool order: interleaved, out of order, with a gap and junk. a3 waits for a2 (a second pass takes it);
    // a9 never gets its predecessors and the junk never decodes.
    let out = h
        .block(vec![a3.clone(), b1.clone(), garbage, a2.clone(), a9])
        .unwrap();
    assert_eq!(out.txs, vec![b1, a2, a3]);
}
