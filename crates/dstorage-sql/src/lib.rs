//! Run SQL deterministically on SQLite and record each block's canonical changeset.
//!
//! ```
//! use dstorage_sql::{Engine, EngineConfig};
//! let dir = tempfile::tempdir().unwrap();
//! let mut engine = Engine::open(&dir.path().join("db.sqlite"), EngineConfig::default()).unwrap();
//! let mut block = engine.begin_block().unwrap();
//! block.create_schema("app").unwrap();
//! block.execute("app", "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT) STRICT", 100_000).unwrap();
//! block.execute("app", "INSERT INTO users VALUES (1, 'satoshi')", 100_000).unwrap();
//! let changeset = block.changeset().unwrap();
//! println!("{changeset}");
//! block.commit().unwrap();
//! ```

pub mod actions;
mod authorizer;
mod catalog;
mod changeset;
mod class;
mod engine;
mod error;
pub mod functions;
pub mod fuzzing;
mod guard;
mod meter;
mod names;
mod program;
mod syntax;
mod tracker;
mod verify;

pub use authorizer::ALLOWED_FUNCTIONS;
pub use catalog::{table_physical_name, ColumnInfo, SchemaInfo, TableDump, TableInfo};
pub use changeset::{
    Changeset, ChangesetRecord, ColumnValue, RowChange, RowOp, CHANGESET_MAGIC, CHANGESET_VERSION,
};
pub use class::{classify, follows_from_text, ErrorClass};
pub use dstorage_types::value::Value;
pub use engine::estimate::{Estimate, RUN_BUDGET as ESTIMATE_RUN_BUDGET};
pub use engine::{
    sqlite_version, Block, EncodedChangeset, Engine, EngineConfig, ExecOutcome, KvPairs,
    QueryResult, Reader, SQLITE_VERSION, SQL_STACK_RED_ZONE, SQL_STACK_SEGMENT, SQL_THREAD_STACK,
    SYSTEM_VALUE_LIMIT,
};
pub use error::SqlError;
pub use meter::{BYTES_PER_STEP, PROGRESS_STEP, VALUE_OVERHEAD};
pub use names::{physical_name, validate_schema_name};
