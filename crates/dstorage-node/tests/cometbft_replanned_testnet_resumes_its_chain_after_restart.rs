//! Stopping a planned network, planning the same root again (as `dstorage testnet` does on every run) and
//! restarting resumes the same chain: same genesis, same block 1, heights continue past where it stopped.

use std::time::Duration;

use dstorage_node::cometbft::{
    find_free_ports, locate_cometbft, plan_testnet_with, CometProcess, CometRpc, PORTS_PER_NODE,
};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replanned_two_node_network_continues_its_chain() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("cometbft=info")
        .try_init();
    let bin = locate_cometbft().expect("pinned CometBFT");
    let root = tempfile::tempdir().expect("temp dir");
    let base = find_free_ports(2 * PORTS_PER_NODE).expect("free ports");
    let plan = || {
        plan_testnet_with(
            &bin,
            root.path(),
            2,
            base,
            "dstorage-restart",
            &serde_json::json!({}),
            |layout| {
                layout.abci_addr = "kvstore".into();
            },
        )
        .expect("plan")
    };

    let plans = plan();
    let genesis = std::fs::read(plans[0].layout.genesis_path()).expect("genesis");
    let rpc = CometRpc::local(plans[0].layout.rpc_port).expect("rpc");
    let mut nodes: Vec<CometProcess> = plans
        .iter()
        .map(|p| CometProcess::spawn(&bin, &p.layout.home).expect("spawn"))
        .collect();
    rpc.wait_for_height(3, WAIT).await.expect("height 3");
    let first_block = rpc.block(Some(1)).await.expect("block 1");
    for node in &mut nodes {
        node.shutdown().await.expect("shutdown");
    }
    let stopped_at = signed_height(&plans[0].layout.home);

    let replanned = plan();
    assert_eq!(replanned, plans);
    assert_eq!(
        std::fs::read(replanned[1].layout.genesis_path()).expect("genesis"),
        genesis
    );
    let mut nodes: Vec<CometProcess> = replanned
        .iter()
        .map(|p| CometProcess::spawn(&bin, &p.layout.home).expect("respawn"))
        .collect();
    let status = rpc
        .wait_for_height(stopped_at + 2, WAIT)
        .await
        .expect("chain continues");
    assert!(status.latest_block_height >= stopped_at + 2);
    assert_eq!(
        rpc.block(Some(1)).await.expect("block 1 again"),
        first_block
    );
    for node in &mut nodes {
        let status = node.shutdown().await.expect("shutdown");
        assert!(status.success(), "{status}");
    }
}

/// The last height a stopped validator signed, from its `priv_validator_state.json` (which never goes back).
fn signed_height(home: &std::path::Path) -> u64 {
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.join("data/priv_validator_state.json")).expect("validator state"),
    )
    .expect("validator state JSON");
    state["height"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .expect("height in validator state")
}
