"""The pinned pip requirements and the conda environment must list the same packages and versions,
and the README's test command must be what CI runs."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
            assert m, f"not an exact pin: {line!r}"
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_conda_environment_matches_pip_pins():
    pip = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    conda_pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert _pins(conda_pip) == pip


def test_torch_pair_is_the_one_that_installs_here():
    pip = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert pip["torch"] == "2.14.1" and pip["torchvision"] == "0.29.1"
    import torch
    import torchvision
    assert torch.__version__.split("+")[0] == pip["torch"]
    assert torchvision.__version__.split("+")[0] == pip["torchvision"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make course" in readme
    assert re.search(r"^make test$", ci, re.M)


def test_make_test_runs_every_notebook():
    """`make test` names the notebooks longest first (so the two workers finish together): a notebook
    missing from that list would never run in CI."""
    makefile = (ROOT / "Makefile").read_text()
    block = makefile.split("NOTEBOOKS_LONGEST_FIRST :=", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"\d\d_\w+\.ipynb", block))
    assert listed == {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert "$(NOTEBOOKS_LONGEST_FIRST)" in makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]


def test_the_kernel_is_the_one_without_the_run_all_freeze():
    """ipykernel 7.x freezes at random on "Run All" (ipykernel issue 1471); the course pins 6.x."""
    from importlib.metadata import version

    pins = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert pins["ipykernel"].startswith("6.") and version("ipykernel") == pins["ipykernel"]
