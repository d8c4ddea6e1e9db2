//! Access grants: an owner lets a grantee read one piece of their data, the shape of idOS's access-grant
//! contracts (owner, grantee, data id, locked until), so grants read from EVM and NEAR later land in the same
//! table with another `origin`.
//!
//! Grants live in the system table [`TABLE`] of the node's SQLite file (a real table, so actions can test
//! `has_grant(owner, grantee, data_id)` in SQL), written only by the `grant` and `revoke` payloads in blocks.
//! It is not a user table, so its rows enter no changeset; instead every change is folded into a running hash
//! kept in the system KV ([`crate::keys::GRANTS_HASH`]), and a block that changed it folds that hash into its
//! app hash (`docs/protocol.md`, "App hash"). Two nodes with equal app hashes therefore hold equal grants.
//!
//! Whether a revoke is early is decided with the block header's time (consensus time, equal on every node),
//! never a clock.

use dstorage_auth::Registry;
use dstorage_sql::{Block, SqlError};
use dstorage_types::result::ResultCode;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys;
use crate::refusal::Refusal;

/// The grants table and its indexes. The primary key is the (owner, grantee, data_id) index `has_grant` looks
/// up; the second index serves listings by grantee.
pub const DDL: &str = "
CREATE TABLE IF NOT EXISTS _dstorage_grants(
    owner TEXT NOT NULL,
    grantee TEXT NOT NULL,
    data_id TEXT NOT NULL,
    locked_until INTEGER NOT NULL,
    origin TEXT NOT NULL,
    height INTEGER NOT NULL,
    PRIMARY KEY (owner, grantee, data_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS _dstorage_grants_by_grantee ON _dstorage_grants(grantee, owner, data_id);
";

/// The `origin` of grants made by a `grant` transaction.
pub const ORIGIN_OWNER: &str = "owner";

/// The longest data id, in bytes.
pub const MAX_DATA_ID_BYTES: usize = 256;

/// How many grants one listing returns at most.
pub const MAX_LISTED: usize = 1_000;

/// One grant, as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Who granted (the `grant` transaction's sender).
    pub owner: String,
    /// Who may read.
    pub grantee: String,
    /// What may be read.
    pub data_id: String,
    /// Unix seconds before which the grant cannot be revoked.
    pub locked_until: u64,
    /// Where the grant came from: `owner` (a `grant` transaction).
    pub origin: String,
    /// The height of the block that made it.
    pub height: u64,
}

/// Check a grant's or revoke's fields; the same on every node (the registry is the network's).
pub fn validate(
    registry: &Registry,
    grantee: &str,
    data_id: &str,
    locked_until: u64,
) -> Result<(), Refusal> {
    let bad = |m: String| Err(Refusal::new(ResultCode::BadGrant, m));
    if data_id.is_empty() || data_id.len() > MAX_DATA_ID_BYTES {
        return bad(format!(
            "data id is {} bytes; it must be 1 to {MAX_DATA_ID_BYTES}",
            data_id.len()
        ));
    }
    if i64::try_from(locked_until).is_err() {
        return bad(format!(
            "locked_until {locked_until} is past the largest time ({})",
            i64::MAX
        ));
    }
    match registry.canonical_identity(grantee) {
        Ok(c) if c == grantee => Ok(()),
        Ok(c) => bad(format!(
            "grantee {grantee:?} is not spelled canonically; use {c}"
        )),
        Err(e) => bad(format!("grantee is not an identity: {e}")),
    }
}

/// Record a grant by `owner` in the block. `Ok(Err(_))` is the transaction's failure, `Err(_)` storage's.
pub fn grant(
    block: &mut Block<'_>,
    owner: &str,
    grantee: &str,
    data_id: &str,
    locked_until: u64,
    height: u64,
) -> Result<Result<(), Refusal>, SqlError> {
    let conn = block.system_connection()?;
    if find(conn, owner, grantee, data_id)?.is_some() {
        return Ok(Err(Refusal::new(
            ResultCode::GrantExists,
            format!(
                "{owner} already granted {data_id:?} to {grantee}; revoke it first to change it"
            ),
        )));
    }
    let locked = i64::try_from(locked_until).unwrap_or(i64::MAX);
    let at = i64::try_from(height).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO _dstorage_grants(owner, grantee, data_id, locked_until, origin, height) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![owner, grantee, data_id, locked, ORIGIN_OWNER, at])?;
    fold(block, 6, owner, grantee, data_id, locked_until, height)?;
    Ok(Ok(()))
}

/// Remove `owner`'s grant of `data_id` to `grantee`, unless the block time is before its `locked_until`.
pub fn revoke(
    block: &mut Block<'_>,
    owner: &str,
    grantee: &str,
    data_id: &str,
    block_time: u64,
    height: u64,
) -> Result<Result<(), Refusal>, SqlError> {
    let conn = block.system_connection()?;
    let Some(existing) = find(conn, owner, grantee, data_id)? else {
        return Ok(Err(Refusal::new(
            ResultCode::GrantNotFound,
            format!("{owner} has no grant of {data_id:?} to {grantee}"),
        )));
    };
    if block_time < existing.locked_until {
        return Ok(Err(Refusal::new(
            ResultCode::GrantLocked,
            format!(
                "the grant of {data_id:?} to {grantee} is locked until {} (unix seconds); the block time is {block_time}",
                existing.locked_until
            ),
        )));
    }
    conn.prepare_cached(
        "DELETE FROM _dstorage_grants WHERE owner = ?1 AND grantee = ?2 AND data_id = ?3",
    )?
    .execute(params![owner, grantee, data_id])?;
    fold(
        block,
        7,
        owner,
        grantee,
        data_id,
        existing.locked_until,
        height,
    )?;
    Ok(Ok(()))
}

/// Fold one change into the running grants hash:
/// `SHA-256(previous ‖ tag u8 ‖ owner ‖ grantee ‖ data_id ‖ locked_until u64 BE ‖ height u64 BE)`, each string
/// as a u32 BE length and its UTF-8 bytes, tag 6 for a grant and 7 for a revoke (the payload tags).
fn fold(
    block: &mut Block<'_>,
    tag: u8,
    owner: &str,
    grantee: &str,
    data_id: &str,
    locked_until: u64,
    height: u64,
) -> Result<(), SqlError> {
    let previous = block.kv_get(keys::GRANTS_HASH)?.unwrap_or_default();
    let mut h = Sha256::new();
    h.update(&previous);
    h.update([tag]);
    for s in [owner, grantee, data_id] {
        h.update(u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(s.as_bytes());
    }
    h.update(locked_until.to_be_bytes());
    h.update(height.to_be_bytes());
    let next: [u8; 32] = h.finalize().into();
    block.kv_put(keys::GRANTS_HASH, &next)
}

fn find(
    conn: &Connection,
    owner: &str,
    grantee: &str,
    data_id: &str,
) -> Result<Option<Grant>, SqlError> {
    Ok(conn
        .prepare_cached(
            "SELECT owner, grantee, data_id, locked_until, origin, height FROM _dstorage_grants WHERE owner = ?1 AND grantee = ?2 AND data_id = ?3",
        )?
        .query_row(params![owner, grantee, data_id], row)
        .optional()?)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        owner: r.get(0)?,
        grantee: r.get(1)?,
        data_id: r.get(2)?,
        locked_until: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
        origin: r.get(4)?,
        height: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
    })
}

/// Committed grants matching the filters (each `None` matches anything), in (owner, grantee, data_id) order, at
/// most [`MAX_LISTED`].
pub fn list(
    conn: &Connection,
    owner: Option<&str>,
    grantee: Option<&str>,
    data_id: Option<&str>,
) -> Result<Vec<Grant>, SqlError> {
    // Only the given filters, so SQLite picks the primary key (owner first) or the grantee index.
    let mut conditions = Vec::new();
    let mut values: Vec<&str> = Vec::new();
    for (column, value) in [("owner", owner), ("grantee", grantee), ("data_id", data_id)] {
        if let Some(v) = value {
            values.push(v);
            conditions.push(format!("{column} = ?{}", values.len()));
        }
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT owner, grantee, data_id, locked_until, origin, height FROM _dstorage_grants {filter} \
         ORDER BY owner, grantee, data_id LIMIT {MAX_LISTED}"
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Create the grants table if the database has none (at open, before any reader).
pub fn create_table(conn: &Connection) -> Result<(), SqlError> {
    conn.execute_batch(DDL)?;
    Ok(())
}
