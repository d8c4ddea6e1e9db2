//! Regression tests for issue 10: `SELECT 1+1+...+1` with ~22,000 terms overflowed the stack
//! of the thread that guarded it (a tokio worker for `POST /v1/query`, the mempool thread
//! for a transaction) and aborted the node. Every shape of deep SQL must now give an error
//! on any thread, however small its stack.

mod common;

use dstorage_sql::{nesting_bound, Engine, SqlError, MAX_NESTING};

/// Smaller than any thread the node runs SQL on: whatever the SQL needs beyond it must come
/// from the engine's own stack growth.
const SMALL_STACK: usize = 256 * 1024;

/// SQL of each shape that nests, as deep as the nesting limit allows (or the parser's own
/// recursion limit, for the shapes it parses recursively).
fn deep_shapes() -> Vec<(&'static str, String)> {
    let chain = |first: &str, link: &str| {
        let mut sql = format!("SELECT {first}");
        while nesting_bound(&format!("{sql}{link}")).expect("tokenizes") <= MAX_NESTING {
            sql.push_str(link);
        }
        sql
    };
    let nested = |open: &str, inner: &str, close: &str, levels: usize| {
        format!(
            "SELECT {}{inner}{}",
            open.repeat(levels),
            close.repeat(levels)
        )
    };
    vec![
        ("binary chain", chain("1", "+1")),
        ("concatenation chain", chain("'a'", "||'a'")),
        ("comparison chain", chain("1", " = 1")),
        ("postfix chain", chain("1", " IS NULL")),
        ("collate chain", chain("'a'", " COLLATE BINARY")),
        ("and chain", chain("1", " AND 1")),
        ("unary minus chain", chain("1", " - -1")),
        ("compound chain", {
            let mut sql = "SELECT 1".to_owned();
            while nesting_bound(&format!("{sql} UNION SELECT 1")).expect("tokenizes") <= MAX_NESTING
            {
                sql.push_str(" UNION SELECT 1");
            }
            sql
        }),
        ("nested parentheses", nested("(", "1", ")", 200)),
        ("nested subqueries", nested("(SELECT ", "1", ")", 60)),
        ("nested case", nested("CASE WHEN 1 THEN ", "1", " END", 60)),
        ("nested unary", nested("-", "1", "", 60)),
        ("nested not", nested("NOT ", "1", "", 60)),
    ]
}

fn on_small_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the thread did not panic")
}

#[test]
fn the_deepest_allowed_sql_of_every_shape_runs_on_a_small_thread() {
    let (_dir, mut engine) = common::engine();
    common::commit_block(
        &mut engine,
        Some("app"),
        "app",
        &["CREATE TABLE t(id INTEGER PRIMARY KEY) STRICT"],
    );
    let mut reader = engine.reader().expect("reader");
    let shapes = deep_shapes();
    let (engine, outcomes) = on_small_thread(move || {
        let mut outcomes = Vec::new();
        for (name, sql) in &shapes {
            let read = reader.query("app", sql, common::LIMIT).map(|_| ());
            let estimate = reader.estimate("app", sql).map(|_| ());
            let written = {
                let mut block = engine.begin_block().expect("begin");
                let r = block.execute("app", sql, common::LIMIT).map(|_| ());
                block.discard().expect("discard");
                r
            };
            outcomes.push((
                *name,
                nesting_bound(sql).expect("bound"),
                read,
                estimate,
                written,
            ));
        }
        (engine, outcomes)
    });
    for (name, bound, read, estimate, written) in &outcomes {
        assert!(*bound <= MAX_NESTING, "{name}: {bound}");
        // Whatever the answer (SQLite refuses most of these as too deep), it is an answer.
        for r in [read, estimate, written] {
            if let Err(e) = r {
                assert!(!e.to_string().is_empty(), "{name}");
            }
        }
    }
    // The deepest chains are past SQLite's own expression depth (200).
    let (_, _, read, _, _) = &outcomes[0];
    let err = read
        .as_ref()
        .expect_err("a chain of 1,000 is too deep for SQLite");
    assert!(
        err.to_string().contains("Expression tree is too large"),
        "{err}"
    );
    drop(engine);
}

#[test]
fn sql_deeper_than_the_limit_is_refused_before_it_is_parsed() {
    let (_dir, mut engine) = common::engine();
    common::commit_block(&mut engine, Some("app"), "app", &[]);
    let mut reader = engine.reader().expect("reader");
    // 49,996 terms: about the longest chain the 100,000-byte SQL limit allows.
    let sql = format!("SELECT 1{}", "+1".repeat(49_995));
    assert!(sql.len() <= 100_000);
    let (read, estimate, engine) = on_small_thread(move || {
        let read = reader.query("app", &sql, common::LIMIT);
        let estimate = reader.estimate("app", &sql);
        let mut block = engine.begin_block().expect("begin");
        let written = block.execute("app", &sql, common::LIMIT);
        assert!(
            matches!(&written, Err(SqlError::Refused { construct, .. }) if construct.contains("levels deep")),
            "{written:?}"
        );
        block.discard().expect("discard");
        (read, estimate, engine)
    });
    for r in [read.map(|_| ()), estimate.map(|_| ())] {
        let err = r.expect_err("refused");
        assert!(
            matches!(&err, SqlError::Refused { construct, reason }
                if construct.contains("levels deep") && reason.contains("limit is 1000")),
            "{err}"
        );
    }
    drop(engine);
}

#[test]
fn ordinary_sql_is_far_below_the_nesting_limit() {
    for sql in [
        "SELECT a, b FROM t WHERE x = 1 AND y BETWEEN 2 AND 3 ORDER BY a LIMIT 10",
        "INSERT INTO t(id, name) VALUES (1, 'a'), (2, 'b') ON CONFLICT(id) DO UPDATE SET name = excluded.name",
        "WITH c AS (SELECT id FROM t WHERE id > 3) SELECT count(*) FROM c JOIN u ON u.id = c.id",
    ] {
        let bound = nesting_bound(sql).expect("tokenizes");
        assert!(bound < 40, "{sql}: {bound}");
    }
}

#[allow(dead_code)]
fn assert_engine_is_send(e: Engine) -> impl Send {
    e
}
