# Type stub for the compiled module cyconv._conv (see _conv.pyx for the docs; _conv_v3 and
# _conv_v4 are the same functions built for other CPU levels).
from typing import Callable, Generic

import numpy as np
import numpy.typing as npt
from typing_extensions import ParamSpec

_F = np.float32 | np.float64
_P = ParamSpec("_P")

class _FusedFunction(Generic[_P]):
    # A Cython function over fused types: callable (dispatching on the
    # arguments' dtype), and indexable by a specialisation's name ("float",
    # "double") to skip that dispatch.
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> None: ...
    def __getitem__(self, key: str) -> _FusedFunction[_P]: ...

def _fused(f: Callable[_P, None]) -> _FusedFunction[_P]: ...

@_fused
def conv2d_forward(
    x: npt.NDArray[_F], w: npt.NDArray[_F], b: npt.NDArray[_F], z: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, d_h: int, d_w: int, groups: int,
    relu: bool, num_threads: int,
) -> None: ...
@_fused
def conv2d_backward_dx(
    dz: npt.NDArray[_F], w: npt.NDArray[_F], dx: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, d_h: int, d_w: int, groups: int,
    dot: bool, num_threads: int,
) -> None: ...
@_fused
def conv2d_backward_dw(
    x: npt.NDArray[_F], dz: npt.NDArray[_F],
    dw: npt.NDArray[_F], db: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, d_h: int, d_w: int, groups: int,
    num_threads: int,
) -> None: ...

@_fused
def depthwise_forward(
    x: npt.NDArray[_F], w: npt.NDArray[_F], b: npt.NDArray[_F], z: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, d_h: int, d_w: int, relu: bool, num_threads: int,
) -> None: ...
@_fused
def depthwise_backward_dx(
    dz: npt.NDArray[_F], w: npt.NDArray[_F], dx: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, d_h: int, d_w: int, num_threads: int,
) -> None: ...
@_fused
def depthwise_backward_dw(
    x: npt.NDArray[_F], dz: npt.NDArray[_F], dw: npt.NDArray[_F], db: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, d_h: int, d_w: int, num_threads: int,
) -> None: ...

def cpu_max_level() -> int: ...
def level_table() -> dict[str, int | tuple[int, int]]: ...
