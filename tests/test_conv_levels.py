"""Every CPU level's convolution tile against the reference (CI runs each level the CPU has).

The shapes here are wide enough to exercise what the small cases of
test_dispatch.py do not: two vectors per tile pixel, several channel blocks with
a partial last one, full tiles plus a remainder along a row, and edge columns
on both sides.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import TOL

import cyconv
from cyconv import _dispatch, reference

# (x shape, w shape, stride, padding)
WIDE = [
    ((2, 6, 17, 37), (3, 3, 37, 70), 1, 1),
    ((1, 9, 23, 20), (5, 3, 20, 33), 2, (2, 1)),
    ((2, 7, 15, 3), (7, 7, 3, 64), 2, 3),
    ((1, 5, 19, 70), (1, 1, 70, 5), 1, 0),
    ((1, 8, 13, 9), (3, 4, 9, 17), (1, 3), "same"),
]
IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in WIDE]


def _data(case, dtype):
    x_shape, w_shape, _, _ = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[3]).astype(dtype)
    return x, w, b


def _tol(dtype, x_shape, w_shape):
    # Sums of f_h * f_w * C_in products of order 1: scale the bound with the length.
    n = w_shape[0] * w_shape[1] * max(w_shape[2], w_shape[3]) * max(x_shape[0], 1)
    t = TOL[dtype]
    return dict(rtol=t["rtol"] * 10, atol=t["atol"] * n)


@pytest.mark.parametrize("case", WIDE, ids=IDS)
def test_every_level_matches_reference(case, level, dtype):
    x, w, b = _data(case, dtype)
    _, _, s, p = case
    z = cyconv.conv2d(x, w, b, stride=s, padding=p)
    np.testing.assert_allclose(z, reference.conv2d(x, w, b, stride=s, padding=p),
                               **_tol(dtype, x.shape, w.shape))
    dz = np.random.default_rng(3).standard_normal(z.shape).astype(dtype)
    got = cyconv.conv2d_backward(dz, x, w, stride=s, padding=p)
    want = reference.conv2d_backward(dz, x, w, stride=s, padding=p)
    for g, r in zip(got, want):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, r, **_tol(dtype, x.shape, w.shape))


@pytest.mark.parametrize("case", WIDE[:3], ids=IDS[:3])
def test_every_level_is_bitwise_equal_across_thread_counts(case, level):
    x, w, b = _data(case, np.float32)
    _, _, s, p = case
    z1 = cyconv.conv2d(x, w, b, stride=s, padding=p, num_threads=1)
    z2 = cyconv.conv2d(x, w, b, stride=s, padding=p, num_threads=2)
    np.testing.assert_array_equal(z1, z2)
    g1 = cyconv.conv2d_backward(z1, x, w, stride=s, padding=p, num_threads=1)
    g2 = cyconv.conv2d_backward(z1, x, w, stride=s, padding=p, num_threads=2)
    for a, c in zip(g1, g2):
        np.testing.assert_array_equal(a, c)


# Tall images: the forward and dx run blocks of rows whose edge columns are
# tiles down the rows (_forward_block, _dx_block); how many rows a block holds
# depends on the batch and the thread count.
TALL = [
    ((3, 29, 16, 64), (3, 3, 64, 64), 1, 1),
    ((2, 31, 11, 20), (5, 3, 20, 24), 2, (2, 1)),
    ((2, 26, 9, 8), (3, 5, 8, 16), (3, 2), "same"),
]


@pytest.mark.parametrize("case", TALL, ids=[f"x{c[0]}-s{c[2]}" for c in TALL])
@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_each_image_is_bitwise_the_image_convolved_alone(case, level, num_threads):
    # A pixel sums the same taps in the same order whatever block of rows or
    # tile it lands in: each image of the batch equals that image alone.
    x, w, b = _data(case, np.float32)
    _, _, s, p = case
    z = cyconv.conv2d(x, w, b, stride=s, padding=p, num_threads=num_threads)
    dz = np.random.default_rng(5).standard_normal(z.shape).astype(np.float32)
    dx = cyconv.conv2d_backward(dz, x, w, stride=s, padding=p, grads=("dx",),
                                num_threads=num_threads)[0]
    for i in range(x.shape[0]):
        zi = cyconv.conv2d(x[i:i + 1], w, b, stride=s, padding=p, num_threads=1)
        np.testing.assert_array_equal(z[i:i + 1], zi)
        dxi = cyconv.conv2d_backward(dz[i:i + 1], x[i:i + 1], w, stride=s, padding=p,
                                     grads=("dx",), num_threads=1)[0]
        np.testing.assert_array_equal(dx[i:i + 1], dxi)
    np.testing.assert_allclose(z, reference.conv2d(x, w, b, stride=s, padding=p),
                               **_tol(np.float32, x.shape, w.shape))
    np.testing.assert_allclose(
        dx, reference.conv2d_backward(dz, x, w, stride=s, padding=p)[0],
        **_tol(np.float32, x.shape, w.shape))


def test_levels_are_a_prefix_of_the_known_levels():
    levels = _dispatch.cpu_levels()
    assert levels == _dispatch.LEVELS[:len(levels)] and levels[0] == "baseline"
    forced = os.environ.get("CYCONV_CPU_LEVEL")
    # the best one by default; the forced one under CYCONV_CPU_LEVEL
    assert _dispatch.cpu_level() == (forced if forced in levels else levels[-1])
    assert cyconv.cpu_level() == _dispatch.cpu_level()


def test_set_cpu_level_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown CPU level 'avx9'"):
        _dispatch.set_cpu_level("avx9")


def _import_with(level):
    env = dict(os.environ, CYCONV_CPU_LEVEL=level)
    return subprocess.run([sys.executable, "-c", "import cyconv; print(cyconv.cpu_level())"],
                          env=env, capture_output=True, text=True)


@pytest.mark.parametrize("name", _dispatch.LEVELS)
def test_environment_variable_forces_a_level(name):
    res = _import_with(name)
    if name in _dispatch.cpu_levels():
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == name
    else:
        assert res.returncode != 0
        assert "not supported by this CPU" in res.stderr


def test_environment_variable_with_an_unknown_level_is_a_clear_error():
    res = _import_with("sse9")
    assert res.returncode != 0
    assert "CYCONV_CPU_LEVEL: unknown CPU level 'sse9'" in res.stderr


def test_dx_of_a_narrow_image_keeps_non_finite_filters_local(level):
    # Narrow images take the zero-padded-dz path for dx, unless w has inf/NaN:
    # there inf * 0 must not spread NaN over dx.
    x = np.ones((1, 4, 4, 1))
    w = np.ones((3, 3, 1, 1))
    w[0, 0, 0, 0] = np.inf
    dz = np.ones((1, 2, 2, 1))
    dx, _, _ = cyconv.conv2d_backward(dz, x, w)
    want, _, _ = reference.conv2d_backward(dz, x, w)
    np.testing.assert_array_equal(dx, want)
    assert np.isinf(dx).sum() == 4 and not np.isnan(dx).any()


def test_forward_of_a_narrow_image_keeps_non_finite_filters_local(level):
    # Narrow padded images take the zero-padded-x path for the forward, unless
    # w has inf/NaN: padding taps are skipped, so inf * 0 never enters a sum.
    x = np.ones((1, 4, 4, 1))
    w = np.ones((3, 3, 1, 1))
    w[0, 0, 0, 0] = np.inf
    z = cyconv.conv2d(x, w, padding=1)
    assert np.isinf(z).sum() == 9 and not np.isnan(z).any()  # the 9 outputs with tap (0, 0) inside
    w[0, 0, 0, 0] = 2.0
    np.testing.assert_array_equal(cyconv.conv2d(x, w, padding=1),
                                  reference.conv2d(x, w, padding=1))
