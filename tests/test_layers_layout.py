"""layout="NCHW" on the spatial layers: PyTorch's layouts, the NHWC results transposed.

A layer built with ``layout="NCHW"`` and the same seed holds the NHWC layer's
filters in PyTorch's order; its forward, backward and gradients equal the
NHWC layer's on the transposed arrays, and a few SGD steps of a whole model
stay equal too. (torch-marked: the NCHW layers against torch.nn modules.)
"""
import numpy as np
import pytest

import cyconv
from cyconv import reference
from cyconv.layers import (SGD, AvgPool2D, Conv2D, ConvTranspose2D, Dense, Flatten,
                           GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D, ReLU, Sequential,
                           softmax_cross_entropy)

TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def _nchw(a):
    return np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2))


def _nhwc(a):
    return np.ascontiguousarray(np.asarray(a).transpose(0, 2, 3, 1))


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


LAYERS = {
    "conv": lambda layout, dt: Conv2D(4, 6, 3, padding=1, dtype=dt, seed=0, layout=layout),
    "conv-stride-dilation": lambda layout, dt: Conv2D(4, 6, (3, 2), stride=2, padding=2,
                                                      dilation=2, dtype=dt, seed=0,
                                                      layout=layout),
    "conv-groups": lambda layout, dt: Conv2D(4, 6, 3, padding=1, groups=2, dtype=dt, seed=0,
                                             layout=layout),
    "depthwise": lambda layout, dt: Conv2D(4, 8, 3, padding=1, groups=4, dtype=dt, seed=0,
                                           layout=layout),
    "convt": lambda layout, dt: ConvTranspose2D(4, 6, 4, stride=2, padding=1, dtype=dt, seed=0,
                                                layout=layout),
    "convt-groups": lambda layout, dt: ConvTranspose2D(4, 6, 3, stride=2, output_padding=1,
                                                       groups=2, dtype=dt, seed=0,
                                                       layout=layout),
    "maxpool": lambda layout, dt: MaxPool2D(3, 2, 1, layout=layout),
    "maxpool-ceil-dilated": lambda layout, dt: MaxPool2D(2, dilation=2, ceil_mode=True,
                                                         layout=layout),
    "avgpool": lambda layout, dt: AvgPool2D(3, 2, 1, count_include_pad=False, layout=layout),
    "avgpool-ceil": lambda layout, dt: AvgPool2D(2, ceil_mode=True, layout=layout),
    "gap": lambda layout, dt: GlobalAvgPool2D(layout=layout),
    "gap-keepdims": lambda layout, dt: GlobalAvgPool2D(keepdims=True, layout=layout),
    "gmp": lambda layout, dt: GlobalMaxPool2D(layout=layout),
    "gmp-keepdims": lambda layout, dt: GlobalMaxPool2D(keepdims=True, layout=layout),
}


def _to_nchw_like(a):
    # 4-D NHWC results become NCHW; (m, C) results stay
    return _nchw(a) if np.ndim(a) == 4 else a


@pytest.mark.parametrize("name", LAYERS)
def test_nchw_layer_is_the_nhwc_layer_transposed_forward_and_backward(name, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 8, 4)).astype(dtype)
    a, b = LAYERS[name]("NHWC", dtype), LAYERS[name]("NCHW", dtype)
    assert b.layout == "NCHW" and a.layout == "NHWC"
    if "w" in a.params:  # the same draws, in PyTorch's filter order
        np.testing.assert_array_equal(b.params["w"], a.params["w"].transpose(3, 2, 0, 1))
        assert b.params["w"].flags.c_contiguous
    z = a.forward(x)
    zb = b.forward(_nchw(x))
    np.testing.assert_allclose(zb, _to_nchw_like(z), **TOL[dtype])
    dz = rng.standard_normal(z.shape).astype(dtype)
    dx = a.backward(dz)
    dxb = b.backward(_to_nchw_like(dz))
    np.testing.assert_allclose(dxb, _nchw(dx), **TOL[dtype])
    assert dxb.dtype == dx.dtype
    for k in a.grads:
        want = a.grads[k].transpose(3, 2, 0, 1) if k == "w" else a.grads[k]
        np.testing.assert_allclose(b.grads[k], want, **TOL[dtype])


def test_conv2d_nchw_layer_calls_the_kernel_with_its_oihw_filters():
    layer = Conv2D(3, 5, 3, stride=2, padding=1, dtype=np.float64, seed=2, layout="NCHW")
    assert layer.params["w"].shape == (5, 3, 3, 3)
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7))
    np.testing.assert_array_equal(
        layer.forward(x), cyconv.conv2d(x, layer.params["w"], layer.params["b"], stride=2,
                                        padding=1, layout="NCHW"))


def test_convtranspose2d_nchw_layer_keeps_pytorch_filters():
    layer = ConvTranspose2D(6, 4, 3, groups=2, dtype=np.float64, seed=0, layout="NCHW")
    assert layer.params["w"].shape == (6, 2, 3, 3)     # (C_in, C_out / groups, f_h, f_w)
    assert "layout='NCHW'" in repr(layer) and "6, 4, (3, 3)" in repr(layer)


@pytest.mark.parametrize("make", [
    lambda: Conv2D(2, 2, 3, layout="nchw"), lambda: ConvTranspose2D(2, 2, 3, layout="CHW"),
    lambda: MaxPool2D(2, layout=None), lambda: AvgPool2D(2, layout="NHCW"),
    lambda: GlobalAvgPool2D(layout=1), lambda: GlobalMaxPool2D(layout="channels_first"),
])
def test_layers_reject_an_unknown_layout_naming_the_argument(make):
    with pytest.raises(ValueError, match="layout must be 'NHWC'"):
        make()


def test_nchw_layers_need_a_backend_with_layout():
    with pytest.raises(ValueError, match="layout='NCHW' needs a backend.*conv2d"):
        Conv2D(2, 2, 3, layout="NCHW", backend=reference)
    with pytest.raises(ValueError, match="max_pool2d"):
        MaxPool2D(2, layout="NCHW", backend=reference)
    # NHWC layers keep working with the reference backend; global pools have layout there
    Conv2D(2, 2, 3, backend=reference)
    GlobalAvgPool2D(layout="NCHW", backend=reference)


def test_default_layers_pass_no_layout_keyword_and_repr_is_unchanged():
    assert repr(Conv2D(2, 3, 3, seed=0)) == (
        "Conv2D(2, 3, (3, 3), stride=1, padding=0, bias=True)")
    assert repr(MaxPool2D(2)) == "MaxPool2D(2, stride=None, padding=0)"
    assert repr(AvgPool2D(2)) == "AvgPool2D(2, stride=None, padding=0, count_include_pad=True)"
    assert repr(GlobalAvgPool2D()) == "GlobalAvgPool2D()"
    assert "layout='NCHW'" in repr(Conv2D(2, 3, 3, seed=0, layout="NCHW"))
    assert repr(GlobalMaxPool2D(layout="NCHW")) == "GlobalMaxPool2D(layout='NCHW')"


def test_sequential_refuses_mixed_layouts_naming_the_layers():
    with pytest.raises(ValueError, match=r"layer 2 \(MaxPool2D\) has layout='NHWC' but "
                                         r"layer 0 \(Conv2D\) has layout='NCHW'"):
        Sequential(Conv2D(1, 2, 3, layout="NCHW"), ReLU(), MaxPool2D(2))


def _model(layout, dtype):
    return Sequential(
        Conv2D(3, 8, 3, padding=1, dtype=dtype, seed=0, layout=layout), ReLU(),
        MaxPool2D(2, layout=layout),
        Conv2D(8, 8, 3, padding=1, groups=8, dtype=dtype, seed=1, layout=layout), ReLU(),
        ConvTranspose2D(8, 4, 2, stride=2, dtype=dtype, seed=2, layout=layout),
        AvgPool2D(2, layout=layout),
        GlobalAvgPool2D(layout=layout), Dense(4, 3, dtype=dtype, seed=3))


def test_training_steps_of_an_nchw_model_equal_the_nhwc_model(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 8, 8, 3)).astype(dtype)
    y = rng.integers(0, 3, size=6)
    a, b = _model("NHWC", dtype), _model("NCHW", dtype)
    oa, ob = SGD(a, lr=0.05), SGD(b, lr=0.05)
    for _ in range(3):
        la, ga = softmax_cross_entropy(a.forward(x), y)
        lb, gb = softmax_cross_entropy(b.forward(_nchw(x)), y)
        np.testing.assert_allclose(lb, la, **TOL[dtype])
        dxa, dxb = a.backward(ga), b.backward(gb)
        np.testing.assert_allclose(dxb, _nchw(dxa), **TOL[dtype])
        oa.step()
        ob.step()
    for k, v in a.parameters().items():
        want = v.transpose(3, 2, 0, 1) if v.ndim == 4 else v
        np.testing.assert_allclose(b.parameters()[k], want, **TOL[dtype])


def test_flatten_after_an_nchw_layer_flattens_in_pytorch_order():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    model = Sequential(MaxPool2D(1, layout="NCHW"), Flatten())
    np.testing.assert_array_equal(model.forward(x), x.reshape(2, -1))   # (C, H, W) order


# --------------------------------------------------------------------------
# against torch.nn (skipped without torch)
# --------------------------------------------------------------------------

def test_nchw_layers_match_torch_nn_modules_loading_their_weights():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 9, 9))
    cases = [
        (Conv2D(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, dtype=np.float64,
                layout="NCHW"),
         torch.nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2).double()),
        (ConvTranspose2D(4, 6, 4, stride=2, padding=1, groups=2, dtype=np.float64,
                         layout="NCHW"),
         torch.nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2).double()),
        (MaxPool2D(3, 2, 1, ceil_mode=True, layout="NCHW"),
         torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (AvgPool2D(3, 2, 1, count_include_pad=False, ceil_mode=True, layout="NCHW"),
         torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
        (GlobalAvgPool2D(keepdims=True, layout="NCHW"), torch.nn.AdaptiveAvgPool2d(1)),
        (GlobalMaxPool2D(keepdims=True, layout="NCHW"), torch.nn.AdaptiveMaxPool2d(1)),
    ]
    for ours, theirs in cases:
        if "w" in ours.params:   # PyTorch's weight and bias load as they are
            ours.params["w"][...] = theirs.weight.detach().numpy()
            ours.params["b"][...] = theirs.bias.detach().numpy()
        xt = torch.from_numpy(x).requires_grad_(True)
        zt = theirs(xt)
        z = ours.forward(x)
        np.testing.assert_allclose(z, zt.detach().numpy(), rtol=1e-12, atol=1e-12)
        dz = rng.standard_normal(z.shape)
        zt.backward(torch.from_numpy(dz))
        np.testing.assert_allclose(ours.backward(dz), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
        if "w" in ours.params:
            np.testing.assert_allclose(ours.grads["w"], theirs.weight.grad.numpy(),
                                       rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(ours.grads["b"], theirs.bias.grad.numpy(),
                                       rtol=1e-10, atol=1e-10)
