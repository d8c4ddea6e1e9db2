//! The identity store (`examples/identity_store.sql`) on four real validators: humans with Ethereum and NEAR
//! wallets call its actions through node 0, every refusal gets the same code on every node, another identity's
//! write through an action fails by the action's own SQL, views answer on node 3 unsigned only when public, and
//! every node ends with the same app hash at every height.

mod common;

use std::time::Duration;

use common::{assert_api_error, Net, CHAIN_ID};
use dstorage_auth::SecretKey;
use dstorage_client::api::WaitFor;
use dstorage_client::Signer;
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

const STORE: &str = include_str!("../../../examples/identity_store.sql");
const WAIT: Duration = Duration::from_secs(60);

fn call(action: &str, args: Vec<Value>) -> Payload {
    Payload::Call {
        schema: "ids".into(),
        action: action.into(),
        args,
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_store_runs_on_four_validators() {
    let net = Net::start(4).await;
    let (c0, c3) = (net.nodes[0].client(), net.nodes[3].client());
    let operator = common::new_signer();
    let alice_key = SecretKey::generate(KeyType::Secp256k1);
    let alice = Signer::new(alice_key.clone(), "eth_personal_sign").expect("eth");
    // Bob's wallet is a NEAR one (NEP-413 over ed25519).
    let bob_key = SecretKey::generate(KeyType::Ed25519);
    let bob = Signer::new(bob_key.clone(), "near_nep413").expect("near");
    let mallory = common::new_signer();

    let r = c0.deploy(&operator, "ids", STORE).await.expect("deploy");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);

    let mut results = Vec::new();
    for (who, payload) in [
        (&alice, call("create_human", vec![text("alice")])),
        (&bob, call("create_human", vec![text("bob")])),
        (
            &alice,
            call(
                "add_credential",
                vec![
                    text("kyc-1"),
                    text("did:issuer:acme"),
                    text("kyc"),
                    Value::Blob(b"sealed".to_vec()),
                ],
            ),
        ),
        (
            &alice,
            call(
                "share_credential",
                vec![
                    text("kyc-1"),
                    text("kyc-1-bob"),
                    text(bob.identity()),
                    Value::Blob(b"sealed for bob".to_vec()),
                ],
            ),
        ),
        (
            &mallory,
            call(
                "edit_credential",
                vec![text("kyc-1"), Value::Blob(b"forged".to_vec())],
            ),
        ),
    ] {
        results.push(c0.submit(who, payload).await.expect("call"));
    }
    let codes: Vec<(ResultCode, &str)> = results
        .iter()
        .map(|r| (r.code, r.message.as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (ResultCode::Ok, ""),
            (ResultCode::Ok, ""),
            (ResultCode::Ok, ""),
            (ResultCode::Ok, ""),
            (ResultCode::ActionError, "no such credential of yours"),
        ]
    );
    let last = results.last().expect("results").height;

    // Wrong arguments are refused by CheckTx, naming the parameter.
    let nonce = c0.nonce(alice.identity()).await.expect("nonce").next;
    let bad = alice
        .sign(CHAIN_ID, nonce, call("add_credential", vec![text("x")]))
        .expect("sign");
    assert_api_error(
        c0.broadcast(&bad, WaitFor::Sync).await,
        422,
        "bad_arguments",
        "takes 4 arguments",
        "a call with one argument of four",
    );

    // Node 3 has the same state and the same records.
    net.nodes[3].wait_height(last, WAIT).await;
    for r in &results {
        let there = c3.tx(&r.hash).await.expect("record on node3");
        assert_eq!((there.code, &there.message), (r.code, &r.message));
    }
    // Each wallet's key as create_human stored it from @caller_key: Alice's recovered from her Ethereum
    // signature on every node alike (the app hashes compared below cover the other nodes).
    let wallets = c3
        .query_signed(
            &operator,
            "ids",
            "SELECT standard, public_key FROM wallets ORDER BY standard",
            Vec::new(),
        )
        .await
        .expect("the operator's read of the wallets");
    assert_eq!(
        wallets.rows,
        vec![
            vec![
                text("eth_personal_sign"),
                Value::Blob(alice_key.public_key().to_bytes())
            ],
            vec![
                text("near_nep413"),
                Value::Blob(bob_key.public_key().to_bytes())
            ],
        ]
    );
    let humans = c3
        .call_view("ids", "count_humans", Vec::new())
        .await
        .expect("public view");
    assert_eq!(humans.rows, vec![vec![Value::Integer(2)]]);
    assert_api_error(
        c3.call_view("ids", "list_my_credentials", Vec::new()).await,
        401,
        "signature_required",
        "for signed callers only",
        "an unsigned call of an authenticated view",
    );
    assert_api_error(
        c3.call_view("ids", "add_wallet", vec![text("a"), text("b"), Value::Null])
            .await,
        400,
        "not_a_view",
        "writes",
        "a write action through /v1/call",
    );
    assert_api_error(
        c3.call_view("ids", "count_humans", vec![Value::Integer(1)])
            .await,
        400,
        "bad_arguments",
        "takes 0 arguments",
        "a view with an extra argument",
    );
    assert_api_error(
        c3.call_view("ids", "nope", Vec::new()).await,
        404,
        "action_not_found",
        "no action nope",
        "an unknown action",
    );
    // Signed reads on node 3: alice lists her credentials; bob reads the copy once alice granted it, mallory
    // never.
    let mine = c3
        .read_action(Some(&alice), "ids", "list_my_credentials", Vec::new())
        .await
        .expect("alice's signed read");
    let ids: Vec<&Value> = mine.rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids, vec![&text("kyc-1"), &text("kyc-1-bob")]);
    let shared = || {
        c3.read_action(
            Some(&bob),
            "ids",
            "get_shared_credential",
            vec![text("kyc-1-bob")],
        )
    };
    assert_api_error(
        shared().await,
        422,
        "action_error",
        "no grant for this credential",
        "bob's read before the grant",
    );
    let granted = c0
        .grant(&alice, bob.identity(), "kyc-1-bob", 0)
        .await
        .expect("grant");
    assert_eq!(granted.code, ResultCode::Ok, "{}", granted.message);
    net.nodes[3].wait_height(granted.height, WAIT).await;
    let copy = shared().await.expect("bob's read with the grant");
    assert_eq!(copy.rows[0][3], Value::Blob(b"sealed for bob".to_vec()));
    assert_api_error(
        c3.read_action(
            Some(&mallory),
            "ids",
            "get_shared_credential",
            vec![text("kyc-1-bob")],
        )
        .await,
        422,
        "action_error",
        "no grant for this credential",
        "mallory's read of bob's copy",
    );
    let last = granted.height;

    let listed = c3.actions("ids").await.expect("actions");
    let names: Vec<&str> = listed.actions.iter().map(|a| a.name.as_str()).collect();
    assert!(names.contains(&"get_shared_credential"), "{names:?}");
    assert!(!listed.public_read);

    net.assert_same_history(last).await;
}
