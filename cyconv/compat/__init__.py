"""Drop-in functions of popular NumPy CNN courses, on top of cyconv's kernels.

Two courses' layer functions, by their own names, signatures, parameter
dicts, cache tuples and layouts, so that notebook code calling them runs
unchanged, only faster:

- :mod:`cyconv.compat.course`: the Coursera assignment "Convolutional Neural
  Networks: Step by Step" (Deep Learning Specialization, course 4, week 1),
  NHWC. Its functions are re-exported here: ``from cyconv.compat import *``.
- :mod:`cyconv.compat.cs231n`: Stanford CS231n's assignment 2
  (``conv_forward_naive``, ``max_pool_forward_fast``, ...), NCHW:
  ``from cyconv.compat.cs231n import *``.

Examples
--------
>>> import numpy as np
>>> from cyconv.compat import pool_forward
>>> A, cache = pool_forward(np.arange(16.0).reshape(1, 4, 4, 1), {"f": 2, "stride": 2})
>>> A[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]])
"""
from cyconv.compat.course import ConvCache as ConvCache  # the module's former aliases
from cyconv.compat.course import HParameters as HParameters
from cyconv.compat.course import PoolCache as PoolCache
from cyconv.compat.course import (
    conv_backward,
    conv_forward,
    conv_single_step,
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_forward,
    zero_pad,
)

__all__ = [
    "conv_backward",
    "conv_forward",
    "conv_single_step",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
    "pool_forward",
    "zero_pad",
]
