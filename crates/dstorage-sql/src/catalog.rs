//! The catalog as the engine reads it from SQLite: schemas, tables, their keys and columns, and dropping a
//! schema's objects.

use dstorage_types::value::Value;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::authorizer::{Authorizer, Mode};
use crate::guard::Catalog;
use crate::names::{physical_name, split_physical, validate_schema_name};
use crate::SqlError;

/// Every user table (physical name) with its rows in key order.
pub type TableDump = Vec<(String, Vec<Vec<Value>>)>;

/// A column of a user table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Declared type: INTEGER, TEXT or BLOB.
    pub decl_type: String,
    /// Position in the primary key, counting from 1; 0 if not part of it.
    pub primary_key: u32,
    /// NOT NULL was declared (or implied).
    pub not_null: bool,
}

/// A user table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Table name within its schema.
    pub name: String,
    /// Columns in position order.
    pub columns: Vec<ColumnInfo>,
}

/// A schema and its tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaInfo {
    /// Schema name.
    pub name: String,
    /// Tables sorted by name.
    pub tables: Vec<TableInfo>,
}

pub(crate) struct ConnCatalog<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) auth: &'a Authorizer,
    pub(crate) mode: Mode,
}

/// The primary-key columns of `physical` in key order, or None for an unknown (or keyless) table.
pub(crate) fn primary_key_columns(conn: &Connection, physical: &str) -> Option<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
        .ok()?;
    let cols = stmt
        .query_map([physical], |r| r.get::<_, String>(0))
        .ok()?
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    (!cols.is_empty()).then_some(cols)
}

/// The first column of a table or view `physical`, if it exists.
pub(crate) fn first_column(conn: &Connection, physical: &str) -> Option<String> {
    conn.prepare_cached("SELECT name FROM pragma_table_info(?1) ORDER BY cid LIMIT 1")
        .ok()?
        .query_row([physical], |r| r.get::<_, String>(0))
        .ok()
}

/// How many columns `SELECT *` gives of table or view `physical` (generated columns
/// included), if it exists.
pub(crate) fn table_width(conn: &Connection, physical: &str) -> Option<usize> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM pragma_table_xinfo(?1) WHERE hidden IN (0, 2, 3)")
        .ok()?
        .query_row([physical], |r| r.get(0))
        .ok()?;
    usize::try_from(n).ok().filter(|&n| n > 0)
}

impl Catalog for ConnCatalog<'_> {
    fn primary_key(&self, physical: &str) -> Option<Vec<String>> {
        primary_key_columns(self.conn, physical)
    }

    fn first_column(&self, physical: &str) -> Option<String> {
        first_column(self.conn, physical)
    }

    fn table_width(&self, physical: &str) -> Option<usize> {
        table_width(self.conn, physical)
    }

    fn column_count(
        &self,
        sql: &str,
        ctes: &std::collections::BTreeSet<String>,
    ) -> Result<usize, SqlError> {
        let mode = match &self.mode {
            Mode::Write { schema, .. } => Mode::Write {
                schema: schema.clone(),
                ctes: ctes.clone(),
            },
            Mode::Read { .. } => Mode::Read { ctes: ctes.clone() },
            Mode::Internal => Mode::Internal,
        };
        self.auth.set_mode(mode);
        let n = self.conn.prepare(sql).map(|s| s.column_count());
        let denial = self.auth.take_denial();
        self.auth.set_mode(Mode::Internal);
        match (n, denial) {
            (_, Some(d)) => Err(d),
            (Ok(n), None) => Ok(n),
            (Err(e), None) => Err(SqlError::Sqlite(e)),
        }
    }
}

pub(crate) fn schema_exists(conn: &Connection, schema: &str) -> Result<bool, SqlError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM _dstorage_schemas WHERE name = ?1")?;
    Ok(stmt.exists([schema])?)
}

pub(crate) fn require_schema(conn: &Connection, schema: &str) -> Result<(), SqlError> {
    validate_schema_name(schema)?;
    if schema_exists(conn, schema)? {
        Ok(())
    } else {
        Err(SqlError::UnknownSchema(schema.to_owned()))
    }
}

/// Physical names of every object of `schema` of the given SQLite type, sorted.
pub(crate) fn schema_objects(
    conn: &Connection,
    schema: &str,
    kind: &str,
) -> Result<Vec<String>, SqlError> {
    let lo = format!("{schema}.");
    let hi = format!("{schema}/");
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM sqlite_schema WHERE type = ?1 AND name > ?2 AND name < ?3 ORDER BY name",
    )?;
    let names = stmt
        .query_map(rusqlite::params![kind, lo, hi], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Drop every view and table of `schema` (rows must already be deleted to be recorded).
pub(crate) fn drop_schema_objects(conn: &Connection, schema: &str) -> Result<(), SqlError> {
    for v in schema_objects(conn, schema, "view")? {
        conn.execute_batch(&format!("DROP VIEW {}", quote(&v)))?;
    }
    // The tables are empty by now (their rows were deleted and recorded first), so the
    // implicit DELETE of DROP TABLE finds no foreign-key work in any order.
    for t in schema_objects(conn, schema, "table")? {
        conn.execute_batch(&format!("DROP TABLE {}", quote(&t)))?;
    }
    Ok(())
}

pub(crate) fn schemas(conn: &Connection) -> Result<Vec<SchemaInfo>, SqlError> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM _dstorage_schemas ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut tables = Vec::new();
        for physical in schema_objects(conn, &name, "table")? {
            let columns = conn
                .prepare_cached(
                    "SELECT name, type, pk, \"notnull\" FROM pragma_table_info(?1) ORDER BY cid",
                )?
                .query_map([&physical], |r| {
                    Ok(ColumnInfo {
                        name: r.get(0)?,
                        decl_type: r.get(1)?,
                        primary_key: r.get(2)?,
                        not_null: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let table = split_physical(&physical)
                .map(|(_, t)| t.to_owned())
                .unwrap_or(physical.clone());
            tables.push(TableInfo {
                name: table,
                columns,
            });
        }
        out.push(SchemaInfo { name, tables });
    }
    Ok(out)
}

pub(crate) fn dump(conn: &Connection) -> Result<TableDump, SqlError> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE '%.%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for t in tables {
        let pk: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?
            .query_map([&t], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let order = pk.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        let mut stmt = conn.prepare(&format!("SELECT * FROM {} ORDER BY {order}", quote(&t)))?;
        let n = stmt.column_count();
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = stmt.query([])?;
        let mut data = Vec::new();
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(n);
            for (i, name) in names.iter().enumerate() {
                vals.push(value_of(r.get_ref(i)?, name)?);
            }
            data.push(vals);
        }
        out.push((t, data));
    }
    Ok(out)
}

/// Physical name helper re-exported for callers that build names themselves.
pub fn table_physical_name(schema: &str, table: &str) -> String {
    physical_name(schema, table)
}

pub(crate) fn value_of(v: ValueRef<'_>, column: &str) -> Result<Value, SqlError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Real(_) => {
            return Err(SqlError::RealValue {
                column: column.to_owned(),
            })
        }
    })
}
