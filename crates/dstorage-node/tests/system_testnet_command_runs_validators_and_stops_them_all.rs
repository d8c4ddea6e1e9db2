//! `dstorage testnet --validators N` lays out N validators, runs them as child processes that form one chain,
//! and stops every one of them (and their CometBFT children) when it receives SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use dstorage_client::Client;
use dstorage_node::cometbft::{find_free_ports, PORTS_PER_NODE};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testnet_of_two_makes_one_chain_and_sigterm_stops_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let base = find_free_ports(2 * PORTS_PER_NODE).unwrap();
    let mut testnet = Command::new(DSTORAGE)
        .args([
            "testnet",
            "--validators",
            "2",
            "--json",
            "--chain-id",
            CHAIN_ID,
        ])
        .arg("--dir")
        .arg(dir.path())
        .arg("--base-port")
        .arg(base.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dstorage testnet");
    let stdout = testnet.stdout.take().unwrap();
    let lines: Vec<serde_json::Value> = BufReader::new(stdout)
        .lines()
        .take(2)
        .map(|l| serde_json::from_str(&l.expect("line")).expect("one JSON object per node"))
        .collect();
    assert_eq!(lines.len(), 2);
    let apis: Vec<String> = lines
        .iter()
        .map(|l| l["api"].as_str().unwrap().to_string())
        .collect();
    assert_ne!(apis[0], apis[1]);
    for l in &lines {
        assert_eq!(l["chain_id"], CHAIN_ID);
    }

    // Both validators are needed for a 2-validator chain to make blocks, so height 3 on each proves they peered.
    for api in &apis {
        let client = Client::new(api.clone());
        eventually(&format!("{api} at height 3"), START_WAIT, || {
            let client = client.clone();
            async move {
                let s = client.status().await.map_err(|e| e.to_string())?;
                if s.height >= 3 && s.validators.len() == 2 {
                    Ok(())
                } else {
                    Err(format!(
                        "height {} with {} validators",
                        s.height,
                        s.validators.len()
                    ))
                }
            }
        })
        .await;
    }
    let a = Client::new(apis[0].clone()).changeset(2).await.unwrap();
    let b = Client::new(apis[1].clone()).changeset(2).await.unwrap();
    assert_eq!(a.hash, b.hash);

    // The node processes and their CometBFT children, before the stop.
    let testnet_pid = testnet.id() as i32;
    let nodes = child_pids(testnet_pid);
    assert_eq!(nodes.len(), 2, "two `dstorage start` children");
    let comets: Vec<i32> = nodes.iter().flat_map(|p| child_pids(*p)).collect();
    assert_eq!(comets.len(), 2, "each node supervises one CometBFT");

    kill(Pid::from_raw(testnet_pid), Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + STOP_WAIT;
    let status = loop {
        if let Some(status) = testnet.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "testnet did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "testnet exit status {status:?}");
    for pid in nodes.iter().chain(comets.iter()) {
        eventually(&format!("pid {pid} to exit"), STOP_WAIT, || async move {
            match process_name(*pid) {
                None => Ok(()),
                Some(name) => Err(format!("pid {pid} still runs {name}")),
            }
        })
        .await;
    }
}
