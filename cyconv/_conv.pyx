"""Convolution kernels: forward, dx and dw/db (NHWC activations, HWIO filters).

Private: ``cyconv/conv.py`` validates every argument, allocates every output
and passes ready, C-contiguous, non-empty buffers; nothing here can fail.
Every kernel sums in an order fixed by the shapes alone, so results are
bitwise identical whatever the thread count.
"""
from cython cimport floating
from cython.parallel cimport prange

from cyconv._window cimport out_begin, out_end, tap_begin, tap_end


# Fixed number of batch x row chunks the dw reduction is split into. It depends
# on nothing but this constant and the shapes, so the chunk partial sums (and
# their in-order merge) are the same for any number of threads.
cdef enum:
    DW_CHUNKS = 8


cdef void _forward_row(const floating *x, const floating *w,
                       const floating *b, floating *z,
                       Py_ssize_t oh, Py_ssize_t n_h, Py_ssize_t n_w,
                       Py_ssize_t c_in, Py_ssize_t f_h, Py_ssize_t f_w,
                       Py_ssize_t o_w, Py_ssize_t c_out,
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l) noexcept nogil:
    # x: one image (n_h, n_w, c_in); z: one output row (o_w, c_out).
    cdef Py_ssize_t ow, kh, kw, ci, co, ih, iw
    cdef Py_ssize_t kh0 = tap_begin(oh, s_h, p_t)
    cdef Py_ssize_t kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
    cdef Py_ssize_t kw0, kw1
    cdef floating xv
    cdef floating *zp
    cdef const floating *xp
    cdef const floating *wp
    for ow in range(o_w):
        zp = z + ow * c_out
        for co in range(c_out):
            zp[co] = 0
        kw0 = tap_begin(ow, s_w, p_l)
        kw1 = tap_end(ow, s_w, p_l, n_w, f_w)
        for kh in range(kh0, kh1):
            ih = oh * s_h - p_t + kh
            for kw in range(kw0, kw1):
                iw = ow * s_w - p_l + kw
                xp = x + (ih * n_w + iw) * c_in
                wp = w + (kh * f_w + kw) * c_in * c_out
                # Inner loop over contiguous output channels: an axpy the
                # compiler vectorises (NHWC x, HWIO w make both rows unit-stride).
                for ci in range(c_in):
                    xv = xp[ci]
                    for co in range(c_out):
                        zp[co] += xv * wp[ci * c_out + co]
        for co in range(c_out):
            zp[co] += b[co]


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
    cdef Py_ssize_t row, i, oh
    with nogil:
        for row in prange(m * o_h, num_threads=num_threads, schedule="static"):
            i = row // o_h
            oh = row % o_h
            _forward_row(&x[i, 0, 0, 0], &w[0, 0, 0, 0], &b[0], &z[i, oh, 0, 0],
                         oh, n_h, n_w, c_in, f_h, f_w, o_w, c_out,
                         s_h, s_w, p_t, p_l)


cdef void _dx_row(const floating *dz, const floating *wt, floating *dx,
                  Py_ssize_t ih, Py_ssize_t n_w, Py_ssize_t c_in,
                  Py_ssize_t f_h, Py_ssize_t f_w, Py_ssize_t o_h,
                  Py_ssize_t o_w, Py_ssize_t c_out,
                  Py_ssize_t s_h, Py_ssize_t s_w,
                  Py_ssize_t p_t, Py_ssize_t p_l) noexcept nogil:
    # dz: one image's gradient (o_h, o_w, c_out); wt: filters repacked as
    # (f_h, f_w, c_out, c_in); dx: one input row (n_w, c_in), zeroed here.
    # Gather form: each dx element is owned by one thread, no atomics.
    cdef Py_ssize_t iw, kh, kw, ci, co, oh, ow, th, tw
    cdef floating g
    cdef floating *dxp
    cdef const floating *gp
    cdef const floating *wp
    for iw in range(n_w):
        dxp = dx + iw * c_in
        for ci in range(c_in):
            dxp[ci] = 0
        for oh in range(out_begin(ih, s_h, p_t, f_h), out_end(ih, s_h, p_t, o_h)):
            kh = ih + p_t - oh * s_h
            for ow in range(out_begin(iw, s_w, p_l, f_w), out_end(iw, s_w, p_l, o_w)):
                kw = iw + p_l - ow * s_w
                gp = dz + (oh * o_w + ow) * c_out
                wp = wt + (kh * f_w + kw) * c_out * c_in
                for co in range(c_out):
                    g = gp[co]
                    for ci in range(c_in):
                        dxp[ci] += g * wp[co * c_in + ci]


def conv2d_backward_dx(const floating[:, :, :, ::1] dz,   # IN  (m, o_h, o_w, c_out)
                       const floating[:, :, :, ::1] wt,   # IN  (f_h, f_w, c_out, c_in)
                       floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c_in)
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l,
                       int num_threads):
    """dx = conv_transpose(dz, w), parallel over batch x input rows.

    Parameters
    ----------
    dz : C-contiguous memoryview, non-empty
        Gradient of the output.
    wt : C-contiguous memoryview
        Filters with the channel axes swapped, ``w.transpose(0, 1, 3, 2)``,
        so the innermost loop runs over contiguous input channels.
    dx : C-contiguous memoryview
        Gradient of the input, fully overwritten.
    s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`conv2d_forward`.
    """
    cdef Py_ssize_t m = dx.shape[0], n_h = dx.shape[1], n_w = dx.shape[2]
    cdef Py_ssize_t c_in = dx.shape[3]
    cdef Py_ssize_t o_h = dz.shape[1], o_w = dz.shape[2], c_out = dz.shape[3]
    cdef Py_ssize_t f_h = wt.shape[0], f_w = wt.shape[1]
    cdef Py_ssize_t row, i, ih
    with nogil:
        for row in prange(m * n_h, num_threads=num_threads, schedule="static"):
            i = row // n_h
            ih = row % n_h
            _dx_row(&dz[i, 0, 0, 0], &wt[0, 0, 0, 0], &dx[i, ih, 0, 0],
                    ih, n_w, c_in, f_h, f_w, o_h, o_w, c_out,
                    s_h, s_w, p_t, p_l)


cdef void _dw_rows(const floating *x, const floating *dz,
                   floating *dw, floating *db,
                   Py_ssize_t r0, Py_ssize_t r1,
                   Py_ssize_t n_h, Py_ssize_t n_w, Py_ssize_t c_in,
                   Py_ssize_t f_h, Py_ssize_t f_w, Py_ssize_t o_h,
                   Py_ssize_t o_w, Py_ssize_t c_out,
                   Py_ssize_t s_h, Py_ssize_t s_w,
                   Py_ssize_t p_t, Py_ssize_t p_l) noexcept nogil:
    # Accumulate the contribution of output rows r0 .. r1 - 1 (batch-major)
    # into one chunk's partial dw (f_h, f_w, c_in, c_out) and db (c_out,).
    cdef Py_ssize_t row, i, oh, ow, kh, kw, ci, co, ih, iw
    cdef Py_ssize_t kh0, kh1, kw0, kw1
    cdef floating xv
    cdef const floating *gp
    cdef const floating *xp
    cdef floating *wp
    for row in range(r0, r1):
        i = row // o_h
        oh = row % o_h
        kh0 = tap_begin(oh, s_h, p_t)
        kh1 = tap_end(oh, s_h, p_t, n_h, f_h)
        for ow in range(o_w):
            gp = dz + ((i * o_h + oh) * o_w + ow) * c_out
            for co in range(c_out):
                db[co] += gp[co]
            kw0 = tap_begin(ow, s_w, p_l)
            kw1 = tap_end(ow, s_w, p_l, n_w, f_w)
            for kh in range(kh0, kh1):
                ih = oh * s_h - p_t + kh
                for kw in range(kw0, kw1):
                    iw = ow * s_w - p_l + kw
                    xp = x + ((i * n_h + ih) * n_w + iw) * c_in
                    wp = dw + (kh * f_w + kw) * c_in * c_out
                    for ci in range(c_in):
                        xv = xp[ci]
                        for co in range(c_out):
                            wp[ci * c_out + co] += xv * gp[co]


def dw_chunks(Py_ssize_t n_rows):
    """Number of partial sums the dw reduction uses for ``n_rows`` output rows.

    Parameters
    ----------
    n_rows : int
        ``m * o_h``.

    Returns
    -------
    int
        ``min(n_rows, DW_CHUNKS)``; the caller allocates that many partials.
    """
    return min(n_rows, DW_CHUNKS)


def conv2d_backward_dw(const floating[:, :, :, ::1] x,      # IN  (m, n_h, n_w, c_in)
                       const floating[:, :, :, ::1] dz,     # IN  (m, o_h, o_w, c_out)
                       floating[:, :, :, :, ::1] dw_part,   # TMP (chunks, f_h, f_w, c_in, c_out), zeroed
                       floating[:, ::1] db_part,            # TMP (chunks, c_out), zeroed
                       floating[:, :, :, ::1] dw,           # OUT (f_h, f_w, c_in, c_out)
                       floating[::1] db,                    # OUT (c_out,)
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l,
                       int num_threads):
    """dw and db as a reduction over batch and output rows.

    The ``m * o_h`` output rows are split into ``dw_part.shape[0]`` contiguous
    chunks (a number fixed by :func:`dw_chunks`, not by the thread count);
    each chunk's partial sums are computed by one thread, then merged in
    chunk order, so the result is bitwise reproducible.

    Parameters
    ----------
    x, dz : C-contiguous memoryviews, non-empty
        Forward input and output gradient.
    dw_part, db_part : C-contiguous memoryviews, zero-filled
        Scratch space for the per-chunk partial sums.
    dw, db : C-contiguous memoryviews
        Outputs, fully overwritten.
    s_h, s_w, p_t, p_l, num_threads : int
        As for :func:`conv2d_forward`.
    """
    cdef Py_ssize_t n_h = x.shape[1], n_w = x.shape[2], c_in = x.shape[3]
    cdef Py_ssize_t m = dz.shape[0], o_h = dz.shape[1], o_w = dz.shape[2]
    cdef Py_ssize_t c_out = dz.shape[3]
    cdef Py_ssize_t f_h = dw.shape[0], f_w = dw.shape[1]
    cdef Py_ssize_t n_chunks = dw_part.shape[0], n_rows = m * o_h
    cdef Py_ssize_t size = f_h * f_w * c_in * c_out
    cdef Py_ssize_t chunk, j, k
    cdef floating acc
    with nogil:
        for chunk in prange(n_chunks, num_threads=num_threads, schedule="static"):
            _dw_rows(&x[0, 0, 0, 0], &dz[0, 0, 0, 0],
                     &dw_part[chunk, 0, 0, 0, 0], &db_part[chunk, 0],
                     chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks,
                     n_h, n_w, c_in, f_h, f_w, o_h, o_w, c_out,
                     s_h, s_w, p_t, p_l)
        for j in prange(size, num_threads=num_threads, schedule="static"):
            acc = 0
            for k in range(n_chunks):
                acc = acc + (&dw_part[0, 0, 0, 0, 0])[k * size + j]
            (&dw[0, 0, 0, 0])[j] = acc
        for j in range(c_out):
            acc = 0
            for k in range(n_chunks):
                acc = acc + db_part[k, j]
            db[j] = acc
