"""Build the compiled kernels of cyconv.

OpenMP is detected by compiling a tiny program; where the compiler has no
OpenMP the extensions are built serial (with a warning) instead of failing.
The default build runs on any x86-64 (or other) CPU: it never tunes for the
build machine's own CPU. On x86-64 the hot kernels are also compiled for
x86-64-v3 and x86-64-v4 and chosen at import (CYCONV_CPU_LEVEL forces one;
CYCONV_NO_CPU_DISPATCH=1 at build time builds the baseline only). CYCONV_SANITIZE=address builds every extension with
AddressSanitizer and UndefinedBehaviorSanitizer, for debugging only (see README,
"Sanitizers").
"""
import os
import platform
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


# CPU levels with modules of their own (x86-64, GCC or Clang): the pooling
# kernels are compiled once per level with these flags and vector widths. The
# features are exactly those cyconv checks at run time before loading a level
# (cyc_cpu_max_level in cyconv/_conv_simd.h), so a module is only ever loaded
# on a CPU that runs it. The convolution tile dispatches inside _conv itself.
_V3 = ["-mavx", "-mavx2", "-mfma", "-mbmi", "-mbmi2", "-mf16c"]
_LEVEL_FLAGS = {
    "_v3": _V3 + ["-DCYCONV_VBYTES=32"],
    "_v4": _V3 + ["-mavx512f", "-mavx512bw", "-mavx512cd", "-mavx512dq", "-mavx512vl",
                  "-DCYCONV_VBYTES=64"],
}


def _per_level_builds():
    if os.environ.get("CYCONV_NO_CPU_DISPATCH") or sys.platform == "win32":
        return False
    return platform.machine().lower() in ("x86_64", "amd64")


def _c_string(text):
    """``text`` as a C string literal, for a -D define (setuptools runs no shell)."""
    text = " ".join(text.split())          # no newlines or tabs in a define
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _build_info_macros(compile_args):
    # Compiled into cyconv._openmp for cyconv.show_config(): cyconv's own
    # flags, the compiler command setuptools runs (CC, else Python's) and any
    # CFLAGS/CPPFLAGS from the build environment (added to Python's CFLAGS).
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or ""
    env_flags = " ".join(os.environ.get(v, "") for v in ("CFLAGS", "CPPFLAGS"))
    return [
        ("CYCONV_CFLAGS", _c_string(" ".join(compile_args))),
        ("CYCONV_BUILD_CC", _c_string(cc)),
        ("CYCONV_BUILD_ENV_CFLAGS", _c_string(env_flags)),
    ]


# CYCONV_SANITIZE=address: ASan + UBSan, for debugging only (README,
# "Sanitizers"). Added to both compile and link arguments, after -O3 so -O1
# wins; OpenMP stays on.
_SANITIZE_FLAGS = {
    "address": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g", "-O1"],
}


def _sanitize_flags():
    mode = os.environ.get("CYCONV_SANITIZE", "").strip().lower()
    if not mode:
        return []
    if mode not in _SANITIZE_FLAGS:
        raise SystemExit(f"cyconv: CYCONV_SANITIZE={mode!r} is not supported; "
                         f"use one of: {', '.join(sorted(_SANITIZE_FLAGS))}")
    if sys.platform == "win32":
        raise SystemExit("cyconv: CYCONV_SANITIZE needs GCC or Clang")
    return list(_SANITIZE_FLAGS[mode])


def _extensions():
    omp_c, omp_l = _openmp_flags()
    san = _sanitize_flags()
    extra_c = (["-O3"] if sys.platform != "win32" else ["/O2"]) + san
    modules = [("_conv", []), ("_pool", []), ("_openmp", []),
               ("_train", ["-ffp-contract=off", "-fno-math-errno"])]
    if _per_level_builds():
        modules += [("_pool" + level, flags) for level, flags in _LEVEL_FLAGS.items()]
    else:
        extra_c.append("-DCYCONV_NO_CPU_DISPATCH")
    return [
        Extension(
            f"cyconv.{name}",
            [f"cyconv/{name}.pyx"],
            include_dirs=["cyconv"],
            extra_compile_args=extra_c + omp_c + flags,
            extra_link_args=omp_l + san,
            define_macros=(_build_info_macros(extra_c + omp_c + flags)
                           if name == "_openmp" else []),
        )
        for name, flags in modules
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
