"""The package's layers: every import (top level, inside functions, and the registries' "module:name"
strings) points down or sideways, never up; models load no data; the installed package carries
no notebook tooling and finds nothing outside itself."""

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PACKAGE = "condgen_helpers"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
# lowest first; a module may import its own layer and the ones below it
LAYERS = [
    {"__init__", "errors", "files", "data", "real_digits", "reproducibility"},
    {"nn"},
    {"models"},
    {"training"},
    {"evaluation"},
    {"experiments"},
    {"notebook"},
    {"cli", "__main__"},
]
DELIVERY_TOOLING = ("nbformat", "nbclient", "nbconvert", "jinja2", "jupyter_client", "nbval")


def layer(module: str) -> int:
    """The layer of a package module, named by its dotted path inside the package."""
    top = module.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"module {module!r} belongs to no layer: add its folder to LAYERS")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, package module) for every import of the package in ``path``, wherever it stands,
    and every registry string such as "condgen_helpers.models.gan:GAN"."""
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    if module == "__init__":
        here = []
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.split(".")[0] == PACKAGE:
                target = node.module[len(PACKAGE) + 1:]
            else:
                continue
            for alias in node.names:  # "from . import losses" imports the module losses
                sub = f"{target}.{alias.name}" if target else alias.name
                found.append((node.lineno, sub if _exists(root, sub) else target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name[len(PACKAGE) + 1:]) for a in node.names
                      if a.name.startswith(PACKAGE + ".")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith(PACKAGE + ".") and ":" in node.value:
            found.append((node.lineno, node.value.split(":")[0][len(PACKAGE) + 1:]))
    return [(line, t) for line, t in found if t]


def _exists(root: Path, module: str) -> bool:
    p = root / module.replace(".", "/")
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def upward_imports(root: Path = ROOT) -> list[str]:
    """Every import that points to a higher layer, as 'file:line: a -> b'."""
    out = []
    for path in sorted(root.rglob("*.py")):
        source = module_name(path, root)
        for line, target in imports(path, root):
            if layer(target) > layer(source):
                out.append(f"{path.relative_to(root)}:{line}: {source} -> {target}")
    return out


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports() == []


@pytest.mark.parametrize("sneak", [
    "def _train_too(model, data):\n    from ..training import fit\n    return fit(model, data)\n",
    "from ..evaluation import load_classifier\n",
    'HOOK = "condgen_helpers.experiments.pipeline:train_and_evaluate"\n',
])
def test_an_upward_import_in_a_model_file_is_caught(tmp_path, sneak):
    """The check can fail: a copy of the package with one upward import added to a model file."""
    copy = tmp_path / PACKAGE
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    gan = copy / "models" / "gan.py"
    gan.write_text(gan.read_text() + "\n\n" + sneak)
    found = upward_imports(copy)
    assert len(found) == 1 and found[0].startswith(str(Path("models") / "gan.py")), found


def _model_files() -> list[Path]:
    return sorted((ROOT / "models").glob("*.py")) + sorted((ROOT / "nn").glob("*.py"))


def test_models_and_building_blocks_import_only_torch_and_load_no_data():
    allowed_third_party = {"torch"}
    for path in _model_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed_third_party, \
                    f"{path.name} imports {name}: models are built from torch and condgen_helpers.nn only"
            if isinstance(node, ast.Name) and node.id in ("load_dataset", "load_splits", "as_splits"):
                pytest.fail(f"{path.name} loads a dataset ({node.id}): a model is handed its data")
            if isinstance(node, ast.Attribute) and node.attr in ("load_dataset", "load_splits"):
                pytest.fail(f"{path.name} loads a dataset ({node.attr}): a model is handed its data")


def test_the_package_carries_no_notebook_tooling_and_finds_nothing_outside_itself():
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text()
        for tool in DELIVERY_TOOLING:
            assert f"import {tool}" not in text and f"from {tool}" not in text, \
                f"{path.relative_to(ROOT)} imports {tool}: delivery tooling lives in tools/delivery"
        for node in ast.walk(ast.parse(text)):
            # Path(__file__) may reach files inside the package (the shipped weights, its own
            # sources), never the repository around it: at most as many .parent as it is deep
            if isinstance(node, ast.Attribute) and node.attr == "parent":
                depth, inner = 0, node
                while isinstance(inner, ast.Attribute) and inner.attr in ("parent", "resolve") or \
                        isinstance(inner, ast.Call):
                    if isinstance(inner, ast.Attribute) and inner.attr == "parent":
                        depth += 1
                    inner = inner.value if isinstance(inner, ast.Attribute) else inner.func
                uses_file = any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(node))
                levels = len(path.relative_to(ROOT).parts)  # .parent of a top-level module is the package
                assert not uses_file or depth <= levels, \
                    f"{path.relative_to(ROOT)}:{node.lineno} reaches outside the package through __file__"


def test_a_wheel_installs_without_the_repository_and_trains(tmp_path):
    """Build a wheel from the checkout, install it (not editable) into an empty folder, and from
    outside the repository import every module and train and evaluate a model for one epoch."""
    repo = ROOT.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(repo)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("tools/")], "delivery tooling must stay out of the wheel"
    assert f"{PACKAGE}/evaluation/weights/digits_classifier_v2.pt" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = (
        "import importlib, pkgutil, sys\n"
        f"import {PACKAGE}\n"
        f"assert {PACKAGE}.__file__.startswith({str(site)!r}), {PACKAGE}.__file__\n"
        f"for m in pkgutil.walk_packages({PACKAGE}.__path__, '{PACKAGE}.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        f"bad = [t for t in {DELIVERY_TOOLING!r} if t in sys.modules]\n"
        "assert not bad, bad\n"
        f"from {PACKAGE}.cli import main\n"
        "sys.exit(main(['train', 'gan', '--epochs', '1', '--out', 'run', '--quiet', '--device', 'cpu']))\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "CONDGEN_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p.name for p in (work / "run").iterdir()} == {"model.pt", "metrics.json", "samples.png"}
