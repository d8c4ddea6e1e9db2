//! Schema actions as deployed: named, parameterised SQL with an access rule (`docs/schemas.md`).
//!
//! The deploy parses a schema file into an [`ActionCatalog`]; every node stores the same catalog for the
//! schema, so a call's rule, its argument check and the statements it runs are the same everywhere.

use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::value::Value;

/// The `@...` values an action's SQL may use besides its parameters, in the order docs/schemas.md lists them.
pub const CONTEXT_VALUES: [&str; 6] = [
    "@caller",
    "@caller_key",
    "@caller_standard",
    "@height",
    "@block_time",
    "@tx",
];

/// Who may call an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone; a public view may even be called unsigned.
    Public,
    /// Any signed caller.
    Authenticated,
    /// Only the schema's owner.
    Owner,
}

impl Access {
    /// The rule's keyword, lower-case.
    pub fn name(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Authenticated => "authenticated",
            Access::Owner => "owner",
        }
    }

    /// Whether `caller` (None: unsigned) may call an action under this rule in a schema owned by `owner`.
    pub fn allows(self, caller: Option<&Caller>, owner: &str) -> bool {
        match (self, caller) {
            (Access::Public, _) => true,
            (Access::Authenticated, Some(_)) => true,
            (Access::Owner, Some(c)) => c.identity == owner,
            (_, None) => false,
        }
    }
}

/// The type of an action parameter; the argument must have exactly this type (or be NULL if the parameter
/// says `NULL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ParamType {
    /// A 64-bit integer.
    Integer,
    /// UTF-8 text.
    Text,
    /// Bytes.
    Blob,
}

impl ParamType {
    /// The type's keyword.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Integer => "INTEGER",
            ParamType::Text => "TEXT",
            ParamType::Blob => "BLOB",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Its name with the `$`, as written in the action's SQL.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Whether NULL is accepted.
    pub nullable: bool,
}

/// One statement of an action, ready to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionStatement {
    /// The statement as the schema file wrote it.
    pub sql: String,
    /// The same statement with each `$name` / `@name` replaced by `?N` (N from 1, by first appearance), which
    /// is what runs: values are bound, never spliced into the text.
    pub exec_sql: String,
    /// The names `?1`, `?2`, ... stand for, in order.
    pub binds: Vec<String>,
}

/// A deployed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Its name (lower-case).
    pub name: String,
    /// A view only reads, runs on one node (`POST /v1/call`) and may be called unsigned if public.
    pub view: bool,
    /// Who may call it.
    pub access: Access,
    /// Its parameters, in call order.
    pub params: Vec<Param>,
    /// Its statements, run in order (a write action's in one atomic transaction).
    pub statements: Vec<ActionStatement>,
}

impl Action {
    /// The action's header as docs/schemas.md writes it, e.g. `CREATE VIEW ACTION f($id TEXT) PUBLIC`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                format!(
                    "{} {}{}",
                    p.name,
                    p.ty.name(),
                    if p.nullable { " NULL" } else { "" }
                )
            })
            .collect();
        format!(
            "CREATE {}ACTION {}({}) {}",
            if self.view { "VIEW " } else { "" },
            self.name,
            params.join(", "),
            self.access.name().to_uppercase()
        )
    }

    /// Check `args` against the parameters: count, then each type. The message names the parameter at fault.
    pub fn check_arguments(&self, args: &[Value]) -> Result<(), String> {
        if args.len() != self.params.len() {
            return Err(format!(
                "action {} takes {} argument{} ({}), got {}",
                self.name,
                self.params.len(),
                if self.params.len() == 1 { "" } else { "s" },
                self.params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                args.len()
            ));
        }
        for (i, (p, a)) in self.params.iter().zip(args).enumerate() {
            let ok = match a {
                Value::Null => p.nullable,
                Value::Integer(_) => p.ty == ParamType::Integer,
                Value::Text(_) => p.ty == ParamType::Text,
                Value::Blob(_) => p.ty == ParamType::Blob,
            };
            if !ok {
                return Err(format!(
                    "argument {} ({}) of action {} must be {}{}, got {}",
                    i + 1,
                    p.name,
                    self.name,
                    p.ty.name(),
                    if p.nullable { " or NULL" } else { "" },
                    a.type_name()
                ));
            }
        }
        Ok(())
    }

    /// The values to bind to each statement: arguments by parameter name, `@...` from `context`.
    pub fn bindings(&self, args: &[Value], context: &CallContext) -> Vec<Vec<Value>> {
        self.statements
            .iter()
            .map(|s| {
                s.binds
                    .iter()
                    .map(
                        |name| match self.params.iter().position(|p| &p.name == name) {
                            Some(i) => args.get(i).cloned().unwrap_or(Value::Null),
                            None => context.value(name),
                        },
                    )
                    .collect()
            })
            .collect()
    }
}

/// What `@caller`, `@height` and the other context values are for one call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallContext {
    /// The caller, None for an unsigned read.
    pub caller: Option<Caller>,
    /// The block height (a read: the committed height it reads).
    pub height: u64,
    /// The block header's time in unix seconds (a read: that of the height it reads).
    pub block_time: i64,
    /// The transaction hash, None in reads.
    pub tx: Option<[u8; 32]>,
}

impl CallContext {
    /// The value of `@name` (NULL for a name that is not a context value; the deploy refuses those).
    pub fn value(&self, name: &str) -> Value {
        match name {
            "@caller" => self
                .caller
                .as_ref()
                .map_or(Value::Null, |c| Value::Text(c.identity.clone())),
            "@caller_key" => self
                .caller
                .as_ref()
                .and_then(|c| c.key.clone())
                .map_or(Value::Null, Value::Blob),
            "@caller_standard" => self
                .caller
                .as_ref()
                .map_or(Value::Null, |c| Value::Text(c.standard.clone())),
            "@height" => Value::Integer(i64::try_from(self.height).unwrap_or(i64::MAX)),
            "@block_time" => Value::Integer(self.block_time),
            "@tx" => self
                .tx
                .map_or(Value::Null, |h| Value::Text(hex::encode_upper(h))),
            _ => Value::Null,
        }
    }
}

/// Everything a schema file declares besides its tables: whether ad-hoc reads are public, and its actions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActionCatalog {
    /// `PUBLIC READ;`: anyone may run ad-hoc SELECTs on the schema (`POST /v1/query`).
    pub public_read: bool,
    /// The actions, by name (a BTreeMap: one order on every node).
    pub actions: std::collections::BTreeMap<String, Action>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action() -> Action {
        Action {
            name: "add".into(),
            view: false,
            access: Access::Authenticated,
            params: vec![
                Param {
                    name: "$id".into(),
                    ty: ParamType::Text,
                    nullable: false,
                },
                Param {
                    name: "$n".into(),
                    ty: ParamType::Integer,
                    nullable: true,
                },
            ],
            statements: vec![ActionStatement {
                sql: "INSERT INTO t VALUES ($id, @caller, $n, $id)".into(),
                exec_sql: "INSERT INTO t VALUES (?1, ?2, ?3, ?1)".into(),
                binds: vec!["$id".into(), "@caller".into(), "$n".into()],
            }],
        }
    }

    #[test]
    fn arguments_are_checked_for_count_and_type_and_name_the_parameter() {
        let a = action();
        assert!(a
            .check_arguments(&[Value::Text("x".into()), Value::Null])
            .is_ok());
        assert!(a
            .check_arguments(&[Value::Text("x".into()), Value::Integer(3)])
            .is_ok());
        let e = a.check_arguments(&[Value::Text("x".into())]).unwrap_err();
        assert_eq!(e, "action add takes 2 arguments ($id, $n), got 1");
        let e = a
            .check_arguments(&[Value::Integer(1), Value::Null])
            .unwrap_err();
        assert_eq!(
            e,
            "argument 1 ($id) of action add must be TEXT, got INTEGER"
        );
        let e = a.check_arguments(&[Value::Null, Value::Null]).unwrap_err();
        assert_eq!(e, "argument 1 ($id) of action add must be TEXT, got NULL");
    }

    #[test]
    fn bindings_put_arguments_and_context_values_in_placeholder_order() {
        let ctx = CallContext {
            caller: Some(Caller {
                identity: "eth:0xab".into(),
                standard: "eth_personal_sign".into(),
                key: None,
            }),
            height: 7,
            block_time: 1_700_000_000,
            tx: None,
        };
        let b = action().bindings(&[Value::Text("c1".into()), Value::Integer(5)], &ctx);
        assert_eq!(
            b,
            vec![vec![
                Value::Text("c1".into()),
                Value::Text("eth:0xab".into()),
                Value::Integer(5)
            ]]
        );
        assert_eq!(ctx.value("@tx"), Value::Null);
        assert_eq!(ctx.value("@caller_key"), Value::Null);
        assert_eq!(ctx.value("@block_time"), Value::Integer(1_700_000_000));
    }

    #[test]
    fn rules_decide_by_caller_and_owner() {
        let owner = Caller {
            identity: "o".into(),
            standard: "ed25519".into(),
            key: None,
        };
        let other = Caller {
            identity: "x".into(),
            ..owner.clone()
        };
        assert!(Access::Public.allows(None, "o"));
        assert!(!Access::Authenticated.allows(None, "o"));
        assert!(Access::Authenticated.allows(Some(&other), "o"));
        assert!(!Access::Owner.allows(Some(&other), "o"));
        assert!(Access::Owner.allows(Some(&owner), "o"));
        assert!(!Access::Owner.allows(None, "o"));
    }
}
