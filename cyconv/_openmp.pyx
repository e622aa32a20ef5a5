"""OpenMP facts for the thread-count helper in ``_args.py``."""

cdef extern from "_omp_compat.h":
    int omp_get_max_threads() noexcept nogil
    int CYCONV_HAVE_OPENMP


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
