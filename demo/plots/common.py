"""Colours, the plot template and small helpers shared by the figures in `demo.plots`.

Colours are Okabe–Ito so that emotions and modalities stay distinguishable with the common
colour-vision deficiencies; a label outside `EMOTION_COLORS` falls back to `OTHER_COLOR`.
"""

from __future__ import annotations

from mgcma.constants import EMOTIONS

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
EMOTION_COLORS: dict[str, str] = {
    "neutral": "#999999",  # grey
    "happy": "#E69F00",  # orange
    "angry": "#D55E00",  # vermillion
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
