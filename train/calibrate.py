"""Temperature scaling fitted on the validation split, ECE, and reliability diagrams.

A classifier trained with cross-entropy is often more (or less) sure than it is right. Temperature
scaling (Guo et al., ICML 2017) divides each head's logits by one number T, fitted by minimising
the negative log-likelihood on held-out data; the argmax, and so every accuracy figure, does not
change. ``fit`` fits T per head (fused, speech-only, text-only) on the validation split after the
best epoch is chosen, writes them into the checkpoint (``config.calibration``, read by
``MGCMA.probabilities`` and so by the app's Analyzer) and reports the expected calibration error
(ECE, :data:`BINS` equal-width confidence bins) before and after, with the bins behind a
reliability diagram.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

BINS = 15  # Guo et al.'s choice
LOG_T_BOUNDS = (-3.0, 3.0)  # T within e^±3 ≈ 0.05 … 20


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` (N,) under softmax(logits (N, C) / T)."""
    log_probs = log_softmax(logits / temperature, axis=1)
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T that minimises the NLL of ``labels`` under softmax(logits / T)."""
    if len(labels) == 0:
        return 1.0
    result = minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))),
        bounds=LOG_T_BOUNDS,
        method="bounded",
    )
    return float(np.exp(result.x))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per equal-width bin of top-class confidence: its range, count, mean confidence and
    accuracy (bins with no prediction are kept, with count 0)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for index in range(bins):
        inside = which == index
        count = int(inside.sum())
        rows.append(
            {
                "lower": round(float(edges[index]), 4),
                "upper": round(float(edges[index + 1]), 4),
                "count": count,
                "confidence": round(float(confidence[inside].mean()), 4) if count else None,
                "accuracy": round(float(correct[inside].mean()), 4) if count else None,
            }
        )
    return rows


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """ECE: the count-weighted mean |accuracy − confidence| over confidence bins."""
    rows = reliability_bins(probs, labels, bins)
    total = sum(row["count"] for row in rows)
    if total == 0:
        return 0.0
    return float(
        sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in rows if row["count"])
        / total
    )


def calibrate(
    logits: dict[str, np.ndarray], labels: np.ndarray, targets: dict[str, np.ndarray] | None = None
) -> dict:
    """Fit a temperature per head and measure ECE before and after.

    Parameters
    ----------
    logits : head ("fused", "speech", "text") → (N, C) logits on the validation split
    labels : (N,) class indices
    targets : head → (N,) what that head learned to say, where it is not the label (with
        `loss.modality_targets` the speech head learns the voice's emotion, the text head the
        words'): its temperature and ECE are measured against those

    Returns
    -------
    dict
        head → ``{temperature, ece_before, ece_after, nll_before, nll_after, bins_before,
        bins_after}``, plus ``count``.
    """
    report: dict = {"count": int(len(labels))}
    for head, values in logits.items():
        truth = (targets or {}).get(head, labels)  # (N,)
        temperature = fit_temperature(values, truth)
        before, after = softmax(values, axis=1), softmax(values / temperature, axis=1)
        report[head] = {
            "temperature": round(temperature, 4),
            "ece_before": round(expected_calibration_error(before, truth), 4),
            "ece_after": round(expected_calibration_error(after, truth), 4),
            "nll_before": round(nll(values, truth), 4),
            "nll_after": round(nll(values, truth, temperature), 4),
            "bins_before": reliability_bins(before, truth),
            "bins_after": reliability_bins(after, truth),
        }
    return report


def pool_bins(per_fold: list[list[dict]]) -> list[dict]:
    """Reliability bins of several folds (same edges) merged: counts summed, confidence and
    accuracy averaged with the counts as weights."""
    pooled = []
    for rows in zip(*per_fold, strict=True):
        count = sum(row["count"] for row in rows)
        merged = {"lower": rows[0]["lower"], "upper": rows[0]["upper"], "count": count}
        for key in ("confidence", "accuracy"):
            total = sum(row["count"] * row[key] for row in rows if row["count"])
            merged[key] = round(total / count, 4) if count else None
        pooled.append(merged)
    return pooled


def pooled_ece(bins: list[dict]) -> float:
    """ECE of pooled bins (the count-weighted mean |accuracy − confidence|)."""
    total = sum(row["count"] for row in bins)
    gaps = sum(
        row["count"] * abs(row["accuracy"] - row["confidence"]) for row in bins if row["count"]
    )
    return float(gaps / total) if total else 0.0


def reliability_figure(report: dict, title: str):
    """A plotly reliability diagram of the fused head: accuracy against confidence per bin,
    before and after temperature scaling, with the diagonal of perfect calibration."""
    import plotly.graph_objects as go

    fused = report["fused"]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line_dash="dot")
    )
    for key, name in (("bins_before", "before"), ("bins_after", "after")):
        rows = [row for row in fused[key] if row["count"]]
        ece = fused[key.replace("bins", "ece")]
        figure.add_trace(
            go.Scatter(
                x=[row["confidence"] for row in rows],
                y=[row["accuracy"] for row in rows],
                mode="lines+markers",
                name=f"{name} (ECE {ece:.3f})",
                text=[f"{row['count']} predictions" for row in rows],
            )
        )
    figure.update_layout(
        title=f"{title}: fused head, T = {fused['temperature']:.2f}",
        xaxis_title="confidence (top-class probability)",
        yaxis_title="accuracy",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
        width=560,
        height=480,
    )
    return figure


def write_reliability(report: dict, path: Path, title: str) -> Path:
    """The reliability diagram as a self-contained HTML file (plotly.js inlined: offline)."""
    reliability_figure(report, title).write_html(path, include_plotlyjs=True)
    return path
