//! Running one guarded statement: the rewrite cache, the compiled-program checks, metering and result limits
//! while it steps, and the engine's own internal statements.

use super::*;

/// What one row returned by a statement counts against the result limits, besides its
/// values (see [`value_charge`]): about the memory of its `Vec`.
pub(super) const ROW_CHARGE: u64 = 24;

/// What a returned value counts against the result limits: its in-memory size (32 bytes)
/// plus the bytes of a TEXT or BLOB.
pub(super) fn value_charge(v: &Value) -> u64 {
    32 + match v {
        Value::Text(t) => t.len() as u64,
        Value::Blob(b) => b.len() as u64,
        Value::Null | Value::Integer(_) => 0,
    }
}

/// Steps already spent and the limit they count against, and the bytes the statement's
/// result rows may count (see [`value_charge`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub used: u64,
    pub limit: u64,
    pub result_bytes: u64,
}

/// Rewritten single statements by schema and SQL text, so a statement run again (an
/// action, a parameterized insert) skips parsing and rewriting. The rewrite depends only
/// on the text and the database schema, so the cache is cleared by every DDL.
#[derive(Default)]
pub(super) struct RewriteCache {
    entries: BTreeMap<String, BTreeMap<String, Arc<Cached>>>,
    len: usize,
}

/// A cached rewrite, with what the savepoint-free proof found in its program (worked out
/// on first use, valid as long as the schema, so as long as the cache entry).
pub(super) struct Cached {
    pub(super) rewritten: Arc<guard::Rewritten>,
    pub(super) proof: OnceLock<Option<program::InsertProof>>,
}

/// Entries kept before the cache starts over.
pub(super) const REWRITE_CACHE_CAPACITY: usize = 1_024;

impl RewriteCache {
    pub(super) fn get(&self, schema: &str, sql: &str) -> Option<&Arc<Cached>> {
        self.entries.get(schema)?.get(sql)
    }
    pub(super) fn insert(&mut self, schema: &str, sql: &str, rewritten: Arc<guard::Rewritten>) {
        if self.len >= REWRITE_CACHE_CAPACITY {
            self.clear();
        }
        self.entries.entry(schema.to_owned()).or_default().insert(
            sql.to_owned(),
            Arc::new(Cached {
                rewritten,
                proof: OnceLock::new(),
            }),
        );
        self.len += 1;
    }
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.len = 0;
    }
}

/// Put the rows of an UPDATE or DELETE ... RETURNING in the order of the `keys` key
/// columns the guard appended to them, then drop those columns: SQLite returns the rows in
/// the order it visited them, which the query plan chooses.
pub(super) fn sort_by_appended_keys(rows: &mut QueryResult, keys: usize) {
    if keys == 0 || rows.columns.len() < keys {
        return;
    }
    let width = rows.columns.len() - keys;
    rows.rows.sort_by(|a, b| a[width..].cmp(&b[width..]));
    for row in &mut rows.rows {
        row.truncate(width);
    }
    rows.columns.truncate(width);
}

/// Result of running one guarded statement.
pub(crate) struct StepOutcome {
    pub cost: u64,
    /// What the result rows count against the result limits.
    pub result_bytes: u64,
    pub changes: u64,
    pub rows: Option<QueryResult>,
}

/// Run one rewritten statement under the authorizer `mode` and the meter. `used` steps
/// are already spent of `limit`.
pub(crate) fn run_guarded(
    conn: &Connection,
    auth: &Authorizer,
    meter: &Meter,
    mode: Mode,
    sql: &str,
    params: &[Value],
    budget: Budget,
) -> Result<StepOutcome, SqlError> {
    let mut slot = None;
    run_guarded_held(conn, auth, meter, mode, sql, &mut slot, params, budget)
}

/// [`run_guarded`] with the prepared statement kept in `slot` (SQL text and statement)
/// afterwards, so the next call with the same text skips the statement-cache lookup. A
/// statement in `slot` for another text goes back to the connection's cache first. The
/// statement is prepared (or re-prepared by SQLite after a schema change) under `mode`,
/// exactly as a `prepare_cached` per call would be.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_guarded_held<'c>(
    conn: &'c Connection,
    auth: &Authorizer,
    meter: &Meter,
    mode: Mode,
    sql: &str,
    slot: &mut Option<(String, CachedStatement<'c>)>,
    params: &[Value],
    budget: Budget,
) -> Result<StepOutcome, SqlError> {
    let schema = match &mode {
        Mode::Write { schema, .. } => Some(Arc::clone(schema)),
        _ => None,
    };
    auth.set_mode(mode);
    // A failed prepare must not be taken for the last statement's cost stop (see `fail`).
    meter.clear_exceeded();
    let result = (|| {
        let stmt = match slot {
            Some((held, stmt)) if held.as_str() == sql => stmt,
            _ => {
                *slot = None;
                let stmt = conn
                    .prepare_cached(sql)
                    .map_err(|e| fail(auth, meter, budget, e, 0))?;
                &mut slot.insert((sql.to_owned(), stmt)).1
            }
        };
        // The second layer (verify.rs) on what SQLite compiled, whatever the guard did.
        let (compiled, ddl) = auth.take_compiled();
        let created = auth.take_created();
        if compiled {
            if let Err(e) = check_compiled(conn, auth, sql) {
                // Out of the statement cache too: a cached statement is not compiled (so
                // not checked) again.
                if let Some((_, stmt)) = slot.take() {
                    stmt.discard();
                }
                return Err(e);
            }
        }
        let outcome = run_inner(conn, auth, meter, stmt, params, budget);
        if ddl {
            // DDL is compiled afresh on every run, so its objects are always checked.
            if let Some((_, stmt)) = slot.take() {
                stmt.discard();
            }
        }
        let outcome = outcome?;
        if !created.is_empty() {
            // The engine's own reads of the schema.
            auth.set_mode(Mode::Internal);
            let schema = schema.as_deref().unwrap_or_default();
            verify::check_created(conn, schema, &created)?;
        }
        Ok(outcome)
    })();
    auth.set_mode(Mode::Internal);
    meter.disarm();
    result
}

/// Check the program SQLite compiled for `sql` (verify.rs), under the authorizer mode
/// already set. Runs once per compile, not per execution.
pub(super) fn check_compiled(
    conn: &Connection,
    auth: &Authorizer,
    sql: &str,
) -> Result<(), SqlError> {
    let listing = program::explain(conn, sql);
    // EXPLAIN compiles the statement again; what the authorizer noted then is a repeat.
    auth.take_compiled();
    auth.take_created();
    if let Some(d) = auth.take_denial() {
        return Err(d);
    }
    verify::check_program(&listing?, &mut |root| hidden_rowid_table(conn, auth, root))
}

/// The table at b-tree `root` if it is a rowid table without an INTEGER PRIMARY KEY, read
/// as the engine (the authorizer's mode is kept: these statements are the engine's own).
pub(super) fn hidden_rowid_table(
    conn: &Connection,
    auth: &Authorizer,
    root: i64,
) -> Result<Option<String>, SqlError> {
    let saved = auth.mode();
    auth.set_mode(Mode::Internal);
    let found = (|| {
        let table: Option<String> = conn
            .prepare_cached(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND rootpage = ?1",
            )?
            .query_row([root], |r| r.get(0))
            .ok();
        let Some(table) = table else {
            return Ok(None);
        };
        let without_rowid: bool = conn
            .prepare_cached("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1")?
            .query_row([&table], |r| r.get(0))?;
        let key: Vec<String> = conn
            .prepare_cached("SELECT type FROM pragma_table_info(?1) WHERE pk > 0")?
            .query_map([&table], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let alias = key.len() == 1 && key[0].eq_ignore_ascii_case("INTEGER");
        Ok((!without_rowid && !alias).then_some(table))
    })();
    auth.set_mode(saved);
    found
}

/// The error of a failed prepare or step: the authorizer's refusal if there was one, the
/// cost limit if the meter stopped the statement, else SQLite's error.
pub(super) fn fail(
    auth: &Authorizer,
    meter: &Meter,
    budget: Budget,
    e: rusqlite::Error,
    counted: u64,
) -> SqlError {
    if let Some(d) = auth.take_denial() {
        return d;
    }
    if meter.exceeded() || e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
        return SqlError::CostLimitExceeded {
            limit: budget.limit,
            used: budget.used.saturating_add(counted),
        };
    }
    SqlError::Sqlite(e)
}

pub(super) fn run_inner(
    conn: &Connection,
    auth: &Authorizer,
    meter: &Meter,
    stmt: &mut Statement<'_>,
    params: &[Value],
    budget: Budget,
) -> Result<StepOutcome, SqlError> {
    let Budget {
        used,
        limit,
        result_bytes: result_limit,
    } = budget;
    let fail = |e: rusqlite::Error, counted: u64| fail(auth, meter, budget, e, counted);
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(SqlError::Refused {
            construct: format!("{} parameters", params.len()),
            reason: format!("the statement takes {expected}"),
        });
    }
    for (i, p) in params.iter().enumerate() {
        let v: rusqlite::types::ValueRef<'_> = match p {
            Value::Null => ValueRef::Null,
            Value::Integer(x) => ValueRef::Integer(*x),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        };
        stmt.raw_bind_parameter(i + 1, rusqlite::types::ToSqlOutput::Borrowed(v))
            .map_err(|e| fail(e, 0))?;
    }
    stmt.reset_status(StatementStatus::VmStep);
    // sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so after a DDL statement it would
    // report an earlier statement's rows; the total-changes counter tells whether this one changed any.
    let total_before = conn.total_changes();
    let ncols = stmt.column_count();
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    meter.arm(limit.saturating_sub(used));
    let mut out_rows = Vec::new();
    let mut result_bytes = 0u64;
    {
        let mut rows = stmt.raw_query();
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    let mut vals = Vec::with_capacity(ncols);
                    let steps = row.as_ref().get_status(StatementStatus::VmStep);
                    let steps = used.saturating_add(u64::try_from(steps).unwrap_or(0));
                    result_bytes = result_bytes.saturating_add(ROW_CHARGE);
                    for (i, name) in names.iter().enumerate() {
                        let v = row.get_ref(i).map_err(SqlError::Sqlite)?;
                        // Each value counts as soon as it is read, so a read of large
                        // values stops at the limit instead of after gathering them all,
                        // holding at most one value past it (docs/sql.md, "Cost").
                        meter.add_result_bytes(value_bytes(match v {
                            ValueRef::Text(b) | ValueRef::Blob(b) => b.len(),
                            _ => 0,
                        }));
                        let spent = steps.saturating_add(meter.byte_charge());
                        if spent > limit {
                            meter.disarm();
                            return Err(SqlError::CostLimitExceeded { limit, used: spent });
                        }
                        let v = value_of(v, name)?;
                        result_bytes = result_bytes.saturating_add(value_charge(&v));
                        vals.push(v);
                    }
                    // Stop collecting as soon as the rows pass their limit, so memory stays
                    // bounded by it whatever the statement returns.
                    if result_bytes > result_limit {
                        meter.disarm();
                        return Err(SqlError::DataLimitExceeded {
                            what: "returns",
                            limit: result_limit,
                        });
                    }
                    out_rows.push(vals);
                }
                Ok(None) => break,
                Err(e) => {
                    let counted = meter.disarm();
                    return Err(fail(e, counted));
                }
            }
        }
    }
    let bytes = meter.byte_charge();
    meter.disarm();
    let steps = u64::try_from(stmt.get_status(StatementStatus::VmStep)).unwrap_or(0);
    let cost = steps.max(1).saturating_add(bytes);
    if used.saturating_add(cost) > limit {
        return Err(SqlError::CostLimitExceeded {
            limit,
            used: used.saturating_add(cost),
        });
    }
    let changes = if stmt.readonly() || conn.total_changes() == total_before {
        0
    } else {
        conn.changes()
    };
    Ok(StepOutcome {
        cost,
        result_bytes,
        changes,
        rows: (ncols > 0).then_some(QueryResult {
            columns: names,
            rows: out_rows,
            cost,
        }),
    })
}

/// The number of columns (generated ones included) of the table a proven single-row
/// insert writes: the one its `OpenWrite` instructions open by root page. None if there
/// is not exactly one such table.
pub(super) fn written_columns(conn: &Connection, program: &[program::Op]) -> Option<u64> {
    let mut columns = None;
    for op in program.iter().filter(|op| op.opcode == "OpenWrite") {
        let n: Option<i64> = conn
            .prepare_cached(
                "SELECT count(*) FROM sqlite_schema s, pragma_table_xinfo(s.name) x \
                 WHERE s.type = 'table' AND s.rootpage = ?1 GROUP BY s.name",
            )
            .and_then(|mut st| st.query_row([op.p2], |r| r.get(0)).optional())
            .ok()?;
        match (n, columns) {
            // An index of the table.
            (None, _) => {}
            (Some(n), None) => columns = u64::try_from(n).ok(),
            (Some(_), Some(_)) => return None,
        }
    }
    columns
}

/// Drop every prepared statement of `conn` and have SQLite load the schema now, after
/// the schema changed or SQLite dropped it (see `Block::forget_statements`).
pub(super) fn refresh_statements(conn: &Connection) -> Result<(), SqlError> {
    conn.flush_prepared_statement_cache();
    conn.prepare("SELECT 1 FROM sqlite_schema LIMIT 0")?
        .exists([])?;
    Ok(())
}

pub(super) fn internal(conn: &Connection, sql: &str) -> Result<(), SqlError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Run the engine's own parameterless statement `sql`, prepared once into `slot`.
pub(super) fn internal_held<'c>(
    conn: &'c Connection,
    slot: &mut Option<CachedStatement<'c>>,
    sql: &str,
) -> Result<(), SqlError> {
    let stmt = match slot {
        Some(stmt) => stmt,
        None => slot.insert(conn.prepare_cached(sql)?),
    };
    stmt.raw_execute()?;
    Ok(())
}

/// Give the names in a PRAGMA's rows as the schema knows them: `app.ix` is `ix`, and
/// SQLite's own `sqlite_autoindex_app.t_1` is `sqlite_autoindex_t_1`.
pub(super) fn names_in_schema(rows: &mut QueryResult, schema: &str) {
    let own = format!("{schema}.");
    let auto = format!("sqlite_autoindex_{schema}.");
    for v in rows.rows.iter_mut().flatten() {
        if let Value::Text(t) = v {
            if let Some(rest) = t.strip_prefix(&auto) {
                *t = format!("sqlite_autoindex_{rest}");
            } else if let Some(rest) = t.strip_prefix(&own) {
                *t = rest.to_owned();
            }
        }
    }
}
