//! Single-row inserts that run without their per-call savepoint (docs/sql.md, "Atomicity")
//! behave exactly like the savepoint path: same results, errors, costs, changesets and
//! state; a failed one leaves nothing behind; and every condition the proof needs sends the
//! call back to the savepoint path.

mod common;

use common::LIMIT;
use dstorage_sql::{Engine, EngineConfig, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SETUP: &[&str] = &[
    "CREATE TABLE a(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER, CHECK (n IS NULL OR n >= 0)) STRICT",
    "CREATE UNIQUE INDEX a_name ON a(name) WHERE n > 3",
    "CREATE TABLE b(k TEXT, j INTEGER, v BLOB, PRIMARY KEY (k, j)) WITHOUT ROWID STRICT",
    "CREATE TABLE c(id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id) ON DELETE CASCADE, g INTEGER GENERATED ALWAYS AS (a_id * 2) STORED) STRICT",
    "CREATE TABLE f(id INTEGER PRIMARY KEY ON CONFLICT FAIL, x INTEGER UNIQUE ON CONFLICT REPLACE) STRICT",
    "CREATE TABLE i(id INTEGER PRIMARY KEY ON CONFLICT IGNORE, x TEXT) STRICT",
];

fn int_or_other(rng: &mut StdRng, range: std::ops::Range<i64>) -> Value {
    match rng.gen_range(0..12) {
        0 => Value::Null,
        1 => Value::Text("not a number".into()),
        2 => Value::Blob(vec![1, 2]),
        _ => Value::Integer(rng.gen_range(range)),
    }
}

fn text_or_other(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..10) {
        0 => Value::Null,
        1 => Value::Integer(7),
        _ => Value::Text(
            ["x", "y", "z", "w", "héllo"][rng.gen_range(0..5)].repeat(rng.gen_range(1..3)),
        ),
    }
}

/// One random call: SQL, parameters and cost limit. Most are single-row inserts with a
/// fixed text (so the second run of each is a cache hit), many of them failing.
fn call(rng: &mut StdRng) -> (String, Vec<Value>, u64) {
    let limit = match rng.gen_range(0..10) {
        0 => rng.gen_range(1..40),
        _ => LIMIT,
    };
    let (sql, params): (String, Vec<Value>) = match rng.gen_range(0..20) {
        0..=3 => (
            "INSERT INTO a VALUES (?1, ?2, ?3)".into(),
            vec![
                int_or_other(rng, 1..60),
                text_or_other(rng),
                int_or_other(rng, -2..8),
            ],
        ),
        4 => (
            "INSERT INTO a(name, n) VALUES (?1, ?2)".into(),
            vec![text_or_other(rng), int_or_other(rng, -1..8)],
        ),
        5 | 6 => (
            "INSERT INTO b VALUES (?1, ?2, ?3)".into(),
            vec![
                text_or_other(rng),
                int_or_other(rng, 0..6),
                Value::Blob(vec![rng.gen_range(0..4)]),
            ],
        ),
        7 | 8 => (
            "INSERT INTO c(id, a_id) VALUES (?1, ?2)".into(),
            vec![int_or_other(rng, 1..40), int_or_other(rng, 1..70)],
        ),
        9 => (
            "INSERT INTO f VALUES (?1, ?2)".into(),
            vec![int_or_other(rng, 1..20), int_or_other(rng, 0..10)],
        ),
        10 => (
            "INSERT INTO i VALUES (?1, ?2)".into(),
            vec![int_or_other(rng, 1..20), text_or_other(rng)],
        ),
        11 => (
            // Literal values from a small set, so texts repeat.
            format!(
                "INSERT INTO a VALUES ({}, 'lit{}', {})",
                rng.gen_range(50..60),
                rng.gen_range(0..3),
                rng.gen_range(-1..6)
            ),
            vec![],
        ),
        12 => (
            "INSERT OR REPLACE INTO a VALUES (?1, ?2, ?3)".into(),
            vec![int_or_other(rng, 1..60), text_or_other(rng), int_or_other(rng, 0..8)],
        ),
        13 => (
            "INSERT INTO b VALUES (?1, ?2, NULL) ON CONFLICT DO NOTHING".into(),
            vec![text_or_other(rng), int_or_other(rng, 0..6)],
        ),
        14 => (
            "UPDATE a SET n = ?1 WHERE id = ?2".into(),
            vec![int_or_other(rng, -1..8), Value::Integer(rng.gen_range(1..60))],
        ),
        15 => (
            "DELETE FROM a WHERE id = ?1".into(),
            vec![Value::Integer(rng.gen_range(1..60))],
        ),
        16 => (
            "DELETE FROM b WHERE j > ?1".into(),
            vec![Value::Integer(rng.gen_range(2..6))],
        ),
        17 => (
            "INSERT INTO a VALUES (?1, ?2, ?3), (?4, ?5, ?6)".into(),
            vec![
                int_or_other(rng, 1..60),
                text_or_other(rng),
                int_or_other(rng, 0..8),
                int_or_other(rng, 1..60),
                text_or_other(rng),
                int_or_other(rng, 0..8),
            ],
        ),
        18 => (
            format!(
                "INSERT INTO b VALUES ('multi', {0}, NULL); INSERT INTO a VALUES ({0}, 'multi{0}', NULL)",
                rng.gen_range(1..60)
            ),
            vec![],
        ),
        _ => (
            "SELECT count(*) FROM a WHERE n > ?1".into(),
            vec![Value::Integer(rng.gen_range(0..5))],
        ),
    };
    (sql, params, limit)
}

/// DDL run at the start of some blocks: indexes come and go (so the programs of cached
/// inserts change) and a table is dropped and re-created.
fn ddl(height: usize) -> Option<&'static str> {
    match height % 6 {
        1 => Some("DELETE FROM b; CREATE UNIQUE INDEX IF NOT EXISTS b_v ON b(v)"),
        3 => Some("DROP INDEX IF EXISTS b_v"),
        4 => Some(
            "DROP TABLE c; CREATE TABLE c(id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id) ON DELETE CASCADE, g INTEGER GENERATED ALWAYS AS (a_id * 2) STORED) STRICT",
        ),
        _ => None,
    }
}

/// What one run of the workload observed, block by block.
#[derive(Debug, PartialEq)]
struct Observed {
    outcomes: Vec<String>,
    hashes: Vec<[u8; 32]>,
}

/// Run the workload; every fifth block is discarded instead of committed.
fn run(engine: &mut Engine, seed: u64) -> Observed {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut observed = Observed {
        outcomes: Vec::new(),
        hashes: Vec::new(),
    };
    for height in 0..20 {
        let mut block = engine.begin_block().expect("begin");
        if height == 0 {
            block.create_schema("w").expect("schema");
            for s in SETUP {
                block.execute("w", s, LIMIT).expect(s);
            }
        }
        if let Some(sql) = ddl(height) {
            block.execute("w", sql, LIMIT).expect(sql);
        }
        for _ in 0..150 {
            let (sql, params, limit) = call(&mut rng);
            let result = block.execute_with_params("w", &sql, &params, limit);
            observed
                .outcomes
                .push(format!("{sql} {params:?} {limit}: {result:?}"));
        }
        observed
            .hashes
            .push(block.changeset().expect("changeset").hash());
        if height % 5 == 4 {
            block.discard().expect("discard");
        } else {
            block.commit().expect("commit");
        }
    }
    observed
}

fn open(dir: &tempfile::TempDir, name: &str, savepoint_free: bool) -> Engine {
    let mut engine = Engine::open(&dir.path().join(name), EngineConfig::default()).expect("open");
    engine.set_savepoint_free_inserts(savepoint_free);
    engine
}

#[test]
fn seeded_workload_gives_the_same_outcomes_changesets_and_state_without_savepoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in [1, 2, 3] {
        let mut fast = open(&dir, &format!("fast{seed}.sqlite"), true);
        let mut slow = open(&dir, &format!("slow{seed}.sqlite"), false);
        let a = run(&mut fast, seed);
        let b = run(&mut slow, seed);
        for (x, y) in a.outcomes.iter().zip(&b.outcomes) {
            assert_eq!(x, y, "seed {seed}");
        }
        assert_eq!(a.hashes, b.hashes, "seed {seed}");
        assert_eq!(fast.dump().expect("dump"), slow.dump().expect("dump"));
        assert_eq!(
            fast.schemas().expect("schemas"),
            slow.schemas().expect("schemas")
        );
        assert_eq!(slow.savepoint_free_runs(), 0);
        let failures = a.outcomes.iter().filter(|o| o.contains(": Err(")).count();
        assert!(
            fast.savepoint_free_runs() > 1_000 && failures > 300,
            "seed {seed}: workload too tame: {} savepoint-free runs, {failures} failures",
            fast.savepoint_free_runs()
        );
    }
}

/// Run `sql` once and commit, to cache its rewrite (a discarded block would clear the
/// cache): the next run of the same text may skip its savepoint.
fn warm(engine: &mut Engine, sql: &str, params: &[Value]) {
    let mut block = engine.begin_block().expect("begin");
    block
        .execute_with_params("app", sql, params, LIMIT)
        .expect(sql);
    block.commit().expect("commit");
}

fn engine_with(tables: &[&str]) -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = common::engine();
    common::commit_block(&mut engine, Some("app"), "app", tables);
    (dir, engine)
}

#[test]
fn a_failed_savepoint_free_insert_leaves_no_row_and_no_change() {
    let (_dir, mut engine) = engine_with(&[
        "CREATE TABLE p(id INTEGER PRIMARY KEY) STRICT",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER CHECK (n >= 0), p INTEGER REFERENCES p(id)) STRICT",
        "INSERT INTO p VALUES (1)",
        "INSERT INTO t VALUES (1, 'one', 1, 1)",
    ]);
    let sql = "INSERT INTO t VALUES (?1, ?2, ?3, ?4)";
    warm(
        &mut engine,
        sql,
        &[5.into(), "w".into(), 0.into(), 1.into()],
    );
    let rows_before = engine.dump().expect("dump");
    let runs = engine.savepoint_free_runs();
    let mut block = engine.begin_block().expect("begin");
    let ok = block
        .execute_with_params(
            "app",
            sql,
            &[2.into(), "two".into(), 2.into(), 1.into()],
            LIMIT,
        )
        .expect("insert");
    assert_eq!(ok.rows_changed, 1);
    let after_ok = block.changeset().expect("changeset");
    for (params, error) in [
        (
            vec![1.into(), "dup".into(), 0.into(), 1.into()],
            "UNIQUE constraint failed: app.t.id",
        ),
        (
            vec![3.into(), "one".into(), 0.into(), 1.into()],
            "UNIQUE constraint failed: app.t.name",
        ),
        (
            vec![3.into(), Value::Null, 0.into(), 1.into()],
            "NOT NULL constraint failed: app.t.name",
        ),
        (
            vec![3.into(), "x".into(), (-1).into(), 1.into()],
            "CHECK constraint failed",
        ),
        (
            vec![3.into(), "x".into(), "text".into(), 1.into()],
            "cannot store TEXT value in INTEGER column",
        ),
        (
            vec![3.into(), "x".into(), 0.into(), 99.into()],
            "FOREIGN KEY constraint failed",
        ),
        (
            vec!["k".into(), "x".into(), 0.into(), 1.into()],
            "datatype mismatch",
        ),
    ] {
        let err = block
            .execute_with_params("app", sql, &params, LIMIT)
            .expect_err(error);
        assert!(err.to_string().contains(error), "{params:?}: {err}");
        let now = block.changeset().expect("changeset");
        assert_eq!(
            now.hash(),
            after_ok.hash(),
            "{params:?} left a change:\n{now}"
        );
    }
    // One successful and seven failed calls, all without a savepoint.
    block.commit().expect("commit");
    assert_eq!(engine.savepoint_free_runs(), runs + 8);
    let mut rows_after = rows_before;
    let t = rows_after
        .iter_mut()
        .find(|(t, _)| t == "app.t")
        .expect("app.t");
    t.1.insert(1, vec![2.into(), "two".into(), 2.into(), 1.into()]);
    assert_eq!(engine.dump().expect("dump"), rows_after);
}

#[test]
fn conflict_clauses_returning_and_several_rows_take_the_savepoint_path() {
    let (_dir, mut engine) = engine_with(&[
        "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER) STRICT",
        "CREATE TABLE fail(id INTEGER PRIMARY KEY ON CONFLICT FAIL, x INTEGER) STRICT",
        "CREATE TABLE repl(id INTEGER PRIMARY KEY, x INTEGER UNIQUE ON CONFLICT REPLACE) STRICT",
        "CREATE TABLE p(id INTEGER PRIMARY KEY) STRICT",
        "CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) ON DELETE CASCADE) STRICT",
    ]);
    let slow = [
        "INSERT OR REPLACE INTO t VALUES (?1, 1)",
        "INSERT OR IGNORE INTO t VALUES (?1, 1)",
        "INSERT OR FAIL INTO t VALUES (?1, 1)",
        "INSERT OR ABORT INTO t VALUES (?1, 1)",
        "REPLACE INTO t VALUES (?1, 1)",
        "INSERT INTO t VALUES (?1, 1) ON CONFLICT DO NOTHING",
        "INSERT INTO t VALUES (?1, 1) ON CONFLICT(id) DO UPDATE SET x = 2",
        "INSERT INTO t VALUES (?1, 1) RETURNING id",
        "INSERT INTO t VALUES (?1, 1), (?1 + 1000, 1)",
        "INSERT INTO t SELECT ?1, 1",
        "INSERT INTO t VALUES (?1, abs(1))",
        // Table definitions: FAIL keeps partial work, REPLACE deletes.
        "INSERT INTO fail VALUES (?1, 1)",
        "INSERT INTO repl VALUES (?1, 1)",
        // Inserting a parent of a cascading foreign key: the key's program stays simple,
        // so this one is fast; it is the control that the counter moves at all.
        "INSERT INTO p VALUES (?1)",
    ];
    let mut block = engine.begin_block().expect("begin");
    for (i, sql) in slow.iter().enumerate() {
        let base = 100 * i as i64;
        block
            .execute_with_params("app", sql, &[Value::Integer(base)], LIMIT)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let runs = block.savepoint_free_runs();
        block
            .execute_with_params("app", sql, &[Value::Integer(base + 1)], LIMIT)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let skipped = block.savepoint_free_runs() > runs;
        assert_eq!(skipped, i == slow.len() - 1, "{sql}");
    }
    block.commit().expect("commit");
}

#[test]
fn a_savepoint_free_insert_needs_its_whole_program_to_fit_the_limit() {
    let (_dir, mut engine) = engine_with(&[
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER NOT NULL) STRICT",
    ]);
    let sql = "INSERT INTO t VALUES (?1, ?2, ?3)";
    // SQLite 3.54.1 compiles this insert to 22 instructions (program.rs lists them); the
    // bound adds the byte charge of a row of 3 values, each counting the meter's 32-byte
    // overhead, 20 bytes for an integer stored as text and the longest parameter ("x"),
    // and of the bytes the VM moves: the record of 3 fields it builds and the record it
    // writes (4 values each: the fields and the header's size) and the one comparison (`Lt`),
    // each value at most 9 bytes of serial type, 20 of an integer as text and the longest
    // parameter.
    let bound = 22 + (3 * (32 + 20 + 1u64) + 9 * (9 + 20 + 1)).div_ceil(8);
    warm(&mut engine, sql, &[0.into(), "x".into(), 1.into()]);
    let mut block = engine.begin_block().expect("begin");
    let mut ok: usize = 0;
    for limit in 1..100u64 {
        let params = [Value::Integer(limit as i64), "x".into(), 1.into()];
        let runs = block.savepoint_free_runs();
        let result = block.execute_with_params("app", sql, &params, limit);
        let skipped = block.savepoint_free_runs() > runs;
        assert_eq!(skipped, limit >= bound, "limit {limit}");
        match result {
            Ok(out) => {
                ok += 1;
                assert!(out.cost <= limit.min(bound), "limit {limit}: {out:?}");
            }
            // Under its real cost the savepoint path stops the insert and undoes it.
            Err(e) => assert!(
                !skipped && e.to_string().contains("cost limit exceeded"),
                "limit {limit}: {e}"
            ),
        }
    }
    assert!(ok < 99, "no call failed its cost check");
    let records = block.changeset().expect("changeset").records.len();
    assert_eq!(records, ok, "a failed call left a row");
    block.commit().expect("commit");
}

#[test]
fn a_schema_change_is_seen_by_the_next_savepoint_free_insert() {
    let (_dir, mut engine) =
        engine_with(&["CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT"]);
    let sql = "INSERT INTO t VALUES (?1, ?2)";
    warm(&mut engine, sql, &[0.into(), "x".into()]);
    let mut block = engine.begin_block().expect("begin");
    let runs = block.savepoint_free_runs();
    block
        .execute_with_params("app", sql, &[1.into(), "same".into()], LIMIT)
        .expect("insert");
    assert_eq!(block.savepoint_free_runs(), runs + 1);
    block
        .execute("app", "CREATE UNIQUE INDEX t_name ON t(name)", LIMIT)
        .expect("index");
    // The cached rewrite and its proof went with the schema change: the first run after
    // it takes the savepoint path, the second is proven again, and both enforce the index.
    for id in [2, 3] {
        let err = block
            .execute_with_params("app", sql, &[id.into(), "same".into()], LIMIT)
            .expect_err("duplicate name");
        assert!(
            err.to_string()
                .contains("UNIQUE constraint failed: app.t.name"),
            "{err}"
        );
    }
    assert_eq!(block.savepoint_free_runs(), runs + 2);
    let cs = block.changeset().expect("changeset");
    assert_eq!(cs.records.len(), 2, "the index DDL and one row:\n{cs}");
    block.commit().expect("commit");
}
