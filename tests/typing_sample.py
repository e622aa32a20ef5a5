"""A user's script, typed: every public function of cyconv, its results used.

``tests/test_typing.py`` checks it with ``mypy --strict`` (which must find
nothing) and runs it (so what it claims about the results holds). It is not
a test module itself. Every name in the ``__all__`` of ``cyconv``,
``cyconv.compat``, ``cyconv.compat.cs231n``, ``cyconv.layers`` and
``cyconv.reference`` appears here,
qualified (``cyconv.conv2d``, ``layers.Dense``, ...); the test checks that too.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

import cyconv
from cyconv import compat, layers, reference
from cyconv.compat import cs231n

FloatArray = npt.NDArray[np.floating[Any]]


def functional() -> float:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = np.zeros(4, dtype=np.float32)

    z: FloatArray = cyconv.conv2d(x, w, b, stride=1, padding="same", num_threads=2)
    cyconv.conv2d(x, w, stride=(2, 1), padding=((1, 0), (0, 1)))
    cyconv.conv2d(x.tolist(), w, np.zeros((1, 1, 1, 4)), padding=(1, 1), num_threads=None)
    out = np.empty((2, 8, 8, 4), dtype=np.float32)
    assert cyconv.conv2d(x, w, b, padding=1, out=out) is out

    # All three gradients by default: arrays, never None.
    dx, dw, db = cyconv.conv2d_backward(np.ones_like(z), x, w, padding="same")
    total = float(dx.sum() + dw.sum() + db.sum())
    # Only those named in ``grads``: the others are None.
    grads = cyconv.conv2d_backward(np.ones_like(z), x, w, padding="same", grads=("dw", "db"))
    dx_none: FloatArray | None = grads[0]
    assert dx_none is None
    dw_only = cyconv.conv2d_backward(np.ones_like(z), x, w, padding="same", grads="dw")[1]
    if dw_only is not None:
        total += float(dw_only.sum())

    p: FloatArray = cyconv.max_pool2d(z, 2)
    cyconv.max_pool2d(z, (3, 3), stride=np.int64(2), padding="valid", num_threads=1)
    dz: FloatArray = cyconv.max_pool2d_backward(np.ones_like(p), z, 2)
    a: FloatArray = cyconv.avg_pool2d(z, (2, 2), stride=2, padding=0, count_include_pad=False)
    da: FloatArray = cyconv.avg_pool2d_backward(np.ones_like(a), z.shape, 2)
    assert dz.shape == da.shape == z.shape

    with cyconv.limit_blas_threads():  # the user's own matmul between cyconv calls
        scores: FloatArray = z.reshape(2, -1) @ np.ones((8 * 8 * 4, 3), dtype=np.float32)
    assert scores.shape == (2, 3)

    level: str = cyconv.cpu_level()
    version: str = cyconv.__version__
    show: Callable[[], None] = cyconv.show_config  # prints; not called here
    assert level and version and callable(show)
    return total


def reference_functions() -> None:
    x = np.arange(32.0).reshape(1, 4, 4, 2)
    w = np.ones((2, 2, 2, 3))
    z: FloatArray = reference.conv2d(x, w, [1.0, 2.0, 3.0], stride=2, padding="valid")
    dx, dw, db = reference.conv2d_backward(np.ones_like(z), x, w, stride=2)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (3,)
    p: FloatArray = reference.max_pool2d(x, 2, padding=(1, 1))
    reference.max_pool2d_backward(np.ones_like(p), x, 2, padding=(1, 1))
    a: FloatArray = reference.avg_pool2d(x, (2, 2), stride=(1, 1), count_include_pad=False)
    reference.avg_pool2d_backward(np.ones_like(a), (1, 4, 4, 2), (2, 2), stride=1)


def course_functions() -> None:
    rng = np.random.default_rng(1)
    A_prev = rng.standard_normal((2, 5, 5, 3))
    W, b = rng.standard_normal((3, 3, 3, 4)), np.zeros((1, 1, 1, 4))
    padded: npt.NDArray[Any] = compat.zero_pad(A_prev, 1)
    assert padded.shape == (2, 7, 7, 3)
    step: np.floating[Any] = compat.conv_single_step(A_prev[0, :3, :3, :], W[..., 0], b[..., 0])
    assert np.isfinite(step)

    Z, cache = compat.conv_forward(A_prev, W, b, {"stride": 2, "pad": 1})
    dA_prev, dW, db = compat.conv_backward(np.ones_like(Z), cache)
    assert dA_prev.shape == A_prev.shape and dW.shape == W.shape and db.shape == b.shape

    hparameters = {"f": 2, "stride": 1}
    for mode in ("max", "average"):
        A, pool_cache = compat.pool_forward(A_prev, hparameters, mode=mode)
        dA: FloatArray = compat.pool_backward(np.ones_like(A), pool_cache, mode=mode)
        assert dA.shape == A_prev.shape
    mask: npt.NDArray[np.bool_] = compat.create_mask_from_window(np.array([[1, 3], [4, 2]]))
    share: npt.NDArray[np.float64] = compat.distribute_value(2.0, (2, 2))
    assert mask.sum() == 1 and share.sum() == 2.0


def cs231n_functions() -> None:
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), np.zeros(4)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    for forward, backward in ((cs231n.conv_forward_naive, cs231n.conv_backward_naive),
                              (cs231n.conv_forward_fast, cs231n.conv_backward_fast),
                              (cs231n.conv_forward_im2col, cs231n.conv_backward_im2col),
                              (cs231n.conv_forward_strides, cs231n.conv_backward_strides)):
        out, cache = forward(x, w, b, conv_param)
        dx, dw, db = backward(np.ones_like(out), cache)
        assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    p, p_cache = cs231n.max_pool_forward_naive(x, pool_param)
    d: FloatArray = cs231n.max_pool_backward_naive(np.ones_like(p), p_cache)
    p, fast_cache = cs231n.max_pool_forward_fast(x, pool_param)
    d = cs231n.max_pool_backward_fast(np.ones_like(p), fast_cache)
    p, reshape_cache = cs231n.max_pool_forward_reshape(x, pool_param)
    d = cs231n.max_pool_backward_reshape(np.ones_like(p), reshape_cache)
    p, im2col_cache = cs231n.max_pool_forward_im2col(x, pool_param)
    d = cs231n.max_pool_backward_im2col(np.ones_like(p), im2col_cache)
    assert d.shape == x.shape


class Scale(layers.Layer):
    """A user's own layer: ``y = 2 x``."""

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        return 2 * np.asarray(x)

    def backward(self, dout: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return 2 * dout


def model() -> float:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=8)
    net = layers.Sequential(
        layers.Conv2D(1, 4, 3, padding="same", seed=0, init="glorot", num_threads=1),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(4, 4, (3, 3), stride=1, padding=1, backend=reference),
        layers.Tanh(),
        layers.AvgPool2D(2, count_include_pad=True),
        Scale(),
        layers.Flatten(),
        layers.Dense(2 * 2 * 4, 3, seed=1, dtype=np.float32),
    )
    first: layers.Layer = net[0]
    assert isinstance(first, layers.Conv2D) and len(net[1:3]) == 2
    net.num_threads = 1
    optimizers: list[layers.SGD | layers.Adam] = [
        layers.SGD(net, lr=0.01, momentum=0.9), layers.Adam(net, lr=1e-3, betas=(0.9, 0.99))]
    loss = 0.0
    for opt in optimizers:
        loss, dlogits = layers.softmax_cross_entropy(net.forward(x), y)
        dx: npt.NDArray[Any] = net.backward(dlogits)
        assert dx.shape == x.shape
        opt.step()
    probs: npt.NDArray[Any] = layers.softmax(net.eval()(x))
    labels: npt.NDArray[np.intp] = net.train().predict(x, batch_size=4)
    assert probs.shape == (8, 3) and labels.shape == (8,)

    w_he = layers.he_normal((3, 3, 1, 4), 9, seed=0)
    w_glorot = layers.glorot_uniform((4, 3), 4, 3, seed=np.random.default_rng(0),
                                     dtype=np.float64)
    params: dict[str, FloatArray] = net.parameters()
    assert w_he.shape == params["0.w"].shape and w_glorot.dtype == np.float64
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.npz")
        net.save(path)
        net.load(path).eval()
    return loss


def pools_extended() -> None:
    # dilation, ceil_mode and the global pools (issue 16).
    x = np.random.default_rng(1).standard_normal((2, 9, 9, 3))
    p: FloatArray = cyconv.max_pool2d(x, 3, stride=2, dilation=2, ceil_mode=True)
    q, idx = cyconv.max_pool2d(x, 2, dilation=(1, 2), return_indices=True)
    cyconv.max_pool2d_backward(np.ones_like(q), x, 2, dilation=(1, 2), indices=idx)
    cyconv.max_pool2d_backward(np.ones_like(p), x, 3, stride=2, dilation=2, ceil_mode=True)
    a: FloatArray = cyconv.avg_pool2d(x, 2, ceil_mode=True)
    cyconv.avg_pool2d_backward(np.ones_like(a), x.shape, 2, ceil_mode=True)
    g: FloatArray = cyconv.global_avg_pool2d(x)
    cyconv.global_avg_pool2d_backward(g, x.shape)
    gm: FloatArray = cyconv.global_max_pool2d(x, keepdims=True, layout="NHWC")
    cyconv.global_max_pool2d_backward(gm, x, num_threads=1)
    r: FloatArray = reference.global_avg_pool2d(x, keepdims=True)
    reference.global_avg_pool2d_backward(r, x.shape)
    rm: FloatArray = reference.global_max_pool2d(x, layout="NHWC")
    reference.global_max_pool2d_backward(rm, x)
    head = layers.Sequential(layers.MaxPool2D(2, dilation=2, ceil_mode=True),
                             layers.AvgPool2D(2, ceil_mode=True), layers.GlobalAvgPool2D())
    out: FloatArray = head.forward(x)
    assert out.shape == (2, 3) and g.shape == (2, 3) and gm.shape == (2, 1, 1, 3)
    assert layers.GlobalMaxPool2D(keepdims=True).forward(x).shape == (2, 1, 1, 3)
def dilated_grouped_transposed() -> float:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 9, 4))
    w = rng.standard_normal((3, 3, 1, 8))
    z: FloatArray = cyconv.conv2d(x, w, stride=1, padding="same", dilation=(2, 1), groups=4)
    dx, dw, db = cyconv.conv2d_backward(np.ones_like(z), x, w, padding="same", dilation=(2, 1),
                                        groups=4)
    wt = rng.standard_normal((4, 4, 2, 4))
    y: FloatArray = cyconv.conv_transpose2d(x, wt, np.zeros(2), stride=2, padding=1,
                                            output_padding=1, dilation=1, groups=1,
                                            num_threads=1)
    gx, gw, gb = cyconv.conv_transpose2d_backward(np.ones_like(y), x, wt, stride=2, padding=1,
                                                  output_padding=1)
    only_dw = cyconv.conv_transpose2d_backward(np.ones_like(y), x, wt, stride=2, padding=1,
                                               output_padding=1, grads=("dw",))[1]
    ry: FloatArray = reference.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1)
    rx, rw, rb = reference.conv_transpose2d_backward(np.ones_like(ry), x, wt, stride=2,
                                                     padding=1, output_padding=1)
    up = layers.ConvTranspose2D(4, 2, 4, stride=2, padding=1, seed=0, dtype=np.float64)
    assert up.backward(np.ones_like(up.forward(x))).shape == x.shape
    total = float(dx.sum() + dw.sum() + db.sum() + gx.sum() + gw.sum() + gb.sum())
    return total + float(rx.sum() + rw.sum() + rb.sum()) + (0.0 if only_dw is None else 1.0)


def main() -> None:
    functional()
    reference_functions()
    course_functions()
    cs231n_functions()
    model()
    pools_extended()
    dilated_grouped_transposed()


if __name__ == "__main__":
    main()
