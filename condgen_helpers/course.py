"""Run the course: execute every notebook headless, in order, and render it.

    python -m condgen_helpers.course run [--out build]     # executed copies + HTML, then a summary
    python -m condgen_helpers.course refresh                # re-execute the stored notebooks in place

``run`` never edits ``notebooks/``; ``refresh`` is how the stored outputs are brought up to date.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def notebooks(selected: list[str] | None = None) -> list[Path]:
    paths = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if selected:
        paths = [p for p in paths if any(p.name.startswith(s) for s in selected)]
    return paths


# The course's models are small: one thread per kernel is as fast as two and gives the same numbers
# as the test run (which also uses one), so stored outputs and CI agree.
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def execute(path: Path, env: dict[str, str] | None = None, timeout: int = 1200):
    """Execute a notebook top to bottom in a fresh kernel with ``notebooks/`` as working folder."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {**KERNEL_ENV, **(env or {})}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb, seconds


def run(out: Path, selected: list[str] | None = None) -> int:
    import nbformat
    from nbconvert import HTMLExporter

    out = out.resolve()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    (out / "html").mkdir(parents=True, exist_ok=True)
    figures_dir = out / "figures"
    rows = []
    for path in notebooks(selected):
        print(f"executing {path.name} ...", flush=True)
        nb, seconds = execute(path, {"CONDGEN_FIGURES_DIR": str(figures_dir)})
        nbformat.write(nb, out / "notebooks" / path.name)
        html, _ = HTMLExporter().from_notebook_node(nb)
        (out / "html" / f"{path.stem}.html").write_text(html, encoding="utf-8")
        fig_file = figures_dir / f"{path.stem.split('_')[0]}.json"
        figures = json.loads(fig_file.read_text()) if fig_file.exists() else {}
        rows.append((path.stem, seconds, figures))
        print(f"  done in {seconds:.0f} s", flush=True)
    total = sum(r[1] for r in rows)
    print("\n| notebook | seconds | key figures |\n|---|---:|---|")
    for name, seconds, figures in rows:
        shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        print(f"| {name} | {seconds:.0f} | {shown} |")
    print(f"| **all** | {total:.0f} | executed copies in {out / 'notebooks'}, HTML in {out / 'html'} |")
    return 0


def refresh(selected: list[str] | None = None) -> int:
    import nbformat

    for path in notebooks(selected):
        print(f"re-executing {path.name} in place ...", flush=True)
        nb, seconds = execute(path)
        nbformat.write(nb, path)
        print(f"  done in {seconds:.0f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m condgen_helpers.course")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute all notebooks into OUT (never touches notebooks/)")
    r.add_argument("--out", type=Path, default=Path("build"))
    r.add_argument("only", nargs="*", help="notebook prefixes, e.g. 01 02 (default: all)")
    f = sub.add_parser("refresh", help="re-execute the stored notebooks in place")
    f.add_argument("only", nargs="*")
    args = p.parse_args(argv)
    try:
        return run(args.out, args.only) if args.command == "run" else refresh(args.only)
    except Exception as exc:  # a failing cell: name the notebook and the error in one line
        print(f"course: error: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
