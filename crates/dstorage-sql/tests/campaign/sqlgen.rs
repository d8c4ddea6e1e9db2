//! A grammar-based random SQL generator for the differential campaign.
//!
//! Deterministic per seed (`StdRng`). It makes a schema (STRICT tables with INTEGER, TEXT
//! and composite keys, WITHOUT ROWID, indexes, foreign keys, a view) and statements over it
//! that SQLite accepts and dstorage should run: joins, subqueries, compound selects, CTEs,
//! aggregates, upserts, RETURNING, every literal form SQLite reads, and comments and odd
//! spacing between tokens. A small slice is hostile: statements dstorage must refuse.
//!
//! Each statement comes in two texts. `user` is what is sent to both databases; `oracle` is
//! the same statement with dstorage's documented default order (docs/sql.md, "Guaranteed
//! ordering") written out as an ORDER BY, so plain SQLite running it gives the rows in the
//! order the engine must return them.

use dstorage_sql::Value;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A token of a generated statement, before spacing and keyword case are chosen.
#[derive(Clone, Debug)]
pub enum T {
    /// A keyword (its case is chosen when rendering).
    Kw(&'static str),
    /// An identifier, already quoted as chosen.
    Id(String),
    /// A literal (or any other text) written as is.
    Lit(String),
    /// Punctuation or an operator.
    P(&'static str),
    /// Tokens only the oracle text holds: dstorage's documented default order written out.
    Oracle(Vec<T>),
}

/// Column types dstorage allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    Text,
    Blob,
}

impl Ty {
    fn sql(self) -> &'static str {
        match self {
            Ty::Int => "INTEGER",
            Ty::Text => "TEXT",
            Ty::Blob => "BLOB",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
    pub nocase: bool,
}

#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub cols: Vec<Column>,
    /// Key columns (indexes into `cols`), in key order.
    pub pk: Vec<usize>,
    pub without_rowid: bool,
    /// (column, parent table) pairs: the column references the parent's one-column key.
    pub fks: Vec<(usize, usize)>,
}

impl Table {
    /// A lone INTEGER PRIMARY KEY of a rowid table: SQLite assigns it when NULL.
    fn rowid_alias(&self) -> bool {
        !self.without_rowid && self.pk.len() == 1 && self.cols[self.pk[0]].ty == Ty::Int
    }
}

#[derive(Clone, Debug)]
pub struct Index {
    pub name: String,
    pub table: usize,
}

/// The tables, indexes and view of one seed.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub tables: Vec<Table>,
    pub indexes: Vec<Index>,
    /// The view's name and result columns, once created.
    pub view: Option<(String, Vec<(String, Ty)>)>,
}

/// Which exotic forms a seed uses. Each is on for about a quarter of the seeds, so most seeds
/// also run without any one of them (a known bug in one form hides no other).
#[derive(Clone, Debug)]
pub struct Profile {
    pub hex: bool,
    pub underscore: bool,
    pub unary_chain: bool,
    pub blob_literal: bool,
    pub quoting: bool,
    pub comments: bool,
    pub keyword_case: bool,
    pub glob: bool,
    pub shifts: bool,
    pub is_literal: bool,
    pub isnull_keyword: bool,
    pub materialized: bool,
    pub indexed_by: bool,
    pub nocase: bool,
    pub nulls_order: bool,
    pub distinct_from: bool,
    pub odd_strings: bool,
}

impl Profile {
    fn random(rng: &mut StdRng) -> Profile {
        let mut on = || rng.gen_bool(0.25);
        Profile {
            hex: on(),
            underscore: on(),
            unary_chain: on(),
            blob_literal: on(),
            quoting: on(),
            comments: on(),
            keyword_case: on(),
            glob: on(),
            shifts: on(),
            is_literal: on(),
            isnull_keyword: on(),
            materialized: on(),
            indexed_by: on(),
            nocase: on(),
            nulls_order: on(),
            distinct_from: on(),
            odd_strings: on(),
        }
    }
}

/// What a statement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StmtKind {
    Read,
    Write,
    Ddl,
}

/// What dstorage must do with a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The same as SQLite: same rows (in the oracle's order), same changes, or an error
    /// where SQLite errs (a refusal of a documented kind is allowed too).
    Same,
    /// A refusal (any error): the construct, named, is not deterministic or not allowed.
    Refuse(&'static str),
}

/// One generated statement.
#[derive(Clone, Debug)]
pub struct Stmt {
    /// Its tokens; `T::Oracle` groups are left out of the user's text.
    pub tokens: Vec<T>,
    pub kind: StmtKind,
    /// Constructs used whose dstorage behaviour is still open (issue 10 item 5).
    pub tags: Vec<&'static str>,
    pub expect: Expect,
    /// Every result column has an alias the generator chose: compare column names too.
    pub named: bool,
    /// Seeds the spacing, comments and keyword case of the rendering.
    pub noise: u64,
    /// Values bound to the `?N` placeholders (a single statement only).
    pub params: Vec<Value>,
    /// For an UPDATE or DELETE ... RETURNING *: the key columns' positions in the result,
    /// whose order dstorage documents (primary-key order, by value).
    pub returning_key: Option<Vec<usize>>,
}

/// A FROM item in scope.
#[derive(Clone, Debug)]
struct Source {
    /// The name to qualify columns with (alias or table name), rendered.
    qual: String,
    cols: Vec<(String, Ty)>,
    /// Key columns when the item is a table (the default order uses them).
    key: Option<Vec<String>>,
    /// The index names usable with INDEXED BY (tables only).
    indexes: Vec<String>,
    /// The table's rendered name and whether it was aliased.
    table_name: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Scope {
    sources: Vec<Source>,
    /// Sources of enclosing queries (correlated references, always qualified).
    outer: Vec<Source>,
    /// Aggregates allowed here (select list, HAVING of a grouped or aggregate query).
    agg: bool,
    /// A join has USING, so `*` would merge columns.
    using: bool,
}

impl Scope {
    fn all(&self) -> impl Iterator<Item = &Source> {
        self.sources.iter().chain(self.outer.iter())
    }
}

/// A select's parts, so its default order can be added for the oracle.
struct Select {
    /// Everything before ORDER BY.
    body: Vec<T>,
    /// Result column names and types.
    cols: Vec<(String, Ty)>,
    user_order: Vec<Vec<T>>,
    /// dstorage's default order terms (appended after the user's), or None when the result
    /// is one row.
    default_order: Option<Vec<Vec<T>>>,
    limit: Vec<T>,
    /// Every result column was given an alias.
    named: bool,
}

impl Select {
    /// The tokens; the default order is an oracle-only group when `with_default`.
    fn tokens(&self, with_default: bool) -> Vec<T> {
        let mut out = self.body.clone();
        let user = !self.user_order.is_empty();
        if user {
            out.push(T::Kw("ORDER"));
            out.push(T::Kw("BY"));
            out.extend(comma(self.user_order.clone()));
        }
        if let (true, Some(d)) = (with_default, &self.default_order) {
            if !d.is_empty() {
                let mut extra = if user {
                    vec![T::P(",")]
                } else {
                    vec![T::Kw("ORDER"), T::Kw("BY")]
                };
                extra.extend(comma(d.clone()));
                out.push(T::Oracle(extra));
            }
        }
        out.extend(self.limit.iter().cloned());
        out
    }
}

fn comma(items: Vec<Vec<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(T::P(","));
        }
        out.extend(it);
    }
    out
}

fn paren(inner: Vec<T>) -> Vec<T> {
    let mut out = vec![T::P("(")];
    out.extend(inner);
    out.push(T::P(")"));
    out
}

fn call(name: &'static str, args: Vec<Vec<T>>) -> Vec<T> {
    let mut out = vec![T::Kw(name)];
    out.extend(paren(comma(args)));
    out
}

const TEXTS: &[&str] = &["a", "b", "ab", "abc", "B", "", "zz", "k1", "k2", "k3"];
const ODD_TEXTS: &[&str] = &[
    "it's",
    "x\ny",
    "a--b",
    "a/*b",
    "*/",
    "ü",
    "%",
    "_",
    "\\",
    "\"q\"",
    "[x]",
    "\n-- c\n",
    "' OR 1 --",
];
const BLOBS: &[&str] = &["", "00", "0a", "ff", "6162", "0A0b"];
const COL_NAMES: &[&str] = &["a", "b", "c", "n", "name", "grp", "v", "note"];
const ODD_COL_NAMES: &[&str] = &["key", "order", "Select", "col with space", "x\"y"];
/// Key values: small, so writes meet existing rows and conflicts happen.
const KEY_RANGE: i64 = 24;

/// A column name as a quoted identifier (the odd names hold a `"`: the hostile templates
/// once wrote `"x"y"`, a parse error, where they meant a rule to break).
fn quote_id(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// SQL text of a string literal.
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Render tokens as SQL: the user's text (`oracle` false) or the oracle's. `noise` seeds
/// the spacing, comments and keyword case when the profile asks for them; it never joins
/// two tokens without a separator (`- -1` must not become `--1`).
pub fn render(tokens: &[T], oracle: bool, noise: u64, profile: &Profile) -> String {
    let mut rng = StdRng::seed_from_u64(noise);
    let mut out = String::new();
    render_into(&mut out, tokens, oracle, &mut rng, profile);
    out
}

fn render_into(out: &mut String, tokens: &[T], oracle: bool, rng: &mut StdRng, profile: &Profile) {
    for t in tokens {
        let text: String = match t {
            T::Oracle(inner) => {
                if oracle {
                    render_into(out, inner, oracle, rng, profile);
                }
                continue;
            }
            T::Kw(k) => {
                if profile.keyword_case {
                    match rng.gen_range(0..3) {
                        0 => k.to_ascii_lowercase(),
                        1 => k
                            .chars()
                            .enumerate()
                            .map(|(i, c)| {
                                if i % 2 == 0 {
                                    c.to_ascii_uppercase()
                                } else {
                                    c.to_ascii_lowercase()
                                }
                            })
                            .collect(),
                        _ => k.to_string(),
                    }
                } else {
                    k.to_string()
                }
            }
            T::Id(s) | T::Lit(s) => s.clone(),
            T::P(p) => p.to_string(),
        };
        if !out.is_empty() {
            let sep = if profile.comments && rng.gen_bool(0.12) {
                match rng.gen_range(0..6) {
                    0 => " /* c */ ",
                    1 => " -- c\n",
                    2 => "/**/",
                    3 => "\n\t",
                    4 => "/* '\n */",
                    _ => "--\n",
                }
            } else if profile.comments && rng.gen_bool(0.05) {
                "\n  "
            } else {
                " "
            };
            // A separator that starts a line comment must not touch a `-` before it:
            // `-` then `--\n` is `---\n`, a comment that swallows the minus.
            if sep.starts_with('-') && out.ends_with('-') {
                out.push(' ');
            }
            out.push_str(sep);
        }
        out.push_str(&text);
    }
}

/// The generator of one seed.
pub struct SqlGen {
    rng: StdRng,
    pub profile: Profile,
    pub schema: Schema,
    alias_counter: u32,
    /// Keys of the rows inserted at setup, per table (single-column keys only), for
    /// foreign-key values that exist.
    setup_keys: Vec<Vec<Vec<T>>>,
    /// Tags of the statement being generated (see `Stmt::tags`).
    tags: Vec<&'static str>,
    /// Literals of the statement being generated may become `?N` placeholders.
    params_on: bool,
    /// The values of those placeholders, in number order.
    params: Vec<Value>,
    /// Set by `returning` for `RETURNING *` (see `Stmt::returning_key`).
    returning_star: bool,
}

impl SqlGen {
    pub fn new(seed: u64) -> SqlGen {
        let mut rng = StdRng::seed_from_u64(seed);
        let profile = Profile::random(&mut rng);
        SqlGen {
            rng,
            profile,
            schema: Schema::default(),
            alias_counter: 0,
            setup_keys: Vec::new(),
            tags: Vec::new(),
            params_on: false,
            params: Vec::new(),
            returning_star: false,
        }
    }

    /// A generator whose profile uses none of the exotic forms (comments and quoting
    /// aside): for campaigns about what runs, not how it is spelled.
    pub fn plain(seed: u64) -> SqlGen {
        let mut g = SqlGen::new(seed);
        let comments = g.profile.comments;
        let quoting = g.profile.quoting;
        g.profile = Profile {
            hex: false,
            underscore: false,
            unary_chain: false,
            blob_literal: false,
            quoting,
            comments,
            keyword_case: false,
            glob: false,
            shifts: false,
            is_literal: false,
            isnull_keyword: false,
            materialized: false,
            indexed_by: false,
            nocase: false,
            nulls_order: false,
            distinct_from: false,
            odd_strings: false,
        };
        g
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn pick<X: Clone>(&mut self, xs: &[X]) -> X {
        xs.choose(&mut self.rng).expect("non-empty").clone()
    }

    fn fresh_alias(&mut self) -> String {
        self.alias_counter += 1;
        format!("q{}", self.alias_counter)
    }

    /// An identifier, quoted one of SQLite's ways when the profile says so (always when it
    /// must be).
    fn ident(&mut self, name: &str) -> String {
        let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !["order", "select", "key"].contains(&name.to_ascii_lowercase().as_str());
        if plain && !(self.profile.quoting && self.chance(0.4)) {
            if self.profile.quoting && self.chance(0.3) {
                return name.to_ascii_uppercase();
            }
            return name.to_owned();
        }
        match self.rng.gen_range(0..3) {
            0 if !name.contains(']') => format!("[{name}]"),
            1 => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    // ---------------------------------------------------------------- literals

    /// A `?N` placeholder bound to `v`, when this statement uses parameters (now and then).
    fn placeholder(&mut self, v: Value) -> Option<Vec<T>> {
        if !self.params_on || !self.chance(0.25) {
            return None;
        }
        self.params.push(v);
        Some(vec![T::Lit(format!("?{}", self.params.len()))])
    }

    /// Tokens of an integer literal of value `v`, in one of the forms SQLite reads.
    fn int_lit(&mut self, v: i64) -> Vec<T> {
        if let Some(p) = self.placeholder(Value::Integer(v)) {
            return p;
        }
        let mut out = Vec::new();
        if self.profile.unary_chain && self.chance(0.3) {
            // A chain whose value is v: - -v, -+-v, ~~v, +v.
            match self.rng.gen_range(0..4) {
                0 => out.extend([T::P("-"), T::P("-")]),
                1 => out.extend([T::P("-"), T::P("+"), T::P("-")]),
                2 => out.extend([T::P("~"), T::P("~")]),
                _ => out.push(T::P("+")),
            }
        }
        if v < 0 {
            out.push(T::P("-"));
        }
        let a = v.unsigned_abs();
        let text = if self.profile.hex && a <= i64::MAX as u64 && self.chance(0.3) {
            if self.chance(0.5) {
                format!("0x{a:x}")
            } else {
                format!("0X{a:X}")
            }
        } else if self.profile.underscore && a >= 10 && self.chance(0.4) {
            let s = a.to_string();
            let cut = self.rng.gen_range(1..s.len());
            format!("{}_{}", &s[..cut], &s[cut..])
        } else {
            a.to_string()
        };
        out.push(T::Lit(text));
        out
    }

    fn small_int(&mut self) -> i64 {
        match self.rng.gen_range(0..100) {
            0..=79 => self.rng.gen_range(-3..=12),
            80..=93 => self.pick(&[16, 100, 255, 1000, 4096, 65535, 1_000_000]),
            94..=98 => self.rng.gen_range(-100..100) * 7,
            _ => self.pick(&[i64::MAX, i64::MIN + 1, 4_294_967_296]),
        }
    }

    fn text_value(&mut self) -> String {
        if self.profile.odd_strings && self.chance(0.3) {
            self.pick(ODD_TEXTS).to_owned()
        } else {
            self.pick(TEXTS).to_owned()
        }
    }

    fn text_lit(&mut self) -> Vec<T> {
        let v = self.text_value();
        if let Some(p) = self.placeholder(Value::Text(v.clone())) {
            return p;
        }
        vec![T::Lit(quote_str(&v))]
    }

    fn blob_lit(&mut self) -> Vec<T> {
        let hex = self.pick(BLOBS);
        let bytes = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        if let Some(p) = self.placeholder(Value::Blob(bytes)) {
            return p;
        }
        if self.profile.blob_literal || self.chance(0.5) {
            let x = if self.chance(0.5) { "X" } else { "x" };
            vec![T::Lit(format!("{x}'{hex}'"))]
        } else {
            call("unhex", vec![vec![T::Lit(quote_str(hex))]])
        }
    }

    fn lit(&mut self, ty: Ty) -> Vec<T> {
        if self.chance(0.06) {
            if let Some(p) = self.placeholder(Value::Null) {
                return p;
            }
            return vec![T::Kw("NULL")];
        }
        match ty {
            Ty::Int => {
                let v = self.small_int();
                self.int_lit(v)
            }
            Ty::Text => self.text_lit(),
            Ty::Blob => self.blob_lit(),
        }
    }

    fn key_lit(&mut self, ty: Ty) -> Vec<T> {
        let k = self.rng.gen_range(0..KEY_RANGE);
        match ty {
            Ty::Int => self.int_lit(k),
            _ => vec![T::Lit(format!("'k{k}'"))],
        }
    }

    // ---------------------------------------------------------------- schema

    /// Statements creating the schema, its indexes and view, and rows for every table.
    pub fn schema_statements(&mut self) -> Vec<Stmt> {
        let mut out = Vec::new();
        let ntables = self.rng.gen_range(2..=4);
        for ti in 0..ntables {
            let table = self.table(ti);
            self.schema.tables.push(table);
            out.push(self.create_table(ti));
        }
        for ti in 0..ntables {
            if self.chance(0.6) {
                out.push(self.create_index(ti));
            }
        }
        for ti in 0..ntables {
            let rows = self.rng.gen_range(4..=9);
            out.push(self.setup_rows(ti, rows));
        }
        if self.chance(0.5) {
            out.push(self.create_view());
        }
        out
    }

    fn table(&mut self, ti: usize) -> Table {
        let name = format!("t{ti}");
        let ncols = self.rng.gen_range(2..=5);
        let mut cols: Vec<Column> = Vec::new();
        let mut names: Vec<&str> = COL_NAMES.to_vec();
        names.shuffle(&mut self.rng);
        for (i, base) in names.iter().enumerate().take(ncols) {
            let base = if self.profile.quoting && self.chance(0.15) {
                self.pick(ODD_COL_NAMES)
            } else {
                base
            };
            let name = if cols.iter().any(|c| c.name.eq_ignore_ascii_case(base)) {
                format!("{base}{i}")
            } else {
                base.to_owned()
            };
            let ty = self.pick(&[Ty::Int, Ty::Int, Ty::Text, Ty::Text, Ty::Blob]);
            // A column collation other than BINARY is refused (docs/sql.md, "Tables"): the
            // hostile slice has it.
            let nocase = false;
            cols.push(Column { name, ty, nocase });
        }
        let without_rowid = self.chance(0.3);
        let pk = if self.chance(0.3) {
            vec![0, 1]
        } else {
            vec![0]
        };
        for &k in &pk {
            if cols[k].ty == Ty::Blob {
                cols[k].ty = Ty::Int;
            }
            // Keys compare by BINARY: a NOCASE key would make 'a' and 'A' one key.
            cols[k].nocase = false;
        }
        let mut fks = Vec::new();
        if ti > 0 && self.chance(0.5) {
            let parent = self.rng.gen_range(0..ti);
            let p: &Table = &self.schema.tables[parent];
            if p.pk.len() == 1 {
                let pty = p.cols[p.pk[0]].ty;
                if let Some(c) = (0..cols.len()).find(|c| !pk.contains(c)) {
                    cols[c].ty = pty;
                    cols[c].nocase = false;
                    fks.push((c, parent));
                }
            }
        }
        Table {
            name,
            cols,
            pk,
            without_rowid,
            fks,
        }
    }

    fn create_table(&mut self, ti: usize) -> Stmt {
        let t = self.schema.tables[ti].clone();
        let mut toks = vec![T::Kw("CREATE"), T::Kw("TABLE")];
        if self.chance(0.2) {
            toks.extend([T::Kw("IF"), T::Kw("NOT"), T::Kw("EXISTS")]);
        }
        toks.push(T::Id(self.ident(&t.name)));
        let mut defs = Vec::new();
        let inline_pk = t.pk.len() == 1 && self.chance(0.6);
        for (i, c) in t.cols.iter().enumerate() {
            let mut d = vec![T::Id(self.ident(&c.name)), T::Kw(c.ty.sql())];
            if c.nocase {
                d.extend([T::Kw("COLLATE"), T::Kw("NOCASE")]);
            }
            if t.pk.contains(&i) {
                // dstorage adds NOT NULL to key columns of rowid tables (docs/sql.md); the
                // user writes it so plain SQLite has the same table.
                if !(t.rowid_alias() && inline_pk) {
                    d.extend([T::Kw("NOT"), T::Kw("NULL")]);
                }
                if inline_pk {
                    d.extend([T::Kw("PRIMARY"), T::Kw("KEY")]);
                }
            } else if self.chance(0.15) {
                d.push(T::Kw("DEFAULT"));
                let v = self.lit(c.ty);
                if v.len() == 1 {
                    d.extend(v);
                } else {
                    d.extend(paren(v));
                }
            }
            if let Some(&(_, parent)) = t.fks.iter().find(|(fc, _)| *fc == i) {
                let p = self.schema.tables[parent].clone();
                d.push(T::Kw("REFERENCES"));
                d.push(T::Id(self.ident(&p.name)));
                d.extend(paren(vec![T::Id(self.ident(&p.cols[p.pk[0]].name))]));
                match self.rng.gen_range(0..4) {
                    0 => d.extend([T::Kw("ON"), T::Kw("DELETE"), T::Kw("CASCADE")]),
                    1 => d.extend([T::Kw("ON"), T::Kw("DELETE"), T::Kw("SET"), T::Kw("NULL")]),
                    2 => d.extend([T::Kw("ON"), T::Kw("UPDATE"), T::Kw("CASCADE")]),
                    _ => {}
                }
            }
            defs.push(d);
        }
        if !inline_pk {
            let mut d = vec![T::Kw("PRIMARY"), T::Kw("KEY")];
            let names: Vec<Vec<T>> =
                t.pk.iter()
                    .map(|&k| vec![T::Id(self.ident(&t.cols[k].name))])
                    .collect();
            d.extend(paren(comma(names)));
            defs.push(d);
        }
        let last = t.cols.len() - 1;
        if t.cols[last].ty == Ty::Int && !t.pk.contains(&last) && self.chance(0.2) {
            let mut d = vec![T::Kw("CHECK")];
            d.extend(paren(vec![
                T::Id(self.ident(&t.cols[last].name)),
                T::P("<>"),
                T::Lit("12345".into()),
            ]));
            defs.push(d);
        }
        toks.extend(paren(comma(defs)));
        if t.without_rowid {
            // (dstorage also takes `WITHOUT ROWID STRICT`, which SQLite does not.)
            if self.chance(0.5) {
                toks.extend([T::Kw("STRICT"), T::P(","), T::Kw("WITHOUT"), T::Kw("ROWID")]);
            } else {
                toks.extend([T::Kw("WITHOUT"), T::Kw("ROWID"), T::P(","), T::Kw("STRICT")]);
            }
        } else {
            toks.push(T::Kw("STRICT"));
        }
        self.stmt(toks, StmtKind::Ddl)
    }

    fn create_index(&mut self, ti: usize) -> Stmt {
        let t = self.schema.tables[ti].clone();
        let name = format!("ix{}", self.alias_counter);
        self.alias_counter += 1;
        self.schema.indexes.push(Index {
            name: name.clone(),
            table: ti,
        });
        let mut toks = vec![T::Kw("CREATE")];
        let unique = self.chance(0.15);
        if unique {
            toks.push(T::Kw("UNIQUE"));
        }
        toks.extend([T::Kw("INDEX"), T::Id(self.ident(&name)), T::Kw("ON")]);
        toks.push(T::Id(self.ident(&t.name)));
        let c = self.rng.gen_range(0..t.cols.len());
        let mut cols = vec![vec![T::Id(self.ident(&t.cols[c].name))]];
        if self.chance(0.5) {
            cols[0].push(T::Kw("DESC"));
        }
        if unique {
            // Unique over the key too, so inserts do not all fail.
            for &k in &t.pk {
                cols.push(vec![T::Id(self.ident(&t.cols[k].name))]);
            }
        }
        toks.extend(paren(comma(cols)));
        if self.chance(0.15) {
            toks.push(T::Kw("WHERE"));
            toks.push(T::Id(self.ident(&t.cols[c].name)));
            toks.extend([T::Kw("IS"), T::Kw("NOT"), T::Kw("NULL")]);
        }
        self.stmt(toks, StmtKind::Ddl)
    }

    fn create_view(&mut self) -> Stmt {
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        let t = self.schema.tables[ti].clone();
        let mut cols = Vec::new();
        let mut toks = vec![T::Kw("CREATE"), T::Kw("VIEW"), T::Id(self.ident("v0"))];
        toks.extend([T::Kw("AS"), T::Kw("SELECT")]);
        let mut items = Vec::new();
        for (i, c) in t.cols.iter().enumerate().take(3) {
            let alias = format!("vc{i}");
            items.push(vec![
                T::Id(self.ident(&c.name)),
                T::Kw("AS"),
                T::Id(alias.clone()),
            ]);
            cols.push((alias, c.ty));
        }
        toks.extend(comma(items));
        let src = self.table_source(ti, false);
        toks.extend([T::Kw("FROM"), T::Id(src.qual.clone())]);
        let scope = Scope {
            sources: vec![src],
            ..Default::default()
        };
        if self.chance(0.5) {
            toks.push(T::Kw("WHERE"));
            toks.extend(self.bool_expr(&scope, 2));
        }
        self.schema.view = Some(("v0".into(), cols));
        self.stmt(toks, StmtKind::Ddl)
    }

    /// One INSERT of `rows` rows with distinct keys and existing parents.
    fn setup_rows(&mut self, ti: usize, rows: usize) -> Stmt {
        let t = self.schema.tables[ti].clone();
        let mut used = std::collections::BTreeSet::new();
        let mut values = Vec::new();
        let mut keys = Vec::new();
        for _ in 0..rows {
            let k: Vec<i64> =
                t.pk.iter()
                    .map(|_| self.rng.gen_range(0..KEY_RANGE))
                    .collect();
            if !used.insert(k.clone()) {
                continue;
            }
            let mut row = Vec::new();
            for (i, c) in t.cols.iter().enumerate() {
                if let Some(pos) = t.pk.iter().position(|&p| p == i) {
                    let v = k[pos];
                    let lit = match c.ty {
                        Ty::Int => self.int_lit(v),
                        _ => vec![T::Lit(format!("'k{v}'"))],
                    };
                    if t.pk.len() == 1 {
                        keys.push(lit.clone());
                    }
                    row.push(lit);
                } else if let Some(&(_, parent)) = t.fks.iter().find(|(fc, _)| *fc == i) {
                    let pk = self.setup_keys.get(parent).cloned().unwrap_or_default();
                    if pk.is_empty() || self.chance(0.15) {
                        row.push(vec![T::Kw("NULL")]);
                    } else {
                        row.push(self.pick(&pk));
                    }
                } else {
                    row.push(self.lit(c.ty));
                }
            }
            values.push(paren(comma(row)));
        }
        while self.setup_keys.len() <= ti {
            self.setup_keys.push(Vec::new());
        }
        self.setup_keys[ti] = keys;
        let mut toks = vec![T::Kw("INSERT"), T::Kw("INTO"), T::Id(self.ident(&t.name))];
        toks.push(T::Kw("VALUES"));
        toks.extend(comma(values));
        self.stmt(toks, StmtKind::Write)
    }

    fn stmt(&mut self, tokens: Vec<T>, kind: StmtKind) -> Stmt {
        Stmt {
            tokens,
            kind,
            tags: Vec::new(),
            expect: Expect::Same,
            named: false,
            noise: self.rng.gen(),
            params: Vec::new(),
            returning_key: None,
        }
    }

    // ---------------------------------------------------------------- statements

    /// The next statement of the random stream (after the schema).
    pub fn statement(&mut self) -> Stmt {
        if self.chance(0.05) {
            // Two statements in one call: the engine runs them as one transaction and
            // returns the last one's rows; the split must be SQLite's.
            let mut a = self.one_statement();
            let b = self.one_statement();
            // (Parameters bind to a single statement only.)
            if a.expect == Expect::Same
                && b.expect == Expect::Same
                && a.params.is_empty()
                && b.params.is_empty()
            {
                a.tokens.push(T::P(";"));
                a.tokens.extend(b.tokens);
                a.tags.extend(b.tags);
                a.tags.push("several statements");
                a.named = b.named;
                a.returning_key = b.returning_key;
                a.kind = match (a.kind, b.kind) {
                    (StmtKind::Read, StmtKind::Read) => StmtKind::Read,
                    (StmtKind::Ddl, _) | (_, StmtKind::Ddl) => StmtKind::Ddl,
                    _ => StmtKind::Write,
                };
                return a;
            }
            return b;
        }
        self.one_statement()
    }

    fn one_statement(&mut self) -> Stmt {
        self.tags.clear();
        self.params.clear();
        self.returning_star = false;
        let r = self.rng.gen_range(0..100);
        // Placeholders in reads and writes (DDL takes none).
        self.params_on = r < 89 && self.chance(0.15);
        let mut s = match r {
            0..=51 => self.select_statement(),
            52..=66 => self.insert_values(),
            67..=71 => self.insert_select(),
            72..=82 => self.update(),
            83..=88 => self.delete(),
            89..=90 => self.index_ddl(),
            91..=92 => self.pragma(),
            _ => self.hostile(),
        };
        s.tags.extend(self.tags.iter().copied());
        s.params = std::mem::take(&mut self.params);
        self.params_on = false;
        s
    }
}

// -------------------------------------------------------------------- queries
impl SqlGen {
    fn select_statement(&mut self) -> Stmt {
        let sel = self.select(&Scope::default(), 0);
        let mut s = self.stmt(sel.tokens(true), StmtKind::Read);
        s.named = sel.named;
        s
    }

    fn table_source(&mut self, ti: usize, alias: bool) -> Source {
        let t = self.schema.tables[ti].clone();
        let table_name = self.ident(&t.name);
        let qual = if alias {
            self.fresh_alias()
        } else {
            table_name.clone()
        };
        Source {
            cols: t.cols.iter().map(|c| (self.ident(&c.name), c.ty)).collect(),
            key: Some(t.pk.iter().map(|&k| self.ident(&t.cols[k].name)).collect()),
            indexes: self
                .schema
                .indexes
                .iter()
                .filter(|i| i.table == ti)
                .map(|i| i.name.clone())
                .collect(),
            qual,
            table_name: Some(table_name),
        }
    }

    /// Tokens naming a table source in a FROM clause.
    fn table_in_from(&mut self, src: &Source) -> Vec<T> {
        let name = src.table_name.clone().expect("a table");
        let mut out = vec![T::Id(name.clone())];
        if src.qual != name {
            if self.chance(0.5) {
                out.push(T::Kw("AS"));
            }
            out.push(T::Id(src.qual.clone()));
        }
        if self.profile.indexed_by && !src.indexes.is_empty() && self.chance(0.3) {
            let ix = self.pick(&src.indexes);
            let ix = self.ident(&ix);
            out.extend([T::Kw("INDEXED"), T::Kw("BY"), T::Id(ix)]);
        } else if self.profile.indexed_by && src.key.is_some() && self.chance(0.05) {
            out.extend([T::Kw("NOT"), T::Kw("INDEXED")]);
        }
        out
    }

    /// A FROM clause of up to `max` items joined, and the scope it makes.
    fn make_from_clause(
        &mut self,
        outer: &Scope,
        ctes: &[Source],
        depth: u32,
        max: usize,
    ) -> (Vec<T>, Scope) {
        let n = match self.rng.gen_range(0..100) {
            0..=54 => 1,
            55..=89 => 2,
            _ => 3,
        }
        .min(max);
        let mut toks = vec![T::Kw("FROM")];
        let mut scope = Scope {
            sources: Vec::new(),
            outer: outer.all().cloned().collect(),
            ..Default::default()
        };
        for i in 0..n {
            let (item, src) = self.make_from_item(&scope, ctes, depth, i == 0 && depth == 0);
            if i > 0 {
                let op: &[&'static str] = self.pick(&[
                    &[","][..],
                    &["JOIN"][..],
                    &["INNER", "JOIN"][..],
                    &["LEFT", "JOIN"][..],
                    &["LEFT", "OUTER", "JOIN"][..],
                    &["CROSS", "JOIN"][..],
                ]);
                for k in op {
                    toks.push(if *k == "," { T::P(",") } else { T::Kw(k) });
                }
                toks.extend(item);
                let conditional = !matches!(op[0], "," | "CROSS");
                if conditional {
                    let common: Vec<(String, Ty)> = if n == 2 {
                        src.cols
                            .iter()
                            .filter(|(c, ty)| {
                                scope.sources[0]
                                    .cols
                                    .iter()
                                    .any(|(d, dty)| d.eq_ignore_ascii_case(c) && dty == ty)
                            })
                            .cloned()
                            .collect()
                    } else {
                        Vec::new()
                    };
                    scope.sources.push(src);
                    if !common.is_empty() && self.chance(0.3) {
                        let (c, _) = self.pick(&common);
                        scope.using = true;
                        toks.push(T::Kw("USING"));
                        toks.extend(paren(vec![T::Id(c)]));
                    } else {
                        toks.push(T::Kw("ON"));
                        toks.extend(self.join_condition(&scope, depth));
                    }
                    continue;
                }
            } else {
                toks.extend(item);
            }
            scope.sources.push(src);
        }
        (toks, scope)
    }

    /// An equality between the new source and an earlier one where types allow, else any
    /// condition.
    fn join_condition(&mut self, scope: &Scope, depth: u32) -> Vec<T> {
        let last = scope.sources.last().expect("source").clone();
        let earlier = scope.sources[..scope.sources.len() - 1].to_vec();
        if self.chance(0.8) {
            for _ in 0..4 {
                let e = self.pick(&earlier);
                let (c, ty) = self.pick(&last.cols);
                let same: Vec<_> = e.cols.iter().filter(|(_, t)| *t == ty).cloned().collect();
                if let Some((d, _)) = same.choose(&mut self.rng).cloned() {
                    let mut out = vec![
                        T::Id(last.qual.clone()),
                        T::P("."),
                        T::Id(c),
                        T::P("="),
                        T::Id(e.qual.clone()),
                        T::P("."),
                        T::Id(d),
                    ];
                    if self.chance(0.2) {
                        out.push(T::Kw("AND"));
                        out.extend(self.bool_expr(scope, depth + 2));
                    }
                    return out;
                }
            }
        }
        self.bool_expr(scope, depth + 1)
    }

    fn make_from_item(
        &mut self,
        scope: &Scope,
        ctes: &[Source],
        depth: u32,
        bare_ok: bool,
    ) -> (Vec<T>, Source) {
        let r = self.rng.gen_range(0..100);
        if r < 12 && depth < 2 {
            // A subquery in FROM.
            let sel = self.select(scope, depth + 1);
            let alias = self.fresh_alias();
            let mut toks = paren(sel.tokens(sel.has_limit()));
            if self.chance(0.6) {
                toks.push(T::Kw("AS"));
            }
            toks.push(T::Id(alias.clone()));
            let src = Source {
                qual: alias,
                cols: sel.cols.clone(),
                key: None,
                indexes: vec![],
                table_name: None,
            };
            return (toks, src);
        }
        if r < 30 && !ctes.is_empty() {
            let c = self.pick(ctes);
            let mut src = c.clone();
            let mut toks = vec![T::Id(c.qual.clone())];
            if !bare_ok || self.chance(0.5) {
                let alias = self.fresh_alias();
                toks.extend([T::Kw("AS"), T::Id(alias.clone())]);
                src.qual = alias;
            }
            return (toks, src);
        }
        if r < 38 {
            if let Some((name, cols)) = self.schema.view.clone() {
                let alias = self.fresh_alias();
                let toks = vec![T::Id(self.ident(&name)), T::Kw("AS"), T::Id(alias.clone())];
                let src = Source {
                    qual: alias,
                    cols,
                    key: None,
                    indexes: vec![],
                    table_name: None,
                };
                return (toks, src);
            }
        }
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        let alias = !bare_ok || self.chance(0.5);
        let src = self.table_source(ti, alias);
        let toks = self.table_in_from(&src);
        (toks, src)
    }

    /// A whole SELECT: WITH, a compound or a core, ORDER BY, LIMIT.
    fn select(&mut self, outer: &Scope, depth: u32) -> Select {
        let mut with = Vec::new();
        let mut ctes: Vec<Source> = Vec::new();
        if depth == 0 && self.chance(0.18) {
            let (toks, srcs) = self.with_clause(depth);
            with = toks;
            ctes = srcs;
        }
        let compound = depth < 2 && self.chance(0.15);
        let mut sel = if compound {
            self.compound(outer, &ctes, depth)
        } else {
            self.core(outer, &ctes, depth)
        };
        with.append(&mut sel.body);
        sel.body = with;
        if self.chance(if depth == 0 { 0.45 } else { 0.2 }) && !sel.cols.is_empty() {
            let n = self.rng.gen_range(1..=sel.cols.len().min(2));
            for _ in 0..n {
                let i = self.rng.gen_range(0..sel.cols.len());
                // By number or by alias (an expression would be another column's term).
                let mut term = if self.chance(0.6) || !sel.named {
                    vec![T::Lit((i + 1).to_string())]
                } else {
                    vec![T::Id(sel.cols[i].0.clone())]
                };
                if self.chance(0.4) {
                    term.push(T::Kw(if self.chance(0.5) { "DESC" } else { "ASC" }));
                }
                if self.profile.nulls_order && self.chance(0.3) {
                    term.push(T::Kw("NULLS"));
                    term.push(T::Kw(if self.chance(0.5) { "FIRST" } else { "LAST" }));
                }
                sel.user_order.push(term);
            }
        }
        if self.chance(if depth == 0 { 0.2 } else { 0.15 }) {
            let n = self.rng.gen_range(0..6);
            let mut lim = vec![T::Kw("LIMIT")];
            match self.rng.gen_range(0..3) {
                0 => lim.extend(self.int_lit(n)),
                1 => {
                    lim.extend(self.int_lit(n));
                    lim.push(T::Kw("OFFSET"));
                    let o = self.rng.gen_range(0..3);
                    lim.extend(self.int_lit(o));
                }
                _ => {
                    let o = self.rng.gen_range(0..3);
                    lim.extend(self.int_lit(o));
                    lim.push(T::P(","));
                    lim.extend(self.int_lit(n));
                }
            }
            sel.limit = lim;
        }
        sel
    }

    fn with_clause(&mut self, depth: u32) -> (Vec<T>, Vec<Source>) {
        let mut toks = vec![T::Kw("WITH")];
        let recursive = self.chance(0.4);
        if recursive {
            toks.push(T::Kw("RECURSIVE"));
        }
        let mut srcs = Vec::new();
        let n = self.rng.gen_range(1..=2);
        let mut defs = Vec::new();
        for i in 0..n {
            let name = format!("c{i}");
            let mut d = vec![T::Id(self.ident(&name))];
            let cols: Vec<(String, Ty)>;
            let body: Vec<T>;
            if recursive && i == 0 {
                // A bounded recursion: counts from a start up to at most 7 more.
                let start = self.rng.gen_range(-2..4);
                let stop = start + self.rng.gen_range(0..8);
                cols = vec![("n".into(), Ty::Int), ("s".into(), Ty::Text)];
                let mut b = vec![T::Kw("SELECT")];
                b.extend(self.int_lit(start));
                b.push(T::P(","));
                b.extend(self.text_lit());
                b.extend([T::Kw("UNION"), T::Kw("ALL"), T::Kw("SELECT")]);
                b.extend([
                    T::Id("n".into()),
                    T::P("+"),
                    T::Lit("1".into()),
                    T::P(","),
                    T::Id("s".into()),
                    T::P("||"),
                    T::Lit("'x'".into()),
                    T::Kw("FROM"),
                    T::Id(self.ident(&name)),
                    T::Kw("WHERE"),
                    T::Id("n".into()),
                    T::P("<"),
                ]);
                b.extend(self.int_lit(stop));
                body = b;
            } else {
                let sel = self.select(&Scope::default(), depth + 1);
                cols = sel
                    .cols
                    .iter()
                    .enumerate()
                    .map(|(j, (_, ty))| (format!("x{j}"), *ty))
                    .collect();
                body = sel.tokens(sel.has_limit());
            }
            d.extend(paren(comma(
                cols.iter().map(|(c, _)| vec![T::Id(c.clone())]).collect(),
            )));
            d.push(T::Kw("AS"));
            if self.profile.materialized && self.chance(0.4) {
                if self.chance(0.5) {
                    d.push(T::Kw("NOT"));
                }
                d.push(T::Kw("MATERIALIZED"));
            }
            d.extend(paren(body));
            defs.push(d);
            srcs.push(Source {
                qual: name.clone(),
                cols,
                key: None,
                indexes: vec![],
                table_name: Some(name),
            });
        }
        toks.extend(comma(defs));
        (toks, srcs)
    }

    fn compound(&mut self, outer: &Scope, ctes: &[Source], depth: u32) -> Select {
        let first = self.core(outer, ctes, depth + 1);
        let types: Vec<Ty> = first.cols.iter().map(|c| c.1).collect();
        let mut body = first.body;
        let n = self.rng.gen_range(1..=2);
        for _ in 0..n {
            let op: &[&'static str] = self.pick(&[
                &["UNION"][..],
                &["UNION", "ALL"][..],
                &["INTERSECT"][..],
                &["EXCEPT"][..],
            ]);
            body.extend(op.iter().map(|k| T::Kw(k)));
            if self.chance(0.25) {
                // A VALUES list as a compound member.
                body.push(T::Kw("VALUES"));
                let rows = self.rng.gen_range(1..=3);
                let mut rs = Vec::new();
                for _ in 0..rows {
                    let vals = types.iter().map(|&t| self.lit(t)).collect();
                    rs.push(paren(comma(vals)));
                }
                body.extend(comma(rs));
            } else {
                body.extend(self.core_of_types(outer, ctes, depth + 1, &types));
            }
        }
        let all = (1..=first.cols.len())
            .map(|i| vec![T::Lit(i.to_string())])
            .collect();
        Select {
            body,
            cols: first.cols,
            user_order: vec![],
            default_order: Some(all),
            limit: vec![],
            named: first.named,
        }
    }

    /// A plain SELECT core returning columns of the given types (a compound member).
    fn core_of_types(
        &mut self,
        outer: &Scope,
        ctes: &[Source],
        depth: u32,
        types: &[Ty],
    ) -> Vec<T> {
        let (from, scope) = self.make_from_clause(outer, ctes, depth, 1);
        let mut out = vec![T::Kw("SELECT")];
        let items = types
            .iter()
            .map(|&t| self.expr(t, &scope, depth + 1))
            .collect();
        out.extend(comma(items));
        out.extend(from);
        if self.chance(0.4) {
            out.push(T::Kw("WHERE"));
            out.extend(self.bool_expr(&scope, depth + 1));
        }
        out
    }

    /// A SELECT core (no ORDER BY / LIMIT) with its default order.
    fn core(&mut self, outer: &Scope, ctes: &[Source], depth: u32) -> Select {
        let no_from = self.chance(0.05);
        let (from, mut scope) = if no_from {
            (
                Vec::new(),
                Scope {
                    outer: outer.all().cloned().collect(),
                    ..Default::default()
                },
            )
        } else {
            self.make_from_clause(outer, ctes, depth, if depth == 0 { 3 } else { 2 })
        };
        let shape = if no_from {
            99
        } else {
            self.rng.gen_range(0..100)
        };
        let mut body = vec![T::Kw("SELECT")];
        let mut cols: Vec<(String, Ty)> = Vec::new();
        let mut items = Vec::new();
        let mut named = true;
        let mut tail = Vec::new();
        let default_order: Option<Vec<Vec<T>>>;
        let all_cols =
            |n: usize| -> Vec<Vec<T>> { (1..=n).map(|i| vec![T::Lit(i.to_string())]).collect() };
        match shape {
            0..=13 => {
                // GROUP BY with aggregates.
                let ngroup = self.rng.gen_range(1..=2);
                let mut groups = Vec::new();
                for _ in 0..ngroup {
                    let (toks, ty) = self
                        .any_col(&scope)
                        .unwrap_or((vec![T::Lit("1".into())], Ty::Int));
                    groups.push(toks.clone());
                    let alias = format!("g{}", cols.len());
                    items.push(self.aliased(toks, &alias, &mut named));
                    cols.push((alias, ty));
                }
                scope.agg = true;
                for _ in 0..self.rng.gen_range(1..=2) {
                    let (toks, ty) = self.aggregate(&scope, depth);
                    let alias = format!("r{}", cols.len());
                    items.push(self.aliased(toks, &alias, &mut named));
                    cols.push((alias, ty));
                }
                tail.extend([T::Kw("GROUP"), T::Kw("BY")]);
                tail.extend(comma(groups));
                if self.chance(0.35) {
                    tail.push(T::Kw("HAVING"));
                    tail.extend(self.bool_expr(&scope, depth + 1));
                }
                default_order = Some(all_cols(cols.len()));
            }
            14..=21 => {
                // Aggregates over everything: one row.
                scope.agg = true;
                for _ in 0..self.rng.gen_range(1..=3) {
                    let (toks, ty) = self.aggregate(&scope, depth);
                    let alias = format!("r{}", cols.len());
                    items.push(self.aliased(toks, &alias, &mut named));
                    cols.push((alias, ty));
                }
                default_order = None;
            }
            _ => {
                let distinct = shape < 30;
                if distinct {
                    body.push(T::Kw("DISTINCT"));
                } else if self.chance(0.05) {
                    body.push(T::Kw("ALL"));
                }
                if !no_from && !distinct && !scope.using && self.chance(0.12) {
                    // `*` or `alias.*`.
                    named = false;
                    if scope.sources.len() > 1 && self.chance(0.5) {
                        let s = self.pick(&scope.sources);
                        items.push(vec![T::Id(s.qual.clone()), T::P("."), T::P("*")]);
                        cols.extend(s.cols.iter().cloned());
                    } else {
                        items.push(vec![T::P("*")]);
                        for s in &scope.sources {
                            cols.extend(s.cols.iter().cloned());
                        }
                    }
                } else {
                    for _ in 0..self.rng.gen_range(1..=4) {
                        let ty = self.any_type();
                        let toks = if self.chance(0.5) {
                            self.col_ref(ty, &scope).unwrap_or_else(|| self.lit(ty))
                        } else {
                            self.expr(ty, &scope, depth + 1)
                        };
                        let alias = format!("r{}", cols.len());
                        items.push(self.aliased(toks, &alias, &mut named));
                        cols.push((alias, ty));
                    }
                }
                let keys: Option<Vec<Vec<T>>> = scope
                    .sources
                    .iter()
                    .map(|s| {
                        s.key.as_ref().map(|k| {
                            k.iter()
                                .map(|c| vec![T::Id(s.qual.clone()), T::P("."), T::Id(c.clone())])
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect::<Option<Vec<_>>>()
                    .map(|v| v.into_iter().flatten().collect());
                default_order = if no_from {
                    None
                } else if distinct {
                    Some(all_cols(cols.len()))
                } else {
                    Some(keys.unwrap_or_else(|| all_cols(cols.len())))
                };
            }
        }
        body.extend(comma(items));
        body.extend(from);
        if !no_from && self.chance(0.6) {
            body.push(T::Kw("WHERE"));
            let s = Scope {
                agg: false,
                ..scope.clone()
            };
            body.extend(self.bool_expr(&s, depth + 1));
        }
        // GROUP BY / HAVING come after WHERE.
        body.extend(tail);
        Select {
            body,
            cols,
            user_order: vec![],
            default_order,
            limit: vec![],
            named,
        }
    }

    fn aliased(&mut self, mut toks: Vec<T>, alias: &str, named: &mut bool) -> Vec<T> {
        if self.chance(0.85) {
            if self.chance(0.7) {
                toks.push(T::Kw("AS"));
            }
            toks.push(T::Id(alias.to_owned()));
        } else {
            *named = false;
        }
        toks
    }

    fn any_type(&mut self) -> Ty {
        self.pick(&[Ty::Int, Ty::Int, Ty::Int, Ty::Text, Ty::Text, Ty::Blob])
    }

    /// A column of any type in scope.
    fn any_col(&mut self, scope: &Scope) -> Option<(Vec<T>, Ty)> {
        let s = scope.sources.choose(&mut self.rng)?.clone();
        let (c, ty) = s.cols.choose(&mut self.rng)?.clone();
        let qualify = scope.sources.len() > 1 || !scope.outer.is_empty() || self.chance(0.3);
        Some((self.qualified(&s.qual, &c, qualify), ty))
    }

    fn qualified(&mut self, qual: &str, col: &str, qualify: bool) -> Vec<T> {
        if qualify {
            vec![T::Id(qual.to_owned()), T::P("."), T::Id(col.to_owned())]
        } else {
            vec![T::Id(col.to_owned())]
        }
    }

    /// A column of type `ty` from the scope (an enclosing query's now and then).
    fn col_ref(&mut self, ty: Ty, scope: &Scope) -> Option<Vec<T>> {
        let use_outer = !scope.outer.is_empty() && self.chance(0.2);
        let pool = if use_outer {
            &scope.outer
        } else {
            &scope.sources
        };
        let cands: Vec<(String, String)> = pool
            .iter()
            .flat_map(|s| {
                s.cols
                    .iter()
                    .filter(|(_, t)| *t == ty)
                    .map(|(c, _)| (s.qual.clone(), c.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let (q, c) = cands.choose(&mut self.rng)?.clone();
        let qualify =
            use_outer || scope.sources.len() > 1 || !scope.outer.is_empty() || self.chance(0.3);
        Some(self.qualified(&q, &c, qualify))
    }

    /// An aggregate call and its type. Order-sensitive aggregates get a total ORDER BY.
    fn aggregate(&mut self, scope: &Scope, depth: u32) -> (Vec<T>, Ty) {
        let inner = Scope {
            agg: false,
            ..scope.clone()
        };
        match self.rng.gen_range(0..9) {
            0 => (
                vec![T::Kw("count"), T::P("("), T::P("*"), T::P(")")],
                Ty::Int,
            ),
            1 => {
                let ty = self.any_type();
                let mut args = Vec::new();
                if self.chance(0.3) {
                    args.push(T::Kw("DISTINCT"));
                }
                args.extend(self.col_ref(ty, &inner).unwrap_or_else(|| self.lit(ty)));
                let mut out = vec![T::Kw("count")];
                out.extend(paren(args));
                (out, Ty::Int)
            }
            2 => {
                let e = self
                    .col_ref(Ty::Int, &inner)
                    .unwrap_or_else(|| self.lit(Ty::Int));
                (call("sum", vec![e]), Ty::Int)
            }
            3 | 4 => {
                let ty = self.any_type();
                let e = self
                    .col_ref(ty, &inner)
                    .unwrap_or_else(|| self.expr(ty, &inner, depth + 2));
                (
                    call(if self.chance(0.5) { "min" } else { "max" }, vec![e]),
                    ty,
                )
            }
            5 | 6 => {
                // group_concat / string_agg with an ORDER BY that decides every tie: the
                // value itself, then the keys of every FROM table.
                let e = self.expr(Ty::Text, &inner, depth + 2);
                let mut order = vec![e.clone()];
                for s in &scope.sources {
                    if let Some(k) = &s.key {
                        for c in k {
                            order.push(vec![T::Id(s.qual.clone()), T::P("."), T::Id(c.clone())]);
                        }
                    }
                }
                let name = if self.chance(0.6) {
                    "group_concat"
                } else {
                    "string_agg"
                };
                let mut args = e;
                args.push(T::P(","));
                args.push(T::Lit(
                    if self.chance(0.5) { "','" } else { "' | '" }.into(),
                ));
                args.extend([T::Kw("ORDER"), T::Kw("BY")]);
                args.extend(comma(order));
                let mut out = vec![T::Kw(name)];
                out.extend(paren(args));
                (out, Ty::Text)
            }
            7 => {
                let e = self
                    .col_ref(Ty::Int, &inner)
                    .unwrap_or_else(|| self.lit(Ty::Int));
                let mut out = call("sum", vec![e]);
                out.push(T::P("+"));
                out.extend(vec![T::Kw("count"), T::P("("), T::P("*"), T::P(")")]);
                (out, Ty::Int)
            }
            _ => {
                let e = self.expr(Ty::Int, &inner, depth + 2);
                let mut out = vec![T::Kw("count")];
                out.extend(paren(
                    vec![T::Kw("DISTINCT")].into_iter().chain(e).collect(),
                ));
                (out, Ty::Int)
            }
        }
    }

    // ---------------------------------------------------------------- expressions

    fn expr(&mut self, ty: Ty, scope: &Scope, depth: u32) -> Vec<T> {
        match ty {
            Ty::Int => self.int_expr(scope, depth),
            Ty::Text => self.text_expr(scope, depth),
            Ty::Blob => self.blob_expr(scope, depth),
        }
    }

    fn leaf(&mut self, ty: Ty, scope: &Scope) -> Vec<T> {
        if scope.agg && self.chance(0.5) {
            // In an aggregate query a bare column would be a plan's pick: aggregate it.
            let (a, aty) = self.aggregate(scope, 4);
            if aty == ty {
                return a;
            }
            return self.lit(ty);
        }
        if !scope.agg && self.chance(0.6) {
            if let Some(c) = self.col_ref(ty, scope) {
                return c;
            }
        }
        self.lit(ty)
    }

    fn int_expr(&mut self, scope: &Scope, depth: u32) -> Vec<T> {
        if depth >= 4 || self.chance(0.35) {
            return self.leaf(Ty::Int, scope);
        }
        match self.rng.gen_range(0..20) {
            0..=3 => {
                let ops: &[&'static str] = if self.profile.shifts {
                    &["+", "-", "*", "/", "%", "&", "|", "<<", ">>"]
                } else {
                    &["+", "-", "*", "/", "%", "&", "|"]
                };
                let op = self.pick(ops);
                let mut out = self.int_expr(scope, depth + 1);
                out.push(T::P(op));
                out.extend(self.int_expr(scope, depth + 1));
                paren(out)
            }
            4 => {
                let op = self.pick(&["-", "+", "~"]);
                let mut out = vec![T::P(op)];
                out.extend(self.int_expr(scope, depth + 1));
                out
            }
            5 | 6 => self.case_expr(Ty::Int, scope, depth),
            7 => {
                let (inner, _) = if self.chance(0.5) {
                    (self.text_expr(scope, depth + 1), Ty::Text)
                } else {
                    (self.int_expr(scope, depth + 1), Ty::Int)
                };
                let mut out = vec![T::Kw("CAST"), T::P("(")];
                out.extend(inner);
                out.extend([
                    T::Kw("AS"),
                    T::Kw(self.pick(&["INTEGER", "INT"])),
                    T::P(")"),
                ]);
                out
            }
            8 => call("abs", vec![self.int_expr(scope, depth + 1)]),
            9 => {
                let f = self.pick(&["length", "unicode", "octet_length"]);
                call(f, vec![self.text_expr(scope, depth + 1)])
            }
            10 => {
                let f = self.pick(&["coalesce", "ifnull", "nullif", "max", "min"]);
                call(
                    f,
                    vec![
                        self.int_expr(scope, depth + 1),
                        self.int_expr(scope, depth + 1),
                    ],
                )
            }
            11 => call(
                "iif",
                vec![
                    self.bool_expr(scope, depth + 1),
                    self.int_expr(scope, depth + 1),
                    self.int_expr(scope, depth + 1),
                ],
            ),
            12 => call(
                "instr",
                vec![
                    self.text_expr(scope, depth + 1),
                    self.text_expr(scope, depth + 1),
                ],
            ),
            13 => call("sign", vec![self.int_expr(scope, depth + 1)]),
            14 | 15 => self.bool_expr(scope, depth + 1),
            16 | 17 if depth < 3 => self.scalar_subquery(Ty::Int, scope, depth),
            18 => paren(self.int_expr(scope, depth + 1)),
            _ => self.leaf(Ty::Int, scope),
        }
    }

    fn text_expr(&mut self, scope: &Scope, depth: u32) -> Vec<T> {
        if depth >= 4 || self.chance(0.4) {
            return self.leaf(Ty::Text, scope);
        }
        match self.rng.gen_range(0..14) {
            0..=2 => {
                let mut out = self.text_expr(scope, depth + 1);
                out.push(T::P("||"));
                if self.chance(0.3) {
                    out.extend(self.int_expr(scope, depth + 1));
                } else {
                    out.extend(self.text_expr(scope, depth + 1));
                }
                paren(out)
            }
            3 => {
                let f = self.pick(&[
                    "upper", "lower", "trim", "ltrim", "rtrim", "quote", "typeof",
                ]);
                call(f, vec![self.text_expr(scope, depth + 1)])
            }
            4 => {
                let mut args = vec![
                    self.text_expr(scope, depth + 1),
                    self.int_expr(scope, depth + 1),
                ];
                if self.chance(0.5) {
                    args.push(self.int_expr(scope, depth + 1));
                }
                call(self.pick(&["substr", "substring"]), args)
            }
            5 => call(
                "replace",
                vec![
                    self.text_expr(scope, depth + 1),
                    self.text_lit(),
                    self.text_expr(scope, depth + 1),
                ],
            ),
            6 => {
                let mut out = vec![T::Kw("CAST"), T::P("(")];
                out.extend(self.int_expr(scope, depth + 1));
                out.extend([T::Kw("AS"), T::Kw("TEXT"), T::P(")")]);
                out
            }
            7 => call("hex", vec![self.blob_expr(scope, depth + 1)]),
            8 => self.case_expr(Ty::Text, scope, depth),
            9 => call(
                self.pick(&["coalesce", "ifnull", "concat"]),
                vec![
                    self.text_expr(scope, depth + 1),
                    self.text_expr(scope, depth + 1),
                ],
            ),
            10 => call(
                "concat_ws",
                vec![
                    self.text_lit(),
                    self.text_expr(scope, depth + 1),
                    self.int_expr(scope, depth + 1),
                ],
            ),
            11 => {
                let v = self.rng.gen_range(65..91);
                let arg = self.int_lit(v);
                call("char", vec![arg])
            }
            12 if depth < 3 => self.scalar_subquery(Ty::Text, scope, depth),
            _ => self.leaf(Ty::Text, scope),
        }
    }

    fn blob_expr(&mut self, scope: &Scope, depth: u32) -> Vec<T> {
        if depth >= 4 || self.chance(0.5) {
            return self.leaf(Ty::Blob, scope);
        }
        match self.rng.gen_range(0..5) {
            0 => {
                let n = self.rng.gen_range(0..4);
                let arg = self.int_lit(n);
                call("zeroblob", vec![arg])
            }
            1 => {
                let mut out = vec![T::Kw("CAST"), T::P("(")];
                out.extend(self.text_expr(scope, depth + 1));
                out.extend([T::Kw("AS"), T::Kw("BLOB"), T::P(")")]);
                out
            }
            2 => call(
                "coalesce",
                vec![self.blob_expr(scope, depth + 1), self.blob_lit()],
            ),
            3 => self.case_expr(Ty::Blob, scope, depth),
            _ => self.leaf(Ty::Blob, scope),
        }
    }

    fn case_expr(&mut self, ty: Ty, scope: &Scope, depth: u32) -> Vec<T> {
        let mut out = vec![T::Kw("CASE")];
        let simple = self.chance(0.4);
        if simple {
            out.extend(self.int_expr(scope, depth + 1));
        }
        for _ in 0..self.rng.gen_range(1..=2) {
            out.push(T::Kw("WHEN"));
            if simple {
                let v = self.small_int();
                out.extend(self.int_lit(v));
            } else {
                out.extend(self.bool_expr(scope, depth + 1));
            }
            out.push(T::Kw("THEN"));
            out.extend(self.expr(ty, scope, depth + 1));
        }
        if self.chance(0.7) {
            out.push(T::Kw("ELSE"));
            out.extend(self.expr(ty, scope, depth + 1));
        }
        out.push(T::Kw("END"));
        out
    }

    fn bool_expr(&mut self, scope: &Scope, depth: u32) -> Vec<T> {
        if depth >= 4 {
            let ty = self.any_type();
            let mut out = self.leaf(ty, scope);
            out.extend([T::Kw("IS"), T::Kw("NOT"), T::Kw("NULL")]);
            return out;
        }
        match self.rng.gen_range(0..22) {
            0..=4 => {
                let ty = self.any_type();
                let mut out = self.expr(ty, scope, depth + 1);
                let op = self.pick(&["=", "==", "<>", "!=", "<", "<=", ">", ">="]);
                out.push(T::P(op));
                out.extend(self.expr(ty, scope, depth + 1));
                if ty == Ty::Text && self.profile.nocase && self.chance(0.3) {
                    out.extend([
                        T::Kw("COLLATE"),
                        T::Kw(self.pick(&["NOCASE", "BINARY", "RTRIM"])),
                    ]);
                }
                out
            }
            5 => {
                let ty = self.any_type();
                let mut out = self.expr(ty, scope, depth + 1);
                if self.profile.distinct_from && self.chance(0.5) {
                    out.push(T::Kw("IS"));
                    if self.chance(0.5) {
                        out.push(T::Kw("NOT"));
                    }
                    out.extend([T::Kw("DISTINCT"), T::Kw("FROM")]);
                } else {
                    out.push(T::Kw("IS"));
                    if self.chance(0.5) {
                        out.push(T::Kw("NOT"));
                    }
                }
                if self.profile.is_literal && self.chance(0.6) {
                    out.extend(self.lit(ty));
                } else {
                    out.extend(self.expr(ty, scope, depth + 1));
                }
                out
            }
            6 => {
                let mut out = self.int_expr(scope, depth + 1);
                if self.chance(0.3) {
                    out.push(T::Kw("NOT"));
                }
                out.push(T::Kw("BETWEEN"));
                out.extend(self.int_expr(scope, depth + 2));
                if self.profile.isnull_keyword && self.chance(0.2) {
                    // A NULL test binds inside the lower bound (SQLite's grammar).
                    out.extend([T::Kw("IS"), T::Kw("NOT"), T::Kw("NULL")]);
                }
                out.push(T::Kw("AND"));
                out.extend(self.int_expr(scope, depth + 2));
                out
            }
            7 | 8 => {
                let ty = self.any_type();
                let mut out = self.expr(ty, scope, depth + 1);
                if self.chance(0.3) {
                    out.push(T::Kw("NOT"));
                }
                out.push(T::Kw("IN"));
                if depth < 3 && self.chance(0.4) {
                    let sub = self.subquery_of_type(ty, scope, depth);
                    out.extend(paren(sub));
                } else {
                    let n = self.rng.gen_range(0..4);
                    let items = (0..n).map(|_| self.lit(ty)).collect();
                    out.extend(paren(comma(items)));
                }
                out
            }
            9 if depth < 3 => {
                let mut out = Vec::new();
                if self.chance(0.3) {
                    out.push(T::Kw("NOT"));
                }
                out.push(T::Kw("EXISTS"));
                let sel = self.select(scope, depth + 1);
                out.extend(paren(sel.tokens(sel.has_limit())));
                out
            }
            10 | 11 => {
                let mut out = self.text_expr(scope, depth + 1);
                if self.chance(0.25) {
                    out.push(T::Kw("NOT"));
                }
                let glob = self.profile.glob && self.chance(0.5);
                out.push(T::Kw(if glob { "GLOB" } else { "LIKE" }));
                let pat = self.pick(if glob {
                    &["a*", "*b", "?", "[a-b]*", "*", "k?"][..]
                } else {
                    &["a%", "%b", "_", "%", "k_", "A%", "%\\%%"][..]
                });
                out.push(T::Lit(quote_str(pat)));
                if !glob && pat.contains('\\') {
                    out.extend([T::Kw("ESCAPE"), T::Lit("'\\'".into())]);
                }
                out
            }
            12 | 13 => {
                let ty = self.any_type();
                let mut out = self.expr(ty, scope, depth + 1);
                if self.profile.isnull_keyword && self.chance(0.6) {
                    match self.rng.gen_range(0..3) {
                        0 => out.push(T::Kw("ISNULL")),
                        1 => out.push(T::Kw("NOTNULL")),
                        _ => out.extend([T::Kw("NOT"), T::Kw("NULL")]),
                    }
                } else {
                    out.push(T::Kw("IS"));
                    if self.chance(0.5) {
                        out.push(T::Kw("NOT"));
                    }
                    out.push(T::Kw("NULL"));
                }
                out
            }
            14..=16 => {
                let mut out = self.bool_expr(scope, depth + 1);
                out.push(T::Kw(if self.chance(0.5) { "AND" } else { "OR" }));
                out.extend(self.bool_expr(scope, depth + 1));
                paren(out)
            }
            17 => {
                let mut out = vec![T::Kw("NOT")];
                out.extend(paren(self.bool_expr(scope, depth + 1)));
                out
            }
            18 => vec![T::Kw(self.pick(&["TRUE", "FALSE"]))],
            19 if self.profile.glob => call(
                self.pick(&["glob", "like"]),
                vec![self.text_lit(), self.text_expr(scope, depth + 1)],
            ),
            _ => {
                let mut out = self.int_expr(scope, depth + 1);
                out.push(T::P(self.pick(&["<", ">", "="])));
                let v = self.small_int();
                out.extend(self.int_lit(v));
                out
            }
        }
    }

    /// A one-column select of type `ty` (for IN), order left open.
    fn subquery_of_type(&mut self, ty: Ty, scope: &Scope, depth: u32) -> Vec<T> {
        let (from, inner) = self.make_from_clause(scope, &[], depth + 1, 1);
        let mut out = vec![T::Kw("SELECT")];
        out.extend(
            self.col_ref(
                ty,
                &Scope {
                    outer: vec![],
                    ..inner.clone()
                },
            )
            .unwrap_or_else(|| self.lit(ty)),
        );
        out.extend(from);
        if self.chance(0.5) {
            out.push(T::Kw("WHERE"));
            out.extend(self.bool_expr(&inner, depth + 2));
        }
        out
    }

    /// A scalar subquery of type `ty` whose value does not depend on the plan: an aggregate,
    /// or the first row in key order (LIMIT 1 with the default order for the oracle).
    fn scalar_subquery(&mut self, ty: Ty, scope: &Scope, depth: u32) -> Vec<T> {
        let (from, inner) = self.make_from_clause(scope, &[], depth + 1, 2);
        let mut out = vec![T::Kw("SELECT")];
        let aggregate = self.chance(0.5);
        let inner_only = Scope {
            outer: vec![],
            ..inner.clone()
        };
        if aggregate {
            let e = self
                .col_ref(ty, &inner_only)
                .unwrap_or_else(|| self.lit(ty));
            out.extend(call(if self.chance(0.5) { "max" } else { "min" }, vec![e]));
        } else {
            out.extend(
                self.col_ref(ty, &inner_only)
                    .unwrap_or_else(|| self.lit(ty)),
            );
        }
        out.extend(from);
        if self.chance(0.6) {
            out.push(T::Kw("WHERE"));
            out.extend(self.bool_expr(&inner, depth + 2));
        }
        if !aggregate {
            let keys: Option<Vec<Vec<T>>> = inner
                .sources
                .iter()
                .map(|s| {
                    s.key.as_ref().map(|k| {
                        k.iter()
                            .map(|c| vec![T::Id(s.qual.clone()), T::P("."), T::Id(c.clone())])
                            .collect::<Vec<_>>()
                    })
                })
                .collect::<Option<Vec<_>>>()
                .map(|v| v.into_iter().flatten().collect());
            let order = keys.unwrap_or_else(|| vec![vec![T::Lit("1".into())]]);
            if self.chance(0.35) {
                // No LIMIT: SQLite takes the first row the plan meets (issue 10 item 5).
                self.tags.push("scalar_subquery_without_limit");
                let mut o = vec![T::Kw("ORDER"), T::Kw("BY")];
                o.extend(comma(order));
                out.push(T::Oracle(o));
            } else {
                let mut o = vec![T::Kw("ORDER"), T::Kw("BY")];
                o.extend(comma(order));
                out.push(T::Oracle(o));
                out.push(T::Kw("LIMIT"));
                out.extend(self.int_lit(1));
            }
        }
        paren(out)
    }
}

impl Select {
    fn has_limit(&self) -> bool {
        !self.limit.is_empty()
    }
}

// -------------------------------------------------------------------- writes
impl SqlGen {
    fn returning(&mut self, src: &Source) -> Vec<T> {
        let mut out = vec![T::Kw("RETURNING")];
        if self.chance(0.3) {
            out.push(T::P("*"));
            self.returning_star = true;
        } else {
            let scope = Scope {
                sources: vec![Source {
                    qual: src.qual.clone(),
                    ..src.clone()
                }],
                ..Default::default()
            };
            let n = self.rng.gen_range(1..=3);
            let mut items = Vec::new();
            for i in 0..n {
                let ty = self.any_type();
                let mut e = if self.chance(0.6) {
                    self.col_ref(ty, &scope).unwrap_or_else(|| self.lit(ty))
                } else {
                    self.expr(ty, &scope, 3)
                };
                e.extend([T::Kw("AS"), T::Id(format!("ret{i}"))]);
                items.push(e);
            }
            out.extend(comma(items));
        }
        out
    }

    fn value_for(&mut self, t: &Table, i: usize) -> Vec<T> {
        let c = &t.cols[i];
        if t.pk.contains(&i) {
            return self.key_lit(c.ty);
        }
        if let Some(&(_, parent)) = t.fks.iter().find(|(fc, _)| *fc == i) {
            let pty = self.schema.tables[parent].cols[self.schema.tables[parent].pk[0]].ty;
            if self.chance(0.2) {
                return vec![T::Kw("NULL")];
            }
            return self.key_lit(pty);
        }
        if self.chance(0.2) {
            return self.expr(c.ty, &Scope::default(), 2);
        }
        self.lit(c.ty)
    }

    fn insert_values(&mut self) -> Stmt {
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        let t = self.schema.tables[ti].clone();
        let src = self.table_source(ti, false);
        let upsert = self.chance(0.25);
        let mut toks = Vec::new();
        if !upsert && self.chance(0.08) {
            toks.extend([T::Kw("REPLACE"), T::Kw("INTO")]);
        } else {
            toks.push(T::Kw("INSERT"));
            if !upsert && self.chance(0.25) {
                toks.extend([
                    T::Kw("OR"),
                    T::Kw(self.pick(&["IGNORE", "REPLACE", "ABORT", "FAIL"])),
                ]);
            }
            toks.push(T::Kw("INTO"));
        }
        toks.push(T::Id(src.qual.clone()));
        // All columns, or a list (leaving out a rowid key or a column with no NOT NULL).
        let mut cols: Vec<usize> = (0..t.cols.len()).collect();
        let listed = self.chance(0.5);
        if listed {
            cols.shuffle(&mut self.rng);
            cols.retain(|&i| t.pk.contains(&i) || self.rng.gen_bool(0.7));
            if t.rowid_alias() && self.chance(0.3) {
                cols.retain(|&i| i != t.pk[0]);
            }
            let names = cols
                .iter()
                .map(|&i| vec![T::Id(src.cols[i].0.clone())])
                .collect();
            toks.extend(paren(comma(names)));
        }
        if listed && cols.is_empty() {
            toks.pop();
            toks.pop();
            toks.extend([T::Kw("DEFAULT"), T::Kw("VALUES")]);
        } else {
            toks.push(T::Kw("VALUES"));
            let n = self.rng.gen_range(1..=3);
            let rows = (0..n)
                .map(|_| {
                    let vals = cols.iter().map(|&i| self.value_for(&t, i)).collect();
                    paren(comma(vals))
                })
                .collect();
            toks.extend(comma(rows));
        }
        if upsert {
            toks.extend(self.upsert_clause(&t, &src));
        }
        if self.chance(0.25) {
            toks.extend(self.returning(&src));
        }
        self.stmt(toks, StmtKind::Write)
    }

    fn upsert_clause(&mut self, t: &Table, src: &Source) -> Vec<T> {
        let mut toks = vec![T::Kw("ON"), T::Kw("CONFLICT")];
        let nonkey: Vec<usize> = (0..t.cols.len()).filter(|i| !t.pk.contains(i)).collect();
        if nonkey.is_empty() || self.chance(0.3) {
            if self.chance(0.5) {
                let keys =
                    t.pk.iter()
                        .map(|&k| vec![T::Id(src.cols[k].0.clone())])
                        .collect();
                toks.extend(paren(comma(keys)));
            }
            toks.extend([T::Kw("DO"), T::Kw("NOTHING")]);
            return toks;
        }
        let keys =
            t.pk.iter()
                .map(|&k| vec![T::Id(src.cols[k].0.clone())])
                .collect();
        toks.extend(paren(comma(keys)));
        toks.extend([T::Kw("DO"), T::Kw("UPDATE"), T::Kw("SET")]);
        let c = self.pick(&nonkey);
        let (name, ty) = src.cols[c].clone();
        let mut set = vec![T::Id(name.clone()), T::P("=")];
        if ty == Ty::Int && !t.fks.iter().any(|(fc, _)| *fc == c) && self.chance(0.5) {
            set.extend([T::Kw("excluded"), T::P("."), T::Id(name.clone()), T::P("+")]);
            set.extend(self.int_lit(1));
        } else if ty == Ty::Text && self.chance(0.5) {
            set.extend([
                T::Id(name.clone()),
                T::P("||"),
                T::Kw("excluded"),
                T::P("."),
                T::Id(name),
            ]);
        } else {
            set.extend([T::Kw("excluded"), T::P("."), T::Id(name)]);
        }
        toks.extend(set);
        if self.chance(0.3) {
            toks.push(T::Kw("WHERE"));
            let scope = Scope {
                sources: vec![src.clone()],
                ..Default::default()
            };
            toks.extend(self.bool_expr(&scope, 2));
        }
        toks
    }

    fn insert_select(&mut self) -> Stmt {
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        let t = self.schema.tables[ti].clone();
        let target = self.table_source(ti, false);
        let si = self.rng.gen_range(0..self.schema.tables.len());
        let src = self.table_source(si, true);
        let scope = Scope {
            sources: vec![src.clone()],
            ..Default::default()
        };
        let upsert = self.chance(0.3);
        let mut toks = vec![T::Kw("INSERT")];
        if !upsert && self.chance(0.5) {
            toks.extend([T::Kw("OR"), T::Kw(self.pick(&["IGNORE", "REPLACE"]))]);
        }
        toks.extend([T::Kw("INTO"), T::Id(target.qual.clone())]);
        let names = target
            .cols
            .iter()
            .map(|(c, _)| vec![T::Id(c.clone())])
            .collect();
        toks.extend(paren(comma(names)));
        toks.push(T::Kw("SELECT"));
        let mut items = Vec::new();
        for (i, c) in t.cols.iter().enumerate() {
            let e = if t.pk.contains(&i) {
                // A key derived from the source row, so several rows may land.
                match c.ty {
                    Ty::Int => {
                        let mut e = self
                            .col_ref(Ty::Int, &scope)
                            .unwrap_or_else(|| self.lit(Ty::Int));
                        e.push(T::P("+"));
                        let k = self.rng.gen_range(0..KEY_RANGE);
                        e.extend(self.int_lit(k));
                        e
                    }
                    _ => {
                        let mut e = vec![T::Lit("'k'".into()), T::P("||")];
                        e.extend(
                            self.col_ref(Ty::Int, &scope)
                                .unwrap_or_else(|| self.int_lit(1)),
                        );
                        e
                    }
                }
            } else if t.fks.iter().any(|(fc, _)| *fc == i) {
                vec![T::Kw("NULL")]
            } else {
                self.expr(c.ty, &scope, 2)
            };
            items.push(e);
        }
        toks.extend(comma(items));
        toks.push(T::Kw("FROM"));
        toks.extend(self.table_in_from(&src));
        // An upsert after INSERT ... SELECT needs the WHERE (SQLite's parsing rule).
        toks.push(T::Kw("WHERE"));
        toks.extend(self.bool_expr(&scope, 2));
        // The order decides which source row wins a conflict.
        let mut o = vec![T::Kw("ORDER"), T::Kw("BY")];
        o.extend(comma(
            src.key
                .clone()
                .expect("a table")
                .iter()
                .map(|c| vec![T::Id(src.qual.clone()), T::P("."), T::Id(c.clone())])
                .collect(),
        ));
        toks.push(T::Oracle(o));
        if upsert {
            toks.extend(self.upsert_clause(&t, &target));
        }
        if self.chance(0.2) {
            toks.extend(self.returning(&target));
        }
        self.stmt(toks, StmtKind::Write)
    }

    fn update(&mut self) -> Stmt {
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        let t = self.schema.tables[ti].clone();
        let src = self.table_source(ti, false);
        let mut scope = Scope {
            sources: vec![src.clone()],
            ..Default::default()
        };
        let mut toks = vec![T::Kw("UPDATE")];
        if self.chance(0.15) {
            toks.extend([T::Kw("OR"), T::Kw(self.pick(&["IGNORE", "REPLACE"]))]);
        }
        toks.push(T::Id(src.qual.clone()));
        toks.push(T::Kw("SET"));
        // Mostly non-key columns; a key now and then (rows move).
        let n = self.rng.gen_range(1..=2);
        let mut sets = Vec::new();
        let mut done = Vec::new();
        let from = self.chance(0.2);
        let mut from_toks = Vec::new();
        let mut from_cond = Vec::new();
        if from {
            // UPDATE ... FROM a grouped subquery: at most one match per row.
            let ui = self.rng.gen_range(0..self.schema.tables.len());
            let u = self.table_source(ui, true);
            let kty = t.cols[t.pk[0]].ty;
            let ucol = u.cols.iter().find(|(_, ty)| *ty == kty).cloned();
            if let Some((ucol, _)) = ucol {
                let alias = self.fresh_alias();
                let (vcol, vty) = self.pick(&u.cols);
                let mut sub = vec![
                    T::Kw("SELECT"),
                    T::Id(ucol.clone()),
                    T::Kw("AS"),
                    T::Id("k".into()),
                    T::P(","),
                ];
                sub.extend(call("max", vec![vec![T::Id(vcol)]]));
                sub.extend([T::Kw("AS"), T::Id("m".into()), T::Kw("FROM")]);
                sub.extend(self.table_in_from(&u));
                sub.extend([T::Kw("GROUP"), T::Kw("BY"), T::Id(ucol)]);
                from_toks.push(T::Kw("FROM"));
                from_toks.extend(paren(sub));
                from_toks.extend([T::Kw("AS"), T::Id(alias.clone())]);
                from_cond = vec![
                    T::Id(src.qual.clone()),
                    T::P("."),
                    T::Id(src.cols[t.pk[0]].0.clone()),
                    T::P("="),
                    T::Id(alias.clone()),
                    T::P("."),
                    T::Id("k".into()),
                ];
                scope.sources.push(Source {
                    qual: alias,
                    cols: vec![("k".into(), kty), ("m".into(), vty)],
                    key: None,
                    indexes: vec![],
                    table_name: None,
                });
            }
        }
        for _ in 0..n {
            let i = if self.chance(0.12) {
                self.pick(&t.pk)
            } else {
                self.rng.gen_range(0..t.cols.len())
            };
            if done.contains(&i) {
                continue;
            }
            done.push(i);
            let (name, ty) = src.cols[i].clone();
            let mut s = vec![T::Id(name), T::P("=")];
            if t.pk.contains(&i) || t.fks.iter().any(|(fc, _)| *fc == i) {
                let v = self.value_for(&t, i);
                s.extend(v);
            } else {
                s.extend(self.expr(ty, &scope, 2));
            }
            sets.push(s);
        }
        toks.extend(comma(sets));
        toks.extend(from_toks);
        let mut conds = Vec::new();
        if !from_cond.is_empty() {
            conds.push(from_cond);
        }
        if self.chance(0.85) {
            conds.push(self.bool_expr(&scope, 2));
        }
        if !conds.is_empty() {
            toks.push(T::Kw("WHERE"));
            let mut all = Vec::new();
            for (i, c) in conds.into_iter().enumerate() {
                if i > 0 {
                    all.push(T::Kw("AND"));
                }
                all.extend(paren(c));
            }
            toks.extend(all);
        }
        if self.chance(0.2) {
            self.tags.push("returning");
            toks.extend(self.returning(&src));
        }
        let mut s = self.stmt(toks, StmtKind::Write);
        s.returning_key = self.returning_star.then(|| t.pk.clone());
        s
    }

    fn delete(&mut self) -> Stmt {
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        let src = self.table_source(ti, false);
        let scope = Scope {
            sources: vec![src.clone()],
            ..Default::default()
        };
        let mut toks = vec![T::Kw("DELETE"), T::Kw("FROM"), T::Id(src.qual.clone())];
        if self.chance(0.95) {
            toks.push(T::Kw("WHERE"));
            toks.extend(self.bool_expr(&scope, 2));
        }
        if self.chance(0.25) {
            toks.extend(self.returning(&src));
        }
        let mut s = self.stmt(toks, StmtKind::Write);
        s.returning_key = self
            .returning_star
            .then(|| self.schema.tables[ti].pk.clone());
        s
    }

    fn index_ddl(&mut self) -> Stmt {
        if !self.schema.indexes.is_empty() && self.chance(0.4) {
            let i = self.rng.gen_range(0..self.schema.indexes.len());
            let ix = self.schema.indexes.remove(i);
            let mut toks = vec![T::Kw("DROP"), T::Kw("INDEX")];
            if self.chance(0.3) {
                toks.extend([T::Kw("IF"), T::Kw("EXISTS")]);
            }
            toks.push(T::Id(self.ident(&ix.name)));
            return self.stmt(toks, StmtKind::Ddl);
        }
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        self.create_index(ti)
    }

    fn pragma(&mut self) -> Stmt {
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        let name = self.schema.tables[ti].name.clone();
        let p = self.pick(&[
            "table_info",
            "table_xinfo",
            "index_list",
            "foreign_key_list",
        ]);
        let toks = vec![
            T::Kw("PRAGMA"),
            T::Kw(p),
            T::P("("),
            T::Lit(quote_str(&name)),
            T::P(")"),
        ];
        let mut s = self.stmt(toks, StmtKind::Read);
        s.tags.push("pragma");
        s
    }

    /// A statement dstorage must refuse, with the rule it breaks.
    fn hostile(&mut self) -> Stmt {
        let ti = self.rng.gen_range(0..self.schema.tables.len());
        let t = self.schema.tables[ti].clone();
        let tn = t.name.clone();
        let int_col = t
            .cols
            .iter()
            .find(|c| c.ty == Ty::Int)
            .map(|c| quote_id(&c.name))
            .unwrap_or_else(|| "1".into());
        let any_col = quote_id(&t.cols[1].name);
        let text_col = t
            .cols
            .iter()
            .enumerate()
            .find(|(i, c)| {
                c.ty == Ty::Text && !t.pk.contains(i) && !t.fks.iter().any(|(fc, _)| fc == i)
            })
            .map(|(_, c)| quote_id(&c.name));
        let mut cases: Vec<(&'static str, String)> = vec![
            ("REAL literal", "SELECT 1.5".into()),
            (
                "REAL literal",
                format!("SELECT {int_col} FROM {tn} WHERE {int_col} > 1e3"),
            ),
            ("REAL literal", "SELECT .5".into()),
            ("REAL literal", "SELECT 1.".into()),
            ("REAL literal", "SELECT 1_0.2_5".into()),
            ("REAL literal", "SELECT 1E-2 * 100".into()),
            ("REAL literal", format!("SELECT * FROM {tn} LIMIT 2.0")),
            (
                "REAL cast",
                format!("SELECT CAST({any_col} AS REAL) FROM {tn}"),
            ),
            ("REAL cast", "SELECT CAST(1 AS FLOAT)".into()),
            ("REAL cast", "SELECT CAST(1 AS DOUBLE PRECISION)".into()),
            ("function", "SELECT random()".into()),
            ("function", format!("SELECT avg({int_col}) FROM {tn}")),
            ("function", format!("SELECT total({int_col}) FROM {tn}")),
            ("function", "SELECT date('now')".into()),
            ("function", "SELECT CURRENT_TIMESTAMP".into()),
            ("function", "SELECT changes()".into()),
            ("function", "SELECT last_insert_rowid()".into()),
            ("function", "SELECT sqlite_version()".into()),
            ("function", "SELECT randomblob(4)".into()),
            ("function", "SELECT printf('%d', 1)".into()),
            ("function", "SELECT load_extension('x')".into()),
            ("rowid", format!("SELECT rowid, * FROM {tn}")),
            ("rowid", format!("SELECT _rowid_ FROM {tn}")),
            ("rowid", format!("SELECT oid FROM {tn} ORDER BY 1")),
            (
                "rowid",
                format!("UPDATE {tn} SET {any_col} = {any_col} WHERE rowid = 1"),
            ),
            ("system table", "SELECT * FROM sqlite_master".into()),
            ("system table", "SELECT name FROM sqlite_schema".into()),
            ("system table", "SELECT * FROM _dstorage_kv".into()),
            (
                "system table",
                "SELECT * FROM main._dstorage_schemas".into(),
            ),
            ("system table", "SELECT * FROM sqlite_temp_master".into()),
            ("system table", "SELECT * FROM pragma_table_list".into()),
            ("system table", "SELECT * FROM temp.sqlite_schema".into()),
            (
                "window function",
                format!("SELECT row_number() OVER (ORDER BY {any_col}) FROM {tn}"),
            ),
            (
                "window function",
                format!("SELECT sum({int_col}) OVER () FROM {tn}"),
            ),
            (
                "unordered group_concat",
                format!("SELECT group_concat({any_col}) FROM {tn}"),
            ),
            (
                "unordered group_concat",
                format!("SELECT string_agg({any_col}, ',') FROM {tn}"),
            ),
            (
                "table definition",
                "CREATE TABLE h0(a INTEGER PRIMARY KEY, b TEXT)".into(),
            ),
            (
                "table definition",
                "CREATE TABLE h1(a INTEGER PRIMARY KEY, b REAL) STRICT".into(),
            ),
            (
                "table definition",
                "CREATE TABLE h2(a INTEGER PRIMARY KEY, b ANY) STRICT".into(),
            ),
            (
                "table definition",
                "CREATE TABLE h4(a INTEGER, b TEXT) STRICT".into(),
            ),
            (
                "table definition",
                "CREATE TABLE h3(a INTEGER PRIMARY KEY, b TEXT COLLATE NOCASE) STRICT".into(),
            ),
            (
                "table definition",
                "CREATE TABLE h5(a INTEGER PRIMARY KEY AUTOINCREMENT) STRICT".into(),
            ),
            (
                "table definition",
                "CREATE TEMP TABLE h6(a INTEGER PRIMARY KEY) STRICT".into(),
            ),
            (
                "table definition",
                format!("CREATE TABLE h8 AS SELECT * FROM {tn}"),
            ),
            (
                "table definition",
                "CREATE TABLE h9(a INTEGER PRIMARY KEY ON CONFLICT ROLLBACK) STRICT".into(),
            ),
            (
                "statement kind",
                format!("CREATE TRIGGER tr AFTER INSERT ON {tn} BEGIN SELECT 1; END"),
            ),
            (
                "statement kind",
                format!("ALTER TABLE {tn} ADD COLUMN z INTEGER"),
            ),
            (
                "statement kind",
                "CREATE VIRTUAL TABLE h7 USING fts5(a)".into(),
            ),
            ("statement kind", "BEGIN".into()),
            ("statement kind", "COMMIT".into()),
            ("statement kind", "ROLLBACK".into()),
            ("statement kind", "SAVEPOINT s1".into()),
            ("statement kind", "RELEASE dstorage_tx".into()),
            ("statement kind", "ATTACH ':memory:' AS x".into()),
            ("statement kind", "VACUUM".into()),
            ("statement kind", "ANALYZE".into()),
            ("statement kind", "PRAGMA foreign_keys = OFF".into()),
            ("statement kind", "PRAGMA writable_schema = 1".into()),
            ("statement kind", "PRAGMA journal_mode".into()),
            (
                "conflict ROLLBACK",
                format!("UPDATE OR ROLLBACK {tn} SET {any_col} = {any_col}"),
            ),
            ("float via affinity", "SELECT typeof('1.5' + 0)".into()),
            (
                "float via affinity",
                "SELECT CAST('0.1' + '0.2' AS TEXT)".into(),
            ),
            (
                "float via affinity",
                "SELECT CAST('1.5' AS BOOLEAN) = 1".into(),
            ),
            (
                "float via affinity",
                "SELECT 9223372036854775807 + 1 > 0".into(),
            ),
            ("float via affinity", "SELECT '1e999' + 0 > 0".into()),
            ("float via affinity", "SELECT abs('-2.5') > 2".into()),
            ("float via affinity", "SELECT sum('0.1') > 0".into()),
            (
                "float via affinity",
                "SELECT length(9223372036854775808)".into(),
            ),
        ];
        let key = &t.cols[t.pk[0]];
        let key_expr = if key.ty == Ty::Int { "x" } else { "'k' || x" };
        cases.push((
            "runaway write stopped by the meter",
            format!(
                "WITH RECURSIVE c(x) AS (SELECT 1000 UNION ALL SELECT x + 1 FROM c) \
                 INSERT OR IGNORE INTO {tn}({}) SELECT {key_expr} FROM c",
                quote_id(&key.name)
            ),
        ));
        if let Some(tc) = text_col {
            cases.push((
                "float via affinity",
                format!("UPDATE {tn} SET {tc} = '0.1' + '0.2' RETURNING {tc}"),
            ));
        }
        let (why, sql) = self.pick(&cases);
        let mut s = self.stmt(vec![T::Lit(sql)], StmtKind::Write);
        s.expect = Expect::Refuse(why);
        s
    }
}
