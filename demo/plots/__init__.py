"""Plotly figures for the app, built from arrays and words, never from the model.

Every builder takes the plain numpy / Python values of an `mgcma.analysis.Analysis` (or of a
reference bank) and returns a `plotly.graph_objects.Figure`. Wrong shapes raise `ValueError` with a
message that says what to pass. Shape letters: H heads, W words, T_s speech frames, T spectrogram
frames, N bank utterances, g Gaussian width, B batch size.

Figures:
    prediction_bars     fused / speech-only / text-only emotion probabilities
    variant_bars        the same input through each ablation checkpoint
    spectrogram         log-mel array (dB) and its time axis, for `token_heatmap`
    token_heatmap       word ↔ speech-frame cross-attention under a spectrogram (fine granularity)
    two_views           the spectrogram with the words laid on their time spans
    instance_map        the utterance on the bank's 2-D map with its nearest neighbours (instance)
    distribution_view   speech and text Gaussians: ellipses and 1-D densities (distribution)
    similarity_matrices speech × text cosine similarities of a batch, one panel per model
    placeholder         an empty figure that says why nothing is drawn

Modules, one concept each: `common` (colours, template), `prediction`, `attention`, `instance`,
`distribution`, `similarity`. Import the figures from here: `from demo import plots`.
"""

from __future__ import annotations

from demo.plots.attention import (
    DIRECTIONS,
    HOP_SECONDS,
    TOP_DB,
    WINDOW_SECONDS,
    spectrogram,
    token_heatmap,
    two_views,
)
from demo.plots.common import (
    EMOTION_COLORS,
    MODALITY_COLORS,
    OTHER_COLOR,
    POINT_SYMBOLS,
    SPAN_COLOR,
    TEMPLATE,
    placeholder,
)
from demo.plots.distribution import ELLIPSE_MASS, distribution_view
from demo.plots.instance import POINT_MEANINGS, instance_map
from demo.plots.prediction import SOURCES, VARIANT_NAMES, prediction_bars, variant_bars
from demo.plots.similarity import similarity_matrices

__all__ = [
    "DIRECTIONS",
    "ELLIPSE_MASS",
    "EMOTION_COLORS",
    "HOP_SECONDS",
    "MODALITY_COLORS",
    "OTHER_COLOR",
    "POINT_MEANINGS",
    "POINT_SYMBOLS",
    "SOURCES",
    "SPAN_COLOR",
    "TEMPLATE",
    "TOP_DB",
    "VARIANT_NAMES",
    "WINDOW_SECONDS",
    "distribution_view",
    "instance_map",
    "placeholder",
    "prediction_bars",
    "similarity_matrices",
    "spectrogram",
    "token_heatmap",
    "two_views",
    "variant_bars",
]
