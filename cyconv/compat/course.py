"""The Coursera course's functions, by the course's names, on top of cyconv's kernels.

``from cyconv.compat import *`` imports them (this module is re-exported by
:mod:`cyconv.compat`; Stanford CS231n's functions are in
:mod:`cyconv.compat.cs231n`).

Drop-in replacements for the functions of the Coursera assignment
"Convolutional Neural Networks: Step by Step" (Deep Learning Specialization,
course 4, week 1): same names, same arguments (``hparameters`` dicts, the
``(1, 1, 1, n_C)`` bias, the ``cache`` tuples) and the same return types, so
notebook code that calls them runs unchanged, only faster. The arithmetic is
done by :func:`cyconv.conv2d`, :func:`cyconv.conv2d_backward`,
:func:`cyconv.max_pool2d`, :func:`cyconv.avg_pool2d` and their backward
passes; this module only translates arguments and results.

Shapes follow the course: activations ``(m, n_H, n_W, n_C)``, filters
``(f, f, n_C_prev, n_C)``, biases ``(1, 1, 1, n_C)``. float64 input gives
float64 output, as in the course; float32 input stays float32 and integer
input computes in float64.

Behaviour note
--------------
Max-pool backward follows the course's mask ``x == np.max(x)``: when a window
holds its maximum more than once (all zeros after a ReLU, say) *every* tied
element receives the window's full gradient. This is deliberate, so that
results match the course's exactly; it differs from
:func:`cyconv.max_pool2d_backward`, which gives the gradient to the first
maximum only, as PyTorch and TensorFlow do.

Examples
--------
>>> import numpy as np
>>> from cyconv.compat.course import conv_forward, conv_backward
>>> A_prev = np.ones((1, 3, 3, 1))
>>> W, b = np.ones((2, 2, 1, 1)), np.zeros((1, 1, 1, 1))
>>> Z, cache = conv_forward(A_prev, W, b, {"stride": 1, "pad": 0})
>>> Z[0, :, :, 0]
array([[4., 4.],
       [4., 4.]])
>>> dA_prev, dW, db = conv_backward(np.ones_like(Z), cache)
>>> dA_prev[0, :, :, 0]
array([[1., 2., 1.],
       [2., 4., 2.],
       [1., 2., 1.]])
>>> db.shape
(1, 1, 1, 1)
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cyconv._args import FloatArray, Int
from cyconv.conv import conv2d, conv2d_backward
from cyconv.pool import _max_pool2d_backward, avg_pool2d, avg_pool2d_backward, max_pool2d

__all__ = [
    "conv_backward",
    "conv_forward",
    "conv_single_step",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
    "pool_forward",
    "zero_pad",
]

_MODES = ("max", "average")

HParameters = Mapping[str, Int]
"""The course's ``hparameters`` dicts: ``{"stride": s, "pad": p}`` or ``{"f": f, "stride": s}``."""
ConvCache = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, HParameters]
"""``(A_prev, W, b, hparameters)`` as passed to :func:`conv_forward`."""
PoolCache = tuple[npt.ArrayLike, HParameters]
"""``(A_prev, hparameters)`` as passed to :func:`pool_forward`."""


def _int_params(param: object, name: str, keys: tuple[str, ...], op: str) -> list[int]:
    # The courses' parameter dicts (this course's hparameters, CS231n's
    # conv_param and pool_param): each key present, each value a plain
    # integer, "pad" >= 0 and the others >= 1.
    if not isinstance(param, Mapping):
        raise TypeError(f"{op}: {name} must be a dict with keys {list(keys)}, "
                        f"got {type(param).__name__}")
    values = []
    for key in keys:
        if key not in param:
            raise KeyError(f"{op}: {name} has no {key!r}; it needs the keys {list(keys)}, "
                           f"got {sorted(map(str, param))}")
        value = param[key]
        if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{op}: {name}[{key!r}] must be an int, got {value!r}")
        minimum = 0 if key == "pad" else 1
        if value < minimum:
            raise ValueError(f"{op}: {name}[{key!r}] must be >= {minimum}, got {value!r}")
        values.append(int(value))
    return values


def _hparams(hparameters: object, keys: tuple[str, ...], op: str) -> list[int]:
    return _int_params(hparameters, "hparameters", keys, op)


def _check_mode(mode: object, op: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be 'max' or 'average', got mode={mode!r}")


def _unpack(cache: object, names: tuple[str, ...], op: str) -> Sequence[Any]:
    if not isinstance(cache, (tuple, list)) or len(cache) != len(names):
        raise ValueError(f"{op}: cache must be the tuple ({', '.join(names)}) returned by the "
                         f"forward function, got {type(cache).__name__}"
                         + (f" of length {len(cache)}" if isinstance(cache, (tuple, list)) else ""))
    return cache


def zero_pad(X: npt.ArrayLike, pad: int) -> npt.NDArray[Any]:
    """Pad every image of a batch with zeros along height and width.

    Parameters
    ----------
    X : array_like, shape (m, n_H, n_W, n_C)
        Batch of images; not modified.
    pad : int
        Zeros added on each side of axes 1 and 2.

    Returns
    -------
    X_pad : ndarray, shape (m, n_H + 2 * pad, n_W + 2 * pad, n_C)
        Same dtype as ``X``.

    Raises
    ------
    ValueError
        From NumPy, as the course's version: ``X`` not 4-D or ``pad`` negative.

    Examples
    --------
    >>> import numpy as np
    >>> zero_pad(np.ones((1, 1, 2, 1)), 1)[0, :, :, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 1., 0.],
           [0., 0., 0., 0.]])
    """
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant",
                  constant_values=(0, 0))


def conv_single_step(a_slice_prev: npt.ArrayLike, W: npt.ArrayLike,
                     b: npt.ArrayLike) -> np.floating[Any]:
    """Apply one filter to one slice of the input: one output value.

    Parameters
    ----------
    a_slice_prev : array_like, shape (f, f, n_C_prev)
        Slice of the (padded) input.
    W : array_like, shape (f, f, n_C_prev)
        One filter.
    b : array_like, shape (1, 1, 1)
        Its bias (any single-element array or a scalar).

    Returns
    -------
    Z : numpy.float64
        ``sum(a_slice_prev * W) + b``, a NumPy scalar (``numpy.float32`` if
        every input is float32).

    Raises
    ------
    ValueError
        If ``a_slice_prev`` and ``W`` are not 3-D arrays of one shape, or ``b``
        holds more than one value.

    Examples
    --------
    >>> import numpy as np
    >>> Z = conv_single_step(np.ones((2, 2, 3)), np.full((2, 2, 3), 0.5), np.array([[[1.0]]]))
    >>> type(Z).__name__, float(Z)
    ('float64', 7.0)
    """
    a_slice_prev = np.asarray(a_slice_prev)
    W = np.asarray(W)
    b = np.asarray(b)
    if a_slice_prev.ndim != 3 or a_slice_prev.shape != W.shape:
        raise ValueError("conv_single_step: a_slice_prev and W must both have shape "
                         f"(f, f, n_C_prev), got {a_slice_prev.shape} and {W.shape}")
    if b.size != 1:
        raise ValueError(f"conv_single_step: b must hold one value, shape (1, 1, 1), "
                         f"got shape {b.shape}")
    # One window, one filter: the whole slice is a 1 x 1 output of conv2d.
    z = conv2d(a_slice_prev[np.newaxis], W[..., np.newaxis], b.reshape(1), num_threads=1)
    return z[0, 0, 0, 0]  # type: ignore[no-any-return]  # NumPy types scalar indexing as Any


def conv_forward(A_prev: npt.ArrayLike, W: npt.ArrayLike, b: npt.ArrayLike,
                 hparameters: HParameters) -> tuple[FloatArray, ConvCache]:
    """Forward pass of a convolution layer.

    Parameters
    ----------
    A_prev : array_like, shape (m, n_H_prev, n_W_prev, n_C_prev)
        Activations of the previous layer; not modified.
    W : array_like, shape (f, f, n_C_prev, n_C)
        Filters.
    b : array_like, shape (1, 1, 1, n_C)
        Biases (shape ``(n_C,)`` is accepted too).
    hparameters : dict
        ``{"stride": int >= 1, "pad": int >= 0}``.

    Returns
    -------
    Z : ndarray, shape (m, n_H, n_W, n_C)
        ``n_H = (n_H_prev + 2 * pad - f) // stride + 1``, likewise ``n_W``.
    cache : tuple
        ``(A_prev, W, b, hparameters)``: the very objects passed in, for
        :func:`conv_backward`.

    Raises
    ------
    KeyError
        If ``hparameters`` lacks ``"stride"`` or ``"pad"`` (the message names it).
    TypeError, ValueError
        For non-integer or out-of-range hyperparameters, and as
        :func:`cyconv.conv2d` for mismatched shapes or a filter larger than
        the padded input.

    Notes
    -----
    ``Z[i, h, w, c] = sum(A_prev_pad[i, h*s:h*s+f, w*s:w*s+f, :] * W[..., c]) + b[..., c]``.

    Examples
    --------
    >>> import numpy as np
    >>> A_prev, W, b = np.ones((2, 5, 7, 4)), np.ones((3, 3, 4, 8)), np.zeros((1, 1, 1, 8))
    >>> Z, cache = conv_forward(A_prev, W, b, {"pad": 1, "stride": 2})
    >>> Z.shape, cache[0] is A_prev
    ((2, 3, 4, 8), True)
    """
    stride, pad = _hparams(hparameters, ("stride", "pad"), "conv_forward")
    Z = conv2d(A_prev, W, b, stride=stride, padding=pad)
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ: npt.ArrayLike,
                  cache: ConvCache) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Backward pass of a convolution layer.

    Parameters
    ----------
    dZ : array_like, shape (m, n_H, n_W, n_C)
        Gradient of the cost with respect to ``Z``.
    cache : tuple
        ``(A_prev, W, b, hparameters)`` as returned by :func:`conv_forward`.

    Returns
    -------
    dA_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev)
        Gradient with respect to ``A_prev``.
    dW : ndarray, shape (f, f, n_C_prev, n_C)
        Gradient with respect to ``W``.
    db : ndarray, shape (1, 1, 1, n_C)
        Gradient with respect to ``b``.

    Raises
    ------
    ValueError
        If ``cache`` is not a 4-tuple or ``dZ`` does not have ``Z``'s shape.
    KeyError, TypeError
        As :func:`conv_forward`, for the cached ``hparameters``.

    Notes
    -----
    With ``s`` the stride, over every ``i, h, w, c``:
    ``dA_prev_pad[i, h*s:h*s+f, w*s:w*s+f, :] += W[..., c] * dZ[i, h, w, c]``,
    ``dW[..., c] += A_prev_pad[i, h*s:h*s+f, w*s:w*s+f, :] * dZ[i, h, w, c]``,
    ``db[..., c] += dZ[i, h, w, c]``; ``dA_prev`` is ``dA_prev_pad`` without
    its padding (``pad == 0`` works too).

    Examples
    --------
    >>> import numpy as np
    >>> A_prev, W, b = np.ones((1, 4, 4, 1)), np.ones((2, 2, 1, 3)), np.zeros((1, 1, 1, 3))
    >>> Z, cache = conv_forward(A_prev, W, b, {"pad": 0, "stride": 2})
    >>> dA_prev, dW, db = conv_backward(np.ones_like(Z), cache)
    >>> dA_prev.shape, dW.shape, db.ravel()
    ((1, 4, 4, 1), (2, 2, 1, 3), array([4., 4., 4.]))
    """
    A_prev, W, _, hparameters = _unpack(cache, ("A_prev", "W", "b", "hparameters"),
                                        "conv_backward")
    stride, pad = _hparams(hparameters, ("stride", "pad"), "conv_backward")
    dA_prev, dW, db = conv2d_backward(dZ, A_prev, W, stride=stride, padding=pad)
    return dA_prev, dW, db.reshape(1, 1, 1, -1)


def pool_forward(A_prev: npt.ArrayLike, hparameters: HParameters,
                 mode: str = "max") -> tuple[FloatArray, PoolCache]:
    """Forward pass of a pooling layer (no padding).

    Parameters
    ----------
    A_prev : array_like, shape (m, n_H_prev, n_W_prev, n_C)
        Input; not modified.
    hparameters : dict
        ``{"f": int >= 1, "stride": int >= 1}``: window size and step.
    mode : {"max", "average"}, default "max"

    Returns
    -------
    A : ndarray, shape (m, n_H, n_W, n_C)
        ``n_H = (n_H_prev - f) // stride + 1``, likewise ``n_W``.
    cache : tuple
        ``(A_prev, hparameters)``: the very objects passed in, for
        :func:`pool_backward`.

    Raises
    ------
    ValueError
        For an unknown ``mode``, a window larger than the input, or
        out-of-range hyperparameters.
    KeyError
        If ``hparameters`` lacks ``"f"`` or ``"stride"`` (the message names it).

    Notes
    -----
    ``A[i, h, w, c]`` is ``np.max`` (or ``np.mean``) of
    ``A_prev[i, h*s:h*s+f, w*s:w*s+f, c]``.

    Examples
    --------
    >>> import numpy as np
    >>> A_prev = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> A, cache = pool_forward(A_prev, {"f": 2, "stride": 2})
    >>> A[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> pool_forward(A_prev, {"f": 2, "stride": 2}, mode="average")[0][0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    _check_mode(mode, "pool_forward")
    f, stride = _hparams(hparameters, ("f", "stride"), "pool_forward")
    if mode == "max":
        A = max_pool2d(A_prev, f, stride=stride)
    else:
        A = avg_pool2d(A_prev, f, stride=stride)
    return A, (A_prev, hparameters)


def pool_backward(dA: npt.ArrayLike, cache: PoolCache, mode: str = "max") -> FloatArray:
    """Backward pass of a pooling layer.

    Parameters
    ----------
    dA : array_like, shape (m, n_H, n_W, n_C)
        Gradient of the cost with respect to the pooled output ``A``.
    cache : tuple
        ``(A_prev, hparameters)`` as returned by :func:`pool_forward`.
    mode : {"max", "average"}, default "max"
        As given to :func:`pool_forward`.

    Returns
    -------
    dA_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C)
        Gradient with respect to ``A_prev``.

    Raises
    ------
    ValueError
        For an unknown ``mode``, a malformed ``cache`` or a ``dA`` whose shape
        is not the forward output's.
    KeyError
        If the cached ``hparameters`` lacks ``"f"`` or ``"stride"``.

    Notes
    -----
    For each window ``a = A_prev[i, h*s:h*s+f, w*s:w*s+f, c]``, ``"max"`` adds
    ``create_mask_from_window(a) * dA[i, h, w, c]`` and ``"average"`` adds
    ``distribute_value(dA[i, h, w, c], (f, f))``. Under ``"max"`` every
    element tied for the window maximum gets the full gradient (the course's
    mask), unlike :func:`cyconv.max_pool2d_backward`.

    Examples
    --------
    >>> import numpy as np
    >>> A_prev = np.zeros((1, 2, 2, 1))  # every element ties for the max
    >>> A, cache = pool_forward(A_prev, {"f": 2, "stride": 2})
    >>> pool_backward(np.ones((1, 1, 1, 1)), cache)[0, :, :, 0]
    array([[1., 1.],
           [1., 1.]])
    >>> pool_backward(np.ones((1, 1, 1, 1)), cache, mode="average")[0, :, :, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    _check_mode(mode, "pool_backward")
    A_prev, hparameters = _unpack(cache, ("A_prev", "hparameters"), "pool_backward")
    f, stride = _hparams(hparameters, ("f", "stride"), "pool_backward")
    if mode == "max":
        return _max_pool2d_backward(dA, A_prev, f, stride, 0, None, all_ties=True)
    return avg_pool2d_backward(dA, np.shape(A_prev), f, stride=stride)


def create_mask_from_window(x: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Mask of the positions holding the maximum of ``x``.

    Parameters
    ----------
    x : array_like, shape (f, f)
        One pooling window (any shape works).

    Returns
    -------
    mask : ndarray of bool, shape of ``x``
        ``x == np.max(x)``: True at every maximum (all of them when tied).

    Raises
    ------
    ValueError
        ``x`` empty (no maximum), as the course's version.

    Examples
    --------
    >>> import numpy as np
    >>> create_mask_from_window(np.array([[1, 3], [4, 2]]))
    array([[False, False],
           [ True, False]])
    """
    x = np.asarray(x)
    return x == np.max(x)  # type: ignore[no-any-return]  # NumPy types == as Any


def distribute_value(dz: float, shape: tuple[Int, Int]) -> npt.NDArray[np.float64]:
    """Spread a gradient evenly over a window.

    Parameters
    ----------
    dz : float
        Gradient of one average-pooled output.
    shape : (int, int)
        Window shape ``(n_H, n_W)``.

    Returns
    -------
    a : ndarray of float64, shape ``(n_H, n_W)``
        Every entry ``dz / (n_H * n_W)``.

    Raises
    ------
    ValueError
        If ``shape`` is not a pair of positive ints.

    Examples
    --------
    >>> distribute_value(2, (2, 2))
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    try:
        n_H, n_W = (int(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"distribute_value: shape must be a pair (n_H, n_W), "
                         f"got {shape!r}") from None
    if n_H < 1 or n_W < 1:
        raise ValueError(f"distribute_value: shape must be positive, got {shape!r}")
    # One division, as the course does: dz / (n_H * n_W), not dz / n_H / n_W,
    # so that, e.g., distribute_value(100, (10, 10)) sums to exactly 100.
    return np.full((n_H, n_W), dz / (n_H * n_W), dtype=np.float64)
