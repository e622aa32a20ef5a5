"""asv suites for cyconv: ``benchmark_conv.py``, ``benchmark_pool.py`` and ``benchmark_train.py``.

The shape table is ``SHAPES`` of ``cyconv/bench.py`` *in this working tree*,
loaded by path rather than imported from the installed package: asv runs these
suites (from the checkout) against every commit's build, commits older than
``cyconv.bench`` do not have it, and the history is only comparable if every
commit is timed on the same table. ``cyconv/bench.py`` imports only the
standard library and NumPy at import time, so loading it is safe against any
build. Outside a checkout the installed ``cyconv.bench`` is used. The
training-step models of ``cyconv/bench_train.py`` are loaded the same way (they
use only ``cyconv.layers``' public classes, present in every build asv times).
"""
import importlib.util
import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load(module):
    # cyconv/<module>.py of this working tree, else the installed one.
    name, path = f"_cyconv_{module}_for_asv", _ROOT / "cyconv" / f"{module}.py"
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():  # pragma: no cover - suites copied away from the checkout
        return importlib.import_module(f"cyconv.{module}")
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


bench = _load("bench")
bench_train = _load("bench_train")

SHAPES = bench.SHAPES
CONV_SHAPES = [name for name, case in SHAPES.items() if case["kind"] == "conv"]
POOL_SHAPES = [name for name, case in SHAPES.items() if case["kind"] == "pool"]
DTYPES = list(bench.DTYPES)
# 1 and every usable core (just [1] on a one-core machine). The value is fixed
# at import, so results from one machine always have the same parameters.
THREADS = sorted({1, int(bench.all_cores())})
