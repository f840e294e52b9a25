"""Train each model with course defaults, measure it, and print a table against the course targets.

    condgen benchmark [gan cgan ...] [--seed 0]      (also `make benchmark`)

Training and scoring go through ``pipeline.train_and_evaluate``, as ``condgen train`` and the
leaderboard do.
"""

from __future__ import annotations

import operator
import sys

from ..errors import CondgenError

# model -> targets, each (figure, comparison, value); the issue tracker's targets, measured not assumed
TARGETS: dict[str, list[tuple[str, str, float]]] = {
    "gan": [("train_seconds", "<", 60), ("min_class_share", ">=", 0.05), ("classes_covered", ">=", 10)],
    "cgan": [("train_seconds", "<", 60), ("conditional_accuracy", ">=", 0.97), ("diversity", ">=", 0.85)],
    "acgan": [("train_seconds", "<", 60), ("conditional_accuracy", ">=", 0.98)],
    # the twin classifier's fix of AC-GAN's bias: as accurate, and more varied within a class
    "tacgan": [("conditional_accuracy", ">=", 0.97), ("diversity", ">", "1*acgan")],
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
            if not isinstance(got, dict) or part not in got:
                known = sorted(k for k in (got if isinstance(got, dict) else {}) if not k.startswith("_"))
                raise CondgenError(f"benchmark target {figure!r} of {name}: {part!r} is not a figure of "
                                   f"this run ({', '.join(known)}): fix the target's name")
            got = got[part]
        rows.append((figure, op, value, got, bool(_OPS[op](got, value))))
    return rows


def run(names: list[str] | None = None, seed: int = 0) -> int:
    """Train and measure ``names`` (default: every model with targets), print the table; 0 when
    every target is met, 1 when one is missed."""
    from ..models import MODELS
    from . import pipeline

    names = names or [m for m in TARGETS if m in MODELS]
    references = [v.rpartition("*")[2] for n in names for _, _, v in TARGETS.get(n, []) if isinstance(v, str)]
    names = [r for r in dict.fromkeys(references) if r not in names] + names  # measured first, same run
    print("| model | figure | target | measured | met |\n|---|---|---|---:|:---:|")
    failed = 0
    measured: dict[str, dict] = {}
    for name in names:
        _, _, metrics = pipeline.train_and_evaluate(name, seed=seed, device="cpu", progress=False)
        measured[name] = metrics
        for figure, op, value, got, ok in check_targets(name, metrics, measured):
            failed += not ok
            print(f"| {name} | {figure} | {op} {value:g} | {got:.3f} | {'yes' if ok else 'NO'} |", flush=True)
    print(f"\n{failed} target(s) missed" if failed else "\nall targets met", file=sys.stdout)
    return 1 if failed else 0
