"""sweep(): same results in the same order, locally (sequential or threads) and on Ray."""

import pytest

import kvfleet

CONFIGS = [dict(cdf="azure", n_gpus=n, lam=lam, n_req=8000, seed=3, no_timing=True)
           for n, lam in [(2, 20), (4, 60), (3, 40), (6, 90)]]


def docs(results):
    return [r.to_dict() for r in results]


def test_local_sweep_matches_direct_calls():
    direct = [kvfleet.simulate(**c).to_dict() for c in CONFIGS]
    assert docs(kvfleet.sweep("simulate", CONFIGS)) == direct
    assert docs(kvfleet.sweep("simulate", CONFIGS, max_workers=3)) == direct


def test_sweep_rejects_unknown_kind_and_backend():
    with pytest.raises(kvfleet.InputError):
        kvfleet.sweep("simulat", CONFIGS)
    with pytest.raises(kvfleet.InputError):
        kvfleet.sweep("simulate", CONFIGS, backend="slurm")


def test_ray_sweep_equals_local():
    ray = pytest.importorskip("ray", reason="SKIPPED: ray is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True)
    try:
        local = docs(kvfleet.sweep("simulate", CONFIGS))
        remote = kvfleet.sweep("simulate", CONFIGS, backend="ray")
        assert [r.command for r in remote] == ["simulate"] * len(CONFIGS)
        assert docs(remote) == local
    finally:
        ray.shutdown()
