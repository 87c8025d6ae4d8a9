"""Write a finished ablation's figures into the shipped files, so no number is copied by hand.

    python docs/results/refresh.py runs/ablate   # the `python -m train ablate ... --out` folder

Copies `ablation.md` / `ablation.json` to `assets/checkpoints/` and the full model's
cross-validation report to `docs/results/whisper_minilm-cv.md`, then rewrites the blocks between
`<!-- NAME:start ... -->` and `<!-- NAME:end -->` markers:
- README `results`: the ablation table (tests/test_readme.py checks it against the JSON);
- README `cv`: the full model's five folds, per corpus, text head and calibration (on
  validation, on the test group, and on its human voices with `train.unheard`'s T_human);
- model card `card-g1`: each shipped checkpoint's held-out figures on fold g1 (the shipped
  checkpoints are fold g1's models).
The prose around the blocks is written by a person who has read the figures.

Run `python -m train cv CONFIG --out RUN/full --resume` first when the ablation was run fold by
fold (`--folds g1 --resume`, ...): it writes the full model's report over every finished fold.
The `cv` block gives every fold of that report; the ablation table, the folds of `ablation.json`
(`python -m train ablate CONFIG --out RUN --folds g1,g2 --report-only` tabulates the folds every
variant has finished), which may be fewer while an ablation is under way.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from train.report import pm

ROOT = Path(__file__).resolve().parents[2]
NAMES = {  # the card's first column: the app's checkpoint folder, and what it lacks
    "full": "`whisper_minilm` (MGCMA, all three granularities)",
    "no_distribution": "`no_distribution` (without distribution-level alignment)",
    "no_instance": "`no_instance` (without instance-level alignment)",
    "no_token": "`no_token` (without token-level alignment)",
    "speech_only": "`speech_only` (speech only)",
    "text_only": "`text_only` (text only)",
}


CORPORA = {"ravdess": "RAVDESS", "synthetic": "synthetic"}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def replace_block(text: str, name: str, body: str) -> str:
    """Swap what lies between a block's markers; the start marker keeps its comment."""
    pattern = re.compile(rf"(<!-- {name}:start[^>]*-->\n)(.*?)(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no <!-- {name}:start --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + body.strip() + "\n" + m.group(3), text, count=1)


def cv_table(report: dict) -> str:
    """The README's table of the full model's folds."""
    folds = report["folds"]
    groups = [f["group"] for f in folds]
    head = "| measured on | " + " | ".join(groups) + " | mean ± std | issue target |"
    lines = [head, "|---|" + "---:|" * (len(groups) + 2)]
    targets = {"ravdess": "≥ 75", "synthetic": "≥ 85"}
    names = {"ravdess": "RAVDESS, unheard actors", "synthetic": "synthetic, unheard voices"}
    for corpus, stats in (report.get("summary_by_corpus") or {}).items():
        cells = [percent(f["by_corpus"].get(corpus, {}).get("ua")) for f in folds]
        lines.append(
            f"| {names.get(corpus, corpus)}: fused UA % | "
            + " | ".join(cells)
            + f" | **{pm(stats['ua'])}** | {targets.get(corpus, '')} |"
        )
    if report.get("text_corpus_summary"):
        count = next(f["text_corpus"]["count"] for f in folds if "text_corpus" in f)
        cells = [percent(f.get("text_corpus", {}).get("ua")) for f in folds]
        stats = report["text_corpus_summary"]["ua"]
        lines.append(
            f"| GoEmotions test split ({count:,} comments): text head UA % | "
            + " | ".join(cells)
            + f" | **{pm(stats)}** | ≥ 65 |"
        )
    calibration = report.get("calibration_summary") or {}
    if calibration:
        rows = [f.get("calibration", {}) for f in folds]
        ece = calibration["val_ece_after"]
        lines.append(
            "| validation ECE, fused, after temperature scaling | "
            + " | ".join(f"{r['val_ece_after']:.3f}" for r in rows)
            + f" | **{ece['mean']:.3f} ± {ece['std']:.3f}** | ≤ 0.08 |"
        )
        lines.append(
            "| test ECE, fused: before → after | "
            + " | ".join(f"{r['test_ece_before']:.2f} → {r['test_ece_after']:.2f}" for r in rows)
            + f" | {calibration['test_ece_before']['mean']:.3f} → "
            + f"{calibration['test_ece_after']['mean']:.3f} | |"
        )
    human = report.get("calibration_human_summary") or {}
    if human:
        rows = [f.get("calibration_human", {}) for f in folds]
        lines.append(
            "| test ECE, fused, human voices: validation's T → T_human (`train.unheard`) | "
            + " | ".join(f"{r['ece_before']:.2f} → {r['ece_after']:.2f}" for r in rows)
            + f" | {human['ece_before']['mean']:.3f} → **{human['ece_after']['mean']:.3f}**"
            + (
                f" (all {sum(r['count'] for r in rows)} clips pooled: "
                f"{human['pooled_ece_before']:.3f} → {human['pooled_ece_after']:.3f})"
                if "pooled_ece_before" in human
                else ""
            )
            + " | |"
        )
    return "\n".join(lines)


def card_table(ablation: dict) -> str:
    """One row per shipped checkpoint: its fold-g1 figures."""
    g1s = [v["folds"]["g1"] for v in ablation.values()]
    corpora = sorted({c for g1 in g1s for c in g1.get("by_corpus", {})})
    counts = {c: next(g1["by_corpus"][c]["count"] for g1 in g1s) for c in corpora}
    lines = [
        "| checkpoint | WA % | UA % | macro-F1 % | "
        + " | ".join(f"UA % {CORPORA.get(c, c)} ({counts[c]})" for c in corpora)
        + " | text head UA % GoEmotions test |",
        "|---|---:|---:|---:|" + "---:|" * (len(corpora) + 1),
    ]
    for variant, figures in ablation.items():
        g1 = figures["folds"]["g1"]
        by_corpus = g1.get("by_corpus", {})
        text = g1.get("text_corpus", {}).get("ua")
        lines.append(
            f"| {NAMES.get(variant, variant)} | {percent(g1['wa'])} | {percent(g1['ua'])} | "
            f"{percent(g1['f1'])} | "
            + " | ".join(percent(by_corpus.get(c, {}).get("ua")) for c in corpora)
            + f" | {percent(text)} |"
        )
    return "\n".join(lines)


def g1_text_heads(run: Path) -> dict:
    """Each variant's fold-g1 text head on the text corpus (ablation.json keeps only means)."""
    heads = {}
    for result in sorted(run.glob("*/fold-g1/result.json")):
        test = json.loads(result.read_text()).get("text_corpus_test") or {}
        if test:
            heads[result.parent.parent.name] = {k: test[k] for k in ("ua", "count")}
    return heads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the ablation's --out folder")
    args = parser.parse_args(argv)
    run = args.run
    ablation = json.loads((run / "ablation.json").read_text())
    report = json.loads((run / "full" / "report.json").read_text())
    if not set(ablation["full"]["folds"]) <= {f["group"] for f in report["folds"]}:
        raise SystemExit(f"{run}/full/report.json lacks folds of ablation.json: rerun cv")
    for variant, head in g1_text_heads(run).items():
        if variant in ablation:
            ablation[variant]["folds"]["g1"]["text_corpus"] = head

    checkpoints = ROOT / "assets" / "checkpoints"
    shutil.copy(run / "ablation.md", checkpoints / "ablation.md")
    shutil.copy(run / "ablation.json", checkpoints / "ablation.json")
    shutil.copy(run / "full" / "report.md", ROOT / "docs" / "results" / "whisper_minilm-cv.md")

    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    table = (run / "ablation.md").read_text()
    table = table.split("\n", 2)[2] if table.startswith("### ") else table  # drop its heading
    readme = replace_block(readme, "results", table)
    readme = replace_block(readme, "cv", cv_table(report))
    readme_path.write_text(readme)

    card_path = checkpoints / "README.md"
    card_path.write_text(replace_block(card_path.read_text(), "card-g1", card_table(ablation)))
    print(f"refreshed from {run}: README.md, {card_path.relative_to(ROOT)}, ablation, cv report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
