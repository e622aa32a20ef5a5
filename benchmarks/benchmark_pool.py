"""asv: max and average pooling, forward and backward, on the standard pool shapes (P1-P3)."""
import inspect

import cyconv

from . import DTYPES, POOL_SHAPES, SHAPES, THREADS, bench


class _Pool:
    params = (POOL_SHAPES, DTYPES, THREADS)
    param_names = ("shape", "dtype", "threads")
    timeout = 120

    def setup(self, shape, dtype, threads):
        # Inputs are built here, once, never inside the timed functions.
        case = SHAPES[shape]
        self.pool_size = case["pool_size"]
        self.kw = dict(stride=case["stride"], padding=case["padding"], num_threads=threads)
        data = bench.make_inputs(shape, dtype)
        self.x, self.dp = data["x"], data["dp"]


class MaxPool2d(_Pool):
    """max_pool2d and max_pool2d_backward."""

    def time_forward(self, shape, dtype, threads):
        cyconv.max_pool2d(self.x, self.pool_size, **self.kw)

    def time_backward(self, shape, dtype, threads):
        cyconv.max_pool2d_backward(self.dp, self.x, self.pool_size, **self.kw)


class MaxPool2dIndices(_Pool):
    """max_pool2d(..., return_indices=True) then max_pool2d_backward(..., indices=), as a layer trains."""

    def setup(self, shape, dtype, threads):
        if "return_indices" not in inspect.signature(cyconv.max_pool2d).parameters:
            raise NotImplementedError("this build has no return_indices (before 2026-11-25)")
        super().setup(shape, dtype, threads)

    def time_forward_backward(self, shape, dtype, threads):
        _, indices = cyconv.max_pool2d(self.x, self.pool_size, return_indices=True, **self.kw)
        cyconv.max_pool2d_backward(self.dp, self.x, self.pool_size, indices=indices, **self.kw)


class AvgPool2d(_Pool):
    """avg_pool2d and avg_pool2d_backward (count_include_pad=True)."""

    def time_forward(self, shape, dtype, threads):
        cyconv.avg_pool2d(self.x, self.pool_size, **self.kw)

    def time_backward(self, shape, dtype, threads):
        cyconv.avg_pool2d_backward(self.dp, self.x.shape, self.pool_size, **self.kw)
