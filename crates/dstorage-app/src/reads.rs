//! Reads of committed state for the API: queries, transaction records, changesets, schemas and nonces.
//!
//! Each reader is its own read-only SQLite connection (WAL), so reads never wait for block execution and never
//! see a block before its Commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dstorage_sql::{Changeset, Estimate, QueryResult, Reader, SchemaInfo, SqlError};
use dstorage_types::tx::TxHash;
use serde::Serialize;

use crate::refusal::Refusal;
use crate::sys::lock;
use crate::{keys, TxRecord};

/// A small pool of read connections.
#[derive(Clone)]
pub struct Reads {
    readers: Arc<Vec<Mutex<Reader>>>,
    next: Arc<AtomicUsize>,
    /// A read-only connection for the grants table (a system table the guarded readers do not show).
    grants: Arc<Mutex<rusqlite::Connection>>,
}

/// A schema with its owner, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaSummary {
    /// Owner identity (the deployer).
    pub owner: String,
    /// Name, tables and columns.
    #[serde(flatten)]
    pub info: SchemaInfo,
}

impl Reads {
    pub(crate) fn new(readers: Vec<Reader>, grants: rusqlite::Connection) -> Reads {
        Reads {
            readers: Arc::new(readers.into_iter().map(Mutex::new).collect()),
            next: Arc::new(AtomicUsize::new(0)),
            grants: Arc::new(Mutex::new(grants)),
        }
    }

    /// Run one read-only statement in `schema` with `params` bound, metered against `cost_limit`.
    pub fn query_with_params(
        &self,
        schema: &str,
        sql: &str,
        params: &[dstorage_sql::Value],
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        self.with(|r| r.query_with_params(schema, sql, params, cost_limit))
    }

    /// `POST /v1/query`'s read: `sql` in `schema` by `who` (`None`: unsigned), answered only if
    /// [`read_rule`] lets `who` read the schema and every other schema the statement names. One reader and one
    /// read transaction for the rule's lookups and the read, so the rule is decided on the state the rows come
    /// from.
    pub fn query_as(
        &self,
        schema: &str,
        sql: &str,
        params: &[dstorage_sql::Value],
        cost_limit: u64,
        who: Option<&str>,
    ) -> Result<Result<QueryResult, QueryRefused>, SqlError> {
        self.with(|r| {
            r.in_snapshot(|r| {
                if let Err(refused) = read_rule(r, schema, sql, who, NamedSchemas::Required)? {
                    return Ok(Err(refused));
                }
                r.query_with_params(schema, sql, params, cost_limit).map(Ok)
            })?
        })
    }

    /// `POST /v1/estimate`'s access rule: [`read_rule`] for `sql` in `schema` by `who`, where the other schemas
    /// named are checked only when `sql` is one read (a write is only planned by the estimate, not run).
    pub fn estimate_allowed(
        &self,
        schema: &str,
        sql: &str,
        who: Option<&str>,
    ) -> Result<Result<(), QueryRefused>, SqlError> {
        self.with(|r| r.in_snapshot(|r| read_rule(r, schema, sql, who, NamedSchemas::IfOneRead))?)
    }

    /// A schema's owner, `None` if there is no such schema.
    pub fn owner(&self, schema: &str) -> Result<Option<String>, SqlError> {
        let bytes = self.with(|r| r.kv_get(&keys::owner(schema)))?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Whether anyone may read `schema` with ad-hoc SQL (`crate::access`).
    pub fn public_read(&self, schema: &str) -> Result<bool, SqlError> {
        Ok(self
            .with(|r| r.kv_get(&keys::public_read(schema)))?
            .is_some())
    }

    /// Committed grants matching the filters (`crate::grants::list`).
    pub fn grants(
        &self,
        owner: Option<&str>,
        grantee: Option<&str>,
        data_id: Option<&str>,
    ) -> Result<Vec<crate::grants::Grant>, SqlError> {
        let conn = lock(&self.grants);
        crate::grants::list(&conn, owner, grantee, data_id)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Reader) -> T) -> T {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let mut reader = lock(&self.readers[i]);
        f(&mut reader)
    }

    /// Run a read-only query in `schema`, metered against `cost_limit`.
    pub fn query(&self, schema: &str, sql: &str, cost_limit: u64) -> Result<QueryResult, SqlError> {
        self.with(|r| r.query(schema, sql, cost_limit))
    }

    /// Estimate what `sql` would cost in `schema`.
    pub fn estimate(&self, schema: &str, sql: &str) -> Result<Estimate, SqlError> {
        self.with(|r| r.estimate(schema, sql))
    }

    /// The record of a committed transaction.
    pub fn tx(&self, hash: &TxHash) -> Result<Option<TxRecord>, SqlError> {
        let bytes = self.with(|r| r.kv_get(&keys::tx(&hash.0)))?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// The changeset committed at `height`, if still retained.
    pub fn changeset(&self, height: u64) -> Result<Option<Changeset>, SqlError> {
        let bytes = self.with(|r| r.kv_get(&keys::changeset(height)))?;
        match bytes {
            None => Ok(None),
            Some(b) => Ok(Some(Changeset::decode(&b)?)),
        }
    }

    /// Every schema with its owner and tables, sorted by name.
    pub fn schemas(&self) -> Result<Vec<SchemaSummary>, SqlError> {
        self.with(|r| {
            let owners = r.kv_scan(keys::OWNER_PREFIX)?;
            let infos = r.schemas()?;
            Ok(infos
                .into_iter()
                .map(|info| {
                    let key = keys::owner(&info.name);
                    let owner = owners
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    SchemaSummary { owner, info }
                })
                .collect())
        })
    }

    /// Run view action `action` of `schema` for `caller` (None: unsigned) on committed state.
    ///
    /// `Ok(Err(refusal))` when the call is refused (no such schema or action, the rule says no, arguments that
    /// do not fit, a write action, or the action's `error('...')`); `Err` for any other engine error. The
    /// answer carries the height read; `@height` and `@block_time` are that height's, `@tx` is NULL.
    pub fn call_view(
        &self,
        schema: &str,
        action: &str,
        args: &[dstorage_types::value::Value],
        caller: Option<dstorage_types::caller::Caller>,
        cost_limit: u64,
    ) -> Result<Result<(QueryResult, u64), Refusal>, SqlError> {
        // One read transaction: the owner, catalog, height and rows are of one committed state.
        self.with(|r| {
            r.in_snapshot(|r| {
                let owner = r.kv_get(&keys::owner(schema))?;
                let catalog =
                    match crate::actions::decode_catalog(schema, r.kv_get(&keys::actions(schema))?)
                    {
                        Ok(c) => c,
                        Err(e) => return Err(SqlError::ChangeLog(e.to_string())),
                    };
                // A write action is never run here, whoever asks.
                if catalog.actions.get(action).is_some_and(|a| !a.view) {
                    return Ok(Err(Refusal::new(
                        dstorage_types::result::ResultCode::NotAView,
                        format!(
                            "{schema}.{action} writes: send it as a call transaction (POST /v1/tx)"
                        ),
                    )));
                }
                let (found, _) = match crate::actions::resolve(
                    owner,
                    &catalog,
                    schema,
                    action,
                    args,
                    caller.as_ref(),
                ) {
                    Ok(x) => x,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let height = keys::last_nonce(r.kv_get(keys::HEIGHT)?.as_deref());
                let block_time = r
                    .kv_get(keys::BLOCK_TIME)?
                    .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                    .map_or(0, i64::from_be_bytes);
                let context = dstorage_types::action::CallContext {
                    caller,
                    height,
                    block_time,
                    tx: None,
                };
                let bindings = found.bindings(args, &context);
                let statements: Vec<(&str, &[dstorage_types::value::Value])> = found
                    .statements
                    .iter()
                    .zip(&bindings)
                    .map(|(s, b)| (s.exec_sql.as_str(), b.as_slice()))
                    .collect();
                match r.query_statements(schema, &statements, cost_limit) {
                    Ok(rows) => Ok(Ok((rows, height))),
                    Err(e) => match dstorage_sql::functions::action_error_message(&e.to_string()) {
                        Some(m) => Ok(Err(Refusal::new(
                            dstorage_types::result::ResultCode::ActionError,
                            m.to_owned(),
                        ))),
                        None => Err(e),
                    },
                }
            })
        })?
    }

    /// A schema's action catalog (empty if it declares none), or None if there is no such schema.
    pub fn actions(
        &self,
        schema: &str,
    ) -> Result<Option<dstorage_types::action::ActionCatalog>, SqlError> {
        self.with(|r| {
            if r.kv_get(&keys::owner(schema))?.is_none() {
                return Ok(None);
            }
            crate::actions::decode_catalog(schema, r.kv_get(&keys::actions(schema))?)
                .map(|c| Some((*c).clone()))
                .map_err(|e| SqlError::ChangeLog(e.to_string()))
        })
    }

    /// The last nonce `identity` used (0 if none): a client's next nonce is this plus one.
    pub fn nonce(&self, identity: &str) -> Result<u64, SqlError> {
        let bytes = self.with(|r| r.kv_get(&keys::nonce(identity)))?;
        Ok(keys::last_nonce(bytes.as_deref()))
    }

    /// The validator set as committed: current validators (key order), those that left, and the parameters.
    pub fn validators(&self) -> Result<ValidatorsView, crate::AppError> {
        self.with(|r| {
            Ok(ValidatorsView {
                validators: crate::validators::current_set(r)?.into_values().collect(),
                left: crate::validators::left(r)?,
                params: crate::validators::params(r)?,
            })
        })
    }

    /// The newest `limit` validator requests, by id.
    pub fn validator_requests(
        &self,
        limit: usize,
    ) -> Result<Vec<crate::validators::Request>, crate::AppError> {
        self.with(|r| crate::validators::requests(r, limit))
    }

    /// Whether `node_id` is a current validator's node id (committed state).
    pub fn is_validator_node(&self, node_id: &str) -> Result<bool, crate::AppError> {
        self.with(|r| crate::validators::is_validator_node(r, node_id))
    }
}

/// Whether [`read_rule`] must find the schemas a statement names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NamedSchemas {
    /// `sql` must be one read; any other statement is refused with the read guard's error.
    Required,
    /// Only when `sql` is one read: a write (or several statements) names nothing the rule checks.
    IfOneRead,
}

/// The ad-hoc read rule ([`crate::access::may_read`]) on reader `r`: `schema` itself first, before the SQL is
/// parsed, then every other schema the statement names. A named schema without an owner (the guard resolved
/// its tables, so none exists) is nobody's to read.
fn read_rule(
    r: &mut Reader,
    schema: &str,
    sql: &str,
    who: Option<&str>,
    named: NamedSchemas,
) -> Result<Result<(), QueryRefused>, SqlError> {
    let decide = |name: &str, owner: &[u8], public: bool| {
        crate::access::may_read(name, &String::from_utf8_lossy(owner), public, who)
            .map_err(QueryRefused::Denied)
    };
    let Some(owner) = r.kv_get(&keys::owner(schema))? else {
        return Ok(Err(QueryRefused::NoSchema(schema.to_owned())));
    };
    let public = r.kv_get(&keys::public_read(schema))?.is_some();
    if let Err(refused) = decide(schema, &owner, public) {
        return Ok(Err(refused));
    }
    let others = match r.schemas_named(schema, sql) {
        Ok(others) => others,
        Err(e) if named == NamedSchemas::Required => return Err(e),
        Err(e) => {
            tracing::debug!(error = %e, "the access rule of a statement that is no single read");
            return Ok(Ok(()));
        }
    };
    for other in others.iter().filter(|o| *o != schema) {
        let verdict = match r.kv_get(&keys::owner(other))? {
            Some(owner) => decide(
                other,
                &owner,
                r.kv_get(&keys::public_read(other))?.is_some(),
            ),
            None => decide(other, b"", false),
        };
        if let Err(refused) = verdict {
            return Ok(Err(refused));
        }
    }
    Ok(Ok(()))
}

/// Why [`Reads::query_as`] did not answer.
#[derive(Debug)]
pub enum QueryRefused {
    /// The schema read does not exist.
    NoSchema(String),
    /// The access rule says no.
    Denied(crate::access::ReadDenied),
}

/// The validator set as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ValidatorsView {
    /// Current validators, in key order.
    pub validators: Vec<crate::validators::ValidatorRecord>,
    /// Validators that left or were removed.
    pub left: Vec<crate::validators::LeftRecord>,
    /// The genesis parameters.
    pub params: crate::validators::Params,
}
