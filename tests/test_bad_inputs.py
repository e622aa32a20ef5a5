"""A corpus of bad (and odd) inputs for every public function.

Each case asserts either the right exception type with the offending
argument's name in the message, or a correct result; and in both cases that
no input array changed. Sizes stay tiny so nothing can hang. The few calls
that could crash the interpreter or allocate absurd memory run in a child
process with a 2 GiB address-space limit and a timeout.

Empty inputs (the behaviour today, tested below; see docs/guide/conventions.md, "Empty arrays"):

=========================  ===========================================================
input                      result
=========================  ===========================================================
m = 0                      every function: empty result of the right shape
C = 0 (pools)              forward: (m, o_h, o_w, 0); backward: zeros of x's shape
C_in = 0 (conv2d)          z = the bias broadcast; backward: dx, dw empty, db = sum(dz)
C_out = 0 (conv2d)         z (m, o_h, o_w, 0); backward: dx zeros, dw and db empty
n_H or n_W = 0, window     ValueError naming the axis ("height (axis 1)" /
does not fit the padding   "width (axis 2)") and the sizes, every function
n_H or n_W = 0, padding    pools: every window lies in the padding: max -inf, avg 0;
>= window                  backward: zeros of x's (empty) shape; conv2d: the bias
f_h or f_w = 0 (conv2d)    ValueError "w must have a kernel of at least 1x1"
=========================  ===========================================================
"""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import TOL

import cyconv
from cyconv import reference

# --------------------------------------------------------------------------
# The six public functions, called on a dict of named arguments
# --------------------------------------------------------------------------

CONV_X, CONV_W = (1, 5, 5, 2), (3, 3, 2, 3)
POOL_X = (1, 4, 4, 2)


def good_args(op, dtype=np.float64):
    """Fresh, valid arguments of ``op`` (only the arrays and x_shape)."""
    rng = np.random.default_rng(0)
    if op.startswith("conv2d"):
        a = {"x": rng.standard_normal(CONV_X), "w": rng.standard_normal(CONV_W)}
        if op == "conv2d":
            a["b"] = rng.standard_normal(CONV_W[3])
        else:
            a["dz"] = rng.standard_normal((1, 3, 3, 3))
    else:
        a = {"x": rng.standard_normal(POOL_X)}
        if op.endswith("backward"):
            a["dp"] = rng.standard_normal((1, 2, 2, 2))
        if op == "avg_pool2d_backward":
            a["x_shape"] = a.pop("x").shape
    return {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in a.items()}


def call(op, a, lib=cyconv, **kw):
    """``lib.op`` on the arguments ``a`` (pools with pool_size 2 unless given)."""
    f = getattr(lib, op)
    if op == "conv2d":
        return f(a["x"], a["w"], a.get("b"), **kw)
    if op == "conv2d_backward":
        return f(a["dz"], a["x"], a["w"], **kw)
    pool = kw.pop("pool_size", 2)
    if op in ("max_pool2d", "avg_pool2d"):
        return f(a["x"], pool, **kw)
    if op == "max_pool2d_backward":
        return f(a["dp"], a["x"], pool, **kw)
    return f(a["dp"], a["x_shape"], pool, **kw)


OPS = ["conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
       "avg_pool2d_backward"]
POOL_OPS = OPS[2:]
# (op, argument) for every array argument of every function
ARRAY_ARGS = [(op, name) for op in OPS for name in good_args(op)
              if name not in ("x_shape",)]
FOUR_D_ARGS = [(op, name) for op, name in ARRAY_ARGS if name != "b"]


class Unchanged:
    """Snapshots of every array in ``a``; ``check()`` asserts none changed."""

    def __init__(self, a):
        self.items = [(k, v, v.copy()) for k, v in a.items() if isinstance(v, np.ndarray)]

    def check(self):
        for k, v, c in self.items:
            np.testing.assert_array_equal(v, c, err_msg=f"{k} was modified")


def results(r):
    return r if isinstance(r, tuple) else (r,)


def assert_same_results(got, want, dtype=np.float64):
    for g, w in zip(results(got), results(want)):
        assert g.dtype == np.dtype(dtype)
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, **TOL[dtype])


# --------------------------------------------------------------------------
# Wrong ndim, wrong channels, wrong shapes
# --------------------------------------------------------------------------

def _with_ndim(a, ndim):
    if ndim < 4:
        return a[(0,) * (4 - ndim)]
    return a[(None,) * (ndim - 4)]


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 5, 6])
@pytest.mark.parametrize("op, arg", FOUR_D_ARGS, ids=[f"{o}-{n}" for o, n in FOUR_D_ARGS])
def test_wrong_ndim_raises_value_error_naming_the_argument(op, arg, ndim):
    a = good_args(op)
    a[arg] = _with_ndim(a[arg], ndim)
    keep = Unchanged(a)
    with pytest.raises(ValueError, match=rf"^{arg} must be 4-D, got {ndim}-D"):
        call(op, a)
    keep.check()


@pytest.mark.parametrize("shape", [(3, 1), (1, 3), (1, 1, 3), (1, 1, 1, 1, 3), (), (2,), (4,),
                                   (1, 1, 1, 4), (3, 1, 1, 1)])
def test_conv2d_bias_of_the_wrong_shape_names_b(shape):
    a = good_args("conv2d")
    a["b"] = np.ones(shape)
    keep = Unchanged(a)
    with pytest.raises(ValueError, match=r"^b must have shape \(3,\) or \(1, 1, 1, 3\)"):
        call("conv2d", a)
    keep.check()


# (op, argument, new shape, regex of the message)
MISMATCHES = [
    ("conv2d", "w", (3, 3, 3, 3), r"conv2d: w has 3 input channels \(w.shape\[2\]\) but x has 2"),
    ("conv2d", "w", (3, 3, 1, 3), r"conv2d: w has 1 input channels"),
    ("conv2d_backward", "w", (3, 3, 4, 3), r"conv2d_backward: w has 4 input channels"),
    ("conv2d_backward", "dz", (1, 3, 3, 4), r"^dz must have the forward output's shape \(1, 3, 3, 3\)"),
    ("conv2d_backward", "dz", (1, 3, 2, 3), r"^dz must have the forward output's shape"),
    ("conv2d_backward", "dz", (2, 3, 3, 3), r"^dz must have the forward output's shape"),
    ("max_pool2d_backward", "dp", (1, 2, 2, 3), r"^dp must have the forward output's shape \(1, 2, 2, 2\)"),
    ("max_pool2d_backward", "dp", (1, 2, 1, 2), r"^dp must have the forward output's shape"),
    ("max_pool2d_backward", "dp", (2, 2, 2, 2), r"^dp must have the forward output's shape"),
    ("avg_pool2d_backward", "dp", (1, 2, 2, 3), r"^dp must have the forward output's shape \(1, 2, 2, 2\)"),
    ("avg_pool2d_backward", "dp", (1, 3, 2, 2), r"^dp must have the forward output's shape"),
]


@pytest.mark.parametrize("op, arg, shape, message", MISMATCHES,
                         ids=[f"{c[0]}-{c[1]}{c[2]}" for c in MISMATCHES])
def test_mismatched_channels_and_shapes_raise_value_error_naming_the_argument(
        op, arg, shape, message):
    a = good_args(op)
    a[arg] = np.ones(shape)
    keep = Unchanged(a)
    with pytest.raises(ValueError, match=message):
        call(op, a)
    keep.check()


def test_max_pool2d_backward_x_of_other_channels_than_dp_names_dp():
    a = good_args("max_pool2d_backward")
    a["x"] = np.ones((1, 4, 4, 5))
    with pytest.raises(ValueError, match=r"^dp must have the forward output's shape \(1, 2, 2, 5\)"):
        call("max_pool2d_backward", a)


@pytest.mark.parametrize("x_shape, error, message", [
    ((1, 4, 4), ValueError, r"^x_shape must be 4 non-negative ints"),
    ((1, 4, 4, 2, 1), ValueError, r"^x_shape must be 4 non-negative ints"),
    ((1, -4, 4, 2), ValueError, r"^x_shape must be 4 non-negative ints"),
    (None, TypeError, r"^x_shape must be a tuple of 4 ints"),
    ("abcd", TypeError, r"^x_shape must be a tuple of 4 ints"),
    (4, TypeError, r"^x_shape must be a tuple of 4 ints"),
    ((1, "4", 4, 2), TypeError, r"^x_shape must be a tuple of 4 ints"),  # no int("4")
])
def test_avg_pool2d_backward_bad_x_shape_names_x_shape(x_shape, error, message):
    a = good_args("avg_pool2d_backward")
    a["x_shape"] = x_shape
    keep = Unchanged(a)
    if error is None:
        assert call("avg_pool2d_backward", a).shape == POOL_X
    else:
        with pytest.raises(error, match=message):
            call("avg_pool2d_backward", a)
    keep.check()


@pytest.mark.parametrize("x_shape", [(1, 4, 4, 2), [1, 4, 4, 2], np.array([1, 4, 4, 2]),
                                     (np.int64(1), np.int32(4), 4, np.uint8(2))])
def test_avg_pool2d_backward_takes_x_shape_as_any_sequence_of_ints(x_shape):
    a = good_args("avg_pool2d_backward")
    want = call("avg_pool2d_backward", dict(a, x_shape=POOL_X), lib=reference)
    a["x_shape"] = x_shape
    assert_same_results(call("avg_pool2d_backward", a), want)


@pytest.mark.parametrize("x_shape", [(1, 4.5, 4, 2), (1, 4.0, 4, 2), (True, 4, 4, 2)])
def test_avg_pool2d_backward_rejects_non_integer_x_shape(x_shape):
    a = good_args("avg_pool2d_backward")
    a["x_shape"] = x_shape
    with pytest.raises(TypeError, match="x_shape"):
        call("avg_pool2d_backward", a)


# --------------------------------------------------------------------------
# Empty axes
# --------------------------------------------------------------------------

def _conv_case(x_shape, w_shape, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = np.arange(1.0, w_shape[3] + 1)
    return x, w, b


EMPTY_CONV = [  # (x shape, w shape, padding, z shape)
    ((0, 5, 5, 2), (3, 3, 2, 3), 0, (0, 3, 3, 3)),
    ((0, 5, 5, 2), (3, 3, 2, 3), "same", (0, 5, 5, 3)),
    ((2, 5, 5, 0), (3, 3, 0, 3), 0, (2, 3, 3, 3)),
    ((2, 5, 5, 0), (3, 3, 0, 3), 1, (2, 5, 5, 3)),
    ((2, 5, 5, 2), (3, 3, 2, 0), 0, (2, 3, 3, 0)),
    ((2, 0, 5, 2), (1, 1, 2, 3), 1, (2, 2, 7, 3)),   # every window in the padding: the bias
    ((2, 5, 0, 2), (1, 3, 2, 3), (0, 2), (2, 5, 2, 3)),
    ((0, 0, 0, 0), (1, 1, 0, 3), 1, (0, 2, 2, 3)),
]


@pytest.mark.parametrize("x_shape, w_shape, padding, z_shape", EMPTY_CONV,
                         ids=[f"x{c[0]}-w{c[1]}-p{c[2]}".replace(" ", "") for c in EMPTY_CONV])
def test_conv2d_empty_axes_give_a_result_of_the_right_shape(x_shape, w_shape, padding, z_shape):
    x, w, b = _conv_case(x_shape, w_shape, padding)
    keep = Unchanged(dict(x=x, w=w, b=b))
    z = cyconv.conv2d(x, w, b, padding=padding)
    assert z.shape == z_shape and z.dtype == np.float64
    np.testing.assert_array_equal(z, reference.conv2d(x, w, b, padding=padding))
    if x.size == 0:  # nothing to convolve: the bias everywhere
        np.testing.assert_array_equal(z, np.broadcast_to(b, z_shape))
    dz = np.random.default_rng(2).standard_normal(z_shape)
    dx, dw, db = cyconv.conv2d_backward(dz, x, w, padding=padding)
    rdx, rdw, rdb = reference.conv2d_backward(dz, x, w, padding=padding)
    assert (dx.shape, dw.shape, db.shape) == (x_shape, w_shape, (w_shape[3],))
    np.testing.assert_array_equal(dx, rdx)
    np.testing.assert_array_equal(dw, rdw)
    np.testing.assert_allclose(db, rdb, rtol=1e-12)
    keep.check()


@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward"])
@pytest.mark.parametrize("x_shape, padding, axis", [
    ((2, 0, 5, 2), 0, "height (axis 1)"), ((2, 5, 0, 2), 0, "width (axis 2)"),
    ((2, 0, 5, 2), 1, "height (axis 1)"), ((0, 0, 0, 0), 0, "height (axis 1)"),
])
def test_conv2d_spatial_zero_without_room_for_the_window_names_the_axis(op, x_shape, padding, axis):
    a = {"x": np.ones(x_shape), "w": np.ones((3, 3, x_shape[3], 2)), "b": None,
         "dz": np.ones((x_shape[0], 1, 1, 2))}
    with pytest.raises(ValueError, match=re.escape(f"{op}: the window is larger than the "
                                                   f"padded input along {axis}")):
        call(op, a, padding=padding)


@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward"])
def test_conv2d_zero_sized_kernel_raises(op):
    a = {"x": np.ones((1, 4, 4, 2)), "w": np.ones((0, 3, 2, 2)), "b": None,
         "dz": np.ones((1, 5, 2, 2))}
    with pytest.raises(ValueError, match=rf"{op}: w must have a kernel of at least 1x1"):
        call(op, a)


EMPTY_POOL = [  # (x shape, padding, output shape)
    ((0, 4, 4, 2), 0, (0, 2, 2, 2)),
    ((0, 4, 4, 2), 1, (0, 3, 3, 2)),
    ((2, 4, 4, 0), 0, (2, 2, 2, 0)),
    ((2, 4, 4, 0), "same", (2, 2, 2, 0)),
    ((2, 0, 4, 2), 1, (2, 1, 3, 2)),     # windows wholly in the padding
    ((2, 4, 0, 2), (0, 1), (2, 2, 1, 2)),
    ((0, 0, 0, 0), 1, (0, 1, 1, 0)),
]


@pytest.mark.parametrize("x_shape, padding, p_shape", EMPTY_POOL,
                         ids=[f"x{c[0]}-p{c[1]}".replace(" ", "") for c in EMPTY_POOL])
@pytest.mark.parametrize("cip", [True, False])
def test_pools_empty_axes_give_a_result_of_the_right_shape(x_shape, padding, p_shape, cip):
    x = np.random.default_rng(3).standard_normal(x_shape)
    dp = np.random.default_rng(4).standard_normal(p_shape)
    keep = Unchanged(dict(x=x, dp=dp))
    p_max = cyconv.max_pool2d(x, 2, padding=padding)
    p_avg = cyconv.avg_pool2d(x, 2, padding=padding, count_include_pad=cip)
    assert p_max.shape == p_avg.shape == p_shape
    assert np.all(p_max == -np.inf) and np.all(p_avg == 0)  # x is empty: padding only
    if x_shape[3] > 0:  # reference.max_pool2d cannot take C = 0 (np.reshape(-1, 0) fails)
        np.testing.assert_array_equal(p_max, reference.max_pool2d(x, 2, padding=padding))
    np.testing.assert_array_equal(
        p_avg, reference.avg_pool2d(x, 2, padding=padding, count_include_pad=cip))
    dx_max = cyconv.max_pool2d_backward(dp, x, 2, padding=padding)
    dx_avg = cyconv.avg_pool2d_backward(dp, x_shape, 2, padding=padding, count_include_pad=cip)
    assert dx_max.shape == dx_avg.shape == x_shape
    assert dx_max.dtype == dx_avg.dtype == np.float64
    keep.check()


@pytest.mark.parametrize("op", POOL_OPS)
@pytest.mark.parametrize("x_shape, axis", [((2, 0, 4, 2), "height (axis 1)"),
                                           ((2, 4, 0, 2), "width (axis 2)")])
def test_pools_spatial_zero_without_padding_names_the_axis(op, x_shape, axis):
    a = {"x": np.ones(x_shape), "x_shape": x_shape, "dp": np.ones((2, 1, 1, 2))}
    with pytest.raises(ValueError, match=re.escape(f"{op}: the window is larger than the "
                                                   f"padded input along {axis}")):
        call(op, a)


def test_reference_max_pool2d_with_zero_channels_fails():
    # Not cyconv's bug: the reference cannot take C = 0 (cyconv gives (m, o_h, o_w, 0)).
    with pytest.raises(ValueError, match="cannot reshape"):
        reference.max_pool2d(np.ones((2, 4, 4, 0)), 2)


# --------------------------------------------------------------------------
# stride, pool_size, padding, num_threads
# --------------------------------------------------------------------------

BAD_PARAMS = [  # (keyword, value, exception, message start); the ops it applies to
    ("stride", 0, ValueError, "stride must be >= 1"),
    ("stride", -1, ValueError, "stride must be >= 1"),
    ("stride", (1, 0), ValueError, "stride must be >= 1"),
    ("stride", (0, 1), ValueError, "stride must be >= 1"),
    ("stride", (-2, 1), ValueError, "stride must be >= 1"),
    ("stride", [2, -1], ValueError, "stride must be >= 1"),
    ("stride", 1.5, TypeError, "stride must be an int or a pair"),
    ("stride", "2", TypeError, "stride must be an int or a pair"),
    ("stride", True, TypeError, "stride must be an int or a pair"),
    ("stride", (1,), TypeError, "stride must be an int or a pair"),
    ("stride", (1, 2, 3), TypeError, "stride must be an int or a pair"),
    ("stride", (1.0, 1), TypeError, "stride must be an int or a pair"),
    ("padding", -1, ValueError, "padding must be >= 0"),
    ("padding", (0, -1), ValueError, "padding must be >= 0"),
    ("padding", ((0, 0), (-1, 0)), ValueError, "padding must be >= 0"),
    ("padding", "full", ValueError, "padding must be 'valid' or 'same'"),
    ("padding", "", ValueError, "padding must be 'valid' or 'same'"),
    ("padding", 1.5, TypeError, "padding must be an int"),
    ("padding", None, TypeError, "padding must be an int"),
    ("padding", (1, 2, 3), TypeError, "padding must be an int"),
    ("padding", ((1, 2), (3,)), TypeError, "padding must be an int"),
    ("padding", ((1, 2), 3), TypeError, "padding must be an int"),
    ("padding", True, TypeError, "padding must be an int"),
    ("num_threads", 0, ValueError, "num_threads must be None or an int >= 1"),
    ("num_threads", -2, ValueError, "num_threads must be None or an int >= 1"),
    ("num_threads", 1.5, TypeError, "num_threads must be None or an int >= 1"),
    ("num_threads", "2", TypeError, "num_threads must be None or an int >= 1"),
]
POOL_SIZE_PARAMS = [
    ("pool_size", 0, ValueError, "pool_size must be >= 1"),
    ("pool_size", -1, ValueError, "pool_size must be >= 1"),
    ("pool_size", (2, 0), ValueError, "pool_size must be >= 1"),
    ("pool_size", 2.0, TypeError, "pool_size must be an int or a pair"),
    ("pool_size", None, TypeError, "pool_size must be an int or a pair"),
    ("pool_size", True, TypeError, "pool_size must be an int or a pair"),
    ("pool_size", "2", TypeError, "pool_size must be an int or a pair"),
]
PARAM_CASES = ([(op, *p) for op in OPS for p in BAD_PARAMS]
               + [(op, *p) for op in POOL_OPS for p in POOL_SIZE_PARAMS]
               + [(op, "stride", None, TypeError, "stride must be an int or a pair")
                  for op in ("conv2d", "conv2d_backward")])


@pytest.mark.parametrize("op, key, value, error, message", PARAM_CASES,
                         ids=[f"{c[0]}-{c[1]}={c[2]!r}" for c in PARAM_CASES])
def test_bad_parameters_raise_naming_the_parameter(op, key, value, error, message):
    a = good_args(op)
    keep = Unchanged(a)
    with pytest.raises(error, match="^" + re.escape(message)):
        call(op, a, **{key: value})
    keep.check()


# --------------------------------------------------------------------------
# Huge padding and strides
# --------------------------------------------------------------------------

HUGE = 10**9


@pytest.mark.parametrize("op", OPS[1:])
def test_huge_stride_and_padding_work_like_a_small_analog(op):
    # With stride = padding = s >= n, output position 1 is the only window on
    # real data and 0, 2 lie in the padding: the result does not depend on s.
    a = good_args(op)
    if op == "conv2d_backward":
        a["x"], a["w"], a["dz"] = a["x"][:, :4, :4], a["w"][:, :, :, :1], np.ones((1, 3, 3, 1))
    elif op.endswith("backward"):
        a["dp"] = np.random.default_rng(5).standard_normal((1, 3, 3, 2))
    kw = {} if op.startswith("conv") else {"pool_size": 3}
    keep = Unchanged(a)
    small = call(op, a, stride=5, padding=5, **kw)
    huge = call(op, a, stride=HUGE, padding=HUGE, **kw)
    for h, s in zip(results(huge), results(small)):
        np.testing.assert_array_equal(h, s)
    keep.check()


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "avg_pool2d_backward"])
def test_huge_pool_and_padding_work_like_a_small_analog(op):
    a = good_args(op)
    if op.endswith("backward"):
        a["dp"] = np.ones((1, 2, 2, 2))
    # count_include_pad=False: the divisor (the real elements) does not depend on the pool
    kw = {"count_include_pad": False} if op.startswith("avg") else {}
    small = call(op, a, pool_size=10, padding=10, **kw)
    huge = call(op, a, pool_size=HUGE, padding=HUGE, **kw)
    np.testing.assert_array_equal(huge, small)
    if kw:  # and with True, the divisor is the window: HUGE**2 instead of 100
        np.testing.assert_allclose(call(op, a, pool_size=HUGE, padding=HUGE) * (HUGE**2 / 100),
                                   call(op, a, pool_size=10, padding=10), rtol=1e-12)


def test_max_pool2d_backward_rejects_a_huge_pool_naming_pool_size():
    a = good_args("max_pool2d_backward")
    a["dp"] = np.ones((1, 2, 2, 2))
    with pytest.raises(ValueError, match="^pool_size must cover fewer than 2\\*\\*31"):
        call("max_pool2d_backward", a, pool_size=HUGE, padding=HUGE)


@pytest.mark.parametrize("op", ["conv2d_backward", "max_pool2d_backward", "avg_pool2d_backward"])
@pytest.mark.parametrize("padding", [HUGE, (HUGE, 0), ((0, HUGE), (0, 0)), 2**63])
def test_backward_with_huge_padding_rejects_the_gradient_shape(op, padding):
    # The forward output would be gigantic, so no gradient of that shape exists.
    a = good_args(op)
    grad = "dz" if op == "conv2d_backward" else "dp"
    with pytest.raises(ValueError, match=f"^{grad} must have the forward output's shape"
                                         "|padding"):
        call(op, a, padding=padding)


@pytest.mark.parametrize("op", ["conv2d", "max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("padding", [HUGE, 2**62, 2**63, 10**30])
def test_forward_with_absurd_padding_raises_value_error_naming_padding(op, padding):
    with pytest.raises(ValueError, match="padding"):
        call(op, good_args(op), padding=padding)


@pytest.mark.parametrize("op", OPS)
def test_stride_beyond_ssize_t_raises_naming_stride(op):
    a = good_args(op)
    for g in ("dz", "dp"):  # the output is 1 x 1 with such a stride
        if g in a:
            a[g] = a[g][:, :1, :1]
    with pytest.raises((ValueError, OverflowError), match="stride"):
        call(op, a, stride=2**63)


def run_isolated(code, limit_bytes=2 * 2**30, timeout=120):
    """Run ``code`` in a child Python with an address-space limit.

    Returns (returncode, stdout, stderr); a crash shows as a negative code.
    """
    def limit():  # pragma: no cover - runs in the child
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    prelude = "import numpy as np, cyconv\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limit,
                          check=False)
    return proc.returncode, proc.stdout, proc.stderr


needs_rlimit = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="uses RLIMIT_AS (Linux; not under AddressSanitizer, whose shadow memory needs "
           "terabytes of address space)")


@needs_rlimit
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "conv2d"])
def test_huge_one_sided_padding_fails_cleanly_under_a_memory_limit(op):
    # ((0, 10**9), (0, 0)) asks for an output of ~5e8 (pools) or 1e9 (conv)
    # rows: a real request of 8-16 GB. Today it is simply allocated (without a
    # memory limit max_pool2d takes ~40 s and ~15 GB here); under a 2 GiB limit
    # it must fail with a clean exception, not a crash.
    w = "" if op != "conv2d" else ", np.ones((3, 3, 2, 2))"
    arg = "" if op == "conv2d" else ", 2"
    rc, out, err = run_isolated(f"""
        try:
            r = cyconv.{op}(np.ones((1, 4, 4, 2)){w}{arg}, padding=((0, {HUGE}), (0, 0)))
            print("OK", r.shape)
        except (ValueError, MemoryError) as e:
            print("RAISED", type(e).__name__, e)
    """)
    assert rc == 0, err
    assert out.startswith(("OK", "RAISED")), out


@needs_rlimit
def test_conv2d_huge_stride_and_padding_works_like_a_small_analog():
    rc, out, err = run_isolated(f"""
        x = np.arange(1.0, 33.0).reshape(1, 4, 4, 2)
        w = np.ones((3, 3, 2, 1))
        small = cyconv.conv2d(x, w, stride=5, padding=5)
        huge = cyconv.conv2d(x, w, stride={HUGE}, padding={HUGE})
        print("EQUAL" if np.array_equal(small, huge) else "DIFFERENT")
    """)
    assert rc == 0, err
    assert out.strip() == "EQUAL"


@needs_rlimit
@pytest.mark.parametrize("p", [2**61, 2**62])
def test_conv2d_astronomic_stride_and_padding_do_not_crash(p):
    rc, out, err = run_isolated(f"""
        x = np.arange(1.0, 33.0).reshape(1, 4, 4, 2)
        w = np.ones((3, 3, 2, 1))
        try:
            z = cyconv.conv2d(x, w, stride={p}, padding={p})
            print("EQUAL" if np.array_equal(z, cyconv.conv2d(x, w, stride=5, padding=5))
                  else "DIFFERENT")
        except (ValueError, MemoryError, OverflowError) as e:
            print("RAISED", type(e).__name__, e)
    """)
    assert rc == 0, f"crashed with return code {rc}: {err[-500:]}"
    assert out.startswith(("EQUAL", "RAISED")), out


@needs_rlimit
def test_conv2d_wrapped_scratch_size_gives_no_wrong_answer():
    rc, out, err = run_isolated("""
        try:
            z = cyconv.conv2d(np.ones((1, 1, 1, 1)), np.ones((1, 2, 1, 1)),
                              stride=(1, 2**62), padding=(0, 2**61))
            print("VALUE", float(z.ravel()[0]))
        except (ValueError, MemoryError, OverflowError) as e:
            print("RAISED", type(e).__name__, e)
    """)
    assert rc == 0, f"crashed with return code {rc}: {err[-500:]}"
    # the only window covers padded columns 0 and 1: both padding
    assert out.strip() in ("VALUE 0.0",) or out.startswith("RAISED"), out


# --------------------------------------------------------------------------
# NaN and Inf
# --------------------------------------------------------------------------

def assert_ieee_equal(actual, desired, dtype):
    """Same NaN, +inf and -inf positions; the finite values close."""
    assert actual.shape == desired.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired), err_msg="NaN mask")
    np.testing.assert_array_equal(np.isposinf(actual), np.isposinf(desired), err_msg="+inf mask")
    np.testing.assert_array_equal(np.isneginf(actual), np.isneginf(desired), err_msg="-inf mask")
    fin = np.isfinite(desired)
    np.testing.assert_allclose(actual[fin], desired[fin], **TOL[dtype])


def _poison(a, seed, nan=True, posinf=True, neginf=True):
    a = a.copy()
    rng = np.random.default_rng(seed)
    flat = a.reshape(-1)
    idx = rng.choice(flat.size, size=3, replace=False)
    for i, v, on in zip(idx, (np.nan, np.inf, -np.inf), (nan, posinf, neginf)):
        if on:
            flat[i] = v
    return a


DTYPES = [np.float32, np.float64]
CONV_PADS = [0, "valid", (0, 0)]                 # no padding at all
CONV_PADS_ALL = [0, 1, "same", ((2, 0), (1, 2))]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("padding", CONV_PADS_ALL)
@pytest.mark.parametrize("seed", range(3))
def test_conv2d_propagates_nan_and_inf_of_x_like_the_reference(dtype, padding, seed):
    a = good_args("conv2d", dtype)
    a["x"] = _poison(a["x"], seed)
    keep = Unchanged(a)
    z = call("conv2d", a, padding=padding)
    assert_ieee_equal(z, call("conv2d", a, lib=reference, padding=padding), dtype)
    dz = np.random.default_rng(seed).standard_normal(z.shape).astype(dtype)
    got = cyconv.conv2d_backward(dz, a["x"], a["w"], padding=padding)
    want = reference.conv2d_backward(dz, a["x"], a["w"], padding=padding)
    for g, r in zip(got, want):
        assert_ieee_equal(g, r, dtype)
    keep.check()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("padding", CONV_PADS)
@pytest.mark.parametrize("where", ["w", "b", "dz"])
@pytest.mark.parametrize("seed", range(3))
def test_conv2d_propagates_nan_and_inf_of_w_b_dz_like_the_reference(dtype, padding, where, seed):
    a = good_args("conv2d_backward", dtype)
    a["b"] = np.random.default_rng(9).standard_normal(3).astype(dtype)
    a[where] = _poison(a[where], seed)
    keep = Unchanged(a)
    assert_ieee_equal(call("conv2d", a, padding=padding),
                      call("conv2d", a, lib=reference, padding=padding), dtype)
    for g, r in zip(call("conv2d_backward", a, padding=padding),
                    call("conv2d_backward", a, lib=reference, padding=padding)):
        assert_ieee_equal(g, r, dtype)
    keep.check()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_conv2d_padding_never_multiplies_non_finite_values():
    # The contract (docs/guide/conventions.md): taps in the padding are left out of
    # the sums, so an inf/NaN weight over the padding never meets a padding
    # zero. cyconv.reference, which pads with zeros, gives NaN there instead.
    x = np.ones((1, 3, 3, 1))
    w = np.zeros((3, 3, 1, 1))
    w[0, 0] = np.inf
    z = cyconv.conv2d(x, w, padding=1)[0, :, :, 0]
    np.testing.assert_array_equal(z, [[0, 0, 0], [0, np.inf, np.inf], [0, np.inf, np.inf]])
    dz = np.zeros((1, 3, 3, 1))
    dz[0, 0, 0] = np.inf
    dw = cyconv.conv2d_backward(dz, x, np.ones((3, 3, 1, 1)), padding=1)[1][:, :, 0, 0]
    np.testing.assert_array_equal(dw, [[0, 0, 0], [0, np.inf, np.inf], [0, np.inf, np.inf]])


def test_max_pool2d_nan_window_outputs_nan_and_routes_the_gradient_to_its_first_nan():
    x = np.array([[1.0, np.nan], [np.nan, 5.0]]).reshape(1, 2, 2, 1)
    keep = Unchanged(dict(x=x))
    p = cyconv.max_pool2d(x, 2)
    assert np.isnan(p).all()
    dx = cyconv.max_pool2d_backward(np.full((1, 1, 1, 1), 3.0), x, 2)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 3.0], [0.0, 0.0]])
    keep.check()


def test_max_pool2d_inf_rules():
    x = np.array([[-np.inf, np.inf], [np.inf, 1.0]]).reshape(1, 2, 2, 1)
    assert cyconv.max_pool2d(x, 2).item() == np.inf
    dx = cyconv.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])  # first +inf
    x = np.full((1, 2, 2, 1), -np.inf)  # all -inf: a real element still gets the gradient
    assert cyconv.max_pool2d(x, 2).item() == -np.inf
    dx = cyconv.max_pool2d_backward(np.ones((1, 2, 2, 1)), x, 2, padding=1, stride=2)
    np.testing.assert_array_equal(dx, np.ones_like(x))  # 4 windows, one real element each


POOL_GEOMS = [(2, None, 0), (3, 1, 1), (2, 1, "same"), ((2, 3), (1, 2), ((0, 1), (2, 1)))]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", [1, 3, 17])   # scalar tails and vector lanes
@pytest.mark.parametrize("pool, stride, padding", POOL_GEOMS)
@pytest.mark.parametrize("seed", range(2))
def test_pools_with_nan_and_inf_match_the_reference(dtype, c, pool, stride, padding, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 6, 6, c)).astype(dtype)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    x[rng.random(x.shape) < 0.05] = -np.inf
    keep = Unchanged(dict(x=x))
    kw = dict(stride=stride, padding=padding)
    p = cyconv.max_pool2d(x, pool, **kw)
    np.testing.assert_array_equal(p, reference.max_pool2d(x, pool, **kw))  # NaN-aware
    dp = rng.standard_normal(p.shape).astype(dtype)
    dp.reshape(-1)[0], dp.reshape(-1)[-1] = np.nan, np.inf
    assert_ieee_equal(cyconv.max_pool2d_backward(dp, x, pool, **kw),
                      reference.max_pool2d_backward(dp, x, pool, **kw), dtype)
    for cip in (True, False):
        assert_ieee_equal(cyconv.avg_pool2d(x, pool, count_include_pad=cip, **kw),
                          reference.avg_pool2d(x, pool, count_include_pad=cip, **kw), dtype)
        assert_ieee_equal(
            cyconv.avg_pool2d_backward(dp, x.shape, pool, count_include_pad=cip, **kw),
            reference.avg_pool2d_backward(dp, x.shape, pool, count_include_pad=cip, **kw),
            dtype)
    keep.check()


# --------------------------------------------------------------------------
# Non-array inputs and bad dtypes
# --------------------------------------------------------------------------

NON_ARRAYS = [  # (value, exception, message template)
    (1.0, ValueError, "{arg} must be 4-D, got 0-D"),
    (3, ValueError, "{arg} must be 4-D, got 0-D"),
    ([1.0, 2.0], ValueError, "{arg} must be 4-D, got 1-D"),
    (None, TypeError, "{arg} must hold real numbers (float, int or bool), got dtype object"),
    ("abc", TypeError, "{arg} must hold real numbers (float, int or bool), got dtype <U3"),
    (b"abc", TypeError, "{arg} must hold real numbers (float, int or bool), got dtype |S3"),
    (object(), TypeError, "{arg} must hold real numbers (float, int or bool), got dtype object"),
    ({}, TypeError, "{arg} must hold real numbers (float, int or bool), got dtype object"),
    ([[1.0], [1.0, 2.0]], TypeError, "{arg} must be array-like, got list"),  # ragged
]


NON_ARRAY_CASES = [(op, arg, *v) for op, arg in ARRAY_ARGS for v in NON_ARRAYS
                   if not (arg == "b" and v[0] is None)]  # b=None: no bias


@pytest.mark.parametrize("op, arg, value, error, message", NON_ARRAY_CASES,
                         ids=[f"{c[0]}-{c[1]}={type(c[2]).__name__}{NON_ARRAYS.index(c[2:])}"
                              for c in NON_ARRAY_CASES])
def test_non_array_inputs_raise_naming_the_argument(op, arg, value, error, message):
    a = good_args(op)
    a[arg] = value
    keep = Unchanged(a)
    if arg == "b" and error is ValueError:  # b is 1-D or 4-D, checked by shape
        error, message = ValueError, "b must have shape"
    with pytest.raises(error, match="^" + re.escape(message.format(arg=arg))):
        call(op, a)
    keep.check()


@pytest.mark.parametrize("op", OPS)
def test_nested_lists_work_like_arrays(op):
    a = good_args(op)
    want = call(op, a)
    as_lists = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in a.items()}
    for g, w in zip(results(call(op, as_lists)), results(want)):
        np.testing.assert_array_equal(g, w)


BAD_DTYPES = [object, np.complex128, np.complex64, "U3", "S3", "V8", "datetime64[s]",
              "timedelta64[s]"]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=[np.dtype(d).name for d in BAD_DTYPES])
@pytest.mark.parametrize("op, arg", ARRAY_ARGS, ids=[f"{o}-{n}" for o, n in ARRAY_ARGS])
def test_non_real_dtypes_raise_type_error_naming_the_argument(op, arg, dtype):
    a = good_args(op)
    shape = a[arg].shape
    if np.dtype(dtype).kind in "OcUS":
        a[arg] = np.ones(shape).astype(dtype)
    else:
        a[arg] = np.zeros(shape, dtype=dtype)
    keep = Unchanged(a)
    with pytest.raises(TypeError, match=f"^{arg} must hold real numbers"):
        call(op, a)
    keep.check()


# --------------------------------------------------------------------------
# bool, int and float16 inputs
# --------------------------------------------------------------------------

PROMOTED = [(np.bool_, np.float64), (np.int8, np.float64), (np.uint8, np.float64),
            (np.int32, np.float64), (np.int64, np.float64), (np.uint64, np.float64),
            (np.float16, np.float32)]


@pytest.mark.parametrize("in_dtype, out_dtype", PROMOTED,
                         ids=[np.dtype(d).name for d, _ in PROMOTED])
@pytest.mark.parametrize("op", OPS)
def test_bool_int_and_float16_inputs_are_promoted(op, in_dtype, out_dtype):
    a = good_args(op)
    a = {k: ((v * 3).astype(in_dtype) if isinstance(v, np.ndarray) else v) for k, v in a.items()}
    keep = Unchanged(a)
    got = call(op, a)
    as_float = {k: (v.astype(out_dtype) if isinstance(v, np.ndarray) else v)
                for k, v in a.items()}
    want = call(op, as_float, lib=reference)
    for g, w in zip(results(got), results(want)):
        assert g.dtype == np.dtype(out_dtype)
        np.testing.assert_allclose(g, w, **TOL[out_dtype])
    keep.check()


@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward", "max_pool2d_backward"])
def test_int_mixed_with_float32_computes_in_float64(op):
    # docs/guide/conventions.md: integer inputs compute in float64, so int8 with float32 gives float64
    # (NumPy's own promotion, and the reference, would give float32 here).
    a = good_args(op, np.float32)
    a["x"] = (a["x"] * 3).astype(np.int8)
    for g in results(call(op, a)):
        assert g.dtype == np.float64


# --------------------------------------------------------------------------
# conv2d(..., out=)
# --------------------------------------------------------------------------

def _out_cases():
    rng = np.random.default_rng(6)
    # x (1, 3, 3, 2) with a 1x1 kernel 2 -> 2: out has x's shape
    x = rng.standard_normal((1, 3, 3, 2))
    w = rng.standard_normal((1, 1, 2, 2))
    b = rng.standard_normal(2)
    yield "out-is-x", dict(x=x, w=w, b=b), x, ValueError, "out must not share memory with the input x"
    x2 = rng.standard_normal((1, 3, 3, 2))
    yield "out-is-view-of-x", dict(x=x2, w=w, b=b), x2[...], ValueError, "out must not share memory with the input x"
    buf = rng.standard_normal(40)
    yield ("out-overlaps-w", dict(x=rng.standard_normal((1, 3, 3, 2)), w=buf[10:14].reshape(1, 1, 2, 2), b=b),
           buf[:18].reshape(1, 3, 3, 2), ValueError, "out must not share memory with the input w")
    b2 = rng.standard_normal(2)
    yield ("out-is-b", dict(x=rng.standard_normal((1, 1, 1, 2)), w=w, b=b2),
           b2.reshape(1, 1, 1, 2), ValueError, "out must not share memory with the input b")
    buf2 = rng.standard_normal(40)
    yield ("x-inside-out", dict(x=buf2[2:20].reshape(1, 3, 3, 2)[:, :, :, ::-1], w=w, b=b),
           buf2[:18].reshape(1, 3, 3, 2), ValueError, "out must not share memory with the input x")
    ro = np.zeros((1, 3, 3, 2))
    ro.flags.writeable = False
    xs = dict(x=rng.standard_normal((1, 3, 3, 2)), w=w, b=b)
    yield "out-read-only", xs, ro, ValueError, "out must be C-contiguous and writeable"
    yield "out-fortran", xs, np.zeros((2, 3, 3, 1)).T, ValueError, "out must be C-contiguous and writeable"
    yield "out-wrong-dtype", xs, np.zeros((1, 3, 3, 2), np.float32), ValueError, "out must have shape (1, 3, 3, 2) and dtype float64"
    yield "out-wrong-shape", xs, np.zeros((1, 3, 3, 3)), ValueError, "out must have shape (1, 3, 3, 2)"
    yield "out-list", xs, [[0.0]], TypeError, "out must be a NumPy array, got list"


OUT_CASES = list(_out_cases())


@pytest.mark.parametrize("name, a, out, error, message", OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_conv2d_bad_out_raises_before_writing_anything(name, a, out, error, message):
    keep = Unchanged(dict(a, out=out) if isinstance(out, np.ndarray) else a)
    with pytest.raises(error, match="^" + re.escape(message)):
        cyconv.conv2d(a["x"], a["w"], a["b"], out=out)
    keep.check()  # neither the inputs nor out were touched


def test_conv2d_out_sharing_a_buffer_with_x_but_disjoint_is_accepted():
    buf = np.random.default_rng(8).standard_normal(64)
    out, x = buf[:18].reshape(1, 3, 3, 2), buf[32:50].reshape(1, 3, 3, 2)
    w = np.ones((1, 1, 2, 2))
    want = reference.conv2d(x, w)
    assert cyconv.conv2d(x, w, out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-12)
