//! The fuzz target's body (fuzz/fuzz_body.rs) on stable Rust: thousands of random inputs, and valid signatures
//! with random damage, so the "verified" branch runs too. `cargo +nightly fuzz run verify` explores further.

use rand::{Rng, SeedableRng};

include!("../fuzz/fuzz_body.rs");

#[test]
fn fuzz_body_survives_random_bytes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xd5);
    for _ in 0..3000 {
        let len = rng.gen_range(0..300);
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        fuzz_one(&data);
    }
}

#[test]
fn fuzz_body_survives_valid_signatures_with_random_damage() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x413);
    let registry = dstorage_auth::default_registry();
    let names = registry.names();
    let mut verified = 0;
    for round in 0..500 {
        let index = round % names.len();
        let standard = names[index];
        let key = dstorage_auth::SecretKey::generate(registry.get(standard).unwrap().key_type());
        let message: String = (0..rng.gen_range(0..40))
            .map(|_| rng.gen_range('a'..='z'))
            .collect();
        let signed = dstorage_auth::sign(standard, &key, message.as_bytes()).unwrap();
        // Encode as the body reads it: standard, 0x80|sender length, 0x80|signature length, then the bytes.
        let mut data = vec![
            index as u8,
            0x80 | signed.sender.len() as u8,
            0x80 | signed.signature.len() as u8,
        ];
        data.extend_from_slice(&signed.sender);
        data.extend_from_slice(&signed.signature);
        data.extend_from_slice(message.as_bytes());
        // Half the inputs intact (the verified branch), half with a few random bytes overwritten.
        if round % 2 == 1 {
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(3..data.len());
                data[at] = rng.gen();
            }
        } else {
            verified += 1;
            assert!(registry
                .verify(
                    standard,
                    &signed.sender,
                    message.as_bytes(),
                    &signed.signature
                )
                .is_ok());
        }
        fuzz_one(&data);
    }
    assert_eq!(verified, 250);
}
