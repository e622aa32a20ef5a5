"""MaxPool2D and AvgPool2D: the pooling layers on :func:`cyconv.max_pool2d` and
:func:`cyconv.avg_pool2d`."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from cyconv._args import FloatArray, Int, IntPair, Padding
from cyconv.layers._base import _KernelLayer


class MaxPool2D(_KernelLayer):
    """Max pooling layer (NHWC) on :func:`cyconv.max_pool2d`.

    Parameters
    ----------
    pool_size, stride, padding, dilation, ceil_mode
        As for :func:`cyconv.max_pool2d` (``stride`` defaults to ``pool_size``).
    layout : {"NHWC", "NCHW"}, default "NHWC"
        Keyword-only: the layout of the activations, as for
        :func:`cyconv.max_pool2d` (``"NCHW"``: ``(m, C, n_H, n_W)`` in and out,
        as PyTorch's ``nn.MaxPool2d``).

        >>> import numpy as np
        >>> from cyconv.layers import MaxPool2D
        >>> MaxPool2D(2, layout="NCHW").forward(np.ones((2, 3, 4, 4))).shape
        (2, 3, 2, 2)

    num_threads, backend
        As for :class:`Conv2D`.

    Raises
    ------
    ValueError
        At ``forward``: ``x`` not 4-D, or a geometry :func:`cyconv.max_pool2d`
        rejects (``pool_size`` below 1, a window larger than the padded input...).
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it (the
        cache is released by each ``backward``; evaluation mode keeps none).

    Notes
    -----
    ``(m, n_H, n_W, C) -> (m, n_H_out, n_W_out, C)``; in training mode keeps
    each window's argmax (``max_pool2d(..., return_indices=True)``) and the
    input's shape and dtype, not the input, so backward routes the gradient
    without searching the windows again.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import MaxPool2D
    >>> pool = MaxPool2D(2)
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> p = pool.forward(x)
    >>> p[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> pool.backward(np.ones_like(p))[0, :, :, 0]  # to each window's maximum
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]], dtype=float32)
    """

    def __init__(self, pool_size: IntPair, stride: IntPair | None = None, padding: Padding = 0,
                 *, dilation: IntPair = 1, ceil_mode: bool = False,
                 num_threads: Int | None = None, backend: ModuleType | None = None,
                 layout: str = "NHWC") -> None:
        super().__init__(backend, num_threads)
        self._set_layout(layout, "max_pool2d", "max_pool2d_backward")
        self.pool_size, self.stride, self.padding = pool_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def _geo(self) -> dict[str, Any]:
        # Only what differs from the defaults, so backends without these
        # keywords keep working for layers that do not use them.
        geo: dict[str, Any] = {}
        if self.dilation != 1:
            geo["dilation"] = self.dilation
        if self.ceil_mode:
            geo["ceil_mode"] = True
        geo.update(self._layout_kw())
        return geo

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C) -> (m, n_H_out, n_W_out, C)``."""
        if not self.training:
            return self._kernel("max_pool2d", x, self.pool_size, stride=self.stride,
                                padding=self.padding, **self._geo())
        p, indices = self._kernel("max_pool2d", x, self.pool_size, stride=self.stride,
                                  padding=self.padding, return_indices=True, **self._geo())
        x = np.asarray(x)
        # backward reads only the shape and dtype of x: a zero-stride stand-in
        self._keep((np.broadcast_to(np.zeros((), x.dtype), x.shape), indices))
        return p  # type: ignore[no-any-return]

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        x, indices = self._take()
        return self._kernel("max_pool2d_backward", dout, x, self.pool_size,
                            stride=self.stride, padding=self.padding, indices=indices,
                            **self._geo())

    def _describe(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._geo().items())
        return f"{self.pool_size!r}, stride={self.stride!r}, padding={self.padding!r}{extra}"


class AvgPool2D(_KernelLayer):
    """Average pooling layer (NHWC) on :func:`cyconv.avg_pool2d`.

    Parameters
    ----------
    pool_size, stride, padding, count_include_pad, ceil_mode
        As for :func:`cyconv.avg_pool2d` (``stride`` defaults to ``pool_size``).
    layout : {"NHWC", "NCHW"}, default "NHWC"
        Keyword-only: the layout of the activations, as for
        :func:`cyconv.avg_pool2d` (``"NCHW"``: ``(m, C, n_H, n_W)`` in and out,
        as PyTorch's ``nn.AvgPool2d``).

        >>> import numpy as np
        >>> from cyconv.layers import AvgPool2D
        >>> AvgPool2D(2, layout="NCHW").forward(np.ones((2, 3, 4, 4))).shape
        (2, 3, 2, 2)

    num_threads, backend
        As for :class:`Conv2D`.

    Raises
    ------
    ValueError
        At ``forward``: ``x`` not 4-D, or a geometry :func:`cyconv.avg_pool2d`
        rejects (``pool_size`` below 1, a window larger than the padded input...).
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it (the
        cache is released by each ``backward``; evaluation mode keeps none).

    Notes
    -----
    ``(m, n_H, n_W, C) -> (m, n_H_out, n_W_out, C)``; keeps only the input's
    shape in training mode.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import AvgPool2D
    >>> pool = AvgPool2D(2)
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> p = pool.forward(x)
    >>> p[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> pool.backward(np.ones_like(p))[0, 0, :, 0]  # spread evenly over each window
    array([0.25, 0.25, 0.25, 0.25], dtype=float32)
    """

    def __init__(self, pool_size: IntPair, stride: IntPair | None = None, padding: Padding = 0,
                 count_include_pad: bool = True, *, ceil_mode: bool = False,
                 num_threads: Int | None = None, backend: ModuleType | None = None,
                 layout: str = "NHWC") -> None:
        super().__init__(backend, num_threads)
        self._set_layout(layout, "avg_pool2d", "avg_pool2d_backward")
        self.pool_size, self.stride, self.padding = pool_size, stride, padding
        self.count_include_pad = count_include_pad
        self.ceil_mode = ceil_mode

    def _geo(self) -> dict[str, Any]:
        geo: dict[str, Any] = {"ceil_mode": True} if self.ceil_mode else {}
        geo.update(self._layout_kw())
        return geo

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C) -> (m, n_H_out, n_W_out, C)``."""
        p = self._kernel("avg_pool2d", x, self.pool_size, stride=self.stride,
                         padding=self.padding, count_include_pad=self.count_include_pad,
                         **self._geo())
        self._keep(np.shape(x))
        return p

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        x_shape = self._take()
        return self._kernel("avg_pool2d_backward", dout, x_shape, self.pool_size,
                            stride=self.stride, padding=self.padding,
                            count_include_pad=self.count_include_pad, **self._geo())

    def _describe(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._geo().items())
        return (f"{self.pool_size!r}, stride={self.stride!r}, padding={self.padding!r}, "
                f"count_include_pad={self.count_include_pad}{extra}")


class GlobalAvgPool2D(_KernelLayer):
    """Global average pooling layer (NHWC) on :func:`cyconv.global_avg_pool2d`.

    Parameters
    ----------
    keepdims : bool, default False
        Output ``(m, 1, 1, C)`` instead of ``(m, C)`` (no :class:`Flatten`
        needed before a :class:`Dense` layer without it).
    layout : {"NHWC", "NCHW"}, default "NHWC"
        Keyword-only: ``"NCHW"`` takes ``(m, C, n_H, n_W)`` (the output is
        ``(m, C)`` either way; ``(m, C, 1, 1)`` with ``keepdims``), as
        PyTorch's ``nn.AdaptiveAvgPool2d(1)`` followed by a flatten.

        >>> import numpy as np
        >>> from cyconv.layers import GlobalAvgPool2D
        >>> GlobalAvgPool2D(layout="NCHW").forward(np.ones((2, 3, 4, 4))).shape
        (2, 3)

    num_threads, backend
        As for :class:`Conv2D`.

    Raises
    ------
    ValueError
        At ``forward``: ``x`` not 4-D or a plane without pixels.
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it.

    Notes
    -----
    ``(m, n_H, n_W, C) -> (m, C)``; keeps only the input's shape in training
    mode.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import GlobalAvgPool2D
    >>> GlobalAvgPool2D().forward(np.ones((2, 4, 4, 3))).shape
    (2, 3)
    """

    def __init__(self, *, keepdims: bool = False, num_threads: Int | None = None,
                 backend: ModuleType | None = None, layout: str = "NHWC") -> None:
        super().__init__(backend, num_threads)
        self._set_layout(layout, "global_avg_pool2d", "global_avg_pool2d_backward")
        self.keepdims = keepdims

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C) -> (m, C)`` (or ``(m, 1, 1, C)`` with keepdims)."""
        p = self._kernel("global_avg_pool2d", x, keepdims=self.keepdims, **self._layout_kw())
        self._keep(np.shape(x))
        return p

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        x_shape = self._take()
        return self._kernel("global_avg_pool2d_backward", dout, x_shape, **self._layout_kw())

    def _describe(self) -> str:
        parts = [f"keepdims={self.keepdims}"] if self.keepdims else []
        parts += [f"{k}={v!r}" for k, v in self._layout_kw().items()]
        return ", ".join(parts)


class GlobalMaxPool2D(_KernelLayer):
    """Global max pooling layer (NHWC) on :func:`cyconv.global_max_pool2d`.

    Parameters
    ----------
    keepdims : bool, default False
        Output ``(m, 1, 1, C)`` instead of ``(m, C)``.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        Keyword-only, as for :class:`GlobalAvgPool2D`.

        >>> import numpy as np
        >>> from cyconv.layers import GlobalMaxPool2D
        >>> GlobalMaxPool2D(keepdims=True, layout="NCHW").forward(np.ones((2, 3, 4, 4))).shape
        (2, 3, 1, 1)

    num_threads, backend
        As for :class:`Conv2D`.

    Raises
    ------
    ValueError
        At ``forward``: ``x`` not 4-D or a plane without pixels.
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it.

    Notes
    -----
    ``(m, n_H, n_W, C) -> (m, C)``; keeps the input in training mode (the
    backward finds each plane's first maximum in it).

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import GlobalMaxPool2D
    >>> GlobalMaxPool2D(keepdims=True).forward(np.ones((2, 4, 4, 3))).shape
    (2, 1, 1, 3)
    """

    def __init__(self, *, keepdims: bool = False, num_threads: Int | None = None,
                 backend: ModuleType | None = None, layout: str = "NHWC") -> None:
        super().__init__(backend, num_threads)
        self._set_layout(layout, "global_max_pool2d", "global_max_pool2d_backward")
        self.keepdims = keepdims

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C) -> (m, C)`` (or ``(m, 1, 1, C)`` with keepdims)."""
        p = self._kernel("global_max_pool2d", x, keepdims=self.keepdims, **self._layout_kw())
        self._keep(x)
        return p

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input."""
        x = self._take()
        return self._kernel("global_max_pool2d_backward", dout, x, **self._layout_kw())

    def _describe(self) -> str:
        parts = [f"keepdims={self.keepdims}"] if self.keepdims else []
        parts += [f"{k}={v!r}" for k, v in self._layout_kw().items()]
        return ", ".join(parts)
