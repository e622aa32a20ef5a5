"""Pooling kernels: max and average, forward and backward (NHWC).

Private: ``cyconv/pool.py`` validates, allocates and passes ready,
C-contiguous, non-empty buffers. Innermost loops run over the contiguous
channel axis. Padding is never materialised: taps outside the input are
skipped (max-pool padding is -inf, avg-pool padding is 0, so skipping them
is exact; only the avg-pool divisor needs to know about them).
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY

from cyconv._window cimport out_begin, out_end, tap_begin, tap_end


cdef inline bint _takes_over(floating v, floating best) noexcept nogil:
    # v replaces the running maximum if strictly greater, or if v is the
    # window's first NaN: NaN propagates, and ties keep the FIRST maximum.
    return v > best or (v != v and best == best)


def max_pool2d_forward(const floating[:, :, :, ::1] x,   # IN  (m, n_h, n_w, c)
                       floating[:, :, :, ::1] p,         # OUT (m, o_h, o_w, c)
                       Py_ssize_t f_h, Py_ssize_t f_w,
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l,
                       int num_threads):
    """p = max over each window (padding is -inf), parallel over batch x rows.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Input.
    p : C-contiguous memoryview
        Output, fully overwritten. A window holding a NaN gives NaN; a window
        with no input element at all gives -inf.
    f_h, f_w, s_h, s_w : int
        Pool size and stride (>= 1).
    p_t, p_l : int
        Padding before the height and width axes.
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef Py_ssize_t m = p.shape[0], o_h = p.shape[1], o_w = p.shape[2]
    cdef Py_ssize_t c_n = p.shape[3], n_h = x.shape[1], n_w = x.shape[2]
    cdef Py_ssize_t row, i, oh, ow, kh, kw, c, kh0, kh1, kw0, kw1
    cdef floating v
    cdef floating *pp
    cdef const floating *xp
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            kh0 = tap_begin(oh, s_h, p_t)
            kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
            for ow in range(o_w):
                pp = &p[i, oh, ow, 0]
                for c in range(c_n):
                    pp[c] = -INFINITY
                kw0 = tap_begin(ow, s_w, p_l)
                kw1 = tap_end(ow, s_w, p_l, n_w, f_w)
                for kh in range(kh0, kh1):
                    for kw in range(kw0, kw1):
                        xp = &x[i, oh * s_h - p_t + kh, ow * s_w - p_l + kw, 0]
                        for c in range(c_n):
                            v = xp[c]
                            if _takes_over(v, pp[c]):
                                pp[c] = v


def max_pool2d_backward(const floating[:, :, :, ::1] x,    # IN  (m, n_h, n_w, c)
                        const floating[:, :, :, ::1] dp,   # IN  (m, o_h, o_w, c)
                        floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c), zeroed
                        floating[:, ::1] best,             # TMP (num_threads, c)
                        Py_ssize_t[:, ::1] arg,            # TMP (num_threads, c)
                        Py_ssize_t f_h, Py_ssize_t f_w,
                        Py_ssize_t s_h, Py_ssize_t s_w,
                        Py_ssize_t p_t, Py_ssize_t p_l,
                        bint all_ties, int num_threads):
    """Route each window's gradient to its maximum, parallel over the batch.

    Windows are recomputed from ``x``: the gradient goes to the window's
    first maximum in row-major order (its first NaN if it holds one); with
    ``all_ties`` it goes instead, whole, to every element equal to the
    maximum (the course's mask ``A == max(A)``). Overlapping windows add
    into the same ``dx`` elements, so each image is one thread's work.

    Parameters
    ----------
    x, dp : C-contiguous memoryviews, non-empty
        Forward input and output gradient.
    dx : C-contiguous memoryview, zero-filled
        Input gradient, accumulated into.
    best, arg : C-contiguous memoryviews
        Per-thread scratch rows (running maximum and its offset).
    f_h, f_w, s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`max_pool2d_forward`.
    all_ties : bool
        Give the gradient to every tied maximum instead of the first.
    """
    cdef Py_ssize_t m = dp.shape[0], o_h = dp.shape[1], o_w = dp.shape[2]
    cdef Py_ssize_t c_n = dp.shape[3], n_h = x.shape[1], n_w = x.shape[2]
    cdef Py_ssize_t i, oh, ow, kh, kw, c, kh0, kh1, kw0, kw1, off, t
    cdef floating v
    cdef floating *bp
    cdef Py_ssize_t *ap
    cdef const floating *xi
    cdef const floating *gp
    cdef floating *dxi
    with nogil:
        for i in prange(m, num_threads=num_threads, schedule="static"):
            t = threadid()
            bp = &best[t, 0]
            ap = &arg[t, 0]
            xi = &x[i, 0, 0, 0]
            dxi = &dx[i, 0, 0, 0]
            for oh in range(o_h):
                kh0 = tap_begin(oh, s_h, p_t)
                kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
                for ow in range(o_w):
                    kw0 = tap_begin(ow, s_w, p_l)
                    kw1 = tap_end(ow, s_w, p_l, n_w, f_w)
                    if kh0 >= kh1 or kw0 >= kw1:
                        continue  # window entirely in the padding: no gradient
                    gp = &dp[i, oh, ow, 0]
                    for c in range(c_n):
                        ap[c] = -1
                    for kh in range(kh0, kh1):
                        for kw in range(kw0, kw1):
                            off = ((oh * s_h - p_t + kh) * n_w
                                   + ow * s_w - p_l + kw) * c_n
                            for c in range(c_n):
                                v = xi[off + c]
                                if ap[c] < 0 or _takes_over(v, bp[c]):
                                    bp[c] = v
                                    ap[c] = off + c
                    if not all_ties:
                        for c in range(c_n):
                            dxi[ap[c]] += gp[c]
                        continue
                    for kh in range(kh0, kh1):
                        for kw in range(kw0, kw1):
                            off = ((oh * s_h - p_t + kh) * n_w
                                   + ow * s_w - p_l + kw) * c_n
                            for c in range(c_n):
                                if xi[off + c] == bp[c]:
                                    dxi[off + c] += gp[c]


def avg_pool2d_forward(const floating[:, :, :, ::1] x,   # IN  (m, n_h, n_w, c)
                       floating[:, :, :, ::1] p,         # OUT (m, o_h, o_w, c)
                       Py_ssize_t f_h, Py_ssize_t f_w,
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l,
                       bint count_include_pad, int num_threads):
    """p = mean over each window, parallel over batch x output rows.

    Parameters
    ----------
    x : C-contiguous memoryview, non-empty
        Input.
    p : C-contiguous memoryview
        Output, fully overwritten.
    f_h, f_w, s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`max_pool2d_forward`.
    count_include_pad : bool
        Divide by ``f_h * f_w`` (padding zeros count) or by the number of
        input elements in the window (a window with none gives 0).
    """
    cdef Py_ssize_t m = p.shape[0], o_h = p.shape[1], o_w = p.shape[2]
    cdef Py_ssize_t c_n = p.shape[3], n_h = x.shape[1], n_w = x.shape[2]
    cdef Py_ssize_t row, i, oh, ow, kh, kw, c, kh0, kh1, kw0, kw1, count
    cdef floating *pp
    cdef const floating *xp
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            kh0 = tap_begin(oh, s_h, p_t)
            kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
            for ow in range(o_w):
                pp = &p[i, oh, ow, 0]
                for c in range(c_n):
                    pp[c] = 0
                kw0 = tap_begin(ow, s_w, p_l)
                kw1 = tap_end(ow, s_w, p_l, n_w, f_w)
                for kh in range(kh0, kh1):
                    for kw in range(kw0, kw1):
                        xp = &x[i, oh * s_h - p_t + kh, ow * s_w - p_l + kw, 0]
                        for c in range(c_n):
                            pp[c] += xp[c]
                if count_include_pad:
                    count = f_h * f_w
                elif kh1 > kh0 and kw1 > kw0:
                    count = (kh1 - kh0) * (kw1 - kw0)
                else:
                    continue  # no input element: the mean of nothing is 0 here
                for c in range(c_n):
                    pp[c] = pp[c] / count


def avg_pool2d_backward(const floating[:, :, :, ::1] dp,   # IN  (m, o_h, o_w, c)
                        floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c)
                        Py_ssize_t f_h, Py_ssize_t f_w,
                        Py_ssize_t s_h, Py_ssize_t s_w,
                        Py_ssize_t p_t, Py_ssize_t p_l,
                        bint count_include_pad, int num_threads):
    """dx[i] = sum of dp / count over the windows covering i.

    Gather form: every ``dx`` element is summed by one thread over the
    windows that cover it, so there are no write conflicts and rows run in
    parallel over batch x input rows.

    Parameters
    ----------
    dp : C-contiguous memoryview, non-empty
        Output gradient.
    dx : C-contiguous memoryview
        Input gradient, fully overwritten.
    f_h, f_w, s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`max_pool2d_forward`.
    count_include_pad : bool
        As for :func:`avg_pool2d_forward`.
    """
    cdef Py_ssize_t m = dx.shape[0], n_h = dx.shape[1], n_w = dx.shape[2]
    cdef Py_ssize_t c_n = dx.shape[3], o_h = dp.shape[1], o_w = dp.shape[2]
    cdef Py_ssize_t row, i, ih, iw, oh, ow, c, count
    cdef floating scale
    cdef floating *dxp
    cdef const floating *gp
    with nogil:
        for row in prange(m * n_h, num_threads=num_threads, schedule="static"):
            i = row // n_h
            ih = row % n_h
            for iw in range(n_w):
                dxp = &dx[i, ih, iw, 0]
                for c in range(c_n):
                    dxp[c] = 0
                for oh in range(out_begin(ih, s_h, p_t, f_h), out_end(ih, s_h, p_t, o_h)):
                    for ow in range(out_begin(iw, s_w, p_l, f_w), out_end(iw, s_w, p_l, o_w)):
                        if count_include_pad:
                            count = f_h * f_w
                        else:
                            count = ((tap_end(oh, s_h, p_t, n_h, f_h) - tap_begin(oh, s_h, p_t))
                                     * (tap_end(ow, s_w, p_l, n_w, f_w) - tap_begin(ow, s_w, p_l)))
                        scale = 1
                        scale = scale / count
                        gp = &dp[i, oh, ow, 0]
                        for c in range(c_n):
                            dxp[c] += gp[c] * scale
