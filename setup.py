"""Build the compiled kernels of cyconv.

OpenMP is detected by compiling a tiny program; where the compiler has no
OpenMP the extensions are built serial (with a warning) instead of failing.
No CPU-specific flags are used: the build runs on any x86-64 (or other) CPU.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings

from Cython.Build import cythonize
from setuptools import Extension, setup

_OPENMP_TEST = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def _openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or ([], []) if unavailable."""
    if os.environ.get("CYCONV_NO_OPENMP"):
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":
        candidates.insert(0, (["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "omp_test.c")
        with open(src, "w") as f:
            f.write(_OPENMP_TEST)
        for cflags, lflags in candidates:
            cmd = cc + cflags + [src, "-o", os.path.join(tmp, "omp_test")] + lflags
            try:
                ok = subprocess.run(cmd, capture_output=True).returncode == 0
            except OSError:
                ok = False
            if ok:
                return cflags, lflags
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    warnings.warn(
        "cyconv: the C compiler has no OpenMP support; building serial kernels "
        "(num_threads will have no effect). Install an OpenMP-capable compiler "
        "(e.g. gcc, or clang with libomp) for parallel kernels."
    )
    return [], []


def _extensions():
    omp_c, omp_l = _openmp_flags()
    extra_c = ["-O3"] if sys.platform != "win32" else ["/O2"]
    names = ["_conv", "_pool", "_openmp"]
    return [
        Extension(
            f"cyconv.{name}",
            [f"cyconv/{name}.pyx"],
            include_dirs=["cyconv"],
            extra_compile_args=extra_c + omp_c,
            extra_link_args=omp_l,
        )
        for name in names
    ]


setup(
    ext_modules=cythonize(
        _extensions(),
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
