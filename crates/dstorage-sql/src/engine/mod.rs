//! The engine: one write connection, blocks with a change log, readers, system KV.
//!
//! This module holds the `Engine` handle and the result types; each part has its own file: `config` (how a
//! connection is opened and limited), `kv` (the system KV), `run` (running one guarded statement), `block` (a
//! block's transaction and changeset), `reader` (reads of committed state) and `estimate` (cost estimates).
//! The catalog as SQLite holds it is `crate::catalog`. The files read this module's names (`use super::*`) and
//! it re-exports theirs, so `crate::engine::X` paths name them all.

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
use crate::catalog::*;
use crate::changeset::{
    begin_encoding, encode_record, set_record_count, Changeset, ChangesetRecord, CHANGESET_MAGIC,
};
use crate::guard::{self, Catalog, Kind};
use crate::meter::{value_bytes, Meter};
use crate::names::{split_physical, validate_schema_name};
use crate::program;
use crate::tracker::{Log, Mark, Tracker};
use crate::verify;
use crate::SqlError;

mod block;
mod config;
pub(crate) mod estimate;
mod kv;
mod reader;
mod run;

pub use self::block::*;
pub use self::config::*;
pub use self::estimate::Estimate;
pub use self::kv::*;
pub use self::reader::*;
pub(crate) use self::run::*;

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
