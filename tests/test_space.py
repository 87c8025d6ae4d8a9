"""The Hugging Face Space configuration agrees with the package's own."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_requirements_match_pyproject_core_and_app_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["app"])
    assert _requirements() == wanted


def test_front_matter_names_the_app_and_the_pinned_gradio():
    readme = (ROOT / "README.md").read_text()
    front = readme.split("---")[1]
    assert re.search(r"^sdk: gradio$", front, re.M)
    assert re.search(r"^app_file: demo/app.py$", front, re.M)
    version = re.search(r"^sdk_version: (\S+)$", front, re.M).group(1)
    assert f"gradio=={version}" in _requirements()
    assert "ffmpeg" in (ROOT / "packages.txt").read_text().split()
