//! What `dstorage devnet` prints after its banner: one line per block with transactions (height, how many,
//! their outcomes, the app hash) and, while nothing happens, a progress line now and then. CometBFT's own log
//! goes to a file in the node's home instead ([`crate::run::cometbft_log_path`]).

use std::collections::BTreeMap;
use std::time::Duration;

use dstorage_app::{App, CommitEvent};
use dstorage_types::result::ResultCode;

use crate::cometbft::CometRpc;

/// How often an idle devnet says it is still making blocks.
pub const IDLE_LINE_EVERY: Duration = Duration::from_secs(30);

/// The line for a committed block, or `None` for a block without transactions.
pub fn block_line(e: &CommitEvent) -> Option<String> {
    if e.txs.is_empty() {
        return None;
    }
    let mut failed: BTreeMap<&str, usize> = BTreeMap::new();
    for code in &e.codes {
        if *code != ResultCode::Ok {
            *failed.entry(code.name()).or_default() += 1;
        }
    }
    let ok = e.codes.len() - failed.values().sum::<usize>();
    let mut outcome = format!("{ok} ok");
    for (name, n) in failed {
        outcome.push_str(&format!(", {n} {name}"));
    }
    let n = e.txs.len();
    Some(format!(
        "height {:<6} {n} tx{} ({outcome})  app hash {}",
        e.height,
        if n == 1 { "" } else { "s" },
        hex::encode_upper(e.app_hash)
    ))
}

/// The line an idle devnet prints every [`IDLE_LINE_EVERY`].
pub fn idle_line(height: u64, empty_blocks: u64) -> String {
    format!(
        "height {height:<6} no transactions ({empty_blocks} empty block{} in the last {} s)",
        if empty_blocks == 1 { "" } else { "s" },
        IDLE_LINE_EVERY.as_secs()
    )
}

/// How long [`announce`] waits for CometBFT before it prints the banner anyway.
pub const READY_WAIT: Duration = Duration::from_secs(60);

/// Print `banner` once CometBFT's RPC answers (or after [`READY_WAIT`]), then [`print_blocks`].
pub async fn announce(rpc: Option<CometRpc>, banner: String, app: App) {
    if let Some(rpc) = rpc {
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        while rpc.status().await.is_err() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    print!("{banner}");
    print_blocks(app).await
}

/// Print [`block_line`]s and [`idle_line`]s to stdout until the app stops publishing commits.
pub async fn print_blocks(app: App) {
    let mut commits = app.subscribe();
    let mut tick = tokio::time::interval(IDLE_LINE_EVERY);
    tick.tick().await; // the first tick is immediate
    let (mut height, mut empty, mut printed) = (app.committed().height, 0u64, false);
    loop {
        tokio::select! {
            event = commits.recv() => match event {
                Ok(e) => {
                    height = e.height;
                    match block_line(&e) {
                        Some(line) => {
                            println!("{line}");
                            printed = true;
                        }
                        None => empty += 1,
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
            _ = tick.tick() => {
                if !printed {
                    println!("{}", idle_line(height, empty));
                }
                (empty, printed) = (0, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dstorage_types::tx::TxHash;

    fn event(codes: Vec<ResultCode>) -> CommitEvent {
        CommitEvent {
            height: 42,
            app_hash: [0xAB; 32],
            txs: codes.iter().map(|_| TxHash([7; 32])).collect(),
            codes,
            execution: Duration::ZERO,
            changeset_records: 0,
            changeset_bytes: 0,
            schema_changed: false,
        }
    }

    #[test]
    fn a_block_with_transactions_is_one_line_with_height_outcomes_and_app_hash() {
        let line = block_line(&event(vec![
            ResultCode::Ok,
            ResultCode::SqlError,
            ResultCode::Ok,
        ]))
        .expect("a line");
        assert_eq!(
            line,
            format!(
                "height 42     3 txs (2 ok, 1 sql_error)  app hash {}",
                "AB".repeat(32)
            )
        );
        assert!(block_line(&event(vec![ResultCode::Ok]))
            .expect("a line")
            .contains(" 1 tx (1 ok) "));
    }

    #[test]
    fn an_empty_block_prints_nothing_and_idle_lines_count_them() {
        assert_eq!(block_line(&event(Vec::new())), None);
        assert_eq!(
            idle_line(7, 29),
            "height 7      no transactions (29 empty blocks in the last 30 s)"
        );
    }
}
