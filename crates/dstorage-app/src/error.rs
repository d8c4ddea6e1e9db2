//! The one error type of the app: a failure that leaves the node unable to continue safely.

/// A failure that leaves the node unable to continue safely: storage errors, a broken local invariant.
///
/// Invalid input never produces this; it becomes a result code instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The SQL engine failed on something that is not the transaction's fault (I/O, corruption, commit).
    #[error("storage: {0}")]
    Storage(#[from] dstorage_sql::SqlError),
    /// A local invariant broke; the node must stop rather than continue on possibly divergent state.
    #[error("invariant broken: {0}")]
    Invariant(String),
    /// The consensus thread has stopped (after a fatal error).
    #[error("the consensus thread has stopped")]
    Stopped,
}
