"""Layout conversions: NCHW <-> NHWC activations and OIHW <-> HWIO filters.

cyconv's kernels work on NHWC activations and HWIO filters. A public function
called with ``layout="NCHW"`` (PyTorch's and CS231n's order: activations
``(m, C, H, W)``, filters ``(C_out, C_in, f_h, f_w)``) converts its inputs
once with these helpers, runs the NHWC kernels, and converts its results
back. Activations go through :func:`cyconv._transpose.transpose_batched`, a
tiled parallel transpose (NumPy's strided ``ascontiguousarray(x.transpose(...))``
runs on one thread at a fraction of the copy bandwidth); filters are small
and go through NumPy.

Every helper checks what it is given and names the argument in its errors,
so that the caller's own names reach the user: ``to_nhwc(x, "x")``.
Inputs are never modified; every result is a new C-contiguous array (or the
``out`` array given).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from cyconv import _transpose
from cyconv._args import FloatArray, as_array, resolve_num_threads

__all__ = ["LAYOUTS", "PARALLEL_MIN_ELEMENTS", "parse_layout", "to_nhwc", "to_nchw", "oihw_to_hwio", "hwio_to_oihw",
           "nchw_shape", "nhwc_shape"]

LAYOUTS = ("NHWC", "NCHW")
"""The activation layouts the public functions accept; the first is the default."""

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)

PARALLEL_MIN_ELEMENTS = 1 << 24
"""Transposes of fewer elements (64 MiB of float32) run on one thread.

One thread of the compiled transpose already moves 10-20 GB/s, beating
NumPy's strided copy (1.2-5x NHWC -> NCHW, up to 3x NCHW -> NHWC, about
even for float64 with many channels). On the shared 2-core machine it was
measured on, a second thread never made a 1-50 MB transpose faster: the copy
is bound by memory bandwidth, and a short parallel region whose second
thread is descheduled waits a whole time slice (15-25 ms measured for a
6 MB transpose, 0.4-1 ms serial). Larger arrays amortise that risk.
"""


def parse_layout(layout: object) -> str:
    """``layout`` checked: ``"NHWC"`` or ``"NCHW"``.

    Raises
    ------
    ValueError
        For anything else (the names are case-sensitive, as in TensorFlow).
    """
    if isinstance(layout, str) and layout in LAYOUTS:
        return layout
    raise ValueError(f"layout must be 'NHWC' (activations (m, H, W, C)) or 'NCHW' "
                     f"(activations (m, C, H, W)), got {layout!r}")


def nhwc_shape(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The NHWC shape of an NCHW shape ``(m, C, H, W)``."""
    m, c, h, w = shape
    return m, h, w, c


def nchw_shape(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The NCHW shape of an NHWC shape ``(m, H, W, C)``."""
    m, h, w, c = shape
    return m, c, h, w


def _float_dtype(a: npt.NDArray[Any], dtype: npt.DTypeLike | None) -> np.dtype[Any]:
    return a.dtype if dtype is None else np.dtype(dtype)


def _transpose_into(src: npt.NDArray[Any], perm: tuple[int, int, int, int],
                    out: npt.NDArray[Any], num_threads: int) -> None:
    # out = src.transpose(perm), as 2-D transposes of a batch when src is a
    # plain C-contiguous float array of out's dtype, else by NumPy (which
    # casts and follows any strides in the same pass).
    if (type(src) is np.ndarray and src.flags.c_contiguous and src.dtype == out.dtype
            and out.dtype in (_F32, _F64) and src.size):
        m = src.shape[0]
        if perm == (0, 2, 3, 1):   # (m, C, H, W) -> (m, H, W, C)
            src3 = src.reshape(m, src.shape[1], src.shape[2] * src.shape[3])
        else:                      # (m, H, W, C) -> (m, C, H, W)
            src3 = src.reshape(m, src.shape[1] * src.shape[2], src.shape[3])
        out3 = out.reshape(m, src3.shape[2], src3.shape[1])
        kernel = _transpose.transpose_batched["float" if out.dtype == _F32 else "double"]
        kernel(src3, out3, num_threads if src.size >= PARALLEL_MIN_ELEMENTS else 1)
        return
    np.copyto(out, src.transpose(perm), casting="unsafe")


def _convert(a: npt.ArrayLike, name: str, perm: tuple[int, int, int, int],
             dtype: npt.DTypeLike | None, out: FloatArray | None,
             num_threads: int | None) -> npt.NDArray[Any]:
    arr = as_array(a, name, 4)
    shape = tuple(arr.shape[i] for i in perm)
    dt = _float_dtype(arr, dtype)
    if out is None:
        result = np.empty(shape, dtype=dt)
    else:
        if out.shape != shape or out.dtype != dt or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous array of shape {shape} and dtype "
                             f"{dt}, got shape {out.shape}, dtype {out.dtype}")
        result = out
    if result.size:
        _transpose_into(arr, perm, result, resolve_num_threads(num_threads))
    return result


def to_nhwc(x: npt.ArrayLike, name: str = "x", dtype: npt.DTypeLike | None = None, *,
            out: FloatArray | None = None,
            num_threads: int | None = None) -> npt.NDArray[Any]:
    """NCHW activations ``(m, C, H, W)`` as a new C-contiguous NHWC array ``(m, H, W, C)``.

    Parameters
    ----------
    x : array_like, shape (m, C, H, W)
        Any memory layout; never modified.
    name : str
        The caller's name of ``x``, used in error messages.
    dtype : dtype, optional
        The result's dtype (cast in the same pass); default ``x``'s.
    out : ndarray, shape (m, H, W, C), optional
        C-contiguous array of the result dtype to write into.
    num_threads : int, optional
        As for :func:`cyconv.conv2d`.

    Returns
    -------
    ndarray, shape (m, H, W, C)

    Raises
    ------
    ValueError
        If ``x`` is not 4-D (the message names ``name``) or ``out`` does not fit.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(24.0).reshape(1, 2, 3, 4)
    >>> y = to_nhwc(x)
    >>> y.shape, bool(np.array_equal(y, x.transpose(0, 2, 3, 1)))
    ((1, 3, 4, 2), True)
    """
    return _convert(x, name, (0, 2, 3, 1), dtype, out, num_threads)


def to_nchw(x: npt.ArrayLike, name: str = "x", dtype: npt.DTypeLike | None = None, *,
            out: FloatArray | None = None,
            num_threads: int | None = None) -> npt.NDArray[Any]:
    """NHWC activations ``(m, H, W, C)`` as a new C-contiguous NCHW array ``(m, C, H, W)``.

    Parameters are as for :func:`to_nhwc`, with the layouts exchanged.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(24.0).reshape(1, 3, 4, 2)
    >>> bool(np.array_equal(to_nhwc(to_nchw(x)), x))
    True
    """
    return _convert(x, name, (0, 3, 1, 2), dtype, out, num_threads)


def oihw_to_hwio(w: npt.ArrayLike, name: str = "w",
                 dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
    """PyTorch's filters ``(C_out, C_in, f_h, f_w)`` as cyconv's ``(f_h, f_w, C_in, C_out)``.

    A new C-contiguous array (filters are small: NumPy's copy). ``name`` is
    the caller's name of ``w`` for error messages.

    Examples
    --------
    >>> import numpy as np
    >>> oihw_to_hwio(np.zeros((8, 3, 5, 5))).shape
    (5, 5, 3, 8)
    """
    arr = as_array(w, name, 4)
    return np.ascontiguousarray(arr.transpose(2, 3, 1, 0), dtype=_float_dtype(arr, dtype))


def hwio_to_oihw(w: npt.ArrayLike, name: str = "dw",
                 dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
    """cyconv's filters ``(f_h, f_w, C_in, C_out)`` as PyTorch's ``(C_out, C_in, f_h, f_w)``.

    Examples
    --------
    >>> import numpy as np
    >>> hwio_to_oihw(np.zeros((5, 5, 3, 8))).shape
    (8, 3, 5, 5)
    """
    arr = as_array(w, name, 4)
    return np.ascontiguousarray(arr.transpose(3, 2, 0, 1), dtype=_float_dtype(arr, dtype))
