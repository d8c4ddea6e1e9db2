//! `dstorage devnet` as a newcomer runs it: a banner naming the API and the CometBFT log file, then one
//! concise line per block with transactions; CometBFT's full log goes to `<home>/cometbft.log`, which grows,
//! and nothing on a normal start is an ERROR.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use dstorage_client::api::WaitFor;
use dstorage_client::Client;
use dstorage_node::cometbft::{find_free_ports, PORTS_PER_NODE};
use dstorage_types::tx::Payload;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// Bug pinned (issue 13): `make devnet` printed three CometBFT INFO lines per empty block and started with an
// ERROR (CometBFT's first ABCI connection attempt, refused) followed by a 3-second retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_shows_a_banner_and_block_lines_and_keeps_cometbft_in_its_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let base = find_free_ports(PORTS_PER_NODE).unwrap();
    let api = format!("127.0.0.1:{}", base + 3);
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut devnet = Command::new(DSTORAGE)
        .arg("devnet")
        .arg("--home")
        .arg(&home)
        .arg("--base-port")
        .arg(base.to_string())
        .arg("--api-addr")
        .arg(&api)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn dstorage devnet");
    let log = home.join("cometbft.log");
    let client = Client::new(api.clone());

    let banner = eventually("the banner", START_WAIT, || async {
        let out = read(&out_path);
        if out.contains("Ctrl-C stops the devnet") {
            Ok(out)
        } else {
            Err(format!(
                "stdout so far: {out:?}, stderr: {:?}",
                read(&err_path)
            ))
        }
    })
    .await;
    assert!(banner.contains(&format!("http://{api}")), "{banner}");
    assert!(banner.contains(&log.display().to_string()), "{banner}");

    // A write makes one block line: its height, one transaction, its outcome and the app hash.
    let signer = new_signer();
    let tx = signer
        .sign(
            dstorage_node::cli::DEVNET_CHAIN_ID,
            1,
            Payload::DeploySchema {
                schema: "app".into(),
                sql: "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT".into(),
            },
        )
        .expect("sign");
    // The banner comes once the API listens, so one request is enough.
    let committed = client
        .broadcast(&tx, WaitFor::Commit)
        .await
        .expect("the deploy commits")
        .committed
        .expect("a committed result");
    let line = format!("height {:<6} 1 tx (1 ok)  app hash ", committed.height);
    eventually("the block line", Duration::from_secs(10), || async {
        let out = read(&out_path);
        if out.contains(&line) {
            Ok(out)
        } else {
            Err(out)
        }
    })
    .await;

    // CometBFT's log is in the file, and keeps growing while blocks come (an empty block at least every second).
    let size = std::fs::metadata(&log).expect("cometbft.log exists").len();
    assert!(read(&log).contains("finalized block"), "{}", read(&log));
    assert!(
        !read(&log).contains("E["),
        "an error in cometbft.log:\n{}",
        read(&log)
    );
    eventually("cometbft.log to grow", Duration::from_secs(10), || async {
        let now = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if now > size {
            Ok(())
        } else {
            Err(format!("{now} bytes, was {size}"))
        }
    })
    .await;

    kill(Pid::from_raw(devnet.id() as i32), Signal::SIGTERM).unwrap();
    let status = devnet.wait().unwrap();
    assert!(status.success(), "devnet exited with {status}");
    let (out, err) = (read(&out_path), read(&err_path));
    // Nothing of CometBFT's per-block INFO chatter, and no ERROR, on a normal start and stop.
    for text in [&out, &err] {
        assert!(!text.contains("ERROR"), "stdout:\n{out}\nstderr:\n{err}");
        assert!(
            !text.contains("finalized block"),
            "stdout:\n{out}\nstderr:\n{err}"
        );
    }
    assert!(out.contains(&line), "{out}");
}
