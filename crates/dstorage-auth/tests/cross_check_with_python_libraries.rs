//! Cross-check every standard against independent implementations: eth-account, eth-keys, PyNaCl (libsodium),
//! bech32 and base58 from PyPI, driven through `tests/xcheck/xcheck.py`.
//!
//! The tools live in a project-local venv made by `tests/xcheck/install.sh` (run by `.ci/run`). If they are missing
//! these tests fail and say how to install them; they never skip.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use dstorage_auth::{default_registry, KeyType, SecretKey};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn python() -> PathBuf {
    let path = match std::env::var_os("DSTORAGE_XCHECK_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target-xcheck/venv/bin/python")
        }
    };
    assert!(
        path.exists(),
        "cross-check tools are missing: {} does not exist. Install them with \
         crates/dstorage-auth/tests/xcheck/install.sh (.ci/run does), or point DSTORAGE_XCHECK_PYTHON at a python \
         that has eth-account, PyNaCl, bech32 and base58.",
        path.display()
    );
    path
}

fn xcheck(args: &[&str], stdin: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/xcheck/xcheck.py");
    let mut child = Command::new(python())
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xcheck.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write cases");
    let out = child.wait_with_output().expect("run xcheck.py");
    assert!(
        out.status.success(),
        "xcheck.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("xcheck.py prints JSON")
}

fn random_text(rng: &mut impl Rng) -> String {
    const ALPHABET: [char; 14] = [
        'a', 'b', 'X', '0', '9', ' ', '\n', ':', 'é', '漢', '🙂', '\0', '"', '\\',
    ];
    let len = rng.gen_range(0..150);
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
        .collect()
}

fn field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name]
        .as_str()
        .unwrap_or_else(|| panic!("case has no {name}: {case}"))
}

#[test]
fn signatures_made_by_eth_account_eth_keys_and_pynacl_verify_here_with_the_same_identity() {
    let cases = xcheck(&["sign", "20260501", "40"], "");
    let cases = cases.as_array().expect("a list of cases");
    assert_eq!(cases.len(), 200, "40 rounds of 5 standards");
    let registry = default_registry();
    for case in cases {
        let standard = field(case, "standard");
        let sender = hex::decode(field(case, "sender")).unwrap();
        let message = hex::decode(field(case, "message")).unwrap();
        let signature = hex::decode(field(case, "signature")).unwrap();
        let identity = registry
            .verify(standard, &sender, &message, &signature)
            .unwrap_or_else(|e| {
                panic!("{standard}: refused a signature made by the Python library: {e}\n{case}")
            });
        assert_eq!(identity, field(case, "identity"), "{case}");
        assert_eq!(
            registry
                .verify_identity(standard, &identity, &message, &signature)
                .unwrap(),
            identity
        );
    }
}

#[test]
fn signatures_made_here_verify_in_eth_account_eth_keys_and_pynacl_and_tampered_ones_do_not() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(413);
    let registry = default_registry();
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for standard in registry.names() {
        let key_type = registry.get(standard).unwrap().key_type();
        for _ in 0..30 {
            let key = SecretKey::generate(key_type);
            let message = random_text(&mut rng);
            let signed = dstorage_auth::sign(standard, &key, message.as_bytes()).unwrap();
            let identity = registry
                .get(standard)
                .unwrap()
                .identifier(&signed.sender)
                .unwrap();
            let mut case = json!({
                "standard": standard,
                "sender": hex::encode(&signed.sender),
                "message": hex::encode(message.as_bytes()),
                "signature": hex::encode(&signed.signature),
            });
            cases.push(case.clone());
            expected.push((true, identity.clone()));
            // The same signature with one bit of r (or R) flipped: the Python side must refuse it too, which shows
            // its "valid" answers are not vacuous.
            let mut tampered = signed.signature.clone();
            let bit = rng.gen_range(0..256);
            tampered[bit / 8] ^= 1 << (bit % 8);
            case["signature"] = json!(hex::encode(&tampered));
            cases.push(case);
            expected.push((false, identity));
        }
    }
    let results = xcheck(&["verify"], &Value::Array(cases.clone()).to_string());
    let results = results.as_array().expect("a list of results");
    assert_eq!(results.len(), cases.len());
    for ((case, result), (valid, identity)) in cases.iter().zip(results).zip(expected) {
        assert_eq!(result["valid"], valid, "{case} -> {result}");
        if valid {
            assert_eq!(result["identity"], identity.as_str(), "{case}");
        }
    }
    // Every standard was exercised.
    let standards: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| field(c, "standard")).collect();
    assert_eq!(standards.len(), 5);
    assert_eq!(KeyType::ALL.len(), 2);
}
