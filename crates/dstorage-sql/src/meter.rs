//! The cost meter: SQLite VM steps, counted by the progress handler, against a limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// VM steps between two progress-handler calls. Small, so a runaway statement is stopped
/// within this many steps of the limit; large enough that the callback costs little.
pub const PROGRESS_STEP: u64 = 16;

/// Shared between the connection's progress handler and the engine.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    /// Metering is on (off for the engine's own statements).
    active: AtomicBool,
    /// Steps counted by the handler since `arm` (in units of `PROGRESS_STEP`).
    ticks: AtomicU64,
    /// Steps that may still be spent in the current statement.
    budget: AtomicU64,
}

impl Meter {
    pub(crate) fn new() -> Arc<Meter> {
        Arc::new(Meter::default())
    }

    /// Start metering a statement that may spend `budget` steps.
    pub(crate) fn arm(&self, budget: u64) {
        self.ticks.store(0, Ordering::Relaxed);
        self.budget.store(budget, Ordering::Relaxed);
        self.active.store(true, Ordering::Relaxed);
    }

    /// Stop metering; returns the steps the handler counted (a multiple of `PROGRESS_STEP`).
    pub(crate) fn disarm(&self) -> u64 {
        self.active.store(false, Ordering::Relaxed);
        self.ticks.load(Ordering::Relaxed) * PROGRESS_STEP
    }

    /// The progress callback: true interrupts the statement.
    pub(crate) fn tick(&self) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        let t = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        t.saturating_mul(PROGRESS_STEP) > self.budget.load(Ordering::Relaxed)
    }

    /// Install the progress handler on `conn`.
    pub(crate) fn install(
        self: &Arc<Self>,
        conn: &mut rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        let meter = Arc::clone(self);
        // PROGRESS_STEP is a small constant; the cast cannot truncate.
        conn.progress_handler(PROGRESS_STEP as i32, Some(move || meter.tick()))
    }
}
