//! The CometBFT child process: started in its own process group, its log lines forwarded to `tracing` (or
//! written to a log file, with only warnings and errors forwarded), stopped with SIGTERM then SIGKILL, and
//! never restarted behind the caller's back.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tracing::Level;

use super::error::{CometError, Result};

/// How long [`CometProcess::shutdown`] lets CometBFT stop on SIGTERM before it sends SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How many of the child's last log lines are kept for error reports.
const RECENT_LINES: usize = 40;

/// A running `cometbft start --home <home>`.
///
/// The child gets its own process group, so a Ctrl-C in the terminal reaches only the node, which then stops
/// CometBFT itself in order ([`CometProcess::shutdown`]). Dropping the value kills the child (SIGKILL) so a
/// panicking node leaves no CometBFT behind; if the node is killed with SIGKILL, CometBFT notices the lost ABCI
/// connection and exits on its own.
///
/// If CometBFT exits by itself, that is an error for the node: [`CometProcess::wait`] (or
/// [`CometProcess::exited`]) returns, and the caller is expected to stop with a non-zero status.
#[derive(Debug)]
pub struct CometProcess {
    child: Child,
    pid: Option<u32>,
    home: PathBuf,
    logs: Arc<LogState>,
    forwarders: Vec<JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

impl CometProcess {
    /// Start `<bin> start --home <home>`. Must be called inside a tokio runtime (log forwarding runs as tasks).
    /// Every log line goes to `tracing` at the level it names.
    pub fn spawn(bin: &Path, home: &Path) -> Result<Self> {
        Self::start(bin, home, None)
    }

    /// Like [`CometProcess::spawn`], but CometBFT's full log is appended to `log_file` (created if missing),
    /// and only its warnings and errors go to `tracing`: a node's own output stays readable (CometBFT logs
    /// several lines per block).
    pub fn spawn_with_log_file(bin: &Path, home: &Path, log_file: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .map_err(|source| CometError::Spawn {
                bin: bin.to_owned(),
                home: home.to_owned(),
                source: std::io::Error::new(
                    source.kind(),
                    format!("cannot open the log file {}: {source}", log_file.display()),
                ),
            })?;
        Self::start(bin, home, Some(Arc::new(Mutex::new(file))))
    }

    fn start(bin: &Path, home: &Path, file: Option<Arc<Mutex<std::fs::File>>>) -> Result<Self> {
        let mut child = Command::new(bin)
            .arg("start")
            .arg("--home")
            .arg(home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|source| CometError::Spawn {
                bin: bin.to_owned(),
                home: home.to_owned(),
                source,
            })?;
        let pid = child.id();
        // Name log lines after the node folder (`node0` for `<root>/node0/cometbft`), so interleaved logs of a
        // local testnet stay readable.
        let label = home
            .parent()
            .and_then(Path::file_name)
            .or_else(|| home.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let logs = Arc::new(LogState {
            recent: Mutex::new(VecDeque::with_capacity(RECENT_LINES)),
            stopping: AtomicBool::new(false),
            file,
        });
        let mut forwarders = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            forwarders.push(tokio::spawn(forward(
                stdout,
                label.clone(),
                Level::INFO,
                logs.clone(),
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            // CometBFT logs to stdout; stderr carries start-up failures and Go panics.
            forwarders.push(tokio::spawn(forward(
                stderr,
                label,
                Level::ERROR,
                logs.clone(),
            )));
        }
        tracing::info!(target: "cometbft", pid, home = %home.display(), "started CometBFT");
        Ok(CometProcess {
            child,
            pid,
            home: home.to_owned(),
            logs,
            forwarders,
            exit: None,
        })
    }

    /// The child's process id.
    pub fn id(&self) -> Option<u32> {
        self.pid
    }

    /// The CometBFT home it runs on.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The child's last log lines (stdout and stderr, oldest first), for error reports.
    pub fn recent_log(&self) -> Vec<String> {
        self.logs
            .recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Wait until CometBFT exits and return its status. Cancel-safe, so it can sit in a `tokio::select!`
    /// beside the shutdown signal; after an exit it returns the same status again.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let status = self.child.wait().await.map_err(|e| CometError::Supervise {
            pid: self.pid,
            reason: format!("wait: {e}"),
        })?;
        self.record_exit(status).await;
        Ok(status)
    }

    /// Wait until CometBFT exits and describe that as the error it is for a node that did not ask it to stop:
    /// exit status, home and last log lines.
    pub async fn exited(&mut self) -> CometError {
        match self.wait().await {
            Ok(status) => CometError::Supervise {
                pid: self.pid,
                reason: format!(
                    "CometBFT for {} exited unexpectedly with {status}; last log lines:\n{}",
                    self.home.display(),
                    self.recent_log().join("\n")
                ),
            },
            Err(e) => e,
        }
    }

    /// Stop CometBFT: SIGTERM, then SIGKILL if it is still running after [`SHUTDOWN_GRACE`]. Returns the exit
    /// status (or the earlier one if it had already exited).
    pub async fn shutdown(&mut self) -> Result<ExitStatus> {
        self.shutdown_within(SHUTDOWN_GRACE).await
    }

    /// [`CometProcess::shutdown`] with a chosen grace period.
    pub async fn shutdown_within(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let supervise = |reason: String| CometError::Supervise {
            pid: self.pid,
            reason,
        };
        if let Some(status) = self
            .child
            .try_wait()
            .map_err(|e| supervise(format!("try_wait: {e}")))?
        {
            self.record_exit(status).await;
            return Ok(status);
        }
        // Not yet reaped, so the pid (and the group it leads) is still ours to signal.
        self.logs.stopping.store(true, Ordering::Relaxed);
        self.signal(Signal::SIGTERM)?;
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(waited) => waited.map_err(|e| supervise(format!("wait: {e}")))?,
            Err(_) => {
                tracing::warn!(target: "cometbft", pid = self.pid, ?grace, "CometBFT ignored SIGTERM; sending SIGKILL");
                self.signal(Signal::SIGKILL)?;
                self.child
                    .wait()
                    .await
                    .map_err(|e| supervise(format!("wait after SIGKILL: {e}")))?
            }
        };
        tracing::info!(target: "cometbft", pid = self.pid, %status, "CometBFT stopped");
        self.record_exit(status).await;
        Ok(status)
    }

    /// Signal the child's process group.
    fn signal(&self, signal: Signal) -> Result<()> {
        let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) else {
            return Ok(());
        };
        match killpg(Pid::from_raw(pid), signal) {
            // Already gone between try_wait and here: nothing to signal.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(CometError::Supervise {
                pid: self.pid,
                reason: format!("send {signal}: {e}"),
            }),
        }
    }

    /// Remember the status and let the forwarders flush the last lines (they end when the pipes close).
    async fn record_exit(&mut self, status: ExitStatus) {
        self.exit = Some(status);
        for handle in std::mem::take(&mut self.forwarders) {
            // Bounded: a grandchild holding the pipe open must not hang the shutdown.
            let _ = tokio::time::timeout(Duration::from_secs(1), handle).await;
        }
    }
}

/// What the log forwarders share with the supervisor.
#[derive(Debug)]
struct LogState {
    /// The last [`RECENT_LINES`] lines.
    recent: Mutex<VecDeque<String>>,
    /// Set once we asked CometBFT to stop.
    stopping: AtomicBool,
    /// Where every line goes when the log is kept in a file; then only warnings and errors reach `tracing`.
    file: Option<Arc<Mutex<std::fs::File>>>,
}

/// Forward each line of `stream` to `tracing` (target `cometbft`) at the level the line itself names (with a
/// log file: each line to the file, and only warnings and errors to `tracing`).
async fn forward(
    stream: impl AsyncRead + Unpin,
    label: String,
    default: Level,
    logs: Arc<LogState>,
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Ok(mut recent) = logs.recent.lock() {
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            recent.push_back(line.to_owned());
        }
        let (mut level, message) = parse_line(line, default);
        if level == Level::ERROR && logs.stopping.load(Ordering::Relaxed) {
            // Closing listeners and peers on SIGTERM logs "errors" that are part of a clean stop.
            level = Level::WARN;
        }
        if let Some(file) = &logs.file {
            use std::io::Write;
            if let Ok(mut f) = file.lock() {
                // A full disk must not stop the node; the line still reaches `recent` (and tracing if it is
                // a warning or an error).
                let _ = writeln!(f, "{line}");
            }
            // While stopping, CometBFT's "errors" about closed listeners are part of a clean stop: the file has
            // them, the terminal need not.
            if level > Level::WARN || logs.stopping.load(Ordering::Relaxed) {
                continue;
            }
        }
        match level {
            Level::ERROR => tracing::error!(target: "cometbft", node = %label, "{message}"),
            Level::WARN => tracing::warn!(target: "cometbft", node = %label, "{message}"),
            Level::INFO => tracing::info!(target: "cometbft", node = %label, "{message}"),
            Level::DEBUG => tracing::debug!(target: "cometbft", node = %label, "{message}"),
            Level::TRACE => tracing::trace!(target: "cometbft", node = %label, "{message}"),
        }
    }
}

/// The level and message of a CometBFT log line: plain format `I[2025-01-01|12:00:00.000] msg k=v`, or a
/// `level=error` field (logfmt); anything else keeps the stream's default level.
fn parse_line(line: &str, default: Level) -> (Level, String) {
    let bytes = line.as_bytes();
    if bytes.len() > 2 && bytes[1] == b'[' {
        let level = match bytes[0] {
            b'E' => Some(Level::ERROR),
            b'W' => Some(Level::WARN),
            b'I' => Some(Level::INFO),
            b'D' => Some(Level::DEBUG),
            _ => None,
        };
        if let Some(level) = level {
            // Drop the level letter and timestamp (tracing prints its own) and the padding after the message.
            let message = line.find("] ").map_or(line, |end| &line[end + 2..]);
            let message = match message.split_once("  ") {
                Some((text, fields)) => format!("{text} {}", fields.trim_start()),
                None => message.to_owned(),
            };
            return (level, message);
        }
    }
    if let Some(start) = line.find("level=") {
        let value = line[start + 6..].trim_start_matches('"');
        let level = if value.starts_with("err") {
            Level::ERROR
        } else if value.starts_with("warn") {
            Level::WARN
        } else if value.starts_with("info") {
            Level::INFO
        } else if value.starts_with("debug") {
            Level::DEBUG
        } else {
            default
        };
        return (level, line.to_owned());
    }
    (default, line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_carry_their_level() {
        let (level, msg) = parse_line(
            "E[2025-01-01|12:00:00.000] dial failed module=p2p",
            Level::INFO,
        );
        assert_eq!(level, Level::ERROR);
        assert_eq!(msg, "dial failed module=p2p");
        let (level, msg) = parse_line(
            "I[2025-01-01|12:00:00.000] finalized block          module=state height=3",
            Level::ERROR,
        );
        assert_eq!(level, Level::INFO);
        assert_eq!(msg, "finalized block module=state height=3");
    }

    #[test]
    fn logfmt_level_fields_are_read() {
        let line = "ts=2025 level=error msg=\"bad\"";
        assert_eq!(
            parse_line(line, Level::INFO),
            (Level::ERROR, line.to_owned())
        );
        let line = "level=\"debug\" msg=x";
        assert_eq!(parse_line(line, Level::INFO).0, Level::DEBUG);
    }

    #[test]
    fn other_lines_keep_the_stream_default() {
        assert_eq!(
            parse_line("panic: oops", Level::ERROR),
            (Level::ERROR, "panic: oops".to_owned())
        );
        assert_eq!(parse_line("Error: bad flag", Level::INFO).0, Level::INFO);
    }
}
