"""Conv2D: the convolution layer on :func:`cyconv.conv2d`."""
from __future__ import annotations

from types import ModuleType
from typing import Any

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

    def forward_relu(self, x: npt.ArrayLike) -> FloatArray:
        """``max(forward(x), 0)`` with the ReLU in the kernel's store (no pass of its own).

        What :class:`Sequential` runs for a ``Conv2D`` followed by a ``ReLU``:
        the result is bitwise ``ReLU().forward(self.forward(x))``, and this
        layer's backward is unchanged (the ReLU layer keeps the result and
        masks the gradient before it reaches this layer).
        """
        z = self._kernel("conv2d", x, self.params["w"], self.params.get("b"),
                         stride=self.stride, padding=self.padding, activation="relu")
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

    def backward_params(self, dout: npt.NDArray[Any]) -> None:
        """Fill ``grads`` (dw, db) without computing ``dx`` (``conv2d_backward(grads=...)``)."""
        if not _accepts(getattr(self.backend, "conv2d_backward"), "grads"):
            self.backward(dout)  # a backend without the grads option
            return
        x = self._take()
        _, dw, db = self._kernel("conv2d_backward", dout, x, self.params["w"],
                                 stride=self.stride, padding=self.padding, grads=("dw", "db"))
        self._set_grad("w", dw)
        if "b" in self.params:
            self._set_grad("b", db)

    def _describe(self) -> str:
        f_h, f_w, c_in, c_out = self.params["w"].shape
        return (f"{c_in}, {c_out}, ({f_h}, {f_w}), stride={self.stride!r}, "
                f"padding={self.padding!r}, bias={'b' in self.params}")
