//! The SQL functions actions use beyond SQLite's: `error('message')` and `has_grant(owner, grantee, data_id)`
//! (`docs/schemas.md`). They are installed on every connection, so an owner's ad-hoc SQL may use them too.

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// The system table of access grants (issue 11 part A creates and fills it; `has_grant` only reads it). It has
/// no dot in its name, so user SQL cannot name it: the guard resolves every table into a schema.
pub const GRANTS_TABLE: &str = "_dstorage_grants";

/// What `error('message')` puts before its message in SQLite's error, so the caller can tell the action's own
/// abort from any other failure and report just the message.
pub const ACTION_ERROR_MARK: &str = "dstorage action error: ";

/// The action's message if `message` (an engine error's text) comes from `error('...')`.
pub fn action_error_message(message: &str) -> Option<&str> {
    message
        .find(ACTION_ERROR_MARK)
        .map(|at| &message[at + ACTION_ERROR_MARK.len()..])
}

/// Install `error` and `has_grant` on `conn`.
pub(crate) fn install(conn: &Connection) -> rusqlite::Result<()> {
    // Neither is DETERMINISTIC: SQLite may evaluate a deterministic call with constant arguments once,
    // ahead of the CASE that guards it, which would make `CASE WHEN ok THEN 1 ELSE error('no') END` always
    // fail. INNOCUOUS (no side effects) lets `error` appear in a view's body.
    conn.create_scalar_function(
        "error",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_INNOCUOUS,
        |ctx| -> rusqlite::Result<i64> {
            let message = match ctx.get_raw(0) {
                ValueRef::Null => String::new(),
                ValueRef::Integer(i) => i.to_string(),
                ValueRef::Real(_) => "(a REAL value)".to_owned(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Blob(b) => hex::encode(b),
            };
            Err(rusqlite::Error::UserFunctionError(
                format!("{ACTION_ERROR_MARK}{message}").into(),
            ))
        },
    )?;
    conn.create_scalar_function("has_grant", 3, FunctionFlags::SQLITE_UTF8, |ctx| {
        has_grant(ctx)
    })
}

/// 1 if the grants table holds a grant from `owner` to `grantee` for `data_id`, else 0 (also when any argument
/// is NULL, and before the grants table exists).
fn has_grant(ctx: &Context<'_>) -> rusqlite::Result<i64> {
    let mut args = Vec::with_capacity(3);
    for i in 0..3 {
        match ctx.get_raw(i) {
            ValueRef::Text(t) => args.push(t.to_vec()),
            _ => return Ok(0),
        }
    }
    // SAFETY: the connection is used only inside this call, on the thread that is stepping the statement
    // that called it; nothing keeps or sends it elsewhere.
    #[allow(unsafe_code)]
    let conn = unsafe { ctx.get_connection()? };
    // A fresh prepare each time (not the connection's cache): a cached statement that a schema change
    // expired would prepare itself again inside its step, metered differently on nodes with another history.
    let sql = format!(
        "SELECT 1 FROM {GRANTS_TABLE} WHERE owner = ?1 AND grantee = ?2 AND data_id = ?3 LIMIT 1"
    );
    let mut stmt = match conn.prepare(&sql) {
        Ok(s) => s,
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.starts_with("no such table") => {
            return Ok(0)
        }
        Err(e) => return Err(e),
    };
    let found = stmt.exists([&args[0][..], &args[1][..], &args[2][..]].map(|b| {
        // The grants table stores TEXT; bind as TEXT so the comparison matches.
        rusqlite::types::Value::Text(String::from_utf8_lossy(b).into_owned())
    }))?;
    Ok(i64::from(found))
}
