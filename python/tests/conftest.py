import os
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def kvfleet_bin():
    """The CLI built from this checkout (KVFLEET_BIN, target/release, or PATH)."""
    env = os.environ.get("KVFLEET_BIN")
    if env:
        return env
    built = REPO / "target" / "release" / "kvfleet"
    if built.exists():
        return str(built)
    return shutil.which("kvfleet")


@pytest.fixture
def cli():
    path = kvfleet_bin()
    if not path:
        pytest.skip("SKIPPED: no kvfleet binary (build with `cargo build --release` or set KVFLEET_BIN)")
    return path
