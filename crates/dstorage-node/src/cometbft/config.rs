//! A node's CometBFT home: `cometbft init` once, then our values written into `config/config.toml` on every start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use toml_edit::{value, DocumentMut, Item};

use super::error::{CometError, Result};
use super::version::tail;

/// Where one node's CometBFT lives and how it is wired: ports, ABCI address, peers, timing.
///
/// [`NodeLayout::new`] fills the local defaults (tuned for speed on one machine); the fields are public so a
/// caller can change any of them before [`init_home`] writes them into `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLayout {
    /// CometBFT's home: `<node home>/cometbft`.
    pub home: PathBuf,
    /// The node's name in CometBFT's logs and `/status`.
    pub moniker: String,
    /// Host the P2P listener binds (`127.0.0.1` for local networks; `0.0.0.0` to accept remote peers).
    pub p2p_host: String,
    /// P2P port.
    pub p2p_port: u16,
    /// RPC port; the RPC always listens on 127.0.0.1 because only the node itself talks to it.
    pub rpc_port: u16,
    /// Where CometBFT finds the ABCI application: `tcp://127.0.0.1:PORT`, `unix:///path`, or the name of a
    /// builtin app such as `kvstore` (used by tests that need no dstorage application).
    pub abci_addr: String,
    /// Peers to keep connected, `node_id@host:port`.
    pub persistent_peers: Vec<String>,
    /// How long CometBFT waits after a commit before the next height (`consensus.timeout_commit`).
    pub timeout_commit: Duration,
    /// How long a proposer may take before validators prevote nil (`consensus.timeout_propose`).
    pub timeout_propose: Duration,
    /// With no transactions, how long to wait before an empty block; zero makes blocks continuously.
    pub create_empty_blocks_interval: Duration,
    /// Maximum number of transactions in the mempool.
    pub mempool_size: u32,
    /// Largest transaction CometBFT accepts, in bytes.
    pub max_tx_bytes: u32,
    /// Whether CometBFT re-runs CheckTx on the mempool after every block (see [`NodeLayout::new`]).
    pub recheck: bool,
    /// CometBFT's log level, in its `module:level,*:level` syntax.
    pub log_level: String,
    /// Serve CometBFT's Prometheus metrics on `127.0.0.1:<port>`; `None` turns them off.
    pub prometheus_port: Option<u16>,
    /// CometBFT's `filter_peers`: ask the ABCI app (`/p2p/filter/id/…`, `/p2p/filter/addr/…`) before keeping a
    /// peer. Off by default (the builtin `kvstore` test app has no filter); dstorage nodes turn it on.
    pub filter_peers: bool,
}

impl NodeLayout {
    /// A layout with local defaults:
    ///
    /// - `timeout_commit` 100 ms: blocks as fast as a local network can agree, still batching transactions
    ///   (4 validators on 2 cores: 1,068 tx/s at 100 ms against 942 tx/s at 200 ms, p50 0.80 s against 0.95 s).
    /// - empty blocks after at most 1 s without transactions: the app hash of block `h` appears in the header of
    ///   `h+1`, so a write is provably committed only once the next block exists. CometBFT makes that block at
    ///   once after a block that changed the app hash (the app keeps the hash for blocks without
    ///   transactions), and an idle network makes one block a second instead of as many as it can.
    /// - `recheck` on: our app checks per-sender nonces, so after a block some mempool transactions become stale
    ///   (their nonce was used); recheck evicts them instead of letting proposers carry them to PrepareProposal.
    ///   The app keeps CheckTx's signature verdicts by tx hash, so a recheck costs a nonce lookup, not a signature.
    /// - mempool of 10,000 transactions of at most 1 MiB each.
    /// - log level `main:info,state:info,*:error`: start-up, one line per block, and every error.
    pub fn new(
        home: impl Into<PathBuf>,
        moniker: impl Into<String>,
        p2p_port: u16,
        rpc_port: u16,
    ) -> Self {
        NodeLayout {
            home: home.into(),
            moniker: moniker.into(),
            p2p_host: "127.0.0.1".to_owned(),
            p2p_port,
            rpc_port,
            abci_addr: "tcp://127.0.0.1:26658".to_owned(),
            persistent_peers: Vec::new(),
            timeout_commit: Duration::from_millis(100),
            timeout_propose: Duration::from_secs(3),
            create_empty_blocks_interval: Duration::from_secs(1),
            mempool_size: 10_000,
            max_tx_bytes: 1024 * 1024,
            recheck: true,
            log_level: "main:info,state:info,*:error".to_owned(),
            prometheus_port: None,
            filter_peers: false,
        }
    }

    /// Check what CometBFT would only refuse at start: zero or clashing ports, empty limits.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| {
            Err(CometError::Invalid(format!(
                "CometBFT layout for {}: {reason}",
                self.home.display()
            )))
        };
        let mut ports = vec![("p2p", self.p2p_port), ("rpc", self.rpc_port)];
        ports.extend(self.prometheus_port.map(|p| ("prometheus", p)));
        if let Some((name, _)) = ports.iter().find(|(_, port)| *port == 0) {
            return invalid(format!("{name} port is 0"));
        }
        for (i, (a, pa)) in ports.iter().enumerate() {
            if let Some((b, _)) = ports[i + 1..].iter().find(|(_, pb)| pb == pa) {
                return invalid(format!("{a} and {b} ports are both {pa}"));
            }
        }
        if self.moniker.is_empty() || self.abci_addr.is_empty() {
            return invalid("moniker and ABCI address must not be empty".into());
        }
        if self.mempool_size == 0 || self.max_tx_bytes == 0 {
            return invalid("mempool size and max_tx_bytes must be positive".into());
        }
        Ok(())
    }

    /// `<home>/config/config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.home.join("config").join("config.toml")
    }

    /// `<home>/config/genesis.json`.
    pub fn genesis_path(&self) -> PathBuf {
        self.home.join("config").join("genesis.json")
    }

    /// The RPC's base URL, `http://127.0.0.1:<rpc_port>`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }
}

/// Who a node is to the network: read from its CometBFT home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The P2P node id (hex of the node key's address), as used in `id@host:port` peer addresses.
    pub node_id: String,
    /// The validator's ed25519 public key, base64 (as in genesis and `/validators`).
    pub validator_pubkey: String,
    /// The validator's address: upper-case hex of the first 20 bytes of SHA-256(public key).
    pub validator_address: String,
}

/// Prepare a node's CometBFT home: run `cometbft init` if its config or keys are missing (this creates the node
/// key, the validator key and a placeholder genesis; existing keys are kept), then write the layout's values into
/// `config.toml`, keeping every other key and comment. Returns the node's identity.
///
/// Blocking; idempotent: running it again rewrites the same config and never regenerates keys.
pub fn init_home(cometbft_bin: &Path, layout: &NodeLayout) -> Result<NodeIdentity> {
    layout.validate()?;
    let config = layout.home.join("config");
    let needs_init = [
        "config.toml",
        "node_key.json",
        "priv_validator_key.json",
        "genesis.json",
    ]
    .iter()
    .any(|file| !config.join(file).exists());
    if needs_init {
        run(cometbft_bin, &["init", "--home"], &layout.home)?;
    }
    write_config(layout)?;
    read_identity(cometbft_bin, &layout.home)
}

/// Write the layout's values into an existing home's `config.toml`.
pub(crate) fn write_config(layout: &NodeLayout) -> Result<()> {
    let path = layout.config_path();
    let text = std::fs::read_to_string(&path).map_err(CometError::io("read", &path))?;
    let edited = edit_config(&text, layout).map_err(|reason| CometError::Config {
        path: path.clone(),
        reason,
    })?;
    if edited != text {
        write_atomic(&path, edited.as_bytes())?;
    }
    Ok(())
}

/// Read a home's node id (`cometbft show-node-id`) and validator key (`config/priv_validator_key.json`).
pub fn read_identity(cometbft_bin: &Path, home: &Path) -> Result<NodeIdentity> {
    let node_id = run(cometbft_bin, &["show-node-id", "--home"], home)?
        .trim()
        .to_owned();
    if node_id.len() != 40 || !node_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CometError::BadFile {
            path: home.join("config").join("node_key.json"),
            reason: format!(
                "`cometbft show-node-id` printed {node_id:?}, not a 40-digit hex node id"
            ),
        });
    }
    let key_path = home.join("config").join("priv_validator_key.json");
    let bad = |reason: String| CometError::BadFile {
        path: key_path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&key_path).map_err(CometError::io("read", &key_path))?;
    let key: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let key_type = key["pub_key"]["type"].as_str().unwrap_or_default();
    if key_type != "tendermint/PubKeyEd25519" {
        return Err(bad(format!(
            "validator key type is {key_type:?}; dstorage validators use ed25519"
        )));
    }
    let pubkey = key["pub_key"]["value"]
        .as_str()
        .ok_or_else(|| bad("pub_key.value is missing".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(pubkey)
        .map_err(|e| bad(format!("pub_key.value is not base64: {e}")))?;
    if bytes.len() != 32 {
        return Err(bad(format!(
            "ed25519 public key has {} bytes, not 32",
            bytes.len()
        )));
    }
    Ok(NodeIdentity {
        node_id,
        validator_pubkey: pubkey.to_owned(),
        validator_address: super::genesis::address_of(&bytes),
    })
}

/// Set our keys in CometBFT's `config.toml` text. Unknown keys, comments and order are kept.
fn edit_config(text: &str, layout: &NodeLayout) -> std::result::Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.to_string())?;
    let root = doc.as_table_mut();
    root["proxy_app"] = value(&layout.abci_addr);
    root["moniker"] = value(&layout.moniker);
    root["log_level"] = value(&layout.log_level);
    // The supervisor parses CometBFT's plain `I[...]`/`E[...]` lines to map levels.
    root["log_format"] = value("plain");
    root["abci"] = value("socket");
    root["filter_peers"] = value(layout.filter_peers);

    let rpc = table(root, "rpc")?;
    rpc["laddr"] = value(format!("tcp://127.0.0.1:{}", layout.rpc_port));
    // A transaction travels base64 inside JSON (4/3 larger) plus the envelope.
    rpc["max_body_bytes"] = value(i64::from(layout.max_tx_bytes) * 2 + 64 * 1024);
    rpc["pprof_laddr"] = value("");

    let p2p = table(root, "p2p")?;
    p2p["laddr"] = value(format!("tcp://{}:{}", layout.p2p_host, layout.p2p_port));
    p2p["persistent_peers"] = value(layout.persistent_peers.join(","));
    // Local networks put every node on 127.0.0.1, which a strict address book would refuse.
    p2p["addr_book_strict"] = value(false);
    p2p["allow_duplicate_ip"] = value(true);
    // CometBFT batches outgoing messages for this long; 100 ms by default adds latency to every vote.
    p2p["flush_throttle_timeout"] = value("10ms");

    let mempool = table(root, "mempool")?;
    mempool["recheck"] = value(layout.recheck);
    mempool["size"] = value(i64::from(layout.mempool_size));
    mempool["max_tx_bytes"] = value(i64::from(layout.max_tx_bytes));
    // Hashes of recently seen transactions, so a transaction gossiped back is not checked again; at least
    // twice the mempool so a full mempool's worth of committed transactions is still remembered.
    mempool["cache_size"] = value((i64::from(layout.mempool_size) * 2).max(10_000));

    let consensus = table(root, "consensus")?;
    consensus["timeout_commit"] = value(go_duration(layout.timeout_commit));
    consensus["timeout_propose"] = value(go_duration(layout.timeout_propose));
    consensus["create_empty_blocks"] = value(true);
    consensus["create_empty_blocks_interval"] =
        value(go_duration(layout.create_empty_blocks_interval));
    // How often a node re-sends block parts and votes to a lagging peer; 100 ms by default.
    consensus["peer_gossip_sleep_duration"] = value("10ms");

    // dstorage keeps its own record of transactions and results; CometBFT's index would duplicate it.
    table(root, "tx_index")?["indexer"] = value("null");

    let instrumentation = table(root, "instrumentation")?;
    instrumentation["prometheus"] = value(layout.prometheus_port.is_some());
    if let Some(port) = layout.prometheus_port {
        instrumentation["prometheus_listen_addr"] = value(format!("127.0.0.1:{port}"));
    }
    Ok(doc.to_string())
}

/// The table `name` of the document, created if absent.
fn table<'a>(
    root: &'a mut toml_edit::Table,
    name: &str,
) -> std::result::Result<&'a mut toml_edit::Table, String> {
    root.entry(name)
        .or_insert_with(|| Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or_else(|| format!("[{name}] is not a table"))
}

/// A duration in Go's syntax, as CometBFT's config expects (`"200ms"`, `"0s"`).
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Run `<bin> <args…> <home>` and return its stdout.
fn run(bin: &Path, args: &[&str], home: &Path) -> Result<String> {
    let output = Command::new(bin)
        .args(args)
        .arg(home)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CometError::BinaryNotRunnable {
            path: bin.to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(CometError::CommandFailed {
            command: format!("{} {} {}", bin.display(), args.join(" "), home.display()),
            status: output.status,
            stderr: tail(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Write a file so that a crash leaves either the old or the new content, never a torn one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(CometError::io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(CometError::io("rename into", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_use_seconds_or_milliseconds() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_secs(3)), "3s");
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn editing_keeps_comments_and_unknown_keys() {
        let text = "# top comment\nproxy_app = \"x\"\nunknown = 1\n\n[p2p]\n# peers comment\npersistent_peers = \"\"\n";
        let mut layout = NodeLayout::new("/h", "n0", 1000, 1001);
        layout.persistent_peers = vec!["a@127.0.0.1:1".into(), "b@127.0.0.1:2".into()];
        let edited = edit_config(text, &layout).unwrap();
        assert!(edited.contains("# top comment"), "{edited}");
        assert!(edited.contains("# peers comment"), "{edited}");
        assert!(edited.contains("unknown = 1"), "{edited}");
        let doc: DocumentMut = edited.parse().unwrap();
        assert_eq!(
            doc["p2p"]["persistent_peers"].as_str(),
            Some("a@127.0.0.1:1,b@127.0.0.1:2")
        );
        assert_eq!(doc["tx_index"]["indexer"].as_str(), Some("null"));
        assert_eq!(doc["proxy_app"].as_str(), Some("tcp://127.0.0.1:26658"));
    }

    #[test]
    fn clashing_or_zero_ports_are_refused() {
        let layout = NodeLayout::new("/h", "n0", 1000, 1000);
        let err = layout.validate().unwrap_err().to_string();
        assert!(err.contains("p2p and rpc ports are both 1000"), "{err}");
        let mut layout = NodeLayout::new("/h", "n0", 1000, 1001);
        layout.prometheus_port = Some(0);
        assert!(layout
            .validate()
            .unwrap_err()
            .to_string()
            .contains("prometheus port is 0"));
        assert!(NodeLayout::new("/h", "n0", 1000, 1001).validate().is_ok());
    }

    #[test]
    fn a_config_that_is_not_toml_is_refused() {
        let layout = NodeLayout::new("/h", "n0", 1000, 1001);
        assert!(edit_config("[p2p\n", &layout).is_err());
        assert!(edit_config("p2p = 3\n", &layout)
            .unwrap_err()
            .contains("[p2p]"));
    }
}
