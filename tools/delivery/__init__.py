"""Course delivery: run the notebooks, and build the student edition, the slides and the site.

These tools live in the repository, not in the installed ``condgen_helpers`` package: they need
nbformat, nbclient and nbconvert, and they work on the checkout's ``notebooks/``. Run them from the
repository root as ``python -m tools.delivery COMMAND`` (``--help`` lists the commands).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def build_main(command: str, doc: str, default_out: str, build: Callable[[Path, list[str]], object],
               argv: list[str] | None = None, done: str | None = None) -> int:
    """The command line of a builder (student edition, slides, site): ``--out`` and notebook
    prefixes in, ``build(out, prefixes)`` run, a CondgenError printed as one line with status 2."""
    from condgen_helpers.errors import CondgenError

    p = argparse.ArgumentParser(prog=f"python -m tools.delivery {command}", description=doc.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(default_out))
    p.add_argument("only", nargs="*", help="notebook prefixes, e.g. 01 02 (default: all)")
    args = p.parse_args(argv)
    try:
        build(args.out, args.only)
    except CondgenError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    if done:
        print(done.format(out=args.out))
    return 0
