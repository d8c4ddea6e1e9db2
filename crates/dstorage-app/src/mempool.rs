//! CheckTx: admit a transaction to the mempool only if it could execute in the next blocks.
//!
//! Beyond the stateless checks ([`crate::auth`]) the mempool tracks, per sender, the next nonce it expects
//! counting transactions it already admitted, so a client may send several transactions before the first
//! commits. The map is cleared at every Commit; CometBFT's recheck then rebuilds it from the remaining mempool
//! in order, dropping what the block made stale.
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
            }),
        }
    }

    /// After each Commit: forget admitted nonces (recheck rebuilds them), and remembered estimates if the block
    /// changed a schema.
    pub(crate) fn committed(&self, schema_changed: bool) {
        let mut inner = lock(&self.inner);
        inner.pending.clear();
        if schema_changed {
            inner.estimates.clear();
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
        let Inner {
            reader,
            pending,
            estimates,
        } = &mut *inner;
        let last = match pending.get(&checked.identity) {
            Some(next) => next - 1,
            None => reader
                .kv_get(&keys::nonce(&checked.identity))?
                .as_deref()
                .and_then(keys::decode_u64)
                .unwrap_or(0),
        };
        if let Err(r) = crate::consensus::check_nonce(checked.tx.body.nonce, last) {
            return Ok(Err(r));
        }
        let mut estimated_cost = None;
        match &checked.tx.body.payload {
            Payload::Sql { schema, sql, .. } => {
                if let Err(r) = crate::consensus::owner_rule(
                    reader.kv_get(&keys::owner(schema))?,
                    schema,
                    &checked.identity,
                ) {
                    return Ok(Err(r));
                }
                let limit = shared.config.cost_limit_per_tx;
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
            Payload::DropSchema { schema } if reader.kv_get(&keys::owner(schema))?.is_none() => {
                return Ok(Err((
                    ResultCode::SchemaNotFound,
                    format!("schema {schema} does not exist"),
                )));
            }
            _ => {}
        }
        pending.insert(checked.identity.clone(), checked.tx.body.nonce + 1);
        Ok(Ok(Admitted {
            checked,
            estimated_cost,
        }))
    }
}
