//! `dstorage key`: new, show, sign and verify, driven through the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn dstorage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dstorage"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run dstorage")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

fn new_key(dir: &Path, key_type: &str) -> String {
    let path = dir.join(format!("{key_type}.key"));
    let path = path.to_str().unwrap().to_owned();
    let out = dstorage(&["key", "new", "--type", key_type, "--out", &path]);
    assert!(out.status.success(), "{}", stderr(&out));
    path
}

/// The web3.js / eth-account personal_sign vector.
const WEB3_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const WEB3_ADDRESS: &str = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
const WEB3_SIGNATURE: &str = "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c";

#[test]
fn verify_accepts_the_published_web3_vector_with_exit_0() {
    let out = dstorage(&[
        "key",
        "verify",
        "--standard",
        "eth_personal_sign",
        "--identity",
        WEB3_ADDRESS,
        "--message",
        "Some data",
        "--signature",
        &format!("0x{WEB3_SIGNATURE}"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("valid: signed by {WEB3_ADDRESS}\n"));
}

#[test]
fn verify_of_another_message_exits_1_with_a_one_line_reason() {
    let out = dstorage(&[
        "key",
        "verify",
        "--standard",
        "eth_personal_sign",
        "--identity",
        WEB3_ADDRESS,
        "--message",
        "Some datA",
        "--signature",
        WEB3_SIGNATURE,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("invalid: eth_personal_sign: signature was made by 0x"),
        "{text}"
    );
    assert!(text.contains(&format!("not by {WEB3_ADDRESS}")), "{text}");
}

#[test]
fn verify_with_bad_input_exits_2_and_names_the_problem() {
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--standard",
                "eth_sign",
                "--identity",
                WEB3_ADDRESS,
                "--signature",
                WEB3_SIGNATURE,
            ],
            "unknown signature standard \"eth_sign\"",
        ),
        (
            &[
                "--standard",
                "eth_personal_sign",
                "--identity",
                WEB3_ADDRESS,
                "--signature",
                "zz",
            ],
            "--signature is not hex",
        ),
        (
            &[
                "--standard",
                "eth_personal_sign",
                "--identity",
                "0x1234",
                "--signature",
                WEB3_SIGNATURE,
            ],
            "identity \"0x1234\" is not valid",
        ),
        (
            &[
                "--standard",
                "ed25519",
                "--identity",
                WEB3_ADDRESS,
                "--signature",
                WEB3_SIGNATURE,
            ],
            "ed25519: identity",
        ),
    ];
    for (args, reason) in cases {
        let mut full = vec!["key", "verify", "--message", "Some data"];
        full.extend_from_slice(args);
        let out = dstorage(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(reason),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn new_writes_a_0600_key_file_that_show_describes_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    for key_type in ["secp256k1", "ed25519"] {
        let path = new_key(dir.path(), key_type);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let secret = file["secret_key"].as_str().unwrap().to_owned();
        assert_eq!(secret.len(), 64);

        let out = dstorage(&["key", "show", &path, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = json(&out);
        assert!(!stdout(&out).contains(&secret));
        assert_eq!(shown["key_type"], key_type);
        assert_eq!(shown["public_key"], file["public_key"]);
        let ids = shown["identities"].as_object().unwrap();
        if key_type == "secp256k1" {
            assert!(ids["eth_personal_sign"].as_str().unwrap().starts_with("0x"));
            assert!(ids["secp256k1_sha256"]
                .as_str()
                .unwrap()
                .starts_with("cosmos1"));
        } else {
            assert_eq!(ids["ed25519"], file["public_key"]);
            assert_eq!(ids["near_nep413"], file["public_key"]);
            assert!(ids.contains_key("solana_sign_message"));
        }

        let text = stdout(&dstorage(&["key", "show", &path]));
        assert!(text.contains(&format!("key type:   {key_type}")), "{text}");
        assert!(!text.contains(&secret));
    }
}

#[test]
fn new_refuses_to_overwrite_an_existing_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_key(dir.path(), "ed25519");
    let before = std::fs::read(&path).unwrap();
    let out = dstorage(&["key", "new", "--type", "ed25519", "--out", &path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn new_without_out_prints_the_key_file_and_warns_on_stderr() {
    let out = dstorage(&["key", "new", "--type", "secp256k1"]);
    assert!(out.status.success());
    let file = json(&out);
    assert_eq!(file["key_type"], "secp256k1");
    assert_eq!(file["secret_key"].as_str().unwrap().len(), 64);
    assert!(stderr(&out).contains("warning: the secret key was written to stdout"));
}

#[test]
fn new_with_an_unknown_type_is_a_usage_error() {
    let out = dstorage(&["key", "new", "--type", "rsa"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown key type \"rsa\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sign_then_verify_round_trips_for_every_standard() {
    let dir = tempfile::tempdir().unwrap();
    let secp = new_key(dir.path(), "secp256k1");
    let ed = new_key(dir.path(), "ed25519");
    for (standard, key) in [
        ("eth_personal_sign", &secp),
        ("secp256k1_sha256", &secp),
        ("ed25519", &ed),
        ("near_nep413", &ed),
        ("solana_sign_message", &ed),
    ] {
        let out = dstorage(&[
            "key",
            "sign",
            "--standard",
            standard,
            "--key",
            key,
            "--message",
            "héllo dstorage",
            "--json",
        ]);
        assert!(out.status.success(), "{standard}: {}", stderr(&out));
        let signed = json(&out);
        let identity = signed["identity"].as_str().unwrap();
        let signature = signed["signature"].as_str().unwrap();

        let plain = dstorage(&[
            "key",
            "sign",
            "--standard",
            standard,
            "--key",
            key,
            "--message",
            "héllo dstorage",
        ]);
        if standard != "secp256k1_sha256" && standard != "eth_personal_sign" {
            // ed25519 (and our NEP-413 nonce) are deterministic.
            assert_eq!(stdout(&plain).trim(), signature);
        }

        let ok = dstorage(&[
            "key",
            "verify",
            "--standard",
            standard,
            "--identity",
            identity,
            "--message",
            "héllo dstorage",
            "--signature",
            signature,
            "--json",
        ]);
        assert_eq!(ok.status.code(), Some(0), "{standard}: {}", stdout(&ok));
        assert_eq!(json(&ok)["valid"], true);
        assert_eq!(json(&ok)["identity"], identity);

        let bad = dstorage(&[
            "key",
            "verify",
            "--standard",
            standard,
            "--identity",
            identity,
            "--message",
            "hello dstorage",
            "--signature",
            signature,
            "--json",
        ]);
        assert_eq!(bad.status.code(), Some(1), "{standard}: {}", stdout(&bad));
        assert_eq!(json(&bad)["valid"], false);
        assert!(json(&bad)["reason"].as_str().unwrap().starts_with(standard));
    }
}

#[test]
fn secp256k1_sha256_verifies_against_the_bech32_address_or_the_hex_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "secp256k1");
    let shown = json(&dstorage(&["key", "show", &key, "--json"]));
    let address = shown["identities"]["secp256k1_sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let public = shown["public_key"].as_str().unwrap().to_owned();
    let sig = stdout(&dstorage(&[
        "key",
        "sign",
        "--standard",
        "secp256k1_sha256",
        "--key",
        &key,
        "--message",
        "m",
    ]));
    for identity in [&address, &public] {
        let out = dstorage(&[
            "key",
            "verify",
            "--standard",
            "secp256k1_sha256",
            "--identity",
            identity,
            "--message",
            "m",
            "--signature",
            sig.trim(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        assert_eq!(stdout(&out), format!("valid: signed by {address}\n"));
    }
}

#[test]
fn sign_with_the_wrong_key_type_or_a_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let ed = new_key(dir.path(), "ed25519");
    let out = dstorage(&[
        "key",
        "sign",
        "--standard",
        "eth_personal_sign",
        "--key",
        &ed,
        "--message",
        "m",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: eth_personal_sign needs a secp256k1 key, got a ed25519 key\n"
    );
    let missing = dir.path().join("missing.key");
    let out = dstorage(&[
        "key",
        "sign",
        "--standard",
        "ed25519",
        "--key",
        missing.to_str().unwrap(),
        "--message",
        "m",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(json(&out)["error"]
        .as_str()
        .unwrap()
        .contains("missing.key"));
}

#[test]
fn sign_reproduces_the_published_web3_signature_from_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web3.key");
    let public = {
        // Write the key file by hand, as a user importing a key would, then fix its mode.
        let out = dstorage(&["key", "new", "--type", "secp256k1"]);
        let mut file = json(&out);
        file["secret_key"] = serde_json::json!(WEB3_KEY);
        file["public_key"] =
            serde_json::json!("024e3b81af9c2234cad09d679ce6035ed1392347ce64ce405f5dcd36228a25de6e");
        file
    };
    std::fs::write(&path, public.to_string()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = dstorage(&[
        "key",
        "sign",
        "--standard",
        "eth_personal_sign",
        "--key",
        path.to_str().unwrap(),
        "--message",
        "Some data",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let signed = json(&out);
    assert_eq!(signed["signature"], WEB3_SIGNATURE);
    assert_eq!(signed["identity"], WEB3_ADDRESS);
}

#[test]
fn new_with_out_and_json_describes_the_new_key_and_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let out = dstorage(&[
        "key",
        "new",
        "--type",
        "ed25519",
        "--out",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = json(&out);
    assert_eq!(shown["file"], path.to_str().unwrap());
    assert_eq!(shown["key_type"], "ed25519");
    assert!(shown.get("secret_key").is_none());
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(shown["public_key"], file["public_key"]);
    assert_eq!(shown["identities"]["near_nep413"], file["public_key"]);
}
