//! Guard bugs the campaign finds today, by class: each entry says what SQLite does, what
//! dstorage does, and which statements it explains. The differential test and the fuzz
//! twin fail on any failure no entry explains, and the differential test (its default 200
//! seeds) on an entry that explains nothing any more, so this list only shrinks: the new
//! guard (issue 10 item 1) empties it. The campaign is deterministic, but a rare class (a
//! handful of hits) can vanish when a fix elsewhere changes the tables a statement meets:
//! before removing such an entry, confirm with `DSTORAGE_DIFF_SEEDS=2000`.
//!
//! Classes the campaign found in the guard that printed a parsed statement back (sqlparser),
//! all fixed by the guard that edits SQLite's own tokens: `- -x` printed as `--x` (a comment:
//! `sqlite_schema` read, a non-STRICT table with REAL and ANY columns created); `0x10` read
//! as the blob X'10' (in results, `||`, LIMIT, a column DEFAULT); `0X10`, `1_000` (read as 1
//! AS _000), `~`, `<<`, `>>`, GLOB, `IS <expr>`, ISNULL / NOTNULL / postfix NOT NULL, a NULL
//! test in a BETWEEN bound, MATERIALIZED, INDEXED BY / NOT INDEXED refused; `|/**/` and
//! `||/**/` read as PostgreSQL operators; scalar subqueries without LIMIT taking the plan's
//! first row; a top-level `WITH ... INSERT` running to 4x its budget and aborting the block.

use super::sqltok::{self, Kind, Token};

/// How a statement failed the campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// dstorage answered "does not parse" for SQL plain SQLite runs.
    ParseRefusal,
    /// dstorage refused with a reason the docs do not give for this construct.
    UndocumentedRefusal,
    /// dstorage's SQLite failed a statement plain SQLite runs (the rewrite broke it).
    EngineError,
    /// dstorage ran a statement plain SQLite rejects.
    EngineRanWhatSqliteRejects,
    /// Different rows (as multisets).
    RowsDiffer,
    /// Same rows in another order than the documented default.
    OrderDiffers,
    /// Different result column names.
    ColumnNamesDiffer,
    /// Different `rows_changed`.
    RowsChangedDiffer,
    /// Different table contents after a write.
    StateDiffers,
    /// SQLite produced a REAL and dstorage did not refuse.
    RealNotRefused,
    /// A REAL value is stored in a table.
    RealInState,
    /// A statement dstorage must refuse ran.
    MustRefuseRan,
    /// The block's transaction ended under the engine.
    BlockAborted,
    /// The fuzz body found a rule broken (see `dstorage_sql::fuzzing`).
    RuleBroken,
}

/// A failing statement as the known-bug predicates see it.
pub struct Case<'a> {
    pub sql: &'a str,
    /// The statement's tokens without comments.
    pub tokens: Vec<Token>,
    /// The generator's tags (empty for fuzz inputs).
    pub tags: &'a [&'a str],
    /// The hostile rule, for statements that must be refused.
    pub rule: Option<&'a str>,
    pub failure: Failure,
    /// What dstorage did (its error, or the rows it returned).
    pub got: &'a str,
    /// Tokens of the DDL that made the tables the statement uses (a DEFAULT or CHECK
    /// written with a literal form the guard misreads shows up in later statements).
    pub schema: Vec<Token>,
}

impl<'a> Case<'a> {
    pub fn new(
        sql: &'a str,
        tags: &'a [&'a str],
        rule: Option<&'a str>,
        failure: Failure,
        got: &'a str,
        schema: &str,
    ) -> Case<'a> {
        let code = |s: &str| {
            sqltok::code(&sqltok::tokenize(s))
                .into_iter()
                .cloned()
                .collect()
        };
        Case {
            sql,
            tokens: code(sql),
            tags,
            rule,
            failure,
            got,
            schema: code(schema),
        }
    }

    /// A number token matching `f` in the statement or in its tables' DDL.
    fn has_number_here_or_in_schema(&self, f: impl Fn(&str) -> bool) -> bool {
        self.tokens
            .iter()
            .chain(self.schema.iter())
            .any(|t| t.kind == Kind::Number && f(&t.text))
    }

    fn has_word(&self, w: &str) -> bool {
        self.tokens.iter().any(|t| t.is_word(w))
    }

    fn has_punct(&self, p: &str) -> bool {
        self.tokens.iter().any(|t| t.is_punct(p))
    }

    fn has_number(&self, f: impl Fn(&str) -> bool) -> bool {
        self.tokens
            .iter()
            .any(|t| t.kind == Kind::Number && f(&t.text))
    }

    /// A qualified column (`t.c`) after RETURNING.
    fn has_qualified_returning(&self) -> bool {
        self.tokens
            .iter()
            .position(|t| t.is_word("RETURNING"))
            .is_some_and(|r| self.tokens[r..].iter().any(|t| t.is_punct(".")))
    }
}

/// One known class of guard bug.
pub struct KnownBug {
    /// Short name, printed in the summary.
    pub name: &'static str,
    /// Where the issue names it.
    pub issue: &'static str,
    /// A minimal statement of the class, with what SQLite and dstorage do.
    pub example: &'static str,
    pub expected: &'static str,
    pub got: &'static str,
    /// The failure kinds the class causes.
    pub failures: &'static [Failure],
    /// Whether a failing statement belongs to the class.
    pub matches: fn(&Case) -> bool,
}

impl KnownBug {
    pub fn explains(&self, case: &Case) -> bool {
        self.failures.contains(&case.failure) && (self.matches)(case)
    }
}

/// The first known bug that explains `case`.
pub fn explain(case: &Case) -> Option<&'static KnownBug> {
    KNOWN_GUARD_BUGS.iter().find(|b| b.explains(case))
}

/// Guard bugs the campaign finds on main's guard (issue 10), most frequent first. Remove an
/// entry with the fix of its class; the tests fail while an unlisted class fails, and while
/// an entry explains no failure any more.
pub const KNOWN_GUARD_BUGS: &[KnownBug] = &[];
