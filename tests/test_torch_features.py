"""Issue 16's features against PyTorch CPU at every CPU level, in both layouts
(skipped where torch is not installed).

Fills what tests/test_torch.py, test_torch_convt.py and test_torch_layout.py
leave out: the pools' dilation and ceil_mode and the global pools at every
level and under ``layout="NCHW"`` (arrays go to torch untransposed); conv2d
with dilation and groups and conv_transpose2d under NCHW; depthwise
convolutions of many channels (the vectorised channel tiles and their rest),
with channel multipliers, stride 2 and dilation, at every level.
"""
import numpy as np
import pytest

import cyconv

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _tensor(a):
    return torch.tensor(np.ascontiguousarray(a), requires_grad=True)


def _to_layout(a_nchw, layout):
    """An NCHW array in ``layout`` (what cyconv is called with)."""
    return a_nchw if layout == "NCHW" else np.ascontiguousarray(a_nchw.transpose(0, 2, 3, 1))


def _from_layout(a, layout):
    """A cyconv result in ``layout`` as NCHW (what torch gives)."""
    return a if layout == "NCHW" else a.transpose(0, 3, 1, 2)


def _conv_w(w_oihw, layout):
    """PyTorch's filters in cyconv's order for ``layout`` (OIHW under NCHW, else HWIO)."""
    return w_oihw if layout == "NCHW" else np.ascontiguousarray(w_oihw.transpose(2, 3, 1, 0))


def _dw_back(dw, layout):
    return dw if layout == "NCHW" else dw.transpose(3, 2, 0, 1)


LAYOUTS = ["NHWC", "NCHW"]

# --------------------------------------------------------------------------
# Pools: dilation, ceil_mode, both layouts, every level
# --------------------------------------------------------------------------

POOL_CASES = [  # x (NCHW), pool size, stride, padding, dilation, ceil_mode
    ((2, 3, 9, 11), 3, 2, 1, 2, False),
    ((2, 3, 7, 10), (3, 2), (1, 2), (1, 0), 1, True),
    ((1, 5, 8, 8), 3, 3, 1, 1, True),
    ((2, 3, 11, 12), 3, 2, 1, 2, True),
    ((1, 2, 2, 3), (2, 4), (1, 2), 0, 1, True),
    ((2, 40, 9, 9), 2, 2, 0, 1, True),          # many channels: the vector tiles and rest
    ((1, 33, 10, 7), 3, 2, 1, (2, 1), True),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool2d_dilation_ceil_mode_match_torch_in_both_layouts(case, layout, dtype, level):
    x_shape, k, stride, padding, d, cm = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=d, ceil_mode=cm, layout=layout)
    xl = _to_layout(x, layout)
    p, idx = cyconv.max_pool2d(xl, k, return_indices=True, **kw)
    xt = _tensor(x)
    pt = F.max_pool2d(xt, _pair(k), _pair(stride), _pair(padding), dilation=_pair(d),
                      ceil_mode=cm)
    np.testing.assert_array_equal(_from_layout(p, layout), pt.detach().numpy())
    dp_nchw = rng.standard_normal(pt.shape).astype(dtype)
    pt.backward(torch.from_numpy(dp_nchw))
    dp = _to_layout(dp_nchw, layout)
    for dx in (cyconv.max_pool2d_backward(dp, xl, k, **kw),
               cyconv.max_pool2d_backward(dp, xl, k, indices=idx, **kw)):
        np.testing.assert_allclose(_from_layout(dx, layout), xt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[4] == 1], ids=str)
def test_avg_pool2d_ceil_mode_matches_torch_in_both_layouts(case, layout, count_include_pad,
                                                            dtype, level):
    x_shape, k, stride, padding, _, cm = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    kw = dict(stride=stride, padding=padding, ceil_mode=cm, count_include_pad=count_include_pad,
              layout=layout)
    p = cyconv.avg_pool2d(_to_layout(x, layout), k, **kw)
    xt = _tensor(x)
    pt = F.avg_pool2d(xt, _pair(k), _pair(stride), _pair(padding), ceil_mode=cm,
                      count_include_pad=count_include_pad)
    np.testing.assert_allclose(_from_layout(p, layout), pt.detach().numpy(), **TOL[dtype])
    dp_nchw = rng.standard_normal(pt.shape).astype(dtype)
    pt.backward(torch.from_numpy(dp_nchw))
    x_shape_l = _to_layout(x, layout).shape
    dx = cyconv.avg_pool2d_backward(_to_layout(dp_nchw, layout), x_shape_l, k, **kw)
    np.testing.assert_allclose(_from_layout(dx, layout), xt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("x_shape", [(2, 5, 7, 7), (1, 130, 3, 5), (3, 40, 1, 1)], ids=str)
def test_global_pools_and_backwards_match_torch_at_every_level(x_shape, layout, keepdims,
                                                               dtype, level):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(dtype)
    xl = _to_layout(x, layout)
    for kind, torch_pool in (("avg", F.adaptive_avg_pool2d), ("max", F.adaptive_max_pool2d)):
        xt = _tensor(x)
        pt = torch_pool(xt, 1)                       # (m, C, 1, 1)
        p = getattr(cyconv, f"global_{kind}_pool2d")(xl, keepdims=keepdims, layout=layout)
        want = pt.detach().numpy()
        if keepdims:
            np.testing.assert_allclose(_from_layout(p, layout), want, **TOL[dtype])
        else:
            np.testing.assert_allclose(p, want[:, :, 0, 0], **TOL[dtype])
        dp = rng.standard_normal(p.shape).astype(dtype)
        dp_nchw = (_from_layout(dp, layout) if keepdims else dp[:, :, None, None])
        pt.backward(torch.from_numpy(np.ascontiguousarray(dp_nchw)))
        if kind == "avg":
            dx = cyconv.global_avg_pool2d_backward(dp, xl.shape, layout=layout)
        else:
            dx = cyconv.global_max_pool2d_backward(dp, xl, layout=layout)
        np.testing.assert_allclose(_from_layout(dx, layout), xt.grad.numpy(), **TOL[dtype])


# --------------------------------------------------------------------------
# conv2d with dilation and groups, depthwise, and conv_transpose2d, both layouts
# --------------------------------------------------------------------------

CONV_CASES = [  # x (NCHW), (f_h, f_w), C_out, stride, padding, dilation, groups
    ((2, 6, 11, 9), (3, 3), 4, (2, 1), (2, 1), (2, 3), 2),
    ((2, 40, 10, 9), (3, 3), 40, 1, 1, 1, 40),      # depthwise, 40 channels
    ((2, 40, 10, 9), (3, 3), 40, 2, 1, 1, 40),      # depthwise stride 2
    ((1, 33, 9, 12), (5, 3), 33, 1, (2, 1), 1, 33),  # odd channel count, 5x3 taps
    ((2, 16, 9, 9), (3, 3), 32, 1, 2, 2, 16),       # depthwise, multiplier 2, dilation 2
    ((1, 24, 7, 8), (3, 3), 48, 2, 1, 1, 24),       # multiplier 2, stride 2
    ((2, 12, 8, 8), (1, 1), 24, 1, 0, 1, 4),        # grouped pointwise
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_dilation_groups_depthwise_match_torch_in_both_layouts(case, layout, dtype, level):
    x_shape, (f_h, f_w), c_out, stride, padding, dilation, groups = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal((c_out, x_shape[1] // groups, f_h, f_w))
         / np.sqrt(f_h * f_w * x_shape[1] / groups)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    xl, wl = _to_layout(x, layout), _conv_w(w, layout)
    z = cyconv.conv2d(xl, wl, b, **kw)
    xt, wt, bt = _tensor(x), _tensor(w), _tensor(b)
    zt = F.conv2d(xt, wt, bt, stride=_pair(stride), padding=_pair(padding),
                  dilation=_pair(dilation), groups=groups)
    np.testing.assert_allclose(_from_layout(z, layout), zt.detach().numpy(), **TOL[dtype])
    dz_nchw = rng.standard_normal(zt.shape).astype(dtype)
    zt.backward(torch.from_numpy(dz_nchw))
    dx, dw, db = cyconv.conv2d_backward(_to_layout(dz_nchw, layout), xl, wl, **kw)
    np.testing.assert_allclose(_from_layout(dx, layout), xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(_dw_back(dw, layout), wt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL[dtype])


# x (NCHW), (f_h, f_w), C_out, stride, padding, output_padding, dilation, groups
TRANSPOSE_CASES = [
    ((2, 6, 5, 6), (4, 4), 4, 2, 1, 0, 1, 1),
    ((2, 4, 4, 5), (3, 3), 6, 2, 1, 1, 1, 2),
    ((1, 4, 5, 4), (3, 2), 4, (3, 2), (2, 0), (2, 1), (1, 2), 4),
    ((2, 40, 4, 4), (4, 4), 24, 2, 1, 0, 1, 1),     # many channels
    ((1, 16, 5, 5), (3, 3), 16, 2, 1, 1, 1, 16),    # depthwise transposed
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
def test_conv_transpose2d_matches_torch_in_both_layouts(case, layout, dtype, level):
    x_shape, (f_h, f_w), c_out, stride, padding, output_padding, dilation, groups = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(dtype)
    # torch's filters (C_in, C_out / groups, f_h, f_w)
    w = (rng.standard_normal((x_shape[1], c_out // groups, f_h, f_w))
         / np.sqrt(f_h * f_w * c_out / groups)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
              groups=groups, layout=layout)
    xl, wl = _to_layout(x, layout), _conv_w(w, layout)
    y = cyconv.conv_transpose2d(xl, wl, b, **kw)
    xt, wt, bt = _tensor(x), _tensor(w), _tensor(b)
    yt = F.conv_transpose2d(xt, wt, bt, stride=_pair(stride), padding=_pair(padding),
                            output_padding=_pair(output_padding), groups=groups,
                            dilation=_pair(dilation))
    np.testing.assert_allclose(_from_layout(y, layout), yt.detach().numpy(), **TOL[dtype])
    dy_nchw = rng.standard_normal(yt.shape).astype(dtype)
    yt.backward(torch.from_numpy(dy_nchw))
    dx, dw, db = cyconv.conv_transpose2d_backward(_to_layout(dy_nchw, layout), xl, wl, **kw)
    np.testing.assert_allclose(_from_layout(dx, layout), xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(_dw_back(dw, layout), wt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL[dtype])
