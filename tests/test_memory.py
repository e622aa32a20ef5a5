"""Memory: no leaks over many calls, and no im2col-sized scratch in the convolution.

- Leaks: every forward and backward runs many times after a warm-up; the
  memory tracemalloc sees (NumPy's arrays, cyconv's PyMem_Malloc scratch) must
  not grow, nor the process RSS (/proc/self/statm, Linux: also catches plain
  malloc), nor the reference counts of the inputs.
- Peak: tracemalloc's peak during one conv2d (and conv2d_backward) beyond the
  memory before it is the result itself plus the packed filters (or dw's
  per-thread panels of one row group) and a little slack: the kernels never
  build an im2col matrix (9x the input for 3x3).
"""
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import cyconv

ITERATIONS = 200


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _calls(dtype):
    """(name, fn) for the six public functions, fast and full argument paths."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 32, 16)).astype(dtype)
    w = rng.standard_normal((3, 3, 16, 32)).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    z = cyconv.conv2d(x, w, b, padding=1)
    dz = rng.standard_normal(z.shape).astype(dtype)
    out = np.empty_like(z)
    p = cyconv.max_pool2d(x, 3, stride=2, padding=1)
    dp = rng.standard_normal(p.shape).astype(dtype)
    p2 = cyconv.max_pool2d(x, 2)
    dp2 = rng.standard_normal(p2.shape).astype(dtype)
    xf = np.asfortranarray(x)       # the full path: a converted copy per call
    inputs = (x, w, b, dz, out, dp, dp2, xf)
    calls = [
        ("conv2d", lambda: cyconv.conv2d(x, w, b, padding=1)),
        ("conv2d-strided", lambda: cyconv.conv2d(x, w, b, stride=(2, 1), padding=((1, 0), (2, 1)))),
        ("conv2d-out", lambda: cyconv.conv2d(x, w, b, padding=1, out=out)),
        ("conv2d-fortran", lambda: cyconv.conv2d(xf, w, padding="same")),
        ("conv2d_backward", lambda: cyconv.conv2d_backward(dz, x, w, padding=1)),
        ("conv2d_backward-dw", lambda: cyconv.conv2d_backward(dz, xf, w, padding=1, grads="dw")),
        ("max_pool2d", lambda: cyconv.max_pool2d(x, 3, stride=2, padding=1)),
        ("max_pool2d_backward", lambda: cyconv.max_pool2d_backward(dp, x, 3, stride=2, padding=1)),
        ("max_pool2d_backward-disjoint", lambda: cyconv.max_pool2d_backward(dp2, x, 2)),
        ("avg_pool2d", lambda: cyconv.avg_pool2d(x, 3, stride=2, padding=1,
                                                 count_include_pad=False)),
        ("avg_pool2d_backward", lambda: cyconv.avg_pool2d_backward(dp, x.shape, 3, stride=2,
                                                                   padding=1)),
        ("avg_pool2d_backward-disjoint", lambda: cyconv.avg_pool2d_backward(dp2, x.shape, 2)),
    ]
    return calls, inputs


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_no_leak_tracemalloc_and_refcounts(dtype):
    calls, inputs = _calls(dtype)
    refs = [sys.getrefcount(a) for a in inputs]
    for _, fn in calls:             # warm-up: caches, lazy imports, OpenMP pool
        for _ in range(5):
            fn()
    gc.collect()
    tracemalloc.start()
    try:
        for name, fn in calls:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(ITERATIONS):
                fn()
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - before
            # One leaked scratch buffer or result per call would be >= 200 * ~2 KB.
            assert growth < 16 * 1024, f"{name}: traced memory grew by {growth} bytes " \
                                       f"over {ITERATIONS} calls"
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(a) for a in inputs] == refs, "a reference to an input leaked"


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS from /proc (Linux)")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="RSS means nothing under AddressSanitizer (freed memory is quarantined)")
def test_no_leak_rss():
    calls = _calls(np.float32)[0] + _calls(np.float64)[0]
    for _, fn in calls:
        for _ in range(20):
            fn()
    gc.collect()
    before = _rss_bytes()
    for _ in range(ITERATIONS):
        for _, fn in calls:
            fn()
    gc.collect()
    growth = _rss_bytes() - before
    # 2,400 calls: a leak of even the smallest result (a 4x8x8x16 float32
    # pool output, 16 KB) each time would add ~40 MB.
    assert growth < 8 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over {ITERATIONS} rounds"


def _peak_extra(fn):
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before, result


def _packed_filters_bound(w):
    # The forward and dx kernels copy w (f_h, f_w, C_in, C_out) once, the
    # output (input) channels padded to whole blocks of at most two 64-byte
    # vectors (32 float32 lanes): bounded here by rounding up to 64 channels.
    f_h, f_w, c_in, c_out = w.shape
    c_round = -(-c_out // 64) * 64
    c_in_round = -(-c_in // 64) * 64
    return (f_h * f_w * max(c_in * c_round, c_in_round * c_out) + c_round) * w.itemsize


SLACK = 256 * 1024      # tap lists, argument handling


def _dw_panels_bound(w, threads):
    # dw copies, per thread, one row group's dz (at most 1024 output pixels
    # x c_out rounded up to whole blocks) and the x values of one slab of
    # tiles for those pixels (at most 12 pairs): bounded by the group, not the
    # batch or the image, and far below an im2col matrix.
    c_round = -(-w.shape[3] // 64) * 64
    return threads * 1024 * (c_round + 12) * w.itemsize


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_conv2d_peak_memory_no_im2col(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 56, 56, 64)).astype(dtype)
    w = rng.standard_normal((3, 3, 64, 64)).astype(dtype)
    b = rng.standard_normal(64).astype(dtype)
    cyconv.conv2d(x, w, b, padding=1)   # warm-up
    extra, z = _peak_extra(lambda: cyconv.conv2d(x, w, b, padding=1))
    bound = z.nbytes + _packed_filters_bound(w) + SLACK
    print(f"\nconv2d {np.dtype(dtype).name}: peak extra {extra} B = "
          f"{extra / z.nbytes:.3f} x output ({z.nbytes} B); bound {bound} B; "
          f"im2col would add {9 * x.nbytes} B")
    assert extra <= bound
    # Through the full argument path (tuple padding) as well.
    extra2, z2 = _peak_extra(lambda: cyconv.conv2d(x, w, b, padding=(1, 1)))
    assert extra2 <= bound
    # With out=: nothing the size of the output at all.
    out = np.empty_like(z)
    extra3, _ = _peak_extra(lambda: cyconv.conv2d(x, w, b, padding=1, out=out))
    print(f"conv2d {np.dtype(dtype).name} out=: peak extra {extra3} B")
    assert extra3 <= _packed_filters_bound(w) + SLACK


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_conv2d_backward_peak_memory(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 56, 56, 64)).astype(dtype)
    w = rng.standard_normal((3, 3, 64, 64)).astype(dtype)
    dz = rng.standard_normal((8, 56, 56, 64)).astype(dtype)
    cyconv.conv2d_backward(dz, x, w, padding=1)     # warm-up
    extra, (dx, dw, db) = _peak_extra(lambda: cyconv.conv2d_backward(dz, x, w, padding=1))
    outputs = dx.nbytes + dw.nbytes + db.nbytes
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    bound = outputs + max(_packed_filters_bound(w), _dw_panels_bound(w, threads)) + SLACK
    print(f"\nconv2d_backward {np.dtype(dtype).name}: peak extra {extra} B = "
          f"{extra / outputs:.3f} x outputs ({outputs} B; dx alone {dx.nbytes} B); "
          f"bound {bound} B")
    assert extra <= bound
