"""The manual is executable: docstring examples run, and CI runs the README's test command."""
import doctest
import importlib
import pathlib
import re

import pytest
from conftest import needs_source_tree

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Every module that defines a public name (the doctests of a module run only for
# the objects it defines, not those it re-exports); test_modules_cover_the_api
# keeps this list complete.
MODULES = ["cyconv.conv", "cyconv.pool", "cyconv.conv_transpose", "cyconv._threads",
           "cyconv._config", "cyconv._layout", "cyconv.reference",
           "cyconv.layers", "cyconv.layers._activations", "cyconv.layers._base",
           "cyconv.layers._conv", "cyconv.layers._dense", "cyconv.layers._pool",
           "cyconv.layers.losses", "cyconv.layers.optim", "cyconv.layers.sequential",
           "cyconv.compat", "cyconv.compat.course", "cyconv.compat.cs231n", "cyconv.dask",
           "cyconv.bench", "cyconv.bench_train", "cyconv.demo"]
# Optional packages some modules' examples use (the demo's data and progress bar).
EXAMPLES_NEED = {"cyconv.demo": ("sklearn", "tqdm")}
# The modules of the API reference (docs/api/index.rst; tests/test_docs_build.py).
API_MODULES = ["cyconv", "cyconv.layers", "cyconv.compat", "cyconv.compat.course",
               "cyconv.compat.cs231n", "cyconv.dask", "cyconv.reference", "cyconv.bench",
               "cyconv.bench_train", "cyconv.demo"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    for package in EXAMPLES_NEED.get(name, ()):
        pytest.importorskip(package)
    try:
        module = importlib.import_module(name)
    except ImportError:  # cyconv.dask without its optional dependencies
        pytest.skip(f"{name} not importable")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_modules_cover_the_api():
    """Each public function and class is defined in a module whose doctests run."""
    missing = set()
    for name in API_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # cyconv.dask without its optional dependencies
            continue
        for attr in module.__all__:
            obj = getattr(module, attr)
            if callable(obj) and getattr(obj, "__module__", "").startswith("cyconv"):
                if obj.__module__ not in MODULES:
                    missing.add(f"{obj.__module__} (for {name}.{attr})")
    assert not missing, f"add to MODULES in tests/test_docs.py: {sorted(missing)}"


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```(?:sh|bash)\n(.*?)```", text, re.S)
    assert block, "README has no quick-start code block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


@needs_source_tree("README.md")
def test_readme_quick_start_is_exactly_two_commands():
    assert len(_readme_commands()) == 2


@needs_source_tree("README.md", ".ci/run")
def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
