"""cyconv against PyTorch CPU, the correctness peer (skipped where torch is not installed).

PyTorch has no "same" padding for strided convolutions and only symmetric
padding, so the cases here use symmetric integer padding; the first-maximum
tie rule of max-pool backward matches PyTorch's, checked on a window full of ties.
"""
import numpy as np
import pytest

import cyconv

torch = pytest.importorskip("torch")
F = torch.nn.functional

CONV_CASES = [  # x shape, w shape, stride, padding
    ((2, 7, 9, 3), (3, 3, 3, 5), 1, 1),
    ((3, 10, 8, 4), (5, 3, 4, 6), (2, 1), (2, 1)),
    ((1, 11, 11, 2), (4, 4, 2, 3), 3, 0),
]
POOL_CASES = [  # x shape, pool size, stride, padding
    ((2, 8, 8, 5), 2, None, 0),
    ((2, 9, 11, 3), 3, 2, 1),
    ((1, 7, 10, 4), (3, 2), (1, 2), (1, 0)),
]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


def _t(a):
    """NHWC array -> NCHW tensor with gradients."""
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), requires_grad=True)


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_and_backward_match_torch(case, dtype):
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[3]).astype(dtype)
    z = cyconv.conv2d(x, w, b, stride=stride, padding=padding)
    dz = rng.standard_normal(z.shape).astype(dtype)
    dx, dw, db = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding)

    xt = _t(x)
    wt = torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    zt = F.conv2d(xt, wt, bt, stride=_pair(stride), padding=_pair(padding))
    zt.backward(torch.tensor(np.ascontiguousarray(dz.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(z, _nhwc(zt), **TOL[dtype])
    np.testing.assert_allclose(dx, _nhwc(xt.grad), **TOL[dtype])
    np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), **TOL[dtype])
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("kind", ["max", "avg", "avg_exclude_pad"])
def test_pools_and_backward_match_torch(case, kind, dtype):
    x_shape, k, stride, padding = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    s = k if stride is None else stride
    xt = _t(x)
    if kind == "max":
        p = cyconv.max_pool2d(x, k, stride=stride, padding=padding)
        pt = F.max_pool2d(xt, _pair(k), _pair(s), _pair(padding))
    else:
        inc = kind == "avg"
        p = cyconv.avg_pool2d(x, k, stride=stride, padding=padding, count_include_pad=inc)
        pt = F.avg_pool2d(xt, _pair(k), _pair(s), _pair(padding), count_include_pad=inc)
    dp = rng.standard_normal(p.shape).astype(dtype)
    if kind == "max":
        dx = cyconv.max_pool2d_backward(dp, x, k, stride=stride, padding=padding)
    else:
        dx = cyconv.avg_pool2d_backward(dp, x.shape, k, stride=stride, padding=padding,
                                        count_include_pad=inc)
    pt.backward(torch.tensor(np.ascontiguousarray(dp.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(p, _nhwc(pt), **TOL[dtype])
    np.testing.assert_allclose(dx, _nhwc(xt.grad), **TOL[dtype])


def test_max_pool_ties_go_to_the_first_maximum_as_in_torch(dtype):
    x = np.zeros((1, 4, 4, 2), dtype=dtype)  # every window is all ties
    dp = np.arange(1, 9, dtype=dtype).reshape(1, 2, 2, 2)
    dx = cyconv.max_pool2d_backward(dp, x, 2)
    xt = _t(x)
    F.max_pool2d(xt, 2).backward(torch.tensor(np.ascontiguousarray(dp.transpose(0, 3, 1, 2))))
    np.testing.assert_array_equal(dx, _nhwc(xt.grad))
    assert np.count_nonzero(dx) == dp.size


# --------------------------------------------------------------------------
# Issue 16: max-pool dilation, ceil_mode, global pools
# --------------------------------------------------------------------------

GEOMETRY_CASES = [  # x shape, pool size, stride, padding, dilation, ceil_mode
    ((2, 9, 11, 3), 3, 2, 1, 2, False),
    ((1, 10, 10, 4), 2, 1, 0, (2, 3), False),
    ((2, 7, 10, 3), (3, 2), (1, 2), (1, 0), 1, True),
    ((1, 8, 8, 5), 3, 3, 1, 1, True),          # ceil with padding, last window clipped
    ((1, 6, 6, 2), 3, 2, 1, 1, True),          # the ceil window runs past the padding
    ((1, 9, 9, 2), 2, 3, 0, 1, True),          # stride > kernel
    ((1, 5, 5, 2), 2, 3, 1, 1, True),          # the ceil window would start in the padding: dropped
    ((2, 11, 12, 3), 3, 2, 1, 2, True),        # dilation and ceil_mode
    ((1, 11, 11, 2), 2, 5, 1, 3, True),        # dilated, disjoint
    ((1, 2, 3, 2), (2, 4), (1, 2), 0, 1, True),  # a window wider than the input
]


@pytest.mark.parametrize("case", GEOMETRY_CASES, ids=str)
def test_max_pool_dilation_and_ceil_mode_match_torch(case, dtype):
    x_shape, k, stride, padding, d, cm = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=d, ceil_mode=cm)
    p, idx = cyconv.max_pool2d(x, k, return_indices=True, **kw)
    xt = _t(x)
    pt, it = F.max_pool2d(xt, _pair(k), _pair(stride), _pair(padding), dilation=_pair(d),
                          ceil_mode=cm, return_indices=True)
    assert p.shape == _nhwc(pt).shape
    np.testing.assert_array_equal(p, _nhwc(pt))
    # cyconv's tap index -> PyTorch's flat input index (see max_pool2d's docstring)
    (s_h, s_w), (p_h, p_w), (d_h, d_w), f_w = _pair(stride), _pair(padding), _pair(d), _pair(k)[1]
    oh = np.arange(p.shape[1])[None, :, None, None]
    ow = np.arange(p.shape[2])[None, None, :, None]
    ih = oh * s_h - p_h + d_h * (idx // f_w)
    iw = ow * s_w - p_w + d_w * (idx % f_w)
    np.testing.assert_array_equal(ih * x.shape[2] + iw, _nhwc(it))
    dp = rng.standard_normal(p.shape).astype(dtype)
    pt.backward(torch.tensor(np.ascontiguousarray(dp.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(cyconv.max_pool2d_backward(dp, x, k, **kw), _nhwc(xt.grad),
                               **TOL[dtype])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", [c for c in GEOMETRY_CASES if c[4] == 1 and c[5]], ids=str)
def test_avg_pool_ceil_mode_matches_torch(case, count_include_pad, dtype):
    x_shape, k, stride, padding, _, _ = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    kw = dict(stride=stride, padding=padding, ceil_mode=True, count_include_pad=count_include_pad)
    p = cyconv.avg_pool2d(x, k, **kw)
    xt = _t(x)
    pt = F.avg_pool2d(xt, _pair(k), _pair(stride), _pair(padding), ceil_mode=True,
                      count_include_pad=count_include_pad)
    assert p.shape == _nhwc(pt).shape
    np.testing.assert_allclose(p, _nhwc(pt), **TOL[dtype])
    dp = rng.standard_normal(p.shape).astype(dtype)
    pt.backward(torch.tensor(np.ascontiguousarray(dp.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(cyconv.avg_pool2d_backward(dp, x.shape, k, **kw),
                               _nhwc(xt.grad), **TOL[dtype])


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("shape", [(2, 7, 7, 5), (1, 3, 5, 130), (3, 1, 1, 4)], ids=str)
def test_global_pools_match_torch(shape, layout, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    xl = x if layout == "NHWC" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    dp = rng.standard_normal((shape[0], shape[3])).astype(dtype)
    dpt = torch.tensor(dp[:, :, None, None])
    xt = _t(x)
    pt = F.adaptive_avg_pool2d(xt, 1)
    pt.backward(dpt)
    np.testing.assert_allclose(cyconv.global_avg_pool2d(xl, layout=layout), pt.detach()[:, :, 0, 0],
                               **TOL[dtype])
    dx = cyconv.global_avg_pool2d_backward(dp, xl.shape, layout=layout)
    want = xt.grad.numpy() if layout == "NCHW" else _nhwc(xt.grad)
    np.testing.assert_allclose(dx, want, **TOL[dtype])

    xt = _t(x)
    np.testing.assert_array_equal(cyconv.global_max_pool2d(xl, layout=layout),
                                  torch.amax(xt, dim=(2, 3)).detach().numpy())
    pt = F.adaptive_max_pool2d(xt, 1)  # the first maximum takes the gradient, as in cyconv
    pt.backward(dpt)
    dx = cyconv.global_max_pool2d_backward(dp, xl, layout=layout)
    want = xt.grad.numpy() if layout == "NCHW" else _nhwc(xt.grad)
    np.testing.assert_array_equal(dx, want)


def test_global_max_pool_ties_go_to_the_first_maximum_as_in_torch(dtype):
    x = np.zeros((2, 3, 4, 3), dtype=dtype)
    x[1, 2, 1:, 1] = 5  # ties at the maximum
    dp = np.arange(1, 7, dtype=dtype).reshape(2, 3)
    xt = _t(x)
    F.adaptive_max_pool2d(xt, 1).backward(torch.tensor(dp[:, :, None, None]))
    np.testing.assert_array_equal(cyconv.global_max_pool2d_backward(dp, x), _nhwc(xt.grad))
