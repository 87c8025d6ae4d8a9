"""Bar charts of emotion probabilities: one model's sources, or one input through each checkpoint.

Figures:
    prediction_bars     fused / speech-only / text-only emotion probabilities
    variant_bars        the same input's probabilities from each ablation checkpoint
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from demo.plots.common import EMOTION_COLORS, MODALITY_COLORS, TEMPLATE, _color, _emotion_order

SOURCES = {
    "fused (MGCMA)": "the full model (voice and words together)",
    "speech only": "the speech-only head (the voice alone)",
    "text only": "the text-only head (the words alone)",
}


def _check_probs(name: str, probs, reference: Sequence[str] | None = None) -> dict[str, float]:
    if not isinstance(probs, Mapping) or not probs:
        raise ValueError(f"{name} must be a non-empty dict {{emotion: probability}}, not {probs!r}")
    values = {str(k): float(v) for k, v in probs.items()}
    if not all(np.isfinite(v) for v in values.values()):
        raise ValueError(f"{name} has a probability that is NaN or infinite: {values}")
    if reference is not None and set(values) != set(reference):
        raise ValueError(
            f"{name} has emotions {sorted(values)} but probs has {sorted(reference)}: "
            "pass probabilities for the same emotions"
        )
    return values


def _probability_trace(name: str, values: dict[str, float], emotions: list[str], colors):
    percent = [100.0 * values[e] for e in emotions]
    return go.Bar(
        name=name,
        orientation="h",
        y=emotions,
        x=percent,
        marker={"color": colors, "line": {"color": "white", "width": 0.5}},
        text=[f"{p:.0f}%" for p in percent],
        textposition="outside",
        cliponaxis=False,
        hovertemplate=f"<b>%{{y}}</b>: %{{x:.1f}}%<br>how sure {SOURCES[name]} is "
        "that the speaker sounds %{y}<extra></extra>",
    )


def prediction_bars(
    probs: Mapping[str, float],
    speech_probs: Mapping[str, float] | None = None,
    text_probs: Mapping[str, float] | None = None,
) -> go.Figure:
    """Horizontal bars of emotion probabilities, grouped by source.

    Parameters
    ----------
    probs : {emotion: probability in [0, 1]} of the fused model
    speech_probs, text_probs : the same from the auxiliary single-modality heads, or None

    Returns
    -------
    Figure with one bar trace per source given: "fused (MGCMA)", "speech only", "text only".
    """
    fused = _check_probs("probs", probs)
    emotions = _emotion_order(fused)
    others = {
        kind: _check_probs(f"{kind}_probs", given, fused)
        for kind, given in (("speech", speech_probs), ("text", text_probs))
        if given is not None
    }
    # alone, the bars wear their emotions' colours; beside other sources, each source has one
    # colour, so that a bar's colour is its legend entry's
    colors = MODALITY_COLORS["fused"] if others else list(map(_color, emotions))
    fig = go.Figure(_probability_trace("fused (MGCMA)", fused, emotions, colors))
    for kind, values in others.items():
        fig.add_trace(_probability_trace(f"{kind} only", values, emotions, MODALITY_COLORS[kind]))
    top = max(fused, key=fused.get)
    title = f"Predicted emotion: {top} ({100 * fused[top]:.0f}%)"
    if len(fig.data) > 1:
        title += "<br><sup>the full model beside the voice alone and the words alone</sup>"
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        barmode="group",
        height=350 if len(fig.data) == 1 else 440,
        xaxis={"title": "probability (%)", "range": [0, 100], "ticksuffix": "%"},
        yaxis={"title": "emotion", "autorange": "reversed"},
        # under the axis title: above the plot it sat on the title in a narrow window
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0.0},
        margin={"l": 80, "r": 40, "t": 70, "b": 50},
    )
    return fig


# ------------------------------------------------------------------------- compare variants


VARIANT_NAMES = {
    "full": "MGCMA (full)",
    "no_distribution": "without distribution",
    "no_instance": "without instance",
    "no_token": "without token",
    "speech_only": "speech only",
    "text_only": "text only",
}


def variant_bars(rows: Sequence[Mapping]) -> go.Figure:
    """Grouped bars: for each checkpoint, its probability of each emotion.

    Parameters
    ----------
    rows : [{"variant": name, "label": predicted, emotion: probability, …}, …]
    """
    if not rows:
        raise ValueError("variant_bars needs at least one row of probabilities")
    emotions = [e for e in EMOTION_COLORS if e in rows[0]]
    fig = go.Figure()
    for emotion in emotions:
        fig.add_trace(
            go.Bar(
                name=emotion,
                x=[VARIANT_NAMES.get(r["variant"], r["variant"]) for r in rows],
                y=[100.0 * r[emotion] for r in rows],
                marker_color=_color(emotion),
                hovertemplate=f"%{{x}}: {emotion} %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        height=380,
        title="The same input through each checkpoint",
        yaxis={"title": "probability (%)", "range": [0, 100]},
        xaxis={"title": "checkpoint"},
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
    )
    return fig
