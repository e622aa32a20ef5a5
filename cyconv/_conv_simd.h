/* Convolution micro-kernel: one register tile of P pixels x NV vectors of
 * channels, accumulated over a list of taps and K products per tap.
 *
 * All three convolution passes are this one loop with different strides:
 *
 *   acc[p][c] = init[p][c] + sum_{t < ntaps} sum_{k < K}
 *               in[base + in_off[t] + p * in_ps + k * in_ks] * w[w_off[t] + k * w_ks + c]
 *
 *   forward: pixels = output columns, k = input channel,  w = filters packed (tap, c_in, NB)
 *   dx:      pixels = input columns of one stride phase, k = output channel,
 *            w = filters packed (tap, c_out, NB) per block of input channels
 *   dw:      "pixels" = input channels, k = output column, taps = output rows,
 *            w = dz packed (row, column, NB) per block of output channels
 *
 * The weights side is always packed into blocks of NB = NV * lanes channels,
 * zero-padded, so every vector load is whole; only the store of a partial
 * block (nch < NB) goes through a small buffer. The sums run in the order
 * (t, k) for every element, whatever P and NV, so a result depends on the
 * shapes alone, never on the tiling or the thread count.
 *
 * The tile's initial value and its store are its epilogue (cyc_epilogue):
 * zeros, a bias block, or the values already in out (accumulate: a long sum
 * split into pieces without changing a single rounding); activation is a
 * post-op on the store (none yet).
 *
 * GCC's auto-vectoriser does not keep such a tile in registers (it vectorised
 * a Cython tile across pixels with gathers), so the tile is written with
 * GCC/Clang vector extensions. This header is compiled into one module per
 * CPU level (setup.py, from the list in cyconv/_levels.py), with that level's
 * compiler features and the constants of its row of the table (_levels.h):
 * vector width CYC_VBYTES, largest tile CYC_MR1 / CYC_MR2 pixels for 1 / 2
 * vectors, the dot tile CYC_DOT_MP x CYC_DOT_MC. Loops over rows, tiles,
 * blocks and threads stay in Cython (_conv.pyx).
 */
#ifndef CYCONV_CONV_SIMD_H
#define CYCONV_CONV_SIMD_H

#include <stddef.h>
#include <string.h>

#include "_levels.h"

#define CYC_INLINE static inline __attribute__((always_inline))
/* The tile and the dot tile are called, not inlined or specialised: GCC's
 * clones for constant arguments (dw's unit pixel stride) load the pixels as
 * vectors and permute them, measured 20-30 % slower for float64 dw (S2, S7)
 * than the generic body's broadcast loads. */
#if defined(__clang__)
#define CYC_CALLED static __attribute__((noinline))
#else
#define CYC_CALLED static __attribute__((noinline, noclone))
#endif

/* The tile's switch below has cases for up to CYC_TILE_MAX1 pixels (1 vector)
 * and CYC_TILE_MAX2 (2 vectors): the largest tiles any level's row asks for. */
enum { CYC_TILE_MAX1 = 12, CYC_TILE_MAX2 = 8 };
/* Vectors of db summed side by side (cyc_db_rows). */
enum { CYC_DB_VECS = 8 };
_Static_assert(CYC_MR1 <= CYC_TILE_MAX1 && CYC_MR2 <= CYC_TILE_MAX2,
               "extend the tile's cases to the table's tiles");
_Static_assert(CYC_DOT_MP <= 4 && CYC_DOT_MC <= 3, "extend the dot tile's cases");

/* What the tile starts from and does on its store. */
enum { CYC_ACT_NONE = 0, CYC_ACT_RELU = 1 };
typedef long long cyc_bits __attribute__((vector_size(CYC_VBYTES)));
typedef struct {
    const void *bias;   /* NB values (the tile's element type), added to every pixel; or NULL */
    int accumulate;     /* start from the values in out instead of zeros or bias */
    int activation;     /* CYC_ACT_NONE, or CYC_ACT_RELU: max(v, 0) on the store (NaN stays) */
} cyc_epilogue;

/* The parameters of one convolution, filled once per call by _conv.pyx from
 * the caller's arrays and integers; every driver takes this block. Geometry
 * per axis (stride, padding before it, dilation), groups, and the element
 * strides of each operand are separate fields, so a layout or a geometry
 * rule is one field and the tap builder, not another argument everywhere.
 * "z" is the forward output, or dz in the backward passes; "x" is x or dx;
 * "w" is w or dw. */
typedef struct {
    ptrdiff_t m, n_h, n_w, c_in;          /* x: batch, height, width, channels */
    ptrdiff_t o_h, o_w, c_out;            /* z */
    ptrdiff_t f_h, f_w;                   /* filter taps */
    ptrdiff_t s_h, s_w, p_t, p_l;         /* stride; padding before each axis */
    ptrdiff_t d_h, d_w;                   /* dilation (1 so far) */
    ptrdiff_t groups;                     /* 1 so far */
    ptrdiff_t K;                          /* products per tap of one output: c_in / groups */
    ptrdiff_t x_ps, x_rs, x_is;           /* x element strides: pixel, row, image */
    ptrdiff_t z_ps, z_rs, z_is;           /* z element strides */
    ptrdiff_t w_ts, w_cs;                 /* w element strides: tap (kw), input channel */
    cyc_epilogue epi;                     /* of the forward: bias (c_out values), post-op */
} cyc_conv_params;

/* The tile's signature, declared once for every element type T. */
#define CYC_TILE_SIGNATURE(T, NAME)                                                  \
    void NAME(int P, int NV, const T *in, ptrdiff_t base, ptrdiff_t in_ps,           \
              ptrdiff_t in_ks, const T *w, ptrdiff_t w_ks, const ptrdiff_t *in_off,  \
              const ptrdiff_t *w_off, ptrdiff_t ntaps, ptrdiff_t K, T *out,          \
              ptrdiff_t out_ps, int nch, cyc_epilogue epi)
#define CYC_DOT_SIGNATURE(T, NAME)                                                   \
    void NAME(int P, int C, const T *in, ptrdiff_t base, ptrdiff_t in_ps,            \
              const T *w, ptrdiff_t w_cs, const ptrdiff_t *in_off,                   \
              const ptrdiff_t *w_off, ptrdiff_t ntaps, ptrdiff_t K, T *out,          \
              ptrdiff_t out_ps)

/* The tile for element type T (suffix SUF) at this module's vector width. */
#define CYCONV_DEFINE_CONV_TILE(T, SUF)                                              \
typedef T cyc_v##SUF __attribute__((vector_size(CYC_VBYTES)));                      \
enum { CYC_NL_##SUF = CYC_VBYTES / sizeof(T) };                                     \
                                                                                     \
CYC_INLINE cyc_v##SUF cyc_load_##SUF(const T *p) {                                  \
    cyc_v##SUF v; memcpy(&v, p, sizeof v); return v;                                 \
}                                                                                    \
CYC_INLINE void cyc_store_##SUF(T *p, cyc_v##SUF v) { memcpy(p, &v, sizeof v); }    \
                                                                                     \
/* db[c] += dz[j, c] for the pixels j = p0 .. p1 - 1, in order: each vector   */ \
/* of db stays in a register over the rows (a running sum in memory is a      */ \
/* store-to-load chain per row: measured 3x slower for 8 float64 channels),   */ \
/* CYC_DB_VECS vectors side by side so that their chains of adds overlap.     */ \
static void cyc_db_rows_##SUF(const T *restrict dz, T *restrict db, ptrdiff_t p0,    \
                              ptrdiff_t p1, ptrdiff_t c_out) {                       \
    enum { NL = CYC_NL_##SUF, NA = CYC_DB_VECS };                                    \
    ptrdiff_t co = 0;                                                                \
    for (; co + NA * NL <= c_out; co += NA * NL) {                                   \
        cyc_v##SUF acc[NA];                                                          \
        _Pragma("GCC unroll 8")                                                      \
        for (int a = 0; a < NA; a++) acc[a] = cyc_load_##SUF(db + co + a * NL);      \
        for (ptrdiff_t j = p0; j < p1; j++) {                                        \
            _Pragma("GCC unroll 8")                                                  \
            for (int a = 0; a < NA; a++)                                             \
                acc[a] += cyc_load_##SUF(dz + j * c_out + co + a * NL);              \
        }                                                                            \
        _Pragma("GCC unroll 8")                                                      \
        for (int a = 0; a < NA; a++) cyc_store_##SUF(db + co + a * NL, acc[a]);      \
    }                                                                                \
    for (; co + NL <= c_out; co += NL) {                                             \
        cyc_v##SUF acc = cyc_load_##SUF(db + co);                                    \
        for (ptrdiff_t j = p0; j < p1; j++)                                          \
            acc += cyc_load_##SUF(dz + j * c_out + co);                              \
        cyc_store_##SUF(db + co, acc);                                               \
    }                                                                                \
    for (; co < c_out; co++) {                                                       \
        T acc = db[co];                                                              \
        for (ptrdiff_t j = p0; j < p1; j++)                                          \
            acc += dz[j * c_out + co];                                               \
        db[co] = acc;                                                                \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* The body for constant P and NV (the dispatcher below inlines one per case). */ \
CYC_INLINE CYC_TILE_SIGNATURE(T, cyc_tile_##SUF##_body) {                            \
    enum { NL = CYC_NL_##SUF };                                                      \
    const T *bias = (const T *)epi.bias;                                             \
    cyc_v##SUF acc[CYC_TILE_MAX1][2];                                                \
    if (epi.accumulate) {                                                            \
        T buf[2 * NL];                                                               \
        memset(buf, 0, sizeof buf);                                                  \
        _Pragma("GCC unroll 16")                                                     \
        for (int p = 0; p < P; p++) {                                                \
            const T *src = out + p * out_ps;                                         \
            if (nch != NV * NL) { memcpy(buf, src, (size_t)nch * sizeof(T)); src = buf; } \
            acc[p][0] = cyc_load_##SUF(src);                                         \
            acc[p][1] = NV > 1 ? cyc_load_##SUF(src + NL) : (cyc_v##SUF){0};         \
        }                                                                            \
    } else {                                                                         \
        cyc_v##SUF b0 = {0}, b1 = {0};                                               \
        if (bias) {                                                                  \
            b0 = cyc_load_##SUF(bias);                                               \
            if (NV > 1) b1 = cyc_load_##SUF(bias + NL);                              \
        }                                                                            \
        _Pragma("GCC unroll 16")                                                     \
        for (int p = 0; p < P; p++) { acc[p][0] = b0; acc[p][1] = b1; }              \
    }                                                                                \
    for (ptrdiff_t t = 0; t < ntaps; t++) {                                          \
        const T *ip = in + (base + in_off[t]);                                       \
        const T *wp = w + w_off[t];                                                  \
        for (ptrdiff_t k = 0; k < K; k++) {                                          \
            cyc_v##SUF w0 = cyc_load_##SUF(wp);                                      \
            cyc_v##SUF w1 = {0};                                                     \
            if (NV > 1) w1 = cyc_load_##SUF(wp + NL);                                \
            _Pragma("GCC unroll 16")                                                 \
            for (int p = 0; p < P; p++) {                                            \
                T xv = ip[p * in_ps];                                                \
                acc[p][0] += xv * w0;                                                \
                if (NV > 1) acc[p][1] += xv * w1;                                    \
            }                                                                        \
            ip += in_ks;                                                             \
            wp += w_ks;                                                              \
        }                                                                            \
    }                                                                                \
    if (epi.activation == CYC_ACT_RELU) {                                            \
        /* v <= 0 ? +0 : v, so -0 becomes +0 and NaN passes (as the layers' ReLU) */ \
        _Pragma("GCC unroll 16")                                                     \
        for (int p = 0; p < P; p++)                                                  \
            for (int j = 0; j < NV; j++)                                             \
                acc[p][j] = (cyc_v##SUF)(~(cyc_bits)(acc[p][j] <= 0)                 \
                                         & (cyc_bits)acc[p][j]);                     \
    }                                                                                \
    if (nch == NV * NL) {                                                            \
        _Pragma("GCC unroll 16")                                                     \
        for (int p = 0; p < P; p++) {                                                \
            cyc_store_##SUF(out + p * out_ps, acc[p][0]);                            \
            if (NV > 1) cyc_store_##SUF(out + p * out_ps + NL, acc[p][1]);           \
        }                                                                            \
    } else {                                                                         \
        T buf[2 * NL];                                                               \
        _Pragma("GCC unroll 16")                                                     \
        for (int p = 0; p < P; p++) {                                                \
            cyc_store_##SUF(buf, acc[p][0]);                                         \
            if (NV > 1) cyc_store_##SUF(buf + NL, acc[p][1]);                        \
            memcpy(out + p * out_ps, buf, (size_t)nch * sizeof(T));                  \
        }                                                                            \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* The tile for run-time P (1 .. CYC_MR<NV>) and NV (1 or 2), each case       */   \
/* compiled with constant bounds so the accumulators live in registers.      */   \
CYC_CALLED CYC_TILE_SIGNATURE(T, cyc_tile_##SUF) {                                   \
    _Pragma("GCC diagnostic push")                                                   \
    _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")                     \
    switch (NV * 16 + P) {                                                           \
    CYC_CASE(T, SUF, 1, 1) CYC_CASE(T, SUF, 1, 2) CYC_CASE(T, SUF, 1, 3)             \
    CYC_CASE(T, SUF, 1, 4) CYC_CASE(T, SUF, 1, 5) CYC_CASE(T, SUF, 1, 6)             \
    CYC_CASE(T, SUF, 1, 7) CYC_CASE(T, SUF, 1, 8) CYC_CASE(T, SUF, 1, 9)             \
    CYC_CASE(T, SUF, 1, 10) CYC_CASE(T, SUF, 1, 11) CYC_CASE(T, SUF, 1, 12)          \
    CYC_CASE(T, SUF, 2, 1) CYC_CASE(T, SUF, 2, 2) CYC_CASE(T, SUF, 2, 3)             \
    CYC_CASE(T, SUF, 2, 4) CYC_CASE(T, SUF, 2, 5) CYC_CASE(T, SUF, 2, 6)             \
    CYC_CASE(T, SUF, 2, 7) CYC_CASE(T, SUF, 2, 8)                                    \
    default: break;                                                                  \
    }                                                                                \
    _Pragma("GCC diagnostic pop")                                                    \
}

#define CYC_CASE(T, SUF, NV, P)                                                      \
    case NV * 16 + P:                                                                \
        cyc_tile_##SUF##_body(P, NV, in, base, in_ps, in_ks, w, w_ks, in_off, w_off, \
                              ntaps, K, out, out_ps, nch, epi);                      \
        break;

/* The dot-product tile, for dx of layers with few input channels (the tile
 * above would leave most lanes of a vector over c_in empty): P dx pixels x C
 * input channels, each a vector over output channels, summed over the taps
 * and the K output channels (K a multiple of the lanes), then reduced across
 * the lanes in lane order:
 *
 *   out[p * out_ps + c] = sum_t sum_k in[base + in_off[t] + p * in_ps + k]
 *                                     * w[w_off[t] + c * w_cs + k]
 */
#define CYCONV_DEFINE_DOT_TILE(T, SUF)                                                \
CYC_INLINE CYC_DOT_SIGNATURE(T, cyc_dot_##SUF##_body) {                              \
    enum { NL = CYC_NL_##SUF };                                                      \
    cyc_v##SUF acc[CYC_DOT_MP][CYC_DOT_MC];                                          \
    _Pragma("GCC unroll 4")                                                          \
    for (int p = 0; p < P; p++)                                                      \
        _Pragma("GCC unroll 4")                                                      \
        for (int c = 0; c < C; c++) acc[p][c] = (cyc_v##SUF){0};                     \
    for (ptrdiff_t t = 0; t < ntaps; t++) {                                          \
        const T *ip = in + (base + in_off[t]);                                       \
        const T *wp = w + w_off[t];                                                  \
        for (ptrdiff_t k = 0; k < K; k += NL) {                                      \
            cyc_v##SUF wv[CYC_DOT_MC];                                               \
            _Pragma("GCC unroll 4")                                                  \
            for (int c = 0; c < C; c++) wv[c] = cyc_load_##SUF(wp + c * w_cs + k);   \
            _Pragma("GCC unroll 4")                                                  \
            for (int p = 0; p < P; p++) {                                            \
                cyc_v##SUF d = cyc_load_##SUF(ip + p * in_ps + k);                   \
                _Pragma("GCC unroll 4")                                              \
                for (int c = 0; c < C; c++) acc[p][c] += d * wv[c];                  \
            }                                                                        \
        }                                                                            \
    }                                                                                \
    for (int p = 0; p < P; p++)                                                      \
        for (int c = 0; c < C; c++) {                                                \
            T lanes[NL], sum = 0;                                                    \
            cyc_store_##SUF(lanes, acc[p][c]);                                       \
            for (int l = 0; l < NL; l++) sum += lanes[l];                            \
            out[p * out_ps + c] = sum;                                               \
        }                                                                            \
}                                                                                    \
                                                                                     \
CYC_CALLED CYC_DOT_SIGNATURE(T, cyc_dot_##SUF) {                                     \
    switch (C * 16 + P) {                                                            \
    CYC_DOT_CASE(SUF, 1, 1) CYC_DOT_CASE(SUF, 1, 2) CYC_DOT_CASE(SUF, 1, 3)          \
    CYC_DOT_CASE(SUF, 1, 4) CYC_DOT_CASE(SUF, 2, 1) CYC_DOT_CASE(SUF, 2, 2)          \
    CYC_DOT_CASE(SUF, 2, 3) CYC_DOT_CASE(SUF, 2, 4) CYC_DOT_CASE(SUF, 3, 1)          \
    CYC_DOT_CASE(SUF, 3, 2) CYC_DOT_CASE(SUF, 3, 3) CYC_DOT_CASE(SUF, 3, 4)          \
    default: break;                                                                  \
    }                                                                                \
}

#define CYC_DOT_CASE(SUF, C, P)                                                      \
    case C * 16 + P:                                                                 \
        cyc_dot_##SUF##_body(P, C, in, base, in_ps, w, w_cs, in_off, w_off,         \
                             ntaps, K, out, out_ps);                                 \
        break;

/* dw's packers. A dw tile reads, per output pixel, P consecutive x values
 * (P (kw, ci) pairs) and NB dz values (a block of output channels); in
 * NHWC both sit one pixel (c_in or c_out values) apart from the next
 * pixel's, so a tile would touch a new cache line, and every other a new
 * page, per pixel. The drivers copy them first into unit-stride panels that
 * the tile streams: values moved, never changed, so the sums are the same.
 *
 * x slab: dst[(t * K + k) * P + p] = x[in_off[t] + k * in_ks + p], t < nt,
 *         k < K, p < P (the tile's taps and columns, its pairs).
 * dz blocks: dst[(b * n + j) * nb + c] = dz[j * ld + b * nb + c] for the
 *         pixels j < n and blocks b < nblk, zero where b * nb + c >= c (the
 *         channels there are). */
#define CYCONV_DEFINE_DW_PACK(T, SUF)                                                \
CYC_INLINE void cyc_pack_slab_##SUF##_body(int P, const T *restrict x,              \
        const ptrdiff_t *in_off, ptrdiff_t nt, ptrdiff_t K, ptrdiff_t in_ks,         \
        T *restrict dst) {                                                           \
    for (ptrdiff_t t = 0; t < nt; t++) {                                             \
        const T *src = x + in_off[t];                                                \
        for (ptrdiff_t k = 0; k < K; k++, dst += P, src += in_ks)                    \
            memcpy(dst, src, (size_t)P * sizeof(T));                                 \
    }                                                                                \
}                                                                                    \
                                                                                     \
static void cyc_pack_slab_##SUF(int P, const T *x, const ptrdiff_t *in_off,          \
                                ptrdiff_t nt, ptrdiff_t K, ptrdiff_t in_ks, T *dst) {\
    switch (P) {   /* a constant P: the copies become a few vector moves */         \
    case 1: cyc_pack_slab_##SUF##_body(1, x, in_off, nt, K, in_ks, dst); break;      \
    case 2: cyc_pack_slab_##SUF##_body(2, x, in_off, nt, K, in_ks, dst); break;      \
    case 3: cyc_pack_slab_##SUF##_body(3, x, in_off, nt, K, in_ks, dst); break;      \
    case 4: cyc_pack_slab_##SUF##_body(4, x, in_off, nt, K, in_ks, dst); break;      \
    case 5: cyc_pack_slab_##SUF##_body(5, x, in_off, nt, K, in_ks, dst); break;      \
    case 6: cyc_pack_slab_##SUF##_body(6, x, in_off, nt, K, in_ks, dst); break;      \
    case 7: cyc_pack_slab_##SUF##_body(7, x, in_off, nt, K, in_ks, dst); break;      \
    case 8: cyc_pack_slab_##SUF##_body(8, x, in_off, nt, K, in_ks, dst); break;      \
    case 9: cyc_pack_slab_##SUF##_body(9, x, in_off, nt, K, in_ks, dst); break;    \
    case 10: cyc_pack_slab_##SUF##_body(10, x, in_off, nt, K, in_ks, dst); break;    \
    case 11: cyc_pack_slab_##SUF##_body(11, x, in_off, nt, K, in_ks, dst); break;    \
    case 12: cyc_pack_slab_##SUF##_body(12, x, in_off, nt, K, in_ks, dst); break;    \
    default: cyc_pack_slab_##SUF##_body(P, x, in_off, nt, K, in_ks, dst); break;     \
    }                                                                                \
}                                                                                    \
                                                                                     \
static void cyc_pack_dz_##SUF(const T *restrict dz, ptrdiff_t ld, ptrdiff_t n,        \
                              ptrdiff_t c, int nb, ptrdiff_t nblk, T *restrict dst) { \
    /* pixel by pixel: each pixel's row of dz is read once, front to back */        \
    enum { NL = CYC_NL_##SUF };                                                      \
    ptrdiff_t full = c / nb < nblk ? c / nb : nblk;                                  \
    for (ptrdiff_t j = 0; j < n; j++) {                                              \
        const T *src = dz + j * ld;                                                  \
        T *out = dst + j * nb;                                                       \
        ptrdiff_t b = 0;                                                             \
        if (nb == 2 * NL) {                                                          \
            for (; b < full; b++) {                                                  \
                cyc_store_##SUF(out + b * n * nb, cyc_load_##SUF(src + b * nb));     \
                cyc_store_##SUF(out + b * n * nb + NL, cyc_load_##SUF(src + b * nb + NL)); \
            }                                                                        \
        } else if (nb == NL) {                                                       \
            for (; b < full; b++)                                                    \
                cyc_store_##SUF(out + b * n * nb, cyc_load_##SUF(src + b * nb));     \
        }                                                                            \
        for (; b < nblk; b++) {                                                      \
            ptrdiff_t nch = c - b * nb < nb ? c - b * nb : nb;                       \
            memset(out + b * n * nb, 0, (size_t)nb * sizeof(T));                     \
            if (nch > 0) memcpy(out + b * n * nb, src + b * nb, (size_t)nch * sizeof(T)); \
        }                                                                            \
    }                                                                                \
}

CYCONV_DEFINE_CONV_TILE(float, f32)
CYCONV_DEFINE_CONV_TILE(double, f64)
CYCONV_DEFINE_DW_PACK(float, f32)
CYCONV_DEFINE_DW_PACK(double, f64)
CYCONV_DEFINE_DOT_TILE(float, f32)   /* the dot form serves float32 only (measured) */

/* This level's row of the table, for the drivers. */
static inline int cyc_lanes(int itemsize) { return CYC_VBYTES / itemsize; }
static inline int cyc_max_pixels(int nv) { return nv == 1 ? CYC_MR1 : CYC_MR2; }

#endif
