//! `dstorage start`: run one node — the ABCI application, the HTTP API, and the supervised CometBFT child —
//! until a signal or a failure stops it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

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

/// Called once the node's API is listening (devnet prints its greeting here).
pub type OnReady = Box<dyn FnOnce(&NodeConfig) + Send>;

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
            (
                tokio::spawn(dstorage_app::abci::serve_unix(app.clone(), path)),
                shown,
            )
        }
        None => {
            let addr: SocketAddr = format!("127.0.0.1:{}", config.abci_port).parse()?;
            let listening = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("ABCI port {addr} is not free"))?;
            drop(listening); // checked early with a clear message; tower-abci binds it itself below
            (
                tokio::spawn(dstorage_app::abci::serve(app.clone(), addr)),
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

    let mut comet = CometProcess::spawn(&bin, &layout.home).context("starting CometBFT")?;
    tracing::info!(api = %format!("http://{}", config.api_addr), rpc = %layout.rpc_url(), abci = %abci_addr, "node started");
    if let Some(f) = on_ready {
        f(&config);
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
