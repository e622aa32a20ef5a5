/* Tile transposes of cyconv._transpose: dst[c * rows + r] = src[r * cols + c]
 * over r in [r0, r1), c in [c0, c1). On x86-64 (SSE2 is baseline there)
 * full 4 x 4 float (2 x 2 double) blocks move through registers; the
 * ragged edges and other CPUs use the scalar loop. */
#ifndef CYCONV_TRANSPOSE_H
#define CYCONV_TRANSPOSE_H
#include <stddef.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static inline void cyc_tile_f32(const float *src, float *dst, ptrdiff_t rows, ptrdiff_t cols,
                                ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t c0, ptrdiff_t c1)
{
    ptrdiff_t r, c;
#if defined(__SSE2__)
    ptrdiff_t r4 = r0 + ((r1 - r0) & ~(ptrdiff_t)3), c4 = c0 + ((c1 - c0) & ~(ptrdiff_t)3);
    for (r = r0; r < r4; r += 4) {
        for (c = c0; c < c4; c += 4) {
            const float *s = src + r * cols + c;
            __m128 a0 = _mm_loadu_ps(s), a1 = _mm_loadu_ps(s + cols);
            __m128 a2 = _mm_loadu_ps(s + 2 * cols), a3 = _mm_loadu_ps(s + 3 * cols);
            _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
            float *d = dst + c * rows + r;
            _mm_storeu_ps(d, a0);
            _mm_storeu_ps(d + rows, a1);
            _mm_storeu_ps(d + 2 * rows, a2);
            _mm_storeu_ps(d + 3 * rows, a3);
        }
        for (c = c4; c < c1; c++) {
            dst[c * rows + r] = src[r * cols + c];
            dst[c * rows + r + 1] = src[(r + 1) * cols + c];
            dst[c * rows + r + 2] = src[(r + 2) * cols + c];
            dst[c * rows + r + 3] = src[(r + 3) * cols + c];
        }
    }
    r0 = r4;
#endif
    for (c = c0; c < c1; c++)
        for (r = r0; r < r1; r++)
            dst[c * rows + r] = src[r * cols + c];
}

static inline void cyc_tile_f64(const double *src, double *dst, ptrdiff_t rows, ptrdiff_t cols,
                                ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t c0, ptrdiff_t c1)
{
    ptrdiff_t r, c;
#if defined(__SSE2__)
    ptrdiff_t r2 = r0 + ((r1 - r0) & ~(ptrdiff_t)1), c2 = c0 + ((c1 - c0) & ~(ptrdiff_t)1);
    for (r = r0; r < r2; r += 2) {
        for (c = c0; c < c2; c += 2) {
            const double *s = src + r * cols + c;
            __m128d a0 = _mm_loadu_pd(s), a1 = _mm_loadu_pd(s + cols);
            double *d = dst + c * rows + r;
            _mm_storeu_pd(d, _mm_unpacklo_pd(a0, a1));
            _mm_storeu_pd(d + rows, _mm_unpackhi_pd(a0, a1));
        }
        for (c = c2; c < c1; c++) {
            dst[c * rows + r] = src[r * cols + c];
            dst[c * rows + r + 1] = src[(r + 1) * cols + c];
        }
    }
    r0 = r2;
#endif
    for (c = c0; c < c1; c++)
        for (r = r0; r < r1; r++)
            dst[c * rows + r] = src[r * cols + c];
}
#endif
