"""Sphinx configuration of the cyconv documentation site.

Build: ``pip install -e ".[docs]" && python -m sphinx -W -b html docs docs/_build/html``
(warnings are errors; tests/test_docs_build.py runs the same build in CI).
"""
import os

# The gallery runs at every build, on shared CI runners and busy machines. With
# more runnable threads than cores, OpenMP's default active wait (threads spin
# between parallel regions) makes the training examples an order of magnitude
# slower: 90 LeNet-5 steps took 13-20 s instead of 1.1 s on this 2-core machine
# at a load of 8 (2 threads; 1.1 s with OMP_WAIT_POLICY=passive or 1 thread).
# Set before cyconv (and its OpenMP runtime) loads; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cyconv  # noqa: E402

project = "cyconv"
author = "the cyconv developers"
copyright = "2026, the cyconv developers"
version = release = cyconv.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# bench.json and train.json are the benchmark's outputs; bench-levels.md (its
# tables at every CPU level) is a page of the user guide's toctree.
exclude_patterns = ["_build", "gallery/README.rst", "**.ipynb_checkpoints"]

# --- API reference: autosummary pages from the numpydoc docstrings ----------
autosummary_generate = True
templates_path = ["_templates"]
# Pages only for the names listed in docs/api/index.rst (tests/test_docs_build.py
# checks that every name of each module's __all__ is there).
autosummary_imported_members = False
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# --- Markdown pages ----------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# --- Gallery: scripts in docs/gallery, executed at every build ---------------
sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    # Unchanged examples are not rerun (sphinx-gallery keeps their output in
    # docs/auto_examples); tests/test_docs_build.py sets this to rerun them all.
    "run_stale_examples": bool(os.environ.get("CYCONV_DOCS_RERUN")),
    # The pages show the examples' speed on this machine, not their memory.
    "show_memory": False,
}

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "scipy": ("https://docs.scipy.org/doc/scipy", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "skimage": ("https://scikit-image.org/docs/stable", None),
    "dask": ("https://docs.dask.org/en/stable", None),
}
# No network here or in CI: intersphinx inventories are fetched only on request.
if not os.environ.get("CYCONV_DOCS_INTERSPHINX"):
    intersphinx_mapping = {}

html_theme = "pydata_sphinx_theme"
html_title = f"cyconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
