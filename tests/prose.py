"""Numbers in a notebook's prose, checked against what the notebook printed (tests/test_prose.py).

A number in a markdown cell passes when one of these holds:

1. the outputs of the code cells of its own section (a ``#`` or ``##`` heading to the next) show it,
   within the prose's rounding (``0.68`` matches a printed 0.682; ``68 %`` matches 0.682 or 68.2);
2. it has three or more significant digits and some output of the notebook shows it (a summary that
   quotes a figure from another section: three digits rarely match by chance);
3. the settings cell or a code cell of its section writes it (an epoch count, a threshold);
4. it is listed for the notebook in ``tests/prose_constants.json`` with why (a theory value such as
   2 log 2 = 1.39, a figure from a paper, a definition).

Not checked: years, whole numbers below 10 (a digit's name, a count of seeds), section and theorem
numbers, numbers inside code, and whole numbers inside LaTeX formulas (notation, not results).
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from pathlib import Path

CONSTANTS = Path(__file__).resolve().parent / "prose_constants.json"
CODE_BLOCK = re.compile(r"```.*?```", re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
HTML_TAG = re.compile(r"<[^>]+>")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)
NUMBER = re.compile(r"(?<![\w.\-/^_{\\])[-−]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s?%)?(?![\w]|\.\d)")
VALUE = re.compile(r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
NOT_RESULTS = re.compile(r"(?:sections?|notebooks?|theorem|eq\.|equation|step|steps|exercise|appendix|"
                         r"table|figure|cells?|chapter|part|row|column)\s*$", re.I)
HEADING = re.compile(r"^#{1,2} ", re.M)


@dataclass
class Finding:
    cell: int
    token: str
    context: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.token!r} in ...{self.context}..."


def _outputs(cell) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append("".join(out["text"]))
        for kind, value in out.get("data", {}).items():
            if kind.startswith("text/"):
                texts.append("".join(value))
    return texts


def values(texts) -> list[float]:
    found = set()
    for text in texts:
        for m in VALUE.finditer(text):
            s = m.group(0).replace(",", "").replace("−", "-")
            if any(ch.isdigit() for ch in s):
                try:
                    found.add(abs(float(s)))
                except ValueError:
                    pass
    return sorted(found)


def _near(pool: list[float], v: float, tol: float) -> bool:
    i = bisect.bisect_left(pool, v - tol)
    return i < len(pool) and pool[i] <= v + tol


def prose_numbers(markdown: str):
    """(token, value, decimals, is_percent, significant digits, context) for each checked number."""
    text = CODE_BLOCK.sub(" ", markdown)
    text = INLINE_CODE.sub(" ", text)
    text = LINK_TARGET.sub("]", text)
    text = HTML_TAG.sub(" ", text)
    # whole numbers inside formulas are notation; decimals there are results or constants
    text = MATH.sub(lambda m: m.group(0) if re.search(r"\d\.\d", m.group(0)) else " ", text)
    text = re.sub(r"^(#+\s*)\d+(\.\d+)*\.?", r"\1", text, flags=re.M)  # heading numbers
    for m in NUMBER.finditer(text):
        whole, frac, pct = m.groups()
        digits = whole.replace(",", "")
        if not frac and not pct and (1900 <= int(digits) <= 2099 or int(digits) < 10):
            continue  # a year, or a digit's name, a count of classes or seeds
        if NOT_RESULTS.search(text[max(0, m.start() - 12):m.start()]):
            continue
        value = float(digits + (frac or ""))
        decimals = len(frac) - 1 if frac else 0
        significant = len((digits + (frac or "")[1:]).lstrip("0")) or 1
        context = text[max(0, m.start() - 50):m.end() + 20].replace("\n", " ")
        yield m.group(0).strip(), value, decimals, bool(pct), significant, context


def sections(nb: dict) -> list[int]:
    out, current = [], 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and HEADING.search("".join(cell["source"])):
            current += 1
        out.append(current)
    return out


def constants(name: str) -> set[str]:
    table = json.loads(CONSTANTS.read_text()) if CONSTANTS.exists() else {}
    return set(table.get(name, {}))


def unmatched(nb: dict, name: str = "") -> list[Finding]:
    """Prose numbers that no output, setting or listed constant supports."""
    cells = nb["cells"]
    sec = sections(nb)
    code_cells = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    everywhere = values(t for i in code_cells for t in _outputs(cells[i]))
    settings = next((i for i in code_cells if "DATASET" in "".join(cells[i]["source"])), None)
    by_section: dict[int, list[str]] = {}
    code_by_section: dict[int, list[str]] = {}
    for i in code_cells:
        by_section.setdefault(sec[i], []).extend(_outputs(cells[i]))
        code_by_section.setdefault(sec[i], []).append("".join(cells[i]["source"]))
    pools = {k: values(v) for k, v in by_section.items()}
    code_pools = {k: values(v) for k, v in code_by_section.items()}
    setting_pool = values(["".join(cells[settings]["source"])]) if settings is not None else []
    listed = constants(name)
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for token, v, decimals, pct, significant, context in prose_numbers("".join(cell["source"])):
            if token.replace(" ", "") in {t.replace(" ", "") for t in listed}:
                continue
            tol = 0.5 * 10 ** -decimals + 1e-9
            candidates = [(v, tol)] + ([(v / 100, tol / 100)] if pct else [])
            own = pools.get(sec[i], [])
            ok = any(_near(own, c, t) for c, t in candidates)
            ok = ok or (significant >= 3 and any(_near(everywhere, c, t) for c, t in candidates))
            ok = ok or _near(setting_pool, v, 1e-9) or _near(code_pools.get(sec[i], []), v, 1e-9)
            if not ok:
                found.append(Finding(i, token, context))
    return found


def perturb(token: str) -> str:
    """The same number written with the same digits' count but about 37 % larger (for the test)."""
    m = re.fullmatch(r"([-−]?)([\d,]+)(\.\d+)?(\s?%)?", token)
    sign, whole, frac, pct = m.groups()
    decimals = len(frac) - 1 if frac else 0
    value = float(whole.replace(",", "") + (frac or "")) * 1.37 + 10 ** -decimals * 3
    return f"{sign}{value:.{decimals}f}{pct or ''}"


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())
