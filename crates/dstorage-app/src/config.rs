//! Settings of the state machine. Those marked consensus-critical must be equal on every node of a network.

use std::path::PathBuf;

/// How the application runs.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The SQLite database file (created if missing).
    pub db_path: PathBuf,
    /// Largest accepted transaction in bytes (consensus-critical: ProcessProposal rejects larger ones).
    pub max_tx_bytes: usize,
    /// Largest accepted bundle of transactions in bytes (consensus-critical: ProcessProposal rejects larger ones).
    pub max_bundle_bytes: usize,
    /// SQLite VM steps one transaction may use (consensus-critical).
    pub cost_limit_per_tx: u64,
    /// Bytes one transaction's row changes may count (consensus-critical; docs/sql.md, "Data limits").
    pub max_tx_write_bytes: u64,
    /// Bytes the rows one transaction or read returns may count (consensus-critical for transactions).
    pub max_result_bytes: u64,
    /// Bytes the row changes and returned rows of one block may count together (consensus-critical).
    pub max_block_write_bytes: u64,
    /// How many recent blocks' changesets are kept for the API; `None` keeps all.
    pub changeset_retention: Option<u64>,
    /// How many verified transaction hashes the CheckTx → block signature cache remembers.
    pub verified_cache_size: usize,
    /// Node ids the peer filter accepts besides the current validators' (sentries, full nodes). A local setting.
    pub allowed_peers: std::collections::BTreeSet<String>,
}

impl AppConfig {
    /// Defaults for a database at `db_path`.
    pub fn new(db_path: impl Into<PathBuf>) -> AppConfig {
        let engine = dstorage_sql::EngineConfig::default();
        AppConfig {
            max_tx_write_bytes: engine.max_tx_write_bytes,
            max_result_bytes: engine.max_result_bytes,
            max_block_write_bytes: engine.max_block_write_bytes,
            db_path: db_path.into(),
            max_tx_bytes: 256 * 1024,
            max_bundle_bytes: 1024 * 1024,
            cost_limit_per_tx: 10_000_000,
            changeset_retention: Some(100_000),
            verified_cache_size: 200_000,
            allowed_peers: Default::default(),
        }
    }
}
