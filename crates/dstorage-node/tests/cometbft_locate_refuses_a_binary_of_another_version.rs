//! `locate_cometbft` accepts only the pinned version and says clearly what it found instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use dstorage_node::cometbft::{
    check_cometbft_version, locate_cometbft, CometError, CometbftLocator, COMETBFT_VERSION,
};

/// Tests here write scripts and then run programs. Writing an executable while another test thread forks makes
/// exec fail with "Text file busy": the forked child holds the write descriptor until its own exec. So tests in
/// this binary take turns.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
/// A fake `cometbft` that prints another version. It is not CometBFT and is used only to test the error path;
/// every other test runs the real pinned binary.
fn fake_cometbft(dir: &Path, version: &str) -> PathBuf {
    let path = dir.join("cometbft");
    std::fs::write(&path, format!("#!/bin/sh\necho {version}\n")).expect("write fake");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod fake");
    path
}

#[test]
fn a_binary_of_another_version_is_refused_naming_both_versions() {
    let _turn = turn();
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = fake_cometbft(dir.path(), "0.37.4");
    let locator = CometbftLocator {
        binary: Some(fake.clone()),
        cache_root: dir.path().join("cache"),
        // Must not be used: an explicit binary is never replaced.
        go: dir.path().join("no-go"),
    };
    let err = locator.locate().unwrap_err();
    match &err {
        CometError::VersionMismatch {
            path,
            expected,
            found,
        } => {
            assert_eq!(path, &fake);
            assert_eq!(*expected, COMETBFT_VERSION);
            assert_eq!(found, "0.37.4");
        }
        other => panic!("expected a version mismatch, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("0.37.4") && message.contains(COMETBFT_VERSION),
        "{message}"
    );
    assert!(message.contains(&fake.display().to_string()), "{message}");
    // An explicit binary is never replaced by an install into the cache.
    assert!(!dir.path().join("cache").exists());
}

#[test]
fn the_environment_variable_names_the_binary() {
    let _turn = turn();
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = fake_cometbft(dir.path(), "0.38.0");
    // The only test in this binary that reads DSTORAGE_COMETBFT; the other builds its locator directly.
    let real = locate_cometbft().expect("pinned CometBFT");
    check_cometbft_version(&real).expect("the located binary is the pinned version");
    let before = std::env::var_os("DSTORAGE_COMETBFT");
    std::env::set_var("DSTORAGE_COMETBFT", &fake);
    let err = locate_cometbft().unwrap_err();
    match before {
        Some(value) => std::env::set_var("DSTORAGE_COMETBFT", value),
        None => std::env::remove_var("DSTORAGE_COMETBFT"),
    }
    assert!(
        matches!(err, CometError::VersionMismatch { ref found, .. } if found == "0.38.0"),
        "{err}"
    );
}
