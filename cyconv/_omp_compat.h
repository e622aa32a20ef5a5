/* OpenMP when the compiler has it; a serial stand-in otherwise, so the
   kernels build (serially) with any C compiler. */
#ifndef CYCONV_OMP_COMPAT_H
#define CYCONV_OMP_COMPAT_H
#ifdef _OPENMP
#include <omp.h>
#define CYCONV_HAVE_OPENMP 1
#else
static int omp_get_max_threads(void) { return 1; }
#define CYCONV_HAVE_OPENMP 0
#endif
#endif
