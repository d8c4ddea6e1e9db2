//! `ed25519`: plain RFC 8032 ed25519 over the message bytes.
//!
//! Signed bytes: the message itself. Signature: 64 bytes R ‖ S. Sender: the 32-byte public key. Identity: the
//! lowercase hex public key (a NEAR implicit account) by default, or its base58 (a Solana address) when the
//! network configures [`AddressFormat::Base58`].

use dstorage_types::identity::KeyType;
use ed25519_dalek::Signer;

use crate::curves::verify_ed25519;
use crate::error::{AuthError, VerifyError};
use crate::keys::{PublicKey, SecretKey};
use crate::registry::{key_type_mismatch, Authenticator};

/// The standard's name.
pub const NAME: &str = "ed25519";

/// How an ed25519 public key is written as an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFormat {
    /// 64 lowercase hex digits: a NEAR implicit account id.
    #[default]
    Hex,
    /// Base58 (Bitcoin alphabet): a Solana address.
    Base58,
}

impl AddressFormat {
    /// Write a 32-byte key in this format.
    pub fn encode(self, key: &[u8; 32]) -> String {
        match self {
            AddressFormat::Hex => hex::encode(key),
            AddressFormat::Base58 => bs58::encode(key).into_string(),
        }
    }
}

/// Plain ed25519 with a configurable identity format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519 {
    format: AddressFormat,
}

impl Ed25519 {
    /// The standard with identities in `format`.
    pub fn with_format(format: AddressFormat) -> Ed25519 {
        Ed25519 { format }
    }

    /// The identity format.
    pub fn format(&self) -> AddressFormat {
        self.format
    }
}

/// The 32 sender bytes, or the standard's length error.
pub(crate) fn sender_key<'a>(
    standard: &'static str,
    sender: &'a [u8],
) -> Result<&'a [u8; 32], VerifyError> {
    sender.try_into().map_err(|_| VerifyError::SenderLength {
        standard,
        expected: 32,
        actual: sender.len(),
        what: "ed25519 public key",
    })
}

/// The signature as exactly 64 bytes, or the standard's length error.
pub(crate) fn signature_bytes<'a>(
    standard: &'static str,
    signature: &'a [u8],
) -> Result<&'a [u8; 64], VerifyError> {
    signature
        .try_into()
        .map_err(|_| VerifyError::SignatureLength {
            standard,
            expected: "64 (R ‖ S)",
            actual: signature.len(),
        })
}

/// `identifier` for the ed25519 family: format the 32 bytes.
pub(crate) fn identifier_in(
    standard: &'static str,
    format: AddressFormat,
    sender: &[u8],
) -> Result<String, AuthError> {
    let key: &[u8; 32] = sender.try_into().map_err(|_| AuthError::InvalidSender {
        standard,
        sender: hex::encode(sender),
        reason: format!("{} bytes; an ed25519 public key is 32", sender.len()),
    })?;
    Ok(format.encode(key))
}

/// `parse_identity` for the ed25519 family. Accepts 64 hex digits, base58, or NEAR's `ed25519:<base58>`; the three
/// cannot be confused (32 bytes are 43 or 44 base58 digits, never 64).
pub(crate) fn parse_key_identity(
    standard: &'static str,
    identity: &str,
) -> Result<Vec<u8>, AuthError> {
    let invalid = |reason: String| AuthError::InvalidIdentity {
        standard,
        identity: identity.to_owned(),
        reason,
    };
    let bytes = if identity.len() == 64 {
        hex::decode(identity).map_err(|e| invalid(format!("64 characters but not hex: {e}")))?
    } else {
        let digits = identity.strip_prefix("ed25519:").unwrap_or(identity);
        bs58::decode(digits)
            .into_vec()
            .map_err(|e| invalid(format!("neither 64 hex digits nor base58: {e}")))?
    };
    if bytes.len() != 32 {
        return Err(invalid(format!(
            "{} bytes; an ed25519 public key is 32",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// `sender_for` for the ed25519 family.
pub(crate) fn sender_key_for(
    standard: &'static str,
    key: &PublicKey,
) -> Result<Vec<u8>, AuthError> {
    match key {
        PublicKey::Ed25519(pk) => Ok(pk.to_bytes().to_vec()),
        other => Err(key_type_mismatch(
            standard,
            KeyType::Ed25519,
            other.key_type(),
        )),
    }
}

/// Sign raw bytes with an ed25519 key, for the ed25519 family.
pub(crate) fn sign_raw(
    standard: &'static str,
    key: &SecretKey,
    message: &[u8],
) -> Result<[u8; 64], AuthError> {
    match key {
        SecretKey::Ed25519(sk) => Ok(sk.sign(message).to_bytes()),
        other => Err(key_type_mismatch(
            standard,
            KeyType::Ed25519,
            other.key_type(),
        )),
    }
}

impl Authenticator for Ed25519 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn key_type(&self) -> KeyType {
        KeyType::Ed25519
    }

    fn verify(&self, sender: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        let key = sender_key(NAME, sender)?;
        let signature = signature_bytes(NAME, signature)?;
        verify_ed25519(NAME, key, message, signature)
    }

    fn identifier(&self, sender: &[u8]) -> Result<String, AuthError> {
        identifier_in(NAME, self.format, sender)
    }

    fn parse_identity(&self, identity: &str) -> Result<Vec<u8>, AuthError> {
        parse_key_identity(NAME, identity)
    }

    fn sender_for(&self, key: &PublicKey) -> Result<Vec<u8>, AuthError> {
        sender_key_for(NAME, key)
    }

    fn sign(&self, key: &SecretKey, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        sign_raw(NAME, key, message).map(|s| s.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 section 7.1: (secret key, public key, message, signature).
    const RFC8032: [(&str, &str, &str, &str); 4] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        ),
    ];

    #[test]
    fn rfc8032_section_7_1_vectors_sign_and_verify_as_published() {
        for (secret, public, message, signature) in RFC8032 {
            let key =
                SecretKey::from_bytes(KeyType::Ed25519, &hex::decode(secret).unwrap()).unwrap();
            let message = hex::decode(message).unwrap();
            assert_eq!(key.public_key().to_hex(), public);
            let sender = Ed25519::default().sender_for(&key.public_key()).unwrap();
            let ours = Ed25519::default().sign(&key, &message).unwrap();
            assert_eq!(hex::encode(&ours), signature);
            assert_eq!(Ed25519::default().verify(&sender, &message, &ours), Ok(()));
            assert_eq!(Ed25519::default().identifier(&sender).unwrap(), public);
        }
    }

    #[test]
    fn base58_format_names_the_key_as_solana_does() {
        // RFC 8032 test 1's key, base58-encoded.
        let key = hex::decode(RFC8032[0].1).unwrap();
        let id = Ed25519::with_format(AddressFormat::Base58)
            .identifier(&key)
            .unwrap();
        assert_eq!(bs58::decode(&id).into_vec().unwrap(), key);
        assert_eq!(parse_key_identity(NAME, &id).unwrap(), key);
        assert_eq!(
            parse_key_identity(NAME, &format!("ed25519:{id}")).unwrap(),
            key
        );
        assert_eq!(parse_key_identity(NAME, RFC8032[0].1).unwrap(), key);
    }

    #[test]
    fn identities_of_the_wrong_length_or_alphabet_are_refused() {
        for bad in [
            "",
            "0x00",
            &"g".repeat(64),
            &"1".repeat(50),
            "ed25519:",
            "O0Il",
        ] {
            assert!(
                matches!(
                    parse_key_identity(NAME, bad),
                    Err(AuthError::InvalidIdentity { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
