"""cyconv.show_config() and ``python -m cyconv``: the facts a bug report needs."""
import doctest
import json
import os
import re
import subprocess
import sys

import pytest

import cyconv
from cyconv import _config, _dispatch, _openmp

_RUNTIME_PREFIXES = ("libgomp", "libomp", "libiomp", "vcomp")


def _run(*args, env=None, code=None):
    cmd = [sys.executable] + (["-c", code] if code is not None else ["-m", "cyconv", *args])
    return subprocess.run(cmd, capture_output=True, text=True, check=True,
                          env=dict(os.environ, **(env or {})))


def test_config_info_keys_and_values():
    info = _config.config_info()
    assert set(info) == {"version", "python", "cpu", "openmp", "threads", "build"}
    assert info["version"] == cyconv.__version__
    cpu = info["cpu"]
    assert cpu["level"] == cyconv.cpu_level()
    assert cpu["level"] in cpu["available"]
    assert cpu["available"] == tuple(_dispatch.cpu_levels())
    assert cpu["known"] == tuple(_dispatch.LEVELS)
    assert set(cpu["available"]) <= set(cpu["known"])
    assert cpu["dispatch_built"] in (True, False)
    threads = info["threads"]
    assert isinstance(threads["default"], int) and threads["default"] >= 1
    assert threads["usable_cpus"] >= 1
    build = info["build"]
    assert build["compiler"] and isinstance(build["compiler"], str)
    assert build["compiler_version"]
    if sys.platform.startswith("linux"):
        assert "-O3" in build["flags"].split()
    omp = info["openmp"]
    assert omp["enabled"] == _openmp.openmp_enabled()
    if omp["enabled"]:
        assert omp["spec"] >= 200505 and omp["runtime"] is not None
        assert "openmp" in build["flags"]  # -fopenmp, or /openmp with MSVC
    else:
        assert omp["spec"] is None and omp["runtime"] is None
    json.dumps(info)  # plain data: it can go into a bug report as JSON


def test_build_info_records_the_compiler():
    info = _openmp.build_info()
    assert set(info) == {"compiler", "compiler_version", "openmp", "flags", "cc", "env_cflags",
                         "cpu_dispatch"}
    if info["compiler_version"] != "unknown":
        assert info["compiler_version"] in info["compiler"]
    assert (info["openmp"] is not None) == _openmp.openmp_enabled()
    # cyconv runs every CPU level only when the per-level kernels were built
    assert info["cpu_dispatch"] or _dispatch.cpu_levels() == ("baseline",)


def test_show_config_prints_the_facts(capsys):
    assert cyconv.show_config() is None
    out = capsys.readouterr().out
    info = _config.config_info()
    assert out.startswith(f"cyconv {cyconv.__version__}\n")
    for section in ("CPU level", "OpenMP", "Threads", "Build"):
        assert f"\n{section}\n" in out
    assert cyconv.cpu_level() in out
    assert info["build"]["compiler"] in out
    assert info["build"]["flags"] in out
    if info["openmp"]["enabled"]:
        assert f"_OPENMP {info['openmp']['spec']}" in out
        if info["openmp"]["runtime"]["filepath"]:
            assert info["openmp"]["runtime"]["filepath"] in out


def test_show_config_is_exported():
    assert "show_config" in cyconv.__all__


def test_docstring_examples_run():
    result = doctest.testmod(_config, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_cli_version():
    out = _run("--version").stdout
    assert out == f"cyconv {cyconv.__version__}\n"


def test_cli_config():
    out = _run("--config").stdout
    assert out.startswith(f"cyconv {cyconv.__version__}\n")
    assert "\nCPU level\n" in out and "\nBuild\n" in out


def test_cli_version_and_config():
    out = _run("--version", "--config").stdout
    lines = out.splitlines()
    assert lines[0] == lines[1] == f"cyconv {cyconv.__version__}"
    assert "\nOpenMP\n" in out


def test_cli_without_flags_prints_usage():
    out = _run().stdout
    assert out.startswith("usage:") and "--config" in out and "--version" in out


def test_config_reports_a_forced_cpu_level():
    out = _run("--config", env={"CYCONV_CPU_LEVEL": "baseline"}).stdout
    assert re.search(r"^  in use +baseline$", out, re.M)
    assert re.search(r"^  CYCONV_CPU_LEVEL +baseline$", out, re.M)


def test_config_reports_omp_num_threads():
    code = "from cyconv._config import config_info; t = config_info()['threads']; " \
           "print(t['default'], t['OMP_NUM_THREADS'])"
    default = "3" if _openmp.openmp_enabled() else "1"  # a serial build runs one thread
    assert _run(code=code, env={"OMP_NUM_THREADS": "3"}).stdout.split() == [default, "3"]


def test_config_without_threadpoolctl():
    # threadpoolctl is an optional extra: everything but the list of loaded runtimes works.
    code = ("import sys; sys.modules['threadpoolctl'] = None\n"
            "import json, cyconv\n"
            "from cyconv._config import config_info\n"
            "print(json.dumps(config_info()['openmp']))\n"
            "cyconv.show_config()\n")
    out = _run(code=code).stdout
    omp = json.loads(out.splitlines()[0])
    assert omp["threadpoolctl"] is None
    if omp["enabled"]:
        assert "threadpoolctl        not installed" in out
        assert omp["spec"] >= 200505
        assert any("threadpoolctl not installed" in note for note in omp["notes"])
        if sys.platform.startswith("linux"):
            assert os.path.basename(omp["runtime"]["filepath"]).startswith(_RUNTIME_PREFIXES)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_threadpoolctl_lists_the_openmp_runtime_cyconv_loads():
    pytest.importorskip("threadpoolctl")
    if not _openmp.openmp_enabled():
        pytest.skip("cyconv was built without OpenMP")
    # A fresh process in which only cyconv (and NumPy, which brings no OpenMP)
    # is imported: every OpenMP runtime mapped is the one cyconv's modules load.
    code = (
        "import json, os, threadpoolctl, cyconv\n"
        "from cyconv._config import config_info\n"
        "maps = {os.path.realpath(l.split(None, 5)[5].strip()) for l in open('/proc/self/maps')\n"
        "        if len(l.split(None, 5)) == 6\n"
        f"        and os.path.basename(l.split(None, 5)[5].strip()).startswith({_RUNTIME_PREFIXES!r})}}\n"
        "pools = [p for p in threadpoolctl.threadpool_info() if p['user_api'] == 'openmp']\n"
        "print(json.dumps({'maps': sorted(maps), 'pools': pools,\n"
        "                  'config': config_info()['openmp']}))\n"
    )
    result = json.loads(_run(code=code).stdout)
    maps = result["maps"]
    assert maps, "no OpenMP runtime mapped after importing cyconv"
    pool_paths = [os.path.realpath(p["filepath"]) for p in result["pools"]]
    assert set(maps) <= set(pool_paths)
    runtime = result["config"]["runtime"]
    assert os.path.realpath(runtime["filepath"]) in maps
    if len(maps) == 1:  # NumPy brought none: the one mapped is cyconv's
        assert os.path.realpath(runtime["filepath"]) == maps[0]
    assert runtime["prefix"] in _RUNTIME_PREFIXES
    assert runtime["num_threads"] >= 1


def test_runtime_is_found_in_this_process_too():
    # Here other libraries (torch) may have loaded OpenMP runtimes of their own;
    # the one reported must still be a runtime threadpoolctl lists.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _openmp.openmp_enabled():
        pytest.skip("cyconv was built without OpenMP")
    omp = _config.config_info()["openmp"]
    listed = [os.path.realpath(p["filepath"]) for p in threadpoolctl.threadpool_info()
              if p["user_api"] == "openmp"]
    assert omp["runtime"]["filepath"] is not None or sys.platform == "win32"
    if omp["runtime"]["filepath"]:
        assert os.path.realpath(omp["runtime"]["filepath"]) in listed
