#!/usr/bin/env bash
# Install the cross-check tools (eth-account, PyNaCl, bech32, base58) into a project-local venv.
# The venv lives in target-xcheck/venv at the workspace root (ignored by git), or in $DSTORAGE_XCHECK_VENV.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../../.." && pwd)"
venv="${DSTORAGE_XCHECK_VENV:-$root/target-xcheck/venv}"
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$venv/bin/python"
