//! The parsed shape of a statement. Every node records the indexes of its first and last
//! token in the statement's significant tokens (`token::significant`), so the guard can
//! find any clause in the user's own text and insert next to it.

// The tree keeps what the grammar says (compound operators, join kinds, clause tokens)
// even where the guard does not read it yet, so the next rule needs no parser change.
#![allow(dead_code)]

/// An index into the significant tokens of the SQL text.
pub(crate) type Tix = usize;

/// One name token (`nm` in SQLite's grammar), dequoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    /// The token.
    pub tok: Tix,
    /// Its value without quotes.
    pub text: String,
}

/// `name` or `schema.name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QualName {
    /// The qualifier, if given.
    pub schema: Option<Name>,
    /// The object's own name.
    pub name: Name,
}

impl QualName {
    /// First token of the name.
    pub(crate) fn first(&self) -> Tix {
        self.schema.as_ref().map_or(self.name.tok, |s| s.tok)
    }
    /// Last token of the name.
    pub(crate) fn last(&self) -> Tix {
        self.name.tok
    }
}

/// One statement.
#[derive(Clone, Debug)]
pub(crate) struct Stmt {
    /// First token.
    pub first: Tix,
    /// Last token (before any `;`).
    pub last: Tix,
    /// What it is.
    pub body: Body,
}

/// The statement kinds dstorage runs, and the others by name.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    Select(Box<Select>),
    Insert(Box<Insert>),
    Update(Box<Update>),
    Delete(Box<Delete>),
    CreateTable(Box<CreateTable>),
    CreateIndex(Box<CreateIndex>),
    CreateView(Box<CreateView>),
    Drop(Drop),
    Pragma(Pragma),
    /// A statement kind dstorage does not run (transactions, ATTACH, triggers, ...): its
    /// name for the refusal. Parsing stops at the first such statement.
    Unsupported(String),
}

/// `WITH [RECURSIVE] cte, ...`.
#[derive(Clone, Debug)]
pub(crate) struct With {
    /// The WITH token.
    pub tok: Tix,
    /// RECURSIVE was written.
    pub recursive: bool,
    /// The common table expressions in order.
    pub ctes: Vec<Cte>,
}

/// `name [(columns)] AS [[NOT] MATERIALIZED] (select)`.
#[derive(Clone, Debug)]
pub(crate) struct Cte {
    /// Its name.
    pub name: Name,
    /// Declared column names.
    pub columns: Vec<Name>,
    /// Its query.
    pub select: Box<Select>,
}

/// A full query: optional WITH, one or more cores joined by compound operators, ORDER BY,
/// LIMIT.
#[derive(Clone, Debug)]
pub(crate) struct Select {
    /// First token (WITH, SELECT or VALUES).
    pub first: Tix,
    /// Last token.
    pub last: Tix,
    /// Leading WITH clause.
    pub with: Option<With>,
    /// The cores, in order; `ops[i]` joins `cores[i]` and `cores[i + 1]`.
    pub cores: Vec<Core>,
    /// The compound operators.
    pub ops: Vec<CompoundOp>,
    /// ORDER BY of the whole query.
    pub order_by: Option<OrderBy>,
    /// LIMIT clause: its first and last token.
    pub limit: Option<(Tix, Tix)>,
    /// Expressions of the LIMIT clause (count, offset).
    pub limit_exprs: Vec<Expr>,
}

impl Select {
    /// The last token of the last core (where a new ORDER BY goes).
    pub(crate) fn body_last(&self) -> Tix {
        self.cores.last().map_or(self.last, Core::last)
    }
}

/// UNION, UNION ALL, INTERSECT, EXCEPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompoundOp {
    Union,
    UnionAll,
    Intersect,
    Except,
}

/// `ORDER BY term, ...`.
#[derive(Clone, Debug)]
pub(crate) struct OrderBy {
    /// The ORDER token.
    pub tok: Tix,
    /// The terms.
    pub terms: Vec<OrderTerm>,
}

impl OrderBy {
    /// Last token of the last term.
    pub(crate) fn last(&self) -> Tix {
        self.terms.last().map_or(self.tok + 1, |t| t.last)
    }
}

/// `expr [ASC|DESC] [NULLS FIRST|LAST]`.
#[derive(Clone, Debug)]
pub(crate) struct OrderTerm {
    /// The expression.
    pub expr: Expr,
    /// Last token of the term (including ASC/DESC/NULLS).
    pub last: Tix,
}

/// One SELECT core or a VALUES list.
#[derive(Clone, Debug)]
pub(crate) enum Core {
    Select(Box<SelectCore>),
    Values {
        /// The VALUES token.
        first: Tix,
        /// The last `)`.
        last: Tix,
        /// The rows.
        rows: Vec<Vec<Expr>>,
    },
}

impl Core {
    /// Last token of the core.
    pub(crate) fn last(&self) -> Tix {
        match self {
            Core::Select(s) => s.last,
            Core::Values { last, .. } => *last,
        }
    }
}

/// `SELECT [DISTINCT|ALL] columns [FROM ...] [WHERE ...] [GROUP BY ...] [HAVING ...]`.
#[derive(Clone, Debug)]
pub(crate) struct SelectCore {
    /// The SELECT token.
    pub first: Tix,
    /// Last token of the core.
    pub last: Tix,
    /// DISTINCT was written.
    pub distinct: bool,
    /// The result columns.
    pub columns: Vec<ResultColumn>,
    /// The FROM clause.
    pub from: Option<From>,
    /// `WHERE expr`: the WHERE token and the expression.
    pub where_: Option<(Tix, Expr)>,
    /// GROUP BY expressions.
    pub group_by: Vec<Expr>,
    /// HAVING expression.
    pub having: Option<Expr>,
    /// A WINDOW clause was written.
    pub window: bool,
}

/// One result column.
#[derive(Clone, Debug)]
pub(crate) enum ResultColumn {
    /// `*`
    Star(Tix),
    /// `t.*`
    TableStar(Name),
    /// `expr [[AS] alias]`
    Expr {
        /// The expression.
        expr: Expr,
        /// Its alias.
        alias: Option<Name>,
    },
}

/// `FROM item, item JOIN item ON ...`.
#[derive(Clone, Debug)]
pub(crate) struct From {
    /// The FROM token (for a nested join list: its `(`).
    pub tok: Tix,
    /// Last token of the clause.
    pub last: Tix,
    /// The items in order.
    pub items: Vec<FromItem>,
}

/// One item of a FROM clause.
#[derive(Clone, Debug)]
pub(crate) struct FromItem {
    /// What is read.
    pub source: Source,
    /// Its alias.
    pub alias: Option<Name>,
    /// The join operator before it (not for the first item): its first token, and whether
    /// it is a LEFT/RIGHT/FULL (outer) join.
    pub join: Option<(Tix, bool)>,
    /// `ON expr`.
    pub on: Option<Expr>,
    /// `USING (columns)`.
    pub using: Vec<Name>,
    /// `INDEXED BY index`.
    pub indexed_by: Option<Name>,
    /// Last token of the item's name (where an alias goes).
    pub alias_at: Tix,
}

/// What a FROM item reads.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// A table, view or CTE.
    Table(QualName),
    /// A table-valued function `name(args)`.
    Function(QualName),
    /// `(select)`.
    Subquery(Box<Select>),
    /// `(join list)`.
    Nested(Box<From>),
}

/// `INSERT|REPLACE INTO table [AS alias] [(columns)] select|DEFAULT VALUES [upsert] [RETURNING]`.
#[derive(Clone, Debug)]
pub(crate) struct Insert {
    /// Leading WITH.
    pub with: Option<With>,
    /// `OR <resolution>` or REPLACE: the resolution keyword in upper case.
    pub or: Option<String>,
    /// The target.
    pub table: QualName,
    /// `AS alias`.
    pub alias: Option<Name>,
    /// The column list.
    pub columns: Vec<Name>,
    /// The source rows (None: DEFAULT VALUES).
    pub source: Option<Box<Select>>,
    /// ON CONFLICT clauses.
    pub upserts: Vec<Upsert>,
    /// RETURNING columns.
    pub returning: Option<Returning>,
}

/// `ON CONFLICT [(target) [WHERE ...]] DO NOTHING | DO UPDATE SET ... [WHERE ...]`.
#[derive(Clone, Debug)]
pub(crate) struct Upsert {
    /// Conflict target terms.
    pub target: Vec<OrderTerm>,
    /// WHERE of the target.
    pub target_where: Option<Expr>,
    /// The SET list (empty: DO NOTHING).
    pub set: Vec<Assignment>,
    /// WHERE of the update.
    pub where_: Option<Expr>,
}

/// `RETURNING columns`.
#[derive(Clone, Debug)]
pub(crate) struct Returning {
    /// The RETURNING token.
    pub tok: Tix,
    /// Last token.
    pub last: Tix,
    /// The columns.
    pub columns: Vec<ResultColumn>,
}

/// `col = expr` or `(a, b) = expr`.
#[derive(Clone, Debug)]
pub(crate) struct Assignment {
    /// The columns set.
    pub columns: Vec<Name>,
    /// The value.
    pub value: Expr,
}

/// `UPDATE [OR x] table [AS alias] [INDEXED BY] SET ... [FROM ...] [WHERE ...] [RETURNING ...]`.
#[derive(Clone, Debug)]
pub(crate) struct Update {
    /// Leading WITH.
    pub with: Option<With>,
    /// `OR <resolution>`, upper case.
    pub or: Option<String>,
    /// The target.
    pub table: QualName,
    /// `AS alias`.
    pub alias: Option<Name>,
    /// `INDEXED BY index`.
    pub indexed_by: Option<Name>,
    /// The SET list.
    pub set: Vec<Assignment>,
    /// Last token of the SET list.
    pub set_last: Tix,
    /// `FROM ...`.
    pub from: Option<From>,
    /// `WHERE expr`.
    pub where_: Option<(Tix, Expr)>,
    /// RETURNING.
    pub returning: Option<Returning>,
}

/// `DELETE FROM table [AS alias] [INDEXED BY] [WHERE ...] [RETURNING ...]`.
#[derive(Clone, Debug)]
pub(crate) struct Delete {
    /// Leading WITH.
    pub with: Option<With>,
    /// The target.
    pub table: QualName,
    /// `AS alias`.
    pub alias: Option<Name>,
    /// `INDEXED BY index`.
    pub indexed_by: Option<Name>,
    /// `WHERE expr`.
    pub where_: Option<(Tix, Expr)>,
    /// RETURNING.
    pub returning: Option<Returning>,
}

/// `CREATE [TEMP] TABLE [IF NOT EXISTS] name (columns, constraints) options` or `AS select`.
#[derive(Clone, Debug)]
pub(crate) struct CreateTable {
    /// TEMP was written.
    pub temp: bool,
    /// The table's name.
    pub name: QualName,
    /// The columns.
    pub columns: Vec<ColumnDef>,
    /// Table constraints.
    pub constraints: Vec<TableConstraint>,
    /// The `)` closing the definition (None for `AS select`).
    pub rp: Option<Tix>,
    /// Table options, upper case (`STRICT`, `WITHOUT ROWID`, anything else as written).
    pub options: Vec<String>,
    /// `AS select` was written.
    pub as_select: bool,
    /// Two table options written without the comma SQLite needs between them: the
    /// token after which it goes.
    pub missing_comma: Option<Tix>,
}

/// One column definition.
#[derive(Clone, Debug)]
pub(crate) struct ColumnDef {
    /// Its name.
    pub name: Name,
    /// The declared type: its words and first/last token.
    pub ty: Option<TypeName>,
    /// Its constraints.
    pub constraints: Vec<ColumnConstraint>,
    /// Last token of the definition.
    pub last: Tix,
}

/// A declared type (`INTEGER`, `VARCHAR(10)`, `UNSIGNED BIG INT`).
#[derive(Clone, Debug)]
pub(crate) struct TypeName {
    /// First token.
    pub first: Tix,
    /// Last token (including any `(...)`).
    pub last: Tix,
    /// The words, upper case, dequoted.
    pub words: Vec<String>,
    /// `(n)` or `(n, m)` was written.
    pub sized: bool,
    /// The words as a column's type: without a trailing GENERATED ALWAYS, which SQLite's
    /// grammar reads into the type and then drops (`sqlite3AddColumn`).
    pub column_words: Vec<String>,
    /// Last token of the column's type.
    pub column_last: Tix,
}

impl TypeName {
    /// The type's text as SQLite would read it for affinity: words joined by spaces.
    pub(crate) fn text(&self) -> String {
        self.words.join(" ")
    }
}

/// A column constraint.
#[derive(Clone, Debug)]
pub(crate) enum ColumnConstraint {
    PrimaryKey {
        /// DESC was written (an INTEGER PRIMARY KEY DESC is no rowid alias).
        desc: bool,
        /// `ON CONFLICT x`, upper case.
        on_conflict: Option<String>,
        /// AUTOINCREMENT was written.
        autoincrement: bool,
    },
    NotNull {
        /// `ON CONFLICT x`.
        on_conflict: Option<String>,
    },
    Null,
    Unique {
        /// `ON CONFLICT x`.
        on_conflict: Option<String>,
    },
    Check(Expr),
    Default(Expr),
    Collate(Name),
    References(ForeignKey),
    Generated(Expr),
    /// `[NOT] DEFERRABLE [INITIALLY DEFERRED|IMMEDIATE]` standing alone after a column's
    /// constraints (SQLite attaches it to the table's last foreign key).
    Deferrable {
        /// Deferred: `DEFERRABLE INITIALLY DEFERRED`.
        deferred: bool,
    },
}

/// `REFERENCES table [(columns)] [ON DELETE ...] [DEFERRABLE ...]`.
#[derive(Clone, Debug)]
pub(crate) struct ForeignKey {
    /// The parent table (unqualified in SQLite's grammar).
    pub table: Name,
    /// Parent columns.
    pub columns: Vec<Name>,
    /// `DEFERRABLE INITIALLY DEFERRED` was written.
    pub deferred: bool,
}

/// A table constraint.
#[derive(Clone, Debug)]
pub(crate) enum TableConstraint {
    PrimaryKey {
        /// The key columns (as written; expressions allowed by the grammar).
        columns: Vec<OrderTerm>,
        /// `ON CONFLICT x`.
        on_conflict: Option<String>,
        /// AUTOINCREMENT was written.
        autoincrement: bool,
    },
    Unique {
        /// `ON CONFLICT x`.
        on_conflict: Option<String>,
        /// Columns.
        columns: Vec<OrderTerm>,
    },
    Check {
        /// The expression.
        expr: Expr,
        /// `ON CONFLICT x`.
        on_conflict: Option<String>,
    },
    ForeignKey(ForeignKey),
}

/// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table (columns) [WHERE ...]`.
#[derive(Clone, Debug)]
pub(crate) struct CreateIndex {
    /// The index's name.
    pub name: QualName,
    /// The table (unqualified in SQLite's grammar).
    pub table: Name,
    /// Indexed terms.
    pub columns: Vec<OrderTerm>,
    /// Partial-index condition.
    pub where_: Option<Expr>,
}

/// `CREATE [TEMP] VIEW [IF NOT EXISTS] name [(columns)] AS select`.
#[derive(Clone, Debug)]
pub(crate) struct CreateView {
    /// TEMP was written.
    pub temp: bool,
    /// The view's name.
    pub name: QualName,
    /// The body.
    pub select: Box<Select>,
}

/// `DROP TABLE|INDEX|VIEW [IF EXISTS] name`.
#[derive(Clone, Debug)]
pub(crate) struct Drop {
    /// TABLE, INDEX or VIEW.
    pub kind: DropKind,
    /// IF EXISTS was written.
    pub if_exists: bool,
    /// The object.
    pub name: QualName,
}

/// What a DROP drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropKind {
    Table,
    Index,
    View,
}

/// `PRAGMA name [= value | (value)]`.
#[derive(Clone, Debug)]
pub(crate) struct Pragma {
    /// The pragma's name.
    pub name: QualName,
    /// The argument token, if any.
    pub arg: Option<Tix>,
    /// Written with `=`.
    pub assigns: bool,
}

/// An expression with its token range.
#[derive(Clone, Debug)]
pub(crate) struct Expr {
    /// First token.
    pub first: Tix,
    /// Last token.
    pub last: Tix,
    /// What it is.
    pub kind: ExprKind,
}

/// A literal's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lit {
    Integer,
    Float,
    String,
    Blob,
    Null,
    /// CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP.
    CurrentTime,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unary {
    Not,
    Neg,
    Pos,
    BitNot,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binary {
    Or,
    And,
    Eq,
    Ne,
    Is,
    IsNot,
    Lt,
    Le,
    Gt,
    Ge,
    BitAnd,
    BitOr,
    LShift,
    RShift,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Concat,
    /// `->` / `->>` (JSON).
    Ptr,
}

/// What an expression is.
#[derive(Clone, Debug)]
pub(crate) enum ExprKind {
    Literal(Lit),
    /// A bound parameter.
    Variable,
    /// `[[schema.]table.]column`.
    Column {
        /// Schema qualifier (three-part name).
        schema: Option<Name>,
        /// Table qualifier.
        table: Option<Name>,
        /// Column.
        column: Name,
    },
    Unary(Unary, Box<Expr>),
    Binary(Box<Expr>, Binary, Box<Expr>),
    /// `x [NOT] LIKE|GLOB|REGEXP|MATCH y [ESCAPE z]`.
    Like {
        /// NOT was written.
        not: bool,
        /// The operator, upper case.
        op: String,
        /// Left side.
        lhs: Box<Expr>,
        /// Pattern.
        rhs: Box<Expr>,
        /// ESCAPE.
        escape: Option<Box<Expr>>,
    },
    /// `x ISNULL`, `x NOTNULL`, `x NOT NULL` (`true`: NOT NULL).
    NullTest(Box<Expr>, bool),
    Collate(Box<Expr>, Name),
    Between {
        /// NOT was written.
        not: bool,
        /// Tested value.
        expr: Box<Expr>,
        /// Lower bound.
        low: Box<Expr>,
        /// Upper bound.
        high: Box<Expr>,
    },
    InList {
        /// NOT was written.
        not: bool,
        /// Tested value.
        expr: Box<Expr>,
        /// The list.
        list: Vec<Expr>,
    },
    InSelect {
        /// NOT was written.
        not: bool,
        /// Tested value.
        expr: Box<Expr>,
        /// The subquery.
        select: Box<Select>,
    },
    /// `x IN table` or `x IN function(args)`.
    InTable {
        /// NOT was written.
        not: bool,
        /// Tested value.
        expr: Box<Expr>,
        /// The table.
        table: QualName,
        /// Arguments of a table-valued function.
        args: Option<Vec<Expr>>,
    },
    Exists(Box<Select>),
    /// A scalar subquery `(select)`.
    Subquery(Box<Select>),
    Case {
        /// `CASE x WHEN ...`.
        operand: Option<Box<Expr>>,
        /// WHEN/THEN pairs.
        whens: Vec<(Expr, Expr)>,
        /// ELSE.
        else_: Option<Box<Expr>>,
    },
    Cast(Box<Expr>, TypeName),
    Function(Box<Function>),
    /// `(a)` or a row value `(a, b, ...)`.
    Parens(Vec<Expr>),
    /// RAISE(...): only meaningful in triggers.
    Raise,
}

/// A function call.
#[derive(Clone, Debug)]
pub(crate) struct Function {
    /// The function's name.
    pub name: Name,
    /// `f(DISTINCT x)`.
    pub distinct: bool,
    /// `f(*)`.
    pub star: bool,
    /// Arguments.
    pub args: Vec<Expr>,
    /// `f(x ORDER BY y)`.
    pub order_by: Option<OrderBy>,
    /// The `)` closing the arguments.
    pub rp: Tix,
    /// `FILTER (WHERE expr)`.
    pub filter: Option<Box<Expr>>,
    /// An OVER clause was written.
    pub over: bool,
}
