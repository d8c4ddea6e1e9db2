//! Run a dstorage node and talk to a dstorage network: the `dstorage` command.

use clap::{Parser, Subcommand};

mod bench;
mod bench_reads;
mod key_cmd;

/// dstorage: a byzantine-fault-tolerant relational database on SQLite and CometBFT.
#[derive(Parser)]
#[command(name = "dstorage", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Node(dstorage_node::cli::NodeCommand),
    /// Print the versions of dstorage, the pinned CometBFT and the bundled SQLite.
    Version {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark local networks: committed tx/s, commit latency, where the CPU goes.
    Bench(bench::BenchArgs),
    /// Manage keys: generate, show, sign, verify.
    Key {
        #[command(subcommand)]
        cmd: key_cmd::KeyCommand,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            // One readable line (with its causes), not a debug dump with a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    // The devnet is for a person at a terminal: its banner and block lines say what happens, so its log shows
    // only warnings and errors (RUST_LOG still overrides). Other commands log from `info`.
    let quiet = matches!(
        cli.command,
        Command::Node(dstorage_node::cli::NodeCommand::Devnet(_))
    );
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if quiet { "warn" } else { "info" })
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Node(cmd) => return dstorage_node::cli::run(cmd),
        Command::Key { cmd } => return key_cmd::run(cmd),
        Command::Bench(args) if args.signed_reads => {
            return dstorage_node::cli::block_on(bench_reads::run(&args))
        }
        Command::Bench(args) => return dstorage_node::cli::block_on(bench::run(args)),
        Command::Version { json: true } => println!(
            "{}",
            serde_json::json!({
                "dstorage": env!("CARGO_PKG_VERSION"),
                "cometbft": dstorage_node::cometbft::COMETBFT_VERSION,
                "sqlite": dstorage_sql::SQLITE_VERSION,
            })
        ),
        Command::Version { json: false } => println!(
            "dstorage {} (CometBFT {}, SQLite {})",
            env!("CARGO_PKG_VERSION"),
            dstorage_node::cometbft::COMETBFT_VERSION,
            dstorage_sql::SQLITE_VERSION
        ),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
