//! A node that may be behind the network does not blame the client for its own state: a nonce that skips ahead
//! is 422 `nonce_gap` while the node is in step with its peers, and 503 `catching_up` with a `Retry-After`
//! header once it is cut off from them (here: the only other validator of two is stopped).

mod common;

use std::time::Duration;

use common::{Net, CHAIN_ID};
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{Payload, Transaction};

const WAIT: Duration = Duration::from_secs(60);

/// POST the transaction and return (status, Retry-After header, JSON body).
async fn post(api: &str, tx: &Transaction) -> (u16, Option<String>, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{api}/v1/tx"))
        .json(&serde_json::json!({ "tx": hex::encode(tx.encode()) }))
        .send()
        .await
        .expect("an answer");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    (status, retry, r.json().await.expect("JSON"))
}

// Bug pinned (issue 13): a node catching up after a restart, or cut off from its peers, refused valid writes
// with `nonce_gap` (40-64 times per run in the fault tests): its view of nonces was behind, not the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_node_answers_catching_up_with_a_retry_hint_instead_of_nonce_gap() {
    let mut net = Net::start(2).await;
    let api = net.nodes[0].config.api_addr.clone();
    let client = net.nodes[0].client();
    let owner = common::new_signer();
    let r = client
        .deploy(
            &owner,
            "cut",
            "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    let gap = owner
        .sign(
            CHAIN_ID,
            5,
            Payload::Sql {
                schema: "cut".into(),
                sql: "INSERT INTO t VALUES (1)".into(),
                params: Vec::new(),
            },
        )
        .expect("sign");

    // In step with its peer: the gap is the client's.
    let (status, retry, body) = post(&api, &gap).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("nonce_gap")),
        "{body}"
    );
    assert_eq!(retry, None);

    let stopped = net.nodes[1].stop().await;
    assert!(stopped.success(), "node1 stopped with {stopped}");

    // Cut off (no peer, and no block without the other half of the voting power): the node cannot judge.
    let (retry, body) = common::eventually("a catching_up answer", WAIT, || {
        let (api, gap) = (api.clone(), gap.clone());
        async move {
            match post(&api, &gap).await {
                (503, retry, body) if body["code"] == "catching_up" => Ok((retry, body)),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert_eq!(retry.as_deref(), Some("2"), "{body}");
    let error = body["error"].as_str().expect("an error message");
    assert!(error.contains("retry in 2 s"), "{error}");
    assert!(
        error.contains("cut off") || error.contains("no block for"),
        "{error}"
    );
    assert!(error.contains("nonce 5 skips ahead"), "{error}");
}
