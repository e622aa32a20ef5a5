"""Argument parsing shared by every public function: one place, one set of messages.

Everything that can fail happens here or in the wrappers (``conv.py``,
``pool.py``), before any compiled kernel runs.
"""
from __future__ import annotations

import functools
import math
import numbers
import os
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import numpy.typing as npt

from cyconv import _openmp

if TYPE_CHECKING:
    from typing_extensions import TypeGuard

__all__ = [
    "as_float_array",
    "conv_output_size",
    "MAX_OUTPUT_PIXELS",
    "output_size",
    "parse_pair",
    "parse_padding",
    "resolve_num_threads",
    "result_dtype",
]

# Types of the public signatures (cyconv.conv, cyconv.pool, cyconv.layers).
# Union rather than ``|``: the aliases are evaluated, also on Python 3.9.
FloatArray = npt.NDArray[np.floating[Any]]
"""A float32 or float64 result array."""
Int = Union[int, np.integer[Any]]
"""An integer argument: a Python int or a NumPy integer (not a bool)."""
IntPair = Union[Int, tuple[Int, Int]]
"""``stride``, ``pool_size``: an int or ``(height, width)``."""
Pads = tuple[tuple[int, int], tuple[int, int]]
"""Normalised padding ``((top, bottom), (left, right))``."""
Padding = Union[Int, tuple[Int, Int], tuple[tuple[Int, Int], tuple[Int, Int]], str]
"""``padding``: ``p``, ``(p_h, p_w)``, ``((top, bottom), (left, right))``, "valid", "same"."""


def _is_int(v: object) -> TypeGuard[Int]:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


# Strides, window sizes and paddings are capped so that no index arithmetic in
# the kernels can overflow 64 bits (no real layer comes near).
MAX_EXTENT = 2**31


def parse_pair(value: object, name: str, minimum: int = 1) -> tuple[int, int]:
    """Parse an int or a pair of ints (height, width), each >= ``minimum``.

    Parameters
    ----------
    value : int or (int, int)
    name : str
        Argument name, used in error messages.
    minimum : int
        Smallest value allowed.

    Returns
    -------
    (int, int)

    Raises
    ------
    TypeError
        If ``value`` is neither an int nor a pair of ints.
    ValueError
        If a value is below ``minimum``.
    """
    if _is_int(value):
        pair = (int(value), int(value))
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(_is_int(v) for v in value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (height, width), "
                        f"got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} on both axes, got {value!r}")
    if max(pair) >= MAX_EXTENT:
        raise ValueError(f"{name} must be < 2**31 on both axes, got {value!r}")
    return pair


def _same_padding(n: int, f: int, s: int) -> tuple[int, int]:
    # TensorFlow/Keras: out = ceil(n / s); the total is split with the extra
    # pixel (if any) at the end.
    out = -(-n // s)
    total = max((out - 1) * s + f - n, 0)
    return (total // 2, total - total // 2)


def parse_padding(padding: object, n_hw: tuple[int, int], f_hw: tuple[int, int],
                  s_hw: tuple[int, int], d_hw: tuple[int, int] = (1, 1)) -> Pads:
    """Normalise ``padding`` to ``((top, bottom), (left, right))``.

    Parameters
    ----------
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same"
        ``(p_h, p_w)`` pads both sides of each axis; ``"same"`` follows
        TensorFlow/Keras (``out = ceil(n / s)``, any odd pixel at the end).
    n_hw, f_hw, s_hw : (int, int)
        Input size, window size (taps) and stride, for ``"same"``.
    d_hw : (int, int)
        Dilation: ``"same"`` pads for the window's extent ``d * (f - 1) + 1``.

    Returns
    -------
    ((int, int), (int, int))

    Raises
    ------
    TypeError
        If ``padding`` has none of the forms above.
    ValueError
        For an unknown string or a negative amount.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0), (0, 0))
        if mode == "same":
            return (_same_padding(n_hw[0], d_hw[0] * (f_hw[0] - 1) + 1, s_hw[0]),
                    _same_padding(n_hw[1], d_hw[1] * (f_hw[1] - 1) + 1, s_hw[1]))
        raise ValueError(f"padding must be 'valid' or 'same' when a string, got {padding!r}")
    if _is_int(padding):
        p = int(padding)
        pads = ((p, p), (p, p))
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(_is_int(v) for v in padding):
            pads = ((int(padding[0]),) * 2, (int(padding[1]),) * 2)
        elif all(isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(u) for u in v)
                 for v in padding):
            # Two (begin, end) pairs, as len(padding) == 2; mypy cannot tell.
            pads = tuple((int(v[0]), int(v[1])) for v in padding)  # type: ignore[assignment]
        else:
            pads = None
    else:
        pads = None
    if pads is None:
        raise TypeError("padding must be an int, (p_h, p_w), ((top, bottom), (left, right)), "
                        f"'valid' or 'same', got {padding!r}")
    if min(pads[0] + pads[1]) < 0:
        raise ValueError(f"padding must be >= 0 on every side, got {padding!r}")
    if max(pads[0] + pads[1]) >= MAX_EXTENT:
        raise ValueError(f"padding must be < 2**31 on every side, got {padding!r}")
    return pads


def output_size(n: int, f: int, pad: tuple[int, int], s: int, d: int = 1) -> int:
    """The output size of one axis: ``floor((n + pad[0] + pad[1] - d*(f-1) - 1) / s) + 1``.

    The one geometry rule of the package: the checked path
    (:func:`conv_output_size`) and the conv wrappers' fast path both use it.
    Below 1 when the window (extent ``d*(f-1) + 1``) does not fit in the
    padded input.
    """
    return (n + pad[0] + pad[1] - (d * (f - 1) + 1)) // s + 1


MAX_OUTPUT_PIXELS = 2**40
"""Largest output plane (pixels per image and channel) any function accepts."""


def check_output_size(op: str, o_hw: tuple[int, int], pads: Pads, stride: tuple[int, int]) -> None:
    """Reject a padding/stride whose output plane would have more than 2**40 pixels.

    Raises
    ------
    ValueError
        Naming the padding, the stride and the output size (NumPy's own
        "array is too big" would not say why).
    """
    if o_hw[0] * o_hw[1] > MAX_OUTPUT_PIXELS:
        raise ValueError(f"{op}: padding {pads} with stride {stride} gives an output of "
                         f"{o_hw[0]} x {o_hw[1]} pixels per image and channel: too large")


def conv_output_size(n: int, f: int, pad: tuple[int, int], s: int, axis: str, op: str,
                     d: int = 1) -> int:
    """Output size of one axis (:func:`output_size`), checked.

    Raises
    ------
    ValueError
        If the window does not fit in the padded input (output size < 1),
        naming the axis and the sizes involved.
    """
    o = output_size(n, f, pad, s, d)
    if o < 1:
        raise ValueError(
            f"{op}: the window is larger than the padded input along {axis}: "
            f"input {n} + padding {pad[0]}+{pad[1]} = {n + pad[0] + pad[1]} < window "
            + (f"{f}" if d == 1 else f"{d * (f - 1) + 1} ({f} taps at dilation {d})"))
    return o


_FLOAT_KINDS = "fiub"


def result_dtype(**arrays: npt.NDArray[Any]) -> np.dtype[np.floating[Any]]:
    """The computation dtype for the named arrays: float32 or float64.

    NumPy promotion of the float inputs (float32 with float64 gives
    float64); integer and bool inputs promote to float64; float16 computes
    in float32.

    Raises
    ------
    TypeError
        For complex, object, string or other non-real dtypes, naming the
        argument.
    """
    dtypes = []
    for name, a in arrays.items():
        dt = a.dtype
        if dt.kind not in _FLOAT_KINDS:
            raise TypeError(f"{name} must hold real numbers (float, int or bool), "
                            f"got dtype {dt}")
        dtypes.append(dt if dt.kind == "f" else np.dtype(np.float64))
    dt = np.result_type(*dtypes)
    if dt == np.float32 or dt == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_array(a: npt.ArrayLike, name: str, ndim: int | None = None) -> npt.NDArray[Any]:
    """``np.asarray(a)`` with an error naming the argument and its ndim.

    Raises
    ------
    TypeError
        If ``a`` cannot be turned into a numeric array.
    ValueError
        If the array does not have ``ndim`` dimensions.
    """
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be array-like, got {type(a).__name__}") from exc
    if a.dtype.kind not in _FLOAT_KINDS:
        raise TypeError(f"{name} must hold real numbers (float, int or bool), got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {a.ndim}-D with shape {a.shape}")
    return a


def as_float_array(a: npt.ArrayLike, dtype: np.dtype[np.floating[Any]]) -> FloatArray:
    """C-contiguous array of ``dtype``; copies only if needed, never in place."""
    return np.ascontiguousarray(a, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _usable_cpus() -> int:
    # CPUs this process may run on: its affinity mask, then any cgroup quota
    # (containers often give fewer CPUs than the machine shows).
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    quota = None
    q: str | int  # text in cgroup v2's cpu.max, a count in v1's files
    period: str | int
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:  # cgroup v2
            q, period = f.read().split()[:2]
            if q != "max":
                quota = int(q) / int(period)
    except (OSError, ValueError):
        try:  # cgroup v1
            with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
                q = int(f.read())
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
                period = int(f.read())
            if q > 0 and period > 0:
                quota = q / period
        except (OSError, ValueError):
            pass
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def effective_num_threads() -> int:
    """Threads used when ``num_threads=None``.

    ``OMP_NUM_THREADS`` (if set) and ``threadpoolctl.threadpool_limits``
    decide through the OpenMP runtime; otherwise every usable core (the
    process's CPU affinity and cgroup CPU quota).
    """
    n = _openmp.openmp_max_threads()
    # The cap changes n only above the usable cores; testing that first skips
    # the os.environ look-up (~0.8 us) on most calls.
    if n > _usable_cpus() and "OMP_NUM_THREADS" not in os.environ:
        n = _usable_cpus()
    return max(1, n)


def resolve_num_threads(num_threads: object) -> int:
    """Validate ``num_threads`` (None or an int >= 1) and resolve None.

    Raises
    ------
    TypeError, ValueError
        For a non-integer or a value < 1.
    """
    if num_threads is None:
        return effective_num_threads()
    if not _is_int(num_threads):
        raise TypeError(f"num_threads must be None or an int >= 1, got {num_threads!r}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be None or an int >= 1, got {num_threads!r}")
    return int(num_threads)
