"""Cross-validation reports: JSON for machines, Markdown for the README, HTML for people."""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from train.calibrate import pool_bins, pooled_ece, write_reliability


def pm(stats: dict) -> str:
    """'78.9 ± 1.2' in percent."""
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"


def markdown(report: dict) -> str:
    lines = [
        f"### Cross-validation: {report['preset']} / {report['variant']}",
        "",
        "| fold (test group) | utterances | WA % | UA % | macro-F1 % | best epoch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for fold in report["folds"]:
        lines.append(
            f"| {fold['group']} | {fold['count']} | {100 * fold['wa']:.1f} | "
            f"{100 * fold['ua']:.1f} | {100 * fold['f1']:.1f} | {fold['best_epoch']} |"
        )
    s = report["summary"]
    lines.append(
        f"| **mean ± std** | | **{pm(s['wa'])}** | **{pm(s['ua'])}** | **{pm(s['f1'])}** | |"
    )
    corpora = report.get("summary_by_corpus") or {}
    if corpora:
        lines += [
            "",
            "Per corpus (each fold's test speakers of that corpus), mean ± std over folds:",
            "",
            "| corpus | "
            + " | ".join(f["group"] for f in report["folds"])
            + " | WA % | UA % | macro-F1 % |",
            "|---|" + "---:|" * (len(report["folds"]) + 3),
        ]
        for corpus, stats in corpora.items():
            per_fold = [
                f"{100 * f['by_corpus'][corpus]['ua']:.1f}" if corpus in f["by_corpus"] else "–"
                for f in report["folds"]
            ]
            lines.append(
                f"| {corpus} (UA per fold) | "
                + " | ".join(per_fold)
                + f" | {pm(stats['wa'])} | {pm(stats['ua'])} | {pm(stats['f1'])} |"
            )
    lines += _cue_lines(report) + _text_head_lines(report) + _calibration_lines(report)
    lines += [
        "",
        "Confusion matrix, all folds (rows: truth, columns: prediction):",
        "",
        "| | " + " | ".join(report["emotions"]) + " |",
        "|---|" + "---:|" * len(report["emotions"]),
    ]
    for name, row in zip(report["emotions"], report["confusion"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cue_lines(report: dict) -> list[str]:
    """UA per cue (the synthetic corpus: which side carries the emotion), fold by fold."""
    cues = report.get("summary_by_cue") or {}
    if not cues:
        return []
    folds = report["folds"]
    lines = [
        "",
        "Per cue (test clips whose manifest line names one: `both` voice and words agree, "
        "`prosody` only the voice carries the emotion, `words` only the words, `conflict` each a "
        "different one, `disagree` the last three together), UA % over the classes present:",
        "",
        "| cue | " + " | ".join(f["group"] for f in folds) + " | clips | UA % |",
        "|---|" + "---:|" * (len(folds) + 2),
    ]
    for cue, stats in cues.items():
        per_fold = [f.get("by_cue", {}).get(cue) for f in folds]
        cells = [f"{100 * m['ua']:.1f}" if m else "–" for m in per_fold]
        clips = sum(m["count"] for m in per_fold if m)
        lines.append(f"| {cue} | " + " | ".join(cells) + f" | {clips} | {pm(stats['ua'])} |")
    return lines


def _text_head_lines(report: dict) -> list[str]:
    """The text-only head on the text corpus's test split (sentences alone, no audio)."""
    stats = report.get("text_corpus_summary") or {}
    if not stats:
        return []
    folds = [f for f in report["folds"] if "text_corpus" in f]
    per_fold = ", ".join(f"{f['group']} {100 * f['text_corpus']['ua']:.1f}" for f in folds)
    return [
        "",
        f"Text-only head on the text corpus's test split ({folds[0]['text_corpus']['count']} "
        f"sentences, no audio): WA {pm(stats['wa'])}, **UA {pm(stats['ua'])}**, "
        f"macro-F1 {pm(stats['f1'])} % (UA per fold: {per_fold}).",
    ]


def _calibration_lines(report: dict) -> list[str]:
    """Fused head's ECE before and after temperature scaling, per fold and mean ± std."""
    folds = [f for f in report["folds"] if "calibration" in f]
    if not folds:
        return []

    def cell(value) -> str:
        return "–" if value is None else f"{value:.3f}"

    lines = [
        "",
        "Calibration of the fused head (temperature T fitted on each fold's validation split; "
        "ECE over 15 confidence bins):",
        "",
        "| fold | T | validation ECE before | after | test ECE before | after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for fold in folds:
        c = fold["calibration"]
        lines.append(
            f"| {fold['group']} | {c['temperature']:.2f} | {cell(c['val_ece_before'])} | "
            f"{cell(c['val_ece_after'])} | {cell(c['test_ece_before'])} | "
            f"{cell(c['test_ece_after'])} |"
        )
    s = report.get("calibration_summary") or {}

    def mean(key: str) -> str:
        return f"{s[key]['mean']:.3f} ± {s[key]['std']:.3f}" if key in s else "–"

    lines.append(
        f"| **mean ± std** | {mean('temperature')} | {mean('val_ece_before')} | "
        f"{mean('val_ece_after')} | {mean('test_ece_before')} | {mean('test_ece_after')} |"
    )
    lines += _human_calibration_lines(report)
    pooled = pooled_reliability(report)
    if pooled:
        lines += [
            "",
            "Reliability of the fused head, every fold's validation split pooled (the diagram: "
            "`reliability.html`): per confidence bin, the predictions in it and how often they "
            "were right, before → after temperature scaling.",
            "",
            "| confidence bin | predictions before | accuracy before | predictions after | "
            "accuracy after |",
            "|---|---:|---:|---:|---:|",
        ]
        for b, a in zip(pooled["bins_before"], pooled["bins_after"], strict=True):
            if b["count"] or a["count"]:
                lines.append(
                    f"| {b['lower']:.2f}–{b['upper']:.2f} | {b['count']} | {cell(b['accuracy'])} "
                    f"| {a['count']} | {cell(a['accuracy'])} |"
                )
    return lines


def _human_calibration_lines(report: dict) -> list[str]:
    """The fused head on each fold's human test voices: validation's T against the human
    temperature fitted on the other folds' unheard human voices (`train.unheard`)."""
    folds = [f for f in report["folds"] if "calibration_human" in f]
    if not folds:
        return []
    lines = [
        "",
        "Human voices of the test speakers, fused head: with validation's T (fitted on voices "
        "heard in training) and with T_human, fitted on the human test voices of the other "
        "folds (`train.unheard`; the shipped checkpoints carry it):",
        "",
        "| fold | human test clips | T_human | ECE with validation's T | with T_human |",
        "|---|---:|---:|---:|---:|",
    ]
    for fold in folds:
        c = fold["calibration_human"]
        lines.append(
            f"| {fold['group']} | {c['count']} | {c['temperature']:.2f} | "
            f"{c['ece_before']:.3f} | {c['ece_after']:.3f} |"
        )
    s = report.get("calibration_human_summary") or {}
    if s:

        def mean(key: str) -> str:
            return f"{s[key]['mean']:.3f} ± {s[key]['std']:.3f}"

        lines.append(
            f"| **mean ± std** | | {mean('temperature')} | {mean('ece_before')} | "
            f"{mean('ece_after')} |"
        )
    if "pooled_ece_before" in s:
        count = sum(f["calibration_human"]["count"] for f in folds)
        lines.append(
            f"| **every fold's clips pooled** | {count} | | {s['pooled_ece_before']:.3f} | "
            f"{s['pooled_ece_after']:.3f} |"
        )
    return lines


def figure(report: dict) -> go.Figure:
    folds = report["folds"]
    emotions = report["emotions"]
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "WA / UA / macro-F1 per fold",
            "Confusion matrix (all folds)",
            "Validation UA per epoch",
            "Training loss per epoch",
        ),
    )
    names = [f["group"] for f in folds]
    for metric in ("wa", "ua", "f1"):
        fig.add_trace(go.Bar(name=metric.upper(), x=names, y=[f[metric] for f in folds]), 1, 1)
    fig.add_trace(
        go.Heatmap(
            z=report["confusion"],
            x=emotions,
            y=emotions,
            colorscale="Blues",
            showscale=False,
            texttemplate="%{z}",
        ),
        1,
        2,
    )
    for fold in folds:
        epochs = [h["epoch"] for h in fold["history"]]
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[h.get("val_ua") for h in fold["history"]],
                mode="lines+markers",
                name=f"{fold['group']} val UA",
            ),
            2,
            1,
        )
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[h.get("train_total") for h in fold["history"]],
                mode="lines",
                name=f"{fold['group']} loss",
            ),
            2,
            2,
        )
    fig.update_xaxes(title_text="test group", row=1, col=1)
    fig.update_xaxes(title_text="predicted", row=1, col=2)
    fig.update_yaxes(title_text="true", autorange="reversed", row=1, col=2)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=2)
    fig.update_layout(
        title=f"{report['preset']} / {report['variant']}: UA {pm(report['summary']['ua'])} %",
        height=800,
        barmode="group",
    )
    return fig


def write_reports(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(markdown(report))
    figure(report).write_html(out / "report.html", include_plotlyjs=True)
    pooled = pooled_reliability(report)
    if pooled:
        title = f"validation splits of {len(report['folds'])} folds, pooled"
        write_reliability({"fused": pooled}, out / "reliability.html", title)


def pooled_reliability(report: dict) -> dict | None:
    """The fused head's reliability bins of every fold's validation split, pooled, before and
    after temperature scaling (the report's reliability diagram and table)."""
    folds = [f["reliability"] for f in report["folds"] if "reliability" in f]
    if not folds:
        return None
    before = pool_bins([f["before"] for f in folds])
    after = pool_bins([f["after"] for f in folds])
    temperatures = [f["calibration"]["temperature"] for f in report["folds"] if "calibration" in f]
    return {
        "bins_before": before,
        "bins_after": after,
        "ece_before": round(pooled_ece(before), 4),
        "ece_after": round(pooled_ece(after), 4),
        "temperature": float(sum(temperatures) / len(temperatures)),
    }
