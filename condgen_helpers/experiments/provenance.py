"""What produced a stored result: a fingerprint of the code and settings behind one model's runs.

A stored leaderboard row is only as current as the code that made it. ``fingerprint(name, dataset)``
hashes, for model ``name``:

- the source of every module of this package that training and scoring it can reach (the model's own
  module, the training loop, the evaluation and the pipeline, and everything they import from the
  package, including imports inside functions), parsed and with docstrings dropped, so comments,
  docstrings and formatting do not count but any change to what runs does;
- the model's default settings and epochs on ``dataset``, and the shipped classifier's weights;
- the torch version (another version may draw other random numbers).

``stale(stored)`` compares a stored leaderboard's fingerprints with today's and names what changed.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

PACKAGE = "condgen_helpers"
ROOT = Path(__file__).resolve().parent.parent
# the pipeline every stored run went through: train, evaluate (a model's declared figure sets and
# the modules they reach are added per model)
PIPELINE = ("experiments.pipeline",)


def _module_path(module: str) -> Path:
    """The file of package module ``module`` ("models.gan", or a sub-package such as "training")."""
    base = ROOT / module.replace(".", "/")
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _is_package(module: str) -> bool:
    return _module_path(module).name == "__init__.py"


def _imports(module: str) -> set[str]:
    """Package-internal modules ``module`` imports anywhere (top level or inside functions)."""
    tree = ast.parse(_module_path(module).read_text())
    found: set[str] = set()
    pkg_parts = module.split(".") if _is_package(module) else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)] if node.level > 1 else pkg_parts
                target = ".".join([*base, node.module] if node.module else base)
            elif node.module and node.module.startswith(PACKAGE + "."):
                target = node.module[len(PACKAGE) + 1:]
            else:
                continue
            names = [target] if target else []
            # "from . import losses" names a module, not a function
            names += [f"{target}.{a.name}" if target else a.name for a in node.names]
            found |= {n for n in names if n and _module_path(n).exists()}
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(PACKAGE + "."):
                    found.add(a.name[len(PACKAGE) + 1:])
    return {m for m in found if m and _module_path(m).exists()}


def reachable(modules) -> list[str]:
    """The package modules reachable from ``modules`` through imports, sorted."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(_imports(m) - seen)
    return sorted(seen)


def code_hash(module: str) -> str:
    """A hash of what the module runs: its syntax tree without docstrings."""
    tree = ast.parse(_module_path(module).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()[:12]


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else "missing"


def describe(name: str, dataset: str = "digits") -> dict:
    """The parts of model ``name``'s fingerprint: module hashes, settings, epochs, weights, torch."""
    import torch

    from ..evaluation import WEIGHTS_DIR, classifier_file
    from ..models import model_class, model_module
    from .pipeline import FIGURES

    cls = model_class(name)
    figures = [FIGURES[f].split(":")[0][len(PACKAGE) + 1:] for f in cls.figures]
    modules = reachable([model_module(name), *PIPELINE, *figures])
    return {"modules": {m: code_hash(m) for m in modules},
            "settings": json.loads(json.dumps(cls.default_settings())), "epochs": cls.epochs_for(dataset),
            "batch_size": cls.batch_size, "dataset": dataset,
            "classifier": _file_hash(WEIGHTS_DIR / classifier_file(dataset)),
            "torch": torch.__version__.split("+")[0]}


def digest(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(name: str, dataset: str = "digits") -> dict:
    """``{"fingerprint": hex, **describe(name, dataset)}``: what a stored run records."""
    parts = describe(name, dataset)
    return {"fingerprint": digest(parts), **parts}


def stale(stored: dict) -> dict[str, str]:
    """Model -> why its stored runs are out of date with today's code (empty when all are current).
    ``stored`` is a leaderboard as saved (``{"dataset", "runs", "provenance": {model: fingerprint}}``)."""
    dataset = stored.get("dataset", "digits")
    models = sorted({r["model"].split(" (")[0] for r in stored.get("runs", [])})
    provenance = stored.get("provenance", {})
    out = {}
    for name in models:
        old = provenance.get(name)
        if old is None:
            out[name] = "no fingerprint stored (made before results recorded their code)"
            continue
        new = fingerprint(name, dataset)
        if new["fingerprint"] == old.get("fingerprint"):
            continue
        changed = [m for m in sorted(set(new["modules"]) | set(old.get("modules", {})))
                   if new["modules"].get(m) != old.get("modules", {}).get(m)]
        changed += [k for k in ("settings", "epochs", "batch_size", "classifier", "torch")
                    if new.get(k) != old.get(k)]
        out[name] = "changed since: " + ", ".join(f"{c}.py" if c in new["modules"] or c in
                                                   old.get("modules", {}) else c for c in changed)
    return out
