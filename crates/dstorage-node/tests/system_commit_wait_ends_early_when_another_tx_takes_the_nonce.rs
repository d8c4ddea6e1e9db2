//! `wait=commit` for a transaction that loses a nonce race does not wait out the full commit timeout: once the
//! sender's nonce is spent by the other transaction, the loser is answered `nonce_replayed` ("dropped").
//!
//! Regression: the loser used to be admitted by CheckTx on its node, then silently dropped by proposers, and
//! its client got a 504 only after 60 s.

mod common;

use std::time::{Duration, Instant};

use common::{Net, CHAIN_ID};
use dstorage_client::api::WaitFor;
use dstorage_client::ClientError;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loser_of_a_nonce_race_is_answered_nonce_replayed_well_before_the_timeout() {
    let net = Net::start(2).await;
    let (c0, c1) = (net.nodes[0].client(), net.nodes[1].client());
    let owner = common::new_signer();
    let r = c0
        .deploy(
            &owner,
            "race",
            "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    net.wait_height(r.height, Duration::from_secs(60)).await;

    let sign = |sql: &str| {
        owner
            .sign(
                CHAIN_ID,
                2,
                Payload::Sql {
                    schema: "race".into(),
                    sql: sql.into(),
                    params: Vec::new(),
                },
            )
            .expect("sign")
    };
    let (a, b) = (
        sign("INSERT INTO t VALUES (1)"),
        sign("INSERT INTO t VALUES (2)"),
    );
    let started = Instant::now();
    let (ra, rb) = tokio::join!(
        c0.broadcast(&a, WaitFor::Commit),
        c1.broadcast(&b, WaitFor::Commit)
    );
    let elapsed = started.elapsed();

    let (won, lost) = match (&ra, &rb) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("expected exactly one winner: {other:?}"),
    };
    let committed = won.committed.as_ref().expect("a committed result");
    assert_eq!(committed.code, ResultCode::Ok, "{}", committed.message);
    eprintln!("loser: {lost}");
    match lost {
        ClientError::Api {
            status,
            code,
            error,
            ..
        } => {
            assert_eq!(*status, 422, "{error}");
            // Dropped after the winner committed (`nonce_replayed`), or refused at once by CheckTx if the
            // winner reached the loser's node first (`nonce_pending` while it waits there).
            assert!(
                code == "nonce_replayed" || code == "nonce_pending",
                "{code}: {error}"
            );
        }
        other => panic!("loser failed otherwise: {other}"),
    }
    // The commit timeout is 60 s; a few blocks are enough to settle the race.
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}
