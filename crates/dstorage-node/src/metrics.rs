//! Prometheus metrics (`GET /metrics`), fed by the app's commit notifications and the API.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

use dstorage_app::CommitEvent;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label set naming a result code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The result code's name (`sql_error`, `bad_signature`, ...).
    pub code: String,
}

/// Reads the app's cumulative (signature check seconds, block execution seconds) at scrape time.
pub type AppTotals = Box<dyn Fn() -> (f64, f64) + Send + Sync>;

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    blocks: Counter,
    txs: Counter,
    tx_errors: Family<CodeLabel, Counter>,
    checktx_refused: Family<CodeLabel, Counter>,
    height: Gauge,
    execution_seconds: Histogram,
    changeset_records: Histogram,
    changeset_bytes: Histogram,
    signature_check_seconds: Counter<f64, AtomicU64>,
    sql_execution_seconds: Counter<f64, AtomicU64>,
    submissions: Counter,
    submitted_txs: Counter,
    app_totals: OnceLock<AppTotals>,
    // Rendering borrows the registry; a mutex keeps concurrent scrapes simple.
    render_lock: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dstorage");
        let blocks = Counter::default();
        let txs = Counter::default();
        let tx_errors = Family::<CodeLabel, Counter>::default();
        let checktx_refused = Family::<CodeLabel, Counter>::default();
        let height = Gauge::default();
        let execution_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let changeset_records = Histogram::new(exponential_buckets(1.0, 4.0, 12));
        let changeset_bytes = Histogram::new(exponential_buckets(64.0, 4.0, 12));
        registry.register("blocks", "Blocks committed", blocks.clone());
        registry.register(
            "txs",
            "Transactions executed in committed blocks",
            txs.clone(),
        );
        registry.register(
            "tx_errors",
            "Transactions that failed in a block, by result code",
            tx_errors.clone(),
        );
        registry.register(
            "checktx_refused",
            "Transactions refused at broadcast through this node's API, by result code",
            checktx_refused.clone(),
        );
        registry.register("height", "Last committed height", height.clone());
        registry.register(
            "block_execution_seconds",
            "Time FinalizeBlock spent executing a block",
            execution_seconds.clone(),
        );
        registry.register(
            "changeset_records",
            "Records in a block's changeset",
            changeset_records.clone(),
        );
        registry.register(
            "changeset_bytes",
            "Bytes of a block's encoded changeset",
            changeset_bytes.clone(),
        );
        let signature_check_seconds = Counter::<f64, AtomicU64>::default();
        let sql_execution_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "signature_check_seconds",
            "CPU seconds spent verifying transaction signatures (cache misses; CheckTx, proposals, blocks)",
            signature_check_seconds.clone(),
        );
        registry.register(
            "sql_execution_seconds",
            "CPU seconds spent executing blocks (SQL, changeset, app hash) and committing them to SQLite",
            sql_execution_seconds.clone(),
        );
        let submissions = Counter::default();
        let submitted_txs = Counter::default();
        registry.register(
            "cometbft_submissions",
            "CometBFT transactions this node's API submitted (bare transactions and bundles)",
            submissions.clone(),
        );
        registry.register(
            "submitted_txs",
            "Signed transactions this node's API submitted, bare or inside bundles",
            submitted_txs.clone(),
        );
        Metrics {
            registry,
            submissions,
            submitted_txs,
            blocks,
            txs,
            tx_errors,
            checktx_refused,
            height,
            execution_seconds,
            changeset_records,
            changeset_bytes,
            signature_check_seconds,
            sql_execution_seconds,
            app_totals: OnceLock::new(),
            render_lock: Mutex::new(()),
        }
    }

    /// The API submitted one CometBFT transaction carrying `txs` signed transactions.
    pub fn observe_submission(&self, txs: usize) {
        self.submissions.inc();
        self.submitted_txs.inc_by(txs as u64);
    }

    /// Account one committed block.
    pub fn observe_commit(&self, e: &CommitEvent) {
        self.blocks.inc();
        self.txs.inc_by(e.txs.len() as u64);
        for code in &e.codes {
            if *code != dstorage_types::result::ResultCode::Ok {
                self.tx_errors
                    .get_or_create(&CodeLabel {
                        code: code.name().to_string(),
                    })
                    .inc();
            }
        }
        self.height.set(i64::try_from(e.height).unwrap_or(i64::MAX));
        self.execution_seconds.observe(e.execution.as_secs_f64());
        self.changeset_records.observe(e.changeset_records as f64);
        self.changeset_bytes.observe(e.changeset_bytes as f64);
    }

    /// Account a CheckTx refusal seen by the API.
    pub fn checktx_refused(&self, code: &str) {
        self.checktx_refused
            .get_or_create(&CodeLabel {
                code: code.to_string(),
            })
            .inc();
    }

    /// Where the signature and execution time counters come from (set once, by `run_node`).
    pub fn track_app_totals(&self, totals: AppTotals) {
        let _ = self.app_totals.set(totals);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let _guard = self.render_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(totals) = self.app_totals.get() {
            let (signature, execution) = totals();
            for (counter, total) in [
                (&self.signature_check_seconds, signature),
                (&self.sql_execution_seconds, execution),
            ] {
                let delta = total - counter.get();
                if delta > 0.0 {
                    counter.inc_by(delta);
                }
            }
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out = "# metrics encoding failed\n".into();
        }
        out
    }
}
