"""The course leaderboard: every model trained with course defaults on the same data and seed,
every figure beside the real-data floor, as one Markdown table.

    condgen leaderboard [--out FILE.md] [--models gan,cgan] [--readme README.md]
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import CondgenError

# the order of the course; names missing from the registry are skipped
COURSE_MODELS = ("gan", "cgan", "cgan-proj", "acgan", "vae", "cvae", "cvae-attr")

# (metrics key, column title, format, better): better is "low", "high" or "one" (closest to 1)
COLUMNS = [
    ("train_seconds", "train s", "{:.0f}", "low"),
    ("conditional_accuracy", "cond. acc.", "{:.3f}", "high"),
    ("fd", "FD", "{:.1f}", "low"),
    ("intra_fd", "intra-FD", "{:.1f}", "low"),
    ("diversity", "diversity", "{:.2f}", "one"),
    ("precision", "precision", "{:.2f}", "high"),
    ("recall", "recall", "{:.2f}", "high"),
    ("nn_ratio", "NN ratio", "{:.2f}", "one"),
    ("classes_covered", "classes", "{:d}", "high"),
    ("test_nelbo_nats", "test NELBO (nats)", "{:.1f}", "low"),
]
START, END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def leaderboard(models=None, dataset: str = "digits", seed: int = 0, progress: bool = False) -> list[dict]:
    """Train and evaluate each model; return one row of figures per model plus the real-data floor."""
    from .benchmark import train_and_evaluate
    from .models import MODELS

    names = list(models) if models else [m for m in COURSE_MODELS if m in MODELS]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise CondgenError(f"unknown model(s) {unknown}: use names from {', '.join(MODELS)}")
    rows = []
    for name in names:
        _, _, metrics = train_and_evaluate(name, dataset, seed=seed, device="cpu", progress=progress)
        rows.append({"model": name, **metrics})
    if rows:  # the floor of a conditional model: real images with their true labels
        from .evaluation import real_floor
        rows.append({"model": "real held-out images (floor)", **real_floor(dataset, conditional=True),
                     "train_seconds": None})
    return rows


def to_markdown(rows: list[dict]) -> str:
    """A Markdown table; a figure a model does not have is left as a dash."""
    cols = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    head = "| model | " + " | ".join(c[1] for c in cols) + " |"
    rule = "|---|" + "|".join("---:" for _ in cols) + "|"
    lines = [head, rule]
    for r in rows:
        cells = []
        for key, _, fmt, _ in cols:
            v = r.get(key)
            cells.append("-" if v is None else fmt.format(int(v) if fmt == "{:d}" else v))
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def update_readme(table: str, readme: Path) -> None:
    """Replace the text between the leaderboard markers in the README with ``table``."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise CondgenError(f"{readme} has no {START} ... {END} markers to put the table between")
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{table}{END}", text,
                 flags=re.S)
    readme.write_text(new)
