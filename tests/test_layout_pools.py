"""layout="NCHW" on the pools and the transposed convolution: exactly the NHWC results, transposed.

Each NCHW call transposes its inputs to NHWC, runs the NHWC function and
transposes the results back, so the values must be bit for bit those of the
NHWC call on the transposed arrays, at every CPU level and for both dtypes.
"""
import numpy as np
import pytest

import cyconv


def nchw(a):
    """An NHWC array (m, H, W, C) as NCHW (m, C, H, W), non-contiguous (a view)."""
    return a.transpose(0, 3, 1, 2)


def nhwc(a):
    return a.transpose(0, 2, 3, 1)


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (x shape NHWC, pool_size, keywords): disjoint and overlapping windows,
# padding forms, dilation and ceil_mode passed through.
POOL_CASES = [
    ((2, 8, 8, 3), 2, {}),
    ((2, 9, 7, 5), 3, dict(stride=2, padding=1)),
    ((1, 7, 9, 17), (2, 3), dict(stride=(1, 2), padding="same")),
    ((2, 9, 9, 4), 3, dict(stride=2, ceil_mode=True)),
    ((2, 10, 11, 3), 2, dict(stride=(2, 3), padding=((1, 0), (0, 1)), ceil_mode=True)),
]
MAX_ONLY = [
    ((2, 9, 9, 4), 3, dict(stride=1, dilation=2)),
    ((1, 11, 10, 6), (2, 3), dict(stride=2, dilation=(2, 1), ceil_mode=True)),
]
POOL_IDS = [f"x{c[0]}-f{c[1]}-{sorted(c[2].items())}".replace(" ", "") for c in POOL_CASES]
MAX_IDS = POOL_IDS + [f"x{c[0]}-f{c[1]}-{sorted(c[2].items())}".replace(" ", "")
                      for c in MAX_ONLY]


def _check(actual_nchw, expected_nhwc):
    assert actual_nchw.dtype == expected_nhwc.dtype
    assert actual_nchw.shape == nchw(expected_nhwc).shape
    np.testing.assert_array_equal(actual_nchw, nchw(expected_nhwc))


@pytest.mark.parametrize("case", POOL_CASES + MAX_ONLY, ids=MAX_IDS)
def test_max_pool2d_nchw(case, dtype, level):
    shape, f, kw = case
    x = _rand(shape, dtype)
    _check(cyconv.max_pool2d(nchw(x), f, layout="NCHW", **kw), cyconv.max_pool2d(x, f, **kw))
    p, idx = cyconv.max_pool2d(nchw(x), f, return_indices=True, layout="NCHW", **kw)
    p_ref, idx_ref = cyconv.max_pool2d(x, f, return_indices=True, **kw)
    _check(p, p_ref)
    _check(idx, idx_ref)
    assert idx.dtype == np.int32 and idx.flags.c_contiguous and p.flags.c_contiguous


@pytest.mark.parametrize("case", POOL_CASES + MAX_ONLY, ids=MAX_IDS)
def test_max_pool2d_backward_nchw(case, dtype, level):
    shape, f, kw = case
    x = _rand(shape, dtype)
    x[:, ::2, ::3] = 0.0   # ties: the first-maximum rule must pick the same element
    p, idx = cyconv.max_pool2d(x, f, return_indices=True, **kw)
    dp = _rand(p.shape, dtype, seed=1)
    expected = cyconv.max_pool2d_backward(dp, x, f, **kw)
    x_c = np.ascontiguousarray(nchw(x))
    _check(cyconv.max_pool2d_backward(nchw(dp), x_c, f, layout="NCHW", **kw), expected)
    # the indices round trip: NCHW forward -> NCHW backward
    p_n, idx_n = cyconv.max_pool2d(x_c, f, return_indices=True, layout="NCHW", **kw)
    dx = cyconv.max_pool2d_backward(nchw(dp), x_c, f, indices=idx_n, layout="NCHW", **kw)
    _check(dx, cyconv.max_pool2d_backward(dp, x, f, indices=idx, **kw))
    _check(dx, expected)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_avg_pool2d_nchw(case, count_include_pad, dtype, level):
    shape, f, kw = case
    x = _rand(shape, dtype)
    kw = dict(kw, count_include_pad=count_include_pad)
    _check(cyconv.avg_pool2d(nchw(x), f, layout="NCHW", **kw), cyconv.avg_pool2d(x, f, **kw))


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_avg_pool2d_backward_nchw(case, count_include_pad, dtype, level):
    shape, f, kw = case
    kw = dict(kw, count_include_pad=count_include_pad)
    p = cyconv.avg_pool2d(np.zeros(shape, dtype), f, **kw)
    dp = _rand(p.shape, dtype, seed=2)
    m, h, w, c = shape
    _check(cyconv.avg_pool2d_backward(nchw(dp), (m, c, h, w), f, layout="NCHW", **kw),
           cyconv.avg_pool2d_backward(dp, shape, f, **kw))


# (x shape NHWC, w shape NHWC-form (f_h, f_w, C_out/groups, C_in), keywords)
CT_CASES = [
    ((2, 5, 6, 4), (3, 3, 3, 4), dict(stride=2, padding=1)),
    ((1, 4, 4, 6), (4, 4, 2, 6), dict(stride=2, padding=1, output_padding=1, groups=3)),
    ((2, 5, 4, 3), (2, 3, 5, 3), dict(stride=(1, 2), dilation=(2, 1), padding=(0, 1))),
]
CT_IDS = [f"x{c[0]}-w{c[1]}-{sorted(c[2].items())}".replace(" ", "") for c in CT_CASES]


def torch_w(w):
    """NHWC-form transposed filters (f_h, f_w, C_out/g, C_in) as PyTorch's (C_in, C_out/g, f_h, f_w)."""
    return w.transpose(3, 2, 0, 1)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("case", CT_CASES, ids=CT_IDS)
def test_conv_transpose2d_nchw(case, bias, dtype, level):
    x_shape, w_shape, kw = case
    x, w = _rand(x_shape, dtype), _rand(w_shape, dtype, seed=1)
    c_out = w_shape[2] * kw.get("groups", 1)
    b = _rand((c_out,), dtype, seed=2) if bias else None
    expected = cyconv.conv_transpose2d(x, w, b, **kw)
    _check(cyconv.conv_transpose2d(nchw(x), torch_w(w), b, layout="NCHW", **kw), expected)
    if bias:   # PyTorch-style broadcastable bias
        _check(cyconv.conv_transpose2d(nchw(x), torch_w(w), b.reshape(1, c_out, 1, 1),
                                       layout="NCHW", **kw), expected)
    out = np.empty(nchw(expected).shape, dtype)
    y = cyconv.conv_transpose2d(nchw(x), torch_w(w), b, layout="NCHW", out=out, **kw)
    assert y is out
    _check(out, expected)


@pytest.mark.parametrize("case", CT_CASES, ids=CT_IDS)
def test_conv_transpose2d_backward_nchw(case, dtype, level):
    x_shape, w_shape, kw = case
    x, w = _rand(x_shape, dtype), _rand(w_shape, dtype, seed=1)
    dz = _rand(cyconv.conv_transpose2d(x, w, **kw).shape, dtype, seed=3)
    dx, dw, db = cyconv.conv_transpose2d_backward(dz, x, w, **kw)
    dx_n, dw_n, db_n = cyconv.conv_transpose2d_backward(nchw(dz), nchw(x), torch_w(w),
                                                        layout="NCHW", **kw)
    _check(dx_n, dx)
    assert dw_n.shape == torch_w(dw).shape
    np.testing.assert_array_equal(dw_n, torch_w(dw))
    np.testing.assert_array_equal(db_n, db)
    only = cyconv.conv_transpose2d_backward(nchw(dz), nchw(x), torch_w(w), layout="NCHW",
                                            grads=("dx",), **kw)
    assert only[1] is None and only[2] is None
    _check(only[0], dx)


def test_nchw_inputs_not_modified():
    x = _rand((2, 3, 6, 6), np.float64)
    before = x.copy()
    cyconv.max_pool2d(x, 2, layout="NCHW")
    cyconv.avg_pool2d(x, 2, layout="NCHW")
    cyconv.conv_transpose2d(x, _rand((3, 2, 3, 3), np.float64), layout="NCHW")
    np.testing.assert_array_equal(x, before)


def test_default_layout_is_nhwc():
    x = _rand((1, 4, 4, 2), np.float32)
    np.testing.assert_array_equal(cyconv.max_pool2d(x, 2, layout="NHWC"), cyconv.max_pool2d(x, 2))
    np.testing.assert_array_equal(cyconv.avg_pool2d(x, 2, layout="NHWC"), cyconv.avg_pool2d(x, 2))


@pytest.mark.parametrize("layout", ["nchw", "NCHW ", "CHWN", None, 1, b"NCHW"])
def test_bad_layout_raises(layout):
    x = np.zeros((1, 2, 4, 4))
    w = np.zeros((2, 2, 3, 3))
    calls = [
        lambda: cyconv.max_pool2d(x, 2, layout=layout),
        lambda: cyconv.max_pool2d(x, 2, return_indices=True, layout=layout),
        lambda: cyconv.max_pool2d_backward(np.zeros((1, 2, 2, 2)), x, 2, layout=layout),
        lambda: cyconv.avg_pool2d(x, 2, layout=layout),
        lambda: cyconv.avg_pool2d_backward(np.zeros((1, 2, 2, 2)), x.shape, 2, layout=layout),
        lambda: cyconv.conv_transpose2d(x, w, layout=layout),
        lambda: cyconv.conv_transpose2d_backward(np.zeros((1, 2, 6, 6)), x, w, layout=layout),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="layout"):
            call()


def test_nchw_errors_name_the_layout():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="layout='NCHW'"):
        cyconv.max_pool2d_backward(np.zeros((1, 2, 3, 3)), x, 2, layout="NCHW")
    with pytest.raises(ValueError, match="w.shape\\[0\\]"):
        cyconv.conv_transpose2d(x, np.zeros((3, 2, 3, 3)), layout="NCHW")
    with pytest.raises(TypeError, match="indices"):
        cyconv.max_pool2d_backward(np.zeros((1, 2, 2, 2)), x, 2,
                                   indices=np.zeros((1, 2, 2, 2)), layout="NCHW")


@pytest.mark.parametrize("case", CT_CASES, ids=CT_IDS)
def test_conv_transpose2d_nchw_adjoint_of_conv2d_nchw(case):
    # As in PyTorch: the same (C_in, C_out/groups, f_h, f_w) array is conv2d's
    # OIHW filters of the convolution C_out -> C_in, and the two maps are adjoint.
    x_shape, w_shape, kw = case
    x, w = _rand(x_shape, np.float64), torch_w(_rand(w_shape, np.float64, seed=1))
    y = cyconv.conv_transpose2d(nchw(x), w, layout="NCHW", **kw)
    u = _rand(y.shape, np.float64, seed=4)
    op = kw.get("output_padding", 0)
    p = kw.get("padding", 0)
    p_h, p_w = (p, p) if isinstance(p, int) else p
    conv_kw = dict(stride=kw.get("stride", 1), dilation=kw.get("dilation", 1),
                   groups=kw.get("groups", 1), padding=((p_h, p_h - op), (p_w, p_w - op)))
    z = cyconv.conv2d(u, w, layout="NCHW", **conv_kw)
    assert z.shape == nchw(x).shape
    np.testing.assert_allclose(np.vdot(z, nchw(x)), np.vdot(u, y), rtol=1e-12)
