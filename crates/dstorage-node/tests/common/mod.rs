//! Shared helpers of the system tests: real `dstorage start` processes (each supervising a real CometBFT) on
//! free local ports, waits with deadlines, SIGTERM/SIGKILL, per-height app hashes, and cleanup on drop.
//!
//! Every wait here polls with a deadline and fails with what it last saw; nothing sleeps to hide a race.
//! `DSTORAGE_COMETBFT` is inherited by the child processes when set (the Makefile sets it); otherwise the node
//! finds the cached pinned binary itself.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use base64::Engine as _;
use dstorage_auth::SecretKey;
use dstorage_client::api::StatusResponse;
use dstorage_client::{Client, Signer};
use dstorage_node::cometbft::{find_free_ports, CometRpc, PORTS_PER_NODE};
use dstorage_node::config::NodeConfig;
use dstorage_node::localnet::start_command;
use dstorage_types::identity::KeyType;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The chain id of every system-test network.
pub const CHAIN_ID: &str = "dstorage-system";

/// How long a node may take to answer `/health` after its process starts.
pub const START_WAIT: Duration = Duration::from_secs(60);

/// How long a stopped node may take to exit after SIGTERM.
pub const STOP_WAIT: Duration = Duration::from_secs(20);

/// How often polls ask again.
pub const POLL: Duration = Duration::from_millis(50);

/// The `dstorage` binary under test.
pub const DSTORAGE: &str = env!("CARGO_BIN_EXE_dstorage");

/// Poll `f` until it returns `Ok`, or panic after `timeout` naming `what` and the last error.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(last) => {
                if tokio::time::Instant::now() >= deadline {
                    panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A fresh key and its signer (ed25519, the cheapest standard to verify).
pub fn new_signer() -> Signer {
    Signer::new(SecretKey::generate(KeyType::Ed25519), "ed25519").expect("ed25519 signer")
}

/// One `dstorage start` process and what the tests need to reach it.
pub struct Node {
    /// Position in its network (node0, node1, ...).
    pub index: usize,
    /// The node home.
    pub home: PathBuf,
    /// Its configuration as laid out.
    pub config: NodeConfig,
    child: Option<Child>,
    starts: usize,
}

impl Node {
    fn new(index: usize, home: PathBuf) -> Node {
        let config = NodeConfig::load(&home).expect("node config laid out");
        Node {
            index,
            home,
            config,
            child: None,
            starts: 0,
        }
    }

    /// The API client of this node.
    pub fn client(&self) -> Client {
        Client::new(format!("http://{}", self.config.api_addr))
    }

    /// CometBFT's RPC of this node.
    pub fn rpc(&self) -> CometRpc {
        CometRpc::local(self.config.rpc_port).expect("rpc client")
    }

    /// Where this node's process output goes (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.home.join("node.log")
    }

    /// The last `lines` lines of the node's output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the process was started and has not been stopped or killed by the test.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The `dstorage start` process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Spawn `dstorage start --home <home>` (does not wait for it).
    pub fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "node{} is already running",
            self.index
        );
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("node log file");
        use std::io::Write as _;
        writeln!(&log, "===== test: start #{} =====", self.starts).expect("write log");
        // The same command `dstorage testnet` and `dstorage bench` run (`localnet`).
        let child = start_command(std::path::Path::new(DSTORAGE), &self.home)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn dstorage start");
        self.child = Some(child);
    }

    /// Panic with the log tail if the process exited on its own.
    fn check_alive(&mut self) -> Result<(), String> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Err(format!(
                    "node{} exited by itself ({status}); log tail:\n{}",
                    self.index,
                    self.log_tail(40)
                ));
            }
        }
        Ok(())
    }

    /// Wait until `/health` answers 200 (CometBFT's RPC is up and the app is not failed).
    pub async fn wait_healthy(&mut self) {
        let client = self.client();
        let deadline = tokio::time::Instant::now() + START_WAIT;
        loop {
            if let Err(e) = self.check_alive() {
                panic!("{e}");
            }
            let last = match client.health().await {
                Ok(true) => return,
                Ok(false) => "unhealthy".to_string(),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "node{} not healthy after {START_WAIT:?} (last: {last}); log tail:\n{}",
                    self.index,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Spawn and wait until healthy.
    pub async fn start(&mut self) {
        self.spawn();
        self.wait_healthy().await;
    }

    /// The CometBFT child of this node's `dstorage start` process.
    pub fn comet_pid(&self) -> Option<i32> {
        let parent = self.pid()? as i32;
        child_pids(parent)
            .into_iter()
            .find(|&pid| process_name(pid).as_deref() == Some("cometbft"))
    }

    /// SIGTERM the node and wait for it to exit; returns its status. Panics if it takes longer than
    /// [`STOP_WAIT`] or if its CometBFT outlives it.
    pub async fn stop(&mut self) -> ExitStatus {
        let comet = self
            .comet_pid()
            .unwrap_or_else(|| panic!("node{} runs no CometBFT child", self.index));
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("node{} is not running", self.index));
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node{} did not stop within {STOP_WAIT:?} of SIGTERM; log tail:\n{}",
                    self.index,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(POLL).await;
        };
        wait_gone(comet, "CometBFT after its node stopped").await;
        status
    }

    /// SIGKILL the `dstorage start` process (CometBFT is left to notice on its own). Returns the killed pid and
    /// its CometBFT's pid.
    pub fn kill9(&mut self) -> (i32, Option<i32>) {
        let comet = self.comet_pid();
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("node{} is not running", self.index));
        let pid = child.id() as i32;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap killed node");
        (pid, comet)
    }

    /// `/v1/status`.
    pub async fn status(&self) -> Result<StatusResponse, String> {
        self.client().status().await.map_err(|e| e.to_string())
    }

    /// The app's last committed height.
    pub async fn height(&self) -> Result<u64, String> {
        Ok(self.status().await?.height)
    }

    /// Wait until the app has committed `height`.
    pub async fn wait_height(&self, height: u64, timeout: Duration) -> u64 {
        eventually(
            &format!("node{} to reach height {height}", self.index),
            timeout,
            || async {
                let h = self.height().await?;
                if h >= height {
                    Ok(h)
                } else {
                    Err(format!("height {h}"))
                }
            },
        )
        .await
    }

    /// What this node recorded for height `h`: the app hash its app returned from FinalizeBlock (CometBFT's
    /// `/block_results`, hex), and the changeset hash its API serves.
    pub async fn height_record(&self, h: u64) -> Result<HeightRecord, String> {
        let url = format!(
            "http://127.0.0.1:{}/block_results?height={h}",
            self.config.rpc_port
        );
        let body: serde_json::Value = reqwest::get(&url)
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let b64 = body
            .pointer("/result/app_hash")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("no result.app_hash in {url}: {body}"))?;
        let app_hash = hex::encode_upper(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("app_hash {b64:?} is not base64: {e}"))?,
        );
        let changeset_hash = self
            .client()
            .changeset(h)
            .await
            .map_err(|e| e.to_string())?
            .hash;
        Ok(HeightRecord {
            height: h,
            app_hash,
            changeset_hash,
        })
    }

    /// [`Node::height_record`] for each of `1..=last`.
    pub async fn height_records(&self, last: u64) -> Vec<HeightRecord> {
        let mut out = Vec::new();
        for h in 1..=last {
            out.push(
                self.height_record(h)
                    .await
                    .unwrap_or_else(|e| panic!("node{} height {h}: {e}", self.index)),
            );
        }
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let comet = self.comet_pid();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = comet {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if std::thread::panicking() {
            eprintln!(
                "----- node{} log tail ({}) -----\n{}",
                self.index,
                self.log_path().display(),
                self.log_tail(60)
            );
        }
    }
}

/// One node's view of one height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeightRecord {
    /// The height.
    pub height: u64,
    /// The app hash after executing it (upper-case hex).
    pub app_hash: String,
    /// SHA-256 of its canonical changeset (hex).
    pub changeset_hash: String,
}

/// A local network of `dstorage start` processes in a temporary folder. Dropping it kills them all.
pub struct Net {
    /// The nodes, in order. Declared before `dir` so they die before their folder is removed.
    pub nodes: Vec<Node>,
    /// The folder holding every node home.
    pub dir: tempfile::TempDir,
}

impl Drop for Net {
    fn drop(&mut self) {
        // Keep the homes (databases, CometBFT data, node.log) of a failed test, or of any with
        // DSTORAGE_KEEP_TEST_DIRS set, for a look afterwards.
        if std::thread::panicking() || std::env::var_os("DSTORAGE_KEEP_TEST_DIRS").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept the network's folder {}", self.dir.path().display());
        }
    }
}

impl Net {
    /// Lay out `n` validators with `dstorage testnet --init-only` on free ports (nothing runs yet).
    pub fn layout(n: usize) -> Net {
        Net::layout_with(n, &[], 0).0
    }

    /// Like [`Net::layout`], with extra `dstorage testnet` arguments (e.g. genesis parameters) and `extra`
    /// ports reserved after the validators' for nodes the test adds itself ([`Net::adopt`]). Returns the net and
    /// the first extra port.
    pub fn layout_with(n: usize, args: &[&str], extra: u16) -> (Net, u16) {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = find_free_ports(n as u16 * PORTS_PER_NODE + extra).expect("free ports");
        let out = Command::new(DSTORAGE)
            .args(["testnet", "--init-only", "--chain-id", CHAIN_ID])
            .arg("--validators")
            .arg(n.to_string())
            .arg("--dir")
            .arg(dir.path())
            .arg("--base-port")
            .arg(base.to_string())
            .args(args)
            .output()
            .expect("run dstorage testnet --init-only");
        assert!(
            out.status.success(),
            "dstorage testnet --init-only failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let nodes = (0..n)
            .map(|i| Node::new(i, dir.path().join(format!("node{i}"))))
            .collect();
        (Net { nodes, dir }, base + n as u16 * PORTS_PER_NODE)
    }

    /// Add the node laid out in `home` (its `dstorage.toml` written) as the next node of the net.
    pub fn adopt(&mut self, home: PathBuf) -> usize {
        let index = self.nodes.len();
        self.nodes.push(Node::new(index, home));
        index
    }

    /// Lay out one node with `dstorage init` on free ports.
    pub fn init_single() -> Net {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = find_free_ports(PORTS_PER_NODE).expect("free ports");
        let home = dir.path().join("node0");
        let out = Command::new(DSTORAGE)
            .args(["init", "--chain-id", CHAIN_ID])
            .arg("--home")
            .arg(&home)
            .arg("--base-port")
            .arg(base.to_string())
            .arg("--api-addr")
            .arg(format!("127.0.0.1:{}", base + 3))
            .output()
            .expect("run dstorage init");
        assert!(
            out.status.success(),
            "dstorage init failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Net {
            nodes: vec![Node::new(0, home)],
            dir,
        }
    }

    /// Lay out `n` validators, start them all, and wait until each is healthy and has committed height 1.
    pub async fn start(n: usize) -> Net {
        let mut net = Net::layout(n);
        for node in &mut net.nodes {
            node.spawn();
        }
        for node in &mut net.nodes {
            node.wait_healthy().await;
        }
        for node in &net.nodes {
            node.wait_height(1, START_WAIT).await;
        }
        net
    }

    /// The nodes the test has not stopped.
    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    /// Wait until every running node's app has committed `height`; returns the lowest height seen.
    pub async fn wait_height(&self, height: u64, timeout: Duration) -> u64 {
        let mut lowest = u64::MAX;
        for node in self.running() {
            lowest = lowest.min(node.wait_height(height, timeout).await);
        }
        lowest
    }

    /// Assert that every running node recorded the same app hash and changeset hash at each height `1..=last`.
    pub async fn assert_same_history(&self, last: u64) {
        let mut reference: Option<(usize, Vec<HeightRecord>)> = None;
        for node in self.running() {
            let records = node.height_records(last).await;
            match &reference {
                None => reference = Some((node.index, records)),
                Some((i, expected)) => {
                    for (a, b) in expected.iter().zip(&records) {
                        assert_eq!(
                            a, b,
                            "node{i} and node{} disagree at height {}",
                            node.index, a.height
                        );
                    }
                }
            }
        }
    }
}

/// Process ids whose parent is `parent` (from /proc).
pub fn child_pids(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if proc_stat(pid).is_some_and(|(_, _, ppid)| ppid == parent) {
            out.push(pid);
        }
    }
    out
}

/// (name, state, parent pid) of a process from `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(String, char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((name, state, ppid))
}

/// The command name of a live (non-zombie) process.
pub fn process_name(pid: i32) -> Option<String> {
    match proc_stat(pid) {
        Some((name, state, _)) if state != 'Z' && state != 'X' => Some(name),
        _ => None,
    }
}

/// Wait until `pid` no longer runs `cometbft` (exited, reaped or a zombie).
pub async fn wait_gone(pid: i32, what: &str) {
    eventually(
        &format!("{what} (pid {pid}) to exit"),
        STOP_WAIT,
        || async {
            match process_name(pid) {
                Some(name) if name == "cometbft" => Err(format!("pid {pid} still runs {name}")),
                _ => Ok(()),
            }
        },
    )
    .await
}

/// Assert that `result` is the API's error with HTTP `status` and `code`, its message
/// holding `needle`; `what` names the request in the failure.
#[track_caller]
pub fn assert_api_error<T: std::fmt::Debug>(
    result: Result<T, dstorage_client::ClientError>,
    status: u16,
    code: &str,
    needle: &str,
    what: &str,
) {
    match result {
        Err(dstorage_client::ClientError::Api {
            status: got_status,
            code: got_code,
            error,
            ..
        }) => {
            assert_eq!(
                (got_status, got_code.as_str()),
                (status, code),
                "{what}: {error}"
            );
            assert!(error.contains(needle), "{what}: {error}");
        }
        other => panic!("{what}: expected {status} {code}, got {other:?}"),
    }
}
