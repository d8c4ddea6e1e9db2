//! An in-process driver for the real application: it plays CometBFT's part (InitChain, PrepareProposal,
//! ProcessProposal, FinalizeBlock, Commit) so tests can run blocks without consensus or a network.
//!
//! Everything below the ABCI boundary is real: the SQLite file, the signature checks, the mempool.

use std::path::Path;

use bytes::Bytes;
use futures::executor::block_on;
use tendermint::abci::response as resp;
use tendermint::abci::types::CommitInfo;
use tendermint::v0_38::abci::{request, ConsensusRequest, ConsensusResponse};

use crate::{App, AppConfig, AppError};

/// What one driven block produced.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    /// The block height.
    pub height: u64,
    /// The transactions the proposer put in the block (after PrepareProposal).
    pub txs: Vec<Vec<u8>>,
    /// FinalizeBlock's per-transaction results.
    pub results: Vec<tendermint::abci::types::ExecTxResult>,
    /// The app hash after the block.
    pub app_hash: [u8; 32],
}

/// Drives one application instance.
pub struct Harness {
    /// The application under test.
    pub app: App,
    /// The chain id given at InitChain.
    pub chain_id: String,
}

/// The block time the harness gives height `height`: 1,700,000,000 + height unix seconds, so `@block_time`
/// moves with the height and runs stay reproducible.
pub fn block_time(height: u64) -> i64 {
    1_700_000_000 + i64::try_from(height).unwrap_or(0)
}

fn time_at(height: u64) -> tendermint::Time {
    tendermint::Time::from_unix_timestamp(block_time(height), 0)
        .unwrap_or_else(|_| tendermint::Time::unix_epoch())
}

fn time() -> tendermint::Time {
    time_at(0)
}

fn proposer() -> tendermint::account::Id {
    tendermint::account::Id::new([0u8; 20])
}

impl Harness {
    /// Open the app on `db` and, if the chain is new, run InitChain for `chain_id`.
    pub fn start(db: &Path, chain_id: &str) -> Result<Harness, AppError> {
        Self::start_with(AppConfig::new(db), chain_id)
    }

    /// Like [`Harness::start`] with a custom configuration.
    pub fn start_with(config: AppConfig, chain_id: &str) -> Result<Harness, AppError> {
        let app = App::open(config)?;
        if app.committed().chain_id.is_none() {
            let req = request::InitChain {
                time: time(),
                chain_id: chain_id.to_string(),
                consensus_params: default_params(),
                validators: Vec::new(),
                app_state_bytes: Bytes::from_static(b"{}"),
                initial_height: 1u32.into(),
            };
            block_on(app.consensus(ConsensusRequest::InitChain(req)))?;
        }
        Ok(Harness {
            app,
            chain_id: chain_id.to_string(),
        })
    }

    /// Close the app (discarding a block finalized but not committed) and open it again on the same database,
    /// as a node restarted after a crash would.
    pub fn restart(self) -> Result<Harness, AppError> {
        let config = self.app.config().clone();
        self.app.close();
        Self::start_with(config, &self.chain_id)
    }

    /// CheckTx as CometBFT's mempool would call it.
    pub fn check_tx(&self, tx: &[u8]) -> resp::CheckTx {
        self.app.check_tx(tx)
    }

    /// Propose `txs` (PrepareProposal), then process, finalize and commit the proposal.
    pub fn block(&self, txs: Vec<Vec<u8>>) -> Result<BlockOutcome, AppError> {
        let height = self.app.committed().height + 1;
        let prepared = match block_on(self.app.consensus(ConsensusRequest::PrepareProposal(
            request::PrepareProposal {
                max_tx_bytes: 4 * 1024 * 1024,
                txs: txs.into_iter().map(Bytes::from).collect(),
                local_last_commit: None,
                misbehavior: Vec::new(),
                height: height_of(height)?,
                time: time(),
                next_validators_hash: Default::default(),
                proposer_address: proposer(),
            },
        )))? {
            ConsensusResponse::PrepareProposal(p) => p.txs,
            other => return Err(AppError::Invariant(format!("unexpected {other:?}"))),
        };
        match self.process(height, prepared.clone())? {
            resp::ProcessProposal::Accept => {}
            other => {
                return Err(AppError::Invariant(format!(
                    "own proposal at height {height} was {other:?}"
                )))
            }
        }
        self.finalize_and_commit(height, prepared)
    }

    /// ProcessProposal for a proposal made elsewhere (e.g. by a byzantine proposer).
    pub fn process(&self, height: u64, txs: Vec<Bytes>) -> Result<resp::ProcessProposal, AppError> {
        match block_on(self.app.consensus(ConsensusRequest::ProcessProposal(
            request::ProcessProposal {
                txs,
                proposed_last_commit: None,
                misbehavior: Vec::new(),
                hash: Default::default(),
                height: height_of(height)?,
                time: time(),
                next_validators_hash: Default::default(),
                proposer_address: proposer(),
            },
        )))? {
            ConsensusResponse::ProcessProposal(p) => Ok(p),
            other => Err(AppError::Invariant(format!("unexpected {other:?}"))),
        }
    }

    /// FinalizeBlock only (no Commit): the block stays open, as when a node crashes before Commit.
    pub fn finalize_only(&self, height: u64, txs: Vec<Bytes>) -> Result<[u8; 32], AppError> {
        match block_on(
            self.app
                .consensus(ConsensusRequest::FinalizeBlock(finalize_request(
                    height, txs,
                )?)),
        )? {
            ConsensusResponse::FinalizeBlock(f) => f
                .app_hash
                .as_bytes()
                .try_into()
                .map_err(|_| AppError::Invariant("app hash is not 32 bytes".into())),
            other => Err(AppError::Invariant(format!("unexpected {other:?}"))),
        }
    }

    /// FinalizeBlock then Commit, exactly as given (no proposal filtering).
    pub fn finalize_and_commit(
        &self,
        height: u64,
        txs: Vec<Bytes>,
    ) -> Result<BlockOutcome, AppError> {
        let finalized = match block_on(self.app.consensus(ConsensusRequest::FinalizeBlock(
            finalize_request(height, txs.clone())?,
        )))? {
            ConsensusResponse::FinalizeBlock(f) => f,
            other => return Err(AppError::Invariant(format!("unexpected {other:?}"))),
        };
        block_on(self.app.consensus(ConsensusRequest::Commit))?;
        let app_hash: [u8; 32] = finalized
            .app_hash
            .as_bytes()
            .try_into()
            .map_err(|_| AppError::Invariant("app hash is not 32 bytes".into()))?;
        Ok(BlockOutcome {
            height,
            txs: txs.into_iter().map(|b| b.to_vec()).collect(),
            results: finalized.tx_results,
            app_hash,
        })
    }
}

fn finalize_request(height: u64, txs: Vec<Bytes>) -> Result<request::FinalizeBlock, AppError> {
    Ok(request::FinalizeBlock {
        txs,
        decided_last_commit: CommitInfo {
            round: 0u8.into(),
            votes: Vec::new(),
        },
        misbehavior: Vec::new(),
        hash: Default::default(),
        height: height_of(height)?,
        time: time_at(height),
        next_validators_hash: Default::default(),
        proposer_address: proposer(),
    })
}

fn height_of(h: u64) -> Result<tendermint::block::Height, AppError> {
    tendermint::block::Height::try_from(h)
        .map_err(|e| AppError::Invariant(format!("height {h}: {e}")))
}

fn default_params() -> tendermint::consensus::Params {
    use tendermint::consensus::params;
    use tendermint::{block, evidence};
    tendermint::consensus::Params {
        block: block::Size {
            max_bytes: 4 * 1024 * 1024,
            max_gas: -1,
            time_iota_ms: 1000,
        },
        evidence: evidence::Params {
            max_age_num_blocks: 100_000,
            max_age_duration: evidence::Duration(std::time::Duration::from_secs(172_800)),
            max_bytes: 1024 * 1024,
        },
        validator: params::ValidatorParams {
            pub_key_types: vec![tendermint::public_key::Algorithm::Ed25519],
        },
        version: Some(params::VersionParams { app: 1 }),
        abci: params::AbciParams::default(),
    }
}
