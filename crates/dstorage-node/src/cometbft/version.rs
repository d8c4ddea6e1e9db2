//! The pinned CometBFT version, and finding (or installing) a binary of exactly that version.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{CometError, Result};

/// The CometBFT version every node of a network runs (`v0.38.x`), read at build time from the repository's
/// `COMETBFT_VERSION` file, the one place it is pinned (the install script reads the same file).
pub const COMETBFT_VERSION: &str = include_str!("../../../../COMETBFT_VERSION").trim_ascii();

/// The Go package `go install` builds.
const COMETBFT_PACKAGE: &str = "github.com/cometbft/cometbft/cmd/cometbft";

/// Environment variable naming a CometBFT binary to use instead of the cached one.
pub const ENV_BINARY: &str = "DSTORAGE_COMETBFT";
/// Environment variable naming the cache root (default `~/.cache/dstorage`), as in `scripts/install-cometbft.sh`.
pub const ENV_CACHE: &str = "DSTORAGE_CACHE";

/// Where the pinned binary is found or installed: an explicit binary, else `<cache_root>/cometbft-<version>/`.
///
/// [`locate_cometbft`] builds one from the environment; tests build one directly so they need not change the
/// process environment (which other threads read).
#[derive(Debug, Clone)]
pub struct CometbftLocator {
    /// A binary to use as is (still version-checked); `DSTORAGE_COMETBFT`.
    pub binary: Option<PathBuf>,
    /// The cache root; `DSTORAGE_CACHE`, else `$HOME/.cache/dstorage`.
    pub cache_root: PathBuf,
    /// The Go command that installs it (`go` on `PATH`).
    pub go: PathBuf,
}

impl CometbftLocator {
    /// Read `DSTORAGE_COMETBFT`, `DSTORAGE_CACHE` and `HOME`.
    pub fn from_env() -> Result<Self> {
        let binary = std::env::var_os(ENV_BINARY)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let cache_root = match std::env::var_os(ENV_CACHE).filter(|v| !v.is_empty()) {
            Some(root) => PathBuf::from(root),
            None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                Some(home) => PathBuf::from(home).join(".cache").join("dstorage"),
                None => {
                    return Err(CometError::Invalid(format!(
                        "neither {ENV_CACHE} nor HOME is set, so there is no folder to cache CometBFT in"
                    )))
                }
            },
        };
        Ok(CometbftLocator {
            binary,
            cache_root,
            go: PathBuf::from("go"),
        })
    }

    /// The path of a runnable CometBFT of the pinned version, installing it into the cache on first use.
    pub fn locate(&self) -> Result<PathBuf> {
        if let Some(bin) = &self.binary {
            // An explicit binary is the operator's choice: check it, never replace it.
            check_cometbft_version(bin)?;
            return Ok(bin.clone());
        }
        let dir = cometbft_cache_dir(&self.cache_root);
        let bin = dir.join("cometbft");
        if bin.exists() {
            match check_cometbft_version(&bin) {
                Ok(()) => return Ok(bin),
                // A cached binary of another version (a half-finished install, an edited cache) is ours to
                // replace, as the install script does.
                Err(e) => tracing::warn!(error = %e, "cached CometBFT is unusable; reinstalling"),
            }
        }
        install(&self.go, &dir)?;
        check_cometbft_version(&bin)?;
        Ok(bin)
    }
}

/// The folder the pinned CometBFT is installed into: `<cache_root>/cometbft-<version>`.
pub fn cometbft_cache_dir(cache_root: &Path) -> PathBuf {
    cache_root.join(format!("cometbft-{COMETBFT_VERSION}"))
}

/// Find the pinned CometBFT: `DSTORAGE_COMETBFT` if set, else the cache, installing it with `go install` if it is
/// missing (first run only). The binary's `cometbft version` must equal [`COMETBFT_VERSION`].
///
/// Blocking: it may run `go install` for a minute or two.
pub fn locate_cometbft() -> Result<PathBuf> {
    CometbftLocator::from_env()?.locate()
}

/// Run `<bin> version` and check that it prints the pinned version (`0.38.26` for `v0.38.26`).
pub fn check_cometbft_version(bin: &Path) -> Result<()> {
    let output = Command::new(bin)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CometError::BinaryNotRunnable {
            path: bin.to_owned(),
            source,
        })?;
    let found = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        return Err(CometError::CommandFailed {
            command: format!("{} version", bin.display()),
            status: output.status,
            stderr: tail(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    let pinned = COMETBFT_VERSION.trim_start_matches('v');
    if found.trim_start_matches('v') != pinned {
        return Err(CometError::VersionMismatch {
            path: bin.to_owned(),
            expected: COMETBFT_VERSION,
            found,
        });
    }
    Ok(())
}

/// `go install` the pinned version with `GOBIN=dir`.
fn install(go: &Path, dir: &Path) -> Result<()> {
    let fail = |reason: String| CometError::InstallFailed {
        version: COMETBFT_VERSION,
        dir: dir.to_owned(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(CometError::io("create folder", dir))?;
    tracing::info!(
        "installing CometBFT {COMETBFT_VERSION} into {} with go install (first run only, takes a minute or two)",
        dir.display()
    );
    // `-mod=mod` so a go.mod/vendor folder in the current directory cannot change what gets built.
    let goflags = match std::env::var("GOFLAGS") {
        Ok(flags) if !flags.is_empty() => format!("{flags} -mod=mod"),
        _ => "-mod=mod".to_owned(),
    };
    let status = Command::new(go)
        .arg("install")
        .arg(format!("{COMETBFT_PACKAGE}@{COMETBFT_VERSION}"))
        .env("GOBIN", dir)
        .env("GOFLAGS", goflags)
        .stdin(Stdio::null())
        // go's own messages (downloads, compile errors) go to our stderr so a failure explains itself.
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| {
            fail(format!(
                "cannot run {} ({e}); Go is needed to build CometBFT once",
                go.display()
            ))
        })?;
    if !status.success() {
        return Err(fail(format!("go install exited with {status}")));
    }
    Ok(())
}

/// The last few lines of a command's output, for error messages.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_version_is_a_trimmed_v038_tag() {
        assert!(
            COMETBFT_VERSION.starts_with("v0.38."),
            "{COMETBFT_VERSION:?}"
        );
        assert_eq!(COMETBFT_VERSION, COMETBFT_VERSION.trim());
    }

    #[test]
    fn cache_dir_is_named_after_the_version() {
        let dir = cometbft_cache_dir(Path::new("/c"));
        assert_eq!(
            dir,
            PathBuf::from(format!("/c/cometbft-{COMETBFT_VERSION}"))
        );
    }

    #[test]
    fn a_missing_explicit_binary_is_reported_with_its_path() {
        let locator = CometbftLocator {
            binary: Some("/nonexistent/cometbft".into()),
            cache_root: "/nonexistent".into(),
            go: "go".into(),
        };
        let err = locator.locate().unwrap_err();
        assert!(matches!(err, CometError::BinaryNotRunnable { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/cometbft"), "{err}");
    }
}
