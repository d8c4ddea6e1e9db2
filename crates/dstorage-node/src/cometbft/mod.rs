//! Run the pinned CometBFT beside the node: find or install the binary, lay out its home, write its config and
//! genesis, supervise the child process and talk to its RPC.
//!
//! Everything CometBFT-specific in the node lives here; the ABCI application itself (`dstorage-app`) knows
//! nothing about the child process. Setup steps ([`locate_cometbft`], [`init_home`], [`write_genesis`],
//! [`plan_testnet`]) are blocking (they run `cometbft` sub-commands and write files once, before the node
//! starts); supervision ([`CometProcess`]) and the RPC client ([`CometRpc`]) are async on tokio.
//!
//! ```no_run
//! # async fn run() -> Result<(), dstorage_node::cometbft::CometError> {
//! use dstorage_node::cometbft::{locate_cometbft, plan_testnet, CometProcess, CometRpc};
//! let bin = locate_cometbft()?;
//! let plans = plan_testnet(&bin, "/tmp/net".as_ref(), 4, 30000, "dstorage-local")?;
//! let mut node0 = CometProcess::spawn(&bin, &plans[0].layout.home)?;
//! let status = CometRpc::local(plans[0].layout.rpc_port)?.status().await?;
//! println!("height {}", status.latest_block_height);
//! node0.shutdown().await?;
//! # Ok(()) }
//! ```

mod config;
mod error;
mod genesis;
mod process;
mod rpc;
mod testnet;
mod version;

pub use config::{init_home, read_identity, NodeIdentity, NodeLayout};
pub use error::{CometError, Result};
pub use genesis::{
    validator_address, write_genesis, GenesisSpec, GenesisValidator, VALIDATOR_POWER,
};
pub use process::CometProcess;
pub use rpc::{
    BlockInfo, BroadcastCommit, BroadcastSync, CometRpc, NetInfo, NodeStatus, PeerInfo, TxResult,
    ValidatorInfo,
};
pub use testnet::{find_free_ports, plan_testnet, plan_testnet_with, NodePlan, PORTS_PER_NODE};
pub use version::{
    check_cometbft_version, cometbft_cache_dir, locate_cometbft, CometbftLocator, COMETBFT_VERSION,
};
