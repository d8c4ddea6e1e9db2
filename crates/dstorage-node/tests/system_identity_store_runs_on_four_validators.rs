//! The identity store (`examples/identity_store.sql`) on four real validators: humans with Ethereum and ed25519
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
    let alice =
        Signer::new(SecretKey::generate(KeyType::Secp256k1), "eth_personal_sign").expect("eth");
    let bob = common::new_signer();
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
    // Alice grants bob her copy; bob reads it signed on node 3, everyone else is refused.
    let granted = c0
        .submit(
            &alice,
            Payload::Grant {
                grantee: bob.identity().to_string(),
                data_id: "kyc-1-bob".into(),
                locked_until: 0,
            },
        )
        .await
        .expect("grant");
    assert_eq!(granted.code, ResultCode::Ok, "{}", granted.message);
    let last = granted.height;
    net.nodes[3].wait_height(last, WAIT).await;
    let shared = c3
        .read_action(
            Some(&bob),
            "ids",
            "get_shared_credential",
            vec![text("kyc-1-bob")],
        )
        .await
        .expect("the grantee's signed read");
    let shared: dstorage_client::api::QueryResponse = serde_json::from_value(shared).expect("rows");
    assert_eq!(
        shared.rows,
        vec![vec![
            text("kyc-1-bob"),
            text("did:issuer:acme"),
            text("kyc"),
            Value::Blob(b"sealed for bob".to_vec())
        ]]
    );
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
        "a signed read of bob's copy by someone else",
    );
    assert_api_error(
        c3.read_action(
            None,
            "ids",
            "get_shared_credential",
            vec![text("kyc-1-bob")],
        )
        .await,
        401,
        "signature_required",
        "for signed callers only",
        "an unsigned read of the shared copy",
    );

    let listed = c3.actions("ids").await.expect("actions");
    let names: Vec<&str> = listed.actions.iter().map(|a| a.name.as_str()).collect();
    assert!(names.contains(&"get_shared_credential"), "{names:?}");
    assert!(!listed.public_read);

    net.assert_same_history(last).await;
}
