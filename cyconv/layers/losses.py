"""The softmax and the softmax cross-entropy loss."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def _log_softmax(logits: npt.NDArray[Any]) -> npt.NDArray[Any]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    # NumPy's stubs type this as Any.
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # type: ignore[no-any-return]


def softmax(logits: npt.ArrayLike) -> npt.NDArray[Any]:
    """Row-wise softmax of ``(m, K)`` scores; each row sums to 1.

    Parameters
    ----------
    logits : array_like, shape (m, K)
        Unnormalised class scores.

    Returns
    -------
    ndarray, shape (m, K)
        Probabilities, the dtype of ``logits`` (float64 for integers).

    Raises
    ------
    numpy.exceptions.AxisError
        ``logits`` with fewer than 2 dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import softmax
    >>> softmax(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """
    # NumPy's stubs type this as Any.
    return np.exp(_log_softmax(np.asarray(logits)))  # type: ignore[no-any-return]


def softmax_cross_entropy(logits: npt.ArrayLike,
                          y: npt.ArrayLike) -> tuple[float, npt.NDArray[Any]]:
    """Mean softmax cross-entropy loss and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (m, K)
        Unnormalised class scores.
    y : array_like of int, shape (m,), or ndarray, shape (m, K)
        Class labels in ``0 .. K-1``, or target probabilities (one-hot rows).

    Returns
    -------
    loss : float
        ``-mean_i log softmax(logits)[i, y_i]``.
    dlogits : ndarray, shape (m, K)
        ``(softmax(logits) - onehot(y)) / m``, the dtype of ``logits``.

    Raises
    ------
    ValueError
        If the shapes disagree or a label is out of range.

    Notes
    -----
    The log-softmax subtracts each row's maximum first, so large scores
    neither overflow nor lose the loss to ``log(0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import softmax_cross_entropy
    >>> logits = np.array([[0.0, np.log(3.0)], [0.0, 0.0]])
    >>> loss, dlogits = softmax_cross_entropy(logits, np.array([1, 0]))
    >>> round(loss, 4)  # (-log 0.75 - log 0.5) / 2
    0.4904
    >>> dlogits
    array([[ 0.125, -0.125],
           [-0.25 ,  0.25 ]])
    """
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (m, K), got shape {logits.shape}")
    m, k = logits.shape
    log_p = _log_softmax(logits)
    y = np.asarray(y)
    if y.ndim == 1:
        if y.shape[0] != m:
            raise ValueError(f"y must have {m} labels (one per row of logits), got {y.shape[0]}")
        if y.dtype.kind not in "iu":
            raise TypeError(f"labels y must be integers, got dtype {y.dtype}")
        if m and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"labels y must lie in 0 .. {k - 1}, got {y.min()} .. {y.max()}")
        target = np.zeros_like(log_p)
        target[np.arange(m), y] = 1
    elif y.shape == logits.shape:
        target = y.astype(log_p.dtype, copy=False)
    else:
        raise ValueError(f"y must be labels of shape ({m},) or targets of shape {logits.shape}, "
                         f"got {y.shape}")
    loss = -float((target * log_p).sum()) / max(m, 1)
    dlogits = (np.exp(log_p) - target) / max(m, 1)
    return loss, dlogits.astype(log_p.dtype, copy=False)
