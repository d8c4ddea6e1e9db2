//! The statement guard: read user SQL exactly as SQLite will (`syntax`), refuse what is not
//! deterministic, place names in their schema, add the guaranteed ordering and the write
//! meter. SQLite's authorizer (`authorizer.rs`) then judges what SQLite itself compiled.
//!
//! The guard never prints SQL anew. It changes the user's text only by replacing a name
//! token with its physical name and by inserting text between tokens, and before the text
//! goes to SQLite it checks that the result tokenizes to exactly the user's tokens plus
//! those changes: what SQLite runs is what the guard judged.
//!
//! This module holds the entry (`rewrite`) and the walk of a statement; each job the walk calls on has its own
//! file: `names` (where every name lives), `checks` (constructs refused by their text), `ordering` (guaranteed
//! ordering), `write_meter` (the meter in a write's WHERE) and `text` (the edits and their token check). They
//! are `impl Guard` blocks reading this module's names (`use super::*`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use crate::authorizer::{refused, why_not, ALLOWED_FUNCTIONS, ALLOWED_PRAGMAS};
use crate::names::{canonical_object_name, physical_name, validate_schema_name};
use crate::syntax;
use crate::syntax::ast::*;
use crate::syntax::parser::grow;
use crate::syntax::token::{self, Tk, Token};
pub(crate) use crate::syntax::Parsed;
use crate::SqlError;

mod checks;
mod names;
mod ordering;
mod text;
mod write_meter;

use self::checks::*;
use self::ordering::*;
use self::text::*;

/// Most SELECTs a compound may join (the engine sets SQLITE_LIMIT_COMPOUND_SELECT to it).
pub(crate) const MAX_COMPOUND: usize = 100;

/// Parse SQL text the way SQLite reads it.
pub(crate) fn parse(sql: &str) -> Result<Parsed, SqlError> {
    syntax::parse(sql)
}

/// Whether statement `i` of `parsed` is a DROP TABLE (its rows are deleted first).
pub(crate) fn is_drop_table(parsed: &Parsed, i: usize) -> bool {
    matches!(
        &parsed.statements[i].body,
        Body::Drop(Drop {
            kind: DropKind::Table,
            ..
        })
    )
}

/// What a rewritten statement is, as far as the engine cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SELECT or a read-only PRAGMA.
    Query,
    /// INSERT, UPDATE or DELETE.
    Dml,
    /// CREATE TABLE / INDEX / VIEW, DROP INDEX / VIEW: recorded as a DDL record.
    Ddl,
    /// DROP TABLE: its rows are deleted first so the changeset shows them going.
    DropTables {
        /// Physical names of the tables.
        tables: Vec<String>,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
}

/// Looks up facts about the current database the rewrite depends on.
pub(crate) trait Catalog {
    /// Primary-key columns of a physical table in key order; `None` if it is not a table
    /// (a view, a CTE) or does not exist.
    fn primary_key(&self, physical: &str) -> Option<Vec<String>>;
    /// Number of result columns of a SELECT using the CTE names `ctes`, or why it does
    /// not prepare.
    fn column_count(&self, sql: &str, ctes: &BTreeSet<String>) -> Result<usize, SqlError>;
    /// The first column of a physical table or view, if it exists.
    fn first_column(&self, _physical: &str) -> Option<String> {
        None
    }
    /// How many columns `SELECT *` gives of a physical table or view, if it exists.
    fn table_width(&self, _physical: &str) -> Option<usize> {
        None
    }
}

/// One statement after the guard: SQLite-ready text and its kind.
#[derive(Clone, Debug)]
pub(crate) struct Rewritten {
    /// The statement's text with physical names, ordering and meter.
    pub sql: String,
    pub kind: Kind,
    /// CTE names the statement defines (the authorizer must let it read them).
    pub ctes: BTreeSet<String>,
    /// The text actually prepared (the caller may prefix it); defaults to `sql`.
    pub exec_sql: String,
    /// The schema it was rewritten for.
    pub schema: Arc<str>,
    /// A single-row `INSERT ... VALUES` of literals and placeholders with no conflict
    /// clause, upsert or RETURNING: a candidate to run without a savepoint.
    pub single_row_insert: bool,
    /// For a candidate, the proven bound on its VM steps (None: not provable), worked
    /// out from its compiled program on first use (see `program.rs`). Valid as long as
    /// the database schema is, which is as long as the cache holding this entry.
    pub step_bound: OnceLock<Option<u64>>,
    /// The statement is an UPDATE or DELETE with RETURNING, to which the guard appended
    /// this many key columns of the target: the engine sorts the returned rows by them
    /// and drops them, so the rows come in key order whatever order SQLite visited them.
    pub returning_keys: usize,
    /// Physical names of the tables and views the statement names, sorted.
    pub tables: Vec<String>,
    /// The names its tables go by in query plans (alias or user-visible name), with
    /// their physical names.
    pub aliases: BTreeMap<String, String>,
    /// The physical table the statement writes (INSERT, UPDATE, DELETE).
    pub written: Option<String>,
    /// Rows of an `INSERT ... VALUES`.
    pub values_rows: u64,
    /// A PRAGMA whose rows name indexes or tables: the engine gives them back under
    /// their names in the schema, not their physical names.
    pub names_in_results: bool,
}

/// Guard and rewrite statement `index` of `parsed` (from SQL text `sql`) for `schema`.
/// `read_only` allows queries only.
pub(crate) fn rewrite(
    sql: &str,
    parsed: &Parsed,
    index: usize,
    schema: &str,
    read_only: bool,
    catalog: &dyn Catalog,
) -> Result<Rewritten, SqlError> {
    let stmt = &parsed.statements[index];
    let mut g = Guard {
        sql,
        toks: &parsed.tokens,
        schema,
        catalog,
        meter: false,
        depth: 0,
        representative: 0,
        edits: Vec::new(),
        seq: 0,
        scopes: Vec::new(),
        ctes: BTreeSet::new(),
        tables: BTreeSet::new(),
        aliases: BTreeMap::new(),
    };
    let kind = classify(stmt, read_only)?;
    let mut out = RewriteFacts::default();
    g.meter = kind == Kind::Dml;
    let kind = grow(|| g.statement(stmt, kind, &mut out))?;
    if !read_only {
        // Everything a transaction runs is public: its rows land in its record and its copies in tables anyone
        // may read. So a write, DDL (a view's body included) or an action's statement reads only its own schema;
        // otherwise `INSERT INTO mine SELECT * FROM victim.t`, or a view or public action over `victim.t`, would
        // hand a private schema to anyone. Ad-hoc reads may name other schemas, each checked by the API.
        if let Some((other, table)) = g
            .tables
            .iter()
            .filter_map(|t| crate::names::split_physical(t))
            .find(|(s, _)| *s != schema)
        {
            return Err(SqlError::Refused {
                construct: format!("reading {other}.{table} from schema {schema}"),
                reason:
                    "a write, a view or an action reads only its own schema (another schema may be \
                         private; read it with its own owner's signed query)"
                        .into(),
            });
        }
    }
    let text = g.apply(stmt.first, stmt.last)?;
    Ok(Rewritten {
        exec_sql: text.clone(),
        sql: text,
        kind,
        ctes: g.ctes,
        schema: schema.into(),
        single_row_insert: out.single_row_insert,
        step_bound: OnceLock::new(),
        returning_keys: out.returning_keys,
        tables: g.tables.into_iter().collect(),
        aliases: g.aliases,
        written: out.written,
        values_rows: out.values_rows,
        names_in_results: out.names_in_results,
    })
}

#[derive(Default)]
struct RewriteFacts {
    single_row_insert: bool,
    returning_keys: usize,
    written: Option<String>,
    values_rows: u64,
    names_in_results: bool,
}

fn classify(stmt: &Stmt, read_only: bool) -> Result<Kind, SqlError> {
    let kind = match &stmt.body {
        Body::Select(_) | Body::Pragma(_) => Kind::Query,
        Body::Insert(_) | Body::Update(_) | Body::Delete(_) => Kind::Dml,
        Body::CreateTable(_) | Body::CreateIndex(_) | Body::CreateView(_) => Kind::Ddl,
        Body::Drop(d) if d.kind == DropKind::Table => Kind::DropTables {
            tables: Vec::new(),
            if_exists: d.if_exists,
        },
        Body::Drop(_) => Kind::Ddl,
        Body::Unsupported(what) => {
            return Err(match what.as_str() {
                "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => refused(
                    "transaction control",
                    "each transaction is atomic already; BEGIN/COMMIT/SAVEPOINT are not needed",
                ),
                "ATTACH" | "DETACH" => refused(what.as_str(), "one database file per node"),
                "CREATE TRIGGER" | "DROP TRIGGER" => {
                    refused(what.as_str(), "triggers are not supported")
                }
                "ALTER TABLE" => refused(
                    "ALTER TABLE",
                    "ALTER TABLE is not supported; create a new table",
                ),
                "ANALYZE" => refused("ANALYZE", "statistics would change query plans"),
                "CREATE VIRTUAL TABLE" => {
                    refused("CREATE VIRTUAL TABLE", "virtual tables are not supported")
                }
                other => refused(other, "statement kind is not supported"),
            })
        }
    };
    if read_only && kind != Kind::Query {
        return Err(refused(
            "a write or DDL statement",
            "read requests may only run SELECT",
        ));
    }
    Ok(kind)
}

struct Guard<'a> {
    sql: &'a str,
    toks: &'a [Token],
    schema: &'a str,
    catalog: &'a dyn Catalog,
    /// The statement writes (or defines a view, which writes may read): every SELECT core
    /// in it gets the meter.
    meter: bool,
    /// How many queries enclose the current one (0: the statement's own).
    depth: u32,
    /// How many enclosing places make SQLite pick one of several values that compare
    /// equal (DISTINCT or compound result columns, GROUP BY, min/max/group_concat and
    /// DISTINCT aggregate arguments): a non-BINARY collation there lets the plan choose.
    representative: u32,
    edits: Vec<Edit>,
    seq: u32,
    /// CTE names in scope, innermost last, with a column that names each (for the meter).
    scopes: Vec<BTreeMap<String, Option<String>>>,
    /// Every CTE name of the statement (for the authorizer).
    ctes: BTreeSet<String>,
    /// Physical names of the tables and views named.
    tables: BTreeSet<String>,
    /// The names a statement's tables go by in query plans (alias or user-visible name),
    /// with their physical names.
    aliases: BTreeMap<String, String>,
}

/// A FROM item as the ordering and the meter see it.
struct Item {
    /// The name to qualify its columns with (alias, or the user-visible name).
    qualifier: String,
    /// Its primary key, for a table.
    key: Option<Vec<String>>,
    /// A column that can name it in the meter, if any.
    column: Option<String>,
}

impl Guard<'_> {
    fn statement(
        &mut self,
        stmt: &Stmt,
        kind: Kind,
        out: &mut RewriteFacts,
    ) -> Result<Kind, SqlError> {
        match &stmt.body {
            Body::Select(s) => {
                self.select(s, Need::Order)?;
                self.keep_column_names(s);
            }
            Body::Insert(ins) => self.insert_stmt(ins, out)?,
            Body::Update(u) => self.update(u, out)?,
            Body::Delete(d) => self.delete(d, out)?,
            Body::CreateTable(ct) => self.create_table(ct)?,
            Body::CreateIndex(ci) => {
                self.rename_own(&ci.name)?;
                let table = self.rename_token(&ci.table, self.schema)?;
                self.tables.insert(table);
                for term in &ci.columns {
                    self.expr(&term.expr)?;
                }
                if let Some(w) = &ci.where_ {
                    self.expr(w)?;
                }
            }
            Body::CreateView(cv) => {
                if cv.temp {
                    return Err(refused(
                        "CREATE TEMP VIEW",
                        "temporary objects are not supported",
                    ));
                }
                self.rename_own(&cv.name)?;
                // A write may read the view, and SQLite copies the view's query into the
                // write's: its loops need the meter too, naming its tables, since they may
                // end up inside the write's own loops.
                self.meter = true;
                self.depth = 1;
                self.select(&cv.select, Need::Nothing)?;
            }
            Body::Drop(d) => {
                let physical = self.rename_own(&d.name)?;
                if let Kind::DropTables { if_exists, .. } = kind {
                    return Ok(Kind::DropTables {
                        tables: vec![physical],
                        if_exists,
                    });
                }
            }
            Body::Pragma(p) => {
                self.pragma(p)?;
                out.names_in_results = matches!(
                    p.name.name.text.to_ascii_lowercase().as_str(),
                    "index_list" | "foreign_key_list"
                );
            }
            Body::Unsupported(_) => unreachable!("classify refuses unsupported statements"),
        }
        Ok(kind)
    }

    fn insert_stmt(&mut self, ins: &Insert, out: &mut RewriteFacts) -> Result<(), SqlError> {
        if ins.or.as_deref() == Some("ROLLBACK") {
            return Err(rollback_resolution_refused());
        }
        let pushed = self.with(ins.with.as_ref())?;
        let physical = self.rename_own(&ins.table)?;
        if ins.alias.is_none() {
            // `INSERT INTO "s.t" AS "t"`, so an upsert's `t.col` still resolves.
            let user = canonical_object_name(&ins.table.name.text)?;
            self.insert(
                ins.table.last(),
                Place::Alias,
                format!(" AS {} ", quote_ident(&user)),
            );
        }
        for c in &ins.columns {
            if is_rowid_name(&c.text) {
                return Err(rowid_refused(&c.text));
            }
        }
        if let Some(source) = &ins.source {
            // The source's order decides which row wins an OR IGNORE conflict and which
            // automatic keys rows get.
            self.select(source, Need::Order)?;
            if let [Core::Values { rows, .. }] = source.cores.as_slice() {
                out.values_rows = rows.len() as u64;
            }
        }
        for u in &ins.upserts {
            for t in &u.target {
                self.expr(&t.expr)?;
            }
            if let Some(w) = &u.target_where {
                self.expr(w)?;
            }
            self.assignments(&u.set)?;
            if let Some(w) = &u.where_ {
                self.expr(w)?;
            }
        }
        if let Some(r) = &ins.returning {
            self.result_columns(&r.columns)?;
            self.returning_names(r, &ins.table)?;
        }
        self.pop(pushed);
        out.single_row_insert = is_plain_single_row_insert(ins);
        out.written = Some(physical);
        Ok(())
    }

    fn assignments(&mut self, set: &[Assignment]) -> Result<(), SqlError> {
        for a in set {
            for c in &a.columns {
                if is_rowid_name(&c.text) {
                    return Err(rowid_refused(&c.text));
                }
            }
            self.expr(&a.value)?;
        }
        Ok(())
    }

    fn update(&mut self, u: &Update, out: &mut RewriteFacts) -> Result<(), SqlError> {
        if u.or.as_deref() == Some("ROLLBACK") {
            return Err(rollback_resolution_refused());
        }
        let pushed = self.with(u.with.as_ref())?;
        let (physical, target) = self.target(&u.table, u.alias.as_ref(), u.indexed_by.as_ref())?;
        self.assignments(&u.set)?;
        if u.from.is_some() {
            return Err(refused(
                "UPDATE ... FROM",
                "where several rows of FROM match a row, SQLite writes whichever the query \
                 plan meets; set the value from a subquery, which is ordered by key: \
                 SET v = (SELECT o.v FROM o WHERE o.id = t.id)",
            ));
        }
        let items = vec![target];
        if let Some((_, w)) = &u.where_ {
            self.expr(w)?;
        }
        self.gate(&items, u.where_.as_ref(), u.set_last)?;
        if let Some(r) = &u.returning {
            self.returning_in_key_order(r, &items[0], out)?;
            self.returning_names(r, &u.table)?;
        }
        self.pop(pushed);
        out.written = Some(physical);
        Ok(())
    }

    fn delete(&mut self, d: &Delete, out: &mut RewriteFacts) -> Result<(), SqlError> {
        let pushed = self.with(d.with.as_ref())?;
        let (physical, target) = self.target(&d.table, d.alias.as_ref(), d.indexed_by.as_ref())?;
        let name_end = d
            .indexed_by
            .as_ref()
            .map_or(d.alias.as_ref().map_or(d.table.last(), |a| a.tok), |i| {
                i.tok
            });
        if let Some((_, w)) = &d.where_ {
            self.expr(w)?;
        }
        let items = vec![target];
        self.gate(&items, d.where_.as_ref(), name_end)?;
        if let Some(r) = &d.returning {
            self.returning_in_key_order(r, &items[0], out)?;
            self.returning_names(r, &d.table)?;
        }
        self.pop(pushed);
        out.written = Some(physical);
        Ok(())
    }

    /// Guard a query. `need` says whether its row order must be defined here.
    fn select(&mut self, s: &Select, need: Need) -> Result<(), SqlError> {
        grow(|| self.select_inner(s, need))
    }

    fn select_inner(&mut self, s: &Select, need: Need) -> Result<(), SqlError> {
        self.depth += 1;
        let r = self.select_body(s, need);
        self.depth -= 1;
        r
    }

    fn select_body(&mut self, s: &Select, need: Need) -> Result<(), SqlError> {
        if s.cores.len() > MAX_COMPOUND {
            // SQLite refuses these too (SQLITE_LIMIT_COMPOUND_SELECT); judging them here
            // refuses them at CheckTx, before they take a block slot.
            return Err(refused(
                format!("a compound SELECT of {} parts", s.cores.len()),
                format!("the limit is {MAX_COMPOUND}"),
            ));
        }
        let pushed = self.with(s.with.as_ref())?;
        let mut first_items = Vec::new();
        let compound = s.cores.len() > 1;
        for (i, core) in s.cores.iter().enumerate() {
            let items = self.core(core, compound)?;
            if i == 0 {
                first_items = items;
            }
        }
        if let Some(ob) = &s.order_by {
            for t in &ob.terms {
                self.expr(&t.expr)?;
            }
            let mut calls = Vec::new();
            for t in &ob.terms {
                collect_order_sensitive(&t.expr, &mut calls);
            }
            for f in calls {
                self.tie_break(&f, &first_items)?;
            }
            // The order of groups may not rest on a value SQLite takes from any row (one
            // row, without GROUP BY, has no order to rest on).
            if let [Core::Select(c)] = s.cores.as_slice() {
                if is_aggregate_query(c) && !c.group_by.is_empty() {
                    let grouped: Vec<Vec<&str>> = c
                        .group_by
                        .iter()
                        .map(|e| self.token_texts(e.first, e.last))
                        .collect();
                    let aliases = result_aliases(c);
                    for t in &ob.terms {
                        if !matches!(t.expr.kind, ExprKind::Literal(Lit::Integer)) {
                            self.bare_columns_grouped(&t.expr, &grouped, &aliases)?;
                        }
                    }
                }
            }
        }
        for e in &s.limit_exprs {
            self.expr(e)?;
        }
        // LIMIT picks rows, so the order decides the result wherever one is written.
        if need == Need::Order || (s.limit.is_some() && need != Need::Never) {
            self.add_ordering(s, &first_items)?;
        }
        self.pop(pushed);
        Ok(())
    }

    /// Guard one core; returns its FROM items.
    fn core(&mut self, core: &Core, compound: bool) -> Result<Vec<Item>, SqlError> {
        match core {
            Core::Values { rows, .. } => {
                self.representative += u32::from(compound);
                let checked = rows.iter().flatten().try_for_each(|e| self.expr(e));
                self.representative -= u32::from(compound);
                checked?;
                Ok(Vec::new())
            }
            Core::Select(c) => {
                if c.window {
                    return Err(refused(
                        "WINDOW clause",
                        "window functions are not supported",
                    ));
                }
                let items = match &c.from {
                    Some(from) => self.from(&from.items)?,
                    None => Vec::new(),
                };
                let picks = c.distinct || compound || !c.group_by.is_empty();
                self.representative += u32::from(picks);
                let checked = self.result_columns(&c.columns);
                self.representative -= u32::from(picks);
                checked?;
                if let Some((_, w)) = &c.where_ {
                    self.expr(w)?;
                }
                self.representative += 1;
                let checked = c.group_by.iter().try_for_each(|e| self.expr(e));
                self.representative -= 1;
                checked?;
                if let Some(h) = &c.having {
                    self.expr(h)?;
                }
                self.aggregates_are_determined(c, &items)?;
                if let Some(from) = &c.from {
                    self.gate(&items, c.where_.as_ref(), from.last)?;
                }
                Ok(items)
            }
        }
    }

    fn result_columns(&mut self, cols: &[ResultColumn]) -> Result<(), SqlError> {
        for c in cols {
            if let ResultColumn::Expr { expr, .. } = c {
                self.expr(expr)?;
            }
        }
        Ok(())
    }

    /// Rename and alias every FROM item (nested joins flattened); returns them in order.
    fn from(&mut self, items: &[FromItem]) -> Result<Vec<Item>, SqlError> {
        let mut out = Vec::new();
        for item in items {
            match &item.source {
                Source::Table(name) => {
                    if self.is_cte(name) {
                        let lower = name.name.text.to_ascii_lowercase();
                        let column = self
                            .scopes
                            .iter()
                            .rev()
                            .find_map(|s| s.get(&lower))
                            .cloned()
                            .flatten();
                        out.push(Item {
                            qualifier: item.alias.as_ref().map_or(lower, |a| a.text.clone()),
                            key: None,
                            column,
                        });
                    } else {
                        let physical = self.rename(name)?;
                        let user = canonical_object_name(&name.name.text)?;
                        let qualifier = match &item.alias {
                            Some(a) => a.text.clone(),
                            None => {
                                self.insert(
                                    item.alias_at,
                                    Place::Alias,
                                    format!(" AS {} ", quote_ident(&user)),
                                );
                                user
                            }
                        };
                        if let Some(ix) = &item.indexed_by {
                            let schema = name
                                .schema
                                .as_ref()
                                .map_or(self.schema.to_owned(), |s| s.text.clone());
                            self.rename_token(ix, &schema)?;
                        }
                        self.aliases.insert(qualifier.clone(), physical.clone());
                        let key = self.catalog.primary_key(&physical);
                        // A view has no key, but any column of it names it for the meter.
                        let column = match &key {
                            Some(k) => k.first().cloned(),
                            None => self.catalog.first_column(&physical),
                        };
                        out.push(Item {
                            qualifier,
                            key,
                            column,
                        });
                    }
                }
                Source::Function(name) => {
                    return Err(refused(
                        format!("table-valued function {}()", name.name.text),
                        "only tables, views and CTEs can be read",
                    ))
                }
                Source::Subquery(s) => {
                    self.select(s, Need::Nothing)?;
                    out.push(Item {
                        qualifier: item
                            .alias
                            .as_ref()
                            .map_or(String::new(), |a| a.text.clone()),
                        key: None,
                        column: first_column(s),
                    });
                }
                Source::Nested(f) => out.extend(self.from(&f.items)?),
            }
            if let Some(on) = &item.on {
                self.expr(on)?;
            }
        }
        Ok(out)
    }

    /// Guard an expression tree.
    fn expr(&mut self, e: &Expr) -> Result<(), SqlError> {
        grow(|| self.expr_inner(e))
    }

    fn expr_inner(&mut self, e: &Expr) -> Result<(), SqlError> {
        match &e.kind {
            ExprKind::Literal(Lit::Integer) if integer_literal_overflows(self.tok_text(e.first)) => {
                return Err(big_integer_refused(self.tok_text(e.first)))
            }
            // `-9223372036854775808` is the smallest integer: SQLite reads the minus and the
            // literal together.
            ExprKind::Unary(Unary::Neg, inner)
                if matches!(inner.kind, ExprKind::Literal(Lit::Integer))
                    && digits(self.tok_text(inner.first)) == "9223372036854775808" =>
            {
                return Ok(());
            }
            ExprKind::Collate(_, name)
                if self.representative > 0 && !name.text.eq_ignore_ascii_case("binary") =>
            {
                return Err(collation_refused(&name.text))
            }
            ExprKind::Literal(Lit::Float) => {
                return Err(refused(
                    format!("REAL literal {}", self.tok_text(e.first)),
                    "dstorage has no floating point; use integers",
                ))
            }
            ExprKind::Literal(Lit::CurrentTime) => {
                let what = self.tok_text(e.first).to_ascii_lowercase();
                return Err(refused(what.clone(), why_not(&what)));
            }
            ExprKind::Column { column, .. } if is_rowid_name(&column.text) => {
                return Err(rowid_refused(&column.text))
            }
            ExprKind::Function(f) => {
                self.function(f)?;
                let name = f.name.text.to_ascii_lowercase();
                if f.distinct
                    || matches!(name.as_str(), "min" | "max" | "group_concat" | "string_agg")
                {
                    self.representative += 1;
                    let mut result = Ok(());
                    for_each_child(e, &mut |child| {
                        if result.is_ok() {
                            result = self.expr(child);
                        }
                    });
                    self.representative -= 1;
                    return result;
                }
            }
            ExprKind::Cast(_, ty) => {
                // An empty type name (`""`, `[]`) casts with NUMERIC affinity in SQLite; only a
                // column declared without a type is BLOB.
                let aff = match ty.text().as_str() {
                    "" => "NUMERIC",
                    t => affinity(t),
                };
                if aff == "REAL" || aff == "NUMERIC" {
                    return Err(refused(
                        format!("CAST AS {}", ty.text()),
                        format!(
                            "it converts with {aff} affinity, which can make floating-point \
                             values; CAST AS INTEGER, TEXT or BLOB"
                        ),
                    ));
                }
            }
            ExprKind::Binary(_, Binary::Ptr, _) => {
                return Err(refused(
                    "-> and ->>",
                    "JSON functions are not supported yet; store JSON as TEXT and parse it in the client",
                ))
            }
            ExprKind::Like { op, .. } if op == "REGEXP" || op == "MATCH" => {
                return Err(refused(
                    op.clone(),
                    "no such function in dstorage; use LIKE or GLOB",
                ))
            }
            ExprKind::Raise => {
                return Err(refused("RAISE()", "only triggers may raise, and triggers are not supported"))
            }
            ExprKind::Subquery(s) => {
                // A scalar subquery yields its first row: its order decides the value.
                return self.select(s, Need::Order);
            }
            // EXISTS is true or false whatever order its rows come in, LIMIT or not.
            ExprKind::Exists(s) => return self.select(s, Need::Never),
            ExprKind::InSelect { expr, select, .. } => {
                self.expr(expr)?;
                return self.select(select, Need::Nothing);
            }
            ExprKind::InTable {
                expr, table, args, ..
            } => {
                self.expr(expr)?;
                if args.is_some() {
                    return Err(refused(
                        format!("table-valued function {}()", table.name.text),
                        "only tables, views and CTEs can be read",
                    ));
                }
                if !self.is_cte(table) {
                    self.rename(table)?;
                }
                return Ok(());
            }
            _ => {}
        }
        let mut result = Ok(());
        for_each_child(e, &mut |child| {
            if result.is_ok() {
                result = self.expr(child);
            }
        });
        result
    }

    fn function(&mut self, f: &Function) -> Result<(), SqlError> {
        let name = f.name.text.to_ascii_lowercase();
        if !ALLOWED_FUNCTIONS.contains(&name.as_str()) {
            return Err(refused(format!("{name}()"), why_not(&name)));
        }
        if f.over {
            return Err(refused(
                format!("{name}() OVER"),
                "window functions are not supported",
            ));
        }
        Ok(())
    }
}

/// Call `f` on each expression written directly in a query (its cores' columns, FROM
/// conditions, WHERE, GROUP BY, HAVING, ORDER BY, LIMIT), not inside nested queries.
fn for_each_expr_of_select<'e>(s: &'e Select, f: &mut dyn FnMut(&'e Expr)) {
    fn from_items<'e>(items: &'e [FromItem], f: &mut dyn FnMut(&'e Expr)) {
        for item in items {
            if let Some(on) = &item.on {
                f(on);
            }
            if let Source::Nested(n) = &item.source {
                from_items(&n.items, f);
            }
        }
    }
    for core in &s.cores {
        match core {
            Core::Select(c) => {
                for col in &c.columns {
                    if let ResultColumn::Expr { expr, .. } = col {
                        f(expr);
                    }
                }
                if let Some(from) = &c.from {
                    from_items(&from.items, f);
                }
                if let Some((_, w)) = &c.where_ {
                    f(w);
                }
                c.group_by.iter().for_each(&mut *f);
                if let Some(h) = &c.having {
                    f(h);
                }
            }
            Core::Values { rows, .. } => rows.iter().flatten().for_each(&mut *f),
        }
    }
    if let Some(ob) = &s.order_by {
        ob.terms.iter().for_each(|t| f(&t.expr));
    }
    s.limit_exprs.iter().for_each(&mut *f);
}

/// Call `f` on each direct sub-expression of `e` (not on subqueries' contents).
fn for_each_child<'e>(e: &'e Expr, f: &mut dyn FnMut(&'e Expr)) {
    match &e.kind {
        ExprKind::Literal(_) | ExprKind::Variable | ExprKind::Column { .. } | ExprKind::Raise => {}
        ExprKind::Unary(_, a) | ExprKind::NullTest(a, _) | ExprKind::Collate(a, _) => f(a),
        ExprKind::Cast(a, _) => f(a),
        ExprKind::Binary(a, _, b) => {
            f(a);
            f(b);
        }
        ExprKind::Like {
            lhs, rhs, escape, ..
        } => {
            f(lhs);
            f(rhs);
            if let Some(x) = escape {
                f(x);
            }
        }
        ExprKind::Between {
            expr, low, high, ..
        } => {
            f(expr);
            f(low);
            f(high);
        }
        ExprKind::InList { expr, list, .. } => {
            f(expr);
            list.iter().for_each(&mut *f);
        }
        ExprKind::InSelect { expr, .. } | ExprKind::InTable { expr, .. } => f(expr),
        ExprKind::Exists(_) | ExprKind::Subquery(_) => {}
        ExprKind::Case {
            operand,
            whens,
            else_,
        } => {
            if let Some(o) = operand {
                f(o);
            }
            for (w, t) in whens {
                f(w);
                f(t);
            }
            if let Some(x) = else_ {
                f(x);
            }
        }
        ExprKind::Function(func) => {
            func.args.iter().for_each(&mut *f);
            if let Some(ob) = &func.order_by {
                ob.terms.iter().for_each(|t| f(&t.expr));
            }
            if let Some(x) = &func.filter {
                f(x);
            }
        }
        ExprKind::Parens(list) => list.iter().for_each(f),
    }
}

/// A single-row `INSERT ... VALUES (...)` whose values are literals or placeholders, with
/// no statement-level conflict clause (`OR FAIL` keeps partial work, `OR REPLACE` deletes),
/// no upsert and no RETURNING. Only such a statement may skip the per-call savepoint,
/// and only once its compiled program is proven safe too (`program::step_bound`).
fn is_plain_single_row_insert(ins: &Insert) -> bool {
    if ins.or.is_some() || !ins.upserts.is_empty() || ins.returning.is_some() || ins.with.is_some()
    {
        return false;
    }
    let Some(source) = &ins.source else {
        return false;
    };
    if source.with.is_some() || source.order_by.is_some() || source.limit.is_some() {
        return false;
    }
    let [Core::Values { rows, .. }] = source.cores.as_slice() else {
        return false;
    };
    let literal = |e: &Expr| match &e.kind {
        ExprKind::Literal(_) | ExprKind::Variable => true,
        ExprKind::Unary(_, inner) => {
            matches!(inner.kind, ExprKind::Literal(_) | ExprKind::Variable)
        }
        _ => false,
    };
    rows.len() == 1 && rows[0].iter().all(literal)
}

#[cfg(test)]
mod tests_support {
    pub(super) use super::*;

    pub(super) struct NoCatalog;
    impl Catalog for NoCatalog {
        fn primary_key(&self, physical: &str) -> Option<Vec<String>> {
            match physical {
                "app.t" | "app.u" => Some(vec!["id".into()]),
                _ => None,
            }
        }
        fn column_count(&self, _sql: &str, _ctes: &BTreeSet<String>) -> Result<usize, SqlError> {
            Ok(2)
        }
    }

    pub(super) fn rw(sql: &str) -> Result<String, SqlError> {
        let parsed = parse(sql)?;
        rewrite(sql, &parsed, 0, "app", false, &NoCatalog).map(|r| r.sql)
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;

    #[test]
    fn the_rewrite_keeps_the_users_tokens_and_adds_names_order_and_meter() {
        assert_eq!(
            rw("SELECT - -1, 0x10, 1_000 FROM t").unwrap(),
            "SELECT - -1, 0x10, 1_000 FROM \"app.t\" AS \"t\"  ORDER BY \"t\".\"id\" "
        );
        assert_eq!(
            rw("UPDATE t SET v = v | 0x04 WHERE id = 1").unwrap(),
            "UPDATE \"app.t\" AS \"t\"  SET v = v | 0x04 WHERE dstorage_meter() AND (  id = 1 ) "
        );
        assert_eq!(
            rw("DELETE FROM t").unwrap(),
            "DELETE FROM \"app.t\" AS \"t\"  WHERE dstorage_meter() "
        );
    }

    #[test]
    fn a_comment_cannot_swallow_what_the_guard_adds() {
        let out = rw("SELECT id FROM t -- trailing\n").unwrap();
        assert!(out.ends_with("ORDER BY \"t\".\"id\"  -- trailing"), "{out}");
        let out = rw("SELECT id FROM t /* c */ LIMIT 1").unwrap();
        assert!(
            out.contains("ORDER BY \"t\".\"id\"  /* c */ LIMIT 1"),
            "{out}"
        );
    }

    #[test]
    fn floats_rowids_and_windows_are_refused() {
        for sql in [
            "SELECT 1.5",
            "SELECT 1e3",
            "SELECT rowid FROM t",
            "SELECT CAST(x AS REAL) FROM t",
            "SELECT CAST(x AS BOOLEAN) FROM t",
            "SELECT sum(id) OVER () FROM t",
            "SELECT name, max(id) FROM t",
            "SELECT group_concat(id) FROM t",
            "SELECT current_time",
            "SELECT grp, count(*) FROM t GROUP BY grp ORDER BY name",
            "SELECT count(*) AS n FROM t HAVING other > 1",
        ] {
            assert!(rw(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn aggregates_may_use_group_columns_aliases_and_positions() {
        for sql in [
            "SELECT grp, count(*) AS n FROM t GROUP BY grp HAVING n > 1 ORDER BY n DESC, grp",
            "SELECT grp + 1, max(id) FROM t GROUP BY grp + 1 ORDER BY 2",
            "SELECT count(*), sum(id) FROM t",
            "SELECT t.grp, count(*) FROM t GROUP BY grp",
        ] {
            assert!(rw(sql).is_ok(), "{sql}: {:?}", rw(sql));
        }
    }
}
