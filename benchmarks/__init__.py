"""asv suites for cyconv: ``benchmark_conv.py`` and ``benchmark_pool.py``.

The shape table is ``SHAPES`` of ``cyconv/bench.py`` *in this working tree*,
loaded by path rather than imported from the installed package: asv runs these
suites (from the checkout) against every commit's build, commits older than
``cyconv.bench`` do not have it, and the history is only comparable if every
commit is timed on the same table. ``cyconv/bench.py`` imports only the
standard library and NumPy at import time, so loading it is safe against any
build. Outside a checkout the installed ``cyconv.bench`` is used.
"""
import importlib.util
import pathlib
import sys

_NAME = "_cyconv_bench_for_asv"
_PATH = pathlib.Path(__file__).resolve().parent.parent / "cyconv" / "bench.py"

if _NAME in sys.modules:
    bench = sys.modules[_NAME]
elif _PATH.is_file():
    _spec = importlib.util.spec_from_file_location(_NAME, _PATH)
    bench = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = bench
    _spec.loader.exec_module(bench)
else:  # pragma: no cover - suites copied away from the checkout
    from cyconv import bench

SHAPES = bench.SHAPES
CONV_SHAPES = [name for name, case in SHAPES.items() if case["kind"] == "conv"]
POOL_SHAPES = [name for name, case in SHAPES.items() if case["kind"] == "pool"]
DTYPES = list(bench.DTYPES)
# 1 and every usable core (just [1] on a one-core machine). The value is fixed
# at import, so results from one machine always have the same parameters.
THREADS = sorted({1, int(bench.all_cores())})
