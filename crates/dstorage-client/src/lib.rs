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
use dstorage_types::read::ReadEnvelope;
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
    /// The node's chain id, asked once for signed reads (a node never changes it).
    chain_id: std::sync::Arc<std::sync::OnceLock<String>>,
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
            chain_id: Default::default(),
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

    /// Call a write action and wait for the commit.
    pub async fn call(
        &self,
        signer: &Signer,
        schema: &str,
        action: &str,
        args: Vec<dstorage_types::value::Value>,
    ) -> Result<TxResult, ClientError> {
        self.submit(
            signer,
            Payload::Call {
                schema: schema.into(),
                action: action.into(),
                args,
            },
        )
        .await
    }

    /// `POST /v1/call` unsigned: run a public view action (signed: [`Client::read_action`]).
    pub async fn call_view(
        &self,
        schema: &str,
        action: &str,
        args: Vec<dstorage_types::value::Value>,
    ) -> Result<QueryResponse, ClientError> {
        self.post("/v1/call", &ReadEnvelope::action(schema, action, args))
            .await
    }

    /// `GET /v1/schemas/{schema}/actions`.
    pub async fn actions(&self, schema: &str) -> Result<ActionsResponse, ClientError> {
        self.get(&format!("/v1/schemas/{schema}/actions")).await
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

    /// `POST /v1/query` with values bound to the statement's placeholders, unsigned: answered only for a
    /// schema that is publicly readable.
    pub async fn query_with_params(
        &self,
        schema: &str,
        sql: &str,
        params: Vec<dstorage_types::value::Value>,
    ) -> Result<QueryResponse, ClientError> {
        self.post("/v1/query", &ReadEnvelope::sql(schema, sql, params))
            .await
    }

    /// `POST /v1/query`, signed by `signer` (the schema's owner, or anyone in a public schema).
    pub async fn query_signed(
        &self,
        signer: &Signer,
        schema: &str,
        sql: &str,
        params: Vec<dstorage_types::value::Value>,
    ) -> Result<QueryResponse, ClientError> {
        let envelope = self
            .sign_read(signer, ReadEnvelope::sql(schema, sql, params))
            .await?;
        self.post("/v1/query", &envelope).await
    }

    /// `POST /v1/call` of a view action, signed by `signer` when given (unsigned only for public views). The
    /// answer is returned as the node gives it.
    pub async fn read_action(
        &self,
        signer: Option<&Signer>,
        schema: &str,
        action: &str,
        args: Vec<dstorage_types::value::Value>,
    ) -> Result<QueryResponse, ClientError> {
        let mut envelope = ReadEnvelope::action(schema, action, args);
        if let Some(signer) = signer {
            envelope = self.sign_read(signer, envelope).await?;
        }
        self.post("/v1/call", &envelope).await
    }

    /// `GET /v1/challenge`: a single-use challenge for one signed read.
    pub async fn challenge(&self) -> Result<ChallengeResponse, ClientError> {
        self.get("/v1/challenge").await
    }

    /// `GET /v1/challenge?count=N`: `count` single-use challenges at once (at most
    /// [`api::MAX_CHALLENGES`]), for a client that signs many reads within the challenges' lifetime.
    pub async fn challenges(&self, count: usize) -> Result<Vec<String>, ClientError> {
        let r: ChallengeResponse = self.get(&format!("/v1/challenge?count={count}")).await?;
        Ok(if r.challenges.is_empty() {
            vec![r.challenge]
        } else {
            r.challenges
        })
    }

    /// The node's chain id (asked once per client).
    pub async fn chain_id(&self) -> Result<String, ClientError> {
        if let Some(id) = self.chain_id.get() {
            return Ok(id.clone());
        }
        let id = self.status().await?.chain_id;
        Ok(self.chain_id.get_or_init(|| id).clone())
    }

    /// Sign a read envelope with a fresh challenge from the node (`docs/api.md`, "Signed reads").
    pub async fn sign_read(
        &self,
        signer: &Signer,
        envelope: ReadEnvelope,
    ) -> Result<ReadEnvelope, ClientError> {
        let chain_id = self.chain_id().await?;
        let challenge = self.challenge().await?.challenge;
        signer.sign_read(&chain_id, &challenge, envelope)
    }

    /// `POST` any read envelope (signed or not) to `path` (`/v1/query` or `/v1/call`).
    pub async fn post_read<T: DeserializeOwned>(
        &self,
        path: &str,
        envelope: &ReadEnvelope,
    ) -> Result<T, ClientError> {
        self.post(path, envelope).await
    }

    /// `GET /v1/grants` with the given filters (at least one of owner and grantee).
    pub async fn grants(
        &self,
        owner: Option<&str>,
        grantee: Option<&str>,
        data_id: Option<&str>,
    ) -> Result<GrantsResponse, ClientError> {
        let mut query = Vec::new();
        for (k, v) in [("owner", owner), ("grantee", grantee), ("data_id", data_id)] {
            if let Some(v) = v {
                query.push(format!("{k}={}", percent_encode(v)));
            }
        }
        self.get(&format!("/v1/grants?{}", query.join("&"))).await
    }

    /// Grant `grantee` access to the signer's `data_id` and wait for the commit.
    pub async fn grant(
        &self,
        signer: &Signer,
        grantee: &str,
        data_id: &str,
        locked_until: u64,
    ) -> Result<TxResult, ClientError> {
        self.submit(
            signer,
            Payload::Grant {
                grantee: grantee.into(),
                data_id: data_id.into(),
                locked_until,
            },
        )
        .await
    }

    /// Revoke the signer's grant of `data_id` to `grantee` and wait for the commit.
    pub async fn revoke(
        &self,
        signer: &Signer,
        grantee: &str,
        data_id: &str,
    ) -> Result<TxResult, ClientError> {
        self.submit(
            signer,
            Payload::Revoke {
                grantee: grantee.into(),
                data_id: data_id.into(),
            },
        )
        .await
    }

    /// `POST /v1/estimate`, signed by `signer` (the schema's owner, or anyone in a public schema).
    pub async fn estimate_signed(
        &self,
        signer: &Signer,
        schema: &str,
        sql: &str,
    ) -> Result<EstimateResponse, ClientError> {
        let envelope = self
            .sign_read(signer, ReadEnvelope::sql(schema, sql, Vec::new()))
            .await?;
        self.post("/v1/estimate", &envelope).await
    }

    /// `POST /v1/estimate`, unsigned: answered only for a publicly readable schema.
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

/// Percent-encode a query value (everything but unreserved characters).
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
