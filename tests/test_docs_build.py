"""The documentation site builds with warnings as errors, and every public name has a page.

One build per session (~1 min here, most of it the gallery's examples), shared
by the tests below: ``python -m sphinx -W -b html docs <tmp>``, the README's docs
command with another output directory. Skips without Sphinx and the gallery's
packages (the ``docs`` extra) or outside a source tree.
"""
import importlib
import os
import subprocess
import sys
import zlib

import pytest
from conftest import ROOT, needs_source_tree

pytestmark = [pytest.mark.docs, needs_source_tree("docs/conf.py", "docs/api/index.rst")]

# The modules of the API reference; each name of their __all__ needs a page.
# A module that re-exports another's functions points at where they are documented.
API_MODULES = {
    "cyconv": "cyconv",
    "cyconv.layers": "cyconv.layers",
    "cyconv.compat": "cyconv.compat.course",
    "cyconv.compat.course": "cyconv.compat.course",
    "cyconv.compat.cs231n": "cyconv.compat.cs231n",
    "cyconv.dask": "cyconv.dask",
    "cyconv.reference": "cyconv.reference",
    "cyconv.bench": "cyconv.bench",
    "cyconv.bench_train": "cyconv.bench_train",
    "cyconv.demo": "cyconv.demo",
}
# Documented in the text of docs/api/index.rst, not on a page of their own.
NO_PAGE = {"cyconv.__version__"}
# What the build imports: Sphinx and its extensions, and the gallery's examples.
NEEDS = ["sphinx", "numpydoc", "sphinx_gallery", "myst_parser", "pydata_sphinx_theme",
         "matplotlib", "sklearn", "skimage", "dask"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for name in NEEDS:
        pytest.importorskip(name, reason=f"the docs build needs {name}: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("html")
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("CYCONV_DOCS_INTERSPHINX", None)  # never the network in a test
    env["CYCONV_DOCS_RERUN"] = "1"  # run every gallery example, even those run before
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-b", "html", "-q",
                           str(ROOT / "docs"), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return out


def _inventory(path):
    """The names in a Sphinx objects.inv (format version 2): {name: (role, uri)}."""
    raw = path.read_bytes()
    lines = raw.split(b"\n", 4)
    assert lines[0].startswith(b"# Sphinx inventory version 2")
    names = {}
    for line in zlib.decompress(lines[4]).decode().splitlines():
        name, role, _prio, uri, _disp = line.split(" ", 4)
        names[name] = (role, uri.replace("$", name))
    return names


def _public_names():
    for module, documented_in in API_MODULES.items():
        mod = importlib.import_module(module)
        for name in mod.__all__:
            yield f"{module}.{name}", f"{documented_in}.{name}"


def test_site_builds_without_warnings(site):
    assert (site / "index.html").exists()
    assert (site / "api" / "index.html").exists()


def test_every_public_name_has_a_page(site):
    inventory = _inventory(site / "objects.inv")
    pages = site / "api" / "generated"
    missing, no_page = [], []
    for public, documented in _public_names():
        if documented not in inventory:
            missing.append(public)
        elif public not in NO_PAGE and not (pages / f"{documented}.html").exists():
            no_page.append(public)
    assert not missing, f"public names not in the API reference (docs/api/index.rst): {missing}"
    assert not no_page, f"public names without a page of their own: {no_page}"


def test_gallery_examples_ran(site):
    gallery = sorted(p.stem for p in (ROOT / "docs" / "gallery").glob("plot_*.py"))
    assert gallery, "the gallery has no examples"
    for stem in gallery:
        page = site / "auto_examples" / f"{stem}.html"
        assert page.exists(), stem
        # every example draws at least one figure (sphinx-gallery's image names)
        assert list((site / "_images").glob(f"sphx_glr_{stem}_*.png")), f"{stem} drew no figure"
