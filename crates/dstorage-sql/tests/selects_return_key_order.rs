//! Guaranteed ordering: a SELECT without ORDER BY returns rows in primary-key order of its
//! FROM tables; DISTINCT, GROUP BY and compound selects by all returned columns; a user's
//! ORDER BY comes first and the default order breaks its ties.

mod common;

use common::{commit_block, engine, LIMIT};
use dstorage_sql::{Engine, SqlError, Value};

fn setup() -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = engine();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT NOT NULL, age INTEGER NOT NULL) STRICT",
            "CREATE INDEX users_age ON users(age)",
            "CREATE TABLE posts(author INTEGER NOT NULL REFERENCES users(id), n INTEGER NOT NULL, body TEXT, PRIMARY KEY(author, n)) WITHOUT ROWID STRICT",
            "CREATE VIEW adults AS SELECT username, age FROM users WHERE age >= 18",
            // Ages run against ids, so index order is the reverse of key order.
            "INSERT INTO users VALUES (1,'ann',60),(2,'bob',50),(3,'cid',40),(4,'dan',30),(5,'eve',20)",
            "INSERT INTO posts VALUES (2,2,'b2'),(1,1,'a1'),(2,1,'b1'),(1,2,'a2')",
        ],
    );
    (dir, engine)
}

fn query(engine: &Engine, sql: &str) -> Vec<Vec<Value>> {
    let mut reader = engine.reader().expect("reader");
    reader
        .query("app", sql, LIMIT)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .rows
}

fn ints(rows: &[Vec<Value>]) -> Vec<i64> {
    rows.iter()
        .map(|r| match r[0] {
            Value::Integer(i) => i,
            ref other => panic!("not an integer: {other:?}"),
        })
        .collect()
}

#[test]
fn index_scan_still_returns_key_order() {
    let (_dir, engine) = setup();
    // Without the rewrite SQLite walks the covering age index: ids come out 5,4,3,2,1.
    let natural: Vec<i64> = engine
        .connection()
        .prepare("SELECT id FROM \"app.users\" WHERE age > 10")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        natural,
        vec![5, 4, 3, 2, 1],
        "the test needs an order that differs"
    );
    assert_eq!(
        ints(&query(&engine, "SELECT id FROM users WHERE age > 10")),
        vec![1, 2, 3, 4, 5]
    );
}

#[test]
fn user_order_by_comes_first_and_keys_break_ties() {
    let (_dir, engine) = setup();
    let rows = query(&engine, "SELECT author, n FROM posts ORDER BY author DESC");
    let pairs: Vec<(Value, Value)> = rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (Value::Integer(2), Value::Integer(1)),
            (Value::Integer(2), Value::Integer(2)),
            (Value::Integer(1), Value::Integer(1)),
            (Value::Integer(1), Value::Integer(2)),
        ]
    );
}

#[test]
fn joins_order_by_each_tables_key_in_from_order() {
    let (_dir, engine) = setup();
    let rows = query(
        &engine,
        "SELECT p.body, u.username FROM posts p JOIN users u ON u.id = p.author WHERE u.age > 45",
    );
    let bodies: Vec<&Value> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(
        bodies,
        vec![
            &Value::Text("a1".into()),
            &Value::Text("a2".into()),
            &Value::Text("b1".into()),
            &Value::Text("b2".into())
        ]
    );
    // Qualified column names keep working after table names move into the schema.
    let rows = query(
        &engine,
        "SELECT users.username FROM users WHERE users.id = 3",
    );
    assert_eq!(rows, vec![vec![Value::Text("cid".into())]]);
}

#[test]
fn distinct_group_by_and_compound_selects_order_by_all_columns() {
    let (_dir, engine) = setup();
    assert_eq!(
        ints(&query(&engine, "SELECT DISTINCT author FROM posts")),
        vec![1, 2]
    );
    let grouped = query(
        &engine,
        "SELECT age / 25, count(*) FROM users GROUP BY age / 25",
    );
    assert_eq!(ints(&grouped), vec![0, 1, 2]);
    assert_eq!(
        ints(&query(
            &engine,
            "SELECT age FROM users UNION ALL SELECT n FROM posts"
        )),
        vec![1, 1, 2, 2, 20, 30, 40, 50, 60]
    );
}

#[test]
fn views_ctes_and_limited_subqueries_are_ordered_too() {
    let (_dir, engine) = setup();
    let rows = query(&engine, "SELECT username FROM adults");
    let names: Vec<&Value> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(names[0], &Value::Text("ann".into()));
    assert_eq!(names[4], &Value::Text("eve".into()));
    let rows = query(
        &engine,
        "WITH young AS (SELECT id, age FROM users WHERE age < 45) SELECT id FROM young",
    );
    assert_eq!(ints(&rows), vec![3, 4, 5]);
    // LIMIT inside a subquery picks rows: it takes the first keys, not the first index entries.
    let rows = query(
        &engine,
        "SELECT id FROM (SELECT id FROM users WHERE age > 0 LIMIT 2)",
    );
    assert_eq!(ints(&rows), vec![1, 2]);
}

#[test]
fn group_concat_needs_its_own_order_by() {
    let (_dir, engine) = setup();
    let mut reader = engine.reader().expect("reader");
    let err = reader
        .query("app", "SELECT group_concat(username) FROM users", LIMIT)
        .expect_err("unordered aggregate");
    assert!(
        matches!(&err, SqlError::Refused { construct, .. } if construct.contains("group_concat")),
        "{err}"
    );
    let rows = query(
        &engine,
        "SELECT group_concat(username, ',' ORDER BY age) FROM users",
    );
    assert_eq!(rows, vec![vec![Value::Text("eve,dan,cid,bob,ann".into())]]);
}
