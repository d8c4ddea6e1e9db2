//! When CometBFT exits by itself, the supervisor does not restart it: `exited` returns an error with the exit
//! status and CometBFT's last log lines, for the node to report before it stops.

use std::time::Duration;

use dstorage_node::cometbft::{
    find_free_ports, init_home, locate_cometbft, CometError, CometProcess, NodeLayout,
};

#[tokio::test]
async fn a_cometbft_that_cannot_start_is_reported_with_its_status_and_log() {
    let bin = locate_cometbft().expect("pinned CometBFT");
    let dir = tempfile::tempdir().expect("temp dir");
    let base = find_free_ports(2).expect("free ports");
    let mut layout = NodeLayout::new(dir.path().join("cometbft"), "broken", base, base + 1);
    layout.abci_addr = "kvstore".into();
    init_home(&bin, &layout).expect("init home");
    // A genesis CometBFT cannot read makes it stop right after start.
    std::fs::write(layout.genesis_path(), b"{ not json").expect("break genesis");

    let mut comet = CometProcess::spawn(&bin, &layout.home).expect("spawn");
    let err = tokio::time::timeout(Duration::from_secs(30), comet.exited())
        .await
        .expect("CometBFT kept running");
    let status = comet.wait().await.expect("status");
    assert!(
        !status.success(),
        "CometBFT exited successfully on a broken genesis"
    );
    assert!(matches!(err, CometError::Supervise { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("exited unexpectedly"), "{message}");
    assert!(
        message.contains("genesis"),
        "the log tail does not explain the exit: {message}"
    );
    assert!(!comet.recent_log().is_empty());
}
