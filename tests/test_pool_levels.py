"""Every CPU level's pooling module against the reference (CI runs each level the CPU has).

Channel counts cover whole channel blocks, a tail block, and fewer channels
than one vector; windows overlap (gather kernels) or not (direct pass).
"""
import importlib.util

import numpy as np
import pytest

import cyconv
from cyconv import pool, reference

CASES = [  # x shape, pool size, stride, padding
    ((2, 9, 11, 37), 3, 2, 1),
    ((1, 8, 8, 16), 2, None, 0),
    ((2, 7, 10, 70), (3, 2), (1, 2), (1, 0)),
    ((1, 12, 12, 5), 4, 4, 0),
]
IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in CASES]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


MODULES = {"baseline": "cyconv._pool", "x86-64-v3": "cyconv._pool_v3",
           "x86-64-v4": "cyconv._pool_v4"}


def _module_of(level):
    name = MODULES[level]
    return name if importlib.util.find_spec(name) else "cyconv._pool"  # no per-level build


def test_the_pool_module_follows_the_level(level):
    assert pool._kernels(np.float32, 64).__name__ == _module_of(level)
    assert pool._kernels(np.float64, 64).__name__ == _module_of(level)


def test_narrow_layers_take_the_widest_level_they_fill(level):
    # 8 float32 channels fill 32 bytes: AVX2 vectors, not half an AVX-512 one.
    narrow = "x86-64-v3" if level == "x86-64-v4" else level
    assert pool._kernels(np.float32, 8).__name__ == _module_of(narrow)
    assert pool._kernels(np.float64, 8).__name__ == _module_of(level)
    assert pool._kernels(np.float32, 1).__name__ == "cyconv._pool"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_level_matches_reference(case, level, dtype):
    x_shape, k, s, p = case
    rng = np.random.default_rng(11)
    x = rng.standard_normal(x_shape).astype(dtype)
    x[0, 0, 0, 0] = x[0, 0, 1, 0]  # a tie: the first maximum takes the gradient
    got = cyconv.max_pool2d(x, k, stride=s, padding=p)
    np.testing.assert_array_equal(got, reference.max_pool2d(x, k, stride=s, padding=p))
    dp = rng.standard_normal(got.shape).astype(dtype)
    np.testing.assert_allclose(cyconv.max_pool2d_backward(dp, x, k, stride=s, padding=p),
                               reference.max_pool2d_backward(dp, x, k, stride=s, padding=p),
                               **TOL[dtype])
    _, indices = cyconv.max_pool2d(x, k, stride=s, padding=p, return_indices=True)
    np.testing.assert_array_equal(
        indices, reference.max_pool2d(x, k, stride=s, padding=p, return_indices=True)[1])
    np.testing.assert_array_equal(
        cyconv.max_pool2d_backward(dp, x, k, stride=s, padding=p, indices=indices),
        cyconv.max_pool2d_backward(dp, x, k, stride=s, padding=p))
    for inc in (True, False):
        kw = dict(stride=s, padding=p, count_include_pad=inc)
        np.testing.assert_allclose(cyconv.avg_pool2d(x, k, **kw),
                                   reference.avg_pool2d(x, k, **kw), **TOL[dtype])
        np.testing.assert_allclose(cyconv.avg_pool2d_backward(dp, x.shape, k, **kw),
                                   reference.avg_pool2d_backward(dp, x.shape, k, **kw),
                                   **TOL[dtype])


def test_every_level_propagates_nan_in_max_pool(level, dtype):
    x = np.zeros((1, 4, 4, 20), dtype=dtype)
    x[0, 1, 1, 3] = np.nan
    p = cyconv.max_pool2d(x, 2)
    assert np.isnan(p[0, 0, 0, 3]) and np.count_nonzero(np.isnan(p)) == 1
