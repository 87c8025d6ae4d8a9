"""The Analyze tab's downloads: the analysis as JSON, the figures as one offline HTML page."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mgcma.analysis import Analysis


def write_json(analysis: Analysis) -> str:
    """The analysis as a JSON file (Gradio copies it to its cache and serves it)."""
    path = Path(tempfile.mkdtemp(prefix="mgcma-")) / "analysis.json"
    path.write_text(json.dumps(analysis.to_dict(), indent=1))
    return str(path)


def write_html(figures) -> str:
    """The figures as one offline HTML page (plotly.js inlined once)."""
    import plotly.io as pio

    drawn = [f for f in figures if f is not None]
    parts = [
        pio.to_html(f, include_plotlyjs=(i == 0), full_html=False) for i, f in enumerate(drawn)
    ]
    path = Path(tempfile.mkdtemp(prefix="mgcma-")) / "figures.html"
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>MGCMA analysis"
        "</title></head><body>" + "\n".join(parts) + "</body></html>"
    )
    return str(path)
