"""The student edition: every notebook with its worked solutions taken out and its checks kept.

    python -m tools.delivery student [--out build/student] [01 02 ...]

In the course notebooks an exercise is a markdown cell stating it, a code cell tagged ``solution``
with a worked answer, and a code cell tagged ``check`` that calls ``condgen_helpers.notebook.check``.
The student edition replaces each solution by a placeholder that names what the check reads,
removes the solution's outputs (and any saved widget state only they used), folds the check's
code and clears its stored verdict, and wraps the check in ``checking()`` so that running it
before answering prints a hint instead of a traceback. Every other cell is kept as it is.
"""

from __future__ import annotations

import ast
import copy
import textwrap
from pathlib import Path

from condgen_helpers.errors import CondgenError
from condgen_helpers.notebook import checking  # noqa: F401  (what CHECK_IMPORT imports; see there)

from . import build_main
from .cellflow import cell_names
from .course import notebooks

SOLUTION, CHECK = "solution", "check"
CHECK_IMPORT = "from condgen_helpers.notebook import checking\n\nwith checking():\n"
BANNER = ("**Student edition.** The worked solutions of the exercises are taken out. Below each "
          "exercise is an empty cell for your answer and a check (its code is folded; run it as it is) "
          "that prints \u2714 when your answer is right, or a hint when it is not yet.")


def tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def exercises(nb) -> list[tuple[int, int]]:
    """(solution cell, check cell) index pairs, in order. A solution must be followed by its check
    before the next solution starts."""
    pairs, pending = [], None
    for i, cell in enumerate(nb.cells):
        if SOLUTION in tags(cell):
            if pending is not None:
                raise CondgenError(f"solution cell {pending} has no check cell after it: tag one 'check'")
            pending = i
        elif CHECK in tags(cell) and pending is not None:
            pairs.append((pending, i))
            pending = None
    if pending is not None:
        raise CondgenError(f"solution cell {pending} has no check cell after it: tag one 'check'")
    return pairs


def placeholder(number: int, solution: str, check: str) -> str:
    """The code a solution cell is replaced with: it names what the check reads from the answer."""
    wanted = sorted(cell_names(solution).binds & cell_names(check).reads)
    looks_for = f" The check below looks for: {', '.join(wanted)}." if wanted else ""
    return f"# Exercise {number}: your answer here.{looks_for}\n"


def wrapped_check(source: str) -> str:
    """The check cell's code inside ``with checking():``; refuses code whose meaning indenting
    would change (a string literal spanning lines)."""
    body = source.strip("\n")
    wrapped = CHECK_IMPORT + textwrap.indent(body, "    ") + "\n"
    try:
        inner, plain = ast.parse(wrapped).body[-1].body, ast.parse(body)
    except SyntaxError:
        raise CondgenError("a check cell is not plain Python (no %magics there, please)") from None
    if ast.dump(ast.Module(inner, [])) != ast.dump(plain):
        raise CondgenError("a check cell has a string spanning lines, which indenting would change: "
                           "build that string from one-line pieces")
    return wrapped


def widget_ids(value) -> set[str]:
    """Widget model ids that an output, or a widget's saved state, refers to."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "model_id" and isinstance(v, str):
                found.add(v)
            found |= widget_ids(v)
    elif isinstance(value, list):
        for v in value:
            found |= widget_ids(v)
    elif isinstance(value, str) and value.startswith("IPY_MODEL_"):
        found.add(value[len("IPY_MODEL_"):])
    return found


def reachable_widgets(state: dict, outputs) -> set[str]:
    """Ids of the saved widget models that ``outputs`` display, with all the models they contain."""
    pending = [m for out in outputs for m in widget_ids(out)]
    seen: set[str] = set()
    while pending:
        m = pending.pop()
        if m in state and m not in seen:
            seen.add(m)
            pending += widget_ids(state[m])
    return seen


def prune_widget_state(nb) -> None:
    """Keep only the saved widget models that the remaining outputs display (and their children)."""
    bundle = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json")
    if not bundle:
        return
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    keep = reachable_widgets(bundle["state"], outputs)
    bundle["state"] = {k: v for k, v in bundle["state"].items() if k in keep}


def student_edition(nb):
    """A student copy of an executed notebook (the input is left unchanged)."""
    nb = copy.deepcopy(nb)
    pairs = exercises(nb)
    for number, (s, c) in enumerate(pairs, start=1):
        solution, check = nb.cells[s], nb.cells[c]
        solution.source = placeholder(number, solution.source, check.source)
        check.source = wrapped_check(check.source)
        for cell in (solution, check):
            cell.outputs = []
            cell.execution_count = None
        check.metadata.setdefault("jupyter", {})["source_hidden"] = True
    if pairs:
        import nbformat

        banner = nbformat.v4.new_markdown_cell(BANNER, metadata={"tags": ["student-edition"]})
        nb.cells.insert(1, banner)
    prune_widget_state(nb)
    return nb


def write_student_editions(out: Path, selected: list[str] | None = None) -> list[Path]:
    import nbformat

    paths = notebooks(selected)
    if not paths:
        raise CondgenError("no notebooks matched: name them by prefix, e.g. 01 02")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        target = out / path.name
        try:
            nbformat.write(student_edition(nb), target)
        except CondgenError as exc:
            raise CondgenError(f"{path.name}: {exc}") from None
        written.append(target)
        print(f"{target}: {len(exercises(nb))} exercises", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    return build_main("student", __doc__, "build/student", write_student_editions, argv)


if __name__ == "__main__":
    raise SystemExit(main())
