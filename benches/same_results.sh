#!/usr/bin/env bash
# Whether two builds give the same results: each command below runs with
# both binaries (`--json`, `--no-timing` where the command has it) and the
# reports are compared byte for byte, after removing the engine's event
# counts (an engine change may save events; it must change nothing else).
#
#   BEFORE=path/to/older/kvfleet bash benches/same_results.sh
#   KVFLEET=... (default target/release/kvfleet) KEEP_EVENTS=1 compares
#   the event counts too.
#
# Covers every dispatcher, central and bounded queues, a loss system,
# overload with and without --run-to-completion, the step engine, the slot
# model, --validate, two pools, 80 and 1,000 instances, a failure drill, a
# disaggregated fleet, a multi-model fleet, grid-flex's caps and the
# planners on the seeds' flags. Needs no files but the repository's own.
set -euo pipefail
cd "$(dirname "$0")/.."
new=$(realpath "${KVFLEET:-target/release/kvfleet}")
old=$(realpath "${BEFORE:?set BEFORE to the kvfleet binary to compare with}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
strip() { # the report without event counts, keys sorted
  python3 - "$1" <<'PY'
import json, os, sys
keep = os.environ.get("KEEP_EVENTS") == "1"
def walk(v):
    if isinstance(v, dict):
        return {k: walk(x) for k, x in v.items() if keep or k != "events"}
    if isinstance(v, list):
        return [walk(x) for x in v]
    return v
print(json.dumps(walk(json.load(open(sys.argv[1]))), sort_keys=True, indent=1))
PY
}
fails=0
n=0
while IFS= read -r cmd; do
  [ -n "$cmd" ] || continue
  n=$((n + 1))
  # shellcheck disable=SC2086
  "$old" $cmd --json --quiet >"$tmp/old.json" 2>"$tmp/old.err" || true
  # shellcheck disable=SC2086
  "$new" $cmd --json --quiet >"$tmp/new.json" 2>"$tmp/new.err" || true
  if ! [ -s "$tmp/old.json" ] || ! [ -s "$tmp/new.json" ]; then
    if cmp -s "$tmp/old.err" "$tmp/new.err"; then
      echo "same (both failed alike)  $cmd"
    else
      echo "DIFFERENT ERRORS          $cmd"
      fails=$((fails + 1))
    fi
    continue
  fi
  if cmp -s <(strip "$tmp/old.json") <(strip "$tmp/new.json"); then
    echo "same                      $cmd"
  else
    echo "DIFFERENT                 $cmd"
    diff <(strip "$tmp/old.json") <(strip "$tmp/new.json") | head -8
    fails=$((fails + 1))
  fi
done <<'CMDS'
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 200000 --no-timing
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 100000 --dispatch round-robin --no-timing
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 100000 --dispatch power-of-two --no-timing
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 100000 --dispatch least-kv --no-timing
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 100000 --dispatch free-kv --no-timing
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 100000 --dispatch central --no-timing
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 100000 --max-queue 4 --no-timing
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 100000 --max-queue 0 --no-timing
simulate --cdf azure --n-gpus 8 --lam 380 --n-req 100000 --no-timing
simulate --cdf azure --n-gpus 8 --lam 380 --n-req 100000 --run-to-completion --no-timing
simulate --cdf azure --n-gpus 4 --lam 60 --n-req 20000 --engine step --no-timing
simulate --cdf azure --n-gpus 8 --lam 150 --n-req 50000 --service-model slot --no-timing
simulate --cdf azure --n-gpus 4 --lam 70 --n-req 20000 --validate --no-timing
simulate --cdf lmsys --n-gpus 2 --lam 40 --n-req 50000 --kv-blocks 3000 --validate --no-timing
simulate --cdf lmsys --n-gpus 2 --lam 40 --n-req 100000 --kv-blocks 3000 --no-timing
simulate --cdf agent-heavy --n-gpus 6 --lam 8 --n-req 20000 --max-num-seqs 16 --no-timing
simulate --cdf lmsys --n-s 2 --n-l 6 --b-short 1024 --lam 100 --n-req 100000 --no-timing
simulate --cdf azure --n-gpus 80 --lam 1500 --n-req 300000 --no-timing
simulate --cdf azure --n-gpus 1000 --lam 18750 --n-req 300000 --no-timing
simulate --users 40 --think-time-s 2 --n-req 20000 --no-timing
simulate --cdf azure --n-gpus 8 --n-req 100000 --rate-profile 0:100,60:200,120:100 --no-timing
simulate --scenario scenarios/two_pool_chat.toml --no-timing
simulate --scenario scenarios/failure_drill/h100_two_fail.toml --no-timing
simulate --scenario scenarios/puzzle7_disagg/simulate_a100p_h100d.toml --no-timing
simulate --scenario scenarios/three_model_fleet.json --lam 30 --n-req 20000 --no-timing
pareto --cdf lmsys --lam 100 --slo 500 --long-max-ctx 65536
grid-flex --cdf azure --lam 200 --n-gpus 40 --gpu h100 --slo 500
grid-flex --cdf azure --lam 200 --n-gpus 40 --gpu h100 --slo 500 --all-depths
whatif --cdf azure --slo 500 --gpu-short h100 --gpu-long h100 --long-max-ctx 8192 --lam-range 25 50 100 150 200 300 400
disagg --cdf azure --lam 100 --slo-ttft 500 --slo-tpot 100 --gpu-prefill h100 --gpu-decode a100 --max-ctx 8192
optimize --cdf azure --lam 100 --slo 500 --gpu-short a10g --gpu-long h100 --long-max-ctx 8192
tok-per-watt --cdf azure --slo 500 --lam 100
analytic --cdf azure --lam 100 --n-gpus 4 --verify-des 20000
CMDS
echo "$n commands, $fails different"
[ "$fails" -eq 0 ]
