//! The app hash, byte for byte, after each block of a fixed sequence: a deploy, inserts (one with bound
//! parameters), an update and a delete (the seed example block of docs/changeset.md), a block of failed
//! transactions, and an empty block. Keys, transactions and heights are fixed, so every value below is
//! reproducible, and docs/protocol.md ("Check values") lists the same inputs and outputs for other clients.
//!
//! A change to any of these values changes every app hash after it, so it is a change of the protocol: SQL
//! rewriting that changes a DDL record's text or a statement's VM steps (its cost, in the results hash), the
//! changeset encoding, the results or genesis hash. Such a change must come with new values here and in the docs.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_auth::{KeyType, SecretKey};
use dstorage_client::Signer;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{tx_hash, Payload};
use dstorage_types::value::Value;

/// secp256k1 secret key of the `eth_personal_sign` sender (a widely published test key; never hold funds).
pub const ALICE_SECRET: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
/// ed25519 secret key of the `ed25519` sender (RFC 8032, section 7.1, test 1).
pub const BOB_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn wallet(key_type: KeyType, secret: &str, standard: &str) -> Wallet {
    let key = SecretKey::from_bytes(key_type, &hex::decode(secret).unwrap()).unwrap();
    Wallet {
        signer: Signer::new(key, standard).unwrap(),
        next_nonce: 1,
        chain: CHAIN.to_string(),
    }
}

/// What one block is expected to give.
struct Expected {
    /// (transaction hash, result code, cost) per transaction.
    results: &'static [(&'static str, ResultCode, u64)],
    /// SHA-256 of the block's changeset encoding (`docs/changeset.md`).
    changeset: &'static str,
    app_hash: &'static str,
}

const GENESIS: &str = "842a057c1949e12958768cdc41df3109f52bdff8858fb765cac4399eda0423cd";

/// The changeset hash of a block that changes nothing (the empty changeset).
const EMPTY_CHANGESET: &str = "6d9e0b98810397e3b9b44c78383007ec01cb38a95455d76cec4b635da4bd6082";

const BLOCKS: [Expected; 5] = [
    Expected {
        results: &[(
            "EB2E33CD595D845214BEA52E99AB73CC4F8B2A767AE1FF4CED6832CF5041086E",
            ResultCode::Ok,
            107,
        )],
        changeset: "8c853898d1e55157d0ce87a2e5be3bfe4e8664b4c27a18778ceb783c6a2fd487",
        app_hash: "df778b2c61bbc3b8a782c58fd4cb08ee3dfa0ffa050e475c99802eec4901d533",
    },
    Expected {
        results: &[(
            "B1F88302334EAF449343C165BE752E59D6CE80B443C054B7B8609ED4FAECD077",
            ResultCode::Ok,
            103,
        )],
        changeset: "551aa4d5389b4b6b0dcb3c1d2a4e31518999c55e9cb77e2703ca16615659c1cf",
        app_hash: "b35cb06cd701bdbbe286d57b9bddd458e193fce4c21ebc2f635e16604a5e168a",
    },
    // The seed example block: its changeset is the one docs/changeset.md prints byte by byte.
    Expected {
        results: &[
            (
                "90CA340630C2895E637B5CC4F0F389E7A2CF5653E7AB35243EEFA95F52A31A81",
                ResultCode::Ok,
                34,
            ),
            (
                "4BB75D3A861AB7F36965AF00E10A181039B36DF29C0004D83EFCCB71570322BE",
                ResultCode::Ok,
                76,
            ),
            (
                "6B2C508DDBF79600A04EF01453962DADC667481A238EA861D96FE0B2FCA79E00",
                ResultCode::Ok,
                42,
            ),
        ],
        changeset: "2e70eddf53ef0f540d9567e08afc9eecee89a5eb0a0ab3c5f8eeb547389149c0",
        app_hash: "16670018b22f0dd3b96aa552a9ad2108ebee34ecaebfcd9177a97f5e9669b49d",
    },
    // Failed transactions change no row, but their results (code, cost) enter the app hash.
    Expected {
        results: &[
            (
                "67616B2E9ABC47D17A76122CBA71B7B84C61983314C9CB78C1C9A2F2832D54E7",
                ResultCode::SqlError,
                0,
            ),
            (
                "C40690AA4C4DFAE48239F5F72708E61CD396C1CD975857851512F98FEF0A1CDD",
                ResultCode::Unauthorized,
                0,
            ),
        ],
        changeset: EMPTY_CHANGESET,
        app_hash: "5f60286f0a0d03149f87338b564210cd4b5cff818c2f7db8d4a1cf04483df931",
    },
    // A block without transactions keeps the app hash.
    Expected {
        results: &[],
        changeset: EMPTY_CHANGESET,
        app_hash: "5f60286f0a0d03149f87338b564210cd4b5cff818c2f7db8d4a1cf04483df931",
    },
];

#[test]
fn app_hash_is_pinned_for_a_fixed_sequence_of_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut alice = wallet(KeyType::Secp256k1, ALICE_SECRET, "eth_personal_sign");
    let mut bob = wallet(KeyType::Ed25519, BOB_SECRET, "ed25519");
    assert_eq!(
        alice.identity(),
        "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
    );
    assert_eq!(
        bob.identity(),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );

    let blocks: Vec<Vec<Vec<u8>>> = vec![
        vec![alice.tx(deploy("app", USERS))],
        vec![alice.tx(sql(
            "app",
            "INSERT INTO users VALUES (1, 'satoshi', 49), (2, 'vitalik', 30), (3, 'gavin', 52)",
        ))],
        vec![
            alice.tx(Payload::Sql {
                schema: "app".into(),
                sql: "INSERT INTO users VALUES (?, ?, ?)".into(),
                params: vec![
                    Value::Integer(4),
                    Value::Text("eth_maxi".into()),
                    Value::Integer(44),
                ],
            }),
            alice.tx(sql(
                "app",
                "UPDATE users SET age = age + 1 WHERE username = 'satoshi'",
            )),
            alice.tx(sql("app", "DELETE FROM users WHERE age > 50")),
        ],
        vec![
            alice.tx(sql("app", "INSERT INTO users VALUES (2, 'again', 1)")),
            bob.tx(sql("app", "DELETE FROM users")),
        ],
        vec![],
    ];

    let mut report = format!("genesis {}\n", hex::encode(h.app.committed().app_hash));
    let mut got = Vec::new();
    for (i, txs) in blocks.into_iter().enumerate() {
        let height = i as u64 + 1;
        let out = h.block(txs.clone()).unwrap();
        assert_eq!(out.height, height);
        assert_eq!(
            out.txs, txs,
            "height {height}: the proposal keeps every transaction"
        );
        let results: Vec<(String, ResultCode, u64)> = txs
            .iter()
            .zip(&out.results)
            .map(|(tx, r)| {
                let cost = u64::try_from(r.gas_used).unwrap();
                (tx_hash(tx).to_string(), code(r), cost)
            })
            .collect();
        let changeset = h
            .app
            .reads()
            .changeset(height)
            .unwrap()
            .map(|cs| hex::encode(cs.hash()))
            .unwrap_or_else(|| "none".into());
        let app_hash = hex::encode(out.app_hash);
        report.push_str(&format!(
            "height {height}: results {results:?}\n  changeset {changeset}\n  app hash {app_hash}\n"
        ));
        got.push((results, changeset, app_hash));
    }
    println!("{report}");

    assert_eq!(hex::encode(h.app.committed().app_hash), got[4].2);
    let genesis = dstorage_app::apphash::genesis(CHAIN, b"{}");
    assert_eq!(hex::encode(genesis), GENESIS, "{report}");
    for (i, (want, (results, changeset, app_hash))) in BLOCKS.iter().zip(&got).enumerate() {
        let height = i + 1;
        let want_results: Vec<(String, ResultCode, u64)> = want
            .results
            .iter()
            .map(|(hash, code, cost)| (hash.to_string(), *code, *cost))
            .collect();
        assert_eq!(results, &want_results, "height {height}\n{report}");
        assert_eq!(changeset, want.changeset, "height {height}\n{report}");
        assert_eq!(app_hash, want.app_hash, "height {height}\n{report}");
    }
    // Each app hash follows from the listed values by docs/protocol.md's formula, so a client can check its
    // own computation against them step by step.
    let mut previous = GENESIS.to_owned();
    for want in &BLOCKS {
        if !want.results.is_empty() {
            let results: Vec<(u32, u64)> = want
                .results
                .iter()
                .map(|(_, code, cost)| (code.code(), *cost))
                .collect();
            let next = dstorage_app::apphash::next(
                &bytes32(&previous),
                &bytes32(want.changeset),
                &dstorage_app::apphash::validators_hash(&[]),
                &dstorage_app::apphash::results_hash(&results),
            );
            assert_eq!(hex::encode(next), want.app_hash);
        }
        previous = want.app_hash.to_owned();
    }
}

fn bytes32(hex_text: &str) -> [u8; 32] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}
