//! Leaf helpers every layer of the app may use: the thread CPU clock (metrics only), panic messages, and
//! locks that survive a poisoned mutex. They depend on nothing else in the crate.

use std::sync::Mutex;

/// The calling thread's CPU time (user + system). Used for the time counters instead of the wall clock, which on a
/// busy machine would also count the time the thread waited for a core.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on every Linux.
    #[allow(
        clippy::disallowed_methods,
        reason = "CPU time feeds the time counters (metrics) only, never state or results"
    )]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Lock `m`, taking the data even if a panicking holder poisoned it (every user keeps it consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
