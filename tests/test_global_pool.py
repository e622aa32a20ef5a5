"""global_avg_pool2d / global_max_pool2d and their backwards: every CPU level against
the reference, both layouts, finite differences, reproducibility, bad arguments, layers."""
import numpy as np
import pytest
from conftest import TOL, layouts

import cyconv
from cyconv import reference
from cyconv.layers import GlobalAvgPool2D, GlobalMaxPool2D

# channels: fewer than a vector, a tail, whole blocks, several 128-channel tasks + a tail
SHAPES = [(2, 3, 4, 1), (3, 5, 6, 5), (1, 7, 7, 16), (2, 4, 3, 37), (1, 2, 9, 300)]
KINDS = ["avg", "max"]


def _x(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _to(a, layout):
    return a if layout == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _fwd(kind, lib=cyconv):
    return getattr(lib, f"global_{kind}_pool2d")


def _bwd(kind, dp, x, lib=cyconv, **kw):
    if kind == "avg":
        return lib.global_avg_pool2d_backward(dp, x.shape, **kw)
    return lib.global_max_pool2d_backward(dp, x, **kw)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_global_pools_match_reference_at_every_level(shape, kind, layout, level, dtype):
    x = _to(_x(shape, dtype), layout)
    x.reshape(-1)[1] = x.reshape(-1)[0]  # a tie somewhere
    for keepdims in (False, True):
        p = _fwd(kind)(x, keepdims=keepdims, layout=layout)
        want = _fwd(kind, reference)(x, keepdims=keepdims, layout=layout)
        assert p.dtype == dtype and p.shape == want.shape
        np.testing.assert_allclose(p, want, **TOL[dtype])
        dp = _x(p.shape, dtype, seed=1)
        dx = _bwd(kind, dp, x, layout=layout)
        assert dx.dtype == dtype and dx.shape == x.shape
        np.testing.assert_allclose(dx, _bwd(kind, dp, x, reference, layout=layout), **TOL[dtype])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_global_pools_equal_the_full_window_pool_bitwise(shape, level, dtype):
    x = _x(shape, dtype)
    window = shape[1:3]
    np.testing.assert_array_equal(cyconv.global_avg_pool2d(x, keepdims=True),
                                  cyconv.avg_pool2d(x, window))
    np.testing.assert_array_equal(cyconv.global_max_pool2d(x, keepdims=True),
                                  cyconv.max_pool2d(x, window))
    dp = _x((shape[0], 1, 1, shape[3]), dtype, seed=2)
    np.testing.assert_array_equal(cyconv.global_avg_pool2d_backward(dp, shape),
                                  cyconv.avg_pool2d_backward(dp, shape, window))
    np.testing.assert_array_equal(cyconv.global_max_pool2d_backward(dp, x),
                                  cyconv.max_pool2d_backward(dp, x, window))


@pytest.mark.parametrize("kind", KINDS)
def test_nchw_gives_the_nhwc_bits(kind, dtype):
    x = _x((3, 6, 5, 40), dtype)
    p = _fwd(kind)(x)
    np.testing.assert_array_equal(_fwd(kind)(_to(x, "NCHW"), layout="NCHW"), p)
    dp = _x(p.shape, dtype, seed=3)
    np.testing.assert_array_equal(
        _bwd(kind, dp, _to(x, "NCHW"), layout="NCHW"), _to(_bwd(kind, dp, x), "NCHW"))


def test_global_max_ties_go_to_the_first_maximum_and_nans_win(dtype):
    x = np.zeros((1, 3, 3, 20), dtype=dtype)  # every plane all ties
    dx = cyconv.global_max_pool2d_backward(np.ones((1, 20), dtype=dtype), x)
    assert (dx[0, 0, 0] == 1).all() and np.count_nonzero(dx) == 20
    x[0, 1, 2, 3] = np.nan
    x[0, 2, 0, 3] = np.nan
    x[0, 2, 2, 17] = np.nan
    for layout in ("NHWC", "NCHW"):
        xl = _to(x, layout)
        p = cyconv.global_max_pool2d(xl, layout=layout)
        assert np.isnan(p[0, 3]) and np.isnan(p[0, 17]) and np.count_nonzero(np.isnan(p)) == 2
        dx = _bwd("max", np.ones((1, 20), dtype=dtype), xl, layout=layout)
        dx = dx if layout == "NHWC" else dx.transpose(0, 2, 3, 1)
        assert dx[0, 1, 2, 3] == 1 and dx[0, 2, 0, 3] == 0 and dx[0, 2, 2, 17] == 1
    ref = reference.global_max_pool2d_backward(np.ones((1, 20)), x)
    np.testing.assert_array_equal(cyconv.global_max_pool2d_backward(np.ones((1, 20)), x), ref)


def _numeric_grad(f, x, eps):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        hi = f(x)
        x[i] = old - eps
        lo = f(x)
        x[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("kind", KINDS)
def test_backward_is_the_finite_difference_gradient(kind, layout):
    # distinct values far apart: no ties within eps
    x = np.random.default_rng(4).permutation(2 * 3 * 4 * 5).reshape(2, 3, 4, 5) * 0.1
    dp = np.random.default_rng(5).standard_normal((2, 5 if layout == "NHWC" else 3))
    f = _fwd(kind)
    numeric = _numeric_grad(lambda a: float((f(a, layout=layout) * dp).sum()), x, 1e-3)
    np.testing.assert_allclose(_bwd(kind, dp, x, layout=layout), numeric, atol=1e-8)


@pytest.mark.parametrize("shape", [(1, 14, 14, 300), (3, 7, 7, 130), (5, 9, 9, 7)], ids=str)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_results_are_bitwise_identical_for_any_thread_count(shape, layout, dtype):
    x = _to(_x(shape, dtype), layout)
    dp = _x((shape[0], shape[3]), dtype, seed=6)
    runs = []
    for n in (1, 2, 3, 4):
        kw = dict(layout=layout, num_threads=n)
        runs.append([a.tobytes() for a in (
            cyconv.global_avg_pool2d(x, **kw), cyconv.global_max_pool2d(x, **kw),
            cyconv.global_avg_pool2d_backward(dp, x.shape, **kw),
            cyconv.global_max_pool2d_backward(dp, x, **kw))])
    assert all(r == runs[0] for r in runs)


@pytest.mark.parametrize("kind", KINDS)
def test_any_memory_layout_is_accepted_and_inputs_are_not_modified(kind, dtype):
    x = _x((2, 4, 5, 6), dtype)
    dp = _x((2, 6), dtype, seed=7)
    p, dx = _fwd(kind)(x), _bwd(kind, dp, x)
    for name, xl in layouts(x):
        before = xl.copy()
        np.testing.assert_array_equal(_fwd(kind)(xl), p, err_msg=name)
        np.testing.assert_array_equal(_bwd(kind, dp, xl), dx, err_msg=name)
        np.testing.assert_array_equal(xl, before)
    dpk = dp.reshape(2, 1, 1, 6)  # the keepdims form is accepted as dp too
    np.testing.assert_array_equal(_bwd(kind, dpk, x), dx)


def test_dtype_promotion_follows_the_package_rules():
    x = np.ones((1, 2, 2, 3), dtype=np.int64)
    assert cyconv.global_avg_pool2d(x).dtype == np.float64
    assert cyconv.global_max_pool2d(x.astype(np.float16)).dtype == np.float32
    assert cyconv.global_max_pool2d_backward(np.ones((1, 3), np.float32),
                                             x.astype(np.float32)).dtype == np.float32
    assert cyconv.global_max_pool2d_backward(np.ones((1, 3)), x.astype(np.float32)).dtype \
        == np.float64


def test_empty_batch_and_channels_give_empty_results():
    for shape in [(0, 3, 3, 4), (2, 3, 3, 0)]:
        x = np.ones(shape)
        for kind in KINDS:
            assert _fwd(kind)(x).shape == (shape[0], shape[3])
            assert _bwd(kind, np.ones((shape[0], shape[3])), x).shape == shape


@pytest.mark.parametrize("call, error, message", [
    (lambda: cyconv.global_avg_pool2d(np.ones((2, 3, 3))), ValueError, r"^x must be 4-D"),
    (lambda: cyconv.global_max_pool2d(np.ones((1, 2, 2, 1)), layout="HWC"), ValueError,
     r"^layout must be 'NHWC' or 'NCHW'"),
    (lambda: cyconv.global_avg_pool2d(np.ones((1, 2, 2, 1)), layout=None), ValueError,
     r"^layout must be"),
    (lambda: cyconv.global_avg_pool2d(np.ones((1, 2, 2, 1)), keepdims="yes"), TypeError,
     r"^keepdims must be True or False"),
    (lambda: cyconv.global_max_pool2d(np.ones((1, 0, 2, 1))), ValueError,
     r"at least one pixel per plane"),
    (lambda: cyconv.global_avg_pool2d(np.ones((1, 2, 2, 1), dtype=complex)), TypeError,
     r"^x must hold real numbers"),
    (lambda: cyconv.global_avg_pool2d_backward(np.ones((1, 2)), (1, 2, 2, 3)), ValueError,
     r"^dp must have the forward output's shape \(1, 3\)"),
    (lambda: cyconv.global_avg_pool2d_backward(np.ones((1, 3)), (1, 2, 2)), ValueError,
     r"^x_shape must be 4 non-negative ints"),
    (lambda: cyconv.global_avg_pool2d_backward(np.ones((1, 3)), (1, 2.5, 2, 3)), TypeError,
     r"^x_shape must be a tuple of 4 ints"),
    (lambda: cyconv.global_max_pool2d_backward(np.ones((1, 1, 1, 3)), np.ones((1, 3, 2, 2)),
                                               layout="NCHW"), ValueError,
     r"^dp must have the forward output's shape \(1, 3\) \(or \(1, 3, 1, 1\) with keepdims\)"),
    (lambda: cyconv.global_max_pool2d_backward(np.ones((1, 3)), np.ones((1, 2, 2, 3)),
                                               num_threads=0), ValueError, r"^num_threads"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_global_pool_layers_forward_and_backward(dtype):
    x = _x((3, 5, 5, 8), dtype)
    for cls, kind in ((GlobalAvgPool2D, "avg"), (GlobalMaxPool2D, "max")):
        for keepdims in (False, True):
            layer = cls(keepdims=keepdims)
            p = layer.forward(x)
            np.testing.assert_array_equal(p, _fwd(kind)(x, keepdims=keepdims))
            dp = _x(p.shape, dtype, seed=8)
            np.testing.assert_array_equal(layer.backward(dp), _bwd(kind, dp, x))
            ref = cls(keepdims=keepdims, backend=reference)
            np.testing.assert_allclose(ref.forward(x), p, **TOL[dtype])
            np.testing.assert_allclose(ref.backward(dp), _bwd(kind, dp, x), **TOL[dtype])
        layer = cls().eval()
        layer.forward(x)
        with pytest.raises(RuntimeError, match="training mode"):
            layer.backward(np.ones((3, 8)))


def test_global_avg_pool2d_ends_a_sequential_model():
    from cyconv.layers import Conv2D, Dense, ReLU, Sequential, softmax_cross_entropy
    model = Sequential(Conv2D(3, 8, 3, padding="same", seed=0), ReLU(), GlobalAvgPool2D(),
                       Dense(8, 4, seed=1))
    x = _x((5, 6, 6, 3), np.float64)
    loss, dlogits = softmax_cross_entropy(model.forward(x), np.arange(5) % 4)
    dx = model.backward(dlogits)
    assert dx.shape == x.shape and np.isfinite(loss)
