"""Transposed 2-D convolution, forward and backward, on the convolution's own kernels.

A transposed convolution is the gradient of :func:`cyconv.conv2d` with
respect to its input, so it runs on the kernels of ``cyconv._conv`` with the
roles swapped (validate -> allocate -> kernel, as ``conv.py``):

===========================  ====================================================
``conv_transpose2d``         conv2d's dx kernel (gather form, no atomics)
its gradient wrt ``x``       conv2d's forward kernel
its gradient wrt ``w``       conv2d's dw kernel, with the roles of x and dz swapped
===========================  ====================================================

The convolution these run is the one whose input has the transposed
convolution's output shape: stride ``s``, padding ``p`` before each axis (the
padding after it, ``p - output_padding``, is implied by the shapes), dilation
``d``, ``groups``, and the same filters ``w``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, overload

import numpy as np
import numpy.typing as npt

from cyconv import conv as _conv
from cyconv._args import (
    MAX_EXTENT,
    FloatArray,
    Int,
    IntPair,
    _is_int,
    as_array,
    as_float_array,
    check_output_size,
    parse_pair,
    resolve_num_threads,
    result_dtype,
)
from cyconv._layout import parse_layout

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]

_Gradients = tuple[Optional[FloatArray], Optional[FloatArray], Optional[FloatArray]]


def _padding_pair(value: object, name: str) -> tuple[int, int]:
    # An int or (h, w) pair, each >= 0 (PyTorch's symmetric padding).
    return parse_pair(value, name, minimum=0)


def _transpose_geometry(op: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                        stride: IntPair, padding: IntPair, output_padding: IntPair,
                        dilation: IntPair, groups: Int) -> tuple[Any, ...]:
    """Checked ``(s, p, d, g, (o_h, o_w), C_out)`` of a transposed convolution."""
    m, n_h, n_w, c_in = x_shape
    f_h, f_w, w_c_out, w_c_in = w_shape
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be an int >= 1, got {groups!r}")
    g = int(groups)
    if g < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups!r}")
    if w_c_in != c_in:
        raise ValueError(f"{op}: w has {w_c_in} input channels (w.shape[3]) but x has {c_in} "
                         f"(x.shape[3]); w must be (f_h, f_w, C_out / groups, C_in)")
    if c_in % g:
        raise ValueError(f"{op}: groups={g} must divide the input channels ({c_in})")
    if f_h < 1 or f_w < 1:
        raise ValueError(f"{op}: w must have a kernel of at least 1x1, got shape {w_shape}")
    s = parse_pair(stride, "stride")
    p = _padding_pair(padding, "padding")
    op_ = _padding_pair(output_padding, "output_padding")
    d = parse_pair(dilation, "dilation")
    for axis, o, sa, da in zip(("height", "width"), op_, s, d):
        if o >= max(sa, da):
            raise ValueError(f"{op}: output_padding must be smaller than the stride or the "
                             f"dilation along {axis}, got output_padding {output_padding!r} "
                             f"with stride {stride!r} and dilation {dilation!r}")
    out = []
    for axis, n, f, sa, pa, da, o in zip(("height (axis 1)", "width (axis 2)"), (n_h, n_w),
                                         (f_h, f_w), s, p, d, op_):
        size = (n - 1) * sa - 2 * pa + da * (f - 1) + o + 1
        if size < 1:
            raise ValueError(f"{op}: padding {pa} crops the whole output along {axis}: "
                             f"(n - 1) * s - 2 * p + d * (f - 1) + output_padding + 1 = {size}")
        if size >= MAX_EXTENT:
            raise ValueError(f"{op}: the output along {axis} would have {size} pixels: too many")
        out.append(size)
    check_output_size(op, (out[0], out[1]), ((p[0], p[0]), (p[1], p[1])), s)
    return s, p, d, g, (out[0], out[1]), w_c_out * g


def conv_transpose2d(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *,
                     stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                     dilation: IntPair = 1, groups: Int = 1, out: FloatArray | None = None,
                     num_threads: Int | None = None, layout: str = "NHWC") -> FloatArray:
    """Transposed 2-D convolution ("deconvolution") of NHWC (or NCHW) data, PyTorch's rules.

    Parameters
    ----------
    x : array_like, shape (m, n_H, n_W, C_in)
        Input activations; ``(m, C_in, n_H, n_W)`` under ``layout="NCHW"``.
        Any memory layout; never modified.
    w : array_like, shape (f_h, f_w, C_out / groups, C_in)
        Filters, in TensorFlow's ``conv2d_transpose`` order: the filters of
        the convolution ``C_out -> C_in`` this one transposes, so the same
        ``w`` given to :func:`cyconv.conv2d` and to this function gives
        adjoint maps (see Notes). PyTorch's ``(C_in, C_out / groups, f_h,
        f_w)`` under ``layout="NCHW"``.
    b : array_like, shape (C_out,) or (1, 1, 1, C_out), optional
        Bias; none if omitted. ``(C_out,)`` or ``(1, C_out, 1, 1)`` under
        ``layout="NCHW"``.
    stride : int or (int, int), default 1
        Each >= 1: the output advances ``s`` pixels per input pixel.
    padding : int or (int, int), default 0
        Each >= 0: ``p`` pixels cut from both ends of each axis (the padding
        of the convolution this one transposes).
    output_padding : int or (int, int), default 0
        Each >= 0 and smaller than the stride or the dilation of its axis:
        pixels added at the end of each axis (choosing among the input
        sizes a strided convolution maps to the same output size).
    dilation : int or (int, int), default 1
        Spacing of the filter taps, each >= 1.
    groups : int, default 1
        Must divide ``C_in``; group ``g`` maps the input channels
        ``g*C_in/groups ..`` to the output channels ``g*C_out/groups ..``.
    out : ndarray, shape (m, o_H, o_W, C_out), optional
        C-contiguous, writeable array of the result dtype to write into; must
        not share memory with an input. ``(m, C_out, o_H, o_W)`` under
        ``layout="NCHW"``.
    num_threads : int, optional
        OpenMP threads; default every usable core.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        The order of ``x``, ``y`` (and ``out``) and of ``w`` as above. Under
        ``"NCHW"`` (PyTorch's ``conv_transpose2d`` layouts) the inputs are
        transposed to NHWC once, in parallel, and ``y`` is transposed back:
        the values are exactly those of the NHWC call.

    Returns
    -------
    y : ndarray, shape (m, o_H, o_W, C_out)
        ``o = (n - 1) * s - 2 * p + d * (f - 1) + output_padding + 1`` per
        axis; dtype the promotion of the inputs' (float32 or float64).
        ``(m, C_out, o_H, o_W)`` under ``layout="NCHW"``.

    Raises
    ------
    TypeError
        Non-numeric input, bad argument types.
    ValueError
        Wrong ndim, channel mismatch, ``groups`` not dividing the channels,
        ``output_padding`` not below the stride or dilation, an output of
        size < 1, wrong bias length, bad ``out``.

    Notes
    -----
    ``y`` is the gradient of :func:`cyconv.conv2d` with respect to its input:
    with ``yfull`` the output before ``padding`` is cut from the start of each
    axis, ``yfull[i, h*s_h + kh*d_h, w*s_w + kw*d_w, co] += w[kh, kw, co, ci] *
    x[i, h, w, ci]`` (within a group). For every ``u`` of the output's shape,
    ``<conv2d(u, w, stride=s, padding=((p, p - op), ...), dilation=d,
    groups=g), x> == <u, conv_transpose2d(x, w, stride=s, padding=p,
    output_padding=op, dilation=d, groups=g)>`` (up to rounding; when
    ``op <= p``, so that the padding is >= 0). It runs on the convolution's
    dx kernel; results are bitwise identical for any ``num_threads``.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.ones((1, 2, 2, 1))
    >>> cyconv.conv_transpose2d(x, np.ones((3, 3, 1, 1)), stride=2, padding=1)[0, :, :, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> cyconv.conv_transpose2d(np.ones((8, 28, 28, 128)), np.ones((4, 4, 64, 128)),
    ...                         stride=2, padding=1).shape
    (8, 56, 56, 64)

    The same in PyTorch's layouts (``w`` as ``(C_in, C_out, f_h, f_w)``):

    >>> cyconv.conv_transpose2d(x.transpose(0, 3, 1, 2), np.ones((1, 1, 3, 3)), stride=2,
    ...                         padding=1, layout="NCHW")[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    if type(layout) is not str or layout != "NHWC":
        return _conv_transpose2d_nchw(x, w, b, out, layout, stride=stride, padding=padding,
                                      output_padding=output_padding, dilation=dilation,
                                      groups=groups, num_threads=num_threads)
    op = "conv_transpose2d"
    x = as_array(x, "x", 4)
    w = as_array(w, "w", 4)
    b_arr = None if b is None else as_array(b, "b")
    dtype = result_dtype(x=x, w=w) if b_arr is None else result_dtype(x=x, w=w, b=b_arr)
    s, p, d, g, (o_h, o_w), c_out = _transpose_geometry(
        op, x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    m, c_in = x.shape[0], x.shape[3]
    bias = _conv._bias(b_arr, c_out, dtype)
    shape = (m, o_h, o_w, c_out)
    n_threads = resolve_num_threads(num_threads)
    if out is None:
        y = np.empty(shape, dtype=dtype)
    else:
        y = _conv._check_out(out, shape, dtype, x=x, w=w, b=b_arr)
    if y.size == 0:
        return y
    if x.size == 0:  # no input channels: the bias alone
        y[...] = bias
        return y
    _conv._run_dx(as_float_array(x, dtype), as_float_array(w, dtype), y, s, p, d, g, n_threads)
    if b_arr is not None:
        y += bias
    return y


_GRADS = ("dx", "dw", "db")


@overload
def conv_transpose2d_backward(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike, *,
                              stride: IntPair = ..., padding: IntPair = ...,
                              output_padding: IntPair = ..., dilation: IntPair = ...,
                              groups: Int = ..., num_threads: Int | None = ...,
                              layout: str = ...,
                              ) -> tuple[FloatArray, FloatArray, FloatArray]: ...
@overload
def conv_transpose2d_backward(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike, *,
                              stride: IntPair = ..., padding: IntPair = ...,
                              output_padding: IntPair = ..., dilation: IntPair = ...,
                              groups: Int = ..., num_threads: Int | None = ...,
                              layout: str = ..., grads: Iterable[str] | str) -> _Gradients: ...
def conv_transpose2d_backward(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike, *,
                              stride: IntPair = 1, padding: IntPair = 0,
                              output_padding: IntPair = 0, dilation: IntPair = 1,
                              groups: Int = 1, num_threads: Int | None = None,
                              layout: str = "NHWC",
                              grads: Iterable[str] | str = _GRADS) -> _Gradients:
    """Gradients of :func:`conv_transpose2d` with respect to ``x``, ``w`` and ``b``.

    Parameters
    ----------
    dz : array_like, shape (m, o_H, o_W, C_out)
        Gradient of the loss with respect to ``conv_transpose2d(x, w, b, ...)``.
    x : array_like, shape (m, n_H, n_W, C_in)
        The forward input.
    w : array_like, shape (f_h, f_w, C_out / groups, C_in)
        The forward filters.
    stride, padding, output_padding, dilation, groups, num_threads, layout
        As given to :func:`conv_transpose2d`. Under ``layout="NCHW"``,
        ``dz``, ``x`` and ``dx`` are ``(m, C, H, W)`` and ``w`` and ``dw``
        ``(C_in, C_out / groups, f_h, f_w)``.
    grads : collection of {"dx", "dw", "db"}, default all three
        The gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray, shape (m, n_H, n_W, C_in), or None
        ``conv2d(dz, w, stride, padding, dilation, groups)`` (the convolution's
        forward kernel).
    dw : ndarray, shape (f_h, f_w, C_out / groups, C_in), or None
        The convolution's filter gradient with ``dz`` as its input and ``x``
        as its output gradient.
    db : ndarray, shape (C_out,), or None

    Raises
    ------
    TypeError, ValueError
        As :func:`conv_transpose2d`; also if ``dz`` does not have the forward
        output's shape.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x, w = np.ones((1, 2, 2, 1)), np.ones((3, 3, 1, 1))
    >>> dx, dw, db = cyconv.conv_transpose2d_backward(np.ones((1, 3, 3, 1)), x, w,
    ...                                               stride=2, padding=1)
    >>> dx[0, :, :, 0], db
    (array([[4., 4.],
           [4., 4.]]), array([9.]))
    >>> dx, dw, db = cyconv.conv_transpose2d_backward(
    ...     np.ones((1, 1, 3, 3)), x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1),
    ...     stride=2, padding=1, layout="NCHW")
    >>> dx.shape, dw.shape, db
    ((1, 1, 2, 2), (1, 1, 3, 3), array([9.]))
    """
    if type(layout) is not str or layout != "NHWC":
        return _conv_transpose2d_backward_nchw(dz, x, w, layout, grads, stride=stride,
                                               padding=padding, output_padding=output_padding,
                                               dilation=dilation, groups=groups,
                                               num_threads=num_threads)
    op = "conv_transpose2d_backward"
    dz = as_array(dz, "dz", 4)
    x = as_array(x, "x", 4)
    w = as_array(w, "w", 4)
    dtype = result_dtype(dz=dz, x=x, w=w)
    s, p, d, g, (o_h, o_w), c_out = _transpose_geometry(
        op, x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    m, c_in = x.shape[0], x.shape[3]
    if dz.shape != (m, o_h, o_w, c_out):
        raise ValueError(f"dz must have the forward output's shape {(m, o_h, o_w, c_out)}, "
                         f"got {dz.shape}")
    wanted = _conv._parse_grads(grads)
    n_threads = resolve_num_threads(num_threads)
    dx = np.zeros(x.shape, dtype=dtype) if "dx" in wanted else None
    dw = np.zeros(w.shape, dtype=dtype) if "dw" in wanted else None
    db = np.zeros(c_out, dtype=dtype) if "db" in wanted else None
    if dz.size == 0:
        return dx, dw, db
    dz_c = as_float_array(dz, dtype)
    if db is not None:
        db[:] = dz_c.sum(axis=(0, 1, 2))
    if x.size == 0:
        return dx, dw, db
    if dx is not None:
        _conv._run_forward(dz_c, as_float_array(w, dtype), np.zeros(c_in, dtype=dtype), dx,
                           s, p, d, g, False, n_threads)
    if dw is not None:
        _conv._run_dw(dz_c, as_float_array(x, dtype), dw, np.empty(c_in, dtype=dtype),
                      s, p, d, g, n_threads)
    return dx, dw, db


# layout="NCHW": transpose the inputs once, run the NHWC function, transpose
# the results back (as conv.py's _conv2d_nchw). PyTorch's transposed filters
# (C_in, C_out/groups, f_h, f_w) become (f_h, f_w, C_out/groups, C_in) by the
# same axis permutation as OIHW -> HWIO, so conv.py's helpers serve.

def _nchw_error(error: ValueError) -> ValueError:
    return ValueError(f"{error} (layout='NCHW': the arrays were checked as their NHWC "
                      f"transposes x (m, H, W, C_in), w (f_h, f_w, C_out / groups, C_in))")


def _check_nchw(op: str, x: npt.NDArray[Any], w: npt.NDArray[Any]) -> None:
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"{op}: w has {w.shape[0]} input channels (w.shape[0]) but x has "
                         f"{x.shape[1]} (x.shape[1]); with layout='NCHW' x must be "
                         f"(m, C_in, H, W) and w (C_in, C_out / groups, f_h, f_w)")


def _conv_transpose2d_nchw(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None,
                           out: FloatArray | None, layout: object, **kwargs: Any) -> FloatArray:
    parse_layout(layout)   # "NCHW" here; anything else raises
    x = as_array(x, "x", 4)
    w = as_array(w, "w", 4)
    _check_nchw("conv_transpose2d", x, w)
    b_arr = None if b is None else as_array(b, "b")
    dtype = result_dtype(x=x, w=w) if b_arr is None else result_dtype(x=x, w=w, b=b_arr)
    if (b_arr is not None and b_arr.ndim == 4
            and b_arr.shape[0] == b_arr.shape[2] == b_arr.shape[3] == 1):   # (1, C_out, 1, 1)
        b_arr = b_arr.reshape(b_arr.shape[1])
    return _conv._run_nchw(conv_transpose2d, "y", x, w, b_arr, dtype, out, _nchw_error, kwargs)


def _conv_transpose2d_backward_nchw(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike,
                                    layout: object, grads: Iterable[str] | str,
                                    **kwargs: Any) -> _Gradients:
    parse_layout(layout)
    dz = as_array(dz, "dz", 4)
    x = as_array(x, "x", 4)
    w = as_array(w, "w", 4)
    _check_nchw("conv_transpose2d_backward", x, w)
    dtype = result_dtype(dz=dz, x=x, w=w)
    wanted = _conv._parse_grads(grads)
    n_threads = resolve_num_threads(kwargs["num_threads"])
    return _conv._run_nchw_backward(conv_transpose2d_backward, dz, x, w, dtype, wanted,
                                    n_threads, _nchw_error, kwargs)
