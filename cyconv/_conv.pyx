"""Convolution kernels: forward, dx and dw/db (NHWC activations, HWIO filters).

Private: ``cyconv/conv.py`` validates every argument, allocates every output
and passes ready, C-contiguous, non-empty buffers; nothing here can fail.
Compiled once per CPU level of ``cyconv/_levels.py`` (this module is the
baseline; ``_conv_v3``, ``_conv_v4`` are generated stubs that include this
file); ``cyconv/_dispatch.py`` picks the module of a call.

The file reads top to bottom:

1. the parameter block (``cyc_conv_params``, in ``_conv_simd.h``), filled
   once per call by :func:`_params`;
2. the tap builder: every list of (input offset, weight offset) pairs a
   tile sums over is the product of two per-axis lists, built by one of
   three axis rules (forward taps, gathered dx taps, dw's output rows);
3. the drivers, one per pass, which pack the operand read as vectors into
   zero-padded blocks of ``NB`` channels, split rows into interior tiles
   (one shared tap list) and edge columns (their own), and share the rows
   among threads.

All three passes run on one register-tile micro-kernel (``_conv_simd.h``): a
tile of up to ``CYC_MR1`` pixels x 1-2 SIMD vectors of channels. Taps in the
padding are left out; only narrow images, where most columns would straddle
the padding, run on a zero-padded copy of x or dz. Every output element is
summed in an order fixed by the shapes alone, so results are bitwise
identical whatever the thread count.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stddef cimport ptrdiff_t
from libc.string cimport memcpy, memset


cdef extern from "_conv_simd.h" nogil:
    # This module's row of the per-level table (cyconv/_levels.py).
    enum: VBYTES "CYC_VBYTES"
    enum: MR1 "CYC_MR1"
    enum: MR2 "CYC_MR2"
    enum: DOT_MP "CYC_DOT_MP"
    enum: DOT_MC "CYC_DOT_MC"
    enum: DW_GROUP_PIXELS "CYC_DW_GROUP_PIXELS"
    enum: DW_GROUP_PIXELS_NO_EDGES "CYC_DW_GROUP_PIXELS_NO_EDGES"
    enum: DW_PACK_X_BYTES "CYC_DW_PACK_X_BYTES"
    enum: DW_PACK_DZ_BYTES "CYC_DW_PACK_DZ_BYTES"
    enum: MIN_PARALLEL_FMAS "CYC_MIN_PARALLEL_FMAS"
    int cyc_lanes(int itemsize)
    int cyc_max_pixels(int nv)
    int cyc_cpu_max_level()

    enum: CYC_ACT_NONE
    enum: CYC_ACT_RELU
    ctypedef struct cyc_epilogue:
        const void *bias
        int accumulate
        int activation
    ctypedef struct cyc_conv_params:
        ptrdiff_t m, n_h, n_w, c_in, o_h, o_w, c_out, f_h, f_w
        ptrdiff_t s_h, s_w, p_t, p_l, d_h, d_w, groups, K
        ptrdiff_t x_ps, x_rs, x_is, z_ps, z_rs, z_is, w_ts, w_cs
        cyc_epilogue epi

    # The tile (CYC_TILE_SIGNATURE) and the float32 dot tile of dx
    # (CYC_DOT_SIGNATURE), as instantiated per element type.
    void cyc_tile_f32(int P, int NV, const float *inp, ptrdiff_t base, ptrdiff_t in_ps,
                      ptrdiff_t in_ks, const float *w, ptrdiff_t w_ks, const ptrdiff_t *in_off,
                      const ptrdiff_t *w_off, ptrdiff_t ntaps, ptrdiff_t K, float *out,
                      ptrdiff_t out_ps, int nch, cyc_epilogue epi)
    void cyc_tile_f64(int P, int NV, const double *inp, ptrdiff_t base, ptrdiff_t in_ps,
                      ptrdiff_t in_ks, const double *w, ptrdiff_t w_ks, const ptrdiff_t *in_off,
                      const ptrdiff_t *w_off, ptrdiff_t ntaps, ptrdiff_t K, double *out,
                      ptrdiff_t out_ps, int nch, cyc_epilogue epi)
    void cyc_pack_slab_f32(int P, const float *x, const ptrdiff_t *in_off, ptrdiff_t nt,
                           ptrdiff_t K, ptrdiff_t in_ks, float *dst)
    void cyc_pack_slab_f64(int P, const double *x, const ptrdiff_t *in_off, ptrdiff_t nt,
                           ptrdiff_t K, ptrdiff_t in_ks, double *dst)
    void cyc_pack_dz_f32(const float *dz, ptrdiff_t ld, ptrdiff_t n, ptrdiff_t c, int nb,
                         ptrdiff_t nblk, float *dst)
    void cyc_pack_dz_f64(const double *dz, ptrdiff_t ld, ptrdiff_t n, ptrdiff_t c, int nb,
                         ptrdiff_t nblk, double *dst)
    void cyc_db_rows_f32(const float *dz, float *db, ptrdiff_t p0, ptrdiff_t p1,
                         ptrdiff_t c_out)
    void cyc_db_rows_f64(const double *dz, double *db, ptrdiff_t p0, ptrdiff_t p1,
                         ptrdiff_t c_out)
    void cyc_dot_f32(int P, int C, const float *inp, ptrdiff_t base, ptrdiff_t in_ps,
                     const float *w, ptrdiff_t w_cs, const ptrdiff_t *in_off,
                     const ptrdiff_t *w_off, ptrdiff_t ntaps, ptrdiff_t K, float *out,
                     ptrdiff_t out_ps)


def cpu_max_level():
    """Index (in ``cyconv._levels.LEVELS``) of the highest CPU level this CPU and build run."""
    return cyc_cpu_max_level()


def level_table():
    """This module's row of the per-level table, as compiled (see ``cyconv/_levels.py``).

    Returns
    -------
    dict
        ``vbytes``, ``conv_pixels``, ``dot_tile``, ``dw_group_pixels``,
        ``dw_group_pixels_no_edges``, ``dw_pack_x_bytes``, ``dw_pack_dz_bytes``,
        ``min_parallel_fmas``: the constants the kernels were compiled with.
    """
    return dict(vbytes=VBYTES, conv_pixels=(MR1, MR2), dot_tile=(DOT_MP, DOT_MC),
                dw_group_pixels=DW_GROUP_PIXELS,
                dw_group_pixels_no_edges=DW_GROUP_PIXELS_NO_EDGES,
                dw_pack_x_bytes=DW_PACK_X_BYTES, dw_pack_dz_bytes=DW_PACK_DZ_BYTES,
                min_parallel_fmas=MIN_PARALLEL_FMAS)


# --------------------------------------------------------------------------
# 1. The parameter block
# --------------------------------------------------------------------------

cdef cyc_conv_params _params(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] z,
                             const floating[:, :, :, ::1] w, Py_ssize_t s_h, Py_ssize_t s_w,
                             Py_ssize_t p_t, Py_ssize_t p_l, Py_ssize_t d_h,
                             Py_ssize_t d_w, Py_ssize_t groups) noexcept:
    # x: x or dx, z: z or dz, w: w or dw (shapes only, and their strides).
    # With groups > 1, group g is x's channels g*K .. g*K + K - 1 and z's
    # g*C .. g*C + C - 1 (C = c_out / groups), w's last axis too: the drivers
    # run each group as a convolution of K -> C channels at those offsets,
    # with the element strides of the whole arrays.
    cdef cyc_conv_params p
    cdef Py_ssize_t item = sizeof(floating)
    p.m, p.n_h, p.n_w, p.c_in = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    p.o_h, p.o_w, p.c_out = z.shape[1], z.shape[2], z.shape[3]
    p.f_h, p.f_w = w.shape[0], w.shape[1]
    p.s_h, p.s_w, p.p_t, p.p_l = s_h, s_w, p_t, p_l
    p.d_h, p.d_w = d_h, d_w
    p.groups = groups
    p.K = p.c_in // p.groups
    p.x_ps, p.x_rs, p.x_is = x.strides[2] // item, x.strides[1] // item, x.strides[0] // item
    p.z_ps, p.z_rs, p.z_is = z.strides[2] // item, z.strides[1] // item, z.strides[0] // item
    p.w_ts, p.w_cs = w.strides[1] // item, w.strides[2] // item
    p.epi.bias = NULL
    p.epi.accumulate = 0
    p.epi.activation = CYC_ACT_NONE
    return p


cdef inline ptrdiff_t _group_out(const cyc_conv_params *p) noexcept nogil:
    # Output channels (z's, dz's) of one group.
    return p.c_out // p.groups


cdef inline cyc_epilogue _epilogue(const void *bias, bint accumulate,
                                   int activation) noexcept nogil:
    cdef cyc_epilogue e
    e.bias = bias
    e.accumulate = accumulate
    e.activation = activation
    return e


# --------------------------------------------------------------------------
# 2. The tap builder
# --------------------------------------------------------------------------
# A tile sums over a list of taps t: in[base + in_off[t] + ...] * w[w_off[t] + ...].
# Each list is the product of a height list and a width list of
# (input offset, weight offset) pairs, height outer: _taps() builds it, once
# per call for the forward and dx (a row takes a contiguous piece: its kernel
# rows inside the input); dw's lists (output rows x one column) are written
# directly by _dw_taps. The per-axis lists come from three rules; only they
# (and _axis_range, _interior) know the geometry (stride, padding, dilation)
# of an axis:
#   _axis_forward: the taps k of output o whose input o*s - p + k*d is inside
#                  the input (forward: every tap, and each edge column's);
#   _axis_gather:  the taps k and outputs o whose window covers input i,
#                  o*s - p + k*d = i (dx, gather form);
#   _axis_phase:   as _axis_gather for every input i = r + j*s of one stride
#                  phase r, relative to j (dx interior tiles).

cdef inline ptrdiff_t _floor_div(ptrdiff_t a, ptrdiff_t b) noexcept nogil:
    # floor(a / b) for b > 0 (the module divides with C semantics, cdivision).
    return a // b if a >= 0 else -((-a + b - 1) // b)


cdef inline ptrdiff_t _ceil_div(ptrdiff_t a, ptrdiff_t b) noexcept nogil:
    return -_floor_div(-a, b)


cdef inline ptrdiff_t _first_out(ptrdiff_t p, ptrdiff_t k, ptrdiff_t s) noexcept nogil:
    # Smallest o >= 0 with o * s - p + k >= 0 (k: a tap's offset k * d).
    return 0 if p - k <= 0 else (p - k + s - 1) // s


cdef inline ptrdiff_t _end_out(ptrdiff_t p, ptrdiff_t k, ptrdiff_t s, ptrdiff_t n,
                               ptrdiff_t n_out) noexcept nogil:
    # One past the largest o < n_out with o * s - p + k <= n - 1.
    cdef ptrdiff_t t = n - 1 + p - k
    if t < 0:
        return 0
    t = t // s + 1
    return t if t < n_out else n_out


cdef inline void _interior(ptrdiff_t p, ptrdiff_t f, ptrdiff_t d, ptrdiff_t s, ptrdiff_t n,
                           ptrdiff_t n_out, ptrdiff_t *o_a, ptrdiff_t *o_b) noexcept nogil:
    # [o_a, o_b): the outputs whose whole window lies inside the input
    # (empty, with o_a == o_b, when the kernel is wider than the image).
    o_a[0] = _first_out(p, 0, s)
    o_b[0] = _end_out(p, (f - 1) * d, s, n, n_out)
    if o_a[0] > n_out:
        o_a[0] = n_out
    if o_b[0] < o_a[0]:
        o_b[0] = o_a[0]


cdef inline ptrdiff_t _axis_range(ptrdiff_t o, ptrdiff_t s, ptrdiff_t p, ptrdiff_t d,
                                  ptrdiff_t n, ptrdiff_t f, ptrdiff_t *k0) noexcept nogil:
    # The taps k0 .. k0 + count - 1 of output o whose input o*s - p + k*d is inside [0, n).
    cdef ptrdiff_t k1, pos = o * s - p
    if d == 1:               # no division in the common case
        k0[0] = -pos if pos < 0 else 0
        k1 = n - pos
    else:
        k0[0] = _ceil_div(-pos, d) if pos < 0 else 0
        k1 = _ceil_div(n - pos, d) if n > pos else 0
    if k1 > f:
        k1 = f
    return k1 - k0[0] if k1 > k0[0] else 0


cdef inline ptrdiff_t _axis_forward(ptrdiff_t o, ptrdiff_t s, ptrdiff_t p, ptrdiff_t d,
                                    ptrdiff_t n, ptrdiff_t f, ptrdiff_t in_stride,
                                    ptrdiff_t w_stride, ptrdiff_t *in_off,
                                    ptrdiff_t *w_off) noexcept nogil:
    # Taps k of output o inside the input: (input position * in_stride, k * w_stride).
    cdef ptrdiff_t k, k0, count = _axis_range(o, s, p, d, n, f, &k0)
    for k in range(count):
        in_off[k] = (o * s - p + (k0 + k) * d) * in_stride
        w_off[k] = (k0 + k) * w_stride
    return count


cdef inline ptrdiff_t _axis_gather(ptrdiff_t i, ptrdiff_t s, ptrdiff_t p, ptrdiff_t d,
                                   ptrdiff_t n_out, ptrdiff_t f, ptrdiff_t in_stride,
                                   ptrdiff_t w_stride, ptrdiff_t *in_off,
                                   ptrdiff_t *w_off) noexcept nogil:
    # Taps k, by increasing k, of the outputs o covering input i (o * s - p + k * d = i,
    # 0 <= o < n_out): (o * in_stride, k * w_stride). t = i + p - k * d and its
    # remainder mod s are stepped along k (one division per call, one per tap found).
    cdef ptrdiff_t k, t = i + p, rem = (i + p) % s, d_mod = d % s, n = 0
    for k in range(f):
        if t < 0:
            break
        if rem == 0 and t // s < n_out:
            in_off[n] = (t // s) * in_stride
            w_off[n] = k * w_stride
            n += 1
        t -= d
        rem -= d_mod
        if rem < 0:
            rem += s
    return n


cdef inline ptrdiff_t _axis_phase(ptrdiff_t r, ptrdiff_t s, ptrdiff_t p, ptrdiff_t d,
                                  ptrdiff_t f, ptrdiff_t in_stride, ptrdiff_t w_stride,
                                  ptrdiff_t *q, ptrdiff_t *in_off,
                                  ptrdiff_t *w_off) noexcept nogil:
    # The taps k of the inputs r + j * s (one stride phase): output o = q + j
    # with q = (r + p - k * d) / s, whatever j; q[] is kept for the range of j.
    # As _axis_gather, t and its remainder are stepped along k.
    cdef ptrdiff_t k, t = r + p, rem = (r + p) % s, d_mod = d % s, n = 0
    for k in range(f):
        if rem == 0:             # exact: t / s is q, also for t < 0
            q[n] = t // s
            in_off[n] = q[n] * in_stride
            w_off[n] = k * w_stride
            n += 1
        t -= d
        rem -= d_mod
        if rem < 0:
            rem += s
    return n


cdef inline ptrdiff_t _taps(const ptrdiff_t *h_in, const ptrdiff_t *h_w, ptrdiff_t n_h,
                            const ptrdiff_t *v_in, const ptrdiff_t *v_w, ptrdiff_t n_v,
                            ptrdiff_t *in_off, ptrdiff_t *w_off) noexcept nogil:
    # The product of a height list and a width list, height outer.
    cdef ptrdiff_t a, b, nt = 0
    for a in range(n_h):
        for b in range(n_v):
            in_off[nt] = h_in[a] + v_in[b]
            w_off[nt] = h_w[a] + v_w[b]
            nt += 1
    return nt


cdef struct Scratch:
    # One thread's tap lists: every tap of a window relative to its corner
    # (all_in, all_w: the forward's, built once per call), a dw tile's
    # (in_off, w_off), a dx edge column's (e_in, e_w), and the axis lists they
    # are built from.
    ptrdiff_t *all_in
    ptrdiff_t *all_w
    ptrdiff_t *in_off
    ptrdiff_t *w_off
    ptrdiff_t *e_in
    ptrdiff_t *e_w
    ptrdiff_t *h_in
    ptrdiff_t *h_w
    ptrdiff_t *v_in
    ptrdiff_t *v_w
    ptrdiff_t *q


cdef inline Py_ssize_t _scratch_size(Py_ssize_t taps, Py_ssize_t h, Py_ssize_t v) noexcept nogil:
    return 6 * taps + 2 * h + 3 * v


cdef inline Scratch _scratch(ptrdiff_t *base, Py_ssize_t taps, Py_ssize_t h,
                             Py_ssize_t v) noexcept nogil:
    # Carve one thread's share of _scratch_size(taps, h, v) entries.
    cdef Scratch sc
    sc.all_in = base
    sc.all_w = base + taps
    sc.in_off = base + 2 * taps
    sc.w_off = base + 3 * taps
    sc.e_in = base + 4 * taps
    sc.e_w = base + 5 * taps
    sc.h_in = base + 6 * taps
    sc.h_w = sc.h_in + h
    sc.v_in = sc.h_w + h
    sc.v_w = sc.v_in + v
    sc.q = sc.v_w + v
    return sc


# --------------------------------------------------------------------------
# 3. The drivers
# --------------------------------------------------------------------------

cdef inline void _tile(int P, int NV, const floating *inp, ptrdiff_t base,
                       ptrdiff_t in_ps, ptrdiff_t in_ks,
                       const floating *w, ptrdiff_t w_ks,
                       const ptrdiff_t *in_off, const ptrdiff_t *w_off,
                       ptrdiff_t ntaps, ptrdiff_t K, floating *out, ptrdiff_t out_ps,
                       int nch, cyc_epilogue epi) noexcept nogil:
    if floating is float:
        cyc_tile_f32(P, NV, inp, base, in_ps, in_ks, w, w_ks, in_off, w_off,
                     ntaps, K, out, out_ps, nch, epi)
    else:
        cyc_tile_f64(P, NV, inp, base, in_ps, in_ks, w, w_ks, in_off, w_off,
                     ntaps, K, out, out_ps, nch, epi)


cdef inline void _dx_tile(bint dot, int P, int nv, const floating *dz,
                          ptrdiff_t base, ptrdiff_t in_ps, const floating *wblk, ptrdiff_t nb,
                          const ptrdiff_t *in_off, const ptrdiff_t *w_off, ptrdiff_t nt,
                          ptrdiff_t c_out, ptrdiff_t w_cs, floating *out, ptrdiff_t out_ps,
                          int nch) noexcept nogil:
    # One dx tile: the dot-product form (float32 only: w read in place, nch
    # input channels) or the register tile (packed w, a block of nb input
    # channels). cyconv/_dispatch.py sets `dot` for float32 layers only.
    # c_out: the products per tap (one group's output channels); w_cs: w's
    # stride between input channels (the dot form's rows).
    if floating is float:
        if dot:
            cyc_dot_f32(P, nch, dz, base, in_ps, wblk, w_cs, in_off, w_off, nt,
                        c_out, out, out_ps)
            return
    _tile(P, nv, dz, base, in_ps, 1, wblk, nb, in_off, w_off, nt, c_out,
          out, out_ps, nch, _epilogue(NULL, False, CYC_ACT_NONE))


cdef int _tile_vectors(Py_ssize_t itemsize, Py_ssize_t channels) noexcept:
    # Vectors per tile pixel: one if a single vector holds every channel.
    return 1 if channels <= cyc_lanes(<int> itemsize) else 2


cdef int _threads_for(int num_threads, double fmas) noexcept:
    # Below the table's threshold waking a second thread costs more than it
    # saves. Results never depend on the thread count, only the speed does.
    return 1 if fmas < MIN_PARALLEL_FMAS else num_threads


cdef void _pack_blocks(const floating *src, ptrdiff_t n_outer, ptrdiff_t c, ptrdiff_t ld,
                       ptrdiff_t nb, floating *dst) noexcept nogil:
    # src (n_outer, c), rows ld apart -> dst (ceil(c / nb), n_outer, nb), zero-padded.
    cdef ptrdiff_t cb, o, j, n_cb = (c + nb - 1) // nb
    for cb in range(n_cb):
        for o in range(n_outer):
            for j in range(nb):
                dst[(cb * n_outer + o) * nb + j] = (
                    src[o * ld + cb * nb + j] if cb * nb + j < c else 0)


cdef void _pack_blocks_t(const floating *w, ptrdiff_t taps, ptrdiff_t c_in, ptrdiff_t c_out,
                         ptrdiff_t ld, ptrdiff_t nb, floating *dst) noexcept nogil:
    # w (taps, c_in, c_out), rows ld apart -> dst (ceil(c_in / nb), taps, c_out, nb),
    # zero-padded: blocks of input channels with the sum over output channels inside.
    cdef ptrdiff_t cb, t, co, j, ci, n_cb = (c_in + nb - 1) // nb
    for cb in range(n_cb):
        for t in range(taps):
            for co in range(c_out):
                for j in range(nb):
                    ci = cb * nb + j
                    dst[((cb * taps + t) * c_out + co) * nb + j] = (
                        w[(t * c_in + ci) * ld + co] if ci < c_in else 0)


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


# ---- forward ----------------------------------------------------------------

cdef inline ptrdiff_t _kw_entries(const cyc_conv_params *p, ptrdiff_t n_kw) noexcept nogil:
    # Entries per kernel row in a forward tap list of n_kw consecutive kw.
    # Undilated, with every channel of x in the reduction (K == x's pixel
    # stride), the window's kw taps of a kernel row are one run of n_kw * K
    # values in x and in the packed w: one entry whose reduction is n_kw * K
    # long (the tap loop of a 3-channel layer ran 3 products per tap).
    # Same products in the same order (kw outer, channel inner).
    if p.d_w == 1 and p.x_ps == p.K and n_kw > 0:
        return 1
    return n_kw


cdef void _forward_all_taps(const cyc_conv_params *p, Scratch sc, ptrdiff_t nb,
                            ptrdiff_t *edges, ptrdiff_t ow_a, ptrdiff_t ow_b) noexcept nogil:
    # The tap lists of a call, kernel rows outer, relative to the top of a
    # window (see _forward_row): every tap (sc.all_in/all_w: the interior
    # columns', relative to the window's left column too), and for each edge
    # column e (the columns before ow_a, then from ow_b) its own taps at
    # edges[E + e * n_taps], edges[E + (E + e) * n_taps], its count of kw in edges[e].
    cdef ptrdiff_t w_kw = p.K * nb, n_kh, n_kw, e, ow, n_taps = p.f_h * p.f_w
    cdef ptrdiff_t n_e = ow_a + p.o_w - ow_b
    n_kh = _axis_forward(0, 1, 0, p.d_h, (p.f_h - 1) * p.d_h + 1, p.f_h, p.x_rs,
                         p.f_w * w_kw, sc.h_in, sc.h_w)
    n_kw = _axis_forward(0, 1, 0, p.d_w, (p.f_w - 1) * p.d_w + 1, p.f_w, p.x_ps, w_kw,
                         sc.v_in, sc.v_w)
    _taps(sc.h_in, sc.h_w, n_kh, sc.v_in, sc.v_w, _kw_entries(p, n_kw), sc.all_in, sc.all_w)
    for e in range(n_e):
        ow = e if e < ow_a else ow_b + e - ow_a
        edges[e] = _axis_forward(ow, p.s_w, p.p_l, p.d_w, p.n_w, p.f_w, p.x_ps, w_kw,
                                 sc.v_in, sc.v_w)
        _taps(sc.h_in, sc.h_w, n_kh, sc.v_in, sc.v_w, _kw_entries(p, edges[e]),
              edges + n_e + e * n_taps, edges + n_e + (n_e + e) * n_taps)


cdef inline int _split(ptrdiff_t n, int mr) noexcept nogil:
    # Pixels of the next tile when n remain: as many tiles as tiles of mr
    # need, of even length (14 at mr = 6: 5, 5, 4, not 6, 6, 2), since a tile
    # of few pixels has too few accumulators to hide the FMA latency.
    cdef ptrdiff_t tiles = (n + mr - 1) // mr
    return <int>((n + tiles - 1) // tiles)


cdef void _forward_row(const cyc_conv_params *p, const floating *x, const floating *wpack,
                       floating *z, Scratch sc, ptrdiff_t oh, int nv,
                       ptrdiff_t nb) noexcept nogil:
    # x: one image; z: one output row (o_w, c_out); wpack: the filters as
    # (n_cb, f_h, f_w, K, nb) and the bias as (n_cb, nb) at p.epi.bias.
    # The columns whose window lies inside the input share one tap list and
    # run in tiles of P pixels: the call's list of every tap (sc.all_in/all_w,
    # kernel rows outer), of which a row's kernel rows inside x are one
    # contiguous piece; no per-row building. The edge columns are the
    # caller's (_forward_block).
    # With groups, the row runs once per group g: x's channels from g * K,
    # z's and the packed filters' and bias's blocks from g * C (C = c_out / groups).
    cdef ptrdiff_t ow_a, ow_b, ow, nt, n_kh, k0, cb, g, kwe
    cdef ptrdiff_t c_grp = _group_out(p), n_cb = (c_grp + nb - 1) // nb
    cdef ptrdiff_t w_kw = p.K * nb, w_kh = p.f_w * w_kw, w_blk = p.f_h * w_kh
    cdef ptrdiff_t base = (oh * p.s_h - p.p_t) * p.x_rs - p.p_l * p.x_ps
    cdef const floating *bpack = <const floating *> p.epi.bias
    cdef int mr = cyc_max_pixels(nv), P, nch
    _interior(p.p_l, p.f_w, p.d_w, p.s_w, p.n_w, p.o_w, &ow_a, &ow_b)
    n_kh = _axis_range(oh, p.s_h, p.p_t, p.d_h, p.n_h, p.f_h, &k0)
    kwe = _kw_entries(p, p.f_w)
    nt = n_kh * kwe
    for g in range(p.groups):
        for cb in range(n_cb):
            nch = <int>(c_grp - cb * nb if c_grp - cb * nb < nb else nb)
            ow = ow_a
            while ow < ow_b:
                P = _split(ow_b - ow, mr)
                _tile(P, nv, x, base + ow * p.s_w * p.x_ps, p.s_w * p.x_ps, 1, wpack + cb * w_blk,
                      nb, sc.all_in + k0 * kwe, sc.all_w + k0 * kwe, nt, p.K * p.f_w // kwe,
                      z + ow * p.z_ps + cb * nb, p.z_ps, nch,
                      _epilogue(bpack + cb * nb, False, p.epi.activation))
                ow += P
        x += p.K
        z += c_grp
        wpack += n_cb * w_blk
        bpack += n_cb * nb


cdef void _forward_block(const cyc_conv_params *p, const floating *x, const floating *wpack,
                         floating *z, Scratch sc, const ptrdiff_t *edges, ptrdiff_t oh0,
                         ptrdiff_t oh1, int nv, ptrdiff_t nb) noexcept nogil:
    # Output rows oh0 .. oh1 - 1 of one image (x, z: the image's): each row's
    # interior (_forward_row), then the edge columns, whose windows cross the
    # padding, each with its own list (from edges), of which a row's kernel
    # rows inside x are one contiguous piece. An edge column's pixel alone is
    # a tile of one pixel, whose few accumulators wait on the FMA latency (a
    # 16-pixel-wide layer spent a quarter of its time there); so in the rows
    # whose kernel rows all lie inside x (one list per edge column), the edge
    # column runs down the rows as the pixels of a tile. Every pixel sums the
    # same taps in the same order as alone: the result does not depend on
    # the blocking.
    # (With groups: group g at x's channel g * K, z's g * C, its own packed blocks.)
    cdef ptrdiff_t oh, oh_a, oh_b, ow_a, ow_b, ow, e, n_e, cb, kwe, g, k0, n_kh
    cdef ptrdiff_t n_taps = p.f_h * p.f_w
    cdef ptrdiff_t c_grp = _group_out(p), n_cb = (c_grp + nb - 1) // nb
    cdef ptrdiff_t w_blk = n_taps * p.K * nb
    cdef const floating *bpack = <const floating *> p.epi.bias
    cdef int mr = cyc_max_pixels(nv), P, nch
    _interior(p.p_t, p.f_h, p.d_h, p.s_h, p.n_h, p.o_h, &oh_a, &oh_b)
    _interior(p.p_l, p.f_w, p.d_w, p.s_w, p.n_w, p.o_w, &ow_a, &ow_b)
    if oh_a < oh0:
        oh_a = oh0
    if oh_b > oh1:
        oh_b = oh1
    for oh in range(oh0, oh1):
        _forward_row(p, x, wpack, z + oh * p.z_rs, sc, oh, nv, nb)
    n_e = ow_a + p.o_w - ow_b
    if n_e == 0:
        return
    for g in range(p.groups):
        for cb in range(n_cb):
            nch = <int>(c_grp - cb * nb if c_grp - cb * nb < nb else nb)
            for e in range(n_e):
                ow = e if e < ow_a else ow_b + e - ow_a
                kwe = _kw_entries(p, edges[e])
                oh = oh0
                while oh < oh1:
                    if oh_a <= oh < oh_b:   # full kernel rows: a tile down the rows
                        P = _split(oh_b - oh, mr)
                        k0, n_kh = 0, p.f_h
                    else:
                        P = 1
                        n_kh = _axis_range(oh, p.s_h, p.p_t, p.d_h, p.n_h, p.f_h, &k0)
                    _tile(P, nv, x, (oh * p.s_h - p.p_t) * p.x_rs, p.s_h * p.x_rs, 1,
                          wpack + cb * w_blk, nb, edges + n_e + e * n_taps + k0 * kwe,
                          edges + n_e + (n_e + e) * n_taps + k0 * kwe, n_kh * kwe,
                          p.K * edges[e] // kwe if kwe else p.K,
                          z + oh * p.z_rs + ow * p.z_ps + cb * nb, p.z_rs, nch,
                          _epilogue(bpack + cb * nb, False, p.epi.activation))
                    oh += P
        x += p.K
        z += c_grp
        wpack += n_cb * w_blk
        bpack += n_cb * nb


def conv2d_forward(const floating[:, :, :, ::1] x,     # IN  (m, n_h, n_w, c_in)
                   const floating[:, :, :, ::1] w,     # IN  (f_h, f_w, c_in, c_out)
                   const floating[::1] b,              # IN  (c_out,)
                   floating[:, :, :, ::1] z,           # OUT (m, o_h, o_w, c_out)
                   Py_ssize_t s_h, Py_ssize_t s_w,
                   Py_ssize_t p_t, Py_ssize_t p_l, Py_ssize_t d_h, Py_ssize_t d_w,
                   Py_ssize_t groups, bint relu, int num_threads):
    """z = conv(x, w) + b (then max(z, 0) if ``relu``), parallel over batch x output rows.

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
    d_h, d_w : int
        Dilation (>= 1).
    groups : int
        Channel groups (dividing c_in and c_out; w is (f_h, f_w, c_in / groups, c_out)).
    relu : bool
        Apply ``v <= 0 ? 0 : v`` in the tile's store (the epilogue), so the
        activation costs no pass of its own.
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef cyc_conv_params p = _params(x, z, w, s_h, s_w, p_t, p_l, d_h, d_w, groups)
    cdef Py_ssize_t blk, i, oh, g, rows, n_blk, n_taps = p.f_h * p.f_w
    cdef Scratch sc
    cdef Py_ssize_t c_grp = _group_out(&p)
    cdef int nv = _tile_vectors(sizeof(floating), c_grp)
    cdef Py_ssize_t nb = nv * cyc_lanes(sizeof(floating))
    cdef Py_ssize_t n_cb = (c_grp + nb - 1) // nb
    cdef Py_ssize_t w_grp = n_cb * n_taps * p.K * nb    # one group's packed filters
    cdef int n_threads = _threads_for(num_threads, <double> z.size * n_taps * p.K)
    cdef Py_ssize_t per_thread
    cdef ptrdiff_t ow_a, ow_b, n_e
    cdef ptrdiff_t *edges
    # Scratch: filters (groups, n_cb, f_h, f_w, K, nb) and bias (groups, n_cb,
    # nb) in zero-padded channel blocks; per thread, the tap lists of a row.
    cdef floating *wpack = <floating *> _alloc((p.groups * (w_grp + n_cb * nb))
                                               * sizeof(floating))
    cdef floating *bpack = wpack + p.groups * w_grp
    cdef ptrdiff_t *taps = NULL
    # Narrow images (kernel wide next to the image) would run mostly edge
    # columns, one pixel per tile: there x is copied with its left and right
    # zero padding, and every column is a full tile. Skipped when w holds a
    # non-finite value (inf * 0 would turn the sum into NaN).
    cdef floating *xpad = NULL
    cdef const floating *xs = &x[0, 0, 0, 0]
    cdef Py_ssize_t extent = (p.f_w - 1) * p.d_w + 1
    cdef Py_ssize_t R = (p.o_w - 1) * p.s_w - p.p_l + extent - p.n_w     # zero columns after
    if R < 0:
        R = 0
    if ((extent - 1) * 8 > p.n_w and (p.p_l > 0 or R > 0) and p.p_l <= extent
            and R <= extent and _all_finite(&w[0, 0, 0, 0], n_taps * p.K * p.c_out)):
        xs = xpad = _padded_columns(xs, p.m * p.n_h, p.n_w, p.c_in, p.p_l, R)
        p.n_w = p.n_w + p.p_l + R
        p.p_l = 0
        p.x_rs = p.n_w * p.x_ps
        p.x_is = p.n_h * p.x_rs
    p.epi.bias = bpack
    p.epi.activation = CYC_ACT_RELU if relu else CYC_ACT_NONE
    # per thread: the tap lists of _scratch, then the edge columns' (_forward_all_taps)
    _interior(p.p_l, p.f_w, p.d_w, p.s_w, p.n_w, p.o_w, &ow_a, &ow_b)
    n_e = ow_a + p.o_w - ow_b
    per_thread = _scratch_size(n_taps, p.f_h, p.f_w) + n_e * (1 + 2 * n_taps)
    # Blocks of output rows (their edge columns run as tiles down the rows):
    # a tile's worth, fewer when that would leave threads under 4 blocks each.
    rows = min(cyc_max_pixels(nv), max(1, p.m * p.o_h // (4 * n_threads)))
    n_blk = (p.o_h + rows - 1) // rows
    try:
        taps = <ptrdiff_t *> _alloc(n_threads * per_thread * sizeof(ptrdiff_t))
        with nogil:
            for g in range(p.groups):
                _pack_blocks(&w[0, 0, 0, 0] + g * c_grp, n_taps * p.K, c_grp, p.c_out, nb,
                             wpack + g * w_grp)
                _pack_blocks(&b[0] + g * c_grp, 1, c_grp, c_grp, nb, bpack + g * n_cb * nb)
            with parallel(num_threads=n_threads):
                sc = _scratch(taps + threadid() * per_thread, n_taps, p.f_h, p.f_w)
                edges = taps + threadid() * per_thread + _scratch_size(n_taps, p.f_h, p.f_w)
                _forward_all_taps(&p, sc, nb, edges, ow_a, ow_b)
                for blk in prange(p.m * n_blk, schedule="static"):
                    i = blk // n_blk
                    oh = blk % n_blk * rows
                    _forward_block(&p, xs + i * p.x_is, wpack, &z[i, 0, 0, 0], sc, edges, oh,
                                   oh + rows if oh + rows < p.o_h else p.o_h, nv, nb)
    finally:
        PyMem_Free(taps)
        PyMem_Free(wpack)
        PyMem_Free(xpad)


# ---- dx ---------------------------------------------------------------------

cdef void _dx_row(const cyc_conv_params *p, const floating *dz, const floating *wpack,
                  floating *dx, Scratch sc, const ptrdiff_t *hp, ptrdiff_t ih, int nv,
                  ptrdiff_t nb, bint dot) noexcept nogil:
    # dz: one image's gradient (o_h, o_w, c_out); dx: one input row (n_w, c_in).
    # wpack: the packed filters for the register tile, or w itself (HWIO) for
    # the dot form, whose blocks are nb input channels of w.
    # Gather form (each dx element is written by one thread, no atomics):
    # dx[ih, iw] sums dz[oh, ow] . w[kh, kw] over oh * s_h - p_t + kh = ih and
    # ow * s_w - p_l + kw = iw. The columns iw = r, r + s_w, r + 2 s_w, ...
    # of one phase r share their kw taps, and consecutive ones read
    # consecutive dz columns, so they form the tile's pixels.
    # The interior tap lists were built once per call (_dx_phases): for the
    # height phase g of this row and each width phase r, every (kh, kw) of
    # the phases, of which the kh whose dz row is inside dz are a contiguous
    # piece. sc.q holds each width phase's (taps, j_a, j_b); hp the height
    # phases (see _dx_phases). The edge columns are the caller's (_dx_block).
    # With groups, the row runs once per group: dx's channels from grp * K,
    # dz's (and w's last axis) from grp * C, C = c_out / groups the products
    # per tap; the dot form's w rows are p.w_cs apart, its taps p.w_ts.
    cdef ptrdiff_t r, j, j_a, j_b, n_kw, nt, cb, t0, t1, grp
    cdef ptrdiff_t n_r = p.s_w if p.s_w < p.n_w else p.n_w
    cdef ptrdiff_t n_taps = p.f_h * p.f_w
    cdef ptrdiff_t c_grp = _group_out(p), n_cb = (p.K + nb - 1) // nb
    cdef ptrdiff_t w_blk = nb * p.w_cs if dot else p.f_h * p.f_w * c_grp * nb
    cdef ptrdiff_t g = (ih + p.p_t) % p.s_h, q0 = (ih + p.p_t - g) // p.s_h, gi = ih % p.s_h
    cdef ptrdiff_t n_g = p.s_h if p.s_h < p.n_h else p.n_h
    cdef const ptrdiff_t *delta = hp + 1 + n_g + gi * p.f_h
    cdef const ptrdiff_t *prod_in
    cdef const ptrdiff_t *prod_w
    cdef int mr = DOT_MP if dot else cyc_max_pixels(nv), P, nch
    # The row's kernel rows: oh = q0 - delta[t] inside [0, o_h), delta ascending.
    t0 = 0
    t1 = hp[1 + gi]
    while t0 < t1 and delta[t0] <= q0 - p.o_h:
        t0 += 1
    while t1 > t0 and delta[t1 - 1] > q0:
        t1 -= 1
    for grp in range(p.groups):
        for r in range(n_r):
            n_kw, j_a, j_b = sc.q[3 * r], sc.q[3 * r + 1], sc.q[3 * r + 2]
            prod_in = hp + 1 + n_g + n_g * p.f_h + (gi * n_r + r) * n_taps + t0 * n_kw
            prod_w = prod_in + n_g * n_r * n_taps
            nt = (t1 - t0) * n_kw
            for cb in range(n_cb):
                nch = <int>(p.K - cb * nb if p.K - cb * nb < nb else nb)
                j = j_a
                while j < j_b:
                    P = _split(j_b - j, mr)
                    _dx_tile(dot, P, nv, dz, q0 * p.z_rs + j * p.z_ps, p.z_ps,
                             wpack + cb * w_blk, nb, prod_in, prod_w, nt, c_grp, p.w_cs,
                             dx + (r + j * p.s_w) * p.x_ps + cb * nb, p.s_w * p.x_ps, nch)
                    j += P
        dz += c_grp
        dx += p.K
        wpack += c_grp if dot else n_cb * w_blk


cdef inline bint _dx_full(const cyc_conv_params *p, const ptrdiff_t *hp,
                          ptrdiff_t ih) noexcept nogil:
    # Whether every kernel row of input row ih's phase reads a dz row inside dz.
    cdef ptrdiff_t gi = ih % p.s_h, g = (ih + p.p_t) % p.s_h, q0 = (ih + p.p_t - g) // p.s_h
    cdef ptrdiff_t n_g = p.s_h if p.s_h < p.n_h else p.n_h, n = hp[1 + gi]
    cdef const ptrdiff_t *delta = hp + 1 + n_g + gi * p.f_h
    return n == 0 or (delta[0] > q0 - p.o_h and delta[n - 1] <= q0)


cdef void _dx_block(const cyc_conv_params *p, const floating *dz, const floating *wpack,
                    floating *dx, Scratch sc, const ptrdiff_t *hp, ptrdiff_t ih0, ptrdiff_t ih1,
                    int nv, ptrdiff_t nb, bint dot) noexcept nogil:
    # Input rows ih0 .. ih1 - 1 of one image (dz, dx: the image's): each row's
    # interior tiles (_dx_row), then the edge columns (some taps outside dz),
    # each with its own list: the row's height taps times the column's. As in
    # _forward_block, an edge column's pixel alone is a one-pixel tile; in
    # rows of one stride phase whose kernel rows all read dz rows inside dz,
    # an edge column's list is the same up to a shift of one dz row per
    # s_h input rows, so the column runs down those rows as a tile's pixels
    # (the same taps in the same order as alone); other rows run alone.
    # (With groups, as _dx_row: each group at its channel offsets.)
    cdef ptrdiff_t ih, k, n_run, row, r, j, j_a, j_b, n_j, n_kh, n_kw, ne, iw, cb, grp
    cdef ptrdiff_t n_r = p.s_w if p.s_w < p.n_w else p.n_w
    cdef ptrdiff_t c_grp = _group_out(p), n_cb = (p.K + nb - 1) // nb
    cdef ptrdiff_t w_blk = nb * p.w_cs if dot else p.f_h * p.f_w * c_grp * nb
    cdef ptrdiff_t w_tap = p.w_ts if dot else c_grp * nb
    cdef ptrdiff_t *ev_in = sc.v_in + n_r * p.f_w
    cdef ptrdiff_t *ev_w = sc.v_w + n_r * p.f_w
    cdef int mr = DOT_MP if dot else cyc_max_pixels(nv), P, nch
    for ih in range(ih0, ih1):
        _dx_row(p, dz, wpack, dx + ih * p.x_rs, sc, hp, ih, nv, nb, dot)
    if not hp[0]:
        return
    for ih in range(ih0, ih0 + p.s_h if ih0 + p.s_h < ih1 else ih1):   # each phase's first row
        k = ih
        while k < ih1:
            n_run = 1           # row k alone, or the full rows k, k + s_h, ... of its phase
            if _dx_full(p, hp, k):
                while k + n_run * p.s_h < ih1 and _dx_full(p, hp, k + n_run * p.s_h):
                    n_run += 1
            n_kh = _axis_gather(k, p.s_h, p.p_t, p.d_h, p.o_h, p.f_h, p.z_rs, p.f_w * w_tap,
                                sc.h_in, sc.h_w)
            for r in range(n_r):
                n_j = (p.n_w - r + p.s_w - 1) // p.s_w
                j_a, j_b = sc.q[3 * r + 1], sc.q[3 * r + 2]
                for j in range(n_j):
                    if j_a <= j < j_b:
                        continue
                    iw = r + j * p.s_w
                    n_kw = _axis_gather(iw, p.s_w, p.p_l, p.d_w, p.o_w, p.f_w, p.z_ps, w_tap,
                                        ev_in, ev_w)
                    ne = _taps(sc.h_in, sc.h_w, n_kh, ev_in, ev_w, n_kw, sc.e_in, sc.e_w)
                    for grp in range(p.groups):
                        for cb in range(n_cb):
                            nch = <int>(p.K - cb * nb if p.K - cb * nb < nb else nb)
                            row = 0
                            while row < n_run:
                                P = _split(n_run - row, mr)
                                _dx_tile(dot, P, nv, dz + grp * c_grp, row * p.z_rs, p.z_rs,
                                         wpack + grp * (c_grp if dot else n_cb * w_blk)
                                         + cb * w_blk, nb, sc.e_in, sc.e_w, ne, c_grp, p.w_cs,
                                         dx + (k + row * p.s_h) * p.x_rs + iw * p.x_ps
                                         + grp * p.K + cb * nb, p.s_h * p.x_rs, nch)
                                row += P
            k += n_run * p.s_h


cdef inline Py_ssize_t _dx_phases_size(const cyc_conv_params *p) noexcept nogil:
    # Row phases: ih % s_h takes min(s_h, n_h) values, column phases min(s_w, n_w).
    cdef ptrdiff_t n_r = p.s_w if p.s_w < p.n_w else p.n_w
    cdef ptrdiff_t n_g = p.s_h if p.s_h < p.n_h else p.n_h
    return 1 + n_g + n_g * p.f_h + 2 * n_g * n_r * p.f_h * p.f_w


cdef inline void _phase_interior(const cyc_conv_params *p, ptrdiff_t r, const ptrdiff_t *q,
                                 ptrdiff_t n_kw, ptrdiff_t *j_a, ptrdiff_t *j_b) noexcept nogil:
    # Of the input columns r + j * s_w (j < n_j) of width phase r, whose n_kw
    # taps read dz columns j + q[t] (q from _axis_phase): [j_a, j_b), those
    # all of whose taps lie inside dz (j_a == j_b when none do).
    cdef ptrdiff_t t, n_j = (p.n_w - r + p.s_w - 1) // p.s_w
    j_a[0] = 0
    j_b[0] = n_j
    for t in range(n_kw):
        if -q[t] > j_a[0]:
            j_a[0] = -q[t]
        if p.o_w - q[t] < j_b[0]:
            j_b[0] = p.o_w - q[t]
    if j_a[0] > n_j:
        j_a[0] = n_j
    if j_b[0] < j_a[0]:
        j_b[0] = j_a[0]


cdef void _dx_phases(const cyc_conv_params *p, Scratch sc, ptrdiff_t *hp,
                     ptrdiff_t w_tap) noexcept nogil:
    # The tap lists of a call, the same for every row. Per stride phase r of
    # the input columns: its width list (sc.v_in/v_w + r * f_w, relative to
    # the tile's first dz column) and, in sc.q[3r .. 3r + 2], its tap count
    # and the columns [j_a, j_b) all of whose taps are inside dz. Per phase
    # gi = ih % s_h of the input rows (g = (ih + p_t) % s_h): the kh with
    # kh * d_h = g (mod s_h), whose dz row is q0 - delta for
    # q0 = (ih + p_t - g) / s_h, and the product of that height list with each
    # width list. hp: [any edge column?, count per gi, delta per gi (f_h
    # apart), products' input offsets ((gi * n_r + r) * f_h * f_w apart),
    # their weight offsets].
    cdef ptrdiff_t r, j_a, j_b, n_j, n_kw, g, gi, kh, n_k
    cdef ptrdiff_t n_r = p.s_w if p.s_w < p.n_w else p.n_w
    cdef ptrdiff_t n_g = p.s_h if p.s_h < p.n_h else p.n_h
    cdef ptrdiff_t n_taps = p.f_h * p.f_w
    cdef ptrdiff_t *delta
    cdef ptrdiff_t *prod_in = hp + 1 + n_g + n_g * p.f_h
    cdef ptrdiff_t *prod_w = prod_in + n_g * n_r * n_taps
    hp[0] = 0
    cdef ptrdiff_t *q = sc.q + 3 * n_r          # scratch for one phase's q values
    for r in range(n_r):
        n_j = (p.n_w - r + p.s_w - 1) // p.s_w
        n_kw = _axis_phase(r, p.s_w, p.p_l, p.d_w, p.f_w, p.z_ps, w_tap, q,
                           sc.v_in + r * p.f_w, sc.v_w + r * p.f_w)
        _phase_interior(p, r, q, n_kw, &j_a, &j_b)
        sc.q[3 * r], sc.q[3 * r + 1], sc.q[3 * r + 2] = n_kw, j_a, j_b
        if j_a > 0 or j_b < n_j:
            hp[0] = 1
    for gi in range(n_g):
        g = (gi + p.p_t) % p.s_h
        delta = hp + 1 + n_g + gi * p.f_h
        n_k = 0
        for kh in range(p.f_h):
            if (kh * p.d_h - g) % p.s_h == 0:
                delta[n_k] = (kh * p.d_h - g) // p.s_h
                sc.h_in[n_k] = -delta[n_k] * p.z_rs
                sc.h_w[n_k] = kh * p.f_w * w_tap
                n_k += 1
        hp[1 + gi] = n_k
        for r in range(n_r):
            _taps(sc.h_in, sc.h_w, n_k, sc.v_in + r * p.f_w, sc.v_w + r * p.f_w, sc.q[3 * r],
                  prod_in + (gi * n_r + r) * n_taps, prod_w + (gi * n_r + r) * n_taps)


def conv2d_backward_dx(const floating[:, :, :, ::1] dz,   # IN  (m, o_h, o_w, c_out)
                       const floating[:, :, :, ::1] w,    # IN  (f_h, f_w, c_in, c_out)
                       floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c_in)
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l, Py_ssize_t d_h, Py_ssize_t d_w,
                       Py_ssize_t groups, bint dot, int num_threads):
    """dx = conv_transpose(dz, w), parallel over batch x input rows.

    Parameters
    ----------
    dz : C-contiguous memoryview, non-empty
        Gradient of the output.
    w : C-contiguous memoryview
        Filters.
    dx : C-contiguous memoryview
        Gradient of the input, fully overwritten.
    s_h, s_w, p_t, p_l, d_h, d_w, groups : int
        As for :func:`conv2d_forward`.
    dot : bool
        float32 with few input channels: the dot-product tile, vectors over
        ``c_out`` (whose length must be a multiple of the lanes), reading w
        in place in blocks of up to ``CYC_DOT_MC`` input channels (chosen by
        ``cyconv._dispatch.dx_plan``). Otherwise the register tile.
    num_threads : int
        OpenMP threads (>= 1).
    """
    cdef cyc_conv_params p = _params(dx, dz, w, s_h, s_w, p_t, p_l, d_h, d_w, groups)
    cdef Py_ssize_t blk, i, ih, g, n_taps = p.f_h * p.f_w
    cdef Scratch sc
    cdef Py_ssize_t c_grp = _group_out(&p)
    cdef int nv = _tile_vectors(sizeof(floating), p.K)
    cdef Py_ssize_t nb = DOT_MC if dot else nv * cyc_lanes(sizeof(floating))
    cdef Py_ssize_t n_cb = (p.K + nb - 1) // nb
    cdef int n_threads = _threads_for(num_threads, <double> dz.size * n_taps * p.K)
    # width lists: one per stride phase of the columns, then an edge column's;
    # sc.q: 3 numbers per phase, then one phase's f_w q values
    cdef Py_ssize_t n_v = (p.f_w + 3) * ((p.s_w if p.s_w < p.n_w else p.n_w) + 1)
    cdef Py_ssize_t per_thread, rows, n_blk
    cdef ptrdiff_t w_tap = p.w_ts if dot else c_grp * nb
    cdef ptrdiff_t *hp
    # Scratch: for the register tile, filters as (groups, n_cb, f_h, f_w, C, nb),
    # blocks of input channels with the sum over output channels inside; per
    # thread, a row's tap lists.
    cdef floating *wpack = NULL
    cdef ptrdiff_t *taps = NULL
    # Narrow images (kernel wide next to the image): most dx columns would be
    # edge columns, one pixel per tile. There dz is copied with L zero columns
    # before and R after, every column becomes interior, and the copy is read
    # as a dz whose padding before the width axis is p_l + L * s_w. Skipped
    # when w holds a non-finite value (inf * 0 would turn a sum into NaN).
    cdef floating *dzpad = NULL
    cdef const floating *dzs = &dz[0, 0, 0, 0]
    cdef Py_ssize_t L = 0, R = 0, reach = (p.f_w - 1) * p.d_w
    cdef Py_ssize_t lo = _floor_div(p.p_l - reach, p.s_w)   # smallest ow any tap asks for
    cdef Py_ssize_t hi = (p.n_w - 1 + p.p_l) // p.s_w       # largest
    if reach * 8 > p.n_w and _all_finite(&w[0, 0, 0, 0], n_taps * p.K * p.c_out):
        L = -lo if lo < 0 else 0
        R = hi - (p.o_w - 1) if hi > p.o_w - 1 else 0
    try:
        per_thread = _scratch_size(n_taps, p.f_h, n_v) + _dx_phases_size(&p)
        # Blocks of input rows, as in conv2d_forward.
        rows = min(DOT_MP if dot else cyc_max_pixels(nv),
                   max(1, p.m * p.n_h // (4 * n_threads)))
        n_blk = (p.n_h + rows - 1) // rows
        taps = <ptrdiff_t *> _alloc(n_threads * per_thread * sizeof(ptrdiff_t))
        if not dot:
            wpack = <floating *> _alloc(p.groups * n_cb * n_taps * c_grp * nb * sizeof(floating))
        if L or R:
            dzs = dzpad = _padded_columns(dzs, p.m * p.o_h, p.o_w, p.c_out, L, R)
            p.o_w = p.o_w + L + R
            p.p_l = p.p_l + L * p.s_w
            p.z_rs = p.o_w * p.z_ps
            p.z_is = p.o_h * p.z_rs
        with nogil:
            if not dot:
                for g in range(p.groups):
                    _pack_blocks_t(&w[0, 0, 0, 0] + g * c_grp, n_taps, p.K, c_grp, p.c_out, nb,
                                   wpack + g * n_cb * n_taps * c_grp * nb)
            with parallel(num_threads=n_threads):
                sc = _scratch(taps + threadid() * per_thread, n_taps, p.f_h, n_v)
                hp = taps + threadid() * per_thread + _scratch_size(n_taps, p.f_h, n_v)
                _dx_phases(&p, sc, hp, w_tap)
                for blk in prange(p.m * n_blk, schedule="static"):
                    i = blk // n_blk
                    ih = blk % n_blk * rows
                    _dx_block(&p, dzs + i * p.z_is, &w[0, 0, 0, 0] if dot else wpack,
                              &dx[i, 0, 0, 0], sc, hp, ih,
                              ih + rows if ih + rows < p.n_h else p.n_h, nv, nb, dot)
    finally:
        PyMem_Free(taps)
        PyMem_Free(wpack)
        PyMem_Free(dzpad)


# ---- dw and db ----------------------------------------------------------------

cdef ptrdiff_t _dw_taps(const cyc_conv_params *p, Scratch sc, ptrdiff_t r0, ptrdiff_t r1,
                        ptrdiff_t kh, ptrdiff_t col, ptrdiff_t ow, ptrdiff_t dz_ps,
                        ptrdiff_t z_r0) noexcept nogil:
    # Tap list of a dw tile: the output rows r0 .. r1 - 1 whose input row for
    # kernel row kh is inside x (a height list over rows) times one width
    # entry: x at input column `col`, dz at output column ow (dz's rows from
    # z_r0 on, dz_ps values per pixel). With one width entry the product is
    # the height list shifted, written directly.
    cdef ptrdiff_t row, ih, n = 0
    cdef ptrdiff_t oh = r0 % p.o_h, x_img = r0 // p.o_h * p.x_is + col * p.x_ps
    cdef ptrdiff_t col_w = ow * dz_ps
    for row in range(r0, r1):     # (image, oh) of row, stepped without dividing
        ih = oh * p.s_h - p.p_t + kh * p.d_h
        if 0 <= ih < p.n_h:
            sc.in_off[n] = x_img + ih * p.x_rs
            sc.w_off[n] = (row - z_r0) * p.o_w * dz_ps + col_w
            n += 1
        oh += 1
        if oh == p.o_h:
            oh = 0
            x_img += p.x_is
    return n


cdef inline void _pack_slab(int P, const floating *x, const ptrdiff_t *in_off, ptrdiff_t nt,
                            ptrdiff_t K, ptrdiff_t in_ks, floating *dst) noexcept nogil:
    if floating is float:
        cyc_pack_slab_f32(P, x, in_off, nt, K, in_ks, dst)
    else:
        cyc_pack_slab_f64(P, x, in_off, nt, K, in_ks, dst)


cdef inline void _pack_dz(const floating *dz, ptrdiff_t ld, ptrdiff_t n, ptrdiff_t c, int nb,
                          ptrdiff_t nblk, floating *dst) noexcept nogil:
    if floating is float:
        cyc_pack_dz_f32(dz, ld, n, c, nb, nblk, dst)
    else:
        cyc_pack_dz_f64(dz, ld, n, c, nb, nblk, dst)


cdef struct DwPanel:
    # Where the tiles read dz: block cb of the slab's group at
    # dz + cb * cb_stride, dz_ps values per pixel, pixels from row z_r0 on.
    const void *dz
    ptrdiff_t cb_stride, dz_ps, z_r0


cdef void _dw_slab(const cyc_conv_params *p, const floating *x, DwPanel dzp, floating *dw,
                   Scratch sc, floating *xs, ptrdiff_t slab, ptrdiff_t cb0, ptrdiff_t cb1,
                   ptrdiff_t r0, ptrdiff_t r1, bint accumulate, int nv,
                   ptrdiff_t nb) noexcept nogil:
    # The tiles cb0 .. cb1 - 1 of one slab of dw: a slab is kernel row kh x P
    # consecutive (kw, ci) pairs (of one group: x's channels from grp * K,
    # dz's and dw's from grp * C, dw's rows p.c_out apart), a tile is the slab
    # x one block cb of NB output channels. Within a kernel row, dw[kh] is
    # (f_w * K, c_out) and, when x's pixels hold just the K channels and the
    # dilation is 1, the x values of the pairs kw * K + ci at one output
    # column are consecutive too (NHWC), so a slab may span several kw (which
    # keeps tiles full when K is small); otherwise a slab stays inside one kw
    # (_dw_tiles_per_row). Each tile sums over the output rows r0 .. r1 - 1
    # (the tap list) and, first, the output columns where every kw is inside
    # x, then, per kw, the edge columns where only some are.
    # xs (or NULL): room for the slab's x values of the interior columns,
    # packed (row, column, pair), which the tiles of every block then read at
    # unit stride.
    cdef int mr = cyc_max_pixels(nv), P, nch, pk
    cdef ptrdiff_t c_in = p.K, c_out = _group_out(p), ld = p.c_out
    cdef ptrdiff_t n_r = p.f_w * c_in
    cdef ptrdiff_t n_rt = _dw_tiles_per_row(p, mr), shift = 0
    cdef ptrdiff_t cb, rt, kh, r, r_end = n_r, in_ks = p.s_w * p.x_ps, base
    cdef ptrdiff_t ow_a, ow_b, nt = 0, kw, ci0, ci1, lo, hi, e, K, t
    cdef const floating *dzc = <const floating *> dzp.dz
    cdef const floating *inp
    cdef floating *out
    cdef ptrdiff_t grp = slab // (p.f_h * n_rt)
    slab = slab % (p.f_h * n_rt)
    rt = slab % n_rt
    kh = slab // n_rt
    r = rt * mr
    x = x + grp * c_in
    out = dw + grp * c_out + kh * n_r * ld
    if p.d_w * p.x_ps != c_in:   # slabs stay inside one kw: its channels are consecutive in x
        kw = rt // ((c_in + mr - 1) // mr)
        r = kw * c_in + rt % ((c_in + mr - 1) // mr) * mr
        r_end = (kw + 1) * c_in
        shift = kw * (p.d_w * p.x_ps - c_in)
    _interior(p.p_l, p.f_w, p.d_w, p.s_w, p.n_w, p.o_w, &ow_a, &ow_b)
    P = <int>(r_end - r if r_end - r < mr else mr)
    K = ow_b - ow_a
    if K > 0:
        nt = _dw_taps(p, sc, r0, r1, kh, ow_a * p.s_w - p.p_l, ow_a, dzp.dz_ps, dzp.z_r0)
    inp, base = x, r + shift
    if xs != NULL and nt > 0:
        _pack_slab(P, x + base, sc.in_off, nt, K, in_ks, xs)
        for t in range(nt):
            sc.in_off[t] = t * K * P
        inp, base, in_ks = xs, 0, P
        if K == p.o_w and nt == r1 - r0:
            # Every row, each in full: the rows of dz follow each other too,
            # so the taps are one run of nt * K columns (same products, same order).
            K, nt = nt * K, 1
    for cb in range(cb0, cb1):
        nch = <int>(c_out - cb * nb if c_out - cb * nb < nb else nb)
        _tile(P, nv, inp, base, 1, in_ks, dzc + cb * dzp.cb_stride, dzp.dz_ps,
              sc.in_off, sc.w_off, nt, K, out + r * ld + cb * nb, ld, nch,
              _epilogue(NULL, accumulate, CYC_ACT_NONE))
    if ow_a == 0 and ow_b == p.o_w:
        return
    for kw in range(r // c_in, (r + P - 1) // c_in + 1):
        ci0 = r - kw * c_in if r > kw * c_in else 0
        ci1 = r + P - kw * c_in if r + P < (kw + 1) * c_in else c_in
        pk = <int>(ci1 - ci0)
        for e in range(2):     # the edge columns before, then after, the interior
            # kw's valid columns [first, end) minus the interior [ow_a, ow_b); with
            # no interior (ow_a == ow_b, kernel wider than the image) the two
            # pieces split [first, end) at ow_a.
            lo = _first_out(p.p_l, kw * p.d_w, p.s_w)
            hi = _end_out(p.p_l, kw * p.d_w, p.s_w, p.n_w, p.o_w)
            if e == 0:
                hi = ow_a if ow_a < hi else hi
            elif ow_b > lo:
                lo = ow_b
            K = hi - lo
            if K <= 0:
                continue
            nt = _dw_taps(p, sc, r0, r1, kh, lo * p.s_w - p.p_l + kw * p.d_w, lo, dzp.dz_ps,
                          dzp.z_r0)
            for cb in range(cb0, cb1):
                nch = <int>(c_out - cb * nb if c_out - cb * nb < nb else nb)
                _tile(pk, nv, x, ci0, 1, p.s_w * p.x_ps,
                      dzc + cb * dzp.cb_stride, dzp.dz_ps, sc.in_off, sc.w_off,
                      nt, K, out + (kw * c_in + ci0) * ld + cb * nb, ld, nch,
                      _epilogue(NULL, True, CYC_ACT_NONE))


cdef inline ptrdiff_t _dw_tiles_per_row(const cyc_conv_params *p, ptrdiff_t mr) noexcept nogil:
    # Slabs of P (kw, ci) pairs per kernel row: across kw where x's values of
    # consecutive kw are consecutive (see _dw_slab), else per kw.
    if p.d_w * p.x_ps != p.K:
        return p.f_w * ((p.K + mr - 1) // mr)
    return (p.f_w * p.K + mr - 1) // mr


cdef void _dw_items(const cyc_conv_params *p, const floating *x, const floating *dz,
                    floating *dw, floating *db, Scratch sc, floating *xs, floating *dzs,
                    ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t n_items, ptrdiff_t group, int nv,
                    ptrdiff_t nb) noexcept nogil:
    # Items i0 .. i1 - 1 (item = slab * n_cb + cb; item n_items is db) over
    # every group of output rows, group by group. A group's dz is first
    # copied into dzs as (block, pixel, NB), per group of channels (or read
    # in place where it is one whole block: dzs NULL); then each slab's tiles
    # run one after the other, on its x values packed once into xs (or NULL:
    # read in place). Each tile's sums run in the same order whatever the
    # order of the tiles.
    cdef ptrdiff_t g, r0, r1, n_rows = p.m * p.o_h, c_grp = _group_out(p)
    cdef ptrdiff_t n_cb = (c_grp + nb - 1) // nb, s, lo, hi, grp, packed
    cdef ptrdiff_t n_slabs = p.f_h * _dw_tiles_per_row(p, cyc_max_pixels(nv))
    cdef ptrdiff_t i_end = i1 if i1 < n_items else n_items
    cdef DwPanel dzp
    dzp.dz, dzp.cb_stride, dzp.dz_ps, dzp.z_r0 = dz, nb, p.c_out, 0
    for g in range((n_rows + group - 1) // group):
        r0 = g * group
        r1 = r0 + group if r0 + group < n_rows else n_rows
        packed = -1
        for s in range(i0 // n_cb, (i_end + n_cb - 1) // n_cb):
            lo = s * n_cb if s * n_cb > i0 else i0
            hi = (s + 1) * n_cb if (s + 1) * n_cb < i_end else i_end
            grp = s // n_slabs
            if dzs == NULL:
                dzp.dz, dzp.cb_stride, dzp.dz_ps, dzp.z_r0 = dz + grp * c_grp, nb, p.c_out, 0
            elif grp != packed:
                _pack_dz(dz + r0 * p.o_w * p.c_out + grp * c_grp, p.c_out, (r1 - r0) * p.o_w,
                         c_grp, <int> nb, n_cb, dzs)
                dzp.dz, dzp.cb_stride, dzp.dz_ps, dzp.z_r0 = dzs, (r1 - r0) * p.o_w * nb, nb, r0
                packed = grp
            _dw_slab(p, x, dzp, dw, sc, xs, s, lo - s * n_cb, hi - s * n_cb, r0, r1, g > 0,
                     nv, nb)
        if i1 > n_items:
            _db_rows(dz, db, r0 * p.o_w, r1 * p.o_w, p.c_out)


cdef inline void _db_rows(const floating *dz, floating *db, ptrdiff_t p0, ptrdiff_t p1,
                          ptrdiff_t c_out) noexcept nogil:
    # db += the sum of dz's output pixels p0 .. p1 - 1, in order (see the header).
    if floating is float:
        cyc_db_rows_f32(dz, db, p0, p1, c_out)
    else:
        cyc_db_rows_f64(dz, db, p0, p1, c_out)


def conv2d_backward_dw(const floating[:, :, :, ::1] x,      # IN  (m, n_h, n_w, c_in)
                       const floating[:, :, :, ::1] dz,     # IN  (m, o_h, o_w, c_out)
                       floating[:, :, :, ::1] dw,           # OUT (f_h, f_w, c_in, c_out)
                       floating[::1] db,                    # OUT (c_out,)
                       Py_ssize_t s_h, Py_ssize_t s_w,
                       Py_ssize_t p_t, Py_ssize_t p_l, Py_ssize_t d_h, Py_ssize_t d_w,
                       Py_ssize_t groups, int num_threads):
    """dw and db as reductions over batch and output pixels.

    dw is split into independent tiles (tap x input channels x a block of
    output channels), shared among threads; each tile sums over every output
    pixel in order. The output rows are taken in groups small enough for
    the cache, every tile carrying its running sum from group to group in
    dw itself, so each element's sum runs in an order fixed by the shapes:
    the result is bitwise identical for any number of threads. For each
    group a thread first copies dz into (block, pixel, NB) panels, and the
    x values of each slab of tiles (wide layers) into a unit-stride panel,
    so that the tiles stream both instead of reading one cache line per
    pixel (the per-level thresholds DW_PACK_DZ_BYTES, DW_PACK_X_BYTES).

    Parameters
    ----------
    x, dz : C-contiguous memoryviews, non-empty
        Forward input and output gradient.
    dw, db : C-contiguous memoryviews
        Outputs, fully overwritten.
    s_h, s_w, p_t, p_l, d_h, d_w, groups, num_threads : int
        As for :func:`conv2d_forward`.
    """
    cdef cyc_conv_params p = _params(x, dz, dw, s_h, s_w, p_t, p_l, d_h, d_w, groups)
    cdef Py_ssize_t n_rows = p.m * p.o_h, t, co
    cdef Py_ssize_t c_grp = _group_out(&p)
    cdef int nv = _tile_vectors(sizeof(floating), c_grp)
    cdef Py_ssize_t nb = nv * cyc_lanes(sizeof(floating))
    cdef Py_ssize_t mr = cyc_max_pixels(nv), n_cb = (c_grp + nb - 1) // nb
    cdef Py_ssize_t n_items = p.groups * p.f_h * _dw_tiles_per_row(&p, mr) * n_cb
    cdef int n_threads = _threads_for(num_threads, <double> dz.size * p.f_h * p.f_w * p.K)
    # Rows per group (shapes only): about DW_GROUP_PIXELS output pixels, so a
    # tile's slice of dz stays in cache while the dw traffic of carrying the
    # sums from group to group stays small next to the arithmetic. A tile
    # sums a group's interior columns before its edge columns; where there
    # are no edge columns the sums run in pixel order whatever the groups,
    # and the smaller DW_GROUP_PIXELS_NO_EDGES keeps the group's panels in L2.
    cdef ptrdiff_t ow_a, ow_b
    cdef Py_ssize_t group_pixels = DW_GROUP_PIXELS
    cdef Py_ssize_t group
    _interior(p.p_l, p.f_w, p.d_w, p.s_w, p.n_w, p.o_w, &ow_a, &ow_b)
    if ow_a == 0 and ow_b == p.o_w:
        group_pixels = DW_GROUP_PIXELS_NO_EDGES
    group = max(1, min(n_rows, group_pixels // p.o_w))
    cdef Py_ssize_t per_thread = _scratch_size(group, 0, 0)
    # A slab's x values are copied into a panel when they lie far apart in x
    # (a pixel's values span more than DW_PACK_X_BYTES): per thread, the
    # interior of a group's rows x P pairs.
    cdef bint pack = p.s_w * p.x_ps * <Py_ssize_t> sizeof(floating) > DW_PACK_X_BYTES
    cdef Py_ssize_t xs_size = group * p.o_w * mr if pack else 0
    # dz is copied per group of rows when its blocks are partial or a pixel's
    # values span more than DW_PACK_DZ_BYTES, else its blocks are read in place.
    cdef bint pack_dz = (c_grp % nb != 0
                         or p.c_out * <Py_ssize_t> sizeof(floating) > DW_PACK_DZ_BYTES)
    cdef Py_ssize_t dzs_size = group * p.o_w * nb * n_cb if pack_dz else 0
    cdef floating *xs = NULL
    cdef floating *dzs = NULL
    cdef ptrdiff_t *taps = NULL
    try:
        taps = <ptrdiff_t *> _alloc(n_threads * per_thread * sizeof(ptrdiff_t))
        xs = <floating *> _alloc(n_threads * xs_size * sizeof(floating))
        dzs = <floating *> _alloc(n_threads * dzs_size * sizeof(floating))
        with nogil:
            for co in range(p.c_out):
                db[co] = 0
            # Thread t takes the t-th contiguous share of the items (the last
            # item, n_items, is db) and sweeps the groups at its own pace: no
            # barrier, and the group's rows of x and dz stay in its cache
            # while it runs its items on them.
            for t in prange(n_threads, num_threads=n_threads, schedule="static", chunksize=1):
                _dw_items(&p, &x[0, 0, 0, 0], &dz[0, 0, 0, 0], &dw[0, 0, 0, 0], &db[0],
                          _scratch(taps + t * per_thread, group, 0, 0),
                          xs + t * xs_size if pack else NULL,
                          dzs + t * dzs_size if pack_dz else NULL,
                          t * (n_items + 1) // n_threads, (t + 1) * (n_items + 1) // n_threads,
                          n_items, group, nv, nb)
    finally:
        PyMem_Free(taps)
        PyMem_Free(xs)
        PyMem_Free(dzs)


# --------------------------------------------------------------------------
# 4. Depthwise convolution (groups == c_in, channel multiplier M = c_out / c_in)
# --------------------------------------------------------------------------
# One product per tap and output: memory-bound, so no packing and no register
# tile over pixels; each pixel's channels are streamed in vectors by the loops
# of _depthwise.h, from the tap lists of the tap builder: one width list per
# output (forward) or input (dx) column, built once per call, times one height
# list per row. dw reduces over the rows in chunks of a size fixed by the
# shapes, each chunk into its own partial sums, merged in chunk order: bitwise
# identical results for any thread count.

cdef extern from "_depthwise.h" nogil:
    void cyc_dwc_prefetch(const char *p, ptrdiff_t n_bytes, int write)
    void cyc_dwc_pixel_f32(const float *inp, const float *w, const ptrdiff_t *h_in,
                           const ptrdiff_t *h_w, ptrdiff_t nh, const ptrdiff_t *v_in,
                           const ptrdiff_t *v_w, ptrdiff_t nv, const float *init, float *out,
                           ptrdiff_t C, int relu)
    void cyc_dwc_pixel_f64(const double *inp, const double *w, const ptrdiff_t *h_in,
                           const ptrdiff_t *h_w, ptrdiff_t nh, const ptrdiff_t *v_in,
                           const ptrdiff_t *v_w, ptrdiff_t nv, const double *init, double *out,
                           ptrdiff_t C, int relu)
    void cyc_dwc_pixel_mult_f32(const float *inp, const float *w, const ptrdiff_t *h_in,
                                const ptrdiff_t *h_w, ptrdiff_t nh, const ptrdiff_t *v_in,
                                const ptrdiff_t *v_w, ptrdiff_t nv, const float *init,
                                float *out, ptrdiff_t C_in, ptrdiff_t M, int relu)
    void cyc_dwc_pixel_mult_f64(const double *inp, const double *w, const ptrdiff_t *h_in,
                                const ptrdiff_t *h_w, ptrdiff_t nh, const ptrdiff_t *v_in,
                                const ptrdiff_t *v_w, ptrdiff_t nv, const double *init,
                                double *out, ptrdiff_t C_in, ptrdiff_t M, int relu)
    void cyc_dwc_pixel_dx_mult_f32(const float *inp, const float *w, const ptrdiff_t *h_in,
                                   const ptrdiff_t *h_w, ptrdiff_t nh, const ptrdiff_t *v_in,
                                   const ptrdiff_t *v_w, ptrdiff_t nv, float *out,
                                   ptrdiff_t C_in, ptrdiff_t M)
    void cyc_dwc_pixel_dx_mult_f64(const double *inp, const double *w, const ptrdiff_t *h_in,
                                   const ptrdiff_t *h_w, ptrdiff_t nh, const ptrdiff_t *v_in,
                                   const ptrdiff_t *v_w, ptrdiff_t nv, double *out,
                                   ptrdiff_t C_in, ptrdiff_t M)
    void cyc_dwc_run_f32(const float *inp, ptrdiff_t in_ps, const float *w,
                         const ptrdiff_t *in_off, const ptrdiff_t *w_off, ptrdiff_t nt,
                         const float *init, float *out, ptrdiff_t out_ps, ptrdiff_t npix,
                         ptrdiff_t C, int relu)
    void cyc_dwc_run_f64(const double *inp, ptrdiff_t in_ps, const double *w,
                         const ptrdiff_t *in_off, const ptrdiff_t *w_off, ptrdiff_t nt,
                         const double *init, double *out, ptrdiff_t out_ps, ptrdiff_t npix,
                         ptrdiff_t C, int relu)
    void cyc_dwc_run3_f32(int dir, const float *inp, ptrdiff_t in_ps, const float *w,
                          ptrdiff_t v0, const ptrdiff_t *h_in, const ptrdiff_t *h_w,
                          ptrdiff_t nh, ptrdiff_t w_step, const ptrdiff_t *in_off,
                          const ptrdiff_t *w_off, ptrdiff_t nt, const float *init, float *out,
                          ptrdiff_t out_ps, ptrdiff_t npix, ptrdiff_t C, int relu)
    void cyc_dwc_run3_f64(int dir, const double *inp, ptrdiff_t in_ps, const double *w,
                          ptrdiff_t v0, const ptrdiff_t *h_in, const ptrdiff_t *h_w,
                          ptrdiff_t nh, ptrdiff_t w_step, const ptrdiff_t *in_off,
                          const ptrdiff_t *w_off, ptrdiff_t nt, const double *init,
                          double *out, ptrdiff_t out_ps, ptrdiff_t npix, ptrdiff_t C, int relu)
    int cyc_dwc_row3_f32(int dir, const float *inp, ptrdiff_t in_ps, ptrdiff_t n_in,
                         ptrdiff_t p_l,
                         const float *w, const ptrdiff_t *h_in, const ptrdiff_t *h_w,
                         ptrdiff_t nh, ptrdiff_t w_step, const float *init, float *out,
                         ptrdiff_t out_ps, ptrdiff_t o_w, ptrdiff_t C, int relu,
                         const float *pf_in, float *pf_out)
    int cyc_dwc_row3_f64(int dir, const double *inp, ptrdiff_t in_ps, ptrdiff_t n_in,
                         ptrdiff_t p_l,
                         const double *w, const ptrdiff_t *h_in, const ptrdiff_t *h_w,
                         ptrdiff_t nh, ptrdiff_t w_step, const double *init, double *out,
                         ptrdiff_t out_ps, ptrdiff_t o_w, ptrdiff_t C, int relu,
                         const double *pf_in, double *pf_out)
    void cyc_dwc_dw_row3_f32(const float *x, ptrdiff_t xs, const float *dz, ptrdiff_t zs,
                             ptrdiff_t n, float *acc, ptrdiff_t C, int lo, int hi,
                             const float *pf_x, const float *pf_z)
    void cyc_dwc_dw_row3_f64(const double *x, ptrdiff_t xs, const double *dz, ptrdiff_t zs,
                             ptrdiff_t n, double *acc, ptrdiff_t C, int lo, int hi,
                             const double *pf_x, const double *pf_z)
    int cyc_dwc_dw_rows3_f32(const float *x, ptrdiff_t xr, ptrdiff_t xs, const float *dz,
                              ptrdiff_t zs, ptrdiff_t n, float *acc, ptrdiff_t C, int lo, int hi,
                              const float *pf_x, const float *pf_z)
    int cyc_dwc_dw_rows3_f64(const double *x, ptrdiff_t xr, ptrdiff_t xs, const double *dz,
                              ptrdiff_t zs, ptrdiff_t n, double *acc, ptrdiff_t C, int lo, int hi,
                              const double *pf_x, const double *pf_z)
    void cyc_dwc_dw_run_f32(const float *x, ptrdiff_t xs, const float *dz, ptrdiff_t zs,
                            ptrdiff_t n, float *acc, ptrdiff_t C_out, ptrdiff_t M)
    void cyc_dwc_dw_run_f64(const double *x, ptrdiff_t xs, const double *dz, ptrdiff_t zs,
                            ptrdiff_t n, double *acc, ptrdiff_t C_out, ptrdiff_t M)


cdef inline void _dwc_prefetch_share(const void *pf, ptrdiff_t n_bytes, ptrdiff_t i0, ptrdiff_t i1,
                                     ptrdiff_t n, int write) noexcept nogil:
    # Prefetch the share [i0, i1) of n of pf's n_bytes (nothing when pf is NULL):
    # a row's loop spreads the next row's prefetches over its pixels.
    cdef ptrdiff_t a, e
    if pf != NULL and n > 0:
        a = (i0 * n_bytes // n) & ~(<ptrdiff_t> 63)
        e = i1 * n_bytes // n
        cyc_dwc_prefetch(<const char *> pf + a, e - a, write)


cdef inline void _dwc_pixel(const floating *inp, const floating *w, const ptrdiff_t *h_in,
                            const ptrdiff_t *h_w, ptrdiff_t nh, const ptrdiff_t *v_in,
                            const ptrdiff_t *v_w, ptrdiff_t nv, const floating *init,
                            floating *out, ptrdiff_t c_in, ptrdiff_t M, int relu) noexcept nogil:
    # One forward pixel: out[co] = init[co] + sum of the taps, co < c_in * M.
    if floating is float:
        if M == 1:
            cyc_dwc_pixel_f32(inp, w, h_in, h_w, nh, v_in, v_w, nv, init, out, c_in, relu)
        else:
            cyc_dwc_pixel_mult_f32(inp, w, h_in, h_w, nh, v_in, v_w, nv, init, out, c_in, M,
                                   relu)
    else:
        if M == 1:
            cyc_dwc_pixel_f64(inp, w, h_in, h_w, nh, v_in, v_w, nv, init, out, c_in, relu)
        else:
            cyc_dwc_pixel_mult_f64(inp, w, h_in, h_w, nh, v_in, v_w, nv, init, out, c_in, M,
                                   relu)


cdef inline void _dwc_run(const floating *inp, ptrdiff_t in_ps, const floating *w,
                          const ptrdiff_t *in_off, const ptrdiff_t *w_off, ptrdiff_t nt,
                          const floating *init, floating *out, ptrdiff_t out_ps, ptrdiff_t npix,
                          ptrdiff_t C, int relu) noexcept nogil:
    # npix pixels (M == 1) sharing one tap list, in_ps / out_ps apart.
    if floating is float:
        cyc_dwc_run_f32(inp, in_ps, w, in_off, w_off, nt, init, out, out_ps, npix, C, relu)
    else:
        cyc_dwc_run_f64(inp, in_ps, w, in_off, w_off, nt, init, out, out_ps, npix, C, relu)


cdef inline void _dwc_run3(int dir, const floating *inp, ptrdiff_t in_ps, const floating *w,
                           ptrdiff_t v0, const ptrdiff_t *h_in, const ptrdiff_t *h_w,
                           ptrdiff_t nh, ptrdiff_t w_step, const ptrdiff_t *in_off,
                           const ptrdiff_t *w_off, ptrdiff_t nt, const floating *init,
                           floating *out, ptrdiff_t out_ps, ptrdiff_t npix, ptrdiff_t C,
                           int relu) noexcept nogil:
    # As _dwc_run for 3-tap rows at unit stride and dilation (dir +1: forward,
    # -1: dx), loading each input column once per kernel row; v0: the offset
    # of the k = 0 width tap, h_in/h_w: the height list alone.
    if floating is float:
        cyc_dwc_run3_f32(dir, inp, in_ps, w, v0, h_in, h_w, nh, w_step, in_off, w_off, nt, init,
                         out, out_ps, npix, C, relu)
    else:
        cyc_dwc_run3_f64(dir, inp, in_ps, w, v0, h_in, h_w, nh, w_step, in_off, w_off, nt, init,
                         out, out_ps, npix, C, relu)


cdef inline int _dwc_row3(int dir, const floating *inp, ptrdiff_t in_ps, ptrdiff_t n_in,
                          ptrdiff_t p_l, const floating *w, const ptrdiff_t *h_in, const ptrdiff_t *h_w,
                          ptrdiff_t nh, ptrdiff_t w_step, const floating *init, floating *out,
                          ptrdiff_t out_ps, ptrdiff_t o_w, ptrdiff_t C, int relu,
                          const floating *pf_in, floating *pf_out) noexcept nogil:
    # A whole row of 3-tap rows at unit stride and dilation (M == 1), edges
    # included (dir +1: forward, -1: dx; inp: the image's column 0, n_in its
    # columns); 0 when the row is shorter than a tile or C not whole vectors,
    # and nothing was done. pf_in, pf_out: the next row's new input row and its
    # output row (or NULL), prefetched.
    if floating is float:
        return cyc_dwc_row3_f32(dir, inp, in_ps, n_in, p_l, w, h_in, h_w, nh, w_step, init,
                                out, out_ps, o_w, C, relu, pf_in, pf_out)
    else:
        return cyc_dwc_row3_f64(dir, inp, in_ps, n_in, p_l, w, h_in, h_w, nh, w_step, init,
                                out, out_ps, o_w, C, relu, pf_in, pf_out)


cdef inline void _dwc_pixel_dx(const floating *dz, const floating *w, const ptrdiff_t *h_in,
                               const ptrdiff_t *h_w, ptrdiff_t nh, const ptrdiff_t *v_in,
                               const ptrdiff_t *v_w, ptrdiff_t nv, floating *out,
                               ptrdiff_t c_in, ptrdiff_t M) noexcept nogil:
    # One dx pixel: out[ci] = sum of the gathered taps over ci's M output channels.
    if M == 1:
        _dwc_pixel(dz, w, h_in, h_w, nh, v_in, v_w, nv, NULL, out, c_in, 1, 0)
    elif floating is float:
        cyc_dwc_pixel_dx_mult_f32(dz, w, h_in, h_w, nh, v_in, v_w, nv, out, c_in, M)
    else:
        cyc_dwc_pixel_dx_mult_f64(dz, w, h_in, h_w, nh, v_in, v_w, nv, out, c_in, M)


cdef inline void _dwc_dw_run(const floating *x, ptrdiff_t xs, const floating *dz, ptrdiff_t zs,
                             ptrdiff_t n, floating *acc, ptrdiff_t c_out,
                             ptrdiff_t M) noexcept nogil:
    if floating is float:
        cyc_dwc_dw_run_f32(x, xs, dz, zs, n, acc, c_out, M)
    else:
        cyc_dwc_dw_run_f64(x, xs, dz, zs, n, acc, c_out, M)


cdef inline void _dwc_dw_row3(const floating *x, ptrdiff_t xs, const floating *dz, ptrdiff_t zs,
                              ptrdiff_t n, floating *acc, ptrdiff_t c, int lo, int hi,
                              const floating *pf_x, const floating *pf_z) noexcept nogil:
    if floating is float:
        cyc_dwc_dw_row3_f32(x, xs, dz, zs, n, acc, c, lo, hi, pf_x, pf_z)
    else:
        cyc_dwc_dw_row3_f64(x, xs, dz, zs, n, acc, c, lo, hi, pf_x, pf_z)


cdef inline int _dwc_dw_rows3(const floating *x, ptrdiff_t xr, ptrdiff_t xs,
                              const floating *dz, ptrdiff_t zs, ptrdiff_t n, floating *acc,
                              ptrdiff_t c, int lo, int hi, const floating *pf_x,
                              const floating *pf_z) noexcept nogil:
    if floating is float:
        return cyc_dwc_dw_rows3_f32(x, xr, xs, dz, zs, n, acc, c, lo, hi, pf_x, pf_z)
    else:
        return cyc_dwc_dw_rows3_f64(x, xr, xs, dz, zs, n, acc, c, lo, hi, pf_x, pf_z)


cdef void _dwc_dw_row(const cyc_conv_params *p, const floating *x, const floating *dz,
                      floating *acc, ptrdiff_t oh, ptrdiff_t M, ptrdiff_t ow_a,
                      ptrdiff_t ow_b, bint row3) noexcept nogil:
    # acc[kh, kw] += one output row's terms of dw (x, dz: the row's image).
    # With row3 (3-tap rows at unit stride and dilation) the interior columns
    # [ow_a, ow_b) run for the three kw at once, then each kw's edge columns;
    # the first of these runs prefetches the next row's new x row and its dz
    # row (when that row is in the same image). With one column of padding on
    # each side and o_w == n_w (3x3 "same") the run takes the edge columns too:
    # the whole row in one run per kh.
    cdef ptrdiff_t kh, kw, ih, lo, hi, e, a, z
    cdef bint whole = row3 and p.p_l == 1 and p.o_w == p.n_w and ow_a == 1 and ow_b == p.o_w - 1
    cdef ptrdiff_t ih_next = (oh + 1) * p.s_h - p.p_t + (p.f_h - 1) * p.d_h
    cdef const floating *pf_x = NULL
    cdef const floating *pf_z = NULL
    cdef int done3 = 0
    if row3 and oh + 1 < p.o_h and 0 <= ih_next < p.n_h:
        pf_x = x + ih_next * p.x_rs + (ow_a - p.p_l) * p.x_ps
        pf_z = dz + (oh + 1) * p.z_rs + ow_a * p.z_ps
    ih = oh * p.s_h - p.p_t
    if row3 and ow_b > ow_a and p.f_h == 3 and p.d_h == 1 and ih >= 0 and ih + 2 < p.n_h:
        # the three kernel rows in one pass (AVX-512 only; 0: not done)
        done3 = _dwc_dw_rows3(x + ih * p.x_rs + (ow_a - p.p_l) * p.x_ps, p.x_rs, p.x_ps,
                              dz + oh * p.z_rs + ow_a * p.z_ps, p.z_ps, ow_b - ow_a, acc,
                              p.c_out, whole, whole, pf_x, pf_z)
        if done3 and whole:
            return
    for kh in range(p.f_h):
        ih = oh * p.s_h - p.p_t + kh * p.d_h
        if ih < 0 or ih >= p.n_h:
            continue
        if row3 and ow_b > ow_a:
            if not done3:
                _dwc_dw_row3(x + ih * p.x_rs + (ow_a - p.p_l) * p.x_ps, p.x_ps,
                             dz + oh * p.z_rs + ow_a * p.z_ps, p.z_ps, ow_b - ow_a,
                             acc + kh * p.f_w * p.c_out, p.c_out, whole, whole, pf_x, pf_z)
                pf_x = pf_z = NULL
            if whole:
                continue
        for kw in range(p.f_w):
            lo = _first_out(p.p_l, kw * p.d_w, p.s_w)
            hi = _end_out(p.p_l, kw * p.d_w, p.s_w, p.n_w, p.o_w)
            for e in range(2 if row3 and ow_b > ow_a else 1):
                a, z = lo, hi
                if row3 and ow_b > ow_a:     # the columns before, then after, the interior
                    if e == 0:
                        z = ow_a if ow_a < hi else hi
                    else:
                        a = ow_b if ow_b > lo else lo
                if z > a:
                    _dwc_dw_run(x + ih * p.x_rs + (a * p.s_w - p.p_l + kw * p.d_w) * p.x_ps,
                                p.s_w * p.x_ps, dz + oh * p.z_rs + a * p.z_ps, p.z_ps, z - a,
                                acc + (kh * p.f_w + kw) * p.c_out, p.c_out, M)


def depthwise_forward(const floating[:, :, :, ::1] x,     # IN  (m, n_h, n_w, c_in)
                      const floating[:, :, :, ::1] w,     # IN  (f_h, f_w, 1, c_out)
                      const floating[::1] b,              # IN  (c_out,)
                      floating[:, :, :, ::1] z,           # OUT (m, o_h, o_w, c_out)
                      Py_ssize_t s_h, Py_ssize_t s_w,
                      Py_ssize_t p_t, Py_ssize_t p_l, Py_ssize_t d_h, Py_ssize_t d_w,
                      bint relu, int num_threads):
    """Depthwise z = conv(x, w, groups=c_in) + b (then ReLU), parallel over batch x output rows.

    Parameters
    ----------
    x, w, b : C-contiguous memoryviews, non-empty
        Input, filters (c_out a multiple of c_in) and bias.
    z : C-contiguous memoryview
        Output, fully overwritten.
    s_h, s_w, p_t, p_l, d_h, d_w, relu, num_threads
        As for :func:`conv2d_forward`.
    """
    cdef cyc_conv_params p = _params(x, z, w, s_h, s_w, p_t, p_l, d_h, d_w, x.shape[3])
    cdef Py_ssize_t M = p.c_out // p.c_in, row, i, oh, ow, nh, nt, n_kw
    cdef ptrdiff_t ow_a, ow_b
    cdef int n_threads = _threads_for(num_threads, <double> z.size * p.f_h * p.f_w)
    # The width lists of every output column (o_w * f_w pairs, o_w counts), the
    # interior columns' (every kw, relative to the window's first column), and
    # per thread a row's height list and its product with the interior list.
    cdef Py_ssize_t n_cols = p.o_w * p.f_w, per_thread = 2 * p.f_h + 2 * p.f_h * p.f_w
    cdef ptrdiff_t *lists = <ptrdiff_t *> _alloc((2 * n_cols + p.o_w + 2 * p.f_w
                                                  + n_threads * per_thread) * sizeof(ptrdiff_t))
    cdef ptrdiff_t *v_in = lists
    cdef ptrdiff_t *v_w = lists + n_cols
    cdef ptrdiff_t *cnt = lists + 2 * n_cols
    cdef ptrdiff_t *a_in = cnt + p.o_w
    cdef ptrdiff_t *a_w = a_in + p.f_w
    cdef ptrdiff_t *h_in
    cdef ptrdiff_t *h_w
    cdef ptrdiff_t *t_in
    cdef ptrdiff_t *t_w
    cdef const floating *xi
    cdef const floating *pf_in
    cdef floating *zr
    cdef floating *pf_out
    cdef ptrdiff_t ih, q, qe, pf_bytes
    # 3-tap rows at unit stride and dilation: the overlapping-window form
    cdef bint row3 = M == 1 and p.f_w == 3 and p.s_w == 1 and p.d_w == 1
    _interior(p.p_l, p.f_w, p.d_w, p.s_w, p.n_w, p.o_w, &ow_a, &ow_b)
    if M > 1:     # the multiplier's scalar form takes every column as an edge column
        ow_a = ow_b = 0
    try:
        with nogil:
            for ow in range(p.o_w):
                cnt[ow] = _axis_forward(ow, p.s_w, p.p_l, p.d_w, p.n_w, p.f_w, p.x_ps, p.w_ts,
                                        v_in + ow * p.f_w, v_w + ow * p.f_w)
            n_kw = _axis_forward(0, 1, 0, p.d_w, (p.f_w - 1) * p.d_w + 1, p.f_w, p.x_ps, p.w_ts,
                                 a_in, a_w)
            with parallel(num_threads=n_threads):
                h_in = a_w + p.f_w + threadid() * per_thread
                h_w = h_in + p.f_h
                t_in = h_w + p.f_h
                t_w = t_in + p.f_h * p.f_w
                for row in prange(p.m * p.o_h, schedule="static"):
                    i = row // p.o_h
                    oh = row % p.o_h
                    xi = &x[i, 0, 0, 0]
                    zr = &z[i, oh, 0, 0]
                    nh = _axis_forward(oh, p.s_h, p.p_t, p.d_h, p.n_h, p.f_h, p.x_rs,
                                       p.f_w * p.w_ts, h_in, h_w)
                    if row3:
                        # the next output row's last kernel row, and that row itself
                        ih = (oh + 1) * p.s_h - p.p_t + (p.f_h - 1) * p.d_h
                        pf_in = xi + ih * p.x_rs if oh + 1 < p.o_h and 0 <= ih < p.n_h else NULL
                        pf_out = zr + p.z_rs if oh + 1 < p.o_h else NULL
                        if _dwc_row3(1, xi, p.x_ps, p.n_w, p.p_l, &w[0, 0, 0, 0], h_in, h_w, nh,
                                     p.w_ts, &b[0], zr, p.z_ps, p.o_w, p.c_out, relu, pf_in,
                                     pf_out):
                            continue
                    # the input rows the next output row adds, and that row
                    ih = oh * p.s_h - p.p_t + (p.f_h - 1) * p.d_h + 1
                    ih = ih if ih > 0 else 0
                    q = (oh + 1) * p.s_h - p.p_t + (p.f_h - 1) * p.d_h + 1
                    q = q if q < p.n_h else p.n_h
                    pf_in = xi + ih * p.x_rs if oh + 1 < p.o_h and q > ih else NULL
                    pf_bytes = (q - ih) * p.x_rs * sizeof(floating)
                    pf_out = zr + p.z_rs if oh + 1 < p.o_h else NULL
                    if ow_b > ow_a:
                        nt = _taps(h_in, h_w, nh, a_in, a_w, n_kw, t_in, t_w)
                        if row3:
                            _dwc_run3(1, xi + (ow_a * p.s_w - p.p_l) * p.x_ps, p.x_ps,
                                      &w[0, 0, 0, 0], 0, h_in, h_w, nh, p.w_ts, t_in, t_w, nt,
                                      &b[0], zr + ow_a * p.z_ps, p.z_ps, ow_b - ow_a, p.c_out,
                                      relu)
                        else:
                            for q in range(ow_a, ow_b, 8):   # 8 pixels, then their prefetches
                                qe = q + 8 if q + 8 < ow_b else ow_b
                                _dwc_run(xi + (q * p.s_w - p.p_l) * p.x_ps, p.s_w * p.x_ps,
                                         &w[0, 0, 0, 0], t_in, t_w, nt, &b[0], zr + q * p.z_ps,
                                         p.z_ps, qe - q, p.c_out, relu)
                                _dwc_prefetch_share(pf_in, pf_bytes, q, qe, p.o_w, 0)
                                _dwc_prefetch_share(pf_out, p.o_w * p.z_ps * sizeof(floating),
                                                    q, qe, p.o_w, 1)
                    for ow in range(p.o_w):
                        if ow < ow_a or ow >= ow_b:
                            _dwc_pixel(xi, &w[0, 0, 0, 0], h_in, h_w, nh, v_in + ow * p.f_w,
                                       v_w + ow * p.f_w, cnt[ow], &b[0], zr + ow * p.z_ps,
                                       p.c_in, M, relu)
                            _dwc_prefetch_share(pf_in, pf_bytes, ow, ow + 1, p.o_w, 0)
                            _dwc_prefetch_share(pf_out, p.o_w * p.z_ps * sizeof(floating),
                                                ow, ow + 1, p.o_w, 1)
    finally:
        PyMem_Free(lists)


def depthwise_backward_dx(const floating[:, :, :, ::1] dz,   # IN  (m, o_h, o_w, c_out)
                          const floating[:, :, :, ::1] w,    # IN  (f_h, f_w, 1, c_out)
                          floating[:, :, :, ::1] dx,         # OUT (m, n_h, n_w, c_in)
                          Py_ssize_t s_h, Py_ssize_t s_w,
                          Py_ssize_t p_t, Py_ssize_t p_l, Py_ssize_t d_h, Py_ssize_t d_w,
                          int num_threads):
    """Depthwise dx (gather form), parallel over batch x input rows.

    Parameters
    ----------
    dz, w : C-contiguous memoryviews, non-empty
    dx : C-contiguous memoryview
        Fully overwritten.
    s_h, s_w, p_t, p_l, d_h, d_w, num_threads
        As for :func:`conv2d_forward`.
    """
    cdef cyc_conv_params p = _params(dx, dz, w, s_h, s_w, p_t, p_l, d_h, d_w, dx.shape[3])
    cdef Py_ssize_t M = p.c_out // p.c_in, row, i, ih, iw, nh, nt, r, j
    cdef int n_threads = _threads_for(num_threads, <double> dz.size * p.f_h * p.f_w)
    # Gather form. The columns iw = r + j * s_w of one stride phase r share
    # their kw taps (dz column q[t] + j, _axis_phase), so the columns j_a .. j_b
    # all of whose taps are inside dz run as tiles on one list; the others
    # (and every column when M > 1) take their own list, built once per call.
    cdef Py_ssize_t n_r = p.s_w if p.s_w < p.n_w else p.n_w
    cdef Py_ssize_t n_cols = p.n_w * p.f_w, per_thread = 2 * p.f_h + 2 * p.f_h * p.f_w
    cdef Py_ssize_t n_lists = 2 * n_cols + p.n_w + n_r * (2 * p.f_w + 3) + p.f_w
    cdef ptrdiff_t *lists = <ptrdiff_t *> _alloc((n_lists + n_threads * per_thread)
                                                 * sizeof(ptrdiff_t))
    cdef ptrdiff_t *v_in = lists
    cdef ptrdiff_t *v_w = lists + n_cols
    cdef ptrdiff_t *cnt = lists + 2 * n_cols
    cdef ptrdiff_t *ph = cnt + p.n_w          # per phase: n_kw, j_a, j_b
    cdef ptrdiff_t *ph_in = ph + 3 * n_r      # per phase: f_w input offsets, then f_w weight
    cdef ptrdiff_t *q = ph_in + 2 * n_r * p.f_w
    cdef ptrdiff_t *h_in
    cdef ptrdiff_t *h_w
    cdef ptrdiff_t *t_in
    cdef ptrdiff_t *t_w
    cdef const floating *dzi
    cdef const floating *pf_in
    cdef floating *dxr
    cdef floating *pf_out
    cdef ptrdiff_t oh, je
    cdef bint row3 = M == 1 and p.f_w == 3 and p.s_w == 1 and p.d_w == 1
    try:
        with nogil:
            for iw in range(p.n_w):
                cnt[iw] = _axis_gather(iw, p.s_w, p.p_l, p.d_w, p.o_w, p.f_w, p.z_ps, p.w_ts,
                                       v_in + iw * p.f_w, v_w + iw * p.f_w)
            for r in range(n_r):
                ph[3 * r] = _axis_phase(r, p.s_w, p.p_l, p.d_w, p.f_w, p.z_ps, p.w_ts, q,
                                        ph_in + 2 * r * p.f_w, ph_in + (2 * r + 1) * p.f_w)
                _phase_interior(&p, r, q, ph[3 * r], &ph[3 * r + 1], &ph[3 * r + 2])
                if M > 1:   # the multiplier's scalar form: every column an edge column
                    ph[3 * r + 2] = ph[3 * r + 1]
            with parallel(num_threads=n_threads):
                h_in = lists + n_lists + threadid() * per_thread
                h_w = h_in + p.f_h
                t_in = h_w + p.f_h
                t_w = t_in + p.f_h * p.f_w
                for row in prange(p.m * p.n_h, schedule="static"):
                    i = row // p.n_h
                    ih = row % p.n_h
                    dzi = &dz[i, 0, 0, 0]
                    dxr = &dx[i, ih, 0, 0]
                    nh = _axis_gather(ih, p.s_h, p.p_t, p.d_h, p.o_h, p.f_h, p.z_rs,
                                      p.f_w * p.w_ts, h_in, h_w)
                    if row3:
                        # the next dx row's new dz row (its k = 0 row), and that row
                        oh = ih + 1 + p.p_t if p.s_h == 1 and p.d_h == 1 else p.o_h
                        pf_in = dzi + oh * p.z_rs if ih + 1 < p.n_h and 0 <= oh < p.o_h else NULL
                        pf_out = dxr + p.x_rs if ih + 1 < p.n_h else NULL
                        if _dwc_row3(-1, dzi, p.z_ps, p.o_w, p.p_l, &w[0, 0, 0, 0], h_in, h_w,
                                     nh, p.w_ts, NULL, dxr, p.x_ps, p.n_w, p.c_in, 0, pf_in,
                                     pf_out):
                            continue
                    # the dz row the next dx row adds (if any), and that dx row
                    oh = (ih + 1 + p.p_t) // p.s_h
                    pf_in = (dzi + oh * p.z_rs if ih + 1 < p.n_h and oh < p.o_h
                             and oh > (ih + p.p_t) // p.s_h else NULL)
                    pf_out = dxr + p.x_rs if ih + 1 < p.n_h else NULL
                    for r in range(n_r):
                        if ph[3 * r + 2] > ph[3 * r + 1]:
                            nt = _taps(h_in, h_w, nh, ph_in + 2 * r * p.f_w,
                                       ph_in + (2 * r + 1) * p.f_w, ph[3 * r], t_in, t_w)
                            if row3:
                                _dwc_run3(-1, dzi + ph[3 * r + 1] * p.z_ps, p.z_ps,
                                          &w[0, 0, 0, 0], ph_in[2 * r * p.f_w], h_in, h_w, nh,
                                          p.w_ts, t_in, t_w, nt, NULL,
                                          dxr + (r + ph[3 * r + 1] * p.s_w) * p.x_ps, p.x_ps,
                                          ph[3 * r + 2] - ph[3 * r + 1], p.c_in, 0)
                            else:
                                for j in range(ph[3 * r + 1], ph[3 * r + 2], 8):
                                    je = j + 8 if j + 8 < ph[3 * r + 2] else ph[3 * r + 2]
                                    _dwc_run(dzi + j * p.z_ps, p.z_ps, &w[0, 0, 0, 0], t_in, t_w,
                                             nt, NULL, dxr + (r + j * p.s_w) * p.x_ps,
                                             p.s_w * p.x_ps, je - j, p.c_in, 0)
                                    if r == 0:   # phase 0's pixels spread the prefetches
                                        _dwc_prefetch_share(pf_in, p.z_rs * sizeof(floating),
                                                            j - ph[1], je - ph[1], ph[2] - ph[1], 0)
                                        _dwc_prefetch_share(pf_out, p.x_rs * sizeof(floating),
                                                            j - ph[1], je - ph[1], ph[2] - ph[1], 1)
                        for j in range((p.n_w - r + p.s_w - 1) // p.s_w):
                            if j < ph[3 * r + 1] or j >= ph[3 * r + 2]:
                                iw = r + j * p.s_w
                                _dwc_pixel_dx(dzi, &w[0, 0, 0, 0], h_in, h_w, nh,
                                              v_in + iw * p.f_w, v_w + iw * p.f_w, cnt[iw],
                                              dxr + iw * p.x_ps, p.c_in, M)
    finally:
        PyMem_Free(lists)


def depthwise_backward_dw(const floating[:, :, :, ::1] x,      # IN  (m, n_h, n_w, c_in)
                          const floating[:, :, :, ::1] dz,     # IN  (m, o_h, o_w, c_out)
                          floating[:, :, :, ::1] dw,           # OUT (f_h, f_w, 1, c_out)
                          floating[::1] db,                    # OUT (c_out,)
                          Py_ssize_t s_h, Py_ssize_t s_w,
                          Py_ssize_t p_t, Py_ssize_t p_l, Py_ssize_t d_h, Py_ssize_t d_w,
                          int num_threads):
    """Depthwise dw and db: chunks of output rows, partial sums merged in chunk order.

    Parameters
    ----------
    x, dz : C-contiguous memoryviews, non-empty
    dw, db : C-contiguous memoryviews
        Fully overwritten.
    s_h, s_w, p_t, p_l, d_h, d_w, num_threads
        As for :func:`conv2d_forward`.
    """
    cdef cyc_conv_params p = _params(x, dz, dw, s_h, s_w, p_t, p_l, d_h, d_w, x.shape[3])
    cdef Py_ssize_t M = p.c_out // p.c_in, rows = p.m * p.o_h
    # Rows per chunk, from the shapes alone: about 4096 output pixels, and at
    # least 8 chunks when there are rows enough (so threads have work).
    cdef Py_ssize_t R = max(1, min(4096 // p.o_w, (rows + 7) // 8))
    cdef Py_ssize_t n_chunks = (rows + R - 1) // R, taps = p.f_h * p.f_w
    cdef Py_ssize_t T = (taps + 1) * p.c_out            # a chunk's dw, then its db
    cdef int n_threads = _threads_for(num_threads, <double> dz.size * taps)
    cdef floating *part = <floating *> _alloc(n_chunks * T * sizeof(floating))
    cdef floating *pc
    cdef floating *dwp = &dw[0, 0, 0, 0]
    cdef Py_ssize_t ch, row, i, oh, j
    cdef ptrdiff_t ow_a, ow_b
    cdef bint row3 = M == 1 and p.f_w == 3 and p.s_w == 1 and p.d_w == 1
    _interior(p.p_l, p.f_w, p.d_w, p.s_w, p.n_w, p.o_w, &ow_a, &ow_b)
    try:
        with nogil:
            for ch in prange(n_chunks, num_threads=n_threads, schedule="static"):
                pc = part + ch * T
                memset(pc, 0, T * sizeof(floating))
                for row in range(ch * R, min(rows, (ch + 1) * R)):
                    i = row // p.o_h
                    oh = row % p.o_h
                    _dwc_dw_row(&p, &x[i, 0, 0, 0], &dz[i, 0, 0, 0], pc, oh, M, ow_a, ow_b, row3)
                    _db_rows(&dz[0, 0, 0, 0], pc + taps * p.c_out, row * p.o_w, (row + 1) * p.o_w,
                             p.c_out)
            for j in range(taps * p.c_out):
                dwp[j] = part[j]
            for j in range(p.c_out):
                db[j] = part[taps * p.c_out + j]
            for ch in range(1, n_chunks):    # in chunk order, whatever the threads
                pc = part + ch * T
                for j in range(taps * p.c_out):
                    dwp[j] += pc[j]
                for j in range(p.c_out):
                    db[j] += pc[taps * p.c_out + j]
    finally:
        PyMem_Free(part)
