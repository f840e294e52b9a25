"""The browser files that the slides and the course site load, copied next to the pages so they
work offline: require.js, MathJax 2 (the version nbconvert's templates configure), the Jupyter
widgets renderer (draws widgets from their saved state), reveal.js and jQuery (which the slides
use to let a tall slide scroll).

Each comes from a pinned npm package, fetched once with ``npm pack`` into a cache folder and
checked against its registry integrity hash; only the files the pages use are copied.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from condgen_helpers.errors import CondgenError

ROOT = Path(__file__).resolve().parents[2]  # tools/delivery/ -> the checkout
CACHE_ENV = "CONDGEN_WEB_CACHE"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str          # npm's sha512 of the tarball
    files: tuple[str, ...]  # glob patterns inside the package to copy
    folder: str             # where the files go under the pages' _static folder


PACKAGES = {
    "requirejs": Package(
        "requirejs", "2.3.8",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        ("require.js",), "requirejs"),
    "mathjax": Package(
        "mathjax", "2.7.9",
        "sha512-NOGEDTIM9+MrsqnjPEjVGNx4q0GQxqm61yQwSK+/5S59i26wId5IC5gNu9/bu8+CCVl5p9G2IHcAl/wJa+5+BQ==",
        ("MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "extensions/*.js",
         "extensions/TeX/**/*.js", "jax/input/TeX/**/*.js", "jax/output/CommonHTML/**/*.js",
         "jax/element/**/*.js", "fonts/HTML-CSS/TeX/woff/*.woff", "localization/en/**/*.js"),
        "mathjax"),
    "html-manager": Package(
        "@jupyter-widgets/html-manager", "1.0.15",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        ("dist/embed-amd.js", "dist/*.woff", "dist/*.woff2"),
        "html-manager"),
    "jquery": Package(
        "jquery", "3.7.1",
        "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
        ("dist/jquery.min.js",), "jquery"),
    "reveal.js": Package(
        "reveal.js", "5.2.1",
        "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRzFv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ==",
        ("dist/reveal.js", "dist/reveal.css", "dist/reset.css", "dist/theme/white.css",
         "dist/theme/fonts/source-sans-pro/*", "plugin/notes/notes.js"),
        "reveal.js"),
}

# the pages reference the files by these paths, relative to their _static folder
MATHJAX = "mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
REQUIRE = "requirejs/require.js"
WIDGETS = "html-manager/dist/embed-amd.js"
REVEAL = "reveal.js"
JQUERY = "jquery/dist/jquery.min.js"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, ROOT / "build" / ".web-packages"))


def _sri(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def fetch(pkg: Package) -> Path:
    """The unpacked package folder in the cache, fetched with ``npm pack`` the first time."""
    target = cache_dir() / f"{pkg.name.replace('/', '+')}@{pkg.version}"
    if target.is_dir():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise CondgenError(f"the slides and the site need {pkg.name} {pkg.version} from the npm registry, "
                           "fetched once with npm: install Node.js and npm (e.g. apt-get install npm) and rerun")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        run = subprocess.run([npm, "pack", f"{pkg.name}@{pkg.version}", "--json", "--pack-destination", tmp],
                             capture_output=True, text=True, cwd=tmp)
        if run.returncode != 0:
            raise CondgenError(f"npm could not fetch {pkg.name}@{pkg.version} (is the npm registry "
                               f"reachable?): {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ''}")
        tarball = Path(tmp) / json.loads(run.stdout)[0]["filename"]
        if _sri(tarball) != pkg.integrity:
            raise CondgenError(f"{tarball.name} does not match its pinned integrity hash: refusing to use it")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarball) as tar:
            tar.extractall(unpacked, filter="data")
        try:  # another process may have finished the same fetch meanwhile; either copy is identical
            (unpacked / "package").rename(target)
        except OSError:
            if not target.is_dir():
                raise
    return target


def install(static: Path, names: list[str]) -> None:
    """Copy the used files of the named packages into ``static`` (a page folder's ``_static``)."""
    for name in names:
        pkg = PACKAGES[name]
        src = fetch(pkg)
        dest = static / pkg.folder
        copied = 0
        for pattern in pkg.files:
            for f in src.glob(pattern):
                if f.is_file():
                    out = dest / f.relative_to(src)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, out)
                    copied += 1
        if not copied:
            raise CondgenError(f"no files of {pkg.name}@{pkg.version} matched; clear {cache_dir()} and rerun")
