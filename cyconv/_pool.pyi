# Type stub for the compiled module cyconv._pool (see _pool.pyx for the docs; _pool_v3 and _pool_v4 are the same functions built for other CPU levels).
import numpy as np
import numpy.typing as npt

_F = np.float32 | np.float64

def pool2d_forward(
    x: npt.NDArray[_F], p: npt.NDArray[_F], is_max: bool, count_include_pad: bool,
    f_h: int, f_w: int, s_h: int, s_w: int, p_t: int, p_l: int, num_threads: int,
) -> None: ...
def max_pool2d_argmax(
    x: npt.NDArray[_F], p: npt.NDArray[_F], key: npt.NDArray[np.int32],
    f_h: int, f_w: int, s_h: int, s_w: int, p_t: int, p_l: int, num_threads: int,
) -> None: ...
def max_pool2d_backward(
    x: npt.NDArray[_F], dp: npt.NDArray[_F], key: npt.NDArray[np.int32], best: npt.NDArray[_F],
    dx: npt.NDArray[_F],
    cover_h: npt.NDArray[np.intp], cover_w: npt.NDArray[np.intp],
    f_w: int, s_h: int, s_w: int, p_t: int, p_l: int, all_ties: bool, num_threads: int,
) -> None: ...
def avg_pool2d_backward(
    dp: npt.NDArray[_F], dx: npt.NDArray[_F],
    cover_h: npt.NDArray[np.intp], cover_w: npt.NDArray[np.intp],
    inv_h: npt.NDArray[_F], inv_w: npt.NDArray[_F], num_threads: int,
) -> None: ...
def pool2d_backward_disjoint(
    x: npt.NDArray[_F], dp: npt.NDArray[_F], key: npt.NDArray[np.int32], dx: npt.NDArray[_F],
    is_max: bool, all_ties: bool, by_key: bool, count_include_pad: bool,
    f_h: int, f_w: int, s_h: int, s_w: int, p_t: int, p_l: int, num_threads: int,
) -> None: ...
def level_table() -> dict[str, int]: ...
