//! Cost: VM steps metered against a per-transaction limit, identical on every run; the
//! estimate ranks plans and stays within a bounded factor of the metered cost.

mod common;

use common::{commit_block, engine, LIMIT};
use dstorage_sql::{Engine, EngineConfig, SqlError, PROGRESS_STEP};

const RUNAWAY_CTE: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

fn with_rows(n: i64) -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = engine();
    let values: Vec<String> = (1..=n)
        .map(|i| format!("({i}, 'name{i}', {})", i % 97))
        .collect();
    commit_block(
        &mut engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER NOT NULL) STRICT",
            "CREATE INDEX t_grp ON t(grp)",
            &format!("INSERT INTO t VALUES {}", values.join(",")),
        ],
    );
    (dir, engine)
}

fn runaway_used(sql: &str, limit: u64) -> u64 {
    let (_dir, mut engine) = with_rows(50);
    let mut block = engine.begin_block().expect("begin");
    match block.execute("app", sql, limit) {
        Err(SqlError::CostLimitExceeded { limit: l, used }) => {
            assert_eq!(l, limit);
            used
        }
        other => panic!("expected cost limit exceeded, got {other:?}"),
    }
}

#[test]
fn recursive_cte_is_stopped_at_the_limit_with_the_same_count_twice() {
    let first = runaway_used(RUNAWAY_CTE, 100_000);
    let second = runaway_used(RUNAWAY_CTE, 100_000);
    assert_eq!(first, second);
    assert!(
        first > 100_000 && first <= 100_000 + PROGRESS_STEP,
        "used {first}"
    );
}

#[test]
fn cross_join_is_stopped_at_the_limit_with_the_same_count_twice() {
    let sql = "SELECT count(*) FROM t a, t b, t c, t d";
    let first = runaway_used(sql, 250_000);
    assert_eq!(first, runaway_used(sql, 250_000));
    assert!(
        first > 250_000 && first <= 250_000 + PROGRESS_STEP,
        "used {first}"
    );
}

#[test]
fn limit_error_states_limit_and_cost_and_rolls_back_the_transaction() {
    let (_dir, mut engine) = with_rows(10);
    let mut block = engine.begin_block().expect("begin");
    let err = block
        .execute(
            "app",
            &format!("INSERT INTO t VALUES (100, 'x', 1); {RUNAWAY_CTE}"),
            5_000,
        )
        .expect_err("runaway");
    let msg = err.to_string();
    assert!(
        msg.starts_with("cost limit exceeded: limit 5000, used 50"),
        "{msg}"
    );
    assert!(block.changeset().expect("cs").records.is_empty());
}

#[test]
fn limit_counts_across_the_statements_of_one_transaction() {
    let (_dir, mut engine) = with_rows(200);
    let mut block = engine.begin_block().expect("begin");
    let one = block
        .execute("app", "SELECT count(*) FROM t WHERE name > 'a'", LIMIT)
        .expect("one")
        .cost;
    let two = "SELECT count(*) FROM t WHERE name > 'a'; SELECT count(*) FROM t WHERE name > 'a'";
    assert_eq!(block.execute("app", two, LIMIT).expect("two").cost, 2 * one);
    assert!(matches!(
        block.execute("app", two, 2 * one - 1),
        Err(SqlError::CostLimitExceeded { .. })
    ));
}

#[test]
fn same_statement_on_same_state_costs_the_same_on_two_databases() {
    let (_d1, mut a) = with_rows(300);
    let (_d2, mut b) = with_rows(300);
    for sql in [
        "SELECT * FROM t WHERE grp = 5",
        "UPDATE t SET name = name || '!' WHERE id % 3 = 0",
        "DELETE FROM t WHERE grp > 90",
    ] {
        let ca = a
            .begin_block()
            .expect("a")
            .execute("app", sql, LIMIT)
            .expect("a")
            .cost;
        let cb = b
            .begin_block()
            .expect("b")
            .execute("app", sql, LIMIT)
            .expect("b")
            .cost;
        assert_eq!(ca, cb, "{sql}");
        assert!(ca > 0);
    }
}

#[test]
fn configured_limit_caps_the_callers_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig {
        cost_limit_per_tx: 1_000,
        ..EngineConfig::default()
    };
    let mut engine = Engine::open(&dir.path().join("db.sqlite"), config).expect("open");
    let mut block = engine.begin_block().expect("begin");
    block.create_schema("app").expect("schema");
    let err = block
        .execute("app", RUNAWAY_CTE, u64::MAX)
        .expect_err("capped");
    assert!(
        matches!(err, SqlError::CostLimitExceeded { limit: 1_000, .. }),
        "{err}"
    );
}

#[test]
fn estimate_ranks_a_full_scan_above_an_index_lookup() {
    let (_dir, engine) = with_rows(2_000);
    let mut reader = engine.reader().expect("reader");
    let lookup = reader
        .estimate("app", "SELECT * FROM t WHERE id = 77")
        .expect("lookup");
    let index = reader
        .estimate("app", "SELECT * FROM t WHERE grp = 5")
        .expect("index");
    let scan = reader
        .estimate("app", "SELECT * FROM t WHERE name = 'name77'")
        .expect("scan");
    assert!(lookup.cost < index.cost, "{lookup:?} {index:?}");
    assert!(index.cost < scan.cost, "{index:?} {scan:?}");
    assert!(
        scan.plan.iter().any(|p| p.starts_with("SCAN")),
        "{:?}",
        scan.plan
    );
    let insert = reader
        .estimate("app", "INSERT INTO t VALUES (5000, 'x', 1)")
        .expect("a reader estimates writes too, for the mempool");
    assert!(insert.cost > 0 && insert.bounded);
    // Placeholders are estimated unbound: same plan as with literal values, and a cost
    // that differs only by the literals' bytes.
    let bound = reader
        .estimate("app", "INSERT INTO t VALUES (?, ?, ?)")
        .expect("statements with placeholders are estimated");
    assert_eq!(bound.plan, insert.plan);
    assert!(
        bound.cost.abs_diff(insert.cost) <= 2,
        "{bound:?} {insert:?}"
    );
    // A read with placeholders cannot be run unbound: the model prices it.
    let lookup_bound = reader
        .estimate("app", "SELECT * FROM t WHERE id = ?1")
        .expect("a lookup by a placeholder");
    assert!(
        lookup_bound.cost <= 2 * lookup.cost && lookup.cost <= 2 * lookup_bound.cost,
        "{lookup_bound:?} {lookup:?}"
    );
    let refused = reader
        .estimate("app", "SELECT random()")
        .expect_err("guarded");
    assert!(refused.to_string().contains("random()"), "{refused}");
    let cte = reader.estimate("app", RUNAWAY_CTE).expect("cte");
    assert!(
        !cte.bounded,
        "a runaway recursive CTE cannot be bounded: {cte:?}"
    );
    assert!(cte.cost > dstorage_sql::ESTIMATE_RUN_BUDGET, "{cte:?}");
    // One that ends within the estimate's run budget was run: its cost is exact.
    let ends = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT count(*) FROM c";
    let estimate = reader.estimate("app", ends).expect("cte");
    let metered = reader.query("app", ends, LIMIT).expect("cte").cost;
    assert!(estimate.bounded, "{estimate:?}");
    assert_eq!(estimate.cost, metered);
}

/// The queries of the estimate-versus-metered table in docs/sql.md.
const COMPARED: &[&str] = &[
    "SELECT * FROM t WHERE id = 77",
    "SELECT name FROM t WHERE id BETWEEN 10 AND 60",
    "SELECT * FROM t WHERE grp = 5",
    "SELECT * FROM t WHERE name = 'name77'",
    "SELECT * FROM t",
    "SELECT count(*) FROM t",
    "SELECT count(*) FROM t WHERE name > 'name5'",
    "SELECT count(*) FROM t WHERE id > 1500",
    "SELECT count(*) FROM t WHERE grp BETWEEN 3 AND 5",
    "SELECT a.id FROM t a JOIN t b ON b.id = a.grp WHERE a.id < 500",
    "SELECT count(*) FROM t a JOIN t b ON b.grp = a.grp WHERE a.id < 20",
    "SELECT grp, count(*) FROM t GROUP BY grp",
    "SELECT * FROM t ORDER BY name LIMIT 10",
    "INSERT INTO t VALUES (100001, 'n', 1)",
    "INSERT INTO t VALUES (100002, 'n', 1), (100003, 'n', 2), (100004, 'n', 3)",
    "UPDATE t SET name = 'x' WHERE id = 5",
    "UPDATE t SET name = 'x' WHERE grp = 7",
    "UPDATE t SET name = 'x' WHERE id BETWEEN 10 AND 60",
    "DELETE FROM t WHERE grp = 8",
    "DELETE FROM t WHERE id > 1900",
    "INSERT INTO t SELECT id + 10000, name, grp FROM t WHERE grp = 9",
];

#[test]
fn estimate_is_within_a_factor_of_two_of_the_metered_cost() {
    let (_dir, mut engine) = with_rows(2_000);
    let mut lines = Vec::new();
    let mut worst: f64 = 1.0;
    for sql in COMPARED {
        let est = engine.estimate("app", sql).expect("estimate").cost;
        let mut block = engine.begin_block().expect("begin");
        let metered = block.execute("app", sql, LIMIT).expect("execute").cost;
        block.discard().expect("discard");
        // Display only: the ratio is not consensus state.
        let ratio = est as f64 / metered as f64;
        worst = worst.max(ratio.max(1.0 / ratio));
        lines.push(format!("| `{sql}` | {est} | {metered} | {ratio:.2} |"));
    }
    println!(
        "| statement | estimate | metered | ratio |\n|---|---|---|---|\n{}",
        lines.join("\n")
    );
    println!("worst factor {worst:.2}");
    assert!(
        worst <= 2.0,
        "worst factor {worst:.2}\n{}",
        lines.join("\n")
    );
}

#[test]
fn runaway_write_fails_alone_and_the_block_keeps_its_earlier_transactions() {
    // Regression: a runaway write was stopped by interrupting it, and SQLite rolls back the
    // whole transaction when a write statement is interrupted, so the block lost every earlier
    // transaction. Writes are now stopped by the injected meter call: only this one goes.
    let used_in_fresh_block = || {
        let (_dir, mut engine) = with_rows(50);
        let mut block = engine.begin_block().expect("begin");
        block
            .execute("app", "INSERT INTO t VALUES (1000, 'kept', 1)", LIMIT)
            .expect("earlier transaction");
        let err = block
            .execute(
                "app",
                "INSERT INTO t SELECT x, 'n', 1 FROM (WITH RECURSIVE c(x) AS (SELECT 2000 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)",
                50_000,
            )
            .expect_err("runaway insert");
        let used = match err {
            SqlError::CostLimitExceeded {
                limit: 50_000,
                used,
            } => used,
            other => panic!("expected cost limit exceeded, got {other}"),
        };
        let err = block
            .execute(
                "app",
                "UPDATE t SET name = name || 'x' WHERE id IN (SELECT a.id FROM t a, t b, t c, t d)",
                50_000,
            )
            .expect_err("runaway update");
        assert!(matches!(err, SqlError::CostLimitExceeded { .. }), "{err}");
        let cs = block.changeset().expect("changeset");
        assert_eq!(cs.records.len(), 1, "only the earlier insert remains: {cs}");
        block
            .execute("app", "INSERT INTO t VALUES (1001, 'after', 1)", LIMIT)
            .expect("block goes on");
        block.commit().expect("commit");
        used
    };
    let first = used_in_fresh_block();
    assert_eq!(first, used_in_fresh_block());
    assert!(
        first > 50_000 && first <= 50_000 + PROGRESS_STEP,
        "used {first}"
    );
}

#[test]
fn block_estimate_sees_the_blocks_own_uncommitted_rows() {
    let (_dir, mut engine) = with_rows(10);
    let committed = engine
        .estimate("app", "SELECT * FROM t")
        .expect("committed")
        .cost;
    let mut block = engine.begin_block().expect("begin");
    let values: Vec<String> = (100..1100).map(|i| format!("({i}, 'x', 1)")).collect();
    block
        .execute(
            "app",
            &format!("INSERT INTO t VALUES {}", values.join(",")),
            LIMIT,
        )
        .expect("insert");
    let in_block = block
        .estimate("app", "SELECT * FROM t")
        .expect("in block")
        .cost;
    assert!(in_block > 50 * committed, "{in_block} vs {committed}");
}

// Regression: a statement prepared before a schema change stayed in the connection's
// statement cache, expired. Its next run first executed two old instructions (SQLite
// checks the schema cookie there), then prepared again: the two steps were added to its
// cost. A node restarted after the change prepared it afresh and charged two steps less,
// so the nodes' costs (the transactions' gas) differed.
#[test]
fn a_statement_prepared_before_a_schema_change_costs_what_it_costs_on_a_restarted_node() {
    let (dir, mut engine) = with_rows(10);
    let query = "SELECT name FROM t WHERE id = 2";
    let cost_of = |engine: &mut Engine| {
        let mut block = engine.begin_block().expect("begin");
        let cost = block.execute("app", query, LIMIT).expect("query").cost;
        block.commit().expect("commit");
        cost
    };
    let before = cost_of(&mut engine);
    commit_block(
        &mut engine,
        None,
        "app",
        &["CREATE TABLE extra(id INTEGER PRIMARY KEY) STRICT"],
    );
    let long_running = cost_of(&mut engine);
    drop(engine);
    let mut restarted =
        Engine::open(&dir.path().join("db.sqlite"), EngineConfig::default()).expect("reopen");
    assert_eq!(long_running, cost_of(&mut restarted));
    assert_eq!(long_running, before);
}

// Regression: in a block that had run DDL, every rolled-back transaction made SQLite drop
// its schema and expire every statement; the next run of a cached statement read the
// schema and prepared itself again inside the meter. Its progress-handler ticks then
// included that work, so a statement with a tight limit failed with "cost limit exceeded"
// instead of its own error, depending on the connection's history.
#[test]
fn a_rollback_after_ddl_does_not_charge_the_next_statement_for_reloading_the_schema() {
    let (_dir, mut engine) = with_rows(10);
    engine.set_savepoint_free_inserts(false);
    let insert = "INSERT INTO t VALUES (?1, 'dup', 1)";
    let mut block = engine.begin_block().expect("begin");
    block
        .execute(
            "app",
            "CREATE TABLE extra(id INTEGER PRIMARY KEY, a TEXT, b TEXT) STRICT; CREATE INDEX extra_a ON extra(a); CREATE INDEX extra_b ON extra(b)",
            LIMIT,
        )
        .expect("ddl");
    block
        .execute_with_params("app", insert, &[100.into()], LIMIT)
        .expect("insert");
    for round in 0..3 {
        // The duplicate key is found within 20 steps.
        let err = block
            .execute_with_params("app", insert, &[1.into()], 20)
            .expect_err("duplicate key");
        assert!(
            err.to_string()
                .contains("UNIQUE constraint failed: app.t.id"),
            "round {round}: {err}"
        );
    }
    block.commit().expect("commit");
}

// The reader's twin of the regression above: a read that a reader had prepared before a
// schema change was committed cost two steps more on that reader than on a fresh one, so
// the cost a client was told depended on which reader served it.
#[test]
fn a_read_costs_the_same_on_a_reader_that_saw_a_schema_change_and_on_a_fresh_one() {
    let (_dir, mut engine) = with_rows(10);
    let query = "SELECT name FROM t WHERE id = 2";
    let mut long_lived = engine.reader().expect("reader");
    let before = long_lived.query("app", query, LIMIT).expect("query").cost;
    commit_block(
        &mut engine,
        None,
        "app",
        &["CREATE TABLE extra(id INTEGER PRIMARY KEY) STRICT"],
    );
    let after = long_lived.query("app", query, LIMIT).expect("query").cost;
    let fresh = engine
        .reader()
        .expect("reader")
        .query("app", query, LIMIT)
        .expect("query")
        .cost;
    assert_eq!(after, fresh);
    assert_eq!(after, before);
}

/// Schema `app` with a parent row 1 and `children` rows referencing it: through an index on
/// the reference, or (`indexed` false) without one, so SQLite's foreign-key check scans the
/// whole child table for each parent row.
fn with_children(children: u32, indexed: bool) -> (tempfile::TempDir, Engine) {
    let (dir, mut engine) = engine();
    let mut sql = vec![
        "CREATE TABLE p(id INTEGER PRIMARY KEY) STRICT".to_owned(),
        "CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) ON DELETE CASCADE) STRICT"
            .to_owned(),
        "INSERT INTO p VALUES (1), (2)".to_owned(),
        format!(
            "INSERT INTO c SELECT x, 1 FROM (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL \
             SELECT x + 1 FROM n WHERE x < {children}) SELECT x FROM n)"
        ),
    ];
    if indexed {
        sql.push("CREATE INDEX c_p ON c(p)".to_owned());
    }
    let sql: Vec<&str> = sql.iter().map(String::as_str).collect();
    commit_block(&mut engine, Some("app"), "app", &sql);
    (dir, engine)
}

// Regression: foreign-key cascades and the scans of SQLite's foreign-key checks run in
// subprograms and loops without a dstorage_meter() call, and a write was only marked over
// budget by the progress handler, so they ran to their end (or to 4x the limit, aborting
// the block). Now the progress handler stops them where they pass the limit.
#[test]
fn foreign_key_cascades_and_checks_are_stopped_at_the_cost_limit() {
    let limit = 20_000;
    for (indexed, sql) in [
        // Deletes 20,000 child rows through the cascade.
        (true, "DELETE FROM p WHERE id = 1"),
        // Scans 20,000 child rows for a parent no child references.
        (false, "DELETE FROM p WHERE id = 2"),
    ] {
        let run = || {
            let (_dir, mut engine) = with_children(20_000, indexed);
            let mut block = engine.begin_block().expect("begin");
            let used = match block.execute("app", sql, limit) {
                Err(SqlError::CostLimitExceeded { limit: l, used }) if l == limit => used,
                other => panic!("{sql}: expected cost limit exceeded, got {other:?}"),
            };
            assert!(block.changeset().expect("changeset").records.is_empty());
            block
                .execute("app", "INSERT INTO p VALUES (3)", LIMIT)
                .expect("the block goes on");
            block.commit().expect("commit");
            used
        };
        let first = run();
        assert_eq!(first, run(), "{sql}");
        // A cascade deletes a row and records its values (one step per 8 bytes) between
        // checks; a scan moves no value.
        assert!(
            first > limit && first <= limit + PROGRESS_STEP + 16,
            "{sql}: used {first}"
        );
    }
}
