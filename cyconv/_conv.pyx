"""Convolution kernels: forward, dx and dw/db (NHWC activations, HWIO filters).

Private: ``cyconv/conv.py`` validates every argument, allocates every output
and passes ready, C-contiguous, non-empty buffers; nothing here can fail.

All three passes run on one register-tile micro-kernel (``_conv_simd.h``):
a tile of up to 8 pixels x 1-2 SIMD vectors of channels that accumulates over
a list of taps. This module decides the tiles: it packs the operand read as
vectors into zero-padded blocks of ``NB`` channels, lists the taps of each
tile (taps in the padding are left out; only narrow images, where most
columns would straddle the padding, run on a zero-padded copy of x or dz),
and splits the work over threads. Every output element is summed in an
order fixed by the shapes alone, so results are bitwise identical whatever
the thread count.
"""
import os

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stddef cimport ptrdiff_t
from libc.string cimport memcpy, memset

from cyconv._window cimport tap_begin, tap_end


cdef extern from "_conv_simd.h" nogil:
    ctypedef void (*tile_f32_t)(int P, int NV, const float *inp, ptrdiff_t base,
                                ptrdiff_t in_ps, ptrdiff_t in_ks, const float *w, ptrdiff_t w_ks,
                                const ptrdiff_t *in_off, const ptrdiff_t *w_off,
                                ptrdiff_t ntaps, ptrdiff_t K, float *out, ptrdiff_t out_ps,
                                int nch, const float *bias, int accumulate)
    ctypedef void (*tile_f64_t)(int P, int NV, const double *inp, ptrdiff_t base,
                                ptrdiff_t in_ps, ptrdiff_t in_ks, const double *w, ptrdiff_t w_ks,
                                const ptrdiff_t *in_off, const ptrdiff_t *w_off,
                                ptrdiff_t ntaps, ptrdiff_t K, double *out, ptrdiff_t out_ps,
                                int nch, const double *bias, int accumulate)
    ctypedef void (*dot_f32_t)(int P, int C, const float *inp, ptrdiff_t base,
                               ptrdiff_t in_ps, const float *w, ptrdiff_t w_cs,
                               const ptrdiff_t *in_off, const ptrdiff_t *w_off,
                               ptrdiff_t ntaps, ptrdiff_t K, float *out, ptrdiff_t out_ps)
    dot_f32_t cyc_dot_f32_at(int level)
    int cyc_dot_max_pixels()
    int cyc_dot_max_channels()
    tile_f32_t cyc_tile_f32_at(int level)
    tile_f64_t cyc_tile_f64_at(int level)
    int cyc_lanes(int level, int itemsize)
    int cyc_max_pixels(int nv)
    int cyc_cpu_max_level "cyc_cpu_max_level_old" ()


# CPU levels the tile is compiled for, lowest first (index = level number).
LEVELS = ("baseline", "x86-64-v3", "x86-64-v4")
cdef int _level = cyc_cpu_max_level()   # the level every call uses


def cpu_levels():
    """The CPU levels this build has and this CPU runs, lowest first.

    Returns
    -------
    tuple of str
        A prefix of :data:`LEVELS`; only ``("baseline",)`` off x86-64.
    """
    return LEVELS[:cyc_cpu_max_level() + 1]


def cpu_level():
    """The CPU level the convolution kernels use now (a name from :data:`LEVELS`)."""
    return LEVELS[_level]


def set_cpu_level(name):
    """Make every later call use the CPU level ``name`` (one of :func:`cpu_levels`).

    Raises
    ------
    ValueError
        ``name`` is not a level, or not one this build and CPU run.
    """
    global _level
    if name not in LEVELS:
        raise ValueError(f"unknown CPU level {name!r}; expected one of {', '.join(LEVELS)}")
    supported = cpu_levels()
    if name not in supported:
        raise ValueError(f"CPU level {name!r} is not supported by this CPU or build; "
                         f"supported: {', '.join(supported)}")
    _level = LEVELS.index(name)


# Output pixels per group of rows in the dw reduction (see conv2d_backward_dw).
cdef enum:
    DW_GROUP_PIXELS = 1024


cdef inline void _tile(int level, int P, int NV, const floating *inp, ptrdiff_t base,
                       ptrdiff_t in_ps, ptrdiff_t in_ks,
                       const floating *w, ptrdiff_t w_ks,
                       const ptrdiff_t *in_off, const ptrdiff_t *w_off,
                       ptrdiff_t ntaps, ptrdiff_t K, floating *out, ptrdiff_t out_ps,
                       int nch, const floating *bias, bint accumulate) noexcept nogil:
    if floating is float:
        cyc_tile_f32_at(level)(P, NV, inp, base, in_ps, in_ks, w, w_ks, in_off, w_off,
                               ntaps, K, out, out_ps, nch, bias, accumulate)
    else:
        cyc_tile_f64_at(level)(P, NV, inp, base, in_ps, in_ks, w, w_ks, in_off, w_off,
                               ntaps, K, out, out_ps, nch, bias, accumulate)


cdef inline void _dx_tile(bint dot, int level, int P, int nv, const floating *dz,
                          ptrdiff_t base, ptrdiff_t in_ps, const floating *wblk, ptrdiff_t nb,
                          const ptrdiff_t *in_off, const ptrdiff_t *w_off, ptrdiff_t nt,
                          ptrdiff_t c_out, floating *out, ptrdiff_t out_ps,
                          int nch) noexcept nogil:
    # One dx tile: the dot-product form (float32 only: w read in place, nch
    # input channels) or the register tile (packed w, a block of nb input
    # channels). conv2d_backward_dx sets `dot` for float32 layers only.
    if floating is float:
        if dot:
            cyc_dot_f32_at(level)(P, nch, dz, base, in_ps, wblk, c_out, in_off, w_off, nt,
                                  c_out, out, out_ps)
            return
    _tile(level, P, nv, dz, base, in_ps, 1, wblk, nb, in_off, w_off, nt, c_out,
          out, out_ps, nch, <const floating *> NULL, False)


cdef int _tile_level(int level, Py_ssize_t itemsize, Py_ssize_t channels) noexcept:
    # A layer with few channels (at most 32 bytes of them) runs the AVX2 tile
    # on an AVX-512 CPU: half-empty 64-byte vectors would waste the difference.
    if level == 2 and channels * itemsize <= 32:
        return 1
    return level


cdef int _tile_vectors(int level, Py_ssize_t itemsize, Py_ssize_t channels) noexcept:
    # Vectors per tile pixel: one if a single vector holds every channel.
    return 1 if channels <= cyc_lanes(level, <int> itemsize) else 2


cdef int _threads_for(int num_threads, double fmas) noexcept:
    # Below ~130k multiply-adds waking a second thread costs more than it
    # saves. Results never depend on the thread count, only the speed does.
    return 1 if fmas < 131072 else num_threads


cdef void _pack_blocks(const floating *src, ptrdiff_t n_outer, ptrdiff_t c, ptrdiff_t nb,
                       floating *dst) noexcept nogil:
    # src (n_outer, c) -> dst (ceil(c / nb), n_outer, nb), zero-padded.
    cdef ptrdiff_t cb, o, j, n_cb = (c + nb - 1) // nb
    for cb in range(n_cb):
        for o in range(n_outer):
            for j in range(nb):
                dst[(cb * n_outer + o) * nb + j] = (
                    src[o * c + cb * nb + j] if cb * nb + j < c else 0)


cdef void _pack_blocks_t(const floating *w, ptrdiff_t taps, ptrdiff_t c_in, ptrdiff_t c_out,
                         ptrdiff_t nb, floating *dst) noexcept nogil:
    # w (taps, c_in, c_out) -> dst (ceil(c_in / nb), taps, c_out, nb), zero-padded:
    # blocks of input channels with the sum over output channels inside.
    cdef ptrdiff_t cb, t, co, j, ci, n_cb = (c_in + nb - 1) // nb
    for cb in range(n_cb):
        for t in range(taps):
            for co in range(c_out):
                for j in range(nb):
                    ci = cb * nb + j
                    dst[((cb * taps + t) * c_out + co) * nb + j] = (
                        w[(t * c_in + ci) * c_out + co] if ci < c_in else 0)


cdef inline Py_ssize_t _floor_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # floor(a / b) for b > 0 (the module divides with C semantics, cdivision).
    return a // b if a >= 0 else -((-a + b - 1) // b)


cdef bint _all_finite(const floating *a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating acc = 0
    for j in range(n):
        acc = acc + (a[j] - a[j])   # NaN for inf and NaN, 0 otherwise
    return acc == 0


cdef floating *_padded_columns(const floating *src, Py_ssize_t rows, Py_ssize_t width,
                               Py_ssize_t ch, Py_ssize_t L, Py_ssize_t R) except NULL:
    # A copy of src (rows, width, ch) with L zero columns before and R after.
    cdef Py_ssize_t w2 = width + L + R, r
    cdef floating *dst = <floating *> _alloc(rows * w2 * ch * sizeof(floating))
    with nogil:
        for r in range(rows):
            memset(dst + r * w2 * ch, 0, L * ch * sizeof(floating))
            memcpy(dst + (r * w2 + L) * ch, src + r * width * ch, width * ch * sizeof(floating))
            memset(dst + (r * w2 + L + width) * ch, 0, R * ch * sizeof(floating))
    return dst


cdef void *_alloc(size_t n_bytes) except NULL:
    cdef void *p = PyMem_Malloc(n_bytes if n_bytes > 0 else 1)
    if p == NULL:
        raise MemoryError(f"cyconv: cannot allocate {n_bytes} bytes of scratch space")
    return p


cdef inline ptrdiff_t _first_out(ptrdiff_t p, ptrdiff_t k, ptrdiff_t s) noexcept nogil:
    # Smallest o >= 0 with o * s - p + k >= 0.
    return 0 if p - k <= 0 else (p - k + s - 1) // s


cdef inline ptrdiff_t _end_out(ptrdiff_t p, ptrdiff_t k, ptrdiff_t s, ptrdiff_t n,
                               ptrdiff_t n_out) noexcept nogil:
    # One past the largest o < n_out with o * s - p + k <= n - 1.
    cdef ptrdiff_t t = n - 1 + p - k
    if t < 0:
        return 0
    t = t // s + 1
    return t if t < n_out else n_out


cdef inline void _interior_columns(ptrdiff_t p_l, ptrdiff_t f_w, ptrdiff_t s_w, ptrdiff_t n_w,
                                   ptrdiff_t o_w, ptrdiff_t *ow_a, ptrdiff_t *ow_b) noexcept nogil:
    # [ow_a, ow_b): the output columns whose whole window lies inside x
    # (empty, with ow_a == ow_b, when the kernel is wider than the image).
    ow_a[0] = _first_out(p_l, 0, s_w)
    ow_b[0] = _end_out(p_l, f_w - 1, s_w, n_w, o_w)
    if ow_a[0] > o_w:
        ow_a[0] = o_w
    if ow_b[0] < ow_a[0]:
        ow_b[0] = ow_a[0]


cdef inline ptrdiff_t _count(ptrdiff_t first, ptrdiff_t end, ptrdiff_t step) noexcept nogil:
    # Length of range(first, end, step) for step >= 1, first >= 0.
    return (end - first + step - 1) // step if first < end else 0


cdef void _forward_row(const floating *x, const floating *wpack, const floating *bpack,
                       floating *z, ptrdiff_t *in_off, ptrdiff_t *w_off,
                       ptrdiff_t oh, ptrdiff_t n_h, ptrdiff_t n_w, ptrdiff_t c_in,
                       ptrdiff_t f_h, ptrdiff_t f_w, ptrdiff_t o_w, ptrdiff_t c_out,
                       ptrdiff_t s_h, ptrdiff_t s_w, ptrdiff_t p_t, ptrdiff_t p_l,
                       int level, int nv, ptrdiff_t nb) noexcept nogil:
    # x: one image (n_h, n_w, c_in); z: one output row (o_w, c_out).
    # Columns whose window lies inside the input share one tap list and run
    # in tiles of P pixels; the few edge columns run one by one.
    cdef ptrdiff_t kh0 = tap_begin(oh, s_h, p_t), kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
    cdef ptrdiff_t ow_a, ow_b
    cdef ptrdiff_t kh, kw, ow, nt, cb, n_cb = (c_out + nb - 1) // nb
    cdef ptrdiff_t w_blk = f_h * f_w * c_in * nb
    cdef ptrdiff_t *e_in = in_off + f_h * f_w
    cdef ptrdiff_t *e_w = w_off + f_h * f_w
    cdef int mr = cyc_max_pixels(nv), P, nch
    _interior_columns(p_l, f_w, s_w, n_w, o_w, &ow_a, &ow_b)
    nt = 0
    for kh in range(kh0, kh1):
        for kw in range(f_w):
            in_off[nt] = ((oh * s_h - p_t + kh) * n_w - p_l + kw) * c_in
            w_off[nt] = (kh * f_w + kw) * c_in * nb
            nt += 1
    for cb in range(n_cb):
        nch = <int>(c_out - cb * nb if c_out - cb * nb < nb else nb)
        ow = ow_a
        while ow < ow_b:
            P = <int>(ow_b - ow if ow_b - ow < mr else mr)
            _tile(level, P, nv, x, ow * s_w * c_in, s_w * c_in, 1, wpack + cb * w_blk, nb,
                  in_off, w_off, nt, c_in, z + ow * c_out + cb * nb, c_out, nch,
                  bpack + cb * nb, False)
            ow += P
        for ow in range(ow_a):
            _forward_edge(x, wpack + cb * w_blk, bpack + cb * nb, z, e_in, e_w, oh, ow,
                          n_h, n_w, c_in, f_h, f_w, c_out, s_h, s_w, p_t, p_l,
                          level, nv, nb, cb, nch)
        for ow in range(ow_b, o_w):
            _forward_edge(x, wpack + cb * w_blk, bpack + cb * nb, z, e_in, e_w, oh, ow,
                          n_h, n_w, c_in, f_h, f_w, c_out, s_h, s_w, p_t, p_l,
                          level, nv, nb, cb, nch)


cdef inline void _forward_edge(const floating *x, const floating *wblk,
                               const floating *bblk, floating *z,
                               ptrdiff_t *e_in, ptrdiff_t *e_w, ptrdiff_t oh, ptrdiff_t ow,
                               ptrdiff_t n_h, ptrdiff_t n_w, ptrdiff_t c_in,
                               ptrdiff_t f_h, ptrdiff_t f_w, ptrdiff_t c_out,
                               ptrdiff_t s_h, ptrdiff_t s_w, ptrdiff_t p_t, ptrdiff_t p_l,
                               int level, int nv, ptrdiff_t nb, ptrdiff_t cb, int nch) noexcept nogil:
    # One output column whose window crosses the padding: its own tap list.
    cdef ptrdiff_t kh, kw, ne = 0
    for kh in range(tap_begin(oh, s_h, p_t), tap_end(oh, s_h, p_t, n_h, f_h)):
        for kw in range(tap_begin(ow, s_w, p_l), tap_end(ow, s_w, p_l, n_w, f_w)):
            e_in[ne] = ((oh * s_h - p_t + kh) * n_w + ow * s_w - p_l + kw) * c_in
            e_w[ne] = (kh * f_w + kw) * c_in * nb
            ne += 1
    _tile(level, 1, nv, x, 0, 0, 1, wblk, nb, e_in, e_w, ne, c_in,
          z + ow * c_out + cb * nb, c_out, nch, bblk, False)


def conv2d_forward(const floating[:, :, :, ::1] x,     # IN  (m, n_h, n_w, c_in)
                   const floating[:, :, :, ::1] w,     # IN  (f_h, f_w, c_in, c_out)
                   const floating[::1] b,              # IN  (c_out,)
                   floating[:, :, :, ::1] z,           # OUT (m, o_h, o_w, c_out)
                   Py_ssize_t s_h, Py_ssize_t s_w,
                   Py_ssize_t p_t, Py_ssize_t p_l,
                   int num_threads):
    """z = conv(x, w) + b, parallel over batch x output rows.

    Parameters
    ----------
    x, w, b : C-contiguous memoryviews, non-empty
        Input, filters and bias.
    z : C-contiguous memoryview
        Output, fully overwritten.
    s_h, s_w : int
        Strides (>= 1).
    p_t, p_l : int
        Padding before the height and width axes (the padding after each
        axis is implied by ``z``'s shape).
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t m = z.shape[0], o_h = z.shape[1], o_w = z.shape[2]
    cdef Py_ssize_t c_out = z.shape[3]
    cdef Py_ssize_t n_h = x.shape[1], n_w = x.shape[2], c_in = x.shape[3]
    cdef Py_ssize_t f_h = w.shape[0], f_w = w.shape[1]
    cdef Py_ssize_t row, i, oh, n_taps = f_h * f_w
    cdef int level = _tile_level(_level, sizeof(floating), c_out)
    cdef int nv = _tile_vectors(level, sizeof(floating), c_out)
    cdef Py_ssize_t nb = nv * cyc_lanes(level, sizeof(floating))
    cdef Py_ssize_t n_cb = (c_out + nb - 1) // nb
    cdef int n_threads = _threads_for(num_threads, <double> z.size * n_taps * c_in)
    # Scratch: filters (n_cb, f_h, f_w, c_in, nb) and bias (n_cb, nb) in
    # zero-padded channel blocks; per thread, the tap lists of a row (interior
    # and edge offsets into x and the packed filters).
    cdef floating *wpack = <floating *> _alloc((n_cb * n_taps * c_in * nb + n_cb * nb)
                                               * sizeof(floating))
    cdef floating *bpack = wpack + n_cb * n_taps * c_in * nb
    cdef ptrdiff_t *taps = NULL
    cdef ptrdiff_t *offs = NULL
    # Narrow images (kernel wide next to the image) would run mostly edge
    # columns, one pixel per tile: there x is copied with its left and right
    # zero padding, and every column is a full tile. Skipped when w holds a
    # non-finite value (inf * 0 would turn the sum into NaN).
    cdef floating *xpad = NULL
    cdef const floating *xs = &x[0, 0, 0, 0]
    cdef Py_ssize_t n_w2 = n_w, p_l2 = p_l
    cdef Py_ssize_t R = (o_w - 1) * s_w - p_l + f_w - n_w     # zero columns after
    if R < 0:
        R = 0
    if ((f_w - 1) * 8 > n_w and (p_l > 0 or R > 0) and p_l <= f_w and R <= f_w
            and _all_finite(&w[0, 0, 0, 0], n_taps * c_in * c_out)):
        n_w2 = n_w + p_l + R
        p_l2 = 0
    try:
        taps = <ptrdiff_t *> _alloc(n_threads * 4 * n_taps * sizeof(ptrdiff_t))
        if n_w2 != n_w:
            xpad = _padded_columns(xs, m * n_h, n_w, c_in, p_l, R)
            xs = xpad
        with nogil:
            _pack_blocks(&w[0, 0, 0, 0], n_taps * c_in, c_out, nb, wpack)
            _pack_blocks(&b[0], 1, c_out, nb, bpack)
            with parallel(num_threads=n_threads):
                offs = taps + threadid() * 4 * n_taps
                for row in prange(m * o_h, schedule="static"):
                    i = row // o_h
                    oh = row % o_h
                    _forward_row(xs + i * n_h * n_w2 * c_in, wpack, bpack, &z[i, oh, 0, 0],
                                 offs, offs + 2 * n_taps,
                                 oh, n_h, n_w2, c_in, f_h, f_w, o_w, c_out,
                                 s_h, s_w, p_t, p_l2, level, nv, nb)
    finally:
        PyMem_Free(taps)
        PyMem_Free(wpack)
        PyMem_Free(xpad)


cdef void _dx_row(const floating *dz, const floating *wpack, floating *dx,
                  ptrdiff_t *in_off, ptrdiff_t *w_off,
                  ptrdiff_t ih, ptrdiff_t n_w, ptrdiff_t c_in,
                  ptrdiff_t f_h, ptrdiff_t f_w, ptrdiff_t o_h, ptrdiff_t o_w,
                  ptrdiff_t c_out, ptrdiff_t s_h, ptrdiff_t s_w,
                  ptrdiff_t p_t, ptrdiff_t p_l, int level, int nv, ptrdiff_t nb,
                  bint dot) noexcept nogil:
    # dz: one image's gradient (o_h, o_w, c_out); dx: one input row (n_w, c_in).
    # wpack: the packed filters for the register tile, or w itself (HWIO) for
    # the dot form, whose blocks are nb input channels of w.
    # Gather form (each dx element is written by one thread, no atomics):
    # dx[ih, iw] sums dz[oh, ow] . w[kh, kw] over oh * s_h - p_t + kh = ih and
    # ow * s_w - p_l + kw = iw. The columns iw = r, r + s_w, r + 2 s_w, ...
    # of one phase r share their kw taps, and consecutive ones read
    # consecutive dz columns, so they form the tile's pixels.
    cdef ptrdiff_t kh, kw, th, tw, oh, q, r, j, j_a, j_b, n_j, nt, cb
    cdef ptrdiff_t n_cb = (c_in + nb - 1) // nb
    cdef ptrdiff_t w_blk = nb * c_out if dot else f_h * f_w * c_out * nb
    cdef ptrdiff_t w_tap = c_in * c_out if dot else c_out * nb
    cdef ptrdiff_t *e_in = in_off + f_h * f_w
    cdef ptrdiff_t *e_w = w_off + f_h * f_w
    cdef int mr = cyc_dot_max_pixels() if dot else cyc_max_pixels(nv), P, nch
    for r in range(s_w if s_w < n_w else n_w):
        n_j = (n_w - r + s_w - 1) // s_w
        # Columns j in [j_a, j_b) have every tap of the phase inside dz.
        j_a = 0
        j_b = n_j
        for tw in range(_count((r + p_l) % s_w, f_w, s_w)):
            kw = (r + p_l) % s_w + tw * s_w
            q = (r + p_l - kw) // s_w        # exact division: ow = q + j
            if -q > j_a:
                j_a = -q
            if o_w - q < j_b:
                j_b = o_w - q
        if j_a > n_j:
            j_a = n_j
        if j_b < j_a:
            j_b = j_a
        nt = 0
        for th in range(_count((ih + p_t) % s_h, f_h, s_h)):
            kh = (ih + p_t) % s_h + th * s_h
            oh = (ih + p_t - kh) // s_h
            if oh < 0 or oh >= o_h:
                continue
            for tw in range(_count((r + p_l) % s_w, f_w, s_w)):
                kw = (r + p_l) % s_w + tw * s_w
                in_off[nt] = (oh * o_w + (r + p_l - kw) // s_w) * c_out
                w_off[nt] = (kh * f_w + kw) * w_tap
                nt += 1
        for cb in range(n_cb):
            nch = <int>(c_in - cb * nb if c_in - cb * nb < nb else nb)
            j = j_a
            while j < j_b:
                P = <int>(j_b - j if j_b - j < mr else mr)
                _dx_tile(dot, level, P, nv, dz, j * c_out, c_out, wpack + cb * w_blk, nb,
                         in_off, w_off, nt, c_out, dx + (r + j * s_w) * c_in + cb * nb,
                         s_w * c_in, nch)
                j += P
            for j in range(j_a):
                _dx_edge(dz, wpack + cb * w_blk, dx, e_in, e_w, ih, r + j * s_w, n_w, c_in,
                         f_h, f_w, o_h, o_w, c_out, s_h, s_w, p_t, p_l, level, nv, nb, cb,
                         nch, dot, w_tap)
            for j in range(j_b, n_j):
                _dx_edge(dz, wpack + cb * w_blk, dx, e_in, e_w, ih, r + j * s_w, n_w, c_in,
                         f_h, f_w, o_h, o_w, c_out, s_h, s_w, p_t, p_l, level, nv, nb, cb,
                         nch, dot, w_tap)


cdef inline void _dx_edge(const floating *dz, const floating *wblk, floating *dx,
                          ptrdiff_t *e_in, ptrdiff_t *e_w, ptrdiff_t ih, ptrdiff_t iw,
                          ptrdiff_t n_w, ptrdiff_t c_in,
                          ptrdiff_t f_h, ptrdiff_t f_w, ptrdiff_t o_h, ptrdiff_t o_w,
                          ptrdiff_t c_out, ptrdiff_t s_h, ptrdiff_t s_w,
                          ptrdiff_t p_t, ptrdiff_t p_l, int level, int nv, ptrdiff_t nb,
                          ptrdiff_t cb, int nch, bint dot, ptrdiff_t w_tap) noexcept nogil:
    # One dx column some of whose taps fall outside dz: its own tap list.
    cdef ptrdiff_t kh, kw, th, tw, oh, ow, ne = 0
    for th in range(_count((ih + p_t) % s_h, f_h, s_h)):
        kh = (ih + p_t) % s_h + th * s_h
        oh = (ih + p_t - kh) // s_h
        if oh < 0 or oh >= o_h:
            continue
        for tw in range(_count((iw + p_l) % s_w, f_w, s_w)):
            kw = (iw + p_l) % s_w + tw * s_w
            ow = (iw + p_l - kw) // s_w
            if ow < 0 or ow >= o_w:
                continue
            e_in[ne] = (oh * o_w + ow) * c_out
            e_w[ne] = (kh * f_w + kw) * w_tap
            ne += 1
    _dx_tile(dot, level, 1, nv, dz, 0, 0, wblk, nb, e_in, e_w, ne, c_out,
             dx + iw * c_in + cb * nb, c_in, nch)


def conv2d_backward_dx(const floating[:, :, :, ::1] dz,   # IN  (m, o_h, o_w, c_out)
                       const floating[:, :, :, ::1] w,    # IN  (f_h, f_w, c_in, c_out)
                       floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c_in)
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l,
                       int num_threads):
    """dx = conv_transpose(dz, w), parallel over batch x input rows.

    Parameters
    ----------
    dz : C-contiguous memoryview, non-empty
        Gradient of the output.
    w : C-contiguous memoryview
        Filters.
    dx : C-contiguous memoryview
        Gradient of the input, fully overwritten.
    s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`conv2d_forward`.
    """
    cdef Py_ssize_t m = dx.shape[0], n_h = dx.shape[1], n_w = dx.shape[2]
    cdef Py_ssize_t c_in = dx.shape[3]
    cdef Py_ssize_t o_h = dz.shape[1], o_w = dz.shape[2], c_out = dz.shape[3]
    cdef Py_ssize_t f_h = w.shape[0], f_w = w.shape[1]
    cdef Py_ssize_t row, i, ih, n_taps = f_h * f_w
    cdef int level = _tile_level(_level, sizeof(floating), c_in)
    cdef int nv = _tile_vectors(level, sizeof(floating), c_in)
    cdef Py_ssize_t nb = nv * cyc_lanes(level, sizeof(floating))
    cdef int n_threads = _threads_for(num_threads, <double> dz.size * n_taps * c_in)
    # Few input channels (float32): a vector over c_in would be mostly empty,
    # so dx takes the dot-product form, vectors over c_out (at the widest level whose
    # lanes divide c_out), reading w in place, in blocks of up to 3 channels.
    cdef bint dot = False
    cdef int dot_level = _level
    while dot_level > 0 and c_out % cyc_lanes(dot_level, sizeof(floating)):
        dot_level -= 1
    if (c_in <= 4 and c_out % cyc_lanes(dot_level, sizeof(floating)) == 0
            and floating is float):   # measured: for float64 the register tile wins
        dot, level, nb = True, dot_level, cyc_dot_max_channels()
    cdef Py_ssize_t n_cb = (c_in + nb - 1) // nb
    # Scratch: for the register tile, filters as (n_cb, f_h, f_w, c_out, nb),
    # blocks of input channels with the sum over output channels inside; per
    # thread, a row's tap lists.
    cdef floating *wpack = NULL
    cdef ptrdiff_t *taps = NULL
    cdef ptrdiff_t *offs = NULL
    # Narrow images (kernel wide next to the image): most dx columns would be
    # edge columns, one pixel per tile. There dz is copied with L zero columns
    # before and R after, every column becomes interior, and the copy is read
    # as a dz whose padding before the width axis is p_l + L * s_w. Skipped
    # when w holds a non-finite value (inf * 0 would turn a sum into NaN).
    cdef floating *dzpad = NULL
    cdef const floating *dzs = &dz[0, 0, 0, 0]
    cdef Py_ssize_t L = 0, R = 0, o_w2 = o_w, p_l2 = p_l
    cdef Py_ssize_t lo = _floor_div(p_l - (f_w - 1), s_w)   # smallest ow any tap asks for
    cdef Py_ssize_t hi = (n_w - 1 + p_l) // s_w              # largest
    if (f_w - 1) * 8 > n_w and _all_finite(&w[0, 0, 0, 0], n_taps * c_in * c_out):
        L = -lo if lo < 0 else 0
        R = hi - (o_w - 1) if hi > o_w - 1 else 0
        o_w2 = o_w + L + R
        p_l2 = p_l + L * s_w
    try:
        taps = <ptrdiff_t *> _alloc(n_threads * 4 * n_taps * sizeof(ptrdiff_t))
        if not dot:
            wpack = <floating *> _alloc(n_cb * n_taps * c_out * nb * sizeof(floating))
        if o_w2 != o_w:
            dzpad = _padded_columns(dzs, m * o_h, o_w, c_out, L, R)
            dzs = dzpad
        with nogil:
            if not dot:
                _pack_blocks_t(&w[0, 0, 0, 0], n_taps, c_in, c_out, nb, wpack)
            with parallel(num_threads=n_threads):
                offs = taps + threadid() * 4 * n_taps
                for row in prange(m * n_h, schedule="static"):
                    i = row // n_h
                    ih = row % n_h
                    _dx_row(dzs + i * o_h * o_w2 * c_out, &w[0, 0, 0, 0] if dot else wpack,
                            &dx[i, ih, 0, 0], offs, offs + 2 * n_taps, ih, n_w, c_in, f_h, f_w,
                            o_h, o_w2, c_out, s_h, s_w, p_t, p_l2, level, nv, nb, dot)
    finally:
        PyMem_Free(taps)
        PyMem_Free(wpack)
        PyMem_Free(dzpad)


cdef ptrdiff_t _dw_taps(ptrdiff_t *in_off, ptrdiff_t *w_off, ptrdiff_t r0, ptrdiff_t r1,
                        ptrdiff_t kh, ptrdiff_t col, ptrdiff_t ow, ptrdiff_t n_h,
                        ptrdiff_t n_w, ptrdiff_t c_in, ptrdiff_t o_h, ptrdiff_t o_w,
                        ptrdiff_t s_h, ptrdiff_t p_t, ptrdiff_t dz_ps) noexcept nogil:
    # Tap list of a dw tile: the output rows r0 .. r1 - 1 whose input row for
    # kernel row kh is inside x; x at input column `col`, dz at output column ow.
    cdef ptrdiff_t row, i, oh, ih, nt = 0
    for row in range(r0, r1):
        i = row // o_h
        oh = row % o_h
        ih = oh * s_h - p_t + kh
        if ih < 0 or ih >= n_h:
            continue
        in_off[nt] = ((i * n_h + ih) * n_w + col) * c_in
        w_off[nt] = (row * o_w + ow) * dz_ps
        nt += 1
    return nt


cdef void _dw_item(const floating *x, const floating *dzb, floating *dw,
                   ptrdiff_t *in_off, ptrdiff_t *w_off, ptrdiff_t item,
                   ptrdiff_t r0, ptrdiff_t r1, bint accumulate,
                   ptrdiff_t n_h, ptrdiff_t n_w, ptrdiff_t c_in,
                   ptrdiff_t f_h, ptrdiff_t f_w, ptrdiff_t o_h, ptrdiff_t o_w,
                   ptrdiff_t c_out, ptrdiff_t s_h, ptrdiff_t s_w,
                   ptrdiff_t p_t, ptrdiff_t p_l, int level, int nv, ptrdiff_t nb,
                   ptrdiff_t dz_ps, ptrdiff_t dz_cb) noexcept nogil:
    # One tile of dw: kernel row kh x P consecutive (kw, ci) pairs x one block
    # of NB output channels. Within a kernel row, dw[kh] is (f_w * c_in, c_out)
    # and the x values of the pairs kw * c_in + ci at one output column are
    # consecutive too, so a tile may span several kw (which keeps tiles full
    # when c_in is small). Sums over the output rows r0 .. r1 - 1 (the tap
    # list) and, first, the output columns where every kw is inside x, then,
    # per kw, the edge columns where only some are.
    # dzb: dz as rows of dz_ps values per output pixel, block cb at cb * dz_cb.
    cdef int mr = cyc_max_pixels(nv), P, nch, pk
    cdef ptrdiff_t n_r = f_w * c_in, n_rt = (n_r + mr - 1) // mr, n_cb = (c_out + nb - 1) // nb
    cdef ptrdiff_t cb = item % n_cb, r = (item // n_cb) % n_rt * mr, kh = item // (n_cb * n_rt)
    cdef ptrdiff_t ow_a, ow_b, nt = 0, kw, ci0, ci1, lo, hi, e, K
    cdef const floating *dzc = dzb + cb * dz_cb
    cdef floating *out = dw + kh * n_r * c_out + cb * nb
    _interior_columns(p_l, f_w, s_w, n_w, o_w, &ow_a, &ow_b)
    P = <int>(n_r - r if n_r - r < mr else mr)
    nch = <int>(c_out - cb * nb if c_out - cb * nb < nb else nb)
    if ow_b > ow_a:
        nt = _dw_taps(in_off, w_off, r0, r1, kh, ow_a * s_w - p_l, ow_a, n_h, n_w, c_in,
                      o_h, o_w, s_h, p_t, dz_ps)
    _tile(level, P, nv, x, r, 1, s_w * c_in, dzc, dz_ps, in_off, w_off, nt, ow_b - ow_a,
          out + r * c_out, c_out, nch, <const floating *> NULL, accumulate)
    if ow_a == 0 and ow_b == o_w:
        return
    for kw in range(r // c_in, (r + P - 1) // c_in + 1):
        ci0 = r - kw * c_in if r > kw * c_in else 0
        ci1 = r + P - kw * c_in if r + P < (kw + 1) * c_in else c_in
        pk = <int>(ci1 - ci0)
        for e in range(2):     # the edge columns before, then after, the interior
            # kw's valid columns [first, end) minus the interior [ow_a, ow_b); with
            # no interior (ow_a == ow_b, kernel wider than the image) the two
            # pieces split [first, end) at ow_a.
            lo = _first_out(p_l, kw, s_w)
            hi = _end_out(p_l, kw, s_w, n_w, o_w)
            if e == 0:
                hi = ow_a if ow_a < hi else hi
            elif ow_b > lo:
                lo = ow_b
            K = hi - lo
            if K <= 0:
                continue
            nt = _dw_taps(in_off, w_off, r0, r1, kh, lo * s_w - p_l + kw, lo, n_h, n_w,
                          c_in, o_h, o_w, s_h, p_t, dz_ps)
            _tile(level, pk, nv, x, ci0, 1, s_w * c_in, dzc, dz_ps, in_off, w_off, nt, K,
                  out + (kw * c_in + ci0) * c_out, c_out, nch, <const floating *> NULL, True)


cdef void _dw_items(const floating *x, const floating *dzb, const floating *dz,
                    floating *dw, floating *db, ptrdiff_t *offs,
                    ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t n_items, ptrdiff_t group,
                    ptrdiff_t n_rows, ptrdiff_t n_h, ptrdiff_t n_w, ptrdiff_t c_in,
                    ptrdiff_t f_h, ptrdiff_t f_w, ptrdiff_t o_h, ptrdiff_t o_w,
                    ptrdiff_t c_out, ptrdiff_t s_h, ptrdiff_t s_w,
                    ptrdiff_t p_t, ptrdiff_t p_l, int level, int nv, ptrdiff_t nb,
                    ptrdiff_t dz_ps, ptrdiff_t dz_cb) noexcept nogil:
    # Items i0 .. i1 - 1 over every group of output rows, group by group.
    cdef ptrdiff_t g, r0, r1, item
    for g in range((n_rows + group - 1) // group):
        r0 = g * group
        r1 = r0 + group if r0 + group < n_rows else n_rows
        for item in range(i0, i1):
            if item == n_items:
                _db_rows(dz, db, r0 * o_w, r1 * o_w, c_out)
            else:
                _dw_item(x, dzb, dw, offs, offs + group, item, r0, r1, g > 0,
                         n_h, n_w, c_in, f_h, f_w, o_h, o_w, c_out, s_h, s_w, p_t, p_l,
                         level, nv, nb, dz_ps, dz_cb)


cdef void _db_rows(const floating *dz, floating *db, ptrdiff_t p0, ptrdiff_t p1,
                   ptrdiff_t c_out) noexcept nogil:
    # db += the sum of dz's output pixels p0 .. p1 - 1, in order.
    cdef ptrdiff_t j, co
    for j in range(p0, p1):
        for co in range(c_out):
            db[co] += dz[j * c_out + co]


def conv2d_backward_dw(const floating[:, :, :, ::1] x,      # IN  (m, n_h, n_w, c_in)
                       const floating[:, :, :, ::1] dz,     # IN  (m, o_h, o_w, c_out)
                       floating[:, :, :, ::1] dw,           # OUT (f_h, f_w, c_in, c_out)
                       floating[::1] db,                    # OUT (c_out,)
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l,
                       int num_threads):
    """dw and db as reductions over batch and output pixels.

    dw is split into independent tiles (tap x input channels x a block of
    output channels), shared among threads; each tile sums over every output
    pixel in order. The output rows are taken in groups small enough for
    the cache, every tile carrying its running sum from group to group in
    dw itself, so each element's sum runs in an order fixed by the shapes:
    the result is bitwise identical for any number of threads.

    Parameters
    ----------
    x, dz : C-contiguous memoryviews, non-empty
        Forward input and output gradient.
    dw, db : C-contiguous memoryviews
        Outputs, fully overwritten.
    s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`conv2d_forward`.
    """
    cdef Py_ssize_t n_h = x.shape[1], n_w = x.shape[2], c_in = x.shape[3]
    cdef Py_ssize_t m = dz.shape[0], o_h = dz.shape[1], o_w = dz.shape[2]
    cdef Py_ssize_t c_out = dz.shape[3]
    cdef Py_ssize_t f_h = dw.shape[0], f_w = dw.shape[1], co
    cdef Py_ssize_t n_rows = m * o_h, dz_ps, dz_cb, t
    cdef int level = _tile_level(_level, sizeof(floating), c_out)
    cdef int nv = _tile_vectors(level, sizeof(floating), c_out)
    cdef Py_ssize_t nb = nv * cyc_lanes(level, sizeof(floating))
    cdef Py_ssize_t mr = cyc_max_pixels(nv)
    cdef Py_ssize_t n_items = f_h * ((f_w * c_in + mr - 1) // mr) * ((c_out + nb - 1) // nb)
    cdef int n_threads = _threads_for(num_threads, <double> dz.size * f_h * f_w * c_in)
    # Rows per group (shapes only): about DW_GROUP_PIXELS output pixels, so a
    # tile's slice of dz stays in cache while the dw traffic of carrying the
    # sums from group to group stays small next to the arithmetic.
    cdef Py_ssize_t group = max(1, min(n_rows, DW_GROUP_PIXELS // o_w))
    cdef const floating *dzb = &dz[0, 0, 0, 0]
    cdef floating *dzp = NULL
    cdef ptrdiff_t *taps = NULL
    if c_out % nb == 0:        # blocks read in place: block cb at column cb * nb
        dz_ps, dz_cb = c_out, nb
    else:                      # scratch (n_cb, m * o_h * o_w, nb), zero-padded
        dz_ps, dz_cb = nb, m * o_h * o_w * nb
    try:
        taps = <ptrdiff_t *> _alloc(n_threads * 2 * group * sizeof(ptrdiff_t))
        if c_out % nb:
            dzp = <floating *> _alloc(((c_out + nb - 1) // nb) * dz_cb * sizeof(floating))
            with nogil:
                _pack_blocks(&dz[0, 0, 0, 0], m * o_h * o_w, c_out, nb, dzp)
            dzb = dzp
        with nogil:
            for co in range(c_out):
                db[co] = 0
            # Thread t takes the t-th contiguous share of the items (the last
            # item, n_items, is db) and sweeps the groups at its own pace: no
            # barrier, and the group's rows of x and dz stay in its cache
            # while it runs its items on them.
            for t in prange(n_threads, num_threads=n_threads, schedule="static", chunksize=1):
                _dw_items(&x[0, 0, 0, 0], dzb, &dz[0, 0, 0, 0], &dw[0, 0, 0, 0], &db[0],
                          taps + t * 2 * group,
                          t * (n_items + 1) // n_threads, (t + 1) * (n_items + 1) // n_threads,
                          n_items, group, n_rows, n_h, n_w, c_in, f_h, f_w, o_h, o_w,
                          c_out, s_h, s_w, p_t, p_l, level, nv, nb, dz_ps, dz_cb)
    finally:
        PyMem_Free(taps)
        PyMem_Free(dzp)


def _level_from_environment():
    # CYCONV_CPU_LEVEL forces a level at import; a level this CPU cannot run
    # is an error here rather than a crash (illegal instruction) later.
    name = os.environ.get("CYCONV_CPU_LEVEL", "").strip()
    if name:
        try:
            set_cpu_level(name)
        except ValueError as e:
            raise ValueError(f"CYCONV_CPU_LEVEL: {e}") from None


_level_from_environment()


cdef extern from "_levels.h":
    int cyc_levels_max "cyc_cpu_max_level" ()


def cpu_max_level():
    return cyc_levels_max()
