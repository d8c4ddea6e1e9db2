//! The signature standards, one module each. Adding one = one module here + one line in
//! [`Registry::with_default_standards`].

pub mod ed25519;
pub mod eth_personal_sign;
pub mod near_nep413;
pub mod secp256k1_sha256;
pub mod solana_sign_message;

use crate::registry::Registry;

impl Registry {
    /// A registry with every standard this crate ships, in its default configuration.
    pub fn with_default_standards() -> Registry {
        let mut registry = Registry::empty();
        registry.register(eth_personal_sign::EthPersonalSign);
        registry.register(secp256k1_sha256::Secp256k1Sha256::default());
        registry.register(ed25519::Ed25519::default());
        registry.register(near_nep413::NearNep413::default());
        registry.register(solana_sign_message::SolanaSignMessage);
        registry
    }
}
