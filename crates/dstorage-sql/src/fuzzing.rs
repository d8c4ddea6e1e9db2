//! The fuzz bodies shared by the cargo-fuzz targets and their stable-Rust twin tests:
//! [`fuzz_one`] (guard and changeset decoder must not panic) and [`SqlRules`] (whatever user
//! SQL runs keeps every consensus rule, checked on the database afterwards).

use crate::{Changeset, Engine, SqlError, Value};

/// Cost limit for fuzzed statements: small, so runaway inputs end quickly.
const FUZZ_COST_LIMIT: u64 = 20_000;

/// A fuzzing engine: one schema `f` with a table `t`, on a file in `dir`.
pub fn fuzz_engine(dir: &std::path::Path) -> Result<Engine, SqlError> {
    let mut engine = Engine::open(&dir.join("fuzz.sqlite"), crate::EngineConfig::default())?;
    let mut block = engine.begin_block()?;
    block.create_schema("f")?;
    block.execute(
        "f",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, b BLOB, n INTEGER) STRICT; \
         CREATE INDEX t_n ON t(n); INSERT INTO t VALUES (1, 'a', X'00', 5), (2, NULL, NULL, NULL)",
        1_000_000,
    )?;
    block.commit()?;
    Ok(engine)
}

/// Feed `data` to the guard or the decoder. The first byte picks which: even bytes run the
/// rest as SQL text in a block that is then discarded (and estimate it, and read it through
/// a reader); odd bytes decode the rest as changeset bytes. Errors are expected; panics and
/// non-canonical decodes are bugs.
pub fn fuzz_one(engine: &mut Engine, data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        let sql = String::from_utf8_lossy(rest);
        let _ = engine.estimate("f", &sql);
        if let Ok(mut reader) = engine.reader() {
            let _ = reader.query("f", &sql, FUZZ_COST_LIMIT);
        }
        if let Ok(mut block) = engine.begin_block() {
            let _ = block.execute("f", &sql, FUZZ_COST_LIMIT);
            let cs = block.changeset();
            if let Ok(cs) = cs {
                let bytes = cs.encode();
                assert_eq!(
                    Changeset::decode(&bytes).ok().as_ref(),
                    Some(&cs),
                    "a block's changeset must round-trip"
                );
            }
            let _ = block.discard();
        }
    } else if let Ok(cs) = Changeset::decode(rest) {
        assert_eq!(
            cs.encode(),
            rest,
            "decode accepted a non-canonical encoding"
        );
        let _ = cs.to_string();
    }
}

/// A value of the system KV that only a read of `_dstorage_kv` can return.
pub const KV_CANARY: &str = "kv-canary-5f1e9c0d";
/// A string only in the text of a table definition: only a read of `sqlite_schema` returns it.
pub const SCHEMA_CANARY: &str = "schema-canary-3c9d71";
/// Rowids of `f.k` (a TEXT-keyed rowid table): only a read of the rowid returns them.
pub const ROWID_CANARY: i64 = 6_020_837_461_503_214_001;

/// Cost limit of the statements [`SqlRules`] runs.
pub const RULES_COST_LIMIT: u64 = 200_000;

/// A consensus rule that user SQL got past, as [`SqlRules::check`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which rule.
    pub rule: &'static str,
    /// What was seen.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// What the checked SQL did (for counting what a campaign exercised).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ran {
    /// A reader ran it.
    pub read: bool,
    /// A block ran it and committed.
    pub written: bool,
}

/// Runs arbitrary SQL through the engine (guard, then SQLite) on a fresh copy of a small
/// database, then checks with an unguarded connection that whatever ran kept every rule:
/// no REAL in results or tables, no system table (`_dstorage_*`, `sqlite_*`) or rowid read,
/// no object outside a dstorage schema, every table STRICT with a primary key and only
/// INTEGER/TEXT/BLOB columns, no trigger, virtual or temporary table, no attached database,
/// cost within the limit, and the block never aborted and always committed.
///
/// Each input starts from the same file, so a finding reproduces from its input alone.
pub struct SqlRules {
    template: std::path::PathBuf,
    run: std::path::PathBuf,
}

fn violation(rule: &'static str, detail: impl Into<String>) -> Violation {
    Violation {
        rule,
        detail: detail.into(),
    }
}

impl SqlRules {
    /// The database: schema `f` with `t` (INTEGER key, an index), `k` (TEXT key; its rowids
    /// are [`ROWID_CANARY`] on, its CHECK holds [`SCHEMA_CANARY`]), `w` (WITHOUT ROWID,
    /// composite key), schema `g` with `x`, the KV holding [`KV_CANARY`]; then the `setup`
    /// statements that succeed, run in schema `f`.
    pub fn new(dir: &std::path::Path, setup: &[&str]) -> Result<SqlRules, SqlError> {
        let template = dir.join("rules-template.sqlite");
        let run = dir.join("rules-run.sqlite");
        for p in [&template, &run] {
            remove_db(p);
        }
        {
            let mut engine = Engine::open(&template, crate::EngineConfig::default())?;
            let mut block = engine.begin_block()?;
            block.create_schema("f")?;
            block.create_schema("g")?;
            block.execute(
                "f",
                &format!(
                    "CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, b BLOB, n INTEGER) STRICT; \
                     CREATE INDEX t_n ON t(n); \
                     INSERT INTO t VALUES (1, 'a', X'00', 5), (2, NULL, NULL, NULL), (3, 'c', X'0a', -1); \
                     CREATE TABLE k(name TEXT PRIMARY KEY, v INTEGER CHECK (v <> 0 OR name <> '{SCHEMA_CANARY}')) STRICT; \
                     INSERT INTO k VALUES ('a', 1), ('b', 2); \
                     CREATE TABLE w(a INTEGER, b TEXT, c INTEGER, PRIMARY KEY (a, b)) STRICT, WITHOUT ROWID; \
                     INSERT INTO w VALUES (1, 'x', 10), (1, 'y', 20), (2, 'x', 30)"
                ),
                1_000_000,
            )?;
            block.execute(
                "g",
                "CREATE TABLE x(id INTEGER PRIMARY KEY, v TEXT) STRICT; INSERT INTO x VALUES (1, 'g1')",
                1_000_000,
            )?;
            block.kv_put(b"canary", KV_CANARY.as_bytes())?;
            for s in setup {
                // A setup statement that fails (a generated schema the guard refuses) is
                // skipped: the inputs then meet fewer tables, nothing else.
                let _ = block.execute("f", s, 1_000_000);
            }
            block.commit()?;
            // Outside any block, on purpose: rowids no statement could produce.
            engine
                .connection()
                .execute("UPDATE \"f.k\" SET rowid = rowid + ?1", [ROWID_CANARY - 1])?;
        }
        Ok(SqlRules { template, run })
    }

    /// Run `sql` as a read, an estimate and a block on a fresh copy of the database, and
    /// check the rules. An error of the statement itself is no violation.
    pub fn check(&self, sql: &str) -> Result<Ran, Violation> {
        remove_db(&self.run);
        std::fs::copy(&self.template, &self.run)
            .map_err(|e| violation("setup", format!("copying the database: {e}")))?;
        let mut ran = Ran::default();
        let canaries = Canaries::for_input(sql);
        {
            let mut engine = Engine::open(&self.run, crate::EngineConfig::default())
                .map_err(|e| violation("setup", e.to_string()))?;
            let _ = engine.estimate("f", sql);
            if let Ok(mut reader) = engine.reader() {
                if let Ok(r) = reader.query("f", sql, RULES_COST_LIMIT) {
                    ran.read = true;
                    check_cost(r.cost)?;
                    canaries.check_rows(&r.rows, "a read's result")?;
                }
            }
            let mut block = engine
                .begin_block()
                .map_err(|e| violation("setup", e.to_string()))?;
            match block.execute("f", sql, RULES_COST_LIMIT) {
                Err(SqlError::BlockAborted) => {
                    return Err(violation("block aborted", "BlockAborted"));
                }
                Err(_) => {}
                Ok(out) => {
                    ran.written = true;
                    check_cost(out.cost)?;
                    if let Some(r) = &out.rows {
                        canaries.check_rows(&r.rows, "a block's result")?;
                    }
                }
            }
            block
                .changeset_encoded()
                .map_err(|e| violation("changeset", e.to_string()))?;
            block
                .commit()
                .map_err(|e| violation("block commit", e.to_string()))?;
            check_connection(engine.connection())?;
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.run,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .map_err(|e| violation("setup", e.to_string()))?;
        check_file(&conn, &canaries)?;
        Ok(ran)
    }
}

fn remove_db(p: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(s));
    }
}

fn check_cost(cost: u64) -> Result<(), Violation> {
    if cost > RULES_COST_LIMIT {
        return Err(violation(
            "cost within the limit",
            format!("cost {cost} > limit {RULES_COST_LIMIT}"),
        ));
    }
    Ok(())
}

/// Which canaries an input could produce without reading them (it names them itself).
struct Canaries {
    kv: bool,
    schema: bool,
    rowid: bool,
}

impl Canaries {
    fn for_input(sql: &str) -> Canaries {
        let lower = sql.to_ascii_lowercase();
        Canaries {
            kv: !lower.contains("canary"),
            schema: !lower.contains("canary"),
            rowid: !sql.contains("60208374615032140"),
        }
    }

    fn check_value(&self, v: &Value, where_: &str) -> Result<(), Violation> {
        let found = match v {
            Value::Text(t) => {
                (self.kv && t.contains(KV_CANARY)) || (self.schema && t.contains(SCHEMA_CANARY))
            }
            Value::Blob(b) => {
                let hay = String::from_utf8_lossy(b);
                (self.kv && hay.contains(KV_CANARY)) || (self.schema && hay.contains(SCHEMA_CANARY))
            }
            Value::Integer(i) => self.rowid && (ROWID_CANARY..ROWID_CANARY + 2).contains(i),
            Value::Null => false,
        };
        if found {
            return Err(violation(
                "no system table or rowid read",
                format!("{where_} holds {v:?}"),
            ));
        }
        Ok(())
    }

    fn check_rows(&self, rows: &[Vec<Value>], where_: &str) -> Result<(), Violation> {
        for r in rows {
            for v in r {
                self.check_value(v, where_)?;
            }
        }
        Ok(())
    }
}

/// The engine's own connection after the block: no temporary objects, no attached files.
fn check_connection(conn: &rusqlite::Connection) -> Result<(), Violation> {
    let sql_err = |e: rusqlite::Error| violation("inspection", e.to_string());
    let temp: i64 = conn
        .query_row("SELECT count(*) FROM temp.sqlite_schema", [], |r| r.get(0))
        .map_err(sql_err)?;
    if temp > 0 {
        return Err(violation("no temporary objects", format!("{temp} in temp")));
    }
    let dbs: Vec<String> = conn
        .prepare("SELECT name FROM pragma_database_list")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sql_err)?;
    if dbs.iter().any(|d| d != "main" && d != "temp") {
        return Err(violation("no attached database", format!("{dbs:?}")));
    }
    Ok(())
}

/// The file as an unguarded connection sees it.
fn check_file(conn: &rusqlite::Connection, canaries: &Canaries) -> Result<(), Violation> {
    let sql_err = |e: rusqlite::Error| violation("inspection", e.to_string());
    let schemas: Vec<String> = conn
        .prepare("SELECT name FROM _dstorage_schemas")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sql_err)?;
    let objects: Vec<(String, String, String, Option<String>)> = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(sql_err)?;
    let in_schema = |name: &str| {
        name.split_once('.')
            .is_some_and(|(s, _)| schemas.iter().any(|x| x == s))
    };
    let system = ["_dstorage_kv", "_dstorage_schemas"];
    let mut user_tables = Vec::new();
    for (kind, name, tbl, sql) in &objects {
        let sql = sql.clone().unwrap_or_default();
        match kind.as_str() {
            "trigger" => return Err(violation("no triggers", name.clone())),
            "table" if sql.to_ascii_uppercase().starts_with("CREATE VIRTUAL") => {
                return Err(violation("no virtual tables", name.clone()))
            }
            "table" if system.contains(&name.as_str()) => {}
            "table" | "view" if in_schema(name) => {
                if kind == "table" {
                    user_tables.push(name.clone());
                }
            }
            "index" if system.contains(&tbl.as_str()) || in_schema(tbl) => {
                if !name.starts_with("sqlite_autoindex_") && !in_schema(name) {
                    return Err(violation("names inside a schema", format!("index {name}")));
                }
            }
            _ => {
                return Err(violation(
                    "no object outside a dstorage schema",
                    format!("{kind} {name}"),
                ))
            }
        }
    }
    for t in &user_tables {
        let (strict, _wr): (bool, bool) = conn
            .query_row(
                "SELECT strict, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                [t],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql_err)?;
        if !strict {
            return Err(violation("tables are STRICT", t.clone()));
        }
        let cols: Vec<(String, String, i64)> = conn
            .prepare("SELECT name, type, pk FROM pragma_table_xinfo(?1)")
            .and_then(|mut s| {
                s.query_map([t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(sql_err)?;
        if !cols.iter().any(|c| c.2 > 0) {
            return Err(violation("tables have a primary key", t.clone()));
        }
        for (name, ty, _) in &cols {
            if !["INTEGER", "INT", "TEXT", "BLOB"].contains(&ty.to_ascii_uppercase().as_str()) {
                return Err(violation(
                    "columns are INTEGER, TEXT or BLOB",
                    format!("{t}.{name} is {ty:?}"),
                ));
            }
            let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let mut stmt = conn
                .prepare(&format!("SELECT {} FROM {}", quoted(name), quoted(t)))
                .map_err(sql_err)?;
            let mut rows = stmt.query([]).map_err(sql_err)?;
            while let Some(r) = rows.next().map_err(sql_err)? {
                let v = match r.get_ref(0).map_err(sql_err)? {
                    rusqlite::types::ValueRef::Real(x) => {
                        return Err(violation(
                            "no REAL in state",
                            format!("{t}.{name} holds {x}"),
                        ))
                    }
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(i) => Value::Integer(i),
                    rusqlite::types::ValueRef::Text(x) => {
                        Value::Text(String::from_utf8_lossy(x).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                };
                // The canary rowids are f.k's own; its key column is text.
                canaries.check_value(&v, &format!("table {t}"))?;
            }
        }
    }
    Ok(())
}
