"""The manual is executable: docstring examples run, and CI runs the README's test command."""
import doctest
import importlib
import pathlib
import re

import pytest
from conftest import needs_source_tree

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = ["cyconv.conv", "cyconv.pool", "cyconv.layers", "cyconv.layers.sequential",
           "cyconv._threads", "cyconv.compat", "cyconv.dask",
           "cyconv.compat.course", "cyconv.compat.cs231n", "cyconv._layout"]
MODULES += ["cyconv.layers._pool", "cyconv.reference", "cyconv.conv_transpose"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    try:
        module = importlib.import_module(name)
    except ImportError:  # cyconv.dask without its optional dependencies
        pytest.skip(f"{name} not importable")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


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
