#!/usr/bin/env bash
# The planners on the seed's documented flags, side by side with the
# reference tool (`vllm-sr-sim`, on PyPI): wall time of each, best of
# $RUNS runs taken in turns, and their ratio, in one run on the same machine.
#
#   python3 -m venv /tmp/ref && /tmp/ref/bin/pip install vllm-sr-sim
#   REF=/tmp/ref/bin/vllm-sr-sim bash benches/planners_vs_reference.sh
#
# Needs the reference's CDF files (`data/*_cdf.json`): ../shared/data/cdf, or
# CDF_DIR=... (kvfleet reads the same files). Without REF, kvfleet alone.
# BEFORE=path/to/an/older/kvfleet adds its time and the speed-up over it.
# The last row is the one comparison in which both tools simulate: the
# seed's grid-flex with the reference's own DES verification
# (`--verify-des 15000`, 15k requests per flex level in each tool).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${KVFLEET:-target/release/kvfleet}")
ref=${REF:-}
before=${BEFORE:-}
cdf=$(realpath "${CDF_DIR:-../shared/data/cdf}")
runs=${RUNS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data"
for f in azure lmsys agent_heavy; do
  cp "$cdf/${f}_cdf.json" "$tmp/data/" 2>/dev/null || cp "$cdf/${f}.json" "$tmp/data/${f}_cdf.json"
done
cd "$tmp"
wall() { # wall time (s) of one run of "$@", to the microsecond (bash's
  # clock: /usr/bin/time's 10 ms steps are 7% of a 0.14 s run); a run
  # that fails stops the script with its command line.
  local start=$EPOCHREALTIME
  if ! "$@" </dev/null >/dev/null 2>"$tmp/err"; then
    echo "failed: $* ($(tail -1 "$tmp/err"))" >&2
    kill -TERM $$
  fi
  awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", e - s }'
}
min() { awk -v a="$1" -v c="$2" 'BEGIN { print (c < a) ? c : a }'; }
printf '%-10s %10s %10s %11s %9s %9s\n' command before_s kvfleet_s reference_s vs_ref speedup
while IFS='|' read -r name cmd; do
  # The tools take turns, run after run, so that a drift in the machine's
  # speed falls on both; each keeps its best of $runs.
  k=1e9; b=1e9; r=1e9
  for _ in $(seq "$runs"); do
    k=$(min "$k" "$(wall "$bin" $cmd --quiet)")
    if [ -n "$before" ]; then b=$(min "$b" "$(wall "$before" $cmd --quiet)"); fi
    if [ -n "$ref" ]; then r=$(min "$r" "$(wall "$ref" $cmd)"); fi
  done
  vs=-; up=-
  if [ -n "$before" ]; then
    up=$(awk -v a="$b" -v c="$k" 'BEGIN { printf "%.1fx", a / c }')
  else
    b=-
  fi
  if [ -n "$ref" ]; then
    vs=$(awk -v a="$k" -v c="$r" 'BEGIN { x = a / c; printf (x < 0.1 ? "%.4fx" : "%.2fx"), x }')
  else
    r=-
  fi
  printf '%-10s %10s %10s %11s %9s %9s\n' "$name" "$b" "$k" "$r" "$vs" "$up"
done <<'CMDS'
pareto|pareto --cdf data/lmsys_cdf.json --lam 100 --slo 500 --long-max-ctx 65536
grid-flex|grid-flex --cdf data/azure_cdf.json --lam 200 --n-gpus 40 --gpu h100 --slo 500
whatif|whatif --cdf data/azure_cdf.json --slo 500 --gpu-short h100 --gpu-long h100 --long-max-ctx 8192 --lam-range 25 50 100 150 200 300 400
disagg|disagg --cdf data/azure_cdf.json --lam 100 --slo-ttft 500 --slo-tpot 100 --gpu-prefill h100 --gpu-decode a100 --max-ctx 8192
optimize|optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long h100 --long-max-ctx 8192
grid-flex+des|grid-flex --cdf data/azure_cdf.json --lam 200 --n-gpus 40 --gpu h100 --slo 500 --verify-des 15000
CMDS
