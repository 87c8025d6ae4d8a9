"""Instance level: one utterance on the reference bank's 2-D map, with its nearest neighbours.

Shape letters: N bank utterances.

Figures:
    instance_map        the utterance's speech / text / fused points among the bank's points
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from demo.plots.common import MODALITY_COLORS, POINT_SYMBOLS, TEMPLATE, _color, _emotion_order

POINT_MEANINGS = {
    "speech": "what the voice alone encodes",
    "text": "what the words alone encode",
    "fused": "the combined representation the classifier reads",
}


def _snippet(text: str, limit: int = 80) -> str:
    text = str(text)
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _check_bank(bank_xy, bank_labels, bank_text):
    xy = np.asarray(bank_xy, dtype=np.float64)
    if xy.size == 0:  # an empty bank: no dots, only this utterance
        xy = xy.reshape(0, 2)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"bank_xy must be (N, 2) map coordinates, got shape {xy.shape}")
    labels = [str(label) for label in bank_labels]
    if len(labels) != len(xy):
        raise ValueError(f"bank_labels has {len(labels)} entries but bank_xy has {len(xy)} rows")
    if bank_text is not None and len(bank_text) != len(xy):
        raise ValueError(f"bank_text has {len(bank_text)} entries but bank_xy has {len(xy)} rows")
    return xy, labels, bank_text


def _check_points(points) -> dict[str, tuple[float, float]]:
    checked = {}
    for kind, xy in (points or {}).items():
        if kind not in POINT_SYMBOLS:
            raise ValueError(f"points keys must be among speech, text, fused, not {kind!r}")
        if np.shape(xy) != (2,):
            raise ValueError(f"points[{kind!r}] must be an (x, y) pair, got {xy!r}")
        checked[kind] = (float(xy[0]), float(xy[1]))
    return checked


def _bank_traces(xy: np.ndarray, labels: list[str], texts) -> list[go.Scatter]:
    traces = []
    for emotion in _emotion_order(labels):
        rows = [i for i, label in enumerate(labels) if label == emotion]
        hover = [f"“{_snippet(texts[i])}”" if texts is not None else "" for i in rows]
        traces.append(
            go.Scatter(
                x=xy[rows, 0],
                y=xy[rows, 1],
                mode="markers",
                name=f"bank: {emotion}",
                legendgroup="bank",
                marker={"color": _color(emotion), "size": 6, "opacity": 0.5},
                text=hover,
                hovertemplate=f"%{{text}}<br>a bank utterance labelled <b>{emotion}</b>"
                "<extra></extra>",
            )
        )
    return traces


LABEL_POSITIONS = {"speech": "top center", "text": "bottom center"}


def _point_trace(kind: str, x: float, y: float) -> go.Scatter:
    return go.Scatter(
        x=[x],
        y=[y],
        mode="markers+text",
        name=f"this utterance: {kind}",
        text=[kind],
        # speech's label above its marker, text's below: they stay apart when the two points
        # (nearly) coincide, which is what instance alignment aims for
        textposition=LABEL_POSITIONS.get(kind, "top center"),
        marker={
            "symbol": POINT_SYMBOLS[kind],
            "size": 20 if kind == "fused" else 16,
            "color": MODALITY_COLORS[kind],
            "line": {"color": "white", "width": 1.5},
        },
        hovertemplate=f"this utterance, <b>{kind}</b> embedding: {POINT_MEANINGS[kind]}<br>"
        "placed among the bank utterances it is most similar to<extra></extra>",
    )


def _neighbour_traces(neighbours: Sequence[dict], anchor) -> list[go.Scatter]:
    for index, item in enumerate(neighbours):
        if "x" not in item or "y" not in item:
            raise ValueError(f"neighbours[{index}] needs keys 'x' and 'y' (its map position)")
    xs = [float(n["x"]) for n in neighbours]
    ys = [float(n["y"]) for n in neighbours]
    traces = []
    if anchor is not None:
        line_x = [v for x in xs for v in (anchor[0], x, None)]  # None breaks the line
        line_y = [v for y in ys for v in (anchor[1], y, None)]
        traces.append(
            go.Scatter(
                x=line_x,
                y=line_y,
                mode="lines",
                name="nearest neighbours (links)",
                line={"color": "rgba(0,0,0,0.35)", "width": 1},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    hover = [
        f"“{_snippet(n.get('text', ''))}”<br>labelled <b>{html.escape(str(n.get('label', '?')))}"
        f"</b>, speaker {html.escape(str(n.get('speaker', '?')))}<br>cosine distance "
        f"{float(n.get('distance', float('nan'))):.3f} (0 = same direction; smaller = more alike)"
        for n in neighbours
    ]
    traces.append(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            name="nearest neighbours (ring: their emotion)",
            text=hover,
            marker={
                "symbol": "circle-open",
                "size": 14,
                "line": {"width": 2},
                "color": [_color(str(n.get("label", ""))) for n in neighbours],
            },
            hovertemplate="%{text}<extra>neighbour</extra>",
        )
    )
    return traces


def instance_map(
    bank_xy: np.ndarray,
    bank_labels: Sequence[str],
    points: Mapping[str, Sequence[float]],
    neighbours: Sequence[dict] | None = None,
    *,
    bank_text: Sequence[str] | None = None,
    title: str = "Instance level: where this utterance sits among the reference bank",
) -> go.Figure:
    """The bank's 2-D map with this utterance's embeddings and its nearest neighbours.

    Parameters
    ----------
    bank_xy : (N, 2) map coordinates of the bank utterances (e.g. bank.arrays["fused_xy"])
    bank_labels : N emotion labels; one trace (and legend entry) per emotion
    points : {"speech" | "text" | "fused": (x, y)} this utterance (Analysis.map_position)
    neighbours : dicts with "x", "y", "text", "label", "distance", "speaker" (Analysis.neighbours);
        linked to the fused point, or to the first point when there is no fused one
    bank_text : N transcripts shown on hover

    Returns
    -------
    Figure: one trace per bank emotion, one per point, then (with neighbours) a link trace when
    there is a point to link from, and one ring trace holding every neighbour.
    """
    xy, labels, texts = _check_bank(bank_xy, bank_labels, bank_text)
    checked = _check_points(points)
    fig = go.Figure(_bank_traces(xy, labels, texts))
    for kind, (x, y) in checked.items():
        fig.add_trace(_point_trace(kind, x, y))
    if neighbours:
        anchor = checked.get("fused", next(iter(checked.values()), None))
        fig.add_traces(_neighbour_traces(neighbours, anchor))
    fig.update_layout(
        template=TEMPLATE,
        title=f"{html.escape(title)}<br><sup>nearby points are utterances the model represents "
        "alike; colours are their emotion labels</sup>",
        height=450,
        xaxis={"title": "UMAP 1", "zeroline": False},
        yaxis={"title": "UMAP 2", "zeroline": False},
        legend={"itemsizing": "constant"},
        margin={"l": 60, "r": 30, "t": 80, "b": 50},
    )
    return fig
