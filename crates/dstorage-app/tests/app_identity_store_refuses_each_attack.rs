//! The identity store (`examples/identity_store.sql`) against one attack per test, each refused with its code,
//! and the allowed paths beside them: alice (Ethereum) holds credential `kyc-1` and a copy `kyc-1-bob` made for
//! bob (NEAR); carol (ed25519) is another human; mallory has no human at all.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_types::caller::Caller;
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

const STORE: &str = include_str!("../../../examples/identity_store.sql");

struct Store {
    h: Harness,
    _dir: tempfile::TempDir,
    operator: Wallet,
    alice: Wallet,
    bob: Wallet,
    carol: Wallet,
    mallory: Wallet,
}

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

fn caller_of(w: &Wallet) -> Option<Caller> {
    Some(Caller {
        identity: w.identity(),
        standard: w.signer.standard().to_string(),
        key: None,
    })
}

fn grant(grantee: &Wallet, data_id: &str) -> Payload {
    Payload::Grant {
        grantee: grantee.identity(),
        data_id: data_id.into(),
        locked_until: 0,
    }
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
        let mut s = Store {
            h,
            _dir: dir,
            operator: Wallet::ed25519(),
            alice: Wallet::eth(),
            bob: Wallet::new(KeyType::Ed25519, "near_nep413"),
            carol: Wallet::ed25519(),
            mallory: Wallet::ed25519(),
        };
        let deploy = s.operator.tx(deploy("ids", STORE));
        s.ok(vec![deploy]);
        let txs = vec![
            s.alice.tx(call("create_human", vec![text("alice")])),
            s.bob.tx(call("create_human", vec![text("bob")])),
            s.carol.tx(call("create_human", vec![text("carol")])),
            s.alice.tx(call(
                "add_credential",
                vec![
                    text("kyc-1"),
                    text("did:issuer:acme"),
                    text("kyc"),
                    Value::Blob(b"sealed for alice".to_vec()),
                ],
            )),
            s.alice.tx(call(
                "share_credential",
                vec![
                    text("kyc-1"),
                    text("kyc-1-bob"),
                    text(&s.bob.identity()),
                    Value::Blob(b"sealed for bob".to_vec()),
                ],
            )),
        ];
        s.ok(txs);
        s
    }

    #[track_caller]
    fn ok(&self, txs: Vec<Vec<u8>>) {
        for r in &self.h.block(txs).unwrap().results {
            assert_eq!(code(r), ResultCode::Ok, "{}", r.log);
        }
    }

    /// The codes and messages of a block of these transactions.
    fn block(&self, txs: Vec<Vec<u8>>) -> Vec<(ResultCode, String)> {
        self.h
            .block(txs)
            .unwrap()
            .results
            .iter()
            .map(|r| (code(r), r.log.clone()))
            .collect()
    }

    fn view(
        &self,
        action: &str,
        args: Vec<Value>,
        who: Option<Caller>,
    ) -> Result<Vec<Vec<Value>>, (ResultCode, String)> {
        self.h
            .app
            .reads()
            .call_view("ids", action, &args, who, 1_000_000)
            .unwrap()
            .map(|(rows, _)| rows.rows)
            .map_err(|r| (r.code, r.message))
    }

    fn credentials(&self) -> Vec<Vec<Value>> {
        self.h
            .app
            .reads()
            .query(
                "ids",
                "SELECT id, content FROM credentials ORDER BY id",
                1_000_000,
            )
            .unwrap()
            .rows
    }
}

fn original_credentials() -> Vec<Vec<Value>> {
    vec![
        vec![text("kyc-1"), Value::Blob(b"sealed for alice".to_vec())],
        vec![text("kyc-1-bob"), Value::Blob(b"sealed for bob".to_vec())],
    ]
}

#[test]
fn another_human_reads_none_of_someones_credentials_through_an_action() {
    let s = Store::new();
    let carol = caller_of(&s.carol);
    assert_eq!(
        s.view("get_my_credential", vec![text("kyc-1")], carol.clone()),
        Ok(Vec::new())
    );
    assert_eq!(
        s.view("list_my_credentials", Vec::new(), carol.clone()),
        Ok(Vec::new())
    );
    assert_eq!(
        s.view("get_shared_credential", vec![text("kyc-1-bob")], carol),
        Err((
            ResultCode::ActionError,
            "no grant for this credential".into()
        ))
    );
}

#[test]
fn another_human_cannot_edit_or_remove_someones_credential_through_an_action() {
    let mut s = Store::new();
    let txs = vec![
        s.carol.tx(call(
            "edit_credential",
            vec![text("kyc-1"), Value::Blob(b"forged".to_vec())],
        )),
        s.carol.tx(call("remove_credential", vec![text("kyc-1")])),
        s.mallory.tx(call(
            "share_credential",
            vec![
                text("kyc-1"),
                text("stolen"),
                text(&s.mallory.identity()),
                Value::Blob(vec![0]),
            ],
        )),
    ];
    let refused = (
        ResultCode::ActionError,
        "no such credential of yours".into(),
    );
    assert_eq!(
        s.block(txs),
        vec![refused.clone(), refused.clone(), refused]
    );
    assert_eq!(s.credentials(), original_credentials());
}

#[test]
fn a_stranger_cannot_read_or_write_the_store_with_ad_hoc_sql() {
    let mut s = Store::new();
    let write = s
        .carol
        .tx(sql("ids", "UPDATE credentials SET content = x'00'"));
    let checked = s.h.check_tx(&write);
    assert_eq!(
        ResultCode::from_code(checked.code.value()),
        Some(ResultCode::Unauthorized),
        "{}",
        checked.log
    );
    // A proposer may include it anyway: the block refuses it the same way.
    assert_eq!(s.block(vec![write])[0].0, ResultCode::Unauthorized);
    assert_eq!(s.credentials(), original_credentials());
    // Reading is the owner's too: the API's rule (`access::may_read`) turns carol away.
    let public = s.h.app.reads().public_read("ids").unwrap();
    assert!(!public);
    let owner = s.h.app.reads().owner("ids").unwrap().unwrap();
    assert!(
        dstorage_app::access::may_read("ids", &owner, public, Some(&s.carol.identity())).is_err()
    );
    assert!(dstorage_app::access::may_read("ids", &owner, public, None).is_err());
    assert!(
        dstorage_app::access::may_read("ids", &owner, public, Some(&s.operator.identity())).is_ok()
    );
}

#[test]
fn sql_smuggled_in_an_argument_is_stored_as_text() {
    let mut s = Store::new();
    let smuggled = "x'); DELETE FROM credentials; --";
    let tx = s.carol.tx(call(
        "add_credential",
        vec![text(smuggled), text("i"), text("t"), Value::Blob(vec![1])],
    ));
    s.ok(vec![tx]);
    let mut expected = original_credentials();
    expected.push(vec![text(smuggled), Value::Blob(vec![1])]);
    assert_eq!(s.credentials(), expected);
}

#[test]
fn a_grant_of_another_data_id_or_to_another_grantee_does_not_open_a_shared_copy() {
    let mut s = Store::new();
    // Bob is granted the original, not the copy made for him; carol is granted the copy made for bob.
    let txs = vec![
        s.alice.tx(grant(&s.bob, "kyc-1")),
        s.alice.tx(grant(&s.carol, "kyc-1-bob")),
    ];
    s.ok(txs);
    let refused = Err((
        ResultCode::ActionError,
        "no grant for this credential".into(),
    ));
    assert_eq!(
        s.view(
            "get_shared_credential",
            vec![text("kyc-1-bob")],
            caller_of(&s.bob)
        ),
        refused
    );
    assert_eq!(
        s.view(
            "get_shared_credential",
            vec![text("kyc-1")],
            caller_of(&s.bob)
        ),
        refused
    );
    assert_eq!(
        s.view(
            "get_shared_credential",
            vec![text("kyc-1-bob")],
            caller_of(&s.carol)
        ),
        refused
    );
}

#[test]
fn a_grant_made_by_someone_other_than_the_credentials_human_does_not_open_it() {
    let mut s = Store::new();
    // Mallory grants bob the copy: a grant row exists, but its owner is not alice's wallet.
    let tx = s.mallory.tx(grant(&s.bob, "kyc-1-bob"));
    s.ok(vec![tx]);
    assert_eq!(
        s.view(
            "get_shared_credential",
            vec![text("kyc-1-bob")],
            caller_of(&s.bob)
        ),
        Err((
            ResultCode::ActionError,
            "no grant for this credential".into()
        ))
    );
}

#[test]
fn an_unsigned_call_of_a_view_that_is_not_public_is_forbidden() {
    let s = Store::new();
    for (action, args) in [
        ("list_my_credentials", Vec::new()),
        ("get_my_credential", vec![text("kyc-1")]),
        ("get_shared_credential", vec![text("kyc-1-bob")]),
    ] {
        let refused = s.view(action, args, None).unwrap_err();
        assert_eq!(refused.0, ResultCode::Forbidden, "{action}: {}", refused.1);
    }
}

#[test]
fn the_grantee_of_the_exact_data_id_reads_the_copy_and_the_public_view_runs_unsigned() {
    let mut s = Store::new();
    let tx = s.alice.tx(grant(&s.bob, "kyc-1-bob"));
    s.ok(vec![tx]);
    assert_eq!(
        s.view(
            "get_shared_credential",
            vec![text("kyc-1-bob")],
            caller_of(&s.bob)
        ),
        Ok(vec![vec![
            text("kyc-1-bob"),
            text("did:issuer:acme"),
            text("kyc"),
            Value::Blob(b"sealed for bob".to_vec()),
        ]])
    );
    assert_eq!(
        s.view(
            "get_my_credential",
            vec![text("kyc-1")],
            caller_of(&s.alice)
        ),
        Ok(vec![vec![
            text("kyc-1"),
            text("did:issuer:acme"),
            text("kyc"),
            Value::Blob(b"sealed for alice".to_vec()),
        ]])
    );
    assert_eq!(
        s.view("count_humans", Vec::new(), None),
        Ok(vec![vec![Value::Integer(3)]])
    );
}
