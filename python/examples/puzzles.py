"""The seed's Puzzles 2, 5 and 8 from a notebook (run as a script, or cell by cell).

    pip install ./python pandas
    python python/examples/puzzles.py

Each call is the CLI command of the same name with the same flags; the
results are the CLI's --json documents, here turned into DataFrames.
"""

import kvfleet

# %% Puzzle 2 — why is my agent fleet failing its SLO?
# A homogeneous H100 fleet against the two-pool fix, both DES-verified.
homo = kvfleet.optimize(cdf="agent-heavy", lam=20, slo=1000, gpu_short="h100",
                        gpu_long="h100", b_short=65536, long_max_ctx=65536, progress=True)
two_pool = kvfleet.optimize(cdf="agent-heavy", lam=20, slo=1000, gpu_short="h100",
                            gpu_long="h100", b_short=4096, long_max_ctx=65536,
                            verify_top=3, progress=True)
for name, r in [("homogeneous", homo), ("two-pool", two_pool)]:
    best = r.to_dict().get("best")
    if best:
        print(f"{name}: {best['cost']['gpus']} GPUs, ${best['cost']['per_year_usd'] / 1e3:.0f}K/yr")
    else:
        print(f"{name}: no fleet meets the SLO")
print(two_pool.table())  # the same table `kvfleet optimize` prints
print(two_pool.to_pandas()[["b_short", "cost.gpus", "cost.per_year_usd"]])

# %% Puzzle 5 — which router causes SLO violations?
routers = kvfleet.compare_routers(cdf="agent-heavy", lam=20, slo=1000, gpu_short="h100",
                                  gpu_long="h100", n_s=2, n_l=23, long_max_ctx=65536,
                                  n_req=5000, progress=True)
print(routers.table())
df = routers.to_pandas()
print(df.head())

# %% Puzzle 8 — how much grid power can I shed without an SLO breach?
flex = kvfleet.grid_flex(cdf="azure", lam=200, n_gpus=40, gpu="h100", slo=500,
                         progress=True)
levels = flex.to_pandas()
print(levels.head(10))
print(flex.table())
