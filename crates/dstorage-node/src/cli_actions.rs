//! The CLI's action commands: `dstorage call` (in `cli.rs`, through the common submit path) and
//! `dstorage actions`.

use std::process::ExitCode;

use anyhow::Context;
use dstorage_client::Client;
use dstorage_types::value::Value;

/// Parse `--arg` values: JSON `42`, `"text"`, `null` or `{"blob":"<hex>"}`.
pub fn parse_args(args: &[String]) -> anyhow::Result<Vec<Value>> {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::from_str::<Value>(a).with_context(|| {
                format!(
                    "--arg #{} {a:?} is not a JSON value (42, \"text\", null or {{\"blob\":\"00ff\"}})",
                    i + 1
                )
            })
        })
        .collect()
}

/// `dstorage actions SCHEMA`: one line per action (its header as the schema file writes it), or the JSON
/// answer of `GET /v1/schemas/{schema}/actions`.
pub async fn list(client: &Client, schema: &str, json: bool) -> anyhow::Result<ExitCode> {
    let r = client.actions(schema).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    if r.public_read {
        println!("-- schema {schema} is publicly readable (PUBLIC READ)");
    }
    if r.actions.is_empty() {
        println!("-- schema {schema} declares no actions");
    }
    for a in &r.actions {
        println!("{}", a.signature);
    }
    Ok(ExitCode::SUCCESS)
}
