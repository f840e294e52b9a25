"""The ``condgen`` command (also ``python -m condgen_helpers``).

    condgen train MODEL --out DIR [--dataset digits] [--epochs N] [--seed S] [--device auto] [--overwrite]
    condgen sample DIR [--out FILE.npz] [--n N | --n-per-class K] [--labels 0,3,7] [--seed S]
                       [--guidance G] [--steps S]                     (guided models: cfm)
    condgen evaluate DIR [--seed S]                                   (default: the training seed)
    condgen benchmark [gan cgan ...] [--seed S]
    condgen leaderboard [--models gan,cgan] [--seeds 0,1,2] [--save FILE.json] [--out FILE.md] [--readme README.md]
    condgen leaderboard --from FILE.json [--out FILE.md] [--readme README.md]

Every mistake (unknown model or dataset, a bad value, a missing run folder, an existing run folder,
a file that is not our checkpoint, a label outside the classes) ends with exit status 2 and one
line saying what to do. Ctrl-C ends with one line and exit status 130; a run folder is written
only when training has finished, each file through a temporary file and a rename.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import CondgenError
from .files import atomic_write


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _labels(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"labels must be whole numbers separated by commas, got {text!r}") from None


def _guidance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


# the likelihood's ways to turn a code into an image (nn.likelihoods.DECODES; kept here so that
# `condgen --help` does not import torch; a test checks the two agree)
DECODES = ("mean", "mode", "draw")
GUIDANCE_HELP = ("guidance scale g (guided models such as cfm): v = v_uncond + g (v_cond - v_uncond); "
                 "0 unconditional, 1 plain conditional (default), >1 guided. Papers that write w "
                 "(Ho and Salimans 2022) mean g = 1 + w")


def build_parser() -> argparse.ArgumentParser:
    from .data import DATASETS
    from .experiments.benchmark import TARGETS
    from .models import MODELS
    from .reproducibility import DEVICES

    p = _Parser(prog="condgen", description="Train, sample and evaluate the models of the condgen course.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model and write model.pt, metrics.json, samples.png")
    t.add_argument("model", help=f"one of: {', '.join(MODELS)}")
    t.add_argument("--out", required=True, type=Path, help="run folder to write")
    t.add_argument("--dataset", default="digits", help=f"one of: {', '.join(DATASETS)} (default digits)")
    t.add_argument("--epochs", type=_count, default=None, help="passes over the data (default: the model's course default)")
    t.add_argument("--seed", type=_count, default=0)
    t.add_argument("--device", default="auto", help=f"one of: {', '.join(DEVICES)}")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder's files")

    s = sub.add_parser("sample", help="draw samples from a trained model into an .npz file")
    s.add_argument("run", type=Path, help="run folder written by `condgen train`")
    s.add_argument("--out", type=Path, help="FILE.npz to write (default: RUN/samples.npz)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--n", type=_positive, help="number of samples (default 100)")
    g.add_argument("--n-per-class", type=_positive, help="samples per class (conditional models)")
    s.add_argument("--labels", type=_labels, help="classes to sample, e.g. 0,3,7 (conditional models)")
    s.add_argument("--seed", type=_count, default=0)
    s.add_argument("--guidance", type=_guidance, help=GUIDANCE_HELP)
    s.add_argument("--steps", type=_positive, help="ODE steps when sampling a flow model (default: its own: 50 for the MLP, 20 for the 28x28 U-Net)")
    s.add_argument("--decode", choices=DECODES, default=None,
                   help="what a VAE-family model returns for each code: its decoder's mean (default), "
                        "mode (every pixel at its most probable value: sharp) or a pixel draw")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    e = sub.add_parser("evaluate", help="print a trained model's evaluation figures as JSON (the "
                                        "figures `condgen train` wrote to metrics.json)")
    e.add_argument("run", type=Path, help="run folder written by `condgen train`")
    e.add_argument("--seed", type=_count, default=None,
                   help="seed of the samples scored (default: the seed the model was trained with)")

    m = sub.add_parser("benchmark", help="train models with course defaults and print their figures "
                                         "against the course targets as a table")
    m.add_argument("models", nargs="*", help=f"default: all with targets ({', '.join(TARGETS)})")
    m.add_argument("--seed", type=_count, default=0)

    b = sub.add_parser("leaderboard", help="train every course model at several seeds and write the "
                                           "results as Markdown (mean ± sd over seeds, beside the floor)")
    b.add_argument("--models", type=lambda t: [m for m in t.split(",") if m],
                   help="comma-separated model names (default: every model of the course)")
    b.add_argument("--dataset", default="digits")
    b.add_argument("--seeds", type=_labels, default=[0, 1, 2], help="comma-separated seeds (default 0,1,2)")
    b.add_argument("--save", type=Path, help="also store every run's figures in this JSON file")
    b.add_argument("--from", dest="source", type=Path,
                   help="render a stored JSON file (from --save) instead of training")
    b.add_argument("--out", type=Path, help="Markdown file to write (default: print)")
    b.add_argument("--readme", type=Path, help="also put the table into this README between its markers")
    return p


def cmd_train(args) -> int:
    import torch

    from .experiments import pipeline
    from .notebook.plots import save_grid
    from .training import save_checkpoint

    outputs = ("model.pt", "metrics.json", "samples.png")
    existing = [f for f in outputs if (args.out / f).exists()]
    if existing and not args.overwrite:
        raise CondgenError(f"{args.out} already holds a run ({', '.join(existing)}): choose another "
                           "--out, or pass --overwrite to replace it")
    model, _, metrics = pipeline.train_and_evaluate(args.model, args.dataset, args.epochs, args.seed,
                                                    args.device, progress=not args.quiet)
    save_checkpoint(model, args.out / "model.pt", dataset=args.dataset, seed=args.seed,
                    epochs=metrics["epochs"])
    atomic_write(args.out / "metrics.json",
                 lambda p: p.write_text(json.dumps(metrics, indent=2, default=float) + "\n"))
    g = torch.Generator().manual_seed(args.seed)
    rows = None
    if model.conditional:
        labels = torch.arange(model.n_classes).repeat_interleave(10)
        images = model.sample(len(labels), labels=labels, generator=g)
        rows = class_names(args.dataset, model.n_classes)  # one row per class, named
    else:
        images = model.sample(100, generator=g)
    atomic_write(args.out / "samples.png",
                  lambda p: save_grid(images, p, nrow=10, title=f"{args.model} on {args.dataset}", row_labels=rows))
    print(f"trained {args.model} on {args.dataset} in {metrics['train_seconds']:.1f} s; wrote "
          f"{args.out}/model.pt, metrics.json, samples.png")
    if "best_guidance" in metrics:
        best = metrics["best_guidance"]
        print(f"guidance: conditional accuracy {metrics['conditional_accuracy']:.3f} at g = 1, "
              f"{best['conditional_accuracy']:.3f} at the best g = {best['guidance']:g} "
              f"(diversity {metrics['diversity']:.2f} and {best['diversity']:.2f} of real); sample "
              f"with `condgen sample {args.out} --guidance {best['guidance']:g}`")
    return 0


def class_names(dataset: str, n_classes: int) -> tuple[str, ...]:
    """The names of ``dataset``'s classes (Fashion-MNIST's garments, the digits otherwise)."""
    from .data import FASHION_CLASSES

    names = FASHION_CLASSES if dataset == "fashion-mnist" else tuple(str(i) for i in range(n_classes))
    return names if len(names) == n_classes else tuple(str(i) for i in range(n_classes))


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from .training import load_checkpoint

    out = args.out if args.out is not None else args.run / "samples.npz"
    if out.suffix != ".npz":
        raise CondgenError(f"--out must name an .npz file, got {out}")
    if out.exists() and not args.overwrite:
        raise CondgenError(f"{out} exists: choose another --out, or pass --overwrite to replace it")
    model, meta = load_checkpoint(args.run)
    g = torch.Generator().manual_seed(args.seed)
    if not model.conditional and (args.n_per_class or args.labels):
        raise CondgenError(f"model {model.name!r} is unconditional: use --n, not --n-per-class or --labels")
    guide = {k: v for k, v in (("guidance", args.guidance), ("steps", args.steps)) if v is not None}
    if guide and not model.guided:
        raise CondgenError(f"model {model.name!r} has no guidance or sampling steps: --guidance and "
                           "--steps are for guided models such as cfm")
    if args.decode is not None:
        if not model.samples_draws:
            raise CondgenError(f"model {model.name!r} has no decoder likelihood: --decode is for the VAE "
                               "family (vae, cvae, cvae-attr)")
        guide["decode"] = args.decode
    if model.conditional:
        classes = torch.tensor(args.labels if args.labels else range(model.n_classes))
        if args.n is not None:
            labels = classes[torch.randint(len(classes), (args.n,), generator=g)]
        else:
            labels = classes.repeat_interleave(args.n_per_class or 10)
        images = model.sample(len(labels), labels=labels, generator=g, **guide)
        arrays = {"images": images.numpy().astype(np.float32), "labels": labels.numpy().astype(np.int64),
                  "class_names": np.array(class_names(meta.get("dataset", "digits"), model.n_classes))}
    else:
        images = model.sample(args.n or 100, generator=g)
        arrays = {"images": images.numpy().astype(np.float32)}
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(path: Path) -> None:  # through a file object: given a name, numpy would append .npz
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(out, write)
    print(f"wrote {len(images)} samples to {out}"
          + (f" (guidance g = {guide['guidance']:g})" if "guidance" in guide else ""))
    return 0


def cmd_evaluate(args) -> int:
    from .experiments import pipeline
    from .training import load_checkpoint

    model, meta = load_checkpoint(args.run)
    dataset = meta.get("dataset", "digits")
    seed = args.seed if args.seed is not None else meta.get("extra", {}).get("seed", 0)
    out = {"model": meta["model"], "dataset": dataset, "seed": seed,
           **pipeline.evaluate(model, dataset, seed=seed)}
    print(json.dumps(out, indent=2, default=float))
    return 0


def cmd_benchmark(args) -> int:
    from .experiments import benchmark

    return benchmark.run(args.models, seed=args.seed)


def cmd_leaderboard(args) -> int:
    from .experiments import leaderboard as lb

    if args.source:
        result = lb.load(args.source)
    else:
        if not args.seeds:
            raise CondgenError("--seeds needs at least one seed, e.g. --seeds 0,1,2")
        result = lb.run(args.models, args.dataset, args.seeds, progress=True)
        if args.save:
            if args.models and args.save.exists():  # some models only: keep the others' stored runs
                result = lb.merge(lb.load(args.save), result)
            lb.save(result, args.save)
    table = lb.render(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    if args.readme:
        lb.update_readme(table, args.readme)
    print(table, end="")
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate,
            "benchmark": cmd_benchmark, "leaderboard": cmd_leaderboard}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CondgenError as exc:
        print(f"condgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("condgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
