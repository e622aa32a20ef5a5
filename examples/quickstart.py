"""A conv -> ReLU -> max-pool layer, forward and backward, with cyconv and with its NumPy reference.

Run: python examples/quickstart.py
"""
import time

import numpy as np

import cyconv
from cyconv import reference


def layer(lib, x, w, b, dp):
    """Forward and backward of conv (3x3, "same") -> ReLU -> 2x2 max-pool; returns p, dx, dw, db."""
    z = lib.conv2d(x, w, b, padding="same")
    a = np.maximum(z, 0)
    p = lib.max_pool2d(a, 2)
    da = lib.max_pool2d_backward(dp, a, 2)
    dz = da * (z > 0)
    dx, dw, db = lib.conv2d_backward(dz, x, w, padding="same")
    return p, dx, dw, db


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 28, 28, 3))
    w = rng.standard_normal((3, 3, 3, 16)) * 0.3
    b = rng.standard_normal(16) * 0.1
    dp = rng.standard_normal((8, 14, 14, 16))

    fast = layer(cyconv, x, w, b, dp)
    slow = layer(reference, x, w, b, dp)
    for name, f, s in zip(("p", "dx", "dw", "db"), fast, slow):
        err = np.max(np.abs(f - s))
        print(f"{name:>2} {str(f.shape):>18}  max |cyconv - reference| = {err:.2e}")
        assert err < 1e-9

    t_fast = best_time(lambda: layer(cyconv, x, w, b, dp), 20)
    t_slow = best_time(lambda: layer(reference, x, w, b, dp), 2)
    print(f"forward + backward, batch 8 of 28x28x3 -> 16 channels, float64:")
    print(f"  cyconv {t_fast * 1e3:.2f} ms, reference {t_slow * 1e3:.0f} ms "
          f"-> {t_slow / t_fast:.0f}x faster")


if __name__ == "__main__":
    main()
