//! Errors of the SQL engine.

/// Everything that can go wrong running SQL, reading state or handling a changeset.
///
/// Messages name the values involved so a user can fix the statement from the message alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The SQL text does not parse.
    #[error("SQL does not parse: {0}")]
    Parse(String),
    /// The SQL text holds no statement.
    #[error("SQL holds no statement")]
    Empty,
    /// A construct the deterministic guard refuses (non-deterministic, unsafe or unsupported).
    #[error("{construct} is not allowed: {reason}")]
    Refused {
        /// The construct as the user wrote it or as SQLite named it (`random()`, `PRAGMA journal_mode`).
        construct: String,
        /// Why it is refused, and what to use instead where there is something.
        reason: String,
    },
    /// A column definition the engine refuses.
    #[error("column {column} has type {found}; use {expected}")]
    ColumnType {
        /// Column name.
        column: String,
        /// The declared type (or "no type").
        found: String,
        /// What to use instead.
        expected: String,
    },
    /// A table definition the engine refuses.
    #[error("table {table}: {reason}")]
    TableDefinition {
        /// Table name as the user wrote it.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// A schema name that does not match `[a-z][a-z0-9_]{0,62}` or is reserved.
    #[error("schema name {0:?} is invalid: use [a-z][a-z0-9_]{{0,62}}, not main/temp/sqlite*")]
    InvalidSchemaName(String),
    /// A table name that is not a plain identifier.
    #[error("table name {0:?} is invalid: use [A-Za-z_][A-Za-z0-9_]{{0,62}}")]
    InvalidTableName(String),
    /// The schema does not exist.
    #[error("schema {0} does not exist")]
    UnknownSchema(String),
    /// The schema already exists.
    #[error("schema {0} already exists")]
    SchemaExists(String),
    /// A write was aimed at a schema other than the one the statement runs in.
    #[error("statement in schema {schema} may not write to {target}")]
    CrossSchemaWrite {
        /// The schema the statement runs in.
        schema: String,
        /// The table or object it tried to change.
        target: String,
    },
    /// The metered cost went over the limit; the whole transaction was rolled back.
    #[error("cost limit exceeded: limit {limit}, used {used}")]
    CostLimitExceeded {
        /// The limit in force.
        limit: u64,
        /// The steps counted when execution was stopped.
        used: u64,
    },
    /// The transaction wrote, or returned, more bytes than one transaction may (see
    /// `EngineConfig::max_tx_write_bytes` and `max_result_bytes`); it was rolled back.
    #[error("data limit exceeded: {}", data_limit_advice(what, *limit))]
    DataLimitExceeded {
        /// What went over: "writes" (row changes) or "returns" (result rows).
        what: &'static str,
        /// The limit in force, in bytes.
        limit: u64,
    },
    /// The block's byte budget (`EngineConfig::max_block_write_bytes`) is used up by the
    /// transactions before this one; it was rolled back and may be sent again.
    #[error("block full: the transaction {what} more than the {left} bytes this block has left of its {limit}; send it again for a later block")]
    BlockFull {
        /// What went over: "writes" (row changes) or "returns" (result rows).
        what: &'static str,
        /// Bytes the block had left when the transaction started.
        left: u64,
        /// The block's budget in bytes.
        limit: u64,
    },
    /// A value of storage class REAL appeared in a result.
    #[error("column {column} produced a REAL value; dstorage has no floating point, use INTEGER")]
    RealValue {
        /// Result column name.
        column: String,
    },
    /// SQLite refused or failed the statement (constraint, type error in a STRICT table, unknown table...).
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The bundled SQLite is not the pinned version.
    #[error("SQLite version {found} is not the pinned {expected}")]
    SqliteVersion {
        /// The pinned version.
        expected: &'static str,
        /// The version linked in.
        found: String,
    },
    /// The linked SQLite lacks dstorage's patch that makes every floating-point value an
    /// error (vendor/libsqlite3-sys/DSTORAGE.md): floats could reach results and state.
    #[error("the linked SQLite is not built with dstorage's no-float patch: {0}")]
    SqliteUnpatched(String),
    /// Changeset bytes that do not decode, or decode to a non-canonical form.
    #[error("changeset bytes are invalid at offset {offset}: {reason}")]
    ChangesetDecode {
        /// Byte offset where decoding stopped.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// The block's change log could not record a change or turn it into records (a REAL
    /// value, a table without a key): a broken invariant, since the guard rules both out.
    #[error("the block's change log is unusable: {0}")]
    ChangeLog(String),
    /// A changeset that cannot be applied to the given state.
    #[error("changeset does not apply: {0}")]
    ChangesetApply(String),
    /// The block's SQLite transaction ended under it: a broken invariant. The node must
    /// stop rather than continue on unknown state.
    #[error("the block's transaction was aborted; the block cannot continue")]
    BlockAborted,
}

/// The cause and the remedy of [`SqlError::DataLimitExceeded`]: a read is not a transaction, so
/// "split the transaction" is advice only for writes.
fn data_limit_advice(what: &str, limit: u64) -> String {
    if what == "returns" {
        format!(
            "the statement returns more than {limit} bytes of rows; ask for fewer rows or columns \
             (LIMIT, a narrower WHERE) or read the large values one row at a time"
        )
    } else {
        format!(
            "the transaction {what} more than {limit} bytes; split it into smaller transactions"
        )
    }
}
