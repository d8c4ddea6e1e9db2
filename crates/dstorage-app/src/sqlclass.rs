//! Where the app's code finds the classification of engine errors, which lives in `dstorage-sql` beside the
//! errors themselves (so the app needs no SQLite error codes).

pub use dstorage_sql::{classify, follows_from_text, ErrorClass};
