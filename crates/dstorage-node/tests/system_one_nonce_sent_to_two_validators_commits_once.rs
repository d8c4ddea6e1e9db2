//! Two different transactions with the same sender and nonce, sent at the same moment to two different
//! validators (each may pass CheckTx on its own node): exactly one of them commits, the same one on every node;
//! the other never reaches a block and leaves every mempool; the sender's next nonce works.

mod common;

use std::time::Duration;

use common::{Net, CHAIN_ID};
use dstorage_client::api::WaitFor;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nonce_sent_to_two_validators_commits_once() {
    let net = Net::start(4).await;
    let (c0, c3) = (net.nodes[0].client(), net.nodes[3].client());
    let owner = common::new_signer();
    let r = c0
        .deploy(
            &owner,
            "race",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT NOT NULL) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    // Node 3 checks against its own committed state: let it see the schema first.
    net.wait_height(r.height, WAIT).await;

    let sign = |sql: &str| {
        owner
            .sign(
                CHAIN_ID,
                2,
                Payload::Sql {
                    schema: "race".into(),
                    sql: sql.into(),
                    params: Vec::new(),
                },
            )
            .expect("sign")
    };
    let a = sign("INSERT INTO t VALUES (1, 'a')");
    let b = sign("INSERT INTO t VALUES (2, 'b')");
    let (ra, rb) = tokio::join!(
        c0.broadcast(&a, WaitFor::Sync),
        c3.broadcast(&b, WaitFor::Sync)
    );
    eprintln!(
        "admitted: a on node0 {}, b on node3 {}",
        ra.is_ok(),
        rb.is_ok()
    );
    // Each may be admitted, or refused if the other got there first: as pending while the other waits in
    // the node's mempool, as a replay once it committed. Not both refused.
    assert!(ra.is_ok() || rb.is_ok(), "both refused: {ra:?} / {rb:?}");
    for r in [&ra, &rb] {
        if let Err(e) = r {
            let e = e.to_string();
            assert!(
                e.contains("nonce_pending") || e.contains("nonce_replayed"),
                "{e}"
            );
        }
    }

    let winner = common::eventually("one of the two to commit", WAIT, || async {
        match (c0.tx(&a.hash()).await, c0.tx(&b.hash()).await) {
            (Ok(r), Err(_)) | (Err(_), Ok(r)) => Ok(r),
            (Ok(x), Ok(y)) => panic!("both committed: {x:?} {y:?}"),
            (Err(e), Err(_)) => Err(e.to_string()),
        }
    })
    .await;
    assert_eq!(winner.code, ResultCode::Ok, "{}", winner.message);
    let (won, lost, row) = if winner.hash == a.hash() {
        (&a, &b, vec![Value::Integer(1), Value::Text("a".into())])
    } else {
        (&b, &a, vec![Value::Integer(2), Value::Text("b".into())])
    };

    // The loser leaves every mempool (CometBFT's recheck asks the app again after each block).
    for node in &net.nodes {
        let url = format!(
            "http://127.0.0.1:{}/num_unconfirmed_txs",
            node.config.rpc_port
        );
        common::eventually(
            &format!("node{}'s mempool to empty", node.index),
            WAIT,
            || async {
                let v: serde_json::Value = reqwest::get(&url)
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                match v.pointer("/result/n_txs").and_then(|n| n.as_str()) {
                    Some("0") => Ok(()),
                    other => Err(format!("n_txs {other:?}")),
                }
            },
        )
        .await;
    }

    let top = net.wait_height(winner.height + 2, WAIT).await;
    net.assert_same_history(top).await;
    for node in &net.nodes {
        let client = node.client();
        assert_eq!(
            client.tx(&won.hash()).await.expect("winner's record"),
            winner,
            "node{}",
            node.index
        );
        assert!(
            client.tx(&lost.hash()).await.is_err(),
            "node{} has a record of the losing transaction",
            node.index
        );
        let rows = client
            .query_signed(
                &owner,
                "race",
                "SELECT id, who FROM t ORDER BY id",
                Vec::new(),
            )
            .await
            .expect("query");
        assert_eq!(rows.rows, vec![row.clone()], "node{}", node.index);
        assert_eq!(
            client.nonce(owner.identity()).await.expect("nonce").next,
            3,
            "node{}",
            node.index
        );
    }

    // The sender carries on with nonce 3.
    let next = c3
        .exec(&owner, "race", "INSERT INTO t VALUES (3, 'c')")
        .await
        .expect("next write");
    assert_eq!(next.code, ResultCode::Ok, "{}", next.message);
    assert_eq!(next.nonce, Some(3));
}
