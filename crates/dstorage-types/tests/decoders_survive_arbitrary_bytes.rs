//! Arbitrary bytes never make the transaction or bundle decoders panic, and whatever decodes is canonical:
//! it re-encodes to exactly the input. Inputs come from mutating valid encodings, so most of them get past
//! the first bytes (a seeded generator keeps runs reproducible).

use dstorage_types::tx::{
    encode_bundle, split_bundle, Payload, Transaction, TxBody, BUNDLE_VERSION,
};
use dstorage_types::value::Value;

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn sample(nonce: u64, params: Vec<Value>) -> Vec<u8> {
    TxBody {
        chain_id: "c".into(),
        standard: "ed25519".into(),
        sender: vec![7; 32],
        nonce,
        payload: Payload::Sql {
            schema: "app".into(),
            sql: "INSERT INTO t VALUES (?, ?)".into(),
            params,
        },
    }
    .with_signature(vec![9; 64])
    .encode()
}

/// Flip, insert, delete or overwrite a few bytes, or cut the input short.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 => out.insert(at, rng.next() as u8),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 if at < out.len() => out[at] = [0, 1, 2, 0xff][rng.below(4)],
            4 => out.truncate(at),
            _ => {}
        }
    }
    out
}

#[test]
fn mutated_transactions_and_bundles_never_panic_and_what_decodes_is_canonical() {
    let mut rng = Rng(0x5eed_dec0_de00_0001);
    let a = sample(1, Vec::new());
    let b = sample(2, vec![Value::Integer(-2), Value::Text("it's".into())]);
    let c = sample(3, vec![Value::Null, Value::Blob(vec![0, 0xff])]);
    let seeds = [
        a.clone(),
        b.clone(),
        encode_bundle(&[a.clone(), b.clone()]),
        encode_bundle(&[a, b, c]),
    ];
    let (mut txs, mut bundles) = (0, 0);
    for round in 0..20_000 {
        let input = mutate(&mut rng, &seeds[round % seeds.len()]);
        if let Ok(tx) = Transaction::decode(&input) {
            assert_eq!(
                tx.encode(),
                input,
                "a decoded transaction re-encodes to its input"
            );
            txs += 1;
        }
        if let Ok(members) = split_bundle(&input) {
            if input.first() == Some(&BUNDLE_VERSION) {
                assert!(members.len() >= 2);
                assert_eq!(
                    encode_bundle(&members),
                    input,
                    "a split bundle re-encodes to its input"
                );
                bundles += 1;
            } else {
                assert_eq!(members, vec![&input[..]]);
            }
        }
    }
    // The mutations must leave some inputs valid, or the test would only exercise the error paths.
    assert!(
        txs > 100 && bundles > 100,
        "valid after mutation: {txs} transactions, {bundles} bundles"
    );
}
