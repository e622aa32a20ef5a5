"""``python -m cyconv``: the version and the build/runtime report for bug reports."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0)."""
    parser = argparse.ArgumentParser(
        prog="python -m cyconv",
        description="Report cyconv's version and configuration (paste both into bug reports).",
    )
    parser.add_argument("--version", action="store_true", help="print 'cyconv <version>'")
    parser.add_argument("--config", action="store_true",
                        help="print the CPU level, OpenMP runtime, threads, compiler and flags "
                             "(as cyconv.show_config())")
    args = parser.parse_args(argv)
    if not (args.version or args.config):
        parser.print_help()
        return 0
    import cyconv
    if args.version:
        print(f"cyconv {cyconv.__version__}")
    if args.config:
        cyconv.show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
