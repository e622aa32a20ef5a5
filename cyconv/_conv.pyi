# Type stub for the compiled module cyconv._conv (see _conv.pyx for the docs).
import numpy as np
import numpy.typing as npt

_F = np.float32 | np.float64

def conv2d_forward(
    x: npt.NDArray[_F], w: npt.NDArray[_F], b: npt.NDArray[_F], z: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, num_threads: int,
) -> None: ...
def conv2d_backward_dx(
    dz: npt.NDArray[_F], w: npt.NDArray[_F], dx: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, num_threads: int,
) -> None: ...
def conv2d_backward_dw(
    x: npt.NDArray[_F], dz: npt.NDArray[_F],
    dw: npt.NDArray[_F], db: npt.NDArray[_F],
    s_h: int, s_w: int, p_t: int, p_l: int, num_threads: int,
) -> None: ...

LEVELS: tuple[str, str, str]

def cpu_levels() -> tuple[str, ...]: ...
def cpu_level() -> str: ...
def set_cpu_level(name: str) -> None: ...
