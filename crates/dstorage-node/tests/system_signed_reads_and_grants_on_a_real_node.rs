//! Access control on a real node (real CometBFT): a private schema is read by its owner only, with a signed
//! read whose challenge is single-use; grants are made, listed, refused when locked, and revoked through the
//! API and the CLI (`dstorage grant`, `revoke`, `grants`, `read --sql`, `query`).

mod common;

use std::process::Command;

use common::{assert_api_error, Net, DSTORAGE};
use dstorage_auth::SecretKey;
use dstorage_client::Signer;
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_private_schema_is_read_by_its_owner_and_grants_lock_and_revoke_on_a_real_node() {
    let mut net = Net::init_single();
    net.nodes[0].start().await;
    let node = &net.nodes[0];
    let client = node.client();

    let keys = tempfile::tempdir().expect("key dir");
    let key_path = keys.path().join("owner.json");
    let key = SecretKey::generate(KeyType::Ed25519);
    key.save(&key_path).expect("save key");
    let owner = Signer::new(key, "ed25519").expect("owner");
    let grantee =
        Signer::new(SecretKey::generate(KeyType::Secp256k1), "eth_personal_sign").expect("grantee");

    let r = client
        .deploy(
            &owner,
            "wallet",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT; INSERT INTO notes VALUES (1, 'mine')",
        )
        .await
        .expect("deploy");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);

    // Reads: the owner, signed; nobody unsigned; nobody else signed; no challenge twice.
    let read = client
        .query_signed(&owner, "wallet", "SELECT id, body FROM notes", Vec::new())
        .await
        .expect("owner read");
    assert_eq!(
        read.rows,
        vec![vec![Value::Integer(1), Value::Text("mine".into())]]
    );
    assert_api_error(
        client.query("wallet", "SELECT body FROM notes").await,
        401,
        "signature_required",
        "not publicly readable",
        "unsigned read",
    );
    assert_api_error(
        client
            .query_signed(&grantee, "wallet", "SELECT body FROM notes", Vec::new())
            .await,
        403,
        "forbidden",
        grantee.identity(),
        "foreign read",
    );
    let signed = client
        .sign_read(
            &owner,
            dstorage_types::read::ReadEnvelope::sql("wallet", "SELECT 1", Vec::new()),
        )
        .await
        .expect("sign");
    let once: dstorage_client::api::QueryResponse =
        client.post_read("/v1/query", &signed).await.expect("first");
    assert_eq!(once.rows, vec![vec![Value::Integer(1)]]);
    assert_api_error(
        client
            .post_read::<dstorage_client::api::QueryResponse>("/v1/query", &signed)
            .await,
        401,
        "challenge_used",
        "already used",
        "replayed read",
    );

    // Grants: a locked grant is refused revocation by block time; an open one is revoked.
    let far = 4_000_000_000u64;
    let g = client
        .grant(&owner, grantee.identity(), "note-1", far)
        .await
        .expect("grant");
    assert_eq!(g.code, ResultCode::Ok, "{}", g.message);
    let g2 = client
        .grant(&owner, grantee.identity(), "note-2", 0)
        .await
        .expect("grant 2");
    assert_eq!(g2.code, ResultCode::Ok, "{}", g2.message);
    let listed = client
        .grants(None, Some(grantee.identity()), None)
        .await
        .expect("list");
    assert_eq!(
        listed
            .grants
            .iter()
            .map(|g| (g.data_id.as_str(), g.locked_until))
            .collect::<Vec<_>>(),
        vec![("note-1", far), ("note-2", 0)]
    );
    let locked = client
        .revoke(&owner, grantee.identity(), "note-1")
        .await
        .expect("revoke locked");
    assert_eq!(locked.code, ResultCode::GrantLocked, "{}", locked.message);
    let again = client
        .grant(&owner, grantee.identity(), "note-2", 0)
        .await
        .expect("duplicate");
    assert_eq!(again.code, ResultCode::GrantExists, "{}", again.message);
    let nonce = client.nonce(owner.identity()).await.expect("nonce").next;
    let bad = owner
        .sign(
            &client.chain_id().await.expect("chain"),
            nonce,
            Payload::Grant {
                grantee: "nobody".into(),
                data_id: "x".into(),
                locked_until: 0,
            },
        )
        .expect("sign");
    assert_api_error(
        client
            .broadcast(&bad, dstorage_client::api::WaitFor::Sync)
            .await,
        422,
        "bad_grant",
        "not an identity",
        "grant to a non-identity",
    );

    // The CLI: revoke, list, read, query (signed automatically with --key).
    let api = node.config.api_addr.clone();
    let cli = |args: &[&str]| {
        let out = Command::new(DSTORAGE)
            .args(args)
            .args(["--node", &api, "--json"])
            .output()
            .expect("run dstorage");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let key_arg = key_path.to_str().unwrap();
    let (status, out, err) = cli(&[
        "revoke",
        "--grantee",
        grantee.identity(),
        "--data-id",
        "note-2",
        "--key",
        key_arg,
    ]);
    assert_eq!(status, Some(0), "revoke: {out} {err}");
    let (status, out, err) = cli(&["grants", "--owner", owner.identity()]);
    assert_eq!(status, Some(0), "grants: {err}");
    let listed: dstorage_client::api::GrantsResponse =
        serde_json::from_str(&out).expect("grants JSON");
    assert_eq!(listed.grants.len(), 1, "{out}");
    assert_eq!(listed.grants[0].data_id, "note-1");
    let (status, out, err) = cli(&[
        "grant",
        "--grantee",
        grantee.identity(),
        "--data-id",
        "note-3",
        "--locked-until",
        "5",
        "--key",
        key_arg,
    ]);
    assert_eq!(status, Some(0), "grant: {out} {err}");
    let (status, out, err) = cli(&[
        "read",
        "wallet",
        "--sql",
        "SELECT body FROM notes WHERE id = ?",
        "--param",
        "1",
        "--key",
        key_arg,
    ]);
    assert_eq!(status, Some(0), "read: {err}");
    let rows: dstorage_client::api::QueryResponse = serde_json::from_str(&out).expect("read JSON");
    assert_eq!(rows.rows, vec![vec![Value::Text("mine".into())]]);
    let (status, out, err) = cli(&[
        "query",
        "SELECT count(*) FROM notes",
        "--schema",
        "wallet",
        "--key",
        key_arg,
    ]);
    assert_eq!(status, Some(0), "query: {err}");
    let rows: dstorage_client::api::QueryResponse = serde_json::from_str(&out).expect("query JSON");
    assert_eq!(rows.rows, vec![vec![Value::Integer(1)]]);
    // Another key's CLI read is refused with the API's code.
    let other_path = keys.path().join("other.json");
    SecretKey::generate(KeyType::Ed25519)
        .save(&other_path)
        .expect("save");
    let (status, _, err) = cli(&[
        "read",
        "wallet",
        "--sql",
        "SELECT body FROM notes",
        "--key",
        other_path.to_str().unwrap(),
    ]);
    assert_ne!(status, Some(0));
    assert!(err.contains("forbidden"), "{err}");
}
