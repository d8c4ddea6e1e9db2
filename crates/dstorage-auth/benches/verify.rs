//! Verifications per second on one core: each standard through the registry (what a node runs per transaction,
//! identity included), next to the bare library operations it is built on.
//!
//! `cargo bench -p dstorage-auth --bench verify`; throughput is reported as verifications per second of the
//! benchmark thread's CPU time (not wall time), so a busy shared machine distorts the figures less.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dstorage_auth::{default_registry, KeyType, SecretKey};
use secp256k1::{Message, SECP256K1};
use sha2::{Digest, Sha256};

/// A message the size of a transaction's signed text.
const MESSAGE: &[u8] = b"dstorage transaction\nchain id: dstorage-devnet\nstandard: eth_personal_sign\nnonce: 42\n\
type: action\nschema: people\npayload sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b\n";

fn standards(c: &mut Criterion<ThreadCpuTime>) {
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

fn libraries(c: &mut Criterion<ThreadCpuTime>) {
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

/// CPU time consumed by the calling thread (CLOCK_THREAD_CPUTIME_ID): what "one core" means, minus the time the
/// thread spent waiting for a core.
struct ThreadCpuTime;

fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    #[allow(
        clippy::disallowed_methods,
        reason = "a benchmark's timer, outside any state transition"
    )]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Times in µs of CPU, throughput in thousands of verifications per CPU-second.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical_ns: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e3);
        "µs cpu"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iteration = match *throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                n as f64
            }
        };
        values
            .iter_mut()
            .for_each(|v| *v = per_iteration * 1e9 / *v / 1e3);
        "K/cpu-s"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

criterion_group! {
    name = benches;
    // Short runs: the machine is shared, and the numbers are wanted to a few percent, not to the last digit.
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = standards, libraries
}
criterion_main!(benches);
