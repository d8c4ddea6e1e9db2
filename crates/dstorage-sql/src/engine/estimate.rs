//! Cost estimates before execution.
//!
//! A statement that only reads is estimated by running it, metered, on the state the
//! estimate is for, within a small budget shared by the call's statements
//! ([`RUN_BUDGET`]): its estimate is then its exact cost. A write is priced by counting
//! the rows it changes the same way. Everything else (VALUES inserts, reads past the
//! budget, statements with placeholders) is priced from EXPLAIN QUERY PLAN and per-table
//! row counts by a deliberately simple model (see docs/sql.md for how close it comes): a
//! full scan costs a few VM steps per row and column, an index or key lookup a small
//! constant, nested loops multiply, sorting adds per output row, and each written row adds
//! a write cost and the charge for the bytes of its values.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::authorizer::{Authorizer, Mode};
use crate::engine::{run_guarded, Budget, EngineConfig, StepOutcome};
use crate::guard::{self, Catalog, Kind};
use crate::meter::{Meter, BYTES_PER_STEP, VALUE_OVERHEAD};
use crate::names::validate_schema_name;
use crate::syntax::ast::{Body, Core, QualName};
use crate::syntax::Parsed;
use crate::SqlError;

/// A predicted cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// Predicted cost (VM steps plus the byte charge).
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
/// The byte charge of one value without TEXT or BLOB bytes (`meter::VALUE_OVERHEAD` at
/// `meter::BYTES_PER_STEP`).
const VALUE_CHARGE: u64 = VALUE_OVERHEAD / BYTES_PER_STEP;
/// Steps per column of each row an `INSERT ... SELECT` writes, besides the write itself:
/// its source rows are read, sorted (the ORDER BY the guard adds, `SORT_PER_ROW` a row),
/// read back and built into records, each column a step or two and its bytes moved
/// several times (docs/sql.md, "Cost").
const INSERT_SELECT_PER_COLUMN: u64 = 4;
/// How often the TEXT and BLOB bytes of an inserted literal are charged: once as a value
/// the change log records, and as moved by SQLite's VM at least twice more (in the record
/// it builds, and in the record it writes into the table).
const LITERAL_BYTES_CHARGED: u64 = 3;

/// The VM steps one `estimate` call may spend running its statements that only read (and
/// the row counts of its writes). Small against the default per-transaction limit, so an
/// estimate (which the mempool asks for every transaction, and anyone through the API)
/// costs at most a small part of what running the transaction would.
pub const RUN_BUDGET: u64 = 1_000_000;

/// Rows counted at most per table for the model: counting walks the table, unmetered.
const STATS_ROW_CAP: u64 = RUN_BUDGET;

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
    fn table_width(&self, physical: &str) -> Option<usize> {
        crate::engine::table_width(self.conn, physical)
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

/// Row count (up to [`STATS_ROW_CAP`]) and width of a table the plan reads. Counting
/// walks the table's b-tree, so it is done only when the model prices a plan that scans
/// or searches the table, once per table and call, never for a table only written.
fn table_stats(conn: &Connection, physical: &str) -> TableStats {
    let columns = column_count(conn, physical);
    let rows = conn
        .prepare(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM \"{}\" LIMIT {STATS_ROW_CAP})",
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
    /// Values the change log records per written column: 2 for an update (old and new),
    /// else 1.
    logged_per_column: u64,
}

fn index_is_unique(conn: &Connection, index: &str) -> bool {
    conn.prepare_cached(
        "SELECT il.\"unique\" FROM sqlite_schema s, pragma_index_list(s.tbl_name) il \
         WHERE s.type = 'index' AND s.name = ?1 AND il.name = ?1",
    )
    .and_then(|mut st| st.query_row([index], |r| r.get::<_, bool>(0)))
    .unwrap_or(false)
}

/// The modelled cost of writing one row of the table a statement writes, if it writes:
/// the write itself and the charge for the values the change log records.
fn write_row_cost(
    conn: &Connection,
    tables: &Tables,
    stats: &BTreeMap<String, TableStats>,
) -> Option<u64> {
    let w = tables.written.as_ref()?;
    let physical = tables.by_name.get(w).cloned().unwrap_or_else(|| w.clone());
    let columns = match stats.get(&physical) {
        Some(s) => s.columns,
        None => column_count(conn, &physical),
    };
    Some(
        WRITE_PER_ROW
            .saturating_add(2 * columns)
            .saturating_add(tables.logged_per_column * columns * VALUE_CHARGE),
    )
}

/// What one row of an `INSERT ... SELECT` costs besides writing it: sorting its source row
/// and moving its columns (`INSERT_SELECT_PER_COLUMN`).
fn insert_select_row_cost(conn: &Connection, tables: &Tables) -> u64 {
    let Some(w) = tables.written.as_ref() else {
        return 0;
    };
    let physical = tables.by_name.get(w).cloned().unwrap_or_else(|| w.clone());
    SORT_PER_ROW.saturating_add(INSERT_SELECT_PER_COLUMN * column_count(conn, &physical))
}

/// A query counting the rows statement `index` of `parsed` changes, in the user's own
/// words (the same target and WHERE, or the same source query), or None for a write
/// without a simple one (VALUES, a leading WITH, UPDATE ... FROM).
fn write_probe(sql: &str, parsed: &Parsed, index: usize) -> Option<String> {
    let toks = &parsed.tokens;
    let text = |first: usize, last: usize| -> Option<&str> {
        sql.get(toks.get(first)?.start..toks.get(last)?.end)
    };
    let target = |table: &QualName, last: usize, where_: Option<(usize, usize)>| {
        let filter = match where_ {
            Some((a, b)) => format!(" WHERE {}", text(a, b)?),
            None => String::new(),
        };
        Some(format!(
            "SELECT count(*) FROM {}{filter}",
            text(table.first(), last)?
        ))
    };
    match &parsed.statements[index].body {
        Body::Update(u) if u.with.is_none() && u.from.is_none() => {
            let last = [
                Some(u.table.last()),
                u.alias.as_ref().map(|a| a.tok),
                u.indexed_by.as_ref().map(|i| i.tok),
            ];
            let last = last.into_iter().flatten().max()?;
            target(
                &u.table,
                last,
                u.where_.as_ref().map(|(_, e)| (e.first, e.last)),
            )
        }
        Body::Delete(d) if d.with.is_none() => {
            let last = [
                Some(d.table.last()),
                d.alias.as_ref().map(|a| a.tok),
                d.indexed_by.as_ref().map(|i| i.tok),
            ];
            let last = last.into_iter().flatten().max()?;
            target(
                &d.table,
                last,
                d.where_.as_ref().map(|(_, e)| (e.first, e.last)),
            )
        }
        Body::Insert(ins) if ins.with.is_none() => {
            let src = ins.source.as_ref()?;
            if src.cores.iter().any(|c| matches!(c, Core::Values { .. })) {
                return None;
            }
            Some(format!(
                "SELECT count(*) FROM ({})",
                text(src.first, src.last)?
            ))
        }
        _ => None,
    }
}

/// Run the rewritten read for an estimate, metered within `budget`, which it reduces by
/// what it spent (to 0 past it). `Ok(None)` if it could not run (placeholders, which stay
/// unbound here, or an error the statement will meet when it runs); `Err(spent)` if it
/// passed the budget.
fn run_read(
    conn: &Connection,
    auth: &Authorizer,
    meter: &Meter,
    schema: &str,
    rewritten: &guard::Rewritten,
    budget: &mut u64,
) -> Result<Option<StepOutcome>, u64> {
    if *budget == 0 {
        return Ok(None);
    }
    // The comment keeps this statement apart from the same text prepared for a query in
    // the connection's statement cache (it is authorized differently).
    let run = run_guarded(
        conn,
        auth,
        meter,
        Mode::Write {
            schema: schema.into(),
            ctes: rewritten.ctes.clone(),
        },
        &format!("/* estimate */ {}", rewritten.sql),
        &[],
        Budget {
            used: 0,
            limit: *budget,
            // The budget charges a step per 8 bytes of values, so it bounds the rows held.
            result_bytes: budget.saturating_mul(crate::meter::BYTES_PER_STEP),
        },
    );
    match run {
        Ok(step) => {
            *budget -= step.cost.min(*budget);
            Ok(Some(step))
        }
        Err(SqlError::CostLimitExceeded { used, .. }) => {
            *budget = 0;
            Err(used)
        }
        Err(_) => Ok(None),
    }
}

/// Estimate `sql` in `schema` on the state `conn` sees, running its reads under `meter`.
pub(crate) fn estimate(
    conn: &Connection,
    auth: &Authorizer,
    meter: &Meter,
    schema: &str,
    sql: &str,
    config: &EngineConfig,
) -> Result<Estimate, SqlError> {
    config.check_sql_length(sql)?;
    validate_schema_name(schema)?;
    let parsed = guard::parse(sql)?;
    let mut total = Estimate {
        cost: 0,
        plan: Vec::new(),
        bounded: true,
    };
    let mut run_budget = RUN_BUDGET.min(config.cost_limit_per_tx);
    // Row counts of the tables the statements read, counted once per call.
    let mut stats = BTreeMap::new();
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
            logged_per_column: if matches!(parsed.statements[index].body, Body::Update(_)) {
                2
            } else {
                1
            },
        };
        let plan = plan_of(conn, auth, schema, &rewritten)?;
        let mut priced = None;
        if rewritten.kind == Kind::Query {
            match run_read(conn, auth, meter, schema, &rewritten, &mut run_budget) {
                // Ran to the end: exact, even for a recursive CTE.
                Ok(Some(step)) => priced = Some((step.cost, true)),
                Ok(None) => {}
                Err(used) => {
                    let (cost, bounded) = price(conn, &rewritten.sql, &plan, &tables, &mut stats);
                    priced = Some((cost.max(used), bounded));
                }
            }
        } else if let Some(probe) = write_probe(sql, &parsed, index) {
            // Count the rows the write changes, then price writing them.
            let probe = guard::parse(&probe).ok().and_then(|p| {
                guard::rewrite(&probe, &p, 0, schema, false, &Catalogue { conn }).ok()
            });
            let per_row = write_row_cost(conn, &tables, &stats).map(|cost| {
                match &parsed.statements[index].body {
                    Body::Insert(_) => cost.saturating_add(insert_select_row_cost(conn, &tables)),
                    _ => cost,
                }
            });
            if let (Some(probe), Some(per_row)) = (probe, per_row) {
                if let Ok(Some(step)) = run_read(conn, auth, meter, schema, &probe, &mut run_budget)
                {
                    let rows = match step.rows.as_ref().and_then(|r| r.rows.first()) {
                        Some(row) => match row.first() {
                            Some(crate::Value::Integer(n)) => u64::try_from(*n).unwrap_or(0),
                            _ => 0,
                        },
                        None => 0,
                    };
                    let cost = STATEMENT_BASE
                        .saturating_add(step.cost)
                        .saturating_add(rows.saturating_mul(per_row));
                    priced = Some((cost, true));
                }
            }
        }
        let (cost, bounded) =
            priced.unwrap_or_else(|| price(conn, &rewritten.sql, &plan, &tables, &mut stats));
        total.cost = total.cost.saturating_add(cost);
        total.plan.extend(plan.into_iter().map(|(_, _, d)| d));
        total.bounded &= bounded;
    }
    Ok(total)
}

/// One line of EXPLAIN QUERY PLAN: id, parent id, detail.
type PlanLine = (i64, i64, String);

/// The query plan of `rewritten`, prepared under the user's guard so an estimate refuses
/// what execution would refuse.
fn plan_of(
    conn: &Connection,
    auth: &Authorizer,
    schema: &str,
    rewritten: &guard::Rewritten,
) -> Result<Vec<PlanLine>, SqlError> {
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
    match (plan, denial) {
        (_, Some(d)) => Err(d),
        (Err(e), None) => Err(SqlError::Sqlite(e)),
        (Ok(p), None) => Ok(p),
    }
}

/// The model's price of a statement with `plan` (and whether it is bounded).
fn price(
    conn: &Connection,
    sql: &str,
    plan: &[PlanLine],
    tables: &Tables,
    stats: &mut BTreeMap<String, TableStats>,
) -> (u64, bool) {
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
    for (id, parent, detail) in plan {
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
    if let Some(per_row) = write_row_cost(conn, tables, stats) {
        let written = if tables.values_rows > 0 {
            tables.values_rows
        } else if plan.is_empty() {
            1
        } else {
            out_rows
        };
        cost = cost.saturating_add(written.saturating_mul(per_row));
        if tables.values_rows > 0 {
            // The TEXT and BLOB bytes of inserted literals are at most the text's length.
            cost = cost.saturating_add(LITERAL_BYTES_CHARGED * sql.len() as u64 / BYTES_PER_STEP);
        }
    }
    (cost, bounded)
}
