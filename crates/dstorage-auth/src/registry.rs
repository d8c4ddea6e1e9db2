//! The authenticator trait and the registry that maps standard names to authenticators (the registry of the
//! standards this crate ships is built in `standards`, which uses this module, not the other way round).

use std::collections::{BTreeMap, BTreeSet};

use dstorage_types::caller::Caller;
use dstorage_types::identity::KeyType;

use crate::error::{AuthError, VerifyError};
use crate::keys::{PublicKey, SecretKey};

/// One signature standard: how a wallet signs, how a node verifies, and what identity the signer gets.
///
/// Implementations must be deterministic and must not panic on any input: every validator runs `verify` on every
/// transaction, and all of them must accept exactly the same set.
pub trait Authenticator: Send + Sync {
    /// The standard's name as transactions carry it, e.g. `eth_personal_sign`.
    fn name(&self) -> &'static str;

    /// The key type the standard signs with.
    fn key_type(&self) -> KeyType;

    /// Check `signature` over `message` by the signer that `sender` names.
    ///
    /// `sender` is the bytes a transaction carries to name its signer (eth: 20-byte address; ed25519/nep413/solana:
    /// 32-byte key; secp256k1_sha256: 33-byte compressed key).
    fn verify(&self, sender: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError>;

    /// [`Authenticator::verify`], returning the signer's public key: what `@caller_key` is in action SQL
    /// (docs/auth.md). Where the sender is the key (ed25519, NEAR, Solana: 32 bytes; secp256k1_sha256: the
    /// 33-byte compressed key) it is the sender; standards whose sender is an address (Ethereum) override this
    /// to return the key recovered from the signature, as a 33-byte compressed secp256k1 point.
    fn verify_signer_key(
        &self,
        sender: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<Vec<u8>, VerifyError> {
        self.verify(sender, message, signature)?;
        Ok(sender.to_vec())
    }

    /// The canonical identity string of `sender` (the caller identity in SQL).
    fn identifier(&self, sender: &[u8]) -> Result<String, AuthError>;

    /// The sender bytes that an identity string names (the inverse of [`Authenticator::identifier`]). Accepts
    /// exactly the forms documented for the standard in docs/auth.md.
    fn parse_identity(&self, identity: &str) -> Result<Vec<u8>, AuthError>;

    /// The sender bytes for a public key under this standard.
    fn sender_for(&self, key: &PublicKey) -> Result<Vec<u8>, AuthError>;

    /// Sign `message` the way a wallet of this standard would; returns the signature field.
    fn sign(&self, key: &SecretKey, message: &[u8]) -> Result<Vec<u8>, AuthError>;

    /// The canonical identity that `text` names under this standard (`text` itself, or the identity of the
    /// sender bytes it spells in another accepted form or case). Standards whose identity is a hash of the
    /// sender, which `parse_identity` cannot undo, override this.
    fn canonical_identity(&self, text: &str) -> Result<String, AuthError> {
        self.identifier(&self.parse_identity(text)?)
    }

    /// Check a signature against an identity string rather than sender bytes (what `dstorage key verify` does);
    /// returns the canonical identity. Standards whose identity is a hash of a key that the signature does not
    /// carry override this.
    fn verify_identity(
        &self,
        identity: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<String, AuthError> {
        let sender = self.parse_identity(identity)?;
        self.verify(&sender, message, signature)?;
        self.identifier(&sender)
    }
}

/// What a client puts in a transaction: the sender bytes and the signature field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The sender bytes (see [`Authenticator::verify`]).
    pub sender: Vec<u8>,
    /// The signature field, in the standard's format.
    pub signature: Vec<u8>,
}

/// Longer than any identity a standard produces (a bech32 address with a long prefix is under 100 bytes).
const MAX_IDENTITY_LEN: usize = 256;

/// The standards a network accepts, by name. Ordered (a `BTreeMap`), so listings are deterministic.
pub struct Registry {
    standards: BTreeMap<&'static str, Box<dyn Authenticator>>,
}

impl Registry {
    /// A registry with no standards.
    pub fn empty() -> Registry {
        Registry {
            standards: BTreeMap::new(),
        }
    }

    /// Add a standard, replacing (and returning) any registered under the same name; this is how a network
    /// configures one (e.g. a different bech32 prefix).
    pub fn register(
        &mut self,
        authenticator: impl Authenticator + 'static,
    ) -> Option<Box<dyn Authenticator>> {
        self.standards
            .insert(authenticator.name(), Box::new(authenticator))
    }

    /// The authenticator for a standard name.
    pub fn get(&self, name: &str) -> Result<&dyn Authenticator, AuthError> {
        self.standards
            .get(name)
            .map(|a| a.as_ref())
            .ok_or_else(|| AuthError::UnknownStandard {
                name: name.to_owned(),
                known: self.names().join(", "),
            })
    }

    /// The registered standard names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.standards.keys().copied().collect()
    }

    /// Verify a signature and return the signer's canonical identity.
    pub fn verify(
        &self,
        standard: &str,
        sender: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<String, AuthError> {
        let authenticator = self.get(standard)?;
        authenticator.verify(sender, message, signature)?;
        authenticator.identifier(sender)
    }

    /// Verify a signature and return the caller it authenticates: canonical identity, standard and public key
    /// ([`Authenticator::verify_signer_key`]). Transactions and signed reads both get their caller here, so
    /// `@caller...` means the same in a block and in a read.
    pub fn verify_caller(
        &self,
        standard: &str,
        sender: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<Caller, AuthError> {
        let authenticator = self.get(standard)?;
        let key = authenticator.verify_signer_key(sender, message, signature)?;
        let identity = authenticator.identifier(sender)?;
        Ok(Caller {
            identity,
            standard: authenticator.name().to_owned(),
            key: Some(key),
        })
    }

    /// Verify a signature against an identity string; returns the canonical identity.
    pub fn verify_identity(
        &self,
        standard: &str,
        identity: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<String, AuthError> {
        self.get(standard)?
            .verify_identity(identity, message, signature)
    }

    /// Sign `message` under `standard`: the sender bytes and signature field a transaction carries.
    pub fn sign(
        &self,
        standard: &str,
        key: &SecretKey,
        message: &[u8],
    ) -> Result<Signed, AuthError> {
        let authenticator = self.get(standard)?;
        let sender = authenticator.sender_for(&key.public_key())?;
        let signature = authenticator.sign(key, message)?;
        Ok(Signed { sender, signature })
    }

    /// The sender bytes for a public key under `standard`.
    pub fn sender_for(&self, standard: &str, key: &PublicKey) -> Result<Vec<u8>, AuthError> {
        self.get(standard)?.sender_for(key)
    }

    /// The canonical identity that `text` names, for looking up what is stored under an identity (its nonce,
    /// the schemas it owns).
    ///
    /// An identity has one spelling, the one a standard's `identifier` produces, and state is kept under that
    /// spelling only. `text` in it is returned as it is. A spelling that differs from it only in letter case (a
    /// lower-case Ethereum address, an upper-case hex key: wallets and tools print both) names the same signer
    /// and is answered with the canonical spelling. Any other spelling a standard reads (NEAR's
    /// `ed25519:<base58>`, a secp256k1 public key for a bech32 address) is refused with the canonical one in
    /// the message: it could name an identity under several standards (a key's hex identity under `ed25519` and
    /// its base58 one under `solana_sign_message` are different identities), so guessing could answer for the
    /// wrong one. A string no standard reads is refused with each standard's reason.
    pub fn canonical_identity(&self, text: &str) -> Result<String, AuthError> {
        // Base58 decoding takes time quadratic in the length; no identity is near this long.
        if text.len() > MAX_IDENTITY_LEN {
            return Err(AuthError::NotAnIdentity {
                identity: text.chars().take(32).chain("…".chars()).collect(),
                reasons: format!(
                    "{} bytes; no identity is longer than {MAX_IDENTITY_LEN}",
                    text.len()
                ),
            });
        }
        let mut reasons = Vec::new();
        let mut recased = BTreeSet::new();
        let mut other = BTreeSet::new();
        for (name, authenticator) in &self.standards {
            let canonical = match authenticator.canonical_identity(text) {
                Ok(c) => c,
                Err(e) => {
                    reasons.push(e.to_string());
                    continue;
                }
            };
            if canonical == text {
                return Ok(canonical);
            }
            if canonical.eq_ignore_ascii_case(text) {
                recased.insert(canonical);
            } else {
                other.insert(format!("{canonical} ({name})"));
            }
        }
        if recased.len() == 1 {
            if let Some(canonical) = recased.pop_first() {
                return Ok(canonical);
            }
        }
        if recased.is_empty() && other.is_empty() {
            return Err(AuthError::NotAnIdentity {
                identity: text.to_owned(),
                reasons: reasons.join("; "),
            });
        }
        Err(AuthError::NonCanonicalIdentity {
            identity: text.to_owned(),
            canonical: recased
                .into_iter()
                .chain(other)
                .collect::<Vec<_>>()
                .join(" or "),
        })
    }

    /// The canonical identity of a public key under `standard`.
    pub fn identity_for(&self, standard: &str, key: &PublicKey) -> Result<String, AuthError> {
        let authenticator = self.get(standard)?;
        authenticator.identifier(&authenticator.sender_for(key)?)
    }
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::with_default_standards()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("standards", &self.names())
            .finish()
    }
}

/// The error for a key of the wrong type for `standard`.
pub(crate) fn key_type_mismatch(
    standard: &'static str,
    expected: KeyType,
    actual: KeyType,
) -> AuthError {
    AuthError::KeyTypeMismatch {
        standard,
        expected,
        actual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_identity_keeps_the_canonical_spelling_and_recases_the_others() {
        let r = Registry::with_default_standards();
        for key_type in KeyType::ALL {
            let key = SecretKey::generate(key_type).public_key();
            for standard in r.names() {
                let Ok(id) = r.identity_for(standard, &key) else {
                    continue;
                };
                assert_eq!(r.canonical_identity(&id).unwrap(), id, "{standard}");
                // Bech32 and hex identities may be spelled in either case; base58 is case-sensitive.
                if standard != "solana_sign_message" {
                    for spelling in [id.to_lowercase(), id.to_uppercase().replace("0X", "0x")] {
                        assert_eq!(
                            r.canonical_identity(&spelling).unwrap(),
                            id,
                            "{standard}: {spelling}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn canonical_identity_refuses_other_spellings_naming_the_canonical_one() {
        let r = Registry::with_default_standards();
        // RFC 8032 test 1's public key: hex under ed25519, base58 under solana_sign_message.
        let hex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let key = PublicKey::from_hex(KeyType::Ed25519, hex).unwrap();
        let base58 = r.identity_for("solana_sign_message", &key).unwrap();
        assert_eq!(r.canonical_identity(&base58).unwrap(), base58);
        let near = format!("ed25519:{base58}");
        match r.canonical_identity(&near) {
            Err(AuthError::NonCanonicalIdentity {
                identity,
                canonical,
            }) => {
                assert_eq!(identity, near);
                assert!(
                    canonical.contains(&format!("{hex} (ed25519)")),
                    "{canonical}"
                );
                assert!(
                    canonical.contains(&format!("{base58} (solana_sign_message)")),
                    "{canonical}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A secp256k1 public key is not the bech32 address it hashes to.
        let secp = SecretKey::generate(KeyType::Secp256k1).public_key();
        let address = r.identity_for("secp256k1_sha256", &secp).unwrap();
        let err = r.canonical_identity(&secp.to_hex()).unwrap_err();
        assert!(err.to_string().contains(&address), "{err}");
    }

    #[test]
    fn canonical_identity_refuses_what_no_standard_reads_with_each_reason() {
        let r = Registry::with_default_standards();
        for text in [
            "not-an-identity",
            "",
            "0x1234",
            // One letter's case changed: the EIP-55 checksum no longer holds.
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65C23",
        ] {
            match r.canonical_identity(text) {
                Err(e @ AuthError::NotAnIdentity { .. }) => {
                    let msg = e.to_string();
                    for standard in r.names() {
                        assert!(msg.contains(standard), "{text}: {msg}");
                    }
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn canonical_identity_refuses_an_overlong_text_before_decoding_it() {
        let long = "1".repeat(100_000);
        match Registry::with_default_standards().canonical_identity(&long) {
            Err(AuthError::NotAnIdentity { identity, reasons }) => {
                assert!(identity.chars().count() <= 33, "{identity}");
                assert!(reasons.contains("100000 bytes"), "{reasons}");
            }
            other => panic!("{other:?}"),
        }
    }
}
