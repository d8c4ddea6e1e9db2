//! The app hash: one SHA-256 chain over every block's changeset, validator changes and transaction outcomes.
//!
//! `app_hash(h) = SHA-256(app_hash(h-1) ‖ changeset_hash ‖ validators_hash ‖ results_hash)`, where
//! `results_hash = SHA-256(for each tx in block order: code u32 BE ‖ cost u64 BE)` and `validators_hash` is the
//! SHA-256 of the encoded validator updates (empty input while the set does not change). Equal app hashes
//! therefore mean equal data changes *and* equal accounting of every transaction.

use sha2::{Digest, Sha256};

/// The app hash before any block: binds the chain id and the genesis app state.
pub fn genesis(chain_id: &str, app_state: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"dstorage/genesis/v1");
    h.update((chain_id.len() as u64).to_be_bytes());
    h.update(chain_id.as_bytes());
    h.update((app_state.len() as u64).to_be_bytes());
    h.update(app_state);
    h.finalize().into()
}

/// Hash of the per-transaction outcomes of a block.
pub fn results_hash(results: &[(u32, u64)]) -> [u8; 32] {
    let mut h = Sha256::new();
    for (code, cost) in results {
        h.update(code.to_be_bytes());
        h.update(cost.to_be_bytes());
    }
    h.finalize().into()
}

/// Hash of a block's validator updates, each as (public key bytes, power), in the order returned to CometBFT.
pub fn validators_hash(updates: &[(Vec<u8>, u64)]) -> [u8; 32] {
    let mut h = Sha256::new();
    for (key, power) in updates {
        h.update((key.len() as u32).to_be_bytes());
        h.update(key);
        h.update(power.to_be_bytes());
    }
    h.finalize().into()
}

/// Fold one block into the chain of app hashes.
pub fn next(
    previous: &[u8; 32],
    changeset_hash: &[u8; 32],
    validators_hash: &[u8; 32],
    results_hash: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(changeset_hash);
    h.update(validators_hash);
    h.update(results_hash);
    h.finalize().into()
}

/// The app hash of a block that changed grants: its [`next`] hash extended with the grants' running hash
/// (`crate::grants`), `SHA-256(next ‖ grants_hash)`. Blocks that change no grant keep [`next`] alone, so the
/// hashes of chains without grants are what they were.
pub fn with_grants(app_hash: &[u8; 32], grants_hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(app_hash);
    h.update(grants_hash);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_of_the_app_hash_changes_it() {
        let z = [0u8; 32];
        let base = next(&z, &z, &z, &z);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_ne!(next(&one, &z, &z, &z), base);
        assert_ne!(next(&z, &one, &z, &z), base);
        assert_ne!(next(&z, &z, &one, &z), base);
        assert_ne!(next(&z, &z, &z, &one), base);
    }

    #[test]
    fn results_hash_covers_code_and_cost_and_order() {
        assert_ne!(results_hash(&[(0, 5)]), results_hash(&[(0, 6)]));
        assert_ne!(results_hash(&[(0, 5)]), results_hash(&[(9, 5)]));
        assert_ne!(
            results_hash(&[(0, 5), (9, 1)]),
            results_hash(&[(9, 1), (0, 5)])
        );
    }

    #[test]
    fn genesis_hash_binds_chain_id_and_state() {
        assert_ne!(genesis("a", b"{}"), genesis("b", b"{}"));
        assert_ne!(genesis("a", b"{}"), genesis("a", b"{ }"));
        // Length prefixes keep the boundary between the two inputs unambiguous.
        assert_ne!(genesis("ab", b"c"), genesis("a", b"bc"));
    }
}
