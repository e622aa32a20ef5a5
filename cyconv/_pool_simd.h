/* Pooling micro-kernels: one window (or one input pixel of the gather
 * backward), all its channels.
 *
 * GCC's auto-vectoriser does not reliably vectorise the compare-and-blend
 * loops of max pooling (it gave scalar code for the argmax), so these few
 * loops are written with GCC/Clang vector extensions: one source, compiled
 * for the vector width of each CPU level setup.py builds (16 bytes = SSE2 at the
 * x86-64 baseline). Loops over windows, threads and validation stay in
 * Cython (_pool.pyx); these functions only see one window and its channels.
 *
 * Each block kernel is written once over a few primitives (load, compare,
 * blend, ...) and instantiated twice per data type: on the level's vectors
 * (suffix f32, f64) and on single lanes (f32_1, f64_1), where the primitives
 * are plain C on T: GCC keeps a one-element vector type in an integer
 * register, so every floating-point step would go through memory (tails
 * measured 1.5-3x slower). A kernel handles nv vectors from channel c0.
 * CYCONV_OVER_CHANNELS, the one tail pattern, runs a window's c_n channels
 * through them: whole blocks of CYCONV_CB channels, then the whole vectors
 * left, then the last channels (fewer than one vector) one lane at a time.
 * cy_<kernel>_f32 / _f64, the functions Cython calls, are those loops.
 *
 * Semantics (every lane, either instance):
 *   max:    a value takes over the running maximum if strictly greater, or
 *           if it is the window's first NaN (ties keep the first maximum).
 *   argmax: the tap index kh * f_w + kw of that maximum, selected in integer
 *           lanes of the data type's width (so the blend runs on one lane
 *           width) and stored as int32.
 *   route:  max-pool backward in gather form: each input element sums the
 *           gradients of the covering windows whose argmax names it.
 */
#ifndef CYCONV_POOL_SIMD_H
#define CYCONV_POOL_SIMD_H

#include <math.h>
#include <stddef.h>
#include <string.h>

/* The vector width and the channels per block come from this module's CPU */
/* level in the table of cyconv/_levels.py (through _levels.h): at least two  */
/* vectors of float32 per block, so the running max of a block is two        */
/* independent dependency chains (on AVX-512 a block of 16 float32 was one   */
/* vector, one chain: 15 % slower for P1/P2 argmax).                          */
#include "_levels.h"
#define CYCONV_VBYTES CYC_VBYTES
#define CYCONV_CB CYC_POOL_BLOCK
/* Dependency chains of a one-vector max over a long window (see cy_max_split). */
#define CY_CHAINS 4
/* Vectors per call of the gather kernels (see CYCONV_OVER_CHANNELS_WIDE). */
#define CYCONV_WIDE 8

/* The primitives on vectors of VB bytes of T (IT: the integer type of T's */
/* width, in which argmax keys are selected), named by SUF.                 */
#define CYCONV_DEFINE_POOL_VECTOR(T, SUF, IT, VB)                                        \
typedef T cy_v##SUF __attribute__((vector_size(VB)));                                    \
typedef IT cy_m##SUF __attribute__((vector_size(VB)));                                   \
/* lane masks (all ones or zero) for bit operations, in 32-bit lanes       */            \
typedef int cy_b##SUF __attribute__((vector_size(VB)));                                  \
/* argmax keys are stored as int32 whatever T: int lanes, one per T lane    */           \
typedef int cy_ki##SUF __attribute__((vector_size(VB / sizeof(T) * sizeof(int))));       \
enum { CY_NL_##SUF = VB / sizeof(T) };                                                   \
                                                                                         \
static inline cy_v##SUF cy_load_##SUF(const T *p) {                                      \
    cy_v##SUF v; memcpy(&v, p, sizeof v); return v;                                      \
}                                                                                        \
static inline void cy_store_##SUF(T *p, cy_v##SUF v) { memcpy(p, &v, sizeof v); }        \
static inline cy_m##SUF cy_kload_##SUF(const int *p) {                                   \
    cy_ki##SUF v; memcpy(&v, p, sizeof v); return __builtin_convertvector(v, cy_m##SUF); \
}                                                                                        \
static inline void cy_kstore_##SUF(int *p, cy_m##SUF k) {                                \
    cy_ki##SUF v = __builtin_convertvector(k, cy_ki##SUF); memcpy(p, &v, sizeof v);      \
}                                                                                        \
/* Comparisons: masks go to 32-bit lanes at once: GCC handles 64-bit lane   */           \
/* masks of comparisons through scalar code on SSE2.                        */           \
static inline cy_b##SUF cy_gt_##SUF(cy_v##SUF a, cy_v##SUF b) {                          \
    return (cy_b##SUF)(a > b);                                                           \
}                                                                                        \
static inline cy_b##SUF cy_eq_##SUF(cy_v##SUF a, cy_v##SUF b) {                          \
    return (cy_b##SUF)(a == b);                                                          \
}                                                                                        \
static inline cy_b##SUF cy_keq_##SUF(cy_m##SUF a, cy_m##SUF b) {                         \
    return (cy_b##SUF)(a == b);                                                          \
}                                                                                        \
static inline cy_b##SUF cy_isnan_##SUF(cy_v##SUF a) { return (cy_b##SUF)(a != a); }      \
static inline cy_b##SUF cy_takes_over_##SUF(cy_v##SUF v, cy_v##SUF best) {               \
    /* !(v <= best) is v > best or either is NaN; a NaN best keeps its place */          \
    return ~(cy_b##SUF)(v <= best) & (cy_b##SUF)(best == best);                          \
}                                                                                        \
/* take ? a : b, lane by lane. The bit operations run on 32-bit lanes: on   */           \
/* 64-bit lanes GCC turns this into a select that SSE2 lacks and falls back */           \
/* to scalar code.                                                          */           \
static inline cy_v##SUF cy_blend_##SUF(cy_b##SUF take, cy_v##SUF a, cy_v##SUF b) {       \
    return (cy_v##SUF)((take & (cy_b##SUF)a) | (~take & (cy_b##SUF)b));                  \
}                                                                                        \
static inline cy_m##SUF cy_kblend_##SUF(cy_b##SUF take, cy_m##SUF a, cy_m##SUF b) {      \
    return (cy_m##SUF)((take & (cy_b##SUF)a) | (~take & (cy_b##SUF)b));                  \
}                                                                                        \
/* take ? a : +0.0 */                                                                    \
static inline cy_v##SUF cy_and_##SUF(cy_b##SUF take, cy_v##SUF a) {                      \
    return (cy_v##SUF)(take & (cy_b##SUF)a);                                             \
}                                                                                        \
/* acc + a * s (GCC contracts it to one FMA on levels that have FMA)        */           \
static inline cy_v##SUF cy_muladd_##SUF(cy_v##SUF acc, cy_v##SUF a, T s) {               \
    return acc + a * s;                                                                  \
}

/* acc + a * s on one lane, contracted to one FMA exactly where the vector  */
/* form is (on levels with FMA, GCC contracts that): unrolled tail lanes    */
/* can be vectorised by GCC with the multiply split from the add, which     */
/* then stay two roundings.                                                 */
#if defined(__FMA__)
#define CYCONV_LANE_MULADD(acc, a, s) \
    _Generic((acc), float: __builtin_fmaf, default: __builtin_fma)((a), (s), (acc))
#else
#define CYCONV_LANE_MULADD(acc, a, s) ((acc) + (a) * (s))
#endif

/* The same primitives on one lane: plain C on T, truth values for masks.   */
#define CYCONV_DEFINE_POOL_LANE(T, SUF, IT)                                              \
typedef T cy_v##SUF;                                                                     \
typedef IT cy_m##SUF;                                                                    \
typedef int cy_b##SUF;  /* a truth value */                                              \
enum { CY_NL_##SUF = 1 };                                                                \
                                                                                         \
static inline cy_v##SUF cy_load_##SUF(const T *p) { return *p; }                         \
static inline void cy_store_##SUF(T *p, cy_v##SUF v) { *p = v; }                         \
static inline cy_m##SUF cy_kload_##SUF(const int *p) { return (IT)*p; }                  \
static inline void cy_kstore_##SUF(int *p, cy_m##SUF k) { *p = (int)k; }                 \
static inline cy_b##SUF cy_gt_##SUF(T a, T b) { return a > b; }                          \
static inline cy_b##SUF cy_eq_##SUF(T a, T b) { return a == b; }                         \
static inline cy_b##SUF cy_keq_##SUF(IT a, IT b) { return a == b; }                      \
static inline cy_b##SUF cy_isnan_##SUF(T a) { return a != a; }                           \
static inline cy_b##SUF cy_takes_over_##SUF(T v, T best) {                               \
    return !(v <= best) & (best == best);                                                \
}                                                                                        \
/* Selections in bit operations, as on vectors: a branch on random data    */            \
/* mispredicts (GCC does not if-convert them once the tail is unrolled).    */           \
static inline T cy_blend_##SUF(cy_b##SUF take, T a, T b) {                               \
    IT m = -(IT)take, ai, bi, r; T out;                                                  \
    memcpy(&ai, &a, sizeof a); memcpy(&bi, &b, sizeof b);                                \
    r = (m & ai) | (~m & bi); memcpy(&out, &r, sizeof out); return out;                  \
}                                                                                        \
static inline IT cy_kblend_##SUF(cy_b##SUF take, IT a, IT b) {                           \
    IT m = -(IT)take; return (m & a) | (~m & b);                                         \
}                                                                                        \
static inline T cy_and_##SUF(cy_b##SUF take, T a) {                                      \
    return cy_blend_##SUF(take, a, (T)0);                                                \
}                                                                                        \
static inline T cy_muladd_##SUF(T acc, T a, T s) { return CYCONV_LANE_MULADD(acc, a, s); }

/* One tap of chain q (the rows of a chain in order, kv its key).          */
#define CY_ARGMAX_TAP(SUF, q)                                                            \
    do {                                                                                 \
        cy_v##SUF v_ = cy_load_##SUF(xr[q] + kw * col_step);                             \
        cy_b##SUF take_ = cy_takes_over_##SUF(v_, b[q]);                                 \
        b[q] = cy_blend_##SUF(take_, v_, b[q]);                                          \
        k[q] = cy_kblend_##SUF(take_, kv[q], k[q]);                                      \
        kv[q] += 1;                                                                      \
    } while (0)

/* The block kernels on the primitives of SUF: nv <= NV vectors of channels */
/* from channel c0.                                                         */
#define CYCONV_DEFINE_POOL_BLOCKS(T, SUF, IT, NV)                                        \
/* at most NV vectors in one call */                                                     \
enum { CY_NV_##SUF = NV };                                                               \
/* the gather kernels (route, spread) take up to CYCONV_WIDE vectors     */                \
enum { CY_NVW_##SUF = NV > CYCONV_WIDE ? NV : CYCONV_WIDE };                             \
                                                                                         \
/* One vector over a long window (P3's 8 x 8 of one vector of channels):   */            \
/* one running max per tap is a dependency chain as long as the window,    */            \
/* and the window is longer than the core's reorder window, so windows do  */            \
/* not overlap either. The rows are split into CY_CHAINS consecutive        */           \
/* ranges, each its own chain, merged in order by the rule of a tap: a      */           \
/* later range takes over only if strictly greater (or the first NaN), so   */           \
/* the first maximum (and the first NaN) stays first: the same bits.        */           \
static inline __attribute__((always_inline)) int cy_chain_rows_##SUF(                    \
    ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t *r0, ptrdiff_t *len) {                     \
    if (n_kh < CY_CHAINS || n_kh * n_kw < 16)                                            \
        return 0;                                                                        \
    for (int q = 0; q < CY_CHAINS; q++) {                                                \
        r0[q] = q * n_kh / CY_CHAINS;                                                    \
        len[q] = (q + 1) * n_kh / CY_CHAINS - r0[q];                                     \
    }                                                                                    \
    return 1;                                                                            \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_max_split_##SUF(                    \
    const T *xw, T *out, ptrdiff_t n_kw, ptrdiff_t row_step, ptrdiff_t col_step,         \
    const ptrdiff_t *r0, const ptrdiff_t *len) {                                         \
    cy_v##SUF acc[CY_CHAINS];                                                            \
    cy_b##SUF nan[CY_CHAINS];                                                            \
    for (int q = 0; q < CY_CHAINS; q++) {                                                \
        acc[q] = (cy_v##SUF){0} - (T)INFINITY;                                           \
        nan[q] = (cy_b##SUF){0};                                                         \
    }                                                                                    \
    /* the last range is the longest */                                                  \
    for (ptrdiff_t r = 0; r < len[CY_CHAINS - 1]; r++)                                   \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++)                                          \
            for (int q = 0; q < CY_CHAINS; q++) {                                        \
                if (r >= len[q])                                                         \
                    continue;                                                            \
                cy_v##SUF v = cy_load_##SUF(xw + (r0[q] + r) * row_step + kw * col_step);\
                if (CY_NL_##SUF == 1) {                                                  \
                    acc[q] = cy_blend_##SUF(cy_takes_over_##SUF(v, acc[q]), v, acc[q]);  \
                } else {                                                                 \
                    acc[q] = cy_blend_##SUF(cy_gt_##SUF(v, acc[q]), v, acc[q]);          \
                    nan[q] |= cy_isnan_##SUF(v);                                         \
                }                                                                        \
            }                                                                            \
    for (int q = 1; q < CY_CHAINS; q++) {                                                \
        if (CY_NL_##SUF == 1) {                                                          \
            acc[0] = cy_blend_##SUF(cy_takes_over_##SUF(acc[q], acc[0]), acc[q], acc[0]);\
        } else {                                                                         \
            acc[0] = cy_blend_##SUF(cy_gt_##SUF(acc[q], acc[0]), acc[q], acc[0]);        \
            nan[0] |= nan[q];                                                            \
        }                                                                                \
    }                                                                                    \
    cy_v##SUF one_or_nan = (cy_v##SUF){0} + (T)1                                         \
        + cy_and_##SUF(nan[0], (cy_v##SUF){0} + (T)NAN);                                 \
    cy_store_##SUF(out, CY_NL_##SUF == 1 ? acc[0] : acc[0] * one_or_nan);                \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_argmax_split_##SUF(                 \
    const T *xw, ptrdiff_t n_kw, ptrdiff_t row_step, ptrdiff_t col_step, IT k_first,     \
    IT f_w, T *best, int *key, const ptrdiff_t *r0, const ptrdiff_t *len) {              \
    cy_v##SUF b[CY_CHAINS];                                                              \
    cy_m##SUF k[CY_CHAINS], kv[CY_CHAINS];                                               \
    const T *xr[CY_CHAINS];                                                              \
    for (int q = 0; q < CY_CHAINS; q++) {                                                \
        b[q] = cy_load_##SUF(xw + r0[q] * row_step);                                     \
        k[q] = (cy_m##SUF){0} + (IT)(k_first + (IT)r0[q] * f_w);                         \
    }                                                                                    \
    /* rows every chain has (len[0] is the shortest), in lock step; then    */           \
    /* the last row of the longer ranges; keys counted up, not multiplied   */           \
    for (ptrdiff_t r = 0; r < len[CY_CHAINS - 1]; r++) {                                 \
        for (int q = 0; q < CY_CHAINS; q++) {                                            \
            xr[q] = xw + (r0[q] + r) * row_step;                                         \
            kv[q] = (cy_m##SUF){0} + (IT)(k_first + (IT)(r0[q] + r) * f_w);              \
        }                                                                                \
        if (r < len[0]) {                                                                \
            for (ptrdiff_t kw = 0; kw < n_kw; kw++)                                      \
                for (int q = 0; q < CY_CHAINS; q++)                                      \
                    CY_ARGMAX_TAP(SUF, q);                                               \
        } else {                                                                         \
            for (ptrdiff_t kw = 0; kw < n_kw; kw++)                                      \
                for (int q = 0; q < CY_CHAINS; q++)                                      \
                    if (r < len[q])                                                      \
                        CY_ARGMAX_TAP(SUF, q);                                           \
        }                                                                                \
    }                                                                                    \
    for (int q = 1; q < CY_CHAINS; q++) {                                                \
        cy_b##SUF take = cy_takes_over_##SUF(b[q], b[0]);                                \
        b[0] = cy_blend_##SUF(take, b[q], b[0]);                                         \
        k[0] = cy_kblend_##SUF(take, k[q], k[0]);                                        \
    }                                                                                    \
    cy_store_##SUF(best, b[0]);                                                          \
    cy_kstore_##SUF(key, k[0]);                                                          \
}                                                                                        \
                                                                                         \
/* out[c] = max over the n_kh x n_kw taps starting at xw. The running max */             \
/* of whole vectors is a plain compare-and-blend; NaNs are collected in a   */           \
/* separate mask and applied once at the end (acc * (1 + NaN) is NaN,       */           \
/* acc * 1 is exact), which gives the default NaN. One lane (the channels   */           \
/* past the last whole vector) blends with cy_takes_over instead and keeps  */           \
/* the window's first NaN itself, sign and payload, as the scalar loops it  */           \
/* replaces did: NaN either way, the same bits as before in every lane.     */           \
static inline __attribute__((always_inline)) void cy_max_block_##SUF(                    \
    const T *xw, T *out, ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t row_step,             \
    ptrdiff_t col_step, ptrdiff_t c0, int nv) {                                          \
    cy_v##SUF acc[CY_NV_##SUF];                                                          \
    cy_b##SUF nan[CY_NV_##SUF];                                                          \
    xw += c0;                                                                            \
    out += c0;                                                                           \
    if (nv == 1) {                                                                       \
        ptrdiff_t r0[CY_CHAINS], len[CY_CHAINS];                                         \
        if (cy_chain_rows_##SUF(n_kh, n_kw, r0, len)) {                                  \
            cy_max_split_##SUF(xw, out, n_kw, row_step, col_step, r0, len);              \
            return;                                                                      \
        }                                                                                \
    }                                                                                    \
    for (int j = 0; j < nv; j++) {                                                       \
        acc[j] = (cy_v##SUF){0} - (T)INFINITY;                                           \
        nan[j] = (cy_b##SUF){0};                                                         \
    }                                                                                    \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                              \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                        \
            const T *xp = xw + kh * row_step + kw * col_step;                            \
            for (int j = 0; j < nv; j++) {                                               \
                cy_v##SUF v = cy_load_##SUF(xp + j * CY_NL_##SUF);                       \
                if (CY_NL_##SUF == 1) {                                                  \
                    acc[j] = cy_blend_##SUF(cy_takes_over_##SUF(v, acc[j]), v, acc[j]);  \
                } else {                                                                 \
                    acc[j] = cy_blend_##SUF(cy_gt_##SUF(v, acc[j]), v, acc[j]);          \
                    nan[j] |= cy_isnan_##SUF(v);                                         \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    for (int j = 0; j < nv; j++) {                                                       \
        cy_v##SUF one_or_nan = (cy_v##SUF){0} + (T)1                                     \
            + cy_and_##SUF(nan[j], (cy_v##SUF){0} + (T)NAN);                             \
        cy_store_##SUF(out + j * CY_NL_##SUF,                                            \
                       CY_NL_##SUF == 1 ? acc[j] : acc[j] * one_or_nan);                 \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* out[c] = scale * sum over the n_kh x n_kw taps starting at xw. */                     \
static inline __attribute__((always_inline)) void cy_sum_block_##SUF(                    \
    const T *xw, T *out, ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t row_step,             \
    ptrdiff_t col_step, T scale, ptrdiff_t c0, int nv) {                                 \
    cy_v##SUF acc[CY_NV_##SUF];                                                          \
    xw += c0;                                                                            \
    out += c0;                                                                           \
    for (int j = 0; j < nv; j++)                                                         \
        acc[j] = (cy_v##SUF){0};                                                         \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                              \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                        \
            const T *xp = xw + kh * row_step + kw * col_step;                            \
            for (int j = 0; j < nv; j++)                                                 \
                acc[j] += cy_load_##SUF(xp + j * CY_NL_##SUF);                           \
        }                                                                                \
    for (int j = 0; j < nv; j++)                                                         \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j] * scale);                           \
}                                                                                        \
                                                                                         \
/* best[c] = first maximum of the window starting at xw (at least one tap), */           \
/* key[c] = its tap index kh * f_w + kw in the full window (int32; picked */             \
/* in lanes of T's width, IT, so the blend runs on one lane width);        */            \
/* k_first is the index of the first real tap.                             */            \
static inline __attribute__((always_inline)) void cy_argmax_block_##SUF(                 \
    const T *xw, ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t row_step,                     \
    ptrdiff_t col_step, IT k_first, IT f_w, T *best, int *key, ptrdiff_t c0,             \
    int nv) {                                                                            \
    cy_v##SUF b[CY_NV_##SUF];                                                            \
    cy_m##SUF k[CY_NV_##SUF];                                                            \
    xw += c0;                                                                            \
    best += c0;                                                                          \
    key += c0;                                                                           \
    if (nv == 1) {                                                                       \
        ptrdiff_t r0[CY_CHAINS], len[CY_CHAINS];                                         \
        if (cy_chain_rows_##SUF(n_kh, n_kw, r0, len)) {                                  \
            cy_argmax_split_##SUF(xw, n_kw, row_step, col_step, k_first, f_w, best, key, \
                                  r0, len);                                              \
            return;                                                                      \
        }                                                                                \
    }                                                                                    \
    for (int j = 0; j < nv; j++) {                                                       \
        b[j] = cy_load_##SUF(xw + j * CY_NL_##SUF);                                      \
        k[j] = (cy_m##SUF){0} + k_first;                                                 \
    }                                                                                    \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                              \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                        \
            cy_m##SUF kv = (cy_m##SUF){0} + (IT)(k_first + (IT)kh * f_w + (IT)kw);       \
            const T *xp = xw + kh * row_step + kw * col_step;                            \
            for (int j = 0; j < nv; j++) {                                               \
                cy_v##SUF v = cy_load_##SUF(xp + j * CY_NL_##SUF);                       \
                cy_b##SUF take = cy_takes_over_##SUF(v, b[j]);                           \
                b[j] = cy_blend_##SUF(take, v, b[j]);                                    \
                k[j] = cy_kblend_##SUF(take, kv, k[j]);                                  \
            }                                                                            \
        }                                                                                \
    for (int j = 0; j < nv; j++) {                                                       \
        cy_store_##SUF(best + j * CY_NL_##SUF, b[j]);                                    \
        cy_kstore_##SUF(key + j * CY_NL_##SUF, k[j]);                                    \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* out[c] = sum of dp[oh, ow, c] over the windows (oh, ow) in              */            \
/* [oh0, oh1) x [ow0, ow1) covering input (ih, iw) whose key[oh, ow, c]     */           \
/* names this input: its tap index kh * f_w + kw, where kh * d_h = ph -    */           \
/* oh*s_h and kw * d_w = pw - ow*s_w, with ph = ih + p_top, pw = iw +       */           \
/* p_left (with dilation, a window whose taps step over this input routes   */           \
/* nothing here). (A window that does not route here adds +0.0 or is        */           \
/* skipped: the sum starts at +0.0, so neither changes it.)                 */           \
static inline __attribute__((always_inline)) void cy_route_first_block_##SUF(            \
    const T *dpi, const int *keyi, T *out, ptrdiff_t oh0, ptrdiff_t oh1,                 \
    ptrdiff_t ow0, ptrdiff_t ow1, ptrdiff_t o_w, ptrdiff_t c_n, ptrdiff_t ph,            \
    ptrdiff_t pw, ptrdiff_t s_h, ptrdiff_t s_w, ptrdiff_t f_w, ptrdiff_t d_h,            \
    ptrdiff_t d_w, ptrdiff_t c0, int nv) {                                               \
    cy_v##SUF acc[CY_NVW_##SUF];                                                          \
    dpi += c0;                                                                           \
    keyi += c0;                                                                          \
    out += c0;                                                                           \
    for (int j = 0; j < nv; j++)                                                         \
        acc[j] = (cy_v##SUF){0};                                                         \
    /* undilated: the loop as it was before dilation (no division, no skip) */           \
    if (d_h == 1 && d_w == 1)                                                            \
        for (ptrdiff_t oh = oh0; oh < oh1; oh++)                                         \
            for (ptrdiff_t ow = ow0; ow < ow1; ow++) {                                   \
                ptrdiff_t at = (oh * o_w + ow) * c_n;                                    \
                cy_m##SUF kv = (cy_m##SUF){0}                                            \
                    + (IT)((ph - oh * s_h) * f_w + (pw - ow * s_w));                     \
                for (int j = 0; j < nv; j++) {                                           \
                    cy_v##SUF g = cy_load_##SUF(dpi + at + j * CY_NL_##SUF);             \
                    cy_m##SUF key = cy_kload_##SUF(keyi + at + j * CY_NL_##SUF);         \
                    acc[j] += cy_and_##SUF(cy_keq_##SUF(key, kv), g);                    \
                }                                                                        \
            }                                                                            \
    else                                                                                 \
        for (ptrdiff_t oh = oh0; oh < oh1; oh++) {                                       \
            ptrdiff_t kh = ph - oh * s_h;                                                \
            if (kh % d_h)                                                                \
                continue;                                                                \
            for (ptrdiff_t ow = ow0; ow < ow1; ow++) {                                   \
                ptrdiff_t at = (oh * o_w + ow) * c_n;                                    \
                ptrdiff_t kw = pw - ow * s_w;                                            \
                if (kw % d_w)                                                            \
                    continue;                                                            \
                cy_m##SUF kv = (cy_m##SUF){0} + (IT)(kh / d_h * f_w + kw / d_w);         \
                for (int j = 0; j < nv; j++) {                                           \
                    cy_v##SUF g = cy_load_##SUF(dpi + at + j * CY_NL_##SUF);             \
                    cy_m##SUF key = cy_kload_##SUF(keyi + at + j * CY_NL_##SUF);         \
                    acc[j] += cy_and_##SUF(cy_keq_##SUF(key, kv), g);                    \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    for (int j = 0; j < nv; j++)                                                         \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j]);                                   \
}                                                                                        \
                                                                                         \
/* As cy_route_first_block, but every window whose maximum best[oh, ow, c]  */           \
/* equals the input value xv[c] passes its gradient (the course's mask).    */           \
static inline __attribute__((always_inline)) void cy_route_ties_block_##SUF(             \
    const T *dpi, const T *besti, const T *xv, T *out, ptrdiff_t oh0,                    \
    ptrdiff_t oh1, ptrdiff_t ow0, ptrdiff_t ow1, ptrdiff_t o_w, ptrdiff_t c_n,           \
    ptrdiff_t c0, int nv) {                                                              \
    cy_v##SUF acc[CY_NVW_##SUF], x[CY_NVW_##SUF];                                          \
    dpi += c0;                                                                           \
    besti += c0;                                                                         \
    xv += c0;                                                                            \
    out += c0;                                                                           \
    for (int j = 0; j < nv; j++) {                                                       \
        acc[j] = (cy_v##SUF){0};                                                         \
        x[j] = cy_load_##SUF(xv + j * CY_NL_##SUF);                                      \
    }                                                                                    \
    for (ptrdiff_t oh = oh0; oh < oh1; oh++)                                             \
        for (ptrdiff_t ow = ow0; ow < ow1; ow++) {                                       \
            ptrdiff_t at = (oh * o_w + ow) * c_n;                                        \
            for (int j = 0; j < nv; j++) {                                               \
                cy_v##SUF g = cy_load_##SUF(dpi + at + j * CY_NL_##SUF);                 \
                cy_v##SUF b = cy_load_##SUF(besti + at + j * CY_NL_##SUF);               \
                acc[j] += cy_and_##SUF(cy_eq_##SUF(b, x[j]), g);                         \
            }                                                                            \
        }                                                                                \
    for (int j = 0; j < nv; j++)                                                         \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j]);                                   \
}                                                                                        \
                                                                                         \
/* Disjoint windows (stride >= pool size): each input element belongs to at  */          \
/* most one window, so the backward pass writes every tap of the window     */           \
/* directly: max routes g to the first maximum (all_ties: to every element */            \
/* equal to the maximum), average spreads g * scale.                        */           \
static inline __attribute__((always_inline)) void cy_max_disjoint_block_##SUF(           \
    const T *xw, T *dxw, const T *g, ptrdiff_t n_kh, ptrdiff_t n_kw,                     \
    ptrdiff_t row_step, ptrdiff_t col_step, int all_ties, ptrdiff_t c0, int nv) {        \
    cy_v##SUF b[CY_NV_##SUF], k[CY_NV_##SUF], gv[CY_NV_##SUF];                           \
    xw += c0;                                                                            \
    dxw += c0;                                                                           \
    g += c0;                                                                             \
    for (int j = 0; j < nv; j++) {                                                       \
        b[j] = cy_load_##SUF(xw + j * CY_NL_##SUF);                                      \
        k[j] = (cy_v##SUF){0};                                                           \
        gv[j] = cy_load_##SUF(g + j * CY_NL_##SUF);                                      \
    }                                                                                    \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                              \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                        \
            cy_v##SUF kv = (cy_v##SUF){0} + (T)(kh * n_kw + kw);                         \
            const T *xp = xw + kh * row_step + kw * col_step;                            \
            for (int j = 0; j < nv; j++) {                                               \
                cy_v##SUF v = cy_load_##SUF(xp + j * CY_NL_##SUF);                       \
                cy_b##SUF take = cy_takes_over_##SUF(v, b[j]);                           \
                b[j] = cy_blend_##SUF(take, v, b[j]);                                    \
                k[j] = cy_blend_##SUF(take, kv, k[j]);                                   \
            }                                                                            \
        }                                                                                \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                              \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                        \
            cy_v##SUF kv = (cy_v##SUF){0} + (T)(kh * n_kw + kw);                         \
            ptrdiff_t at = kh * row_step + kw * col_step;                                \
            /* two loops, not a per-lane choice of masks (GCC scalarises it) */          \
            if (all_ties)                                                                \
                for (int j = 0; j < nv; j++) {                                           \
                    cy_b##SUF hit = cy_eq_##SUF(cy_load_##SUF(xw + at + j * CY_NL_##SUF), \
                                                b[j]);                                   \
                    cy_store_##SUF(dxw + at + j * CY_NL_##SUF, cy_and_##SUF(hit, gv[j])); \
                }                                                                        \
            else                                                                         \
                for (int j = 0; j < nv; j++) {                                           \
                    cy_b##SUF hit = cy_eq_##SUF(k[j], kv);                               \
                    cy_store_##SUF(dxw + at + j * CY_NL_##SUF, cy_and_##SUF(hit, gv[j])); \
                }                                                                        \
        }                                                                                \
}                                                                                        \
                                                                                         \
/* As cy_max_disjoint_block, routed by the forward's argmax keys (integer  */            \
/* tap indices in the full window; k_first is the first real tap's index):  */           \
/* no search of x. A key naming no real tap routes nowhere.                 */           \
static inline __attribute__((always_inline)) void cy_key_disjoint_block_##SUF(           \
    const int *key, T *dxw, const T *g, ptrdiff_t n_kh, ptrdiff_t n_kw,                  \
    ptrdiff_t row_step, ptrdiff_t col_step, IT k_first, IT f_w, ptrdiff_t c0,            \
    int nv) {                                                                            \
    cy_m##SUF k[CY_NV_##SUF];                                                            \
    cy_v##SUF gv[CY_NV_##SUF];                                                           \
    key += c0;                                                                           \
    dxw += c0;                                                                           \
    g += c0;                                                                             \
    for (int j = 0; j < nv; j++) {                                                       \
        k[j] = cy_kload_##SUF(key + j * CY_NL_##SUF);                                    \
        gv[j] = cy_load_##SUF(g + j * CY_NL_##SUF);                                      \
    }                                                                                    \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                              \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                        \
            cy_m##SUF kv = (cy_m##SUF){0} + (IT)(k_first + (IT)kh * f_w + (IT)kw);       \
            ptrdiff_t at = kh * row_step + kw * col_step;                                \
            for (int j = 0; j < nv; j++)                                                 \
                cy_store_##SUF(dxw + at + j * CY_NL_##SUF,                               \
                               cy_and_##SUF(cy_keq_##SUF(k[j], kv), gv[j]));             \
        }                                                                                \
}                                                                                        \
                                                                                         \
static inline __attribute__((always_inline)) void cy_avg_disjoint_block_##SUF(           \
    T *dxw, const T *g, ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t row_step,              \
    ptrdiff_t col_step, T scale, ptrdiff_t c0, int nv) {                                 \
    cy_v##SUF gv[CY_NV_##SUF];                                                           \
    dxw += c0;                                                                           \
    g += c0;                                                                             \
    for (int j = 0; j < nv; j++)                                                         \
        gv[j] = cy_load_##SUF(g + j * CY_NL_##SUF) * scale;                              \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                              \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++)                                          \
            for (int j = 0; j < nv; j++)                                                 \
                cy_store_##SUF(dxw + kh * row_step + kw * col_step + j * CY_NL_##SUF,    \
                               gv[j]);                                                   \
}                                                                                        \
                                                                                         \
/* out[c] = sum over outputs (oh, ow) in [oh0, oh1) x [ow0, ow1) of          */          \
/* dp[oh, ow, c] * inv_h[oh] * inv_w[ow].                                    */          \
static inline __attribute__((always_inline)) void cy_spread_block_##SUF(                 \
    const T *dpi, T *out, ptrdiff_t oh0, ptrdiff_t oh1, ptrdiff_t ow0,                   \
    ptrdiff_t ow1, ptrdiff_t o_w, ptrdiff_t c_n, const T *inv_h,                         \
    const T *inv_w, ptrdiff_t c0, int nv) {                                              \
    cy_v##SUF acc[CY_NVW_##SUF];                                                          \
    dpi += c0;                                                                           \
    out += c0;                                                                           \
    for (int j = 0; j < nv; j++)                                                         \
        acc[j] = (cy_v##SUF){0};                                                         \
    for (ptrdiff_t oh = oh0; oh < oh1; oh++)                                             \
        for (ptrdiff_t ow = ow0; ow < ow1; ow++) {                                       \
            const T *gp = dpi + (oh * o_w + ow) * c_n;                                   \
            T scale = inv_h[oh] * inv_w[ow];                                             \
            for (int j = 0; j < nv; j++)                                                 \
                acc[j] = cy_muladd_##SUF(acc[j], cy_load_##SUF(gp + j * CY_NL_##SUF),    \
                                         scale);                                         \
        }                                                                                \
    for (int j = 0; j < nv; j++)                                                         \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j]);                                   \
}                                                                                        \
                                                                                         \
/* One input row of the gather kernels: every pixel iw < n_w of the row,   */            \
/* its covering columns [cover_w[2 iw], cover_w[2 iw + 1]) from the table. */            \
/* The pixel loop sits inside the constant vector count, so a pixel costs  */            \
/* its windows and one store per vector (no call, no channel dispatch, no  */            \
/* accumulators through the stack); the sums are those of the pixel kernel. */           \
static inline __attribute__((always_inline)) void cy_route_row_block_##SUF(              \
    const T *dpi, const int *keyi, T *out, ptrdiff_t oh0, ptrdiff_t oh1,                 \
    const ptrdiff_t *cover_w, ptrdiff_t n_w, ptrdiff_t o_w, ptrdiff_t c_n, ptrdiff_t ph, \
    ptrdiff_t p_l, ptrdiff_t s_h, ptrdiff_t s_w, ptrdiff_t f_w, ptrdiff_t d_h,           \
    ptrdiff_t d_w, ptrdiff_t c0, int nv) {                                               \
    for (ptrdiff_t iw = 0; iw < n_w; iw++)                                               \
        cy_route_first_block_##SUF(dpi, keyi, out + iw * c_n, oh0, oh1, cover_w[2 * iw], \
                                   cover_w[2 * iw + 1], o_w, c_n, ph, iw + p_l, s_h, s_w,\
                                   f_w, d_h, d_w, c0, nv);                               \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_spread_row_block_##SUF(             \
    const T *dpi, T *out, ptrdiff_t oh0, ptrdiff_t oh1, const ptrdiff_t *cover_w,        \
    ptrdiff_t n_w, ptrdiff_t o_w, ptrdiff_t c_n, const T *inv_h, const T *inv_w,         \
    ptrdiff_t c0, int nv) {                                                              \
    for (ptrdiff_t iw = 0; iw < n_w; iw++)                                               \
        cy_spread_block_##SUF(dpi, out + iw * c_n, oh0, oh1, cover_w[2 * iw],            \
                              cover_w[2 * iw + 1], o_w, c_n, inv_h, inv_w, c0, nv);      \
}                                                                                        \
                                                                                         \
/* Global pools, one pixel row x at a time, the running results in memory    */          \
/* (a task's chunk of channels stays in L1): each row is read whole and      */          \
/* once, where the window kernels above would read a plane a block of        */          \
/* channels at a time. The order per channel is still pixel order, so the    */          \
/* sums are those of cy_sum_block. acc[c] += x[c]:                           */          \
static inline __attribute__((always_inline)) void cy_gsum_block_##SUF(                   \
    const T *x, T *acc, ptrdiff_t c0, int nv) {                                          \
    x += c0;                                                                             \
    acc += c0;                                                                           \
    for (int j = 0; j < nv; j++)                                                         \
        cy_store_##SUF(acc + j * CY_NL_##SUF, cy_load_##SUF(acc + j * CY_NL_##SUF)       \
                                              + cy_load_##SUF(x + j * CY_NL_##SUF));     \
}                                                                                        \
                                                                                         \
/* best[c] takes x[c] if strictly greater or the first NaN (cy_takes_over);   */         \
/* with key, key[c] takes the pixel index k too.                            */           \
static inline __attribute__((always_inline)) void cy_gmax_block_##SUF(                   \
    const T *x, T *best, ptrdiff_t c0, int nv) {                                         \
    x += c0;                                                                             \
    best += c0;                                                                          \
    for (int j = 0; j < nv; j++) {                                                       \
        cy_v##SUF v = cy_load_##SUF(x + j * CY_NL_##SUF);                                \
        cy_v##SUF b = cy_load_##SUF(best + j * CY_NL_##SUF);                             \
        cy_store_##SUF(best + j * CY_NL_##SUF, cy_blend_##SUF(cy_takes_over_##SUF(v, b), v, b)); \
    }                                                                                    \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_gargmax_block_##SUF(                \
    const T *x, T *best, int *key, IT k, ptrdiff_t c0, int nv) {                         \
    cy_m##SUF kv = (cy_m##SUF){0} + k;                                                   \
    x += c0;                                                                             \
    best += c0;                                                                          \
    key += c0;                                                                           \
    for (int j = 0; j < nv; j++) {                                                       \
        cy_v##SUF v = cy_load_##SUF(x + j * CY_NL_##SUF);                                \
        cy_v##SUF b = cy_load_##SUF(best + j * CY_NL_##SUF);                             \
        cy_b##SUF take = cy_takes_over_##SUF(v, b);                                      \
        cy_store_##SUF(best + j * CY_NL_##SUF, cy_blend_##SUF(take, v, b));              \
        cy_kstore_##SUF(key + j * CY_NL_##SUF,                                           \
                        cy_kblend_##SUF(take, kv, cy_kload_##SUF(key + j * CY_NL_##SUF))); \
    }                                                                                    \
}

/* The last channels (fewer than one vector), one lane at a time, from c0. */
#define CYCONV_LANE_TAIL(KERNEL, SUF, c_n, c0, ...)                                      \
    /* a constant lane count: the tail's accumulators stay in registers */               \
    switch ((int)((c_n) - (c0))) {                                                       \
        case 1: if (1 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 1); break;    \
        case 2: if (2 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 2); break;    \
        case 3: if (3 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 3); break;    \
        case 4: if (4 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 4); break;    \
        case 5: if (5 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 5); break;    \
        case 6: if (6 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 6); break;    \
        case 7: if (7 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 7); break;    \
        case 8: if (8 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 8); break;    \
        case 9: if (9 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 9); break;    \
        case 10: if (10 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 10); break; \
        case 11: if (11 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 11); break; \
        case 12: if (12 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 12); break; \
        case 13: if (13 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 13); break; \
        case 14: if (14 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 14); break; \
        case 15: if (15 < CY_NL_##SUF) KERNEL##_##SUF##_1(__VA_ARGS__, (c0), 15); break; \
        default: break;                                                                  \
    }

/* One tail pattern: channels [0, c_n) of one window through the block      */
/* kernel KERNEL: whole blocks of CYCONV_CB channels with a constant vector */
/* count (once inlined, the loops unroll and the block's accumulators stay  */
/* in registers), then the whole vectors left, then the last channels       */
/* (fewer than one vector) through the one-lane instance; the arguments     */
/* are the kernel's before (c0, nv).                                        */
#define CYCONV_OVER_CHANNELS(KERNEL, SUF, c_n, ...)                                      \
    do {                                                                                 \
        ptrdiff_t c0_ = 0;                                                               \
        int nv_;                                                                         \
        for (; c0_ + CYCONV_CB <= (c_n); c0_ += CYCONV_CB)                               \
            KERNEL##_##SUF(__VA_ARGS__, c0_, CYCONV_CB / CY_NL_##SUF);                   \
        /* the whole vectors left (fewer than a block): a constant count too */          \
        nv_ = (int)(((c_n) - c0_) / CY_NL_##SUF);                                        \
        switch (nv_) {                                                                   \
        case 1: KERNEL##_##SUF(__VA_ARGS__, c0_, 1); break;                              \
        case 2: if (2 < CYCONV_CB / CY_NL_##SUF) KERNEL##_##SUF(__VA_ARGS__, c0_, 2); break; \
        case 3: if (3 < CYCONV_CB / CY_NL_##SUF) KERNEL##_##SUF(__VA_ARGS__, c0_, 3); break; \
        case 4: if (4 < CYCONV_CB / CY_NL_##SUF) KERNEL##_##SUF(__VA_ARGS__, c0_, 4); break; \
        case 5: if (5 < CYCONV_CB / CY_NL_##SUF) KERNEL##_##SUF(__VA_ARGS__, c0_, 5); break; \
        case 6: if (6 < CYCONV_CB / CY_NL_##SUF) KERNEL##_##SUF(__VA_ARGS__, c0_, 6); break; \
        case 7: if (7 < CYCONV_CB / CY_NL_##SUF) KERNEL##_##SUF(__VA_ARGS__, c0_, 7); break; \
        default: break;                                                                  \
        }                                                                                \
        c0_ += (ptrdiff_t)nv_ * CY_NL_##SUF;                                             \
        CYCONV_LANE_TAIL(KERNEL, SUF, c_n, c0_, __VA_ARGS__);                            \
    } while (0)

/* The gather kernels' pattern: up to CYCONV_WIDE vectors per call instead  */
/* of a block, so a pixel walks its covering windows once for (nearly) all  */
/* its channels: the window loop, its index arithmetic and the key compare */
/* constant are paid once per 8 vectors, not once per block (P2: 4 times   */
/* per pixel of float64 at AVX-512). Each channel's sum still runs over the */
/* windows in the same order, so the results are the same bits.            */
#define CYCONV_OVER_CHANNELS_WIDE(KERNEL, SUF, c_n, ...)                                 \
    do {                                                                                 \
        ptrdiff_t c0_ = 0;                                                               \
        int nv_;                                                                         \
        for (; c0_ + CYCONV_WIDE * CY_NL_##SUF <= (c_n); c0_ += CYCONV_WIDE * CY_NL_##SUF)\
            KERNEL##_##SUF(__VA_ARGS__, c0_, CYCONV_WIDE);                               \
        nv_ = (int)(((c_n) - c0_) / CY_NL_##SUF);                                        \
        switch (nv_) {                                                                   \
        case 1: KERNEL##_##SUF(__VA_ARGS__, c0_, 1); break;                              \
        case 2: KERNEL##_##SUF(__VA_ARGS__, c0_, 2); break;                              \
        case 3: KERNEL##_##SUF(__VA_ARGS__, c0_, 3); break;                              \
        case 4: KERNEL##_##SUF(__VA_ARGS__, c0_, 4); break;                              \
        case 5: KERNEL##_##SUF(__VA_ARGS__, c0_, 5); break;                              \
        case 6: KERNEL##_##SUF(__VA_ARGS__, c0_, 6); break;                              \
        case 7: KERNEL##_##SUF(__VA_ARGS__, c0_, 7); break;                              \
        default: break;                                                                  \
        }                                                                                \
        c0_ += (ptrdiff_t)nv_ * CY_NL_##SUF;                                             \
        CYCONV_LANE_TAIL(KERNEL, SUF, c_n, c0_, __VA_ARGS__);                            \
    } while (0)

/* The channel loops Cython calls: cy_<kernel>_<SUF>(<block arguments>, c_n). */
#define CYCONV_DEFINE_POOL_CHANNELS(T, SUF, IT)                                          \
static inline __attribute__((always_inline)) void cy_max_##SUF(                          \
    const T *xw, T *out, ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t row_step,             \
    ptrdiff_t col_step, ptrdiff_t c_n) {                                                 \
    CYCONV_OVER_CHANNELS(cy_max_block, SUF, c_n, xw, out, n_kh, n_kw, row_step,          \
                         col_step);                                                      \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_sum_##SUF(                          \
    const T *xw, T *out, ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t row_step,             \
    ptrdiff_t col_step, T scale, ptrdiff_t c_n) {                                        \
    CYCONV_OVER_CHANNELS(cy_sum_block, SUF, c_n, xw, out, n_kh, n_kw, row_step, col_step, \
                         scale);                                                         \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_argmax_##SUF(                       \
    const T *xw, ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t row_step,                     \
    ptrdiff_t col_step, IT k_first, IT f_w, T *best, int *key, ptrdiff_t c_n) {          \
    CYCONV_OVER_CHANNELS(cy_argmax_block, SUF, c_n, xw, n_kh, n_kw, row_step, col_step,  \
                         k_first, f_w, best, key);                                       \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_route_first_##SUF(                  \
    const T *dpi, const int *keyi, T *out, ptrdiff_t oh0, ptrdiff_t oh1,                 \
    ptrdiff_t ow0, ptrdiff_t ow1, ptrdiff_t o_w, ptrdiff_t c_n, ptrdiff_t ph,            \
    ptrdiff_t pw, ptrdiff_t s_h, ptrdiff_t s_w, ptrdiff_t f_w, ptrdiff_t d_h,            \
    ptrdiff_t d_w) {                                                                     \
    CYCONV_OVER_CHANNELS_WIDE(cy_route_first_block, SUF, c_n, dpi, keyi, out, oh0, oh1, ow0,  \
                         ow1, o_w, c_n, ph, pw, s_h, s_w, f_w, d_h, d_w);                \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_route_ties_##SUF(                   \
    const T *dpi, const T *besti, const T *xv, T *out, ptrdiff_t oh0,                    \
    ptrdiff_t oh1, ptrdiff_t ow0, ptrdiff_t ow1, ptrdiff_t o_w, ptrdiff_t c_n) {         \
    CYCONV_OVER_CHANNELS_WIDE(cy_route_ties_block, SUF, c_n, dpi, besti, xv, out, oh0, oh1,   \
                         ow0, ow1, o_w, c_n);                                            \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_max_disjoint_##SUF(                 \
    const T *xw, T *dxw, const T *g, ptrdiff_t n_kh, ptrdiff_t n_kw,                     \
    ptrdiff_t row_step, ptrdiff_t col_step, int all_ties, ptrdiff_t c_n) {               \
    CYCONV_OVER_CHANNELS(cy_max_disjoint_block, SUF, c_n, xw, dxw, g, n_kh, n_kw,        \
                         row_step, col_step, all_ties);                                  \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_key_disjoint_##SUF(                 \
    const int *key, T *dxw, const T *g, ptrdiff_t n_kh, ptrdiff_t n_kw,                  \
    ptrdiff_t row_step, ptrdiff_t col_step, IT k_first, IT f_w, ptrdiff_t c_n) {         \
    CYCONV_OVER_CHANNELS(cy_key_disjoint_block, SUF, c_n, key, dxw, g, n_kh, n_kw,       \
                         row_step, col_step, k_first, f_w);                              \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_avg_disjoint_##SUF(                 \
    T *dxw, const T *g, ptrdiff_t n_kh, ptrdiff_t n_kw, ptrdiff_t row_step,              \
    ptrdiff_t col_step, T scale, ptrdiff_t c_n) {                                        \
    CYCONV_OVER_CHANNELS(cy_avg_disjoint_block, SUF, c_n, dxw, g, n_kh, n_kw, row_step,  \
                         col_step, scale);                                               \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_gsum_##SUF(                         \
    const T *x, T *acc, ptrdiff_t c_n) {                                                 \
    CYCONV_OVER_CHANNELS(cy_gsum_block, SUF, c_n, x, acc);                               \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_gmax_##SUF(                         \
    const T *x, T *best, ptrdiff_t c_n) {                                                \
    CYCONV_OVER_CHANNELS(cy_gmax_block, SUF, c_n, x, best);                              \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_gargmax_##SUF(                      \
    const T *x, T *best, int *key, IT k, ptrdiff_t c_n) {                                \
    CYCONV_OVER_CHANNELS(cy_gargmax_block, SUF, c_n, x, best, key, k);                   \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_route_row_##SUF(                    \
    const T *dpi, const int *keyi, T *out, ptrdiff_t oh0, ptrdiff_t oh1,                 \
    const ptrdiff_t *cover_w, ptrdiff_t n_w, ptrdiff_t o_w, ptrdiff_t c_n, ptrdiff_t ph, \
    ptrdiff_t p_l, ptrdiff_t s_h, ptrdiff_t s_w, ptrdiff_t f_w, ptrdiff_t d_h,           \
    ptrdiff_t d_w) {                                                                     \
    CYCONV_OVER_CHANNELS_WIDE(cy_route_row_block, SUF, c_n, dpi, keyi, out, oh0, oh1,    \
                              cover_w, n_w, o_w, c_n, ph, p_l, s_h, s_w, f_w, d_h, d_w); \
}                                                                                        \
static inline __attribute__((always_inline)) void cy_spread_row_##SUF(                   \
    const T *dpi, T *out, ptrdiff_t oh0, ptrdiff_t oh1, const ptrdiff_t *cover_w,        \
    ptrdiff_t n_w, ptrdiff_t o_w, ptrdiff_t c_n, const T *inv_h, const T *inv_w) {       \
    CYCONV_OVER_CHANNELS_WIDE(cy_spread_row_block, SUF, c_n, dpi, out, oh0, oh1, cover_w,\
                              n_w, o_w, c_n, inv_h, inv_w);                              \
}

/* Whole vectors, a block at most; one lane, fewer than a whole vector (NV */
/* one more than needed: with NV = 1, GCC warns of uninitialised lanes).    */
#define CYCONV_LANES(T) (CYCONV_VBYTES / sizeof(T))
CYCONV_DEFINE_POOL_VECTOR(float, f32, int, CYCONV_VBYTES)
CYCONV_DEFINE_POOL_VECTOR(double, f64, long long, CYCONV_VBYTES)
CYCONV_DEFINE_POOL_LANE(float, f32_1, int)
CYCONV_DEFINE_POOL_LANE(double, f64_1, long long)
CYCONV_DEFINE_POOL_BLOCKS(float, f32, int, CYCONV_CB / CYCONV_LANES(float))
CYCONV_DEFINE_POOL_BLOCKS(float, f32_1, int, CYCONV_LANES(float))
CYCONV_DEFINE_POOL_BLOCKS(double, f64, long long, CYCONV_CB / CYCONV_LANES(double))
CYCONV_DEFINE_POOL_BLOCKS(double, f64_1, long long, CYCONV_LANES(double))
CYCONV_DEFINE_POOL_CHANNELS(float, f32, int)
CYCONV_DEFINE_POOL_CHANNELS(double, f64, long long)

#endif
