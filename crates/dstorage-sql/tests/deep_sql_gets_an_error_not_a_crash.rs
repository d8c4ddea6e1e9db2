//! Regression tests for issue 10: `SELECT 1+1+...+1` with ~22,000 terms overflowed the stack
//! of the thread that guarded it (a tokio worker for `POST /v1/query`, the mempool thread
//! for a transaction) and aborted the node. Every shape of deep SQL must now give an error
//! on any thread, however small its stack.

mod common;

use dstorage_sql::SqlError;

/// Smaller than any thread the node runs SQL on.
const SMALL_STACK: usize = 256 * 1024;

/// SQL of each shape that nests, about as deep as the 100,000-byte SQL limit allows.
fn deep_shapes() -> Vec<(&'static str, String)> {
    let chain = |first: &str, link: &str| {
        let n = (99_000 - first.len()) / link.len();
        format!("SELECT {first}{}", link.repeat(n))
    };
    let nested = |open: &str, inner: &str, close: &str| {
        let n = 99_000 / (open.len() + close.len());
        format!("SELECT {}{inner}{}", open.repeat(n), close.repeat(n))
    };
    vec![
        ("binary chain", chain("1", "+1")),
        ("concatenation chain", chain("'a'", "||'a'")),
        ("comparison chain", chain("1", "=1")),
        ("postfix chain", chain("1", " ISNULL")),
        ("collate chain", chain("'a'", " COLLATE BINARY")),
        ("and chain", chain("1", " AND 1")),
        ("unary minus chain", chain("1", "- -1")),
        (
            "compound chain",
            format!("SELECT 1{}", " UNION SELECT 1".repeat(6_000)),
        ),
        ("nested parentheses", nested("(", "1", ")")),
        ("nested subqueries", nested("(SELECT ", "1", ")")),
        ("nested case", nested("CASE WHEN 1 THEN ", "1", " END")),
        ("nested unary", nested("-", "1", "")),
        ("nested not", nested("NOT ", "1", "")),
        ("nested calls", nested("abs(", "1", ")")),
    ]
}

/// SQL of each shape just under the parser's depth limit (400), which SQLite then judges: the
/// deepest trees the guard walks.
fn deepest_accepted_shapes() -> Vec<(&'static str, String)> {
    let n = 395;
    let chain = |first: &str, link: &str| format!("SELECT {first}{}", link.repeat(n));
    let nested = |open: &str, inner: &str, close: &str| {
        format!("SELECT {}{inner}{}", open.repeat(n), close.repeat(n))
    };
    vec![
        ("accepted binary chain", chain("1", "+1")),
        ("accepted concatenation chain", chain("'a'", "||'a'")),
        ("accepted postfix chain", chain("1", " ISNULL")),
        ("accepted collate chain", chain("'a'", " COLLATE BINARY")),
        ("accepted and chain", chain("1", " AND 1")),
        ("accepted nested parentheses", nested("(", "1", ")")),
        (
            "accepted nested case",
            nested("CASE WHEN 1 THEN ", "1", " END"),
        ),
        ("accepted nested unary", nested("- ", "1", "")),
        ("accepted nested not", nested("NOT ", "1", "")),
        ("accepted nested calls", nested("abs(", "1", ")")),
    ]
}

#[allow(
    clippy::disallowed_methods,
    reason = "the test is that SQL runs on a thread with a small stack"
)]
fn on_small_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the thread did not panic")
}

#[test]
fn the_deepest_sql_of_every_shape_gets_an_answer_on_a_small_thread() {
    let (_dir, mut engine) = common::engine();
    common::commit_block(
        &mut engine,
        Some("app"),
        "app",
        &["CREATE TABLE t(id INTEGER PRIMARY KEY) STRICT"],
    );
    let mut reader = engine.reader().expect("reader");
    let mut shapes = deep_shapes();
    shapes.extend(deepest_accepted_shapes());
    let (engine, outcomes) = on_small_thread(move || {
        let mut outcomes = Vec::new();
        for (name, sql) in &shapes {
            assert!(sql.len() <= 100_000, "{name}: {}", sql.len());
            let read = reader.query("app", sql, common::LIMIT).map(|_| ());
            let estimate = reader.estimate("app", sql).map(|_| ());
            // CheckTx's judgement of the text alone: an answer, whichever.
            let _ = reader.check("app", sql);
            let written = {
                let mut block = engine.begin_block().expect("begin");
                let r = block.execute("app", sql, common::LIMIT).map(|_| ());
                block.discard().expect("discard");
                r
            };
            outcomes.push((*name, read, estimate, written));
        }
        (engine, outcomes)
    });
    for (name, read, estimate, written) in &outcomes {
        if name.starts_with("accepted") {
            // SQLite refuses most of these (its expression depth is 200) and runs the
            // others (parentheses and ISNULL do not count for it): either way an answer.
            continue;
        }
        for r in [read, estimate, written] {
            let err = r.as_ref().expect_err(name);
            assert!(
                matches!(
                    err,
                    SqlError::Refused { .. } | SqlError::Sqlite(_) | SqlError::Parse(_)
                ),
                "{name}: {err}"
            );
        }
    }
    let (_, read, _, _) = &outcomes[0];
    let err = read.as_ref().expect_err("49,500 terms");
    assert!(err.to_string().contains("nested too deeply"), "{err}");
    drop(engine);
}
