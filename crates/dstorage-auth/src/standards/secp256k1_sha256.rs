//! `secp256k1_sha256`: plain ECDSA over SHA-256(message), as Cosmos and Bitcoin-style keys sign.
//!
//! Signed bytes: SHA-256(message). Signature: 64-byte compact r ‖ s (low-S). Sender: the 33-byte compressed public
//! key. Identity: bech32(prefix, RIPEMD-160(SHA-256(compressed key))), prefix "cosmos" by default.

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};
use dstorage_types::identity::KeyType;
use ripemd::Ripemd160;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId, Signature};
use secp256k1::{Message, SECP256K1};
use sha2::{Digest, Sha256};

use crate::curves::check_secp256k1_scalars;
use crate::error::{AuthError, VerifyError};
use crate::keys::{PublicKey, SecretKey};
use crate::registry::{key_type_mismatch, Authenticator};

/// The standard's name.
pub const NAME: &str = "secp256k1_sha256";

/// The bech32 human-readable prefix used unless the network configures another.
pub const DEFAULT_PREFIX: &str = "cosmos";

/// ECDSA secp256k1 over SHA-256, with bech32 addresses under a configurable prefix.
#[derive(Debug, Clone)]
pub struct Secp256k1Sha256 {
    prefix: Hrp,
}

impl Secp256k1Sha256 {
    /// The standard with a bech32 prefix of the network's choosing (lowercase, e.g. "cosmos", "idos").
    pub fn with_prefix(prefix: &str) -> Result<Secp256k1Sha256, AuthError> {
        let invalid = |reason: String| AuthError::InvalidIdentity {
            standard: NAME,
            identity: prefix.to_owned(),
            reason,
        };
        let hrp = Hrp::parse(prefix).map_err(|e| invalid(format!("not a bech32 prefix: {e}")))?;
        if hrp.as_str() != prefix || prefix.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("a bech32 prefix must be lowercase".to_owned()));
        }
        Ok(Secp256k1Sha256 { prefix: hrp })
    }

    /// The configured bech32 prefix.
    pub fn prefix(&self) -> &str {
        self.prefix.as_str()
    }

    /// The bech32 address of a 33-byte compressed key.
    pub fn address(&self, compressed_key: &[u8]) -> String {
        let hash = key_hash(compressed_key);
        // Encoding 20 bytes under a valid prefix stays far below bech32's length limit, so this cannot fail.
        bech32::encode::<Bech32>(self.prefix, &hash).unwrap_or_default()
    }

    /// The 20-byte key hash in a bech32 address under this standard's prefix.
    pub fn parse_address(&self, text: &str) -> Result<[u8; 20], String> {
        let checked = CheckedHrpstring::new::<Bech32>(text)
            .map_err(|e| format!("not a bech32 address: {e}"))?;
        if checked.hrp() != self.prefix {
            return Err(format!(
                "prefix {:?}; this network uses {:?}",
                checked.hrp().as_str(),
                self.prefix.as_str()
            ));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let hash: [u8; 20] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("holds {} bytes; an address holds 20", bytes.len()))?;
        // One spelling per identity: bech32 also accepts all-uppercase.
        if self.address_from_hash(&hash) != text {
            return Err("not in canonical (lowercase) form".to_owned());
        }
        Ok(hash)
    }

    fn address_from_hash(&self, hash: &[u8; 20]) -> String {
        bech32::encode::<Bech32>(self.prefix, hash).unwrap_or_default()
    }
}

impl Default for Secp256k1Sha256 {
    fn default() -> Secp256k1Sha256 {
        Secp256k1Sha256 {
            prefix: Hrp::parse_unchecked(DEFAULT_PREFIX),
        }
    }
}

/// RIPEMD-160(SHA-256(key)), Bitcoin's HASH160.
fn key_hash(compressed_key: &[u8]) -> [u8; 20] {
    Ripemd160::digest(Sha256::digest(compressed_key)).into()
}

fn message_digest(message: &[u8]) -> Message {
    Message::from_digest(Sha256::digest(message).into())
}

fn compact_signature(signature: &[u8]) -> Result<[u8; 64], VerifyError> {
    let compact: [u8; 64] = signature
        .try_into()
        .map_err(|_| VerifyError::SignatureLength {
            standard: NAME,
            expected: "64 (r ‖ s)",
            actual: signature.len(),
        })?;
    check_secp256k1_scalars(NAME, &compact)?;
    Ok(compact)
}

impl Authenticator for Secp256k1Sha256 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn key_type(&self) -> KeyType {
        KeyType::Secp256k1
    }

    fn verify(&self, sender: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        if sender.len() != 33 {
            return Err(VerifyError::SenderLength {
                standard: NAME,
                expected: 33,
                actual: sender.len(),
                what: "compressed secp256k1 public key",
            });
        }
        let compact = compact_signature(signature)?;
        let key = secp256k1::PublicKey::from_slice(sender).map_err(|_| {
            VerifyError::InvalidPublicKey {
                standard: NAME,
                key_type: KeyType::Secp256k1,
                key: hex::encode(sender),
            }
        })?;
        let sig = Signature::from_compact(&compact).map_err(|_| VerifyError::ScalarOutOfRange {
            standard: NAME,
            which: "r or s",
        })?;
        SECP256K1
            .verify_ecdsa(&message_digest(message), &sig, &key)
            .map_err(|_| VerifyError::BadSignature {
                standard: NAME,
                key: hex::encode(sender),
            })
    }

    fn identifier(&self, sender: &[u8]) -> Result<String, AuthError> {
        if sender.len() != 33 {
            return Err(AuthError::InvalidSender {
                standard: NAME,
                sender: hex::encode(sender),
                reason: format!("{} bytes; a compressed public key is 33", sender.len()),
            });
        }
        Ok(self.address(sender))
    }

    /// Takes the 33-byte compressed public key in hex (66 digits). A bech32 address names only a key hash, so it
    /// cannot give sender bytes; [`Authenticator::verify_identity`] accepts it by recovering the key.
    fn parse_identity(&self, identity: &str) -> Result<Vec<u8>, AuthError> {
        let invalid = |reason: String| AuthError::InvalidIdentity {
            standard: NAME,
            identity: identity.to_owned(),
            reason,
        };
        if identity.starts_with(&format!("{}1", self.prefix.as_str())) {
            return Err(invalid(
                "a bech32 address names a key hash, not a key: give the hex public key, or verify against the \
                 address (the key is recovered from the signature)"
                    .to_owned(),
            ));
        }
        let bytes = hex::decode(identity)
            .map_err(|e| invalid(format!("neither a {} address nor hex: {e}", self.prefix)))?;
        if bytes.len() != 33 {
            return Err(invalid(format!(
                "{} bytes; a compressed public key is 33",
                bytes.len()
            )));
        }
        secp256k1::PublicKey::from_slice(&bytes)
            .map_err(|_| invalid("not a compressed secp256k1 point".to_owned()))?;
        Ok(bytes)
    }

    fn sender_for(&self, key: &PublicKey) -> Result<Vec<u8>, AuthError> {
        match key {
            PublicKey::Secp256k1(pk) => Ok(pk.serialize().to_vec()),
            other => Err(key_type_mismatch(
                NAME,
                KeyType::Secp256k1,
                other.key_type(),
            )),
        }
    }

    fn sign(&self, key: &SecretKey, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        let SecretKey::Secp256k1(sk) = key else {
            return Err(key_type_mismatch(NAME, KeyType::Secp256k1, key.key_type()));
        };
        // RFC 6979 nonces; libsecp256k1 always returns low-S.
        Ok(SECP256K1
            .sign_ecdsa(&message_digest(message), sk)
            .serialize_compact()
            .to_vec())
    }

    /// A bech32 address (lower or upper case, as bech32 allows) is its own identity: the key it hashes is not
    /// needed. Otherwise the hex public key's address.
    fn canonical_identity(&self, text: &str) -> Result<String, AuthError> {
        if CheckedHrpstring::new::<Bech32>(text).is_ok() {
            let hash = self
                .parse_address(&text.to_ascii_lowercase())
                .map_err(|reason| AuthError::InvalidIdentity {
                    standard: NAME,
                    identity: text.to_owned(),
                    reason,
                })?;
            return Ok(self.address_from_hash(&hash));
        }
        self.identifier(&self.parse_identity(text)?)
    }

    /// Accepts the hex public key, or the bech32 address: then each of the (at most four) keys recoverable from
    /// (r, s) is tried, and the one whose address matches must verify.
    fn verify_identity(
        &self,
        identity: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<String, AuthError> {
        let Ok(hash) = self.parse_address(identity) else {
            let sender = self.parse_identity(identity)?;
            self.verify(&sender, message, signature)?;
            return self.identifier(&sender);
        };
        let compact = compact_signature(signature)?;
        let digest = message_digest(message);
        for id in [
            RecoveryId::Zero,
            RecoveryId::One,
            RecoveryId::Two,
            RecoveryId::Three,
        ] {
            let Ok(recoverable) = RecoverableSignature::from_compact(&compact, id) else {
                continue;
            };
            let Ok(key) = SECP256K1.recover_ecdsa(&digest, &recoverable) else {
                continue;
            };
            let sender = key.serialize();
            if key_hash(&sender) == hash {
                // Recovery implies validity, but the verify path is the one every node runs: use it.
                self.verify(&sender, message, signature)?;
                return self.identifier(&sender);
            }
        }
        Err(VerifyError::NoKeyForAddress {
            standard: NAME,
            address: identity.to_owned(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex_secret: &str) -> SecretKey {
        SecretKey::from_bytes(KeyType::Secp256k1, &hex::decode(hex_secret).unwrap()).unwrap()
    }

    #[test]
    fn address_of_the_generator_key_matches_bitcoins_hash160() {
        // Secret key 1's public key is the generator G; HASH160(G compressed) = 751e76e8199196d454941c45d1b3a323f1433bd6
        // (the P2WPKH example of BIP-173).
        let k = key("0000000000000000000000000000000000000000000000000000000000000001");
        let sender = Secp256k1Sha256::default()
            .sender_for(&k.public_key())
            .unwrap();
        assert_eq!(
            hex::encode(&sender),
            "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        );
        assert_eq!(
            hex::encode(key_hash(&sender)),
            "751e76e8199196d454941c45d1b3a323f1433bd6"
        );
        // BIP-173 spells that hash as bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 under version 0 segwit; our address
        // has no witness version, so under "bc" it is the plain bech32 of the 20 bytes:
        let bc = Secp256k1Sha256::with_prefix("bc").unwrap();
        let addr = bc.identifier(&sender).unwrap();
        assert!(addr.starts_with("bc1"));
        assert_eq!(bc.parse_address(&addr).unwrap(), key_hash(&sender));
    }

    #[test]
    fn signs_and_verifies_and_names_a_cosmos_address() {
        let std = Secp256k1Sha256::default();
        let k = SecretKey::generate(KeyType::Secp256k1);
        let sender = std.sender_for(&k.public_key()).unwrap();
        let sig = std.sign(&k, b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        assert_eq!(std.verify(&sender, b"hello", &sig), Ok(()));
        let id = std.identifier(&sender).unwrap();
        assert!(id.starts_with("cosmos1"), "{id}");
        assert_eq!(std.verify_identity(&id, b"hello", &sig).unwrap(), id);
        assert_eq!(
            std.verify_identity(&hex::encode(&sender), b"hello", &sig)
                .unwrap(),
            id
        );
        assert_eq!(
            std.verify_identity(&id, b"hellO", &sig)
                .unwrap_err()
                .to_string(),
            format!("secp256k1_sha256: no key recoverable from this signature has address {id}")
        );
    }

    #[test]
    fn an_address_under_another_prefix_is_refused_by_name() {
        let k = SecretKey::generate(KeyType::Secp256k1);
        let osmo = Secp256k1Sha256::with_prefix("osmo").unwrap();
        let sender = osmo.sender_for(&k.public_key()).unwrap();
        let addr = osmo.identifier(&sender).unwrap();
        let err = Secp256k1Sha256::default().parse_address(&addr).unwrap_err();
        assert!(err.contains("\"osmo\""), "{err}");
        assert!(err.contains("\"cosmos\""), "{err}");
    }

    #[test]
    fn uppercase_and_bech32m_addresses_are_refused() {
        let std = Secp256k1Sha256::default();
        let k = SecretKey::generate(KeyType::Secp256k1);
        let addr = std.identifier(&k.public_key().to_bytes()).unwrap();
        assert!(std.parse_address(&addr.to_uppercase()).is_err());
        let m =
            bech32::encode::<bech32::Bech32m>(Hrp::parse("cosmos").unwrap(), &[7u8; 20]).unwrap();
        assert!(std.parse_address(&m).is_err());
    }

    #[test]
    fn prefixes_must_be_valid_lowercase_bech32() {
        assert!(Secp256k1Sha256::with_prefix("idos").is_ok());
        assert!(Secp256k1Sha256::with_prefix("IDOS").is_err());
        assert!(Secp256k1Sha256::with_prefix("").is_err());
        assert!(Secp256k1Sha256::with_prefix("a b").is_err());
    }

    #[test]
    fn uncompressed_sender_keys_are_refused() {
        let k = SecretKey::generate(KeyType::Secp256k1);
        let PublicKey::Secp256k1(pk) = k.public_key() else {
            unreachable!()
        };
        let sig = Secp256k1Sha256::default().sign(&k, b"m").unwrap();
        assert_eq!(
            Secp256k1Sha256::default().verify(&pk.serialize_uncompressed(), b"m", &sig),
            Err(VerifyError::SenderLength {
                standard: NAME,
                expected: 33,
                actual: 65,
                what: "compressed secp256k1 public key"
            })
        );
    }
}
