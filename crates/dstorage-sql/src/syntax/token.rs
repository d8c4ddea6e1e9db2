//! SQLite's tokenizer, rule for rule (`sqlite3GetToken` in SQLite 3.54.1's `tokenize.c`).
//!
//! The guard must see exactly the tokens SQLite will see: a different reading of one
//! character (`- -1` against `--1`, a digit separator, a hex literal) is how text the guard
//! judged as a string or a number becomes code SQLite runs. So this is a port, not an
//! approximation: the same character classes, the same comment, string, number, blob and
//! variable rules, the same keyword set. Tests compare it with SQLite itself.

/// A keyword, by SQLite's token class (several spellings can share one class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub(crate) enum Kw {
    Abort,
    Action,
    Add,
    After,
    All,
    Alter,
    Always,
    Analyze,
    And,
    As,
    Asc,
    Attach,
    Autoincrement,
    Before,
    Begin,
    Between,
    By,
    Cascade,
    Case,
    Cast,
    Check,
    Collate,
    Column,
    Commit,
    Conflict,
    Constraint,
    Create,
    /// CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP.
    Ctime,
    Current,
    Database,
    Default,
    Deferrable,
    Deferred,
    Delete,
    Desc,
    Detach,
    Distinct,
    Do,
    Drop,
    Each,
    Else,
    End,
    Escape,
    Except,
    Exclude,
    Exclusive,
    Exists,
    Explain,
    Fail,
    Filter,
    First,
    Following,
    For,
    Foreign,
    From,
    Generated,
    Group,
    Groups,
    Having,
    If,
    Ignore,
    Immediate,
    In,
    Index,
    Indexed,
    Initially,
    Insert,
    Instead,
    Intersect,
    Into,
    Is,
    Isnull,
    /// CROSS, FULL, INNER, LEFT, NATURAL, OUTER, RIGHT.
    JoinOp,
    Join,
    Key,
    Last,
    /// LIKE, GLOB, REGEXP.
    Like,
    Limit,
    Match,
    Materialized,
    No,
    Not,
    Nothing,
    Notnull,
    Null,
    Nulls,
    Of,
    Offset,
    On,
    Or,
    Order,
    Others,
    Over,
    Partition,
    Plan,
    Pragma,
    Preceding,
    Primary,
    Query,
    Raise,
    Range,
    Recursive,
    References,
    Reindex,
    Release,
    Rename,
    Replace,
    Restrict,
    Returning,
    Rollback,
    Row,
    Rows,
    Savepoint,
    Select,
    Set,
    Table,
    /// TEMP, TEMPORARY.
    Temp,
    Then,
    Ties,
    To,
    Transaction,
    Trigger,
    Unbounded,
    Union,
    Unique,
    Update,
    Using,
    Vacuum,
    Values,
    View,
    Virtual,
    When,
    Where,
    Window,
    With,
    Without,
}

/// Every keyword spelling SQLite 3.54.1 knows (`sqlite3_keyword_name`), upper case.
pub(crate) const KEYWORDS: &[(&str, Kw)] = &[
    ("ABORT", Kw::Abort),
    ("ACTION", Kw::Action),
    ("ADD", Kw::Add),
    ("AFTER", Kw::After),
    ("ALL", Kw::All),
    ("ALTER", Kw::Alter),
    ("ALWAYS", Kw::Always),
    ("ANALYZE", Kw::Analyze),
    ("AND", Kw::And),
    ("AS", Kw::As),
    ("ASC", Kw::Asc),
    ("ATTACH", Kw::Attach),
    ("AUTOINCREMENT", Kw::Autoincrement),
    ("BEFORE", Kw::Before),
    ("BEGIN", Kw::Begin),
    ("BETWEEN", Kw::Between),
    ("BY", Kw::By),
    ("CASCADE", Kw::Cascade),
    ("CASE", Kw::Case),
    ("CAST", Kw::Cast),
    ("CHECK", Kw::Check),
    ("COLLATE", Kw::Collate),
    ("COLUMN", Kw::Column),
    ("COMMIT", Kw::Commit),
    ("CONFLICT", Kw::Conflict),
    ("CONSTRAINT", Kw::Constraint),
    ("CREATE", Kw::Create),
    ("CROSS", Kw::JoinOp),
    ("CURRENT", Kw::Current),
    ("CURRENT_DATE", Kw::Ctime),
    ("CURRENT_TIME", Kw::Ctime),
    ("CURRENT_TIMESTAMP", Kw::Ctime),
    ("DATABASE", Kw::Database),
    ("DEFAULT", Kw::Default),
    ("DEFERRABLE", Kw::Deferrable),
    ("DEFERRED", Kw::Deferred),
    ("DELETE", Kw::Delete),
    ("DESC", Kw::Desc),
    ("DETACH", Kw::Detach),
    ("DISTINCT", Kw::Distinct),
    ("DO", Kw::Do),
    ("DROP", Kw::Drop),
    ("EACH", Kw::Each),
    ("ELSE", Kw::Else),
    ("END", Kw::End),
    ("ESCAPE", Kw::Escape),
    ("EXCEPT", Kw::Except),
    ("EXCLUDE", Kw::Exclude),
    ("EXCLUSIVE", Kw::Exclusive),
    ("EXISTS", Kw::Exists),
    ("EXPLAIN", Kw::Explain),
    ("FAIL", Kw::Fail),
    ("FILTER", Kw::Filter),
    ("FIRST", Kw::First),
    ("FOLLOWING", Kw::Following),
    ("FOR", Kw::For),
    ("FOREIGN", Kw::Foreign),
    ("FROM", Kw::From),
    ("FULL", Kw::JoinOp),
    ("GENERATED", Kw::Generated),
    ("GLOB", Kw::Like),
    ("GROUP", Kw::Group),
    ("GROUPS", Kw::Groups),
    ("HAVING", Kw::Having),
    ("IF", Kw::If),
    ("IGNORE", Kw::Ignore),
    ("IMMEDIATE", Kw::Immediate),
    ("IN", Kw::In),
    ("INDEX", Kw::Index),
    ("INDEXED", Kw::Indexed),
    ("INITIALLY", Kw::Initially),
    ("INNER", Kw::JoinOp),
    ("INSERT", Kw::Insert),
    ("INSTEAD", Kw::Instead),
    ("INTERSECT", Kw::Intersect),
    ("INTO", Kw::Into),
    ("IS", Kw::Is),
    ("ISNULL", Kw::Isnull),
    ("JOIN", Kw::Join),
    ("KEY", Kw::Key),
    ("LAST", Kw::Last),
    ("LEFT", Kw::JoinOp),
    ("LIKE", Kw::Like),
    ("LIMIT", Kw::Limit),
    ("MATCH", Kw::Match),
    ("MATERIALIZED", Kw::Materialized),
    ("NATURAL", Kw::JoinOp),
    ("NO", Kw::No),
    ("NOT", Kw::Not),
    ("NOTHING", Kw::Nothing),
    ("NOTNULL", Kw::Notnull),
    ("NULL", Kw::Null),
    ("NULLS", Kw::Nulls),
    ("OF", Kw::Of),
    ("OFFSET", Kw::Offset),
    ("ON", Kw::On),
    ("OR", Kw::Or),
    ("ORDER", Kw::Order),
    ("OTHERS", Kw::Others),
    ("OUTER", Kw::JoinOp),
    ("OVER", Kw::Over),
    ("PARTITION", Kw::Partition),
    ("PLAN", Kw::Plan),
    ("PRAGMA", Kw::Pragma),
    ("PRECEDING", Kw::Preceding),
    ("PRIMARY", Kw::Primary),
    ("QUERY", Kw::Query),
    ("RAISE", Kw::Raise),
    ("RANGE", Kw::Range),
    ("RECURSIVE", Kw::Recursive),
    ("REFERENCES", Kw::References),
    ("REGEXP", Kw::Like),
    ("REINDEX", Kw::Reindex),
    ("RELEASE", Kw::Release),
    ("RENAME", Kw::Rename),
    ("REPLACE", Kw::Replace),
    ("RESTRICT", Kw::Restrict),
    ("RETURNING", Kw::Returning),
    ("RIGHT", Kw::JoinOp),
    ("ROLLBACK", Kw::Rollback),
    ("ROW", Kw::Row),
    ("ROWS", Kw::Rows),
    ("SAVEPOINT", Kw::Savepoint),
    ("SELECT", Kw::Select),
    ("SET", Kw::Set),
    ("TABLE", Kw::Table),
    ("TEMP", Kw::Temp),
    ("TEMPORARY", Kw::Temp),
    ("THEN", Kw::Then),
    ("TIES", Kw::Ties),
    ("TO", Kw::To),
    ("TRANSACTION", Kw::Transaction),
    ("TRIGGER", Kw::Trigger),
    ("UNBOUNDED", Kw::Unbounded),
    ("UNION", Kw::Union),
    ("UNIQUE", Kw::Unique),
    ("UPDATE", Kw::Update),
    ("USING", Kw::Using),
    ("VACUUM", Kw::Vacuum),
    ("VALUES", Kw::Values),
    ("VIEW", Kw::View),
    ("VIRTUAL", Kw::Virtual),
    ("WHEN", Kw::When),
    ("WHERE", Kw::Where),
    ("WINDOW", Kw::Window),
    ("WITH", Kw::With),
    ("WITHOUT", Kw::Without),
];

impl Kw {
    /// Keywords SQLite's grammar lets stand for an identifier where a keyword cannot go
    /// (`%fallback ID ...` in parse.y). WINDOW, OVER and FILTER are decided by the tokenizer
    /// from their neighbours instead (see [`tokenize`]).
    pub(crate) fn falls_back_to_id(self) -> bool {
        use Kw::*;
        matches!(
            self,
            Explain
                | Query
                | Plan
                | Begin
                | Deferred
                | Immediate
                | Exclusive
                | End
                | Rollback
                | Savepoint
                | Release
                | If
                | Temp
                | Without
                | Abort
                | Action
                | After
                | Analyze
                | Asc
                | Attach
                | Before
                | By
                | Cascade
                | Cast
                | Conflict
                | Database
                | Desc
                | Detach
                | Each
                | Fail
                | Match
                | Like
                | Column
                | Do
                | For
                | Ignore
                | Initially
                | Instead
                | No
                | Key
                | Of
                | Offset
                | Pragma
                | Raise
                | Recursive
                | Replace
                | Restrict
                | Row
                | Rows
                | Trigger
                | Vacuum
                | View
                | Virtual
                | With
                | Nulls
                | First
                | Last
                | Current
                | Following
                | Partition
                | Preceding
                | Range
                | Unbounded
                | Exclude
                | Groups
                | Others
                | Ties
                | Generated
                | Always
                | Materialized
                | Reindex
                | Rename
                | Ctime
        )
    }
}

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tk {
    /// Whitespace (and a UTF-8 byte order mark).
    Space,
    /// `-- ...` to the end of the line, or `/* ... */` (possibly unterminated at the end).
    Comment,
    /// An identifier: a bare word that is no keyword, or text in `"..."`, `` `...` ``, `[...]`.
    Id,
    /// A keyword (which the parser may still read as an identifier, see
    /// [`Kw::falls_back_to_id`]).
    Keyword(Kw),
    /// `'...'`.
    String,
    /// A decimal or hexadecimal integer, possibly with `_` digit separators.
    Integer,
    /// A number with a decimal point or an exponent, possibly with `_` separators.
    Float,
    /// `X'...'` with an even number of hex digits.
    Blob,
    /// `?`, `?NNN`, `:name`, `@name`, `$name`.
    Variable,
    Semi,
    LParen,
    RParen,
    Comma,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Rem,
    /// `||`
    Concat,
    /// `->` or `->>`
    Ptr,
    /// `=` or `==`
    Eq,
    /// `!=` or `<>`
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitAnd,
    BitOr,
    BitNot,
    LShift,
    RShift,
    /// Anything SQLite would refuse as "unrecognized token".
    Illegal,
}

/// One token: its kind and its byte range in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    /// What it is.
    pub kind: Tk,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Token {
    /// The token's text in `sql`.
    pub(crate) fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }
}

// sqlite3CtypeMap's bits.
const SPACE: u8 = 0x01;
const DIGIT: u8 = 0x04;
const XDIGIT: u8 = 0x08;
const ID_CHAR: u8 = 0x46;

fn ctype(b: u8) -> u8 {
    match b {
        0x09..=0x0d | b' ' => SPACE,
        b'0'..=b'9' => DIGIT | XDIGIT,
        b'a'..=b'f' | b'A'..=b'F' => 0x02 | XDIGIT,
        b'a'..=b'z' | b'A'..=b'Z' => 0x02,
        b'$' | b'_' | 0x80..=0xff => 0x40,
        _ => 0,
    }
}

fn is_space(b: u8) -> bool {
    ctype(b) & SPACE != 0
}
fn is_digit(b: u8) -> bool {
    ctype(b) & DIGIT != 0
}
fn is_xdigit(b: u8) -> bool {
    ctype(b) & XDIGIT != 0
}
fn is_id_char(b: u8) -> bool {
    ctype(b) & ID_CHAR != 0
}

/// Character classes of the first byte of a token (`aiClass` in tokenize.c).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cc {
    X,
    Kywd0,
    Kywd,
    Digit,
    Dollar,
    VarAlpha,
    VarNum,
    Space,
    Quote,
    Quote2,
    Pipe,
    Minus,
    Lt,
    Gt,
    Eq,
    Bang,
    Slash,
    Lp,
    Rp,
    Semi,
    Plus,
    Star,
    Percent,
    Comma,
    And,
    Tilda,
    Dot,
    Id,
    Illegal,
    Nul,
    Bom,
}

fn class(b: u8) -> Cc {
    match b {
        0 => Cc::Nul,
        b'\t' | b'\n' | 0x0c | b'\r' | b' ' => Cc::Space,
        b'!' => Cc::Bang,
        b'"' | b'\'' | b'`' => Cc::Quote,
        b'#' | b':' | b'@' => Cc::VarAlpha,
        b'$' => Cc::Dollar,
        b'%' => Cc::Percent,
        b'&' => Cc::And,
        b'(' => Cc::Lp,
        b')' => Cc::Rp,
        b'*' => Cc::Star,
        b'+' => Cc::Plus,
        b',' => Cc::Comma,
        b'-' => Cc::Minus,
        b'.' => Cc::Dot,
        b'/' => Cc::Slash,
        b'0'..=b'9' => Cc::Digit,
        b';' => Cc::Semi,
        b'<' => Cc::Lt,
        b'=' => Cc::Eq,
        b'>' => Cc::Gt,
        b'?' => Cc::VarNum,
        b'x' | b'X' => Cc::X,
        b'A'..=b'Z' | b'a'..=b'z' => Cc::Kywd0,
        b'_' => Cc::Kywd,
        b'[' => Cc::Quote2,
        b'|' => Cc::Pipe,
        b'~' => Cc::Tilda,
        0xef => Cc::Bom,
        0x80..=0xff => Cc::Id,
        _ => Cc::Illegal,
    }
}

/// A byte of `z` at `i`, or 0 past the end (SQLite reads a NUL-terminated string).
fn at(z: &[u8], i: usize) -> u8 {
    z.get(i).copied().unwrap_or(0)
}

fn keyword(word: &[u8]) -> Option<Kw> {
    KEYWORDS
        .iter()
        .find(|(k, _)| k.as_bytes().eq_ignore_ascii_case(word))
        .map(|(_, kw)| *kw)
}

/// The length and kind of the token at the start of `z` (`sqlite3GetToken`). Returns
/// length 0 only at the end of the text or at a NUL byte.
fn get_token(z: &[u8]) -> (usize, Tk) {
    let c0 = at(z, 0);
    let mut i: usize;
    match class(c0) {
        Cc::Space => {
            i = 1;
            while is_space(at(z, i)) {
                i += 1;
            }
            return (i, Tk::Space);
        }
        Cc::Minus => {
            if at(z, 1) == b'-' {
                i = 2;
                while at(z, i) != 0 && at(z, i) != b'\n' {
                    i += 1;
                }
                return (i, Tk::Comment);
            } else if at(z, 1) == b'>' {
                return (2 + usize::from(at(z, 2) == b'>'), Tk::Ptr);
            }
            return (1, Tk::Minus);
        }
        Cc::Lp => return (1, Tk::LParen),
        Cc::Rp => return (1, Tk::RParen),
        Cc::Semi => return (1, Tk::Semi),
        Cc::Plus => return (1, Tk::Plus),
        Cc::Star => return (1, Tk::Star),
        Cc::Slash => {
            if at(z, 1) != b'*' || at(z, 2) == 0 {
                return (1, Tk::Slash);
            }
            // for(i=3, c=z[2]; (c!='*' || z[i]!='/') && (c=z[i])!=0; i++){}; if(c) i++;
            i = 3;
            let mut c = at(z, 2);
            loop {
                if c == b'*' && at(z, i) == b'/' {
                    break;
                }
                c = at(z, i);
                if c == 0 {
                    break;
                }
                i += 1;
            }
            if c != 0 {
                i += 1;
            }
            return (i, Tk::Comment);
        }
        Cc::Percent => return (1, Tk::Rem),
        Cc::Eq => return (1 + usize::from(at(z, 1) == b'='), Tk::Eq),
        Cc::Lt => {
            return match at(z, 1) {
                b'=' => (2, Tk::Le),
                b'>' => (2, Tk::Ne),
                b'<' => (2, Tk::LShift),
                _ => (1, Tk::Lt),
            }
        }
        Cc::Gt => {
            return match at(z, 1) {
                b'=' => (2, Tk::Ge),
                b'>' => (2, Tk::RShift),
                _ => (1, Tk::Gt),
            }
        }
        Cc::Bang => {
            return if at(z, 1) != b'=' {
                (1, Tk::Illegal)
            } else {
                (2, Tk::Ne)
            }
        }
        Cc::Pipe => {
            return if at(z, 1) != b'|' {
                (1, Tk::BitOr)
            } else {
                (2, Tk::Concat)
            }
        }
        Cc::Comma => return (1, Tk::Comma),
        Cc::And => return (1, Tk::BitAnd),
        Cc::Tilda => return (1, Tk::BitNot),
        Cc::Quote => {
            let delim = c0;
            i = 1;
            let mut c = 0u8;
            while i < z.len() {
                c = z[i];
                if c == 0 {
                    break;
                }
                if c == delim {
                    if at(z, i + 1) == delim {
                        i += 1;
                    } else {
                        break;
                    }
                }
                i += 1;
            }
            if i >= z.len() {
                c = 0;
            }
            return if c == b'\'' {
                (i + 1, Tk::String)
            } else if c != 0 {
                (i + 1, Tk::Id)
            } else {
                (i, Tk::Illegal)
            };
        }
        Cc::Dot if !is_digit(at(z, 1)) => return (1, Tk::Dot),
        Cc::Dot | Cc::Digit => return number(z),
        Cc::Quote2 => {
            i = 1;
            let mut c = c0;
            while c != b']' {
                c = at(z, i);
                if c == 0 {
                    break;
                }
                i += 1;
            }
            return (i, if c == b']' { Tk::Id } else { Tk::Illegal });
        }
        Cc::VarNum => {
            i = 1;
            while is_digit(at(z, i)) {
                i += 1;
            }
            return (i, Tk::Variable);
        }
        Cc::Dollar | Cc::VarAlpha => {
            let mut n = 0;
            let mut kind = Tk::Variable;
            i = 1;
            loop {
                let c = at(z, i);
                if c == 0 {
                    break;
                }
                if is_id_char(c) {
                    n += 1;
                } else if c == b'(' && n > 0 {
                    // TCL-style array variable `$a(index)`.
                    loop {
                        i += 1;
                        let c = at(z, i);
                        if c == 0 || is_space(c) || c == b')' {
                            break;
                        }
                    }
                    if at(z, i) == b')' {
                        i += 1;
                    } else {
                        kind = Tk::Illegal;
                    }
                    break;
                } else if c == b':' && at(z, i + 1) == b':' {
                    i += 1;
                } else {
                    break;
                }
                i += 1;
            }
            if n == 0 {
                kind = Tk::Illegal;
            }
            return (i, kind);
        }
        Cc::Kywd0 => {
            if !matches!(class(at(z, 1)), Cc::X | Cc::Kywd0 | Cc::Kywd) {
                i = 1;
            } else {
                i = 2;
                while matches!(class(at(z, i)), Cc::X | Cc::Kywd0 | Cc::Kywd) {
                    i += 1;
                }
                if is_id_char(at(z, i)) {
                    // Started like a keyword, but holds a character no keyword has.
                    i += 1;
                } else {
                    return match keyword(&z[..i]) {
                        Some(k) => (i, Tk::Keyword(k)),
                        None => (i, Tk::Id),
                    };
                }
            }
        }
        Cc::X => {
            if at(z, 1) == b'\'' {
                let mut kind = Tk::Blob;
                i = 2;
                while is_xdigit(at(z, i)) {
                    i += 1;
                }
                if at(z, i) != b'\'' || !i.is_multiple_of(2) {
                    kind = Tk::Illegal;
                    while at(z, i) != 0 && at(z, i) != b'\'' {
                        i += 1;
                    }
                }
                if at(z, i) != 0 {
                    i += 1;
                }
                return (i, kind);
            }
            i = 1;
        }
        Cc::Kywd | Cc::Id => i = 1,
        Cc::Bom => {
            if at(z, 1) == 0xbb && at(z, 2) == 0xbf {
                return (3, Tk::Space);
            }
            i = 1;
        }
        Cc::Nul => return (0, Tk::Illegal),
        Cc::Illegal => return (1, Tk::Illegal),
    }
    while is_id_char(at(z, i)) {
        i += 1;
    }
    (i, Tk::Id)
}

/// A number (the CC_DIGIT / CC_DOT case). `_` between digits is a digit separator
/// (SQLite 3.46+); where it is misplaced SQLite refuses the token when it dequotes it,
/// so such a token is [`Tk::Illegal`] here.
fn number(z: &[u8]) -> (usize, Tk) {
    let mut kind = Tk::Integer;
    let mut quoted = false;
    let mut i: usize;
    let hex = at(z, 0) == b'0' && matches!(at(z, 1), b'x' | b'X') && is_xdigit(at(z, 2));
    if hex {
        i = 3;
        loop {
            if !is_xdigit(at(z, i)) {
                if at(z, i) == b'_' {
                    quoted = true;
                } else {
                    break;
                }
            }
            i += 1;
        }
    } else {
        i = 0;
        loop {
            if !is_digit(at(z, i)) {
                if at(z, i) == b'_' {
                    quoted = true;
                } else {
                    break;
                }
            }
            i += 1;
        }
        if at(z, i) == b'.' {
            kind = Tk::Float;
            i += 1;
            loop {
                if !is_digit(at(z, i)) {
                    if at(z, i) == b'_' {
                        quoted = true;
                    } else {
                        break;
                    }
                }
                i += 1;
            }
        }
        if matches!(at(z, i), b'e' | b'E')
            && (is_digit(at(z, i + 1))
                || (matches!(at(z, i + 1), b'+' | b'-') && is_digit(at(z, i + 2))))
        {
            kind = Tk::Float;
            i += 2;
            loop {
                if !is_digit(at(z, i)) {
                    if at(z, i) == b'_' {
                        quoted = true;
                    } else {
                        break;
                    }
                }
                i += 1;
            }
        }
    }
    let mut illegal = false;
    while is_id_char(at(z, i)) {
        illegal = true;
        i += 1;
    }
    if illegal {
        return (i, Tk::Illegal);
    }
    if quoted && !separators_are_between_digits(&z[..i], hex) {
        return (i, Tk::Illegal);
    }
    (i, kind)
}

/// `sqlite3DequoteNumber`'s rule: every `_` stands between two (hex) digits.
fn separators_are_between_digits(n: &[u8], hex: bool) -> bool {
    let digit = |b: u8| if hex { is_xdigit(b) } else { is_digit(b) };
    (0..n.len())
        .all(|i| n[i] != b'_' || (i > 0 && digit(n[i - 1]) && i + 1 < n.len() && digit(n[i + 1])))
}

/// The next significant token after the start of `z` (spaces and comments skipped), read
/// the way SQLite's `getToken` does for its WINDOW/OVER/FILTER look-ahead: identifiers,
/// strings, join keywords and keywords that fall back to an identifier all count as an
/// identifier. Returns the bytes consumed and the kind.
fn peek(z: &[u8]) -> (usize, Tk) {
    let mut pos = 0;
    loop {
        let (n, kind) = get_token(&z[pos..]);
        if n == 0 {
            return (pos, Tk::Illegal);
        }
        pos += n;
        match kind {
            Tk::Space | Tk::Comment => continue,
            Tk::String | Tk::Id => return (pos, Tk::Id),
            Tk::Keyword(k)
                if k == Kw::JoinOp || k == Kw::Window || k == Kw::Over || k.falls_back_to_id() =>
            {
                return (pos, Tk::Id)
            }
            other => return (pos, other),
        }
    }
}

/// Where SQLite would stop reading `sql`: at its first NUL byte, if any.
pub(crate) fn nul_position(sql: &str) -> Option<usize> {
    sql.bytes().position(|b| b == 0)
}

/// Split `sql` into tokens exactly as SQLite does, including spaces and comments.
/// WINDOW, OVER and FILTER become [`Tk::Id`] where SQLite reads them as identifiers.
/// The caller must refuse text holding a NUL byte first (SQLite stops reading there).
pub(crate) fn tokenize(sql: &str) -> Vec<Token> {
    let z = sql.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut last_significant: Option<Tk> = None;
    while pos < z.len() {
        let (n, mut kind) = get_token(&z[pos..]);
        if n == 0 {
            break;
        }
        let rest = &z[pos + n..];
        kind = match kind {
            Tk::Keyword(Kw::Window) => {
                // A keyword only when followed by an identifier and then AS.
                let (used, first) = peek(rest);
                if first == Tk::Id && peek(&rest[used..]).1 == Tk::Keyword(Kw::As) {
                    kind
                } else {
                    Tk::Id
                }
            }
            Tk::Keyword(Kw::Over) => {
                let next = peek(rest).1;
                if last_significant == Some(Tk::RParen) && matches!(next, Tk::LParen | Tk::Id) {
                    kind
                } else {
                    Tk::Id
                }
            }
            Tk::Keyword(Kw::Filter) => {
                if last_significant == Some(Tk::RParen) && peek(rest).1 == Tk::LParen {
                    kind
                } else {
                    Tk::Id
                }
            }
            other => other,
        };
        if !matches!(kind, Tk::Space | Tk::Comment) {
            last_significant = Some(kind);
        }
        out.push(Token {
            kind,
            start: pos,
            end: pos + n,
        });
        pos += n;
    }
    out
}

/// The tokens SQLite hands its parser: [`tokenize`] without spaces and comments.
pub(crate) fn significant(sql: &str) -> Vec<Token> {
    tokenize(sql)
        .into_iter()
        .filter(|t| !matches!(t.kind, Tk::Space | Tk::Comment))
        .collect()
}

/// The value of an identifier or string token with its quotes removed (`"a""b"` → `a"b`,
/// `[x]` → `x`); other tokens as written.
pub(crate) fn dequote(text: &str) -> String {
    let b = text.as_bytes();
    match b.first() {
        Some(&q @ (b'"' | b'\'' | b'`')) if b.len() >= 2 => {
            let inner = &text[1..text.len() - 1];
            let q = q as char;
            inner.replace(&format!("{q}{q}"), &q.to_string())
        }
        Some(b'[') if b.len() >= 2 => text[1..text.len() - 1].to_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Tk, &str)> {
        significant(sql)
            .into_iter()
            .map(|t| (t.kind, t.text(sql)))
            .collect()
    }

    #[test]
    fn two_minus_signs_apart_are_two_tokens_and_together_a_comment() {
        assert_eq!(
            kinds("SELECT - -1"),
            vec![
                (Tk::Keyword(Kw::Select), "SELECT"),
                (Tk::Minus, "-"),
                (Tk::Minus, "-"),
                (Tk::Integer, "1")
            ]
        );
        assert_eq!(
            kinds("SELECT --1\n2"),
            vec![(Tk::Keyword(Kw::Select), "SELECT"), (Tk::Integer, "2")]
        );
    }

    #[test]
    fn numbers_follow_sqlite_literal_rules() {
        assert_eq!(kinds("0x10"), vec![(Tk::Integer, "0x10")]);
        assert_eq!(kinds("1_000"), vec![(Tk::Integer, "1_000")]);
        assert_eq!(kinds("0xff_ff"), vec![(Tk::Integer, "0xff_ff")]);
        assert_eq!(kinds("1.5"), vec![(Tk::Float, "1.5")]);
        assert_eq!(kinds(".5"), vec![(Tk::Float, ".5")]);
        assert_eq!(kinds("1e5"), vec![(Tk::Float, "1e5")]);
        assert_eq!(kinds("1e"), vec![(Tk::Illegal, "1e")]);
        assert_eq!(kinds("1__0"), vec![(Tk::Illegal, "1__0")]);
        assert_eq!(kinds("1_"), vec![(Tk::Illegal, "1_")]);
        assert_eq!(kinds("12abc"), vec![(Tk::Illegal, "12abc")]);
        assert_eq!(kinds("0x"), vec![(Tk::Illegal, "0x")]);
    }

    #[test]
    fn quotes_make_strings_and_identifiers() {
        assert_eq!(kinds("'a''b'"), vec![(Tk::String, "'a''b'")]);
        assert_eq!(kinds("\"a\"\"b\""), vec![(Tk::Id, "\"a\"\"b\"")]);
        assert_eq!(kinds("[a b]"), vec![(Tk::Id, "[a b]")]);
        assert_eq!(kinds("`x`"), vec![(Tk::Id, "`x`")]);
        assert_eq!(kinds("'open"), vec![(Tk::Illegal, "'open")]);
        assert_eq!(dequote("\"a\"\"b\""), "a\"b");
        assert_eq!(dequote("'it''s'"), "it's");
    }

    #[test]
    fn window_over_and_filter_are_keywords_only_where_sqlite_says() {
        let k = |sql: &str| kinds(sql).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert!(k("SELECT window FROM t").contains(&Tk::Id));
        assert!(k("SELECT sum(x) OVER (ORDER BY y) FROM t").contains(&Tk::Keyword(Kw::Over)));
        assert!(!k("SELECT over FROM t").contains(&Tk::Keyword(Kw::Over)));
        assert!(k("SELECT count(*) FILTER (WHERE x) FROM t").contains(&Tk::Keyword(Kw::Filter)));
        assert!(k("SELECT 1 FROM t WINDOW w AS (ORDER BY x)").contains(&Tk::Keyword(Kw::Window)));
    }

    #[test]
    fn blobs_variables_and_operators() {
        assert_eq!(kinds("X'0a'"), vec![(Tk::Blob, "X'0a'")]);
        assert_eq!(kinds("x'0'"), vec![(Tk::Illegal, "x'0'")]);
        assert_eq!(
            kinds("?12 :a @b $c"),
            vec![
                (Tk::Variable, "?12"),
                (Tk::Variable, ":a"),
                (Tk::Variable, "@b"),
                (Tk::Variable, "$c")
            ]
        );
        assert_eq!(
            kinds("a<<b>>c||d->e->>f!=g<>h==i"),
            vec![
                (Tk::Id, "a"),
                (Tk::LShift, "<<"),
                (Tk::Id, "b"),
                (Tk::RShift, ">>"),
                (Tk::Id, "c"),
                (Tk::Concat, "||"),
                (Tk::Id, "d"),
                (Tk::Ptr, "->"),
                (Tk::Id, "e"),
                (Tk::Ptr, "->>"),
                (Tk::Id, "f"),
                (Tk::Ne, "!="),
                (Tk::Id, "g"),
                (Tk::Ne, "<>"),
                (Tk::Id, "h"),
                (Tk::Eq, "=="),
                (Tk::Id, "i"),
            ]
        );
    }

    #[test]
    fn the_keyword_list_is_sqlites() {
        let n = unsafe { rusqlite::ffi::sqlite3_keyword_count() };
        let mut theirs = Vec::new();
        for i in 0..n {
            let mut z: *const std::os::raw::c_char = std::ptr::null();
            let mut len: std::os::raw::c_int = 0;
            // SAFETY: i < sqlite3_keyword_count(); SQLite returns a static string and its length.
            unsafe { rusqlite::ffi::sqlite3_keyword_name(i, &mut z, &mut len) };
            let bytes = unsafe { std::slice::from_raw_parts(z.cast::<u8>(), len as usize) };
            theirs.push(String::from_utf8(bytes.to_vec()).unwrap());
        }
        theirs.sort();
        let ours: Vec<String> = KEYWORDS.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(ours, theirs);
    }
}
