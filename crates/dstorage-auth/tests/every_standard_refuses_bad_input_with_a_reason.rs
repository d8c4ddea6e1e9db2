//! Bad input for every standard: truncated, overlong, flipped bits, another key, another standard's signature,
//! invalid and small-order points, non-canonical encodings, bad identities. Each is refused with a reason that
//! names the standard; none panics.

use dstorage_auth::error::VerifyError;
use dstorage_auth::{default_registry, AuthError, KeyType, SecretKey};

const STANDARDS: [&str; 5] = [
    "ed25519",
    "eth_personal_sign",
    "near_nep413",
    "secp256k1_sha256",
    "solana_sign_message",
];

struct Case {
    sender: Vec<u8>,
    signature: Vec<u8>,
}

const MESSAGE: &[u8] = b"dstorage transaction\nchain id: test\nnonce: 1\n";

fn case(standard: &'static str, key: &SecretKey) -> Case {
    let signed = dstorage_auth::sign(standard, key, MESSAGE).unwrap();
    Case {
        sender: signed.sender,
        signature: signed.signature,
    }
}

fn key_for(standard: &str) -> SecretKey {
    SecretKey::generate(default_registry().get(standard).unwrap().key_type())
}

fn verify(
    standard: &str,
    sender: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<String, AuthError> {
    default_registry().verify(standard, sender, message, signature)
}

/// Refused, with a message that starts with the standard's name.
fn assert_refused(standard: &str, result: Result<String, AuthError>, what: &str) -> VerifyError {
    match result {
        Err(AuthError::Verify(e)) => {
            assert!(
                e.to_string().starts_with(&format!("{standard}: ")),
                "{what}: reason does not name {standard}: {e}"
            );
            e
        }
        other => panic!("{standard}: {what} was not refused as a bad signature: {other:?}"),
    }
}

#[test]
fn the_registry_lists_exactly_the_five_standards_sorted() {
    assert_eq!(default_registry().names(), STANDARDS);
}

#[test]
fn valid_signatures_over_the_empty_message_verify_for_every_standard() {
    for standard in STANDARDS {
        let key = key_for(standard);
        let signed = dstorage_auth::sign(standard, &key, b"").unwrap();
        assert!(
            verify(standard, &signed.sender, b"", &signed.signature).is_ok(),
            "{standard}"
        );
        assert_refused(
            standard,
            verify(standard, &signed.sender, b"x", &signed.signature),
            "non-empty message",
        );
        let other = dstorage_auth::sign(standard, &key, b"x").unwrap();
        assert_refused(
            standard,
            verify(standard, &other.sender, b"", &other.signature),
            "empty message",
        );
    }
}

#[test]
fn truncated_and_overlong_signatures_are_refused() {
    for standard in STANDARDS {
        let c = case(standard, &key_for(standard));
        for len in [0, 1, 63, c.signature.len() - 1] {
            let e = assert_refused(
                standard,
                verify(standard, &c.sender, MESSAGE, &c.signature[..len]),
                "truncated",
            );
            assert!(
                matches!(e, VerifyError::SignatureLength { actual, .. } if actual == len),
                "{e}"
            );
        }
        let mut long = c.signature.clone();
        long.push(b'/');
        let e = assert_refused(
            standard,
            verify(standard, &c.sender, MESSAGE, &long),
            "overlong",
        );
        if standard == "near_nep413" {
            // Bytes after the nonce are a callback URL, which changes the signed payload.
            assert!(matches!(e, VerifyError::BadSignature { .. }), "{e}");
        } else {
            assert!(matches!(e, VerifyError::SignatureLength { .. }), "{e}");
        }
        long.extend_from_slice(&[0u8; 200]);
        assert_refused(
            standard,
            verify(standard, &c.sender, MESSAGE, &long),
            "much too long",
        );
    }
}

/// Flip one bit of every byte (bit `i % 8` of byte `i`, so all eight positions are hit along the way). Every bit
/// would be 8x slower in debug builds for little more: each byte feeds a hash or a curve decoding whole.
fn flips(bytes: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..bytes.len()).map(move |i| {
        let mut out = bytes.to_vec();
        out[i] ^= 1 << (i % 8);
        (i, out)
    })
}

#[test]
fn a_flipped_bit_in_any_byte_of_signature_sender_or_message_is_refused() {
    for standard in STANDARDS {
        let c = case(standard, &key_for(standard));
        assert!(verify(standard, &c.sender, MESSAGE, &c.signature).is_ok());
        for (i, sig) in flips(&c.signature) {
            assert_refused(
                standard,
                verify(standard, &c.sender, MESSAGE, &sig),
                &format!("signature byte {i}"),
            );
        }
        for (i, sender) in flips(&c.sender) {
            assert_refused(
                standard,
                verify(standard, &sender, MESSAGE, &c.signature),
                &format!("sender byte {i}"),
            );
        }
        for (i, message) in flips(MESSAGE) {
            assert_refused(
                standard,
                verify(standard, &c.sender, &message, &c.signature),
                &format!("message byte {i}"),
            );
        }
    }
}

#[test]
fn a_signature_by_another_key_is_refused_and_eth_names_both_signers() {
    for standard in STANDARDS {
        let a = case(standard, &key_for(standard));
        let b = case(standard, &key_for(standard));
        let e = assert_refused(
            standard,
            verify(standard, &a.sender, MESSAGE, &b.signature),
            "another key",
        );
        match standard {
            "eth_personal_sign" => {
                let VerifyError::SignerMismatch {
                    expected,
                    recovered,
                    ..
                } = e
                else {
                    panic!("{e}")
                };
                assert_eq!(
                    expected,
                    default_registry()
                        .get(standard)
                        .unwrap()
                        .identifier(&a.sender)
                        .unwrap()
                );
                assert_eq!(
                    recovered,
                    default_registry()
                        .get(standard)
                        .unwrap()
                        .identifier(&b.sender)
                        .unwrap()
                );
            }
            _ => assert!(matches!(e, VerifyError::BadSignature { .. }), "{e}"),
        }
    }
}

#[test]
fn another_standards_signature_is_refused_except_between_the_raw_ed25519_pair() {
    let secp = SecretKey::generate(KeyType::Secp256k1);
    let ed = SecretKey::generate(KeyType::Ed25519);
    for from in STANDARDS {
        let key = if default_registry().get(from).unwrap().key_type() == KeyType::Secp256k1 {
            &secp
        } else {
            &ed
        };
        let c = case(from, key);
        for to in STANDARDS {
            if to == from {
                continue;
            }
            let result = verify(to, &c.sender, MESSAGE, &c.signature);
            if matches!(
                (from, to),
                ("ed25519", "solana_sign_message") | ("solana_sign_message", "ed25519")
            ) {
                // Both sign the raw bytes, so the signature is the same; what stops replay across them is that the
                // transaction's signed text names the standard (docs/auth.md).
                assert!(result.is_ok(), "{from} -> {to}: {result:?}");
            } else {
                assert_refused(to, result, &format!("a {from} signature"));
            }
        }
    }
}

#[test]
fn senders_of_the_wrong_length_are_refused_by_length() {
    for standard in STANDARDS {
        let c = case(standard, &key_for(standard));
        for len in [0, 19, 21, 31, 34, 65] {
            if len == c.sender.len() {
                continue;
            }
            let e = assert_refused(
                standard,
                verify(standard, &vec![2u8; len], MESSAGE, &c.signature),
                "sender length",
            );
            assert!(
                matches!(e, VerifyError::SenderLength { actual, .. } if actual == len),
                "{e}"
            );
        }
    }
}

/// An ed25519 encoding that is not on the curve.
fn off_curve_ed25519() -> [u8; 32] {
    (2u8..=255)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
        .expect("some small y has no x")
}

#[test]
fn invalid_small_order_and_non_canonical_ed25519_keys_are_refused_by_name() {
    let ed = SecretKey::generate(KeyType::Ed25519);
    let identity_point = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    // y = p + 1 encodes the same point as y = 1 (the identity), non-canonically.
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xee;
    non_canonical[31] = 0x7f;
    for standard in ["ed25519", "near_nep413", "solana_sign_message"] {
        let c = case(standard, &ed);
        let e = assert_refused(
            standard,
            verify(standard, &off_curve_ed25519(), MESSAGE, &c.signature),
            "off-curve key",
        );
        assert!(matches!(e, VerifyError::InvalidPublicKey { .. }), "{e}");
        let e = assert_refused(
            standard,
            verify(standard, &identity_point, MESSAGE, &c.signature),
            "small-order key",
        );
        assert!(matches!(e, VerifyError::SmallOrderPublicKey { .. }), "{e}");
        let e = assert_refused(
            standard,
            verify(standard, &non_canonical, MESSAGE, &c.signature),
            "non-canonical key",
        );
        assert!(
            matches!(e, VerifyError::NonCanonicalPublicKey { .. }),
            "{e}"
        );
    }
}

#[test]
fn small_order_r_off_curve_r_and_non_canonical_s_are_refused_by_name() {
    let ed = SecretKey::generate(KeyType::Ed25519);
    let c = case("ed25519", &ed);
    let mut small_r = c.signature.clone();
    small_r[..32].copy_from_slice(&{
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    });
    let e = assert_refused(
        "ed25519",
        verify("ed25519", &c.sender, MESSAGE, &small_r),
        "small-order R",
    );
    assert!(matches!(e, VerifyError::SmallOrderR { .. }), "{e}");

    let mut off_r = c.signature.clone();
    off_r[..32].copy_from_slice(&off_curve_ed25519());
    let e = assert_refused(
        "ed25519",
        verify("ed25519", &c.sender, MESSAGE, &off_r),
        "off-curve R",
    );
    assert!(matches!(e, VerifyError::InvalidR { .. }), "{e}");

    // S + ℓ: the classic ed25519 malleation, same equation, non-canonical S.
    let ell: [u8; 32] =
        hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
            .unwrap()
            .try_into()
            .unwrap();
    let mut malleated = c.signature.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(malleated[32 + i]) + u16::from(ell[i]) + carry;
        malleated[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    let e = assert_refused(
        "ed25519",
        verify("ed25519", &c.sender, MESSAGE, &malleated),
        "S + ℓ",
    );
    assert!(matches!(e, VerifyError::NonCanonicalS { .. }), "{e}");
}

#[test]
fn secp256k1_keys_off_the_curve_are_refused() {
    let c = case("secp256k1_sha256", &SecretKey::generate(KeyType::Secp256k1));
    let mut off = vec![0x02];
    off.extend_from_slice(&[0xff; 32]);
    let e = assert_refused(
        "secp256k1_sha256",
        verify("secp256k1_sha256", &off, MESSAGE, &c.signature),
        "x ≥ p",
    );
    assert!(matches!(e, VerifyError::InvalidPublicKey { .. }), "{e}");
    let mut bad_prefix = c.sender.clone();
    bad_prefix[0] = 0x05;
    let e = assert_refused(
        "secp256k1_sha256",
        verify("secp256k1_sha256", &bad_prefix, MESSAGE, &c.signature),
        "prefix",
    );
    assert!(matches!(e, VerifyError::InvalidPublicKey { .. }), "{e}");
}

#[test]
fn ecdsa_signatures_with_zero_or_oversized_scalars_are_refused() {
    for standard in ["eth_personal_sign", "secp256k1_sha256"] {
        let c = case(standard, &SecretKey::generate(KeyType::Secp256k1));
        for (range, which) in [(0..32, "r"), (32..64, "s")] {
            for fill in [0x00u8, 0xff] {
                let mut sig = c.signature.clone();
                sig[range.clone()].fill(fill);
                let e = assert_refused(
                    standard,
                    verify(standard, &c.sender, MESSAGE, &sig),
                    "scalar range",
                );
                assert_eq!(e, VerifyError::ScalarOutOfRange { standard, which });
            }
        }
    }
}

#[test]
fn malformed_identities_are_refused_with_the_identity_in_the_message() {
    let bad = [
        "",
        "not hex at all",
        "0x",
        "0xZZ7536E3605D9C16a7a3D7b1898e529396a65c23",
        "cosmos1qqqq",
        "ed25519:0OIl",
        "🙂",
        &"a".repeat(1000),
    ];
    for standard in STANDARDS {
        let authenticator = default_registry().get(standard).unwrap();
        for identity in bad {
            let err = authenticator.parse_identity(identity).unwrap_err();
            assert!(
                matches!(err, AuthError::InvalidIdentity { .. }),
                "{standard} {identity:?}: {err}"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("{standard}: identity ")),
                "{err}"
            );
            assert!(
                default_registry()
                    .verify_identity(standard, identity, MESSAGE, &[0u8; 65])
                    .is_err(),
                "{standard} {identity:?}"
            );
        }
    }
}

#[test]
fn an_unknown_standard_is_refused_and_the_known_ones_are_listed() {
    let err = default_registry()
        .verify("eth_sign", &[0; 20], MESSAGE, &[0; 65])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown signature standard \"eth_sign\"; known: ed25519, eth_personal_sign, near_nep413, secp256k1_sha256, \
         solana_sign_message"
    );
}

#[test]
fn identities_round_trip_through_parse_and_identifier() {
    for standard in STANDARDS {
        if standard == "secp256k1_sha256" {
            continue; // its identity is a key hash; covered by verify_identity tests
        }
        let a = default_registry().get(standard).unwrap();
        let key = key_for(standard);
        let sender = a.sender_for(&key.public_key()).unwrap();
        let id = a.identifier(&sender).unwrap();
        assert_eq!(a.parse_identity(&id).unwrap(), sender, "{standard}");
    }
}
