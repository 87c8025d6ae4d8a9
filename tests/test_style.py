"""House rules that a reviewer would otherwise check by hand: lint, format, no unpickling."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["mgcma", "train", "demo", "tests", "benchmarks", "docs"]


def _ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is part of the [test] extra")
    return [found]


def test_ruff_lint_and_format_are_clean():
    lint = subprocess.run([*_ruff(), "check", *SOURCES], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]
    form = subprocess.run(
        [*_ruff(), "format", "--check", *SOURCES], cwd=ROOT, capture_output=True, text=True
    )
    assert form.returncode == 0, form.stdout[-3000:]


def test_nothing_unpickles():
    unsafe = []
    for path in (p for folder in SOURCES for p in (ROOT / folder).rglob("*.py")):
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                unsafe.append(f"{path.relative_to(ROOT)}: torch.load without weights_only=True")
        for name in ("pickle.load", "pickle.loads", "joblib.load", "cloudpickle.load"):
            if name + "(" in text and path.name != "test_style.py":
                unsafe.append(f"{path.relative_to(ROOT)}: {name}")
    assert not unsafe, unsafe


def test_no_library_app_or_test_imports_a_benchmark():
    """benchmarks/ print figures; what the tests need of the served app is demo/harness.py."""
    importing = re.compile(r"^\s*(from|import)\s+benchmarks\b", re.M)
    found = [
        str(path.relative_to(ROOT))
        for folder in ("mgcma", "train", "demo", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if importing.search(path.read_text())
    ]
    assert not found, found


def test_benchmarks_are_not_installed_with_the_package():
    import tomllib

    from setuptools import find_packages

    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = find_packages(where=str(ROOT), **wanted["packages"]["find"])
    assert {"mgcma", "train"} <= set(packages)
    assert not [p for p in packages if p.split(".")[0] in ("benchmarks", "demo", "tests")]
