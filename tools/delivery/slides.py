"""Lecture slides: each executed notebook as a reveal.js deck that works offline.

    python -m tools.delivery slides [--out build/slides] [01 02 ...]

Slide boundaries come from the notebook's headings (``#``/``##`` start a slide, deeper ones a
sub-slide); a slide that would overflow the screen continues on a sub-slide (a heading keeps at
least the cell after it). Worked solutions go
to the speaker notes (press ``s``), checks are left out. A cell that already has ``slideshow``
metadata keeps it. The stored notebooks are never changed: the metadata is set on copies.
"""

from __future__ import annotations

import base64
import copy
import html
import struct
from pathlib import Path

from condgen_helpers.errors import CondgenError

from . import build_main, webassets
from .course import notebooks
from .student import CHECK, SOLUTION, tags

# reveal.js shows a 960 x 700 slide; at the template's 20 px text about 24 lines fit
SLIDE_LINES = 24
PX_PER_LINE = 30
CHARS_PER_LINE = 70
WIDGET_LINES = 6

# nbconvert's reveal template without mermaid (it would load from the internet, and no cell uses it)
TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js_mermaidjs %}{% endblock %}
"""


def _png_height(b64: str) -> int:
    """Pixel height of a base64 PNG, read from its header."""
    head = base64.b64decode(b64[:32])
    return struct.unpack(">I", head[20:24])[0] if head[:8] == b"\x89PNG\r\n\x1a\n" else 0


def cell_lines(cell) -> float:
    """Rough screen height of a cell in text lines, outputs included."""
    def text_lines(text: str) -> float:
        return sum(1 + len(line) // CHARS_PER_LINE for line in text.splitlines())

    lines = text_lines(cell.source)
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if "image/png" in data:
            lines += _png_height(data["image/png"]) / PX_PER_LINE
        elif "application/vnd.jupyter.widget-view+json" in data:
            lines += WIDGET_LINES
        elif "text/markdown" in data:
            lines += text_lines(data["text/markdown"])
        elif "text" in out:
            lines += text_lines(out["text"])
        elif "text/plain" in data:
            lines += text_lines(data["text/plain"])
    return lines


def heading_level(cell) -> int:
    """1 for '# ...', 2 for '## ...', ...; 0 when a markdown cell does not start with a heading."""
    if cell.cell_type != "markdown":
        return 0
    first = cell.source.lstrip().split("\n", 1)[0]
    hashes = len(first) - len(first.lstrip("#"))
    return hashes if 0 < hashes <= 6 and first[hashes:hashes + 1] == " " else 0


def with_slide_metadata(nb):
    """A copy of ``nb`` whose cells carry ``slideshow.slide_type`` (existing values are kept)."""
    nb = copy.deepcopy(nb)
    used, shown = 0.0, 0  # lines and cells on the current (sub-)slide
    for i, cell in enumerate(nb.cells):
        show = cell.metadata.setdefault("slideshow", {})
        level = heading_level(cell)
        if "slide_type" not in show:
            if SOLUTION in tags(cell):
                show["slide_type"] = "notes"
            elif CHECK in tags(cell):
                show["slide_type"] = "skip"
            elif i == 0 or level in (1, 2):
                show["slide_type"] = "slide"
            elif level >= 3 or (used + cell_lines(cell) > SLIDE_LINES and shown >= 2):
                show["slide_type"] = "subslide"
            else:
                show["slide_type"] = "-"
        if show["slide_type"] in ("slide", "subslide"):
            used, shown = 0.0, 0
        if show["slide_type"] in ("slide", "subslide", "-", "fragment"):
            used, shown = used + cell_lines(cell), shown + 1
    return nb


def exporter(static: str = "_static"):
    """nbconvert's SlidesExporter pointed at the local copies of reveal.js, MathJax and friends."""
    from jinja2 import DictLoader
    from nbconvert import SlidesExporter

    return SlidesExporter(
        extra_loaders=[DictLoader({"condgen_slides.html.j2": TEMPLATE})],
        template_file="condgen_slides.html.j2",
        reveal_url_prefix=f"{static}/{webassets.REVEAL}", reveal_theme="white", reveal_scroll=True,
        reveal_number="c/t", mathjax_url=f"{static}/{webassets.MATHJAX}", jquery_url=f"{static}/{webassets.JQUERY}",
        require_js_url=f"{static}/{webassets.REQUIRE}", widget_renderer_url=f"{static}/{webassets.WIDGETS}")


def title(nb, fallback: str) -> str:
    """The notebook's first heading, as plain text."""
    for cell in nb.cells:
        if heading_level(cell):
            return cell.source.lstrip().split("\n", 1)[0].lstrip("#").strip()
    return fallback


def write_slides(out: Path, selected: list[str] | None = None) -> list[Path]:
    """One ``NN_name.slides.html`` per notebook plus an index page, assets in ``out/_static``."""
    import nbformat

    paths = notebooks(selected)
    if not paths:
        raise CondgenError("no notebooks matched: name them by prefix, e.g. 01 02")
    out.mkdir(parents=True, exist_ok=True)
    webassets.install(out / "_static", ["requirejs", "mathjax", "html-manager", "reveal.js", "jquery"])
    ex = exporter()
    written, items = [], []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        name = title(nb, path.stem)
        body, _ = ex.from_notebook_node(with_slide_metadata(nb), resources={"metadata": {"name": name}})
        target = out / f"{path.stem}.slides.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
        items.append(f'<li><a href="{target.name}">{html.escape(name)}</a></li>')
        print(f"{target}", flush=True)
    (out / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>condgen lecture slides</title>'
        "</head><body><h1>condgen lecture slides</h1><p>Arrow keys move between slides, <kbd>s</kbd> "
        f"opens the speaker notes with the worked solutions.</p><ul>{''.join(items)}</ul></body></html>\n",
        encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    return build_main("slides", __doc__, "build/slides", write_slides, argv)


if __name__ == "__main__":
    raise SystemExit(main())
