//! The system key-value store beside the user tables: its table, and reading it.

use super::*;

/// Key-value pairs of the system KV, sorted by key.
pub type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The system tables. The KV is a rowid table on purpose: it holds values of every size
/// (nonces, transaction records, whole changesets), and in a WITHOUT ROWID table a value
/// lives in the key's b-tree, so every lookup that passed a cell with a large value copied
/// that whole value to compare keys (a third of a node's block execution). A rowid table
/// keeps the keys in their own small index.
pub(super) const SYSTEM_DDL: &str = "
CREATE TABLE IF NOT EXISTS _dstorage_kv(key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS _dstorage_schemas(name TEXT PRIMARY KEY NOT NULL) STRICT, WITHOUT ROWID;
";

/// Move a system KV created as a WITHOUT ROWID table (before the layout above) into the
/// current layout, in one transaction. Its contents are the same, so nothing a node reports
/// changes.
pub(super) const KV_MIGRATION: &str = "
BEGIN IMMEDIATE;
CREATE TABLE _dstorage_kv_rowid(key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT;
INSERT INTO _dstorage_kv_rowid(key, value) SELECT key, value FROM _dstorage_kv ORDER BY key;
DROP TABLE _dstorage_kv;
ALTER TABLE _dstorage_kv_rowid RENAME TO _dstorage_kv;
COMMIT;
";

pub(super) fn create_system_tables(conn: &Connection) -> Result<(), SqlError> {
    conn.execute_batch(SYSTEM_DDL)?;
    let without_rowid: bool = conn.query_row(
        "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = '_dstorage_kv'",
        [],
        |r| r.get(0),
    )?;
    if without_rowid {
        tracing::info!("moving the system KV to its rowid layout (once)");
        if let Err(e) = conn.execute_batch(KV_MIGRATION) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
    }
    Ok(())
}

pub(super) fn kv_get(
    conn: &Connection,
    config: &EngineConfig,
    key: &[u8],
) -> Result<Option<Vec<u8>>, SqlError> {
    with_system_limit(conn, config.max_value_length, || {
        let mut stmt = conn.prepare_cached("SELECT value FROM _dstorage_kv WHERE key = ?1")?;
        let mut rows = stmt.query([key])?;
        match rows.next()? {
            Some(r) => Ok(Some(r.get(0)?)),
            None => Ok(None),
        }
    })
}

pub(super) fn kv_scan(
    conn: &Connection,
    config: &EngineConfig,
    prefix: &[u8],
) -> Result<KvPairs, SqlError> {
    with_system_limit(conn, config.max_value_length, || {
        let mut stmt = conn
            .prepare_cached("SELECT key, value FROM _dstorage_kv WHERE key >= ?1 ORDER BY key")?;
        let mut rows = stmt.query([prefix])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let k: Vec<u8> = r.get(0)?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k, r.get(1)?));
        }
        Ok(out)
    })
}
