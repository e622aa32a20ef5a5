"""Time cyconv against PyTorch (CPU) and ``cyconv.reference``: ``python -m cyconv.bench``.

Every speed claim of the project comes from this program. For each case
(shape, operation, dtype, thread count) it builds the inputs once, warms every
implementation up, checks that they agree, then times them *interleaved* in
one process (cyconv, torch, torch, cyconv, ... in batches of calls) and reports
medians, so a noisy machine slows both sides alike. The table has the medians
in ms, their ratio (``speed-up = torch ms / cyconv ms``, above 1 means cyconv is
faster), the convolutions' GFLOP/s and their fraction of the machine's GEMM
rate (NumPy matmul), the practical ceiling for a convolution.

Peers
-----
* PyTorch CPU, if installed (``pip install "cyconv[bench]"``): NCHW-shaped
  tensors in ``channels_last`` memory built from the NHWC arrays without a
  copy, filters converted to torch's layout once outside the timing, and
  ``torch.set_num_threads`` equal to cyconv's ``num_threads``.
* ONNX Runtime's CPU provider, with ``--peers torch,onnxruntime``, for the
  float32 forward convolutions (:mod:`cyconv._bench_peers`).
* ``cyconv.reference`` (plain NumPy loops) on the small shapes only, for the
  operations it has as separate functions (forward, and pools' forward+backward).

Ceilings
--------
Convolutions: NumPy matmul's GFLOP/s (``% GEMM``). Pools: the bytes the op
must move per second, as a fraction of ``np.copyto``'s bandwidth at the size
of ``x`` and the row's threads, measured in the same run (``% copy``,
:mod:`cyconv._bench_roofline`).

CPU levels
----------
``--level x86-64-v3`` (or ``baseline``, ``x86-64-v4``, ``all``) runs the table in
a subprocess per level with cyconv forced to it and PyTorch and OpenBLAS
limited to the same instruction set, and prints what each library reports
(:mod:`cyconv._bench_levels`).

Operations
----------
Convolutions: ``fwd`` (``conv2d`` with bias), ``dx`` and ``dw`` (dw and db)
of ``conv2d_backward``, each timed alone: cyconv's halves run the same kernels
``conv2d_backward`` runs (tests check they give its exact results), torch's
``aten.convolution_backward`` gets the matching ``output_mask``. Pools:
``max_fwd``, ``max_fb`` (forward then backward), ``avg_fwd``, ``avg_fb``;
torch's backward goes through autograd. cyconv's ``max_fb`` keeps the argmax
as torch does (``max_pool2d(..., return_indices=True)``, then
``max_pool2d_backward(..., indices=...)``, as :class:`cyconv.layers.MaxPool2D`
trains); the backward from ``x`` alone is timed by the asv suite
``benchmark_pool.MaxPool2d.time_backward``.

Feature rows
------------
The rows of issue 16 (:mod:`cyconv._bench_features`): D4 (S4 at dilation 2),
G1-G3 (depthwise 3x3; ops ``fwd`` with GB/s and % copy, and ``fb``), T1
(``conv_transpose2d`` 4x4 stride 2) and N4, N6 (S4, S6 with
``layout="NCHW"``). D4 and N* are timed interleaved with their base row (S4,
S6) and report ``vs base`` = their ms / the base's. They form the group
``--shapes features`` (``standard`` is the S and P rows). The default run has
both; a ``--level`` run only the standard rows unless ``--shapes`` asks (each
level would repeat them). Measured at 11:25-11:40 UTC on 2026-11-30 on the
shared, loaded 2-core machine, 1 thread, both dtypes: the standard rows took
110 s, the feature rows 220 s (torch's float64 depthwise calls alone take up
to 0.9 s each), so the default run (1 and all threads) grows from about 4 to
about 11 minutes.

The shape table :data:`SHAPES` is shared with the asv suites in ``benchmarks/``
(which take its ``conv`` and ``pool`` rows).
This module imports only the standard library and NumPy at import time (the
asv suites load it by path against older builds of the package).
``python -m cyconv.bench --train`` runs the training-step benchmark of
:mod:`cyconv.bench_train` instead.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

__all__ = ["SHAPES", "OPS", "conv_flops", "make_inputs", "run", "main"]

def _conv(x, w, stride, padding, reference=False):
    return dict(kind="conv", x=x, w=w, stride=stride, padding=padding, reference=reference)


def _pool(x, pool_size, stride, padding=0, reference=False):
    return dict(kind="pool", x=x, pool_size=pool_size, stride=stride, padding=padding,
                reference=reference)


def _feature(kind, x, w, stride, padding, *, dilation=1, groups=1, layout="NHWC", base=None):
    # A feature row (cyconv._bench_features): x NHWC, w in cyconv's NHWC filter order.
    return dict(kind=kind, x=x, w=w, stride=stride, padding=padding, dilation=dilation,
                groups=groups, layout=layout, base=base, reference=False)


#: The standard shape table: NHWC ``x``, HWIO ``w`` (or the pool window),
#: stride, padding, and whether the shape is small enough for the reference.
SHAPES = {
    "S1": _conv((10, 5, 7, 4), (3, 3, 4, 8), 2, 1, reference=True),
    "S2": _conv((64, 64, 64, 3), (5, 5, 3, 8), 1, 2),
    "S3": _conv((64, 14, 14, 6), (5, 5, 6, 16), 1, 0, reference=True),
    "S4": _conv((8, 56, 56, 64), (3, 3, 64, 64), 1, 1),
    "S5": _conv((8, 224, 224, 3), (7, 7, 3, 64), 2, 3),
    "S6": _conv((8, 14, 14, 256), (3, 3, 256, 256), 1, 1),
    "S7": _conv((8, 28, 28, 128), (1, 1, 128, 256), 1, 0),
    "P1": _pool((8, 56, 56, 64), 2, 2, reference=True),
    "P2": _pool((8, 112, 112, 64), 3, 2),
    "P3": _pool((64, 64, 64, 8), 8, 8, reference=True),
    # The feature rows of issue 16 (cyconv._bench_features): dilated, depthwise,
    # transposed, NCHW. "base" rows are timed interleaved with the row.
    "D4": _feature("dilated", (8, 56, 56, 64), (3, 3, 64, 64), 1, 2, dilation=2, base="S4"),
    "G1": _feature("depthwise", (8, 112, 112, 32), (3, 3, 1, 32), 1, 1, groups=32),
    "G2": _feature("depthwise", (8, 112, 112, 32), (3, 3, 1, 32), 2, 1, groups=32),
    "G3": _feature("depthwise", (8, 14, 14, 512), (3, 3, 1, 512), 1, 1, groups=512),
    "T1": _feature("transposed", (8, 28, 28, 128), (4, 4, 64, 128), 2, 1),
    "N4": _feature("nchw", (8, 56, 56, 64), (3, 3, 64, 64), 1, 1, layout="NCHW", base="S4"),
    "N6": _feature("nchw", (8, 14, 14, 256), (3, 3, 256, 256), 1, 1, layout="NCHW", base="S6"),
}

#: Named groups of shapes for ``--shapes``: the standard table (the default of
#: ``--level`` runs) and the feature rows (in the default single-level run).
SHAPE_GROUPS = {
    "standard": tuple(n for n, c in SHAPES.items() if c["kind"] in ("conv", "pool")),
    "features": tuple(n for n, c in SHAPES.items() if c["kind"] not in ("conv", "pool")),
}

#: Operations per kind of shape.
OPS = {"conv": ("fwd", "dx", "dw"), "pool": ("max_fwd", "max_fb", "avg_fwd", "avg_fb"),
       "dilated": ("fwd", "dx", "dw"), "depthwise": ("fwd", "fb"),
       "transposed": ("fwd", "dx", "dw"), "nchw": ("fwd", "dx", "dw")}
_ALL_OPS = tuple(dict.fromkeys(op for ops in OPS.values() for op in ops))
_OP_ALIASES = {"conv": OPS["conv"], "pool": OPS["pool"],
               "max": ("max_fwd", "max_fb"), "avg": ("avg_fwd", "avg_fb")}
DTYPES = ("float32", "float64")

# (target seconds per measurement, min rounds, max rounds, seconds per batch,
#  max reference rounds, GEMM size, GEMM repeats)
_SETTINGS = {
    "full": dict(target=0.5, min_rounds=5, max_rounds=200, batch=0.01, ref_rounds=3,
                 gemm_n=1024, gemm_repeats=10),
    "quick": dict(target=0.03, min_rounds=3, max_rounds=20, batch=0.002, ref_rounds=1,
                  gemm_n=512, gemm_repeats=3),
}
# Normalised max difference (max |a - b| / max |b|) beyond which two
# implementations are reported as disagreeing.
_AGREE = {"float32": 1e-4, "float64": 1e-10}


# --------------------------------------------------------------------------
# Shapes, FLOPs, inputs
# --------------------------------------------------------------------------

def conv_output_hw(name):
    """Output ``(o_h, o_w)`` of the conv or pool case ``name``."""
    case = SHAPES[name]
    if case["kind"] not in ("conv", "pool"):
        from cyconv._bench_features import output_hw
        return output_hw(case)
    _, n_h, n_w, _ = case["x"]
    f_h, f_w = case["w"][:2] if case["kind"] == "conv" else (case["pool_size"],) * 2
    s, p = case["stride"], case["padding"]
    return (n_h + 2 * p - f_h) // s + 1, (n_w + 2 * p - f_w) // s + 1


def conv_flops(name):
    """FLOPs of one forward of conv case ``name``: ``2 m o_h o_w C_out f_h f_w C_in``.

    ``dx`` and ``dw`` each take the same count (``db`` is negligible). Feature
    rows: :func:`cyconv._bench_features.flops` (grouped and transposed counts).

    Examples
    --------
    >>> from cyconv.bench import SHAPES, conv_flops
    >>> SHAPES["S3"]["x"], SHAPES["S3"]["w"]
    ((64, 14, 14, 6), (5, 5, 6, 16))
    >>> conv_flops("S3")  # 2 * 64 * 10 * 10 * 16 * 5 * 5 * 6
    30720000
    """
    case = SHAPES[name]
    if case["kind"] not in ("conv", "pool"):
        from cyconv._bench_features import flops
        return flops(case)
    m, c_in = case["x"][0], case["x"][3]
    f_h, f_w, _, c_out = case["w"]
    o_h, o_w = conv_output_hw(name)
    return 2 * m * o_h * o_w * c_out * f_h * f_w * c_in


def make_inputs(name, dtype, seed=0):
    """C-contiguous random inputs for case ``name``, built once per case.

    Returns a dict: conv ``x, w, b, dz``; pool ``x, dp`` (``dz``/``dp`` have
    the forward output's shape).

    Examples
    --------
    >>> from cyconv.bench import make_inputs
    >>> data = make_inputs("S1", "float32")
    >>> {name: a.shape for name, a in data.items()}
    {'x': (10, 5, 7, 4), 'w': (3, 3, 4, 8), 'b': (8,), 'dz': (10, 3, 4, 8)}
    """
    case = SHAPES[name]
    if case["kind"] not in ("conv", "pool"):
        from cyconv._bench_features import make_inputs as feature_inputs
        return feature_inputs(case, dtype, seed)
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    m, _, _, c = case["x"]
    o_h, o_w = conv_output_hw(name)
    x = rng.standard_normal(case["x"], dtype=dtype)
    if case["kind"] == "conv":
        c_out = case["w"][3]
        return dict(x=x, w=rng.standard_normal(case["w"], dtype=dtype),
                    b=rng.standard_normal(c_out, dtype=dtype),
                    dz=rng.standard_normal((m, o_h, o_w, c_out), dtype=dtype))
    return dict(x=x, dp=rng.standard_normal((m, o_h, o_w, c), dtype=dtype))


def all_cores():
    """Threads cyconv uses by default (every usable core)."""
    try:
        from cyconv._args import effective_num_threads
        return effective_num_threads()
    except ImportError:  # pragma: no cover - a build without the helper
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --------------------------------------------------------------------------
# The three implementations of every operation
# --------------------------------------------------------------------------

def conv2d_backward_part(part, dz, x, w, *, stride, padding, num_threads):
    """``dx`` alone (part ``"dx"``) or ``(dw, db)`` alone (part ``"dw"``)."""
    import cyconv

    if part == "dx":
        return cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding,
                                      num_threads=num_threads, grads=("dx",))[0]
    return cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding,
                                  num_threads=num_threads, grads=("dw", "db"))[1:]


def cyconv_op(name, op, data, threads):
    """Zero-argument callable running ``op`` of case ``name`` with cyconv."""
    import cyconv

    case = SHAPES[name]
    if case["kind"] not in ("conv", "pool"):
        from cyconv._bench_features import cyconv_op as feature_op
        return feature_op(case, op, data, threads)
    s, p, n = case["stride"], case["padding"], threads
    x = data["x"]
    if op == "fwd":
        w, b = data["w"], data["b"]
        return lambda: cyconv.conv2d(x, w, b, stride=s, padding=p, num_threads=n)
    if op in ("dx", "dw"):
        dz, w = data["dz"], data["w"]
        return lambda: conv2d_backward_part(op, dz, x, w, stride=s, padding=p, num_threads=n)
    k, dp = case["pool_size"], data["dp"]
    if op == "max_fwd":
        return lambda: cyconv.max_pool2d(x, k, stride=s, padding=p, num_threads=n)
    if op == "avg_fwd":
        return lambda: cyconv.avg_pool2d(x, k, stride=s, padding=p, num_threads=n)
    if op == "max_fb":
        def max_fb():
            # as torch's autograd and cyconv.layers.MaxPool2D do: the forward
            # keeps the argmax, the backward routes by it
            _, indices = cyconv.max_pool2d(x, k, stride=s, padding=p, num_threads=n,
                                           return_indices=True)
            return cyconv.max_pool2d_backward(dp, x, k, stride=s, padding=p, num_threads=n,
                                              indices=indices)
        return max_fb
    if op == "avg_fb":
        def avg_fb():
            cyconv.avg_pool2d(x, k, stride=s, padding=p, num_threads=n)
            return cyconv.avg_pool2d_backward(dp, x.shape, k, stride=s, padding=p, num_threads=n)
        return avg_fb
    raise ValueError(f"unknown op {op!r}")


def reference_op(name, op, data):
    """Callable running ``op`` with ``cyconv.reference``, or None where not measured.

    Only shapes marked ``reference`` and operations the reference has on their
    own: it computes dx, dw and db in one call, so ``dx``/``dw`` are skipped.
    """
    if not SHAPES[name]["reference"] or op in ("dx", "dw"):
        return None
    from cyconv import reference

    case = SHAPES[name]
    s, p, x = case["stride"], case["padding"], data["x"]
    if op == "fwd":
        w, b = data["w"], data["b"]
        return lambda: reference.conv2d(x, w, b, stride=s, padding=p)
    k, dp = case["pool_size"], data["dp"]
    pool = {"max": reference.max_pool2d, "avg": reference.avg_pool2d}[op[:3]]
    if op.endswith("_fwd"):
        return lambda: pool(x, k, stride=s, padding=p)
    if op == "max_fb":
        def max_fb():
            reference.max_pool2d(x, k, stride=s, padding=p)
            return reference.max_pool2d_backward(dp, x, k, stride=s, padding=p)
        return max_fb

    def avg_fb():
        reference.avg_pool2d(x, k, stride=s, padding=p)
        return reference.avg_pool2d_backward(dp, x.shape, k, stride=s, padding=p)
    return avg_fb


def import_torch():
    """The torch module, or None if it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_op(torch, name, op, data):
    """``(fn, to_cyconv)``: torch callable for ``op`` and a converter of its result.

    Activations are ``torch.from_numpy(nhwc).permute(0, 3, 1, 2)``: NCHW shape
    in channels_last memory, the same buffer (no copy). Filters are converted
    to OIHW channels_last once, here, outside the timing.
    """
    F = torch.nn.functional
    case = SHAPES[name]
    if case["kind"] not in ("conv", "pool"):
        from cyconv._bench_features import torch_op as feature_op
        return feature_op(torch, case, op, data)
    s, p = case["stride"], case["padding"]

    def nchw(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2)

    def nhwc(t):
        return t.detach().permute(0, 2, 3, 1).numpy()

    xt = nchw(data["x"])
    if case["kind"] == "conv":
        wt = torch.from_numpy(data["w"]).permute(3, 2, 0, 1).contiguous(
            memory_format=torch.channels_last)
        c_out = data["w"].shape[3]
        if op == "fwd":
            bt = torch.from_numpy(data["b"])
            return (lambda: F.conv2d(xt, wt, bt, stride=s, padding=p)), nhwc
        dzt = nchw(data["dz"])
        mask = [True, False, False] if op == "dx" else [False, True, True]
        backward = torch.ops.aten.convolution_backward

        def fn():
            return backward(dzt, xt, wt, [c_out], [s, s], [p, p], [1, 1], False, [0, 0], 1, mask)
        if op == "dx":
            return fn, lambda r: nhwc(r[0])
        return fn, lambda r: (r[1].detach().permute(2, 3, 1, 0).numpy(), r[2].numpy())

    k = case["pool_size"]
    pool = {"max": F.max_pool2d, "avg": F.avg_pool2d}[op[:3]]
    kw = dict(count_include_pad=True) if op.startswith("avg") else {}
    if op.endswith("_fwd"):
        return (lambda: pool(xt, k, stride=s, padding=p, **kw)), nhwc
    xg = xt.detach().requires_grad_(True)
    dpt = nchw(data["dp"])

    def fb():
        with torch.enable_grad():
            y = pool(xg, k, stride=s, padding=p, **kw)
            return torch.autograd.grad(y, xg, dpt)[0]
    return fb, nhwc


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def _rel_diff(a, b):
    """max |a - b| / max |b| over one array or a tuple of arrays."""
    if isinstance(b, tuple):
        return max(_rel_diff(u, v) for u, v in zip(a, b))
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return float(np.max(np.abs(a - b))) / (scale or 1.0)


def median_seconds(fn, repeats):
    """Median wall time of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def interleave(fns, *, target, min_rounds, max_rounds, batch, capped=None):
    """Time callables interleaved; return ``{name: [seconds per call, ...]}``.

    Each is called twice first (warm-up, then a calibration call that sets its
    batch size: enough calls to last ``batch`` seconds, so per-call overheads
    and another library's idle OpenMP threads are amortised). Then every round
    times one batch of each, alternating the order between rounds, until the
    uncapped ones have used ``target`` seconds (at least ``min_rounds`` and at
    most ``max_rounds`` rounds). ``capped`` maps names to a round limit (the
    slow reference).
    """
    capped = capped or {}
    est = {}
    for key, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        est[key] = max(time.perf_counter() - t0, 1e-7)
    inner = {key: max(1, int(batch / t)) for key, t in est.items()}
    per_round = sum(inner[k] * est[k] for k in fns if k not in capped) or 1e-3
    rounds = min(max_rounds, max(min_rounds, math.ceil(target / per_round)))
    samples = {key: [] for key in fns}
    order = list(fns)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for key in (order if r % 2 == 0 else order[::-1]):
                if len(samples[key]) >= capped.get(key, rounds):
                    continue
                fn, n = fns[key], inner[key]
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                samples[key].append((time.perf_counter() - t0) / n)
    finally:
        if enabled:
            gc.enable()
    return samples


def gemm_rate(dtype, threads, n=1024, repeats=10):
    """NumPy ``n x n`` matmul GFLOP/s (``2 n^3 / median time``) with ``threads`` BLAS threads.

    Returns a dict; ``limited`` is False when threadpoolctl is missing and
    the BLAS ran with its default thread count.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.dtype(dtype))
    b = rng.standard_normal((n, n), dtype=np.dtype(dtype))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        t, limited = median_seconds(lambda: a @ b, repeats), False
    else:
        with threadpool_limits(limits=threads, user_api="blas"):
            t, limited = median_seconds(lambda: a @ b, repeats), True
    return dict(dtype=str(np.dtype(dtype)), threads=threads, n=n, ms=t * 1e3,
                gflops=2 * n ** 3 / t / 1e9, limited=limited)


# --------------------------------------------------------------------------
# Running the table
# --------------------------------------------------------------------------

def select_cases(shapes=None, ops=None):
    """``[(shape, op), ...]`` in table order for the given filters (None: all)."""
    shapes = list(SHAPES) if shapes is None else shapes
    return [(name, op) for name in SHAPES if name in shapes
            for op in OPS[SHAPES[name]["kind"]] if ops is None or op in ops]


def run(cases, dtypes=DTYPES, threads=(1,), *, quick=False, target=None, torch=None,
        reference=True, progress=None, ort=None):
    """Measure every ``(shape, op)`` in ``cases`` for each dtype and thread count.

    Returns a list of result dicts (times in ms; ``torch_ms`` / ``reference_ms``
    / ``onnxruntime_ms`` None when not measured). ``torch`` is the torch module
    or None; ``ort`` the ``(onnxruntime, onnx)`` modules or None. Pool rows
    carry their roofline: ``bytes_moved``, ``gbps`` and the copy bandwidth
    measured just before the shape's rows (``copy_gbps``, ``copy_fraction``).

    Examples
    --------
    A quick in-process run of one case without PyTorch (``torch=None``): cyconv
    against :mod:`cyconv.reference`.

    >>> from cyconv import bench
    >>> [row] = bench.run([("S1", "fwd")], dtypes=("float32",), quick=True)
    >>> row["shape"], row["op"], row["agree"], row["torch_ms"]
    ('S1', 'fwd', True, None)
    >>> row["cyconv_ms"] < row["reference_ms"]
    True
    """
    from cyconv._bench_roofline import copy_rate

    settings = dict(_SETTINGS["quick" if quick else "full"])
    if target is not None:
        settings["target"] = target
    torch_threads = torch.get_num_threads() if torch is not None else None

    def timer(fns):
        return _interleave(fns, settings, {})
    results = []
    try:
        for name in dict.fromkeys(n for n, _ in cases):
            for dtype in dtypes:
                data = make_inputs(name, dtype)
                base = SHAPES[name].get("base")
                base_data = make_inputs(base, dtype) if base else None
                copy = {}  # the roofline of pools and depthwise rows, measured beside them
                if SHAPES[name]["kind"] in ("pool", "depthwise"):
                    copy = {t: copy_rate(data["x"].nbytes, t, timer) for t in threads}
                for op in [o for n, o in cases if n == name]:
                    for n_threads in threads:
                        results.append(_run_case(name, op, dtype, n_threads, data, settings,
                                                 torch, reference, ort, copy.get(n_threads),
                                                 base_data))
                        if progress:
                            progress(results[-1])
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads)
    return results


def _run_case(name, op, dtype, n_threads, data, settings, torch, reference, ort=None,
              copy=None, base_data=None):
    import cyconv
    from cyconv._bench_roofline import roofline

    fns, convert, capped = {"cyconv": cyconv_op(name, op, data, n_threads)}, {}, {}
    base = SHAPES[name].get("base")
    if base:  # the row it is compared with (undilated, NHWC), interleaved with it
        fns["base"] = cyconv_op(base, op, base_data, n_threads)
    if torch is not None:
        torch.set_num_threads(n_threads)
        fns["torch"], convert["torch"] = torch_op(torch, name, op, data)
    if ort is not None:
        from cyconv._bench_peers import ort_op
        peer = ort_op(ort, SHAPES[name], op, data, n_threads)
        if peer is not None:
            fns["onnxruntime"], convert["onnxruntime"] = peer
    ref = reference_op(name, op, data) if reference else None
    if ref is not None:
        fns["reference"], capped["reference"] = ref, settings["ref_rounds"]
    watch = OtherCPU()
    # One call each, before timing, to check the peers compute the same thing.
    mine = fns["cyconv"]()
    diff = {}
    for peer in ("torch", "onnxruntime", "reference"):
        if peer in fns:
            other = fns[peer]()
            diff[peer] = _rel_diff(mine, convert.get(peer, lambda r: r)(other))
    forward_only = torch is not None and not (op == "fb" or op.endswith("_fb"))
    with torch.no_grad() if forward_only else contextlib.nullcontext():
        samples = _interleave(fns, settings, capped)
    res = dict(shape=name, op=op, dtype=dtype, threads=n_threads, level=cyconv.cpu_level(),
               other_cpu=watch.cores())
    for peer in ("cyconv", "torch", "onnxruntime", "reference"):
        ts = samples.get(peer)
        res[f"{peer}_ms"] = float(np.median(ts)) * 1e3 if ts else None
        res[f"{peer}_samples_ms"] = [t * 1e3 for t in ts] if ts else []
    res["rounds"] = len(samples["cyconv"])
    if base:
        ts = samples["base"]
        res["base"], res["base_ms"] = base, float(np.median(ts)) * 1e3
        res["base_samples_ms"] = [t * 1e3 for t in ts]
        # dilated ms / undilated ms, or NCHW ms / NHWC ms: above 1 is the feature's cost
        res["ratio_vs_base"] = _ratio(res["cyconv_ms"], res["base_ms"])
    res["speedup_vs_torch"] = _ratio(res["torch_ms"], res["cyconv_ms"])
    res["speedup_vs_reference"] = _ratio(res["reference_ms"], res["cyconv_ms"])
    res["speedup_vs_onnxruntime"] = _ratio(res["onnxruntime_ms"], res["cyconv_ms"])
    if SHAPES[name]["kind"] == "pool":
        res.update(roofline(op, data["x"].shape, data["dp"].shape, data["x"].itemsize,
                            res["cyconv_ms"], copy))
    if SHAPES[name]["kind"] == "depthwise" and op == "fwd":
        from cyconv._bench_features import depthwise_bytes
        moved = depthwise_bytes(SHAPES[name], data["x"].itemsize)
        gbps = moved / res["cyconv_ms"] / 1e6
        res.update(bytes_moved=moved, gbps=gbps, copy_gbps=None, copy_mb=None,
                   copy_fraction=None)
        if copy is not None:
            res.update(copy_gbps=copy["gbps"], copy_mb=copy["mb"],
                       copy_fraction=gbps / copy["gbps"])
    if SHAPES[name]["kind"] != "pool":
        flops = conv_flops(name) * (3 if op == "fb" else 1)  # fb: forward, dx and dw
        res["flops"] = flops
        res["gflops"] = flops / res["cyconv_ms"] / 1e6
        res["torch_gflops"] = flops / res["torch_ms"] / 1e6 if res["torch_ms"] else None
    res["max_rel_diff"] = diff
    res["agree"] = all(d <= _AGREE[dtype] for d in diff.values())
    return res


class OtherCPU:
    """Cores other processes kept busy since creation (Linux ``/proc/stat``; else None).

    A shared machine's other load ruins multi-threaded timings (an OpenMP
    barrier waits for a descheduled thread); the table shows it per case.
    """

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal: busy = all but idle, iowait
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
        mine = os.times()
        return time.perf_counter(), busy, mine.user + mine.system

    def cores(self):
        end = self._sample()
        if self.start is None or end is None or end[0] - self.start[0] < 0.05:
            return None
        wall, busy, mine = (e - s for e, s in zip(end, self.start))
        return round(max(0.0, (busy - mine) / wall), 2)


def _interleave(fns, settings, capped):
    return interleave(fns, target=settings["target"], min_rounds=settings["min_rounds"],
                      max_rounds=settings["max_rounds"], batch=settings["batch"], capped=capped)


def _ratio(num, den):
    return num / den if num and den else None


def machine_info(torch=None):
    """Where and with what the numbers were measured."""
    import cyconv

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = None
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(sorted({f"{i['internal_api']} {i.get('version') or ''}".strip()
                                 for i in threadpool_info() if i["user_api"] == "blas"}))
    except ImportError:
        pass
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cpu=cpu, cpu_count=os.cpu_count(), usable_cores=all_cores(),
        platform=platform.platform(), python=platform.python_version(),
        numpy=np.__version__, blas=blas, cyconv=cyconv.__version__, commit=_git_commit(),
        cpu_level=cyconv.cpu_level(),
        torch=torch.__version__ if torch is not None else None,
        load_average=_load(),
    )


def _load():
    # Other processes' CPU use ruins multi-threaded timings; the report shows it.
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _git_commit():
    # Read-only git queries (no index refresh), only when cyconv runs from a checkout.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", root, "status",
                                "--porcelain", "-uno", "--", "cyconv", "setup.py"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def _ms(v):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def _ratio_text(v):
    return "—" if v is None else f"{v:.0f}" if v >= 100 else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _num(v, fmt):
    return "—" if v is None else format(v, fmt)


def markdown(report, title="# cyconv benchmark"):
    """The report as Markdown: machine, settings checked, ceilings, results table, legend."""
    from cyconv._bench_report import markdown
    return markdown(report, title)


def plot(report, path):
    """Bar chart of speed-up vs torch per shape and op, one panel per dtype x threads (x level)."""
    from cyconv._bench_report import plot
    plot(report, path)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(
        prog="python -m cyconv.bench",
        description="Time cyconv against PyTorch CPU and cyconv.reference (medians of "
                    "interleaved runs in one process) and print a Markdown table.")
    p.add_argument("--shapes", help="comma-separated shape names (default all: "
                   + ",".join(SHAPES) + "; with --level only the standard ones), or groups: "
                   "'standard' (S*, P*), 'features' (the dilated, depthwise, transposed and "
                   "NCHW rows D4, G*, T1, N*), 'conv', 'pool', 'dilated', 'depthwise', "
                   "'transposed', 'nchw'")
    p.add_argument("--ops", help="comma-separated ops (default all: "
                   + ",".join(_ALL_OPS) + "), or 'conv', 'pool', 'max', 'avg'")
    p.add_argument("--dtype", default="float32,float64",
                   help="float32, float64 or both comma-separated (default both)")
    p.add_argument("--threads", default="1,all",
                   help="comma-separated thread counts, 'all' = every usable core (default 1,all)")
    p.add_argument("--quick", action="store_true", help="few short rounds (a smoke run)")
    p.add_argument("--target", type=float,
                   help="seconds of timing per case (default 0.5, quick 0.03)")
    p.add_argument("--peers", help="comma-separated peers: torch, onnxruntime (float32 forward "
                   "only) or none (default: torch if installed)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    p.add_argument("--level", help="run at these CPU levels, each in a subprocess with the peers "
                   "limited to the same instruction set: comma-separated names of "
                   "cyconv.cpu_levels(), or 'all'")
    p.add_argument("--no-reference", action="store_true", help="leave cyconv.reference out")
    p.add_argument("--json", metavar="FILE", help="also write the full results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of speed-up vs torch (matplotlib)")
    p.add_argument("--train", action="store_true",
                   help="time one training step of whole models instead (cyconv.layers vs "
                        "PyTorch; python -m cyconv.bench --train --help for its options)")
    return p


def _split(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def _parse(argv):
    parser = _parser()
    args = parser.parse_args(argv)
    shapes = None
    if args.shapes:
        shapes = []
        for s in _split(args.shapes):
            if s in OPS:
                shapes += [n for n, c in SHAPES.items() if c["kind"] == s]
            elif s in SHAPE_GROUPS:
                shapes += SHAPE_GROUPS[s]
            elif s.upper() in SHAPES:
                shapes.append(s.upper())
            else:
                parser.error(f"--shapes: unknown shape {s!r}; choose from "
                             f"{', '.join(SHAPES)}, {', '.join(SHAPE_GROUPS)}, "
                             f"{', '.join(OPS)}")
    elif args.level:
        # Runs at several CPU levels (the issue-15 judge) keep to the standard
        # table unless asked: the feature rows would multiply their time.
        shapes = list(SHAPE_GROUPS["standard"])
    ops = None
    if args.ops:
        ops = []
        for o in _split(args.ops):
            if o in _OP_ALIASES:
                ops += _OP_ALIASES[o]
            elif o in _ALL_OPS:
                ops.append(o)
            else:
                parser.error(f"--ops: unknown op {o!r}; choose from "
                             f"{', '.join(_ALL_OPS)}, conv, pool, max, avg")
    dtypes = _split(args.dtype.replace("both", "float32,float64"))
    for d in dtypes:
        if d not in DTYPES:
            parser.error(f"--dtype: expected float32, float64 or both, got {d!r}")
    threads = []
    for t in _split(args.threads):
        n = all_cores() if t == "all" else int(t) if t.isdigit() else 0
        if n < 1:
            parser.error(f"--threads: expected integers >= 1 or 'all', got {t!r}")
        threads.append(n)
    cases = select_cases(shapes, ops)
    if not cases:
        parser.error("no (shape, op) pair matches --shapes and --ops "
                     "(conv ops need conv shapes S*, D4, T1, N*, pool ops pool shapes P*, "
                     "fb depthwise shapes G*)")
    from cyconv._bench_levels import parse_levels
    from cyconv._bench_peers import parse_peers

    peers, torch, ort = parse_peers(args.peers, args.no_torch, parser.error)
    if args.plot and torch is None:
        parser.error("--plot shows speed-up over torch, which is not installed "
                     "(pip install \"cyconv[bench]\") or was left out (--no-torch)")
    args.peers_used, args.ort = peers, ort
    args.levels = parse_levels(args.level, parser.error) if args.level else None
    return args, cases, list(dict.fromkeys(dtypes)), list(dict.fromkeys(threads)), torch


def main(argv=None):
    """Run the comparison benchmark; print Markdown; return the exit status.

    The function behind ``python -m cyconv.bench`` (its options:
    ``python -m cyconv.bench --help``; ``--train`` hands over to
    :func:`cyconv.bench_train.main`).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments; default ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success.

    Raises
    ------
    SystemExit
        An unknown option or value (argparse's usage message, status 2).

    Examples
    --------
    >>> from cyconv.bench import main
    >>> main(["--quick", "--shapes", "S1", "--ops", "fwd", "--dtype", "float32",
    ...       "--threads", "1", "--no-torch", "--no-reference"])  # doctest: +ELLIPSIS
    # cyconv benchmark
    ...| S1 | fwd | float32 | 1 | ...
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--train" in argv:
        from cyconv.bench_train import main as train_main
        return train_main([a for a in argv if a != "--train"])
    args, cases, dtypes, threads, torch = _parse(argv)
    if args.levels:
        from cyconv._bench_levels import child_argv, levels_main
        return levels_main(args, args.levels, child_argv(args), args.peers_used)
    settings = dict(_SETTINGS["quick" if args.quick else "full"])
    if args.target is not None:
        settings["target"] = args.target

    def progress(r):
        print(f"  {r['level']} {r['shape']} {r['op']} {r['dtype']} threads={r['threads']}: "
              f"cyconv {_ms(r['cyconv_ms'])} ms, torch {_ms(r['torch_ms'])} ms"
              + (f", ORT {_ms(r['onnxruntime_ms'])} ms" if r.get("onnxruntime_ms") else ""),
              file=sys.stderr)

    gemm = [gemm_rate(d, t, settings["gemm_n"], settings["gemm_repeats"])
            for d in dtypes for t in threads
            if any(SHAPES[n]["kind"] != "pool" for n, _ in cases)]
    load_before = _load()
    if load_before is not None and load_before > 0.5:
        print(f"warning: load average {load_before} before starting: other processes are "
              "using the CPU, multi-threaded timings will suffer", file=sys.stderr)
    results = run(cases, dtypes, threads, quick=args.quick, target=args.target, torch=torch,
                  reference=not args.no_reference, progress=progress, ort=args.ort)
    from cyconv._bench_levels import library_report
    libraries = library_report(torch, args.ort)
    for g in gemm:
        g["level"] = libraries["cyconv"]
    copies = list({(r["shape"], r["dtype"], r["threads"]): dict(
        shape=r["shape"], dtype=r["dtype"], threads=r["threads"], level=r["level"],
        mb=r["copy_mb"], gbps=r["copy_gbps"]) for r in results if r.get("copy_gbps")}.values())
    report = dict(machine=machine_info(torch), load_before=load_before, quick=args.quick,
                  settings=settings, peers=list(args.peers_used), libraries=libraries,
                  gemm=gemm, copy=copies, results=results,
                  shapes={n: SHAPES[n] for n, _ in cases})
    for r in results:
        rate = next((g["gflops"] for g in gemm
                     if (g["dtype"], g["threads"]) == (r["dtype"], r["threads"])), None)
        r["gemm_fraction"] = r["gflops"] / rate if r.get("gflops") and rate else None
        if SHAPES[r["shape"]]["kind"] == "depthwise":
            r["gemm_fraction"] = None   # memory-bound: judged by GB/s and % copy instead
    sys.stdout.write(markdown(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.plot:
        plot(report, args.plot)
        print(f"\nplot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
