//! SQLite's own syntax: its tokenizer, and a parser of the statements dstorage runs that
//! keeps every node's position in the text, so the guard can judge SQL by SQLite's reading
//! and change it by inserting text, never by printing it anew.

pub(crate) mod ast;
pub(crate) mod parser;
#[cfg(test)]
mod tests;
pub(crate) mod token;

use crate::SqlError;

/// SQL text read the way SQLite reads it: its significant tokens and its statements.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The tokens SQLite's parser sees (no spaces or comments).
    pub tokens: Vec<token::Token>,
    /// The statements, with node positions indexing `tokens`.
    pub statements: Vec<ast::Stmt>,
}

/// Tokenize and parse `sql`. Text holding a NUL byte is refused: SQLite stops reading at
/// it, so what follows would be judged here and never run there (or the reverse).
pub(crate) fn parse(sql: &str) -> Result<Parsed, SqlError> {
    if let Some(at) = token::nul_position(sql) {
        return Err(SqlError::Refused {
            construct: format!("a NUL byte at offset {at}"),
            reason: "SQLite stops reading SQL text at NUL".into(),
        });
    }
    let tokens = token::significant(sql);
    if let Some(bad) = tokens.iter().find(|t| t.kind == token::Tk::Illegal) {
        return Err(SqlError::Parse(format!(
            "unrecognized token: \"{}\"",
            bad.text(sql)
        )));
    }
    let statements = parser::parse(sql, &tokens)?;
    if statements.is_empty() {
        return Err(SqlError::Empty);
    }
    Ok(Parsed { tokens, statements })
}
