//! `dstorage grant`, `revoke`, `grants` and `read`: access grants and signed reads from the command line
//! (`docs/api.md`, "Grants" and "Signed reads").

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use dstorage_client::api::{GrantsResponse, QueryResponse};
use dstorage_client::Client;
use dstorage_types::read::ReadEnvelope;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

use crate::cli_common::{CommonArgs, SignerArgs};

/// `dstorage grant`.
#[derive(Args, Debug)]
pub struct GrantArgs {
    /// The grantee's identity (as `dstorage key show` prints it).
    #[arg(long)]
    pub grantee: String,
    /// The data granted.
    #[arg(long)]
    pub data_id: String,
    /// Unix seconds (block time) before which the grant cannot be revoked; 0 (default) revocable at once.
    #[arg(long, default_value_t = 0)]
    pub locked_until: u64,
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `dstorage revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The grantee's identity.
    #[arg(long)]
    pub grantee: String,
    /// The data the grant names.
    #[arg(long)]
    pub data_id: String,
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `dstorage grants`.
#[derive(Args, Debug)]
pub struct GrantsArgs {
    /// Grants made by this identity (default: your key's, when no grantee is given).
    #[arg(long)]
    pub owner: Option<String>,
    /// Grants made to this identity.
    #[arg(long)]
    pub grantee: Option<String>,
    /// Only grants of this data id.
    #[arg(long)]
    pub data_id: Option<String>,
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `dstorage read`.
#[derive(Args, Debug)]
pub struct ReadArgs {
    /// The schema read.
    pub schema: String,
    /// The view action to call (`POST /v1/call`); omit it with `--sql`.
    pub action: Option<String>,
    /// An argument of the action, in JSON (`42`, `"text"`, `null`, `{"blob":"00ff"}`); repeat in order.
    #[arg(long = "arg", value_name = "JSON")]
    pub args: Vec<String>,
    /// One SELECT to run as the schema's owner (`POST /v1/query`) instead of an action.
    #[arg(long, conflicts_with = "action")]
    pub sql: Option<String>,
    /// A value bound to the next `?` of `--sql`, in JSON; repeat in order.
    #[arg(long = "param", value_name = "JSON", requires = "sql")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn json_values(flag: &str, texts: &[String]) -> anyhow::Result<Vec<Value>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::from_str::<Value>(p).with_context(|| {
                format!(
                    "{flag} #{} {p:?} is not a JSON value (42, \"text\", null or {{\"blob\":\"00ff\"}})",
                    i + 1
                )
            })
        })
        .collect()
}

/// `dstorage grant`.
pub async fn grant(a: GrantArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common.node);
    let signer = crate::cli_common::load_signer(&a.signer)?;
    let payload = Payload::Grant {
        grantee: a.grantee.clone(),
        data_id: a.data_id.clone(),
        locked_until: a.locked_until,
    };
    let r = crate::cli_common::submit(&client, &signer, payload, &a.common).await?;
    crate::cli_common::print_tx_result(
        &r,
        &a.common,
        Some(&format!("granted {:?} to {}", a.data_id, a.grantee)),
    )
}

/// `dstorage revoke`.
pub async fn revoke(a: RevokeArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common.node);
    let signer = crate::cli_common::load_signer(&a.signer)?;
    let payload = Payload::Revoke {
        grantee: a.grantee.clone(),
        data_id: a.data_id.clone(),
    };
    let r = crate::cli_common::submit(&client, &signer, payload, &a.common).await?;
    crate::cli_common::print_tx_result(
        &r,
        &a.common,
        Some(&format!("revoked {:?} from {}", a.data_id, a.grantee)),
    )
}

/// `dstorage grants`.
pub async fn grants(a: GrantsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common.node);
    let owner = match (&a.owner, &a.grantee) {
        (None, None) => Some(
            crate::cli_common::load_signer(&a.signer)?
                .identity()
                .to_owned(),
        ),
        _ => a.owner.clone(),
    };
    let r: GrantsResponse = client
        .grants(owner.as_deref(), a.grantee.as_deref(), a.data_id.as_deref())
        .await?;
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if r.grants.is_empty() {
        println!("no grants (height {})", r.height);
    } else {
        for g in &r.grants {
            println!(
                "{} -> {} data {:?} locked until {} ({}, height {})",
                g.owner, g.grantee, g.data_id, g.locked_until, g.origin, g.height
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `dstorage read`: a signed read, of one SELECT (`--sql`, the owner's) or of a view action.
pub async fn read(a: ReadArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common.node);
    let signer = crate::cli_common::load_signer(&a.signer)?;
    let (envelope, path) = match (&a.sql, &a.action) {
        (Some(sql), None) => (
            ReadEnvelope::sql(&a.schema, sql, json_values("--param", &a.params)?),
            "/v1/query",
        ),
        (None, Some(action)) => (
            ReadEnvelope::action(&a.schema, action, json_values("--arg", &a.args)?),
            "/v1/call",
        ),
        _ => bail!("name an ACTION to call, or give --sql \"SELECT ...\""),
    };
    let envelope = client.sign_read(&signer, envelope).await?;
    let answer: serde_json::Value = client.post_read(path, &envelope).await?;
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        match serde_json::from_value::<QueryResponse>(answer.clone()) {
            Ok(rows) => print!("{}", crate::cli_common::render_rows(&rows)),
            Err(_) => println!("{}", serde_json::to_string_pretty(&answer)?),
        }
    }
    Ok(ExitCode::SUCCESS)
}
