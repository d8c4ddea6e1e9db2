//! `dstorage bench`: start a local network of real `dstorage start` processes (each supervising a real
//! CometBFT), drive signed single-row inserts from concurrent clients, and report committed throughput, commit
//! latency and where the CPU went.
//!
//! How it measures:
//! - Every client has its own key and its own schema (only a schema's owner may write to it), and talks to one
//!   node (client `i` to node `i mod N`). It signs inserts with consecutive nonces and broadcasts each with
//!   `wait = sync` (the API answers after CheckTx), strictly one after another, so its nonces reach the mempool
//!   in order; up to `--window` of its transactions may be uncommitted at once.
//! - Commits are observed per node: a tracker polls the node's CometBFT `abci_info` (which answers the app's
//!   last *committed* height, i.e. after the block's SQLite commit) every 20 milliseconds and, for each new
//!   height, matches the block's transaction hashes against what was sent. Commit latency is the time from just
//!   before the broadcast to the first poll that saw the height committed on the node the client talks to.
//! - Throughput counts transactions committed during the measured window (after a warm-up); latencies are those
//!   of transactions sent during it.
//! - CPU comes from `/proc/<pid>/stat` (user + system) of each `dstorage start` process and its CometBFT child,
//!   and from the nodes' `/metrics` counters `dstorage_signature_check_seconds_total` and
//!   `dstorage_sql_execution_seconds_total` (thread CPU time inside the app). Shares are fractions of the network's
//!   CPU time (all dstorage and CometBFT processes); the benchmark client's own CPU is reported beside them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use dstorage_auth::SecretKey;
use dstorage_client::api::WaitFor;
use dstorage_client::{Client, ClientError, Signer};
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::{split_bundle, tx_hash, Payload};
use dstorage_types::value::Value;
use serde::Serialize;
use tokio::sync::Semaphore;

use dstorage_node::cometbft::{self, CometRpc, PORTS_PER_NODE};
use dstorage_node::config::NodeConfig;
use dstorage_node::localnet::{self, Localnet};

const CHAIN_ID: &str = "dstorage-bench";
const SCHEMA_SQL: &str =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, client INTEGER NOT NULL, payload TEXT NOT NULL) STRICT";
/// The schema with a write action doing the same insert, for `--actions`.
const ACTION_SCHEMA_SQL: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, client INTEGER NOT NULL, payload TEXT NOT NULL) STRICT;
CREATE ACTION put($id INTEGER, $client INTEGER, $payload TEXT) AUTHENTICATED AS BEGIN
  INSERT INTO t VALUES ($id, $client, $payload);
END;";
const START_WAIT: Duration = Duration::from_secs(90);
/// How often a tracker asks a node for its committed height. Every poll is an RPC request the measured network
/// serves (at 5 ms the four trackers sent as many requests as the clients sent transactions), so poll no more
/// often than latency needs: ±20 ms on commit latencies of about a second.
const COMMIT_POLL: Duration = Duration::from_millis(20);
/// Linux reports /proc CPU times in clock ticks of 1/100 s (USER_HZ) on every architecture we run on.
const TICKS_PER_SECOND: f64 = 100.0;

/// `dstorage bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Network sizes to measure, one after another (comma-separated validator counts).
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub validators: Vec<usize>,
    /// Concurrent clients, each with its own key and schema. Each sends one transaction at a time (in nonce
    /// order, waiting for CheckTx), so it takes many clients to load a network.
    #[arg(long, default_value_t = 128)]
    pub clients: usize,
    /// Measured duration per network, seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Warm-up before measuring, seconds.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Transactions one client may have sent but not yet seen committed.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    /// Signature standard of the clients' keys (ed25519, eth_personal_sign, ...).
    #[arg(long, default_value = "ed25519")]
    pub standard: String,
    /// Put the values into the SQL text (`VALUES (7, 3, 'xx…')`) instead of binding them to `?`
    /// placeholders: every insert is then a new statement to parse and prepare.
    #[arg(long)]
    pub literal: bool,
    /// Also insert through a write action (`call put(id, client, payload)`, docs/schemas.md): for each network
    /// size, a network measured with parameterised `sql` inserts and then a fresh one measured with the same
    /// inserts as action calls, and the ratio of the two.
    #[arg(long, conflicts_with = "literal")]
    pub actions: bool,
    /// Most transactions a node's API groups into one bundle (its `bundle_max_txs`); 1 submits every
    /// transaction to CometBFT on its own.
    #[arg(long, default_value_t = 512)]
    pub bundle_max_txs: usize,
    /// Lay the networks out here and keep them (default: a temporary folder, deleted afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Measure signed reads instead of writes: `--clients` concurrent readers on one node, each fetching a
    /// challenge, signing a one-row SELECT as the schema's owner and posting it (`crate::bench_reads`).
    #[arg(long)]
    pub signed_reads: bool,
    /// With `--signed-reads`: challenges each reader fetches at once (`GET /v1/challenge?count=N`, at most 100);
    /// 1 fetches one per read.
    #[arg(long, default_value_t = 1)]
    pub challenge_batch: usize,
}

/// What one run measured, for all network sizes.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// CPU cores the machine has.
    pub cores: usize,
    /// `/proc/loadavg`'s 1-minute load before the run.
    pub load_before: f64,
    /// Concurrent clients.
    pub clients: usize,
    /// In-flight window per client.
    pub window: usize,
    /// Measured seconds per network.
    pub seconds: f64,
    /// Warm-up seconds per network.
    pub warmup: f64,
    /// Signature standard.
    pub standard: String,
    /// Whether values were written into the SQL text instead of bound as parameters.
    pub literal: bool,
    /// Whether action calls were measured too (each network size twice: inserts, then action calls).
    pub actions: bool,
    /// The nodes' `bundle_max_txs`.
    pub bundle_max_txs: usize,
    /// One entry per network size.
    pub networks: Vec<NetworkReport>,
}

/// The measurements of one network.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkReport {
    /// Validators (nodes) in the network.
    pub validators: usize,
    /// Whether its inserts were `call`s of a write action (else parameterised `sql` transactions).
    pub actions: bool,
    /// Transactions committed during the measured window.
    pub committed_tx: u64,
    /// Of those, transactions whose result was an error (from the nodes' `dstorage_tx_errors`, node 0).
    pub failed_tx: u64,
    /// Committed transactions per second.
    pub tx_per_sec: f64,
    /// Commit latency (broadcast → committed on the client's node) of transactions sent during the window.
    pub latency_ms: Latency,
    /// Time a `wait = sync` broadcast took (HTTP API → CometBFT RPC → CheckTx → answer), window's broadcasts.
    pub broadcast_ms: Latency,
    /// Transactions accepted by CheckTx during the window.
    pub sent: u64,
    /// Broadcasts refused (CheckTx or API errors) during the window.
    pub refused: u64,
    /// Transactions sent during the window and not seen committed by the end of the drain.
    pub uncommitted: u64,
    /// Blocks committed during the window (node 0).
    pub blocks: u64,
    /// Signed transactions per CometBFT transaction the APIs submitted during the window (1: no bundles).
    pub txs_per_submission: f64,
    /// CPU seconds used during the window.
    pub cpu_seconds: CpuSeconds,
    /// Fractions of the network's CPU time (dstorage + CometBFT processes).
    pub cpu_share: CpuShare,
    /// Network CPU (dstorage + CometBFT processes) per committed transaction, in milliseconds. Unlike tx/s it
    /// does not fall when other programs take part of the machine, so it compares builds measured under load.
    pub cpu_ms_per_tx: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Transactions the percentiles are over.
    pub samples: u64,
}

/// CPU seconds during the window.
#[derive(Debug, Clone, Serialize)]
pub struct CpuSeconds {
    /// All `dstorage start` processes.
    pub dstorage: f64,
    /// All CometBFT processes.
    pub cometbft: f64,
    /// Signature verification inside the nodes (thread CPU time, cache misses).
    pub signature: f64,
    /// Block execution and commit inside the nodes (thread CPU time).
    pub sql: f64,
    /// The benchmark process itself (signing, HTTP, commit tracking).
    pub client: f64,
    /// Wall-clock seconds of the window times the machine's cores: the CPU that was available.
    pub available: f64,
}

/// Fractions of the network's CPU time.
#[derive(Debug, Clone, Serialize)]
pub struct CpuShare {
    /// Signature checks.
    pub signature: f64,
    /// SQL execution (blocks and their commit).
    pub sql: f64,
    /// Consensus: the CometBFT processes (mempool, gossip, votes, RPC, block store).
    pub consensus: f64,
    /// The rest of dstorage: HTTP API, ABCI framing, mempool bookkeeping, logging.
    pub other: f64,
}

/// Run the benchmark and print its report (`--signed-reads` runs `bench_reads` instead: `main` decides, so this
/// module does not use the one that builds on it).
pub async fn run(a: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let report = bench(&a).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Run the benchmark: every network size in turn.
pub async fn bench(a: &BenchArgs) -> anyhow::Result<BenchReport> {
    if a.clients == 0 || a.window == 0 || a.seconds == 0 {
        bail!("--clients, --window and --seconds must be positive");
    }
    if a.validators.is_empty() || a.validators.contains(&0) {
        bail!("--validators takes positive counts, e.g. 1,4");
    }
    let load_before = load_average();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (root, temporary) = match &a.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("dstorage-bench-{}", std::process::id())),
            true,
        ),
    };
    let bin = tokio::task::spawn_blocking(cometbft::locate_cometbft).await??;
    let mut networks = Vec::new();
    for &n in &a.validators {
        let dir = root.join(format!("net{n}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        progress(
            a,
            &format!("starting a {n}-validator network in {}", dir.display()),
        );
        // With --actions, each size is measured twice on fresh networks: plain inserts, then action calls.
        let kinds: &[bool] = if a.actions { &[false, true] } else { &[false] };
        for &actions in kinds {
            let run = BenchArgs {
                actions,
                ..a.clone()
            };
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot clear {}", dir.display()))?;
            }
            let result = run_network(&run, &bin, &dir, n, cores).await;
            if temporary {
                std::fs::remove_dir_all(&dir).ok();
            }
            networks.push(result.with_context(|| format!("benchmark of {n} validators"))?);
        }
    }
    if temporary {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(BenchReport {
        cores,
        load_before,
        clients: a.clients,
        window: a.window,
        seconds: a.seconds as f64,
        warmup: a.warmup as f64,
        standard: a.standard.clone(),
        literal: a.literal,
        actions: a.actions,
        bundle_max_txs: a.bundle_max_txs,
        networks,
    })
}

fn progress(a: &BenchArgs, msg: &str) {
    if !a.json {
        eprintln!("bench: {msg}");
    }
}

/// The running processes of one network (a [`Localnet`]); stopped on drop.
pub(crate) struct Network {
    local: Localnet,
    pub(crate) nodes: Vec<NodeProc>,
}

pub(crate) struct NodeProc {
    pub(crate) config: NodeConfig,
    pub(crate) pid: u32,
    pub(crate) comet_pid: Option<u32>,
}

impl Network {
    pub(crate) async fn start(
        bin: &Path,
        dir: &Path,
        n: usize,
        bundle_max_txs: usize,
    ) -> anyhow::Result<Network> {
        let base_port = cometbft::find_free_ports(PORTS_PER_NODE * n as u16)?;
        let planned = {
            let bin = bin.to_path_buf();
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || {
                localnet::plan(&bin, &dir, n, base_port, CHAIN_ID, |c| {
                    c.bundle_max_txs = bundle_max_txs
                })
            })
            .await??
        };
        let mut local = Localnet::spawn(
            &std::env::current_exe()?,
            planned,
            localnet::Output::LogFile,
        )?;
        local.wait_ready(2, START_WAIT).await?;
        let mut nodes = Vec::with_capacity(n);
        for node in &local.nodes {
            let comet_pid = child_named(node.pid, "cometbft");
            if comet_pid.is_none() {
                bail!("found no CometBFT child of node {}", node.config.moniker);
            }
            nodes.push(NodeProc {
                config: node.config.clone(),
                pid: node.pid,
                comet_pid,
            });
        }
        Ok(Network { local, nodes })
    }

    pub(crate) async fn stop(mut self) {
        self.local.stop(Duration::from_secs(20)).await;
    }
}

/// A process's user + system CPU seconds from `/proc/<pid>/stat` (0 if it is gone).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) is in parentheses and may hold spaces; fields after it are plain.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let tick = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(14) + tick(15)) / TICKS_PER_SECOND
}

/// The first child of `parent` whose command name is `name`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm == name && ppid == Some(parent) {
            return Some(pid);
        }
    }
    None
}

pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse().ok()))
        .unwrap_or(0.0)
}

/// A metric's value from a Prometheus text exposition (0 if absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// Sum of a labelled metric family (`name{...} value`).
fn metric_family(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with('{'))
        .filter_map(|rest| rest.rsplit(' ').next())
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// CPU and app counters at one moment.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    dstorage: f64,
    cometbft: f64,
    signature: f64,
    sql: f64,
    client: f64,
    tx_errors: f64,
    blocks: f64,
    submissions: f64,
    submitted_txs: f64,
}

async fn snapshot(net: &Network, http: &reqwest::Client) -> Snapshot {
    let mut s = Snapshot {
        client: cpu_seconds(std::process::id()),
        ..Default::default()
    };
    for (i, node) in net.nodes.iter().enumerate() {
        s.dstorage += cpu_seconds(node.pid);
        s.cometbft += node.comet_pid.map(cpu_seconds).unwrap_or(0.0);
        let url = format!("http://{}/metrics", node.config.api_addr);
        let text = match http.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        s.signature += metric(&text, "dstorage_signature_check_seconds_total");
        s.sql += metric(&text, "dstorage_sql_execution_seconds_total");
        s.submissions += metric(&text, "dstorage_cometbft_submissions_total");
        s.submitted_txs += metric(&text, "dstorage_submitted_txs_total");
        if i == 0 {
            s.tx_errors = metric_family(&text, "dstorage_tx_errors_total");
            s.blocks = metric(&text, "dstorage_blocks_total");
        }
    }
    s
}

/// A sent, not yet committed transaction.
struct InFlight {
    sent: Instant,
    client: usize,
}

/// What the clients and trackers share.
struct Shared {
    /// Per node: hash → in-flight transaction sent to that node.
    pending: Vec<Mutex<HashMap<[u8; 32], InFlight>>>,
    /// Per client: permits for more in-flight transactions.
    windows: Vec<Arc<Semaphore>>,
    /// (sent, committed) of every committed transaction.
    commits: Mutex<Vec<(Instant, Instant)>>,
    /// Sent instants of refused broadcasts.
    refusals: Mutex<Vec<(Instant, String)>>,
    /// (sent, answered) of accepted broadcasts.
    sends: Mutex<Vec<(Instant, Instant)>>,
    /// Transaction hashes per height, fetched once from whichever node asked first.
    blocks: Mutex<HashMap<u64, Arc<Vec<[u8; 32]>>>>,
    stop_sending: AtomicBool,
    stop_tracking: AtomicBool,
    sent_total: AtomicU64,
    literal: bool,
    actions: bool,
}

async fn run_network(
    a: &BenchArgs,
    bin: &Path,
    dir: &Path,
    n: usize,
    cores: usize,
) -> anyhow::Result<NetworkReport> {
    let net = Network::start(bin, dir, n, a.bundle_max_txs).await?;
    let result = drive(a, &net, n, cores).await;
    net.stop().await;
    result
}

async fn drive(
    a: &BenchArgs,
    net: &Network,
    n: usize,
    cores: usize,
) -> anyhow::Result<NetworkReport> {
    let key_type = match a.standard.as_str() {
        "ed25519" | "solana" => KeyType::Ed25519,
        _ => KeyType::Secp256k1,
    };
    let signers: Vec<Arc<Signer>> = (0..a.clients)
        .map(|_| Signer::new(SecretKey::generate(key_type), &a.standard).map(Arc::new))
        .collect::<Result<_, _>>()
        .with_context(|| format!("signing with {}", a.standard))?;
    let clients: Vec<Client> = (0..a.clients)
        .map(|i| Client::new(&net.nodes[i % n].config.api_addr))
        .collect();

    // Every client deploys its own schema (nonce 1), all at once.
    progress(a, &format!("deploying {} schemas", a.clients));
    let schema_sql = if a.actions {
        ACTION_SCHEMA_SQL
    } else {
        SCHEMA_SQL
    };
    let deploys = (0..a.clients).map(|i| {
        let client = clients[i].clone();
        let signer = signers[i].clone();
        async move {
            let r = client
                .deploy(&signer, &format!("bench{i}"), schema_sql)
                .await?;
            if r.code != ResultCode::Ok {
                bail!("deploy of bench{i} failed: {}: {}", r.code, r.message);
            }
            Ok::<_, anyhow::Error>(())
        }
    });
    futures::future::try_join_all(deploys).await?;

    let shared = Arc::new(Shared {
        pending: (0..n).map(|_| Mutex::new(HashMap::new())).collect(),
        windows: (0..a.clients)
            .map(|_| Arc::new(Semaphore::new(a.window)))
            .collect(),
        commits: Mutex::new(Vec::new()),
        refusals: Mutex::new(Vec::new()),
        sends: Mutex::new(Vec::new()),
        blocks: Mutex::new(HashMap::new()),
        stop_sending: AtomicBool::new(false),
        stop_tracking: AtomicBool::new(false),
        sent_total: AtomicU64::new(0),
        literal: a.literal,
        actions: a.actions,
    });

    let mut trackers = Vec::new();
    for (index, node) in net.nodes.iter().enumerate() {
        let rpc = CometRpc::local(node.config.rpc_port)?;
        let shared = shared.clone();
        let start = Client::new(&node.config.api_addr).status().await?.height;
        trackers.push(tokio::spawn(track(index, rpc, start, shared)));
    }
    let chain_id = CHAIN_ID.to_string();
    let mut senders = Vec::new();
    for i in 0..a.clients {
        let client = clients[i].clone();
        let signer = signers[i].clone();
        let shared = shared.clone();
        let chain_id = chain_id.clone();
        senders.push(tokio::spawn(async move {
            send_loop(i, i % n, client, signer, chain_id, shared).await
        }));
    }

    progress(a, &format!("warming up for {} s", a.warmup));
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    let http = reqwest::Client::new();
    let before = snapshot(net, &http).await;
    let t0 = Instant::now();
    progress(
        a,
        &format!(
            "measuring {} clients against {n} validator(s) for {} s",
            a.clients, a.seconds
        ),
    );
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let after = snapshot(net, &http).await;
    let t1 = Instant::now();
    shared.stop_sending.store(true, Ordering::SeqCst);
    for s in senders {
        s.await??;
    }
    // Drain: wait for what was sent to commit (bounded).
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < drain_deadline
        && shared
            .pending
            .iter()
            .any(|p| p.lock().map(|p| !p.is_empty()).unwrap_or(false))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.stop_tracking.store(true, Ordering::SeqCst);
    for t in trackers {
        t.await??;
    }

    let window = t1.duration_since(t0).as_secs_f64();
    let in_window = |t: Instant| t >= t0 && t < t1;
    let commits = shared.commits.lock().map(|c| c.clone()).unwrap_or_default();
    let committed_tx = commits.iter().filter(|(_, c)| in_window(*c)).count() as u64;
    let mut latencies: Vec<f64> = commits
        .iter()
        .filter(|(s, _)| in_window(*s))
        .map(|(s, c)| c.duration_since(*s).as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(|x, y| x.total_cmp(y));
    let sends: Vec<(Instant, Instant)> = shared
        .sends
        .lock()
        .map(|s| s.iter().filter(|(t, _)| in_window(*t)).copied().collect())
        .unwrap_or_default();
    let sent = sends.len() as u64;
    let mut broadcasts: Vec<f64> = sends
        .iter()
        .map(|(s, a)| a.duration_since(*s).as_secs_f64() * 1000.0)
        .collect();
    broadcasts.sort_by(|x, y| x.total_cmp(y));
    let refusals = shared
        .refusals
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    let refused = refusals.iter().filter(|(t, _)| in_window(*t)).count() as u64;
    if let Some((_, why)) = refusals.first() {
        progress(
            a,
            &format!("{} broadcasts refused; first: {why}", refusals.len()),
        );
    }
    let uncommitted = sent.saturating_sub(latencies.len() as u64);

    let d = |f: fn(&Snapshot) -> f64| (f(&after) - f(&before)).max(0.0);
    let cpu = CpuSeconds {
        dstorage: d(|s| s.dstorage),
        cometbft: d(|s| s.cometbft),
        signature: d(|s| s.signature),
        sql: d(|s| s.sql),
        client: d(|s| s.client),
        available: window * cores as f64,
    };
    let total = cpu.dstorage + cpu.cometbft;
    let share = |x: f64| {
        if total > 0.0 {
            (x / total).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let cpu_share = CpuShare {
        signature: share(cpu.signature),
        sql: share(cpu.sql),
        consensus: share(cpu.cometbft),
        other: share((cpu.dstorage - cpu.signature - cpu.sql).max(0.0)),
    };
    let cpu_ms_per_tx = if committed_tx > 0 {
        total * 1000.0 / committed_tx as f64
    } else {
        0.0
    };
    Ok(NetworkReport {
        validators: n,
        actions: a.actions,
        cpu_ms_per_tx,
        committed_tx,
        failed_tx: d(|s| s.tx_errors) as u64,
        tx_per_sec: committed_tx as f64 / window,
        latency_ms: Latency {
            p50: percentile(&latencies, 0.50),
            p90: percentile(&latencies, 0.90),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or(0.0),
            samples: latencies.len() as u64,
        },
        broadcast_ms: Latency {
            p50: percentile(&broadcasts, 0.50),
            p90: percentile(&broadcasts, 0.90),
            p99: percentile(&broadcasts, 0.99),
            max: broadcasts.last().copied().unwrap_or(0.0),
            samples: broadcasts.len() as u64,
        },
        sent,
        refused,
        uncommitted,
        blocks: d(|s| s.blocks) as u64,
        txs_per_submission: d(|s| s.submitted_txs) / d(|s| s.submissions).max(1.0),
        cpu_seconds: cpu,
        cpu_share,
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One client: sign and broadcast inserts in nonce order, at most `window` uncommitted at a time.
async fn send_loop(
    index: usize,
    node: usize,
    client: Client,
    signer: Arc<Signer>,
    chain_id: String,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let schema = format!("bench{index}");
    let mut nonce = client.nonce(signer.identity()).await?.next;
    let window = shared.windows[index].clone();
    let payload = "x".repeat(32);
    while !shared.stop_sending.load(Ordering::SeqCst) {
        // Wait for room in the window, but keep noticing the stop flag.
        let Ok(Ok(permit)) =
            tokio::time::timeout(Duration::from_millis(100), window.acquire()).await
        else {
            continue;
        };
        permit.forget();
        let tx = signer.sign(
            &chain_id,
            nonce,
            if shared.actions {
                Payload::Call {
                    schema: schema.clone(),
                    action: "put".to_owned(),
                    args: vec![
                        Value::Integer(i64::try_from(nonce).unwrap_or(i64::MAX)),
                        Value::Integer(i64::try_from(index).unwrap_or(i64::MAX)),
                        Value::Text(payload.clone()),
                    ],
                }
            } else if shared.literal {
                Payload::Sql {
                    schema: schema.clone(),
                    sql: format!("INSERT INTO t VALUES ({nonce}, {index}, '{payload}')"),
                    params: Vec::new(),
                }
            } else {
                Payload::Sql {
                    schema: schema.clone(),
                    sql: "INSERT INTO t VALUES (?, ?, ?)".to_owned(),
                    params: vec![
                        Value::Integer(i64::try_from(nonce).unwrap_or(i64::MAX)),
                        Value::Integer(i64::try_from(index).unwrap_or(i64::MAX)),
                        Value::Text(payload.clone()),
                    ],
                }
            },
        )?;
        let bytes = tx.encode();
        let hash = tx_hash(&bytes).0;
        let sent = Instant::now();
        // Registered before the broadcast, so a commit can never be seen before its transaction is known.
        if let Ok(mut p) = shared.pending[node].lock() {
            p.insert(
                hash,
                InFlight {
                    sent,
                    client: index,
                },
            );
        }
        match client.broadcast_bytes(&bytes, WaitFor::Sync).await {
            Ok(_) => {
                nonce += 1;
                shared.sent_total.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut s) = shared.sends.lock() {
                    s.push((sent, Instant::now()));
                }
            }
            Err(e) => {
                if let Ok(mut p) = shared.pending[node].lock() {
                    p.remove(&hash);
                }
                window.add_permits(1);
                let why = e.to_string();
                if let Ok(mut r) = shared.refusals.lock() {
                    r.push((sent, why));
                }
                match e {
                    ClientError::Api { ref code, .. }
                        if code == "nonce_gap" || code == "nonce_replayed" =>
                    {
                        // Lost track of our nonce: wait for our in-flight transactions, then ask the node.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        nonce = client.nonce(signer.identity()).await?.next;
                    }
                    // Mempool full, node busy: back off and send the same nonce again.
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    }
    Ok(())
}

/// One node's commit tracker: poll the app's committed height through CometBFT's `abci_info`, and resolve the
/// transactions of each newly committed height.
async fn track(node: usize, rpc: CometRpc, start: u64, shared: Arc<Shared>) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("{}/abci_info", rpc.base_url());
    let mut next = start + 1;
    while !shared.stop_tracking.load(Ordering::SeqCst) {
        let height = match app_height(&http, &url).await {
            Ok(h) => h,
            Err(_) => {
                tokio::time::sleep(COMMIT_POLL).await;
                continue;
            }
        };
        let seen = Instant::now();
        while next <= height {
            let cached = shared
                .blocks
                .lock()
                .ok()
                .and_then(|b| b.get(&next).cloned());
            let hashes = match cached {
                Some(h) => h,
                None => {
                    let block = rpc.block(Some(next)).await?;
                    // A bundle's members commit under their own hashes.
                    let h: Arc<Vec<[u8; 32]>> = Arc::new(
                        block
                            .txs
                            .iter()
                            .flat_map(|t| split_bundle(t).unwrap_or_default())
                            .map(|m| tx_hash(m).0)
                            .collect(),
                    );
                    if let Ok(mut b) = shared.blocks.lock() {
                        b.insert(next, h.clone());
                    }
                    h
                }
            };
            let mut resolved = Vec::new();
            if let Ok(mut p) = shared.pending[node].lock() {
                for hash in hashes.iter() {
                    if let Some(f) = p.remove(hash) {
                        resolved.push(f);
                    }
                }
            }
            if !resolved.is_empty() {
                if let Ok(mut c) = shared.commits.lock() {
                    c.extend(resolved.iter().map(|f| (f.sent, seen)));
                }
                for f in resolved {
                    shared.windows[f.client].add_permits(1);
                }
            }
            next += 1;
        }
        tokio::time::sleep(COMMIT_POLL).await;
    }
    Ok(())
}

async fn app_height(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let v: serde_json::Value = http.get(url).send().await?.json().await?;
    let h = v
        .pointer("/result/response/last_block_height")
        .and_then(|h| h.as_str())
        .unwrap_or("0");
    Ok(h.parse()?)
}

/// The report as a text table.
pub fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "dstorage bench: {} clients (window {}, {}, {}, {}), {} s measured after {} s warm-up; {} cores, load {:.2} before\n\n",
        r.clients,
        r.window,
        r.standard,
        if r.actions {
            "bound parameters, then action calls"
        } else if r.literal {
            "literal SQL"
        } else {
            "bound parameters"
        },
        if r.bundle_max_txs > 1 { format!("bundles of up to {}", r.bundle_max_txs) } else { "no bundles".to_string() },
        r.seconds,
        r.warmup,
        r.cores,
        r.load_before
    ));
    out.push_str("validators | inserts | committed tx/s | p50 ms | p99 ms | committed | signatures | SQL   | consensus | other dstorage | CPU used (network + client)\n");
    out.push_str("-----------+---------+----------------+--------+--------+-----------+------------+-------+-----------+----------------+----------------------------\n");
    for n in &r.networks {
        let c = &n.cpu_seconds;
        out.push_str(&format!(
            "{:>10} | {:>7} | {:>14.0} | {:>6.0} | {:>6.0} | {:>9} | {:>9.1}% | {:>4.1}% | {:>8.1}% | {:>13.1}% | {:.0}% + {:.0}% of {:.0} core-s\n",
            n.validators,
            if n.actions { "action" } else { "sql" },
            n.tx_per_sec,
            n.latency_ms.p50,
            n.latency_ms.p99,
            n.committed_tx,
            n.cpu_share.signature * 100.0,
            n.cpu_share.sql * 100.0,
            n.cpu_share.consensus * 100.0,
            n.cpu_share.other * 100.0,
            (c.dstorage + c.cometbft) / c.available.max(1e-9) * 100.0,
            c.client / c.available.max(1e-9) * 100.0,
            c.available,
        ));
    }
    out.push('\n');
    for n in &r.networks {
        out.push_str(&format!(
            "{} validator(s), {}: {} blocks, {} sent, {} refused, {} uncommitted, {} failed in blocks; commit p90 {:.0} ms, max {:.0} ms; broadcast (CheckTx) p50 {:.1} ms, p99 {:.1} ms; {:.1} txs per CometBFT tx; network CPU {:.2} ms per committed tx\n",
            n.validators, if n.actions { "action calls" } else { "sql inserts" }, n.blocks, n.sent, n.refused, n.uncommitted, n.failed_tx, n.latency_ms.p90, n.latency_ms.max, n.broadcast_ms.p50, n.broadcast_ms.p99, n.txs_per_submission, n.cpu_ms_per_tx
        ));
    }
    for pair in r.networks.windows(2) {
        if let [sql, action] = pair {
            if !sql.actions
                && action.actions
                && sql.validators == action.validators
                && sql.tx_per_sec > 0.0
            {
                out.push_str(&format!(
                    "{} validator(s): action calls / sql inserts = {:.2} in tx/s ({:.0} / {:.0}), {:.2} in network CPU per tx ({:.2} / {:.2} ms)\n",
                    sql.validators,
                    action.tx_per_sec / sql.tx_per_sec,
                    action.tx_per_sec,
                    sql.tx_per_sec,
                    action.cpu_ms_per_tx / sql.cpu_ms_per_tx.max(1e-9),
                    action.cpu_ms_per_tx,
                    sql.cpu_ms_per_tx,
                ));
            }
        }
    }
    out.push_str("CPU shares are of the network's CPU time (all dstorage and CometBFT processes); signature and SQL time are thread CPU time measured inside the nodes.\n");
    out
}
