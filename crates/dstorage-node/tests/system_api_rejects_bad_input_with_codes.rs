//! Bad input through the HTTP API of a real node: malformed bytes, bad signatures, a wrong chain id, replayed and
//! skipping nonces, an oversized transaction, SQL that fails on the state (STRICT type, constraint, unknown table),
//! SQL its text alone fails (a syntax error, a refused construct or table definition), reads of several statements,
//! and identities spelled otherwise than canonically. Each is refused with its code and a message naming the cause, nothing
//! is half-applied, and the node keeps serving: a valid write afterwards commits.

mod common;

use common::{Net, CHAIN_ID};
use dstorage_client::api::{ErrorResponse, TxResult};
use dstorage_client::{Client, ClientError, Signer};
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{Payload, Transaction};
use dstorage_types::value::Value;

const SCHEMA: &str = "guarded";

/// What the API did with one transaction.
#[derive(Debug)]
enum Outcome {
    /// Refused before a block: HTTP status and the error body.
    Refused(u16, ErrorResponse),
    /// Committed, with its result (which may be a failure).
    Committed(TxResult),
}

/// POST `/v1/tx` with a raw `tx` field and `wait: commit`; never panics on an error answer.
async fn post_raw(client: &Client, tx_field: &str) -> Outcome {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/tx", client.base()))
        .json(&serde_json::json!({ "tx": tx_field, "wait": "commit" }))
        .send()
        .await
        .expect("POST /v1/tx");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body");
    if status == 200 {
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON answer");
        return Outcome::Committed(
            serde_json::from_value(v["committed"].clone()).expect("committed result"),
        );
    }
    let err: ErrorResponse = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "error answer {status} is not {{error, code}} JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    Outcome::Refused(status, err)
}

async fn post_tx(client: &Client, tx: &Transaction) -> Outcome {
    post_raw(client, &hex::encode(tx.encode())).await
}

fn sql(signer: &Signer, chain: &str, nonce: u64, sql: &str) -> Transaction {
    signer
        .sign(
            chain,
            nonce,
            Payload::Sql {
                schema: SCHEMA.into(),
                sql: sql.into(),
                params: Vec::new(),
            },
        )
        .expect("sign")
}

#[track_caller]
fn assert_refused(outcome: &Outcome, status: u16, code: &str, says: &[&str]) {
    match outcome {
        Outcome::Refused(s, e) => {
            assert_eq!((*s, e.code.as_str()), (status, code), "{e:?}");
            for word in says {
                assert!(
                    e.error.contains(word),
                    "message {:?} does not mention {word:?}",
                    e.error
                );
            }
        }
        Outcome::Committed(r) => panic!("expected a {status} {code} refusal, got committed {r:?}"),
    }
}

#[track_caller]
fn assert_failed(outcome: &Outcome, code: ResultCode, says: &[&str]) {
    match outcome {
        Outcome::Committed(r) => {
            assert_eq!(r.code, code, "{r:?}");
            assert_eq!(r.rows_changed, 0, "{r:?}");
            for word in says {
                assert!(
                    r.message.contains(word),
                    "message {:?} does not mention {word:?}",
                    r.message
                );
            }
        }
        Outcome::Refused(s, e) => panic!("expected a committed {code} failure, got {s} {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_rejects_bad_input_with_codes() {
    let mut net = Net::init_single();
    net.nodes[0].start().await;
    let node = &net.nodes[0];
    let client = node.client();
    let owner = common::new_signer();

    let deployed = client
        .deploy(
            &owner,
            SCHEMA,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER NOT NULL CHECK (n >= 0)) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(deployed.code, ResultCode::Ok, "{}", deployed.message);
    let first = sql(&owner, CHAIN_ID, 2, "INSERT INTO t VALUES (1, 'one', 1)");
    match post_tx(&client, &first).await {
        Outcome::Committed(r) => assert_eq!(r.code, ResultCode::Ok, "{r:?}"),
        other => panic!("baseline write: {other:?}"),
    }
    let baseline = vec![vec![
        Value::Integer(1),
        Value::Text("one".into()),
        Value::Integer(1),
    ]];
    let mut nonce = 3;

    // Bytes that are not a transaction.
    assert_refused(
        &post_raw(&client, "not hex at all").await,
        400,
        "malformed",
        &["not hex"],
    );
    assert_refused(
        &post_raw(&client, "deadbeef").await,
        422,
        "malformed",
        &["malformed transaction"],
    );
    let mut trailing = first.encode();
    trailing.push(0);
    assert_refused(
        &post_raw(&client, &hex::encode(trailing)).await,
        422,
        "malformed",
        &["trailing"],
    );

    // Signatures: a flipped bit, and a valid signature over a different body.
    let mut flipped = sql(
        &owner,
        CHAIN_ID,
        nonce,
        "INSERT INTO t VALUES (9, 'nine', 9)",
    );
    flipped.signature[10] ^= 1;
    assert_refused(
        &post_tx(&client, &flipped).await,
        422,
        "bad_signature",
        &["signature does not verify", "ed25519"],
    );
    let mut swapped = sql(
        &owner,
        CHAIN_ID,
        nonce,
        "INSERT INTO t VALUES (9, 'nine', 9)",
    );
    swapped.body.payload = Payload::Sql {
        schema: SCHEMA.into(),
        sql: "DELETE FROM t".into(),
        params: Vec::new(),
    };
    assert_refused(
        &post_tx(&client, &swapped).await,
        422,
        "bad_signature",
        &["signature does not verify"],
    );
    let mut unknown = sql(
        &owner,
        CHAIN_ID,
        nonce,
        "INSERT INTO t VALUES (9, 'nine', 9)",
    );
    unknown.body.standard = "rot13".into();
    assert_refused(
        &post_tx(&client, &unknown).await,
        422,
        "unknown_standard",
        &["rot13"],
    );

    // Another network's transaction.
    assert_refused(
        &post_tx(
            &client,
            &sql(&owner, "some-other-chain", nonce, "DELETE FROM t"),
        )
        .await,
        422,
        "wrong_chain_id",
        &["some-other-chain", CHAIN_ID],
    );

    // Nonces: the committed transaction again (same bytes), an old nonce with a new body, and a gap.
    let replay = post_tx(&client, &first).await;
    assert_refused(&replay, 422, "nonce_replayed", &["nonce 2"]);
    assert_refused(
        &post_tx(&client, &sql(&owner, CHAIN_ID, 2, "DELETE FROM t")).await,
        422,
        "nonce_replayed",
        &["nonce 2 was already used", "next nonce is 3"],
    );
    assert_refused(
        &post_tx(&client, &sql(&owner, CHAIN_ID, nonce + 5, "DELETE FROM t")).await,
        422,
        "nonce_gap",
        &["nonce 8 skips ahead", "next nonce is 3"],
    );

    // Size: just over the limit, and far over it.
    let limit = node.config.max_tx_bytes;
    for size in [limit + 1, 4 * limit] {
        let filler = "x".repeat(size);
        let big = sql(
            &owner,
            CHAIN_ID,
            nonce,
            &format!("INSERT INTO t VALUES (9, '{filler}', 9)"),
        );
        assert!(big.encode().len() > limit);
        assert_refused(
            &post_tx(&client, &big).await,
            413,
            "too_large",
            &[&format!("{limit} bytes")],
        );
    }

    // Writing into someone else's schema.
    let stranger = common::new_signer();
    assert_refused(
        &post_tx(&client, &sql(&stranger, CHAIN_ID, 1, "DELETE FROM t")).await,
        422,
        "unauthorized",
        &[stranger.identity(), SCHEMA],
    );

    // SQL that fails when it runs: committed with sql_error, the nonce used, nothing applied.
    let failing: [(&str, &[&str]); 5] = [
        (
            "INSERT INTO t VALUES (2, 'two', 'not a number')",
            &["cannot store TEXT value in INTEGER column", "t.n"],
        ),
        (
            "INSERT INTO t VALUES (2, 'one', 2)",
            &["UNIQUE constraint failed", "t.name"],
        ),
        (
            "INSERT INTO t VALUES (2, 'two', -1)",
            &["CHECK constraint failed"],
        ),
        (
            "INSERT INTO nowhere VALUES (1)",
            &["no such table", "nowhere"],
        ),
        // The first statement succeeds, the second fails: the transaction applies neither.
        (
            "INSERT INTO t VALUES (2, 'two', 2); UPDATE t SET n = n - 5 WHERE id = 1",
            &["CHECK constraint failed"],
        ),
    ];
    for (text, says) in failing {
        let outcome = post_tx(&client, &sql(&owner, CHAIN_ID, nonce, text)).await;
        assert_failed(&outcome, ResultCode::SqlError, says);
        nonce += 1;
    }

    // SQL its text alone fails, whatever the state (the guard refuses it, or it does not parse): refused at
    // CheckTx, nonce not used.
    for (text, says) in [
        ("INSERT INTO t VALUES (2, 'two', abs(random()))", "random"),
        ("INSERT INTO t VALUES (2, datetime('now'), 2)", "datetime"),
        ("INSERT INTO t VALUES (", "does not parse"),
        (
            "CREATE TABLE u (a INTEGER) STRICT",
            "PRIMARY KEY is required",
        ),
        (
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END",
            "TRIGGER",
        ),
    ] {
        assert_refused(
            &post_tx(&client, &sql(&owner, CHAIN_ID, nonce, text)).await,
            422,
            "sql_refused",
            &[says],
        );
    }

    // Reads refuse the same way, with the API's read codes.
    common::assert_api_error(
        client
            .query_signed(&owner, SCHEMA, "SELECT * FROM", Vec::new())
            .await,
        422,
        "sql_refused",
        "does not parse",
        "bad read",
    );
    common::assert_api_error(
        client
            .query_signed(&owner, SCHEMA, "SELECT * FROM nowhere", Vec::new())
            .await,
        400,
        "sql_error",
        "no such table",
        "read of an unknown table",
    );
    // Regression: a read of several statements answered the last one.
    common::assert_api_error(
        client
            .query_signed(&owner, SCHEMA, "SELECT 1; SELECT 2", Vec::new())
            .await,
        422,
        "sql_refused",
        "exactly one statement",
        "read of two statements",
    );
    common::assert_api_error(
        client
            .query_signed(&owner, SCHEMA, "SELECT random()", Vec::new())
            .await,
        422,
        "sql_refused",
        "random",
        "refused read",
    );

    // Nothing half-applied; the nonce moved only for transactions that reached a block.
    let rows = client
        .query_signed(
            &owner,
            SCHEMA,
            "SELECT id, name, n FROM t ORDER BY id",
            Vec::new(),
        )
        .await
        .expect("query");
    assert_eq!(rows.rows, baseline);
    let next = client.nonce(owner.identity()).await.expect("nonce").next;
    assert_eq!(next, nonce);

    // Regression: another spelling of an identity, or no identity at all, was answered `next: 1`. A spelling
    // that differs only in case is answered for the canonical identity; anything else is 400 `bad_identity`.
    let upper = client
        .nonce(&owner.identity().to_uppercase())
        .await
        .expect("nonce of upper-case hex");
    assert_eq!(
        (upper.identity.as_str(), upper.next),
        (owner.identity(), nonce)
    );
    let eth = Signer::new(
        dstorage_auth::SecretKey::generate(dstorage_auth::KeyType::Secp256k1),
        "eth_personal_sign",
    )
    .expect("eth signer");
    let lower = client
        .nonce(&eth.identity().to_lowercase())
        .await
        .expect("nonce of a lower-case address");
    assert_eq!(lower.identity, eth.identity());
    // NEAR's `ed25519:<base58>` names a key whose identity is its hex (ed25519) or its base58
    // (solana_sign_message): the refusal names both rather than guessing.
    let ed = dstorage_auth::SecretKey::generate(dstorage_auth::KeyType::Ed25519).public_key();
    let registry = dstorage_auth::default_registry();
    let hex_id = registry.identity_for("ed25519", &ed).expect("hex identity");
    let base58 = registry
        .identity_for("solana_sign_message", &ed)
        .expect("base58 identity");
    for (text, says) in [
        ("not-an-identity".to_owned(), vec!["not an identity"]),
        (
            format!("ed25519:{base58}"),
            vec![hex_id.as_str(), base58.as_str()],
        ),
    ] {
        match client.nonce(&text).await {
            Err(ClientError::Api {
                status,
                code,
                error,
                ..
            }) => {
                assert_eq!((status, code.as_str()), (400, "bad_identity"), "{error}");
                for word in says {
                    assert!(error.contains(word), "{text}: {error}");
                }
            }
            other => panic!("nonce of {text}: {other:?}"),
        }
    }

    // The node keeps serving.
    let ok = post_tx(
        &client,
        &sql(
            &owner,
            CHAIN_ID,
            nonce,
            "INSERT INTO t VALUES (2, 'two', 2)",
        ),
    )
    .await;
    match ok {
        Outcome::Committed(r) => {
            assert_eq!(r.code, ResultCode::Ok, "{r:?}");
            assert_eq!(r.rows_changed, 1);
        }
        other => panic!("valid write after bad input: {other:?}"),
    }
    assert!(client.health().await.expect("health"));
}
