//! `near_nep413`: NEAR wallets' `signMessage` (NEP-413).
//!
//! Signed bytes: SHA-256(borsh(u32 2^31 + 413) ‖ borsh({message, nonce: [u8; 32], recipient, callbackUrl?})),
//! signed with ed25519. The message must be UTF-8 (borsh `String`).
//!
//! The signature field carries what the verifier needs besides the message: `signature (64) ‖ nonce (32)
//! [‖ callbackUrl (UTF-8, rest of the field)]`. An absent callback URL (exactly 96 bytes) is borsh `None`. The
//! recipient is *not* carried: it is fixed by the network ([`DEFAULT_RECIPIENT`] unless configured), so a signature
//! a wallet made for another app (another recipient) never verifies here.
//!
//! Sender: the 32-byte public key. Identity: its lowercase hex, the key's NEAR implicit account.

use dstorage_types::identity::KeyType;
use sha2::{Digest, Sha256};

use super::ed25519::{
    identifier_in, parse_key_identity, sender_key, sender_key_for, sign_raw, AddressFormat,
};
use crate::curves::verify_ed25519;
use crate::error::{AuthError, VerifyError};
use crate::keys::{PublicKey, SecretKey};
use crate::registry::Authenticator;

/// The standard's name.
pub const NAME: &str = "near_nep413";

/// The recipient every dstorage NEP-413 signature names unless the network configures another.
pub const DEFAULT_RECIPIENT: &str = "dstorage";

/// The NEP-413 tag, 2^31 + 413, which keeps these payloads from ever being valid NEAR transactions.
pub const TAG: u32 = (1 << 31) + 413;

/// The NEP-413 payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    /// The text shown to the user.
    pub message: &'a str,
    /// 32 bytes chosen by the signer.
    pub nonce: &'a [u8; 32],
    /// Who the signature is for.
    pub recipient: &'a str,
    /// Where a browser wallet redirects with the result, if it was asked to.
    pub callback_url: Option<&'a str>,
}

impl Payload<'_> {
    /// SHA-256 of the tagged borsh encoding: the 32 bytes that are signed.
    pub fn hash(&self) -> Result<[u8; 32], VerifyError> {
        let mut hasher = Sha256::new();
        hasher.update(TAG.to_le_bytes());
        borsh_string(&mut hasher, self.message)?;
        hasher.update(self.nonce);
        borsh_string(&mut hasher, self.recipient)?;
        match self.callback_url {
            None => hasher.update([0u8]),
            Some(url) => {
                hasher.update([1u8]);
                borsh_string(&mut hasher, url)?;
            }
        }
        Ok(hasher.finalize().into())
    }
}

/// borsh `String`: u32 little-endian byte length, then the bytes.
fn borsh_string(hasher: &mut Sha256, text: &str) -> Result<(), VerifyError> {
    let len = u32::try_from(text.len()).map_err(|_| VerifyError::Malformed {
        standard: NAME,
        reason: format!(
            "a {}-byte string does not fit borsh's u32 length",
            text.len()
        ),
    })?;
    hasher.update(len.to_le_bytes());
    hasher.update(text.as_bytes());
    Ok(())
}

/// Verify a NEP-413 signature over an explicit payload (any recipient), e.g. one a wallet returned.
pub fn verify_payload(
    public_key: &[u8; 32],
    payload: &Payload<'_>,
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    verify_ed25519(NAME, public_key, &payload.hash()?, signature)
}

/// NEP-413 with a fixed recipient.
#[derive(Debug, Clone)]
pub struct NearNep413 {
    recipient: String,
}

impl NearNep413 {
    /// The standard with a recipient of the network's choosing (e.g. its chain id).
    pub fn with_recipient(recipient: impl Into<String>) -> NearNep413 {
        NearNep413 {
            recipient: recipient.into(),
        }
    }

    /// The recipient signatures must name.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// The nonce [`Authenticator::sign`] picks: SHA-256 of the message, so signing is deterministic (replay is
    /// stopped by the transaction nonce inside the message, not by this one).
    pub fn deterministic_nonce(message: &[u8]) -> [u8; 32] {
        Sha256::digest(message).into()
    }
}

impl Default for NearNep413 {
    fn default() -> NearNep413 {
        NearNep413::with_recipient(DEFAULT_RECIPIENT)
    }
}

/// The parts of a `near_nep413` signature field: `signature (64) ‖ nonce (32) [‖ callbackUrl]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureField<'a> {
    /// The ed25519 signature over the payload hash.
    pub signature: &'a [u8; 64],
    /// The nonce the wallet put in the payload.
    pub nonce: &'a [u8; 32],
    /// The callback URL the wallet put in the payload, if any.
    pub callback_url: Option<&'a str>,
}

impl<'a> SignatureField<'a> {
    /// Split a signature field into its parts.
    pub fn parse(field: &'a [u8]) -> Result<SignatureField<'a>, VerifyError> {
        if field.len() < 96 {
            return Err(VerifyError::SignatureLength {
                standard: NAME,
                expected: "at least 96 (signature ‖ nonce [‖ callbackUrl])",
                actual: field.len(),
            });
        }
        let (signature, rest) = field.split_at(64);
        let (nonce, callback) = rest.split_at(32);
        // The lengths were checked above, so these conversions cannot fail; map anyway rather than unwrap.
        let malformed = |what: &str| VerifyError::Malformed {
            standard: NAME,
            reason: format!("{what} has the wrong length"),
        };
        let signature = signature.try_into().map_err(|_| malformed("signature"))?;
        let nonce = nonce.try_into().map_err(|_| malformed("nonce"))?;
        let callback_url = if callback.is_empty() {
            None
        } else {
            Some(
                std::str::from_utf8(callback).map_err(|e| VerifyError::Malformed {
                    standard: NAME,
                    reason: format!("callbackUrl (bytes 96..) is not UTF-8: {e}"),
                })?,
            )
        };
        Ok(SignatureField {
            signature,
            nonce,
            callback_url,
        })
    }

    /// The field's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let callback = self.callback_url.unwrap_or("");
        let mut out = Vec::with_capacity(96 + callback.len());
        out.extend_from_slice(self.signature);
        out.extend_from_slice(self.nonce);
        out.extend_from_slice(callback.as_bytes());
        out
    }
}

impl Authenticator for NearNep413 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn key_type(&self) -> KeyType {
        KeyType::Ed25519
    }

    fn verify(&self, sender: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        let key = sender_key(NAME, sender)?;
        let field = SignatureField::parse(signature)?;
        let message = std::str::from_utf8(message).map_err(|e| VerifyError::Malformed {
            standard: NAME,
            reason: format!("NEP-413 signs text, and the message is not UTF-8: {e}"),
        })?;
        let payload = Payload {
            message,
            nonce: field.nonce,
            recipient: &self.recipient,
            callback_url: field.callback_url,
        };
        verify_payload(key, &payload, field.signature)
    }

    fn identifier(&self, sender: &[u8]) -> Result<String, AuthError> {
        identifier_in(NAME, AddressFormat::Hex, sender)
    }

    fn parse_identity(&self, identity: &str) -> Result<Vec<u8>, AuthError> {
        parse_key_identity(NAME, identity)
    }

    fn sender_for(&self, key: &PublicKey) -> Result<Vec<u8>, AuthError> {
        sender_key_for(NAME, key)
    }

    fn sign(&self, key: &SecretKey, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        let text = std::str::from_utf8(message).map_err(|e| {
            AuthError::Verify(VerifyError::Malformed {
                standard: NAME,
                reason: format!("NEP-413 signs text, and the message is not UTF-8: {e}"),
            })
        })?;
        let nonce = NearNep413::deterministic_nonce(message);
        let payload = Payload {
            message: text,
            nonce: &nonce,
            recipient: &self.recipient,
            callback_url: None,
        };
        let signature = sign_raw(NAME, key, &payload.hash()?)?;
        Ok(SignatureField {
            signature: &signature,
            nonce: &nonce,
            callback_url: None,
        }
        .encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key behind NEAR's published vectors (near-api-rs, `api/src/signer/mod.rs`, `nep_413_tests`): the seed
    /// phrase "fatal edge jacket cash hard pass gallery fabric whisper size rain biology" at NEAR's default path
    /// m/44'/397'/0' (BIP-39 seed, SLIP-10 ed25519 derivation) gives this ed25519 seed and public key.
    const NEAR_SEED: &str = "70f231b0004cbef38cfeac8fac4517356f38bf9fb395ab2c3b2f74f5210604b3";
    const NEAR_PUBLIC: &str = "151848b75252e8406857a3bffa3cb4bf0451e62bb1774f20906329f0614d5a3e";
    /// base64 "KNV0cOpvJ50D5vfF9pqWom8wo2sliQ4W+Wa7uZ3Uk6Y=" from the same tests.
    const NEAR_NONCE: &str = "28d57470ea6f279d03e6f7c5f69a96a26f30a36b25890e16f966bbb99dd493a6";
    /// base64 "NnJgPU1Ql7ccRTITIoOVsIfElmvH1RV7QAT4a9Vh6ShCOnjIzRwxqX54JzoQ/nK02p7VBMI2vJn48rpImIJwAw=="
    /// (`without_callback_url`, made with the Sender / Meteor wallets).
    const NEAR_SIG_NO_CALLBACK: &str =
        "3672603d4d5097b71c453213228395b087c4966bc7d5157b4004f86bd561e928423a78c8cd1c31a97e78273a10fe72b4da9ed504c236bc99f8f2ba4898827003";
    /// base64 "zzZQ/GwAjrZVrTIFlvmmQbDQHllfzrr8urVWHaRt5cPfcXaCSZo35c5LDpPpTKivR6BxLyb3lcPM0FfCW5lcBQ=="
    /// (`with_callback_url`, callbackUrl "http://localhost:3000", made with MyNearWallet).
    const NEAR_SIG_CALLBACK: &str =
        "cf3650fc6c008eb655ad320596f9a641b0d01e595fcebafcbab5561da46de5c3df717682499a37e5ce4b0e93e94ca8af47a0712f26f795c3ccd057c25b995c05";

    fn unhex<const N: usize>(text: &str) -> [u8; N] {
        let cleaned: String = text.split_whitespace().collect();
        hex::decode(cleaned).unwrap().try_into().unwrap()
    }

    #[test]
    fn near_api_rs_published_vectors_verify_with_and_without_callback_url() {
        let key =
            SecretKey::from_bytes(KeyType::Ed25519, &hex::decode(NEAR_SEED).unwrap()).unwrap();
        assert_eq!(key.public_key().to_hex(), NEAR_PUBLIC);
        let public: [u8; 32] = unhex(NEAR_PUBLIC);
        let nonce: [u8; 32] = unhex(NEAR_NONCE);
        for (callback_url, sig) in [
            (None, NEAR_SIG_NO_CALLBACK),
            (Some("http://localhost:3000"), NEAR_SIG_CALLBACK),
        ] {
            let payload = Payload {
                message: "Hello NEAR!",
                nonce: &nonce,
                recipient: "example.near",
                callback_url,
            };
            let sig: [u8; 64] = unhex(sig);
            assert_eq!(verify_payload(&public, &payload, &sig), Ok(()));
            // ed25519 is deterministic, so the key reproduces the wallet's signature exactly.
            assert_eq!(sign_raw(NAME, &key, &payload.hash().unwrap()).unwrap(), sig);
        }
    }

    #[test]
    fn published_vector_verifies_through_the_authenticator_configured_for_its_recipient() {
        let std = NearNep413::with_recipient("example.near");
        let public: [u8; 32] = unhex(NEAR_PUBLIC);
        let mut field = unhex::<64>(NEAR_SIG_CALLBACK).to_vec();
        field.extend_from_slice(&unhex::<32>(NEAR_NONCE));
        field.extend_from_slice(b"http://localhost:3000");
        assert_eq!(std.verify(&public, b"Hello NEAR!", &field), Ok(()));
        assert_eq!(std.identifier(&public).unwrap(), NEAR_PUBLIC);
        // The default recipient is "dstorage": a signature made for example.near does not verify there.
        assert!(matches!(
            NearNep413::default().verify(&public, b"Hello NEAR!", &field),
            Err(VerifyError::BadSignature { .. })
        ));
    }

    #[test]
    fn nep413_worked_example_serializes_to_the_standards_bytes() {
        // NEP-413's example: message "hi", nonce 0..31, recipient "myapp.com", callbackUrl "myapp.com/callback".
        let mut bytes = vec![0x9d, 0x01, 0x00, 0x80, 2, 0, 0, 0, b'h', b'i'];
        bytes.extend(0u8..32);
        bytes.extend([9, 0, 0, 0]);
        bytes.extend(b"myapp.com");
        bytes.extend([1, 18, 0, 0, 0]);
        bytes.extend(b"myapp.com/callback");
        let nonce: [u8; 32] = std::array::from_fn(|i| i as u8);
        let payload = Payload {
            message: "hi",
            nonce: &nonce,
            recipient: "myapp.com",
            callback_url: Some("myapp.com/callback"),
        };
        assert_eq!(
            payload.hash().unwrap(),
            <[u8; 32]>::from(Sha256::digest(&bytes))
        );
    }

    #[test]
    fn sign_is_deterministic_and_carries_signature_then_nonce() {
        let key = SecretKey::generate(KeyType::Ed25519);
        let sender = NearNep413::default().sender_for(&key.public_key()).unwrap();
        let a = NearNep413::default().sign(&key, b"message").unwrap();
        let b = NearNep413::default().sign(&key, b"message").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 96);
        assert_eq!(&a[64..], &Sha256::digest(b"message")[..]);
        assert_eq!(
            NearNep413::default().verify(&sender, b"message", &a),
            Ok(())
        );
    }

    #[test]
    fn non_utf8_messages_and_callback_urls_are_malformed() {
        let key = SecretKey::generate(KeyType::Ed25519);
        let sender = key.public_key().to_bytes();
        assert!(NearNep413::default().sign(&key, &[0xff]).is_err());
        let mut field = NearNep413::default().sign(&key, b"m").unwrap();
        assert!(matches!(
            NearNep413::default().verify(&sender, &[0xff, 0xfe], &field),
            Err(VerifyError::Malformed { .. })
        ));
        field.push(0xff);
        assert!(matches!(
            NearNep413::default().verify(&sender, b"m", &field),
            Err(VerifyError::Malformed { .. })
        ));
    }
}
