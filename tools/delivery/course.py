"""Run the course: execute every notebook headless in fresh kernels, render it, and summarise.

    python -m tools.delivery run [--out build] [--jobs 2] [01 02 ...]   # executed copies + HTML
    python -m tools.delivery refresh [--jobs 2] [01 02 ...]             # re-execute in place

``run`` never edits ``notebooks/``; ``refresh`` is how the stored outputs are brought up to date.
Each kernel uses one thread, so two notebooks run side by side on two cores. Every cell has a time
limit (``--cell-timeout``, default 300 s, or ``$CONDGEN_CELL_TIMEOUT``): a kernel that stops
answering fails its notebook in one line that names the notebook, the cell and what it was running,
instead of waiting for ever. A failed ``check()`` fails the notebook here (``CONDGEN_STRICT_CHECKS``).
Each run starts from an empty run store (:mod:`condgen_helpers.experiments.runs`): a model two notebooks train
the same way is trained once per run and loaded by the other notebook.
The exit status is 0 only when notebooks were found and every one of them ran to the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"  # tools/delivery/ -> the checkout
DEFAULT_CELL_TIMEOUT = 300

# The course's models are small: one thread per kernel is as fast as two and gives the same numbers
# as the test run (which also uses one), so stored outputs and CI agree. A failed exercise check
# raises in these runs (a learner running a notebook by hand gets the hint only).
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
              "CONDGEN_STRICT_CHECKS": "1"}


class NotebookFailed(RuntimeError):
    """A notebook stopped: ``str()`` is one line naming the notebook, the cell and the cause."""


def notebooks(selected: list[str] | None = None) -> list[Path]:
    paths = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if selected:
        paths = [p for p in paths if any(p.name.startswith(s) for s in selected)]
    return paths


def cell_timeout() -> int:
    return int(os.environ.get("CONDGEN_CELL_TIMEOUT", DEFAULT_CELL_TIMEOUT))


def _first_line(source: str) -> str:
    lines = [s.strip() for s in source.splitlines() if s.strip() and not s.strip().startswith("#")]
    line = lines[0] if lines else ""
    return line if len(line) <= 70 else line[:67] + "..."


def _last_output(cell) -> str:
    """The last line the cell printed (a progress bar's description says which training was running)."""
    for out in reversed(cell.get("outputs", [])):
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else text
        lines = [s.strip() for s in text.replace("\r", "\n").splitlines() if s.strip()]
        if lines:
            return lines[-1][:80]
    return ""


def _slowest_cell(nb) -> tuple[int, float] | None:
    """(index, seconds) of the cell that ran longest, from the timings nbclient records."""
    from datetime import datetime

    best = None
    for i, cell in enumerate(nb.cells):
        t = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in t and "shell.execute_reply" in t:
            seconds = (datetime.fromisoformat(t["shell.execute_reply"].replace("Z", "+00:00"))
                       - datetime.fromisoformat(t["iopub.execute_input"].replace("Z", "+00:00"))).total_seconds()
            if best is None or seconds > best[1]:
                best = (i, seconds)
    return best


def execute(path: Path, env: dict[str, str] | None = None, timeout: int | None = None,
            record_timing: bool = False):
    """Execute a notebook top to bottom in a fresh kernel with ``notebooks/`` as working folder.
    Returns (notebook, seconds); raises :class:`NotebookFailed` with a one-line reason."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    timeout = cell_timeout() if timeout is None else timeout
    nb = nbformat.read(path, as_version=4)
    env = {**KERNEL_ENV, **(env or {})}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    current = {"index": None}

    def on_start(cell, cell_index, **_):
        current["index"] = cell_index

    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=record_timing,
                                resources={"metadata": {"path": str(path.parent)}},
                                on_cell_start=on_start)
        start = time.perf_counter()
        try:
            client.execute()
        except (CellTimeoutError, DeadKernelError, CellExecutionError, TimeoutError, RuntimeError) as exc:
            i = current["index"]
            cell = nb.cells[i] if i is not None else {"source": "", "outputs": []}
            where = f"{path.name} cell {i}" if i is not None else path.name
            doing = _first_line(cell.get("source", ""))
            last = _last_output(cell)
            if isinstance(exc, CellTimeoutError | TimeoutError):
                why = f"no reply for {timeout} s (a hung kernel, or a cell slower than the limit)"
            elif isinstance(exc, DeadKernelError):
                why = "the kernel died"
            else:
                why = getattr(exc, "ename", type(exc).__name__) + ": " + (
                    str(getattr(exc, "evalue", "")) or str(exc)).strip().splitlines()[-1][:120]
            raise NotebookFailed(f"{where} ({doing!r}{', last printed ' + repr(last) if last else ''}): "
                                 f"{why}") from None
        seconds = time.perf_counter() - start
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb, seconds


def _run_one(path: Path, out: Path | None, env: dict[str, str], timeout: int) -> dict:
    """Worker: execute one notebook and write it (to OUT with HTML, or in place). Never raises."""
    import nbformat

    try:
        nb, seconds = execute(path, env, timeout, record_timing=out is not None)
    except NotebookFailed as exc:
        return {"name": path.stem, "ok": False, "error": str(exc)}
    except Exception as exc:  # the runner itself failed (no kernel, unreadable notebook): one line
        return {"name": path.stem, "ok": False, "error": f"{path.name}: {type(exc).__name__}: {exc}"}
    if out is None:
        nbformat.write(nb, path)
    else:
        from nbconvert import HTMLExporter

        slowest = _slowest_cell(nb)
        nbformat.write(nb, out / "notebooks" / path.name)
        html, _ = HTMLExporter().from_notebook_node(nb)
        (out / "html" / f"{path.stem}.html").write_text(html, encoding="utf-8")
        return {"name": path.stem, "ok": True, "seconds": seconds, "slowest": slowest}
    return {"name": path.stem, "ok": True, "seconds": seconds}


def _execute_all(paths: list[Path], out: Path | None, env: dict[str, str], jobs: int, timeout: int
                 ) -> list[dict]:
    results: dict[str, dict] = {}
    if jobs <= 1:
        for path in paths:
            print(f"executing {path.name} ...", flush=True)
            results[path.stem] = r = _run_one(path, out, env, timeout)
            print(f"  {path.name}: " + (f"done in {r['seconds']:.0f} s" if r["ok"] else "FAILED"), flush=True)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_run_one, p, out, env, timeout): p for p in paths}
            print(f"executing {len(paths)} notebook(s), {jobs} at a time ...", flush=True)
            for fut in as_completed(futures):
                r = fut.result()
                results[r["name"]] = r
                print(f"  {r['name']}: " + (f"done in {r['seconds']:.0f} s" if r["ok"] else "FAILED"),
                      flush=True)
    return [results[p.stem] for p in paths]


def reference_seconds() -> float:
    """Seconds this machine takes for a fixed workload (the course cGAN's first 100 epochs on the
    digits, one thread): the same notebooks take longer on a slower machine or a busier moment, so
    the summary gives their times beside it."""
    import torch

    from condgen_helpers.data import load_dataset
    from condgen_helpers.models import build_model
    from condgen_helpers.training import fit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load_dataset("digits", "train")
        torch.manual_seed(0)
        model = build_model("cgan", data.image_shape, data.n_classes)
        start = time.perf_counter()
        fit(model, data, epochs=100, seed=0, progress=False)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)


def _no_notebooks(selected) -> int:
    what = f" matching {' '.join(selected)}" if selected else ""
    print(f"course: error: no notebooks{what} in {NOTEBOOK_DIR.name}/ (run this from a checkout of the "
          "course repository)", file=sys.stderr)
    return 2


def _failures(rows: list[dict]) -> int:
    bad = [r for r in rows if not r["ok"]]
    for r in bad:
        print(f"course: error: {r['error']}", file=sys.stderr)
    return 1 if bad else 0


def run(out: Path, selected: list[str] | None = None, jobs: int = 2, timeout: int | None = None) -> int:
    paths = notebooks(selected)
    if not paths:
        return _no_notebooks(selected)
    out = out.resolve()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    (out / "html").mkdir(parents=True, exist_ok=True)
    figures_dir = out / "figures"
    # a fresh run store: every model is trained once in this run, and reused by later notebooks
    store = out / "run-store"
    shutil.rmtree(store, ignore_errors=True)
    env = {"CONDGEN_FIGURES_DIR": str(figures_dir), "CONDGEN_RUN_STORE": str(store)}
    reference = reference_seconds()
    start = time.perf_counter()
    rows = _execute_all(paths, out, env, jobs, cell_timeout() if timeout is None else timeout)
    wall = time.perf_counter() - start
    print("\n| notebook | seconds | slowest cell | key figures |\n|---|---:|---|---|")
    for r in rows:
        if not r["ok"]:
            print(f"| {r['name']} | failed | - | see the error below |")
            continue
        slow = f"cell {r['slowest'][0]}, {r['slowest'][1]:.0f} s" if r.get("slowest") else "-"
        fig_file = figures_dir / f"{r['name'].split('_')[0]}.json"
        figures = json.loads(fig_file.read_text()) if fig_file.exists() else {}
        shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        print(f"| {r['name']} | {r['seconds']:.0f} | {slow} | {shown} |")
    total = sum(r.get("seconds", 0.0) for r in rows)
    print(f"| **all** | {total:.0f} | - | {wall:.0f} s wall clock with {jobs} at a time; executed copies in "
          f"{out.name}/notebooks, HTML in {out.name}/html |")
    print(f"\nreference workload (the cGAN's first 100 epochs on digits, one thread): {reference:.1f} s "
          "on this machine before the run; times scale with it")
    return _failures(rows)


def refresh(selected: list[str] | None = None, jobs: int = 2, timeout: int | None = None) -> int:
    paths = notebooks(selected)
    if not paths:
        return _no_notebooks(selected)
    with tempfile.TemporaryDirectory(prefix="condgen-run-store-") as store:
        rows = _execute_all(paths, None, {"CONDGEN_RUN_STORE": store}, jobs,
                            cell_timeout() if timeout is None else timeout)
    return _failures(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.delivery")
    sub = p.add_subparsers(dest="command", required=True)
    jobs = min(2, os.cpu_count() or 1)
    r = sub.add_parser("run", help="execute all notebooks into OUT (never touches notebooks/)")
    r.add_argument("--out", type=Path, default=Path("build"))
    f = sub.add_parser("refresh", help="re-execute the stored notebooks in place")
    for q in (r, f):
        q.add_argument("--jobs", type=int, default=jobs, help=f"notebooks at a time (default {jobs})")
        q.add_argument("--cell-timeout", type=int, default=None,
                       help=f"seconds a cell may run (default {DEFAULT_CELL_TIMEOUT}, or $CONDGEN_CELL_TIMEOUT)")
        q.add_argument("only", nargs="*", help="notebook prefixes, e.g. 01 02 (default: all)")
    args = p.parse_args(argv)
    if args.command == "run":
        return run(args.out, args.only, args.jobs, args.cell_timeout)
    return refresh(args.only, args.jobs, args.cell_timeout)


if __name__ == "__main__":
    raise SystemExit(main())
