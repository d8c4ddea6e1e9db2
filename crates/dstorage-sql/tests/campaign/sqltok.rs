//! A small tokenizer following SQLite's own rules (tokenize.c): enough to shrink a failing
//! statement token by token and to say which constructs a statement uses, independently of
//! the guard's parser.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `-- ...` up to and including its newline, or `/* ... */`.
    Comment,
    /// A keyword or a bare identifier (SQLite decides which by context).
    Word,
    /// `"x"`, `[x]` or `` `x` ``.
    QuotedIdent,
    /// `'...'`.
    Str,
    /// `X'..'`.
    Blob,
    /// A numeric literal as written (`1_000`, `0x10`, `1.5e3`).
    Number,
    /// `?`, `?1`, `:a`, `@a`, `$a`.
    Variable,
    /// Operators and punctuation.
    Punct,
    /// A byte SQLite would not accept here.
    Illegal,
}

/// One token and its text exactly as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
}

impl Token {
    /// The word in upper case, for keyword tests (`None` for anything but a word).
    pub fn word(&self) -> Option<String> {
        (self.kind == Kind::Word).then(|| self.text.to_ascii_uppercase())
    }

    /// Whether this is the keyword or bare word `w` (any case).
    pub fn is_word(&self, w: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(w)
    }

    /// Whether this is the punctuation `p`.
    pub fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Split `sql` into tokens, whitespace dropped, comments kept.
pub fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let n = chars.len();
    let take = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
    while i < n {
        let c = chars[i];
        let start = i;
        let kind;
        if c.is_whitespace() {
            i += 1;
            continue;
        } else if c == '-' && i + 1 < n && chars[i + 1] == '-' {
            while i < n && chars[i] != '\n' {
                i += 1;
            }
            if i < n {
                i += 1;
            }
            kind = Kind::Comment;
        } else if c == '/' && i + 1 < n && chars[i + 1] == '*' {
            i += 2;
            while i < n && !(chars[i] == '*' && i + 1 < n && chars[i + 1] == '/') {
                i += 1;
            }
            i = (i + 2).min(n);
            kind = Kind::Comment;
        } else if c == '\'' || c == '"' || c == '`' {
            i += 1;
            loop {
                if i >= n {
                    break;
                }
                if chars[i] == c {
                    if i + 1 < n && chars[i + 1] == c {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            kind = if c == '\'' {
                Kind::Str
            } else {
                Kind::QuotedIdent
            };
        } else if c == '[' {
            while i < n && chars[i] != ']' {
                i += 1;
            }
            i = (i + 1).min(n);
            kind = Kind::QuotedIdent;
        } else if (c == 'x' || c == 'X') && i + 1 < n && chars[i + 1] == '\'' {
            i += 2;
            while i < n && chars[i] != '\'' {
                i += 1;
            }
            i = (i + 1).min(n);
            kind = Kind::Blob;
        } else if c.is_ascii_digit() || (c == '.' && i + 1 < n && chars[i + 1].is_ascii_digit()) {
            if c == '0' && i + 1 < n && (chars[i + 1] == 'x' || chars[i + 1] == 'X') {
                i += 2;
                while i < n && (chars[i].is_ascii_hexdigit() || chars[i] == '_') {
                    i += 1;
                }
            } else {
                while i < n && (chars[i].is_ascii_digit() || chars[i] == '_') {
                    i += 1;
                }
                if i < n && chars[i] == '.' {
                    i += 1;
                    while i < n && (chars[i].is_ascii_digit() || chars[i] == '_') {
                        i += 1;
                    }
                }
                if i < n && (chars[i] == 'e' || chars[i] == 'E') {
                    let mut j = i + 1;
                    if j < n && (chars[j] == '+' || chars[j] == '-') {
                        j += 1;
                    }
                    if j < n && chars[j].is_ascii_digit() {
                        i = j;
                        while i < n && (chars[i].is_ascii_digit() || chars[i] == '_') {
                            i += 1;
                        }
                    }
                }
            }
            // SQLite reads `1abc` as one illegal token; keep the letters with the number.
            while i < n && is_ident_char(chars[i]) {
                i += 1;
            }
            kind = Kind::Number;
        } else if is_ident_char(c) && !c.is_ascii_digit() {
            while i < n && is_ident_char(chars[i]) {
                i += 1;
            }
            kind = Kind::Word;
        } else if c == '?' {
            i += 1;
            while i < n && chars[i].is_ascii_digit() {
                i += 1;
            }
            kind = Kind::Variable;
        } else if c == ':' || c == '@' || c == '$' {
            i += 1;
            while i < n && is_ident_char(chars[i]) {
                i += 1;
            }
            kind = Kind::Variable;
        } else {
            let two: String = chars[i..(i + 2).min(n)].iter().collect();
            let three: String = chars[i..(i + 3).min(n)].iter().collect();
            if three == "->>" {
                i += 3;
            } else if ["||", "<<", ">>", "<=", ">=", "==", "!=", "<>", "->"].contains(&two.as_str())
            {
                i += 2;
            } else {
                i += 1;
            }
            kind = if "+-*/%&|~<>=!(),;.".contains(c) {
                Kind::Punct
            } else {
                Kind::Illegal
            };
        }
        out.push(Token {
            kind,
            text: take(start, i),
        });
    }
    out
}

/// The tokens without comments.
pub fn code(tokens: &[Token]) -> Vec<&Token> {
    tokens.iter().filter(|t| t.kind != Kind::Comment).collect()
}

/// Join tokens with single spaces (a `--` comment carries its own newline).
pub fn join(tokens: &[Token]) -> String {
    let mut s = String::new();
    for t in tokens {
        if !s.is_empty() && !s.ends_with('\n') {
            s.push(' ');
        }
        s.push_str(&t.text);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_keeps_literal_forms_whole() {
        let t = tokenize("SELECT - -1, 0x1F, 1_000, X'0a', 'it''s' -- c\n/* d */ [a b]");
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "SELECT", "-", "-", "1", ",", "0x1F", ",", "1_000", ",", "X'0a'", ",", "'it''s'",
                "-- c\n", "/* d */", "[a b]"
            ]
        );
    }
}
