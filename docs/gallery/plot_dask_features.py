"""
Scaling out with Dask
=====================

:mod:`cyconv.dask` runs the kernels on chunked, lazy ``dask.array`` inputs:
each function takes the arguments of its in-memory twin and returns a lazy
Dask array with the same values. This is ``examples/dask_features.py`` at a
small size: a stack of images, chunked by batch *and* by height and width,
goes through a 3x3 "same" convolution, a ReLU, a 2x2 max-pool and a global
average pool, one feature vector per image.

The full example streams a Zarr store larger than memory through a
``dask.distributed`` cluster; here everything runs in this process on Dask's
threaded scheduler, with :class:`dask.diagnostics.ProgressBar` showing the
tasks as they complete.
"""
import time

import dask
import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from dask.diagnostics import ProgressBar

import cyconv
import cyconv.dask

n_images, size, channels, features = 64, 96, 3, 16
rng = da.random.default_rng(0)
x = rng.random((n_images, size, size, channels), dtype=np.float32,
               chunks=(8, size // 2, size // 2, channels))   # 8 x 2 x 2 = 32 chunks
print(f"x: {x.shape} {x.dtype}, chunks {x.chunksize}, {x.npartitions} chunks")

w = np.random.default_rng(1).standard_normal((3, 3, channels, features)).astype(np.float32)
w *= np.float32(np.sqrt(2.0 / (9 * channels)))               # He initialisation
b = np.zeros(features, dtype=np.float32)

# %%
# Building the graph
# ------------------
# Nothing is computed yet. The height and width chunks need a halo of one row
# and column of their neighbours for the 3x3 filter; :mod:`cyconv.dask`
# gathers it, so the seams between tiles are exact.
z = cyconv.dask.conv2d(x, w, b, padding="same", num_threads=1)
p = cyconv.dask.max_pool2d(da.maximum(z, 0), 2, num_threads=1)
feats = cyconv.dask.global_avg_pool2d(p, num_threads=1)     # (images, features)
print(f"conv {z.shape}, pool {p.shape}, features {feats.shape}: "
      f"{len(feats.__dask_graph__())} tasks")

# %%
# Computing, with a progress bar
# ------------------------------
# Two threads (one kernel thread each): Dask parallelises over the chunks.
t0 = time.perf_counter()
with ProgressBar(dt=0.05), dask.config.set(scheduler="threads", num_workers=2):
    result = feats.compute()
elapsed = time.perf_counter() - t0
print(f"features {result.shape} {result.dtype} in {elapsed:.2f} s "
      f"({n_images / elapsed:.0f} images/s)")

# %%
# The same values as the in-memory kernels on the whole array:
xm = x.compute()
expected = cyconv.global_avg_pool2d(
    cyconv.max_pool2d(np.maximum(cyconv.conv2d(xm, w, b, padding="same"), 0), 2))
print("max |dask - in-memory| =", float(np.abs(result - expected).max()))
np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)

# %%
# One feature vector per image (rows) and per filter (columns); with random
# images they differ little, the point is the shape and the exactness.
fig, ax = plt.subplots(figsize=(7, 3))
im = ax.imshow(result.T, aspect="auto", cmap="viridis")
ax.set(xlabel="image", ylabel="feature (filter)", title="global average of ReLU(conv) max-pooled")
fig.colorbar(im, ax=ax)
fig.tight_layout()
