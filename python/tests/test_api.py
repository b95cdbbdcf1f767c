"""The Python package against the CLI: same arguments and seed, same document."""

import json
import pathlib
import pickle
import subprocess
import threading
import time

import pytest

import kvfleet

SIM = dict(cdf="azure", gpu="h100", n_gpus=8, lam=150, n_req=50000, seed=5, no_timing=True)


def cli_json(cli, *args):
    out = subprocess.run([cli, *args, "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_simulate_equals_cli_json(cli):
    r = kvfleet.simulate(**SIM)
    assert r.ok and r.command == "simulate"
    assert r.to_dict() == cli_json(
        cli, "simulate", "--cdf", "azure", "--gpu", "h100", "--n-gpus", "8", "--lam", "150",
        "--n-req", "50000", "--seed", "5", "--no-timing")
    # The serialised text is the CLI's byte for byte (the CLI adds one newline).
    out = subprocess.run([cli, "simulate", "--cdf", "azure", "--gpu", "h100", "--n-gpus", "8",
                          "--lam", "150", "--n-req", "50000", "--seed", "5", "--no-timing",
                          "--json"], capture_output=True, text=True, check=True)
    assert r.to_json() + "\n" == out.stdout


def test_same_seed_same_bytes_other_seed_differs():
    a = kvfleet.simulate(**SIM).to_json()
    b = kvfleet.simulate(**SIM).to_json()
    c = kvfleet.simulate(**{**SIM, "seed": 6}).to_json()
    assert a == b
    assert a != c


def test_optimize_and_list_flags(cli):
    kw = dict(cdf="azure", lam=100, slo=500, gpu_short="a100", gpu_long="a100",
              long_max_ctx=8192, b_short=4096, n_sim_req=4000)
    r = kvfleet.optimize(**kw)
    doc = r.to_dict()
    assert doc == cli_json(cli, "optimize", "--cdf", "azure", "--lam", "100", "--slo", "500",
                           "--gpu-short", "a100", "--gpu-long", "a100", "--long-max-ctx",
                           "8192", "--b-short", "4096", "--n-sim-req", "4000")
    assert "Recommended" in r.table() or "No recommendation" in r.table()
    df = r.to_pandas()
    assert len(df) == len(doc["candidates"])


def test_compare_routers_to_pandas():
    r = kvfleet.compare_routers(cdf="azure", lam=60, gpu_short="h100", gpu_long="h100",
                                n_s=2, n_l=2, long_max_ctx=8192, n_req=3000,
                                routers=["length", "random", "least-loaded"])
    df = r.to_pandas()
    assert len(df) == 3
    assert list(df["router"]) == [row["router"] for row in r.to_dict()["routers"]]
    assert r.to_csv().splitlines()[0].startswith("router")


def test_whatif_list_values(cli):
    r = kvfleet.whatif(cdf="azure", lam_range=[25, 50], gpu_short="a100", gpu_long="a100",
                       long_max_ctx=8192, n_sim_req=2000)
    assert r.to_dict() == cli_json(cli, "whatif", "--cdf", "azure", "--lam-range", "25", "50",
                                   "--gpu-short", "a100", "--gpu-long", "a100",
                                   "--long-max-ctx", "8192", "--n-sim-req", "2000")
    assert len(r.to_pandas()) >= 2


def test_bad_value_raises_input_error_naming_the_flag():
    with pytest.raises(kvfleet.InputError) as e:
        kvfleet.simulate(lam=-5, n_req=2000)
    assert "--lam" in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(kvfleet.InputError) as e:
        kvfleet.simulate(gpu="no-such-gpu", n_req=2000)
    assert "--gpu" in str(e.value)
    with pytest.raises(kvfleet.InputError) as e:
        kvfleet.simulate(n_gpus="many")
    assert "--n-gpus" in str(e.value)


def test_unknown_keyword_lists_the_known_ones():
    with pytest.raises(kvfleet.InputError) as e:
        kvfleet.simulate(n_gpu=4)
    msg = str(e.value)
    assert "n_gpu" in msg and "n_gpus" in msg


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(kvfleet.InputError) as e:
        kvfleet.run(tmp_path / "missing.toml")
    assert "missing.toml" in str(e.value)


def test_measured_nothing_is_reported_not_raised():
    # Every request longer than the pool's context: the CLI exits 1 after the report.
    r = kvfleet.simulate(isl="fixed:9000", osl="fixed:10", max_ctx=4096, n_req=2000,
                         no_timing=True)
    assert not r.ok
    assert "all-rejected" in r.failure


def test_progress_factory_is_called():
    events = []

    class Bar:
        def __init__(self, total=None, desc=""):
            events.append(("start", total, desc))

        def update(self, n=1):
            events.append(("update", n))

        def set_description(self, desc):
            events.append(("desc", desc))

        def close(self):
            events.append(("close",))

    kvfleet.simulate(n_req=200000, no_timing=True, progress=Bar)
    assert events[0][0] == "start" and events[0][1] >= 200000
    assert any(e[0] == "update" for e in events)
    assert events[-1] == ("close",)
    # quiet wins over a progress factory.
    events.clear()
    kvfleet.simulate(n_req=20000, no_timing=True, quiet=True, progress=Bar)
    assert events == []


def test_runs_release_the_gil():
    ticks = []
    done = threading.Event()

    def work():
        kvfleet.simulate(n_req=400000, no_timing=True)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    t.join()
    # The main thread kept running while the simulation ran.
    assert len(ticks) > 10


def test_files_written_like_the_cli(tmp_path):
    csv = tmp_path / "p.csv"
    svg = tmp_path / "p.svg"
    out = tmp_path / "p.json"
    r = kvfleet.pareto(cdf="azure", lam=50, gpu_short="a100", gpu_long="a100",
                       long_max_ctx=8192, n_sim_req=2000, csv=csv, plot=svg, out=out)
    assert csv.read_text() == r.to_csv()
    assert svg.read_text().lstrip().startswith("<svg")
    assert json.loads(out.read_text()) == r.to_dict()
    assert [str(p) for p in (out, csv, svg)] == r.files


def test_nested_subcommands_and_a_positional(tmp_path):
    s = kvfleet.profile_step(gpu="h100-sxm:llama-3.1-70b:tp4:fp8", batch=16, ctx=2048)
    assert s.command == "profile"
    assert s.to_dict()["batch"] == 16
    p = kvfleet.profile(gpu="a100", batches=[1, 8])
    assert "a100" in p.table()
    assert len(p.to_pandas()) > 0
    scen = tmp_path / "s.toml"
    scen.write_text('[workload]\ncdf = "azure"\nlam = 10\nn_requests = 2000\n[[pools]]\nid = "p"\ngpu = "h100"\ninstances = 2\nmax_ctx = 8192\n')
    r = kvfleet.run(scen, no_timing=True)
    assert r.command == "run" and r.to_dict()["requests"]["arrived"] == 2000


def test_result_pickles():
    r = kvfleet.simulate(n_req=5000, no_timing=True)
    back = pickle.loads(pickle.dumps(r))
    assert back.to_dict() == r.to_dict() and back.table() == r.table()


def test_docstrings_name_the_flags():
    assert "n_gpus [--n-gpus]" in kvfleet.simulate.__doc__
    assert "lam_range [--lam-range]" in kvfleet.whatif.__doc__


def test_benchmark_rows_and_shard_merge(tmp_path):
    b = kvfleet.benchmark(gpu="h100-sxm:gpt-oss-120b:tp8:fp4", isl=1024, osl=1024,
                          concurrency=[4, 8])
    df = b.to_pandas()
    assert list(df["conc"]) == [4, 8]
    kw = dict(cdf="azure", lam=40, gpu_short="a100", gpu_long="a100", long_max_ctx=8192,
              n_sim_req=2000)
    single = kvfleet.pareto(**kw)
    paths = []
    for i in range(2):
        p = tmp_path / f"s{i}.json"
        kvfleet.pareto(**kw, shard=f"{i}/2", out=p)
        paths.append(p)
    merged = kvfleet.merge(paths)
    assert merged.to_json() == single.to_json()


def test_cluster_and_rack_plan_equal_cli_json(cli):
    c = kvfleet.cluster(active_users=1000, model="1", tokens_cached=4096,
                        batch_sizes=[1, 2, 4, 8], rack_preset="gb200-nvl72")
    assert c.to_dict() == cli_json(cli, "cluster", "--active-users", "1000", "--model", "1",
                                   "--tokens-cached", "4096", "--batch-sizes", "1,2,4,8",
                                   "--rack-preset", "gb200-nvl72")
    assert c.to_dict()["racks"] >= 1 and c.to_dict()["shortfall"] == []
    assert len(c.to_pandas()) >= 1
    repo = pathlib.Path(__file__).resolve().parents[2]
    scenario = str(repo / "scenarios" / "nvl72_two_clients" / "two_clients.toml")
    r = kvfleet.rack_plan(scenario)
    assert r.to_dict() == cli_json(cli, "rack-plan", scenario)
