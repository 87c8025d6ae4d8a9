"""The README's Python snippet runs as written."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def _examples() -> dict[str, str]:
    rows = (ROOT / "assets" / "examples" / "examples.jsonl").read_text().splitlines()
    return {json.loads(r)["audio"]: json.loads(r)["text"] for r in rows if r.strip()}


def test_readme_snippets_pair_each_clip_with_the_sentence_it_says():
    readme = (ROOT / "README.md").read_text()
    examples = _examples()
    for heading in ("## Use it from Python", "From Python, against a running app"):
        snippet = re.search(re.escape(heading) + r".*?```python\n(.*?)```", readme, re.S).group(1)
        clip = re.search(r'"assets/examples/([^"]+)"', snippet).group(1)
        sentence = re.search(r'"([A-Z][^"]+[a-z.])"', snippet.split(clip, 1)[1]).group(1)
        assert examples[clip].rstrip(".") == sentence.rstrip("."), (heading, clip, sentence)


def test_readme_says_where_its_port_and_its_virtual_environment_come_from():
    readme = (ROOT / "README.md").read_text()
    client = readme.split("From Python, against a running app", 1)[1].split("```", 1)[0]
    assert "7860" in client and "--port" in client and "GRADIO_SERVER_PORT" in client
    before_install = readme.split('pip install -e ".[app]"', 1)[0]
    assert "python3 -m venv .venv && . .venv/bin/activate" in before_install
    assert "activated virtual environment" in before_install.rsplit("```", 1)[0]


def _ablation(path: Path) -> dict:
    """An ablation.json as the reports `train.ablate.ablation_table` reads."""
    import json

    summary = json.loads(path.read_text())
    return {
        variant: {
            "summary": {metric: figures[metric] for metric in ("wa", "ua", "f1")},
            "summary_by_corpus": figures.get("by_corpus", {}),
            "summary_by_cue": figures.get("by_cue", {}),
            "text_corpus_summary": figures.get("text_corpus", {}),
            "folds": [{"group": group, **fold} for group, fold in figures["folds"].items()],
        }
        for variant, figures in summary.items()
    }


def _block(readme: str, marker: str) -> str:
    return readme.split(f"<!-- {marker}:start")[1].split("-->", 1)[1].split(f"<!-- {marker}:end")[0]


@pytest.mark.parametrize(
    "marker, figures, config",
    [
        ("results", "assets/checkpoints/ablation.json", "train/configs/whisper_minilm.yaml"),
        ("results-compact", "docs/results/compact-ablation.json", "train/configs/compact.yaml"),
    ],
)
def test_results_in_the_readme_are_the_measured_ablation_figures(marker, figures, config):
    import numpy as np

    from train.ablate import ablation_markdown
    from train.settings import load_experiment

    reports = _ablation(ROOT / figures)
    for report in reports.values():  # the means are the folds' means
        uas = [fold["ua"] for fold in report["folds"]]
        assert report["summary"]["ua"]["mean"] == np.mean(uas)
        for corpus, stats in report["summary_by_corpus"].items():
            per_fold = [fold["by_corpus"][corpus]["ua"] for fold in report["folds"]]
            assert stats["ua"]["mean"] == pytest.approx(np.mean(per_fold))
    table = ablation_markdown(reports, load_experiment(str(ROOT / config), []))
    readme = (ROOT / "README.md").read_text()
    assert _block(readme, marker).strip() == table.strip()
    assert table.strip() in (ROOT / figures).with_suffix(".md").read_text()


def test_the_model_card_gives_the_shipped_checkpoints_held_out_figures():
    reports = _ablation(ROOT / "assets" / "checkpoints" / "ablation.json")
    card = (ROOT / "assets" / "checkpoints" / "README.md").read_text()
    names = {"full": "`whisper_minilm`", **{v: f"`{v}`" for v in reports if v != "full"}}
    for variant, report in reports.items():  # the shipped checkpoints are fold g1
        g1 = next(fold for fold in report["folds"] if fold["group"] == "g1")
        row = next(line for line in card.splitlines() if line.startswith(f"| {names[variant]}"))
        assert f"{100 * g1['ua']:.1f}" in row, (variant, row)
        for corpus, figures in g1.get("by_corpus", {}).items():
            assert f"{100 * figures['ua']:.1f}" in row, (variant, corpus, row)


def test_the_about_tab_shows_the_model_card_without_its_markers():
    from demo import texts

    card = texts.model_card()
    assert "Model card" in card and "CC BY-NC-SA 4.0" in card
    assert "<!--" not in card and "| checkpoint |" in card


def test_the_refresh_script_writes_the_cards_table_from_the_shipped_figures():
    sys.path.insert(0, str(ROOT / "docs" / "results"))
    try:
        import refresh
    finally:
        sys.path.pop(0)
    ablation = json.loads((ROOT / "assets" / "checkpoints" / "ablation.json").read_text())
    card = (ROOT / "assets" / "checkpoints" / "README.md").read_text()
    rows = refresh.card_table(ablation).splitlines()
    assert len(rows) == 2 + len(ablation)
    for row in rows[2:]:  # each checkpoint's WA, UA, F1 and per-corpus UA, as the card gives them
        name = row.split(" | ")[0]
        shipped = next(line for line in card.splitlines() if line.startswith(name))
        assert row.split(" | ")[:-1] == shipped.split(" | ")[:-1], (row, shipped)
    again = refresh.replace_block(card, "card-g1", refresh.card_table(ablation))
    assert again.count("<!-- card-g1:start") == 1 and again.count("<!-- card-g1:end -->") == 1
    with pytest.raises(SystemExit, match="no <!-- missing:start"):
        refresh.replace_block(card, "missing", "x")
