"""A drop-in user's loop: cyconv.conv2d, then their own NumPy matmul, at 1 and 2 threads.

Run: python examples/threads_dropin.py [--passes N] [--no-torch-import]

Each iteration is LeNet-5's second convolution ((64, 14, 14, 6) * (5, 5, 6, 16),
float32) followed by the user's dense layer on its output ((64, 1600) @ (1600, 120)),
written the obvious way. cyconv's kernels run on its OpenMP team, the matmul on
NumPy's BLAS thread pool: after each call the idle threads of one runtime
spin-wait on the cores the other needs. Four variants: 1 and 2 threads, as
written and with the loop inside ``with cyconv.limit_blas_threads():`` (BLAS
held to one thread, the remedy).

Each variant runs in a process of its own, as a user's program would (the
spinning threads of one variant would otherwise slow the next one down):
a warm-up, then the median of 15 samples of 20 iterations. The four processes
run in turn, ``--passes`` times in alternating order, and the table shows the
median over the passes. By default torch is imported first in each process if
installed (as in a program that also uses PyTorch); --no-torch-import leaves it out.
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

VARIANTS = {
    "1 thread": (1, False),
    "2 threads": (2, False),
    "1 thread, limit_blas_threads": (1, True),
    "2 threads, limit_blas_threads": (2, True),
}
ITERATIONS, SAMPLES = 20, 15


def child(num_threads, remedy, import_torch):
    # One variant in this process: prints {"ms": median ms per iteration, ...} as JSON.
    if import_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
    import cyconv
    from cyconv.bench import OtherCPU

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 14, 14, 6), dtype=np.float32)
    w = rng.standard_normal((5, 5, 6, 16), dtype=np.float32)
    head = rng.standard_normal((10 * 10 * 16, 120), dtype=np.float32)

    def loop():
        for _ in range(ITERATIONS):
            z = cyconv.conv2d(x, w, num_threads=num_threads)
            z.reshape(64, -1) @ head

    def run():
        if remedy:
            with cyconv.limit_blas_threads():
                loop()
        else:
            loop()

    run()  # warm-up
    watch, samples = OtherCPU(), []
    for _ in range(SAMPLES):
        t0 = time.perf_counter()
        run()
        samples.append((time.perf_counter() - t0) / ITERATIONS)
    print(json.dumps(dict(ms=float(np.median(samples)) * 1e3, other_cpu=watch.cores(),
                          torch="torch" in sys.modules, level=cyconv.cpu_level(),
                          version=cyconv.__version__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--no-torch-import", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, remedy = VARIANTS[args.child]
        child(n, remedy, not args.no_torch_import)
        return
    results = {key: [] for key in VARIANTS}
    for p in range(args.passes):
        for key in (list(VARIANTS) if p % 2 == 0 else list(VARIANTS)[::-1]):
            cmd = [sys.executable, __file__, "--child", key]
            if args.no_torch_import:
                cmd.append("--no-torch-import")
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[key].append(json.loads(out.splitlines()[-1]))
    first = results["1 thread"][0]
    others = max(r["other_cpu"] or 0.0 for rs in results.values() for r in rs)
    print(f"torch imported: {first['torch']}; cyconv {first['version']}, CPU level "
          f"{first['level']}; other processes used up to {others:.2f} cores meanwhile")
    for key, rs in results.items():
        ms = float(np.median([r["ms"] for r in rs]))
        print(f"{key:31s} {ms:7.3f} ms per conv2d + matmul")


if __name__ == "__main__":
    main()
