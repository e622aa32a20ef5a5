"""asv: one training step (forward, loss, backward, SGD momentum) of whole models.

The models of ``python -m cyconv.bench --train`` (``cyconv/bench_train.py``):
LeNet-5 at batch 8 and 64 and the 4-conv CIFAR net at batch 32 and 128, built
with ``cyconv.layers``. The history shows what users see when they train,
thread runtimes and layer glue included, not just the kernels.
"""
from . import DTYPES, THREADS, bench_train

CASES = [f"{name}-b{batch}" for name, spec in bench_train.MODELS.items()
         for batch in spec["batches"]]


class TrainStep:
    """One training step of a cyconv.layers model, float32 and float64, 1 and all threads."""

    params = (CASES, DTYPES, THREADS)
    param_names = ("model", "dtype", "threads")
    timeout = 300

    def setup(self, case, dtype, threads):
        # Model, optimiser and batch are built here; two warm-up steps
        # allocate the optimiser state and fault in the buffers.
        name, batch = case.rsplit("-b", 1)
        model = bench_train.cyconv_model(name, dtype, num_threads=threads)
        x, y = bench_train.make_batch(name, int(batch), dtype)
        self.step = bench_train.cyconv_step(model, x, y)
        self.step()
        self.step()

    def time_train_step(self, case, dtype, threads):
        self.step()
