//! The application handle on top of the layers below it (`state`, then the services `mempool`, `consensus`,
//! `reads`): it opens the database, starts the consensus thread (handing it the mempool, which Commit updates)
//! and is what the ABCI services, the HTTP API and the test harness hold.

use std::sync::{Arc, Mutex, RwLock};

use dstorage_sql::{Engine, EngineConfig};
use tendermint::v0_38::abci::{ConsensusRequest, ConsensusResponse};
use tokio::sync::{broadcast, oneshot, watch};

use crate::auth::Verifier;
use crate::mempool::Mempool;
use crate::reads::Reads;
use crate::refusal::Refusal;
use crate::{keys, AppConfig, AppError};

use crate::state::{CommitEvent, Committed, ConsensusMsg, Shared, Timings};
use crate::sys::{lock, panic_message};

/// A running application: cheap to clone, safe to share across tasks.
#[derive(Clone)]
pub struct App {
    pub(crate) shared: Arc<Shared>,
    mempool: Arc<Mempool>,
    consensus: std::sync::mpsc::Sender<ConsensusMsg>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    reads: Reads,
}

impl App {
    /// Open (or create) the database and start the consensus thread.
    pub fn open(config: AppConfig) -> Result<App, AppError> {
        if let Some(dir) = config.db_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                AppError::Invariant(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let engine_config = EngineConfig {
            cost_limit_per_tx: config.cost_limit_per_tx,
            max_tx_write_bytes: config.max_tx_write_bytes,
            max_result_bytes: config.max_result_bytes,
            max_block_write_bytes: config.max_block_write_bytes,
            ..EngineConfig::default()
        };
        let engine = Engine::open(&config.db_path, engine_config)?;
        let height = engine
            .kv_get(keys::HEIGHT)?
            .as_deref()
            .and_then(keys::decode_u64)
            .unwrap_or(0);
        let app_hash = match engine.kv_get(keys::APP_HASH)? {
            Some(bytes) => bytes.try_into().map_err(|b: Vec<u8>| {
                AppError::Invariant(format!("stored app hash has {} bytes", b.len()))
            })?,
            None => [0u8; 32],
        };
        let chain_id = engine
            .kv_get(keys::CHAIN_ID)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        crate::grants::create_table(engine.connection())?;
        let grants_reader = rusqlite::Connection::open_with_flags(
            &config.db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| AppError::Storage(e.into()))?;
        let registry = dstorage_auth::Registry::with_default_standards();
        let verifier = Verifier::new(registry, config.max_tx_bytes, config.verified_cache_size);
        let mempool = Arc::new(Mempool::new(engine.reader()?));
        let reads = Reads::new(
            (0..4).map(|_| engine.reader()).collect::<Result<_, _>>()?,
            grants_reader,
        );
        let (commits, _) = broadcast::channel(1024);
        let (fatal, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            config,
            verifier,
            committed: RwLock::new(Committed {
                height,
                app_hash,
                chain_id,
            }),
            commits,
            fatal,
            timings: Timings::default(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_shared = shared.clone();
        let thread_mempool = Arc::clone(&mempool);
        #[allow(
            clippy::disallowed_methods,
            reason = "the one consensus thread: it runs every state transition, in block order, alone"
        )]
        let thread = std::thread::Builder::new()
            .name("consensus".into())
            // Enough to run any SQL on the thread's own stack (the engine would grow it).
            .stack_size(dstorage_sql::SQL_THREAD_STACK)
            .spawn(move || {
                let shared = Arc::clone(&thread_shared);
                // A panic here is a broken invariant: stop the node at once and loudly (the
                // node exits non-zero on `fatal`), rather than leave CometBFT waiting on a
                // thread that is gone. The open block, if any, is rolled back as it unwinds.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::consensus::run(engine, thread_shared, thread_mempool, rx)
                }));
                if let Err(panic) = run {
                    crate::consensus::stop(
                        &shared,
                        format!("the consensus thread panicked: {}", panic_message(&*panic)),
                    );
                }
            })
            .map_err(|e| AppError::Invariant(format!("cannot start consensus thread: {e}")))?;
        Ok(App {
            shared,
            mempool,
            consensus: tx,
            thread: Arc::new(Mutex::new(Some(thread))),
            reads,
        })
    }

    /// Stop the consensus thread and wait until it has released the database. A block finalized but not yet
    /// committed is discarded, as a crash at that moment would lose it.
    pub fn close(&self) {
        let _ = self.consensus.send(ConsensusMsg::Close);
        if let Some(handle) = lock(&self.thread).take() {
            let _ = handle.join();
        }
    }

    /// Handle one consensus-connection request (strictly in the order calls are made).
    pub async fn consensus(&self, req: ConsensusRequest) -> Result<ConsensusResponse, AppError> {
        self.enqueue_consensus(req)?
            .await
            .map_err(|_| AppError::Stopped)?
    }

    /// Queue a consensus request now; the receiver yields its response.
    pub fn enqueue_consensus(
        &self,
        req: ConsensusRequest,
    ) -> Result<oneshot::Receiver<Result<ConsensusResponse, AppError>>, AppError> {
        let (tx, rx) = oneshot::channel();
        self.consensus
            .send(ConsensusMsg::Request(req, tx))
            .map_err(|_| AppError::Stopped)?;
        Ok(rx)
    }

    /// CheckTx: admit or refuse `tx` for the mempool. Storage failures refuse too (and are logged): the mempool
    /// must never crash the node.
    pub fn check_tx(&self, tx: &[u8]) -> tendermint::abci::response::CheckTx {
        self.check_tx_kind(tx, false)
    }

    /// CheckTx of kind Recheck: CometBFT asks again, after a block, about a transaction it already admitted.
    /// Only what a block can change is checked again (nonce, schema ownership); see [`Mempool::check_with`].
    pub fn recheck_tx(&self, tx: &[u8]) -> tendermint::abci::response::CheckTx {
        self.check_tx_kind(tx, true)
    }

    fn check_tx_kind(&self, tx: &[u8], recheck: bool) -> tendermint::abci::response::CheckTx {
        use tendermint::abci::response::CheckTx;
        match self.mempool.check_with(&self.shared, tx, recheck) {
            Ok(Ok(admitted)) => CheckTx {
                gas_wanted: admitted
                    .estimated_cost
                    .map(|c| i64::try_from(c).unwrap_or(i64::MAX))
                    .unwrap_or(0),
                // CometBFT v0.38 ignores the sender; it names the first member for logs and tools.
                sender: admitted
                    .checked
                    .into_iter()
                    .next()
                    .map(|c| c.identity)
                    .unwrap_or_default(),
                ..Default::default()
            },
            Ok(Err(Refusal { code, message })) => CheckTx {
                code: code.code().into(),
                log: message,
                codespace: "dstorage".into(),
                ..Default::default()
            },
            Err(e) => {
                tracing::error!(error = %e, "CheckTx failed on storage");
                CheckTx {
                    code: dstorage_types::result::ResultCode::Malformed.code().into(),
                    log: format!("node error while checking: {e}"),
                    codespace: "dstorage".into(),
                    ..Default::default()
                }
            }
        }
    }

    /// Info: the last committed height and app hash, so CometBFT's handshake replays what we lack.
    pub fn info(&self) -> tendermint::abci::response::Info {
        let c = self.committed();
        tendermint::abci::response::Info {
            data: "dstorage".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 1,
            last_block_height: tendermint::block::Height::try_from(c.height).unwrap_or_default(),
            last_block_app_hash: if c.height == 0 {
                Default::default()
            } else {
                c.app_hash.to_vec().try_into().unwrap_or_default()
            },
        }
    }

    /// The last committed state.
    pub fn committed(&self) -> Committed {
        match self.shared.committed.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Subscribe to commit notifications.
    pub fn subscribe(&self) -> broadcast::Receiver<CommitEvent> {
        self.shared.commits.subscribe()
    }

    /// Resolves when the consensus thread stops on a fatal error, with the reason.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.shared.fatal.subscribe()
    }

    /// Read access to committed state.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// CPU seconds spent verifying signatures so far (cache misses; metrics only).
    pub fn signature_check_seconds(&self) -> f64 {
        self.shared.verifier.verify_seconds()
    }

    /// CPU seconds spent executing and committing blocks so far (metrics only).
    pub fn execution_seconds(&self) -> f64 {
        self.shared
            .timings
            .execution_nanos
            .load(std::sync::atomic::Ordering::Relaxed) as f64
            / 1e9
    }

    /// CometBFT's peer filter (`filter_peers = true`): the answer to `/p2p/filter/id/<node id>` (code 0 keeps the
    /// peer, any other code refuses it) and `/p2p/filter/addr/<ip:port>` (always accepted: an address proves
    /// nothing, the node id is what a peer proves with its key). Accepted ids: current validators' node ids
    /// (committed state) and the operator's `allowed_peers`. A read failure refuses.
    pub fn filter_peer(&self, path: &str) -> tendermint::abci::response::Query {
        use tendermint::abci::response::Query;
        let refuse = |log: String| {
            tracing::info!(target: "dstorage::peers", %path, reason = %log, "peer refused");
            Query {
                code: 1u32.into(),
                log,
                codespace: "dstorage".into(),
                ..Default::default()
            }
        };
        if path.starts_with("/p2p/filter/addr/") {
            return Query::default();
        }
        let Some(id) = path.strip_prefix("/p2p/filter/id/") else {
            return refuse(format!("unknown peer filter query {path:?}"));
        };
        let id = id.to_ascii_lowercase();
        if self.shared.config.allowed_peers.contains(&id) {
            return Query::default();
        }
        match self.reads.is_validator_node(&id) {
            Ok(true) => Query::default(),
            Ok(false) => refuse(format!(
                "node {id} is neither a current validator nor in this node's allowed_peers"
            )),
            Err(e) => refuse(format!("cannot read the validator set: {e}")),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.shared.config
    }
}
