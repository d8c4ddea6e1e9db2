//! Bad input: malformed SQL, STRICT type errors, constraint violations, unknown tables,
//! oversized or hostile text, malformed changeset bytes: clear errors, no partial changes,
//! no panic.

mod common;

use common::{commit_block, engine, seed_users, LIMIT};
use dstorage_sql::{Changeset, Engine, SqlError, Value};

fn setup() -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = engine();
    seed_users(&mut engine);
    commit_block(
        &mut engine,
        None,
        "app",
        &["CREATE TABLE posts(id INTEGER PRIMARY KEY, author INTEGER NOT NULL REFERENCES users(id), body TEXT NOT NULL UNIQUE) STRICT"],
    );
    (dir, engine)
}

fn fails_cleanly(engine: &mut Engine, sql: &str) -> String {
    let before = engine.dump().expect("dump");
    let mut block = engine.begin_block().expect("begin");
    let err = block.execute("app", sql, LIMIT).expect_err(sql);
    assert!(
        block.changeset().expect("cs").records.is_empty(),
        "{sql} left changes"
    );
    block.commit().expect("commit");
    assert_eq!(engine.dump().expect("dump"), before, "{sql} changed state");
    err.to_string()
}

#[test]
fn malformed_sql_is_a_parse_error() {
    let (_dir, mut engine) = setup();
    for sql in [
        "SELEC 1",
        "SELECT * FROM",
        "INSERT INTO users VALUES (",
        "'",
        ";;;",
    ] {
        let msg = fails_cleanly(&mut engine, sql);
        assert!(
            msg.starts_with("SQL does not parse") || msg.starts_with("SQL holds no statement"),
            "{sql}: {msg}"
        );
    }
    assert_eq!(
        fails_cleanly(&mut engine, "   -- only a comment"),
        "SQL holds no statement"
    );
    // SQLite stops reading at a NUL byte, so text after one would be judged and never run.
    let msg = fails_cleanly(&mut engine, "SELECT 1\0; DELETE FROM users");
    assert!(
        msg.contains("a NUL byte at offset 8 is not allowed"),
        "{msg}"
    );
}

#[test]
fn strict_type_errors_name_the_column() {
    let (_dir, mut engine) = setup();
    let msg = fails_cleanly(
        &mut engine,
        "INSERT INTO users VALUES (9, 'x', 'not a number')",
    );
    assert!(
        msg.contains("cannot store TEXT value in INTEGER column app.users.age"),
        "{msg}"
    );
    let msg = fails_cleanly(&mut engine, "INSERT INTO users VALUES (9, X'00', 1)");
    assert!(
        msg.contains("cannot store BLOB value in TEXT column app.users.username"),
        "{msg}"
    );
}

#[test]
fn constraint_violations_roll_back_the_whole_transaction() {
    let (_dir, mut engine) = setup();
    let msg = fails_cleanly(
        &mut engine,
        "INSERT INTO users VALUES (10, 'a', 1); INSERT INTO users VALUES (10, 'b', 2)",
    );
    assert!(
        msg.contains("UNIQUE constraint failed: app.users.id"),
        "{msg}"
    );
    let msg = fails_cleanly(&mut engine, "INSERT INTO posts VALUES (1, 99, 'orphan')");
    assert!(msg.contains("FOREIGN KEY constraint failed"), "{msg}");
    let msg = fails_cleanly(&mut engine, "INSERT INTO posts VALUES (1, 1, NULL)");
    assert!(
        msg.contains("NOT NULL constraint failed: app.posts.body"),
        "{msg}"
    );
    let msg = fails_cleanly(
        &mut engine,
        "INSERT INTO users VALUES (9223372036854775807, 'max', 1)",
    );
    assert!(
        msg.contains("CHECK constraint failed"),
        "the top rowid is kept free: {msg}"
    );
}

#[test]
fn unknown_tables_and_columns_are_named() {
    let (_dir, mut engine) = setup();
    assert!(fails_cleanly(&mut engine, "SELECT * FROM nope").contains("no such table: app.nope"));
    assert!(fails_cleanly(&mut engine, "SELECT nope FROM users").contains("no such column: nope"));
    // Double-quoted strings are identifiers, never strings.
    let msg = fails_cleanly(&mut engine, "SELECT \"abc\" FROM users");
    assert!(msg.contains("no such column: \"abc\""), "{msg}");
    // SQLite's grammar has no three-part table names.
    assert!(matches!(
        engine
            .begin_block()
            .expect("b")
            .execute("app", "SELECT * FROM a.b.c", LIMIT),
        Err(SqlError::Parse(_))
    ));
    assert!(matches!(
        engine
            .begin_block()
            .expect("b")
            .execute("app", "SELECT * FROM a.\"B-c\"", LIMIT),
        Err(SqlError::InvalidTableName(_))
    ));
}

#[test]
fn hostile_text_is_refused_without_panic() {
    let (_dir, mut engine) = setup();
    let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    let msg = fails_cleanly(&mut engine, &deep);
    assert!(msg.contains("nested too deeply"), "{msg}");
    let long = format!("SELECT '{}'", "x".repeat(200_000));
    assert!(fails_cleanly(&mut engine, &long).contains("the limit is 100000 bytes"));
    let mut block = engine.begin_block().expect("begin");
    let err = block
        .execute_with_params("app", "SELECT ?", &[], LIMIT)
        .expect_err("missing parameter");
    assert!(err.to_string().contains("takes 1"), "{err}");
    let out = block
        .execute_with_params(
            "app",
            "SELECT ?, ?",
            &[Value::Integer(1), Value::Blob(vec![2])],
            LIMIT,
        )
        .expect("params");
    assert_eq!(
        out.rows.expect("rows").rows,
        vec![vec![Value::Integer(1), Value::Blob(vec![2])]]
    );
}

#[test]
fn real_results_are_refused_with_the_column_name() {
    let (_dir, mut engine) = setup();
    let msg = fails_cleanly(&mut engine, "SELECT age / 2 AS half, 1e0 AS f FROM users");
    assert!(msg.contains("REAL literal 1e0"), "{msg}");
}

#[test]
fn malformed_changeset_bytes_are_refused_with_an_offset() {
    assert!(matches!(
        Changeset::decode(b""),
        Err(SqlError::ChangesetDecode { offset: 0, .. })
    ));
    assert!(
        Changeset::decode(b"DSCS\x02\0\0\0\0").is_err(),
        "unknown version"
    );
    assert!(
        Changeset::decode(b"DSCS\x01\xff\xff\xff\xff").is_err(),
        "count beyond input"
    );
    let empty = Changeset::default().encode();
    assert_eq!(
        Changeset::decode(&empty).expect("empty"),
        Changeset::default()
    );
    let mut trailing = empty.clone();
    trailing.push(0);
    assert!(Changeset::decode(&trailing).is_err(), "trailing byte");
    // A delete that carries columns is not canonical.
    let mut bad = b"DSCS\x01\0\0\0\x01\x03".to_vec();
    bad.extend_from_slice(&[0, 0, 0, 1, b't', 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]);
    assert!(Changeset::decode(&bad).is_err());
}

#[test]
fn applying_a_forged_ddl_record_is_refused() {
    let (_dir, engine) = setup();
    let forged = Changeset {
        records: vec![dstorage_sql::ChangesetRecord::Ddl {
            schema: "app".into(),
            sql: "ATTACH DATABASE '/tmp/x' AS x".into(),
        }],
    };
    let err = forged.apply_to(engine.connection()).expect_err("forged");
    assert!(err.to_string().contains("DDL record is not"), "{err}");
    let other_schema = Changeset {
        records: vec![dstorage_sql::ChangesetRecord::Ddl {
            schema: "app".into(),
            sql: "DROP TABLE \"bank.accounts\"".into(),
        }],
    };
    assert!(other_schema.apply_to(engine.connection()).is_err());
}

/// A row is named by its key in a changeset, so no key column may hold NULL: the engine
/// makes the key columns of rowid tables NOT NULL (SQLite would let them hold NULL). The
/// INTEGER PRIMARY KEY that is the rowid still takes the next key for a NULL.
#[test]
fn a_null_in_a_primary_key_is_refused() {
    let (_dir, mut engine) = setup();
    commit_block(
        &mut engine,
        None,
        "app",
        &[
            "CREATE TABLE codes(code TEXT PRIMARY KEY, n INTEGER) STRICT",
            "CREATE TABLE pairs(a TEXT, b INTEGER, PRIMARY KEY (a, b)) STRICT",
        ],
    );
    for sql in [
        "INSERT INTO codes VALUES (NULL, 1)",
        "INSERT INTO pairs VALUES ('x', NULL)",
        "INSERT INTO pairs VALUES (NULL, 2)",
    ] {
        let err = fails_cleanly(&mut engine, sql);
        assert!(err.contains("NOT NULL"), "{sql}: {err}");
    }
    let mut block = engine.begin_block().expect("begin");
    block
        .execute("app", "INSERT INTO posts VALUES (NULL, 1, 'first')", LIMIT)
        .expect("a NULL rowid key takes the next key");
    let rows = block
        .execute("app", "SELECT id FROM posts", LIMIT)
        .expect("select")
        .rows
        .expect("rows");
    assert_eq!(rows.rows, vec![vec![Value::Integer(1)]]);
    block.commit().expect("commit");
}

#[test]
fn a_read_of_several_statements_is_refused_not_answered_with_the_last() {
    // Regression: `SELECT 1; SELECT 2` ran both and answered the second.
    let (_dir, engine) = setup();
    let mut reader = engine.reader().expect("reader");
    for (sql, n) in [
        ("SELECT 1; SELECT 2", 2),
        ("SELECT id FROM users; SELECT name FROM users; SELECT 3", 3),
    ] {
        match reader.query("app", sql, LIMIT) {
            Err(SqlError::Refused { construct, reason }) => {
                assert_eq!(construct, format!("a read of {n} statements"), "{sql}");
                assert!(reason.contains("exactly one statement"), "{reason}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    // One statement, with or without a closing semicolon, is answered.
    for sql in ["SELECT 2", "SELECT 2;"] {
        let r = reader.query("app", sql, LIMIT).expect(sql);
        assert_eq!(r.rows, vec![vec![Value::Integer(2)]], "{sql}");
    }
}

#[test]
fn check_judges_every_statement_by_its_text_without_the_tables() {
    let (_dir, engine) = setup();
    let reader = engine.reader().expect("reader");
    let table = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT) STRICT";
    // Statements that name a table created before them, or none that exists, pass: only the text is judged.
    for ok in [
        table.to_owned(),
        format!("{table}; INSERT INTO t VALUES (1, 'a'); SELECT * FROM t"),
        "INSERT INTO nowhere VALUES (1)".to_owned(),
        "SELECT * FROM users".to_owned(),
    ] {
        reader
            .check("app", &ok)
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
        engine
            .check("app", &ok)
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, says) in [
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY)".to_owned(),
            "STRICT",
        ),
        (
            "CREATE TABLE t(id INTEGER, r REAL) STRICT".to_owned(),
            "REAL",
        ),
        (
            format!("{table}; INSERT INTO t VALUES (1, hex(random()))"),
            "random",
        ),
        (
            format!("{table}; SELECT id FROM t; SELEC 1"),
            "does not parse",
        ),
        ("".to_owned(), "no statement"),
    ] {
        let e = reader.check("app", &bad).expect_err(&bad);
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }
    // The schema name is judged too; a schema that does not exist yet (a deploy's) is fine.
    assert!(matches!(
        reader.check("Bad", table),
        Err(SqlError::InvalidSchemaName(_))
    ));
    reader.check("fresh", table).expect("a new schema's DDL");
    // Nothing was created.
    assert!(reader
        .schemas()
        .expect("schemas")
        .iter()
        .all(|s| s.name != "fresh" && s.tables.iter().all(|t| t.name != "t")));
}
