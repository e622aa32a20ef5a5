/* Depthwise convolution (groups == C_in): the loops vectorised over channels.
 *
 * A depthwise layer has one product per tap and output, so it is memory-bound:
 * the kernels below stream NHWC rows and keep vectors of channels (the
 * contiguous axis) in registers, with no packing. With channel multiplier M
 * (C_out = M * C_in) output channel co reads input channel co / M; M == 1, the
 * common case (MobileNet, EfficientNet), runs on whole vectors, M > 1 on the
 * scalar forms (correct, not tuned).
 *
 * Tap lists come from the tap builder of _conv.pyx (a height list times a width
 * list of (input offset, weight offset) pairs, height outer), and every element
 * sums its taps in that order, so a result depends on the shapes alone.
 *
 * Included by _conv.pyx after _conv_simd.h (whose vector types and loads it
 * uses), so it is compiled once per CPU level with that level's vector width.
 */
#ifndef CYCONV_DEPTHWISE_H
#define CYCONV_DEPTHWISE_H

#include "_conv_simd.h"

/* v <= 0 ? +0 : v on a vector (NaN passes), as the tile's ReLU store. */
#define CYC_DWC_RELU(SUF, v) ((cyc_v##SUF)(~(cyc_bits)((v) <= 0) & (cyc_bits)(v)))

#define CYCONV_DEFINE_DEPTHWISE(T, SUF)                                              \
/* out[c] = init[c] + sum_{a, b} in[h_in[a] + v_in[b] + c] * w[h_w[a] + v_w[b] + c]  */ \
/* for c < C (init: bias, or 0 when NULL), then ReLU if asked: one pixel of the   */ \
/* forward (in = x) or of dx (in = dz, gathered taps). Chunks of 4 vectors, then  */ \
/* 1, then scalars; every element sums its taps in the same order.                */ \
static void cyc_dwc_pixel_##SUF(const T *restrict in, const T *restrict w,          \
                                const ptrdiff_t *h_in, const ptrdiff_t *h_w,         \
                                ptrdiff_t nh, const ptrdiff_t *v_in,                 \
                                const ptrdiff_t *v_w, ptrdiff_t nv,                  \
                                const T *restrict init, T *restrict out,             \
                                ptrdiff_t C, int relu) {                             \
    enum { NL = CYC_NL_##SUF };                                                      \
    ptrdiff_t c = 0;                                                                 \
    for (; c + 4 * NL <= C; c += 4 * NL) {                                           \
        cyc_v##SUF a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                           \
        if (init) {                                                                  \
            a0 = cyc_load_##SUF(init + c); a1 = cyc_load_##SUF(init + c + NL);       \
            a2 = cyc_load_##SUF(init + c + 2 * NL);                                  \
            a3 = cyc_load_##SUF(init + c + 3 * NL);                                  \
        }                                                                            \
        for (ptrdiff_t a = 0; a < nh; a++)                                           \
            for (ptrdiff_t b = 0; b < nv; b++) {                                     \
                const T *ip = in + h_in[a] + v_in[b] + c;                            \
                const T *wp = w + h_w[a] + v_w[b] + c;                               \
                a0 += cyc_load_##SUF(ip) * cyc_load_##SUF(wp);                       \
                a1 += cyc_load_##SUF(ip + NL) * cyc_load_##SUF(wp + NL);             \
                a2 += cyc_load_##SUF(ip + 2 * NL) * cyc_load_##SUF(wp + 2 * NL);     \
                a3 += cyc_load_##SUF(ip + 3 * NL) * cyc_load_##SUF(wp + 3 * NL);     \
            }                                                                        \
        if (relu) {                                                                  \
            a0 = CYC_DWC_RELU(SUF, a0); a1 = CYC_DWC_RELU(SUF, a1);                  \
            a2 = CYC_DWC_RELU(SUF, a2); a3 = CYC_DWC_RELU(SUF, a3);                  \
        }                                                                            \
        cyc_store_##SUF(out + c, a0); cyc_store_##SUF(out + c + NL, a1);             \
        cyc_store_##SUF(out + c + 2 * NL, a2); cyc_store_##SUF(out + c + 3 * NL, a3); \
    }                                                                                \
    for (; c + NL <= C; c += NL) {                                                   \
        cyc_v##SUF a0 = {0};                                                         \
        if (init) a0 = cyc_load_##SUF(init + c);                                     \
        for (ptrdiff_t a = 0; a < nh; a++)                                           \
            for (ptrdiff_t b = 0; b < nv; b++)                                       \
                a0 += cyc_load_##SUF(in + h_in[a] + v_in[b] + c)                     \
                      * cyc_load_##SUF(w + h_w[a] + v_w[b] + c);                     \
        if (relu) a0 = CYC_DWC_RELU(SUF, a0);                                        \
        cyc_store_##SUF(out + c, a0);                                                \
    }                                                                                \
    for (; c < C; c++) {                                                             \
        T a0 = init ? init[c] : 0;                                                   \
        for (ptrdiff_t a = 0; a < nh; a++)                                           \
            for (ptrdiff_t b = 0; b < nv; b++)                                       \
                a0 += in[h_in[a] + v_in[b] + c] * w[h_w[a] + v_w[b] + c];            \
        out[c] = relu && !(a0 > 0) && a0 == a0 ? 0 : a0;                             \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* A tile of P pixels sharing one tap list (M == 1):                              */ \
/*   out[q * out_ps + c] = init[c] + sum_t in[q * in_ps + in_off[t] + c] * w[w_off[t] + c] */ \
/* for q < P, c < C: per channel chunk of 2 (then 1) vectors, each tap's weights  */ \
/* loaded once for the P pixels. Every element sums its taps in list order, as   */ \
/* cyc_dwc_pixel, so interior tiles and edge pixels round alike.                 */ \
CYC_INLINE void cyc_dwc_tile_##SUF(int P, const T *restrict in, ptrdiff_t in_ps,     \
                                   const T *restrict w, const ptrdiff_t *in_off,     \
                                   const ptrdiff_t *w_off, ptrdiff_t nt,             \
                                   const T *restrict init, T *restrict out,          \
                                   ptrdiff_t out_ps, ptrdiff_t C, int relu) {        \
    enum { NL = CYC_NL_##SUF };                                                      \
    ptrdiff_t c = 0;                                                                 \
    for (; c + 2 * NL <= C; c += 2 * NL) {                                           \
        cyc_v##SUF a[4][2], b0 = {0}, b1 = {0};                                      \
        if (init) { b0 = cyc_load_##SUF(init + c); b1 = cyc_load_##SUF(init + c + NL); } \
        _Pragma("GCC unroll 4")                                                      \
        for (int q = 0; q < P; q++) { a[q][0] = b0; a[q][1] = b1; }                  \
        for (ptrdiff_t t = 0; t < nt; t++) {                                         \
            const T *ip = in + in_off[t] + c, *wp = w + w_off[t] + c;                \
            cyc_v##SUF w0 = cyc_load_##SUF(wp), w1 = cyc_load_##SUF(wp + NL);        \
            _Pragma("GCC unroll 4")                                                  \
            for (int q = 0; q < P; q++) {                                            \
                a[q][0] += cyc_load_##SUF(ip + q * in_ps) * w0;                      \
                a[q][1] += cyc_load_##SUF(ip + q * in_ps + NL) * w1;                 \
            }                                                                        \
        }                                                                            \
        _Pragma("GCC unroll 4")                                                      \
        for (int q = 0; q < P; q++) {                                                \
            if (relu) { a[q][0] = CYC_DWC_RELU(SUF, a[q][0]);                        \
                        a[q][1] = CYC_DWC_RELU(SUF, a[q][1]); }                      \
            cyc_store_##SUF(out + q * out_ps + c, a[q][0]);                          \
            cyc_store_##SUF(out + q * out_ps + c + NL, a[q][1]);                     \
        }                                                                            \
    }                                                                                \
    for (; c + NL <= C; c += NL) {                                                   \
        cyc_v##SUF a[4], b0 = {0};                                                   \
        if (init) b0 = cyc_load_##SUF(init + c);                                     \
        _Pragma("GCC unroll 4")                                                      \
        for (int q = 0; q < P; q++) a[q] = b0;                                       \
        for (ptrdiff_t t = 0; t < nt; t++) {                                         \
            const T *ip = in + in_off[t] + c;                                        \
            cyc_v##SUF w0 = cyc_load_##SUF(w + w_off[t] + c);                        \
            _Pragma("GCC unroll 4")                                                  \
            for (int q = 0; q < P; q++) a[q] += cyc_load_##SUF(ip + q * in_ps) * w0; \
        }                                                                            \
        _Pragma("GCC unroll 4")                                                      \
        for (int q = 0; q < P; q++) {                                                \
            if (relu) a[q] = CYC_DWC_RELU(SUF, a[q]);                                \
            cyc_store_##SUF(out + q * out_ps + c, a[q]);                             \
        }                                                                            \
    }                                                                                \
    for (; c < C; c++)                                                               \
        for (int q = 0; q < P; q++) {                                                \
            T a0 = init ? init[c] : 0;                                               \
            for (ptrdiff_t t = 0; t < nt; t++)                                       \
                a0 += in[q * in_ps + in_off[t] + c] * w[w_off[t] + c];               \
            out[q * out_ps + c] = relu && a0 <= 0 ? 0 : a0;                          \
        }                                                                            \
}                                                                                    \
                                                                                     \
/* npix pixels in tiles of 4 (then 1), sharing one tap list (M == 1).             */ \
static void cyc_dwc_run_##SUF(const T *in, ptrdiff_t in_ps, const T *w,              \
                              const ptrdiff_t *in_off, const ptrdiff_t *w_off,       \
                              ptrdiff_t nt, const T *init, T *out, ptrdiff_t out_ps, \
                              ptrdiff_t npix, ptrdiff_t C, int relu) {               \
    ptrdiff_t q = 0;                                                                 \
    for (; q + 4 <= npix; q += 4)                                                    \
        cyc_dwc_tile_##SUF(4, in + q * in_ps, in_ps, w, in_off, w_off, nt, init,     \
                           out + q * out_ps, out_ps, C, relu);                       \
    for (; q < npix; q++)                                                            \
        cyc_dwc_tile_##SUF(1, in + q * in_ps, in_ps, w, in_off, w_off, nt, init,     \
                           out + q * out_ps, out_ps, C, relu);                       \
}                                                                                    \
                                                                                     \
/* The forward pixel with multiplier M: out[co] over co = c * M + j reads in[c]. */  \
static void cyc_dwc_pixel_mult_##SUF(const T *restrict in, const T *restrict w,     \
                                     const ptrdiff_t *h_in, const ptrdiff_t *h_w,    \
                                     ptrdiff_t nh, const ptrdiff_t *v_in,            \
                                     const ptrdiff_t *v_w, ptrdiff_t nv,             \
                                     const T *restrict init, T *restrict out,        \
                                     ptrdiff_t C_in, ptrdiff_t M, int relu) {        \
    for (ptrdiff_t ci = 0; ci < C_in; ci++)                                          \
        for (ptrdiff_t j = 0; j < M; j++) {                                          \
            ptrdiff_t co = ci * M + j;                                               \
            T a0 = init ? init[co] : 0;                                              \
            for (ptrdiff_t a = 0; a < nh; a++)                                       \
                for (ptrdiff_t b = 0; b < nv; b++)                                   \
                    a0 += in[h_in[a] + v_in[b] + ci] * w[h_w[a] + v_w[b] + co];      \
            out[co] = relu && !(a0 > 0) && a0 == a0 ? 0 : a0;                        \
        }                                                                            \
}                                                                                    \
                                                                                     \
/* The dx pixel with multiplier M: out[ci] = sum_taps sum_j in[.. + ci*M + j]     */ \
/* * w[.. + ci*M + j] (in = dz).                                                   */ \
static void cyc_dwc_pixel_dx_mult_##SUF(const T *restrict in, const T *restrict w,  \
                                        const ptrdiff_t *h_in, const ptrdiff_t *h_w, \
                                        ptrdiff_t nh, const ptrdiff_t *v_in,         \
                                        const ptrdiff_t *v_w, ptrdiff_t nv,          \
                                        T *restrict out, ptrdiff_t C_in,             \
                                        ptrdiff_t M) {                               \
    for (ptrdiff_t ci = 0; ci < C_in; ci++) {                                        \
        T a0 = 0;                                                                    \
        for (ptrdiff_t a = 0; a < nh; a++)                                           \
            for (ptrdiff_t b = 0; b < nv; b++)                                       \
                for (ptrdiff_t j = 0; j < M; j++)                                    \
                    a0 += in[h_in[a] + v_in[b] + ci * M + j]                         \
                          * w[h_w[a] + v_w[b] + ci * M + j];                         \
        out[ci] = a0;                                                                \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* acc[co] += sum_{j < n} x[j * xs + co / M] * dz[j * zs + co]: one (row, kh, kw) */ \
/* piece of dw, summed in registers as two partial sums (even and odd j, so two  */ \
/* FMA chains run at once) added at the end: an order fixed by n alone.          */ \
static void cyc_dwc_dw_run_##SUF(const T *restrict x, ptrdiff_t xs,                 \
                                 const T *restrict dz, ptrdiff_t zs, ptrdiff_t n,    \
                                 T *restrict acc, ptrdiff_t C_out, ptrdiff_t M) {    \
    enum { NL = CYC_NL_##SUF };                                                      \
    ptrdiff_t c = 0;                                                                 \
    if (M == 1) {                                                                    \
        for (; c + 2 * NL <= C_out; c += 2 * NL) {                                   \
            cyc_v##SUF a0 = {0}, a1 = {0}, e0 = {0}, e1 = {0};                       \
            ptrdiff_t j = 0;                                                         \
            for (; j + 2 <= n; j += 2) {                                             \
                const T *xp = x + j * xs + c, *zp = dz + j * zs + c;                 \
                a0 += cyc_load_##SUF(xp) * cyc_load_##SUF(zp);                       \
                a1 += cyc_load_##SUF(xp + NL) * cyc_load_##SUF(zp + NL);             \
                e0 += cyc_load_##SUF(xp + xs) * cyc_load_##SUF(zp + zs);             \
                e1 += cyc_load_##SUF(xp + xs + NL) * cyc_load_##SUF(zp + zs + NL);   \
            }                                                                        \
            if (j < n) {                                                             \
                const T *xp = x + j * xs + c, *zp = dz + j * zs + c;                 \
                a0 += cyc_load_##SUF(xp) * cyc_load_##SUF(zp);                       \
                a1 += cyc_load_##SUF(xp + NL) * cyc_load_##SUF(zp + NL);             \
            }                                                                        \
            cyc_store_##SUF(acc + c, cyc_load_##SUF(acc + c) + (a0 + e0));           \
            cyc_store_##SUF(acc + c + NL, cyc_load_##SUF(acc + c + NL) + (a1 + e1)); \
        }                                                                            \
        for (; c + NL <= C_out; c += NL) {                                           \
            cyc_v##SUF a0 = {0}, e0 = {0};                                           \
            ptrdiff_t j = 0;                                                         \
            for (; j + 2 <= n; j += 2) {                                             \
                a0 += cyc_load_##SUF(x + j * xs + c) * cyc_load_##SUF(dz + j * zs + c); \
                e0 += cyc_load_##SUF(x + (j + 1) * xs + c)                           \
                      * cyc_load_##SUF(dz + (j + 1) * zs + c);                       \
            }                                                                        \
            if (j < n)                                                               \
                a0 += cyc_load_##SUF(x + j * xs + c) * cyc_load_##SUF(dz + j * zs + c); \
            cyc_store_##SUF(acc + c, cyc_load_##SUF(acc + c) + (a0 + e0));           \
        }                                                                            \
    }                                                                                \
    for (; c < C_out; c++) {                                                         \
        T a0 = 0, e0 = 0;                                                            \
        ptrdiff_t j = 0;                                                             \
        for (; j + 2 <= n; j += 2) {                                                 \
            a0 += x[j * xs + c / M] * dz[j * zs + c];                                \
            e0 += x[(j + 1) * xs + c / M] * dz[(j + 1) * zs + c];                    \
        }                                                                            \
        if (j < n) a0 += x[j * xs + c / M] * dz[j * zs + c];                         \
        acc[c] += a0 + e0;                                                           \
    }                                                                                \
}

CYCONV_DEFINE_DEPTHWISE(float, f32)
CYCONV_DEFINE_DEPTHWISE(double, f64)

#endif
