//! Keys of the system key-value store the app keeps beside user tables (never part of the changeset).
//!
//! Layout (all keys are ASCII prefixes followed by the value named):
//! `meta/height` → u64 BE, `meta/app_hash` → 32 bytes, `meta/chain_id` → UTF-8,
//! `nonce/<identity>` → u64 BE (last used nonce), `owner/<schema>` → owner identity,
//! `actions/<schema>` → JSON action catalog, `meta/block_time` → i64 BE,
//! `tx/<32-byte hash>` → JSON [`crate::TxRecord`], `cs/<u64 BE height>` → encoded changeset.

/// Last committed height.
pub const HEIGHT: &[u8] = b"meta/height";
/// Last committed app hash.
pub const APP_HASH: &[u8] = b"meta/app_hash";
/// Set at the start of every block, inside its SQLite transaction (see `consensus::Aborted`).
pub const BLOCK_OPEN: &[u8] = b"meta/block_open";
/// The last committed block's header time, unix seconds as i64 BE (`@block_time` of reads).
pub const BLOCK_TIME: &[u8] = b"meta/block_time";
/// The chain id fixed at InitChain.
pub const CHAIN_ID: &[u8] = b"meta/chain_id";

/// Key of a sender's last used nonce.
pub fn nonce(identity: &str) -> Vec<u8> {
    [b"nonce/".as_slice(), identity.as_bytes()].concat()
}

/// Key of a schema's owner.
pub fn owner(schema: &str) -> Vec<u8> {
    [b"owner/".as_slice(), schema.as_bytes()].concat()
}

/// Key of a schema's action catalog (JSON `dstorage_types::action::ActionCatalog`), present when its schema
/// file declared actions or `PUBLIC READ`.
pub fn actions(schema: &str) -> Vec<u8> {
    [b"actions/".as_slice(), schema.as_bytes()].concat()
}

/// Prefix of all schema owners.
pub const OWNER_PREFIX: &[u8] = b"owner/";

/// Key of a transaction's record.
pub fn tx(hash: &[u8; 32]) -> Vec<u8> {
    [b"tx/".as_slice(), hash.as_slice()].concat()
}

/// Key of a height's changeset; big-endian so keys sort by height.
pub fn changeset(height: u64) -> Vec<u8> {
    [b"cs/".as_slice(), &height.to_be_bytes()].concat()
}

/// A sender's last used nonce from its stored value; never used is 0.
pub fn last_nonce(stored: Option<&[u8]>) -> u64 {
    stored.and_then(decode_u64).unwrap_or(0)
}

/// Decode a stored u64.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The running hash of every grant change (`crate::grants`), 32 bytes; absent before the first.
pub const GRANTS_HASH: &[u8] = b"meta/grants_hash";

/// Key of a schema's `public_read` flag (`crate::access`): present (value `[1]`) when anyone may read the
/// schema with ad-hoc SQL, absent otherwise.
pub fn public_read(schema: &str) -> Vec<u8> {
    [b"public_read/".as_slice(), schema.as_bytes()].concat()
}
