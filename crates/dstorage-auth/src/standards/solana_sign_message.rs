//! `solana_sign_message`: what Solana wallets' `signMessage` (Phantom, Solflare, wallet-adapter) produce.
//!
//! Signed bytes: the message itself (wallets sign the raw bytes; no off-chain-message header). Signature: 64 bytes.
//! Sender: the 32-byte public key. Identity: the base58 public key, i.e. the Solana address.
//!
//! Cryptographically this is [`super::ed25519`] with base58 identities; it is a separate standard so that a
//! Solana user's identity is their Solana address whatever the network's `ed25519` format is.

use dstorage_types::identity::KeyType;

use super::ed25519::{
    identifier_in, parse_key_identity, sender_key, sender_key_for, sign_raw, signature_bytes,
    AddressFormat,
};
use crate::curves::verify_ed25519;
use crate::error::{AuthError, VerifyError};
use crate::keys::{PublicKey, SecretKey};
use crate::registry::Authenticator;

/// The standard's name.
pub const NAME: &str = "solana_sign_message";

/// Solana wallets' signMessage.
#[derive(Debug, Clone, Copy, Default)]
pub struct SolanaSignMessage;

impl Authenticator for SolanaSignMessage {
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
        identifier_in(NAME, AddressFormat::Base58, sender)
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

    #[test]
    fn identity_is_the_base58_address_of_the_key() {
        // The System Program's address is 32 zero bytes, spelled with 32 ones in base58.
        assert_eq!(
            SolanaSignMessage.identifier(&[0u8; 32]).unwrap(),
            "11111111111111111111111111111111"
        );
        // RFC 8032 test 1's public key as a Solana address.
        let key = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap();
        let id = SolanaSignMessage.identifier(&key).unwrap();
        assert_eq!(id, "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z");
        assert_eq!(SolanaSignMessage.parse_identity(&id).unwrap(), key);
    }

    #[test]
    fn signs_the_raw_message_so_plain_ed25519_verifies_it() {
        let key = SecretKey::generate(KeyType::Ed25519);
        let sender = SolanaSignMessage.sender_for(&key.public_key()).unwrap();
        let sig = SolanaSignMessage
            .sign(&key, b"Sign in to dstorage")
            .unwrap();
        assert_eq!(
            SolanaSignMessage.verify(&sender, b"Sign in to dstorage", &sig),
            Ok(())
        );
        let plain = super::super::ed25519::Ed25519::default();
        assert_eq!(plain.verify(&sender, b"Sign in to dstorage", &sig), Ok(()));
    }
}
