//! Signed reads: the one JSON envelope `POST /v1/query` and `POST /v1/call` take, the canonical encoding of the
//! request it names, and the text a caller's wallet signs for it (`docs/api.md`, "Signed reads").
//!
//! A read is answered by one node from its committed state, so nothing here is part of consensus. What makes a
//! read signature safe to hand to a node is that it can be used exactly once, for exactly one request, on one
//! chain: the signed text names the chain id, the standard, a single-use challenge the node issued, the schema,
//! the action (or `sql`), and the SHA-256 of the request's canonical encoding. Its first line is `dstorage read`,
//! never `dstorage transaction`, so a read signature is never a valid transaction signature and the reverse.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::tx::Writer;
use crate::value::Value;

/// First line of every text a wallet signs for a read.
pub const READ_TEXT_TITLE: &str = "dstorage read";

/// Canonical encoding tag of a read of one SQL statement (`docs/api.md`).
pub const READ_TAG_SQL: u8 = 1;
/// Canonical encoding tag of a read through an action (a view).
pub const READ_TAG_ACTION: u8 = 2;

/// What a read asks for: one read-only SQL statement (the schema's owner only, or anyone in a publicly readable
/// schema) or an action (a view) with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRequest {
    /// One SELECT with values bound to its placeholders.
    Sql {
        /// The statement.
        sql: String,
        /// Values bound to `?` / `?NNN`, in order.
        params: Vec<Value>,
    },
    /// A view action with its arguments (JSON values, the same value type as transaction parameters).
    Action {
        /// The action's name.
        action: String,
        /// Its arguments, in declaration order.
        args: Vec<Value>,
    },
}

/// The signature part of a read envelope: who signs, for which chain, with which challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadAuth {
    /// The network the read is for; a node refuses any other.
    pub chain_id: String,
    /// Name of the signature standard (`docs/auth.md`).
    pub standard: String,
    /// The signer as the standard names it, hex (the same bytes a transaction's `sender` carries).
    pub sender: String,
    /// The single-use challenge from `GET /v1/challenge`, exactly as the node gave it.
    pub challenge: String,
    /// The signature over [`ReadEnvelope::signed_text`], hex, in the standard's format.
    pub signature: String,
}

/// The JSON body of `POST /v1/query` and `POST /v1/call`.
///
/// Exactly one of `sql` and `action` is given; `params` go with `sql`, `args` with `action`. Without `auth` the
/// read is unsigned (allowed only where the schema or the view is public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReadEnvelope {
    /// The schema read.
    pub schema: String,
    /// One read-only SQL statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Values bound to the statement's placeholders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Value>,
    /// The view action called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The action's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Value>,
    /// The caller's signature; absent for an unsigned read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ReadAuth>,
}

/// Why an envelope does not name one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Both `sql` and `action`, or neither.
    #[error("a read names exactly one of \"sql\" and \"action\"")]
    NotOneRequest,
    /// `params` given with `action`, or `args` with `sql`.
    #[error("{0}")]
    MisplacedValues(&'static str),
    /// An action name that is not `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    #[error("action name {0:?} is not [A-Za-z_][A-Za-z0-9_]{{0,62}}")]
    BadActionName(String),
}

impl ReadEnvelope {
    /// An envelope for one SQL statement, unsigned.
    pub fn sql(schema: &str, sql: &str, params: Vec<Value>) -> ReadEnvelope {
        ReadEnvelope {
            schema: schema.into(),
            sql: Some(sql.into()),
            params,
            ..ReadEnvelope::default()
        }
    }

    /// An envelope for a view action, unsigned.
    pub fn action(schema: &str, action: &str, args: Vec<Value>) -> ReadEnvelope {
        ReadEnvelope {
            schema: schema.into(),
            action: Some(action.into()),
            args,
            ..ReadEnvelope::default()
        }
    }

    /// The one request the envelope names.
    pub fn request(&self) -> Result<ReadRequest, EnvelopeError> {
        match (&self.sql, &self.action) {
            (Some(sql), None) => {
                if !self.args.is_empty() {
                    return Err(EnvelopeError::MisplacedValues(
                        "\"args\" go with \"action\"; a SQL read binds \"params\"",
                    ));
                }
                Ok(ReadRequest::Sql {
                    sql: sql.clone(),
                    params: self.params.clone(),
                })
            }
            (None, Some(action)) => {
                if !self.params.is_empty() {
                    return Err(EnvelopeError::MisplacedValues(
                        "\"params\" go with \"sql\"; an action read takes \"args\"",
                    ));
                }
                if !valid_action_name(action) {
                    return Err(EnvelopeError::BadActionName(action.clone()));
                }
                Ok(ReadRequest::Action {
                    action: action.clone(),
                    args: self.args.clone(),
                })
            }
            _ => Err(EnvelopeError::NotOneRequest),
        }
    }

    /// The text the caller signs, given the request and the signature fields (`docs/api.md` gives it byte for
    /// byte).
    pub fn signed_text(&self, request: &ReadRequest, auth: &ReadAuth) -> String {
        signed_text(
            &auth.chain_id,
            &auth.standard,
            &auth.challenge,
            &self.schema,
            request,
        )
    }
}

/// Whether `name` is a valid action name: `[A-Za-z_][A-Za-z0-9_]{0,62}`. It appears on a line of the signed text,
/// so it can hold no newline.
pub fn valid_action_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl ReadRequest {
    /// The canonical encoding: tag, schema, then the statement or action name, then the values (a u32 count,
    /// always present, then each value as in transaction parameters).
    pub fn encode(&self, schema: &str) -> Vec<u8> {
        let mut w = Writer::default();
        let (tag, text, values) = match self {
            ReadRequest::Sql { sql, params } => (READ_TAG_SQL, sql, params),
            ReadRequest::Action { action, args } => (READ_TAG_ACTION, action, args),
        };
        w.u8(tag);
        w.str(schema);
        w.str(text);
        w.u32(u32::try_from(values.len()).unwrap_or(u32::MAX));
        for v in values {
            w.value(v);
        }
        w.0
    }

    /// SHA-256 of [`ReadRequest::encode`]: what the signed text commits to.
    pub fn digest(&self, schema: &str) -> [u8; 32] {
        Sha256::digest(self.encode(schema)).into()
    }
}

/// The text a wallet signs for a read:
///
/// ```text
/// dstorage read
/// chain id: <chain id>
/// standard: <standard>
/// challenge: <challenge>
/// schema: <schema>
/// action: <action name, or "sql" for a SQL read>
/// request sha256: <lowercase hex SHA-256 of the canonical request encoding>
/// ```
///
/// (each line ends with `\n`). `sql` is not an action name a SQL read could be confused with: the digest's tag
/// tells the two apart.
pub fn signed_text(
    chain_id: &str,
    standard: &str,
    challenge: &str,
    schema: &str,
    request: &ReadRequest,
) -> String {
    let action = match request {
        ReadRequest::Sql { .. } => "sql",
        ReadRequest::Action { action, .. } => action,
    };
    format!(
        "{READ_TEXT_TITLE}\nchain id: {chain_id}\nstandard: {standard}\nchallenge: {challenge}\nschema: {schema}\naction: {action}\nrequest sha256: {}\n",
        hex::encode(request.digest(schema)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_text_matches_the_example_in_docs_api_md() {
        let env = ReadEnvelope::sql("app", "SELECT 1", Vec::new());
        let request = env.request().unwrap();
        assert_eq!(
            hex::encode(request.encode("app")),
            "01000000036170700000000853454c454354203100000000"
        );
        let text = signed_text("dstorage-devnet", "ed25519", "ab", "app", &request);
        assert_eq!(
            text,
            format!(
                "dstorage read\nchain id: dstorage-devnet\nstandard: ed25519\nchallenge: ab\nschema: app\naction: sql\nrequest sha256: {}\n",
                hex::encode(request.digest("app"))
            )
        );
        assert!(!text.starts_with(crate::tx::SIGNED_TEXT_TITLE));
    }

    #[test]
    fn the_digest_covers_schema_kind_text_and_every_value() {
        let a = ReadRequest::Action {
            action: "get".into(),
            args: vec![Value::Integer(1)],
        };
        let b = ReadRequest::Action {
            action: "get".into(),
            args: vec![Value::Text("1".into())],
        };
        let c = ReadRequest::Sql {
            sql: "get".into(),
            params: vec![Value::Integer(1)],
        };
        assert_ne!(a.digest("s"), b.digest("s"));
        assert_ne!(a.digest("s"), c.digest("s"));
        assert_ne!(a.digest("s"), a.digest("t"));
    }

    #[test]
    fn an_envelope_names_exactly_one_request_with_its_own_values() {
        let mut both = ReadEnvelope::sql("s", "SELECT 1", Vec::new());
        both.action = Some("a".into());
        assert_eq!(both.request(), Err(EnvelopeError::NotOneRequest));
        assert_eq!(
            ReadEnvelope::default().request(),
            Err(EnvelopeError::NotOneRequest)
        );
        let mut args_on_sql = ReadEnvelope::sql("s", "SELECT 1", Vec::new());
        args_on_sql.args = vec![Value::Null];
        assert!(matches!(
            args_on_sql.request(),
            Err(EnvelopeError::MisplacedValues(_))
        ));
        let bad = ReadEnvelope::action("s", "a\nschema: x", Vec::new());
        assert!(matches!(
            bad.request(),
            Err(EnvelopeError::BadActionName(_))
        ));
        let json = r#"{"schema":"s","sql":"SELECT 1","signature":"00"}"#;
        assert!(serde_json::from_str::<ReadEnvelope>(json).is_err());
    }
}
