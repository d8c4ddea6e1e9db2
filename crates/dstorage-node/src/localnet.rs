//! Local networks of real nodes on 127.0.0.1: the one way to lay out and run N validators, used by
//! `dstorage testnet`, `dstorage bench` and the system tests (through `dstorage testnet --init-only` and
//! [`start_command`]).
//!
//! [`plan`] lays out the validators (CometBFT homes, one genesis, peers: [`cometbft::plan_testnet`]) and writes
//! each node's `dstorage.toml`; [`Localnet`] runs one `dstorage start` process per node and stops them all.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use dstorage_client::Client;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cometbft;
use crate::config::NodeConfig;

/// One laid-out node: its home and its configuration (saved as `<home>/dstorage.toml`).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The node home (`<dir>/node<i>`).
    pub home: PathBuf,
    /// What `dstorage.toml` holds.
    pub config: NodeConfig,
}

/// Lay out (or reuse) `validators` validators under `dir` with ports from `base_port` (node i uses
/// `base_port + 4i ..= base_port + 4i + 3`: P2P, RPC, ABCI, API) and write each node's `dstorage.toml`, after
/// `tune` adjusted it. Planning the same folder again keeps every key and the genesis.
pub fn plan(
    bin: &Path,
    dir: &Path,
    validators: usize,
    base_port: u16,
    chain_id: &str,
    tune: impl Fn(&mut NodeConfig),
) -> anyhow::Result<Vec<Planned>> {
    plan_with_genesis(
        bin,
        dir,
        validators,
        base_port,
        chain_id,
        &serde_json::json!({}),
        tune,
    )
}

/// [`plan`] with a genesis app state (`dstorage testnet`'s validator parameters; `docs/ARCHITECTURE.md`,
/// "Validators"). Every node's CometBFT asks the app about each peer (`filter_peers = true`), so only
/// validators and the peers an operator lists may connect.
pub fn plan_with_genesis(
    bin: &Path,
    dir: &Path,
    validators: usize,
    base_port: u16,
    chain_id: &str,
    app_state: &serde_json::Value,
    tune: impl Fn(&mut NodeConfig),
) -> anyhow::Result<Vec<Planned>> {
    let plans =
        cometbft::plan_testnet_with(bin, dir, validators, base_port, chain_id, app_state, |l| {
            l.filter_peers = true
        })?;
    let mut out = Vec::with_capacity(plans.len());
    for p in plans {
        let mut config = NodeConfig::new(
            chain_id,
            &p.layout.moniker,
            &format!("127.0.0.1:{}", p.api_port),
            p.layout.p2p_port,
            p.layout.rpc_port,
            p.abci_port,
        );
        config.persistent_peers = p.layout.persistent_peers.clone();
        tune(&mut config);
        config.save(&p.node_home)?;
        out.push(Planned {
            home: p.node_home,
            config,
        });
    }
    Ok(out)
}

/// The command that runs the node in `home`: `<exe> start --home <home>`, reading nothing from stdin.
pub fn start_command(exe: &Path, home: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(exe);
    c.arg("start").arg("--home").arg(home).stdin(Stdio::null());
    c
}

/// Where a node process's own output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// This process's stdout and stderr (`dstorage testnet`).
    Inherit,
    /// `<home>/node.log`, created anew (`dstorage bench`).
    LogFile,
}

/// A running node process.
#[derive(Debug)]
pub struct LocalNode {
    /// Its home.
    pub home: PathBuf,
    /// Its configuration.
    pub config: NodeConfig,
    /// The `dstorage start` process.
    pub child: tokio::process::Child,
    /// Its process id.
    pub pid: u32,
}

/// Running `dstorage start` processes, one per planned node. Dropping it kills them.
#[derive(Debug)]
pub struct Localnet {
    /// The nodes, in plan order.
    pub nodes: Vec<LocalNode>,
}

impl Localnet {
    /// Start `<exe> start --home` for every planned node. Must be called inside a tokio runtime.
    pub fn spawn(exe: &Path, planned: Vec<Planned>, output: Output) -> anyhow::Result<Localnet> {
        let mut nodes = Vec::with_capacity(planned.len());
        for p in planned {
            let mut command = start_command(exe, &p.home);
            if output == Output::LogFile {
                let log = std::fs::File::create(p.home.join("node.log"))?;
                command.stdout(log.try_clone()?).stderr(log);
            }
            let mut command = tokio::process::Command::from(command);
            let child = command
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting the node in {}", p.home.display()))?;
            let pid = child.id().context("the node exited at once")?;
            nodes.push(LocalNode {
                home: p.home,
                config: p.config,
                child,
                pid,
            });
        }
        Ok(Localnet { nodes })
    }

    /// Wait until every node's API reports at least `height` and is not catching up, failing if a node exits
    /// or `timeout` passes first.
    pub async fn wait_ready(&mut self, height: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        for node in &mut self.nodes {
            let client = Client::new(&node.config.api_addr);
            loop {
                if let Some(status) = node.child.try_wait()? {
                    bail!(
                        "node {} exited during start ({status}); see {}",
                        node.config.moniker,
                        node.home.join("node.log").display()
                    );
                }
                if let Ok(s) = client.status().await {
                    if s.height >= height && !s.catching_up {
                        break;
                    }
                }
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "node {} did not reach height {height} within {timeout:?}",
                        node.config.moniker
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Wait until some node exits; returns its index and status.
    pub async fn any_exit(&mut self) -> (usize, std::io::Result<ExitStatus>) {
        let waits = self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|(i, n)| Box::pin(async move { (i, n.child.wait().await) }));
        futures::future::select_all(waits).await.0
    }

    /// Send SIGTERM to every node, wait up to `grace` for each, then kill what is left.
    pub async fn stop(&mut self, grace: Duration) {
        for node in &self.nodes {
            if let Ok(pid) = i32::try_from(node.pid) {
                // Already gone is fine: there is nothing left to stop.
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        for node in &mut self.nodes {
            if tokio::time::timeout(grace, node.child.wait())
                .await
                .is_err()
            {
                let _ = node.child.kill().await;
            }
        }
    }
}
