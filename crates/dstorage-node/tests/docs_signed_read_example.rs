//! The signed-read example in docs/api.md ("Signed reads") is what the code signs and verifies: its request
//! encoding, signed text, signature and JSON envelope, for RFC 8032's first ed25519 test key.

use dstorage_auth::SecretKey;
use dstorage_client::Signer;
use dstorage_types::identity::KeyType;
use dstorage_types::read::ReadEnvelope;
use dstorage_types::value::Value;

const CHALLENGE: &str =
    "00000000691b5c3c0123456789abcdef0123456789abcdef5e1f0c8f2a64e8a0b3b0e2f2d1c4a9b7";

fn example() -> (Signer, ReadEnvelope) {
    let secret =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
    let signer = Signer::new(
        SecretKey::from_bytes(KeyType::Ed25519, &secret).unwrap(),
        "ed25519",
    )
    .unwrap();
    let envelope = signer
        .sign_read(
            "dstorage-devnet",
            CHALLENGE,
            ReadEnvelope::sql(
                "app",
                "SELECT id, username FROM users WHERE id = ?",
                vec![Value::Integer(1)],
            ),
        )
        .unwrap();
    (signer, envelope)
}

#[test]
fn the_docs_signed_read_example_is_what_the_code_produces() {
    let (signer, envelope) = example();
    let request = envelope.request().unwrap();
    let auth = envelope.auth.clone().unwrap();
    let text = envelope.signed_text(&request, &auth);
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    if std::env::var_os("PRINT_EXAMPLE").is_some() {
        println!("identity {}", signer.identity());
        println!("encoding {}", hex::encode(request.encode("app")));
        println!("text\n{text}");
        println!("json {}", serde_json::to_string_pretty(&envelope).unwrap());
    }
    assert!(
        doc.contains(&hex::encode(request.encode("app"))),
        "encoding not in docs/api.md"
    );
    assert!(
        doc.contains(&text),
        "signed text not in docs/api.md:\n{text}"
    );
    assert!(
        doc.contains(&auth.signature),
        "signature not in docs/api.md"
    );
    assert!(
        doc.contains(&serde_json::to_string_pretty(&envelope).unwrap()),
        "envelope JSON not in docs/api.md"
    );
}
