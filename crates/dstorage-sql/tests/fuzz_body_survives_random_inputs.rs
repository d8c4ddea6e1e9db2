//! The fuzz target's body, run on stable Rust over thousands of random and mutated inputs
//! so CI exercises it without nightly or libFuzzer.

use dstorage_sql::fuzzing::{fuzz_engine, fuzz_one};
use dstorage_sql::{Changeset, ChangesetRecord, ColumnValue, RowChange, RowOp, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SQL_SEEDS: &[&str] = &[
    "SELECT * FROM t WHERE n > 1",
    "INSERT INTO t VALUES (3, 'x', X'01', 7)",
    "UPDATE t SET s = upper(s) WHERE id = 1",
    "DELETE FROM t WHERE id = 2",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    "SELECT group_concat(s, ',' ORDER BY id) FROM t",
    "CREATE TABLE u(a TEXT PRIMARY KEY, b INTEGER) STRICT; DROP TABLE t",
    "SELECT random(), date('now') FROM t a JOIN t b ON a.id = b.n",
    "CREATE VIEW v AS SELECT id FROM t; SELECT * FROM v LIMIT 1",
    "PRAGMA table_info('t')",
];

fn seed_changeset() -> Vec<u8> {
    Changeset {
        records: vec![
            ChangesetRecord::CreateSchema { name: "f".into() },
            ChangesetRecord::Row(RowChange {
                op: RowOp::Insert,
                table: "f.t".into(),
                key: vec![ColumnValue {
                    position: 0,
                    value: Value::Integer(1),
                }],
                columns: vec![
                    ColumnValue {
                        position: 0,
                        value: Value::Integer(1),
                    },
                    ColumnValue {
                        position: 1,
                        value: Value::Text("a".into()),
                    },
                    ColumnValue {
                        position: 2,
                        value: Value::Blob(vec![0, 1]),
                    },
                    ColumnValue {
                        position: 3,
                        value: Value::Null,
                    },
                ],
            }),
            ChangesetRecord::Ddl {
                schema: "f".into(),
                sql: "DROP TABLE \"f.t\"".into(),
            },
        ],
    }
    .encode()
}

fn mutate(rng: &mut StdRng, mut input: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.gen_range(1..4) {
        match rng.gen_range(0..4) {
            0 if !input.is_empty() => {
                let i = rng.gen_range(0..input.len());
                input[i] = rng.gen();
            }
            1 if !input.is_empty() => {
                let cut = rng.gen_range(0..input.len());
                input.truncate(cut);
            }
            2 => {
                let i = rng.gen_range(0..=input.len());
                let b: u8 = rng.gen();
                input.insert(i, b);
            }
            _ => {
                let seed = SQL_SEEDS[rng.gen_range(0..SQL_SEEDS.len())].as_bytes();
                let i = rng.gen_range(0..=input.len());
                input.splice(i..i, seed.iter().copied());
            }
        }
    }
    input
}

#[test]
fn fuzz_body_survives_random_and_mutated_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut engine = fuzz_engine(dir.path()).expect("engine");
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let changeset = seed_changeset();
    for i in 0..3_000u32 {
        let input = match i % 3 {
            0 => {
                let mut v = vec![0u8];
                v.extend_from_slice(SQL_SEEDS[rng.gen_range(0..SQL_SEEDS.len())].as_bytes());
                mutate(&mut rng, v)
            }
            1 => {
                let mut v = vec![1u8];
                v.extend_from_slice(&changeset);
                mutate(&mut rng, v)
            }
            _ => (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect(),
        };
        fuzz_one(&mut engine, &input);
    }
    // The engine is still healthy after all that.
    let mut reader = engine.reader().expect("reader");
    let r = reader
        .query("f", "SELECT count(*) FROM t", 10_000)
        .expect("query");
    assert_eq!(r.rows, vec![vec![Value::Integer(2)]]);
}

#[test]
fn seed_changeset_round_trips_through_the_fuzz_body() {
    let decoded = Changeset::decode(&seed_changeset()).expect("decode");
    assert_eq!(decoded.records.len(), 3);
}
