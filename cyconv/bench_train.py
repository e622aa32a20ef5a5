"""One training step, cyconv.layers against PyTorch CPU: ``python -m cyconv.bench --train``.

The kernel benchmark (:mod:`cyconv.bench`) times each operation alone; this
one times the job users run: one step of training a CNN (forward, softmax
cross-entropy, backward, SGD with momentum 0.9) built once with
:mod:`cyconv.layers` and once as the same model in PyTorch (``channels_last``
activations and weights, ``torch.nn.functional.cross_entropy``,
``torch.optim.SGD`` with momentum, ``torch.set_num_threads`` equal to
cyconv's ``num_threads``), with the same initial weights and batch. Neither
side computes the gradient with respect to the batch (torch: the input does
not require grad; cyconv: ``Sequential.backward(dlogits, input_grad=False)``).

Models (:data:`MODELS`):

* ``lenet5``: LeNet-5 of the notes on ``(m, 32, 32, 1)``: 5x5 conv to 6, ReLU,
  2x2 max-pool, 5x5 conv to 16, ReLU, 2x2 max-pool, dense 120, ReLU, 84, ReLU,
  10 (as ``cyconv.demo.lenet5``); batches 8 and 64.
* ``conv4``: a 4-conv CIFAR net on ``(m, 32, 32, 3)``: 3x3 "same" convs to 32
  and 32, ReLU after each, 2x2 max-pool, 3x3 convs to 64 and 64, ReLU,
  2x2 max-pool, dense 10; batches 32 and 128.

For each case (model, batch, dtype, thread count) both steps run once from the
same weights and the losses and updated first-layer weights are compared;
then both are timed interleaved (cyconv, torch, torch, cyconv, ... in batches
of steps, as the kernel benchmark does) and the table reports medians, their
ratio (``speed-up = torch ms / cyconv ms``) and cyconv's speed-up over its own
1-thread row (``vs 1 thread``).

Like :mod:`cyconv.bench`, this module imports only the standard library and
NumPy at import time; the asv suite ``benchmarks/benchmark_train.py`` loads it
by path and builds its models with whatever cyconv build asv installed.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

__all__ = ["MODELS", "cyconv_model", "cyconv_step", "make_batch", "run", "torch_step", "main"]

#: Model name -> input shape ``(n_H, n_W, C)`` and the batch sizes of the table.
MODELS = {
    "lenet5": dict(input=(32, 32, 1), batches=(8, 64)),
    "conv4": dict(input=(32, 32, 3), batches=(32, 128)),
}
N_CLASSES = 10
LR, MOMENTUM = 0.01, 0.9

# Seconds of timing per case, rounds, and seconds per batch of steps.
_SETTINGS = {
    "full": dict(target=1.5, min_rounds=15, max_rounds=60, batch=0.02),
    "quick": dict(target=0.05, min_rounds=3, max_rounds=5, batch=0.0),
}
# Peers agree when the loss and updated weights of one step differ by less.
_AGREE = {"float32": 1e-3, "float64": 1e-9}


# --------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------

def cyconv_model(name, dtype="float32", seed=0, num_threads=None):
    """The model ``name`` as a ``cyconv.layers.Sequential`` (seeded weights).

    Examples
    --------
    >>> from cyconv.bench_train import cyconv_model
    >>> model = cyconv_model("lenet5")
    >>> len(model), type(model).__name__
    (12, 'Sequential')
    """
    from cyconv.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential

    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if name == "lenet5":
        layers = [
            Conv2D(1, 6, 5, dtype=dt, seed=rng), ReLU(), MaxPool2D(2),
            Conv2D(6, 16, 5, dtype=dt, seed=rng), ReLU(), MaxPool2D(2),
            Flatten(),
            Dense(400, 120, dtype=dt, seed=rng), ReLU(),
            Dense(120, 84, dtype=dt, seed=rng), ReLU(),
            Dense(84, N_CLASSES, dtype=dt, seed=rng, init="glorot"),
        ]
    elif name == "conv4":
        layers = [
            Conv2D(3, 32, 3, padding="same", dtype=dt, seed=rng), ReLU(),
            Conv2D(32, 32, 3, padding="same", dtype=dt, seed=rng), ReLU(), MaxPool2D(2),
            Conv2D(32, 64, 3, padding="same", dtype=dt, seed=rng), ReLU(),
            Conv2D(64, 64, 3, padding="same", dtype=dt, seed=rng), ReLU(), MaxPool2D(2),
            Flatten(),
            Dense(8 * 8 * 64, N_CLASSES, dtype=dt, seed=rng, init="glorot"),
        ]
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    model = Sequential(layers)
    model.num_threads = num_threads
    return model


def make_batch(name, batch, dtype="float32", seed=1):
    """A random NHWC batch ``x`` and labels ``y`` for model ``name``.

    Examples
    --------
    >>> from cyconv.bench_train import make_batch
    >>> x, y = make_batch("lenet5", 8)
    >>> x.shape, x.dtype, y.shape
    ((8, 32, 32, 1), dtype('float32'), (8,))
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + MODELS[name]["input"]).astype(dtype)
    return x, rng.integers(0, N_CLASSES, size=batch)


def cyconv_step(model, x, y, lr=LR, momentum=MOMENTUM, optimizer="sgd"):
    """Zero-argument callable: one training step of ``model`` on ``(x, y)``; returns the loss.

    The optimiser, created here once: ``cyconv.layers.SGD`` with momentum
    (``optimizer="sgd"``) or ``cyconv.layers.Adam`` (``"adam"``, default betas).
    ``model.backward(dlogits, input_grad=False)``: a training loop does not
    need the gradient with respect to the batch.

    Examples
    --------
    >>> from cyconv.bench_train import cyconv_model, cyconv_step, make_batch
    >>> step = cyconv_step(cyconv_model("lenet5"), *make_batch("lenet5", 8))
    >>> loss = step()  # forward, loss, backward, SGD update
    >>> loss > 0
    True
    """
    from cyconv.layers import SGD, Adam, softmax_cross_entropy

    opt = Adam(model, lr=lr) if optimizer == "adam" else SGD(model, lr=lr, momentum=momentum)
    # The input's gradient is not needed to train (torch's input does not
    # require grad either); builds before Sequential.backward(input_grad=)
    # compute it anyway (the asv history reaches back to them).
    kw = {"input_grad": False} if _has_input_grad(model) else {}

    def step():
        loss, dlogits = softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits, **kw)
        opt.step()
        return loss
    return step


def _has_input_grad(model):
    import inspect

    return "input_grad" in inspect.signature(model.backward).parameters


def torch_twin(torch, model, input_shape):
    """The PyTorch copy of a cyconv ``Sequential`` (same weights, channels_last).

    ``input_shape`` is one sample's ``(n_H, n_W, C)``; it gives the shape that
    ``Flatten`` receives, to reorder the next dense layer's inputs from
    cyconv's NHWC flatten order to torch's NCHW one.
    """
    from cyconv.layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU

    nn = torch.nn
    dtype = torch.from_numpy(next(iter(model.parameters().values()))).dtype
    a = np.zeros((1,) + tuple(input_shape), dtype=next(iter(model.parameters().values())).dtype)
    layers, flat_hwc = [], None
    model.eval()  # the shape probe keeps no caches
    try:
        for layer in model:
            if isinstance(layer, Flatten):
                flat_hwc = a.shape[1:]
            a = layer.forward(a)
    finally:
        model.train()
    for layer in model:
        if isinstance(layer, Conv2D):
            w = layer.params["w"]  # (f_h, f_w, C_in, C_out)
            f_h, f_w, c_in, c_out = w.shape
            conv = nn.Conv2d(c_in, c_out, (f_h, f_w), stride=layer.stride,
                             padding=layer.padding).to(dtype)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(w).permute(3, 2, 0, 1))
                conv.bias.copy_(torch.from_numpy(layer.params["b"]))
            layers.append(conv)
        elif isinstance(layer, ReLU):
            layers.append(nn.ReLU())
        elif isinstance(layer, MaxPool2D):
            layers.append(nn.MaxPool2d(layer.pool_size, layer.stride, layer.padding))
        elif isinstance(layer, AvgPool2D):
            layers.append(nn.AvgPool2d(layer.pool_size, layer.stride, layer.padding,
                                       count_include_pad=layer.count_include_pad))
        elif isinstance(layer, Flatten):
            layers.append(nn.Flatten())
        elif isinstance(layer, Dense):
            w = layer.params["w"]  # (in, out)
            dense = nn.Linear(*w.shape).to(dtype)
            wt = torch.from_numpy(w).T  # (out, in)
            if flat_hwc is not None:  # the first dense after Flatten
                h, w_, c = flat_hwc
                wt = wt.reshape(-1, h, w_, c).permute(0, 3, 1, 2).reshape(wt.shape[0], -1)
                flat_hwc = None
            with torch.no_grad():
                dense.weight.copy_(wt)
                dense.bias.copy_(torch.from_numpy(layer.params["b"]))
            layers.append(dense)
        else:
            raise TypeError(f"no torch twin for {type(layer).__name__}")
    return nn.Sequential(*layers).to(memory_format=torch.channels_last)


def torch_step(torch, net, x, y, lr=LR, momentum=MOMENTUM, optimizer="sgd"):
    """Zero-argument callable: one PyTorch training step of ``net``; returns the loss tensor.

    ``x`` is NHWC NumPy, handed to torch as an NCHW-shaped channels_last view
    (no copy); ``torch.optim.SGD`` with momentum (or ``torch.optim.Adam``,
    ``optimizer="adam"``), created here once, with torch's default settings.
    """
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    if optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    F = torch.nn.functional

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


# --------------------------------------------------------------------------
# Running the table
# --------------------------------------------------------------------------

def select_cases(models=None, batches=None, quick=False):
    """``[(model, batch), ...]`` in table order; ``quick`` keeps each model's smallest batch."""
    cases = []
    for name, spec in MODELS.items():
        if models is not None and name not in models:
            continue
        sizes = spec["batches"][:1] if quick and batches is None else spec["batches"]
        cases += [(name, b) for b in (batches or sizes)]
    return cases


def _first_conv_weight(torch_net):
    w = next(m for m in torch_net if hasattr(m, "weight")).weight
    return w.detach().permute(2, 3, 1, 0).numpy()


def run(cases, dtypes=("float32", "float64"), threads=(1,), *, quick=False, torch=None,
        progress=None):
    """Measure one training step per case, dtype and thread count; list of result dicts.

    Examples
    --------
    >>> from cyconv import bench_train
    >>> [row] = bench_train.run([("lenet5", 8)], dtypes=("float32",), quick=True)
    >>> row["model"], row["batch"], row["torch_ms"], row["cyconv_ms"] > 0
    ('lenet5', 8, None, True)
    """
    from cyconv.bench import OtherCPU, interleave

    settings = _SETTINGS["quick" if quick else "full"]
    torch_threads = torch.get_num_threads() if torch is not None else None
    results = []
    try:
        for name, batch in cases:
            for dtype in dtypes:
                x, y = make_batch(name, batch, dtype)
                one_thread_ms = None
                for n in threads:
                    model = cyconv_model(name, dtype, num_threads=n)
                    fns = {"cyconv": cyconv_step(model, x, y)}
                    if torch is not None:
                        torch.set_num_threads(n)
                        net = torch_twin(torch, model, MODELS[name]["input"])
                        fns["torch"] = torch_step(torch, net, x, y)
                    # One step each from the same weights: the peers must agree.
                    diff = {}
                    losses = {k: float(fn()) for k, fn in fns.items()}
                    if "torch" in fns:
                        w_cy = model.parameters()["0.w"]
                        w_t = _first_conv_weight(net)
                        scale = float(np.abs(w_cy).max()) or 1.0
                        diff = dict(loss=abs(losses["cyconv"] - losses["torch"])
                                    / max(abs(losses["torch"]), 1e-30),
                                    weights=float(np.abs(w_cy - w_t).max()) / scale)
                    watch = OtherCPU()
                    samples = interleave(fns, target=settings["target"],
                                         min_rounds=settings["min_rounds"],
                                         max_rounds=settings["max_rounds"],
                                         batch=settings["batch"])
                    res = dict(model=name, batch=batch, dtype=dtype, threads=n,
                               other_cpu=watch.cores(), rounds=len(samples["cyconv"]),
                               max_rel_diff=diff,
                               agree=all(d <= _AGREE[dtype] for d in diff.values()))
                    for peer in ("cyconv", "torch"):
                        ts = samples.get(peer)
                        res[f"{peer}_ms"] = float(np.median(ts)) * 1e3 if ts else None
                        res[f"{peer}_samples_ms"] = [t * 1e3 for t in ts] if ts else []
                    res["speedup_vs_torch"] = (res["torch_ms"] / res["cyconv_ms"]
                                               if res["torch_ms"] else None)
                    if n == 1:
                        one_thread_ms = res["cyconv_ms"]
                    res["vs_1_thread"] = one_thread_ms / res["cyconv_ms"] if one_thread_ms else None
                    results.append(res)
                    if progress:
                        progress(res)
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads)
    return results


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def markdown(report):
    """The report as Markdown: machine, settings, results table."""
    from cyconv.bench import _ms, _num, _ratio_text

    info, results = report["machine"], report["results"]
    lines = ["# cyconv training-step benchmark", ""]
    lines.append(f"- {info['date']}; {info['cpu']}, {info['usable_cores']} usable cores "
                 f"({info['cpu_count']} CPUs); {info['platform']}; load average "
                 f"{report.get('load_before')} before, {info['load_average']} after")
    lines.append(f"- Python {info['python']}, NumPy {info['numpy']} (BLAS: {info['blas'] or '?'}), "
                 f"cyconv {info['cyconv']}" + (f" ({info['commit']})" if info["commit"] else "")
                 + f", CPU level {info['cpu_level']}"
                 + (f", torch {info['torch']}" if info["torch"] else ", torch not used")
                 + f"; torch imported in this process: "
                 f"{'yes' if report.get('torch_imported') else 'no'}")
    s = report["settings"]
    lines.append(f"- one step = forward, softmax cross-entropy, backward, SGD (momentum "
                 f"{MOMENTUM}); medians of {'quick ' if report['quick'] else ''}interleaved "
                 f"rounds (>= {s['min_rounds']} per case); speed-up = torch ms / cyconv ms "
                 "(> 1: cyconv faster); vs 1 thread = cyconv's 1-thread ms / this row's ms; "
                 "others' CPU = cores other processes used meanwhile")
    has_torch = any(r["torch_ms"] is not None for r in results)
    head = ["model", "batch", "dtype", "threads", "cyconv ms"]
    if has_torch:
        head += ["torch ms", "speed-up"]
    head += ["vs 1 thread", "others' CPU"]
    lines += ["", "| " + " | ".join(head) + " |",
              "|" + "|".join("---" if i < 1 else "---:" for i in range(len(head))) + "|"]
    for r in results:
        row = [r["model"] + ("" if r["agree"] else " (!)"), str(r["batch"]), r["dtype"],
               str(r["threads"]), _ms(r["cyconv_ms"])]
        if has_torch:
            row += [_ms(r["torch_ms"]), _ratio_text(r["speedup_vs_torch"])]
        row += [_ratio_text(r["vs_1_thread"]), _num(r.get("other_cpu"), ".2f")]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Models: lenet5 = LeNet-5 on (m, 32, 32, 1); conv4 = 3x3 convs 32, 32, "
              "pool, 64, 64, pool, dense 10 on (m, 32, 32, 3); ReLU after every conv and "
              "hidden dense layer, 2x2 max-pools."]
    bad = [r for r in results if not r["agree"]]
    if bad:
        lines += ["", "(!) cyconv and torch differ after one step beyond tolerance:"]
        lines += [f"- {r['model']} b{r['batch']} {r['dtype']} threads {r['threads']}: "
                  f"{r['max_rel_diff']}" for r in bad]
    return "\n".join(lines) + "\n"


def plot(report, path):
    """Bar chart of speed-up vs torch per model and batch, one panel per dtype x threads."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in report["results"] if r["speedup_vs_torch"]]
    panels = list(dict.fromkeys((r["dtype"], r["threads"]) for r in results))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 1, 3.4),
                             squeeze=False, sharey=True)
    for ax, (dtype, threads) in zip(axes[0], panels):
        rows = [r for r in results if (r["dtype"], r["threads"]) == (dtype, threads)]
        ax.bar(range(len(rows)), [r["speedup_vs_torch"] for r in rows],
               color=[plt.get_cmap("tab10")(list(MODELS).index(r["model"])) for r in rows])
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([f"{r['model']}\nb{r['batch']}" for r in rows], fontsize="small")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"{dtype}, {threads} thread{'s' if threads > 1 else ''}")
    axes[0][0].set_ylabel("torch ms / cyconv ms")
    fig.suptitle("one training step: cyconv.layers speed-up over PyTorch CPU (> 1: cyconv faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(
        prog="python -m cyconv.bench --train",
        description="Time one training step (forward, loss, backward, SGD momentum) of "
                    "LeNet-5 and a 4-conv net with cyconv.layers against the same model in "
                    "PyTorch CPU (medians of interleaved runs in one process).")
    p.add_argument("--models", help="comma-separated models (default all: "
                   + ",".join(MODELS) + ")")
    p.add_argument("--batches", help="comma-separated batch sizes (default each model's "
                   "table sizes: " + "; ".join(f"{k} {v['batches']}" for k, v in MODELS.items())
                   + ")")
    p.add_argument("--dtype", default="float32,float64",
                   help="float32, float64 or both comma-separated (default both)")
    p.add_argument("--threads", default="1,all",
                   help="comma-separated thread counts, 'all' = every usable core (default 1,all)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: few rounds, each model's smallest batch only")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    p.add_argument("--json", metavar="FILE", help="also write the full results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of speed-up vs torch (matplotlib)")
    return p


def main(argv=None):
    """Run the training-step benchmark; print Markdown; return the exit status.

    The function behind ``python -m cyconv.bench --train`` (its options:
    ``python -m cyconv.bench --train --help``).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments without ``--train``; default ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success.

    Raises
    ------
    SystemExit
        An unknown option, model or value (argparse's usage message, status 2).

    Examples
    --------
    >>> from cyconv.bench_train import main
    >>> main(["--no-torch", "--models", "lenet5", "--batches", "8", "--dtype", "float32",
    ...       "--threads", "1", "--quick"])  # doctest: +ELLIPSIS
    # cyconv training-step benchmark
    ...| lenet5 | 8 | float32 | 1 | ...
    0
    """
    from cyconv.bench import _load, _ms, _split, all_cores, import_torch, machine_info

    parser = _parser()
    args = parser.parse_args(argv)
    models = None
    if args.models:
        models = _split(args.models)
        for m in models:
            if m not in MODELS:
                parser.error(f"--models: unknown model {m!r}; choose from {', '.join(MODELS)}")
    batches = None
    if args.batches:
        batches = [int(b) if b.isdigit() else 0 for b in _split(args.batches)]
        if not batches or min(batches) < 1:
            parser.error(f"--batches: expected integers >= 1, got {args.batches!r}")
    dtypes = list(dict.fromkeys(_split(args.dtype.replace("both", "float32,float64"))))
    for d in dtypes:
        if d not in ("float32", "float64"):
            parser.error(f"--dtype: expected float32, float64 or both, got {d!r}")
    threads = []
    for t in _split(args.threads):
        n = all_cores() if t == "all" else int(t) if t.isdigit() else 0
        if n < 1:
            parser.error(f"--threads: expected integers >= 1 or 'all', got {t!r}")
        threads.append(n)
    threads = sorted(dict.fromkeys(threads))
    torch = None if args.no_torch else import_torch()
    if args.plot and torch is None:
        parser.error("--plot shows speed-up over torch, which is not installed "
                     "(pip install \"cyconv[bench]\") or was left out (--no-torch)")

    def progress(r):
        print(f"  {r['model']} b{r['batch']} {r['dtype']} threads={r['threads']}: cyconv "
              f"{_ms(r['cyconv_ms'])} ms, torch {_ms(r['torch_ms'])} ms", file=sys.stderr)

    load_before = _load()
    results = run(select_cases(models, batches, args.quick), dtypes, threads, quick=args.quick,
                  torch=torch, progress=progress)
    report = dict(machine=machine_info(torch), load_before=load_before, quick=args.quick,
                  settings=_SETTINGS["quick" if args.quick else "full"], results=results,
                  torch_imported=sys.modules.get("torch") is not None)
    sys.stdout.write(markdown(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.plot:
        plot(report, args.plot)
        print(f"\nplot written to {args.plot}")
    return 0
