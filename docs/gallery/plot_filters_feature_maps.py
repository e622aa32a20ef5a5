"""
Filters and feature maps of the first layer
===========================================

What does the first convolution of LeNet-5 learn? We train the network of
:ref:`the training example <sphx_glr_auto_examples_plot_train_lenet5.py>`
briefly (two epochs, about 95% test accuracy), then look at its six 5x5
filters and at what each of them makes of one test digit: the feature maps of
``Conv2D -> ReLU`` and, one layer further, of the 2x2 max-pool.
"""
import matplotlib.pyplot as plt
import numpy as np

import cyconv
from cyconv.demo import lenet5, load_digits_32, random_shift
from cyconv.layers import Adam, softmax_cross_entropy

x_train, y_train, x_test, y_test = load_digits_32()
model = lenet5("max", seed=0)
opt = Adam(model, lr=2e-3)
rng = np.random.default_rng(0)
for epoch in range(2):
    for idx in np.array_split(rng.permutation(len(x_train)), len(x_train) // 32):
        loss, dlogits = softmax_cross_entropy(
            model.forward(random_shift(x_train[idx], 2, rng)), y_train[idx])
        model.backward(dlogits, input_grad=False)
        opt.step()
model.eval()
print(f"test accuracy after 2 epochs: {100 * (model.predict(x_test) == y_test).mean():.1f}%")

# %%
# The filters
# -----------
# The first layer's weights are HWIO, ``(f_h, f_w, C_in, C_out) = (5, 5, 1, 6)``:
# one 5x5 image per output channel (blue negative, red positive, one scale
# for all six).
conv1 = model[0]
w, b = conv1.params["w"], conv1.params["b"]
print(f"w {w.shape} {w.dtype}, b {b.shape}")
lim = np.abs(w).max()
fig, axes = plt.subplots(1, 6, figsize=(9, 1.9))
for c, ax in enumerate(axes):
    ax.imshow(w[:, :, 0, c], cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"filter {c}")
    ax.axis("off")
fig.tight_layout()

# %%
# The feature maps
# ----------------
# The layers are callable one by one; the first three are ``Conv2D``, ``ReLU``
# and ``MaxPool2D``. The convolution is exactly :func:`cyconv.conv2d` with the
# layer's weights ("valid" padding: 32x32 in, 28x28 out).
x = x_test[:1]                                    # (1, 32, 32, 1)
z = model[0](x)                                   # (1, 28, 28, 6)
a = model[1](z)                                   # ReLU
p = model[2](a)                                   # (1, 14, 14, 6)
np.testing.assert_allclose(z, cyconv.conv2d(x, w, b), rtol=1e-6, atol=1e-6)
print(f"input {x.shape} -> conv {z.shape} -> pool {p.shape}; label {y_test[0]}")

fig, axes = plt.subplots(2, 7, figsize=(10, 3.2))
for row, maps, name in ((0, a, "ReLU(conv)"), (1, p, "max-pool")):
    axes[row, 0].imshow(x[0, :, :, 0], cmap="gray_r")
    axes[row, 0].set_title("input" if row == 0 else "")
    for c in range(6):
        axes[row, c + 1].imshow(maps[0, :, :, c], cmap="viridis")
        axes[row, c + 1].set_title(f"{name} {c}", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()
