# Type stub for the compiled module cyconv._train (see _train.pyx for the docs).
from typing import Callable, Generic

import numpy as np
import numpy.typing as npt
from typing_extensions import ParamSpec

_F = np.float32 | np.float64
_I64 = npt.NDArray[np.int64]
_P = ParamSpec("_P")

class _FusedFunction(Generic[_P]):
    # A Cython function over fused types: callable (dispatching on the
    # arguments' dtype), and indexable by a specialisation's name ("float",
    # "double") to skip that dispatch.
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> None: ...
    def __getitem__(self, key: str) -> _FusedFunction[_P]: ...

def _fused(f: Callable[_P, None]) -> _FusedFunction[_P]: ...

def sgd_step(is_float64: bool, lr: float, momentum: float, p_addr: _I64, g_addr: _I64,
             v_addr: _I64, chunks: _I64, n_threads: int) -> None: ...
def adam_step(is_float64: bool, lr: float, b1: float, b2: float, eps: float, t: int,
              p_addr: _I64, g_addr: _I64, m_addr: _I64, v_addr: _I64, chunks: _I64,
              n_threads: int) -> None: ...
@_fused
def relu_forward(x: npt.NDArray[_F], y: npt.NDArray[_F], n_threads: int) -> None: ...
@_fused
def relu_backward(dout: npt.NDArray[_F], y: npt.NDArray[_F], dx: npt.NDArray[_F],
                  n_threads: int) -> None: ...
