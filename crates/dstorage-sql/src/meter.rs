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
    /// The current statement writes: do not interrupt it at the budget (see `tick`).
    soft: AtomicBool,
    /// The budget has been passed in the current statement.
    exceeded: AtomicBool,
}

/// Name of the SQL function injected into write statements (see `Meter::tick`).
pub(crate) const METER_FUNCTION: &str = "dstorage_meter";

impl Meter {
    pub(crate) fn new() -> Arc<Meter> {
        Arc::new(Meter::default())
    }

    /// Start metering a statement that may spend `budget` steps; `writes` says whether it
    /// changes the database.
    pub(crate) fn arm(&self, budget: u64, writes: bool) {
        self.ticks.store(0, Ordering::Relaxed);
        self.budget.store(budget, Ordering::Relaxed);
        self.soft.store(writes, Ordering::Relaxed);
        self.exceeded.store(false, Ordering::Relaxed);
        self.active.store(true, Ordering::Relaxed);
    }

    /// Whether the current statement passed its budget.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Stop metering; returns the steps the handler counted (a multiple of `PROGRESS_STEP`).
    pub(crate) fn disarm(&self) -> u64 {
        self.active.store(false, Ordering::Relaxed);
        self.ticks.load(Ordering::Relaxed) * PROGRESS_STEP
    }

    /// The progress callback: true interrupts the statement.
    ///
    /// SQLite answers an interrupted *write* statement by rolling back the whole
    /// transaction, which here is the whole block. So a write is not interrupted at its
    /// budget: the callback only marks it exceeded, and the `dstorage_meter()` call the
    /// guard injects into every WHERE of a write statement then fails it with an ordinary
    /// error, which rolls back only the statement. Reads are interrupted directly. A write
    /// that somehow runs on to four times its budget is interrupted anyway; the block then
    /// reports `BlockAborted` and the node must stop.
    pub(crate) fn tick(&self) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        let t = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let spent = t.saturating_mul(PROGRESS_STEP);
        let budget = self.budget.load(Ordering::Relaxed);
        if spent <= budget {
            return false;
        }
        self.exceeded.store(true, Ordering::Relaxed);
        !self.soft.load(Ordering::Relaxed)
            || spent > budget.saturating_mul(4).saturating_add(100_000)
    }

    /// Register `dstorage_meter()` on `conn`: 1 while within budget, an error after.
    /// Not deterministic on purpose, so SQLite evaluates it per row instead of hoisting it.
    pub(crate) fn install_function(
        self: &Arc<Self>,
        conn: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        let meter = Arc::clone(self);
        conn.create_scalar_function(
            METER_FUNCTION,
            -1,
            // INNOCUOUS, not DIRECTONLY: the guard puts the call into view bodies too (a
            // write that reads a view must be metered inside it), and with trusted_schema
            // off SQLite runs only innocuous functions from a view. It has no side effect:
            // it only fails once the statement is over budget.
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_INNOCUOUS,
            move |_ctx| {
                if meter.exceeded() {
                    Err(rusqlite::Error::UserFunctionError(
                        "cost limit exceeded".into(),
                    ))
                } else {
                    Ok(1i64)
                }
            },
        )
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
