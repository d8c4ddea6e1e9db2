//! Run a dstorage node and talk to a dstorage network: the `dstorage` command.

use clap::{Parser, Subcommand};

/// dstorage: a byzantine-fault-tolerant relational database on SQLite and CometBFT.
#[derive(Parser)]
#[command(name = "dstorage", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version.
    Version,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!(
            "dstorage {} (CometBFT {})",
            env!("CARGO_PKG_VERSION"),
            dstorage_node::cometbft::COMETBFT_VERSION
        ),
    }
    Ok(())
}
