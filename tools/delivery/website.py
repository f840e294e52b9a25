"""The course website: the executed notebooks as static pages that work offline.

    python -m tools.delivery site [--out build/site] [01 02 ...]

``index.html`` shows the course map (the table of README.md); every notebook page has links to the
previous and next notebook, the map, and downloads of the notebook and its student edition.
Math is typeset by a local MathJax and widgets are drawn from the state saved in the notebook,
so the folder can be opened from disk or served as it is, with no internet.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from condgen_helpers.errors import CondgenError

from . import build_main, webassets
from .course import NOTEBOOK_DIR, notebooks
from .slides import title
from .student import student_edition

README = NOTEBOOK_DIR.parent / "README.md"
STATIC = "_static"

# nbconvert's lab template plus navigation, without mermaid (no cell uses it, and it would load
# from the internet); every URL points into the site folder
TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js_mermaidjs %}{% endblock %}
{% block extra_css %}
<style>
nav.condgen { display: flex; flex-wrap: wrap; gap: 0.4em 1.5em; justify-content: space-between;
  font-family: var(--jp-ui-font-family); font-size: 14px; padding: 0.6em 1em; margin: 0 0 1em 0;
  background: var(--jp-layout-color2); border-radius: 4px; }
nav.condgen a { text-decoration: none; color: var(--jp-brand-color1); }
nav.condgen .downloads { display: flex; gap: 1.2em; }
</style>
{% endblock extra_css %}
{% block body_header %}{{ super() }}{{ resources.condgen_nav | default('') }}{% endblock body_header %}
{% block body_footer %}{{ resources.condgen_nav | default('') }}{{ super() }}{% endblock body_footer %}
"""


def exporter():
    """nbconvert's HTMLExporter pointed at the site's local MathJax, require.js and widget renderer."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab", extra_loaders=[DictLoader({"condgen_page.html.j2": TEMPLATE})],
        template_file="condgen_page.html.j2", mathjax_url=f"{STATIC}/{webassets.MATHJAX}",
        require_js_url=f"{STATIC}/{webassets.REQUIRE}", widget_renderer_url=f"{STATIC}/{webassets.WIDGETS}")


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def navigation(pages: list[tuple[str, str]], i: int) -> str:
    """The bar on page ``i`` of ``pages`` [(file stem, title)]."""
    prev = _link(f"{pages[i - 1][0]}.html", f"\u2190 {pages[i - 1][1]}") if i > 0 else "<span></span>"
    after = _link(f"{pages[i + 1][0]}.html", f"{pages[i + 1][1]} \u2192") if i + 1 < len(pages) else "<span></span>"
    stem = pages[i][0]
    downloads = (f'<span class="downloads">{_link("index.html", "course map")}'
                 f'{_link(f"notebooks/{stem}.ipynb", "notebook (.ipynb)")}'
                 f'{_link(f"student/{stem}.ipynb", "student edition (.ipynb)")}</span>')
    return f'<nav class="condgen">{prev}{downloads}{after}</nav>'


def course_map(readme: str, built: set[str]) -> tuple[str, str, str]:
    """(title, introduction, table) from README.md, in markdown; the table's links to notebooks
    point at their pages, and a notebook that is not built loses its link."""
    lines = readme.splitlines()
    heading = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    table_start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if heading is None or table_start is None:
        raise CondgenError(f"{README.name} needs a '# title' and the course map as a markdown table")
    intro_end = next((i for i in range(heading + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    table_end = next((i for i in range(table_start, len(lines)) if not lines[i].startswith("|")), len(lines))

    def relink(m: re.Match) -> str:
        text, stem = m.group(1), Path(m.group(2)).stem
        return f"[{text}]({stem}.html)" if stem in built else text

    table = "\n".join(re.sub(r"\[([^\]]+)\]\((?:\./)?notebooks/([^)]+\.ipynb)\)", relink, line)
                      for line in lines[table_start:table_end])
    intro = "\n".join(lines[heading + 1:intro_end]).strip()
    return lines[heading][2:].strip(), intro, table


def landing_page(readme: str, built: set[str]):
    import nbformat

    name, intro, table = course_map(readme, built)
    cells = [f"# {name}\n\n{intro}", f"## The course map\n\n{table}",
             "## How to use this site\n\nEach page is one notebook, executed, with its figures and "
             "key numbers. Every page links to the notebook itself, to run it in JupyterLab, and to "
             "its *student edition*: the same notebook with the worked solutions of the exercises "
             "taken out and the checks kept, so you can try them yourself."]
    return name, nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(c) for c in cells])


def require_executed(nb, path: Path) -> None:
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    if code and not any(c.outputs for c in code):
        raise CondgenError(f"{path.name} has no stored outputs: run `make notebooks` first")


def write_site(out: Path, selected: list[str] | None = None) -> list[Path]:
    """Write the site into ``out``: index.html, one page per notebook, downloads, ``_static``."""
    import nbformat

    paths = notebooks(selected)
    if not paths:
        raise CondgenError("no notebooks matched: name them by prefix, e.g. 01 02")
    books = {p: nbformat.read(p, as_version=4) for p in paths}
    for path, nb in books.items():
        require_executed(nb, path)
    out.mkdir(parents=True, exist_ok=True)
    webassets.install(out / STATIC, ["requirejs", "mathjax", "html-manager"])
    for folder in ("notebooks", "student"):
        (out / folder).mkdir(exist_ok=True)
    pages = [(p.stem, title(nb, p.stem)) for p, nb in books.items()]
    ex = exporter()
    written = []
    for i, (path, nb) in enumerate(books.items()):
        body, _ = ex.from_notebook_node(nb, resources={"metadata": {"name": pages[i][1]},
                                                       "condgen_nav": navigation(pages, i)})
        target = out / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        shutil.copyfile(path, out / "notebooks" / path.name)
        try:
            nbformat.write(student_edition(nb), out / "student" / path.name)
        except CondgenError as exc:
            raise CondgenError(f"{path.name}: {exc}") from None
        written.append(target)
        print(target, flush=True)
    name, landing = landing_page(README.read_text(encoding="utf-8"), {p.stem for p in paths})
    body, _ = ex.from_notebook_node(landing, resources={"metadata": {"name": name}})
    (out / "index.html").write_text(body, encoding="utf-8")
    written.insert(0, out / "index.html")
    return written


def main(argv: list[str] | None = None) -> int:
    return build_main("site", __doc__, "build/site", write_site, argv, done='open {out}/index.html in a browser')


if __name__ == "__main__":
    raise SystemExit(main())
