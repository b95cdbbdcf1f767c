#!/usr/bin/env bash
# Runs every `kvfleet ...` example of README.md's bash blocks, verbatim, from a
# fresh clone in a temporary folder (no ../shared beside it), with the built
# binary on PATH. Each must exit 0. Prints one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin_dir=${KVFLEET_BIN_DIR:-$repo/target/release}
test -x "$bin_dir/kvfleet" || { echo "readme examples: $bin_dir/kvfleet not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone --quiet "$repo" "$tmp/kvfleet"
# The examples: lines of ```bash blocks that start with `kvfleet `, with
# backslash continuations joined.
examples=$(awk '
  /^```bash/ { inblock = 1; next }
  /^```/ { inblock = 0; next }
  inblock {
    line = cont ? cont " " $0 : $0
    if (line ~ /\\$/) { sub(/\\$/, "", line); cont = line; next }
    cont = ""
    if (line ~ /^kvfleet /) print line
  }' README.md)
n=0
while IFS= read -r example; do
  [ -n "$example" ] || continue
  n=$((n + 1))
  if ! (cd "$tmp/kvfleet" && PATH="$bin_dir:$PATH" timeout 600 bash -c "$example --quiet" >"$tmp/out" 2>&1); then
    echo "readme example failed: $example" >&2
    tail -5 "$tmp/out" >&2
    exit 1
  fi
done <<<"$examples"
echo "readme examples: all $n ran from a fresh clone"
