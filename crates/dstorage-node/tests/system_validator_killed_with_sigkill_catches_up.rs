//! Four real validators under a steady write load; one `dstorage start` process is killed with SIGKILL (its
//! CometBFT then exits by itself when the ABCI connection drops). The other three keep committing; restarted
//! (and killed once more while catching up), the node catches up to the same app hash at every height, and every
//! write acknowledged as committed is present on all four nodes.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Net, CHAIN_ID};
use dstorage_client::api::WaitFor;
use dstorage_client::{Client, Signer};
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

const WAIT: Duration = Duration::from_secs(60);
const WRITERS: usize = 3;
const VICTIM: usize = 3;

/// Acknowledged (writer, seq) pairs, shared by the writers and the test.
type Acked = Arc<Mutex<BTreeSet<(usize, i64)>>>;

/// Insert rows into schema `load<id>` one at a time, each waiting for its commit, until `stop`; record each
/// acknowledged one. Nonce 1 deployed the schema, so writes start at nonce 2.
async fn writer(
    client: Client,
    signer: Arc<Signer>,
    id: usize,
    stop: Arc<AtomicBool>,
    acked: Acked,
    count: Arc<AtomicUsize>,
) -> Result<(), String> {
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let tx = signer
            .sign(
                CHAIN_ID,
                1 + seq as u64,
                Payload::Sql {
                    schema: format!("load{id}"),
                    sql: format!("INSERT INTO w VALUES ({seq})"),
                    params: Vec::new(),
                },
            )
            .map_err(|e| e.to_string())?;
        let r = client
            .broadcast(&tx, WaitFor::Commit)
            .await
            .map_err(|e| format!("writer {id} seq {seq}: {e}"))?;
        let r = r.committed.ok_or("no committed result")?;
        if r.code != ResultCode::Ok {
            return Err(format!("writer {id} seq {seq}: {} {}", r.code, r.message));
        }
        acked.lock().map_err(|e| e.to_string())?.insert((id, seq));
        count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Wait until the writers have had `n` more writes acknowledged than `from`.
async fn wait_acks(count: &AtomicUsize, from: usize, n: usize, what: &str) -> usize {
    common::eventually(what, WAIT, || async {
        let now = count.load(Ordering::Relaxed);
        if now >= from + n {
            Ok(now)
        } else {
            Err(format!("{} acknowledged so far", now - from))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_killed_with_sigkill_catches_up() {
    let mut net = Net::start(4).await;

    // Only a schema's owner may write to it, so each writer deploys the same table in its own schema.
    let c0 = net.nodes[0].client();
    let mut signers = Vec::new();
    for id in 0..WRITERS {
        let signer = Arc::new(common::new_signer());
        let r = c0
            .deploy(
                &signer,
                &format!("load{id}"),
                "CREATE TABLE w (seq INTEGER PRIMARY KEY) STRICT",
            )
            .await
            .expect("deploy");
        assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
        signers.push(signer);
    }

    // The writers go through nodes 0 and 1, which stay up.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = signers
        .iter()
        .enumerate()
        .map(|(id, signer)| {
            tokio::spawn(writer(
                net.nodes[id % 2].client(),
                signer.clone(),
                id,
                stop.clone(),
                acked.clone(),
                count.clone(),
            ))
        })
        .collect();
    let before_kill = wait_acks(&count, 0, 10, "writes before the kill").await;

    // SIGKILL the node process; its CometBFT must go away by itself.
    let victim_height = net.nodes[VICTIM].height().await.expect("victim height");
    let (pid, comet) = net.nodes[VICTIM].kill9();
    assert!(
        common::process_name(pid).is_none(),
        "killed node pid {pid} still runs"
    );
    let comet = comet.expect("the killed node had a CometBFT child");
    common::wait_gone(comet, "CometBFT of the SIGKILLed node").await;

    // The other three keep committing, writes included.
    let killed_at = net.nodes[0].height().await.expect("height");
    net.wait_height(killed_at + 4, WAIT).await;
    let during = wait_acks(&count, before_kill, 10, "writes while a validator is down").await;

    // Restarted, it is killed again once it has executed blocks past the first kill (likely mid-way through
    // catching up), then restarted for good: it catches up with the others while the load goes on.
    net.nodes[VICTIM].start().await;
    net.nodes[VICTIM].wait_height(victim_height + 2, WAIT).await;
    let (_, comet) = net.nodes[VICTIM].kill9();
    common::wait_gone(
        comet.expect("CometBFT child"),
        "CometBFT of the node killed again",
    )
    .await;
    net.nodes[VICTIM].start().await;
    let target = net.nodes[0].height().await.expect("height") + 2;
    net.nodes[VICTIM].wait_height(target, WAIT).await;
    wait_acks(&count, during, 5, "writes after the restart").await;

    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("writer task").expect("writer");
    }

    // Same app hash and changeset at every height on all four, including those the victim missed.
    let top = net.nodes[0].height().await.expect("height") + 1;
    net.wait_height(top, WAIT).await;
    net.assert_same_history(top).await;

    // Every acknowledged write is on every node, and all nodes hold the same rows.
    let acked = acked.lock().expect("acked").clone();
    assert!(
        acked.len() >= 25,
        "only {} writes acknowledged",
        acked.len()
    );
    let mut reference: Option<BTreeSet<(usize, i64)>> = None;
    for node in &net.nodes {
        let client = node.client();
        let mut rows = BTreeSet::new();
        for (id, signer) in signers.iter().enumerate() {
            let r = client
                .query_signed(
                    signer,
                    &format!("load{id}"),
                    "SELECT seq FROM w ORDER BY seq",
                    Vec::new(),
                )
                .await
                .expect("query");
            for row in r.rows {
                match row.as_slice() {
                    [Value::Integer(seq)] => rows.insert((id, *seq)),
                    other => panic!("unexpected row {other:?}"),
                };
            }
        }
        let missing: Vec<_> = acked.difference(&rows).collect();
        assert!(
            missing.is_empty(),
            "node{} lacks acknowledged writes {missing:?}",
            node.index
        );
        match &reference {
            None => reference = Some(rows),
            Some(r) => assert_eq!(&rows, r, "node{} holds other rows than node0", node.index),
        }
    }
}
