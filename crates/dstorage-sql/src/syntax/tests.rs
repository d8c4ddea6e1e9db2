//! The parser against SQLite itself: for statements made by mutating valid ones, this
//! parser finds a syntax error exactly where SQLite's parser does.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ast::Body;
use super::token::{significant, Tk};
use crate::SqlError;

/// Statements covering the grammar dstorage runs.
const CORPUS: &[&str] = &[
    "SELECT a, b AS x, t.* FROM t WHERE a > 1 AND NOT b IS NULL ORDER BY a DESC NULLS LAST LIMIT 3 OFFSET 1",
    "SELECT DISTINCT a FROM t LEFT OUTER JOIN u USING (a) NATURAL JOIN v CROSS JOIN w ON w.a = t.a",
    "SELECT count(*), sum(DISTINCT a), group_concat(b, ',' ORDER BY a) FROM t GROUP BY c HAVING count(*) > 1",
    "SELECT * FROM (SELECT a FROM t) AS s, (t INDEXED BY i JOIN u NOT INDEXED ON u.a = t.a)",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT x FROM c",
    "WITH a AS MATERIALIZED (SELECT 1), b AS NOT MATERIALIZED (VALUES (2)) SELECT * FROM a, b",
    "SELECT CASE a WHEN 1 THEN 'x' ELSE 'y' END, CASE WHEN b THEN 1 END FROM t",
    "SELECT CAST(a AS INTEGER), a COLLATE nocase, a BETWEEN 1 AND 2, a NOT BETWEEN b AND c FROM t",
    "SELECT a IN (1, 2), a NOT IN (SELECT b FROM u), a IN u, EXISTS (SELECT 1), (SELECT 2) FROM t",
    "SELECT a LIKE 'x%' ESCAPE '\\', a NOT GLOB 'y*', a ISNULL, a NOTNULL, a NOT NULL, a IS NOT DISTINCT FROM b FROM t",
    "SELECT - -1, +~a, a << 2 >> 1 | 3 & 4, a || b, 0x1F, 1_000, X'00ff', ?1, :p, @q, $r FROM t",
    "SELECT (1, 2) = (a, b), abs(-a), coalesce(a, b, c), iif(a, b, c) FROM t",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT 1 UNION SELECT 2 INTERSECT SELECT 3 EXCEPT SELECT 4 ORDER BY 1",
    "INSERT INTO t (a, b) VALUES (1, 2), (3, 4) ON CONFLICT (a) DO UPDATE SET b = excluded.b WHERE t.a > 0 RETURNING *",
    "INSERT OR IGNORE INTO s.t AS x SELECT * FROM u WHERE true ON CONFLICT DO NOTHING",
    "REPLACE INTO t DEFAULT VALUES RETURNING a",
    "WITH c AS (SELECT 1 AS a) INSERT INTO t SELECT a, a FROM c",
    "UPDATE OR FAIL t AS x INDEXED BY i SET a = 1, (b, c) = (2, 3) FROM u WHERE x.a = u.a RETURNING a",
    "DELETE FROM t WHERE a IN (SELECT a FROM u ORDER BY a LIMIT 2) RETURNING a, b",
    "CREATE TABLE IF NOT EXISTS t (a INTEGER PRIMARY KEY DESC ON CONFLICT ABORT, b TEXT NOT NULL DEFAULT 'x' COLLATE nocase, c BLOB UNIQUE CHECK (length(c) > 0), d INTEGER REFERENCES u(a) ON DELETE CASCADE ON UPDATE SET NULL DEFERRABLE INITIALLY IMMEDIATE, e INTEGER GENERATED ALWAYS AS (a + 1) STORED, f TEXT AS (b) VIRTUAL, CONSTRAINT k UNIQUE (b, c), CHECK (a > 0), FOREIGN KEY (d) REFERENCES u (a) NOT DEFERRABLE) STRICT, WITHOUT ROWID",
    "CREATE TABLE t (a VARCHAR(10), b DECIMAL(10, 2), c UNSIGNED BIG INT, PRIMARY KEY (a, b)) WITHOUT ROWID",
    "CREATE UNIQUE INDEX IF NOT EXISTS i ON t (a DESC, lower(b) COLLATE nocase) WHERE a > 0",
    "CREATE VIEW v (x, y) AS SELECT a, b FROM t",
    "DROP TABLE IF EXISTS s.t",
    "DROP INDEX i",
    "DROP VIEW IF EXISTS v",
    "PRAGMA table_info('t')",
    "PRAGMA main.index_list = t",
    "SELECT key, replace(a, 'b', 'c'), like(a, b), left.x FROM t AS left",
    "SELECT max(a) FILTER (WHERE a > 1) FROM t",
    "SELECT max(a) FILTER (WHERE a > 1) OVER (PARTITION BY b ORDER BY a ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE NO OTHERS), sum(a) OVER w FROM t WINDOW w AS (ORDER BY a RANGE 2 PRECEDING)",
    "SELECT RAISE(IGNORE), RAISE(ABORT, 'x' || a) FROM t",
    "CREATE TABLE g (a INTEGER PRIMARY KEY, b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL, c TEXT AS (b) STORED, d KEY)",
    "SELECT CAST(a AS), - NOT a, a BETWEEN b ISNULL AND c FROM t",
];

/// Tokens the mutations insert.
const VOCABULARY: &[&str] = &[
    "(",
    ")",
    ",",
    ".",
    ";",
    "*",
    "-",
    "+",
    "=",
    "<",
    "||",
    "->",
    "1",
    "'s'",
    "x",
    "t",
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "BETWEEN",
    "AS",
    "ON",
    "USING",
    "JOIN",
    "LEFT",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "UNION",
    "ALL",
    "VALUES",
    "WITH",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "CAST",
    "COLLATE",
    "ESCAPE",
    "DISTINCT",
    "KEY",
    "PRIMARY",
    "DEFAULT",
    "CHECK",
    "REFERENCES",
    "INDEXED",
    "ISNULL",
    "GLOB",
    "EXISTS",
    "RETURNING",
    "SET",
    "DO",
    "NOTHING",
    "CONFLICT",
    "REPLACE",
    "FILTER",
    "OVER",
    "WINDOW",
    "MATERIALIZED",
    "STRICT",
    "WITHOUT",
    "ROWID",
    "IF",
    "TEMP",
    "RAISE",
];

/// SQLite's verdict on `sql`: Some(true) for a syntax error of its grammar, Some(false)
/// when its parser got through (it prepared, or failed later resolving names against this
/// empty database), None when a grammar action refused it (`unknown join type`, ...), which
/// says nothing about the grammar.
fn sqlite_says_syntax_error(conn: &rusqlite::Connection, sql: &str) -> Option<bool> {
    match conn.prepare(sql) {
        Ok(_) => Some(false),
        Err(e) => {
            let m = e.to_string();
            if m.contains("syntax error")
                || m.contains("incomplete input")
                || m.contains("unrecognized token")
            {
                Some(true)
            } else if [
                "no such table",
                "no such function",
                "no such index",
                "no such view",
                "no tables specified",
                "wrong number of arguments",
                "misuse of aggregate",
            ]
            .iter()
            .any(|p| m.contains(p))
            {
                Some(false)
            } else {
                None
            }
        }
    }
}

/// Our verdict, or None where the comparison does not apply (a statement kind dstorage
/// does not parse, nesting past the limit, several statements).
fn we_say_syntax_error(sql: &str) -> Option<bool> {
    let toks = significant(sql);
    if toks.iter().any(|t| t.kind == Tk::Illegal) {
        return Some(true);
    }
    match super::parser::parse(sql, &toks) {
        Ok(stmts) if stmts.len() == 1 && !matches!(stmts[0].body, Body::Unsupported(_)) => {
            Some(false)
        }
        Ok(_) => None,
        Err(SqlError::Parse(_)) => Some(true),
        Err(_) => None,
    }
}

/// Characters that decide how SQLite splits text into tokens.
const CHARACTERS: &[char] = &[
    '\'', '"', '`', '[', ']', '-', '/', '*', '\n', ' ', '.', '_', 'e', 'x', 'X', '0', '9', '$',
    ':', '@', '?', '#', '|', '<', '>', '=', '!', '~', '(', ')', ',', '+',
];

/// Insert, delete or replace a few characters anywhere (inside strings and comments too).
fn mutate_characters(rng: &mut StdRng, sql: &str) -> String {
    let mut chars: Vec<char> = sql.chars().collect();
    for _ in 0..rng.gen_range(1..=3) {
        let i = rng.gen_range(0..=chars.len());
        let c = CHARACTERS[rng.gen_range(0..CHARACTERS.len())];
        match rng.gen_range(0..3) {
            0 => chars.insert(i, c),
            1 if i < chars.len() => {
                chars.remove(i);
            }
            _ if i < chars.len() => chars[i] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

fn mutate(rng: &mut StdRng, sql: &str) -> String {
    if rng.gen_bool(0.4) {
        return mutate_characters(rng, sql);
    }
    let toks = significant(sql);
    let mut words: Vec<String> = toks.iter().map(|t| t.text(sql).to_owned()).collect();
    for _ in 0..rng.gen_range(1..=2) {
        let i = rng.gen_range(0..words.len().max(1));
        match rng.gen_range(0..4) {
            0 if words.len() > 1 => {
                words.remove(i.min(words.len() - 1));
            }
            1 if i + 1 < words.len() => words.swap(i, i + 1),
            2 => words.insert(i, VOCABULARY[rng.gen_range(0..VOCABULARY.len())].to_owned()),
            _ => {
                let j = rng.gen_range(0..words.len());
                let w = words[j].clone();
                words.insert(i, w);
            }
        }
    }
    words.join(" ")
}

#[test]
fn the_corpus_parses_as_sqlite_parses_it() {
    let conn = rusqlite::Connection::open_in_memory().expect("open");
    for sql in CORPUS {
        assert_eq!(
            sqlite_says_syntax_error(&conn, sql),
            Some(false),
            "SQLite refuses {sql}"
        );
        assert_eq!(we_say_syntax_error(sql), Some(false), "we refuse {sql}");
    }
}

#[test]
fn mutated_statements_are_syntax_errors_exactly_where_sqlite_finds_one() {
    let conn = rusqlite::Connection::open_in_memory().expect("open");
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut disagreements = Vec::new();
    let mut compared = 0;
    // DSTORAGE_PARSER_CASES runs more (the default keeps CI fast).
    let cases: usize = std::env::var("DSTORAGE_PARSER_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    for _ in 0..cases {
        let base = CORPUS[rng.gen_range(0..CORPUS.len())];
        let sql = mutate(&mut rng, base);
        if sql.contains(';') || sql.contains('\0') {
            continue;
        }
        let Some(ours) = we_say_syntax_error(&sql) else {
            continue;
        };
        let Some(theirs) = sqlite_says_syntax_error(&conn, &sql) else {
            continue;
        };
        compared += 1;
        if ours != theirs {
            disagreements.push(format!("ours {ours}, SQLite {theirs}: {sql}"));
        }
    }
    assert!(compared > cases / 4, "only {compared} compared");
    assert!(
        disagreements.is_empty(),
        "{} of {compared} disagree, e.g.:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
