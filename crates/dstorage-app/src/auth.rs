//! Stateless transaction checks shared by CheckTx, proposals and execution: decoding, chain id, size and
//! signature, with a cache so a transaction verified in CheckTx is not verified again in its block.
//!
//! The cache is keyed by the SHA-256 of the transaction bytes, so a hit means these exact bytes verified before;
//! it can only skip work, never change an outcome, which keeps execution deterministic whatever each node's cache
//! holds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use dstorage_auth::Registry;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{split_bundle, tx_hash, Transaction, TxHash, BUNDLE_VERSION};

use crate::refusal::Refusal;

/// A transaction that decoded, is for this chain, and whose signature verified.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The decoded transaction.
    pub tx: Transaction,
    /// Its hash.
    pub hash: TxHash,
    /// The sender's identity string (what SQL and ownership see).
    pub identity: String,
    /// The signer's public key (`@caller_key`; for Ethereum, recovered from the signature).
    pub key: Vec<u8>,
}

impl Checked {
    /// The caller an action this transaction calls runs as.
    pub fn caller(&self) -> dstorage_types::caller::Caller {
        dstorage_types::caller::Caller {
            identity: self.identity.clone(),
            standard: self.tx.body.standard.clone(),
            key: Some(self.key.clone()),
        }
    }
}

/// The transactions one CometBFT transaction carries: itself, or the members of a bundle
/// (`dstorage_types::tx::split_bundle`), after the bundle's own size and framing checks. Each member still has
/// to pass [`Verifier::check`].
pub fn members(
    bytes: &[u8],
    max_tx_bytes: usize,
    max_bundle_bytes: usize,
) -> Result<Vec<&[u8]>, Refusal> {
    let (what, limit) = match bytes.first() {
        Some(&BUNDLE_VERSION) => ("bundle", max_bundle_bytes),
        _ => ("transaction", max_tx_bytes),
    };
    if bytes.len() > limit {
        return Err(Refusal::new(
            ResultCode::TooLarge,
            format!(
                "{what} is {} bytes; the limit is {limit} bytes",
                bytes.len()
            ),
        ));
    }
    split_bundle(bytes)
        .map_err(|e| Refusal::new(ResultCode::Malformed, format!("malformed transaction: {e}")))
}

/// A refusal of one member of a bundle, naming it; a bare transaction's refusal is passed on as it is.
pub fn in_member(count: usize, index: usize, member: &[u8], refusal: Refusal) -> Refusal {
    if count == 1 {
        return refusal;
    }
    Refusal::new(
        refusal.code,
        format!(
            "bundle member {index} of {count} ({}): {}",
            tx_hash(member),
            refusal.message
        ),
    )
}

/// Decodes and authenticates transactions.
pub struct Verifier {
    registry: Registry,
    max_tx_bytes: usize,
    cache: Mutex<Cache>,
    /// CPU nanoseconds spent verifying signatures (metrics only).
    verify_nanos: AtomicU64,
}

struct Cache {
    capacity: usize,
    order: VecDeque<[u8; 32]>,
    /// Each verified transaction's identity and signer key.
    identities: BTreeMap<[u8; 32], (String, Vec<u8>)>,
}

impl Verifier {
    /// A verifier with the network's standards.
    pub fn new(registry: Registry, max_tx_bytes: usize, cache_capacity: usize) -> Verifier {
        Verifier {
            registry,
            max_tx_bytes,
            cache: Mutex::new(Cache {
                capacity: cache_capacity,
                order: VecDeque::new(),
                identities: BTreeMap::new(),
            }),
            verify_nanos: AtomicU64::new(0),
        }
    }

    /// Run every stateless check on raw transaction bytes for chain `chain_id`.
    pub fn check(&self, bytes: &[u8], chain_id: &str) -> Result<Checked, Refusal> {
        if bytes.len() > self.max_tx_bytes {
            return Err(Refusal::new(
                ResultCode::TooLarge,
                format!(
                    "transaction is {} bytes; the limit is {} bytes",
                    bytes.len(),
                    self.max_tx_bytes
                ),
            ));
        }
        let tx = Transaction::decode(bytes).map_err(|e| {
            Refusal::new(ResultCode::Malformed, format!("malformed transaction: {e}"))
        })?;
        if tx.body.chain_id != chain_id {
            return Err(Refusal::new(
                ResultCode::WrongChainId,
                format!(
                    "transaction is for chain {:?}, this is chain {:?}",
                    tx.body.chain_id, chain_id
                ),
            ));
        }
        let hash = tx_hash(bytes);
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.identities.get(&hash.0).cloned());
        let (identity, key) = match cached {
            Some(verified) => verified,
            None => {
                let started = crate::sys::thread_cpu_time();
                let verified = self.verify(&tx);
                let spent = crate::sys::thread_cpu_time().saturating_sub(started);
                let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
                self.verify_nanos.fetch_add(nanos, Ordering::Relaxed);
                let verified = verified?;
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(hash.0, verified.clone());
                }
                verified
            }
        };
        Ok(Checked {
            tx,
            hash,
            identity,
            key,
        })
    }

    /// CPU seconds spent verifying signatures so far (cache misses only; never part of consensus).
    pub fn verify_seconds(&self) -> f64 {
        self.verify_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// The sender's identity and signer key.
    fn verify(&self, tx: &Transaction) -> Result<(String, Vec<u8>), Refusal> {
        let standard = &tx.body.standard;
        let authenticator = self.registry.get(standard).map_err(|e| {
            Refusal::new(
                ResultCode::UnknownStandard,
                format!("unknown signature standard: {e}"),
            )
        })?;
        let key = authenticator
            .verify_signer_key(
                &tx.body.sender,
                tx.body.signed_text().as_bytes(),
                &tx.signature,
            )
            .map_err(|e| {
                Refusal::new(
                    ResultCode::BadSignature,
                    format!("signature does not verify under {standard}: {e}"),
                )
            })?;
        let identity = authenticator.identifier(&tx.body.sender).map_err(|e| {
            Refusal::new(
                ResultCode::BadSignature,
                format!("sender is not a valid {standard} identity: {e}"),
            )
        })?;
        Ok((identity, key))
    }
}

impl Cache {
    fn insert(&mut self, hash: [u8; 32], identity: (String, Vec<u8>)) {
        if self.capacity == 0 || self.identities.contains_key(&hash) {
            return;
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.identities.remove(&old);
            }
        }
        self.order.push_back(hash);
        self.identities.insert(hash, identity);
    }
}
