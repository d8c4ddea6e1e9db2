//! The statement guard: parse user SQL, refuse what is not deterministic, place names in
//! their schema and add the guaranteed ordering. SQLite's authorizer (`authorizer.rs`)
//! then judges what SQLite itself parsed, so a trick that slips past this AST pass still
//! meets a refusal.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use sqlparser::ast::{
    ColumnOption, ColumnOptionDef, CreateTable, DataType, Expr, FunctionArgumentClause,
    FunctionArguments, GroupByExpr, Ident, ObjectName, ObjectNamePart, ObjectType, OrderBy,
    OrderByExpr, OrderByKind, OrderByOptions, Query, SelectItem, SetExpr, Statement, TableAlias,
    TableConstraint, TableFactor, Value as AstValue, VisitMut, VisitorMut,
};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::authorizer::{refused, why_not, ALLOWED_FUNCTIONS, ALLOWED_PRAGMAS};
use crate::names::{canonical_object_name, physical_name, split_physical, validate_schema_name};
use crate::SqlError;

/// Aggregates whose result depends on input order: they must carry their own ORDER BY.
const ORDER_SENSITIVE_AGGREGATES: &[&str] = &["group_concat", "string_agg"];

/// Aggregates that make a SELECT without GROUP BY return exactly one row (no ordering needed).
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "group_concat", "string_agg"];

/// Parse SQL text with SQLite's dialect.
pub(crate) fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let dialect = SQLiteDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| SqlError::Parse(e.to_string()))?;
    let statements = Parser::new(&dialect)
        .with_recursion_limit(64)
        .with_tokens_with_locations(table_options_for_parser(tokens))
        .parse_statements()
        .map_err(|e| SqlError::Parse(e.to_string()))?;
    if statements.is_empty() {
        return Err(SqlError::Empty);
    }
    Ok(statements)
}

/// SQLite writes a table's options as a comma-separated list after the column list
/// (`) STRICT, WITHOUT ROWID`, in either order); the parser only reads `WITHOUT ROWID STRICT`.
/// Rewrite the tokens of such a list in a CREATE TABLE statement to that form, so SQLite's
/// own syntax is accepted (the engine writes the SQLite form back when it prints the table).
fn table_options_for_parser(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is = |t: &TokenWithSpan, k: Keyword| matches!(&t.token, Token::Word(w) if w.keyword == k);
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    // (index in `significant` where a list starts, STRICT comes first)
    let mut lists: Vec<(usize, bool)> = Vec::new();
    let mut depth = 0usize;
    let mut words_in_statement = 0usize;
    let mut create_table = false;
    let mut j = 0;
    while j < significant.len() {
        let t = &tokens[significant[j]];
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::SemiColon if depth == 0 => {
                words_in_statement = 0;
                create_table = false;
            }
            _ => {}
        }
        if words_in_statement < 2 {
            if let Token::Word(w) = &t.token {
                create_table = match words_in_statement {
                    0 => w.keyword == Keyword::CREATE,
                    _ => create_table && w.keyword == Keyword::TABLE,
                };
                words_in_statement += 1;
            }
        }
        if create_table && depth == 0 && j + 3 < significant.len() {
            let at = |k: usize| &tokens[significant[j + k]];
            if is(at(0), Keyword::STRICT)
                && at(1).token == Token::Comma
                && is(at(2), Keyword::WITHOUT)
                && is(at(3), Keyword::ROWID)
            {
                lists.push((j, true));
                j += 4;
                continue;
            }
            if is(at(0), Keyword::WITHOUT)
                && is(at(1), Keyword::ROWID)
                && at(2).token == Token::Comma
                && is(at(3), Keyword::STRICT)
            {
                lists.push((j, false));
                j += 4;
                continue;
            }
        }
        j += 1;
    }
    if lists.is_empty() {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut next = 0;
    for (j, strict_first) in lists {
        let first = significant[j];
        let last = significant[j + 3];
        out.extend_from_slice(&tokens[next..first]);
        let (without, rowid, strict) = if strict_first {
            (&tokens[significant[j + 2]], &tokens[last], &tokens[first])
        } else {
            (&tokens[first], &tokens[significant[j + 1]], &tokens[last])
        };
        let space = TokenWithSpan::new(Token::Whitespace(Whitespace::Space), strict.span);
        out.extend([
            without.clone(),
            space.clone(),
            rowid.clone(),
            space,
            strict.clone(),
        ]);
        next = last + 1;
    }
    out.extend_from_slice(&tokens[next..]);
    out
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
}

/// One statement after the guard: SQLite-ready text and its kind.
#[derive(Clone, Debug)]
pub(crate) struct Rewritten {
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
}

/// Guard and rewrite one parsed statement for `schema`. `read_only` allows queries only.
pub(crate) fn rewrite(
    mut stmt: Statement,
    schema: &str,
    read_only: bool,
    catalog: &dyn Catalog,
) -> Result<Rewritten, SqlError> {
    let kind = classify(&stmt, schema, read_only)?;
    let single_row_insert = is_plain_single_row_insert(&stmt);
    check_write_targets(&stmt, schema)?;
    check_no_rollback_resolution(&stmt)?;
    check_expressions(&mut stmt)?;
    if let Statement::CreateTable(ct) = &mut stmt {
        check_create_table(ct, schema)?;
    }
    if let Statement::Pragma { value, .. } = &mut stmt {
        // The pragma argument names a table or index of the schema.
        if let Some(AstValue::SingleQuotedString(s) | AstValue::DoubleQuotedString(s)) = value {
            let name = canonical_object_name(s)?;
            *value = Some(AstValue::SingleQuotedString(physical_name(schema, &name)));
        }
    }
    let ctes = rename_objects(&mut stmt, schema)?;
    let order_top = matches!(stmt, Statement::Query(_) | Statement::Insert(_));
    let mut orderer = Orderer {
        catalog,
        depth: 0,
        order_top,
        ctes: &ctes,
    };
    if let ControlFlow::Break(e) = stmt.visit(&mut orderer) {
        return Err(e);
    }
    if kind == Kind::Dml {
        inject_meter(&mut stmt, catalog);
    }
    let sql = match &mut stmt {
        // sqlparser prints `WITHOUT ROWID` and `STRICT` without the comma SQLite requires
        // between table options, so print them here.
        Statement::CreateTable(ct) => {
            let without_rowid = std::mem::take(&mut ct.without_rowid);
            ct.strict = false;
            let mut sql = stmt.to_string();
            sql.push_str(if without_rowid {
                " STRICT, WITHOUT ROWID"
            } else {
                " STRICT"
            });
            check_table_text(&sql)?;
            sql
        }
        _ => stmt.to_string(),
    };
    Ok(Rewritten {
        exec_sql: sql.clone(),
        sql,
        kind,
        ctes,
        schema: schema.into(),
        single_row_insert,
        step_bound: OnceLock::new(),
    })
}

/// A single-row `INSERT ... VALUES (...)` whose values are literals or placeholders, with
/// no statement-level conflict clause (`OR FAIL` keeps partial work, `OR REPLACE` deletes),
/// no upsert and no RETURNING. Only such a statement may skip the per-call savepoint,
/// and only once its compiled program is proven safe too (`program::step_bound`).
fn is_plain_single_row_insert(stmt: &Statement) -> bool {
    let Statement::Insert(ins) = stmt else {
        return false;
    };
    if ins.or.is_some()
        || ins.ignore
        || ins.replace_into
        || ins.on.is_some()
        || ins.returning.is_some()
        || !ins.assignments.is_empty()
    {
        return false;
    }
    let Some(source) = &ins.source else {
        return false;
    };
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
        return false;
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return false;
    };
    let literal = |e: &Expr| match e {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } => matches!(expr.as_ref(), Expr::Value(_)),
        _ => false,
    };
    values.rows.len() == 1 && values.rows[0].iter().all(literal)
}

fn meter_call(args: Vec<Expr>) -> Expr {
    Expr::Function(sqlparser::ast::Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(
            crate::meter::METER_FUNCTION,
        ))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| {
                    sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(e))
                })
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// Gate `selection` with a meter call whose arguments name a key column of each table in
/// `from`: a WHERE term is evaluated in the innermost loop over the tables it references,
/// so naming all of them makes SQLite call the meter for every row combination of a join.
fn gate(
    selection: &mut Option<Expr>,
    from: &[sqlparser::ast::TableWithJoins],
    catalog: &dyn Catalog,
) {
    let mut args = Vec::new();
    for twj in from {
        for tf in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            if let TableFactor::Table {
                name,
                alias: Some(alias),
                ..
            } = tf
            {
                let physical = name.to_string().trim_matches('"').replace("\"\"", "\"");
                if let Some(col) = catalog
                    .primary_key(&physical)
                    .and_then(|pk| pk.into_iter().next())
                {
                    args.push(Expr::CompoundIdentifier(vec![
                        alias.name.clone(),
                        Ident::with_quote('"', col),
                    ]));
                }
            }
        }
    }
    *selection = Some(match selection.take() {
        None => meter_call(args),
        Some(e) => Expr::BinaryOp {
            left: Box::new(meter_call(args)),
            op: sqlparser::ast::BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(e))),
        },
    });
}

/// Put `dstorage_meter()` first in every WHERE of a write statement (its own and those of
/// every SELECT in it), so a write past its budget fails with an ordinary error instead of
/// being interrupted (see `Meter::tick`).
fn inject_meter(stmt: &mut Statement, catalog: &dyn Catalog) {
    fn selects(body: &mut SetExpr, catalog: &dyn Catalog) {
        match body {
            SetExpr::Select(s) => gate(&mut s.selection, &s.from, catalog),
            SetExpr::SetOperation { left, right, .. } => {
                selects(left, catalog);
                selects(right, catalog);
            }
            _ => {}
        }
    }
    struct Injector<'a>(&'a dyn Catalog);
    impl VisitorMut for Injector<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            selects(&mut q.body, self.0);
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Injector(catalog));
    match stmt {
        Statement::Update {
            selection, table, ..
        } => gate(selection, std::slice::from_ref(table), catalog),
        Statement::Delete(d) => {
            let from = match &d.from {
                sqlparser::ast::FromTable::WithFromKeyword(f)
                | sqlparser::ast::FromTable::WithoutKeyword(f) => f.clone(),
            };
            gate(&mut d.selection, &from, catalog)
        }
        _ => {}
    }
}

/// The error for the ROLLBACK conflict resolution, in a statement or a table definition.
fn rollback_resolution_refused() -> SqlError {
    refused(
        "ROLLBACK conflict resolution",
        "it would abort the whole block; use ABORT (the default)",
    )
}

/// Refuse the ROLLBACK conflict resolution of a statement: it would end the whole block's
/// transaction, not just the statement's. (Table definitions: see `check_table_text`.)
fn check_no_rollback_resolution(stmt: &Statement) -> Result<(), SqlError> {
    use sqlparser::ast::SqliteOnConflict;
    let or = match stmt {
        Statement::Insert(ins) => ins.or,
        Statement::Update { or, .. } => *or,
        _ => None,
    };
    if or == Some(SqliteOnConflict::Rollback) {
        return Err(rollback_resolution_refused());
    }
    Ok(())
}

/// Refuse, in the CREATE TABLE text SQLite will parse, two clauses whose failure would
/// take the whole block with it:
///
/// - `ON CONFLICT ROLLBACK` on a constraint: a violation ends the block's transaction;
/// - `INITIALLY DEFERRED` (a deferred foreign key): its violations are only counted, and
///   checked at COMMIT, so one bad row would make the block's commit fail.
///
/// The check reads the printed text's keyword tokens rather than the AST, because SQLite
/// attaches a bare `DEFERRABLE INITIALLY DEFERRED` to the table's last foreign key
/// wherever it stands among the column constraints, while string literals and quoted
/// names holding the same words are left alone.
fn check_table_text(sql: &str) -> Result<(), SqlError> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&SQLiteDialect {}, sql)
        .tokenize()
        .map_err(|e| SqlError::Parse(e.to_string()))?;
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => String::new(),
        })
        .collect();
    for pair in words.windows(2) {
        match (pair[0].as_str(), pair[1].as_str()) {
            ("CONFLICT", "ROLLBACK") => return Err(rollback_resolution_refused()),
            ("INITIALLY", "DEFERRED") => {
                return Err(refused(
                    "INITIALLY DEFERRED foreign key",
                    "a deferred constraint is checked only at COMMIT, where a violation \
                     would fail the whole block; use an immediate foreign key (the default)",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuse writes and DDL aimed at an object outside `schema`.
fn check_write_targets(stmt: &Statement, schema: &str) -> Result<(), SqlError> {
    let mut targets: Vec<&ObjectName> = Vec::new();
    match stmt {
        Statement::Insert(ins) => {
            if let sqlparser::ast::TableObject::TableName(n) = &ins.table {
                targets.push(n);
            }
        }
        Statement::Update { table, .. } => {
            if let TableFactor::Table { name, .. } = &table.relation {
                targets.push(name);
            }
        }
        Statement::Delete(d) => {
            targets.extend(d.tables.iter());
            let from = match &d.from {
                sqlparser::ast::FromTable::WithFromKeyword(f)
                | sqlparser::ast::FromTable::WithoutKeyword(f) => f,
            };
            for twj in from {
                if let TableFactor::Table { name, .. } = &twj.relation {
                    targets.push(name);
                }
            }
        }
        Statement::CreateTable(ct) => targets.push(&ct.name),
        Statement::CreateIndex(ci) => {
            targets.push(&ci.table_name);
            targets.extend(ci.name.iter());
        }
        Statement::CreateView { name, .. } => targets.push(name),
        Statement::Drop { names, .. } => targets.extend(names.iter()),
        _ => {}
    }
    for t in targets {
        let (s, object) = resolve(t, schema)?;
        if s != schema {
            return Err(SqlError::CrossSchemaWrite {
                schema: schema.to_owned(),
                target: physical_name(&s, &object),
            });
        }
    }
    Ok(())
}

fn classify(stmt: &Statement, schema: &str, read_only: bool) -> Result<Kind, SqlError> {
    let kind = match stmt {
        Statement::Query(_) => Kind::Query,
        Statement::Pragma { name, value, is_eq } => {
            let pragma = name.to_string().to_ascii_lowercase();
            if *is_eq || !ALLOWED_PRAGMAS.contains(&pragma.as_str()) || value.is_none() {
                return Err(refused(
                    format!("PRAGMA {pragma}"),
                    format!(
                        "only read-only schema pragmas with a table argument are allowed: {}",
                        ALLOWED_PRAGMAS.join(", ")
                    ),
                ));
            }
            Kind::Query
        }
        Statement::Insert(_) | Statement::Update { .. } | Statement::Delete(_) => Kind::Dml,
        Statement::CreateTable(_) | Statement::CreateIndex(_) | Statement::CreateView { .. } => {
            Kind::Ddl
        }
        Statement::Drop {
            object_type,
            if_exists,
            names,
            temporary,
            ..
        } => {
            if *temporary {
                return Err(refused(
                    "DROP TEMPORARY",
                    "temporary objects are not supported",
                ));
            }
            match object_type {
                ObjectType::Table => Kind::DropTables {
                    tables: names
                        .iter()
                        .map(|n| resolve(n, schema).map(|(s, t)| physical_name(&s, &t)))
                        .collect::<Result<_, _>>()?,
                    if_exists: *if_exists,
                },
                ObjectType::Index | ObjectType::View => Kind::Ddl,
                other => {
                    return Err(refused(
                        format!("DROP {other}"),
                        "only tables, indexes and views can be dropped",
                    ))
                }
            }
        }
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => {
            return Err(refused(
                "transaction control",
                "each transaction is atomic already; BEGIN/COMMIT/SAVEPOINT are not needed",
            ))
        }
        Statement::AttachDatabase { .. } | Statement::AttachDuckDBDatabase { .. } => {
            return Err(refused("ATTACH", "one database file per node"))
        }
        Statement::DetachDuckDBDatabase { .. } => {
            return Err(refused("DETACH", "one database file per node"))
        }
        Statement::CreateTrigger { .. } => {
            return Err(refused("CREATE TRIGGER", "triggers are not supported"))
        }
        Statement::AlterTable { .. } => {
            return Err(refused(
                "ALTER TABLE",
                "ALTER TABLE is not supported; create a new table",
            ))
        }
        Statement::Analyze { .. } => {
            return Err(refused("ANALYZE", "statistics would change query plans"))
        }
        Statement::CreateVirtualTable { .. } => {
            return Err(refused(
                "CREATE VIRTUAL TABLE",
                "virtual tables are not supported",
            ))
        }
        other => {
            let text = other.to_string();
            let head: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            return Err(refused(head, "statement kind is not supported"));
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

/// Refuse functions off the allow-list, windows, unordered order-sensitive aggregates,
/// REAL literals and casts, and rowid references, wherever they appear (including column
/// defaults, CHECK constraints, view bodies, CTEs and subqueries).
fn check_expressions(stmt: &mut Statement) -> Result<(), SqlError> {
    struct Checker;
    impl VisitorMut for Checker {
        type Break = SqlError;
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<SqlError> {
            match check_expr(expr) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(e),
            }
        }
    }
    match stmt.visit(&mut Checker) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn last_ident(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .map(|i| i.value.to_ascii_lowercase())
        .unwrap_or_default()
}

fn check_expr(expr: &Expr) -> Result<(), SqlError> {
    match expr {
        Expr::Function(f) => {
            let name = last_ident(&f.name);
            if f.name.0.len() != 1 || !ALLOWED_FUNCTIONS.contains(&name.as_str()) {
                return Err(refused(
                    format!("{}()", f.name.to_string().to_ascii_lowercase()),
                    why_not(&name),
                ));
            }
            if f.over.is_some() {
                return Err(refused(
                    format!("{name}() OVER"),
                    "window functions are not supported",
                ));
            }
            if ORDER_SENSITIVE_AGGREGATES.contains(&name.as_str()) {
                let ordered = match &f.args {
                    FunctionArguments::List(list) => list
                        .clauses
                        .iter()
                        .any(|c| matches!(c, FunctionArgumentClause::OrderBy(_))),
                    _ => false,
                };
                if !ordered && f.within_group.is_empty() {
                    return Err(refused(
                        format!("{name}() without ORDER BY"),
                        format!("its result depends on row order; write {name}(x, ',' ORDER BY x)"),
                    ));
                }
            }
            Ok(())
        }
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) if n.contains(['.', 'e', 'E']) => Err(refused(
                format!("REAL literal {n}"),
                "dstorage has no floating point; use integers",
            )),
            _ => Ok(()),
        },
        Expr::Cast { data_type, .. } => check_type_is_not_real(data_type),
        Expr::Identifier(id) => check_not_rowid(&id.value),
        Expr::CompoundIdentifier(ids) => match ids.last() {
            Some(id) => check_not_rowid(&id.value),
            None => Ok(()),
        },
        Expr::Ceil { .. } | Expr::Floor { .. } | Expr::Extract { .. } | Expr::Position { .. } => {
            Err(refused(
                expr.to_string(),
                "not a SQLite function on the allow-list",
            ))
        }
        _ => Ok(()),
    }
}

fn check_type_is_not_real(dt: &DataType) -> Result<(), SqlError> {
    match allowed_column_type(dt) {
        Some(_) => Ok(()),
        None => Err(refused(
            format!("CAST AS {dt}"),
            "only INTEGER, TEXT and BLOB exist in dstorage",
        )),
    }
}

fn check_not_rowid(name: &str) -> Result<(), SqlError> {
    let lower = name.to_ascii_lowercase();
    if lower == "rowid" || lower == "oid" || lower == "_rowid_" {
        Err(refused(
            name,
            "hidden rowids are not part of the replicated state; use the primary key",
        ))
    } else {
        Ok(())
    }
}

/// The STRICT type a declared type maps to, if it is allowed.
fn allowed_column_type(dt: &DataType) -> Option<DataType> {
    match dt {
        DataType::Int(_) | DataType::Integer(_) | DataType::Bool | DataType::Boolean => {
            Some(DataType::Integer(None))
        }
        DataType::Text => Some(DataType::Text),
        DataType::Blob(_) => Some(DataType::Blob(None)),
        DataType::Custom(name, args) if args.is_empty() => match last_ident(name).as_str() {
            "integer" | "int" | "boolean" | "bool" => Some(DataType::Integer(None)),
            "text" => Some(DataType::Text),
            "blob" => Some(DataType::Blob(None)),
            _ => None,
        },
        _ => None,
    }
}

/// Make every primary-key column of a rowid table NOT NULL, except the INTEGER PRIMARY KEY
/// that is the rowid (SQLite assigns it in place of a NULL). SQLite lets other key columns
/// of a rowid table hold NULL, and a changeset names a row by its key: such rows could not
/// be told apart in one, so they may not exist. (WITHOUT ROWID tables refuse NULL keys
/// already.)
fn require_key_values(ct: &mut CreateTable, rowid: Option<&Ident>) {
    let mut key: Vec<String> = Vec::new();
    for col in &ct.columns {
        if col.options.iter().any(|o| {
            matches!(
                o.option,
                ColumnOption::Unique {
                    is_primary: true,
                    ..
                }
            )
        }) {
            key.push(col.name.value.to_lowercase());
        }
    }
    for c in &ct.constraints {
        if let TableConstraint::PrimaryKey { columns, .. } = c {
            for col in columns {
                if let Expr::Identifier(id) = &col.column.expr {
                    key.push(id.value.to_lowercase());
                }
            }
        }
    }
    let rowid = rowid.map(|id| id.value.to_lowercase());
    for col in &mut ct.columns {
        let name = col.name.value.to_lowercase();
        if !key.contains(&name) || rowid.as_ref() == Some(&name) {
            continue;
        }
        if !col
            .options
            .iter()
            .any(|o| matches!(o.option, ColumnOption::NotNull))
        {
            col.options.push(ColumnOptionDef {
                name: None,
                option: ColumnOption::NotNull,
            });
        }
    }
}

fn check_create_table(ct: &mut CreateTable, schema: &str) -> Result<(), SqlError> {
    let table = ct.name.to_string();
    let bad = |reason: &str| SqlError::TableDefinition {
        table: table.clone(),
        reason: reason.to_owned(),
    };
    if ct.temporary {
        return Err(bad("temporary tables are not supported"));
    }
    if ct.query.is_some() || ct.like.is_some() || ct.clone.is_some() {
        return Err(bad(
            "CREATE TABLE ... AS/LIKE/CLONE is not supported; list the columns",
        ));
    }
    if !ct.strict {
        return Err(bad(
            "tables must be STRICT: add STRICT after the column list",
        ));
    }
    let mut has_pk = false;
    let mut integer_pk: Option<Ident> = None;
    for col in &mut ct.columns {
        let mapped = allowed_column_type(&col.data_type).ok_or_else(|| SqlError::ColumnType {
            column: col.name.value.clone(),
            found: match &col.data_type {
                DataType::Unspecified => "no type".to_owned(),
                other => other.to_string(),
            },
            expected: "INTEGER, TEXT or BLOB (BOOLEAN is stored as INTEGER)".to_owned(),
        })?;
        let is_integer = mapped == DataType::Integer(None);
        col.data_type = mapped;
        for opt in &mut col.options {
            match &mut opt.option {
                ColumnOption::Unique {
                    is_primary: true, ..
                } => {
                    has_pk = true;
                    if is_integer {
                        integer_pk = Some(col.name.clone());
                    }
                }
                ColumnOption::DialectSpecific(tokens)
                    if tokens
                        .iter()
                        .any(|t| t.to_string().eq_ignore_ascii_case("AUTOINCREMENT")) =>
                {
                    return Err(refused(
                        format!("AUTOINCREMENT on {}", col.name.value),
                        "it keeps hidden state in sqlite_sequence; INTEGER PRIMARY KEY already assigns max+1",
                    ));
                }
                ColumnOption::ForeignKey { foreign_table, .. } => {
                    rename_foreign_table(foreign_table, schema)?;
                }
                _ => {}
            }
        }
    }
    for c in &mut ct.constraints {
        match c {
            TableConstraint::PrimaryKey { columns, .. } => {
                has_pk = true;
                if columns.len() == 1 {
                    if let Expr::Identifier(id) = &columns[0].column.expr {
                        let is_int = ct.columns.iter().any(|cd| {
                            cd.name.value.eq_ignore_ascii_case(&id.value)
                                && cd.data_type == DataType::Integer(None)
                        });
                        if is_int && !ct.without_rowid {
                            integer_pk = Some(id.clone());
                        }
                    }
                }
            }
            TableConstraint::ForeignKey { foreign_table, .. } => {
                rename_foreign_table(foreign_table, schema)?;
            }
            _ => {}
        }
    }
    if !has_pk {
        return Err(bad("a PRIMARY KEY is required"));
    }
    if !ct.without_rowid {
        require_key_values(ct, integer_pk.as_ref());
    }
    if let Some(pk) = integer_pk.filter(|_| !ct.without_rowid) {
        // An INTEGER PRIMARY KEY is the rowid; once it holds i64::MAX SQLite picks new
        // rowids at random. Keeping the maximum free makes automatic keys deterministic.
        ct.constraints.push(TableConstraint::Check {
            name: None,
            expr: Box::new(Expr::BinaryOp {
                left: Box::new(Expr::Identifier(pk)),
                op: sqlparser::ast::BinaryOperator::Lt,
                right: Box::new(Expr::value(AstValue::Number(i64::MAX.to_string(), false))),
            }),
            enforced: None,
        });
    }
    Ok(())
}

fn rename_foreign_table(name: &mut ObjectName, schema: &str) -> Result<(), SqlError> {
    let (s, t) = resolve(name, schema)?;
    if s != schema {
        return Err(SqlError::CrossSchemaWrite {
            schema: schema.to_owned(),
            target: format!("foreign key to {s}.{t}"),
        });
    }
    *name = quoted_name(&physical_name(&s, &t));
    Ok(())
}

/// Resolve a user-written object name to (schema, canonical object name).
pub(crate) fn resolve(name: &ObjectName, schema: &str) -> Result<(String, String), SqlError> {
    let parts: Vec<&Ident> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .ok_or_else(|| SqlError::InvalidTableName(name.to_string()))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [t] => Ok((schema.to_owned(), canonical_object_name(&t.value)?)),
        [s, t] => {
            validate_schema_name(&s.value)?;
            Ok((s.value.clone(), canonical_object_name(&t.value)?))
        }
        _ => Err(SqlError::InvalidTableName(name.to_string())),
    }
}

fn quoted_name(physical: &str) -> ObjectName {
    ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote(
        '"', physical,
    ))])
}

/// Rename every table, index and view reference to its physical name, and give each table
/// in a FROM clause an alias equal to its user-visible name so `users.age` still resolves.
fn rename_objects(stmt: &mut Statement, schema: &str) -> Result<BTreeSet<String>, SqlError> {
    // CTE names are local relations, not tables: leave references to them alone. They may
    // not look like system tables, since the authorizer lets the statement read them.
    struct CteCollector(BTreeSet<String>);
    impl VisitorMut for CteCollector {
        type Break = SqlError;
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<SqlError> {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    let name = cte.alias.name.value.to_ascii_lowercase();
                    if name.starts_with('_') || name.starts_with("sqlite") || name.contains('.') {
                        return ControlFlow::Break(refused(
                            format!("CTE name {name}"),
                            "CTE names may not start with _ or sqlite or contain a dot",
                        ));
                    }
                    self.0.insert(name);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut ctes = CteCollector(BTreeSet::new());
    if let ControlFlow::Break(e) = stmt.visit(&mut ctes) {
        return Err(e);
    }

    struct Renamer<'a> {
        schema: &'a str,
        ctes: BTreeSet<String>,
    }
    impl Renamer<'_> {
        fn is_cte(&self, name: &ObjectName) -> bool {
            name.0.len() == 1 && self.ctes.contains(&last_ident(name))
        }
    }
    impl VisitorMut for Renamer<'_> {
        type Break = SqlError;
        fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<SqlError> {
            if let TableFactor::Table {
                name, alias, args, ..
            } = tf
            {
                if args.is_some() {
                    return ControlFlow::Break(refused(
                        format!("table-valued function {name}()"),
                        "only tables, views and CTEs can be read",
                    ));
                }
                if alias.is_none() && !self.is_cte(name) {
                    if let Some(id) = name.0.last().and_then(ObjectNamePart::as_ident) {
                        *alias = Some(TableAlias {
                            name: Ident::new(id.value.to_ascii_lowercase()),
                            columns: vec![],
                        });
                    }
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<SqlError> {
            if self.is_cte(name) {
                return ControlFlow::Continue(());
            }
            match resolve(name, self.schema) {
                Ok((s, t)) => {
                    *name = quoted_name(&physical_name(&s, &t));
                    ControlFlow::Continue(())
                }
                Err(e) => ControlFlow::Break(e),
            }
        }
    }
    let mut renamer = Renamer {
        schema,
        ctes: ctes.0,
    };
    if let ControlFlow::Break(e) = stmt.visit(&mut renamer) {
        return Err(e);
    }
    // Names the relation visitor does not cover: index, view and drop names.
    let own = |name: &mut ObjectName| -> Result<(), SqlError> {
        let (s, t) = resolve(name, schema)?;
        *name = quoted_name(&physical_name(&s, &t));
        Ok(())
    };
    match stmt {
        Statement::CreateIndex(ci) => match &mut ci.name {
            Some(n) => own(n)?,
            None => {
                return Err(refused(
                    "CREATE INDEX without a name",
                    "name the index so it can be dropped",
                ))
            }
        },
        Statement::CreateView { name, .. } => own(name)?,
        // `INSERT INTO t AS t`, so an upsert's `t.col` still resolves after the rename.
        Statement::Insert(ins) if ins.table_alias.is_none() => {
            if let sqlparser::ast::TableObject::TableName(n) = &ins.table {
                let physical = n.to_string().trim_matches('"').to_owned();
                if let Some((_, object)) = split_physical(&physical) {
                    ins.table_alias = Some(Ident::new(object));
                }
            }
        }
        Statement::Drop { names, .. } => {
            for n in names.iter_mut() {
                own(n)?;
            }
        }
        _ => {}
    }
    Ok(renamer.ctes)
}

/// Adds the guaranteed ordering to the top-level query and to every query with a LIMIT or
/// OFFSET (which picks rows, so its order decides the result).
struct Orderer<'a> {
    catalog: &'a dyn Catalog,
    depth: usize,
    order_top: bool,
    ctes: &'a BTreeSet<String>,
}

impl VisitorMut for Orderer<'_> {
    type Break = SqlError;
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<SqlError> {
        let top = self.depth == 0 && self.order_top;
        self.depth += 1;
        if top || q.limit_clause.is_some() {
            if let Err(e) = add_ordering(q, self.catalog, self.ctes) {
                return ControlFlow::Break(e);
            }
        }
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<SqlError> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

fn is_aggregate_projection(items: &[SelectItem]) -> bool {
    items.iter().any(|item| match item {
        SelectItem::UnnamedExpr(Expr::Function(f))
        | SelectItem::ExprWithAlias {
            expr: Expr::Function(f),
            ..
        } => {
            AGGREGATES.contains(&last_ident(&f.name).as_str())
                && !(matches!(last_ident(&f.name).as_str(), "min" | "max")
                    && matches!(&f.args, FunctionArguments::List(l) if l.args.len() > 1))
        }
        _ => false,
    })
}

fn order_term(expr: Expr) -> OrderByExpr {
    OrderByExpr {
        expr,
        options: OrderByOptions {
            asc: None,
            nulls_first: None,
        },
        with_fill: None,
    }
}

/// The default order terms for a query: key columns of its FROM tables, or all result
/// columns by position when there are no keys to use.
fn default_order(
    q: &Query,
    catalog: &dyn Catalog,
    ctes: &BTreeSet<String>,
) -> Result<Vec<OrderByExpr>, SqlError> {
    if let SetExpr::Select(select) = q.body.as_ref() {
        let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
        if select.distinct.is_none() && !grouped {
            if is_aggregate_projection(&select.projection) || select.from.is_empty() {
                return Ok(vec![]);
            }
            let mut terms = Vec::new();
            let mut all_keyed = true;
            for twj in &select.from {
                for tf in
                    std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation))
                {
                    let keyed = match tf {
                        TableFactor::Table {
                            name,
                            alias: Some(alias),
                            ..
                        } => catalog
                            .primary_key(&name.to_string().trim_matches('"').replace("\"\"", "\""))
                            .map(|pk| (alias.name.clone(), pk)),
                        _ => None,
                    };
                    match keyed {
                        Some((alias, pk)) if !pk.is_empty() => {
                            for col in pk {
                                terms.push(order_term(Expr::CompoundIdentifier(vec![
                                    alias.clone(),
                                    Ident::with_quote('"', col),
                                ])));
                            }
                        }
                        _ => all_keyed = false,
                    }
                }
            }
            if all_keyed {
                return Ok(terms);
            }
        }
    }
    // Positional ordering over every result column.
    let n = result_column_count(q, catalog, ctes)?;
    Ok((1..=n)
        .map(|i| order_term(Expr::value(AstValue::Number(i.to_string(), false))))
        .collect())
}

fn result_column_count(
    q: &Query,
    catalog: &dyn Catalog,
    ctes: &BTreeSet<String>,
) -> Result<usize, SqlError> {
    fn first_select(body: &SetExpr) -> Option<&sqlparser::ast::Select> {
        match body {
            SetExpr::Select(s) => Some(s),
            SetExpr::SetOperation { left, .. } => first_select(left),
            SetExpr::Query(q) => first_select(&q.body),
            _ => None,
        }
    }
    if let Some(sel) = first_select(&q.body) {
        let wildcard = sel.projection.iter().any(|p| {
            matches!(
                p,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        });
        if !wildcard {
            return Ok(sel.projection.len());
        }
    }
    let mut bare = q.clone();
    bare.order_by = None;
    bare.limit_clause = None;
    catalog.column_count(&bare.to_string(), ctes)
}

fn add_ordering(
    q: &mut Query,
    catalog: &dyn Catalog,
    ctes: &BTreeSet<String>,
) -> Result<(), SqlError> {
    // A bare VALUES list is already in the order it is written.
    if matches!(q.body.as_ref(), SetExpr::Values(_)) {
        return Ok(());
    }
    let extra = default_order(q, catalog, ctes)?;
    if extra.is_empty() {
        return Ok(());
    }
    match &mut q.order_by {
        None => {
            q.order_by = Some(OrderBy {
                kind: OrderByKind::Expressions(extra),
                interpolate: None,
            })
        }
        Some(OrderBy {
            kind: OrderByKind::Expressions(exprs),
            ..
        }) => exprs.extend(extra),
        Some(_) => return Err(refused("ORDER BY ALL", "not SQLite syntax")),
    }
    Ok(())
}
