//! The HTTP JSON API (axum): broadcast, transaction results, reads, schemas, changesets, status, health,
//! Prometheus metrics and the OpenAPI document. Routes and shapes are documented in docs/api.md and
//! `openapi.json`; the JSON types live in `dstorage_client::api`.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use dstorage_app::Refusal;
use dstorage_client::api::*;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{tx_hash, Transaction, TxHash};

use crate::cometbft::{BroadcastSync, CometError};

pub(crate) use crate::api_common::{blocking, ApiResult};
pub use crate::api_common::{ApiError, ApiState};

/// The OpenAPI 3 document describing every route.
pub const OPENAPI: &str = include_str!("openapi.json");

/// How long `wait = commit` waits before answering 504 (the transaction may still commit later).
pub const COMMIT_WAIT: Duration = Duration::from_secs(60);

/// CometBFT's RPC error for bytes already in its mempool cache (committed or pending).
const TX_IN_CACHE: &str = "tx already exists in cache";

/// How long a client should wait before sending again to a node that is catching up.
pub const CATCHING_UP_RETRY: Duration = Duration::from_secs(2);

/// A node whose last block is older than this is taken to be cut off (or the network halted): a live
/// network makes a block at least every `create_empty_blocks_interval` (1 s) plus a round.
pub const STALE_AFTER: Duration = Duration::from_secs(5);

/// Why this node's view of the committed state may be behind the network's, if it may be: CometBFT is
/// catching up, it has no peer although the network has other validators, or it has committed no block
/// for longer than [`STALE_AFTER`]. `block_age` is `None` when the last block's time is unknown.
pub fn behind_reason(
    catching_up: bool,
    peers: usize,
    validators: usize,
    block_age: Option<Duration>,
) -> Option<String> {
    if catching_up {
        return Some("it is catching up with the network's blocks".into());
    }
    if validators > 1 && peers == 0 {
        return Some(format!(
            "it is cut off from the network: no peers, {validators} validators"
        ));
    }
    match block_age {
        Some(age) if age > STALE_AFTER => Some(format!(
            "it has committed no block for {} s (cut off from its peers, or the network stalled)",
            age.as_secs()
        )),
        _ => None,
    }
}

/// Ask CometBFT whether this node may be behind the network (see [`behind_reason`]). An RPC failure counts
/// as behind: the node cannot tell.
async fn behind(s: &ApiState) -> Option<String> {
    let status = match s.rpc.status().await {
        Ok(st) => st,
        Err(e) => return Some(format!("its consensus engine does not answer ({e})")),
    };
    let peers = s.rpc.net_info().await.map(|n| n.peers.len()).unwrap_or(0);
    let validators = s.rpc.validators(None).await.map(|v| v.len()).unwrap_or(1);
    let age = humantime::parse_rfc3339_weak(&status.latest_block_time)
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok());
    behind_reason(status.catching_up, peers, validators, age)
}

/// Build the router.
pub fn router(state: ApiState) -> Router {
    served(state).router
}

/// The router and the path of every route it serves. The OpenAPI test compares the document with
/// these paths and with the methods the router itself answers on each, so a route added here
/// without documentation fails it.
fn served(state: ApiState) -> Served {
    let max_body = state.app.config().max_tx_bytes * 2 + 4096;
    Routes::new()
        .route("/v1/tx", post(broadcast))
        .route("/v1/tx/{hash}", get(tx))
        .route("/v1/query", post(crate::reads::query))
        .route("/v1/estimate", post(crate::reads::estimate))
        .route("/v1/schemas", get(schemas))
        .route("/v1/schemas/{name}", get(schema))
        .route(
            "/v1/schemas/{name}/actions",
            get(crate::api_actions::actions),
        )
        .route("/v1/call", post(crate::api_actions::call))
        .route("/v1/changesets/{height}", get(changeset))
        .route("/v1/status", get(status))
        .route("/v1/nonce/{identity}", get(nonce))
        .route("/v1/challenge", get(crate::reads::challenge))
        .route("/v1/grants", get(crate::reads::grants))
        .route("/v1/validators", get(crate::api_validators::validators))
        .route(
            "/v1/validators/requests",
            get(crate::api_validators::requests),
        )
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(catch_panics))
        .with_state(state)
}

/// A router being built that remembers the path of each route added (axum's `Router` cannot
/// list its routes).
struct Routes {
    router: Router<ApiState>,
    paths: Vec<&'static str>,
}

/// A finished router and its paths, in the order they were added.
struct Served {
    router: Router,
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the OpenAPI test"))]
    paths: Vec<&'static str>,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    fn route(mut self, path: &'static str, handler: MethodRouter<ApiState>) -> Routes {
        self.router = self.router.route(path, handler);
        self.paths.push(path);
        self
    }

    fn layer<L>(mut self, layer: L) -> Routes
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.router = self.router.layer(layer);
        self
    }

    fn with_state(self, state: ApiState) -> Served {
        Served {
            router: self.router.with_state(state),
            paths: self.paths,
        }
    }
}

/// Answer a request whose handler panicked with 500 `internal` naming the panic, instead of
/// dropping the connection: the node keeps serving (a panic is a bug, and is logged as one).
async fn catch_panics(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures::FutureExt;
    let route = format!("{} {}", req.method(), req.uri().path());
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let reason = panic_message(panic.as_ref());
            tracing::error!(%route, %reason, "a request handler panicked");
            ApiError::internal(format!("the node failed while answering: {reason}")).into_response()
        }
    }
}

use dstorage_app::panic_message;
async fn broadcast(
    State(s): State<ApiState>,
    body: Result<Json<BroadcastRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<BroadcastResponse> {
    let max = s.app.config().max_tx_bytes;
    let Json(req) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            // The body limit is twice the transaction limit (hex) plus room for the JSON around it.
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body too large: a transaction may be at most {max} bytes"),
            )
        } else {
            ApiError::bad_request(format!("invalid request body: {e}"))
        }
    })?;
    let bytes = hex::decode(req.tx.trim().trim_start_matches("0x")).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("tx is not hex: {e}"),
        )
    })?;
    if bytes.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "transaction is {} bytes; the limit is {max} bytes",
                bytes.len()
            ),
        ));
    }
    if bytes.first() == Some(&dstorage_types::tx::BUNDLE_VERSION) {
        // A bundle has no hash of its own to wait for; the node builds bundles itself from single transactions.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "this is a bundle; POST /v1/tx takes one transaction at a time (the node bundles them itself)",
        ));
    }
    let hash = tx_hash(&bytes);
    // Subscribe before broadcasting so the commit cannot slip by unseen.
    let mut commits = s.app.subscribe();
    let checked = match s.batcher.broadcast(bytes.clone()).await {
        Ok(checked) => checked,
        // CometBFT answers these exact bytes from its mempool cache, without asking the app: they were
        // committed before (a replay) or are waiting in the mempool (a resend, which is admitted already).
        Err(CometError::RpcError { data, .. }) if data.contains(TX_IN_CACHE) => {
            if let Some(rec) = lookup(&s, hash).await? {
                s.metrics.checktx_refused("nonce_replayed");
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "nonce_replayed",
                    format!(
                        "transaction {hash} was already committed at height {} (nonce {} was already used)",
                        rec.height,
                        rec.nonce.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
                    ),
                ));
            }
            BroadcastSync {
                check_tx: Default::default(),
                hash: hash.to_string(),
            }
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "consensus_unavailable",
                e.to_string(),
            ))
        }
    };
    if checked.check_tx.code != 0 {
        let Some(code) = ResultCode::from_code(checked.check_tx.code) else {
            // Only this node's app answers CheckTx, so this is a version mismatch, not the client's doing.
            let code = format!("code_{}", checked.check_tx.code);
            s.metrics.checktx_refused(&code);
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                checked.check_tx.log,
            ));
        };
        let refused = Refusal::new(code, checked.check_tx.log);
        // A nonce that skips ahead may be the client's mistake, or this node's nonces may be behind the
        // network's: the client must not be blamed for the node's state.
        if refused.code == ResultCode::NonceGap {
            if let Some(reason) = behind(&s).await {
                s.metrics.checktx_refused(ResultCode::CatchingUp.name());
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ResultCode::CatchingUp.name(),
                    format!(
                        "this node cannot judge the transaction's nonce: {reason}, so its view of nonces may be \
                         behind ({}); retry in {} s or send it to another node",
                        refused.message,
                        CATCHING_UP_RETRY.as_secs()
                    ),
                );
                e.retry_after = Some(CATCHING_UP_RETRY);
                return Err(e);
            }
        }
        s.metrics.checktx_refused(refused.code.name());
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            refused.code.name(),
            refused.message,
        ));
    }
    if req.wait == WaitFor::Sync {
        return Ok(Json(BroadcastResponse {
            hash,
            committed: None,
        }));
    }
    // Who sent it and with which nonce, so the wait can end early if another transaction spends that nonce
    // (this one then never commits: proposers drop it). CheckTx admitted it, so it decodes and verifies.
    let spender = Transaction::decode(&bytes).ok().and_then(|tx| {
        let identity = dstorage_auth::default_registry()
            .get(&tx.body.standard)
            .and_then(|a| a.identifier(&tx.body.sender))
            .ok()?;
        Some((identity, tx.body.nonce))
    });
    let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
    loop {
        let event = match tokio::time::timeout_at(deadline, commits.recv()).await {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    format!("transaction {hash} was admitted but not committed within {COMMIT_WAIT:?}; ask GET /v1/tx/{hash} later"),
                ))
            }
            Ok(Ok(event)) => event,
            // Missed some events under load: the record may already be there.
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                if let Some(rec) = lookup(&s, hash).await? {
                    return Ok(Json(BroadcastResponse { hash, committed: Some(rec) }));
                }
                continue;
            }
            Ok(Err(_)) => return Err(ApiError::internal("the node is shutting down")),
        };
        if event.txs.contains(&hash) {
            let rec = lookup(&s, hash)
                .await?
                .ok_or_else(|| ApiError::internal(format!("committed tx {hash} has no record")))?;
            return Ok(Json(BroadcastResponse {
                hash,
                committed: Some(rec),
            }));
        }
        if let Some((identity, nonce)) = &spender {
            let app = s.app.clone();
            let who = identity.clone();
            let last = blocking(move || app.reads().nonce(&who))
                .await?
                .map_err(ApiError::from_sql)?;
            if last >= *nonce {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "nonce_replayed",
                    format!(
                        "transaction {hash} was dropped: another transaction of {identity} used nonce {nonce} first"
                    ),
                ));
            }
        }
    }
}

async fn lookup(s: &ApiState, hash: TxHash) -> Result<Option<TxResult>, ApiError> {
    let app = s.app.clone();
    let rec = blocking(move || app.reads().tx(&hash))
        .await?
        .map_err(ApiError::from_sql)?;
    Ok(rec.map(to_result))
}

fn to_result(r: dstorage_app::TxRecord) -> TxResult {
    TxResult {
        hash: r.hash,
        height: r.height,
        index: r.index,
        code: r.code,
        message: r.message,
        cost: r.cost,
        rows_changed: r.rows_changed,
        columns: r.columns,
        rows: r.rows,
        sender: r.sender,
        nonce: r.nonce,
    }
}

async fn tx(State(s): State<ApiState>, Path(hash): Path<String>) -> ApiResult<TxResult> {
    let hash: TxHash = hash.parse().map_err(ApiError::bad_request)?;
    match lookup(&s, hash).await? {
        Some(r) => Ok(Json(r)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("transaction {hash} is not in a committed block (it may be pending, refused or unknown)"),
        )),
    }
}

async fn all_schemas(s: &ApiState) -> Result<Vec<Schema>, ApiError> {
    let app = s.app.clone();
    let list = blocking(move || app.reads().schemas())
        .await?
        .map_err(ApiError::from_sql)?;
    Ok(list.into_iter().map(crate::convert::schema).collect())
}

async fn schemas(State(s): State<ApiState>) -> ApiResult<Vec<Schema>> {
    Ok(Json(all_schemas(&s).await?))
}

async fn schema(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult<Schema> {
    all_schemas(&s)
        .await?
        .into_iter()
        .find(|x| x.name == name)
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("schema {name} does not exist"),
            )
        })
}

async fn changeset(
    State(s): State<ApiState>,
    Path(height): Path<String>,
) -> ApiResult<ChangesetResponse> {
    let height: u64 = height
        .parse()
        .map_err(|_| ApiError::bad_request(format!("height {height:?} is not a number")))?;
    let app = s.app.clone();
    let cs = blocking(move || app.reads().changeset(height))
        .await?
        .map_err(ApiError::from_sql)?;
    match cs {
        Some(cs) => Ok(Json(crate::convert::changeset(height, &cs))),
        None => {
            let last = s.app.committed().height;
            let why = if height > last {
                format!("height {height} is not committed yet (last committed height is {last})")
            } else {
                format!("no changeset kept for height {height} (outside the retention window)")
            };
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", why))
        }
    }
}

async fn status(State(s): State<ApiState>) -> ApiResult<StatusResponse> {
    let c = s.app.committed();
    let comet = s.rpc.status().await.ok();
    let validators = s.rpc.validators(None).await.unwrap_or_default();
    let peers = s
        .rpc
        .net_info()
        .await
        .map(|n| n.peers.len() as u64)
        .unwrap_or(0);
    Ok(Json(StatusResponse {
        chain_id: c.chain_id.unwrap_or_default(),
        height: c.height,
        app_hash: hex::encode_upper(c.app_hash),
        catching_up: comet.as_ref().map(|st| st.catching_up).unwrap_or(true),
        consensus_height: comet.as_ref().map(|st| st.latest_block_height).unwrap_or(0),
        validators: validators
            .into_iter()
            .map(|v| ValidatorInfo {
                address: v.address,
                pub_key: v.pubkey,
                power: u64::try_from(v.voting_power).unwrap_or(0),
            })
            .collect(),
        sqlite_version: dstorage_sql::SQLITE_VERSION.to_string(),
        cometbft_version: crate::cometbft::COMETBFT_VERSION.to_string(),
        peers,
    }))
}

async fn nonce(
    State(s): State<ApiState>,
    Path(identity): Path<String>,
) -> ApiResult<NonceResponse> {
    // Nonces are stored under the canonical spelling only: another spelling would read a nonce nobody uses and
    // answer `next: 1`.
    let identity = dstorage_auth::default_registry()
        .canonical_identity(&identity)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_identity", e.to_string()))?;
    let app = s.app.clone();
    let id = identity.clone();
    let last = blocking(move || app.reads().nonce(&id))
        .await?
        .map_err(ApiError::from_sql)?;
    Ok(Json(NonceResponse {
        identity,
        last,
        next: last + 1,
    }))
}

async fn health(State(s): State<ApiState>) -> Response {
    if let Some(reason) = s.app.fatal().borrow().clone() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "failed", "reason": reason})),
        )
            .into_response();
    }
    match s.rpc.status().await {
        Ok(st) => (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ok", "height": s.app.committed().height, "catching_up": st.catching_up})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "reason": format!("CometBFT RPC: {e}")})),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dstorage_app::App;

    use super::*;
    use crate::batcher::Batcher;
    use crate::cometbft::CometRpc;
    use crate::metrics::Metrics;

    // Issue 10: a panic on a request thread must become an error answer, not a dropped
    // connection (or, with a stack overflow, a process abort).
    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_and_the_server_keeps_serving() {
        async fn boom() -> &'static str {
            panic!("boom in the handler")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(catch_panics));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let r = reqwest::get(format!("http://{addr}/boom"))
            .await
            .expect("an answer");
        assert_eq!(r.status(), 500);
        let body: ErrorResponse = r.json().await.expect("error JSON");
        assert_eq!(body.code, "internal");
        assert!(body.error.contains("boom in the handler"), "{}", body.error);
        let r = reqwest::get(format!("http://{addr}/ok"))
            .await
            .expect("an answer");
        assert_eq!(r.text().await.expect("body"), "fine");
        server.abort();
    }

    /// A state for a router that is only probed: a real app on a temporary database, and a
    /// CometBFT RPC address where nothing listens (handlers that ask it answer an error).
    fn probe_state(dir: &std::path::Path) -> ApiState {
        let app = App::open(dstorage_app::AppConfig::new(dir.join("db.sqlite"))).expect("app");
        let rpc = CometRpc::new("http://127.0.0.1:9").expect("rpc");
        let metrics = Arc::new(Metrics::new());
        let batcher = Batcher::spawn(
            rpc.clone(),
            crate::batcher::BatchLimits {
                max_txs: 1,
                max_bytes: 1 << 20,
                max_in_flight: 1,
            },
            metrics.clone(),
        );
        ApiState {
            app,
            rpc,
            batcher,
            metrics,
            reads_auth: Arc::new(crate::readauth::ReadAuthenticator::new()),
        }
    }

    // Bug pinned: the test compared openapi.json with a hand-kept ROUTES list the router never
    // read, so a route added to the router without documentation passed. It now reads the
    // router's own paths and asks the router which methods each one answers.
    #[tokio::test]
    async fn openapi_document_describes_exactly_the_routes_the_router_serves() {
        use tower::ServiceExt;
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = Vec::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        documented.sort();

        let dir = tempfile::tempdir().expect("tempdir");
        let served = served(probe_state(dir.path()));
        let mut paths = served.paths.clone();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), served.paths.len(), "a path is routed twice");
        let mut answered = Vec::new();
        for path in paths {
            // A path parameter gets a value no handler finds, so no handler does real work.
            let concrete: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "0" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let request = axum::extract::Request::builder()
                    .method(method)
                    .uri(&concrete)
                    .body(axum::body::Body::empty())
                    .expect("request");
                let response = served
                    .router
                    .clone()
                    .oneshot(request)
                    .await
                    .expect("answer");
                if response.status() != StatusCode::METHOD_NOT_ALLOWED {
                    answered.push((method.to_string(), path.to_string()));
                }
            }
        }
        answered.sort();
        assert_eq!(
            documented, answered,
            "openapi.json (left) and the router (right) disagree"
        );
    }

    #[test]
    fn a_node_is_behind_when_catching_up_cut_off_or_stalled_and_not_otherwise() {
        let fresh = Some(Duration::from_millis(800));
        assert_eq!(behind_reason(false, 3, 4, fresh), None);
        assert_eq!(
            behind_reason(false, 0, 1, fresh),
            None,
            "a single validator has no peers"
        );
        assert_eq!(behind_reason(false, 0, 1, None), None);
        let r = behind_reason(true, 3, 4, fresh).expect("catching up");
        assert!(r.contains("catching up"), "{r}");
        let r = behind_reason(false, 0, 4, fresh).expect("cut off");
        assert!(r.contains("no peers, 4 validators"), "{r}");
        let r = behind_reason(false, 1, 4, Some(Duration::from_secs(9))).expect("stalled");
        assert!(r.contains("no block for 9 s"), "{r}");
        assert_eq!(behind_reason(false, 1, 4, Some(STALE_AFTER)), None);
    }
}
