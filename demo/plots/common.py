"""Colours, the plot template and small helpers shared by the figures in `demo.plots`.

Colours come from the Okabe–Ito and Paul Tol palettes, chosen so that emotions and modalities
stay distinguishable with the common colour-vision deficiencies (tests/test_plots.py measures
it). Every figure that colours by emotion uses `EMOTION_COLORS`, so an emotion wears one colour
everywhere; a label outside them falls back to `OTHER_COLOR`.
"""

from __future__ import annotations

import plotly.graph_objects as go

from mgcma.constants import EMOTIONS

# Happy and angry were both orange (Okabe–Ito orange and vermillion): angry is Tol's wine, far
# from orange in hue and lightness, and from the blue of sad, with each colour deficiency too.
EMOTION_COLORS: dict[str, str] = {
    "neutral": "#999999",  # grey
    "happy": "#E69F00",  # orange
    "angry": "#882255",  # wine
    "sad": "#0072B2",  # blue
}
MODALITY_COLORS: dict[str, str] = {
    "speech": "#009E73",  # bluish green
    "text": "#CC79A7",  # reddish purple
    "fused": "#000000",
}
OTHER_COLOR = "#56B4E9"  # sky blue, for a label outside EMOTION_COLORS (or none)
SPAN_COLOR = "#D55E00"  # outline of a word's true time span
TEMPLATE = "plotly_white"

# Marker of each of this utterance's points, on the instance map and the distribution view.
POINT_SYMBOLS = {"speech": "diamond", "text": "square", "fused": "star"}


def _color(label: str) -> str:
    return EMOTION_COLORS.get(label, OTHER_COLOR)


def _emotion_order(labels) -> list[str]:
    """Known emotions in their canonical order, then any others sorted."""
    present = set(labels)
    return [e for e in EMOTIONS if e in present] + sorted(present - set(EMOTIONS))


def placeholder(message: str, height: int = 220) -> go.Figure:
    """An empty figure that says, in its middle, why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14}
    )
    fig.update_layout(
        template=TEMPLATE,
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        margin={"l": 20, "r": 20, "t": 20, "b": 20},
    )
    return fig
