"""Layers, a loss, optimisers and a ``Sequential`` model on top of the cyconv kernels.

Enough to train LeNet-5 (see ``python -m cyconv.demo``) and nothing more:
:class:`Conv2D`, :class:`MaxPool2D` and :class:`AvgPool2D` call the functional
kernels (:func:`cyconv.conv2d`, :func:`cyconv.max_pool2d`, ...), and the rest
(:class:`ReLU`, :class:`Tanh`, :class:`Flatten`, :class:`Dense`,
:func:`softmax_cross_entropy`, :class:`SGD`, :class:`Adam`) is a few lines of
NumPy each.

Conventions
-----------
* Activations are NHWC, ``(m, n_H, n_W, n_C)``, until :class:`Flatten` turns
  them into ``(m, n_features)``; conv filters are ``(f_h, f_w, C_in, C_out)``
  and dense weights ``(in_features, out_features)``.
* Every layer has ``params`` and ``grads``: dicts of arrays with the same
  names and shapes. ``backward`` overwrites ``grads`` in place (it does not
  accumulate), so the arrays an optimiser holds stay valid.
* In training mode (the default) ``forward`` keeps in ``cache`` exactly what
  ``backward`` needs (the input of a conv, dense or max-pool layer, only the
  input's shape for average pooling and flatten, a boolean mask for ReLU, the
  output for tanh), and ``backward`` releases it. In evaluation mode
  (``eval()``) ``forward`` keeps nothing and ``backward`` raises.
* ``backend`` is a module with the six kernel functions: :mod:`cyconv` (the
  default) or :mod:`cyconv.reference`. ``num_threads`` is passed to backends
  whose functions accept it.

Examples
--------
>>> import numpy as np
>>> from cyconv.layers import (Conv2D, MaxPool2D, Flatten, Dense, ReLU, Sequential,
...                            Adam, softmax_cross_entropy)
>>> model = Sequential(
...     Conv2D(1, 4, 3, padding="same", seed=0), ReLU(), MaxPool2D(2),
...     Flatten(), Dense(4 * 4 * 4, 3, seed=1))
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)  # (m, n_H, n_W, C)
>>> y = rng.integers(0, 3, size=16)                              # class labels
>>> opt = Adam(model, lr=1e-2)
>>> losses = []
>>> for step in range(20):
...     loss, dlogits = softmax_cross_entropy(model.forward(x), y)
...     _ = model.backward(dlogits)
...     opt.step()
...     losses.append(loss)
>>> losses[-1] < losses[0]
True
>>> model.predict(x).shape
(16,)
>>> sorted(model.parameters())
['0.b', '0.w', '4.b', '4.w']
"""
from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar, Union, overload

import numpy as np
import numpy.typing as npt

import cyconv
from cyconv._args import FloatArray, Int, IntPair, Padding, parse_pair

__all__ = [
    "SGD",
    "Adam",
    "AvgPool2D",
    "Conv2D",
    "Dense",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "ReLU",
    "Sequential",
    "Tanh",
    "glorot_uniform",
    "he_normal",
    "softmax",
    "softmax_cross_entropy",
]

Seed = Union[int, np.random.Generator, None]
"""A random source: None, an int seed or a ``numpy.random.Generator``."""
Params = dict[str, FloatArray]
"""``params`` and ``grads``: arrays by name."""

_LayerT = TypeVar("_LayerT", bound="Layer")
_SequentialT = TypeVar("_SequentialT", bound="Sequential")


class _Model(Protocol):
    # What an optimiser updates: a Layer, a Sequential or anything alike.
    def parameters(self) -> Mapping[str, npt.NDArray[Any]]: ...
    def gradients(self) -> Mapping[str, npt.NDArray[Any]]: ...


# --------------------------------------------------------------------------
# Initialisation
# --------------------------------------------------------------------------

def he_normal(shape: int | tuple[int, ...], fan_in: int, *, seed: Seed = None,
              dtype: npt.DTypeLike = np.float32) -> npt.NDArray[Any]:
    """He (Kaiming) normal initialisation, for layers followed by ReLU.

    Parameters
    ----------
    shape : tuple of int
        Shape of the weight array.
    fan_in : int
        Inputs feeding each output unit (``f_h * f_w * C_in`` for a conv
        filter, ``in_features`` for a dense layer).
    seed : None, int or numpy.random.Generator
        Random source.
    dtype : dtype, default float32

    Returns
    -------
    ndarray, shape ``shape``
        Samples of ``N(0, 2 / fan_in)``.
    """
    rng = np.random.default_rng(seed)
    # NumPy's stubs type this as Any.
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)  # type: ignore[no-any-return]


def glorot_uniform(shape: int | tuple[int, ...], fan_in: int, fan_out: int, *,
                   seed: Seed = None, dtype: npt.DTypeLike = np.float32) -> npt.NDArray[Any]:
    """Glorot (Xavier) uniform initialisation, for layers followed by tanh.

    Parameters
    ----------
    shape : tuple of int
        Shape of the weight array.
    fan_in, fan_out : int
        Inputs feeding each output unit and outputs fed by each input unit
        (``f_h * f_w * C_in`` and ``f_h * f_w * C_out`` for a conv filter).
    seed : None, int or numpy.random.Generator
        Random source.
    dtype : dtype, default float32

    Returns
    -------
    ndarray, shape ``shape``
        Samples of ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``.
    """
    rng = np.random.default_rng(seed)
    limit: float = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def _init_weight(init: str, shape: tuple[int, ...], fan_in: int, fan_out: int, seed: Seed,
                 dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    if init == "he":
        return he_normal(shape, fan_in, seed=seed, dtype=dtype)
    if init == "glorot":
        return glorot_uniform(shape, fan_in, fan_out, seed=seed, dtype=dtype)
    raise ValueError(f"init must be 'he' or 'glorot', got {init!r}")


def _count(value: object, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _float_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


# --------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------

@functools.cache
def _accepts_num_threads(fn: Callable[..., Any]) -> bool:
    try:
        return "num_threads" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class Layer:
    """Base class: ``params``/``grads`` dicts, a training flag and a cache.

    Attributes
    ----------
    params : dict of str to ndarray
        Learnable arrays, updated in place by optimisers.
    grads : dict of str to ndarray
        Same names and shapes as ``params``; written by :meth:`backward`.
    training : bool
        Whether :meth:`forward` keeps what :meth:`backward` needs.
    cache : object or None
        What the last training-mode :meth:`forward` kept for :meth:`backward`.
    """

    def __init__(self) -> None:
        self.params: Params = {}
        self.grads: Params = {}
        self.training = True
        self.cache: Any = None

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: npt.NDArray[Any]) -> npt.NDArray[Any]:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        return self.forward(x)

    def train(self: _LayerT, mode: bool = True) -> _LayerT:
        """Set training mode (``mode=False``: evaluation mode, cache dropped). Returns self."""
        self.training = bool(mode)
        if not self.training:
            self.cache = None
        return self

    def eval(self: _LayerT) -> _LayerT:
        """Set evaluation mode: ``forward`` keeps no cache. Returns self."""
        return self.train(False)

    def parameters(self) -> Params:
        """The ``params`` dict (for optimisers)."""
        return self.params

    def gradients(self) -> Params:
        """The ``grads`` dict (for optimisers)."""
        return self.grads

    def _keep(self, value: Any) -> None:
        self.cache = value if self.training else None

    def _take(self) -> Any:
        # The cache is released once backward has used it.
        if self.cache is None:
            mode = "training" if self.training else "evaluation"
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward pass in training mode "
                f"first (the layer is in {mode} mode and holds no cache); call train() "
                "and forward() before backward()")
        cache, self.cache = self.cache, None
        return cache

    def _set_grad(self, name: str, value: npt.ArrayLike) -> None:
        np.copyto(self.grads[name], value, casting="same_kind")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()})"

    def _describe(self) -> str:
        return ""


class _KernelLayer(Layer):
    # Layers that call one of the six kernel functions of a backend module.

    def __init__(self, backend: ModuleType | None = None, num_threads: Int | None = None) -> None:
        super().__init__()
        self.backend = cyconv if backend is None else backend
        self.num_threads = num_threads

    @overload
    def _kernel(self, name: Literal["conv2d_backward"], *args: Any,
                **kwargs: Any) -> tuple[FloatArray, FloatArray, FloatArray]: ...
    @overload
    def _kernel(self, name: str, *args: Any, **kwargs: Any) -> FloatArray: ...
    def _kernel(self, name: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.backend, name)
        if _accepts_num_threads(fn):
            kwargs["num_threads"] = self.num_threads
        return fn(*args, **kwargs)


class Conv2D(_KernelLayer):
    """2-D convolution layer (NHWC) on :func:`cyconv.conv2d`.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out``.
    kernel_size : int or (int, int)
        ``(f_h, f_w)``.
    stride, padding
        As for :func:`cyconv.conv2d`.
    bias : bool, default True
        Whether to learn a bias ``b`` of shape ``(C_out,)``.
    dtype : float32 or float64, default float32
        dtype of the parameters.
    seed : None, int or numpy.random.Generator
        Random source of the initial weights.
    init : {"he", "glorot"}, default "he"
        Weight initialisation (:func:`he_normal` or :func:`glorot_uniform`);
        the bias starts at zero.
    num_threads : int, optional
        Threads for the kernels; default every usable core.
    backend : module, optional
        :mod:`cyconv` (default) or :mod:`cyconv.reference`.

    Attributes
    ----------
    params : dict
        ``"w"``: ``(f_h, f_w, C_in, C_out)``, ``"b"``: ``(C_out,)`` if ``bias``.

    Notes
    -----
    ``forward``: ``(m, n_H, n_W, C_in) -> (m, n_H_out, n_W_out, C_out)``;
    keeps its input in training mode.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: Padding = 0, bias: bool = True,
                 dtype: npt.DTypeLike = np.float32, seed: Seed = None, *, init: str = "he",
                 num_threads: Int | None = None, backend: ModuleType | None = None) -> None:
        super().__init__(backend, num_threads)
        f_h, f_w = parse_pair(kernel_size, "kernel_size")
        in_channels, out_channels = _count(in_channels, "in_channels"), _count(
            out_channels, "out_channels")
        dtype = _float_dtype(dtype)
        shape = (f_h, f_w, in_channels, out_channels)
        self.stride, self.padding = stride, padding
        self.params["w"] = _init_weight(init, shape, f_h * f_w * in_channels,
                                        f_h * f_w * out_channels, seed, dtype)
        if bias:
            self.params["b"] = np.zeros(out_channels, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C_in) -> (m, n_H_out, n_W_out, C_out)``."""
        z = self._kernel("conv2d", x, self.params["w"], self.params.get("b"),
                         stride=self.stride, padding=self.padding)
        self._keep(x)
        return z

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input; fills ``grads``."""
        x = self._take()
        dx, dw, db = self._kernel("conv2d_backward", dout, x, self.params["w"],
                                  stride=self.stride, padding=self.padding)
        self._set_grad("w", dw)
        if "b" in self.params:
            self._set_grad("b", db)
        return dx

    def _describe(self) -> str:
        f_h, f_w, c_in, c_out = self.params["w"].shape
        return (f"{c_in}, {c_out}, ({f_h}, {f_w}), stride={self.stride!r}, "
                f"padding={self.padding!r}, bias={'b' in self.params}")


class MaxPool2D(_KernelLayer):
    """Max pooling layer (NHWC) on :func:`cyconv.max_pool2d`.

    Parameters
    ----------
    pool_size, stride, padding
        As for :func:`cyconv.max_pool2d` (``stride`` defaults to ``pool_size``).
    num_threads, backend
        As for :class:`Conv2D`.

    Notes
    -----
    ``(m, n_H, n_W, C) -> (m, n_H_out, n_W_out, C)``; in training mode keeps
    each window's argmax (``max_pool2d(..., return_indices=True)``) and the
    input's shape and dtype, not the input, so backward routes the gradient
    without searching the windows again.
    """

    def __init__(self, pool_size: IntPair, stride: IntPair | None = None, padding: Padding = 0,
                 *, num_threads: Int | None = None, backend: ModuleType | None = None) -> None:
        super().__init__(backend, num_threads)
        self.pool_size, self.stride, self.padding = pool_size, stride, padding

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C) -> (m, n_H_out, n_W_out, C)``."""
        if not self.training:
            return self._kernel("max_pool2d", x, self.pool_size, stride=self.stride,
                                padding=self.padding)
        p, indices = self._kernel("max_pool2d", x, self.pool_size, stride=self.stride,
                                  padding=self.padding, return_indices=True)
        x = np.asarray(x)
        # backward reads only the shape and dtype of x: a zero-stride stand-in
        self._keep((np.broadcast_to(np.zeros((), x.dtype), x.shape), indices))
        return p  # type: ignore[no-any-return]

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        x, indices = self._take()
        return self._kernel("max_pool2d_backward", dout, x, self.pool_size,
                            stride=self.stride, padding=self.padding, indices=indices)

    def _describe(self) -> str:
        return f"{self.pool_size!r}, stride={self.stride!r}, padding={self.padding!r}"


class AvgPool2D(_KernelLayer):
    """Average pooling layer (NHWC) on :func:`cyconv.avg_pool2d`.

    Parameters
    ----------
    pool_size, stride, padding, count_include_pad
        As for :func:`cyconv.avg_pool2d` (``stride`` defaults to ``pool_size``).
    num_threads, backend
        As for :class:`Conv2D`.

    Notes
    -----
    ``(m, n_H, n_W, C) -> (m, n_H_out, n_W_out, C)``; keeps only the input's
    shape in training mode.
    """

    def __init__(self, pool_size: IntPair, stride: IntPair | None = None, padding: Padding = 0,
                 count_include_pad: bool = True, *, num_threads: Int | None = None,
                 backend: ModuleType | None = None) -> None:
        super().__init__(backend, num_threads)
        self.pool_size, self.stride, self.padding = pool_size, stride, padding
        self.count_include_pad = count_include_pad

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C) -> (m, n_H_out, n_W_out, C)``."""
        p = self._kernel("avg_pool2d", x, self.pool_size, stride=self.stride,
                         padding=self.padding, count_include_pad=self.count_include_pad)
        self._keep(np.shape(x))
        return p

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        x_shape = self._take()
        return self._kernel("avg_pool2d_backward", dout, x_shape, self.pool_size,
                            stride=self.stride, padding=self.padding,
                            count_include_pad=self.count_include_pad)

    def _describe(self) -> str:
        return (f"{self.pool_size!r}, stride={self.stride!r}, padding={self.padding!r}, "
                f"count_include_pad={self.count_include_pad}")


class ReLU(Layer):
    """``max(x, 0)`` elementwise, any shape; keeps a boolean mask in training mode."""

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        """Any shape -> the same shape."""
        x = np.asarray(x)
        self._keep(x > 0)
        return np.maximum(x, 0)  # type: ignore[no-any-return]  # Any to NumPy's stubs

    def backward(self, dout: npt.ArrayLike) -> npt.NDArray[Any]:
        """``dout * (x > 0)``."""
        mask: npt.NDArray[np.bool_] = self._take()
        return np.where(mask, dout, np.zeros((), dtype=np.result_type(dout)))


class Tanh(Layer):
    """``tanh(x)`` elementwise, any shape; keeps its output in training mode."""

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        """Any shape -> the same shape."""
        y = np.tanh(x)
        self._keep(y)
        return y

    def backward(self, dout: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """``dout * (1 - tanh(x)**2)``."""
        y: FloatArray = self._take()
        return dout * (1 - y * y)


class Flatten(Layer):
    """``(m, ...) -> (m, prod(...))`` (NHWC order); keeps the input's shape in training mode."""

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        """``(m, n_H, n_W, C) -> (m, n_H * n_W * C)``."""
        x = np.asarray(x)
        self._keep(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: npt.ArrayLike) -> npt.NDArray[Any]:
        """``(m, n_features) -> (m, n_H, n_W, C)``."""
        return np.reshape(dout, self._take())


class Dense(Layer):
    """Fully connected layer ``x @ w + b``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : float32 or float64, default float32
    seed : None, int or numpy.random.Generator
    init : {"he", "glorot"}, default "he"

    Attributes
    ----------
    params : dict
        ``"w"``: ``(in_features, out_features)``, ``"b"``: ``(out_features,)``
        if ``bias``.

    Notes
    -----
    ``(m, in_features) -> (m, out_features)``; keeps its input in training mode.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: npt.DTypeLike = np.float32, seed: Seed = None, *,
                 init: str = "he") -> None:
        super().__init__()
        in_features = _count(in_features, "in_features")
        out_features = _count(out_features, "out_features")
        dtype = _float_dtype(dtype)
        self.params["w"] = _init_weight(init, (in_features, out_features),
                                        in_features, out_features, seed, dtype)
        if bias:
            self.params["b"] = np.zeros(out_features, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        """``(m, in_features) -> (m, out_features)``."""
        x = np.asarray(x)
        w = self.params["w"]
        if x.ndim != 2 or x.shape[1] != w.shape[0]:
            raise ValueError(f"Dense expects x of shape (m, {w.shape[0]}), got {x.shape}")
        z = x @ w
        if "b" in self.params:
            z += self.params["b"]
        self._keep(x)
        return z

    def backward(self, dout: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """``(m, out_features) -> (m, in_features)``; fills ``grads``."""
        x: npt.NDArray[Any] = self._take()
        self._set_grad("w", x.T @ dout)
        if "b" in self.params:
            self._set_grad("b", dout.sum(axis=0))
        return dout @ self.params["w"].T

    def _describe(self) -> str:
        n_in, n_out = self.params["w"].shape
        return f"{n_in}, {n_out}, bias={'b' in self.params}"


# --------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------

def _log_softmax(logits: npt.NDArray[Any]) -> npt.NDArray[Any]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    # NumPy's stubs type this as Any.
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # type: ignore[no-any-return]


def softmax(logits: npt.ArrayLike) -> npt.NDArray[Any]:
    """Row-wise softmax of ``(m, K)`` scores; each row sums to 1."""
    # NumPy's stubs type this as Any.
    return np.exp(_log_softmax(np.asarray(logits)))  # type: ignore[no-any-return]


def softmax_cross_entropy(logits: npt.ArrayLike,
                          y: npt.ArrayLike) -> tuple[float, npt.NDArray[Any]]:
    """Mean softmax cross-entropy loss and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (m, K)
        Unnormalised class scores.
    y : array_like of int, shape (m,), or ndarray, shape (m, K)
        Class labels in ``0 .. K-1``, or target probabilities (one-hot rows).

    Returns
    -------
    loss : float
        ``-mean_i log softmax(logits)[i, y_i]``.
    dlogits : ndarray, shape (m, K)
        ``(softmax(logits) - onehot(y)) / m``, the dtype of ``logits``.

    Raises
    ------
    ValueError
        If the shapes disagree or a label is out of range.

    Notes
    -----
    The log-softmax subtracts each row's maximum first, so large scores
    neither overflow nor lose the loss to ``log(0)``.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (m, K), got shape {logits.shape}")
    m, k = logits.shape
    log_p = _log_softmax(logits)
    y = np.asarray(y)
    if y.ndim == 1:
        if y.shape[0] != m:
            raise ValueError(f"y must have {m} labels (one per row of logits), got {y.shape[0]}")
        if y.dtype.kind not in "iu":
            raise TypeError(f"labels y must be integers, got dtype {y.dtype}")
        if m and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"labels y must lie in 0 .. {k - 1}, got {y.min()} .. {y.max()}")
        target = np.zeros_like(log_p)
        target[np.arange(m), y] = 1
    elif y.shape == logits.shape:
        target = y.astype(log_p.dtype, copy=False)
    else:
        raise ValueError(f"y must be labels of shape ({m},) or targets of shape {logits.shape}, "
                         f"got {y.shape}")
    loss = -float((target * log_p).sum()) / max(m, 1)
    dlogits = (np.exp(log_p) - target) / max(m, 1)
    return loss, dlogits.astype(log_p.dtype, copy=False)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

class Sequential:
    """Layers applied in order; named parameters ``"<index>.<name>"``.

    Parameters
    ----------
    *layers : Layer
        Or a single list of layers.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import Sequential, Dense, ReLU
    >>> model = Sequential(Dense(4, 8, seed=0), ReLU(), Dense(8, 3, seed=1))
    >>> model.forward(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    >>> {k: v.shape for k, v in model.parameters().items()}
    {'0.w': (4, 8), '0.b': (8,), '2.w': (8, 3), '2.b': (3,)}
    """

    @overload
    def __init__(self, *layers: Layer) -> None: ...
    @overload
    def __init__(self, layers: list[Layer] | tuple[Layer, ...], /) -> None: ...
    def __init__(self, *layers: Any) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be a cyconv.layers.Layer, "
                                f"got {type(layer).__name__}")
        self.layers: list[Layer] = list(layers)

    def __len__(self) -> int:
        return len(self.layers)

    @overload
    def __getitem__(self, i: int) -> Layer: ...
    @overload
    def __getitem__(self, i: slice) -> list[Layer]: ...
    def __getitem__(self, i: int | slice) -> Layer | list[Layer]:
        return self.layers[i]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def forward(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Run every layer's ``forward``; returns the last output."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Run every layer's ``backward`` in reverse; fills ``grads``, returns ``dx``."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    @property
    def training(self) -> bool:
        """True if any layer is in training mode."""
        return any(layer.training for layer in self.layers)

    def train(self: _SequentialT, mode: bool = True) -> _SequentialT:
        """Put every layer in training mode (or evaluation mode if ``mode`` is False)."""
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self: _SequentialT) -> _SequentialT:
        """Put every layer in evaluation mode: no caches are kept."""
        return self.train(False)

    @property
    def num_threads(self) -> Int | None:
        """Kernel threads of the conv/pool layers (None: every usable core); settable."""
        values = {layer.num_threads for layer in self.layers if isinstance(layer, _KernelLayer)}
        return values.pop() if len(values) == 1 else None

    @num_threads.setter
    def num_threads(self, n: Int | None) -> None:
        for layer in self.layers:
            if isinstance(layer, _KernelLayer):
                layer.num_threads = n

    def parameters(self) -> Params:
        """``{"<index>.<name>": array}`` of every layer's ``params`` (the arrays themselves)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()}

    def gradients(self) -> Params:
        """``{"<index>.<name>": array}`` of every layer's ``grads`` (keys of :meth:`parameters`)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.grads.items()}

    def predict(self, x: npt.NDArray[Any], batch_size: int = 256) -> npt.NDArray[np.intp]:
        """Class labels ``argmax(forward(x), axis=1)``, shape ``(m,)``, in evaluation mode.

        Runs in batches of ``batch_size`` and restores each layer's mode afterwards.
        """
        modes = [layer.training for layer in self.layers]
        self.eval()
        try:
            labels = [np.argmax(self.forward(x[i:i + batch_size]), axis=1)
                      for i in range(0, len(x), batch_size)]
        finally:
            for layer, mode in zip(self.layers, modes):
                layer.train(mode)
        return np.concatenate(labels) if labels else np.zeros(0, dtype=np.intp)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters to an ``.npz`` file, keys as in :meth:`parameters`."""
        with open(os.fspath(path), "wb") as f:
            np.savez(f, **self.parameters())  # type: ignore[arg-type]  # names, not savez's flags

    def load(self: _SequentialT, path: str | os.PathLike[str]) -> _SequentialT:
        """Read parameters saved by :meth:`save` into this model, in place.

        Raises
        ------
        ValueError
            If the file's names or shapes differ from this model's.
        """
        params = self.parameters()
        with np.load(os.fspath(path), allow_pickle=False) as data:
            missing = sorted(set(params) - set(data.files))
            unexpected = sorted(set(data.files) - set(params))
            if missing or unexpected:
                raise ValueError(f"{path}: parameter names do not match this model: "
                                 f"missing {missing}, unexpected {unexpected}")
            arrays = {k: data[k] for k in params}
        wrong = [f"{k}: file {arrays[k].shape}, model {p.shape}"
                 for k, p in params.items() if arrays[k].shape != p.shape]
        if wrong:
            raise ValueError(f"{path}: parameter shapes do not match this model: "
                             + "; ".join(wrong))
        for k, p in params.items():
            np.copyto(p, arrays[k], casting="same_kind")
        return self


# --------------------------------------------------------------------------
# Optimisers
# --------------------------------------------------------------------------

class _Optimizer:
    _update: Callable[[str, npt.NDArray[Any], npt.NDArray[Any]], None]  # by each subclass

    def __init__(self, model: _Model, lr: float) -> None:
        if not (lr > 0):
            raise ValueError(f"lr must be > 0, got {lr!r}")
        params, grads = model.parameters(), model.gradients()
        if params.keys() != grads.keys() or any(params[k].shape != grads[k].shape for k in params):
            raise ValueError("model.parameters() and model.gradients() must have the same "
                             "names and shapes")
        self.model = model
        self.lr = lr
        self.state: dict[str, Any] = {}

    def step(self) -> None:
        """Update every parameter in place from its gradient."""
        params, grads = self.model.parameters(), self.model.gradients()
        for name, p in params.items():
            self._update(name, p, grads[name])


class SGD(_Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum.

    Parameters
    ----------
    model : Sequential or Layer
        Anything with ``parameters()`` and ``gradients()`` dicts.
    lr : float, default 0.01
    momentum : float, default 0.0

    Notes
    -----
    ``v = momentum * v - lr * grad; param += v``.
    """

    def __init__(self, model: _Model, lr: float = 0.01, momentum: float = 0.0) -> None:
        super().__init__(model, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum

    def _update(self, name: str, p: npt.NDArray[Any], g: npt.NDArray[Any]) -> None:
        if not self.momentum:
            p -= self.lr * g
            return
        v = self.state.get(name)
        if v is None:
            v = self.state[name] = np.zeros_like(p)
        v *= self.momentum
        v -= self.lr * g
        p += v


class Adam(_Optimizer):
    """Adam (Kingma and Ba, 2015).

    Parameters
    ----------
    model : Sequential or Layer
        Anything with ``parameters()`` and ``gradients()`` dicts.
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8

    Notes
    -----
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``param -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.
    """

    def __init__(self, model: _Model, lr: float = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(model, lr)
        self.betas, self.eps = tuple(betas), eps
        self.t = 0

    def step(self) -> None:
        """Update every parameter in place from its gradient."""
        self.t += 1
        super().step()

    def _update(self, name: str, p: npt.NDArray[Any], g: npt.NDArray[Any]) -> None:
        b1, b2 = self.betas
        if name not in self.state:
            self.state[name] = (np.zeros_like(p), np.zeros_like(p))
        m, v = self.state[name]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        m_hat = m / (1 - b1 ** self.t)
        v_hat = v / (1 - b2 ** self.t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
