# Index arithmetic shared by the convolution and pooling kernels.
#
# An output position ``o`` on one spatial axis reads input positions
# ``o * s - p + k`` for kernel taps ``k = 0 .. f - 1`` (``s`` stride, ``p``
# the padding before the axis). Taps that fall in the padding are skipped
# rather than read from a padded copy, so no kernel allocates a padded input.


cdef inline Py_ssize_t tap_begin(Py_ssize_t o, Py_ssize_t s,
                                 Py_ssize_t p) noexcept nogil:
    """First tap of output ``o`` that lands inside the input (>= 0)."""
    cdef Py_ssize_t k = p - o * s
    return k if k > 0 else 0


cdef inline Py_ssize_t tap_end(Py_ssize_t o, Py_ssize_t s, Py_ssize_t p,
                               Py_ssize_t n, Py_ssize_t f) noexcept nogil:
    """One past the last tap of output ``o`` inside an input of size ``n``."""
    cdef Py_ssize_t k = n + p - o * s
    return k if k < f else f


cdef inline Py_ssize_t out_begin(Py_ssize_t i, Py_ssize_t s, Py_ssize_t p,
                                 Py_ssize_t f) noexcept nogil:
    """First output whose window covers input position ``i``."""
    cdef Py_ssize_t t = i + p - f + 1
    if t <= 0:
        return 0
    return (t + s - 1) // s


cdef inline Py_ssize_t out_end(Py_ssize_t i, Py_ssize_t s, Py_ssize_t p,
                               Py_ssize_t n_out) noexcept nogil:
    """One past the last output whose window covers input position ``i``."""
    cdef Py_ssize_t o = (i + p) // s + 1
    return o if o < n_out else n_out
