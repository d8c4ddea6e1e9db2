//! `dstorage bench --signed-reads`: signed reads per second on one real node.
//!
//! One validator is started (a real `dstorage start` with its CometBFT), a schema of 1,000 rows with a view
//! action `get($id)` is deployed by an owner key, and two phases run one after the other on that node, each with
//! `--clients` concurrent readers looping: `GET /v1/challenge`, sign the read as the owner under `--standard`,
//! post it, check the row. The SQL phase posts a one-row `SELECT ... WHERE id = ?` to `POST /v1/query`; the
//! action phase calls `get(id)` through `POST /v1/call`. In each phase, after `--warmup` seconds, completed reads
//! are counted for `--seconds`; the report gives both and their ratio (one run, one machine load). The report gives end-to-end reads per second on this
//! machine (the benchmark client's signing and HTTP share the cores with the node) and the node's own CPU per
//! read (its process and CometBFT's, from `/proc`), from which the reads one node could answer per second of
//! each core it has follows: what the node costs, separated from what the client costs.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dstorage_auth::SecretKey;
use dstorage_client::{Client, Signer};
use dstorage_types::read::ReadEnvelope;
use dstorage_types::result::ResultCode;
use dstorage_types::value::Value;
use serde::Serialize;

use crate::bench::{cpu_seconds, load_average, BenchArgs, Network};
use dstorage_node::cometbft;

const ROWS: i64 = 1_000;

/// What the signed-read benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct ReadsReport {
    /// CPU cores of the machine.
    pub cores: usize,
    /// 1-minute load average before the run.
    pub load_before: f64,
    /// Concurrent readers.
    pub clients: usize,
    /// Signature standard of the reads.
    pub standard: String,
    /// Challenges each reader fetched per `GET /v1/challenge` (`--challenge-batch`).
    pub challenge_batch: usize,
    /// Signed ad-hoc SQL reads (`POST /v1/query`).
    pub sql: ReadsPhase,
    /// Signed view action reads (`POST /v1/call`).
    pub action: ReadsPhase,
    /// Action reads per second over SQL reads per second.
    pub action_over_sql: f64,
}

/// One phase of the signed-read benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct ReadsPhase {
    /// 1-minute load average when the phase started.
    pub load_before: f64,
    /// Measured seconds.
    pub seconds: f64,
    /// Reads answered (200 with the expected row) in the window.
    pub reads: u64,
    /// Reads answered with an error in the window (should be 0).
    pub errors: u64,
    /// End-to-end reads per second (client and node on the same machine).
    pub reads_per_second: f64,
    /// The node's CPU seconds (dstorage + CometBFT processes) per read.
    pub node_cpu_us_per_read: f64,
    /// Reads per second one node core could answer at that cost.
    pub reads_per_node_core_second: f64,
    /// The benchmark process's own CPU seconds per read (signing, HTTP).
    pub client_cpu_us_per_read: f64,
}

/// Which read a phase sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sql,
    Action,
}

/// Run the signed-read benchmark and print its report.
pub async fn run(a: &BenchArgs) -> anyhow::Result<ExitCode> {
    if a.clients == 0 || a.seconds == 0 {
        bail!("--clients and --seconds must be positive");
    }
    if !(1..=dstorage_client::api::MAX_CHALLENGES).contains(&a.challenge_batch) {
        bail!(
            "--challenge-batch takes 1 to {}",
            dstorage_client::api::MAX_CHALLENGES
        );
    }
    let report = bench(a).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "signed reads ({}) on 1 node, {} clients, {} challenge(s) per GET /v1/challenge, {} cores (load {:.2} before):",
            report.standard, report.clients, report.challenge_batch, report.cores, report.load_before
        );
        for (what, p) in [
            ("SQL    (POST /v1/query)", &report.sql),
            ("action (POST /v1/call) ", &report.action),
        ] {
            println!(
                "  {what}: {:.0} reads/s end to end ({} reads, {} errors, {:.0} s, load {:.2}); node CPU {:.1} us/read = {:.0} reads/s per node core; client CPU {:.1} us/read",
                p.reads_per_second,
                p.reads,
                p.errors,
                p.seconds,
                p.load_before,
                p.node_cpu_us_per_read,
                p.reads_per_node_core_second,
                p.client_cpu_us_per_read
            );
        }
        println!("  action reads / SQL reads: {:.2}", report.action_over_sql);
    }
    Ok(ExitCode::SUCCESS)
}

/// Measure signed reads on a fresh one-validator network.
pub async fn bench(a: &BenchArgs) -> anyhow::Result<ReadsReport> {
    let load_before = load_average();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let root = match &a.dir {
        Some(d) => d.join("reads"),
        None => std::env::temp_dir().join(format!("dstorage-bench-reads-{}", std::process::id())),
    };
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("cannot clear {}", root.display()))?;
    }
    let bin = tokio::task::spawn_blocking(cometbft::locate_cometbft).await??;
    let net = Network::start(&bin, &root, 1, a.bundle_max_txs).await?;
    let result = measure(a, &net, cores, load_before).await;
    net.stop().await;
    if a.dir.is_none() {
        std::fs::remove_dir_all(&root).ok();
    }
    result
}

async fn measure(
    a: &BenchArgs,
    net: &Network,
    cores: usize,
    load_before: f64,
) -> anyhow::Result<ReadsReport> {
    let node = &net.nodes[0];
    let client = Client::new(&node.config.api_addr);
    let key_type = match a.standard.as_str() {
        "eth_personal_sign" | "secp256k1_sha256" => dstorage_types::identity::KeyType::Secp256k1,
        _ => dstorage_types::identity::KeyType::Ed25519,
    };
    let owner = Arc::new(Signer::new(SecretKey::generate(key_type), &a.standard)?);
    let r = client
        .deploy(
            &owner,
            "reads",
            &format!(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL) STRICT; INSERT INTO t VALUES {};
CREATE VIEW ACTION get($id INTEGER) AUTHENTICATED AS BEGIN SELECT payload FROM t WHERE id = $id; END;",
                (1..=ROWS)
                    .map(|i| format!("({i}, 'row {i}')"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await?;
    if r.code != ResultCode::Ok {
        bail!("deploying the read schema failed: {}", r.message);
    }
    let chain_id = client.chain_id().await?;
    let sql = phase(a, node, &client, (&owner, &chain_id), Kind::Sql).await?;
    let action = phase(a, node, &client, (&owner, &chain_id), Kind::Action).await?;
    Ok(ReadsReport {
        cores,
        load_before,
        clients: a.clients,
        standard: a.standard.clone(),
        challenge_batch: a.challenge_batch,
        action_over_sql: if sql.reads_per_second > 0.0 {
            action.reads_per_second / sql.reads_per_second
        } else {
            0.0
        },
        sql,
        action,
    })
}

async fn phase(
    a: &BenchArgs,
    node: &crate::bench::NodeProc,
    client: &Client,
    (owner, chain_id): (&Arc<Signer>, &str),
    kind: Kind,
) -> anyhow::Result<ReadsPhase> {
    let load_before = load_average();
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        let (client, owner) = (client.clone(), owner.clone());
        let (counting, stop, reads, errors) = (
            counting.clone(),
            stop.clone(),
            reads.clone(),
            errors.clone(),
        );
        let chain_id = chain_id.to_owned();
        let batch = a.challenge_batch;
        tasks.push(tokio::spawn(async move {
            let mut id = (c as i64 * 7919) % ROWS + 1;
            let mut challenges: Vec<String> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                id = id % ROWS + 1;
                let (path, envelope) = match kind {
                    Kind::Sql => (
                        "/v1/query",
                        ReadEnvelope::sql(
                            "reads",
                            "SELECT payload FROM t WHERE id = ?",
                            vec![Value::Integer(id)],
                        ),
                    ),
                    Kind::Action => (
                        "/v1/call",
                        ReadEnvelope::action("reads", "get", vec![Value::Integer(id)]),
                    ),
                };
                let answer = async {
                    if challenges.is_empty() {
                        challenges = if batch == 1 {
                            vec![client.challenge().await?.challenge]
                        } else {
                            client.challenges(batch).await?
                        };
                    }
                    let challenge = challenges.pop().unwrap_or_default();
                    let signed = owner.sign_read(&chain_id, &challenge, envelope)?;
                    client
                        .post_read::<dstorage_client::api::QueryResponse>(path, &signed)
                        .await
                }
                .await;
                let ok = matches!(&answer, Ok(r) if r.rows == vec![vec![Value::Text(format!("row {id}"))]]);
                if counting.load(Ordering::Relaxed) {
                    if ok {
                        reads.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    let node_pids: Vec<u32> = std::iter::once(node.pid).chain(node.comet_pid).collect();
    let node_cpu_before: f64 = node_pids.iter().map(|p| cpu_seconds(*p)).sum();
    let own_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    counting.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    counting.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let node_cpu = node_pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - node_cpu_before;
    let own_cpu = cpu_seconds(std::process::id()) - own_before;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let n = reads.load(Ordering::Relaxed);
    let per_read = |cpu: f64| if n == 0 { 0.0 } else { cpu / n as f64 * 1e6 };
    let node_us = per_read(node_cpu);
    Ok(ReadsPhase {
        load_before,
        seconds: elapsed,
        reads: n,
        errors: errors.load(Ordering::Relaxed),
        reads_per_second: n as f64 / elapsed,
        node_cpu_us_per_read: node_us,
        reads_per_node_core_second: if node_us > 0.0 { 1e6 / node_us } else { 0.0 },
        client_cpu_us_per_read: per_read(own_cpu),
    })
}
