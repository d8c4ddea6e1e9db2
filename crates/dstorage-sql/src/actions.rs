//! Schema files: tables plus actions (`docs/schemas.md`). This reads the action wrappers with SQLite's own
//! tokenizer, leaves everything else to the guard, and judges each action statement by the guard's text rules
//! at deploy, so a bad action is refused when it is deployed, not when it is called.

use std::collections::BTreeMap;

use dstorage_types::action::{
    Access, Action, ActionCatalog, ActionStatement, Param, ParamType, CONTEXT_VALUES,
};

use crate::engine::check_text;
use crate::syntax::ast::Body;
use crate::syntax::token::{self, Kw, Tk, Token};
use crate::{EngineConfig, SqlError};

/// A schema file split into what runs at deploy and what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// The table SQL (everything but the action definitions and `PUBLIC READ;`). A file without either is
    /// kept byte for byte, so deploys written before actions existed run exactly the same text.
    pub sql: String,
    /// The actions and the `PUBLIC READ` flag.
    pub catalog: ActionCatalog,
}

impl SchemaFile {
    /// Whether the file declares anything beyond tables.
    pub fn has_catalog(&self) -> bool {
        self.catalog.public_read || !self.catalog.actions.is_empty()
    }
}

/// The most actions a schema may declare, and statements an action may hold: enough for any real schema,
/// small enough that the catalog stays a small system value.
pub const MAX_ACTIONS: usize = 256;
/// See [`MAX_ACTIONS`].
pub const MAX_ACTION_STATEMENTS: usize = 64;
/// The most parameters an action may take.
pub const MAX_PARAMS: usize = 64;

fn refused(construct: impl Into<String>, reason: impl Into<String>) -> SqlError {
    SqlError::Refused {
        construct: construct.into(),
        reason: reason.into(),
    }
}

/// Parse `file` and judge it as schema `schema`'s deploy: the table SQL and every action statement go through
/// the guard's text rules ([`crate::Engine::check`]); views may only SELECT, write actions only SELECT, INSERT,
/// UPDATE and DELETE.
pub fn check_schema_file(
    config: &EngineConfig,
    schema: &str,
    file: &str,
) -> Result<SchemaFile, SqlError> {
    // Parsing recurses with the SQL's nesting: the same stack guarantee as every other guard entry.
    crate::engine::with_sql_stack(|| check_schema_file_inner(config, schema, file))
}

fn check_schema_file_inner(
    config: &EngineConfig,
    schema: &str,
    file: &str,
) -> Result<SchemaFile, SqlError> {
    config.check_sql_length(file)?;
    let parsed = parse_schema_file(file)?;
    // A file of only actions may have no table SQL; any other file is judged exactly as before actions
    // existed (an empty one is refused as holding no statement).
    if !parsed.has_catalog() || !parsed.sql.trim().is_empty() {
        check_text(config, schema, &parsed.sql)?;
    }
    for action in parsed.catalog.actions.values() {
        for s in &action.statements {
            check_text(config, schema, &s.exec_sql).map_err(|e| in_action(&action.name, e))?;
        }
    }
    Ok(parsed)
}

fn in_action(action: &str, e: SqlError) -> SqlError {
    match e {
        SqlError::Refused { construct, reason } => SqlError::Refused {
            construct: format!("{construct} in action {action}"),
            reason,
        },
        SqlError::Parse(m) => SqlError::Parse(format!("in action {action}: {m}")),
        other => other,
    }
}

/// Split a schema file into its table SQL and its action catalog, without judging the SQL (see
/// [`check_schema_file`]).
pub fn parse_schema_file(file: &str) -> Result<SchemaFile, SqlError> {
    crate::engine::with_sql_stack(|| parse_schema_file_inner(file))
}

fn parse_schema_file_inner(file: &str) -> Result<SchemaFile, SqlError> {
    if let Some(at) = token::nul_position(file) {
        return Err(refused(
            format!("a NUL byte at offset {at}"),
            "SQLite stops reading SQL text at NUL",
        ));
    }
    let toks = token::significant(file);
    if let Some(bad) = toks.iter().find(|t| t.kind == Tk::Illegal) {
        return Err(SqlError::Parse(format!(
            "unrecognized token: \"{}\"",
            bad.text(file)
        )));
    }
    let mut catalog = ActionCatalog::default();
    let mut tables: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let start = i;
        let word = |k: usize| toks.get(k).map(|t| t.text(file).to_ascii_lowercase());
        let is_kw = |k: usize, kw: Kw| toks.get(k).map(|t| t.kind) == Some(Tk::Keyword(kw));
        if is_kw(i, Kw::Create)
            && (is_kw(i + 1, Kw::Action) || (is_kw(i + 1, Kw::View) && is_kw(i + 2, Kw::Action)))
        {
            let (action, next) = parse_action(file, &toks, i)?;
            if catalog.actions.len() >= MAX_ACTIONS {
                return Err(refused(
                    format!("more than {MAX_ACTIONS} actions"),
                    "a schema declares at most that many",
                ));
            }
            if catalog.actions.contains_key(&action.name) {
                return Err(refused(
                    format!("a second action named {}", action.name),
                    "action names are unique in a schema",
                ));
            }
            catalog.actions.insert(action.name.clone(), action);
            i = next;
            continue;
        }
        if word(i).as_deref() == Some("public") && word(i + 1).as_deref() == Some("read") {
            match toks.get(i + 2) {
                None => i += 2,
                Some(t) if t.kind == Tk::Semi => i += 3,
                Some(t) => {
                    return Err(SqlError::Parse(format!(
                        "near \"{}\": PUBLIC READ is a statement of its own, ended by ;",
                        t.text(file)
                    )))
                }
            }
            catalog.public_read = true;
            continue;
        }
        // Table SQL: up to and including the next `;`. The guard parses it properly afterwards; a `;` inside a
        // construct it does not run (a trigger body) only changes which refusal it reports.
        while i < toks.len() && toks[i].kind != Tk::Semi {
            i += 1;
        }
        let end = toks.get(i).map_or(file.len(), |t| t.end);
        tables.push(&file[toks[start].start..end]);
        i += 1;
    }
    let sql = if catalog.public_read || !catalog.actions.is_empty() {
        tables.join("\n")
    } else {
        file.to_owned()
    };
    Ok(SchemaFile { sql, catalog })
}

/// Read one `CREATE [VIEW] ACTION name(params) RULE AS BEGIN ... END [;]` starting at `toks[at]`; returns the
/// action and the index of the first token after it.
fn parse_action(file: &str, toks: &[Token], at: usize) -> Result<(Action, usize), SqlError> {
    let mut i = at + 1;
    let view = toks[i].kind == Tk::Keyword(Kw::View);
    if view {
        i += 1;
    }
    i += 1; // ACTION
    let near = |k: usize| -> String {
        toks.get(k).map_or_else(
            || "end of input".to_owned(),
            |t| format!("\"{}\"", t.text(file)),
        )
    };
    let expect = |k: usize, kind: Tk, what: &str| -> Result<(), SqlError> {
        if toks.get(k).map(|t| t.kind) == Some(kind) {
            Ok(())
        } else {
            Err(SqlError::Parse(format!(
                "near {}: expected {what} in an action definition",
                near(k)
            )))
        }
    };
    // The name: a bare word (keywords SQLite lets stand as names too).
    let name = match toks.get(i) {
        Some(t) if t.kind == Tk::Id || matches!(t.kind, Tk::Keyword(k) if k.falls_back_to_id()) => {
            token::dequote(t.text(file)).to_ascii_lowercase()
        }
        _ => {
            return Err(SqlError::Parse(format!(
                "near {}: expected the action's name",
                near(i)
            )))
        }
    };
    if !valid_name(&name) {
        return Err(refused(
            format!("action name {name:?}"),
            "an action name is [a-z_][a-z0-9_]{0,62}",
        ));
    }
    i += 1;
    expect(i, Tk::LParen, "(")?;
    i += 1;
    let mut params: Vec<Param> = Vec::new();
    if toks.get(i).map(|t| t.kind) == Some(Tk::RParen) {
        i += 1;
    } else {
        loop {
            let p = toks
                .get(i)
                .filter(|t| t.kind == Tk::Variable)
                .ok_or_else(|| {
                    SqlError::Parse(format!(
                        "near {}: expected a parameter such as $id in action {name}",
                        near(i)
                    ))
                })?;
            let pname = p.text(file).to_owned();
            if !pname.starts_with('$') || !valid_param(&pname[1..]) {
                return Err(refused(
                    format!("parameter {pname} of action {name}"),
                    "parameters are written $name ([A-Za-z_][A-Za-z0-9_]*); @ names are the call's context values",
                ));
            }
            if params.iter().any(|q| q.name == pname) {
                return Err(refused(
                    format!("parameter {pname} twice in action {name}"),
                    "parameter names are unique",
                ));
            }
            i += 1;
            let ty = match toks
                .get(i)
                .map(|t| t.text(file).to_ascii_uppercase())
                .as_deref()
            {
                Some("INTEGER" | "INT") => ParamType::Integer,
                Some("TEXT") => ParamType::Text,
                Some("BLOB") => ParamType::Blob,
                _ => {
                    return Err(refused(
                        format!("parameter {pname} of action {name} with type {}", near(i)),
                        "a parameter's type is INTEGER, TEXT or BLOB",
                    ))
                }
            };
            i += 1;
            let mut nullable = false;
            if toks.get(i).map(|t| t.kind) == Some(Tk::Keyword(Kw::Null)) {
                nullable = true;
                i += 1;
            } else if toks.get(i).map(|t| t.kind) == Some(Tk::Keyword(Kw::Not))
                && toks.get(i + 1).map(|t| t.kind) == Some(Tk::Keyword(Kw::Null))
            {
                i += 2;
            }
            params.push(Param {
                name: pname,
                ty,
                nullable,
            });
            if params.len() > MAX_PARAMS {
                return Err(refused(
                    format!("more than {MAX_PARAMS} parameters in action {name}"),
                    "an action takes at most that many",
                ));
            }
            match toks.get(i).map(|t| t.kind) {
                Some(Tk::Comma) => i += 1,
                Some(Tk::RParen) => {
                    i += 1;
                    break;
                }
                _ => {
                    return Err(SqlError::Parse(format!(
                        "near {}: expected , or ) after a parameter of action {name}",
                        near(i)
                    )))
                }
            }
        }
    }
    let access = match toks
        .get(i)
        .map(|t| t.text(file).to_ascii_lowercase())
        .as_deref()
    {
        Some("public") => Access::Public,
        Some("authenticated") => Access::Authenticated,
        Some("owner") => Access::Owner,
        _ => {
            return Err(SqlError::Parse(format!(
                "near {}: expected the access rule PUBLIC, AUTHENTICATED or OWNER of action {name}",
                near(i)
            )))
        }
    };
    i += 1;
    expect(i, Tk::Keyword(Kw::As), "AS")?;
    i += 1;
    expect(i, Tk::Keyword(Kw::Begin), "BEGIN")?;
    i += 1;
    let body_start = i;
    // The body ends at the END that closes no CASE.
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i].kind {
            Tk::Keyword(Kw::Case) => depth += 1,
            Tk::Keyword(Kw::End) if depth == 0 => break,
            Tk::Keyword(Kw::End) => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    if i >= toks.len() {
        return Err(SqlError::Parse(format!(
            "action {name} has no END closing its BEGIN"
        )));
    }
    let end_tok = i;
    i += 1;
    match toks.get(i).map(|t| t.kind) {
        None => {}
        Some(Tk::Semi) => i += 1,
        Some(_) => {
            return Err(SqlError::Parse(format!(
                "near {}: expected ; after the END of action {name}",
                near(i)
            )))
        }
    }
    if body_start == end_tok {
        return Err(refused(
            format!("action {name} without statements"),
            "an action runs at least one statement",
        ));
    }
    let body = &file[toks[body_start].start..toks[end_tok].start];
    let parsed = crate::guard::parse(body).map_err(|e| in_action(&name, e))?;
    if parsed.statements.len() > MAX_ACTION_STATEMENTS {
        return Err(refused(
            format!("more than {MAX_ACTION_STATEMENTS} statements in action {name}"),
            "an action runs at most that many",
        ));
    }
    let mut statements = Vec::with_capacity(parsed.statements.len());
    for stmt in &parsed.statements {
        let kind_ok = match &stmt.body {
            Body::Select(_) => true,
            Body::Insert(_) | Body::Update(_) | Body::Delete(_) => !view,
            _ => false,
        };
        if !kind_ok {
            let what = match &stmt.body {
                Body::Insert(_) => "INSERT",
                Body::Update(_) => "UPDATE",
                Body::Delete(_) => "DELETE",
                Body::Unsupported(kind) => kind.as_str(),
                _ => "a schema change or PRAGMA",
            };
            return Err(refused(
                format!("{what} in {}action {name}", if view { "view " } else { "" }),
                if view {
                    "a view action only reads: SELECT; declare it CREATE ACTION to write"
                } else {
                    "an action runs SELECT, INSERT, UPDATE and DELETE; tables are made by the schema file"
                },
            ));
        }
        let text = &body[parsed.tokens[stmt.first].start..parsed.tokens[stmt.last].end];
        statements.push(bind_names(text, &params, &name)?);
    }
    Ok((
        Action {
            name,
            view,
            access,
            params,
            statements,
        },
        i,
    ))
}

/// Replace each `$param` / `@value` token of `sql` by `?N`, numbered by first appearance, so the statement
/// binds its values by position. Only variable tokens change, and each becomes another variable token, so the
/// guard judges the same statement the file wrote.
fn bind_names(sql: &str, params: &[Param], action: &str) -> Result<ActionStatement, SqlError> {
    let mut binds: Vec<String> = Vec::new();
    let mut exec = String::with_capacity(sql.len());
    for t in token::tokenize(sql) {
        let text = t.text(sql);
        if t.kind != Tk::Variable {
            exec.push_str(text);
            continue;
        }
        let known = match text.as_bytes()[0] {
            b'$' => params.iter().any(|p| p.name == text),
            b'@' => CONTEXT_VALUES.contains(&text),
            _ => {
                return Err(refused(
                    format!("placeholder {text} in action {action}"),
                    "action SQL names its values: $param for a parameter, @caller etc. for the call's context",
                ))
            }
        };
        if !known {
            return Err(refused(
                format!("{text} in action {action}"),
                if text.starts_with('$') {
                    "it is not a parameter of the action".to_owned()
                } else {
                    format!("the context values are {}", CONTEXT_VALUES.join(", "))
                },
            ));
        }
        let n = match binds.iter().position(|b| b == text) {
            Some(k) => k + 1,
            None => {
                binds.push(text.to_owned());
                binds.len()
            }
        };
        exec.push_str(&format!("?{n}"));
    }
    Ok(ActionStatement {
        sql: sql.to_owned(),
        exec_sql: exec,
        binds,
    })
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn valid_param(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Actions by name, as the catalog stores them (for callers that hold only the map).
pub type Actions = BTreeMap<String, Action>;

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "CREATE TABLE notes(id TEXT PRIMARY KEY, author TEXT NOT NULL, body TEXT) STRICT;
-- a comment; with a semicolon
PUBLIC READ;
CREATE ACTION add_note($id TEXT, $body TEXT NULL) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN length($id) = 0 THEN error('empty id') END;
  INSERT INTO notes VALUES ($id, @caller, $body);
END;
CREATE VIEW ACTION get_note($id TEXT) PUBLIC AS BEGIN
  SELECT id, author, body FROM notes WHERE id = $id;
END;
CREATE INDEX notes_author ON notes(author);";

    #[test]
    fn a_schema_file_splits_into_tables_and_actions_with_positional_binds() {
        let f = check_schema_file(&EngineConfig::default(), "app", FILE).unwrap();
        assert!(f.catalog.public_read);
        assert_eq!(
            f.sql,
            "CREATE TABLE notes(id TEXT PRIMARY KEY, author TEXT NOT NULL, body TEXT) STRICT;\nCREATE INDEX notes_author ON notes(author);"
        );
        let add = &f.catalog.actions["add_note"];
        assert!(!add.view);
        assert_eq!(add.access, Access::Authenticated);
        assert_eq!(add.params.len(), 2);
        assert!(add.params[1].nullable);
        assert_eq!(add.statements.len(), 2);
        assert_eq!(
            add.statements[0].exec_sql,
            "SELECT CASE WHEN length(?1) = 0 THEN error('empty id') END"
        );
        assert_eq!(
            add.statements[1].exec_sql,
            "INSERT INTO notes VALUES (?1, ?2, ?3)"
        );
        assert_eq!(add.statements[1].binds, ["$id", "@caller", "$body"]);
        let get = &f.catalog.actions["get_note"];
        assert!(get.view);
        assert_eq!(
            get.signature(),
            "CREATE VIEW ACTION get_note($id TEXT) PUBLIC"
        );
    }

    #[test]
    fn a_file_without_actions_is_kept_byte_for_byte() {
        let sql = "CREATE TABLE t(a INTEGER PRIMARY KEY) STRICT; -- trailing\n";
        let f = parse_schema_file(sql).unwrap();
        assert_eq!(f.sql, sql);
        assert!(!f.has_catalog());
    }

    fn refusal(file: &str) -> String {
        check_schema_file(&EngineConfig::default(), "app", file)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_view_that_writes_is_refused_at_deploy() {
        let e = refusal(
            "CREATE TABLE t(a INTEGER PRIMARY KEY) STRICT;
             CREATE VIEW ACTION v() PUBLIC AS BEGIN DELETE FROM t; END;",
        );
        assert!(e.contains("DELETE in view action v"), "{e}");
    }

    #[test]
    fn bad_action_definitions_are_refused_with_the_cause() {
        for (file, needle) in [
            ("CREATE ACTION a($x TEXT) PUBLIC AS BEGIN SELECT $y; END;", "$y in action a"),
            ("CREATE ACTION a() PUBLIC AS BEGIN SELECT @now; END;", "@now in action a"),
            ("CREATE ACTION a() PUBLIC AS BEGIN SELECT ?1; END;", "placeholder ?1"),
            ("CREATE ACTION a($x REAL) PUBLIC AS BEGIN SELECT 1; END;", "INTEGER, TEXT or BLOB"),
            ("CREATE ACTION a() ANYONE AS BEGIN SELECT 1; END;", "PUBLIC, AUTHENTICATED or OWNER"),
            ("CREATE ACTION a() PUBLIC AS BEGIN SELECT 1;", "no END"),
            ("CREATE ACTION a() PUBLIC AS BEGIN END;", "without statements"),
            ("CREATE ACTION a($x TEXT, $x INT) PUBLIC AS BEGIN SELECT 1; END;", "twice"),
            (
                "CREATE ACTION a() PUBLIC AS BEGIN SELECT 1; END; CREATE ACTION a() PUBLIC AS BEGIN SELECT 2; END;",
                "a second action named a",
            ),
            ("CREATE ACTION a() PUBLIC AS BEGIN SELECT random(); END;", "random() in action a"),
            (
                "CREATE ACTION a() OWNER AS BEGIN CREATE TABLE x(a INTEGER PRIMARY KEY) STRICT; END;",
                "tables are made by the schema file",
            ),
            ("CREATE ACTION a() PUBLIC BEGIN SELECT 1; END;", "expected AS"),
            ("CREATE ACTION a() PUBLIC AS BEGIN SELECT 1; END CREATE TABLE", "expected ; after the END"),
        ] {
            let e = refusal(file);
            assert!(e.contains(needle), "{file}: {e}");
        }
    }

    // Hostile input: an action body nested as deep as the size limit allows, read on a thread with a small
    // stack, gets the guard's refusal, not a stack overflow.
    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "the test is that a schema file is read on a thread with a small stack"
    )]
    fn a_deeply_nested_action_body_is_refused_on_a_small_thread() {
        let depth = 45_000;
        let file = format!(
            "CREATE ACTION a() PUBLIC AS BEGIN SELECT {}1{}; END;",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        let answer = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                check_schema_file(&EngineConfig::default(), "app", &file).map_err(|e| e.to_string())
            })
            .unwrap()
            .join()
            .unwrap();
        let e = answer.unwrap_err();
        assert!(e.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn case_inside_a_body_does_not_end_it() {
        let f = parse_schema_file(
            "CREATE ACTION a($x INTEGER) PUBLIC AS BEGIN SELECT CASE $x WHEN 1 THEN 'one' ELSE CASE WHEN $x > 1 THEN 'many' END END; END",
        )
        .unwrap();
        assert_eq!(f.catalog.actions["a"].statements.len(), 1);
        assert_eq!(f.catalog.actions["a"].statements[0].binds, ["$x"]);
    }
}
