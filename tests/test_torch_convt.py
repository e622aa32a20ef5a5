"""Dilated, grouped (depthwise) and transposed convolutions against PyTorch CPU, at every
CPU level (skipped where torch is not installed).

Weight layouts: cyconv's filters are (f_h, f_w, C_in / groups, C_out) for conv2d and
(f_h, f_w, C_out / groups, C_in) for conv_transpose2d; PyTorch's are (C_out, C_in / groups,
f_h, f_w) and (C_in, C_out / groups, f_h, f_w): both are ``w.transpose(3, 2, 0, 1)``.
"""
import numpy as np
import pytest

import cyconv

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}

CONV_CASES = [  # x shape, (f_h, f_w), C_out, stride, padding, dilation, groups
    ((2, 9, 10, 4), (3, 3), 6, 1, 1, 2, 1),
    ((2, 11, 9, 6), (3, 3), 4, (2, 1), (2, 1), (2, 3), 2),
    ((2, 10, 9, 8), (3, 3), 8, 1, 1, 1, 8),
    ((2, 10, 9, 8), (3, 3), 8, 2, 1, 1, 8),
    ((1, 7, 8, 3), (2, 2), 6, 1, 0, 3, 3),
    ((2, 8, 9, 16), (3, 3), 32, 1, 1, 1, 4),
]
TRANSPOSE_CASES = [  # x shape, (f_h, f_w), C_out, stride, padding, output_padding, dilation, groups
    ((2, 5, 6, 6), (4, 4), 4, 2, 1, 0, 1, 1),
    ((2, 4, 5, 4), (3, 3), 6, 2, 1, 1, 1, 2),
    ((1, 5, 4, 4), (3, 2), 4, (3, 2), (2, 0), (2, 1), (1, 2), 4),
    ((2, 3, 3, 3), (3, 3), 2, 1, 0, 1, 2, 1),
    ((1, 6, 5, 8), (5, 5), 8, 2, 2, 1, 1, 1),
]


def _t(a):
    """NHWC array -> NCHW tensor with gradients."""
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), requires_grad=True)


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _w(a):
    return torch.tensor(np.ascontiguousarray(a.transpose(3, 2, 0, 1)), requires_grad=True)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_with_dilation_and_groups_matches_torch(case, dtype, level):
    x_shape, (f_h, f_w), c_out, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((f_h, f_w, x_shape[3] // groups, c_out)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    z = cyconv.conv2d(x, w, b, **kw)
    dz = rng.standard_normal(z.shape).astype(dtype)
    dx, dw, db = cyconv.conv2d_backward(dz, x, w, **kw)

    xt, wt, bt = _t(x), _w(w), torch.tensor(b, requires_grad=True)
    zt = F.conv2d(xt, wt, bt, stride=_pair(stride), padding=_pair(padding),
                  dilation=_pair(dilation), groups=groups)
    zt.backward(torch.tensor(np.ascontiguousarray(dz.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(z, _nhwc(zt), **TOL[dtype])
    np.testing.assert_allclose(dx, _nhwc(xt.grad), **TOL[dtype])
    np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), **TOL[dtype])
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
def test_conv_transpose2d_and_backward_match_torch(case, dtype, level):
    x_shape, (f_h, f_w), c_out, stride, padding, output_padding, dilation, groups = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((f_h, f_w, c_out // groups, x_shape[3])).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    kw = dict(stride=stride, padding=padding, output_padding=output_padding,
              dilation=dilation, groups=groups)
    y = cyconv.conv_transpose2d(x, w, b, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = cyconv.conv_transpose2d_backward(dy, x, w, **kw)

    xt, wt, bt = _t(x), _w(w), torch.tensor(b, requires_grad=True)
    yt = F.conv_transpose2d(xt, wt, bt, stride=_pair(stride), padding=_pair(padding),
                            output_padding=_pair(output_padding), groups=groups,
                            dilation=_pair(dilation))
    yt.backward(torch.tensor(np.ascontiguousarray(dy.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(y, _nhwc(yt), **TOL[dtype])
    np.testing.assert_allclose(dx, _nhwc(xt.grad), **TOL[dtype])
    np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), **TOL[dtype])
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL[dtype])
