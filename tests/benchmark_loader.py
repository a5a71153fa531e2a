"""Loading a script of benchmarks/ as a module for the tests of that script."""

import contextlib
import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@contextlib.contextmanager
def benchmark_module(filename, name):
    """The module of the script ``filename`` in benchmarks/ (as ``name``), with that folder
    on sys.path for the script's own imports (``_data``) while it is in use."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / filename)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(BENCH))
