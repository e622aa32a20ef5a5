"""The pools' memory roofline for ``python -m cyconv.bench``: bytes moved and copy bandwidth.

A pooling layer does almost no arithmetic; its floor is the memory traffic.
Each pool row of the benchmark is therefore also reported as the bytes the
operation must move divided by its time (GB/s), and as a fraction of the
machine's copy bandwidth measured in the same run, with an array the size of
``x`` and the row's thread count (``% copy``).

Bytes that must move (each array counted once, at its own itemsize; the
arrays are those of the case in :data:`cyconv.bench.SHAPES`):

========  ==========================================================
op        bytes
========  ==========================================================
max_fwd   read ``x``, write ``p``
avg_fwd   read ``x``, write ``p``
max_fb    forward: read ``x``, write ``p`` and the argmax ``indices``;
          backward: read ``dp`` and ``indices``, write ``dx``
avg_fb    forward: read ``x``, write ``p``; backward: read ``dp``, write ``dx``
========  ==========================================================

``dx`` has the shape of ``x``, ``dp`` and ``indices`` that of ``p``. Overlapping
windows (stride < pool size) are still counted once per array: that is the
minimum any implementation moves, whatever it re-reads from cache.

Imports only the standard library and NumPy.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["pool_bytes", "CopyBandwidth", "copy_rate", "roofline"]

#: The arrays each pool op must read or write, by name (see the module docstring).
POOL_ARRAYS = {
    "max_fwd": ("x", "p"),
    "avg_fwd": ("x", "p"),
    "max_fb": ("x", "p", "indices", "dp", "indices", "dx"),
    "avg_fb": ("x", "p", "dp", "dx"),
}


def pool_bytes(x_shape, p_shape, op, itemsize, index_itemsize=4):
    """Bytes pool op ``op`` must move: see the table in the module docstring.

    Parameters
    ----------
    x_shape, p_shape : tuple of int
        Shapes of the input ``x`` (and ``dx``) and of the output ``p`` (and ``dp``,
        ``indices``).
    op : str
        ``"max_fwd"``, ``"avg_fwd"``, ``"max_fb"`` or ``"avg_fb"``.
    itemsize : int
        Bytes per element of ``x``, ``p``, ``dp``, ``dx``.
    index_itemsize : int
        Bytes per element of the argmax (cyconv's ``indices`` are int32).

    Examples
    --------
    >>> pool_bytes((1, 4, 4, 2), (1, 2, 2, 2), "max_fb", 4)  # x, p, idx, dp, idx, dx
    384
    """
    n_x, n_p = int(np.prod(x_shape)), int(np.prod(p_shape))
    size = {"x": n_x * itemsize, "dx": n_x * itemsize, "p": n_p * itemsize,
            "dp": n_p * itemsize, "indices": n_p * index_itemsize}
    return sum(size[a] for a in POOL_ARRAYS[op])


class CopyBandwidth:
    """``np.copyto`` of ``nbytes`` split over ``threads`` threads: the copy roofline.

    The source is cut into ``threads`` contiguous chunks; the calling thread
    copies the first, pool threads the others (``np.copyto`` releases the GIL),
    so the copy runs on ``threads`` cores at once as the row's kernel does. A
    call moves ``2 * nbytes`` (read + write; the write-allocate reads a
    store-miss costs are not counted, as they are not for the pools either).

    Use as a context manager (it owns its thread pool) and time :meth:`copy`.
    """

    def __init__(self, nbytes, threads):
        self.nbytes = int(nbytes)
        self.threads = int(threads)
        self.src = np.random.default_rng(0).random(max(1, self.nbytes // 8))
        self.dst = np.empty_like(self.src)
        bounds = np.linspace(0, self.src.size, self.threads + 1).astype(int)
        self.chunks = [(self.dst[a:b], self.src[a:b]) for a, b in zip(bounds, bounds[1:])]
        self._pool = (ThreadPoolExecutor(self.threads - 1, thread_name_prefix="copy")
                      if self.threads > 1 else None)

    @property
    def bytes_moved(self):
        """Bytes read plus bytes written by one :meth:`copy`."""
        return 2 * self.src.nbytes

    def copy(self):
        """One copy of the whole array, every chunk on its own thread."""
        if self._pool is None:
            np.copyto(self.dst, self.src)
            return
        futures = [self._pool.submit(np.copyto, d, s) for d, s in self.chunks[1:]]
        np.copyto(*self.chunks[0])
        for f in futures:
            f.result()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def copy_rate(nbytes, threads, interleave):
    """The copy roofline at ``nbytes`` and ``threads``: ``dict(mb, threads, ms, gbps)``.

    ``interleave`` times a ``{"copy": fn}`` dict as the benchmark times its
    rows (:func:`cyconv.bench.interleave` with the run's settings) and returns
    ``{"copy": [seconds, ...]}``; GB/s = bytes read + written / median time.
    """
    with CopyBandwidth(nbytes, threads) as cb:
        t = float(np.median(interleave({"copy": cb.copy})["copy"]))
        return dict(mb=round(nbytes / 1e6, 2), threads=threads, ms=t * 1e3,
                    gbps=cb.bytes_moved / t / 1e9)


def index_itemsize():
    """Bytes per element of the argmax cyconv's ``max_fb`` keeps (asked, not assumed)."""
    import cyconv

    return cyconv.max_pool2d(np.zeros((1, 1, 1, 1)), 1, return_indices=True)[1].itemsize


def roofline(op, x_shape, p_shape, itemsize, ms, copy):
    """A pool row's roofline columns from its time ``ms`` and the ``copy`` rate (or None).

    Returns ``dict(bytes_moved, gbps, copy_gbps, copy_mb, copy_fraction)``
    (the last three None without ``copy``).
    """
    moved = pool_bytes(x_shape, p_shape, op, itemsize, index_itemsize=index_itemsize())
    gbps = moved / ms / 1e6
    out = dict(bytes_moved=moved, gbps=gbps, copy_gbps=None, copy_mb=None, copy_fraction=None)
    if copy is not None:
        out.update(copy_gbps=copy["gbps"], copy_mb=copy["mb"], copy_fraction=gbps / copy["gbps"])
    return out
