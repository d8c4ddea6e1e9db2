//! Calls of schema actions (`docs/schemas.md`): finding the action, its access rule and its argument check,
//! shared by CheckTx, block execution and view reads so all three decide alike.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dstorage_types::action::{Action, ActionCatalog};
use dstorage_types::caller::Caller;
use dstorage_types::result::ResultCode;
use dstorage_types::value::Value;

use crate::refusal::Refusal;
use crate::sys::lock;
use crate::AppError;

/// Decode a stored catalog. A stored value that does not decode is a broken invariant (the node wrote it).
///
/// Every call and view read needs its schema's catalog, and JSON-decoding it each time was a measurable part of
/// a signed action read, so decoded catalogs are kept in a small process-wide cache keyed by schema and checked
/// against the stored bytes: a hit is a catalog decoded from exactly these bytes, so the answer is the one
/// decoding would give, whatever height or block (committed or not) the bytes were read from. Only the work is
/// skipped; nothing a node decides depends on what the cache holds.
pub fn decode_catalog(
    schema: &str,
    stored: Option<Vec<u8>>,
) -> Result<Arc<ActionCatalog>, AppError> {
    let Some(bytes) = stored else {
        return Ok(Arc::new(ActionCatalog::default()));
    };
    if let Some(hit) = lock(&CATALOGS).get(schema, &bytes) {
        return Ok(hit);
    }
    let catalog: Arc<ActionCatalog> = Arc::new(
        serde_json::from_slice(&bytes)
            .map_err(|e| AppError::Invariant(format!("stored action catalog: {e}")))?,
    );
    lock(&CATALOGS).put(schema, bytes, catalog.clone());
    Ok(catalog)
}

/// Most bytes of stored catalogs the cache keeps; beyond that it starts over (a deploy-heavy chain only loses
/// the saving, and memory stays bounded whatever is deployed).
const CATALOG_CACHE_BYTES: usize = 16 << 20;

/// Decoded catalogs by schema, each with the stored bytes it was decoded from.
struct CatalogCache {
    entries: BTreeMap<String, (Vec<u8>, Arc<ActionCatalog>)>,
    bytes: usize,
}

static CATALOGS: Mutex<CatalogCache> = Mutex::new(CatalogCache {
    entries: BTreeMap::new(),
    bytes: 0,
});

impl CatalogCache {
    fn get(&self, schema: &str, stored: &[u8]) -> Option<Arc<ActionCatalog>> {
        self.entries
            .get(schema)
            .filter(|(bytes, _)| bytes.as_slice() == stored)
            .map(|(_, catalog)| catalog.clone())
    }

    fn put(&mut self, schema: &str, stored: Vec<u8>, catalog: Arc<ActionCatalog>) {
        let size = schema.len() + stored.len();
        if size > CATALOG_CACHE_BYTES {
            return;
        }
        if self.bytes + size > CATALOG_CACHE_BYTES {
            self.entries.clear();
            self.bytes = 0;
        }
        if let Some((old, _)) = self.entries.insert(schema.to_owned(), (stored, catalog)) {
            self.bytes -= schema.len() + old.len();
        }
        self.bytes += size;
    }
}

/// Encode a catalog for the system KV.
pub fn encode_catalog(catalog: &ActionCatalog) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(catalog)
        .map_err(|e| AppError::Invariant(format!("encoding an action catalog: {e}")))
}

/// Decide a call: the schema exists, the action exists, the rule admits `caller` (None: unsigned), and the
/// arguments fit. On success, the action and the schema's owner.
pub fn resolve<'c>(
    owner: Option<Vec<u8>>,
    catalog: &'c ActionCatalog,
    schema: &str,
    action: &str,
    args: &[Value],
    caller: Option<&Caller>,
) -> Result<(&'c Action, String), Refusal> {
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
    Ok((found, owner))
}

/// The result of an action's SQL error: `action_error` with just the message for `error('...')`.
pub fn action_refusal(refusal: Refusal) -> Refusal {
    match dstorage_sql::functions::action_error_message(&refusal.message) {
        Some(m) => Refusal::new(ResultCode::ActionError, m),
        None => refusal,
    }
}
