"""Stress the notebook kernels: execute notebooks many times through the course runner and through
nbval, and count hangs (a cell that exceeds the per-cell limit), failures and clean runs.

    .venv/bin/python tools/stress.py --rounds 3 [--notebooks 01 05] [--cell-timeout 300]

Each round runs the chosen notebooks once through ``python -m tools.delivery run`` (two at a time)
and once through ``pytest --nbval-lax``. The table at the end gives the count of each outcome and the
versions of the kernel stack; the exit status is 1 when any execution hung or failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--notebooks", nargs="*", default=["01", "05"])
    p.add_argument("--cell-timeout", type=int, default=300)
    args = p.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "CONDGEN_STRICT_CHECKS": "1", "MPLBACKEND": "Agg"}
    paths = [str(p.relative_to(ROOT)) for n in args.notebooks
             for p in sorted((ROOT / "notebooks").glob(f"{n}*.ipynb"))]
    counts = {"ok": 0, "hung": 0, "failed": 0}
    rows = []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "tools.delivery", "run", "--out", out,
                                   "--cell-timeout", str(args.cell_timeout), *args.notebooks],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
        hung = proc.stderr.count("no reply for")
        failed = proc.stderr.count("course: error:") - hung
        done = len(re.findall(r"done in \d+ s", proc.stdout))
        counts["ok"] += done
        counts["hung"] += hung
        counts["failed"] += failed
        rows.append(f"| {r + 1} | course runner | {done} | {hung} | {failed} | {time.perf_counter() - start:.0f} |")
        print(rows[-1], flush=True)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadscope",
                               "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={args.cell_timeout}",
                               *paths], cwd=ROOT, env=env, capture_output=True, text=True)
        text = proc.stdout + proc.stderr
        hung = len(re.findall(r"[Tt]imeout|timed out", text))
        failed_cells = proc.returncode != 0
        ok = len(paths) if not failed_cells else 0
        counts["ok"] += ok
        counts["hung"] += min(hung, len(paths))
        counts["failed"] += (len(paths) - ok) - min(hung, len(paths)) if failed_cells else 0
        rows.append(f"| {r + 1} | nbval | {ok} | {min(hung, len(paths))} | {len(paths) - ok - min(hung, len(paths))} "
                    f"| {time.perf_counter() - start:.0f} |")
        print(rows[-1], flush=True)
    stack = ", ".join(f"{m} {version(m)}" for m in ("ipykernel", "jupyter_client", "nbclient", "nbval", "pyzmq", "tornado"))
    print(f"\n{sum(counts.values())} notebook executions: {counts['ok']} ran to the end, "
          f"{counts['hung']} hung, {counts['failed']} failed otherwise ({stack})")
    return 0 if counts["hung"] == counts["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
