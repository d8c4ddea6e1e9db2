//! The two curve checks every standard builds on, with the network's strictness rules (docs/auth.md) in one place.

use crate::error::VerifyError;

/// secp256k1 group order n, big-endian.
const SECP256K1_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// floor(n / 2), big-endian: the largest s a low-S signature may have.
const SECP256K1_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// Check the (r, s) of a 64-byte compact ECDSA signature: both in [1, n-1], and s ≤ n/2.
///
/// Done by byte comparison before any curve work, so every malleability rule is explicit here rather than spread
/// over what libsecp256k1's parse, verify and recover each happen to enforce (recovery, for one, accepts high S).
pub(crate) fn check_secp256k1_scalars(
    standard: &'static str,
    compact: &[u8; 64],
) -> Result<(), VerifyError> {
    let (r, s) = compact.split_at(32);
    for (which, value) in [("r", r), ("s", s)] {
        // Equal-length big-endian byte strings compare like the numbers they encode.
        if value.iter().all(|&b| b == 0) || value >= SECP256K1_ORDER.as_slice() {
            return Err(VerifyError::ScalarOutOfRange { standard, which });
        }
    }
    if s > SECP256K1_HALF_ORDER.as_slice() {
        return Err(VerifyError::HighS {
            standard,
            s: hex::encode(s),
        });
    }
    Ok(())
}

/// Verify an ed25519 signature under the network's rules: RFC 8032 with the cofactorless equation, canonical
/// encodings of A, R and S, and neither A nor R of small order. (ed25519-dalek's `verify_strict` plus an explicit
/// canonical-A check, which it leaves out.)
pub(crate) fn verify_ed25519(
    standard: &'static str,
    public_key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    if !is_canonical_field_element(public_key) {
        return Err(VerifyError::NonCanonicalPublicKey {
            standard,
            key: hex::encode(public_key),
        });
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|_| {
        VerifyError::InvalidPublicKey {
            standard,
            key_type: dstorage_types::identity::KeyType::Ed25519,
            key: hex::encode(public_key),
        }
    })?;
    if key.is_weak() {
        return Err(VerifyError::SmallOrderPublicKey {
            standard,
            key: hex::encode(public_key),
        });
    }
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    match key.verify_strict(message, &sig) {
        Ok(()) => Ok(()),
        // Diagnose only on failure, so valid signatures pay for nothing beyond verify_strict.
        Err(_) => Err(diagnose_ed25519_failure(standard, public_key, signature)),
    }
}

/// Name the reason an ed25519 signature failed `verify_strict`.
fn diagnose_ed25519_failure(
    standard: &'static str,
    public_key: &[u8; 32],
    signature: &[u8; 64],
) -> VerifyError {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    s.copy_from_slice(&signature[32..]);
    if bool::from(curve25519_dalek::Scalar::from_canonical_bytes(s).is_none()) {
        return VerifyError::NonCanonicalS { standard };
    }
    match curve25519_dalek::edwards::CompressedEdwardsY(r).decompress() {
        None => VerifyError::InvalidR {
            standard,
            r: hex::encode(r),
        },
        Some(point) if point.is_small_order() => VerifyError::SmallOrderR {
            standard,
            r: hex::encode(r),
        },
        Some(_) => VerifyError::BadSignature {
            standard,
            key: hex::encode(public_key),
        },
    }
}

/// Whether a 32-byte ed25519 point encoding has its y coordinate below p = 2^255 - 19.
///
/// The only non-canonical encodings are y in [p, 2^255): low byte ≥ 0xed, bytes 1..=30 all 0xff, and the high
/// byte 0x7f once the sign bit is masked off.
fn is_canonical_field_element(encoding: &[u8; 32]) -> bool {
    !(encoding[31] & 0x7f == 0x7f
        && encoding[1..31].iter().all(|&b| b == 0xff)
        && encoding[0] >= 0xed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: &str = "test";

    fn compact(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(r);
        out[32..].copy_from_slice(s);
        out
    }

    #[test]
    fn s_equal_to_half_the_order_is_low_and_one_more_is_high() {
        let r = [1u8; 32];
        assert_eq!(
            check_secp256k1_scalars(STD, &compact(&r, &SECP256K1_HALF_ORDER)),
            Ok(())
        );
        let mut above = SECP256K1_HALF_ORDER;
        above[31] += 1;
        assert!(matches!(
            check_secp256k1_scalars(STD, &compact(&r, &above)),
            Err(VerifyError::HighS { .. })
        ));
    }

    #[test]
    fn zero_or_order_sized_r_and_s_are_out_of_range() {
        let one = {
            let mut b = [0u8; 32];
            b[31] = 1;
            b
        };
        for (sig, which) in [
            (compact(&[0; 32], &one), "r"),
            (compact(&one, &[0; 32]), "s"),
            (compact(&SECP256K1_ORDER, &one), "r"),
            (compact(&[0xff; 32], &one), "r"),
            (compact(&one, &SECP256K1_ORDER), "s"),
        ] {
            assert_eq!(
                check_secp256k1_scalars(STD, &sig),
                Err(VerifyError::ScalarOutOfRange {
                    standard: STD,
                    which
                })
            );
        }
    }

    #[test]
    fn field_elements_from_p_upward_are_non_canonical() {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!is_canonical_field_element(&p));
        let mut with_sign = p;
        with_sign[31] = 0xff;
        assert!(!is_canonical_field_element(&with_sign));
        let mut below = p;
        below[0] = 0xec;
        assert!(is_canonical_field_element(&below));
        assert!(is_canonical_field_element(&[0; 32]));
    }
}
