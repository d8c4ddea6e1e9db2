//! `dstorage key`: generate and show key files, sign and verify messages under any signature standard.
//!
//! Exit codes: 0 success (or a valid signature), 1 an invalid signature, 2 bad input (unknown standard, unreadable
//! key file, malformed identity or hex). Every failure prints one line saying why.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use dstorage_auth::{default_registry, AuthError, KeyType, SecretKey};
use serde_json::json;

/// Manage keys: generate, show, sign, verify.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Generate a key. Writes a key file (mode 0600) to --out, or the key file JSON to stdout.
    New {
        /// Key type: secp256k1 or ed25519.
        #[arg(long = "type", value_name = "secp256k1|ed25519")]
        key_type: KeyType,
        /// Where to write the key file; refuses to overwrite an existing file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a key file's type, public key and identity under each standard (never the secret).
    Show {
        /// The key file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign a message under a standard; prints the signature field in hex.
    Sign {
        /// The signature standard, e.g. eth_personal_sign.
        #[arg(long)]
        standard: String,
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The message (its UTF-8 bytes are signed).
        #[arg(long)]
        message: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a signature: exit 0 valid, 1 invalid, 2 bad input.
    Verify {
        /// The signature standard, e.g. eth_personal_sign.
        #[arg(long)]
        standard: String,
        /// The signer's identity as the standard writes it (address or hex public key).
        #[arg(long)]
        identity: String,
        /// The message (its UTF-8 bytes were signed).
        #[arg(long)]
        message: String,
        /// The signature field in hex (0x prefix allowed).
        #[arg(long)]
        signature: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Exit code for an invalid signature.
const INVALID: u8 = 1;
/// Exit code for input that could not be used.
const BAD_INPUT: u8 = 2;

/// Run a `dstorage key` command. Bad input is reported here (one line, exit 2), not returned as an error, so the
/// exit code keeps its documented meaning; `Err` is left for failures to write the output itself.
pub fn run(cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    let json = match &cmd {
        KeyCommand::New { json, .. }
        | KeyCommand::Show { json, .. }
        | KeyCommand::Sign { json, .. }
        | KeyCommand::Verify { json, .. } => *json,
    };
    let outcome = match cmd {
        KeyCommand::New {
            key_type,
            out,
            json,
        } => new(key_type, out, json),
        KeyCommand::Show { file, json } => {
            load(&file).and_then(|key| show(&key, Some(&file), json))
        }
        KeyCommand::Sign {
            standard,
            key,
            message,
            json,
        } => load(&key).and_then(|key| sign(&standard, &key, &message, json)),
        KeyCommand::Verify {
            standard,
            identity,
            message,
            signature,
            json,
        } => verify(&standard, &identity, &message, &signature, json),
    };
    match outcome {
        Ok(code) => Ok(code),
        Err(e) => {
            let reason = format!("{e:#}").replace('\n', " ");
            if json {
                println!("{}", json!({ "error": reason }));
            } else {
                eprintln!("error: {reason}");
            }
            Ok(ExitCode::from(BAD_INPUT))
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<SecretKey> {
    Ok(SecretKey::load(path)?)
}

fn new(key_type: KeyType, out: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let key = SecretKey::generate(key_type);
    match out {
        Some(path) => {
            key.save(&path)?;
            show(&key, Some(&path), json)
        }
        None => {
            // No file was named, so the key itself is what was asked for: it goes to stdout, with a warning on
            // stderr so it is not mistaken for something safe to paste.
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(key.to_key_file_json().as_bytes())?;
            stdout.flush()?;
            eprintln!("warning: the secret key was written to stdout; store it in a file only you can read (0600)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The identity of `key` under every standard of its key type.
fn identities(key: &SecretKey) -> Vec<(&'static str, String)> {
    let registry = default_registry();
    registry
        .names()
        .into_iter()
        .filter(|name| {
            registry
                .get(name)
                .is_ok_and(|a| a.key_type() == key.key_type())
        })
        .filter_map(|name| {
            registry
                .identity_for(name, &key.public_key())
                .ok()
                .map(|id| (name, id))
        })
        .collect()
}

fn show(key: &SecretKey, file: Option<&PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let ids = identities(key);
    if json {
        let map: serde_json::Map<String, serde_json::Value> = ids
            .iter()
            .map(|(name, id)| ((*name).to_owned(), json!(id)))
            .collect();
        let mut value = json!({
            "key_type": key.key_type(),
            "public_key": key.public_key().to_hex(),
            "identities": map,
        });
        if let Some(file) = file {
            value["file"] = json!(file.display().to_string());
        }
        println!("{value}");
    } else {
        if let Some(file) = file {
            println!("file:       {}", file.display());
        }
        println!("key type:   {}", key.key_type());
        println!("public key: {}", key.public_key());
        for (name, id) in ids {
            println!("identity:   {id}  ({name})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(standard: &str, key: &SecretKey, message: &str, json: bool) -> anyhow::Result<ExitCode> {
    let registry = default_registry();
    let signed = registry.sign(standard, key, message.as_bytes())?;
    let identity = registry.get(standard)?.identifier(&signed.sender)?;
    if json {
        println!(
            "{}",
            json!({
                "standard": standard,
                "identity": identity,
                "sender": hex::encode(&signed.sender),
                "signature": hex::encode(&signed.signature),
            })
        );
    } else {
        println!("{}", hex::encode(&signed.signature));
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(
    standard: &str,
    identity: &str,
    message: &str,
    signature: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let digits = signature.strip_prefix("0x").unwrap_or(signature);
    let signature =
        hex::decode(digits).map_err(|e| anyhow::anyhow!("--signature is not hex: {e}"))?;
    match default_registry().verify_identity(standard, identity, message.as_bytes(), &signature) {
        Ok(canonical) => {
            if json {
                println!("{}", json!({ "valid": true, "identity": canonical }));
            } else {
                println!("valid: signed by {canonical}");
            }
            Ok(ExitCode::SUCCESS)
        }
        // A well-formed request whose signature does not hold: "invalid", not "bad input".
        Err(AuthError::Verify(reason)) => {
            if json {
                println!(
                    "{}",
                    json!({ "valid": false, "reason": reason.to_string() })
                );
            } else {
                println!("invalid: {reason}");
            }
            Ok(ExitCode::from(INVALID))
        }
        Err(other) => Err(other.into()),
    }
}
