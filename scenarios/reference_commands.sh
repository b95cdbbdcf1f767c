#!/usr/bin/env bash
# Runs the 22 commands of the reference tool's "Reproducing all results"
# (seed 003; Puzzle 3's loop expanded to its three GPUs) verbatim, with
# `kvfleet` in place of `vllm-sr-sim`, from an empty folder (the built-in CDFs
# stand in for data/*.json), and prints each command's summary lines.
# tests/reference_commands.rs runs the same commands and re-simulates each
# answer on an unseen seed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${KVFLEET:-target/release/kvfleet}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
while IFS= read -r cmd; do
  [ -n "$cmd" ] || continue
  echo "=== kvfleet $cmd"
  # shellcheck disable=SC2086
  "$bin" $cmd --quiet 2>&1 | grep -E '^(Recommended|Best|Cheapest|Max safe|Note: no|Rejects|SLO|Verdict)|rejects|✓|✗' | head -20 || true
done <<'CMDS'
optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long h100 --long-max-ctx 8192
optimize --cdf data/lmsys_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long h100 --long-max-ctx 65536
optimize --cdf data/lmsys_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long a100 --long-max-ctx 65536
disagg --cdf data/azure_cdf.json --lam 100 --slo-ttft 500 --slo-tpot 100 --gpu-prefill h100 --gpu-decode a100 --max-ctx 8192
disagg --cdf data/azure_cdf.json --lam 100 --slo-ttft 500 --slo-tpot 100 --gpu-prefill a100 --gpu-decode h100 --max-ctx 8192
pareto --cdf data/lmsys_cdf.json --lam 100 --slo 500 --long-max-ctx 65536
pareto --cdf data/azure_cdf.json --lam 200 --slo 500 --long-max-ctx 8192
pareto --cdf data/agent_heavy_cdf.json --lam 200 --slo 500 --long-max-ctx 65536
optimize --cdf data/agent_heavy_cdf.json --lam 20 --slo 1000 --gpu-short h100 --gpu-long h100 --b-short 65536 --long-max-ctx 65536
optimize --cdf data/agent_heavy_cdf.json --lam 20 --slo 1000 --gpu-short h100 --gpu-long h100 --b-short 4096 --long-max-ctx 65536 --verify-top 3
optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long a10g --b-short 8192 --long-max-ctx 8192
optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a10g --gpu-long a10g --long-max-ctx 8192 --verify-top 3
optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a100 --gpu-long a100 --b-short 8192 --long-max-ctx 8192
optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short a100 --gpu-long a100 --long-max-ctx 8192 --verify-top 3
optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short h100 --gpu-long h100 --b-short 8192 --long-max-ctx 8192
optimize --cdf data/azure_cdf.json --lam 100 --slo 500 --gpu-short h100 --gpu-long h100 --long-max-ctx 8192 --verify-top 3
whatif --cdf data/azure_cdf.json --slo 500 --gpu-short h100 --gpu-long h100 --long-max-ctx 8192 --lam-range 25 50 100 150 200 300 400
compare-routers --cdf data/azure_cdf.json --lam 200 --slo 500 --gpu-short h100 --gpu-long h100 --n-s 5 --n-l 7 --long-max-ctx 8192 --n-req 5000
compare-routers --cdf data/agent_heavy_cdf.json --lam 20 --slo 1000 --gpu-short h100 --gpu-long h100 --n-s 2 --n-l 23 --long-max-ctx 65536 --n-req 5000
tok-per-watt --cdf data/azure_cdf.json --lam 100 --slo 500 --gpus h100 a100 a10g --rho-sweep
tok-per-watt --cdf data/lmsys_cdf.json --lam 100 --slo 500 --gpus h100 a100
tok-per-watt --cdf data/azure_cdf.json --lam 100 --slo 500 --b-short 4096 --gpu-short a10g --gpu-long h100
tok-per-watt --cdf data/lmsys_cdf.json --lam 100 --slo 500 --b-short 2048 --gpu-short a10g --gpu-long h100
grid-flex --cdf data/azure_cdf.json --lam 200 --n-gpus 40 --gpu h100 --slo 500
grid-flex --cdf data/azure_cdf.json --lam 200 --n-gpus 40 --gpu h100 --slo 500 --verify-des 15000
grid-flex --cdf data/azure_cdf.json --lam 100 --n-gpus 15 --gpu a100 --slo 500 --verify-des 15000
CMDS
