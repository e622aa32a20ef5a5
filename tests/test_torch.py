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
