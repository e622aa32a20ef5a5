"""Pooling kernels: max and average, forward and backward (NHWC).

Compiled once per CPU level of ``cyconv/_levels.py`` (this module is the
baseline; ``_pool_v3``, ``_pool_v4`` are generated stubs that include this
file); ``cyconv/_dispatch.py`` picks the module of a call.

Private: ``cyconv/pool.py`` validates, allocates and passes ready,
C-contiguous, non-empty buffers; nothing here can fail.
"""
# Speed comes from four choices:
#
# - NHWC puts channels innermost, so every window is walked tap by tap with a
#   unit-stride loop over a block of channels. The block's running max/sum
#   lives in a local array the compiler keeps in vector registers. One pattern
#   in the header (CYCONV_OVER_CHANNELS) covers a window's channels: whole
#   blocks with a compile-time vector count (so they unroll), then the whole
#   vectors left, then the last channels through a one-lane instance of the
#   same kernel, which does the same operations lane by lane.
# - Padding is never materialised: only the taps inside the input are walked
#   (max-pool padding is -inf and avg-pool padding is 0, so skipping them is
#   exact; only the avg-pool divisor needs to know about them).
# - The max-pool selection is branchless (compare and blend), so it vectorises.
# - Per-window bookkeeping stays out of the hot loops: the columns whose
#   windows lie wholly inside the input (_inner_cols, once per call) are
#   stepped through with the full tap count and their row's divisor, and the
#   overlapping-window backwards make one kernel call per input row (the
#   pixel loop inside the header, under a constant vector count).

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.string cimport memcpy, memset

from cyconv._window cimport tap_begin, tap_end


cdef extern from "_pool_simd.h":
    # This module's row of the per-level table (cyconv/_levels.py).
    enum: VBYTES "CYCONV_VBYTES"
    enum: CB "CYCONV_CB"


def level_table():
    """This module's row of the per-level table, as compiled (see ``cyconv/_levels.py``).

    Returns
    -------
    dict
        ``vbytes`` (vector width) and ``pool_block`` (channels per block).
    """
    return dict(vbytes=VBYTES, pool_block=CB)


cdef extern from "_pool_simd.h":
    # The kernels over all c_n channels of one window (or input pixel); see
    # the header. Each is one source per data type, instantiated per CPU level.
    void cy_max_f32(const float *xw, float *out, Py_ssize_t n_kh, Py_ssize_t n_kw,
                    Py_ssize_t row_step, Py_ssize_t col_step, Py_ssize_t c_n) noexcept nogil
    void cy_max_f64(const double *xw, double *out, Py_ssize_t n_kh, Py_ssize_t n_kw,
                    Py_ssize_t row_step, Py_ssize_t col_step, Py_ssize_t c_n) noexcept nogil
    void cy_sum_f32(const float *xw, float *out, Py_ssize_t n_kh, Py_ssize_t n_kw,
                    Py_ssize_t row_step, Py_ssize_t col_step, float scale,
                    Py_ssize_t c_n) noexcept nogil
    void cy_sum_f64(const double *xw, double *out, Py_ssize_t n_kh, Py_ssize_t n_kw,
                    Py_ssize_t row_step, Py_ssize_t col_step, double scale,
                    Py_ssize_t c_n) noexcept nogil
    void cy_argmax_f32(const float *xw, Py_ssize_t n_kh, Py_ssize_t n_kw,
                       Py_ssize_t row_step, Py_ssize_t col_step, int k_first,
                       int f_w, float *best, int *key, Py_ssize_t c_n) noexcept nogil
    void cy_argmax_f64(const double *xw, Py_ssize_t n_kh, Py_ssize_t n_kw,
                       Py_ssize_t row_step, Py_ssize_t col_step, long long k_first,
                       long long f_w, double *best, int *key, Py_ssize_t c_n) noexcept nogil
    void cy_route_first_f32(const float *dpi, const int *keyi, float *out,
                            Py_ssize_t oh0, Py_ssize_t oh1, Py_ssize_t ow0,
                            Py_ssize_t ow1, Py_ssize_t o_w, Py_ssize_t c_n,
                            Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s_h,
                            Py_ssize_t s_w, Py_ssize_t f_w, Py_ssize_t d_h,
                            Py_ssize_t d_w) noexcept nogil
    void cy_route_first_f64(const double *dpi, const int *keyi, double *out,
                            Py_ssize_t oh0, Py_ssize_t oh1, Py_ssize_t ow0,
                            Py_ssize_t ow1, Py_ssize_t o_w, Py_ssize_t c_n,
                            Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s_h,
                            Py_ssize_t s_w, Py_ssize_t f_w, Py_ssize_t d_h,
                            Py_ssize_t d_w) noexcept nogil
    void cy_route_ties_f32(const float *dpi, const float *besti, const float *xv,
                           float *out, Py_ssize_t oh0, Py_ssize_t oh1,
                           Py_ssize_t ow0, Py_ssize_t ow1, Py_ssize_t o_w,
                           Py_ssize_t c_n) noexcept nogil
    void cy_route_ties_f64(const double *dpi, const double *besti, const double *xv,
                           double *out, Py_ssize_t oh0, Py_ssize_t oh1,
                           Py_ssize_t ow0, Py_ssize_t ow1, Py_ssize_t o_w,
                           Py_ssize_t c_n) noexcept nogil
    void cy_max_disjoint_f32(const float *xw, float *dxw, const float *g,
                             Py_ssize_t n_kh, Py_ssize_t n_kw, Py_ssize_t row_step,
                             Py_ssize_t col_step, int all_ties, Py_ssize_t c_n) noexcept nogil
    void cy_max_disjoint_f64(const double *xw, double *dxw, const double *g,
                             Py_ssize_t n_kh, Py_ssize_t n_kw, Py_ssize_t row_step,
                             Py_ssize_t col_step, int all_ties, Py_ssize_t c_n) noexcept nogil
    void cy_key_disjoint_f32(const int *key, float *dxw, const float *g,
                             Py_ssize_t n_kh, Py_ssize_t n_kw, Py_ssize_t row_step,
                             Py_ssize_t col_step, int k_first, int f_w,
                             Py_ssize_t c_n) noexcept nogil
    void cy_key_disjoint_f64(const int *key, double *dxw, const double *g,
                             Py_ssize_t n_kh, Py_ssize_t n_kw, Py_ssize_t row_step,
                             Py_ssize_t col_step, long long k_first, long long f_w,
                             Py_ssize_t c_n) noexcept nogil
    void cy_avg_disjoint_f32(float *dxw, const float *g, Py_ssize_t n_kh,
                             Py_ssize_t n_kw, Py_ssize_t row_step,
                             Py_ssize_t col_step, float scale, Py_ssize_t c_n) noexcept nogil
    void cy_avg_disjoint_f64(double *dxw, const double *g, Py_ssize_t n_kh,
                             Py_ssize_t n_kw, Py_ssize_t row_step,
                             Py_ssize_t col_step, double scale, Py_ssize_t c_n) noexcept nogil
    void cy_gsum_f32(const float *x, float *acc, Py_ssize_t c_n) noexcept nogil
    void cy_gsum_f64(const double *x, double *acc, Py_ssize_t c_n) noexcept nogil
    void cy_gmax_f32(const float *x, float *best, Py_ssize_t c_n) noexcept nogil
    void cy_gmax_f64(const double *x, double *best, Py_ssize_t c_n) noexcept nogil
    void cy_gargmax_f32(const float *x, float *best, int *key, int k,
                        Py_ssize_t c_n) noexcept nogil
    void cy_gargmax_f64(const double *x, double *best, int *key, long long k,
                        Py_ssize_t c_n) noexcept nogil
    void cy_route_row_f32(const float *dpi, const int *keyi, float *out,
                          Py_ssize_t oh0, Py_ssize_t oh1, const Py_ssize_t *cover_w,
                          Py_ssize_t n_w, Py_ssize_t o_w, Py_ssize_t c_n, Py_ssize_t ph,
                          Py_ssize_t p_l, Py_ssize_t s_h, Py_ssize_t s_w, Py_ssize_t f_w,
                          Py_ssize_t d_h, Py_ssize_t d_w) noexcept nogil
    void cy_route_row_f64(const double *dpi, const int *keyi, double *out,
                          Py_ssize_t oh0, Py_ssize_t oh1, const Py_ssize_t *cover_w,
                          Py_ssize_t n_w, Py_ssize_t o_w, Py_ssize_t c_n, Py_ssize_t ph,
                          Py_ssize_t p_l, Py_ssize_t s_h, Py_ssize_t s_w, Py_ssize_t f_w,
                          Py_ssize_t d_h, Py_ssize_t d_w) noexcept nogil
    void cy_spread_row_f32(const float *dpi, float *out, Py_ssize_t oh0, Py_ssize_t oh1,
                           const Py_ssize_t *cover_w, Py_ssize_t n_w, Py_ssize_t o_w,
                           Py_ssize_t c_n, const float *inv_h, const float *inv_w) noexcept nogil
    void cy_spread_row_f64(const double *dpi, double *out, Py_ssize_t oh0, Py_ssize_t oh1,
                           const Py_ssize_t *cover_w, Py_ssize_t n_w, Py_ssize_t o_w,
                           Py_ssize_t c_n, const double *inv_h,
                           const double *inv_w) noexcept nogil


# The geometry of a call, one block: the drivers take it as one tuple
# (f_h, f_w, s_h, s_w, p_t, p_b, p_l, p_r, d_h, d_w) from cyconv/pool.py.
# Taps of output o on one axis sit at input o * s - p_before + k * d for
# k = 0 .. f - 1; padding after the input (p_b, p_r) only matters for the
# average's divisor with count_include_pad, where windows of ceil_mode may run
# past the padded input.
cdef struct Geom:
    Py_ssize_t f_h, f_w, s_h, s_w, p_t, p_b, p_l, p_r, d_h, d_w


cdef Geom _geom(tuple geometry) except *:
    cdef Geom g
    g.f_h, g.f_w, g.s_h, g.s_w, g.p_t, g.p_b, g.p_l, g.p_r, g.d_h, g.d_w = geometry
    return g


cdef inline Py_ssize_t _tap_begin(Py_ssize_t o, Py_ssize_t s, Py_ssize_t p,
                                  Py_ssize_t d) noexcept nogil:
    # First tap k of output o whose input position o*s - p + k*d is >= 0.
    cdef Py_ssize_t k
    if d == 1:  # the common case, without a division
        return tap_begin(o, s, p)
    k = p - o * s
    return (k + d - 1) // d if k > 0 else 0


cdef inline Py_ssize_t _tap_end(Py_ssize_t o, Py_ssize_t s, Py_ssize_t p,
                                Py_ssize_t n, Py_ssize_t f, Py_ssize_t d) noexcept nogil:
    # One past the last tap of output o inside an input of size n (<= begin: none).
    cdef Py_ssize_t k
    if d == 1:
        return tap_end(o, s, p, n, f)
    k = n - 1 + p - o * s  # offset of the last input element from the window start
    if k < 0:
        return 0
    k = k // d + 1
    return k if k < f else f


cdef inline Py_ssize_t _padded_taps(Py_ssize_t o, Py_ssize_t s, Py_ssize_t f,
                                    Py_ssize_t n_padded) noexcept nogil:
    # Taps of output o inside the padded input [0, n_padded) (padded coordinates):
    # f, except for the last windows of ceil_mode, which run past it. This is
    # PyTorch's divisor with count_include_pad.
    cdef Py_ssize_t k = n_padded - o * s
    return k if k < f else f


cdef inline void _max_window(const floating *xw, floating *out,
                             Py_ssize_t n_kh, Py_ssize_t n_kw,
                             Py_ssize_t row_step, Py_ssize_t col_step,
                             Py_ssize_t c_n) noexcept nogil:
    # out[c] = max over the n_kh x n_kw taps starting at xw, c < c_n.
    if floating is float:
        cy_max_f32(xw, out, n_kh, n_kw, row_step, col_step, c_n)
    else:
        cy_max_f64(xw, out, n_kh, n_kw, row_step, col_step, c_n)


cdef inline void _sum_window(const floating *xw, floating *out,
                             Py_ssize_t n_kh, Py_ssize_t n_kw,
                             Py_ssize_t row_step, Py_ssize_t col_step,
                             floating scale, Py_ssize_t c_n) noexcept nogil:
    # out[c] = scale * sum over the n_kh x n_kw taps starting at xw, c < c_n.
    if floating is float:
        cy_sum_f32(xw, out, n_kh, n_kw, row_step, col_step, scale, c_n)
    else:
        cy_sum_f64(xw, out, n_kh, n_kw, row_step, col_step, scale, c_n)


cdef inline void _inner_cols(Py_ssize_t o_w, Py_ssize_t n_w, Geom g,
                             Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    # [lo, hi): the output columns whose every tap lies inside the input
    # (kw0 = 0, n_kw = f_w, the full divisor of its row), so the row loops
    # step through them with no per-window tap arithmetic; lo == hi: none.
    cdef Py_ssize_t a = (g.p_l + g.s_w - 1) // g.s_w
    cdef Py_ssize_t last = n_w - 1 + g.p_l - (g.f_w - 1) * g.d_w  # ow * s_w <= last
    cdef Py_ssize_t b = last // g.s_w + 1 if last >= 0 else 0
    if b > o_w:
        b = o_w
    if a > b:
        a = b
    lo[0] = a
    hi[0] = b


cdef void _pool_row(const floating *x, floating *p, bint is_max,
                    bint count_include_pad, Py_ssize_t oh,
                    Py_ssize_t n_h, Py_ssize_t n_w, Py_ssize_t c_n,
                    Py_ssize_t o_w, Py_ssize_t ow_lo, Py_ssize_t ow_hi,
                    Geom g) noexcept nogil:
    # One output row (o_w, c_n) of one image x (n_h, n_w, c_n); columns
    # [ow_lo, ow_hi) from _inner_cols.
    cdef Py_ssize_t kh0 = _tap_begin(oh, g.s_h, g.p_t, g.d_h)
    cdef Py_ssize_t kh1 = _tap_end(oh, g.s_h, g.p_t, n_h, g.f_h, g.d_h)
    cdef Py_ssize_t pad_h = _padded_taps(oh, g.s_h, g.f_h, n_h + g.p_t + g.p_b)
    cdef Py_ssize_t ow, j, kw0, kw1, n_kh, n_kw, count
    cdef Py_ssize_t row_step = g.d_h * n_w * c_n, col_step = g.d_w * c_n
    cdef Py_ssize_t x_step = g.s_w * c_n
    cdef const floating *xw
    cdef floating scale = 1, full_scale = 1, inner_scale = 1
    # The divisor of a window inside the padded input, once per row: a
    # division per window costs as much as a small window's sum.
    full_scale = full_scale / (g.f_h * g.f_w)
    n_kh = kh1 - kh0 if kh1 > kh0 else 0
    if n_kh == 0:  # the row's windows lie in the padding: the edge path
        ow_lo = ow_hi = o_w
    # the inner columns' divisor, as the edge path computes it for them
    if count_include_pad:
        count = pad_h * g.f_w  # inner windows lie inside the padded input
        if count == g.f_h * g.f_w:
            inner_scale = full_scale
        else:
            inner_scale = inner_scale / count
    else:
        inner_scale = inner_scale / (n_kh * g.f_w if n_kh > 0 else 1)
    ow = 0
    while ow < o_w:
        if ow == ow_lo and ow_lo < ow_hi:  # the inner columns, then on with the edge
            xw = x + ((oh * g.s_h - g.p_t + kh0 * g.d_h) * n_w + ow_lo * g.s_w - g.p_l) * c_n
            if is_max:
                for j in range(ow_lo, ow_hi):
                    _max_window(xw, p + j * c_n, n_kh, g.f_w, row_step, col_step, c_n)
                    xw += x_step
            else:
                for j in range(ow_lo, ow_hi):
                    _sum_window(xw, p + j * c_n, n_kh, g.f_w, row_step, col_step,
                                inner_scale, c_n)
                    xw += x_step
            ow = ow_hi
            continue
        kw0 = _tap_begin(ow, g.s_w, g.p_l, g.d_w)
        kw1 = _tap_end(ow, g.s_w, g.p_l, n_w, g.f_w, g.d_w)
        n_kw = kw1 - kw0 if kw1 > kw0 else 0
        if n_kh == 0 or n_kw == 0:  # window wholly in the padding
            xw = x
            n_kw = 0
        else:
            xw = x + ((oh * g.s_h - g.p_t + kh0 * g.d_h) * n_w
                      + ow * g.s_w - g.p_l + kw0 * g.d_w) * c_n
        if is_max:
            pass  # no divisor
        elif count_include_pad:
            count = pad_h * _padded_taps(ow, g.s_w, g.f_w, n_w + g.p_l + g.p_r)
            if count == g.f_h * g.f_w:
                scale = full_scale
            else:  # a ceil_mode window running past the padded input
                scale = 1
                scale = scale / count
        else:
            count = n_kh * n_kw
            scale = 1
            if count > 0:
                scale = scale / count
        if is_max:
            _max_window(xw, p + ow * c_n, n_kh, n_kw, row_step, col_step, c_n)
        else:
            _sum_window(xw, p + ow * c_n, n_kh, n_kw, row_step, col_step, scale, c_n)
        ow += 1


def pool2d_forward(const floating[:, :, :, ::1] x,   # IN  (m, n_h, n_w, c)
                   floating[:, :, :, ::1] p,         # OUT (m, o_h, o_w, c)
                   bint is_max, bint count_include_pad,
                   tuple geometry, int num_threads):
    """Max or average pooling forward, parallel over batch x output rows.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Input.
    p : C-contiguous memoryview
        Output, fully overwritten. Max: a window holding a NaN gives NaN, a
        window with no input element gives -inf. Average: a window with no
        input element gives 0 when ``count_include_pad`` is False.
    is_max : bool
        Max pooling (else average).
    count_include_pad : bool
        Average only: divide by the window's taps inside the padded input
        (``f_h * f_w`` except for ceil_mode's last windows) or by the number
        of input elements in the window.
    geometry : tuple of 10 ints
        ``(f_h, f_w, s_h, s_w, p_t, p_b, p_l, p_r, d_h, d_w)``: pool size,
        stride, padding before and after each axis, dilation (1 for average).
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Geom g = _geom(geometry)
    cdef Py_ssize_t m = p.shape[0], o_h = p.shape[1], o_w = p.shape[2]
    cdef Py_ssize_t c_n = p.shape[3], n_h = x.shape[1], n_w = x.shape[2]
    cdef Py_ssize_t row, i, oh, ow_lo, ow_hi
    _inner_cols(o_w, n_w, g, &ow_lo, &ow_hi)
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            _pool_row(&x[i, 0, 0, 0], &p[i, oh, 0, 0], is_max, count_include_pad,
                      oh, n_h, n_w, c_n, o_w, ow_lo, ow_hi, g)


# Argmax keys: the tap index kh * f_w + kw of a window's first maximum in the
# full window, stored as int32 whatever the data type (-1: no input element).
# The vector kernels select them in integer lanes of the data's width and
# convert on load and store.


cdef inline void _argmax_window(const floating *xw,
                                Py_ssize_t n_kh, Py_ssize_t n_kw,
                                Py_ssize_t row_step, Py_ssize_t col_step,
                                Py_ssize_t k_first, Py_ssize_t f_w,
                                floating *best, int *key,
                                Py_ssize_t c_n) noexcept nogil:
    # best[c]: the window's first maximum (or first NaN); key[c]: its tap
    # index kh * f_w + kw in the full window; c < c_n.
    if floating is float:
        cy_argmax_f32(xw, n_kh, n_kw, row_step, col_step, <int>k_first, <int>f_w,
                      best, key, c_n)
    else:
        cy_argmax_f64(xw, n_kh, n_kw, row_step, col_step, k_first, f_w, best, key, c_n)


def max_pool2d_argmax(const floating[:, :, :, ::1] x,   # IN  (m, n_h, n_w, c)
                      floating[:, :, :, ::1] p,         # OUT (m, o_h, o_w, c)
                      int[:, :, :, ::1] key,            # OUT (m, o_h, o_w, c)
                      tuple geometry, int num_threads):
    """Max pooling that also records where each maximum is.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Input.
    p : C-contiguous memoryview
        Output, as :func:`pool2d_forward` with ``is_max``.
    key : C-contiguous memoryview of int32
        For each output, the tap index ``kh * f_w + kw`` (in the full
        window, padding included; with dilation, ``kh``/``kw`` count taps,
        not input positions) of its first maximum or first NaN; -1 for a
        window with no input element.
    geometry, num_threads
        As for :func:`pool2d_forward`; ``f_h * f_w`` must be < 2**31.
    """
    cdef Geom g = _geom(geometry)
    cdef Py_ssize_t m = p.shape[0], o_h = p.shape[1], o_w = p.shape[2]
    cdef Py_ssize_t c_n = p.shape[3], n_h = x.shape[1], n_w = x.shape[2]
    cdef Py_ssize_t row, i, oh, ow, c, kh0, kh1, kw0, kw1, ow_lo, ow_hi
    cdef Py_ssize_t row_step = g.d_h * n_w * c_n, col_step = g.d_w * c_n
    cdef const floating *xw
    cdef floating *pp
    cdef int *kp
    _inner_cols(o_w, n_w, g, &ow_lo, &ow_hi)
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            kh0 = _tap_begin(oh, g.s_h, g.p_t, g.d_h)
            kh1 = _tap_end(oh, g.s_h, g.p_t, n_h, g.f_h, g.d_h)
            if kh0 < kh1:  # the inner columns: kw0 = 0, every tap real
                for ow in range(ow_lo, ow_hi):
                    _argmax_window(&x[i, oh * g.s_h - g.p_t + kh0 * g.d_h, ow * g.s_w - g.p_l, 0],
                                   kh1 - kh0, g.f_w, row_step, col_step, kh0 * g.f_w, g.f_w,
                                   &p[i, oh, ow, 0], &key[i, oh, ow, 0], c_n)
            for ow in range(o_w):
                if ow_lo <= ow < ow_hi and kh0 < kh1:
                    continue  # done above
                kw0 = _tap_begin(ow, g.s_w, g.p_l, g.d_w)
                kw1 = _tap_end(ow, g.s_w, g.p_l, n_w, g.f_w, g.d_w)
                pp = &p[i, oh, ow, 0]
                kp = &key[i, oh, ow, 0]
                if kh0 >= kh1 or kw0 >= kw1:  # window wholly in the padding
                    for c in range(c_n):
                        pp[c] = -INFINITY
                        kp[c] = -1
                    continue
                xw = &x[i, oh * g.s_h - g.p_t + kh0 * g.d_h, ow * g.s_w - g.p_l + kw0 * g.d_w, 0]
                _argmax_window(xw, kh1 - kh0, kw1 - kw0, row_step, col_step,
                               kh0 * g.f_w + kw0, g.f_w, pp, kp, c_n)


cdef inline void _route_pixel(const floating *dpi, const int *keyi, const floating *besti,
                              const floating *xv, floating *out, bint all_ties,
                              Py_ssize_t oh0, Py_ssize_t oh1,
                              Py_ssize_t ow0, Py_ssize_t ow1,
                              Py_ssize_t o_w, Py_ssize_t c_n,
                              Py_ssize_t ph, Py_ssize_t pw, Geom g) noexcept nogil:
    # out[c] = sum of dp over the covering windows that route to this input:
    # first-maximum rule (keyi: each window's argmax tap index) or, with
    # all_ties, every window whose maximum (besti) equals the input value xv[c].
    if all_ties:
        if floating is float:
            cy_route_ties_f32(dpi, besti, xv, out, oh0, oh1, ow0, ow1, o_w, c_n)
        else:
            cy_route_ties_f64(dpi, besti, xv, out, oh0, oh1, ow0, ow1, o_w, c_n)
    elif floating is float:
        cy_route_first_f32(dpi, keyi, out, oh0, oh1, ow0, ow1, o_w, c_n,
                           ph, pw, g.s_h, g.s_w, g.f_w, g.d_h, g.d_w)
    else:
        cy_route_first_f64(dpi, keyi, out, oh0, oh1, ow0, ow1, o_w, c_n,
                           ph, pw, g.s_h, g.s_w, g.f_w, g.d_h, g.d_w)


def max_pool2d_backward(const floating[:, :, :, ::1] x,    # IN  (m, n_h, n_w, c)
                        const floating[:, :, :, ::1] dp,   # IN  (m, o_h, o_w, c)
                        const int[:, :, :, ::1] key,       # IN  (m, o_h, o_w, c)
                        const floating[:, :, :, ::1] best, # IN  (m, o_h, o_w, c)
                        floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c)
                        const Py_ssize_t[:, ::1] cover_h,  # IN  (n_h, 2)
                        const Py_ssize_t[:, ::1] cover_w,  # IN  (n_w, 2)
                        tuple geometry, bint all_ties, int num_threads):
    """Route each window's gradient to its maximum, in gather form.

    Every ``dx`` element sums, over the windows covering it, the gradients
    of those that route to it, so each element is written once by one
    thread (no zero-fill, no scatter races) and rows run in parallel over
    batch x input rows, whatever the batch size.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Forward input (read only with ``all_ties``).
    dp : C-contiguous memoryview
        Output gradient.
    key : C-contiguous memoryview of int32
        From :func:`max_pool2d_argmax`: the tap index of each window's first
        maximum; any other value routes nowhere. Not read with ``all_ties``.
    best : C-contiguous memoryview
        With ``all_ties``, the window maxima ``p``; not read otherwise (any
        array of ``dp``'s shape).
    dx : C-contiguous memoryview, non-empty
        Input gradient, fully overwritten.
    cover_h, cover_w : C-contiguous memoryviews
        For each input row (column), the range ``[begin, end)`` of output
        rows (columns) whose windows' extent ``d * (f - 1) + 1`` covers it
        (with dilation, windows whose taps skip it route nothing to it).
    geometry, num_threads
        As for :func:`pool2d_forward`.
    all_ties : bool
        Give each window's gradient to every element equal to its maximum
        (the course's mask ``A == max(A)``) instead of its first maximum;
        only without dilation.
    """
    cdef Geom g = _geom(geometry)
    cdef Py_ssize_t m = dx.shape[0], n_h = dx.shape[1], n_w = dx.shape[2]
    cdef Py_ssize_t c_n = dx.shape[3], o_w = dp.shape[2]
    cdef Py_ssize_t row, i, ih, iw
    cdef const floating *dpi
    cdef const int *ki
    cdef const floating *bi
    cdef const floating *xv
    cdef floating *dxp
    with nogil:
        for row in prange(m * n_h, num_threads=num_threads, schedule="static"):
            i = row // n_h
            ih = row % n_h
            dpi = &dp[i, 0, 0, 0]
            ki = &key[i, 0, 0, 0]
            bi = &best[i, 0, 0, 0]
            if not all_ties:  # the whole row in one kernel call
                if floating is float:
                    cy_route_row_f32(dpi, ki, &dx[i, ih, 0, 0], cover_h[ih, 0], cover_h[ih, 1],
                                     &cover_w[0, 0], n_w, o_w, c_n, ih + g.p_t, g.p_l,
                                     g.s_h, g.s_w, g.f_w, g.d_h, g.d_w)
                else:
                    cy_route_row_f64(dpi, ki, &dx[i, ih, 0, 0], cover_h[ih, 0], cover_h[ih, 1],
                                     &cover_w[0, 0], n_w, o_w, c_n, ih + g.p_t, g.p_l,
                                     g.s_h, g.s_w, g.f_w, g.d_h, g.d_w)
                continue
            for iw in range(n_w):
                dxp = &dx[i, ih, iw, 0]
                xv = &x[i, ih, iw, 0]
                _route_pixel(dpi, ki, bi, xv, dxp, all_ties,
                             cover_h[ih, 0], cover_h[ih, 1], cover_w[iw, 0], cover_w[iw, 1],
                             o_w, c_n, ih + g.p_t, iw + g.p_l, g)


def avg_pool2d_backward(const floating[:, :, :, ::1] dp,   # IN  (m, o_h, o_w, c)
                        floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c)
                        const Py_ssize_t[:, ::1] cover_h,  # IN  (n_h, 2)
                        const Py_ssize_t[:, ::1] cover_w,  # IN  (n_w, 2)
                        const floating[::1] inv_h,         # IN  (o_h,)
                        const floating[::1] inv_w,         # IN  (o_w,)
                        int num_threads):
    """dx[i] = sum of dp / count over the windows covering i.

    Gather form: every ``dx`` element is summed by one thread over the
    windows that cover it, so there are no write conflicts; rows run in
    parallel over batch x input rows.

    Parameters
    ----------
    dp : C-contiguous memoryview, non-empty
        Output gradient.
    dx : C-contiguous memoryview, non-empty
        Input gradient, fully overwritten.
    cover_h, cover_w : C-contiguous memoryviews
        For each input row (column), the half-open range ``[begin, end)`` of
        output rows (columns) whose windows cover it: precomputed once so the
        per-pixel loop has no integer division.
    inv_h, inv_w : C-contiguous memoryviews
        Per output row (column) factors whose product is ``1 / count``.
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t m = dx.shape[0], n_h = dx.shape[1], n_w = dx.shape[2]
    cdef Py_ssize_t c_n = dx.shape[3], o_w = dp.shape[2]
    cdef Py_ssize_t row, i, ih
    cdef const floating *dpi
    with nogil:
        for row in prange(m * n_h, num_threads=num_threads, schedule="static"):
            i = row // n_h
            ih = row % n_h
            dpi = &dp[i, 0, 0, 0]
            if floating is float:
                cy_spread_row_f32(dpi, &dx[i, ih, 0, 0], cover_h[ih, 0], cover_h[ih, 1],
                                  &cover_w[0, 0], n_w, o_w, c_n, &inv_h[0], &inv_w[0])
            else:
                cy_spread_row_f64(dpi, &dx[i, ih, 0, 0], cover_h[ih, 0], cover_h[ih, 1],
                                  &cover_w[0, 0], n_w, o_w, c_n, &inv_h[0], &inv_w[0])


cdef inline void _disjoint_window(const floating *xw, floating *dxw, const floating *g,
                                  const int *kp, bint is_max, bint all_ties, bint by_key,
                                  floating scale, Py_ssize_t n_kh, Py_ssize_t n_kw,
                                  Py_ssize_t row_step, Py_ssize_t col_step,
                                  Py_ssize_t k_first, Py_ssize_t f_w,
                                  Py_ssize_t c_n) noexcept nogil:
    # Backward of one disjoint window, c_n channels: write every tap.
    # by_key (max only): route by the forward's argmax keys kp (int32 tap indices)
    # instead of searching the window in x.
    if by_key:
        if floating is float:
            cy_key_disjoint_f32(kp, dxw, g, n_kh, n_kw, row_step, col_step,
                                <int>k_first, <int>f_w, c_n)
        else:
            cy_key_disjoint_f64(kp, dxw, g, n_kh, n_kw, row_step, col_step,
                                k_first, f_w, c_n)
    elif is_max:
        if floating is float:
            cy_max_disjoint_f32(xw, dxw, g, n_kh, n_kw, row_step, col_step, all_ties, c_n)
        else:
            cy_max_disjoint_f64(xw, dxw, g, n_kh, n_kw, row_step, col_step, all_ties, c_n)
    elif floating is float:
        cy_avg_disjoint_f32(dxw, g, n_kh, n_kw, row_step, col_step, scale, c_n)
    else:
        cy_avg_disjoint_f64(dxw, g, n_kh, n_kw, row_step, col_step, scale, c_n)


def pool2d_backward_disjoint(const floating[:, :, :, ::1] x,    # IN  (m, n_h, n_w, c)
                             const floating[:, :, :, ::1] dp,   # IN  (m, o_h, o_w, c)
                             const int[:, :, :, ::1] key,       # IN  (m, o_h, o_w, c), by_key
                             floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c)
                             bint is_max, bint all_ties, bint by_key, bint count_include_pad,
                             tuple geometry, int num_threads):
    """Max or average pooling backward when windows do not overlap.

    With ``s >= d * (f - 1) + 1`` on both axes every input element lies in
    at most one window, so each output row owns its input rows outright:
    rows run in parallel and every tap is written once, straight from its
    window (max: the window's argmax is found and used in registers, never
    stored).

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Forward input (max without ``by_key`` only; any array of the right
        shape otherwise).
    dp : C-contiguous memoryview
        Output gradient.
    key : C-contiguous memoryview
        With ``by_key``: the forward's argmax keys (int32, see
        :func:`max_pool2d_argmax`); not read otherwise (any int32 array).
    dx : C-contiguous memoryview
        Input gradient: every tap of every window is written; elements
        outside every window (gaps, dilation holes) are left alone, so
        zero-fill dx unless the windows tile the input.
    is_max, all_ties, by_key, count_include_pad : bool
        Max (first maximum, or every tied maximum, or routed by ``key``) or
        average pooling, and the average's divisor rule.
    geometry, num_threads
        As for :func:`pool2d_forward`.
    """
    cdef Geom g = _geom(geometry)
    cdef Py_ssize_t m = dp.shape[0], o_h = dp.shape[1], o_w = dp.shape[2]
    cdef Py_ssize_t c_n = dp.shape[3], n_h = dx.shape[1], n_w = dx.shape[2]
    cdef Py_ssize_t row_step = g.d_h * n_w * c_n, col_step = g.d_w * c_n
    cdef Py_ssize_t row, i, oh, ow, kh0, kh1, kw0, kw1, at, count, pad_h, ow_lo, ow_hi
    cdef floating scale = 1, full_scale = 1, inner_scale = 1
    full_scale = full_scale / (g.f_h * g.f_w)  # a window inside the padded input
    _inner_cols(o_w, n_w, g, &ow_lo, &ow_hi)
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            kh0 = _tap_begin(oh, g.s_h, g.p_t, g.d_h)
            kh1 = _tap_end(oh, g.s_h, g.p_t, n_h, g.f_h, g.d_h)
            if kh0 >= kh1:
                continue  # window rows wholly in the padding
            pad_h = _padded_taps(oh, g.s_h, g.f_h, n_h + g.p_t + g.p_b)
            # the inner columns (kw0 = 0, every tap real), with their divisor
            # computed as the edge loop below computes it for them
            inner_scale = 1
            if is_max:
                inner_scale = 0  # not read
            elif count_include_pad:
                count = pad_h * g.f_w
                if count == g.f_h * g.f_w:
                    inner_scale = full_scale
                else:
                    inner_scale = inner_scale / count
            else:
                inner_scale = inner_scale / ((kh1 - kh0) * g.f_w)
            for ow in range(ow_lo, ow_hi):
                at = ((oh * g.s_h - g.p_t + kh0 * g.d_h) * n_w + ow * g.s_w - g.p_l) * c_n
                _disjoint_window(&x[i, 0, 0, 0] + at, &dx[i, 0, 0, 0] + at, &dp[i, oh, ow, 0],
                                 &key[i, oh, ow, 0] if by_key else NULL,
                                 is_max, all_ties, by_key, inner_scale, kh1 - kh0, g.f_w,
                                 row_step, col_step, kh0 * g.f_w, g.f_w, c_n)
            for ow in range(o_w):
                if ow_lo <= ow < ow_hi:
                    continue  # done above
                kw0 = _tap_begin(ow, g.s_w, g.p_l, g.d_w)
                kw1 = _tap_end(ow, g.s_w, g.p_l, n_w, g.f_w, g.d_w)
                if kw0 >= kw1:
                    continue
                if is_max:
                    scale = 0  # not read
                elif count_include_pad:
                    count = pad_h * _padded_taps(ow, g.s_w, g.f_w, n_w + g.p_l + g.p_r)
                    if count == g.f_h * g.f_w:
                        scale = full_scale
                    else:  # a ceil_mode window running past the padded input
                        scale = 1
                        scale = scale / count
                else:
                    count = (kh1 - kh0) * (kw1 - kw0)
                    scale = 1
                    scale = scale / count
                at = ((oh * g.s_h - g.p_t + kh0 * g.d_h) * n_w
                      + ow * g.s_w - g.p_l + kw0 * g.d_w) * c_n
                _disjoint_window(&x[i, 0, 0, 0] + at, &dx[i, 0, 0, 0] + at, &dp[i, oh, ow, 0],
                                 &key[i, oh, ow, 0] if by_key else NULL,
                                 is_max, all_ties, by_key, scale, kh1 - kh0, kw1 - kw0,
                                 row_step, col_step, kh0 * g.f_w + kw0, g.f_w, c_n)


# Global pools: one window per image, the whole plane. Reductions run as tasks
# of (image, chunk of GLOBAL_CHUNK channels), so a single image still spreads
# over the threads; each output element is reduced by one task in pixel order
# whatever the thread count, so results are bitwise reproducible. A task
# folds the plane in row by row (cy_gsum/cy_gmax/cy_gargmax: each pixel's
# chunk read once, contiguously), with the same operations per channel as
# the window kernels above, so global_*_pool2d equals *_pool2d with
# pool_size (n_H, n_W) bit for bit (a NaN's payload aside); the backwards
# write each pixel's row whole, as a window of one tap.

cdef enum:
    GLOBAL_CHUNK = 128  # channels per task: a multiple of every level's block


cdef void _global_row(const floating *x, floating *out, bint is_max, bint first,
                      Py_ssize_t c_n) noexcept nogil:
    # Fold one pixel row x into the running results out (c_n channels); the
    # first row starts them (the max at that row, the sum at +0.0 plus it).
    if is_max:
        if first:
            memcpy(out, x, c_n * sizeof(floating))
        elif floating is float:
            cy_gmax_f32(x, out, c_n)
        else:
            cy_gmax_f64(x, out, c_n)
        return
    if first:
        memset(out, 0, c_n * sizeof(floating))
    if floating is float:
        cy_gsum_f32(x, out, c_n)
    else:
        cy_gsum_f64(x, out, c_n)


def global_pool2d_forward(const floating[:, :, ::1] x,   # IN  (m, n_hw, c)
                          floating[:, ::1] p,            # OUT (m, c)
                          bint is_max, int num_threads):
    """Global max or average pooling of NHWC data, the plane flattened.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Input, ``(m, n_H * n_W, C)``.
    p : C-contiguous memoryview
        Output ``(m, C)``, fully overwritten: the plane's maximum (its first
        NaN if it holds one) or its mean (sum in pixel order, times
        ``1 / (n_H n_W)``).
    is_max : bool
        Max pooling (else average).
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t m = x.shape[0], n_hw = x.shape[1], c_n = x.shape[2]
    cdef Py_ssize_t n_chunks = (c_n + GLOBAL_CHUNK - 1) // GLOBAL_CHUNK
    cdef Py_ssize_t t, i, c0, c_len, k
    cdef floating scale = 1
    scale = scale / n_hw
    with nogil:
        for t in prange(m * n_chunks, num_threads=num_threads, schedule="static"):
            i = t // n_chunks
            c0 = (t % n_chunks) * GLOBAL_CHUNK
            c_len = c_n - c0 if c_n - c0 < GLOBAL_CHUNK else GLOBAL_CHUNK
            for k in range(n_hw):
                _global_row(&x[i, k, c0], &p[i, c0], is_max, k == 0, c_len)
            if not is_max:  # the mean: one multiply, as cy_sum_block's
                _sum_window(&p[i, c0], &p[i, c0], 1, 1, 0, 0, scale, c_len)


cdef enum:
    GLOBAL_PIXELS = 16  # pixels per task of the global backwards


def global_avg_pool2d_backward(const floating[:, ::1] dp,   # IN  (m, c)
                               floating[:, :, ::1] dx,      # OUT (m, n_hw, c)
                               int num_threads):
    """dx[i, k, c] = dp[i, c] / n_hw for every pixel k (NHWC, plane flattened).

    Tasks are (image, block of pixels), each pixel's channels written as one
    contiguous row (a block of channels at a time over the whole plane would
    write every cache line in pieces, a plane's width apart).

    Parameters
    ----------
    dp : C-contiguous memoryview
        Output gradient ``(m, C)``.
    dx : C-contiguous memoryview, non-empty
        Input gradient ``(m, n_H * n_W, C)``, fully overwritten.
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t m = dx.shape[0], n_hw = dx.shape[1], c_n = dx.shape[2]
    cdef Py_ssize_t n_blocks = (n_hw + GLOBAL_PIXELS - 1) // GLOBAL_PIXELS
    cdef Py_ssize_t t, i, k, k0, k1
    cdef floating scale = 1
    scale = scale / n_hw
    with nogil:
        for t in prange(m * n_blocks, num_threads=num_threads, schedule="static"):
            i = t // n_blocks
            k0 = (t % n_blocks) * GLOBAL_PIXELS
            k1 = k0 + GLOBAL_PIXELS if k0 + GLOBAL_PIXELS < n_hw else n_hw
            for k in range(k0, k1):
                # one "window" of one tap: g * scale, stored once
                _disjoint_window(&dx[i, k, 0], &dx[i, k, 0], &dp[i, 0], NULL,
                                 False, False, False, scale, 1, 1, 0, 0, 0, 1, c_n)


def global_max_pool2d_backward(const floating[:, :, ::1] x,  # IN  (m, n_hw, c)
                               const floating[:, ::1] dp,    # IN  (m, c)
                               floating[:, ::1] best,        # SCRATCH (m, c)
                               int[:, ::1] key,              # SCRATCH (m, c)
                               floating[:, :, ::1] dx,       # OUT (m, n_hw, c)
                               int num_threads):
    """Each plane's gradient to its first maximum (or first NaN), NHWC.

    Two parallel passes: the argmax of every plane (tasks: image x block of
    channels; integer keys, exact for any plane below 2**31 pixels), then
    every pixel's row of ``dx`` written whole (tasks: image x block of
    pixels): ``dp`` where the pixel is its channel's argmax, 0 elsewhere.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Forward input ``(m, n_H * n_W, C)``.
    dp : C-contiguous memoryview
        Output gradient ``(m, C)``.
    best, key : C-contiguous memoryviews
        Scratch ``(m, C)``: each plane's maximum and its pixel index.
    dx : C-contiguous memoryview
        Input gradient, shaped as ``x``, fully overwritten.
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t m = x.shape[0], n_hw = x.shape[1], c_n = x.shape[2]
    cdef Py_ssize_t n_chunks = (c_n + GLOBAL_CHUNK - 1) // GLOBAL_CHUNK
    cdef Py_ssize_t n_blocks = (n_hw + GLOBAL_PIXELS - 1) // GLOBAL_PIXELS
    cdef Py_ssize_t t, i, c0, c_len, k, k0, k1
    with nogil:
        for t in prange(m * n_chunks, num_threads=num_threads, schedule="static"):
            i = t // n_chunks
            c0 = (t % n_chunks) * GLOBAL_CHUNK
            c_len = c_n - c0 if c_n - c0 < GLOBAL_CHUNK else GLOBAL_CHUNK
            memcpy(&best[i, c0], &x[i, 0, c0], c_len * sizeof(floating))
            memset(&key[i, c0], 0, c_len * sizeof(int))
            for k in range(1, n_hw):
                if floating is float:
                    cy_gargmax_f32(&x[i, k, c0], &best[i, c0], &key[i, c0], <int>k, c_len)
                else:
                    cy_gargmax_f64(&x[i, k, c0], &best[i, c0], &key[i, c0], k, c_len)
        for t in prange(m * n_blocks, num_threads=num_threads, schedule="static"):
            i = t // n_blocks
            k0 = (t % n_blocks) * GLOBAL_PIXELS
            k1 = k0 + GLOBAL_PIXELS if k0 + GLOBAL_PIXELS < n_hw else n_hw
            for k in range(k0, k1):
                # one tap whose index is k: dp where key == k
                _disjoint_window(&x[i, k, 0], &dx[i, k, 0], &dp[i, 0], &key[i, 0],
                                 True, False, True, 0, 1, 1, 0, 0, k, 1, c_n)


# NCHW global pools: each (image, channel) plane is a contiguous row, reduced
# by one task in pixel order, the same order (so the same bits) as the NHWC
# kernels' lanes.

def global_pool2d_forward_rows(const floating[:, ::1] x,   # IN  (m * c, n_hw)
                               floating[::1] p,            # OUT (m * c,)
                               bint is_max, int num_threads):
    """Global max or average pooling of NCHW data, one plane per row.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Input ``(m * C, n_H * n_W)``.
    p : C-contiguous memoryview
        Output ``(m * C,)``: as :func:`global_pool2d_forward` (max keeps the
        plane's first NaN).
    is_max : bool
        Max pooling (else average).
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t rows = x.shape[0], n_hw = x.shape[1]
    cdef Py_ssize_t r, k
    cdef const floating *xr
    cdef floating acc, v
    cdef floating scale = 1
    scale = scale / n_hw
    with nogil:
        for r in prange(rows, num_threads=num_threads, schedule="static"):
            xr = &x[r, 0]
            if is_max:
                acc = -INFINITY
                for k in range(n_hw):
                    v = xr[k]
                    if not (v <= acc) and acc == acc:  # strictly greater, or the first NaN
                        acc = v
            else:
                acc = 0
                for k in range(n_hw):
                    acc = acc + xr[k]
                acc = acc * scale
            p[r] = acc


def global_pool2d_backward_rows(const floating[:, ::1] x,   # IN  (m * c, n_hw), max only
                                const floating[::1] dp,     # IN  (m * c,)
                                floating[:, ::1] dx,        # OUT (m * c, n_hw)
                                bint is_max, int num_threads):
    """Backward of :func:`global_pool2d_forward_rows` (NCHW planes as rows).

    Parameters
    ----------
    x : C-contiguous memoryview
        Forward input (max only; any array of ``dx``'s shape for average).
    dp : C-contiguous memoryview
        Output gradient ``(m * C,)``.
    dx : C-contiguous memoryview, non-empty
        Input gradient, fully overwritten: max gives each row's ``dp`` to
        its first maximum (or first NaN), average spreads ``dp / n_hw``.
    is_max : bool
        Max pooling (else average).
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t rows = dx.shape[0], n_hw = dx.shape[1]
    cdef Py_ssize_t r, k, at
    cdef const floating *xr
    cdef floating *dxr
    cdef floating best, v, gv
    cdef floating scale = 1
    scale = scale / n_hw
    with nogil:
        for r in prange(rows, num_threads=num_threads, schedule="static"):
            dxr = &dx[r, 0]
            if is_max:
                xr = &x[r, 0]
                best = xr[0]
                at = 0
                for k in range(1, n_hw):
                    v = xr[k]
                    if not (v <= best) and best == best:
                        best = v
                        at = k
                for k in range(n_hw):
                    dxr[k] = 0
                dxr[at] = dp[r]
            else:
                gv = dp[r] * scale
                for k in range(n_hw):
                    dxr[k] = gv
