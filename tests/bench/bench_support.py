"""Loading a benchmark script of bench/ as a module, as the tests do."""

import contextlib
import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


@contextlib.contextmanager
def bench_module(stem: str):
    """bench/<stem>.py loaded as the module ``bench_<stem>``, with bench/ on
    the path (scripts import each other, as they do when run) and the module
    registered (dataclasses look their module up); both undone on exit."""
    name = f"bench_{stem}"
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop(name, None)
