//! Replicate one SQL database: the ABCI 2.0 state machine that checks, orders and executes transactions and
//! computes the app hash.
//!
//! The consensus connection is served by one dedicated thread that owns the SQLite writer (`consensus`), so
//! requests are handled strictly in order and a block's SQLite transaction can stay open from FinalizeBlock to
//! Commit. The mempool (`mempool`) and reads ([`reads`]) use their own read-only connections on committed state.
//! [`abci`] offers both as tower-abci v0.38 services (the node serves them); [`testing`] drives the same code
//! in-process without CometBFT.
//!
//! Layers, bottom up: leaves (`sys`, `keys`, `refusal`, `error`, ...); rules (`rules`, `auth`, `grants`, `actions`,
//! `validators`, ...); the state (`state`: committed state, commit events, `Shared`); the services (`mempool`,
//! `consensus`, `reads`); the [`App`] handle (`shared`), [`abci`] and [`testing`] on top. docs/ARCHITECTURE.md,
//! "Module layers", lists every module's layer and uses (checked by a test). Modules are crate-private unless
//! the node or the tests use them.

pub mod abci;
pub mod access;
pub(crate) mod actions;
pub mod apphash;
pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod consensus;
mod error;
pub(crate) mod grants;
pub(crate) mod keys;
pub(crate) mod mempool;
pub mod reads;
pub(crate) mod record;
pub(crate) mod refusal;
mod rules;
pub(crate) mod shared;
pub(crate) mod sqlclass;
mod state;
mod sys;
pub mod testing;
pub mod validators;

pub use config::AppConfig;
pub use error::AppError;
pub use grants::Grant;
pub use record::TxRecord;
pub use refusal::Refusal;
pub use shared::App;
pub use state::{CommitEvent, Committed};
pub use sys::panic_message;
