//! Four real validators on 127.0.0.1 (`dstorage testnet --init-only`, then one `dstorage start` each): writes
//! sent to node 0 are readable on node 3 once committed, with the same transaction results; and every node
//! recorded the same app hash and changeset hash at every height from 1 on. A burst of senders at once, and a
//! bundle handed straight to CometBFT, commit transaction by transaction too.

mod common;

use std::time::Duration;

use common::{Net, CHAIN_ID};
use dstorage_client::api::WaitFor;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{encode_bundle, tx_hash, Payload};
use dstorage_types::value::Value;

const WAIT: Duration = Duration::from_secs(60);
const WRITES: u64 = 40;
const BURST: usize = 24;
/// The burst's sender that skips a nonce, and the one whose signature is forged.
const GAP: usize = 7;
const FORGED: usize = 13;

fn table_deploy(schema: &str) -> Payload {
    Payload::DeploySchema {
        schema: schema.into(),
        sql: "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_replicate_writes() {
    let net = Net::start(4).await;
    let (n0, n3) = (&net.nodes[0], &net.nodes[3]);
    let (c0, c3) = (n0.client(), n3.client());
    for node in &net.nodes {
        let s = node.status().await.expect("status");
        assert_eq!(s.chain_id, CHAIN_ID);
        assert_eq!(s.validators.len(), 4, "node{} validators", node.index);
    }

    let signer = common::new_signer();
    let deployed = c0
        .deploy(
            &signer,
            "ledger",
            "CREATE TABLE entries (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, note TEXT) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(deployed.code, ResultCode::Ok, "{}", deployed.message);

    // Pipeline the writes: each passes CheckTx on node 0 before the previous one commits.
    let mut hashes = Vec::new();
    for i in 1..=WRITES {
        let tx = signer
            .sign(
                CHAIN_ID,
                1 + i,
                Payload::Sql {
                    schema: "ledger".into(),
                    sql: format!("INSERT INTO entries VALUES ({i}, {}, 'entry {i}')", i * 10),
                    params: Vec::new(),
                },
            )
            .expect("sign");
        let r = c0
            .broadcast(&tx, WaitFor::Sync)
            .await
            .unwrap_or_else(|e| panic!("write {i} refused: {e}"));
        hashes.push(r.hash);
    }
    let last = hashes[hashes.len() - 1];
    let last_result = common::eventually("the last write to commit on node0", WAIT, || async {
        c0.tx(&last).await.map_err(|e| e.to_string())
    })
    .await;

    // Node 3 has every write with the same outcome node 0 reports.
    n3.wait_height(last_result.height, WAIT).await;
    for (i, hash) in hashes.iter().enumerate() {
        let on0 = c0.tx(hash).await.expect("tx on node0");
        let on3 = c3.tx(hash).await.expect("tx on node3");
        assert_eq!(on0.code, ResultCode::Ok, "write {}: {}", i + 1, on0.message);
        assert_eq!(on3, on0, "write {} differs between node0 and node3", i + 1);
    }
    let read = c3
        .query_signed(
            &signer,
            "ledger",
            "SELECT count(*), sum(amount) FROM entries",
            Vec::new(),
        )
        .await
        .expect("query node3");
    let n = WRITES as i64;
    assert_eq!(
        read.rows,
        vec![vec![
            Value::Integer(n),
            Value::Integer(10 * n * (n + 1) / 2)
        ]]
    );
    let sample = c3
        .query_signed(
            &signer,
            "ledger",
            "SELECT id, amount, note FROM entries WHERE id = 7",
            Vec::new(),
        )
        .await
        .expect("query node3");
    assert_eq!(
        sample.rows,
        vec![vec![
            Value::Integer(7),
            Value::Integer(70),
            Value::Text("entry 7".into())
        ]]
    );

    // A burst of transactions from many senders at once: node 0's API bundles what arrives while it is
    // submitting, and every sender gets its own committed result.
    // Two of them are bad (a nonce gap, a forged signature): when they share a bundle with good ones, CometBFT
    // refuses the bundle and the API resubmits its transactions one by one, so only the bad ones fail.
    let burst = futures::future::join_all((0..BURST).map(|i| {
        let c0 = c0.clone();
        async move {
            let signer = common::new_signer();
            let nonce = if i == GAP { 3 } else { 1 };
            let mut tx = signer
                .sign(CHAIN_ID, nonce, table_deploy(&format!("burst{i}")))
                .expect("sign");
            if i == FORGED {
                tx.signature[0] ^= 1;
            }
            (tx.hash(), c0.broadcast(&tx, WaitFor::Commit).await)
        }
    }))
    .await;
    for (i, (hash, r)) in burst.into_iter().enumerate() {
        let expected_refusal = match i {
            GAP => Some("nonce_gap"),
            FORGED => Some("bad_signature"),
            _ => None,
        };
        match (expected_refusal, r) {
            (None, Ok(r)) => {
                assert_eq!(r.hash, hash);
                let committed = r.committed.expect("wait=commit answers with the result");
                assert_eq!(
                    committed.code,
                    ResultCode::Ok,
                    "burst {i}: {}",
                    committed.message
                );
            }
            (Some(code), Err(dstorage_client::ClientError::Api { code: got, .. })) => {
                assert_eq!(got, code, "burst {i}")
            }
            (want, got) => panic!("burst {i}: expected {want:?}, got {got:?}"),
        }
    }

    // A bundle built by hand and given straight to node 1's CometBFT: each member commits under its own
    // hash, with consecutive indexes in one block, and node 3 holds the same records.
    let members: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            common::new_signer()
                .sign(CHAIN_ID, 1, table_deploy(&format!("bundled{i}")))
                .expect("sign")
                .encode()
        })
        .collect();
    let bundle = encode_bundle(&members);
    let admitted = net.nodes[1]
        .rpc()
        .broadcast_tx_sync(&bundle)
        .await
        .expect("broadcast bundle");
    assert_eq!(admitted.check_tx.code, 0, "{}", admitted.check_tx.log);
    let mut records = Vec::new();
    for m in &members {
        let hash = tx_hash(m);
        records.push(
            common::eventually("a bundle member to commit on node3", WAIT, || async {
                c3.tx(&hash).await.map_err(|e| e.to_string())
            })
            .await,
        );
    }
    for (k, r) in records.iter().enumerate() {
        assert_eq!(r.code, ResultCode::Ok, "member {k}: {}", r.message);
        assert_eq!(r.height, records[0].height, "member {k} in another block");
        assert_eq!(r.index, records[0].index + k as u32, "member {k} index");
    }
    // The API takes single transactions; it says so for a bundle.
    let refused = c0
        .broadcast_bytes(&bundle, WaitFor::Sync)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("bundle"), "{refused}");

    // Same history everywhere: app hash and changeset hash at every height, on all four nodes.
    let top = net.wait_height(last_result.height + 1, WAIT).await;
    net.assert_same_history(top).await;
    // The app hashes our app reported are the ones CometBFT agreed on in the next block's header.
    for node in &net.nodes {
        let rpc = node.rpc();
        for h in 1..top {
            let header = rpc.block(Some(h + 1)).await.expect("block").app_hash;
            let record = node.height_record(h).await.expect("height record");
            assert_eq!(
                header, record.app_hash,
                "node{} height {h}: header of the next block disagrees",
                node.index
            );
        }
        let status = node.status().await.expect("status");
        let record = node.height_record(status.height).await.expect("record");
        assert_eq!(
            status.app_hash, record.app_hash,
            "node{} /v1/status",
            node.index
        );
    }
}
