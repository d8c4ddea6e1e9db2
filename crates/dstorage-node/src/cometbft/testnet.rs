//! A local network of N nodes on 127.0.0.1: one folder per node, distinct ports, one shared genesis.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{init_home, write_config, NodeIdentity, NodeLayout};
use super::error::{CometError, Result};
use super::genesis::{write_genesis_bytes, GenesisSpec, GenesisValidator};

/// Ports each node takes from the base port: P2P, RPC, ABCI, HTTP API, in that order.
pub const PORTS_PER_NODE: u16 = 4;

/// The file in a testnet root that records what the network was planned as.
const PLAN_FILE: &str = "testnet.json";

/// One node of a planned testnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// 0-based position in the network.
    pub index: usize,
    /// The node's own folder, `<root>/node<index>`; its CometBFT home is `layout.home` (`…/cometbft`).
    pub node_home: PathBuf,
    /// The CometBFT layout: moniker `node<index>`, ports, peers (all other nodes).
    pub layout: NodeLayout,
    /// The port the dstorage ABCI server listens on (`layout.abci_addr` is `tcp://127.0.0.1:<abci_port>`).
    pub abci_port: u16,
    /// The port of the node's HTTP API.
    pub api_port: u16,
    /// The node's P2P id and validator key.
    pub identity: NodeIdentity,
}

/// What a testnet root was planned as; kept in `<root>/testnet.json` so re-planning keeps the same chain.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct PlanRecord {
    chain_id: String,
    validators: usize,
    genesis_time: String,
    /// The app state given when first planned (before the validators' contacts are added); re-planning with
    /// another one is refused like another chain id. Absent in plans written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_state: Option<serde_json::Value>,
}

/// Lay out `n` validators under `root` with local defaults, an empty app state and ports from `base_port`
/// (node `i` takes `base_port + 4i ..= base_port + 4i + 3`: P2P, RPC, ABCI, API). See [`plan_testnet_with`].
pub fn plan_testnet(
    cometbft_bin: &Path,
    root: &Path,
    n: usize,
    base_port: u16,
    chain_id: &str,
) -> Result<Vec<NodePlan>> {
    plan_testnet_with(
        cometbft_bin,
        root,
        n,
        base_port,
        chain_id,
        &serde_json::json!({}),
        |_| {},
    )
}

/// Lay out `n` validators under `root`: initialise each node's CometBFT home, peer every node with all others,
/// and write one genesis (all `n` validators, equal power, `app_state`) byte-identically to every node. The
/// validators' contacts (public key, node id, P2P address) are added to `app_state.validators.nodes`, which the
/// app's peer filter reads (docs/ARCHITECTURE.md, "Validators"); `app_state` must then be a JSON object.
/// `customize` may change each node's layout (timeouts, ABCI address) before its config is written.
///
/// Idempotent: on an existing root it keeps every key and the genesis time, so the chain survives restarts; it
/// refuses a root planned with another chain id or validator count, which would fork the chain.
pub fn plan_testnet_with(
    cometbft_bin: &Path,
    root: &Path,
    n: usize,
    base_port: u16,
    chain_id: &str,
    app_state: &serde_json::Value,
    customize: impl Fn(&mut NodeLayout),
) -> Result<Vec<NodePlan>> {
    if n == 0 {
        return Err(CometError::Invalid(
            "a testnet needs at least one node".into(),
        ));
    }
    let last_port = u32::from(base_port) + (n as u32).saturating_mul(u32::from(PORTS_PER_NODE)) - 1;
    if n > usize::from(u16::MAX) || last_port > u32::from(u16::MAX) || base_port == 0 {
        return Err(CometError::PortOverflow {
            base_port,
            nodes: n,
        });
    }
    std::fs::create_dir_all(root).map_err(CometError::io("create folder", root))?;
    let record = read_or_new_plan(root, n, chain_id, app_state)?;

    let mut plans = Vec::with_capacity(n);
    for index in 0..n {
        let port =
            |offset: usize| base_port + (index * usize::from(PORTS_PER_NODE) + offset) as u16;
        let node_home = root.join(format!("node{index}"));
        let mut layout = NodeLayout::new(
            node_home.join("cometbft"),
            format!("node{index}"),
            port(0),
            port(1),
        );
        let abci_port = port(2);
        layout.abci_addr = format!("tcp://127.0.0.1:{abci_port}");
        customize(&mut layout);
        let identity = init_home(cometbft_bin, &layout)?;
        plans.push(NodePlan {
            index,
            node_home,
            layout,
            abci_port,
            api_port: port(3),
            identity,
        });
    }

    // Peers are known only once every home has its node key.
    let addresses: Vec<String> = plans
        .iter()
        .map(|p| format!("{}@127.0.0.1:{}", p.identity.node_id, p.layout.p2p_port))
        .collect();
    for plan in &mut plans {
        plan.layout.persistent_peers = addresses
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != plan.index)
            .map(|(_, a)| a.clone())
            .collect();
        write_config(&plan.layout)?;
    }

    let mut app_state = app_state.clone();
    let nodes: Vec<serde_json::Value> = plans
        .iter()
        .map(|p| {
            let key = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                &p.identity.validator_pubkey,
            )
            .unwrap_or_default();
            serde_json::json!({
                "pub_key": hex::encode(key),
                "node_id": p.identity.node_id,
                "address": format!("{}:{}", p.layout.p2p_host, p.layout.p2p_port),
            })
        })
        .collect();
    let section = app_state
        .as_object_mut()
        .ok_or_else(|| CometError::Invalid("the genesis app state must be a JSON object".into()))?
        .entry("validators")
        .or_insert_with(|| serde_json::json!({}));
    section
        .as_object_mut()
        .ok_or_else(|| CometError::Invalid("app_state.validators must be a JSON object".into()))?
        .insert("nodes".into(), serde_json::Value::Array(nodes));
    let genesis = GenesisSpec {
        chain_id: chain_id.to_owned(),
        validators: plans
            .iter()
            .map(|p| {
                GenesisValidator::new(
                    p.identity.validator_pubkey.clone(),
                    p.layout.moniker.clone(),
                )
            })
            .collect(),
        genesis_time: record.genesis_time.clone(),
        app_state,
        initial_height: 1,
    }
    .to_json()?;
    for plan in &plans {
        write_genesis_bytes(&plan.layout.home, &genesis)?;
    }
    write_plan(root, &record)?;
    Ok(plans)
}

/// The recorded plan of `root` if it matches, else a new one timed now.
fn read_or_new_plan(
    root: &Path,
    n: usize,
    chain_id: &str,
    app_state: &serde_json::Value,
) -> Result<PlanRecord> {
    let path = root.join(PLAN_FILE);
    let describe = |chain_id: &str, n: usize| format!("chain {chain_id:?} with {n} validators");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let record: PlanRecord =
                serde_json::from_slice(&bytes).map_err(|e| CometError::BadFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if record.chain_id != chain_id || record.validators != n {
                return Err(CometError::TestnetMismatch {
                    root: root.to_owned(),
                    existing: describe(&record.chain_id, record.validators),
                    requested: describe(chain_id, n),
                });
            }
            if let Some(existing) = record.app_state.as_ref().filter(|a| *a != app_state) {
                return Err(CometError::TestnetMismatch {
                    root: root.to_owned(),
                    existing: format!("app state {existing}"),
                    requested: format!("app state {app_state}"),
                });
            }
            Ok(record)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PlanRecord {
            chain_id: chain_id.to_owned(),
            validators: n,
            // Planning time, recorded so re-planning writes the same genesis; seconds are enough.
            genesis_time: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            app_state: Some(app_state.clone()),
        }),
        Err(e) => Err(CometError::Io {
            action: "read",
            path,
            source: e,
        }),
    }
}

fn write_plan(root: &Path, record: &PlanRecord) -> Result<()> {
    let path = root.join(PLAN_FILE);
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| CometError::BadFile {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    super::config::write_atomic(&path, &bytes)
}

/// Lowest and highest base port [`find_free_ports`] picks from: below Linux's ephemeral range (32768+), so
/// outgoing connections do not take our ports while a network starts.
const FREE_PORT_RANGE: (u16, u16) = (20_000, 32_000);

/// Find `count` consecutive ports that are free on 127.0.0.1 now and return the first, e.g. for
/// [`plan_testnet`]'s base port in tests that run in parallel. Ranges handed out by this process are never
/// handed out again by it, so parallel tests in one binary cannot collide; other processes calling this
/// function are kept off the range by a lock file per port (see [`reserve_across_processes`]); any other
/// process is avoided by binding each port once (one that binds after the check can still take a port).
pub fn find_free_ports(count: u16) -> Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<Vec<(u16, u16)>> = Mutex::new(Vec::new());

    let (low, high) = FREE_PORT_RANGE;
    if count == 0 || count > (high - low) / 4 {
        return Err(CometError::Invalid(format!(
            "cannot look for {count} consecutive free ports"
        )));
    }
    let span = high - low - count;
    for attempt in 0u64..200 {
        // A random start (std's hasher is seeded randomly per process) spreads parallel test processes apart.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(attempt);
        let base = low + (hasher.finish() % u64::from(span)) as u16;
        let end = base + count;
        let mut handed_out = HANDED_OUT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if handed_out.iter().any(|&(b, e)| base < e && b < end) {
            continue;
        }
        if (base..end).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
            && reserve_across_processes(base, end)
        {
            handed_out.push((base, end));
            return Ok(base);
        }
    }
    Err(CometError::Invalid(format!(
        "found no {count} consecutive free ports in {low}..{high}"
    )))
}

/// Lock `<tmp>/dstorage-ports/<port>` for each port of `base..end` until this process exits, so parallel test
/// processes (which each plan networks between checking ports and binding them) never pick overlapping ranges.
/// Returns false if another process holds one of them. Best effort: if locking is not possible at all (no temp
/// folder, no file locks), the range counts as reserved.
fn reserve_across_processes(base: u16, end: u16) -> bool {
    use std::sync::Mutex;
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());

    let dir = std::env::temp_dir().join("dstorage-ports");
    if std::fs::create_dir_all(&dir).is_err() {
        return true;
    }
    let mut locks = Vec::new();
    for port in base..end {
        let file = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        {
            Ok(file) => file,
            Err(_) => return true,
        };
        match file.try_lock() {
            Ok(()) => locks.push(file),
            // Dropping `locks` releases what this attempt took.
            Err(std::fs::TryLockError::WouldBlock) => return false,
            Err(std::fs::TryLockError::Error(_)) => return true,
        }
    }
    HELD.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .extend(locks);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_ranges_do_not_overlap_within_a_process() {
        let a = find_free_ports(16).unwrap();
        let b = find_free_ports(16).unwrap();
        assert!(a + 16 <= b || b + 16 <= a, "{a} and {b} overlap");
        assert!(std::net::TcpListener::bind(("127.0.0.1", a)).is_ok());
    }

    #[test]
    fn a_handed_out_range_is_locked_against_other_processes() {
        let base = find_free_ports(4).unwrap();
        // A second reservation opens the lock files anew, as another process would; flock refuses it.
        assert!(!reserve_across_processes(base, base + 4));
        assert!(!reserve_across_processes(base + 3, base + 5));
    }

    #[test]
    fn ports_past_65535_are_refused() {
        let err = plan_testnet(
            Path::new("/nonexistent"),
            Path::new("/nonexistent"),
            4,
            65_530,
            "c",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                CometError::PortOverflow {
                    base_port: 65_530,
                    nodes: 4
                }
            ),
            "{err}"
        );
    }
}
