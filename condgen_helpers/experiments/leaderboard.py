"""The course leaderboard: every model trained with course defaults at several seeds, each figure
as mean +- sd over the seeds, beside the real-data floor and its interval, as one Markdown table.

    condgen leaderboard [--models gan,cgan] [--seeds 0,1,2] [--save FILE.json] [--readme README.md]

Training every model at three seeds takes about 20 minutes on one CPU thread, so
``make leaderboard`` stores the runs' figures in ``notebooks/results/leaderboard.json``; notebook 06
and the README table are both rendered from that file by :func:`summarise` and :func:`to_markdown`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from ..errors import CondgenError
from ..files import write_text

# the order of the course; names missing from the registry are skipped
COURSE_MODELS = ("gan", "cgan", "cgan-proj", "acgan", "tacgan", "vae", "cvae", "cvae-attr", "cfm")
SEEDS = (0, 1, 2)
RESULTS = Path("notebooks") / "results" / "leaderboard.json"

# (metrics key, column title, format, better): better is "low", "high" or None (closest to the floor)
COLUMNS = [
    ("train_seconds", "train s", "{:.0f}", None),
    ("guidance", "g", "{:.2f}", None),
    ("conditional_accuracy", "cond. acc.", "{:.3f}", "high"),
    ("fd", "FD (n={n})", "{:.1f}", "low"),
    ("intra_fd", "intra-FD", "{:.1f}", "low"),
    ("kid", "KID x100", "{:.2f}", "low"),
    ("intra_kid", "intra-KID x100", "{:.2f}", "low"),
    ("diversity", "diversity", "{:.2f}", None),
    ("precision", "precision", "{:.2f}", "high"),
    ("recall", "recall", "{:.2f}", "high"),
    ("nn_ratio", "NN ratio", "{:.2f}", None),
    ("copy_share", "copy share", "{:.2f}", None),
    ("classes_covered", "classes", "{:.0f}", "high"),
    ("test_nll_x_nats", "-log p(x) nats", "{:.1f}", "low"),
    ("test_nll_x_given_y_nats", "-log p(x \\| y) nats", "{:.1f}", "low"),
]
SCALE = {"kid": 100.0, "intra_kid": 100.0}
# figures a run stores under a key of its own, shown as a row of their own: key -> row suffix
SUB_ROWS = {"decoder_means": "decoder means", "decoder_modes": "decoder modes", "best_guidance": "best g"}
START, END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def _scalars(metrics: dict) -> dict:
    keys = {c[0] for c in COLUMNS}
    return {k: float(v) for k, v in metrics.items() if k in keys and isinstance(v, (int, float))}


def machine() -> dict:
    """What bit-for-bit reproduction needs besides the code: torch's version and the CPU's vector
    instructions (different instruction sets round some sums differently, and a GAN's training amplifies that)."""
    import torch

    return {"torch": torch.__version__.split("+")[0], "cpu": torch.backends.cpu.get_cpu_capability()}


def same_machine(result: dict) -> bool:
    """Whether stored runs were made with this torch on this kind of CPU, so a rerun here must give
    the same figures exactly (on another kind of CPU only the seed-to-seed band is comparable)."""
    return result.get("machine") == machine()


def run(models=None, dataset: str = "digits", seeds=SEEDS, progress: bool = False) -> dict:
    """Train and evaluate each model at each seed; return every run's figures and the floor.
    Likelihood models get a second row for their decoder means (``MODEL (decoder means)``), a guided
    model one for its best guidance scale (``MODEL (best g)``)."""
    from ..data import load_splits
    from ..evaluation import real_floor
    from ..models import MODELS
    from .pipeline import train_and_evaluate
    from .provenance import fingerprint

    names = list(models) if models else [m for m in COURSE_MODELS if m in MODELS]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise CondgenError(f"unknown model(s) {unknown}: use names from {', '.join(MODELS)}")
    if not seeds:
        raise CondgenError("give at least one seed")
    runs = []
    splits = load_splits(dataset)  # loaded once, handed to every run
    for name in names:
        for seed in seeds:
            model, _, m = train_and_evaluate(name, splits, seed=seed, device="cpu", progress=progress)
            kind = {"model": name, "seed": seed, "conditional": bool(model.conditional)}
            runs.append({**kind, **_scalars(m)})
            if "guidance_curve" in m:  # the dial's curve per seed (notebook 07 draws its band)
                runs[-1]["guidance_curve"] = {g: _scalars(f) for g, f in m["guidance_curve"].items()}
            for key, suffix in SUB_ROWS.items():
                if key in m:
                    runs.append({**kind, "model": f"{name} ({suffix})",
                                 **_scalars(m[key]), "train_seconds": m["train_seconds"]})
    floors = {c: real_floor(splits, conditional=c) for c in (True, False)}
    return {"dataset": dataset, "seeds": list(seeds), "n": int(floors[True]["n"]), "runs": runs,
            "machine": machine(),
            # what made each model's rows: a test fails once the code moves on (provenance.stale)
            "provenance": {name: fingerprint(name, dataset) for name in names},
            **{key: {**_scalars(f), "interval": f["interval"], "resplits": f["resplits"]}
               for key, f in (("floor", floors[True]), ("floor_unconditional", floors[False]))}}


def save(result: dict, path: str | Path) -> Path:
    """Write ``result`` as JSON, atomically (a temporary file, then a rename)."""
    return write_text(path, json.dumps(result, indent=1) + "\n")


def merge(stored: dict, new: dict) -> dict:
    """``stored`` with the runs of every model in ``new`` replaced by ``new``'s (the floor and the
    other models' runs kept), so one model can be added or re-run without retraining the rest."""
    if stored.get("dataset") != new.get("dataset"):
        raise CondgenError(f"cannot merge runs on {new.get('dataset')!r} into a leaderboard of "
                           f"{stored.get('dataset')!r}: save them to another file")
    base = {r["model"].split(" (")[0] for r in new["runs"]}
    kept = [r for r in stored["runs"] if r["model"].split(" (")[0] not in base]
    return {**stored, "seeds": sorted(set(stored.get("seeds", [])) | set(new["seeds"])),
            "runs": kept + new["runs"],
            # runs from two kinds of machine cannot all be reproduced exactly on either
            "machine": (stored.get("machine") if stored.get("machine") == new.get("machine")
                        else {"mixed": [stored.get("machine"), new.get("machine")]}),
            "provenance": {**{k: v for k, v in stored.get("provenance", {}).items() if k not in base},
                           **new.get("provenance", {})}}


def load(path: str | Path = RESULTS) -> dict:
    path = Path(path)
    if not path.exists():
        raise CondgenError(f"no stored leaderboard at {path}: create it with `make leaderboard`")
    return json.loads(path.read_text())


def summarise(result: dict) -> list[dict]:
    """One row per model: each figure's mean and sd over the seeds (``{key: (mean, sd, n_seeds)}``),
    then the floor's row (``{key: (median, lo, hi)}``)."""
    order: list[str] = []
    by_model: dict[str, list[dict]] = {}
    for r in result["runs"]:
        if r["model"] not in by_model:
            order.append(r["model"])
        by_model.setdefault(r["model"], []).append(r)
    rows = []
    for name in order:
        runs = by_model[name]
        row = {"model": name, "kind": "model", "seeds": len(runs),
               "conditional": runs[0].get("conditional", True)}
        for key, *_ in COLUMNS:
            values = [r[key] for r in runs if key in r and math.isfinite(r[key])]
            if values:
                mean = sum(values) / len(values)
                sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
                row[key] = (mean, sd, len(values))
        rows.append(row)
    for key, title, kind in (("floor", "real held-out images (floor)", "floor"),
                             ("floor_unconditional", "floor for unconditional models", "floor-unconditional")):
        if key not in result:
            continue
        floor = result[key]
        frow = {"model": title, "kind": kind}
        for col, *_ in COLUMNS:
            if col in floor:
                lo, hi = floor["interval"].get(col, (floor[col], floor[col]))
                frow[col] = (floor[col], lo, hi)
        rows.append(frow)
    return rows


def compare_with_floor(rows: list[dict]) -> dict[str, dict[str, str]]:
    """For each model and figure: "at" (mean inside the floor's interval), "beats" (better than the
    interval's better end) or "worse"; figures without a direction are "at" or "outside".
    Unconditional models are judged against the unconditional floor where there is one."""
    floors = {r["kind"]: r for r in rows if r["kind"].startswith("floor")}
    out = {}
    for r in rows:
        if r["kind"] != "model":
            continue
        floor = floors["floor"] if r.get("conditional", True) else floors.get("floor-unconditional", floors["floor"])
        verdicts = {}
        for key, _, _, better in COLUMNS:
            if key not in r or key not in floor or key == "train_seconds":
                continue
            mean, (_, lo, hi) = r[key][0], floor[key]
            if lo <= mean <= hi:
                verdicts[key] = "at"
            elif better is None:
                verdicts[key] = "outside"
            else:
                beats = mean < lo if better == "low" else mean > hi
                verdicts[key] = "beats" if beats else "worse"
        out[r["model"]] = verdicts
    return out


def _cell(key: str, value: tuple, fmt: str, kind: str, verdict: str | None) -> str:
    scale = SCALE.get(key, 1.0)
    if kind.startswith("floor"):
        centre, lo, hi = (v * scale for v in value)
        if lo == hi:
            return fmt.format(centre)
        return f"{fmt.format(centre)} [{fmt.format(lo)}, {fmt.format(hi)}]"
    mean, sd, n = value
    text = fmt.format(mean * scale) if n < 2 else f"{fmt.format(mean * scale)} ± {fmt.format(sd * scale)}"
    return text + {"at": " =", "beats": " !"}.get(verdict, "")


def to_markdown(rows: list[dict], n: int | None = None) -> str:
    """A Markdown table: models as mean ± sd over their seeds, the floor as median [2.5 %, 97.5 %]
    over its deals. " =" marks a mean inside the floor's interval ("at the floor"); " !" a mean
    better than the whole interval, which only copying or a figure the model games can explain (over-smooth
    decoder means get it on precision); a figure a model lacks is a dash."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    verdicts = compare_with_floor(rows)
    head = "| model | seeds | " + " | ".join(c[1].format(n=n if n else "?") for c in cols) + " |"
    rule = "|---|---:|" + "|".join("---:" for _ in cols) + "|"
    lines = [head, rule]
    for r in rows:
        cells = []
        for key, _, fmt, _ in cols:
            v = r.get(key)
            verdict = verdicts.get(r["model"], {}).get(key)
            cells.append("-" if v is None else _cell(key, v, fmt, r["kind"], verdict))
        seeds = str(r.get("seeds", "-"))
        lines.append(f"| {r['model']} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render(result: dict) -> str:
    return to_markdown(summarise(result), n=result.get("n"))


def update_readme(table: str, readme: Path) -> None:
    """Replace the text between the leaderboard markers in the README with ``table``."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise CondgenError(f"{readme} has no {START} ... {END} markers to put the table between")
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{table}{END}", text,
                 flags=re.S)
    write_text(readme, new)
