//! The statement guard: read user SQL exactly as SQLite will (`syntax`), refuse what is not
//! deterministic, place names in their schema, add the guaranteed ordering and the write
//! meter. SQLite's authorizer (`authorizer.rs`) then judges what SQLite itself compiled.
//!
//! The guard never prints SQL anew. It changes the user's text only by replacing a name
//! token with its physical name and by inserting text between tokens, and before the text
//! goes to SQLite it checks that the result tokenizes to exactly the user's tokens plus
//! those changes: what SQLite runs is what the guard judged.

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

/// Aggregates whose result depends on input order: they must carry their own ORDER BY.
const ORDER_SENSITIVE_AGGREGATES: &[&str] = &["group_concat", "string_agg"];

/// Most SELECTs a compound may join (the engine sets SQLITE_LIMIT_COMPOUND_SELECT to it).
pub(crate) const MAX_COMPOUND: usize = 100;

/// Aggregate functions (with one argument for min/max).
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "group_concat", "string_agg"];

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

/// How a change is placed among others at the same spot (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    /// An alias right after a table name.
    Alias,
    /// `)` closing a WHERE expression wrapped behind the meter.
    CloseWhere,
    /// A new `WHERE dstorage_meter(...)`.
    NewWhere,
    /// ORDER BY terms (new clause or appended).
    Order,
    /// Anything else at the end of a clause.
    Tail,
}

#[derive(Clone, Debug)]
enum Edit {
    /// Replace tokens `first..=last` with `text`.
    Replace { first: Tix, last: Tix, text: String },
    /// Insert `text` after token `after`.
    Insert {
        after: Tix,
        place: Place,
        seq: u32,
        text: String,
    },
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

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// SQLite's column affinity for a declared type name (`sqlite3AffinityType`).
fn affinity(type_text: &str) -> &'static str {
    let t = type_text.to_ascii_uppercase();
    if t.contains("INT") {
        "INTEGER"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "TEXT"
    } else if t.contains("BLOB") || t.is_empty() {
        "BLOB"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    }
}

/// Allowed column types: (what SQLite must see, replacement text if it differs).
fn column_type(words: &[String]) -> Option<(&'static str, bool)> {
    match words {
        [w] => match w.as_str() {
            "INTEGER" => Some(("INTEGER", false)),
            "INT" | "BOOLEAN" | "BOOL" => Some(("INTEGER", true)),
            "TEXT" => Some(("TEXT", false)),
            "BLOB" => Some(("BLOB", false)),
            _ => None,
        },
        _ => None,
    }
}

fn is_rowid_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "rowid" || lower == "oid" || lower == "_rowid_"
}

fn rowid_refused(name: &str) -> SqlError {
    refused(
        name,
        "hidden rowids are not part of the replicated state; use the primary key",
    )
}

fn rollback_resolution_refused() -> SqlError {
    refused(
        "ROLLBACK conflict resolution",
        "it would abort the whole block; use ABORT (the default)",
    )
}

impl Guard<'_> {
    fn tok_text(&self, i: Tix) -> &str {
        self.toks[i].text(self.sql)
    }

    fn replace(&mut self, first: Tix, last: Tix, text: String) {
        self.edits.push(Edit::Replace { first, last, text });
    }

    fn insert(&mut self, after: Tix, place: Place, text: String) {
        self.seq += 1;
        self.edits.push(Edit::Insert {
            after,
            place,
            seq: self.seq,
            text,
        });
    }

    fn is_cte(&self, name: &QualName) -> bool {
        name.schema.is_none() && {
            let lower = name.name.text.to_ascii_lowercase();
            self.scopes.iter().any(|s| s.contains_key(&lower))
        }
    }

    /// Resolve a user-written object name to (schema, canonical object name).
    fn resolve(&self, name: &QualName) -> Result<(String, String), SqlError> {
        match &name.schema {
            None => Ok((
                self.schema.to_owned(),
                canonical_object_name(&name.name.text)?,
            )),
            Some(s) => {
                validate_schema_name(&s.text)?;
                Ok((s.text.clone(), canonical_object_name(&name.name.text)?))
            }
        }
    }

    /// Rename a table or view reference to its physical name; returns the physical name.
    fn rename(&mut self, name: &QualName) -> Result<String, SqlError> {
        let (s, t) = self.resolve(name)?;
        let physical = physical_name(&s, &t);
        self.replace(name.first(), name.last(), quote_ident(&physical));
        self.tables.insert(physical.clone());
        Ok(physical)
    }

    /// Rename an object the statement creates, drops or writes: it must be in the
    /// statement's own schema.
    fn rename_own(&mut self, name: &QualName) -> Result<String, SqlError> {
        let (s, t) = self.resolve(name)?;
        if s != self.schema {
            return Err(SqlError::CrossSchemaWrite {
                schema: self.schema.to_owned(),
                target: physical_name(&s, &t),
            });
        }
        self.rename(name)
    }

    /// Rename a single unqualified name token of the statement's schema (an index in
    /// INDEXED BY, the table of CREATE INDEX, a foreign key's parent).
    fn rename_token(&mut self, name: &Name, schema: &str) -> Result<String, SqlError> {
        let physical = physical_name(schema, &canonical_object_name(&name.text)?);
        self.replace(name.tok, name.tok, quote_ident(&physical));
        Ok(physical)
    }

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

    /// SQLite names an unaliased result column by its text; where the guard changed that
    /// text (a physical name, an added ORDER BY), alias the column with the user's own
    /// text so the name stays what the user wrote.
    fn keep_column_names(&mut self, s: &Select) {
        let Some(Core::Select(c)) = s.cores.first() else {
            return;
        };
        for col in &c.columns {
            let ResultColumn::Expr { expr, alias: None } = col else {
                continue;
            };
            let (first, last) = (expr.first, expr.last);
            let touched = self.edits.iter().any(|e| match e {
                Edit::Replace { first: f, .. } => (first..=last).contains(f),
                Edit::Insert { after, .. } => (first..last).contains(after),
            });
            if touched {
                let text = &self.sql[self.toks[first].start..self.toks[last].end];
                self.insert(last, Place::Tail, format!(" AS {} ", quote_ident(text)));
            }
        }
    }

    fn pragma(&mut self, p: &Pragma) -> Result<(), SqlError> {
        let pragma = p.name.name.text.to_ascii_lowercase();
        if p.assigns || p.name.schema.is_some() || !ALLOWED_PRAGMAS.contains(&pragma.as_str()) {
            return Err(refused(
                format!("PRAGMA {pragma}"),
                format!(
                    "only read-only schema pragmas with a table argument are allowed: {}",
                    ALLOWED_PRAGMAS.join(", ")
                ),
            ));
        }
        let Some(arg) = p.arg else {
            return Err(refused(
                format!("PRAGMA {pragma}"),
                "name the table or index: PRAGMA table_info('t')",
            ));
        };
        if !matches!(self.toks[arg].kind, Tk::String | Tk::Id) {
            return Err(refused(
                format!("PRAGMA {pragma}"),
                "the argument must name a table or index",
            ));
        }
        let name = canonical_object_name(&token::dequote(self.tok_text(arg)))?;
        let physical = physical_name(self.schema, &name);
        self.replace(arg, arg, quote_string(&physical));
        Ok(())
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

    /// RETURNING resolves a qualified column against the target's real name only (not
    /// its alias), so the user's `t.c` there must name the physical table.
    fn returning_names(&mut self, r: &Returning, table: &QualName) -> Result<(), SqlError> {
        let own = table.name.text.to_ascii_lowercase();
        let physical = {
            let (s, t) = self.resolve(table)?;
            physical_name(&s, &t)
        };
        let mut renames = Vec::new();
        for col in &r.columns {
            if let ResultColumn::Expr { expr, .. } = col {
                collect_qualified(expr, &own, &mut renames);
            }
        }
        for tok in renames {
            self.replace(tok, tok, quote_ident(&physical));
        }
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

    /// The target of an UPDATE or DELETE: renamed, aliased, with its key.
    fn target(
        &mut self,
        table: &QualName,
        alias: Option<&Name>,
        indexed_by: Option<&Name>,
    ) -> Result<(String, Item), SqlError> {
        let physical = self.rename_own(table)?;
        let user = canonical_object_name(&table.name.text)?;
        let qualifier = match alias {
            Some(a) => a.text.clone(),
            None => {
                self.insert(
                    table.last(),
                    Place::Alias,
                    format!(" AS {} ", quote_ident(&user)),
                );
                user
            }
        };
        if let Some(ix) = indexed_by {
            let schema = self.schema.to_owned();
            self.rename_token(ix, &schema)?;
        }
        self.aliases.insert(qualifier.clone(), physical.clone());
        let key = self.catalog.primary_key(&physical);
        let column = key.as_ref().and_then(|k| k.first().cloned());
        Ok((
            physical,
            Item {
                qualifier,
                key,
                column,
            },
        ))
    }

    /// RETURNING of an UPDATE or DELETE: append the target's key so the engine can sort.
    fn returning_in_key_order(
        &mut self,
        r: &Returning,
        target: &Item,
        out: &mut RewriteFacts,
    ) -> Result<(), SqlError> {
        self.result_columns(&r.columns)?;
        if let Some(key) = &target.key {
            // RETURNING reads only the target, and SQLite refuses qualified names there.
            let cols: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
            self.insert(r.last, Place::Tail, format!(", {} ", cols.join(", ")));
            out.returning_keys = key.len();
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

    /// Push the CTE names of `with` as a scope and check their bodies.
    fn with(&mut self, with: Option<&With>) -> Result<bool, SqlError> {
        let Some(with) = with else {
            return Ok(false);
        };
        let mut names = BTreeMap::new();
        for cte in &with.ctes {
            let name = cte.name.text.to_ascii_lowercase();
            if name.starts_with('_') || name.starts_with("sqlite") || name.contains('.') {
                return Err(refused(
                    format!("CTE name {name}"),
                    "CTE names may not start with _ or sqlite or contain a dot",
                ));
            }
            let column = match cte.columns.first() {
                Some(c) => Some(c.text.clone()),
                None => first_column(&cte.select),
            };
            names.insert(name.clone(), column);
            self.ctes.insert(name);
        }
        self.scopes.push(names);
        // A CTE's query may be copied into the query that reads it: count it as nested.
        self.depth += 1;
        let checked = with
            .ctes
            .iter()
            .try_for_each(|cte| self.select(&cte.select, Need::Nothing));
        self.depth -= 1;
        checked?;
        Ok(true)
    }

    fn pop(&mut self, pushed: bool) {
        if pushed {
            self.scopes.pop();
        }
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

    /// Put `dstorage_meter(...)` first in the WHERE of a core of a write statement, so a
    /// write past its budget fails with an ordinary error instead of being interrupted
    /// (see `Meter::tick`). SQLite evaluates a WHERE term in the innermost loop over the
    /// tables it names, so the call names a column of every FROM item; with one item it
    /// needs none (the function is not deterministic, so SQLite never hoists it out of the
    /// loop).
    fn gate(
        &mut self,
        items: &[Item],
        where_: Option<&(Tix, Expr)>,
        clause_end: Tix,
    ) -> Result<(), SqlError> {
        if !self.meter || items.is_empty() {
            return Ok(());
        }
        let mut args = Vec::new();
        // A query inside another may be copied into the outer one's loops (a view, a FROM
        // subquery, a CTE), where a call naming no table would run only once per outer
        // row: there it names its tables too, wherever it can.
        let nested = self.depth > 1;
        let nameable = items
            .iter()
            .all(|i| i.column.is_some() && !i.qualifier.is_empty());
        if items.len() > 1 || (nested && nameable) {
            for item in items {
                match (&item.column, item.qualifier.is_empty()) {
                    (Some(col), false) => args.push(format!(
                        "{}.{}",
                        quote_ident(&item.qualifier),
                        quote_ident(col)
                    )),
                    _ => {
                        return Err(refused(
                            "a join with a subquery, CTE or view in a write",
                            "the write meter must name a column of every joined item; join \
                             tables directly, or read the subquery into the statement another way",
                        ))
                    }
                }
            }
        }
        let call = format!("{}({})", crate::meter::METER_FUNCTION, args.join(", "));
        match where_ {
            Some((tok, e)) => {
                self.insert(*tok, Place::Tail, format!(" {call} AND ( "));
                self.insert(e.last, Place::CloseWhere, " ) ".into());
            }
            None => self.insert(clause_end, Place::NewWhere, format!(" WHERE {call} ")),
        }
        Ok(())
    }

    /// Append the default order to `s`: the primary keys of its FROM tables in order, or
    /// every result column where a FROM item has no key (views, CTEs, subqueries), the
    /// query is DISTINCT or grouped, or it is compound.
    fn add_ordering(&mut self, s: &Select, items: &[Item]) -> Result<(), SqlError> {
        let terms = match s.cores.as_slice() {
            [Core::Values { .. }] => return Ok(()),
            [Core::Select(c)] if !c.distinct && c.group_by.is_empty() => {
                if c.from.is_none() || is_aggregate_query(c) {
                    return Ok(());
                }
                let mut terms = Vec::new();
                let mut keyed = true;
                for item in items {
                    match &item.key {
                        Some(key) if !key.is_empty() && !item.qualifier.is_empty() => {
                            for k in key {
                                terms.push(format!(
                                    "{}.{}",
                                    quote_ident(&item.qualifier),
                                    quote_ident(k)
                                ));
                            }
                        }
                        _ => keyed = false,
                    }
                }
                if keyed {
                    terms
                } else {
                    self.positional_order(s)?
                }
            }
            _ => self.positional_order(s)?,
        };
        if terms.is_empty() {
            return Ok(());
        }
        match &s.order_by {
            Some(ob) => self.insert(ob.last(), Place::Order, format!(", {} ", terms.join(", "))),
            None => self.insert(
                s.body_last(),
                Place::Order,
                format!(" ORDER BY {} ", terms.join(", ")),
            ),
        }
        Ok(())
    }

    /// `1, 2, ..., n` over every result column.
    fn positional_order(&mut self, s: &Select) -> Result<Vec<String>, SqlError> {
        let n = match s.cores.first() {
            Some(Core::Select(c))
                if !c
                    .columns
                    .iter()
                    .any(|r| !matches!(r, ResultColumn::Expr { .. })) =>
            {
                c.columns.len()
            }
            Some(Core::Values { rows, .. }) => rows.first().map_or(0, Vec::len),
            Some(Core::Select(c)) => match self.star_width(c) {
                Some(n) => n,
                None => {
                    // SQLite counts what this cannot (USING and NATURAL joins merge
                    // columns): prepare the query as rewritten so far. (A subquery that
                    // names outer columns does not prepare alone; it then fails here.)
                    let body = self.render(s.first, s.body_last(), false)?;
                    self.catalog.column_count(&body, &self.ctes)?
                }
            },
            None => 0,
        };
        Ok((1..=n).map(|i| i.to_string()).collect())
    }

    /// The number of result columns of a core with `*` or `t.*`, counted from the tables'
    /// widths, where that is certain: no USING or NATURAL join, every item a table or view
    /// (CTEs and subqueries name no width here).
    fn star_width(&self, c: &SelectCore) -> Option<usize> {
        let from = c.from.as_ref()?;
        let mut widths: Vec<(String, usize)> = Vec::new();
        let mut stack: Vec<&FromItem> = from.items.iter().rev().collect();
        while let Some(item) = stack.pop() {
            if !item.using.is_empty()
                || item
                    .join
                    .is_some_and(|(t, _)| self.tok_text(t).eq_ignore_ascii_case("natural"))
            {
                return None;
            }
            match &item.source {
                Source::Table(name) if !self.is_cte(name) => {
                    let (s, t) = self.resolve(name).ok()?;
                    let width = self.catalog.table_width(&physical_name(&s, &t))?;
                    let q = item
                        .alias
                        .as_ref()
                        .map_or(t, |a| a.text.to_ascii_lowercase());
                    widths.push((q, width));
                }
                Source::Nested(f) => stack.extend(f.items.iter().rev()),
                _ => return None,
            }
        }
        let mut n = 0;
        for col in &c.columns {
            n += match col {
                ResultColumn::Expr { .. } => 1,
                ResultColumn::Star(_) => widths.iter().map(|(_, w)| w).sum(),
                ResultColumn::TableStar(q) => {
                    let q = q.text.to_ascii_lowercase();
                    widths.iter().find(|(name, _)| *name == q)?.1
                }
            };
        }
        Some(n)
    }

    /// Refuse columns whose value SQLite would take from a row the plan chooses: bare
    /// columns next to aggregates. Append a tie-break to the ORDER BY of order-sensitive
    /// aggregates.
    fn aggregates_are_determined(
        &mut self,
        c: &SelectCore,
        items: &[Item],
    ) -> Result<(), SqlError> {
        let mut calls = Vec::new();
        for col in &c.columns {
            if let ResultColumn::Expr { expr, .. } = col {
                collect_order_sensitive(expr, &mut calls);
            }
        }
        if let Some(h) = &c.having {
            collect_order_sensitive(h, &mut calls);
        }
        for f in calls {
            self.tie_break(&f, items)?;
        }
        if !is_aggregate_query(c) {
            return Ok(());
        }
        let grouped: Vec<Vec<&str>> = c
            .group_by
            .iter()
            .map(|e| self.token_texts(e.first, e.last))
            .collect();
        let aliases = result_aliases(c);
        let mut exprs: Vec<&Expr> = Vec::new();
        for col in &c.columns {
            match col {
                ResultColumn::Expr { expr, .. } => exprs.push(expr),
                ResultColumn::Star(_) | ResultColumn::TableStar(_) => {
                    return Err(bare_column_refused("*"))
                }
            }
        }
        if let Some(h) = &c.having {
            exprs.push(h);
        }
        for e in exprs {
            self.bare_columns_grouped(e, &grouped, &aliases)?;
        }
        Ok(())
    }

    fn token_texts(&self, first: Tix, last: Tix) -> Vec<&str> {
        (first..=last).map(|i| self.tok_text(i)).collect()
    }

    /// Every column reference in `e` outside aggregate calls and subqueries is, or lies
    /// within, an expression of the GROUP BY.
    fn bare_columns_grouped(
        &self,
        e: &Expr,
        grouped: &[Vec<&str>],
        aliases: &BTreeSet<String>,
    ) -> Result<(), SqlError> {
        let text = self.token_texts(e.first, e.last);
        if grouped.iter().any(|g| {
            g.len() == text.len() && g.iter().zip(&text).all(|(a, b)| a.eq_ignore_ascii_case(b))
        }) {
            return Ok(());
        }
        match &e.kind {
            // SQLite reads a bare TRUE or FALSE as the literal 1 or 0.
            ExprKind::Column {
                column,
                table: None,
                ..
            } if column.text.eq_ignore_ascii_case("true")
                || column.text.eq_ignore_ascii_case("false") =>
            {
                Ok(())
            }
            ExprKind::Column { column, table, .. } => {
                if self.is_grouped(table.as_ref(), column, grouped)
                    || (table.is_none() && aliases.contains(&column.text.to_ascii_lowercase()))
                {
                    Ok(())
                } else {
                    Err(bare_column_refused(&column.text))
                }
            }
            ExprKind::Function(f) if is_aggregate_call(f) => Ok(()),
            ExprKind::Subquery(s) | ExprKind::Exists(s) => {
                self.outer_refs_grouped(s, &BTreeSet::new(), grouped)
            }
            ExprKind::InSelect { expr, select, .. } => {
                self.bare_columns_grouped(expr, grouped, aliases)?;
                self.outer_refs_grouped(select, &BTreeSet::new(), grouped)
            }
            _ => {
                let mut result = Ok(());
                for_each_child(e, &mut |child| {
                    if result.is_ok() {
                        result = self.bare_columns_grouped(child, grouped, aliases);
                    }
                });
                result
            }
        }
    }

    /// Whether column `table.column` is a GROUP BY term: same column name, and the same
    /// qualifier where both name one.
    fn is_grouped(&self, table: Option<&Name>, column: &Name, grouped: &[Vec<&str>]) -> bool {
        grouped.iter().any(|g| match g.as_slice() {
            [c] => token::dequote(c).eq_ignore_ascii_case(&column.text),
            [q, ".", c] => {
                token::dequote(c).eq_ignore_ascii_case(&column.text)
                    && table.is_none_or(|t| token::dequote(q).eq_ignore_ascii_case(&t.text))
            }
            _ => false,
        })
    }

    /// Inside a subquery of an aggregate query, a column qualified with a table of the
    /// outer query (and not of the subquery) is a bare column of the outer query.
    /// (Unqualified columns are taken as the subquery's own.) `own` holds the qualifiers
    /// of the subqueries that enclose `s`, inside the aggregate query.
    fn outer_refs_grouped(
        &self,
        s: &Select,
        own: &BTreeSet<String>,
        grouped: &[Vec<&str>],
    ) -> Result<(), SqlError> {
        let mut own = own.clone();
        for core in &s.cores {
            if let Core::Select(c) = core {
                if let Some(f) = &c.from {
                    collect_qualifiers(&f.items, &mut own);
                }
            }
        }
        let mut result = Ok(());
        for_each_expr_of_select(s, &mut |e| {
            if result.is_ok() {
                result = self.qualified_outer_refs_grouped(e, &own, grouped);
            }
        });
        result
    }

    fn qualified_outer_refs_grouped(
        &self,
        e: &Expr,
        own: &BTreeSet<String>,
        grouped: &[Vec<&str>],
    ) -> Result<(), SqlError> {
        match &e.kind {
            ExprKind::Column {
                table: Some(t),
                column,
                ..
            } if !own.contains(&t.text.to_ascii_lowercase())
                && !self.is_grouped(Some(t), column, grouped) =>
            {
                Err(bare_column_refused(&format!("{}.{}", t.text, column.text)))
            }
            ExprKind::Subquery(s) | ExprKind::Exists(s) | ExprKind::InSelect { select: s, .. } => {
                if let ExprKind::InSelect { expr, .. } = &e.kind {
                    self.qualified_outer_refs_grouped(expr, own, grouped)?;
                }
                self.outer_refs_grouped(s, own, grouped)
            }
            _ => {
                let mut result = Ok(());
                for_each_child(e, &mut |c| {
                    if result.is_ok() {
                        result = self.qualified_outer_refs_grouped(c, own, grouped);
                    }
                });
                result
            }
        }
    }

    /// Make an order-sensitive aggregate's ORDER BY total: append the keys of the core's
    /// FROM tables (every row combination is then ordered), or, without keys, its own
    /// arguments compared byte by byte (rows that still tie give identical output).
    fn tie_break(&mut self, f: &Function, items: &[Item]) -> Result<(), SqlError> {
        let Some(ob) = &f.order_by else {
            let name = f.name.text.to_ascii_lowercase();
            return Err(refused(
                format!("{name}() without ORDER BY"),
                format!("its result depends on row order; write {name}(x, ',' ORDER BY x)"),
            ));
        };
        let keyed = !items.is_empty()
            && items
                .iter()
                .all(|i| i.key.as_ref().is_some_and(|k| !k.is_empty()) && !i.qualifier.is_empty());
        let terms: Vec<String> = if keyed {
            items
                .iter()
                .flat_map(|i| {
                    let q = quote_ident(&i.qualifier);
                    i.key
                        .iter()
                        .flatten()
                        .map(move |k| format!("{q}.{}", quote_ident(k)))
                })
                .collect()
        } else {
            let mut terms = Vec::new();
            for a in &f.args {
                if contains_subquery(a) {
                    return Err(refused(
                        format!("{}() over a subquery, CTE or view", f.name.text),
                        "its ties cannot be ordered by key; order by columns that are unique",
                    ));
                }
                terms.push(format!(
                    "( {} ) COLLATE BINARY",
                    self.render(a.first, a.last, true)?
                ));
            }
            terms
        };
        self.insert(ob.last(), Place::Order, format!(", {} ", terms.join(", ")));
        Ok(())
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

    fn create_table(&mut self, ct: &CreateTable) -> Result<(), SqlError> {
        let table = ct.name.name.text.clone();
        let bad = |reason: &str| SqlError::TableDefinition {
            table: table.clone(),
            reason: reason.to_owned(),
        };
        if ct.temp {
            return Err(bad("temporary tables are not supported"));
        }
        if ct.as_select {
            return Err(bad(
                "CREATE TABLE ... AS is not supported; list the columns",
            ));
        }
        if let Some(at) = ct.missing_comma {
            // SQLite separates table options with commas; dstorage has always accepted
            // `WITHOUT ROWID STRICT` as well, so it adds the comma.
            self.insert(at, Place::Tail, ",".into());
        }
        let mut strict = false;
        let mut without_rowid = false;
        for o in &ct.options {
            match o.as_str() {
                "STRICT" => strict = true,
                "WITHOUT ROWID" => without_rowid = true,
                other => return Err(bad(&format!("unknown table option {other}"))),
            }
        }
        if !strict {
            return Err(bad(
                "tables must be STRICT: add STRICT after the column list",
            ));
        }
        self.rename_own(&ct.name)?;
        let schema = self.schema.to_owned();
        // Key columns (lower case) and which one is the rowid alias.
        let mut key: Vec<String> = Vec::new();
        let mut rowid_alias: Option<String> = None;
        let mut integer_columns: BTreeSet<String> = BTreeSet::new();
        for col in &ct.columns {
            let words = col
                .ty
                .as_ref()
                .map_or(Vec::new(), |t| t.column_words.clone());
            let (ty, replace) = column_type(&words).ok_or_else(|| SqlError::ColumnType {
                column: col.name.text.clone(),
                found: if words.is_empty() {
                    "no type".to_owned()
                } else {
                    words.join(" ")
                },
                expected: "INTEGER, TEXT or BLOB (BOOLEAN is stored as INTEGER)".to_owned(),
            })?;
            if let Some(tn) = &col.ty {
                if tn.sized {
                    return Err(SqlError::ColumnType {
                        column: col.name.text.clone(),
                        found: self.render(tn.first, tn.last, false)?,
                        expected: "INTEGER, TEXT or BLOB without a size".to_owned(),
                    });
                }
                if replace {
                    // STRICT tables know only the exact type names.
                    self.replace(tn.first, tn.column_last, ty.to_owned());
                }
            }
            let lower = col.name.text.to_ascii_lowercase();
            if ty == "INTEGER" {
                integer_columns.insert(lower.clone());
            }
            for c in &col.constraints {
                match c {
                    ColumnConstraint::PrimaryKey {
                        desc,
                        on_conflict,
                        autoincrement,
                    } => {
                        if *autoincrement {
                            return Err(refused(
                                format!("AUTOINCREMENT on {}", col.name.text),
                                "it keeps hidden state in sqlite_sequence; INTEGER PRIMARY KEY already assigns max+1",
                            ));
                        }
                        check_conflict(on_conflict.as_deref())?;
                        key.push(lower.clone());
                        // SQLite's quirk: `INTEGER PRIMARY KEY DESC` is no rowid alias.
                        if ty == "INTEGER" && !desc && !without_rowid {
                            rowid_alias = Some(lower.clone());
                        }
                    }
                    ColumnConstraint::NotNull { on_conflict }
                    | ColumnConstraint::Unique { on_conflict } => {
                        check_conflict(on_conflict.as_deref())?
                    }
                    ColumnConstraint::Check(e)
                    | ColumnConstraint::Default(e)
                    | ColumnConstraint::Generated(e) => self.expr(e)?,
                    ColumnConstraint::References(fk) => self.foreign_key(fk, &schema)?,
                    ColumnConstraint::Deferrable { deferred } => {
                        if *deferred {
                            return Err(deferred_refused());
                        }
                    }
                    // A column's collation reaches every DISTINCT, GROUP BY and compound over
                    // it, unseen in the statement text.
                    ColumnConstraint::Collate(name)
                        if !name.text.eq_ignore_ascii_case("binary") =>
                    {
                        return Err(collation_refused(&name.text))
                    }
                    ColumnConstraint::Null | ColumnConstraint::Collate(_) => {}
                }
            }
        }
        for c in &ct.constraints {
            match c {
                TableConstraint::PrimaryKey {
                    columns,
                    on_conflict,
                    autoincrement,
                } => {
                    if *autoincrement {
                        return Err(refused(
                            "AUTOINCREMENT",
                            "it keeps hidden state in sqlite_sequence; INTEGER PRIMARY KEY already assigns max+1",
                        ));
                    }
                    check_conflict(on_conflict.as_deref())?;
                    for t in columns {
                        match &t.expr.kind {
                            ExprKind::Column {
                                table: None,
                                column,
                                ..
                            } => key.push(column.text.to_ascii_lowercase()),
                            ExprKind::Collate(inner, _) => match &inner.kind {
                                ExprKind::Column {
                                    table: None,
                                    column,
                                    ..
                                } => key.push(column.text.to_ascii_lowercase()),
                                _ => return Err(bad("PRIMARY KEY columns must be column names")),
                            },
                            _ => return Err(bad("PRIMARY KEY columns must be column names")),
                        }
                    }
                    if let [only] = columns.as_slice() {
                        let name = key.last().cloned().unwrap_or_default();
                        let is_collated = matches!(only.expr.kind, ExprKind::Collate(..));
                        if integer_columns.contains(&name) && !without_rowid && !is_collated {
                            rowid_alias = Some(name);
                        }
                    }
                }
                TableConstraint::Unique {
                    on_conflict,
                    columns,
                } => {
                    check_conflict(on_conflict.as_deref())?;
                    for t in columns {
                        self.expr(&t.expr)?;
                    }
                }
                TableConstraint::Check { expr, on_conflict } => {
                    check_conflict(on_conflict.as_deref())?;
                    self.expr(expr)?;
                }
                TableConstraint::ForeignKey(fk) => self.foreign_key(fk, &schema)?,
            }
        }
        if key.is_empty() {
            return Err(bad("a PRIMARY KEY is required"));
        }
        if !without_rowid {
            // A changeset names a row by its key, so no key column of a rowid table may
            // hold NULL (SQLite would let it, except in the rowid alias).
            for col in &ct.columns {
                let lower = col.name.text.to_ascii_lowercase();
                let not_null = col
                    .constraints
                    .iter()
                    .any(|c| matches!(c, ColumnConstraint::NotNull { .. }));
                if key.contains(&lower) && rowid_alias.as_ref() != Some(&lower) && !not_null {
                    self.insert(col.last, Place::Tail, " NOT NULL ".into());
                }
            }
            if let (Some(pk), Some(rp)) = (&rowid_alias, ct.rp) {
                // An INTEGER PRIMARY KEY is the rowid; once it holds i64::MAX SQLite picks
                // new rowids at random. Keeping the maximum free keeps automatic keys
                // deterministic.
                self.insert(
                    rp - 1,
                    Place::Tail,
                    format!(", CHECK ({} < {}) ", quote_ident(pk), i64::MAX),
                );
            }
        }
        Ok(())
    }

    fn foreign_key(&mut self, fk: &ForeignKey, schema: &str) -> Result<(), SqlError> {
        if fk.deferred {
            return Err(deferred_refused());
        }
        self.rename_token(&fk.table, schema)?;
        Ok(())
    }

    /// The text of tokens `first..=last` with the edits made so far inside that range
    /// (all of them with `all`, else only renames and aliases).
    fn render(&self, first: Tix, last: Tix, all: bool) -> Result<String, SqlError> {
        let edits: Vec<Edit> = self
            .edits
            .iter()
            .filter(|e| match e {
                Edit::Replace {
                    first: f, last: l, ..
                } => *f >= first && *l <= last,
                Edit::Insert { after, place, .. } => {
                    *after >= first && *after <= last && (all || *place == Place::Alias)
                }
            })
            .cloned()
            .collect();
        splice(self.sql, self.toks, first, last, &edits).map(|(text, _)| text)
    }

    /// The statement `first..=last` with every edit applied, checked token by token. The
    /// text runs on to the next token (or the end), so a comment after the last token stays
    /// with it: SQLite names a result column by its text up to the next token.
    fn apply(&self, first: Tix, last: Tix) -> Result<String, SqlError> {
        let (mut text, expected) = splice(self.sql, self.toks, first, last, &self.edits)?;
        let tail_end = self.toks.get(last + 1).map_or(self.sql.len(), |t| t.start);
        text.push_str(self.sql[self.toks[last].end..tail_end].trim_end());
        let got: Vec<(Tk, &str)> = token::significant(&text)
            .into_iter()
            .map(|t| (t.kind, t.text(&text)))
            .collect();
        let expected: Vec<(Tk, &str)> = expected.iter().map(|(k, s)| (*k, s.as_str())).collect();
        if got != expected {
            tracing::error!(%text, "the guard's rewrite does not tokenize as planned");
            return Err(refused(
                "this statement",
                "the guard could not rewrite it exactly; please report it",
            ));
        }
        Ok(text)
    }
}

/// Whether a query's order must be defined where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Its rows reach a result, pick a first row, or feed an insert: define the order.
    Order,
    /// Only if it has a LIMIT.
    Nothing,
    /// Never: its rows only tell whether there are any (EXISTS).
    Never,
}

/// The name of a query's first result column, where it can be told from the text: an
/// alias, a column's own name, or `column1` of a VALUES list.
fn first_column(s: &Select) -> Option<String> {
    match s.cores.first()? {
        Core::Values { .. } => Some("column1".into()),
        Core::Select(c) => match c.columns.first()? {
            ResultColumn::Expr { alias: Some(a), .. } => Some(a.text.clone()),
            ResultColumn::Expr { expr, .. } => match &expr.kind {
                ExprKind::Column { column, .. } => Some(column.text.clone()),
                _ => None,
            },
            _ => None,
        },
    }
}

/// A literal's digits without `_` separators.
fn digits(literal: &str) -> String {
    literal.chars().filter(|c| *c != '_').collect()
}

/// Whether a decimal integer literal is past i64::MAX: SQLite then reads it as REAL.
/// (A hex literal of up to 16 digits wraps around; SQLite refuses longer ones itself.)
fn integer_literal_overflows(literal: &str) -> bool {
    let d = digits(literal);
    if d.starts_with("0x") || d.starts_with("0X") {
        return false;
    }
    d.parse::<i64>().is_err()
}

fn big_integer_refused(literal: &str) -> SqlError {
    refused(
        format!("integer literal {literal}"),
        "it is past the 64-bit range, where SQLite reads it as REAL; dstorage has no floating point",
    )
}

fn collation_refused(name: &str) -> SqlError {
    refused(
        format!("COLLATE {name}"),
        "values equal under a collation but different in bytes would let the query plan \
         choose which one a DISTINCT, GROUP BY, UNION, min or max returns; store and compare \
         lower(x) instead",
    )
}

fn check_conflict(on_conflict: Option<&str>) -> Result<(), SqlError> {
    if on_conflict == Some("ROLLBACK") {
        return Err(rollback_resolution_refused());
    }
    Ok(())
}

fn deferred_refused() -> SqlError {
    refused(
        "INITIALLY DEFERRED foreign key",
        "a deferred constraint is checked only at COMMIT, where a violation \
         would fail the whole block; use an immediate foreign key (the default)",
    )
}

fn bare_column_refused(column: &str) -> SqlError {
    refused(
        format!("column {column} next to an aggregate"),
        "SQLite would take its value from a row the query plan picks; add it to GROUP BY \
         or aggregate it (min, max, group_concat)",
    )
}

/// The result aliases of a core, lower case (HAVING and ORDER BY may name them).
fn result_aliases(c: &SelectCore) -> BTreeSet<String> {
    c.columns
        .iter()
        .filter_map(|r| match r {
            ResultColumn::Expr { alias: Some(a), .. } => Some(a.text.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn is_aggregate_call(f: &Function) -> bool {
    let name = f.name.text.to_ascii_lowercase();
    AGGREGATES.contains(&name.as_str())
        && !(matches!(name.as_str(), "min" | "max") && f.args.len() > 1)
}

/// Whether expression `e` (outside subqueries) calls an aggregate.
fn has_aggregate(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Function(f) if is_aggregate_call(f) => true,
        ExprKind::Subquery(_) | ExprKind::Exists(_) | ExprKind::InSelect { .. } => false,
        _ => {
            let mut found = false;
            for_each_child(e, &mut |c| found = found || has_aggregate(c));
            found
        }
    }
}

fn is_aggregate_query(c: &SelectCore) -> bool {
    !c.group_by.is_empty()
        || c.columns.iter().any(|r| match r {
            ResultColumn::Expr { expr, .. } => has_aggregate(expr),
            _ => false,
        })
        || c.having.as_ref().is_some_and(has_aggregate)
}

fn contains_subquery(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Subquery(_) | ExprKind::Exists(_) | ExprKind::InSelect { .. } => true,
        _ => {
            let mut found = false;
            for_each_child(e, &mut |c| found = found || contains_subquery(c));
            found
        }
    }
}

/// The order-sensitive aggregate calls in `e`, outside subqueries.
fn collect_order_sensitive(e: &Expr, out: &mut Vec<Function>) {
    match &e.kind {
        ExprKind::Function(f)
            if ORDER_SENSITIVE_AGGREGATES.contains(&f.name.text.to_ascii_lowercase().as_str()) =>
        {
            out.push((**f).clone());
        }
        ExprKind::Subquery(_) | ExprKind::Exists(_) | ExprKind::InSelect { .. } => return,
        _ => {}
    }
    for_each_child(e, &mut |c| collect_order_sensitive(c, out));
}

/// The qualifier tokens of columns `own.c` in `e` (outside subqueries).
fn collect_qualified(e: &Expr, own: &str, out: &mut Vec<Tix>) {
    if let ExprKind::Column {
        schema: None,
        table: Some(t),
        ..
    } = &e.kind
    {
        if t.text.eq_ignore_ascii_case(own) {
            out.push(t.tok);
        }
    }
    for_each_child(e, &mut |c| collect_qualified(c, own, out));
}

/// The names a FROM list's items go by (aliases, or table names), lower case.
fn collect_qualifiers(items: &[FromItem], out: &mut BTreeSet<String>) {
    for item in items {
        // With an alias, the table's own name no longer qualifies its columns.
        if let Some(a) = &item.alias {
            out.insert(a.text.to_ascii_lowercase());
        }
        match &item.source {
            Source::Table(n) | Source::Function(n) if item.alias.is_none() => {
                out.insert(n.name.text.to_ascii_lowercase());
            }
            Source::Nested(f) => collect_qualifiers(&f.items, out),
            Source::Table(_) | Source::Function(_) | Source::Subquery(_) => {}
        }
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

/// Apply `edits` to the tokens `first..=last` of `sql`. Returns the text and the
/// significant tokens it must consist of: the original ones with replacements, and the
/// tokens of each insertion where it goes.
fn splice(
    sql: &str,
    toks: &[Token],
    first: Tix,
    last: Tix,
    edits: &[Edit],
) -> Result<(String, Vec<(Tk, String)>), SqlError> {
    // (byte position, place, seq, edit)
    let mut inserts: Vec<(usize, Place, u32, &str)> = Vec::new();
    let mut replaces: Vec<(Tix, Tix, &str)> = Vec::new();
    for e in edits {
        match e {
            Edit::Replace { first, last, text } => replaces.push((*first, *last, text)),
            Edit::Insert {
                after,
                place,
                seq,
                text,
            } => inserts.push((toks[*after].end, *place, *seq, text)),
        }
    }
    inserts.sort();
    replaces.sort();
    let start = toks[first].start;
    let end = toks[last].end;
    let mut text = String::with_capacity(end - start + 64);
    let mut expected: Vec<(Tk, String)> = Vec::new();
    let mut pos = start;
    let mut ins = inserts.iter().peekable();
    let mut rep = replaces.iter().peekable();
    let mut i = first;
    let push_tokens = |expected: &mut Vec<(Tk, String)>, s: &str| {
        for t in token::significant(s) {
            expected.push((t.kind, t.text(s).to_owned()));
        }
    };
    while i <= last {
        // Insertions at or before this token's start.
        while let Some((at, _, _, s)) = ins.peek() {
            if *at > toks[i].start {
                break;
            }
            text.push_str(&sql[pos..*at]);
            pos = *at;
            text.push_str(s);
            push_tokens(&mut expected, s);
            ins.next();
        }
        match rep.peek() {
            Some((f, l, s)) if *f == i => {
                text.push_str(&sql[pos..toks[i].start]);
                text.push_str(s);
                push_tokens(&mut expected, s);
                pos = toks[*l].end;
                i = *l + 1;
                rep.next();
            }
            _ => {
                text.push_str(&sql[pos..toks[i].end]);
                expected.push((toks[i].kind, toks[i].text(sql).to_owned()));
                pos = toks[i].end;
                i += 1;
            }
        }
    }
    for (at, _, _, s) in ins {
        if *at > end {
            break;
        }
        text.push_str(&sql[pos..*at]);
        pos = *at;
        text.push_str(s);
        push_tokens(&mut expected, s);
    }
    text.push_str(&sql[pos..end.max(pos)]);
    if rep.next().is_some() {
        return Err(refused(
            "this statement",
            "the guard could not rewrite it exactly; please report it",
        ));
    }
    Ok((text, expected))
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
