"""Layers, a loss, optimisers and a ``Sequential`` model on top of the cyconv kernels.

Enough to train LeNet-5 (see ``python -m cyconv.demo``) and nothing more:
:class:`Conv2D`, :class:`MaxPool2D` and :class:`AvgPool2D` call the functional
kernels (:func:`cyconv.conv2d`, :func:`cyconv.max_pool2d`, ...), and the rest
(:class:`ReLU`, :class:`Tanh`, :class:`Flatten`, :class:`Dense`,
:func:`softmax_cross_entropy`, :class:`SGD`, :class:`Adam`) is a few lines of
NumPy each, except where a compiled pass of ``cyconv._train`` does the same
work in one parallel pass (ReLU, the optimiser updates).

Conventions
-----------
* Activations are NHWC, ``(m, n_H, n_W, n_C)``, until :class:`Flatten` turns
  them into ``(m, n_features)``; conv filters are ``(f_h, f_w, C_in, C_out)``
  and dense weights ``(in_features, out_features)``. The spatial layers take
  ``layout="NCHW"`` for PyTorch's layouts instead (activations
  ``(m, n_C, n_H, n_W)``, conv filters ``(C_out, C_in, f_h, f_w)``, a PyTorch
  ``state_dict``'s weights as they are); a :class:`Sequential` keeps to one layout.
* Every layer has ``params`` and ``grads``: dicts of arrays with the same
  names and shapes. ``backward`` overwrites ``grads`` in place (it does not
  accumulate), so the arrays an optimiser holds stay valid.
* In training mode (the default) ``forward`` keeps in ``cache`` exactly what
  ``backward`` needs (the input of a conv or dense layer, the argmax of a
  max-pool, only the input's shape for average pooling and flatten, the
  output for ReLU and tanh), and ``backward`` releases it. In evaluation mode
  (``eval()``) ``forward`` keeps nothing and ``backward`` raises.
* ``backend`` is a module with the six kernel functions: :mod:`cyconv` (the
  default) or :mod:`cyconv.reference`. ``num_threads`` is passed to backends
  whose functions accept it.

Examples
--------
>>> import numpy as np
>>> from cyconv.layers import (Conv2D, MaxPool2D, Flatten, Dense, ReLU, Sequential,
...                            Adam, softmax_cross_entropy)
>>> model = Sequential(
...     Conv2D(1, 4, 3, padding="same", seed=0), ReLU(), MaxPool2D(2),
...     Flatten(), Dense(4 * 4 * 4, 3, seed=1))
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)  # (m, n_H, n_W, C)
>>> y = rng.integers(0, 3, size=16)                              # class labels
>>> opt = Adam(model, lr=1e-2)
>>> losses = []
>>> for step in range(20):
...     loss, dlogits = softmax_cross_entropy(model.forward(x), y)
...     _ = model.backward(dlogits)
...     opt.step()
...     losses.append(loss)
>>> losses[-1] < losses[0]
True
>>> model.predict(x).shape
(16,)
>>> sorted(model.parameters())
['0.b', '0.w', '4.b', '4.w']
"""
from __future__ import annotations

from cyconv.layers._activations import ReLU, Tanh
# Params and Seed: the type aliases the flat module had, for annotations in users' code.
from cyconv.layers._base import Layer, Params, Seed, glorot_uniform, he_normal
from cyconv.layers._conv import Conv2D, ConvTranspose2D
from cyconv.layers._dense import Dense, Flatten
from cyconv.layers._pool import AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D
from cyconv.layers.losses import softmax, softmax_cross_entropy
from cyconv.layers.optim import SGD, Adam
from cyconv.layers.sequential import Sequential

__all__ = [
    "SGD",
    "Adam",
    "AvgPool2D",
    "Conv2D",
    "ConvTranspose2D",
    "Dense",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "ReLU",
    "Sequential",
    "Tanh",
    "glorot_uniform",
    "GlobalAvgPool2D",
    "GlobalMaxPool2D",
    "he_normal",
    "softmax",
    "softmax_cross_entropy",
]
