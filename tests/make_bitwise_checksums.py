"""Write the stored checksums of tests/test_bitwise.py: every case of
tests/bitwise_cases.py at every CPU level this machine runs.

Usage (with the interpreter whose cyconv is the build to record, from a
directory where ``import cyconv`` does not pick up a source tree)::

    cd /tmp && python /path/to/tests/make_bitwise_checksums.py OUT.json --commit <hash>

Output (JSON)::

    {"header": {commit, cyconv, numpy, python, machine, compiler, levels, ...},
     "inputs": {case: sha256 of its inputs},
     "<level>": {case: {output: {"sha256", "dtype", "shape", "nan", "finite_sum",
                                 ["sha256_nan_canonical"]}}}, ...}

``sha256`` is that of ``np.ascontiguousarray(a).tobytes()``. Regenerate only
deliberately: the file is the reference a kernel change is compared with
(see tests/test_bitwise.py).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bitwise_cases as bc  # noqa: E402


def _source_head() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def level_api():
    """The module that lists and switches CPU levels for conv and pool alike:
    cyconv._dispatch where it exists (after 974173a), else cyconv._conv."""
    try:
        from cyconv import _dispatch
        return _dispatch
    except ImportError:
        from cyconv import _conv
        return _conv


def build_info() -> dict:
    """Facts about the build and machine the checksums belong to."""
    import cyconv
    info = {
        "cyconv": cyconv.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "levels": list(level_api().cpu_levels()),
        "compiler": None,
    }
    try:
        from cyconv._config import config_info
        info["compiler"] = config_info()["build"]["compiler"]
    except Exception:  # pragma: no cover - diagnostics only
        pass
    return info


def checksums_at(level: str) -> dict:
    api = level_api()
    before = api.cpu_level()
    api.set_cpu_level(level)
    try:
        return {case.name: {name: bc.digest(a) for name, a in bc.run_case(case).items()}
                for case in bc.CASES}
    finally:
        api.set_cpu_level(before)


def thread_mismatches(per_case: dict) -> list:
    """(case, output) pairs whose @t1 and @t2 results differ."""
    bad = []
    for case, outs in per_case.items():
        for name, d in outs.items():
            if name.endswith("@t1"):
                other = outs.get(name[:-1] + "2")
                if other is not None and other["sha256"] != d["sha256"]:
                    bad.append((case, name[:-3]))
    return bad


def dumps(doc: dict) -> str:
    """JSON, indented by level and case, one line per output (reviewable diffs)."""
    def enc(obj, depth):
        if depth >= 3 or not isinstance(obj, dict) or not obj:
            return json.dumps(obj, sort_keys=True)
        pad = " " * (depth + 1)
        items = [f"{pad}{json.dumps(k)}: {enc(v, depth + 1)}" for k, v in sorted(obj.items())]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    return enc(doc, 0) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="JSON file to write")
    ap.add_argument("--commit", help="commit the installed cyconv was built from "
                    "(default: HEAD of the repository holding this script)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs per level; every run must give the same bytes (default 2)")
    args = ap.parse_args(argv)

    import cyconv
    levels = level_api().cpu_levels()
    commit = args.commit or _source_head()
    if args.commit is None:
        print(f"note: header commit {commit!r} is this repository's HEAD; it must be the "
              f"commit the installed cyconv was built from (else pass --commit)",
              file=sys.stderr)
    print(f"cyconv {cyconv.__version__} from {cyconv.__file__}", file=sys.stderr)
    print(f"{len(bc.CASES)} cases at levels {', '.join(levels)}", file=sys.stderr)

    data: dict = {}
    problems = []
    for level in levels:
        runs = [checksums_at(level) for _ in range(max(1, args.repeat))]
        for other in runs[1:]:
            if other != runs[0]:
                diff = sorted(c for c in runs[0] if runs[0][c] != other.get(c))
                problems.append(f"{level}: results differ between runs: {diff}")
        for case, name in thread_mismatches(runs[0]):
            problems.append(f"{level}: {case}: {name} differs between num_threads 1 and 2")
        data[level] = runs[0]
        n_out = sum(len(v) for v in runs[0].values())
        print(f"  {level}: {n_out} outputs", file=sys.stderr)

    header = {"commit": commit, **build_info(), "cases": len(bc.CASES),
              "generator": "tests/make_bitwise_checksums.py",
              "problems": problems}
    doc = {"header": header,
           "inputs": {case.name: bc.inputs_digest(case) for case in bc.CASES},
           **data}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps(doc))
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
