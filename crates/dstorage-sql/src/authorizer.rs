//! SQLite's authorizer callback: the verdict on every table, function, pragma and operation
//! SQLite itself compiled, so a construct that slips past the statement guard still meets a
//! refusal here.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::names::split_physical;
use crate::SqlError;

/// Functions user SQL may call: deterministic, integer/text/blob only. Everything else is
/// refused, including date/time (they can read the clock through 'now'), random, changes,
/// last_insert_rowid, load_extension and anything returning REAL.
pub const ALLOWED_FUNCTIONS: &[&str] = &[
    "abs",
    "char",
    "coalesce",
    "concat",
    "concat_ws",
    "count",
    "error",
    "glob",
    "group_concat",
    "has_grant",
    "hex",
    "ifnull",
    "iif",
    "instr",
    "length",
    "like",
    "likely",
    "lower",
    "ltrim",
    "max",
    "min",
    "nullif",
    "octet_length",
    "quote",
    "replace",
    "rtrim",
    "sign",
    "string_agg",
    "substr",
    "substring",
    "sum",
    "trim",
    "typeof",
    "unhex",
    "unicode",
    "unlikely",
    "upper",
    "zeroblob",
];

/// Read-only PRAGMAs user SQL may run; their argument is a table or index in the schema.
pub(crate) const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];

/// What the authorizer currently lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The engine's own statements: everything.
    Internal,
    /// User SQL in a block: reads of any schema, writes and DDL only in `schema`.
    Write {
        /// The schema the statement runs in (shared: a cached statement's mode is set
        /// without allocating).
        schema: Arc<str>,
        /// CTE names of the statement: SQLite reports reading them like tables.
        ctes: BTreeSet<String>,
    },
    /// User SQL on a reader: reads only.
    Read {
        /// CTE names of the statement.
        ctes: BTreeSet<String>,
    },
}

/// A schema object a statement creates, as SQLite reported it while compiling the
/// statement (see `verify::check_created`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Created {
    /// CREATE TABLE, with its physical name.
    Table(String),
    /// CREATE INDEX (or an index SQLite makes for a UNIQUE or PRIMARY KEY constraint).
    Index(String),
    /// CREATE VIEW.
    View(String),
}

#[derive(Debug)]
struct AuthState {
    mode: Mode,
    /// The first refusal since the last `take_denial`, so the error can name the construct
    /// rather than SQLite's bare "not authorized".
    denial: Option<SqlError>,
    /// SQLite called the authorizer since the mode was set: it compiled a statement (every
    /// statement makes at least one call), so its program is new and must be checked.
    compiled: bool,
    /// The statement being compiled is DDL by SQLite's own account: it began by writing
    /// SQLite's catalogue (every CREATE and DROP inserts into or deletes from
    /// `sqlite_master` before anything else). Only then may `sqlite_master` be read.
    ddl: bool,
    /// Objects the statements compiled since the mode was set create.
    created: Vec<Created>,
}

/// Shared state of one connection's authorizer callback.
#[derive(Clone, Debug)]
pub(crate) struct Authorizer {
    state: Arc<Mutex<AuthState>>,
}

impl Authorizer {
    pub(crate) fn new() -> Self {
        Authorizer {
            state: Arc::new(Mutex::new(AuthState {
                mode: Mode::Internal,
                denial: None,
                compiled: false,
                ddl: false,
                created: Vec::new(),
            })),
        }
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.mode = mode;
        s.denial = None;
        s.compiled = false;
        s.ddl = false;
        s.created.clear();
    }

    /// The current mode.
    pub(crate) fn mode(&self) -> Mode {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mode
            .clone()
    }

    /// Whether SQLite compiled a statement since the mode was set, and whether it was DDL
    /// by SQLite's account; clears both.
    pub(crate) fn take_compiled(&self) -> (bool, bool) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let out = (s.compiled, s.ddl);
        s.compiled = false;
        out
    }

    /// The objects created by the statements compiled since the mode was set.
    pub(crate) fn take_created(&self) -> Vec<Created> {
        std::mem::take(
            &mut self
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .created,
        )
    }

    pub(crate) fn take_denial(&self) -> Option<SqlError> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .denial
            .take()
    }

    /// Install the callback on `conn`.
    pub(crate) fn install(&self, conn: &mut rusqlite::Connection) -> Result<(), SqlError> {
        let state = Arc::clone(&self.state);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            s.compiled = true;
            if s.mode != Mode::Internal {
                note(&mut s, &ctx.action);
            }
            match judge(&s.mode, s.ddl, &ctx.action) {
                Ok(()) => Authorization::Allow,
                Err(e) => {
                    if s.denial.is_none() {
                        s.denial = Some(e);
                    }
                    Authorization::Deny
                }
            }
        }))?;
        Ok(())
    }
}

pub(crate) fn refused(construct: impl Into<String>, reason: impl Into<String>) -> SqlError {
    SqlError::Refused {
        construct: construct.into(),
        reason: reason.into(),
    }
}

fn is_schema_table(name: &str) -> bool {
    name.eq_ignore_ascii_case("sqlite_master") || name.eq_ignore_ascii_case("sqlite_schema")
}

/// Tables of SQLite's own bookkeeping: user SQL may never read them.
fn is_sqlite_table(name: &str) -> bool {
    name.len() >= 7 && name[..7].eq_ignore_ascii_case("sqlite_")
}

/// What SQLite reports for a reference to the rowid of a table without an INTEGER PRIMARY
/// KEY, however it is spelled (`rowid`, `oid`, `_rowid_`); for a table with one SQLite
/// reports that column instead.
fn is_rowid(column: &str) -> bool {
    column.eq_ignore_ascii_case("rowid")
}

/// Track what the statement being compiled is by SQLite's account (see `AuthState`).
fn note(s: &mut AuthState, action: &AuthAction<'_>) {
    match *action {
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
            if is_schema_table(table_name) =>
        {
            s.ddl = true;
        }
        AuthAction::CreateTable { table_name } => {
            s.created.push(Created::Table(table_name.to_owned()));
        }
        AuthAction::CreateIndex { index_name, .. } => {
            s.created.push(Created::Index(index_name.to_owned()));
        }
        AuthAction::CreateView { view_name } => s.created.push(Created::View(view_name.to_owned())),
        _ => {}
    }
}

/// The authorizer's verdict on one action. `ddl`: the statement is DDL by SQLite's account
/// (see `AuthState::ddl`).
fn judge(mode: &Mode, ddl: bool, action: &AuthAction<'_>) -> Result<(), SqlError> {
    let (write_schema, ctes) = match mode {
        Mode::Internal => return Ok(()),
        Mode::Write { schema, ctes } => (Some(&**schema), ctes),
        Mode::Read { ctes } => (None, ctes),
    };
    let in_write_schema = |name: &str| -> Result<(), SqlError> {
        match (write_schema, split_physical(name)) {
            (Some(ws), Some((s, _))) if s == ws => Ok(()),
            (Some(ws), _) => Err(SqlError::CrossSchemaWrite {
                schema: ws.to_owned(),
                target: name.to_owned(),
            }),
            (None, _) => Err(refused(
                format!("writing {name}"),
                "reads may not change anything",
            )),
        }
    };
    match *action {
        AuthAction::Select | AuthAction::Recursive => Ok(()),
        AuthAction::Read {
            table_name,
            column_name,
        } => {
            // SQLite reads its own catalogue (rowid included) while compiling DDL, after
            // the catalogue write that starts every CREATE and DROP; a user statement that
            // reads it starts with something else, whatever the first layer let through.
            if is_schema_table(table_name) && ddl && write_schema.is_some() {
                return Ok(());
            }
            if is_sqlite_table(table_name) {
                return Err(refused(
                    format!("reading {table_name}"),
                    "SQLite's own tables are not visible; use PRAGMA table_info('t') for a table's columns",
                ));
            }
            if is_rowid(column_name) {
                return Err(refused(
                    format!("the rowid of {table_name}"),
                    "a rowid is SQLite's storage detail; declare an INTEGER PRIMARY KEY and use it",
                ));
            }
            // The grants table is read by has_grant() (its own statement, compiled under the
            // caller's mode); user text cannot name it, since the guard puts every table in a schema.
            if split_physical(table_name).is_some()
                || ctes.contains(&table_name.to_ascii_lowercase())
                || table_name == crate::functions::GRANTS_TABLE
            {
                Ok(())
            } else {
                Err(refused(
                    format!("reading table {table_name}"),
                    "only tables of a dstorage schema are visible",
                ))
            }
        }
        AuthAction::Function { function_name } => {
            let lower = function_name.to_ascii_lowercase();
            // The meter function is injected by the guard; the AST pass refuses it in user SQL.
            if ALLOWED_FUNCTIONS.contains(&lower.as_str()) || lower == crate::meter::METER_FUNCTION
            {
                Ok(())
            } else {
                Err(refused(format!("{lower}()"), why_not(&lower)))
            }
        }
        AuthAction::Pragma { pragma_name, .. } => {
            let lower = pragma_name.to_ascii_lowercase();
            if ALLOWED_PRAGMAS.contains(&lower.as_str()) {
                Ok(())
            } else {
                Err(refused(
                    format!("PRAGMA {lower}"),
                    "only read-only schema pragmas are allowed",
                ))
            }
        }
        // SQLite writes its catalogue while running DDL; user SQL cannot name it because
        // every user table name is rewritten into a schema, so this is SQLite's own write.
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
            if is_schema_table(table_name) && write_schema.is_some() =>
        {
            Ok(())
        }
        AuthAction::Update {
            table_name,
            column_name,
        } if is_rowid(column_name) => Err(refused(
            format!("changing the rowid of {table_name}"),
            "a rowid is SQLite's storage detail; declare an INTEGER PRIMARY KEY and use it",
        )),
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::CreateTable { table_name }
        | AuthAction::DropTable { table_name } => in_write_schema(table_name),
        AuthAction::CreateIndex {
            index_name,
            table_name,
        }
        | AuthAction::DropIndex {
            index_name,
            table_name,
        } => {
            // SQLite names the indexes behind PRIMARY KEY and UNIQUE itself.
            if !index_name.starts_with("sqlite_autoindex_") {
                in_write_schema(index_name)?;
            }
            in_write_schema(table_name)
        }
        AuthAction::CreateView { view_name } | AuthAction::DropView { view_name } => {
            in_write_schema(view_name)
        }
        AuthAction::Attach { .. } => Err(refused("ATTACH", "one database file per node")),
        AuthAction::Detach { .. } => Err(refused("DETACH", "one database file per node")),
        AuthAction::CreateTrigger { trigger_name, .. }
        | AuthAction::CreateTempTrigger { trigger_name, .. } => Err(refused(
            format!("CREATE TRIGGER {trigger_name}"),
            "triggers are not supported",
        )),
        AuthAction::AlterTable { table_name, .. } => Err(refused(
            format!("ALTER TABLE {table_name}"),
            "ALTER TABLE is not supported; create a new table",
        )),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Err(refused(
            "transaction control",
            "each transaction is atomic already",
        )),
        AuthAction::Analyze { .. } => Err(refused("ANALYZE", "statistics would change plans")),
        // CREATE INDEX asks for this while building; user REINDEX is refused before SQLite.
        AuthAction::Reindex { index_name } => in_write_schema(index_name),
        AuthAction::CreateVtable { module_name, .. }
        | AuthAction::DropVtable { module_name, .. } => Err(refused(
            format!("virtual table module {module_name}"),
            "virtual tables are not supported",
        )),
        AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempView { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTrigger { .. } => {
            Err(refused("temporary objects and triggers", "not supported"))
        }
        _ => Err(refused("this SQLite operation", "not on the allow-list")),
    }
}

/// Why a function off the allow-list is refused, with what to use instead where there is
/// something: the reason a developer needs to fix the statement.
pub(crate) fn why_not(function: &str) -> &'static str {
    match function {
        "random" | "randomblob" => {
            "it is random, so every node would get another value; let the client choose the value"
        }
        "date" | "time" | "datetime" | "julianday" | "unixepoch" | "strftime" | "timediff"
        | "current_date" | "current_time" | "current_timestamp" => {
            "date and time functions can read each node's clock ('now') or compute in REAL days; \
             store times as INTEGER seconds chosen by the client"
        }
        "avg" | "total" | "round" | "sqrt" | "pow" | "power" | "exp" | "ln" | "log" | "log2"
        | "log10" | "pi" | "sin" | "cos" | "tan" | "asin" | "acos" | "atan" | "atan2" | "sinh"
        | "cosh" | "tanh" | "asinh" | "acosh" | "atanh" | "degrees" | "radians" | "ceil"
        | "ceiling" | "floor" | "trunc" | "mod" => {
            "it computes in floating point (REAL), which dstorage does not have; use integer \
             arithmetic, e.g. sum(x) / count(x) for an average"
        }
        "printf" | "format" => {
            "it can format REAL values through the C library; build text with || and the \
             string functions"
        }
        "changes" | "total_changes" | "last_insert_rowid" => {
            "its result depends on the node's connection history; use RETURNING"
        }
        "row_number" | "rank" | "dense_rank" | "percent_rank" | "cume_dist" | "ntile" | "lag"
        | "lead" | "first_value" | "last_value" | "nth_value" => {
            "window functions are not supported"
        }
        f if f.starts_with("json") || f.starts_with("jsonb") => {
            "JSON functions are not supported yet; store JSON as TEXT and parse it in the client"
        }
        "load_extension" => "it loads native code into the node",
        _ => "function is not on the deterministic allow-list",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_mode(schema: &str) -> Mode {
        Mode::Write {
            schema: schema.into(),
            ctes: BTreeSet::new(),
        }
    }

    #[test]
    fn authorizer_allows_schema_work_and_refuses_the_rest() {
        let w = write_mode("app");
        let ok = [
            AuthAction::Select,
            AuthAction::Read {
                table_name: "other.t",
                column_name: "x",
            },
            AuthAction::Insert {
                table_name: "app.t",
            },
            AuthAction::Function {
                function_name: "abs",
            },
            AuthAction::CreateTable {
                table_name: "app.t",
            },
        ];
        for a in ok {
            assert!(judge(&w, false, &a).is_ok(), "{a:?}");
        }
        let refused = [
            AuthAction::Read {
                table_name: "_dstorage_kv",
                column_name: "key",
            },
            AuthAction::Insert {
                table_name: "other.t",
            },
            AuthAction::Insert {
                table_name: "_dstorage_kv",
            },
            AuthAction::Function {
                function_name: "random",
            },
            AuthAction::Function {
                function_name: "date",
            },
            AuthAction::Pragma {
                pragma_name: "journal_mode",
                pragma_value: None,
            },
            AuthAction::Attach { filename: "x" },
            AuthAction::Analyze {
                table_name: "app.t",
            },
            AuthAction::CreateTempTable { table_name: "t" },
        ];
        for a in refused {
            assert!(judge(&w, false, &a).is_err(), "{a:?}");
        }
        let r = Mode::Read {
            ctes: BTreeSet::new(),
        };
        assert!(judge(
            &r,
            false,
            &AuthAction::Read {
                table_name: "app.t",
                column_name: "x"
            }
        )
        .is_ok());
        assert!(judge(
            &r,
            false,
            &AuthAction::Insert {
                table_name: "app.t"
            }
        )
        .is_err());
        assert!(judge(
            &r,
            false,
            &AuthAction::Insert {
                table_name: "sqlite_master"
            }
        )
        .is_err());
        assert!(judge(
            &Mode::Internal,
            false,
            &AuthAction::Attach { filename: "x" }
        )
        .is_ok());
    }
}
