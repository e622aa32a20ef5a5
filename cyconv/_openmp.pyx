"""OpenMP facts for the thread-count helper in ``_args.py``, and build facts
for ``cyconv.show_config()`` (``_config.py``)."""

cdef extern from "_omp_compat.h":
    int omp_get_max_threads() noexcept nogil
    int CYCONV_HAVE_OPENMP

# What the compiler knew when it built this module. setup.py passes the flags
# as C string defines; another build system may not, hence the fallbacks.
cdef extern from *:
    """
    #include <stdint.h>
    #include "_omp_compat.h"
    #ifndef CYCONV_CFLAGS
    #define CYCONV_CFLAGS ""
    #endif
    #ifndef CYCONV_BUILD_CC
    #define CYCONV_BUILD_CC ""
    #endif
    #ifndef CYCONV_BUILD_ENV_CFLAGS
    #define CYCONV_BUILD_ENV_CFLAGS ""
    #endif
    #define CYC_STR2(x) #x
    #define CYC_STR(x) CYC_STR2(x)
    #if defined(__INTEL_LLVM_COMPILER) && defined(__VERSION__)
    #define CYC_COMPILER "Intel oneAPI " __VERSION__
    #elif defined(__clang__) && defined(__VERSION__)
    #define CYC_COMPILER __VERSION__   /* "Clang 17.0.6", "Apple LLVM 15.0.0 (clang-...)" */
    #elif defined(__GNUC__) && defined(__VERSION__)
    #define CYC_COMPILER "GCC " __VERSION__
    #elif defined(_MSC_FULL_VER)
    #define CYC_COMPILER "MSVC " CYC_STR(_MSC_FULL_VER)
    #else
    #define CYC_COMPILER "unknown"
    #endif
    #ifdef __VERSION__
    #define CYC_COMPILER_VERSION __VERSION__
    #else
    #define CYC_COMPILER_VERSION "unknown"
    #endif
    #ifdef _OPENMP
    #define CYC_OPENMP_SPEC ((long)_OPENMP)
    /* The address omp_get_max_threads has in this module: the function of
       the OpenMP runtime the dynamic linker bound cyconv to. */
    static uintptr_t cyc_omp_symbol_address(void) {
        return (uintptr_t)&omp_get_max_threads;
    }
    #else
    #define CYC_OPENMP_SPEC 0L
    static uintptr_t cyc_omp_symbol_address(void) { return 0; }
    #endif
    #ifdef CYCONV_NO_CPU_DISPATCH
    #define CYC_CPU_DISPATCH 0
    #else
    #define CYC_CPU_DISPATCH 1
    #endif
    """
    const char *CYCONV_CFLAGS
    const char *CYCONV_BUILD_CC
    const char *CYCONV_BUILD_ENV_CFLAGS
    const char *CYC_COMPILER
    const char *CYC_COMPILER_VERSION
    long CYC_OPENMP_SPEC
    int CYC_CPU_DISPATCH
    size_t cyc_omp_symbol_address()


def openmp_max_threads():
    """Threads the OpenMP runtime would use now.

    Honours ``OMP_NUM_THREADS`` and any limit set by
    ``threadpoolctl.threadpool_limits`` (which calls ``omp_set_num_threads``).

    Returns
    -------
    int
        ``omp_get_max_threads()``; 1 when built without OpenMP.
    """
    return omp_get_max_threads()


def openmp_enabled():
    """Whether the extension was compiled with OpenMP.

    Returns
    -------
    bool
    """
    return bool(CYCONV_HAVE_OPENMP)


def openmp_runtime_address():
    """Address of ``omp_get_max_threads`` as this module calls it.

    It lies in the OpenMP runtime library the dynamic linker bound cyconv's
    modules to; ``cyconv._config`` maps it to that library's file.

    Returns
    -------
    int
        The address; 0 when built without OpenMP.
    """
    return cyc_omp_symbol_address()


def _text(const char *s):
    return s.decode("utf-8", "replace")


def build_info():
    """How this module was compiled (the other modules share its flags).

    Returns
    -------
    dict
        ``compiler``: the compiler's name and version (``"GCC 12.2.0"``,
        ``"Clang 17.0.6"``, ...; ``"unknown"`` if it did not say);
        ``compiler_version``: its ``__VERSION__`` macro or ``"unknown"``;
        ``openmp``: the ``_OPENMP`` macro (an OpenMP spec date such as
        201511), None when built serial; ``flags``: cyconv's compile flags;
        ``cc``: the compiler command setup.py saw (``CC``, else Python's);
        ``env_cflags``: ``CFLAGS``/``CPPFLAGS`` set at build time;
        ``cpu_dispatch``: whether the per-CPU-level kernels were built.
        The strings are empty when the build did not record them.
    """
    return {
        "compiler": _text(CYC_COMPILER),
        "compiler_version": _text(CYC_COMPILER_VERSION),
        "openmp": int(CYC_OPENMP_SPEC) or None,
        "flags": _text(CYCONV_CFLAGS),
        "cc": _text(CYCONV_BUILD_CC),
        "env_cflags": _text(CYCONV_BUILD_ENV_CFLAGS),
        "cpu_dispatch": bool(CYC_CPU_DISPATCH),
    }
