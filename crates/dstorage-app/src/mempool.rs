//! CheckTx: admit a transaction to the mempool only if it could execute in the next blocks.
//!
//! Beyond the stateless checks ([`crate::auth`]) the mempool tracks, per sender, the next nonce it expects
//! counting transactions it already admitted, so a client may send several transactions before the first
//! commits. The map is cleared at every Commit; CometBFT's recheck then rebuilds it from the remaining mempool
//! in order, dropping what the block made stale.
//!
//! CheckTx and its recheck after every block read each sender's committed nonce and each schema's owner. Both
//! change only in blocks, so the mempool keeps what it read and the consensus thread hands it the new nonces of a
//! block's senders at Commit (owners are forgotten when a block changes a schema): a recheck then touches no
//! SQLite page. Commit runs while CometBFT holds its mempool lock, and every read-and-remember happens under this
//! module's own lock, so the cache never holds a value older than the last commit it was told about.
//!
//! Cost estimates of statements whose cost does not depend on table sizes (an INSERT of VALUES: no scan, no
//! lookup in the plan) are remembered by schema and SQL text until a block changes a schema, so a client that
//! sends the same parameterised insert again does not pay a parse and a query plan per transaction.

use std::collections::BTreeMap;
use std::sync::Mutex;

use dstorage_sql::Reader;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;

use crate::auth::{Checked, Refusal};
use crate::shared::{lock, Shared};
use crate::{keys, AppError};

/// Mempool-side state.
pub struct Mempool {
    inner: Mutex<Inner>,
}

struct Inner {
    reader: Reader,
    pending: BTreeMap<String, u64>,
    /// Size-independent estimates by (schema, SQL text); see the module docs.
    estimates: BTreeMap<(String, String), u64>,
    /// Committed nonce by sender, as read or as told at Commit.
    nonces: BTreeMap<String, u64>,
    /// Committed owner by schema (`None`: no such schema), as read since the last schema change.
    owners: BTreeMap<String, Option<Vec<u8>>>,
}

/// Entries a committed-state cache keeps before it starts over.
const STATE_CACHE_CAPACITY: usize = 100_000;

impl Inner {
    fn committed_nonce(&mut self, identity: &str) -> Result<u64, AppError> {
        if let Some(n) = self.nonces.get(identity) {
            return Ok(*n);
        }
        let n = keys::last_nonce(self.reader.kv_get(&keys::nonce(identity))?.as_deref());
        if self.nonces.len() >= STATE_CACHE_CAPACITY {
            self.nonces.clear();
        }
        self.nonces.insert(identity.to_owned(), n);
        Ok(n)
    }

    fn owner(&mut self, schema: &str) -> Result<Option<Vec<u8>>, AppError> {
        if let Some(o) = self.owners.get(schema) {
            return Ok(o.clone());
        }
        let o = self.reader.kv_get(&keys::owner(schema))?;
        if self.owners.len() >= STATE_CACHE_CAPACITY {
            self.owners.clear();
        }
        self.owners.insert(schema.to_owned(), o.clone());
        Ok(o)
    }
}

/// Remembered estimates before the cache starts over (literal SQL makes every text new).
const ESTIMATE_CACHE_CAPACITY: usize = 4_096;

/// Whether an estimate's cost holds whatever the tables hold: its plan reads no table.
fn size_independent(e: &dstorage_sql::Estimate) -> bool {
    e.bounded
        && e.plan
            .iter()
            .all(|line| line.starts_with("SCAN CONSTANT ROW"))
}

/// What CheckTx admitted.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The checked transaction.
    pub checked: Checked,
    /// Estimated cost, when the payload runs SQL against an existing schema.
    pub estimated_cost: Option<u64>,
}

impl Mempool {
    pub(crate) fn new(reader: Reader) -> Mempool {
        Mempool {
            inner: Mutex::new(Inner {
                reader,
                pending: BTreeMap::new(),
                estimates: BTreeMap::new(),
                nonces: BTreeMap::new(),
                owners: BTreeMap::new(),
            }),
        }
    }

    /// After each Commit: forget admitted nonces (recheck rebuilds them), learn the committed nonces of the
    /// block's senders, and forget owners and remembered estimates if the block changed a schema.
    pub(crate) fn committed(&self, schema_changed: bool, nonces: BTreeMap<String, u64>) {
        let mut inner = lock(&self.inner);
        inner.pending.clear();
        if inner.nonces.len() + nonces.len() > STATE_CACHE_CAPACITY {
            inner.nonces.clear();
        }
        inner.nonces.extend(nonces);
        if schema_changed {
            inner.estimates.clear();
            inner.owners.clear();
        }
    }

    /// Decide whether `bytes` may enter the mempool.
    pub fn check(
        &self,
        shared: &Shared,
        bytes: &[u8],
    ) -> Result<Result<Admitted, Refusal>, AppError> {
        self.check_with(shared, bytes, false)
    }

    /// Like [`Mempool::check`]; with `recheck` (CometBFT re-checking its mempool after a block, under its mempool
    /// lock, so new transactions wait meanwhile) the cost estimate is skipped: it admitted this transaction
    /// already, the estimate is only a spam filter, and the block meters the real cost. The signature is a cache
    /// hit; the nonce and the schema's owner are checked again because a block can change them.
    pub fn check_with(
        &self,
        shared: &Shared,
        bytes: &[u8],
        recheck: bool,
    ) -> Result<Result<Admitted, Refusal>, AppError> {
        let chain_id = match shared.committed.read() {
            Ok(c) => c.chain_id.clone(),
            Err(p) => p.into_inner().chain_id.clone(),
        };
        let Some(chain_id) = chain_id else {
            return Ok(Err((
                ResultCode::WrongChainId,
                "the node has not initialised its chain yet".to_string(),
            )));
        };
        // Signature checks run outside the lock: they are the expensive part and need no state.
        let checked = match shared.verifier.check(bytes, &chain_id) {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        let mut inner = lock(&self.inner);
        let last = match inner.pending.get(&checked.identity) {
            Some(next) => next - 1,
            None => inner.committed_nonce(&checked.identity)?,
        };
        if let Err(r) = crate::consensus::check_nonce(checked.tx.body.nonce, last) {
            return Ok(Err(r));
        }
        let mut estimated_cost = None;
        match &checked.tx.body.payload {
            Payload::Sql { schema, sql, .. } => {
                if let Err(r) =
                    crate::consensus::owner_rule(inner.owner(schema)?, schema, &checked.identity)
                {
                    return Ok(Err(r));
                }
                let limit = shared.config.cost_limit_per_tx;
                let Inner {
                    reader, estimates, ..
                } = &mut *inner;
                let estimate = (!recheck).then(|| {
                    let key = (schema.clone(), sql.clone());
                    if let Some(cost) = estimates.get(&key) {
                        return Ok(dstorage_sql::Estimate {
                            cost: *cost,
                            plan: Vec::new(),
                            bounded: true,
                        });
                    }
                    let fresh = reader.estimate(schema, sql);
                    if let Ok(e) = &fresh {
                        if size_independent(e) {
                            if estimates.len() >= ESTIMATE_CACHE_CAPACITY {
                                estimates.clear();
                            }
                            estimates.insert(key, e.cost);
                        }
                    }
                    fresh
                });
                match estimate {
                    None => {}
                    Some(Ok(estimate)) if estimate.cost > limit => {
                        return Ok(Err((
                            ResultCode::CostEstimateTooHigh,
                            format!(
                                "estimated cost {} exceeds the limit of {limit} per transaction",
                                estimate.cost
                            ),
                        )))
                    }
                    Some(Ok(estimate)) => estimated_cost = Some(estimate.cost),
                    Some(Err(e))
                        if crate::sqlclass::classify(&e)
                            == crate::sqlclass::ErrorClass::Refused =>
                    {
                        return Ok(Err((ResultCode::SqlRefused, format!("{e:#}"))))
                    }
                    // Statements that refer to tables created earlier in the same transaction cannot be
                    // estimated on committed state; they are metered exactly when they run.
                    Some(Err(e)) => tracing::debug!(error = %e, "no estimate"),
                }
            }
            Payload::DropSchema { schema } if inner.owner(schema)?.is_none() => {
                return Ok(Err((
                    ResultCode::SchemaNotFound,
                    format!("schema {schema} does not exist"),
                )));
            }
            _ => {}
        }
        inner
            .pending
            .insert(checked.identity.clone(), checked.tx.body.nonce + 1);
        Ok(Ok(Admitted {
            checked,
            estimated_cost,
        }))
    }
}
