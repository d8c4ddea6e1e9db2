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

impl Caller {
    /// The caller a verified signature names: `sender` is the signer as its standard spells it (the envelope's
    /// sender bytes). The key is the sender itself where that is a public key (ed25519, NEAR, Solana: 32 bytes;
    /// secp256k1_sha256: the 33-byte compressed key); `None` for Ethereum, whose sender is an address. One rule
    /// for transactions and signed reads, so `@caller_key` means the same in both.
    pub fn from_sender(identity: &str, standard: &str, sender: &[u8]) -> Caller {
        Caller {
            identity: identity.to_owned(),
            standard: standard.to_owned(),
            key: (standard != "eth_personal_sign").then(|| sender.to_vec()),
        }
    }
}
