//! Transactions: the signed envelope, its payloads, their one canonical byte encoding, and the text a wallet signs.
//!
//! The encoding is documented byte by byte in `docs/protocol.md`. Every length is a fixed-width big-endian
//! integer and no field is optional, so each value has exactly one encoding; the decoder rejects trailing bytes,
//! unknown versions and tags, and invalid UTF-8, which makes "decodes" equivalent to "is the canonical encoding".

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::value::Value;

/// The only envelope version this build reads and writes.
pub const TX_VERSION: u8 = 1;

/// First byte of a bundle: several version-1 transactions carried as one CometBFT transaction.
///
/// A bundle carries no signature of its own and grants nothing: each member is checked and executed exactly as
/// if it stood alone, in bundle order. Nodes build bundles so that CometBFT's per-transaction costs (RPC,
/// mempool, gossip, recheck) are paid once per group of transactions. Layout in `docs/protocol.md`.
pub const BUNDLE_VERSION: u8 = 2;

/// The fewest members a bundle holds; a single transaction travels bare, so it has one encoding on the chain.
pub const BUNDLE_MIN_TXS: usize = 2;

/// First line of every text a wallet signs for a transaction.
pub const SIGNED_TEXT_TITLE: &str = "dstorage transaction";

/// Why bytes are not a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated: {field} needs {needed} more bytes, {left} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the input.
        left: usize,
    },
    /// Bytes remained after the last field.
    #[error("{0} trailing bytes after the transaction")]
    TrailingBytes(usize),
    /// The envelope version is not [`TX_VERSION`].
    #[error("unsupported transaction version {0} (this node reads version {TX_VERSION}, and bundles of them, version {BUNDLE_VERSION})")]
    UnsupportedVersion(u8),
    /// A parameter value's type tag is not 0 (NULL), 1 (INTEGER), 2 (TEXT) or 3 (BLOB).
    #[error("unknown parameter value tag {0}")]
    UnknownValue(u8),
    /// Payload tag 4 (SQL with parameters) with a count of zero; tag 3 is the encoding without parameters.
    #[error("SQL payload with parameters has none (use payload tag 3)")]
    NoParameters,
    /// The payload tag names no payload type.
    #[error("unknown payload type tag {0}")]
    UnknownPayload(u8),
    /// A text field is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// The input is empty.
    #[error("empty transaction")]
    Empty,
    /// A bundle declares fewer than [`BUNDLE_MIN_TXS`] members.
    #[error("a bundle holds at least {BUNDLE_MIN_TXS} transactions, this one declares {0}")]
    BundleTooSmall(u32),
    /// A bundle member is not a version-1 transaction (bundles do not nest; members are never empty).
    #[error(
        "bundle member {index} is not a version-{TX_VERSION} transaction (first byte {first:?})"
    )]
    BundleMember {
        /// The member's position in the bundle, from 0.
        index: usize,
        /// Its first byte, `None` if it is empty.
        first: Option<u8>,
    },
}

/// What a transaction asks the network to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Payload {
    /// Create a schema owned by the sender and run its DDL (and any initial DML) in it.
    DeploySchema {
        /// The schema (namespace) name.
        schema: String,
        /// SQL run inside the new schema, usually `CREATE TABLE ...` statements.
        sql: String,
    },
    /// Drop a schema the sender owns, with all its tables and rows.
    DropSchema {
        /// The schema to drop.
        schema: String,
    },
    /// Run SQL in a schema the sender owns: all statements in one atomic transaction.
    Sql {
        /// The schema the statements run in.
        schema: String,
        /// One or more `;`-separated statements.
        sql: String,
        /// Values bound to the `?` / `?NNN` placeholders, in order. With parameters the SQL must be exactly
        /// one statement. Binding keeps user data out of the SQL text (no quoting, no injection), and lets
        /// every node reuse the statement it prepared for the same text.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        params: Vec<Value>,
    },
    /// Grant `grantee` access to the sender's data `data_id` (`docs/protocol.md`, "Grants"). The sender is the
    /// grant's owner; the grant cannot be revoked before `locked_until` (unix seconds, compared with the block
    /// header's time).
    Grant {
        /// The grantee's canonical identity (`docs/auth.md`).
        grantee: String,
        /// What is granted: an identifier the owner's schemas and actions give meaning to.
        data_id: String,
        /// Unix seconds before which a revoke is refused; 0 for a grant revocable at once.
        locked_until: u64,
    },
    /// Revoke the sender's grant of `data_id` to `grantee`.
    Revoke {
        /// The grantee's canonical identity.
        grantee: String,
        /// The data the grant names.
        data_id: String,
    },
    /// Call a write (or view) action of a schema with arguments (`docs/schemas.md`): anyone the action's rule
    /// admits may send it, not only the owner.
    Call {
        /// The schema the action belongs to.
        schema: String,
        /// The action's name.
        action: String,
        /// The arguments, in the action's parameter order.
        #[serde(default)]
        args: Vec<Value>,
    },
}

impl Payload {
    /// The wire tag of this payload type.
    pub fn tag(&self) -> u8 {
        match self {
            Payload::DeploySchema { .. } => 1,
            Payload::DropSchema { .. } => 2,
            Payload::Sql { params, .. } if params.is_empty() => 3,
            Payload::Sql { .. } => 4,
            Payload::Grant { .. } => 6,
            Payload::Revoke { .. } => 7,
            Payload::Call { .. } => 5,
        }
    }

    /// The payload type's name, as shown in signed text and the API.
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::DeploySchema { .. } => "deploy_schema",
            Payload::DropSchema { .. } => "drop_schema",
            Payload::Sql { .. } => "sql",
            Payload::Grant { .. } => "grant",
            Payload::Revoke { .. } => "revoke",
            Payload::Call { .. } => "call",
        }
    }

    /// The schema the payload acts on.
    pub fn schema(&self) -> &str {
        match self {
            Payload::DeploySchema { schema, .. }
            | Payload::DropSchema { schema }
            | Payload::Sql { schema, .. }
            | Payload::Call { schema, .. } => schema,
            // Grants belong to their owner, not to a schema: the signed text's schema line is empty.
            Payload::Grant { .. } | Payload::Revoke { .. } => "",
        }
    }

    /// Canonical encoding: tag, then the fields in declaration order.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.tag());
        match self {
            Payload::DeploySchema { schema, sql } => {
                w.str(schema);
                w.str(sql);
            }
            Payload::Sql {
                schema,
                sql,
                params,
            } => {
                w.str(schema);
                w.str(sql);
                if !params.is_empty() {
                    w.u32(u32::try_from(params.len()).unwrap_or(u32::MAX));
                    for p in params {
                        w.value(p);
                    }
                }
            }
            Payload::DropSchema { schema } => w.str(schema),
            Payload::Grant {
                grantee,
                data_id,
                locked_until,
            } => {
                w.str(grantee);
                w.str(data_id);
                w.u64(*locked_until);
            }
            Payload::Revoke { grantee, data_id } => {
                w.str(grantee);
                w.str(data_id);
            }
            Payload::Call {
                schema,
                action,
                args,
            } => {
                w.str(schema);
                w.str(action);
                w.values(args);
            }
        }
        w.0
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Payload, DecodeError> {
        let tag = r.u8("payload tag")?;
        Ok(match tag {
            1 => Payload::DeploySchema {
                schema: r.str("schema")?,
                sql: r.str("sql")?,
            },
            2 => Payload::DropSchema {
                schema: r.str("schema")?,
            },
            3 => Payload::Sql {
                schema: r.str("schema")?,
                sql: r.str("sql")?,
                params: Vec::new(),
            },
            4 => {
                let schema = r.str("schema")?;
                let sql = r.str("sql")?;
                let count = r.u32("parameter count")?;
                // Tag 3 is the only encoding of "no parameters": one payload, one byte string.
                if count == 0 {
                    return Err(DecodeError::NoParameters);
                }
                // Each value takes at least one byte, so a count beyond the remaining bytes is a lie; checking
                // it first keeps a forged count from reserving memory.
                if count as usize > r.buf.len() {
                    return Err(DecodeError::Truncated {
                        field: "parameters",
                        needed: count as usize,
                        left: r.buf.len(),
                    });
                }
                let mut params = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    params.push(r.value()?);
                }
                Payload::Sql {
                    schema,
                    sql,
                    params,
                }
            }
            6 => Payload::Grant {
                grantee: r.str("grantee")?,
                data_id: r.str("data id")?,
                locked_until: r.u64("locked until")?,
            },
            7 => Payload::Revoke {
                grantee: r.str("grantee")?,
                data_id: r.str("data id")?,
            },
            5 => Payload::Call {
                schema: r.str("schema")?,
                action: r.str("action")?,
                args: r.values()?,
            },
            other => return Err(DecodeError::UnknownPayload(other)),
        })
    }

    /// SHA-256 of the canonical payload encoding: what the signed text commits to.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// The lines a `call` adds to the signed text (its action and the digest of its arguments), so a wallet
    /// shows what is called; empty for other payloads.
    fn signed_call_lines(&self) -> String {
        match self {
            Payload::Call { action, args, .. } => format!(
                "action: {action}\narguments sha256: {}\n",
                hex::encode(arguments_digest(args))
            ),
            _ => String::new(),
        }
    }
}

/// SHA-256 of the canonical encoding of an argument list (a u32 count, then each value as in payload tag 4):
/// what a `call`'s signed text and a signed read name as `arguments sha256`.
pub fn arguments_digest(args: &[Value]) -> [u8; 32] {
    let mut w = Writer::default();
    w.values(args);
    Sha256::digest(w.0).into()
}

/// The unsigned part of a transaction: everything the signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBody {
    /// The network this transaction is for; a node refuses any other.
    pub chain_id: String,
    /// Name of the signature standard (e.g. `eth_personal_sign`), see docs/auth.md.
    pub standard: String,
    /// The signer as the standard names it (address or public key bytes).
    #[serde(with = "hex_bytes")]
    pub sender: Vec<u8>,
    /// Per-sender sequence number, starting at 1; each must be exactly one more than the last committed.
    pub nonce: u64,
    /// What to do.
    pub payload: Payload,
}

impl TxBody {
    /// The human-readable text the sender's wallet signs (documented in docs/protocol.md).
    ///
    /// It names the standard so a signature made for one standard cannot be replayed as another that hashes the
    /// same way (ed25519 vs solana_sign_message), which would act under a different identity.
    pub fn signed_text(&self) -> String {
        format!(
            "{SIGNED_TEXT_TITLE}\nchain id: {}\nstandard: {}\nnonce: {}\ntype: {}\nschema: {}\n{}payload sha256: {}\n",
            self.chain_id,
            self.standard,
            self.nonce,
            self.payload.type_name(),
            self.payload.schema(),
            self.payload.signed_call_lines(),
            hex::encode(self.payload.digest()),
        )
    }

    /// Attach a signature.
    pub fn with_signature(self, signature: Vec<u8>) -> Transaction {
        Transaction {
            body: self,
            signature,
        }
    }
}

/// A signed transaction, as carried in CometBFT blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// What is signed.
    #[serde(flatten)]
    pub body: TxBody,
    /// The signature over [`TxBody::signed_text`], in the standard's format.
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

impl Transaction {
    /// The one canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(TX_VERSION);
        w.str(&self.body.chain_id);
        w.str(&self.body.standard);
        w.bytes(&self.body.sender);
        w.u64(self.body.nonce);
        w.raw(&self.body.payload.encode());
        w.bytes(&self.signature);
        w.0
    }

    /// Decode the canonical encoding; any other byte string is an error.
    pub fn decode(bytes: &[u8]) -> Result<Transaction, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        let mut r = Reader { buf: bytes };
        let version = r.u8("version")?;
        if version != TX_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let chain_id = r.str("chain id")?;
        let standard = r.str("standard")?;
        let sender = r.bytes("sender")?;
        let nonce = r.u64("nonce")?;
        let payload = Payload::decode_from(&mut r)?;
        let signature = r.bytes("signature")?;
        if !r.buf.is_empty() {
            return Err(DecodeError::TrailingBytes(r.buf.len()));
        }
        Ok(Transaction {
            body: TxBody {
                chain_id,
                standard,
                sender,
                nonce,
                payload,
            },
            signature,
        })
    }

    /// The transaction hash: SHA-256 of the encoding, the same hash CometBFT uses for the tx.
    pub fn hash(&self) -> TxHash {
        tx_hash(&self.encode())
    }
}

/// Encode `members` (each the canonical encoding of a version-1 transaction) as one bundle.
///
/// The caller passes at least [`BUNDLE_MIN_TXS`] members; [`split_bundle`] refuses anything else, so a
/// smaller group should be sent as bare transactions.
pub fn encode_bundle<T: AsRef<[u8]>>(members: &[T]) -> Vec<u8> {
    let len = 5 + members.iter().map(|m| 4 + m.as_ref().len()).sum::<usize>();
    let mut w = Writer(Vec::with_capacity(len));
    w.u8(BUNDLE_VERSION);
    w.u32(u32::try_from(members.len()).unwrap_or(u32::MAX));
    for m in members {
        w.bytes(m.as_ref());
    }
    w.0
}

/// The transactions a CometBFT transaction carries: itself if it is a bare transaction (first byte
/// [`TX_VERSION`]), else the members of a bundle, in order.
///
/// Only the framing is checked here: a bundle's layout, its member count, and that each member starts like a
/// version-1 transaction. Members are decoded (and refused) one by one by whoever checks them, so an error can
/// name the member at fault.
pub fn split_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Empty),
        Some(&TX_VERSION) => Ok(vec![bytes]),
        Some(&BUNDLE_VERSION) => {
            let mut r = Reader { buf: &bytes[1..] };
            let count = r.u32("bundle member count")?;
            if (count as usize) < BUNDLE_MIN_TXS {
                return Err(DecodeError::BundleTooSmall(count));
            }
            // Every member takes at least 5 bytes, which bounds the allocation by the input, not the count.
            let mut members = Vec::with_capacity((count as usize).min(r.buf.len() / 5));
            for index in 0..count as usize {
                let b = r.take("bundle member length", 4)?;
                let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let member = r.take("bundle member", len)?;
                if member.first() != Some(&TX_VERSION) {
                    return Err(DecodeError::BundleMember {
                        index,
                        first: member.first().copied(),
                    });
                }
                members.push(member);
            }
            if !r.buf.is_empty() {
                return Err(DecodeError::TrailingBytes(r.buf.len()));
            }
            Ok(members)
        }
        Some(&other) => Err(DecodeError::UnsupportedVersion(other)),
    }
}

/// SHA-256 of raw transaction bytes (CometBFT's tx hash).
pub fn tx_hash(bytes: &[u8]) -> TxHash {
    TxHash(Sha256::digest(bytes).into())
}

/// A transaction hash; shown as upper-case hex like CometBFT does, parsed from either case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxHash(pub [u8; 32]);

impl std::fmt::Display for TxHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl std::fmt::Debug for TxHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxHash({self})")
    }
}

impl std::str::FromStr for TxHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(s).map_err(|e| format!("tx hash {s:?} is not hex: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("tx hash has {} bytes, expected 32", b.len()))?;
        Ok(TxHash(arr))
    }
}

impl Serialize for TxHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for TxHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        // Lengths above u32::MAX cannot occur: CometBFT caps a tx far below 4 GiB and so does the API.
        self.0
            .extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(v);
    }
    pub(crate) fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.u8(0),
            Value::Integer(i) => {
                self.u8(1);
                self.0.extend_from_slice(&i.to_be_bytes());
            }
            Value::Text(t) => {
                self.u8(2);
                self.str(t);
            }
            Value::Blob(b) => {
                self.u8(3);
                self.bytes(b);
            }
        }
    }
    /// A u32 count, then each value (an empty list is the count 0).
    fn values(&mut self, vs: &[Value]) {
        self.u32(u32::try_from(vs.len()).unwrap_or(u32::MAX));
        for v in vs {
            self.value(v);
        }
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n,
                left: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(field, 1)?[0])
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(field, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let b = self.take(field, 4)?;
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        Ok(self.take(field, len)?.to_vec())
    }
    fn str(&mut self, field: &'static str) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes(field)?).map_err(|_| DecodeError::InvalidUtf8(field))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(field, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A u32 count and that many values; the count is checked against the bytes left before anything is
    /// reserved, so a forged count allocates nothing.
    fn values(&mut self) -> Result<Vec<Value>, DecodeError> {
        let count = self.u32("argument count")? as usize;
        if count > self.buf.len() {
            return Err(DecodeError::Truncated {
                field: "arguments",
                needed: count,
                left: self.buf.len(),
            });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.value()?);
        }
        Ok(out)
    }
    fn value(&mut self) -> Result<Value, DecodeError> {
        Ok(match self.u8("parameter type")? {
            0 => Value::Null,
            1 => {
                let b = self.take("integer parameter", 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Integer(i64::from_be_bytes(a))
            }
            2 => Value::Text(self.str("text parameter")?),
            3 => Value::Blob(self.bytes("blob parameter")?),
            other => return Err(DecodeError::UnknownValue(other)),
        })
    }
}

/// Serde helper: bytes as lower-case hex strings in JSON.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize bytes as hex.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Deserialize hex (with or without `0x`) into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transaction {
        TxBody {
            chain_id: "dstorage-devnet".into(),
            standard: "ed25519".into(),
            sender: vec![7; 32],
            nonce: 42,
            payload: Payload::Sql {
                schema: "app".into(),
                sql: "INSERT INTO users VALUES (1, 'satoshi', 49)".into(),
                params: Vec::new(),
            },
        }
        .with_signature(vec![9; 64])
    }

    #[test]
    fn encoding_round_trips_and_hash_is_sha256_of_bytes() {
        let tx = sample();
        let bytes = tx.encode();
        assert_eq!(Transaction::decode(&bytes).unwrap(), tx);
        assert_eq!(tx.hash().0, <[u8; 32]>::from(Sha256::digest(&bytes)));
    }

    #[test]
    fn decoder_rejects_every_truncation_and_any_trailing_byte() {
        let with_params = with_params(vec![
            Value::Null,
            Value::Integer(7),
            Value::Text("t".into()),
            Value::Blob(vec![1, 2]),
        ]);
        for tx in [sample(), with_params] {
            let bytes = tx.encode();
            for cut in 0..bytes.len() {
                assert!(
                    Transaction::decode(&bytes[..cut]).is_err(),
                    "prefix {cut} decoded"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(
                Transaction::decode(&longer),
                Err(DecodeError::TrailingBytes(1))
            );
        }
    }

    #[test]
    fn decoder_names_unknown_version_and_payload_tag() {
        let mut bytes = sample().encode();
        bytes[0] = 2;
        assert_eq!(
            Transaction::decode(&bytes),
            Err(DecodeError::UnsupportedVersion(2))
        );
        let tx = sample();
        let mut bytes = tx.encode();
        // version + chain id + standard + sender + nonce, then the payload tag.
        let tag_at = 1 + 4 + 15 + 4 + 7 + 4 + 32 + 8;
        assert_eq!(bytes[tag_at], 3);
        bytes[tag_at] = 99;
        assert_eq!(
            Transaction::decode(&bytes),
            Err(DecodeError::UnknownPayload(99))
        );
    }

    #[test]
    fn signed_text_names_chain_standard_nonce_and_payload_digest() {
        let tx = sample();
        let text = tx.body.signed_text();
        let digest = hex::encode(tx.body.payload.digest());
        assert_eq!(
            text,
            format!(
                "dstorage transaction\nchain id: dstorage-devnet\nstandard: ed25519\nnonce: 42\ntype: sql\nschema: app\npayload sha256: {digest}\n"
            )
        );
    }

    #[test]
    fn encoding_matches_the_worked_example_in_docs_protocol_md() {
        let tx = TxBody {
            chain_id: "c".into(),
            standard: "ed25519".into(),
            sender: vec![7; 32],
            nonce: 42,
            payload: Payload::Sql {
                schema: "app".into(),
                sql: "DELETE FROM t".into(),
                params: Vec::new(),
            },
        }
        .with_signature(vec![9; 64]);
        let expected = [
            "01".to_string(),
            "0000000163".to_string(),
            "0000000765643235353139".to_string(),
            format!("00000020{}", "07".repeat(32)),
            "000000000000002a".to_string(),
            "03".to_string(),
            "00000003617070".to_string(),
            "0000000d44454c4554452046524f4d2074".to_string(),
            format!("00000040{}", "09".repeat(64)),
        ]
        .concat();
        assert_eq!(hex::encode(tx.encode()), expected);
    }

    fn with_params(params: Vec<Value>) -> Transaction {
        TxBody {
            chain_id: "c".into(),
            standard: "ed25519".into(),
            sender: vec![7; 32],
            nonce: 42,
            payload: Payload::Sql {
                schema: "app".into(),
                sql: "INSERT INTO t VALUES (?, ?, ?, ?)".into(),
                params,
            },
        }
        .with_signature(vec![9; 64])
    }

    #[test]
    fn parameters_of_every_type_round_trip_under_payload_tag_4() {
        let tx = with_params(vec![
            Value::Null,
            Value::Integer(-2),
            Value::Text("it's".into()),
            Value::Blob(vec![0, 255]),
        ]);
        let bytes = tx.encode();
        assert_eq!(Transaction::decode(&bytes).unwrap(), tx);
        assert_eq!(tx.body.payload.tag(), 4);
        let payload = tx.body.payload.encode();
        let sql = "INSERT INTO t VALUES (?, ?, ?, ?)";
        let expected = [
            "04".to_string(),
            "00000003617070".to_string(),
            format!("{:08x}{}", sql.len(), hex::encode(sql)),
            "00000004".to_string(),
            "00".to_string(),
            "01fffffffffffffffe".to_string(),
            "020000000469742773".to_string(),
            "030000000200ff".to_string(),
        ]
        .concat();
        assert_eq!(hex::encode(payload), expected);
    }

    #[test]
    fn the_signature_covers_parameter_values() {
        let a = with_params(vec![Value::Integer(1)]);
        let b = with_params(vec![Value::Integer(2)]);
        let c = with_params(vec![Value::Text("1".into())]);
        assert_ne!(a.body.payload.digest(), b.body.payload.digest());
        assert_ne!(a.body.payload.digest(), c.body.payload.digest());
        assert_ne!(a.body.signed_text(), b.body.signed_text());
    }

    #[test]
    fn decoder_refuses_empty_forged_and_unknown_parameters() {
        let good = with_params(vec![Value::Integer(1)]).encode();
        // The count sits after version, chain id, standard, sender, nonce, tag, schema and SQL.
        let sql = "INSERT INTO t VALUES (?, ?, ?, ?)";
        let at = 1 + (4 + 1) + (4 + 7) + (4 + 32) + 8 + 1 + (4 + 3) + (4 + sql.len());
        assert_eq!(&good[at..at + 4], &[0, 0, 0, 1]);

        let mut zero = good[..at].to_vec();
        zero.extend_from_slice(&[0, 0, 0, 0]);
        zero.extend_from_slice(&good[at + 4 + 9..]);
        assert_eq!(Transaction::decode(&zero), Err(DecodeError::NoParameters));

        let mut forged = good.clone();
        forged[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Transaction::decode(&forged),
            Err(DecodeError::Truncated {
                field: "parameters",
                ..
            })
        ));

        let mut unknown = good.clone();
        unknown[at + 4] = 9;
        assert_eq!(
            Transaction::decode(&unknown),
            Err(DecodeError::UnknownValue(9))
        );
        assert_eq!(
            DecodeError::UnknownValue(9).to_string(),
            "unknown parameter value tag 9"
        );
    }

    #[test]
    fn sql_without_parameters_keeps_tag_3_and_its_json_has_no_params_field() {
        let tx = sample();
        assert_eq!(tx.body.payload.tag(), 3);
        let json = serde_json::to_value(&tx.body.payload).unwrap();
        assert!(json.get("params").is_none(), "{json}");
        let with =
            serde_json::to_value(&with_params(vec![Value::Integer(5)]).body.payload).unwrap();
        assert_eq!(with["params"], serde_json::json!([5]));
        let back: Payload = serde_json::from_value(with).unwrap();
        assert_eq!(back, with_params(vec![Value::Integer(5)]).body.payload);
    }

    fn call(args: Vec<Value>) -> Transaction {
        TxBody {
            chain_id: "c".into(),
            standard: "ed25519".into(),
            sender: vec![7; 32],
            nonce: 1,
            payload: Payload::Call {
                schema: "ids".into(),
                action: "add_credential".into(),
                args,
            },
        }
        .with_signature(vec![9; 64])
    }

    #[test]
    fn a_call_round_trips_under_tag_5_and_its_signed_text_names_action_and_argument_digest() {
        let tx = call(vec![
            Value::Text("c1".into()),
            Value::Integer(3),
            Value::Null,
        ]);
        let bytes = tx.encode();
        assert_eq!(Transaction::decode(&bytes).unwrap(), tx);
        assert_eq!(tx.body.payload.tag(), 5);
        let expected = [
            "05".to_string(),
            "00000003696473".to_string(),
            format!("0000000e{}", hex::encode("add_credential")),
            "00000003".to_string(),
            "02000000026331".to_string(),
            "010000000000000003".to_string(),
            "00".to_string(),
        ]
        .concat();
        assert_eq!(hex::encode(tx.body.payload.encode()), expected);
        let args = hex::encode(arguments_digest(&[
            Value::Text("c1".into()),
            Value::Integer(3),
            Value::Null,
        ]));
        let text = tx.body.signed_text();
        assert!(
            text.contains(&format!(
                "type: call\nschema: ids\naction: add_credential\narguments sha256: {args}\npayload sha256: "
            )),
            "{text}"
        );
        // No arguments is the count 0, one encoding.
        let none = call(Vec::new());
        assert_eq!(Transaction::decode(&none.encode()).unwrap(), none);
        for cut in 0..bytes.len() {
            assert!(Transaction::decode(&bytes[..cut]).is_err(), "prefix {cut}");
        }
    }

    #[test]
    fn a_forged_argument_count_is_refused_without_allocating() {
        let mut bytes = call(vec![Value::Integer(1)]).encode();
        // The count sits after version, chain id, standard, sender, nonce, tag, schema and action.
        let at = 1 + 5 + 11 + 36 + 8 + 1 + 7 + 18;
        assert_eq!(&bytes[at..at + 4], &[0, 0, 0, 1]);
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Transaction::decode(&bytes),
            Err(DecodeError::Truncated {
                field: "arguments",
                ..
            })
        ));
    }

    #[test]
    fn tx_hash_parses_both_cases_and_prints_upper() {
        let h = sample().hash();
        let lower = h.to_string().to_lowercase();
        assert_eq!(lower.parse::<TxHash>().unwrap(), h);
        assert_eq!(h.to_string(), h.to_string().to_uppercase());
        assert!("abc".parse::<TxHash>().is_err());
    }

    #[test]
    fn a_bundle_splits_into_its_members_in_order_and_a_bare_tx_into_itself() {
        let a = sample().encode();
        let mut other = sample();
        other.body.nonce = 43;
        let b = other.encode();
        let bundle = encode_bundle(&[a.clone(), b.clone()]);
        assert_eq!(bundle[0], BUNDLE_VERSION);
        assert_eq!(split_bundle(&bundle).unwrap(), vec![&a[..], &b[..]]);
        assert_eq!(split_bundle(&a).unwrap(), vec![&a[..]]);
    }

    #[test]
    fn bundle_encoding_matches_the_example_in_docs_protocol_md() {
        let bundle = encode_bundle(&[vec![1u8, 0xaa], vec![1u8, 0xbb, 0xcc]]);
        assert_eq!(
            hex::encode(&bundle),
            "02".to_owned() + "00000002" + "00000002" + "01aa" + "00000003" + "01bbcc"
        );
    }

    #[test]
    fn split_refuses_small_nested_empty_truncated_and_padded_bundles() {
        let a = sample().encode();
        let one = {
            let mut v = vec![BUNDLE_VERSION, 0, 0, 0, 1];
            v.extend_from_slice(&(a.len() as u32).to_be_bytes());
            v.extend_from_slice(&a);
            v
        };
        assert_eq!(split_bundle(&one), Err(DecodeError::BundleTooSmall(1)));
        let nested = encode_bundle(&[a.clone(), encode_bundle(&[a.clone(), a.clone()])]);
        assert_eq!(
            split_bundle(&nested),
            Err(DecodeError::BundleMember {
                index: 1,
                first: Some(BUNDLE_VERSION)
            })
        );
        let empty_member = encode_bundle(&[a.clone(), Vec::new()]);
        assert_eq!(
            split_bundle(&empty_member),
            Err(DecodeError::BundleMember {
                index: 1,
                first: None
            })
        );
        let good = encode_bundle(&[a.clone(), a.clone()]);
        for cut in 1..good.len() {
            assert!(
                matches!(
                    split_bundle(&good[..cut]),
                    Err(DecodeError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut padded = good.clone();
        padded.push(0);
        assert_eq!(split_bundle(&padded), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(split_bundle(&[]), Err(DecodeError::Empty));
        assert_eq!(split_bundle(&[7]), Err(DecodeError::UnsupportedVersion(7)));
        // A huge declared count with no bytes behind it fails on the first member, allocating nothing big.
        assert!(matches!(
            split_bundle(&[BUNDLE_VERSION, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
