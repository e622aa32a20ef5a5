"""Train LeNet-5 on scikit-learn's handwritten digits with :mod:`cyconv.layers`.

Run ``python -m cyconv.demo`` (``--help`` for the options). It needs the
optional extra ``pip install "cyconv[demo]"`` (scikit-learn and tqdm;
matplotlib for ``--plot``); the kernels never do.

The data are the 1,797 real 8x8 scans of ``sklearn.datasets.load_digits``
(bundled with scikit-learn, no download), upscaled bilinearly to 32x32 and
scaled to [0, 1], with a fixed stratified 80/20 split (1,437 training and
360 test images; the same split for every ``--seed``, so seeds compare on the
same test images). The network is LeNet-5 as in the notes: 5x5 conv to 6
channels, 2x2 pool, 5x5 conv to 16 channels, 2x2 pool, dense 120, 84, 10,
with ReLU, trained with Adam on softmax cross-entropy, the learning rate
decaying along a cosine to 0, each training image shifted at random by up to
2 pixels (the training set has only 1,437 images; without the shifts the
network memorises them and test accuracy stays near 97.5%).

It ends with the test accuracy and the time of one training step: with
PyTorch installed, the demo's whole step (forward, loss, backward and Adam, at
the training batch size) against the same network in PyTorch, both on the same
thread count (medians of 15 interleaved steps); without it, forward, loss and
backward on a batch of 8 with the cyconv kernels and with :mod:`cyconv.reference`.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import cyconv
from cyconv import reference
from cyconv._args import resolve_num_threads
from cyconv.layers import (
    Adam,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    softmax_cross_entropy,
)

__all__ = ["lenet5", "load_digits_32", "main", "random_shift", "run", "time_step_vs_torch",
           "time_training_step", "upscale"]

NEEDS = "the demo needs scikit-learn and tqdm: pip install 'cyconv[demo]'"
NEEDS_PLOT = "--plot needs matplotlib: pip install 'cyconv[demo]'"

DEFAULTS = dict(epochs=12, batch_size=32, lr=2e-3, pool="max", seed=0, shift=2)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def _bilinear_matrix(n_in, n_out):
    # (n_out, n_in) interpolation weights, pixel centres aligned
    # (as skimage/OpenCV resize), edges clamped.
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    a = np.zeros((n_out, n_in))
    a[np.arange(n_out), lo] += 1 - frac
    a[np.arange(n_out), hi] += frac
    return a


def upscale(images, size=32):
    """Bilinear resize of ``(m, n, n)`` images to ``(m, size, size)``.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.demo import upscale
    >>> upscale(np.ones((2, 8, 8))).shape
    (2, 32, 32)
    """
    a = _bilinear_matrix(images.shape[1], size)
    b = _bilinear_matrix(images.shape[2], size)
    return np.einsum("ij,mjk,lk->mil", a, images, b)


def load_digits_32(limit=None, test_size=0.2):
    """The digits as NHWC float32 ``(m, 32, 32, 1)`` in [0, 1], split for training.

    Parameters
    ----------
    limit : int, optional
        Use only the first ``limit`` images (for quick runs).
    test_size : float, default 0.2
        Fraction held out, stratified by class, with a fixed random state.

    Returns
    -------
    x_train, y_train, x_test, y_test : ndarray
        Images ``(m, 32, 32, 1)`` float32 and labels ``(m,)`` int64.

    Examples
    --------
    >>> from cyconv.demo import load_digits_32
    >>> x_train, y_train, x_test, y_test = load_digits_32(limit=100)
    >>> x_train.shape, x_train.dtype, y_train.shape, x_test.shape
    ((80, 32, 32, 1), dtype('float32'), (80,), (20, 32, 32, 1))
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images, labels = digits.images, digits.target
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = (upscale(images / 16.0)[..., None]).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, labels.astype(np.int64), test_size=test_size, stratify=labels, random_state=0)
    return x_train, y_train, x_test, y_test


def random_shift(x, max_shift, rng):
    """Translate each image of ``(m, n_H, n_W, C)`` by up to ``max_shift`` pixels, zero-filled.

    Shifts are drawn independently per image and axis from
    ``-max_shift .. max_shift``.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.demo import random_shift
    >>> x = np.zeros((1, 5, 5, 1))
    >>> x[0, 2, 2, 0] = 1.0
    >>> moved = random_shift(x, 2, np.random.default_rng(0))
    >>> moved.shape, float(moved.sum())  # the pixel moved, nothing lost
    ((1, 5, 5, 1), 1.0)
    """
    if max_shift == 0:
        return x
    m, n_h, n_w, _ = x.shape
    s = max_shift
    padded = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, m))
    rows = dy[:, None] + np.arange(n_h)  # (m, n_H)
    cols = dx[:, None] + np.arange(n_w)  # (m, n_W)
    return padded[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]]


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

def lenet5(pool="max", *, seed=None, num_threads=None, backend=None, dtype=np.float32):
    """LeNet-5 for ``(m, 32, 32, 1)`` inputs, 10 classes, ReLU activations.

    Parameters
    ----------
    pool : {"max", "avg"}
        The pooling after each conv layer (2x2, stride 2).
    seed : None, int or numpy.random.Generator
        Random source of the initial weights.
    num_threads : int, optional
        Kernel threads of the conv and pool layers.
    backend : module, optional
        :mod:`cyconv` (default) or :mod:`cyconv.reference`.
    dtype : float32 or float64

    Returns
    -------
    Sequential
        ``(m, 32, 32, 1) -> (m, 10)`` class scores.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv.demo import lenet5
    >>> model = lenet5(seed=0)
    >>> model(np.zeros((2, 32, 32, 1), dtype=np.float32)).shape
    (2, 10)
    """
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    rng = np.random.default_rng(seed)
    kernels = dict(num_threads=num_threads, backend=backend)

    def pool_layer():
        return MaxPool2D(2, **kernels) if pool == "max" else AvgPool2D(2, **kernels)

    return Sequential(
        Conv2D(1, 6, 5, dtype=dtype, seed=rng, **kernels), ReLU(), pool_layer(),  # 14x14x6
        Conv2D(6, 16, 5, dtype=dtype, seed=rng, **kernels), ReLU(), pool_layer(),  # 5x5x16
        Flatten(),                                                                # 400
        Dense(400, 120, dtype=dtype, seed=rng), ReLU(),
        Dense(120, 84, dtype=dtype, seed=rng), ReLU(),
        Dense(84, 10, dtype=dtype, seed=rng, init="glorot"),
    )


def _step(model, x, y):
    loss, dlogits = softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    return loss


def time_training_step(model, x, y, backend, repeats):
    """Median seconds of one training step (forward, loss, backward) of a copy of ``model``.

    The copy has ``model``'s weights and the conv/pool ``backend``
    (:mod:`cyconv` or :mod:`cyconv.reference`).
    """
    copy = Sequential([_with_backend(layer, backend) for layer in model])
    _step(copy, x, y)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _step(copy, x, y)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_step_vs_torch(model, x, y, torch, num_threads, lr=DEFAULTS["lr"], rounds=15):
    """Median seconds of one whole training step, ``(cyconv, torch)``, interleaved.

    The step is the demo's: forward, softmax cross-entropy, backward and
    Adam, on a copy of ``model`` (its weights; ``model`` itself is not
    updated) and on the same network in PyTorch (channels_last,
    ``torch.optim.Adam``), both on ``num_threads`` threads; ``rounds``
    steps of each, alternating.
    """
    from cyconv.bench import interleave
    from cyconv.bench_train import cyconv_step, torch_step, torch_twin

    copy = Sequential([_with_backend(layer, cyconv, copy_params=True) for layer in model])
    copy.num_threads = num_threads
    saved = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        net = torch_twin(torch, copy, x.shape[1:])
        fns = {"cyconv": cyconv_step(copy, x, y, lr=lr, optimizer="adam"),
               "torch": torch_step(torch, net, x, y, lr=lr, optimizer="adam")}
        samples = interleave(fns, target=0.0, min_rounds=rounds, max_rounds=rounds, batch=0.0)
    finally:
        torch.set_num_threads(saved)
    return float(np.median(samples["cyconv"])), float(np.median(samples["torch"]))


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _with_backend(layer, backend, copy_params=False):
    import copy

    clone = copy.copy(layer)  # shares params unless copy_params
    if copy_params:
        clone.params = {k: v.copy() for k, v in layer.params.items()}
    clone.grads = {k: np.zeros_like(v) for k, v in layer.grads.items()}
    clone.cache = None
    clone.train()
    if hasattr(clone, "backend"):
        clone.backend = backend
    return clone


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def run(epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"], pool=DEFAULTS["pool"],
        threads=None, seed=DEFAULTS["seed"], lr=DEFAULTS["lr"], limit=None, save=None,
        plot=None, shift=DEFAULTS["shift"], compare=True, progress=True, out=print):
    """Train LeNet-5 on the digits and report as it goes.

    Parameters
    ----------
    epochs, batch_size, pool, threads, seed, lr, limit
        As the command-line options.
    shift : int, default 2
        Training images are translated by up to ``shift`` pixels each way
        (:func:`random_shift`), a fresh draw every time they are used.
    save : path, optional
        Write the trained weights there (``Sequential.save``).
    plot : path, optional
        Write loss and accuracy curves there (needs matplotlib).
    compare : bool, default True
        Time one training step with cyconv and with PyTorch (if installed),
        else with ``cyconv.reference``.
    progress : bool, default True
        Show a tqdm progress bar per epoch.
    out : callable, default print
        Where the report lines go.

    Returns
    -------
    dict
        Per epoch lists ``loss`` (mean training loss), ``train_accuracy``,
        ``test_accuracy``, ``seconds``; and ``final_test_accuracy``,
        ``total_seconds``, ``step_seconds`` (``{"cyconv": s, "torch": s}`` with
        PyTorch installed, else ``{"cyconv": s, "reference": s}``; None
        without ``compare``), ``model``.

    Examples
    --------
    One quick epoch on 200 images, silently:

    >>> from cyconv.demo import run
    >>> history = run(epochs=1, limit=200, compare=False, progress=False, out=lambda line: None)
    >>> len(history["loss"]), 0 <= history["final_test_accuracy"] <= 1
    (1, True)
    """
    t_start = time.perf_counter()
    from tqdm import tqdm

    x_train, y_train, x_test, y_test = load_digits_32(limit)
    out(f"digits: {len(x_train)} training and {len(x_test)} test images, 8x8 scans upscaled "
        f"to 32x32")
    out(f"LeNet-5 ({pool}-pooling, ReLU), Adam lr {lr:g} with cosine decay, batch {batch_size}, "
        f"random shifts <= {shift} px, seed {seed}, "
        f"{_plural(resolve_num_threads(threads), 'kernel thread')}")
    rng = np.random.default_rng(seed)
    model = lenet5(pool, seed=rng, num_threads=threads)
    opt = Adam(model, lr=lr)
    history = {"loss": [], "train_accuracy": [], "test_accuracy": [], "seconds": []}
    m = len(x_train)
    n_steps, step = epochs * -(-m // batch_size), 0
    t_train = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(m)
        model.train()
        total_loss, correct = 0.0, 0
        batches = range(0, m, batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                   disable=not progress, file=sys.stderr)
        for start in bar:
            idx = order[start:start + batch_size]
            # Cosine decay from lr to 0: large steps first, a quiet finish.
            opt.lr = lr * 0.5 * (1 + np.cos(np.pi * step / n_steps))
            step += 1
            logits = model.forward(random_shift(x_train[idx], shift, rng))
            loss, dlogits = softmax_cross_entropy(logits, y_train[idx])
            model.backward(dlogits, input_grad=False)  # no gradient for the images
            opt.step()
            total_loss += loss * len(idx)
            correct += int((logits.argmax(axis=1) == y_train[idx]).sum())
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        bar.close()
        test_acc = float((model.predict(x_test) == y_test).mean())
        seconds = time.perf_counter() - t0
        history["loss"].append(total_loss / m)
        history["train_accuracy"].append(correct / m)
        history["test_accuracy"].append(test_acc)
        history["seconds"].append(seconds)
        out(f"epoch {epoch:2d}/{epochs}  loss {total_loss / m:.4f}  "
            f"train acc {100 * correct / m:5.1f}%  test acc {100 * test_acc:5.1f}%  "
            f"{seconds:.2f} s")
    train_seconds = time.perf_counter() - t_train
    final = history["test_accuracy"][-1] if epochs else float(
        (model.predict(x_test) == y_test).mean())
    n_right = round(final * len(y_test))
    out(f"test accuracy: {100 * final:.1f}% ({n_right}/{len(y_test)}) after {epochs} "
        f"epochs in {train_seconds:.1f} s")
    history["final_test_accuracy"] = final
    history["step_seconds"] = None
    torch = _import_torch() if compare else None
    if torch is not None:
        n = min(batch_size, len(x_train))
        n_threads = resolve_num_threads(threads)
        fast, peer = time_step_vs_torch(model, x_train[:n], y_train[:n], torch, n_threads, lr)
        history["step_seconds"] = {"cyconv": fast, "torch": peer}
        out(f"one training step (batch {n}, Adam, {_plural(n_threads, 'thread')}): cyconv "
            f"{_ms(fast)}, PyTorch {torch.__version__} {_ms(peer)} -> {peer / fast:.2f}x")
    elif compare:
        n = min(8, len(x_train))
        fast = time_training_step(model, x_train[:n], y_train[:n], cyconv, repeats=20)
        slow = time_training_step(model, x_train[:n], y_train[:n], reference, repeats=3)
        history["step_seconds"] = {"cyconv": fast, "reference": slow}
        out(f"one training step (batch {n}): cyconv {_ms(fast)}, reference {_ms(slow)} "
            f"-> {slow / fast:.0f}x faster")
    if save is not None:
        model.save(save)
        out(f"weights saved to {save}")
    if plot is not None:
        _plot(history, plot)
        out(f"curves saved to {plot}")
    history["model"] = model
    history["total_seconds"] = time.perf_counter() - t_start
    out(f"total time: {history['total_seconds']:.1f} s")
    return history


def _plural(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ms(seconds):
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _plot(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, history["loss"], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_acc.plot(epochs, 100 * np.asarray(history["train_accuracy"]), marker="o", label="train")
    ax_acc.plot(epochs, 100 * np.asarray(history["test_accuracy"]), marker="o", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m cyconv.demo",
        description="Train LeNet-5 with cyconv on scikit-learn's 8x8 handwritten digits "
                    "(upscaled to 32x32) and compare a training step with PyTorch (if installed) "
                    "or cyconv.reference.")
    p.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"],
                   help="passes over the training set (default %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=DEFAULTS["batch_size"],
                   help="images per step (default %(default)s)")
    p.add_argument("--pool", choices=["max", "avg"], default=DEFAULTS["pool"],
                   help="pooling after each conv layer (default %(default)s)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="OpenMP threads of the conv/pool kernels (default: every usable core)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help="seed of the initial weights, batch order and shifts (default %(default)s)")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"],
                   help="Adam learning rate (default %(default)s)")
    p.add_argument("--save", metavar="WEIGHTS.npz", help="save the trained weights")
    p.add_argument("--plot", metavar="CURVE.png",
                   help="plot loss and accuracy per epoch (needs matplotlib)")
    p.add_argument("--limit", type=_positive_int, metavar="N",
                   help="use only the first N images, for a quick run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-compare", action="store_true",
                   help="skip timing a step against PyTorch (if installed) or cyconv.reference")
    return p


def main(argv=None):
    """Command-line entry point of ``python -m cyconv.demo``; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (``python -m cyconv.demo --help``); default
        ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success; 2 when scikit-learn or tqdm (the ``demo`` extra) is
        missing, or matplotlib for ``--plot``.

    Raises
    ------
    SystemExit
        An unknown option or value (argparse's usage message, status 2).

    Examples
    --------
    >>> from cyconv.demo import main
    >>> main(["--epochs", "1", "--limit", "200", "--no-progress", "--no-compare"])  # doctest: +ELLIPSIS
    digits: 160 training and 40 test images, 8x8 scans upscaled to 32x32
    ...test accuracy: ...
    0
    """
    args = _parser().parse_args(argv)
    try:
        import sklearn  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError:
        print(NEEDS, file=sys.stderr)
        return 2
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(NEEDS_PLOT, file=sys.stderr)
            return 2
    if args.limit is not None and args.limit < 50:
        print("--limit must be >= 50 (the stratified test split needs each digit at least once)",
              file=sys.stderr)
        return 2
    run(epochs=args.epochs, batch_size=args.batch_size, pool=args.pool, threads=args.threads,
        seed=args.seed, lr=args.lr, limit=args.limit, save=args.save, plot=args.plot,
        compare=not args.no_compare, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
