//! The guard's only changes to the user's text: a name token replaced, text inserted between tokens; the
//! edited statement rendered and checked token by token against the user's.

use super::*;

/// How a change is placed among others at the same spot (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Place {
    /// An alias right after a table name.
    Alias,
    /// `)` closing a WHERE expression wrapped behind the meter.
    CloseWhere,
    /// A new `WHERE dstorage_meter(...)`.
    NewWhere,
    /// ORDER BY terms (new clause or appended).
    Order,
    /// Anything else at the end of a clause.
    Tail,
}

#[derive(Clone, Debug)]
pub(super) enum Edit {
    /// Replace tokens `first..=last` with `text`.
    Replace { first: Tix, last: Tix, text: String },
    /// Insert `text` after token `after`.
    Insert {
        after: Tix,
        place: Place,
        seq: u32,
        text: String,
    },
}

pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(super) fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Apply `edits` to the tokens `first..=last` of `sql`. Returns the text and the
/// significant tokens it must consist of: the original ones with replacements, and the
/// tokens of each insertion where it goes.
pub(super) fn splice(
    sql: &str,
    toks: &[Token],
    first: Tix,
    last: Tix,
    edits: &[Edit],
) -> Result<(String, Vec<(Tk, String)>), SqlError> {
    // (byte position, place, seq, edit)
    let mut inserts: Vec<(usize, Place, u32, &str)> = Vec::new();
    let mut replaces: Vec<(Tix, Tix, &str)> = Vec::new();
    for e in edits {
        match e {
            Edit::Replace { first, last, text } => replaces.push((*first, *last, text)),
            Edit::Insert {
                after,
                place,
                seq,
                text,
            } => inserts.push((toks[*after].end, *place, *seq, text)),
        }
    }
    inserts.sort();
    replaces.sort();
    let start = toks[first].start;
    let end = toks[last].end;
    let mut text = String::with_capacity(end - start + 64);
    let mut expected: Vec<(Tk, String)> = Vec::new();
    let mut pos = start;
    let mut ins = inserts.iter().peekable();
    let mut rep = replaces.iter().peekable();
    let mut i = first;
    let push_tokens = |expected: &mut Vec<(Tk, String)>, s: &str| {
        for t in token::significant(s) {
            expected.push((t.kind, t.text(s).to_owned()));
        }
    };
    while i <= last {
        // Insertions at or before this token's start.
        while let Some((at, _, _, s)) = ins.peek() {
            if *at > toks[i].start {
                break;
            }
            text.push_str(&sql[pos..*at]);
            pos = *at;
            text.push_str(s);
            push_tokens(&mut expected, s);
            ins.next();
        }
        match rep.peek() {
            Some((f, l, s)) if *f == i => {
                text.push_str(&sql[pos..toks[i].start]);
                text.push_str(s);
                push_tokens(&mut expected, s);
                pos = toks[*l].end;
                i = *l + 1;
                rep.next();
            }
            _ => {
                text.push_str(&sql[pos..toks[i].end]);
                expected.push((toks[i].kind, toks[i].text(sql).to_owned()));
                pos = toks[i].end;
                i += 1;
            }
        }
    }
    for (at, _, _, s) in ins {
        if *at > end {
            break;
        }
        text.push_str(&sql[pos..*at]);
        pos = *at;
        text.push_str(s);
        push_tokens(&mut expected, s);
    }
    text.push_str(&sql[pos..end.max(pos)]);
    if rep.next().is_some() {
        return Err(refused(
            "this statement",
            "the guard could not rewrite it exactly; please report it",
        ));
    }
    Ok((text, expected))
}

impl Guard<'_> {
    pub(super) fn tok_text(&self, i: Tix) -> &str {
        self.toks[i].text(self.sql)
    }

    pub(super) fn replace(&mut self, first: Tix, last: Tix, text: String) {
        self.edits.push(Edit::Replace { first, last, text });
    }

    pub(super) fn insert(&mut self, after: Tix, place: Place, text: String) {
        self.seq += 1;
        self.edits.push(Edit::Insert {
            after,
            place,
            seq: self.seq,
            text,
        });
    }

    pub(super) fn token_texts(&self, first: Tix, last: Tix) -> Vec<&str> {
        (first..=last).map(|i| self.tok_text(i)).collect()
    }

    /// The text of tokens `first..=last` with the edits made so far inside that range
    /// (all of them with `all`, else only renames and aliases).
    pub(super) fn render(&self, first: Tix, last: Tix, all: bool) -> Result<String, SqlError> {
        let edits: Vec<Edit> = self
            .edits
            .iter()
            .filter(|e| match e {
                Edit::Replace {
                    first: f, last: l, ..
                } => *f >= first && *l <= last,
                Edit::Insert { after, place, .. } => {
                    *after >= first && *after <= last && (all || *place == Place::Alias)
                }
            })
            .cloned()
            .collect();
        splice(self.sql, self.toks, first, last, &edits).map(|(text, _)| text)
    }

    /// The statement `first..=last` with every edit applied, checked token by token. The
    /// text runs on to the next token (or the end), so a comment after the last token stays
    /// with it: SQLite names a result column by its text up to the next token.
    pub(super) fn apply(&self, first: Tix, last: Tix) -> Result<String, SqlError> {
        let (mut text, expected) = splice(self.sql, self.toks, first, last, &self.edits)?;
        let tail_end = self.toks.get(last + 1).map_or(self.sql.len(), |t| t.start);
        text.push_str(self.sql[self.toks[last].end..tail_end].trim_end());
        let got: Vec<(Tk, &str)> = token::significant(&text)
            .into_iter()
            .map(|t| (t.kind, t.text(&text)))
            .collect();
        let expected: Vec<(Tk, &str)> = expected.iter().map(|(k, s)| (*k, s.as_str())).collect();
        if got != expected {
            tracing::error!(%text, "the guard's rewrite does not tokenize as planned");
            return Err(refused(
                "this statement",
                "the guard could not rewrite it exactly; please report it",
            ));
        }
        Ok(text)
    }
}
