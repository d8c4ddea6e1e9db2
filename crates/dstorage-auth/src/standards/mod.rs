//! The signature standards, one module each. Adding one = one module here + one line in [`register_defaults`].

pub mod ed25519;
pub mod eth_personal_sign;
pub mod near_nep413;
pub mod secp256k1_sha256;
pub mod solana_sign_message;

use crate::registry::Registry;

/// Register every standard in its default configuration.
pub(crate) fn register_defaults(registry: &mut Registry) {
    registry.register(eth_personal_sign::EthPersonalSign);
    registry.register(secp256k1_sha256::Secp256k1Sha256::default());
    registry.register(ed25519::Ed25519::default());
    registry.register(near_nep413::NearNep413::default());
    registry.register(solana_sign_message::SolanaSignMessage);
}
