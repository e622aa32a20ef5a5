"""Optimisers: SGD with momentum and Adam, updating a model's parameters in place."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from cyconv.layers._base import _Model


class _Optimizer:
    _update: Callable[[str, npt.NDArray[Any], npt.NDArray[Any]], None]  # by each subclass

    def __init__(self, model: _Model, lr: float) -> None:
        if not (lr > 0):
            raise ValueError(f"lr must be > 0, got {lr!r}")
        params, grads = model.parameters(), model.gradients()
        if params.keys() != grads.keys() or any(params[k].shape != grads[k].shape for k in params):
            raise ValueError("model.parameters() and model.gradients() must have the same "
                             "names and shapes")
        self.model = model
        self.lr = lr
        self.state: dict[str, Any] = {}

    def step(self) -> None:
        """Update every parameter in place from its gradient."""
        params, grads = self.model.parameters(), self.model.gradients()
        for name, p in params.items():
            self._update(name, p, grads[name])


class SGD(_Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum.

    Parameters
    ----------
    model : Sequential or Layer
        Anything with ``parameters()`` and ``gradients()`` dicts.
    lr : float, default 0.01
    momentum : float, default 0.0

    Notes
    -----
    ``v = momentum * v - lr * grad; param += v``.
    """

    def __init__(self, model: _Model, lr: float = 0.01, momentum: float = 0.0) -> None:
        super().__init__(model, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum

    def _update(self, name: str, p: npt.NDArray[Any], g: npt.NDArray[Any]) -> None:
        if not self.momentum:
            p -= self.lr * g
            return
        v = self.state.get(name)
        if v is None:
            v = self.state[name] = np.zeros_like(p)
        v *= self.momentum
        v -= self.lr * g
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

    Notes
    -----
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``param -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.
    """

    def __init__(self, model: _Model, lr: float = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(model, lr)
        self.betas, self.eps = tuple(betas), eps
        self.t = 0

    def step(self) -> None:
        """Update every parameter in place from its gradient."""
        self.t += 1
        super().step()

    def _update(self, name: str, p: npt.NDArray[Any], g: npt.NDArray[Any]) -> None:
        b1, b2 = self.betas
        if name not in self.state:
            self.state[name] = (np.zeros_like(p), np.zeros_like(p))
        m, v = self.state[name]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        m_hat = m / (1 - b1 ** self.t)
        v_hat = v / (1 - b2 ** self.t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
