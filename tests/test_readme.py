"""The README's Python snippet runs as written."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_snippet_runs():
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"## Use it from Python\s+```python\n(.*?)```", readme, re.S).group(1)
    result = subprocess.run(
        [sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].split()[0] in ("neutral", "happy", "angry", "sad")
    assert "W2 =" in lines[2] and "percentile" in lines[2]
