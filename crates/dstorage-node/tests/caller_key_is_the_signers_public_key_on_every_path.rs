//! `@caller_key` (docs/schemas.md) is the signer's public key on both paths an action runs on: a `call`
//! transaction in a block and a signed read of a view. For Ethereum, whose sender is an address, it is the key
//! recovered from the signature, as a 33-byte compressed secp256k1 point; for the other standards it is the key the
//! sender already is.

mod inproc;

use dstorage_auth::SecretKey;
use dstorage_client::Signer;
use dstorage_types::identity::KeyType;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;
use inproc::{signer, Inproc};

const KEYS: &str =
    "CREATE TABLE seen (who TEXT PRIMARY KEY, standard TEXT NOT NULL, key BLOB) STRICT;
CREATE ACTION remember() AUTHENTICATED AS BEGIN
  INSERT INTO seen VALUES (@caller, @caller_standard, @caller_key);
END;
CREATE VIEW ACTION whoami() AUTHENTICATED AS BEGIN
  SELECT @caller, @caller_standard, @caller_key;
END;
CREATE VIEW ACTION remembered() AUTHENTICATED AS BEGIN
  SELECT key FROM seen WHERE who = @caller;
END;";

#[tokio::test(flavor = "multi_thread")]
async fn an_ethereum_callers_key_is_recovered_in_blocks_and_in_signed_reads_alike() {
    let node = Inproc::start().await;
    let owner = signer(KeyType::Ed25519, "ed25519");
    node.deploy(&owner, "keys", KEYS);
    for (key_type, standard) in [
        (KeyType::Secp256k1, "eth_personal_sign"),
        (KeyType::Secp256k1, "secp256k1_sha256"),
        (KeyType::Ed25519, "ed25519"),
        (KeyType::Ed25519, "near_nep413"),
        (KeyType::Ed25519, "solana_sign_message"),
    ] {
        let secret = SecretKey::generate(key_type);
        let public = secret.public_key().to_bytes();
        let caller = Signer::new(secret, standard).unwrap();
        node.ok(
            &caller,
            Payload::Call {
                schema: "keys".into(),
                action: "remember".into(),
                args: Vec::new(),
            },
        );
        let written = node
            .client
            .read_action(Some(&caller), "keys", "remembered", Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{standard}: {e}"));
        assert_eq!(
            written.rows,
            vec![vec![Value::Blob(public.clone())]],
            "{standard}: the key a call transaction stored"
        );
        let read = node
            .client
            .read_action(Some(&caller), "keys", "whoami", Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{standard}: {e}"));
        assert_eq!(
            read.rows,
            vec![vec![
                Value::Text(caller.identity().to_owned()),
                Value::Text(standard.to_owned()),
                Value::Blob(public.clone()),
            ]],
            "{standard}: the key a signed read sees"
        );
        if standard == "eth_personal_sign" {
            assert_eq!(public.len(), 33, "a compressed secp256k1 point");
        }
    }
}
