//! Result codes: why a transaction was refused by the mempool or failed in a block.
//!
//! Codes are part of consensus (they enter the app hash), so their numbers never change once released.

use serde::{Deserialize, Serialize};

/// A transaction's outcome code, as CheckTx and FinalizeBlock report it to CometBFT and the API reports to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
#[non_exhaustive]
pub enum ResultCode {
    /// Accepted / executed.
    Ok = 0,
    /// The bytes are not a canonical transaction.
    Malformed = 1,
    /// The signature does not verify for the sender under the named standard.
    BadSignature = 2,
    /// The transaction names another network.
    WrongChainId = 3,
    /// The nonce was already used (replay).
    NonceReplayed = 4,
    /// The nonce skips ahead of the sender's next nonce.
    NonceGap = 5,
    /// The transaction is larger than the network allows.
    TooLarge = 6,
    /// The signature standard is not known to this network.
    UnknownStandard = 7,
    /// The estimated cost exceeds the per-transaction limit.
    CostEstimateTooHigh = 8,
    /// SQL failed while executing (syntax, types, constraints, unknown tables, ...).
    SqlError = 9,
    /// The sender may not do this (e.g. write to a schema it does not own).
    Unauthorized = 10,
    /// The schema to create already exists.
    SchemaExists = 11,
    /// The schema does not exist.
    SchemaNotFound = 12,
    /// Execution used more than the per-transaction cost limit.
    CostLimitExceeded = 13,
    /// The deterministic SQL guard refused a construct.
    SqlRefused = 14,
    /// Execution wrote or returned more bytes than one transaction may.
    DataLimitExceeded = 15,
    /// The block's byte budget was used up by the transactions before this one.
    BlockFull = 16,
    /// Another transaction of the sender holds this nonce and waits in the mempool, not committed yet.
    NoncePending = 17,
    /// The node is catching up with the network or cut off from it, so its view of nonces may be behind;
    /// the transaction was not judged (the API answers 503 with a retry hint).
    CatchingUp = 18,
    /// The caller is authenticated but the rule says no: a read of a schema that is not theirs and not public, an
    /// action whose access rule refuses them.
    Forbidden = 20,
    /// A revoke before the grant's `locked_until` (block time).
    GrantLocked = 21,
    /// A revoke of a grant that does not exist.
    GrantNotFound = 22,
    /// A grant of what the owner already granted to that grantee.
    GrantExists = 23,
    /// A grant or revoke whose fields are invalid (grantee not a canonical identity, data id empty or too long).
    BadGrant = 24,
    /// A call's arguments do not match the action's parameters (count or types).
    BadArguments = 25,
    /// The schema has no action of that name.
    ActionNotFound = 26,
    /// The action's own SQL aborted it with `error('message')`; the message is the result.
    ActionError = 27,
    /// A write action was called where only a view may run (`POST /v1/call`).
    NotAView = 28,
    /// A validator transaction whose sender is not a current validator.
    NotAValidator = 30,
    /// A validator approval names no request, or one already decided.
    RequestNotFound = 31,
    /// The validator request's expiry height has passed.
    RequestExpired = 32,
    /// The sender already voted for this validator request.
    AlreadyVoted = 33,
    /// The key already has a pending join request.
    RequestPending = 34,
    /// The key asking to join is already a validator.
    AlreadyValidator = 35,
    /// The key to remove is not a current validator.
    ValidatorNotFound = 36,
    /// The change would empty the validator set or leave the validators that stay with two thirds or less.
    ValidatorSetUnsafe = 37,
    /// A validator payload not signed under ed25519, or with a malformed contact or key.
    InvalidValidatorRequest = 38,
}

impl ResultCode {
    /// Every code, in numeric order.
    pub const ALL: [ResultCode; 37] = [
        ResultCode::Ok,
        ResultCode::Malformed,
        ResultCode::BadSignature,
        ResultCode::WrongChainId,
        ResultCode::NonceReplayed,
        ResultCode::NonceGap,
        ResultCode::TooLarge,
        ResultCode::UnknownStandard,
        ResultCode::CostEstimateTooHigh,
        ResultCode::SqlError,
        ResultCode::Unauthorized,
        ResultCode::SchemaExists,
        ResultCode::SchemaNotFound,
        ResultCode::CostLimitExceeded,
        ResultCode::SqlRefused,
        ResultCode::DataLimitExceeded,
        ResultCode::BlockFull,
        ResultCode::NoncePending,
        ResultCode::CatchingUp,
        ResultCode::Forbidden,
        ResultCode::GrantLocked,
        ResultCode::GrantNotFound,
        ResultCode::GrantExists,
        ResultCode::BadGrant,
        ResultCode::BadArguments,
        ResultCode::ActionNotFound,
        ResultCode::ActionError,
        ResultCode::NotAView,
        ResultCode::NotAValidator,
        ResultCode::RequestNotFound,
        ResultCode::RequestExpired,
        ResultCode::AlreadyVoted,
        ResultCode::RequestPending,
        ResultCode::AlreadyValidator,
        ResultCode::ValidatorNotFound,
        ResultCode::ValidatorSetUnsafe,
        ResultCode::InvalidValidatorRequest,
    ];

    /// The numeric code sent to CometBFT.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The code for a number, if it is one of ours.
    pub fn from_code(code: u32) -> Option<ResultCode> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// Snake-case name, used as the metrics label and in CLI output.
    pub fn name(self) -> &'static str {
        match self {
            ResultCode::Ok => "ok",
            ResultCode::Malformed => "malformed",
            ResultCode::BadSignature => "bad_signature",
            ResultCode::WrongChainId => "wrong_chain_id",
            ResultCode::NonceReplayed => "nonce_replayed",
            ResultCode::NonceGap => "nonce_gap",
            ResultCode::TooLarge => "too_large",
            ResultCode::UnknownStandard => "unknown_standard",
            ResultCode::CostEstimateTooHigh => "cost_estimate_too_high",
            ResultCode::SqlError => "sql_error",
            ResultCode::Unauthorized => "unauthorized",
            ResultCode::SchemaExists => "schema_exists",
            ResultCode::SchemaNotFound => "schema_not_found",
            ResultCode::CostLimitExceeded => "cost_limit_exceeded",
            ResultCode::SqlRefused => "sql_refused",
            ResultCode::DataLimitExceeded => "data_limit_exceeded",
            ResultCode::BlockFull => "block_full",
            ResultCode::NoncePending => "nonce_pending",
            ResultCode::CatchingUp => "catching_up",
            ResultCode::Forbidden => "forbidden",
            ResultCode::GrantLocked => "grant_locked",
            ResultCode::GrantNotFound => "grant_not_found",
            ResultCode::GrantExists => "grant_exists",
            ResultCode::BadGrant => "bad_grant",
            ResultCode::BadArguments => "bad_arguments",
            ResultCode::ActionNotFound => "action_not_found",
            ResultCode::ActionError => "action_error",
            ResultCode::NotAView => "not_a_view",
            ResultCode::NotAValidator => "not_a_validator",
            ResultCode::RequestNotFound => "request_not_found",
            ResultCode::RequestExpired => "request_expired",
            ResultCode::AlreadyVoted => "already_voted",
            ResultCode::RequestPending => "request_pending",
            ResultCode::AlreadyValidator => "already_validator",
            ResultCode::ValidatorNotFound => "validator_not_found",
            ResultCode::ValidatorSetUnsafe => "validator_set_unsafe",
            ResultCode::InvalidValidatorRequest => "invalid_validator_request",
        }
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_increasing_unique_and_round_trip() {
        // Numbers are reserved in ranges per area (docs/protocol.md), so the list has gaps.
        for pair in ResultCode::ALL.windows(2) {
            assert!(pair[0].code() < pair[1].code(), "{pair:?}");
        }
        for c in ResultCode::ALL {
            assert_eq!(ResultCode::from_code(c.code()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.name()));
        }
        assert_eq!(ResultCode::from_code(999), None);
    }
}
