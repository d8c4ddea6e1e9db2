//! Determinism of the whole state machine: two independent databases fed the same blocks agree on every app
//! hash, and a node that crashes between FinalizeBlock and Commit and replays the block agrees too.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_types::result::ResultCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A seeded workload of `blocks` blocks from three users with different standards, including failing SQL.
fn workload(seed: u64, blocks: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut users = [
        Wallet::eth(),
        Wallet::ed25519(),
        Wallet::new(
            dstorage_types::identity::KeyType::Ed25519,
            "solana_sign_message",
        ),
    ];
    let mut out = Vec::new();
    let mut first = Vec::new();
    for (i, u) in users.iter_mut().enumerate() {
        first.push(u.tx(deploy(
            &format!("s{i}"),
            "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT, n INTEGER) STRICT; \
             CREATE TABLE pairs (a INTEGER, b TEXT, payload BLOB, PRIMARY KEY (a, b)) STRICT; \
             CREATE TABLE tags (id INTEGER PRIMARY KEY, k INTEGER REFERENCES kv(k) ON DELETE CASCADE ON UPDATE CASCADE, label TEXT) STRICT",
        )));
    }
    out.push(first);
    for _ in 1..blocks {
        let mut block = Vec::new();
        for _ in 0..rng.gen_range(0..6) {
            let i = rng.gen_range(0..users.len());
            let schema = format!("s{i}");
            let k = rng.gen_range(0..20);
            let stmt = match rng.gen_range(0..8) {
                0 => format!(
                    "INSERT OR REPLACE INTO kv VALUES ({k}, 'v{}', {})",
                    rng.gen::<u16>(),
                    rng.gen::<i32>()
                ),
                1 => format!("UPDATE kv SET n = n + 1 WHERE k <= {k}"),
                2 => format!("DELETE FROM kv WHERE k = {k}"),
                3 => format!(
                    "INSERT OR IGNORE INTO pairs VALUES ({k}, 'b{}', X'{:02x}{:02x}')",
                    k % 3,
                    rng.gen::<u8>(),
                    rng.gen::<u8>()
                ),
                // Fails: duplicate key or a type error in a STRICT table.
                4 => format!("INSERT INTO kv VALUES ({k}, 'x', 'not an integer')"),
                // Fails when kv has no row k; its rows go with kv's by cascade (op 2).
                5 => format!(
                    "INSERT INTO tags(k, label) VALUES ({k}, 't{}')",
                    rng.gen::<u8>()
                ),
                6 => format!("UPDATE kv SET k = k + 1000 WHERE k = {k}"),
                _ => format!("INSERT INTO kv SELECT k + 100, v, n FROM kv WHERE k < {k}"),
            };
            block.push(users[i].tx(sql(&schema, &stmt)));
        }
        out.push(block);
    }
    out
}

#[test]
fn two_nodes_fed_the_same_blocks_agree_on_every_app_hash() {
    let blocks = workload(7, 40);
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = Harness::start(&a_dir.path().join("db.sqlite"), CHAIN).unwrap();
    let b = Harness::start(&b_dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut failures = 0;
    for (i, txs) in blocks.into_iter().enumerate() {
        let ra = a.block(txs.clone()).unwrap();
        let rb = b.block(txs).unwrap();
        assert_eq!(
            ra.app_hash,
            rb.app_hash,
            "app hashes differ at height {}",
            i + 1
        );
        assert_eq!(ra.txs, rb.txs);
        failures += ra
            .results
            .iter()
            .filter(|r| code(r) != ResultCode::Ok)
            .count();
    }
    // The workload must exercise failing transactions too, or this test proves less than it claims.
    assert!(failures > 0);
    assert_eq!(a.app.committed(), b.app.committed());
}

#[test]
fn a_different_chain_id_gives_a_different_app_hash_chain() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = Harness::start(&a_dir.path().join("db.sqlite"), "chain-a").unwrap();
    let b = Harness::start(&b_dir.path().join("db.sqlite"), "chain-b").unwrap();
    assert_ne!(
        a.block(vec![]).unwrap().app_hash,
        b.block(vec![]).unwrap().app_hash
    );
}

#[test]
fn a_node_that_crashes_before_commit_replays_the_block_to_the_same_app_hash() {
    let blocks = workload(11, 12);
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = Harness::start(&ref_dir.path().join("db.sqlite"), CHAIN).unwrap();
    // The blocks as the reference's proposer built them (PrepareProposal groups by sender).
    let mut expected = Vec::new();
    let mut proposed = Vec::new();
    for txs in &blocks {
        let out = reference.block(txs.clone()).unwrap();
        expected.push(out.app_hash);
        proposed.push(out.txs);
    }
    let blocks = proposed;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let mut node = Harness::start(&db, CHAIN).unwrap();
    for (i, txs) in blocks.iter().enumerate() {
        let height = i as u64 + 1;
        if i % 3 == 1 {
            // Crash after FinalizeBlock answered, before Commit: the block's writes must vanish entirely.
            let hash = node
                .finalize_only(height, txs.iter().cloned().map(Into::into).collect())
                .unwrap();
            assert_eq!(hash, expected[i]);
            node = node.restart().unwrap();
            assert_eq!(
                node.app.committed().height,
                height - 1,
                "nothing of block {height} may survive"
            );
            // CometBFT's handshake replays it.
        }
        let got = node
            .finalize_and_commit(height, txs.iter().cloned().map(Into::into).collect())
            .unwrap();
        assert_eq!(got.app_hash, expected[i], "height {height}");
        if i % 4 == 3 {
            // A clean restart keeps height and app hash.
            node = node.restart().unwrap();
            assert_eq!(node.app.committed().height, height);
            assert_eq!(node.app.committed().app_hash, expected[i]);
        }
    }
    let want = reference
        .app
        .reads()
        .query("s0", "SELECT * FROM kv", 1_000_000)
        .unwrap();
    let have = node
        .app
        .reads()
        .query("s0", "SELECT * FROM kv", 1_000_000)
        .unwrap();
    assert_eq!(want.rows, have.rows);
}
