"""Sequential: layers applied in order, with named parameters, saving and loading."""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Literal, TypeVar, overload

import numpy as np
import numpy.typing as npt

from cyconv._args import Int
from cyconv._threads import limit_blas_threads
from cyconv.layers._activations import ReLU
from cyconv.layers._base import Layer, Params, _ThreadedLayer
from cyconv.layers._conv import Conv2D

_SequentialT = TypeVar("_SequentialT", bound="Sequential")


class Sequential:
    """Layers applied in order; named parameters ``"<index>.<name>"``.

    Parameters
    ----------
    *layers : Layer
        Or a single list of layers. The layers with a ``layout``
        (convolution and pooling layers) must all have the same one:
        activations pass between them untransposed.

    Raises
    ------
    TypeError
        A layer that is not a :class:`cyconv.layers.Layer`.
    RuntimeError
        ``backward`` without a ``forward`` in training mode before it.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.layers import Sequential, Dense, ReLU
    >>> model = Sequential(Dense(4, 8, seed=0), ReLU(), Dense(8, 3, seed=1))
    >>> model.forward(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    >>> {k: v.shape for k, v in model.parameters().items()}
    {'0.w': (4, 8), '0.b': (8,), '2.w': (8, 3), '2.b': (3,)}
    """

    @overload
    def __init__(self, *layers: Layer) -> None: ...
    @overload
    def __init__(self, layers: list[Layer] | tuple[Layer, ...], /) -> None: ...
    def __init__(self, *layers: Any) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be a cyconv.layers.Layer, "
                                f"got {type(layer).__name__}")
        self.layers: list[Layer] = list(layers)
        _check_layouts(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @overload
    def __getitem__(self, i: int) -> Layer: ...
    @overload
    def __getitem__(self, i: slice) -> list[Layer]: ...
    def __getitem__(self, i: int | slice) -> Layer | list[Layer]:
        return self.layers[i]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def forward(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Run every layer's ``forward``; returns the last output.

        NumPy's BLAS is held to one thread meanwhile
        (:func:`cyconv.limit_blas_threads`, once for the whole pass), so the
        dense layers' products never compete with the OpenMP team. A
        :class:`Conv2D` followed by a :class:`ReLU` runs as one kernel
        (:meth:`Conv2D.forward_relu`): the same values, bit for bit.
        """
        with limit_blas_threads():
            layers, i = self.layers, 0
            while i < len(layers):
                layer = layers[i]
                if (isinstance(layer, Conv2D) and i + 1 < len(layers)
                        and type(layers[i + 1]) is ReLU):
                    # Conv2D then ReLU: the ReLU runs in the convolution's store;
                    # the ReLU layer keeps the output for its backward as usual.
                    x = layer.forward_relu(x)
                    layers[i + 1]._keep(x)
                    i += 2
                    continue
                x = layer.forward(x)
                i += 1
        return x

    __call__ = forward

    @overload
    def backward(self, dout: npt.NDArray[Any],
                 input_grad: Literal[True] = ...) -> npt.NDArray[Any]: ...
    @overload
    def backward(self, dout: npt.NDArray[Any], input_grad: Literal[False]) -> None: ...
    @overload
    def backward(self, dout: npt.NDArray[Any],
                 input_grad: bool) -> npt.NDArray[Any] | None: ...
    def backward(self, dout: npt.NDArray[Any],
                 input_grad: bool = True) -> npt.NDArray[Any] | None:
        """Run every layer's ``backward`` in reverse; fills ``grads``, returns ``dx``.

        Parameters
        ----------
        dout : ndarray
            The loss's gradient with respect to the model's output.
        input_grad : bool, default True
            Whether to compute ``dx``, the gradient with respect to the
            model's input. A training loop does not need it (as PyTorch skips
            it for inputs that do not require grad): with ``False`` the first
            layer with parameters fills its ``grads`` only
            (:meth:`Layer.backward_params`), the layers before it do nothing,
            and None is returned. For LeNet-5 that skips a quarter of the
            step's work.

        BLAS held to one thread, as in :meth:`forward`.
        """
        first = next((i for i, layer in enumerate(self.layers) if layer.params), 0)
        with limit_blas_threads():
            for i in range(len(self.layers) - 1, -1, -1):
                layer = self.layers[i]
                if input_grad or i > first:
                    dout = layer.backward(dout)
                elif i == first:
                    layer.backward_params(dout)
                else:
                    layer._take()  # release the cache; no gradient to pass on
        return dout if input_grad else None

    @property
    def training(self) -> bool:
        """True if any layer is in training mode."""
        return any(layer.training for layer in self.layers)

    def train(self: _SequentialT, mode: bool = True) -> _SequentialT:
        """Put every layer in training mode (or evaluation mode if ``mode`` is False)."""
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self: _SequentialT) -> _SequentialT:
        """Put every layer in evaluation mode: no caches are kept."""
        return self.train(False)

    @property
    def num_threads(self) -> Int | None:
        """Threads of the conv, pool and ReLU layers (None: every usable core); settable."""
        values = {layer.num_threads for layer in self.layers
                  if isinstance(layer, _ThreadedLayer)}
        return values.pop() if len(values) == 1 else None

    @num_threads.setter
    def num_threads(self, n: Int | None) -> None:
        for layer in self.layers:
            if isinstance(layer, _ThreadedLayer):
                layer.num_threads = n

    def parameters(self) -> Params:
        """``{"<index>.<name>": array}`` of every layer's ``params`` (the arrays themselves)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()}

    def gradients(self) -> Params:
        """``{"<index>.<name>": array}`` of every layer's ``grads`` (keys of :meth:`parameters`)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.grads.items()}

    def predict(self, x: npt.NDArray[Any], batch_size: int = 256) -> npt.NDArray[np.intp]:
        """Class labels ``argmax(forward(x), axis=1)``, shape ``(m,)``, in evaluation mode.

        Runs in batches of ``batch_size`` and restores each layer's mode afterwards.
        """
        modes = [layer.training for layer in self.layers]
        self.eval()
        try:
            labels = [np.argmax(self.forward(x[i:i + batch_size]), axis=1)
                      for i in range(0, len(x), batch_size)]
        finally:
            for layer, mode in zip(self.layers, modes):
                layer.train(mode)
        return np.concatenate(labels) if labels else np.zeros(0, dtype=np.intp)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters to an ``.npz`` file, keys as in :meth:`parameters`."""
        with open(os.fspath(path), "wb") as f:
            np.savez(f, **self.parameters())  # type: ignore[arg-type]  # names, not savez's flags

    def load(self: _SequentialT, path: str | os.PathLike[str]) -> _SequentialT:
        """Read parameters saved by :meth:`save` into this model, in place.

        Raises
        ------
        ValueError
            If the file's names or shapes differ from this model's.
        """
        params = self.parameters()
        with np.load(os.fspath(path), allow_pickle=False) as data:
            missing = sorted(set(params) - set(data.files))
            unexpected = sorted(set(data.files) - set(params))
            if missing or unexpected:
                raise ValueError(f"{path}: parameter names do not match this model: "
                                 f"missing {missing}, unexpected {unexpected}")
            arrays = {k: data[k] for k in params}
        wrong = [f"{k}: file {arrays[k].shape}, model {p.shape}"
                 for k, p in params.items() if arrays[k].shape != p.shape]
        if wrong:
            raise ValueError(f"{path}: parameter shapes do not match this model: "
                             + "; ".join(wrong))
        for k, p in params.items():
            np.copyto(p, arrays[k], casting="same_kind")
        return self


def _check_layouts(layers: list[Layer]) -> None:
    # A model mixing layouts would hand (m, C, H, W) arrays to (m, H, W, C)
    # layers: refuse it here rather than with a shape error deep in a pass.
    layouts = [(i, getattr(layer, "layout")) for i, layer in enumerate(layers)
               if isinstance(getattr(layer, "layout", None), str)]
    for i, layout in layouts[1:]:
        if layout != layouts[0][1]:
            j, first = layouts[0]
            raise ValueError(f"layer {i} ({type(layers[i]).__name__}) has layout={layout!r} but "
                             f"layer {j} ({type(layers[j]).__name__}) has layout={first!r}; the "
                             f"layers of a Sequential must share one layout")
