//! What the client commands share: the `--node`/`--json` and `--key`/`--standard` options, loading the signer,
//! submitting a transaction and printing its result or rows. `cli` and the command modules it dispatches to
//! (`grants_cmd`, ...) build on this one.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use dstorage_auth::SecretKey;
use dstorage_client::api::{QueryResponse, TxResult};
use dstorage_client::{Client, Signer};
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;

use crate::config::DEFAULT_API_ADDR;

/// Options of every client command.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The node's API address.
    #[arg(long, env = "DSTORAGE_NODE", default_value = DEFAULT_API_ADDR)]
    pub node: String,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Options of commands that sign.
#[derive(Args, Debug, Clone)]
pub struct SignerArgs {
    /// Key file (created on first use if it is the default and missing).
    #[arg(long, env = "DSTORAGE_KEY")]
    pub key: Option<PathBuf>,
    /// Signature standard (default: eth_personal_sign for secp256k1 keys, ed25519 for ed25519 keys).
    #[arg(long)]
    pub standard: Option<String>,
}

pub(crate) fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The default key file, `~/.dstorage/key.json`.
pub fn default_key_path() -> PathBuf {
    home_dir().join(".dstorage").join("key.json")
}

pub(crate) fn load_signer(a: &SignerArgs) -> anyhow::Result<Signer> {
    let path = a.key.clone().unwrap_or_else(default_key_path);
    let key = if path.exists() {
        SecretKey::load(&path)?
    } else if a.key.is_none() {
        let key = SecretKey::generate(KeyType::Secp256k1);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        key.save(&path)?;
        eprintln!("created a new secp256k1 key in {}", path.display());
        key
    } else {
        bail!(
            "key file {} does not exist (create one with `dstorage key new --type secp256k1 --out {}`)",
            path.display(),
            path.display()
        );
    };
    let standard = a.standard.clone().unwrap_or_else(|| match key.key_type() {
        KeyType::Secp256k1 => "eth_personal_sign".to_string(),
        KeyType::Ed25519 => "ed25519".to_string(),
    });
    Ok(Signer::new(key, &standard)?)
}

pub(crate) async fn submit(
    client: &Client,
    signer: &Signer,
    payload: Payload,
    common: &CommonArgs,
) -> anyhow::Result<TxResult> {
    let show = !common.json && std::io::stderr().is_terminal();
    if show {
        eprintln!(
            "signed by {}; waiting for the block to commit...",
            signer.identity()
        );
    }
    let started = std::time::Instant::now();
    let r = client.submit(signer, payload).await?;
    if show {
        eprintln!("committed in {:.1}s", started.elapsed().as_secs_f64());
    }
    Ok(r)
}

pub(crate) fn print_tx_result(
    r: &TxResult,
    common: &CommonArgs,
    success: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if common.json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!("tx       {}", r.hash);
        println!("height   {}", r.height);
        if r.code == ResultCode::Ok {
            println!(
                "result   ok{}",
                success.map(|s| format!(": {s}")).unwrap_or_default()
            );
        } else {
            println!("result   {}: {}", r.code, r.message);
        }
        println!("cost     {}", r.cost);
        let noun = if r.rows_changed == 1 { "row" } else { "rows" };
        println!("changed  {} {noun}", r.rows_changed);
        if !r.columns.is_empty() {
            print!(
                "{}",
                render_rows(&QueryResponse {
                    columns: r.columns.clone(),
                    rows: r.rows.clone(),
                    cost: r.cost,
                    height: r.height
                })
            );
        }
    }
    Ok(if r.code == ResultCode::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A value as a table cell: text as is, NULL and blobs in SQL notation.
fn cell(v: &dstorage_types::value::Value) -> String {
    match v {
        dstorage_types::value::Value::Text(t) => t.clone(),
        other => other.to_string(),
    }
}

/// Render rows as an aligned text table.
pub fn render_rows(r: &QueryResponse) -> String {
    let cells: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    let mut widths: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |vals: &[String]| -> String {
        vals.iter()
            .enumerate()
            // Padded by hand: `format!`'s width is a u16, and a cell can be a blob of a megabyte
            // (its hex is longer than 65,535 characters), which panicked the CLI.
            .map(|(i, v)| {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(v.chars().count());
                format!("{v}{}", " ".repeat(pad))
            })
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = String::new();
    out.push_str(&line(&r.columns));
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push_str(&format!(
        "({} row{})\n",
        cells.len(),
        if cells.len() == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dstorage_types::value::Value;

    #[test]
    fn a_table_with_a_megabyte_blob_renders_aligned_instead_of_panicking() {
        // Bug pinned: `format!("{:<w$}")` takes a u16 width, so `dstorage exec ... RETURNING v` of a
        // 300 kB blob panicked the CLI with "Formatting argument out of range" after the write committed.
        let big = Value::Blob(vec![0; 300_000]);
        let big_len = big.to_string().chars().count();
        let r = QueryResponse {
            columns: vec!["v".into(), "n".into()],
            rows: vec![
                vec![big, Value::Integer(1)],
                vec![Value::Blob(vec![1]), Value::Integer(22)],
            ],
            cost: 0,
            height: 1,
        };
        let out = render_rows(&r);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "header, rule, two rows, count");
        // Every line puts its second column after the first column's full width.
        for line in &lines[..4] {
            assert_eq!(
                line.find(" | ").or(line.find("-+-")),
                Some(big_len),
                "{}",
                &line[..20]
            );
        }
        assert!(lines[3].ends_with(" | 22"));
        assert_eq!(lines[4], "(2 rows)");
    }
}
