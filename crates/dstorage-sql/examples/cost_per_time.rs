//! Time per unit of metered cost, for workloads of small and of large values.
//!
//! `cargo run --release -p dstorage-sql --example cost_per_time [rounds]` runs each workload
//! below as a read on one engine, `rounds` times (default 3), interleaved round by round, and
//! prints a table of its metered cost, its median time and the nanoseconds per cost unit.
//! The cost limit exists to bound time, so that last column should not grow with the size of
//! the values a statement moves (docs/sql.md, "Cost"): the ratio between the large-value and
//! the small-value rows is the point, not the absolute times, which depend on the machine.

use std::time::{Duration, Instant};

use dstorage_sql::{Engine, EngineConfig};

/// Rows of the small-value table.
const SMALL_ROWS: u64 = 200_000;

/// The workloads: (name, SQL of a read in schema `bench`).
const WORKLOADS: &[(&str, &str)] = &[
    ("small: scan and sum", "SELECT sum(grp) FROM small"),
    (
        "small: sort 200k rows",
        "SELECT count(*) FROM (SELECT name, grp FROM small ORDER BY name, grp LIMIT 1 OFFSET 199999)",
    ),
    (
        "small: join on key",
        "SELECT count(*) FROM small a JOIN small b ON b.id = a.grp + 1",
    ),
    (
        "small: group_concat",
        "SELECT length(group_concat(name, ',' ORDER BY id)) FROM small WHERE id <= 50000",
    ),
    (
        "large: sort 1,600 x 900 kB",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1600) \
         SELECT length(v) FROM (SELECT zeroblob(900000) || x AS v FROM c) ORDER BY v",
    ),
    (
        "large: join, concat 100 kB",
        "SELECT sum(length(x.v || z.id)) FROM big x, big y, big z",
    ),
    (
        "large: replace() over 100 kB",
        "SELECT sum(length(replace(a.v, x'01', x'02'))) FROM big a, big b",
    ),
    (
        "large: compare 100 kB",
        "SELECT count(*) FROM big a, big b, big c WHERE a.v = b.v",
    ),
];

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("rounds: a number"))
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EngineConfig {
        cost_limit_per_tx: 1_000_000_000_000,
        ..EngineConfig::default()
    };
    let mut engine = Engine::open(&dir.path().join("bench.sqlite"), config).expect("open");
    setup(&mut engine);
    let mut times = vec![Vec::new(); WORKLOADS.len()];
    let mut costs = vec![0u64; WORKLOADS.len()];
    for round in 0..rounds {
        for k in 0..WORKLOADS.len() {
            let i = (k + round) % WORKLOADS.len();
            let (name, sql) = WORKLOADS[i];
            let mut reader = engine.reader().expect("reader");
            #[allow(
                clippy::disallowed_methods,
                reason = "the example times itself; it changes no replicated state"
            )]
            let started = Instant::now();
            let result = reader
                .query("bench", sql, 1_000_000_000_000)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            times[i].push(started.elapsed());
            costs[i] = result.cost;
        }
    }
    println!("| workload | cost | median time | ns per cost unit |");
    println!("|---|---|---|---|");
    for (i, (name, _)) in WORKLOADS.iter().enumerate() {
        times[i].sort();
        let median: Duration = times[i][times[i].len() / 2];
        let per_unit = median.as_nanos() as f64 / costs[i].max(1) as f64;
        println!(
            "| {name} | {} | {:.1} ms | {per_unit:.1} |",
            costs[i],
            median.as_secs_f64() * 1e3
        );
    }
}

/// Schema `bench`: `small` (200k rows of an id, a short name and a group) and `big` (40 rows
/// of 100 kB blobs).
fn setup(engine: &mut Engine) {
    let limit = 1_000_000_000_000;
    let mut block = engine.begin_block().expect("begin");
    block.create_schema("bench").expect("schema");
    for sql in [
        "CREATE TABLE small(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER NOT NULL) STRICT",
        "CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB NOT NULL) STRICT",
        "INSERT INTO big SELECT x, zeroblob(100000) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40) SELECT x FROM c)",
    ] {
        block.execute("bench", sql, limit).expect(sql);
    }
    block.commit().expect("commit");
    // The write limit of a transaction is 8 MiB: fill `small` in slices.
    let slice = 20_000;
    for start in (0..SMALL_ROWS).step_by(slice as usize) {
        let mut block = engine.begin_block().expect("begin");
        let sql = format!(
            "INSERT INTO small SELECT x, 'name' || (x % 1000), x % 7 FROM (WITH RECURSIVE c(x) AS (SELECT {} UNION ALL SELECT x + 1 FROM c WHERE x < {}) SELECT x FROM c)",
            start + 1,
            start + slice
        );
        block.execute("bench", &sql, limit).expect("fill small");
        block.commit().expect("commit");
    }
}
