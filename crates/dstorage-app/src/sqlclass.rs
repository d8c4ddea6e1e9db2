//! Sort engine errors into the transaction's fault (a result code) and the node's fault (stop the node).

use dstorage_sql::SqlError;
use rusqlite::ErrorCode;

/// Whose fault an engine error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The SQL or its data is wrong (syntax, types, constraints, unknown tables, bad names).
    Input,
    /// The deterministic guard refused a construct.
    Refused,
    /// The metered cost went over the limit.
    CostLimit,
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
        SqlError::Refused { .. } | SqlError::RealValue { .. } => ErrorClass::Refused,
        SqlError::CostLimitExceeded { .. } => ErrorClass::CostLimit,
        SqlError::SqliteVersion { .. } | SqlError::BlockAborted | SqlError::ChangeLog(_) => {
            ErrorClass::Storage
        }
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
