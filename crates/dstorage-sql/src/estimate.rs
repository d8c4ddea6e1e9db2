//! Cost estimates before execution, from EXPLAIN QUERY PLAN and per-table row counts.
//!
//! The model is deliberately simple (see docs/sql.md for how close it comes): a full scan
//! costs a few VM steps per row and column, an index or key lookup a small constant, nested
//! loops multiply, sorting adds per output row, and each written row adds a write cost.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::authorizer::{Authorizer, Mode};
use crate::engine::EngineConfig;
use crate::guard::{self, Catalog};
use crate::names::validate_schema_name;
use crate::SqlError;

/// A predicted cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// Predicted VM steps.
    pub cost: u64,
    /// The plan lines the prediction was read from, one per EXPLAIN QUERY PLAN row.
    pub plan: Vec<String>,
    /// False when the plan holds a construct whose cost cannot be bounded beforehand
    /// (a recursive CTE); `cost` is then a lower bound.
    pub bounded: bool,
}

/// Fixed cost of running any statement.
const STATEMENT_BASE: u64 = 8;
/// Steps per row visited by a full scan, plus one per column of the table.
const SCAN_PER_ROW: u64 = 2;
/// Steps of one key or index lookup.
const LOOKUP: u64 = 12;
/// Steps per row sorted through a temporary b-tree.
const SORT_PER_ROW: u64 = 6;
/// Steps per row written, plus two per column.
const WRITE_PER_ROW: u64 = 4;

struct Catalogue<'a> {
    conn: &'a Connection,
}

impl Catalog for Catalogue<'_> {
    fn primary_key(&self, physical: &str) -> Option<Vec<String>> {
        crate::engine::primary_key_columns(self.conn, physical)
    }
    fn first_column(&self, physical: &str) -> Option<String> {
        crate::engine::first_column(self.conn, physical)
    }
    fn column_count(
        &self,
        sql: &str,
        _ctes: &std::collections::BTreeSet<String>,
    ) -> Result<usize, SqlError> {
        Ok(self.conn.prepare(sql)?.column_count())
    }
}

#[derive(Clone, Copy)]
struct TableStats {
    rows: u64,
    columns: u64,
}

fn column_count(conn: &Connection, physical: &str) -> u64 {
    let columns = conn
        .prepare_cached("SELECT count(*) FROM pragma_table_info(?1)")
        .and_then(|mut s| s.query_row([physical], |r| r.get::<_, i64>(0)))
        .unwrap_or(0);
    u64::try_from(columns).unwrap_or(0)
}

/// Row count and width of a table the plan reads. Counting walks the table's b-tree, so it
/// is done only for tables the plan scans or searches, never for a table only written.
fn table_stats(conn: &Connection, physical: &str) -> TableStats {
    let columns = column_count(conn, physical);
    let rows = conn
        .prepare(&format!(
            "SELECT count(*) FROM \"{}\"",
            physical.replace('"', "\"\"")
        ))
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .unwrap_or(0);
    TableStats {
        rows: u64::try_from(rows).unwrap_or(0),
        columns,
    }
}

/// Aliases (and physical names) of the tables a rewritten statement reads, and the number
/// of VALUES rows it inserts.
struct Tables {
    by_name: BTreeMap<String, String>,
    values_rows: u64,
    written: Option<String>,
}

fn index_is_unique(conn: &Connection, index: &str) -> bool {
    conn.prepare_cached(
        "SELECT il.\"unique\" FROM sqlite_schema s, pragma_index_list(s.tbl_name) il \
         WHERE s.type = 'index' AND s.name = ?1 AND il.name = ?1",
    )
    .and_then(|mut st| st.query_row([index], |r| r.get::<_, bool>(0)))
    .unwrap_or(false)
}

/// Estimate `sql` in `schema` on the state `conn` sees.
pub(crate) fn estimate(
    conn: &Connection,
    auth: &Authorizer,
    schema: &str,
    sql: &str,
    config: &EngineConfig,
) -> Result<Estimate, SqlError> {
    if sql.len() > config.max_sql_length {
        return Err(SqlError::Refused {
            construct: format!("SQL of {} bytes", sql.len()),
            reason: format!("the limit is {} bytes", config.max_sql_length),
        });
    }
    validate_schema_name(schema)?;
    let parsed = guard::parse(sql)?;
    let mut total = Estimate {
        cost: 0,
        plan: Vec::new(),
        bounded: true,
    };
    for index in 0..parsed.statements.len() {
        let rewritten = guard::rewrite(sql, &parsed, index, schema, false, &Catalogue { conn })?;
        let mut by_name = rewritten.aliases.clone();
        for t in &rewritten.tables {
            by_name.insert(t.clone(), t.clone());
        }
        let tables = Tables {
            by_name,
            values_rows: rewritten.values_rows,
            written: rewritten.written.clone(),
        };
        let est = estimate_one(conn, auth, schema, &rewritten, &tables)?;
        total.cost = total.cost.saturating_add(est.cost);
        total.plan.extend(est.plan);
        total.bounded &= est.bounded;
    }
    Ok(total)
}

fn estimate_one(
    conn: &Connection,
    auth: &Authorizer,
    schema: &str,
    rewritten: &guard::Rewritten,
    tables: &Tables,
) -> Result<Estimate, SqlError> {
    let sql = &rewritten.sql;
    // Prepare under the user's guard so an estimate refuses what execution would refuse.
    auth.set_mode(Mode::Write {
        schema: schema.into(),
        ctes: rewritten.ctes.clone(),
    });
    let plan: Result<Vec<(i64, i64, String)>, rusqlite::Error> = (|| {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        // Placeholders stay unbound (NULL): the plan does not depend on their values.
        let mut rows = stmt.raw_query();
        let mut plan = Vec::new();
        while let Some(r) = rows.next()? {
            plan.push((r.get(0)?, r.get(1)?, r.get(3)?));
        }
        Ok(plan)
    })();
    let denial = auth.take_denial();
    auth.set_mode(Mode::Internal);
    let plan = match (plan, denial) {
        (_, Some(d)) => return Err(d),
        (Err(e), None) => return Err(SqlError::Sqlite(e)),
        (Ok(p), None) => p,
    };

    let mut stats: BTreeMap<String, TableStats> = BTreeMap::new();
    let mut stats_of = |name: &str| -> TableStats {
        let physical = tables
            .by_name
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned());
        *stats
            .entry(physical.clone())
            .or_insert_with(|| table_stats(conn, &physical))
    };

    // Loops under the same parent nest in plan order: each runs once per row of the ones
    // before it.
    let mut cost = STATEMENT_BASE;
    let mut bounded = true;
    let mut multiplier_by_parent: BTreeMap<i64, u64> = BTreeMap::new();
    let mut out_rows: u64 = 1;
    for (id, parent, detail) in &plan {
        let mult = *multiplier_by_parent.get(parent).unwrap_or(&1);
        let words: Vec<&str> = detail.split_whitespace().collect();
        match words.as_slice() {
            ["SCAN", "CONSTANT", "ROW", ..] => {}
            ["SCAN", name, rest @ ..] => {
                let s = stats_of(name);
                let covering = rest.contains(&"COVERING");
                let per_row = SCAN_PER_ROW + if covering { 1 } else { s.columns };
                cost = cost.saturating_add(mult.saturating_mul(s.rows.saturating_mul(per_row)));
                let next = mult.saturating_mul(s.rows.max(1));
                multiplier_by_parent.insert(*parent, next);
                out_rows = next;
            }
            ["SEARCH", name, rest @ ..] => {
                let s = stats_of(name);
                let bounds = rest
                    .iter()
                    .filter(|w| w.contains('<') || w.contains('>'))
                    .count();
                let unique = rest
                    .windows(2)
                    .any(|w| matches!(w, ["INTEGER", "PRIMARY"] | ["PRIMARY", "KEY"]))
                    || rest
                        .iter()
                        .position(|w| *w == "INDEX")
                        .and_then(|i| rest.get(i + 1))
                        .is_some_and(|index| index_is_unique(conn, index));
                // Row guesses without statistics: a unique equality finds one row, a
                // non-unique one about N/64, one range bound keeps a quarter, two a tenth.
                let rows = match (bounds, unique) {
                    (0, true) => 1,
                    (0, false) => (s.rows / 64).max(1),
                    (1, _) => (s.rows / 4).max(1),
                    _ => (s.rows / 10).max(1),
                };
                let per = LOOKUP + rows.saturating_mul(SCAN_PER_ROW + s.columns);
                cost = cost.saturating_add(mult.saturating_mul(per));
                let next = mult.saturating_mul(rows);
                multiplier_by_parent.insert(*parent, next);
                out_rows = next;
            }
            ["USE", "TEMP", "B-TREE", ..] => {
                cost = cost.saturating_add(out_rows.saturating_mul(SORT_PER_ROW));
            }
            ["SETUP"] | ["RECURSIVE", "STEP"] => bounded = false,
            _ => {}
        }
        let _ = id;
    }
    if plan.iter().any(|(_, _, d)| d.contains("RECURSIVE")) {
        bounded = false;
    }
    if let Some(w) = &tables.written {
        let physical = tables.by_name.get(w).cloned().unwrap_or_else(|| w.clone());
        let columns = match stats.get(&physical) {
            Some(s) => s.columns,
            None => column_count(conn, &physical),
        };
        let written = if tables.values_rows > 0 {
            tables.values_rows
        } else if plan.is_empty() {
            1
        } else {
            out_rows
        };
        cost = cost.saturating_add(written.saturating_mul(WRITE_PER_ROW + 2 * columns));
    }
    Ok(Estimate {
        cost,
        plan: plan.into_iter().map(|(_, _, d)| d).collect(),
        bounded,
    })
}
