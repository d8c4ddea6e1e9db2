#!/usr/bin/env bash
# Install the cross-check tools (eth-account, PyNaCl, bech32, base58) into a project-local venv.
# The venv lives in target-xcheck/venv at the workspace root (ignored by git), or in $DSTORAGE_XCHECK_VENV.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../../.." && pwd)"
venv="${DSTORAGE_XCHECK_VENV:-$root/target-xcheck/venv}"
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 ships venv/ensurepip separately.
    rm -rf "$venv"
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$venv"
  fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$venv/bin/python"
