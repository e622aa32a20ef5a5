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
 * GCC/Clang vector extensions: one source, compiled once per CPU level with
 * that level's vector width (16 bytes = SSE2 at the x86-64 baseline, 32 =
 * AVX2 + FMA, 64 = AVX-512) through target() attributes, so the default build
 * needs no -march flag. Loops over rows, tiles, blocks and threads stay in
 * Cython (_conv.pyx), which calls the selected level through a pointer.
 */
#ifndef CYCONV_CONV_SIMD_H
#define CYCONV_CONV_SIMD_H

#include <stddef.h>
#include <string.h>

#define CYC_INLINE(ATTR) static inline __attribute__((always_inline)) ATTR

/* Largest tile: P pixels for NV = 1 and NV = 2 vectors per pixel. */
enum { CYC_MR1 = 8, CYC_MR2 = 6 };

/* One variant of the tile: element type T, vector width VBYTES, compiled
 * with the function attribute ATTR (a target() for the CPU level, or none). */
#define CYCONV_DEFINE_CONV_TILE(T, SUF, VBYTES, ATTR)                                \
typedef T cyc_v##SUF __attribute__((vector_size(VBYTES)));                          \
enum { CYC_NL_##SUF = VBYTES / sizeof(T) };                                         \
                                                                                     \
CYC_INLINE(ATTR) cyc_v##SUF cyc_load_##SUF(const T *p) {                            \
    cyc_v##SUF v; memcpy(&v, p, sizeof v); return v;                                 \
}                                                                                    \
CYC_INLINE(ATTR) void cyc_store_##SUF(T *p, cyc_v##SUF v) { memcpy(p, &v, sizeof v); } \
                                                                                     \
/* init: bias == NULL and !accumulate: zeros; bias: its NB values for every */  \
/* pixel; accumulate: the values already in out (so a long sum can be split */ \
/* into pieces without changing a single rounding).                          */             \
CYC_INLINE(ATTR) void cyc_tile_##SUF##_body(                                         \
        const int P, const int NV,                                                   \
        const T *in, ptrdiff_t base, ptrdiff_t in_ps, ptrdiff_t in_ks,               \
        const T *w, ptrdiff_t w_ks,                                                  \
        const ptrdiff_t *in_off, const ptrdiff_t *w_off,                             \
        ptrdiff_t ntaps, ptrdiff_t K,                                                \
        T *out, ptrdiff_t out_ps, int nch, const T *bias, int accumulate) {          \
    enum { NL = CYC_NL_##SUF };                                                      \
    cyc_v##SUF acc[CYC_MR1][2];                                                      \
    if (accumulate) {                                                                \
        T buf[2 * NL];                                                               \
        memset(buf, 0, sizeof buf);                                                  \
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
        _Pragma("GCC unroll 8")                                                      \
        for (int p = 0; p < P; p++) { acc[p][0] = b0; acc[p][1] = b1; }              \
    }                                                                                \
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
static ATTR void cyc_tile_##SUF(int P, int NV,                                            \
        const T *in, ptrdiff_t base, ptrdiff_t in_ps, ptrdiff_t in_ks,               \
        const T *w, ptrdiff_t w_ks,                                                  \
        const ptrdiff_t *in_off, const ptrdiff_t *w_off,                             \
        ptrdiff_t ntaps, ptrdiff_t K,                                                \
        T *out, ptrdiff_t out_ps, int nch, const T *bias, int accumulate) {          \
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
                              ntaps, K, out, out_ps, nch, bias, accumulate);         \
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
#define CYCONV_DEFINE_DOT_TILE(T, SUF, ATTR)                                          \
CYC_INLINE(ATTR) void cyc_dot_##SUF##_body(                                          \
        const int P, const int C,                                                    \
        const T *in, ptrdiff_t base, ptrdiff_t in_ps,                                \
        const T *w, ptrdiff_t w_cs,                                                  \
        const ptrdiff_t *in_off, const ptrdiff_t *w_off,                             \
        ptrdiff_t ntaps, ptrdiff_t K, T *out, ptrdiff_t out_ps) {                    \
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
static ATTR void cyc_dot_##SUF(int P, int C,                                         \
        const T *in, ptrdiff_t base, ptrdiff_t in_ps,                                \
        const T *w, ptrdiff_t w_cs,                                                  \
        const ptrdiff_t *in_off, const ptrdiff_t *w_off,                             \
        ptrdiff_t ntaps, ptrdiff_t K, T *out, ptrdiff_t out_ps) {                    \
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

/* Largest dot tile: pixels and input channels. */
enum { CYC_DOT_MP = 4, CYC_DOT_MC = 3 };

/* The CPU levels: 0 = baseline (SSE2 on x86-64, the build's own flags
 * elsewhere), 1 = x86-64-v3 (AVX2 + FMA), 2 = x86-64-v4 (AVX-512). Only the
 * tile is compiled per level (it is where the time goes); the drivers in
 * Cython are baseline code that call it through a pointer. */
enum { CYC_LEVEL_BASE = 0, CYC_LEVEL_V3 = 1, CYC_LEVEL_V4 = 2 };

CYCONV_DEFINE_CONV_TILE(float, f32_base, 16, )
CYCONV_DEFINE_CONV_TILE(double, f64_base, 16, )
CYCONV_DEFINE_DOT_TILE(float, f32_base, )

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) \
    && !defined(CYCONV_NO_CPU_DISPATCH)
#define CYC_HAVE_DISPATCH 1
#define CYC_TARGET_V3 __attribute__((target("avx,avx2,fma,bmi,bmi2,f16c")))
#define CYC_TARGET_V4 __attribute__((target( \
    "avx,avx2,fma,bmi,bmi2,f16c,avx512f,avx512bw,avx512cd,avx512dq,avx512vl")))
CYCONV_DEFINE_CONV_TILE(float, f32_v3, 32, CYC_TARGET_V3)
CYCONV_DEFINE_CONV_TILE(double, f64_v3, 32, CYC_TARGET_V3)
CYCONV_DEFINE_CONV_TILE(float, f32_v4, 64, CYC_TARGET_V4)
CYCONV_DEFINE_CONV_TILE(double, f64_v4, 64, CYC_TARGET_V4)
CYCONV_DEFINE_DOT_TILE(float, f32_v3, CYC_TARGET_V3)
CYCONV_DEFINE_DOT_TILE(float, f32_v4, CYC_TARGET_V4)

/* Highest level this CPU (and its OS: libgcc checks the saved vector state)
 * runs; the features tested are exactly those the targets above enable. */
static int cyc_cpu_max_level_old(void) {
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2")
          && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi")
          && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c")))
        return CYC_LEVEL_BASE;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
          && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
          && __builtin_cpu_supports("avx512vl")))
        return CYC_LEVEL_V3;
    return CYC_LEVEL_V4;
}
#else
#define CYC_HAVE_DISPATCH 0
static int cyc_cpu_max_level_old(void) { return CYC_LEVEL_BASE; }
#endif

typedef void (*cyc_tile_f32_t)(int, int, const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                               const float *, ptrdiff_t, const ptrdiff_t *,
                               const ptrdiff_t *, ptrdiff_t, ptrdiff_t, float *,
                               ptrdiff_t, int, const float *, int);
typedef void (*cyc_tile_f64_t)(int, int, const double *, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                               const double *, ptrdiff_t, const ptrdiff_t *,
                               const ptrdiff_t *, ptrdiff_t, ptrdiff_t, double *,
                               ptrdiff_t, int, const double *, int);

typedef void (*cyc_dot_f32_t)(int, int, const float *, ptrdiff_t, ptrdiff_t, const float *,
                              ptrdiff_t, const ptrdiff_t *, const ptrdiff_t *, ptrdiff_t,
                              ptrdiff_t, float *, ptrdiff_t);

/* NAME_at(level): the variant of a level (<= cyc_cpu_max_level(), checked by
 * the caller). Callers read the level once per call, so a change of level
 * never mixes two vector widths within one convolution. */
#if CYC_HAVE_DISPATCH
#define CYC_DEFINE_AT(NAME)                                                          \
static inline NAME##_t NAME##_at(int level) {                                        \
    if (level == CYC_LEVEL_V4) return NAME##_v4;                                     \
    if (level == CYC_LEVEL_V3) return NAME##_v3;                                     \
    return NAME##_base;                                                              \
}
#else
#define CYC_DEFINE_AT(NAME)                                                          \
static inline NAME##_t NAME##_at(int level) { (void)level; return NAME##_base; }
#endif
CYC_DEFINE_AT(cyc_tile_f32)
CYC_DEFINE_AT(cyc_tile_f64)
CYC_DEFINE_AT(cyc_dot_f32)  /* the dot form serves float32 only (measured) */

/* Lanes per vector of a level. */
static inline int cyc_lanes(int level, int itemsize) {
    int bytes = 16;
#if CYC_HAVE_DISPATCH
    if (level == CYC_LEVEL_V4) bytes = 64;
    else if (level == CYC_LEVEL_V3) bytes = 32;
#endif
    (void)level;
    return bytes / itemsize;
}
static inline int cyc_max_pixels(int nv) { return nv == 1 ? CYC_MR1 : CYC_MR2; }
static inline int cyc_dot_max_pixels(void) { return CYC_DOT_MP; }
static inline int cyc_dot_max_channels(void) { return CYC_DOT_MC; }

#endif
