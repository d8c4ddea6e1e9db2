//! Verify who signed what: key types, signature standards, address formats and key files.
