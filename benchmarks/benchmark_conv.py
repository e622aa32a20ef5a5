"""asv: conv2d and conv2d_backward on the standard shapes (S1-S7), per dtype and thread count.

Only the public API is timed, so every commit of the history can run these.
"""
import cyconv

from . import CONV_SHAPES, DTYPES, SHAPES, THREADS, bench


class Conv2d:
    """Forward and backward time, peak memory and GFLOP/s of cyconv's convolution."""

    params = (CONV_SHAPES, DTYPES, THREADS)
    param_names = ("shape", "dtype", "threads")
    timeout = 300

    def setup(self, shape, dtype, threads):
        # Inputs are built here, once, never inside the timed functions.
        case = SHAPES[shape]
        self.kw = dict(stride=case["stride"], padding=case["padding"], num_threads=threads)
        data = bench.make_inputs(shape, dtype)
        self.x, self.w, self.b, self.dz = data["x"], data["w"], data["b"], data["dz"]
        self.flops = bench.conv_flops(shape)

    def time_forward(self, shape, dtype, threads):
        cyconv.conv2d(self.x, self.w, self.b, **self.kw)

    def time_backward(self, shape, dtype, threads):
        cyconv.conv2d_backward(self.dz, self.x, self.w, **self.kw)

    def peakmem_forward(self, shape, dtype, threads):
        cyconv.conv2d(self.x, self.w, self.b, **self.kw)

    def peakmem_backward(self, shape, dtype, threads):
        cyconv.conv2d_backward(self.dz, self.x, self.w, **self.kw)

    def track_forward_gflops(self, shape, dtype, threads):
        t = bench.median_seconds(lambda: cyconv.conv2d(self.x, self.w, self.b, **self.kw), 3)
        return self.flops / t / 1e9

    track_forward_gflops.unit = "GFLOP/s"

    def track_backward_gflops(self, shape, dtype, threads):
        # dx and dw each cost one forward's FLOPs (db is negligible).
        t = bench.median_seconds(
            lambda: cyconv.conv2d_backward(self.dz, self.x, self.w, **self.kw), 3)
        return 2 * self.flops / t / 1e9

    track_backward_gflops.unit = "GFLOP/s"
