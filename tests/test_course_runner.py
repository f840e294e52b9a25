"""The course runner fails fast and says where: a hung cell, a failed exercise check, or no notebooks
at all each end the run with a non-zero status and one line naming the notebook and the cell."""

import nbformat
import pytest

from condgen_helpers.notebook import CheckFailed, check
from tools.delivery import course


def _notebook(folder, name, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, folder / name)


@pytest.fixture
def course_dir(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(course, "NOTEBOOK_DIR", folder)
    return folder


def test_no_notebooks_is_an_error(course_dir, tmp_path, capsys):
    assert course.run(tmp_path / "build", jobs=1) == 2
    assert course.refresh(["99"], jobs=1) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("course: error: no notebooks") for line in err)


def test_a_hung_cell_fails_fast_in_one_line(course_dir, tmp_path, capsys):
    _notebook(course_dir, "01_fine.ipynb", "x = 1 + 1\nprint(x)")
    _notebook(course_dir, "02_hangs.ipynb", "import time", "print('training the cGAN')\ntime.sleep(60)")
    assert course.run(tmp_path / "build", jobs=2, timeout=4) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "02_hangs.ipynb cell 1" in lines[0] and "time.sleep(60)" not in lines[0]
    assert "print('training the cGAN')" in lines[0] and "no reply for 4 s" in lines[0]
    assert "| 01_fine |" in out and (tmp_path / "build" / "notebooks" / "01_fine.ipynb").exists()


def test_a_failed_check_fails_the_run_but_only_hints_to_a_learner(course_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CONDGEN_STRICT_CHECKS", raising=False)
    check(1 + 1 == 3, hint="look at the sum again")          # a learner: a hint, no error
    assert "look at the sum again" in capsys.readouterr().out
    monkeypatch.setenv("CONDGEN_STRICT_CHECKS", "1")
    with pytest.raises(CheckFailed, match="look at the sum again"):
        check(1 + 1 == 3, hint="look at the sum again")
    check(1 + 1 == 2)                                          # a right answer passes in strict runs
    with pytest.raises(TypeError, match="True/False"):
        check(object.__new__(_NoTruth))
    _notebook(course_dir, "03_exercise.ipynb",
              "from condgen_helpers.notebook import check", "answer = 3\ncheck(answer == 2, hint='count again')")
    assert course.run(tmp_path / "build", jobs=1, timeout=60) == 1
    err = capsys.readouterr().err
    assert "03_exercise.ipynb cell 1" in err and "CheckFailed" in err and "count again" in err


class _NoTruth:
    def __bool__(self):
        raise RuntimeError("ambiguous")
