"""Stanford CS231n's convolution and max-pool layers, by the assignment's names, on cyconv.

Drop-in replacements for the layer functions of CS231n's assignment 2
(``cs231n/layers.py`` and ``cs231n/fast_layers.py``, used by the notebook
``ConvolutionalNetworks.ipynb``): the same names, arguments, NCHW layouts,
parameter dicts, cache tuples and return types, so that notebook code runs
unchanged after ``from cyconv.compat.cs231n import *`` and needs no compiled
im2col extension of its own. The arithmetic is done by :func:`cyconv.conv2d`,
:func:`cyconv.conv2d_backward`, :func:`cyconv.max_pool2d` and the max-pool
backward kernels; this module only translates arguments and layouts.

Layouts follow the assignment: activations ``(N, C, H, W)``, filters
``(F, C, HH, WW)``, biases ``(F,)``; ``conv_param = {'stride': s, 'pad': p}``
and ``pool_param = {'pool_height': ph, 'pool_width': pw, 'stride': s}``.
Output sizes are ``1 + (H + 2 * pad - HH) // stride`` (and ``1 + (H - ph) //
stride`` for pools), rounded down where the assignment's naive functions
assume divisibility. float64 input (the assignment's) gives float64 output;
float32 stays float32; integer input computes in float64.

Functions and caches
--------------------
========================================  ====================================================
``conv_forward_naive``                    ``out, (x, w, b, conv_param)``
``conv_forward_fast`` (= ``_strides``,    ``out, (x, w, b, conv_param, x_nhwc)``: the
``_im2col``)                              assignment keeps its im2col matrix ``x_cols`` in
                                          the last slot; cyconv keeps ``x`` in its own NHWC
                                          order there, which the backward pass reuses.
``max_pool_forward_naive``                ``out, (x, pool_param)``
``max_pool_forward_reshape``              ``out, (x, x_reshaped, out)`` as the assignment's
``max_pool_forward_im2col``               ``out, (x, None, argmax, pool_param)``: ``argmax``
                                          of shape ``(N, C, H', W')`` holds each window's
                                          first maximum (row-major position in the window);
                                          the assignment's ``x_cols`` slot holds None.
``max_pool_forward_fast``                 ``out, ("reshape", cache)`` or
                                          ``out, ("im2col", cache)``, chosen as the
                                          assignment chooses.
========================================  ====================================================

Every backward function takes ``(dout, cache)``; the convolution ones accept
the cache of either forward function.

Behaviour notes (ties in max-pool backward)
-------------------------------------------
- ``max_pool_backward_naive`` and ``max_pool_backward_im2col`` give each
  window's gradient to its FIRST maximum in row-major window order, as the
  assignment's ``max_pool_backward_im2col`` does (``np.argmax``), and as
  :func:`cyconv.max_pool2d_backward` and PyTorch do. The assignment leaves
  the naive version's tie rule to the student.
- ``max_pool_backward_reshape`` does what the assignment's code does: the
  gradient of a window is split EQUALLY among all its tied maxima
  (``dx_reshaped /= np.sum(mask, ...)``). (Its docstring says the gradient goes
  whole to every tied maximum unless a line is uncommented; in every
  published version that line is active.) Without ties the three agree
  exactly; with ties (all-zero windows after a ReLU, say) the reshape
  version differs from the other two, in cyconv as in the assignment.
- ``conv_forward_im2col`` and ``max_pool_forward_im2col`` do not assert that
  the windows tile the input exactly, as the assignment's do: they round down
  like ``conv_forward_strides``. ``max_pool_forward_reshape`` still requires
  square pools equal to the stride that tile the input (ValueError).

Examples
--------
>>> import numpy as np
>>> from cyconv.compat.cs231n import conv_forward_fast, conv_backward_fast
>>> x, w, b = np.ones((2, 3, 5, 5)), np.ones((4, 3, 3, 3)), np.zeros(4)
>>> out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
>>> out.shape, float(out[0, 0, 2, 2])
((2, 4, 5, 5), 27.0)
>>> dx, dw, db = conv_backward_fast(np.ones_like(out), cache)
>>> dx.shape, dw.shape, db.tolist()
((2, 3, 5, 5), (4, 3, 3, 3), [50.0, 50.0, 50.0, 50.0])
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

from cyconv._args import FloatArray, Int, result_dtype
from cyconv._layout import hwio_to_oihw, oihw_to_hwio, to_nchw, to_nhwc
from cyconv.compat.course import _int_params
from cyconv.conv import conv2d, conv2d_backward
from cyconv.pool import IndexArray, _max_pool2d_backward, max_pool2d, max_pool2d_backward

__all__ = [
    "conv_backward_fast",
    "conv_backward_im2col",
    "conv_backward_naive",
    "conv_backward_strides",
    "conv_forward_fast",
    "conv_forward_im2col",
    "conv_forward_naive",
    "conv_forward_strides",
    "max_pool_backward_fast",
    "max_pool_backward_im2col",
    "max_pool_backward_naive",
    "max_pool_backward_reshape",
    "max_pool_forward_fast",
    "max_pool_forward_im2col",
    "max_pool_forward_naive",
    "max_pool_forward_reshape",
]

ConvParam = Mapping[str, Int]
"""``conv_param``: ``{'stride': s, 'pad': p}``."""
PoolParam = Mapping[str, Int]
"""``pool_param``: ``{'pool_height': ph, 'pool_width': pw, 'stride': s}``."""
ConvCache = Union[tuple[Any, Any, Any, ConvParam],
                  tuple[Any, Any, Any, ConvParam, Optional[FloatArray]]]
"""``(x, w, b, conv_param)`` (naive) or ``(x, w, b, conv_param, x_nhwc)`` (fast)."""
PoolCache = tuple[Any, PoolParam]
"""``(x, pool_param)`` of :func:`max_pool_forward_naive`."""
ReshapeCache = tuple[FloatArray, FloatArray, FloatArray]
"""``(x, x_reshaped, out)`` of :func:`max_pool_forward_reshape`."""
Im2colCache = tuple[FloatArray, None, IndexArray, PoolParam]
"""``(x, None, argmax, pool_param)`` of :func:`max_pool_forward_im2col`."""
FastPoolCache = Union[tuple[str, ReshapeCache], tuple[str, Im2colCache]]
"""``("reshape", ReshapeCache)`` or ``("im2col", Im2colCache)``."""

_CONV_KEYS = ("stride", "pad")
_POOL_KEYS = ("pool_height", "pool_width", "stride")


_params = _int_params   # the assignment's dicts follow the same rules as the course's


def _unpack(cache: object, names: tuple[str, ...], op: str,
            lengths: tuple[int, ...] = ()) -> Sequence[Any]:
    lengths = lengths or (len(names),)
    if not isinstance(cache, (tuple, list)) or len(cache) not in lengths:
        got = type(cache).__name__
        if isinstance(cache, (tuple, list)):
            got += f" of length {len(cache)}"
        raise ValueError(f"{op}: cache must be the tuple ({', '.join(names)}) returned by the "
                         f"forward function, got {got}")
    return cache


def _as_4d(a: npt.ArrayLike, name: str, op: str) -> npt.NDArray[Any]:
    arr = np.asarray(a)
    if arr.ndim != 4:
        raise ValueError(f"{op}: {name} must be 4-D (N, C, H, W), got shape {arr.shape}")
    return arr


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------

def _conv_forward(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike, conv_param: ConvParam,
                  op: str) -> tuple[FloatArray, FloatArray]:
    # (out in NCHW, x in NHWC): the transposes of layout="NCHW", made here so
    # that the fast cache can keep x's.
    stride, pad = _params(conv_param, "conv_param", _CONV_KEYS, op)
    x = _as_4d(x, "x", op)
    w = _as_4d(w, "w", op)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: w has {w.shape[1]} channels (w.shape[1]) but x has "
                         f"{x.shape[1]} (x.shape[1]); x must be (N, C, H, W) and "
                         f"w (F, C, HH, WW)")
    b_arr = np.asarray(b)
    if b_arr.shape != (w.shape[0],):
        raise ValueError(f"{op}: b must have shape (F,) = ({w.shape[0]},), got {b_arr.shape}")
    dtype = result_dtype(x=x, w=w, b=b_arr)
    x_nhwc = to_nhwc(x, "x", dtype)
    z = conv2d(x_nhwc, oihw_to_hwio(w, "w", dtype), b_arr.astype(dtype, copy=False),
               stride=stride, padding=pad)
    return to_nchw(z, "out"), x_nhwc


def _conv_backward(dout: npt.ArrayLike, cache: object,
                   op: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    c = _unpack(cache, ("x", "w", "b", "conv_param[, x_cols]"), op, lengths=(4, 5))
    x, w = _as_4d(c[0], "cache's x", op), _as_4d(c[1], "cache's w", op)
    stride, pad = _params(c[3], "conv_param", _CONV_KEYS, op)
    dout = _as_4d(dout, "dout", op)
    if dout.shape[:2] != (x.shape[0], w.shape[0]):
        raise ValueError(f"{op}: dout must have the forward output's shape (N, F, H', W') = "
                         f"({x.shape[0]}, {w.shape[0]}, ...), got {dout.shape}")
    dtype = result_dtype(dout=dout, x=x, w=w)
    x_nhwc = c[4] if len(c) == 5 else None
    if not (isinstance(x_nhwc, np.ndarray) and x_nhwc.dtype == dtype
            and x_nhwc.shape == (x.shape[0], *x.shape[2:], x.shape[1])):
        x_nhwc = to_nhwc(x, "x", dtype)
    dx, dw, db = conv2d_backward(to_nhwc(dout, "dout", dtype), x_nhwc,
                                 oihw_to_hwio(w, "w", dtype), stride=stride, padding=pad)
    return to_nchw(dx, "dx"), hwio_to_oihw(dw, "dw"), db


def conv_forward_naive(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike,
                       conv_param: ConvParam) -> tuple[FloatArray, ConvCache]:
    """Forward pass of a convolutional layer (the assignment's naive version's contract).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input data; not modified.
    w : array_like, shape (F, C, HH, WW)
        Filter weights.
    b : array_like, shape (F,)
        Biases.
    conv_param : dict
        ``{'stride': int >= 1, 'pad': int >= 0}``; ``pad`` zeros on every side
        of the height and width axes.

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
        ``H' = 1 + (H + 2 * pad - HH) // stride``, likewise ``W'``.
    cache : tuple
        ``(x, w, b, conv_param)``: the very objects passed in.

    Raises
    ------
    KeyError
        If ``conv_param`` lacks ``'stride'`` or ``'pad'``.
    TypeError, ValueError
        For non-integer or out-of-range parameters, shapes that do not
        match, or a filter larger than the padded input.

    Notes
    -----
    ``out[n, f, i, j] = sum(x_pad[n, :, i*s:i*s+HH, j*s:j*s+WW] * w[f]) + b[f]``,
    computed by :func:`cyconv.conv2d` (no Python loops).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, cache = conv_forward_naive(x, np.ones((1, 1, 3, 3)), np.zeros(1),
    ...                                 {"stride": 1, "pad": 0})
    >>> out
    array([[[[45., 54.],
             [81., 90.]]]])
    >>> cache[0] is x
    True
    """
    out, _ = _conv_forward(x, w, b, conv_param, "conv_forward_naive")
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout: npt.ArrayLike,
                        cache: ConvCache) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Backward pass of a convolutional layer.

    Parameters
    ----------
    dout : array_like, shape (N, F, H', W')
        Upstream derivatives.
    cache : tuple
        ``(x, w, b, conv_param)`` as returned by :func:`conv_forward_naive`
        (the 5-tuple of :func:`conv_forward_fast` is accepted too).

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Gradient with respect to ``x``.
    dw : ndarray, shape (F, C, HH, WW)
        Gradient with respect to ``w``.
    db : ndarray, shape (F,)
        Gradient with respect to ``b``.

    Raises
    ------
    ValueError
        For a malformed ``cache`` or a ``dout`` whose shape is not the
        forward output's.
    KeyError, TypeError
        As :func:`conv_forward_naive`, for the cached ``conv_param``.

    Examples
    --------
    >>> import numpy as np
    >>> x, w, b = np.ones((1, 1, 4, 4)), np.ones((2, 1, 2, 2)), np.zeros(2)
    >>> out, cache = conv_forward_naive(x, w, b, {"stride": 2, "pad": 0})
    >>> dx, dw, db = conv_backward_naive(np.ones_like(out), cache)
    >>> dx[0, 0]
    array([[2., 2., 2., 2.],
           [2., 2., 2., 2.],
           [2., 2., 2., 2.],
           [2., 2., 2., 2.]])
    >>> dw.shape, db.tolist()
    ((2, 1, 2, 2), [4.0, 4.0])
    """
    return _conv_backward(dout, cache, "conv_backward_naive")


def conv_forward_strides(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike,
                         conv_param: ConvParam) -> tuple[FloatArray, ConvCache]:
    """The assignment's fast convolution forward pass (``conv_forward_fast``).

    As :func:`conv_forward_naive`, with the fast layers' cache
    ``(x, w, b, conv_param, x_nhwc)``: where the assignment keeps its im2col
    matrix ``x_cols``, cyconv keeps ``x`` transposed to NHWC, so that
    :func:`conv_backward_strides` need not transpose it again.
    ``conv_forward_fast`` and ``conv_forward_im2col`` are this function.

    Raises
    ------
    KeyError, TypeError, ValueError
        As :func:`conv_forward_naive`.

    Examples
    --------
    >>> import numpy as np
    >>> x, w, b = np.ones((2, 3, 8, 8)), np.ones((5, 3, 3, 3)), np.arange(5.0)
    >>> out, cache = conv_forward_fast(x, w, b, {"stride": 2, "pad": 1})
    >>> out.shape, len(cache), cache[4].shape
    ((2, 5, 4, 4), 5, (2, 8, 8, 3))
    """
    out, x_nhwc = _conv_forward(x, w, b, conv_param, "conv_forward_fast")
    return out, (x, w, b, conv_param, x_nhwc)


def conv_backward_strides(dout: npt.ArrayLike,
                          cache: ConvCache) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The assignment's fast convolution backward pass (``conv_backward_fast``).

    As :func:`conv_backward_naive`; takes the cache of
    :func:`conv_forward_fast` (or of :func:`conv_forward_naive`).
    ``conv_backward_fast`` and ``conv_backward_im2col`` are this function.

    Raises
    ------
    KeyError, TypeError, ValueError
        As :func:`conv_backward_naive`.

    Examples
    --------
    >>> import numpy as np
    >>> x, w, b = np.ones((2, 3, 8, 8)), np.ones((5, 3, 3, 3)), np.zeros(5)
    >>> out, cache = conv_forward_fast(x, w, b, {"stride": 2, "pad": 1})
    >>> dx, dw, db = conv_backward_fast(np.ones_like(out), cache)
    >>> dx.shape, dw.shape, db.shape
    ((2, 3, 8, 8), (5, 3, 3, 3), (5,))
    """
    return _conv_backward(dout, cache, "conv_backward_fast")


conv_forward_fast = conv_forward_strides
conv_backward_fast = conv_backward_strides
conv_forward_im2col = conv_forward_strides
conv_backward_im2col = conv_backward_strides


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------
# Pooling acts on every channel alone, so NCHW data of shape (N, C, H, W) is
# also NHWC data of shape (N*C, H, W, 1): a reshape, no transpose. The
# kernels vectorise over channels, though, so from 4 channels on a transpose
# to NHWC (cyconv._layout) and back costs less than running them one channel
# at a time (measured, 1 thread: (64, 4, 28, 28) forward 0.20 ms transposed,
# 0.53 ms as a view; (100, 3, 32, 32) 1.8 ms transposed, 1.2 ms as a view).
# Either way the values are the same.
_VIEW_CHANNELS = 3

def _pool_args(x: npt.ArrayLike, pool_param: PoolParam,
               op: str) -> tuple[npt.NDArray[Any], tuple[int, int], int]:
    ph, pw, stride = _params(pool_param, "pool_param", _POOL_KEYS, op)
    return _as_4d(x, "x", op), (ph, pw), stride


def _channels_last(a: npt.NDArray[Any], name: str) -> npt.NDArray[Any]:
    # NCHW -> an NHWC array for the pool kernels (see above).
    n, c, h, w = a.shape
    if c <= _VIEW_CHANNELS:
        return a.reshape(n * c, h, w, 1)
    return to_nhwc(a, name)


def _channels_first(a: npt.NDArray[Any], n: int, c: int) -> npt.NDArray[Any]:
    # The inverse of _channels_last for a batch of n images of c channels.
    if c <= _VIEW_CHANNELS:
        return a.reshape(n, c, a.shape[1], a.shape[2])
    return to_nchw(a, "out")


def _pool_dout(dout: npt.ArrayLike, x: npt.NDArray[Any], f: tuple[int, int], stride: int,
               op: str) -> npt.NDArray[Any]:
    dout = _as_4d(dout, "dout", op)
    n, c, h, w = x.shape
    shape = (n, c, max((h - f[0]) // stride + 1, 0), max((w - f[1]) // stride + 1, 0))
    if dout.shape != shape:
        raise ValueError(f"{op}: dout must have the forward output's shape (N, C, H', W') = "
                         f"{shape}, got {dout.shape}")
    return dout


def _pool_forward(x: npt.NDArray[Any], f: tuple[int, int], stride: int,
                  return_indices: bool = False) -> Any:
    n, c = x.shape[:2]
    if return_indices:
        out, idx = max_pool2d(_channels_last(x, "x"), f, stride=stride, return_indices=True)
        return _channels_first(out, n, c), _channels_first(idx, n, c)
    return _channels_first(max_pool2d(_channels_last(x, "x"), f, stride=stride), n, c)


def max_pool_forward_naive(x: npt.ArrayLike,
                           pool_param: PoolParam) -> tuple[FloatArray, PoolCache]:
    """Forward pass of a max-pooling layer (no padding).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input data; not modified.
    pool_param : dict
        ``{'pool_height': int >= 1, 'pool_width': int >= 1, 'stride': int >= 1}``.

    Returns
    -------
    out : ndarray, shape (N, C, H', W')
        ``H' = 1 + (H - pool_height) // stride``, ``W' = 1 + (W - pool_width) // stride``.
    cache : tuple
        ``(x, pool_param)``: the very objects passed in.

    Raises
    ------
    KeyError
        If ``pool_param`` lacks a key (the message names it).
    TypeError, ValueError
        For non-integer or out-of-range parameters, a non-4-D ``x`` or a
        window larger than the input.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    >>> out
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    arr, f, stride = _pool_args(x, pool_param, "max_pool_forward_naive")
    return _pool_forward(arr, f, stride), (x, pool_param)


def max_pool_backward_naive(dout: npt.ArrayLike, cache: PoolCache) -> FloatArray:
    """Backward pass of a max-pooling layer.

    Parameters
    ----------
    dout : array_like, shape (N, C, H', W')
        Upstream derivatives.
    cache : tuple
        ``(x, pool_param)`` as returned by :func:`max_pool_forward_naive`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Each window's gradient goes to its first maximum in row-major window
        order (see the module's notes on ties); overlapping windows add up.

    Raises
    ------
    ValueError
        For a malformed ``cache`` or a ``dout`` of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])   # a tie: 3 twice
    >>> out, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    >>> max_pool_backward_naive(np.ones_like(out), cache)
    array([[[[0., 1.],
             [0., 0.]]]])
    """
    op = "max_pool_backward_naive"
    x, pool_param = _unpack(cache, ("x", "pool_param"), op)
    arr, f, stride = _pool_args(x, pool_param, op)
    dout = _pool_dout(dout, arr, f, stride, op)
    dx = max_pool2d_backward(_channels_last(dout, "dout"), _channels_last(arr, "x"), f,
                             stride=stride)
    return _channels_first(dx, *arr.shape[:2])


def max_pool_forward_reshape(x: npt.ArrayLike,
                             pool_param: PoolParam) -> tuple[FloatArray, ReshapeCache]:
    """Max pooling of square windows that tile the input (the assignment's reshape version).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    pool_param : dict
        As :func:`max_pool_forward_naive`, with
        ``pool_height == pool_width == stride`` dividing ``H`` and ``W``.

    Returns
    -------
    out : ndarray, shape (N, C, H / stride, W / stride)
    cache : tuple
        ``(x, x_reshaped, out)`` with ``x_reshaped`` of shape
        ``(N, C, H / ph, ph, W / pw, pw)``, as the assignment's.

    Raises
    ------
    ValueError
        If the pools are not square, equal to the stride, or do not tile the
        input (the assignment asserts the same).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 1, 2, 2))   # four tied maxima
    >>> out, cache = max_pool_forward_reshape(x, {"pool_height": 2, "pool_width": 2,
    ...                                          "stride": 2})
    >>> max_pool_backward_reshape(np.ones_like(out), cache)   # split equally
    array([[[[0.25, 0.25],
             [0.25, 0.25]]]])
    """
    op = "max_pool_forward_reshape"
    arr, f, stride = _pool_args(x, pool_param, op)
    n, c, h, w = arr.shape
    if not (f[0] == f[1] == stride and h % f[0] == 0 and w % f[1] == 0):
        raise ValueError(f"{op}: needs pool_height == pool_width == stride dividing H and W, "
                         f"got pool {f[0]} x {f[1]}, stride {stride} on {h} x {w}")
    out = _pool_forward(arr, f, stride)
    x_reshaped = arr.reshape(n, c, h // f[0], f[0], w // f[1], f[1])
    return out, (arr, x_reshaped, out)


def max_pool_backward_reshape(dout: npt.ArrayLike, cache: ReshapeCache) -> FloatArray:
    """Backward pass of :func:`max_pool_forward_reshape`: ties share the gradient equally.

    Parameters
    ----------
    dout : array_like, shape (N, C, H', W')
    cache : tuple
        ``(x, x_reshaped, out)`` from :func:`max_pool_forward_reshape`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Each window's ``dout`` divided by the number of its elements equal to
        its maximum, at each of them (the assignment's code).

    Raises
    ------
    ValueError
        For a malformed ``cache`` or a ``dout`` of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    >>> out, cache = max_pool_forward_reshape(x, {"pool_height": 2, "pool_width": 2,
    ...                                          "stride": 2})
    >>> max_pool_backward_reshape(np.ones_like(out), cache)
    array([[[[0. , 0.5],
             [0.5, 0. ]]]])
    """
    op = "max_pool_backward_reshape"
    x, x_reshaped, _ = _unpack(cache, ("x", "x_reshaped", "out"), op)
    arr = _as_4d(x, "cache's x", op)
    x_reshaped = np.asarray(x_reshaped)
    if x_reshaped.ndim != 6:
        raise ValueError(f"{op}: the cache's x_reshaped must be 6-D "
                         f"(N, C, H', pool_height, W', pool_width), got {x_reshaped.shape}")
    f = (x_reshaped.shape[3], x_reshaped.shape[5])
    dout = _pool_dout(dout, arr, f, f[0], op)
    dtype = result_dtype(dout=dout, x=arr)
    n, c, h, w = arr.shape
    x4 = _channels_last(arr, "x")
    dout4 = _channels_last(dout, "dout")
    # The assignment's mask x_reshaped == out: the all-ties kernel marks every
    # maximum of every (disjoint) window with a 1. One mark per window (no
    # ties, the usual case): the first-maximum kernel gives the answer.
    marks = _max_pool2d_backward(np.ones(dout4.shape, dtype=dtype), x4, f, f[0], 0, None,
                                 all_ties=True)
    if np.count_nonzero(marks) == dout.size:
        return _channels_first(max_pool2d_backward(dout4, x4, f), n, c)
    # Ties: each maximum of a window gets dout / (their number).
    marks_nchw = _channels_first(marks, n, c)
    ties = marks_nchw.reshape(n, c, h // f[0], f[0], w // f[1], f[1]).sum(axis=(3, 5))
    share = dout.astype(dtype, copy=False) / np.maximum(ties, 1)
    dx = _max_pool2d_backward(_channels_last(share, "dout"), x4, f, f[0], 0, None,
                              all_ties=True)
    return _channels_first(dx, n, c)


def max_pool_forward_im2col(x: npt.ArrayLike,
                            pool_param: PoolParam) -> tuple[FloatArray, Im2colCache]:
    """Max pooling of any windows (the assignment's im2col version).

    As :func:`max_pool_forward_naive`; the cache is ``(x, None, argmax,
    pool_param)``: where the assignment keeps ``x_cols`` cyconv keeps None,
    and ``argmax`` (int32, shape ``(N, C, H', W')``) is each window's first
    maximum as a row-major position in the window.

    Raises
    ------
    KeyError, TypeError, ValueError
        As :func:`max_pool_forward_naive`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(25.0).reshape(1, 1, 5, 5)
    >>> out, cache = max_pool_forward_im2col(x, {"pool_height": 3, "pool_width": 3,
    ...                                         "stride": 2})
    >>> out[0, 0], cache[2][0, 0]
    (array([[12., 14.],
           [22., 24.]]), array([[8, 8],
           [8, 8]], dtype=int32))
    """
    arr, f, stride = _pool_args(x, pool_param, "max_pool_forward_im2col")
    out, argmax = _pool_forward(arr, f, stride, return_indices=True)
    return out, (arr, None, argmax, pool_param)


def max_pool_backward_im2col(dout: npt.ArrayLike, cache: Im2colCache) -> FloatArray:
    """Backward pass of :func:`max_pool_forward_im2col`: the first maximum takes it all.

    Raises
    ------
    ValueError
        As :func:`max_pool_backward_naive`, for a malformed ``cache`` or a
        ``dout`` whose shape is not the forward output's.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    >>> out, cache = max_pool_forward_im2col(x, {"pool_height": 2, "pool_width": 2,
    ...                                         "stride": 2})
    >>> max_pool_backward_im2col(np.ones_like(out), cache)
    array([[[[0., 1.],
             [0., 0.]]]])
    """
    op = "max_pool_backward_im2col"
    x, _, argmax, pool_param = _unpack(cache, ("x", "x_cols", "x_cols_argmax", "pool_param"), op)
    arr, f, stride = _pool_args(x, pool_param, op)
    dout = _pool_dout(dout, arr, f, stride, op)
    argmax = _as_4d(argmax, "the cache's argmax", op)
    dx = max_pool2d_backward(_channels_last(dout, "dout"), _channels_last(arr, "x"), f,
                             stride=stride, indices=_channels_last(argmax, "argmax"))
    return _channels_first(dx, *arr.shape[:2])


def max_pool_forward_fast(x: npt.ArrayLike,
                          pool_param: PoolParam) -> tuple[FloatArray, FastPoolCache]:
    """Max pooling, choosing the reshape or im2col version as the assignment does.

    The reshape version when ``pool_height == pool_width == stride`` and the
    pools tile the input, else the im2col version.

    Returns
    -------
    out : ndarray, shape (N, C, H', W')
    cache : tuple
        ``("reshape", reshape_cache)`` or ``("im2col", im2col_cache)``.

    Raises
    ------
    KeyError, TypeError, ValueError
        As :func:`max_pool_forward_naive`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(32.0).reshape(1, 2, 4, 4)
    >>> out, cache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    >>> cache[0], out[0, 1]
    ('reshape', array([[21., 23.],
           [29., 31.]]))
    """
    op = "max_pool_forward_fast"
    arr, f, stride = _pool_args(x, pool_param, op)
    if f[0] == f[1] == stride and arr.shape[2] % f[0] == 0 and arr.shape[3] % f[1] == 0:
        out, reshape_cache = max_pool_forward_reshape(arr, pool_param)
        return out, ("reshape", reshape_cache)
    out, im2col_cache = max_pool_forward_im2col(arr, pool_param)
    return out, ("im2col", im2col_cache)


def max_pool_backward_fast(dout: npt.ArrayLike, cache: FastPoolCache) -> FloatArray:
    """Backward pass of :func:`max_pool_forward_fast`, by the method its cache names.

    Raises
    ------
    ValueError
        For a method other than ``"reshape"`` and ``"im2col"``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(32.0).reshape(1, 2, 4, 4)
    >>> out, cache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    >>> max_pool_backward_fast(np.ones_like(out), cache)[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """
    method, real_cache = _unpack(cache, ("method", "cache"), "max_pool_backward_fast")
    if method == "reshape":
        return max_pool_backward_reshape(dout, real_cache)
    if method == "im2col":
        return max_pool_backward_im2col(dout, real_cache)
    raise ValueError(f'Unrecognized method "{method}"')
