"""Instance level across a batch: speech × text cosine similarity matrices.

Shape letters: B batch size.

Figures:
    similarity_matrices several (B, B) matrices side by side on one shared colour scale
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from demo.plots.common import TEMPLATE


def _similarity_trace(matrix: np.ndarray, labels: list[str], row_name: str, col_name: str):
    ticks = [f"{i + 1} · {html.escape(label)}" for i, label in enumerate(labels)]
    notes = np.empty(matrix.shape, dtype=object)  # (B, B) plain-words hover per cell
    for row, col in np.ndindex(matrix.shape):
        kind = (
            "a matching pair (the same utterance): should be high"
            if row == col
            else "different utterances: should be lower"
        )
        notes[row, col] = f"{row_name} {ticks[row]} vs {col_name} {ticks[col]}<br>{kind}"
    return go.Heatmap(
        name="similarity",
        z=matrix,  # (B, B)
        x=np.arange(len(labels)),
        y=np.arange(len(labels)),
        customdata=notes,
        coloraxis="coloraxis",
        hovertemplate="cosine similarity %{z:.2f}<br>%{customdata}<extra></extra>",
    ), ticks


def _check_square(matrix, labels: Sequence[str], name: str) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square (B, B) matrix, got shape {matrix.shape}")
    if matrix.shape[0] != len(labels):
        raise ValueError(
            f"{name} is {matrix.shape[0]}×{matrix.shape[1]} but {len(labels)} "
            "labels were given: pass one emotion label per batch item"
        )
    return matrix


def _add_similarity_panel(fig, matrix, labels: list[str], col: int, row_name, col_name) -> None:
    trace, ticks = _similarity_trace(matrix, labels, row_name, col_name)
    fig.add_trace(trace, row=1, col=col)
    for i in range(len(labels)):  # outline the matching pairs
        fig.add_shape(
            type="rect",
            x0=i - 0.5,
            x1=i + 0.5,
            y0=i - 0.5,
            y1=i + 0.5,
            line={"color": "black", "width": 2},
            row=1,
            col=col,
        )
    axis = {"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": ticks}
    fig.update_xaxes(title=col_name, **axis, row=1, col=col)
    # rows are the same utterances in every panel: named once, on the left, so that a panel's
    # row names never run into the panel before it
    first = col == 1
    fig.update_yaxes(
        title=row_name if first else None,
        showticklabels=first,
        autorange="reversed",
        **axis,
        row=1,
        col=col,
    )


def similarity_matrices(
    matrices: Sequence[np.ndarray],
    labels: Sequence[str],
    titles: Sequence[str],
    *,
    title: str = "Instance level: speech × text cosine similarities in a batch",
    row_name: str = "speech",
    col_name: str = "text",
) -> go.Figure:
    """Several (B, B) similarity matrices side by side on one shared colour scale.

    Parameters
    ----------
    matrices : (B, B) arrays; entry [i, j] compares `row_name` item i with `col_name` item j
    labels : B emotion labels (ticks read "1 · angry")
    titles : one subplot title per matrix, e.g. "MGCMA", "without instance alignment"

    Returns
    -------
    Figure with one heatmap per matrix, the diagonal (matching pairs) outlined.
    """
    if len(matrices) == 0 or len(titles) != len(matrices):
        raise ValueError(
            f"pass one title per matrix: {len(matrices)} matrices, {len(titles)} "
            "titles (and at least one matrix)"
        )
    labels = [str(label) for label in labels]
    checked = [_check_square(m, labels, f"matrices[{i}]") for i, m in enumerate(matrices)]
    fig = make_subplots(
        rows=1,
        cols=len(checked),
        subplot_titles=[html.escape(t) for t in titles],
        horizontal_spacing=0.06,
    )
    for col, matrix in enumerate(checked, start=1):
        _add_similarity_panel(fig, matrix, labels, col, row_name, col_name)
    extent = max([1e-6] + [float(np.abs(m).max()) for m in checked if m.size])
    fig.update_layout(
        template=TEMPLATE,
        title=f"{html.escape(title)}<br><sup>outlined diagonal: matching {row_name}–{col_name} "
        "pairs; instance alignment should make it stand out</sup>",
        coloraxis={
            "colorscale": "RdBu",
            "cmin": -extent,
            "cmax": extent,
            "colorbar": {"title": {"text": "cosine"}},
        },
        height=450,
        margin={"l": 90, "r": 30, "t": 100, "b": 80},
    )
    return fig
