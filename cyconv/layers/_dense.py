"""Flatten and Dense: from NHWC activations to class scores."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from cyconv._threads import limit_blas_threads
from cyconv.layers._base import Layer, Seed, _count, _float_dtype, _init_weight


class Flatten(Layer):
    """``(m, ...) -> (m, prod(...))``; keeps the input's shape in training mode.

    A reshape in the array's own order: ``(n_H, n_W, C)`` order for NHWC
    activations, ``(C, n_H, n_W)`` (PyTorch's ``nn.Flatten``) for layers built
    with ``layout="NCHW"``, so it needs no ``layout`` of its own.

    Raises
    ------
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it (the
        cache is released by each ``backward``; evaluation mode keeps none).

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import Flatten
    >>> flat = Flatten()
    >>> z = flat.forward(np.zeros((2, 3, 3, 4)))  # (m, n_H, n_W, C)
    >>> z.shape
    (2, 36)
    >>> flat.backward(z).shape
    (2, 3, 3, 4)
    """

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

    Raises
    ------
    ValueError
        ``in_features`` or ``out_features`` not an int >= 1, an unknown
        ``init``; at ``forward``, ``x`` not ``(m, in_features)``.
    TypeError
        ``dtype`` not float32 or float64.
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it (the
        cache is released by each ``backward``; evaluation mode keeps none).

    Notes
    -----
    ``(m, in_features) -> (m, out_features)``; keeps its input in training mode.
    The products run on NumPy's BLAS held to one thread
    (:func:`cyconv.limit_blas_threads`): a dense layer between OpenMP-parallel
    conv layers is small, and BLAS threads would only spin against the
    OpenMP team's.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import Dense
    >>> dense = Dense(3, 2, seed=0)
    >>> {name: w.shape for name, w in dense.params.items()}
    {'w': (3, 2), 'b': (2,)}
    >>> y = dense.forward(np.ones((4, 3), dtype=np.float32))
    >>> y.shape, y.dtype
    ((4, 2), dtype('float32'))
    >>> dx = dense.backward(np.ones_like(y))  # fills dense.grads too
    >>> dx.shape, dense.grads["b"]
    ((4, 3), array([4., 4.], dtype=float32))
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
        with limit_blas_threads():
            z = x @ w
        if "b" in self.params:
            z += self.params["b"]
        self._keep(x)
        return z

    def backward(self, dout: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """``(m, out_features) -> (m, in_features)``; fills ``grads``."""
        dout = np.asarray(dout)
        self.backward_params(dout)
        with limit_blas_threads():
            dx: npt.NDArray[Any] = dout @ self.params["w"].T
        return dx

    def backward_params(self, dout: npt.NDArray[Any]) -> None:
        """Fill ``grads`` (dw, db) without computing ``dx``."""
        x: npt.NDArray[Any] = self._take()
        dout = np.asarray(dout)
        dw = self.grads["w"]
        with limit_blas_threads():
            if np.result_type(x, dout) == dw.dtype:
                np.matmul(x.T, dout, out=dw)  # straight into grads: no temporary
            else:
                self._set_grad("w", x.T @ dout)
        if "b" in self.params:
            self._set_grad("b", dout.sum(axis=0))

    def _describe(self) -> str:
        n_in, n_out = self.params["w"].shape
        return f"{n_in}, {n_out}, bias={'b' in self.params}"
