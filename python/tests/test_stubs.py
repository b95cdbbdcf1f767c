"""The committed type stub is the one the CLI's flags generate."""

import importlib.util
import pathlib

from kvfleet import _native

HERE = pathlib.Path(__file__).resolve().parent.parent


def test_stub_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_stubs", HERE / "tools" / "gen_stubs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)

    committed = (HERE / "kvfleet" / "__init__.pyi").read_text()
    assert committed == gen.stub(_native), "stale stub: run `python python/tools/gen_stubs.py`"
