//! Errors: why a signature, an identity, a key or a key file was refused.

use std::path::PathBuf;

use dstorage_types::identity::KeyType;

/// Why a signature was refused. Every variant names the standard, so the reason can be shown to the sender as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature has the wrong number of bytes.
    #[error("{standard}: signature is {actual} bytes; expected {expected}")]
    SignatureLength {
        /// The standard that refused it.
        standard: &'static str,
        /// What the standard expects, e.g. "65" or "at least 96".
        expected: &'static str,
        /// The length given.
        actual: usize,
    },
    /// The sender field has the wrong number of bytes for this standard.
    #[error("{standard}: sender is {actual} bytes; expected {expected} ({what})")]
    SenderLength {
        /// The standard that refused it.
        standard: &'static str,
        /// The expected length.
        expected: usize,
        /// The length given.
        actual: usize,
        /// What the sender bytes are for this standard.
        what: &'static str,
    },
    /// An Ethereum-style recovery byte other than 27, 28, 0 or 1.
    #[error("{standard}: recovery byte v = {v}; expected 27, 28, 0 or 1")]
    RecoveryId {
        /// The standard that refused it.
        standard: &'static str,
        /// The byte given.
        v: u8,
    },
    /// An ECDSA signature whose s is above n/2: the network accepts only the low-S form so that every signature
    /// has exactly one encoding.
    #[error(
        "{standard}: s = {s} is above n/2 (high-S); only low-S signatures are accepted, use n - s"
    )]
    HighS {
        /// The standard that refused it.
        standard: &'static str,
        /// s in hex.
        s: String,
    },
    /// An ECDSA r or s that is zero or not below the curve order.
    #[error("{standard}: {which} is zero or not below the secp256k1 group order")]
    ScalarOutOfRange {
        /// The standard that refused it.
        standard: &'static str,
        /// "r" or "s".
        which: &'static str,
    },
    /// The ed25519 scalar S is not below the group order ℓ (a malleable encoding).
    #[error("{standard}: S is not below the ed25519 group order (non-canonical, malleable)")]
    NonCanonicalS {
        /// The standard that refused it.
        standard: &'static str,
    },
    /// The public key bytes are not a point on the curve.
    #[error("{standard}: public key {key} is not a valid {key_type} point")]
    InvalidPublicKey {
        /// The standard that refused it.
        standard: &'static str,
        /// The key's type.
        key_type: KeyType,
        /// The key in hex.
        key: String,
    },
    /// An ed25519 public key whose y coordinate is encoded as a value ≥ p (another encoding of a valid key).
    #[error("{standard}: public key {key} is not canonically encoded (y ≥ 2^255 - 19)")]
    NonCanonicalPublicKey {
        /// The standard that refused it.
        standard: &'static str,
        /// The key in hex.
        key: String,
    },
    /// An ed25519 public key of small order, for which signatures can verify for many messages.
    #[error("{standard}: public key {key} has small order (weak key)")]
    SmallOrderPublicKey {
        /// The standard that refused it.
        standard: &'static str,
        /// The key in hex.
        key: String,
    },
    /// The ed25519 R component is not a valid point.
    #[error("{standard}: signature's R = {r} is not a valid ed25519 point")]
    InvalidR {
        /// The standard that refused it.
        standard: &'static str,
        /// R in hex.
        r: String,
    },
    /// The ed25519 R component has small order.
    #[error("{standard}: signature's R = {r} has small order")]
    SmallOrderR {
        /// The standard that refused it.
        standard: &'static str,
        /// R in hex.
        r: String,
    },
    /// No public key can be recovered from this (r, s, v) for this message.
    #[error("{standard}: no public key recovers from this signature")]
    Unrecoverable {
        /// The standard that refused it.
        standard: &'static str,
    },
    /// The signature is valid, but for a different signer than the one named.
    #[error("{standard}: signature was made by {recovered}, not by {expected}")]
    SignerMismatch {
        /// The standard that refused it.
        standard: &'static str,
        /// The identity the transaction named.
        expected: String,
        /// The identity that actually signed.
        recovered: String,
    },
    /// None of the keys recoverable from an ECDSA signature has the address that was named.
    #[error("{standard}: no key recoverable from this signature has address {address}")]
    NoKeyForAddress {
        /// The standard that refused it.
        standard: &'static str,
        /// The address that was named.
        address: String,
    },
    /// The signature equation does not hold for this key and message.
    #[error("{standard}: signature does not verify for public key {key}")]
    BadSignature {
        /// The standard that refused it.
        standard: &'static str,
        /// The public key in hex.
        key: String,
    },
    /// A structural problem in the signature field (e.g. a NEP-413 callback URL that is not UTF-8).
    #[error("{standard}: malformed signature: {reason}")]
    Malformed {
        /// The standard that refused it.
        standard: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Errors from the registry, identities, signing and keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No standard of this name is registered.
    #[error("unknown signature standard {name:?}; known: {known}")]
    UnknownStandard {
        /// The name that was asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// The signature was refused.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The standard needs a different key type than the one given.
    #[error("{standard} needs a {expected} key, got a {actual} key")]
    KeyTypeMismatch {
        /// The standard.
        standard: &'static str,
        /// The key type it needs.
        expected: KeyType,
        /// The key type given.
        actual: KeyType,
    },
    /// Sender bytes that do not name a signer under this standard.
    #[error("{standard}: sender {sender} is not valid: {reason}")]
    InvalidSender {
        /// The standard.
        standard: &'static str,
        /// The sender bytes in hex.
        sender: String,
        /// What is wrong.
        reason: String,
    },
    /// An identity string that this standard does not produce.
    #[error("{standard}: identity {identity:?} is not valid: {reason}")]
    InvalidIdentity {
        /// The standard.
        standard: &'static str,
        /// The identity given.
        identity: String,
        /// What is wrong.
        reason: String,
    },
    /// A string that no registered standard reads as an identity.
    #[error("{identity:?} is not an identity under any standard: {reasons}")]
    NotAnIdentity {
        /// The string given.
        identity: String,
        /// Why each standard refused it, `; `-separated.
        reasons: String,
    },
    /// A spelling of an identity other than its one canonical spelling (and not one that differs from it only
    /// in letter case).
    #[error("{identity:?} is not how an identity is spelled; use {canonical}")]
    NonCanonicalIdentity {
        /// The string given.
        identity: String,
        /// The canonical spelling (or spellings, each with its standard, joined by " or ").
        canonical: String,
    },
    /// Key bytes that are not a valid key.
    #[error("invalid {key_type} {what}: {reason}")]
    InvalidKey {
        /// The key type.
        key_type: KeyType,
        /// "secret key" or "public key".
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A key file could not be read or written.
    #[error("key file {}: {source}", path.display())]
    KeyFileIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key file's contents are not a valid key file.
    #[error("key file {}: {reason}", path.display())]
    KeyFileFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file that others can read: refused, like ssh does, because the secret may already have leaked.
    #[error("key file {} has mode {mode:o}; it must not be readable by group or others (chmod 600 it)", path.display())]
    KeyFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}
