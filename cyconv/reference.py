"""Plain NumPy convolution and pooling: the definition of truth.

The loops follow the course notes (Deep Learning Notes C4W1): one Python loop
per batch element ``i``, output row ``h`` and output column ``w`` (``oh`` and
``ow`` in the code, as ``w`` names the filters), with NumPy doing the channel
arithmetic inside the loop. Nothing here is fast; everything here is meant to
be obviously right. The compiled kernels are tested against these functions.

This module imports nothing from the ``cyconv`` package, so a bug in the
package's argument parsing cannot hide itself by also appearing here.

Conventions
-----------
* Activations are NHWC, ``(m, n_H, n_W, n_C)``; filters are
  ``(f_h, f_w, C_in, C_out)``; biases are ``(C_out,)`` or ``(1, 1, 1, C_out)``.
* ``stride`` and ``pool_size`` are an int or a pair ``(h, w)``; a pool's
  ``stride=None`` means ``stride = pool_size``.
* ``padding`` is an int ``p`` (all sides), ``(p_h, p_w)``,
  ``((top, bottom), (left, right))``, ``"valid"`` or ``"same"`` (the
  TensorFlow rule: ``out = ceil(n / s)``, the extra pixel goes at the end).
* Per spatial axis the output size is
  ``floor((n + p_begin + p_end - f) / s) + 1``. Pools take PyTorch's
  ``ceil_mode`` (round up; the last window must start inside the input or
  the padding before it) and max-pool its ``dilation`` (taps ``d`` apart, a
  window extent of ``d * (f - 1) + 1``, which is then ``f`` above).
* ``global_avg_pool2d`` / ``global_max_pool2d`` reduce each channel's plane,
  NHWC or NCHW.
* Results have the ``np.result_type`` of the inputs; integer and bool inputs
  are computed in float64.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

__all__ = [
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
]

# Types of the signatures (the same as cyconv's, written out again here).
FloatArray = npt.NDArray[np.floating[Any]]
Int = Union[int, np.integer[Any]]
IntPair = Union[Int, tuple[Int, Int]]
Pads = tuple[tuple[int, int], ...]  # ((top, bottom), (left, right))
Padding = Union[Int, tuple[Int, Int], tuple[tuple[Int, Int], tuple[Int, Int]], str]


# --------------------------------------------------------------------------
# Argument parsing (deliberately a separate copy of the package's rules)
# --------------------------------------------------------------------------

def _int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None


def _pair(value: object, name: str) -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of positive ints -> ``(h, w)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        pair = (_int(value[0], name), _int(value[1], name))
    else:
        pair = (_int(value, name),) * 2
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return pair


def _padding(padding: object, n_H: int, n_W: int, f_h: int, f_w: int, s_h: int,
             s_w: int) -> Pads:
    """Any accepted padding form -> ``((top, bottom), (left, right))``."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            return (_same(n_H, f_h, s_h), _same(n_W, f_w, s_w))
        raise ValueError(f"padding must be 'valid' or 'same' when a string, got {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding must have 2 entries (height, width), got {padding!r}")
        if all(isinstance(p, (tuple, list)) for p in padding):
            if any(len(p) != 2 for p in padding):
                raise ValueError(
                    f"padding must be ((top, bottom), (left, right)), got {padding!r}")
            pads = tuple((_int(p[0], "padding"), _int(p[1], "padding")) for p in padding)
        else:
            p_h, p_w = (_int(p, "padding") for p in padding)
            pads = ((p_h, p_h), (p_w, p_w))
    else:
        p = _int(padding, "padding")
        pads = ((p, p), (p, p))
    if min(pads[0] + pads[1]) < 0:
        raise ValueError(f"padding must be >= 0 on every side, got {padding!r}")
    return pads


def _same(n: int, f: int, s: int) -> tuple[int, int]:
    """TensorFlow/Keras 'same' padding of one axis -> ``(begin, end)``."""
    out = -(-n // s)  # ceil(n / s)
    total = max((out - 1) * s + f - n, 0)
    return total // 2, total - total // 2


def _out_size(n: int, f: int, s: int, pads: tuple[int, int], axis: str) -> int:
    begin, end = pads
    if n + begin + end < f:
        raise ValueError(
            f"the padded input {axis} ({n} + {begin} + {end}) is smaller than the window ({f})")
    return (n + begin + end - f) // s + 1


def _dtype(*arrays: npt.NDArray[Any]) -> np.dtype[Any]:
    """Common float dtype of the inputs; integers and bools compute in float64."""
    dtype = np.result_type(*arrays)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    return dtype


def _as_4d(a: npt.ArrayLike, name: str) -> npt.NDArray[Any]:
    a = np.asarray(a)
    if a.ndim != 4:
        raise ValueError(f"{name} must be 4-D, got shape {a.shape}")
    return a


def _geometry(x_shape: tuple[int, ...], f_h: int, f_w: int, stride: object,
              padding: object) -> tuple[tuple[int, int], Pads, tuple[int, int]]:
    """Shared shape logic: returns ``(s_h, s_w), pads, (n_H_out, n_W_out)``."""
    _, n_H, n_W, _ = x_shape
    s_h, s_w = _pair(stride, "stride")
    pads = _padding(padding, n_H, n_W, f_h, f_w, s_h, s_w)
    out = (_out_size(n_H, f_h, s_h, pads[0], "height"),
           _out_size(n_W, f_w, s_w, pads[1], "width"))
    return (s_h, s_w), pads, out


def _check_grad_shape(g: npt.NDArray[Any], expected: tuple[int, ...], name: str) -> None:
    if g.shape != expected:
        raise ValueError(f"{name} must have the forward output's shape {expected}, got {g.shape}")


# --------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------

def _relu(activation: object) -> bool:
    if activation is None:
        return False
    if activation == "relu":
        return True
    raise ValueError(f"activation must be None or 'relu', got {activation!r}")


def conv2d(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *,
           stride: IntPair = 1, padding: Padding = 0, activation: str | None = None,
           dilation: IntPair = 1, groups: Int = 1) -> FloatArray:
    r"""2-D convolution (cross-correlation, as in the notes) of NHWC input.

    Parameters
    ----------
    x : array_like, shape (m, n_H_prev, n_W_prev, C_in)
        Input activations.
    w : array_like, shape (f_h, f_w, C_in, C_out)
        Filters.
    b : array_like, shape (C_out,) or (1, 1, 1, C_out), optional
        Bias added to every output position; ``None`` means no bias.
    stride : int or (int, int), default 1
        Step ``(s_h, s_w)`` of the window.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        Zero padding: ``p`` on all sides, ``(p_h, p_w)`` on both sides of each
        axis, ``((top, bottom), (left, right))``, none, or TensorFlow's 'same'.
    activation : None or 'relu'
        'relu' returns ``a = where(z <= 0, 0, z)`` instead of ``z``.
    dilation : int or (int, int), default 1
        Spacing ``(d_h, d_w)`` of the taps: the window spans ``d * (f - 1) + 1``
        pixels per axis (also for 'same' and the output size).
    groups : int, default 1
        Input and output channels split into ``groups`` equal groups, group
        ``g``'s outputs reading only group ``g``'s inputs; ``w`` is then
        ``(f_h, f_w, C_in / groups, C_out)`` (TensorFlow's grouped HWIO).

    Returns
    -------
    z : ndarray, shape (m, n_H, n_W, C_out)
        ``n_H = floor((n_H_prev + top + bottom - f_h) / s_h) + 1``, likewise
        ``n_W``. The dtype is the result type of ``x``, ``w`` and ``b``
        (float64 for integer inputs).

    Raises
    ------
    ValueError
        If shapes disagree, stride < 1, padding < 0, or the window is larger
        than the padded input.

    Notes
    -----
    With ``xpad`` the zero-padded input,

    .. math::

        z[i, h, w, c_o] = \sum_{k_h, k_w, c_i}
            xpad[i, h s_h + k_h, w s_w + k_w, c_i] \, w[k_h, k_w, c_i, c_o] + b[c_o]

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> w = np.ones((2, 2, 1, 1))
    >>> conv2d(x, w, stride=2)[0, :, :, 0]
    array([[10., 18.],
           [42., 50.]])
    """
    relu = _relu(activation)
    x = _as_4d(x, "x")
    w = _as_4d(w, "w")
    m, n_H_prev, n_W_prev, C_in = x.shape
    f_h, f_w, w_C_in, C_out = w.shape
    G = _groups(groups, C_in, C_out, w_C_in)
    arrays: tuple[npt.NDArray[Any], ...] = (x, w)
    if b is not None:
        b = np.asarray(b)
        if b.shape not in ((C_out,), (1, 1, 1, C_out)):
            raise ValueError(f"b must have shape ({C_out},) or (1, 1, 1, {C_out}), got {b.shape}")
        arrays += (b,)
    dtype = _dtype(*arrays)
    d_h, d_w = _pair(dilation, "dilation")
    e_h, e_w = d_h * (f_h - 1) + 1, d_w * (f_w - 1) + 1  # the window's extent
    (s_h, s_w), pads, (n_H, n_W) = _geometry(x.shape, e_h, e_w, stride, padding)

    x_pad = np.pad(x.astype(dtype, copy=False), ((0, 0),) + pads + ((0, 0),))
    w = w.astype(dtype, copy=False)
    z = np.zeros((m, n_H, n_W, C_out), dtype=dtype)
    K, Q = C_in // G, C_out // G   # input and output channels per group
    for i in range(m):
        for oh in range(n_H):
            for ow in range(n_W):
                hs, ws = oh * s_h, ow * s_w
                a_slice = x_pad[i, hs:hs + e_h:d_h, ws:ws + e_w:d_w, :]
                for g in range(G):
                    z[i, oh, ow, g * Q:(g + 1) * Q] = np.tensordot(
                        a_slice[:, :, g * K:(g + 1) * K], w[:, :, :, g * Q:(g + 1) * Q], axes=3)
    if b is not None:
        z += b.reshape(C_out).astype(dtype, copy=False)
    if relu:
        z = np.where(z <= 0, dtype.type(0), z)
    return z


def conv2d_backward(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike, *,
                    stride: IntPair = 1, padding: Padding = 0,
                    activation: str | None = None, a: npt.ArrayLike | None = None,
                    dilation: IntPair = 1, groups: Int = 1,
                    ) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Gradients of :func:`conv2d` with respect to its input, filters and bias.

    Parameters
    ----------
    dz : array_like, shape (m, n_H, n_W, C_out)
        Gradient of the loss with respect to the output ``z``.
    x : array_like, shape (m, n_H_prev, n_W_prev, C_in)
        The forward input.
    w : array_like, shape (f_h, f_w, C_in, C_out)
        The forward filters.
    stride, padding, dilation, groups
        As in :func:`conv2d`.
    activation : None or 'relu'
        As given to :func:`conv2d`; with 'relu', ``dz`` is the gradient with
        respect to the activation's output ``a`` and is masked by ``a > 0``.
    a : array_like, shape of ``dz``
        With 'relu': the forward's output ``conv2d(..., activation='relu')``.

    Returns
    -------
    dx : ndarray, shape (m, n_H_prev, n_W_prev, C_in)
    dw : ndarray, shape (f_h, f_w, C_in, C_out)
    db : ndarray, shape (C_out,)
        All three have the result type of ``dz``, ``x`` and ``w`` (float64 for
        integer inputs).

    Raises
    ------
    ValueError
        As :func:`conv2d`, or if ``dz`` does not have the forward output shape.

    Notes
    -----
    Every output position scatters back through the window it read:

    .. math::

        dxpad[i, h s_h + k_h, w s_w + k_w, c_i] \mathrel{+}=
            \sum_{c_o} w[k_h, k_w, c_i, c_o] \, dz[i, h, w, c_o]

        dw[k_h, k_w, c_i, c_o] = \sum_{i, h, w}
            xpad[i, h s_h + k_h, w s_w + k_w, c_i] \, dz[i, h, w, c_o]

        db[c_o] = \sum_{i, h, w} dz[i, h, w, c_o]

    and ``dx`` is ``dxpad`` with the padding cut off.

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 3, 3, 1)
    >>> w = np.ones((2, 2, 1, 1))
    >>> dx, dw, db = conv2d_backward(np.ones((1, 2, 2, 1)), x, w)
    >>> dx[0, :, :, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> dw[:, :, 0, 0], db
    (array([[ 8., 12.],
           [20., 24.]]), array([4.]))
    """
    dz = _as_4d(dz, "dz")
    if _relu(activation):
        if a is None:
            raise ValueError("activation='relu' needs a, the forward's output")
        a = _as_4d(a, "a")
        _check_grad_shape(a, dz.shape, "a")
        dz = np.where(a > 0, dz, np.zeros((), dz.dtype))
    x = _as_4d(x, "x")
    w = _as_4d(w, "w")
    m, n_H_prev, n_W_prev, C_in = x.shape
    f_h, f_w, w_C_in, C_out = w.shape
    G = _groups(groups, C_in, C_out, w_C_in)
    dtype = _dtype(dz, x, w)
    d_h, d_w = _pair(dilation, "dilation")
    e_h, e_w = d_h * (f_h - 1) + 1, d_w * (f_w - 1) + 1
    (s_h, s_w), pads, (n_H, n_W) = _geometry(x.shape, e_h, e_w, stride, padding)
    _check_grad_shape(dz, (m, n_H, n_W, C_out), "dz")

    dz = dz.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    x_pad = np.pad(x.astype(dtype, copy=False), ((0, 0),) + pads + ((0, 0),))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros((f_h, f_w, C_in // G, C_out), dtype=dtype)
    K, Q = C_in // G, C_out // G
    for i in range(m):
        for oh in range(n_H):
            for ow in range(n_W):
                hs, ws = oh * s_h, ow * s_w
                win = (i, slice(hs, hs + e_h, d_h), slice(ws, ws + e_w, d_w))
                for grp in range(G):
                    ci, co = slice(grp * K, (grp + 1) * K), slice(grp * Q, (grp + 1) * Q)
                    g = dz[i, oh, ow, co]
                    dx_pad[win + (ci,)] += w[:, :, :, co] @ g
                    dw[:, :, :, co] += x_pad[win + (ci, None)] * g
    db = dz.sum(axis=(0, 1, 2))
    (top, _), (left, _) = pads
    dx = dx_pad[:, top:top + n_H_prev, left:left + n_W_prev, :].copy()
    return dx, dw, db


def _groups(groups: object, C_in: int, C_out: int, w_C_in: int) -> int:
    """Check ``groups`` against the channels; the filters hold ``C_in / groups`` inputs."""
    G = _int(groups, "groups")
    if G < 1 or C_in % G or C_out % G:
        raise ValueError(f"groups must be >= 1 and divide C_in = {C_in} and C_out = {C_out}, "
                         f"got {groups!r}")
    if w_C_in * G != C_in:
        raise ValueError(f"w must have C_in / groups = {C_in // G} input channels, got {w_C_in}")
    return G


def _transpose_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: object,
                        padding: object, output_padding: object, dilation: object,
                        groups: object) -> tuple[Any, ...]:
    """PyTorch's rules: ``(s, p, op, d, G, (o_h, o_w))`` of a transposed convolution."""
    m, n_H, n_W, C_in = x_shape
    f_h, f_w, w_C_out, w_C_in = w_shape
    if w_C_in != C_in:
        raise ValueError(f"w must have C_in = x.shape[3] = {C_in} as its last axis, got {w_C_in}")
    s = _pair(stride, "stride")
    d = _pair(dilation, "dilation")
    if isinstance(padding, (tuple, list)):
        p = (_int(padding[0], "padding"), _int(padding[1], "padding"))
    else:
        p = (_int(padding, "padding"),) * 2
    if isinstance(output_padding, (tuple, list)):
        op = (_int(output_padding[0], "output_padding"), _int(output_padding[1], "output_padding"))
    else:
        op = (_int(output_padding, "output_padding"),) * 2
    if min(p) < 0 or min(op) < 0:
        raise ValueError("padding and output_padding must be >= 0")
    if any(o >= max(sa, da) for o, sa, da in zip(op, s, d)):
        raise ValueError(f"output_padding must be smaller than stride or dilation, got {op}")
    G = _int(groups, "groups")
    if G < 1 or C_in % G:
        raise ValueError(f"groups must be >= 1 and divide C_in = {C_in}, got {groups!r}")
    out = tuple((n - 1) * sa - 2 * pa + da * (f - 1) + oa + 1
                for n, sa, pa, da, f, oa in zip((n_H, n_W), s, p, d, (f_h, f_w), op))
    if min(out) < 1:
        raise ValueError(f"the output would have size {out}")
    return s, p, op, d, G, out


def conv_transpose2d(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *,
                     stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                     dilation: IntPair = 1, groups: Int = 1) -> FloatArray:
    r"""Transposed 2-D convolution of NHWC input (PyTorch's ``conv_transpose2d`` rules).

    Parameters
    ----------
    x : array_like, shape (m, n_H, n_W, C_in)
    w : array_like, shape (f_h, f_w, C_out / groups, C_in)
        The filters of the convolution this one transposes (the same ``w``
        :func:`conv2d` takes to map ``C_out`` channels to ``C_in``).
    b : array_like, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int)
        ``padding`` crops ``p`` pixels from both ends of each axis;
        ``output_padding`` (< stride or < dilation) adds pixels at the end.
    groups : int, default 1

    Returns
    -------
    y : ndarray, shape (m, o_H, o_W, C_out)
        ``o = (n - 1) * s - 2 * p + d * (f - 1) + output_padding + 1`` per axis.

    Raises
    ------
    ValueError
        If shapes disagree (``w``'s last axis must be ``x``'s channels), stride
        < 1, padding < 0, or ``output_padding`` not smaller than the stride
        or the dilation.

    Notes
    -----
    Every input pixel scatters through its window into the uncropped output,
    which is then cropped by ``padding`` at the start of each axis:

    .. math::

        yfull[i, h s_h + k_h d_h, w s_w + k_w d_w, c_o] \mathrel{+}=
            \sum_{c_i} w[k_h, k_w, c_o, c_i] \, x[i, h, w, c_i]

    (within a group). It is the adjoint of :func:`conv2d` with the same ``w``.

    Examples
    --------
    >>> conv_transpose2d(np.ones((1, 2, 2, 1)), np.ones((2, 2, 1, 1)), stride=2)[0, :, :, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """
    x = _as_4d(x, "x")
    w = _as_4d(w, "w")
    arrays: tuple[npt.NDArray[Any], ...] = (x, w)
    if b is not None:
        b = np.asarray(b)
        arrays += (b,)
    dtype = _dtype(*arrays)
    (s_h, s_w), (p_h, p_w), _, (d_h, d_w), G, (o_h, o_w) = _transpose_geometry(
        x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    m, n_H, n_W, C_in = x.shape
    f_h, f_w, Q, _ = w.shape
    C_out, K = Q * G, C_in // G
    x = x.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    # the uncropped output: (n - 1) * s + d * (f - 1) + 1 + output_padding per axis
    full = np.zeros((m, o_h + 2 * p_h, o_w + 2 * p_w, C_out), dtype=dtype)
    for i in range(m):
        for ih in range(n_H):
            for iw in range(n_W):
                for kh in range(f_h):
                    for kw in range(f_w):
                        for g in range(G):
                            full[i, ih * s_h + kh * d_h, iw * s_w + kw * d_w,
                                 g * Q:(g + 1) * Q] += (w[kh, kw, :, g * K:(g + 1) * K]
                                                        @ x[i, ih, iw, g * K:(g + 1) * K])
    y = full[:, p_h:p_h + o_h, p_w:p_w + o_w, :].copy()
    if b is not None:
        y += b.reshape(C_out).astype(dtype, copy=False)
    return y


def conv_transpose2d_backward(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike, *,
                              stride: IntPair = 1, padding: IntPair = 0,
                              output_padding: IntPair = 0, dilation: IntPair = 1,
                              groups: Int = 1) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Gradients of :func:`conv_transpose2d` with respect to ``x``, ``w`` and ``b``.

    Parameters
    ----------
    dz : array_like, shape of the forward's output (m, o_H, o_W, C_out)
    x : array_like, shape (m, n_H, n_W, C_in)
    w : array_like, shape (f_h, f_w, C_out / groups, C_in)
    stride, padding, output_padding, dilation, groups
        As given to :func:`conv_transpose2d`.

    Returns
    -------
    dx, dw, db : ndarrays of the shapes of ``x``, ``w`` and ``(C_out,)``

    Raises
    ------
    ValueError
        As :func:`conv_transpose2d`, or if ``dz`` does not have the forward
        output shape.

    Notes
    -----
    The same scatter as the forward, read backwards: each term
    ``yfull[i, h s_h + k_h d_h, w s_w + k_w d_w, c_o] += w[k_h, k_w, c_o, c_i] x[i, h, w, c_i]``
    gives ``dx[i, h, w, c_i] += w[k_h, k_w, c_o, c_i] dzfull[...]`` and
    ``dw[k_h, k_w, c_o, c_i] += x[i, h, w, c_i] dzfull[...]``, with ``dzfull``
    ``dz`` placed at the crop and zero elsewhere.

    Examples
    --------
    >>> dx, dw, db = conv_transpose2d_backward(np.ones((1, 4, 4, 1)), np.ones((1, 2, 2, 1)),
    ...                                        np.ones((2, 2, 1, 1)), stride=2)
    >>> dx[0, :, :, 0], dw[:, :, 0, 0], db
    (array([[4., 4.],
           [4., 4.]]), array([[4., 4.],
           [4., 4.]]), array([16.]))
    """
    dz = _as_4d(dz, "dz")
    x = _as_4d(x, "x")
    w = _as_4d(w, "w")
    dtype = _dtype(dz, x, w)
    (s_h, s_w), (p_h, p_w), _, (d_h, d_w), G, (o_h, o_w) = _transpose_geometry(
        x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    m, n_H, n_W, C_in = x.shape
    f_h, f_w, Q, _ = w.shape
    C_out, K = Q * G, C_in // G
    _check_grad_shape(dz, (m, o_h, o_w, C_out), "dz")
    x = x.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    # the uncropped output: (n - 1) * s + d * (f - 1) + 1 + output_padding per axis
    full = np.zeros((m, o_h + 2 * p_h, o_w + 2 * p_w, C_out), dtype=dtype)
    full[:, p_h:p_h + o_h, p_w:p_w + o_w, :] = dz
    dx = np.zeros(x.shape, dtype=dtype)
    dw = np.zeros(w.shape, dtype=dtype)
    for i in range(m):
        for ih in range(n_H):
            for iw in range(n_W):
                for kh in range(f_h):
                    for kw in range(f_w):
                        g_out = full[i, ih * s_h + kh * d_h, iw * s_w + kw * d_w]
                        for g in range(G):
                            ci, co = slice(g * K, (g + 1) * K), slice(g * Q, (g + 1) * Q)
                            dx[i, ih, iw, ci] += g_out[co] @ w[kh, kw, :, ci]
                            dw[kh, kw, :, ci] += np.outer(g_out[co], x[i, ih, iw, ci])
    db = dz.astype(dtype, copy=False).sum(axis=(0, 1, 2))
    return dx, dw, db


# --------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------

def max_pool2d(x: npt.ArrayLike, pool_size: IntPair, *, stride: IntPair | None = None,
               padding: Padding = 0, return_indices: bool = False, dilation: IntPair = 1,
               ceil_mode: bool = False) -> Any:
    r"""2-D max pooling of NHWC input, each channel separately.

    Parameters
    ----------
    x : array_like, shape (m, n_H_prev, n_W_prev, n_C)
        Input activations.
    pool_size : int or (int, int)
        Window size ``(f_h, f_w)``.
    stride : int or (int, int), optional
        Step of the window; ``None`` (default) means ``pool_size``.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        As in :func:`conv2d`; padded positions count as ``-inf``.
    return_indices : bool, default False
        Also return each maximum's position in its window.
    dilation : int or (int, int), default 1
        Step ``(d_h, d_w)`` between the window's taps; the window spans
        ``d * (f - 1) + 1`` input positions (also for ``"same"``).
    ceil_mode : bool, default False
        PyTorch's rounding up of the output size: per axis
        ``ceil((n + p_begin + p_end - d (f - 1) - 1) / s) + 1``, less one if
        that last window would start at or after ``n + p_begin``.

    Returns
    -------
    p : ndarray, shape (m, n_H, n_W, n_C)
        Window maxima, with the result type of ``x`` (float64 for integer
        input). A window holding a NaN gives NaN; a window lying entirely in
        the padding gives ``-inf``.
    indices : ndarray, shape (m, n_H, n_W, n_C)
        Only with ``return_indices``: ``kh * f_w + kw`` of the maximum
        ``xpad[i, h s_h + k_h, w s_w + k_w, c]`` counted over the full window,
        padding included; -1 for a window wholly in the padding. int32.

    Raises
    ------
    ValueError
        If pool_size or stride < 1, padding < 0, or the window is larger than
        the padded input.

    Notes
    -----
    .. math::

        p[i, h, w, c] = \max_{k_h, k_w} xpad[i, h s_h + d_h k_h, w s_w + d_w k_w, c]

    with ``xpad`` padded by ``-inf``, so padding is never selected over a real
    value.

    Examples
    --------
    >>> x = np.array([1.0, 3.0, 2.0, 9.0, 5.0, 4.0]).reshape(1, 1, 6, 1)
    >>> max_pool2d(x, (1, 2))[0, 0, :, 0]
    array([3., 9., 5.])
    """
    x = _as_4d(x, "x")
    dtype = _dtype(x)
    x = x.astype(dtype, copy=False)
    geo: dict[str, Any] = dict(dilation=dilation, ceil_mode=ceil_mode)
    (_, f_w), (s_h, s_w), ((top, _), (left, _)), _ = _pool_geometry(
        x.shape, pool_size, stride, padding, **geo)
    d_h, d_w = _pair(dilation, "dilation")
    p = np.empty(_pool_output_shape(x.shape, pool_size, stride, padding, **geo), dtype=dtype)
    indices = np.full(p.shape, -1, dtype=np.int32)
    for i, oh, ow, rows, cols in _pool_windows(x.shape, pool_size, stride, padding, **geo):
        a_slice = x[i, rows, cols, :]
        n_cols = a_slice.shape[1]
        a_slice = a_slice.reshape(-1, x.shape[3])
        if a_slice.shape[0] == 0:
            p[i, oh, ow, :] = -np.inf
        else:
            k = np.argmax(a_slice, axis=0)
            p[i, oh, ow, :] = a_slice[k, np.arange(x.shape[3])]
            # from the clipped window back to the full (padded) window's taps
            kh = (rows.start - (oh * s_h - top)) // d_h + k // n_cols
            kw = (cols.start - (ow * s_w - left)) // d_w + k % n_cols
            indices[i, oh, ow, :] = kh * f_w + kw
    return (p, indices) if return_indices else p


def max_pool2d_backward(dp: npt.ArrayLike, x: npt.ArrayLike, pool_size: IntPair, *,
                        stride: IntPair | None = None, padding: Padding = 0,
                        indices: npt.ArrayLike | None = None, dilation: IntPair = 1,
                        ceil_mode: bool = False) -> FloatArray:
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    dp : array_like, shape (m, n_H, n_W, n_C)
        Gradient of the loss with respect to the pooled output.
    x : array_like, shape (m, n_H_prev, n_W_prev, n_C)
        The forward input.
    pool_size, stride, padding, dilation, ceil_mode
        As in :func:`max_pool2d`.
    indices : array_like of int, shape (m, n_H, n_W, n_C), optional
        From ``max_pool2d(..., return_indices=True)``: route each window's
        gradient to the element named, not to the maximum found in ``x``;
        a value naming no input element of the window routes nowhere.

    Returns
    -------
    dx : ndarray, shape (m, n_H_prev, n_W_prev, n_C)
        With the result type of ``dp`` and ``x`` (float64 for integer inputs).

    Raises
    ------
    ValueError
        As :func:`max_pool2d`, or if ``dp`` does not have the forward output
        shape.

    Notes
    -----
    Each ``dp[i, h, w, c]`` goes to exactly one input element: the first
    maximum, in row-major window order, among the window's real (non-padding)
    elements, or the first NaN if the window holds one (``np.argmax`` over the
    flattened window), as in PyTorch and TensorFlow. A window lying entirely
    in the padding passes no gradient. Unlike the notes' mask
    ``A == max(A)``, tied maxima do not all receive the gradient.

    Examples
    --------
    >>> x = np.zeros((1, 2, 2, 1))
    >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)[0, :, :, 0]
    array([[1., 0.],
           [0., 0.]])
    """
    dp = _as_4d(dp, "dp")
    x = _as_4d(x, "x")
    dtype = _dtype(dp, x)
    geo: dict[str, Any] = dict(dilation=dilation, ceil_mode=ceil_mode)
    _check_grad_shape(dp, _pool_output_shape(x.shape, pool_size, stride, padding, **geo), "dp")
    dp = dp.astype(dtype, copy=False)
    n_C = x.shape[3]
    channels = np.arange(n_C)
    d_h, d_w = _pair(dilation, "dilation")
    dx = np.zeros(x.shape, dtype=dtype)
    if indices is not None:
        return _route_by_indices(dp, np.asarray(indices), dx, pool_size, stride, padding, **geo)
    for i, oh, ow, rows, cols in _pool_windows(x.shape, pool_size, stride, padding, **geo):
        a_slice = x[i, rows, cols, :]
        n_rows, n_cols = a_slice.shape[:2]
        if n_rows * n_cols == 0:
            continue
        k = np.argmax(a_slice.reshape(-1, n_C), axis=0)
        # Accumulate: with overlapping windows one element can be the max of several.
        dx[i, rows.start + d_h * (k // n_cols), cols.start + d_w * (k % n_cols),
           channels] += dp[i, oh, ow, :]
    return dx


def _route_by_indices(dp: FloatArray, indices: npt.NDArray[Any], dx: FloatArray,
                      pool_size: object, stride: object, padding: object,
                      dilation: object = 1, ceil_mode: bool = False) -> FloatArray:
    # max_pool2d_backward given the forward's indices (kh * f_w + kw per window).
    geo: dict[str, Any] = dict(dilation=dilation, ceil_mode=ceil_mode)
    (f_h, f_w), (s_h, s_w), ((top, _), (left, _)), _ = _pool_geometry(
        dx.shape, pool_size, stride, padding, **geo)
    d_h, d_w = _pair(dilation, "dilation")
    _check_grad_shape(indices, dp.shape, "indices")
    _, n_H_prev, n_W_prev, n_C = dx.shape
    channels = np.arange(n_C)
    for i, oh, ow, _rows, _cols in _pool_windows(dx.shape, pool_size, stride, padding, **geo):
        k = indices[i, oh, ow, :].astype(np.int64)
        ih = oh * s_h - top + d_h * (k // f_w)
        iw = ow * s_w - left + d_w * (k % f_w)
        real = (k >= 0) & (k < f_h * f_w) & (ih >= 0) & (ih < n_H_prev) & (iw >= 0) & (iw < n_W_prev)
        dx[i, ih[real], iw[real], channels[real]] += dp[i, oh, ow, real]
    return dx


# --------------------------------------------------------------------------
# Average pooling
# --------------------------------------------------------------------------

def avg_pool2d(x: npt.ArrayLike, pool_size: IntPair, *, stride: IntPair | None = None,
               padding: Padding = 0, count_include_pad: bool = True,
               ceil_mode: bool = False) -> FloatArray:
    r"""2-D average pooling of NHWC input, each channel separately.

    Parameters
    ----------
    x : array_like, shape (m, n_H_prev, n_W_prev, n_C)
        Input activations.
    pool_size : int or (int, int)
        Window size ``(f_h, f_w)``.
    stride : int or (int, int), optional
        Step of the window; ``None`` (default) means ``pool_size``.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        As in :func:`conv2d`; padded positions count as zero.
    count_include_pad : bool, default True
        Divide by ``f_h * f_w`` (True) or by the number of real, non-padding
        elements in the window (False). With ``ceil_mode``, True divides a
        last window that runs past the padded input by its part inside it
        (PyTorch's rule).
    ceil_mode : bool, default False
        As in :func:`max_pool2d`.

    Returns
    -------
    p : ndarray, shape (m, n_H, n_W, n_C)
        Window means, with the result type of ``x`` (float64 for integer
        input). With ``count_include_pad=False`` a window lying entirely in
        the padding gives 0.

    Raises
    ------
    ValueError
        If pool_size or stride < 1, padding < 0, or the window is larger than
        the padded input.

    Notes
    -----
    .. math::

        p[i, h, w, c] = \frac{1}{N_{hw}} \sum_{k_h, k_w}
            xpad[i, h s_h + k_h, w s_w + k_w, c]

    with ``xpad`` zero-padded and ``N_hw = f_h f_w`` or the number of real
    elements in window ``(h, w)``.

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4, 1)
    >>> avg_pool2d(x, (1, 2), padding=(0, 1))[0, 0, :, 0]
    array([0.5, 2.5, 2. ])
    >>> avg_pool2d(x, (1, 2), padding=(0, 1), count_include_pad=False)[0, 0, :, 0]
    array([1. , 2.5, 4. ])
    """
    x = _as_4d(x, "x")
    dtype = _dtype(x)
    x = x.astype(dtype, copy=False)
    p = np.zeros(_pool_output_shape(x.shape, pool_size, stride, padding, ceil_mode=ceil_mode),
                 dtype=dtype)
    for i, oh, ow, rows, cols in _pool_windows(x.shape, pool_size, stride, padding,
                                               ceil_mode=ceil_mode):
        a_slice = x[i, rows, cols, :]
        if count_include_pad:
            count = _padded_window_size(x.shape, pool_size, stride, padding, oh, ow)
        else:
            count = a_slice.shape[0] * a_slice.shape[1]
        if count > 0:
            p[i, oh, ow, :] = a_slice.sum(axis=(0, 1)) / count
    return p


def avg_pool2d_backward(dp: npt.ArrayLike, x_shape: Sequence[int], pool_size: IntPair, *,
                        stride: IntPair | None = None, padding: Padding = 0,
                        count_include_pad: bool = True, ceil_mode: bool = False) -> FloatArray:
    r"""Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    dp : array_like, shape (m, n_H, n_W, n_C)
        Gradient of the loss with respect to the pooled output.
    x_shape : tuple of 4 ints
        Shape ``(m, n_H_prev, n_W_prev, n_C)`` of the forward input (its
        values are not needed).
    pool_size, stride, padding, count_include_pad, ceil_mode
        As in :func:`avg_pool2d`.

    Returns
    -------
    dx : ndarray, shape x_shape
        With the result type of ``dp`` (float64 for integer input).

    Raises
    ------
    ValueError
        As :func:`avg_pool2d`, or if ``x_shape`` is not 4 ints or ``dp`` does
        not have the forward output shape.

    Notes
    -----
    Each window spreads its gradient evenly over its real elements:

    .. math::

        dx[i, h s_h + k_h - top, w s_w + k_w - left, c] \mathrel{+}=
            \frac{dp[i, h, w, c]}{N_{hw}}

    for every ``(k_h, k_w)`` that lands on a real element; the share of the
    padded positions is dropped.

    Examples
    --------
    >>> dp = np.ones((1, 1, 3, 1))
    >>> avg_pool2d_backward(dp, (1, 1, 4, 1), (1, 2), padding=(0, 1))[0, 0, :, 0]
    array([0.5, 0.5, 0.5, 0.5])
    """
    dp = _as_4d(dp, "dp")
    x_shape = tuple(_int(n, "x_shape") for n in x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (m, n_H_prev, n_W_prev, n_C), got {x_shape}")
    dtype = _dtype(dp)
    _check_grad_shape(dp, _pool_output_shape(x_shape, pool_size, stride, padding,
                                             ceil_mode=ceil_mode), "dp")
    dp = dp.astype(dtype, copy=False)
    dx = np.zeros(x_shape, dtype=dtype)
    for i, oh, ow, rows, cols in _pool_windows(x_shape, pool_size, stride, padding,
                                               ceil_mode=ceil_mode):
        n_rows = rows.stop - rows.start
        n_cols = cols.stop - cols.start
        if count_include_pad:
            count = _padded_window_size(x_shape, pool_size, stride, padding, oh, ow)
        else:
            count = n_rows * n_cols
        if n_rows > 0 and n_cols > 0:
            dx[i, rows, cols, :] += dp[i, oh, ow, :] / count
    return dx


# --------------------------------------------------------------------------
# Pooling helpers
# --------------------------------------------------------------------------

def _pool_geometry(x_shape: tuple[int, ...], pool_size: object, stride: object,
                   padding: object, dilation: object = 1, ceil_mode: bool = False,
                   ) -> tuple[tuple[int, int], tuple[int, int], Pads, tuple[int, int]]:
    f_h, f_w = _pair(pool_size, "pool_size")
    s_h, s_w = _pair((f_h, f_w) if stride is None else stride, "stride")
    d_h, d_w = _pair(dilation, "dilation")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
    _, n_H, n_W, _ = x_shape
    # A dilated window spans d * (f - 1) + 1 positions: that is its size for
    # "same" and for the output size.
    e_h, e_w = d_h * (f_h - 1) + 1, d_w * (f_w - 1) + 1
    pads = _padding(padding, n_H, n_W, e_h, e_w, s_h, s_w)
    out = (_pool_out_size(n_H, e_h, s_h, pads[0], bool(ceil_mode), "height"),
           _pool_out_size(n_W, e_w, s_w, pads[1], bool(ceil_mode), "width"))
    return (f_h, f_w), (s_h, s_w), pads, out


def _pool_out_size(n: int, extent: int, s: int, pads: tuple[int, int], ceil_mode: bool,
                   axis: str) -> int:
    begin, end = pads
    if ceil_mode:
        # PyTorch: round up, but the last window must start inside the input
        # or the padding before it; it may run past the padding after.
        out = -(-(n + begin + end - extent) // s) + 1
        if (out - 1) * s >= n + begin:
            out -= 1
        if out < 1:
            raise ValueError(f"ceil_mode leaves no window along the {axis}")
        return out
    if n + begin + end < extent:
        raise ValueError(
            f"the padded input {axis} ({n} + {begin} + {end}) is smaller than the window "
            f"({extent})")
    return (n + begin + end - extent) // s + 1


def _pool_output_shape(x_shape: tuple[int, ...], pool_size: object, stride: object,
                       padding: object, dilation: object = 1,
                       ceil_mode: bool = False) -> tuple[int, int, int, int]:
    _, _, _, (n_H, n_W) = _pool_geometry(x_shape, pool_size, stride, padding, dilation,
                                         ceil_mode)
    return (x_shape[0], n_H, n_W, x_shape[3])


def _padded_window_size(x_shape: tuple[int, ...], pool_size: object, stride: object,
                        padding: object, oh: int, ow: int) -> int:
    """Positions of window ``(oh, ow)`` inside the padded input (PyTorch's divisor).

    ``f_h * f_w`` unless the window, with ``ceil_mode``, runs past the padding
    after the input; then only the part inside counts.
    """
    (f_h, f_w), (s_h, s_w), ((top, bottom), (left, right)), _ = _pool_geometry(
        x_shape, pool_size, stride, padding, ceil_mode=True)
    _, n_H_prev, n_W_prev, _ = x_shape
    rows = sum(1 for k in range(f_h) if oh * s_h + k < top + n_H_prev + bottom)
    cols = sum(1 for k in range(f_w) if ow * s_w + k < left + n_W_prev + right)
    return rows * cols


def _taps(start: int, f: int, d: int, n: int) -> slice:
    """The window's taps ``start + k d`` (``k < f``) inside ``[0, n)``, as a slice."""
    inside = [start + k * d for k in range(f) if 0 <= start + k * d < n]
    if not inside:
        return slice(0, 0, d)
    return slice(inside[0], inside[-1] + 1, d)


def _pool_windows(x_shape: tuple[int, ...], pool_size: object, stride: object, padding: object,
                  dilation: object = 1, ceil_mode: bool = False,
                  ) -> Iterator[tuple[int, int, int, slice, slice]]:
    """Yield ``(i, oh, ow, rows, cols)`` for every output position, in order.

    ``rows`` and ``cols`` slice the unpadded input (step: the dilation): the
    window's taps that land on real elements, so padding never appears in
    it. They are empty (``start == stop``) when the window lies entirely in
    the padding.
    """
    (f_h, f_w), (s_h, s_w), ((top, _), (left, _)), (n_H, n_W) = _pool_geometry(
        x_shape, pool_size, stride, padding, dilation, ceil_mode)
    d_h, d_w = _pair(dilation, "dilation")
    m, n_H_prev, n_W_prev, _ = x_shape
    for i in range(m):
        for oh in range(n_H):
            rows = _taps(oh * s_h - top, f_h, d_h, n_H_prev)
            for ow in range(n_W):
                cols = _taps(ow * s_w - left, f_w, d_w, n_W_prev)
                yield i, oh, ow, rows, cols


# --------------------------------------------------------------------------
# Global pooling
# --------------------------------------------------------------------------

def _nhwc(x: npt.NDArray[Any], layout: str) -> npt.NDArray[Any]:
    """``x`` viewed as NHWC (a transposed view for NCHW)."""
    if layout == "NHWC":
        return x
    if layout == "NCHW":
        return x.transpose(0, 2, 3, 1)
    raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")


def _keep(p: FloatArray, keepdims: bool, layout: str) -> FloatArray:
    m, n_C = p.shape
    if not keepdims:
        return p
    return p.reshape((m, 1, 1, n_C) if layout == "NHWC" else (m, n_C, 1, 1))


def global_avg_pool2d(x: npt.ArrayLike, *, keepdims: bool = False,
                      layout: str = "NHWC") -> FloatArray:
    r"""The mean of every channel's plane.

    Parameters
    ----------
    x : array_like, shape (m, n_H, n_W, n_C), or (m, n_C, n_H, n_W) for "NCHW"
    keepdims : bool, default False
        Return ``(m, 1, 1, n_C)`` (``(m, n_C, 1, 1)`` for "NCHW") instead of
        ``(m, n_C)``.
    layout : {"NHWC", "NCHW"}

    Returns
    -------
    p : ndarray, shape (m, n_C)

    Raises
    ------
    ValueError
        ``x`` not 4-D or an unknown ``layout``.
    ZeroDivisionError
        A plane without pixels (``n_H`` or ``n_W`` is 0).

    Notes
    -----
    .. math::

        p[i, c] = \frac{1}{n_H n_W} \sum_{h, w} x[i, h, w, c]

    Examples
    --------
    >>> global_avg_pool2d(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[3., 4.]])
    """
    x = _nhwc(_as_4d(x, "x"), layout)
    dtype = _dtype(x)
    m, n_H, n_W, n_C = x.shape
    p = np.zeros((m, n_C), dtype=dtype)
    for i in range(m):
        for c in range(n_C):
            total = 0.0
            for h in range(n_H):
                for w in range(n_W):
                    total += float(x[i, h, w, c])
            p[i, c] = total / (n_H * n_W)
    return _keep(p, keepdims, layout)


def global_avg_pool2d_backward(dp: npt.ArrayLike, x_shape: Sequence[int], *,
                               layout: str = "NHWC") -> FloatArray:
    """Gradient of :func:`global_avg_pool2d`: ``dp[i, c] / (n_H n_W)`` on every pixel.

    Parameters
    ----------
    dp : array_like, shape (m, n_C) or the keepdims shape
    x_shape : tuple of 4 ints, in ``layout``
    layout : {"NHWC", "NCHW"}

    Returns
    -------
    dx : ndarray, shape x_shape

    Raises
    ------
    ValueError
        ``dp`` without ``m * C`` elements for the forward input, or an unknown
        ``layout``.

    Examples
    --------
    >>> global_avg_pool2d_backward(np.ones((1, 1)), (1, 2, 2, 1))[0, :, :, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    dp = np.asarray(dp)
    dtype = _dtype(dp)
    x_shape = tuple(_int(n, "x_shape") for n in x_shape)
    dx = np.zeros(x_shape, dtype=dtype)
    view = _nhwc(dx, layout)
    m, n_H, n_W, n_C = view.shape
    dp = dp.reshape(m, n_C)
    for i in range(m):
        for c in range(n_C):
            view[i, :, :, c] = dp[i, c] / (n_H * n_W)
    return dx


def _first_max(plane: npt.NDArray[Any]) -> tuple[int, int]:
    """``(h, w)`` of the plane's first maximum in row-major order, or of its first NaN."""
    n_W = plane.shape[1]
    k = int(np.argmax(plane.reshape(-1)))  # argmax: first maximum, or first NaN
    return k // n_W, k % n_W


def global_max_pool2d(x: npt.ArrayLike, *, keepdims: bool = False,
                      layout: str = "NHWC") -> FloatArray:
    """The maximum of every channel's plane (NaN if the plane holds one).

    Parameters
    ----------
    x, keepdims, layout
        As in :func:`global_avg_pool2d`.

    Returns
    -------
    p : ndarray, shape (m, n_C)

    Raises
    ------
    ValueError
        ``x`` not 4-D, a plane without pixels, or an unknown ``layout``.

    Examples
    --------
    >>> global_max_pool2d(np.array([1.0, 7.0, 3.0, 2.0]).reshape(1, 2, 2, 1))
    array([[7.]])
    """
    x = _nhwc(_as_4d(x, "x"), layout)
    dtype = _dtype(x)
    m, _, _, n_C = x.shape
    p = np.zeros((m, n_C), dtype=dtype)
    for i in range(m):
        for c in range(n_C):
            h, w = _first_max(x[i, :, :, c])
            p[i, c] = x[i, h, w, c]
    return _keep(p, keepdims, layout)


def global_max_pool2d_backward(dp: npt.ArrayLike, x: npt.ArrayLike, *,
                               layout: str = "NHWC") -> FloatArray:
    """Gradient of :func:`global_max_pool2d`: each plane's ``dp`` to its first maximum.

    Parameters
    ----------
    dp : array_like, shape (m, n_C) or the keepdims shape
    x : array_like, the forward input
    layout : {"NHWC", "NCHW"}

    Returns
    -------
    dx : ndarray, shape of x

    Raises
    ------
    ValueError
        ``dp`` without ``m * C`` elements for the forward input, or an unknown
        ``layout``.

    Examples
    --------
    >>> x = np.array([1.0, 7.0, 7.0, 2.0]).reshape(1, 2, 2, 1)
    >>> global_max_pool2d_backward(np.ones((1, 1)), x)[0, :, :, 0]
    array([[0., 1.],
           [0., 0.]])
    """
    dp = np.asarray(dp)
    x_in = _as_4d(x, "x")
    dtype = _dtype(dp, x_in)
    dx = np.zeros(x_in.shape, dtype=dtype)
    x, view = _nhwc(x_in, layout), _nhwc(dx, layout)
    m, _, _, n_C = x.shape
    dp = dp.reshape(m, n_C)
    for i in range(m):
        for c in range(n_C):
            h, w = _first_max(x[i, :, :, c])
            view[i, h, w, c] = dp[i, c]
    return dx
