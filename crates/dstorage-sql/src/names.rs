//! Names of schemas and their objects: what a valid name is, and how a schema's table is
//! named inside the one SQLite file (`schema.table` as one identifier).

use crate::SqlError;

/// Check a schema name: `[a-z][a-z0-9_]{0,62}`, and not one SQLite reserves.
pub fn validate_schema_name(name: &str) -> Result<(), SqlError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        && name != "main"
        && name != "temp"
        && !name.starts_with("sqlite");
    if ok {
        Ok(())
    } else {
        Err(SqlError::InvalidSchemaName(name.to_owned()))
    }
}

/// Check a table, index or view name and return its canonical (lower-case) form.
/// SQLite matches object names case-insensitively, so one canonical spelling keeps the
/// physical names (and so the changeset) identical whatever case the user typed.
pub(crate) fn canonical_object_name(name: &str) -> Result<String, SqlError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(SqlError::InvalidTableName(name.to_owned()))
    }
}

/// The physical SQLite name of `table` in `schema`: `schema.table` as one identifier.
pub fn physical_name(schema: &str, table: &str) -> String {
    format!("{schema}.{table}")
}

/// Split a physical name into (schema, object) if it names a user object.
pub(crate) fn split_physical(name: &str) -> Option<(&str, &str)> {
    let (schema, object) = name.split_once('.')?;
    if validate_schema_name(schema).is_ok() && !object.is_empty() {
        Some((schema, object))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_follow_the_pattern_and_skip_reserved_ones() {
        for ok in ["a", "app", "a1_b", &"x".repeat(63)] {
            assert!(validate_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "1a",
            "_a",
            "a-b",
            "main",
            "temp",
            "sqlite_x",
            &"x".repeat(64),
            "a.b",
        ] {
            assert!(validate_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn physical_names_split_back_into_schema_and_table() {
        assert_eq!(split_physical("app.users"), Some(("app", "users")));
        assert_eq!(split_physical("_dstorage_kv"), None);
        assert_eq!(split_physical("sqlite_master"), None);
        assert_eq!(split_physical("Main.x"), None);
    }
}
