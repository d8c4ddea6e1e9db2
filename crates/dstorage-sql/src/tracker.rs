//! The block's own record of row changes, taken from SQLite's pre-update hook, and its
//! turning into canonical row records.
//!
//! Every insert, update and delete of a user table reaches the hook with its values. The
//! hook appends them, already in the changeset's value encoding, to a log; a transaction
//! that fails cuts the log back to where it started. At the end of a section the log's
//! events are grouped by (table, key): a row's state before its first event and after its
//! last one give its record, which is exactly the netting SQLite's session extension does
//! by comparing each touched row's pre-image with the table at the end (docs/changeset.md).
//!
//! Why not the session extension, which the first engine used: it stores only each row's
//! key and old values and, to write its changeset, looks every touched row up in its table
//! again, then we parsed its bytes and sorted them. Capturing the new values in the hook
//! costs less than that second lookup, and the records are encoded straight from the log.
//! The price is that the engine must cut the log back at every rollback itself; it can,
//! because it opens and rolls back every savepoint (see `Block::finish_tx`).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{ffi, Connection};

use crate::changeset::{
    encode_bytes, encode_integer, encode_row, Encoded, RowOp, TAG_BLOB as BLOB,
    TAG_INTEGER as INTEGER, TAG_NULL as NULL, TAG_TEXT as TEXT,
};
use crate::meter::{value_bytes, Meter};
use crate::names::split_physical;
use crate::SqlError;

/// What one hook call saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Insert,
    Update,
    Delete,
}

/// One hook call: the values live in `Log::values`, each list `columns` encoded values long.
#[derive(Clone, Copy, Debug)]
struct Event {
    table: u32,
    op: Op,
    columns: u16,
    /// Start of the old values (update, delete).
    old: usize,
    /// Start of the new values (insert, update).
    new: usize,
}

/// Where a failed transaction cuts the log back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    events: usize,
    values: usize,
    charged: u64,
}

/// Bytes a row change counts beyond its values (see [`change_charge`]).
const CHANGE_OVERHEAD: u64 = 64;

/// What one row change counts against the write limits: its encoded values (old and new,
/// as the log holds them), two bytes per column per value list, the table name, and
/// [`CHANGE_OVERHEAD`]. At least half of what it can add to the block's changeset (a record
/// repeats the key and names each column's position) and more than it holds in the log.
fn change_charge(values: usize, columns: u16, lists: u64, table: usize) -> u64 {
    (values as u64)
        .saturating_add(2 * u64::from(columns) * lists)
        .saturating_add(table as u64)
        .saturating_add(CHANGE_OVERHEAD)
}

/// The events of the current section.
#[derive(Clone, Debug)]
pub(crate) struct Log {
    /// Only a block's changes are recorded (see `Tracker::start`).
    active: bool,
    /// The first thing the hook could not record (it cannot return an error); reported by
    /// `encode_rows`, so the block fails instead of hashing an incomplete changeset.
    error: Option<String>,
    /// Table ids: index into `names`.
    names: Vec<String>,
    /// Lookup of a hook's table name: its id, or None for a table outside the changeset
    /// (system tables). Only looked up, never iterated, so its order cannot leak.
    #[allow(
        clippy::disallowed_types,
        reason = "only looked up, never iterated: its order cannot reach the changeset"
    )]
    ids: std::collections::HashMap<Vec<u8>, Option<u32>>,
    /// The last lookup, since consecutive events nearly always name the same table.
    last: Option<(Vec<u8>, Option<u32>)>,
    events: Vec<Event>,
    values: Vec<u8>,
    /// What the block's live changes count against the write limits (see [`change_charge`]):
    /// kept across sections, cut back with the log when a transaction fails.
    charged: u64,
    /// The most `charged` may reach; a change that would pass it is not recorded, and
    /// `over` is set instead (see [`Tracker::arm`]).
    ceiling: u64,
    /// A change did not fit under `ceiling`: the transaction must fail.
    over: bool,
    /// The connection's cost meter, used to stop a statement that passed `ceiling`.
    meter: Option<Arc<Meter>>,
    /// Bytes of every value recorded since the tracker was made, as the meter counts them
    /// (`meter::value_bytes`). Shared with the meter, which charges a statement for the
    /// values it writes while it runs; kept across `start`, `restore` and rollbacks, so
    /// it never decreases.
    written: Arc<AtomicU64>,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            active: false,
            error: None,
            names: Vec::new(),
            ids: Default::default(),
            last: None,
            events: Vec::new(),
            values: Vec::new(),
            charged: 0,
            ceiling: u64::MAX,
            over: false,
            meter: None,
            written: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Log {
    fn table_id(&mut self, table: &[u8]) -> Option<u32> {
        if let Some((name, id)) = &self.last {
            if name.as_slice() == table {
                return *id;
            }
        }
        let id = match self.ids.get(table) {
            Some(id) => *id,
            None => {
                let user = std::str::from_utf8(table)
                    .ok()
                    .filter(|t| split_physical(t).is_some());
                let id = user.map(|t| {
                    self.names.push(t.to_owned());
                    (self.names.len() - 1) as u32
                });
                self.ids.insert(table.to_vec(), id);
                id
            }
        };
        self.last = Some((table.to_vec(), id));
        id
    }

    fn fail(&mut self, reason: String) {
        if self.error.is_none() {
            self.error = Some(reason);
        }
    }

    /// Append the row's old (`new` false) or new values as the hook sees them.
    ///
    /// # Safety
    /// `db` must be inside a pre-update hook call for an update, or for a delete (old
    /// values) or insert (new values).
    unsafe fn push_values(
        &mut self,
        db: *mut ffi::sqlite3,
        table: u32,
        new: bool,
    ) -> Option<(usize, u16)> {
        // SAFETY (all calls below): the caller guarantees a pre-update hook is running on
        // `db`, and each value pointer is used before the next call into SQLite.
        let n = unsafe { ffi::sqlite3_preupdate_count(db) };
        let Ok(columns) = u16::try_from(n) else {
            self.fail(format!(
                "table {} has {n} columns",
                self.names[table as usize]
            ));
            return None;
        };
        let at = self.values.len();
        let mut bytes = 0u64;
        for i in 0..n {
            let mut v: *mut ffi::sqlite3_value = std::ptr::null_mut();
            let rc = unsafe {
                if new {
                    ffi::sqlite3_preupdate_new(db, i, &mut v)
                } else {
                    ffi::sqlite3_preupdate_old(db, i, &mut v)
                }
            };
            if rc != ffi::SQLITE_OK || v.is_null() {
                self.values.truncate(at);
                let table = &self.names[table as usize];
                self.fail(format!(
                    "table {table} column {i} could not be read (SQLite code {rc})"
                ));
                return None;
            }
            match unsafe { ffi::sqlite3_value_type(v) } {
                ffi::SQLITE_INTEGER => {
                    encode_integer(&mut self.values, unsafe { ffi::sqlite3_value_int64(v) });
                    bytes = bytes.saturating_add(value_bytes(0));
                }
                // Text is read as a blob too: its UTF-8 bytes as stored. `sqlite3_value_text`
                // would first copy them into a NUL-terminated buffer (a malloc per value).
                t @ (ffi::SQLITE_TEXT | ffi::SQLITE_BLOB) => {
                    let payload = unsafe { sqlite_value_bytes(v) };
                    self.values
                        .push(if t == ffi::SQLITE_TEXT { TEXT } else { BLOB });
                    encode_bytes(&mut self.values, payload);
                    bytes = bytes.saturating_add(value_bytes(payload.len()));
                }
                ffi::SQLITE_NULL => {
                    self.values.push(NULL);
                    bytes = bytes.saturating_add(value_bytes(0));
                }
                _ => {
                    self.values.truncate(at);
                    let table = &self.names[table as usize];
                    self.fail(format!("table {table} column {i} holds a REAL value"));
                    return None;
                }
            }
        }
        self.written.fetch_add(bytes, Ordering::Relaxed);
        Some((at, columns))
    }

    /// The pre-update hook's work: append one event.
    ///
    /// # Safety
    /// Only from the pre-update hook on `db`, with its arguments.
    unsafe fn record(&mut self, db: *mut ffi::sqlite3, op: c_int, db_name: &[u8], table: &[u8]) {
        if !self.active || db_name != b"main" || self.over {
            return;
        }
        let Some(id) = self.table_id(table) else {
            return;
        };
        let start = self.values.len();
        // SAFETY: inside the hook on `db`; old values exist for updates and deletes, new
        // ones for inserts and updates.
        let event = unsafe {
            match op {
                ffi::SQLITE_INSERT => {
                    let Some((at, columns)) = self.push_values(db, id, true) else {
                        return;
                    };
                    Event {
                        table: id,
                        op: Op::Insert,
                        columns,
                        old: 0,
                        new: at,
                    }
                }
                ffi::SQLITE_DELETE => {
                    let Some((at, columns)) = self.push_values(db, id, false) else {
                        return;
                    };
                    Event {
                        table: id,
                        op: Op::Delete,
                        columns,
                        old: at,
                        new: 0,
                    }
                }
                ffi::SQLITE_UPDATE => {
                    let Some((old_at, columns)) = self.push_values(db, id, false) else {
                        return;
                    };
                    let Some((new_at, _)) = self.push_values(db, id, true) else {
                        return;
                    };
                    Event {
                        table: id,
                        op: Op::Update,
                        columns,
                        old: old_at,
                        new: new_at,
                    }
                }
                other => {
                    let table = &self.names[id as usize];
                    self.fail(format!("an unknown change ({other}) to table {table}"));
                    return;
                }
            }
        };
        let lists = if event.op == Op::Update { 2 } else { 1 };
        let charge = change_charge(
            self.values.len() - start,
            event.columns,
            lists,
            self.names[id as usize].len(),
        );
        match self.charged.checked_add(charge) {
            Some(total) if total <= self.ceiling => {
                self.charged = total;
                self.events.push(event);
            }
            _ => {
                // Over the transaction's or the block's write limit. The hook cannot fail the
                // statement, so it stops recording (memory stays bounded) and has SQLite fail
                // it with an ordinary error, which rolls back only the statement: the meter
                // is given a budget of nothing, so within PROGRESS_STEP steps, or at the next
                // value SQLite moves, the statement stops with `cost limit exceeded`; and the
                // length limit goes to its minimum, so a value or a record that needs a new
                // buffer is SQLITE_TOOBIG.
                // The engine restores the limit and reports the write limit
                // (`Block::write_limit_error`).
                self.values.truncate(start);
                self.over = true;
                if let Some(meter) = &self.meter {
                    meter.arm(0);
                }
                // SAFETY: `db` is the connection this hook call runs on.
                unsafe {
                    ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, 0);
                }
            }
        }
    }
}

/// The bytes of a TEXT (UTF-8, the database's encoding) or BLOB value.
///
/// # Safety
/// `v` must be a valid value, and the slice must be dropped before SQLite changes it.
unsafe fn sqlite_value_bytes<'v>(v: *mut ffi::sqlite3_value) -> &'v [u8] {
    // Pointer first, then length, as SQLite's documentation asks.
    let data: *const u8 = unsafe { ffi::sqlite3_value_blob(v).cast() };
    let n = unsafe { ffi::sqlite3_value_bytes(v) };
    if data.is_null() || n <= 0 {
        return &[];
    }
    // SAFETY: SQLite guarantees `n` bytes at `data` until the value changes.
    unsafe { std::slice::from_raw_parts(data, n as usize) }
}

/// SQLite's pre-update hook: `ctx` is the `Mutex<Log>` of the [`Tracker`] that installed
/// it, which outlives the registration (see [`Tracker::install`]).
unsafe extern "C" fn preupdate_hook(
    ctx: *mut c_void,
    db: *mut ffi::sqlite3,
    op: c_int,
    db_name: *const c_char,
    table: *const c_char,
    _old_rowid: i64,
    _new_rowid: i64,
) {
    // SAFETY: see the function comment.
    let log = unsafe { &*(ctx as *const Mutex<Log>) };
    // A panic must not unwind into SQLite. `record` notes problems in `Log::error` rather
    // than panicking; should it panic anyway, the change is missing, so the log is marked
    // unusable and the block fails instead of hashing an incomplete changeset.
    let recorded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the names are NUL-terminated strings SQLite passes for the duration of
        // the call, and `db` is inside this hook call.
        unsafe {
            let db_name = CStr::from_ptr(db_name).to_bytes();
            let table = CStr::from_ptr(table).to_bytes();
            lock(log).record(db, op, db_name, table);
        }
    }));
    if recorded.is_err() {
        lock(log).fail("the pre-update hook panicked".into());
    }
}

/// The change log of the engine's write connection, filled by its pre-update hook.
///
/// The hook is registered with SQLite directly rather than through rusqlite's
/// `preupdate_hook`, whose wrapper validated both names as UTF-8 and wrapped every value
/// for each of a block's thousands of changes: a fifth of the hook's cost.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    log: Arc<Mutex<Log>>,
}

impl Tracker {
    /// Install the hook on `conn`. A connection has one pre-update hook, so the session
    /// extension cannot be used on `conn` afterwards. The owner must call
    /// [`Tracker::uninstall`] before this tracker is dropped (the `Engine` does in `drop`).
    pub(crate) fn install(&self, conn: &mut Connection) {
        let ctx = Arc::as_ptr(&self.log) as *mut c_void;
        // SAFETY: `ctx` points to the log's mutex, alive until `uninstall`; the handle is
        // the open connection `conn`.
        unsafe {
            ffi::sqlite3_preupdate_hook(conn.handle(), Some(preupdate_hook), ctx);
        }
    }

    /// Remove the hook from `conn`.
    pub(crate) fn uninstall(&self, conn: &Connection) {
        // SAFETY: the handle is the open connection `conn`; a null hook unregisters.
        unsafe {
            ffi::sqlite3_preupdate_hook(conn.handle(), None, std::ptr::null_mut());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        lock(&self.log)
    }

    /// Start recording a block, from an empty log. `meter` is the connection's cost meter,
    /// which stops a statement that passes the write limit (see [`Tracker::arm`]).
    pub(crate) fn start(&self, meter: &Arc<Meter>) {
        let mut log = self.lock();
        *log = Log {
            active: true,
            meter: Some(Arc::clone(meter)),
            written: Arc::clone(&log.written),
            ..Log::default()
        };
    }

    /// Stop recording and free the log.
    pub(crate) fn stop(&self) {
        let mut log = self.lock();
        *log = Log {
            written: Arc::clone(&log.written),
            ..Log::default()
        };
    }

    /// The counter of bytes of values recorded (see `Log::written`), for the meter.
    pub(crate) fn written_bytes(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.lock().written)
    }

    /// The current end of the log.
    pub(crate) fn mark(&self) -> Mark {
        let log = self.lock();
        Mark {
            events: log.events.len(),
            values: log.values.len(),
            charged: log.charged,
        }
    }

    /// Forget every event after `mark`: they belong to a transaction SQLite rolled back.
    pub(crate) fn rollback_to(&self, mark: Mark) {
        let mut log = self.lock();
        log.events.truncate(mark.events);
        log.values.truncate(mark.values);
        log.charged = mark.charged;
        log.over = false;
    }

    /// What the block's recorded changes count against the write limits so far.
    pub(crate) fn charged(&self) -> u64 {
        self.lock().charged
    }

    /// Let the changes from now on bring [`Tracker::charged`] up to `ceiling` at most; the
    /// first change past it is not recorded and sets [`Tracker::over`].
    pub(crate) fn arm(&self, ceiling: u64) {
        let mut log = self.lock();
        log.ceiling = ceiling;
        log.over = false;
    }

    /// A change did not fit under the ceiling since the last [`Tracker::arm`] or rollback.
    pub(crate) fn over(&self) -> bool {
        self.lock().over
    }

    /// A copy of the log, to restore with [`Tracker::restore`].
    pub(crate) fn snapshot(&self) -> Log {
        self.lock().clone()
    }

    /// Put back a log taken by [`Tracker::snapshot`].
    pub(crate) fn restore(&self, log: Log) {
        let mut current = self.lock();
        let written = Arc::clone(&current.written);
        *current = log;
        current.written = written;
    }

    /// Start a new section: the events so far have been turned into records.
    pub(crate) fn clear_events(&self) {
        let mut log = self.lock();
        log.events.clear();
        log.values.clear();
    }

    /// About how many bytes `encode_rows` will append (to reserve them at once).
    pub(crate) fn rows_size_hint(&self) -> usize {
        let log = self.lock();
        log.values.len() + log.events.len() * 32
    }

    /// Append the canonical row records of the log's events to `out` (docs/changeset.md)
    /// and return how many there are. `conn` must still hold every table the log names.
    pub(crate) fn encode_rows(
        &self,
        conn: &Connection,
        out: &mut Vec<u8>,
    ) -> Result<u32, SqlError> {
        // The lock is held while `encode_log` reads table shapes on `conn`: the hook, which
        // takes it too, fires only on writes.
        let log = self.lock();
        if let Some(reason) = &log.error {
            return Err(SqlError::ChangeLog(format!(
                "a change could not be recorded: {reason}"
            )));
        }
        encode_log(&log, conn, out)
    }
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    // The hook never panics while holding the lock (it records problems in `error`), and
    // the log stays consistent if something else did, so a poisoned lock is usable.
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the changeset needs of a table, as SQLite's session defined it: the columns are
/// the table's visible ones (generated columns are left out, as `PRAGMA table_xinfo` marks
/// them hidden), numbered from 0; the hook sees all of them.
struct TableShape {
    /// Every column the hook sees, hidden ones included.
    total: u16,
    /// For each changeset position, the column's index among the hook's values.
    columns: Vec<u16>,
    /// Changeset positions of the primary key columns, ascending.
    key: Vec<u16>,
}

fn table_shape(conn: &Connection, table: &str) -> Result<TableShape, SqlError> {
    let mut stmt =
        conn.prepare_cached("SELECT cid, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?;
    let mut total = 0u16;
    let mut columns = Vec::new();
    let mut key = Vec::new();
    let mut rows = stmt.query([table])?;
    while let Some(row) = rows.next()? {
        let cid: i64 = row.get(0)?;
        let pk: i64 = row.get(1)?;
        let hidden: i64 = row.get(2)?;
        if hidden == 0 {
            if pk > 0 {
                key.push(columns.len() as u16);
            }
            columns.push(cid as u16);
        }
        total += 1;
    }
    if key.is_empty() {
        return Err(SqlError::ChangeLog(format!(
            "table {table} has changes but no primary key (or no longer exists)"
        )));
    }
    Ok(TableShape {
        total,
        columns,
        key,
    })
}

/// The length of the encoded value starting at `values[at]`.
fn value_len(values: &[u8], at: usize) -> usize {
    match values[at] {
        NULL => 1,
        INTEGER => 9,
        _ => {
            let len: [u8; 4] = values[at + 1..at + 5].try_into().expect("4 bytes");
            5 + u32::from_be_bytes(len) as usize
        }
    }
}

/// One row's state as an event left it: the start of each column's encoded value, plus
/// the end of the last one.
fn split_columns(values: &[u8], at: usize, columns: u16, starts: &mut Vec<usize>) {
    starts.clear();
    let mut pos = at;
    for _ in 0..columns {
        starts.push(pos);
        pos += value_len(values, pos);
    }
    starts.push(pos);
}

/// One event's effect on one key. An update that moves a row to another key is two: the
/// old key goes, the new one comes.
struct Item {
    /// The table's place in name order.
    rank: u32,
    table: u32,
    /// The key's encoding: a range of `keys`.
    key: (usize, usize),
    /// Where the row's values were before this event, if it existed.
    before: Option<usize>,
    /// Where its values are after this event, if it still exists.
    after: Option<usize>,
}

fn encode_log(log: &Log, conn: &Connection, out: &mut Vec<u8>) -> Result<u32, SqlError> {
    if log.events.is_empty() {
        return Ok(0);
    }
    // Shapes and name ranks of the tables the events touch.
    let mut used = vec![false; log.names.len()];
    for e in &log.events {
        used[e.table as usize] = true;
    }
    let mut shapes: Vec<Option<TableShape>> = Vec::with_capacity(log.names.len());
    for (id, name) in log.names.iter().enumerate() {
        shapes.push(if used[id] {
            Some(table_shape(conn, name)?)
        } else {
            None
        });
    }
    let mut by_name: Vec<u32> = (0..log.names.len() as u32).collect();
    by_name.sort_by(|a, b| log.names[*a as usize].cmp(&log.names[*b as usize]));
    let mut rank = vec![0u32; log.names.len()];
    for (r, id) in by_name.iter().enumerate() {
        rank[*id as usize] = r as u32;
    }

    let values = &log.values;
    let mut keys: Vec<u8> = Vec::new();
    let mut items: Vec<Item> = Vec::with_capacity(log.events.len());
    let mut starts = Vec::new();
    // Append the key of the row at `at` to `keys`; None if a key column is NULL, which
    // the changeset leaves out as SQLite's session did (see docs/changeset.md).
    let mut key_of = |keys: &mut Vec<u8>, at: usize, shape: &TableShape| {
        split_columns(values, at, shape.total, &mut starts);
        let begin = keys.len();
        for &p in &shape.key {
            let (s, e) = column(&starts, shape, p);
            if values[s] == NULL {
                keys.truncate(begin);
                return None;
            }
            keys.extend_from_slice(&values[s..e]);
        }
        Some((begin, keys.len()))
    };
    for e in &log.events {
        let shape = shapes[e.table as usize]
            .as_ref()
            .expect("shape of a used table");
        if e.columns != shape.total {
            return Err(SqlError::ChangeLog(format!(
                "table {} changed with {} columns but has {}",
                log.names[e.table as usize], e.columns, shape.total
            )));
        }
        let item = |key, before, after| Item {
            rank: rank[e.table as usize],
            table: e.table,
            key,
            before,
            after,
        };
        match e.op {
            Op::Insert => {
                if let Some(k) = key_of(&mut keys, e.new, shape) {
                    items.push(item(k, None, Some(e.new)));
                }
            }
            Op::Delete => {
                if let Some(k) = key_of(&mut keys, e.old, shape) {
                    items.push(item(k, Some(e.old), None));
                }
            }
            Op::Update => {
                let old = key_of(&mut keys, e.old, shape);
                let new = key_of(&mut keys, e.new, shape);
                match (old, new) {
                    (Some(o), Some(n)) if keys[o.0..o.1] == keys[n.0..n.1] => {
                        keys.truncate(n.0);
                        items.push(item(o, Some(e.old), Some(e.new)));
                    }
                    (o, n) => {
                        if let Some(o) = o {
                            items.push(item(o, Some(e.old), None));
                        }
                        if let Some(n) = n {
                            items.push(item(n, None, Some(e.new)));
                        }
                    }
                }
            }
        }
    }
    // Stable: a key's items stay in execution order. Inserts of ascending keys, the common
    // case, are one run and sort in linear time.
    items.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then_with(|| keys[a.key.0..a.key.1].cmp(&keys[b.key.0..b.key.1]))
    });

    let mut count = 0u32;
    let mut before_cols = Vec::new();
    let mut after_cols = Vec::new();
    let mut changed: Vec<u16> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let first = &items[i];
        let mut j = i + 1;
        while j < items.len()
            && items[j].rank == first.rank
            && keys[items[j].key.0..items[j].key.1] == keys[first.key.0..first.key.1]
        {
            j += 1;
        }
        let last = &items[j - 1];
        let table = first.table as usize;
        let shape = shapes[table].as_ref().expect("shape of a used table");
        let name = log.names[table].as_bytes();
        let positions = shape.columns.len() as u16;
        match (first.before, last.after) {
            (None, None) => {}
            (None, Some(after)) => {
                split_columns(values, after, shape.total, &mut after_cols);
                let cell = |p: u16| (p, Encoded(range(values, column(&after_cols, shape, p))));
                let key = shape.key.iter().map(|&p| cell(p));
                encode_row(out, RowOp::Insert, name, key, (0..positions).map(cell));
                count += 1;
            }
            (Some(before), None) => {
                split_columns(values, before, shape.total, &mut before_cols);
                let cell = |p: u16| (p, Encoded(range(values, column(&before_cols, shape, p))));
                let key = shape.key.iter().map(|&p| cell(p));
                encode_row(out, RowOp::Delete, name, key, std::iter::empty());
                count += 1;
            }
            (Some(before), Some(after)) => {
                split_columns(values, before, shape.total, &mut before_cols);
                split_columns(values, after, shape.total, &mut after_cols);
                changed.clear();
                for p in 0..positions {
                    let (bs, be) = column(&before_cols, shape, p);
                    let (as_, ae) = column(&after_cols, shape, p);
                    if values[bs..be] != values[as_..ae] {
                        changed.push(p);
                    }
                }
                if !changed.is_empty() {
                    let cell = |p: u16| (p, Encoded(range(values, column(&after_cols, shape, p))));
                    let key = shape.key.iter().map(|&p| cell(p));
                    encode_row(
                        out,
                        RowOp::Update,
                        name,
                        key,
                        changed.iter().map(|&p| cell(p)),
                    );
                    count += 1;
                }
            }
        }
        i = j;
    }
    Ok(count)
}

/// The bytes of `values` in `r`.
fn range(values: &[u8], r: (usize, usize)) -> &[u8] {
    &values[r.0..r.1]
}

/// The byte range of changeset position `p` in a row split by `split_columns`.
fn column(starts: &[usize], shape: &TableShape, p: u16) -> (usize, usize) {
    let i = shape.columns[p as usize] as usize;
    (starts[i], starts[i + 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(dir: &tempfile::TempDir) -> Connection {
        let conn = Connection::open(dir.path().join("t.sqlite")).expect("open");
        conn.execute_batch(
            "CREATE TABLE \"s.t\"(id INTEGER PRIMARY KEY, v TEXT) STRICT; CREATE TABLE sys(k INTEGER PRIMARY KEY) STRICT",
        )
        .expect("create");
        conn
    }

    fn rows(tracker: &Tracker, conn: &Connection) -> Result<(u32, Vec<u8>), SqlError> {
        let mut out = Vec::new();
        let n = tracker.encode_rows(conn, &mut out)?;
        Ok((n, out))
    }

    #[test]
    fn only_a_started_log_records_and_only_user_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = connection(&dir);
        let tracker = Tracker::default();
        tracker.install(&mut conn);
        conn.execute_batch("INSERT INTO \"s.t\" VALUES (1, 'before')")
            .expect("insert");
        assert_eq!(rows(&tracker, &conn).expect("rows").0, 0);
        tracker.start(&Meter::new());
        conn.execute_batch("INSERT INTO \"s.t\" VALUES (2, 'in'); INSERT INTO sys VALUES (1)")
            .expect("insert");
        assert_eq!(rows(&tracker, &conn).expect("rows").0, 1);
        tracker.stop();
        assert_eq!(rows(&tracker, &conn).expect("rows").0, 0);
        tracker.uninstall(&conn);
    }

    #[test]
    fn rolling_back_to_a_mark_forgets_what_came_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = connection(&dir);
        let tracker = Tracker::default();
        tracker.install(&mut conn);
        tracker.start(&Meter::new());
        conn.execute_batch("INSERT INTO \"s.t\" VALUES (1, 'kept')")
            .expect("insert");
        let kept = rows(&tracker, &conn).expect("rows");
        let mark = tracker.mark();
        conn.execute_batch("INSERT INTO \"s.t\" VALUES (2, 'gone'); UPDATE \"s.t\" SET v = 'x'")
            .expect("write");
        assert_eq!(rows(&tracker, &conn).expect("rows").0, 2);
        tracker.rollback_to(mark);
        assert_eq!(rows(&tracker, &conn).expect("rows"), kept);
        tracker.uninstall(&conn);
    }

    #[test]
    fn a_change_past_the_ceiling_is_not_recorded_and_marks_the_log_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = connection(&dir);
        let tracker = Tracker::default();
        tracker.install(&mut conn);
        tracker.start(&Meter::new());
        tracker.arm(200);
        conn.execute_batch("INSERT INTO \"s.t\" VALUES (1, 'a')")
            .expect("insert");
        // INTEGER 9 + TEXT 5+1, two positions of 2 bytes, the name "s.t", 64.
        assert_eq!(tracker.charged(), 9 + 6 + 4 + 3 + 64);
        let mark = tracker.mark();
        let long = "x".repeat(100);
        conn.execute("INSERT INTO \"s.t\" VALUES (2, ?1)", [&long])
            .expect("SQLite itself is not stopped by the log");
        assert!(tracker.over());
        assert_eq!(tracker.charged(), 86);
        // The log lowered the length limit to SQLite's minimum, to stop what comes next;
        // the engine puts it back before its own statements (`Block::settle_limit`).
        let limit = rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH;
        assert_eq!(conn.limit(limit).expect("limit"), 30);
        conn.set_limit(limit, 1_000_000).expect("restore");
        assert_eq!(rows(&tracker, &conn).expect("rows").0, 1);
        tracker.rollback_to(mark);
        assert!(!tracker.over());
        tracker.uninstall(&conn);
    }

    #[test]
    fn a_change_that_could_not_be_recorded_fails_the_changeset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = connection(&dir);
        let tracker = Tracker::default();
        tracker.install(&mut conn);
        tracker.start(&Meter::new());
        lock(&tracker.log).fail("table s.t column 1 holds a REAL value".into());
        let err = rows(&tracker, &conn).expect_err("unusable log");
        assert!(
            matches!(&err, SqlError::ChangeLog(m) if m.contains("REAL")),
            "{err}"
        );
        tracker.uninstall(&conn);
    }
}
