"""MaxPool2D and AvgPool2D: the pooling layers on :func:`cyconv.max_pool2d` and
:func:`cyconv.avg_pool2d`."""
from __future__ import annotations

from types import ModuleType

import numpy as np
import numpy.typing as npt

from cyconv._args import FloatArray, Int, IntPair, Padding
from cyconv.layers._base import _KernelLayer


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
