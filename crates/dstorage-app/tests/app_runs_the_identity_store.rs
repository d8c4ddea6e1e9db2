//! The shipped identity store (`examples/identity_store.sql`) on the real app: two humans with Ethereum and
//! ed25519 wallets, credentials added, edited, shared with a grant and read by the grantee only.
//! Grants are real `grant` and `revoke` transactions; the view reads them through `has_grant`.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_types::caller::Caller;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

const STORE: &str = include_str!("../../../examples/identity_store.sql");

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

fn caller_of(w: &Wallet) -> Caller {
    Caller {
        identity: w.identity(),
        standard: w.signer.standard().to_string(),
        key: None,
    }
}

fn all_ok(out: &dstorage_app::testing::BlockOutcome) {
    for r in &out.results {
        assert_eq!(code(r), ResultCode::Ok, "{}", r.log);
    }
}

#[test]
fn a_shared_credential_is_read_by_its_grantee_only_while_granted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let h = Harness::start(&db, CHAIN).unwrap();
    let mut operator = Wallet::ed25519();
    let mut alice_eth = Wallet::eth();
    let alice_near = Wallet::new(dstorage_types::identity::KeyType::Ed25519, "near_nep413");
    let mut bob = Wallet::ed25519();
    let mut carol = Wallet::eth();

    all_ok(&h.block(vec![operator.tx(deploy("ids", STORE))]).unwrap());
    all_ok(
        &h.block(vec![
            alice_eth.tx(call("create_human", vec![text("alice")])),
            bob.tx(call("create_human", vec![text("bob")])),
            alice_eth.tx(call(
                "add_wallet",
                vec![
                    text(&alice_near.identity()),
                    text("near_nep413"),
                    Value::Null,
                ],
            )),
            alice_eth.tx(call(
                "add_credential",
                vec![
                    text("kyc-1"),
                    text("did:issuer:acme"),
                    text("kyc"),
                    Value::Blob(b"sealed for alice".to_vec()),
                ],
            )),
            alice_eth.tx(call("set_attribute", vec![text("country"), text("PT")])),
        ])
        .unwrap(),
    );
    // Edit, then share a copy re-encrypted for bob.
    all_ok(
        &h.block(vec![
            alice_eth.tx(call(
                "edit_credential",
                vec![text("kyc-1"), Value::Blob(b"sealed for alice v2".to_vec())],
            )),
            alice_eth.tx(call(
                "share_credential",
                vec![
                    text("kyc-1"),
                    text("kyc-1-bob"),
                    text(&bob.identity()),
                    Value::Blob(b"sealed for bob".to_vec()),
                ],
            )),
        ])
        .unwrap(),
    );
    // Another human cannot touch alice's credential through the actions.
    let out = h
        .block(vec![
            bob.tx(call(
                "edit_credential",
                vec![text("kyc-1"), Value::Blob(b"forged".to_vec())],
            )),
            bob.tx(call("remove_credential", vec![text("kyc-1")])),
            carol.tx(call(
                "add_credential",
                vec![text("c"), text("i"), text("t"), Value::Blob(vec![1])],
            )),
        ])
        .unwrap();
    let logs: Vec<(ResultCode, String)> = out
        .results
        .iter()
        .map(|r| (code(r), r.log.clone()))
        .collect();
    assert_eq!(
        logs,
        vec![
            (
                ResultCode::ActionError,
                "no such credential of yours".into()
            ),
            (
                ResultCode::ActionError,
                "no such credential of yours".into()
            ),
            (
                ResultCode::ActionError,
                "the signing wallet belongs to no human".into()
            ),
        ]
    );

    let reads = h.app.reads();
    let view = |action: &str, args: Vec<Value>, who: Option<Caller>| {
        reads
            .call_view("ids", action, &args, who, 1_000_000)
            .unwrap()
    };
    // Alice's wallets both see her credentials: the original and the copy she shared.
    for w in [&alice_eth, &alice_near] {
        let (mine, _) = view("list_my_credentials", Vec::new(), Some(caller_of(w))).unwrap();
        let ids: Vec<&Value> = mine.rows.iter().map(|r| &r[0]).collect();
        assert_eq!(ids, vec![&text("kyc-1"), &text("kyc-1-bob")]);
    }
    let (attrs, _) = view(
        "list_my_attributes",
        Vec::new(),
        Some(caller_of(&alice_near)),
    )
    .unwrap();
    assert_eq!(attrs.rows, vec![vec![text("country"), text("PT")]]);

    // No grant yet: bob, the named grantee, is refused.
    let refused = view(
        "get_shared_credential",
        vec![text("kyc-1-bob")],
        Some(caller_of(&bob)),
    )
    .unwrap_err();
    assert_eq!(
        refused,
        dstorage_app::Refusal::new(ResultCode::ActionError, "no grant for this credential")
    );
    // Alice grants bob the copy.
    all_ok(
        &h.block(vec![alice_eth.tx(Payload::Grant {
            grantee: bob.identity(),
            data_id: "kyc-1-bob".into(),
            locked_until: 0,
        })])
        .unwrap(),
    );
    let (shared, _) = view(
        "get_shared_credential",
        vec![text("kyc-1-bob")],
        Some(caller_of(&bob)),
    )
    .unwrap();
    assert_eq!(
        shared.rows,
        vec![vec![
            text("kyc-1-bob"),
            text("did:issuer:acme"),
            text("kyc"),
            Value::Blob(b"sealed for bob".to_vec())
        ]]
    );
    // The grant is for bob and that copy only: carol, the original, and an unsigned caller are refused.
    let refused = view(
        "get_shared_credential",
        vec![text("kyc-1-bob")],
        Some(caller_of(&carol)),
    )
    .unwrap_err();
    assert_eq!(refused.code, ResultCode::ActionError);
    let refused = view(
        "get_shared_credential",
        vec![text("kyc-1")],
        Some(caller_of(&bob)),
    )
    .unwrap_err();
    assert_eq!(refused.code, ResultCode::ActionError);
    let refused = view("get_shared_credential", vec![text("kyc-1-bob")], None).unwrap_err();
    assert_eq!(refused.code, ResultCode::Forbidden);
    // Only the public count runs unsigned.
    let (count, _) = view("count_humans", Vec::new(), None).unwrap();
    assert_eq!(count.rows, vec![vec![Value::Integer(2)]]);

    // Revoked, the grant no longer opens the copy.
    all_ok(
        &h.block(vec![alice_eth.tx(Payload::Revoke {
            grantee: bob.identity(),
            data_id: "kyc-1-bob".into(),
        })])
        .unwrap(),
    );
    let refused = h
        .app
        .reads()
        .call_view(
            "ids",
            "get_shared_credential",
            &[text("kyc-1-bob")],
            Some(caller_of(&bob)),
            1_000_000,
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code, ResultCode::ActionError);

    // Removing the original is alice's to do; her copy for bob stays under its grant.
    all_ok(
        &h.block(vec![
            alice_eth.tx(call("remove_credential", vec![text("kyc-1")]))
        ])
        .unwrap(),
    );
    let (mine, _) = view(
        "list_my_credentials",
        Vec::new(),
        Some(caller_of(&alice_eth)),
    )
    .unwrap();
    assert_eq!(mine.rows.len(), 1);
}
