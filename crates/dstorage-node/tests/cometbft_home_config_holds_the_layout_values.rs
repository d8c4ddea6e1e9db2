//! `init_home` runs the real `cometbft init` once, writes the layout's values into `config.toml` (read back here
//! with a TOML parser) and keeps the keys when it runs again.

use std::time::Duration;

use dstorage_node::cometbft::{
    find_free_ports, init_home, locate_cometbft, validator_address, NodeLayout,
};
use toml_edit::DocumentMut;

#[test]
fn config_toml_holds_the_layout_values_and_keys_survive_a_second_init() {
    let bin = locate_cometbft().expect("pinned CometBFT");
    let dir = tempfile::tempdir().expect("temp dir");
    let base = find_free_ports(4).expect("free ports");
    let mut layout = NodeLayout::new(
        dir.path().join("node0").join("cometbft"),
        "node-zero",
        base,
        base + 1,
    );
    layout.abci_addr = format!("tcp://127.0.0.1:{}", base + 2);
    layout.persistent_peers = vec![
        format!("{}@127.0.0.1:{}", "a".repeat(40), base + 10),
        format!("{}@127.0.0.1:{}", "b".repeat(40), base + 20),
    ];
    layout.timeout_commit = Duration::from_millis(250);
    layout.prometheus_port = Some(base + 3);

    let identity = init_home(&bin, &layout).expect("init home");

    let text = std::fs::read_to_string(layout.config_path()).expect("config.toml");
    let doc: DocumentMut = text.parse().expect("config.toml is TOML");
    assert_eq!(doc["proxy_app"].as_str(), Some(layout.abci_addr.as_str()));
    assert_eq!(doc["moniker"].as_str(), Some("node-zero"));
    assert_eq!(doc["log_format"].as_str(), Some("plain"));
    assert_eq!(
        doc["rpc"]["laddr"].as_str(),
        Some(format!("tcp://127.0.0.1:{}", base + 1).as_str())
    );
    assert_eq!(
        doc["p2p"]["laddr"].as_str(),
        Some(format!("tcp://127.0.0.1:{base}").as_str())
    );
    assert_eq!(
        doc["p2p"]["persistent_peers"].as_str(),
        Some(layout.persistent_peers.join(",").as_str())
    );
    assert_eq!(doc["p2p"]["addr_book_strict"].as_bool(), Some(false));
    assert_eq!(doc["p2p"]["allow_duplicate_ip"].as_bool(), Some(true));
    assert_eq!(doc["tx_index"]["indexer"].as_str(), Some("null"));
    assert_eq!(doc["consensus"]["timeout_commit"].as_str(), Some("250ms"));
    assert_eq!(
        doc["consensus"]["create_empty_blocks"].as_bool(),
        Some(true)
    );
    assert_eq!(
        doc["consensus"]["create_empty_blocks_interval"].as_str(),
        Some("1s")
    );
    assert_eq!(doc["mempool"]["recheck"].as_bool(), Some(true));
    assert_eq!(doc["mempool"]["size"].as_integer(), Some(10_000));
    assert_eq!(
        doc["mempool"]["max_tx_bytes"].as_integer(),
        Some(1024 * 1024)
    );
    assert_eq!(doc["instrumentation"]["prometheus"].as_bool(), Some(true));
    assert_eq!(
        doc["instrumentation"]["prometheus_listen_addr"].as_str(),
        Some(format!("127.0.0.1:{}", base + 3).as_str())
    );
    // Keys we do not set keep CometBFT's defaults, comments included.
    assert_eq!(doc["mempool"]["type"].as_str(), Some("flood"));
    assert!(
        text.contains("Mempool Configuration Option"),
        "CometBFT's comments were dropped"
    );

    // The identity is the one in the key file, and the address is derived as CometBFT derives it.
    let key: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.home.join("config/priv_validator_key.json")).expect("key file"),
    )
    .expect("key JSON");
    assert_eq!(
        key["pub_key"]["value"].as_str(),
        Some(identity.validator_pubkey.as_str())
    );
    assert_eq!(
        key["address"].as_str(),
        Some(identity.validator_address.as_str())
    );
    assert_eq!(
        validator_address(&identity.validator_pubkey).expect("address"),
        identity.validator_address
    );
    assert_eq!(identity.node_id.len(), 40);

    // A second run with other values changes the config, never the keys.
    layout.timeout_commit = Duration::from_secs(1);
    layout.prometheus_port = None;
    let again = init_home(&bin, &layout).expect("second init");
    assert_eq!(again, identity);
    let doc: DocumentMut = std::fs::read_to_string(layout.config_path())
        .expect("config")
        .parse()
        .expect("TOML");
    assert_eq!(doc["consensus"]["timeout_commit"].as_str(), Some("1s"));
    assert_eq!(doc["instrumentation"]["prometheus"].as_bool(), Some(false));
}
