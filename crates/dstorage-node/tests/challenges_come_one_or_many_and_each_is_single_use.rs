//! `GET /v1/challenge?count=N` (docs/api.md, "Signed reads"): a batch of challenges for a client that signs
//! many reads, each of them still single-use; counts outside 1..=100 are refused with 400.

mod inproc;

use dstorage_client::api::MAX_CHALLENGES;
use dstorage_types::identity::KeyType;
use dstorage_types::read::ReadEnvelope;
use dstorage_types::value::Value;
use inproc::{assert_api_error, signer, Inproc, CHAIN_ID};

const TABLE: &str =
    "CREATE TABLE secrets (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT; INSERT INTO secrets VALUES (1, 'owner only')";

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_challenges_gives_distinct_challenges_each_usable_once() {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Secp256k1, "eth_personal_sign");
    node.deploy(&owner, "vault", TABLE);
    let batch = node.client.challenges(3).await.unwrap();
    assert_eq!(batch.len(), 3);
    let mut distinct = batch.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{batch:?}");
    let read = || ReadEnvelope::sql("vault", "SELECT body FROM secrets", Vec::new());
    for challenge in &batch {
        let signed = owner.sign_read(CHAIN_ID, challenge, read()).unwrap();
        let answer: dstorage_client::api::QueryResponse =
            node.client.post_read("/v1/query", &signed).await.unwrap();
        assert_eq!(answer.rows, vec![vec![Value::Text("owner only".into())]]);
        assert_api_error(
            node.client
                .post_read::<dstorage_client::api::QueryResponse>("/v1/query", &signed)
                .await,
            401,
            "challenge_used",
            "already used",
        );
    }
    // Without a count: one challenge, as before.
    let one = node.client.challenge().await.unwrap();
    assert!(one.challenges.is_empty());
    assert_eq!(one.challenge.len(), 80);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_challenge_count_outside_one_to_the_maximum_is_refused_400() {
    let node = Inproc::start().await;
    for count in [0, MAX_CHALLENGES + 1, 1_000_000] {
        assert_api_error(
            node.client.challenges(count).await,
            400,
            "bad_request",
            "count",
        );
    }
    assert_eq!(
        node.client.challenges(MAX_CHALLENGES).await.unwrap().len(),
        MAX_CHALLENGES
    );
}
