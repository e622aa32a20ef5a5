"""
Edge detection with hand-made filters
=====================================

A convolution layer with filters chosen by hand instead of learnt: the Sobel
operators (horizontal and vertical gradients) and the Laplacian, applied to
the cameraman photograph that ships with scikit-image
(:func:`skimage.data.camera`, no download) in one call of
:func:`cyconv.conv2d`.

:func:`cyconv.conv2d` computes a cross-correlation (the filter is not
flipped), as CNN libraries do; with ``padding="same"`` and zeros outside the
image it agrees with :func:`scipy.ndimage.correlate` in ``mode="constant"``.
"""
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage
from skimage import data

import cyconv

image = data.camera().astype(np.float32) / 255.0        # (512, 512) in [0, 1]
x = image[None, :, :, None]                              # NHWC: (1, 512, 512, 1)
print(f"x {x.shape} {x.dtype}")

# %%
# Three filters in one HWIO array
# -------------------------------
# ``w[:, :, 0, k]`` is the k-th 3x3 filter: Sobel x, Sobel y and Laplacian.
sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
w = np.stack([sobel_x, sobel_x.T, laplacian], axis=-1)[:, :, None, :]   # (3, 3, 1, 3)
print(f"w {w.shape}")

edges = cyconv.conv2d(x, w, padding="same")             # (1, 512, 512, 3)
gx, gy, lap = (edges[0, :, :, k] for k in range(3))
magnitude = np.hypot(gx, gy)
print(f"out {edges.shape} {edges.dtype}")

for k, f in enumerate((sobel_x, sobel_x.T, laplacian)):
    np.testing.assert_allclose(edges[0, :, :, k], ndimage.correlate(image, f, mode="constant"),
                               atol=1e-5)
print("same values as scipy.ndimage.correlate")

# %%
# The results
# -----------
fig, axes = plt.subplots(2, 3, figsize=(10, 7))
panels = [(image, "photo", "gray", None), (gx, "Sobel x (d/dx)", "RdBu_r", 1),
          (gy, "Sobel y (d/dy)", "RdBu_r", 1), (magnitude, "gradient magnitude", "gray_r", None),
          (lap, "Laplacian", "RdBu_r", 0.5), (magnitude > 0.5, "|gradient| > 0.5", "gray_r", None)]
for ax, (img, title, cmap, lim) in zip(axes.flat, panels):
    kw = dict(vmin=-lim, vmax=lim) if lim else {}
    ax.imshow(img, cmap=cmap, **kw)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()

# %%
# Stride and pooling
# ------------------
# The same filters with stride 2 give the gradients at half resolution, and
# a 4x4 max-pool of the magnitude keeps the strongest edge of every block.
half = cyconv.conv2d(x, w, stride=2, padding="same")                 # (1, 256, 256, 3)
pooled = cyconv.max_pool2d(magnitude[None, :, :, None], 4)           # (1, 128, 128, 1)
print(f"stride 2: {half.shape}, 4x4 max-pool of the magnitude: {pooled.shape}")
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(np.hypot(half[0, :, :, 0], half[0, :, :, 1]), cmap="gray_r")
axes[0].set_title("magnitude, stride 2")
axes[1].imshow(pooled[0, :, :, 0], cmap="gray_r")
axes[1].set_title("4x4 max-pool of the magnitude")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
