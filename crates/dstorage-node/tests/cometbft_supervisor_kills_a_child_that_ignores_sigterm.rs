//! `shutdown` escalates to SIGKILL when the child ignores SIGTERM, and the whole process group is gone after.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use dstorage_node::cometbft::CometProcess;

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A fake `cometbft` that ignores SIGTERM, used only to exercise the SIGKILL path (a real CometBFT stops on
    // SIGTERM, as the kvstore tests show). Its `sleep` children share its process group.
    let fake = dir.path().join("stubborn");
    std::fs::write(&fake, "#!/bin/sh\ntrap '' TERM\necho 'I[2025-01-01|00:00:00.000] started'\nwhile true; do sleep 0.05; done\n")
        .expect("write fake");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod fake");

    let mut child = CometProcess::spawn(&fake, dir.path()).expect("spawn");
    let pid = i32::try_from(child.id().expect("pid")).expect("pid fits");
    // Wait until the script runs its loop (its first line is out), so the trap is installed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.recent_log().is_empty() {
        assert!(Instant::now() < deadline, "the fake never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let status = child
        .shutdown_within(Duration::from_millis(300))
        .await
        .expect("shutdown");
    let took = started.elapsed();
    assert_eq!(status.signal(), Some(9), "expected SIGKILL, got {status}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "shutdown took {took:?}"
    );
    // The group's other members (the script's `sleep`) die with it; once orphaned they are reaped by init, so
    // allow that a moment before the group must be empty.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), None) {
            Err(nix::errno::Errno::ESRCH) => break,
            other => assert!(
                Instant::now() < deadline,
                "group {pid} still has processes: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
