//! Keys and key files: generate, load, save (0600), show the public half; never print the secret by accident.

use std::fmt;
use std::path::Path;

use dstorage_types::identity::KeyType;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::AuthError;

/// A secret (signing) key. `Debug` shows the key type and public key only.
#[derive(Clone)]
pub enum SecretKey {
    /// A secp256k1 secret scalar.
    Secp256k1(secp256k1::SecretKey),
    /// An ed25519 seed (RFC 8032 "private key").
    Ed25519(ed25519_dalek::SigningKey),
}

/// A public (verifying) key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PublicKey {
    /// A secp256k1 point; its bytes are the 33-byte compressed form.
    Secp256k1(secp256k1::PublicKey),
    /// An ed25519 point; its bytes are the 32-byte encoding.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl SecretKey {
    /// Generate a fresh key from the operating system's randomness.
    pub fn generate(key_type: KeyType) -> SecretKey {
        let mut rng = rand::rngs::OsRng;
        let mut bytes = Zeroizing::new([0u8; 32]);
        loop {
            rng.fill_bytes(bytes.as_mut());
            // Only secp256k1 can refuse 32 random bytes (zero or ≥ n, probability ~2^-128): draw again.
            if let Ok(key) = SecretKey::from_bytes(key_type, bytes.as_ref()) {
                return key;
            }
        }
    }

    /// A key from its 32 secret bytes (secp256k1 scalar, big-endian; ed25519 seed).
    pub fn from_bytes(key_type: KeyType, bytes: &[u8]) -> Result<SecretKey, AuthError> {
        let invalid = |reason: String| AuthError::InvalidKey {
            key_type,
            what: "secret key",
            reason,
        };
        match key_type {
            KeyType::Secp256k1 => secp256k1::SecretKey::from_slice(bytes)
                .map(SecretKey::Secp256k1)
                .map_err(|_| {
                    invalid(format!(
                        "{} bytes; expected 32 bytes, not zero and below the group order",
                        bytes.len()
                    ))
                }),
            KeyType::Ed25519 => {
                let seed: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| invalid(format!("{} bytes; expected 32 bytes", bytes.len())))?;
                let mut seed = Zeroizing::new(seed);
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                seed.zeroize();
                Ok(SecretKey::Ed25519(key))
            }
        }
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        match self {
            SecretKey::Secp256k1(_) => KeyType::Secp256k1,
            SecretKey::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SecretKey::Secp256k1(sk) => PublicKey::Secp256k1(sk.public_key(secp256k1::SECP256K1)),
            SecretKey::Ed25519(sk) => PublicKey::Ed25519(sk.verifying_key()),
        }
    }

    /// The 32 secret bytes. Named `expose_` because callers must mean it: the result is wiped on drop.
    pub fn expose_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(match self {
            SecretKey::Secp256k1(sk) => sk.secret_bytes(),
            SecretKey::Ed25519(sk) => sk.to_bytes(),
        })
    }

    /// The key file contents: JSON with `key_type`, `public_key` (hex) and `secret_key` (hex).
    pub fn to_key_file_json(&self) -> Zeroizing<String> {
        let file = KeyFile {
            key_type: self.key_type(),
            public_key: self.public_key().to_hex(),
            secret_key: Zeroizing::new(hex::encode(self.expose_secret_bytes().as_ref())),
        };
        // Serializing a struct of strings cannot fail.
        let mut json = serde_json::to_string_pretty(&file).unwrap_or_default();
        json.push('\n');
        Zeroizing::new(json)
    }

    /// Parse key file contents; `path` only names the file in errors.
    pub fn from_key_file_json(json: &str, path: &Path) -> Result<SecretKey, AuthError> {
        let format = |reason: String| AuthError::KeyFileFormat {
            path: path.to_owned(),
            reason,
        };
        let file: KeyFile = serde_json::from_str(json).map_err(|e| {
            // serde_json's message may quote the input, which holds the secret: keep only the position.
            format(format!(
                "not a key file (JSON with key_type, public_key, secret_key): error at line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        let bytes = Zeroizing::new(
            hex::decode(file.secret_key.as_str())
                .map_err(|_| format("secret_key is not hex".to_owned()))?,
        );
        let key =
            SecretKey::from_bytes(file.key_type, &bytes).map_err(|e| format(e.to_string()))?;
        let public = key.public_key().to_hex();
        if public != file.public_key.to_ascii_lowercase() {
            return Err(format(format!(
                "public_key {} does not match the secret key, whose public key is {public}",
                file.public_key
            )));
        }
        Ok(key)
    }

    /// Write a new key file readable only by its owner (0600). Refuses to overwrite an existing file: losing a key
    /// cannot be undone.
    pub fn save(&self, path: &Path) -> Result<(), AuthError> {
        use std::io::Write;
        let io = |source| AuthError::KeyFileIo {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Set at creation, so the secret is never on disk with wider permissions.
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(self.to_key_file_json().as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Read a key file. Refuses files that group or others can read.
    pub fn load(path: &Path) -> Result<SecretKey, AuthError> {
        let io = |source| AuthError::KeyFileIo {
            path: path.to_owned(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(AuthError::KeyFilePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let json = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        SecretKey::from_key_file_json(&json, path)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("key_type", &self.key_type())
            .field("public_key", &self.public_key().to_hex())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The on-disk key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    key_type: KeyType,
    public_key: String,
    secret_key: Zeroizing<String>,
}

impl PublicKey {
    /// A public key from its bytes: 33-byte compressed secp256k1 (65-byte uncompressed is also read), or 32-byte
    /// ed25519.
    pub fn from_bytes(key_type: KeyType, bytes: &[u8]) -> Result<PublicKey, AuthError> {
        let invalid = |reason: String| AuthError::InvalidKey {
            key_type,
            what: "public key",
            reason,
        };
        match key_type {
            KeyType::Secp256k1 => secp256k1::PublicKey::from_slice(bytes)
                .map(PublicKey::Secp256k1)
                .map_err(|_| {
                    invalid(format!(
                        "{} is not a secp256k1 point in SEC1 form (33 or 65 bytes)",
                        hex::encode(bytes)
                    ))
                }),
            KeyType::Ed25519 => {
                let arr: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| invalid(format!("{} bytes; expected 32", bytes.len())))?;
                ed25519_dalek::VerifyingKey::from_bytes(&arr)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| invalid(format!("{} is not an ed25519 point", hex::encode(bytes))))
            }
        }
    }

    /// A public key from hex (see [`PublicKey::from_bytes`]); a leading `0x` is allowed.
    pub fn from_hex(key_type: KeyType, text: &str) -> Result<PublicKey, AuthError> {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let bytes = hex::decode(digits).map_err(|e| AuthError::InvalidKey {
            key_type,
            what: "public key",
            reason: format!("{text:?} is not hex: {e}"),
        })?;
        PublicKey::from_bytes(key_type, &bytes)
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        match self {
            PublicKey::Secp256k1(_) => KeyType::Secp256k1,
            PublicKey::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// The key's bytes: 33-byte compressed secp256k1 or 32-byte ed25519.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Secp256k1(pk) => pk.serialize().to_vec(),
            PublicKey::Ed25519(pk) => pk.to_bytes().to_vec(),
        }
    }

    /// The key's bytes in lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}:{})", self.key_type(), self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_a_secret_key_never_contains_the_secret() {
        for key_type in KeyType::ALL {
            let key = SecretKey::generate(key_type);
            let secret_hex = hex::encode(key.expose_secret_bytes().as_ref());
            let debug = format!("{key:?}");
            assert!(!debug.contains(&secret_hex), "{debug}");
            assert!(debug.contains("<redacted>"));
            assert!(debug.contains(&key.public_key().to_hex()));
        }
    }

    #[test]
    fn key_files_are_created_0600_and_load_back_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        for key_type in KeyType::ALL {
            let path = dir.path().join(format!("{key_type}.json"));
            let key = SecretKey::generate(key_type);
            key.save(&path).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600);
            }
            let loaded = SecretKey::load(&path).unwrap();
            assert_eq!(loaded.public_key(), key.public_key());
            assert_eq!(*loaded.expose_secret_bytes(), *key.expose_secret_bytes());
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(&format!("\"key_type\": \"{key_type}\"")));
        }
    }

    #[test]
    fn saving_over_an_existing_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        SecretKey::generate(KeyType::Ed25519).save(&path).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = SecretKey::generate(KeyType::Ed25519)
            .save(&path)
            .unwrap_err();
        assert!(matches!(err, AuthError::KeyFileIo { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[cfg(unix)]
    #[test]
    fn loading_a_group_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        SecretKey::generate(KeyType::Secp256k1).save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = SecretKey::load(&path).unwrap_err();
        assert!(
            matches!(err, AuthError::KeyFilePermissions { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("mode 640"));
    }

    #[test]
    fn key_file_errors_do_not_echo_the_secret() {
        let secret = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        let json = format!("{{\"key_type\": \"secp256k1\", \"secret_key\": \"{secret}\", oops}}");
        let err = SecretKey::from_key_file_json(&json, Path::new("k.json")).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
        assert!(err
            .to_string()
            .starts_with("key file k.json: not a key file"));
    }

    #[test]
    fn key_file_with_a_public_key_that_does_not_match_is_refused() {
        let a = SecretKey::generate(KeyType::Ed25519);
        let b = SecretKey::generate(KeyType::Ed25519);
        let json = a
            .to_key_file_json()
            .replace(&a.public_key().to_hex(), &b.public_key().to_hex());
        let err = SecretKey::from_key_file_json(&json, Path::new("k.json")).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn secp256k1_secret_keys_of_zero_or_the_group_order_are_refused() {
        assert!(SecretKey::from_bytes(KeyType::Secp256k1, &[0; 32]).is_err());
        let n = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            .unwrap();
        assert!(SecretKey::from_bytes(KeyType::Secp256k1, &n).is_err());
        assert!(SecretKey::from_bytes(KeyType::Ed25519, &[1; 31]).is_err());
    }

    #[test]
    fn public_keys_round_trip_through_hex() {
        for key_type in KeyType::ALL {
            let pk = SecretKey::generate(key_type).public_key();
            assert_eq!(PublicKey::from_hex(key_type, &pk.to_hex()).unwrap(), pk);
        }
        assert!(PublicKey::from_hex(KeyType::Ed25519, "zz").is_err());
        assert!(
            PublicKey::from_hex(KeyType::Secp256k1, &format!("02{}", "ff".repeat(32))).is_err()
        );
    }
}
