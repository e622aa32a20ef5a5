"""Pooling kernels: max and average, forward and backward (NHWC).

Compiled once per CPU level of ``cyconv/_levels.py`` (this module is the
baseline; ``_pool_v3``, ``_pool_v4`` are generated stubs that include this
file); ``cyconv/_dispatch.py`` picks the module of a call.

Private: ``cyconv/pool.py`` validates, allocates and passes ready,
C-contiguous, non-empty buffers; nothing here can fail.
"""
# Speed comes from three choices:
#
# - NHWC puts channels innermost, so every window is walked tap by tap with a
#   unit-stride loop over a block of ``CB`` channels. The block's running
#   max/sum lives in a local array the compiler keeps in vector registers
#   (full blocks have a compile-time trip count; the tail block reuses the same
#   inline helper with a runtime count).
# - Padding is never materialised: only the taps inside the input are walked
#   (max-pool padding is -inf and avg-pool padding is 0, so skipping them is
#   exact; only the avg-pool divisor needs to know about them).
# - The max-pool selection is branchless (compare and blend), so it vectorises.

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY

from cyconv._window cimport tap_begin, tap_end


cdef extern from "_pool_simd.h":
    # Channels per block: full blocks go to the header's vector kernels, a
    # shorter tail block to the scalar loops here (same results either way).
    enum: CB "CYCONV_CB"
    enum: VBYTES "CYCONV_VBYTES"


cdef extern from "_pool_simd.h":
    # Full-block (CB channels) vector micro-kernels; see the header.
    void cy_max_block_f32(const float *xw, float *out, Py_ssize_t n_kh, Py_ssize_t n_kw,
                          Py_ssize_t row_step, Py_ssize_t col_step, int nv) noexcept nogil
    void cy_max_block_f64(const double *xw, double *out, Py_ssize_t n_kh, Py_ssize_t n_kw,
                          Py_ssize_t row_step, Py_ssize_t col_step, int nv) noexcept nogil
    void cy_sum_block_f32(const float *xw, float *out, Py_ssize_t n_kh, Py_ssize_t n_kw,
                          Py_ssize_t row_step, Py_ssize_t col_step, float scale, int nv) noexcept nogil
    void cy_sum_block_f64(const double *xw, double *out, Py_ssize_t n_kh, Py_ssize_t n_kw,
                          Py_ssize_t row_step, Py_ssize_t col_step, double scale, int nv) noexcept nogil
    void cy_argmax_block_f32(const float *xw, Py_ssize_t n_kh, Py_ssize_t n_kw,
                             Py_ssize_t row_step, Py_ssize_t col_step, int k_first,
                             int f_w, float *best, int *key, int nv) noexcept nogil
    void cy_argmax_block_f64(const double *xw, Py_ssize_t n_kh, Py_ssize_t n_kw,
                             Py_ssize_t row_step, Py_ssize_t col_step, long long k_first,
                             long long f_w, double *best, int *key, int nv) noexcept nogil
    void cy_route_first_block_f32(const float *dpi, const int *keyi, float *out,
                                  Py_ssize_t oh0, Py_ssize_t oh1, Py_ssize_t ow0,
                                  Py_ssize_t ow1, Py_ssize_t o_w, Py_ssize_t c_n,
                                  Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s_h,
                                  Py_ssize_t s_w, Py_ssize_t f_w, int nv) noexcept nogil
    void cy_route_first_block_f64(const double *dpi, const int *keyi, double *out,
                                  Py_ssize_t oh0, Py_ssize_t oh1, Py_ssize_t ow0,
                                  Py_ssize_t ow1, Py_ssize_t o_w, Py_ssize_t c_n,
                                  Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s_h,
                                  Py_ssize_t s_w, Py_ssize_t f_w, int nv) noexcept nogil
    void cy_route_ties_block_f32(const float *dpi, const float *besti, const float *xv,
                                 float *out, Py_ssize_t oh0, Py_ssize_t oh1,
                                 Py_ssize_t ow0, Py_ssize_t ow1, Py_ssize_t o_w,
                                 Py_ssize_t c_n, int nv) noexcept nogil
    void cy_route_ties_block_f64(const double *dpi, const double *besti, const double *xv,
                                 double *out, Py_ssize_t oh0, Py_ssize_t oh1,
                                 Py_ssize_t ow0, Py_ssize_t ow1, Py_ssize_t o_w,
                                 Py_ssize_t c_n, int nv) noexcept nogil
    void cy_max_route_disjoint_f32(const float *xw, float *dxw, const float *g,
                                   Py_ssize_t n_kh, Py_ssize_t n_kw, Py_ssize_t row_step,
                                   Py_ssize_t col_step, int all_ties, int nv) noexcept nogil
    void cy_max_route_disjoint_f64(const double *xw, double *dxw, const double *g,
                                   Py_ssize_t n_kh, Py_ssize_t n_kw, Py_ssize_t row_step,
                                   Py_ssize_t col_step, int all_ties, int nv) noexcept nogil
    void cy_key_route_disjoint_f32(const int *key, float *dxw, const float *g,
                                   Py_ssize_t n_kh, Py_ssize_t n_kw, Py_ssize_t row_step,
                                   Py_ssize_t col_step, int k_first, int f_w,
                                   int nv) noexcept nogil
    void cy_key_route_disjoint_f64(const int *key, double *dxw, const double *g,
                                   Py_ssize_t n_kh, Py_ssize_t n_kw, Py_ssize_t row_step,
                                   Py_ssize_t col_step, long long k_first, long long f_w,
                                   int nv) noexcept nogil
    void cy_avg_spread_disjoint_f32(float *dxw, const float *g, Py_ssize_t n_kh,
                                    Py_ssize_t n_kw, Py_ssize_t row_step,
                                    Py_ssize_t col_step, float scale, int nv) noexcept nogil
    void cy_avg_spread_disjoint_f64(double *dxw, const double *g, Py_ssize_t n_kh,
                                    Py_ssize_t n_kw, Py_ssize_t row_step,
                                    Py_ssize_t col_step, double scale, int nv) noexcept nogil
    void cy_spread_block_f32(const float *dpi, float *out, Py_ssize_t oh0, Py_ssize_t oh1,
                             Py_ssize_t ow0, Py_ssize_t ow1, Py_ssize_t o_w, Py_ssize_t c_n,
                             const float *inv_h, const float *inv_w, int nv) noexcept nogil
    void cy_spread_block_f64(const double *dpi, double *out, Py_ssize_t oh0, Py_ssize_t oh1,
                             Py_ssize_t ow0, Py_ssize_t ow1, Py_ssize_t o_w, Py_ssize_t c_n,
                             const double *inv_h, const double *inv_w, int nv) noexcept nogil


cdef inline bint _takes_over(floating v, floating best) noexcept nogil:
    # v replaces the running maximum if strictly greater, or if v is the
    # window's first NaN: NaN propagates, and ties keep the FIRST maximum.
    return v > best or (v != v and best == best)


cdef inline void _max_block(const floating *xw, floating *out,
                            Py_ssize_t n_kh, Py_ssize_t n_kw,
                            Py_ssize_t row_step, Py_ssize_t col_step,
                            Py_ssize_t nc) noexcept nogil:
    # out[c] = max over the n_kh x n_kw taps starting at xw, c < nc <= CB.
    # Whole vectors go to the header's kernels, the last few channels (fewer
    # than one vector) to the scalar loop, with the same results.
    cdef floating acc[CB]
    cdef floating v
    cdef const floating *xp
    cdef Py_ssize_t kh, kw, c
    cdef Py_ssize_t done, nv = nc // (VBYTES // sizeof(floating))
    if nv:
        if floating is float:
            cy_max_block_f32(xw, out, n_kh, n_kw, row_step, col_step, <int>nv)
        else:
            cy_max_block_f64(xw, out, n_kh, n_kw, row_step, col_step, <int>nv)
        done = nv * (VBYTES // sizeof(floating))
        if done == nc:
            return
        xw += done
        out += done
        nc -= done
    for c in range(nc):
        acc[c] = -INFINITY
    for kh in range(n_kh):
        for kw in range(n_kw):
            xp = xw + kh * row_step + kw * col_step
            for c in range(nc):
                v = xp[c]
                acc[c] = v if _takes_over(v, acc[c]) else acc[c]
    for c in range(nc):
        out[c] = acc[c]


cdef inline void _sum_block(const floating *xw, floating *out,
                            Py_ssize_t n_kh, Py_ssize_t n_kw,
                            Py_ssize_t row_step, Py_ssize_t col_step,
                            floating scale, Py_ssize_t nc) noexcept nogil:
    # out[c] = scale * sum over the n_kh x n_kw taps starting at xw.
    cdef floating acc[CB]
    cdef const floating *xp
    cdef Py_ssize_t kh, kw, c
    cdef Py_ssize_t done, nv = nc // (VBYTES // sizeof(floating))
    if nv:
        if floating is float:
            cy_sum_block_f32(xw, out, n_kh, n_kw, row_step, col_step, scale, <int>nv)
        else:
            cy_sum_block_f64(xw, out, n_kh, n_kw, row_step, col_step, scale, <int>nv)
        done = nv * (VBYTES // sizeof(floating))
        if done == nc:
            return
        xw += done
        out += done
        nc -= done
    for c in range(nc):
        acc[c] = 0
    for kh in range(n_kh):
        for kw in range(n_kw):
            xp = xw + kh * row_step + kw * col_step
            for c in range(nc):
                acc[c] = acc[c] + xp[c]
    for c in range(nc):
        out[c] = acc[c] * scale


cdef void _pool_row(const floating *x, floating *p, bint is_max,
                    bint count_include_pad, Py_ssize_t oh,
                    Py_ssize_t n_h, Py_ssize_t n_w, Py_ssize_t c_n,
                    Py_ssize_t o_w, Py_ssize_t f_h, Py_ssize_t f_w,
                    Py_ssize_t s_h, Py_ssize_t s_w,
                    Py_ssize_t p_t, Py_ssize_t p_l) noexcept nogil:
    # One output row (o_w, c_n) of one image x (n_h, n_w, c_n).
    cdef Py_ssize_t kh0 = tap_begin(oh, s_h, p_t)
    cdef Py_ssize_t kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
    cdef Py_ssize_t ow, kw0, kw1, c0, n_kh, n_kw, count
    cdef Py_ssize_t row_step = n_w * c_n
    cdef const floating *xw
    cdef floating scale
    n_kh = kh1 - kh0 if kh1 > kh0 else 0
    for ow in range(o_w):
        kw0 = tap_begin(ow, s_w, p_l)
        kw1 = tap_end(ow, s_w, p_l, n_w, f_w)
        n_kw = kw1 - kw0 if kw1 > kw0 else 0
        if n_kh == 0 or n_kw == 0:  # window wholly in the padding
            xw = x
            n_kw = 0
        else:
            xw = x + ((oh * s_h - p_t + kh0) * n_w + ow * s_w - p_l + kw0) * c_n
        count = f_h * f_w if count_include_pad else n_kh * n_kw
        scale = 1
        if count > 0:
            scale = scale / count
        c0 = 0
        while c0 + CB <= c_n:
            if is_max:
                _max_block(xw + c0, p + ow * c_n + c0, n_kh, n_kw, row_step, c_n, CB)
            else:
                _sum_block(xw + c0, p + ow * c_n + c0, n_kh, n_kw, row_step, c_n, scale, CB)
            c0 += CB
        if c0 < c_n:
            if is_max:
                _max_block(xw + c0, p + ow * c_n + c0, n_kh, n_kw, row_step, c_n, c_n - c0)
            else:
                _sum_block(xw + c0, p + ow * c_n + c0, n_kh, n_kw, row_step, c_n, scale,
                           c_n - c0)


def pool2d_forward(const floating[:, :, :, ::1] x,   # IN  (m, n_h, n_w, c)
                   floating[:, :, :, ::1] p,         # OUT (m, o_h, o_w, c)
                   bint is_max, bint count_include_pad,
                   Py_ssize_t f_h, Py_ssize_t f_w,
                   Py_ssize_t s_h, Py_ssize_t s_w,
                   Py_ssize_t p_t, Py_ssize_t p_l,
                   int num_threads):
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
        Average only: divide by ``f_h * f_w`` (padding zeros count) or by
        the number of input elements in the window.
    f_h, f_w, s_h, s_w : int
        Pool size and stride (>= 1).
    p_t, p_l : int
        Padding before the height and width axes.
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t m = p.shape[0], o_h = p.shape[1], o_w = p.shape[2]
    cdef Py_ssize_t c_n = p.shape[3], n_h = x.shape[1], n_w = x.shape[2]
    cdef Py_ssize_t row, i, oh
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            _pool_row(&x[i, 0, 0, 0], &p[i, oh, 0, 0], is_max, count_include_pad,
                      oh, n_h, n_w, c_n, o_w, f_h, f_w, s_h, s_w, p_t, p_l)


# Argmax keys: the tap index kh * f_w + kw of a window's first maximum in the
# full window, stored as int32 whatever the data type (-1: no input element).
# The vector kernels select them in integer lanes of the data's width and
# convert on load and store.


cdef inline void _argmax_block(const floating *xw,
                               Py_ssize_t n_kh, Py_ssize_t n_kw,
                               Py_ssize_t row_step, Py_ssize_t col_step,
                               Py_ssize_t k_first, Py_ssize_t f_w,
                               floating *best, int *key,
                               Py_ssize_t nc) noexcept nogil:
    # best[c]: the window's first maximum (or first NaN); key[c]: its tap
    # index kh * f_w + kw in the full window.
    cdef floating v
    cdef const floating *xp
    cdef Py_ssize_t kh, kw, c
    cdef Py_ssize_t done, nv = nc // (VBYTES // sizeof(floating))
    if nv:
        if floating is float:
            cy_argmax_block_f32(xw, n_kh, n_kw, row_step, col_step, <int>k_first, <int>f_w,
                                best, key, <int>nv)
        else:
            cy_argmax_block_f64(xw, n_kh, n_kw, row_step, col_step, k_first, f_w,
                                best, key, <int>nv)
        done = nv * (VBYTES // sizeof(floating))
        if done == nc:
            return
        xw += done
        best += done
        key += done
        nc -= done
    for c in range(nc):
        best[c] = xw[c]
        key[c] = <int>k_first
    for kh in range(n_kh):
        for kw in range(n_kw):
            xp = xw + kh * row_step + kw * col_step
            for c in range(nc):
                v = xp[c]
                if _takes_over(v, best[c]):
                    best[c] = v
                    key[c] = <int>(k_first + kh * f_w + kw)


def max_pool2d_argmax(const floating[:, :, :, ::1] x,   # IN  (m, n_h, n_w, c)
                      floating[:, :, :, ::1] p,         # OUT (m, o_h, o_w, c)
                      int[:, :, :, ::1] key,            # OUT (m, o_h, o_w, c)
                      Py_ssize_t f_h, Py_ssize_t f_w,
                      Py_ssize_t s_h, Py_ssize_t s_w,
                      Py_ssize_t p_t, Py_ssize_t p_l,
                      int num_threads):
    """Max pooling that also records where each maximum is.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Input.
    p : C-contiguous memoryview
        Output, as :func:`pool2d_forward` with ``is_max``.
    key : C-contiguous memoryview of int32
        For each output, the tap index ``kh * f_w + kw`` (in the full
        window, padding included) of its first maximum or first NaN; -1 for
        a window with no input element.
    f_h, f_w, s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`pool2d_forward`; ``f_h * f_w`` must be < 2**31.
    """
    cdef Py_ssize_t m = p.shape[0], o_h = p.shape[1], o_w = p.shape[2]
    cdef Py_ssize_t c_n = p.shape[3], n_h = x.shape[1], n_w = x.shape[2]
    cdef Py_ssize_t row, i, oh, ow, c, c0, kh0, kh1, kw0, kw1
    cdef Py_ssize_t row_step = n_w * c_n
    cdef const floating *xw
    cdef floating *pp
    cdef int *kp
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            kh0 = tap_begin(oh, s_h, p_t)
            kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
            for ow in range(o_w):
                kw0 = tap_begin(ow, s_w, p_l)
                kw1 = tap_end(ow, s_w, p_l, n_w, f_w)
                pp = &p[i, oh, ow, 0]
                kp = &key[i, oh, ow, 0]
                if kh0 >= kh1 or kw0 >= kw1:  # window wholly in the padding
                    for c in range(c_n):
                        pp[c] = -INFINITY
                        kp[c] = -1
                    continue
                xw = &x[i, oh * s_h - p_t + kh0, ow * s_w - p_l + kw0, 0]
                c0 = 0
                while c0 + CB <= c_n:  # full blocks: a constant count the C compiler unrolls
                    _argmax_block(xw + c0, kh1 - kh0, kw1 - kw0, row_step, c_n,
                                  kh0 * f_w + kw0, f_w, pp + c0, kp + c0, CB)
                    c0 = c0 + CB
                if c0 < c_n:
                    _argmax_block(xw + c0, kh1 - kh0, kw1 - kw0, row_step, c_n,
                                  kh0 * f_w + kw0, f_w, pp + c0, kp + c0, c_n - c0)


cdef inline void _route_block(const floating *dpi, const int *keyi, const floating *besti,
                              const floating *xv, floating *out, bint all_ties,
                              Py_ssize_t oh0, Py_ssize_t oh1,
                              Py_ssize_t ow0, Py_ssize_t ow1,
                              Py_ssize_t o_w, Py_ssize_t c_n,
                              Py_ssize_t ph, Py_ssize_t pw,
                              Py_ssize_t s_h, Py_ssize_t s_w, Py_ssize_t f_w,
                              Py_ssize_t nc) noexcept nogil:
    # out[c] = sum of dp over the covering windows that route to this input:
    # first-maximum rule (keyi: each window's argmax tap index) or, with
    # all_ties, every window whose maximum (besti) equals the input value xv[c].
    cdef floating acc[CB]
    cdef Py_ssize_t k
    cdef Py_ssize_t oh, ow, c, at
    cdef Py_ssize_t done, nv = nc // (VBYTES // sizeof(floating))
    if nv:
        if all_ties:
            if floating is float:
                cy_route_ties_block_f32(dpi, besti, xv, out, oh0, oh1, ow0, ow1, o_w, c_n, <int>nv)
            else:
                cy_route_ties_block_f64(dpi, besti, xv, out, oh0, oh1, ow0, ow1, o_w, c_n, <int>nv)
        elif floating is float:
            cy_route_first_block_f32(dpi, keyi, out, oh0, oh1, ow0, ow1, o_w, c_n,
                                     ph, pw, s_h, s_w, f_w, <int>nv)
        else:
            cy_route_first_block_f64(dpi, keyi, out, oh0, oh1, ow0, ow1, o_w, c_n,
                                     ph, pw, s_h, s_w, f_w, <int>nv)
        done = nv * (VBYTES // sizeof(floating))
        if done == nc:
            return
        dpi += done
        keyi += done
        besti += done
        xv += done
        out += done
        nc -= done
    for c in range(nc):
        acc[c] = 0
    for oh in range(oh0, oh1):
        for ow in range(ow0, ow1):
            at = (oh * o_w + ow) * c_n
            k = (ph - oh * s_h) * f_w + (pw - ow * s_w)
            for c in range(nc):
                if (besti[at + c] == xv[c]) if all_ties else (keyi[at + c] == k):
                    acc[c] = acc[c] + dpi[at + c]
    for c in range(nc):
        out[c] = acc[c]


def max_pool2d_backward(const floating[:, :, :, ::1] x,    # IN  (m, n_h, n_w, c)
                        const floating[:, :, :, ::1] dp,   # IN  (m, o_h, o_w, c)
                        const int[:, :, :, ::1] key,       # IN  (m, o_h, o_w, c)
                        const floating[:, :, :, ::1] best, # IN  (m, o_h, o_w, c)
                        floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c)
                        const Py_ssize_t[:, ::1] cover_h,  # IN  (n_h, 2)
                        const Py_ssize_t[:, ::1] cover_w,  # IN  (n_w, 2)
                        Py_ssize_t f_w, Py_ssize_t s_h, Py_ssize_t s_w,
                        Py_ssize_t p_t, Py_ssize_t p_l,
                        bint all_ties, int num_threads):
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
        rows (columns) whose windows cover it.
    f_w, s_h, s_w, p_t, p_l, num_threads : int
        Pool width, strides, padding before each axis, threads.
    all_ties : bool
        Give each window's gradient to every element equal to its maximum
        (the course's mask ``A == max(A)``) instead of its first maximum.
    """
    cdef Py_ssize_t m = dx.shape[0], n_h = dx.shape[1], n_w = dx.shape[2]
    cdef Py_ssize_t c_n = dx.shape[3], o_w = dp.shape[2]
    cdef Py_ssize_t row, i, ih, iw, c0
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
            for iw in range(n_w):
                dxp = &dx[i, ih, iw, 0]
                xv = &x[i, ih, iw, 0]
                c0 = 0
                while c0 + CB <= c_n:  # full blocks: a constant count the C compiler unrolls
                    _route_block(dpi + c0, ki + c0, bi + c0, xv + c0, dxp + c0, all_ties,
                                 cover_h[ih, 0], cover_h[ih, 1],
                                 cover_w[iw, 0], cover_w[iw, 1], o_w, c_n,
                                 ih + p_t, iw + p_l, s_h, s_w, f_w, CB)
                    c0 = c0 + CB
                if c0 < c_n:
                    _route_block(dpi + c0, ki + c0, bi + c0, xv + c0, dxp + c0, all_ties,
                                 cover_h[ih, 0], cover_h[ih, 1],
                                 cover_w[iw, 0], cover_w[iw, 1], o_w, c_n,
                                 ih + p_t, iw + p_l, s_h, s_w, f_w, c_n - c0)


cdef inline void _spread_block(const floating *dpi, floating *out,
                               Py_ssize_t oh0, Py_ssize_t oh1,
                               Py_ssize_t ow0, Py_ssize_t ow1,
                               Py_ssize_t o_w, Py_ssize_t c_n,
                               const floating *inv_h, const floating *inv_w,
                               Py_ssize_t nc) noexcept nogil:
    # out[c] = sum over covering windows (oh, ow) of dp[oh, ow, c] / count.
    cdef floating acc[CB]
    cdef floating scale
    cdef const floating *gp
    cdef Py_ssize_t oh, ow, c
    cdef Py_ssize_t done, nv = nc // (VBYTES // sizeof(floating))
    if nv:
        if floating is float:
            cy_spread_block_f32(dpi, out, oh0, oh1, ow0, ow1, o_w, c_n, inv_h, inv_w, <int>nv)
        else:
            cy_spread_block_f64(dpi, out, oh0, oh1, ow0, ow1, o_w, c_n, inv_h, inv_w, <int>nv)
        done = nv * (VBYTES // sizeof(floating))
        if done == nc:
            return
        dpi += done
        out += done
        nc -= done
    for c in range(nc):
        acc[c] = 0
    for oh in range(oh0, oh1):
        for ow in range(ow0, ow1):
            scale = inv_h[oh] * inv_w[ow]
            gp = dpi + (oh * o_w + ow) * c_n
            for c in range(nc):
                acc[c] = acc[c] + gp[c] * scale
    for c in range(nc):
        out[c] = acc[c]


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
    cdef Py_ssize_t row, i, ih, iw, c0
    cdef const floating *dpi
    cdef floating *dxp
    with nogil:
        for row in prange(m * n_h, num_threads=num_threads, schedule="static"):
            i = row // n_h
            ih = row % n_h
            dpi = &dp[i, 0, 0, 0]
            for iw in range(n_w):
                dxp = &dx[i, ih, iw, 0]
                c0 = 0
                while c0 + CB <= c_n:
                    _spread_block(dpi + c0, dxp + c0, cover_h[ih, 0], cover_h[ih, 1],
                                  cover_w[iw, 0], cover_w[iw, 1], o_w, c_n,
                                  &inv_h[0], &inv_w[0], CB)
                    c0 = c0 + CB
                if c0 < c_n:
                    _spread_block(dpi + c0, dxp + c0, cover_h[ih, 0], cover_h[ih, 1],
                                  cover_w[iw, 0], cover_w[iw, 1], o_w, c_n,
                                  &inv_h[0], &inv_w[0], c_n - c0)


cdef inline void _disjoint_block(const floating *xw, floating *dxw, const floating *g,
                                 const int *kp, bint is_max, bint all_ties, bint by_key,
                                 floating scale, Py_ssize_t n_kh, Py_ssize_t n_kw,
                                 Py_ssize_t row_step, Py_ssize_t col_step,
                                 Py_ssize_t k_first, Py_ssize_t f_w,
                                 Py_ssize_t nc) noexcept nogil:
    # Backward of one disjoint window for nc channels: write every tap.
    # by_key (max only): route by the forward's argmax keys kp (int32 tap indices)
    # instead of searching the window in x.
    cdef Py_ssize_t done, nv = nc // (VBYTES // sizeof(floating))
    cdef Py_ssize_t kh, kw, c, at
    cdef floating best = 0
    cdef Py_ssize_t first = 0
    cdef bint hit
    if nv:
        if by_key:
            if floating is float:
                cy_key_route_disjoint_f32(kp, dxw, g, n_kh, n_kw, row_step,
                                          col_step, <int>k_first, <int>f_w, <int>nv)
            else:
                cy_key_route_disjoint_f64(kp, dxw, g, n_kh, n_kw, row_step,
                                          col_step, k_first, f_w, <int>nv)
        elif is_max:
            if floating is float:
                cy_max_route_disjoint_f32(xw, dxw, g, n_kh, n_kw, row_step, col_step,
                                          all_ties, <int>nv)
            else:
                cy_max_route_disjoint_f64(xw, dxw, g, n_kh, n_kw, row_step, col_step,
                                          all_ties, <int>nv)
        elif floating is float:
            cy_avg_spread_disjoint_f32(dxw, g, n_kh, n_kw, row_step, col_step, scale, <int>nv)
        else:
            cy_avg_spread_disjoint_f64(dxw, g, n_kh, n_kw, row_step, col_step, scale, <int>nv)
        done = nv * (VBYTES // sizeof(floating))
        if done == nc:
            return
        xw += done
        dxw += done
        g += done
        if by_key:
            kp += done
        nc -= done
    for c in range(nc):
        if is_max and not by_key:
            best = xw[c]
            first = 0
            for kh in range(n_kh):
                for kw in range(n_kw):
                    at = kh * row_step + kw * col_step
                    if _takes_over(xw[at + c], best):
                        best = xw[at + c]
                        first = at
        for kh in range(n_kh):  # every tap is written (dx need not be zeroed)
            for kw in range(n_kw):
                at = kh * row_step + kw * col_step
                if not is_max:
                    dxw[at + c] = g[c] * scale
                    continue
                if by_key:
                    hit = kp[c] == k_first + kh * f_w + kw
                elif all_ties:
                    hit = xw[at + c] == best
                else:
                    hit = at == first
                dxw[at + c] = g[c] if hit else 0


def pool2d_backward_disjoint(const floating[:, :, :, ::1] x,    # IN  (m, n_h, n_w, c)
                             const floating[:, :, :, ::1] dp,   # IN  (m, o_h, o_w, c)
                             const int[:, :, :, ::1] key,       # IN  (m, o_h, o_w, c), by_key
                             floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c)
                             bint is_max, bint all_ties, bint by_key, bint count_include_pad,
                             Py_ssize_t f_h, Py_ssize_t f_w,
                             Py_ssize_t s_h, Py_ssize_t s_w,
                             Py_ssize_t p_t, Py_ssize_t p_l,
                             int num_threads):
    """Max or average pooling backward when windows do not overlap.

    With ``s_h >= f_h`` and ``s_w >= f_w`` every input element lies in at most
    one window, so each output row owns its input rows outright: rows run in
    parallel and every tap is written once, straight from its window (max:
    the window's argmax is found and used in registers, never stored).

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
        Input gradient: every element in a window is written; elements
        outside every window (gaps, s > f) are left alone, so zero-fill dx
        unless the windows tile the input.
    is_max, all_ties, by_key, count_include_pad : bool
        Max (first maximum, or every tied maximum, or routed by ``key``) or
        average pooling, and the average's divisor rule.
    f_h, f_w, s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`pool2d_forward`; ``s_h >= f_h`` and ``s_w >= f_w``.
    """
    cdef Py_ssize_t m = dp.shape[0], o_h = dp.shape[1], o_w = dp.shape[2]
    cdef Py_ssize_t c_n = dp.shape[3], n_h = dx.shape[1], n_w = dx.shape[2]
    cdef Py_ssize_t row_step = n_w * c_n
    cdef Py_ssize_t row, i, oh, ow, kh0, kh1, kw0, kw1, c0, at, count
    cdef floating scale
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            kh0 = tap_begin(oh, s_h, p_t)
            kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
            if kh0 >= kh1:
                continue  # window rows wholly in the padding
            for ow in range(o_w):
                kw0 = tap_begin(ow, s_w, p_l)
                kw1 = tap_end(ow, s_w, p_l, n_w, f_w)
                if kw0 >= kw1:
                    continue
                count = f_h * f_w if count_include_pad else (kh1 - kh0) * (kw1 - kw0)
                scale = 1
                scale = scale / count
                at = ((oh * s_h - p_t + kh0) * n_w + ow * s_w - p_l + kw0) * c_n
                c0 = 0
                while c0 + CB <= c_n:  # full blocks: a constant count the C compiler unrolls
                    _disjoint_block(&x[i, 0, 0, 0] + at + c0, &dx[i, 0, 0, 0] + at + c0,
                                    &dp[i, oh, ow, 0] + c0,
                                    &key[i, oh, ow, c0] if by_key else NULL,
                                    is_max, all_ties, by_key, scale, kh1 - kh0, kw1 - kw0,
                                    row_step, c_n, kh0 * f_w + kw0, f_w, CB)
                    c0 = c0 + CB
                if c0 < c_n:
                    _disjoint_block(&x[i, 0, 0, 0] + at + c0, &dx[i, 0, 0, 0] + at + c0,
                                    &dp[i, oh, ow, 0] + c0,
                                    &key[i, oh, ow, c0] if by_key else NULL,
                                    is_max, all_ties, by_key, scale, kh1 - kh0, kw1 - kw0,
                                    row_step, c_n, kh0 * f_w + kw0, f_w, c_n - c0)
