//! Who may read what with ad-hoc SQL (`POST /v1/query`), and the `public_read` flag of the schema catalog.
//!
//! A schema is private by default: only its owner reads it with ad-hoc SQL, signed (`docs/api.md`, "Who can
//! read what"). A schema whose `public_read` flag is set may be read by anyone, signed or not. The flag is
//! stored with the schema's owner in the system KV (`public_read/<schema>`), set and cleared only in blocks by
//! [`set_public_read`] (a schema file's declaration, applied at deploy), and removed with the schema.

use dstorage_sql::{Block, SqlError};

use crate::keys;

/// Set or clear `schema`'s `public_read` flag in the block (the caller has checked the sender owns it).
pub fn set_public_read(block: &mut Block<'_>, schema: &str, on: bool) -> Result<(), SqlError> {
    if on {
        block.kv_put(&keys::public_read(schema), &[1])
    } else {
        block.kv_delete(&keys::public_read(schema))
    }
}

/// Why an ad-hoc read is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadDenied {
    /// Unsigned read of a schema that is not publicly readable (401).
    #[error("schema {schema} is not publicly readable: sign the read as its owner ({owner})")]
    SignatureRequired {
        /// The schema.
        schema: String,
        /// Its owner.
        owner: String,
    },
    /// Signed by someone who is not the owner of a schema that is not publicly readable (403).
    #[error(
        "{caller} may not read schema {schema}: it is owned by {owner} and not publicly readable"
    )]
    Forbidden {
        /// The schema.
        schema: String,
        /// Its owner.
        owner: String,
        /// The signer.
        caller: String,
    },
}

/// The rule for one schema a read names: its owner reads it, anyone reads it when it is public.
pub fn may_read(
    schema: &str,
    owner: &str,
    public: bool,
    caller: Option<&str>,
) -> Result<(), ReadDenied> {
    match caller {
        _ if public => Ok(()),
        Some(c) if c == owner => Ok(()),
        Some(c) => Err(ReadDenied::Forbidden {
            schema: schema.into(),
            owner: owner.into(),
            caller: c.into(),
        }),
        None => Err(ReadDenied::SignatureRequired {
            schema: schema.into(),
            owner: owner.into(),
        }),
    }
}
