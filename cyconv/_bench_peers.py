"""Optional peers of ``python -m cyconv.bench`` besides PyTorch: ONNX Runtime.

ONNX Runtime's CPU execution provider (its MLAS kernels) is what many people
deploy for CPU inference, so it is the second peer of the float32 forward
pass (``--peers torch,onnxruntime``). Each conv row gets a one-node model built
with the ``onnx`` helper: a ``Conv`` node whose weights and bias are
initializers, for the row's NCHW input shape. The NHWC input is transposed to
NCHW once, outside the timing; the session runs sequentially with the row's
thread count (``intra_op_num_threads = inter_op_num_threads = threads``).
ONNX Runtime's CPU provider has no float64 ``Conv``, so float64 rows (and the
backward passes and pools, which inference runtimes do not have) show "—".

ONNX Runtime chooses its kernels' instruction set from cpuid; no setting
limits it, so at a forced lower ``--level`` it still runs the best this CPU has
(the benchmark header says so).

Imports only the standard library at import time.
"""
from __future__ import annotations

__all__ = ["PEERS", "import_onnxruntime", "onnx_conv_model", "ort_op", "parse_peers"]

#: Peers ``--peers`` accepts, in table order.
PEERS = ("torch", "onnxruntime")

#: ONNX opset of the models (a ``Conv`` unchanged since opset 11; ORT >= 1.10 runs it).
OPSET = 17


def import_onnxruntime():
    """``(onnxruntime, onnx)`` modules, or None if either is not installed."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime, onnx


def onnx_conv_model(onnx, w, b, x_shape, stride, padding):
    """A one-node ONNX model ``y = Conv(x, W, B)`` for NCHW ``x`` of ``x_shape``.

    Parameters
    ----------
    onnx : module
        The ``onnx`` package.
    w : ndarray, shape (f_h, f_w, C_in, C_out)
        cyconv's HWIO filters; stored as the OIHW initializer ``W``.
    b : ndarray, shape (C_out,)
        Bias, the initializer ``B``.
    x_shape : tuple of int
        NCHW shape of the input ``x``.
    stride, padding : int
        Same on both axes; padding on every side.

    Returns
    -------
    onnx.ModelProto
        Checked by ``onnx.checker``; input ``"x"``, output ``"y"``.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    elem = {np.dtype("float32"): TensorProto.FLOAT,
            np.dtype("float64"): TensorProto.DOUBLE}[w.dtype]
    f_h, f_w, _, c_out = w.shape
    n, _, h, wd = x_shape
    o_h, o_w = (h + 2 * padding - f_h) // stride + 1, (wd + 2 * padding - f_w) // stride + 1
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], kernel_shape=[f_h, f_w],
                            strides=[stride, stride], pads=[padding] * 4, dilations=[1, 1],
                            group=1)
    graph = helper.make_graph(
        [node], "cyconv_bench_conv",
        [helper.make_tensor_value_info("x", elem, list(x_shape))],
        [helper.make_tensor_value_info("y", elem, [n, c_out, o_h, o_w])],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), "W"),
                     numpy_helper.from_array(np.ascontiguousarray(b), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cyconv.bench")
    model.ir_version = 8  # what every ONNX Runtime since 1.10 reads
    onnx.checker.check_model(model)
    return model


def ort_session(ort, model, threads):
    """A CPU-provider session of ``model``: sequential, ``threads`` intra- and inter-op threads."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Its workers spin-wait after a call by default: interleaved with cyconv's
    # and torch's calls in one process they held a core, and every 2-thread
    # row of the others ran at one thread's speed (S4 fwd 17.7 ms at 2 threads).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def ort_op(modules, case, op, data, threads):
    """``(fn, to_cyconv)`` for ONNX Runtime's ``op`` of ``case``, or None where it has none.

    Only ``fwd`` of float32 convolutions. ``to_cyconv`` turns the NCHW output
    back to NHWC for the comparison with cyconv's result.
    """
    if (modules is None or case["kind"] != "conv" or op != "fwd"
            or data["x"].dtype.name != "float32"):
        return None
    import numpy as np

    ort, onnx = modules
    x = np.ascontiguousarray(data["x"].transpose(0, 3, 1, 2))  # outside the timing
    model = onnx_conv_model(onnx, data["w"], data["b"], x.shape, case["stride"], case["padding"])
    session = ort_session(ort, model, threads)
    feed = {"x": x}

    def fn():
        return session.run(["y"], feed)[0]
    return fn, lambda y: y.transpose(0, 2, 3, 1)


def parse_peers(value, no_torch=False, error=None):
    """``(peers, torch, ort)`` from ``--peers`` (None: the default) and ``--no-torch``.

    By default torch is a peer if installed (silently left out if not); a
    peer named in ``value`` must be installed, else ``error(message)`` is
    called (the argument parser's ``error``, which exits). ``"none"`` names no
    peer. ``torch`` is the module or None, ``ort`` the ``(onnxruntime, onnx)``
    modules or None.
    """
    from cyconv.bench import _split, import_torch

    def fail(message):
        if error is None:
            raise ValueError(message)
        error(message)

    asked = _split(value) if value is not None else None
    for p in asked or ():
        if p not in PEERS + ("none",):
            fail(f"--peers: unknown peer {p!r}; choose from {', '.join(PEERS)}, none")
    peers = [p for p in (asked if asked is not None else ["torch"]) if p != "none"]
    if no_torch and "torch" in peers:
        peers.remove("torch")
    torch = import_torch() if "torch" in peers else None
    ort = import_onnxruntime() if "onnxruntime" in peers else None
    for name, module in (("torch", torch), ("onnxruntime", ort)):
        if module is None and name in peers:
            if asked is not None:
                fail(f"--peers: {name} is not installed (pip install \"cyconv[bench]\")")
            peers.remove(name)
    return tuple(dict.fromkeys(peers)), torch, ort
