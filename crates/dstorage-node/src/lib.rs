//! The dstorage node as a library: what the `dstorage` binary is built from, reachable by integration tests.

pub mod api;
pub mod api_actions;
mod api_common;
pub mod api_validators;
pub mod batcher;
pub mod cli;
pub mod cli_actions;
mod cli_common;
pub mod cometbft;
pub mod config;
pub mod convert;
pub mod grants_cmd;
pub mod localnet;
pub mod metrics;
pub mod progress;
pub mod readauth;
pub mod reads;
pub mod run;
pub mod validator_cmd;
