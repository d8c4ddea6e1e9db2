//! The node and client sub-commands of `dstorage`: init, start, devnet, testnet, deploy, exec, query, tx,
//! changeset, status. Every client command takes `--node` and `--json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use dstorage_client::Client;
use dstorage_types::tx::Payload;

use crate::cometbft;
use crate::config::{NodeConfig, DEFAULT_API_ADDR};
use crate::localnet;

pub use crate::cli_common::{default_key_path, render_rows, CommonArgs, SignerArgs};
pub(crate) use crate::cli_common::{home_dir, load_signer, print_tx_result, submit};

/// Chain id of `dstorage devnet` and the default of `init`/`testnet`.
pub const DEVNET_CHAIN_ID: &str = "dstorage-devnet";

/// Node and client commands.
#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Create a node home with a single-validator genesis (or reuse it): dstorage.toml + CometBFT home.
    Init(InitArgs),
    /// Run the node in HOME: the ABCI app, the HTTP API and a supervised CometBFT.
    Start {
        /// The node home (created by `init` or `testnet`).
        #[arg(long, env = "DSTORAGE_HOME")]
        home: PathBuf,
        /// Print one JSON line (chain id, API address) when the node is ready.
        #[arg(long)]
        json: bool,
    },
    /// Run a single-validator network with embedded defaults (the quickest start).
    Devnet(DevnetArgs),
    /// Lay out N validators on 127.0.0.1 and run them together; Ctrl-C stops all.
    Testnet(TestnetArgs),
    /// Deploy FILE.sql as a new schema owned by your key (waits for the commit).
    Deploy {
        /// SQL file with the schema's CREATE TABLE (and other) statements.
        file: PathBuf,
        /// Schema name (default: the file name without extension).
        #[arg(long)]
        schema: Option<String>,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run SQL in a schema you own, all statements in one transaction (waits for the commit).
    Exec {
        /// One or more `;`-separated statements.
        sql: String,
        /// Schema (default: the only schema your key owns).
        #[arg(long)]
        schema: Option<String>,
        /// A value bound to the next `?` placeholder, in JSON: `42`, `"text"`, `null` or
        /// `{"blob":"<hex>"}`. Repeat for each placeholder; the SQL must then be one statement.
        #[arg(long = "param", value_name = "JSON")]
        params: Vec<String>,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Call a write action of SCHEMA with arguments, signed by your key (waits for the commit).
    Call {
        /// The schema.
        schema: String,
        /// The action's name.
        action: String,
        /// The next argument, in JSON: `42`, `"text"`, `null` or `{"blob":"<hex>"}`. Repeat in parameter order.
        #[arg(long = "arg", value_name = "JSON")]
        args: Vec<String>,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List SCHEMA's actions with their parameters and access rules.
    Actions {
        /// The schema.
        schema: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Read committed data with a SELECT, signed with your key when you have one (a schema is read by its
    /// owner, or by anyone if it is publicly readable).
    Query {
        /// One SELECT statement.
        sql: String,
        /// Schema (default: the only schema on the network).
        #[arg(long)]
        schema: Option<String>,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Grant an identity access to your data id (waits for the commit).
    Grant(crate::grants_cmd::GrantArgs),
    /// Revoke a grant you made (refused before its locked-until time).
    Revoke(crate::grants_cmd::RevokeArgs),
    /// List grants by owner, grantee and data id (default: the ones your key made).
    Grants(crate::grants_cmd::GrantsArgs),
    /// A signed read: `read SCHEMA ACTION [--arg JSON]...` calls a view, `read SCHEMA --sql "SELECT ..."` runs
    /// one SELECT as the schema's owner.
    Read(crate::grants_cmd::ReadArgs),
    /// Show a committed transaction's result.
    Tx {
        /// Transaction hash (hex).
        hash: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Show the changeset of a committed block as a table.
    Changeset {
        /// Block height.
        height: u64,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Show the node's status: height, app hash, validators, catching up.
    Status {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Validators: list, requests, join, approve, leave, remove (signed with the node's validator key).
    Validator {
        #[command(subcommand)]
        cmd: crate::validator_cmd::ValidatorCommand,
    },
}

/// `dstorage init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Node home to create.
    #[arg(long, env = "DSTORAGE_HOME")]
    pub home: PathBuf,
    /// Chain id.
    #[arg(long, default_value = DEVNET_CHAIN_ID)]
    pub chain_id: String,
    /// Address of the HTTP API.
    #[arg(long, default_value = DEFAULT_API_ADDR)]
    pub api_addr: String,
    /// First of three consecutive ports: P2P, RPC, ABCI.
    #[arg(long, default_value_t = 26656)]
    pub base_port: u16,
    #[command(flatten)]
    pub genesis: GenesisArgs,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Validator parameters written into a new network's genesis (`app_state.validators`).
#[derive(Args, Debug, Clone)]
pub struct GenesisArgs {
    /// Blocks a validator join or removal request stays open for votes.
    #[arg(long, default_value_t = dstorage_app::validators::DEFAULT_JOIN_EXPIRY_BLOCKS)]
    pub join_expiry_blocks: u64,
    /// Votes a request needs, as a fraction N/D of the current validators, rounded up.
    #[arg(long, default_value = "2/3")]
    pub approval_threshold: String,
}

impl GenesisArgs {
    /// The genesis app state these parameters give (the validators' contacts are added when laid out).
    pub fn app_state(&self) -> anyhow::Result<serde_json::Value> {
        let (n, d) = self
            .approval_threshold
            .split_once('/')
            .and_then(|(n, d)| Some((n.trim().parse::<u64>().ok()?, d.trim().parse::<u64>().ok()?)))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--approval-threshold {:?} is not a fraction N/D such as 2/3",
                    self.approval_threshold
                )
            })?;
        let section = dstorage_app::validators::GenesisValidators {
            join_expiry_blocks: Some(self.join_expiry_blocks),
            approval_threshold: Some(dstorage_app::validators::Threshold {
                numerator: n,
                denominator: d,
            }),
            nodes: Vec::new(),
        };
        section.params().map_err(|e| anyhow::anyhow!(e))?;
        Ok(serde_json::json!({ "validators": section }))
    }
}

impl Default for GenesisArgs {
    fn default() -> Self {
        GenesisArgs {
            join_expiry_blocks: dstorage_app::validators::DEFAULT_JOIN_EXPIRY_BLOCKS,
            approval_threshold: "2/3".into(),
        }
    }
}

/// `dstorage devnet`.
#[derive(Args, Debug)]
pub struct DevnetArgs {
    /// Where the devnet keeps its data (default: ~/.dstorage/devnet).
    #[arg(long, env = "DSTORAGE_DEVNET_HOME")]
    pub home: Option<PathBuf>,
    /// Address of the HTTP API.
    #[arg(long, default_value = DEFAULT_API_ADDR)]
    pub api_addr: String,
    /// First of three consecutive ports: P2P, RPC, ABCI.
    #[arg(long, default_value_t = 26656)]
    pub base_port: u16,
    /// Delete the devnet's data first and start a fresh chain.
    #[arg(long)]
    pub reset: bool,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `dstorage testnet`.
#[derive(Args, Debug, Clone)]
pub struct TestnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Folder for the nodes (node0, node1, ...).
    #[arg(long, default_value = ".testnet")]
    pub dir: PathBuf,
    /// First port; node i uses base+4i .. base+4i+3 (P2P, RPC, ABCI, API).
    #[arg(long, default_value_t = 27000)]
    pub base_port: u16,
    /// Chain id.
    #[arg(long, default_value = "dstorage-testnet")]
    pub chain_id: String,
    /// Only lay out the nodes (print their homes and APIs), do not start them.
    #[arg(long)]
    pub init_only: bool,
    #[command(flatten)]
    pub genesis: GenesisArgs,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Run a node/client command.
pub fn run(cmd: NodeCommand) -> anyhow::Result<ExitCode> {
    block_on(run_async(cmd))
}

/// Run `f` on the runtime every command runs on (the binary's `bench` too).
pub fn block_on(
    f: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Workers and the blocking pool run reads, which parse and guard SQL: enough stack to
        // do it on their own (the engine would grow it).
        .thread_stack_size(dstorage_sql::SQL_THREAD_STACK)
        .build()?;
    rt.block_on(f)
}

async fn run_async(cmd: NodeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NodeCommand::Init(a) => {
            let bin = cometbft::locate_cometbft()?;
            let app_state = a.genesis.app_state()?;
            let c = init_single(
                &bin,
                &a.home,
                &a.chain_id,
                &a.api_addr,
                a.base_port,
                &app_state,
            )?;
            if a.json {
                println!("{}", ready_json(&a.home, &c));
            } else {
                println!(
                    "initialised {} (chain {}, API {})",
                    a.home.display(),
                    c.chain_id,
                    c.api_addr
                );
                println!("start it with: dstorage start --home {}", a.home.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::Start { home, json } => {
            let shown = home.clone();
            let ready: Option<crate::run::OnReady> = json.then(|| {
                Box::new(move |c: &NodeConfig, _: &dstorage_app::App| {
                    println!("{}", ready_json(&shown, c))
                }) as crate::run::OnReady
            });
            crate::run::run_node(&home, ready).await?;
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::Devnet(a) => devnet(a).await,
        NodeCommand::Testnet(a) => testnet(a).await,
        NodeCommand::Validator { cmd } => crate::validator_cmd::run(cmd).await,
        NodeCommand::Deploy {
            file,
            schema,
            signer,
            common,
        } => {
            let sql = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let schema = match schema {
                Some(s) => s,
                None => schema_from_file(&file)?,
            };
            let client = Client::new(&common.node);
            let signer = load_signer(&signer)?;
            let r = submit(
                &client,
                &signer,
                Payload::DeploySchema {
                    schema: schema.clone(),
                    sql,
                },
                &common,
            )
            .await?;
            print_tx_result(&r, &common, Some(&format!("schema {schema} deployed")))
        }
        NodeCommand::Exec {
            sql,
            schema,
            params,
            signer,
            common,
        } => {
            let params = params
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    serde_json::from_str::<dstorage_types::value::Value>(p).with_context(|| {
                        format!(
                            "--param #{} {p:?} is not a JSON value (42, \"text\", null or {{\"blob\":\"00ff\"}})",
                            i + 1
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let client = Client::new(&common.node);
            let signer = load_signer(&signer)?;
            let schema = match schema {
                Some(s) => s,
                None => default_owned_schema(&client, signer.identity()).await?,
            };
            let payload = Payload::Sql {
                schema,
                sql,
                params,
            };
            let r = submit(&client, &signer, payload, &common).await?;
            print_tx_result(&r, &common, None)
        }
        NodeCommand::Call {
            schema,
            action,
            args,
            signer,
            common,
        } => {
            let args = crate::cli_actions::parse_args(&args)?;
            let client = Client::new(&common.node);
            let signer = load_signer(&signer)?;
            let payload = Payload::Call {
                schema,
                action,
                args,
            };
            let r = submit(&client, &signer, payload, &common).await?;
            print_tx_result(&r, &common, None)
        }
        NodeCommand::Actions { schema, common } => {
            crate::cli_actions::list(&Client::new(&common.node), &schema, common.json).await
        }
        NodeCommand::Grant(a) => crate::grants_cmd::grant(a).await,
        NodeCommand::Revoke(a) => crate::grants_cmd::revoke(a).await,
        NodeCommand::Grants(a) => crate::grants_cmd::grants(a).await,
        NodeCommand::Read(a) => crate::grants_cmd::read(a).await,
        NodeCommand::Query {
            sql,
            schema,
            signer,
            common,
        } => {
            let client = Client::new(&common.node);
            let schema = match schema {
                Some(s) => s,
                None => only_schema(&client).await?,
            };
            // Sign when there is a key to sign with: reads of a schema are its owner's unless it is public.
            let has_key = signer.key.is_some() || default_key_path().exists();
            let r = if has_key {
                let signer = load_signer(&signer)?;
                client
                    .query_signed(&signer, &schema, &sql, Vec::new())
                    .await?
            } else {
                client.query(&schema, &sql).await?
            };
            if common.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", render_rows(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::Tx { hash, common } => {
            let client = Client::new(&common.node);
            let hash = hash.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let r = client.tx(&hash).await?;
            print_tx_result(&r, &common, None)
        }
        NodeCommand::Changeset { height, common } => {
            let client = Client::new(&common.node);
            let r = client.changeset(height).await?;
            if common.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "changeset of height {} ({} records, sha256 {})",
                    r.height,
                    r.records.len(),
                    r.hash
                );
                print!("{}", r.table);
            }
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::Status { common } => {
            let client = Client::new(&common.node);
            let s = client.status().await?;
            if common.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("chain        {}", s.chain_id);
                println!("height       {}", s.height);
                println!("app hash     {}", s.app_hash);
                println!("catching up  {}", s.catching_up);
                println!("peers        {}", s.peers);
                println!("validators   {}", s.validators.len());
                for v in &s.validators {
                    println!("  {} power {}", v.address, v.power);
                }
                println!("sqlite       {}", s.sqlite_version);
                println!("cometbft     {}", s.cometbft_version);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Lay out a single-validator node in `home` (idempotent) and write its dstorage.toml.
pub fn init_single(
    bin: &Path,
    home: &Path,
    chain_id: &str,
    api_addr: &str,
    base_port: u16,
    app_state: &serde_json::Value,
) -> anyhow::Result<NodeConfig> {
    // plan_testnet lays out `<root>/node0`; a single node home is that folder, so plan in a sibling and adopt it.
    let existing = NodeConfig::load(home).ok();
    if let Some(c) = existing {
        if c.chain_id != chain_id {
            bail!(
                "{} already holds chain {:?}, not {:?}",
                home.display(),
                c.chain_id,
                chain_id
            );
        }
        return Ok(c);
    }
    let plan_root = home.join("plan");
    let plans =
        cometbft::plan_testnet_with(bin, &plan_root, 1, base_port, chain_id, app_state, |l| {
            l.filter_peers = true
        })?;
    let plan = &plans[0];
    // Move the planned node's CometBFT home into place.
    let target = NodeConfig::cometbft_home(home);
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::rename(&plan.layout.home, &target)?;
    std::fs::remove_dir_all(&plan_root).ok();
    let mut config = NodeConfig::new(
        chain_id,
        "node0",
        api_addr,
        plan.layout.p2p_port,
        plan.layout.rpc_port,
        plan.abci_port,
    );
    config.timeout_commit_ms = u64::try_from(plan.layout.timeout_commit.as_millis()).unwrap_or(100);
    config.save(home)?;
    Ok(config)
}

async fn devnet(a: DevnetArgs) -> anyhow::Result<ExitCode> {
    let home = a
        .home
        .unwrap_or_else(|| home_dir().join(".dstorage").join("devnet"));
    if a.reset && home.exists() {
        std::fs::remove_dir_all(&home)
            .with_context(|| format!("cannot remove {}", home.display()))?;
    }
    let bin = tokio::task::spawn_blocking(cometbft::locate_cometbft).await??;
    let config = {
        let home = home.clone();
        let api = a.api_addr.clone();
        tokio::task::spawn_blocking(move || {
            let app_state = GenesisArgs::default().app_state()?;
            init_single(&bin, &home, DEVNET_CHAIN_ID, &api, a.base_port, &app_state)
        })
        .await??
    };
    let home_shown = home.display().to_string();
    let json = a.json;
    let home_for_json = home.clone();
    let log_shown = crate::run::cometbft_log_path(&home).display().to_string();
    let greeting: crate::run::OnReady = Box::new(move |c: &NodeConfig, app: &dstorage_app::App| {
        if json {
            println!("{}", ready_json(&home_for_json, c));
            return;
        }
        use std::fmt::Write as _;
        let exe = command_name();
        let api = format!("http://{}", c.api_addr);
        let mut banner = String::new();
        banner.push('\n');
        let _ = writeln!(
            banner,
            "dstorage devnet is running: chain {}, 1 validator",
            c.chain_id
        );
        let _ = writeln!(
            banner,
            "  API      {api}   (OpenAPI: {api}/openapi.json, metrics: {api}/metrics)"
        );
        let _ = writeln!(banner, "  data     {home_shown}");
        let _ = writeln!(banner, "  log      {log_shown}   (CometBFT's full log; this terminal shows blocks with transactions)");
        banner.push('\n');
        let _ = writeln!(banner, "Try it from another terminal:");
        let _ = writeln!(banner, "  echo 'CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL, age INTEGER) STRICT;' > users.sql");
        let _ = writeln!(banner, "  {exe} deploy users.sql");
        let _ = writeln!(
            banner,
            "  {exe} exec \"INSERT INTO users VALUES (1, 'satoshi', 49), (2, 'vitalik', 30)\""
        );
        let _ = writeln!(banner, "  {exe} query \"SELECT * FROM users\"");
        let _ = writeln!(banner, "  {exe} changeset <height printed by exec>");
        let _ = writeln!(banner, "  curl {api}/v1/status");
        banner.push('\n');
        let _ = writeln!(banner, "Ctrl-C stops the devnet; its data stays in {home_shown} (start again to continue, --reset to wipe).");
        banner.push('\n');
        // Printed once CometBFT answers, so every command the banner suggests works at once.
        let rpc = cometbft::CometRpc::local(c.rpc_port);
        tokio::spawn(crate::progress::announce(rpc.ok(), banner, app.clone()));
    });
    let _ = config;
    crate::run::run_node(&home, Some(greeting)).await?;
    Ok(ExitCode::SUCCESS)
}

/// How to call this program in printed examples: `dstorage` if that is what is on PATH, else the full path.
fn command_name() -> String {
    let exe = std::env::current_exe().ok();
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .any(|d| d.join("dstorage").is_file() && Some(d.join("dstorage")) == exe)
        })
        .unwrap_or(false);
    match exe {
        Some(e) if !on_path => e.display().to_string(),
        _ => "dstorage".to_string(),
    }
}

async fn testnet(a: TestnetArgs) -> anyhow::Result<ExitCode> {
    if a.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let bin = tokio::task::spawn_blocking(cometbft::locate_cometbft).await??;
    let nodes = {
        let a = a.clone();
        let app_state = a.genesis.app_state()?;
        tokio::task::spawn_blocking(move || {
            localnet::plan_with_genesis(
                &bin,
                &a.dir,
                a.validators,
                a.base_port,
                &a.chain_id,
                &app_state,
                |_| {},
            )
        })
        .await??
    };
    for n in &nodes {
        if a.json {
            println!("{}", ready_json(&n.home, &n.config));
        } else {
            println!(
                "{}  home {}  API http://{}",
                n.config.moniker,
                n.home.display(),
                n.config.api_addr
            );
        }
    }
    if a.init_only {
        return Ok(ExitCode::SUCCESS);
    }
    let count = nodes.len();
    let mut net =
        localnet::Localnet::spawn(&std::env::current_exe()?, nodes, localnet::Output::Inherit)?;
    // On stderr, so `--json` output stays one JSON object per line.
    eprintln!(
        "testnet {} running with {count} validators; Ctrl-C stops all",
        a.chain_id
    );
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let exited = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = sigterm.recv() => None,
        (i, status) = net.any_exit() => Some((i, status)),
    };
    net.stop(Duration::from_secs(15)).await;
    match exited {
        None => Ok(ExitCode::SUCCESS),
        Some((i, status)) => bail!("node{i} exited unexpectedly ({status:?}); stopped the others"),
    }
}

/// One JSON line describing a node: what scripts need to talk to it.
fn ready_json(home: &Path, c: &NodeConfig) -> String {
    serde_json::json!({
        "moniker": c.moniker,
        "home": home.display().to_string(),
        "chain_id": c.chain_id,
        "api": format!("http://{}", c.api_addr),
        "rpc": format!("http://127.0.0.1:{}", c.rpc_port),
        "p2p_port": c.p2p_port,
    })
    .to_string()
}

fn schema_from_file(file: &Path) -> anyhow::Result<String> {
    let stem = file.file_stem().and_then(|s| s.to_str()).ok_or_else(|| {
        anyhow::anyhow!(
            "cannot take a schema name from {}; pass --schema",
            file.display()
        )
    })?;
    let name: String = stem
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Ok(name)
}

async fn default_owned_schema(client: &Client, identity: &str) -> anyhow::Result<String> {
    let owned: Vec<String> = client
        .schemas()
        .await?
        .into_iter()
        .filter(|s| s.owner == identity)
        .map(|s| s.name)
        .collect();
    match owned.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{identity} owns no schema; deploy one first (dstorage deploy FILE.sql) or pass --schema"),
        many => bail!("{identity} owns several schemas ({}); pass --schema", many.join(", ")),
    }
}

async fn only_schema(client: &Client) -> anyhow::Result<String> {
    let all: Vec<String> = client
        .schemas()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    match all.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("the network has no schema yet; deploy one first (dstorage deploy FILE.sql)"),
        many => bail!(
            "the network has several schemas ({}); pass --schema",
            many.join(", ")
        ),
    }
}
