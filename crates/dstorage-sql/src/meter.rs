//! The cost meter: SQLite VM steps, counted by the progress handler, plus the bytes a
//! statement produces and the bytes SQLite's VM moves while running it, against a limit.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::ffi;

extern "C" {
    /// The bytes the VM of `db` has moved since the connection was opened: a counter our
    /// SQLite patch adds (vendor/libsqlite3-sys/dstorage-bytes-moved.patch). A build
    /// without the patch does not link.
    fn sqlite3_dstorage_bytes_moved(db: *mut ffi::sqlite3) -> u64;
    /// Have the VM of `db` stop the running statement with "cost limit exceeded" as soon as
    /// its moved-bytes counter passes `limit` (0: never). Same patch.
    fn sqlite3_dstorage_set_moved_limit(db: *mut ffi::sqlite3, limit: u64);
}

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
    /// The budget has been passed in the current statement.
    exceeded: AtomicBool,
    /// Bytes of the result rows the current statement returned so far (`add_result_bytes`).
    result_bytes: AtomicU64,
    /// Bytes of values written, counted by the change log's hook over the engine's life
    /// (see `Tracker::written_bytes`); never decreases, so a rolled-back write stays paid.
    written: Arc<AtomicU64>,
    /// `written` when the current statement was armed.
    written_at_arm: AtomicU64,
    /// The connection whose moved bytes are charged (set by `install`; null before, and
    /// then nothing is counted).
    db: AtomicPtr<ffi::sqlite3>,
    /// The connection's moved-bytes counter when the current statement was armed.
    moved_at_arm: AtomicU64,
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

    /// Start metering a statement that may spend `budget` steps.
    pub(crate) fn arm(&self, budget: u64) {
        self.ticks.store(0, Ordering::Relaxed);
        self.budget.store(budget, Ordering::Relaxed);
        self.exceeded.store(false, Ordering::Relaxed);
        self.result_bytes.store(0, Ordering::Relaxed);
        self.written_at_arm
            .store(self.written.load(Ordering::Relaxed), Ordering::Relaxed);
        let moved = self.moved();
        self.moved_at_arm.store(moved, Ordering::Relaxed);
        self.limit_moved(moved, budget);
        self.active.store(true, Ordering::Relaxed);
    }

    /// Have SQLite stop the statement once the bytes it moves from now on, at
    /// [`BYTES_PER_STEP`], pass `left` steps (with the counter at `moved` now). Between two
    /// progress calls the steps are not counted, so this only bounds a stretch of
    /// instructions without a progress check (docs/sql.md, "Cost"); it depends only on the
    /// counts, so it stops a statement at the same point everywhere.
    fn limit_moved(&self, moved: u64, left: u64) {
        let limit = moved.saturating_add(left.saturating_add(1).saturating_mul(BYTES_PER_STEP));
        self.set_moved_limit(limit);
    }

    /// Set the connection's moved-bytes limit (0: none).
    fn set_moved_limit(&self, limit: u64) {
        let db = self.db.load(Ordering::Relaxed);
        if !db.is_null() {
            // SAFETY: as in `moved`; the function only stores one counter.
            unsafe { sqlite3_dstorage_set_moved_limit(db, limit) }
        }
    }

    /// The connection's count of the bytes its VM moved (see `sqlite3_dstorage_bytes_moved`).
    fn moved(&self) -> u64 {
        let db = self.db.load(Ordering::Relaxed);
        if db.is_null() {
            return 0;
        }
        // SAFETY: `db` is the handle of the open connection this meter was installed on;
        // the meter is only read on the thread that runs that connection's statements
        // (from its progress handler, or by the engine between steps), and the function
        // only reads one counter.
        unsafe { sqlite3_dstorage_bytes_moved(db) }
    }

    /// The bytes the VM moved since the current statement was armed.
    pub(crate) fn moved_bytes(&self) -> u64 {
        self.moved()
            .saturating_sub(self.moved_at_arm.load(Ordering::Relaxed))
    }

    /// Whether the current (or last) statement passed its budget.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Forget that the last statement passed its budget, before the next one is prepared.
    pub(crate) fn clear_exceeded(&self) {
        self.exceeded.store(false, Ordering::Relaxed);
    }

    /// Count `bytes` of result values the current statement returned.
    pub(crate) fn add_result_bytes(&self, bytes: u64) {
        self.result_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The steps the current statement's bytes cost so far: its result values, the values
    /// it wrote and the bytes the VM moved, at [`BYTES_PER_STEP`].
    pub(crate) fn byte_charge(&self) -> u64 {
        let written = self
            .written
            .load(Ordering::Relaxed)
            .saturating_sub(self.written_at_arm.load(Ordering::Relaxed));
        byte_steps(
            self.result_bytes
                .load(Ordering::Relaxed)
                .saturating_add(written)
                .saturating_add(self.moved_bytes()),
        )
    }

    /// Stop metering; returns the cost the handler saw: the steps it counted (a multiple
    /// of `PROGRESS_STEP`) plus the byte charge. A statement that SQLite stopped at the
    /// moved-bytes limit is marked exceeded here (its cost is then past the budget).
    pub(crate) fn disarm(&self) -> u64 {
        if !self.active.swap(false, Ordering::Relaxed) {
            return (self.ticks.load(Ordering::Relaxed) * PROGRESS_STEP)
                .saturating_add(self.byte_charge());
        }
        self.set_moved_limit(0);
        let spent =
            (self.ticks.load(Ordering::Relaxed) * PROGRESS_STEP).saturating_add(self.byte_charge());
        if spent > self.budget.load(Ordering::Relaxed) {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        spent
    }

    /// The progress callback: true stops the statement.
    ///
    /// It stops any statement, reads and writes alike, as soon as the steps counted plus
    /// the byte charge pass the budget. Our SQLite patch (dstorage-bytes-moved.patch) makes
    /// a stop by the progress handler an ordinary error (`cost limit exceeded`), which
    /// SQLite answers by undoing the statement only; unpatched, SQLite would report
    /// SQLITE_INTERRUPT and roll back the whole transaction of a write, here the whole
    /// block. So a write's loops are stopped at the limit wherever they are, also the
    /// insert loop of an `INSERT ... SELECT` over its sorted rows, which calls no
    /// `dstorage_meter()`. The point where a statement stops depends only on its step and
    /// byte counts, so it is the same on every node.
    pub(crate) fn tick(&self) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        let t = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let steps = t.saturating_mul(PROGRESS_STEP);
        let moved = self.moved();
        let spent = steps.saturating_add(self.byte_charge());
        let budget = self.budget.load(Ordering::Relaxed);
        if spent <= budget {
            self.limit_moved(moved, budget - spent);
            return false;
        }
        self.exceeded.store(true, Ordering::Relaxed);
        true
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

    /// Install the progress handler on `conn`, and charge the bytes its VM moves.
    pub(crate) fn install(
        self: &Arc<Self>,
        conn: &mut rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        // SAFETY: the handle is only passed to `sqlite3_dstorage_bytes_moved` while the
        // connection runs a metered statement (see `moved`).
        self.db.store(unsafe { conn.handle() }, Ordering::Relaxed);
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
