"""One thread runtime at a time: hold NumPy's BLAS to one thread while cyconv works.

cyconv's kernels run on an OpenMP team (libgomp on Linux); NumPy's matmul runs
on its BLAS's own thread pool (OpenBLAS's pthreads in NumPy's wheels). After a
parallel region each runtime's threads spin-wait for a while for more work,
on the cores the other runtime needs next, so a loop that alternates cyconv
calls with ``@``/``np.dot`` on a machine with few cores gets slower, not
faster, with more threads. :func:`limit_blas_threads` holds the BLAS to one
thread inside a ``with`` block (a ``threadpoolctl.ThreadpoolController``
created once, as scikit-learn does around its OpenMP loops); the OpenMP team
keeps every core. :mod:`cyconv.layers` does this by itself around its dense
layers and around ``Sequential.forward``/``backward``.
"""
from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["limit_blas_threads"]

_lock = threading.Lock()
_controller: Any = None  # threadpoolctl.ThreadpoolController of the BLAS libraries, or False
_held = threading.local()  # .depth: blocks open on this thread


def _blas_controller() -> Any:
    # Built once (it scans the loaded libraries, ~1 ms); False without threadpoolctl.
    global _controller
    if _controller is None:
        with _lock:
            if _controller is None:
                try:  # untyped: imported by name
                    threadpoolctl = importlib.import_module("threadpoolctl")
                except ImportError:  # pragma: no cover - a dependency, but stay usable
                    _controller = False
                else:
                    _controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return _controller


@contextlib.contextmanager
def limit_blas_threads(limit: int = 1) -> Iterator[None]:
    """Hold NumPy's BLAS to ``limit`` threads inside the block.

    Use it around a loop that alternates cyconv calls with your own matrix
    products (``@``, ``np.dot``, ``np.linalg``): each runtime's idle threads
    otherwise spin on the cores the other one needs. The BLAS setting is
    process-wide for the duration of the block and restored at its end;
    OpenMP (cyconv's ``num_threads``) is untouched. Blocks nest: an inner
    block on the same thread changes nothing. Without threadpoolctl (a
    dependency of cyconv) the block does nothing.

    Parameters
    ----------
    limit : int, default 1
        BLAS threads inside the block.

    Examples
    --------
    >>> import numpy as np
    >>> import cyconv
    >>> x = np.ones((4, 8, 8, 3), dtype=np.float32)
    >>> w = np.ones((3, 3, 3, 16), dtype=np.float32)
    >>> head = np.ones((8 * 8 * 16, 10), dtype=np.float32)
    >>> with cyconv.limit_blas_threads():
    ...     for _ in range(3):
    ...         scores = cyconv.conv2d(x, w, padding=1).reshape(4, -1) @ head
    >>> scores.shape
    (4, 10)
    """
    depth = getattr(_held, "depth", 0)
    controller: Any = _blas_controller() if depth == 0 else False
    if not controller:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth = depth
        return
    _held.depth = 1
    try:
        with controller.limit(limits=limit):
            yield
    finally:
        _held.depth = 0
