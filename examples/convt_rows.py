"""The convt rows (dilated S4, depthwise, transposed 4x4/2): cyconv vs torch 2.13 channels_last,
1 thread, medians of interleaved repetitions: python examples/convt_rows.py [reps] (needs torch)."""
import sys, time
import numpy as np, torch, cyconv
torch.set_num_threads(1)
aten = torch.ops.aten
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 9
rng = np.random.default_rng(0)


def med(fs):
    ts = {k: [] for k in fs}
    for f in fs.values():
        f()
    for _ in range(reps):
        for k, f in fs.items():
            t0 = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v) * 1e3) for k, v in ts.items()}


def cl(a):
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)


def oihw(w):
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))


def row(name, m):
    out = f"{name:58s}"
    for op in ("fwd", "dx", "dw"):
        c, t = m["c_" + op], m["t_" + op]
        out += f" | {op} {c:7.2f} ms (torch {t:7.2f}, {t / c:5.2f}x)"
    c, t = m["c_fwd"] + m["c_dx"] + m["c_dw"], m["t_fwd"] + m["t_bwd"]
    out += f" | fwd+bwd {c:7.2f} ms (torch fwd+bwd {t:7.2f}, {t / c:5.2f}x)"
    print(out, flush=True)


def conv_case(name, dt, shape, wshape, s, p, d=1, g=1, transposed=False, op=0):
    x = rng.standard_normal(shape).astype(dt)
    w = rng.standard_normal(wshape).astype(dt)
    if transposed:
        y = cyconv.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, dilation=d, groups=g)
    else:
        y = cyconv.conv2d(x, w, stride=s, padding=p, dilation=d, groups=g)
    dy = rng.standard_normal(y.shape).astype(dt)
    xt, wt, dyt = cl(x), oihw(w), cl(dy)
    S, P, D, OP = [s, s], [p, p], [d, d], [op, op]
    kw = dict(stride=s, padding=p, dilation=d, groups=g, num_threads=1)
    if transposed:
        kw["output_padding"] = op
        c_fwd = lambda: cyconv.conv_transpose2d(x, w, **kw)
        c_dx = lambda: cyconv.conv_transpose2d_backward(dy, x, w, grads=("dx",), **kw)
        c_dw = lambda: cyconv.conv_transpose2d_backward(dy, x, w, grads=("dw",), **kw)
    else:
        c_fwd = lambda: cyconv.conv2d(x, w, **kw)
        c_dx = lambda: cyconv.conv2d_backward(dy, x, w, grads=("dx",), **kw)
        c_dw = lambda: cyconv.conv2d_backward(dy, x, w, grads=("dw",), **kw)
    t_fwd = lambda: aten.convolution(xt, wt, None, S, P, D, transposed, OP, g)
    t_dx = lambda: aten.convolution_backward(dyt, xt, wt, None, S, P, D, transposed, OP, g,
                                             [True, False, False])
    t_dw = lambda: aten.convolution_backward(dyt, xt, wt, None, S, P, D, transposed, OP, g,
                                             [False, True, False])
    t_bwd = lambda: aten.convolution_backward(dyt, xt, wt, None, S, P, D, transposed, OP, g,
                                              [True, True, False])
    m = med(dict(c_fwd=c_fwd, t_fwd=t_fwd, c_dx=c_dx, t_dx=t_dx, c_dw=c_dw, t_dw=t_dw, t_bwd=t_bwd))
    row(f"{np.dtype(dt).name} {name}", m)
    return m


print(f"cyconv {cyconv.__version__} level {cyconv.cpu_level()}, torch {torch.__version__}, 1 thread")
for dt in (np.float32, np.float64):
    conv_case("depthwise 3x3 8x112x112x32 s1", dt, (8, 112, 112, 32), (3, 3, 1, 32), 1, 1, g=32)
    conv_case("depthwise 3x3 8x112x112x32 s2", dt, (8, 112, 112, 32), (3, 3, 1, 32), 2, 1, g=32)
    conv_case("depthwise 3x3 8x14x14x512 s1", dt, (8, 14, 14, 512), (3, 3, 1, 512), 1, 1, g=512)
    conv_case("transposed 4x4 s2 8x28x28x128 -> 8x56x56x64", dt, (8, 28, 28, 128), (4, 4, 64, 128), 2, 1,
              transposed=True)
    a = conv_case("S4 undilated 3x3 8x56x56x64 p1", dt, (8, 56, 56, 64), (3, 3, 64, 64), 1, 1)
    b = conv_case("S4 dilated d2 3x3 8x56x56x64 p2", dt, (8, 56, 56, 64), (3, 3, 64, 64), 1, 2, d=2)
    print(f"{np.dtype(dt).name} dilated/undilated S4 cyconv: fwd {b['c_fwd']/a['c_fwd']:.3f} dx "
          f"{b['c_dx']/a['c_dx']:.3f} dw {b['c_dw']/a['c_dw']:.3f}  (torch: fwd {b['t_fwd']/a['t_fwd']:.3f} "
          f"dx {b['t_dx']/a['t_dx']:.3f} dw {b['t_dw']/a['t_dw']:.3f})", flush=True)
