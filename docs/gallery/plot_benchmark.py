"""
The comparison benchmark, in miniature
======================================

``python -m cyconv.bench`` times cyconv against PyTorch's CPU kernels and the
plain-loop definitions of :mod:`cyconv.reference`, interleaved in one process
(see the user guide's benchmarking page for the full tables). Its
:func:`cyconv.bench.run` works in-process too: here a *quick* run of a few
small shapes on one thread, float32, plotted with matplotlib.

When PyTorch is installed (``pip install "cyconv[bench]"``) the plot shows
cyconv's speed-up over it; without PyTorch (as in CI) it compares cyconv with
:mod:`cyconv.reference` only, which says how much the compiled kernels gain
over NumPy loops, **not** how cyconv compares with another library. The
numbers of a build on a busy 2-core machine are noisy: this page shows the
method, not a measurement to quote.
"""
import matplotlib.pyplot as plt
import numpy as np

import cyconv
from cyconv import bench

torch = bench.import_torch()
peer = "torch" if torch is not None else "reference"
print(f"cyconv {cyconv.__version__}, CPU level {cyconv.cpu_level()}, peer: "
      + (f"PyTorch {torch.__version__}" if torch is not None else "cyconv.reference (no PyTorch)"))

# %%
# The cases
# ---------
# Shape S1 is a tiny convolution, S3 the second convolution of LeNet-5 on a
# batch of 64, P1 a 2x2 max/avg pool of ``(8, 56, 56, 64)``
# (:data:`cyconv.bench.SHAPES`). The reference exists for the forward passes.
cases = [("S1", "fwd"), ("S3", "fwd"), ("P1", "max_fwd"), ("P1", "avg_fwd")]
for name in dict.fromkeys(name for name, _ in cases):
    print(name, bench.SHAPES[name])
results = bench.run(cases, dtypes=("float32",), threads=(1,), quick=True, torch=torch,
                    reference=True)

# %%
# The results
# -----------
print(f"{'shape':6}{'op':9}{'cyconv ms':>11}{peer + ' ms':>14}{'speed-up':>10}  agree")
for r in results:
    print(f"{r['shape']:6}{r['op']:9}{r['cyconv_ms']:11.4f}{r[peer + '_ms']:14.4f}"
          f"{r['speedup_vs_' + peer]:9.0f}x  {r['agree']}")

labels = [f"{r['shape']} {r['op']}" for r in results]
speedup = [r["speedup_vs_" + peer] for r in results]
fig, ax = plt.subplots(figsize=(7, 3.2))
bars = ax.bar(labels, speedup, color="tab:blue")
ax.bar_label(bars, labels=[f"{s:.0f}x" if s >= 10 else f"{s:.2f}x" for s in speedup])
ax.axhline(1, color="black", lw=0.8)
ax.margins(y=0.15)
ax.set(ylabel=f"{peer} time / cyconv time", yscale="log" if max(speedup) > 20 else "linear",
       title=f"cyconv vs {'PyTorch' if peer == 'torch' else 'cyconv.reference'}, "
             "float32, 1 thread (quick run)")
fig.tight_layout()
