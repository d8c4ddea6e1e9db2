//! Group commit for broadcasts: transactions that reach the API while its previous submission to CometBFT is
//! in flight go to CometBFT together, as one bundle (`docs/protocol.md`, "Bundles").
//!
//! CometBFT spends most of its CPU per *CometBFT* transaction (the RPC request, the mempool entry, gossip to
//! every peer, the re-check after every block), so a bundle of N signed transactions costs it about what one
//! costs. There is no timer: a lone transaction goes out at once, bare, and bundles form only when transactions
//! arrive faster than CometBFT answers, which is exactly when the saving matters.
//!
//! A bundle is admitted whole or not at all. If CometBFT refuses one (any member failed CheckTx) or cannot be
//! reached, its transactions are submitted again one by one, in arrival order, so every caller gets the answer
//! for its own transaction and one bad transaction never sinks the others.

use std::future::Future;
use std::sync::Arc;

use dstorage_types::tx::{encode_bundle, tx_hash, BUNDLE_MIN_TXS};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::cometbft::{BroadcastSync, CometError, CometRpc};
use crate::metrics::Metrics;

/// Where batches go: CometBFT's `broadcast_tx_sync` in a node.
pub trait Submit: Send + Sync + 'static {
    /// Submit one CometBFT transaction (a bare transaction or a bundle) and return CheckTx's answer.
    fn submit(&self, tx: Vec<u8>)
        -> impl Future<Output = Result<BroadcastSync, CometError>> + Send;
}

impl Submit for CometRpc {
    async fn submit(&self, tx: Vec<u8>) -> Result<BroadcastSync, CometError> {
        self.broadcast_tx_sync(&tx).await
    }
}

/// How large a bundle may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most transactions in one bundle; below 2 every transaction goes bare.
    pub max_txs: usize,
    /// Most bytes of one bundle (the network's `max_bundle_bytes`).
    pub max_bytes: usize,
    /// Most submissions to CometBFT at once while bundling (without bundles, there is no limit).
    pub max_in_flight: usize,
}

struct Job {
    tx: Vec<u8>,
    reply: oneshot::Sender<Result<BroadcastSync, CometError>>,
}

/// The API's way to CometBFT: submit a transaction, get CheckTx's answer for it.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Start the batching task on the current tokio runtime.
    pub fn spawn<S: Submit>(submit: S, limits: BatchLimits, metrics: Arc<Metrics>) -> Batcher {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(Arc::new(submit), limits, metrics, jobs));
        Batcher { queue }
    }

    /// Submit `tx` (alone or in a bundle with others) and return CheckTx's answer for it. The hash in the
    /// answer is always `tx`'s own.
    pub async fn broadcast(&self, tx: Vec<u8>) -> Result<BroadcastSync, CometError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || CometError::Invalid("the API's broadcast task has stopped".into());
        self.queue.send(Job { tx, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run<S: Submit>(
    submit: Arc<S>,
    limits: BatchLimits,
    metrics: Arc<Metrics>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    // Bundles form while the slots are taken: what arrives meanwhile waits and goes out together.
    let slots = if limits.max_txs < BUNDLE_MIN_TXS {
        Semaphore::MAX_PERMITS
    } else {
        limits.max_in_flight.max(1)
    };
    let slots = Arc::new(Semaphore::new(slots));
    // A job that did not fit in the previous bundle opens the next one.
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Bundle framing: version and count, then a length per member.
        let mut size = 5 + 4 + first.tx.len();
        let mut batch = vec![first];
        while batch.len() < limits.max_txs {
            let Ok(job) = jobs.try_recv() else { break };
            if size + 4 + job.tx.len() > limits.max_bytes {
                carried = Some(job);
                break;
            }
            size += 4 + job.tx.len();
            batch.push(job);
        }
        let submit = submit.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            send_batch(&*submit, &metrics, batch).await;
            drop(slot);
        });
    }
}

async fn send_batch<S: Submit>(submit: &S, metrics: &Metrics, batch: Vec<Job>) {
    if batch.len() < BUNDLE_MIN_TXS {
        for job in batch {
            one_by_one(submit, metrics, job).await;
        }
        return;
    }
    let bundle = encode_bundle(&batch.iter().map(|j| &j.tx[..]).collect::<Vec<_>>());
    metrics.observe_submission(batch.len());
    match submit.submit(bundle).await {
        Ok(answer) if answer.check_tx.code == 0 => {
            for job in batch {
                let hash = tx_hash(&job.tx).to_string();
                let _ = job.reply.send(Ok(BroadcastSync {
                    check_tx: answer.check_tx.clone(),
                    hash,
                }));
            }
        }
        refused => {
            match &refused {
                Ok(a) => {
                    tracing::debug!(txs = batch.len(), code = a.check_tx.code, log = %a.check_tx.log, "bundle refused; submitting its transactions one by one")
                }
                Err(e) => {
                    tracing::debug!(txs = batch.len(), error = %e, "bundle not submitted; submitting its transactions one by one")
                }
            }
            for job in batch {
                one_by_one(submit, metrics, job).await;
            }
        }
    }
}

async fn one_by_one<S: Submit>(submit: &S, metrics: &Metrics, job: Job) {
    metrics.observe_submission(1);
    let _ = job.reply.send(submit.submit(job.tx).await);
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cometbft::TxResult;

    /// A recording stand-in for CometBFT's RPC (named as a fake: these tests are about grouping, and a real
    /// CometBFT cannot be made to hold a submission while others queue). It refuses bundles holding a
    /// transaction that starts with byte 0xEE, and such a transaction alone.
    struct Recorder {
        seen: Arc<Mutex<Vec<Vec<u8>>>>,
        /// One permit per submission that has started.
        entered: Arc<tokio::sync::Semaphore>,
        /// Submissions wait here until the test opens it.
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Submit for Recorder {
        fn submit(
            &self,
            tx: Vec<u8>,
        ) -> impl Future<Output = Result<BroadcastSync, CometError>> + Send {
            let seen = self.seen.clone();
            let gate = self.gate.clone();
            self.entered.add_permits(1);
            async move {
                let _permit = gate.acquire().await.expect("gate open");
                let bad = dstorage_types::tx::split_bundle(&tx)
                    .map(|m| m.iter().any(|m| m.get(1) == Some(&0xEE)))
                    .unwrap_or(true);
                seen.lock().unwrap().push(tx.clone());
                Ok(BroadcastSync {
                    check_tx: TxResult {
                        code: u32::from(bad),
                        ..Default::default()
                    },
                    hash: tx_hash(&tx).to_string(),
                })
            }
        }
    }

    fn tx(n: u8) -> Vec<u8> {
        vec![dstorage_types::tx::TX_VERSION, n, n, n]
    }

    struct Rig {
        batcher: Batcher,
        seen: Arc<Mutex<Vec<Vec<u8>>>>,
        entered: Arc<tokio::sync::Semaphore>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    fn start(max_txs: usize) -> Rig {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let entered = Arc::new(tokio::sync::Semaphore::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let batcher = Batcher::spawn(
            Recorder {
                seen: seen.clone(),
                entered: entered.clone(),
                gate: gate.clone(),
            },
            BatchLimits {
                max_txs,
                max_bytes: 1024,
                max_in_flight: 1,
            },
            Arc::new(Metrics::new()),
        );
        Rig {
            batcher,
            seen,
            entered,
            gate,
        }
    }

    impl Rig {
        /// Queue `txs` in order while the first one's submission is held, then let everything through.
        async fn submit_all(&self, txs: Vec<Vec<u8>>) -> Vec<BroadcastSync> {
            let mut answers = Vec::new();
            for (i, tx) in txs.into_iter().enumerate() {
                let (reply, answer) = oneshot::channel();
                self.batcher.queue.send(Job { tx, reply }).unwrap();
                answers.push(answer);
                if i == 0 {
                    // The batcher took the first alone and is now waiting on CometBFT (the gate).
                    self.entered.acquire().await.unwrap().forget();
                }
            }
            self.gate.add_permits(1000);
            let mut out = Vec::new();
            for a in answers {
                out.push(a.await.unwrap().unwrap());
            }
            out
        }

        fn seen(&self) -> Vec<Vec<u8>> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn transactions_queued_behind_a_submission_go_as_one_bundle_in_arrival_order() {
        let rig = start(64);
        let txs: Vec<Vec<u8>> = (1..=5).map(tx).collect();
        let answers = rig.submit_all(txs.clone()).await;
        assert_eq!(rig.seen(), vec![txs[0].clone(), encode_bundle(&txs[1..])]);
        for (answer, t) in answers.iter().zip(&txs) {
            assert_eq!(answer.check_tx.code, 0);
            assert_eq!(answer.hash, tx_hash(t).to_string());
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refused_bundle_is_resubmitted_one_by_one_so_only_the_bad_transaction_fails() {
        let rig = start(64);
        let mut txs: Vec<Vec<u8>> = (1..=4).map(tx).collect();
        txs[2] = tx(0xEE);
        let answers = rig.submit_all(txs.clone()).await;
        let codes: Vec<u32> = answers.iter().map(|a| a.check_tx.code).collect();
        assert_eq!(codes, vec![0, 0, 1, 0]);
        assert_eq!(
            rig.seen(),
            vec![
                txs[0].clone(),
                encode_bundle(&txs[1..]),
                txs[1].clone(),
                txs[2].clone(),
                txs[3].clone()
            ]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bundles_respect_the_count_limit_and_a_limit_below_two_sends_everything_bare() {
        let rig = start(2);
        let txs: Vec<Vec<u8>> = (1..=6).map(tx).collect();
        rig.submit_all(txs.clone()).await;
        assert_eq!(
            rig.seen(),
            vec![
                txs[0].clone(),
                encode_bundle(&txs[1..3]),
                encode_bundle(&txs[3..5]),
                txs[5].clone()
            ]
        );
        // Bare submissions run concurrently, as many as arrive, so only the set is certain.
        let rig = start(1);
        rig.submit_all(txs.clone()).await;
        let mut seen = rig.seen();
        seen.sort();
        assert_eq!(seen, txs);
    }
}
