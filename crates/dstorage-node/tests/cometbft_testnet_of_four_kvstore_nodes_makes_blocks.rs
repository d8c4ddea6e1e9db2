//! Four real CometBFT validators laid out by `plan_testnet`, running the builtin `kvstore` app: they peer with
//! each other, commit blocks, agree on block and app hashes, and replicate a transaction sent to one of them.
//! This proves the layout and peering before the dstorage application exists.

use std::time::Duration;

use dstorage_node::cometbft::{
    find_free_ports, locate_cometbft, plan_testnet_with, CometProcess, CometRpc, PORTS_PER_NODE,
};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_kvstore_validators_agree_on_blocks_and_app_hashes() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("cometbft=info")
        .try_init();
    let bin = locate_cometbft().expect("pinned CometBFT");
    let root = tempfile::tempdir().expect("temp dir");
    let base = find_free_ports(4 * PORTS_PER_NODE).expect("free ports");
    let plans = plan_testnet_with(
        &bin,
        root.path(),
        4,
        base,
        "dstorage-four",
        &serde_json::json!({}),
        |layout| {
            layout.abci_addr = "kvstore".into();
        },
    )
    .expect("plan");

    let mut nodes: Vec<CometProcess> = plans
        .iter()
        .map(|p| CometProcess::spawn(&bin, &p.layout.home).expect("spawn"))
        .collect();
    let rpcs: Vec<CometRpc> = plans
        .iter()
        .map(|p| CometRpc::local(p.layout.rpc_port).expect("rpc"))
        .collect();

    for rpc in &rpcs {
        let status = rpc.wait_for_height(3, WAIT).await.expect("height 3");
        assert_eq!(status.network, "dstorage-four");
        assert_eq!(status.voting_power, 10);
    }
    for (rpc, plan) in rpcs.iter().zip(&plans) {
        let mut expected: Vec<String> = plans
            .iter()
            .filter(|other| other.index != plan.index)
            .map(|other| other.identity.node_id.clone())
            .collect();
        expected.sort();
        // Three of four validators suffice for blocks, so the fourth connection may still be dialling: poll.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let net = rpc.net_info().await.expect("net_info");
            let mut peers: Vec<String> = net.peers.iter().map(|p| p.node_id.clone()).collect();
            peers.sort();
            if peers == expected {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node{} has peers {peers:?}, not {expected:?}",
                plan.index
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let validators = rpc.validators(None).await.expect("validators");
        assert_eq!(validators.len(), 4);
        assert!(validators.iter().all(|v| v.voting_power == 10));
    }

    // A write sent to node 0 is in the same block on node 3, and all nodes agree on the next header's app hash.
    let committed = rpcs[0]
        .broadcast_tx_commit(b"city=Lisbon")
        .await
        .expect("broadcast");
    assert_eq!(
        (committed.check_tx.code, committed.tx_result.code),
        (0, 0),
        "{committed:?}"
    );
    let block_on_3 = {
        rpcs[3]
            .wait_for_height(committed.height, WAIT)
            .await
            .expect("node3 has the block");
        rpcs[3]
            .block(Some(committed.height))
            .await
            .expect("block on node3")
    };
    assert_eq!(block_on_3.txs, vec![b"city=Lisbon".to_vec()]);

    let check = committed.height + 1;
    let mut headers = Vec::new();
    for rpc in &rpcs {
        rpc.wait_for_height(check, WAIT)
            .await
            .expect("height after the write");
        for height in 1..=check {
            headers.push((height, rpc.block(Some(height)).await.expect("block")));
        }
    }
    let per_node = usize::try_from(check).expect("height fits");
    for (i, (height, block)) in headers.iter().enumerate() {
        let (_, reference) = &headers[i % per_node];
        assert_eq!(
            block.hash, reference.hash,
            "block hash differs at height {height}"
        );
        assert_eq!(
            block.app_hash, reference.app_hash,
            "app hash differs at height {height}"
        );
    }
    let (_, before) = &headers[per_node - 2];
    let (_, after) = &headers[per_node - 1];
    assert_ne!(
        before.app_hash, after.app_hash,
        "the write did not change the app hash"
    );

    for node in &mut nodes {
        let status = node.shutdown().await.expect("shutdown");
        assert!(status.success(), "CometBFT exited with {status}");
    }
}
