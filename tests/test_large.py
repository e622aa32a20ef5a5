"""Inputs with more than 2**31 elements: no 32-bit index overflows anywhere.

x is float32 of shape (1, 46341, 46341, 1): 46341**2 = 2,147,488,281 elements
(8.6 GB), so every element of its last row from column 41708 on lies past
flat index 2**31. The kernels run with large strides or pools (tiny outputs),
and the results are checked against NumPy on views of x, including windows
that reach the very last element. x is C-contiguous float32, which cyconv
takes as it is: no copy of it is ever made.

Slow and memory-hungry (about 9 GB, 18 GB for the backward tests, about two
minutes on 2 cores), so skipped unless ``CYCONV_RUN_SLOW=1``:

    CYCONV_RUN_SLOW=1 python -m pytest tests/test_large.py -s
"""
import os
import time

import numpy as np
import pytest

import cyconv

N = 46341                       # N * N > 2**31
assert N * N > 2**31
X_BYTES = N * N * 4
RUN_SLOW = os.environ.get("CYCONV_RUN_SLOW") == "1"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not RUN_SLOW,
                       reason="slow (8.6 GB input, 18 GB of memory, ~2 min): CYCONV_RUN_SLOW=1"),
]


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _need_memory(n_bytes):
    avail = _available_bytes()
    if avail is not None and avail < n_bytes:
        pytest.skip(f"needs {n_bytes / 2**30:.1f} GiB of free memory, "
                    f"{avail / 2**30:.1f} GiB available")


# A planted maximum in the last row, past flat index 2**31.
PEAK = (N - 1, N - 2)
PEAK_VALUE = 1000.0


@pytest.fixture(scope="module")
def big_x():
    _need_memory(X_BYTES + 2**30)
    t0 = time.perf_counter()
    x = np.empty((1, N, N, 1), dtype=np.float32)
    rng = np.random.default_rng(2024)
    rows = 1024                 # fill in slices: no temporary of the full size
    for r in range(0, N, rows):
        rng.random(out=x[0, r:r + rows, :, 0], dtype=np.float32)   # [0, 1)
    x[0, PEAK[0], PEAK[1], 0] = PEAK_VALUE
    x[0, 0, 0, 0] = 2.0         # the maximum of the first window
    assert np.ravel_multi_index((0, *PEAK, 0), x.shape) > 2**31
    print(f"\n[test_large] filled x {x.shape} ({x.nbytes / 1e9:.2f} GB) "
          f"in {time.perf_counter() - t0:.1f} s")
    yield x
    del x


def _timed(label, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"[test_large] {label}: {time.perf_counter() - t0:.2f} s")
    return out


def test_conv2d_1x1_reaches_last_element(big_x):
    x = big_x
    rng = np.random.default_rng(1)
    w = rng.standard_normal((1, 1, 1, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    s = N - 1                   # outputs at rows/cols 0 and N - 1: the very last element
    z = _timed("conv2d 1x1 stride 46340", lambda: cyconv.conv2d(x, w, b, stride=s))
    assert z.shape == (1, 2, 2, 4)
    want = x[0, ::s, ::s, :] * w[0, 0] + b          # (2, 2, 4), from a view of x
    np.testing.assert_allclose(z[0], want, rtol=1e-6, atol=1e-6)
    # The last element on its own, computed in float64.
    last = float(x[0, N - 1, N - 1, 0])
    np.testing.assert_allclose(z[0, 1, 1], last * w[0, 0, 0].astype(np.float64) + b,
                               rtol=1e-6, atol=1e-6)


def test_conv2d_3x3_padded_strided(big_x):
    x = big_x
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 3, 1, 3)).astype(np.float32)
    s = 4634                    # 11 outputs per axis; the last window is centred on N - 1
    z = _timed("conv2d 3x3 pad 1 stride 4634", lambda: cyconv.conv2d(x, w, stride=s, padding=1))
    o = (N + 2 - 3) // s + 1
    assert z.shape == (1, o, o, 3) and o == 11
    w64 = w[:, :, 0, :].astype(np.float64)
    for oh in range(o):
        for ow in range(o):
            win = np.zeros((3, 3))                  # the padded window, from x itself
            for kh in range(3):
                for kw in range(3):
                    r, c = oh * s - 1 + kh, ow * s - 1 + kw
                    if 0 <= r < N and 0 <= c < N:
                        win[kh, kw] = x[0, r, c, 0]
            want = np.einsum("hw,hwo->o", win, w64)
            np.testing.assert_allclose(z[0, oh, ow], want, rtol=1e-5, atol=1e-5,
                                       err_msg=f"output ({oh}, {ow})")


POOL = 5149                     # 46341 = 9 * 5149: 9 x 9 windows tile x exactly


def test_max_pool2d_large_windows(big_x):
    x = big_x
    p = _timed("max_pool2d pool 5149", lambda: cyconv.max_pool2d(x, POOL))
    assert p.shape == (1, 9, 9, 1)
    want = _timed("NumPy reference max",
                  lambda: x[0, :, :, 0].reshape(9, POOL, 9, POOL).max(axis=(1, 3)))  # a view
    np.testing.assert_array_equal(p[0, :, :, 0], want)
    assert p[0, 0, 0, 0] == 2.0
    assert p[0, 8, 8, 0] == PEAK_VALUE              # found past index 2**31
    # Overlapping windows with padding: pool 4636, stride 4634, padding 1: 10 x 10
    # windows, the last one covering rows and columns 41705 .. N - 1.
    q = _timed("max_pool2d pool 4636 stride 4634 pad 1",
               lambda: cyconv.max_pool2d(x, 4636, stride=4634, padding=1))
    assert q.shape == (1, 10, 10, 1)
    for oh, ow in [(0, 0), (0, 9), (9, 0), (5, 7), (9, 9)]:
        r0, c0 = max(oh * 4634 - 1, 0), max(ow * 4634 - 1, 0)
        r1, c1 = min(oh * 4634 - 1 + 4636, N), min(ow * 4634 - 1 + 4636, N)
        assert q[0, oh, ow, 0] == x[0, r0:r1, c0:c1, 0].max(), (oh, ow)
    assert q[0, 9, 9, 0] == PEAK_VALUE


# max_pool2d_backward takes pools of fewer than 2**24 elements (tap indices
# travel in the data's float type): 4091 x 4091 windows 8450 apart (6 x 6,
# disjoint; the last one covers rows and columns 42250 .. N - 1), then
# 4005 x 4005 windows 2016 apart (22 x 22, overlapping; the last one again
# ends at N - 1).
@pytest.mark.parametrize("pool, stride, n_out", [(4091, 8450, 6), (4005, 2016, 22)],
                         ids=["disjoint", "overlapping"])
def test_max_pool2d_backward_large(big_x, pool, stride, n_out):
    # dx is as big as x: 17.2 GB in all.
    _need_memory(X_BYTES + 2**30)
    x = big_x
    assert (n_out - 1) * stride + pool == N
    rng = np.random.default_rng(3)
    dp = rng.standard_normal((1, n_out, n_out, 1)).astype(np.float32)
    dx = _timed(f"max_pool2d_backward pool {pool} stride {stride}",
                lambda: cyconv.max_pool2d_backward(dp, x, pool, stride=stride))
    assert dx.shape == x.shape and dx.dtype == np.float32
    # The two planted maxima are each in one window only.
    assert dx[0, 0, 0, 0] == dp[0, 0, 0, 0]
    assert dx[0, PEAK[0], PEAK[1], 0] == dp[0, -1, -1, 0]        # past index 2**31
    # Each window's gradient goes to its first maximum (summed where they coincide).
    want = {}
    for oh in range(n_out):
        for ow in range(n_out):
            win = x[0, oh * stride:oh * stride + pool, ow * stride:ow * stride + pool, 0]
            r, c = np.unravel_index(np.argmax(win), win.shape)
            key = (oh * stride + r, ow * stride + c)
            want[key] = want.get(key, 0.0) + float(dp[0, oh, ow, 0])
    for (r, c), g in want.items():
        np.testing.assert_allclose(dx[0, r, c, 0], g, rtol=1e-6, atol=1e-6,
                                   err_msg=f"dx at ({r}, {c})")
    # Nothing anywhere else.
    assert _timed("count non-zeros", lambda: np.count_nonzero(dx)) == len(want)
    np.testing.assert_allclose(dx.sum(dtype=np.float64), dp.sum(dtype=np.float64),
                               rtol=1e-5, atol=1e-5)
