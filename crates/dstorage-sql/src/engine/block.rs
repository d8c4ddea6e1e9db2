//! A block: the writer's one SQLite transaction with its change log, savepoints per transaction, the block's
//! data limits and its canonical changeset.

use super::*;

impl Engine {
    /// Start a block: BEGIN, and an empty change log recording every user table.
    pub fn begin_block(&mut self) -> Result<Block<'_>, SqlError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let conn = &self.conn;
        self.tracker.start(&self.meter);
        Ok(Block {
            conn,
            cache: &self.cache,
            auth: &self.auth,
            meter: &self.meter,
            config: &self.config,
            tracker: &self.tracker,
            closed: Vec::new(),
            closed_count: 0,
            closed_schema: 0,
            pending_ddl: Vec::new(),
            savepoint: None,
            release: None,
            held: None,
            schema_changed: false,
            savepoint_free: self.savepoint_free,
            savepoint_free_runs: &self.savepoint_free_runs,
            results_in_block: 0,
            allowance: Allowance::default(),
            finished: false,
        })
    }
}

/// A block's changeset in its canonical encoding (see [`Block::changeset_encoded`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedChangeset {
    /// The encoding (docs/changeset.md); its SHA-256 is the changeset hash.
    pub bytes: Vec<u8>,
    /// How many records it holds.
    pub records: u32,
    /// How many of them are schema records (schemas created or dropped, DDL).
    pub schema_records: u32,
}

/// What a failed transaction restores.
pub(super) enum Snapshot {
    Plain {
        pending_ddl: usize,
        log: Mark,
    },
    /// A transaction that may close sections keeps a copy of the whole log.
    Sectioned {
        closed: usize,
        closed_count: u32,
        closed_schema: u32,
        pending_ddl: Vec<ChangesetRecord>,
        log: Box<Log>,
    },
}

/// One block: everything between `begin_block` and `commit` / `discard` is one SQLite
/// transaction, its row changes recorded by the engine's change log (`tracker.rs`).
pub struct Block<'e> {
    conn: &'e Connection,
    cache: &'e RefCell<RewriteCache>,
    auth: &'e Authorizer,
    meter: &'e Arc<Meter>,
    config: &'e EngineConfig,
    tracker: &'e Tracker,
    /// Encoded records of sections already closed by a DROP (see docs/changeset.md).
    closed: Vec<u8>,
    /// How many records `closed` holds.
    closed_count: u32,
    /// How many of them are schema records (DDL, schemas created and dropped).
    closed_schema: u32,
    /// DDL records of the current section, in execution order.
    pending_ddl: Vec<ChangesetRecord>,
    /// `SAVEPOINT dstorage_tx` and `RELEASE dstorage_tx`, prepared at their first use and
    /// kept for the block (back in the connection's statement cache when it ends).
    savepoint: Option<CachedStatement<'e>>,
    release: Option<CachedStatement<'e>>,
    /// The last user statement run, kept prepared with its text (see `run_guarded_held`).
    held: Option<(String, CachedStatement<'e>)>,
    /// DDL ran in this block (SQLite then drops its schema on every rollback; see
    /// `forget_statements`).
    schema_changed: bool,
    /// See `Engine::set_savepoint_free_inserts`.
    savepoint_free: bool,
    savepoint_free_runs: &'e Cell<u64>,
    /// What the rows returned by the block's committed transactions count (see
    /// [`value_charge`]); with the change log's charge, what the block has used of
    /// `max_block_write_bytes`.
    results_in_block: u64,
    /// The data limits of the running transaction (see `Block::begin_tx`).
    allowance: Allowance,
    finished: bool,
}

/// The data limits of one transaction, set when it starts (docs/sql.md, "Data limits").
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Allowance {
    /// Bytes the block had left of `max_block_write_bytes` when the transaction started.
    block_left: u64,
    /// The change log's charge when it started.
    charged_at_start: u64,
    /// Bytes its row changes may count: `max_tx_write_bytes`, or `block_left` if less.
    write: u64,
    /// What its returned rows counted so far.
    results: u64,
}

impl<'e> Block<'e> {
    /// Refuse to go on once the block's transaction is gone (see `SqlError::BlockAborted`):
    /// SQLite would otherwise run later statements outside any transaction.
    fn alive(&self) -> Result<(), SqlError> {
        if self.finished || self.conn.is_autocommit() {
            Err(SqlError::BlockAborted)
        } else {
            Ok(())
        }
    }

    /// Start a transaction's data limits (docs/sql.md, "Data limits"): its row changes may
    /// count `max_tx_write_bytes`, its returned rows `max_result_bytes`, and both together
    /// no more than the block has left of `max_block_write_bytes`. Everything counted is
    /// deterministic (the same changes and rows in the same order on every node), so a
    /// transaction that passes a limit fails alike everywhere, alone, and the block goes on.
    fn begin_tx(&mut self) {
        let charged = self.tracker.charged();
        let used = charged.saturating_add(self.results_in_block);
        let block_left = self.config.max_block_write_bytes.saturating_sub(used);
        let write = self.config.max_tx_write_bytes.min(block_left);
        self.tracker.arm(charged.saturating_add(write));
        self.allowance = Allowance {
            block_left,
            charged_at_start: charged,
            write,
            results: 0,
        };
    }

    /// What the running transaction's next statement may return: what is left of
    /// `max_result_bytes`, and of the block's bytes after the transaction's own writes.
    fn result_allowance(&self) -> u64 {
        let a = &self.allowance;
        let written = self.tracker.charged().saturating_sub(a.charged_at_start);
        let tx_left = self.config.max_result_bytes.saturating_sub(a.results);
        let block_left = a
            .block_left
            .saturating_sub(written)
            .saturating_sub(a.results);
        tx_left.min(block_left)
    }

    /// Whether the block's bytes, not the transaction's own limit, bound `limit`.
    fn block_binds(&self, tx_limit: u64) -> bool {
        self.allowance.block_left < tx_limit
    }

    /// Put the user length limit back if the change log lowered it to stop a statement that
    /// passed its write limit (see `Tracker::record`).
    fn settle_limit(&self) -> Result<(), SqlError> {
        if self.tracker.over() {
            // The log also gave the meter a budget of nothing; stop it, or the engine's own
            // statements after an unmetered write (a schema's deletes) would be counted.
            self.meter.disarm();
            set_value_limit(self.conn, self.config.max_value_length)?;
        }
        Ok(())
    }

    /// The error of a transaction whose row changes passed its write limit, if they did.
    fn write_limit_error(&self) -> Option<SqlError> {
        if !self.tracker.over() {
            return None;
        }
        let limit = self.config.max_tx_write_bytes;
        Some(if self.block_binds(limit) {
            SqlError::BlockFull {
                what: "writes",
                left: self.allowance.block_left,
                limit: self.config.max_block_write_bytes,
            }
        } else {
            SqlError::DataLimitExceeded {
                what: "writes",
                limit,
            }
        })
    }

    /// A statement's result-limit error as the transaction reports it: `BlockFull` when the
    /// block's bytes were the lesser limit.
    fn result_limit_error(&self, e: SqlError) -> SqlError {
        match e {
            SqlError::DataLimitExceeded {
                what: "returns", ..
            } => {
                let limit = self.config.max_result_bytes;
                let written = self
                    .tracker
                    .charged()
                    .saturating_sub(self.allowance.charged_at_start);
                if self.allowance.block_left.saturating_sub(written) < limit {
                    SqlError::BlockFull {
                        what: "returns",
                        left: self.allowance.block_left,
                        limit: self.config.max_block_write_bytes,
                    }
                } else {
                    SqlError::DataLimitExceeded {
                        what: "returns",
                        limit,
                    }
                }
            }
            other => other,
        }
    }

    /// Close the current section before a DROP record: its DDL and netted rows go to
    /// `closed`, and the next section starts empty. The tables must still exist.
    fn close_section(&mut self) -> Result<(), SqlError> {
        for r in self.pending_ddl.drain(..) {
            encode_record(&mut self.closed, &r);
            self.closed_count += 1;
            self.closed_schema += 1;
        }
        self.closed_count += self.tracker.encode_rows(self.conn, &mut self.closed)?;
        self.tracker.clear_events();
        Ok(())
    }

    /// Forget every prepared statement after the schema changed, or SQLite dropped it (a
    /// rollback in a block that changed the schema), and load the schema again: all
    /// unmetered.
    ///
    /// A statement prepared before a schema change is expired: SQLite prepares it again
    /// inside its next `sqlite3_step`, after first running two of its old instructions when
    /// the change is only seen by the schema cookie check. Those two steps count in the
    /// statement's cost, and the re-preparation, with any schema read it needs, calls the
    /// progress handler. Whether a statement is stale depends on this connection's history
    /// (a node restarted after the change prepares afresh), so it could make costs and
    /// cost-limit failures differ between nodes. Dropping the statements makes every user
    /// statement prepared before it is metered.
    fn forget_statements(&mut self) -> Result<(), SqlError> {
        // Held statements go back to the connection's cache first, to be dropped with it.
        self.held = None;
        self.savepoint = None;
        self.release = None;
        refresh_statements(self.conn)
    }

    /// Open the per-transaction savepoint.
    fn savepoint(&mut self) -> Result<(), SqlError> {
        internal_held(self.conn, &mut self.savepoint, "SAVEPOINT dstorage_tx")
    }

    /// Release the per-transaction savepoint.
    fn release(&mut self) -> Result<(), SqlError> {
        internal_held(self.conn, &mut self.release, "RELEASE dstorage_tx")
    }

    fn limit(&self, cost_limit: u64) -> u64 {
        cost_limit.min(self.config.cost_limit_per_tx)
    }

    /// Create a schema (a namespace of tables).
    pub fn create_schema(&mut self, schema: &str) -> Result<(), SqlError> {
        self.alive()?;
        validate_schema_name(schema)?;
        self.cache.borrow_mut().clear();
        if schema_exists(self.conn, schema)? {
            return Err(SqlError::SchemaExists(schema.to_owned()));
        }
        self.conn
            .execute("INSERT INTO _dstorage_schemas(name) VALUES (?1)", [schema])?;
        self.pending_ddl.push(ChangesetRecord::CreateSchema {
            name: schema.to_owned(),
        });
        Ok(())
    }

    /// Drop a schema and all its tables; their rows show as deletes in the changeset.
    pub fn drop_schema(&mut self, schema: &str) -> Result<(), SqlError> {
        self.alive()?;
        require_schema(self.conn, schema)?;
        self.cache.borrow_mut().clear();
        self.schema_changed = true;
        self.begin_tx();
        let snapshot = self.snapshot(true);
        self.savepoint()?;
        let result = (|| {
            let tables = schema_objects(self.conn, schema, "table")?;
            // Delete rows so the change log records them. Parents may go before children:
            // foreign keys are deferred for the deletes, and none is left violated since
            // every table of the schema is emptied (cross-schema keys are refused).
            self.conn.execute_batch("PRAGMA defer_foreign_keys = ON")?;
            let deleted = (|| {
                for t in &tables {
                    self.conn
                        .execute_batch(&format!("DELETE FROM {}", quote(t)))?;
                }
                Ok::<(), SqlError>(())
            })();
            self.settle_limit()?;
            self.conn.execute_batch("PRAGMA defer_foreign_keys = OFF")?;
            if let Some(e) = self.write_limit_error() {
                return Err(e);
            }
            deleted?;
            self.close_section()?;
            drop_schema_objects(self.conn, schema)?;
            self.conn
                .execute("DELETE FROM _dstorage_schemas WHERE name = ?1", [schema])?;
            self.close_with(&ChangesetRecord::DropSchema {
                name: schema.to_owned(),
            });
            Ok::<(), SqlError>(())
        })();
        let result = self.finish_tx(result, snapshot);
        let refreshed = self.forget_statements();
        let () = result?;
        refreshed
    }

    /// Remember what a failed transaction must restore. A transaction that may drop a table
    /// closes sections, which consumes the log, so it keeps a copy of the log.
    fn snapshot(&mut self, sectioned: bool) -> Snapshot {
        if sectioned {
            Snapshot::Sectioned {
                closed: self.closed.len(),
                closed_count: self.closed_count,
                closed_schema: self.closed_schema,
                pending_ddl: self.pending_ddl.clone(),
                log: Box::new(self.tracker.snapshot()),
            }
        } else {
            Snapshot::Plain {
                pending_ddl: self.pending_ddl.len(),
                log: self.tracker.mark(),
            }
        }
    }

    /// Append a record that ends a section (a DROP) to `closed`.
    fn close_with(&mut self, record: &ChangesetRecord) {
        encode_record(&mut self.closed, record);
        self.closed_count += 1;
        self.closed_schema += 1;
    }

    fn finish_tx<T>(
        &mut self,
        result: Result<T, SqlError>,
        snapshot: Snapshot,
    ) -> Result<T, SqlError> {
        // A change the log did not record must not be committed, whatever the statements
        // reported (the limit is restored before anything else runs).
        let settled = self.settle_limit();
        let result = match (result, self.write_limit_error()) {
            (Err(e), _) if self.conn.is_autocommit() => Err(e),
            (_, Some(over)) => Err(over),
            (r, None) => r,
        };
        settled?;
        match result {
            Ok(v) => {
                self.release()?;
                self.results_in_block =
                    self.results_in_block.saturating_add(self.allowance.results);
                Ok(v)
            }
            Err(e) => {
                if self.conn.is_autocommit() {
                    // SQLite already rolled back the whole block transaction (it does so when a
                    // writing statement is interrupted, or fails with an I/O or memory error;
                    // the cost meter stops statements with an ordinary error instead): there is
                    // no savepoint left. Report the original error; the caller must discard the
                    // block.
                    return Err(e);
                }
                internal(self.conn, "ROLLBACK TO dstorage_tx")?;
                self.release()?;
                if self.schema_changed {
                    // SQLite dropped its schema and expired every statement.
                    self.forget_statements()?;
                }
                match snapshot {
                    Snapshot::Plain { pending_ddl, log } => {
                        self.pending_ddl.truncate(pending_ddl);
                        self.tracker.rollback_to(log);
                    }
                    Snapshot::Sectioned {
                        closed,
                        closed_count,
                        closed_schema,
                        pending_ddl,
                        log,
                    } => {
                        // The state is again the one at the snapshot; sections closed
                        // inside the failed transaction described changes rolled back.
                        self.closed.truncate(closed);
                        self.closed_count = closed_count;
                        self.closed_schema = closed_schema;
                        self.pending_ddl = pending_ddl;
                        self.tracker.restore(*log);
                    }
                }
                Err(e)
            }
        }
    }

    /// Run all statements of `sql` atomically inside `schema`, metered against `cost_limit`
    /// (capped to the configured per-transaction limit). On any error nothing remains.
    pub fn execute(
        &mut self,
        schema: &str,
        sql: &str,
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.execute_with_params(schema, sql, &[], cost_limit)
    }

    /// Like [`Block::execute`], binding `params` to the `?` placeholders of the statement
    /// (only for SQL holding exactly one statement when params are given).
    pub fn execute_with_params(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.alive()?;
        self.config.check_sql_length(sql)?;
        let limit = self.limit(cost_limit);
        self.begin_tx();
        // A cache hit implies the schema exists: dropping a schema clears the cache.
        let cached = self.cache.borrow().get(schema, sql).cloned();
        if let Some(cached) = cached {
            let rewritten = &cached.rewritten;
            if let Some(bound) = self.savepoint_free_bound(&cached, params, limit) {
                return self.run_savepoint_free(schema, rewritten, params, limit, bound);
            }
            let snapshot = self.snapshot(false);
            self.savepoint()?;
            let mut out = ExecOutcome::default();
            let result = self
                .run_rewritten(schema, rewritten, params, limit, &mut out)
                .map(|()| out);
            return self.finish_tx(result, snapshot);
        }
        require_schema(self.conn, schema)?;
        with_sql_stack(|| self.execute_parsed(schema, sql, params, limit))
    }

    fn execute_parsed(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        let parsed = guard::parse(sql)?;
        let count = parsed.statements.len();
        let cacheable = count == 1;
        if !params.is_empty() && count != 1 {
            return Err(SqlError::Refused {
                construct: "parameters with several statements".into(),
                reason: "bind parameters to one statement at a time".into(),
            });
        }
        let sectioned = (0..count).any(|i| guard::is_drop_table(&parsed, i));
        let snapshot = self.snapshot(sectioned);
        self.savepoint()?;
        let result = self.execute_inner(schema, sql, cacheable, &parsed, params, limit);
        self.finish_tx(result, snapshot)
    }

    /// The cost bound of `cached` with `params` if it may run without a savepoint under
    /// `limit`.
    ///
    /// It may when it is a plain single-row insert (`guard::Rewritten::single_row_insert`)
    /// whose compiled program is proven loop-free, ABORT-only and check-before-write
    /// (`program::step_bound`), and its cost bound (the VM steps plus the charge for the
    /// bytes of the row, `program::InsertProof::cost_bound`) fits the limit: then SQLite
    /// undoes it by itself if it fails, and nothing after it can fail (see docs/sql.md,
    /// "Atomicity"). Candidates are only seen on a cache hit, so a statement run once does
    /// not pay for the `EXPLAIN`; the proof is kept with the cached rewrite, which every
    /// schema change clears.
    fn savepoint_free_bound(&self, cached: &Cached, params: &[Value], limit: u64) -> Option<u64> {
        let rewritten = &cached.rewritten;
        if !self.savepoint_free || !rewritten.single_row_insert {
            return None;
        }
        // The row must fit the transaction's write allowance whatever it holds, since a
        // change past it could not be undone without the savepoint: one row's record is
        // at most `max_value_length` bytes, and its charge adds at most 16 bytes a column
        // and the table name.
        let one_row = u64::from(self.config.max_value_length) + 16 * COLUMN_LIMIT as u64 + 1_024;
        if self.allowance.write < one_row {
            return None;
        }
        let proof = (*cached.proof.get_or_init(|| {
            self.auth.set_mode(Mode::Write {
                schema: Arc::clone(&rewritten.schema),
                ctes: rewritten.ctes.clone(),
            });
            let listing = program::explain(self.conn, &rewritten.exec_sql);
            let denied = self.auth.take_denial().is_some();
            self.auth.set_mode(Mode::Internal);
            // A statement that does not compile now fails the proof; the savepoint path
            // then reports the error.
            let proof = match listing {
                Ok(ops) if !denied => {
                    written_columns(self.conn, &ops).and_then(|c| program::prove(&ops, c))
                }
                _ => None,
            };
            let _ = rewritten.step_bound.set(proof.map(|p| p.steps));
            proof
        }))?;
        let bound = proof.cost_bound(params);
        (bound <= limit).then_some(bound)
    }

    /// Run a proven single-row insert without a savepoint. If it fails, SQLite has already
    /// undone it; the error is returned as is. A cost-limit error or a cost above the
    /// bound would mean the proof was wrong while the row may be in: a broken invariant,
    /// reported as `BlockAborted` so the node stops instead of committing it. So is a
    /// corrupt database: SQLite does not undo a statement for that error without a
    /// statement journal, so one index entry could stay written (the savepoint path would
    /// roll it back, but a corrupt file is no state to go on from either way).
    fn run_savepoint_free(
        &mut self,
        schema: &str,
        rewritten: &guard::Rewritten,
        params: &[Value],
        limit: u64,
        bound: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.savepoint_free_runs
            .set(self.savepoint_free_runs.get().saturating_add(1));
        let mut out = ExecOutcome::default();
        let mark = self.tracker.mark();
        let result = self.run_rewritten(schema, rewritten, params, limit, &mut out);
        if result.is_err() {
            // SQLite undid the statement. The proof says no change reached the pre-update
            // hook before the failure; cutting the log back anyway costs nothing.
            self.tracker.rollback_to(mark);
        }
        match result {
            Err(e @ (SqlError::DataLimitExceeded { .. } | SqlError::BlockFull { .. })) => {
                tracing::error!(sql = %rewritten.exec_sql, error = %e, "a savepoint-free insert passed its data limit");
                Err(SqlError::BlockAborted)
            }
            Ok(()) if out.cost <= bound => Ok(out),
            Err(SqlError::Sqlite(e))
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) =>
            {
                tracing::error!(sql = %rewritten.exec_sql, error = %e, "corrupt database");
                Err(SqlError::BlockAborted)
            }
            Err(e) if !matches!(e, SqlError::CostLimitExceeded { .. }) => Err(e),
            outcome => {
                tracing::error!(
                    sql = %rewritten.exec_sql,
                    bound,
                    cost = out.cost,
                    ?outcome,
                    "a savepoint-free insert broke its proven cost bound"
                );
                Err(SqlError::BlockAborted)
            }
        }
    }

    fn execute_inner(
        &mut self,
        schema: &str,
        sql: &str,
        cacheable: bool,
        parsed: &guard::Parsed,
        params: &[Value],
        limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        let base_mode = Mode::Write {
            schema: schema.into(),
            ctes: Default::default(),
        };
        let mut out = ExecOutcome::default();
        for index in 0..parsed.statements.len() {
            let mut rewritten = {
                let catalog = ConnCatalog {
                    conn: self.conn,
                    auth: self.auth,
                    mode: base_mode.clone(),
                };
                guard::rewrite(sql, parsed, index, schema, false, &catalog)?
            };
            // The schema in a comment keeps prepared statements apart per schema: a cached
            // prepared statement is not re-authorized, and the same physical text could
            // otherwise be reused by a statement running in another schema.
            rewritten.exec_sql = format!("/* {schema} */ {}", rewritten.sql);
            let rewritten = Arc::new(rewritten);
            if cacheable && matches!(rewritten.kind, Kind::Query | Kind::Dml) {
                self.cache
                    .borrow_mut()
                    .insert(schema, sql, Arc::clone(&rewritten));
            }
            self.run_rewritten(schema, &rewritten, params, limit, &mut out)?;
        }
        Ok(out)
    }

    fn run_rewritten(
        &mut self,
        schema: &str,
        rewritten: &guard::Rewritten,
        params: &[Value],
        limit: u64,
        out: &mut ExecOutcome,
    ) -> Result<(), SqlError> {
        let ddl = matches!(rewritten.kind, Kind::Ddl | Kind::DropTables { .. });
        if ddl {
            self.cache.borrow_mut().clear();
            self.schema_changed = true;
        }
        let mode = Mode::Write {
            schema: Arc::clone(&rewritten.schema),
            ctes: rewritten.ctes.clone(),
        };
        if let Kind::DropTables { tables, if_exists } = &rewritten.kind {
            for t in tables {
                let exists = self
                    .conn
                    .prepare_cached(
                        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    )?
                    .exists([t])?;
                if !exists && *if_exists {
                    continue;
                }
                if split_physical(t).map(|(s, _)| s) != Some(schema) {
                    return Err(SqlError::CrossSchemaWrite {
                        schema: schema.to_owned(),
                        target: t.clone(),
                    });
                }
                // Delete the rows first, in the change log, so the changeset shows them going;
                // metered per row like every write (verify.rs refuses a write loop without it).
                let del = format!(
                    "/* {schema} */ DELETE FROM {} WHERE {}()",
                    quote(t),
                    crate::meter::METER_FUNCTION
                );
                let step = run_guarded(
                    self.conn,
                    self.auth,
                    self.meter,
                    mode.clone(),
                    &del,
                    &[],
                    Budget {
                        used: out.cost,
                        limit,
                        result_bytes: 0,
                    },
                );
                self.settle_limit()?;
                let step = step?;
                if let Some(e) = self.write_limit_error() {
                    return Err(e);
                }
                out.cost = out.cost.saturating_add(step.cost);
                out.rows_changed = out.rows_changed.saturating_add(step.changes);
                self.close_section()?;
            }
        }
        let result_bytes = self.result_allowance();
        let step = run_guarded_held(
            self.conn,
            self.auth,
            self.meter,
            mode,
            &rewritten.exec_sql,
            &mut self.held,
            params,
            Budget {
                used: out.cost,
                limit,
                result_bytes,
            },
        );
        // The change log may have lowered the length limit (see `Tracker::arm`): restore it
        // before any other statement runs.
        let settled = self.settle_limit();
        if self.conn.is_autocommit() {
            // SQLite rolled the whole block back (an interrupt, an I/O or memory error; the
            // meter stops a write with an ordinary error, so not for a cost or data limit):
            // the caller re-executes the block without this transaction.
            return Err(self.write_limit_error().unwrap_or(SqlError::BlockAborted));
        }
        settled?;
        if let Some(e) = self.write_limit_error() {
            return Err(e);
        }
        let step = step.map_err(|e| self.result_limit_error(e));
        let refreshed = if ddl {
            self.forget_statements()
        } else {
            Ok(())
        };
        let step = step?;
        refreshed?;
        self.allowance.results = self.allowance.results.saturating_add(step.result_bytes);
        if self.conn.is_autocommit() {
            // Only a ROLLBACK can end the block's transaction; the guard refuses every way
            // to issue one, so this is a broken invariant, not bad input.
            return Err(SqlError::BlockAborted);
        }
        out.cost = out.cost.saturating_add(step.cost);
        out.rows_changed = out.rows_changed.saturating_add(step.changes);
        out.rows = step.rows;
        if let Some(rows) = &mut out.rows {
            rows.cost = out.cost;
            sort_by_appended_keys(rows, rewritten.returning_keys);
            if rewritten.names_in_results {
                names_in_schema(rows, &rewritten.schema);
            }
        }
        match rewritten.kind {
            Kind::Ddl => self.pending_ddl.push(ChangesetRecord::Ddl {
                schema: schema.to_owned(),
                sql: rewritten.sql.clone(),
            }),
            Kind::DropTables { .. } => self.close_with(&ChangesetRecord::Ddl {
                schema: schema.to_owned(),
                sql: rewritten.sql.clone(),
            }),
            Kind::Query | Kind::Dml => {}
        }
        Ok(())
    }

    /// How many calls ran without a savepoint since the engine was opened (see
    /// `Engine::savepoint_free_runs`).
    pub fn savepoint_free_runs(&self) -> u64 {
        self.savepoint_free_runs.get()
    }

    /// Estimate the cost of `sql` on the block's current (uncommitted) state.
    pub fn estimate(&self, schema: &str, sql: &str) -> Result<Estimate, SqlError> {
        with_sql_stack(|| {
            estimate::estimate(self.conn, self.auth, self.meter, schema, sql, self.config)
        })
    }

    /// Put a system KV pair: same SQLite transaction as the block, not in the changeset.
    /// Values up to [`SYSTEM_VALUE_LIMIT`] bytes are stored whatever `max_value_length` is.
    pub fn kv_put(&mut self, key: &[u8], value: &[u8]) -> Result<(), SqlError> {
        self.alive()?;
        with_system_limit(self.conn, self.config.max_value_length, || {
            self.conn
                .prepare_cached("INSERT OR REPLACE INTO _dstorage_kv(key, value) VALUES (?1, ?2)")?
                .execute(rusqlite::params![key, value])?;
            Ok(())
        })
    }

    /// The block's connection, for a system table the app keeps beside the KV (such as its
    /// grants): statements on it run in the block's SQLite transaction with the authorizer
    /// in its internal mode, bypass the guard, and enter no changeset (only a user
    /// table's changes do), so the app must fold what it changes into the app hash itself.
    pub fn system_connection(&mut self) -> Result<&Connection, SqlError> {
        self.alive()?;
        Ok(self.conn)
    }

    /// Delete a system KV pair.
    pub fn kv_delete(&mut self, key: &[u8]) -> Result<(), SqlError> {
        self.alive()?;
        self.conn
            .prepare_cached("DELETE FROM _dstorage_kv WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    /// System KV value, including this block's uncommitted writes.
    pub fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError> {
        kv_get(self.conn, self.config, key)
    }

    /// System KV pairs under `prefix`, including uncommitted writes, sorted by key.
    pub fn kv_scan(&self, prefix: &[u8]) -> Result<KvPairs, SqlError> {
        kv_scan(self.conn, self.config, prefix)
    }

    /// Schemas as the block sees them (uncommitted DDL included).
    pub fn schemas(&self) -> Result<Vec<SchemaInfo>, SqlError> {
        schemas(self.conn)
    }

    /// The canonical encoding of the changeset of everything since `begin_block`
    /// (docs/changeset.md), whose SHA-256 is the changeset hash. Written straight from the
    /// change log, without building the records [`Block::changeset`] returns.
    pub fn changeset_encoded(&mut self) -> Result<EncodedChangeset, SqlError> {
        let mut bytes = Vec::with_capacity(
            CHANGESET_MAGIC.len() + 5 + self.closed.len() + self.tracker.rows_size_hint(),
        );
        begin_encoding(&mut bytes);
        bytes.extend_from_slice(&self.closed);
        for r in &self.pending_ddl {
            encode_record(&mut bytes, r);
        }
        let rows = self.tracker.encode_rows(self.conn, &mut bytes)?;
        let count = self.closed_count as usize + self.pending_ddl.len() + rows as usize;
        let records = u32::try_from(count)
            .map_err(|_| SqlError::ChangeLog(format!("{count} records do not fit a changeset")))?;
        set_record_count(&mut bytes, records);
        Ok(EncodedChangeset {
            bytes,
            records,
            schema_records: self.closed_schema + self.pending_ddl.len() as u32,
        })
    }

    /// The canonical changeset of everything since `begin_block`, as records.
    pub fn changeset(&mut self) -> Result<Changeset, SqlError> {
        Changeset::decode(&self.changeset_encoded()?.bytes)
    }

    /// Commit the block: user writes and KV writes in one SQLite COMMIT.
    pub fn commit(mut self) -> Result<(), SqlError> {
        self.alive()?;
        self.tracker.stop();
        // Marked finished only once committed: if COMMIT fails (an I/O error), `drop` rolls
        // the transaction back instead of leaving it open on the connection.
        self.conn.execute_batch("COMMIT")?;
        self.finished = true;
        Ok(())
    }

    /// Roll the whole block back.
    pub fn discard(mut self) -> Result<(), SqlError> {
        // Rewrites cached during the block may name tables the rollback removes.
        self.cache.borrow_mut().clear();
        self.tracker.stop();
        self.finished = true;
        self.conn.execute_batch("ROLLBACK")?;
        if self.schema_changed {
            self.forget_statements()?;
        }
        Ok(())
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // A block dropped without commit (an error path, a panic) must not leave the
            // write transaction open.
            self.cache.borrow_mut().clear();
            self.tracker.stop();
            let _ = self.conn.execute_batch("ROLLBACK");
            if self.schema_changed {
                let _ = self.forget_statements();
            }
        }
    }
}

/// The execution path without the statement guard, as if its parse and rewrite had been
/// bypassed: for the second layer's tests (`verify.rs`), which must refuse on their own.
#[cfg(test)]
impl Block<'_> {
    /// Run one statement `sql`, written with physical names (`"app.t"`), in `schema`
    /// through the authorizer, the program and schema checks, the meter and the change
    /// log, atomically like [`Block::execute`].
    pub(crate) fn execute_unguarded(
        &mut self,
        schema: &str,
        sql: &str,
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.alive()?;
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let kind = match first.as_str() {
            "SELECT" | "WITH" | "PRAGMA" | "VALUES" => Kind::Query,
            "CREATE" | "DROP" => Kind::Ddl,
            _ => Kind::Dml,
        };
        let rewritten = guard::Rewritten {
            sql: sql.to_owned(),
            kind,
            ctes: Default::default(),
            exec_sql: format!("/* {schema} */ {sql}"),
            schema: schema.into(),
            single_row_insert: false,
            step_bound: Default::default(),
            returning_keys: 0,
            tables: Vec::new(),
            aliases: BTreeMap::new(),
            written: None,
            values_rows: 0,
            names_in_results: false,
        };
        let limit = self.limit(cost_limit);
        let snapshot = self.snapshot(false);
        self.savepoint()?;
        let mut out = ExecOutcome::default();
        let result = self
            .run_rewritten(schema, &rewritten, &[], limit, &mut out)
            .map(|()| out);
        self.finish_tx(result, snapshot)
    }
}

/// Several statements, each with its own parameters, run as one unit: what an action is
/// (`docs/schemas.md`).
impl Block<'_> {
    /// The configuration the engine was opened with.
    pub fn config(&self) -> &EngineConfig {
        self.config
    }

    /// Run `statements` in order inside `schema`, each binding its own `params`, in one
    /// savepoint and under one cost limit: any failure leaves nothing of any of them. The
    /// returned rows are those of the last statement that returned rows.
    pub fn execute_statements(
        &mut self,
        schema: &str,
        statements: &[(&str, &[Value])],
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.alive()?;
        for (sql, _) in statements {
            self.config.check_sql_length(sql)?;
        }
        let limit = self.limit(cost_limit);
        self.begin_tx();
        require_schema(self.conn, schema)?;
        let snapshot = self.snapshot(false);
        self.savepoint()?;
        let mut out = ExecOutcome::default();
        let result = with_sql_stack(|| {
            for (sql, params) in statements {
                let rows = out.rows.take();
                self.run_one_cached(schema, sql, params, limit, &mut out)?;
                if out.rows.is_none() {
                    out.rows = rows;
                }
            }
            Ok(())
        })
        .map(|()| out);
        self.finish_tx(result, snapshot)
    }

    /// Run `sql` (a deploy's table SQL; blank: nothing) like [`Block::execute`], then compile
    /// each of `checks` (an action's name and one of its statements) against the result with
    /// [`Block::prepare_check`], all in one savepoint: if a check fails, the tables are undone
    /// too, and the error names the action.
    pub fn execute_checked(
        &mut self,
        schema: &str,
        sql: &str,
        checks: &[(&str, &str)],
        cost_limit: u64,
    ) -> Result<ExecOutcome, SqlError> {
        self.alive()?;
        self.config.check_sql_length(sql)?;
        let limit = self.limit(cost_limit);
        self.begin_tx();
        require_schema(self.conn, schema)?;
        with_sql_stack(|| {
            let parsed = if sql.trim().is_empty() {
                None
            } else {
                Some(guard::parse(sql)?)
            };
            let sectioned = parsed
                .as_ref()
                .is_some_and(|p| (0..p.statements.len()).any(|i| guard::is_drop_table(p, i)));
            let snapshot = self.snapshot(sectioned);
            self.savepoint()?;
            let result = match &parsed {
                Some(p) => self.execute_inner(schema, sql, p.statements.len() == 1, p, &[], limit),
                None => Ok(ExecOutcome::default()),
            }
            .and_then(|out| {
                for (action, check) in checks {
                    self.prepare_check(schema, check)
                        .map_err(|e| in_action(e, action))?;
                }
                Ok(out)
            });
            self.finish_tx(result, snapshot)
        })
    }

    /// Compile `sql` in `schema` as a statement of the block would run, without running it:
    /// the guard's rewrite on the current tables, then SQLite's prepare under the
    /// authorizer. A deploy uses it so an action naming a table or column its schema lacks
    /// is refused at deploy, not at its first call. Nothing is executed or metered.
    pub fn prepare_check(&mut self, schema: &str, sql: &str) -> Result<(), SqlError> {
        self.alive()?;
        let parsed = guard::parse(sql)?;
        let mode = Mode::Write {
            schema: schema.into(),
            ctes: Default::default(),
        };
        for index in 0..parsed.statements.len() {
            let rewritten = {
                let catalog = ConnCatalog {
                    conn: self.conn,
                    auth: self.auth,
                    mode: mode.clone(),
                };
                guard::rewrite(sql, &parsed, index, schema, false, &catalog)?
            };
            self.auth.set_mode(Mode::Write {
                schema: Arc::clone(&rewritten.schema),
                ctes: rewritten.ctes.clone(),
            });
            let prepared = self
                .conn
                .prepare(&format!("/* {schema} */ {}", rewritten.sql))
                .map(drop);
            let denial = self.auth.take_denial();
            self.auth.take_compiled();
            self.auth.take_created();
            self.auth.set_mode(Mode::Internal);
            if let Some(d) = denial {
                return Err(d);
            }
            prepared?;
        }
        Ok(())
    }

    /// Run one statement (through the rewrite cache) inside the open savepoint.
    fn run_one_cached(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        limit: u64,
        out: &mut ExecOutcome,
    ) -> Result<(), SqlError> {
        let cached = self.cache.borrow().get(schema, sql).cloned();
        let rewritten = match cached {
            Some(c) => Arc::clone(&c.rewritten),
            None => {
                let parsed = guard::parse(sql)?;
                if parsed.statements.len() != 1 {
                    return Err(SqlError::Refused {
                        construct: format!("{} statements in one", parsed.statements.len()),
                        reason: "each statement of an action runs on its own".into(),
                    });
                }
                let mut rewritten = {
                    let catalog = ConnCatalog {
                        conn: self.conn,
                        auth: self.auth,
                        mode: Mode::Write {
                            schema: schema.into(),
                            ctes: Default::default(),
                        },
                    };
                    guard::rewrite(sql, &parsed, 0, schema, false, &catalog)?
                };
                rewritten.exec_sql = format!("/* {schema} */ {}", rewritten.sql);
                let rewritten = Arc::new(rewritten);
                if matches!(rewritten.kind, Kind::Query | Kind::Dml) {
                    self.cache
                        .borrow_mut()
                        .insert(schema, sql, Arc::clone(&rewritten));
                }
                rewritten
            }
        };
        self.run_rewritten(schema, &rewritten, params, limit, out)
    }
}

/// Name the action in an error about one of its statements (`no such column: x` becomes
/// `action add_note: no such column: x`), keeping its kind.
pub(super) fn in_action(e: SqlError, action: &str) -> SqlError {
    match e {
        SqlError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(
                code,
                Some(format!(
                    "action {action}: {}",
                    message.unwrap_or_else(|| code.to_string())
                )),
            ))
        }
        SqlError::Refused { construct, reason } => SqlError::Refused {
            construct: format!("{construct} in action {action}"),
            reason,
        },
        other => other,
    }
}
