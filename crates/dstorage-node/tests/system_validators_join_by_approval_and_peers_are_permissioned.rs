//! Four real validators, a fifth node running as a full node that asks to join, and a sixth node nobody allows
//! (real `dstorage start` processes with real CometBFT): two approvals are not enough, the third makes the fifth
//! node a validator that CometBFT lists and whose signatures appear in commits; a request that expired is
//! refused on a late approval; removal votes remove a validator; a leave is immediate; a validator restarted in
//! the middle catches up; the network commits through every change and every node records the same app hash at
//! every height; the sixth node is refused as a peer by the validators' peer filter and never syncs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{eventually, Net, CHAIN_ID, DSTORAGE};
use dstorage_node::config::NodeConfig;
use dstorage_node::validator_cmd::node_id_of;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);
/// Blocks a request stays open: long enough for three approvals, short enough to wait out in the test.
const EXPIRY: u64 = 30;

/// Run the `dstorage` CLI; (success, stdout as JSON, stdout and stderr for messages).
async fn dstorage(args: &[&str]) -> (bool, Value, String) {
    let out = tokio::process::Command::new(DSTORAGE)
        .args(args)
        .output()
        .await
        .expect("run dstorage");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), json, format!("{stdout}\n{stderr}"))
}

/// `dstorage validator <args> --home <home> --json`, asserting the committed result code.
async fn validator_tx(home: &Path, args: &[&str], expected: ResultCode) -> Value {
    let home = home.to_str().expect("utf-8 path");
    let mut all = vec!["validator"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--home", home, "--json"]);
    let (ok, json, text) = dstorage(&all).await;
    assert_eq!(
        json["code"].as_str(),
        Some(expected.name()),
        "dstorage {all:?}: {text}"
    );
    assert_eq!(
        ok,
        expected == ResultCode::Ok,
        "exit status of {all:?}: {text}"
    );
    json
}

async fn list(home: &Path) -> Value {
    let (ok, json, text) = dstorage(&[
        "validator",
        "list",
        "--home",
        home.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert!(ok, "{text}");
    json
}

async fn requests(home: &Path) -> Value {
    let (ok, json, text) = dstorage(&[
        "validator",
        "requests",
        "--home",
        home.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert!(ok, "{text}");
    json
}

fn keys_of(list: &Value) -> Vec<String> {
    list["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .map(|v| v["pub_key"].as_str().unwrap().to_string())
        .collect()
}

fn request_of(requests: &Value, id: u64) -> Value {
    requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no request {id} in {requests}"))
        .clone()
}

/// Lay out a node outside the genesis set: `dstorage init` on `port`, then the network's genesis and peers.
async fn outside_node(
    root: &Path,
    name: &str,
    port: u16,
    genesis: &Path,
    peers: &[String],
) -> PathBuf {
    let home = root.join(name);
    let (ok, _, text) = dstorage(&[
        "init",
        "--chain-id",
        CHAIN_ID,
        "--home",
        home.to_str().unwrap(),
        "--base-port",
        &port.to_string(),
        "--api-addr",
        &format!("127.0.0.1:{}", port + 3),
    ])
    .await;
    assert!(ok, "dstorage init {name}: {text}");
    std::fs::copy(genesis, home.join("cometbft/config/genesis.json")).expect("copy genesis");
    let mut config = NodeConfig::load(&home).unwrap();
    config.persistent_peers = peers.to_vec();
    config.save(&home).unwrap();
    home
}

/// Whether `address` signed the commit of `height` on the node whose RPC port is `rpc`.
async fn signed_commit(rpc: u16, height: u64, address: &str) -> Result<bool, String> {
    let url = format!("http://127.0.0.1:{rpc}/commit?height={height}");
    let body: Value = reqwest::get(&url)
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let sigs = body
        .pointer("/result/signed_header/commit/signatures")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no commit for height {height} yet: {body}"))?;
    Ok(sigs
        .iter()
        .any(|s| s["validator_address"] == address && s["block_id_flag"] == 2))
}

async fn comet_validators(net: &Net, i: usize) -> Result<Vec<String>, String> {
    let mut v: Vec<String> = net.nodes[i]
        .rpc()
        .validators(None)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|v| v.address)
        .collect();
    v.sort();
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_joins_by_approval_validators_leave_and_are_removed_and_strangers_are_refused()
{
    let (mut net, extra) = Net::layout_with(
        4,
        &["--join-expiry-blocks", &EXPIRY.to_string()],
        2 * dstorage_node::cometbft::PORTS_PER_NODE,
    );
    let homes: Vec<PathBuf> = net.nodes.iter().map(|n| n.home.clone()).collect();
    let ids: Vec<String> = homes.iter().map(|h| node_id_of(h).unwrap()).collect();
    let peers: Vec<String> = net
        .nodes
        .iter()
        .zip(&ids)
        .map(|(n, id)| format!("{id}@127.0.0.1:{}", n.config.p2p_port))
        .collect();
    let genesis = homes[0].join("cometbft/config/genesis.json");
    let root = net.dir.path().to_path_buf();
    let candidate = outside_node(&root, "node4", extra, &genesis, &peers).await;
    let stranger = outside_node(&root, "node5", extra + 4, &genesis, &peers).await;
    let candidate_id = node_id_of(&candidate).unwrap();
    let stranger_id = node_id_of(&stranger).unwrap();
    // The validators' operators list the candidate's node so it can sync before it is approved.
    for home in &homes {
        let mut c = NodeConfig::load(home).unwrap();
        c.allowed_peers = vec![candidate_id.clone()];
        c.save(home).unwrap();
    }
    assert_eq!(net.adopt(candidate.clone()), 4);
    assert_eq!(net.adopt(stranger.clone()), 5);
    // The stranger starts last, for the permission check only: CometBFT redials a persistent peer that
    // refuses it at once, again and again, which costs the validators a handshake each time.
    for node in &mut net.nodes[..5] {
        node.spawn();
    }
    for node in &mut net.nodes[..5] {
        node.wait_healthy().await;
    }
    net.nodes[0].wait_height(1, WAIT).await;
    net.nodes[4].wait_height(1, WAIT).await;

    // A request from a key with no node behind it: it will expire.
    let lonely = common::new_signer();
    let r = net.nodes[0]
        .client()
        .submit(
            &lonely,
            Payload::ValidatorJoin {
                node_id: "ab".repeat(20),
                address: "127.0.0.1:1".into(),
            },
        )
        .await
        .expect("lonely join");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    let lonely_expires = request_of(&requests(&homes[0]).await, 1)["expires_at"]
        .as_u64()
        .unwrap();
    assert_eq!(lonely_expires, r.height + EXPIRY);

    // The full node asks to join; two approvals of four are not enough.
    let joined = validator_tx(&candidate, &["join"], ResultCode::Ok).await;
    assert_eq!(joined["request"], 2, "{joined}");
    let candidate_key = dstorage_node::validator_cmd::validator_signer(&candidate)
        .unwrap()
        .identity()
        .to_string();
    let candidate_address = {
        let key = hex::decode(&candidate_key).unwrap();
        dstorage_app::validators::cometbft_address(&key)
    };
    validator_tx(&homes[0], &["approve", "2"], ResultCode::Ok).await;
    validator_tx(&homes[0], &["approve", "2"], ResultCode::AlreadyVoted).await;
    validator_tx(&homes[1], &["approve", "2"], ResultCode::Ok).await;
    // Read from the node that sent the last transaction: its API answered once it had committed it.
    let pending = request_of(&requests(&homes[1]).await, 2);
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["votes"].as_array().unwrap().len(), 2);
    assert_eq!(pending["node_id"], candidate_id.as_str());
    assert_eq!(keys_of(&list(&homes[1]).await).len(), 4);
    assert_eq!(comet_validators(&net, 0).await.unwrap().len(), 4);

    // The third approval makes it a validator.
    let third = validator_tx(&homes[2], &["approve", "2"], ResultCode::Ok).await;
    let decided = third["height"].as_u64().unwrap();
    let after = list(&homes[2]).await;
    assert!(keys_of(&after).contains(&candidate_key), "{after}");
    let entry = after["validators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["pub_key"] == candidate_key.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["active_from"], decided + 2);
    assert_eq!(
        request_of(&requests(&homes[2]).await, 2)["status"],
        "approved"
    );
    // CometBFT lists it from height decided + 2, and it signs commits from then on.
    eventually("CometBFT to list the new validator", WAIT, || async {
        let v = comet_validators(&net, 0).await?;
        if v.contains(&candidate_address) && v.len() == 5 {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    let first = decided + 2;
    let signed_at = eventually(
        "the new validator's signature in a commit",
        WAIT,
        || async {
            let last = net.nodes[0].height().await?;
            for h in first..=last {
                if signed_commit(net.nodes[0].config.rpc_port, h, &candidate_address).await? {
                    return Ok(h);
                }
            }
            Err(format!("not in commits {first}..={last}"))
        },
    )
    .await;
    assert!(signed_at >= first);
    // All five nodes recorded the same app hash and changeset hash at every height so far.
    net.wait_height(signed_at, WAIT).await;
    net.assert_same_history(signed_at).await;

    // The request nobody approved in time is refused on a late approval.
    net.nodes[0].wait_height(lonely_expires + 1, WAIT).await;
    let late = validator_tx(&homes[0], &["approve", "1"], ResultCode::RequestExpired).await;
    assert!(
        late["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{late}"
    );

    // Removal votes: 4 of 5 needed (ceil(2 × 5 / 3)); the first vote opens request 3.
    let node3_address = after["validators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["node_id"] == ids[3].as_str())
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_string();
    validator_tx(&homes[0], &["remove", &node3_address], ResultCode::Ok).await;
    validator_tx(&homes[1], &["remove", &node3_address], ResultCode::Ok).await;
    validator_tx(&homes[2], &["approve", "3"], ResultCode::Ok).await;
    assert_eq!(
        keys_of(&list(&homes[2]).await).len(),
        5,
        "3 votes of 5 do not remove"
    );
    validator_tx(&candidate, &["approve", "3"], ResultCode::Ok).await;
    let removed = list(&candidate).await;
    assert_eq!(keys_of(&removed).len(), 4, "{removed}");
    assert_eq!(removed["leaving"].as_array().unwrap().len(), 1, "{removed}");
    eventually("CometBFT to drop the removed validator", WAIT, || async {
        let v = comet_validators(&net, 0).await?;
        if !v.contains(&node3_address) && v.len() == 4 {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    // The removed node is no validator now, and no operator lists it: once a connection of its breaks, nobody
    // takes it back. Its history so far agrees; then it stops.
    let h = net.nodes[0].height().await.unwrap();
    net.nodes[3].wait_height(h, WAIT).await;
    net.assert_same_history(h).await;
    net.nodes[3].stop().await;

    // A validator restarted in the middle: the other three of four keep committing, and it catches up.
    net.nodes[1].stop().await;
    let h = net.nodes[0].height().await.unwrap();
    let c0 = net.nodes[0].client();
    let writer = common::new_signer();
    let r = c0
        .deploy(
            &writer,
            "kept",
            "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT",
        )
        .await
        .expect("deploy while node1 is down");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    net.nodes[0].wait_height(h + 3, WAIT).await;
    net.nodes[1].start().await;
    let h = net.nodes[0].height().await.unwrap();
    net.nodes[1].wait_height(h, WAIT).await;

    // A leave is immediate: the leave's own block carries the update.
    let left = validator_tx(&homes[2], &["leave"], ResultCode::Ok).await;
    let left_at = left["height"].as_u64().unwrap();
    let now = list(&homes[2]).await;
    assert_eq!(keys_of(&now).len(), 3, "{now}");
    let leaving: Vec<&Value> = now["leaving"].as_array().unwrap().iter().collect();
    assert!(
        leaving
            .iter()
            .any(|l| l["left_height"] == left_at && l["inactive_from"] == left_at + 2),
        "{now}"
    );
    eventually("CometBFT to apply the leave", WAIT, || async {
        let v = comet_validators(&net, 0).await?;
        if v.len() == 3 {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    // The three that stay keep committing, the new validator among them.
    let r = c0
        .exec(&writer, "kept", "INSERT INTO t VALUES (1)")
        .await
        .expect("write after the leave");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    assert!(r.height > left_at);

    // The stranger is refused at the P2P layer and never syncs.
    net.nodes[5].start().await;
    let refused = format!("/p2p/filter/id/{stranger_id}");
    eventually("node0 to refuse the stranger", WAIT, || async {
        if net.nodes[0].log_tail(100_000).contains(&refused) {
            Ok(())
        } else {
            Err("no refusal logged yet".to_string())
        }
    })
    .await;
    // (Its own peer count flickers: its side of each refused connection lives until the validator closes it.)
    let s = net.nodes[5].status().await.unwrap();
    assert_eq!(s.height, 0, "the stranger synced");
    let net_info = net.nodes[0].rpc().net_info().await.unwrap();
    assert!(
        net_info.peers.iter().all(|p| p.node_id != stranger_id),
        "node0 kept the stranger as a peer"
    );
    net.nodes[5].stop().await;

    // Every running node (the one that left still follows as a full node) agrees at every height.
    let last = r.height + 1;
    net.wait_height(last, WAIT).await;
    net.assert_same_history(last).await;
}
