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
/* Pixels per tile of the 3-tap rows: 8 where 32 vector registers hold 16 sums,
 * the weights and the column in flight (AVX-512), else 4. */
#if CYC_VBYTES >= 64
#define CYC_DWC_P 8
#else
#define CYC_DWC_P 4
#endif
/* Prefetch the lines of [p, p + bytes): for reading (L2), or for writing.  */
CYC_INLINE void cyc_dwc_prefetch(const char *p, ptrdiff_t bytes, int write) {
    for (ptrdiff_t o = 0; o < bytes; o += 64) {
        if (write) __builtin_prefetch(p + o, 1, 2);
        else __builtin_prefetch(p + o, 0, 2);
    }
}
#define CYC_DWC_RELU(SUF, v) ((cyc_v##SUF)(~(cyc_bits)((v) <= 0) & (cyc_bits)(v)))

/* The tiles at q0 of cyc_dwc_row3, all channels: interior tiles with constant */
/* window bounds (no tests left in the unrolled loop), edge tiles with theirs.  */
#define CYC_DWC_ROW3_TILES(SUF, DIR) {                                               \
    ptrdiff_t c = 0;                                                                 \
    if (j_lo == 0 && j_hi == P + 2) {                                                \
        for (; c + 2 * NL <= C; c += 2 * NL)                                         \
            cyc_dwc_tile3_##SUF(DIR, 2, 0, P + 2, in, col0, in_ps, w, h_in, h_w, nh, \
                                w_step, init, oq, out_ps, c, relu);                  \
        for (; c < C; c += NL)                                                       \
            cyc_dwc_tile3_##SUF(DIR, 1, 0, P + 2, in, col0, in_ps, w, h_in, h_w, nh, \
                                w_step, init, oq, out_ps, c, relu);                  \
    } else {                                                                         \
        for (; c + 2 * NL <= C; c += 2 * NL)                                         \
            cyc_dwc_tile3_##SUF(DIR, 2, j_lo, j_hi, in, col0, in_ps, w, h_in, h_w,   \
                                nh, w_step, init, oq, out_ps, c, relu);              \
        for (; c < C; c += NL)                                                       \
            cyc_dwc_tile3_##SUF(DIR, 1, j_lo, j_hi, in, col0, in_ps, w, h_in, h_w,   \
                                nh, w_step, init, oq, out_ps, c, relu);              \
    }                                                                                \
}

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
/* Rows of 3-tap kernels at unit stride and dilation (M == 1): consecutive      */ \
/* pixels' windows overlap, so per kernel row the tile loads each input column  */ \
/* once (P + 2 of them, not 3 P) and applies it to the up-to-3 pixels reading   */ \
/* it: forward (DIR = +1, pixel q reads columns q + k) and dx (DIR = -1, the     */ \
/* gathered column q - k, the window walked from its last column). Taps sum    */ \
/* kernel row by kernel row, kw ascending: the order of the tap lists, so the   */ \
/* pixel forms round alike. Window column j (< P + 2) is input column col0 + j; only the */ \
/* columns j_lo <= j < j_hi exist (the others are padding: their taps are       */ \
/* skipped, not multiplied by zero, so an edge pixel sums the taps it has in    */ \
/* the order of the others, as cyc_dwc_pixel does).                             */ \
/*   out[q * out_ps + c] = init[c] + sum_a sum_{k<3} in[h_in[a] + (col0 + j) * in_ps + c] */ \
/*                                          * w[h_w[a] + k * w_step + c]          */ \
/* with j = q + k (DIR +1) or q + 2 - k (DIR -1).                                */ \
CYC_INLINE void cyc_dwc_tile3_##SUF(int DIR, int NVC, int j_lo, int j_hi,           \
                                    const T *restrict in, ptrdiff_t col0,            \
                                    ptrdiff_t in_ps, const T *restrict w,            \
                                    const ptrdiff_t *h_in, const ptrdiff_t *h_w,     \
                                    ptrdiff_t nh, ptrdiff_t w_step,                  \
                                    const T *restrict init, T *restrict out,         \
                                    ptrdiff_t out_ps, ptrdiff_t c, int relu) {       \
    enum { NL = CYC_NL_##SUF, P = CYC_DWC_P };                                       \
    cyc_v##SUF a[CYC_DWC_P][2], b0 = {0}, b1 = {0};                                  \
    if (init) { b0 = cyc_load_##SUF(init + c);                                       \
                if (NVC > 1) b1 = cyc_load_##SUF(init + c + NL); }                   \
    _Pragma("GCC unroll 8")                                                          \
    for (int q = 0; q < P; q++) { a[q][0] = b0; a[q][1] = b1; }                      \
    for (ptrdiff_t r = 0; r < nh; r++) {                                             \
        const T *ip = in + h_in[r] + c, *wp = w + h_w[r] + c;                        \
        cyc_v##SUF w0[3], w1[3] = {{0}};                                             \
        _Pragma("GCC unroll 3")                                                      \
        for (int k = 0; k < 3; k++) {                                                \
            w0[k] = cyc_load_##SUF(wp + k * w_step);                                 \
            if (NVC > 1) w1[k] = cyc_load_##SUF(wp + k * w_step + NL);               \
        }                                                                            \
        _Pragma("GCC unroll 10")                                                     \
        for (int jj = 0; jj < P + 2; jj++) {                                         \
            int j = DIR > 0 ? jj : P + 1 - jj;                                       \
            if (j < j_lo || j >= j_hi) continue;                                     \
            const T *cp = ip + (col0 + j) * in_ps;                                   \
            cyc_v##SUF x0 = cyc_load_##SUF(cp), x1 = {0};                            \
            if (NVC > 1) x1 = cyc_load_##SUF(cp + NL);                               \
            _Pragma("GCC unroll 3")                                                  \
            for (int k = 0; k < 3; k++) {                                            \
                int q = DIR > 0 ? j - k : j - 2 + k;                                 \
                if (q >= 0 && q < P) {                                               \
                    a[q][0] += x0 * w0[k];                                           \
                    if (NVC > 1) a[q][1] += x1 * w1[k];                              \
                }                                                                    \
            }                                                                        \
        }                                                                            \
    }                                                                                \
    _Pragma("GCC unroll 8")                                                          \
    for (int q = 0; q < P; q++) {                                                    \
        if (relu) { a[q][0] = CYC_DWC_RELU(SUF, a[q][0]);                            \
                    a[q][1] = CYC_DWC_RELU(SUF, a[q][1]); }                          \
        cyc_store_##SUF(out + q * out_ps + c, a[q][0]);                              \
        if (NVC > 1) cyc_store_##SUF(out + q * out_ps + c + NL, a[q][1]);            \
    }                                                                                \
}                                                                                    \
                                                                                     \
/* npix pixels of a row by cyc_dwc_tile3 (P at a time, whole vectors), the rest  */ \
/* (last pixels, scalar channels) by cyc_dwc_tile on the product tap list.       */ \
static void cyc_dwc_run3_##SUF(int dir, const T *in, ptrdiff_t in_ps, const T *w,    \
                               ptrdiff_t v0, const ptrdiff_t *h_in, const ptrdiff_t *h_w, \
                               ptrdiff_t nh, ptrdiff_t w_step,                       \
                               const ptrdiff_t *in_off, const ptrdiff_t *w_off,      \
                               ptrdiff_t nt, const T *init, T *out,                  \
                               ptrdiff_t out_ps, ptrdiff_t npix, ptrdiff_t C,        \
                               int relu) {                                           \
    enum { NL = CYC_NL_##SUF, P = CYC_DWC_P };                                       \
    ptrdiff_t q = 0, cv = C / NL * NL;                                               \
    for (; q + CYC_DWC_P <= npix; q += CYC_DWC_P) {                                  \
        const T *iq = in + q * in_ps, *iv = iq + v0; /* iv: the k = 0 column */     \
        T *oq = out + q * out_ps;                                                    \
        ptrdiff_t c = 0;                                                             \
        for (; c + 2 * NL <= cv; c += 2 * NL) {                                      \
            if (dir > 0) cyc_dwc_tile3_##SUF(1, 2, 0, P + 2, iv, 0, in_ps, w, h_in,  \
                                             h_w, nh, w_step, init, oq, out_ps, c, relu); \
            else cyc_dwc_tile3_##SUF(-1, 2, 0, P + 2, iv, -2, in_ps, w, h_in, h_w,   \
                                     nh, w_step, init, oq, out_ps, c, relu);         \
        }                                                                            \
        for (; c < cv; c += NL) {                                                    \
            if (dir > 0) cyc_dwc_tile3_##SUF(1, 1, 0, P + 2, iv, 0, in_ps, w, h_in,  \
                                             h_w, nh, w_step, init, oq, out_ps, c, relu); \
            else cyc_dwc_tile3_##SUF(-1, 1, 0, P + 2, iv, -2, in_ps, w, h_in, h_w,   \
                                     nh, w_step, init, oq, out_ps, c, relu);         \
        }                                                                            \
        if (cv < C) /* the scalar channels of these pixels */                       \
            for (int p = 0; p < CYC_DWC_P; p++)                                      \
                for (ptrdiff_t cc = cv; cc < C; cc++) {                              \
                    T a0 = init ? init[cc] : 0;                                      \
                    for (ptrdiff_t t = 0; t < nt; t++)                               \
                        a0 += iq[p * in_ps + in_off[t] + cc] * w[w_off[t] + cc];     \
                    oq[p * out_ps + cc] = relu && a0 <= 0 ? 0 : a0;                  \
                }                                                                    \
    }                                                                                \
    cyc_dwc_run_##SUF(in + q * in_ps, in_ps, w, in_off, w_off, nt, init,             \
                      out + q * out_ps, out_ps, npix - q, C, relu);                  \
}                                                                                    \
                                                                                     \
/* A whole output row of 3-tap rows at unit stride and dilation (M == 1), edges */ \
/* included: tiles of P pixels, the last one ending at the row's end (it may     */ \
/* recompute pixels of the one before: the same sums, the same bits), each       */ \
/* tile's window cut to the input columns [0, n_in). Forward (dir +1): output q  */ \
/* reads input columns q - p_l + k; dx (dir -1): input (dx) column q gathers dz  */ \
/* columns q + p_l - k. in: the row's column 0 (h_in offsets added); o_w: the   */ \
/* outputs. pf_in, pf_out (or NULL): the next row's new input row and its output */ \
/* row, prefetched P columns a tile, so that row's loads hit in the cache and    */ \
/* its stores own their lines (the hardware prefetcher does not run ahead of the */ \
/* tile's first touch of a row). Returns 0, having done nothing, when the row is */ \
/* shorter than a tile or C is not whole vectors.                               */ \
static int cyc_dwc_row3_##SUF(int dir, const T *in, ptrdiff_t in_ps, ptrdiff_t n_in, \
                              ptrdiff_t p_l, const T *w, const ptrdiff_t *h_in,      \
                              const ptrdiff_t *h_w, ptrdiff_t nh, ptrdiff_t w_step,  \
                              const T *init, T *out, ptrdiff_t out_ps, ptrdiff_t o_w, \
                              ptrdiff_t C, int relu, const T *pf_in, T *pf_out) {    \
    enum { NL = CYC_NL_##SUF, P = CYC_DWC_P };                                       \
    if (o_w < P || C % NL) return 0;                                                 \
    for (ptrdiff_t q0 = 0; q0 < o_w; q0 += P) {                                      \
        if (q0 > o_w - P) q0 = o_w - P;   /* the last tile ends at the row's end */  \
        if (pf_in && q0 < n_in)                                                      \
            cyc_dwc_prefetch((const char *)(pf_in + q0 * in_ps),                     \
                             ((q0 + P < n_in ? q0 + P : n_in) - q0) * in_ps          \
                             * (ptrdiff_t)sizeof(T), 0);                             \
        if (pf_out)                                                                  \
            cyc_dwc_prefetch((const char *)(pf_out + q0 * out_ps),                   \
                             P * out_ps * (ptrdiff_t)sizeof(T), 1);                  \
        ptrdiff_t col0 = dir > 0 ? q0 - p_l : q0 + p_l - 2;                          \
        ptrdiff_t lo = col0 < 0 ? -col0 : 0, hi = n_in - col0;                       \
        int j_lo = lo > P + 2 ? P + 2 : (int)lo;                                     \
        int j_hi = hi > P + 2 ? P + 2 : hi < 0 ? 0 : (int)hi;                        \
        T *oq = out + q0 * out_ps;                                                   \
        if (dir > 0) CYC_DWC_ROW3_TILES(SUF, 1)                                      \
        else CYC_DWC_ROW3_TILES(SUF, -1)                                             \
    }                                                                                \
    return 1;                                                                        \
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

/* dw of 3-tap rows at unit stride and dilation (M == 1), the interior columns: */
/*   acc[k * C + c] += sum_{j < n} x[(j + k) * xs + c] * dz[j * zs + c], k < 3   */
/* each dz vector loaded once for the three kw, each x column once (it serves   */
/* three pixels as it slides through the window). Sums over j in order.         */
/* lo, hi: the run also takes the output before (j = -1) and after (j = n), one */
/* of whose window columns is padding (the 3x3 "same" rows: the whole row in    */
/* one run, j ascending). pf_x, pf_z (or NULL, both): the next row's x and dz at */
/* the same columns, prefetched as the run goes.                                 */
#define CYCONV_DEFINE_DEPTHWISE_DW3(T, SUF)                                          \
static void cyc_dwc_dw_row3_##SUF(const T *restrict x, ptrdiff_t xs,                \
                                  const T *restrict dz, ptrdiff_t zs, ptrdiff_t n,   \
                                  T *restrict acc, ptrdiff_t C, int lo, int hi,      \
                                  const T *pf_x, const T *pf_z) {                    \
    enum { NL = CYC_NL_##SUF };                                                      \
    ptrdiff_t c = 0;                                                                 \
    for (; c + 2 * NL <= C; c += 2 * NL) {                                           \
        cyc_v##SUF a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0};   \
        const T *xp = x + c, *zp = dz + c;                                           \
        cyc_v##SUF p0 = cyc_load_##SUF(xp), p1 = cyc_load_##SUF(xp + NL);            \
        cyc_v##SUF q0 = cyc_load_##SUF(xp + xs), q1 = cyc_load_##SUF(xp + xs + NL);  \
        if (lo) { /* j = -1: its x column j is padding */                           \
            cyc_v##SUF d0 = cyc_load_##SUF(zp - zs), d1 = cyc_load_##SUF(zp - zs + NL); \
            a10 += p0 * d0; a11 += p1 * d1;                                          \
            a20 += q0 * d0; a21 += q1 * d1;                                          \
        }                                                                            \
        for (ptrdiff_t j = 0; j < n; j++) {                                          \
            if (pf_x) { /* the next row's columns (see cyc_dwc_row3) */              \
                cyc_dwc_prefetch((const char *)(pf_x + j * xs + c), 2 * NL * sizeof(T), 0); \
                cyc_dwc_prefetch((const char *)(pf_z + j * zs + c), 2 * NL * sizeof(T), 0); \
            }                                                                        \
            /* p, q, r: x columns j, j + 1, j + 2 */                                 \
            cyc_v##SUF r0 = cyc_load_##SUF(xp + (j + 2) * xs);                       \
            cyc_v##SUF r1 = cyc_load_##SUF(xp + (j + 2) * xs + NL);                  \
            cyc_v##SUF d0 = cyc_load_##SUF(zp + j * zs), d1 = cyc_load_##SUF(zp + j * zs + NL); \
            a00 += p0 * d0; a01 += p1 * d1;                                          \
            a10 += q0 * d0; a11 += q1 * d1;                                          \
            a20 += r0 * d0; a21 += r1 * d1;                                          \
            p0 = q0; p1 = q1; q0 = r0; q1 = r1;                                      \
        }                                                                            \
        if (hi) { /* j = n: its x column j + 2 is padding */                        \
            cyc_v##SUF d0 = cyc_load_##SUF(zp + n * zs), d1 = cyc_load_##SUF(zp + n * zs + NL); \
            a00 += p0 * d0; a01 += p1 * d1;                                          \
            a10 += q0 * d0; a11 += q1 * d1;                                          \
        }                                                                            \
        cyc_store_##SUF(acc + c, cyc_load_##SUF(acc + c) + a00);                     \
        cyc_store_##SUF(acc + c + NL, cyc_load_##SUF(acc + c + NL) + a01);           \
        cyc_store_##SUF(acc + C + c, cyc_load_##SUF(acc + C + c) + a10);             \
        cyc_store_##SUF(acc + C + c + NL, cyc_load_##SUF(acc + C + c + NL) + a11);   \
        cyc_store_##SUF(acc + 2 * C + c, cyc_load_##SUF(acc + 2 * C + c) + a20);     \
        cyc_store_##SUF(acc + 2 * C + c + NL, cyc_load_##SUF(acc + 2 * C + c + NL) + a21); \
    }                                                                                \
    for (; c + NL <= C; c += NL) {                                                   \
        cyc_v##SUF a0 = {0}, a1 = {0}, a2 = {0};                                     \
        if (lo) {                                                                    \
            cyc_v##SUF d0 = cyc_load_##SUF(dz - zs + c);                             \
            a1 += cyc_load_##SUF(x + c) * d0;                                        \
            a2 += cyc_load_##SUF(x + xs + c) * d0;                                   \
        }                                                                            \
        for (ptrdiff_t j = 0; j < n; j++) {                                          \
            cyc_v##SUF d0 = cyc_load_##SUF(dz + j * zs + c);                         \
            a0 += cyc_load_##SUF(x + j * xs + c) * d0;                               \
            a1 += cyc_load_##SUF(x + (j + 1) * xs + c) * d0;                         \
            a2 += cyc_load_##SUF(x + (j + 2) * xs + c) * d0;                         \
        }                                                                            \
        if (hi) {                                                                    \
            cyc_v##SUF d0 = cyc_load_##SUF(dz + n * zs + c);                         \
            a0 += cyc_load_##SUF(x + n * xs + c) * d0;                               \
            a1 += cyc_load_##SUF(x + (n + 1) * xs + c) * d0;                         \
        }                                                                            \
        cyc_store_##SUF(acc + c, cyc_load_##SUF(acc + c) + a0);                      \
        cyc_store_##SUF(acc + C + c, cyc_load_##SUF(acc + C + c) + a1);              \
        cyc_store_##SUF(acc + 2 * C + c, cyc_load_##SUF(acc + 2 * C + c) + a2);      \
    }                                                                                \
    for (; c < C; c++) {                                                             \
        T a0 = 0, a1 = 0, a2 = 0;                                                    \
        if (lo) {                                                                    \
            T d0 = dz[-zs + c];                                                      \
            a1 += x[c] * d0;                                                         \
            a2 += x[xs + c] * d0;                                                    \
        }                                                                            \
        for (ptrdiff_t j = 0; j < n; j++) {                                          \
            T d0 = dz[j * zs + c];                                                   \
            a0 += x[j * xs + c] * d0;                                                \
            a1 += x[(j + 1) * xs + c] * d0;                                          \
            a2 += x[(j + 2) * xs + c] * d0;                                          \
        }                                                                            \
        if (hi) {                                                                    \
            T d0 = dz[n * zs + c];                                                   \
            a0 += x[n * xs + c] * d0;                                                \
            a1 += x[(n + 1) * xs + c] * d0;                                          \
        }                                                                            \
        acc[c] += a0; acc[C + c] += a1; acc[2 * C + c] += a2;                        \
    }                                                                                \
}

/* The three kernel rows of a 3x3 dw row at once (all three x rows inside the   */
/* image; x: the first of them, xr the row stride; acc: dw[0, 0]): each dz      */
/* vector is loaded once for the nine taps, and each x column once, sliding.    */
/* Per vector of channels: 9 sums in registers (AVX-512's 32 registers hold    */
/* them with the 6 columns in flight; narrower levels return 0 and the caller   */
/* runs cyc_dwc_dw_row3 per kernel row). Every tap's sum runs over j in the     */
/* order of cyc_dwc_dw_row3 (lo, interior, hi) and is then added to acc: the    */
/* same bits. Returns 0, having done nothing, when C is not whole vectors or    */
/* more than 256 bytes a pixel: there (8x14x14x512, 1 thread) the 9-sum pass per */
/* vector ran 1.3x slower than three single-row passes of two vectors.          */
#define CYCONV_DEFINE_DEPTHWISE_DW33(T, SUF)                                         \
static int cyc_dwc_dw_rows3_##SUF(const T *restrict x, ptrdiff_t xr, ptrdiff_t xs,  \
                                  const T *restrict dz, ptrdiff_t zs, ptrdiff_t n,   \
                                  T *restrict acc, ptrdiff_t C, int lo, int hi,      \
                                  const T *pf_x, const T *pf_z) {                    \
    enum { NL = CYC_NL_##SUF };                                                      \
    if (CYC_VBYTES < 64 || C % NL || C * (ptrdiff_t)sizeof(T) > 256) return 0;       \
    for (ptrdiff_t c = 0; c < C; c += NL) {                                          \
        cyc_v##SUF A[3][3], pv[3], qv[3];                                            \
        const T *zp = dz + c;                                                        \
        _Pragma("GCC unroll 3")                                                      \
        for (int h = 0; h < 3; h++) {                                                \
            A[h][0] = A[h][1] = A[h][2] = (cyc_v##SUF){0};                           \
            pv[h] = cyc_load_##SUF(x + h * xr + c);                                  \
            qv[h] = cyc_load_##SUF(x + h * xr + xs + c);                             \
        }                                                                            \
        if (lo) { /* j = -1: its x column j is padding */                           \
            cyc_v##SUF d = cyc_load_##SUF(zp - zs);                                  \
            _Pragma("GCC unroll 3")                                                  \
            for (int h = 0; h < 3; h++) { A[h][1] += pv[h] * d; A[h][2] += qv[h] * d; } \
        }                                                                            \
        for (ptrdiff_t j = 0; j < n; j++) {                                          \
            if (pf_x) {                                                              \
                cyc_dwc_prefetch((const char *)(pf_x + j * xs + c), NL * sizeof(T), 0); \
                cyc_dwc_prefetch((const char *)(pf_z + j * zs + c), NL * sizeof(T), 0); \
            }                                                                        \
            cyc_v##SUF d = cyc_load_##SUF(zp + j * zs);                              \
            _Pragma("GCC unroll 3")                                                  \
            for (int h = 0; h < 3; h++) {                                            \
                cyc_v##SUF r = cyc_load_##SUF(x + h * xr + (j + 2) * xs + c);        \
                A[h][0] += pv[h] * d; A[h][1] += qv[h] * d; A[h][2] += r * d;        \
                pv[h] = qv[h]; qv[h] = r;                                            \
            }                                                                        \
        }                                                                            \
        if (hi) { /* j = n: its x column j + 2 is padding */                        \
            cyc_v##SUF d = cyc_load_##SUF(zp + n * zs);                              \
            _Pragma("GCC unroll 3")                                                  \
            for (int h = 0; h < 3; h++) { A[h][0] += pv[h] * d; A[h][1] += qv[h] * d; } \
        }                                                                            \
        _Pragma("GCC unroll 3")                                                      \
        for (int h = 0; h < 3; h++)                                                  \
            _Pragma("GCC unroll 3")                                                  \
            for (int k = 0; k < 3; k++) {                                            \
                T *ap = acc + (h * 3 + k) * C + c;                                   \
                cyc_store_##SUF(ap, cyc_load_##SUF(ap) + A[h][k]);                   \
            }                                                                        \
    }                                                                                \
    return 1;                                                                        \
}

CYCONV_DEFINE_DEPTHWISE_DW33(float, f32)
CYCONV_DEFINE_DEPTHWISE_DW33(double, f64)
CYCONV_DEFINE_DEPTHWISE_DW3(float, f32)
CYCONV_DEFINE_DEPTHWISE_DW3(double, f64)
CYCONV_DEFINE_DEPTHWISE(float, f32)
CYCONV_DEFINE_DEPTHWISE(double, f64)

#endif
