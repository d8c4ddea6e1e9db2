//! The adversarial campaign's support code (issue 10 item 8): a SQLite-rules tokenizer, a
//! grammar-based SQL generator, and the list of guard bugs known to fail today.
#![allow(dead_code)]

pub mod known_bugs;
pub mod sqlgen;
pub mod sqltok;
