//! Errors of the CometBFT module: each names the path, port, version or URL involved.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Result of the CometBFT module's operations.
pub type Result<T, E = CometError> = std::result::Result<T, E>;

/// What went wrong while locating, configuring, running or querying CometBFT.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CometError {
    /// The binary named by `DSTORAGE_COMETBFT` (or the cache) does not exist or cannot be run.
    #[error("CometBFT binary {path} cannot be run: {source}")]
    BinaryNotRunnable {
        /// The binary's path.
        path: PathBuf,
        /// Why it could not be started.
        source: std::io::Error,
    },
    /// `cometbft version` printed something other than the pinned version.
    #[error(
        "CometBFT binary {path} is version {found:?}, but dstorage is pinned to {expected}; \
         unset DSTORAGE_COMETBFT or point it at a {expected} binary (scripts/install-cometbft.sh installs one)"
    )]
    VersionMismatch {
        /// The binary's path.
        path: PathBuf,
        /// The pinned version (`COMETBFT_VERSION`).
        expected: &'static str,
        /// What the binary printed.
        found: String,
    },
    /// Installing the pinned version with `go install` failed.
    #[error("installing CometBFT {version} into {dir} with `go install` failed: {reason}")]
    InstallFailed {
        /// The pinned version.
        version: &'static str,
        /// The folder `GOBIN` pointed at.
        dir: PathBuf,
        /// Why (go missing, exit status).
        reason: String,
    },
    /// A `cometbft` sub-command exited unsuccessfully.
    #[error("`{command}` failed with {status}: {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// The end of what it wrote to stderr.
        stderr: String,
    },
    /// Reading or writing a file or folder failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "create folder").
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.toml` is not valid TOML, or a key has an unexpected shape.
    #[error("CometBFT config {path} cannot be edited: {reason}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A JSON file (key, genesis, testnet plan) is malformed.
    #[error("{path} is not what dstorage expects: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The testnet's ports do not fit below 65536.
    #[error("a testnet of {nodes} nodes from base port {base_port} needs ports past 65535")]
    PortOverflow {
        /// The base port asked for.
        base_port: u16,
        /// The number of nodes asked for.
        nodes: usize,
    },
    /// An existing testnet folder was planned with other parameters; re-planning it would fork the chain.
    #[error(
        "testnet folder {root} holds a network planned as {existing}, not {requested}; \
         use another folder or delete this one to start a new chain"
    )]
    TestnetMismatch {
        /// The testnet folder.
        root: PathBuf,
        /// The parameters it was planned with.
        existing: String,
        /// The parameters asked for now.
        requested: String,
    },
    /// A genesis or plan was asked for with invalid parameters.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Starting `cometbft start` failed.
    #[error("starting {bin} for home {home} failed: {source}")]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// The CometBFT home.
        home: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Waiting for or signalling the child failed.
    #[error("supervising CometBFT (pid {pid:?}) failed: {reason}")]
    Supervise {
        /// The child's process id, if it was still known.
        pid: Option<u32>,
        /// What failed.
        reason: String,
    },
    /// The HTTP request to CometBFT's RPC failed (connection refused, timeout, non-JSON body).
    #[error("CometBFT RPC {url}: {source}")]
    Http {
        /// The request URL.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// CometBFT's RPC answered with a JSON-RPC error.
    #[error("CometBFT RPC {method} at {url} returned error {code}: {message} {data}")]
    RpcError {
        /// The endpoint's URL.
        url: String,
        /// The JSON-RPC method.
        method: &'static str,
        /// The JSON-RPC error code.
        code: i64,
        /// The error message.
        message: String,
        /// CometBFT's detail text.
        data: String,
    },
    /// CometBFT's RPC answered with a result of an unexpected shape.
    #[error("CometBFT RPC {method} at {url} returned an unexpected result: {reason}")]
    RpcShape {
        /// The endpoint's URL.
        url: String,
        /// The JSON-RPC method.
        method: &'static str,
        /// What was unexpected.
        reason: String,
    },
    /// A wait with a deadline ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        after: Duration,
    },
}

impl CometError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CometError::Io {
            action,
            path,
            source,
        }
    }
}
