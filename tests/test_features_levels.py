"""Issue 16's features at every CPU level against cyconv.reference and finite differences,
where the per-feature test files leave gaps (no torch needed).

- ``layout="NCHW"`` of conv2d with dilation and groups, and of conv_transpose2d,
  against the reference run on the NHWC transposes, at every level, with
  finite differences of the NCHW gradients;
- depthwise conv2d (channel multipliers 1 and 2, stride 2, dilation, 5x3
  taps, channel counts on and off the vector width) and conv_transpose2d
  with many channels, forward and backward, at every level;
- the pools' dilation and ceil_mode under NCHW with many channels at every level.
"""
import numpy as np
import pytest
from conftest import assert_close

import cyconv
from cyconv import reference


def _nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _close(actual, desired, dtype):
    # relative to the values' scale, as the sums of many taps round
    scale = max(1.0, float(np.max(np.abs(desired)))) if desired.size else 1.0
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol * scale)


CONV_CASES = [  # x (NHWC), (f_h, f_w), C_out, stride, padding, dilation, groups
    ((2, 10, 9, 6), (3, 3), 4, (2, 1), (2, 1), (2, 3), 2),
    ((2, 9, 11, 32), (3, 3), 32, 1, 1, 1, 32),       # depthwise, one vector width
    ((2, 9, 11, 40), (3, 3), 40, 2, 1, 1, 40),       # depthwise stride 2, a rest of channels
    ((1, 8, 13, 33), (5, 3), 33, 1, (2, 1), 1, 33),  # odd channels, 5x3 taps
    ((2, 9, 9, 16), (3, 3), 32, 1, 2, 2, 16),        # multiplier 2, dilated
    ((1, 7, 8, 24), (3, 3), 48, 2, "same", 1, 24),   # multiplier 2, stride 2, "same"
    ((2, 6, 7, 12), (1, 1), 24, 1, 0, 1, 4),         # grouped pointwise
]
CONV_IDS = [f"x{c[0]}-f{c[1]}-co{c[2]}-s{c[3]}-p{c[4]}-d{c[5]}-g{c[6]}".replace(" ", "")
            for c in CONV_CASES]


def _conv_data(case, dtype, seed=0):
    x_shape, (f_h, f_w), c_out, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal((f_h, f_w, x_shape[3] // groups, c_out))
         / np.sqrt(f_h * f_w * x_shape[3] / groups)).astype(dtype)
    return x, w, rng.standard_normal(c_out).astype(dtype)


def _conv_kw(case):
    _, _, _, stride, padding, dilation, groups = case
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_and_backward_match_reference_in_both_layouts_at_every_level(case, layout,
                                                                             dtype, level):
    x, w, b = _conv_data(case, dtype)
    kw = _conv_kw(case)
    z_ref = reference.conv2d(x, w, b, **kw)
    dz = np.random.default_rng(1).standard_normal(z_ref.shape).astype(dtype)
    grads_ref = reference.conv2d_backward(dz, x, w, **kw)
    if layout == "NHWC":
        z = cyconv.conv2d(x, w, b, **kw)
        dx, dw, db = cyconv.conv2d_backward(dz, x, w, **kw)
    else:
        w_oihw = np.ascontiguousarray(w.transpose(3, 2, 0, 1))
        z = _nhwc(cyconv.conv2d(_nchw(x), w_oihw, b, layout="NCHW", **kw))
        dx, dw, db = cyconv.conv2d_backward(_nchw(dz), _nchw(x), w_oihw, layout="NCHW", **kw)
        dx, dw = _nhwc(dx), np.ascontiguousarray(dw.transpose(2, 3, 1, 0))
    _close(z, z_ref, dtype)
    for got, want in zip((dx, dw, db), grads_ref):
        _close(got, want, dtype)


# x (NHWC), (f_h, f_w), C_out, stride, padding, output_padding, dilation, groups
TRANSPOSE_CASES = [
    ((2, 4, 5, 40), (4, 4), 24, 2, 1, 0, 1, 1),      # many channels
    ((1, 5, 5, 16), (3, 3), 16, 2, 1, 1, 1, 16),     # depthwise transposed
    ((1, 4, 5, 4), (3, 2), 4, (3, 2), (2, 0), (2, 1), (1, 2), 4),
    ((2, 3, 4, 33), (2, 2), 7, 2, 0, 0, 2, 1),       # odd channels, dilated
]
TRANSPOSE_IDS = [
    f"x{c[0]}-f{c[1]}-co{c[2]}-s{c[3]}-p{c[4]}-op{c[5]}-d{c[6]}-g{c[7]}".replace(" ", "")
    for c in TRANSPOSE_CASES]


def _t_data(case, dtype, seed=0):
    x_shape, (f_h, f_w), c_out, _, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal((f_h, f_w, c_out // groups, x_shape[3]))
         / np.sqrt(f_h * f_w * c_out / groups)).astype(dtype)
    return x, w, rng.standard_normal(c_out).astype(dtype)


def _t_kw(case):
    _, _, _, stride, padding, output_padding, dilation, groups = case
    return dict(stride=stride, padding=padding, output_padding=output_padding,
                dilation=dilation, groups=groups)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=TRANSPOSE_IDS)
def test_conv_transpose2d_and_backward_match_reference_in_both_layouts_at_every_level(
        case, layout, dtype, level):
    x, w, b = _t_data(case, dtype)
    kw = _t_kw(case)
    y_ref = reference.conv_transpose2d(x, w, b, **kw)
    dy = np.random.default_rng(2).standard_normal(y_ref.shape).astype(dtype)
    grads_ref = reference.conv_transpose2d_backward(dy, x, w, **kw)
    if layout == "NHWC":
        y = cyconv.conv_transpose2d(x, w, b, **kw)
        dx, dw, db = cyconv.conv_transpose2d_backward(dy, x, w, **kw)
    else:
        w_t = np.ascontiguousarray(w.transpose(3, 2, 0, 1))   # (C_in, C_out/g, f_h, f_w)
        y = _nhwc(cyconv.conv_transpose2d(_nchw(x), w_t, b, layout="NCHW", **kw))
        dx, dw, db = cyconv.conv_transpose2d_backward(_nchw(dy), _nchw(x), w_t, layout="NCHW",
                                                      **kw)
        dx, dw = _nhwc(dx), np.ascontiguousarray(dw.transpose(2, 3, 1, 0))
    _close(y, y_ref, dtype)
    for got, want in zip((dx, dw, db), grads_ref):
        _close(got, want, dtype)


def _finite_differences(loss, arrays, grads, seed, eps=1e-6, samples=4):
    rng = np.random.default_rng(seed)
    for which, (a, g) in enumerate(zip(arrays, grads)):
        for _ in range(samples):
            idx = tuple(int(rng.integers(0, n)) for n in a.shape)
            args = list(arrays)
            plus, minus = a.copy(), a.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args[which] = plus
            lp = loss(*args)
            args[which] = minus
            lm = loss(*args)
            np.testing.assert_allclose((lp - lm) / (2 * eps), g[idx], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[4], CONV_CASES[5]],
                         ids=[CONV_IDS[0], CONV_IDS[4], CONV_IDS[5]])
def test_nchw_conv2d_gradients_are_the_finite_differences(case):
    x, w, b = _conv_data(case, np.float64)
    x, w = _nchw(x), np.ascontiguousarray(w.transpose(3, 2, 0, 1))
    kw = dict(_conv_kw(case), layout="NCHW")
    dz = np.random.default_rng(3).standard_normal(cyconv.conv2d(x, w, b, **kw).shape)
    grads = cyconv.conv2d_backward(dz, x, w, **kw)
    _finite_differences(lambda *a: float(np.sum(cyconv.conv2d(*a, **kw) * dz)), (x, w, b),
                        grads, seed=4)


@pytest.mark.parametrize("case", TRANSPOSE_CASES[1:3], ids=TRANSPOSE_IDS[1:3])
def test_nchw_conv_transpose2d_gradients_are_the_finite_differences(case):
    x, w, b = _t_data(case, np.float64)
    x, w = _nchw(x), np.ascontiguousarray(w.transpose(3, 2, 0, 1))
    kw = dict(_t_kw(case), layout="NCHW")
    dy = np.random.default_rng(5).standard_normal(cyconv.conv_transpose2d(x, w, b, **kw).shape)
    grads = cyconv.conv_transpose2d_backward(dy, x, w, **kw)
    _finite_differences(lambda *a: float(np.sum(cyconv.conv_transpose2d(*a, **kw) * dy)),
                        (x, w, b), grads, seed=6)


POOL_CASES = [  # x (NHWC), pool size, stride, padding, dilation, ceil_mode
    ((2, 9, 9, 40), 2, 2, 0, 1, True),
    ((1, 10, 7, 33), 3, 2, 1, (2, 1), True),
    ((2, 11, 12, 17), 3, 2, 1, 2, False),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_nchw_pools_with_dilation_and_ceil_mode_match_reference_at_every_level(case, dtype,
                                                                               level):
    x_shape, k, stride, padding, d, cm = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(dtype)
    kw = dict(stride=stride, padding=padding, ceil_mode=cm)
    p_ref = reference.max_pool2d(x, k, dilation=d, **kw)
    dp = rng.standard_normal(p_ref.shape).astype(dtype)
    np.testing.assert_array_equal(
        _nhwc(cyconv.max_pool2d(_nchw(x), k, dilation=d, layout="NCHW", **kw)), p_ref)
    assert_close(_nhwc(cyconv.max_pool2d_backward(_nchw(dp), _nchw(x), k, dilation=d,
                                                  layout="NCHW", **kw)),
                 reference.max_pool2d_backward(dp, x, k, dilation=d, **kw), dtype)
    if d == 1:
        for cip in (True, False):
            a_ref = reference.avg_pool2d(x, k, count_include_pad=cip, **kw)
            assert_close(_nhwc(cyconv.avg_pool2d(_nchw(x), k, count_include_pad=cip,
                                                 layout="NCHW", **kw)), a_ref, dtype)
            assert_close(
                _nhwc(cyconv.avg_pool2d_backward(_nchw(dp), _nchw(x).shape, k,
                                                 count_include_pad=cip, layout="NCHW", **kw)),
                reference.avg_pool2d_backward(dp, x.shape, k, count_include_pad=cip, **kw),
                dtype)
