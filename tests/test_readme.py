"""The README's Python snippet runs as written."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_snippet_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"## Use it from Python\s+```python\n(.*?)```", readme, re.S).group(1)
    result = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "W2 =" in result.stdout
    assert (tmp_path / "my-checkpoint" / "model.safetensors").is_file()
