//! The ABCI 2.0 services: tower-abci's v0.38 connection split into consensus, mempool, info and snapshot services
//! (the node serves them on its socket).
//!
//! Consensus requests go, in arrival order, to the consensus thread. CheckTx requests go, in arrival order, to
//! one mempool thread: tower-abci polls a connection's pending futures concurrently, and a sender's nonces must
//! be checked in the order the mempool received them.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tendermint::abci::response as resp;
use tendermint::v0_38::abci::{
    ConsensusRequest, ConsensusResponse, InfoRequest, InfoResponse, MempoolRequest,
    MempoolResponse, SnapshotRequest, SnapshotResponse,
};
use tokio::sync::oneshot;
use tower::Service;
use tower_abci::BoxError;

use crate::App;

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'static>>;

/// Consensus connection service.
#[derive(Clone)]
pub struct ConsensusService(App);

impl Service<ConsensusRequest> for ConsensusService {
    type Response = ConsensusResponse;
    type Error = BoxError;
    type Future = BoxFuture<ConsensusResponse>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: ConsensusRequest) -> Self::Future {
        // Enqueue now (inside `call`), so arrival order is the execution order.
        let rx = self.0.enqueue_consensus(req);
        Box::pin(async move {
            match rx {
                Err(e) => Err(e.into()),
                Ok(rx) => match rx.await {
                    Ok(Ok(r)) => Ok(r),
                    Ok(Err(e)) => Err(e.into()),
                    Err(_) => Err(crate::AppError::Stopped.into()),
                },
            }
        })
    }
}

type MempoolMsg = (Bytes, bool, oneshot::Sender<resp::CheckTx>);

/// Mempool connection service: CheckTx on a dedicated thread, in arrival order.
#[derive(Clone)]
pub struct MempoolService {
    queue: mpsc::Sender<MempoolMsg>,
}

impl MempoolService {
    /// Start the mempool thread for `app`.
    pub fn new(app: App) -> MempoolService {
        let (queue, rx) = mpsc::channel::<MempoolMsg>();
        #[allow(
            clippy::disallowed_methods,
            reason = "CheckTx only decides what enters this node's mempool; blocks run on the consensus thread \
                      alone, which validates every transaction again"
        )]
        std::thread::Builder::new()
            .name("mempool".into())
            // CheckTx parses and guards SQL: enough to do it on the thread's own stack.
            .stack_size(dstorage_sql::SQL_THREAD_STACK)
            .spawn(move || {
                while let Ok((tx, recheck, reply)) = rx.recv() {
                    // A panic while checking one transaction (a bug) refuses that transaction
                    // and leaves the thread serving the next ones.
                    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if recheck {
                            app.recheck_tx(&tx)
                        } else {
                            app.check_tx(&tx)
                        }
                    }))
                    .unwrap_or_else(|panic| {
                        let reason = crate::sys::panic_message(&*panic);
                        tracing::error!(%reason, "CheckTx panicked");
                        resp::CheckTx {
                            code: dstorage_types::result::ResultCode::Malformed.code().into(),
                            log: format!("node error while checking: {reason}"),
                            codespace: "dstorage".into(),
                            ..Default::default()
                        }
                    });
                    let _ = reply.send(answer);
                }
            })
            .ok();
        MempoolService { queue }
    }
}

impl Service<MempoolRequest> for MempoolService {
    type Response = MempoolResponse;
    type Error = BoxError;
    type Future = BoxFuture<MempoolResponse>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: MempoolRequest) -> Self::Future {
        let MempoolRequest::CheckTx(check) = req;
        let (tx, rx) = oneshot::channel();
        let recheck = check.kind == tendermint::abci::request::CheckTxKind::Recheck;
        let sent = self.queue.send((check.tx, recheck, tx));
        Box::pin(async move {
            sent.map_err(|_| "mempool thread stopped")?;
            Ok(MempoolResponse::CheckTx(
                rx.await.map_err(|_| "mempool thread stopped")?,
            ))
        })
    }
}

/// Info connection service.
#[derive(Clone)]
pub struct InfoService(App);

impl Service<InfoRequest> for InfoService {
    type Response = InfoResponse;
    type Error = BoxError;
    type Future = BoxFuture<InfoResponse>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: InfoRequest) -> Self::Future {
        let response = match req {
            InfoRequest::Info(_) => InfoResponse::Info(self.0.info()),
            InfoRequest::Query(q) if q.path.starts_with("/p2p/filter/") => {
                InfoResponse::Query(self.0.filter_peer(&q.path))
            }
            InfoRequest::Query(_) => InfoResponse::Query(resp::Query {
                code: 1u32.into(),
                log: "ABCI queries are not served; use the dstorage HTTP API".into(),
                ..Default::default()
            }),
            InfoRequest::Echo(echo) => InfoResponse::Echo(resp::Echo {
                message: echo.message,
            }),
        };
        Box::pin(async move { Ok(response) })
    }
}

/// Snapshot connection service: state sync is not offered yet, so every answer is empty.
#[derive(Clone)]
pub struct SnapshotService;

impl Service<SnapshotRequest> for SnapshotService {
    type Response = SnapshotResponse;
    type Error = BoxError;
    type Future = BoxFuture<SnapshotResponse>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: SnapshotRequest) -> Self::Future {
        let response = match req {
            SnapshotRequest::ListSnapshots => SnapshotResponse::ListSnapshots(Default::default()),
            SnapshotRequest::OfferSnapshot(_) => {
                SnapshotResponse::OfferSnapshot(resp::OfferSnapshot::Reject)
            }
            SnapshotRequest::LoadSnapshotChunk(_) => {
                SnapshotResponse::LoadSnapshotChunk(Default::default())
            }
            SnapshotRequest::ApplySnapshotChunk(_) => {
                SnapshotResponse::ApplySnapshotChunk(resp::ApplySnapshotChunk {
                    result: resp::ApplySnapshotChunkResult::Abort,
                    ..Default::default()
                })
            }
        };
        Box::pin(async move { Ok(response) })
    }
}

/// The four services of an ABCI connection for `app`: consensus, mempool (starting the mempool thread), info
/// and snapshot. The app opens no socket: the node serves these with tower-abci's server.
pub fn services(
    app: App,
) -> (
    ConsensusService,
    MempoolService,
    InfoService,
    SnapshotService,
) {
    (
        ConsensusService(app.clone()),
        MempoolService::new(app.clone()),
        InfoService(app),
        SnapshotService,
    )
}
