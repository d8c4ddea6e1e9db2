//! One real CometBFT with its builtin `kvstore` app (no dstorage app needed): the supervisor starts it, the
//! RPC client sees blocks and a committed transaction, and `shutdown` stops it within seconds.

use std::time::{Duration, Instant};

use dstorage_node::cometbft::{
    find_free_ports, init_home, locate_cometbft, write_genesis, CometProcess, CometRpc,
    GenesisSpec, GenesisValidator, NodeLayout,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kvstore_node_commits_blocks_and_a_transaction_then_stops_on_sigterm() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("cometbft=info")
        .try_init();
    let bin = locate_cometbft().expect("pinned CometBFT");
    let dir = tempfile::tempdir().expect("temp dir");
    let base = find_free_ports(4).expect("free ports");
    let mut layout = NodeLayout::new(
        dir.path().join("node0").join("cometbft"),
        "solo",
        base,
        base + 1,
    );
    layout.abci_addr = "kvstore".into();
    let identity = init_home(&bin, &layout).expect("init home");
    write_genesis(
        &layout.home,
        &GenesisSpec {
            chain_id: "dstorage-solo".into(),
            validators: vec![GenesisValidator::new(
                identity.validator_pubkey.clone(),
                "solo",
            )],
            genesis_time: "2025-01-01T00:00:00Z".into(),
            app_state: serde_json::json!({}),
            initial_height: 1,
        },
    )
    .expect("genesis");

    let mut comet = CometProcess::spawn(&bin, &layout.home).expect("spawn");
    let pid = comet.id().expect("pid");
    let rpc = CometRpc::local(layout.rpc_port).expect("rpc client");
    let status = rpc
        .wait_for_height(3, Duration::from_secs(60))
        .await
        .expect("height 3");
    assert!(status.latest_block_height >= 3);
    assert_eq!(status.network, "dstorage-solo");
    assert_eq!(status.node_id, identity.node_id);
    assert_eq!(status.validator_address, identity.validator_address);
    assert_eq!(status.voting_power, 10);

    let validators = rpc.validators(None).await.expect("validators");
    assert_eq!(validators.len(), 1);
    assert_eq!(validators[0].pubkey, identity.validator_pubkey);
    assert_eq!(validators[0].voting_power, 10);

    let committed = rpc
        .broadcast_tx_commit(b"greeting=hello")
        .await
        .expect("broadcast");
    assert_eq!(committed.check_tx.code, 0, "{committed:?}");
    assert_eq!(committed.tx_result.code, 0, "{committed:?}");
    assert!(committed.height > 0);
    let block = rpc.block(Some(committed.height)).await.expect("block");
    assert_eq!(block.height, committed.height);
    assert_eq!(block.txs, vec![b"greeting=hello".to_vec()]);
    assert_eq!(block.proposer_address, identity.validator_address);
    // The app hash of the transaction's block shows up in the next block's header.
    let next = rpc
        .wait_for_height(committed.height + 1, Duration::from_secs(30))
        .await
        .expect("next block");
    let next_block = rpc
        .block(Some(committed.height + 1))
        .await
        .expect("next block");
    assert_ne!(
        next_block.app_hash, block.app_hash,
        "kvstore's app hash did not change with a write"
    );
    assert!(next.latest_block_height > committed.height);

    let refused = rpc.broadcast_tx_sync(b"").await;
    assert!(
        refused.is_err() || refused.as_ref().is_ok_and(|r| r.check_tx.code != 0),
        "{refused:?}"
    );

    let net = rpc.net_info().await.expect("net_info");
    assert!(net.listening);
    assert!(net.peers.is_empty());

    let started = Instant::now();
    let status = comet.shutdown().await.expect("shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(status.success(), "CometBFT exited with {status} on SIGTERM");
    // The pid is reaped and the process gone: signal 0 finds nothing.
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None);
    assert_eq!(
        gone,
        Err(nix::errno::Errno::ESRCH),
        "CometBFT {pid} is still there"
    );
    assert_eq!(comet.wait().await.expect("wait after shutdown"), status);
    assert!(
        rpc.status().await.is_err(),
        "the RPC still answers after shutdown"
    );
}
