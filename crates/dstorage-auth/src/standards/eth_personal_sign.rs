//! `eth_personal_sign`: EIP-191 personal_sign, what MetaMask and every Ethereum wallet produce.
//!
//! Signed bytes: keccak256("\x19Ethereum Signed Message:\n" ‖ decimal byte length ‖ message). Signature: 65 bytes
//! r ‖ s ‖ v with v ∈ {27, 28, 0, 1}. Sender: the 20-byte address. Identity: the EIP-55 checksummed address.

use dstorage_types::identity::KeyType;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, SECP256K1};
use sha3::{Digest, Keccak256};

use crate::curves::check_secp256k1_scalars;
use crate::error::{AuthError, VerifyError};
use crate::keys::{PublicKey, SecretKey};
use crate::registry::{key_type_mismatch, Authenticator};

/// The standard's name.
pub const NAME: &str = "eth_personal_sign";

/// EIP-191 personal_sign over secp256k1.
#[derive(Debug, Clone, Copy, Default)]
pub struct EthPersonalSign;

/// keccak256 of the EIP-191 personal message envelope.
pub fn personal_message_hash(message: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(message.len().to_string().as_bytes());
    hasher.update(message);
    hasher.finalize().into()
}

/// The Ethereum address of a public key: the last 20 bytes of keccak256 of the uncompressed point without its
/// 0x04 prefix.
pub fn address(key: &secp256k1::PublicKey) -> [u8; 20] {
    let uncompressed = key.serialize_uncompressed();
    let hash = Keccak256::digest(&uncompressed[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    out
}

/// EIP-55 mixed-case checksum encoding of an address, with `0x`.
pub fn checksum_address(address: &[u8; 20]) -> String {
    let lower = hex::encode(address);
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        // Nibble i of the hash decides the case of hex digit i.
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parse `0x` + 40 hex digits. All-lowercase and all-uppercase digits are taken as is; mixed case must be the
/// correct EIP-55 checksum, since a wrong one usually means a typo.
pub fn parse_address(text: &str) -> Result<[u8; 20], String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| "an Ethereum address starts with 0x".to_owned())?;
    if digits.len() != 40 {
        return Err(format!(
            "an Ethereum address has 40 hex digits after 0x, not {}",
            digits.len()
        ));
    }
    let mut out = [0u8; 20];
    hex::decode_to_slice(digits, &mut out).map_err(|e| format!("not hex: {e}"))?;
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        let expected = checksum_address(&out);
        if expected != text {
            return Err(format!("EIP-55 checksum mismatch; expected {expected}"));
        }
    }
    Ok(out)
}

/// The public key that signed `message` (EIP-191 personal_sign) with this 65-byte r ‖ s ‖ v signature, as
/// `ecrecover` finds it, with the same refusals as verification: a wrong length, a recovery byte other than
/// 27/28/0/1, r or s out of range, high S, or no key recovering. Which address the key has is the caller's to
/// compare ([`address`]).
pub fn recover_key(message: &[u8], signature: &[u8]) -> Result<secp256k1::PublicKey, VerifyError> {
    let signature: &[u8; 65] = signature
        .try_into()
        .map_err(|_| VerifyError::SignatureLength {
            standard: NAME,
            expected: "65 (r ‖ s ‖ v)",
            actual: signature.len(),
        })?;
    let (compact, v) = signature.split_at(64);
    let v = v[0];
    let recovery_id = match v {
        27 | 0 => RecoveryId::Zero,
        28 | 1 => RecoveryId::One,
        // 29/30 (x ≥ n) are never produced in practice and EIP-155 values belong to transactions.
        _ => return Err(VerifyError::RecoveryId { standard: NAME, v }),
    };
    let mut rs = [0u8; 64];
    rs.copy_from_slice(compact);
    check_secp256k1_scalars(NAME, &rs)?;
    let unrecoverable = |_| VerifyError::Unrecoverable { standard: NAME };
    let recoverable =
        RecoverableSignature::from_compact(&rs, recovery_id).map_err(unrecoverable)?;
    let digest = Message::from_digest(personal_message_hash(message));
    SECP256K1
        .recover_ecdsa(&digest, &recoverable)
        .map_err(unrecoverable)
}

impl Authenticator for EthPersonalSign {
    fn name(&self) -> &'static str {
        NAME
    }

    fn key_type(&self) -> KeyType {
        KeyType::Secp256k1
    }

    fn verify(&self, sender: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        self.verify_signer_key(sender, message, signature)
            .map(|_| ())
    }

    fn verify_signer_key(
        &self,
        sender: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<Vec<u8>, VerifyError> {
        let sender: &[u8; 20] = sender.try_into().map_err(|_| VerifyError::SenderLength {
            standard: NAME,
            expected: 20,
            actual: sender.len(),
            what: "Ethereum address",
        })?;
        let key = recover_key(message, signature)?;
        let signer = address(&key);
        if &signer != sender {
            return Err(VerifyError::SignerMismatch {
                standard: NAME,
                expected: checksum_address(sender),
                recovered: checksum_address(&signer),
            });
        }
        Ok(key.serialize().to_vec())
    }

    fn identifier(&self, sender: &[u8]) -> Result<String, AuthError> {
        let address: &[u8; 20] = sender.try_into().map_err(|_| AuthError::InvalidSender {
            standard: NAME,
            sender: hex::encode(sender),
            reason: format!("{} bytes; an Ethereum address is 20", sender.len()),
        })?;
        Ok(checksum_address(address))
    }

    fn parse_identity(&self, identity: &str) -> Result<Vec<u8>, AuthError> {
        parse_address(identity)
            .map(|a| a.to_vec())
            .map_err(|reason| AuthError::InvalidIdentity {
                standard: NAME,
                identity: identity.to_owned(),
                reason,
            })
    }

    fn sender_for(&self, key: &PublicKey) -> Result<Vec<u8>, AuthError> {
        match key {
            PublicKey::Secp256k1(pk) => Ok(address(pk).to_vec()),
            other => Err(key_type_mismatch(
                NAME,
                KeyType::Secp256k1,
                other.key_type(),
            )),
        }
    }

    fn sign(&self, key: &SecretKey, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        let SecretKey::Secp256k1(sk) = key else {
            return Err(key_type_mismatch(NAME, KeyType::Secp256k1, key.key_type()));
        };
        let digest = Message::from_digest(personal_message_hash(message));
        // libsecp256k1 signs with RFC 6979 nonces and always returns low-S.
        let (recovery_id, compact) = SECP256K1
            .sign_ecdsa_recoverable(&digest, sk)
            .serialize_compact();
        let mut out = compact.to_vec();
        out.push(27 + i32::from(recovery_id) as u8);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The web3.js / eth-account documentation vector: this private key signing "Some data".
    const WEB3_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    const WEB3_ADDRESS: &str = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
    /// web3.eth.accounts.sign("Some data", WEB3_KEY).signature, as published in the web3.js docs.
    const WEB3_SIGNATURE: &str = "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c";
    /// Its message hash, also published there.
    const WEB3_HASH: &str = "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655";

    fn web3_key() -> SecretKey {
        SecretKey::from_bytes(KeyType::Secp256k1, &hex::decode(WEB3_KEY).unwrap()).unwrap()
    }

    #[test]
    fn web3_some_data_vector_hashes_signs_and_verifies_as_published() {
        assert_eq!(hex::encode(personal_message_hash(b"Some data")), WEB3_HASH);
        let key = web3_key();
        let sender = EthPersonalSign.sender_for(&key.public_key()).unwrap();
        assert_eq!(EthPersonalSign.identifier(&sender).unwrap(), WEB3_ADDRESS);
        let signature = EthPersonalSign.sign(&key, b"Some data").unwrap();
        assert_eq!(hex::encode(&signature), WEB3_SIGNATURE);
        assert_eq!(
            EthPersonalSign.verify(&sender, b"Some data", &signature),
            Ok(())
        );
    }

    #[test]
    fn the_signer_key_is_the_compressed_key_that_signed() {
        let key = web3_key();
        let sender = parse_address(WEB3_ADDRESS).unwrap();
        let signature = hex::decode(WEB3_SIGNATURE).unwrap();
        let PublicKey::Secp256k1(public) = key.public_key() else {
            panic!("a secp256k1 key")
        };
        assert_eq!(recover_key(b"Some data", &signature).unwrap(), public);
        let signer = EthPersonalSign
            .verify_signer_key(&sender, b"Some data", &signature)
            .unwrap();
        assert_eq!(signer, public.serialize().to_vec());
        assert_eq!(signer.len(), 33);
        // Another message recovers another key, whose address is not the sender's.
        assert!(matches!(
            EthPersonalSign.verify_signer_key(&sender, b"Other data", &signature),
            Err(VerifyError::SignerMismatch { .. })
        ));
        assert!(matches!(
            recover_key(b"Some data", &signature[..64]),
            Err(VerifyError::SignatureLength { actual: 64, .. })
        ));
    }

    #[test]
    fn v_of_0_and_1_are_accepted_like_27_and_28() {
        let sender = parse_address(WEB3_ADDRESS).unwrap();
        let mut signature = hex::decode(WEB3_SIGNATURE).unwrap();
        signature[64] -= 27;
        assert_eq!(
            EthPersonalSign.verify(&sender, b"Some data", &signature),
            Ok(())
        );
    }

    #[test]
    fn other_recovery_bytes_are_refused_by_value() {
        let sender = parse_address(WEB3_ADDRESS).unwrap();
        let mut signature = hex::decode(WEB3_SIGNATURE).unwrap();
        for v in [2u8, 26, 29, 30, 37, 38, 255] {
            signature[64] = v;
            assert_eq!(
                EthPersonalSign.verify(&sender, b"Some data", &signature),
                Err(VerifyError::RecoveryId { standard: NAME, v })
            );
        }
    }

    #[test]
    fn the_wrong_recovery_id_recovers_another_signer() {
        let sender = parse_address(WEB3_ADDRESS).unwrap();
        let mut signature = hex::decode(WEB3_SIGNATURE).unwrap();
        signature[64] = 27; // the published one is 28
        let err = EthPersonalSign
            .verify(&sender, b"Some data", &signature)
            .unwrap_err();
        assert!(
            matches!(&err, VerifyError::SignerMismatch { expected, .. } if expected == WEB3_ADDRESS)
                || matches!(err, VerifyError::Unrecoverable { .. }),
            "{err}"
        );
    }

    #[test]
    fn high_s_form_of_a_valid_signature_is_refused() {
        let sender = parse_address(WEB3_ADDRESS).unwrap();
        let signature = hex::decode(WEB3_SIGNATURE).unwrap();
        // (r, n - s, v ^ 1) is the same signature's malleated twin; ecrecover accepts it, we do not.
        let mut sig = secp256k1::ecdsa::Signature::from_compact(&signature[..64]).unwrap();
        let low = sig.serialize_compact();
        let n_minus_s = {
            let n = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
                .unwrap();
            let mut out = [0u8; 32];
            let mut borrow = 0i16;
            for i in (0..32).rev() {
                let d = i16::from(n[i]) - i16::from(low[32 + i]) - borrow;
                borrow = i16::from(d < 0);
                out[i] = (d + 256 * borrow) as u8;
            }
            out
        };
        let mut high = signature.clone();
        high[32..64].copy_from_slice(&n_minus_s);
        high[64] = 27;
        sig.normalize_s();
        assert_eq!(sig.serialize_compact(), low);
        assert_eq!(
            EthPersonalSign.verify(&sender, b"Some data", &high),
            Err(VerifyError::HighS {
                standard: NAME,
                s: hex::encode(n_minus_s)
            })
        );
    }

    #[test]
    fn eip55_checksums_match_the_eips_own_examples() {
        // EIP-55's test cases.
        for expected in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
            "0xde709f2102306220921060314715629080e2fb77",
            "0x27b1fdb04752bbc536007a920d24acb045561c26",
        ] {
            let bytes = parse_address(expected).unwrap();
            assert_eq!(checksum_address(&bytes), expected);
        }
    }

    #[test]
    fn addresses_with_a_wrong_checksum_or_shape_are_refused() {
        assert!(parse_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_ok());
        assert!(parse_address("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED").is_ok());
        let err = parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").unwrap_err();
        assert!(
            err.contains("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            "{err}"
        );
        assert!(parse_address("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
        assert!(parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA").is_err());
        assert!(parse_address("0xzzAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
        assert!(parse_address("0x").is_err());
    }

    #[test]
    fn signing_with_an_ed25519_key_is_a_key_type_error() {
        let key = SecretKey::generate(KeyType::Ed25519);
        assert!(matches!(
            EthPersonalSign.sign(&key, b"x"),
            Err(AuthError::KeyTypeMismatch { .. })
        ));
        assert!(matches!(
            EthPersonalSign.sender_for(&key.public_key()),
            Err(AuthError::KeyTypeMismatch { .. })
        ));
    }
}
