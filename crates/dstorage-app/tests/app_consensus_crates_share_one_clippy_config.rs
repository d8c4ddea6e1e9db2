//! The consensus crates (types, auth, sql, app) ban, by clippy lint, what could make two validators compute
//! different states: hash-ordered collections, clocks and thread spawning (`clippy.toml` in each crate's
//! directory, which is where clippy reads it). The four files must stay one configuration, and no crate outside
//! them may pick it up by accident from a parent directory.

use std::path::Path;

const CONSENSUS_CRATES: [&str; 4] = [
    "dstorage-types",
    "dstorage-auth",
    "dstorage-sql",
    "dstorage-app",
];

#[test]
fn the_consensus_crates_share_one_clippy_config_that_bans_hash_order_clocks_and_threads() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |name: &str| {
        std::fs::read_to_string(crates.join(name).join("clippy.toml"))
            .unwrap_or_else(|e| panic!("{name}/clippy.toml: {e}"))
    };
    let first = read(CONSENSUS_CRATES[0]);
    for name in &CONSENSUS_CRATES[1..] {
        assert_eq!(
            read(name),
            first,
            "{name}/clippy.toml differs from {}",
            CONSENSUS_CRATES[0]
        );
    }
    for banned in [
        "std::collections::HashMap",
        "std::collections::HashSet",
        "std::time::SystemTime::now",
        "std::time::Instant::now",
        "std::thread::spawn",
        "std::thread::Builder::spawn",
        "tokio::spawn",
        "tokio::task::spawn_blocking",
    ] {
        assert!(
            first.contains(&format!("path = \"{banned}\"")),
            "{banned} is not banned"
        );
    }
    // Every entry says why.
    for entry in first.lines().filter(|l| l.contains("path = ")) {
        assert!(entry.contains("reason = \""), "no reason: {entry}");
    }
    // A clippy.toml at the workspace root would apply to the node and client crates too.
    let root = crates.join("..");
    assert!(!root.join("clippy.toml").exists() && !root.join(".clippy.toml").exists());
}
