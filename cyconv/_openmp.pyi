# Type stub for the compiled module cyconv._openmp.
from typing import TypedDict

class BuildInfo(TypedDict):
    compiler: str
    compiler_version: str
    openmp: int | None
    flags: str
    cc: str
    env_cflags: str
    cpu_dispatch: bool

def openmp_max_threads() -> int: ...
def openmp_enabled() -> bool: ...
def openmp_runtime_address() -> int: ...
def build_info() -> BuildInfo: ...
