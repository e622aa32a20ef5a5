# cython: language_level=3
"""The compiled glue of a training step: optimiser updates and ReLU passes.

The convolution and pooling kernels live in ``_conv.pyx`` and ``_pool*.pyx``;
this module holds the elementwise passes *between* them that cyconv.layers
would otherwise run as several single-threaded NumPy passes:

* ``sgd_step`` and ``adam_step`` update every parameter of a model in one
  parallel pass. The parameters are separate arrays (one per layer), so the
  caller hands over a table of their addresses and a table of fixed-size
  chunks, ``(array index, first element, element count)``; ``prange`` walks the
  chunks. Every element is computed by the same expression whatever thread
  runs it, so the result is bitwise identical for any thread count.
* ``relu_forward`` and ``relu_backward``: ``y = max(x, 0)`` and
  ``dx = dout * (y > 0)``, one read and one write per element, in parallel.

Each arithmetic step is its own statement, in the order the NumPy
composition of ``cyconv.layers.optim`` performs it (``v *= momentum``,
``v -= lr * g``, ``p += v``), with the hyper-parameters rounded to the
parameters' dtype first, as NumPy rounds a Python float. setup.py compiles
this module with ``-ffp-contract=off`` (no fused multiply-adds: NumPy's
separate passes round twice) and ``-fno-math-errno`` (sqrt cannot fail here,
and so it vectorises), so the fused update equals the NumPy one bit for bit.

Like the other compiled modules, nothing here can fail: ``cyconv.layers``
checks dtypes, contiguity and sizes before calling.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf
from libc.stdint cimport int64_t, intptr_t

cimport cython
from cython cimport floating

# Elements per ReLU chunk: a chunk amortises its scheduling, and arrays of one
# chunk run on the calling thread alone (no team start-up for tiny layers).
# The optimisers' chunk table is built by cyconv.layers.optim.
cdef enum:
    CHUNK = 16384


cdef inline floating _root(floating a) noexcept nogil:
    if floating is float:
        return sqrtf(a)
    else:
        return sqrt(a)


cdef void _sgd_chunk(floating *p, const floating *g, floating *v, Py_ssize_t n,
                     floating lr, floating momentum, bint has_momentum) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating step, vi
    if not has_momentum:
        for i in range(n):
            step = lr * g[i]
            p[i] = p[i] - step
        return
    for i in range(n):
        vi = v[i] * momentum
        step = lr * g[i]
        vi = vi - step
        v[i] = vi
        p[i] = p[i] + vi


cdef void _adam_chunk(floating *p, const floating *g, floating *m, floating *v, Py_ssize_t n,
                      floating lr, floating b1, floating b2, floating c1, floating c2,
                      floating bc1, floating bc2, floating eps) noexcept nogil:
    # c1 = 1 - b1, c2 = 1 - b2, bc1 = 1 - b1**t, bc2 = 1 - b2**t (each rounded once)
    cdef Py_ssize_t i
    cdef floating gi, mi, vi, t, m_hat, v_hat, num, den
    for i in range(n):
        gi = g[i]
        mi = m[i] * b1
        t = c1 * gi
        mi = mi + t
        m[i] = mi
        vi = v[i] * b2
        t = gi * gi
        t = c2 * t
        vi = vi + t
        v[i] = vi
        m_hat = mi / bc1
        v_hat = vi / bc2
        num = lr * m_hat
        den = _root(v_hat)
        den = den + eps
        p[i] = p[i] - num / den


cdef void _sgd_all(floating lr, floating momentum, bint has_momentum,
                   const int64_t[::1] p_addr, const int64_t[::1] g_addr,
                   const int64_t[::1] v_addr, const int64_t[:, ::1] chunks,
                   int n_threads) noexcept nogil:
    cdef Py_ssize_t c, a, start
    cdef floating *v
    for c in prange(chunks.shape[0], nogil=True, schedule="static", num_threads=n_threads):
        a = chunks[c, 0]
        start = chunks[c, 1]
        v = NULL
        if has_momentum:
            v = (<floating *> <intptr_t> v_addr[a]) + start
        _sgd_chunk((<floating *> <intptr_t> p_addr[a]) + start,
                   (<const floating *> <intptr_t> g_addr[a]) + start,
                   v, chunks[c, 2], lr, momentum, has_momentum)


cdef void _adam_all(floating lr, floating b1, floating b2, floating c1, floating c2,
                    floating bc1, floating bc2, floating eps,
                    const int64_t[::1] p_addr, const int64_t[::1] g_addr,
                    const int64_t[::1] m_addr, const int64_t[::1] v_addr,
                    const int64_t[:, ::1] chunks, int n_threads) noexcept nogil:
    cdef Py_ssize_t c, a, start
    for c in prange(chunks.shape[0], nogil=True, schedule="static", num_threads=n_threads):
        a = chunks[c, 0]
        start = chunks[c, 1]
        _adam_chunk((<floating *> <intptr_t> p_addr[a]) + start,
                    (<const floating *> <intptr_t> g_addr[a]) + start,
                    (<floating *> <intptr_t> m_addr[a]) + start,
                    (<floating *> <intptr_t> v_addr[a]) + start,
                    chunks[c, 2], lr, b1, b2, c1, c2, bc1, bc2, eps)


def sgd_step(bint is_float64, double lr, double momentum,
             const int64_t[::1] p_addr, const int64_t[::1] g_addr, const int64_t[::1] v_addr,
             const int64_t[:, ::1] chunks, int n_threads):
    """SGD (heavy-ball momentum) on every parameter, in place, in one parallel pass.

    Parameters
    ----------
    is_float64 : bool
        The dtype of every array: float64 if true, else float32.
    lr, momentum : float
        Rounded to the arrays' dtype before use. ``momentum == 0``: plain SGD
        (``v_addr`` is not read).
    p_addr : int64[::1], shape (n_arrays,)                        # IN/OUT
        Addresses of the C-contiguous parameters ``p``.
    g_addr : int64[::1], shape (n_arrays,)                        # IN
        Addresses of their gradients ``g`` (same sizes).
    v_addr : int64[::1], shape (n_arrays,)                        # IN/OUT
        Addresses of their velocities ``v`` (same sizes).
    chunks : int64[:, ::1], shape (n_chunks, 3)                   # IN
        ``(array index, first element, element count)``, covering every
        element of every array exactly once.
    n_threads : int
        OpenMP threads (>= 1).

    Notes
    -----
    ``v = momentum * v - lr * g; p += v`` (rounded as ``v *= momentum;
    v -= lr * g; p += v``), or ``p -= lr * g`` without momentum.
    """
    cdef bint has_momentum = momentum != 0
    if is_float64:
        _sgd_all[double](lr, momentum, has_momentum, p_addr, g_addr, v_addr, chunks, n_threads)
    else:
        _sgd_all[float](<float> lr, <float> momentum, has_momentum, p_addr, g_addr, v_addr,
                        chunks, n_threads)


def adam_step(bint is_float64, double lr, double b1, double b2, double eps, long t,
              const int64_t[::1] p_addr, const int64_t[::1] g_addr,
              const int64_t[::1] m_addr, const int64_t[::1] v_addr,
              const int64_t[:, ::1] chunks, int n_threads):
    """Adam on every parameter, in place, in one parallel pass.

    Parameters
    ----------
    is_float64 : bool
        The dtype of every array: float64 if true, else float32.
    lr, b1, b2, eps : float
        Learning rate, betas and epsilon; ``1 - b1``, ``1 - b2``,
        ``1 - b1**t`` and ``1 - b2**t`` are formed in double precision and
        every constant is then rounded to the arrays' dtype.
    t : int
        The step number, from 1.
    p_addr, g_addr : int64[::1], shape (n_arrays,)                # IN/OUT, IN
        Parameters and gradients, as for :func:`sgd_step`.
    m_addr, v_addr : int64[::1], shape (n_arrays,)                # IN/OUT
        First and second moment estimates.
    chunks : int64[:, ::1], shape (n_chunks, 3)                   # IN
        As for :func:`sgd_step`.
    n_threads : int
        OpenMP threads (>= 1).

    Notes
    -----
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.
    """
    cdef double c1 = 1 - b1, c2 = 1 - b2
    cdef double bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t
    if is_float64:
        _adam_all[double](lr, b1, b2, c1, c2, bc1, bc2, eps, p_addr, g_addr, m_addr, v_addr,
                          chunks, n_threads)
    else:
        _adam_all[float](<float> lr, <float> b1, <float> b2, <float> c1, <float> c2,
                         <float> bc1, <float> bc2, <float> eps, p_addr, g_addr, m_addr,
                         v_addr, chunks, n_threads)


def relu_forward(const floating[::1] x, floating[::1] y, int n_threads):
    """``y = max(x, 0)`` elementwise, in parallel (NaN stays NaN, as ``np.maximum``).

    Parameters
    ----------
    x : floating[::1], shape (n,)                                 # IN
    y : floating[::1], shape (n,)                                 # OUT
        May be ``x`` itself.
    n_threads : int
    """
    cdef Py_ssize_t c, i, stop, n = x.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef floating a
    for c in prange(n_chunks, nogil=True, schedule="static",
                    num_threads=n_threads if n_chunks > 1 else 1):
        stop = min((c + 1) * CHUNK, n)
        for i in range(c * CHUNK, stop):
            a = x[i]
            # not (a <= 0) rather than a > 0: NaN passes through
            y[i] = a if not (a <= 0) else 0


def relu_backward(const floating[::1] dout, const floating[::1] y, floating[::1] dx,
                  int n_threads):
    """``dx = dout`` where ``y > 0``, else 0, in parallel.

    Parameters
    ----------
    dout : floating[::1], shape (n,)                              # IN
    y : floating[::1], shape (n,)                                 # IN
        The forward's output ``max(x, 0)`` (``y > 0`` exactly where ``x > 0``).
    dx : floating[::1], shape (n,)                                # OUT
        May be ``dout`` itself.
    n_threads : int
    """
    cdef Py_ssize_t c, i, stop, n = dout.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef floating d, a
    for c in prange(n_chunks, nogil=True, schedule="static",
                    num_threads=n_threads if n_chunks > 1 else 1):
        stop = min((c + 1) * CHUNK, n)
        for i in range(c * CHUNK, stop):
            # both loads unconditional: a select, not a branch (the signs of
            # y are random, a branch mispredicts half the time)
            d = dout[i]
            a = y[i]
            dx[i] = d if a > 0 else 0
