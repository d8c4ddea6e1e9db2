//! Regression tests for issue 10 on a real node (one validator, real CometBFT):
//! - every validator failed the same block forever (`executing block N: storage: SQLite:
//!   string or blob too big`) after a transaction whose block changeset or record was over
//!   the system store's 1,000,000-byte value limit;
//! - `POST /v1/query` of `SELECT 1+1+...+1` with ~22,000 terms overflowed a tokio worker's
//!   stack, and the same SQL in a signed transaction aborted the node at admission.
//!
//! Each case now gets its own answer and the chain keeps committing.

mod common;

use std::time::Duration;

use common::{Net, CHAIN_ID};
use dstorage_client::api::TxResult;
use dstorage_client::{Client, ClientError, Signer};
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{tx_hash, Payload};
use dstorage_types::value::Value;

const SCHEMA: &str = "big";

async fn node_with_table() -> (Net, Client, Signer) {
    let mut net = Net::init_single();
    net.nodes[0].start().await;
    let client = net.nodes[0].client();
    let signer = common::new_signer();
    let r = client
        .deploy(
            &signer,
            SCHEMA,
            "CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    (net, client, signer)
}

async fn exec(client: &Client, signer: &Signer, sql: &str) -> TxResult {
    client.exec(signer, SCHEMA, sql).await.expect("committed")
}

/// After the case under test: the node is healthy, a later write commits in a later block,
/// and the app hash moved on.
async fn assert_chain_goes_on(net: &Net, client: &Client, signer: &Signer, after: u64) {
    let before = client.status().await.expect("status");
    let r = exec(client, signer, "INSERT INTO b VALUES (1000, x'00')").await;
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    assert!(r.height > after, "{} after {after}", r.height);
    let now = client.status().await.expect("status");
    assert!(now.height >= r.height);
    assert_ne!(now.app_hash, before.app_hash);
    assert!(net.nodes[0].is_running(), "{}", net.nodes[0].log_tail(30));
    assert!(client.health().await.expect("health"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changeset_over_a_megabyte_does_not_halt_the_chain() {
    let (net, client, signer) = node_with_table().await;
    let r = exec(
        &client,
        &signer,
        "INSERT INTO b VALUES (4, zeroblob(520000)), (5, zeroblob(520000))",
    )
    .await;
    assert_eq!(
        (r.code, r.rows_changed),
        (ResultCode::Ok, 2),
        "{}",
        r.message
    );
    let cs = client.changeset(r.height).await.expect("changeset");
    assert_eq!(cs.records.len(), 2);
    assert!(cs.encoded.len() > 2 * 1_040_000, "hex of over a megabyte");
    assert_chain_goes_on(&net, &client, &signer, r.height).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_large_inserts_in_one_block_do_not_halt_the_chain() {
    let (net, client, signer) = node_with_table().await;
    let next = client.nonce(signer.identity()).await.expect("nonce").next;
    // One bundle, so the three land in one block (a CometBFT transaction is never split).
    let members: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            signer
                .sign(
                    CHAIN_ID,
                    next + i,
                    Payload::Sql {
                        schema: SCHEMA.into(),
                        sql: format!("INSERT INTO b VALUES ({i}, zeroblob(400000))"),
                        params: Vec::new(),
                    },
                )
                .expect("sign")
                .encode()
        })
        .collect();
    let bundle = dstorage_types::tx::encode_bundle(&members);
    let sent = net.nodes[0]
        .rpc()
        .broadcast_tx_sync(&bundle)
        .await
        .expect("broadcast");
    assert_eq!(sent.check_tx.code, 0, "{}", sent.check_tx.log);
    let mut results = Vec::new();
    for m in &members {
        let hash = tx_hash(m);
        let r = common::eventually("the record", Duration::from_secs(60), || async {
            client.tx(&hash).await.map_err(|e| e.to_string())
        })
        .await;
        results.push(r);
    }
    for r in &results {
        assert_eq!(
            (r.code, r.height),
            (ResultCode::Ok, results[0].height),
            "{r:?}"
        );
    }
    let cs = client
        .changeset(results[0].height)
        .await
        .expect("changeset");
    assert_eq!(cs.records.len(), 3);
    assert_chain_goes_on(&net, &client, &signer, results[0].height).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_returning_result_does_not_halt_the_chain() {
    let (net, client, signer) = node_with_table().await;
    let r = exec(
        &client,
        &signer,
        "INSERT INTO b VALUES (1, zeroblob(300000))",
    )
    .await;
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    let r = exec(
        &client,
        &signer,
        "UPDATE b SET id = id WHERE id = 1 RETURNING v, v",
    )
    .await;
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    assert_eq!(r.rows, vec![vec![Value::Blob(vec![0; 300000]); 2]]);
    // A generator of bytes past the per-transaction write limit fails alone. 9 MB: more
    // rows meet the cost limit first, since the bytes SQLite moves are charged too.
    let g = exec(
        &client,
        &signer,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<9) \
         INSERT INTO b SELECT x + 10, zeroblob(999000) FROM c",
    )
    .await;
    assert_eq!(g.code, ResultCode::DataLimitExceeded, "{}", g.message);
    assert!(g.message.contains("8388608 bytes"), "{}", g.message);
    assert_chain_goes_on(&net, &client, &signer, g.height).await;
    let count = client
        .query_signed(&signer, SCHEMA, "SELECT count(*) FROM b", Vec::new())
        .await
        .expect("count");
    assert_eq!(count.rows, vec![vec![Value::Integer(2)]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_query_gets_an_error_and_the_node_keeps_serving() {
    let (net, client, signer) = node_with_table().await;
    let height = client.status().await.expect("status").height;
    for terms in [22_000, 49_990] {
        let deep = format!("SELECT 1{}", "+1".repeat(terms - 1));
        // A read signed by the owner: the SQL is parsed only after the signature and the owner check.
        common::assert_api_error(
            client
                .query_signed(&signer, SCHEMA, &deep, Vec::new())
                .await,
            422,
            "sql_refused",
            "nested too deeply",
            &format!("{terms} terms"),
        );
        match client.estimate(SCHEMA, &deep).await {
            Err(ClientError::Api { status, code, .. }) => {
                assert_eq!((status, code.as_str()), (422, "sql_refused"));
            }
            other => panic!("{terms} terms: {other:?}"),
        }
        // Signed transaction: refused at admission (CheckTx).
        let nonce = client.nonce(signer.identity()).await.expect("nonce").next;
        let tx = signer
            .sign(
                CHAIN_ID,
                nonce,
                Payload::Sql {
                    schema: SCHEMA.into(),
                    sql: deep.clone(),
                    params: Vec::new(),
                },
            )
            .expect("sign");
        match client
            .broadcast(&tx, dstorage_client::api::WaitFor::Commit)
            .await
        {
            Err(ClientError::Api {
                status,
                code,
                error,
                ..
            }) => {
                assert_eq!((status, code.as_str()), (422, "sql_refused"), "{error}");
                assert!(error.contains("nested too deeply"), "{error}");
            }
            other => panic!("{terms} terms: {other:?}"),
        }
    }
    // The deepest SQL SQLite would still judge gets SQLite's own answer.
    let chain = format!("SELECT 1{}", "+1".repeat(300));
    common::assert_api_error(
        client
            .query_signed(&signer, SCHEMA, &chain, Vec::new())
            .await,
        400,
        "sql_error",
        "Expression tree is too large",
        "a chain past SQLite's depth limit",
    );
    // A body over the API's limit (2 x max_tx_bytes + 4096) is refused before it is read.
    let huge =
        serde_json::json!({ "schema": SCHEMA, "sql": format!("SELECT '{}'", "x".repeat(600_000)) });
    let r = reqwest::Client::new()
        .post(format!("{}/v1/query", client.base()))
        .json(&huge)
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status().as_u16(), 413);
    let body: dstorage_client::api::ErrorResponse = r.json().await.expect("error JSON");
    assert_eq!(body.code, "too_large", "{}", body.error);
    assert_chain_goes_on(&net, &client, &signer, height).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_block_fails_the_same_transaction_on_every_validator() {
    let net = Net::start(2).await;
    let client = net.nodes[0].client();
    let signer = common::new_signer();
    let r = client
        .deploy(
            &signer,
            SCHEMA,
            "CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    let next = client.nonce(signer.identity()).await.expect("nonce").next;
    // Five transactions of 7 rows of 999 KB (under the 8 MiB per transaction) in one bundle:
    // the fifth would take the block past its 32 MiB.
    let members: Vec<Vec<u8>> = (0..5u64)
        .map(|i| {
            signer
                .sign(
                    CHAIN_ID,
                    next + i,
                    Payload::Sql {
                        schema: SCHEMA.into(),
                        sql: format!(
                            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<7) \
                             INSERT INTO b SELECT x + {}, zeroblob(999000) FROM c",
                            10 * i
                        ),
                        params: Vec::new(),
                    },
                )
                .expect("sign")
                .encode()
        })
        .collect();
    let sent = net.nodes[0]
        .rpc()
        .broadcast_tx_sync(&dstorage_types::tx::encode_bundle(&members))
        .await
        .expect("broadcast");
    assert_eq!(sent.check_tx.code, 0, "{}", sent.check_tx.log);
    let mut results = Vec::new();
    for m in &members {
        let hash = tx_hash(m);
        results.push(
            common::eventually("the record", Duration::from_secs(60), || async {
                client.tx(&hash).await.map_err(|e| e.to_string())
            })
            .await,
        );
    }
    let codes: Vec<ResultCode> = results.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [
            ResultCode::Ok,
            ResultCode::Ok,
            ResultCode::Ok,
            ResultCode::Ok,
            ResultCode::BlockFull
        ],
        "{:?}",
        results.last().map(|r| &r.message)
    );
    assert!(results.iter().all(|r| r.height == results[0].height));
    assert!(
        results[4].message.contains("later block"),
        "{}",
        results[4].message
    );
    assert_chain_goes_on(&net, &client, &signer, results[0].height).await;
    // Both validators computed the same app hash for the full block and the one after it.
    // (Not `assert_same_history`: it fetches every changeset, and this block's is 28 MB.)
    let last = client.status().await.expect("status").height;
    net.wait_height(last, Duration::from_secs(60)).await;
    for h in [results[0].height, last] {
        let mut hashes = Vec::new();
        for node in &net.nodes {
            let url = format!("{}/block_results?height={h}", node.rpc().base_url());
            let body: serde_json::Value = reqwest::get(&url)
                .await
                .expect("block_results")
                .json()
                .await
                .expect("JSON");
            let hash = body["result"]["app_hash"]
                .as_str()
                .expect("app_hash")
                .to_owned();
            hashes.push(hash);
        }
        assert_eq!(hashes[0], hashes[1], "height {h}");
    }
}
