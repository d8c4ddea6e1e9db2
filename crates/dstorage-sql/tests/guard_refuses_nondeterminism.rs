//! Every refused construct is refused, directly and smuggled through views, triggers, CTEs,
//! subqueries, defaults, CHECK constraints and generated columns; each refusal names it.

mod common;

use common::{engine, seed_users, LIMIT};
use dstorage_sql::{Engine, SqlError};

fn setup() -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = engine();
    seed_users(&mut engine);
    (dir, engine)
}

/// Run `sql` in a block and assert it fails naming `needle`, leaving no change behind.
fn assert_refused(engine: &mut Engine, sql: &str, needle: &str) {
    let mut block = engine.begin_block().expect("begin");
    let err = block.execute("app", sql, LIMIT).expect_err(sql);
    let msg = err.to_string().to_ascii_lowercase();
    assert!(
        msg.contains(&needle.to_ascii_lowercase()),
        "{sql}: error {msg:?} does not name {needle:?}"
    );
    assert!(
        block.changeset().expect("cs").records.is_empty(),
        "{sql} left changes"
    );
    block.discard().expect("discard");
}

#[test]
fn nondeterministic_functions_are_refused_by_name() {
    let (_dir, mut engine) = setup();
    for (sql, name) in [
        ("SELECT random()", "random()"),
        ("SELECT randomblob(8)", "randomblob()"),
        ("SELECT date('now')", "date()"),
        ("SELECT datetime()", "datetime()"),
        ("SELECT julianday('now')", "julianday()"),
        ("SELECT strftime('%s', 'now')", "strftime()"),
        ("SELECT unixepoch()", "unixepoch()"),
        ("SELECT CURRENT_TIMESTAMP", "current_timestamp"),
        ("SELECT CURRENT_DATE", "current_date"),
        ("SELECT CURRENT_TIME", "current_time"),
        ("SELECT changes()", "changes()"),
        ("SELECT total_changes()", "total_changes()"),
        ("SELECT last_insert_rowid()", "last_insert_rowid()"),
        ("SELECT load_extension('evil.so')", "load_extension()"),
        ("SELECT sqlite_version()", "sqlite_version()"),
        ("SELECT no_such_function(1)", "no_such_function()"),
        ("SELECT avg(age) FROM users", "avg()"),
        ("SELECT round(age) FROM users", "round()"),
        ("SELECT row_number() OVER () FROM users", "row_number()"),
        ("SELECT count(*) OVER () FROM users", "count() over"),
    ] {
        assert_refused(&mut engine, sql, name);
    }
}

#[test]
fn unsafe_statements_are_refused_by_name() {
    let (_dir, mut engine) = setup();
    for (sql, name) in [
        ("ATTACH DATABASE '/tmp/x.db' AS x", "attach"),
        ("DETACH DATABASE x", "detach"),
        ("PRAGMA journal_mode", "pragma journal_mode"),
        ("PRAGMA writable_schema = 1", "pragma writable_schema"),
        ("PRAGMA foreign_keys = 0", "pragma foreign_keys"),
        ("VACUUM", "vacuum"),
        ("BEGIN", "transaction control"),
        ("COMMIT", "transaction control"),
        ("SAVEPOINT s", "transaction control"),
        (
            "CREATE TRIGGER t AFTER INSERT ON users BEGIN DELETE FROM users; END",
            "trigger",
        ),
        ("ALTER TABLE users ADD COLUMN x INTEGER", "alter table"),
        ("ANALYZE users", "analyze"),
        (
            "CREATE TEMP TABLE t(id INTEGER PRIMARY KEY) STRICT",
            "temporary",
        ),
        ("CREATE VIRTUAL TABLE v USING fts5(x)", "virtual"),
        ("SELECT * FROM json_each('[1]')", "table-valued function"),
        (
            "SELECT * FROM pragma_table_info('users')",
            "table-valued function",
        ),
        (
            "INSERT INTO main.sqlite_master VALUES ('table', 'x', 'x', 0, '')",
            "main",
        ),
        ("SELECT * FROM main._dstorage_kv", "main"),
        ("SELECT rowid FROM users", "rowid"),
        ("SELECT 1.5", "real literal 1.5"),
        ("SELECT CAST(age AS REAL) FROM users", "cast as real"),
        (
            "WITH _dstorage_kv AS (SELECT 1) SELECT * FROM _dstorage_kv",
            "cte name",
        ),
    ] {
        assert_refused(&mut engine, sql, name);
    }
}

#[test]
fn system_and_internal_tables_are_invisible() {
    let (_dir, mut engine) = setup();
    // Unqualified names resolve inside the schema, so these are simply not there.
    assert_refused(
        &mut engine,
        "SELECT * FROM _dstorage_kv",
        "no such table: app._dstorage_kv",
    );
    assert_refused(
        &mut engine,
        "SELECT * FROM sqlite_master",
        "no such table: app.sqlite_master",
    );
    assert_refused(
        &mut engine,
        "DELETE FROM _dstorage_schemas",
        "no such table",
    );
}

#[test]
fn smuggling_through_views_ctes_subqueries_and_defaults_is_refused() {
    let (_dir, mut engine) = setup();
    for (sql, name) in [
        ("CREATE VIEW v AS SELECT random() AS r", "random()"),
        ("CREATE VIEW v AS SELECT * FROM users WHERE age > (SELECT abs(random()))", "random()"),
        ("WITH x AS (SELECT randomblob(4) AS b) SELECT b FROM x", "randomblob()"),
        ("SELECT (SELECT date('now'))", "date()"),
        ("SELECT * FROM users WHERE id IN (SELECT changes())", "changes()"),
        ("UPDATE users SET age = (SELECT last_insert_rowid())", "last_insert_rowid()"),
        ("INSERT INTO users SELECT 9, 'x', unixepoch()", "unixepoch()"),
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER DEFAULT (random())) STRICT",
            "random()",
        ),
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT DEFAULT CURRENT_TIMESTAMP) STRICT",
            "current_timestamp",
        ),
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT CHECK (x < date('now'))) STRICT",
            "date()",
        ),
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER GENERATED ALWAYS AS (random())) STRICT",
            "random()",
        ),
        ("CREATE INDEX i ON users(age) WHERE age > abs(random())", "random()"),
        (
            "CREATE TRIGGER t AFTER INSERT ON users BEGIN UPDATE users SET age = random(); END",
            "trigger",
        ),
    ] {
        assert_refused(&mut engine, sql, name);
    }
}

#[test]
fn authorizer_refuses_a_view_that_bypassed_the_parser() {
    // The AST pass never saw this view: it was written straight into the file. The
    // authorizer sees random() when the view is expanded and refuses it.
    let (_dir, mut engine) = setup();
    engine
        .connection()
        .execute_batch("CREATE VIEW \"app.sneaky\" AS SELECT random() AS r")
        .expect("raw view");
    let mut reader = engine.reader().expect("reader");
    let err = reader
        .query("app", "SELECT r FROM sneaky", LIMIT)
        .expect_err("refused");
    assert!(
        matches!(&err, SqlError::Refused { construct, .. } if construct == "random()"),
        "{err}"
    );
    assert_refused(&mut engine, "SELECT r FROM sneaky", "random()");
}

#[test]
fn table_definitions_must_be_strict_keyed_and_integer_text_or_blob() {
    let (_dir, mut engine) = setup();
    for (sql, needle) in [
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x REAL) STRICT",
            "column x has type REAL; use INTEGER",
        ),
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x) STRICT",
            "column x has type no type",
        ),
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x ANY) STRICT",
            "column x has type",
        ),
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER)",
            "must be strict",
        ),
        (
            "CREATE TABLE t(id INTEGER, x INTEGER) STRICT",
            "primary key is required",
        ),
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT) STRICT",
            "autoincrement",
        ),
        (
            "CREATE TABLE t AS SELECT * FROM users",
            "CREATE TABLE ... AS",
        ),
        (
            // SQLite's grammar names a parent table without a schema.
            "CREATE TABLE t(id INTEGER PRIMARY KEY, o INTEGER REFERENCES other.users(id)) STRICT",
            "does not parse",
        ),
    ] {
        assert_refused(&mut engine, sql, needle);
    }
}

#[test]
fn read_only_pragmas_and_readers_are_limited_to_reads() {
    let (_dir, mut engine) = setup();
    let mut block = engine.begin_block().expect("begin");
    let info = block
        .execute("app", "PRAGMA table_info('users')", LIMIT)
        .expect("table_info");
    assert_eq!(info.rows.expect("rows").rows.len(), 3);
    block.discard().expect("discard");
    let mut reader = engine.reader().expect("reader");
    for sql in [
        "INSERT INTO users VALUES (9, 'x', 1)",
        "DROP TABLE users",
        "CREATE TABLE t(id INTEGER PRIMARY KEY) STRICT",
    ] {
        let err = reader.query("app", sql, LIMIT).expect_err(sql);
        assert!(
            err.to_string()
                .contains("read requests may only run SELECT"),
            "{sql}: {err}"
        );
    }
}

#[test]
fn rollback_conflict_resolution_is_refused_so_a_block_cannot_be_ended() {
    let (_dir, mut engine) = setup();
    assert_refused(
        &mut engine,
        "INSERT OR ROLLBACK INTO users VALUES (1, 'x', 1)",
        "rollback conflict resolution",
    );
    assert_refused(
        &mut engine,
        "UPDATE OR ROLLBACK users SET id = 2 WHERE id = 1",
        "rollback conflict resolution",
    );
}

#[test]
fn rollback_conflict_resolution_in_a_table_definition_is_refused() {
    let (_dir, mut engine) = setup();
    // On a column constraint the guard names the clause.
    for sql in [
        "CREATE TABLE r(id INTEGER PRIMARY KEY ON CONFLICT ROLLBACK, x INTEGER) STRICT",
        "CREATE TABLE r(id INTEGER PRIMARY KEY, x INTEGER NOT NULL ON CONFLICT ROLLBACK) STRICT",
        "CREATE TABLE r(id INTEGER PRIMARY KEY, x INTEGER UNIQUE on conflict rollback) STRICT",
    ] {
        assert_refused(&mut engine, sql, "rollback conflict resolution");
    }
    // On a table constraint too.
    for sql in [
        "CREATE TABLE r(id INTEGER PRIMARY KEY, x INTEGER, UNIQUE(x) ON CONFLICT ROLLBACK) STRICT",
        "CREATE TABLE r(id INTEGER, x INTEGER, PRIMARY KEY(id) ON CONFLICT ROLLBACK) STRICT",
        "CREATE TABLE r(id INTEGER PRIMARY KEY, x INTEGER, CHECK (x > 0) ON CONFLICT ROLLBACK) STRICT",
    ] {
        assert_refused(&mut engine, sql, "rollback conflict resolution");
    }
    // The words inside a string literal are not the clause.
    common::commit_block(
        &mut engine,
        None,
        "app",
        &["CREATE TABLE r(id INTEGER PRIMARY KEY, note TEXT DEFAULT 'ON CONFLICT ROLLBACK') STRICT"],
    );
}

// Regression: a deferred foreign key was accepted. Its violation is only checked at
// COMMIT, so one transaction inserting an orphan made `Block::commit` fail and left the
// block's SQLite transaction open: every later block failed to begin.
#[test]
fn deferred_foreign_keys_are_refused_so_a_block_commit_cannot_fail() {
    let (_dir, mut engine) = setup();
    common::commit_block(
        &mut engine,
        None,
        "app",
        &["CREATE TABLE p(id INTEGER PRIMARY KEY, u TEXT UNIQUE) STRICT"],
    );
    for sql in [
        "CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED) STRICT",
        "CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER, FOREIGN KEY (p) REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED) STRICT",
        "CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) deferrable initially deferred) STRICT",
        // SQLite attaches this clause to the last foreign key declared before it.
        "CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id), u TEXT UNIQUE DEFERRABLE INITIALLY DEFERRED) STRICT",
    ] {
        let mut block = engine.begin_block().expect("begin");
        let err = block.execute("app", sql, LIMIT).expect_err(sql);
        assert!(
            err.to_string()
                .contains("INITIALLY DEFERRED foreign key is not allowed"),
            "{sql}: {err}"
        );
        block.discard().expect("discard");
    }
    // Immediate foreign keys, in every spelling, are still accepted, and an orphan is
    // refused at its own statement.
    common::commit_block(
        &mut engine,
        None,
        "app",
        &[
            "CREATE TABLE c1(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY IMMEDIATE) STRICT",
            "CREATE TABLE c2(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) NOT DEFERRABLE) STRICT",
            "CREATE TABLE c3(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) DEFERRABLE) STRICT",
        ],
    );
    let mut block = engine.begin_block().expect("begin");
    for t in ["c1", "c2", "c3"] {
        let err = block
            .execute("app", &format!("INSERT INTO {t} VALUES (1, 99)"), LIMIT)
            .expect_err(t);
        assert!(
            err.to_string().contains("FOREIGN KEY constraint failed"),
            "{t}: {err}"
        );
    }
    block.commit().expect("the block still commits");
}

#[test]
fn cached_statements_stay_guarded_per_schema() {
    let (_dir, mut engine) = setup();
    common::commit_block(
        &mut engine,
        Some("other"),
        "other",
        &["CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT, age INTEGER) STRICT"],
    );
    let mut block = engine.begin_block().expect("begin");
    // Warm the cache in app, then send the same text from other: it must resolve in other.
    for _ in 0..2 {
        block
            .execute(
                "app",
                "INSERT OR REPLACE INTO users VALUES (7, 'a', 1)",
                LIMIT,
            )
            .expect("app");
    }
    block
        .execute(
            "other",
            "INSERT OR REPLACE INTO users VALUES (7, 'a', 1)",
            LIMIT,
        )
        .expect("other");
    let tables: Vec<String> = block
        .changeset()
        .expect("cs")
        .records
        .iter()
        .filter_map(|r| match r {
            dstorage_sql::ChangesetRecord::Row(r) => Some(r.table.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(tables, vec!["app.users", "other.users"]);
    let err = block
        .execute("other", "INSERT INTO app.users VALUES (8, 'b', 1)", LIMIT)
        .expect_err("cross");
    assert!(matches!(err, SqlError::CrossSchemaWrite { .. }), "{err}");
}

/// A refused function's error says why, and what to use instead where there is something.
#[test]
fn a_refused_function_says_what_to_use_instead() {
    let (_dir, mut engine) = setup();
    for (sql, advice) in [
        ("SELECT avg(age) FROM users", "sum(x) / count(x)"),
        ("SELECT random()", "let the client choose"),
        ("SELECT date('now')", "integer seconds"),
        ("SELECT printf('%d', age) FROM users", "||"),
        ("SELECT last_insert_rowid()", "returning"),
        (
            "SELECT json_extract('{}', '$.a')",
            "json functions are not supported",
        ),
        ("SELECT no_such_function(1)", "allow-list"),
    ] {
        assert_refused(&mut engine, sql, advice);
    }
}
