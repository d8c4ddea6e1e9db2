//! Helpers shared by the integration tests.
#![allow(dead_code)]

use dstorage_sql::{Changeset, Engine, EngineConfig};
use tempfile::TempDir;

/// A generous limit for statements that are not about metering.
pub const LIMIT: u64 = 10_000_000;

/// A fresh engine on a real SQLite file in a temporary directory.
pub fn engine() -> (TempDir, Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine =
        Engine::open(&dir.path().join("db.sqlite"), EngineConfig::default()).expect("open");
    (dir, engine)
}

/// Run `sql` statements in `schema` in one committed block, creating the schema if asked.
pub fn commit_block(engine: &mut Engine, create: Option<&str>, schema: &str, sql: &[&str]) {
    let mut block = engine.begin_block().expect("begin");
    if let Some(s) = create {
        block.create_schema(s).expect("create schema");
    }
    for s in sql {
        block
            .execute(schema, s, LIMIT)
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    block.commit().expect("commit");
}

/// The seed example's starting state: app.users with satoshi, vitalik and gavin.
pub fn seed_users(engine: &mut Engine) {
    commit_block(
        engine,
        Some("app"),
        "app",
        &[
            "CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT, age INTEGER) STRICT",
            "INSERT INTO users VALUES (1,'satoshi',49), (2,'vitalik',30), (3,'gavin',52)",
        ],
    );
}

/// A changeset as printed by `Display`, one record per line with single spaces, without the
/// header line: records compared as text.
pub fn printed_records(changeset: &Changeset) -> Vec<String> {
    changeset
        .to_string()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}
