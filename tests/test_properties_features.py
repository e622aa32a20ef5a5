"""Property-based tests of issue 16's features that tests/test_properties.py does not draw:
the layout (``"NCHW"`` beside ``"NHWC"``), the CPU level, and depthwise convolutions
with channel counts on and off the vector width (its strategies draw at most 12
channels).

Every example is checked against cyconv.reference on the NHWC arrays; the NCHW
call gets their transposes and its results are transposed back. The strategies
of test_properties.py (dilation, groups, ceil_mode, transposed geometry) are
reused as they are.
"""
import contextlib

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_properties import (  # noqa: E402
    DTYPES,
    assert_matches,
    data,
    grouped_conv_cases,
    pool_geometry_cases,
    strides,
    transpose_cases,
)

import cyconv  # noqa: E402
from cyconv import _dispatch, reference  # noqa: E402

LEVELS = st.sampled_from(_dispatch.cpu_levels())
LAYOUT = st.sampled_from(["NHWC", "NCHW"])


@contextlib.contextmanager
def at_level(level):
    before = _dispatch.cpu_level()
    _dispatch.set_cpu_level(level)
    try:
        yield
    finally:
        _dispatch.set_cpu_level(before)


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _oihw(w):
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _hwio(w):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _conv_in_layout(x, w, kw, layout, dz=None):
    """conv2d (and its backward with ``dz``) called in ``layout``, results as NHWC."""
    if layout == "NHWC":
        z = cyconv.conv2d(x, w, **kw)
        return z if dz is None else (z, cyconv.conv2d_backward(dz, x, w, **kw))
    z = _nhwc(cyconv.conv2d(_nchw(x), _oihw(w), layout="NCHW", **kw))
    if dz is None:
        return z
    dx, dw, db = cyconv.conv2d_backward(_nchw(dz), _nchw(x), _oihw(w), layout="NCHW", **kw)
    return z, (_nhwc(dx), _hwio(dw), db)


@given(case=grouped_conv_cases(), layout=LAYOUT, level=LEVELS)
def test_conv2d_with_dilation_groups_in_either_layout_at_any_level_matches_reference(
        case, layout, level):
    dtype, x, w, kw = case
    z_ref = reference.conv2d(x, w, **kw)
    dz = np.random.default_rng(1).standard_normal(z_ref.shape).astype(dtype)
    with at_level(level):
        z, grads = _conv_in_layout(x, w, kw, layout, dz)
    assert_matches(z, z_ref, dtype)
    for name, g, r in zip(("dx", "dw", "db"), grads, reference.conv2d_backward(dz, x, w, **kw)):
        assert_matches(g, r, dtype, name)


@st.composite
def depthwise_cases(draw):
    """groups == C_in with C_in around the vector widths (8, 16 floats) and beyond."""
    dtype = draw(DTYPES)
    m = draw(st.integers(1, 2))
    c = draw(st.sampled_from([4, 8, 15, 16, 17, 24, 32, 33, 40, 64]))
    multiplier = draw(st.sampled_from([1, 1, 2]))
    f_hw = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    d_hw = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = draw(strides(2))
    ext = [d * (f - 1) + 1 for d, f in zip(d_hw, f_hw)]
    pad = tuple(draw(st.integers(0, e // 2)) for e in ext)
    n_hw = tuple(draw(st.integers(max(1, e - 2 * p), max(1, e - 2 * p) + 9))
                 for e, p in zip(ext, pad))
    x = draw(data((m, *n_hw, c), dtype))
    w = draw(data((*f_hw, 1, c * multiplier), dtype))
    kw = dict(stride=stride, padding=pad, dilation=d_hw, groups=c)
    note(f"x {x.shape} w {w.shape} {kw} {np.dtype(dtype)}")
    return dtype, x, w, kw


@given(case=depthwise_cases(), layout=LAYOUT, level=LEVELS)
def test_depthwise_conv2d_of_many_channels_at_any_level_matches_reference(case, layout, level):
    dtype, x, w, kw = case
    z_ref = reference.conv2d(x, w, **kw)
    dz = np.random.default_rng(2).standard_normal(z_ref.shape).astype(dtype)
    with at_level(level):
        z, grads = _conv_in_layout(x, w, kw, layout, dz)
    assert_matches(z, z_ref, dtype)
    for name, g, r in zip(("dx", "dw", "db"), grads, reference.conv2d_backward(dz, x, w, **kw)):
        assert_matches(g, r, dtype, name)


@given(case=transpose_cases(), layout=LAYOUT, level=LEVELS)
def test_conv_transpose2d_in_either_layout_at_any_level_matches_reference(case, layout, level):
    dtype, x, w, kw = case
    y_ref = reference.conv_transpose2d(x, w, **kw)
    dy = np.random.default_rng(3).standard_normal(y_ref.shape).astype(dtype)
    with at_level(level):
        if layout == "NHWC":
            y = cyconv.conv_transpose2d(x, w, **kw)
            grads = cyconv.conv_transpose2d_backward(dy, x, w, **kw)
        else:
            y = _nhwc(cyconv.conv_transpose2d(_nchw(x), _oihw(w), layout="NCHW", **kw))
            dx, dw, db = cyconv.conv_transpose2d_backward(_nchw(dy), _nchw(x), _oihw(w),
                                                          layout="NCHW", **kw)
            grads = (_nhwc(dx), _hwio(dw), db)
    assert_matches(y, y_ref, dtype)
    for name, g, r in zip(("dx", "dw", "db"), grads,
                          reference.conv_transpose2d_backward(dy, x, w, **kw)):
        assert_matches(g, r, dtype, name)


@given(case=pool_geometry_cases(), layout=LAYOUT, level=LEVELS)
def test_max_pool2d_dilation_ceil_mode_in_either_layout_at_any_level(case, layout, level):
    dtype, x, pool_size, kw = case
    p_ref = reference.max_pool2d(x, pool_size, **kw)
    dp = np.random.default_rng(4).standard_normal(p_ref.shape).astype(dtype)
    dx_ref = reference.max_pool2d_backward(dp, x, pool_size, **kw)
    with at_level(level):
        if layout == "NHWC":
            p = cyconv.max_pool2d(x, pool_size, **kw)
            dx = cyconv.max_pool2d_backward(dp, x, pool_size, **kw)
        else:
            p = _nhwc(cyconv.max_pool2d(_nchw(x), pool_size, layout="NCHW", **kw))
            dx = _nhwc(cyconv.max_pool2d_backward(_nchw(dp), _nchw(x), pool_size,
                                                  layout="NCHW", **kw))
    np.testing.assert_array_equal(p, p_ref)
    assert_matches(dx, dx_ref, dtype)


@given(case=pool_geometry_cases(dilate=False), layout=LAYOUT, level=LEVELS, cip=st.booleans())
def test_avg_pool2d_ceil_mode_in_either_layout_at_any_level(case, layout, level, cip):
    dtype, x, pool_size, kw = case
    kw = dict(kw, count_include_pad=cip)
    p_ref = reference.avg_pool2d(x, pool_size, **kw)
    dp = np.random.default_rng(5).standard_normal(p_ref.shape).astype(dtype)
    dx_ref = reference.avg_pool2d_backward(dp, x.shape, pool_size, **kw)
    with at_level(level):
        if layout == "NHWC":
            p = cyconv.avg_pool2d(x, pool_size, **kw)
            dx = cyconv.avg_pool2d_backward(dp, x.shape, pool_size, **kw)
        else:
            p = _nhwc(cyconv.avg_pool2d(_nchw(x), pool_size, layout="NCHW", **kw))
            dx = _nhwc(cyconv.avg_pool2d_backward(_nchw(dp), _nchw(x).shape, pool_size,
                                                  layout="NCHW", **kw))
    assert_matches(p, p_ref, dtype)
    assert_matches(dx, dx_ref, dtype)
