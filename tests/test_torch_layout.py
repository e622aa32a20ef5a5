"""layout="NCHW" and cyconv.compat.cs231n against PyTorch CPU (skipped without torch).

Under NCHW cyconv takes PyTorch's own layouts (activations (m, C, H, W),
filters (C_out, C_in, f_h, f_w)), so arrays go to torch untransposed.
"""
import numpy as np
import pytest

import cyconv
from cyconv.compat import cs231n

torch = pytest.importorskip("torch")
F = torch.nn.functional

CASES = [  # x (NCHW), w (OIHW), stride, padding
    ((2, 3, 7, 9), (5, 3, 3, 3), 1, 1),
    ((3, 4, 10, 8), (6, 4, 5, 3), (2, 1), (2, 1)),
    ((1, 2, 11, 11), (3, 2, 4, 4), 3, 0),
]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


@pytest.mark.parametrize("case", CASES, ids=["0", "1", "2"])
def test_nchw_conv2d_and_gradients_match_torch(case, dtype, level):
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    z = cyconv.conv2d(x, w, b, stride=stride, padding=padding, layout="NCHW")
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    zt = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    np.testing.assert_allclose(z, zt.detach().numpy(), **TOL[dtype])
    dz = rng.standard_normal(z.shape).astype(dtype)
    zt.backward(torch.tensor(dz))
    dx, dw, db = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding, layout="NCHW")
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(dw, wt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL[dtype])


def test_cs231n_layers_match_torch(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 9, 9)).astype(dtype)
    w = rng.standard_normal((6, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    out, cache = cs231n.conv_forward_fast(x, w, b, {"stride": 2, "pad": 1})
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    zt = F.conv2d(xt, wt, bt, stride=2, padding=1)
    pt = F.max_pool2d(zt, 3, stride=2)
    p, pool_cache = cs231n.max_pool_forward_fast(out, {"pool_height": 3, "pool_width": 3,
                                                       "stride": 2})
    np.testing.assert_allclose(p, pt.detach().numpy(), **TOL[dtype])
    dp = rng.standard_normal(p.shape).astype(dtype)
    pt.backward(torch.tensor(dp))
    dx, dw, db = cs231n.conv_backward_fast(cs231n.max_pool_backward_fast(dp, pool_cache), cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(dw, wt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL[dtype])


def test_cs231n_naive_max_pool_ties_go_where_torchs_do():
    x = np.zeros((1, 2, 4, 4))   # every window ties
    out, cache = cs231n.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2,
                                                   "stride": 2})
    dout = np.arange(1.0, 9.0).reshape(out.shape)
    xt = torch.tensor(x, requires_grad=True)
    F.max_pool2d(xt, 2).backward(torch.tensor(dout))
    np.testing.assert_array_equal(cs231n.max_pool_backward_naive(dout, cache), xt.grad.numpy())
