//! `plan_testnet` lays out four validators with one byte-identical genesis, peers every node with the other
//! three, and on a second run keeps every key and the genesis (the chain must survive restarts).

use std::collections::HashSet;

use dstorage_node::cometbft::{
    find_free_ports, locate_cometbft, plan_testnet, CometError, PORTS_PER_NODE,
};

#[test]
fn four_nodes_share_one_genesis_with_four_equal_validators() {
    let bin = locate_cometbft().expect("pinned CometBFT");
    let root = tempfile::tempdir().expect("temp dir");
    let base = find_free_ports(4 * PORTS_PER_NODE).expect("free ports");
    let plans = plan_testnet(&bin, root.path(), 4, base, "dstorage-plan-test").expect("plan");
    assert_eq!(plans.len(), 4);

    let genesis: Vec<Vec<u8>> = plans
        .iter()
        .map(|p| std::fs::read(p.layout.genesis_path()).expect("genesis"))
        .collect();
    assert!(
        genesis.iter().all(|g| g == &genesis[0]),
        "genesis files differ between nodes"
    );
    let doc: serde_json::Value = serde_json::from_slice(&genesis[0]).expect("genesis JSON");
    assert_eq!(doc["chain_id"], "dstorage-plan-test");
    let validators = doc["validators"].as_array().expect("validators");
    assert_eq!(validators.len(), 4);
    for (validator, plan) in validators.iter().zip(&plans) {
        assert_eq!(validator["power"], "10");
        assert_eq!(
            validator["pub_key"]["value"].as_str(),
            Some(plan.identity.validator_pubkey.as_str())
        );
        assert_eq!(
            validator["address"].as_str(),
            Some(plan.identity.validator_address.as_str())
        );
        assert_eq!(
            validator["name"].as_str(),
            Some(plan.layout.moniker.as_str())
        );
    }

    let ports: HashSet<u16> = plans
        .iter()
        .flat_map(|p| {
            [
                p.layout.p2p_port,
                p.layout.rpc_port,
                p.abci_port,
                p.api_port,
            ]
        })
        .collect();
    assert_eq!(ports.len(), 16, "ports are not distinct: {ports:?}");
    assert!(ports.iter().all(|p| (base..base + 16).contains(p)));
    let ids: HashSet<&str> = plans.iter().map(|p| p.identity.node_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "node ids are not distinct");

    for plan in &plans {
        let expected: Vec<String> = plans
            .iter()
            .filter(|other| other.index != plan.index)
            .map(|other| {
                format!(
                    "{}@127.0.0.1:{}",
                    other.identity.node_id, other.layout.p2p_port
                )
            })
            .collect();
        assert_eq!(plan.layout.persistent_peers, expected);
        assert_eq!(
            plan.layout.abci_addr,
            format!("tcp://127.0.0.1:{}", plan.abci_port)
        );
        assert_eq!(
            plan.layout.home,
            root.path()
                .join(format!("node{}", plan.index))
                .join("cometbft")
        );
    }
}

#[test]
fn planning_again_keeps_keys_and_genesis_and_refuses_another_shape() {
    let bin = locate_cometbft().expect("pinned CometBFT");
    let root = tempfile::tempdir().expect("temp dir");
    let base = find_free_ports(4 * PORTS_PER_NODE).expect("free ports");
    let first = plan_testnet(&bin, root.path(), 4, base, "dstorage-replan").expect("first plan");
    let genesis = std::fs::read(first[0].layout.genesis_path()).expect("genesis");

    let second = plan_testnet(&bin, root.path(), 4, base, "dstorage-replan").expect("second plan");
    assert_eq!(first, second, "re-planning changed the network");
    assert_eq!(
        std::fs::read(second[3].layout.genesis_path()).expect("genesis"),
        genesis
    );

    let err = plan_testnet(&bin, root.path(), 3, base, "dstorage-replan").unwrap_err();
    assert!(matches!(err, CometError::TestnetMismatch { .. }), "{err}");
    let err = plan_testnet(&bin, root.path(), 4, base, "another-chain").unwrap_err();
    assert!(err.to_string().contains("another-chain"), "{err}");
    assert_eq!(
        std::fs::read(first[0].layout.genesis_path()).expect("genesis"),
        genesis,
        "a refused plan wrote"
    );
}
