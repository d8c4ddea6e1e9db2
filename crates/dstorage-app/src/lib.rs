//! Replicate one SQL database: the ABCI 2.0 state machine that executes blocks and computes the app hash.
