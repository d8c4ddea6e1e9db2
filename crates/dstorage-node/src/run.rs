//! `dstorage start`: run one node — the ABCI application, the HTTP API, and the supervised CometBFT child —
//! until a signal or a failure stops it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, SignalKind};

use crate::api::{self, ApiState};
use crate::cometbft::{self, CometProcess, CometRpc};
use crate::config::NodeConfig;
use crate::metrics::Metrics;

/// Bundles the API may have at CometBFT at once. One: CometBFT checks one CometBFT transaction at a time
/// anyway, and with one in flight bundles grow largest (4 validators, 128 clients: 13.7 transactions per
/// bundle and 1.46 ms of network CPU per transaction, against 8.0 and 1.63 ms with two in flight).
const BUNDLES_IN_FLIGHT: usize = 1;

/// Called once the node's API is listening and CometBFT runs (devnet prints its greeting here and starts
/// printing blocks).
pub type OnReady = Box<dyn FnOnce(&NodeConfig, &dstorage_app::App) + Send>;

/// Where a node keeps CometBFT's full log: `<home>/cometbft.log` (appended to across starts). The node's own
/// output carries only CometBFT's warnings and errors.
pub fn cometbft_log_path(home: &Path) -> PathBuf {
    home.join("cometbft.log")
}

/// How long the ABCI server may take to accept its first connection.
const ABCI_READY_WAIT: Duration = Duration::from_secs(10);

/// Wait until the ABCI server at `addr` (`unix://PATH` or `tcp://HOST:PORT`) accepts a connection. The probe
/// connection is closed at once, which the server takes as a client that left. Fails if the server task
/// ends first (it could not listen) or nothing accepts within [`ABCI_READY_WAIT`].
async fn wait_for_abci(mut server: AbciTask, addr: &str) -> anyhow::Result<AbciTask> {
    let deadline = tokio::time::Instant::now() + ABCI_READY_WAIT;
    loop {
        let connected = if let Some(path) = addr.strip_prefix("unix://") {
            tokio::net::UnixStream::connect(path).await.is_ok()
        } else {
            let hostport = addr.strip_prefix("tcp://").unwrap_or(addr);
            tokio::net::TcpStream::connect(hostport).await.is_ok()
        };
        if connected {
            return Ok(server);
        }
        if server.is_finished() {
            let outcome = (&mut server).await;
            bail!("the ABCI server on {addr} stopped before it accepted a connection: {outcome:?}");
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the ABCI server on {addr} accepted no connection within {ABCI_READY_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The spawned ABCI server (tower-abci's error type).
type AbciTask = tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>;

/// tower-abci's server over the app's four ABCI services. Served on a Unix socket by preference: see
/// [`NodeConfig::abci_socket`] (no Nagle delay between CheckTx and Flush answers).
fn abci_server(
    app: &dstorage_app::App,
) -> anyhow::Result<
    tower_abci::v038::Server<
        dstorage_app::abci::ConsensusService,
        dstorage_app::abci::MempoolService,
        dstorage_app::abci::InfoService,
        dstorage_app::abci::SnapshotService,
    >,
> {
    let (consensus, mempool, info, snapshot) = dstorage_app::abci::services(app.clone());
    tower_abci::v038::Server::builder()
        .consensus(consensus)
        .mempool(mempool)
        .info(info)
        .snapshot(snapshot)
        .finish()
        .context("an incomplete ABCI server")
}

/// Run the node whose home is `home`. Returns when it was asked to stop (Ok) or failed (Err).
pub async fn run_node(home: &Path, on_ready: Option<OnReady>) -> anyhow::Result<()> {
    let config = NodeConfig::load(home)?;
    dstorage_sql::sqlite_version().context("SQLite version check")?;
    let bin = tokio::task::spawn_blocking(cometbft::locate_cometbft)
        .await?
        .context("locating CometBFT")?;
    let layout = config.layout(home);
    {
        let bin = bin.clone();
        let layout = layout.clone();
        tokio::task::spawn_blocking(move || cometbft::init_home(&bin, &layout))
            .await?
            .context("writing CometBFT's configuration")?;
    }

    let app = {
        let app_config = config.app_config(home);
        tokio::task::spawn_blocking(move || dstorage_app::App::open(app_config))
            .await?
            .context("opening the database")?
    };
    let committed = app.committed();
    tracing::info!(height = committed.height, app_hash = %hex::encode_upper(committed.app_hash), db = %NodeConfig::db_path(home).display(), "application ready");

    let (abci, abci_addr) = match NodeConfig::abci_socket(home) {
        Some(path) => {
            // A socket file left by a killed node would make bind fail; nothing else uses this path.
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| {
                    format!("cannot remove the stale socket {}", path.display())
                })?;
            }
            let shown = format!("unix://{}", path.display());
            let listening = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("cannot listen on the ABCI socket {}", path.display()))?;
            drop(listening); // checked early with a clear message; tower-abci binds it itself below
            std::fs::remove_file(&path).ok();
            (tokio::spawn(abci_server(&app)?.listen_unix(path)), shown)
        }
        None => {
            let addr: SocketAddr = format!("127.0.0.1:{}", config.abci_port).parse()?;
            let listening = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("ABCI port {addr} is not free"))?;
            drop(listening); // checked early with a clear message; tower-abci binds it itself below
            (
                tokio::spawn(abci_server(&app)?.listen_tcp(addr)),
                format!("tcp://{addr}"),
            )
        }
    };

    let metrics = Arc::new(Metrics::new());
    {
        let app = app.clone();
        metrics.track_app_totals(Box::new(move || {
            (app.signature_check_seconds(), app.execution_seconds())
        }));
    }
    {
        let metrics = metrics.clone();
        let mut commits = app.subscribe();
        tokio::spawn(async move {
            loop {
                match commits.recv().await {
                    Ok(e) => metrics.observe_commit(&e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
        });
    }
    let rpc = CometRpc::local(config.rpc_port)?;
    let api_listener = tokio::net::TcpListener::bind(&config.api_addr)
        .await
        .with_context(|| format!("cannot listen on the API address {}", config.api_addr))?;
    let batcher = crate::batcher::Batcher::spawn(
        rpc.clone(),
        crate::batcher::BatchLimits {
            max_txs: config.bundle_max_txs,
            max_bytes: config.max_bundle_bytes,
            max_in_flight: BUNDLES_IN_FLIGHT,
        },
        metrics.clone(),
    );
    let router = api::router(ApiState {
        app: app.clone(),
        rpc,
        batcher,
        metrics,
        reads_auth: Arc::new(crate::readauth::ReadAuthenticator::new()),
    });
    let api_server = tokio::spawn(async move { axum::serve(api_listener, router).await });

    // CometBFT dials the ABCI address once at start and, if nothing answers yet, logs an ERROR and retries
    // only after 3 s: start it only once the ABCI server accepts connections.
    let abci = wait_for_abci(abci, &abci_addr).await?;
    let log_file = cometbft_log_path(home);
    let mut comet = CometProcess::spawn_with_log_file(&bin, &layout.home, &log_file)
        .context("starting CometBFT")?;
    tracing::info!(api = %format!("http://{}", config.api_addr), rpc = %layout.rpc_url(), abci = %abci_addr, cometbft_log = %log_file.display(), "node started");
    if let Some(f) = on_ready {
        f(&config, &app);
    }

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut fatal = app.fatal();
    let outcome: anyhow::Result<()> = tokio::select! {
        _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted; stopping"); Ok(()) }
        _ = sigterm.recv() => { tracing::info!("terminated; stopping"); Ok(()) }
        e = comet.exited() => Err(anyhow::anyhow!(e).context("CometBFT stopped unexpectedly")),
        r = fatal.wait_for(|f| f.is_some()) => {
            let reason = r.ok().and_then(|f| f.clone()).unwrap_or_default();
            Err(anyhow::anyhow!("the application stopped: {reason}"))
        }
        r = abci => Err(anyhow::anyhow!("ABCI server stopped: {:?}", r)),
        r = api_server => Err(anyhow::anyhow!("API server stopped: {:?}", r)),
    };
    if let Err(e) = comet.shutdown().await {
        tracing::warn!(error = %e, "stopping CometBFT");
    }
    match outcome {
        Ok(()) => {
            tracing::info!("stopped");
            Ok(())
        }
        Err(e) => bail!("{e:#}"),
    }
}
