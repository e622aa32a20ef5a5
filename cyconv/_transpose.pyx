# cython: language_level=3
"""Batched 2-D transposes in parallel: the layout conversions of ``cyconv._layout``.

Converting NCHW activations to NHWC is, per image, the transpose of a
``(C, H*W)`` matrix into ``(H*W, C)``; NHWC to NCHW is the transpose back.
NumPy's ``np.ascontiguousarray(x.transpose(0, 2, 3, 1))`` does this with a
strided copy on one thread: one side of every element is touched with a
large stride, and it moves 2-8 GB/s where a plain copy moves 20 GB/s or more.
Here each matrix is cut into square tiles of ``TILE`` x ``TILE`` elements
(a tile of the source and of the destination stays in the L1 cache), each
tile moves in 4 x 4 float (2 x 2 double) register blocks (``_transpose.h``,
SSE2, which every x86-64 CPU has; a scalar loop elsewhere), and ``prange``
walks all tiles of all images.

Every element is copied, never combined, so the result is the same for any
thread count. Nothing here can fail: ``cyconv._layout`` checks shapes,
dtypes and contiguity before calling.
"""
from cython.parallel cimport prange

cimport cython
from cython cimport floating

# Elements per tile side. Measured on this project's benchmark shapes
# (16, 32 and 64; 1 thread, NCHW <-> NHWC of 1.5-25 MB): 64 was fastest or
# within noise of it in both directions and dtypes; a 64 x 64 float32 tile
# is 16 KiB (float64: 32 KiB), source and destination mostly in L1/L2.
cdef enum:
    TILE = 64


cdef extern from "_transpose.h" nogil:
    void cyc_tile_f32(const float *src, float *dst, Py_ssize_t rows, Py_ssize_t cols,
                      Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1)
    void cyc_tile_f64(const double *src, double *dst, Py_ssize_t rows, Py_ssize_t cols,
                      Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1)


cdef inline void _tile(const floating *src, floating *dst, Py_ssize_t rows, Py_ssize_t cols,
                       Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                       Py_ssize_t c1) noexcept nogil:
    # dst[c, r] = src[r, c] over one tile (4 x 4 register blocks, _transpose.h).
    if floating is float:
        cyc_tile_f32(src, dst, rows, cols, r0, r1, c0, c1)
    else:
        cyc_tile_f64(src, dst, rows, cols, r0, r1, c0, c1)


def transpose_batched(const floating[:, :, ::1] src, floating[:, :, ::1] dst, int n_threads):
    """``dst[b] = src[b].T`` for every ``b``, in parallel over tiles.

    Parameters
    ----------
    src : floating[:, :, ::1], shape (B, R, S)                    # IN
        C-contiguous batch of ``R x S`` matrices.
    dst : floating[:, :, ::1], shape (B, S, R)                    # OUT
        C-contiguous, of ``src``'s dtype; must not overlap ``src``.
    n_threads : int
        OpenMP threads (>= 1). The caller chooses: ``cyconv._layout`` passes 1
        below ``PARALLEL_MIN_ELEMENTS`` (see there why).

    Notes
    -----
    ``NCHW -> NHWC`` is ``src = x.reshape(m, C, H*W)``, ``dst`` of shape
    ``(m, H*W, C)``; ``NHWC -> NCHW`` is ``src = z.reshape(m, H*W, C)``.
    """
    cdef Py_ssize_t n_b = src.shape[0], rows = src.shape[1], cols = src.shape[2]
    cdef Py_ssize_t n_rt = (rows + TILE - 1) // TILE, n_ct = (cols + TILE - 1) // TILE
    cdef Py_ssize_t per_b = n_rt * n_ct, t, b, rt, ct, r0, c0
    cdef Py_ssize_t plane = rows * cols
    if n_b == 0 or plane == 0:
        return
    cdef const floating *s = &src[0, 0, 0]
    cdef floating *d = &dst[0, 0, 0]
    with nogil:
        for t in prange(n_b * per_b, schedule="static", num_threads=n_threads):
            b = t // per_b
            rt = (t % per_b) // n_ct
            ct = t % n_ct
            r0 = rt * TILE
            c0 = ct * TILE
            _tile(s + b * plane, d + b * plane, rows, cols,
                  r0, min(r0 + TILE, rows), c0, min(c0 + TILE, cols))
