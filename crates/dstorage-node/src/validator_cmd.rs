//! `dstorage validator list | requests | join | approve ID | leave | remove ADDR`: look at the validator set and
//! change it. Changes are transactions signed under `ed25519` with the node's own CometBFT validator key
//! (`<home>/cometbft/config/priv_validator_key.json`), so the key never leaves the node's folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::{Args, Subcommand};
use dstorage_auth::SecretKey;
use dstorage_client::api::{TxResult, ValidatorRequestsResponse, ValidatorsResponse};
use dstorage_client::{Client, Signer};
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use sha2::Digest;

use crate::config::{NodeConfig, DEFAULT_API_ADDR};

/// `dstorage validator …`.
#[derive(Subcommand, Debug)]
pub enum ValidatorCommand {
    /// The current validators (and those on their way out).
    List(ReadArgs),
    /// Join and removal requests with their votes.
    Requests(ReadArgs),
    /// Ask to become a validator: signed with this node's validator key, naming its node id and P2P address.
    Join {
        /// The node id others reach this node by (default: from the home's node key).
        #[arg(long)]
        node_id: Option<String>,
        /// The P2P address `host:port` others reach this node at (default: the home's p2p_host:p2p_port).
        #[arg(long)]
        address: Option<String>,
        #[command(flatten)]
        args: SignArgs,
    },
    /// Vote for request ID (a join, or a removal).
    Approve {
        /// The request id (`dstorage validator requests`).
        id: u64,
        #[command(flatten)]
        args: SignArgs,
    },
    /// Leave the validator set at once.
    Leave(SignArgs),
    /// Vote to remove the validator ADDR (its CometBFT address, or its public key in hex or base64).
    Remove {
        /// CometBFT address (40 hex digits) or public key (64 hex digits, or base64).
        addr: String,
        #[command(flatten)]
        args: SignArgs,
    },
}

/// Options of the reading sub-commands.
#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    /// The node's API address (default: the API of --home, else 127.0.0.1:8088).
    #[arg(long, env = "DSTORAGE_NODE")]
    pub node: Option<String>,
    /// A node home, to take the API address from.
    #[arg(long, env = "DSTORAGE_HOME")]
    pub home: Option<PathBuf>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Options of the signing sub-commands.
#[derive(Args, Debug, Clone)]
pub struct SignArgs {
    /// The node home whose validator key signs (and whose API is used unless --node is given).
    #[arg(long, env = "DSTORAGE_HOME")]
    pub home: PathBuf,
    /// The node's API address (default: the API of --home).
    #[arg(long, env = "DSTORAGE_NODE")]
    pub node: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Run a `dstorage validator` command.
pub async fn run(cmd: ValidatorCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ValidatorCommand::List(a) => {
            let client = Client::new(api_addr(a.node.as_deref(), a.home.as_deref()));
            let v = client.validators().await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", render_validators(&v));
            }
            Ok(ExitCode::SUCCESS)
        }
        ValidatorCommand::Requests(a) => {
            let client = Client::new(api_addr(a.node.as_deref(), a.home.as_deref()));
            let r = client.validator_requests().await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", render_requests(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
        ValidatorCommand::Join {
            node_id,
            address,
            args,
        } => {
            let node_id = match node_id {
                Some(id) => id.to_ascii_lowercase(),
                None => node_id_of(&args.home)?,
            };
            let address = match address {
                Some(a) => a,
                None => {
                    let c = NodeConfig::load(&args.home)?;
                    format!("{}:{}", c.p2p_host, c.p2p_port)
                }
            };
            sign_and_send(&args, Payload::ValidatorJoin { node_id, address }).await
        }
        ValidatorCommand::Approve { id, args } => {
            sign_and_send(&args, Payload::ValidatorApprove { request: id }).await
        }
        ValidatorCommand::Leave(args) => sign_and_send(&args, Payload::ValidatorLeave).await,
        ValidatorCommand::Remove { addr, args } => {
            let client = Client::new(api_addr(args.node.as_deref(), Some(&args.home)));
            let key = resolve_validator(&client, &addr).await?;
            sign_and_send(&args, Payload::ValidatorRemove { key }).await
        }
    }
}

/// The API address: `--node`, else the home's configured API, else the default.
fn api_addr(node: Option<&str>, home: Option<&Path>) -> String {
    if let Some(n) = node {
        return n.to_string();
    }
    home.and_then(|h| NodeConfig::load(h).ok())
        .map(|c| c.api_addr)
        .unwrap_or_else(|| DEFAULT_API_ADDR.to_string())
}

async fn sign_and_send(args: &SignArgs, payload: Payload) -> anyhow::Result<ExitCode> {
    let client = Client::new(api_addr(args.node.as_deref(), Some(&args.home)));
    let signer = validator_signer(&args.home)?;
    let is_join = matches!(payload, Payload::ValidatorJoin { .. });
    let r = client.submit(&signer, payload).await?;
    // A join's request id is not part of its result; the committed requests name it.
    let request = if is_join && r.code == ResultCode::Ok {
        client
            .validator_requests()
            .await
            .ok()
            .and_then(|rs| {
                rs.requests
                    .into_iter()
                    .rev()
                    .find(|q| q.kind == "join" && q.pub_key == signer.identity())
            })
            .map(|q| q.id)
    } else {
        None
    };
    print_result(&r, signer.identity(), request, args.json)?;
    Ok(if r.code == ResultCode::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_result(
    r: &TxResult,
    identity: &str,
    request: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::to_value(r)?;
        if let (Some(obj), Some(id)) = (v.as_object_mut(), request) {
            obj.insert("request".into(), id.into());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("signer   {identity}");
    println!("tx       {}", r.hash);
    println!("height   {}", r.height);
    if r.code == ResultCode::Ok {
        println!("result   ok");
    } else {
        println!("result   {}: {}", r.code, r.message);
    }
    if let Some(id) = request {
        println!("request  {id}");
    }
    Ok(())
}

/// A signer over the node's CometBFT validator key (`priv_validator_key.json`: `priv_key.value` is base64 of
/// the 32-byte ed25519 seed followed by the 32-byte public key).
pub fn validator_signer(home: &Path) -> anyhow::Result<Signer> {
    let path = NodeConfig::cometbft_home(home)
        .join("config")
        .join("priv_validator_key.json");
    let (seed, public) = read_cometbft_key(&path, "tendermint/PrivKeyEd25519")?;
    let key = SecretKey::from_bytes(KeyType::Ed25519, &seed)
        .with_context(|| format!("{}: not an ed25519 key", path.display()))?;
    let signer = Signer::new(key, dstorage_app::validators::STANDARD)?;
    if signer.identity() != hex::encode(public) {
        bail!(
            "{}: the public half does not match the secret key",
            path.display()
        );
    }
    Ok(signer)
}

/// The node id of a home: hex of SHA-256(node public key)[..20], from `node_key.json` (what `cometbft
/// show-node-id` prints).
pub fn node_id_of(home: &Path) -> anyhow::Result<String> {
    let path = NodeConfig::cometbft_home(home)
        .join("config")
        .join("node_key.json");
    let (_, public) = read_cometbft_key(&path, "tendermint/PrivKeyEd25519")?;
    Ok(hex::encode(&sha2::Sha256::digest(public)[..20]))
}

/// (seed, public key) of a CometBFT key file holding `priv_key: {type, value}`.
fn read_cometbft_key(path: &Path, expected_type: &str) -> anyhow::Result<([u8; 32], [u8; 32])> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (is --home a node home?)", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let ty = doc
        .pointer("/priv_key/type")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if ty != expected_type {
        bail!(
            "{}: key type {ty:?}, expected {expected_type:?}",
            path.display()
        );
    }
    let bytes = doc
        .pointer("/priv_key/value")
        .and_then(|v| v.as_str())
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .filter(|b| b.len() == 64)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: priv_key.value is not 64 bytes of base64",
                path.display()
            )
        })?;
    let mut seed = [0u8; 32];
    let mut public = [0u8; 32];
    seed.copy_from_slice(&bytes[..32]);
    public.copy_from_slice(&bytes[32..]);
    Ok((seed, public))
}

/// The public key of validator `addr`: a CometBFT address looked up in the current set, or a key given as is.
async fn resolve_validator(client: &Client, addr: &str) -> anyhow::Result<Vec<u8>> {
    let text = addr.trim();
    if text.len() == 64 {
        if let Ok(key) = hex::decode(text) {
            return Ok(key);
        }
    }
    if text.len() == 44 {
        if let Ok(key) = base64::engine::general_purpose::STANDARD.decode(text) {
            if key.len() == 32 {
                return Ok(key);
            }
        }
    }
    if text.len() != 40 || hex::decode(text).is_err() {
        bail!("{addr:?} is neither a validator address (40 hex digits) nor a public key (64 hex digits or base64)");
    }
    let set = client.validators().await?;
    let found = set
        .validators
        .iter()
        .find(|v| v.address.eq_ignore_ascii_case(text))
        .ok_or_else(|| anyhow::anyhow!("{addr} is not the address of a current validator"))?;
    Ok(hex::decode(&found.pub_key)?)
}

/// The validator set as a text table.
pub fn render_validators(v: &ValidatorsResponse) -> String {
    let mut out = format!(
        "{} validators at height {} (a request needs {} votes; threshold {}/{}, requests expire after {} blocks)\n",
        v.validators.len(),
        v.height,
        v.needed,
        v.threshold_numerator,
        v.threshold_denominator,
        v.join_expiry_blocks
    );
    for e in &v.validators {
        let state = if e.active {
            "active".to_string()
        } else {
            format!("active from {}", e.active_from)
        };
        out.push_str(&format!(
            "  {}  power {}  node {}  {}  key {}\n",
            e.address,
            e.power,
            e.node_id.as_deref().unwrap_or("-"),
            state,
            e.pub_key
        ));
    }
    for l in &v.leaving {
        out.push_str(&format!(
            "  {}  leaving: counted until height {}  key {}\n",
            l.address,
            l.inactive_from - 1,
            l.pub_key
        ));
    }
    out
}

/// Requests as a text table.
pub fn render_requests(r: &ValidatorRequestsResponse) -> String {
    if r.requests.is_empty() {
        return format!("no validator requests (height {})\n", r.height);
    }
    let mut out = format!(
        "validator requests at height {} (a request needs {} votes)\n",
        r.height, r.needed
    );
    for q in &r.requests {
        out.push_str(&format!(
            "  #{}  {:<6}  {}  {:<8}  votes {}  made at {}, open until {}{}\n",
            q.id,
            q.kind,
            q.address,
            q.status,
            q.votes.len(),
            q.created_height,
            q.expires_at,
            q.node_id
                .as_deref()
                .map(|n| format!("  node {n}@{}", q.p2p_address.as_deref().unwrap_or("?")))
                .unwrap_or_default()
        ));
    }
    out
}
