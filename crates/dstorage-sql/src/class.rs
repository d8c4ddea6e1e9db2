//! Sort engine errors into the transaction's fault (a result code) and the node's fault (stop the node). Here,
//! beside the errors, so callers (the app, the node's API) need not know SQLite's error codes.

use crate::SqlError;
use rusqlite::ErrorCode;

/// Whose fault an engine error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The SQL failed on the state it ran on (a type or constraint a row breaks, an unknown table).
    Input,
    /// The text is not accepted whatever the state: it does not parse, or the deterministic guard refuses a
    /// construct, a table definition or a name (and a REAL value reaching a result).
    Refused,
    /// The metered cost went over the limit.
    CostLimit,
    /// The transaction wrote or returned more bytes than one transaction may.
    DataLimit,
    /// The block's byte budget was used up by the transactions before this one.
    BlockFull,
    /// The node's storage failed (I/O, corruption, full disk): the node must stop.
    Storage,
}

/// Classify `e`.
///
/// Anything not known to be a storage failure counts as input: misjudging a storage failure as input makes this
/// node's app hash diverge, which CometBFT detects and halts on; misjudging input as a storage failure would let
/// one bad transaction stop every node at once.
pub fn classify(e: &SqlError) -> ErrorClass {
    match e {
        SqlError::RealValue { .. } => ErrorClass::Refused,
        e if follows_from_text(e) => ErrorClass::Refused,
        SqlError::CostLimitExceeded { .. } => ErrorClass::CostLimit,
        SqlError::DataLimitExceeded { .. } => ErrorClass::DataLimit,
        SqlError::BlockFull { .. } => ErrorClass::BlockFull,
        SqlError::SqliteVersion { .. }
        | SqlError::SqliteUnpatched(_)
        | SqlError::BlockAborted
        | SqlError::ChangeLog(_) => ErrorClass::Storage,
        SqlError::Sqlite(inner) => match inner.sqlite_error_code() {
            Some(
                ErrorCode::SystemIoFailure
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::ReadOnly
                | ErrorCode::NotADatabase
                | ErrorCode::FileLockingProtocolFailed,
            ) => ErrorClass::Storage,
            _ => ErrorClass::Input,
        },
        _ => ErrorClass::Input,
    }
}

/// Whether `e` follows from the SQL text (and schema name) alone, so the same transaction fails this way in
/// every state and every block: CheckTx refuses it instead of letting it spend a nonce and a block slot.
///
/// These are the errors the guard returns before SQLite sees the statement. SQLite's own errors are not among
/// them even when they are syntax errors: which of them a statement meets first can depend on the tables.
pub fn follows_from_text(e: &SqlError) -> bool {
    matches!(
        e,
        SqlError::Parse(_)
            | SqlError::Empty
            | SqlError::Refused { .. }
            | SqlError::ColumnType { .. }
            | SqlError::TableDefinition { .. }
            | SqlError::InvalidSchemaName(_)
            | SqlError::InvalidTableName(_)
            | SqlError::CrossSchemaWrite { .. }
    )
}
