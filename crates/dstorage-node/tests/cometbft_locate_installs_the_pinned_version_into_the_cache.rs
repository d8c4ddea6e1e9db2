//! On first use `locate_cometbft` installs the pinned version with `go install` into the per-version cache folder,
//! then checks what it built.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use dstorage_node::cometbft::{cometbft_cache_dir, CometError, CometbftLocator, COMETBFT_VERSION};

/// Tests here write scripts and then run programs. Writing an executable while another test thread forks makes
/// exec fail with "Text file busy": the forked child holds the write descriptor until its own exec. So tests in
/// this binary take turns.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
/// A fake `go` that records its arguments and, for `install`, puts a script printing `version` into `$GOBIN`.
/// It is not Go: the real `go install` takes minutes and the network, and the real path is covered by
/// `scripts/install-cometbft.sh`, which CI runs; this checks what the node asks Go for.
fn fake_go(dir: &Path, version: &str, exit: i32) -> PathBuf {
    let path = dir.join("go");
    let script = format!(
        "#!/bin/sh\necho \"$@\" > \"{log}\"\necho \"$GOBIN\" >> \"{log}\"\n\
         printf '#!/bin/sh\\necho {version}\\n' > \"$GOBIN/cometbft\"\nchmod +x \"$GOBIN/cometbft\"\nexit {exit}\n",
        log = dir.join("go.log").display()
    );
    std::fs::write(&path, script).expect("write fake go");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod fake go");
    path
}

#[test]
fn a_missing_binary_is_installed_with_go_install_into_the_version_folder() {
    let _turn = turn();
    let dir = tempfile::tempdir().expect("temp dir");
    let pinned = COMETBFT_VERSION.trim_start_matches('v');
    let locator = CometbftLocator {
        binary: None,
        cache_root: dir.path().join("cache"),
        go: fake_go(dir.path(), pinned, 0),
    };
    let bin = locator.locate().expect("installed");
    let folder = cometbft_cache_dir(&dir.path().join("cache"));
    assert_eq!(bin, folder.join("cometbft"));
    let log = std::fs::read_to_string(dir.path().join("go.log")).expect("go was run");
    let expected = format!(
        "install github.com/cometbft/cometbft/cmd/cometbft@{COMETBFT_VERSION}\n{}\n",
        folder.display()
    );
    assert_eq!(log, expected);

    // Found in the cache the second time: go is not run again.
    std::fs::remove_file(dir.path().join("go.log")).expect("clear log");
    assert_eq!(locator.locate().expect("cached"), bin);
    assert!(
        !dir.path().join("go.log").exists(),
        "go ran although the cache held the binary"
    );
}

#[test]
fn a_failed_install_names_the_version_and_folder() {
    let _turn = turn();
    let dir = tempfile::tempdir().expect("temp dir");
    let locator = CometbftLocator {
        binary: None,
        cache_root: dir.path().join("cache"),
        go: fake_go(dir.path(), "irrelevant", 1),
    };
    let err = locator.locate().unwrap_err();
    assert!(matches!(err, CometError::InstallFailed { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(COMETBFT_VERSION), "{message}");
    assert!(
        message.contains(
            &cometbft_cache_dir(&dir.path().join("cache"))
                .display()
                .to_string()
        ),
        "{message}"
    );

    let locator = CometbftLocator {
        go: dir.path().join("no-go-here"),
        ..locator
    };
    let message = locator.locate().unwrap_err().to_string();
    assert!(
        message.contains("no-go-here") && message.contains("Go is needed"),
        "{message}"
    );
}

#[test]
fn a_cached_binary_of_another_version_is_reinstalled() {
    let _turn = turn();
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = cometbft_cache_dir(&dir.path().join("cache"));
    std::fs::create_dir_all(&folder).expect("cache folder");
    std::fs::write(folder.join("cometbft"), "#!/bin/sh\necho 0.38.0\n").expect("stale binary");
    std::fs::set_permissions(
        folder.join("cometbft"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let pinned = COMETBFT_VERSION.trim_start_matches('v');
    let locator = CometbftLocator {
        binary: None,
        cache_root: dir.path().join("cache"),
        go: fake_go(dir.path(), pinned, 0),
    };
    assert_eq!(
        locator.locate().expect("reinstalled"),
        folder.join("cometbft")
    );
    assert!(
        dir.path().join("go.log").exists(),
        "the stale binary was not replaced"
    );
}
