"""Conv2D and ConvTranspose2D: the convolution layers on :func:`cyconv.conv2d` and
:func:`cyconv.conv_transpose2d`."""
from __future__ import annotations

from types import ModuleType
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from cyconv._args import FloatArray, Int, IntPair, Padding, parse_pair
from cyconv.layers._base import (
    Seed,
    _accepts,
    _count,
    _float_dtype,
    _init_weight,
    _KernelLayer,
)


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
    dilation : int or (int, int), default 1
        Spacing of the filter taps (keyword-only), as for :func:`cyconv.conv2d`.
    groups : int, default 1
        Channel groups (keyword-only; dividing both channel counts);
        ``groups == in_channels`` is a depthwise layer.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        Keyword-only, like Keras's ``data_format``: the layout of the
        activations ``forward`` takes and returns, and of the filters in
        ``params``, in the convention of :func:`cyconv.conv2d`'s ``layout``.
        ``"NCHW"`` is PyTorch's ``nn.Conv2d``: input ``(m, C_in, n_H, n_W)``,
        output ``(m, C_out, n_H_out, n_W_out)``, ``params["w"]`` of shape
        ``(C_out, C_in / groups, f_h, f_w)`` (a PyTorch ``weight`` loads as
        it is). The same seed gives the same filters in either layout,
        transposed. Needs a backend whose kernels take ``layout``.

        >>> import numpy as np
        >>> from cyconv.layers import Conv2D
        >>> conv = Conv2D(3, 8, 3, padding=1, layout="NCHW", seed=0)
        >>> conv.params["w"].shape, conv.forward(np.ones((2, 3, 5, 5), np.float32)).shape
        ((8, 3, 3, 3), (2, 8, 5, 5))

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
        ``"w"``: ``(f_h, f_w, C_in / groups, C_out)`` (``(C_out, C_in / groups,
        f_h, f_w)`` under ``layout="NCHW"``), ``"b"``: ``(C_out,)`` if ``bias``.

    Raises
    ------
    ValueError
        ``in_channels`` or ``out_channels`` not an int >= 1 (or not divisible
        by ``groups``); at ``forward``, an ``x`` or geometry the functional
        kernel rejects (e.g. ``x.shape[3] != in_channels``).
    TypeError
        ``dtype`` not float32 or float64.
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it.

    Notes
    -----
    ``forward``: ``(m, n_H, n_W, C_in) -> (m, n_H_out, n_W_out, C_out)``;
    keeps its input in training mode.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import Conv2D
    >>> dw = Conv2D(8, 8, 3, padding=1, groups=8, seed=0)     # depthwise 3x3
    >>> dw.params["w"].shape
    (3, 3, 1, 8)
    >>> Conv2D(4, 6, 3, padding=2, dilation=2, seed=0).forward(np.ones((1, 9, 9, 4))).shape
    (1, 9, 9, 6)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: Padding = 0, bias: bool = True,
                 dtype: npt.DTypeLike = np.float32, seed: Seed = None, *, init: str = "he",
                 dilation: IntPair = 1, groups: Int = 1,
                 num_threads: Int | None = None, backend: ModuleType | None = None,
                 layout: str = "NHWC") -> None:
        super().__init__(backend, num_threads)
        self._set_layout(layout, "conv2d", "conv2d_backward")
        g = _make_params(self, kernel_size, in_channels, out_channels, groups, bias, dtype,
                         seed, init, transposed=False)
        self.stride, self.padding = stride, padding
        self.dilation, self.groups = parse_pair(dilation, "dilation"), g

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C_in) -> (m, n_H_out, n_W_out, C_out)``."""
        z = self._kernel("conv2d", x, self.params["w"], self.params.get("b"),
                         stride=self.stride, padding=self.padding,
                         **self._geometry())
        self._keep(x)
        return z

    def forward_relu(self, x: npt.ArrayLike) -> FloatArray:
        """``max(forward(x), 0)`` with the ReLU in the kernel's store (no pass of its own).

        What :class:`Sequential` runs for a ``Conv2D`` followed by a ``ReLU``:
        the result is bitwise ``ReLU().forward(self.forward(x))``, and this
        layer's backward is unchanged (the ReLU layer keeps the result and
        masks the gradient before it reaches this layer).
        """
        z = self._kernel("conv2d", x, self.params["w"], self.params.get("b"),
                         stride=self.stride, padding=self.padding,
                         **self._geometry(), activation="relu")
        self._keep(x)
        return z

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input; fills ``grads``."""
        x = self._take()
        dx, dw, db = self._kernel("conv2d_backward", dout, x, self.params["w"],
                                  stride=self.stride, padding=self.padding,
                                  **self._geometry())
        self._set_grad("w", dw)
        if "b" in self.params:
            self._set_grad("b", db)
        return dx

    def backward_params(self, dout: npt.NDArray[Any]) -> None:
        """Fill ``grads`` (dw, db) without computing ``dx`` (``conv2d_backward(grads=...)``)."""
        if not _accepts(getattr(self.backend, "conv2d_backward"), "grads"):
            self.backward(dout)  # a backend without the grads option
            return
        x = self._take()
        _, dw, db = self._kernel("conv2d_backward", dout, x, self.params["w"],
                                 stride=self.stride, padding=self.padding,
                                 **self._geometry(), grads=("dw", "db"))
        self._set_grad("w", dw)
        if "b" in self.params:
            self._set_grad("b", db)

    def _geometry(self) -> dict[str, Any]:
        # dilation and groups, passed only when not the default (so a backend
        # without them, e.g. an older cyconv.reference, still runs plain layers)
        kw: dict[str, Any] = {}
        if self.dilation != (1, 1):
            kw["dilation"] = self.dilation
        if self.groups != 1:
            kw["groups"] = self.groups
        kw.update(self._layout_kw())
        return kw

    def _describe(self) -> str:
        w = self.params["w"]
        f_h, f_w, c_in, c_out = (w if self.layout == "NHWC" else w.transpose(2, 3, 1, 0)).shape
        extra = "".join(f", {k}={v!r}" for k, v in self._geometry().items())
        return (f"{c_in * self.groups}, {c_out}, ({f_h}, {f_w}), stride={self.stride!r}, "
                f"padding={self.padding!r}, bias={'b' in self.params}{extra}")


def _make_params(layer: _KernelLayer, kernel_size: IntPair, in_channels: int, out_channels: int,
                 groups: object, bias: bool, dtype: npt.DTypeLike, seed: Seed, init: str, *,
                 transposed: bool) -> int:
    # The filters (f_h, f_w, C_in / groups, C_out), or (f_h, f_w, C_out / groups,
    # C_in) for a transposed layer, with fan-in f_h f_w C_in / groups; the bias
    # at zero; zero grads. Returns the checked groups.
    f_h, f_w = parse_pair(kernel_size, "kernel_size")
    in_channels = _count(in_channels, "in_channels")
    out_channels = _count(out_channels, "out_channels")
    g = _groups(groups, in_channels, out_channels)
    dt = _float_dtype(dtype)
    shape = ((f_h, f_w, out_channels // g, in_channels) if transposed
             else (f_h, f_w, in_channels // g, out_channels))
    w = _init_weight(init, shape, f_h * f_w * in_channels // g, f_h * f_w * out_channels // g,
                     seed, dt)
    # NCHW layers keep PyTorch's filter order: the same draws, transposed
    layer.params["w"] = (w if layer.layout == "NHWC"
                         else np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    if bias:
        layer.params["b"] = np.zeros(out_channels, dtype=dt)
    layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    return g


def _groups(groups: object, in_channels: int, out_channels: int) -> int:
    g = _count(groups, "groups")
    if in_channels % g or out_channels % g:
        raise ValueError(f"groups={g} must divide in_channels ({in_channels}) and "
                         f"out_channels ({out_channels})")
    return g


class ConvTranspose2D(_KernelLayer):
    """Transposed 2-D convolution layer (NHWC) on :func:`cyconv.conv_transpose2d`.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out``.
    kernel_size : int or (int, int)
        ``(f_h, f_w)``.
    stride, padding, output_padding
        As for :func:`cyconv.conv_transpose2d` (PyTorch's rules).
    bias : bool, default True
        Whether to learn a bias ``b`` of shape ``(C_out,)``.
    dtype : float32 or float64, default float32
        dtype of the parameters.
    seed : None, int or numpy.random.Generator
        Random source of the initial weights.
    init : {"he", "glorot"}, default "he"
        Weight initialisation, with fan-in ``f_h * f_w * C_in / groups``.
    dilation, groups
        As for :func:`cyconv.conv_transpose2d`.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        Keyword-only, as for :class:`Conv2D`: ``"NCHW"`` is PyTorch's
        ``nn.ConvTranspose2d``, input ``(m, C_in, n_H, n_W)``, output
        ``(m, C_out, o_H, o_W)``, ``params["w"]`` of shape
        ``(C_in, C_out / groups, f_h, f_w)``.

        >>> import numpy as np
        >>> from cyconv.layers import ConvTranspose2D
        >>> up = ConvTranspose2D(16, 8, 4, stride=2, padding=1, layout="NCHW", seed=0)
        >>> up.params["w"].shape, up.forward(np.ones((2, 16, 7, 7), np.float32)).shape
        ((16, 8, 4, 4), (2, 8, 14, 14))

    num_threads : int, optional
        Threads for the kernels; default every usable core.
    backend : module, optional
        :mod:`cyconv` (default) or :mod:`cyconv.reference`.

    Attributes
    ----------
    params : dict
        ``"w"``: ``(f_h, f_w, C_out / groups, C_in)`` (``(C_in, C_out / groups,
        f_h, f_w)`` under ``layout="NCHW"``), ``"b"``: ``(C_out,)`` if ``bias``.

    Raises
    ------
    ValueError
        ``in_channels`` or ``out_channels`` not an int >= 1 (or not divisible
        by ``groups``); at ``forward``, an ``x`` or geometry the functional
        kernel rejects (e.g. ``x.shape[3] != in_channels``).
    TypeError
        ``dtype`` not float32 or float64.
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it.

    Notes
    -----
    ``forward``: ``(m, n_H, n_W, C_in) -> (m, o_H, o_W, C_out)`` with
    ``o = (n - 1) * s - 2 * p + d * (f - 1) + output_padding + 1``; keeps its
    input in training mode.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import ConvTranspose2D
    >>> up = ConvTranspose2D(16, 8, 4, stride=2, padding=1, seed=0)   # 2x upsampling
    >>> up.forward(np.ones((2, 7, 7, 16), np.float32)).shape
    (2, 14, 14, 8)
    >>> up.backward(np.ones((2, 14, 14, 8), np.float32)).shape
    (2, 7, 7, 16)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                 bias: bool = True, dtype: npt.DTypeLike = np.float32, seed: Seed = None, *,
                 init: str = "he", dilation: IntPair = 1, groups: Int = 1,
                 num_threads: Int | None = None, backend: ModuleType | None = None,
                 layout: str = "NHWC") -> None:
        super().__init__(backend, num_threads)
        self._set_layout(layout, "conv_transpose2d", "conv_transpose2d_backward")
        g = _make_params(self, kernel_size, in_channels, out_channels, groups, bias, dtype,
                         seed, init, transposed=True)
        self.kw: dict[str, Any] = dict(stride=stride, padding=padding,
                                       output_padding=output_padding,
                                       dilation=dilation, groups=g, **self._layout_kw())

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """``(m, n_H, n_W, C_in) -> (m, o_H, o_W, C_out)``."""
        y = self._kernel("conv_transpose2d", x, self.params["w"], self.params.get("b"),
                         **self.kw)
        self._keep(x)
        return y

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """``dout`` shaped like the output -> ``dx`` shaped like the input; fills ``grads``."""
        x = self._take()
        dx, dw, db = cast("tuple[FloatArray, FloatArray, FloatArray]", self._kernel(
            "conv_transpose2d_backward", dout, x, self.params["w"], **self.kw))
        self._set_grad("w", dw)
        if "b" in self.params:
            self._set_grad("b", db)
        return dx

    def _describe(self) -> str:
        w = self.params["w"]
        f_h, f_w, c_out, c_in = (w if self.layout == "NHWC" else w.transpose(2, 3, 1, 0)).shape
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kw.items())
        return f"{c_in}, {c_out * self.kw['groups']}, ({f_h}, {f_w}), {kw}, bias={'b' in self.params}"
