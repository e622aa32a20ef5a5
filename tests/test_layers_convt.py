"""Conv2D with dilation and groups, and ConvTranspose2D: the layers on their kernels."""
import numpy as np
import pytest

import cyconv
from cyconv import reference
from cyconv.layers import Conv2D, ConvTranspose2D, ReLU, Sequential

TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kw", [dict(dilation=2, padding=2), dict(groups=4, padding=1),
                                dict(groups=8, padding=1, stride=2),
                                dict(groups=2, dilation=(1, 2), padding=(1, 2))], ids=str)
def test_conv2d_layer_with_dilation_and_groups_matches_the_functions(kw):
    layer = Conv2D(8, 16, 3, dtype=np.float64, seed=0, **kw)
    x = np.random.default_rng(1).standard_normal((2, 9, 10, 8))
    z = layer.forward(x)
    args = {k: kw[k] for k in ("stride", "padding") if k in kw}
    geo = {k: kw[k] for k in ("dilation", "groups") if k in kw}
    b = layer.params["b"]
    np.testing.assert_array_equal(z, cyconv.conv2d(x, layer.params["w"], b, **args, **geo))
    dz = np.random.default_rng(2).standard_normal(z.shape)
    dx = layer.backward(dz)
    want = cyconv.conv2d_backward(dz, x, layer.params["w"], **args, **geo)
    for got, w_ in zip((dx, layer.grads["w"], layer.grads["b"]), want):
        np.testing.assert_array_equal(got, w_)
    assert layer.params["w"].shape == (3, 3, 8 // kw.get("groups", 1), 16)


def test_depthwise_conv2d_then_relu_runs_fused_and_matches_the_reference_backend():
    x = np.random.default_rng(3).standard_normal((2, 7, 7, 6))
    fast = Sequential(Conv2D(6, 12, 3, padding=1, groups=6, dtype=np.float64, seed=0), ReLU())
    slow = Sequential(Conv2D(6, 12, 3, padding=1, groups=6, dtype=np.float64, seed=0,
                             backend=reference), ReLU())
    np.testing.assert_allclose(fast.forward(x), slow.forward(x), **TOL)
    d = np.ones((2, 7, 7, 12))
    np.testing.assert_allclose(fast.backward(d), slow.backward(d), **TOL)


def test_conv_transpose2d_layer_matches_the_function_and_the_reference_backend():
    layer = ConvTranspose2D(6, 4, 4, stride=2, padding=1, output_padding=1, dtype=np.float64,
                            seed=0, groups=2)
    ref = ConvTranspose2D(6, 4, 4, stride=2, padding=1, output_padding=1, dtype=np.float64,
                          seed=0, groups=2, backend=reference)
    x = np.random.default_rng(4).standard_normal((2, 5, 6, 6))
    y = layer.forward(x)
    assert y.shape == (2, 11, 13, 4)
    assert layer.params["w"].shape == (4, 4, 2, 6)
    np.testing.assert_array_equal(y, cyconv.conv_transpose2d(
        x, layer.params["w"], layer.params["b"], stride=2, padding=1, output_padding=1,
        groups=2))
    np.testing.assert_allclose(ref.forward(x), y, **TOL)
    dy = np.random.default_rng(5).standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(dy), ref.backward(dy), **TOL)
    for k in ("w", "b"):
        np.testing.assert_allclose(layer.grads[k], ref.grads[k], **TOL)


def test_layers_reject_groups_that_do_not_divide_the_channels():
    with pytest.raises(ValueError, match="groups=3 must divide in_channels"):
        Conv2D(8, 9, 3, groups=3)
    with pytest.raises(ValueError, match="groups must be an int >= 1"):
        ConvTranspose2D(8, 8, 3, groups=0)


def test_layer_reprs_name_dilation_and_groups():
    assert "groups=4" in repr(Conv2D(8, 8, 3, groups=4))
    assert "dilation=(2, 2)" in repr(Conv2D(8, 8, 3, dilation=2))
    assert repr(Conv2D(8, 8, 3)).endswith("bias=True)")
    assert "output_padding=1" in repr(ConvTranspose2D(4, 2, 3, stride=2, output_padding=1))


def test_conv_layer_docstring_examples_run():
    import doctest

    from cyconv.layers import _conv
    result = doctest.testmod(_conv, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
