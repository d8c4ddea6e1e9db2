#!/usr/bin/env bash
# Install what building and testing dstorage needs beyond Rust and Go, on a fresh Debian machine:
#   - libclang (rusqlite builds SQLite's session extension with bindgen), from Debian's packages;
#   - the pinned CometBFT (scripts/install-cometbft.sh, `go install` from the Go module proxy);
#   - with --tests: the signature cross-check tools (eth-account, PyNaCl, ...) in a project-local venv.
# Idempotent and quiet when everything is already there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} (Debian packages)" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$root/scripts/install-cometbft.sh" >/dev/null
if [ "${1:-}" = "--tests" ]; then
  "$root/crates/dstorage-auth/tests/xcheck/install.sh" >/dev/null
fi
