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
//! SQL that its text alone fails (it does not parse, or the guard refuses a construct, a table definition or a
//! name) is refused with `sql_refused`, for a deploy as for a transaction, and for every statement of it, not
//! only up to the first one that names a table the transaction itself creates: it would fail in every block, so
//! it spends no nonce. Errors that depend on state (constraints, unknown tables) are left to execution.
//!
//! Cost estimates of statements whose cost does not depend on table sizes (an INSERT of VALUES: no scan, no
//! lookup in the plan) are remembered by schema and SQL text until a block changes a schema, so a client that
//! sends the same parameterised insert again does not pay a parse and a query plan per transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use dstorage_sql::Reader;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;

use crate::auth::Checked;
use crate::refusal::Refusal;
use crate::sqlclass::follows_from_text;
use crate::state::Shared;
use crate::sys::lock;
use crate::{keys, AppError};

/// Mempool-side state.
pub struct Mempool {
    inner: Mutex<Inner>,
}

struct Inner {
    reader: Reader,
    pending: BTreeMap<String, u64>,
    /// Hashes of the transactions admitted since the last Commit (bare or bundled), so the same bytes sent
    /// again while they wait are admitted again instead of refused as a replay of their own nonce.
    admitted: BTreeSet<[u8; 32]>,
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

impl Inner {
    /// The payload checks of a new transaction: the schema's owner and the cost estimate. `Ok(Some(cost))` is
    /// the estimate when there is one.
    fn check_payload(
        &mut self,
        shared: &Shared,
        checked: &Checked,
    ) -> Result<Result<Option<u64>, Refusal>, AppError> {
        match &checked.tx.body.payload {
            Payload::Sql { schema, sql, .. } => {
                if let Err(r) =
                    crate::rules::owner_rule(self.owner(schema)?, schema, &checked.identity)
                {
                    return Ok(Err(r));
                }
                let limit = shared.config.cost_limit_per_tx;
                let estimate = self.estimate(schema, sql);
                match estimate {
                    Ok(cost) if cost > limit => Ok(Err(Refusal::new(
                        ResultCode::CostEstimateTooHigh,
                        format!(
                            "estimated cost {cost} exceeds the limit of {limit} per transaction"
                        ),
                    ))),
                    Ok(cost) => Ok(Ok(Some(cost))),
                    Err(e) if follows_from_text(&e) => Ok(Err(refusal(&e))),
                    // The estimate stopped at an error that depends on state (say, a table an earlier
                    // statement of the same transaction creates): such statements are metered exactly when
                    // they run, but the statements after the one that stopped the estimate may still be
                    // refused by their text.
                    Err(e) => {
                        tracing::debug!(error = %e, "no estimate");
                        Ok(self.judge_text(schema, sql).map(|()| None))
                    }
                }
            }
            Payload::DeploySchema { schema, sql } => {
                Ok(self.judge_schema_file(schema, sql).map(|()| None))
            }
            Payload::Call {
                schema,
                action,
                args,
            } => {
                let owner = self.owner(schema)?;
                let catalog = crate::actions::decode_catalog(
                    schema,
                    self.reader.kv_get(&keys::actions(schema))?,
                )?;
                let caller = checked.caller();
                let found = match crate::actions::resolve(
                    owner,
                    &catalog,
                    schema,
                    action,
                    args,
                    Some(&caller),
                ) {
                    Ok((found, _)) => found,
                    Err(r) => return Ok(Err(r)),
                };
                // The same spam filter as an `sql` transaction's: the statements' estimated cost, summed
                // (placeholders are planned unbound, as for a parameterised statement).
                let limit = shared.config.cost_limit_per_tx;
                let mut cost = 0u64;
                for statement in &found.statements {
                    match self.estimate(schema, &statement.exec_sql) {
                        Ok(c) => cost = cost.saturating_add(c),
                        Err(e) => {
                            tracing::debug!(error = %e, "no estimate of an action statement");
                            return Ok(Ok(None));
                        }
                    }
                }
                if cost > limit {
                    return Ok(Err(Refusal::new(
                        ResultCode::CostEstimateTooHigh,
                        format!(
                            "{schema}.{action}: estimated cost {cost} exceeds the limit of {limit} per transaction"
                        ),
                    )));
                }
                Ok(Ok(Some(cost)))
            }
            Payload::Grant {
                grantee,
                data_id,
                locked_until,
            } => Ok(crate::grants::validate(
                dstorage_auth::default_registry(),
                grantee,
                data_id,
                *locked_until,
            )
            .map(|()| None)),
            Payload::Revoke { grantee, data_id } => {
                Ok(
                    crate::grants::validate(dstorage_auth::default_registry(), grantee, data_id, 0)
                        .map(|()| None),
                )
            }
            Payload::DropSchema { schema } if self.owner(schema)?.is_none() => {
                Ok(Err(Refusal::new(
                    ResultCode::SchemaNotFound,
                    format!("schema {schema} does not exist"),
                )))
            }
            // What a validator transaction's text alone fails (standard, key, contact); the rest needs the set
            // as the block finds it.
            p if crate::validators::is_validator_payload(p) => {
                Ok(crate::validators::stateless(&checked.tx.body).map(|_| None))
            }
            _ => Ok(Ok(None)),
        }
    }

    /// Refuse a schema file whose tables or actions its text alone fails (`docs/schemas.md`).
    fn judge_schema_file(&self, schema: &str, file: &str) -> Result<(), Refusal> {
        match dstorage_sql::actions::check_schema_file(self.reader.config(), schema, file) {
            Ok(_) => Ok(()),
            Err(e) if follows_from_text(&e) => Err(refusal(&e)),
            Err(e) => {
                tracing::debug!(error = %e, "schema file check ended without a verdict");
                Ok(())
            }
        }
    }

    /// Refuse `sql` in `schema` if its text alone fails it (see `sqlclass::follows_from_text`).
    fn judge_text(&self, schema: &str, sql: &str) -> Result<(), Refusal> {
        match self.reader.check(schema, sql) {
            Ok(()) => Ok(()),
            Err(e) if follows_from_text(&e) => Err(refusal(&e)),
            Err(e) => {
                tracing::debug!(error = %e, "text check ended without a verdict");
                Ok(())
            }
        }
    }

    /// The cost estimate of `sql` in `schema`, remembered when it cannot depend on table sizes.
    fn estimate(&mut self, schema: &str, sql: &str) -> Result<u64, dstorage_sql::SqlError> {
        let key = (schema.to_owned(), sql.to_owned());
        if let Some(cost) = self.estimates.get(&key) {
            return Ok(*cost);
        }
        let e = self.reader.estimate(schema, sql)?;
        if size_independent(&e) {
            if self.estimates.len() >= ESTIMATE_CACHE_CAPACITY {
                self.estimates.clear();
            }
            self.estimates.insert(key, e.cost);
        }
        Ok(e.cost)
    }
}

/// The nonce rule as the mempool sees it: `last` counts the transactions it admitted, `committed` only
/// committed ones. A nonce at or below `committed` was used in a block (`nonce_replayed`); one above it but
/// not above `last` is held by a transaction still waiting in the mempool (`nonce_pending`): nothing committed
/// it, and the waiting one may yet be dropped.
fn pending_nonce_rule(nonce: u64, last: u64, committed: u64) -> Result<(), Refusal> {
    match crate::rules::check_nonce(nonce, last) {
        Err(Refusal { code: ResultCode::NonceReplayed, .. }) if nonce > committed => Err(Refusal::new(
            ResultCode::NoncePending,
            format!(
                "nonce {nonce} is held by another transaction of this sender that waits in the mempool \
                 (not committed yet); the next free nonce is {}",
                last.saturating_add(1)
            ),
        )),
        other => other,
    }
}

/// The refusal of an error that follows from the text: `sql_refused`, the code the same transaction gets in a
/// block (`sqlclass::classify` classes every such error as refused).
fn refusal(e: &dstorage_sql::SqlError) -> Refusal {
    Refusal::new(ResultCode::SqlRefused, format!("{e:#}"))
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
    /// The checked transactions, in order: one for a bare transaction, the members still waiting for a bundle.
    pub checked: Vec<Checked>,
    /// Estimated cost (summed over a bundle's members), when a payload runs SQL against an existing schema.
    pub estimated_cost: Option<u64>,
}

impl Mempool {
    pub(crate) fn new(reader: Reader) -> Mempool {
        Mempool {
            inner: Mutex::new(Inner {
                reader,
                pending: BTreeMap::new(),
                admitted: BTreeSet::new(),
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
        inner.admitted.clear();
        if inner.nonces.len() + nonces.len() > STATE_CACHE_CAPACITY {
            inner.nonces.clear();
        }
        inner.nonces.extend(nonces);
        if schema_changed {
            inner.estimates.clear();
            inner.owners.clear();
        }
    }

    /// Decide whether `bytes` (a transaction or a bundle of them) may enter the mempool. A bundle is admitted
    /// only if every member would be, in order, counting the nonces of the members before it; otherwise nothing
    /// of it is admitted and the refusal names the member.
    ///
    /// With `recheck` (CometBFT re-checking its mempool after a block, under its mempool lock, so new
    /// transactions wait meanwhile) only the nonces are checked again: the signature is a cache hit, the cost
    /// estimate is a spam filter that already passed, and a schema's owner is left to execution, which records
    /// `unauthorized` or `schema_not_found` for the sender to see instead of letting the transaction vanish. A
    /// bundle member whose nonce a block used meanwhile is skipped (the proposer leaves it out), so the other
    /// members of its bundle stay; a bundle with nothing left waiting, or with a nonce gap, leaves the mempool.
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
            return Ok(Err(Refusal::new(
                ResultCode::WrongChainId,
                "the node has not initialised its chain yet".to_string(),
            )));
        };
        let members = match shared.members(bytes) {
            Ok(m) => m,
            Err(r) => return Ok(Err(r)),
        };
        let count = members.len();
        // Signature checks run outside the lock: they are the expensive part and need no state.
        let mut checked = Vec::with_capacity(count);
        for (i, member) in members.iter().enumerate() {
            match shared.verifier.check(member, &chain_id) {
                Ok(c) => checked.push(c),
                Err(r) => return Ok(Err(crate::auth::in_member(count, i, member, r))),
            }
        }
        let mut inner = lock(&self.inner);
        // Nonces this bundle's earlier members take, applied to `pending` only if the whole bundle passes.
        let mut taken: BTreeMap<String, u64> = BTreeMap::new();
        let mut admitted = Vec::with_capacity(count);
        let mut estimated: Option<u64> = None;
        for (i, c) in checked.into_iter().enumerate() {
            let refuse = |r: Refusal| Ok(Err(crate::auth::in_member(count, i, members[i], r)));
            let committed = inner.committed_nonce(&c.identity)?;
            let last = match taken
                .get(&c.identity)
                .or_else(|| inner.pending.get(&c.identity))
            {
                Some(next) => next - 1,
                None => committed,
            };
            match pending_nonce_rule(c.tx.body.nonce, last, committed) {
                Ok(()) => {}
                Err(Refusal {
                    code: ResultCode::NonceReplayed | ResultCode::NoncePending,
                    ..
                }) if recheck && count > 1 => continue,
                // A resend of a waiting transaction (say, a client retrying) is admitted as it was. CometBFT
                // then holds it twice (the first copy may sit in a bundle, under another hash); proposers
                // take whichever comes first and leave the other out as stale.
                Err(Refusal {
                    code: ResultCode::NoncePending,
                    ..
                }) if count == 1 && inner.admitted.contains(&c.hash.0) => {
                    return Ok(Ok(Admitted {
                        checked: vec![c],
                        estimated_cost: None,
                    }));
                }
                Err(r) => return refuse(r),
            }
            if !recheck {
                match inner.check_payload(shared, &c)? {
                    Ok(Some(cost)) => estimated = Some(estimated.unwrap_or(0).saturating_add(cost)),
                    Ok(None) => {}
                    Err(r) => return refuse(r),
                }
            }
            taken.insert(c.identity.clone(), c.tx.body.nonce + 1);
            admitted.push(c);
        }
        if admitted.is_empty() {
            return Ok(Err(Refusal::new(
                ResultCode::NonceReplayed,
                format!("every member of this bundle of {count} has been committed or replaced"),
            )));
        }
        inner.pending.extend(taken);
        inner.admitted.extend(admitted.iter().map(|c| c.hash.0));
        Ok(Ok(Admitted {
            checked: admitted,
            estimated_cost: estimated,
        }))
    }
}
