"""Level-fair runs of ``python -m cyconv.bench --level LEVEL``.

cyconv ships one build per CPU level (``cyconv._dispatch.cpu_levels()``) and
picks the best this CPU runs; ``CYCONV_CPU_LEVEL`` forces a lower one. To judge
a lower level honestly on a machine that has a higher one, the peers must be
held to the same instruction set. ``--level`` runs the benchmark once per level
in a subprocess whose environment does that (:data:`LEVEL_SETTINGS`):

* cyconv: ``CYCONV_CPU_LEVEL``;
* PyTorch's ATen kernels (pools, elementwise): ``ATEN_CPU_CAPABILITY``
  (``default`` / ``avx2`` / ``avx512``);
* PyTorch's oneDNN (its float32 convolutions): ``ONEDNN_MAX_CPU_ISA``. oneDNN's
  lowest is ``SSE41`` (x86-64-v2), one step above cyconv's baseline (SSE2);
* NumPy's OpenBLAS (the GEMM ceiling): ``OPENBLAS_CORETYPE``. NumPy's wheel is
  built with a list of cores; ``Prescott`` (SSE3) is the fastest pre-AVX one
  here and OpenBLAS reports it as ``Katmai`` (its name for that kernel table in
  such builds), ``Haswell`` is AVX2 + FMA, ``SkylakeX`` AVX-512.

Each setting is checked, not trusted: the subprocess reports what each library
says it runs (:func:`library_report`), and a second small subprocess with
``ONEDNN_VERBOSE=1`` runs a channels_last convolution forward and backward in
torch and reads oneDNN's ISA and the kernels it chose (:func:`onednn_probe`).
Two peers cannot be limited: ONNX Runtime's MLAS and NumPy's copy (glibc's
``memcpy``) choose their code from cpuid; the header says so.

Imports only the standard library at import time.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

__all__ = ["LEVEL_SETTINGS", "EXPECTED", "parse_levels", "child_argv", "level_env",
           "library_report", "onednn_probe", "check_level", "run_level", "levels_main"]

#: Environment of the subprocess for each level.
LEVEL_SETTINGS = {
    "baseline": dict(CYCONV_CPU_LEVEL="baseline", ATEN_CPU_CAPABILITY="default",
                     ONEDNN_MAX_CPU_ISA="SSE41", OPENBLAS_CORETYPE="Prescott"),
    "x86-64-v3": dict(CYCONV_CPU_LEVEL="x86-64-v3", ATEN_CPU_CAPABILITY="avx2",
                      ONEDNN_MAX_CPU_ISA="AVX2", OPENBLAS_CORETYPE="Haswell"),
    "x86-64-v4": dict(CYCONV_CPU_LEVEL="x86-64-v4", ATEN_CPU_CAPABILITY="avx512",
                      ONEDNN_MAX_CPU_ISA="AVX512_CORE", OPENBLAS_CORETYPE="SkylakeX"),
}

#: What each library must report once its setting is in effect: cyconv's
#: ``cpu_level()``, torch's ``get_cpu_capability()``, oneDNN's verbose ``isa:``
#: line, threadpoolctl's OpenBLAS ``architecture``, and the ISA names oneDNN's
#: convolution kernels may carry.
EXPECTED = {
    "baseline": dict(cyconv="baseline", torch="DEFAULT", onednn="Intel SSE4.1",
                     openblas="Katmai", onednn_kernels=("sse41",)),
    "x86-64-v3": dict(cyconv="x86-64-v3", torch="AVX2", onednn="Intel AVX2",
                      openblas="Haswell", onednn_kernels=("sse41", "avx", "avx2")),
    "x86-64-v4": dict(cyconv="x86-64-v4", torch="AVX512",
                      onednn="Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions",
                      openblas="SkylakeX",
                      onednn_kernels=("sse41", "avx", "avx2", "avx512_core")),
}


def parse_levels(value, error=None):
    """The levels ``--level`` names (``"all"``: every one ``cpu_levels()`` reports).

    An unknown level, or one this CPU or build cannot run, calls
    ``error(message)`` (the argument parser's ``error``, which exits).
    """
    from cyconv._dispatch import LEVELS, cpu_levels

    def fail(message):
        if error is None:
            raise ValueError(message)
        error(message)

    names = list(cpu_levels()) if value.strip() == "all" else [
        v.strip() for v in value.split(",") if v.strip()]
    for n in names:
        if n not in LEVELS:
            fail(f"--level: unknown CPU level {n!r}; choose from {', '.join(LEVELS)} or all")
        elif n not in cpu_levels():
            fail(f"--level: this CPU or build does not run {n!r}; it runs "
                 f"{', '.join(cpu_levels())}")
    return list(dict.fromkeys(names))


def child_argv(args):
    """The command line of one level's subprocess: the parsed ``args`` of the
    parent without ``--level``, ``--json`` and ``--plot``."""
    out = []
    for opt in ("shapes", "ops", "dtype", "threads", "target", "peers"):
        if getattr(args, opt) is not None:
            out += [f"--{opt}", str(getattr(args, opt))]
    if args.shapes is None:   # the standard table only (see cyconv.bench's --shapes)
        out += ["--shapes", "standard"]
    out += [f"--{flag.replace('_', '-')}" for flag in ("quick", "no_torch", "no_reference")
            if getattr(args, flag)]
    return out


def level_env(level, base=None):
    """The environment of the subprocess measuring ``level``: ``base`` (default
    ``os.environ``) with :data:`LEVEL_SETTINGS` of ``level`` on top."""
    env = dict(os.environ if base is None else base)
    env.update(LEVEL_SETTINGS[level])
    return env


def cpu_best_isa():
    """The widest vector ISA this CPU has (``/proc/cpuinfo`` flags), for the header."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return None
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"),
                       ("sse4_2", "SSE4.2")):
        if flag in flags:
            return name
    return "SSE2"


def library_report(torch=None, ort=None):
    """What cyconv, torch (ATen), NumPy's OpenBLAS and ONNX Runtime say they run."""
    import cyconv

    rep = dict(cyconv=cyconv.cpu_level(), torch=None, openblas=None, onnxruntime=None)
    if torch is not None:
        rep["torch"] = torch.backends.cpu.get_cpu_capability()
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        archs = sorted({str(i.get("architecture")) for i in threadpool_info()
                        if i.get("internal_api") == "openblas"})
        rep["openblas"] = ", ".join(archs) or None
    if ort is not None:
        rep["onnxruntime"] = ort[0].__version__
    return rep


# Runs in a subprocess with ONEDNN_VERBOSE=1: torch's float32 channels_last
# convolution, forward and the three backward parts, as the benchmark calls them.
_PROBE = """
import torch
x = torch.randn(2, 16, 10, 10).contiguous(memory_format=torch.channels_last)
w = torch.randn(16, 16, 3, 3).contiguous(memory_format=torch.channels_last)
with torch.no_grad():
    y = torch.nn.functional.conv2d(x, w, torch.randn(16), padding=1)
    torch.ops.aten.convolution_backward(y, x, w, [16], [1, 1], [1, 1], [1, 1], False,
                                        [0, 0], 1, [True, True, True])
"""


def parse_onednn_verbose(text):
    """``{"isa": ..., "convolution": {prop_kind: implementation}}`` from oneDNN verbose lines."""
    isa, kernels = None, {}
    for line in text.splitlines():
        fields = line.split(",")
        if not line.startswith("onednn_verbose") or len(fields) < 4:
            continue
        if fields[2:4] == ["info", "cpu"] and len(fields) > 4 and fields[4].startswith("isa:"):
            isa = ",".join(fields[4:])[4:].strip()
        elif fields[2:6] == ["primitive", "exec", "cpu", "convolution"] and len(fields) > 7:
            kernels[fields[7]] = fields[6]
    return dict(isa=isa, convolution=kernels)


def onednn_probe(env, timeout=120):
    """oneDNN's ISA and convolution kernels in a torch subprocess with ``env``, or None
    (torch missing or the probe failed)."""
    env = dict(env, ONEDNN_VERBOSE="1")
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return parse_onednn_verbose(proc.stdout)


def _kernel_isas(implementation):
    # "brg_conv_bwd:avx2+brg_conv_fwd:avx2" -> {"avx2"}; "x64:gemm:jit" -> set()
    return {t for t in re.split(r"[:+]", implementation) if re.match(r"(sse|avx|amx)", t)}


def check_level(level, libraries, onednn, peers=("torch",)):
    """Rows ``dict(library, setting, reports, ok)`` for the header of ``level``'s table.

    ``ok`` is True when the library reports what :data:`EXPECTED` says, False
    when not, None when the library is absent or cannot be limited.
    """
    want, settings = EXPECTED[level], LEVEL_SETTINGS[level]
    rows = [dict(library="cyconv", setting=f"CYCONV_CPU_LEVEL={settings['CYCONV_CPU_LEVEL']}",
                 reports=f"cpu_level() = {libraries['cyconv']}",
                 ok=libraries["cyconv"] == want["cyconv"])]
    if "torch" in peers:
        cap = libraries.get("torch")
        rows.append(dict(library="PyTorch ATen (pools)",
                         setting=f"ATEN_CPU_CAPABILITY={settings['ATEN_CPU_CAPABILITY']}",
                         reports=f"get_cpu_capability() = {cap}" if cap else "not installed",
                         ok=cap == want["torch"] if cap else None))
        if onednn is None:
            rows.append(dict(library="PyTorch oneDNN (conv)",
                             setting=f"ONEDNN_MAX_CPU_ISA={settings['ONEDNN_MAX_CPU_ISA']}",
                             reports="probe failed or torch not installed", ok=None))
        else:
            isas = set().union(*map(_kernel_isas, onednn["convolution"].values()))
            kernels = ", ".join(f"{k} {v}" for k, v in onednn["convolution"].items())
            rows.append(dict(library="PyTorch oneDNN (conv)",
                             setting=f"ONEDNN_MAX_CPU_ISA={settings['ONEDNN_MAX_CPU_ISA']}",
                             reports=f"isa: {onednn['isa']}; conv kernels: {kernels or '?'}",
                             ok=onednn["isa"] == want["onednn"]
                             and isas <= set(want["onednn_kernels"])))
    blas = libraries.get("openblas")
    rows.append(dict(library="NumPy OpenBLAS (GEMM)",
                     setting=f"OPENBLAS_CORETYPE={settings['OPENBLAS_CORETYPE']}",
                     reports=f"architecture = {blas}" if blas else "threadpoolctl: no OpenBLAS",
                     ok=blas == want["openblas"] if blas else None))
    best = cpu_best_isa() or "?"
    if "onnxruntime" in peers:
        rows.append(dict(library=f"ONNX Runtime {libraries.get('onnxruntime') or ''} (MLAS)",
                         setting="none exists", ok=None,
                         reports=f"not limited: MLAS picks from cpuid ({best} on this CPU)"))
    rows.append(dict(library="NumPy copy (memcpy)", setting="none (glibc picks from cpuid)",
                     reports=f"not limited ({best} on this CPU); memory-bound", ok=None))
    return rows


def run_level(level, child_argv, *, peers=("torch",), timeout=None):
    """Run ``python -m cyconv.bench child_argv`` at ``level`` in a subprocess.

    Returns the child's JSON report with ``level``, ``settings`` (the
    environment it set), ``onednn`` (the probe) and ``checks``
    (:func:`check_level`) added. The child's progress goes to stderr.
    """
    env = level_env(level)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "level.json")
        proc = subprocess.run([sys.executable, "-m", "cyconv.bench", *child_argv, "--json", out],
                              env=env, stdout=subprocess.PIPE, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"the benchmark at level {level} failed "
                               f"(exit status {proc.returncode}):\n{proc.stdout[-2000:]}")
        with open(out) as f:
            report = json.load(f)
    onednn = onednn_probe(env) if "torch" in peers else None
    report.update(level=level, level_settings=dict(LEVEL_SETTINGS[level]), onednn=onednn,
                  checks=check_level(level, report["libraries"], onednn, peers))
    return report


def combine(reports, machine):
    """One report of several levels: every row, GEMM and copy entry keeps its ``level``."""
    first = reports[0]
    return dict(machine=dict(machine, cpu_level=[r["level"] for r in reports]),
                quick=first["quick"], settings=first["settings"], peers=first["peers"],
                levels=[{k: r[k] for k in ("level", "level_settings", "libraries", "onednn",
                                           "checks", "machine", "load_before")}
                        for r in reports],
                gemm=[g for r in reports for g in r["gemm"]],
                copy=[c for r in reports for c in r["copy"]],
                results=[row for r in reports for row in r["results"]],
                shapes=first["shapes"])


def levels_main(args, levels, child_argv, peers):
    """``python -m cyconv.bench --level ...``: one subprocess and one table per level."""
    from cyconv import bench

    reports = []
    for level in levels:
        settings = " ".join(f"{k}={v}" for k, v in LEVEL_SETTINGS[level].items())
        print(f"CPU level {level}: {settings}", file=sys.stderr)
        report = run_level(level, child_argv, peers=peers)
        for c in report["checks"]:
            if c["ok"] is False:
                print(f"warning: at level {level}, {c['setting']} did not take effect: "
                      f"{c['library']} reports {c['reports']}", file=sys.stderr)
        reports.append(report)
        sys.stdout.write(bench.markdown(report, title=f"## CPU level {level}"))
        sys.stdout.write("\n")
        sys.stdout.flush()
    combined = combine(reports, bench.machine_info(bench.import_torch() if "torch" in peers
                                                   else None))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(combined, f, indent=1)
    if args.plot:
        bench.plot(combined, args.plot)
        print(f"\nplot written to {args.plot}")
    return 0
