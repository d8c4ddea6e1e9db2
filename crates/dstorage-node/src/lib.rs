//! The dstorage node as a library: what the `dstorage` binary is built from, reachable by integration tests.

pub mod cometbft;
