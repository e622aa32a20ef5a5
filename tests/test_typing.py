"""Typed package (PEP 561): ``py.typed`` ships, and ``mypy --strict`` users see the signatures.

``typing_sample.py`` is a user's script calling every public function; mypy
must accept it under ``--strict`` (no "call to untyped function", no wrong
result types), and it must run. The mypy tests skip when mypy is not
installed; the others need only the standard library.
"""
import importlib
import inspect
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_source_tree

import cyconv

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).with_name("typing_sample.py")

# The public modules and the prefix the sample calls their names by.
PUBLIC = {"cyconv": "cyconv", "cyconv.compat": "compat", "cyconv.layers": "layers",
          "cyconv.reference": "reference", "cyconv.compat.cs231n": "cs231n"}

# Command-line tools, not API: exempt from the strict check of the package.
NOT_TYPED = {"cyconv.bench", "cyconv.bench_train", "cyconv.demo",
             # the parts of cyconv.bench (python -m cyconv.bench)
             "cyconv._bench_levels", "cyconv._bench_peers", "cyconv._bench_report",
             "cyconv._bench_roofline", "cyconv._bench_features"}


def _public_names():
    for module_name, prefix in PUBLIC.items():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module_name, prefix, name, getattr(module, name)


def test_py_typed_marker_is_in_the_package():
    package_dir = Path(cyconv.__file__).parent
    assert (package_dir / "py.typed").is_file()
    # ... with the stubs of the compiled modules.
    for stub in ("_conv.pyi", "_pool.pyi", "_openmp.pyi"):
        assert (package_dir / stub).is_file()


@needs_source_tree("pyproject.toml")
def test_py_typed_and_stubs_are_declared_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(ROOT / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["cyconv"]
    assert "py.typed" in data and "*.pyi" in data


def _callables():
    # Every public function, and the public methods of every public class.
    for module_name, _, name, obj in _public_names():
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if inspect.isfunction(member) and (attr == "__init__" or not attr.startswith("_")):
                    yield f"{module_name}.{name}.{attr}", member
        elif callable(obj):
            yield f"{module_name}.{name}", obj


CALLABLES = dict(_callables())


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_public_signature_is_annotated(qualname):
    # What mypy --strict users need, checked without mypy.
    sig = inspect.signature(CALLABLES[qualname])
    unannotated = [p.name for p in sig.parameters.values()
                   if p.annotation is inspect.Parameter.empty and p.name != "self"]
    assert not unannotated, f"{qualname}: parameters without annotations: {unannotated}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{qualname}: no return annotation"


def test_sample_calls_every_public_name():
    text = SAMPLE.read_text()
    missing = [f"{prefix}.{name}" for _, prefix, name, _ in _public_names()
               if not re.search(rf"\b{re.escape(prefix)}\.{re.escape(name)}\b", text)]
    assert not missing, f"add to {SAMPLE.name}: {missing}"
    assert "reveal_type" not in text


def test_sample_runs():
    runpy.run_path(str(SAMPLE), run_name="__main__")


@pytest.fixture(scope="module")
def mypy(tmp_path_factory):
    pytest.importorskip("mypy")
    cache = tmp_path_factory.mktemp("mypy_cache")

    def run(*args):
        # From the repository root, so that mypy finds (and checks) this
        # checkout's cyconv and its .pyi stubs.
        cmd = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), *args]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{' '.join(cmd[1:])}\n{proc.stdout}{proc.stderr}"
        return proc.stdout

    return run


def test_mypy_strict_accepts_the_sample(mypy):
    assert "Success" in mypy(str(SAMPLE.relative_to(ROOT)))


def test_mypy_strict_accepts_the_package(mypy):
    package_dir = Path(cyconv.__file__).parent  # the source tree or an installed wheel
    # Modules and subpackages (cyconv/layers/): every .py below the package.
    modules = sorted({"cyconv"} | {
        "cyconv." + ".".join(p.relative_to(package_dir).with_suffix("").parts).removesuffix(
            ".__init__")
        for p in package_dir.rglob("*.py")} - {"cyconv.__init__"} - NOT_TYPED)
    assert {"cyconv.conv", "cyconv.pool", "cyconv._args", "cyconv.layers"} <= set(modules)
    args = [arg for module in modules for arg in ("-m", module)]
    assert "Success" in mypy(*args)
