//! The canonical block changeset: records, their versioned byte encoding, SHA-256, a
//! table printout, and applying a changeset to a copy of the previous state.
//!
//! Format and ordering rules are documented in `docs/changeset.md`.

use std::fmt;

use dstorage_types::value::Value;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::names::{physical_name, split_physical};
use crate::SqlError;

/// Magic bytes at the start of every encoded changeset.
pub const CHANGESET_MAGIC: &[u8; 4] = b"DSCS";
/// The encoding version this build writes and reads.
pub const CHANGESET_VERSION: u8 = 1;

/// What happened to one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RowOp {
    /// The row is new: `columns` holds every column.
    Insert,
    /// The row changed: `columns` holds each changed column.
    Update,
    /// The row is gone: `columns` is empty.
    Delete,
}

/// A value at a column position (counting from 0, in table definition order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnValue {
    /// Column position in the table.
    pub position: u16,
    /// The value.
    pub value: Value,
}

/// One row change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowChange {
    /// Insert, update or delete.
    pub op: RowOp,
    /// Physical table name, `schema.table`.
    pub table: String,
    /// The primary key columns, in column-position order.
    pub key: Vec<ColumnValue>,
    /// Insert: all columns; update: the changed columns; delete: none.
    pub columns: Vec<ColumnValue>,
}

/// One record of a changeset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChangesetRecord {
    /// A row change.
    Row(RowChange),
    /// A schema (namespace) was created.
    CreateSchema {
        /// Schema name.
        name: String,
    },
    /// A schema and every object in it were dropped (its rows appear as deletes before).
    DropSchema {
        /// Schema name.
        name: String,
    },
    /// A DDL statement ran in `schema`; `sql` is its normalized text with physical names.
    Ddl {
        /// The schema it ran in.
        schema: String,
        /// Normalized SQL as executed.
        sql: String,
    },
}

/// A block's canonical changeset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changeset {
    /// Records in canonical order (see `docs/changeset.md`).
    pub records: Vec<ChangesetRecord>,
}

/// Value type tags of the encoding (docs/changeset.md, "Encoding"); the change log
/// (`tracker.rs`) writes values in the same form.
pub(crate) const TAG_NULL: u8 = 0;
pub(crate) const TAG_INTEGER: u8 = 1;
pub(crate) const TAG_TEXT: u8 = 2;
pub(crate) const TAG_BLOB: u8 = 3;

fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(TAG_NULL),
        Value::Integer(i) => encode_integer(out, *i),
        Value::Text(t) => {
            out.push(TAG_TEXT);
            encode_bytes(out, t.as_bytes());
        }
        Value::Blob(b) => {
            out.push(TAG_BLOB);
            encode_bytes(out, b);
        }
    }
}

/// An INTEGER value: its tag, then the sign bit flipped, big-endian, so byte order equals
/// numeric order and sorting by encoded key sorts integer keys numerically.
pub(crate) fn encode_integer(out: &mut Vec<u8>, i: i64) {
    out.push(TAG_INTEGER);
    out.extend_from_slice(&((i as u64) ^ (1 << 63)).to_be_bytes());
}

pub(crate) fn encode_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Lengths above u32::MAX cannot occur: SQLite's length limit is far below it.
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// A column value the encoder writes: a [`Value`], or one the change log (`tracker.rs`)
/// already holds in the encoding's value form.
pub(crate) trait Cell {
    /// Append the value's encoding.
    fn write(&self, out: &mut Vec<u8>);
}

impl Cell for &Value {
    fn write(&self, out: &mut Vec<u8>) {
        encode_value(out, self)
    }
}

/// A value already in the encoding's value form (tag, then payload).
pub(crate) struct Encoded<'a>(pub &'a [u8]);

impl Cell for Encoded<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0)
    }
}

fn encode_columns<C: Cell>(out: &mut Vec<u8>, cols: impl ExactSizeIterator<Item = (u16, C)>) {
    // A table has at most 32,767 columns (SQLite's hard limit), so the count fits.
    out.extend_from_slice(&(cols.len() as u16).to_be_bytes());
    for (position, value) in cols {
        out.extend_from_slice(&position.to_be_bytes());
        value.write(out);
    }
}

/// Append one row record (docs/changeset.md, "Encoding"). The only code that writes a row
/// record: [`Changeset::encode`] calls it with the records' values, the block's encoder
/// (`tracker.rs`) with the values its change log holds.
pub(crate) fn encode_row<C: Cell>(
    out: &mut Vec<u8>,
    op: RowOp,
    table: &[u8],
    key: impl ExactSizeIterator<Item = (u16, C)>,
    columns: impl ExactSizeIterator<Item = (u16, C)>,
) {
    out.push(op.tag());
    encode_bytes(out, table);
    encode_columns(out, key);
    encode_columns(out, columns);
}

/// Start an encoding in `out`: magic, version and a record count of 0, which
/// [`set_record_count`] fills in once the records are written.
pub(crate) fn begin_encoding(out: &mut Vec<u8>) {
    out.extend_from_slice(CHANGESET_MAGIC);
    out.push(CHANGESET_VERSION);
    out.extend_from_slice(&0u32.to_be_bytes());
}

/// Write the record count of an encoding that `begin_encoding` started at the front of `out`.
pub(crate) fn set_record_count(out: &mut [u8], records: u32) {
    let at = CHANGESET_MAGIC.len() + 1;
    out[at..at + 4].copy_from_slice(&records.to_be_bytes());
}

/// The canonical encoding of a key: its values in position order.
pub(crate) fn key_bytes(key: &[ColumnValue]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in key {
        encode_value(&mut out, &c.value);
    }
    out
}

/// Append one record's encoding (docs/changeset.md, "Encoding").
pub(crate) fn encode_record(out: &mut Vec<u8>, r: &ChangesetRecord) {
    match r {
        ChangesetRecord::Row(row) => encode_row(
            out,
            row.op,
            row.table.as_bytes(),
            row.key.iter().map(|c| (c.position, &c.value)),
            row.columns.iter().map(|c| (c.position, &c.value)),
        ),
        ChangesetRecord::CreateSchema { name } => {
            out.push(4);
            encode_bytes(out, name.as_bytes());
        }
        ChangesetRecord::DropSchema { name } => {
            out.push(5);
            encode_bytes(out, name.as_bytes());
        }
        ChangesetRecord::Ddl { schema, sql } => {
            out.push(6);
            encode_bytes(out, schema.as_bytes());
            encode_bytes(out, sql.as_bytes());
        }
    }
}

impl RowOp {
    fn tag(self) -> u8 {
        match self {
            RowOp::Insert => 1,
            RowOp::Update => 2,
            RowOp::Delete => 3,
        }
    }
}

impl Changeset {
    /// The canonical, versioned byte encoding (see `docs/changeset.md`). A block's own
    /// changeset is written straight from the engine's change log
    /// ([`crate::Block::changeset_encoded`]) through the same record writers.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        begin_encoding(&mut out);
        for r in &self.records {
            encode_record(&mut out, r);
        }
        // A changeset of more than u32::MAX records cannot be built: each is several bytes,
        // and a block's data is capped far below (docs/sql.md, "Data limits").
        set_record_count(&mut out, self.records.len() as u32);
        out
    }

    /// The length of [`Changeset::encode`]'s output.
    fn encoded_len(&self) -> usize {
        let value = |v: &Value| match v {
            Value::Null => 1,
            Value::Integer(_) => 9,
            Value::Text(t) => 5 + t.len(),
            Value::Blob(b) => 5 + b.len(),
        };
        let columns =
            |cols: &[ColumnValue]| 2 + cols.iter().map(|c| 2 + value(&c.value)).sum::<usize>();
        let records: usize =
            self.records
                .iter()
                .map(|r| match r {
                    ChangesetRecord::Row(row) => {
                        1 + 4 + row.table.len() + columns(&row.key) + columns(&row.columns)
                    }
                    ChangesetRecord::CreateSchema { name }
                    | ChangesetRecord::DropSchema { name } => 1 + 4 + name.len(),
                    ChangesetRecord::Ddl { schema, sql } => 1 + 4 + schema.len() + 4 + sql.len(),
                })
                .sum();
        CHANGESET_MAGIC.len() + 1 + 4 + records
    }

    /// SHA-256 of the canonical encoding. Because the encoding carries operation, table,
    /// key, positions, type tags and lengths, so does the hash.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// Decode canonical bytes. Any other encoding of the same records is refused: the
    /// decoded value must re-encode to exactly the input, and row runs must be sorted.
    pub fn decode(bytes: &[u8]) -> Result<Changeset, SqlError> {
        let mut d = Decoder { bytes, pos: 0 };
        let magic = d.take(4)?;
        if magic != CHANGESET_MAGIC {
            return Err(d.err("magic is not DSCS"));
        }
        let version = d.u8()?;
        if version != CHANGESET_VERSION {
            return Err(d.err(&format!("version {version} is not {CHANGESET_VERSION}")));
        }
        let count = d.u32()? as usize;
        // Each record is at least 5 bytes; refuse counts the input cannot hold before allocating.
        if count > bytes.len() / 5 {
            return Err(d.err(&format!("record count {count} exceeds the input")));
        }
        let mut records = Vec::with_capacity(count);
        let mut last_row: Option<(String, Vec<u8>)> = None;
        for _ in 0..count {
            let tag = d.u8()?;
            let rec = match tag {
                1..=3 => {
                    let op = match tag {
                        1 => RowOp::Insert,
                        2 => RowOp::Update,
                        _ => RowOp::Delete,
                    };
                    let table = d.string()?;
                    let key = d.columns()?;
                    let columns = d.columns()?;
                    if key.is_empty() {
                        return Err(d.err("row record without a key"));
                    }
                    if (op == RowOp::Delete) != columns.is_empty() {
                        return Err(d.err("deletes carry no columns; inserts and updates do"));
                    }
                    let sort_key = (table.clone(), key_bytes(&key));
                    if let Some(prev) = &last_row {
                        if *prev >= sort_key {
                            return Err(d.err("row records are not in (table, key) order"));
                        }
                    }
                    last_row = Some(sort_key);
                    ChangesetRecord::Row(RowChange {
                        op,
                        table,
                        key,
                        columns,
                    })
                }
                4 => ChangesetRecord::CreateSchema { name: d.string()? },
                5 => ChangesetRecord::DropSchema { name: d.string()? },
                6 => ChangesetRecord::Ddl {
                    schema: d.string()?,
                    sql: d.string()?,
                },
                other => return Err(d.err(&format!("unknown record tag {other}"))),
            };
            if !matches!(rec, ChangesetRecord::Row(_)) {
                last_row = None;
            }
            records.push(rec);
        }
        if d.pos != bytes.len() {
            return Err(d.err("trailing bytes"));
        }
        let cs = Changeset { records };
        if cs.encode() != bytes {
            return Err(SqlError::ChangesetDecode {
                offset: 0,
                reason: "not the canonical encoding of its records".into(),
            });
        }
        Ok(cs)
    }

    /// Apply this changeset to `conn`, which must hold the state before the block.
    /// Runs in one transaction: on error nothing is applied.
    ///
    /// The changeset already holds every row a foreign-key action changed, so called
    /// outside a transaction it turns foreign keys off while it applies (cascades would
    /// otherwise change those rows twice). Inside one SQLite ignores that switch; the
    /// caller must then have turned them off.
    pub fn apply_to(&self, conn: &Connection) -> Result<(), SqlError> {
        let restore_keys = conn.is_autocommit()
            && conn.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, bool>(0))?;
        if restore_keys {
            conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        }
        let result = self.apply_savepoint(conn);
        if restore_keys {
            conn.execute_batch("PRAGMA foreign_keys = ON")?;
        }
        result
    }

    fn apply_savepoint(&self, conn: &Connection) -> Result<(), SqlError> {
        conn.execute_batch("SAVEPOINT dstorage_apply")?;
        let result = self.apply_inner(conn);
        match result {
            Ok(()) => {
                conn.execute_batch("RELEASE dstorage_apply")?;
                Ok(())
            }
            Err(e) => {
                conn.execute_batch("ROLLBACK TO dstorage_apply; RELEASE dstorage_apply")?;
                Err(e)
            }
        }
    }

    fn apply_inner(&self, conn: &Connection) -> Result<(), SqlError> {
        let mut run: Vec<&RowChange> = Vec::new();
        for r in &self.records {
            match r {
                ChangesetRecord::Row(row) => run.push(row),
                other => {
                    apply_rows(conn, &run, true)?;
                    run.clear();
                    apply_schema_record(conn, other)?;
                }
            }
        }
        apply_rows(conn, &run, true)
    }
}

fn apply_schema_record(conn: &Connection, r: &ChangesetRecord) -> Result<(), SqlError> {
    match r {
        ChangesetRecord::CreateSchema { name } => {
            conn.execute("INSERT INTO _dstorage_schemas(name) VALUES (?1)", [name])?;
        }
        ChangesetRecord::DropSchema { name } => {
            crate::catalog::drop_schema_objects(conn, name)?;
            conn.execute("DELETE FROM _dstorage_schemas WHERE name = ?1", [name])?;
        }
        ChangesetRecord::Ddl { schema, sql } => {
            // Changeset bytes may come from elsewhere: run only the DDL kinds a block can
            // record, and only on objects of the record's schema.
            let parsed = crate::guard::parse(sql)?;
            let own = |n: &crate::syntax::ast::QualName| {
                n.schema.is_none()
                    && crate::names::split_physical(&n.name.text).map(|(s, _)| s)
                        == Some(schema.as_str())
            };
            for stmt in &parsed.statements {
                use crate::syntax::ast::Body;
                let allowed = match &stmt.body {
                    Body::CreateTable(t) => own(&t.name),
                    Body::CreateIndex(i) => own(&i.name),
                    Body::CreateView(v) => own(&v.name),
                    Body::Drop(d) => own(&d.name),
                    _ => false,
                };
                if !allowed {
                    return Err(SqlError::ChangesetApply(format!(
                        "DDL record is not a table, index or view statement of schema {schema}: {sql}"
                    )));
                }
            }
            conn.execute_batch(sql)?
        }
        ChangesetRecord::Row(_) => {}
    }
    Ok(())
}

/// The names of `table`'s columns by changeset position: its visible columns in order
/// (generated columns are hidden, left out of changesets, and computed again on apply).
fn column_names(conn: &Connection, table: &str) -> Result<Vec<String>, SqlError> {
    let mut stmt =
        conn.prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE hidden = 0 ORDER BY cid")?;
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if names.is_empty() {
        return Err(SqlError::ChangesetApply(format!(
            "table {table} does not exist"
        )));
    }
    Ok(names)
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Integer(i) => rusqlite::types::Value::Integer(*i),
        Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
        Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

fn apply_row(conn: &Connection, row: &RowChange) -> Result<(), SqlError> {
    if split_physical(&row.table).is_none() {
        return Err(SqlError::ChangesetApply(format!(
            "{} is not a user table",
            row.table
        )));
    }
    let names = column_names(conn, &row.table)?;
    let name_at = |p: u16| -> Result<String, SqlError> {
        names
            .get(p as usize)
            .map(|n| quote_ident(n))
            .ok_or_else(|| SqlError::ChangesetApply(format!("{} has no column {p}", row.table)))
    };
    let mut params: Vec<rusqlite::types::Value> = Vec::new();
    let mut key_clause = Vec::new();
    for k in &row.key {
        params.push(to_sql(&k.value));
        key_clause.push(format!("{} IS ?{}", name_at(k.position)?, params.len()));
    }
    let table = quote_ident(&row.table);
    let sql = match row.op {
        RowOp::Insert => {
            params.clear();
            let mut cols = Vec::new();
            let mut marks = Vec::new();
            for c in &row.columns {
                cols.push(name_at(c.position)?);
                params.push(to_sql(&c.value));
                marks.push(format!("?{}", params.len()));
            }
            format!(
                // OR ABORT: a table's own ON CONFLICT REPLACE must not delete another row
                // on the way; the retry in `apply_rows` orders such moves.
                "INSERT OR ABORT INTO {table}({}) VALUES ({})",
                cols.join(", "),
                marks.join(", ")
            )
        }
        RowOp::Update => {
            let mut sets = Vec::new();
            for c in &row.columns {
                params.push(to_sql(&c.value));
                sets.push(format!("{} = ?{}", name_at(c.position)?, params.len()));
            }
            format!(
                "UPDATE OR ABORT {table} SET {} WHERE {}",
                sets.join(", "),
                key_clause.join(" AND ")
            )
        }
        RowOp::Delete => format!("DELETE FROM {table} WHERE {}", key_clause.join(" AND ")),
    };
    let n = conn.execute(&sql, rusqlite::params_from_iter(params))?;
    if n != 1 {
        return Err(SqlError::ChangesetApply(format!(
            "{:?} on {} key {} matched {n} rows",
            row.op,
            row.table,
            display_key(&row.key)
        )));
    }
    Ok(())
}

/// Apply one run of row records: deletes, then updates, then inserts; a record that fails a
/// constraint (a unique value moving between rows, a parent inserted after its child) is
/// retried after the others until no progress is made. Updates that still wait on each
/// other then (a cycle, such as two rows swapping a unique value) are applied as a delete
/// of each row and an insert of it whole.
fn apply_rows(conn: &Connection, rows: &[&RowChange], lift_cycles: bool) -> Result<(), SqlError> {
    let mut pending: Vec<&RowChange> = Vec::with_capacity(rows.len());
    for op in [RowOp::Delete, RowOp::Update, RowOp::Insert] {
        pending.extend(rows.iter().filter(|r| r.op == op));
    }
    while !pending.is_empty() {
        let mut failed = Vec::new();
        let mut last_err = None;
        for row in &pending {
            conn.execute_batch("SAVEPOINT dstorage_row")?;
            match apply_row(conn, row) {
                Ok(()) => conn.execute_batch("RELEASE dstorage_row")?,
                Err(e) => {
                    conn.execute_batch("ROLLBACK TO dstorage_row; RELEASE dstorage_row")?;
                    failed.push(*row);
                    last_err = Some(e);
                }
            }
        }
        if failed.len() == pending.len() {
            if lift_cycles && failed.iter().any(|r| r.op == RowOp::Update) {
                // Updates that wait on each other (two rows swapping a unique value): take
                // their rows out and put them back whole.
                let mut whole = Vec::new();
                for row in failed.iter().filter(|r| r.op == RowOp::Update) {
                    whole.push(lift(conn, row)?);
                }
                let mut rest: Vec<&RowChange> = failed
                    .into_iter()
                    .filter(|r| r.op != RowOp::Update)
                    .collect();
                rest.extend(whole.iter());
                return apply_rows(conn, &rest, false);
            }
            return Err(last_err.unwrap_or_else(|| SqlError::ChangesetApply("no progress".into())));
        }
        pending = failed;
    }
    Ok(())
}

/// Delete the row an update is for and return an insert of it with the update's values.
fn lift(conn: &Connection, row: &RowChange) -> Result<RowChange, SqlError> {
    let names = column_names(conn, &row.table)?;
    let list = names
        .iter()
        .map(|n| quote_ident(n))
        .collect::<Vec<_>>()
        .join(", ");
    let mut key_clause = Vec::new();
    let mut params = Vec::new();
    for k in &row.key {
        let name = names.get(k.position as usize).ok_or_else(|| {
            SqlError::ChangesetApply(format!("{} has no column {}", row.table, k.position))
        })?;
        params.push(to_sql(&k.value));
        key_clause.push(format!("{} IS ?{}", quote_ident(name), params.len()));
    }
    let table = quote_ident(&row.table);
    let filter = key_clause.join(" AND ");
    let mut values: Vec<Value> = conn
        .query_row(
            &format!("SELECT {list} FROM {table} WHERE {filter}"),
            rusqlite::params_from_iter(params.iter()),
            |r| {
                (0..names.len())
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Integer(v) => Value::Integer(v),
                            rusqlite::types::ValueRef::Text(t) => {
                                Value::Text(String::from_utf8_lossy(t).into_owned())
                            }
                            rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                            _ => Value::Null,
                        })
                    })
                    .collect()
            },
        )
        .map_err(|e| {
            SqlError::ChangesetApply(format!(
                "Update on {} key {}: {e}",
                row.table,
                display_key(&row.key)
            ))
        })?;
    for c in &row.columns {
        if let Some(v) = values.get_mut(c.position as usize) {
            *v = c.value.clone();
        }
    }
    conn.execute(
        &format!("DELETE FROM {table} WHERE {filter}"),
        rusqlite::params_from_iter(params.iter()),
    )?;
    Ok(RowChange {
        op: RowOp::Insert,
        table: row.table.clone(),
        key: row.key.clone(),
        columns: values
            .into_iter()
            .enumerate()
            .map(|(i, value)| ColumnValue {
                position: i as u16,
                value,
            })
            .collect(),
    })
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn err(&self, reason: &str) -> SqlError {
        SqlError::ChangesetDecode {
            offset: self.pos,
            reason: reason.to_owned(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SqlError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(&format!("needs {n} more bytes"))),
        }
    }
    fn u8(&mut self) -> Result<u8, SqlError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, SqlError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, SqlError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Result<&'a [u8], SqlError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, SqlError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("text is not UTF-8"))
    }
    fn value(&mut self) -> Result<Value, SqlError> {
        match self.u8()? {
            TAG_NULL => Ok(Value::Null),
            TAG_INTEGER => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(Value::Integer((u64::from_be_bytes(a) ^ (1 << 63)) as i64))
            }
            TAG_TEXT => Ok(Value::Text(self.string()?)),
            TAG_BLOB => Ok(Value::Blob(self.bytes()?.to_vec())),
            t => Err(self.err(&format!("unknown value tag {t}"))),
        }
    }
    fn columns(&mut self) -> Result<Vec<ColumnValue>, SqlError> {
        let n = self.u16()? as usize;
        let mut out = Vec::with_capacity(n.min(self.bytes.len()));
        let mut last: Option<u16> = None;
        for _ in 0..n {
            let position = self.u16()?;
            if last.is_some_and(|l| l >= position) {
                return Err(self.err("column positions are not strictly increasing"));
            }
            last = Some(position);
            out.push(ColumnValue {
                position,
                value: self.value()?,
            });
        }
        Ok(out)
    }
}

fn display_key(key: &[ColumnValue]) -> String {
    key.iter()
        .map(|c| c.value.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Changeset {
    /// A fixed-width table: one line per record.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<13} {:<24} {:<16} columns", "op", "table", "key")?;
        for r in &self.records {
            match r {
                ChangesetRecord::Row(row) => {
                    let op = match row.op {
                        RowOp::Insert => "INSERT",
                        RowOp::Update => "UPDATE",
                        RowOp::Delete => "DELETE",
                    };
                    let cols = row
                        .columns
                        .iter()
                        .map(|c| format!("[{}]={}", c.position, c.value))
                        .collect::<Vec<_>>()
                        .join(" ");
                    writeln!(
                        f,
                        "{op:<13} {:<24} {:<16} {cols}",
                        row.table,
                        display_key(&row.key)
                    )?;
                }
                ChangesetRecord::CreateSchema { name } => {
                    writeln!(f, "{:<13} {name}", "CREATE SCHEMA")?
                }
                ChangesetRecord::DropSchema { name } => {
                    writeln!(f, "{:<13} {name}", "DROP SCHEMA")?
                }
                ChangesetRecord::Ddl { schema, sql } => {
                    writeln!(f, "{:<13} {:<24} {sql}", "DDL", physical_name(schema, "*"))?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunked hash is the SHA-256 of the whole encoding, and the precomputed length
    /// is the encoding's, for changesets smaller and larger than one chunk.
    #[test]
    fn hash_and_length_match_the_encoding() {
        for n in [0usize, 1, 10, 3_000] {
            let mut records = vec![
                ChangesetRecord::CreateSchema { name: "s".into() },
                ChangesetRecord::Ddl {
                    schema: "s".into(),
                    sql: "CREATE TABLE \"s.t\"(id INTEGER PRIMARY KEY)".into(),
                },
            ];
            for i in 0..n {
                let value = match i % 4 {
                    0 => Value::Null,
                    1 => Value::Integer(i as i64 - 5),
                    2 => Value::Text("é".repeat(i % 13)),
                    _ => Value::Blob(vec![7; i % 40]),
                };
                records.push(ChangesetRecord::Row(RowChange {
                    op: if i % 3 == 0 {
                        RowOp::Delete
                    } else {
                        RowOp::Insert
                    },
                    table: "s.t".into(),
                    key: vec![ColumnValue {
                        position: 0,
                        value: Value::Integer(i as i64),
                    }],
                    columns: if i % 3 == 0 {
                        Vec::new()
                    } else {
                        vec![ColumnValue { position: 1, value }]
                    },
                }));
            }
            records.push(ChangesetRecord::DropSchema { name: "s".into() });
            let cs = Changeset { records };
            let bytes = cs.encode();
            assert_eq!(bytes.len(), cs.encoded_len());
            assert_eq!(cs.hash(), <[u8; 32]>::from(Sha256::digest(&bytes)));
        }
    }
}
