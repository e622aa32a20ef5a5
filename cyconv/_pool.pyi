# Type stub for the compiled module cyconv._pool (see _pool.pyx for the docs; _pool_v3 and _pool_v4 are the same functions built for other CPU levels).
import numpy as np
import numpy.typing as npt

_F = np.float32 | np.float64
# (f_h, f_w, s_h, s_w, p_t, p_b, p_l, p_r, d_h, d_w): pool size, stride, padding
# before/after each axis, dilation.
_Geometry = tuple[int, int, int, int, int, int, int, int, int, int]

def pool2d_forward(
    x: npt.NDArray[_F], p: npt.NDArray[_F], is_max: bool, count_include_pad: bool,
    geometry: _Geometry, num_threads: int,
) -> None: ...
def max_pool2d_argmax(
    x: npt.NDArray[_F], p: npt.NDArray[_F], key: npt.NDArray[np.int32],
    geometry: _Geometry, num_threads: int,
) -> None: ...
def max_pool2d_backward(
    x: npt.NDArray[_F], dp: npt.NDArray[_F], key: npt.NDArray[np.int32], best: npt.NDArray[_F],
    dx: npt.NDArray[_F],
    cover_h: npt.NDArray[np.intp], cover_w: npt.NDArray[np.intp],
    geometry: _Geometry, all_ties: bool, num_threads: int,
) -> None: ...
def avg_pool2d_backward(
    dp: npt.NDArray[_F], dx: npt.NDArray[_F],
    cover_h: npt.NDArray[np.intp], cover_w: npt.NDArray[np.intp],
    inv_h: npt.NDArray[_F], inv_w: npt.NDArray[_F], num_threads: int,
) -> None: ...
def pool2d_backward_disjoint(
    x: npt.NDArray[_F], dp: npt.NDArray[_F], key: npt.NDArray[np.int32], dx: npt.NDArray[_F],
    is_max: bool, all_ties: bool, by_key: bool, count_include_pad: bool,
    geometry: _Geometry, num_threads: int,
) -> None: ...
def global_pool2d_forward(
    x: npt.NDArray[_F], p: npt.NDArray[_F], is_max: bool, num_threads: int,
) -> None: ...
def global_avg_pool2d_backward(
    dp: npt.NDArray[_F], dx: npt.NDArray[_F], num_threads: int,
) -> None: ...
def global_max_pool2d_backward(
    x: npt.NDArray[_F], dp: npt.NDArray[_F], best: npt.NDArray[_F], key: npt.NDArray[np.int32],
    dx: npt.NDArray[_F], num_threads: int,
) -> None: ...
def global_pool2d_forward_rows(
    x: npt.NDArray[_F], p: npt.NDArray[_F], is_max: bool, num_threads: int,
) -> None: ...
def global_pool2d_backward_rows(
    x: npt.NDArray[_F], dp: npt.NDArray[_F], dx: npt.NDArray[_F], is_max: bool,
    num_threads: int,
) -> None: ...
def level_table() -> dict[str, int]: ...
