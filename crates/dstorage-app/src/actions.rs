//! Calls of schema actions (`docs/schemas.md`): finding the action, its access rule and its argument check,
//! shared by CheckTx, block execution and view reads so all three decide alike.

use dstorage_types::action::{Action, ActionCatalog};
use dstorage_types::caller::Caller;
use dstorage_types::result::ResultCode;
use dstorage_types::value::Value;

use crate::refusal::Refusal;
use crate::AppError;

/// Decode a stored catalog. A stored value that does not decode is a broken invariant (the node wrote it).
pub fn decode_catalog(stored: Option<Vec<u8>>) -> Result<ActionCatalog, AppError> {
    match stored {
        None => Ok(ActionCatalog::default()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| AppError::Invariant(format!("stored action catalog: {e}"))),
    }
}

/// Encode a catalog for the system KV.
pub fn encode_catalog(catalog: &ActionCatalog) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(catalog)
        .map_err(|e| AppError::Invariant(format!("encoding an action catalog: {e}")))
}

/// Decide a call: the schema exists, the action exists, the rule admits `caller` (None: unsigned), and the
/// arguments fit. On success, the action and the schema's owner.
pub fn resolve(
    owner: Option<Vec<u8>>,
    catalog: &ActionCatalog,
    schema: &str,
    action: &str,
    args: &[Value],
    caller: Option<&Caller>,
) -> Result<(Action, String), Refusal> {
    let Some(owner) = owner else {
        return Err(Refusal::new(
            ResultCode::SchemaNotFound,
            format!("schema {schema} does not exist"),
        ));
    };
    let owner = String::from_utf8_lossy(&owner).into_owned();
    let Some(found) = catalog.actions.get(action) else {
        return Err(Refusal::new(
            ResultCode::ActionNotFound,
            format!("schema {schema} has no action {action}"),
        ));
    };
    if !found.access.allows(caller, &owner) {
        let who = caller.map_or("an unsigned caller", |c| c.identity.as_str());
        return Err(Refusal::new(
            ResultCode::Forbidden,
            format!(
                "{who} may not call {schema}.{action}: it is {}",
                match found.access {
                    dstorage_types::action::Access::Owner => "for the schema's owner only",
                    _ => "for signed callers only",
                }
            ),
        ));
    }
    found
        .check_arguments(args)
        .map_err(|m| Refusal::new(ResultCode::BadArguments, m))?;
    Ok((found.clone(), owner))
}

/// The result of an action's SQL error: `action_error` with just the message for `error('...')`.
pub fn action_refusal(refusal: Refusal) -> Refusal {
    match dstorage_sql::functions::action_error_message(&refusal.message) {
        Some(m) => Refusal::new(ResultCode::ActionError, m),
        None => refusal,
    }
}
