//! Verifications per second on one core: each standard through the registry (what a node runs per transaction,
//! identity included), next to the bare library operations it is built on.
//!
//! `cargo bench -p dstorage-auth --bench verify`; throughput is reported as elements (verifications) per second.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dstorage_auth::{default_registry, KeyType, SecretKey};
use secp256k1::{Message, SECP256K1};
use sha2::{Digest, Sha256};

/// A message the size of a transaction's signed text.
const MESSAGE: &[u8] = b"dstorage transaction\nchain id: dstorage-devnet\nstandard: eth_personal_sign\nnonce: 42\n\
type: action\nschema: people\npayload sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b\n";

fn standards(c: &mut Criterion) {
    let registry = default_registry();
    let mut group = c.benchmark_group("standard");
    group.throughput(Throughput::Elements(1));
    for standard in registry.names() {
        let key = SecretKey::generate(registry.get(standard).unwrap().key_type());
        let signed = dstorage_auth::sign(standard, &key, MESSAGE).unwrap();
        group.bench_function(standard, |b| {
            b.iter(|| {
                registry
                    .verify(
                        black_box(standard),
                        black_box(&signed.sender),
                        black_box(MESSAGE),
                        black_box(&signed.signature),
                    )
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn libraries(c: &mut Criterion) {
    let mut group = c.benchmark_group("library");
    group.throughput(Throughput::Elements(1));

    let SecretKey::Secp256k1(sk) = SecretKey::generate(KeyType::Secp256k1) else {
        unreachable!()
    };
    let digest = Message::from_digest(Sha256::digest(MESSAGE).into());
    let recoverable = SECP256K1.sign_ecdsa_recoverable(&digest, &sk);
    let plain = SECP256K1.sign_ecdsa(&digest, &sk);
    let pk = sk.public_key(SECP256K1);
    group.bench_function("secp256k1 recover_ecdsa", |b| {
        b.iter(|| {
            SECP256K1
                .recover_ecdsa(black_box(&digest), black_box(&recoverable))
                .unwrap()
        })
    });
    group.bench_function("secp256k1 verify_ecdsa", |b| {
        b.iter(|| {
            SECP256K1
                .verify_ecdsa(black_box(&digest), black_box(&plain), black_box(&pk))
                .unwrap()
        })
    });

    let SecretKey::Ed25519(ed) = SecretKey::generate(KeyType::Ed25519) else {
        unreachable!()
    };
    let vk = ed.verifying_key();
    let sig = ed25519_dalek::Signer::sign(&ed, MESSAGE);
    group.bench_function("ed25519-dalek verify", |b| {
        b.iter(|| {
            ed25519_dalek::Verifier::verify(&vk, black_box(MESSAGE), black_box(&sig)).unwrap()
        })
    });
    group.bench_function("ed25519-dalek verify_strict", |b| {
        b.iter(|| {
            vk.verify_strict(black_box(MESSAGE), black_box(&sig))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the machine is shared, and the numbers are wanted to a few percent, not to the last digit.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = standards, libraries
}
criterion_main!(benches);
