//! Who is asking: the authenticated caller a write, an action or a signed read runs as.
//!
//! A transaction's caller comes from its verified envelope; a signed read's from its verified read signature
//! (`docs/api.md`). Both come from `dstorage_auth::Registry::verify_caller`, so an action's access rule and its
//! `@caller...` values are decided the same way whether it writes in a block or reads on one node.

use serde::{Deserialize, Serialize};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The canonical identity string (`docs/auth.md`): what ownership, nonces and `@caller` see.
    pub identity: String,
    /// The signature standard the caller signed with (`@caller_standard`).
    pub standard: String,
    /// The caller's public key bytes (`@caller_key`), as the signature's verification gives it
    /// (`dstorage_auth::Registry::verify_caller`, the one place this is decided): the sender bytes where they
    /// are the key (ed25519, NEAR, Solana: 32 bytes; secp256k1_sha256: the 33-byte compressed key) and, for
    /// Ethereum, whose sender is an address, the key recovered from the signature as a 33-byte compressed
    /// secp256k1 point. `None` only for a caller built without a signature (tests, tools).
    pub key: Option<Vec<u8>>,
}
