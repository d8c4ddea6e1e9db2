//! Refusing constructs by their text: pragmas, table definitions (STRICT, types, keys, foreign keys),
//! integer literals, collations and conflict clauses that are not deterministic or not allowed.

use super::*;

/// SQLite's column affinity for a declared type name (`sqlite3AffinityType`).
pub(super) fn affinity(type_text: &str) -> &'static str {
    let t = type_text.to_ascii_uppercase();
    if t.contains("INT") {
        "INTEGER"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "TEXT"
    } else if t.contains("BLOB") || t.is_empty() {
        "BLOB"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    }
}

/// Allowed column types: (what SQLite must see, replacement text if it differs).
pub(super) fn column_type(words: &[String]) -> Option<(&'static str, bool)> {
    match words {
        [w] => match w.as_str() {
            "INTEGER" => Some(("INTEGER", false)),
            "INT" | "BOOLEAN" | "BOOL" => Some(("INTEGER", true)),
            "TEXT" => Some(("TEXT", false)),
            "BLOB" => Some(("BLOB", false)),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn is_rowid_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "rowid" || lower == "oid" || lower == "_rowid_"
}

pub(super) fn rowid_refused(name: &str) -> SqlError {
    refused(
        name,
        "hidden rowids are not part of the replicated state; use the primary key",
    )
}

pub(super) fn rollback_resolution_refused() -> SqlError {
    refused(
        "ROLLBACK conflict resolution",
        "it would abort the whole block; use ABORT (the default)",
    )
}

/// A literal's digits without `_` separators.
pub(super) fn digits(literal: &str) -> String {
    literal.chars().filter(|c| *c != '_').collect()
}

/// Whether a decimal integer literal is past i64::MAX: SQLite then reads it as REAL.
/// (A hex literal of up to 16 digits wraps around; SQLite refuses longer ones itself.)
pub(super) fn integer_literal_overflows(literal: &str) -> bool {
    let d = digits(literal);
    if d.starts_with("0x") || d.starts_with("0X") {
        return false;
    }
    d.parse::<i64>().is_err()
}

pub(super) fn big_integer_refused(literal: &str) -> SqlError {
    refused(
        format!("integer literal {literal}"),
        "it is past the 64-bit range, where SQLite reads it as REAL; dstorage has no floating point",
    )
}

pub(super) fn collation_refused(name: &str) -> SqlError {
    refused(
        format!("COLLATE {name}"),
        "values equal under a collation but different in bytes would let the query plan \
         choose which one a DISTINCT, GROUP BY, UNION, min or max returns; store and compare \
         lower(x) instead",
    )
}

pub(super) fn check_conflict(on_conflict: Option<&str>) -> Result<(), SqlError> {
    if on_conflict == Some("ROLLBACK") {
        return Err(rollback_resolution_refused());
    }
    Ok(())
}

pub(super) fn deferred_refused() -> SqlError {
    refused(
        "INITIALLY DEFERRED foreign key",
        "a deferred constraint is checked only at COMMIT, where a violation \
         would fail the whole block; use an immediate foreign key (the default)",
    )
}

impl Guard<'_> {
    pub(super) fn pragma(&mut self, p: &Pragma) -> Result<(), SqlError> {
        let pragma = p.name.name.text.to_ascii_lowercase();
        if p.assigns || p.name.schema.is_some() || !ALLOWED_PRAGMAS.contains(&pragma.as_str()) {
            return Err(refused(
                format!("PRAGMA {pragma}"),
                format!(
                    "only read-only schema pragmas with a table argument are allowed: {}",
                    ALLOWED_PRAGMAS.join(", ")
                ),
            ));
        }
        let Some(arg) = p.arg else {
            return Err(refused(
                format!("PRAGMA {pragma}"),
                "name the table or index: PRAGMA table_info('t')",
            ));
        };
        if !matches!(self.toks[arg].kind, Tk::String | Tk::Id) {
            return Err(refused(
                format!("PRAGMA {pragma}"),
                "the argument must name a table or index",
            ));
        }
        let name = canonical_object_name(&token::dequote(self.tok_text(arg)))?;
        let physical = physical_name(self.schema, &name);
        self.replace(arg, arg, quote_string(&physical));
        Ok(())
    }

    pub(super) fn create_table(&mut self, ct: &CreateTable) -> Result<(), SqlError> {
        let table = ct.name.name.text.clone();
        let bad = |reason: &str| SqlError::TableDefinition {
            table: table.clone(),
            reason: reason.to_owned(),
        };
        if ct.temp {
            return Err(bad("temporary tables are not supported"));
        }
        if ct.as_select {
            return Err(bad(
                "CREATE TABLE ... AS is not supported; list the columns",
            ));
        }
        if let Some(at) = ct.missing_comma {
            // SQLite separates table options with commas; dstorage has always accepted
            // `WITHOUT ROWID STRICT` as well, so it adds the comma.
            self.insert(at, Place::Tail, ",".into());
        }
        let mut strict = false;
        let mut without_rowid = false;
        for o in &ct.options {
            match o.as_str() {
                "STRICT" => strict = true,
                "WITHOUT ROWID" => without_rowid = true,
                other => return Err(bad(&format!("unknown table option {other}"))),
            }
        }
        if !strict {
            return Err(bad(
                "tables must be STRICT: add STRICT after the column list",
            ));
        }
        self.rename_own(&ct.name)?;
        let schema = self.schema.to_owned();
        // Key columns (lower case) and which one is the rowid alias.
        let mut key: Vec<String> = Vec::new();
        let mut rowid_alias: Option<String> = None;
        let mut integer_columns: BTreeSet<String> = BTreeSet::new();
        for col in &ct.columns {
            let words = col
                .ty
                .as_ref()
                .map_or(Vec::new(), |t| t.column_words.clone());
            let (ty, replace) = column_type(&words).ok_or_else(|| SqlError::ColumnType {
                column: col.name.text.clone(),
                found: if words.is_empty() {
                    "no type".to_owned()
                } else {
                    words.join(" ")
                },
                expected: "INTEGER, TEXT or BLOB (BOOLEAN is stored as INTEGER)".to_owned(),
            })?;
            if let Some(tn) = &col.ty {
                if tn.sized {
                    return Err(SqlError::ColumnType {
                        column: col.name.text.clone(),
                        found: self.render(tn.first, tn.last, false)?,
                        expected: "INTEGER, TEXT or BLOB without a size".to_owned(),
                    });
                }
                if replace {
                    // STRICT tables know only the exact type names.
                    self.replace(tn.first, tn.column_last, ty.to_owned());
                }
            }
            let lower = col.name.text.to_ascii_lowercase();
            if ty == "INTEGER" {
                integer_columns.insert(lower.clone());
            }
            for c in &col.constraints {
                match c {
                    ColumnConstraint::PrimaryKey {
                        desc,
                        on_conflict,
                        autoincrement,
                    } => {
                        if *autoincrement {
                            return Err(refused(
                                format!("AUTOINCREMENT on {}", col.name.text),
                                "it keeps hidden state in sqlite_sequence; INTEGER PRIMARY KEY already assigns max+1",
                            ));
                        }
                        check_conflict(on_conflict.as_deref())?;
                        key.push(lower.clone());
                        // SQLite's quirk: `INTEGER PRIMARY KEY DESC` is no rowid alias.
                        if ty == "INTEGER" && !desc && !without_rowid {
                            rowid_alias = Some(lower.clone());
                        }
                    }
                    ColumnConstraint::NotNull { on_conflict }
                    | ColumnConstraint::Unique { on_conflict } => {
                        check_conflict(on_conflict.as_deref())?
                    }
                    ColumnConstraint::Check(e)
                    | ColumnConstraint::Default(e)
                    | ColumnConstraint::Generated(e) => self.expr(e)?,
                    ColumnConstraint::References(fk) => self.foreign_key(fk, &schema)?,
                    ColumnConstraint::Deferrable { deferred } => {
                        if *deferred {
                            return Err(deferred_refused());
                        }
                    }
                    // A column's collation reaches every DISTINCT, GROUP BY and compound over
                    // it, unseen in the statement text.
                    ColumnConstraint::Collate(name)
                        if !name.text.eq_ignore_ascii_case("binary") =>
                    {
                        return Err(collation_refused(&name.text))
                    }
                    ColumnConstraint::Null | ColumnConstraint::Collate(_) => {}
                }
            }
        }
        for c in &ct.constraints {
            match c {
                TableConstraint::PrimaryKey {
                    columns,
                    on_conflict,
                    autoincrement,
                } => {
                    if *autoincrement {
                        return Err(refused(
                            "AUTOINCREMENT",
                            "it keeps hidden state in sqlite_sequence; INTEGER PRIMARY KEY already assigns max+1",
                        ));
                    }
                    check_conflict(on_conflict.as_deref())?;
                    for t in columns {
                        match &t.expr.kind {
                            ExprKind::Column {
                                table: None,
                                column,
                                ..
                            } => key.push(column.text.to_ascii_lowercase()),
                            ExprKind::Collate(inner, _) => match &inner.kind {
                                ExprKind::Column {
                                    table: None,
                                    column,
                                    ..
                                } => key.push(column.text.to_ascii_lowercase()),
                                _ => return Err(bad("PRIMARY KEY columns must be column names")),
                            },
                            _ => return Err(bad("PRIMARY KEY columns must be column names")),
                        }
                    }
                    if let [only] = columns.as_slice() {
                        let name = key.last().cloned().unwrap_or_default();
                        let is_collated = matches!(only.expr.kind, ExprKind::Collate(..));
                        if integer_columns.contains(&name) && !without_rowid && !is_collated {
                            rowid_alias = Some(name);
                        }
                    }
                }
                TableConstraint::Unique {
                    on_conflict,
                    columns,
                } => {
                    check_conflict(on_conflict.as_deref())?;
                    for t in columns {
                        self.expr(&t.expr)?;
                    }
                }
                TableConstraint::Check { expr, on_conflict } => {
                    check_conflict(on_conflict.as_deref())?;
                    self.expr(expr)?;
                }
                TableConstraint::ForeignKey(fk) => self.foreign_key(fk, &schema)?,
            }
        }
        if key.is_empty() {
            return Err(bad("a PRIMARY KEY is required"));
        }
        if !without_rowid {
            // A changeset names a row by its key, so no key column of a rowid table may
            // hold NULL (SQLite would let it, except in the rowid alias).
            for col in &ct.columns {
                let lower = col.name.text.to_ascii_lowercase();
                let not_null = col
                    .constraints
                    .iter()
                    .any(|c| matches!(c, ColumnConstraint::NotNull { .. }));
                if key.contains(&lower) && rowid_alias.as_ref() != Some(&lower) && !not_null {
                    self.insert(col.last, Place::Tail, " NOT NULL ".into());
                }
            }
            if let (Some(pk), Some(rp)) = (&rowid_alias, ct.rp) {
                // An INTEGER PRIMARY KEY is the rowid; once it holds i64::MAX SQLite picks
                // new rowids at random. Keeping the maximum free keeps automatic keys
                // deterministic.
                self.insert(
                    rp - 1,
                    Place::Tail,
                    format!(", CHECK ({} < {}) ", quote_ident(pk), i64::MAX),
                );
            }
        }
        Ok(())
    }

    pub(super) fn foreign_key(&mut self, fk: &ForeignKey, schema: &str) -> Result<(), SqlError> {
        if fk.deferred {
            return Err(deferred_refused());
        }
        self.rename_token(&fk.table, schema)?;
        Ok(())
    }
}
