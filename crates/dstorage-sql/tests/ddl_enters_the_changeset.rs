//! DDL is part of the changeset and its hash; dropping a table with rows shows the rows going.

mod common;

use common::{engine, seed_users, LIMIT};
use dstorage_sql::{ChangesetRecord, RowOp};

#[test]
fn create_table_and_insert_give_ddl_then_rows() {
    let (_dir, mut engine) = engine();
    let mut block = engine.begin_block().expect("begin");
    block.create_schema("app").expect("schema");
    block
        .execute(
            "app",
            "CREATE TABLE Users(id INTEGER PRIMARY KEY, name TEXT) STRICT; INSERT INTO users VALUES (1, 'a')",
            LIMIT,
        )
        .expect("execute");
    let cs = block.changeset().expect("changeset");
    assert_eq!(cs.records.len(), 3, "{cs}");
    assert_eq!(
        cs.records[0],
        ChangesetRecord::CreateSchema { name: "app".into() }
    );
    match &cs.records[1] {
        ChangesetRecord::Ddl { schema, sql } => {
            assert_eq!(schema, "app");
            assert_eq!(
                sql,
                // The user's own text, with the physical name and the added key check.
                "CREATE TABLE \"app.users\"(id INTEGER PRIMARY KEY, name TEXT, CHECK (\"id\" < 9223372036854775807) ) STRICT"
            );
        }
        other => panic!("expected DDL, got {other:?}"),
    }
    assert!(
        matches!(&cs.records[2], ChangesetRecord::Row(r) if r.op == RowOp::Insert && r.table == "app.users")
    );
}

#[test]
fn dropping_a_table_with_rows_records_their_deletes_before_the_drop() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut block = engine.begin_block().expect("begin");
    block
        .execute("app", "UPDATE users SET age = 1 WHERE id = 1", LIMIT)
        .expect("update");
    block
        .execute("app", "DROP TABLE users", LIMIT)
        .expect("drop");
    let cs = block.changeset().expect("changeset");
    let ops: Vec<String> = cs
        .records
        .iter()
        .map(|r| match r {
            ChangesetRecord::Row(r) => format!("{:?} {}", r.op, r.key[0].value),
            ChangesetRecord::Ddl { sql, .. } => sql.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            "Delete 1",
            "Delete 2",
            "Delete 3",
            "DROP TABLE \"app.users\""
        ],
        "the update is netted into the delete; the rows go before the table"
    );
}

#[test]
fn a_failed_drop_leaves_the_changeset_as_if_it_never_ran() {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut block = engine.begin_block().expect("begin");
    block
        .execute("app", "INSERT INTO users VALUES (4, 'd', 1)", LIMIT)
        .expect("insert");
    block
        .execute(
            "app",
            "DROP TABLE users; SELECT no_such_column FROM users",
            LIMIT,
        )
        .expect_err("second statement fails");
    let cs = block.changeset().expect("changeset");
    let rows: Vec<_> = cs.records.iter().collect();
    assert_eq!(rows.len(), 1, "{cs}");
    assert!(matches!(rows[0], ChangesetRecord::Row(r) if r.op == RowOp::Insert));
    assert_eq!(block.schemas().expect("schemas")[0].tables.len(), 1);
}

#[test]
fn same_rows_with_different_ddl_hash_differently() {
    let hash_with = |ddl: &str| {
        let (_dir, mut engine) = engine();
        let mut block = engine.begin_block().expect("begin");
        block.create_schema("app").expect("schema");
        block.execute("app", ddl, LIMIT).expect("ddl");
        block
            .execute("app", "INSERT INTO t VALUES (1, 2)", LIMIT)
            .expect("insert");
        block.changeset().expect("cs").hash()
    };
    assert_ne!(
        hash_with("CREATE TABLE t(a INTEGER PRIMARY KEY, b INTEGER) STRICT"),
        hash_with("CREATE TABLE t(a INTEGER PRIMARY KEY, b INTEGER NOT NULL) STRICT")
    );
}
