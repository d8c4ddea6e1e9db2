//! The JSON shapes of the HTTP API (`/v1/...`), shared by the node (which serves them) and this client.
//! docs/api.md and the served OpenAPI document describe the same shapes.

use dstorage_types::result::ResultCode;
use dstorage_types::tx::TxHash;
use dstorage_types::value::Value;
use serde::{Deserialize, Serialize};

/// `POST /v1/tx`: broadcast a signed transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BroadcastRequest {
    /// The canonical transaction bytes, hex.
    pub tx: String,
    /// `sync` returns after CheckTx; `commit` waits until the block with the transaction is committed.
    #[serde(default)]
    pub wait: WaitFor,
}

/// How long `POST /v1/tx` waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// Return after CheckTx admitted or refused it.
    #[default]
    Sync,
    /// Return when the transaction's block is committed, with its result.
    Commit,
}

/// The answer to an admitted broadcast. A refused one is an [`ErrorResponse`] (HTTP 422) whose `code` is the
/// result code's name (e.g. `bad_signature`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BroadcastResponse {
    /// The transaction hash.
    pub hash: TxHash,
    /// With `wait = commit`: the committed outcome (which may itself be a failure, e.g. `sql_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<TxResult>,
}

/// A committed transaction's outcome (`GET /v1/tx/{hash}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxResult {
    /// The transaction hash.
    pub hash: TxHash,
    /// The block it was executed in.
    pub height: u64,
    /// Its position among the block's transactions, bundle members counted one by one.
    pub index: u32,
    /// Result code.
    pub code: ResultCode,
    /// Empty on success; otherwise the reason.
    pub message: String,
    /// SQLite VM steps used.
    pub cost: u64,
    /// Rows inserted, updated or deleted.
    pub rows_changed: u64,
    /// Column names of returned rows.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Rows returned by a final SELECT or RETURNING.
    #[serde(default)]
    pub rows: Vec<Vec<Value>>,
    /// The sender's identity.
    #[serde(default)]
    pub sender: Option<String>,
    /// The transaction's nonce.
    #[serde(default)]
    pub nonce: Option<u64>,
}

/// `POST /v1/query` and `POST /v1/estimate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryRequest {
    /// The schema the statement runs in.
    pub schema: String,
    /// One read-only statement.
    pub sql: String,
}

/// Rows of a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResponse {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows in the guaranteed order.
    pub rows: Vec<Vec<Value>>,
    /// SQLite VM steps used.
    pub cost: u64,
    /// The committed height the read saw.
    pub height: u64,
}

/// A cost estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstimateResponse {
    /// Predicted SQLite VM steps.
    pub cost: u64,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Declared type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Position in the primary key (1-based), or 0.
    #[serde(default)]
    pub pk: u32,
    /// Declared NOT NULL.
    #[serde(default)]
    pub not_null: bool,
}

/// One table of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Table name (without the schema).
    pub name: String,
    /// Columns in order.
    pub columns: Vec<Column>,
}

/// A schema (`GET /v1/schemas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Schema name.
    pub name: String,
    /// Owner identity.
    pub owner: String,
    /// Tables, sorted by name.
    pub tables: Vec<Table>,
}

/// One record of a decoded changeset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// `insert`, `update`, `delete` (or `schema` for DDL).
    pub op: String,
    /// Table (`schema.table`).
    pub table: String,
    /// Primary key values.
    pub key: Vec<Value>,
    /// (column position, new value) pairs.
    pub columns: Vec<(u32, Value)>,
}

/// `GET /v1/changesets/{height}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesetResponse {
    /// The block height.
    pub height: u64,
    /// SHA-256 of the canonical encoding, hex.
    pub hash: String,
    /// The canonical encoding, hex.
    pub encoded: String,
    /// Records in canonical order.
    pub records: Vec<ChangeRecord>,
    /// The changeset printed as a table.
    pub table: String,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// The network's chain id.
    pub chain_id: String,
    /// Last committed height of the app.
    pub height: u64,
    /// App hash after that height, hex.
    pub app_hash: String,
    /// Whether CometBFT is catching up.
    pub catching_up: bool,
    /// CometBFT's latest block height.
    pub consensus_height: u64,
    /// Current validators.
    pub validators: Vec<ValidatorInfo>,
    /// The bundled SQLite version.
    pub sqlite_version: String,
    /// The CometBFT version.
    pub cometbft_version: String,
    /// Connected peers.
    pub peers: u64,
}

/// A validator as `/v1/status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// CometBFT address, hex.
    pub address: String,
    /// Ed25519 public key, base64.
    pub pub_key: String,
    /// Voting power.
    pub power: u64,
}

/// `GET /v1/nonce/{identity}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceResponse {
    /// The identity asked about.
    pub identity: String,
    /// Last used nonce (0 if none).
    pub last: u64,
    /// The nonce to use next.
    pub next: u64,
}

/// Every error response: `{"error": "...", "code": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong, naming the cause.
    pub error: String,
    /// A short machine-readable kind (e.g. `bad_request`, `not_found`, or a result code name).
    pub code: String,
}

/// `GET /v1/schemas/{schema}/actions`: one action as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionInfo {
    /// Its name.
    pub name: String,
    /// `view` (reads, `POST /v1/call`) or `write` (a `call` transaction).
    pub kind: String,
    /// `public`, `authenticated` or `owner`.
    pub access: String,
    /// Parameters in call order.
    pub params: Vec<dstorage_types::action::Param>,
    /// The header as the schema file writes it.
    pub signature: String,
    /// Its statements as written.
    pub statements: Vec<String>,
}

/// `GET /v1/schemas/{schema}/actions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsResponse {
    /// The schema.
    pub schema: String,
    /// Whether it declared `PUBLIC READ`.
    pub public_read: bool,
    /// Its actions, sorted by name.
    pub actions: Vec<ActionInfo>,
}

impl ActionInfo {
    /// The listing of a deployed action.
    pub fn from_action(a: &dstorage_types::action::Action) -> ActionInfo {
        ActionInfo {
            name: a.name.clone(),
            kind: if a.view { "view" } else { "write" }.into(),
            access: a.access.name().into(),
            params: a.params.clone(),
            signature: a.signature(),
            statements: a.statements.iter().map(|s| s.sql.clone()).collect(),
        }
    }
}

/// Most challenges one `GET /v1/challenge?count=N` gives.
pub const MAX_CHALLENGES: usize = 100;

/// `GET /v1/challenge`: a single-use challenge for one signed read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// 80 lowercase hex characters; goes into the read's `auth.challenge` and its signed text.
    pub challenge: String,
    /// Unix seconds (the node's clock) after which the node refuses it.
    pub expires_at: u64,
    /// With `?count=N` (2 to 100): all N challenges, `challenge` being the first; each is single-use and
    /// expires at `expires_at`. Absent for one challenge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub challenges: Vec<String>,
}

/// One access grant (`GET /v1/grants`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    /// Who granted.
    pub owner: String,
    /// Who may read.
    pub grantee: String,
    /// What may be read.
    pub data_id: String,
    /// Unix seconds (block time) before which the grant cannot be revoked.
    pub locked_until: u64,
    /// Where the grant came from: `owner` (a `grant` transaction).
    pub origin: String,
    /// Height of the block that made it.
    pub height: u64,
}

/// `GET /v1/grants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantsResponse {
    /// Matching grants in (owner, grantee, data_id) order, at most 1,000.
    pub grants: Vec<GrantInfo>,
    /// The committed height they were read at.
    pub height: u64,
}

/// `GET /v1/validators`: the validator set as the app's committed state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorsResponse {
    /// The last committed height the answer reflects.
    pub height: u64,
    /// Blocks a request stays open (genesis).
    pub join_expiry_blocks: u64,
    /// Approval threshold numerator (genesis).
    pub threshold_numerator: u64,
    /// Approval threshold denominator (genesis).
    pub threshold_denominator: u64,
    /// Votes a request needs now: `max(1, ceil(validators × numerator / denominator))`.
    pub needed: u64,
    /// Current validators, in key order (including those CometBFT counts only from `active_from`).
    pub validators: Vec<ValidatorEntry>,
    /// Validators that left or were removed and that CometBFT still counts until `inactive_from`.
    pub leaving: Vec<LeavingEntry>,
}

/// One current validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorEntry {
    /// Ed25519 public key, lower-case hex (its identity under `ed25519`).
    pub pub_key: String,
    /// CometBFT address: upper-case hex of SHA-256(key)[..20].
    pub address: String,
    /// Voting power.
    pub power: u64,
    /// CometBFT node id, when known.
    pub node_id: Option<String>,
    /// P2P address `host:port`, when known.
    pub p2p_address: Option<String>,
    /// Height at which it was added (0: genesis).
    pub added_height: u64,
    /// First height CometBFT counts it (added at h: h + 2).
    pub active_from: u64,
    /// Whether CometBFT counts it for the next height already.
    pub active: bool,
}

/// A validator on its way out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeavingEntry {
    /// Ed25519 public key, hex.
    pub pub_key: String,
    /// CometBFT address.
    pub address: String,
    /// Height at which it left or was removed.
    pub left_height: u64,
    /// First height CometBFT no longer counts it.
    pub inactive_from: u64,
}

/// `GET /v1/validators/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorRequestsResponse {
    /// The last committed height the answer reflects.
    pub height: u64,
    /// Votes a request needs now.
    pub needed: u64,
    /// Requests, newest last (at most the 1,000 newest).
    pub requests: Vec<ValidatorRequestEntry>,
}

/// One join or removal request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorRequestEntry {
    /// The request id (what `validator_approve` names).
    pub id: u64,
    /// `join` or `remove`.
    pub kind: String,
    /// The key to add or remove, hex.
    pub pub_key: String,
    /// CometBFT address of that key.
    pub address: String,
    /// The candidate's node id (joins).
    pub node_id: Option<String>,
    /// The candidate's P2P address (joins).
    pub p2p_address: Option<String>,
    /// `pending`, `approved`, `expired` or `closed`.
    pub status: String,
    /// Height it was made at.
    pub created_height: u64,
    /// Last height a vote counts.
    pub expires_at: u64,
    /// Height it was approved or closed.
    pub decided_height: Option<u64>,
    /// Keys (hex) of the validators that voted for it and are still validators.
    pub votes: Vec<String>,
}
