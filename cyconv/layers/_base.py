"""The layer base classes, the parameter types and the argument checks shared by the layers."""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar, Union, overload

import numpy as np
import numpy.typing as npt

import cyconv
from cyconv._args import FloatArray, Int
from cyconv._layout import parse_layout


Seed = Union[int, np.random.Generator, None]
"""A random source: None, an int seed or a ``numpy.random.Generator``."""
Params = dict[str, FloatArray]
"""``params`` and ``grads``: arrays by name."""

_LayerT = TypeVar("_LayerT", bound="Layer")


class _Model(Protocol):
    # What an optimiser updates: a Layer, a Sequential or anything alike.
    def parameters(self) -> Mapping[str, npt.NDArray[Any]]: ...
    def gradients(self) -> Mapping[str, npt.NDArray[Any]]: ...


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

    Raises
    ------
    ZeroDivisionError
        ``fan_in`` is 0.
    TypeError
        ``dtype`` not a NumPy dtype.

    Examples
    --------
    >>> from cyconv.layers import he_normal
    >>> w = he_normal((5, 5, 1, 6), fan_in=5 * 5 * 1, seed=0)  # a 5x5 conv, 1 -> 6 channels
    >>> w.shape, w.dtype
    ((5, 5, 1, 6), dtype('float32'))
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

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import glorot_uniform
    >>> w = glorot_uniform((400, 120), 400, 120, seed=0)
    >>> w.shape, w.dtype
    ((400, 120), dtype('float32'))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / (400 + 120)))
    True
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


@functools.cache
def _accepts(fn: Callable[..., Any], keyword: str) -> bool:
    try:
        return keyword in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _accepts_num_threads(fn: Callable[..., Any]) -> bool:
    return _accepts(fn, "num_threads")


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

    Raises
    ------
    RuntimeError
        ``backward`` without a training-mode ``forward`` before it.

    Examples
    --------
    A layer without parameters: ``forward`` keeps what ``backward`` needs with
    ``_keep`` and ``backward`` takes it back with ``_take``.

    >>> import numpy as np
    >>> from cyconv.layers import Layer
    >>> class Square(Layer):
    ...     def forward(self, x):
    ...         self._keep(x)
    ...         return x * x
    ...     def backward(self, dout):
    ...         return 2 * self._take() * dout
    >>> sq = Square()
    >>> sq(np.array([1.0, 3.0]))
    array([1., 9.])
    >>> sq.backward(np.ones(2))
    array([2., 6.])
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

    def backward_params(self, dout: npt.NDArray[Any]) -> None:
        """Fill ``grads`` as :meth:`backward` does, without returning ``dx``.

        Layers that can skip the work of ``dx`` (:class:`Conv2D`,
        :class:`Dense`) do; ``Sequential.backward(..., input_grad=False)``
        calls this on its first layer with parameters.
        """
        self.backward(dout)

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


class _ThreadedLayer(Layer):
    # Layers whose passes run on cyconv's OpenMP team (Sequential.num_threads
    # sets them all).

    def __init__(self, num_threads: Int | None = None) -> None:
        super().__init__()
        self.num_threads = num_threads


class _KernelLayer(_ThreadedLayer):
    # Layers that call one of the six kernel functions of a backend module.

    def __init__(self, backend: ModuleType | None = None, num_threads: Int | None = None) -> None:
        super().__init__(num_threads)
        self.backend = cyconv if backend is None else backend

    def _set_layout(self, layout: object, *kernels: str) -> None:
        # The checked layout; NCHW needs a backend whose kernels take layout=.
        self.layout = parse_layout(layout)
        if self.layout == "NCHW":
            for name in kernels:
                if not _accepts(getattr(self.backend, name), "layout"):
                    raise ValueError(
                        f"layout='NCHW' needs a backend whose {name} takes a layout keyword; "
                        f"{getattr(self.backend, '__name__', self.backend)!s}.{name} does not "
                        f"(use layout='NHWC' with this backend, or the default backend cyconv)")

    def _layout_kw(self) -> dict[str, str]:
        # layout= only when not the default, so backends without it run NHWC layers.
        return {"layout": "NCHW"} if getattr(self, "layout", "NHWC") == "NCHW" else {}

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
