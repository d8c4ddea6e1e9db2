//! `dstorage bench` on a 1-node network for a few seconds: it starts the node, commits transactions and reports
//! throughput, latency percentiles and CPU shares that make sense.

use std::process::Command;

#[test]
fn bench_runs_and_reports_committed_throughput() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_dstorage"))
        .args([
            "bench",
            "--validators",
            "1",
            "--clients",
            "4",
            "--window",
            "8",
            "--seconds",
            "3",
            "--warmup",
            "1",
            "--json",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run dstorage bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("bench --json printed no JSON ({e}):\n{stdout}\n{stderr}"));
    let networks = report["networks"].as_array().expect("networks");
    assert_eq!(networks.len(), 1, "{report:#}");
    let net = &networks[0];
    assert_eq!(net["validators"], 1, "{report:#}");
    let committed = net["committed_tx"].as_u64().expect("committed_tx");
    assert!(committed > 0, "nothing committed: {report:#}");
    let p50 = net["latency_ms"]["p50"].as_f64().expect("p50");
    let p99 = net["latency_ms"]["p99"].as_f64().expect("p99");
    assert!(p50 > 0.0 && p50 <= p99, "p50 {p50} p99 {p99}: {report:#}");
    for share in ["signature", "sql", "consensus", "other"] {
        let v = net["cpu_share"][share].as_f64().expect(share);
        assert!((0.0..=1.0).contains(&v), "{share} share {v}: {report:#}");
    }
    let cpu = net["cpu_seconds"]["dstorage"]
        .as_f64()
        .expect("dstorage cpu")
        + net["cpu_seconds"]["cometbft"]
            .as_f64()
            .expect("cometbft cpu");
    let per_tx = net["cpu_ms_per_tx"].as_f64().expect("cpu_ms_per_tx");
    assert!(
        per_tx > 0.0 && (per_tx - cpu * 1000.0 / committed as f64).abs() < 1e-6,
        "cpu_ms_per_tx {per_tx} vs {cpu} s over {committed} txs: {report:#}"
    );
    // The signature and SQL counters come from the node's /metrics: both must have moved under load.
    assert!(
        net["cpu_seconds"]["sql"].as_f64().unwrap_or(0.0) > 0.0,
        "{report:#}"
    );
    assert!(
        net["cpu_seconds"]["signature"].as_f64().unwrap_or(0.0) > 0.0,
        "{report:#}"
    );
    // Every CometBFT transaction the API submitted carried at least one signed transaction.
    let per_submission = net["txs_per_submission"]
        .as_f64()
        .expect("txs_per_submission");
    assert!(per_submission >= 1.0, "{report:#}");
    assert!(report["bundle_max_txs"].as_u64().is_some(), "{report:#}");
}
