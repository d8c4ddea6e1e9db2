//! How every connection is opened and limited: the SQLite build it needs, the network's engine limits
//! (`EngineConfig`), the connection settings and the stack SQL runs on.

use super::*;

/// The SQLite version this build bundles. Every node of a network must run the same one:
/// query plans, VM step counts and so costs depend on it.
pub const SQLITE_VERSION: &str = "3.54.1";

/// Return the linked SQLite version, or an error if it is not [`SQLITE_VERSION`].
pub fn sqlite_version() -> Result<&'static str, SqlError> {
    let found = rusqlite::version();
    if found == SQLITE_VERSION {
        Ok(found)
    } else {
        Err(SqlError::SqliteVersion {
            expected: SQLITE_VERSION,
            found: found.to_owned(),
        })
    }
}

/// The start of every error the patched SQLite raises instead of making a floating-point
/// value (vendor/libsqlite3-sys/dstorage-no-float.patch).
pub(crate) const NO_FLOAT_ERROR: &str = "floating-point value not allowed";

/// Refuse a SQLite built without dstorage's no-float patch: `'1.5' + 0` must be an error
/// naming it, not the REAL 1.5.
pub(super) fn require_no_float_patch(conn: &Connection) -> Result<(), SqlError> {
    match conn.query_row("SELECT '1.5' + 0", [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    }) {
        Err(e) if e.to_string().contains(NO_FLOAT_ERROR) => Ok(()),
        Err(e) => Err(SqlError::SqliteUnpatched(format!(
            "'1.5' + 0 failed with {e}"
        ))),
        Ok(v) => Err(SqlError::SqliteUnpatched(format!("'1.5' + 0 gave {v:?}"))),
    }
}

/// Engine limits. Part of the network's parameters: every node must use the same values,
/// since they decide which statements fail.
/// Not `#[non_exhaustive]`, so callers can write `EngineConfig { cost_limit_per_tx, ..Default::default() }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Upper bound of the cost (VM steps plus the byte charge, docs/sql.md "Cost") of one transaction; a caller's limit is capped to it.
    pub cost_limit_per_tx: u64,
    /// Longest SQL text accepted, in bytes.
    pub max_sql_length: usize,
    /// Longest TEXT or BLOB value, in bytes (SQLITE_LIMIT_LENGTH).
    pub max_value_length: u32,
    /// Most bytes one transaction's row changes may count (docs/sql.md, "Data limits"): a
    /// transaction that writes more fails with `DataLimitExceeded` while it runs.
    pub max_tx_write_bytes: u64,
    /// Most bytes the rows one transaction (or one read) returns may count.
    pub max_result_bytes: u64,
    /// Most bytes the row changes and returned rows of one block's transactions may count
    /// together; a transaction that would pass it fails with `BlockFull`. It bounds a
    /// block's changeset, transaction records and the memory they take.
    pub max_block_write_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cost_limit_per_tx: 10_000_000,
            max_sql_length: 100_000,
            max_value_length: 1_000_000,
            max_tx_write_bytes: 8 * 1024 * 1024,
            max_result_bytes: 8 * 1024 * 1024,
            max_block_write_bytes: 32 * 1024 * 1024,
        }
    }
}

impl EngineConfig {
    /// Refuse SQL text longer than [`EngineConfig::max_sql_length`], before any parsing.
    pub fn check_sql_length(&self, sql: &str) -> Result<(), SqlError> {
        if sql.len() > self.max_sql_length {
            return Err(SqlError::Refused {
                construct: format!("SQL of {} bytes", sql.len()),
                reason: format!("the limit is {} bytes", self.max_sql_length),
            });
        }
        Ok(())
    }

    /// Check that the limits fit together: every system value a block writes (its
    /// changeset, a transaction record) must stay under [`SYSTEM_VALUE_LIMIT`] whatever its
    /// transactions do, so that no transaction can make the block's bookkeeping fail.
    pub fn validate(&self) -> Result<(), SqlError> {
        let invalid = |reason: String| {
            Err(SqlError::Refused {
                construct: "this engine configuration".into(),
                reason,
            })
        };
        if self.max_tx_write_bytes > self.max_block_write_bytes
            || self.max_result_bytes > self.max_block_write_bytes
        {
            return invalid(format!(
                "the per-transaction limits ({} bytes written, {} returned) exceed the block's {}",
                self.max_tx_write_bytes, self.max_result_bytes, self.max_block_write_bytes
            ));
        }
        // A changeset is at most twice what its changes count, a record's JSON at most
        // three times its rows (blobs as hex), plus DDL text and messages of bounded size.
        let worst = self
            .max_block_write_bytes
            .saturating_mul(3)
            .saturating_add(64 * 1024 * 1024);
        if worst > SYSTEM_VALUE_LIMIT as u64 {
            return invalid(format!(
                "a block's {} bytes could make a system value over {SYSTEM_VALUE_LIMIT} bytes",
                self.max_block_write_bytes
            ));
        }
        Ok(())
    }
}

/// The length limit (SQLITE_LIMIT_LENGTH) the system KV is read and written with: SQLite's
/// own hard maximum. The user limit (`max_value_length`) would let a block's changeset or a
/// transaction record that outgrew it fail the block on every node (issue 10); the data
/// limits keep every system value far below this one (`EngineConfig::validate`).
pub const SYSTEM_VALUE_LIMIT: i32 = 1_000_000_000;

/// Page cache of the writer connection, in KiB (SQLite's `cache_size` takes a negative number for KiB).
pub(super) const WRITER_CACHE_KIB: i64 = -64 * 1024;

/// Most columns of a table or result (`SQLITE_LIMIT_COLUMN`).
pub(super) const COLUMN_LIMIT: i32 = 500;

/// How deep foreign-key actions may cascade (`SQLITE_LIMIT_TRIGGER_DEPTH`).
pub(super) const FK_ACTION_DEPTH: i32 = 1_000;

/// Stack a thread should have to run SQL (parse, guard, prepare, step) on its own stack: the
/// node gives its consensus, mempool and tokio threads this much. Any other thread works too:
/// the engine moves to a new stack segment when less than [`SQL_STACK_RED_ZONE`] is left.
pub const SQL_THREAD_STACK: usize = 8 * 1024 * 1024;

/// Stack the engine makes sure is left before it parses and guards SQL (issue 10: deep SQL
/// overflowed a 2 MiB tokio worker and aborted the node). The parser refuses trees deeper
/// than its limit and grows the stack where it recurses, but not every walk of the guard
/// does; measured in a debug build, where frames are largest, the deepest accepted SQL of
/// fourteen shapes (chains of binary, postfix and COLLATE operators, nested parentheses,
/// subqueries, CASE, calls, unary operators, IN and EXISTS) overflows 384 KiB and runs in 512
/// KiB. Twice that is kept free; a thread with less left continues on a segment of
/// [`SQL_STACK_SEGMENT`] bytes (test `the_deepest_sql_of_every_shape_gets_an_answer_on_a_small_thread`).
pub const SQL_STACK_RED_ZONE: usize = 1024 * 1024;

/// Size of the stack segment the engine moves to when a thread has less than
/// [`SQL_STACK_RED_ZONE`] left.
pub const SQL_STACK_SEGMENT: usize = 4 * 1024 * 1024;

/// Run `f`, which parses, guards or runs SQL, with at least [`SQL_STACK_RED_ZONE`] of stack.
pub(crate) fn with_sql_stack<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(SQL_STACK_RED_ZONE, SQL_STACK_SEGMENT, f)
}

/// Run `f` on `conn` with the length limit raised to [`SYSTEM_VALUE_LIMIT`], for the system
/// KV, and put the user limit back afterwards, whatever `f` returned.
pub(super) fn with_system_limit<T>(
    conn: &Connection,
    user_limit: u32,
    f: impl FnOnce() -> Result<T, SqlError>,
) -> Result<T, SqlError> {
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, SYSTEM_VALUE_LIMIT)?;
    let result = f();
    let restored = set_value_limit(conn, user_limit);
    let value = result?;
    restored?;
    Ok(value)
}

/// Set the length limit for user statements.
pub(super) fn set_value_limit(conn: &Connection, max_value_length: u32) -> Result<(), SqlError> {
    let value_len = i32::try_from(max_value_length).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, value_len.max(1_000))?;
    Ok(())
}

pub(super) fn configure(conn: &mut Connection, config: &EngineConfig) -> Result<(), SqlError> {
    // Double-quoted strings would make `"x"` a string when no column x exists: refuse the misfeature.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DML, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DDL, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    let sql_len = i32::try_from(config.max_sql_length).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, sql_len.max(1_000))?;
    // The system KV's limit must be reachable: a build with a lower hard maximum would clamp it.
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, SYSTEM_VALUE_LIMIT)?;
    let hard = conn.limit(Limit::SQLITE_LIMIT_LENGTH)?;
    if hard != SYSTEM_VALUE_LIMIT {
        return Err(SqlError::Refused {
            construct: format!("a SQLite build whose longest value is {hard} bytes"),
            reason: format!("the system KV needs {SYSTEM_VALUE_LIMIT}"),
        });
    }
    set_value_limit(conn, config.max_value_length)?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.set_limit(Limit::SQLITE_LIMIT_EXPR_DEPTH, 200)?;
    conn.set_limit(
        Limit::SQLITE_LIMIT_COMPOUND_SELECT,
        guard::MAX_COMPOUND as i32,
    )?;
    conn.set_limit(Limit::SQLITE_LIMIT_COLUMN, COLUMN_LIMIT)?;
    // User triggers are refused (and disabled above), but SQLite runs a foreign key's
    // actions (ON DELETE CASCADE, SET NULL, ...) as triggers, one nesting level per step of
    // a cascade chain or of a self-referencing tree. SQLite's own maximum; the meter bounds
    // the work.
    conn.set_limit(Limit::SQLITE_LIMIT_TRIGGER_DEPTH, FK_ACTION_DEPTH)?;
    conn.set_limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 1_000)?;
    conn.set_prepared_statement_cache_capacity(256);
    // Before any statement is prepared: `count(*)` walks its rows in metered steps.
    crate::meter::install_count(conn)?;
    Ok(())
}
