"""The user guide (docs/guide/*.md, docs/bench-levels.md) and the README are executable.

- Each page's Python blocks run, in order, in one namespace (as a reader would paste them).
- Every ``python -m cyconv...`` command of a shell block or an inline code span uses only
  options its ``--help`` lists; a ``python examples/<x>.py`` exists and takes the options named;
  a ``pip install -e ".[extra]"`` names an extra of pyproject.toml; an option a page names on
  its own in inline code (the benchmark page's ``--level``) is an option of the page's commands.
- Every page is in the guide's toctree; relative links and images resolve; every API name a
  page cross-references with a MyST role exists; the internals page's micro-kernel table is
  cyconv/_levels.py's.
- The README stays a front page (<= 150 lines) whose example runs.
"""
import importlib
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT, needs_source_tree

GUIDE = ROOT / "docs" / "guide"
PAGES = sorted(p for p in GUIDE.glob("*.md") if p.name != "index.md") if GUIDE.exists() else []
README = ROOT / "README.md"
BENCH_LEVELS = ROOT / "docs" / "bench-levels.md"       # a page of the guide's toctree
DOCS = [p for p in [README] + PAGES + [BENCH_LEVELS] if p.exists()]

FENCE = re.compile(r"^```([^\s`]*)[^\n]*\n(.*?)^```", re.M | re.S)
ROLE = re.compile(r"\{(func|mod|class|meth|attr|data)\}`([^`<]+?)(?:\s*<([^>]+)>)?`")


def _blocks(path, *langs):
    return [m.group(2) for m in FENCE.finditer(path.read_text()) if m.group(1) in langs]


def _prose(path):
    """The page without its fenced blocks (for inline code spans)."""
    return FENCE.sub("", path.read_text())


def _inline(path):
    """The inline code spans of the page (the text between pairs of backticks outside blocks)."""
    return [span.replace("\n", " ") for span in _prose(path).split("`")[1::2]]


def _id(path):
    return path.relative_to(ROOT).as_posix()


# --------------------------------------------------------------------------
# Python blocks
# --------------------------------------------------------------------------

@needs_source_tree("README.md", "docs/guide")
@pytest.mark.parametrize("page", DOCS, ids=_id)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    code = _blocks(page, "python")
    if not code:
        pytest.skip("no Python block")
    source = "\n".join(code)
    if re.search(r"^\s*import dask|cyconv\.dask", source, re.M):
        pytest.importorskip("dask.array")
        pytest.importorskip("cyconv.dask")
    monkeypatch.chdir(tmp_path)           # a block that writes a file writes it here
    namespace = {"__name__": "__guide__"}
    exec(compile(source, str(page), "exec"), namespace)


# --------------------------------------------------------------------------
# Commands and their options
# --------------------------------------------------------------------------

def _help(*argv):
    out = subprocess.run([sys.executable, *argv, "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, f"{' '.join(argv)} --help failed:\n{out.stderr}"
    return set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", out.stdout))


_HELP_CACHE = {}


def _options(command):
    """The options ``command`` (a tuple of argv words before the options) accepts."""
    if command not in _HELP_CACHE:
        if command[0] == "examples":          # an example script: its argparse source
            script = ROOT / command[1]
            assert script.exists(), f"{command[1]} does not exist"
            _HELP_CACHE[command] = set(re.findall(r"""["'](--[a-z][\w-]*)["']""",
                                                  script.read_text())) | {"--help"}
        else:
            _HELP_CACHE[command] = _help(*command)
    return _HELP_CACHE[command]


def _command_lines(text):
    """Shell lines: continuations joined, comments dropped, split at && and ;."""
    text = re.sub(r"\\\n", " ", text)
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        for part in re.split(r"&&|;", line):
            if part.strip():
                yield part.strip()


def _extras():
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([\w-]+)\s*=", section, re.M))


def _check_command(line, where):
    """Assert that one shell command line of the docs is real; returns what it checked."""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):    # VAR=value prefixes
        words.pop(0)
    if not words:
        return None
    if words[:2] == ["pip", "install"] and "-e" in words:
        for extra in re.findall(r"\[([\w,-]+)\]", line):
            for name in extra.split(","):
                assert name in _extras(), f"{where}: `{line}`: no extra [{name}] in pyproject.toml"
        return "pip"
    if words[0] not in ("python", "python3"):
        return None
    if words[1:2] == ["-m"] and words[2].split(".")[0] == "cyconv":
        command = ("-m", words[2])
        rest = words[3:]
        if words[2] == "cyconv.bench" and "--train" in rest:
            command = ("-m", "cyconv.bench", "--train")
            rest = [w for w in rest if w != "--train"]
        importlib.import_module(words[2])       # the module exists
    elif len(words) > 1 and words[1].startswith("examples/"):
        command = ("examples", words[1])
        rest = words[2:]
    else:
        return None
    known = _options(command)
    for word in rest:
        option = word.split("=", 1)[0]
        if option.startswith("--"):
            assert option in known, (f"{where}: `{line}`: {option} is not an option of "
                                     f"{' '.join(command)} (its options: {sorted(known)})")
    return command


def _doc_commands(page):
    for block in _blocks(page, "sh", "bash", "console", "shell"):
        yield from _command_lines(block)
    for span in _inline(page):
        for start in ("python -m cyconv", "python examples/", 'pip install -e "'):
            i = span.find(start)
            if i >= 0:
                yield from _command_lines(span[i:])
                break


@needs_source_tree("README.md", "docs/guide", "pyproject.toml")
@pytest.mark.parametrize("page", DOCS, ids=_id)
def test_commands_exist_with_their_options(page):
    checked = [_check_command(line, page.name) for line in _doc_commands(page)]
    if not any(checked):
        pytest.skip("no cyconv command on this page")


# The options a page names on their own, in inline code (`--level`), are options
# of the page's commands.
PAGE_COMMANDS = {
    "benchmarks.md": [("-m", "cyconv.bench"), ("-m", "cyconv.bench", "--train")],
    "training.md": [("-m", "cyconv.demo")],
    "dask.md": [("examples", "examples/dask_features.py")],
}


@needs_source_tree("docs/guide")
@pytest.mark.parametrize("name", sorted(PAGE_COMMANDS))
def test_options_named_in_prose_are_real(name):
    page = GUIDE / name
    known = set().union(*(_options(c) for c in PAGE_COMMANDS[name]))
    named = {m.split()[0] for m in _inline(page) if m.startswith("--")}
    assert named, f"{name} names no option"
    assert named <= known, f"{name}: not options of its commands: {sorted(named - known)}"


def test_the_options_the_benchmark_page_documents_exist():
    # The ones the issue names, whatever the page says.
    assert {"--level", "--peers", "--train", "--json", "--plot"} <= _options(("-m", "cyconv.bench"))
    assert {"--models", "--batches", "--no-torch"} <= _options(("-m", "cyconv.bench", "--train"))


# --------------------------------------------------------------------------
# Structure and links
# --------------------------------------------------------------------------

@needs_source_tree("docs/guide/index.md")
def test_every_guide_page_is_in_the_toctree():
    index = (GUIDE / "index.md").read_text()
    toctree = re.search(r"```\{toctree\}\n(.*?)```", index, re.S).group(1)
    entries = {line.strip() for line in toctree.splitlines()
               if line.strip() and not line.strip().startswith(":")}
    outside = {e for e in entries if e.startswith("../")}     # pages kept beside the guide
    assert entries - outside == {p.stem for p in PAGES}
    for entry in outside:
        assert (GUIDE / f"{entry}.md").exists(), f"toctree entry {entry} has no page"


@needs_source_tree("README.md", "docs/guide")
@pytest.mark.parametrize("page", DOCS, ids=_id)
def test_relative_links_and_images_resolve(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page)):
        if re.match(r"^[a-z]+://|^#|^mailto:", target):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name}: link to {target} does not resolve"


@needs_source_tree("docs/guide")
@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_cross_referenced_api_names_exist(page):
    for role, text, target in ROLE.findall(page.read_text()):
        name = (target or text).strip().lstrip("~")
        if role == "mod":
            importlib.import_module(name)
            continue
        module, _, attr = name.rpartition(".")
        obj = importlib.import_module(module)
        assert hasattr(obj, attr), f"{page.name}: {{{role}}}`{name}` does not exist"


@needs_source_tree("README.md")
def test_readme_is_a_front_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; the guide holds the rest"
    text = "\n".join(lines)
    assert "python -m sphinx -W -b html docs docs/_build/html" in text
    for page in PAGES:
        assert f"docs/guide/{page.name}" in text or False


@needs_source_tree("docs/guide/internals.md")
def test_the_micro_kernel_table_of_the_internals_page_is_levels_py():
    from cyconv import _levels

    def shown(value):
        if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            return ", ".join(value) or "none"
        if isinstance(value, tuple):
            return "(" + ", ".join(map(str, value)) + ")"
        return str(value)

    text = (GUIDE / "internals.md").read_text()
    header = re.search(r"^\| field \|(.*)\| what it sets \|$", text, re.M)
    names = [c.strip().strip("`") for c in header.group(1).split("|")]
    assert names == list(_levels.NAMES), "internals.md: the table's columns are not the levels"
    rows = re.findall(r"^\| `(\w+)` \|(.*)\|[^|]*\|$", text, re.M)
    fields = set(_levels.Level._fields) - {"name", "suffix", "features"}
    assert {f for f, _ in rows} == fields, "internals.md: the table's rows are not Level's fields"
    for field, cells in rows:
        page = [c.strip() for c in cells.split("|")]
        real = [shown(getattr(level, field)) for level in _levels.LEVELS]
        assert page == real, f"internals.md, row {field}: {page}, but cyconv/_levels.py has {real}"


def _signature_text(func):
    """``(x, w, b=None, *, stride=1, ...)``: the signature without annotations, as the tour shows it."""
    import inspect
    parts, star = [], False
    for param in inspect.signature(func).parameters.values():
        if param.kind is param.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        default = "" if param.default is param.empty else "=" + repr(param.default).replace("'", '"')
        parts.append(param.name + default)
    return "(" + ", ".join(parts) + ")"


@needs_source_tree("docs/guide/tour.md")
def test_the_signatures_of_the_tour_are_the_functions_signatures():
    import cyconv
    shown = re.findall(r"\{func\}`(\w+)(\([^`]*\)) <cyconv\.(\w+)>`", (GUIDE / "tour.md").read_text())
    assert len(shown) >= 15
    for name, text, target in shown:
        assert name == target
        real = _signature_text(getattr(cyconv, name))
        assert text == real, f"tour.md shows cyconv.{name}{text}; its signature is {real}"
