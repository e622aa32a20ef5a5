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
 * GCC's auto-vectoriser does not keep such a tile in registers (it vectorised
 * a Cython tile across pixels with gathers), so the tile is written with
 * GCC/Clang vector extensions: one source, compiled for the vector width
 * CYCONV_VBYTES of each CPU level the build targets (16 bytes = SSE2 at the
 * x86-64 baseline, 32 = AVX2, 64 = AVX-512). Loops over rows, tiles, blocks
 * and threads stay in Cython (_conv.pxi).
 */
#ifndef CYCONV_CONV_SIMD_H
#define CYCONV_CONV_SIMD_H

#include <stddef.h>
#include <string.h>

#ifndef CYCONV_VBYTES
#define CYCONV_VBYTES 16
#endif

#define CYC_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Largest tile: P pixels for NV = 1 and NV = 2 vectors per pixel. */
enum { CYC_MR1 = 8, CYC_MR2 = 6 };

#define CYCONV_DEFINE_CONV_TILE(T, SUF)                                              \
typedef T cyc_v##SUF __attribute__((vector_size(CYCONV_VBYTES)));                   \
enum { CYC_NL_##SUF = CYCONV_VBYTES / sizeof(T) };                                  \
                                                                                     \
CYC_ALWAYS_INLINE cyc_v##SUF cyc_load_##SUF(const T *p) {                           \
    cyc_v##SUF v; memcpy(&v, p, sizeof v); return v;                                 \
}                                                                                    \
CYC_ALWAYS_INLINE void cyc_store_##SUF(T *p, cyc_v##SUF v) { memcpy(p, &v, sizeof v); } \
                                                                                     \
/* init: 0 = zeros, 1 = the NB values at `bias` for every pixel. */                \
CYC_ALWAYS_INLINE void cyc_tile_##SUF##_body(                                        \
        const int P, const int NV,                                                   \
        const T *in, ptrdiff_t base, ptrdiff_t in_ps, ptrdiff_t in_ks,               \
        const T *w, ptrdiff_t w_ks,                                                  \
        const ptrdiff_t *in_off, const ptrdiff_t *w_off,                             \
        ptrdiff_t ntaps, ptrdiff_t K,                                                \
        T *out, ptrdiff_t out_ps, int nch, const T *bias) {                          \
    enum { NL = CYC_NL_##SUF };                                                      \
    cyc_v##SUF acc[CYC_MR1][2];                                                      \
    cyc_v##SUF b0 = {0}, b1 = {0};                                                   \
    if (bias) {                                                                      \
        b0 = cyc_load_##SUF(bias);                                                   \
        if (NV > 1) b1 = cyc_load_##SUF(bias + NL);                                  \
    }                                                                                \
    _Pragma("GCC unroll 8")                                                          \
    for (int p = 0; p < P; p++) { acc[p][0] = b0; acc[p][1] = b1; }                  \
    for (ptrdiff_t t = 0; t < ntaps; t++) {                                          \
        const T *ip = in + (base + in_off[t]);                                       \
        const T *wp = w + w_off[t];                                                  \
        for (ptrdiff_t k = 0; k < K; k++) {                                          \
            cyc_v##SUF w0 = cyc_load_##SUF(wp);                                      \
            cyc_v##SUF w1 = {0};                                                     \
            if (NV > 1) w1 = cyc_load_##SUF(wp + NL);                                \
            _Pragma("GCC unroll 8")                                                  \
            for (int p = 0; p < P; p++) {                                            \
                T xv = ip[p * in_ps];                                                \
                acc[p][0] += xv * w0;                                                \
                if (NV > 1) acc[p][1] += xv * w1;                                    \
            }                                                                        \
            ip += in_ks;                                                             \
            wp += w_ks;                                                              \
        }                                                                            \
    }                                                                                \
    if (nch == NV * NL) {                                                            \
        _Pragma("GCC unroll 8")                                                      \
        for (int p = 0; p < P; p++) {                                                \
            cyc_store_##SUF(out + p * out_ps, acc[p][0]);                            \
            if (NV > 1) cyc_store_##SUF(out + p * out_ps + NL, acc[p][1]);           \
        }                                                                            \
    } else {                                                                         \
        T buf[2 * NL];                                                               \
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
static void cyc_tile_##SUF(int P, int NV,                                            \
        const T *in, ptrdiff_t base, ptrdiff_t in_ps, ptrdiff_t in_ks,               \
        const T *w, ptrdiff_t w_ks,                                                  \
        const ptrdiff_t *in_off, const ptrdiff_t *w_off,                             \
        ptrdiff_t ntaps, ptrdiff_t K,                                                \
        T *out, ptrdiff_t out_ps, int nch, const T *bias) {                          \
    _Pragma("GCC diagnostic push")                                                   \
    _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")                     \
    switch (NV * 16 + P) {                                                           \
    CYC_CASE(T, SUF, 1, 1) CYC_CASE(T, SUF, 1, 2) CYC_CASE(T, SUF, 1, 3)             \
    CYC_CASE(T, SUF, 1, 4) CYC_CASE(T, SUF, 1, 5) CYC_CASE(T, SUF, 1, 6)             \
    CYC_CASE(T, SUF, 1, 7) CYC_CASE(T, SUF, 1, 8)                                    \
    CYC_CASE(T, SUF, 2, 1) CYC_CASE(T, SUF, 2, 2) CYC_CASE(T, SUF, 2, 3)             \
    CYC_CASE(T, SUF, 2, 4) CYC_CASE(T, SUF, 2, 5) CYC_CASE(T, SUF, 2, 6)             \
    default: break;                                                                  \
    }                                                                                \
    _Pragma("GCC diagnostic pop")                                                    \
}

#define CYC_CASE(T, SUF, NV, P)                                                      \
    case NV * 16 + P:                                                                \
        cyc_tile_##SUF##_body(P, NV, in, base, in_ps, in_ks, w, w_ks, in_off, w_off, \
                              ntaps, K, out, out_ps, nch, bias);                     \
        break;

CYCONV_DEFINE_CONV_TILE(float, f32)
CYCONV_DEFINE_CONV_TILE(double, f64)

/* Lanes per vector for each type, and the largest tile for NV vectors. */
static inline int cyc_lanes_f32(void) { return CYC_NL_f32; }
static inline int cyc_lanes_f64(void) { return CYC_NL_f64; }
static inline int cyc_max_pixels(int nv) { return nv == 1 ? CYC_MR1 : CYC_MR2; }

#endif
