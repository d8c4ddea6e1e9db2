//! What the node remembers about each executed transaction, served by the API.

use dstorage_types::result::ResultCode;
use dstorage_types::tx::TxHash;
use dstorage_types::value::Value;
use serde::{Deserialize, Serialize};

/// The outcome of one transaction in a committed block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// The transaction hash (SHA-256 of its bytes).
    pub hash: TxHash,
    /// The block it was executed in.
    pub height: u64,
    /// Its position among the block's transactions, bundle members counted one by one.
    pub index: u32,
    /// Result code.
    pub code: ResultCode,
    /// Empty on success; otherwise the reason, naming the cause.
    pub message: String,
    /// SQLite VM steps used.
    pub cost: u64,
    /// Rows inserted, updated or deleted.
    pub rows_changed: u64,
    /// Column names of rows returned by a final SELECT or RETURNING, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Rows returned by a final SELECT or RETURNING, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Vec<Value>>,
    /// The sender's identity, when the signature was valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The transaction's nonce, when it decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
}
