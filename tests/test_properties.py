"""Property-based tests (hypothesis): every kernel against cyconv.reference, plus invariants.

Hypothesis draws the geometry (batch, spatial size, channels, kernel or pool
size, stride as int or pair, every padding form), the dtype and the memory
layout of each input (C order, Fortran order, strided view, negative strides,
read-only), and only valid geometry (output size >= 1 on both axes). Array
values come from a NumPy generator seeded by hypothesis, so examples stay
cheap and shrink to a small seed; ``quantize`` rounds them to a coarse grid so
max-pool windows hold ties (the first-maximum rule) and zeros.

Profiles (tests/conftest.py): "ci" by default (60 examples per test,
derandomized), ``--hypothesis-profile=long`` for 2000.
``--hypothesis-show-statistics`` prints how many examples each test ran.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from conftest import TOL
from hypothesis import given, note
from hypothesis import strategies as st

import cyconv
from cyconv import reference

DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = ["C", "F", "strided", "negative", "readonly", "channel-slice"]
layout = st.sampled_from(LAYOUTS)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

# what fills the gaps of the strided layouts: values no kernel may read
_GARBAGE = {"f": np.nan, "i": -7}


def relayout(a, kind):
    """The values of ``a`` (any ndim) in memory layout ``kind``."""
    if kind == "C":
        return np.ascontiguousarray(a)
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided":  # every other element of a bigger array, on every axis
        big = np.full(tuple(2 * n + 1 for n in a.shape), _GARBAGE[a.dtype.kind], dtype=a.dtype)
        view = big[(slice(1, None, 2),) * a.ndim]
        view[...] = a
        return view
    if kind == "negative":
        rev = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
        return rev[(slice(None, None, -1),) * a.ndim]
    if kind == "readonly":
        ro = a.copy()
        ro.flags.writeable = False
        return ro
    if kind == "channel-slice":  # last axis a non-contiguous slice of a wider one
        wide = np.full(a.shape[:-1] + (a.shape[-1] + 3,), _GARBAGE[a.dtype.kind], dtype=a.dtype)
        view = wide[..., 1:1 + a.shape[-1]]
        view[...] = a
        return view
    raise AssertionError(kind)


class Unchanged:
    """Snapshots of the inputs; ``check()`` asserts none was modified."""

    def __init__(self, **arrays):
        self.arrays = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}
        self.copies = {k: v.copy() for k, v in self.arrays.items()}

    def check(self):
        for k, a in self.arrays.items():
            np.testing.assert_array_equal(a, self.copies[k], err_msg=f"{k} was modified")


def assert_matches(actual, desired, dtype, what=""):
    assert actual.dtype == np.dtype(dtype), what
    assert actual.shape == desired.shape, what
    assert actual.flags.c_contiguous, what
    np.testing.assert_allclose(actual, desired, **TOL[dtype], err_msg=what)


def pads_of(padding, n_hw, f_hw, s_hw):
    """((top, bottom), (left, right)) of any padding form (the documented rules)."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        out = []
        for n, f, s in zip(n_hw, f_hw, s_hw):
            total = max((-(-n // s) - 1) * s + f - n, 0)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0],) * 2, (padding[1],) * 2)
    return tuple(padding)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------

def strides(max_s=3):
    return st.one_of(st.integers(1, max_s),
                     st.tuples(st.integers(1, max_s), st.integers(1, max_s)))


@st.composite
def geometries(draw, max_f=4, max_pad=3, max_extra=5):
    """(n_hw, f_hw, stride, padding) with an output of at least 1 x 1.

    Padding is drawn first (every form); the spatial size is then at least
    what the window needs in the padded input.
    """
    f_hw = (draw(st.integers(1, max_f)), draw(st.integers(1, max_f)))
    stride = draw(strides())
    p = st.integers(0, max_pad)
    padding = draw(st.one_of(
        p,
        st.tuples(p, p),
        st.tuples(st.tuples(p, p), st.tuples(p, p)),
        st.sampled_from(["valid", "same"]),
    ))
    if isinstance(padding, str):
        base = ((0, 0), (0, 0))  # "same" never needs more than n >= 1
    else:
        base = pads_of(padding, None, None, None)
    if padding == "same":
        lo = (1, 1)
    else:
        lo = tuple(max(1, f - sum(pd)) for f, pd in zip(f_hw, base))
    n_hw = (draw(st.integers(lo[0], lo[0] + max_extra)),
            draw(st.integers(lo[1], lo[1] + max_extra)))
    return n_hw, f_hw, stride, padding


@st.composite
def data(draw, shape, dtype):
    """A float array of ``shape``: standard normal, or rounded to a coarse grid."""
    seed = draw(st.integers(0, 2**32 - 1))
    quantize = draw(st.booleans())
    a = np.random.default_rng(seed).standard_normal(shape)
    if quantize:
        a = np.round(a * 2) / 2  # ties and zeros
    return a.astype(dtype)


@st.composite
def conv_cases(draw):
    dtype = draw(DTYPES)
    m = draw(st.integers(1, 3))
    c_in = draw(st.integers(1, 4))
    c_out = draw(st.integers(1, 5))
    n_hw, f_hw, stride, padding = draw(geometries())
    x = draw(data((m, *n_hw, c_in), dtype))
    w = draw(data((*f_hw, c_in, c_out), dtype))
    note(f"x {x.shape} w {w.shape} stride {stride!r} padding {padding!r} {np.dtype(dtype)}")
    return dtype, x, w, stride, padding


@st.composite
def pool_cases(draw, max_pad=3):
    dtype = draw(DTYPES)
    m = draw(st.integers(1, 3))
    c = draw(st.sampled_from([1, 2, 3, 5, 8, 17]))  # odd counts hit the scalar tails
    n_hw, f_hw, stride, padding = draw(geometries(max_pad=max_pad))
    # pool_size as an int when square (sometimes), else a pair; stride None = pool_size
    pool_size = f_hw[0] if f_hw[0] == f_hw[1] and draw(st.booleans()) else f_hw
    stride = draw(st.one_of(st.none(), st.just(stride)))
    x = draw(data((m, *n_hw, c), dtype))
    note(f"x {x.shape} pool_size {pool_size!r} stride {stride!r} padding {padding!r} "
         f"{np.dtype(dtype)}")
    return dtype, x, pool_size, stride, padding


# --------------------------------------------------------------------------
# Every kernel against the reference
# --------------------------------------------------------------------------

@given(case=conv_cases(), bias=st.sampled_from([None, "flat", "notes"]),
       lx=layout, lw=layout, lb=layout, use_out=st.booleans())
def test_conv2d_matches_reference(case, bias, lx, lw, lb, use_out):
    dtype, x, w, stride, padding = case
    c_out = w.shape[3]
    b = None
    if bias is not None:
        b = np.random.default_rng(7).standard_normal(c_out).astype(dtype)
        b = relayout(b if bias == "flat" else b.reshape(1, 1, 1, c_out), lb)
    want = reference.conv2d(x, w, b, stride=stride, padding=padding)
    xs, ws = relayout(x, lx), relayout(w, lw)
    keep = Unchanged(x=xs, w=ws, b=b)
    out = np.full(want.shape, np.nan, dtype=dtype) if use_out else None
    z = cyconv.conv2d(xs, ws, b, stride=stride, padding=padding, out=out)
    if use_out:
        assert z is out
    assert_matches(z, want, dtype)
    keep.check()


@given(case=conv_cases(), lz=layout, lx=layout, lw=layout,
       grads=st.sampled_from([("dx", "dw", "db"), ("dx",), ("dw",), ("db",), ("dw", "db"),
                              ("dx", "db")]))
def test_conv2d_backward_matches_reference(case, lz, lx, lw, grads):
    dtype, x, w, stride, padding = case
    z = reference.conv2d(x, w, stride=stride, padding=padding)
    dz = np.random.default_rng(11).standard_normal(z.shape).astype(dtype)
    want = reference.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    args = relayout(dz, lz), relayout(x, lx), relayout(w, lw)
    keep = Unchanged(dz=args[0], x=args[1], w=args[2])
    got = cyconv.conv2d_backward(*args, stride=stride, padding=padding, grads=grads)
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        if name in grads:
            assert_matches(g, r, dtype, name)
        else:
            assert g is None, name
    keep.check()


@given(case=pool_cases(), lx=layout)
def test_max_pool2d_matches_reference(case, lx):
    dtype, x, pool_size, stride, padding = case
    want = reference.max_pool2d(x, pool_size, stride=stride, padding=padding)
    xs = relayout(x, lx)
    keep = Unchanged(x=xs)
    p = cyconv.max_pool2d(xs, pool_size, stride=stride, padding=padding)
    assert p.dtype == np.dtype(dtype) and p.flags.c_contiguous
    np.testing.assert_array_equal(p, want)  # a max is exact
    keep.check()


@given(case=pool_cases(), lp=layout, lx=layout)
def test_max_pool2d_backward_matches_reference(case, lp, lx):
    dtype, x, pool_size, stride, padding = case
    p = reference.max_pool2d(x, pool_size, stride=stride, padding=padding)
    dp = np.random.default_rng(3).standard_normal(p.shape).astype(dtype)
    want = reference.max_pool2d_backward(dp, x, pool_size, stride=stride, padding=padding)
    dps, xs = relayout(dp, lp), relayout(x, lx)
    keep = Unchanged(dp=dps, x=xs)
    dx = cyconv.max_pool2d_backward(dps, xs, pool_size, stride=stride, padding=padding)
    assert_matches(dx, want, dtype)  # overlapping windows sum in any order
    keep.check()


@given(case=pool_cases(), lp=layout, lx=layout)
def test_max_pool2d_indices_route_exactly_as_the_backward_from_x(case, lp, lx):
    dtype, x, pool_size, stride, padding = case
    kw = dict(stride=stride, padding=padding)
    p, indices = cyconv.max_pool2d(relayout(x, lx), pool_size, return_indices=True, **kw)
    np.testing.assert_array_equal(
        indices, reference.max_pool2d(x, pool_size, return_indices=True, **kw)[1])
    dp = np.random.default_rng(3).standard_normal(p.shape).astype(dtype)
    ins = relayout(indices, lp)
    keep = Unchanged(indices=ins)
    dx = cyconv.max_pool2d_backward(dp, x, pool_size, indices=ins, **kw)
    np.testing.assert_array_equal(dx, cyconv.max_pool2d_backward(dp, x, pool_size, **kw))
    keep.check()


@given(case=pool_cases(), lx=layout, cip=st.booleans())
def test_avg_pool2d_matches_reference(case, lx, cip):
    dtype, x, pool_size, stride, padding = case
    want = reference.avg_pool2d(x, pool_size, stride=stride, padding=padding,
                                count_include_pad=cip)
    xs = relayout(x, lx)
    keep = Unchanged(x=xs)
    p = cyconv.avg_pool2d(xs, pool_size, stride=stride, padding=padding, count_include_pad=cip)
    assert_matches(p, want, dtype)
    keep.check()


@given(case=pool_cases(), lp=layout, cip=st.booleans(),
       shape_as=st.sampled_from(["tuple", "list", "array"]))
def test_avg_pool2d_backward_matches_reference(case, lp, cip, shape_as):
    dtype, x, pool_size, stride, padding = case
    p = reference.avg_pool2d(x, pool_size, stride=stride, padding=padding)
    dp = np.random.default_rng(5).standard_normal(p.shape).astype(dtype)
    want = reference.avg_pool2d_backward(dp, x.shape, pool_size, stride=stride, padding=padding,
                                         count_include_pad=cip)
    x_shape = {"tuple": x.shape, "list": list(x.shape), "array": np.array(x.shape)}[shape_as]
    dps = relayout(dp, lp)
    keep = Unchanged(dp=dps)
    dx = cyconv.avg_pool2d_backward(dps, x_shape, pool_size, stride=stride, padding=padding,
                                    count_include_pad=cip)
    assert_matches(dx, want, dtype)
    keep.check()


# --------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------

# Relative bound on the rounding of a sum, as a multiple of the sum of the
# absolute values of its terms (the "condition" scale below): generous for the
# few dozen terms these shapes have, far below any real error.
REL = {np.float32: 1e-5, np.float64: 1e-13}


def _scale_conv(x, w, stride, padding):
    # |conv|(x, w): the sum of |terms| of every output element, in float64.
    return reference.conv2d(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64),
                            stride=stride, padding=padding)


@given(case=conv_cases(), a=st.sampled_from([-2.0, -0.5, 0.0, 1.0, 3.0]),
       c=st.sampled_from([-1.5, 0.25, 1.0, 2.0]))
def test_conv2d_is_linear_in_x(case, a, c):
    dtype, x1, w, stride, padding = case
    x2 = np.random.default_rng(13).standard_normal(x1.shape).astype(dtype)
    lhs = cyconv.conv2d((a * x1 + c * x2).astype(dtype), w, stride=stride, padding=padding)
    rhs = (a * cyconv.conv2d(x1, w, stride=stride, padding=padding).astype(np.float64)
           + c * cyconv.conv2d(x2, w, stride=stride, padding=padding).astype(np.float64))
    scale = (abs(a) * _scale_conv(x1, w, stride, padding)
             + abs(c) * _scale_conv(x2, w, stride, padding))
    err = np.abs(lhs - rhs)
    assert np.all(err <= 8 * REL[dtype] * scale + 1e-30), err.max()


@given(case=conv_cases(), a=st.sampled_from([-2.0, -0.5, 0.0, 1.0, 3.0]),
       c=st.sampled_from([-1.5, 0.25, 1.0, 2.0]))
def test_conv2d_is_linear_in_w(case, a, c):
    dtype, x, w1, stride, padding = case
    w2 = np.random.default_rng(17).standard_normal(w1.shape).astype(dtype)
    lhs = cyconv.conv2d(x, (a * w1 + c * w2).astype(dtype), stride=stride, padding=padding)
    rhs = (a * cyconv.conv2d(x, w1, stride=stride, padding=padding).astype(np.float64)
           + c * cyconv.conv2d(x, w2, stride=stride, padding=padding).astype(np.float64))
    scale = (abs(a) * _scale_conv(x, w1, stride, padding)
             + abs(c) * _scale_conv(x, w2, stride, padding))
    err = np.abs(lhs - rhs)
    assert np.all(err <= 8 * REL[dtype] * scale + 1e-30), err.max()


@given(case=conv_cases())
def test_conv2d_backward_is_the_adjoint_of_conv2d(case):
    # <conv2d(x, w), dz> = <x, dx> = <w, dw> (no bias), to rounding.
    dtype, x, w, stride, padding = case
    z = cyconv.conv2d(x, w, stride=stride, padding=padding)
    dz = np.random.default_rng(19).standard_normal(z.shape).astype(dtype)
    dx, dw, _ = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    f64 = np.float64
    lhs = np.vdot(z.astype(f64), dz.astype(f64))
    # every side sums the same products x * w * dz; bound by their |sum|
    scale = np.vdot(_scale_conv(x, w, stride, padding), np.abs(dz).astype(f64))
    tol = 8 * REL[dtype] * scale + 1e-30
    assert abs(lhs - np.vdot(x.astype(f64), dx.astype(f64))) <= tol
    assert abs(lhs - np.vdot(w.astype(f64), dw.astype(f64))) <= tol


@given(case=pool_cases(max_pad=4), lp=layout)
def test_max_pool2d_backward_conserves_the_mass_of_dp(case, lp):
    # Each window passes its whole gradient to one element, except a window
    # lying wholly in the padding (output -inf), which passes none (documented).
    dtype, x, pool_size, stride, padding = case
    p = cyconv.max_pool2d(x, pool_size, stride=stride, padding=padding)
    dp = np.random.default_rng(23).standard_normal(p.shape).astype(dtype)
    dx = cyconv.max_pool2d_backward(relayout(dp, lp), x, pool_size, stride=stride,
                                    padding=padding)
    live = p != -np.inf  # x is finite: -inf only for windows wholly in the padding
    want = dp.astype(np.float64)[live].sum()
    tol = 8 * REL[dtype] * np.abs(dp).astype(np.float64).sum() + 1e-30
    assert abs(dx.astype(np.float64).sum() - want) <= tol
    if not isinstance(padding, str):
        widest = max(max(pd) for pd in pads_of(padding, None, None, None))
        if widest < min(_pair(pool_size)):
            assert live.all()  # no window lies wholly in the padding


@given(case=pool_cases(max_pad=4), cip=st.booleans())
def test_avg_pool2d_backward_conserves_the_mass_of_dp(case, cip):
    # With count_include_pad=False (or no padding at all) a window spreads all
    # of dp over its real elements; one with no real element (padding >= pool
    # size) passes nothing. With count_include_pad=True and padding, the share
    # of the padded positions is dropped: no conservation, nothing to check.
    dtype, x, pool_size, stride, padding = case
    f_hw = _pair(pool_size)
    s_hw = f_hw if stride is None else _pair(stride)
    pads = pads_of(padding, x.shape[1:3], f_hw, s_hw)
    padded = any(v for pd in pads for v in pd)
    p = cyconv.avg_pool2d(x, pool_size, stride=stride, padding=padding)
    dp = np.random.default_rng(29).standard_normal(p.shape).astype(dtype)
    dx = cyconv.avg_pool2d_backward(dp, x.shape, pool_size, stride=stride, padding=padding,
                                    count_include_pad=cip)
    if cip and padded:
        return
    # windows with at least one real element: the mean of ones over real elements is 1
    live = cyconv.avg_pool2d(np.ones(x.shape), pool_size, stride=stride, padding=padding,
                             count_include_pad=False) > 0
    want = dp.astype(np.float64)[live].sum()
    tol = 8 * REL[dtype] * np.abs(dp).astype(np.float64).sum() + 1e-30
    assert abs(dx.astype(np.float64).sum() - want) <= tol


@given(case=conv_cases())
def test_conv2d_results_are_bitwise_identical_for_any_thread_count(case):
    dtype, x, w, stride, padding = case
    z1 = cyconv.conv2d(x, w, stride=stride, padding=padding, num_threads=1)
    z3 = cyconv.conv2d(x, w, stride=stride, padding=padding, num_threads=3)
    np.testing.assert_array_equal(z1, z3)
    dz = np.random.default_rng(31).standard_normal(z1.shape).astype(dtype)
    g1 = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding, num_threads=1)
    g3 = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding, num_threads=3)
    for name, a, b in zip(("dx", "dw", "db"), g1, g3):
        np.testing.assert_array_equal(a, b, err_msg=name)


# --------------------------------------------------------------------------
# Regression: dw when no output column has its whole window inside x (found by
# these tests: _dw_item's edge ranges were not clipped, and taps in the right
# padding read x past the end of the row)
# --------------------------------------------------------------------------

@st.composite
def wide_kernel_cases(draw):
    """Conv geometry where no output column has its whole window inside x."""
    dtype = draw(DTYPES)
    m, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n_h, n_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    p_h = draw(st.integers(0, 1))
    f_h, f_w = draw(st.integers(1, min(3, n_h + 2 * p_h))), draw(st.integers(n_w + 1, n_w + 4))
    p_l, p_r = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    need = f_w - n_w - p_l - p_r
    if need > 0:
        p_r += need
    padding = ((p_h, p_h), (p_l, p_r))
    x = draw(data((m, n_h, n_w, c_in), dtype))
    w = draw(data((f_h, f_w, c_in, c_out), dtype))
    return dtype, x, w, 1, padding


@given(case=wide_kernel_cases())
def test_conv2d_backward_dw_with_a_kernel_wider_than_the_image(case):
    dtype, x, w, stride, padding = case
    note(f"x {x.shape} w {w.shape} padding {padding!r}")
    dz = np.random.default_rng(37).standard_normal(
        reference.conv2d(x, w, stride=stride, padding=padding).shape).astype(dtype)
    _, dw, _ = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    _, want, _ = reference.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    assert_matches(dw, want, dtype)


def test_conv2d_backward_dw_kernel_wider_than_the_image_minimal():
    x = np.array([1.0, 100.0]).reshape(1, 2, 1, 1)   # image 1 pixel wide, 2 rows
    w = np.ones((1, 3, 1, 1))                          # kernel 3 wide
    dz = np.ones((1, 2, 1, 1))
    _, dw, _ = cyconv.conv2d_backward(dz, x, w, padding=(0, 1))
    # tap 2 only ever sees the right padding (the bug gave 100: row 1's pixel)
    np.testing.assert_array_equal(dw.ravel(), [0.0, 101.0, 0.0])


# --------------------------------------------------------------------------
# Issue 16: dilation, ceil_mode, global pools
# --------------------------------------------------------------------------

@st.composite
def pool_geometry_cases(draw, dilate=True):
    """A pool case with ``dilation`` (max only) and ``ceil_mode`` drawn too."""
    dtype = draw(DTYPES)
    m = draw(st.integers(1, 2))
    c = draw(st.sampled_from([1, 3, 8, 17]))
    f_hw = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d_hw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilate else (1, 1)
    dilation = d_hw[0] if d_hw[0] == d_hw[1] and draw(st.booleans()) else d_hw
    stride = draw(st.one_of(st.none(), strides(4)))
    p = st.integers(0, 2)
    padding = draw(st.one_of(p, st.tuples(p, p), st.tuples(st.tuples(p, p), st.tuples(p, p)),
                             st.sampled_from(["valid", "same"])))
    extent = [d * (f - 1) + 1 for d, f in zip(d_hw, f_hw)]
    base = ((0, 0), (0, 0)) if isinstance(padding, str) else pads_of(padding, None, None, None)
    lo = [1 if padding == "same" else max(1, e - sum(pd)) for e, pd in zip(extent, base)]
    n_hw = (draw(st.integers(lo[0], lo[0] + 6)), draw(st.integers(lo[1], lo[1] + 6)))
    ceil_mode = draw(st.booleans())
    x = draw(data((m, *n_hw, c), dtype))
    pool_size = f_hw[0] if f_hw[0] == f_hw[1] and draw(st.booleans()) else f_hw
    kw = dict(stride=stride, padding=padding, ceil_mode=ceil_mode)
    if dilate:
        kw["dilation"] = dilation
    note(f"x {x.shape} pool_size {pool_size!r} {kw} {np.dtype(dtype)}")
    return dtype, x, pool_size, kw


@given(case=pool_geometry_cases(), lx=layout, lp=layout)
def test_max_pool2d_with_dilation_and_ceil_mode_matches_reference(case, lx, lp):
    dtype, x, pool_size, kw = case
    want, want_idx = reference.max_pool2d(x, pool_size, return_indices=True, **kw)
    xs = relayout(x, lx)
    keep = Unchanged(x=xs)
    p, idx = cyconv.max_pool2d(xs, pool_size, return_indices=True, **kw)
    np.testing.assert_array_equal(p, want)
    np.testing.assert_array_equal(idx, want_idx)
    dp = np.random.default_rng(3).standard_normal(p.shape).astype(dtype)
    dps = relayout(dp, lp)
    dx = cyconv.max_pool2d_backward(dps, xs, pool_size, **kw)
    assert_matches(dx, reference.max_pool2d_backward(dp, x, pool_size, **kw), dtype)
    np.testing.assert_array_equal(cyconv.max_pool2d_backward(dp, x, pool_size, indices=idx, **kw),
                                  dx)
    keep.check()


@given(case=pool_geometry_cases(dilate=False), lx=layout, cip=st.booleans())
def test_avg_pool2d_with_ceil_mode_matches_reference(case, lx, cip):
    dtype, x, pool_size, kw = case
    kw = dict(kw, count_include_pad=cip)
    xs = relayout(x, lx)
    keep = Unchanged(x=xs)
    p = cyconv.avg_pool2d(xs, pool_size, **kw)
    assert_matches(p, reference.avg_pool2d(x, pool_size, **kw), dtype)
    dp = np.random.default_rng(5).standard_normal(p.shape).astype(dtype)
    assert_matches(cyconv.avg_pool2d_backward(dp, x.shape, pool_size, **kw),
                   reference.avg_pool2d_backward(dp, x.shape, pool_size, **kw), dtype)
    keep.check()


@given(dtype=DTYPES, m=st.integers(1, 3), n_h=st.integers(1, 6), n_w=st.integers(1, 6),
       c=st.sampled_from([1, 3, 8, 17, 130]), seed=st.integers(0, 2**32 - 1),
       quantize=st.booleans(), nchw=st.booleans(), keepdims=st.booleans(), lx=layout)
def test_global_pools_match_reference(dtype, m, n_h, n_w, c, seed, quantize, nchw, keepdims, lx):
    x = np.random.default_rng(seed).standard_normal((m, n_h, n_w, c))
    if quantize:
        x = np.round(x * 2) / 2  # ties
    x = x.astype(dtype)
    lay = "NCHW" if nchw else "NHWC"
    if nchw:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    xs = relayout(x, lx)
    keep = Unchanged(x=xs)
    for kind in ("avg", "max"):
        p = getattr(cyconv, f"global_{kind}_pool2d")(xs, keepdims=keepdims, layout=lay)
        assert_matches(p, getattr(reference, f"global_{kind}_pool2d")(
            x, keepdims=keepdims, layout=lay), dtype, kind)
    dp = np.random.default_rng(7).standard_normal(p.shape).astype(dtype)
    assert_matches(cyconv.global_avg_pool2d_backward(dp, x.shape, layout=lay),
                   reference.global_avg_pool2d_backward(dp, x.shape, layout=lay), dtype)
    np.testing.assert_array_equal(cyconv.global_max_pool2d_backward(dp, xs, layout=lay),
                                  reference.global_max_pool2d_backward(dp, x, layout=lay))
# Dilation, groups (depthwise among them) and the transposed convolution
# --------------------------------------------------------------------------

@st.composite
def grouped_conv_cases(draw):
    """conv2d arguments with dilation (int or pair) and groups drawn too.

    groups is drawn first, then channels as multiples of it (so groups == C_in,
    the depthwise kernel, with any multiplier, comes up often); the spatial
    size is at least the dilated window's extent minus the padding.
    """
    dtype = draw(DTYPES)
    m = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 4))
    c_in = groups * draw(st.sampled_from([1, 1, 2, 3]))
    c_out = groups * draw(st.integers(1, 3))
    f_hw = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = draw(strides())
    d_hw = _pair(dilation)
    ext = tuple(d * (f - 1) + 1 for d, f in zip(d_hw, f_hw))
    stride = draw(strides())
    p = st.integers(0, 3)
    padding = draw(st.one_of(p, st.tuples(p, p), st.tuples(st.tuples(p, p), st.tuples(p, p)),
                             st.sampled_from(["valid", "same"])))
    base = ((0, 0), (0, 0)) if isinstance(padding, str) else pads_of(padding, None, None, None)
    lo = (1, 1) if padding == "same" else tuple(max(1, e - sum(pd)) for e, pd in zip(ext, base))
    n_hw = (draw(st.integers(lo[0], lo[0] + 5)), draw(st.integers(lo[1], lo[1] + 5)))
    x = draw(data((m, *n_hw, c_in), dtype))
    w = draw(data((*f_hw, c_in // groups, c_out), dtype))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    note(f"x {x.shape} w {w.shape} {kw} {np.dtype(dtype)}")
    return dtype, x, w, kw


@given(case=grouped_conv_cases(), lx=layout, lw=layout, relu=st.booleans())
def test_conv2d_with_dilation_and_groups_matches_reference(case, lx, lw, relu):
    dtype, x, w, kw = case
    act = "relu" if relu else None
    want = reference.conv2d(x, w, activation=act, **kw)
    xs, ws = relayout(x, lx), relayout(w, lw)
    keep = Unchanged(x=xs, w=ws)
    assert_matches(cyconv.conv2d(xs, ws, activation=act, **kw), want, dtype)
    keep.check()


@given(case=grouped_conv_cases(), lz=layout, lx=layout)
def test_conv2d_backward_with_dilation_and_groups_matches_reference(case, lz, lx):
    dtype, x, w, kw = case
    dz = np.random.default_rng(13).standard_normal(
        reference.conv2d(x, w, **kw).shape).astype(dtype)
    want = reference.conv2d_backward(dz, x, w, **kw)
    got = cyconv.conv2d_backward(relayout(dz, lz), relayout(x, lx), w, **kw)
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        assert_matches(g, r, dtype, name)


@st.composite
def transpose_cases(draw):
    """conv_transpose2d arguments: output_padding below the stride or the dilation."""
    dtype = draw(DTYPES)
    m = draw(st.integers(1, 2))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 3))
    f_hw = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s_hw = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d_hw = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    op_hw = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(s_hw, d_hw))
    n_hw = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    # padding: at most what leaves an output of >= 1 pixel
    full = [(n - 1) * s + d * (f - 1) + o + 1 for n, s, d, f, o in zip(n_hw, s_hw, d_hw, f_hw, op_hw)]
    p_hw = tuple(draw(st.integers(0, (fu - 1) // 2)) for fu in full)
    x = draw(data((m, *n_hw, c_in), dtype))
    w = draw(data((*f_hw, c_out // groups, c_in), dtype))
    kw = dict(stride=s_hw, padding=p_hw, output_padding=op_hw, dilation=d_hw, groups=groups)
    note(f"x {x.shape} w {w.shape} {kw} {np.dtype(dtype)}")
    return dtype, x, w, kw


@given(case=transpose_cases(), lx=layout, lw=layout)
def test_conv_transpose2d_and_backward_match_reference(case, lx, lw):
    dtype, x, w, kw = case
    want = reference.conv_transpose2d(x, w, **kw)
    xs, ws = relayout(x, lx), relayout(w, lw)
    keep = Unchanged(x=xs, w=ws)
    assert_matches(cyconv.conv_transpose2d(xs, ws, **kw), want, dtype)
    dy = np.random.default_rng(17).standard_normal(want.shape).astype(dtype)
    got = cyconv.conv_transpose2d_backward(dy, xs, ws, **kw)
    for name, g, r in zip(("dx", "dw", "db"), got,
                          reference.conv_transpose2d_backward(dy, x, w, **kw)):
        assert_matches(g, r, dtype, name)
    keep.check()
