//! The authenticator trait and the registry that maps standard names to authenticators.

use std::collections::BTreeMap;

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

    /// The canonical identity string of `sender` (the caller identity in SQL).
    fn identifier(&self, sender: &[u8]) -> Result<String, AuthError>;

    /// The sender bytes that an identity string names (the inverse of [`Authenticator::identifier`]). Accepts
    /// exactly the forms documented for the standard in docs/auth.md.
    fn parse_identity(&self, identity: &str) -> Result<Vec<u8>, AuthError>;

    /// The sender bytes for a public key under this standard.
    fn sender_for(&self, key: &PublicKey) -> Result<Vec<u8>, AuthError>;

    /// Sign `message` the way a wallet of this standard would; returns the signature field.
    fn sign(&self, key: &SecretKey, message: &[u8]) -> Result<Vec<u8>, AuthError>;

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

    /// A registry with every standard this crate ships, in its default configuration.
    pub fn with_default_standards() -> Registry {
        let mut registry = Registry::empty();
        crate::standards::register_defaults(&mut registry);
        registry
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
