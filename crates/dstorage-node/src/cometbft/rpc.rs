//! A small client for the parts of CometBFT's JSON-RPC the node uses: status, broadcast, validators, blocks,
//! peers.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use super::error::{CometError, Result};

/// How long one RPC call may take; `broadcast_tx_commit` waits for a block (CometBFT allows it 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How often [`CometRpc::wait_for_height`] asks `/status`.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A client of one CometBFT node's RPC (JSON-RPC over HTTP POST).
#[derive(Debug, Clone)]
pub struct CometRpc {
    base_url: String,
    http: reqwest::Client,
}

/// What `/status` says about the node and its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's P2P id.
    pub node_id: String,
    /// The node's moniker.
    pub moniker: String,
    /// The chain id.
    pub network: String,
    /// Height of the last committed block.
    pub latest_block_height: u64,
    /// Hash of the last committed block (upper-case hex).
    pub latest_block_hash: String,
    /// App hash after the last committed block (upper-case hex).
    pub latest_app_hash: String,
    /// Time of the last committed block (RFC 3339).
    pub latest_block_time: String,
    /// Whether the node is still syncing blocks from peers.
    pub catching_up: bool,
    /// The node's validator address (upper-case hex).
    pub validator_address: String,
    /// The node's voting power (0 if it is not a validator).
    pub voting_power: i64,
}

/// The outcome of one ABCI call for a transaction (CheckTx or FinalizeBlock's result).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxResult {
    /// 0 for success; the app's error code otherwise.
    pub code: u32,
    /// The app's result bytes.
    pub data: Vec<u8>,
    /// The app's message.
    pub log: String,
    /// The app's error namespace.
    pub codespace: String,
}

/// The answer of `broadcast_tx_sync`: the transaction passed CheckTx (code 0) and is in the mempool, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastSync {
    /// CheckTx's result.
    pub check_tx: TxResult,
    /// The transaction's hash (upper-case hex of its SHA-256).
    pub hash: String,
}

/// The answer of `broadcast_tx_commit`: CheckTx's result and, if it passed, the block's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastCommit {
    /// CheckTx's result.
    pub check_tx: TxResult,
    /// FinalizeBlock's result for this transaction (default if CheckTx refused it).
    pub tx_result: TxResult,
    /// The transaction's hash (upper-case hex).
    pub hash: String,
    /// The height of the block that holds it (0 if CheckTx refused it).
    pub height: u64,
}

/// One validator of the set at some height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorInfo {
    /// Upper-case hex address.
    pub address: String,
    /// ed25519 public key, base64.
    pub pubkey: String,
    /// Voting power.
    pub voting_power: i64,
}

/// A committed block's header facts and transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    /// The block's height.
    pub height: u64,
    /// The block's hash (upper-case hex).
    pub hash: String,
    /// App hash after the previous block (the header carries the app hash of `height - 1`).
    pub app_hash: String,
    /// The block's time (RFC 3339).
    pub time: String,
    /// The proposer's validator address.
    pub proposer_address: String,
    /// The raw transactions, in block order.
    pub txs: Vec<Vec<u8>>,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node id.
    pub node_id: String,
    /// The peer's moniker.
    pub moniker: String,
}

/// What `/net_info` says about the node's peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetInfo {
    /// Whether the P2P listener is up.
    pub listening: bool,
    /// The connected peers.
    pub peers: Vec<PeerInfo>,
}

impl CometRpc {
    /// A client of the RPC at `base_url` (e.g. `http://127.0.0.1:26657`).
    pub fn new(base_url: impl Into<String>) -> Result<Self> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| CometError::Http {
                url: base_url.clone(),
                source,
            })?;
        Ok(CometRpc { base_url, http })
    }

    /// A client of the RPC on `127.0.0.1:<port>`.
    pub fn local(port: u16) -> Result<Self> {
        Self::new(format!("http://127.0.0.1:{port}"))
    }

    /// The RPC's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `/status`.
    pub async fn status(&self) -> Result<NodeStatus> {
        let r = self.call("status", json!({})).await?;
        let f = Fields::new(self, "status", &r);
        Ok(NodeStatus {
            node_id: f.str(&["node_info", "id"])?,
            moniker: f.str(&["node_info", "moniker"])?,
            network: f.str(&["node_info", "network"])?,
            latest_block_height: f.num(&["sync_info", "latest_block_height"])?,
            latest_block_hash: f.str(&["sync_info", "latest_block_hash"])?,
            latest_app_hash: f.str(&["sync_info", "latest_app_hash"])?,
            latest_block_time: f.str(&["sync_info", "latest_block_time"])?,
            catching_up: f.bool(&["sync_info", "catching_up"])?,
            validator_address: f.str(&["validator_info", "address"])?,
            voting_power: f.num(&["validator_info", "voting_power"])?,
        })
    }

    /// Poll `/status` until the node has committed `height` (and is not catching up), or fail after `timeout`.
    /// Connection errors count as "not yet": the node may still be starting.
    pub async fn wait_for_height(&self, height: u64, timeout: Duration) -> Result<NodeStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match self.status().await {
                Ok(status) if status.latest_block_height >= height && !status.catching_up => {
                    return Ok(status)
                }
                Ok(status) => format!(
                    "height {} (catching up: {})",
                    status.latest_block_height, status.catching_up
                ),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() + POLL_INTERVAL > deadline {
                return Err(CometError::Timeout {
                    what: format!("height {height} at {} (last: {last})", self.base_url),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `broadcast_tx_sync`: run CheckTx and return its result without waiting for a block.
    pub async fn broadcast_tx_sync(&self, tx: &[u8]) -> Result<BroadcastSync> {
        let r = self
            .call("broadcast_tx_sync", json!({ "tx": b64(tx) }))
            .await?;
        let f = Fields::new(self, "broadcast_tx_sync", &r);
        Ok(BroadcastSync {
            check_tx: f.tx_result(&[])?,
            hash: f.str(&["hash"])?,
        })
    }

    /// `broadcast_tx_commit`: run CheckTx, then wait (up to CometBFT's `timeout_broadcast_tx_commit`) for the
    /// block. Meant for tests and tools; the API waits for commits through the app's own events.
    pub async fn broadcast_tx_commit(&self, tx: &[u8]) -> Result<BroadcastCommit> {
        let r = self
            .call("broadcast_tx_commit", json!({ "tx": b64(tx) }))
            .await?;
        let f = Fields::new(self, "broadcast_tx_commit", &r);
        Ok(BroadcastCommit {
            check_tx: f.tx_result(&["check_tx"])?,
            tx_result: f.tx_result(&["tx_result"])?,
            hash: f.str(&["hash"])?,
            height: f.num(&["height"])?,
        })
    }

    /// `/validators` at `height` (the latest if `None`), all pages.
    pub async fn validators(&self, height: Option<u64>) -> Result<Vec<ValidatorInfo>> {
        const PER_PAGE: usize = 100;
        let mut validators = Vec::new();
        for page in 1.. {
            let mut params = json!({ "page": page.to_string(), "per_page": PER_PAGE.to_string() });
            if let Some(h) = height {
                params["height"] = json!(h.to_string());
            }
            let r = self.call("validators", params).await?;
            let f = Fields::new(self, "validators", &r);
            let total: usize = f.num(&["total"])?;
            let list = f.array(&["validators"])?;
            for v in list {
                let v = Fields::new(self, "validators", v);
                validators.push(ValidatorInfo {
                    address: v.str(&["address"])?,
                    pubkey: v.str(&["pub_key", "value"])?,
                    voting_power: v.num(&["voting_power"])?,
                });
            }
            if validators.len() >= total || list.is_empty() {
                break;
            }
        }
        Ok(validators)
    }

    /// `/block` at `height` (the latest if `None`).
    pub async fn block(&self, height: Option<u64>) -> Result<BlockInfo> {
        let params = match height {
            Some(h) => json!({ "height": h.to_string() }),
            None => json!({}),
        };
        let r = self.call("block", params).await?;
        let f = Fields::new(self, "block", &r);
        let mut txs = Vec::new();
        // CometBFT writes `"txs": null` for an empty block.
        if let Some(list) = r.pointer("/block/data/txs").and_then(Value::as_array) {
            for tx in list {
                let tx = tx
                    .as_str()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
                txs.push(
                    tx.ok_or_else(|| f.shape("block.data.txs holds a value that is not base64"))?,
                );
            }
        }
        Ok(BlockInfo {
            height: f.num(&["block", "header", "height"])?,
            hash: f.str(&["block_id", "hash"])?,
            app_hash: f.str(&["block", "header", "app_hash"])?,
            time: f.str(&["block", "header", "time"])?,
            proposer_address: f.str(&["block", "header", "proposer_address"])?,
            txs,
        })
    }

    /// `/net_info`: listening state and connected peers.
    pub async fn net_info(&self) -> Result<NetInfo> {
        let r = self.call("net_info", json!({})).await?;
        let f = Fields::new(self, "net_info", &r);
        let mut peers = Vec::new();
        for p in f.array(&["peers"])? {
            let p = Fields::new(self, "net_info", p);
            peers.push(PeerInfo {
                node_id: p.str(&["node_info", "id"])?,
                moniker: p.str(&["node_info", "moniker"])?,
            });
        }
        Ok(NetInfo {
            listening: f.bool(&["listening"])?,
            peers,
        })
    }

    /// One JSON-RPC call; returns its `result`.
    async fn call(&self, method: &'static str, params: Value) -> Result<Value> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let http = |source| CometError::Http {
            url: self.base_url.clone(),
            source,
        };
        let mut answer: Value = self
            .http
            .post(&self.base_url)
            .json(&body)
            .send()
            .await
            .map_err(http)?
            .json()
            .await
            .map_err(http)?;
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            return Err(CometError::RpcError {
                url: self.base_url.clone(),
                method,
                code: error["code"].as_i64().unwrap_or_default(),
                message: error["message"].as_str().unwrap_or_default().to_owned(),
                data: error["data"].as_str().unwrap_or_default().to_owned(),
            });
        }
        match answer.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(CometError::RpcShape {
                url: self.base_url.clone(),
                method,
                reason: "no result".into(),
            }),
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Typed reads from a JSON-RPC result, with errors naming the method and the missing field.
struct Fields<'a> {
    rpc: &'a CometRpc,
    method: &'static str,
    value: &'a Value,
}

impl<'a> Fields<'a> {
    fn new(rpc: &'a CometRpc, method: &'static str, value: &'a Value) -> Self {
        Fields { rpc, method, value }
    }

    fn shape(&self, reason: impl Into<String>) -> CometError {
        CometError::RpcShape {
            url: self.rpc.base_url.clone(),
            method: self.method,
            reason: reason.into(),
        }
    }

    fn get(&self, path: &[&str]) -> Result<&'a Value> {
        let mut v = self.value;
        for key in path {
            v = v
                .get(key)
                .ok_or_else(|| self.shape(format!("field {} is missing", path.join("."))))?;
        }
        Ok(v)
    }

    fn str(&self, path: &[&str]) -> Result<String> {
        match self.get(path)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.shape(format!("field {} is {other}, not a string", path.join(".")))),
        }
    }

    /// CometBFT writes 64-bit integers as strings, smaller ones as numbers; accept both.
    fn num<T: std::str::FromStr>(&self, path: &[&str]) -> Result<T> {
        let v = self.get(path)?;
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        text.parse()
            .map_err(|_| self.shape(format!("field {} is {v}, not an integer", path.join("."))))
    }

    fn bool(&self, path: &[&str]) -> Result<bool> {
        self.get(path)?
            .as_bool()
            .ok_or_else(|| self.shape(format!("field {} is not a boolean", path.join("."))))
    }

    fn array(&self, path: &[&str]) -> Result<&'a Vec<Value>> {
        self.get(path)?
            .as_array()
            .ok_or_else(|| self.shape(format!("field {} is not an array", path.join("."))))
    }

    /// An ABCI result object at `path` (code, data, log, codespace; absent fields are defaults).
    fn tx_result(&self, path: &[&str]) -> Result<TxResult> {
        let v = self.get(path)?;
        let data = match v.get("data").and_then(Value::as_str) {
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| self.shape(format!("data is not base64: {e}")))?,
            None => Vec::new(),
        };
        Ok(TxResult {
            code: v
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or_default(),
            data,
            log: v
                .get("log")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            codespace: v
                .get("codespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }
}
