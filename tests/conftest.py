"""Shared fixtures: tolerances per dtype and the memory layouts every kernel must accept."""
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # Registered here, not only in pyproject.toml, so a copy of tests/ run
    # against an installed wheel knows the marker too.
    config.addinivalue_line(
        "markers", "packaging: builds the sdist, a wheel from it and a fresh venv (~2 min)")
    config.addinivalue_line(
        "markers", "slow: > 2**31-element inputs (tests/test_large.py); run with CYCONV_RUN_SLOW=1")
    config.addinivalue_line("markers", "docs: builds the Sphinx site with -W (tests/test_docs_build.py, ~1 min)")


def needs_source_tree(*paths):
    """Skip unless these repository files exist next to tests/.

    The suite also runs against an installed wheel from a copy of tests/
    (cibuildwheel, the packaging check); tests of the repository's own files
    (README, CI script, asv suites, pyproject) do not apply there.
    """
    missing = [p for p in paths if not (ROOT / p).exists()]
    return pytest.mark.skipif(bool(missing), reason=f"needs the source tree: {', '.join(missing)}")

# Kernels and reference sum in different orders; these bounds allow for that
# rounding and nothing more (relative to values of order 1-10).
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def assert_close(actual, desired, dtype):
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, desired, **TOL[dtype])


def layouts(a):
    """The same values as ``a`` in other memory layouts (name, array)."""
    yield "fortran", np.asfortranarray(a)
    big = np.zeros((a.shape[0] * 2,) + tuple(n * 2 for n in a.shape[1:]), dtype=a.dtype)
    big[::2, ::2, ::2, ::2] = a
    yield "strided", big[::2, ::2, ::2, ::2]
    rev = np.ascontiguousarray(a[::-1, ::-1, ::-1, ::-1])
    yield "negative-strides", rev[::-1, ::-1, ::-1, ::-1]
    ro = a.copy()
    ro.flags.writeable = False
    yield "read-only", ro


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=["baseline", "x86-64-v3", "x86-64-v4"])
def level(request):
    """Run the test at one CPU level (convolution tile and pooling module); restore after."""
    from cyconv import _dispatch
    if request.param not in _dispatch.cpu_levels():
        pytest.skip(f"this CPU (or build) does not run {request.param}")
    before = _dispatch.cpu_level()
    _dispatch.set_cpu_level(request.param)
    yield request.param
    _dispatch.set_cpu_level(before)


# --------------------------------------------------------------------------
# Hypothesis profiles (tests/test_properties.py)
# --------------------------------------------------------------------------
# "ci" is loaded by default: few examples, no deadline (the first call of a
# kernel pays for OpenMP start-up), and derandomized so every CI run tests the
# same examples. "long" explores: `pytest --hypothesis-profile=long` (option
# of the hypothesis pytest plugin, which loads the profile after this file).
# Optional: without hypothesis installed, test_properties.py is skipped.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover
    pass
else:
    settings.register_profile(
        "ci", max_examples=60, deadline=None, derandomize=True, database=None,
        print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile(
        "long", max_examples=2000, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci")
