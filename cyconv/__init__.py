"""cyconv: Cython-accelerated CNN kernels for NumPy arrays (NHWC layout).

Convolution, max-pooling and average-pooling, forward and backward, as
typed, OpenMP-parallel kernels over float32 and float64 arrays.
"""
from cyconv._config import show_config
from cyconv._version import __version__
from cyconv._threads import limit_blas_threads
from cyconv.conv import conv2d, conv2d_backward, cpu_level
from cyconv.conv_transpose import conv_transpose2d, conv_transpose2d_backward
from cyconv.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from cyconv.pool import (global_avg_pool2d, global_avg_pool2d_backward, global_max_pool2d,
                         global_max_pool2d_backward)

__all__ = [
    "__version__",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "cpu_level",
    "limit_blas_threads",
    "max_pool2d",
    "max_pool2d_backward",
    "show_config",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
]
