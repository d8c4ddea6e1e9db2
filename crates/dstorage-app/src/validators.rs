//! The validator set as replicated state: joins by approval, approvals, leaves and removal votes (payload tags
//! 8-11), the end-of-block settling that turns enough votes into ValidatorUpdates, and the peer filter's view of
//! which node ids belong to validators.
//!
//! Rules and their reasons are in `docs/ARCHITECTURE.md`, "Validators". Everything here reads and writes the
//! system KV of the block being executed, iterates only key-ordered scans and `BTreeMap`s, and reads no clock,
//! so every node decides the same.

use std::collections::{BTreeMap, BTreeSet};

use dstorage_sql::{Block, KvPairs, Reader, SqlError};
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{Payload, Transaction, TxBody};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::refusal::Refusal;
use crate::AppError;

/// A block's validator updates: (ed25519 public key, power), in key order.
pub type Updates = Vec<(Vec<u8>, u64)>;

/// Voting power of every validator: all weigh the same (stake weighting is a later step, see the docs).
pub const POWER: u64 = 10;

/// The standard validator transactions are signed under: the CometBFT validator key is an ed25519 key, and one
/// key has one identity (the lower-case hex key), so no other standard over the same key is accepted.
pub const STANDARD: &str = "ed25519";

/// Default number of blocks a request stays open.
pub const DEFAULT_JOIN_EXPIRY_BLOCKS: u64 = 1000;

/// Longest `host:port` contact address accepted.
pub const MAX_ADDRESS_LEN: usize = 255;

const PARAMS: &[u8] = b"val/params";
const NEXT_ID: &[u8] = b"val/next_id";
const SET_PREFIX: &[u8] = b"val/set/";
const NODE_PREFIX: &[u8] = b"val/node/";
const LEFT_PREFIX: &[u8] = b"val/left/";
const REQ_PREFIX: &[u8] = b"val/req/";
const OPEN_PREFIX: &[u8] = b"val/open/";
const VOTED_PREFIX: &[u8] = b"val/voted/";

fn key_with(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

fn req_key(id: u64) -> Vec<u8> {
    key_with(REQ_PREFIX, &id.to_be_bytes())
}

fn voted_key(id: u64) -> Vec<u8> {
    key_with(VOTED_PREFIX, &id.to_be_bytes())
}

fn open_key(kind: RequestKind, key: &[u8; 32]) -> Vec<u8> {
    let kind: &[u8] = match kind {
        RequestKind::Join => b"join/",
        RequestKind::Remove => b"remove/",
    };
    [OPEN_PREFIX, kind, key.as_slice()].concat()
}

fn node_key(node_id: &str, key: &[u8; 32]) -> Vec<u8> {
    [NODE_PREFIX, node_id.as_bytes(), b"/", key.as_slice()].concat()
}

/// Read access to the system KV: the block being executed, or a reader of committed state (API, peer filter).
pub trait KvRead {
    /// One value.
    fn kv_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError>;
    /// Every pair under `prefix`, in key order.
    fn kv_prefix(&self, prefix: &[u8]) -> Result<KvPairs, SqlError>;
}

impl KvRead for Block<'_> {
    fn kv_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError> {
        self.kv_get(key)
    }
    fn kv_prefix(&self, prefix: &[u8]) -> Result<KvPairs, SqlError> {
        self.kv_scan(prefix)
    }
}

impl KvRead for Reader {
    fn kv_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError> {
        self.kv_get(key)
    }
    fn kv_prefix(&self, prefix: &[u8]) -> Result<KvPairs, SqlError> {
        self.kv_scan(prefix)
    }
}

/// The approval threshold as a fraction of the current set: `needed(n) = max(1, ceil(n × numerator /
/// denominator))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Numerator, 1 ≤ numerator ≤ denominator.
    pub numerator: u64,
    /// Denominator, at most 1000.
    pub denominator: u64,
}

impl Threshold {
    /// Votes needed among `n` current validators, in integers (rounding up), never fewer than one.
    pub fn needed(&self, n: u64) -> u64 {
        let num = n.saturating_mul(self.numerator);
        num.div_ceil(self.denominator.max(1)).max(1)
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            numerator: 2,
            denominator: 3,
        }
    }
}

/// The network's validator parameters, fixed at genesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Blocks a request stays open: made at height h, votes count up to and including h + this.
    pub join_expiry_blocks: u64,
    /// Votes needed, as a fraction of the current set.
    pub approval_threshold: Threshold,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            join_expiry_blocks: DEFAULT_JOIN_EXPIRY_BLOCKS,
            approval_threshold: Threshold::default(),
        }
    }
}

/// A genesis validator's contact, from the genesis app state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisNode {
    /// The validator's ed25519 public key, hex.
    pub pub_key: String,
    /// Its CometBFT node id.
    pub node_id: String,
    /// Its P2P address, `host:port` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `app_state.validators` of the genesis file; every field is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidators {
    /// See [`Params::join_expiry_blocks`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_expiry_blocks: Option<u64>,
    /// See [`Params::approval_threshold`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_threshold: Option<Threshold>,
    /// Contacts of the genesis validators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<GenesisNode>,
}

impl GenesisValidators {
    /// The parameters these values give, or why they are not valid.
    pub fn params(&self) -> Result<Params, String> {
        let p = Params {
            join_expiry_blocks: self
                .join_expiry_blocks
                .unwrap_or(DEFAULT_JOIN_EXPIRY_BLOCKS),
            approval_threshold: self.approval_threshold.unwrap_or_default(),
        };
        if p.join_expiry_blocks == 0 {
            return Err("validators.join_expiry_blocks must be at least 1".into());
        }
        let t = p.approval_threshold;
        if t.numerator == 0 || t.numerator > t.denominator || t.denominator > 1000 {
            return Err(format!(
                "validators.approval_threshold {}/{} must have 1 <= numerator <= denominator <= 1000",
                t.numerator, t.denominator
            ));
        }
        for n in &self.nodes {
            parse_key_hex(&n.pub_key)
                .map_err(|e| format!("validators.nodes: pub_key {:?}: {e}", n.pub_key))?;
            check_node_id(&n.node_id).map_err(|e| format!("validators.nodes: {e}"))?;
            if let Some(a) = &n.address {
                check_address(a).map_err(|e| format!("validators.nodes: {e}"))?;
            }
        }
        Ok(p)
    }
}

/// Read `app_state.validators` from the genesis app state bytes (other keys are left to their owners).
pub fn parse_genesis(app_state: &[u8]) -> Result<(Params, GenesisValidators), String> {
    if app_state.iter().all(u8::is_ascii_whitespace) {
        return Ok((Params::default(), GenesisValidators::default()));
    }
    let doc: serde_json::Value = serde_json::from_slice(app_state)
        .map_err(|e| format!("genesis app_state is not JSON: {e}"))?;
    let section = match doc.get("validators") {
        None | Some(serde_json::Value::Null) => GenesisValidators::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| format!("genesis app_state.validators: {e}"))?,
    };
    let params = section.params()?;
    Ok((params, section))
}

/// A current validator, as the app's state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorRecord {
    /// The ed25519 public key, hex (its identity under `ed25519`).
    pub pub_key: String,
    /// CometBFT's address of the key: upper-case hex of SHA-256(key)[..20].
    pub address: String,
    /// Voting power.
    pub power: u64,
    /// Its CometBFT node id, when known (genesis contacts or its join request).
    pub node_id: Option<String>,
    /// Its P2P address, when known.
    pub p2p_address: Option<String>,
    /// Height at which it was added (0: genesis).
    pub added_height: u64,
    /// First height CometBFT counts it (decided at h: h + 2; genesis: 1).
    pub active_from: u64,
}

/// A validator that left or was removed, kept so the API can show it until CometBFT stops counting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftRecord {
    /// The ed25519 public key, hex.
    pub pub_key: String,
    /// CometBFT's address.
    pub address: String,
    /// Height at which it left.
    pub left_height: u64,
    /// First height CometBFT no longer counts it (left at h: h + 2).
    pub inactive_from: u64,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Add the key to the set.
    Join,
    /// Remove the key from the set.
    Remove,
}

/// Where a request stands. `Expired` is never stored: a pending request past its expiry height is expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Open for votes.
    Pending,
    /// Reached the threshold; the change was made at `decided_height`.
    Approved,
    /// Past its expiry height without being approved.
    Expired,
    /// Closed without a decision: its target left the set by other means.
    Closed,
}

/// A join or removal request with its votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Sequential id, from 1.
    pub id: u64,
    /// Join or removal.
    pub kind: RequestKind,
    /// The key to add or remove, hex.
    pub pub_key: String,
    /// CometBFT's address of that key.
    pub address: String,
    /// The candidate's node id (joins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The candidate's P2P address (joins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_address: Option<String>,
    /// Height of the transaction that opened it.
    pub created_height: u64,
    /// Last height at which a vote counts.
    pub expires_at: u64,
    /// Voters' keys (hex), sorted. Only those still in the set count.
    pub votes: BTreeSet<String>,
    /// Stored status (`Pending`, `Approved` or `Closed`); see [`Request::status_at`].
    pub status: RequestStatus,
    /// Height of the decision or closing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_height: Option<u64>,
}

impl Request {
    /// The status as of a block at `height`: a pending request past its expiry is expired.
    pub fn status_at(&self, height: u64) -> RequestStatus {
        if self.status == RequestStatus::Pending && height > self.expires_at {
            RequestStatus::Expired
        } else {
            self.status
        }
    }
}

/// CometBFT's address of an ed25519 public key: upper-case hex of SHA-256(key)[..20].
pub fn cometbft_address(key: &[u8]) -> String {
    hex::encode_upper(&sha2::Sha256::digest(key)[..20])
}

fn parse_key_hex(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text).map_err(|e| format!("not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{} bytes, not 32", b.len()))
}

/// A CometBFT node id: 40 lower-case hex digits.
pub fn check_node_id(node_id: &str) -> Result<(), String> {
    if node_id.len() == 40
        && node_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "node id {:?} is not 40 lower-case hex digits",
            truncate(node_id)
        ))
    }
}

/// A `host:port` address: a non-empty host of printable ASCII without spaces, a port 1-65535.
pub fn check_address(address: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "address {:?} is not host:port (at most {MAX_ADDRESS_LEN} bytes)",
            truncate(address)
        )
    };
    if address.len() > MAX_ADDRESS_LEN {
        return Err(bad());
    }
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) || !port_ok {
        return Err(bad());
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(value)
        .map_err(|e| AppError::Invariant(format!("encoding validator state: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::Invariant(format!("stored {what} does not decode: {e}")))
}

/// The stored parameters (defaults before InitChain stored any).
pub fn params(kv: &impl KvRead) -> Result<Params, AppError> {
    match kv.kv_value(PARAMS)? {
        Some(b) => decode("validator parameters", &b),
        None => Ok(Params::default()),
    }
}

/// The current set (as the app's state has it), in key order.
pub fn current_set(kv: &impl KvRead) -> Result<BTreeMap<[u8; 32], ValidatorRecord>, AppError> {
    let mut out = BTreeMap::new();
    for (k, v) in kv.kv_prefix(SET_PREFIX)? {
        let key: [u8; 32] = k[SET_PREFIX.len()..]
            .try_into()
            .map_err(|_| AppError::Invariant("a validator set key is not 32 bytes".into()))?;
        out.insert(key, decode("validator", &v)?);
    }
    Ok(out)
}

/// Validators that left, in key order.
pub fn left(kv: &impl KvRead) -> Result<Vec<LeftRecord>, AppError> {
    kv.kv_prefix(LEFT_PREFIX)?
        .iter()
        .map(|(_, v)| decode("departed validator", v))
        .collect()
}

/// One request.
pub fn request(kv: &impl KvRead, id: u64) -> Result<Option<Request>, AppError> {
    kv.kv_value(&req_key(id))?
        .map(|b| decode("validator request", &b))
        .transpose()
}

/// Every request, by id (newest last); `limit` keeps the newest ones.
pub fn requests(kv: &impl KvRead, limit: usize) -> Result<Vec<Request>, AppError> {
    let all = kv.kv_prefix(REQ_PREFIX)?;
    let skip = all.len().saturating_sub(limit);
    all[skip..]
        .iter()
        .map(|(_, v)| decode("validator request", v))
        .collect()
}

/// Whether `node_id` belongs to a current validator (the peer filter's question).
pub fn is_validator_node(kv: &impl KvRead, node_id: &str) -> Result<bool, AppError> {
    let prefix = [NODE_PREFIX, node_id.as_bytes(), b"/"].concat();
    Ok(!kv.kv_prefix(&prefix)?.is_empty())
}

/// InitChain: store the parameters and the genesis set (keys and contacts).
pub fn init_chain(
    block: &mut Block<'_>,
    app_state: &[u8],
    validators: &[(Vec<u8>, u64)],
) -> Result<(), AppError> {
    let (params, genesis) = parse_genesis(app_state).map_err(AppError::Invariant)?;
    block.kv_put(PARAMS, &json(&params)?)?;
    let contacts: BTreeMap<String, &GenesisNode> = genesis
        .nodes
        .iter()
        .map(|n| (n.pub_key.to_ascii_lowercase(), n))
        .collect();
    for (key, power) in validators {
        let key: [u8; 32] = key.as_slice().try_into().map_err(|_| {
            AppError::Invariant(format!(
                "genesis validator key has {} bytes; dstorage validators use ed25519",
                key.len()
            ))
        })?;
        let hex_key = hex::encode(key);
        let contact = contacts.get(&hex_key);
        let record = ValidatorRecord {
            address: cometbft_address(&key),
            pub_key: hex_key,
            power: *power,
            node_id: contact.map(|c| c.node_id.clone()),
            p2p_address: contact.and_then(|c| c.address.clone()),
            added_height: 0,
            active_from: 1,
        };
        if let Some(node_id) = &record.node_id {
            block.kv_put(&node_key(node_id, &key), b"")?;
        }
        block.kv_put(&key_with(SET_PREFIX, &key), &json(&record)?)?;
    }
    Ok(())
}

/// What one block did to the validator set so far.
#[derive(Debug, Default)]
pub struct BlockChanges {
    /// The set at the block's start, read before its first validator transaction changed anything.
    start: Option<BTreeSet<[u8; 32]>>,
    /// Every `val/` key this block wrote or deleted, for the state hash ([`settle`]).
    written: BTreeSet<Vec<u8>>,
}

/// Write a validator KV pair, remembering the key for the block's state hash.
fn put(
    block: &mut Block<'_>,
    changes: &mut BlockChanges,
    key: &[u8],
    value: &[u8],
) -> Result<(), SqlError> {
    changes.written.insert(key.to_vec());
    block.kv_put(key, value)
}

/// Delete a validator KV pair, remembering the key for the block's state hash.
fn del(block: &mut Block<'_>, changes: &mut BlockChanges, key: &[u8]) -> Result<(), SqlError> {
    changes.written.insert(key.to_vec());
    block.kv_delete(key)
}

/// The running hash of the validator state, `val/hash`: after a block that wrote validator state,
/// `SHA-256(previous (32 zero bytes at first) ‖ for each key written, in key order: len u32 ‖ key ‖ 0 (deleted) |
/// 1 ‖ len u32 ‖ value)`. The app hash of such a block is extended with it (docs/protocol.md §6).
pub const STATE_HASH: &[u8] = b"val/hash";

/// The app hash of a block that changed validator state: `SHA-256(app_hash' ‖ "validators" ‖ state hash)`.
pub fn extend_app_hash(app_hash: &[u8; 32], state_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(app_hash);
    h.update(b"validators");
    h.update(state_hash);
    h.finalize().into()
}

impl BlockChanges {
    /// Whether a validator transaction ran in this block (only then can the set or a request change).
    pub fn touched(&self) -> bool {
        self.start.is_some()
    }

    fn start(&mut self, block: &Block<'_>) -> Result<&BTreeSet<[u8; 32]>, AppError> {
        if self.start.is_none() {
            self.start = Some(current_set(block)?.into_keys().collect());
        }
        Ok(self.start.as_ref().unwrap_or_else(|| unreachable!()))
    }
}

/// Whether replacing the set with `new` is safe given the block's starting set `start`: the validators of
/// `start` that stay hold more than two thirds of `new` (equal power), which also means `new` is not empty.
pub fn is_safe(start: &BTreeSet<[u8; 32]>, new: &BTreeSet<[u8; 32]>) -> bool {
    let kept = start.intersection(new).count() as u64;
    3 * kept > 2 * new.len() as u64
}

/// Execute a validator payload (tags 8-11) of a transaction whose nonce is already spent. `Ok(Err(_))` is the
/// transaction's refusal; only storage failures are errors.
pub fn execute(
    block: &mut Block<'_>,
    changes: &mut BlockChanges,
    height: u64,
    tx: &Transaction,
) -> Result<Result<(), Refusal>, AppError> {
    let sender: [u8; 32] = match stateless(&tx.body) {
        Ok(k) => k,
        Err(r) => return Ok(Err(r)),
    };
    let start = changes.start(block)?.clone();
    let params = params(block)?;
    let set = current_set(block)?;
    let sender_hex = hex::encode(sender);
    match &tx.body.payload {
        Payload::ValidatorJoin { node_id, address } => {
            if set.contains_key(&sender) {
                return Ok(Err(Refusal::new(
                    ResultCode::AlreadyValidator,
                    format!("{sender_hex} is already a validator"),
                )));
            }
            if let Some(open) = open_request(block, RequestKind::Join, &sender, height)? {
                return Ok(Err(Refusal::new(
                    ResultCode::RequestPending,
                    format!(
                        "{sender_hex} already has pending join request {} (open until height {})",
                        open.id, open.expires_at
                    ),
                )));
            }
            let mut req = new_request(block, changes, RequestKind::Join, &sender, height, &params)?;
            req.node_id = Some(node_id.clone());
            req.p2p_address = Some(address.clone());
            save_request(block, changes, &req)?;
            put(
                block,
                changes,
                &open_key(RequestKind::Join, &sender),
                &req.id.to_be_bytes(),
            )?;
            Ok(Ok(()))
        }
        Payload::ValidatorApprove { request: id } => {
            if !set.contains_key(&sender) {
                return Ok(Err(not_a_validator(&sender_hex)));
            }
            let Some(mut req) = request(block, *id)? else {
                return Ok(Err(Refusal::new(
                    ResultCode::RequestNotFound,
                    format!("there is no validator request {id}"),
                )));
            };
            match req.status_at(height) {
                RequestStatus::Pending => {}
                RequestStatus::Expired => {
                    return Ok(Err(Refusal::new(
                        ResultCode::RequestExpired,
                        format!(
                            "validator request {id} expired at height {}; this is height {height}",
                            req.expires_at
                        ),
                    )))
                }
                other => {
                    return Ok(Err(Refusal::new(
                        ResultCode::RequestNotFound,
                        format!("validator request {id} is no longer pending ({other:?})"),
                    )))
                }
            }
            if !req.votes.insert(sender_hex.clone()) {
                return Ok(Err(Refusal::new(
                    ResultCode::AlreadyVoted,
                    format!("{sender_hex} already voted for validator request {id}"),
                )));
            }
            save_request(block, changes, &req)?;
            put(block, changes, &voted_key(req.id), b"")?;
            Ok(Ok(()))
        }
        Payload::ValidatorLeave => {
            if !set.contains_key(&sender) {
                return Ok(Err(not_a_validator(&sender_hex)));
            }
            let mut new: BTreeSet<[u8; 32]> = set.keys().copied().collect();
            new.remove(&sender);
            if !is_safe(&start, &new) {
                return Ok(Err(unsafe_change(&start, &new, "leave")));
            }
            remove_validator(block, changes, &sender, height)?;
            Ok(Ok(()))
        }
        Payload::ValidatorRemove { key } => {
            let Ok(target) = <[u8; 32]>::try_from(key.as_slice()) else {
                return Ok(Err(Refusal::new(
                    ResultCode::InvalidValidatorRequest,
                    format!("validator key has {} bytes, not 32", key.len()),
                )));
            };
            if !set.contains_key(&sender) {
                return Ok(Err(not_a_validator(&sender_hex)));
            }
            let target_hex = hex::encode(target);
            if !set.contains_key(&target) {
                return Ok(Err(Refusal::new(
                    ResultCode::ValidatorNotFound,
                    format!("{target_hex} is not a validator"),
                )));
            }
            let mut req = match open_request(block, RequestKind::Remove, &target, height)? {
                Some(r) => r,
                None => {
                    let r = new_request(
                        block,
                        changes,
                        RequestKind::Remove,
                        &target,
                        height,
                        &params,
                    )?;
                    put(
                        block,
                        changes,
                        &open_key(RequestKind::Remove, &target),
                        &r.id.to_be_bytes(),
                    )?;
                    r
                }
            };
            if !req.votes.insert(sender_hex.clone()) {
                return Ok(Err(Refusal::new(
                    ResultCode::AlreadyVoted,
                    format!(
                        "{sender_hex} already voted to remove {target_hex} (request {})",
                        req.id
                    ),
                )));
            }
            save_request(block, changes, &req)?;
            put(block, changes, &voted_key(req.id), b"")?;
            Ok(Ok(()))
        }
        other => Err(AppError::Invariant(format!(
            "validators::execute called for payload {}",
            other.type_name()
        ))),
    }
}

/// The checks of a validator transaction that need no state: the standard, the sender's key, the contact.
/// Returns the sender's key. Shared with CheckTx.
pub fn stateless(body: &TxBody) -> Result<[u8; 32], Refusal> {
    if body.standard != STANDARD {
        return Err(Refusal::new(
            ResultCode::InvalidValidatorRequest,
            format!(
                "validator transactions are signed under {STANDARD} with the CometBFT validator key, not {}",
                body.standard
            ),
        ));
    }
    let sender: [u8; 32] = body.sender.as_slice().try_into().map_err(|_| {
        Refusal::new(
            ResultCode::InvalidValidatorRequest,
            format!(
                "sender has {} bytes, not a 32-byte ed25519 key",
                body.sender.len()
            ),
        )
    })?;
    match &body.payload {
        Payload::ValidatorJoin { node_id, address } => {
            check_node_id(node_id)
                .and_then(|()| check_address(address))
                .map_err(|e| Refusal::new(ResultCode::InvalidValidatorRequest, e))?;
        }
        Payload::ValidatorRemove { key } if key.len() != 32 => {
            return Err(Refusal::new(
                ResultCode::InvalidValidatorRequest,
                format!("validator key has {} bytes, not 32", key.len()),
            ))
        }
        _ => {}
    }
    Ok(sender)
}

/// Whether `payload` is one of this module's.
pub fn is_validator_payload(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::ValidatorJoin { .. }
            | Payload::ValidatorApprove { .. }
            | Payload::ValidatorLeave
            | Payload::ValidatorRemove { .. }
    )
}

fn not_a_validator(sender_hex: &str) -> Refusal {
    Refusal::new(
        ResultCode::NotAValidator,
        format!("{sender_hex} is not a current validator"),
    )
}

fn unsafe_change(start: &BTreeSet<[u8; 32]>, new: &BTreeSet<[u8; 32]>, what: &str) -> Refusal {
    let kept = start.intersection(new).count();
    Refusal::new(
        ResultCode::ValidatorSetUnsafe,
        format!(
            "after this {what} the set would have {} validators, {kept} of them validators at the start of the \
             block; those must be more than two thirds of the new set (and the set may not be empty)",
            new.len()
        ),
    )
}

/// The open (pending, not expired) request of `kind` for `key`, if any.
fn open_request(
    block: &Block<'_>,
    kind: RequestKind,
    key: &[u8; 32],
    height: u64,
) -> Result<Option<Request>, AppError> {
    let Some(id) = block.kv_get(&open_key(kind, key))? else {
        return Ok(None);
    };
    let id = crate::keys::decode_u64(&id)
        .ok_or_else(|| AppError::Invariant("an open request pointer is not a u64".into()))?;
    Ok(request(block, id)?.filter(|r| r.status_at(height) == RequestStatus::Pending))
}

fn new_request(
    block: &mut Block<'_>,
    changes: &mut BlockChanges,
    kind: RequestKind,
    key: &[u8; 32],
    height: u64,
    params: &Params,
) -> Result<Request, AppError> {
    let id = crate::keys::last_nonce(block.kv_get(NEXT_ID)?.as_deref()).max(1);
    put(block, changes, NEXT_ID, &(id + 1).to_be_bytes())?;
    Ok(Request {
        id,
        kind,
        pub_key: hex::encode(key),
        address: cometbft_address(key),
        node_id: None,
        p2p_address: None,
        created_height: height,
        expires_at: height.saturating_add(params.join_expiry_blocks),
        votes: BTreeSet::new(),
        status: RequestStatus::Pending,
        decided_height: None,
    })
}

fn save_request(
    block: &mut Block<'_>,
    changes: &mut BlockChanges,
    req: &Request,
) -> Result<(), AppError> {
    put(block, changes, &req_key(req.id), &json(req)?)?;
    Ok(())
}

/// Close request `req` (decided or void) at `height`: it leaves the voted index and its key's open pointer.
fn close_request(
    block: &mut Block<'_>,
    changes: &mut BlockChanges,
    mut req: Request,
    status: RequestStatus,
    height: u64,
) -> Result<(), AppError> {
    req.status = status;
    req.decided_height = Some(height);
    del(block, changes, &voted_key(req.id))?;
    let key = parse_key_hex(&req.pub_key).map_err(AppError::Invariant)?;
    let open = open_key(req.kind, &key);
    if block.kv_get(&open)?.as_deref() == Some(req.id.to_be_bytes().as_slice()) {
        del(block, changes, &open)?;
    }
    save_request(block, changes, &req)
}

/// Add `req`'s candidate to the set.
fn add_validator(
    block: &mut Block<'_>,
    changes: &mut BlockChanges,
    req: &Request,
    height: u64,
) -> Result<(), AppError> {
    let key = parse_key_hex(&req.pub_key).map_err(AppError::Invariant)?;
    let record = ValidatorRecord {
        pub_key: req.pub_key.clone(),
        address: req.address.clone(),
        power: POWER,
        node_id: req.node_id.clone(),
        p2p_address: req.p2p_address.clone(),
        added_height: height,
        active_from: height + 2,
    };
    if let Some(node_id) = &record.node_id {
        put(block, changes, &node_key(node_id, &key), b"")?;
    }
    put(block, changes, &key_with(SET_PREFIX, &key), &json(&record)?)?;
    del(block, changes, &key_with(LEFT_PREFIX, &key))?;
    Ok(())
}

/// Take `key` out of the set: its node id leaves the peer filter, its votes on pending requests are deleted
/// (they no longer count, and would not count again if it rejoined), and a pending removal of it is closed.
fn remove_validator(
    block: &mut Block<'_>,
    changes: &mut BlockChanges,
    key: &[u8; 32],
    height: u64,
) -> Result<(), AppError> {
    let set_key = key_with(SET_PREFIX, key);
    let Some(bytes) = block.kv_get(&set_key)? else {
        return Ok(());
    };
    let record: ValidatorRecord = decode("validator", &bytes)?;
    if let Some(node_id) = &record.node_id {
        del(block, changes, &node_key(node_id, key))?;
    }
    del(block, changes, &set_key)?;
    let left = LeftRecord {
        pub_key: record.pub_key.clone(),
        address: record.address.clone(),
        left_height: height,
        inactive_from: height + 2,
    };
    put(block, changes, &key_with(LEFT_PREFIX, key), &json(&left)?)?;
    for id in voted_ids(block)? {
        let Some(mut req) = request(block, id)? else {
            continue;
        };
        if req.votes.remove(&record.pub_key) {
            if req.votes.is_empty() {
                del(block, changes, &voted_key(id))?;
            }
            save_request(block, changes, &req)?;
        }
    }
    if let Some(req) = open_request(block, RequestKind::Remove, key, height)? {
        close_request(block, changes, req, RequestStatus::Closed, height)?;
    }
    Ok(())
}

fn voted_ids(block: &Block<'_>) -> Result<Vec<u64>, AppError> {
    block
        .kv_scan(VOTED_PREFIX)?
        .iter()
        .map(|(k, _)| {
            crate::keys::decode_u64(&k[VOTED_PREFIX.len()..])
                .ok_or_else(|| AppError::Invariant("a voted index key is not a u64".into()))
        })
        .collect()
}

/// End of a block with validator transactions: apply every pending request whose votes from current validators
/// reach the threshold and whose change is safe, lowest id first, again after each change until nothing more
/// applies; drop expired requests from the voted index. Returns the block's ValidatorUpdates: (key, power) in
/// key order, the set at the end against the set at the start, one entry per changed key; and, when the block
/// wrote validator state, the new state hash ([`STATE_HASH`]).
pub fn settle(
    block: &mut Block<'_>,
    changes: &mut BlockChanges,
    height: u64,
) -> Result<(Updates, Option<[u8; 32]>), AppError> {
    if !changes.touched() {
        return Ok((Vec::new(), None));
    }
    let start = changes.start(block)?.clone();
    let params = params(block)?;
    // Each pass applies at most one request and removes it from the voted index, so this ends.
    loop {
        let set: BTreeSet<[u8; 32]> = current_set(block)?.into_keys().collect();
        let needed = params.approval_threshold.needed(set.len() as u64);
        let mut applied = false;
        for id in voted_ids(block)? {
            let Some(req) = request(block, id)? else {
                del(block, changes, &voted_key(id))?;
                continue;
            };
            match req.status_at(height) {
                RequestStatus::Pending => {}
                // Expired requests keep their stored status (the API derives "expired"); they only leave the
                // index so later blocks do not look at them again.
                _ => {
                    del(block, changes, &voted_key(id))?;
                    continue;
                }
            }
            let counted = req
                .votes
                .iter()
                .filter_map(|v| parse_key_hex(v).ok())
                .filter(|k| set.contains(k))
                .count() as u64;
            if counted < needed {
                continue;
            }
            let key = parse_key_hex(&req.pub_key).map_err(AppError::Invariant)?;
            let mut new = set.clone();
            let valid = match req.kind {
                RequestKind::Join => new.insert(key),
                RequestKind::Remove => new.remove(&key),
            };
            if !valid {
                // The target is already where the request would put it (cannot happen through the rules above,
                // kept so a request never applies twice).
                close_request(block, changes, req, RequestStatus::Closed, height)?;
                applied = true;
                break;
            }
            if !is_safe(&start, &new) {
                tracing::info!(
                    height,
                    id,
                    "validator request reached its threshold but is not safe yet"
                );
                continue;
            }
            tracing::info!(height, id, kind = ?req.kind, key = %req.pub_key, votes = counted, needed, "validator request approved");
            match req.kind {
                RequestKind::Join => add_validator(block, changes, &req, height)?,
                RequestKind::Remove => remove_validator(block, changes, &key, height)?,
            }
            // A removal closed its own request on the way (as its target left); it is approved all the same.
            if let Some(req) = request(block, id)? {
                close_request(block, changes, req, RequestStatus::Approved, height)?;
            }
            applied = true;
            break;
        }
        if !applied {
            break;
        }
    }
    let end: BTreeSet<[u8; 32]> = current_set(block)?.into_keys().collect();
    let mut updates = BTreeMap::new();
    for k in start.difference(&end) {
        updates.insert(*k, 0);
    }
    for k in end.difference(&start) {
        updates.insert(*k, POWER);
    }
    let updates = updates.into_iter().map(|(k, p)| (k.to_vec(), p)).collect();
    if changes.written.is_empty() {
        return Ok((updates, None));
    }
    let previous = block.kv_get(STATE_HASH)?.unwrap_or_else(|| vec![0; 32]);
    let mut h = sha2::Sha256::new();
    h.update(&previous);
    for key in &changes.written {
        h.update((key.len() as u32).to_be_bytes());
        h.update(key);
        match block.kv_get(key)? {
            None => h.update([0u8]),
            Some(value) => {
                h.update([1u8]);
                h.update((value.len() as u32).to_be_bytes());
                h.update(&value);
            }
        }
    }
    let state: [u8; 32] = h.finalize().into();
    block.kv_put(STATE_HASH, &state)?;
    Ok((updates, Some(state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_threshold_is_two_thirds_rounded_up_and_never_zero() {
        let t = Threshold::default();
        let table: Vec<u64> = (0..=7).map(|n| t.needed(n)).collect();
        assert_eq!(table, [1, 1, 2, 2, 3, 4, 4, 5]);
        let half = Threshold {
            numerator: 1,
            denominator: 2,
        };
        assert_eq!((half.needed(4), half.needed(5)), (2, 3));
        let all = Threshold {
            numerator: 1,
            denominator: 1,
        };
        assert_eq!(all.needed(9), 9);
        // No overflow for absurd sizes.
        assert!(t.needed(u64::MAX) > 0);
    }

    #[test]
    fn a_change_is_safe_only_if_the_kept_validators_hold_more_than_two_thirds() {
        let set = |keys: &[u8]| -> BTreeSet<[u8; 32]> { keys.iter().map(|k| [*k; 32]).collect() };
        assert!(is_safe(&set(&[1, 2, 3]), &set(&[1, 2, 3, 4])), "3 of 4");
        assert!(!is_safe(&set(&[1, 2]), &set(&[1, 2, 3])), "2 of 3");
        assert!(!is_safe(&set(&[1]), &set(&[1, 2])), "1 of 2");
        assert!(is_safe(&set(&[1, 2]), &set(&[1])), "a leave that keeps one");
        assert!(!is_safe(&set(&[1]), &set(&[])), "never empty");
        assert!(!is_safe(&set(&[1, 2, 3, 4]), &set(&[1, 2, 5, 6])), "2 of 4");
    }

    #[test]
    fn contacts_are_checked_for_shape_and_size() {
        assert!(check_node_id(&"a".repeat(40)).is_ok());
        for bad in [
            "A".repeat(40),
            "a".repeat(39),
            "g".repeat(40),
            String::new(),
        ] {
            assert!(check_node_id(&bad).is_err(), "{bad:?}");
        }
        for good in ["127.0.0.1:26656", "node.example.org:1", "[::1]:65535"] {
            assert!(check_address(good).is_ok(), "{good}");
        }
        let long = format!("{}:1", "h".repeat(MAX_ADDRESS_LEN));
        for bad in [
            "no-port",
            ":26656",
            "host:",
            "host:0",
            "host:65536",
            "host:+1",
            "ho st:1",
            long.as_str(),
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn genesis_values_are_read_with_defaults_and_refused_with_a_reason() {
        let (p, g) = parse_genesis(b"{}").unwrap();
        assert_eq!(p, Params::default());
        assert!(g.nodes.is_empty());
        let (p, _) = parse_genesis(
            br#"{"other": 1, "validators": {"join_expiry_blocks": 5, "approval_threshold": {"numerator": 1, "denominator": 2}}}"#,
        )
        .unwrap();
        assert_eq!(p.join_expiry_blocks, 5);
        assert_eq!(p.approval_threshold.needed(4), 2);
        for (bad, needle) in [
            (&b"not json"[..], "not JSON"),
            (
                br#"{"validators": {"join_expiry_blocks": 0}}"#,
                "at least 1",
            ),
            (
                br#"{"validators": {"approval_threshold": {"numerator": 3, "denominator": 2}}}"#,
                "3/2",
            ),
            (br#"{"validators": {"surprise": 1}}"#, "surprise"),
            (
                br#"{"validators": {"nodes": [{"pub_key": "00", "node_id": "x"}]}}"#,
                "pub_key",
            ),
        ] {
            let err = parse_genesis(bad).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn cometbft_addresses_match_cometbft() {
        // The pair from a priv_validator_key.json written by `cometbft init` (also pinned in dstorage-node).
        // base64 kmalVNk0vtBYzvjXwdKljY4qJQLau2/kDWyS4xqjAek=
        let key = hex::decode("9266a554d934bed058cef8d7c1d2a58d8e2a2502dabb6fe40d6c92e31aa301e9")
            .unwrap();
        assert_eq!(
            cometbft_address(&key),
            "D383D007FADFD7406B50A64E974B1C0E76E96741"
        );
    }
}
