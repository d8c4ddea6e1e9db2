//! Opening, schemas, execution, atomicity, system KV, commit and discard.

mod common;

use common::{commit_block, engine, printed_records, seed_users, LIMIT};
use dstorage_sql::{sqlite_version, Engine, EngineConfig, SqlError, Value, SQLITE_VERSION};

#[test]
fn bundled_sqlite_is_the_pinned_version() {
    assert_eq!(sqlite_version().expect("pinned"), SQLITE_VERSION);
}

#[test]
fn committed_rows_are_visible_to_a_reader_and_uncommitted_ones_are_not() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut reader = engine.reader().expect("reader");
    let mut block = engine.begin_block().expect("begin");
    block
        .execute("app", "INSERT INTO users VALUES (9, 'hal', 70)", LIMIT)
        .expect("insert");
    let r = reader
        .query("app", "SELECT count(*) FROM users", LIMIT)
        .expect("query");
    assert_eq!(r.rows, vec![vec![Value::Integer(3)]]);
    block.commit().expect("commit");
    let r = reader
        .query("app", "SELECT count(*) AS n FROM users", LIMIT)
        .expect("query");
    assert_eq!(r.columns, vec!["n".to_owned()]);
    assert_eq!(r.rows, vec![vec![Value::Integer(4)]]);
    assert!(r.cost > 0);
}

#[test]
fn execute_returns_rows_of_a_final_select_and_counts_changes() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut block = engine.begin_block().expect("begin");
    let out = block
        .execute(
            "app",
            "UPDATE users SET age = age + 1; SELECT username, age FROM users WHERE age > 50",
            LIMIT,
        )
        .expect("execute");
    assert_eq!(out.rows_changed, 3);
    let rows = out.rows.expect("rows");
    assert_eq!(rows.columns, vec!["username", "age"]);
    assert_eq!(
        rows.rows,
        vec![vec![Value::Text("gavin".into()), Value::Integer(53)]]
    );
    let ret = block
        .execute(
            "app",
            "DELETE FROM users WHERE id = 2 RETURNING username",
            LIMIT,
        )
        .expect("returning");
    assert_eq!(
        ret.rows.expect("rows").rows,
        vec![vec![Value::Text("vitalik".into())]]
    );
    block.discard().expect("discard");
    let mut reader = engine.reader().expect("reader");
    let r = reader
        .query("app", "SELECT age FROM users WHERE id = 1", LIMIT)
        .expect("query");
    assert_eq!(
        r.rows,
        vec![vec![Value::Integer(49)]],
        "discard rolled everything back"
    );
}

#[test]
fn failing_statement_leaves_nothing_of_its_transaction() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut block = engine.begin_block().expect("begin");
    let err = block
        .execute(
            "app",
            "INSERT INTO users VALUES (5, 'a', 1); CREATE TABLE t2(id INTEGER PRIMARY KEY) STRICT; INSERT INTO users VALUES (1, 'dup', 2)",
            LIMIT,
        )
        .expect_err("duplicate key");
    assert!(matches!(err, SqlError::Sqlite(_)), "{err}");
    assert!(
        err.to_string()
            .contains("UNIQUE constraint failed: app.users.id"),
        "{err}"
    );
    let cs = block.changeset().expect("changeset");
    assert!(cs.records.is_empty(), "nothing remains: {cs}");
    assert_eq!(block.schemas().expect("schemas")[0].tables.len(), 1);
    block.commit().expect("commit");
}

#[test]
fn schemas_lists_tables_and_columns_in_name_order() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    commit_block(
        &mut engine,
        Some("bank"),
        "bank",
        &["CREATE TABLE accounts(owner TEXT, n INTEGER, flag BOOLEAN NOT NULL, PRIMARY KEY(owner, n)) WITHOUT ROWID STRICT"],
    );
    let schemas = engine.schemas().expect("schemas");
    assert_eq!(
        schemas.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["app", "bank"]
    );
    let accounts = &schemas[1].tables[0];
    assert_eq!(accounts.name, "accounts");
    let cols: Vec<(&str, &str, u32, bool)> = accounts
        .columns
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.decl_type.as_str(),
                c.primary_key,
                c.not_null,
            )
        })
        .collect();
    assert_eq!(
        cols,
        vec![
            ("owner", "TEXT", 1, true),
            ("n", "INTEGER", 2, true),
            ("flag", "INTEGER", 0, true)
        ]
    );
}

#[test]
fn kv_writes_commit_with_the_block_and_stay_out_of_the_changeset() {
    let (_dir, mut engine) = engine();
    let mut block = engine.begin_block().expect("begin");
    block.kv_put(b"height", b"1").expect("put");
    block.kv_put(b"val/b", b"2").expect("put");
    block.kv_put(b"val/a", b"3").expect("put");
    block.kv_put(b"vam", b"4").expect("put");
    assert_eq!(block.kv_get(b"height").expect("get"), Some(b"1".to_vec()));
    assert_eq!(engine_kv_absent(&block), ());
    assert!(block.changeset().expect("changeset").records.is_empty());
    block.commit().expect("commit");
    assert_eq!(engine.kv_get(b"height").expect("get"), Some(b"1".to_vec()));
    assert_eq!(
        engine.kv_scan(b"val/").expect("scan"),
        vec![
            (b"val/a".to_vec(), b"3".to_vec()),
            (b"val/b".to_vec(), b"2".to_vec())
        ]
    );
    let mut block = engine.begin_block().expect("begin");
    block.kv_delete(b"height").expect("delete");
    block.discard().expect("discard");
    assert_eq!(engine.kv_get(b"height").expect("get"), Some(b"1".to_vec()));
    let reader = engine.reader().expect("reader");
    assert_eq!(reader.kv_get(b"vam").expect("get"), Some(b"4".to_vec()));
}

fn engine_kv_absent(_b: &dstorage_sql::Block<'_>) {}

#[test]
fn state_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    {
        let mut engine = Engine::open(&path, EngineConfig::default()).expect("open");
        seed_users(&mut engine);
        let mut block = engine.begin_block().expect("begin");
        block.kv_put(b"k", b"v").expect("put");
        block.commit().expect("commit");
    }
    let engine = Engine::open(&path, EngineConfig::default()).expect("reopen");
    assert_eq!(engine.kv_get(b"k").expect("get"), Some(b"v".to_vec()));
    assert_eq!(engine.dump().expect("dump")[0].1.len(), 3);
}

#[test]
fn schema_names_are_validated_and_unique() {
    let (_dir, mut engine) = engine();
    let mut block = engine.begin_block().expect("begin");
    assert!(matches!(
        block.create_schema("Bad"),
        Err(SqlError::InvalidSchemaName(_))
    ));
    assert!(matches!(
        block.create_schema("main"),
        Err(SqlError::InvalidSchemaName(_))
    ));
    block.create_schema("app").expect("create");
    assert!(matches!(
        block.create_schema("app"),
        Err(SqlError::SchemaExists(_))
    ));
    assert!(matches!(
        block.execute("nope", "SELECT 1", LIMIT),
        Err(SqlError::UnknownSchema(s)) if s == "nope"
    ));
}

#[test]
fn drop_schema_deletes_rows_visibly_and_removes_tables() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut block = engine.begin_block().expect("begin");
    block.drop_schema("app").expect("drop");
    let cs = block.changeset().expect("changeset");
    let text = cs.to_string();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("DELETE")).count(),
        3,
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .expect("line")
            .starts_with("DROP SCHEMA"),
        "{text}"
    );
    block.commit().expect("commit");
    assert!(engine.schemas().expect("schemas").is_empty());
    assert!(engine.dump().expect("dump").is_empty());
}

#[test]
fn cross_schema_reads_are_for_reads_and_writes_are_refused() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    commit_block(
        &mut engine,
        Some("other"),
        "other",
        &["CREATE TABLE t(id INTEGER PRIMARY KEY) STRICT"],
    );
    // A read may name another schema (the API checks that schema's owner or PUBLIC READ flag first).
    let mut reader = engine.reader().expect("reader");
    let r = reader
        .query(
            "other",
            "SELECT username FROM app.users WHERE id = 2",
            LIMIT,
        )
        .expect("read across");
    assert_eq!(r.rows, vec![vec![Value::Text("vitalik".into())]]);
    drop(reader);
    // What a transaction runs is public (its rows land in its record), so in a block even a SELECT reads only
    // its own schema, as do writes that copy (`INSERT ... SELECT`) and views.
    let mut block = engine.begin_block().expect("begin");
    for sql in [
        "SELECT username FROM app.users WHERE id = 2",
        "INSERT INTO t SELECT id FROM app.users",
        "CREATE VIEW v AS SELECT username FROM app.users",
    ] {
        let err = block.execute("other", sql, LIMIT).expect_err(sql);
        assert!(
            matches!(&err, SqlError::Refused { construct, .. } if construct.contains("app.users")),
            "{sql}: {err}"
        );
    }
    for sql in [
        "INSERT INTO app.users VALUES (7, 'x', 1)",
        "UPDATE app.users SET age = 0",
        "DELETE FROM app.users",
        "DROP TABLE app.users",
        "CREATE TABLE app.evil(id INTEGER PRIMARY KEY) STRICT",
        "CREATE INDEX app.i ON users(age)",
    ] {
        let err = block.execute("other", sql, LIMIT).expect_err(sql);
        assert!(
            matches!(err, SqlError::CrossSchemaWrite { .. }),
            "{sql}: {err}"
        );
    }
    assert!(block.changeset().expect("cs").records.is_empty());
}

#[test]
fn engine_and_reader_can_move_to_other_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Engine>();
    assert_send::<dstorage_sql::Reader>();
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut reader = engine.reader().expect("reader");
    #[allow(
        clippy::disallowed_methods,
        reason = "the test is that a Reader can be moved to another thread"
    )]
    let rows = std::thread::spawn(move || {
        reader
            .query("app", "SELECT id FROM users", LIMIT)
            .expect("query")
            .rows
    })
    .join()
    .expect("thread");
    assert_eq!(rows.len(), 3);
}

#[test]
fn upsert_can_name_the_target_table_and_excluded_values() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut block = engine.begin_block().expect("begin");
    block
        .execute(
            "app",
            "INSERT INTO users VALUES (1, 'satoshi', 1) ON CONFLICT(id) DO UPDATE SET age = users.age + excluded.age",
            LIMIT,
        )
        .expect("upsert");
    let out = block
        .execute("app", "SELECT age FROM users WHERE id = 1", LIMIT)
        .expect("select");
    assert_eq!(out.rows.expect("rows").rows, vec![vec![Value::Integer(50)]]);
}

/// SQLite's own syntax for several table options, a comma-separated list in either order,
/// is accepted, and the table gets both options.
#[test]
fn table_options_may_be_written_as_sqlite_writes_them() {
    let (_dir, mut engine) = engine();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE a(k TEXT PRIMARY KEY, v INTEGER) STRICT, WITHOUT ROWID",
            "CREATE TABLE b(k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID , STRICT; INSERT INTO b VALUES ('strict', 1)",
            "CREATE TABLE c(k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID STRICT",
            "CREATE TABLE d(k TEXT PRIMARY KEY, v INTEGER) STRICT",
        ],
    );
    let options: Vec<(String, bool, bool)> = engine
        .connection()
        .prepare(
            "SELECT name, wr, strict FROM pragma_table_list WHERE name LIKE 'app.%' ORDER BY name",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        options,
        vec![
            ("app.a".to_owned(), true, true),
            ("app.b".to_owned(), true, true),
            ("app.c".to_owned(), true, true),
            ("app.d".to_owned(), false, true),
        ]
    );
    // The words alone, elsewhere, are left as they are.
    let mut block = engine.begin_block().expect("begin");
    let rows = block
        .execute("app", "SELECT k, 'STRICT, WITHOUT ROWID' FROM b", LIMIT)
        .expect("select")
        .rows
        .expect("rows");
    assert_eq!(
        rows.rows,
        vec![vec![
            Value::Text("strict".into()),
            Value::Text("STRICT, WITHOUT ROWID".into())
        ]]
    );
    block.commit().expect("commit");
}

/// Foreign-key actions run (SQLite runs them as triggers, which are otherwise off), and
/// every row they change is in the changeset.
#[test]
fn foreign_key_actions_cascade_and_their_rows_are_in_the_changeset() {
    let (_dir, mut engine) = engine();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT",
            "CREATE TABLE handles(handle TEXT PRIMARY KEY, owner INTEGER REFERENCES users(id) ON DELETE CASCADE ON UPDATE CASCADE) STRICT, WITHOUT ROWID",
            "CREATE TABLE posts(id INTEGER PRIMARY KEY, author INTEGER REFERENCES users(id) ON DELETE SET NULL ON UPDATE CASCADE) STRICT",
            "CREATE TABLE tree(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES tree(id) ON DELETE CASCADE) STRICT",
            "INSERT INTO users VALUES (1, 'satoshi'), (2, 'vitalik')",
            "INSERT INTO handles VALUES ('@sat', 1), ('@vb', 2)",
            "INSERT INTO posts VALUES (10, 1), (11, 2)",
            "INSERT INTO tree VALUES (1, NULL), (2, 1), (3, 2), (4, 3), (5, NULL)",
        ],
    );
    let mut block = engine.begin_block().expect("begin");
    block
        .execute("app", "DELETE FROM users WHERE id = 1", LIMIT)
        .expect("delete cascades");
    block
        .execute("app", "UPDATE users SET id = 20 WHERE id = 2", LIMIT)
        .expect("update cascades");
    block
        .execute("app", "DELETE FROM tree WHERE id = 1", LIMIT)
        .expect("a tree deletes level by level");
    let lines = printed_records(&block.changeset().expect("changeset"));
    block.commit().expect("commit");
    assert_eq!(
        lines,
        vec![
            // Text keys sort by length first (the encoding's length prefix).
            "UPDATE app.handles '@vb' [1]=20",
            "DELETE app.handles '@sat'",
            "UPDATE app.posts 10 [1]=NULL",
            "UPDATE app.posts 11 [1]=20",
            "DELETE app.tree 1",
            "DELETE app.tree 2",
            "DELETE app.tree 3",
            "DELETE app.tree 4",
            "DELETE app.users 1",
            "DELETE app.users 2",
            "INSERT app.users 20 [0]=20 [1]='vitalik'",
        ],
    );
}

/// A database whose system KV was created as a WITHOUT ROWID table (the first layout) is
/// moved to the rowid layout when opened, with every pair kept.
#[test]
fn a_system_kv_of_the_first_layout_is_moved_with_its_contents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE _dstorage_kv(key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT, WITHOUT ROWID;
             INSERT INTO _dstorage_kv VALUES (X'01', X'aa'), (X'02', zeroblob(100000)), (X'0201', X'bb');",
        )
        .expect("first layout");
    }
    let mut engine = Engine::open(&path, EngineConfig::default()).expect("open");
    let without_rowid: bool = engine
        .connection()
        .query_row(
            "SELECT wr FROM pragma_table_list WHERE name = '_dstorage_kv'",
            [],
            |r| r.get(0),
        )
        .expect("layout");
    assert!(!without_rowid);
    assert_eq!(engine.kv_get(&[1]).expect("get"), Some(vec![0xaa]));
    assert_eq!(
        engine.kv_scan(&[2]).expect("scan"),
        vec![(vec![2], vec![0; 100_000]), (vec![2, 1], vec![0xbb])]
    );
    // And it goes on working as before.
    let mut block = engine.begin_block().expect("begin");
    block.kv_put(&[1], &[0xcc]).expect("put");
    block.commit().expect("commit");
    drop(engine);
    let engine = Engine::open(&path, EngineConfig::default()).expect("reopen");
    assert_eq!(engine.kv_get(&[1]).expect("get"), Some(vec![0xcc]));
}

/// `INSERT INTO copy SELECT * FROM original` between tables of the same shape is where
/// SQLite may copy records without decoding them (its transfer optimization, when the
/// statement qualifies); every copied row is in the changeset with its values either way.
#[test]
fn rows_copied_between_tables_of_the_same_shape_are_in_the_changeset() {
    let (_dir, mut engine) = engine();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE original(id INTEGER PRIMARY KEY, v TEXT NOT NULL) STRICT",
            "CREATE TABLE copy(id INTEGER PRIMARY KEY, v TEXT NOT NULL) STRICT",
            "INSERT INTO original VALUES (1, 'one'), (2, 'two'), (3, 'three')",
        ],
    );
    let mut block = engine.begin_block().expect("begin");
    block
        .execute("app", "INSERT INTO copy SELECT * FROM original", LIMIT)
        .expect("copy");
    let lines = printed_records(&block.changeset().expect("changeset"));
    block.commit().expect("commit");
    assert_eq!(
        lines,
        vec![
            "INSERT app.copy 1 [0]=1 [1]='one'",
            "INSERT app.copy 2 [0]=2 [1]='two'",
            "INSERT app.copy 3 [0]=3 [1]='three'",
        ]
    );
}
