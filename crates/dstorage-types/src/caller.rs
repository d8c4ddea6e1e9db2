//! Who is asking: the authenticated caller a write, an action or a signed read runs as.
//!
//! A transaction's caller comes from its verified envelope; a signed read's from its verified read signature
//! (`docs/api.md`). Both paths produce the same value, so an action's access rule and its `@caller...` values
//! are decided the same way whether it writes in a block or reads on one node.

use serde::{Deserialize, Serialize};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The canonical identity string (`docs/auth.md`): what ownership, nonces and `@caller` see.
    pub identity: String,
    /// The signature standard the caller signed with (`@caller_standard`).
    pub standard: String,
    /// The caller's public key bytes where the standard gives one (recovered for Ethereum), else `None`
    /// (`@caller_key`).
    pub key: Option<Vec<u8>>,
}
