//! An in-process node for API tests that need no consensus: the real app on a real SQLite file driven block by
//! block by `dstorage_app::testing::Harness`, and the real HTTP router served on a local port. Routes that
//! reach CometBFT (`POST /v1/tx`, status's consensus fields) are not used through it: transactions go
//! through the harness's CheckTx and blocks.

#![allow(dead_code)]

use std::sync::Arc;

use dstorage_app::testing::Harness;
use dstorage_auth::SecretKey;
use dstorage_client::{Client, Signer};
use dstorage_node::api::{router, ApiState};
use dstorage_node::batcher::{BatchLimits, Batcher};
use dstorage_node::cometbft::CometRpc;
use dstorage_node::metrics::Metrics;
use dstorage_node::readauth::ReadAuthenticator;
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;

/// The chain id of the in-process node.
pub const CHAIN_ID: &str = "dstorage-inproc";

/// A running in-process node.
pub struct Inproc {
    /// The app under its harness.
    pub harness: Harness,
    /// The API's read authenticator (shared with the router), for issuing challenges at a chosen time.
    pub reads_auth: Arc<ReadAuthenticator>,
    /// A client of the served API.
    pub client: Client,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Inproc {
    fn drop(&mut self) {
        self.server.abort();
        self.harness.app.close();
    }
}

impl Inproc {
    /// Start the app on a fresh database and serve its API on a free local port.
    pub async fn start() -> Inproc {
        let dir = tempfile::tempdir().expect("temp dir");
        let harness = Harness::start(&dir.path().join("db.sqlite"), CHAIN_ID).expect("harness");
        // Nothing listens here: the routes these tests use never reach CometBFT.
        let rpc = CometRpc::new("http://127.0.0.1:9").expect("rpc client");
        let metrics = Arc::new(Metrics::new());
        let batcher = Batcher::spawn(
            rpc.clone(),
            BatchLimits {
                max_txs: 1,
                max_bytes: 1 << 20,
                max_in_flight: 1,
            },
            metrics.clone(),
        );
        let reads_auth = Arc::new(ReadAuthenticator::new());
        let app = router(ApiState {
            app: harness.app.clone(),
            rpc,
            batcher,
            metrics,
            reads_auth: reads_auth.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Inproc {
            harness,
            reads_auth,
            client: Client::new(format!("http://{addr}")),
            server,
            _dir: dir,
        }
    }

    /// Sign `payload` with `signer`'s next nonce, run it through CheckTx and, if admitted, a block; the result
    /// code and message (CheckTx's refusal or the block's record).
    pub fn submit(&self, signer: &Signer, payload: Payload) -> (ResultCode, String) {
        let next = self
            .harness
            .app
            .reads()
            .nonce(signer.identity())
            .expect("nonce")
            + 1;
        let tx = signer.sign(CHAIN_ID, next, payload).expect("sign");
        let bytes = tx.encode();
        let checked = self.harness.check_tx(&bytes);
        if checked.code.value() != 0 {
            return (
                ResultCode::from_code(checked.code.value()).expect("a dstorage code"),
                checked.log,
            );
        }
        let out = self.harness.block(vec![bytes]).expect("block");
        let r = &out.results[0];
        (
            ResultCode::from_code(r.code.value()).expect("a dstorage code"),
            r.log.clone(),
        )
    }

    /// Submit and require success.
    #[track_caller]
    pub fn ok(&self, signer: &Signer, payload: Payload) {
        let (code, message) = self.submit(signer, payload);
        assert_eq!(code, ResultCode::Ok, "{message}");
    }

    /// Deploy `schema` with `sql` as `signer`.
    pub fn deploy(&self, signer: &Signer, schema: &str, sql: &str) {
        self.ok(
            signer,
            Payload::DeploySchema {
                schema: schema.into(),
                sql: sql.into(),
            },
        );
    }
}

/// A fresh signer of `key_type` under `standard`.
pub fn signer(key_type: KeyType, standard: &str) -> Signer {
    Signer::new(SecretKey::generate(key_type), standard).expect("signer")
}

/// Assert that `result` is the API's error with HTTP `status` and `code`, its message holding `needle`.
#[track_caller]
pub fn assert_api_error<T: std::fmt::Debug>(
    result: Result<T, dstorage_client::ClientError>,
    status: u16,
    code: &str,
    needle: &str,
) {
    match result {
        Err(dstorage_client::ClientError::Api {
            status: got_status,
            code: got_code,
            error,
            ..
        }) => {
            assert_eq!((got_status, got_code.as_str()), (status, code), "{error}");
            assert!(error.contains(needle), "{needle:?} not in {error:?}");
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}
