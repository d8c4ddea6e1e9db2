//! The seed example from issue 2: one block of insert, update and delete.

mod common;

use common::{engine, seed_users, LIMIT};
use dstorage_sql::{Changeset, ChangesetRecord, ColumnValue, RowChange, RowOp, Value};

fn cv(position: u16, value: Value) -> ColumnValue {
    ColumnValue { position, value }
}

fn seed_block_changeset() -> Changeset {
    let (_dir, mut engine) = engine();
    seed_users(&mut engine);
    let mut block = engine.begin_block().expect("begin");
    block
        .execute("app", "INSERT INTO users VALUES (4,'eth_maxi',44)", LIMIT)
        .expect("insert");
    block
        .execute(
            "app",
            "UPDATE users SET age = age + 1 WHERE username = 'satoshi'",
            LIMIT,
        )
        .expect("update");
    block
        .execute("app", "DELETE FROM users WHERE age > 50", LIMIT)
        .expect("delete");
    let cs = block.changeset().expect("changeset");
    block.commit().expect("commit");
    cs
}

#[test]
fn seed_example_changeset_is_update_delete_insert() {
    let cs = seed_block_changeset();
    let table = "app.users".to_owned();
    assert_eq!(
        cs.records,
        vec![
            ChangesetRecord::Row(RowChange {
                op: RowOp::Update,
                table: table.clone(),
                key: vec![cv(0, Value::Integer(1))],
                columns: vec![cv(2, Value::Integer(50))],
            }),
            ChangesetRecord::Row(RowChange {
                op: RowOp::Delete,
                table: table.clone(),
                key: vec![cv(0, Value::Integer(3))],
                columns: vec![],
            }),
            ChangesetRecord::Row(RowChange {
                op: RowOp::Insert,
                table,
                key: vec![cv(0, Value::Integer(4))],
                columns: vec![
                    cv(0, Value::Integer(4)),
                    cv(1, Value::Text("eth_maxi".into())),
                    cv(2, Value::Integer(44)),
                ],
            }),
        ]
    );
}

#[test]
fn seed_example_hash_is_pinned() {
    let cs = seed_block_changeset();
    assert_eq!(
        hex::encode(cs.hash()),
        "2e70eddf53ef0f540d9567e08afc9eecee89a5eb0a0ab3c5f8eeb547389149c0"
    );
}

#[test]
fn seed_example_encoding_decodes_to_the_same_records_and_prints_a_table() {
    let cs = seed_block_changeset();
    let bytes = cs.encode();
    // The exact bytes are worked through field by field in docs/changeset.md.
    assert_eq!(
        hex::encode(&bytes),
        "44534353010000000302000000096170702e7573657273000100000180000000000000010001000201800000000000003203000000096170702e757365727300010000018000000000000003000001000000096170702e75736572730001000001800000000000000400030000018000000000000004000102000000086574685f6d617869000201800000000000002c"
    );
    assert_eq!(&bytes[..5], b"DSCS\x01");
    assert_eq!(Changeset::decode(&bytes).expect("decode"), cs);
    let table = cs.to_string();
    println!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[1].starts_with("UPDATE")
            && lines[1].contains("app.users")
            && lines[1].ends_with("[2]=50")
    );
    assert!(lines[2].starts_with("DELETE") && lines[2].contains(" 3 "));
    assert!(lines[3].starts_with("INSERT") && lines[3].ends_with("[0]=4 [1]='eth_maxi' [2]=44"));
}
