"""Pooling kernels compiled for the CPU level baseline (SSE2 on x86-64).

The kernels are in ``_pool_kernels.pxi``; setup.py builds this module with
that level's compiler flags and vector width. ``cyconv/pool.py`` uses the
module of the level the convolution kernels run at (see ``cyconv.cpu_level``).
"""
include "_pool_kernels.pxi"
