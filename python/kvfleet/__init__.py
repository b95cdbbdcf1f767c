"""kvfleet: capacity planning for LLM serving fleets, from Python.

Every subcommand of the ``kvfleet`` CLI is a function here, with keyword
arguments named after its flags (``--n-gpus`` is ``n_gpus``; switches take
``True``; flags with several values take a list)::

    import kvfleet
    r = kvfleet.simulate(cdf="azure", gpu="h100", n_gpus=8, lam=150,
                         n_req=50_000, seed=5, no_timing=True)
    r.to_dict()      # exactly the CLI's --json document
    r.table()        # the CLI's table
    kvfleet.compare_routers(cdf="azure", lam=100).to_pandas()

Runs release the GIL. ``progress=True`` shows tqdm bars (if tqdm is
installed), or pass any factory ``f(total=..., desc=...)`` returning an
object with ``update(n)``, ``set_description(s)`` and ``close()``.
Bad input raises :class:`InputError` (a ``ValueError``) with the CLI's
one-line message naming the flag. ``sweep`` runs many configurations
locally or as Ray tasks.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from . import _native
from ._native import InputError

__all__ = [
    "InputError",
    "Result",
    "analytic",
    "benchmark",
    "calibrate",
    "cluster",
    "compare_routers",
    "disagg",
    "grid_flex",
    "merge",
    "optimize",
    "pareto",
    "profile",
    "profile_step",
    "profile_validate",
    "rack_plan",
    "run",
    "simulate",
    "simulate_fleet",
    "sizing_calc",
    "sweep",
    "tok_per_watt",
    "whatif",
]

__version__ = _native.version()

# Where each report keeps its rows, for Result.to_pandas(): the first key
# that is present wins; a report that is a list (whatif, pareto) is its own
# rows; "*" takes the whole document as one row.
_TABLES: dict = {
    "simulate": ["pools"],
    "simulate-fleet": ["pools"],
    "run": ["pools", "candidates", "levels", "fleets", "routers", "designs"],
    "compare-routers": ["routers"],
    "optimize": ["candidates"],
    "whatif": [],
    "pareto": [],
    "grid-flex": ["levels"],
    "tok-per-watt": ["fleets"],
    "disagg": ["candidates"],
    "sizing-calc": ["points"],
    "analytic": ["rows"],
    "profile": ["steps"],

    "calibrate": ["samples", "rows"],
    "benchmark": ["rows"],
    "cluster": ["candidates"],
    "rack-plan": ["verified"],
}


class Result:
    """The outcome of one kvfleet run.

    ``to_dict()`` is the CLI's ``--json`` document for the same arguments,
    ``table()`` its human table, ``to_pandas()`` its rows as a DataFrame.
    ``ok`` is False when the run measured nothing (the CLI exits 1), and
    ``failure`` says why. Results pickle (they are plain data), so they
    travel back from Ray workers unchanged.
    """

    __slots__ = ("command", "json", "_table", "_csv", "notices", "failure", "files")

    def __init__(self, command: str, json_text: str, table: str, csv: Optional[str],
                 notices: Sequence[str], failure: Optional[str], files: Sequence[str] = ()):
        self.command = command
        self.json = json_text
        self._table = table
        self._csv = csv
        self.notices = list(notices)
        self.failure = failure
        self.files = [os.fspath(f) for f in files]

    @classmethod
    def _from_native(cls, o: Any) -> "Result":
        return cls(o.command, o.json, o.table, o.csv, o.notices, o.failure, o.files)

    def __reduce__(self):
        return (Result, (self.command, self.json, self._table, self._csv,
                         self.notices, self.failure, self.files))

    @property
    def ok(self) -> bool:
        """False when the run measured nothing (verdict no-data or all-rejected)."""
        return self.failure is None

    def to_dict(self) -> dict:
        """The report as the CLI's ``--json`` document (a fresh dict each call)."""
        return json.loads(self.json)

    def to_json(self) -> str:
        """The report as the CLI prints it with ``--json`` (without the final newline)."""
        return self.json

    def table(self) -> str:
        """The CLI's human table (and notes)."""
        return self._table

    def to_csv(self) -> Optional[str]:
        """The CLI's ``--csv`` text, for reports that have one."""
        return self._csv

    def rows(self, key: Optional[str] = None) -> list:
        """The report's rows (a list of dicts): those under ``key``, or the
        command's main table (routers, candidates, levels, points, ...)."""
        doc = self.to_dict()
        if isinstance(doc, list) and key is None:
            return doc
        keys = [key] if key else _TABLES.get(self.command, [])
        for k in keys:
            if k == "*":
                return [doc]
            if isinstance(doc.get(k), list):
                return doc[k]
        raise KeyError(
            f"{self.command}: no table {keys!r} in this report; "
            f"its keys are {sorted(doc) if isinstance(doc, dict) else 'none (a list)'}"
        )

    def to_pandas(self, key: Optional[str] = None):
        """The rows as a pandas DataFrame (nested fields flattened to ``a.b`` columns)."""
        import pandas as pd

        return pd.json_normalize(self.rows(key))

    def __str__(self) -> str:
        return self._table

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"failed: {self.failure}"
        return f"<kvfleet.Result {self.command} ({state})>"


class _StderrBar:
    """A minimal progress line on stderr, used when tqdm is not installed."""

    def __init__(self, total=None, desc=""):
        self.total, self.desc, self.n = total, desc, 0

    def update(self, n=1):
        self.n += n
        tot = f"/{self.total}" if self.total else ""
        sys.stderr.write(f"\r{self.desc} {self.n}{tot}")
        sys.stderr.flush()

    def set_description(self, desc):
        self.desc = desc

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()


def _progress_factory(progress: Any) -> Optional[Callable]:
    if progress is None or progress is False:
        return None
    if progress is True:
        try:
            from tqdm.auto import tqdm  # type: ignore

            return tqdm
        except ImportError:
            return _StderrBar
    if callable(progress):
        return progress
    raise InputError("progress: expected True, False, None or a factory callable")


def _norm(key: str, value: Any):
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, os.PathLike, int, float)):
        return _one(value)
    if isinstance(value, Mapping):
        raise InputError(f"--{key.replace('_', '-')}: expected a value or a list, got a mapping")
    if isinstance(value, Iterable):
        return [_one(v) for v in value]
    raise InputError(f"--{key.replace('_', '-')}: cannot use a {type(value).__name__}")


def _one(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return str(v)


def _call(path: Sequence[str], kwargs: dict, progress: Any = None) -> Result:
    args = [(k, _norm(k, v)) for k, v in kwargs.items() if v is not None]
    argv = _native.argv(list(path), args)
    out = _native.run(argv, _progress_factory(progress))
    result = Result._from_native(out)
    if result.notices:
        import warnings

        for n in result.notices:
            warnings.warn(n, stacklevel=3)
    return result


def _make(path: Sequence[str], positional: Sequence[str] = ()):
    name = "_".join(p.replace("-", "_") for p in path)

    def command(*args, progress: Any = None, **kwargs) -> Result:
        if len(args) > len(positional):
            raise TypeError(f"{name}() takes {len(positional)} positional argument(s)")
        for k, v in zip(positional, args):
            kwargs[k] = v
        return _call(path, kwargs, progress)

    command.__name__ = command.__qualname__ = name
    command.__doc__ = _docstring(path)
    return command


def _docstring(path: Sequence[str]) -> str:
    about, rows = _native.describe(list(path))
    lines = [f"{about}", "", f"Runs ``kvfleet {' '.join(path)}``; returns a :class:`Result`.", "",
             "Keyword arguments (the CLI's flags):", ""]
    for ident, flag, kind, default, help_, choices, positional in rows:
        what = help_.split("\n")[0] if help_ else ""
        extra = []
        if default is not None:
            extra.append(f"default {default}")
        if choices:
            extra.append("one of " + ", ".join(choices))
        tail = f" ({'; '.join(extra)})" if extra else ""
        lines.append(f"    {ident} [{flag or 'positional'}]: {what}{tail}")
    lines += ["", "    progress: True for tqdm bars, or a factory f(total=, desc=)."]
    return "\n".join(lines)


simulate = _make(["simulate"])
compare_routers = _make(["compare-routers"])
optimize = _make(["optimize"])
whatif = _make(["whatif"])
pareto = _make(["pareto"])
grid_flex = _make(["grid-flex"])
disagg = _make(["disagg"])
tok_per_watt = _make(["tok-per-watt"])
simulate_fleet = _make(["simulate-fleet"])
run = _make(["run"], positional=["scenario"])
sizing_calc = _make(["sizing-calc"])
analytic = _make(["analytic"])
profile = _make(["profile"])
profile_step = _make(["profile", "step"])
profile_validate = _make(["profile", "validate"])
calibrate = _make(["calibrate"], positional=["measurements"])
benchmark = _make(["benchmark"])
cluster = _make(["cluster"])
merge = _make(["merge"], positional=["shards"])
rack_plan = _make(["rack-plan"], positional=["scenario"])

_COMMANDS = {
    "simulate": simulate,
    "compare_routers": compare_routers,
    "optimize": optimize,
    "whatif": whatif,
    "pareto": pareto,
    "grid_flex": grid_flex,
    "disagg": disagg,
    "tok_per_watt": tok_per_watt,
    "simulate_fleet": simulate_fleet,
    "run": run,
    "sizing_calc": sizing_calc,
    "analytic": analytic,
    "profile": profile,
    "profile_step": profile_step,
    "profile_validate": profile_validate,
    "calibrate": calibrate,
    "benchmark": benchmark,
    "cluster": cluster,
    "merge": merge,
    "rack_plan": rack_plan,
}


def _run_one(kind: str, config: dict) -> Result:
    return _COMMANDS[kind](**config)


def sweep(kind: str, configs: Iterable[Mapping[str, Any]], backend: str = "local",
          max_workers: Optional[int] = None) -> list:
    """Run one command over many configurations; results in input order.

    ``kind`` is a function name (``"simulate"``, ``"optimize"``, ...);
    each config is its keyword arguments. ``backend="local"`` runs them in
    this process (``max_workers`` threads; the runs release the GIL and use
    every core); ``backend="ray"`` submits one Ray task per config to the
    cluster ``ray.init()`` connected to (a local one if none). Same
    arguments and seeds give the same results on either backend.
    """
    if kind not in _COMMANDS:
        raise InputError(f"sweep: unknown kind `{kind}`; expected one of {', '.join(sorted(_COMMANDS))}")
    configs = [dict(c) for c in configs]
    for c in configs:
        if "progress" in c:
            raise InputError("sweep: progress is not available per config")
    if backend == "local":
        if max_workers is None or max_workers <= 1:
            return [_run_one(kind, c) for c in configs]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            return list(pool.map(lambda c: _run_one(kind, c), configs))
    if backend == "ray":
        try:
            import ray  # type: ignore
        except ImportError:
            raise InputError("sweep: backend='ray' needs the ray package (pip install ray)") from None

        if not ray.is_initialized():
            ray.init()
        task = ray.remote(_run_one)
        return ray.get([task.remote(kind, c) for c in configs])
    raise InputError(f"sweep: unknown backend `{backend}`; expected local or ray")
