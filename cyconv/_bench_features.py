"""The feature rows of ``python -m cyconv.bench`` (issue 16): dilated, depthwise,
transposed and NCHW convolutions.

The shape table :data:`cyconv.bench.SHAPES` holds them beside the standard
rows, each with its ``kind``:

* ``"dilated"`` (D4): S4's shape with a 3x3 filter at dilation 2 (padding 2,
  the same output size); timed interleaved with S4 itself, and reported as
  the ratio of the two times (``vs base`` = dilated ms / S4 ms).
* ``"depthwise"`` (G1-G3): ``groups == C_in`` 3x3 convolutions, memory-bound:
  the forward row also reports GB/s of necessary traffic (read ``x``, ``w``
  and ``b``, write ``z``) and its fraction of ``np.copyto``'s bandwidth at
  ``x``'s size and the row's threads (``% copy``, as the pool rows); ops
  ``fwd`` and ``fb`` (forward, then ``conv2d_backward`` for dx, dw and db;
  torch: autograd of the same).
* ``"transposed"`` (T1): ``conv_transpose2d`` 4x4 stride 2 (8x28x28x128 ->
  8x56x56x64), ops ``fwd``, ``dx``, ``dw`` (``conv_transpose2d_backward``'s
  halves; torch: ``aten.convolution_backward`` with ``transposed=True``), with
  GFLOP/s and % GEMM (FLOPs: ``2 m n_H n_W C_in f_h f_w C_out / groups``).
* ``"nchw"`` (N4, N6): S4 and S6 called with ``layout="NCHW"`` (C-contiguous
  NCHW activations, OIHW filters), timed interleaved with the NHWC call of
  the same shape: ``vs base`` = NCHW ms / NHWC ms, the cost of the transposes.
  Their torch peer gets contiguous NCHW tensors (its default layout, what an
  NCHW caller hands it).

Shapes are written as the standard rows are: ``x`` NHWC ``(m, H, W, C)`` and
``w`` in cyconv's NHWC-layout filter order (HWIO; ``(f_h, f_w, C_out / groups,
C_in)`` for transposed rows); the N rows pass them transposed.

The rows are defined in :mod:`cyconv.bench` (whose table the asv suites load
by path against older builds); this module builds and times them, and is
imported only when a feature row runs. Imports only NumPy at import time.
"""
from __future__ import annotations

import numpy as np

__all__ = ["output_hw", "out_channels", "flops", "make_inputs",
           "cyconv_op", "torch_op", "depthwise_bytes"]

def is_conv_like(case):
    """Whether ``case`` is a convolution row (standard or feature)."""
    return case["kind"] != "pool"


def output_hw(case):
    """``(o_h, o_w)`` of a convolution row (standard or feature)."""
    _, n_h, n_w, _ = case["x"]
    f_h, f_w = case["w"][:2]
    s, p, d = case["stride"], case["padding"], case.get("dilation", 1)
    if case["kind"] == "transposed":
        return tuple((n - 1) * s - 2 * p + d * (f - 1) + 1 for n, f in ((n_h, f_h), (n_w, f_w)))
    return tuple((n + 2 * p - d * (f - 1) - 1) // s + 1 for n, f in ((n_h, f_h), (n_w, f_w)))


def out_channels(case):
    """``C_out`` of a convolution row."""
    if case["kind"] == "transposed":
        return case["w"][2] * case.get("groups", 1)
    return case["w"][3]


def flops(case):
    """FLOPs of one forward (``dx`` and ``dw`` take the same count)."""
    m, n_h, n_w, _ = case["x"]
    f_h, f_w, w_c, w_o = case["w"]
    if case["kind"] == "transposed":   # every input pixel scatters f_h f_w C_out/g products
        return 2 * m * n_h * n_w * w_o * f_h * f_w * w_c
    o_h, o_w = output_hw(case)
    return 2 * m * o_h * o_w * w_o * f_h * f_w * w_c


def depthwise_bytes(case, itemsize):
    """Bytes a depthwise forward must move: read ``x``, ``w``, ``b``; write ``z``."""
    m = case["x"][0]
    o_h, o_w = output_hw(case)
    c_out = out_channels(case)
    return itemsize * (int(np.prod(case["x"])) + int(np.prod(case["w"])) + c_out
                       + m * o_h * o_w * c_out)


def make_inputs(case, dtype, seed=0):
    """C-contiguous random ``x, w, b, dz`` of a feature row, in the row's layout."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    m = case["x"][0]
    o_h, o_w = output_hw(case)
    c_out = out_channels(case)
    data = dict(x=rng.standard_normal(case["x"], dtype=dtype),
                w=rng.standard_normal(case["w"], dtype=dtype),
                b=rng.standard_normal(c_out, dtype=dtype),
                dz=rng.standard_normal((m, o_h, o_w, c_out), dtype=dtype))
    if case["layout"] == "NCHW":
        data["x"] = np.ascontiguousarray(data["x"].transpose(0, 3, 1, 2))
        data["dz"] = np.ascontiguousarray(data["dz"].transpose(0, 3, 1, 2))
        data["w"] = np.ascontiguousarray(data["w"].transpose(3, 2, 0, 1))
    return data


def _geometry_kw(case):
    kw = dict(stride=case["stride"], padding=case["padding"])
    if case.get("dilation", 1) != 1:
        kw["dilation"] = case["dilation"]
    if case.get("groups", 1) != 1:
        kw["groups"] = case["groups"]
    if case.get("layout", "NHWC") != "NHWC":
        kw["layout"] = case["layout"]
    return kw


def cyconv_op(case, op, data, threads):
    """Zero-argument callable running ``op`` of a feature row with cyconv."""
    import cyconv

    kw = dict(_geometry_kw(case), num_threads=threads)
    x, w, b, dz = data["x"], data["w"], data["b"], data["dz"]
    if case["kind"] == "transposed":
        fwd, bwd = cyconv.conv_transpose2d, cyconv.conv_transpose2d_backward
    else:
        fwd, bwd = cyconv.conv2d, cyconv.conv2d_backward
    if op == "fwd":
        return lambda: fwd(x, w, b, **kw)
    if op == "dx":
        return lambda: bwd(dz, x, w, grads=("dx",), **kw)[0]
    if op == "dw":
        return lambda: bwd(dz, x, w, grads=("dw", "db"), **kw)[1:]
    if op == "fb":
        def fb():
            fwd(x, w, b, **kw)
            return bwd(dz, x, w, **kw)
        return fb
    raise ValueError(f"unknown op {op!r} for a {case['kind']} row")


def torch_op(torch, case, op, data):
    """``(fn, to_cyconv)`` for a feature row: the torch callable and a converter of its result.

    NHWC rows: activations ``from_numpy(nhwc).permute(0, 3, 1, 2)`` (channels_last,
    no copy), filters converted once here. NCHW rows: the contiguous NCHW arrays as
    they are.
    """
    F = torch.nn.functional
    nchw_row = case["layout"] == "NCHW"
    transposed = case["kind"] == "transposed"
    s, p, d, g = case["stride"], case["padding"], case.get("dilation", 1), case.get("groups", 1)

    def act(a):
        t = torch.from_numpy(a)
        return t if nchw_row else t.permute(0, 3, 1, 2)

    def back(t):
        t = t.detach()
        return t.numpy() if nchw_row else t.permute(0, 2, 3, 1).numpy()

    def w_back(t):
        t = t.detach()
        return t.numpy() if nchw_row else t.permute(2, 3, 1, 0).numpy()

    xt, dzt, bt = act(data["x"]), act(data["dz"]), torch.from_numpy(data["b"])
    if nchw_row:
        wt = torch.from_numpy(data["w"])
    else:
        # cyconv's (f_h, f_w, C_in/g, C_out) -> torch's (C_out, C_in/g, f_h, f_w); for a
        # transposed row (f_h, f_w, C_out/g, C_in) -> (C_in, C_out/g, f_h, f_w): the same permute
        wt = torch.from_numpy(data["w"]).permute(3, 2, 0, 1).contiguous(
            memory_format=torch.channels_last)
    if op == "fwd":
        if transposed:
            return (lambda: F.conv_transpose2d(xt, wt, bt, stride=s, padding=p, dilation=d,
                                               groups=g)), back
        return (lambda: F.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d, groups=g)), back
    if op in ("dx", "dw"):
        mask = [True, False, False] if op == "dx" else [False, True, True]
        backward = torch.ops.aten.convolution_backward
        c_out = out_channels(case)

        def fn():
            return backward(dzt, xt, wt, [c_out], [s, s], [p, p], [d, d], transposed, [0, 0],
                            g, mask)
        if op == "dx":
            return fn, lambda r: back(r[0])
        return fn, lambda r: (w_back(r[1]), r[2].numpy())
    if op == "fb":
        xg = xt.detach().requires_grad_(True)
        wg = wt.detach().requires_grad_(True)
        bg = bt.detach().requires_grad_(True)
        conv = F.conv_transpose2d if transposed else F.conv2d

        def fb():
            with torch.enable_grad():
                y = conv(xg, wg, bg, stride=s, padding=p, dilation=d, groups=g)
                return torch.autograd.grad(y, (xg, wg, bg), dzt)
        return fb, lambda r: (back(r[0]), w_back(r[1]), r[2].detach().numpy())
    raise ValueError(f"unknown op {op!r} for a {case['kind']} row")
