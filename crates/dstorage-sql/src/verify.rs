//! The second layer of the guard: rules checked on what SQLite itself prepared or created,
//! so that they hold even if the statement guard (`guard/`) were bypassed entirely.
//!
//! - [`check_program`] reads the program SQLite compiled for a statement (its `EXPLAIN`
//!   listing), once per compile: no REAL literal, no cast that makes a REAL, no window
//!   function, `group_concat`/`string_agg` only fed in their own ORDER BY, and in a write,
//!   every loop over a table (and every recursive CTE) calls the meter.
//! - [`check_created`] reads the schema after DDL: STRICT, a primary key, column types,
//!   NOT NULL keys, no AUTOINCREMENT, no deferred foreign key, no ON CONFLICT ROLLBACK,
//!   foreign keys and indexes inside the statement's schema.
//!
//! The authorizer (`authorizer.rs`) is the third part of this layer: it judges every table,
//! column, function and operation SQLite compiles (rowids, SQLite's own tables, triggers...).
//! See docs/sql.md, "The guard".

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::authorizer::{refused, Created};
use crate::meter::METER_FUNCTION;
use crate::names::split_physical;
use crate::program::Op;
use crate::syntax::token::{significant, Kw, Tk, Token};
use crate::SqlError;

/// SQLite's affinity codes as `OP_Cast` takes them in P2.
const AFF_NUMERIC: i64 = b'C' as i64;
const AFF_REAL: i64 = b'E' as i64;

/// Aggregates whose result depends on the order rows reach them.
const ORDER_SENSITIVE: &[&str] = &["group_concat", "string_agg"];

/// The function name of an `EXPLAIN` P4 such as `group_concat(2)`.
fn function_name(p4: Option<&str>) -> &str {
    let p4 = p4.unwrap_or("");
    p4.split('(').next().unwrap_or(p4)
}

/// Check the program SQLite compiled for one statement (see the module documentation).
/// `hidden_rowid` names the table at a root page if it is a rowid table without an INTEGER
/// PRIMARY KEY (its rowid is SQLite's, not a column).
pub(crate) fn check_program(
    ops: &[Op],
    hidden_rowid: &mut dyn FnMut(i64) -> Result<Option<String>, SqlError>,
) -> Result<(), SqlError> {
    // The main program; subprograms (foreign-key actions) follow it, restarting at 0.
    let main_len = ops
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, op)| op.addr == 0)
        .map_or(ops.len(), |(i, _)| i);
    for op in ops {
        check_op(op)?;
    }
    let main = &ops[..main_len];
    let opened = openers(main);
    for (i, op) in main.iter().enumerate() {
        if matches!(op.opcode.as_str(), "AggStep" | "AggStep1")
            && ORDER_SENSITIVE.contains(&function_name(op.p4.as_deref()))
        {
            check_ordered_aggregate(main, &opened, i)?;
        }
    }
    // DDL (a CREATE INDEX walks its table once) is bounded by the table it builds from;
    // the meter is for statements that write rows.
    let ddl = main.iter().any(|op| {
        matches!(
            op.opcode.as_str(),
            "ParseSchema" | "CreateBtree" | "DropTable" | "DropIndex" | "Destroy"
        )
    });
    if !ddl && main.iter().any(|op| op.opcode == "OpenWrite") {
        check_metered_loops(main, &opened)?;
    }
    check_rowid_writes(main, hidden_rowid)
}

/// An INSERT that names the rowid in its column list (`INSERT INTO t(rowid, k) ...`): the
/// authorizer reports only the table, but the program shows it. SQLite makes a new rowid
/// (`NewRowid` into register r) and, when the statement gave one, immediately requires the
/// given value to be an integer (`MustBeInt r`). For a table with an INTEGER PRIMARY KEY that
/// value is the key; for any other rowid table it is the hidden rowid, which a user could
/// set to the maximum and so make SQLite pick later rowids at random.
fn check_rowid_writes(
    main: &[Op],
    hidden_rowid: &mut dyn FnMut(i64) -> Result<Option<String>, SqlError>,
) -> Result<(), SqlError> {
    for (i, op) in main.iter().enumerate() {
        let given = op.opcode == "NewRowid"
            && main
                .get(i + 1)
                .is_some_and(|next| next.opcode == "MustBeInt" && next.p1 == op.p2);
        if !given {
            continue;
        }
        let root = main[..i]
            .iter()
            .rev()
            .find(|o| o.opcode == "OpenWrite" && o.p1 == op.p1)
            .map(|o| o.p2);
        if let Some(root) = root {
            if let Some(table) = hidden_rowid(root)? {
                return Err(refused(
                    format!("setting the rowid of {table}"),
                    "a rowid is SQLite's storage detail; declare an INTEGER PRIMARY KEY and use it",
                ));
            }
        }
    }
    Ok(())
}

/// Rules on a single instruction.
fn check_op(op: &Op) -> Result<(), SqlError> {
    const NO_FLOAT: &str = "dstorage has no floating point; use INTEGER (e.g. cents, not 1.5)";
    match op.opcode.as_str() {
        "Real" => Err(refused(
            "a REAL literal (or an integer literal beyond 64 bits)",
            NO_FLOAT,
        )),
        "Cast" if op.p2 == AFF_REAL => Err(refused("CAST to REAL", NO_FLOAT)),
        "Cast" if op.p2 == AFF_NUMERIC => Err(refused(
            "CAST to a NUMERIC type (NUMERIC, DECIMAL, BOOLEAN, ...)",
            "it turns text such as '1.5' into REAL; use CAST(x AS INTEGER)",
        )),
        "RealAffinity" => Err(refused("a REAL column", NO_FLOAT)),
        "AggValue" | "AggInverse" => Err(refused(
            "a window function (OVER)",
            "window functions are not supported",
        )),
        _ => Ok(()),
    }
}

/// The instruction that opened each cursor (the last one, by cursor number).
fn openers(main: &[Op]) -> BTreeMap<i64, &str> {
    let mut opened = BTreeMap::new();
    for op in main {
        match op.opcode.as_str() {
            "OpenRead" | "OpenWrite" | "ReopenIdx" | "OpenEphemeral" | "OpenAutoindex"
            | "OpenPseudo" | "SorterOpen" | "OpenDup" => {
                opened.insert(op.p1, op.opcode.as_str());
            }
            _ => {}
        }
    }
    opened
}

/// An order-sensitive aggregate at `at` must be fed by its own ORDER BY: SQLite compiles
/// `group_concat(x, ',' ORDER BY k)` into an ephemeral index sorted by `k`, filled in the
/// main loop and then walked (`Rewind`, `Column`s, `AggStep`, `Next`) into the aggregate.
/// Anywhere else its input arrives in the plan's row order.
fn check_ordered_aggregate(
    main: &[Op],
    opened: &BTreeMap<i64, &str>,
    at: usize,
) -> Result<(), SqlError> {
    let name = function_name(main[at].p4.as_deref());
    let mut i = at;
    let mut cursor = None;
    let fed_in_order = loop {
        let Some(prev) = i.checked_sub(1) else {
            break false;
        };
        i = prev;
        let op = &main[i];
        match op.opcode.as_str() {
            "Column" => match cursor {
                None => cursor = Some(op.p1),
                Some(c) if c == op.p1 => {}
                Some(_) => break false,
            },
            "Rewind" => {
                break cursor.is_none_or(|c| c == op.p1)
                    && opened.get(&op.p1) == Some(&"OpenEphemeral");
            }
            _ => break false,
        }
    };
    if fed_in_order {
        Ok(())
    } else {
        Err(refused(
            format!("{name}() without its own ORDER BY"),
            format!(
                "its result would follow the plan's row order; write {name}(x, ',' ORDER BY key)"
            ),
        ))
    }
}

/// In a write, every loop over a table and every recursive CTE must call the meter. The
/// progress handler stops a write at its budget itself (our SQLite patch makes that an
/// ordinary error, not an interrupt that would roll back the whole block, see
/// `Meter::tick`); the meter call is kept as a second stop, and a loop without it means the
/// guard did not see the loop (docs/sql.md, "Cost"). Exempt are loops
/// bounded by work metered elsewhere: over sorters and ephemeral tables filled by metered
/// loops, over the rows a first pass collected, and the foreign-key checks SQLite adds (their
/// bodies count a violation with `FkCounter`).
fn check_metered_loops(main: &[Op], opened: &BTreeMap<i64, &str>) -> Result<(), SqlError> {
    for (i, op) in main.iter().enumerate() {
        let Ok(top) = usize::try_from(op.p2) else {
            continue;
        };
        if top > i {
            continue;
        }
        let needs_meter = match op.opcode.as_str() {
            // A scan over a table or index b-tree.
            "Next" | "Prev" => {
                matches!(
                    opened.get(&op.p1),
                    Some(&("OpenRead" | "OpenWrite" | "ReopenIdx"))
                ) && !main[top..=i].iter().any(|o| o.opcode == "FkCounter")
            }
            // A recursive CTE: its queue (an ephemeral table) is walked from the top while
            // the body adds rows to it.
            "Goto" => {
                let head = &main[top];
                head.opcode == "Rewind"
                    && opened.get(&head.p1) == Some(&"OpenEphemeral")
                    && main[top..=i]
                        .iter()
                        .any(|o| o.opcode == "Insert" && o.p1 == head.p1)
            }
            _ => false,
        };
        if needs_meter && !metered(main, top, i, 0) {
            return Err(refused(
                format!(
                    "a write whose loop at instruction {top}..{i} does not call {METER_FUNCTION}()"
                ),
                "every row a write visits must be metered, or it could run past its cost limit",
            ));
        }
    }
    Ok(())
}

/// Whether every turn of the loop `top..=end` calls the meter: in its body, or in the loop
/// of the consumer it hands each row to (a `Yield` to a co-routine, as SQLite runs a view,
/// a subquery or a CTE in the FROM clause: the consumer resumes it once per row).
fn metered(main: &[Op], top: usize, end: usize, depth: u32) -> bool {
    let body = &main[top..=end];
    if body.iter().any(|op| {
        matches!(op.opcode.as_str(), "Function" | "PureFunc")
            && function_name(op.p4.as_deref()) == METER_FUNCTION
    }) {
        return true;
    }
    if depth >= 8 {
        return false;
    }
    body.iter().filter(|op| op.opcode == "Yield").any(|y| {
        // The consumer's side: a Yield on the same register outside this loop, at the top
        // of a loop that a Goto closes.
        main.iter().enumerate().any(|(at, c)| {
            c.opcode == "Yield"
                && c.p1 == y.p1
                && !(top..=end).contains(&at)
                && main.iter().enumerate().skip(at + 1).any(|(g, back)| {
                    back.opcode == "Goto"
                        && usize::try_from(back.p2) == Ok(at)
                        && metered(main, at, g, depth + 1)
                })
        })
    })
}

/// Column types a table may declare (STRICT also allows REAL and ANY).
const COLUMN_TYPES: &[&str] = &["INTEGER", "INT", "TEXT", "BLOB"];

/// Check each object created by a DDL statement in `schema`, read back from SQLite's schema
/// (the statement has run; an error makes the caller roll it back).
pub(crate) fn check_created(
    conn: &Connection,
    schema: &str,
    created: &[Created],
) -> Result<(), SqlError> {
    for object in created {
        match object {
            Created::Table(name) => check_table(conn, schema, name)?,
            Created::Index(name) => {
                // SQLite names the indexes behind PRIMARY KEY and UNIQUE itself.
                if !name.starts_with("sqlite_autoindex_") {
                    in_schema(schema, "index", name)?;
                }
                let table: Option<String> = conn
                    .prepare_cached(
                        "SELECT tbl_name FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                    )?
                    .query_row([name], |r| r.get(0))
                    .ok();
                if let Some(table) = table {
                    in_schema(schema, "table of an index", &table)?;
                }
            }
            Created::View(name) => in_schema(schema, "view", name)?,
        }
    }
    Ok(())
}

fn in_schema(schema: &str, what: &str, name: &str) -> Result<(), SqlError> {
    if split_physical(name).map(|(s, _)| s) == Some(schema) {
        Ok(())
    } else {
        Err(refused(
            format!("{what} {name}"),
            format!("a statement in schema {schema} may only create objects in it"),
        ))
    }
}

/// One column as `PRAGMA table_xinfo` reports it.
struct Column {
    name: String,
    decl_type: String,
    pk: i64,
    not_null: bool,
}

fn check_table(conn: &Connection, schema: &str, name: &str) -> Result<(), SqlError> {
    in_schema(schema, "table", name)?;
    let table = |reason: &str| refused(format!("table {name}"), reason.to_owned());
    let listed: Option<(bool, bool)> = conn
        .prepare_cached(
            "SELECT strict, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
        )?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .ok();
    let Some((strict, without_rowid)) = listed else {
        return Err(table("is not a table after CREATE TABLE"));
    };
    if !strict {
        return Err(table(
            "it is not STRICT; add STRICT after the column list so SQLite checks every type",
        ));
    }
    let columns: Vec<Column> = conn
        .prepare_cached(
            "SELECT name, type, pk, \"notnull\" FROM pragma_table_xinfo(?1) ORDER BY cid",
        )?
        .query_map([name], |r| {
            Ok(Column {
                name: r.get(0)?,
                decl_type: r.get(1)?,
                pk: r.get(2)?,
                not_null: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    for c in &columns {
        let t = c.decl_type.to_ascii_uppercase();
        if !COLUMN_TYPES.contains(&t.as_str()) {
            let shown = if t.is_empty() { "no type" } else { t.as_str() };
            return Err(refused(
                format!("column {} of {name} with {shown}", c.name),
                "columns are INTEGER, TEXT or BLOB (no REAL, ANY or untyped columns)",
            ));
        }
    }
    let key: Vec<&Column> = columns.iter().filter(|c| c.pk > 0).collect();
    if key.is_empty() {
        return Err(table(
            "it has no PRIMARY KEY; a changeset names every row by its key",
        ));
    }
    let rowid_alias = key.len() == 1 && key[0].decl_type.eq_ignore_ascii_case("INTEGER");
    if !without_rowid && !rowid_alias {
        if let Some(c) = key.iter().find(|c| !c.not_null) {
            return Err(refused(
                format!("key column {} of {name} without NOT NULL", c.name),
                "SQLite lets a rowid table's key hold NULL, and a changeset could not name such a row",
            ));
        }
    }
    let foreign: Vec<String> = conn
        .prepare_cached("SELECT \"table\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq")?
        .query_map([name], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for parent in &foreign {
        in_schema(schema, "foreign key to", parent)?;
    }
    let sql: String = conn
        .prepare_cached("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1")?
        .query_row([name], |r| r.get(0))?;
    check_table_text(name, &sql)
}

/// Clauses that only show in the stored CREATE TABLE text, found in its tokens as SQLite
/// reads them (so a keyword inside a string, a quoted name or a comment does not count).
fn check_table_text(name: &str, sql: &str) -> Result<(), SqlError> {
    let tokens = significant(sql);
    let seq = |i: usize, kws: &[Kw]| -> bool {
        kws.iter().enumerate().all(|(k, kw)| {
            tokens
                .get(i + k)
                .is_some_and(|t: &Token| t.kind == Tk::Keyword(*kw))
        })
    };
    for i in 0..tokens.len() {
        if seq(i, &[Kw::Autoincrement]) {
            return Err(refused(
                format!("AUTOINCREMENT in table {name}"),
                "it keeps hidden state in sqlite_sequence; INTEGER PRIMARY KEY already takes max+1",
            ));
        }
        if seq(i, &[Kw::Initially, Kw::Deferred]) {
            return Err(refused(
                format!("a deferred foreign key in table {name}"),
                "SQLite checks it only at COMMIT, where one violation would fail the whole block",
            ));
        }
        if seq(i, &[Kw::On, Kw::Conflict, Kw::Rollback]) {
            return Err(refused(
                format!("ON CONFLICT ROLLBACK in table {name}"),
                "it would roll back the whole block, not the transaction",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(addr: i64, opcode: &str, p1: i64, p2: i64, p4: Option<&str>) -> Op {
        Op {
            addr,
            opcode: opcode.to_owned(),
            p1,
            p2,
            p3: 0,
            p4_len: p4.map_or(0, |s| s.len() as u64),
            p4: p4.map(str::to_owned),
        }
    }

    #[test]
    fn clauses_inside_strings_and_names_do_not_count() {
        assert!(check_table_text(
            "app.t",
            "CREATE TABLE \"app.t\"(id INTEGER PRIMARY KEY, s TEXT DEFAULT 'AUTOINCREMENT INITIALLY DEFERRED') STRICT"
        )
        .is_ok());
        for sql in [
            "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT)",
            "CREATE TABLE t(id INTEGER PRIMARY KEY, p INTEGER REFERENCES q(id) DEFERRABLE /* x */ INITIALLY DEFERRED)",
            "CREATE TABLE t(id INTEGER PRIMARY KEY ON CONFLICT ROLLBACK)",
        ] {
            assert!(check_table_text("t", sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn an_unordered_group_concat_is_refused_and_an_ordered_one_passes() {
        // SELECT group_concat(k) FROM t, as SQLite 3.54.1 compiles it.
        let plain = vec![
            op(0, "Init", 0, 7, None),
            op(1, "OpenRead", 1, 3, None),
            op(2, "Rewind", 1, 6, None),
            op(3, "Column", 1, 0, None),
            op(4, "AggStep", 0, 3, Some("group_concat(1)")),
            op(5, "Next", 1, 3, None),
            op(6, "Halt", 0, 0, None),
        ];
        let e = check_program(&plain, &mut |_| Ok(None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("group_concat() without its own ORDER BY"), "{e}");
        // SELECT group_concat(k ORDER BY n) FROM t: fed from the sorted ephemeral index.
        let ordered = vec![
            op(0, "Init", 0, 12, None),
            op(1, "OpenEphemeral", 1, 3, Some("k(2,B,)")),
            op(2, "OpenRead", 0, 2, None),
            op(3, "Rewind", 0, 7, None),
            op(4, "MakeRecord", 4, 3, None),
            op(5, "IdxInsert", 1, 7, None),
            op(6, "Next", 0, 4, None),
            op(7, "Rewind", 1, 11, None),
            op(8, "Column", 1, 2, None),
            op(9, "AggStep", 0, 8, Some("group_concat(1)")),
            op(10, "Next", 1, 8, None),
            op(11, "Halt", 0, 0, None),
        ];
        assert!(check_program(&ordered, &mut |_| Ok(None)).is_ok());
    }

    #[test]
    fn a_write_loop_without_the_meter_is_refused() {
        let mut ops = vec![
            op(0, "Init", 0, 8, None),
            op(1, "OpenWrite", 0, 2, None),
            op(2, "Rewind", 0, 7, None),
            op(3, "Column", 0, 1, None),
            op(4, "Function", 0, 0, Some("dstorage_meter(-1)")),
            op(5, "Delete", 0, 1, None),
            op(6, "Next", 0, 3, None),
            op(7, "Halt", 0, 0, None),
        ];
        assert!(check_program(&ops, &mut |_| Ok(None)).is_ok());
        ops[4] = op(4, "Noop", 0, 0, None);
        let e = check_program(&ops, &mut |_| Ok(None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not call dstorage_meter()"), "{e}");
    }
}

/// Statements that the statement guard would refuse or rewrite, run with it bypassed
/// (`Block::execute_unguarded`): the second layer alone must refuse each, naming it, and
/// leave nothing behind. They pin what the issue's guard bypass got through (issue 10:
/// rowids and sqlite_master read, a window function, group_concat without ORDER BY, REAL
/// literals, a non-STRICT table with ANY, REAL and untyped columns, CREATE TRIGGER, a write
/// without the per-row meter).
#[cfg(test)]
mod bypass_tests {
    use crate::{Engine, EngineConfig, TableDump};

    const LIMIT: u64 = 1_000_000;

    /// An engine with schema `app`: a TEXT-keyed rowid table `t`, an INTEGER-keyed `i`, and
    /// schema `other` with a table `o`.
    fn setup() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut engine =
            Engine::open(&dir.path().join("db.sqlite"), EngineConfig::default()).expect("open");
        let mut block = engine.begin_block().expect("begin");
        block.create_schema("app").expect("schema");
        block.create_schema("other").expect("schema");
        for sql in [
            "CREATE TABLE t(k TEXT PRIMARY KEY, n INTEGER) STRICT",
            "CREATE TABLE i(id INTEGER PRIMARY KEY, n INTEGER, s TEXT) STRICT",
            "INSERT INTO t VALUES ('a', 1), ('b', 2)",
            "INSERT INTO i VALUES (1, 5, 'x'), (2, 7, '1.5')",
        ] {
            block.execute("app", sql, LIMIT).expect(sql);
        }
        block
            .execute(
                "other",
                "CREATE TABLE o(id INTEGER PRIMARY KEY) STRICT",
                LIMIT,
            )
            .expect("other");
        block.commit().expect("commit");
        (dir, engine)
    }

    fn state(engine: &Engine) -> (TableDump, Vec<String>) {
        let objects = engine
            .connection()
            .prepare("SELECT type || ' ' || name FROM sqlite_schema ORDER BY name")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        (engine.dump().expect("dump"), objects)
    }

    /// Run each unguarded statement in its own block; each must fail naming `needle`,
    /// with the block's changeset empty and the committed state unchanged.
    fn assert_refused(engine: &mut Engine, cases: &[(&str, &str)]) {
        let before = state(engine);
        for (sql, needle) in cases {
            let mut block = engine.begin_block().expect("begin");
            let err = block
                .execute_unguarded("app", sql, LIMIT)
                .expect_err(sql)
                .to_string();
            assert!(
                err.to_ascii_lowercase()
                    .contains(&needle.to_ascii_lowercase()),
                "{sql}: {err:?} does not name {needle:?}"
            );
            assert!(
                block.changeset().expect("changeset").records.is_empty(),
                "{sql} left changes"
            );
            // Commit what is left: the refusal must have undone everything itself.
            block.commit().expect("commit");
            assert_eq!(state(engine), before, "{sql} changed the state");
        }
    }

    #[test]
    fn rowids_are_refused_in_every_spelling_without_the_guard() {
        let (_dir, mut engine) = setup();
        assert_refused(
            &mut engine,
            &[
                (r#"SELECT rowid FROM "app.t""#, "rowid of app.t"),
                (r#"SELECT oid FROM "app.t""#, "rowid of app.t"),
                (r#"SELECT _rowid_ FROM "app.t""#, "rowid of app.t"),
                (r#"SELECT k FROM "app.t" WHERE rowid = 1"#, "rowid of app.t"),
                (
                    r#"UPDATE "app.t" SET rowid = 7 WHERE k = 'a' AND dstorage_meter()"#,
                    "rowid of app.t",
                ),
                (
                    r#"INSERT INTO "app.t"(rowid, k, n) VALUES (9223372036854775807, 'z', 1)"#,
                    "setting the rowid of app.t",
                ),
                (
                    r#"INSERT INTO "app.t"(_rowid_, k) SELECT 5, k || 'x' FROM "app.t" WHERE dstorage_meter()"#,
                    "setting the rowid of app.t",
                ),
            ],
        );
        let mut reader = engine.reader().expect("reader");
        let err = reader
            .query_unguarded(r#"SELECT oid FROM "app.t""#, LIMIT)
            .expect_err("reader")
            .to_string();
        assert!(err.contains("rowid of app.t"), "{err}");
        // The INTEGER PRIMARY KEY is the rowid by name: SQLite reports the column.
        let rows = reader
            .query_unguarded(r#"SELECT rowid FROM "app.i" ORDER BY id"#, LIMIT)
            .expect("ipk");
        assert_eq!(rows.rows.len(), 2);
        drop(reader);
        // Inserting by the INTEGER PRIMARY KEY, or without a rowid, is no rowid write.
        let mut block = engine.begin_block().expect("begin");
        for sql in [
            r#"INSERT INTO "app.i"(id, n) VALUES (3, 1)"#,
            r#"INSERT INTO "app.i"(rowid, n) VALUES (4, 1)"#,
            r#"INSERT INTO "app.t"(k, n) VALUES ('c', 3)"#,
        ] {
            block.execute_unguarded("app", sql, LIMIT).expect(sql);
        }
        block.commit().expect("commit");
    }

    #[test]
    fn sqlite_tables_are_refused_outside_ddl_without_the_guard() {
        let (_dir, mut engine) = setup();
        assert_refused(
            &mut engine,
            &[
                ("SELECT name FROM sqlite_master", "reading sqlite_master"),
                (
                    "SELECT sql FROM main.sqlite_schema",
                    "reading sqlite_master",
                ),
                ("SELECT * FROM temp.sqlite_master", "sqlite_temp_master"),
                (
                    r#"INSERT INTO "app.i"(id, s) SELECT 9, name FROM sqlite_schema LIMIT 1"#,
                    "reading sqlite_master",
                ),
            ],
        );
        // A view over the catalogue can be created, but reading it is a read of the
        // catalogue outside DDL.
        let mut block = engine.begin_block().expect("begin");
        block
            .execute_unguarded(
                "app",
                r#"CREATE VIEW "app.v" AS SELECT name FROM sqlite_master"#,
                LIMIT,
            )
            .expect("view");
        let err = block
            .execute_unguarded("app", r#"SELECT * FROM "app.v""#, LIMIT)
            .expect_err("read through a view")
            .to_string();
        assert!(err.contains("reading sqlite_master"), "{err}");
        block.discard().expect("discard");
        let mut reader = engine.reader().expect("reader");
        let err = reader
            .query_unguarded("SELECT name FROM sqlite_schema", LIMIT)
            .expect_err("reader")
            .to_string();
        assert!(err.contains("reading sqlite_master"), "{err}");
    }

    #[test]
    fn compiled_programs_are_checked_without_the_guard() {
        let (_dir, mut engine) = setup();
        assert_refused(
            &mut engine,
            &[
                ("SELECT 1.5", "REAL literal"),
                ("SELECT 9223372036854775808", "REAL literal"),
                (r#"SELECT CAST(n AS REAL) FROM "app.i""#, "CAST to REAL"),
                (
                    r#"SELECT CAST(s AS NUMERIC) FROM "app.i""#,
                    "CAST to a NUMERIC type",
                ),
                (
                    r#"SELECT CAST(s AS BOOLEAN) FROM "app.i""#,
                    "CAST to a NUMERIC type",
                ),
                (r#"SELECT sum(n) OVER () FROM "app.i""#, "window function"),
                (
                    r#"SELECT sum(n) OVER (ORDER BY id ROWS 1 PRECEDING) FROM "app.i""#,
                    "window function",
                ),
                (
                    r#"SELECT group_concat(s) FROM "app.i""#,
                    "group_concat() without its own ORDER BY",
                ),
                (
                    r#"SELECT n, string_agg(s, ',') FROM "app.i" GROUP BY n"#,
                    "string_agg() without its own ORDER BY",
                ),
                (r#"INSERT INTO "app.i" VALUES (3, 1, 2.5)"#, "REAL literal"),
            ],
        );
        // Their own ORDER BY makes them fine.
        let mut reader = engine.reader().expect("reader");
        let rows = reader
            .query_unguarded(
                r#"SELECT group_concat(s, ',' ORDER BY id) FROM "app.i""#,
                LIMIT,
            )
            .expect("ordered group_concat");
        assert_eq!(rows.rows, vec![vec![crate::Value::Text("x,1.5".into())]]);
    }

    #[test]
    fn tables_are_checked_after_ddl_without_the_guard() {
        let (_dir, mut engine) = setup();
        assert_refused(
            &mut engine,
            &[
                (
                    r#"CREATE TABLE "app.x"(id INTEGER PRIMARY KEY, a ANY, b REAL, c)"#,
                    "not STRICT",
                ),
                (
                    r#"CREATE TABLE "app.x"(id INTEGER PRIMARY KEY, a ANY) STRICT"#,
                    "column a of app.x with ANY",
                ),
                (
                    r#"CREATE TABLE "app.x"(id INTEGER PRIMARY KEY, b REAL) STRICT"#,
                    "column b of app.x with REAL",
                ),
                (
                    r#"CREATE TABLE "app.x"(id INTEGER, v TEXT) STRICT"#,
                    "no PRIMARY KEY",
                ),
                (
                    // The authorizer stops the sqlite_sequence table AUTOINCREMENT needs
                    // first; the text check is the second reading.
                    r#"CREATE TABLE "app.x"(id INTEGER PRIMARY KEY AUTOINCREMENT) STRICT"#,
                    "may not write to sqlite_sequence",
                ),
                (
                    r#"CREATE TABLE "app.x"(id INTEGER PRIMARY KEY, p INTEGER REFERENCES "app.i"(id) DEFERRABLE INITIALLY DEFERRED) STRICT"#,
                    "deferred foreign key",
                ),
                (
                    r#"CREATE TABLE "app.x"(id INTEGER PRIMARY KEY ON CONFLICT ROLLBACK) STRICT"#,
                    "ON CONFLICT ROLLBACK",
                ),
                (
                    r#"CREATE TABLE "app.x"(id INTEGER PRIMARY KEY, p INTEGER REFERENCES "other.o"(id)) STRICT"#,
                    "foreign key to other.o",
                ),
                (
                    r#"CREATE TABLE "other.x"(id INTEGER PRIMARY KEY) STRICT"#,
                    "may not write to other.x",
                ),
                (
                    r#"CREATE INDEX "other.t_n" ON "app.t"(n)"#,
                    "may not write to other.t_n",
                ),
                (
                    r#"CREATE TRIGGER "app.tr" AFTER INSERT ON "app.t" BEGIN DELETE FROM "app.t"; END"#,
                    "CREATE TRIGGER",
                ),
                (
                    r#"CREATE TEMP TABLE x(id INTEGER PRIMARY KEY)"#,
                    "may not write to sqlite_temp_master",
                ),
            ],
        );
        // What the rules allow passes the same checks. (A STRICT table's key columns are
        // NOT NULL by SQLite's own rule, so the NOT NULL check on keys cannot fail after
        // the STRICT one; it stays as a second reading.)
        let mut block = engine.begin_block().expect("begin");
        for sql in [
            r#"CREATE TABLE "app.ok"(k TEXT PRIMARY KEY NOT NULL, n INT, b BLOB, p INTEGER REFERENCES "app.i"(id)) STRICT"#,
            r#"CREATE TABLE "app.w"(k TEXT PRIMARY KEY, n INTEGER) STRICT, WITHOUT ROWID"#,
            r#"CREATE INDEX "app.ok_n" ON "app.ok"(n)"#,
        ] {
            block.execute_unguarded("app", sql, LIMIT).expect(sql);
        }
        block.commit().expect("commit");
    }

    #[test]
    fn a_write_without_the_per_row_meter_is_refused_without_the_guard() {
        let (_dir, mut engine) = setup();
        assert_refused(
            &mut engine,
            &[
                (
                    r#"DELETE FROM "app.i" WHERE n > 0"#,
                    "does not call dstorage_meter()",
                ),
                (
                    r#"UPDATE "app.t" SET n = n + 1"#,
                    "does not call dstorage_meter()",
                ),
                (
                    r#"INSERT INTO "app.i"(id, n) SELECT id + 10, n FROM "app.i""#,
                    "does not call dstorage_meter()",
                ),
                (
                    r#"INSERT INTO "app.i"(id, n) WITH RECURSIVE c(x) AS (SELECT 100 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT x, x FROM c"#,
                    "does not call dstorage_meter()",
                ),
            ],
        );
        // With the meter in the loop the same writes run.
        let mut block = engine.begin_block().expect("begin");
        let out = block
            .execute_unguarded(
                "app",
                r#"UPDATE "app.t" SET n = n + 1 WHERE dstorage_meter()"#,
                LIMIT,
            )
            .expect("metered update");
        assert_eq!(out.rows_changed, 2);
        block.commit().expect("commit");
    }
}
