"""Tests of cyconv.reference, the NumPy definition of truth.

The backward passes are checked against central finite differences, the
forward passes against the worked numbers of the course notes, hand-computed
values and an independent ``sliding_window_view`` formulation.
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from numpy.testing import assert_allclose, assert_array_equal

from cyconv import reference


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def numerical_gradient(loss, a, eps=1e-6):
    """Central finite differences of the scalar ``loss`` at ``a`` (float64)."""
    a = np.array(a, dtype=np.float64)
    grad = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        original = a[idx]
        a[idx] = original + eps
        plus = loss(a)
        a[idx] = original - eps
        minus = loss(a)
        a[idx] = original
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def distinct_values(rng, shape):
    """Distinct values 0.1 apart in random order, so eps never crosses a kink of max."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


# Small geometries with stride > 1 and asymmetric padding:
# (x shape, window (f_h, f_w), stride, padding).
GEOMETRIES = [
    pytest.param((2, 6, 7, 2), (3, 2), (2, 2), ((1, 0), (2, 1)), id="stride2-pad-t1b0l2r1"),
    pytest.param((2, 5, 7, 2), (2, 3), (2, 3), (1, 2), id="stride2x3-pad1x2"),
    pytest.param((1, 7, 6, 2), (2, 2), 3, ((0, 2), (1, 0)), id="stride3-gaps-pad-b2l1"),
    pytest.param((2, 5, 6, 2), (4, 2), 2, "same", id="stride2-same-even-kernel"),
]

# Pooling windows that overlap (stride < pool), so one input can be the max of several.
POOL_GEOMETRIES = GEOMETRIES + [
    pytest.param((2, 6, 5, 2), (3, 3), (2, 1), ((1, 0), (0, 1)), id="overlap-stride2x1-pad-t1r1"),
]


# --------------------------------------------------------------------------
# 1. Backward passes against finite differences
# --------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, f, stride, padding", GEOMETRIES)
def test_conv2d_backward_dx_matches_finite_differences(x_shape, f, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(f + (x_shape[3], 3))
    b = rng.standard_normal(3)
    z = reference.conv2d(x, w, b, stride=stride, padding=padding)
    g = rng.standard_normal(z.shape)

    dx, _, _ = reference.conv2d_backward(g, x, w, stride=stride, padding=padding)

    expected = numerical_gradient(
        lambda x_: np.sum(reference.conv2d(x_, w, b, stride=stride, padding=padding) * g), x)
    assert_allclose(dx, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("x_shape, f, stride, padding", GEOMETRIES)
def test_conv2d_backward_dw_matches_finite_differences(x_shape, f, stride, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(f + (x_shape[3], 3))
    b = rng.standard_normal(3)
    z = reference.conv2d(x, w, b, stride=stride, padding=padding)
    g = rng.standard_normal(z.shape)

    _, dw, _ = reference.conv2d_backward(g, x, w, stride=stride, padding=padding)

    expected = numerical_gradient(
        lambda w_: np.sum(reference.conv2d(x, w_, b, stride=stride, padding=padding) * g), w)
    assert_allclose(dw, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("x_shape, f, stride, padding", GEOMETRIES)
def test_conv2d_backward_db_matches_finite_differences(x_shape, f, stride, padding):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(f + (x_shape[3], 3))
    b = rng.standard_normal(3)
    z = reference.conv2d(x, w, b, stride=stride, padding=padding)
    g = rng.standard_normal(z.shape)

    _, _, db = reference.conv2d_backward(g, x, w, stride=stride, padding=padding)

    expected = numerical_gradient(
        lambda b_: np.sum(reference.conv2d(x, w, b_, stride=stride, padding=padding) * g), b)
    assert db.shape == (3,)
    assert_allclose(db, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("x_shape, pool_size, stride, padding", POOL_GEOMETRIES)
def test_max_pool2d_backward_matches_finite_differences(x_shape, pool_size, stride, padding):
    rng = np.random.default_rng(3)
    x = distinct_values(rng, x_shape)
    p = reference.max_pool2d(x, pool_size, stride=stride, padding=padding)
    g = rng.standard_normal(p.shape)

    dx = reference.max_pool2d_backward(g, x, pool_size, stride=stride, padding=padding)

    def loss(x_):
        p_ = reference.max_pool2d(x_, pool_size, stride=stride, padding=padding)
        # A window lying entirely in the padding outputs -inf and has no input to differentiate.
        return np.sum(np.where(p_ == -np.inf, 0.0, p_) * g)

    expected = numerical_gradient(loss, x)
    assert_allclose(dx, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("x_shape, pool_size, stride, padding", POOL_GEOMETRIES)
def test_avg_pool2d_backward_matches_finite_differences(
        x_shape, pool_size, stride, padding, count_include_pad):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape)
    kwargs = dict(stride=stride, padding=padding, count_include_pad=count_include_pad)
    p = reference.avg_pool2d(x, pool_size, **kwargs)
    g = rng.standard_normal(p.shape)

    dx = reference.avg_pool2d_backward(g, x.shape, pool_size, **kwargs)

    expected = numerical_gradient(
        lambda x_: np.sum(reference.avg_pool2d(x_, pool_size, **kwargs) * g), x)
    assert_allclose(dx, expected, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------
# 2. The notes' worked numbers
# --------------------------------------------------------------------------

NOTES_FILTER = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)
NOTES_WINDOW_BLUE = [[3, 4, 5], [1, 0, 8], [2, 3, 4]]
NOTES_WINDOW_VIOLET = [[2, 7, 3], [5, 6, 1], [4, 4, 2]]


@pytest.mark.parametrize("window, expected", [
    pytest.param(NOTES_WINDOW_BLUE, -18.0, id="blue"),
    pytest.param(NOTES_WINDOW_VIOLET, 9.0, id="violet"),
])
def test_conv2d_reproduces_notes_worked_windows(window, expected):
    x = np.array(window, dtype=np.float64).reshape(1, 3, 3, 1)
    w = NOTES_FILTER.reshape(3, 3, 1, 1)

    z = reference.conv2d(x, w)

    assert z.shape == (1, 1, 1, 1)
    assert_array_equal(z, expected)


def test_conv2d_strides_over_both_notes_windows_side_by_side():
    x = np.hstack([NOTES_WINDOW_BLUE, NOTES_WINDOW_VIOLET]).astype(np.float64).reshape(1, 3, 6, 1)
    w = NOTES_FILTER.reshape(3, 3, 1, 1)

    z = reference.conv2d(x, w, stride=3)

    assert_array_equal(z[0, :, :, 0], [[-18.0, 9.0]])


@pytest.mark.parametrize("window, expected", [
    pytest.param(NOTES_WINDOW_BLUE, 10 / 3, id="blue"),
    pytest.param(NOTES_WINDOW_VIOLET, 34 / 9, id="violet"),
])
def test_avg_pool2d_reproduces_notes_worked_windows(window, expected):
    x = np.array(window, dtype=np.float64).reshape(1, 3, 3, 1)

    p = reference.avg_pool2d(x, 3)

    assert p.shape == (1, 1, 1, 1)
    assert_allclose(p, expected, rtol=1e-15)


# --------------------------------------------------------------------------
# 3a. Forward values against an independent sliding-window formulation
# --------------------------------------------------------------------------

def _pads_by_hand(x_shape, padding):
    """The padding of GEOMETRIES spelled out as ((top, bottom), (left, right))."""
    if padding == "same":
        # The only "same" geometry: n_H 5, f_h 4, s 2 -> out 3, total 3 -> (1, 2);
        # n_W 6, f_w 2, s 2 -> out 3, total 0.
        assert x_shape == (2, 5, 6, 2)
        return (1, 2), (0, 0)
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if isinstance(padding[0], int):
        return (padding[0], padding[0]), (padding[1], padding[1])
    return padding


def _windows(x, pads, f, stride, pad_value):
    """All windows of ``x``, shape (m, n_H, n_W, C, f_h, f_w), by sliding_window_view."""
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    x_pad = np.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),), constant_values=pad_value)
    return sliding_window_view(x_pad, f, axis=(1, 2))[:, ::s_h, ::s_w]


@pytest.mark.parametrize("x_shape, f, stride, padding", GEOMETRIES)
def test_conv2d_matches_sliding_window_einsum(x_shape, f, stride, padding):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(f + (x_shape[3], 3))
    b = rng.standard_normal(3)
    pads = _pads_by_hand(x_shape, padding)

    z = reference.conv2d(x, w, b, stride=stride, padding=padding)

    expected = np.einsum("ihwcab,abcd->ihwd", _windows(x, pads, f, stride, 0.0), w) + b
    assert_allclose(z, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, f, stride, padding", POOL_GEOMETRIES)
def test_pools_match_sliding_window_max_and_mean(x_shape, f, stride, padding):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(x_shape)
    pads = _pads_by_hand(x_shape, padding)

    p_max = reference.max_pool2d(x, f, stride=stride, padding=padding)
    p_avg = reference.avg_pool2d(x, f, stride=stride, padding=padding)

    assert_allclose(p_max, _windows(x, pads, f, stride, -np.inf).max(axis=(4, 5)), rtol=0)
    assert_allclose(p_avg, _windows(x, pads, f, stride, 0.0).mean(axis=(4, 5)), rtol=1e-12)


# --------------------------------------------------------------------------
# 3b. Output shapes for every padding form
# --------------------------------------------------------------------------

# x is (1, 7, 8, 2). Each case gives the padding spelled out by hand as
# ((top, bottom), (left, right)) -- for "same": total = max((ceil(n / s) - 1) * s + f - n, 0),
# top = total // 2 -- and the expected (n_H, n_W).
SHAPE_CASES = [
    pytest.param((3, 3), 1, 0, ((0, 0), (0, 0)), (5, 6), id="int0"),
    pytest.param((3, 3), 2, 2, ((2, 2), (2, 2)), (5, 5), id="int2-stride2"),
    pytest.param((3, 2), (2, 3), (1, 2), ((1, 1), (2, 2)), (4, 4), id="pair-stride2x3"),
    pytest.param((2, 4), 2, ((0, 1), (3, 0)), ((0, 1), (3, 0)), (4, 4), id="nested-asymmetric"),
    pytest.param((2, 4), 2, [[0, 1], [3, 0]], ((0, 1), (3, 0)), (4, 4), id="nested-lists"),
    pytest.param((4, 2), 2, "valid", ((0, 0), (0, 0)), (2, 4), id="valid"),
    pytest.param((2, 4), 2, "same", ((0, 1), (1, 1)), (4, 4), id="same-even-kernel-stride2"),
    pytest.param((4, 4), 1, "same", ((1, 2), (1, 2)), (7, 8), id="same-even-kernel-stride1"),
    pytest.param((2, 2), 3, "same", ((0, 1), (0, 0)), (3, 3), id="same-stride3"),
]

POOLS = [
    pytest.param(reference.max_pool2d, id="max"),
    pytest.param(reference.avg_pool2d, id="avg"),
]


def _formula(n, f, s, pads):
    begin, end = pads
    return (n + begin + end - f) // s + 1


@pytest.mark.parametrize("f, stride, padding, pads, expected", SHAPE_CASES)
def test_conv2d_output_shape_matches_formula(f, stride, padding, pads, expected):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 7, 8, 2))
    w = rng.standard_normal(f + (2, 5))
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride

    z = reference.conv2d(x, w, stride=stride, padding=padding)

    assert expected == (_formula(7, f[0], s_h, pads[0]), _formula(8, f[1], s_w, pads[1]))
    assert z.shape == (1,) + expected + (5,)
    assert_array_equal(z, reference.conv2d(x, w, stride=stride, padding=pads))


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("f, stride, padding, pads, expected", SHAPE_CASES)
def test_pool_output_shape_matches_formula(pool, f, stride, padding, pads, expected):
    x = np.random.default_rng(8).standard_normal((1, 7, 8, 2))

    p = pool(x, f, stride=stride, padding=padding)

    assert p.shape == (1,) + expected + (2,)
    assert_array_equal(p, pool(x, f, stride=stride, padding=pads))


@pytest.mark.parametrize("pool", POOLS)
def test_pool_stride_defaults_to_pool_size(pool):
    x = np.random.default_rng(9).standard_normal((1, 7, 8, 2))

    p = pool(x, (2, 3))

    assert p.shape == (1, 3, 2, 2)
    assert_array_equal(p, pool(x, (2, 3), stride=(2, 3)))


@pytest.mark.parametrize("n, f, s, pads", [
    pytest.param(7, 4, 2, (1, 2), id="odd-total-extra-at-end"),
    pytest.param(6, 4, 1, (1, 2), id="stride1-even-kernel"),
    pytest.param(8, 2, 2, (0, 0), id="zero-total"),
    pytest.param(8, 1, 3, (0, 0), id="negative-total-clipped"),
    pytest.param(5, 3, 2, (1, 1), id="odd-kernel"),
])
def test_same_padding_is_tensorflow_split(n, f, s, pads):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, n, n + 1, 2))
    w = rng.standard_normal((f, 1, 2, 3))
    explicit = (pads, (0, 0))  # width: f_w 1 with stride s needs no padding in these cases

    assert_array_equal(reference.conv2d(x, w, stride=(s, 1), padding="same"),
                       reference.conv2d(x, w, stride=(s, 1), padding=explicit))
    assert_array_equal(reference.max_pool2d(x, (f, 1), stride=(s, 1), padding="same"),
                       reference.max_pool2d(x, (f, 1), stride=(s, 1), padding=explicit))
    assert reference.conv2d(x, w, stride=(s, 1), padding="same").shape[1] == -(-n // s)


@pytest.mark.parametrize("padding, canonical", [
    pytest.param(2, ((2, 2), (2, 2)), id="int"),
    pytest.param((1, 2), ((1, 1), (2, 2)), id="pair"),
    pytest.param([1, 2], ((1, 1), (2, 2)), id="list-pair"),
    pytest.param(np.int64(1), ((1, 1), (1, 1)), id="numpy-int"),
    pytest.param("valid", ((0, 0), (0, 0)), id="valid"),
])
def test_padding_forms_equal_their_nested_spelling(padding, canonical):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 5, 6, 2))
    w = rng.standard_normal((3, 2, 2, 3))

    assert_array_equal(reference.conv2d(x, w, stride=2, padding=padding),
                       reference.conv2d(x, w, stride=2, padding=canonical))
    assert_array_equal(reference.max_pool2d(x, 2, stride=1, padding=padding),
                       reference.max_pool2d(x, 2, stride=1, padding=canonical))
    assert_array_equal(reference.avg_pool2d(x, 2, stride=1, padding=padding),
                       reference.avg_pool2d(x, 2, stride=1, padding=canonical))


# --------------------------------------------------------------------------
# 3c. Dtype promotion
# --------------------------------------------------------------------------

@pytest.mark.parametrize("x_dtype, w_dtype, expected", [
    (np.float32, np.float32, np.float32),
    (np.float32, np.float64, np.float64),
    (np.float64, np.float32, np.float64),
    (np.int64, np.int64, np.float64),
    (np.int8, np.int8, np.float64),
    (np.int32, np.float32, np.float64),
    (np.bool_, np.bool_, np.float64),
])
def test_conv2d_result_dtype_follows_promotion(x_dtype, w_dtype, expected):
    rng = np.random.default_rng(12)
    x = rng.integers(0, 3, (1, 4, 4, 2)).astype(x_dtype)
    w = rng.integers(0, 3, (2, 2, 2, 3)).astype(w_dtype)
    dz = np.ones((1, 3, 3, 3), dtype=x_dtype)

    z = reference.conv2d(x, w)
    dx, dw, db = reference.conv2d_backward(dz, x, w)

    assert z.dtype == expected
    assert (dx.dtype, dw.dtype, db.dtype) == (expected,) * 3
    assert_allclose(z, reference.conv2d(x.astype(np.float64), w.astype(np.float64)), rtol=1e-6)


def test_conv2d_bias_takes_part_in_dtype_promotion():
    x = np.ones((1, 3, 3, 1), dtype=np.float32)
    w = np.ones((2, 2, 1, 2), dtype=np.float32)

    assert reference.conv2d(x, w, np.ones(2, dtype=np.float32)).dtype == np.float32
    assert reference.conv2d(x, w, np.ones(2, dtype=np.float64)).dtype == np.float64
    assert reference.conv2d(x, w, np.ones(2, dtype=np.int64)).dtype == np.float64


@pytest.mark.parametrize("x_dtype, expected", [
    (np.float32, np.float32),
    (np.float64, np.float64),
    (np.int64, np.float64),
    (np.uint8, np.float64),
    (np.bool_, np.float64),
])
def test_pool_result_dtype_follows_promotion(x_dtype, expected):
    x = np.random.default_rng(13).integers(0, 2, (1, 4, 4, 2)).astype(x_dtype)
    dp = np.ones((1, 2, 2, 2), dtype=x_dtype)

    assert reference.max_pool2d(x, 2).dtype == expected
    assert reference.avg_pool2d(x, 2).dtype == expected
    assert reference.max_pool2d_backward(dp, x, 2).dtype == expected
    assert reference.avg_pool2d_backward(dp, x.shape, 2).dtype == expected


def test_avg_pool2d_of_integers_is_exact_float_mean():
    x = np.array([[1, 2], [3, 5]], dtype=np.int64).reshape(1, 2, 2, 1)

    assert_array_equal(reference.avg_pool2d(x, 2), [[[[2.75]]]])


# --------------------------------------------------------------------------
# 3d. Bias
# --------------------------------------------------------------------------

def test_conv2d_bias_shapes_c_out_and_notes_1_1_1_c_out_agree():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 5, 5, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal(4)

    z_flat = reference.conv2d(x, w, b, stride=2, padding=1)
    z_notes = reference.conv2d(x, w, b.reshape(1, 1, 1, 4), stride=2, padding=1)
    z_none = reference.conv2d(x, w, None, stride=2, padding=1)

    assert_array_equal(z_flat, z_notes)
    assert_allclose(z_flat - z_none, np.broadcast_to(b, z_flat.shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("b_shape", [(3,), (1, 4), (4, 1), (1, 1, 4)])
def test_conv2d_rejects_other_bias_shapes(b_shape):
    x = np.ones((1, 3, 3, 1))
    w = np.ones((2, 2, 1, 4))

    with pytest.raises(ValueError, match="b must have shape"):
        reference.conv2d(x, w, np.ones(b_shape))


# --------------------------------------------------------------------------
# 3e. Max-pool: ties, NaN, padding
# --------------------------------------------------------------------------

@pytest.mark.parametrize("window, first_max", [
    pytest.param([[0.0, 0.0], [0.0, 0.0]], (0, 0), id="all-zeros"),
    pytest.param([[1.0, 5.0], [5.0, 2.0]], (0, 1), id="tie-across-rows"),
    pytest.param([[-3.0, -1.0], [-2.0, -1.0]], (0, 1), id="tie-negative"),
])
def test_max_pool2d_backward_gives_tied_gradient_to_first_maximum_only(window, first_max):
    x = np.array(window).reshape(1, 2, 2, 1)
    dp = np.full((1, 1, 1, 1), 3.0)

    dx = reference.max_pool2d_backward(dp, x, 2)

    expected = np.zeros((2, 2))
    expected[first_max] = 3.0
    assert_array_equal(dx[0, :, :, 0], expected)
    assert_array_equal(reference.max_pool2d(x, 2), [[[[np.max(window)]]]])


def test_max_pool2d_backward_accumulates_over_overlapping_windows():
    x = np.array([[1.0, 9.0, 2.0], [3.0, 4.0, 5.0]]).reshape(1, 2, 3, 1)
    dp = np.array([2.0, 7.0]).reshape(1, 1, 2, 1)

    dx = reference.max_pool2d_backward(dp, x, 2, stride=1)

    assert_array_equal(dx[0, :, :, 0], [[0.0, 9.0, 0.0], [0.0, 0.0, 0.0]])


def test_max_pool2d_propagates_nan_and_routes_gradient_to_first_nan():
    x = np.array([[1.0, np.nan, 3.0, 4.0],
                  [np.nan, 2.0, 8.0, 5.0]]).reshape(1, 2, 4, 1)
    dp = np.array([2.0, 3.0]).reshape(1, 1, 2, 1)

    p = reference.max_pool2d(x, 2)
    dx = reference.max_pool2d_backward(dp, x, 2)

    assert_array_equal(p[0, 0, :, 0], [np.nan, 8.0])
    assert_array_equal(dx[0, :, :, 0], [[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])


def test_max_pool2d_never_selects_padding_even_over_real_minus_inf():
    x = np.full((1, 1, 1, 1), -np.inf)
    dp = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)

    p = reference.max_pool2d(x, 2, stride=1, padding=1)
    dx = reference.max_pool2d_backward(dp, x, 2, stride=1, padding=1)

    assert_array_equal(p, np.full((1, 2, 2, 1), -np.inf))
    assert_array_equal(dx, [[[[10.0]]]])


def test_max_pool2d_selects_real_negative_values_over_padding():
    x = np.array([[-5.0, -7.0], [-6.0, -8.0]]).reshape(1, 2, 2, 1)

    p = reference.max_pool2d(x, 2, stride=2, padding=1)

    assert_array_equal(p[0, :, :, 0], [[-5.0, -7.0], [-6.0, -8.0]])


# --------------------------------------------------------------------------
# 3f. Windows entirely in the padding, and count_include_pad
# --------------------------------------------------------------------------

# x = [4, 6] down a column, pool (2, 1), stride 1, two rows of padding on top:
# windows cover rows [-2, -1] (padding only), [-1, 0] and [0, 1].
PADDING_ONLY_KW = dict(stride=1, padding=((2, 0), (0, 0)))


def test_pools_of_window_entirely_in_padding():
    x = np.array([4.0, 6.0]).reshape(1, 2, 1, 1)

    p_max = reference.max_pool2d(x, (2, 1), **PADDING_ONLY_KW)
    p_incl = reference.avg_pool2d(x, (2, 1), **PADDING_ONLY_KW, count_include_pad=True)
    p_excl = reference.avg_pool2d(x, (2, 1), **PADDING_ONLY_KW, count_include_pad=False)

    assert_array_equal(p_max[0, :, 0, 0], [-np.inf, 4.0, 6.0])
    assert_array_equal(p_incl[0, :, 0, 0], [0.0, 2.0, 5.0])
    assert_array_equal(p_excl[0, :, 0, 0], [0.0, 4.0, 5.0])


def test_pool_backward_of_window_entirely_in_padding_passes_nothing():
    x = np.array([4.0, 6.0]).reshape(1, 2, 1, 1)
    dp = np.array([100.0, 2.0, 4.0]).reshape(1, 3, 1, 1)

    dx_max = reference.max_pool2d_backward(dp, x, (2, 1), **PADDING_ONLY_KW)
    dx_incl = reference.avg_pool2d_backward(dp, x.shape, (2, 1), **PADDING_ONLY_KW,
                                            count_include_pad=True)
    dx_excl = reference.avg_pool2d_backward(dp, x.shape, (2, 1), **PADDING_ONLY_KW,
                                            count_include_pad=False)

    assert_array_equal(dx_max[0, :, 0, 0], [2.0, 4.0])
    assert_array_equal(dx_incl[0, :, 0, 0], [1.0 + 2.0, 2.0])
    assert_array_equal(dx_excl[0, :, 0, 0], [2.0 + 2.0, 2.0])


# x = 1..9 in a 3x3 image, pool 2, stride 2, one row on top and one column on the left:
# window (0, 0) holds 1; (0, 1) holds 2, 3; (1, 0) holds 4, 7; (1, 1) holds 5, 6, 8, 9.
@pytest.mark.parametrize("count_include_pad, expected_p, expected_dx", [
    pytest.param(True,
                 [[1 / 4, 5 / 4], [11 / 4, 28 / 4]],
                 [[1 / 4] * 3] * 3,
                 id="divide-by-4"),
    pytest.param(False,
                 [[1 / 1, 5 / 2], [11 / 2, 28 / 4]],
                 [[1, 1 / 2, 1 / 2], [1 / 2, 1 / 4, 1 / 4], [1 / 2, 1 / 4, 1 / 4]],
                 id="divide-by-real-count"),
])
def test_avg_pool2d_count_include_pad_on_padded_example(count_include_pad, expected_p,
                                                        expected_dx):
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    kwargs = dict(stride=2, padding=((1, 0), (1, 0)), count_include_pad=count_include_pad)

    p = reference.avg_pool2d(x, 2, **kwargs)
    dx = reference.avg_pool2d_backward(np.ones_like(p), x.shape, 2, **kwargs)

    assert_allclose(p[0, :, :, 0], expected_p, rtol=1e-15)
    assert_allclose(dx[0, :, :, 0], expected_dx, rtol=1e-15)


# --------------------------------------------------------------------------
# 3g. Inputs are never modified, outputs are new arrays
# --------------------------------------------------------------------------

def _calls(rng):
    x = rng.standard_normal((2, 5, 6, 3))
    x[0, 1, 2, 0] = np.nan
    w = rng.standard_normal((3, 2, 3, 4))
    b = rng.standard_normal((1, 1, 1, 4))
    dz = rng.standard_normal((2, 3, 4, 4))
    dp = rng.standard_normal((2, 3, 4, 3))
    conv = dict(stride=2, padding=((1, 1), (2, 1)))
    pool = dict(stride=2, padding=1)
    return {
        "conv2d": (reference.conv2d, (x, w, b), conv),
        "conv2d_backward": (reference.conv2d_backward, (dz, x, w), conv),
        "max_pool2d": (reference.max_pool2d, (x, 2), pool),
        "max_pool2d_backward": (reference.max_pool2d_backward, (dp, x, 2), pool),
        "avg_pool2d": (reference.avg_pool2d, (x, 2), dict(pool, count_include_pad=False)),
        "avg_pool2d_backward": (reference.avg_pool2d_backward, (dp, x.shape, 2),
                                dict(pool, count_include_pad=False)),
    }


@pytest.mark.parametrize("name", [
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward",
])
def test_function_leaves_inputs_unmodified_and_returns_new_arrays(name):
    func, args, kwargs = _calls(np.random.default_rng(15))[name]
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False  # any in-place write now raises

    result = func(*args, **kwargs)

    for a, original in zip(arrays, copies):
        assert_array_equal(a, original)
    results = result if isinstance(result, tuple) else (result,)
    for r in results:
        assert r.flags.writeable
        assert not any(np.shares_memory(r, a) for a in arrays)


# --------------------------------------------------------------------------
# 3h. Bad arguments say what is wrong
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    pytest.param(dict(padding=-1), ValueError, "padding must be >= 0", id="negative-padding"),
    pytest.param(dict(padding=((0, 1), (-1, 0))), ValueError, "padding must be >= 0",
                 id="negative-side"),
    pytest.param(dict(padding="full"), ValueError, "'valid' or 'same'", id="unknown-string"),
    pytest.param(dict(padding=(1, 2, 3)), ValueError, "2 entries", id="three-entries"),
    pytest.param(dict(stride=0), ValueError, "stride must be >= 1", id="zero-stride"),
    pytest.param(dict(stride=1.5), TypeError, "stride must be an integer", id="float-stride"),
])
def test_conv2d_rejects_bad_stride_and_padding(kwargs, error, match):
    with pytest.raises(error, match=match):
        reference.conv2d(np.ones((1, 4, 4, 1)), np.ones((2, 2, 1, 1)), **kwargs)


def test_window_larger_than_padded_input_is_rejected():
    with pytest.raises(ValueError, match="smaller than the window"):
        reference.conv2d(np.ones((1, 2, 5, 1)), np.ones((4, 2, 1, 1)), padding=(0, 1))
    with pytest.raises(ValueError, match="smaller than the window"):
        reference.max_pool2d(np.ones((1, 5, 2, 1)), 3)


def test_backward_rejects_gradient_of_wrong_shape():
    x = np.ones((1, 4, 4, 1))
    with pytest.raises(ValueError, match="dz must have the forward output's shape"):
        reference.conv2d_backward(np.ones((1, 4, 4, 1)), x, np.ones((2, 2, 1, 1)))
    with pytest.raises(ValueError, match="dp must have the forward output's shape"):
        reference.max_pool2d_backward(np.ones((1, 3, 3, 1)), x, 2)
    with pytest.raises(ValueError, match="dp must have the forward output's shape"):
        reference.avg_pool2d_backward(np.ones((1, 3, 3, 1)), x.shape, 2)


def test_conv2d_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="input channels"):
        reference.conv2d(np.ones((1, 4, 4, 3)), np.ones((2, 2, 2, 1)))
