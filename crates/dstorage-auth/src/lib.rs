//! Verify who signed what: key types, signature standards, address formats and key files.
//!
//! ```
//! use dstorage_auth::{sign, Registry, SecretKey};
//! use dstorage_types::identity::KeyType;
//!
//! let key = SecretKey::generate(KeyType::Secp256k1);
//! let signed = sign("eth_personal_sign", &key, b"hello").unwrap();
//! let registry = Registry::with_default_standards();
//! let identity = registry
//!     .verify("eth_personal_sign", &signed.sender, b"hello", &signed.signature)
//!     .unwrap();
//! assert!(identity.starts_with("0x"));
//! ```

mod curves;
pub mod error;
pub mod keys;
pub mod registry;
pub mod standards;

use std::sync::LazyLock;

pub use dstorage_types::identity::KeyType;
pub use error::{AuthError, VerifyError};
pub use keys::{PublicKey, SecretKey};
pub use registry::{Authenticator, Registry, Signed};

/// The default registry, built once, for the free functions below.
static DEFAULT_REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::with_default_standards);

/// The registry with every standard in its default configuration (shared, built once).
pub fn default_registry() -> &'static Registry {
    &DEFAULT_REGISTRY
}

/// Sign `message` under `standard` (default configuration): the sender bytes and signature field a client puts in
/// a transaction.
pub fn sign(standard: &str, key: &SecretKey, message: &[u8]) -> Result<Signed, AuthError> {
    DEFAULT_REGISTRY.sign(standard, key, message)
}

/// The sender bytes for `key` under `standard` (default configuration). Errors for an unknown standard or a key of
/// the wrong type.
pub fn sender_for(standard: &str, key: &PublicKey) -> Result<Vec<u8>, AuthError> {
    DEFAULT_REGISTRY.sender_for(standard, key)
}
