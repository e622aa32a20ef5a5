"""A drop-in user's loop: cyconv.conv2d, then their own NumPy matmul, at 1 and 2 threads.

Run: python examples/threads_dropin.py [--rounds N] [--no-torch-import]

Each iteration is LeNet-5's second convolution ((64, 14, 14, 6) * (5, 5, 6, 16),
float32) followed by the user's dense layer on its output ((64, 1600) @ (1600, 120)),
written the obvious way. cyconv's kernels run on its OpenMP team, the matmul on
NumPy's BLAS thread pool: after each call the idle threads of one runtime
spin-wait on the cores the other needs. The four variants are timed
interleaved (medians of N rounds of 20 iterations): the default, and with the
loop inside ``with cyconv.limit_blas_threads():`` (BLAS held to one thread, the
remedy). By default torch is imported first if installed (as in a process that
also uses PyTorch); --no-torch-import leaves it out.
"""
import argparse
import sys
import time

import numpy as np

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--rounds", type=int, default=15)
parser.add_argument("--no-torch-import", action="store_true")
args = parser.parse_args()
if not args.no_torch_import:
    try:
        import torch  # noqa: F401
    except ImportError:
        pass

import cyconv  # noqa: E402
from cyconv.bench import OtherCPU  # noqa: E402

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 14, 14, 6), dtype=np.float32)
w = rng.standard_normal((5, 5, 6, 16), dtype=np.float32)
head = rng.standard_normal((10 * 10 * 16, 120), dtype=np.float32)
ITERATIONS = 20


def loop(num_threads):
    for _ in range(ITERATIONS):
        z = cyconv.conv2d(x, w, num_threads=num_threads)
        z.reshape(64, -1) @ head


def remedied(num_threads):
    with cyconv.limit_blas_threads():
        loop(num_threads)


variants = {
    "1 thread": lambda: loop(1),
    "2 threads": lambda: loop(2),
    "1 thread, limit_blas_threads": lambda: remedied(1),
    "2 threads, limit_blas_threads": lambda: remedied(2),
}
samples = {k: [] for k in variants}
for fn in variants.values():
    fn()  # warm-up
watch = OtherCPU()
for r in range(args.rounds):
    for key in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
        t0 = time.perf_counter()
        variants[key]()
        samples[key].append((time.perf_counter() - t0) / ITERATIONS)
print(f"torch imported: {'torch' in sys.modules}; cyconv {cyconv.__version__}, "
      f"CPU level {cyconv.cpu_level()}; other processes used {watch.cores()} cores meanwhile")
for key, ts in samples.items():
    print(f"{key:31s} {np.median(ts) * 1e3:7.3f} ms per conv2d + matmul")
