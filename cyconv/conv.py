"""2-D convolution, forward and backward: validate -> allocate -> call ``_conv``."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional, overload

import numpy as np
import numpy.typing as npt

from cyconv import _dispatch, _train
from cyconv._layout import hwio_to_oihw, oihw_to_hwio, parse_layout, to_nchw, to_nhwc
from cyconv._args import (
    MAX_EXTENT,
    _is_int,
    check_output_size,
    FloatArray,
    Int,
    IntPair,
    Padding,
    Pads,
    as_array,
    as_float_array,
    conv_output_size,
    effective_num_threads,
    MAX_OUTPUT_PIXELS,
    output_size,
    parse_pair,
    parse_padding,
    resolve_num_threads,
    result_dtype,
)

if TYPE_CHECKING:
    from cyconv._conv import _FusedFunction

__all__ = ["conv2d", "conv2d_backward", "cpu_level"]

_Gradients = tuple[Optional[FloatArray], Optional[FloatArray], Optional[FloatArray]]
"""``(dx, dw, db)`` of :func:`conv2d_backward`; those not in ``grads`` are None."""


def parse_groups(groups: object, c_in: int, c_out: int, op: str) -> int:
    """Check ``groups`` (an int >= 1 dividing both channel counts)."""
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be an int >= 1, got {groups!r}")
    g = int(groups)
    if g < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups!r}")
    if c_in % g or c_out % g:
        raise ValueError(f"{op}: groups={g} must divide the input channels ({c_in}) and the "
                         f"output channels ({c_out})")
    return g


def _geometry(op: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: IntPair,
              padding: Padding) -> tuple[tuple[int, int], Pads, tuple[int, int]]:
    # (stride, pads, (o_h, o_w)) without dilation and groups (cyconv.dask's).
    return _geometry_dg(op, x_shape, w_shape, stride, padding)[:3]


def _geometry_dg(op: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: IntPair,
                 padding: Padding, dilation: IntPair = 1, groups: Int = 1
                 ) -> tuple[tuple[int, int], Pads, tuple[int, int], tuple[int, int], int]:
    # Shared by forward and backward: (stride, pads, (o_h, o_w), dilation, groups).
    m, n_h, n_w, c_in = x_shape
    f_h, f_w, w_c_in, c_out = w_shape
    g = parse_groups(groups, c_in, c_out, op)
    if w_c_in * g != c_in:
        if g == 1:
            raise ValueError(f"{op}: w has {w_c_in} input channels (w.shape[2]) but x has "
                             f"{c_in} (x.shape[3]); w must be (f_h, f_w, C_in, C_out) with "
                             f"layout='NHWC' (the default; layout='NCHW' takes x (m, C_in, H, W) "
                             f"and w (C_out, C_in, f_h, f_w))")
        raise ValueError(f"{op}: w has {w_c_in} input channels (w.shape[2]) but x has "
                         f"{c_in} (x.shape[3]) in groups={g}; w must be "
                         f"(f_h, f_w, C_in / groups, C_out) = (f_h, f_w, {c_in // g}, C_out)")
    if f_h < 1 or f_w < 1:
        raise ValueError(f"{op}: w must have a kernel of at least 1x1, got shape {w_shape}")
    s = parse_pair(stride, "stride")
    d = parse_pair(dilation, "dilation")
    pads = parse_padding(padding, (n_h, n_w), (f_h, f_w), s, d)
    o_h = conv_output_size(n_h, f_h, pads[0], s[0], "height (axis 1)", op, d[0])
    o_w = conv_output_size(n_w, f_w, pads[1], s[1], "width (axis 2)", op, d[1])
    check_output_size(op, (o_h, o_w), pads, s)
    return s, pads, (o_h, o_w), d, g


# The fast paths below: tiny inputs spend more time in the argument checks
# than in the kernel. When the arguments are already in the form the kernels
# take (plain C-contiguous ndarrays of one float dtype, int stride and
# padding), the checks could only pass and convert nothing, so they are
# skipped; anything else returns None and goes through the full checks.
# The kernels are indexed per CPU level and dtype once, skipping Cython's
# fused-type dispatch.

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_Kernels = tuple["_FusedFunction[Any]", "_FusedFunction[Any]", "_FusedFunction[Any]"]
_KERNELS: dict[tuple[int, np.dtype[Any]], _Kernels] = {}


def _kernels(level: int, dtype: np.dtype[Any]) -> _Kernels:
    """(forward, dx, dw) of the conv module at ``level`` for ``dtype``."""
    k = _KERNELS.get((level, dtype))
    if k is None:
        mod = _dispatch.module("_conv", level)
        name = "float" if dtype == _F32 else "double"
        k = (mod.conv2d_forward[name], mod.conv2d_backward_dx[name],
             mod.conv2d_backward_dw[name])
        _KERNELS[level, dtype] = k
    return k


# The kernel of each (dtype, channels) is looked up once per CPU level, in
# _dispatch.PLANS (emptied when the level changes): small layers would spend
# more time choosing a kernel than running it otherwise.
def _forward(dtype: np.dtype[Any], c_out: int) -> _FusedFunction[Any]:
    key = ("fwd", dtype, c_out)
    plan = _dispatch.PLANS.get(key)
    if plan is None:
        plan = _dispatch.PLANS[key] = _kernels(_dispatch.conv_level(dtype.itemsize, c_out), dtype)[0]
    return plan


def _backward_dx(dtype: np.dtype[Any], c_in: int, c_out: int) -> tuple[_FusedFunction[Any], bool]:
    key = ("dx", dtype, c_in, c_out)
    plan = _dispatch.PLANS.get(key)
    if plan is None:
        level, dot = _dispatch.dx_plan(dtype.name, dtype.itemsize, c_in, c_out)
        plan = _dispatch.PLANS[key] = (_kernels(level, dtype)[1], dot)
    return plan


def _backward_dw(dtype: np.dtype[Any], c_out: int) -> _FusedFunction[Any]:
    key = ("dw", dtype, c_out)
    plan = _dispatch.PLANS.get(key)
    if plan is None:
        plan = _dispatch.PLANS[key] = _kernels(_dispatch.conv_level(dtype.itemsize, c_out), dtype)[2]
    return plan


_DEPTHWISE = ("depthwise_forward", "depthwise_backward_dx", "depthwise_backward_dw")


def _depthwise(dtype: np.dtype[Any], channels: int, which: int) -> _FusedFunction[Any]:
    """The depthwise kernel ``which`` (0 forward, 1 dx, 2 dw) for ``channels`` per pixel.

    Its vectors run over every channel of a pixel, as the pools' do: the widest
    level whose vector the channels fill (cyconv._dispatch.pool_level).
    """
    key = ("dwc", dtype, channels, which)
    plan = _dispatch.PLANS.get(key)
    if plan is None:
        mod = _dispatch.module("_conv", _dispatch.pool_level(dtype.itemsize, channels))
        name = "float" if dtype == _F32 else "double"
        kernel: _FusedFunction[Any] = getattr(mod, _DEPTHWISE[which])[name]
        plan = _dispatch.PLANS[key] = kernel
    return plan


def _is_depthwise(c_in: int, groups: int) -> bool:
    # groups == C_in > 1: one input channel per group (any channel multiplier).
    return groups > 1 and groups == c_in


def _run_forward(x: FloatArray, w: FloatArray, bias: FloatArray, z: FloatArray,
                 s: tuple[int, int], p: tuple[int, int], d: tuple[int, int], g: int,
                 relu: bool, n_threads: int) -> None:
    # z = conv2d(x, w) + bias on ready C-contiguous arrays: the depthwise kernel or the tile.
    if _is_depthwise(x.shape[3], g):
        _depthwise(z.dtype, z.shape[3], 0)(x, w, bias, z, s[0], s[1], p[0], p[1], d[0], d[1],
                                           relu, n_threads)
    else:
        _forward(z.dtype, z.shape[3] // g)(x, w, bias, z, s[0], s[1], p[0], p[1], d[0], d[1],
                                           g, relu, n_threads)


def _run_dx(dz: FloatArray, w: FloatArray, dx: FloatArray, s: tuple[int, int],
            p: tuple[int, int], d: tuple[int, int], g: int, n_threads: int) -> None:
    # dx of conv2d (overwritten) on ready C-contiguous arrays.
    if _is_depthwise(dx.shape[3], g):
        _depthwise(dx.dtype, dz.shape[3], 1)(dz, w, dx, s[0], s[1], p[0], p[1], d[0], d[1],
                                             n_threads)
    else:
        kernel, dot = _backward_dx(dx.dtype, dx.shape[3] // g, dz.shape[3] // g)
        kernel(dz, w, dx, s[0], s[1], p[0], p[1], d[0], d[1], g, dot, n_threads)


def _run_dw(x: FloatArray, dz: FloatArray, dw: FloatArray, db: FloatArray,
            s: tuple[int, int], p: tuple[int, int], d: tuple[int, int], g: int,
            n_threads: int) -> None:
    # dw and db of conv2d (overwritten) on ready C-contiguous arrays.
    if _is_depthwise(x.shape[3], g):
        _depthwise(dw.dtype, dz.shape[3], 2)(x, dz, dw, db, s[0], s[1], p[0], p[1], d[0], d[1],
                                             n_threads)
    else:
        _backward_dw(dw.dtype, dz.shape[3] // g)(x, dz, dw, db, s[0], s[1], p[0], p[1], d[0],
                                                 d[1], g, n_threads)


def _fast_arrays(*arrays: Any) -> np.dtype[Any] | None:
    # The dtype shared by plain, non-empty, C-contiguous 4-D ndarrays of
    # exactly np.dtype(float32 or float64), compared by identity: byte-swapped
    # dtypes, dtypes with metadata etc. take the slow path.
    if type(arrays[0]) is not np.ndarray:
        return None
    dtype: np.dtype[Any] = arrays[0].dtype
    if dtype is not _F32 and dtype is not _F64:
        return None
    for a in arrays:
        if (type(a) is not np.ndarray or a.dtype is not dtype or a.ndim != 4
                or not a.size or not a.flags.c_contiguous):
            return None
    return dtype


def _fast_geometry(x: Any, w: Any, stride: Any, padding: Any,
                   dilation: Any) -> tuple[int, int] | None:
    # (o_h, o_w) for int stride, dilation >= 1 and int padding >= 0, or None.
    if (type(stride) is not int or type(padding) is not int or type(dilation) is not int
            or stride < 1 or padding < 0 or dilation < 1 or stride >= MAX_EXTENT
            or padding >= MAX_EXTENT or dilation >= MAX_EXTENT):
        return None
    _, n_h, n_w, c_in = x.shape
    f_h, f_w, w_c_in, _ = w.shape
    pads = (padding, padding)
    o_h = output_size(n_h, f_h, pads, stride, dilation)
    o_w = output_size(n_w, f_w, pads, stride, dilation)
    if w_c_in != c_in or o_h < 1 or o_w < 1 or o_h * o_w > MAX_OUTPUT_PIXELS:
        return None
    return o_h, o_w


def _fast_num_threads(num_threads: Any) -> int | None:
    # As resolve_num_threads, or None for anything it might reject.
    if num_threads is None:
        return effective_num_threads()
    if type(num_threads) is int and num_threads >= 1:
        return num_threads
    return None


def _fast_conv2d(x: Any, w: Any, b: Any, stride: Any, padding: Any, activation: Any,
                 num_threads: Any, dilation: Any = 1) -> FloatArray | None:
    """``conv2d`` for arguments the kernel takes as they are, else None."""
    dtype = _fast_arrays(x, w)
    if dtype is None or (activation is not None and activation != "relu"):
        return None
    c_out = w.shape[3]
    if b is not None and not (type(b) is np.ndarray and b.dtype is dtype
                              and b.shape == (c_out,) and b.flags.c_contiguous):
        return None
    o_hw = _fast_geometry(x, w, stride, padding, dilation)
    n_threads = _fast_num_threads(num_threads)
    if o_hw is None or n_threads is None:
        return None
    bias = np.zeros(c_out, dtype=dtype) if b is None else b  # as _bias
    z = np.empty((x.shape[0], o_hw[0], o_hw[1], c_out), dtype=dtype)
    kernel = _dispatch.PLANS.get(("fwd", dtype, c_out)) or _forward(dtype, c_out)
    kernel(x, w, bias, z, stride, stride, padding, padding, dilation, dilation, 1,
           activation is not None, n_threads)
    return z


def _fast_conv2d_backward(dz: Any, x: Any, w: Any, stride: Any, padding: Any, num_threads: Any,
                          grads: Any, dilation: Any = 1) -> _Gradients | None:
    """``conv2d_backward`` for arguments the kernels take as they are, else None."""
    dtype = _fast_arrays(dz, x, w)
    if dtype is None:
        return None
    if grads is not _GRADS and not (type(grads) is tuple and grads
                                    and all(g in _GRADS for g in grads)):
        return None
    o_hw = _fast_geometry(x, w, stride, padding, dilation)
    n_threads = _fast_num_threads(num_threads)
    c_out = w.shape[3]
    if o_hw is None or n_threads is None or dz.shape != (x.shape[0], *o_hw, c_out):
        return None
    dx = dw = db = None
    if "dx" in grads:
        dx = np.empty(x.shape, dtype=dtype)  # the kernels overwrite dx, dw and db
        kernel, dot = (_dispatch.PLANS.get(("dx", dtype, x.shape[3], c_out))
                       or _backward_dx(dtype, x.shape[3], c_out))
        kernel(dz, w, dx, stride, stride, padding, padding, dilation, dilation, 1, dot, n_threads)
    if "dw" in grads:
        dw = np.empty(w.shape, dtype=dtype)
        db_out = np.empty(c_out, dtype=dtype)
        kernel = _dispatch.PLANS.get(("dw", dtype, c_out)) or _backward_dw(dtype, c_out)
        kernel(x, dz, dw, db_out, stride, stride, padding, padding, dilation, dilation, 1,
               n_threads)
        db = db_out if "db" in grads else None
    elif "db" in grads:
        db = dz.sum(axis=(0, 1, 2))  # as the full path
    return dx, dw, db


def _bias(b: npt.NDArray[Any] | None, c_out: int,
          dtype: np.dtype[np.floating[Any]]) -> FloatArray:
    if b is None:
        return np.zeros(c_out, dtype=dtype)
    b = as_array(b, "b")
    if b.shape not in ((c_out,), (1, 1, 1, c_out)):
        raise ValueError(f"b must have shape ({c_out},) or (1, 1, 1, {c_out}) to match "
                         f"w's C_out={c_out}, got {b.shape}")
    return as_float_array(b.reshape(c_out), dtype)


def _parse_activation(activation: object) -> bool:
    # True for "relu"; the only activation the kernels fuse so far.
    if activation is None:
        return False
    if isinstance(activation, str) and activation.lower() == "relu":
        return True
    raise ValueError(f"activation must be None or 'relu', got {activation!r}")


def conv2d(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *,
           stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1,
           groups: Int = 1, activation: str | None = None, out: FloatArray | None = None,
           num_threads: Int | None = None, layout: str = "NHWC") -> FloatArray:
    """2-D convolution (cross-correlation, as in CNNs) of NHWC (or NCHW) data.

    Parameters
    ----------
    x : array_like, shape (m, n_H, n_W, C_in)
        Input activations; ``(m, C_in, n_H, n_W)`` under ``layout="NCHW"``.
        Any memory layout; never modified.
    w : array_like, shape (f_h, f_w, C_in / groups, C_out)
        Filters (TensorFlow's HWIO; grouped as TensorFlow groups them);
        ``(C_out, C_in / groups, f_h, f_w)`` (PyTorch's OIHW) under
        ``layout="NCHW"``.
    b : array_like, shape (C_out,) or (1, 1, 1, C_out), optional
        Bias; none if omitted.
    stride : int or (int, int), default 1
        Step of the window along height and width, each >= 1.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same", default 0
        Zero padding: on all sides, per axis ``(p_h, p_w)``, or explicitly
        ``((top, bottom), (left, right))``. ``"same"`` follows TensorFlow/Keras:
        ``out = ceil(n / s)``, odd totals put the extra pixel at the end
        (for the window's extent ``d * (f - 1) + 1``).
    dilation : int or (int, int), default 1
        Spacing ``d`` of the filter taps along height and width, each >= 1:
        tap ``k`` reads the input ``d * k`` pixels after the window's first
        (an "atrous" convolution; 1 is the ordinary one).
    groups : int, default 1
        Split the channels into ``groups`` equal groups (``groups`` must divide
        ``C_in`` and ``C_out``): output channels ``g*C_out/groups ..`` read only
        the input channels ``g*C_in/groups ..``, through the filters
        ``w[..., g*C_out/groups ..]``. ``groups == C_in`` is a depthwise
        convolution with channel multiplier ``C_out / C_in`` (output channel
        ``c * mult + j`` reads input channel ``c``).
    activation : {None, "relu"}, default None
        ``"relu"`` returns ``max(z, 0)`` (``v <= 0`` gives +0, NaN stays NaN),
        applied as each output tile is stored: no pass of its own. Pass the
        result as ``a`` to :func:`conv2d_backward` with the same activation.
    out : ndarray, shape (m, n_H_out, n_W_out, C_out), optional
        C-contiguous, writeable array of the result dtype to write into. It
        must not share memory with any input (ValueError otherwise).
    num_threads : int, optional
        OpenMP threads; default every usable core (``OMP_NUM_THREADS``,
        CPU affinity, cgroup quota and ``threadpoolctl`` limits honoured).
    layout : {"NHWC", "NCHW"}, default "NHWC"
        The order of ``x``, ``z`` (and ``out``) and of ``w`` as above. NCHW
        inputs are transposed to NHWC once (in parallel), the NHWC kernels
        run, and ``z`` is transposed back: the values are exactly those of
        the NHWC call on the transposed arrays. A bias may also be given as
        ``(1, C_out, 1, 1)`` under NCHW.

    Returns
    -------
    z : ndarray, shape (m, n_H_out, n_W_out, C_out)
        (``(m, C_out, n_H_out, n_W_out)`` under NCHW.)
        ``n_out = floor((n + p_begin + p_end - d*(f - 1) - 1) / s) + 1`` per axis. dtype
        is the promotion of the inputs' float dtypes (float32 or float64;
        integer and bool inputs compute in float64).

    Raises
    ------
    TypeError
        Non-numeric or complex input, bad ``stride``/``padding`` types.
    ValueError
        Wrong ndim, channel mismatch, window larger than the padded input,
        stride < 1, negative padding, wrong bias length, bad ``out``, a
        ``layout`` other than "NHWC" and "NCHW". Under NCHW the messages
        name the layout.

    Notes
    -----
    ``z[i, h, w, co] = sum_{kh, kw, ci} xpad[i, h*s_h + kh*d_h, w*s_w + kw*d_w, g*K + ci]
    * w[kh, kw, ci, co] + b[co]`` with ``K = C_in / groups`` and ``g`` the group of
    ``co`` (``co // (C_out / groups)``; 0 without groups).

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> w = np.ones((3, 3, 1, 2))
    >>> cyconv.conv2d(x, w, padding="same").shape
    (1, 4, 4, 2)
    >>> cyconv.conv2d(x, w)[0, :, :, 0]
    array([[45., 54.],
           [81., 90.]])
    >>> cyconv.conv2d(x, np.ones((2, 2, 1, 1)), dilation=3)[0, :, :, 0]  # corners only
    array([[30.]])
    >>> x2 = np.ones((1, 5, 5, 4)); w2 = np.ones((3, 3, 1, 8))   # depthwise, multiplier 2
    >>> cyconv.conv2d(x2, w2, groups=4).shape
    (1, 3, 3, 8)

    The same convolution in PyTorch's layouts:

    >>> x_nchw, w_oihw = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
    >>> cyconv.conv2d(x_nchw, w_oihw, layout="NCHW")[0, 0]
    array([[45., 54.],
           [81., 90.]])
    """
    if type(layout) is not str or layout != "NHWC":
        return _conv2d_nchw(x, w, b, out, layout, stride=stride, padding=padding,
                            dilation=dilation, groups=groups, activation=activation,
                            num_threads=num_threads)
    if out is None and type(groups) is int and groups == 1:
        z = _fast_conv2d(x, w, b, stride, padding, activation, num_threads, dilation)
        if z is not None:
            return z
    relu = _parse_activation(activation)
    x = as_array(x, "x", 4)
    w = as_array(w, "w", 4)
    b_arr = None if b is None else as_array(b, "b")
    dtype = result_dtype(x=x, w=w) if b_arr is None else result_dtype(x=x, w=w, b=b_arr)
    s, pads, (o_h, o_w), d, g = _geometry_dg("conv2d", x.shape, w.shape, stride, padding,
                                          dilation, groups)
    m, c_out = x.shape[0], w.shape[3]
    bias = _bias(b_arr, c_out, dtype)
    shape = (m, o_h, o_w, c_out)
    n_threads = resolve_num_threads(num_threads)
    if out is None:
        z = np.empty(shape, dtype=dtype)
    else:
        z = _check_out(out, shape, dtype, x=x, w=w, b=b_arr)
    if z.size == 0:
        return z
    if x.size == 0:  # no input channels, or every window lies in the padding
        z[...] = np.where(bias <= 0, 0, bias) if relu else bias
        return z
    _run_forward(as_float_array(x, dtype), as_float_array(w, dtype), bias, z,
                 (s[0], s[1]), (pads[0][0], pads[1][0]), d, g, relu, n_threads)
    return z


def _check_out(out: object, shape: tuple[int, ...], dtype: np.dtype[Any],
               **inputs: npt.NDArray[Any] | None) -> FloatArray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out must have shape {shape} and dtype {dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    for name, a in inputs.items():
        if a is not None and np.may_share_memory(out, a):
            raise ValueError(f"out must not share memory with the input {name}")
    return out


_GRADS = ("dx", "dw", "db")


@overload
def conv2d_backward(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike, *,
                    stride: IntPair = ..., padding: Padding = ..., dilation: IntPair = ...,
                    groups: Int = ..., activation: str | None = ..., a: npt.ArrayLike | None = ...,
                    num_threads: Int | None = ...,
                    layout: str = ...) -> tuple[FloatArray, FloatArray, FloatArray]: ...
@overload
def conv2d_backward(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike, *,
                    stride: IntPair = ..., padding: Padding = ..., dilation: IntPair = ...,
                    groups: Int = ..., activation: str | None = ..., a: npt.ArrayLike | None = ...,
                    num_threads: Int | None = ..., layout: str = ...,
                    grads: Iterable[str] | str) -> _Gradients: ...
def conv2d_backward(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike, *,
                    stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1,
                    groups: Int = 1, activation: str | None = None,
                    a: npt.ArrayLike | None = None, num_threads: Int | None = None,
                    layout: str = "NHWC", grads: Iterable[str] | str = _GRADS) -> _Gradients:
    """Gradients of :func:`conv2d` with respect to its input, filters and bias.

    Parameters
    ----------
    dz : array_like, shape (m, n_H_out, n_W_out, C_out)
        Gradient of the loss with respect to ``conv2d(x, w, b, ...)``.
    x : array_like, shape (m, n_H, n_W, C_in)
        The forward input.
    w : array_like, shape (f_h, f_w, C_in / groups, C_out)
        The forward filters.
    stride, padding, dilation, groups, num_threads, layout
        As given to :func:`conv2d`. Under ``layout="NCHW"``, ``dz``, ``x``,
        ``a`` and ``dx`` are ``(m, C, H, W)`` and ``w`` and ``dw`` are
        ``(C_out, C_in / groups, f_h, f_w)``.
    activation : {None, "relu"}, default None
        As given to :func:`conv2d`. With ``"relu"``, ``dz`` is the gradient
        with respect to the activation's output ``a`` and is masked by
        ``a > 0`` in one parallel pass before the kernels (no mask array).
    a : array_like, shape of ``dz``
        With ``activation="relu"``: the output of ``conv2d(..., activation="relu")``.
    grads : collection of {"dx", "dw", "db"}, default all three
        The gradients to compute; the others are returned as None (e.g. the
        first layer of a network never needs ``dx``).

    Returns
    -------
    dx : ndarray, shape (m, n_H, n_W, C_in), or None
    dw : ndarray, shape (f_h, f_w, C_in / groups, C_out), or None
    db : ndarray, shape (C_out,), or None

    Raises
    ------
    TypeError, ValueError
        As :func:`conv2d`; also if ``dz`` does not have the forward output's shape.

    Notes
    -----
    ``dx[i, h*s_h + kh*d_h - p_t, w*s_w + kw*d_w - p_l, ci] += w[kh, kw, ci, co] * dz[i, h, w, co]``,
    ``dw[kh, kw, ci, co] = sum_{i, h, w} xpad[i, h*s_h + kh*d_h, w*s_w + kw*d_w, ci]
    * dz[i, h, w, co]``,
    ``db[co] = sum_{i, h, w} dz[i, h, w, co]``. Results are bitwise identical
    for any ``num_threads``: the reductions run in an order fixed by the shapes.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x, w = np.ones((2, 5, 5, 3)), np.ones((3, 3, 3, 4))
    >>> dz = np.ones((2, 3, 3, 4))
    >>> dx, dw, db = cyconv.conv2d_backward(dz, x, w)
    >>> dx.shape, dw.shape, db.tolist()
    ((2, 5, 5, 3), (3, 3, 3, 4), [18.0, 18.0, 18.0, 18.0])
    >>> cyconv.conv2d_backward(dz, x, w, grads=("dw",))[0] is None
    True
    >>> dx, dw, db = cyconv.conv2d_backward(dz.transpose(0, 3, 1, 2), x.transpose(0, 3, 1, 2),
    ...                                     w.transpose(3, 2, 0, 1), layout="NCHW")
    >>> dx.shape, dw.shape
    ((2, 3, 5, 5), (4, 3, 3, 3))
    """
    if type(layout) is not str or layout != "NHWC":
        return _conv2d_backward_nchw(dz, x, w, a, layout, grads, stride=stride,
                                     padding=padding, dilation=dilation, groups=groups,
                                     activation=activation, num_threads=num_threads)
    if activation is None and type(groups) is int and groups == 1:
        grads_out = _fast_conv2d_backward(dz, x, w, stride, padding, num_threads, grads,
                                          dilation)
        if grads_out is not None:
            return grads_out
    relu = _parse_activation(activation)
    if relu and a is None:
        raise ValueError("activation='relu' needs a, the output of conv2d(..., activation='relu')")
    dz = as_array(dz, "dz", 4)
    x = as_array(x, "x", 4)
    w = as_array(w, "w", 4)
    dtype = result_dtype(dz=dz, x=x, w=w)
    s, pads, (o_h, o_w), d, g = _geometry_dg("conv2d_backward", x.shape, w.shape, stride,
                                          padding, dilation, groups)
    m, c_out = x.shape[0], w.shape[3]
    if dz.shape != (m, o_h, o_w, c_out):
        raise ValueError(f"dz must have the forward output's shape {(m, o_h, o_w, c_out)}, "
                         f"got {dz.shape}")
    wanted = _parse_grads(grads)
    n_threads = resolve_num_threads(num_threads)
    dx = np.zeros(x.shape, dtype=dtype) if "dx" in wanted else None
    dw = np.zeros(w.shape, dtype=dtype) if "dw" in wanted else None
    db = np.zeros(c_out, dtype=dtype) if "db" in wanted else None
    if relu and a is not None:  # a is None was rejected above
        a_arr = as_array(a, "a", 4)
        if a_arr.shape != dz.shape:
            raise ValueError(f"a must have dz's shape {dz.shape}, got {a_arr.shape}")
        if dz.size:
            dz = _relu_masked(as_float_array(dz, dtype), as_float_array(a_arr, dtype), n_threads)
    if dz.size == 0 or x.size == 0:
        if dz.size and db is not None:  # no input channels: only db is non-trivial
            db[:] = dz.sum(axis=(0, 1, 2), dtype=dtype)
        return dx, dw, db
    dz_c = as_float_array(dz, dtype)
    if dx is not None:
        _run_dx(dz_c, as_float_array(w, dtype), dx, s, (pads[0][0], pads[1][0]), d, g,
                n_threads)
    if dw is not None:
        db_out = db if db is not None else np.empty(c_out, dtype=dtype)
        _run_dw(as_float_array(x, dtype), dz_c, dw, db_out, s, (pads[0][0], pads[1][0]), d, g,
                n_threads)
    elif db is not None:
        db[:] = dz_c.sum(axis=(0, 1, 2))
    return dx, dw, db


# layout="NCHW": transpose the inputs once, run the NHWC function, transpose
# the results back. The keywords other than the arrays pass through untouched
# (the NHWC function checks them); the shape checks that name axes are made
# here in NCHW terms first, and any other ValueError of the NHWC function
# gets a note saying that it speaks of the transposes.

def _nchw_error(error: ValueError) -> ValueError:
    return ValueError(f"{error} (layout='NCHW': the arrays were checked as their NHWC "
                      f"transposes x (m, H, W, C_in), w (f_h, f_w, C_in, C_out))")


def _check_nchw(op: str, x: npt.NDArray[Any], w: npt.NDArray[Any], groups: object = 1) -> None:
    # (groups is checked by the NHWC call; a bad value leaves the plain rule)
    g = groups if type(groups) is int and groups >= 1 else 1
    if w.shape[1] * g != x.shape[1]:
        raise ValueError(f"{op}: w has {w.shape[1]} input channels (w.shape[1]) but x has "
                         f"{x.shape[1]} (x.shape[1]); with layout='NCHW' x must be "
                         f"(m, C_in, H, W) and w (C_out, C_in, f_h, f_w)")


def _conv2d_nchw(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None,
                 out: FloatArray | None, layout: object, **kwargs: Any) -> FloatArray:
    parse_layout(layout)   # "NCHW" here; anything else raises
    x = as_array(x, "x", 4)
    w = as_array(w, "w", 4)
    _check_nchw("conv2d", x, w, kwargs.get("groups", 1))
    b_arr = None if b is None else as_array(b, "b")
    dtype = result_dtype(x=x, w=w) if b_arr is None else result_dtype(x=x, w=w, b=b_arr)
    if b_arr is not None and b_arr.shape == (1, w.shape[0], 1, 1):
        b_arr = b_arr.reshape(w.shape[0])
    return _run_nchw(conv2d, "z", x, w, b_arr, dtype, out, _nchw_error, kwargs)


def _run_nchw(fn: Any, name: str, x: npt.NDArray[Any], w: npt.NDArray[Any],
              b_arr: npt.NDArray[Any] | None, dtype: np.dtype[Any], out: FloatArray | None,
              error: Any, kwargs: dict[str, Any]) -> FloatArray:
    # fn (conv2d or conv_transpose2d) on the NHWC transposes of x and of the
    # OIHW-ordered w; its result transposed back to NCHW (into out if given).
    n_threads = resolve_num_threads(kwargs["num_threads"])
    try:
        z = fn(to_nhwc(x, "x", dtype, num_threads=n_threads), oihw_to_hwio(w, "w", dtype),
               b_arr, **kwargs)
    except ValueError as e:
        raise error(e) from None
    if out is not None:
        m, o_h, o_w, c_out = z.shape
        _check_out(out, (m, c_out, o_h, o_w), z.dtype, x=x, w=w, b=b_arr)
    return to_nchw(z, name, out=out, num_threads=n_threads)


def _run_nchw_backward(fn: Any, dz: npt.NDArray[Any], x: npt.NDArray[Any],
                       w: npt.NDArray[Any], dtype: np.dtype[Any], wanted: set[str],
                       n_threads: int, error: Any, kwargs: dict[str, Any],
                       **extra: Any) -> _Gradients:
    # fn (conv2d_backward or conv_transpose2d_backward) on the NHWC
    # transposes; dx back to NCHW, dw back to OIHW order.
    if "dw" in wanted:
        x_t = to_nhwc(x, "x", dtype, num_threads=n_threads)
    else:   # only x's shape is read: no transpose
        x_t = np.broadcast_to(np.zeros((), dtype=dtype), (x.shape[0], *x.shape[2:], x.shape[1]))
    try:
        dx, dw, db = fn(to_nhwc(dz, "dz", dtype, num_threads=n_threads), x_t,
                        oihw_to_hwio(w, "w", dtype), grads=tuple(wanted), **extra, **kwargs)
    except ValueError as e:
        raise error(e) from None
    return (None if dx is None else to_nchw(dx, "dx", num_threads=n_threads),
            None if dw is None else hwio_to_oihw(dw, "dw"), db)


def _conv2d_backward_nchw(dz: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike,
                          a: npt.ArrayLike | None, layout: object,
                          grads: Iterable[str] | str, **kwargs: Any) -> _Gradients:
    parse_layout(layout)
    dz = as_array(dz, "dz", 4)
    x = as_array(x, "x", 4)
    w = as_array(w, "w", 4)
    _check_nchw("conv2d_backward", x, w, kwargs.get("groups", 1))
    if dz.shape[:2] != (x.shape[0], w.shape[0]):
        raise ValueError(f"dz must have the forward output's shape (m, C_out, n_H_out, n_W_out) "
                         f"= ({x.shape[0]}, {w.shape[0]}, ...) with layout='NCHW', "
                         f"got {dz.shape}")
    dtype = result_dtype(dz=dz, x=x, w=w)
    wanted = _parse_grads(grads)
    n_threads = resolve_num_threads(kwargs["num_threads"])
    a_t = None if a is None else to_nhwc(a, "a", dtype, num_threads=n_threads)
    return _run_nchw_backward(conv2d_backward, dz, x, w, dtype, wanted, n_threads,
                              _nchw_error, kwargs, a=a_t)


def _relu_masked(dz: FloatArray, a: FloatArray, n_threads: int) -> FloatArray:
    # dz where a > 0, else 0: one compiled parallel pass (the ReLU layer's).
    out = np.empty_like(dz)
    name = "float" if dz.dtype == _F32 else "double"
    _train.relu_backward[name](dz.reshape(-1), a.reshape(-1), out.reshape(-1), n_threads)
    return out


def _parse_grads(grads: Iterable[str] | str) -> set[str]:
    if isinstance(grads, str):
        grads = (grads,)
    try:
        wanted = set(grads)
    except TypeError:
        raise TypeError(f"grads must be a collection of 'dx', 'dw', 'db', got {grads!r}") from None
    unknown = wanted - set(_GRADS)
    if unknown:
        raise ValueError(f"grads may only name 'dx', 'dw' and 'db', got {sorted(unknown)}")
    return wanted


def cpu_level() -> str:
    """The CPU level the convolution kernels run at in this process.

    The build compiles the convolution's inner tile for each level below and
    picks the best one the CPU supports at import time; the environment
    variable ``CYCONV_CPU_LEVEL`` (set before ``import cyconv``) forces one,
    and naming a level the CPU cannot run makes the import fail with a
    ValueError. Results of different levels agree to rounding; within one
    level they are bitwise identical whatever the thread count.

    Returns
    -------
    str
        ``"baseline"`` (SSE2 on x86-64; the only level elsewhere),
        ``"x86-64-v3"`` (AVX2 + FMA) or ``"x86-64-v4"`` (AVX-512).

    Examples
    --------
    >>> import cyconv
    >>> cyconv.cpu_level() in ("baseline", "x86-64-v3", "x86-64-v4")
    True
    """
    return _dispatch.cpu_level()
