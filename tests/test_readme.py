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


def _shipped_ablation() -> dict:
    """assets/checkpoints/ablation.json as the reports `train.ablate.ablation_table` reads."""
    import json

    summary = json.loads((ROOT / "assets" / "checkpoints" / "ablation.json").read_text())
    return {
        variant: {
            "summary": {metric: figures[metric] for metric in ("wa", "ua", "f1")},
            "folds": [{"group": group, **fold} for group, fold in figures["folds"].items()],
        }
        for variant, figures in summary.items()
    }


def test_results_in_the_readme_and_model_card_are_the_shipped_ablation_figures():
    import numpy as np

    from train.ablate import ablation_table
    from train.settings import load_experiment

    reports = _shipped_ablation()
    for report in reports.values():  # the means are the folds' means
        uas = [fold["ua"] for fold in report["folds"]]
        assert report["summary"]["ua"]["mean"] == np.mean(uas)
    table = ablation_table(reports, load_experiment(str(ROOT / "train/configs/compact.yaml"), []))
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- results:start")[1].split("-->", 1)[1].split("<!-- results:end")[0]
    assert block.strip() == table.strip()
    assert table.strip() in (ROOT / "assets" / "checkpoints" / "ablation.md").read_text()
    card = (ROOT / "assets" / "checkpoints" / "README.md").read_text()
    names = {"full": "`compact`", **{v: f"`{v}`" for v in reports if v != "full"}}
    for variant, report in reports.items():  # the shipped checkpoints are fold g1
        g1 = next(fold for fold in report["folds"] if fold["group"] == "g1")
        row = next(line for line in card.splitlines() if line.startswith(f"| {names[variant]}"))
        assert f"{100 * g1['ua']:.1f}" in row, (variant, row)
