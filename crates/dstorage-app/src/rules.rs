//! The transaction rules that need no state of their own, as leaves every service uses: a nonce is exactly the
//! last one plus one; only a schema's owner writes to it. CheckTx (`mempool`) and execution (`consensus`) apply
//! the same functions, so they cannot disagree.

use dstorage_types::result::ResultCode;

use crate::refusal::Refusal;

/// Nonce rule: exactly one more than the last used.
pub(crate) fn check_nonce(nonce: u64, last: u64) -> Result<(), Refusal> {
    let expected = last.saturating_add(1);
    if nonce < expected {
        Err(Refusal::new(
            ResultCode::NonceReplayed,
            format!("nonce {nonce} was already used; the next nonce is {expected}"),
        ))
    } else if nonce > expected {
        Err(Refusal::new(
            ResultCode::NonceGap,
            format!("nonce {nonce} skips ahead; the next nonce is {expected}"),
        ))
    } else {
        Ok(())
    }
}

/// Only a schema's owner writes to it: the refusal, given the schema's stored owner (None: no such schema).
pub(crate) fn owner_rule(
    owner: Option<Vec<u8>>,
    schema: &str,
    identity: &str,
) -> Result<(), Refusal> {
    match owner {
        None => Err(Refusal::new(
            ResultCode::SchemaNotFound,
            format!("schema {schema} does not exist"),
        )),
        Some(owner) if owner == identity.as_bytes() => Ok(()),
        Some(owner) => Err(Refusal::new(
            ResultCode::Unauthorized,
            format!(
                "{identity} may not write to schema {schema}: it is owned by {}",
                String::from_utf8_lossy(&owner)
            ),
        )),
    }
}
