"""
Training LeNet-5 on the digits
==============================

LeNet-5 built from :mod:`cyconv.layers` learns scikit-learn's handwritten
digits: the 1,797 real 8x8 scans of :func:`sklearn.datasets.load_digits`
(bundled with scikit-learn, no download), upscaled to 32x32 NHWC float32 by
:func:`cyconv.demo.load_digits_32`, with a fixed stratified 80/20 split.

This is the loop of ``python -m cyconv.demo`` written out, for three epochs
instead of twelve so the page builds quickly (twelve reach about 99% test
accuracy): Adam with a cosine-decaying learning rate, each training image
shifted at random by up to 2 pixels.
"""
import time

import matplotlib.pyplot as plt
import numpy as np

from cyconv.demo import lenet5, load_digits_32, random_shift
from cyconv.layers import Adam, softmax_cross_entropy

x_train, y_train, x_test, y_test = load_digits_32()
print(f"x_train {x_train.shape} {x_train.dtype}, y_train {y_train.shape} {y_train.dtype}")
print(f"x_test  {x_test.shape}, classes {np.unique(y_train)}")

# %%
# The network
# -----------
# Two 5x5 convolutions (6 and 16 filters) each followed by ReLU and a 2x2
# max-pool, then three dense layers: ``(m, 32, 32, 1) -> (m, 10)`` class scores.
model = lenet5("max", seed=0)
print(model)

# %%
# Training
# --------
# ``model.backward(dlogits, input_grad=False)`` skips the gradient with
# respect to the images, which nothing needs.
epochs, batch_size, lr = 3, 32, 2e-3
rng = np.random.default_rng(0)
opt = Adam(model, lr=lr)
m = len(x_train)
steps_per_epoch = -(-m // batch_size)
n_steps = epochs * steps_per_epoch
losses, test_steps, test_acc = [], [0], [float((model.predict(x_test) == y_test).mean())]

t0 = time.perf_counter()
step = 0
for epoch in range(epochs):
    model.train()
    order = rng.permutation(m)
    for start in range(0, m, batch_size):
        idx = order[start:start + batch_size]
        opt.lr = lr * 0.5 * (1 + np.cos(np.pi * step / n_steps))  # cosine decay to 0
        logits = model.forward(random_shift(x_train[idx], 2, rng))
        loss, dlogits = softmax_cross_entropy(logits, y_train[idx])
        model.backward(dlogits, input_grad=False)
        opt.step()
        losses.append(loss)
        step += 1
        if step % 15 == 0 or step == n_steps:  # three times an epoch
            test_steps.append(step)
            test_acc.append(float((model.predict(x_test) == y_test).mean()))
    print(f"epoch {epoch + 1}: mean loss {np.mean(losses[-steps_per_epoch:]):.3f}, "
          f"test accuracy {100 * test_acc[-1]:.1f}%")
print(f"{n_steps} steps in {time.perf_counter() - t0:.1f} s; "
      f"final test accuracy {100 * test_acc[-1]:.1f}% on {len(y_test)} images")

# %%
# Loss and accuracy curves
# ------------------------
# The training loss of every batch (and its running mean over an epoch's
# worth of steps) and the accuracy on the 360 held-out images.
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
steps = np.arange(1, n_steps + 1)
ax_loss.plot(steps, losses, lw=0.8, alpha=0.5, label="batch")
window = steps_per_epoch // 3
running = np.convolve(losses, np.ones(window) / window, mode="valid")
ax_loss.plot(steps[window - 1:], running, lw=2, label=f"mean of {window}")
ax_loss.set(xlabel="step", ylabel="softmax cross-entropy", yscale="log", title="training loss")
ax_loss.legend()
ax_acc.plot(test_steps, 100 * np.array(test_acc), "o-")
ax_acc.set(xlabel="step", ylabel="%", ylim=(0, 100), title="test accuracy")
for ax in (ax_loss, ax_acc):
    for e in range(1, epochs):
        ax.axvline(e * steps_per_epoch, color="0.8", lw=0.8, zorder=0)
fig.tight_layout()

# %%
# Some test digits with the network's answer (red when wrong).
pred = model.predict(x_test[:24])
fig, axes = plt.subplots(3, 8, figsize=(8, 3.4))
for ax, img, p, y in zip(axes.flat, x_test[:24, :, :, 0], pred, y_test[:24]):
    ax.imshow(img, cmap="gray_r")
    ax.set_title(str(p), color="black" if p == y else "red")
    ax.axis("off")
fig.tight_layout()
