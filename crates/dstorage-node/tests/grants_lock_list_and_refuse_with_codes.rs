//! Access grants through the real app (CheckTx and blocks) and `GET /v1/grants`, in process: grants are made
//! and revoked by their owner only, a locked grant outlives revokes until the block time passes its lock, and
//! every refusal has its own code.

mod inproc;

use dstorage_app::testing::Harness;
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use inproc::{assert_api_error, signer, Inproc};

/// The harness's fixed block time (unix seconds).
const BLOCK_TIME: u64 = 1_700_000_000;

fn grant(grantee: &str, data_id: &str, locked_until: u64) -> Payload {
    Payload::Grant {
        grantee: grantee.into(),
        data_id: data_id.into(),
        locked_until,
    }
}

fn revoke(grantee: &str, data_id: &str) -> Payload {
    Payload::Revoke {
        grantee: grantee.into(),
        data_id: data_id.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_is_listed_by_owner_and_by_grantee_and_gone_after_its_revoke() {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Secp256k1, "eth_personal_sign");
    let grantee = signer(KeyType::Ed25519, "near_nep413");
    node.ok(&owner, grant(grantee.identity(), "credential-1", 0));
    let height = node.harness.app.committed().height;

    let by_owner = node
        .client
        .grants(Some(owner.identity()), None, None)
        .await
        .unwrap();
    assert_eq!(by_owner.grants.len(), 1);
    let g = &by_owner.grants[0];
    assert_eq!(
        (
            g.owner.as_str(),
            g.grantee.as_str(),
            g.data_id.as_str(),
            g.locked_until,
            g.origin.as_str(),
            g.height
        ),
        (
            owner.identity(),
            grantee.identity(),
            "credential-1",
            0,
            "owner",
            height
        )
    );
    let by_grantee = node
        .client
        .grants(None, Some(grantee.identity()), Some("credential-1"))
        .await
        .unwrap();
    assert_eq!(by_grantee.grants, by_owner.grants);
    // An owner spelled in lower case names the same identity.
    let lower = node
        .client
        .grants(Some(&owner.identity().to_lowercase()), None, None)
        .await
        .unwrap();
    assert_eq!(lower.grants, by_owner.grants);
    let other_data = node
        .client
        .grants(Some(owner.identity()), None, Some("credential-2"))
        .await
        .unwrap();
    assert!(other_data.grants.is_empty());

    node.ok(&owner, revoke(grantee.identity(), "credential-1"));
    assert!(node
        .client
        .grants(Some(owner.identity()), None, None)
        .await
        .unwrap()
        .grants
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_locked_grant_is_refused_grant_locked_until_the_block_time_passes_the_lock() {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Ed25519, "ed25519");
    let grantee = signer(KeyType::Ed25519, "ed25519");
    node.ok(&owner, grant(grantee.identity(), "locked", BLOCK_TIME + 1));
    let (code, message) = node.submit(&owner, revoke(grantee.identity(), "locked"));
    assert_eq!(code, ResultCode::GrantLocked, "{message}");
    assert!(
        message.contains(&format!("locked until {}", BLOCK_TIME + 1)),
        "{message}"
    );
    assert!(
        message.contains(&format!("block time is {BLOCK_TIME}")),
        "{message}"
    );
    assert_eq!(
        node.client
            .grants(Some(owner.identity()), None, None)
            .await
            .unwrap()
            .grants
            .len(),
        1
    );

    // A lock that the block time has reached no longer holds.
    node.ok(&owner, grant(grantee.identity(), "was-locked", BLOCK_TIME));
    node.ok(&owner, revoke(grantee.identity(), "was-locked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoke_by_anyone_but_the_owner_finds_no_grant_and_the_grant_stays() {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Ed25519, "ed25519");
    let grantee = signer(KeyType::Ed25519, "ed25519");
    let mallory = signer(KeyType::Secp256k1, "eth_personal_sign");
    node.ok(&owner, grant(grantee.identity(), "d", 0));
    // A revoke names the sender's own grants: nobody else's can be reached, not even by the grantee.
    for who in [&mallory, &grantee] {
        let (code, message) = node.submit(who, revoke(grantee.identity(), "d"));
        assert_eq!(code, ResultCode::GrantNotFound, "{message}");
        assert!(message.contains(who.identity()), "{message}");
    }
    assert_eq!(
        node.client
            .grants(Some(owner.identity()), None, None)
            .await
            .unwrap()
            .grants
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_grant_is_refused_grant_exists_and_keeps_the_first_lock() {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Ed25519, "ed25519");
    let grantee = signer(KeyType::Ed25519, "ed25519");
    node.ok(&owner, grant(grantee.identity(), "d", BLOCK_TIME + 100));
    let (code, message) = node.submit(&owner, grant(grantee.identity(), "d", 0));
    assert_eq!(code, ResultCode::GrantExists, "{message}");
    let listed = node
        .client
        .grants(Some(owner.identity()), None, None)
        .await
        .unwrap();
    assert_eq!(listed.grants[0].locked_until, BLOCK_TIME + 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_grantees_and_data_ids_are_refused_at_checktx_with_bad_grant() {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Secp256k1, "eth_personal_sign");
    let grantee = signer(KeyType::Secp256k1, "eth_personal_sign");
    let long = "x".repeat(257);
    for (payload, needle) in [
        (grant("not-an-identity", "d", 0), "not an identity"),
        (
            grant(&grantee.identity().to_lowercase(), "d", 0),
            "not spelled canonically",
        ),
        (grant(grantee.identity(), "", 0), "data id is 0 bytes"),
        (grant(grantee.identity(), &long, 0), "data id is 257 bytes"),
        (
            grant(grantee.identity(), "d", u64::MAX),
            "past the largest time",
        ),
        (revoke("nobody", "d"), "not an identity"),
    ] {
        let (code, message) = node.submit(&owner, payload);
        assert_eq!(code, ResultCode::BadGrant, "{message}");
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    // Refused at CheckTx, so no nonce was spent.
    assert_eq!(node.harness.app.reads().nonce(owner.identity()).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_listing_needs_an_owner_or_a_grantee_and_a_readable_identity() {
    let node = Inproc::start().await;
    assert_api_error(
        node.client.grants(None, None, Some("d")).await,
        400,
        "bad_request",
        "owner and grantee",
    );
    assert_api_error(
        node.client.grants(None, None, None).await,
        400,
        "bad_request",
        "owner and grantee",
    );
    assert_api_error(
        node.client.grants(Some("nobody"), None, None).await,
        400,
        "bad_identity",
        "owner",
    );
}

#[test]
fn grants_enter_the_app_hash_and_two_nodes_agree_on_it() {
    let owner = signer(KeyType::Ed25519, "ed25519");
    let grantee = signer(KeyType::Ed25519, "ed25519");
    let txs: Vec<Vec<u8>> = vec![
        owner
            .sign(inproc::CHAIN_ID, 1, grant(grantee.identity(), "a", 0))
            .unwrap()
            .encode(),
        owner
            .sign(inproc::CHAIN_ID, 2, grant(grantee.identity(), "b", 0))
            .unwrap()
            .encode(),
    ];
    let revoke_tx = owner
        .sign(inproc::CHAIN_ID, 3, revoke(grantee.identity(), "a"))
        .unwrap()
        .encode();
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let h = Harness::start(&dir.path().join("db.sqlite"), inproc::CHAIN_ID).unwrap();
        let empty = h.block(Vec::new()).unwrap().app_hash;
        let first = h.block(txs.clone()).unwrap();
        assert!(
            first.results.iter().all(|r| r.code.value() == 0),
            "{:?}",
            first.results
        );
        let second = h.block(vec![revoke_tx.clone()]).unwrap();
        assert_eq!(
            second.results[0].code.value(),
            0,
            "{}",
            second.results[0].log
        );
        h.app.close();
        (empty, first.app_hash, second.app_hash)
    };
    let (empty, a1, a2) = run();
    let (_, b1, b2) = run();
    assert_eq!((a1, a2), (b1, b2));
    assert_ne!(a1, empty);
    // Same codes, same costs, same (empty) changeset, another data id: only the grants' running hash tells
    // the two blocks apart, so it must be in the app hash.
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), inproc::CHAIN_ID).unwrap();
    h.block(Vec::new()).unwrap();
    let other = h
        .block(vec![
            owner
                .sign(inproc::CHAIN_ID, 1, grant(grantee.identity(), "a", 0))
                .unwrap()
                .encode(),
            owner
                .sign(inproc::CHAIN_ID, 2, grant(grantee.identity(), "c", 0))
                .unwrap()
                .encode(),
        ])
        .unwrap();
    assert_eq!(
        other
            .results
            .iter()
            .map(|r| r.code.value())
            .collect::<Vec<_>>(),
        vec![0, 0]
    );
    assert_ne!(
        other.app_hash, a1,
        "another data id must give another app hash"
    );
    h.app.close();
}
