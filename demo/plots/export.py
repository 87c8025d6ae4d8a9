"""Figures to files: a self-contained HTML page, and PNG bytes when kaleido can render them."""

from __future__ import annotations

import importlib.util

import plotly.graph_objects as go


def to_html(fig: go.Figure) -> str:
    """A complete HTML page with plotly.js inline, so it opens offline."""
    return fig.to_html(full_html=True, include_plotlyjs=True)


def to_png(fig: go.Figure, scale: float = 2.0) -> bytes | None:
    """PNG bytes through kaleido, or None when kaleido is not installed or cannot render."""
    if importlib.util.find_spec("kaleido") is None:
        return None
    try:
        return fig.to_image(format="png", scale=scale)
    except Exception:  # kaleido present but unusable (e.g. no Chrome): the app just skips PNGs
        return None
