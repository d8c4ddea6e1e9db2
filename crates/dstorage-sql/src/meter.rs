//! The cost meter: SQLite VM steps, counted by the progress handler, plus the bytes a
//! statement produces, against a limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// VM steps between two progress-handler calls. Small, so a runaway statement is stopped
/// within this many steps of the limit; large enough that the callback costs little.
pub const PROGRESS_STEP: u64 = 16;

/// Bytes that cost one step: the rate at which produced values are charged.
///
/// With the default limit of 10,000,000 steps a call can produce at most 80 MB of values
/// (as counted by [`value_bytes`]), whatever its VM steps (docs/sql.md, "Cost").
pub const BYTES_PER_STEP: u64 = 8;

/// What one value counts, on top of its TEXT or BLOB bytes: the size of a value in memory
/// (`dstorage_types::Value` is 32 bytes), so that many small values are paid for too.
pub const VALUE_OVERHEAD: u64 = 32;

/// The bytes one value counts: [`VALUE_OVERHEAD`] plus its TEXT or BLOB length.
pub(crate) fn value_bytes(payload: usize) -> u64 {
    VALUE_OVERHEAD.saturating_add(payload as u64)
}

/// The steps `bytes` cost.
pub(crate) fn byte_steps(bytes: u64) -> u64 {
    bytes / BYTES_PER_STEP
}

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
    /// Bytes of the result rows the current statement returned so far (`add_result_bytes`).
    result_bytes: AtomicU64,
    /// Bytes of values written, counted by the change log's hook over the engine's life
    /// (see `Tracker::written_bytes`); never decreases, so a rolled-back write stays paid.
    written: Arc<AtomicU64>,
    /// `written` when the current statement was armed.
    written_at_arm: AtomicU64,
}

/// Name of the SQL function injected into write statements (see `Meter::tick`).
pub(crate) const METER_FUNCTION: &str = "dstorage_meter";

impl Meter {
    pub(crate) fn new() -> Arc<Meter> {
        Arc::new(Meter::default())
    }

    /// A meter that also charges the bytes counted in `written` (the change log's counter).
    pub(crate) fn with_written(written: Arc<AtomicU64>) -> Arc<Meter> {
        Arc::new(Meter {
            written,
            ..Meter::default()
        })
    }

    /// Start metering a statement that may spend `budget` steps; `writes` says whether it
    /// changes the database.
    pub(crate) fn arm(&self, budget: u64, writes: bool) {
        self.ticks.store(0, Ordering::Relaxed);
        self.budget.store(budget, Ordering::Relaxed);
        self.soft.store(writes, Ordering::Relaxed);
        self.exceeded.store(false, Ordering::Relaxed);
        self.result_bytes.store(0, Ordering::Relaxed);
        self.written_at_arm
            .store(self.written.load(Ordering::Relaxed), Ordering::Relaxed);
        self.active.store(true, Ordering::Relaxed);
    }

    /// Whether the current statement passed its budget.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Count `bytes` of result values the current statement returned.
    pub(crate) fn add_result_bytes(&self, bytes: u64) {
        self.result_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The steps the current statement's bytes cost so far: its result values and the
    /// values it wrote, at [`BYTES_PER_STEP`].
    pub(crate) fn byte_charge(&self) -> u64 {
        let written = self
            .written
            .load(Ordering::Relaxed)
            .saturating_sub(self.written_at_arm.load(Ordering::Relaxed));
        byte_steps(
            self.result_bytes
                .load(Ordering::Relaxed)
                .saturating_add(written),
        )
    }

    /// Stop metering; returns the cost the handler saw: the steps it counted (a multiple
    /// of `PROGRESS_STEP`) plus the byte charge.
    pub(crate) fn disarm(&self) -> u64 {
        self.active.store(false, Ordering::Relaxed);
        (self.ticks.load(Ordering::Relaxed) * PROGRESS_STEP).saturating_add(self.byte_charge())
    }

    /// The progress callback: true interrupts the statement.
    ///
    /// SQLite answers an interrupted *write* statement by rolling back the whole
    /// transaction, which here is the whole block. So a write is not interrupted at its
    /// budget: the callback only marks it exceeded, and the `dstorage_meter()` call the
    /// guard injects into every WHERE of a write statement then fails it with an ordinary
    /// error, which rolls back only the statement. Reads are interrupted directly. A write
    /// whose VM steps alone run on to four times its budget is interrupted anyway; the
    /// block then reports `BlockAborted` and the node must stop. Bytes never trigger that
    /// last resort: one written row can cost far more in bytes than its budget, and is then
    /// failed by the meter call or the engine's check after the statement.
    pub(crate) fn tick(&self) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        let t = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let steps = t.saturating_mul(PROGRESS_STEP);
        let spent = steps.saturating_add(self.byte_charge());
        let budget = self.budget.load(Ordering::Relaxed);
        if spent <= budget {
            return false;
        }
        self.exceeded.store(true, Ordering::Relaxed);
        !self.soft.load(Ordering::Relaxed)
            || steps > budget.saturating_mul(4).saturating_add(100_000)
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

/// `count(*)` (and `count()`) as an application-defined aggregate, replacing SQLite's.
///
/// For `SELECT count(*) FROM t`, SQLite's built-in compiles to one `OP_Count`
/// instruction, which walks the table's whole b-tree in a single VM step: a million rows
/// cost 9 steps and take 10 ms, so a transaction of many such subqueries kept every node
/// busy for seconds at almost no cost. SQLite takes that shortcut only for its own count
/// function (`isSimpleCount` checks the built-in's `SQLITE_FUNC_COUNT` flag); with this
/// one registered under the same name, the same query compiles to an ordinary loop that
/// steps through the rows (of the smallest covering index), so it is metered per row like
/// any scan, and every node counts the same steps. Results are unchanged. It is a window
/// function too, so `count(*) OVER (...)` behaves as before.
pub(crate) fn install_count(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::ffi;
    use std::ffi::c_int;

    unsafe extern "C" fn step(
        ctx: *mut ffi::sqlite3_context,
        _argc: c_int,
        _argv: *mut *mut ffi::sqlite3_value,
    ) {
        // SAFETY: SQLite passes a valid context; the aggregate context is 8 bytes,
        // zeroed on first use, and aligned for any type (sqlite3_malloc).
        unsafe {
            let n = ffi::sqlite3_aggregate_context(ctx, 8).cast::<i64>();
            if n.is_null() {
                ffi::sqlite3_result_error_nomem(ctx);
            } else {
                *n += 1;
            }
        }
    }
    unsafe extern "C" fn inverse(
        ctx: *mut ffi::sqlite3_context,
        _argc: c_int,
        _argv: *mut *mut ffi::sqlite3_value,
    ) {
        // SAFETY: as in `step`.
        unsafe {
            let n = ffi::sqlite3_aggregate_context(ctx, 8).cast::<i64>();
            if n.is_null() {
                ffi::sqlite3_result_error_nomem(ctx);
            } else {
                *n -= 1;
            }
        }
    }
    unsafe extern "C" fn value(ctx: *mut ffi::sqlite3_context) {
        // SAFETY: as in `step`; a size of 0 does not allocate, and returns null when no
        // row was counted.
        unsafe {
            let n = ffi::sqlite3_aggregate_context(ctx, 0).cast::<i64>();
            ffi::sqlite3_result_int64(ctx, if n.is_null() { 0 } else { *n });
        }
    }
    let name = c"count";
    // SAFETY: the handle is the open connection `conn`; the callbacks match SQLite's
    // signatures and hold no state besides the aggregate context.
    let rc = unsafe {
        ffi::sqlite3_create_window_function(
            conn.handle(),
            name.as_ptr(),
            0,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS,
            std::ptr::null_mut(),
            Some(step),
            Some(value),
            Some(value),
            Some(inverse),
            None,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}
