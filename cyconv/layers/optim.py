"""Optimisers: SGD with momentum and Adam, updating a model's parameters in place.

By default (``fused=True``) one call of a compiled kernel (``cyconv._train``)
updates every parameter of the model in one parallel pass over fixed-size
chunks, instead of four to eight NumPy passes per parameter array. The fused
update computes the same expressions in the same order as the NumPy code
(``fused=False``), with the hyper-parameters rounded to the parameters' dtype,
so both give bitwise identical parameters, for any thread count. Parameters the
kernel cannot take (not C-contiguous, not writeable, not float32/float64, or a
gradient of another dtype) are updated by the NumPy code.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from cyconv import _train
from cyconv._args import Int, resolve_num_threads
from cyconv.layers._base import _Model

# Elements per chunk of the fused update: enough work to amortise scheduling,
# few enough that a LeNet-5 (62k parameters) still splits across threads.
_CHUNK = 8192


class _Plan:
    # The fused kernel's tables for one set of arrays of one dtype: their
    # addresses (as int64) and the chunks covering them. Holds the arrays, so
    # the addresses stay valid while the plan lives.

    def __init__(self, arrays: list[tuple[npt.NDArray[Any], ...]]) -> None:
        self.arrays = arrays
        self.is_float64 = arrays[0][0].dtype == np.float64
        self.addresses = [np.array([a[k].ctypes.data for a in arrays], dtype=np.int64)
                          for k in range(len(arrays[0]))]
        chunks = [(i, start, min(_CHUNK, a[0].size - start))
                  for i, a in enumerate(arrays) for start in range(0, a[0].size, _CHUNK)]
        self.chunks = np.array(chunks, dtype=np.int64).reshape(-1, 3)


def _fusable(p: npt.NDArray[Any], g: npt.NDArray[Any]) -> bool:
    return (p.dtype in (np.float32, np.float64) and g.dtype == p.dtype
            and p.flags.c_contiguous and p.flags.writeable and g.flags.c_contiguous
            and p.shape == g.shape and not np.may_share_memory(p, g))


class _Optimizer:
    _update: Callable[[str, npt.NDArray[Any], npt.NDArray[Any]], None]  # by each subclass
    _state_arrays: Callable[[str, npt.NDArray[Any]], tuple[npt.NDArray[Any], ...]]
    _fused_kernel: Callable[[_Plan, int], None]

    def __init__(self, model: _Model, lr: float, fused: bool = True,
                 num_threads: Int | None = None) -> None:
        if not (lr > 0):
            raise ValueError(f"lr must be > 0, got {lr!r}")
        params, grads = model.parameters(), model.gradients()
        if params.keys() != grads.keys() or any(params[k].shape != grads[k].shape for k in params):
            raise ValueError("model.parameters() and model.gradients() must have the same "
                             "names and shapes")
        if num_threads is not None:
            resolve_num_threads(num_threads)  # raises on a bad value, now
        self.model = model
        self.lr = lr
        self.fused = bool(fused)
        self.num_threads = num_threads
        self.state: dict[str, Any] = {}
        self._plans: tuple[tuple[int, ...], list[_Plan]] | None = None

    def _threads(self) -> int:
        # The optimiser's own setting, else the model's (Sequential.num_threads).
        n = self.num_threads
        if n is None:
            n = getattr(self.model, "num_threads", None)
        return resolve_num_threads(n)

    def step(self) -> None:
        """Update every parameter in place from its gradient."""
        params, grads = self.model.parameters(), self.model.gradients()
        rest = self._fused_step(params, grads) if self.fused else list(params)
        for name in rest:
            self._update(name, params[name], grads[name])

    def _fused_step(self, params: Mapping[str, npt.NDArray[Any]],
                    grads: Mapping[str, npt.NDArray[Any]]) -> list[str]:
        # Returns the names left to the NumPy update.
        fusable = [k for k in params if _fusable(params[k], grads[k])]
        groups: dict[np.dtype[Any], list[tuple[npt.NDArray[Any], ...]]] = {}
        for k in fusable:
            p = params[k]
            groups.setdefault(p.dtype, []).append((p, grads[k]) + self._state_arrays(k, p))
        # Same arrays as last step (the usual case): reuse the tables.
        key = tuple(id(a) for group in groups.values() for arrays in group for a in arrays)
        if self._plans is None or self._plans[0] != key:
            self._plans = (key, [_Plan(group) for group in groups.values()])
        n_threads = self._threads()
        for plan in self._plans[1]:
            self._fused_kernel(plan, n_threads)
        done = set(fusable)
        return [k for k in params if k not in done]


class SGD(_Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum.

    Parameters
    ----------
    model : Sequential or Layer
        Anything with ``parameters()`` and ``gradients()`` dicts.
    lr : float, default 0.01
    momentum : float, default 0.0
    fused : bool, default True
        Update every parameter in one compiled parallel pass (bitwise equal
        to ``fused=False``, the NumPy composition).
    num_threads : int, optional
        Threads of the fused update; default the model's ``num_threads``
        (every usable core when it has none).

    Raises
    ------
    ValueError
        ``lr`` not > 0, or ``momentum`` not in [0, 1).

    Notes
    -----
    ``v = momentum * v - lr * grad; param += v``, rounded as
    ``v *= momentum; v -= lr * grad; param += v`` in the parameters' dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import Dense, SGD
    >>> layer = Dense(3, 2, seed=0)
    >>> layer.grads["w"][:] = 1.0
    >>> before = layer.params["w"].copy()
    >>> SGD(layer, lr=0.5).step()
    >>> np.allclose(layer.params["w"], before - 0.5)
    True
    """

    def __init__(self, model: _Model, lr: float = 0.01, momentum: float = 0.0,
                 fused: bool = True, num_threads: Int | None = None) -> None:
        super().__init__(model, lr, fused, num_threads)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum

    def _state_arrays(self, name: str, p: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], ...]:
        if not self.momentum:
            return (p,)  # a stand-in: the kernel reads no velocity without momentum
        v = self.state.get(name)
        if v is None:
            v = self.state[name] = np.zeros_like(p, order="C")
        return (v,)

    def _fused_kernel(self, plan: _Plan, n_threads: int) -> None:
        p, g, v = plan.addresses
        _train.sgd_step(plan.is_float64, float(self.lr), float(self.momentum), p, g, v,
                        plan.chunks, n_threads)

    def _update(self, name: str, p: npt.NDArray[Any], g: npt.NDArray[Any]) -> None:
        # Hyper-parameters as Python floats: NumPy rounds them to p's dtype,
        # as the fused kernel does.
        lr, momentum = float(self.lr), float(self.momentum)
        if not momentum:
            p -= lr * g
            return
        v = self.state.get(name)
        if v is None:
            v = self.state[name] = np.zeros_like(p, order="C")
        v *= momentum
        v -= lr * g
        p += v


class Adam(_Optimizer):
    """Adam (Kingma and Ba, 2015).

    Parameters
    ----------
    model : Sequential or Layer
        Anything with ``parameters()`` and ``gradients()`` dicts.
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    fused : bool, default True
        Update every parameter in one compiled parallel pass (bitwise equal
        to ``fused=False``, the NumPy composition).
    num_threads : int, optional
        Threads of the fused update; default the model's ``num_threads``
        (every usable core when it has none).

    Raises
    ------
    ValueError
        ``lr`` not > 0.

    Notes
    -----
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``param -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import Adam, Dense
    >>> dense = Dense(2, 1, seed=0)
    >>> opt = Adam(dense, lr=0.1)
    >>> before = dense.params["w"].copy()
    >>> dense.grads["w"][:] = 1.0   # as dense.backward(...) would fill them
    >>> opt.step()
    >>> np.allclose(dense.params["w"] - before, -0.1)  # the first step moves each by lr
    True
    """

    def __init__(self, model: _Model, lr: float = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 fused: bool = True, num_threads: Int | None = None) -> None:
        super().__init__(model, lr, fused, num_threads)
        self.betas, self.eps = tuple(betas), eps
        self.t = 0

    def step(self) -> None:
        """Update every parameter in place from its gradient."""
        self.t += 1
        super().step()

    def _state_arrays(self, name: str, p: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], ...]:
        if name not in self.state:
            self.state[name] = (np.zeros_like(p, order="C"), np.zeros_like(p, order="C"))
        m, v = self.state[name]
        return (m, v)

    def _fused_kernel(self, plan: _Plan, n_threads: int) -> None:
        p, g, m, v = plan.addresses
        b1, b2 = self.betas
        _train.adam_step(plan.is_float64, float(self.lr), float(b1), float(b2), float(self.eps),
                         self.t, p, g, m, v, plan.chunks, n_threads)

    def _update(self, name: str, p: npt.NDArray[Any], g: npt.NDArray[Any]) -> None:
        # Python floats throughout: NumPy rounds each constant to p's dtype,
        # as the fused kernel does.
        lr, eps = float(self.lr), float(self.eps)
        b1, b2 = (float(b) for b in self.betas)
        m, v = self._state_arrays(name, p)
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        m_hat = m / (1 - b1 ** self.t)
        v_hat = v / (1 - b2 ** self.t)
        p -= lr * m_hat / (np.sqrt(v_hat) + eps)
