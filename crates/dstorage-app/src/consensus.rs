//! The consensus connection: InitChain, PrepareProposal, ProcessProposal, FinalizeBlock and Commit, handled
//! strictly in order on one thread that owns the SQLite writer.
//!
//! A block's SQLite transaction opens at FinalizeBlock and stays open until Commit, which commits the block's
//! user writes, its changeset, transaction records, nonces, height and app hash in one SQLite transaction. A
//! crash before that commit loses the whole block, and CometBFT's handshake replays it (Info reports the last
//! committed height).

use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use bytes::Bytes;
use dstorage_sql::{Block, Engine, SqlError};
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{Payload, TxHash};
use sha2::Digest;
use tendermint::abci::response as resp;
use tendermint::abci::types::ExecTxResult;
use tendermint::v0_38::abci::{request, ConsensusRequest, ConsensusResponse};

use crate::auth::Checked;
use crate::mempool::Mempool;
use crate::refusal::Refusal;
// The rules live in their own leaf module; these paths stay for callers that name them here.
pub(crate) use crate::rules::{check_nonce, owner_rule};
use crate::state::{set_committed, Committed, ConsensusMsg, Shared};
use crate::{apphash, keys, AppError, CommitEvent, TxRecord};

/// Serve consensus requests until the channel closes or a fatal error stops the thread.
pub(crate) fn run(
    mut engine: Engine,
    shared: Arc<Shared>,
    mempool: Arc<Mempool>,
    rx: Receiver<ConsensusMsg>,
) {
    while let Ok(ConsensusMsg::Request(req, reply)) = rx.recv() {
        let result = match req {
            ConsensusRequest::FinalizeBlock(req) => {
                let closed = finalize_and_commit(&mut engine, &shared, &mempool, &rx, req, reply);
                if closed || shared.fatal.borrow().is_some() {
                    return;
                }
                continue;
            }
            other => handle(&mut engine, &shared, other),
        };
        let failed = result.as_ref().err().map(|e| e.to_string());
        let _ = reply.send(result);
        if let Some(reason) = failed {
            stop(&shared, reason);
            return;
        }
    }
}

/// Stop the node: log the reason as an error and publish it as fatal (the node exits non-zero).
pub(crate) fn stop(shared: &Shared, reason: String) {
    tracing::error!(target: "dstorage::consensus", %reason, "consensus stopped: the node must not continue");
    shared.fatal.send_replace(Some(reason));
}

fn handle(
    engine: &mut Engine,
    shared: &Shared,
    req: ConsensusRequest,
) -> Result<ConsensusResponse, AppError> {
    Ok(match req {
        ConsensusRequest::InitChain(req) => {
            ConsensusResponse::InitChain(init_chain(engine, shared, req)?)
        }
        ConsensusRequest::PrepareProposal(req) => {
            ConsensusResponse::PrepareProposal(prepare_proposal(engine, shared, req)?)
        }
        ConsensusRequest::ProcessProposal(req) => {
            ConsensusResponse::ProcessProposal(process_proposal(engine, shared, req)?)
        }
        ConsensusRequest::ExtendVote(_) => ConsensusResponse::ExtendVote(resp::ExtendVote {
            vote_extension: Bytes::new(),
        }),
        ConsensusRequest::VerifyVoteExtension(req) => {
            // We never extend votes, so a non-empty extension is not from an honest dstorage node.
            ConsensusResponse::VerifyVoteExtension(if req.vote_extension.is_empty() {
                resp::VerifyVoteExtension::Accept
            } else {
                resp::VerifyVoteExtension::Reject
            })
        }
        ConsensusRequest::Commit => {
            return Err(AppError::Invariant(
                "Commit without a preceding FinalizeBlock".into(),
            ))
        }
        ConsensusRequest::FinalizeBlock(_) => unreachable!("handled by run"),
    })
}

fn init_chain(
    engine: &mut Engine,
    shared: &Shared,
    req: request::InitChain,
) -> Result<resp::InitChain, AppError> {
    let app_hash = apphash::genesis(&req.chain_id, &req.app_state_bytes);
    let mut block = engine.begin_block()?;
    block.kv_put(keys::CHAIN_ID, req.chain_id.as_bytes())?;
    block.kv_put(keys::APP_HASH, &app_hash)?;
    let genesis_set: Vec<(Vec<u8>, u64)> = req
        .validators
        .iter()
        .map(|v| (v.pub_key.to_bytes(), v.power.value()))
        .collect();
    crate::validators::init_chain(&mut block, &req.app_state_bytes, &genesis_set)?;
    block.commit()?;
    set_committed(
        shared,
        Committed {
            height: 0,
            app_hash,
            chain_id: Some(req.chain_id.clone()),
        },
    );
    tracing::info!(chain_id = %req.chain_id, validators = req.validators.len(), app_hash = %hex::encode(app_hash), "InitChain");
    Ok(resp::InitChain {
        consensus_params: None,
        validators: Vec::new(),
        app_hash: app_hash
            .to_vec()
            .try_into()
            .map_err(|_| AppError::Invariant("a 32-byte hash is always a valid AppHash".into()))?,
    })
}

fn chain_id(shared: &Shared) -> Result<String, AppError> {
    match shared.committed.read() {
        Ok(c) => c.chain_id.clone(),
        Err(p) => p.into_inner().chain_id.clone(),
    }
    .ok_or_else(|| AppError::Invariant("block before InitChain: no chain id".into()))
}

/// The last nonce a sender used, as committed (0 if none).
fn committed_nonce(engine: &Engine, identity: &str) -> Result<u64, AppError> {
    Ok(keys::last_nonce(
        engine.kv_get(&keys::nonce(identity))?.as_deref(),
    ))
}

/// A proposal candidate: one CometBFT transaction from the mempool with its members' senders and nonces.
struct Unit {
    bytes: Bytes,
    /// (the member's bytes, its sender's identity, its nonce), in bundle order.
    members: Vec<(Bytes, String, u64)>,
}

/// How many times PrepareProposal goes over the transactions it deferred. The mempool admits each sender's
/// nonces in order, so one pass usually takes everything; more passes only resolve bundles that gossip
/// delivered out of order, and the bound keeps a hostile ordering from costing quadratic time.
const PROPOSAL_PASSES: usize = 8;

fn prepare_proposal(
    engine: &mut Engine,
    shared: &Shared,
    req: request::PrepareProposal,
) -> Result<resp::PrepareProposal, AppError> {
    let chain_id = chain_id(shared)?;
    let mut units = Vec::with_capacity(req.txs.len());
    'txs: for bytes in req.txs {
        let members = match shared.members(&bytes) {
            Ok(m) => m,
            Err(Refusal { code, message }) => {
                tracing::debug!(%code, %message, "proposal drops a transaction");
                continue;
            }
        };
        let mut unit = Vec::with_capacity(members.len());
        for member in members {
            match shared.verifier.check(member, &chain_id) {
                Ok(checked) => {
                    unit.push((
                        bytes.slice_ref(member),
                        checked.identity,
                        checked.tx.body.nonce,
                    ));
                }
                Err(Refusal { code, message }) => {
                    tracing::debug!(%code, %message, "proposal drops a transaction");
                    continue 'txs;
                }
            }
        }
        units.push(Unit {
            bytes,
            members: unit,
        });
    }
    // Each sender's next nonce as the proposal so far leaves it.
    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    let budget = u64::try_from(req.max_tx_bytes).unwrap_or(0);
    let mut used = 0u64;
    let mut txs = Vec::new();
    for _ in 0..PROPOSAL_PASSES {
        let mut deferred = Vec::new();
        let mut progress = false;
        for unit in units {
            // A unit goes in whole or not at all: members already executed (stale nonces) are left out of it,
            // and a member whose sender has an earlier nonce still to come defers the whole unit.
            let mut taken: BTreeMap<&str, u64> = BTreeMap::new();
            let mut keep = Vec::with_capacity(unit.members.len());
            let mut gap = false;
            for (k, (_, identity, nonce)) in unit.members.iter().enumerate() {
                let expected = match taken.get(identity.as_str()).or_else(|| next.get(identity)) {
                    Some(n) => *n,
                    None => committed_nonce(engine, identity)?.saturating_add(1),
                };
                if *nonce < expected {
                    continue;
                }
                if *nonce > expected {
                    gap = true;
                    break;
                }
                taken.insert(identity, expected + 1);
                keep.push(k);
            }
            if gap {
                deferred.push(unit);
                continue;
            }
            if keep.is_empty() {
                continue;
            }
            let bytes = if keep.len() == unit.members.len() {
                unit.bytes.clone()
            } else if let [only] = keep[..] {
                unit.members[only].0.clone()
            } else {
                let kept: Vec<&[u8]> = keep.iter().map(|&k| &unit.members[k].0[..]).collect();
                Bytes::from(dstorage_types::tx::encode_bundle(&kept))
            };
            // CometBFT counts protobuf framing too; 8 bytes per tx over-approximates it.
            let size = bytes.len() as u64 + 8;
            if used + size > budget {
                continue;
            }
            used += size;
            for (identity, n) in taken {
                next.insert(identity.to_owned(), n);
            }
            txs.push(bytes);
            progress = true;
        }
        if !progress || deferred.is_empty() {
            break;
        }
        units = deferred;
    }
    Ok(resp::PrepareProposal { txs })
}

fn process_proposal(
    engine: &mut Engine,
    shared: &Shared,
    req: request::ProcessProposal,
) -> Result<resp::ProcessProposal, AppError> {
    let chain_id = chain_id(shared)?;
    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    for (i, bytes) in req.txs.iter().enumerate() {
        let members = match shared.members(bytes) {
            Ok(m) => m,
            Err(Refusal { code, message }) => {
                tracing::warn!(height = %req.height, index = i, %code, %message, "rejecting proposal with an invalid transaction");
                return Ok(resp::ProcessProposal::Reject);
            }
        };
        for (m, member) in members.iter().enumerate() {
            let checked = match shared.verifier.check(member, &chain_id) {
                Ok(c) => c,
                Err(Refusal { code, message }) => {
                    tracing::warn!(height = %req.height, index = i, member = m, %code, %message, "rejecting proposal with an invalid transaction");
                    return Ok(resp::ProcessProposal::Reject);
                }
            };
            let expected = match next.get(&checked.identity) {
                Some(n) => *n,
                None => committed_nonce(engine, &checked.identity)?.saturating_add(1),
            };
            if checked.tx.body.nonce != expected {
                tracing::warn!(height = %req.height, index = i, member = m, sender = %checked.identity, nonce = checked.tx.body.nonce, expected, "rejecting proposal with an out-of-order nonce");
                return Ok(resp::ProcessProposal::Reject);
            }
            next.insert(checked.identity, expected + 1);
        }
    }
    Ok(resp::ProcessProposal::Accept)
}

/// Execute a block, answer FinalizeBlock, then wait on the same thread for its Commit. Returns true if the app
/// was closed while waiting (the block is then discarded).
fn finalize_and_commit(
    engine: &mut Engine,
    shared: &Shared,
    mempool: &Mempool,
    rx: &Receiver<ConsensusMsg>,
    req: request::FinalizeBlock,
    reply: tokio::sync::oneshot::Sender<Result<ConsensusResponse, AppError>>,
) -> bool {
    let previous = match shared.committed.read() {
        Ok(c) => c.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let height = req.height.value();
    // The block header's time in unix seconds: consensus time, equal on every node (grants' `locked_until`).
    let block_time = u64::try_from(req.time.unix_timestamp()).unwrap_or(0);
    // Transactions known to abort the whole SQLite transaction (see `Aborted`), found on earlier attempts.
    let mut aborted: BTreeMap<u32, Aborted> = BTreeMap::new();
    let execution_started = crate::sys::thread_cpu_time();
    let (block, response, event, nonces) = loop {
        let mut block = match engine.begin_block() {
            Ok(b) => b,
            Err(e) => {
                let reason = format!("cannot begin block {height}: {e}");
                let _ = reply.send(Err(AppError::Invariant(reason.clone())));
                stop(shared, reason);
                return false;
            }
        };
        match execute_block(
            &mut block,
            shared,
            &previous,
            (height, block_time),
            &req.txs,
            &aborted,
        ) {
            Ok((response, event, nonces)) => break (block, response, event, nonces),
            Err(BlockError::Restart(index, why)) => {
                tracing::warn!(height, index, reason = %why.message, "a transaction aborted the block's SQLite transaction; re-executing the block without it");
                let _ = block.discard();
                aborted.insert(index, why);
            }
            Err(BlockError::Fatal(e)) => {
                let reason = format!("executing block {height}: {e}");
                let _ = block.discard();
                let _ = reply.send(Err(AppError::Invariant(reason.clone())));
                stop(shared, reason);
                return false;
            }
        }
    };
    let mut execution = crate::sys::thread_cpu_time().saturating_sub(execution_started);
    let _ = reply.send(Ok(ConsensusResponse::FinalizeBlock(response)));

    // CometBFT sends Commit next on this connection; anything else means we lost track of the protocol.
    let Ok(ConsensusMsg::Request(next, reply)) = rx.recv() else {
        let _ = block.discard();
        return true;
    };
    if !matches!(next, ConsensusRequest::Commit) {
        let reason = format!("expected Commit after FinalizeBlock {height}, got {next:?}");
        let _ = block.discard();
        let _ = reply.send(Err(AppError::Invariant(reason.clone())));
        {
            stop(shared, reason);
            return false;
        }
    }
    let commit_started = crate::sys::thread_cpu_time();
    let committed = block.commit();
    execution += crate::sys::thread_cpu_time().saturating_sub(commit_started);
    shared.timings.execution_nanos.fetch_add(
        u64::try_from(execution.as_nanos()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
    if let Err(e) = committed {
        let reason = format!("commit of block {height} failed: {e}");
        let _ = reply.send(Err(AppError::Invariant(reason.clone())));
        {
            stop(shared, reason);
            return false;
        }
    }
    set_committed(
        shared,
        Committed {
            height,
            app_hash: event.app_hash,
            chain_id: previous.chain_id,
        },
    );
    mempool.committed(event.schema_changed, nonces);
    let _ = shared.commits.send(event);
    let _ = reply.send(Ok(ConsensusResponse::Commit(resp::Commit {
        data: Bytes::new(),
        retain_height: 0u32.into(),
    })));
    false
}

/// Run every transaction of the block and write the block's bookkeeping into the same SQLite transaction.
fn execute_block(
    block: &mut Block<'_>,
    shared: &Shared,
    previous: &Committed,
    (height, block_time): (u64, u64),
    txs: &[Bytes],
    aborted: &BTreeMap<u32, Aborted>,
) -> Result<(resp::FinalizeBlock, CommitEvent, BTreeMap<String, u64>), BlockError> {
    // A marker inside the block's SQLite transaction: if a statement's failure rolls the whole transaction
    // back, the marker no longer holds this height, and that is how we notice.
    block.kv_put(keys::BLOCK_OPEN, &height.to_be_bytes())?;
    let grants_before = block.kv_get(keys::GRANTS_HASH)?;
    if height != previous.height + 1 && previous.height != 0 {
        return Err(AppError::Invariant(format!(
            "FinalizeBlock for height {height} but the last committed height is {}",
            previous.height
        ))
        .into());
    }
    let chain_id = previous
        .chain_id
        .clone()
        .ok_or_else(|| AppError::Invariant("FinalizeBlock before InitChain".into()))?;
    #[allow(
        clippy::disallowed_methods,
        reason = "the block's execution time goes to a log line and the metrics only, never into state or results"
    )]
    let started = std::time::Instant::now();
    let mut tx_results = Vec::with_capacity(txs.len());
    let mut outcomes = Vec::with_capacity(txs.len());
    let mut hashes = Vec::with_capacity(txs.len());
    let mut codes = Vec::with_capacity(txs.len());
    let mut senders = std::collections::BTreeSet::new();
    // Records count the transactions a block carries, bundle members one by one.
    let mut index = 0u32;
    let mut validator_changes = crate::validators::BlockChanges::default();
    for bytes in txs {
        let members: Vec<Result<&[u8], Refusal>> = match shared.members(bytes) {
            Ok(m) => m.into_iter().map(Ok).collect(),
            // Only a byzantine proposal carries this (ProcessProposal rejects it): recorded, not executed.
            Err(r) => vec![Err(r)],
        };
        let mut unit = ExecTxResult::default();
        // This unit's members' codes are the tail of `codes` from here.
        let first = codes.len();
        for member in members {
            let record = match member {
                Ok(member) => execute_tx(
                    block,
                    shared,
                    &chain_id,
                    (height, block_time),
                    index,
                    member,
                    aborted,
                    &mut validator_changes,
                )?,
                Err(Refusal { code, message }) => record(
                    dstorage_types::tx::tx_hash(bytes),
                    height,
                    index,
                    code,
                    message,
                ),
            };
            index += 1;
            outcomes.push((record.code.code(), record.cost));
            unit.gas_used = unit
                .gas_used
                .saturating_add(i64::try_from(record.cost).unwrap_or(i64::MAX));
            if codes.len() == first {
                unit.code = record.code.code().into();
                unit.log = record.message.clone();
            }
            hashes.push(record.hash);
            codes.push(record.code);
            if let Some(sender) = &record.sender {
                senders.insert(sender.clone());
            }
            let json = serde_json::to_vec(&record)
                .map_err(|e| AppError::Invariant(format!("encoding a tx record: {e}")))?;
            block.kv_put(&keys::tx(&record.hash.0), &json)?;
        }
        let unit_codes = &codes[first..];
        if unit_codes.len() > 1 {
            // A bundle succeeded as a carrier; its members' own results are in their records.
            let failed = unit_codes.iter().filter(|c| **c != ResultCode::Ok).count();
            unit.code = 0u32.into();
            unit.log = format!(
                "bundle of {} transactions: {} ok, {failed} failed",
                unit_codes.len(),
                unit_codes.len() - failed
            );
        }
        tx_results.push(unit);
    }
    // Requests that reached their threshold become this block's validator updates (docs/ARCHITECTURE.md,
    // "Validators").
    let (updates, validator_state) =
        crate::validators::settle(block, &mut validator_changes, height)?;
    // The senders' nonces as this block leaves them, for the mempool's cache of committed state.
    let mut nonces = BTreeMap::new();
    for sender in senders {
        let nonce = keys::last_nonce(block.kv_get(&keys::nonce(&sender))?.as_deref());
        nonces.insert(sender, nonce);
    }
    // The hash is the SHA-256 of the canonical encoding (docs/changeset.md), which the engine
    // writes straight from its change log with the changeset's one record encoder.
    let changeset = block.changeset_encoded()?;
    let encoded = changeset.bytes;
    let changeset_hash: [u8; 32] = sha2::Sha256::digest(&encoded).into();
    // A block without transactions changes nothing, so it keeps the app hash. CometBFT relies on that: it
    // makes the next block at once only after a block that changed the app hash (the block that proves it),
    // and otherwise waits for transactions or `create_empty_blocks_interval`, so an idle network rests.
    let app_hash = if txs.is_empty() {
        previous.app_hash
    } else {
        apphash::next(
            &previous.app_hash,
            &changeset_hash,
            &apphash::validators_hash(&updates),
            &apphash::results_hash(&outcomes),
        )
    };
    // A block that changed a grant also commits to the grants' running hash (`crate::grants`).
    let grants_after = block.kv_get(keys::GRANTS_HASH)?;
    let app_hash = match grants_after {
        Some(grants) if grants_after.as_ref() != grants_before.as_ref() => {
            apphash::with_grants(&app_hash, &grants)
        }
        _ => app_hash,
    };
    // A block that changed validator state (requests, votes, the set) commits to its running hash too.
    let app_hash = match validator_state {
        Some(state) => crate::validators::extend_app_hash(&app_hash, &state),
        None => app_hash,
    };
    let changeset_bytes = encoded.len();
    block.kv_put(&keys::changeset(height), &encoded)?;
    if let Some(keep) = shared.config.changeset_retention {
        if height > keep {
            block.kv_delete(&keys::changeset(height - keep))?;
        }
    }
    block.kv_put(keys::HEIGHT, &height.to_be_bytes())?;
    block.kv_put(keys::BLOCK_TIME, &block_time.to_be_bytes())?;
    block.kv_put(keys::APP_HASH, &app_hash)?;
    // Empty blocks come several times a second; only blocks with transactions are worth an info line.
    let level_info = !txs.is_empty();
    macro_rules! block_log {
        ($($t:tt)*) => { if level_info { tracing::info!($($t)*) } else { tracing::debug!($($t)*) } };
    }
    block_log!(
        height,
        txs = txs.len(),
        changes = changeset.records,
        app_hash = %hex::encode(app_hash),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "executed block"
    );
    let response = resp::FinalizeBlock {
        events: Vec::new(),
        tx_results,
        validator_updates: updates
            .iter()
            .map(|(key, power)| {
                Ok(tendermint::validator::Update {
                    pub_key: tendermint::PublicKey::from_raw_ed25519(key).ok_or_else(|| {
                        AppError::Invariant("a validator key is not an ed25519 key".into())
                    })?,
                    power: tendermint::vote::Power::try_from(*power).map_err(|e| {
                        AppError::Invariant(format!("validator power {power}: {e}"))
                    })?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?,
        consensus_param_updates: None,
        app_hash: app_hash
            .to_vec()
            .try_into()
            .map_err(|_| AppError::Invariant("a 32-byte hash is always a valid AppHash".into()))?,
    };
    Ok((
        response,
        CommitEvent {
            height,
            app_hash,
            txs: hashes,
            codes,
            execution: started.elapsed(),
            changeset_records: changeset.records as usize,
            changeset_bytes,
            schema_changed: changeset.schema_records > 0,
        },
        nonces,
    ))
}

fn record(hash: TxHash, height: u64, index: u32, code: ResultCode, message: String) -> TxRecord {
    TxRecord {
        hash,
        height,
        index,
        code,
        message,
        cost: 0,
        rows_changed: 0,
        columns: Vec::new(),
        rows: Vec::new(),
        sender: None,
        nonce: None,
    }
}

/// Execute one transaction. Invalid input yields a record with a non-zero code; only storage failures are errors.
#[allow(
    clippy::too_many_arguments,
    reason = "the block's context, passed down as it is; a struct would only be built for this one call"
)]
fn execute_tx(
    block: &mut Block<'_>,
    shared: &Shared,
    chain_id: &str,
    (height, block_time): (u64, u64),
    index: u32,
    bytes: &[u8],
    aborted: &BTreeMap<u32, Aborted>,
    validator_changes: &mut crate::validators::BlockChanges,
) -> Result<TxRecord, BlockError> {
    let hash = dstorage_types::tx::tx_hash(bytes);
    let Checked {
        tx, identity, key, ..
    } = match shared.verifier.check(bytes, chain_id) {
        Ok(c) => c,
        Err(Refusal { code, message }) => return Ok(record(hash, height, index, code, message)),
    };
    let mut rec = record(hash, height, index, ResultCode::Ok, String::new());
    rec.sender = Some(identity.clone());
    rec.nonce = Some(tx.body.nonce);

    let nonce_key = keys::nonce(&identity);
    let last = keys::last_nonce(block.kv_get(&nonce_key)?.as_deref());
    if let Err(Refusal { code, message }) = check_nonce(tx.body.nonce, last) {
        rec.code = code;
        rec.message = message;
        return Ok(rec);
    }
    // The nonce is spent even if the payload fails: the transaction was ordered and its cost accounted.
    block.kv_put(&nonce_key, &tx.body.nonce.to_be_bytes())?;

    if let Some(why) = aborted.get(&index) {
        rec.code = why.code;
        rec.cost = why.cost;
        rec.message = why.message.clone();
        return Ok(rec);
    }
    let limit = shared.config.cost_limit_per_tx;
    let outcome: Result<Option<dstorage_sql::ExecOutcome>, Failed> = match &tx.body.payload {
        Payload::DeploySchema { schema, sql } => {
            if block.kv_get(&keys::owner(schema))?.is_some() {
                Err(Refusal::new(
                    ResultCode::SchemaExists,
                    format!("schema {schema} already exists"),
                )
                .into())
            } else {
                deploy(block, height, schema, sql, limit, &identity)?
            }
        }
        Payload::DropSchema { schema } => match owner_check(block, schema, &identity)? {
            Err(r) => Err(r.into()),
            Ok(()) => match block.drop_schema(schema) {
                Ok(()) => {
                    block.kv_delete(&keys::owner(schema))?;
                    block.kv_delete(&keys::actions(schema))?;
                    block.kv_delete(&keys::public_read(schema))?;
                    Ok(None)
                }
                Err(e) => Err(failed_sql(e)?),
            },
        },
        Payload::Sql {
            schema,
            sql,
            params,
        } => match owner_check(block, schema, &identity)? {
            Err(r) => Err(r.into()),
            Ok(()) => match block.execute_with_params(schema, sql, params, limit) {
                Ok(out) => Ok(Some(out)),
                Err(e) => Err(failed_sql(e)?),
            },
        },
        Payload::Call {
            schema,
            action,
            args,
        } => {
            let caller = dstorage_types::caller::Caller {
                identity: identity.clone(),
                standard: tx.body.standard.clone(),
                key: Some(key.clone()),
            };
            let context = dstorage_types::action::CallContext {
                caller: Some(caller),
                height,
                block_time: i64::try_from(block_time).unwrap_or(i64::MAX),
                tx: Some(hash.0),
            };
            call(block, schema, action, args, &context, limit)?
        }
        Payload::Grant {
            grantee,
            data_id,
            locked_until,
        } => match crate::grants::validate(
            dstorage_auth::default_registry(),
            grantee,
            data_id,
            *locked_until,
        ) {
            Err(r) => Err(r.into()),
            Ok(()) => {
                crate::grants::grant(block, &identity, grantee, data_id, *locked_until, height)?
                    .map(|()| None)
                    .map_err(Failed::from)
            }
        },
        Payload::Revoke { grantee, data_id } => {
            match crate::grants::validate(dstorage_auth::default_registry(), grantee, data_id, 0) {
                Err(r) => Err(r.into()),
                Ok(()) => {
                    crate::grants::revoke(block, &identity, grantee, data_id, block_time, height)?
                        .map(|()| None)
                        .map_err(Failed::from)
                }
            }
        }
        p if crate::validators::is_validator_payload(p) => {
            crate::validators::execute(block, validator_changes, height, &tx)?
                .map(|()| None)
                .map_err(Failed::from)
        }
        #[allow(unreachable_patterns)]
        other => Err(Refusal::new(
            ResultCode::Malformed,
            format!("payload type {} is not supported yet", other.type_name()),
        )
        .into()),
    };
    match outcome {
        Ok(Some(out)) => {
            rec.cost = out.cost;
            rec.rows_changed = out.rows_changed;
            if let Some(rows) = out.rows {
                rec.columns = rows.columns;
                rec.rows = rows.rows;
            }
        }
        Ok(None) => {}
        Err(Failed {
            refusal: Refusal { code, message },
            metered,
        }) => {
            if block_was_aborted(block, height)? {
                let aborted = match metered {
                    // A write past its data limit, stopped by the meter (see `Tracker::arm`).
                    _ if matches!(code, ResultCode::DataLimitExceeded | ResultCode::BlockFull) => {
                        Aborted {
                            code,
                            cost: 0,
                            message,
                        }
                    }
                    Some(cost) => Aborted {
                        code: ResultCode::CostLimitExceeded,
                        cost,
                        message,
                    },
                    None => Aborted {
                        code: ResultCode::CostLimitExceeded,
                        cost: limit,
                        message: format!(
                            "cost limit exceeded: limit {limit}; the statement ran far past it and was interrupted"
                        ),
                    },
                };
                return Err(BlockError::Restart(index, aborted));
            }
            rec.code = code;
            rec.message = message;
        }
    }
    Ok(rec)
}

/// Why a transaction aborted its block's SQLite transaction.
///
/// SQLite rolls back the whole enclosing transaction, not just the statement, when a *writing* statement is
/// interrupted (here: by the cost meter). The block is then executed again from the start with that transaction
/// marked as failed, which every node does identically, so the outcome stays deterministic.
#[derive(Debug, Clone)]
pub(crate) struct Aborted {
    /// `cost_limit_exceeded`, or the data limit the transaction passed.
    code: ResultCode,
    cost: u64,
    message: String,
}

/// A transaction that failed in a block: its refusal, and the cost its statement had used when the meter
/// stopped it (the engine's `SqlError::CostLimitExceeded` says), which a block re-executed after an abort records
/// (see [`Aborted`]) so that it enters the app hash.
#[derive(Debug)]
struct Failed {
    refusal: Refusal,
    metered: Option<u64>,
}

impl From<Refusal> for Failed {
    fn from(refusal: Refusal) -> Failed {
        Failed {
            refusal,
            metered: None,
        }
    }
}

/// How executing a block can fail.
#[derive(Debug)]
pub(crate) enum BlockError {
    /// Transaction `index` aborted the SQLite transaction: execute the block again without it.
    Restart(u32, Aborted),
    /// The node cannot continue.
    Fatal(AppError),
}

impl From<AppError> for BlockError {
    fn from(e: AppError) -> Self {
        BlockError::Fatal(e)
    }
}

impl From<SqlError> for BlockError {
    fn from(e: SqlError) -> Self {
        BlockError::Fatal(AppError::Storage(e))
    }
}

fn owner_check(
    block: &Block<'_>,
    schema: &str,
    identity: &str,
) -> Result<Result<(), Refusal>, AppError> {
    Ok(owner_rule(
        block.kv_get(&keys::owner(schema))?,
        schema,
        identity,
    ))
}

/// Run a `call`: the rule and the arguments are checked again on the block's state (the schema may have been
/// dropped or redeployed since CheckTx), then the action's statements run as one atomic unit.
fn call(
    block: &mut Block<'_>,
    schema: &str,
    action: &str,
    args: &[dstorage_types::value::Value],
    context: &dstorage_types::action::CallContext,
    limit: u64,
) -> Result<Result<Option<dstorage_sql::ExecOutcome>, Failed>, BlockError> {
    let owner = block.kv_get(&keys::owner(schema))?;
    let catalog = crate::actions::decode_catalog(schema, block.kv_get(&keys::actions(schema))?)?;
    let (found, _owner) = match crate::actions::resolve(
        owner,
        &catalog,
        schema,
        action,
        args,
        context.caller.as_ref(),
    ) {
        Ok(x) => x,
        Err(r) => return Ok(Err(r.into())),
    };
    let bindings = found.bindings(args, context);
    let statements: Vec<(&str, &[dstorage_types::value::Value])> = found
        .statements
        .iter()
        .zip(&bindings)
        .map(|(s, b)| (s.exec_sql.as_str(), b.as_slice()))
        .collect();
    // One statement takes the engine's single-statement path, which may skip the savepoint for a proven
    // single-row insert (docs/sql.md, "Atomicity"); it is just as atomic.
    let ran = match statements[..] {
        [(sql, params)] => block.execute_with_params(schema, sql, params, limit),
        _ => block.execute_statements(schema, &statements, limit),
    };
    match ran {
        Ok(out) => Ok(Ok(Some(out))),
        Err(e) => {
            let Failed { refusal, metered } = failed_sql(e)?;
            Ok(Err(Failed {
                refusal: crate::actions::action_refusal(refusal),
                metered,
            }))
        }
    }
}

fn deploy(
    block: &mut Block<'_>,
    height: u64,
    schema: &str,
    sql: &str,
    limit: u64,
    identity: &str,
) -> Result<Result<Option<dstorage_sql::ExecOutcome>, Failed>, BlockError> {
    // Tables and actions (docs/schemas.md): every action statement is judged now, so a bad one is refused
    // at deploy, never at a call.
    let file = match dstorage_sql::actions::check_schema_file(block.config(), schema, sql) {
        Ok(f) => f,
        Err(e) => return Ok(Err(sql_refusal(e)?.into())),
    };
    if let Err(e) = block.create_schema(schema) {
        return Ok(Err(failed_sql(e)?));
    }
    // The tables, then every action statement compiled against them, all or nothing.
    let checks: Vec<(&str, &str)> = file
        .catalog
        .actions
        .values()
        .flat_map(|a| {
            a.statements
                .iter()
                .map(|s| (a.name.as_str(), s.exec_sql.as_str()))
        })
        .collect();
    let ran = block.execute_checked(schema, &file.sql, &checks, limit);
    match ran {
        Ok(out) => {
            block.kv_put(&keys::owner(schema), identity.as_bytes())?;
            if file.has_catalog() {
                block.kv_put(
                    &keys::actions(schema),
                    &crate::actions::encode_catalog(&file.catalog)?,
                )?;
            }
            if file.catalog.public_read {
                crate::access::set_public_read(block, schema, true)?;
            }
            Ok(Ok(Some(out)))
        }
        Err(e) => {
            let failed = failed_sql(e)?;
            // The failed statements left nothing; remove the empty namespace so the deploy is all-or-nothing
            // (unless the whole block transaction is gone, which the caller handles by re-executing).
            if !block_was_aborted(block, height)? {
                block.drop_schema(schema)?;
            }
            Ok(Err(failed))
        }
    }
}

/// Whether the block's SQLite transaction has ended under it (see [`Aborted`]): the engine says so, or the
/// marker written at the block's start no longer holds this height.
fn block_was_aborted(block: &Block<'_>, height: u64) -> Result<bool, BlockError> {
    match block.kv_get(keys::BLOCK_OPEN) {
        Ok(marker) => Ok(marker.as_deref() != Some(height.to_be_bytes().as_slice())),
        Err(SqlError::BlockAborted) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// The failure of a transaction whose SQL the engine refused: [`sql_refusal`], with the cost the engine reports
/// the statement had used when it passed the cost limit.
fn failed_sql(e: SqlError) -> Result<Failed, AppError> {
    let metered = match &e {
        SqlError::CostLimitExceeded { used, .. } => Some(*used),
        _ => None,
    };
    Ok(Failed {
        refusal: sql_refusal(e)?,
        metered,
    })
}

/// Map an engine error caused by the transaction to a result code; pass storage failures up as fatal.
fn sql_refusal(e: SqlError) -> Result<Refusal, AppError> {
    use crate::sqlclass::{classify, ErrorClass};
    if matches!(e, SqlError::BlockAborted) {
        // The engine interrupted a write that ran far past its budget; SQLite then dropped the whole block
        // transaction. The caller notices (`block_was_aborted`) and re-executes the block without it.
        return Ok(Refusal::new(
            ResultCode::CostLimitExceeded,
            "cost limit exceeded: the statement ran far past the limit and was interrupted",
        ));
    }
    let code = match classify(&e) {
        ErrorClass::CostLimit => ResultCode::CostLimitExceeded,
        ErrorClass::DataLimit => ResultCode::DataLimitExceeded,
        ErrorClass::BlockFull => ResultCode::BlockFull,
        ErrorClass::Refused => ResultCode::SqlRefused,
        ErrorClass::Input => ResultCode::SqlError,
        ErrorClass::Storage => return Err(AppError::Storage(e)),
    };
    Ok(Refusal::new(code, format!("{e:#}")))
}
