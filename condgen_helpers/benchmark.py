"""Train each model with course defaults, measure it, and print a table against the course targets.

    python -m condgen_helpers.benchmark [gan cgan ...] [--seed 0]      (also `make benchmark`)

``train_and_evaluate`` is the one path from a model name to a trained model and its figures: the
``condgen train`` command, this benchmark and the README's results table all use it.
"""

from __future__ import annotations

import argparse
import operator
import sys
import time

from .errors import CondgenError

# model -> targets, each (figure, comparison, value); the issue tracker's targets, measured not assumed
TARGETS: dict[str, list[tuple[str, str, float]]] = {
    "gan": [("train_seconds", "<", 60), ("min_class_share", ">=", 0.05), ("classes_covered", ">=", 10)],
    "cgan": [("train_seconds", "<", 60), ("conditional_accuracy", ">=", 0.97), ("diversity", ">=", 0.85)],
    "acgan": [("train_seconds", "<", 60), ("conditional_accuracy", ">=", 0.98)],
    # likelihood models: the accuracy targets are of the decoder means (their draws are scored too)
    "vae": [("train_seconds", "<", 60), ("test_nll_x_nats", "<=", 96.0)],
    "cvae": [("train_seconds", "<", 60), ("test_nll_x_given_y_nats", "<=", 94.0),
             ("decoder_means.conditional_accuracy", ">=", 0.97), ("bayes_accuracy", ">=", 0.9)],
    "cvae-attr": [("thickness_corr", ">=", 0.8), ("slant_corr", ">=", 0.8),
                  ("decoder_means.conditional_accuracy", ">=", 0.95)],
    "cvae-complete": [("nll_gain_nats", ">", 0.0)],
    # a target value naming another model means that model's figure measured in the same run (the
    # benchmark trains it first if it was not asked for), "1.5*cgan" that figure times 1.5: cfm may
    # take at most half as long again as the cGAN
    "cfm": [("train_seconds", "<=", "1.5*cgan"), ("best_guidance.conditional_accuracy", ">=", 0.98),
            ("best_guidance.diversity", ">=", 0.8), ("guidance_sweep.0.classes_covered", ">=", 10)],
}
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def train_and_evaluate(name: str, dataset: str = "digits", epochs: int | None = None, seed: int = 0,
                       device: str = "auto", progress: bool = True):
    """Train model ``name`` on ``dataset`` and evaluate it; return (model, history, metrics)."""
    from .data import load_dataset
    from .evaluation import evaluate_model, real_floor
    from .models import model_class
    from .reproducibility import pick_device, seed_everything
    from .training import fit

    cls = model_class(name)
    data = load_dataset(dataset, "train")
    dev = pick_device(device)
    seed_everything(seed)
    model = cls(data.image_shape, data.n_classes, dev)
    epochs = cls.epochs_for(dataset) if epochs is None else epochs
    start = time.perf_counter()
    history = fit(model, data, epochs=epochs, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    figures = evaluate_model(model, dataset, seed=seed)
    # likelihood figures on the test split (the VAE family); nothing here trains another model
    extra = model.extra_metrics(dataset, seed=seed) if hasattr(model, "extra_metrics") else {}
    floor = real_floor(dataset, conditional=model.conditional)
    if model.guided:
        extra.update(guidance_figures(model, dataset, seed, floor))
    metrics = {"model": name, "dataset": dataset, "epochs": epochs, "seed": seed, "device": str(dev),
               "train_seconds": round(seconds, 2), "steps": model.steps,
               "final_losses": {k: v[-1] for k, v in history.items()},
               **figures, **extra, "floor": floor}
    return model, history, metrics


def guidance_figures(model, dataset: str, seed: int, floor: dict) -> dict:
    """A guided model at its plain conditional scale (g = 1, the main figures) and at its best g.
    The sweep that picks g samples with another seed (``seed + 1``) than the figures reported at
    the chosen g (``seed``), so the choice is not scored on the very samples it was made on."""
    from .evaluation import evaluate_model, guidance_sweep, pick_guidance

    sweep = guidance_sweep(model, dataset, seed=seed + 1)
    best = pick_guidance(sweep, floor)
    at_best = evaluate_model(model, dataset, seed=seed, guidance=best)
    return {"guidance": 1.0, "guidance_sweep": {f"{g:g}": f for g, f in sweep.items()},
            "best_guidance": {**at_best, "guidance": best}}


def _reference_value(model: str, figure: str, measured: dict[str, dict]) -> float:
    """Another model's figure, measured in this run (times from other runs or machines do not compare)."""
    if model not in measured:
        raise CondgenError(f"no {figure} of {model} to compare with: benchmark {model} in the same run")
    return float(measured[model][figure])


def check_targets(name: str, metrics: dict, measured: dict[str, dict] | None = None
                  ) -> list[tuple[str, str, float, float, bool]]:
    rows = []
    for figure, op, value in TARGETS.get(name, []):
        if isinstance(value, str):
            factor, _, model = value.rpartition("*")
            value = float(factor or 1) * _reference_value(model, figure, measured or {})
        got = metrics
        for part in figure.split("."):  # "decoder_means.conditional_accuracy" reaches into a sub-dict
            got = got.get(part, float("nan")) if isinstance(got, dict) else float("nan")
        rows.append((figure, op, value, got, bool(_OPS[op](got, value))))
    return rows


def main(argv: list[str] | None = None) -> int:
    from .models import MODELS

    p = argparse.ArgumentParser(prog="python -m condgen_helpers.benchmark")
    p.add_argument("models", nargs="*", help=f"default: all with targets ({', '.join(TARGETS)})")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    names = args.models or [m for m in TARGETS if m in MODELS]
    references = [v.rpartition("*")[2] for n in names for _, _, v in TARGETS.get(n, []) if isinstance(v, str)]
    names = [r for r in dict.fromkeys(references) if r not in names] + names  # measured first, same run
    print("| model | figure | target | measured | met |\n|---|---|---|---:|:---:|")
    failed = 0
    measured: dict[str, dict] = {}
    try:
        for name in names:
            _, _, metrics = train_and_evaluate(name, seed=args.seed, device="cpu", progress=False)
            measured[name] = metrics
            for figure, op, value, got, ok in check_targets(name, metrics, measured):
                failed += not ok
                print(f"| {name} | {figure} | {op} {value:g} | {got:.3f} | {'yes' if ok else 'NO'} |", flush=True)
    except CondgenError as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2
    print(f"\n{failed} target(s) missed" if failed else "\nall targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
