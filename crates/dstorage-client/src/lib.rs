//! Talk to a dstorage node's HTTP API from Rust.
