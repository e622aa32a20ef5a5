"""ReLU and Tanh: elementwise activation layers."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from cyconv._args import FloatArray
from cyconv.layers._base import Layer


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
