#!/usr/bin/env bash
# Install the pinned CometBFT (version in ../COMETBFT_VERSION) with `go install` from the Go module proxy
# into a per-version cache folder, unless it is already there. Prints the binary's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(tr -d '[:space:]' < "$root/COMETBFT_VERSION")"
dir="${DSTORAGE_CACHE:-$HOME/.cache/dstorage}/cometbft-$version"
bin="$dir/cometbft"
if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -qx "${version#v}"; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to install CometBFT $version" >&2; exit 1; }
echo "installing CometBFT $version into $dir (go install, takes a minute or two)" >&2
mkdir -p "$dir"
GOBIN="$dir" GOFLAGS="${GOFLAGS:-} -mod=mod" go install "github.com/cometbft/cometbft/cmd/cometbft@$version" >&2
"$bin" version >&2
echo "$bin"
