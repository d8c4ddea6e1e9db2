//! The canonical block changeset: records, their versioned byte encoding, SHA-256, a
//! table printout, and applying a changeset to a copy of the previous state.
//!
//! Format and ordering rules are documented in `docs/changeset.md`.

use std::fmt;

use dstorage_types::value::Value;
use fallible_streaming_iterator::FallibleStreamingIterator;
use rusqlite::hooks::Action;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::guard::{physical_name, split_physical};
use crate::SqlError;

/// Magic bytes at the start of every encoded changeset.
pub const CHANGESET_MAGIC: &[u8; 4] = b"DSCS";
/// The encoding version this build writes and reads.
pub const CHANGESET_VERSION: u8 = 1;

/// Bytes of encoding collected before they are hashed (see [`Changeset::hash`]).
const ENCODE_CHUNK: usize = 32 * 1024;

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

fn value_from_ref(v: ValueRef<'_>, table: &str, position: usize) -> Result<Value, SqlError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Real(_) => {
            return Err(SqlError::RealValue {
                column: format!("{table}[{position}]"),
            })
        }
    })
}

fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0),
        Value::Integer(i) => {
            out.push(1);
            // Sign bit flipped: byte order equals numeric order, so sorting by encoded key
            // sorts integer keys numerically.
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Text(t) => {
            out.push(2);
            encode_bytes(out, t.as_bytes());
        }
        Value::Blob(b) => {
            out.push(3);
            encode_bytes(out, b);
        }
    }
}

fn encode_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Lengths above u32::MAX cannot occur: SQLite's length limit is far below it.
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn encode_columns(out: &mut Vec<u8>, cols: &[ColumnValue]) {
    out.extend_from_slice(&(cols.len() as u16).to_be_bytes());
    for c in cols {
        out.extend_from_slice(&c.position.to_be_bytes());
        encode_value(out, &c.value);
    }
}

/// The canonical encoding of a key: its values in position order.
pub(crate) fn key_bytes(key: &[ColumnValue]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in key {
        encode_value(&mut out, &c.value);
    }
    out
}

/// Compare two values as their canonical encodings (`encode_value`) compare bytewise:
/// by type tag (NULL, INTEGER, TEXT, BLOB), then integers numerically (the encoding
/// flips the sign bit of the big-endian bytes), texts and blobs by length (the 4-byte
/// big-endian length prefix) and then by bytes.
fn cmp_encoded_value(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn tag(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Integer(_) => 1,
            Value::Text(_) => 2,
            Value::Blob(_) => 3,
        }
    }
    let bytes = |a: &[u8], b: &[u8]| a.len().cmp(&b.len()).then_with(|| a.cmp(b));
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => bytes(x.as_bytes(), y.as_bytes()),
        (Value::Blob(x), Value::Blob(y)) => bytes(x, y),
        _ => tag(a).cmp(&tag(b)),
    }
}

/// Compare two keys as `key_bytes` of each compares bytewise, without allocating. Every
/// value encoding is self-delimiting (fixed size, or a length prefix), so no encoding is a
/// proper prefix of another: comparing the concatenations is comparing value by value,
/// and a key that runs out first sorts first.
pub(crate) fn cmp_keys(a: &[ColumnValue], b: &[ColumnValue]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = cmp_encoded_value(&x.value, &y.value);
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// The canonical order by comparison: (table, `key_bytes(key)`), compared without encoding
/// (see `cmp_keys`); stable. [`sort_rows`] gives the same order faster.
fn canonical_order(mut rows: Vec<RowChange>) -> Vec<RowChange> {
    rows.sort_by(|a, b| a.table.cmp(&b.table).then_with(|| cmp_keys(&a.key, &b.key)));
    rows
}

/// One value of a SQLite changeset record, borrowed from the bytes.
#[derive(Clone, Copy)]
enum RawValue<'a> {
    /// Not part of the record (an UPDATE's unchanged column).
    Undefined,
    Null,
    Integer(i64),
    Real,
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

/// A reader of SQLite's changeset format, as documented in `sqlite3session.h` ("CHANGESET
/// FORMAT") and read by `sessionChangesetNextOne` / `sessionReadRecord`:
///
/// - a table header: `'T'`, a varint column count, one PK flag byte per column, the table
///   name NUL-terminated;
/// - then changes of that table: an op byte (INSERT 18, UPDATE 23, DELETE 9), an indirect
///   flag byte, the old record (UPDATE, DELETE), the new record (INSERT, UPDATE);
/// - a record is one value per column: a type byte (0 undefined, 1 integer with 8 bytes
///   big-endian, 2 real with 8 bytes, 3 text and 4 blob with a varint length and the
///   bytes, 5 NULL).
///
/// Input that SQLite's iterator would call corrupt is an error here too (patchsets, which
/// the engine never produces, included).
struct SessionReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// SQLite's answer to a malformed changeset.
fn corrupt() -> SqlError {
    SqlError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        None,
    ))
}

impl<'a> SessionReader<'a> {
    fn u8(&mut self) -> Result<u8, SqlError> {
        let b = *self.bytes.get(self.pos).ok_or_else(corrupt)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SqlError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(corrupt)?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// SQLite's varint (`sessionVarintGet`): up to 8 bytes of 7 bits, most significant
    /// first, each with a continuation bit, then a ninth byte of 8 bits; kept to 31 bits.
    fn varint(&mut self) -> Result<usize, SqlError> {
        let mut v: u64 = 0;
        for i in 0..9 {
            let b = self.u8()?;
            if i == 8 {
                v = (v << 8) | u64::from(b);
                break;
            }
            v = (v << 7) | u64::from(b & 0x7f);
            if b < 0x80 {
                break;
            }
        }
        // getVarint32 saturates what does not fit 32 bits, sessionVarintGet keeps 31.
        let v32 = u32::try_from(v).unwrap_or(u32::MAX);
        Ok((v32 & 0x7fff_ffff) as usize)
    }

    /// One record of `ncol` values into `out`.
    fn record(&mut self, ncol: usize, out: &mut Vec<RawValue<'a>>) -> Result<(), SqlError> {
        out.clear();
        for _ in 0..ncol {
            let v = match self.u8()? {
                0 => RawValue::Undefined,
                1 => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    RawValue::Integer(i64::from_be_bytes(a))
                }
                2 => {
                    self.take(8)?;
                    RawValue::Real
                }
                3 => {
                    let n = self.varint()?;
                    RawValue::Text(self.take(n)?)
                }
                4 => {
                    let n = self.varint()?;
                    RawValue::Blob(self.take(n)?)
                }
                // SQLite reads any other type byte as a NULL value without contents.
                _ => RawValue::Null,
            };
            out.push(v);
        }
        Ok(())
    }
}

/// A defined record value as an owned value; `table[position]` names it in errors. An
/// undefined one is the error SQLite's iterator API gives for it.
fn value_from_raw(v: RawValue<'_>, table: &str, position: usize) -> Result<Value, SqlError> {
    Ok(match v {
        RawValue::Undefined => {
            return Err(SqlError::Sqlite(rusqlite::Error::InvalidColumnIndex(
                position,
            )))
        }
        RawValue::Null => Value::Null,
        RawValue::Integer(i) => Value::Integer(i),
        RawValue::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        RawValue::Blob(b) => Value::Blob(b.to_vec()),
        RawValue::Real => {
            return Err(SqlError::RealValue {
                column: format!("{table}[{position}]"),
            })
        }
    })
}

/// Row records in changeset order, and the runs of one table each: (first row, table).
type UnsortedRows = (Vec<RowChange>, Vec<(usize, String)>);

/// The row records of changeset `bytes` in the changeset's own order, with the same
/// netting and the same errors as [`Changeset::rows_from_iter`].
fn rows_unsorted(bytes: &[u8]) -> Result<UnsortedRows, SqlError> {
    let mut r = SessionReader { bytes, pos: 0 };
    let mut rows: Vec<RowChange> = Vec::new();
    let mut runs: Vec<(usize, String)> = Vec::new();
    let mut table: Option<(String, usize, Vec<bool>)> = None;
    let mut old: Vec<RawValue<'_>> = Vec::new();
    let mut new: Vec<RawValue<'_>> = Vec::new();
    while r.pos < bytes.len() {
        let mut op = r.u8()?;
        while op == b'T' {
            let ncol = r.varint()?;
            if ncol == 0 {
                return Err(corrupt());
            }
            let pk: Vec<bool> = r.take(ncol)?.iter().map(|b| *b != 0).collect();
            let rest = &bytes[r.pos..];
            let nul = rest.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
            let name = std::str::from_utf8(&rest[..nul])
                .map_err(|e| SqlError::Sqlite(rusqlite::Error::from(e)))?;
            r.pos += nul + 1;
            runs.push((rows.len(), name.to_owned()));
            table = Some((name.to_owned(), ncol, pk));
            if r.pos >= bytes.len() {
                return Ok((rows, runs));
            }
            op = r.u8()?;
        }
        let Some((name, ncol, pk)) = &table else {
            return Err(corrupt());
        };
        r.change(op, *ncol, &mut old, &mut new)?;
        if let Some(row) = row_change(op, name, pk, &old, &new)? {
            rows.push(row);
        }
    }
    Ok((rows, runs))
}

const INSERT: u8 = 18;
const UPDATE: u8 = 23;
const DELETE: u8 = 9;

impl<'a> SessionReader<'a> {
    /// The rest of a change whose op byte was just read: the indirect flag, then the old
    /// record (UPDATE, DELETE) into `old` and the new one (INSERT, UPDATE) into `new`.
    fn change(
        &mut self,
        op: u8,
        ncol: usize,
        old: &mut Vec<RawValue<'a>>,
        new: &mut Vec<RawValue<'a>>,
    ) -> Result<(), SqlError> {
        let _indirect = self.u8()?;
        if op == UPDATE || op == DELETE {
            self.record(ncol, old)?;
        }
        if op == INSERT || op == UPDATE {
            self.record(ncol, new)?;
        }
        Ok(())
    }
}

/// The record of one change of table `name` (PK flags `pk`), or None for an update that
/// changes nothing. Values are converted in a fixed order, so the first bad one is the
/// error; [`check_change`] follows the same order without allocating.
fn row_change(
    op: u8,
    name: &str,
    pk: &[bool],
    old: &[RawValue<'_>],
    new: &[RawValue<'_>],
) -> Result<Option<RowChange>, SqlError> {
    let ncol = pk.len();
    // Exact capacity: a pushed-to empty vector reserves four values, and the record's
    // memory is walked again by every later pass over the changeset.
    let mut key = Vec::with_capacity(pk.iter().filter(|p| **p).count());
    let mut columns = Vec::new();
    let row_op = match op {
        INSERT => {
            columns.reserve_exact(ncol);
            for (i, v) in new.iter().enumerate() {
                let v = value_from_raw(*v, name, i)?;
                if pk[i] {
                    key.push(ColumnValue {
                        position: i as u16,
                        value: v.clone(),
                    });
                }
                columns.push(ColumnValue {
                    position: i as u16,
                    value: v,
                });
            }
            RowOp::Insert
        }
        DELETE => {
            for (i, v) in old.iter().enumerate() {
                if pk[i] {
                    key.push(ColumnValue {
                        position: i as u16,
                        value: value_from_raw(*v, name, i)?,
                    });
                }
            }
            RowOp::Delete
        }
        UPDATE => {
            for i in 0..ncol {
                if pk[i] {
                    key.push(ColumnValue {
                        position: i as u16,
                        value: value_from_raw(old[i], name, i)?,
                    });
                } else if !matches!(new[i], RawValue::Undefined) {
                    let new = value_from_raw(new[i], name, i)?;
                    let old = match old[i] {
                        RawValue::Undefined => None,
                        o => Some(value_from_raw(o, name, i)?),
                    };
                    if old.as_ref() != Some(&new) {
                        columns.push(ColumnValue {
                            position: i as u16,
                            value: new,
                        });
                    }
                }
            }
            if columns.is_empty() {
                return Ok(None);
            }
            RowOp::Update
        }
        _ => return Err(corrupt()),
    };
    Ok(Some(RowChange {
        op: row_op,
        table: name.to_owned(),
        key,
        columns,
    }))
}

/// The error [`value_from_raw`] would give for `v`, without building the value.
fn check_raw(v: RawValue<'_>, table: &str, position: usize) -> Result<(), SqlError> {
    match v {
        RawValue::Undefined | RawValue::Real => value_from_raw(v, table, position).map(drop),
        _ => Ok(()),
    }
}

/// [`row_change`]'s errors, in its order, without allocating; and the change's key if it
/// is one integer (the only keys [`rows_in_key_order`] sorts).
fn check_change(
    op: u8,
    name: &str,
    pk: &[bool],
    old: &[RawValue<'_>],
    new: &[RawValue<'_>],
) -> Result<Option<i64>, SqlError> {
    let key_of = |values: &[RawValue<'_>]| {
        let mut key = pk.iter().zip(values).filter(|(is_pk, _)| **is_pk);
        match (key.next(), key.next()) {
            (Some((_, RawValue::Integer(k))), None) => Some(*k),
            _ => None,
        }
    };
    match op {
        INSERT => {
            for (i, v) in new.iter().enumerate() {
                check_raw(*v, name, i)?;
            }
            Ok(key_of(new))
        }
        DELETE => {
            for (i, v) in old.iter().enumerate() {
                if pk[i] {
                    check_raw(*v, name, i)?;
                }
            }
            Ok(key_of(old))
        }
        UPDATE => {
            for i in 0..pk.len() {
                if pk[i] {
                    check_raw(old[i], name, i)?;
                } else if !matches!(new[i], RawValue::Undefined) {
                    check_raw(new[i], name, i)?;
                    if !matches!(old[i], RawValue::Undefined) {
                        check_raw(old[i], name, i)?;
                    }
                }
            }
            Ok(key_of(old))
        }
        _ => Err(corrupt()),
    }
}

/// The row records of changeset `bytes` in canonical order, built in that order, when
/// every key is one integer; None otherwise (then [`rows_unsorted`] and [`sort_rows`]
/// apply).
///
/// A first pass checks every change (the same errors as [`rows_unsorted`], in the same
/// order) and sorts (table rank, key, change) entries as [`sort_rows`] does; a second
/// reads each change again, in that order, and builds its record. Building the records
/// in canonical order puts their heap blocks in that order too: every later walk over
/// the changeset (hash, encode, drop) then reads memory front to back instead of jumping
/// across megabytes of session-ordered blocks, which on 20 000 rows made `hash` about
/// three times and the drop two to three times slower.
fn rows_in_key_order(bytes: &[u8]) -> Result<Option<Vec<RowChange>>, SqlError> {
    struct Table<'a> {
        name: &'a str,
        pk: Vec<bool>,
    }
    let mut r = SessionReader { bytes, pos: 0 };
    let mut tables: Vec<Table<'_>> = Vec::new();
    // Start of each change (after its op byte), with its op and table.
    let mut changes: Vec<(usize, u8, u32)> = Vec::new();
    let mut keys: Vec<i64> = Vec::new();
    let mut old: Vec<RawValue<'_>> = Vec::new();
    let mut new: Vec<RawValue<'_>> = Vec::new();
    while r.pos < bytes.len() {
        let mut op = r.u8()?;
        while op == b'T' {
            let ncol = r.varint()?;
            if ncol == 0 {
                return Err(corrupt());
            }
            let pk: Vec<bool> = r.take(ncol)?.iter().map(|b| *b != 0).collect();
            let rest = &bytes[r.pos..];
            let nul = rest.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
            let name = std::str::from_utf8(&rest[..nul])
                .map_err(|e| SqlError::Sqlite(rusqlite::Error::from(e)))?;
            r.pos += nul + 1;
            tables.push(Table { name, pk });
            if r.pos >= bytes.len() {
                break;
            }
            op = r.u8()?;
        }
        if op == b'T' {
            break;
        }
        let Some(table) = tables.last() else {
            return Err(corrupt());
        };
        let start = r.pos;
        r.change(op, table.pk.len(), &mut old, &mut new)?;
        let Some(key) = check_change(op, table.name, &table.pk, &old, &new)? else {
            return Ok(None);
        };
        // The packed entries below hold indices and runs in 32 bits.
        let Ok(run) = u32::try_from(tables.len() - 1) else {
            return Ok(None);
        };
        if changes.len() >= u32::MAX as usize {
            return Ok(None);
        }
        changes.push((start, op, run));
        keys.push(key);
    }
    // Rank of each run's table among the distinct names.
    let mut by_name: Vec<usize> = (0..tables.len()).collect();
    by_name.sort_by(|a, b| tables[*a].name.cmp(tables[*b].name));
    let mut run_rank = vec![0u32; tables.len()];
    let mut rank = 0u32;
    for (n, &i) in by_name.iter().enumerate() {
        if n > 0 && tables[by_name[n - 1]].name != tables[i].name {
            rank += 1;
        }
        run_rank[i] = rank;
    }
    // (rank, key, index) packed into one u128 that compares the same way: the key with its
    // sign bit flipped orders as the signed integer (and as its encoding).
    let mut entries: Vec<u128> = changes
        .iter()
        .zip(&keys)
        .enumerate()
        .map(|(i, ((_, _, run), key))| {
            let key = (*key as u64) ^ (1 << 63);
            (u128::from(run_rank[*run as usize]) << 96) | (u128::from(key) << 32) | i as u128
        })
        .collect();
    entries.sort_unstable();
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        let (start, op, run) = changes[(e & 0xffff_ffff) as usize];
        let table = &tables[run as usize];
        r.pos = start;
        r.change(op, table.pk.len(), &mut old, &mut new)?;
        if let Some(row) = row_change(op, table.name, &table.pk, &old, &new)? {
            rows.push(row);
        }
    }
    Ok(Some(rows))
}

/// The row records of changeset `bytes` in canonical order (see [`rows_in_key_order`]).
fn rows_canonical(bytes: &[u8]) -> Result<Vec<RowChange>, SqlError> {
    match rows_in_key_order(bytes)? {
        Some(rows) => Ok(rows),
        None => rows_unsorted(bytes).map(|(rows, runs)| sort_rows(rows, &runs)),
    }
}

/// Put `rows` in canonical order: (table, `key_bytes(key)`), stable, as
/// [`canonical_order`] does, but sorting small entries instead of whole records. Tables
/// come in runs (`runs`: first row of each); each table gets its rank among the table names
/// once, and when every key is one integer the entries are (rank, key, index) triples.
/// Ties are broken by index, so the order is the stable one.
fn sort_rows(rows: Vec<RowChange>, runs: &[(usize, String)]) -> Vec<RowChange> {
    if rows.len() < 2 {
        return rows;
    }
    // Rank of each run's table among the distinct names.
    let mut by_name: Vec<usize> = (0..runs.len()).collect();
    by_name.sort_by(|a, b| runs[*a].1.cmp(&runs[*b].1));
    let mut run_rank = vec![0u32; runs.len()];
    let mut rank = 0u32;
    for (n, &i) in by_name.iter().enumerate() {
        if n > 0 && runs[by_name[n - 1]].1 != runs[i].1 {
            rank += 1;
        }
        run_rank[i] = rank;
    }
    let mut rank_of = vec![0u32; rows.len()];
    for (i, (first, _)) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map_or(rows.len(), |(next, _)| *next);
        rank_of[*first..end].fill(run_rank[i]);
    }
    let single_int = |r: &RowChange| match r.key.as_slice() {
        [ColumnValue {
            value: Value::Integer(k),
            ..
        }] => Some(*k),
        _ => None,
    };
    let order: Vec<usize> =
        if rows.len() <= u32::MAX as usize && rows.iter().all(|r| single_int(r).is_some()) {
            // (rank, key, index) packed into one u128 that compares the same way: the key with
            // its sign bit flipped orders as the signed integer (and as its encoding).
            let mut entries: Vec<u128> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let key = (single_int(r).unwrap_or(0) as u64) ^ (1 << 63);
                    (u128::from(rank_of[i]) << 96) | (u128::from(key) << 32) | i as u128
                })
                .collect();
            entries.sort_unstable();
            entries
                .into_iter()
                .map(|e| (e & 0xffff_ffff) as usize)
                .collect()
        } else {
            let mut idx: Vec<usize> = (0..rows.len()).collect();
            idx.sort_unstable_by(|&a, &b| {
                rank_of[a]
                    .cmp(&rank_of[b])
                    .then_with(|| cmp_keys(&rows[a].key, &rows[b].key))
                    .then(a.cmp(&b))
            });
            idx
        };
    let mut slots: Vec<Option<RowChange>> = rows.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
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
    /// Turn SQLite changeset bytes (as a session or changegroup writes them) into canonical
    /// row records, sorted by (table name, canonical key bytes). Columns whose value did not
    /// change are dropped, and updates that change nothing vanish.
    ///
    /// Reads the format directly (see [`SessionReader`]) instead of through SQLite's
    /// changeset iterator, which copies every value into a fresh `sqlite3_value`. In debug
    /// builds the result is checked against the iterator's ([`Changeset::rows_from_iter`]).
    pub(crate) fn rows_from_bytes(bytes: &[u8]) -> Result<Vec<RowChange>, SqlError> {
        let result = rows_canonical(bytes);
        if cfg!(debug_assertions) {
            let mut input: &[u8] = bytes;
            let reader: &mut dyn std::io::Read = &mut input;
            let via_sqlite = rusqlite::session::ChangesetIter::start_strm(&reader)
                .map_err(SqlError::from)
                .and_then(Changeset::rows_from_iter);
            // Error values are not comparable; that both fail is what must agree.
            match (&result, &via_sqlite) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "changeset reader disagrees with SQLite"),
                (Err(_), Err(_)) => {}
                _ => panic!("changeset reader disagrees with SQLite: {result:?} vs {via_sqlite:?}"),
            }
        }
        result
    }

    /// The same records through SQLite's changeset iterator: the reference that
    /// [`Changeset::rows_from_bytes`] is checked against in debug builds.
    pub(crate) fn rows_from_iter(
        mut iter: rusqlite::session::ChangesetIter<'_>,
    ) -> Result<Vec<RowChange>, SqlError> {
        let mut rows = Vec::new();
        while let Some(item) = iter.next()? {
            let op = item.op()?;
            let table = op.table_name().to_owned();
            let ncols = usize::try_from(op.number_of_columns()).unwrap_or(0);
            let code = op.code();
            let pk = item.pk()?;
            let is_pk = |i: usize| pk.get(i).is_some_and(|b| *b != 0);
            let mut key = Vec::new();
            let mut columns = Vec::new();
            let row_op = match code {
                Action::SQLITE_INSERT => {
                    for i in 0..ncols {
                        let v = value_from_ref(item.new_value(i)?, &table, i)?;
                        if is_pk(i) {
                            key.push(ColumnValue {
                                position: i as u16,
                                value: v.clone(),
                            });
                        }
                        columns.push(ColumnValue {
                            position: i as u16,
                            value: v,
                        });
                    }
                    RowOp::Insert
                }
                Action::SQLITE_DELETE => {
                    for i in 0..ncols {
                        if is_pk(i) {
                            let v = value_from_ref(item.old_value(i)?, &table, i)?;
                            key.push(ColumnValue {
                                position: i as u16,
                                value: v,
                            });
                        }
                    }
                    RowOp::Delete
                }
                Action::SQLITE_UPDATE => {
                    for i in 0..ncols {
                        if is_pk(i) {
                            let v = value_from_ref(item.old_value(i)?, &table, i)?;
                            key.push(ColumnValue {
                                position: i as u16,
                                value: v,
                            });
                        } else if let Ok(new) = item.new_value(i) {
                            let new = value_from_ref(new, &table, i)?;
                            let old = match item.old_value(i) {
                                Ok(o) => Some(value_from_ref(o, &table, i)?),
                                Err(_) => None,
                            };
                            if old.as_ref() != Some(&new) {
                                columns.push(ColumnValue {
                                    position: i as u16,
                                    value: new,
                                });
                            }
                        }
                    }
                    if columns.is_empty() {
                        continue;
                    }
                    RowOp::Update
                }
                _ => continue,
            };
            rows.push(RowChange {
                op: row_op,
                table,
                key,
                columns,
            });
        }
        Ok(canonical_order(rows))
    }

    /// The canonical, versioned byte encoding (see `docs/changeset.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_with(&mut out, |_| {});
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

    /// Write the encoding into `out`, handing `out` to `flush` whenever it holds
    /// `ENCODE_CHUNK` bytes or more, and once at the end; `flush` may drain it.
    fn encode_with(&self, out: &mut Vec<u8>, mut flush: impl FnMut(&mut Vec<u8>)) {
        out.extend_from_slice(CHANGESET_MAGIC);
        out.push(CHANGESET_VERSION);
        out.extend_from_slice(&(self.records.len() as u32).to_be_bytes());
        for r in &self.records {
            match r {
                ChangesetRecord::Row(row) => {
                    out.push(row.op.tag());
                    encode_bytes(out, row.table.as_bytes());
                    encode_columns(out, &row.key);
                    encode_columns(out, &row.columns);
                }
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
            if out.len() >= ENCODE_CHUNK {
                flush(out);
            }
        }
        flush(out);
    }

    /// SHA-256 of the canonical encoding. Because the encoding carries operation, table,
    /// key, positions, type tags and lengths, so does the hash. The encoding is hashed in
    /// chunks as it is written, not built whole first.
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        let mut buf = Vec::with_capacity(2 * ENCODE_CHUNK);
        self.encode_with(&mut buf, |b| {
            hasher.update(&b[..]);
            b.clear();
        });
        hasher.finalize().into()
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
    pub fn apply_to(&self, conn: &Connection) -> Result<(), SqlError> {
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
                    apply_rows(conn, &run)?;
                    run.clear();
                    apply_schema_record(conn, other)?;
                }
            }
        }
        apply_rows(conn, &run)
    }
}

fn apply_schema_record(conn: &Connection, r: &ChangesetRecord) -> Result<(), SqlError> {
    match r {
        ChangesetRecord::CreateSchema { name } => {
            conn.execute("INSERT INTO _dstorage_schemas(name) VALUES (?1)", [name])?;
        }
        ChangesetRecord::DropSchema { name } => {
            crate::engine::drop_schema_objects(conn, name)?;
            conn.execute("DELETE FROM _dstorage_schemas WHERE name = ?1", [name])?;
        }
        ChangesetRecord::Ddl { schema, sql } => {
            // Changeset bytes may come from elsewhere: run only the DDL kinds a block can
            // record, and only on objects of the record's schema.
            let prefix = format!("\"{schema}.");
            // The engine writes SQLite's `STRICT, WITHOUT ROWID`, which the parser reads
            // in its own order.
            let parseable = sql.replace(" STRICT, WITHOUT ROWID", " WITHOUT ROWID STRICT");
            for stmt in crate::guard::parse(&parseable)? {
                use sqlparser::ast::Statement as S;
                let allowed = matches!(
                    stmt,
                    S::CreateTable(_) | S::CreateIndex(_) | S::CreateView { .. } | S::Drop { .. }
                );
                if !allowed || !stmt.to_string().contains(&prefix) {
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

fn column_names(conn: &Connection, table: &str) -> Result<Vec<String>, SqlError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_xinfo(?1) ORDER BY cid")?;
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
                "INSERT INTO {table}({}) VALUES ({})",
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
                "UPDATE {table} SET {} WHERE {}",
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
/// retried after the others until no progress is made.
fn apply_rows(conn: &Connection, rows: &[&RowChange]) -> Result<(), SqlError> {
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
            return Err(last_err.unwrap_or_else(|| SqlError::ChangesetApply("no progress".into())));
        }
        pending = failed;
    }
    Ok(())
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
            0 => Ok(Value::Null),
            1 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(Value::Integer((u64::from_be_bytes(a) ^ (1 << 63)) as i64))
            }
            2 => Ok(Value::Text(self.string()?)),
            3 => Ok(Value::Blob(self.bytes()?.to_vec())),
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

    /// `cmp_keys` orders keys exactly as their canonical encodings compare.
    #[test]
    fn key_order_matches_the_encoding() {
        let values = [
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Integer(-1),
            Value::Integer(0),
            Value::Integer(1),
            Value::Integer(255),
            Value::Integer(256),
            Value::Integer(i64::MAX),
            Value::Text(String::new()),
            Value::Text("a".into()),
            Value::Text("b".into()),
            Value::Text("ab".into()),
            Value::Text("é".into()),
            Value::Blob(vec![]),
            Value::Blob(vec![0]),
            Value::Blob(vec![255]),
            Value::Blob(vec![0, 0]),
        ];
        let col = |v: &Value, p: u16| ColumnValue {
            position: p,
            value: v.clone(),
        };
        let mut keys: Vec<Vec<ColumnValue>> = Vec::new();
        for a in &values {
            keys.push(vec![col(a, 0)]);
            for b in &values {
                keys.push(vec![col(a, 0), col(b, 1)]);
            }
        }
        for x in &keys {
            for y in &keys {
                assert_eq!(
                    cmp_keys(x, y),
                    key_bytes(x).cmp(&key_bytes(y)),
                    "{x:?} vs {y:?}"
                );
            }
        }
    }

    /// The reader of changeset bytes gives exactly the records SQLite's changeset iterator
    /// gives (and fails where it fails), on random sessions over tables with integer, text,
    /// blob and composite keys: inserts, updates of some columns, no-op updates, deletes,
    /// key changes, NULLs, invalid UTF-8 text, values long enough for multi-byte varints,
    /// REAL values (an error either way), and netted changegroup output.
    #[test]
    fn reader_matches_sqlite_iterator() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        use rusqlite::session::{Changegroup, ChangesetIter, Session};

        fn via_sqlite(bytes: &[u8]) -> Result<Vec<RowChange>, SqlError> {
            let mut input: &[u8] = bytes;
            let reader: &mut dyn std::io::Read = &mut input;
            let rows = Changeset::rows_from_iter(ChangesetIter::start_strm(&reader)?);
            rows
        }
        thread_local!(static KEY_ORDERED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
        fn mine(bytes: &[u8]) -> Result<Vec<RowChange>, SqlError> {
            let generic = rows_unsorted(bytes).map(|(rows, runs)| sort_rows(rows, &runs));
            // The records built in key order are the same records, with the same errors.
            match (rows_in_key_order(bytes), &generic) {
                (Ok(Some(rows)), Ok(expected)) => {
                    assert_eq!(&rows, expected);
                    KEY_ORDERED.with(|n| n.set(n.get() + 1));
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (Ok(None), _) => {}
                (fast, generic) => panic!("{fast:?} vs {generic:?}"),
            }
            generic
        }
        fn value(rng: &mut StdRng, reals: bool) -> String {
            match rng.gen_range(0..10) {
                0 => "NULL".into(),
                1 => rng.gen_range(-3i64..3).to_string(),
                2 => i64::MIN.to_string(),
                3 => format!("'{}'", "é".repeat(rng.gen_range(0..3))),
                4 => "CAST(X'FF00FE' AS TEXT)".into(),
                5 => format!("X'{}'", "ab".repeat(rng.gen_range(0..3))),
                6 => format!(
                    "randomblob({})",
                    [127, 128, 16_383, 16_384][rng.gen_range(0..4)]
                ),
                7 => format!("'{}'", "x".repeat(rng.gen_range(100..300))),
                8 if reals => "1.5".into(),
                _ => rng.gen_range(-1000i64..1000).to_string(),
            }
        }
        let tables = [
            "CREATE TABLE a(id INTEGER PRIMARY KEY, v ANY, w ANY)",
            "CREATE TABLE b(k ANY PRIMARY KEY, v ANY) WITHOUT ROWID",
            "CREATE TABLE c(x ANY, v ANY, y ANY, PRIMARY KEY(y, x)) WITHOUT ROWID",
            "CREATE TABLE d(id INTEGER PRIMARY KEY, v ANY)",
        ];
        let mut compared = 0;
        for seed in 0..40u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let reals = seed % 5 == 4;
            // Some sessions touch only tables keyed by one integer (built in key order).
            let int_keys_only = seed % 3 == 0;
            let conn = Connection::open_in_memory().expect("open");
            for t in tables {
                conn.execute_batch(t).expect("create");
            }
            let mut chunks = Vec::new();
            for _ in 0..3 {
                let mut session = Session::new(&conn).expect("session");
                session.attach(None::<&str>).expect("attach");
                for _ in 0..60 {
                    let k = rng.gen_range(0..12);
                    let kind = match rng.gen_range(0..9) {
                        4 | 5 if int_keys_only => 8,
                        kind => kind,
                    };
                    let sql = match kind {
                        0 | 1 => format!(
                            "INSERT OR REPLACE INTO a VALUES ({k}, {}, {})",
                            value(&mut rng, reals),
                            value(&mut rng, reals)
                        ),
                        2 => format!("UPDATE a SET v = {} WHERE id = {k}", value(&mut rng, reals)),
                        3 => format!("UPDATE a SET w = w, v = v WHERE id = {k}"),
                        4 => format!(
                            "INSERT OR REPLACE INTO b VALUES ({}, {})",
                            value(&mut rng, false),
                            value(&mut rng, reals)
                        ),
                        5 => format!(
                            "INSERT OR REPLACE INTO c VALUES ({}, {}, {})",
                            value(&mut rng, false),
                            value(&mut rng, reals),
                            rng.gen_range(0..4)
                        ),
                        6 => format!("UPDATE a SET id = id + 100 WHERE id = {k}"),
                        7 => format!("DELETE FROM a WHERE id % 5 = {}", k % 5),
                        _ => format!(
                            "INSERT OR REPLACE INTO d VALUES ({k}, {})",
                            value(&mut rng, reals)
                        ),
                    };
                    let _ = conn.execute_batch(&sql);
                }
                let mut bytes = Vec::new();
                session.changeset_strm(&mut bytes).expect("changeset");
                chunks.push(bytes);
            }
            let mut group = Changegroup::new().expect("group");
            for c in &chunks {
                group.add_stream(&mut c.as_slice()).expect("add");
            }
            let mut netted = Vec::new();
            group.output_strm(&mut netted).expect("output");
            chunks.push(netted);
            for bytes in &chunks {
                match (mine(bytes), via_sqlite(bytes)) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b, "seed {seed}");
                        compared += a.len();
                    }
                    (
                        Err(SqlError::RealValue { column: a }),
                        Err(SqlError::RealValue { column: b }),
                    ) => {
                        assert_eq!(a, b, "seed {seed}")
                    }
                    (a, b) => panic!("seed {seed}: {a:?} vs {b:?}"),
                }
            }
        }
        assert!(compared > 1_000, "only {compared} rows compared");
        let key_ordered = KEY_ORDERED.with(std::cell::Cell::get);
        assert!(
            key_ordered > 20,
            "only {key_ordered} changesets built in key order"
        );
    }

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
