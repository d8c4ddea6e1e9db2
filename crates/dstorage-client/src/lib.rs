//! Talk to a dstorage node's HTTP API from Rust: sign transactions, broadcast them, read results and data.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dstorage_client::ClientError> {
//! use dstorage_client::{Client, Signer};
//! let client = Client::new("http://127.0.0.1:8088");
//! let key = dstorage_auth::SecretKey::generate(dstorage_types::identity::KeyType::Secp256k1);
//! let signer = Signer::new(key, "eth_personal_sign")?;
//! let result = client.deploy(&signer, "app", "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT").await?;
//! println!("deployed at height {}", result.height);
//! # Ok(()) }
//! ```

pub mod api;
mod signer;

pub use signer::Signer;

use api::*;
use dstorage_types::tx::{Payload, Transaction, TxHash};
use serde::de::DeserializeOwned;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node could not be reached.
    #[error("cannot reach the node at {url}: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The node answered with an error.
    #[error("{status} from {url}: {error} ({code})")]
    Api {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// The node's message.
        error: String,
        /// The node's short error kind.
        code: String,
    },
    /// The answer was not the expected JSON.
    #[error("unexpected answer from {url}: {detail}")]
    Decode {
        /// The URL called.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
}

/// An HTTP client for one node.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the node API at `base` (e.g. `http://127.0.0.1:8088`).
    pub fn new(base: impl Into<String>) -> Client {
        let mut base = base.into();
        while base.ends_with('/') {
            base.pop();
        }
        if !base.contains("://") {
            base = format!("http://{base}");
        }
        Client {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn decode<T: DeserializeOwned>(
        url: String,
        r: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = r.status();
        let body = r.bytes().await.map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
        if !status.is_success() {
            let (error, code) = match serde_json::from_slice::<ErrorResponse>(&body) {
                Ok(e) => (e.error, e.code),
                Err(_) => (
                    String::from_utf8_lossy(&body).into_owned(),
                    "unknown".into(),
                ),
            };
            return Err(ClientError::Api {
                url,
                status: status.as_u16(),
                error,
                code,
            });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
            url,
            detail: e.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        Self::decode(url, r).await
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        Self::decode(url, r).await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.get("/v1/status").await
    }

    /// `GET /v1/nonce/{identity}`.
    pub async fn nonce(&self, identity: &str) -> Result<NonceResponse, ClientError> {
        self.get(&format!("/v1/nonce/{identity}")).await
    }

    /// `POST /v1/tx` with raw transaction bytes.
    pub async fn broadcast_bytes(
        &self,
        tx: &[u8],
        wait: WaitFor,
    ) -> Result<BroadcastResponse, ClientError> {
        self.post(
            "/v1/tx",
            &BroadcastRequest {
                tx: hex::encode(tx),
                wait,
            },
        )
        .await
    }

    /// Broadcast a signed transaction.
    pub async fn broadcast(
        &self,
        tx: &Transaction,
        wait: WaitFor,
    ) -> Result<BroadcastResponse, ClientError> {
        self.broadcast_bytes(&tx.encode(), wait).await
    }

    /// Sign `payload` with the signer's next nonce (asked from the node), broadcast, and wait for the commit.
    pub async fn submit(&self, signer: &Signer, payload: Payload) -> Result<TxResult, ClientError> {
        let status = self.status().await?;
        let nonce = self.nonce(signer.identity()).await?.next;
        let tx = signer.sign(&status.chain_id, nonce, payload)?;
        let r = self.broadcast(&tx, WaitFor::Commit).await?;
        r.committed.ok_or_else(|| ClientError::Decode {
            url: format!("{}/v1/tx", self.base),
            detail: "no committed result in a wait=commit answer".into(),
        })
    }

    /// Deploy a schema and wait for the commit.
    pub async fn deploy(
        &self,
        signer: &Signer,
        schema: &str,
        sql: &str,
    ) -> Result<TxResult, ClientError> {
        self.submit(
            signer,
            Payload::DeploySchema {
                schema: schema.into(),
                sql: sql.into(),
            },
        )
        .await
    }

    /// Run SQL in an owned schema and wait for the commit.
    pub async fn exec(
        &self,
        signer: &Signer,
        schema: &str,
        sql: &str,
    ) -> Result<TxResult, ClientError> {
        self.exec_with_params(signer, schema, sql, Vec::new()).await
    }

    /// Run one statement with values bound to its `?` placeholders, and wait for the commit.
    pub async fn exec_with_params(
        &self,
        signer: &Signer,
        schema: &str,
        sql: &str,
        params: Vec<dstorage_types::value::Value>,
    ) -> Result<TxResult, ClientError> {
        self.submit(
            signer,
            Payload::Sql {
                schema: schema.into(),
                sql: sql.into(),
                params,
            },
        )
        .await
    }

    /// `GET /v1/tx/{hash}`.
    pub async fn tx(&self, hash: &TxHash) -> Result<TxResult, ClientError> {
        self.get(&format!("/v1/tx/{hash}")).await
    }

    /// `POST /v1/query`.
    pub async fn query(&self, schema: &str, sql: &str) -> Result<QueryResponse, ClientError> {
        self.post(
            "/v1/query",
            &QueryRequest {
                schema: schema.into(),
                sql: sql.into(),
            },
        )
        .await
    }

    /// `POST /v1/estimate`.
    pub async fn estimate(&self, schema: &str, sql: &str) -> Result<EstimateResponse, ClientError> {
        self.post(
            "/v1/estimate",
            &QueryRequest {
                schema: schema.into(),
                sql: sql.into(),
            },
        )
        .await
    }

    /// `GET /v1/schemas`.
    pub async fn schemas(&self) -> Result<Vec<Schema>, ClientError> {
        self.get("/v1/schemas").await
    }

    /// `GET /v1/changesets/{height}`.
    pub async fn changeset(&self, height: u64) -> Result<ChangesetResponse, ClientError> {
        self.get(&format!("/v1/changesets/{height}")).await
    }

    /// `GET /v1/validators`.
    pub async fn validators(&self) -> Result<ValidatorsResponse, ClientError> {
        self.get("/v1/validators").await
    }

    /// `GET /v1/validators/requests`.
    pub async fn validator_requests(&self) -> Result<ValidatorRequestsResponse, ClientError> {
        self.get("/v1/validators/requests").await
    }

    /// `GET /health`: true when the node answers healthy.
    pub async fn health(&self) -> Result<bool, ClientError> {
        let url = format!("{}/health", self.base);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable { url, source })?;
        Ok(r.status().is_success())
    }
}
