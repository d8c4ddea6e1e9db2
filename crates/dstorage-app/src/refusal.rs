//! Why a transaction is refused by CheckTx or fails in a block: a typed value from the rule that decided to the
//! CheckTx answer or the transaction record, never a string to be parsed again.

use dstorage_types::result::ResultCode;

/// A refusal: the result code and a message naming the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The result code (part of consensus for a transaction in a block).
    pub code: ResultCode,
    /// What went wrong, naming the cause (for people; never parsed).
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: ResultCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
