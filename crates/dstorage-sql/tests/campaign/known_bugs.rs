//! Guard bugs the campaign finds today, by class: each entry says what SQLite does, what
//! dstorage does, and which statements it explains. The differential test and the fuzz
//! twin fail on any failure no entry explains, and the differential test (its default 200
//! seeds) on an entry that explains nothing any more, so this list only shrinks: the new
//! guard (issue 10 item 1) empties it. The campaign is deterministic, but a rare class (a
//! handful of hits) can vanish when a fix elsewhere changes the tables a statement meets:
//! before removing such an entry, confirm with `DSTORAGE_DIFF_SEEDS=2000`.

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

    /// Two prefix operators in a row (`- -1`, `-+-1`, `~~1`, `- (`...).
    fn has_unary_chain(&self) -> bool {
        self.tokens.windows(2).any(|w| {
            ["-", "+", "~"].iter().any(|p| w[0].is_punct(p))
                && ["-", "+", "~"].iter().any(|p| w[1].is_punct(p))
        })
    }

    /// Two `-` in a row among operators (`- -1`, `-+-1`, `a - -1`).
    fn has_minus_chain(&self) -> bool {
        let ops = |t: &Token| t.is_punct("-") || t.is_punct("+") || t.is_punct("~");
        self.tokens.windows(2).any(|w| ops(&w[0]) && ops(&w[1]))
            && self.tokens.windows(3).any(|w| {
                w[0].is_punct("-") && (w[1].is_punct("-") || (ops(&w[1]) && w[2].is_punct("-")))
            })
    }

    /// `IS [NOT]` followed by an operand other than NULL, TRUE, FALSE or DISTINCT FROM.
    fn has_is_operand(&self) -> bool {
        let plain = |t: Option<&Token>| {
            t.is_some_and(|t| {
                ["NULL", "TRUE", "FALSE", "DISTINCT"]
                    .iter()
                    .any(|w| t.is_word(w))
            })
        };
        (0..self.tokens.len()).any(|i| {
            self.tokens[i].is_word("IS")
                && if self.tokens.get(i + 1).is_some_and(|t| t.is_word("NOT")) {
                    !plain(self.tokens.get(i + 2))
                } else {
                    !plain(self.tokens.get(i + 1))
                }
        })
    }

    /// `IS [NOT] NULL` or `NOT NULL` between a BETWEEN and its AND.
    fn has_null_test_in_between(&self) -> bool {
        self.tokens.iter().enumerate().any(|(i, t)| {
            t.is_word("BETWEEN")
                && self.tokens[i + 1..]
                    .iter()
                    .take_while(|t| !t.is_word("AND"))
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|w| {
                        (w[0].is_word("IS") || w[0].is_word("NOT"))
                            && (w[1].is_word("NULL") || w[1].is_word("NOT"))
                    })
        })
    }

    /// A qualified column (`t.c`) after RETURNING.
    fn has_qualified_returning(&self) -> bool {
        self.tokens
            .iter()
            .position(|t| t.is_word("RETURNING"))
            .is_some_and(|r| self.tokens[r..].iter().any(|t| t.is_punct(".")))
    }

    /// `x NOT NULL` (a postfix test, not a column constraint nor `IS NOT NULL`).
    fn has_postfix_not_null(&self) -> bool {
        !self.has_word("CREATE")
            && self
                .tokens
                .windows(3)
                .any(|w| !w[0].is_word("IS") && w[1].is_word("NOT") && w[2].is_word("NULL"))
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

/// Guard bugs found by the campaign on the guard of today's main (issue 10). The lead
/// removes an entry when the guard that fixes its class lands; the tests then fail if the
/// class still fails, and fail too while an entry no longer explains any failure.
pub const KNOWN_GUARD_BUGS: &[KnownBug] = &[
    KnownBug {
        name: "unary minus chain printed as a comment",
        issue: "issue 10, Fooled: `- -1` is printed as `--1`",
        example: "UPDATE t0 SET c = 2, a = iif(- - NULL, 3) WHERE 2 RETURNING 'a'",
        expected: "SQLite reads `- -x` as -(-x)",
        got: "the guard prints `--x`: SQLite reads the rest of the line as a comment (`incomplete input`, other rows, or text the guard saw as a string runs)",
        failures: ANY_AND_RULES,
        matches: |c| c.has_minus_chain(),
    },
    KnownBug {
        name: "hex literal read as a blob",
        issue: "issue 10, Fooled: `SELECT 0x10` returns the blob X'10'",
        example: "INSERT INTO t0 VALUES ('k2', 'k1', NULL) RETURNING 0xffff; a column DEFAULT 0xffff",
        expected: "[Integer(65535)]; the default 65535",
        got: "[Blob([255, 255])]; `cannot store BLOB value in INTEGER column` (and other rows, wrong counts)",
        failures: ANY,
        matches: |c| c.has_number_here_or_in_schema(|n| n.starts_with("0x")),
    },
    KnownBug {
        name: "upper-case hex prefix refused",
        issue: "issue 10, Fooled (hex literals): `0X10` is SQLite's too",
        example: "SELECT 0X10",
        expected: "16",
        got: "parse: Expected: end of statement, found: X10",
        failures: ANY,
        matches: |c| c.has_number_here_or_in_schema(|n| n.starts_with("0X")),
    },
    KnownBug {
        name: "digit separator split into a number and an alias",
        issue: "issue 10, Fooled: `SELECT 1_000` returns 1 in a column named `_000`",
        example: "SELECT 1_1 AS r0 FROM t0",
        expected: "11 in column r0",
        got: "parse: Expected: end of statement, found: AS (or 1 named _1 without AS)",
        failures: ANY,
        matches: |c| c.has_number_here_or_in_schema(|n| n.contains('_')),
    },
    KnownBug {
        name: "bitwise NOT refused",
        issue: "issue 10 item 1 (valid SQLite refused)",
        example: "INSERT INTO t0 VALUES (~ 22, 3, 10, NULL)",
        expected: "the row (-23, 3, 10, NULL) inserted",
        got: "parse: Expected: an expression, found: ~",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.has_punct("~"),
    },
    KnownBug {
        name: "shift operators refused",
        issue: "issue 10, Fooled: `<<`, `>>` refused",
        example: "SELECT 1 << 2",
        expected: "4",
        got: "parse: No infix parser for token ShiftLeft",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.has_punct("<<") || c.has_punct(">>"),
    },
    KnownBug {
        name: "GLOB operator refused",
        issue: "issue 10, Fooled: `GLOB` / `NOT GLOB` as operators refused",
        example: "SELECT 'k3' NOT GLOB 'k?'",
        expected: "0",
        got: "parse: Expected: ), found: NOT",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.has_word("GLOB"),
    },
    KnownBug {
        name: "IS with an operand other than NULL/TRUE/FALSE refused",
        issue: "issue 10, Fooled: `IS 'a'` refused",
        example: "SELECT 1 IS (2)",
        expected: "0",
        got: "parse: Expected: [NOT] NULL | TRUE | FALSE | DISTINCT | [form] NORMALIZED FROM after IS, found: (",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.has_is_operand(),
    },
    KnownBug {
        name: "ISNULL / NOTNULL / postfix NOT NULL refused",
        issue: "issue 10, Fooled: `ISNULL` refused",
        example: "SELECT 1 NOTNULL",
        expected: "1",
        got: "parse error",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.has_word("ISNULL") || c.has_word("NOTNULL") || c.has_postfix_not_null(),
    },
    KnownBug {
        name: "MATERIALIZED refused",
        issue: "issue 10, Fooled: `MATERIALIZED` refused",
        example: "WITH c(x) AS MATERIALIZED (SELECT 1) SELECT x FROM c",
        expected: "1",
        got: "parse: Expected: (, found: MATERIALIZED",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.has_word("MATERIALIZED"),
    },
    KnownBug {
        name: "INDEXED BY / NOT INDEXED refused",
        issue: "issue 10, Fooled: `INDEXED BY` refused",
        example: "SELECT * FROM t0 INDEXED BY ix0",
        expected: "the rows",
        got: "parse: Expected: end of statement, found: INDEXED",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.has_word("INDEXED"),
    },
    KnownBug {
        name: "PRAGMA results show physical names and the guard's reprinted DDL",
        issue: "issue 10 item 1 (new: found by the campaign)",
        example: "PRAGMA index_list('t0'); PRAGMA table_info('t0') of a column DEFAULT x'0a'",
        expected: "[0, 'ix0', 0, 'c', 0]; dflt_value x'0a'",
        got: "[0, 'app.ix0', 0, 'c', 0]; dflt_value X'0a'",
        failures: &[Failure::RowsDiffer, Failure::OrderDiffers],
        matches: |c| c.has_word("PRAGMA"),
    },
    KnownBug {
        name: "qualified column in RETURNING fails",
        issue: "issue 10 item 1 (new: found by the campaign)",
        example: "DELETE FROM t0 WHERE c = 1 RETURNING t0.c",
        expected: "the deleted rows' c",
        got: "SQLite: no such column: t0.c (the guard names the target `\"app.t0\" AS t0`, and RETURNING does not see the alias)",
        failures: &[Failure::EngineError],
        matches: |c| c.has_qualified_returning(),
    },
    KnownBug {
        name: "a comment right after | or || is read as PostgreSQL's |/ or ||/ operator",
        issue: "issue 10 item 1 (new: found by the campaign)",
        example: "SELECT 'a' ||/**/'b'; SELECT 1 |/**/2",
        expected: "'ab'; 3",
        got: "parse: Expected: end of statement, found: ||/ (or an unterminated string literal further on)",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.sql.contains("|/*"),
    },
    KnownBug {
        name: "IS [NOT] NULL or NOT NULL in a BETWEEN bound refused",
        issue: "issue 10 item 1 (new: found by the campaign)",
        example: "SELECT 1 BETWEEN 0 IS NOT NULL AND 2",
        expected: "1 (SQLite binds `0 IS NOT NULL` as the lower bound)",
        got: "parse: Expected: AND, found: IS",
        failures: &[Failure::ParseRefusal],
        matches: |c| c.has_null_test_in_between(),
    },
    KnownBug {
        name: "scalar subquery without LIMIT takes the plan's first row",
        issue: "issue 10 item 5: `SELECT (SELECT id FROM ord WHERE grp = 1)` gives 19, not 3",
        example: "INSERT INTO t1(note, name, v) VALUES ((SELECT note FROM t2), 'k21', 'B') RETURNING *",
        expected: "the first row in key order (-3)",
        got: "another row (6)",
        failures: &[Failure::RowsDiffer, Failure::OrderDiffers, Failure::StateDiffers, Failure::RowsChangedDiffer],
        matches: |c| c.tags.contains(&"scalar_subquery_without_limit"),
    },
    KnownBug {
        name: "a top-level WITH before a write is not metered per row: the block aborts",
        issue: "issue 10, Unbounded: a top-level `WITH RECURSIVE ... INSERT ... SELECT` is not metered per row",
        example: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO t(id) SELECT x + 100 FROM c",
        expected: "cost limit exceeded, the block goes on",
        got: "BlockAborted (the write ran to 4x its budget and was interrupted)",
        failures: &[Failure::BlockAborted, Failure::RuleBroken],
        matches: |c| {
            c.tokens.first().is_some_and(|t| t.is_word("WITH"))
                && ["INSERT", "REPLACE", "UPDATE", "DELETE"].iter().any(|w| c.has_word(w))
        },
    },
    KnownBug {
        name: "floats through type affinity run",
        issue: "issue 10 item 4",
        example: "SELECT CAST('0.1' + '0.2' AS TEXT)",
        expected: "a refusal",
        got: "'0.30000000000000004'",
        failures: &[Failure::MustRefuseRan],
        matches: |c| c.rule == Some("float via affinity"),
    },
];

const ANY_AND_RULES: &[Failure] = &[
    Failure::ParseRefusal,
    Failure::UndocumentedRefusal,
    Failure::EngineError,
    Failure::EngineRanWhatSqliteRejects,
    Failure::RowsDiffer,
    Failure::OrderDiffers,
    Failure::ColumnNamesDiffer,
    Failure::RowsChangedDiffer,
    Failure::StateDiffers,
    Failure::RealNotRefused,
    Failure::MustRefuseRan,
    Failure::RealInState,
    Failure::RuleBroken,
];

const ANY: &[Failure] = &[
    Failure::ParseRefusal,
    Failure::UndocumentedRefusal,
    Failure::EngineError,
    Failure::EngineRanWhatSqliteRejects,
    Failure::RowsDiffer,
    Failure::OrderDiffers,
    Failure::ColumnNamesDiffer,
    Failure::RowsChangedDiffer,
    Failure::StateDiffers,
    Failure::RealNotRefused,
    Failure::MustRefuseRan,
];
