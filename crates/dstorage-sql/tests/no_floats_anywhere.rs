//! No floating-point value reaches a result or the state, whatever path SQLite takes to
//! make one: text used as a number, integer overflow, casts to NUMERIC affinity, functions
//! with REAL results. Each case is an error naming the cause, in every position, and leaves
//! the state unchanged (issue 10: `typeof('1.5'+0)` was real, `CAST('0.1'+'0.2' AS TEXT)`
//! stored a version-dependent text, `CAST('1.5' AS BOOLEAN)` was REAL).

mod common;

use common::{commit_block, engine, LIMIT};
use dstorage_sql::{Engine, TableDump, Value};

/// Scalar expressions that make a float in SQLite 3.54.1 without the patch.
const FLOAT_EXPRESSIONS: &[&str] = &[
    "'1.5' + 0",
    "CAST('0.1' + '0.2' AS TEXT)",
    "CAST('1.5' AS BOOLEAN)",
    "9223372036854775807 + 1",
    "-9223372036854775807 - 2",
    "4611686018427387904 * 2",
    "-(-9223372036854775808)",
    "(-9223372036854775808) / -1",
    "'1e999' + 0",
    "abs('-2.5')",
    "'7.5' % 2",
    "length(CAST('2' * '1.5' AS TEXT))",
    // Regression: sign() made a REAL from the text to return an INTEGER, so no value check
    // saw it and `sign('1.5')` was 1.
    "sign('1.5')",
    "sign('-1e3')",
];

fn setup() -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = engine();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, s TEXT) STRICT",
            "CREATE INDEX t_n ON t(n)",
            "INSERT INTO t VALUES (1, 5, 'a'), (2, 7, '1.5'), (3, -9223372036854775808, '0.1')",
        ],
    );
    (dir, engine)
}

/// Whether an error message names a floating-point cause (the patched SQLite's runtime
/// error, or a refusal of a REAL construct before SQLite runs).
fn names_a_float(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("floating-point") || m.contains("real")
}

/// Run `sql` in a block: it must fail naming a float, leave no change and, committed,
/// leave the state as it was.
fn assert_float_error(engine: &mut Engine, sql: &str) {
    let before: TableDump = engine.dump().expect("dump");
    let mut block = engine.begin_block().expect("begin");
    let err = block.execute("app", sql, LIMIT).expect_err(sql).to_string();
    assert!(names_a_float(&err), "{sql}: {err}");
    assert!(
        block.changeset().expect("changeset").records.is_empty(),
        "{sql} left changes"
    );
    block.commit().expect("commit");
    assert_eq!(
        engine.dump().expect("dump"),
        before,
        "{sql} changed the state"
    );
}

#[test]
fn a_float_made_by_sqlite_is_an_error_in_reads() {
    let (_dir, engine) = setup();
    let mut reader = engine.reader().expect("reader");
    for e in FLOAT_EXPRESSIONS {
        let sql = format!("SELECT {e}");
        let err = reader
            .query("app", &sql, LIMIT)
            .expect_err(&sql)
            .to_string();
        assert!(names_a_float(&err), "{sql}: {err}");
        let sql = format!("SELECT id FROM t WHERE n = {e}");
        let err = reader
            .query("app", &sql, LIMIT)
            .expect_err(&sql)
            .to_string();
        assert!(names_a_float(&err), "{sql}: {err}");
    }
    for sql in [
        "SELECT sum(s) FROM t",
        "SELECT sum('0.1')",
        "SELECT typeof(s + 0) FROM t",
        "SELECT id FROM t WHERE s + 0 > 0",
        "SELECT id FROM t WHERE n = '1.5'",
        "SELECT id FROM t WHERE id = '1.5'",
        "SELECT id FROM t WHERE n IN ('5', '1.5')",
        "SELECT max(n - 1) FROM t",
    ] {
        let err = reader.query("app", sql, LIMIT).expect_err(sql).to_string();
        assert!(names_a_float(&err), "{sql}: {err}");
    }
    // The messages name the cause.
    for (sql, cause) in [
        ("SELECT '1.5' + 0", "text '1.5' used as a number"),
        ("SELECT 9223372036854775807 + 1", "integer overflow in +"),
        (
            "SELECT (-9223372036854775808) / -1",
            "integer overflow in /",
        ),
        ("SELECT abs('-2.5')", "abs() returned a REAL"),
        ("SELECT sum('0.1')", "sum() returned a REAL"),
        ("SELECT CAST('1.5' AS BOOLEAN)", "NUMERIC"),
    ] {
        let err = reader.query("app", sql, LIMIT).expect_err(sql).to_string();
        assert!(err.contains(cause), "{sql}: {err} does not name {cause:?}");
    }
}

#[test]
fn a_float_made_by_sqlite_is_an_error_in_writes_and_changes_nothing() {
    let (_dir, mut engine) = setup();
    for e in FLOAT_EXPRESSIONS {
        for sql in [
            format!("INSERT INTO t(id, n) VALUES (10, {e})"),
            format!("INSERT INTO t(id, s) VALUES (10, {e})"),
            format!("INSERT INTO t(id, n) SELECT 10, {e}"),
            format!("UPDATE t SET n = {e} WHERE id = 1"),
            format!("UPDATE t SET s = {e}"),
            format!("DELETE FROM t WHERE n = {e}"),
            format!("UPDATE t SET s = 'x' WHERE n < {e}"),
            format!("INSERT INTO t(id, n) VALUES (10, 1) RETURNING {e}"),
        ] {
            assert_float_error(&mut engine, &sql);
        }
    }
    // Text that is a number only through a REAL is refused where SQLite would convert it.
    for sql in [
        "INSERT INTO t(id, n) VALUES (10, '1.0')",
        "INSERT INTO t(id, n) VALUES (10, '1.5')",
        "INSERT INTO t(id, n) VALUES ('10.0', 1)",
        "UPDATE t SET n = s WHERE id = 2",
    ] {
        assert_float_error(&mut engine, sql);
    }
}

#[test]
fn a_float_in_a_default_check_or_generated_column_is_an_error_when_it_runs() {
    let (_dir, mut engine) = setup();
    let mut ran = 0;
    for e in ["'1.5' + 0", "9223372036854775807 + 1", "abs('-2.5')"] {
        for ddl in [
            format!("CREATE TABLE d(id INTEGER PRIMARY KEY, n INTEGER DEFAULT ({e})) STRICT"),
            format!(
                "CREATE TABLE d(id INTEGER PRIMARY KEY, n INTEGER CHECK (n + ({e}) IS NOT NULL)) STRICT"
            ),
            format!("CREATE TABLE d(id INTEGER PRIMARY KEY, n INTEGER AS ({e})) STRICT"),
            format!("CREATE TABLE d(id INTEGER PRIMARY KEY, n INTEGER AS ({e}) STORED) STRICT"),
        ] {
            // The table may be created (nothing ran yet) or refused outright; a row is not.
            let mut block = engine.begin_block().expect("begin");
            let created = block.execute("app", &ddl, LIMIT).is_ok();
            block.commit().expect("commit");
            if !created {
                continue;
            }
            assert_float_error(&mut engine, "INSERT INTO d(id) VALUES (1)");
            ran += 1;
            let mut reader = engine.reader().expect("reader");
            let rows = reader.query("app", "SELECT count(*) FROM d", LIMIT).expect("count");
            assert_eq!(rows.rows, vec![vec![Value::Integer(0)]], "{ddl}");
            commit_block(&mut engine, None, "app", &["DROP TABLE d"]);
        }
    }
    // Every one of the tables is accepted: the float only exists when a row is written.
    assert_eq!(ran, 12);
}

#[test]
fn integer_arithmetic_integer_texts_and_integer_casts_still_work() {
    let (_dir, mut engine) = setup();
    let mut reader = engine.reader().expect("reader");
    let rows = reader
        .query(
            "app",
            "SELECT 2 + 3 * 4, 7 / 2, -7 % 3, 9223372036854775807 - 1, -9223372036854775807 - 1, \
             '12' + 1, CAST('12' AS INTEGER), CAST('1.5' AS INTEGER), abs(-3), \
             (SELECT sum(n) FROM t WHERE n > 0), typeof('3' * 2)",
            LIMIT,
        )
        .expect("integer arithmetic")
        .rows;
    assert_eq!(
        rows,
        vec![vec![
            Value::Integer(14),
            Value::Integer(3),
            Value::Integer(-1),
            Value::Integer(9_223_372_036_854_775_806),
            Value::Integer(i64::MIN),
            Value::Integer(13),
            Value::Integer(12),
            Value::Integer(1),
            Value::Integer(3),
            Value::Integer(12),
            Value::Text("integer".into()),
        ]]
    );
    let rows = reader
        .query("app", "SELECT id FROM t WHERE n = '5' OR n = ' 7 '", LIMIT)
        .expect("integer text compared with an INTEGER column");
    assert_eq!(
        rows.rows,
        vec![vec![Value::Integer(1)], vec![Value::Integer(2)]]
    );
    let mut block = engine.begin_block().expect("begin");
    block
        .execute(
            "app",
            "INSERT INTO t(id, n, s) VALUES ('4', '40', 4)",
            LIMIT,
        )
        .expect("integer texts convert exactly");
    block.commit().expect("commit");
    let rows = reader
        .query("app", "SELECT id, n, s FROM t WHERE id = 4", LIMIT)
        .expect("read back");
    assert_eq!(
        rows.rows,
        vec![vec![
            Value::Integer(4),
            Value::Integer(40),
            Value::Text("4".into())
        ]]
    );
}

#[test]
fn the_engine_refuses_a_sqlite_without_the_no_float_patch() {
    // The engine opened (setup), so the probe passed on this build: SQLite itself refuses
    // to make the REAL 1.5 out of text.
    let (_dir, engine) = setup();
    let err = engine
        .connection()
        .query_row("SELECT '1.5' + 0", [], |r| r.get::<_, i64>(0))
        .expect_err("patched SQLite")
        .to_string();
    assert!(
        err.contains("floating-point value not allowed: text '1.5' used as a number"),
        "{err}"
    );
}

#[test]
fn a_float_in_an_index_expression_or_a_view_is_an_error_when_it_runs() {
    let (_dir, mut engine) = setup();
    // Building the index evaluates the expression over the rows already there.
    assert_float_error(&mut engine, "CREATE INDEX t_e ON t(n + ('1.5' + 0))");
    assert_float_error(&mut engine, "CREATE INDEX t_w ON t(n) WHERE s + 0 > 0");
    commit_block(
        &mut engine,
        None,
        "app",
        &["CREATE VIEW v AS SELECT id, s + 0 AS x FROM t"],
    );
    let mut reader = engine.reader().expect("reader");
    let err = reader
        .query("app", "SELECT x FROM v ORDER BY id", LIMIT)
        .expect_err("view")
        .to_string();
    assert!(
        err.contains("text 'a' used as a number") || names_a_float(&err),
        "{err}"
    );
    assert_float_error(&mut engine, "INSERT INTO t(id, n) SELECT id + 10, x FROM v");
}

#[test]
fn sign_of_a_text_is_an_error_unless_the_text_is_an_integer() {
    let (_dir, engine) = setup();
    let mut reader = engine.reader().expect("reader");
    let err = reader
        .query("app", "SELECT sign('1.5')", LIMIT)
        .expect_err("a REAL through text")
        .to_string();
    assert!(
        err.contains("floating-point value not allowed: text '1.5' used as a number"),
        "{err}"
    );
    // Integers, integer texts, and what is no number at all behave as in SQLite.
    let row = reader
        .query(
            "app",
            "SELECT sign(-3), sign(0), sign(' 7 '), sign('-12'), sign('abc'), sign(x'01'), sign(NULL)",
            LIMIT,
        )
        .expect("integers")
        .rows
        .remove(0);
    assert_eq!(
        row,
        vec![
            Value::Integer(-1),
            Value::Integer(0),
            Value::Integer(1),
            Value::Integer(-1),
            Value::Null,
            Value::Null,
            Value::Null,
        ]
    );
}

/// Regression (2,000-seed campaign): `UPDATE t3 SET c = '0.1' + '0.2' RETURNING c` on an
/// empty table ran, changed nothing and returned nothing, where the campaign expected the
/// float error. The rule is that the error is raised where SQLite would make the REAL value,
/// so what decides is SQLite's program for the statement: an expression evaluated per row
/// fails only when a row reaches it; a constant SQLite computes once before its loop (here
/// the one in a WHERE term) fails whether or not a row comes. The program depends only on
/// the statement, the schema and the pinned SQLite (no statistics), so every node fails the
/// same statements on the same state; the same statement on a row always fails.
#[test]
fn a_float_is_an_error_when_sqlite_evaluates_it_and_only_then() {
    let (_dir, mut engine) = setup();
    commit_block(
        &mut engine,
        None,
        "app",
        &["CREATE TABLE e(id INTEGER PRIMARY KEY, s TEXT) STRICT"],
    );
    let run = |engine: &mut Engine, sql: &str| {
        let mut block = engine.begin_block().expect("begin");
        let r = block
            .execute("app", sql, LIMIT)
            .map(|o| (o.rows_changed, o.rows.map_or(0, |r| r.rows.len())));
        block.discard().expect("discard");
        r.map_err(|e| e.to_string())
    };
    // No row reaches the expression: nothing is evaluated, nothing fails.
    for (sql, rows) in [
        ("UPDATE e SET s = '0.1' + '0.2' RETURNING s", 0),
        ("UPDATE t SET s = '0.1' + '0.2' WHERE id = 99", 0),
        ("SELECT '0.1' + '0.2' FROM e", 0),
        ("SELECT CASE WHEN n > 100 THEN '1.5' + 0 END FROM t", 3),
    ] {
        assert_eq!(run(&mut engine, sql), Ok((0, rows)), "{sql}");
    }
    // A constant of a WHERE term is computed before the loop.
    let err = run(&mut engine, "DELETE FROM t WHERE id = 99 AND n = '1.5' + 0").unwrap_err();
    assert!(names_a_float(&err), "{err}");
    // A row reaches it.
    for sql in [
        "UPDATE t SET s = '0.1' + '0.2' RETURNING s",
        "SELECT '0.1' + '0.2' FROM t",
    ] {
        let err = run(&mut engine, sql).unwrap_err();
        assert!(names_a_float(&err), "{sql}: {err}");
    }
}
