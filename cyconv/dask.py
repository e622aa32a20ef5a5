"""cyconv's kernels on Dask arrays: lazy, chunked, exact.

``cyconv.dask.conv2d``, ``conv2d_backward``, ``max_pool2d`` and ``avg_pool2d``
(and ``global_avg_pool2d``, ``global_max_pool2d``, whole planes per task)
take the arguments of the in-memory functions, but ``x`` (and ``dz``) may be
a ``dask.array.Array``; they return lazy Dask arrays with the same values as
the in-memory call. Dask runs the tasks, on its threaded scheduler or on a
``dask.distributed`` cluster; this module only builds the graph.

How chunks are handled:

- **batch** (axis 0): chunks run independently.
- **height and width** (axes 1, 2): the output is cut into tiles, one per
  input chunk (output ``i`` belongs to the chunk holding the centre row or
  column of its window, ``i * s - p_begin + (f - 1) // 2``). Each tile's input
  rows are gathered from the chunk and its neighbours (the halo, about
  ``f / 2`` rows on each side), and the
  in-memory kernel runs on them with the part of the *global* padding that
  falls inside the tile (none for interior tiles) and the same stride. Every
  output sees exactly the taps of the in-memory call, so tile seams are exact.
- **channels** (axis 3): ``conv2d`` needs every input channel in one block
  (``x`` is rechunked to one channel chunk; the output's ``C_out`` is one
  chunk); pooling works per channel and keeps the channel chunks.

``layout="NCHW"`` (every function) takes and returns PyTorch's layouts
(activations ``(m, C, H, W)``, filters ``(C_out, C_in / groups, f_h, f_w)``):
the NHWC graph runs between lazy transposes of the chunks, so the chunking
advice below applies to the same axes by name.

Needs the optional dependencies: ``pip install "cyconv[dask]"``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np
import numpy.typing as npt

from cyconv import conv, pool
from cyconv._args import Int, IntPair, Padding, Pads, as_array, resolve_num_threads, result_dtype
from cyconv._layout import oihw_to_hwio, parse_layout

try:
    import dask.array
    from dask.delayed import delayed as _delayed
except ImportError as exc:  # pragma: no cover - the test extra installs dask
    raise ImportError('cyconv.dask needs Dask: pip install "cyconv[dask]"') from exc

__all__ = ["avg_pool2d", "conv2d", "conv2d_backward", "max_pool2d"]
__all__ += ["global_avg_pool2d", "global_max_pool2d"]

# Dask's functions and methods carry no annotations, so mypy --strict would
# reject every call to them as "untyped": for the type checker they are Any.
da: Any = dask.array
delayed: Any = _delayed
if TYPE_CHECKING:
    Array = Any
else:
    Array = dask.array.Array

_Gradients = tuple[Optional["Array"], Optional["Array"], Optional["Array"]]
"""``(dx, dw, db)``; those not named in ``grads`` are None."""

_CHUNK_ADVICE = """\
Chunk advice: chunk along the batch axis first (whole images per chunk,
    ``x.rechunk({0: k, 1: -1, 2: -1})``); tile height and width only for
    images too large for one task. Aim for 16-256 MB per chunk: each task
    holds its input chunk plus a halo of about ``f / 2`` rows and columns on
    each side from its neighbours, and its output. Spatial chunks smaller
    than the window work (the halo then reaches across several chunks) but
    gather more data per output than they save."""


# --------------------------------------------------------------------------
# Argument checks (at graph construction, with the in-memory messages)
# --------------------------------------------------------------------------

def _as_dask(a: object, name: str) -> Array:
    """``a`` as a 4-D Dask array with known chunk sizes."""
    arr: Array = a if isinstance(a, da.Array) else da.asarray(a)
    if arr.ndim != 4:
        raise ValueError(f"{name} must be 4-D, got {arr.ndim}-D with shape {arr.shape}")
    if any(math.isnan(c) for axis in arr.chunks for c in axis):
        raise ValueError(f"{name} has unknown chunk sizes {arr.chunks}; call "
                         f"{name}.compute_chunk_sizes() first")
    result_dtype(**{name: _empty(arr)})  # TypeError for complex, object and string data
    return arr


def _empty(a: Array) -> npt.NDArray[Any]:
    """An empty NumPy array of ``a``'s dtype, for the dtype rules of ``cyconv._args``."""
    return np.empty(0, dtype=a.dtype)


def _small(a: object, name: str, ndim: int | None = None) -> npt.NDArray[Any]:
    """Filters or bias as a NumPy array (a Dask array is computed here, once)."""
    if isinstance(a, da.Array):
        a = a.compute()
    return as_array(a, name, ndim)  # type: ignore[arg-type]


def _check_threads(num_threads: object) -> None:
    # Validated here; None stays None, so each task uses its worker's cores.
    if num_threads is not None:
        resolve_num_threads(num_threads)


# --------------------------------------------------------------------------
# Tiles: which output rows each chunk computes, from which input rows
# --------------------------------------------------------------------------

_Tile = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
"""``((o0, o1), (a0, a1), (pad_begin, pad_end))``: outputs, input rows, local padding."""


def _tile(o0: int, o1: int, n: int, f: int, s: int, pad_begin: int) -> _Tile:
    # The input rows the windows of outputs [o0, o1) touch, and the global
    # padding they reach into (all of it lies before row 0 or after row n).
    lo, hi = o0 * s - pad_begin, (o1 - 1) * s - pad_begin + f
    a0, a1 = min(max(lo, 0), n), min(max(hi, 0), n)
    return (o0, o1), (a0, a1), (a0 - lo, hi - a1)


def _forward_tiles(chunks: Sequence[int], f: int, s: int, pad: tuple[int, int],
                   n_out: int) -> list[_Tile]:
    """Output tiles of one spatial axis, one per input chunk (fewer if some are empty).

    Output ``i`` goes to the chunk holding the centre row of its window,
    ``i * s - pad[0] + (f - 1) // 2`` (centres in the padding go to the first
    or last chunk). So a stride-1 "same" convolution with an odd window keeps
    the chunks, and a stride-s layer divides them by s. A chunk with no output
    (a chunk smaller than the stride) gives no tile, and a tile whose windows
    lie wholly in the padding is merged into its neighbour, so every tile reads
    at least one input row (unless the axis itself is empty).
    """
    n = sum(chunks)
    starts = np.cumsum((0,) + tuple(chunks[:-1]))[1:]
    shift = pad[0] - (f - 1) // 2  # output i is centred on row i * s - shift
    bounds = sorted({0, n_out} | {min(max(-(-(int(b) + shift) // s), 0), n_out) for b in starts})
    tiles = [_tile(o0, o1, n, f, s, pad[0]) for o0, o1 in zip(bounds[:-1], bounds[1:])]
    k = 0
    while len(tiles) > 1 and k < len(tiles):
        (o0, o1), (a0, a1), _ = tiles[k]
        if a1 > a0:
            k += 1
            continue
        if k + 1 < len(tiles):  # merge with the next tile
            tiles[k:k + 2] = [_tile(o0, tiles[k + 1][0][1], n, f, s, pad[0])]
        else:  # the last tile: merge with the previous one
            tiles[k - 1:k + 1] = [_tile(tiles[k - 1][0][0], o1, n, f, s, pad[0])]
            k -= 1
    return tiles


def _gather(a: Array, axis: int, ranges: Sequence[tuple[int, int]]) -> Array:
    """``a`` with ``axis`` re-cut into the given (possibly overlapping) ranges, one chunk each.

    Slices, a concatenation and a rechunk: Dask moves each halo from the
    neighbouring chunks into the tile that needs it.
    """
    sizes = tuple(a1 - a0 for a0, a1 in ranges)
    if ranges == _ranges(a.chunks[axis]):
        return a
    index: list[slice] = [slice(None)] * a.ndim
    pieces = []
    for a0, a1 in ranges:
        index[axis] = slice(a0, a1)
        pieces.append(a[tuple(index)])
    out = pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=axis)
    return out.rechunk({axis: sizes})


def _ranges(chunks: Sequence[int]) -> list[tuple[int, int]]:
    ends = np.cumsum((0,) + tuple(chunks))
    return [(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]


def _spatial_tiles(x: Array, f: tuple[int, int], s: tuple[int, int], pads: Pads,
                   o_hw: tuple[int, int]) -> tuple[Array, list[_Tile], list[_Tile]]:
    """``x`` gathered into forward tiles along height and width, and the tiles."""
    tiles_h = _forward_tiles(x.chunks[1], f[0], s[0], pads[0], o_hw[0])
    tiles_w = _forward_tiles(x.chunks[2], f[1], s[1], pads[1], o_hw[1])
    x_t = _gather(_gather(x, 1, [t[1] for t in tiles_h]), 2, [t[1] for t in tiles_w])
    return x_t, tiles_h, tiles_w


def _out_chunks(tiles: Sequence[_Tile]) -> tuple[int, ...]:
    return tuple(o1 - o0 for (o0, o1), _, _ in tiles)


def _pads(tiles: Sequence[_Tile]) -> list[tuple[int, int]]:
    return [t[2] for t in tiles]


def _map_tiles(func: Callable[..., Any], x_t: Array, chunks: tuple[tuple[int, ...], ...],
               out_dtype: np.dtype[Any], **kwargs: Any) -> Array:
    # One task per tile; meta keeps Dask from calling the kernel on empty
    # arrays to guess the output type.
    return da.map_blocks(func, x_t, chunks=chunks, dtype=out_dtype,
                         meta=np.empty((0, 0, 0, 0), dtype=out_dtype), **kwargs)


# --------------------------------------------------------------------------
# The per-tile tasks (module-level functions, so they pickle by reference)
# --------------------------------------------------------------------------

def _conv2d_tile(x: npt.NDArray[Any], w: npt.NDArray[Any], b: npt.NDArray[Any] | None,
                 stride: tuple[int, int], pads_h: list[tuple[int, int]],
                 pads_w: list[tuple[int, int]], num_threads: Int | None,
                 block_id: tuple[int, ...], dilation: tuple[int, int] = (1, 1),
                 groups: int = 1) -> npt.NDArray[Any]:
    padding = (pads_h[block_id[1]], pads_w[block_id[2]])
    return conv.conv2d(x, w, b, stride=stride, padding=padding, num_threads=num_threads,
                       dilation=dilation, groups=groups)


def _pool2d_tile(x: npt.NDArray[Any], kind: str, pool_size: tuple[int, int],
                 stride: tuple[int, int], pads_h: list[tuple[int, int]],
                 pads_w: list[tuple[int, int]], count_include_pad: bool,
                 num_threads: Int | None, block_id: tuple[int, ...],
                 dilation: tuple[int, int] = (1, 1), ceil_mode: bool = False,
                 ) -> npt.NDArray[Any]:
    padding = (pads_h[block_id[1]], pads_w[block_id[2]])
    if kind == "max":
        return pool.max_pool2d(x, pool_size, stride=stride, padding=padding,
                               num_threads=num_threads, dilation=dilation, ceil_mode=ceil_mode)
    return pool.avg_pool2d(x, pool_size, stride=stride, padding=padding,
                           count_include_pad=count_include_pad, num_threads=num_threads,
                           ceil_mode=ceil_mode)


# --------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------

def conv2d(x: Any, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *, stride: IntPair = 1,
           padding: Padding = 0, num_threads: Int | None = None, dilation: IntPair = 1,
           groups: Int = 1, layout: str = "NHWC") -> Array:
    """Lazy :func:`cyconv.conv2d` of a Dask array, tile by tile, exact at the seams.

    Parameters
    ----------
    x : dask.array.Array, shape (m, n_H, n_W, C_in)
        Input activations, chunked along any axes (other array-likes are
        wrapped with ``dask.array.asarray``). Its channels are rechunked to
        one chunk: a convolution needs every input channel of a pixel at once.
    w : array_like, shape (f_h, f_w, C_in, C_out)
        Filters, in memory (a Dask array is computed here, once).
    b : array_like, shape (C_out,) or (1, 1, 1, C_out), optional
        Bias, as ``w``.
    stride, padding
        As for :func:`cyconv.conv2d` (``padding`` is the padding of the
        whole image; tiles get their share of it).
    num_threads : int, optional
        OpenMP threads of each task; default every usable core of the worker.
        On a cluster whose workers run several tasks at once (several threads
        per worker), ``num_threads=1`` keeps tasks from competing for cores.
    dilation : int or (int, int), default 1
        Spacing of the filter taps, as for :func:`cyconv.conv2d`; tiles are
        cut on the window's extent ``d * (f - 1) + 1``.
    groups : int, default 1
        Channel groups, as for :func:`cyconv.conv2d`: ``w`` is then
        ``(f_h, f_w, C_in / groups, C_out)``.

        >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
        >>> x3 = da.ones((2, 12, 12, 4), chunks=(1, 6, 6, 4))
        >>> w_dw = np.ones((3, 3, 1, 4))                   # depthwise, dilation 2
        >>> z3 = cyconv.dask.conv2d(x3, w_dw, padding=2, dilation=2, groups=4)
        >>> bool((z3.compute() == cyconv.conv2d(x3.compute(), w_dw, padding=2, dilation=2,
        ...                                     groups=4)).all())
        True

    layout : {"NHWC", "NCHW"}, default "NHWC"
        ``"NCHW"``: ``x`` is ``(m, C_in, n_H, n_W)`` (chunked along any
        axes), ``w`` is PyTorch's ``(C_out, C_in / groups, f_h, f_w)``, ``b``
        may also be ``(1, C_out, 1, 1)``, and ``z`` is ``(m, C_out, n_H_out,
        n_W_out)`` with the chunks of the NHWC result transposed. The graph
        is the NHWC one between two lazy transposes, so the values are those
        of the in-memory ``cyconv.conv2d(..., layout="NCHW")``, bit for bit.

        >>> import numpy as np, dask.array as da, cyconv.dask
        >>> x4 = da.ones((4, 3, 10, 10), chunks=(2, 3, 5, 5))
        >>> z4 = cyconv.dask.conv2d(x4, np.ones((2, 3, 3, 3)), padding=1, layout="NCHW")
        >>> z4.shape, z4.chunks[2]
        ((4, 2, 10, 10), (5, 5))

    Returns
    -------
    z : dask.array.Array, shape (m, n_H_out, n_W_out, C_out)
        Lazy; the values of ``cyconv.conv2d(x.compute(), w, b, ...)``, bit for
        bit. Chunks: ``x``'s along the batch; along height and width one tile
        per input chunk (output ``i`` in the chunk holding the centre of its
        window, input row ``i * s - p_top + (f_h - 1) // 2``; tiles that would
        be empty are dropped), so a stride-1 "same" convolution with an odd
        kernel keeps ``x``'s chunks; ``C_out`` in one chunk. dtype as the
        in-memory call.

    Raises
    ------
    TypeError, ValueError
        As :func:`cyconv.conv2d`, at once (not when computing); also
        ValueError if ``x`` is not 4-D or has unknown chunk sizes (call
        ``x.compute_chunk_sizes()`` first).

    Notes
    -----
    {advice}
    There is no ``out=`` argument: the result is lazy; store it with
    ``dask.array.to_zarr`` or ``.compute()`` it.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = da.ones((4, 10, 10, 3), chunks=(2, 5, 5, 3))
    >>> w = np.ones((3, 3, 3, 2))
    >>> z = cyconv.dask.conv2d(x, w, padding="same")
    >>> z.shape, z.chunks[1]
    ((4, 10, 10, 2), (5, 5))
    >>> bool((z.compute() == cyconv.conv2d(x.compute(), w, padding="same")).all())
    True
    """
    layout = parse_layout(layout)
    x = _as_dask(x, "x")
    w_arr = _small(w, "w", 4)
    b_arr = None if b is None else _small(b, "b")
    if layout == "NCHW":
        conv._check_nchw("conv2d", x, w_arr, groups)
        if b_arr is not None and b_arr.shape == (1, w_arr.shape[0], 1, 1):
            b_arr = b_arr.reshape(w_arr.shape[0])
        try:
            z = conv2d(_to_nhwc(x), oihw_to_hwio(w_arr, "w"), b_arr, stride=stride,
                       padding=padding, num_threads=num_threads, dilation=dilation,
                       groups=groups)
        except ValueError as e:
            raise conv._nchw_error(e) from None
        return _to_nchw(z)
    dtype = (result_dtype(x=_empty(x), w=w_arr) if b_arr is None
             else result_dtype(x=_empty(x), w=w_arr, b=b_arr))
    s, pads, o_hw, d, g = conv._geometry_dg("conv2d", x.shape, w_arr.shape, stride, padding,
                                            dilation, groups)
    bias = conv._bias(b_arr, w_arr.shape[3], dtype)
    _check_threads(num_threads)
    x_t, tiles_h, tiles_w = _spatial_tiles(x.rechunk({3: -1}), _extent(w_arr.shape[:2], d),
                                           s, pads, o_hw)
    chunks = (x.chunks[0], _out_chunks(tiles_h), _out_chunks(tiles_w), (w_arr.shape[3],))
    return _map_tiles(_conv2d_tile, x_t, chunks, dtype, w=w_arr, b=bias, stride=s,
                      pads_h=_pads(tiles_h), pads_w=_pads(tiles_w), num_threads=num_threads,
                      dilation=d, groups=g)


def _extent(f: tuple[int, ...], d: tuple[int, int]) -> tuple[int, int]:
    """The extent ``d * (f - 1) + 1`` of a dilated window, per axis: what tiles are cut on."""
    return d[0] * (f[0] - 1) + 1, d[1] * (f[1] - 1) + 1


def _to_nhwc(a: Array) -> Array:
    """A lazy NCHW -> NHWC transpose (each chunk's axes move; no rechunk)."""
    return a.transpose(0, 2, 3, 1)


def _to_nchw(a: Array) -> Array:
    """A lazy NHWC -> NCHW transpose."""
    return a.transpose(0, 3, 1, 2)


def _pool2d(op: str, x: Any, pool_size: IntPair, stride: IntPair | None, padding: Padding,
            count_include_pad: bool, num_threads: Int | None, dilation: IntPair = 1,
            ceil_mode: bool = False, layout: str = "NHWC") -> Array:
    if parse_layout(layout) == "NCHW":
        try:
            p = _pool2d(op, _to_nhwc(_as_dask(x, "x")), pool_size, stride, padding,
                        count_include_pad, num_threads, dilation, ceil_mode)
        except ValueError as e:
            raise pool._nchw_error(e) from None
        return _to_nchw(p)
    x = _as_dask(x, "x")
    dtype = result_dtype(x=_empty(x))
    f, s, pads, shape, d = pool._geometry_d(op, x.shape, pool_size, stride, padding, dilation,
                                            ceil_mode)
    _check_threads(num_threads)
    # Tiles are cut on the window's extent d * (f - 1) + 1.
    extent = (d[0] * (f[0] - 1) + 1, d[1] * (f[1] - 1) + 1)
    x_t, tiles_h, tiles_w = _spatial_tiles(x, extent, s, pads, shape[1:3])
    chunks = (x.chunks[0], _out_chunks(tiles_h), _out_chunks(tiles_w), x.chunks[3])
    pads_h, pads_w = _pads(tiles_h), _pads(tiles_w)
    if ceil_mode:
        # A last tile whose windows run past the padded input gets the image's
        # padding after it and ceil_mode, so its windows, and an average's
        # divisors, are the in-memory ones; on every other tile the windows
        # fit exactly and ceil_mode rounds nothing.
        pads_h = [(b, min(e, pads[0][1])) for b, e in pads_h]
        pads_w = [(b, min(e, pads[1][1])) for b, e in pads_w]
    return _map_tiles(_pool2d_tile, x_t, chunks, dtype, kind=op[:3], pool_size=f, stride=s,
                      pads_h=pads_h, pads_w=pads_w,
                      count_include_pad=bool(count_include_pad), num_threads=num_threads,
                      dilation=d, ceil_mode=bool(ceil_mode))


def max_pool2d(x: Any, pool_size: IntPair, *, stride: IntPair | None = None,
               padding: Padding = 0, num_threads: Int | None = None, dilation: IntPair = 1,
               ceil_mode: bool = False, layout: str = "NHWC") -> Array:
    """Lazy :func:`cyconv.max_pool2d` of a Dask array, tile by tile, exact at the seams.

    Parameters
    ----------
    x : dask.array.Array, shape (m, n_H, n_W, C)
        Input, chunked along any axes (other array-likes are wrapped with
        ``dask.array.asarray``).
    pool_size, stride, padding, dilation, ceil_mode
        As for :func:`cyconv.max_pool2d` (``padding`` is that of the whole
        image; padded positions count as -inf).
    num_threads : int, optional
        OpenMP threads of each task; see :func:`cyconv.dask.conv2d`.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        ``"NCHW"``: ``x`` is ``(m, C, n_H, n_W)`` and so is ``p``
        (``(m, C, n_H_out, n_W_out)``); the NHWC graph between two lazy
        transposes, equal bit for bit to the in-memory
        ``cyconv.max_pool2d(..., layout="NCHW")``.

        >>> import numpy as np, dask.array as da, cyconv.dask
        >>> x4 = da.arange(32.0, chunks=8).reshape(1, 1, 4, 8)
        >>> cyconv.dask.max_pool2d(x4, 2, layout="NCHW").compute()[0, 0]
        array([[ 9., 11., 13., 15.],
               [25., 27., 29., 31.]])

    Returns
    -------
    p : dask.array.Array, shape (m, n_H_out, n_W_out, C)
        Lazy; equal bit for bit to the in-memory call. Chunks: ``x``'s along
        the batch and the channels, one tile per input chunk along height and
        width (as :func:`cyconv.dask.conv2d`).

    Raises
    ------
    TypeError, ValueError
        As :func:`cyconv.max_pool2d`, at once; also ValueError if ``x`` is
        not 4-D or has unknown chunk sizes.

    Notes
    -----
    {advice}

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv.dask
    >>> x = da.arange(32.0, chunks=8).reshape(1, 4, 8, 1)
    >>> cyconv.dask.max_pool2d(x, 2).compute()[0, :, :, 0]
    array([[ 9., 11., 13., 15.],
           [25., 27., 29., 31.]])
    """
    return _pool2d("max_pool2d", x, pool_size, stride, padding, True, num_threads, dilation,
                   ceil_mode, layout)


def avg_pool2d(x: Any, pool_size: IntPair, *, stride: IntPair | None = None,
               padding: Padding = 0, count_include_pad: bool = True,
               num_threads: Int | None = None, ceil_mode: bool = False,
               layout: str = "NHWC") -> Array:
    """Lazy :func:`cyconv.avg_pool2d` of a Dask array, tile by tile, exact at the seams.

    Parameters
    ----------
    x : dask.array.Array, shape (m, n_H, n_W, C)
        Input, chunked along any axes (other array-likes are wrapped with
        ``dask.array.asarray``).
    pool_size, stride, padding, count_include_pad, ceil_mode
        As for :func:`cyconv.avg_pool2d` (``padding`` is that of the whole
        image; the divisor of each window is the in-memory one).
    num_threads : int, optional
        OpenMP threads of each task; see :func:`cyconv.dask.conv2d`.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        ``"NCHW"``: ``x`` and ``p`` are ``(m, C, H, W)``, as for
        :func:`cyconv.dask.max_pool2d`.

        >>> import numpy as np, dask.array as da, cyconv.dask
        >>> x4 = da.ones((2, 4, 6, 6), chunks=(1, 2, 3, 3))
        >>> cyconv.dask.avg_pool2d(x4, 2, layout="NCHW").shape
        (2, 4, 3, 3)

    Returns
    -------
    p : dask.array.Array, shape (m, n_H_out, n_W_out, C)
        Lazy; equal bit for bit to the in-memory call. Chunks as
        :func:`cyconv.dask.max_pool2d`.

    Raises
    ------
    TypeError, ValueError
        As :func:`cyconv.avg_pool2d`, at once; also ValueError if ``x`` is
        not 4-D or has unknown chunk sizes.

    Notes
    -----
    {advice}

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv.dask
    >>> x = da.ones((2, 6, 6, 4), chunks=(1, 3, 3, 2))
    >>> p = cyconv.dask.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    >>> p.chunks
    ((1, 1), (2, 1), (2, 1), (2, 2))
    >>> float(p.sum().compute())
    72.0
    """
    return _pool2d("avg_pool2d", x, pool_size, stride, padding, count_include_pad, num_threads,
                   1, ceil_mode, layout)


def _global_tile(x: npt.NDArray[Any], kind: str, layout: str,
                 num_threads: Int | None) -> npt.NDArray[Any]:
    func = pool.global_max_pool2d if kind == "max" else pool.global_avg_pool2d
    return func(x, keepdims=True, layout=layout,  # type: ignore[arg-type]
                num_threads=num_threads)


def _global_pool2d(op: str, x: Any, keepdims: bool, layout: str,
                   num_threads: Int | None) -> Array:
    x = _as_dask(x, "x")
    dtype = result_dtype(x=_empty(x))
    keepdims = pool._check_bool(keepdims, "keepdims")
    layout = pool._check_layout(layout)
    pool._planes(x.shape, layout, op)
    _check_threads(num_threads)
    # Whole planes per task (each output needs all of its plane), so every
    # value is the in-memory kernel's, bit for bit.
    h, w = (1, 2) if layout == "NHWC" else (2, 3)
    x_t = x.rechunk({h: -1, w: -1})
    chunks = tuple((1,) if axis in (h, w) else c for axis, c in enumerate(x_t.chunks))
    p = _map_tiles(_global_tile, x_t, chunks, dtype, kind=op[7:10], layout=layout,
                   num_threads=num_threads)
    if keepdims:
        return p
    return p[:, 0, 0, :] if layout == "NHWC" else p[:, :, 0, 0]


def global_avg_pool2d(x: Any, *, keepdims: bool = False, layout: str = "NHWC",
                      num_threads: Int | None = None) -> Array:
    """Lazy :func:`cyconv.global_avg_pool2d` of a Dask array, bitwise equal to it.

    Parameters
    ----------
    x : dask.array.Array, shape (m, n_H, n_W, C), or (m, C, n_H, n_W) with layout="NCHW"
        Input; its spatial axes are rechunked to one chunk (each output
        needs its whole plane), batch and channel chunks are kept.
    keepdims, layout, num_threads
        As for :func:`cyconv.global_avg_pool2d` (``num_threads`` per task).

    Returns
    -------
    p : dask.array.Array, shape (m, C), or the keepdims shape

    Raises
    ------
    ValueError
        ``x`` not 4-D, a plane without pixels, or an unknown ``layout``
        (when the graph is built).

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = da.ones((4, 6, 6, 3), chunks=(2, 3, 3, 3))
    >>> cyconv.dask.global_avg_pool2d(x).compute()[0]
    array([1., 1., 1.])
    """
    return _global_pool2d("global_avg_pool2d", x, keepdims, layout, num_threads)


def global_max_pool2d(x: Any, *, keepdims: bool = False, layout: str = "NHWC",
                      num_threads: Int | None = None) -> Array:
    """Lazy :func:`cyconv.global_max_pool2d` of a Dask array, bitwise equal to it.

    Parameters
    ----------
    x, keepdims, layout, num_threads
        As for :func:`cyconv.dask.global_avg_pool2d`.

    Returns
    -------
    p : dask.array.Array, shape (m, C), or the keepdims shape

    Raises
    ------
    ValueError
        ``x`` not 4-D, a plane without pixels, or an unknown ``layout``
        (when the graph is built).

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = da.arange(8.0, chunks=4).reshape(1, 2, 2, 2)
    >>> cyconv.dask.global_max_pool2d(x).compute()
    array([[6., 7.]])
    """
    return _global_pool2d("global_max_pool2d", x, keepdims, layout, num_threads)


# --------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------

_DxTile = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
"""``((a0, a1), (c0, c1), pads)``: dx rows, input rows covered by the dz tile, its padding."""


def _dx_tile(dz: npt.NDArray[Any], w: npt.NDArray[Any], stride: tuple[int, int],
             geo_h: list[_DxTile], geo_w: list[_DxTile], c_in: int, dx_dtype: np.dtype[Any],
             num_threads: Int | None, block_id: tuple[int, ...],
             dilation: tuple[int, int] = (1, 1), groups: int = 1) -> npt.NDArray[Any]:
    (a0, a1), (c0, c1), pad_h = geo_h[block_id[1]]
    (e0, e1), (d0, d1), pad_w = geo_w[block_id[2]]
    dx = np.zeros((dz.shape[0], a1 - a0, e1 - e0, c_in), dtype=dx_dtype)
    if dz.shape[1] == 0 or dz.shape[2] == 0:  # no window covers this tile
        return dx
    # dx of the rows [c0, c1) the windows of this dz tile cover. x is not read
    # for dx: a zero-strided stand-in of the result dtype gives its shape (and
    # the dtype promotion of the whole call).
    x_shape = (dz.shape[0], c1 - c0, d1 - d0, c_in)
    x_stand_in = np.broadcast_to(np.zeros((), dtype=dx_dtype), x_shape)
    dx_cover = conv.conv2d_backward(dz, x_stand_in, w, stride=stride, padding=(pad_h, pad_w),
                                    num_threads=num_threads, grads=("dx",), dilation=dilation,
                                    groups=groups)[0]
    assert dx_cover is not None
    # Rows of the tile outside [c0, c1) are covered by no window: dx = 0.
    r0, r1, q0, q1 = max(a0, c0), min(a1, c1), max(e0, d0), min(e1, d1)
    if r1 > r0 and q1 > q0:
        dx[:, r0 - a0:r1 - a0, q0 - e0:q1 - e0] = dx_cover[:, r0 - c0:r1 - c0, q0 - d0:q1 - d0]
    return dx


def _dx_tiles(chunks: Sequence[int], n: int, f: int, s: int, pad: tuple[int, int],
              n_out: int) -> tuple[list[tuple[int, int]], list[_DxTile]]:
    """For each input chunk [a0, a1) of one axis: the dz range whose windows cover it."""
    dz_ranges, geo = [], []
    for a0, a1 in _ranges(chunks):
        o0 = max(0, -(-(a0 + pad[0] - f + 1) // s))
        o1 = min(n_out, (a1 - 1 + pad[0]) // s + 1)
        if o1 <= o0:  # between windows (stride > window) or an empty chunk
            o0 = o1 = min(o0, n_out)
            dz_ranges.append((o0, o1))
            geo.append(((a0, a1), (a0, a0), (0, 0)))
            continue
        (_, (c0, c1), local_pad) = _tile(o0, o1, n, f, s, pad[0])
        dz_ranges.append((o0, o1))
        geo.append(((a0, a1), (c0, c1), local_pad))
    return dz_ranges, geo


def _dw_db_partial(x: npt.NDArray[Any], dz: npt.NDArray[Any], w_shape: tuple[int, ...],
                   stride: tuple[int, int], padding: Pads, grads: tuple[str, ...],
                   dtype: np.dtype[Any], num_threads: Int | None,
                   dilation: tuple[int, int] = (1, 1), groups: int = 1,
                   ) -> tuple[npt.NDArray[Any] | None, npt.NDArray[Any] | None]:
    # The partial sums of dw and db over one tile of outputs. w is not read
    # for them: a stand-in of the result dtype gives its shape.
    w_stand_in = np.broadcast_to(np.zeros((), dtype=dtype), w_shape)
    _, dw, db = conv.conv2d_backward(dz, x, w_stand_in, stride=stride, padding=padding,
                                     num_threads=num_threads, grads=grads, dilation=dilation,
                                     groups=groups)
    return dw, db


def _add(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
    return tuple(None if u is None else u + v for u, v in zip(a, b))  # type: ignore[return-value]


def _tree_sum(parts: list[Any]) -> Any:
    """Pairwise sum of delayed partials, in a fixed order: reproducible bit for bit."""
    while len(parts) > 1:
        pairs = [delayed(_add, pure=True)(parts[k], parts[k + 1])
                 for k in range(0, len(parts) - 1, 2)]
        parts = pairs + parts[len(pairs) * 2:]
    return parts[0]


def conv2d_backward(dz: Any, x: Any, w: npt.ArrayLike, *, stride: IntPair = 1,
                    padding: Padding = 0, num_threads: Int | None = None,
                    grads: Iterable[str] | str = ("dx", "dw", "db"), dilation: IntPair = 1,
                    groups: Int = 1, layout: str = "NHWC") -> _Gradients:
    """Lazy :func:`cyconv.conv2d_backward` of Dask arrays.

    Parameters
    ----------
    dz : dask.array.Array, shape (m, n_H_out, n_W_out, C_out)
        Gradient of the loss with respect to ``conv2d(x, w, b, ...)``; any
        chunks (it is rechunked to the tiles of ``x``, ``C_out`` in one chunk).
    x : dask.array.Array, shape (m, n_H, n_W, C_in)
        The forward input, chunked along any axes.
    w : array_like, shape (f_h, f_w, C_in, C_out)
        The forward filters, in memory (a Dask array is computed here, once).
    stride, padding, num_threads
        As given to :func:`cyconv.dask.conv2d`.
    grads : collection of {"dx", "dw", "db"}, default all three
        The gradients to compute; the others are returned as None.
    dilation, groups
        As given to :func:`cyconv.dask.conv2d`. For a depthwise convolution
        (``groups == C_in``) ``dx`` equals the in-memory one to rounding
        only: its kernel adds a pixel's taps in an order that depends on
        where the pixel lies in the array, and tiles move the edges.
    layout : {"NHWC", "NCHW"}, default "NHWC"
        ``"NCHW"``: ``dz`` is ``(m, C_out, n_H_out, n_W_out)``, ``x`` and
        ``dx`` are ``(m, C_in, n_H, n_W)``, ``w`` and ``dw`` are
        ``(C_out, C_in / groups, f_h, f_w)``; ``db`` is ``(C_out,)``. The
        NHWC graph between lazy transposes: ``dx`` equal bit for bit to the
        NHWC ``dx`` transposed, ``dw`` and ``db`` to the NHWC sums.

        >>> import numpy as np, dask.array as da, cyconv.dask
        >>> x4 = da.ones((4, 2, 6, 6), chunks=(2, 2, 3, 3))
        >>> dz4 = da.ones((4, 5, 6, 6), chunks=(1, 5, 6, 6))
        >>> g = cyconv.dask.conv2d_backward(dz4, x4, np.ones((5, 2, 3, 3)), padding=1,
        ...                                 layout="NCHW")
        >>> g[0].shape, g[1].shape, g[2].compute().tolist()
        ((4, 2, 6, 6), (5, 2, 3, 3), [144.0, 144.0, 144.0, 144.0, 144.0])

    Returns
    -------
    dx : dask.array.Array, shape (m, n_H, n_W, C_in), or None
        Chunked as ``x``; each chunk is computed from the tile of ``dz``
        whose windows cover it, equal bit for bit to the in-memory ``dx``.
        ``x`` is not read for ``dx``.
    dw : dask.array.Array, shape (f_h, f_w, C_in, C_out), or None
    db : dask.array.Array, shape (C_out,), or None
        One chunk each: the partial sums of every tile of outputs (each tile
        of ``x`` with its halo, as in :func:`cyconv.dask.conv2d`), added in
        a balanced binary tree in the tiles' order. The order is fixed by
        the chunks, so the result is reproducible bit for bit (on any
        scheduler); it differs from the in-memory sum by rounding only.

    Raises
    ------
    TypeError, ValueError
        As :func:`cyconv.conv2d_backward`, at once; also ValueError if
        ``dz`` or ``x`` is not 4-D or has unknown chunk sizes.

    Notes
    -----
    {advice}
    For ``dw``, ``x`` is rechunked to one channel chunk.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = da.ones((4, 6, 6, 2), chunks=(2, 3, 3, 2))
    >>> w = np.ones((3, 3, 2, 5))
    >>> dz = da.ones((4, 6, 6, 5), chunks=(1, 6, 6, 5))
    >>> dx, dw, db = cyconv.dask.conv2d_backward(dz, x, w, padding=1)
    >>> dx.chunks == x.chunks, dw.shape, db.compute().tolist()
    (True, (3, 3, 2, 5), [144.0, 144.0, 144.0, 144.0, 144.0])
    """
    layout = parse_layout(layout)
    dz = _as_dask(dz, "dz")
    x = _as_dask(x, "x")
    w_arr = _small(w, "w", 4)
    if layout == "NCHW":
        conv._check_nchw("conv2d_backward", x, w_arr, groups)
        if dz.shape[:2] != (x.shape[0], w_arr.shape[0]):
            raise ValueError(f"dz must have the forward output's shape (m, C_out, n_H_out, "
                             f"n_W_out) = ({x.shape[0]}, {w_arr.shape[0]}, ...) with "
                             f"layout='NCHW', got {dz.shape}")
        try:
            dx_t, dw_t, db = conv2d_backward(_to_nhwc(dz), _to_nhwc(x), oihw_to_hwio(w_arr, "w"),
                                             stride=stride, padding=padding,
                                             num_threads=num_threads, grads=grads,
                                             dilation=dilation, groups=groups)
        except ValueError as e:
            raise conv._nchw_error(e) from None
        return (None if dx_t is None else _to_nchw(dx_t),
                None if dw_t is None else dw_t.transpose(3, 2, 0, 1), db)
    dtype = result_dtype(dz=_empty(dz), x=_empty(x), w=w_arr)
    s, pads, o_hw, d, g = conv._geometry_dg("conv2d_backward", x.shape, w_arr.shape, stride,
                                            padding, dilation, groups)
    m, c_out = x.shape[0], w_arr.shape[3]
    if dz.shape != (m, *o_hw, c_out):
        raise ValueError(f"dz must have the forward output's shape {(m, *o_hw, c_out)}, "
                         f"got {dz.shape}")
    wanted = conv._parse_grads(grads)
    _check_threads(num_threads)
    dz = dz.rechunk({0: x.chunks[0], 3: -1})
    f = _extent(w_arr.shape[:2], d)

    dx = None
    if "dx" in wanted:
        n_h, n_w = x.shape[1:3]
        dz_h, geo_h = _dx_tiles(x.chunks[1], n_h, f[0], s[0], pads[0], o_hw[0])
        dz_w, geo_w = _dx_tiles(x.chunks[2], n_w, f[1], s[1], pads[1], o_hw[1])
        dz_t = _gather(_gather(dz, 1, dz_h), 2, dz_w)
        dx = _map_tiles(_dx_tile, dz_t, x.chunks[:3] + ((x.shape[3],),), dtype, w=w_arr,
                        stride=s, geo_h=geo_h, geo_w=geo_w, c_in=x.shape[3], dx_dtype=dtype,
                        num_threads=num_threads, dilation=d, groups=g)
        if len(x.chunks[3]) > 1:
            dx = dx.rechunk({3: x.chunks[3]})

    dw = db = None
    partial_grads = tuple(g for g in ("dw", "db") if g in wanted)
    if partial_grads:
        x_t, tiles_h, tiles_w = _spatial_tiles(x.rechunk({3: -1}), f, s, pads, o_hw)
        dz_t = dz.rechunk({1: _out_chunks(tiles_h), 2: _out_chunks(tiles_w)})
        x_blocks = x_t.to_delayed().ravel()
        dz_blocks = dz_t.to_delayed().ravel()
        block_pads = [(ph, pw) for ph in _pads(tiles_h) for pw in _pads(tiles_w)]
        parts = []
        for k, (xb, dzb) in enumerate(zip(x_blocks, dz_blocks)):
            pads_k = block_pads[k % len(block_pads)]  # blocks run batch-major
            parts.append(delayed(_dw_db_partial, pure=True, nout=2)(
                xb, dzb, w_arr.shape, s, pads_k, partial_grads, dtype, num_threads, d, g))
        total = _tree_sum(parts)
        if "dw" in wanted:
            dw = da.from_delayed(total[0], w_arr.shape, dtype=dtype)
        if "db" in wanted:
            db = da.from_delayed(total[1], (c_out,), dtype=dtype)
    return dx, dw, db


for _f in (conv2d, max_pool2d, avg_pool2d, conv2d_backward):
    _f.__doc__ = (_f.__doc__ or "").replace("{advice}", _CHUNK_ADVICE)
del _f
