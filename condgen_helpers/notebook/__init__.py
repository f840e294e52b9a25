"""What the notebooks show with: real code (``show_source``), key figures (``report``), exercise
checks (``check``, and ``checking`` in the student edition), and in sub-modules the plots and the
sliders (``plots``, ``widgets`` for the GANs and guidance, ``latent_widgets`` for the VAEs,
``attribute_widgets`` for the attribute model)."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FIGURES_ENV = "CONDGEN_FIGURES_DIR"


def show_source(obj, lines: tuple[int, int] | None = None) -> None:
    """Display the source of a package function or class, so the notebook shows the code that runs."""
    from IPython.display import Markdown, display

    src = inspect.getsource(obj)
    if lines is not None:
        src = "\n".join(src.splitlines()[lines[0]:lines[1]])
    module = getattr(obj, "__module__", "")
    display(Markdown(f"`{module}.{obj.__qualname__}`\n```python\n{src.rstrip()}\n```"))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def report(notebook: str, figures: dict) -> None:
    """Show a notebook's key figures as a table; when the course runner sets ``CONDGEN_FIGURES_DIR``,
    also write them to ``<dir>/<notebook>.json`` for its summary."""
    from IPython.display import Markdown, display

    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in figures.items())
    display(Markdown(f"**Key figures of this run**\n\n| figure | value |\n|---|---|\n{rows}"))
    out = os.environ.get(FIGURES_ENV)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{notebook}.json").write_text(json.dumps(figures, indent=2, default=float))


STRICT_ENV = "CONDGEN_STRICT_CHECKS"


class CheckFailed(AssertionError):
    """An exercise check that does not hold, raised only in strict runs (CI, ``make course``)."""


def check(condition: bool, correct: str = "correct", hint: str = "not yet") -> None:
    """An exercise check: prints 'correct', or a hint that says what to look at without the answer.

    A learner's wrong answer never stops the notebook: it gets the hint. Where ``CONDGEN_STRICT_CHECKS=1``
    (the test run and the course runner set it), a failed check raises :class:`CheckFailed` after the
    hint, so a stored solution that stops being right fails CI instead of printing a cross."""
    if not isinstance(condition, bool):
        try:
            condition = bool(condition)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"check() needs a True/False condition, got {type(condition).__name__}: "
                            "compare a number with a threshold, e.g. check(x > 0.5, ...)") from None
    print(f"\u2714 {correct}" if condition else f"\u2718 {hint}")
    if not condition and os.environ.get(STRICT_ENV) == "1":
        raise CheckFailed(f"exercise check failed: {hint} ({STRICT_ENV}=1 makes a failed check an error)")


@contextmanager
def checking() -> Iterator[None]:
    """An exercise check in a student edition (``with checking(): ...``): while the answer is
    missing or fails to run, print why (one line, starting with the cross the checks use) instead
    of a traceback, and the notebook goes on."""
    try:
        yield
    except NameError as exc:
        print(f"\u2718 not yet: `{exc.name}` is not defined: write your answer in the cell above and run it")
    except Exception as exc:  # a half-written answer: say what went wrong, keep the notebook running
        print(f"\u2718 not yet: checking your answer raised {type(exc).__name__}: {exc}")
