"""Every kernel called from many Python threads at once gives the serial result, bit for bit.

The kernels release the GIL, so Python threads really run them side by side,
each call with its own OpenMP team. Each of the six public functions (both
dtypes, several shapes with stride and padding) is computed once, serially,
before the threads start; then 8 threads call them all, in their own orders
and with their own ``num_threads``, and every result must equal the serial
one exactly (results do not depend on the thread count at a given CPU level).
Nothing process-wide is changed (no CPU level, no environment variable), and
the shared inputs must come out unmodified.
"""
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cyconv
from cyconv import _args, _openmp

N_WORKERS = 8

# (x shape, w shape, stride, padding): int stride/padding take the fast path,
# the others the full argument checks.
CONV_CASES = [
    ((2, 9, 11, 3), (3, 3, 3, 5), 1, 1),
    ((3, 12, 10, 8), (3, 2, 8, 16), (2, 1), ((1, 0), (2, 1))),
    ((1, 16, 16, 32), (1, 1, 32, 24), 2, 0),
    ((2, 7, 7, 4), (5, 5, 4, 6), 2, "same"),
]
# (x shape, pool size, stride, padding)
POOL_CASES = [
    ((2, 10, 9, 5), 2, None, 0),
    ((3, 13, 11, 16), 3, 2, 1),
    ((1, 17, 15, 33), (3, 2), (1, 2), (1, 0)),
]


def _cases():
    """(name, fn(num_threads) -> tuple of arrays, inputs) for every kernel and dtype."""
    rng = np.random.default_rng(1234)
    cases = []
    for dtype in (np.float32, np.float64):
        dt = np.dtype(dtype).name
        for k, (xs, ws, s, p) in enumerate(CONV_CASES):
            x = rng.standard_normal(xs).astype(dtype)
            w = rng.standard_normal(ws).astype(dtype)
            b = rng.standard_normal(ws[3]).astype(dtype)
            z_shape = cyconv.conv2d(x, w, b, stride=s, padding=p).shape
            dz = rng.standard_normal(z_shape).astype(dtype)

            def fwd(nt, x=x, w=w, b=b, s=s, p=p):
                return (cyconv.conv2d(x, w, b, stride=s, padding=p, num_threads=nt),)

            def fwd_out(nt, x=x, w=w, b=b, s=s, p=p, shape=z_shape, dtype=dtype):
                out = np.full(shape, np.nan, dtype=dtype)   # this call's own buffer
                res = cyconv.conv2d(x, w, b, stride=s, padding=p, out=out, num_threads=nt)
                assert res is out
                return (out,)

            def bwd(nt, dz=dz, x=x, w=w, s=s, p=p):
                return cyconv.conv2d_backward(dz, x, w, stride=s, padding=p, num_threads=nt)

            def bwd_dw(nt, dz=dz, x=x, w=w, s=s, p=p):
                return cyconv.conv2d_backward(dz, x, w, stride=s, padding=p, num_threads=nt,
                                              grads=("dw",))[1:2]

            inputs = (x, w, b, dz)
            cases += [(f"conv2d-{k}-{dt}", fwd, inputs),
                      (f"conv2d-out-{k}-{dt}", fwd_out, inputs),
                      (f"conv2d_backward-{k}-{dt}", bwd, inputs),
                      (f"conv2d_backward-dw-{k}-{dt}", bwd_dw, inputs)]
        for k, (xs, f, s, p) in enumerate(POOL_CASES):
            x = rng.standard_normal(xs).astype(dtype)
            x[0, :2, :2, :] = 0.0       # a few ties for max-pool's first-maximum rule
            p_shape = cyconv.max_pool2d(x, f, stride=s, padding=p).shape
            dp = rng.standard_normal(p_shape).astype(dtype)
            cip = bool(k % 2)           # both count_include_pad settings

            def maxf(nt, x=x, f=f, s=s, p=p):
                return (cyconv.max_pool2d(x, f, stride=s, padding=p, num_threads=nt),)

            def maxb(nt, dp=dp, x=x, f=f, s=s, p=p):
                return (cyconv.max_pool2d_backward(dp, x, f, stride=s, padding=p,
                                                   num_threads=nt),)

            def avgf(nt, x=x, f=f, s=s, p=p, cip=cip):
                return (cyconv.avg_pool2d(x, f, stride=s, padding=p, count_include_pad=cip,
                                          num_threads=nt),)

            def avgb(nt, dp=dp, shape=x.shape, f=f, s=s, p=p, cip=cip):
                return (cyconv.avg_pool2d_backward(dp, shape, f, stride=s, padding=p,
                                                   count_include_pad=cip, num_threads=nt),)

            inputs = (x, dp)
            cases += [(f"max_pool2d-{k}-{dt}", maxf, inputs),
                      (f"max_pool2d_backward-{k}-{dt}", maxb, inputs),
                      (f"avg_pool2d-{k}-{dt}", avgf, inputs),
                      (f"avg_pool2d_backward-{k}-{dt}", avgb, inputs)]
    return cases


def _same_bits(a, b):
    if a is None or b is None:
        return a is b
    return (a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous
            and a.tobytes() == b.tobytes())


def _global_state():
    # What a test must not change: the CPU level, the OpenMP default, the env-derived default.
    return (cyconv.cpu_level(), _openmp.openmp_max_threads(), _args.effective_num_threads())


def _hammer(iterations, num_threads_choices):
    cases = _cases()
    expected = {name: fn(1) for name, fn, _ in cases}       # serial, before any thread
    saved = {name: tuple(a.copy() for a in inputs) for name, _, inputs in cases}

    def worker(t):
        rng = random.Random(t)
        order = list(cases)
        mismatches, calls = [], 0
        for it in range(iterations):
            rng.shuffle(order)                                  # own order of shapes
            for j, (name, fn, _) in enumerate(order):
                nt = num_threads_choices[(t + it + j) % len(num_threads_choices)]
                got = fn(nt)
                calls += 1
                want = expected[name]
                if len(got) != len(want) or not all(map(_same_bits, got, want)):
                    mismatches.append((name, t, it, nt))
        return calls, mismatches

    with ThreadPoolExecutor(max_workers=N_WORKERS) as pool:
        results = list(pool.map(worker, range(N_WORKERS)))
    calls = sum(c for c, _ in results)
    mismatches = [m for _, ms in results for m in ms]
    assert not mismatches, f"{len(mismatches)} of {calls} concurrent results differ from the " \
                           f"serial ones (case, thread, iteration, num_threads): {mismatches[:10]}"
    assert calls == N_WORKERS * iterations * len(cases)
    for name, _, inputs in cases:       # shared inputs never written
        for a, before in zip(inputs, saved[name]):
            assert _same_bits(a, before), f"{name}: an input was modified"


def test_kernels_from_8_threads_bitwise_equal_serial():
    before = _global_state()
    _hammer(iterations=100, num_threads_choices=(1, 2, 1, 2, None))
    assert _global_state() == before


def test_kernels_from_8_threads_under_threadpool_limits():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = _global_state()
    with threadpoolctl.threadpool_limits(1):
        _hammer(iterations=40, num_threads_choices=(None, 1, 2))
    assert _global_state() == before


def test_same_call_same_out_never_shared():
    # Two threads writing the same out= buffer is a user error cyconv cannot
    # see; distinct buffers, the same input, many threads: each gets the full result.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 20, 20, 16), dtype=np.float32)
    w = rng.standard_normal((3, 3, 16, 16), dtype=np.float32)
    want = cyconv.conv2d(x, w, padding=1, num_threads=1)
    outs = [np.empty_like(want) for _ in range(N_WORKERS)]

    def run(k):
        for _ in range(20):
            outs[k][...] = np.nan
            cyconv.conv2d(x, w, padding=1, out=outs[k], num_threads=1 + k % 2)
            if not _same_bits(outs[k], want):
                return False
        return True

    with ThreadPoolExecutor(max_workers=N_WORKERS) as pool:
        assert all(pool.map(run, range(N_WORKERS)))
