//! The app's state below its services: the committed state as the last Commit left it, the commit events, and
//! [`Shared`], what the consensus thread, the mempool, the ABCI services and the [`crate::App`] handle share.
//! Services (`consensus`, `mempool`, `reads`, `auth`) build on this; the `App` (`shared.rs`) sits on top.

use std::sync::RwLock;

use dstorage_types::tx::TxHash;
use tendermint::v0_38::abci::{ConsensusRequest, ConsensusResponse};
use tokio::sync::{broadcast, oneshot, watch};

use crate::auth::Verifier;
use crate::refusal::Refusal;
use crate::{AppConfig, AppError};

/// What is durably committed, as the last Commit left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Last committed height (0 before the first block).
    pub height: u64,
    /// App hash after that height (genesis hash after InitChain; zeros before it).
    pub app_hash: [u8; 32],
    /// The network's chain id, once InitChain has run.
    pub chain_id: Option<String>,
}

/// Sent to subscribers after each Commit.
#[derive(Debug, Clone)]
pub struct CommitEvent {
    /// The committed height.
    pub height: u64,
    /// Its app hash.
    pub app_hash: [u8; 32],
    /// Hashes of the block's transactions, in block order.
    pub txs: Vec<TxHash>,
    /// Result codes of the block's transactions, in block order.
    pub codes: Vec<dstorage_types::result::ResultCode>,
    /// Wall time FinalizeBlock spent executing (for metrics only; never part of consensus).
    pub execution: std::time::Duration,
    /// Records in the block's changeset.
    pub changeset_records: usize,
    /// Bytes of the block's encoded changeset.
    pub changeset_bytes: usize,
    /// The block created, altered or dropped a schema or table (its changeset holds DDL records).
    pub schema_changed: bool,
}

/// State shared between the consensus thread and everything else. The services' own state (the mempool's
/// caches, the read pool) is theirs: this layer knows no service.
pub struct Shared {
    /// The configuration the app was opened with.
    pub config: AppConfig,
    /// Stateless checks with the verified-signature cache.
    pub verifier: Verifier,
    /// The last committed state.
    pub committed: RwLock<Committed>,
    /// Commit notifications.
    pub commits: broadcast::Sender<CommitEvent>,
    /// Set when the consensus thread stopped on a fatal error.
    pub fatal: watch::Sender<Option<String>>,
    /// Cumulative time spent executing blocks (metrics only).
    pub timings: Timings,
}

/// Cumulative CPU time spent executing blocks, for `/metrics` and the benchmark (signature time is kept by
/// [`Verifier`]). Never part of consensus: each node measures its own.
#[derive(Debug, Default)]
pub struct Timings {
    /// Nanoseconds spent executing blocks (FinalizeBlock: SQL, changeset, app hash) and committing them.
    pub execution_nanos: std::sync::atomic::AtomicU64,
}

// Requests are moved, not copied around; boxing them would only add an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ConsensusMsg {
    /// A request and where to send its response.
    Request(
        ConsensusRequest,
        oneshot::Sender<Result<ConsensusResponse, AppError>>,
    ),
    /// Stop the thread; an open block is discarded, exactly as a crash before Commit would lose it.
    Close,
}

impl Shared {
    /// The transactions one CometBFT transaction carries, under this network's size limits.
    pub(crate) fn members<'a>(&self, bytes: &'a [u8]) -> Result<Vec<&'a [u8]>, Refusal> {
        crate::auth::members(
            bytes,
            self.config.max_tx_bytes,
            self.config.max_bundle_bytes,
        )
    }
}

pub(crate) fn set_committed(shared: &Shared, committed: Committed) {
    match shared.committed.write() {
        Ok(mut c) => *c = committed,
        Err(poisoned) => *poisoned.into_inner() = committed,
    }
}
