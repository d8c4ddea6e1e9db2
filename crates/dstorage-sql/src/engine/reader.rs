//! A reader: a read-only connection on committed state, for queries, estimates, text checks and the KV.

use super::*;

/// A read-only connection: committed state, guarded, ordered and metered like a block.
pub struct Reader {
    conn: Connection,
    auth: Authorizer,
    meter: Arc<Meter>,
    config: EngineConfig,
    /// The schema version the cached statements were prepared under (see `begin_read`).
    schema_version: Option<i64>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    pub(super) fn open(path: &Path, config: EngineConfig) -> Result<Reader, SqlError> {
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&mut conn, &config)?;
        let auth = Authorizer::new();
        auth.install(&mut conn)?;
        let meter = Meter::new();
        meter.install(&mut conn)?;
        // Estimates of write statements prepare them with the injected meter call.
        meter.install_function(&conn)?;
        crate::functions::install(&conn)?;
        Ok(Reader {
            conn,
            auth,
            meter,
            config,
            schema_version: None,
        })
    }

    /// Run one read-only statement (a SELECT or an allowed PRAGMA) in `schema`. SQL holding
    /// several statements is refused, not run: only one result could be answered, and the
    /// others would be charged and thrown away.
    pub fn query(
        &mut self,
        schema: &str,
        sql: &str,
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        self.query_with_params(schema, sql, &[], cost_limit)
    }

    /// Like [`Reader::query`], binding `params` to the placeholders of a single statement.
    pub fn query_with_params(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        self.config.check_sql_length(sql)?;
        let limit = cost_limit.min(self.config.cost_limit_per_tx);
        // One read transaction: the schema version and the statement see one snapshot.
        let opened = self.begin_read()?;
        let result = self
            .forget_stale_statements()
            .and_then(|()| with_sql_stack(|| self.query_inner(schema, sql, params, limit)));
        self.end_read(opened)?;
        result
    }

    /// Open a read transaction, unless one is open already ([`Reader::in_snapshot`]): then
    /// `false`, and the reads join it. The statements are cached: preparing `BEGIN` and
    /// `COMMIT` on every read was a measurable part of a signed read.
    fn begin_read(&mut self) -> Result<bool, SqlError> {
        if !self.conn.is_autocommit() {
            return Ok(false);
        }
        self.conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(true)
    }

    /// Close the read transaction [`Reader::begin_read`] opened.
    fn end_read(&mut self, opened: bool) -> Result<(), SqlError> {
        if opened {
            self.conn.prepare_cached("COMMIT")?.execute([])?;
        }
        Ok(())
    }

    /// Run `f` with this reader in one read transaction: its system KV lookups, queries and
    /// action statements all see the same committed state (a view action's height and
    /// rows, say), and pay for one transaction instead of one each.
    pub fn in_snapshot<T>(&mut self, f: impl FnOnce(&mut Reader) -> T) -> Result<T, SqlError> {
        let opened = self.begin_read()?;
        let out = f(self);
        self.end_read(opened)?;
        Ok(out)
    }

    /// Drop the cached statements when the committed schema changed since they were
    /// prepared. An expired statement prepares itself again inside its first step, after
    /// running two old instructions that the meter counts, so a reader that had seen the
    /// change would charge two steps more for the same read than a fresh one (the writer's
    /// twin is `Block::forget_statements`). Reading the version also loads the new schema,
    /// unmetered.
    fn forget_stale_statements(&mut self) -> Result<(), SqlError> {
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA schema_version")?
            .query_row([], |r| r.get(0))?;
        if self.schema_version != Some(version) {
            self.conn.flush_prepared_statement_cache();
            self.schema_version = Some(version);
        }
        Ok(())
    }

    fn query_inner(
        &mut self,
        schema: &str,
        sql: &str,
        params: &[Value],
        limit: u64,
    ) -> Result<QueryResult, SqlError> {
        require_schema(&self.conn, schema)?;
        let parsed = guard::parse(sql)?;
        let n = parsed.statements.len();
        if n != 1 {
            return Err(SqlError::Refused {
                construct: format!("a read of {n} statements"),
                reason: "a read runs exactly one statement; send each as its own read".into(),
            });
        }
        let rewritten = {
            let catalog = ConnCatalog {
                conn: &self.conn,
                auth: &self.auth,
                mode: Mode::Read {
                    ctes: Default::default(),
                },
            };
            guard::rewrite(sql, &parsed, 0, schema, true, &catalog)?
        };
        let step = run_guarded(
            &self.conn,
            &self.auth,
            &self.meter,
            Mode::Read {
                ctes: rewritten.ctes.clone(),
            },
            &rewritten.sql,
            params,
            Budget {
                used: 0,
                limit,
                result_bytes: self.config.max_result_bytes,
            },
        )?;
        let mut result = step.rows.unwrap_or_default();
        if rewritten.names_in_results {
            names_in_schema(&mut result, &rewritten.schema);
        }
        result.cost = step.cost;
        Ok(result)
    }

    /// The schemas whose tables and views a read of `sql` in `schema` names (its own
    /// included), sorted: what an access check must allow before the read runs (a read
    /// may name `other.table`). Guards the statement as [`Reader::query`] would, without
    /// running it. Views are named, not expanded: a view's own body is its schema's
    /// business.
    pub fn schemas_named(&mut self, schema: &str, sql: &str) -> Result<Vec<String>, SqlError> {
        self.config.check_sql_length(sql)?;
        let opened = self.begin_read()?;
        let result = self.forget_stale_statements().and_then(|()| {
            with_sql_stack(|| {
                require_schema(&self.conn, schema)?;
                let parsed = guard::parse(sql)?;
                let mut named = std::collections::BTreeSet::new();
                named.insert(schema.to_owned());
                for index in 0..parsed.statements.len() {
                    let catalog = ConnCatalog {
                        conn: &self.conn,
                        auth: &self.auth,
                        mode: Mode::Read {
                            ctes: Default::default(),
                        },
                    };
                    let rewritten = guard::rewrite(sql, &parsed, index, schema, true, &catalog)?;
                    for table in &rewritten.tables {
                        if let Some((s, _)) = crate::names::split_physical(table) {
                            named.insert(s.to_owned());
                        }
                    }
                }
                Ok(named.into_iter().collect())
            })
        });
        self.end_read(opened)?;
        result
    }

    /// Estimate the cost of `sql` (reads or writes) in `schema` on committed state.
    pub fn estimate(&mut self, schema: &str, sql: &str) -> Result<Estimate, SqlError> {
        with_sql_stack(|| {
            estimate::estimate(
                &self.conn,
                &self.auth,
                &self.meter,
                schema,
                sql,
                &self.config,
            )
        })
    }

    /// Judge every statement of `sql` (a transaction's or a deploy's) as if it ran in
    /// `schema`, by its text alone: the length limit, the schema name, parsing, and every
    /// rule of the guard that needs no table (statement kinds, functions, literals, table
    /// definitions, names). Nothing is prepared or run, so a statement that names a table
    /// an earlier one creates is judged like any other. An error here fails the same SQL in
    /// every state; errors that depend on state (unknown tables, constraints) only show
    /// when it runs.
    pub fn check(&self, schema: &str, sql: &str) -> Result<(), SqlError> {
        with_sql_stack(|| check_text(&self.config, schema, sql))
    }

    /// Committed system KV value.
    pub fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SqlError> {
        kv_get(&self.conn, &self.config, key)
    }

    /// Committed system KV pairs under `prefix`, sorted by key.
    pub fn kv_scan(&self, prefix: &[u8]) -> Result<KvPairs, SqlError> {
        kv_scan(&self.conn, &self.config, prefix)
    }

    /// Committed schemas with tables and columns.
    pub fn schemas(&self) -> Result<Vec<SchemaInfo>, SqlError> {
        schemas(&self.conn)
    }
}

/// A catalog that reads no table: the guard then judges a statement by its text alone.
/// It gives every table a one-column key, so no rule that needs a key (the write meter's
/// column of each joined table) refuses for want of one; what it answers only shapes the
/// rewritten text (ordering and meter terms), which `check_text` throws away.
pub(super) struct TextOnly;

impl Catalog for TextOnly {
    fn primary_key(&self, _physical: &str) -> Option<Vec<String>> {
        Some(vec!["key".to_owned()])
    }

    fn column_count(
        &self,
        _sql: &str,
        _ctes: &std::collections::BTreeSet<String>,
    ) -> Result<usize, SqlError> {
        Ok(1)
    }
}

/// See [`Reader::check`].
pub(crate) fn check_text(config: &EngineConfig, schema: &str, sql: &str) -> Result<(), SqlError> {
    config.check_sql_length(sql)?;
    validate_schema_name(schema)?;
    let parsed = guard::parse(sql)?;
    for index in 0..parsed.statements.len() {
        guard::rewrite(sql, &parsed, index, schema, false, &TextOnly)?;
    }
    Ok(())
}

#[cfg(test)]
impl Reader {
    /// [`Block::execute_unguarded`] for a reader: one read statement without the guard.
    pub(crate) fn query_unguarded(
        &mut self,
        sql: &str,
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        self.conn.execute_batch("BEGIN")?;
        let result = self.forget_stale_statements().and_then(|()| {
            run_guarded(
                &self.conn,
                &self.auth,
                &self.meter,
                Mode::Read {
                    ctes: Default::default(),
                },
                sql,
                &[],
                Budget {
                    used: 0,
                    limit: cost_limit,
                    result_bytes: self.config.max_result_bytes,
                },
            )
        });
        self.conn.execute_batch("COMMIT")?;
        Ok(result?.rows.unwrap_or_default())
    }
}

impl Reader {
    /// The configuration the reader was opened with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Run read-only `statements` in `schema` in one read transaction (one snapshot), each
    /// with its own parameters, their costs adding up under `cost_limit`; the rows of the
    /// last statement are returned. A view action runs this way.
    pub fn query_statements(
        &mut self,
        schema: &str,
        statements: &[(&str, &[Value])],
        cost_limit: u64,
    ) -> Result<QueryResult, SqlError> {
        for (sql, _) in statements {
            self.config.check_sql_length(sql)?;
        }
        let limit = cost_limit.min(self.config.cost_limit_per_tx);
        let opened = self.begin_read()?;
        let result = self.forget_stale_statements().and_then(|()| {
            with_sql_stack(|| {
                let mut used = 0u64;
                let mut last = QueryResult::default();
                for (sql, params) in statements {
                    let left = limit.saturating_sub(used);
                    last = self.query_inner(schema, sql, params, left)?;
                    used = used.saturating_add(last.cost);
                }
                last.cost = used;
                Ok(last)
            })
        });
        self.end_read(opened)?;
        result
    }
}
