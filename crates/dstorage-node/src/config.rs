//! The node's own configuration, `<home>/dstorage.toml`: the one file an operator edits. `dstorage start`
//! derives CometBFT's `config.toml` from it on every start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::cometbft::NodeLayout;

/// The file name inside a node home.
pub const CONFIG_FILE: &str = "dstorage.toml";

/// Default address of the HTTP API of `dstorage devnet`, and the CLI's default node.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8088";

/// Everything `dstorage start` needs to run a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The network's chain id (must equal the genesis file's).
    pub chain_id: String,
    /// The node's name.
    pub moniker: String,
    /// Where the HTTP API listens.
    pub api_addr: String,
    /// CometBFT peer-to-peer port.
    pub p2p_port: u16,
    /// Host CometBFT's P2P listener binds.
    #[serde(default = "default_p2p_host")]
    pub p2p_host: String,
    /// CometBFT RPC port (127.0.0.1 only; the node is its only client).
    pub rpc_port: u16,
    /// Port of our ABCI server on 127.0.0.1.
    pub abci_port: u16,
    /// Peers, `node_id@host:port`.
    #[serde(default)]
    pub persistent_peers: Vec<String>,
    /// CometBFT's `timeout_commit`, in milliseconds.
    #[serde(default = "default_timeout_commit_ms")]
    pub timeout_commit_ms: u64,
    /// Largest transaction, bytes (consensus-critical: equal on all nodes).
    #[serde(default = "default_max_tx_bytes")]
    pub max_tx_bytes: usize,
    /// Largest bundle of transactions, bytes (consensus-critical: equal on all nodes).
    #[serde(default = "default_max_bundle_bytes")]
    pub max_bundle_bytes: usize,
    /// Most transactions the API puts in one bundle; 1 submits every transaction bare (local setting).
    #[serde(default = "default_bundle_max_txs")]
    pub bundle_max_txs: usize,
    /// SQLite VM steps one transaction (or read) may use (consensus-critical).
    #[serde(default = "default_cost_limit")]
    pub cost_limit_per_tx: u64,
    /// Recent blocks whose changesets are kept; 0 keeps all.
    #[serde(default = "default_retention")]
    pub changeset_retention: u64,
    /// CometBFT log level.
    #[serde(default = "default_comet_log")]
    pub cometbft_log_level: String,
    /// Ask the app before keeping a peer (CometBFT `filter_peers`): only current validators' node ids and
    /// `allowed_peers` are accepted (docs/ARCHITECTURE.md, "Validators").
    #[serde(default = "default_filter_peers")]
    pub filter_peers: bool,
    /// Node ids (40 hex digits) this node accepts as peers besides the current validators: sentries, full
    /// nodes, a candidate before its approval. A local setting.
    #[serde(default)]
    pub allowed_peers: Vec<String>,
}

fn default_p2p_host() -> String {
    "127.0.0.1".into()
}
fn default_timeout_commit_ms() -> u64 {
    100
}
fn default_max_tx_bytes() -> usize {
    256 * 1024
}
fn default_max_bundle_bytes() -> usize {
    1024 * 1024
}
fn default_bundle_max_txs() -> usize {
    512
}
fn default_cost_limit() -> u64 {
    10_000_000
}
fn default_retention() -> u64 {
    100_000
}
fn default_filter_peers() -> bool {
    true
}
fn default_comet_log() -> String {
    "main:info,state:info,*:error".into()
}

impl NodeConfig {
    /// A configuration with local defaults for the given ports.
    pub fn new(
        chain_id: &str,
        moniker: &str,
        api_addr: &str,
        p2p_port: u16,
        rpc_port: u16,
        abci_port: u16,
    ) -> NodeConfig {
        NodeConfig {
            chain_id: chain_id.into(),
            moniker: moniker.into(),
            api_addr: api_addr.into(),
            p2p_port,
            p2p_host: default_p2p_host(),
            rpc_port,
            abci_port,
            persistent_peers: Vec::new(),
            timeout_commit_ms: default_timeout_commit_ms(),
            max_tx_bytes: default_max_tx_bytes(),
            max_bundle_bytes: default_max_bundle_bytes(),
            bundle_max_txs: default_bundle_max_txs(),
            cost_limit_per_tx: default_cost_limit(),
            changeset_retention: default_retention(),
            cometbft_log_level: default_comet_log(),
            filter_peers: default_filter_peers(),
            allowed_peers: Vec::new(),
        }
    }

    /// Read `<home>/dstorage.toml`.
    pub fn load(home: &Path) -> anyhow::Result<NodeConfig> {
        let path = home.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (run `dstorage init --home {}` first)",
                path.display(),
                home.display()
            )
        })?;
        toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))
    }

    /// Write `<home>/dstorage.toml`.
    pub fn save(&self, home: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(home)
            .with_context(|| format!("cannot create {}", home.display()))?;
        let path = home.join(CONFIG_FILE);
        let text = toml::to_string_pretty(self).context("encoding the node config")?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// CometBFT's home inside the node home.
    pub fn cometbft_home(home: &Path) -> PathBuf {
        home.join("cometbft")
    }

    /// The SQLite database inside the node home.
    pub fn db_path(home: &Path) -> PathBuf {
        home.join("data").join("dstorage.sqlite")
    }

    /// The Unix socket CometBFT reaches the ABCI application on, `<home>/abci.sock` (absolute), or `None` when
    /// that path is too long for a socket address and the node uses TCP on `abci_port` instead.
    ///
    /// A Unix socket because the ABCI server (tower-abci) does not set TCP_NODELAY: on the mempool connection
    /// each CheckTx answer is followed by a small Flush answer, and Nagle's algorithm held the next answer until
    /// CometBFT's delayed ACK (40 ms on Linux), which made every broadcast take ~40 ms. Unix sockets have
    /// neither.
    pub fn abci_socket(home: &Path) -> Option<PathBuf> {
        let home = if home.is_absolute() {
            home.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(home)
        };
        let path = home.join("abci.sock");
        // sun_path holds 108 bytes including the terminating NUL; stay well inside it.
        (path.as_os_str().len() <= 100).then_some(path)
    }

    /// The CometBFT layout this configuration implies.
    pub fn layout(&self, home: &Path) -> NodeLayout {
        let mut layout = NodeLayout::new(
            Self::cometbft_home(home),
            self.moniker.clone(),
            self.p2p_port,
            self.rpc_port,
        );
        layout.p2p_host = self.p2p_host.clone();
        layout.abci_addr = match Self::abci_socket(home) {
            Some(path) => format!("unix://{}", path.display()),
            None => format!("tcp://127.0.0.1:{}", self.abci_port),
        };
        layout.persistent_peers = self.persistent_peers.clone();
        layout.timeout_commit = Duration::from_millis(self.timeout_commit_ms);
        layout.log_level = self.cometbft_log_level.clone();
        layout.filter_peers = self.filter_peers;
        // CometBFT's limit covers whatever one of its transactions carries: a bare transaction or a bundle.
        layout.max_tx_bytes =
            u32::try_from(self.max_tx_bytes.max(self.max_bundle_bytes)).unwrap_or(u32::MAX);
        layout
    }

    /// The application settings this configuration implies.
    pub fn app_config(&self, home: &Path) -> dstorage_app::AppConfig {
        let mut c = dstorage_app::AppConfig::new(Self::db_path(home));
        c.max_tx_bytes = self.max_tx_bytes;
        c.max_bundle_bytes = self.max_bundle_bytes;
        c.cost_limit_per_tx = self.cost_limit_per_tx;
        c.changeset_retention = (self.changeset_retention > 0).then_some(self.changeset_retention);
        c.allowed_peers = self
            .allowed_peers
            .iter()
            .map(|id| id.trim().to_ascii_lowercase())
            .collect();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = NodeConfig::new("chain-x", "n0", "127.0.0.1:9999", 1, 2, 3);
        c.persistent_peers = vec!["abc@127.0.0.1:5".into()];
        c.save(dir.path()).unwrap();
        assert_eq!(NodeConfig::load(dir.path()).unwrap(), c);
    }

    #[test]
    fn loading_a_missing_config_says_how_to_create_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", NodeConfig::load(dir.path()).unwrap_err());
        assert!(err.contains("dstorage init"), "{err}");
    }
}
