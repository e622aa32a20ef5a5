"""A/B, one process, 1 thread, interleaved: S4 (8x56x56x64, 3x3x64x64, padding 1) undilated vs dilation 2
(padding 2), forward, dx and dw, both dtypes: python examples/dilation_ab.py [reps]."""
import time, sys
import numpy as np, cyconv
rng = np.random.default_rng(0)
res = {}
for dt in (np.float32, np.float64):
    x = rng.standard_normal((8, 56, 56, 64)).astype(dt)
    w = rng.standard_normal((3, 3, 64, 64)).astype(dt)
    b = np.zeros(64, dt)
    dz = rng.standard_normal((8, 56, 56, 64)).astype(dt)
    cases = {"d1": dict(padding=1), "d2": dict(padding=2, dilation=2)}
    ops = {
        "fwd": lambda kw: cyconv.conv2d(x, w, b, num_threads=1, **kw),
        "dx": lambda kw: cyconv.conv2d_backward(dz, x, w, num_threads=1, grads=("dx",), **kw),
        "dw": lambda kw: cyconv.conv2d_backward(dz, x, w, num_threads=1, grads=("dw", "db"), **kw),
    }
    for op, f in ops.items():
        t = {k: [] for k in cases}
        for k, kw in cases.items():
            f(kw)
        for rep in range(int(sys.argv[1]) if len(sys.argv) > 1 else 7):
            for k, kw in cases.items():
                t0 = time.perf_counter(); f(kw); t[k].append(time.perf_counter() - t0)
        m = {k: np.median(v) * 1e3 for k, v in t.items()}
        print(f"{np.dtype(dt).name:8s} {op:4s} undilated {m['d1']:7.2f} ms  dilation 2 {m['d2']:7.2f} ms  ratio {m['d2']/m['d1']:.3f}", flush=True)
