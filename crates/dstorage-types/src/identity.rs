//! Identities: who signed a transaction or a read request (owned by dstorage-auth's work; see issue 3).
