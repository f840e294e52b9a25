"""What a reader of the stored notebooks relies on: executed top to bottom, no errors, no machine
paths, the course's shape (settings, summary, exercises with solutions and checks)."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MACHINE_PATH = re.compile(r"/root/|/home/\w+|/work/|site-packages|dist-packages")


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def nb(request):
    return json.loads(request.param.read_text())


def _code(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("01_")


def test_stored_executed_in_order_without_errors(nb):
    counts = [c["execution_count"] for c in _code(nb)]
    assert None not in counts, "a code cell was never run: re-execute the notebook top to bottom"
    assert counts == list(range(1, len(counts) + 1)), "execution counts out of order: restart and run all"
    errors = [o for c in _code(nb) for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"stored error output: {errors[0]['ename']}"
    stderr = ["".join(o["text"]) for c in _code(nb) for o in c["outputs"]
              if o["output_type"] == "stream" and o["name"] == "stderr"]
    assert not [s for s in stderr if "Warning" in s], f"a warning is stored: {stderr[0][:200]}"


def test_no_paths_of_this_machine_in_outputs(nb):
    text = json.dumps([c["outputs"] for c in _code(nb)])
    text = re.sub(r'"image/png": "[^"]*"', "", text)
    m = MACHINE_PATH.search(text)
    assert not m, f"an output shows a machine path near {text[max(0, m.start() - 60):m.end() + 40]!r}"


def test_course_shape(nb):
    source = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert "condgen_helpers" in source
    assert "DATASET" in source and "DEVICE" in source, "settings cell missing"
    headings = [line for c in nb["cells"] if c["cell_type"] == "markdown"
                for line in "".join(c["source"]).splitlines() if line.startswith("#")]
    assert any("Summary" in h for h in headings) and any("Exercises" in h for h in headings)
    tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
    n_solutions, n_checks = sum("solution" in t for t in tags), sum("check" in t for t in tags)
    assert n_solutions >= 2 and n_checks >= n_solutions, "each exercise needs a solution and a check"
    outputs = json.dumps([c["outputs"] for c in nb["cells"] if "check" in c.get("metadata", {}).get("tags", [])])
    assert "\\u2718" not in outputs and "\u2718" not in outputs, "a stored check fails on its own solution"
