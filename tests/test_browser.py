"""The course as a reader sees it, in Debian's Chromium (headless, driven by Playwright, never a
downloaded browser): the site and the slides open from disk with every request outside the folder
refused, and the explorer widgets answer a slider in a real JupyterLab.

Skipped where /usr/bin/chromium is missing; ``.ci/run`` installs it so CI runs these tests.
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tools.delivery.cellflow import cell_names, needed_cells
from tools.delivery.course import NOTEBOOK_DIR, notebooks
from tools.delivery.student import reachable_widgets

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
NOTEBOOKS = notebooks()
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"

# raw TeX left in rendered markdown, outside code: $$...$$ or $...$
RAW_MATH = re.compile(r"\$\$|(?<![\\$])\$[^\s$][^$\n]*?(?<![\s\\])\$")


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A fresh Chromium profile; only the site's own files and loopback may be fetched."""
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=FLAGS, viewport={"width": 1200, "height": 900})
        context.blocked = []

        def only_local(route):
            url = route.request.url
            if url.startswith(("file://", "data:", "http://127.0.0.1:")):
                route.continue_()
            else:
                context.blocked.append(url)
                route.abort()

        context.route("**/*", only_local)
        yield context
        context.close()


def open_page(context, url: str):
    """Open ``url``; returns the page and a list that collects console errors, page errors and
    failed requests while it is open."""
    page = context.new_page()
    problems = []
    context.blocked.clear()
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.goto(url, wait_until="load")
    return page, problems


def wait_for_math(page) -> None:
    """Wait until MathJax has typeset everything it queued at start-up."""
    page.wait_for_function("() => window.MathJax && MathJax.Hub", timeout=30_000)
    page.evaluate("() => new Promise(done => MathJax.Hub.Queue(() => done(true)))")


def math_report(page) -> dict:
    return page.evaluate("""() => {
        const text = Array.from(document.querySelectorAll('.jp-RenderedMarkdown')).map(el => {
            const copy = el.cloneNode(true);
            copy.querySelectorAll('code, pre, script, .MathJax_CHTML, .MathJax_Preview').forEach(e => e.remove());
            return copy.textContent;
        }).join('\\n');
        return {text, typeset: document.querySelectorAll('.MathJax_CHTML').length,
                errors: document.querySelectorAll('.mjx-merror, .MathJax_Error').length};
    }""")


def expected_images(nb) -> int:
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if {"image/png", "image/jpeg"} & set(o.get("data", {})))


def saved_views(nb) -> list[str]:
    """Model ids of the widget outputs whose state is saved in the notebook."""
    state = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    return [o["data"][VIEW]["model_id"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if VIEW in o.get("data", {}) and o["data"][VIEW]["model_id"] in state]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tools.delivery.slides import write_slides
    from tools.delivery.website import write_site

    if not shutil.which("npm") and not (NOTEBOOK_DIR.parent / "build" / ".web-packages").is_dir():
        pytest.skip("npm is needed once to fetch reveal.js, MathJax and the widget renderer")
    out = tmp_path_factory.mktemp("pages")
    write_site(out / "site")
    write_slides(out / "slides")
    return out


class TestStaticPages:
    @pytest.mark.parametrize("stem", ["index", *(p.stem for p in NOTEBOOKS)])
    def test_site_page(self, built, chromium, stem):
        page, problems = open_page(chromium, (built / "site" / f"{stem}.html").as_uri())
        wait_for_math(page)
        if stem == "index":
            links = page.eval_on_selector_all("table a", "as => as.map(a => a.getAttribute('href'))")
            assert links == [f"{p.stem}.html" for p in NOTEBOOKS]
        else:
            nb = nbformat.read(NOTEBOOK_DIR / f"{stem}.ipynb", as_version=4)
            views = saved_views(nb)
            if views:  # the widget renderer draws every widget whose state was saved
                page.wait_for_function("""(n) => Array.from(document.querySelectorAll(
                    'script[type="application/vnd.jupyter.widget-view+json"]')).filter(s =>
                    s.parentElement.querySelector('.widget-subarea > *')).length >= n""", arg=len(views),
                    timeout=30_000)
            images = page.evaluate("""() => Array.from(document.images).map(i =>
                [i.complete && i.naturalWidth > 0, !!i.closest('.widget-subarea')])""")
            assert all(ok for ok, _ in images), f"{stem}: an image did not load"
            assert sum(not in_widget for _, in_widget in images) == expected_images(nb), f"{stem}: figures missing"
            math = math_report(page)
            if any("$" in c.source for c in nb.cells if c.cell_type == "markdown"):
                assert math["typeset"] > 0, f"{stem}: no math was typeset"
            raw = RAW_MATH.search(math["text"])
            assert not raw, f"{stem}: raw TeX left near {math['text'][max(0, raw.start() - 60):raw.end() + 20]!r}"
            assert math["errors"] == 0, f"{stem}: MathJax could not typeset {math['errors']} formulas"
            hrefs = page.eval_on_selector_all("nav.condgen a", "as => as.map(a => a.getAttribute('href'))")
            assert "index.html" in hrefs and all((built / "site" / h).exists() for h in hrefs)
            stems = [p.stem for p in NOTEBOOKS]
            i = stems.index(stem)
            neighbours = {f"{stems[j]}.html" for j in (i - 1, i + 1) if 0 <= j < len(stems)}
            assert {h for h in hrefs if h.endswith(".html") and h != "index.html"} == neighbours
        page.close()
        assert not problems, f"{stem}: {problems[:3]}"
        assert not chromium.blocked, f"{stem} asked for {chromium.blocked[:3]}"

    @pytest.mark.parametrize("stem", [p.stem for p in NOTEBOOKS])
    def test_slides(self, built, chromium, stem):
        page, problems = open_page(chromium, (built / "slides" / f"{stem}.slides.html").as_uri())
        page.wait_for_selector(".reveal.ready", timeout=30_000)
        wait_for_math(page)
        nb = nbformat.read(NOTEBOOK_DIR / f"{stem}.ipynb", as_version=4)
        slides = page.evaluate("document.querySelectorAll('.reveal .slides section section').length")
        headings = sum(1 for c in nb.cells if c.cell_type == "markdown" and c.source.lstrip().startswith("#"))
        assert slides >= headings, f"{stem}: {slides} slides for {headings} headings"
        math = math_report(page)
        assert not RAW_MATH.search(math["text"]) and math["errors"] == 0
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        for _ in range(3):  # moving on re-renders the math of the new slide
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(300)
        assert page.evaluate("location.hash") not in ("", "#/")
        page.close()
        assert not problems, f"{stem}: {problems[:3]}"
        assert not chromium.blocked, f"{stem} asked for {chromium.blocked[:3]}"


# --- JupyterLab -------------------------------------------------------------------------------

def explorers() -> list[tuple[Path, int]]:
    """(notebook, cell) for every stored output that shows a widget with a slider."""
    found = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        state = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
        for i, cell in enumerate(nb.cells):
            seen = reachable_widgets(state, [o for o in cell.get("outputs", []) if VIEW in o.get("data", {})])
            if any(state[m].get("model_name", "").endswith("SliderModel") for m in seen):
                found.append((path, i))
    return found


EXPLORERS = explorers()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="class")
def lab(tmp_path_factory):
    """JupyterLab on loopback with a token, its own config and data folders, no browser."""
    root, home = tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home")
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # figures must render inline
    # the kernels import the package from this checkout, whatever is installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NOTEBOOK_DIR.parent), env.get("PYTHONPATH")]))
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"))
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.allow_root=True",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         f"--LabApp.workspaces_dir={home / 'workspaces'}", f"--LabApp.user_settings_dir={home / 'settings'}"],
        env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {(home / 'lab.log').read_text()[-800:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not answer within 90 s")
                time.sleep(0.5)
        yield {"base": base, "token": token, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _shutdown_kernels(lab) -> None:
    headers = {"Authorization": f"token {lab['token']}"}
    with urllib.request.urlopen(urllib.request.Request(f"{lab['base']}/api/kernels", headers=headers)) as r:
        kernels = json.load(r)
    for k in kernels:
        urllib.request.urlopen(urllib.request.Request(f"{lab['base']}/api/kernels/{k['id']}",
                                                      headers=headers, method="DELETE"))


QUICK_EPOCHS = 20
# a fingerprint of the pixels' bytes of every image in a cell's output (an Image widget gets a
# fresh blob: address on every update, so comparing addresses would not do)
CELL_IMAGES = """async (cell) => {
    const prints = [];
    for (const img of cell.querySelectorAll('.jp-OutputArea img')) {
        const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        let h = 0;
        for (const b of bytes) h = (Math.imul(h, 31) + b) >>> 0;
        prints.push(bytes.length + ':' + h);
    }
    return prints.join(' ');
}"""


def wait_for_images(cell, differ_from: str | None = None, seconds: float = 60) -> str | None:
    """The cell's image fingerprint once it shows images (unlike ``differ_from``); None on timeout.
    Polled from Python: Playwright's wait_for_function does not await an async predicate."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = cell.evaluate(CELL_IMAGES)
        if now and now != differ_from:
            return now
        time.sleep(0.5)
    return None
KERNEL_IDLE = """(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const k = w && w.context && w.context.path === name && w.sessionContext.session
        && w.sessionContext.session.kernel;
    return !!k && k.status === 'idle'; }"""


# each explorer trains its models briefly inside JupyterLab: 15 to 22 s apiece on 2 cores, so these
# run with `make test-slow`, not in every CI run
@pytest.mark.slow
@pytest.mark.skipif(not EXPLORERS, reason="no notebook has a slider widget yet")
class TestJupyterLab:
    @pytest.mark.parametrize("path,cell", EXPLORERS, ids=[f"{p.stem}-cell{i}" for p, i in EXPLORERS])
    def test_slider_changes_the_figure(self, lab, chromium, tmp_path, path, cell):
        """Open the explorer cell and the cells its names come from as a notebook, run it, drag the
        slider, and the figure must change. The models train briefly (every ``*EPOCHS*`` setting at
        most QUICK_EPOCHS): this tests the widget in JupyterLab, the notebooks' figures are nbval's."""
        nb = nbformat.read(path, as_version=4)
        keep = needed_cells([c.source if c.cell_type == "code" else None for c in nb.cells], cell, follow=())
        code = [nbformat.v4.new_code_cell(nb.cells[i].source) for i in keep]
        for k, i in enumerate(keep):  # right after the settings cell
            epochs = sorted(n for n in cell_names(nb.cells[i].source).binds if n.isupper() and "EPOCHS" in n)
            if epochs:
                code.insert(k + 1, nbformat.v4.new_code_cell(
                    "\n".join(f"{n} = min({n}, {QUICK_EPOCHS})" for n in epochs)))
                break
        explore = nbformat.v4.new_notebook(cells=code, metadata={"kernelspec": nb.metadata.kernelspec})
        name = f"{path.stem}_explorer.ipynb"
        nbformat.write(explore, lab["root"] / name)
        page = chromium.new_page()
        try:
            # a workspace of its own, so no tab of an earlier test comes back
            page.goto(f"{lab['base']}/lab/workspaces/{path.stem}/tree/{name}?reset&token={lab['token']}")
            page.wait_for_function(KERNEL_IDLE, arg=name, timeout=120_000)
            cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell")
            for _ in range(3):  # the command acts on the notebook that has the focus: click, run, confirm
                cells.first.locator(".jp-InputPrompt").click()
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                try:
                    page.wait_for_function("(el) => /\\[(\\*|\\d+)\\]/.test(el.textContent)",
                                           arg=cells.first.locator(".jp-InputPrompt").element_handle(),
                                           timeout=20_000)
                    break
                except sync_api.TimeoutError:
                    continue
            else:
                pytest.fail(f"{path.name}: JupyterLab did not start running the notebook")
            target = cells.last
            handle = target.locator(".noUi-handle").first
            deadline, idle = time.monotonic() + 420, 0  # the explorer's model trains first
            while not handle.count() and idle < 5 and time.monotonic() < deadline:
                time.sleep(1)
                # execution stopped (a cell failed) when the kernel idles and no cell waits to run
                running = cells.locator(".jp-InputPrompt", has_text="[*]").count()
                idle = idle + 1 if not running and page.evaluate(KERNEL_IDLE, name) else 0
            if not handle.count():
                page.screenshot(path=str(tmp_path / "no-slider.png"))
                states = cells.evaluate_all("""els => els.map(e => e.querySelector('.jp-InputPrompt').textContent
                    + ' ' + Array.from(e.querySelectorAll('.jp-OutputArea-output')).map(o => o.textContent)
                    .join(' ').slice(-300))""")
                pytest.fail(f"{path.name} cell {cell}: no slider after running the notebook; cells: {states} "
                            f"(screenshot: {tmp_path / 'no-slider.png'})")
            before = wait_for_images(target)
            assert before, f"{path.name} cell {cell}: the explorer shows no figure"
            readout = target.locator(".widget-readout").first.inner_text()
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            track = target.locator(".noUi-target").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            to_x = track["x"] + track["width"] * (0.2 if box["x"] > track["x"] + track["width"] / 2 else 0.8)
            page.mouse.move(to_x, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            assert target.locator(".widget-readout").first.inner_text() != readout, "the slider did not move"
            # the output is cleared before the new figure arrives: wait for a figure that differs
            if wait_for_images(target, differ_from=before) is None:
                page.screenshot(path=str(tmp_path / "unchanged.png"))
                pytest.fail(f"{path.name} cell {cell}: moving the slider did not change the figure "
                            f"(screenshot: {tmp_path / 'unchanged.png'})")
        finally:
            page.close()
            _shutdown_kernels(lab)
