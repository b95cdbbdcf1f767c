#!/usr/bin/env bash
# Runs every planner scenario (Puzzles 1–4, 6 and 7, the Llama-70B GPU comparison), printing each result and
# its wall time. RAYON_NUM_THREADS=1 gives the serial time.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${KVFLEET:-target/release/kvfleet}
total_start=$(date +%s.%N)
for f in scenarios/puzzle1_*/plan.toml scenarios/puzzle2_*/plan.toml scenarios/puzzle3_*/*.toml scenarios/puzzle4_*/plan.toml scenarios/puzzle6_*/*.toml scenarios/puzzle7_*/[ahl]*.toml scenarios/gpu_compare_*/*.toml; do
  start=$(date +%s.%N)
  echo "=== $f"
  "$bin" run "$f" --quiet
  echo "--- $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
done
echo "=== total $(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
