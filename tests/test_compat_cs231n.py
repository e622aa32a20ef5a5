"""cyconv.compat.cs231n: CS231n assignment 2's published checks, gradient checks, naive == fast.

The expected arrays, inputs and tolerances come from the assignment's
notebook ``ConvolutionalNetworks.ipynb`` (Stanford CS231n, assignment 2,
the same cells in every year's version since 2016): the cells "Convolution:
Naive forward pass" and "Max-Pooling: Naive forward" print
``rel_error(out, correct_out)``, which "should be around e-8". The gradient
checks use the notebook's inputs (``np.random.seed(231)`` then
``np.random.randn``; ``RandomState(231).randn`` gives the same stream without
touching the global state) and its ``eval_numerical_gradient_array``
(``cs231n/gradient_check.py``), written out below. The "fast layers" cells
compare naive and fast versions; here they share cyconv's kernels, so they
agree exactly.
"""
import numpy as np
import pytest

from cyconv import reference
from cyconv.compat import cs231n
from cyconv.compat.cs231n import (
    conv_backward_fast,
    conv_backward_naive,
    conv_forward_fast,
    conv_forward_naive,
    max_pool_backward_fast,
    max_pool_backward_im2col,
    max_pool_backward_naive,
    max_pool_backward_reshape,
    max_pool_forward_fast,
    max_pool_forward_im2col,
    max_pool_forward_naive,
    max_pool_forward_reshape,
)

NAMES = {
    "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
    "max_pool_backward_naive", "conv_forward_fast", "conv_backward_fast",
    "max_pool_forward_fast", "max_pool_backward_fast", "conv_forward_im2col",
    "conv_backward_im2col", "conv_forward_strides", "conv_backward_strides",
    "max_pool_forward_reshape", "max_pool_backward_reshape", "max_pool_forward_im2col",
    "max_pool_backward_im2col",
}

POOL_2X2 = {"pool_width": 2, "pool_height": 2, "stride": 2}


def rel_error(x, y):
    """The notebook's ``rel_error``."""
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """The assignment's ``cs231n.gradient_check.eval_numerical_gradient_array``."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        oldval = x[ix]
        x[ix] = oldval + h
        pos = f(x).copy()
        x[ix] = oldval - h
        neg = f(x).copy()
        x[ix] = oldval
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


# ConvolutionalNetworks.ipynb, cell "Convolution: Naive forward pass": correct_out.
CONV_CORRECT_OUT = np.array([[[[-0.08759809, -0.10987781],
                               [-0.18387192, -0.2109216]],
                              [[0.21027089, 0.21661097],
                               [0.22847626, 0.23004637]],
                              [[0.50813986, 0.54309974],
                               [0.64082444, 0.67101435]]],
                             [[[-0.98053589, -1.03143541],
                               [-1.19128892, -1.24695841]],
                              [[0.69108355, 0.66880383],
                               [0.59480972, 0.56776003]],
                              [[2.36270298, 2.36904306],
                               [2.38090835, 2.38247847]]]])

# ConvolutionalNetworks.ipynb, cell "Max-Pooling: Naive forward": correct_out.
POOL_CORRECT_OUT = np.array([[[[-0.26315789, -0.24842105],
                               [-0.20421053, -0.18947368]],
                              [[-0.14526316, -0.13052632],
                               [-0.08631579, -0.07157895]],
                              [[-0.02736842, -0.01263158],
                               [0.03157895, 0.04631579]]],
                             [[[0.09052632, 0.10526316],
                               [0.14947368, 0.16421053]],
                              [[0.20842105, 0.22315789],
                               [0.26736842, 0.28210526]],
                              [[0.32631579, 0.34105263],
                               [0.38526316, 0.4]]]])


def _conv_check_inputs(dtype=np.float64):
    # The notebook's inputs of the conv_forward_naive check.
    x_shape = (2, 3, 4, 4)
    w_shape = (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    return x.astype(dtype), w.astype(dtype), b.astype(dtype), {"stride": 2, "pad": 1}


def _pool_check_input(dtype=np.float64):
    x_shape = (2, 3, 4, 4)
    return np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape).astype(dtype)


# ---------------------------------------------------------------------------
# The notebook's published checks
# ---------------------------------------------------------------------------

def test_conv_forward_naive_passes_the_notebooks_published_check():
    out, _ = conv_forward_naive(*_conv_check_inputs())
    assert out.dtype == np.float64 and out.shape == (2, 3, 2, 2)
    # The notebook: "difference should be around e-8" (correct_out has 8 decimals).
    assert rel_error(out, CONV_CORRECT_OUT) < 1e-7


def test_max_pool_forward_naive_passes_the_notebooks_published_check():
    out, _ = max_pool_forward_naive(_pool_check_input(), POOL_2X2)
    assert out.dtype == np.float64 and out.shape == (2, 3, 2, 2)
    assert rel_error(out, POOL_CORRECT_OUT) < 1e-7


def test_published_checks_pass_in_float32_too():
    out, _ = conv_forward_naive(*_conv_check_inputs(np.float32))
    assert out.dtype == np.float32
    assert rel_error(out, CONV_CORRECT_OUT) < 1e-5
    out, _ = max_pool_forward_naive(_pool_check_input(np.float32), POOL_2X2)
    assert out.dtype == np.float32
    assert rel_error(out, POOL_CORRECT_OUT) < 1e-6


@pytest.mark.parametrize("forward", [conv_forward_fast, cs231n.conv_forward_im2col,
                                     cs231n.conv_forward_strides])
def test_fast_conv_forwards_pass_the_published_check(forward):
    out, cache = forward(*_conv_check_inputs())
    assert rel_error(out, CONV_CORRECT_OUT) < 1e-7
    assert len(cache) == 5


@pytest.mark.parametrize("forward", [max_pool_forward_fast, max_pool_forward_reshape,
                                     max_pool_forward_im2col])
def test_fast_pool_forwards_pass_the_published_check(forward):
    out, _ = forward(_pool_check_input(), POOL_2X2)
    assert rel_error(out, POOL_CORRECT_OUT) < 1e-7


# ---------------------------------------------------------------------------
# The notebook's numeric gradient checks
# ---------------------------------------------------------------------------

def test_conv_backward_naive_matches_numeric_gradients():
    # The notebook's cell "Convolution: Naive backward pass".
    rs = np.random.RandomState(231)
    x = rs.randn(4, 3, 5, 5)
    w = rs.randn(2, 3, 3, 3)
    b = rs.randn(2,)
    dout = rs.randn(4, 2, 5, 5)
    conv_param = {"stride": 1, "pad": 1}
    dx_num = eval_numerical_gradient_array(
        lambda x: conv_forward_naive(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(
        lambda w: conv_forward_naive(x, w, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(
        lambda b: conv_forward_naive(x, w, b, conv_param)[0], b, dout)
    out, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)
    # "Your errors should be around e-8 or less."
    assert rel_error(dx, dx_num) < 1e-7
    assert rel_error(dw, dw_num) < 1e-7
    assert rel_error(db, db_num) < 1e-7


def test_conv_backward_matches_numeric_gradients_with_stride_two_and_uneven_windows():
    # Stride 2 over 6 + 2 - 3: the last row and column are never reached.
    rs = np.random.RandomState(0)
    x, w, b = rs.randn(2, 2, 6, 6), rs.randn(3, 2, 3, 3), rs.randn(3)
    conv_param = {"stride": 2, "pad": 1}
    out, cache = conv_forward_fast(x, w, b, conv_param)
    dout = rs.randn(*out.shape)
    dx, dw, db = conv_backward_fast(dout, cache)
    f = lambda x: conv_forward_fast(x, w, b, conv_param)[0]  # noqa: E731
    assert rel_error(dx, eval_numerical_gradient_array(f, x, dout)) < 1e-7
    f = lambda w: conv_forward_fast(x, w, b, conv_param)[0]  # noqa: E731
    assert rel_error(dw, eval_numerical_gradient_array(f, w, dout)) < 1e-7


def test_max_pool_backward_naive_matches_numeric_gradients():
    # The notebook's cell "Max-Pooling: Naive backward".
    rs = np.random.RandomState(231)
    x = rs.randn(3, 2, 8, 8)
    dout = rs.randn(3, 2, 4, 4)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    dx_num = eval_numerical_gradient_array(
        lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)
    out, cache = max_pool_forward_naive(x, pool_param)
    dx = max_pool_backward_naive(dout, cache)
    # "Your error should be on the order of e-12"
    assert rel_error(dx, dx_num) < 1e-10


@pytest.mark.parametrize("forward, backward", [
    (max_pool_forward_fast, max_pool_backward_fast),
    (max_pool_forward_im2col, max_pool_backward_im2col),
])
@pytest.mark.parametrize("channels", [3, 9])
def test_overlapping_max_pool_backward_matches_numeric_gradients(forward, backward, channels):
    rs = np.random.RandomState(1)
    x = rs.randn(2, channels, 7, 7)
    pool_param = {"pool_height": 3, "pool_width": 3, "stride": 2}
    out, cache = forward(x, pool_param)
    dout = rs.randn(*out.shape)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, pool_param)[0], x, dout)
    assert rel_error(backward(dout, cache), dx_num) < 1e-10


# ---------------------------------------------------------------------------
# Naive == fast (the notebook's "Fast layers" cells), and against cyconv.reference
# ---------------------------------------------------------------------------

def test_conv_fast_equals_naive_exactly_on_the_notebooks_inputs():
    rs = np.random.RandomState(231)
    x = rs.randn(100, 3, 31, 31)
    w = rs.randn(25, 3, 3, 3)
    b = rs.randn(25,)
    dout = rs.randn(100, 25, 16, 16)
    conv_param = {"stride": 2, "pad": 1}
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
    np.testing.assert_array_equal(out_naive, out_fast)
    for g_naive, g_fast in zip(conv_backward_naive(dout, cache_naive),
                               conv_backward_fast(dout, cache_fast)):
        np.testing.assert_array_equal(g_naive, g_fast)
    # Either backward takes either cache.
    for g_naive, g_fast in zip(conv_backward_naive(dout, cache_fast),
                               conv_backward_fast(dout, cache_naive)):
        np.testing.assert_array_equal(g_naive, g_fast)


@pytest.mark.parametrize("pool_param", [POOL_2X2, {"pool_height": 3, "pool_width": 3,
                                                   "stride": 2},
                                        {"pool_height": 2, "pool_width": 3, "stride": 1}])
@pytest.mark.parametrize("x_shape", [(100, 3, 32, 32), (4, 4, 12, 12), (4, 16, 12, 12)])
def test_max_pool_fast_equals_naive_exactly_without_ties(pool_param, x_shape):
    rs = np.random.RandomState(231)
    x = rs.randn(*x_shape)
    out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
    out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
    np.testing.assert_array_equal(out_naive, out_fast)
    dout = rs.randn(*out_naive.shape)
    np.testing.assert_array_equal(max_pool_backward_naive(dout, cache_naive),
                                  max_pool_backward_fast(dout, cache_fast))


def test_max_pool_fast_chooses_the_method_as_the_assignment_does():
    x = np.zeros((1, 1, 6, 6))
    assert max_pool_forward_fast(x, POOL_2X2)[1][0] == "reshape"
    assert max_pool_forward_fast(x, {"pool_height": 3, "pool_width": 3, "stride": 3})[1][0] \
        == "reshape"
    assert max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 1})[1][0] \
        == "im2col"
    assert max_pool_forward_fast(np.zeros((1, 1, 5, 5)), POOL_2X2)[1][0] == "im2col"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, pad", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_conv_matches_cyconv_reference_on_the_transposed_arrays(dtype, stride, pad):
    rs = np.random.default_rng(7)
    x = rs.standard_normal((2, 3, 7, 6)).astype(dtype)
    w = rs.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rs.standard_normal(4).astype(dtype)
    out, cache = conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})
    x_t, w_t = x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)
    z = reference.conv2d(x_t, w_t, b, stride=stride, padding=pad)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, z.transpose(0, 3, 1, 2), **tol)
    dout = rs.standard_normal(out.shape).astype(dtype)
    dx, dw, db = conv_backward_fast(dout, cache)
    rdx, rdw, rdb = reference.conv2d_backward(dout.transpose(0, 2, 3, 1), x_t, w_t,
                                              stride=stride, padding=pad)
    np.testing.assert_allclose(dx, rdx.transpose(0, 3, 1, 2), **tol)
    np.testing.assert_allclose(dw, rdw.transpose(3, 2, 0, 1), **tol)
    np.testing.assert_allclose(db, rdb, **tol)
    assert dx.dtype == dw.dtype == db.dtype == dtype


# ---------------------------------------------------------------------------
# Ties: each function's rule
# ---------------------------------------------------------------------------

def _tied():
    # Window 0 ties four ways (zeros after a ReLU), window 1 twice, window 2 not.
    x = np.array([[0.0, 0.0, 1.0, 5.0, 2.0, 0.0],
                  [0.0, 0.0, 5.0, 2.0, 1.0, 3.0]]).reshape(1, 1, 2, 6)
    return x, np.array([2.0, 4.0, 6.0]).reshape(1, 1, 1, 3)


def test_max_pool_backward_naive_gives_ties_to_the_first_maximum():
    x, dout = _tied()
    out, cache = max_pool_forward_naive(x, POOL_2X2)
    dx = max_pool_backward_naive(dout, cache)
    np.testing.assert_array_equal(dx[0, 0], [[2, 0, 0, 4, 0, 0], [0, 0, 0, 0, 0, 6]])


def test_max_pool_backward_reshape_splits_ties_equally_as_the_assignments_code():
    x, dout = _tied()
    out, cache = max_pool_forward_reshape(x, POOL_2X2)
    dx = max_pool_backward_reshape(dout, cache)
    np.testing.assert_array_equal(dx[0, 0], [[0.5, 0.5, 0, 2, 0, 0], [0.5, 0.5, 2, 0, 0, 6]])
    # The assignment's code, written out (cs231n/fast_layers.py).
    x_reshaped, out_c = cache[1], cache[2]
    dx_reshaped = np.zeros_like(x_reshaped)
    mask = x_reshaped == out_c[:, :, :, np.newaxis, :, np.newaxis]
    dout_broadcast, _ = np.broadcast_arrays(dout[:, :, :, np.newaxis, :, np.newaxis],
                                            dx_reshaped)
    dx_reshaped[mask] = dout_broadcast[mask]
    dx_reshaped /= np.sum(mask, axis=(3, 5), keepdims=True)
    np.testing.assert_array_equal(dx, dx_reshaped.reshape(x.shape))


def test_max_pool_backward_fast_follows_its_method_on_ties():
    x, dout = _tied()
    out, cache = max_pool_forward_fast(x, POOL_2X2)
    assert cache[0] == "reshape"
    np.testing.assert_array_equal(max_pool_backward_fast(dout, cache)[0, 0, 0, :2], [0.5, 0.5])
    out, cache = max_pool_forward_im2col(x, POOL_2X2)
    np.testing.assert_array_equal(max_pool_backward_im2col(dout, cache)[0, 0, 0, :2], [2, 0])


def test_max_pool_reshape_backward_ties_with_random_data_and_relu_zeros():
    rs = np.random.default_rng(3)
    x = np.maximum(rs.standard_normal((4, 5, 8, 6)), 0)   # many all-zero windows
    out, cache = max_pool_forward_reshape(x, POOL_2X2)
    dout = rs.standard_normal(out.shape)
    dx = max_pool_backward_reshape(dout, cache)
    mask = cache[1] == out[:, :, :, None, :, None]
    want = np.where(mask, (dout / mask.sum(axis=(3, 5)))[:, :, :, None, :, None], 0)
    np.testing.assert_array_equal(dx, want.reshape(x.shape))


# ---------------------------------------------------------------------------
# Contract: names, caches, dtypes, errors
# ---------------------------------------------------------------------------

def test_star_import_defines_exactly_the_assignments_names():
    assert set(cs231n.__all__) == NAMES
    namespace = {}
    exec("from cyconv.compat.cs231n import *", namespace)
    assert set(namespace) - {"__builtins__"} == NAMES


def test_fast_names_are_the_assignments_aliases():
    assert cs231n.conv_forward_fast is cs231n.conv_forward_strides
    assert cs231n.conv_backward_fast is cs231n.conv_backward_strides
    assert cs231n.conv_forward_im2col is cs231n.conv_forward_strides
    assert cs231n.conv_backward_im2col is cs231n.conv_backward_strides


def test_caches_hold_what_the_assignment_caches():
    x, w, b, conv_param = _conv_check_inputs()
    _, cache = conv_forward_naive(x, w, b, conv_param)
    assert len(cache) == 4 and all(a is c for a, c in zip(cache, (x, w, b, conv_param)))
    _, cache = conv_forward_fast(x, w, b, conv_param)
    assert all(a is c for a, c in zip(cache[:4], (x, w, b, conv_param)))
    np.testing.assert_array_equal(cache[4], x.transpose(0, 2, 3, 1))
    xp = _pool_check_input()
    _, cache = max_pool_forward_naive(xp, POOL_2X2)
    assert cache[0] is xp and cache[1] is POOL_2X2
    out, cache = max_pool_forward_reshape(xp, POOL_2X2)
    assert cache[0] is xp and cache[1].shape == (2, 3, 2, 2, 2, 2) and cache[2] is out
    assert np.shares_memory(cache[1], xp)   # a view, as the assignment's reshape
    out, cache = max_pool_forward_im2col(xp, POOL_2X2)
    assert cache[0] is xp and cache[1] is None and cache[3] is POOL_2X2
    assert cache[2].shape == out.shape and cache[2].dtype == np.int32


def test_inputs_are_not_modified():
    x, w, b, conv_param = _conv_check_inputs()
    copies = [a.copy() for a in (x, w, b)]
    out, cache = conv_forward_fast(x, w, b, conv_param)
    dout = np.ones_like(out)
    conv_backward_fast(dout, cache)
    conv_backward_naive(dout, cache)
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)
    assert np.all(dout == 1)


def test_any_memory_layout_is_accepted():
    x, w, b, conv_param = _conv_check_inputs()
    out, _ = conv_forward_naive(np.asfortranarray(x), w[:, :, ::-1, ::-1][:, :, ::-1, ::-1],
                                b, conv_param)
    assert rel_error(out, CONV_CORRECT_OUT) < 1e-7
    out, _ = max_pool_forward_fast(np.asfortranarray(_pool_check_input()), POOL_2X2)
    assert rel_error(out, POOL_CORRECT_OUT) < 1e-7


def test_integer_input_computes_in_float64():
    out, _ = conv_forward_naive(np.ones((1, 1, 3, 3), dtype=np.int64),
                                np.ones((1, 1, 2, 2), dtype=np.int64), np.zeros(1, np.int64),
                                {"stride": 1, "pad": 0})
    assert out.dtype == np.float64 and np.all(out == 4)


@pytest.mark.parametrize("call, error, match", [
    (lambda: conv_forward_naive(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1),
                                {"stride": 1}), KeyError, "pad"),
    (lambda: conv_forward_naive(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1),
                                {"stride": 0, "pad": 0}), ValueError, "stride"),
    (lambda: conv_forward_naive(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1),
                                {"stride": 1.0, "pad": 0}), TypeError, "stride"),
    (lambda: conv_forward_naive(np.ones((1, 1, 3, 3)), np.ones((1, 2, 2, 2)), np.zeros(1),
                                {"stride": 1, "pad": 0}), ValueError, "channels"),
    (lambda: conv_forward_naive(np.ones((1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1),
                                {"stride": 1, "pad": 0}), ValueError, "x must be 4-D"),
    (lambda: conv_forward_naive(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(2),
                                {"stride": 1, "pad": 0}), ValueError, "b must have shape"),
    (lambda: conv_forward_naive(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1),
                                [1, 0]), TypeError, "conv_param must be a dict"),
    (lambda: conv_backward_naive(np.ones((1, 1, 2, 2)), (1, 2)), ValueError, "cache"),
    (lambda: conv_backward_fast(np.ones((1, 2, 2, 2)),
                                conv_forward_fast(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)),
                                                  np.zeros(1), {"stride": 1, "pad": 0})[1]),
     ValueError, "dout must have"),
    (lambda: max_pool_forward_naive(np.ones((1, 1, 4, 4)), {"pool_height": 2, "stride": 2}),
     KeyError, "pool_width"),
    (lambda: max_pool_forward_reshape(np.ones((1, 1, 5, 5)), POOL_2X2), ValueError,
     "pool_height == pool_width == stride"),
    (lambda: max_pool_backward_naive(np.ones((1, 1, 3, 3)),
                                     (np.ones((1, 1, 4, 4)), POOL_2X2)), ValueError,
     "dout must have"),
    (lambda: max_pool_backward_fast(np.ones((1, 1, 2, 2)), ("other", ())), ValueError,
     "Unrecognized method"),
])
def test_bad_arguments_raise_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_docstrings_name_shapes_and_have_examples():
    for name in NAMES:
        doc = getattr(cs231n, name).__doc__
        assert "Examples" in doc and ">>>" in doc, name


def test_a_notebooks_three_layer_step_runs_unchanged():
    # conv - relu - 2x2 max pool, as cs231n/layer_utils.py's conv_relu_pool_*.
    rs = np.random.RandomState(231)
    x, w, b = rs.randn(2, 3, 16, 16), rs.randn(3, 3, 3, 3), rs.randn(3,)
    dout = rs.randn(2, 3, 8, 8)
    conv_param, pool_param = {"stride": 1, "pad": 1}, POOL_2X2

    def forward(x, w, b):
        a, conv_cache = conv_forward_fast(x, w, b, conv_param)
        s = np.maximum(a, 0)
        out, pool_cache = max_pool_forward_fast(s, pool_param)
        return out, (conv_cache, a, pool_cache)

    out, (conv_cache, a, pool_cache) = forward(x, w, b)
    ds = max_pool_backward_fast(dout, pool_cache)
    dx, dw, db = conv_backward_fast(ds * (a > 0), conv_cache)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: forward(x, w, b)[0], w, dout)
    assert rel_error(dx, dx_num) < 1e-6
    assert rel_error(dw, dw_num) < 1e-6
