//! A block's row records are exactly the difference between the committed state before and
//! after the block: a key only after is an insert of every visible column, a key only
//! before is a delete, a key in both with other values is an update of the columns that
//! differ. The workload makes the change log's hard cases: keys that move (with and
//! without a conflict replaced), rows changed and changed back, deleted and inserted again,
//! cascades, upserts, generated columns, failing statements inside transactions, failing
//! savepoint-free inserts and cost-limit failures, on rowid, text-key and WITHOUT ROWID
//! tables. Every block is also applied to a replica, which must then equal the engine.

mod common;

use std::collections::BTreeMap;

use common::LIMIT;
use dstorage_sql::{ChangesetRecord, Engine, EngineConfig, RowChange, RowOp, SqlError, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

const SETUP: &[&str] = &[
    "CREATE TABLE a(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER, CHECK (n IS NULL OR n >= 0)) STRICT",
    "CREATE UNIQUE INDEX a_name ON a(name) WHERE n > 3",
    "CREATE TABLE b(k TEXT, j INTEGER, v BLOB, PRIMARY KEY (k, j)) WITHOUT ROWID STRICT",
    "CREATE TABLE c(id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id) ON DELETE CASCADE ON UPDATE CASCADE, g INTEGER GENERATED ALWAYS AS (a_id * 2) STORED, h INTEGER) STRICT",
    "CREATE TABLE t(code TEXT NOT NULL PRIMARY KEY, x INTEGER UNIQUE ON CONFLICT REPLACE, note TEXT) STRICT",
];

/// A key in a map of rows: the table and its key values, printed (values are not `Ord`).
type RowKey = (String, String);

/// A row record as (operation, key columns, columns), by (table, key).
type Records = BTreeMap<RowKey, (RowOp, Vec<(u16, Value)>, Vec<(u16, Value)>)>;

/// The visible columns of every user table, by (table, key): what a changeset describes.
fn state(path: &std::path::Path) -> BTreeMap<RowKey, (Vec<usize>, Vec<Value>)> {
    let conn = Connection::open(path).expect("open");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'w.%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let cols: Vec<(String, bool)> = conn
            .prepare(
                "SELECT name, pk > 0 FROM pragma_table_xinfo(?1) WHERE hidden = 0 ORDER BY cid",
            )
            .unwrap()
            .query_map([&t], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let list = cols
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let key: Vec<usize> = (0..cols.len()).filter(|i| cols[*i].1).collect();
        let mut stmt = conn
            .prepare(&format!("SELECT {list} FROM \"{t}\""))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let values: Vec<Value> = (0..cols.len())
                .map(|i| match r.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(v) => Value::Integer(v),
                    rusqlite::types::ValueRef::Text(s) => {
                        Value::Text(String::from_utf8(s.to_vec()).unwrap())
                    }
                    rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    rusqlite::types::ValueRef::Real(_) => panic!("REAL in {t}"),
                })
                .collect();
            let k: Vec<&Value> = key.iter().map(|i| &values[*i]).collect();
            out.insert((t.clone(), format!("{k:?}")), (key.clone(), values));
        }
    }
    out
}

fn columns(values: &[Value], positions: impl Iterator<Item = usize>) -> Vec<(u16, Value)> {
    positions.map(|p| (p as u16, values[p].clone())).collect()
}

/// The records the difference between `before` and `after` calls for, by (table, key).
fn difference(
    before: &BTreeMap<RowKey, (Vec<usize>, Vec<Value>)>,
    after: &BTreeMap<RowKey, (Vec<usize>, Vec<Value>)>,
) -> Records {
    let mut out = BTreeMap::new();
    for (k, (key, old)) in before {
        let key_cols = columns(old, key.iter().copied());
        match after.get(k) {
            None => {
                out.insert(k.clone(), (RowOp::Delete, key_cols, Vec::new()));
            }
            Some((_, new)) if new != old => {
                let changed = columns(new, (0..new.len()).filter(|p| new[*p] != old[*p]));
                out.insert(k.clone(), (RowOp::Update, key_cols, changed));
            }
            Some(_) => {}
        }
    }
    for (k, (key, new)) in after {
        if !before.contains_key(k) {
            let key_cols = columns(new, key.iter().copied());
            out.insert(
                k.clone(),
                (RowOp::Insert, key_cols, columns(new, 0..new.len())),
            );
        }
    }
    out
}

fn as_map(rows: &[RowChange]) -> Records {
    let pairs = |cols: &[dstorage_sql::ColumnValue]| {
        cols.iter()
            .map(|c| (c.position, c.value.clone()))
            .collect::<Vec<_>>()
    };
    let mut out = BTreeMap::new();
    for r in rows {
        let k: Vec<&Value> = r.key.iter().map(|c| &c.value).collect();
        let previous = out.insert(
            (r.table.clone(), format!("{k:?}")),
            (r.op, pairs(&r.key), pairs(&r.columns)),
        );
        assert!(previous.is_none(), "two records for one row: {r:?}");
    }
    out
}

fn name(rng: &mut StdRng) -> String {
    ["ann", "bob", "cy", "dee", "it's"][rng.gen_range(0..5)].to_owned()
}

fn opt_int(rng: &mut StdRng) -> Value {
    if rng.gen_bool(0.15) {
        Value::Null
    } else {
        Value::Integer(rng.gen_range(-1..8))
    }
}

/// One call: SQL (one or more statements), its parameters and its cost limit.
fn call(rng: &mut StdRng) -> (String, Vec<Value>, u64) {
    let id = rng.gen_range(1..25);
    let other = rng.gen_range(1..25);
    let code = ["p", "q", "r", "s"][rng.gen_range(0..4)];
    let k = ["x", "y"][rng.gen_range(0..2)];
    let j = rng.gen_range(0..6);
    let (sql, params) = match rng.gen_range(0..22) {
        0..=3 => (
            "INSERT INTO a VALUES (?1, ?2, ?3)".to_owned(),
            vec![Value::Integer(id), Value::Text(name(rng)), opt_int(rng)],
        ),
        4 => (
            format!(
                "INSERT OR REPLACE INTO a VALUES ({id}, '{}', {})",
                name(rng).replace('\'', "''"),
                rng.gen_range(0..6)
            ),
            vec![],
        ),
        5 => (
            format!("UPDATE a SET n = coalesce(n, 0) + 1 WHERE id BETWEEN {id} AND {}", id + 3),
            vec![],
        ),
        6 => (format!("UPDATE a SET id = id + 30 WHERE id = {id}"), vec![]),
        7 => (
            format!("UPDATE OR REPLACE a SET id = {other} WHERE id = {id}"),
            vec![],
        ),
        8 => (format!("DELETE FROM a WHERE id % 6 = {}", id % 6), vec![]),
        9 => (
            format!(
                "INSERT INTO b VALUES ('{k}', {j}, X'{:02x}') ON CONFLICT (k, j) DO UPDATE SET v = excluded.v",
                rng.gen_range(0u8..4)
            ),
            vec![],
        ),
        10 => (format!("UPDATE b SET j = j + 1 WHERE k = '{k}' AND j = {j}"), vec![]),
        11 => (format!("DELETE FROM b WHERE j > {}", j + 2), vec![]),
        12 | 13 => (
            "INSERT INTO c(id, a_id, h) VALUES (?1, ?2, ?3)".to_owned(),
            vec![Value::Integer(id), Value::Integer(other), opt_int(rng)],
        ),
        14 => (format!("UPDATE c SET a_id = {other} WHERE id = {id}"), vec![]),
        15 => (
            format!("INSERT INTO t VALUES ('{code}', {}, NULL)", rng.gen_range(0..4)),
            vec![],
        ),
        16 => (
            format!(
                "UPDATE t SET code = '{}' WHERE code = '{code}'",
                ["p", "q", "r", "s", "u"][rng.gen_range(0..5)]
            ),
            vec![],
        ),
        17 => (
            // Changed and changed back: nothing to record.
            format!("UPDATE a SET n = coalesce(n, 0) + 5 WHERE id = {id}; UPDATE a SET n = n - 5 WHERE id = {id}"),
            vec![],
        ),
        18 => (
            // Gone and back with the same or other values.
            format!(
                "DELETE FROM t WHERE code = '{code}'; INSERT INTO t VALUES ('{code}', {}, 'again')",
                rng.gen_range(0..4)
            ),
            vec![],
        ),
        19 => (
            // The second statement fails on the first one's key: the call leaves nothing.
            format!(
                "INSERT OR REPLACE INTO a VALUES ({id}, 'tx', 1); UPDATE t SET note = 'x'; INSERT INTO a VALUES ({id}, 'dup', 1)"
            ),
            vec![],
        ),
        20 => (
            format!("UPDATE b SET v = X'ff' WHERE k = '{k}'; DELETE FROM c WHERE id = {id}"),
            vec![],
        ),
        _ => (
            // Stopped by the cost meter part-way: everything it did is undone.
            "UPDATE a SET n = coalesce(n, 0) + 1; UPDATE t SET note = 'metered'".to_owned(),
            vec![],
        ),
    };
    let limit = if rng.gen_bool(0.1) { 40 } else { LIMIT };
    (sql, params, limit)
}

#[test]
fn every_block_records_exactly_the_rows_it_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let mut engine = Engine::open(&path, EngineConfig::default()).expect("open");
    let replica =
        Engine::open(&dir.path().join("replica.sqlite"), EngineConfig::default()).expect("open");
    let mut block = engine.begin_block().expect("begin");
    block.create_schema("w").expect("schema");
    for s in SETUP {
        block.execute("w", s, LIMIT).expect(s);
    }
    let first = block.changeset().expect("changeset");
    block.commit().expect("commit");
    first.apply_to(replica.connection()).expect("apply setup");

    let mut rng = StdRng::seed_from_u64(7);
    let (mut failures, mut records, mut savepoint_free) = (0, 0, 0);
    for height in 1..=40 {
        let before = state(&path);
        let mut block = engine.begin_block().expect("begin");
        for _ in 0..40 {
            let (sql, params, limit) = call(&mut rng);
            match block.execute_with_params("w", &sql, &params, limit) {
                Ok(_) => {}
                // The failures the workload is built to cause; anything else (an engine
                // limit, a refused construct) would hide the cases it is for.
                Err(SqlError::CostLimitExceeded { .. }) => failures += 1,
                Err(SqlError::Sqlite(e))
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                {
                    failures += 1
                }
                Err(e) => panic!("{sql} {params:?}: unexpected error {e}"),
            }
        }
        let changeset = block.changeset().expect("changeset");
        // The block's bytes come straight from the change log; the records' own encoding must
        // be the same bytes (one record encoder serves both; the app hash takes the first).
        let encoded = block.changeset_encoded().expect("encoded changeset");
        assert_eq!(changeset.encode(), encoded.bytes, "block {height}");
        assert_eq!(changeset.records.len(), encoded.records as usize);
        if height % 9 == 0 {
            block.discard().expect("discard");
            assert_eq!(state(&path), before, "a discarded block left changes");
            continue;
        }
        block.commit().expect("commit");
        let after = state(&path);
        let rows: Vec<RowChange> = changeset
            .records
            .iter()
            .map(|r| match r {
                ChangesetRecord::Row(row) => row.clone(),
                other => panic!("unexpected record {other:?}"),
            })
            .collect();
        records += rows.len();
        assert_eq!(
            as_map(&rows),
            difference(&before, &after),
            "block {height}: the changeset is not the state difference"
        );
        changeset
            .apply_to(replica.connection())
            .unwrap_or_else(|e| panic!("block {height}: apply: {e}"));
        assert_eq!(
            replica.dump().expect("dump"),
            engine.dump().expect("dump"),
            "block {height}: the replica differs"
        );
        savepoint_free = engine.savepoint_free_runs();
    }
    // The workload reached the cases it is for.
    assert!(failures > 100, "only {failures} calls failed");
    assert!(records > 300, "only {records} records");
    assert!(
        savepoint_free > 100,
        "only {savepoint_free} savepoint-free runs"
    );
}
