//! Turn engine and app values into the API's JSON shapes (`dstorage_client::api`).

use dstorage_app::reads::SchemaSummary;
use dstorage_client::api::{ChangeRecord, ChangesetResponse, Column, Schema, Table};
use dstorage_sql::{Changeset, ChangesetRecord};

/// A schema for `GET /v1/schemas`.
pub fn schema(s: SchemaSummary) -> Schema {
    Schema {
        name: s.info.name,
        owner: s.owner,
        tables: s
            .info
            .tables
            .into_iter()
            .map(|t| Table {
                name: t.name,
                columns: t
                    .columns
                    .into_iter()
                    .map(|c| Column {
                        name: c.name,
                        ty: c.decl_type,
                        pk: c.primary_key,
                        not_null: c.not_null,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A decoded changeset for `GET /v1/changesets/{height}`.
pub fn changeset(height: u64, cs: &Changeset) -> ChangesetResponse {
    let records = cs
        .records
        .iter()
        .map(|r| match r {
            ChangesetRecord::Row(row) => ChangeRecord {
                op: format!("{:?}", row.op).to_lowercase(),
                table: row.table.clone(),
                key: row.key.iter().map(|c| c.value.clone()).collect(),
                columns: row
                    .columns
                    .iter()
                    .map(|c| (u32::from(c.position), c.value.clone()))
                    .collect(),
            },
            ChangesetRecord::CreateSchema { name } => ChangeRecord {
                op: "create_schema".into(),
                table: name.clone(),
                key: Vec::new(),
                columns: Vec::new(),
            },
            ChangesetRecord::DropSchema { name } => ChangeRecord {
                op: "drop_schema".into(),
                table: name.clone(),
                key: Vec::new(),
                columns: Vec::new(),
            },
            ChangesetRecord::Ddl { schema, sql } => ChangeRecord {
                op: "ddl".into(),
                table: schema.clone(),
                key: Vec::new(),
                columns: vec![(0, dstorage_types::value::Value::Text(sql.clone()))],
            },
            #[allow(unreachable_patterns)]
            other => ChangeRecord {
                op: format!("{other:?}"),
                table: String::new(),
                key: Vec::new(),
                columns: Vec::new(),
            },
        })
        .collect();
    ChangesetResponse {
        height,
        hash: hex::encode(cs.hash()),
        encoded: hex::encode(cs.encode()),
        records,
        table: cs.to_string(),
    }
}
