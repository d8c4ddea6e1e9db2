//! Identities: who signed a transaction or a read request.
//!
//! The signature standards themselves live in `dstorage-auth`; this module holds the small vocabulary every crate
//! shares: the key type and the canonical identity string that becomes `@caller` in SQL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The curve a key lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// secp256k1 (Ethereum, Bitcoin, Cosmos).
    Secp256k1,
    /// ed25519 (NEAR, Solana).
    Ed25519,
}

impl KeyType {
    /// Every key type, in a fixed order.
    pub const ALL: [KeyType; 2] = [KeyType::Secp256k1, KeyType::Ed25519];

    /// The lowercase name used in key files, the CLI and errors.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyType::Secp256k1 => "secp256k1",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key type name that is not `secp256k1` or `ed25519`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key type {name:?}; expected \"secp256k1\" or \"ed25519\"")]
#[non_exhaustive]
pub struct ParseKeyTypeError {
    /// The name that was given.
    pub name: String,
}

impl FromStr for KeyType {
    type Err = ParseKeyTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Exact, lowercase only: key files and transactions must have one spelling per value.
        KeyType::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseKeyTypeError { name: s.to_owned() })
    }
}

/// The canonical identity of a signer: the string a standard derives from the sender bytes (an EIP-55 address, a
/// bech32 address, a hex or base58 public key). It is what SQL sees as `@caller` and what owners and grants name.
///
/// Only `dstorage-auth` should build one from signature checks; other crates carry and compare it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Identity(String);

impl Identity {
    /// Wrap a canonical identity string (as returned by an authenticator's `identifier`).
    pub fn new(canonical: impl Into<String>) -> Self {
        Identity(canonical.into())
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identity as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_type_names_round_trip_through_display_and_from_str() {
        for k in KeyType::ALL {
            assert_eq!(k.to_string().parse::<KeyType>(), Ok(k));
        }
        assert_eq!(KeyType::Secp256k1.to_string(), "secp256k1");
        assert_eq!(KeyType::Ed25519.to_string(), "ed25519");
    }

    #[test]
    fn key_type_parsing_rejects_other_spellings_and_names_them() {
        let err = "Ed25519".parse::<KeyType>().unwrap_err();
        assert_eq!(err.name, "Ed25519");
        assert_eq!(
            err.to_string(),
            "unknown key type \"Ed25519\"; expected \"secp256k1\" or \"ed25519\""
        );
        assert!("".parse::<KeyType>().is_err());
        assert!("k256".parse::<KeyType>().is_err());
    }

    #[test]
    fn key_type_serializes_as_its_lowercase_name() {
        assert_eq!(
            serde_json::to_string(&KeyType::Secp256k1).unwrap(),
            "\"secp256k1\""
        );
        assert_eq!(
            serde_json::from_str::<KeyType>("\"ed25519\"").unwrap(),
            KeyType::Ed25519
        );
        assert!(serde_json::from_str::<KeyType>("\"ED25519\"").is_err());
    }

    #[test]
    fn identity_serializes_as_a_plain_string() {
        let id = Identity::new("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"0x2c7536E3605D9C16a7a3D7b1898e529396a65c23\"");
        assert_eq!(serde_json::from_str::<Identity>(&json).unwrap(), id);
        assert_eq!(id.to_string(), id.as_str());
    }
}
