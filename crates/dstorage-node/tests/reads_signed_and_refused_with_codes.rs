//! Signed reads and `POST /v1/query`'s owner-only rule, against the real app and router in process: every
//! attack on a read signature is refused with its own status and code, and the allowed reads succeed.

mod inproc;

use dstorage_client::api::QueryResponse;
use dstorage_node::readauth::{now, CHALLENGE_TTL_SECS};
use dstorage_types::identity::KeyType;
use dstorage_types::read::{ReadEnvelope, ReadRequest};
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{Payload, Transaction, TxBody};
use dstorage_types::value::Value;
use inproc::{assert_api_error, signer, Inproc, CHAIN_ID};

const SCHEMA: &str = "vault";
const TABLE: &str =
    "CREATE TABLE secrets (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT; INSERT INTO secrets VALUES (1, 'owner only')";

async fn with_vault() -> (Inproc, dstorage_client::Signer) {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Ed25519, "ed25519");
    node.deploy(&owner, SCHEMA, TABLE);
    (node, owner)
}

async fn query(
    node: &Inproc,
    env: &ReadEnvelope,
) -> Result<QueryResponse, dstorage_client::ClientError> {
    node.client.post_read("/v1/query", env).await
}

fn select() -> ReadEnvelope {
    ReadEnvelope::sql(SCHEMA, "SELECT id, body FROM secrets", Vec::new())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_reads_a_private_schema_with_a_signed_query_under_every_standard() {
    let node = Inproc::start().await;
    for (i, (key, standard)) in [
        (KeyType::Ed25519, "ed25519"),
        (KeyType::Ed25519, "near_nep413"),
        (KeyType::Ed25519, "solana_sign_message"),
        (KeyType::Secp256k1, "eth_personal_sign"),
        (KeyType::Secp256k1, "secp256k1_sha256"),
    ]
    .into_iter()
    .enumerate()
    {
        let owner = signer(key, standard);
        let schema = format!("s{i}");
        node.deploy(&owner, &schema, TABLE);
        let r = node
            .client
            .query_signed(
                &owner,
                &schema,
                "SELECT id, body FROM secrets WHERE id = ?",
                vec![Value::Integer(1)],
            )
            .await
            .unwrap_or_else(|e| panic!("{standard}: {e}"));
        assert_eq!(
            r.rows,
            vec![vec![Value::Integer(1), Value::Text("owner only".into())]],
            "{standard}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_query_of_a_private_schema_is_refused_401_signature_required() {
    let (node, owner) = with_vault().await;
    assert_api_error(
        query(&node, &select()).await,
        401,
        "signature_required",
        owner.identity(),
    );
    // The old client call (no signature) is the same request.
    assert_api_error(
        node.client.query(SCHEMA, "SELECT 1").await,
        401,
        "signature_required",
        "not publicly readable",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_signed_by_another_identity_is_refused_403_forbidden() {
    let (node, _owner) = with_vault().await;
    let mallory = signer(KeyType::Secp256k1, "eth_personal_sign");
    assert_api_error(
        node.client
            .query_signed(&mallory, SCHEMA, "SELECT body FROM secrets", Vec::new())
            .await,
        403,
        "forbidden",
        mallory.identity(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_of_ones_own_schema_naming_another_owners_table_is_refused_403() {
    let (node, _owner) = with_vault().await;
    let mallory = signer(KeyType::Ed25519, "ed25519");
    node.deploy(
        &mallory,
        "mine",
        "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT",
    );
    for sql in [
        "SELECT body FROM vault.secrets",
        "SELECT id FROM t WHERE id IN (SELECT id FROM vault.secrets)",
        "WITH x AS (SELECT body FROM vault.secrets) SELECT body FROM x",
    ] {
        assert_api_error(
            node.client
                .query_signed(&mallory, "mine", sql, Vec::new())
                .await,
            403,
            "forbidden",
            "may not read schema vault",
        );
    }
    // Its own schema alone is fine.
    let r = node
        .client
        .query_signed(&mallory, "mine", "SELECT id FROM t", Vec::new())
        .await
        .unwrap();
    assert!(r.rows.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_challenge_is_refused_401_challenge_used() {
    let (node, owner) = with_vault().await;
    let signed = node.client.sign_read(&owner, select()).await.unwrap();
    let first = query(&node, &signed).await.expect("first use");
    assert_eq!(first.rows.len(), 1);
    assert_api_error(
        query(&node, &signed).await,
        401,
        "challenge_used",
        "already used",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_challenge_is_refused_401_challenge_expired() {
    let (node, owner) = with_vault().await;
    let old = node.reads_auth.issue_at(now() - CHALLENGE_TTL_SECS - 5);
    let signed = owner.sign_read(CHAIN_ID, &old.challenge, select()).unwrap();
    assert_api_error(
        query(&node, &signed).await,
        401,
        "challenge_expired",
        "expired at",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_challenge_not_issued_by_this_node_is_refused_401_bad_challenge() {
    let (node, owner) = with_vault().await;
    let other = dstorage_node::readauth::ReadAuthenticator::new().issue();
    let signed = owner
        .sign_read(CHAIN_ID, &other.challenge, select())
        .unwrap();
    assert_api_error(
        query(&node, &signed).await,
        401,
        "bad_challenge",
        "tag does not match",
    );
    let signed = owner.sign_read(CHAIN_ID, "00", select()).unwrap();
    assert_api_error(
        query(&node, &signed).await,
        401,
        "bad_challenge",
        "characters",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_signed_for_another_chain_is_refused_401_wrong_chain_id() {
    let (node, owner) = with_vault().await;
    let c = node.client.challenge().await.unwrap();
    let signed = owner
        .sign_read("another-chain", &c.challenge, select())
        .unwrap();
    assert_api_error(
        query(&node, &signed).await,
        401,
        "wrong_chain_id",
        "another-chain",
    );
}

/// A change made to a signed envelope.
type Edit = fn(&mut ReadEnvelope);

#[tokio::test(flavor = "multi_thread")]
async fn a_read_signed_for_another_schema_statement_or_parameters_is_refused_401_bad_signature() {
    let (node, owner) = with_vault().await;
    node.deploy(&owner, "vault2", TABLE);
    let base = ReadEnvelope::sql(
        SCHEMA,
        "SELECT body FROM secrets WHERE id = ?",
        vec![Value::Integer(1)],
    );
    let edits: [(&str, Edit); 3] = [
        ("schema", |e| e.schema = "vault2".into()),
        ("sql", |e| {
            e.sql = Some("SELECT id FROM secrets WHERE id = ?".into())
        }),
        ("params", |e| e.params = vec![Value::Integer(2)]),
    ];
    for (what, edit) in edits {
        let mut signed = node.client.sign_read(&owner, base.clone()).await.unwrap();
        edit(&mut signed);
        assert_api_error(
            query(&node, &signed).await,
            401,
            "bad_signature",
            "does not verify",
        );
        // The refused read did not spend the challenge: the untouched request still goes through once.
        let mut original = signed.clone();
        original.schema = base.schema.clone();
        original.sql = base.sql.clone();
        original.params = base.params.clone();
        assert!(query(&node, &original).await.is_ok(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_signed_for_another_action_or_arguments_does_not_authenticate() {
    // POST /v1/call belongs to the actions work; the check it calls is this one.
    let node = Inproc::start().await;
    let caller = signer(KeyType::Secp256k1, "eth_personal_sign");
    let c = node.reads_auth.issue();
    let env = ReadEnvelope::action("idos", "get_credential", vec![Value::Text("c1".into())]);
    let signed = caller.sign_read(CHAIN_ID, &c.challenge, env).unwrap();
    let auth = signed.auth.clone().unwrap();
    for (what, other) in [
        (
            "action",
            ReadEnvelope::action("idos", "list_credentials", vec![Value::Text("c1".into())]),
        ),
        (
            "arguments",
            ReadEnvelope::action("idos", "get_credential", vec![Value::Text("c2".into())]),
        ),
        (
            "sql",
            ReadEnvelope::sql("idos", "get_credential", vec![Value::Text("c1".into())]),
        ),
    ] {
        let request = other.request().unwrap();
        let err = node
            .reads_auth
            .authenticate(&other, &request, &auth, CHAIN_ID)
            .unwrap_err();
        assert_eq!(
            (err.code(), err.status()),
            ("bad_signature", 401),
            "{what}: {err}"
        );
    }
    let request = signed.request().unwrap();
    let caller_seen = node
        .reads_auth
        .authenticate(&signed, &request, &auth, CHAIN_ID)
        .unwrap();
    assert_eq!(caller_seen.identity, caller.identity());
    assert_eq!(caller_seen.standard, "eth_personal_sign");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_signature_submitted_as_a_transaction_is_refused_bad_signature() {
    let (node, owner) = with_vault().await;
    let signed = node.client.sign_read(&owner, select()).await.unwrap();
    let auth = signed.auth.unwrap();
    let next = node.harness.app.reads().nonce(owner.identity()).unwrap() + 1;
    let tx = TxBody {
        chain_id: CHAIN_ID.into(),
        standard: auth.standard.clone(),
        sender: hex::decode(&auth.sender).unwrap(),
        nonce: next,
        payload: Payload::Sql {
            schema: SCHEMA.into(),
            sql: "SELECT id, body FROM secrets".into(),
            params: Vec::new(),
        },
    }
    .with_signature(hex::decode(&auth.signature).unwrap());
    let r = node.harness.check_tx(&tx.encode());
    assert_eq!(r.code.value(), ResultCode::BadSignature.code(), "{}", r.log);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_signature_submitted_as_a_read_is_refused_401_bad_signature() {
    let (node, owner) = with_vault().await;
    let tx: Transaction = owner
        .sign(
            CHAIN_ID,
            2,
            Payload::Sql {
                schema: SCHEMA.into(),
                sql: "SELECT id, body FROM secrets".into(),
                params: Vec::new(),
            },
        )
        .unwrap();
    let mut env = node.client.sign_read(&owner, select()).await.unwrap();
    env.auth.as_mut().unwrap().signature = hex::encode(&tx.signature);
    assert_api_error(
        query(&node, &env).await,
        401,
        "bad_signature",
        "does not verify",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_of_another_standard_claiming_the_same_signer_is_refused_401_bad_signature() {
    let node = Inproc::start().await;
    // One ed25519 key under three standards: the same sender bytes, three identities.
    let key = dstorage_auth::SecretKey::generate(KeyType::Ed25519);
    let as_ed25519 = dstorage_client::Signer::new(key.clone(), "ed25519").unwrap();
    node.deploy(&as_ed25519, SCHEMA, TABLE);
    for other in ["solana_sign_message", "near_nep413"] {
        let as_other = dstorage_client::Signer::new(key.clone(), other).unwrap();
        let mut env = node.client.sign_read(&as_other, select()).await.unwrap();
        env.auth.as_mut().unwrap().standard = "ed25519".into();
        assert_api_error(
            query(&node, &env).await,
            401,
            "bad_signature",
            "does not verify",
        );
    }
    // Read under its own standard, the other identity is not the owner.
    let as_solana = dstorage_client::Signer::new(key, "solana_sign_message").unwrap();
    assert_api_error(
        node.client
            .query_signed(&as_solana, SCHEMA, "SELECT 1", Vec::new())
            .await,
        403,
        "forbidden",
        as_solana.identity(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_standard_and_malformed_envelopes_are_refused_with_their_codes() {
    let (node, owner) = with_vault().await;
    let mut env = node.client.sign_read(&owner, select()).await.unwrap();
    env.auth.as_mut().unwrap().standard = "rot13".into();
    assert_api_error(query(&node, &env).await, 401, "unknown_standard", "rot13");
    let mut both = select();
    both.action = Some("a".into());
    assert_api_error(query(&node, &both).await, 400, "bad_request", "exactly one");
    let action = ReadEnvelope::action(SCHEMA, "a", Vec::new());
    assert_api_error(query(&node, &action).await, 400, "bad_request", "/v1/call");
    let missing = ReadEnvelope::sql("nowhere", "SELECT 1", Vec::new());
    let signed = node.client.sign_read(&owner, missing).await.unwrap();
    assert_api_error(
        query(&node, &signed).await,
        404,
        "schema_not_found",
        "nowhere",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anyone_reads_a_publicly_readable_schema_signed_or_not() {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Ed25519, "ed25519");
    // `PUBLIC READ;` in the schema file sets the flag at deploy (docs/schemas.md).
    node.deploy(&owner, SCHEMA, &format!("PUBLIC READ;\n{TABLE}"));
    let r = query(&node, &select())
        .await
        .expect("unsigned read of a public schema");
    assert_eq!(r.rows.len(), 1);
    let stranger = signer(KeyType::Secp256k1, "eth_personal_sign");
    let r = node
        .client
        .query_signed(&stranger, SCHEMA, "SELECT body FROM secrets", Vec::new())
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![Value::Text("owner only".into())]]);
    let _ = owner;
}

#[test]
fn read_requests_name_their_kind_in_the_signed_text() {
    let text = dstorage_types::read::signed_text(
        "c",
        "ed25519",
        "ab",
        "s",
        &ReadRequest::Action {
            action: "view".into(),
            args: Vec::new(),
        },
    );
    assert!(text.starts_with("dstorage read\n"));
    assert!(text.contains("\naction: view\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_read_of_a_private_schema_is_refused_before_its_sql_is_parsed() {
    let (node, _owner) = with_vault().await;
    let unparsable = ReadEnvelope::sql(SCHEMA, "SELECT * FROM", Vec::new());
    assert_api_error(
        query(&node, &unparsable).await,
        401,
        "signature_required",
        "not publicly readable",
    );
    let mallory = signer(KeyType::Ed25519, "ed25519");
    assert_api_error(
        node.client
            .query_signed(&mallory, SCHEMA, "SELECT * FROM", Vec::new())
            .await,
        403,
        "forbidden",
        "may not read schema vault",
    );
}
