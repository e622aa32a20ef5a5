/* Pooling micro-kernels on one block of nv vectors of contiguous channels
 * (nv <= CYCONV_CB / lanes; the caller passes the full count for full blocks,
 * so inlining makes the trip count a constant).
 *
 * GCC's auto-vectoriser does not reliably vectorise the compare-and-blend
 * loops of max pooling (it gave scalar code for the argmax), so these few
 * loops are written with GCC/Clang vector extensions: one source, compiled
 * for the vector width of each CPU level setup.py builds (16 bytes = SSE2 at the
 * x86-64 baseline). Loops over windows, threads and validation stay in
 * Cython (_pool_kernels.pxi); these functions only see one window and one block.
 *
 * Semantics (shared with the scalar tail loops in _pool_kernels.pxi):
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

typedef int cy_bits __attribute__((vector_size(CYCONV_VBYTES)));

#define CYCONV_DEFINE_POOL_BLOCKS(T, SUF, IT)                                        \
typedef T cy_v##SUF __attribute__((vector_size(CYCONV_VBYTES)));                    \
typedef IT cy_m##SUF __attribute__((vector_size(CYCONV_VBYTES)));                   \
/* argmax keys are stored as int32 whatever T: int lanes, one per T lane    */      \
typedef int cy_ki##SUF __attribute__((vector_size(CYCONV_VBYTES / sizeof(T) * sizeof(int)))); \
enum { CY_NL_##SUF = CYCONV_VBYTES / sizeof(T), CY_NV_##SUF = CYCONV_CB / CY_NL_##SUF }; \
                                                                                     \
static inline cy_v##SUF cy_load_##SUF(const T *p) {                                 \
    cy_v##SUF v; memcpy(&v, p, sizeof v); return v;                                  \
}                                                                                    \
static inline void cy_store_##SUF(T *p, cy_v##SUF v) { memcpy(p, &v, sizeof v); }   \
static inline cy_m##SUF cy_kload_##SUF(const int *p) {                              \
    cy_ki##SUF v; memcpy(&v, p, sizeof v); return __builtin_convertvector(v, cy_m##SUF); \
}                                                                                    \
static inline void cy_kstore_##SUF(int *p, cy_m##SUF k) {                           \
    cy_ki##SUF v = __builtin_convertvector(k, cy_ki##SUF); memcpy(p, &v, sizeof v);  \
}                                                                                    \
static inline cy_v##SUF cy_blend_##SUF(cy_bits take, cy_v##SUF a, cy_v##SUF b) {    \
    /* take ? a : b, lane by lane. The bit operations run on 32-bit lanes:   */      \
    /* on 64-bit lanes GCC turns this into a select that SSE2 lacks and     */      \
    /* falls back to scalar code.                                            */      \
    return (cy_v##SUF)((take & (cy_bits)a) | (~take & (cy_bits)b));                  \
}                                                                                    \
static inline cy_bits cy_takes_over_##SUF(cy_v##SUF v, cy_v##SUF best) {            \
    /* masks go to 32-bit lanes at once: GCC handles 64-bit lane masks of   */      \
    /* comparisons through scalar code on SSE2                              */      \
    /* !(v <= best) is v > best or either is NaN; a NaN best keeps its place */    \
    return ~(cy_bits)(v <= best) & (cy_bits)(best == best);                          \
}                                                                                    \
                                                                                     \
/* out[c] = max over the n_kh x n_kw taps starting at xw. The running max */      \
/* is a plain compare-and-blend; NaNs are collected in a separate mask and  */      \
/* applied once at the end (acc * (1 + NaN) is NaN, acc * 1 is exact).      */      \
static inline __attribute__((always_inline)) void cy_max_block_##SUF(const T *xw, T *out, ptrdiff_t n_kh,          \
                                      ptrdiff_t n_kw, ptrdiff_t row_step,            \
                                      ptrdiff_t col_step, int nv) {                  \
    cy_v##SUF acc[CY_NV_##SUF];                                                      \
    cy_bits nan[CY_NV_##SUF];                                                        \
    for (int j = 0; j < nv; j++) {                                                   \
        acc[j] = (cy_v##SUF){0} - (T)INFINITY;                                       \
        nan[j] = (cy_bits){0};                                                       \
    }                                                                                \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                          \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                    \
            const T *xp = xw + kh * row_step + kw * col_step;                        \
            for (int j = 0; j < nv; j++) {                                           \
                cy_v##SUF v = cy_load_##SUF(xp + j * CY_NL_##SUF);                    \
                acc[j] = cy_blend_##SUF((cy_bits)(v > acc[j]), v, acc[j]);         \
                nan[j] |= (cy_bits)(v != v);                                         \
            }                                                                        \
        }                                                                            \
    for (int j = 0; j < nv; j++) {                                                   \
        cy_v##SUF one_or_nan = (cy_v##SUF){0} + (T)1                                 \
            + (cy_v##SUF)(nan[j] & (cy_bits)((cy_v##SUF){0} + (T)NAN));              \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j] * one_or_nan);                  \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* out[c] = scale * sum over the n_kh x n_kw taps starting at xw, CB channels. */    \
static inline __attribute__((always_inline)) void cy_sum_block_##SUF(const T *xw, T *out, ptrdiff_t n_kh,           \
                                      ptrdiff_t n_kw, ptrdiff_t row_step,            \
                                      ptrdiff_t col_step, T scale, int nv) {                 \
    cy_v##SUF acc[CY_NV_##SUF];                                                      \
    for (int j = 0; j < nv; j++)                                            \
        acc[j] = (cy_v##SUF){0};                                                     \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                          \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                    \
            const T *xp = xw + kh * row_step + kw * col_step;                        \
            for (int j = 0; j < nv; j++)                                    \
                acc[j] += cy_load_##SUF(xp + j * CY_NL_##SUF);                        \
        }                                                                            \
    for (int j = 0; j < nv; j++)                                            \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j] * scale);                       \
}                                                                                    \
                                                                                     \
/* best[c] = first maximum of the window starting at xw (at least one tap), */      \
/* key[c] = its tap index kh * f_w + kw in the full window (int32; picked */      \
/* in lanes of T's width, IT, so the blend runs on one lane width);        */      \
/* k_first is the index of the first real tap.                             */      \
static inline __attribute__((always_inline)) void cy_argmax_block_##SUF(const T *xw, ptrdiff_t n_kh,              \
                                         ptrdiff_t n_kw, ptrdiff_t row_step,         \
                                         ptrdiff_t col_step, IT k_first, IT f_w,     \
                                         T *best, int *key, int nv) {                \
    cy_v##SUF b[CY_NV_##SUF];                                                        \
    cy_m##SUF k[CY_NV_##SUF];                                                        \
    for (int j = 0; j < nv; j++) {                                          \
        b[j] = cy_load_##SUF(xw + j * CY_NL_##SUF);                                  \
        k[j] = (cy_m##SUF){0} + k_first;                                             \
    }                                                                                \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                          \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                    \
            cy_m##SUF kv = (cy_m##SUF){0} + (IT)(k_first + (IT)kh * f_w + (IT)kw);   \
            const T *xp = xw + kh * row_step + kw * col_step;                        \
            for (int j = 0; j < nv; j++) {                                  \
                cy_v##SUF v = cy_load_##SUF(xp + j * CY_NL_##SUF);                    \
                cy_bits take = cy_takes_over_##SUF(v, b[j]);                       \
                b[j] = cy_blend_##SUF(take, v, b[j]);                                \
                k[j] = (cy_m##SUF)((take & (cy_bits)kv) | (~take & (cy_bits)k[j]));  \
            }                                                                        \
        }                                                                            \
    for (int j = 0; j < nv; j++) {                                          \
        cy_store_##SUF(best + j * CY_NL_##SUF, b[j]);                                \
        cy_kstore_##SUF(key + j * CY_NL_##SUF, k[j]);                                \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* out[c] = sum of dp[oh, ow, c] over the windows (oh, ow) in              */      \
/* [oh0, oh1) x [ow0, ow1) covering input (ih, iw) whose key[oh, ow, c]     */      \
/* names this input: its tap index (ph - oh*s_h) * f_w + (pw - ow*s_w),     */      \
/* with ph = ih + p_top, pw = iw + p_left.                                   */      \
static inline __attribute__((always_inline)) void cy_route_first_block_##SUF(const T *dpi, const int *keyi, T *out, \
                                              ptrdiff_t oh0, ptrdiff_t oh1,         \
                                              ptrdiff_t ow0, ptrdiff_t ow1,         \
                                              ptrdiff_t o_w, ptrdiff_t c_n,         \
                                              ptrdiff_t ph, ptrdiff_t pw,           \
                                              ptrdiff_t s_h, ptrdiff_t s_w,         \
                                              ptrdiff_t f_w, int nv) {                      \
    cy_v##SUF acc[CY_NV_##SUF];                                                      \
    for (int j = 0; j < nv; j++)                                            \
        acc[j] = (cy_v##SUF){0};                                                     \
    for (ptrdiff_t oh = oh0; oh < oh1; oh++)                                         \
        for (ptrdiff_t ow = ow0; ow < ow1; ow++) {                                   \
            ptrdiff_t at = (oh * o_w + ow) * c_n;                                    \
            cy_m##SUF kv = (cy_m##SUF){0}                                            \
                + (IT)((ph - oh * s_h) * f_w + (pw - ow * s_w));                     \
            for (int j = 0; j < nv; j++) {                                  \
                cy_v##SUF g = cy_load_##SUF(dpi + at + j * CY_NL_##SUF);              \
                cy_m##SUF key = cy_kload_##SUF(keyi + at + j * CY_NL_##SUF);         \
                acc[j] += (cy_v##SUF)((cy_bits)(key == kv) & (cy_bits)g);              \
            }                                                                        \
        }                                                                            \
    for (int j = 0; j < nv; j++)                                            \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j]);                               \
}                                                                                    \
                                                                                     \
/* As cy_route_first_block, but every window whose maximum best[oh, ow, c]  */      \
/* equals the input value xv[c] passes its gradient (the course's mask).    */      \
static inline __attribute__((always_inline)) void cy_route_ties_block_##SUF(const T *dpi, const T *besti,          \
                                             const T *xv, T *out,                   \
                                             ptrdiff_t oh0, ptrdiff_t oh1,          \
                                             ptrdiff_t ow0, ptrdiff_t ow1,          \
                                             ptrdiff_t o_w, ptrdiff_t c_n, int nv) {        \
    cy_v##SUF acc[CY_NV_##SUF], x[CY_NV_##SUF];                                      \
    for (int j = 0; j < nv; j++) {                                          \
        acc[j] = (cy_v##SUF){0};                                                     \
        x[j] = cy_load_##SUF(xv + j * CY_NL_##SUF);                                  \
    }                                                                                \
    for (ptrdiff_t oh = oh0; oh < oh1; oh++)                                         \
        for (ptrdiff_t ow = ow0; ow < ow1; ow++) {                                   \
            ptrdiff_t at = (oh * o_w + ow) * c_n;                                    \
            for (int j = 0; j < nv; j++) {                                  \
                cy_v##SUF g = cy_load_##SUF(dpi + at + j * CY_NL_##SUF);              \
                cy_v##SUF b = cy_load_##SUF(besti + at + j * CY_NL_##SUF);            \
                acc[j] += (cy_v##SUF)((cy_bits)(b == x[j]) & (cy_bits)g);              \
            }                                                                        \
        }                                                                            \
    for (int j = 0; j < nv; j++)                                            \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j]);                               \
}                                                                                    \
                                                                                     \
/* Disjoint windows (stride >= pool size): each input element belongs to at  */      \
/* most one window, so the backward pass writes every tap of the window     */      \
/* directly: max routes g to the first maximum (all_ties: to every element */      \
/* equal to the maximum), average spreads g * scale.                        */      \
static inline __attribute__((always_inline)) void cy_max_route_disjoint_##SUF(const T *xw, T *dxw, const T *g,    \
                                               ptrdiff_t n_kh, ptrdiff_t n_kw,      \
                                               ptrdiff_t row_step,                  \
                                               ptrdiff_t col_step, int all_ties,    \
                                               int nv) {                            \
    cy_v##SUF b[CY_NV_##SUF], k[CY_NV_##SUF], gv[CY_NV_##SUF];                       \
    for (int j = 0; j < nv; j++) {                                                   \
        b[j] = cy_load_##SUF(xw + j * CY_NL_##SUF);                                  \
        k[j] = (cy_v##SUF){0};                                                       \
        gv[j] = cy_load_##SUF(g + j * CY_NL_##SUF);                                  \
    }                                                                                \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                          \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                    \
            cy_v##SUF kv = (cy_v##SUF){0} + (T)(kh * n_kw + kw);                     \
            const T *xp = xw + kh * row_step + kw * col_step;                        \
            for (int j = 0; j < nv; j++) {                                           \
                cy_v##SUF v = cy_load_##SUF(xp + j * CY_NL_##SUF);                    \
                cy_bits take = cy_takes_over_##SUF(v, b[j]);                       \
                b[j] = cy_blend_##SUF(take, v, b[j]);                                \
                k[j] = cy_blend_##SUF(take, kv, k[j]);                               \
            }                                                                        \
        }                                                                            \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                          \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                    \
            cy_v##SUF kv = (cy_v##SUF){0} + (T)(kh * n_kw + kw);                     \
            ptrdiff_t at = kh * row_step + kw * col_step;                            \
            /* two loops, not a per-lane choice of masks (GCC scalarises it) */      \
            if (all_ties)                                                            \
                for (int j = 0; j < nv; j++) {                                       \
                    cy_bits hit = (cy_bits)(cy_load_##SUF(xw + at + j * CY_NL_##SUF) \
                                            == b[j]);                                \
                    cy_store_##SUF(dxw + at + j * CY_NL_##SUF,                       \
                                   (cy_v##SUF)(hit & (cy_bits)gv[j]));               \
                }                                                                    \
            else                                                                     \
                for (int j = 0; j < nv; j++) {                                       \
                    cy_bits hit = (cy_bits)(k[j] == kv);                             \
                    cy_store_##SUF(dxw + at + j * CY_NL_##SUF,                       \
                                   (cy_v##SUF)(hit & (cy_bits)gv[j]));               \
                }                                                                    \
        }                                                                            \
}                                                                                    \
                                                                                     \
/* As cy_max_route_disjoint, routed by the forward's argmax keys (integer  */      \
/* tap indices in the full window; k_first is the first real tap's index):  */      \
/* no search of x. A key naming no real tap routes nowhere.                 */      \
static inline __attribute__((always_inline)) void cy_key_route_disjoint_##SUF(const int *key, T *dxw,             \
                                               const T *g, ptrdiff_t n_kh,          \
                                               ptrdiff_t n_kw, ptrdiff_t row_step,  \
                                               ptrdiff_t col_step, IT k_first,      \
                                               IT f_w, int nv) {                    \
    cy_m##SUF k[CY_NV_##SUF];                                                        \
    cy_v##SUF gv[CY_NV_##SUF];                                                       \
    for (int j = 0; j < nv; j++) {                                                   \
        k[j] = cy_kload_##SUF(key + j * CY_NL_##SUF);                                \
        gv[j] = cy_load_##SUF(g + j * CY_NL_##SUF);                                  \
    }                                                                                \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                          \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++) {                                    \
            cy_m##SUF kv = (cy_m##SUF){0} + (IT)(k_first + (IT)kh * f_w + (IT)kw);   \
            ptrdiff_t at = kh * row_step + kw * col_step;                            \
            for (int j = 0; j < nv; j++)                                             \
                cy_store_##SUF(dxw + at + j * CY_NL_##SUF,                           \
                               (cy_v##SUF)((cy_bits)(k[j] == kv) & (cy_bits)gv[j])); \
        }                                                                            \
}                                                                                    \
                                                                                     \
static inline __attribute__((always_inline)) void cy_avg_spread_disjoint_##SUF(T *dxw, const T *g, ptrdiff_t n_kh, \
                                                ptrdiff_t n_kw, ptrdiff_t row_step,  \
                                                ptrdiff_t col_step, T scale,         \
                                                int nv) {                            \
    cy_v##SUF gv[CY_NV_##SUF];                                                       \
    for (int j = 0; j < nv; j++)                                                     \
        gv[j] = cy_load_##SUF(g + j * CY_NL_##SUF) * scale;                          \
    for (ptrdiff_t kh = 0; kh < n_kh; kh++)                                          \
        for (ptrdiff_t kw = 0; kw < n_kw; kw++)                                      \
            for (int j = 0; j < nv; j++)                                             \
                cy_store_##SUF(dxw + kh * row_step + kw * col_step + j * CY_NL_##SUF, \
                               gv[j]);                                               \
}                                                                                    \
                                                                                     \
/* out[c] = sum over outputs (oh, ow) in [oh0, oh1) x [ow0, ow1) of          */      \
/* dp[oh, ow, c] * inv_h[oh] * inv_w[ow], for CB channels.                   */      \
static inline __attribute__((always_inline)) void cy_spread_block_##SUF(const T *dpi, T *out, ptrdiff_t oh0,      \
                                         ptrdiff_t oh1, ptrdiff_t ow0,               \
                                         ptrdiff_t ow1, ptrdiff_t o_w,               \
                                         ptrdiff_t c_n, const T *inv_h,              \
                                         const T *inv_w, int nv) {                           \
    cy_v##SUF acc[CY_NV_##SUF];                                                      \
    for (int j = 0; j < nv; j++)                                            \
        acc[j] = (cy_v##SUF){0};                                                     \
    for (ptrdiff_t oh = oh0; oh < oh1; oh++)                                         \
        for (ptrdiff_t ow = ow0; ow < ow1; ow++) {                                   \
            const T *gp = dpi + (oh * o_w + ow) * c_n;                               \
            T scale = inv_h[oh] * inv_w[ow];                                         \
            for (int j = 0; j < nv; j++)                                    \
                acc[j] += cy_load_##SUF(gp + j * CY_NL_##SUF) * scale;               \
        }                                                                            \
    for (int j = 0; j < nv; j++)                                            \
        cy_store_##SUF(out + j * CY_NL_##SUF, acc[j]);                               \
}

CYCONV_DEFINE_POOL_BLOCKS(float, f32, int)
CYCONV_DEFINE_POOL_BLOCKS(double, f64, long long)

#endif
