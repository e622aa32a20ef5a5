"""What a bug report needs: version, CPU level, OpenMP runtime, threads, build.

``cyconv.show_config()`` prints it; ``python -m cyconv --config`` runs that;
:func:`config_info` returns the same facts as a dict. threadpoolctl is used
when installed (it is optional) to describe the OpenMP runtimes loaded.
"""
from __future__ import annotations

import importlib
import os
import platform
import sys
import sysconfig
import warnings
from typing import Any

from cyconv import _args, _dispatch, _openmp
from cyconv._version import __version__

__all__ = ["config_info", "show_config"]

# _OPENMP macro values (release dates of the OpenMP specification).
_OPENMP_SPECS = {
    200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0", 201511: "4.5",
    201811: "5.0", 202011: "5.1", 202111: "5.2", 202411: "6.0",
}


# File names of OpenMP runtimes (GNU, LLVM, Intel, Microsoft), as threadpoolctl knows them.
_RUNTIME_PREFIXES = ("libgomp", "libomp", "libiomp", "vcomp")


def _dladdr(address: int) -> str | None:
    # The shared object holding ``address`` (Linux, macOS, BSDs). dladdr is in
    # libc since glibc 2.34, in libdl before. ctypes is imported here, not at
    # module level: `import cyconv` should not pay for a diagnostic.
    import ctypes
    import ctypes.util

    class _DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    for name in (None, ctypes.util.find_library("dl")):
        try:
            dladdr = ctypes.CDLL(name).dladdr
        except (OSError, AttributeError, TypeError):
            continue
        dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
        dladdr.restype = ctypes.c_int
        info = _DlInfo()
        if dladdr(ctypes.c_void_p(address), ctypes.byref(info)) and info.dli_fname:
            return os.fsdecode(info.dli_fname)
    return None


def _mapped_file(address: int) -> str | None:
    # Linux without a usable dladdr: the file mapped at ``address``.
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(None, 5)
                if len(fields) == 6:
                    lo, hi = (int(x, 16) for x in fields[0].split("-"))
                    if lo <= address < hi:
                        path = fields[5].strip()
                        return path if path.startswith("/") else None
    except (OSError, ValueError):
        pass
    return None


def _openmp_runtime_path() -> str | None:
    """Real path of the OpenMP runtime cyconv's kernels call, or None if unknown."""
    address = _openmp.openmp_runtime_address()
    if not address or sys.platform == "win32":
        return None
    path = _dladdr(address) or _mapped_file(address)
    return os.path.realpath(path) if path else None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _openmp_info() -> dict[str, Any]:
    spec = _openmp.build_info()["openmp"]
    info: dict[str, Any] = {
        "enabled": _openmp.openmp_enabled(),
        "spec": spec,
        "spec_version": _OPENMP_SPECS.get(spec) if spec else None,
        "runtime": None,
        "loaded": [],
        "threadpoolctl": None,
        "notes": [],
    }
    if not info["enabled"]:
        info["notes"].append("built without OpenMP: the kernels run serially")
        return info
    path = _openmp_runtime_path()
    name = os.path.basename(path) if path else ""
    # auditwheel/delocate rename bundled runtimes (libgomp-1a2b3c4d.so.1.0.0)
    prefix = next((p for p in _RUNTIME_PREFIXES if name.startswith(p)),
                  name.split(".")[0] or None)
    info["runtime"] = {"filepath": path, "prefix": prefix, "version": None,
                       "num_threads": _openmp.openmp_max_threads()}
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")  # optional
    except ImportError:
        info["notes"].append("threadpoolctl not installed: other OpenMP runtimes "
                             "loaded in this process are not listed")
        return info
    info["threadpoolctl"] = getattr(threadpoolctl, "__version__", "unknown")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pools = threadpoolctl.threadpool_info()
    except Exception as exc:  # a broken third-party library must not hide the rest
        info["notes"].append(f"threadpoolctl failed: {exc!r}")
        return info
    info["notes"] += [str(w.message) for w in caught]
    loaded = [p for p in pools if p.get("user_api") == "openmp"]
    info["loaded"] = [p.get("filepath") for p in loaded]
    if path is not None:
        ours = [p for p in loaded if p.get("filepath") and _same_file(p["filepath"], path)]
    else:  # could not locate it: only a lone runtime is certainly ours
        ours = loaded if len(loaded) == 1 else []
    if ours:
        entry = ours[0]
        info["runtime"] = {"filepath": entry.get("filepath"), "prefix": entry.get("prefix"),
                           "version": entry.get("version"),
                           "num_threads": entry.get("num_threads")}
    elif path is not None:
        info["notes"].append("threadpoolctl does not list the OpenMP runtime cyconv calls")
    elif loaded:
        info["notes"].append("could not tell which loaded OpenMP runtime is cyconv's")
    if len(loaded) > 1:
        info["notes"].append(f"{len(loaded)} OpenMP runtimes are loaded in this process")
    return info


def config_info() -> dict[str, Any]:
    """The facts :func:`show_config` prints, as a dict.

    Returns
    -------
    dict
        ``version``; ``python`` (``version``, ``implementation``,
        ``platform``, ``numpy``); ``cpu`` (``level`` in use, ``available``
        on this CPU and build, ``known``, ``forced``: the value of
        ``CYCONV_CPU_LEVEL`` or None, ``dispatch_built``); ``openmp``
        (``enabled``, ``spec``: the ``_OPENMP`` date compiled against or
        None, ``spec_version``, ``runtime``: a dict with the ``filepath``,
        ``prefix``, ``version`` and ``num_threads`` of the OpenMP library
        cyconv calls, or None when built serial, ``loaded``: every OpenMP
        library in the process as threadpoolctl lists them, ``threadpoolctl``:
        its version or None when not installed, ``notes``); ``threads``
        (``default``: the thread count of ``num_threads=None``,
        ``omp_max_threads``, ``usable_cpus``, ``cpu_count``,
        ``OMP_NUM_THREADS``); ``build`` (``compiler``, ``compiler_version``,
        ``flags``: cyconv's compile flags, ``env_cflags``: CFLAGS/CPPFLAGS of
        the build, ``cc``: the compiler command of the build, ``python_cc``
        and ``python_cflags``: this Python's ``sysconfig`` values, which the
        build adds to ``flags``).

    Examples
    --------
    >>> import cyconv
    >>> from cyconv._config import config_info
    >>> info = config_info()
    >>> info["version"] == cyconv.__version__
    True
    >>> info["cpu"]["level"] in info["cpu"]["available"]
    True
    >>> info["threads"]["default"] >= 1
    True
    >>> info["build"]["compiler"]  # doctest: +SKIP
    'GCC 12.2.0'
    """
    import numpy

    build = _openmp.build_info()
    return {
        "version": __version__,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "numpy": numpy.__version__,
        },
        "cpu": {
            "level": _dispatch.cpu_level(),
            "available": tuple(_dispatch.cpu_levels()),
            "known": tuple(_dispatch.LEVELS),
            "forced": os.environ.get("CYCONV_CPU_LEVEL"),
            "dispatch_built": build["cpu_dispatch"],
        },
        "openmp": _openmp_info(),
        "threads": {
            "default": _args.effective_num_threads(),
            "omp_max_threads": _openmp.openmp_max_threads(),
            "usable_cpus": _args._usable_cpus(),
            "cpu_count": os.cpu_count(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
        "build": {
            "compiler": build["compiler"],
            "compiler_version": build["compiler_version"],
            "flags": build["flags"],
            "env_cflags": build["env_cflags"],
            "cc": build["cc"],
            "python_cc": sysconfig.get_config_var("CC"),
            "python_cflags": sysconfig.get_config_var("CFLAGS"),
        },
    }


def _or(value: object, default: str = "unknown") -> str:
    return default if value is None or value == "" else str(value)


def _format(info: dict[str, Any]) -> str:
    py, cpu, omp, thr, build = (info[k] for k in ("python", "cpu", "openmp", "threads", "build"))
    rows: list[str | tuple[str, str]] = [
        f"cyconv {info['version']}",
        ("python", f"{py['version']} ({py['implementation']}), NumPy {py['numpy']}"),
        ("platform", py["platform"]),
        "CPU level",
        ("in use", cpu["level"]),
        ("available", ", ".join(cpu["available"])),
        ("known", ", ".join(cpu["known"])),
        ("CYCONV_CPU_LEVEL", _or(cpu["forced"], "not set")),
        ("per-level build", "yes" if cpu["dispatch_built"] else "no (baseline only)"),
        "OpenMP",
    ]
    if omp["enabled"]:
        spec = f"_OPENMP {omp['spec']}"
        if omp["spec_version"]:
            spec += f" (OpenMP {omp['spec_version']})"
        runtime = omp["runtime"] or {}
        rows += [
            ("compiled for", spec),
            ("runtime", _or(runtime.get("filepath"))),
            ("runtime version", _or(runtime.get("version"), "not reported by the runtime")),
            ("threadpoolctl", _or(omp["threadpoolctl"], "not installed")),
        ]
        if len(omp["loaded"]) > 1:
            rows.append(("loaded runtimes", ", ".join(map(str, omp["loaded"]))))
    else:
        rows.append(("compiled for", "none (serial build)"))
    rows += [("note", note) for note in omp["notes"]]
    rows += [
        "Threads",
        ("default", str(thr["default"])),
        ("OMP_NUM_THREADS", _or(thr["OMP_NUM_THREADS"], "not set")),
        ("omp_get_max_threads", str(thr["omp_max_threads"])),
        ("usable CPUs", f"{thr['usable_cpus']} (of {_or(thr['cpu_count'])})"),
        "Build",
        ("compiler", _or(build["compiler"])),
        ("compiler command", _or(build["cc"])),
        ("cyconv flags", _or(build["flags"], "none recorded")),
        ("CFLAGS/CPPFLAGS", _or(build["env_cflags"], "not set")),
        ("Python's CC", _or(build["python_cc"])),
        ("Python's CFLAGS", _or(build["python_cflags"])),
    ]
    width = max(len(r[0]) for r in rows if isinstance(r, tuple))
    return "\n".join(r if isinstance(r, str) else f"  {r[0]:<{width}}  {r[1]}" for r in rows)


def show_config() -> None:
    """Print what a bug report about cyconv needs to say.

    The version; the Python, NumPy and platform; the CPU level in use and the
    ones available (``CYCONV_CPU_LEVEL`` forces one); the OpenMP version
    compiled for and the runtime library the kernels call (its path, and
    every other OpenMP runtime loaded, through threadpoolctl when installed);
    the default thread count; the compiler and the flags of the build.
    ``python -m cyconv --config`` prints the same. :func:`config_info`
    returns it as a dict.

    Returns
    -------
    None

    Examples
    --------
    >>> import cyconv
    >>> cyconv.show_config()  # doctest: +ELLIPSIS
    cyconv ...
      python ...
    CPU level
      in use ...
    OpenMP
      compiled for ...
    Threads
      default ...
    """
    print(_format(config_info()))
