#!/usr/bin/env python3
"""Replay the measured InferenceMAX H100 rows (data/measured/) through
`kvfleet simulate` as the fixed-concurrency closed loop they were measured in,
and print the signed error per row and the median per TP.

Usage: scripts/replay_measured.py [KVFLEET_BIN] [CSV] [EXTRA SPEC SUFFIX]
Built from commit 07bba7a (before issue 13) it reproduces the issue's
"before" table (median signed error of throughput/GPU: TP2 +96%, TP4 +48%,
TP8 -9%); on later trees it replays the current model (pass
`@data/calibration/vllm-h100.toml` as the third argument for the calibrated
one). `kvfleet benchmark --compare` and `kvfleet profile validate --serving`
are the tools that replace it (exact benchmark conventions: no warm-up
exclusion, duration to the last completion).
"""
import csv, json, statistics, subprocess, sys

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/kvfleet"
path = sys.argv[2] if len(sys.argv) > 2 else "data/measured/inferencemax_gptoss_h100.csv"
suffix = sys.argv[3] if len(sys.argv) > 3 else ""
rows = list(csv.DictReader(open(path)))
by_tp = {}
print(f"{'tp':>3} {'isl':>5} {'osl':>5} {'conc':>4} {'tput/gpu':>9} {'meas':>8} {'err':>7} {'tpot_err':>8} {'ttft_err':>8}")
for r in rows:
    tp, isl, osl, c = int(float(r["tensor_parallel"])), int(r["input_seq_len"]), int(r["output_seq_len"]), int(r["concurrency"])
    spec = f"h100-sxm:gpt-oss-120b:tp{tp}:fp4{suffix}"
    cmd = [binary, "simulate", "--users", str(c), "--think-time-s", "0", "--max-num-seqs", str(c),
           "--isl", f"range:{isl}:0.8", "--osl", f"range:{osl}:0.8", "--chunk", "8192",
           "--gpu", spec, "--n-gpus", "1", "--n-req", str(10 * c), "--json", "--no-timing", "--quiet"]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True).stdout)
    t = out["throughput"]
    tput = (t["input_tok_per_s"] + t["output_tok_per_s"]) / tp
    e = lambda sim, meas: sim / meas - 1.0
    et = e(tput, float(r["throughput_tokens_per_sec_per_gpu"]))
    ep = e(out["tpot_ms"]["mean"] / 1e3, float(r["mean_time_per_output_token_sec"]))
    ef = e(out["ttft_ms"]["mean"] / 1e3, float(r["mean_time_to_first_token_sec"]))
    by_tp.setdefault(tp, []).append((et, ep, ef))
    print(f"{tp:>3} {isl:>5} {osl:>5} {c:>4} {tput:>9.0f} {float(r['throughput_tokens_per_sec_per_gpu']):>8.0f} {et:>+7.0%} {ep:>+8.0%} {ef:>+8.0%}")
allr = [x for v in by_tp.values() for x in v]
for tp, v in sorted(by_tp.items()) + [("all", allr)]:
    med = [statistics.median(x[i] for x in v) for i in range(3)]
    worst = max(v, key=lambda x: abs(x[0]))[0]
    print(f"TP {tp}: rows {len(v)}  median signed error tput/gpu {med[0]:+.0%} (worst {worst:+.0%}), mean TPOT {med[1]:+.0%}, mean TTFT {med[2]:+.0%}")
