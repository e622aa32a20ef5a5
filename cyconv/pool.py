"""Max and average pooling, forward and backward: validate -> allocate -> call ``_pool``."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from cyconv import _dispatch
from cyconv._layout import nhwc_shape, parse_layout, to_nchw, to_nhwc
from cyconv._args import (
    _is_int,
    FloatArray,
    Int,
    IntPair,
    Padding,
    Pads,
    as_array,
    as_float_array,
    check_output_size,
    conv_output_size,
    output_size,
    parse_pair,
    parse_padding,
    resolve_num_threads,
    result_dtype,
)

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
]


# Argmax indices: each window's tap kh * f_w + kw, as int32.
_MAX_POOL_AREA = 2**31  # tap indices must fit int32
IndexArray = npt.NDArray[np.int32]
_NO_KEY = np.zeros((1, 1, 1, 1), dtype=np.int32)  # the kernels' unread key argument

def _kernels(dtype: np.dtype[Any], channels: int) -> ModuleType:
    """The compiled pooling module for this call (see ``_dispatch.pool_level``)."""
    return _dispatch.module("_pool", _dispatch.pool_level(np.dtype(dtype).itemsize, channels))


def _geometry(op: str, x_shape: tuple[int, ...], pool_size: IntPair, stride: IntPair | None,
              padding: Padding, dilation: IntPair = 1, ceil_mode: bool = False,
              ) -> tuple[tuple[int, int], tuple[int, int], Pads, tuple[int, int, int, int]]:
    # (pool (f_h, f_w), stride, pads, output shape) for an NHWC input shape.
    return _geometry_d(op, x_shape, pool_size, stride, padding, dilation, ceil_mode)[:4]


def _geometry_d(op: str, x_shape: tuple[int, ...], pool_size: IntPair, stride: IntPair | None,
                padding: Padding, dilation: IntPair = 1, ceil_mode: bool = False,
                ) -> tuple[tuple[int, int], tuple[int, int], Pads, tuple[int, int, int, int],
                           tuple[int, int]]:
    # _geometry's results and the dilation (d_h, d_w).
    m, n_h, n_w, c = x_shape
    f = parse_pair(pool_size, "pool_size")
    s = f if stride is None else parse_pair(stride, "stride")
    # the defaults without parse_pair's checks (a few microseconds per call)
    d = (1, 1) if type(dilation) is int and dilation == 1 else parse_pair(dilation, "dilation")
    if ceil_mode is not False:
        ceil_mode = _check_bool(ceil_mode, "ceil_mode")
    extent = (d[0] * (f[0] - 1) + 1, d[1] * (f[1] - 1) + 1)
    pads = parse_padding(padding, (n_h, n_w), extent, s)
    o_h = _output_size(n_h, f[0], pads[0], s[0], d[0], ceil_mode, "height (axis 1)", op)
    o_w = _output_size(n_w, f[1], pads[1], s[1], d[1], ceil_mode, "width (axis 2)", op)
    check_output_size(op, (o_h, o_w), pads, s)
    return f, s, pads, (m, o_h, o_w, c), d


def _output_size(n: int, f: int, pad: tuple[int, int], s: int, d: int, ceil_mode: bool,
                 axis: str, op: str) -> int:
    # One axis: the shared floor rule, or PyTorch's ceil_mode rule, in which the
    # last window must start inside the input or its padding before
    # (``(o - 1) * s < n + pad[0]``) and may run past the padding after (even
    # a window larger than the padded input gives one output).
    extent = d * (f - 1) + 1
    if ceil_mode:
        o = -(-(n + pad[0] + pad[1] - extent) // s) + 1
        if (o - 1) * s >= n + pad[0]:
            o -= 1
        if o < 1:
            raise ValueError(
                f"{op}: ceil_mode leaves no window along {axis}: input {n} + padding "
                f"{pad[0]}+{pad[1]} = {n + pad[0] + pad[1]}, window extent {extent}, stride {s}")
        return o
    if d == 1:
        return conv_output_size(n, f, pad, s, axis, op)
    o = output_size(n, f, pad, s, d)
    if o < 1:
        raise ValueError(
            f"{op}: the window is larger than the padded input along {axis}: input {n} + "
            f"padding {pad[0]}+{pad[1]} = {n + pad[0] + pad[1]} < window extent "
            f"{extent} (pool {f} with dilation {d})")
    return o


def _block(f: tuple[int, int], s: tuple[int, int], pads: Pads,
           d: tuple[int, int] = (1, 1)) -> tuple[int, ...]:
    # The kernels' geometry block (see _pool.pyx):
    # (f_h, f_w, s_h, s_w, p_t, p_b, p_l, p_r, d_h, d_w).
    return (f[0], f[1], s[0], s[1], pads[0][0], pads[0][1], pads[1][0], pads[1][1], d[0], d[1])


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_dp(dp: npt.NDArray[Any], shape: tuple[int, ...]) -> None:
    if dp.shape != shape:
        raise ValueError(f"dp must have the forward output's shape {shape}, got {dp.shape}")


@overload
def max_pool2d(x: npt.ArrayLike, pool_size: IntPair, *, stride: IntPair | None = ...,
               padding: Padding = ..., num_threads: Int | None = ...,
               return_indices: Literal[False] = ..., dilation: IntPair = ...,
               ceil_mode: bool = ..., layout: str = ...) -> FloatArray: ...
@overload
def max_pool2d(x: npt.ArrayLike, pool_size: IntPair, *, stride: IntPair | None = ...,
               padding: Padding = ..., num_threads: Int | None = ...,
               return_indices: Literal[True], dilation: IntPair = ...,
               ceil_mode: bool = ..., layout: str = ...) -> tuple[FloatArray, IndexArray]: ...
def max_pool2d(x: npt.ArrayLike, pool_size: IntPair, *, stride: IntPair | None = None,
               padding: Padding = 0, num_threads: Int | None = None,
               return_indices: bool = False, dilation: IntPair = 1,
               ceil_mode: bool = False,
               layout: str = "NHWC") -> FloatArray | tuple[FloatArray, IndexArray]:
    """Max pooling of NHWC (or NCHW) data.

    Parameters
    ----------
    x : array_like, shape (m, n_H, n_W, C)
        Input; ``(m, C, n_H, n_W)`` under ``layout="NCHW"``. Any memory
        layout; never modified.
    pool_size : int or (int, int)
        Window height and width.
    stride : int or (int, int), optional
        Step of the window; defaults to ``pool_size``.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same", default 0
        As for :func:`cyconv.conv2d`; padded positions count as -inf.
        ``"same"`` uses the window extent ``d * (f - 1) + 1``.
    num_threads : int, optional
        OpenMP threads; default every usable core.
    return_indices : bool, default False
        Also return where each maximum is, for
        ``max_pool2d_backward(..., indices=...)``: the backward then routes
        gradients without searching the windows again.
    dilation : int or (int, int), default 1
        Step between the window's taps (PyTorch's ``dilation``): a window
        spans ``d * (f - 1) + 1`` input positions and reads every d-th.
    ceil_mode : bool, default False
        Round the output size up, as PyTorch does: per axis
        ``ceil((n + p_begin + p_end - d*(f-1) - 1) / s) + 1``, minus one if
        the last window would start at or after ``n + p_begin`` (it must
        start inside the input or the padding before it). The last window
        may run past the padded input; it pools what it covers (so a window
        larger than the padded input gives one output, as in PyTorch).
    layout : {"NHWC", "NCHW"}, default "NHWC"
        The order of ``x`` and of the results. Under ``"NCHW"`` (PyTorch's
        order) ``x`` is transposed to NHWC once, in parallel, and ``p`` (and
        ``indices``) come back as ``(m, C, n_H_out, n_W_out)``; the values
        are exactly those of the NHWC call on ``x.transpose(0, 2, 3, 1)``.

    Returns
    -------
    p : ndarray, shape (m, n_H_out, n_W_out, C)
        float32 for float32 (and float16) input, float64 otherwise.
        ``(m, C, n_H_out, n_W_out)`` under ``layout="NCHW"``.
    indices : ndarray, shape (m, n_H_out, n_W_out, C)
        Only with ``return_indices`` (``(m, C, n_H_out, n_W_out)`` under
        ``layout="NCHW"``). For each output, the position of its
        window's first maximum (or first NaN) within the window, counted
        row-major over the full ``f_h x f_w`` window with padding included:
        ``kh * f_w + kw``. -1 for a window lying wholly in the padding.
        int32. With dilation ``kh`` and ``kw`` count taps, not input
        positions. Note: PyTorch's indices count positions in the input
        plane instead; here ``ih = h * s_h - pad_top + d_h * (indices // f_w)``
        and ``iw = w * s_w - pad_left + d_w * (indices % f_w)``.

    Raises
    ------
    ValueError
        ``x`` not 4-D; ``pool_size``, ``stride`` or ``dilation`` below 1;
        a negative or malformed ``padding``; a window larger than the padded
        input; an unknown ``layout``; ``num_threads`` below 1.
    TypeError
        ``x`` not of real numbers (complex, object or strings), or a geometry
        argument that is not an int or a pair of ints.

    Notes
    -----
    ``p[i, h, w, c] = max_{kh, kw} xpad[i, h*s_h + d_h*kh, w*s_w + d_w*kw, c]``.
    A window holding a NaN gives NaN. A window lying wholly in the padding
    (only possible with padding >= pool_size) gives -inf.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> cyconv.max_pool2d(x, 2)[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> p, indices = cyconv.max_pool2d(x, 2, return_indices=True)
    >>> indices[0, :, :, 0]
    array([[3, 3],
           [3, 3]], dtype=int32)
    >>> cyconv.max_pool2d(x, 2, stride=1, dilation=2)[0, :, :, 0]
    array([[10., 11.],
           [14., 15.]])
    >>> cyconv.max_pool2d(np.arange(25.0).reshape(1, 5, 5, 1), 2, ceil_mode=True)[0, :, :, 0]
    array([[ 6.,  8.,  9.],
           [16., 18., 19.],
           [21., 23., 24.]])

    The same pooling in PyTorch's layout:

    >>> p, indices = cyconv.max_pool2d(x.transpose(0, 3, 1, 2), 2, return_indices=True,
    ...                                layout="NCHW")
    >>> p.shape, p[0, 0], indices[0, 0]
    ((1, 1, 2, 2), array([[ 5.,  7.],
           [13., 15.]]), array([[3, 3],
           [3, 3]], dtype=int32))
    """
    if type(layout) is not str or layout != "NHWC":
        return _max_pool2d_nchw(x, pool_size, layout, stride=stride, padding=padding,
                                num_threads=num_threads, return_indices=return_indices,
                                dilation=dilation, ceil_mode=ceil_mode)
    x = as_array(x, "x", 4)
    dtype = result_dtype(x=x)
    f, s, pads, shape, d = _geometry_d("max_pool2d", x.shape, pool_size, stride, padding,
                                       dilation, ceil_mode)
    geom = _block(f, s, pads, d)
    n_threads = resolve_num_threads(num_threads)
    if return_indices and f[0] * f[1] >= _MAX_POOL_AREA:
        raise ValueError(f"pool_size must cover fewer than 2**31 elements with "
                         f"return_indices=True, got {f[0]} x {f[1]}")
    p = np.empty(shape, dtype=dtype)
    indices = np.empty(shape, dtype=np.int32) if return_indices else None
    if x.size == 0:  # every window lies in the padding (or there are none)
        p.fill(-np.inf)
        if indices is not None:
            indices.fill(-1)
    elif p.size:
        kernels = _kernels(dtype, x.shape[3])
        if indices is not None:
            kernels.max_pool2d_argmax(as_float_array(x, dtype), p, indices, geom, n_threads)
        else:
            kernels.pool2d_forward(as_float_array(x, dtype), p, True, False, geom, n_threads)
    return p if indices is None else (p, indices)


def max_pool2d_backward(dp: npt.ArrayLike, x: npt.ArrayLike, pool_size: IntPair, *,
                        stride: IntPair | None = None, padding: Padding = 0,
                        num_threads: Int | None = None,
                        indices: npt.ArrayLike | None = None, dilation: IntPair = 1,
                        ceil_mode: bool = False, layout: str = "NHWC") -> FloatArray:
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    dp : array_like, shape (m, n_H_out, n_W_out, C)
        Gradient of the loss with respect to the pooled output.
    x : array_like, shape (m, n_H, n_W, C)
        The forward input (windows are recomputed from it). With ``indices``
        only its shape and dtype are used (and it is not transposed under
        ``layout="NCHW"``).
    pool_size, stride, padding, num_threads, dilation, ceil_mode, layout
        As given to :func:`max_pool2d`. Under ``layout="NCHW"``, ``dp``,
        ``x``, ``indices`` and ``dx`` are ``(m, C, H, W)``.
    indices : array_like of int, shape (m, n_H_out, n_W_out, C), optional
        From ``max_pool2d(..., return_indices=True)`` with the same
        arguments: each window's gradient goes to the element they name,
        and ``x``'s values are not read. A value naming no input element of
        its window (negative, ``>= f_h * f_w`` or in the padding) passes no
        gradient. Fastest as returned (int32, C-contiguous).

    Returns
    -------
    dx : ndarray, shape (m, n_H, n_W, C)

    Notes
    -----
    Each window's gradient goes whole to its FIRST maximum in row-major
    window order (as PyTorch and TensorFlow do), or to its first NaN if it
    holds one. The notes' mask ``A == max(A)`` would instead give the full
    gradient to every tied maximum (e.g. to all zeros of a window after a
    ReLU); :mod:`cyconv.compat` keeps that rule for course code.

    Raises
    ------
    ValueError
        Besides the argument checks of :func:`max_pool2d`: a pool of 2**31
        elements or more (tap indices are int32), or ``indices`` not shaped
        like ``dp``.
    TypeError
        ``indices`` not of an integer dtype.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.zeros((1, 2, 2, 1))
    >>> cyconv.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)[0, :, :, 0]
    array([[1., 0.],
           [0., 0.]])
    >>> x = np.array([1.0, 5.0, 2.0, 4.0]).reshape(1, 2, 2, 1)
    >>> p, indices = cyconv.max_pool2d(x, 2, return_indices=True)
    >>> cyconv.max_pool2d_backward(np.ones_like(p), x, 2, indices=indices)[0, :, :, 0]
    array([[0., 1.],
           [0., 0.]])
    >>> x_nchw = x.transpose(0, 3, 1, 2)
    >>> p, indices = cyconv.max_pool2d(x_nchw, 2, return_indices=True, layout="NCHW")
    >>> cyconv.max_pool2d_backward(np.ones_like(p), x_nchw, 2, indices=indices,
    ...                            layout="NCHW")[0, 0]
    array([[0., 1.],
           [0., 0.]])
    """
    if type(layout) is not str or layout != "NHWC":
        return _max_pool2d_backward_nchw(dp, x, pool_size, layout, stride=stride,
                                         padding=padding, num_threads=num_threads,
                                         indices=indices, dilation=dilation,
                                         ceil_mode=ceil_mode)
    return _max_pool2d_backward(dp, x, pool_size, stride, padding, num_threads,
                                all_ties=False, indices=indices, dilation=dilation,
                                ceil_mode=ceil_mode)


def _as_indices(indices: npt.ArrayLike, shape: tuple[int, ...], area: int) -> IndexArray:
    # The kernels' key form: C-contiguous int32.
    a = as_array(indices, "indices", 4)
    if a.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers (from max_pool2d(..., return_indices=True)), "
                        f"got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"indices must have the forward output's shape {shape}, got {a.shape}")
    if a.dtype != np.int32:
        # Values outside [0, area) route nowhere; clipping first keeps them
        # so through a narrowing cast (2**32 + 3 must not become 3).
        a = np.clip(a, -1, area).astype(np.int32)
    return np.ascontiguousarray(a)


def _max_pool2d_backward(dp: npt.ArrayLike, x: npt.ArrayLike, pool_size: IntPair,
                         stride: IntPair | None, padding: Padding, num_threads: Int | None,
                         all_ties: bool, indices: npt.ArrayLike | None = None,
                         dilation: IntPair = 1, ceil_mode: bool = False) -> FloatArray:
    # all_ties=True gives the course's mask rule (used by cyconv.compat; no dilation).
    dp = as_array(dp, "dp", 4)
    x = as_array(x, "x", 4)
    dtype = result_dtype(dp=dp, x=x)
    f, s, pads, shape, d = _geometry_d("max_pool2d_backward", x.shape, pool_size, stride,
                                       padding, dilation, ceil_mode)
    geom = _block(f, s, pads, d)
    extent = (d[0] * (f[0] - 1) + 1, d[1] * (f[1] - 1) + 1)
    if f[0] * f[1] >= _MAX_POOL_AREA:
        raise ValueError(f"pool_size must cover fewer than 2**31 elements for "
                         f"max_pool2d_backward, got {f[0]} x {f[1]}")
    _check_dp(dp, shape)
    key = None if indices is None else _as_indices(indices, shape, f[0] * f[1])
    n_threads = resolve_num_threads(num_threads)
    if dp.size == 0 or x.size == 0:
        return np.zeros(x.shape, dtype=dtype)
    dp_c = as_float_array(dp, dtype)
    kernels = _kernels(dtype, x.shape[3])
    disjoint = s[0] >= extent[0] and s[1] >= extent[1]
    if key is not None and disjoint:  # one direct pass, routed by the forward's indices
        dx = _disjoint_dx(x.shape, f, s, pads, shape, dtype, d)
        kernels.pool2d_backward_disjoint(dx, dp_c, key, dx, True, False, True,
                                         False, geom, n_threads)
        return dx
    if key is not None:  # gather form, routed by the forward's indices
        dx = np.empty(x.shape, dtype=dtype)
        cover = _cover_tables(x.shape, extent, s, pads, shape, dtype)
        kernels.max_pool2d_backward(dx, dp_c, key, dp_c, dx, cover[0], cover[1], geom,
                                    False, n_threads)
        return dx
    x_c = as_float_array(x, dtype)
    if disjoint:  # one direct pass; each window's maximum is found in registers
        dx = _disjoint_dx(x.shape, f, s, pads, shape, dtype, d)
        kernels.pool2d_backward_disjoint(x_c, dp_c, _NO_KEY, dx, True, all_ties, False, False,
                                         geom, n_threads)
        return dx
    p = np.empty(shape, dtype=dtype)
    key = np.empty(shape, dtype=np.int32)
    kernels.max_pool2d_argmax(x_c, p, key, geom, n_threads)
    dx = np.empty(x.shape, dtype=dtype)
    cover = _cover_tables(x.shape, extent, s, pads, shape, dtype)
    kernels.max_pool2d_backward(x_c, dp_c, key, p, dx, cover[0], cover[1], geom,
                                all_ties, n_threads)
    return dx


def avg_pool2d(x: npt.ArrayLike, pool_size: IntPair, *, stride: IntPair | None = None,
               padding: Padding = 0, count_include_pad: bool = True,
               num_threads: Int | None = None, ceil_mode: bool = False,
               layout: str = "NHWC") -> FloatArray:
    """Average pooling of NHWC (or NCHW) data.

    Parameters
    ----------
    x : array_like, shape (m, n_H, n_W, C)
        Input; ``(m, C, n_H, n_W)`` under ``layout="NCHW"``. Any memory
        layout; never modified.
    pool_size : int or (int, int)
        Window height and width.
    stride : int or (int, int), optional
        Step of the window; defaults to ``pool_size``.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same", default 0
        As for :func:`cyconv.conv2d`; padded positions are zeros.
    count_include_pad : bool, default True
        Divide by ``f_h * f_w`` (padding zeros count, as in PyTorch), or, if
        False, by the number of input elements in the window (a window with
        none gives 0). With ``ceil_mode``, see Notes.
    num_threads : int, optional
        OpenMP threads; default every usable core.
    ceil_mode : bool, default False
        Round the output size up, with PyTorch's rule (see
        :func:`max_pool2d`); the last windows may run past the padded input.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        The order of ``x`` and ``p``, as for :func:`max_pool2d`.

    Returns
    -------
    p : ndarray, shape (m, n_H_out, n_W_out, C)
        ``(m, C, n_H_out, n_W_out)`` under ``layout="NCHW"``.

    Raises
    ------
    ValueError
        ``x`` not 4-D; ``pool_size`` or ``stride`` below 1;
        a negative or malformed ``padding``; a window larger than the padded
        input; an unknown ``layout``; ``num_threads`` below 1.
    TypeError
        ``x`` not of real numbers (complex, object or strings), or a geometry
        argument that is not an int or a pair of ints.

    Notes
    -----
    ``p[i, h, w, c] = sum_{kh, kw} xpad[i, h*s_h + kh, w*s_w + kw, c] / count``.

    With ``count_include_pad`` the count is the number of window positions
    inside the padded input (input plus padding, both sides):
    ``f_h * f_w`` for every window unless ``ceil_mode`` lets a last window
    run past the padding, where it is the part of the window that does not
    (PyTorch's divisor). Without it, the count is the window's input elements.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> cyconv.avg_pool2d(x, 2)[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> cyconv.avg_pool2d(np.arange(9.0).reshape(1, 3, 3, 1), 2, ceil_mode=True)[0, :, :, 0]
    array([[2. , 3.5],
           [6.5, 8. ]])
    >>> cyconv.avg_pool2d(x.transpose(0, 3, 1, 2), 2, layout="NCHW")[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    if type(layout) is not str or layout != "NHWC":
        return _avg_pool2d_nchw(x, pool_size, layout, stride=stride, padding=padding,
                                count_include_pad=count_include_pad,
                                num_threads=num_threads, ceil_mode=ceil_mode)
    x = as_array(x, "x", 4)
    dtype = result_dtype(x=x)
    f, s, pads, shape = _geometry("avg_pool2d", x.shape, pool_size, stride, padding,
                                  1, ceil_mode)
    n_threads = resolve_num_threads(num_threads)
    if not x.size:  # every window lies in the padding (or there are none): zeros
        return np.zeros(shape, dtype=dtype)
    # The kernel writes every output element: no zero-fill (a memset of p,
    # 5-10 % of a small-window forward).
    p = np.empty(shape, dtype=dtype)
    if p.size:
        kernels = _kernels(dtype, x.shape[3])
        kernels.pool2d_forward(as_float_array(x, dtype), p, False, bool(count_include_pad),
                               _block(f, s, pads), n_threads)
    return p


def _check_shape(x_shape: Iterable[Any]) -> tuple[int, ...]:
    try:
        items = list(x_shape)
    except TypeError:
        raise TypeError(f"x_shape must be a tuple of 4 ints, got {x_shape!r}") from None
    if not all(_is_int(v) for v in items):  # 4.5 must not pass as 4
        raise TypeError(f"x_shape must be a tuple of 4 ints, got {x_shape!r}")
    shape = tuple(int(v) for v in items)
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"x_shape must be 4 non-negative ints (m, n_H, n_W, C), got {x_shape!r}")
    return shape


def avg_pool2d_backward(dp: npt.ArrayLike, x_shape: Sequence[Int], pool_size: IntPair, *,
                        stride: IntPair | None = None, padding: Padding = 0,
                        count_include_pad: bool = True,
                        num_threads: Int | None = None, ceil_mode: bool = False,
                        layout: str = "NHWC") -> FloatArray:
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    dp : array_like, shape (m, n_H_out, n_W_out, C)
        Gradient of the loss with respect to the pooled output.
    x_shape : tuple of 4 ints
        Shape ``(m, n_H, n_W, C)`` of the forward input.
    pool_size, stride, padding, count_include_pad, num_threads, ceil_mode, layout
        As given to :func:`avg_pool2d`. Under ``layout="NCHW"``, ``dp`` is
        ``(m, C, n_H_out, n_W_out)``, ``x_shape`` is ``(m, C, n_H, n_W)``
        and ``dx`` has that shape.

    Returns
    -------
    dx : ndarray, shape x_shape
        dtype of ``dp`` (float32 or float64).

    Raises
    ------
    ValueError
        ``x_shape`` not 4 non-negative ints, ``dp`` not shaped like the
        forward's output for ``x_shape``, or a geometry argument
        :func:`avg_pool2d` would reject.
    TypeError
        ``x_shape`` not a sequence of ints, or ``dp`` not of real numbers.

    Notes
    -----
    Each window spreads ``dp / count`` evenly over its input elements.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> cyconv.avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 2, 2, 1), 2)[0, :, :, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    >>> cyconv.avg_pool2d_backward(np.ones((1, 2, 1, 1)), (1, 2, 2, 2), 2,
    ...                            layout="NCHW")[0, 1]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    if type(layout) is not str or layout != "NHWC":
        return _avg_pool2d_backward_nchw(dp, x_shape, pool_size, layout, stride=stride,
                                         padding=padding,
                                         count_include_pad=count_include_pad,
                                         num_threads=num_threads, ceil_mode=ceil_mode)
    dp = as_array(dp, "dp", 4)
    dtype = result_dtype(dp=dp)
    x_shape = _check_shape(x_shape)
    f, s, pads, shape = _geometry("avg_pool2d_backward", x_shape, pool_size, stride, padding,
                                  1, ceil_mode)
    _check_dp(dp, shape)
    n_threads = resolve_num_threads(num_threads)
    if dp.size == 0 or 0 in x_shape:
        return np.zeros(x_shape, dtype=dtype)
    dp_c = as_float_array(dp, dtype)
    if s[0] >= f[0] and s[1] >= f[1]:  # disjoint windows: one direct pass
        dx = _disjoint_dx(x_shape, f, s, pads, shape, dtype)
        # x is not read for average pooling: dx stands in for it.
        kernels = _kernels(dtype, dx.shape[3])
        kernels.pool2d_backward_disjoint(dx, dp_c, _NO_KEY, dx, False, False, False,
                                         bool(count_include_pad), _block(f, s, pads),
                                         n_threads)
        return dx
    dx = np.empty(x_shape, dtype=dtype)
    (cover_h, inv_h), (cover_w, inv_w) = [
        _window_table(n, f_, s_, pad, o, count_include_pad, dtype)
        for n, f_, s_, pad, o in zip(x_shape[1:3], f, s, pads, shape[1:3])]
    clipped = ((shape[1] - 1) * s[0] + f[0] > x_shape[1] + pads[0][0] + pads[0][1]
               or (shape[2] - 1) * s[1] + f[1] > x_shape[2] + pads[1][0] + pads[1][1])
    if count_include_pad and not clipped:  # one rounding: 1 / (f_h * f_w), not 1 / f_h * 1 / f_w
        inv_h = np.ones_like(inv_h)
        inv_w = np.full_like(inv_w, 1.0 / (f[0] * f[1]))
    kernels = _kernels(dtype, dx.shape[3])
    kernels.avg_pool2d_backward(dp_c, dx, cover_h, cover_w,
                                inv_h, inv_w, n_threads)
    return dx


def _disjoint_dx(x_shape: tuple[int, ...], f: tuple[int, int], s: tuple[int, int], pads: Pads,
                 shape: tuple[int, ...], dtype: np.dtype[np.floating[Any]],
                 d: tuple[int, int] = (1, 1)) -> FloatArray:
    # dx for the disjoint-window backward, which writes every tap of every
    # window: zero-filled only if some elements lie in no window (gaps between
    # windows, or the holes of a dilated one).
    tiles = d == (1, 1) and all(s_ == f_ and o * s_ - pad[0] >= n
                                for n, f_, s_, pad, o in zip(x_shape[1:3], f, s, pads, shape[1:3]))
    return np.empty(x_shape, dtype=dtype) if tiles else np.zeros(x_shape, dtype=dtype)


def _cover_tables(x_shape: tuple[int, ...], f: tuple[int, int], s: tuple[int, int], pads: Pads,
                  shape: tuple[int, ...], dtype: np.dtype[np.floating[Any]],
                  ) -> list[npt.NDArray[np.intp]]:
    # Max-pool backward's [begin, end) of covering outputs, per input row and
    # column; f is the window's extent d * (f - 1) + 1.
    return [_window_table(n, f_, s_, pad, o, True, dtype)[0]
            for n, f_, s_, pad, o in zip(x_shape[1:3], f, s, pads, shape[1:3])]


def _window_table(n: int, f: int, s: int, pad: tuple[int, int], n_out: int,
                  count_include_pad: bool, dtype: np.dtype[np.floating[Any]],
                  ) -> tuple[npt.NDArray[np.intp], FloatArray]:
    # One spatial axis of avg-pool backward: for each input index the range
    # [begin, end) of outputs whose window covers it, and for each output its
    # factor of 1 / count. Computed once per call so the kernel's per-pixel
    # loop needs no integer division.
    i = np.arange(n)
    t = i + pad[0] - f + 1
    cover = np.empty((n, 2), dtype=np.intp)
    cover[:, 0] = np.where(t <= 0, 0, -(-t // s))
    cover[:, 1] = np.minimum((i + pad[0]) // s + 1, n_out)
    if count_include_pad:
        if (n_out - 1) * s + f <= n + pad[0] + pad[1]:  # every window in the padded input
            return cover, np.full(n_out, 1.0 / f, dtype=dtype)
        # taps inside the padded input: f, but fewer for ceil_mode's last windows
        taps = np.minimum(f, n + pad[0] + pad[1] - np.arange(n_out) * s)
        return cover, (1.0 / taps).astype(dtype)
    start = np.arange(n_out) * s - pad[0]
    real = np.minimum(start + f, n) - np.maximum(start, 0)
    inv = np.zeros(n_out, dtype=dtype)
    np.divide(1.0, real, out=inv, where=real > 0, casting="unsafe")
    return cover, inv


# --------------------------------------------------------------------------
# layout="NCHW": transpose the inputs to NHWC once (in parallel, see
# cyconv._layout), run the NHWC function, transpose the results back. The
# other keywords pass through untouched (the NHWC function checks them); its
# ValueErrors get a note saying that they speak of the NHWC transposes.
# --------------------------------------------------------------------------

def _nchw_error(error: ValueError) -> ValueError:
    return ValueError(f"{error} (layout='NCHW': the arrays were checked as their NHWC "
                      f"transposes (m, H, W, C))")


def _max_pool2d_nchw(x: npt.ArrayLike, pool_size: IntPair, layout: object,
                     **kwargs: Any) -> FloatArray | tuple[FloatArray, IndexArray]:
    parse_layout(layout)   # "NCHW" here; anything else raises
    x = as_array(x, "x", 4)
    n_threads = resolve_num_threads(kwargs["num_threads"])
    try:
        r = max_pool2d(to_nhwc(x, "x", result_dtype(x=x), num_threads=n_threads), pool_size,
                       **kwargs)
    except ValueError as e:
        raise _nchw_error(e) from None
    if isinstance(r, tuple):
        return (to_nchw(r[0], "p", num_threads=n_threads),
                to_nchw(r[1], "indices", num_threads=n_threads))
    return to_nchw(r, "p", num_threads=n_threads)


def _max_pool2d_backward_nchw(dp: npt.ArrayLike, x: npt.ArrayLike, pool_size: IntPair,
                              layout: object, indices: npt.ArrayLike | None,
                              **kwargs: Any) -> FloatArray:
    parse_layout(layout)
    dp = as_array(dp, "dp", 4)
    x = as_array(x, "x", 4)
    dtype = result_dtype(dp=dp, x=x)
    n_threads = resolve_num_threads(kwargs["num_threads"])
    if indices is None:
        x_t = to_nhwc(x, "x", dtype, num_threads=n_threads)
        key = None
    else:   # only x's shape is read: no transpose
        x_t = np.broadcast_to(np.zeros((), dtype=dtype), nhwc_shape(x.shape))
        key = to_nhwc(as_array(indices, "indices", 4), "indices", num_threads=n_threads)
    try:
        dx = max_pool2d_backward(to_nhwc(dp, "dp", dtype, num_threads=n_threads), x_t,
                                 pool_size, indices=key, **kwargs)
    except ValueError as e:
        raise _nchw_error(e) from None
    return to_nchw(dx, "dx", num_threads=n_threads)


def _avg_pool2d_nchw(x: npt.ArrayLike, pool_size: IntPair, layout: object,
                     **kwargs: Any) -> FloatArray:
    parse_layout(layout)
    x = as_array(x, "x", 4)
    n_threads = resolve_num_threads(kwargs["num_threads"])
    try:
        p = avg_pool2d(to_nhwc(x, "x", result_dtype(x=x), num_threads=n_threads), pool_size,
                       **kwargs)
    except ValueError as e:
        raise _nchw_error(e) from None
    return to_nchw(p, "p", num_threads=n_threads)


def _avg_pool2d_backward_nchw(dp: npt.ArrayLike, x_shape: Sequence[Int], pool_size: IntPair,
                              layout: object, **kwargs: Any) -> FloatArray:
    parse_layout(layout)
    dp = as_array(dp, "dp", 4)
    shape = _check_shape(x_shape)
    n_threads = resolve_num_threads(kwargs["num_threads"])
    try:
        dx = avg_pool2d_backward(to_nhwc(dp, "dp", result_dtype(dp=dp), num_threads=n_threads),
                                 nhwc_shape(shape), pool_size, **kwargs)
    except ValueError as e:
        raise _nchw_error(e) from None
    return to_nchw(dx, "dx", num_threads=n_threads)


# --------------------------------------------------------------------------
# Global pooling: one window per image, the whole plane
# --------------------------------------------------------------------------

Layout = Literal["NHWC", "NCHW"]


def _check_layout(layout: object) -> Layout:
    if not isinstance(layout, str) or layout.upper() not in ("NHWC", "NCHW"):
        raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
    return "NHWC" if layout.upper() == "NHWC" else "NCHW"


def _planes(shape: tuple[int, ...], layout: str, op: str) -> tuple[int, int, int]:
    # (m, C, pixels per plane) of a 4-D shape in this layout.
    if layout == "NHWC":
        m, n_h, n_w, c = shape
    else:
        m, c, n_h, n_w = shape
    if n_h == 0 or n_w == 0:
        raise ValueError(f"{op}: x must have at least one pixel per plane (n_H, n_W >= 1), "
                         f"got shape {shape} ({layout})")
    if n_h * n_w >= _MAX_POOL_AREA:
        raise ValueError(f"{op}: planes must have fewer than 2**31 pixels, "
                         f"got {n_h} x {n_w}")
    return m, c, n_h * n_w


def _pooled_shape(m: int, c: int, keepdims: bool, layout: str) -> tuple[int, ...]:
    if not keepdims:
        return (m, c)
    return (m, 1, 1, c) if layout == "NHWC" else (m, c, 1, 1)


def _global_forward(op: str, x: npt.ArrayLike, is_max: bool, keepdims: bool, layout: str,
                    num_threads: Int | None) -> FloatArray:
    x = as_array(x, "x", 4)
    dtype = result_dtype(x=x)
    keepdims = _check_bool(keepdims, "keepdims")
    layout = _check_layout(layout)
    m, c, n_hw = _planes(x.shape, layout, op)
    n_threads = resolve_num_threads(num_threads)
    p = np.empty((m, c), dtype=dtype)
    if p.size:
        kernels = _kernels(dtype, c)
        x_c = as_float_array(x, dtype)
        if layout == "NHWC":
            kernels.global_pool2d_forward(x_c.reshape(m, n_hw, c), p, is_max, n_threads)
        else:
            kernels.global_pool2d_forward_rows(x_c.reshape(m * c, n_hw), p.reshape(m * c),
                                               is_max, n_threads)
    return p.reshape(_pooled_shape(m, c, keepdims, layout))


def _global_dp(dp: npt.ArrayLike, m: int, c: int, layout: str) -> npt.NDArray[Any]:
    # dp as (m, C), from either form the forward returns.
    a = as_array(dp, "dp")
    if a.shape not in ((m, c), _pooled_shape(m, c, True, layout)):
        raise ValueError(f"dp must have the forward output's shape {(m, c)} (or "
                         f"{_pooled_shape(m, c, True, layout)} with keepdims), got {a.shape}")
    return a.reshape(m, c)


def global_avg_pool2d(x: npt.ArrayLike, *, keepdims: bool = False, layout: Layout = "NHWC",
                      num_threads: Int | None = None) -> FloatArray:
    """Global average pooling: the mean of each channel's plane.

    Parameters
    ----------
    x : array_like, shape (m, n_H, n_W, C), or (m, C, n_H, n_W) with layout="NCHW"
        Input, at least one pixel per plane. Any memory layout; never modified.
    keepdims : bool, default False
        Keep the pooled spatial axes, of size 1.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        Axis order of ``x`` (and of the result with ``keepdims``).
    num_threads : int, optional
        OpenMP threads; default every usable core.

    Returns
    -------
    p : ndarray, shape (m, C); (m, 1, 1, C) or (m, C, 1, 1) with keepdims
        float32 for float32 (and float16) input, float64 otherwise.

    Raises
    ------
    ValueError
        ``x`` not 4-D, a plane without pixels (``n_H`` or ``n_W`` is 0), an
        unknown ``layout`` or ``num_threads`` below 1.
    TypeError
        ``x`` not of real numbers.

    Notes
    -----
    ``p[i, c] = (1 / (n_H n_W)) * sum_{h, w} x[i, h, w, c]``, summed in pixel
    order (row-major) for every channel, so the result is bitwise the same
    for any thread count and equal to ``avg_pool2d(x, (n_H, n_W))``. Work is
    split over (image, block of 128 channels).

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
    >>> cyconv.global_avg_pool2d(x)
    array([[3., 4.]])
    >>> cyconv.global_avg_pool2d(x.transpose(0, 3, 1, 2), layout="NCHW", keepdims=True).shape
    (1, 2, 1, 1)
    """
    return _global_forward("global_avg_pool2d", x, False, keepdims, layout, num_threads)


def global_max_pool2d(x: npt.ArrayLike, *, keepdims: bool = False, layout: Layout = "NHWC",
                      num_threads: Int | None = None) -> FloatArray:
    """Global max pooling: the maximum of each channel's plane.

    Parameters
    ----------
    x : array_like, shape (m, n_H, n_W, C), or (m, C, n_H, n_W) with layout="NCHW"
        Input, at least one pixel per plane. Any memory layout; never modified.
    keepdims : bool, default False
        Keep the pooled spatial axes, of size 1.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        Axis order of ``x`` (and of the result with ``keepdims``).
    num_threads : int, optional
        OpenMP threads; default every usable core.

    Returns
    -------
    p : ndarray, shape (m, C); (m, 1, 1, C) or (m, C, 1, 1) with keepdims

    Raises
    ------
    ValueError
        ``x`` not 4-D, a plane without pixels (``n_H`` or ``n_W`` is 0), an
        unknown ``layout`` or ``num_threads`` below 1.
    TypeError
        ``x`` not of real numbers.

    Notes
    -----
    ``p[i, c] = max_{h, w} x[i, h, w, c]``; a plane holding a NaN gives NaN,
    as :func:`max_pool2d` with ``pool_size=(n_H, n_W)``, which it equals.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.array([1.0, 7.0, 3.0, 2.0]).reshape(1, 2, 2, 1)
    >>> cyconv.global_max_pool2d(x)
    array([[7.]])
    """
    return _global_forward("global_max_pool2d", x, True, keepdims, layout, num_threads)


def global_avg_pool2d_backward(dp: npt.ArrayLike, x_shape: Sequence[Int], *,
                               layout: Layout = "NHWC",
                               num_threads: Int | None = None) -> FloatArray:
    """Gradient of :func:`global_avg_pool2d` with respect to its input.

    Parameters
    ----------
    dp : array_like, shape (m, C), or the forward's keepdims shape
        Gradient of the loss with respect to the pooled output.
    x_shape : tuple of 4 ints
        Shape of the forward input, in ``layout``.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        As given to the forward.
    num_threads : int, optional
        OpenMP threads; default every usable core.

    Returns
    -------
    dx : ndarray, shape x_shape
        ``dp[i, c] / (n_H n_W)`` at every pixel of plane ``(i, c)``.

    Raises
    ------
    ValueError
        ``x_shape`` not 4 non-negative ints, a plane without pixels, ``dp``
        not shaped ``(m, C)`` (or the keepdims shape) for ``x_shape``, or an
        unknown ``layout``.
    TypeError
        ``x_shape`` not a sequence of ints, or ``dp`` not of real numbers.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> cyconv.global_avg_pool2d_backward(np.ones((1, 1)), (1, 2, 2, 1))[0, :, :, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    op = "global_avg_pool2d_backward"
    dtype = result_dtype(dp=as_array(dp, "dp"))
    x_shape = _check_shape(x_shape)
    layout = _check_layout(layout)
    m, c, n_hw = _planes(x_shape, layout, op)
    dp2 = _global_dp(dp, m, c, layout)
    n_threads = resolve_num_threads(num_threads)
    dx = np.empty(x_shape, dtype=dtype)
    if dx.size:
        kernels = _kernels(dtype, c)
        dp_c = as_float_array(dp2, dtype)
        if layout == "NHWC":
            kernels.global_avg_pool2d_backward(dp_c, dx.reshape(m, n_hw, c), n_threads)
        else:
            flat = dx.reshape(m * c, n_hw)
            kernels.global_pool2d_backward_rows(flat, dp_c.reshape(m * c), flat, False,
                                                n_threads)
    return dx


def global_max_pool2d_backward(dp: npt.ArrayLike, x: npt.ArrayLike, *, layout: Layout = "NHWC",
                               num_threads: Int | None = None) -> FloatArray:
    """Gradient of :func:`global_max_pool2d` with respect to its input.

    Parameters
    ----------
    dp : array_like, shape (m, C), or the forward's keepdims shape
        Gradient of the loss with respect to the pooled output.
    x : array_like, shape (m, n_H, n_W, C), or (m, C, n_H, n_W) with layout="NCHW"
        The forward input.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        As given to the forward.
    num_threads : int, optional
        OpenMP threads; default every usable core.

    Returns
    -------
    dx : ndarray, shape of x

    Raises
    ------
    ValueError
        ``x`` not 4-D, a plane without pixels, ``dp`` not shaped ``(m, C)``
        (or the keepdims shape) for ``x``, or an unknown ``layout``.
    TypeError
        ``x`` or ``dp`` not of real numbers.

    Notes
    -----
    Each plane's gradient goes whole to its FIRST maximum in row-major pixel
    order (or to its first NaN), as :func:`max_pool2d_backward` with
    ``pool_size=(n_H, n_W)`` and PyTorch's ``adaptive_max_pool2d(x, 1)`` do
    (``torch.amax`` instead splits it evenly among tied maxima); every other
    element gets 0.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.array([1.0, 7.0, 7.0, 2.0]).reshape(1, 2, 2, 1)
    >>> cyconv.global_max_pool2d_backward(np.ones((1, 1)), x)[0, :, :, 0]
    array([[0., 1.],
           [0., 0.]])
    """
    op = "global_max_pool2d_backward"
    x = as_array(x, "x", 4)
    dtype = result_dtype(dp=as_array(dp, "dp"), x=x)
    layout = _check_layout(layout)
    m, c, n_hw = _planes(x.shape, layout, op)
    dp2 = _global_dp(dp, m, c, layout)
    n_threads = resolve_num_threads(num_threads)
    dx = np.empty(x.shape, dtype=dtype)
    if dx.size:
        kernels = _kernels(dtype, c)
        dp_c = as_float_array(dp2, dtype)
        x_c = as_float_array(x, dtype)
        if layout == "NHWC":
            kernels.global_max_pool2d_backward(
                x_c.reshape(m, n_hw, c), dp_c, np.empty((m, c), dtype=dtype),
                np.empty((m, c), dtype=np.int32), dx.reshape(m, n_hw, c), n_threads)
        else:
            kernels.global_pool2d_backward_rows(x_c.reshape(m * c, n_hw), dp_c.reshape(m * c),
                                                dx.reshape(m * c, n_hw), True, n_threads)
    return dx
