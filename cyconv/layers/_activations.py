"""ReLU and Tanh: elementwise activation layers."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from cyconv import _train
from cyconv._args import FloatArray, Int, resolve_num_threads
from cyconv.layers._base import Layer, _ThreadedLayer

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
# The specialisations by dtype: no fused-function dispatch per call.
_RELU_FORWARD = {_F32: _train.relu_forward["float"], _F64: _train.relu_forward["double"]}
_RELU_BACKWARD = {_F32: _train.relu_backward["float"], _F64: _train.relu_backward["double"]}


def _flat(a: npt.NDArray[Any]) -> npt.NDArray[Any] | None:
    # A 1-D view of a C-contiguous float32/float64 array, else None.
    if a.dtype in _RELU_FORWARD and a.flags.c_contiguous:
        return a.reshape(-1)
    return None


class ReLU(_ThreadedLayer):
    """``max(x, 0)`` elementwise, any shape; keeps its output in training mode.

    Parameters
    ----------
    num_threads : int, optional
        Threads of the compiled passes; default every usable core
        (``Sequential.num_threads`` sets it with the kernel layers').

    Raises
    ------
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it (the
        cache is released by each ``backward``; evaluation mode keeps none).
    ValueError
        ``num_threads`` below 1 (at ``forward``).

    Notes
    -----
    One compiled parallel pass each way (``cyconv._train``) for C-contiguous
    float32/float64 arrays: ``y = max(x, 0)`` forward (NaN stays NaN), and
    ``dx = dout where y > 0, else 0`` backward (``y > 0`` exactly where
    ``x > 0``). The output ``y`` is the cache: the next layer usually holds it
    anyway (a convolution keeps its input), so no mask is allocated. Other
    inputs take the NumPy route, with the same values.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import ReLU
    >>> relu = ReLU()
    >>> relu.forward(np.array([-1.0, 0.5, 2.0]))
    array([0. , 0.5, 2. ])
    >>> relu.backward(np.ones(3))
    array([0., 1., 1.])
    """

    def __init__(self, *, num_threads: Int | None = None) -> None:
        super().__init__(num_threads)

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        """Any shape -> the same shape."""
        x = np.asarray(x)
        flat = _flat(x)
        if flat is None:
            y: npt.NDArray[Any] = np.maximum(x, 0)
        else:
            y = np.empty_like(x, order="C")
            _RELU_FORWARD[x.dtype](flat, y.reshape(-1), resolve_num_threads(self.num_threads))
        self._keep(y)
        return y

    def backward(self, dout: npt.ArrayLike) -> npt.NDArray[Any]:
        """``dout * (x > 0)``."""
        y: npt.NDArray[Any] = self._take()
        dout = np.asarray(dout)
        flat = _flat(dout)
        if flat is None or dout.dtype != y.dtype or dout.shape != y.shape:
            zero = np.zeros((), dtype=np.result_type(dout))
            return np.where(y > 0, dout, zero)
        dx = np.empty_like(dout, order="C")
        _RELU_BACKWARD[dout.dtype](flat, y.reshape(-1), dx.reshape(-1),
                                   resolve_num_threads(self.num_threads))
        return dx


class Tanh(Layer):
    """``tanh(x)`` elementwise, any shape; keeps its output in training mode.

    Raises
    ------
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it (the
        cache is released by each ``backward``; evaluation mode keeps none).

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import Tanh
    >>> tanh = Tanh()
    >>> tanh.forward(np.array([0.0, 1.0]))
    array([0.        , 0.76159416])
    >>> tanh.backward(np.ones(2))  # 1 - tanh(x)**2
    array([1.        , 0.41997434])
    """

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        """Any shape -> the same shape."""
        y = np.tanh(x)
        self._keep(y)
        return y

    def backward(self, dout: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """``dout * (1 - tanh(x)**2)``."""
        y: FloatArray = self._take()
        # Three passes into one new array (was three arrays); same roundings.
        dx = np.multiply(y, y)
        np.subtract(1, dx, out=dx)
        if np.shape(dout) != dx.shape or np.result_type(dout, dx) != dx.dtype:
            return dout * dx
        dx *= dout
        return dx
