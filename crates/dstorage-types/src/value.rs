//! SQL values as dstorage stores and returns them: no floating point, by design.
//!
//! JSON form (used by the HTTP API and by `QueryResult`): `null`, an integer number,
//! a string, or `{"blob":"<lowercase hex>"}` for bytes. Integers are exact `i64`:
//! clients in languages whose numbers are doubles must parse them as big integers.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One SQL value. REAL is deliberately absent: floating point is not allowed on the
/// consensus path, so the engine refuses REAL columns and REAL results.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer (also booleans: 0 and 1).
    Integer(i64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// The SQLite storage class name of this value (`NULL`, `INTEGER`, `TEXT`, `BLOB`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Integer(_) => "INTEGER",
            Value::Text(_) => "TEXT",
            Value::Blob(_) => "BLOB",
        }
    }
}

impl fmt::Display for Value {
    /// SQL literal syntax, so a printed value can be pasted back into a statement.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Value::Blob(b) => write!(f, "X'{}'", hex::encode_upper(b)),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Integer(i) => s.serialize_i64(*i),
            Value::Text(t) => s.serialize_str(t),
            Value::Blob(b) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("blob", &hex::encode(b))?;
                m.end()
            }
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, an integer, a string or {\"blob\":\"<hex>\"}")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Integer)
            .map_err(|_| E::custom(format!("integer {v} does not fit in i64")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(format!(
            "number {v} is not an integer; dstorage has no floating point"
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Text(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let key: Option<String> = map.next_key()?;
        match key.as_deref() {
            Some("blob") => {
                let hex_text: String = map.next_value()?;
                let bytes = hex::decode(&hex_text)
                    .map_err(|e| de::Error::custom(format!("blob is not hex: {e}")))?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "a blob object has exactly one key, \"blob\"",
                    ));
                }
                Ok(Value::Blob(bytes))
            }
            Some(other) => Err(de::Error::custom(format!(
                "unknown value object key {other:?}; expected \"blob\""
            ))),
            None => Err(de::Error::custom("empty object is not a value")),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_null_integer_string_and_blob_object() {
        let values = vec![
            Value::Null,
            Value::Integer(-7),
            Value::Text("satoshi".into()),
            Value::Blob(vec![0xde, 0xad]),
        ];
        let json = serde_json::to_string(&values).expect("serialize");
        assert_eq!(json, r#"[null,-7,"satoshi",{"blob":"dead"}]"#);
        let back: Vec<Value> = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, values);
    }

    #[test]
    fn json_floats_and_bad_blobs_are_refused() {
        assert!(serde_json::from_str::<Value>("1.5").is_err());
        assert!(serde_json::from_str::<Value>(r#"{"blob":"zz"}"#).is_err());
        assert!(serde_json::from_str::<Value>(r#"{"text":"a"}"#).is_err());
        assert!(serde_json::from_str::<Value>("18446744073709551615").is_err());
    }

    #[test]
    fn display_is_sql_literal_syntax() {
        assert_eq!(Value::Text("it's".into()).to_string(), "'it''s'");
        assert_eq!(Value::Blob(vec![1, 171]).to_string(), "X'01AB'");
        assert_eq!(Value::Integer(i64::MIN).to_string(), "-9223372036854775808");
    }
}
