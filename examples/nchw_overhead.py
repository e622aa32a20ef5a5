"""What layout="NCHW" costs: conv2d and conv2d_backward on the benchmark shapes, NCHW vs NHWC.

Under NCHW the inputs are transposed to NHWC once and the results back
(cyconv._layout); the kernels are the same. This times, alternating in one
process (so that a busy machine slows all variants alike) and taking medians:

- ``NHWC``: the call on NHWC arrays;
- ``NCHW``: the same call with ``layout="NCHW"`` on the transposed arrays;
- ``NCHW-numpy``: the same, with the transposes done by NumPy's
  ``np.ascontiguousarray(x.transpose(...))`` instead of cyconv's compiled one.

The benchmark measures the first two as its N4 and N6 rows
(``python -m cyconv.bench --shapes nchw``: NCHW ms / NHWC ms in the ``vs base``
column); this script adds the NumPy-transpose variant, an A/B of the transpose.

Usage::

    python examples/nchw_overhead.py [--shapes S4,S6] [--dtypes float32,float64]
                                     [--threads 1,2] [--reps 15]
"""
import argparse
import time

import numpy as np

import cyconv
from cyconv import _layout
from cyconv.bench import SHAPES


def _numpy_transpose_into(src, perm, out, num_threads):
    np.copyto(out, src.transpose(perm), casting="unsafe")


def _time(variants, reps):
    compiled = _layout._transpose_into
    times = {name: [] for name in variants}
    try:
        for f, _ in variants.values():   # warm-up: plans, pages, thread team
            f()
        for _ in range(reps):
            for name, (f, numpy_transposes) in variants.items():
                _layout._transpose_into = _numpy_transpose_into if numpy_transposes else compiled
                t0 = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t0)
    finally:
        _layout._transpose_into = compiled
    return {name: float(np.median(t)) * 1e3 for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="S4,S6")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args(argv)
    print(f"cyconv {cyconv.__version__}, CPU level {cyconv.cpu_level()}, "
          f"medians of {args.reps} alternating calls (ms)")
    for name in args.shapes.split(","):
        s = SHAPES[name]
        for dtype in map(np.dtype, args.dtypes.split(",")):
            rng = np.random.default_rng(0)
            x = rng.standard_normal(s["x"]).astype(dtype)
            w = rng.standard_normal(s["w"]).astype(dtype)
            kw = dict(stride=s["stride"], padding=s["padding"])
            dz = rng.standard_normal(cyconv.conv2d(x, w, **kw).shape).astype(dtype)
            x_n = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            w_n = np.ascontiguousarray(w.transpose(3, 2, 0, 1))
            dz_n = np.ascontiguousarray(dz.transpose(0, 3, 1, 2))
            for nt in map(int, args.threads.split(",")):
                ops = {
                    "fwd": (lambda: cyconv.conv2d(x, w, num_threads=nt, **kw),
                            lambda: cyconv.conv2d(x_n, w_n, num_threads=nt, layout="NCHW",
                                                  **kw)),
                    "dx+dw": (lambda: cyconv.conv2d_backward(dz, x, w, num_threads=nt, **kw),
                              lambda: cyconv.conv2d_backward(dz_n, x_n, w_n, num_threads=nt,
                                                             layout="NCHW", **kw)),
                }
                for op, (nhwc, nchw) in ops.items():
                    t = _time({"NHWC": (nhwc, False), "NCHW": (nchw, False),
                               "NCHW-numpy": (nchw, True)}, args.reps)
                    print(f"{name} {dtype.name:7} {nt} thread(s) {op:6} NHWC {t['NHWC']:8.2f}  "
                          f"NCHW {t['NCHW']:8.2f} ({t['NCHW'] / t['NHWC']:.2f}x)  "
                          f"NCHW-numpy {t['NCHW-numpy']:8.2f} "
                          f"({t['NCHW-numpy'] / t['NHWC']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
