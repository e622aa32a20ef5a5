"""max_pool2d's ``dilation`` and the pools' ``ceil_mode``: every CPU level's kernels
against the reference, finite differences, thread-count reproducibility, layers.

Cases cover overlapping windows (gather kernels) and disjoint ones (direct
pass, also dilated: s >= d * (f - 1) + 1), channel counts with whole blocks,
tails and fewer channels than a vector, ceil_mode windows clipped by the
input and by the padding, and strides larger than the window.
"""
import numpy as np
import pytest
from conftest import TOL

import cyconv
from cyconv import reference
from cyconv.layers import AvgPool2D, MaxPool2D

CASES = [  # x shape, pool size, stride, padding, dilation, ceil_mode
    ((2, 9, 11, 37), 3, 2, 1, 2, False),
    ((1, 10, 10, 16), 2, 1, 0, (2, 3), False),
    ((2, 7, 10, 70), (3, 2), (1, 2), (1, 0), 1, True),
    ((1, 8, 8, 5), 3, 3, 1, 1, True),          # ceil with padding: last window clipped
    ((1, 9, 9, 20), 2, 3, 0, 1, True),         # stride > kernel: gaps, ceil adds a window
    ((1, 12, 13, 9), 3, 2, "same", 2, True),   # "same" on the dilated extent
    ((2, 11, 11, 17), 2, 5, 1, 3, True),       # dilated but disjoint (s >= extent)
    ((1, 5, 7, 3), (2, 3), 3, (1, 1), (1, 2), True),
]
IDS = ["x{}-k{}-s{}-p{}-d{}-ceil{}".format(*c).replace(" ", "") for c in CASES]
AVG_CASES = [c for c in CASES if c[4] == 1] + [
    ((1, 9, 10, 8), 3, 2, 1, 1, True), ((2, 6, 6, 33), 4, 3, 2, 1, True)]
AVG_IDS = ["x{}-k{}-s{}-p{}-ceil{}".format(c[0], c[1], c[2], c[3], c[5]).replace(" ", "")
           for c in AVG_CASES]


def _x(shape, dtype, seed=3):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool2d_dilation_and_ceil_mode_match_reference_at_every_level(case, level, dtype):
    x_shape, k, s, p, d, cm = case
    x = _x(x_shape, dtype)
    x[0, 0, 0, 0] = x[0, 0, 1, 0]  # a tie: the first maximum takes the gradient
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=cm)
    want, want_idx = reference.max_pool2d(x, k, return_indices=True, **kw)
    got, idx = cyconv.max_pool2d(x, k, return_indices=True, **kw)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(cyconv.max_pool2d(x, k, **kw), want)
    dp = _x(got.shape, dtype, seed=4)
    dx = cyconv.max_pool2d_backward(dp, x, k, **kw)
    np.testing.assert_allclose(dx, reference.max_pool2d_backward(dp, x, k, **kw), **TOL[dtype])
    np.testing.assert_array_equal(cyconv.max_pool2d_backward(dp, x, k, indices=idx, **kw), dx)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", AVG_CASES, ids=AVG_IDS)
def test_avg_pool2d_ceil_mode_matches_reference_at_every_level(case, count_include_pad, level,
                                                               dtype):
    x_shape, k, s, p, _, cm = case
    x = _x(x_shape, dtype)
    kw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=count_include_pad)
    got = cyconv.avg_pool2d(x, k, **kw)
    np.testing.assert_allclose(got, reference.avg_pool2d(x, k, **kw), **TOL[dtype])
    dp = _x(got.shape, dtype, seed=4)
    np.testing.assert_allclose(cyconv.avg_pool2d_backward(dp, x.shape, k, **kw),
                               reference.avg_pool2d_backward(dp, x.shape, k, **kw), **TOL[dtype])


@pytest.mark.parametrize("n, f, s, p, d, floor, ceil", [
    (5, 2, 2, 0, 1, 2, 3),     # a last, partial window
    (6, 2, 2, 0, 1, 3, 3),     # windows tile the input: no change
    (5, 2, 3, 1, 1, 2, 2),     # the ceil window would start in the padding after: dropped
    (8, 3, 3, 1, 1, 3, 3),
    (9, 2, 3, 0, 1, 3, 3),     # stride > kernel
    (10, 3, 3, 0, 2, 2, 3),    # dilated: extent 5
    (8, 3, 2, 1, 2, 3, 4),
])
def test_output_size_follows_pytorchs_ceil_mode_rule(n, f, s, p, d, floor, ceil):
    x = np.zeros((1, n, 1, 1))
    kw = dict(stride=(s, 1), padding=(p, 0), dilation=(d, 1))
    assert cyconv.max_pool2d(x, (f, 1), **kw).shape[1] == floor
    assert cyconv.max_pool2d(x, (f, 1), ceil_mode=True, **kw).shape[1] == ceil
    assert reference.max_pool2d(x, (f, 1), ceil_mode=True, **kw).shape[1] == ceil
    if d == 1:
        kw.pop("dilation")
        assert cyconv.avg_pool2d(x, (f, 1), ceil_mode=True, **kw).shape[1] == ceil


def test_avg_pool2d_ceil_mode_divides_clipped_windows_by_their_part_in_the_padded_input():
    # n=5, f=2, s=2, no padding: the last window covers input 4 and one position
    # past the padded input; PyTorch divides it by 1 (count_include_pad or not).
    x = np.arange(5.0).reshape(1, 5, 1, 1)
    p = cyconv.avg_pool2d(x, (2, 1), ceil_mode=True)
    np.testing.assert_array_equal(p[0, :, 0, 0], [0.5, 2.5, 4.0])
    # with padding 1: windows [-1, 0], [1, 2], [3, 4], [5 (pad), 6 (outside)]:
    # the last counts its padding position only (count 1), so 0 / 1
    # n=6, f=3, s=2, padding 1: windows [-1, 1], [1, 3], [3, 5], [5, 7]; the last
    # holds input 5, the padding position 6 and position 7 past the padded input,
    # so it divides by 2 with count_include_pad and by 1 without.
    x = np.arange(1.0, 7.0).reshape(1, 6, 1, 1)
    kw = dict(stride=(2, 1), padding=(1, 0), ceil_mode=True)
    np.testing.assert_array_equal(cyconv.avg_pool2d(x, (3, 1), **kw)[0, :, 0, 0], [1, 3, 5, 3])
    np.testing.assert_array_equal(
        cyconv.avg_pool2d(x, (3, 1), count_include_pad=False, **kw)[0, :, 0, 0], [1.5, 3, 5, 6])


def test_dilated_max_pool_reads_every_d_th_element():
    x = np.arange(36.0).reshape(1, 6, 6, 1)
    p, idx = cyconv.max_pool2d(x, 2, stride=1, dilation=(2, 3), return_indices=True)
    assert p.shape == (1, 4, 3, 1)
    np.testing.assert_array_equal(p[0, :, :, 0], x[0, 2:, 3:, 0])  # the bottom-right tap
    assert (idx == 3).all()


def test_same_padding_uses_the_dilated_extent():
    x = np.zeros((1, 9, 9, 1))
    assert cyconv.max_pool2d(x, 3, stride=1, padding="same", dilation=2).shape == (1, 9, 9, 1)
    assert cyconv.max_pool2d(x, 3, stride=2, padding="same", dilation=3).shape == (1, 5, 5, 1)


def test_defaults_give_todays_results_bitwise(dtype):
    x = _x((2, 9, 9, 19), dtype)
    for kw in (dict(), dict(stride=2, padding=1)):
        p = cyconv.max_pool2d(x, 3, **kw)
        np.testing.assert_array_equal(cyconv.max_pool2d(x, 3, dilation=1, ceil_mode=False, **kw), p)
        dx = cyconv.max_pool2d_backward(np.ones_like(p), x, 3, **kw)
        np.testing.assert_array_equal(
            cyconv.max_pool2d_backward(np.ones_like(p), x, 3, dilation=(1, 1), ceil_mode=False,
                                       **kw), dx)
        a = cyconv.avg_pool2d(x, 3, **kw)
        np.testing.assert_array_equal(cyconv.avg_pool2d(x, 3, ceil_mode=False, **kw), a)


def _numeric_grad(f, x, eps):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        hi = f(x)
        x[i] = old - eps
        lo = f(x)
        x[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("k, s, p, d, cm", [(2, 1, 0, 2, False), (3, 2, 1, 2, True),
                                            ((2, 3), 3, (1, 0), (2, 1), True)])
def test_max_pool2d_backward_is_the_finite_difference_gradient(k, s, p, d, cm):
    # distinct values, far apart (no ties within eps): max is differentiable there
    x = np.random.default_rng(5).permutation(2 * 7 * 8 * 3).reshape(2, 7, 8, 3) * 0.1
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=cm)
    dp = np.random.default_rng(6).standard_normal(cyconv.max_pool2d(x, k, **kw).shape)
    numeric = _numeric_grad(lambda a: float((cyconv.max_pool2d(a, k, **kw) * dp).sum()), x, 1e-3)
    np.testing.assert_allclose(cyconv.max_pool2d_backward(dp, x, k, **kw), numeric, atol=1e-8)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 2, 1), ((3, 2), (2, 3), (1, 1)), (2, 3, 1)])
def test_avg_pool2d_backward_is_the_finite_difference_gradient_with_ceil_mode(
        k, s, p, count_include_pad):
    x = np.random.default_rng(7).standard_normal((2, 7, 8, 3))
    kw = dict(stride=s, padding=p, ceil_mode=True, count_include_pad=count_include_pad)
    dp = np.random.default_rng(8).standard_normal(cyconv.avg_pool2d(x, k, **kw).shape)
    numeric = _numeric_grad(lambda a: float((cyconv.avg_pool2d(a, k, **kw) * dp).sum()), x, 1e-4)
    np.testing.assert_allclose(cyconv.avg_pool2d_backward(dp, x.shape, k, **kw), numeric,
                               atol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_results_are_bitwise_identical_for_any_thread_count(case, dtype):
    x_shape, k, s, p, d, cm = case
    x = _x(x_shape, dtype)
    kw = dict(stride=s, padding=p, ceil_mode=cm)
    runs = []
    for n in (1, 2, 3):
        pm, idx = cyconv.max_pool2d(x, k, dilation=d, return_indices=True, num_threads=n, **kw)
        dp = _x(pm.shape, dtype, seed=9)
        dxm = cyconv.max_pool2d_backward(dp, x, k, dilation=d, num_threads=n, **kw)
        pa = cyconv.avg_pool2d(x, k, num_threads=n, **kw)
        dxa = cyconv.avg_pool2d_backward(_x(pa.shape, dtype, seed=9), x.shape, k,
                                         num_threads=n, **kw)
        runs.append([a.tobytes() for a in (pm, idx, dxm, pa, dxa)])
    assert runs[0] == runs[1] == runs[2]


def test_pool_layers_pass_ceil_mode_and_dilation(dtype):
    x = _x((2, 9, 9, 4), dtype)
    layer = MaxPool2D(3, stride=2, padding=1, dilation=2, ceil_mode=True)
    p = layer.forward(x)
    np.testing.assert_array_equal(
        p, cyconv.max_pool2d(x, 3, stride=2, padding=1, dilation=2, ceil_mode=True))
    dp = _x(p.shape, dtype, seed=2)
    np.testing.assert_array_equal(
        layer.backward(dp),
        cyconv.max_pool2d_backward(dp, x, 3, stride=2, padding=1, dilation=2, ceil_mode=True))
    assert "dilation=2" in repr(layer) and "ceil_mode=True" in repr(layer)
    ref = MaxPool2D(3, stride=2, padding=1, dilation=2, ceil_mode=True, backend=reference)
    np.testing.assert_array_equal(ref.forward(x), p)

    layer = AvgPool2D(2, ceil_mode=True)
    p = layer.forward(x)
    assert p.shape == (2, 5, 5, 4)
    np.testing.assert_array_equal(p, cyconv.avg_pool2d(x, 2, ceil_mode=True))
    np.testing.assert_array_equal(layer.backward(np.ones_like(p)),
                                  cyconv.avg_pool2d_backward(np.ones_like(p), x.shape, 2,
                                                             ceil_mode=True))
    assert "ceil_mode=True" in repr(layer)
    # default layers keep calling backends without the new keywords
    assert "ceil_mode" not in repr(AvgPool2D(2)) and "dilation" not in repr(MaxPool2D(2))


@pytest.mark.parametrize("kw, error, message", [
    (dict(dilation=0), ValueError, r"^dilation must be >= 1"),
    (dict(dilation=(1, -2)), ValueError, r"^dilation must be >= 1"),
    (dict(dilation=1.5), TypeError, r"^dilation must be an int or a pair"),
    (dict(dilation="2"), TypeError, r"^dilation must be an int or a pair"),
    (dict(ceil_mode="yes"), TypeError, r"^ceil_mode must be True or False"),
    (dict(ceil_mode=1), TypeError, r"^ceil_mode must be True or False"),
    (dict(dilation=3), ValueError, r"window extent 4 \(pool 2 with dilation 3\)"),
])
@pytest.mark.parametrize("op", ["max_pool2d", "max_pool2d_backward"])
def test_bad_dilation_and_ceil_mode_raise_naming_the_argument(op, kw, error, message):
    x = np.ones((1, 3, 3, 2))
    before = x.copy()
    with pytest.raises(error, match=message):
        if op == "max_pool2d":
            cyconv.max_pool2d(x, 2, **kw)
        else:
            cyconv.max_pool2d_backward(np.ones((1, 1, 1, 2)), x, 2, **kw)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("op", ["avg_pool2d", "avg_pool2d_backward"])
def test_avg_pool_bad_ceil_mode_raises_naming_it(op):
    with pytest.raises(TypeError, match=r"^ceil_mode must be True or False"):
        if op == "avg_pool2d":
            cyconv.avg_pool2d(np.ones((1, 3, 3, 2)), 2, ceil_mode=None)
        else:
            cyconv.avg_pool2d_backward(np.ones((1, 1, 1, 2)), (1, 3, 3, 2), 2, ceil_mode="no")
    with pytest.raises(TypeError, match="dilation"):  # average pooling has no dilation
        cyconv.avg_pool2d(np.ones((1, 3, 3, 2)), 2, dilation=2)


def test_ceil_mode_accepts_a_window_larger_than_the_input_as_pytorch_does():
    # PyTorch: n=3, f=4, s=2 gives one window (input 0..2 and one position past
    # it), max 3 and mean 6 / 3; with s=1 no window starts inside: an error.
    x = np.arange(1.0, 4.0).reshape(1, 1, 3, 1)
    kw = dict(stride=(1, 2), ceil_mode=True)
    assert cyconv.max_pool2d(x, (1, 4), **kw).ravel().tolist() == [3.0]
    assert cyconv.avg_pool2d(x, (1, 4), **kw).ravel().tolist() == [2.0]
    assert reference.avg_pool2d(x, (1, 4), **kw).ravel().tolist() == [2.0]
    np.testing.assert_allclose(cyconv.avg_pool2d_backward(np.ones((1, 1, 1, 1)), x.shape, (1, 4),
                                                          **kw).ravel(), [1 / 3] * 3)
    np.testing.assert_array_equal(cyconv.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, (1, 4),
                                                             **kw).ravel(), [0, 0, 1])
    with pytest.raises(ValueError, match=r"ceil_mode leaves no window along width \(axis 2\)"):
        cyconv.max_pool2d(x, (1, 4), stride=1, ceil_mode=True)
    with pytest.raises(ValueError, match=r"window is larger than the padded input"):
        cyconv.max_pool2d(x, (1, 4), stride=(1, 2))


@pytest.mark.parametrize("chunks", [(1, 4, 3, 5), (2, 5, 11, 2), (1, 1, 2, 5)], ids=str)
def test_dask_pools_with_dilation_and_ceil_mode_equal_in_memory_bitwise(chunks, dtype):
    da = pytest.importorskip("dask.array")
    import cyconv.dask
    x = _x((2, 13, 11, 5), dtype)
    xd = da.from_array(x, chunks=chunks)
    for k, s, p, d in [(3, 2, 1, 2), (2, None, 0, 1), ((3, 2), (2, 3), "same", (2, 1)),
                       (4, 2, 1, 1)]:
        kw = dict(stride=s, padding=p, ceil_mode=True)
        np.testing.assert_array_equal(cyconv.dask.max_pool2d(xd, k, dilation=d, **kw).compute(),
                                      cyconv.max_pool2d(x, k, dilation=d, **kw))
        for cip in (True, False):
            np.testing.assert_array_equal(
                cyconv.dask.avg_pool2d(xd, k, count_include_pad=cip, **kw).compute(),
                cyconv.avg_pool2d(x, k, count_include_pad=cip, **kw))
