//! Four real validators; two are stopped (SIGTERM). The remaining two hold half the voting power, below the
//! two-thirds CometBFT needs, so the chain halts: no node commits a block, not even with a transaction waiting,
//! and the two agree on everything up to the halt. Restarting one stopped validator restores a quorum: the chain
//! resumes, the waiting transaction commits, and all running nodes agree at every height.

mod common;

use std::time::Duration;

use common::{Net, CHAIN_ID};
use dstorage_client::api::WaitFor;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

const WAIT: Duration = Duration::from_secs(60);
/// How long the halt is watched: a healthy network makes a block every ~250 ms, so well over 10 blocks.
const HALT_WATCH: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_four_stopped_halts_without_divergence() {
    let mut net = Net::start(4).await;
    let c0 = net.nodes[0].client();
    let owner = common::new_signer();
    let r = c0
        .deploy(
            &owner,
            "halt",
            "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    let r = c0
        .exec(&owner, "halt", "INSERT INTO t VALUES (1)")
        .await
        .expect("write");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);

    for i in [2, 3] {
        let status = net.nodes[i].stop().await;
        assert!(status.success(), "node{i} stopped with {status}");
    }

    // A block whose precommits were already gossiped may still commit on one survivor and reach the other;
    // wait until both report the same last height (app and CometBFT), then that height must hold.
    let halted = common::eventually(
        "the survivors to agree on the last height",
        WAIT,
        || async {
            let a = net.nodes[0].status().await?;
            let b = net.nodes[1].status().await?;
            let same = a.height == b.height
                && a.consensus_height == a.height
                && b.consensus_height == b.height
                && a.app_hash == b.app_hash;
            if same {
                Ok(a.height)
            } else {
                Err(format!(
                    "node0 app {} comet {}, node1 app {} comet {}",
                    a.height, a.consensus_height, b.height, b.consensus_height
                ))
            }
        },
    )
    .await;

    // A transaction passes CheckTx on a survivor but cannot commit.
    let tx = owner
        .sign(
            CHAIN_ID,
            3,
            Payload::Sql {
                schema: "halt".into(),
                sql: "INSERT INTO t VALUES (2)".into(),
                params: Vec::new(),
            },
        )
        .expect("sign");
    let pending = c0
        .broadcast(&tx, WaitFor::Sync)
        .await
        .expect("CheckTx admits the write")
        .hash;
    // Resending the same bytes while they wait is admitted again, not mistaken for an outage.
    let again = c0
        .broadcast(&tx, WaitFor::Sync)
        .await
        .expect("a resend of a waiting transaction is admitted");
    assert_eq!(again.hash, pending);

    // Heights only grow, so the same height at the first poll and at a last one HALT_WATCH later proves no
    // block in between, however slowly a loaded machine answers; the polls in between name the first move.
    let watch_from = tokio::time::Instant::now();
    loop {
        for node in &net.nodes[..2] {
            let s = node.status().await.expect("a survivor keeps serving");
            assert_eq!(
                (s.height, s.consensus_height),
                (halted, halted),
                "node{} moved past the halt at height {halted} with half the voting power",
                node.index
            );
        }
        assert!(
            c0.tx(&pending).await.is_err(),
            "the write committed during the halt"
        );
        if watch_from.elapsed() >= HALT_WATCH {
            break;
        }
        tokio::time::sleep(common::POLL).await;
    }
    net.assert_same_history(halted).await;

    // One validator back: three of four is a quorum again.
    net.nodes[2].start().await;
    let committed = common::eventually("the waiting write to commit", WAIT, || async {
        c0.tx(&pending).await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(committed.code, ResultCode::Ok, "{}", committed.message);
    assert!(committed.height > halted);
    let top = net.wait_height(halted + 3, WAIT).await;
    net.assert_same_history(top).await;
    for node in net.running() {
        let rows = node
            .client()
            .query_signed(&owner, "halt", "SELECT id FROM t ORDER BY id", Vec::new())
            .await
            .expect("query");
        assert_eq!(
            rows.rows,
            vec![vec![Value::Integer(1)], vec![Value::Integer(2)]],
            "node{}",
            node.index
        );
    }
}
