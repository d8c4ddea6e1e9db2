//! The engine: one write connection, blocks with a change log, readers, system KV.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::{Arc, OnceLock};

use dstorage_types::value::Value;
use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{
    CachedStatement, Connection, ErrorCode, OpenFlags, OptionalExtension, Statement,
    StatementStatus,
};
use serde::{Deserialize, Serialize};

use crate::authorizer::{Authorizer, Mode};
use crate::changeset::{
    begin_encoding, encode_record, set_record_count, Changeset, ChangesetRecord, CHANGESET_MAGIC,
};
use crate::estimate::{self, Estimate};
use crate::guard::{self, Catalog, Kind};
use crate::meter::{value_bytes, Meter};
use crate::names::{physical_name, split_physical, validate_schema_name};
use crate::program;
use crate::tracker::{Log, Mark, Tracker};
use crate::verify;
use crate::SqlError;

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
fn require_no_float_patch(conn: &Connection) -> Result<(), SqlError> {
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
const WRITER_CACHE_KIB: i64 = -64 * 1024;

/// Most columns of a table or result (`SQLITE_LIMIT_COLUMN`).
const COLUMN_LIMIT: i32 = 500;

/// What one row returned by a statement counts against the result limits, besides its
/// values (see [`value_charge`]): about the memory of its `Vec`.
const ROW_CHARGE: u64 = 24;

/// What a returned value counts against the result limits: its in-memory size (32 bytes)
/// plus the bytes of a TEXT or BLOB.
fn value_charge(v: &Value) -> u64 {
    32 + match v {
        Value::Text(t) => t.len() as u64,
        Value::Blob(b) => b.len() as u64,
        Value::Null | Value::Integer(_) => 0,
    }
}

/// How deep foreign-key actions may cascade (`SQLITE_LIMIT_TRIGGER_DEPTH`).
const FK_ACTION_DEPTH: i32 = 1_000;

/// Key-value pairs of the system KV, sorted by key.
pub type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Every user table (physical name) with its rows in key order.
pub type TableDump = Vec<(String, Vec<Vec<Value>>)>;

/// A block's changeset in its canonical encoding (see [`Block::changeset_encoded`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedChangeset {
    /// The encoding (docs/changeset.md); its SHA-256 is the changeset hash.
    pub bytes: Vec<u8>,
    /// How many records it holds.
    pub records: u32,
    /// How many of them are schema records (schemas created or dropped, DDL).
    pub schema_records: u32,
}

/// Steps already spent and the limit they count against, and the bytes the statement's
/// result rows may count (see [`value_charge`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub used: u64,
    pub limit: u64,
    pub result_bytes: u64,
}

/// Rows returned by a query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResult {
    /// Result column names.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
    /// Metered cost (VM steps plus the byte charge) of producing them.
    pub cost: u64,
}

/// What `Block::execute` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutcome {
    /// Metered cost (VM steps plus the byte charge) of all statements.
    pub cost: u64,
    /// Rows inserted, updated or deleted by the statements.
    pub rows_changed: u64,
    /// The rows of the last statement, if it returns rows (SELECT, RETURNING, PRAGMA).
    pub rows: Option<QueryResult>,
}

/// A column of a user table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Declared type: INTEGER, TEXT or BLOB.
    pub decl_type: String,
    /// Position in the primary key, counting from 1; 0 if not part of it.
    pub primary_key: u32,
    /// NOT NULL was declared (or implied).
    pub not_null: bool,
}

/// A user table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Table name within its schema.
    pub name: String,
    /// Columns in position order.
    pub columns: Vec<ColumnInfo>,
}

/// A schema and its tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaInfo {
    /// Schema name.
    pub name: String,
    /// Tables sorted by name.
    pub tables: Vec<TableInfo>,
}

/// The system tables. The KV is a rowid table on purpose: it holds values of every size
/// (nonces, transaction records, whole changesets), and in a WITHOUT ROWID table a value
/// lives in the key's b-tree, so every lookup that passed a cell with a large value copied
/// that whole value to compare keys (a third of a node's block execution). A rowid table
/// keeps the keys in their own small index.
const SYSTEM_DDL: &str = "
CREATE TABLE IF NOT EXISTS _dstorage_kv(key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS _dstorage_schemas(name TEXT PRIMARY KEY NOT NULL) STRICT, WITHOUT ROWID;
";

/// Move a system KV created as a WITHOUT ROWID table (before the layout above) into the
/// current layout, in one transaction. Its contents are the same, so nothing a node reports
/// changes.
const KV_MIGRATION: &str = "
BEGIN IMMEDIATE;
CREATE TABLE _dstorage_kv_rowid(key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT;
INSERT INTO _dstorage_kv_rowid(key, value) SELECT key, value FROM _dstorage_kv ORDER BY key;
DROP TABLE _dstorage_kv;
ALTER TABLE _dstorage_kv_rowid RENAME TO _dstorage_kv;
COMMIT;
";

fn create_system_tables(conn: &Connection) -> Result<(), SqlError> {
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
fn with_system_limit<T>(
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
fn set_value_limit(conn: &Connection, max_value_length: u32) -> Result<(), SqlError> {
    let value_len = i32::try_from(max_value_length).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, value_len.max(1_000))?;
    Ok(())
}

fn configure(conn: &mut Connection, config: &EngineConfig) -> Result<(), SqlError> {
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

/// The deterministic SQL engine over one SQLite file.
pub struct Engine {
    conn: Connection,
    cache: RefCell<RewriteCache>,
    auth: Authorizer,
    meter: Arc<Meter>,
    config: EngineConfig,
    path: PathBuf,
    /// Single-row inserts may run without their savepoint (see `Block::savepoint_free`).
    savepoint_free: bool,
    /// Calls run without a savepoint since the engine was opened.
    savepoint_free_runs: Cell<u64>,
    /// The pre-update hook's change log, recording each block.
    tracker: Tracker,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The hook points into the tracker, which is dropped after this.
        self.tracker.uninstall(&self.conn);
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("path", &self.path).finish()
    }
}

impl Engine {
    /// Open (or create) the database at `path` with one write connection in WAL mode.
    pub fn open(path: &Path, config: EngineConfig) -> Result<Engine, SqlError> {
        sqlite_version()?;
        config.validate()?;
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&mut conn, &config)?;
        require_no_float_patch(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Every block writes transaction records and nonces at keys spread over the system table; with
        // SQLite's default 2 MiB page cache most of those pages were read back from the OS on every block.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        create_system_tables(&conn)?;
        let auth = Authorizer::new();
        auth.install(&mut conn)?;
        let tracker = Tracker::default();
        tracker.install(&mut conn);
        // The meter charges the values the change log records as they are written.
        let meter = Meter::with_written(tracker.written_bytes());
        meter.install(&mut conn)?;
        meter.install_function(&conn)?;
        crate::functions::install(&conn)?;
        Ok(Engine {
            conn,
            cache: RefCell::new(RewriteCache::default()),
            auth,
            meter,
            config,
            path: path.to_owned(),
            savepoint_free: true,
            savepoint_free_runs: Cell::new(0),
            tracker,
        })
    }

    /// Let single-row inserts run without their per-call savepoint where the engine can
    /// prove SQLite's statement atomicity is enough (on by default; docs/sql.md,
    /// "Atomicity"). Results, changesets and costs are the same either way: turning it
    /// off is for tests and measurements.
    pub fn set_savepoint_free_inserts(&mut self, on: bool) {
        self.savepoint_free = on;
    }

    /// How many calls ran without a savepoint since the engine was opened.
    pub fn savepoint_free_runs(&self) -> u64 {
        self.savepoint_free_runs.get()
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Start a block: BEGIN, and an empty change log recording every user table.
    pub fn begin_block(&mut self) -> Result<Block<'_>, SqlError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let conn = &self.conn;
        self.tracker.start(&self.meter);
        Ok(Block {
            conn,
            cache: &self.cache,
            auth: &self.auth,
            meter: &self.meter,
            config: &self.config,
            tracker: &self.tracker,
            closed: Vec::new(),
            closed_count: 0,
            closed_schema: 0,
            pending_ddl: Vec::new(),
            savepoint: None,
            release: None,
            held: None,
            schema_changed: false,
            savepoint_free: self.savepoint_free,
            savepoint_free_runs: &self.savepoint_free_runs,
            results_in_block: 0,
            allowance: Allowance::default(),
            finished: false,
        })
    }

    /// A new read-only connection on the same file: it sees committed state only.
    pub fn reader(&self) -> Result<Reader, SqlError> {
        Reader::open(&self.path, self.config.clone())
    }

    /// Committed system KV value of `key`.
    pub fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError> {
        kv_get(&self.conn, &self.config, key)
    }

    /// Committed system KV pairs whose key starts with `prefix`, sorted by key.
    pub fn kv_scan(&self, prefix: &[u8]) -> Result<KvPairs, SqlError> {
        kv_scan(&self.conn, &self.config, prefix)
    }

    /// Committed schemas with their tables and columns, sorted by name.
    pub fn schemas(&self) -> Result<Vec<SchemaInfo>, SqlError> {
        schemas(&self.conn)
    }

    /// Estimate the cost of `sql` in `schema` on committed state.
    pub fn estimate(&self, schema: &str, sql: &str) -> Result<Estimate, SqlError> {
        with_sql_stack(|| {
            estimate::estimate(
                &self.conn,
                &self.auth,
                &self.meter,
                schema,
                sql,
                &self.config,
            )
        })
    }

    /// Judge `sql` in `schema` by its text alone; see [`Reader::check`].
    pub fn check(&self, schema: &str, sql: &str) -> Result<(), SqlError> {
        with_sql_stack(|| check_text(&self.config, schema, sql))
    }

    /// Every user row, table by table in name order and key order: for comparing two
    /// databases in tests and audits.
    pub fn dump(&self) -> Result<TableDump, SqlError> {
        dump(&self.conn)
    }

    /// The underlying connection, for tests and tools that apply changesets or compare state.
    /// Writing through it outside a block bypasses the guard and the change log.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Rewritten single statements by schema and SQL text, so a statement run again (an
/// action, a parameterized insert) skips parsing and rewriting. The rewrite depends only
/// on the text and the database schema, so the cache is cleared by every DDL.
#[derive(Default)]
struct RewriteCache {
    entries: BTreeMap<String, BTreeMap<String, Arc<Cached>>>,
    len: usize,
}

/// A cached rewrite, with what the savepoint-free proof found in its program (worked out
/// on first use, valid as long as the schema, so as long as the cache entry).
struct Cached {
    rewritten: Arc<guard::Rewritten>,
    proof: OnceLock<Option<program::InsertProof>>,
}

/// Entries kept before the cache starts over.
const REWRITE_CACHE_CAPACITY: usize = 1_024;

impl RewriteCache {
    fn get(&self, schema: &str, sql: &str) -> Option<&Arc<Cached>> {
        self.entries.get(schema)?.get(sql)
    }
    fn insert(&mut self, schema: &str, sql: &str, rewritten: Arc<guard::Rewritten>) {
        if self.len >= REWRITE_CACHE_CAPACITY {
            self.clear();
        }
        self.entries.entry(schema.to_owned()).or_default().insert(
            sql.to_owned(),
            Arc::new(Cached {
                rewritten,
                proof: OnceLock::new(),
            }),
        );
        self.len += 1;
    }
    fn clear(&mut self) {
        self.entries.clear();
        self.len = 0;
    }
}

/// What a failed transaction restores.
enum Snapshot {
    Plain {
        pending_ddl: usize,
        log: Mark,
    },
    /// A transaction that may close sections keeps a copy of the whole log.
    Sectioned {
        closed: usize,
        closed_count: u32,
        closed_schema: u32,
        pending_ddl: Vec<ChangesetRecord>,
        log: Box<Log>,
    },
}

/// One block: everything between `begin_block` and `commit` / `discard` is one SQLite
/// transaction, its row changes recorded by the engine's change log (`tracker.rs`).
pub struct Block<'e> {
    conn: &'e Connection,
    cache: &'e RefCell<RewriteCache>,
    auth: &'e Authorizer,
    meter: &'e Arc<Meter>,
    config: &'e EngineConfig,
    tracker: &'e Tracker,
    /// Encoded records of sections already closed by a DROP (see docs/changeset.md).
    closed: Vec<u8>,
    /// How many records `closed` holds.
    closed_count: u32,
    /// How many of them are schema records (DDL, schemas created and dropped).
    closed_schema: u32,
    /// DDL records of the current section, in execution order.
    pending_ddl: Vec<ChangesetRecord>,
    /// `SAVEPOINT dstorage_tx` and `RELEASE dstorage_tx`, prepared at their first use and
    /// kept for the block (back in the connection's statement cache when it ends).
    savepoint: Option<CachedStatement<'e>>,
    release: Option<CachedStatement<'e>>,
    /// The last user statement run, kept prepared with its text (see `run_guarded_held`).
    held: Option<(String, CachedStatement<'e>)>,
    /// DDL ran in this block (SQLite then drops its schema on every rollback; see
    /// `forget_statements`).
    schema_changed: bool,
    /// See `Engine::set_savepoint_free_inserts`.
    savepoint_free: bool,
    savepoint_free_runs: &'e Cell<u64>,
    /// What the rows returned by the block's committed transactions count (see
    /// [`value_charge`]); with the change log's charge, what the block has used of
    /// `max_block_write_bytes`.
    results_in_block: u64,
    /// The data limits of the running transaction (see `Block::begin_tx`).
    allowance: Allowance,
    finished: bool,
}

/// The data limits of one transaction, set when it starts (docs/sql.md, "Data limits").
#[derive(Clone, Copy, Debug, Default)]
struct Allowance {
    /// Bytes the block had left of `max_block_write_bytes` when the transaction started.
    block_left: u64,
    /// The change log's charge when it started.
    charged_at_start: u64,
    /// Bytes its row changes may count: `max_tx_write_bytes`, or `block_left` if less.
    write: u64,
    /// What its returned rows counted so far.
    results: u64,
}

struct ConnCatalog<'a> {
    conn: &'a Connection,
    auth: &'a Authorizer,
    mode: Mode,
}

/// The primary-key columns of `physical` in key order, or None for an unknown (or keyless) table.
pub(crate) fn primary_key_columns(conn: &Connection, physical: &str) -> Option<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
        .ok()?;
    let cols = stmt
        .query_map([physical], |r| r.get::<_, String>(0))
        .ok()?
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    (!cols.is_empty()).then_some(cols)
}

/// The first column of a table or view `physical`, if it exists.
pub(crate) fn first_column(conn: &Connection, physical: &str) -> Option<String> {
    conn.prepare_cached("SELECT name FROM pragma_table_info(?1) ORDER BY cid LIMIT 1")
        .ok()?
        .query_row([physical], |r| r.get::<_, String>(0))
        .ok()
}

/// How many columns `SELECT *` gives of table or view `physical` (generated columns
/// included), if it exists.
pub(crate) fn table_width(conn: &Connection, physical: &str) -> Option<usize> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM pragma_table_xinfo(?1) WHERE hidden IN (0, 2, 3)")
        .ok()?
        .query_row([physical], |r| r.get(0))
        .ok()?;
    usize::try_from(n).ok().filter(|&n| n > 0)
}

impl Catalog for ConnCatalog<'_> {
    fn primary_key(&self, physical: &str) -> Option<Vec<String>> {
        primary_key_columns(self.conn, physical)
    }

    fn first_column(&self, physical: &str) -> Option<String> {
        first_column(self.conn, physical)
    }

    fn table_width(&self, physical: &str) -> Option<usize> {
        table_width(self.conn, physical)
    }

    fn column_count(
        &self,
        sql: &str,
        ctes: &std::collections::BTreeSet<String>,
    ) -> Result<usize, SqlError> {
        let mode = match &self.mode {
            Mode::Write { schema, .. } => Mode::Write {
                schema: schema.clone(),
                ctes: ctes.clone(),
            },
            Mode::Read { .. } => Mode::Read { ctes: ctes.clone() },
            Mode::Internal => Mode::Internal,
        };
        self.auth.set_mode(mode);
        let n = self.conn.prepare(sql).map(|s| s.column_count());
        let denial = self.auth.take_denial();
        self.auth.set_mode(Mode::Internal);
        match (n, denial) {
            (_, Some(d)) => Err(d),
            (Ok(n), None) => Ok(n),
            (Err(e), None) => Err(SqlError::Sqlite(e)),
        }
    }
}

/// Give the names in a PRAGMA's rows as the schema knows them: `app.ix` is `ix`, and
/// SQLite's own `sqlite_autoindex_app.t_1` is `sqlite_autoindex_t_1`.
fn names_in_schema(rows: &mut QueryResult, schema: &str) {
    let own = format!("{schema}.");
    let auto = format!("sqlite_autoindex_{schema}.");
    for v in rows.rows.iter_mut().flatten() {
        if let Value::Text(t) = v {
            if let Some(rest) = t.strip_prefix(&auto) {
                *t = format!("sqlite_autoindex_{rest}");
            } else if let Some(rest) = t.strip_prefix(&own) {
                *t = rest.to_owned();
            }
        }
    }
}

/// Put the rows of an UPDATE or DELETE ... RETURNING in the order of the `keys` key
/// columns the guard appended to them, then drop those columns: SQLite returns the rows in
/// the order it visited them, which the query plan chooses.
fn sort_by_appended_keys(rows: &mut QueryResult, keys: usize) {
    if keys == 0 || rows.columns.len() < keys {
        return;
    }
    let width = rows.columns.len() - keys;
    rows.rows.sort_by(|a, b| a[width..].cmp(&b[width..]));
    for row in &mut rows.rows {
        row.truncate(width);
    }
    rows.columns.truncate(width);
}

/// Result of running one guarded statement.
pub(crate) struct StepOutcome {
    pub cost: u64,
    /// What the result rows count against the result limits.
    pub result_bytes: u64,
    pub changes: u64,
    pub rows: Option<QueryResult>,
}

fn value_of(v: ValueRef<'_>, column: &str) -> Result<Value, SqlError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Real(_) => {
            return Err(SqlError::RealValue {
                column: column.to_owned(),
            })
        }
    })
}

/// Run one rewritten statement under the authorizer `mode` and the meter. `used` steps
/// are already spent of `limit`.
pub(crate) fn run_guarded(
    conn: &Connection,
    auth: &Authorizer,
    meter: &Meter,
    mode: Mode,
    sql: &str,
    params: &[Value],
    budget: Budget,
) -> Result<StepOutcome, SqlError> {
    let mut slot = None;
    run_guarded_held(conn, auth, meter, mode, sql, &mut slot, params, budget)
}

/// [`run_guarded`] with the prepared statement kept in `slot` (SQL text and statement)
/// afterwards, so the next call with the same text skips the statement-cache lookup. A
/// statement in `slot` for another text goes back to the connection's cache first. The
/// statement is prepared (or re-prepared by SQLite after a schema change) under `mode`,
/// exactly as a `prepare_cached` per call would be.
#[allow(clippy::too_many_arguments)]
fn run_guarded_held<'c>(
    conn: &'c Connection,
    auth: &Authorizer,
    meter: &Meter,
    mode: Mode,
    sql: &str,
    slot: &mut Option<(String, CachedStatement<'c>)>,
    params: &[Value],
    budget: Budget,
) -> Result<StepOutcome, SqlError> {
    let schema = match &mode {
        Mode::Write { schema, .. } => Some(Arc::clone(schema)),
        _ => None,
    };
    auth.set_mode(mode);
    // A failed prepare must not be taken for the last statement's cost stop (see `fail`).
    meter.clear_exceeded();
    let result = (|| {
        let stmt = match slot {
            Some((held, stmt)) if held.as_str() == sql => stmt,
            _ => {
                *slot = None;
                let stmt = conn
                    .prepare_cached(sql)
                    .map_err(|e| fail(auth, meter, budget, e, 0))?;
                &mut slot.insert((sql.to_owned(), stmt)).1
            }
        };
        // The second layer (verify.rs) on what SQLite compiled, whatever the guard did.
        let (compiled, ddl) = auth.take_compiled();
        let created = auth.take_created();
        if compiled {
            if let Err(e) = check_compiled(conn, auth, sql) {
                // Out of the statement cache too: a cached statement is not compiled (so
                // not checked) again.
                if let Some((_, stmt)) = slot.take() {
                    stmt.discard();
                }
                return Err(e);
            }
        }
        let outcome = run_inner(conn, auth, meter, stmt, params, budget);
        if ddl {
            // DDL is compiled afresh on every run, so its objects are always checked.
            if let Some((_, stmt)) = slot.take() {
                stmt.discard();
            }
        }
        let outcome = outcome?;
        if !created.is_empty() {
            // The engine's own reads of the schema.
            auth.set_mode(Mode::Internal);
            let schema = schema.as_deref().unwrap_or_default();
            verify::check_created(conn, schema, &created)?;
        }
        Ok(outcome)
    })();
    auth.set_mode(Mode::Internal);
    meter.disarm();
    result
}

/// Check the program SQLite compiled for `sql` (verify.rs), under the authorizer mode
/// already set. Runs once per compile, not per execution.
fn check_compiled(conn: &Connection, auth: &Authorizer, sql: &str) -> Result<(), SqlError> {
    let listing = program::explain(conn, sql);
    // EXPLAIN compiles the statement again; what the authorizer noted then is a repeat.
    auth.take_compiled();
    auth.take_created();
    if let Some(d) = auth.take_denial() {
        return Err(d);
    }
    verify::check_program(&listing?, &mut |root| hidden_rowid_table(conn, auth, root))
}

/// The table at b-tree `root` if it is a rowid table without an INTEGER PRIMARY KEY, read
/// as the engine (the authorizer's mode is kept: these statements are the engine's own).
fn hidden_rowid_table(
    conn: &Connection,
    auth: &Authorizer,
    root: i64,
) -> Result<Option<String>, SqlError> {
    let saved = auth.mode();
    auth.set_mode(Mode::Internal);
    let found = (|| {
        let table: Option<String> = conn
            .prepare_cached(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND rootpage = ?1",
            )?
            .query_row([root], |r| r.get(0))
            .ok();
        let Some(table) = table else {
            return Ok(None);
        };
        let without_rowid: bool = conn
            .prepare_cached("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1")?
            .query_row([&table], |r| r.get(0))?;
        let key: Vec<String> = conn
            .prepare_cached("SELECT type FROM pragma_table_info(?1) WHERE pk > 0")?
            .query_map([&table], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let alias = key.len() == 1 && key[0].eq_ignore_ascii_case("INTEGER");
        Ok((!without_rowid && !alias).then_some(table))
    })();
    auth.set_mode(saved);
    found
}

/// The error of a failed prepare or step: the authorizer's refusal if there was one, the
/// cost limit if the meter stopped the statement, else SQLite's error.
fn fail(
    auth: &Authorizer,
    meter: &Meter,
    budget: Budget,
    e: rusqlite::Error,
    counted: u64,
) -> SqlError {
    if let Some(d) = auth.take_denial() {
        return d;
    }
    if meter.exceeded() || e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
        return SqlError::CostLimitExceeded {
            limit: budget.limit,
            used: budget.used.saturating_add(counted),
        };
    }
    SqlError::Sqlite(e)
}

fn run_inner(
    conn: &Connection,
    auth: &Authorizer,
    meter: &Meter,
    stmt: &mut Statement<'_>,
    params: &[Value],
    budget: Budget,
) -> Result<StepOutcome, SqlError> {
    let Budget {
        used,
        limit,
        result_bytes: result_limit,
    } = budget;
    let fail = |e: rusqlite::Error, counted: u64| fail(auth, meter, budget, e, counted);
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(SqlError::Refused {
            construct: format!("{} parameters", params.len()),
            reason: format!("the statement takes {expected}"),
        });
    }
    for (i, p) in params.iter().enumerate() {
        let v: rusqlite::types::ValueRef<'_> = match p {
            Value::Null => ValueRef::Null,
            Value::Integer(x) => ValueRef::Integer(*x),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        };
        stmt.raw_bind_parameter(i + 1, rusqlite::types::ToSqlOutput::Borrowed(v))
            .map_err(|e| fail(e, 0))?;
    }
    stmt.reset_status(StatementStatus::VmStep);
    // sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so after a DDL statement it would
    // report an earlier statement's rows; the total-changes counter tells whether this one changed any.
    let total_before = conn.total_changes();
    let ncols = stmt.column_count();
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    meter.arm(limit.saturating_sub(used));
    let mut out_rows = Vec::new();
    let mut result_bytes = 0u64;
    {
        let mut rows = stmt.raw_query();
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    let mut vals = Vec::with_capacity(ncols);
                    let steps = row.as_ref().get_status(StatementStatus::VmStep);
                    let steps = used.saturating_add(u64::try_from(steps).unwrap_or(0));
                    result_bytes = result_bytes.saturating_add(ROW_CHARGE);
                    for (i, name) in names.iter().enumerate() {
                        let v = row.get_ref(i).map_err(SqlError::Sqlite)?;
                        // Each value counts as soon as it is read, so a read of large
                        // values stops at the limit instead of after gathering them all,
                        // holding at most one value past it (docs/sql.md, "Cost").
                        meter.add_result_bytes(value_bytes(match v {
                            ValueRef::Text(b) | ValueRef::Blob(b) => b.len(),
                            _ => 0,
                        }));
                        let spent = steps.saturating_add(meter.byte_charge());
                        if spent > limit {
                            meter.disarm();
                            return Err(SqlError::CostLimitExceeded { limit, used: spent });
                        }
                        let v = value_of(v, name)?;
                        result_bytes = result_bytes.saturating_add(value_charge(&v));
                        vals.push(v);
                    }
                    // Stop collecting as soon as the rows pass their limit, so memory stays
                    // bounded by it whatever the statement returns.
                    if result_bytes > result_limit {
                        meter.disarm();
                        return Err(SqlError::DataLimitExceeded {
                            what: "returns",
                            limit: result_limit,
                        });
                    }
                    out_rows.push(vals);
                }
                Ok(None) => break,
                Err(e) => {
                    let counted = meter.disarm();
                    return Err(fail(e, counted));
                }
            }
        }
    }
    let bytes = meter.byte_charge();
    meter.disarm();
    let steps = u64::try_from(stmt.get_status(StatementStatus::VmStep)).unwrap_or(0);
    let cost = steps.max(1).saturating_add(bytes);
    if used.saturating_add(cost) > limit {
        return Err(SqlError::CostLimitExceeded {
            limit,
            used: used.saturating_add(cost),
        });
    }
    let changes = if stmt.readonly() || conn.total_changes() == total_before {
        0
    } else {
        conn.changes()
    };
    Ok(StepOutcome {
        cost,
        result_bytes,
        changes,
        rows: (ncols > 0).then_some(QueryResult {
            columns: names,
            rows: out_rows,
            cost,
        }),
    })
}

/// The number of columns (generated ones included) of the table a proven single-row
/// insert writes: the one its `OpenWrite` instructions open by root page. None if there
/// is not exactly one such table.
fn written_columns(conn: &Connection, program: &[program::Op]) -> Option<u64> {
    let mut columns = None;
    for op in program.iter().filter(|op| op.opcode == "OpenWrite") {
        let n: Option<i64> = conn
            .prepare_cached(
                "SELECT count(*) FROM sqlite_schema s, pragma_table_xinfo(s.name) x \
                 WHERE s.type = 'table' AND s.rootpage = ?1 GROUP BY s.name",
            )
            .and_then(|mut st| st.query_row([op.p2], |r| r.get(0)).optional())
            .ok()?;
        match (n, columns) {
            // An index of the table.
            (None, _) => {}
            (Some(n), None) => columns = u64::try_from(n).ok(),
            (Some(_), Some(_)) => return None,
        }
    }
    columns
}

/// Drop every prepared statement of `conn` and have SQLite load the schema now, after
/// the schema changed or SQLite dropped it (see `Block::forget_statements`).
fn refresh_statements(conn: &Connection) -> Result<(), SqlError> {
    conn.flush_prepared_statement_cache();
    conn.prepare("SELECT 1 FROM sqlite_schema LIMIT 0")?
        .exists([])?;
    Ok(())
}

fn internal(conn: &Connection, sql: &str) -> Result<(), SqlError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Run the engine's own parameterless statement `sql`, prepared once into `slot`.
fn internal_held<'c>(
    conn: &'c Connection,
    slot: &mut Option<CachedStatement<'c>>,
    sql: &str,
) -> Result<(), SqlError> {
    let stmt = match slot {
        Some(stmt) => stmt,
        None => slot.insert(conn.prepare_cached(sql)?),
    };
    stmt.raw_execute()?;
    Ok(())
}

fn schema_exists(conn: &Connection, schema: &str) -> Result<bool, SqlError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM _dstorage_schemas WHERE name = ?1")?;
    Ok(stmt.exists([schema])?)
}

fn require_schema(conn: &Connection, schema: &str) -> Result<(), SqlError> {
    validate_schema_name(schema)?;
    if schema_exists(conn, schema)? {
        Ok(())
    } else {
        Err(SqlError::UnknownSchema(schema.to_owned()))
    }
}

/// Physical names of every object of `schema` of the given SQLite type, sorted.
fn schema_objects(conn: &Connection, schema: &str, kind: &str) -> Result<Vec<String>, SqlError> {
    let lo = format!("{schema}.");
    let hi = format!("{schema}/");
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM sqlite_schema WHERE type = ?1 AND name > ?2 AND name < ?3 ORDER BY name",
    )?;
    let names = stmt
        .query_map(rusqlite::params![kind, lo, hi], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Drop every view and table of `schema` (rows must already be deleted to be recorded).
pub(crate) fn drop_schema_objects(conn: &Connection, schema: &str) -> Result<(), SqlError> {
    for v in schema_objects(conn, schema, "view")? {
        conn.execute_batch(&format!("DROP VIEW {}", quote(&v)))?;
    }
    // The tables are empty by now (their rows were deleted and recorded first), so the
    // implicit DELETE of DROP TABLE finds no foreign-key work in any order.
    for t in schema_objects(conn, schema, "table")? {
        conn.execute_batch(&format!("DROP TABLE {}", quote(&t)))?;
    }
    Ok(())
}

impl<'e> Block<'e> {
    /// Refuse to go on once the block's transaction is gone (see `SqlError::BlockAborted`):
    /// SQLite would otherwise run later statements outside any transaction.
    fn alive(&self) -> Result<(), SqlError> {
        if self.finished || self.conn.is_autocommit() {
            Err(SqlError::BlockAborted)
        } else {
            Ok(())
        }
    }

    /// Start a transaction's data limits (docs/sql.md, "Data limits"): its row changes may
    /// count `max_tx_write_bytes`, its returned rows `max_result_bytes`, and both together
    /// no more than the block has left of `max_block_write_bytes`. Everything counted is
    /// deterministic (the same changes and rows in the same order on every node), so a
    /// transaction that passes a limit fails alike everywhere, alone, and the block goes on.
    fn begin_tx(&mut self) {
        let charged = self.tracker.charged();
        let used = charged.saturating_add(self.results_in_block);
        let block_left = self.config.max_block_write_bytes.saturating_sub(used);
        let write = self.config.max_tx_write_bytes.min(block_left);
        self.tracker.arm(charged.saturating_add(write));
        self.allowance = Allowance {
            block_left,
            charged_at_start: charged,
            write,
            results: 0,
        };
    }

    /// What the running transaction's next statement may return: what is left of
    /// `max_result_bytes`, and of the block's bytes after the transaction's own writes.
    fn result_allowance(&self) -> u64 {
        let a = &self.allowance;
        let written = self.tracker.charged().saturating_sub(a.charged_at_start);
        let tx_left = self.config.max_result_bytes.saturating_sub(a.results);
        let block_left = a
            .block_left
            .saturating_sub(written)
            .saturating_sub(a.results);
        tx_left.min(block_left)
    }

    /// Whether the block's bytes, not the transaction's own limit, bound `limit`.
    fn block_binds(&self, tx_limit: u64) -> bool {
        self.allowance.block_left < tx_limit
    }

    /// Put the user length limit back if the change log lowered it to stop a statement that
    /// passed its write limit (see `Tracker::record`).
    fn settle_limit(&self) -> Result<(), SqlError> {
        if self.tracker.over() {
            // The log also gave the meter a budget of nothing; stop it, or the engine's own
            // statements after an unmetered write (a schema's deletes) would be counted.
            self.meter.disarm();
            set_value_limit(self.conn, self.config.max_value_length)?;
        }
        Ok(())
    }

    /// The error of a transaction whose row changes passed its write limit, if they did.
    fn write_limit_error(&self) -> Option<SqlError> {
        if !self.tracker.over() {
            return None;
        }
        let limit = self.config.max_tx_write_bytes;
        Some(if self.block_binds(limit) {
            SqlError::BlockFull {
                what: "writes",
                left: self.allowance.block_left,
                limit: self.config.max_block_write_bytes,
            }
        } else {
            SqlError::DataLimitExceeded {
                what: "writes",
                limit,
            }
        })
    }

    /// A statement's result-limit error as the transaction reports it: `BlockFull` when the
    /// block's bytes were the lesser limit.
    fn result_limit_error(&self, e: SqlError) -> SqlError {
        match e {
            SqlError::DataLimitExceeded {
                what: "returns", ..
            } => {
                let limit = self.config.max_result_bytes;
                let written = self
                    .tracker
                    .charged()
                    .saturating_sub(self.allowance.charged_at_start);
                if self.allowance.block_left.saturating_sub(written) < limit {
                    SqlError::BlockFull {
                        what: "returns",
                        left: self.allowance.block_left,
                        limit: self.config.max_block_write_bytes,
                    }
                } else {
                    SqlError::DataLimitExceeded {
                        what: "returns",
                        limit,
                    }
                }
            }
            other => other,
        }
    }

    /// Close the current section before a DROP record: its DDL and netted rows go to
    /// `closed`, and the next section starts empty. The tables must still exist.
    fn close_section(&mut self) -> Result<(), SqlError> {
        for r in self.pending_ddl.drain(..) {
            encode_record(&mut self.closed, &r);
            self.closed_count += 1;
            self.closed_schema += 1;
        }
        self.closed_count += self.tracker.encode_rows(self.conn, &mut self.closed)?;
        self.tracker.clear_events();
        Ok(())
    }

    /// Forget every prepared statement after the schema changed, or SQLite dropped it (a
    /// rollback in a block that changed the schema), and load the schema again: all
    /// unmetered.
    ///
    /// A statement prepared before a schema change is expired: SQLite prepares it again
    /// inside its next `sqlite3_step`, after first running two of its old instructions when
    /// the change is only seen by the schema cookie check. Those two steps count in the
    /// statement's cost, and the re-preparation, with any schema read it needs, calls the
    /// progress handler. Whether a statement is stale depends on this connection's history
    /// (a node restarted after the change prepares afresh), so it could make costs and
    /// cost-limit failures differ between nodes. Dropping the statements makes every user
    /// statement prepared before it is metered.
    fn forget_statements(&mut self) -> Result<(), SqlError> {
        // Held statements go back to the connection's cache first, to be dropped with it.
        self.held = None;
        self.savepoint = None;
        self.release = None;
        refresh_statements(self.conn)
    }

    /// Open the per-transaction savepoint.
    fn savepoint(&mut self) -> Result<(), SqlError> {
        internal_held(self.conn, &mut self.savepoint, "SAVEPOINT dstorage_tx")
    }

    /// Release the per-transaction savepoint.
    fn release(&mut self) -> Result<(), SqlError> {
        internal_held(self.conn, &mut self.release, "RELEASE dstorage_tx")
    }

    fn limit(&self, cost_limit: u64) -> u64 {
        cost_limit.min(self.config.cost_limit_per_tx)
    }

    /// Create a schema (a namespace of tables).
    pub fn create_schema(&mut self, schema: &str) -> Result<(), SqlError> {
        self.alive()?;
        validate_schema_name(schema)?;
        self.cache.borrow_mut().clear();
        if schema_exists(self.conn, schema)? {
            return Err(SqlError::SchemaExists(schema.to_owned()));
        }
        self.conn
            .execute("INSERT INTO _dstorage_schemas(name) VALUES (?1)", [schema])?;
        self.pending_ddl.push(ChangesetRecord::CreateSchema {
            name: schema.to_owned(),
        });
        Ok(())
    }

    /// Drop a schema and all its tables; their rows show as deletes in the changeset.
    pub fn drop_schema(&mut self, schema: &str) -> Result<(), SqlError> {
        self.alive()?;
        require_schema(self.conn, schema)?;
        self.cache.borrow_mut().clear();
        self.schema_changed = true;
        self.begin_tx();
        let snapshot = self.snapshot(true);
        self.savepoint()?;
        let result = (|| {
            let tables = schema_objects(self.conn, schema, "table")?;
            // Delete rows so the change log records them. Parents may go before children:
            // foreign keys are deferred for the deletes, and none is left violated since
            // every table of the schema is emptied (cross-schema keys are refused).
            self.conn.execute_batch("PRAGMA defer_foreign_keys = ON")?;
            let deleted = (|| {
                for t in &tables {
                    self.conn
                        .execute_batch(&format!("DELETE FROM {}", quote(t)))?;
                }
                Ok::<(), SqlError>(())
            })();
            self.settle_limit()?;
            self.conn.execute_batch("PRAGMA defer_foreign_keys = OFF")?;
            if let Some(e) = self.write_limit_error() {
                return Err(e);
            }
            deleted?;
            self.close_section()?;
            drop_schema_objects(self.conn, schema)?;
            self.conn
                .execute("DELETE FROM _dstorage_schemas WHERE name = ?1", [schema])?;
            self.close_with(&ChangesetRecord::DropSchema {
                name: schema.to_owned(),
            });
            Ok::<(), SqlError>(())
        })();
        let result = self.finish_tx(result, snapshot);
        let refreshed = self.forget_statements();
        let () = result?;
        refreshed
    }

    /// Remember what a failed transaction must restore. A transaction that may drop a table
    /// closes sections, which consumes the log, so it keeps a copy of the log.
    fn snapshot(&mut self, sectioned: bool) -> Snapshot {
        if sectioned {
            Snapshot::Sectioned {
                closed: self.closed.len(),
                closed_count: self.closed_count,
                closed_schema: self.closed_schema,
                pending_ddl: self.pending_ddl.clone(),
                log: Box::new(self.tracker.snapshot()),
            }
        } else {
            Snapshot::Plain {
                pending_ddl: self.pending_ddl.len(),
                log: self.tracker.mark(),
            }
        }
    }

    /// Append a record that ends a section (a DROP) to `closed`.
    fn close_with(&mut self, record: &ChangesetRecord) {
        encode_record(&mut self.closed, record);
        self.closed_count += 1;
        self.closed_schema += 1;
    }

    fn finish_tx<T>(
        &mut self,
        result: Result<T, SqlError>,
        snapshot: Snapshot,
    ) -> Result<T, SqlError> {
        // A change the log did not record must not be committed, whatever the statements
        // reported (the limit is restored before anything else runs).
        let settled = self.settle_limit();
        let result = match (result, self.write_limit_error()) {
            (Err(e), _) if self.conn.is_autocommit() => Err(e),
            (_, Some(over)) => Err(over),
            (r, None) => r,
        };
        settled?;
        match result {
            Ok(v) => {
                self.release()?;
                self.results_in_block =
                    self.results_in_block.saturating_add(self.allowance.results);
                Ok(v)
            }
            Err(e) => {
                if self.conn.is_autocommit() {
                    // SQLite already rolled back the whole block transaction (it does so when a
                    // writing statement is interrupted, or fails with an I/O or memory error;
                    // the cost meter stops statements with an ordinary error instead): there is
                    // no savepoint left. Report the original error; the caller must discard the
                    // block.
                    return Err(e);
                }
                internal(self.conn, "ROLLBACK TO dstorage_tx")?;
                self.release()?;
                if self.schema_changed {
                    // SQLite dropped its schema and expired every statement.
                    self.forget_statements()?;
                }
                match snapshot {
                    Snapshot::Plain { pending_ddl, log } => {
                        self.pending_ddl.truncate(pending_ddl);
                        self.tracker.rollback_to(log);
                    }
                    Snapshot::Sectioned {
                        closed,
                        closed_count,
                        closed_schema,
                        pending_ddl,
                        log,
                    } => {
                        // The state is again the one at the snapshot; sections closed
                        // inside the failed transaction described changes rolled back.
                        self.closed.truncate(closed);
                        self.closed_count = closed_count;
                        self.closed_schema = closed_schema;
                        self.pending_ddl = pending_ddl;
                        self.tracker.restore(*log);
                    }
                }
                Err(e)
            }
        }
    }

    /// Run all statements of `sql` atomically inside `schema`, metered against `cost_limit`
    /// (capped to the configured per-transaction limit). On any error nothing remains.
    pub fn execute(
        &mut self,
        schema: &str,
        sql: &str,
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.execute_with_params(schema, sql, &[], cost_limit)
    }

    /// Like [`Block::execute`], binding `params` to the `?` placeholders of the statement
    /// (only for SQL holding exactly one statement when params are given).
    pub fn execute_with_params(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.alive()?;
        self.config.check_sql_length(sql)?;
        let limit = self.limit(cost_limit);
        self.begin_tx();
        // A cache hit implies the schema exists: dropping a schema clears the cache.
        let cached = self.cache.borrow().get(schema, sql).cloned();
        if let Some(cached) = cached {
            let rewritten = &cached.rewritten;
            if let Some(bound) = self.savepoint_free_bound(&cached, params, limit) {
                return self.run_savepoint_free(schema, rewritten, params, limit, bound);
            }
            let snapshot = self.snapshot(false);
            self.savepoint()?;
            let mut out = ExecOutcome::default();
            let result = self
                .run_rewritten(schema, rewritten, params, limit, &mut out)
                .map(|()| out);
            return self.finish_tx(result, snapshot);
        }
        require_schema(self.conn, schema)?;
        with_sql_stack(|| self.execute_parsed(schema, sql, params, limit))
    }

    fn execute_parsed(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        let parsed = guard::parse(sql)?;
        let count = parsed.statements.len();
        let cacheable = count == 1;
        if !params.is_empty() && count != 1 {
            return Err(SqlError::Refused {
                construct: "parameters with several statements".into(),
                reason: "bind parameters to one statement at a time".into(),
            });
        }
        let sectioned = (0..count).any(|i| guard::is_drop_table(&parsed, i));
        let snapshot = self.snapshot(sectioned);
        self.savepoint()?;
        let result = self.execute_inner(schema, sql, cacheable, &parsed, params, limit);
        self.finish_tx(result, snapshot)
    }

    /// The cost bound of `cached` with `params` if it may run without a savepoint under
    /// `limit`.
    ///
    /// It may when it is a plain single-row insert (`guard::Rewritten::single_row_insert`)
    /// whose compiled program is proven loop-free, ABORT-only and check-before-write
    /// (`program::step_bound`), and its cost bound (the VM steps plus the charge for the
    /// bytes of the row, `program::InsertProof::cost_bound`) fits the limit: then SQLite
    /// undoes it by itself if it fails, and nothing after it can fail (see docs/sql.md,
    /// "Atomicity"). Candidates are only seen on a cache hit, so a statement run once does
    /// not pay for the `EXPLAIN`; the proof is kept with the cached rewrite, which every
    /// schema change clears.
    fn savepoint_free_bound(&self, cached: &Cached, params: &[Value], limit: u64) -> Option<u64> {
        let rewritten = &cached.rewritten;
        if !self.savepoint_free || !rewritten.single_row_insert {
            return None;
        }
        // The row must fit the transaction's write allowance whatever it holds, since a
        // change past it could not be undone without the savepoint: one row's record is
        // at most `max_value_length` bytes, and its charge adds at most 16 bytes a column
        // and the table name.
        let one_row = u64::from(self.config.max_value_length) + 16 * COLUMN_LIMIT as u64 + 1_024;
        if self.allowance.write < one_row {
            return None;
        }
        let proof = (*cached.proof.get_or_init(|| {
            self.auth.set_mode(Mode::Write {
                schema: Arc::clone(&rewritten.schema),
                ctes: rewritten.ctes.clone(),
            });
            let listing = program::explain(self.conn, &rewritten.exec_sql);
            let denied = self.auth.take_denial().is_some();
            self.auth.set_mode(Mode::Internal);
            // A statement that does not compile now fails the proof; the savepoint path
            // then reports the error.
            let proof = match listing {
                Ok(ops) if !denied => {
                    written_columns(self.conn, &ops).and_then(|c| program::prove(&ops, c))
                }
                _ => None,
            };
            let _ = rewritten.step_bound.set(proof.map(|p| p.steps));
            proof
        }))?;
        let bound = proof.cost_bound(params);
        (bound <= limit).then_some(bound)
    }

    /// Run a proven single-row insert without a savepoint. If it fails, SQLite has already
    /// undone it; the error is returned as is. A cost-limit error or a cost above the
    /// bound would mean the proof was wrong while the row may be in: a broken invariant,
    /// reported as `BlockAborted` so the node stops instead of committing it. So is a
    /// corrupt database: SQLite does not undo a statement for that error without a
    /// statement journal, so one index entry could stay written (the savepoint path would
    /// roll it back, but a corrupt file is no state to go on from either way).
    fn run_savepoint_free(
        &mut self,
        schema: &str,
        rewritten: &guard::Rewritten,
        params: &[Value],
        limit: u64,
        bound: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.savepoint_free_runs
            .set(self.savepoint_free_runs.get().saturating_add(1));
        let mut out = ExecOutcome::default();
        let mark = self.tracker.mark();
        let result = self.run_rewritten(schema, rewritten, params, limit, &mut out);
        if result.is_err() {
            // SQLite undid the statement. The proof says no change reached the pre-update
            // hook before the failure; cutting the log back anyway costs nothing.
            self.tracker.rollback_to(mark);
        }
        match result {
            Err(e @ (SqlError::DataLimitExceeded { .. } | SqlError::BlockFull { .. })) => {
                tracing::error!(sql = %rewritten.exec_sql, error = %e, "a savepoint-free insert passed its data limit");
                Err(SqlError::BlockAborted)
            }
            Ok(()) if out.cost <= bound => Ok(out),
            Err(SqlError::Sqlite(e))
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) =>
            {
                tracing::error!(sql = %rewritten.exec_sql, error = %e, "corrupt database");
                Err(SqlError::BlockAborted)
            }
            Err(e) if !matches!(e, SqlError::CostLimitExceeded { .. }) => Err(e),
            outcome => {
                tracing::error!(
                    sql = %rewritten.exec_sql,
                    bound,
                    cost = out.cost,
                    ?outcome,
                    "a savepoint-free insert broke its proven cost bound"
                );
                Err(SqlError::BlockAborted)
            }
        }
    }

    fn execute_inner(
        &mut self,
        schema: &str,
        sql: &str,
        cacheable: bool,
        parsed: &guard::Parsed,
        params: &[Value],
        limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        let base_mode = Mode::Write {
            schema: schema.into(),
            ctes: Default::default(),
        };
        let mut out = ExecOutcome::default();
        for index in 0..parsed.statements.len() {
            let mut rewritten = {
                let catalog = ConnCatalog {
                    conn: self.conn,
                    auth: self.auth,
                    mode: base_mode.clone(),
                };
                guard::rewrite(sql, parsed, index, schema, false, &catalog)?
            };
            // The schema in a comment keeps prepared statements apart per schema: a cached
            // prepared statement is not re-authorized, and the same physical text could
            // otherwise be reused by a statement running in another schema.
            rewritten.exec_sql = format!("/* {schema} */ {}", rewritten.sql);
            let rewritten = Arc::new(rewritten);
            if cacheable && matches!(rewritten.kind, Kind::Query | Kind::Dml) {
                self.cache
                    .borrow_mut()
                    .insert(schema, sql, Arc::clone(&rewritten));
            }
            self.run_rewritten(schema, &rewritten, params, limit, &mut out)?;
        }
        Ok(out)
    }

    fn run_rewritten(
        &mut self,
        schema: &str,
        rewritten: &guard::Rewritten,
        params: &[Value],
        limit: u64,
        out: &mut ExecOutcome,
    ) -> Result<(), SqlError> {
        let ddl = matches!(rewritten.kind, Kind::Ddl | Kind::DropTables { .. });
        if ddl {
            self.cache.borrow_mut().clear();
            self.schema_changed = true;
        }
        let mode = Mode::Write {
            schema: Arc::clone(&rewritten.schema),
            ctes: rewritten.ctes.clone(),
        };
        if let Kind::DropTables { tables, if_exists } = &rewritten.kind {
            for t in tables {
                let exists = self
                    .conn
                    .prepare_cached(
                        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    )?
                    .exists([t])?;
                if !exists && *if_exists {
                    continue;
                }
                if split_physical(t).map(|(s, _)| s) != Some(schema) {
                    return Err(SqlError::CrossSchemaWrite {
                        schema: schema.to_owned(),
                        target: t.clone(),
                    });
                }
                // Delete the rows first, in the change log, so the changeset shows them going;
                // metered per row like every write (verify.rs refuses a write loop without it).
                let del = format!(
                    "/* {schema} */ DELETE FROM {} WHERE {}()",
                    quote(t),
                    crate::meter::METER_FUNCTION
                );
                let step = run_guarded(
                    self.conn,
                    self.auth,
                    self.meter,
                    mode.clone(),
                    &del,
                    &[],
                    Budget {
                        used: out.cost,
                        limit,
                        result_bytes: 0,
                    },
                );
                self.settle_limit()?;
                let step = step?;
                if let Some(e) = self.write_limit_error() {
                    return Err(e);
                }
                out.cost = out.cost.saturating_add(step.cost);
                out.rows_changed = out.rows_changed.saturating_add(step.changes);
                self.close_section()?;
            }
        }
        let result_bytes = self.result_allowance();
        let step = run_guarded_held(
            self.conn,
            self.auth,
            self.meter,
            mode,
            &rewritten.exec_sql,
            &mut self.held,
            params,
            Budget {
                used: out.cost,
                limit,
                result_bytes,
            },
        );
        // The change log may have lowered the length limit (see `Tracker::arm`): restore it
        // before any other statement runs.
        let settled = self.settle_limit();
        if self.conn.is_autocommit() {
            // SQLite rolled the whole block back (an interrupt, an I/O or memory error; the
            // meter stops a write with an ordinary error, so not for a cost or data limit):
            // the caller re-executes the block without this transaction.
            return Err(self.write_limit_error().unwrap_or(SqlError::BlockAborted));
        }
        settled?;
        if let Some(e) = self.write_limit_error() {
            return Err(e);
        }
        let step = step.map_err(|e| self.result_limit_error(e));
        let refreshed = if ddl {
            self.forget_statements()
        } else {
            Ok(())
        };
        let step = step?;
        refreshed?;
        self.allowance.results = self.allowance.results.saturating_add(step.result_bytes);
        if self.conn.is_autocommit() {
            // Only a ROLLBACK can end the block's transaction; the guard refuses every way
            // to issue one, so this is a broken invariant, not bad input.
            return Err(SqlError::BlockAborted);
        }
        out.cost = out.cost.saturating_add(step.cost);
        out.rows_changed = out.rows_changed.saturating_add(step.changes);
        out.rows = step.rows;
        if let Some(rows) = &mut out.rows {
            rows.cost = out.cost;
            sort_by_appended_keys(rows, rewritten.returning_keys);
            if rewritten.names_in_results {
                names_in_schema(rows, &rewritten.schema);
            }
        }
        match rewritten.kind {
            Kind::Ddl => self.pending_ddl.push(ChangesetRecord::Ddl {
                schema: schema.to_owned(),
                sql: rewritten.sql.clone(),
            }),
            Kind::DropTables { .. } => self.close_with(&ChangesetRecord::Ddl {
                schema: schema.to_owned(),
                sql: rewritten.sql.clone(),
            }),
            Kind::Query | Kind::Dml => {}
        }
        Ok(())
    }

    /// How many calls ran without a savepoint since the engine was opened (see
    /// `Engine::savepoint_free_runs`).
    pub fn savepoint_free_runs(&self) -> u64 {
        self.savepoint_free_runs.get()
    }

    /// Estimate the cost of `sql` on the block's current (uncommitted) state.
    pub fn estimate(&self, schema: &str, sql: &str) -> Result<Estimate, SqlError> {
        with_sql_stack(|| {
            estimate::estimate(self.conn, self.auth, self.meter, schema, sql, self.config)
        })
    }

    /// Put a system KV pair: same SQLite transaction as the block, not in the changeset.
    /// Values up to [`SYSTEM_VALUE_LIMIT`] bytes are stored whatever `max_value_length` is.
    pub fn kv_put(&mut self, key: &[u8], value: &[u8]) -> Result<(), SqlError> {
        self.alive()?;
        with_system_limit(self.conn, self.config.max_value_length, || {
            self.conn
                .prepare_cached("INSERT OR REPLACE INTO _dstorage_kv(key, value) VALUES (?1, ?2)")?
                .execute(rusqlite::params![key, value])?;
            Ok(())
        })
    }

    /// The block's connection, for a system table the app keeps beside the KV (such as its
    /// grants): statements on it run in the block's SQLite transaction with the authorizer
    /// in its internal mode, bypass the guard, and enter no changeset (only a user
    /// table's changes do), so the app must fold what it changes into the app hash itself.
    pub fn system_connection(&mut self) -> Result<&Connection, SqlError> {
        self.alive()?;
        Ok(self.conn)
    }

    /// Delete a system KV pair.
    pub fn kv_delete(&mut self, key: &[u8]) -> Result<(), SqlError> {
        self.alive()?;
        self.conn
            .prepare_cached("DELETE FROM _dstorage_kv WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    /// System KV value, including this block's uncommitted writes.
    pub fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError> {
        kv_get(self.conn, self.config, key)
    }

    /// System KV pairs under `prefix`, including uncommitted writes, sorted by key.
    pub fn kv_scan(&self, prefix: &[u8]) -> Result<KvPairs, SqlError> {
        kv_scan(self.conn, self.config, prefix)
    }

    /// Schemas as the block sees them (uncommitted DDL included).
    pub fn schemas(&self) -> Result<Vec<SchemaInfo>, SqlError> {
        schemas(self.conn)
    }

    /// The canonical encoding of the changeset of everything since `begin_block`
    /// (docs/changeset.md), whose SHA-256 is the changeset hash. Written straight from the
    /// change log, without building the records [`Block::changeset`] returns.
    pub fn changeset_encoded(&mut self) -> Result<EncodedChangeset, SqlError> {
        let mut bytes = Vec::with_capacity(
            CHANGESET_MAGIC.len() + 5 + self.closed.len() + self.tracker.rows_size_hint(),
        );
        begin_encoding(&mut bytes);
        bytes.extend_from_slice(&self.closed);
        for r in &self.pending_ddl {
            encode_record(&mut bytes, r);
        }
        let rows = self.tracker.encode_rows(self.conn, &mut bytes)?;
        let count = self.closed_count as usize + self.pending_ddl.len() + rows as usize;
        let records = u32::try_from(count)
            .map_err(|_| SqlError::ChangeLog(format!("{count} records do not fit a changeset")))?;
        set_record_count(&mut bytes, records);
        Ok(EncodedChangeset {
            bytes,
            records,
            schema_records: self.closed_schema + self.pending_ddl.len() as u32,
        })
    }

    /// The canonical changeset of everything since `begin_block`, as records.
    pub fn changeset(&mut self) -> Result<Changeset, SqlError> {
        Changeset::decode(&self.changeset_encoded()?.bytes)
    }

    /// Commit the block: user writes and KV writes in one SQLite COMMIT.
    pub fn commit(mut self) -> Result<(), SqlError> {
        self.alive()?;
        self.tracker.stop();
        // Marked finished only once committed: if COMMIT fails (an I/O error), `drop` rolls
        // the transaction back instead of leaving it open on the connection.
        self.conn.execute_batch("COMMIT")?;
        self.finished = true;
        Ok(())
    }

    /// Roll the whole block back.
    pub fn discard(mut self) -> Result<(), SqlError> {
        // Rewrites cached during the block may name tables the rollback removes.
        self.cache.borrow_mut().clear();
        self.tracker.stop();
        self.finished = true;
        self.conn.execute_batch("ROLLBACK")?;
        if self.schema_changed {
            self.forget_statements()?;
        }
        Ok(())
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // A block dropped without commit (an error path, a panic) must not leave the
            // write transaction open.
            self.cache.borrow_mut().clear();
            self.tracker.stop();
            let _ = self.conn.execute_batch("ROLLBACK");
            if self.schema_changed {
                let _ = self.forget_statements();
            }
        }
    }
}

/// A read-only connection: committed state, guarded, ordered and metered like a block.
pub struct Reader {
    conn: Connection,
    auth: Authorizer,
    meter: Arc<Meter>,
    config: EngineConfig,
    /// The schema version the cached statements were prepared under (see `begin_read`).
    schema_version: Option<i64>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    fn open(path: &Path, config: EngineConfig) -> Result<Reader, SqlError> {
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&mut conn, &config)?;
        let auth = Authorizer::new();
        auth.install(&mut conn)?;
        let meter = Meter::new();
        meter.install(&mut conn)?;
        // Estimates of write statements prepare them with the injected meter call.
        meter.install_function(&conn)?;
        crate::functions::install(&conn)?;
        Ok(Reader {
            conn,
            auth,
            meter,
            config,
            schema_version: None,
        })
    }

    /// Run one read-only statement (a SELECT or an allowed PRAGMA) in `schema`. SQL holding
    /// several statements is refused, not run: only one result could be answered, and the
    /// others would be charged and thrown away.
    pub fn query(
        &mut self,
        schema: &str,
        sql: &str,
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        self.query_with_params(schema, sql, &[], cost_limit)
    }

    /// Like [`Reader::query`], binding `params` to the placeholders of a single statement.
    pub fn query_with_params(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        self.config.check_sql_length(sql)?;
        let limit = cost_limit.min(self.config.cost_limit_per_tx);
        // One read transaction: the schema version and the statement see one snapshot.
        let opened = self.begin_read()?;
        let result = self
            .forget_stale_statements()
            .and_then(|()| with_sql_stack(|| self.query_inner(schema, sql, params, limit)));
        self.end_read(opened)?;
        result
    }

    /// Open a read transaction, unless one is open already ([`Reader::in_snapshot`]): then
    /// `false`, and the reads join it. The statements are cached: preparing `BEGIN` and
    /// `COMMIT` on every read was a measurable part of a signed read.
    fn begin_read(&mut self) -> Result<bool, SqlError> {
        if !self.conn.is_autocommit() {
            return Ok(false);
        }
        self.conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(true)
    }

    /// Close the read transaction [`Reader::begin_read`] opened.
    fn end_read(&mut self, opened: bool) -> Result<(), SqlError> {
        if opened {
            self.conn.prepare_cached("COMMIT")?.execute([])?;
        }
        Ok(())
    }

    /// Run `f` with this reader in one read transaction: its system KV lookups, queries and
    /// action statements all see the same committed state (a view action's height and
    /// rows, say), and pay for one transaction instead of one each.
    pub fn in_snapshot<T>(&mut self, f: impl FnOnce(&mut Reader) -> T) -> Result<T, SqlError> {
        let opened = self.begin_read()?;
        let out = f(self);
        self.end_read(opened)?;
        Ok(out)
    }

    /// Drop the cached statements when the committed schema changed since they were
    /// prepared. An expired statement prepares itself again inside its first step, after
    /// running two old instructions that the meter counts, so a reader that had seen the
    /// change would charge two steps more for the same read than a fresh one (the writer's
    /// twin is `Block::forget_statements`). Reading the version also loads the new schema,
    /// unmetered.
    fn forget_stale_statements(&mut self) -> Result<(), SqlError> {
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA schema_version")?
            .query_row([], |r| r.get(0))?;
        if self.schema_version != Some(version) {
            self.conn.flush_prepared_statement_cache();
            self.schema_version = Some(version);
        }
        Ok(())
    }

    fn query_inner(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        limit: u64,
    ) -> Result<QueryResult, SqlError> {
        require_schema(&self.conn, schema)?;
        let parsed = guard::parse(sql)?;
        let n = parsed.statements.len();
        if n != 1 {
            return Err(SqlError::Refused {
                construct: format!("a read of {n} statements"),
                reason: "a read runs exactly one statement; send each as its own read".into(),
            });
        }
        let rewritten = {
            let catalog = ConnCatalog {
                conn: &self.conn,
                auth: &self.auth,
                mode: Mode::Read {
                    ctes: Default::default(),
                },
            };
            guard::rewrite(sql, &parsed, 0, schema, true, &catalog)?
        };
        let step = run_guarded(
            &self.conn,
            &self.auth,
            &self.meter,
            Mode::Read {
                ctes: rewritten.ctes.clone(),
            },
            &rewritten.sql,
            params,
            Budget {
                used: 0,
                limit,
                result_bytes: self.config.max_result_bytes,
            },
        )?;
        let mut result = step.rows.unwrap_or_default();
        if rewritten.names_in_results {
            names_in_schema(&mut result, &rewritten.schema);
        }
        result.cost = step.cost;
        Ok(result)
    }

    /// The schemas whose tables and views a read of `sql` in `schema` names (its own
    /// included), sorted: what an access check must allow before the read runs (a read
    /// may name `other.table`). Guards the statement as [`Reader::query`] would, without
    /// running it. Views are named, not expanded: a view's own body is its schema's
    /// business.
    pub fn schemas_named(&mut self, schema: &str, sql: &str) -> Result<Vec<String>, SqlError> {
        self.config.check_sql_length(sql)?;
        let opened = self.begin_read()?;
        let result = self.forget_stale_statements().and_then(|()| {
            with_sql_stack(|| {
                require_schema(&self.conn, schema)?;
                let parsed = guard::parse(sql)?;
                let mut named = std::collections::BTreeSet::new();
                named.insert(schema.to_owned());
                for index in 0..parsed.statements.len() {
                    let catalog = ConnCatalog {
                        conn: &self.conn,
                        auth: &self.auth,
                        mode: Mode::Read {
                            ctes: Default::default(),
                        },
                    };
                    let rewritten = guard::rewrite(sql, &parsed, index, schema, true, &catalog)?;
                    for table in &rewritten.tables {
                        if let Some((s, _)) = crate::names::split_physical(table) {
                            named.insert(s.to_owned());
                        }
                    }
                }
                Ok(named.into_iter().collect())
            })
        });
        self.end_read(opened)?;
        result
    }

    /// Estimate the cost of `sql` (reads or writes) in `schema` on committed state.
    pub fn estimate(&mut self, schema: &str, sql: &str) -> Result<Estimate, SqlError> {
        with_sql_stack(|| {
            estimate::estimate(
                &self.conn,
                &self.auth,
                &self.meter,
                schema,
                sql,
                &self.config,
            )
        })
    }

    /// Judge every statement of `sql` (a transaction's or a deploy's) as if it ran in
    /// `schema`, by its text alone: the length limit, the schema name, parsing, and every
    /// rule of the guard that needs no table (statement kinds, functions, literals, table
    /// definitions, names). Nothing is prepared or run, so a statement that names a table
    /// an earlier one creates is judged like any other. An error here fails the same SQL in
    /// every state; errors that depend on state (unknown tables, constraints) only show
    /// when it runs.
    pub fn check(&self, schema: &str, sql: &str) -> Result<(), SqlError> {
        with_sql_stack(|| check_text(&self.config, schema, sql))
    }

    /// Committed system KV value.
    pub fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError> {
        kv_get(&self.conn, &self.config, key)
    }

    /// Committed system KV pairs under `prefix`, sorted by key.
    pub fn kv_scan(&self, prefix: &[u8]) -> Result<KvPairs, SqlError> {
        kv_scan(&self.conn, &self.config, prefix)
    }

    /// Committed schemas with tables and columns.
    pub fn schemas(&self) -> Result<Vec<SchemaInfo>, SqlError> {
        schemas(&self.conn)
    }
}

/// A catalog that reads no table: the guard then judges a statement by its text alone.
/// It gives every table a one-column key, so no rule that needs a key (the write meter's
/// column of each joined table) refuses for want of one; what it answers only shapes the
/// rewritten text (ordering and meter terms), which `check_text` throws away.
struct TextOnly;

impl Catalog for TextOnly {
    fn primary_key(&self, _physical: &str) -> Option<Vec<String>> {
        Some(vec!["key".to_owned()])
    }

    fn column_count(
        &self,
        _sql: &str,
        _ctes: &std::collections::BTreeSet<String>,
    ) -> Result<usize, SqlError> {
        Ok(1)
    }
}

/// See [`Reader::check`].
pub(crate) fn check_text(config: &EngineConfig, schema: &str, sql: &str) -> Result<(), SqlError> {
    config.check_sql_length(sql)?;
    validate_schema_name(schema)?;
    let parsed = guard::parse(sql)?;
    for index in 0..parsed.statements.len() {
        guard::rewrite(sql, &parsed, index, schema, false, &TextOnly)?;
    }
    Ok(())
}

fn kv_get(
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

fn kv_scan(conn: &Connection, config: &EngineConfig, prefix: &[u8]) -> Result<KvPairs, SqlError> {
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

fn schemas(conn: &Connection) -> Result<Vec<SchemaInfo>, SqlError> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM _dstorage_schemas ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut tables = Vec::new();
        for physical in schema_objects(conn, &name, "table")? {
            let columns = conn
                .prepare_cached(
                    "SELECT name, type, pk, \"notnull\" FROM pragma_table_info(?1) ORDER BY cid",
                )?
                .query_map([&physical], |r| {
                    Ok(ColumnInfo {
                        name: r.get(0)?,
                        decl_type: r.get(1)?,
                        primary_key: r.get(2)?,
                        not_null: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let table = split_physical(&physical)
                .map(|(_, t)| t.to_owned())
                .unwrap_or(physical.clone());
            tables.push(TableInfo {
                name: table,
                columns,
            });
        }
        out.push(SchemaInfo { name, tables });
    }
    Ok(out)
}

fn dump(conn: &Connection) -> Result<TableDump, SqlError> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE '%.%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for t in tables {
        let pk: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?
            .query_map([&t], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let order = pk.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        let mut stmt = conn.prepare(&format!("SELECT * FROM {} ORDER BY {order}", quote(&t)))?;
        let n = stmt.column_count();
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = stmt.query([])?;
        let mut data = Vec::new();
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(n);
            for (i, name) in names.iter().enumerate() {
                vals.push(value_of(r.get_ref(i)?, name)?);
            }
            data.push(vals);
        }
        out.push((t, data));
    }
    Ok(out)
}

/// Physical name helper re-exported for callers that build names themselves.
pub fn table_physical_name(schema: &str, table: &str) -> String {
    physical_name(schema, table)
}

/// The execution path without the statement guard, as if its parse and rewrite had been
/// bypassed: for the second layer's tests (`verify.rs`), which must refuse on their own.
#[cfg(test)]
impl Block<'_> {
    /// Run one statement `sql`, written with physical names (`"app.t"`), in `schema`
    /// through the authorizer, the program and schema checks, the meter and the change
    /// log, atomically like [`Block::execute`].
    pub(crate) fn execute_unguarded(
        &mut self,
        schema: &str,
        sql: &str,
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.alive()?;
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let kind = match first.as_str() {
            "SELECT" | "WITH" | "PRAGMA" | "VALUES" => Kind::Query,
            "CREATE" | "DROP" => Kind::Ddl,
            _ => Kind::Dml,
        };
        let rewritten = guard::Rewritten {
            sql: sql.to_owned(),
            kind,
            ctes: Default::default(),
            exec_sql: format!("/* {schema} */ {sql}"),
            schema: schema.into(),
            single_row_insert: false,
            step_bound: Default::default(),
            returning_keys: 0,
            tables: Vec::new(),
            aliases: BTreeMap::new(),
            written: None,
            values_rows: 0,
            names_in_results: false,
        };
        let limit = self.limit(cost_limit);
        let snapshot = self.snapshot(false);
        self.savepoint()?;
        let mut out = ExecOutcome::default();
        let result = self
            .run_rewritten(schema, &rewritten, &[], limit, &mut out)
            .map(|()| out);
        self.finish_tx(result, snapshot)
    }
}

#[cfg(test)]
impl Reader {
    /// [`Block::execute_unguarded`] for a reader: one read statement without the guard.
    pub(crate) fn query_unguarded(
        &mut self,
        sql: &str,
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        self.conn.execute_batch("BEGIN")?;
        let result = self.forget_stale_statements().and_then(|()| {
            run_guarded(
                &self.conn,
                &self.auth,
                &self.meter,
                Mode::Read {
                    ctes: Default::default(),
                },
                sql,
                &[],
                Budget {
                    used: 0,
                    limit: cost_limit,
                    result_bytes: self.config.max_result_bytes,
                },
            )
        });
        self.conn.execute_batch("COMMIT")?;
        Ok(result?.rows.unwrap_or_default())
    }
}

/// Several statements, each with its own parameters, run as one unit: what an action is
/// (`docs/schemas.md`).
impl Block<'_> {
    /// The configuration the engine was opened with.
    pub fn config(&self) -> &EngineConfig {
        self.config
    }

    /// Run `statements` in order inside `schema`, each binding its own `params`, in one
    /// savepoint and under one cost limit: any failure leaves nothing of any of them. The
    /// returned rows are those of the last statement that returned rows.
    pub fn execute_statements(
        &mut self,
        schema: &str,
        statements: &[(&str, &[Value])],
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.alive()?;
        for (sql, _) in statements {
            self.config.check_sql_length(sql)?;
        }
        let limit = self.limit(cost_limit);
        self.begin_tx();
        require_schema(self.conn, schema)?;
        let snapshot = self.snapshot(false);
        self.savepoint()?;
        let mut out = ExecOutcome::default();
        let result = with_sql_stack(|| {
            for (sql, params) in statements {
                let rows = out.rows.take();
                self.run_one_cached(schema, sql, params, limit, &mut out)?;
                if out.rows.is_none() {
                    out.rows = rows;
                }
            }
            Ok(())
        })
        .map(|()| out);
        self.finish_tx(result, snapshot)
    }

    /// Run `sql` (a deploy's table SQL; blank: nothing) like [`Block::execute`], then compile
    /// each of `checks` (an action's name and one of its statements) against the result with
    /// [`Block::prepare_check`], all in one savepoint: if a check fails, the tables are undone
    /// too, and the error names the action.
    pub fn execute_checked(
        &mut self,
        schema: &str,
        sql: &str,
        checks: &[(&str, &str)],
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.alive()?;
        self.config.check_sql_length(sql)?;
        let limit = self.limit(cost_limit);
        self.begin_tx();
        require_schema(self.conn, schema)?;
        with_sql_stack(|| {
            let parsed = if sql.trim().is_empty() {
                None
            } else {
                Some(guard::parse(sql)?)
            };
            let sectioned = parsed
                .as_ref()
                .is_some_and(|p| (0..p.statements.len()).any(|i| guard::is_drop_table(p, i)));
            let snapshot = self.snapshot(sectioned);
            self.savepoint()?;
            let result = match &parsed {
                Some(p) => self.execute_inner(schema, sql, p.statements.len() == 1, p, &[], limit),
                None => Ok(ExecOutcome::default()),
            }
            .and_then(|out| {
                for (action, check) in checks {
                    self.prepare_check(schema, check)
                        .map_err(|e| in_action(e, action))?;
                }
                Ok(out)
            });
            self.finish_tx(result, snapshot)
        })
    }

    /// Compile `sql` in `schema` as a statement of the block would run, without running it:
    /// the guard's rewrite on the current tables, then SQLite's prepare under the
    /// authorizer. A deploy uses it so an action naming a table or column its schema lacks
    /// is refused at deploy, not at its first call. Nothing is executed or metered.
    pub fn prepare_check(&mut self, schema: &str, sql: &str) -> Result<(), SqlError> {
        self.alive()?;
        let parsed = guard::parse(sql)?;
        let mode = Mode::Write {
            schema: schema.into(),
            ctes: Default::default(),
        };
        for index in 0..parsed.statements.len() {
            let rewritten = {
                let catalog = ConnCatalog {
                    conn: self.conn,
                    auth: self.auth,
                    mode: mode.clone(),
                };
                guard::rewrite(sql, &parsed, index, schema, false, &catalog)?
            };
            self.auth.set_mode(Mode::Write {
                schema: Arc::clone(&rewritten.schema),
                ctes: rewritten.ctes.clone(),
            });
            let prepared = self
                .conn
                .prepare(&format!("/* {schema} */ {}", rewritten.sql))
                .map(drop);
            let denial = self.auth.take_denial();
            self.auth.take_compiled();
            self.auth.take_created();
            self.auth.set_mode(Mode::Internal);
            if let Some(d) = denial {
                return Err(d);
            }
            prepared?;
        }
        Ok(())
    }

    /// Run one statement (through the rewrite cache) inside the open savepoint.
    fn run_one_cached(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        limit: u64,
        out: &mut ExecOutcome,
    ) -> Result<(), SqlError> {
        let cached = self.cache.borrow().get(schema, sql).cloned();
        let rewritten = match cached {
            Some(c) => Arc::clone(&c.rewritten),
            None => {
                let parsed = guard::parse(sql)?;
                if parsed.statements.len() != 1 {
                    return Err(SqlError::Refused {
                        construct: format!("{} statements in one", parsed.statements.len()),
                        reason: "each statement of an action runs on its own".into(),
                    });
                }
                let mut rewritten = {
                    let catalog = ConnCatalog {
                        conn: self.conn,
                        auth: self.auth,
                        mode: Mode::Write {
                            schema: schema.into(),
                            ctes: Default::default(),
                        },
                    };
                    guard::rewrite(sql, &parsed, 0, schema, false, &catalog)?
                };
                rewritten.exec_sql = format!("/* {schema} */ {}", rewritten.sql);
                let rewritten = Arc::new(rewritten);
                if matches!(rewritten.kind, Kind::Query | Kind::Dml) {
                    self.cache
                        .borrow_mut()
                        .insert(schema, sql, Arc::clone(&rewritten));
                }
                rewritten
            }
        };
        self.run_rewritten(schema, &rewritten, params, limit, out)
    }
}

/// Name the action in an error about one of its statements (`no such column: x` becomes
/// `action add_note: no such column: x`), keeping its kind.
fn in_action(e: SqlError, action: &str) -> SqlError {
    match e {
        SqlError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(
                code,
                Some(format!(
                    "action {action}: {}",
                    message.unwrap_or_else(|| code.to_string())
                )),
            ))
        }
        SqlError::Refused { construct, reason } => SqlError::Refused {
            construct: format!("{construct} in action {action}"),
            reason,
        },
        other => other,
    }
}

impl Reader {
    /// The configuration the reader was opened with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Run read-only `statements` in `schema` in one read transaction (one snapshot), each
    /// with its own parameters, their costs adding up under `cost_limit`; the rows of the
    /// last statement are returned. A view action runs this way.
    pub fn query_statements(
        &mut self,
        schema: &str,
        statements: &[(&str, &[Value])],
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        for (sql, _) in statements {
            self.config.check_sql_length(sql)?;
        }
        let limit = cost_limit.min(self.config.cost_limit_per_tx);
        let opened = self.begin_read()?;
        let result = self.forget_stale_statements().and_then(|()| {
            with_sql_stack(|| {
                let mut used = 0u64;
                let mut last = QueryResult::default();
                for (sql, params) in statements {
                    let left = limit.saturating_sub(used);
                    last = self.query_inner(schema, sql, params, left)?;
                    used = used.saturating_add(last.cost);
                }
                last.cost = used;
                Ok(last)
            })
        });
        self.end_read(opened)?;
        result
    }
}
