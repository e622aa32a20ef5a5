# Type stub for the compiled module cyconv._transpose (see _transpose.pyx for the docs).
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
def transpose_batched(src: npt.NDArray[_F], dst: npt.NDArray[_F], n_threads: int) -> None: ...
