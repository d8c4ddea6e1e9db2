//! The guard reads SQL as SQLite does: every case of issue 10's "Fooled", "results chosen by
//! the plan" and "rough edges" lists, judged against SQLite itself. Each test runs the same
//! text on a guarded engine and on a plain rusqlite connection to the same bundled SQLite
//! (3.54.1) holding the same tables, with no guard: where the guard accepts a statement,
//! the value must be SQLite's; where the plan decides SQLite's answer, the engine's must be
//! the one the primary key decides; what the guard refuses it refuses with a typed error
//! naming the cause.

mod common;

use common::{commit_block, LIMIT};
use dstorage_sql::{Engine, ExecOutcome, QueryResult, SqlError, Value, PROGRESS_STEP};
use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use tempfile::TempDir;

const SCHEMA: &str = "app";

/// Tables of both databases. In `ord` the covering index on (grp, name) orders the rows of
/// one group by name, the reverse of their keys, so a plan that walks it sees 19, 7, 3
/// where the key order is 3, 7, 19. `tk` is a rowid table keyed by TEXT whose insertion
/// (rowid) order differs from its key order.
const SETUP: &[&str] = &[
    "CREATE TABLE ord(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, name TEXT NOT NULL) STRICT",
    "CREATE INDEX ord_grp_name ON ord(grp, name)",
    "CREATE TABLE f(id INTEGER PRIMARY KEY, flags INTEGER NOT NULL) STRICT",
    "CREATE TABLE tk(k TEXT PRIMARY KEY, v INTEGER NOT NULL) STRICT",
    "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT) STRICT",
    "CREATE VIEW big AS SELECT a.id AS id FROM ord a, ord b, ord c, ord d, ord e, ord g, ord h, ord i",
    "CREATE VIEW forever AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
    "INSERT INTO ord VALUES (3, 1, 'z'), (7, 1, 'm'), (19, 1, 'a'), (4, 2, 'y'), (8, 2, 'b'), (1, 3, 'q')",
    "INSERT INTO f VALUES (1, 1), (2, 0)",
    "INSERT INTO tk VALUES ('c', 1), ('a', 2), ('b', 3)",
];

/// A guarded engine and a plain SQLite connection with the same tables and rows.
struct Pair {
    _dirs: (TempDir, TempDir),
    engine: Engine,
    plain: Connection,
}

type Rows = Vec<Vec<Value>>;

fn pair() -> Pair {
    let (dir, mut engine) = common::engine();
    commit_block(&mut engine, Some(SCHEMA), SCHEMA, SETUP);
    let plain_dir = tempfile::tempdir().expect("tempdir");
    let plain = Connection::open(plain_dir.path().join("plain.sqlite")).expect("open plain");
    // The dialect the engine configures: a double-quoted word is a name, never a string.
    for c in [
        DbConfig::SQLITE_DBCONFIG_DQS_DML,
        DbConfig::SQLITE_DBCONFIG_DQS_DDL,
    ] {
        plain.set_db_config(c, false).expect("db config");
    }
    for s in SETUP {
        plain.execute_batch(s).expect(s);
    }
    Pair {
        _dirs: (dir, plain_dir),
        engine,
        plain,
    }
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        // No test here compares a float; show one plainly if it appears.
        ValueRef::Real(r) => Value::Text(format!("REAL {r}")),
    }
}

/// Rows and column names of `sql` on a plain connection.
fn plain_query(conn: &Connection, sql: &str) -> rusqlite::Result<(Vec<String>, Rows)> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let n = names.len();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| r.get_ref(i).map(value))
                .collect::<rusqlite::Result<Vec<_>>>()
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((names, rows))
}

impl Pair {
    /// `sql` through a reader of the guarded engine.
    fn read(&self, sql: &str) -> Result<QueryResult, SqlError> {
        self.engine.reader()?.query(SCHEMA, sql, LIMIT)
    }

    /// `sql` through the guarded engine, which must accept it.
    #[track_caller]
    fn rows(&self, sql: &str) -> Rows {
        self.read(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).rows
    }

    /// `sql` on plain SQLite, which must accept it.
    #[track_caller]
    fn plain_rows(&self, sql: &str) -> Rows {
        plain_query(&self.plain, sql)
            .unwrap_or_else(|e| panic!("plain SQLite: {sql}: {e}"))
            .1
    }

    /// The guarded engine answers `sql` with the same rows in the same order as plain
    /// SQLite; `None` if it does, else what differs.
    fn differs(&self, sql: &str) -> Option<String> {
        let plain = plain_query(&self.plain, sql);
        match (self.read(sql), plain) {
            (Ok(g), Ok((_, rows))) if g.rows == rows => None,
            (Ok(g), Ok((_, rows))) => Some(format!(
                "{sql:?}: the guarded engine answers {:?}, SQLite {rows:?}",
                g.rows
            )),
            (Err(e), Ok(_)) => Some(format!("{sql:?}: the guard refused valid SQLite: {e}")),
            (_, Err(e)) => Some(format!("{sql:?}: plain SQLite fails: {e}")),
        }
    }

    /// The guarded engine answers `sql` with the same rows in the same order as plain SQLite.
    #[track_caller]
    fn same(&self, sql: &str) {
        if let Some(d) = self.differs(sql) {
            panic!("{d}");
        }
    }

    /// Every statement of `sqls` answers as on plain SQLite; all that do not are listed.
    #[track_caller]
    fn all_same(&self, sqls: &[&str]) {
        let failures: Vec<String> = sqls.iter().filter_map(|s| self.differs(s)).collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// Run `sql` on both databases as one committed block (guarded) and one plain batch.
    #[track_caller]
    fn write_both(&mut self, sql: &str) -> ExecOutcome {
        let mut block = self.engine.begin_block().expect("begin");
        let out = block
            .execute(SCHEMA, sql, LIMIT)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        block.commit().expect("commit");
        self.plain.execute_batch(sql).expect(sql);
        out
    }

    /// Run `sql` in a block that is then discarded.
    fn try_write(&mut self, sql: &str) -> Result<ExecOutcome, SqlError> {
        let mut block = self.engine.begin_block().expect("begin");
        let out = block.execute(SCHEMA, sql, LIMIT);
        block.discard().expect("discard");
        out
    }

    /// Both databases hold the same rows in `table`.
    #[track_caller]
    fn same_table(&self, table: &str) {
        let sql = format!("SELECT * FROM {table} ORDER BY 1");
        assert_eq!(self.rows(&sql), self.plain_rows(&sql), "{table}");
    }
}

fn int(i: i64) -> Value {
    Value::Integer(i)
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// The text of a refusal, asserting it is one (`Refused`, `ColumnType`, `TableDefinition`
/// or `Parse`), not an error SQLite raised after running something.
#[track_caller]
fn refusal(result: Result<impl std::fmt::Debug, SqlError>, sql: &str) -> SqlError {
    match result {
        Err(
            e @ (SqlError::Refused { .. }
            | SqlError::ColumnType { .. }
            | SqlError::TableDefinition { .. }
            | SqlError::Parse(_)),
        ) => e,
        other => panic!("{sql:?} should be refused by the guard, got {other:?}"),
    }
}

#[test]
fn a_minus_sign_before_a_negative_number_is_not_a_comment() {
    let p = pair();
    assert_eq!(p.rows("SELECT - -1"), vec![vec![int(1)]]);
    p.all_same(&[
        "SELECT - -1",
        "SELECT - - - 1, -(-1), - (- 1), 2 - -1, 2- -1, 2--1\n",
        "SELECT 2--1\n, 3",
    ]);
    // The old exploit: `- -1` printed back as `--1` commented out the rest of the line, and
    // the newline inside the later string ended the comment, so SQLite ran the string's
    // second line as SQL. Read by SQLite's rules it is a string and stays one.
    p.all_same(&[
        "SELECT - -1, 'x\n name FROM sqlite_master --'",
        "SELECT - -1 AS a, 'x\n, (SELECT group_concat(name) FROM sqlite_master) --' AS b",
        "SELECT - -1, name || ' \n FROM sqlite_master -- ' FROM ord WHERE id = 3",
        "SELECT - -1, 'a\n' || group_concat(name, ',' ORDER BY name) FROM ord",
    ]);
    // The default order is still added after the trick: key order, not the index's.
    let sql = "SELECT - -1, id, 'x\n' FROM ord WHERE grp > 0";
    let ids = |rows: Rows| -> Vec<Value> { rows.into_iter().map(|r| r[1].clone()).collect() };
    let by_key: Vec<Value> = [1, 3, 4, 7, 8, 19].into_iter().map(int).collect();
    assert_ne!(
        ids(p.plain_rows(sql)),
        by_key,
        "the test needs a plan whose order differs from the key order"
    );
    assert_eq!(ids(p.rows(sql)), by_key);
    let rows = p.rows("SELECT - -1, 'x\n name FROM sqlite_master --'");
    assert_eq!(
        rows,
        vec![vec![int(1), text("x\n name FROM sqlite_master --")]]
    );
}

// Regression check for the 2,000-seed campaign's `- 168` vs `---\n168`: the generator's
// rendering joined a `-` token to a `--` line comment, so one side read `168` and the other
// `-168`. The bug was the generator's; what the engine sends SQLite reads three minus signs
// as SQLite does (a comment from the first two), with and without the guard's additions
// (an ORDER BY appended, a table renamed) on the same line.
#[test]
fn three_minus_signs_start_a_comment_as_sqlite_reads_them() {
    let p = pair();
    assert_eq!(p.rows("SELECT ---\n168"), vec![vec![int(168)]]);
    assert_eq!(p.rows("SELECT - --\n168"), vec![vec![int(-168)]]);
    p.all_same(&[
        "SELECT ---\n168, 2---\n- 1",
        "SELECT -/**/-\n168, - -- x\n- 1",
        "SELECT id FROM ord WHERE id > ---\n3",
        "SELECT id, ---\n3 FROM ord LIMIT ---\n+ - 4",
        "SELECT id FROM ord WHERE id > 0 ---\n",
    ]);
}

#[test]
fn hex_literals_are_integers() {
    let mut p = pair();
    assert_eq!(p.rows("SELECT 0x10"), vec![vec![int(16)]]);
    p.all_same(&[
        "SELECT 0x10, typeof(0x10), 0X1f, -0x10, 0x7FFFFFFFFFFFFFFF",
        "SELECT 0xFFFFFFFFFFFFFFFF, 0x8000000000000000, 0x10 + 1, 0x10 | 0x01",
        "SELECT id FROM ord WHERE id = 0x13",
        "SELECT x'10', X'', typeof(x'10')",
    ]);
    let out = p.write_both("UPDATE f SET flags = flags | 0x04 WHERE id = 1");
    assert_eq!(out.rows_changed, 1);
    assert_eq!(
        p.rows("SELECT flags FROM f WHERE id = 1"),
        vec![vec![int(5)]]
    );
    p.same_table("f");
}

#[test]
fn digit_separators_are_part_of_the_number() {
    let p = pair();
    let r = p.read("SELECT 1_000").expect("1_000");
    assert_eq!(r.rows, vec![vec![int(1000)]]);
    assert_eq!(r.columns.len(), 1, "{:?}", r.columns);
    for sql in [
        "SELECT 1_000",
        "SELECT 1_000_000, 0x_10 + 0, 0x1_0",
        "SELECT id FROM ord WHERE id < 1_9 ORDER BY id",
    ] {
        match plain_query(&p.plain, sql) {
            Ok(_) => p.same(sql),
            // What SQLite refuses the guard refuses too.
            Err(_) => {
                refusal(p.read(sql), sql);
            }
        }
    }
    // Separators SQLite does not accept.
    for sql in [
        "SELECT 1__0",
        "SELECT 1_",
        "SELECT _1",
        "SELECT 1_.5",
        "SELECT 0x_",
    ] {
        let plain = plain_query(&p.plain, sql);
        let guarded = p.read(sql);
        assert_eq!(
            plain.is_ok(),
            guarded.is_ok(),
            "{sql:?}: SQLite says {plain:?}, the guard {guarded:?}"
        );
    }
}

#[test]
fn sqlite_operators_are_accepted() {
    let p = pair();
    p.all_same(&[
        "SELECT 'abc' GLOB 'a*', 'abc' NOT GLOB 'a*', 'abc' GLOB 'b*'",
        "SELECT 1 << 3, 256 >> 2, -1 >> 1, 1 << 63, ~5, 5 % 3, 7 & 3 | 8",
        "SELECT 'a' IS 'a', 'a' IS 'b', 'a' IS NOT 'b', NULL IS NULL",
        "SELECT 1 IS NOT DISTINCT FROM 1, 2 IS DISTINCT FROM 1",
        "SELECT NULL ISNULL, 1 ISNULL, NULL NOTNULL, 1 NOTNULL, NULL NOT NULL, 1 NOT NULL",
        "SELECT - -1, + +1, - - -1, NOT NOT 1, -(-(-(1)))",
        "SELECT 'a' || 'b' || 1, 'it''s', X'00' = x'00', 'A' = 'a' COLLATE NOCASE",
        "SELECT 'abc' LIKE 'A%', 'a_c' LIKE 'a\\_c' ESCAPE '\\', 2 BETWEEN 1 AND 3",
        "SELECT CASE WHEN 1 THEN 'y' ELSE 'n' END, CASE 2 WHEN 1 THEN 'a' WHEN 2 THEN 'b' END",
        "SELECT 1 IN (1, 2), 3 NOT IN (1, 2), 1 IN (), iif(1, 'a', 'b')",
        "SELECT \"id\", [grp], `name` FROM ord WHERE id = 3",
        "SELECT id FROM ord WHERE name GLOB '[a-m]*' ORDER BY id",
        "SELECT id FROM ord WHERE grp << 1 = 4 AND id >> 1 = 2 ORDER BY id",
        "SELECT id FROM ord WHERE name NOT GLOB 'z' AND grp NOTNULL ORDER BY id",
        "WITH c AS MATERIALIZED (SELECT id FROM ord) SELECT count(*) FROM c",
        "WITH c AS NOT MATERIALIZED (SELECT id FROM ord) SELECT count(*), sum(id) FROM c",
        "SELECT count(*) FROM ord INDEXED BY ord_grp_name WHERE grp = 1",
        "SELECT count(*) FROM ord NOT INDEXED WHERE grp = 1",
        "SELECT id FROM ord AS o INDEXED BY ord_grp_name WHERE grp = 2 ORDER BY id",
        "SELECT CAST('12' AS INTEGER), CAST(12 AS TEXT), CAST('ab' AS BLOB)",
        "SELECT typeof(CAST('1.5' AS INTEGER)), CAST('1.9' AS INTEGER)",
        // Types are read by SQLite's affinity rules: "INT" anywhere makes INTEGER.
        "SELECT CAST('7' AS floating point), CAST('7' AS POINT), typeof(CAST('7' AS BIGINT))",
    ]);
}

#[test]
fn real_literals_and_real_casts_are_refused() {
    let mut p = pair();
    let mut failures = Vec::new();
    for sql in [
        "SELECT 1.5",
        "SELECT 1e3",
        "SELECT 1E-3",
        "SELECT .5",
        "SELECT 1.",
        "SELECT - -1.5",
        "SELECT 1_0.5",
        "SELECT id FROM ord WHERE id > 2.5",
        "SELECT CAST(id AS REAL) FROM ord",
        "SELECT CAST(id AS BOOLEAN) FROM ord",
        "SELECT CAST('1.5' AS BOOLEAN)",
        "SELECT CAST(1 AS FLOAT)",
        "SELECT CAST(1 AS DOUBLE PRECISION)",
        "SELECT CAST(1 AS NUMERIC)",
        "SELECT CAST(1 AS DECIMAL(10, 2))",
        "SELECT CAST(1 AS \"REAL\")",
        "SELECT CAST(1 AS [real])",
        "SELECT CAST(1 AS FLOA)",
        "SELECT CAST(1 AS dec)",
        "SELECT CAST(1 AS bool)",
        "SELECT CAST(1 AS \"\")",
        "SELECT CAST('1.5' AS [])",
    ] {
        match p.read(sql) {
            Err(e @ SqlError::Refused { .. })
                if ["REAL", "NUMERIC", "floating"]
                    .iter()
                    .any(|w| e.to_string().contains(w)) => {}
            other => failures.push(format!("{sql:?}: {other:?}")),
        }
    }
    // Regression: a CAST to an empty type name (`""`, `[]`) was taken for BLOB affinity; to
    // SQLite it is NUMERIC, and '0.30000000000000004' was stored.
    for sql in [
        "INSERT INTO t VALUES (1, 1.5)",
        "UPDATE f SET flags = CAST(flags AS REAL)",
        "UPDATE f SET flags = CAST('2' AS BOOLEAN)",
        "INSERT INTO t VALUES (1, CAST('0.1' AS \"\") + CAST('0.2' AS \"\"))",
        "INSERT INTO t VALUES (1, CAST('1.5' AS []))",
        "INSERT INTO t VALUES (1, CAST('1.5' AS ``))",
    ] {
        match p.try_write(sql) {
            Err(SqlError::Refused { .. }) => {}
            other => failures.push(format!("{sql:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_scalar_subquery_takes_the_first_row_by_key() {
    let mut p = pair();
    let sql = "SELECT (SELECT id FROM ord WHERE grp = 1)";
    assert_eq!(
        p.plain_rows(sql),
        vec![vec![int(19)]],
        "the test needs a plan whose order differs from the key order"
    );
    assert_eq!(p.rows(sql), vec![vec![int(3)]]);
    for (sql, want) in [
        ("SELECT (SELECT name FROM ord WHERE grp = 1)", text("z")),
        (
            "SELECT (SELECT id FROM ord WHERE grp = 1 LIMIT 1 OFFSET 1)",
            int(7),
        ),
        (
            "SELECT id FROM ord WHERE id = (SELECT id FROM ord WHERE grp = 1)",
            int(3),
        ),
        (
            "SELECT (SELECT o.id FROM ord o WHERE o.grp = f.id) FROM f WHERE id = 1",
            int(3),
        ),
        (
            "SELECT (SELECT x FROM (SELECT id AS x FROM ord WHERE grp = 1))",
            int(3),
        ),
        (
            "SELECT (WITH g AS (SELECT id FROM ord WHERE grp = 1) SELECT id FROM g)",
            int(3),
        ),
        (
            "SELECT (SELECT id FROM ord WHERE grp = 1 UNION ALL SELECT 0)",
            int(0),
        ),
        (
            "SELECT count(*) FROM ord WHERE id IN (SELECT id FROM ord WHERE grp = 1 LIMIT 1)",
            int(1),
        ),
        (
            "SELECT max(id) FROM ord WHERE id IN (SELECT id FROM ord WHERE grp = 1 LIMIT 1)",
            int(3),
        ),
    ] {
        assert_eq!(p.rows(sql), vec![vec![want]], "{sql}");
    }
    // In a view too.
    p.write_both("CREATE VIEW first_of_one AS SELECT (SELECT id FROM ord WHERE grp = 1) AS x");
    assert_eq!(p.rows("SELECT x FROM first_of_one"), vec![vec![int(3)]]);
    // In a write the first row by key is written, whatever the plan.
    p.write_both("UPDATE f SET flags = (SELECT id FROM ord WHERE grp = 1) WHERE id = 2");
    assert_eq!(
        p.rows("SELECT flags FROM f WHERE id = 2"),
        vec![vec![int(3)]]
    );
    let mut block = p.engine.begin_block().expect("begin");
    block
        .execute(
            SCHEMA,
            "INSERT INTO t VALUES (1, (SELECT name FROM ord WHERE grp = 1))",
            LIMIT,
        )
        .expect("insert");
    block.commit().expect("commit");
    assert_eq!(p.rows("SELECT v FROM t"), vec![vec![text("z")]]);
}

#[test]
fn group_concat_ties_are_broken_by_key() {
    let p = pair();
    // Walking the (grp, name) index, SQLite meets the rows of a group in name order.
    let sql = "SELECT group_concat(id, ',' ORDER BY grp) FROM ord WHERE grp > 0";
    let by_key = vec![vec![text("3,7,19,4,8,1")]];
    assert_eq!(
        p.plain_rows(sql),
        vec![vec![text("19,7,3,8,4,1")]],
        "the test needs a plan that breaks ties otherwise"
    );
    assert_eq!(p.rows(sql), by_key);
    for sql in [
        "SELECT group_concat(id, ',' ORDER BY grp) FROM ord",
        "SELECT group_concat(id, ',' ORDER BY grp) FROM ord INDEXED BY ord_grp_name",
        "SELECT group_concat(id, ',' ORDER BY grp ASC) FROM ord AS o WHERE o.grp > 0",
    ] {
        assert_eq!(p.rows(sql), by_key, "{sql}");
    }
    assert_eq!(
        p.rows("SELECT string_agg(name, ',' ORDER BY grp) FROM ord"),
        p.plain_rows("SELECT string_agg(name, ',' ORDER BY grp, id) FROM ord")
    );
    assert_eq!(
        p.rows("SELECT grp, group_concat(id, '-' ORDER BY grp) FROM ord GROUP BY grp"),
        p.plain_rows(
            "SELECT grp, group_concat(id, '-' ORDER BY grp, id) FROM ord GROUP BY grp ORDER BY grp"
        )
    );
    // Over a subquery there is no key: ties are broken by the arguments themselves.
    assert_eq!(
        p.rows("SELECT group_concat(i, ',' ORDER BY g) FROM (SELECT id AS i, grp AS g FROM ord)"),
        by_key
    );
    // Without an ORDER BY of its own it is refused with the way to write it.
    for sql in [
        "SELECT group_concat(id) FROM ord",
        "SELECT group_concat(name, ',') FROM ord",
        "SELECT string_agg(name, ',') FROM ord",
        "SELECT grp FROM ord GROUP BY grp HAVING group_concat(name) = 'a'",
        "SELECT (SELECT group_concat(name) FROM ord)",
    ] {
        let e = refusal(p.read(sql), sql);
        assert!(e.to_string().contains("ORDER BY"), "{sql}: {e}");
    }
}

// Fails on the guard of b13b25b: a group_concat in a query's ORDER BY is not checked, so
// the rows are sorted by a value the plan decides (group 1 concatenates to "z,m,a" in key
// order and "a,m,z" walking the (grp, name) index).
#[test]
fn a_group_concat_in_an_order_by_needs_its_own_order_by() {
    let p = pair();
    let mut failures = Vec::new();
    for sql in [
        "SELECT grp FROM ord GROUP BY grp ORDER BY group_concat(name)",
        "SELECT grp FROM ord WHERE grp > 0 GROUP BY grp ORDER BY group_concat(name, '')",
        "SELECT grp, count(*) FROM ord GROUP BY grp ORDER BY string_agg(name, ',')",
    ] {
        match p.read(sql) {
            Err(e @ SqlError::Refused { .. }) if e.to_string().contains("ORDER BY") => {}
            other => failures.push(format!("{sql:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn bare_columns_next_to_aggregates_are_refused_with_a_hint() {
    let p = pair();
    let mut failures = Vec::new();
    for (sql, column) in [
        ("SELECT name, max(id) FROM ord", "name"),
        ("SELECT name, count(*) FROM ord", "name"),
        ("SELECT max(id) + grp FROM ord", "grp"),
        ("SELECT *, count(*) FROM ord", "*"),
        ("SELECT grp, name, count(*) FROM ord GROUP BY grp", "name"),
        ("SELECT grp, name FROM ord GROUP BY grp", "name"),
        ("SELECT grp FROM ord GROUP BY grp HAVING name = 'a'", "name"),
        (
            "SELECT grp, count(*) FROM ord GROUP BY grp ORDER BY name",
            "name",
        ),
    ] {
        match p.read(sql) {
            Err(e @ SqlError::Refused { .. })
                if e.to_string()
                    .contains(&format!("column {column} next to an aggregate"))
                    && e.to_string().contains("GROUP BY") => {}
            other => failures.push(format!("{sql:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Grouped columns and aggregates are fine, qualified or not, and answer as SQLite does.
    p.all_same(&[
        "SELECT grp, count(*), max(name) FROM ord GROUP BY grp ORDER BY grp",
        "SELECT ord.grp, count(*) FROM ord GROUP BY grp ORDER BY 1",
        "SELECT grp + 1, count(*) FROM ord GROUP BY grp + 1 ORDER BY 1",
        "SELECT a.grp, count(*) FROM ord a JOIN ord b ON b.grp = a.grp GROUP BY a.grp ORDER BY 1",
        "SELECT count(*), (SELECT count(*) FROM f) FROM ord",
    ]);
}

// Fails on the guard of b13b25b: bare columns in correlated subqueries, and of another
// table than the grouped one, are accepted; SQLite
// takes their value from a row the plan picks (`SELECT count(*), (SELECT ord.name) FROM
// ord` answers 'q' scanning the table, 'a' with `WHERE grp > 0` walking the index).
#[test]
fn bare_columns_in_subqueries_and_of_other_tables_are_refused() {
    let p = pair();
    let mut failures = Vec::new();
    for sql in [
        "SELECT count(*), (SELECT ord.name) FROM ord",
        "SELECT grp, (SELECT o.id FROM ord o WHERE o.name = ord.name) FROM ord GROUP BY grp",
        "SELECT b.name, count(*) FROM ord a JOIN ord b ON b.grp = a.grp GROUP BY a.name",
        "SELECT a.id, count(*) FROM ord a JOIN ord b ON b.grp = a.grp GROUP BY b.id",
    ] {
        match p.read(sql) {
            Err(e @ SqlError::Refused { .. }) if e.to_string().contains("next to an aggregate") => {
            }
            other => failures.push(format!("{sql:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn returning_rows_of_update_and_delete_come_in_key_order() {
    let mut p = pair();
    let natural = plain_query(&p.plain, "UPDATE tk SET v = v RETURNING k")
        .expect("plain")
        .1;
    assert_eq!(
        natural,
        vec![vec![text("c")], vec![text("a")], vec![text("b")]],
        "the test needs a table SQLite updates in another order than its key's"
    );
    let keys = vec![vec![text("a")], vec![text("b")], vec![text("c")]];
    for sql in [
        "UPDATE tk SET v = v + 1 RETURNING k",
        "UPDATE tk SET v = v + 1 WHERE v > 0 RETURNING k",
        "UPDATE tk AS x SET v = v + 1 RETURNING k",
        "DELETE FROM tk RETURNING k",
        "DELETE FROM tk WHERE k >= 'a' RETURNING k",
        "UPDATE tk SET v = (SELECT f.flags FROM f WHERE f.id = 1) RETURNING k",
    ] {
        let out = p.try_write(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let rows = out.rows.expect("returned rows");
        assert_eq!(rows.rows, keys, "{sql}");
        assert_eq!(rows.columns, vec!["k".to_owned()], "{sql}");
    }
    let out = p
        .try_write("UPDATE tk SET v = 0 RETURNING *")
        .expect("returning *");
    assert_eq!(
        out.rows.expect("rows").rows,
        vec![
            vec![text("a"), int(0)],
            vec![text("b"), int(0)],
            vec![text("c"), int(0)]
        ]
    );
    let out = p
        .try_write("DELETE FROM tk RETURNING v * 10, upper(k)")
        .expect("returning expressions");
    assert_eq!(
        out.rows.expect("rows").rows,
        vec![
            vec![int(20), text("A")],
            vec![int(30), text("B")],
            vec![int(10), text("C")]
        ]
    );
}

#[test]
fn the_rowid_and_sqlite_master_cannot_be_read() {
    let mut p = pair();
    let mut failures = Vec::new();
    for sql in [
        "SELECT rowid FROM tk",
        "SELECT ROWID FROM tk",
        "SELECT oid FROM tk",
        "SELECT _rowid_ FROM tk",
        "SELECT \"rowid\" FROM tk",
        "SELECT [rowid] FROM tk",
        "SELECT `oid` FROM tk",
        "SELECT tk.rowid FROM tk",
        "SELECT \"tk\".\"_ROWID_\" FROM tk",
        "SELECT x.rowid FROM tk AS x",
        "SELECT k FROM tk ORDER BY rowid",
        "SELECT k FROM tk WHERE rowid = 1",
        "SELECT count(rowid) FROM tk",
        "SELECT (SELECT rowid FROM tk WHERE k = 'a')",
        "SELECT * FROM (SELECT rowid AS r FROM tk)",
        "WITH c AS (SELECT oid FROM tk) SELECT * FROM c",
        "SELECT - -1, rowid FROM tk",
        "SELECT - -1, 'x\n', rowid FROM tk",
        "SELECT * FROM sqlite_master",
        "SELECT * FROM sqlite_schema",
        "SELECT * FROM SQLITE_MASTER",
        "SELECT * FROM \"sqlite_master\"",
        "SELECT * FROM [sqlite_schema]",
        "SELECT * FROM main.sqlite_master",
        "SELECT * FROM \"main\".sqlite_master",
        "SELECT * FROM temp.sqlite_master",
        "SELECT * FROM sqlite_temp_master",
        "SELECT * FROM sqlite_temp_schema",
        "SELECT * FROM app.sqlite_master",
        "SELECT * FROM sqlite_sequence",
        "SELECT * FROM sqlite_stat1",
        "SELECT * FROM pragma_table_list",
        "SELECT * FROM pragma_table_list()",
        "SELECT * FROM _dstorage_kv",
        "SELECT * FROM main._dstorage_kv",
        "SELECT * FROM \"app.ord\"",
        "SELECT name FROM ord WHERE name IN sqlite_master",
        "SELECT (SELECT name FROM sqlite_master)",
        "SELECT - -1 FROM sqlite_master",
        "SELECT - -1, 'x\n' FROM sqlite_master",
        "WITH s AS (SELECT * FROM sqlite_master) SELECT count(*) FROM s",
        "PRAGMA table_info('sqlite_master')",
        "PRAGMA table_info(sqlite_master)",
    ] {
        match p.read(sql) {
            Err(SqlError::Sqlite(e)) if !e.to_string().contains("no such") => {
                failures.push(format!("{sql:?}: SQLite error {e}"))
            }
            Err(_) => {}
            // A pragma on a name that is no table of the schema answers nothing.
            Ok(r) if sql.starts_with("PRAGMA") && r.rows.is_empty() => {}
            Ok(r) => failures.push(format!("{sql:?}: read {:?}", r.rows)),
        }
    }
    for sql in [
        "INSERT INTO tk(rowid, k, v) VALUES (9, 'z', 1)",
        "INSERT INTO tk(k, v) VALUES ('z', 1) RETURNING rowid",
        "UPDATE tk SET v = rowid",
        "UPDATE tk SET rowid = 9 WHERE k = 'a'",
        "UPDATE tk SET v = 1 RETURNING oid",
        "DELETE FROM tk WHERE _rowid_ = 1",
        "DELETE FROM tk RETURNING rowid",
        "INSERT INTO t SELECT 99, name FROM sqlite_master",
        "CREATE VIEW leak AS SELECT rowid AS r FROM tk",
        "CREATE INDEX tk_rowid ON tk(rowid)",
    ] {
        match p.try_write(sql) {
            Err(SqlError::Sqlite(e)) if !e.to_string().contains("no such") => {
                failures.push(format!("{sql:?}: SQLite error {e}"))
            }
            Err(_) => {}
            Ok(o) => failures.push(format!("{sql:?}: ran, {o:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // A view naming sqlite_master names the schema's own (absent) table of that name.
    p.write_both("CREATE VIEW leak AS SELECT name FROM sqlite_master");
    let err = p.read("SELECT * FROM leak").expect_err("leak");
    assert!(err.to_string().contains("no such table"), "{err}");
}

const RUNAWAY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)";

/// The cost limit of the runaway tests.
const RUNAWAY_LIMIT: u64 = 50_000;

/// Run `sql` in a block under [`RUNAWAY_LIMIT`]: it must fail with the cost limit, used
/// within `slack` steps of it (never aborting the block), and the block must go on: a
/// later write commits. Returns the steps used, or what went wrong.
fn stops_at_the_limit(sql: &str, slack: u64) -> Result<u64, String> {
    let limit = RUNAWAY_LIMIT;
    let (_dir, mut engine) = common::engine();
    commit_block(&mut engine, Some(SCHEMA), SCHEMA, SETUP);
    let mut block = engine.begin_block().expect("begin");
    let used = match block.execute(SCHEMA, sql, limit) {
        Err(SqlError::CostLimitExceeded { limit: l, used }) if l == limit => used,
        other => {
            return Err(format!(
                "{sql:?}: expected `cost limit exceeded`, got {other:?}"
            ))
        }
    };
    if used <= limit || used > limit + slack {
        return Err(format!("{sql:?}: used {used} of {limit}"));
    }
    block
        .execute(SCHEMA, "INSERT INTO t VALUES (1000, 'after')", LIMIT)
        .map_err(|e| format!("{sql:?}: the block cannot continue: {e}"))?;
    block
        .commit()
        .map_err(|e| format!("{sql:?}: the block does not commit: {e}"))?;
    let mut reader = engine.reader().expect("reader");
    let rows = reader
        .query(SCHEMA, "SELECT id, v FROM t", LIMIT)
        .expect("read")
        .rows;
    if rows != vec![vec![int(1000), text("after")]] {
        return Err(format!("{sql:?}: left {rows:?}"));
    }
    Ok(used)
}

/// Each of `sqls` stops at the limit within `slack`, using the same steps on two runs.
#[track_caller]
fn all_stop_at_the_limit(sqls: &[String], slack: u64) {
    let mut failures = Vec::new();
    for sql in sqls {
        match (
            stops_at_the_limit(sql, slack),
            stops_at_the_limit(sql, slack),
        ) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), Ok(b)) => failures.push(format!("{sql:?}: used {a}, then {b}")),
            (Err(e), _) | (_, Err(e)) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_top_level_recursive_cte_insert_is_metered_per_row() {
    all_stop_at_the_limit(
        &[format!("{RUNAWAY} INSERT INTO t SELECT x, 'r' FROM c")],
        PROGRESS_STEP,
    );
}

#[test]
fn a_recursive_cte_in_update_delete_and_joins_is_metered_per_row() {
    all_stop_at_the_limit(
        &[
            format!("{RUNAWAY} UPDATE t SET v = 'u' WHERE id IN (SELECT x FROM c)"),
            format!("{RUNAWAY} DELETE FROM t WHERE id IN (SELECT x FROM c)"),
            format!(
                "{RUNAWAY} UPDATE f SET flags = (SELECT c.x FROM c WHERE c.x % 2 = f.id LIMIT 1)"
            ),
            format!(
                "{RUNAWAY} INSERT INTO t SELECT c.x, o.name FROM c JOIN ord o ON o.id = c.x % 20"
            ),
            format!("{RUNAWAY} INSERT INTO t VALUES (1, (SELECT count(*) FROM c))"),
            format!("INSERT INTO t SELECT x, 'r' FROM ({RUNAWAY} SELECT x FROM c)"),
            format!(
                "{RUNAWAY} INSERT INTO t SELECT x, 'r' FROM c WHERE true ON CONFLICT DO NOTHING"
            ),
            "INSERT INTO t SELECT x, 'v' FROM forever".to_owned(),
            "WITH x AS (SELECT a.id FROM ord a, ord b, ord c, ord d, ord e, ord g, ord h, ord i) \
             INSERT INTO t SELECT NULL, 'x' FROM x"
                .to_owned(),
            "UPDATE f SET flags = (SELECT count(*) FROM ord a, ord b, ord c, ord d, ord e, ord g, ord h)"
                .to_owned(),
            format!(
                "INSERT INTO f VALUES (1, 0) ON CONFLICT(id) DO UPDATE SET flags = ({RUNAWAY} SELECT count(*) FROM c)"
            ),
        ],
        PROGRESS_STEP,
    );
    // Sorted, the write is failed at the first meter call after the progress handler saw
    // the budget passed: two progress steps past it. So is a CTE reading a view, whose
    // rows pass the view's meter and then the CTE's.
    all_stop_at_the_limit(
        &[
            format!("{RUNAWAY} INSERT INTO t SELECT x, 'r' FROM c ORDER BY x DESC LIMIT 5"),
            "WITH w AS (SELECT x FROM forever) INSERT INTO t SELECT x, 'v' FROM w".to_owned(),
            // The CTE of a subquery names its column in the meter call (it may be copied into
            // the outer query), one more step a row, so the check lands a progress step later.
            format!("INSERT INTO t VALUES (1, 'a') RETURNING ({RUNAWAY} SELECT count(*) FROM c)"),
        ],
        2 * PROGRESS_STEP,
    );
}

// Fails on the guard of b13b25b: a view's body is guarded as DDL, without the write meter.
// A write reading a runaway view (a flattened cross join, whose `WHERE dstorage_meter()`
// SQLite then evaluates in the outermost loop only; a recursive CTE materialized for IN) is
// not failed by the meter, runs to four times its budget, is interrupted, and SQLite rolls
// back the whole block: `BlockAborted`, and the app re-executes the block without it.
#[test]
fn a_runaway_hidden_in_a_view_is_metered_per_row_in_a_write() {
    all_stop_at_the_limit(
        &[
            "INSERT INTO t SELECT NULL, 'v' FROM big".to_owned(),
            "INSERT INTO t VALUES (1, (SELECT count(*) FROM big))".to_owned(),
            "UPDATE t SET v = 'v' WHERE id IN (SELECT x FROM forever)".to_owned(),
            "DELETE FROM t WHERE id IN (SELECT id FROM big)".to_owned(),
            "UPDATE f SET flags = 1 RETURNING (SELECT count(*) FROM big)".to_owned(),
            "DELETE FROM f WHERE EXISTS (SELECT 1 FROM forever WHERE x < 0)".to_owned(),
        ],
        2 * PROGRESS_STEP,
    );
}

/// Whether an error is of the expected kind.
type KindTest = fn(&SqlError) -> bool;

#[test]
fn non_strict_keyless_real_any_untyped_tables_and_triggers_are_refused() {
    let mut p = pair();
    let cases: &[(&str, KindTest, &str)] = &[
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x INTEGER)",
            |e| matches!(e, SqlError::TableDefinition { .. }),
            "STRICT",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x INTEGER) WITHOUT ROWID",
            |e| matches!(e, SqlError::TableDefinition { .. }),
            "STRICT",
        ),
        (
            "CREATE TABLE n(id INTEGER, x INTEGER) STRICT",
            |e| matches!(e, SqlError::TableDefinition { .. }),
            "PRIMARY KEY is required",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x REAL) STRICT",
            |e| matches!(e, SqlError::ColumnType { found, .. } if found == "REAL"),
            "column x has type REAL",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x FLOAT) STRICT",
            |e| matches!(e, SqlError::ColumnType { .. }),
            "FLOAT",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x NUMERIC) STRICT",
            |e| matches!(e, SqlError::ColumnType { .. }),
            "NUMERIC",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x DOUBLE PRECISION) STRICT",
            |e| matches!(e, SqlError::ColumnType { .. }),
            "DOUBLE",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x ANY) STRICT",
            |e| matches!(e, SqlError::ColumnType { found, .. } if found == "ANY"),
            "column x has type ANY",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x) STRICT",
            |e| matches!(e, SqlError::ColumnType { found, .. } if found == "no type"),
            "column x has type no type",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x VARCHAR(10)) STRICT",
            |e| matches!(e, SqlError::ColumnType { .. }),
            "VARCHAR",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x INTEGER(8)) STRICT",
            |e| matches!(e, SqlError::ColumnType { .. }),
            "without a size",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x \"REAL\") STRICT",
            |e| matches!(e, SqlError::ColumnType { .. }),
            "REAL",
        ),
        (
            "CREATE TABLE n(id INTEGER PRIMARY KEY, x INTEGER DEFAULT 1.5) STRICT",
            |e| matches!(e, SqlError::Refused { .. }),
            "REAL literal",
        ),
        (
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END",
            |e| matches!(e, SqlError::Refused { construct, .. } if construct == "CREATE TRIGGER"),
            "triggers are not supported",
        ),
        (
            "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END",
            |e| matches!(e, SqlError::Refused { .. }),
            "TRIGGER",
        ),
        (
            "CREATE VIRTUAL TABLE v USING fts5(x)",
            |e| matches!(e, SqlError::Refused { .. }),
            "virtual tables",
        ),
        (
            "CREATE TEMP TABLE n(id INTEGER PRIMARY KEY) STRICT",
            |e| matches!(e, SqlError::TableDefinition { .. }),
            "temporary",
        ),
    ];
    for (sql, kind, says) in cases {
        // The same verdict in a block and from the text alone (as CheckTx judges it).
        let in_block = p.try_write(sql).expect_err(sql);
        let by_text = p.engine.check(SCHEMA, sql).expect_err(sql);
        for e in [&in_block, &by_text] {
            assert!(kind(e), "{sql:?}: wrong kind {e:?}");
            assert!(e.to_string().contains(says), "{sql:?}: {e}");
        }
    }
    // Nothing was created.
    assert!(p.read("SELECT count(*) FROM n").is_err());
}

#[test]
fn a_nul_byte_ends_nothing() {
    let mut p = pair();
    for sql in [
        "SELECT 1\0; DROP TABLE ord",
        "SELECT id FROM ord\0 WHERE 0",
        "SELECT '\0' || name FROM ord",
        "DELETE FROM ord WHERE id = 3 \0 OR 1",
        "\0",
    ] {
        for e in [
            p.read(sql).expect_err(sql),
            p.try_write(sql).expect_err(sql),
            p.engine.check(SCHEMA, sql).expect_err(sql),
        ] {
            assert!(
                matches!(&e, SqlError::Refused { construct, reason }
                    if construct.contains("NUL") && reason.contains("NUL")),
                "{sql:?}: {e:?}"
            );
        }
    }
    assert_eq!(p.rows("SELECT count(*) FROM ord"), vec![vec![int(6)]]);
}

/// Statements written with one space between tokens, so spaces can be swapped for comments.
const SPACED: &[&str] = &[
    "SELECT - -1 , 0x10 , 1_000 , 'a' || 'b'",
    "SELECT id , name FROM ord WHERE grp = 1 ORDER BY name",
    "SELECT grp , count ( * ) FROM ord GROUP BY grp ORDER BY grp",
    "SELECT ( SELECT id FROM ord WHERE grp = 1 )",
    "SELECT group_concat ( id , ',' ORDER BY grp ) FROM ord",
    "WITH c AS MATERIALIZED ( SELECT id FROM ord ) SELECT count ( * ) FROM c",
    "SELECT count ( * ) FROM ord INDEXED BY ord_grp_name WHERE grp = 2",
    "SELECT a . id , b . name FROM ord AS a JOIN ord b ON b . id = a . id WHERE a . grp = 2",
    "SELECT id FROM ord WHERE name GLOB 'a*' OR grp << 1 = 4 ORDER BY id LIMIT 2",
    "SELECT k FROM tk WHERE v ISNULL OR v NOTNULL",
    "SELECT * FROM ( SELECT id , grp FROM ord ) WHERE grp = 1",
];

#[test]
fn comments_between_every_pair_of_tokens_do_not_change_the_result() {
    let p = pair();
    for sql in SPACED {
        let want = p.rows(sql);
        for comment in [
            " /* c */ ",
            "/**/",
            "/* ' */",
            "/* \" -- */",
            " -- c\n",
            " -- ' \n",
            "\n--\n",
            "\t/*\n*/\r\n",
        ] {
            let commented = sql.replace(' ', comment);
            let got = p
                .read(&commented)
                .unwrap_or_else(|e| panic!("{commented:?}: {e}"))
                .rows;
            assert_eq!(got, want, "{commented:?}");
        }
        // A trailing comment without a newline swallows nothing the guard adds.
        let trailing = format!("{sql} -- trailing");
        assert_eq!(p.rows(&trailing), want, "{trailing:?}");
        let trailing = format!("{sql} /* open");
        match p.read(&trailing) {
            Ok(r) => assert_eq!(r.rows, want, "{trailing:?}"),
            Err(e) => assert!(
                plain_query(&p.plain, &trailing).is_err(),
                "{trailing:?}: {e}"
            ),
        }
    }
}

/// Statements of every shape the guard rewrites, combined with name spellings and
/// comments: none may be refused because the rewrite would not tokenize as planned.
fn sample() -> Vec<String> {
    let tables = [
        "ord",
        "ORD",
        "\"ord\"",
        "[ord]",
        "`ord`",
        "app.ord",
        "\"app\".\"ord\"",
        "ord AS o",
        "ord o",
        "ord AS \"o\"",
        "ord INDEXED BY ord_grp_name",
        "ord NOT INDEXED",
        "ord/**/",
        "ord -- c\n",
    ];
    let shapes = [
        "SELECT * FROM {T}",
        "SELECT id, name FROM {T} WHERE grp = 1",
        "SELECT id FROM {T} LIMIT 2",
        "SELECT id FROM {T} ORDER BY grp LIMIT 2 OFFSET 1",
        "SELECT DISTINCT grp FROM {T}",
        "SELECT grp, count(*) FROM {T} GROUP BY grp HAVING count(*) > 1",
        "SELECT group_concat(name, ',' ORDER BY grp) FROM {T}",
        "SELECT (SELECT max(id) FROM {T})",
        "SELECT id FROM {T} WHERE id IN (SELECT id FROM {T} WHERE grp = 1 LIMIT 1)",
        "SELECT id FROM {T} WHERE EXISTS (SELECT 1 FROM f WHERE f.id = 1)",
        "SELECT id FROM {T} UNION SELECT id FROM f",
        "SELECT id FROM {T} UNION ALL SELECT id FROM f ORDER BY 1 DESC LIMIT 3",
        "WITH w AS (SELECT id FROM {T}) SELECT id FROM w",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r, {T}",
        "SELECT * FROM {T} JOIN f ON f.id = 1",
        "SELECT * FROM {T} LEFT JOIN f USING (id)",
        "SELECT * FROM (SELECT id FROM {T}) AS s",
        "SELECT - -1, 0x10, 1_000 FROM {T}",
        "INSERT INTO t SELECT id, name FROM {T}",
        "INSERT INTO t SELECT id, name FROM {T} WHERE true ON CONFLICT(id) DO UPDATE SET v = excluded.v",
        "UPDATE f SET flags = (SELECT 1 FROM {T} LIMIT 1) WHERE f.id = 1",
        "DELETE FROM t WHERE id IN (SELECT id FROM {T})",
        "INSERT INTO t VALUES (1, (SELECT name FROM {T} WHERE grp = 1)) RETURNING *",
    ];
    let mut out = Vec::new();
    for shape in shapes {
        for table in tables {
            out.push(shape.replace("{T}", table));
        }
    }
    for table in ["tk", "tk AS x", "\"tk\"", "app.tk"] {
        for shape in [
            "UPDATE {T} SET v = v + 1 RETURNING k",
            "UPDATE {T} SET v = v + 1 WHERE k > 'a' RETURNING *",
            "DELETE FROM {T} WHERE v > 1 RETURNING k, v",
            "UPDATE OR IGNORE {T} SET v = 0",
            "DELETE FROM {T}",
            "INSERT INTO {T} VALUES ('d', 4) ON CONFLICT DO NOTHING RETURNING k",
            "INSERT OR REPLACE INTO {T}(k, v) SELECT name, id FROM ord",
        ] {
            out.push(shape.replace("{T}", table));
        }
    }
    // Each again with comments for spaces, and with upper-case keywords turned lower.
    let spaced: Vec<String> = out.clone();
    for sql in spaced {
        out.push(sql.replace(' ', "/**/"));
        out.push(sql.replace(' ', "\n-- c\n"));
        out.push(sql.to_lowercase());
    }
    out
}

#[test]
fn every_rewrite_tokenizes_to_the_users_tokens_plus_additions() {
    let mut p = pair();
    let sample = sample();
    assert!(sample.len() > 1_000, "{}", sample.len());
    let mut refused_inexact = Vec::new();
    let mut other_errors = Vec::new();
    for sql in &sample {
        let lower = sql.to_ascii_lowercase();
        let read_only = lower.starts_with("select") || lower.starts_with("with");
        let result = if read_only {
            p.read(sql).map(|r| r.rows)
        } else {
            p.try_write(sql)
                .map(|o| o.rows.map(|r| r.rows).unwrap_or_default())
        };
        match result {
            Ok(rows) => {
                // Without LIMIT, whatever the order, the rows are SQLite's.
                // (group_concat and scalar subqueries are exempt: the guard orders their
                // input by key, SQLite by plan.)
                if read_only
                    && !lower.contains("limit")
                    && !lower.contains("group_concat")
                    && !lower.contains("(select")
                {
                    if let Ok((_, mut want)) = plain_query(&p.plain, sql) {
                        let mut got = rows;
                        got.sort_by_key(|r| format!("{r:?}"));
                        want.sort_by_key(|r| format!("{r:?}"));
                        assert_eq!(got, want, "{sql:?}");
                    }
                }
            }
            Err(e) if e.to_string().contains("could not rewrite it exactly") => {
                refused_inexact.push(sql.clone())
            }
            Err(e) => other_errors.push(format!("{sql:?}: {e}")),
        }
    }
    assert!(
        refused_inexact.is_empty(),
        "refused as inexact rewrites: {refused_inexact:#?}"
    );
    // Every statement of the sample is valid and deterministic: none is refused.
    assert!(other_errors.is_empty(), "{other_errors:#?}");
}

// Fails on the guard of b13b25b: SQLite names a result column by its text, and the guard's
// insertions inside that text (physical names, aliases, ORDER BY) show in the name, as a
// trailing comment SQLite keeps in the name is dropped.
#[test]
fn result_columns_are_named_as_sqlite_names_them() {
    let p = pair();
    let mut failures = Vec::new();
    for sql in [
        "SELECT 1_000, 0x10, - -1",
        "SELECT (SELECT id FROM ord WHERE grp = 1)",
        "SELECT EXISTS (SELECT 1 FROM ord)",
        "SELECT 2--1\n",
        "SELECT group_concat(id, ',' ORDER BY grp) FROM ord",
    ] {
        let want = plain_query(&p.plain, sql).expect("plain").0;
        match p.read(sql) {
            Ok(r) if r.columns == want => {}
            Ok(r) => failures.push(format!("{sql:?}: named {:?}, SQLite {want:?}", r.columns)),
            Err(e) => failures.push(format!("{sql:?}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Text at the edges of SQLite's tokenizer: where SQLite answers, the guarded engine gives
/// the same answer or a refusal naming a REAL; where SQLite fails, the guard fails too.
const TOKEN_EDGES: &[&str] = &[
    "SELECT 'a''b', \"id\" FROM ord WHERE id = 1",
    "SELECT [a]]b]",
    "SELECT `a``b` FROM (SELECT 1 AS `a``b`)",
    "SELECT x'0G'",
    "SELECT x'0'",
    "SELECT X'00ff'",
    "SELECT 1e",
    "SELECT 1e+",
    "SELECT 0x",
    "SELECT 1a",
    "SELECT 0x1g",
    "SELECT 0x1FFFFFFFFFFFFFFFF",
    "SELECT 00012, -00012",
    "SELECT 9223372036854775807, -9223372036854775808",
    "SELECT 9223372036854775808",
    "SELECT -9223372036854775809",
    "SELECT 99999999999999999999",
    "SELECT 1_000_000_000_000_000_000_000",
    "SELECT ?",
    "SELECT ?1, ?2",
    "SELECT :a",
    "SELECT @a",
    "SELECT $a",
    "SELECT $a::b(c)",
    "SELECT #1",
    "SELECT\u{a0}1",
    "SELECT\u{feff}1",
    "SELECT\u{2028}1",
    "SELECT\x0c1",
    "SELECT\x0b1",
    "SELECT 1 /* unterminated",
    "SELECT 1 -- c",
    "SELECT 1;",
    "SELECT 1; ",
    "SELECT 1;;",
    "SELECT 1; -- c",
    ";SELECT 1",
    "SELECT 'unterminated",
    "SELECT \"unterminated",
    "SELECT [unterminated",
    "SELECT 1 = = 1",
    "SELECT 1 == 1, 1 <> 2, 1 != 2",
    "SELECT 1 !< 2",
    "SELECT 1 |",
    "SELECT id FROM ord WHERE name = \"z\"",
    "SELECT key, replace, glob, rowid_ FROM (SELECT 1 AS key, 2 AS replace, 3 AS glob, 4 AS rowid_)",
    "SELECT - - - - - - - - - - 1",
    "SELECT ~ - + ~ 1",
    "SELECT 'a' COLLATE nocase",
    "SELECT 1 NOT NOT NULL",
    "SELECT NOT 1 IS NOT NULL",
    "SELECT 1 IS NOT NOT 1",
    "SELECT CASE WHEN 1 THEN 2 END END",
    "SELECT 1 BETWEEN 0 AND 2 AND 1",
    "SELECT 1 LIKE 1 ESCAPE 1",
    "SELECT 'é', 'é' = 'É', upper('é'), length('é'), hex('é')",
    "SELECT \"é\" FROM (SELECT 5 AS é)",
];

#[test]
fn literals_and_tokens_are_read_as_sqlite_reads_them() {
    let p = pair();
    let mut failures = Vec::new();
    for sql in TOKEN_EDGES {
        let plain = plain_query(&p.plain, sql);
        let guarded = p.read(sql);
        let plain_real = plain
            .as_ref()
            .is_ok_and(|(_, rows)| format!("{rows:?}").contains("REAL "));
        match (&plain, &guarded) {
            (Ok((_, want)), Ok(got)) if !plain_real && &got.rows == want => {}
            (Ok(_), Err(SqlError::Refused { .. } | SqlError::RealValue { .. })) if plain_real => {}
            (Err(_), Err(_)) => {}
            _ => failures.push(format!(
                "{sql:?}: SQLite {plain:?}, the guarded engine {guarded:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// Fails on the guard of b13b25b: an integer literal past i64 is a REAL to SQLite, but the
// guard reads it as an integer, so a write stores a float (as text in a TEXT column:
// '9.22337203685478e+18').
#[test]
fn integer_literals_too_big_for_64_bits_are_refused_as_real() {
    let mut p = pair();
    let mut failures = Vec::new();
    for sql in [
        "INSERT INTO t VALUES (1, 9223372036854775808)",
        "INSERT INTO t VALUES (1, -9223372036854775809)",
        "INSERT INTO t VALUES (1, 1_000_000_000_000_000_000_000)",
        "INSERT INTO t VALUES (1, 99999999999999999999)",
    ] {
        match p.try_write(sql) {
            Err(SqlError::Refused { .. }) => {}
            other => failures.push(format!("{sql:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn cte_names_shadow_tables_where_sqlite_says_they_do() {
    let p = pair();
    p.all_same(&[
        "WITH ord AS (SELECT 99 AS id) SELECT id FROM ord",
        "SELECT (WITH ord AS (SELECT 99 AS id) SELECT id FROM ord), (SELECT id FROM ord WHERE id = 1)",
        "WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS x FROM a) SELECT x FROM b",
        "WITH a AS (SELECT id FROM ord WHERE grp = 3) SELECT a.id, q.id FROM a, (WITH a AS (SELECT 7 AS id) SELECT id FROM a) AS q",
        "WITH f AS (SELECT 5 AS id) SELECT count(*) FROM ord WHERE id IN f",
        "WITH f AS (SELECT 5 AS id) SELECT count(*) FROM ord WHERE id IN (SELECT id FROM f)",
        "SELECT (1, 2) = (1, 2), (SELECT 1, 2) = (1, 2), (1, 2) < (1, 3)",
        "SELECT id FROM ord WHERE (grp, name) = (1, 'm')",
    ]);
    // A CTE that names itself without RECURSIVE: SQLite refuses it, so does the engine.
    let sql = "WITH ord(id) AS (SELECT id FROM ord WHERE grp = 3) SELECT id FROM ord";
    assert_eq!(
        plain_query(&p.plain, sql).is_ok(),
        p.read(sql).is_ok(),
        "{sql}"
    );
}

// Fails on the guard of b13b25b: when several rows of an UPDATE's FROM match one target
// row, SQLite writes one of them chosen by the plan ("arbitrary", its documentation
// says): `flags` becomes 19 scanning the table and 3 walking the (grp, name) index.
#[test]
fn an_update_from_several_matching_rows_writes_what_the_key_decides() {
    let mut p = pair();
    let mut answers = Vec::new();
    for sql in [
        "UPDATE f SET flags = o.id FROM ord o WHERE o.grp = f.id RETURNING id, flags",
        "UPDATE f SET flags = o.id FROM ord o NOT INDEXED WHERE o.grp = f.id RETURNING id, flags",
        "UPDATE f SET flags = o.id FROM ord o INDEXED BY ord_grp_name WHERE o.grp = f.id RETURNING id, flags",
    ] {
        answers.push((
            sql,
            p.try_write(sql)
                .map(|o| o.rows.map(|r| r.rows))
                .map_err(|e| e.to_string()),
        ));
    }
    let refused = answers.iter().all(|(_, a)| a.is_err());
    let same = answers.windows(2).all(|w| w[0].1 == w[1].1);
    assert!(refused || same, "{answers:#?}");
}

#[test]
fn the_old_comment_trick_cannot_smuggle_a_table_definition() {
    let mut p = pair();
    // Printed back as `--1`, the rest of the first line was a comment and the second line
    // of the string ran as SQL: a second, REAL, table. Read as SQLite reads it, the second
    // line is the default text of column y.
    let sql =
        "CREATE TABLE n(id INTEGER PRIMARY KEY, x INTEGER DEFAULT (- -1), y TEXT DEFAULT 'a\n\
               ) ; CREATE TABLE evil(x REAL); --') STRICT";
    p.write_both(sql);
    let mut block = p.engine.begin_block().expect("begin");
    block
        .execute(SCHEMA, "INSERT INTO n(id) VALUES (1)", LIMIT)
        .expect("insert");
    block.commit().expect("commit");
    assert_eq!(
        p.rows("SELECT id, x, y FROM n"),
        vec![vec![
            int(1),
            int(1),
            text("a\n) ; CREATE TABLE evil(x REAL); --")
        ]]
    );
    let tables: Vec<String> = p
        .engine
        .schemas()
        .expect("schemas")
        .into_iter()
        .flat_map(|s| s.tables.into_iter().map(|t| t.name))
        .collect();
    assert!(tables.iter().any(|t| t == "n"), "{tables:?}");
    assert!(!tables.iter().any(|t| t.contains("evil")), "{tables:?}");
    let strict: i64 = p
        .engine
        .connection()
        .query_row(
            "SELECT strict FROM pragma_table_list WHERE name = 'app.n'",
            [],
            |r| r.get(0),
        )
        .expect("table_list");
    assert_eq!(strict, 1);
}

#[test]
fn window_functions_and_unordered_aggregates_are_refused_however_spelled() {
    let p = pair();
    let mut failures = Vec::new();
    for sql in [
        "SELECT - -1, sum(id) OVER () FROM ord",
        "SELECT sum(id) OVER w FROM ord WINDOW w AS (ORDER BY id)",
        "SELECT sum(id) FILTER (WHERE id > 1) OVER () FROM ord",
        "SELECT count(*) OVER (PARTITION BY grp) FROM ord",
        "SELECT row_number() OVER (ORDER BY id) FROM ord",
        "SELECT \"sum\"(id) OVER () FROM ord",
        "SELECT GROUP_CONCAT(id) FROM ord",
        "SELECT \"group_concat\"(id) FROM ord",
        "SELECT [group_concat](id, ',') FROM ord",
        "SELECT group_concat(DISTINCT name) FROM ord",
        "SELECT group_concat(id) FILTER (WHERE id > 1) FROM ord",
        "SELECT name, \"max\"(id) FROM ord",
        "SELECT name, [count](*) FROM ord",
        "SELECT - -1, 'x\n', group_concat(name) FROM ord",
    ] {
        match p.read(sql) {
            Err(SqlError::Refused { .. }) => {}
            other => failures.push(format!("{sql:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// Fails on the guard of b13b25b: values equal under a collation (NOCASE, RTRIM) but
// different in bytes tie, and SQLite keeps or orders first whichever the plan meets first:
// DISTINCT, GROUP BY and UNION answer 'A' walking the (s, r) index and 'a' scanning the
// table, and the positional ORDER BY the guard adds over a subquery ties them too. The
// same statement must answer the same whatever the plan.
#[test]
fn values_equal_under_a_collation_do_not_let_the_plan_choose() {
    // Regression: with a NOCASE column holding 'a' and 'A', DISTINCT, GROUP BY, UNION and
    // the positional default order answered 'A' through the index and 'a' without it.
    // Where SQLite picks one of several equal values, a non-BINARY collation is refused;
    // where it only compares or orders (the guard breaks ties by key), it stays.
    let mut p = pair();
    let mut block = p.engine.begin_block().expect("begin");
    let err = block
        .execute(
            SCHEMA,
            "CREATE TABLE cn(id INTEGER PRIMARY KEY, s TEXT COLLATE NOCASE NOT NULL) STRICT",
            LIMIT,
        )
        .expect_err("a NOCASE column");
    assert!(
        err.to_string().contains("COLLATE NOCASE is not allowed"),
        "{err}"
    );
    block.discard().expect("discard");
    for sql in [
        "SELECT DISTINCT name COLLATE NOCASE FROM ord",
        "SELECT name COLLATE NOCASE AS n, count(*) FROM ord GROUP BY n",
        "SELECT count(*) FROM ord GROUP BY name COLLATE RTRIM",
        "SELECT name COLLATE NOCASE FROM ord UNION SELECT 'B'",
        "SELECT min(name COLLATE NOCASE) FROM ord",
        "SELECT group_concat(DISTINCT name COLLATE NOCASE) FROM ord",
    ] {
        let err = p.read(sql).expect_err(sql).to_string();
        assert!(
            err.contains("COLLATE") && err.contains("is not allowed"),
            "{sql}: {err}"
        );
    }
    for sql in [
        "SELECT id FROM ord WHERE name = 'Z' COLLATE NOCASE",
        "SELECT id FROM ord ORDER BY name COLLATE NOCASE",
        "SELECT 'A' = 'a' COLLATE NOCASE",
    ] {
        assert_eq!(p.rows(sql), p.plain_rows(sql), "{sql}");
    }
}

/// Writes of every form SQLite accepts; each runs on both databases in turn.
const WRITES: &[&str] = &[
    "REPLACE INTO t VALUES (1, 'x')",
    "INSERT INTO t DEFAULT VALUES",
    "INSERT INTO t SELECT id, name FROM ord ON CONFLICT DO NOTHING",
    "INSERT INTO t SELECT id + 100, name FROM ord WHERE true ON CONFLICT DO NOTHING",
    "INSERT INTO t VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET v = 'b' ON CONFLICT DO NOTHING",
    "INSERT INTO t VALUES (1, 'a'), (1, 'b') ON CONFLICT DO UPDATE SET v = excluded.v || v",
    "INSERT OR IGNORE INTO t SELECT id, 'ignored' FROM ord",
    "UPDATE OR REPLACE f SET id = 2 WHERE id = 1",
    "UPDATE f SET (id, flags) = (10, 10) WHERE id = 2",
    "UPDATE f SET flags = 7 WHERE id IN (1, 2, 10)",
    "INSERT INTO f VALUES (3, - -3), (4, 0x7FFFFFFFFFFFFFFF), (5, 1_0), (6, -0x10)",
    "UPDATE f SET flags = flags << 2 | 0x1 WHERE id < 0x6",
    "UPDATE f SET flags = ~flags WHERE flags GLOB '*1' OR flags NOT GLOB '?'",
    "DELETE FROM f WHERE id = 0x03",
    "INSERT INTO t VALUES (9, 'a -- b'), (10, 'c /* d */'), (11, 'x\n--y'), (12, - -12)",
    "WITH c(x) AS (VALUES (20), (21)) INSERT INTO t SELECT x, 'c' FROM c",
    "WITH c(x) AS MATERIALIZED (SELECT 22) INSERT INTO t SELECT x, 'm' FROM c",
    "INSERT INTO t VALUES (30, 'a'); DELETE FROM t WHERE id = 30; INSERT INTO t VALUES (30, 'b')",
    "UPDATE t SET v = 'or' WHERE id = 9 OR id = 10 -- c\n",
    "DELETE FROM t WHERE id = 11 OR id = 12 /* c */ RETURNING id",
    "UPDATE t SET v = 'nested' WHERE (id = 20 OR id = 21) AND NOT id = 21 OR id IN (SELECT 22)",
    "DELETE FROM t WHERE v ISNULL",
    "UPDATE t SET v = v || '!' WHERE v NOTNULL AND id >> 1 = 10",
    "UPDATE t INDEXED BY sqlite_autoindex_t_1 SET v = 'no such index'",
    "INSERT INTO tk VALUES ('z', 1) RETURNING k, v",
    "DELETE FROM tk WHERE k IS 'z'",
    "INSERT INTO t VALUES (40, 'x') RETURNING - -id, 0x10, 1_000",
    "INSERT INTO t VALUES (41, 'y');",
    "INSERT INTO t VALUES (42, 'z') /* trailing",
    "INSERT INTO t VALUES (43, 'w') -- trailing",
];

#[test]
fn writes_change_the_rows_sqlite_changes() {
    let mut p = pair();
    let mut failures = Vec::new();
    let mut ran = 0;
    for sql in WRITES {
        let mut block = p.engine.begin_block().expect("begin");
        let guarded = block.execute(SCHEMA, sql, LIMIT);
        block.commit().expect("commit");
        let plain = if sql.contains("RETURNING") {
            plain_query(&p.plain, sql).map(|(_, rows)| Some(rows))
        } else {
            p.plain.execute_batch(sql).map(|()| None)
        };
        match (&guarded, &plain) {
            (Ok(g), Ok(rows)) if g.rows.as_ref().map(|r| &r.rows) == rows.as_ref() => ran += 1,
            (Err(_), Err(_)) => {}
            _ => failures.push(format!(
                "{sql:?}: the guarded engine {guarded:?}, SQLite {plain:?}"
            )),
        }
        for table in ["t", "f", "tk"] {
            let q = format!("SELECT * FROM {table} ORDER BY 1");
            if p.rows(&q) != p.plain_rows(&q) {
                failures.push(format!("after {sql:?}: {table} differs"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Only the two statements SQLite itself refuses failed.
    assert_eq!(ran, WRITES.len() - 2);
}
