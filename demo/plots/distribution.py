"""Distribution level: the speech and text Gaussians of one utterance, drawn two ways.

Shape letters: g Gaussian width, N bank utterances.

Figures:
    distribution_view   1σ / 2σ ellipses on the bank's principal axes, and 1-D densities along
                        the line joining the two means, with W2 / similarity / overlap in words
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from demo.plots.common import MODALITY_COLORS, POINT_SYMBOLS, TEMPLATE, _color

# Share of a 2-D Gaussian's mass inside its 1σ and 2σ ellipses: 1 − exp(−k²/2).
ELLIPSE_MASS = {1: 39, 2: 86}
CAPTION_SHIFT = 30  # px from the panels' top to the caption's last line: room for panel titles
CAPTION_LINE = 15  # px per caption line (11-px font)


def _ordinal(value: float) -> str:
    n = int(round(value))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _check_gaussians(speech_mu, speech_sigma, text_mu, text_sigma, axes, center):
    """Validate shapes; return ({"speech": (mu, sigma), "text": …}, axes (2, g), center (g,))."""
    given = {
        "speech_mu": speech_mu,
        "speech_sigma": speech_sigma,
        "text_mu": text_mu,
        "text_sigma": text_sigma,
    }
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in given.items()}
    width = arrays["speech_mu"].shape
    if len(width) != 1 or width[0] == 0:
        raise ValueError(f"speech_mu must be a non-empty (g,) vector, got shape {width}")
    for name, array in arrays.items():
        if array.shape != width:
            raise ValueError(
                f"{name} has shape {array.shape} but speech_mu has {width}: pass the means and "
                "standard deviations of both Gaussians as (g,) vectors of one width"
            )
    for name in ("speech_sigma", "text_sigma"):
        if not np.all(arrays[name] > 0):
            raise ValueError(f"{name} must be positive standard deviations (exp of log σ)")
    g = width[0]
    axes, center = np.asarray(axes, dtype=np.float64), np.asarray(center, dtype=np.float64)
    if axes.shape != (2, g):
        raise ValueError(
            f"axes must be (2, g) = (2, {g}), the bank's two principal axes "
            f"(bank.arrays['pca_axes']), got shape {axes.shape}"
        )
    if center.shape != (g,):
        raise ValueError(
            f"center must be (g,) = ({g},) (bank.arrays['pca_center']), got shape {center.shape}"
        )
    gaussians = {
        "speech": (arrays["speech_mu"], arrays["speech_sigma"]),
        "text": (arrays["text_mu"], arrays["text_sigma"]),
    }
    return gaussians, axes, center


def _ellipse_traces(kind: str, mu, sigma, axes, center, points: int = 101) -> list[go.Scatter]:
    """1σ and 2σ ellipses of N(mu, diag(sigma²)) projected on `axes`, and the projected mean."""
    mean = axes @ (mu - center)  # (2,)
    covariance = (axes * sigma**2) @ axes.T  # (2, 2) = axes diag(σ²) axesᵀ
    values, vectors = np.linalg.eigh(covariance)
    angle = np.linspace(0.0, 2.0 * np.pi, points)
    circle = np.stack([np.cos(angle), np.sin(angle)])  # (2, points)
    unit = vectors @ (np.sqrt(np.clip(values, 0.0, None))[:, None] * circle)  # (2, points)
    color = MODALITY_COLORS[kind]
    traces = []
    for k in (1, 2):
        curve = mean[:, None] + k * unit
        curve[:, -1] = curve[:, 0]  # closed exactly, despite rounding in cos/sin
        traces.append(
            go.Scatter(
                x=curve[0],
                y=curve[1],
                mode="lines",
                name=f"{kind} {k}σ",
                legendgroup=kind,
                line={
                    "color": color,
                    "width": 2 if k == 1 else 1,
                    "dash": "solid" if k == 1 else "dot",
                },
                fill="toself",
                fillcolor=_rgba(color, 0.12 if k == 1 else 0.04),
                hoveron="points+fills",  # the outline explains; the inside names the ellipse
                hovertemplate=f"{kind} Gaussian, {k}σ ellipse<br>about {ELLIPSE_MASS[k]}% of its "
                "spread, seen on these two axes, lies inside<extra></extra>",
            )
        )
    traces.append(
        go.Scatter(
            x=[mean[0]],
            y=[mean[1]],
            mode="markers",
            name=f"{kind} mean",
            legendgroup=kind,
            marker={"symbol": POINT_SYMBOLS[kind], "size": 12, "color": color},
            hovertemplate=f"{kind} mean, on the bank's two main axes<br>"
            "(%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    )
    return traces


def _bank_means_trace(bank_points, bank_labels) -> go.Scatter:
    points = np.asarray(bank_points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"bank_points must be (N, 2) projected bank means, got {points.shape}")
    if bank_labels is not None and len(bank_labels) != len(points):
        raise ValueError(
            f"bank_labels has {len(bank_labels)} entries but bank_points has {len(points)} rows"
        )
    labels = ["unlabelled"] * len(points) if bank_labels is None else list(map(str, bank_labels))
    return go.Scatter(
        x=points[:, 0],
        y=points[:, 1],
        mode="markers",
        name="bank means (colour: their emotion)",
        marker={"size": 5, "opacity": 0.25, "color": [_color(label) for label in labels]},
        text=labels,
        hovertemplate="a bank utterance's mean (%{text})<extra></extra>",
    )


def _normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2.0 * np.pi))


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def _line_densities(gaussians: dict, axes: np.ndarray, points: int = 400):
    """Both Gaussians seen along the line joining their means.

    Returns
    -------
    x : (M,) positions u·x along the unit vector u = (μs − μt)/‖μs − μt‖ (the first axis when
        the means coincide); dense near each mean so a narrow density is sampled well
    densities : {"speech": (M,), "text": (M,)} the 1-D densities N(u·μ, u·diag(σ²)·u)
    """
    (speech_mu, _), (text_mu, _) = gaussians["speech"], gaussians["text"]
    gap = speech_mu - text_mu
    norm = np.linalg.norm(gap)
    direction = gap / norm if norm > 1e-12 else axes[0] / max(np.linalg.norm(axes[0]), 1e-12)
    params = {
        kind: (float(direction @ mu), float(np.sqrt(direction**2 @ sigma**2)))
        for kind, (mu, sigma) in gaussians.items()
    }
    spans = [(mean - 5 * std, mean + 5 * std) for mean, std in params.values()]
    grids = [np.linspace(min(s[0] for s in spans), max(s[1] for s in spans), points)]
    grids += [np.linspace(low, high, points) for low, high in spans]
    x = np.unique(np.concatenate(grids))
    return x, {kind: _normal_pdf(x, mean, std) for kind, (mean, std) in params.items()}


def _density_traces(gaussians: dict, axes: np.ndarray) -> tuple[list[go.Scatter], float]:
    """The two 1-D densities and their shared area; returns (traces, shared area in [0, 1])."""
    x, densities = _line_densities(gaussians, axes)
    traces = []
    for kind, density in densities.items():
        color = MODALITY_COLORS[kind]
        traces.append(
            go.Scatter(
                x=x,
                y=density,
                mode="lines",
                name=f"{kind} density",
                legendgroup=kind,
                showlegend=False,
                line={"color": color, "width": 2},
                fill="tozeroy",
                fillcolor=_rgba(color, 0.2),
                hovertemplate=f"{kind}: density %{{y:.3g}} at %{{x:.3g}}<br>taller = more of this "
                "Gaussian lies here<extra></extra>",
            )
        )
    shared = np.minimum(densities["speech"], densities["text"])
    area = _trapezoid(shared, x)
    traces.append(
        go.Scatter(
            x=x,
            y=shared,
            mode="lines",
            name=f"shared area along this line: {area:.0%}",
            line={"color": "rgba(0,0,0,0.6)", "width": 0.5},
            fill="tozeroy",
            fillcolor="rgba(0,0,0,0.25)",
            hovertemplate=f"where the two densities overlap: {area:.0%} of each one's area is "
            "shared along this line<extra></extra>",
        )
    )
    return traces, area


def _percentile_line(percentiles: Mapping | None) -> str | None:
    """Where this pair ranks among the bank's matched pairs, one line for the three numbers."""
    names = {"w2_distance": "W2 distance", "similarity": "similarity", "overlap": "overlap"}
    ranks = [
        f"{name} {_ordinal(percentiles[key])}"
        for key, name in names.items()
        if (percentiles or {}).get(key) is not None
    ]
    return "percentile among matched pairs in the bank: " + " · ".join(ranks) if ranks else None


def _distribution_caption(w2, similarity, overlap, percentiles, area: float, g: int) -> str:
    """The numbers in words, one short line each (a line must fit a 600-px figure)."""
    lines = []
    if w2 is not None:
        lines.append(f"W2 distance {w2:.3g}: how far apart the Gaussians are (0 = identical)")
    if similarity is not None:
        lines.append(f"similarity {similarity:.3g}: the score the loss raises for matched pairs")
    if overlap is not None:  # two different overlaps on screen: which is which, and why
        lines.append(
            f"overlap {overlap:.0%}: what the Gaussians share, averaged over all {g} dimensions "
            "(100% = identical)"
        )
    lines.append(
        f"shaded, right: {area:.0%} shared on the one line where the means differ most (no average)"
    )
    ranks = _percentile_line(percentiles)
    return "<br>".join(lines + ([ranks] if ranks else []))


def _layout_distribution(fig: go.Figure, caption: str) -> None:
    lines = caption.count("<br>") + 1 if caption else 0
    fig.update_xaxes(title="principal axis 1", row=1, col=1)
    fig.update_yaxes(title="principal axis 2", scaleanchor="x", scaleratio=1, row=1, col=1)
    fig.update_xaxes(title="text mean → speech mean", row=1, col=2)
    fig.update_yaxes(title="density", rangemode="tozero", row=1, col=2)
    if caption:  # above the panels' titles, below the figure's: never cut by the plot area
        fig.add_annotation(
            text=caption,
            xref="paper",
            yref="paper",
            x=0.0,
            y=1.0,
            yshift=CAPTION_SHIFT,
            xanchor="left",
            yanchor="bottom",
            align="left",
            showarrow=False,
            font={"size": 11},
        )
    fig.update_layout(
        template=TEMPLATE,
        title={  # above the caption, whatever its number of lines
            "text": "Distribution level: do speech and text describe the utterance alike?"
            "<br><sup>each modality is a Gaussian; matched speech and text should overlap</sup>",
            "yref": "paper",
            "y": 1.0,
            "yanchor": "bottom",
            "pad": {"b": CAPTION_SHIFT + CAPTION_LINE * lines + 24},
        },
        height=480 + CAPTION_LINE * lines,
        margin={"l": 60, "r": 20, "t": 120 + CAPTION_LINE * lines, "b": 60},
        # below the panels, so that both panels keep the figure's whole width
        legend={"orientation": "h", "x": 0.0, "y": -0.2, "yanchor": "top"},
    )


def distribution_view(
    speech_mu: np.ndarray,
    speech_sigma: np.ndarray,
    text_mu: np.ndarray,
    text_sigma: np.ndarray,
    *,
    axes: np.ndarray,
    center: np.ndarray,
    w2: float | None = None,
    similarity: float | None = None,
    overlap: float | None = None,
    percentiles: Mapping[str, float | None] | None = None,
    bank_points: np.ndarray | None = None,
    bank_labels: Sequence[str] | None = None,
) -> go.Figure:
    """The speech and text Gaussians of one utterance, drawn two ways.

    Parameters
    ----------
    speech_mu, speech_sigma, text_mu, text_sigma : (g,) means and standard deviations of the two
        diagonal Gaussians (Analysis.speech_mu, …)
    axes : (2, g) the bank's two principal axes; center : (g,) the bank's mean
    w2, similarity, overlap : Analysis.w2_distance, .similarity, .overlap, put in plain words
    percentiles : {"w2_distance": p, "similarity": p, "overlap": p} (Analysis.percentiles)
    bank_points : (N, 2) bank means already projected (bank.projected_means()); bank_labels : N

    Returns
    -------
    Figure. Left: 1σ and 2σ ellipses of each Gaussian projected on the axes (mean
    axes @ (μ − center), covariance axes diag(σ²) axesᵀ), means marked. Right: both Gaussians
    along the line joining their means, as filled 1-D densities with the shared area shaded.
    `layout.meta` holds {"overlap": overlap, "shared_area": the shaded share}.
    """
    gaussians, axes, center = _check_gaussians(
        speech_mu, speech_sigma, text_mu, text_sigma, axes, center
    )
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.14,
        subplot_titles=("on the bank's two main axes", "along the line joining the means"),
    )
    if bank_points is not None:
        fig.add_trace(_bank_means_trace(bank_points, bank_labels), row=1, col=1)
    for kind, (mu, sigma) in gaussians.items():
        fig.add_traces(_ellipse_traces(kind, mu, sigma, axes, center), rows=1, cols=1)
    densities, area = _density_traces(gaussians, axes)
    fig.add_traces(densities, rows=1, cols=2)
    g = len(gaussians["speech"][0])
    _layout_distribution(fig, _distribution_caption(w2, similarity, overlap, percentiles, area, g))
    fig.update_layout(meta={"overlap": overlap, "shared_area": area})  # for texts that quote them
    return fig
